//! `sessrec search`: finds a regex in recorded input, output or reconstructed commands.
//!
//! Each channel's input and output are searched as continuous streams, not line by line: the
//! frames are joined and searched in batches that keep an overlap with the previous batch, so a
//! match split across frames or record lines is found once. The stream is searched with escape
//! sequences and control characters removed (what the screen shows as text); when the pattern
//! names an escape or control character (`\x1b`, `\e`, ...), the raw bytes are searched too.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Write};

use regex::bytes::{Regex, RegexBuilder};
use serde_json::json;

use crate::context::{exit, CmdResult, Context, Failure};
use crate::escape::escape_bytes;
use crate::filters::Filters;
use crate::lineedit::LineEditor;
use crate::prefilter::{marked_as_io, Prefilter};
use crate::records::RecordFile;
use crate::store::{session_files, FileKind, SessionRef};
use crate::summary::summarize;
use sessrec_core::command::RecordedCommand;
use sessrec_core::record::Stream;
use sessrec_core::schema::{EventBody, Io, IoView};

/// Longest text a match may span across a batch boundary.
pub const OVERLAP: usize = 4096;
/// Bytes gathered before a search runs.
const BATCH: usize = 256 * 1024;

/// One match.
#[derive(Debug, Clone)]
pub struct Hit {
    pub stream: &'static str,
    pub off_us: u64,
    pub text: Vec<u8>,
    pub context: Vec<u8>,
}

/// Removes escape sequences and controls (keeps `\n` and `\t`), across chunk boundaries.
#[derive(Default, Debug)]
pub struct TextOnly {
    state: u8, // 0 text, 1 after ESC, 2 CSI, 3 string (OSC/DCS/...), 4 string after ESC
}

impl TextOnly {
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
        let mut saw_escape = false;
        let mut i = 0;
        while i < data.len() {
            if self.state == 0 {
                // Runs of plain text are copied whole.
                let run = data[i..]
                    .iter()
                    .position(|&b| b < 0x20 || b == 0x7f)
                    .unwrap_or(data.len() - i);
                out.extend_from_slice(&data[i..i + run]);
                i += run;
                if i == data.len() {
                    break;
                }
            }
            let b = data[i];
            i += 1;
            match self.state {
                0 => match b {
                    0x1b => {
                        self.state = 1;
                        saw_escape = true;
                    }
                    b'\n' | b'\t' => out.push(b),
                    0x00..=0x1f | 0x7f => {}
                    _ => out.push(b),
                },
                1 => {
                    self.state = match b {
                        b'[' => 2,
                        b']' | b'P' | b'X' | b'^' | b'_' => 3,
                        0x20..=0x2f => 1,
                        _ => 0,
                    }
                }
                2 => {
                    if (0x40..=0x7e).contains(&b) {
                        self.state = 0;
                    }
                }
                3 => match b {
                    0x07 => self.state = 0,
                    0x1b => self.state = 4,
                    _ => {}
                },
                _ => self.state = if b == b'\\' { 0 } else { 3 },
            }
        }
        saw_escape
    }
}

/// Searches one stream (input or output of one file) in overlapping batches.
pub struct StreamSearch<'r> {
    regex: &'r Regex,
    stream: &'static str,
    text: Vec<u8>,
    /// (position in `text`, offset µs) at each frame start.
    marks: Vec<(usize, u64)>,
    raw: Vec<u8>,
    raw_marks: Vec<(usize, u64)>,
    raw_needed: bool,
    /// The pattern can match escape sequences: search the raw bytes as well.
    raw_too: bool,
    /// `--raw`: `text` holds the bytes as recorded, escape sequences and controls included.
    raw_only: bool,
    filter: TextOnly,
    /// Everything before this position in `text` / `raw` has been searched.
    text_done: usize,
    raw_done: usize,
    /// Matches ending at or before this were reported.
    text_reported: usize,
    raw_reported: usize,
}

