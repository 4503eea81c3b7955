//! What a replay or an export shows, in order: the output of each selected file, resizes,
//! and the input, each with its offset from the start of the replay.
#![forbid(unsafe_code)]

use std::cell::Cell;
use std::rc::Rc;

use sessrec_core::record::Stream;
use sessrec_core::schema::Event;

use crate::records::{event_offset, Item, RecordFile};

#[derive(Debug, Clone, PartialEq)]
pub enum Cue {
    /// Bytes the terminal displayed (a pipe channel's with CR before LF, its stderr in red).
    Output(Vec<u8>),
    /// Bytes the user typed.
    Input {
        data: Vec<u8>,
        echo_off: bool,
    },
    Resize {
        cols: u16,
        rows: u16,
    },
    /// A new file starts (banner text, already escaped).
    Banner(String),
    /// The channel ended (exit status when known).
    Exit(Option<i64>),
    /// A damaged line, reported in place.
    Damaged(String),
}

/// One cue with its time in µs from the playlist's start.
#[derive(Debug, Clone, PartialEq)]
pub struct Timed {
    pub at_us: u64,
    pub cue: Cue,
}

/// Streams the cues of `files` played one after another. `base_us` is the start time of the
/// first file; later files are placed at their own start times (or right after the previous
/// file, whichever is later).
pub fn cues(files: &[RecordFile], with_banners: bool) -> impl Iterator<Item = Timed> + '_ {
    cues_within(files, with_banners, None)
}

/// The cues of one file's lines that start in the byte range `[from, to)` (a piece of a long
/// recording), timed as in the whole file.
pub fn cues_in(file: &RecordFile, from: u64, to: u64) -> impl Iterator<Item = Timed> + '_ {
    cues_within(std::slice::from_ref(file), false, Some((from, to)))
}

fn cues_within(
    files: &[RecordFile],
    with_banners: bool,
    range: Option<(u64, u64)>,
) -> impl Iterator<Item = Timed> + '_ {
    let base = files.iter().filter_map(|f| f.start_us).min().unwrap_or(0);
    // Files are read lazily, one after another: the latest time seen so far places the next.
    let cursor = Rc::new(Cell::new(0u64));
    files.iter().flat_map(move |f| {
        let cursor = cursor.clone();
        let file_start = f
            .start_us
            .map(|t| (t - base).max(0) as u64)
            .unwrap_or(cursor.get())
            .max(cursor.get());
        let mut head = Vec::new();
        if with_banners {
            head.push(Timed {
                at_us: file_start,
                cue: Cue::Banner(banner(f)),
            });
        }
        let items = match range {
            None => f
                .items()
                .map(|it| Box::new(it) as Box<dyn Iterator<Item = Item>>),
            Some((from, to)) => f
                .items_in(from, to)
                .map(|it| Box::new(it) as Box<dyn Iterator<Item = Item>>),
        };
        let items: Box<dyn Iterator<Item = Item>> = match items {
            Ok(it) => it,
            Err(e) => Box::new(std::iter::once(Item::Damaged {
                line_no: 0,
                problem: format!("cannot read {}: {e}", f.name),
            })),
        };
        let name = f.name.clone();
        let pipe = f.is_pipe();
        // Whether the last output byte of a pipe channel was a CR (for the LF that follows).
        let after_cr = Cell::new(false);
        let tail = items.filter_map(move |item| match item {
            Item::Frame {
                off_us,
                stream,
                data,
                echo_off,
            } => {
                let at_us = file_start + off_us;
                cursor.set(cursor.get().max(at_us));
                let cue = match stream {
                    Stream::Input => Cue::Input { data, echo_off },
                    Stream::Output => Cue::Output(as_terminal(pipe, &after_cr, data)),
                    Stream::Stderr => {
                        Cue::Output(stderr_marked(as_terminal(pipe, &after_cr, data)))
                    }
                };
                Some(Timed { at_us, cue })
            }
            Item::Event { time_us, event, .. } => {
                let off = event.off().or_else(|| event_offset(f, time_us))?;
                let at_us = file_start + off;
                match *event {
                    Event::Resize(r) => {
                        let (cols, rows) = crate::geometry::emulated(r.cols?, r.rows?);
                        Some(Timed {
                            at_us,
                            cue: Cue::Resize { cols, rows },
                        })
                    }
                    Event::ChannelEnd(end) => Some(Timed {
                        at_us,
                        cue: Cue::Exit(end.exit_code.flatten().map(i64::from)),
                    }),
                    Event::SudoEnd(_) => Some(Timed {
                        at_us,
                        cue: Cue::Exit(None),
                    }),
                    _ => None,
                }
            }
            Item::Damaged { line_no, problem } => Some(Timed {
                at_us: cursor.get(),
                cue: Cue::Damaged(format!(
                    "{}: line {line_no}: {}",
                    name,
                    crate::escape::escape_control(&problem)
                )),
            }),
        });
        Box::new(head.into_iter().chain(tail)) as Box<dyn Iterator<Item = Timed> + '_>
    })
}

