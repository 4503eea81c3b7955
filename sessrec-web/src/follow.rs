//! Following a live channel: its output as server-sent events, in the form the packaged
//! player's `eventsource` driver reads (a reset with the screen so far, then `[time, "o",
//! text]` events, then a `done` event when the channel ends), as the recorder writes lines.
//!
//! Memory per follower is bounded: the file is read a step at a time into a small channel of
//! at most [`MESSAGES_IN_FLIGHT`] messages of at most [`MESSAGE_BYTES`] each; a browser that
//! reads slowly holds the reader back rather than making it buffer. The number of followers
//! is capped ([`MAX_FOLLOWERS`]).
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sessrec::playlist::{cues_in, Cue, Timed};
use sessrec::records::RecordFile;
use sessrec::sanitize::Sanitizer;
use sessrec::utf8::Utf8Decoder;
use tokio::sync::mpsc::Sender;

/// Messages queued for one browser.
pub const MESSAGES_IN_FLIGHT: usize = 8;
/// Output text gathered into one message (one step of reading).
pub const MESSAGE_BYTES: usize = 64 * 1024;
/// Record bytes before the moment a follower joins that draw the screen it sees first.
const SCREEN_BYTES: u64 = 64 * 1024;
/// Browsers following at once; more are turned away.
pub const MAX_FOLLOWERS: usize = 64;
/// How often the file is looked at for new lines.
const POLL: Duration = Duration::from_millis(200);
/// A comment sent on silence, so a browser that left is noticed.
const KEEPALIVE: Duration = Duration::from_secs(10);
/// How long a file on this host may stay silent, its recorder gone, before following stops.
const GONE_AFTER: Duration = Duration::from_secs(3);

static FOLLOWERS: AtomicUsize = AtomicUsize::new(0);

/// One follower counted for as long as it lives.
pub struct Slot(());