impl<'r> StreamSearch<'r> {
    pub fn new(regex: &'r Regex, stream: &'static str) -> Self {
        let raw_too = names_controls(regex.as_str());
        StreamSearch {
            raw_too,
            raw_only: false,
            regex,
            stream,
            text: Vec::with_capacity(BATCH + OVERLAP),
            marks: Vec::new(),
            raw: Vec::new(),
            raw_marks: Vec::new(),
            raw_needed: false,
            filter: TextOnly::default(),
            text_done: 0,
            raw_done: 0,
            text_reported: 0,
            raw_reported: 0,
        }
    }

    /// Searches the bytes as recorded only (`--raw`).
    pub fn raw_only(mut self) -> Self {
        self.raw_only = true;
        self.raw_too = false;
        self
    }

    pub fn push(&mut self, off_us: u64, data: &[u8], hits: &mut Vec<Hit>) {
        self.marks.push((self.text.len(), off_us));
        if self.raw_only {
            self.text.extend_from_slice(data);
        } else if self.filter.push(data, &mut self.text) {
            self.raw_needed = true;
        }
        if self.raw_too {
            self.raw_marks.push((self.raw.len(), off_us));
            self.raw.extend_from_slice(data);
        }
        if self.raw.len() >= BATCH || self.text.len() >= BATCH {
            self.search(hits);
        }
    }

    pub fn finish(&mut self, hits: &mut Vec<Hit>) {
        self.search(hits);
    }

    fn search(&mut self, hits: &mut Vec<Hit>) {
        let text_hits = scan(
            self.regex,
            &self.text,
            self.text_done,
            &mut self.text_reported,
            &self.marks,
            self.stream,
        );
        let raw_hits = if self.raw_needed {
            scan(
                self.regex,
                &self.raw,
                self.raw_done,
                &mut self.raw_reported,
                &self.raw_marks,
                self.stream,
            )
        } else {
            Vec::new()
        };
        let before = hits.len();
        hits.extend(text_hits);
        // A raw match that the text view also found (same time) is not reported twice.
        for h in raw_hits {
            if !hits[before..].iter().any(|t| t.off_us == h.off_us) {
                hits.push(h);
            }
        }
        self.raw_needed = false;
        keep_tail(
            &mut self.text,
            &mut self.marks,
            &mut self.text_done,
            &mut self.text_reported,
        );
        keep_tail(
            &mut self.raw,
            &mut self.raw_marks,
            &mut self.raw_done,
            &mut self.raw_reported,
        );
    }
}

/// Whether a pattern refers to escape or control characters (then escapes are searched raw).
pub fn names_controls(pattern: &str) -> bool {
    const NAMES: [&str; 13] = [
        "\\x1b",
        "\\x1B",
        "\\x{1b}",
        "\\x{1B}",
        "\\e",
        "\\u{1b}",
        "\\u001b",
        "\\033",
        "\\x07",
        "\\x9b",
        "\\x9d",
        "[[:cntrl:]]",
        "\\p{Cc}",
    ];
    pattern.chars().any(|c| c.is_control()) || NAMES.iter().any(|k| pattern.contains(k))
}

fn scan(
    regex: &Regex,
    buf: &[u8],
    done: usize,
    reported: &mut usize,
    marks: &[(usize, u64)],
    stream: &'static str,
) -> Vec<Hit> {
    let mut hits = Vec::new();
    let from = done.saturating_sub(OVERLAP);
    for m in regex.find_iter(&buf[from..]) {
        let (start, end) = (from + m.start(), from + m.end());
        if end <= done.max(*reported) && done > 0 || start < *reported {
            continue;
        }
        if m.as_bytes().is_empty() {
            continue;
        }
        *reported = end;
        let idx = marks.partition_point(|(p, _)| *p <= start);
        let off_us = if idx == 0 {
            marks.first().map_or(0, |m| m.1)
        } else {
            marks[idx - 1].1
        };
        let c0 = start.saturating_sub(40);
        let c1 = (end + 40).min(buf.len());
        hits.push(Hit {
            stream,
            off_us,
            text: m.as_bytes().to_vec(),
            context: buf[c0..c1].to_vec(),
        });
    }
    hits
}