/// Output of a pipe channel as a terminal would show it: no terminal turned its newlines into
/// CR LF, so a lone LF gets its CR (else every line would start where the last one ended).
fn as_terminal(pipe: bool, after_cr: &Cell<bool>, data: Vec<u8>) -> Vec<u8> {
    if !pipe || !data.contains(&b'\n') {
        if let Some(last) = data.last() {
            after_cr.set(*last == b'\r');
        }
        return data;
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    let mut prev_cr = after_cr.get();
    for b in data {
        if b == b'\n' && !prev_cr {
            out.push(b'\r');
        }
        prev_cr = b == b'\r';
        out.push(b);
    }
    after_cr.set(prev_cr);
    out
}

/// Standard error of a pipe channel (or of sudo's command), shown in red so that it is told
/// from standard output in replays and casts.
fn stderr_marked(data: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 10);
    out.extend_from_slice(b"\x1b[31m");
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\x1b[39m");
    out
}

/// Characters of a command shown in a replay banner; `sessrec show` has it whole.
const BANNER_COMMAND_MAX: usize = 200;

/// The command for a one-line banner: escaped, and when long its start and its end (what a
/// padded command hides at the end is what matters) with the length.
fn banner_command(f: &RecordFile) -> String {
    let text = crate::escape::escape_control(&f.command_text());
    let chars = text.chars().count();
    let mut shown = if chars <= BANNER_COMMAND_MAX {
        text
    } else {
        let half = BANNER_COMMAND_MAX / 2;
        let head: String = text.chars().take(half).collect();
        let tail: String = text.chars().skip(chars - half).collect();
        format!(
            "{head}…{tail} ({} bytes; sessrec show has it whole)",
            f.command.as_ref().map_or(0, |c| c.bytes.len())
        )
    };
    if let Some(note) = f.command.as_ref().and_then(|c| c.note()) {
        shown.push_str(&format!(" [{note}]"));
    }
    shown
}

pub fn banner(f: &RecordFile) -> String {
    let what = match f.kind {
        crate::store::FileKind::Sudo => format!(
            "sudo as {}: {}",
            crate::escape::escape_control(
                f.sudo_start()
                    .and_then(|s| s.runuser.as_deref())
                    .unwrap_or_default()
            ),
            banner_command(f)
        ),
        _ => format!(
            "{} {} {}",
            crate::escape::escape_control(
                f.channel_start()
                    .and_then(|s| s.kind.as_deref())
                    .unwrap_or_default()
            ),
            crate::escape::escape_control(
                f.channel_start()
                    .and_then(|s| s.mode.as_deref())
                    .unwrap_or_default()
            ),
            banner_command(f)
        ),
    };
    format!(
        "── {} ({}) ──",
        f.name.trim_end_matches(".jsonl"),
        what.trim()
    )
}