impl Slot {
    pub fn take() -> Option<Slot> {
        let n = FOLLOWERS.fetch_add(1, Ordering::SeqCst);
        if n >= MAX_FOLLOWERS {
            FOLLOWERS.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot(()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        FOLLOWERS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One server-sent event; `data` is JSON (one line: serde never writes a raw newline).
fn event(name: Option<&str>, data: &serde_json::Value) -> Vec<u8> {
    let mut m = Vec::new();
    if let Some(n) = name {
        m.extend_from_slice(format!("event: {n}\n").as_bytes());
    }
    m.extend_from_slice(b"data: ");
    m.extend_from_slice(data.to_string().as_bytes());
    m.extend_from_slice(b"\n\n");
    m
}

/// The file being written, opened through the record store. A compressed file is a closed
/// session's: nothing more will be written to it.
fn growing(file: &RecordFile) -> std::io::Result<std::fs::File> {
    match sessrec_core::stored::open(&file.path)? {
        sessrec_core::stored::Stored::Plain(f) => Ok(f),
        sessrec_core::stored::Stored::Compressed(_) => Err(std::io::Error::other(
            "the record is compressed: its session is closed",
        )),
    }
}

/// The end of the last complete line at or before the file's end.
fn complete_end(file: &RecordFile) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = growing(file)?;
    let len = f.seek(SeekFrom::End(0))?;
    let mut end = len;
    let mut buf = vec![0u8; 8192];
    while end > 0 {
        let step = (end as usize).min(buf.len());
        f.seek(SeekFrom::Start(end - step as u64))?;
        f.read_exact(&mut buf[..step])?;
        if let Some(p) = buf[..step].iter().rposition(|&b| b == b'\n') {
            return Ok(end - step as u64 + p as u64 + 1);
        }
        end -= step as u64;
    }
    Ok(0)
}

/// Where the first line starting at or after `at` begins.
fn line_start_at_or_after(file: &RecordFile, at: u64) -> std::io::Result<u64> {
    use std::io::{BufRead, Seek, SeekFrom};
    if at == 0 {
        return Ok(0);
    }
    let mut f = growing(file)?;
    f.seek(SeekFrom::Start(at - 1))?;
    // Skipped without keeping it: the line may be long.
    let n = std::io::BufReader::new(f).skip_until(b'\n')?;
    Ok(at - 1 + n as u64)
}

/// Output filtered as the player's casts are (drawing sequences only), kept across reads.
struct Screen {
    decoder: Utf8Decoder,
    sanitizer: Sanitizer,
}

impl Screen {
    fn text(&mut self, data: &[u8]) -> String {
        let mut out = Vec::new();
        self.sanitizer
            .push(self.decoder.push(data).as_bytes(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Follows `file` into `tx` until its channel ends, its recorder (on this host) is gone, or
/// the browser leaves.
pub fn follow(file: &RecordFile, this_host: &str, tx: &Sender<Vec<u8>>) {
    let send = |m: Vec<u8>| tx.blocking_send(m).is_ok();
    let mut screen = Screen {
        decoder: Utf8Decoder::new(),
        sanitizer: Sanitizer::new(),
    };
    let (cols, rows) = file.geometry();
    let Ok(mut pos) = complete_end(file) else {
        send(event(Some("done"), &json!({})));
        return;
    };
    // The screen so far: the output of the last stretch of record, drawn at once.
    let mut init = String::new();
    let mut now_s = 0.0;
    let mut ended = false;
    for Timed { at_us, cue } in cues_in(file, pos.saturating_sub(SCREEN_BYTES), pos) {
        now_s = at_us as f64 / 1e6;
        match cue {
            Cue::Output(data) => init.push_str(&screen.text(&data)),
            Cue::Exit(_) => ended = true,
            _ => {}
        }
    }
    if !send(event(
        None,
        &json!({"cols": cols, "rows": rows, "time": now_s, "init": init}),
    )) {
        return;
    }
    let on_this_host = file.field(sessrec_core::schema::header_key::HOST) == this_host;
    let mut last_line = Instant::now();
    let mut last_sent = Instant::now();
    while !ended {
        let end = match complete_end(file) {
            Ok(e) => e,
            Err(_) => break,
        };
        if end > pos {
            // At most a message's worth of record per step: a slow browser holds this back.
            let step_end = (pos + MESSAGE_BYTES as u64).min(end);
            let mut text = String::new();
            let mut at = now_s;
            for Timed { at_us, cue } in cues_in(file, pos, step_end) {
                at = at_us as f64 / 1e6;
                match cue {
                    Cue::Output(data) => text.push_str(&screen.text(&data)),
                    Cue::Resize { cols, rows } => {
                        if !text.is_empty() && !send(event(None, &json!([at, "o", text]))) {
                            return;
                        }
                        text.clear();
                        if !send(event(None, &json!([at, "r", {"cols": cols, "rows": rows}]))) {
                            return;
                        }
                    }
                    Cue::Exit(_) => ended = true,
                    _ => {}
                }
            }
            // The lines read: those starting before step_end.
            pos = match line_start_at_or_after(file, step_end) {
                Ok(next) => next.min(end),
                Err(_) => break,
            };
            now_s = at;
            if !text.is_empty() {
                if !send(event(None, &json!([at, "o", text]))) {
                    return;
                }
                last_sent = Instant::now();
            }
            last_line = Instant::now();
            continue;
        }
        let alive = file
            .start
            .as_ref()
            .is_some_and(|s| sessrec::live::recorder_alive(s, this_host));
        if on_this_host && !alive && last_line.elapsed() > GONE_AFTER {
            break;
        }
        if last_sent.elapsed() > KEEPALIVE {
            if !send(b": keepalive\n\n".to_vec()) {
                return;
            }
            last_sent = Instant::now();
        }
        std::thread::sleep(POLL);
    }
    send(event(Some("done"), &json!({})));
}