/// Keeps the last OVERLAP bytes (and their marks) for the next batch.
fn keep_tail(
    buf: &mut Vec<u8>,
    marks: &mut Vec<(usize, u64)>,
    done: &mut usize,
    reported: &mut usize,
) {
    let cut = buf.len().saturating_sub(OVERLAP);
    if cut > 0 {
        buf.drain(..cut);
        let keep_from = marks.partition_point(|(p, _)| *p <= cut).saturating_sub(1);
        marks.drain(..keep_from);
        for m in marks.iter_mut() {
            m.0 = m.0.saturating_sub(cut);
        }
    }
    *done = buf.len();
    *reported = reported.saturating_sub(cut);
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Both,
    Input,
    Output,
    Commands,
    /// The kernel's record (`audit.jsonl`): execs and/or connections.
    Audit {
        execs: bool,
        connects: bool,
    },
}

/// Searches one record file, calling `report` for each hit as it is found (streamed: for
/// files too long to read whole).
pub fn search_file(
    path: &std::path::Path,
    regex: &Regex,
    scope: Scope,
    pty: bool,
    raw: bool,
    report: &mut dyn FnMut(Hit) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    let mut reader = BufReader::with_capacity(1 << 20, sessrec_core::stored::open(path)?);
    let mut search = FileSearch::new(regex, scope, pty, raw);
    let mut line = Vec::with_capacity(16 * 1024);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 || line.last() != Some(&b'\n') {
            break;
        }
        search.line(&line, report)?;
    }
    search.finish(report)
}

/// [`search_file`] over a file's content read whole.
pub fn search_content(
    content: &[u8],
    regex: &Regex,
    scope: Scope,
    pty: bool,
    raw: bool,
    report: &mut dyn FnMut(Hit) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    let mut search = FileSearch::new(regex, scope, pty, raw);
    // Complete lines only, as when streamed.
    for line in content.split_inclusive(|&b| b == b'\n') {
        if line.last() != Some(&b'\n') {
            break;
        }
        search.line(line, report)?;
    }
    search.finish(report)
}

/// The search of one record file, fed its complete lines in order.
struct FileSearch<'r> {
    regex: &'r Regex,
    scope: Scope,
    pty: bool,
    raw: bool,
    input: StreamSearch<'r>,
    output: StreamSearch<'r>,
    /// A pipe channel's standard error, told apart from its output.
    stderr: StreamSearch<'r>,
    editor: LineEditor,
    typed: Vec<crate::lineedit::TypedLine>,
    hits: Vec<Hit>,
    count: u64,
}

impl<'r> FileSearch<'r> {
    fn new(regex: &'r Regex, scope: Scope, pty: bool, raw: bool) -> Self {
        let stream = |name| {
            let s = StreamSearch::new(regex, name);
            if raw {
                s.raw_only()
            } else {
                s
            }
        };
        FileSearch {
            regex,
            scope,
            pty,
            raw,
            input: stream("input"),
            output: stream("output"),
            stderr: stream("stderr"),
            editor: LineEditor::new(),
            typed: Vec::new(),
            hits: Vec::new(),
            count: 0,
        }
    }

    fn line(
        &mut self,
        line: &[u8],
        report: &mut dyn FnMut(Hit) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        // Cheap pre-check before parsing: only I/O lines matter.
        if !marked_as_io(line) {
            return Ok(());
        }
        let Ok(parsed) = serde_json::from_slice::<IoView<'_>>(line) else {
            return Ok(());
        };
        if parsed.kind != Io::TYPE {
            return Ok(());
        }
        let echo_off = parsed.echo_off;
        let (regex, scope, pty, raw) = (self.regex, self.scope, self.pty, self.raw);
        let FileSearch {
            input,
            output,
            stderr,
            editor,
            typed,
            hits,
            ..
        } = self;
        let _ = parsed.for_each_read(|off, s, data| match (s, scope) {
            (Stream::Input, Scope::Both | Scope::Input) if raw => input.push(off, data, hits),
            (Stream::Input, Scope::Both | Scope::Input) => {
                // Enter is CR on a terminal: as a line break, lines of input stay apart.
                let lines: Vec<u8> = data
                    .iter()
                    .map(|&b| if b == b'\r' { b'\n' } else { b })
                    .collect();
                input.push(off, &lines, hits)
            }
            (Stream::Input, Scope::Commands) if pty => {
                editor.feed(off, data, echo_off, typed);
                for l in typed.drain(..) {
                    if let Some(m) = regex.find(l.text.as_bytes()) {
                        hits.push(Hit {
                            stream: "command",
                            off_us: l.end_us,
                            text: m.as_bytes().to_vec(),
                            context: l.text.into_bytes(),
                        });
                    }
                }
            }
            (Stream::Output, Scope::Both | Scope::Output) => output.push(off, data, hits),
            (Stream::Stderr, Scope::Both | Scope::Output) => stderr.push(off, data, hits),
            _ => {}
        });
        self.report_hits(report)
    }

    fn report_hits(
        &mut self,
        report: &mut dyn FnMut(Hit) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        for h in self.hits.drain(..) {
            self.count += 1;
            report(h)?;
        }
        Ok(())
    }

    fn finish(
        mut self,
        report: &mut dyn FnMut(Hit) -> std::io::Result<()>,
    ) -> std::io::Result<u64> {
        self.input.finish(&mut self.hits);
        self.output.finish(&mut self.hits);
        self.stderr.finish(&mut self.hits);
        if self.scope == Scope::Commands {
            if let Some(l) = self.editor.finish() {
                if let Some(m) = self.regex.find(l.text.as_bytes()) {
                    self.hits.push(Hit {
                        stream: "command",
                        off_us: l.end_us,
                        text: m.as_bytes().to_vec(),
                        context: l.text.into_bytes(),
                    });
                }
            }
        }
        self.report_hits(report)?;
        Ok(self.count)
    }
}

/// Matches in a channel's command (the whole command, continuation lines included), reported
/// at the channel's start with the text around each match.
pub fn search_command(regex: &Regex, command: &RecordedCommand) -> Vec<Hit> {
    let bytes = &command.bytes;
    regex
        .find_iter(bytes)
        .filter(|m| !m.as_bytes().is_empty())
        .map(|m| Hit {
            stream: "command",
            off_us: 0,
            text: m.as_bytes().to_vec(),
            context: bytes[m.start().saturating_sub(40)..(m.end() + 40).min(bytes.len())].to_vec(),
        })
        .collect()
}

pub fn run(ctx: &Context) -> CmdResult {
    let pattern = &ctx.args.positional[0];
    let execs = ctx.args.flag("--exec");
    let connects = ctx.args.flag("--connect");
    let forward = ctx.args.flag("--forward");
    if forward
        && [
            "--input",
            "--output",
            "--commands",
            "--exec",
            "--connect",
            "--raw",
        ]
        .iter()
        .any(|f| ctx.args.flag(f))
    {
        return Err(Failure::usage(
            "--forward searches destinations; it goes with none of --input, --output, --commands, --exec, --connect, --raw",
        ));
    }
    let scope = match (
        ctx.args.flag("--input"),
        ctx.args.flag("--output"),
        ctx.args.flag("--commands"),
        execs || connects,
    ) {
        (false, false, false, false) => Scope::Both,
        (true, false, false, false) => Scope::Input,
        (false, true, false, false) => Scope::Output,
        (false, false, true, false) => Scope::Commands,
        (false, false, false, true) => Scope::Audit { execs, connects },
        _ => {
            return Err(Failure::usage(
                "choose at most one of --input, --output, --commands, or --exec and --connect",
            ))
        }
    };
    let source = if ctx.args.flag("--fixed-strings") {
        regex::escape(pattern)
    } else {
        pattern.clone()
    };
    let regex = RegexBuilder::new(&source)
        .case_insensitive(ctx.args.flag("--ignore-case"))
        .size_limit(64 << 20)
        .build()
        .map_err(|e| Failure::usage(format!("bad regex: {e}")))?;
    let streams = matches!(scope, Scope::Both | Scope::Input | Scope::Output);
    let prefilter = if ctx.args.flag("--fixed-strings") && streams {
        Prefilter::new(pattern, ctx.args.flag("--ignore-case"))
    } else {
        None
    };
    let filters = Filters::from_args(ctx)?;
    let json = ctx.args.flag("--json");
    let raw = ctx.args.flag("--raw");
    let only = match ctx.args.value("--session") {
        Some(s) => Some(ctx.tree.resolve(s).map_err(Failure::error)?),
        None => None,
    };
    // The gate selected the sessions (filters applied) and summarized them.
    let sessions: Vec<(SessionRef, i64)> = match only {
        Some(s) => {
            let summary = summarize(&s, &ctx.host);
            if filters.accepts(&summary) {
                vec![(s, summary.start_us)]
            } else {
                Vec::new()
            }
        }
        None => ctx.reading.clone(),
    };
    let mut out = crate::output::stdout();
    let mut total = 0u64;
    // Sessions are searched on every core, each into its own buffer; the buffers are
    // printed in order.
    let searched = |(session, origin_us): &(SessionRef, i64)| -> Result<(u64, Vec<u8>), Failure> {
        let how = How {
            scope,
            prefilter: prefilter.as_ref(),
            json,
            raw,
            origin_us: *origin_us,
        };
        let mut buf = Vec::new();
        let n = if forward {
            crate::forward_view::search_session(session, &regex, json, &mut buf)?
        } else {
            search_session(session, &regex, &how, &mut buf)?
        };
        Ok((n, buf))
    };
    crate::parallel::for_each_ordered(&sessions, searched, |_, found| -> Result<(), Failure> {
        let (n, buf) = found?;
        total += n;
        if !buf.is_empty() {
            out.write_all(&buf)?;
            out.flush()?;
        }
        Ok(())
    })?;
    out.flush()?;
    Ok(if total > 0 { exit::OK } else { exit::FINDING })
}

/// How a session is searched and its hits printed.
struct How<'p> {
    scope: Scope,
    /// The shortcut of a fixed-string search, when it is exact for this one.
    prefilter: Option<&'p Prefilter>,
    json: bool,
    raw: bool,
    /// The session's start (its login), from which offsets count as in `show`.
    origin_us: i64,
}

/// The text around a hit: typed input with a visible mark between lines, output as it is.
fn context_text(h: &Hit) -> String {
    if h.stream != "input" {
        return escape_bytes(&h.context);
    }
    h.context
        .split(|b| *b == b'\r' || *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(escape_bytes)
        .collect::<Vec<_>>()
        .join(" ⏎ ")
}

fn search_session(
    session: &SessionRef,
    regex: &Regex,
    how: &How<'_>,
    out: &mut dyn Write,
) -> Result<u64, Failure> {
    let (scope, json) = (how.scope, how.json);
    let files = session_files(&session.dir)
        .map_err(|e| Failure::error(format!("{}: {e}", session.dir.display())))?;
    if let Scope::Audit { execs, connects } = scope {
        return search_audit(session, regex, how, (execs, connects), files, out);
    }
    let mut report = |rf: &RecordFile, h: Hit| -> std::io::Result<()> {
        let name = &rf.name;
        let base = rf.start_us.unwrap_or(0);
        let at_us = base + h.off_us as i64;
        let time = crate::eventtext::timeline_time(at_us);
        let offset_us = at_us - how.origin_us;
        if json {
            let v = json!({
                "session": session.id, "file": name, "stream": h.stream,
                "offset_s": offset_us as f64 / 1e6,
                "channel_offset_s": h.off_us as f64 / 1e6, "time": time,
                "match": String::from_utf8_lossy(&h.text), "context": String::from_utf8_lossy(&h.context),
            });
            serde_json::to_writer(&mut *out, &v)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{}/{}  {:<24} {:>12}  {:<7} {}",
                session.id,
                name.trim_end_matches(".jsonl"),
                time,
                crate::timespec::format_offset(offset_us),
                h.stream,
                context_text(&h)
            )?;
        }
        out.flush()
    };
    let mut unreadable = |path: &std::path::Path, e: std::io::Error| {
        eprintln!("sessrec search: {}: {e}", path.display());
    };
    let searched = search_records_with(
        files,
        regex,
        how.prefilter,
        scope,
        how.raw,
        &mut report,
        &mut unreadable,
    );
    match searched {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure {
            code: exit::OK,
            message: String::new(),
        }),
        Err(e) => Err(Failure::error(e.to_string())),
    }
}

/// Searches the channel and sudo files of a session (from [`session_files`]) for `regex`,
/// calling `report` with each hit and the file it is in (its `off_us` counts from the file's
/// start). A file that cannot be read goes to `unreadable` and the search goes on; an error
/// from `report` stops the search and is returned.
pub fn search_records(
    files: Vec<(FileKind, String, std::path::PathBuf)>,
    regex: &Regex,
    scope: Scope,
    raw: bool,
    report: &mut dyn FnMut(&RecordFile, Hit) -> std::io::Result<()>,
    unreadable: &mut dyn FnMut(&std::path::Path, std::io::Error),
) -> std::io::Result<u64> {
    search_records_with(files, regex, None, scope, raw, report, unreadable)
}

/// Files up to this size are read whole, once; longer ones are streamed.
const WHOLE_FILE: usize = 64 << 20;
/// A thread's content buffer is kept for the next session up to this size.
const KEEP_BUFFER: usize = 4 << 20;

thread_local! {
    /// The content of the file being searched: one buffer per thread, file after file.
    static CONTENT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// [`search_records`], with the shortcut of a fixed-string search: channel files that
/// `prefilter` rules out are not searched further.
pub fn search_records_with(
    files: Vec<(FileKind, String, std::path::PathBuf)>,
    regex: &Regex,
    prefilter: Option<&Prefilter>,
    scope: Scope,
    raw: bool,
    report: &mut dyn FnMut(&RecordFile, Hit) -> std::io::Result<()>,
    unreadable: &mut dyn FnMut(&std::path::Path, std::io::Error),
) -> std::io::Result<u64> {
    let mut content = CONTENT.with(|c| c.take());
    let mut total = 0;
    let result = (|| {
        for (kind, name, path) in files {
            if matches!(kind, FileKind::Session | FileKind::Audit) {
                continue;
            }
            // Read once, whole: its first line and its lines come from the same bytes. A file
            // that is too long, or fails to read, is streamed as it always was (hits before a
            // read error are still reported).
            let whole = matches!(
                sessrec_core::stored::read_bounded(&path, WHOLE_FILE, &mut content),
                Ok(true)
            );
            if whole
                && matches!(kind, FileKind::Channel(_))
                && prefilter.is_some_and(|p| !p.may_match(&content))
            {
                continue;
            }
            let rf = if whole {
                RecordFile::from_content(kind, name, path.clone(), &content)
            } else {
                RecordFile::open(kind, name, path.clone())
            };
            let pty = !rf.is_pipe() && matches!(kind, FileKind::Channel(_));
            // The reporter's own error, told apart from a read error of the file.
            let mut stopped: Option<std::io::Error> = None;
            let mut report_one = |h: Hit| -> std::io::Result<()> {
                report(&rf, h).map_err(|e| {
                    let kind = e.kind();
                    stopped = Some(e);
                    std::io::Error::new(kind, "stopped by the reader of the hits")
                })
            };
            // The channel's own command (exec channels) and a sudo session's command line
            // count as commands the user ran.
            let command_hits = match (&rf.command, kind, scope) {
                (Some(c), FileKind::Channel(_) | FileKind::Sudo, Scope::Both | Scope::Commands) => {
                    search_command(regex, c)
                }
                _ => Vec::new(),
            };
            let searched = command_hits
                .into_iter()
                .try_fold(0u64, |n, h| report_one(h).map(|()| n + 1))
                .and_then(|n| {
                    Ok(n + if whole {
                        search_content(&content, regex, scope, pty, raw, &mut report_one)?
                    } else {
                        search_file(&path, regex, scope, pty, raw, &mut report_one)?
                    })
                });
            match searched {
                Ok(n) => total += n,
                Err(e) => match stopped.take() {
                    Some(e) => return Err(e),
                    None => unreadable(&path, e),
                },
            }
        }
        Ok(total)
    })();
    if content.capacity() <= KEEP_BUFFER {
        CONTENT.with(|c| c.replace(content));
    }
    result
}

/// `--exec` / `--connect`: matches in the kernel's record of the session.
fn search_audit(
    session: &SessionRef,
    regex: &Regex,
    how: &How<'_>,
    (execs, connects): (bool, bool),
    files: Vec<(FileKind, String, std::path::PathBuf)>,
    out: &mut dyn Write,
) -> Result<u64, Failure> {
    let mut total = 0;
    for (kind, name, path) in files {
        if kind != FileKind::Audit {
            continue;
        }
        let rf = RecordFile::open(kind, name.clone(), path);
        for h in crate::execs::search(&rf, regex, execs, connects) {
            total += 1;
            let time = crate::eventtext::timeline_time(h.time_us);
            let offset_us = h.time_us - how.origin_us;
            if how.json {
                let v = json!({
                    "session": session.id, "file": name, "channel": h.channel,
                    "stream": h.stream, "offset_s": offset_us as f64 / 1e6, "time": time,
                    "context": h.text,
                });
                serde_json::to_writer(&mut *out, &v).map_err(|e| Failure::error(e.to_string()))?;
                writeln!(out)?;
            } else {
                writeln!(
                    out,
                    "{}/{}  {:<24} {:>12}  {:<7} {}",
                    session.id,
                    h.channel,
                    time,
                    crate::timespec::format_offset(offset_us),
                    h.stream,
                    h.text
                )?;
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(pattern: &str, chunks: &[&[u8]]) -> Vec<Hit> {
        let re = Regex::new(pattern).unwrap();
        let mut s = StreamSearch::new(&re, "output");
        let mut h = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            s.push(i as u64 * 1000, c, &mut h);
        }
        s.finish(&mut h);
        h
    }

    #[test]
    fn finds_text_split_across_frames_and_escapes() {
        let h = hits("secret-token", &[b"xx secr", b"et-to", b"ken yy"]);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].off_us, 0);
        let h = hits(
            "hello world",
            &[b"\x1b[1mhello\x1b[0m wor", b"\x1b]0;t\x07ld"],
        );
        assert_eq!(h.len(), 1);
        let h = hits(r"\x1b\[31m", &[b"a\x1b[31mred"]);
        assert_eq!(h.len(), 1, "raw bytes are searched too");
    }

    #[test]
    fn matches_across_batches_once() {
        let mut big = vec![b'.'; BATCH - 3];
        big.extend_from_slice(b"NEE");
        let h = hits("NEEDLE", &[&big, b"DLE", &vec![b'-'; BATCH], b"NEEDLE"]);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].off_us, 0);
        assert_eq!(h[1].off_us, 3000);
    }

    #[test]
    fn text_filter_handles_split_sequences() {
        let mut t = TextOnly::default();
        let mut out = Vec::new();
        t.push(b"a\x1b[3", &mut out);
        t.push(b"1mb\x1b]52;c;", &mut out);
        t.push(b"x\x1b\\c\r\n", &mut out);
        assert_eq!(out, b"abc\n");
    }
}
