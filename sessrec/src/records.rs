//! A session's record files read as streams of frames and events, with times resolved.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sessrec_core::command::{self, RecordedCommand};
use sessrec_core::exec_args::ExecArgs;
use sessrec_core::reader::{self, decode_frames, Line};
use sessrec_core::record::Stream;
use sessrec_core::schema::{io_fields, ChannelStart, Event, EventBody, Io, SudoStart, TYPE_KEY};

use crate::eventtext::quoted_args;
use crate::store::{session_files, FileKind, SessionRef};
use crate::summary::{get_str, time_us};

/// One thing a record file holds, in file order.
#[derive(Debug, Clone)]
pub enum Item {
    /// I/O; `off_us` is from the file's start event (`channel.start` / `sudo.start`).
    Frame {
        off_us: u64,
        stream: Stream,
        data: Vec<u8>,
        echo_off: bool,
    },
    /// Any other line: typed, and as written (for views that show every field).
    Event {
        line_no: u64,
        time_us: Option<i64>,
        event: Box<Event>,
        value: Map<String, Value>,
    },
    /// A line that could not be read; reported, never fatal.
    Damaged { line_no: u64, problem: String },
}

/// A record file and what its first line says about it.
#[derive(Debug, Clone)]
pub struct RecordFile {
    pub kind: FileKind,
    pub name: String,
    pub path: PathBuf,
    /// The first line (`login`, `channel.start`, `sudo.start`), when readable.
    pub start: Option<Map<String, Value>>,
    /// The first line's event, typed.
    pub start_event: Option<Event>,
    /// UTC µs of the first line.
    pub start_us: Option<i64>,
    /// The command of the start line, whole (with its `command.part` lines), when it has one:
    /// a channel's command, or the arguments of a sudo command as one command line.
    pub command: Option<RecordedCommand>,
    /// The arguments of the sudo command a `sudo.start` file begins with, whole.
    pub sudo_args: Option<ExecArgs>,
}

/// The arguments of the sudo command a `sudo.start` file begins with, whole; `None` for a
/// record from before the arguments were kept or a file that cannot be read.
fn sudo_args(path: &Path) -> Option<ExecArgs> {
    let (first, following) =
        command::read_first_with_parts(path, sessrec_core::schema::sudo_start::cmdline).ok()??;
    sessrec_core::exec_args::read(&first, &following)
}

impl RecordFile {
    pub fn open(kind: FileKind, name: String, path: PathBuf) -> Self {
        let first = crate::summary::first_line_of(&path).ok();
        Self::with_first_line(kind, name, path, first.and_then(Result::ok))
    }

    /// [`RecordFile::open`] of a file whose content was read already (whole, or at least its
    /// first line).
    pub fn from_content(kind: FileKind, name: String, path: PathBuf, content: &[u8]) -> Self {
        let first = crate::summary::first_line(&mut &content[..]).ok();
        Self::with_first_line(kind, name, path, first.and_then(Result::ok))
    }

    fn with_first_line(
        kind: FileKind,
        name: String,
        path: PathBuf,
        first: Option<Map<String, Value>>,
    ) -> Self {
        let start = match first {
            Some(m) => {
                // I/O offsets count from the moment `start_time` names (taken with the
                // monotonic start), which precedes the line's own `time` by the set-up.
                let event = typed(&m);
                let t = match &event {
                    Event::ChannelStart(s) => s.start_time.as_deref(),
                    _ => None,
                }
                .and_then(crate::timespec::parse_rfc3339)
                .or_else(|| event_time(&event, &m));
                (Some(m), Some(event), t)
            }
            _ => (None, None, None),
        };
        let (start, start_event, start_us) = start;
        let sudo_args = match start_event {
            Some(Event::SudoStart(_)) => sudo_args(&path),
            _ => None,
        };
        // A sudo command's arguments as one command line (see [`quoted_args`]).
        let command = if let Some(args) = &sudo_args {
            Some(RecordedCommand {
                bytes: quoted_args(&args.lossy()).into_bytes(),
                completeness: args.completeness.clone(),
            })
        } else {
            start.as_ref().and_then(|m| {
                // Continuation lines are read only for the rare command that has them.
                let has_parts = matches!(
                    &start_event,
                    Some(Event::ChannelStart(ChannelStart {
                        command_parts: Some(_),
                        ..
                    }))
                );
                if has_parts && matches!(kind, FileKind::Channel(_)) {
                    command::read_channel_command(&path).ok().flatten()
                } else {
                    command::assemble(m, [])
                }
            })
        };
        RecordFile {
            kind,
            name,
            path,
            start,
            start_event,
            start_us,
            command,
            sudo_args,
        }
    }

    /// The `channel.start` the file begins with.
    pub fn channel_start(&self) -> Option<&ChannelStart> {
        match &self.start_event {
            Some(Event::ChannelStart(s)) => Some(s),
            _ => None,
        }
    }

    /// The `sudo.start` the file begins with.
    pub fn sudo_start(&self) -> Option<&SudoStart> {
        match &self.start_event {
            Some(Event::SudoStart(s)) => Some(s),
            _ => None,
        }
    }

    /// Whether the channel ran over pipes (`mode` `pipe`) rather than a terminal.
    pub fn is_pipe(&self) -> bool {
        self.channel_start()
            .and_then(|s| s.mode.as_deref())
            .is_some_and(|m| m == "pipe")
    }

    /// The command as text (invalid UTF-8 as U+FFFD; not yet escaped), whole; empty when none.
    pub fn command_text(&self) -> String {
        self.command
            .as_ref()
            .map(|c| c.text().into_owned())
            .unwrap_or_default()
    }

    /// A header field of the first line (`user`, `actor`, `host`, `time`).
    pub fn field(&self, key: &str) -> &str {
        self.start.as_ref().map(|m| get_str(m, key)).unwrap_or("")
    }

    /// Whether this file carries terminal output worth replaying.
    pub fn has_io(&self) -> bool {
        !matches!(self.kind, FileKind::Session | FileKind::Audit)
    }

    /// Terminal geometry at the start (`cols`/`rows`, as views emulate it).
    pub fn geometry(&self) -> (u16, u16) {
        let (cols, rows) = match &self.start_event {
            Some(Event::ChannelStart(s)) => (s.cols.map(u32::from), s.rows.map(u32::from)),
            Some(Event::SudoStart(s)) => (s.cols, s.rows),
            _ => (None, None),
        };
        crate::geometry::emulated(cols.unwrap_or(80), rows.unwrap_or(24))
    }

    /// Streams the file's items.
    pub fn items(&self) -> std::io::Result<impl Iterator<Item = Item>> {
        let lines = reader::lines(&self.path)?;
        Ok(lines.flat_map(|r| match r {
            Ok(line) => line_items(line),
            Err(e) => vec![Item::Damaged {
                line_no: e.line_no,
                problem: e.problem,
            }],
        }))
    }
}

impl RecordFile {
    /// Streams the items of the lines that start in the byte range `[from, to)`: a range that
    /// starts inside a line begins with the next one. Line numbers count from the range's
    /// first line (the range is read without what precedes it).
    pub fn items_in(
        &self,
        from: u64,
        to: u64,
    ) -> std::io::Result<impl Iterator<Item = Item> + use<>> {
        let mut reader = std::io::BufReader::with_capacity(64 * 1024, self.open_at_line(from)?);
        let mut pos = line_start_at_or_after(&mut reader, from)?;
        let mut line_no = 0u64;
        let mut raw = Vec::new();
        Ok(std::iter::from_fn(move || {
            if pos >= to {
                return None;
            }
            raw.clear();
            let n = read_line_bounded(&mut reader, &mut raw).ok()?;
            if n == 0 || raw.last() != Some(&b'\n') {
                // The end, a line still being written (not part of the range yet), or a line
                // longer than any writer writes (reported by `verify`; the piece ends there).
                return None;
            }
            pos += n as u64;
            line_no += 1;
            Some(match serde_json::from_slice::<Value>(&raw) {
                Ok(Value::Object(value)) => line_items(Line {
                    line_no,
                    raw: std::mem::take(&mut raw),
                    value,
                }),
                _ => vec![Item::Damaged {
                    line_no,
                    problem: "not a JSON object".into(),
                }],
            })
        })
        .flatten())
    }

    /// The start of the first line that happened at or after `off_us` (µs from the file's
    /// start), found by bisecting the file on its lines' own times, which grow through a
    /// record; the content's length when no line is that late. A few reads, whatever the size
    /// (a compressed file, a closed session's, is read through once instead).
    pub fn byte_at_offset(&self, off_us: u64) -> std::io::Result<u64> {
        if sessrec_core::stored::is_compressed(&self.path) {
            return self.scan_for_offset(off_us);
        }
        let len = std::fs::metadata(&self.path)?.len();
        let (mut lo, mut hi) = (0u64, len);
        while hi - lo > 16 * 1024 {
            let mid = lo + (hi - lo) / 2;
            match self.offset_at(mid)? {
                Some((t, start)) if start < hi && t < off_us => lo = start + 1,
                _ => hi = mid,
            }
        }
        // The last stretch line by line (and on, should the bisection have stopped short).
        let mut at = lo;
        loop {
            match self.offset_at(at)? {
                Some((t, start)) if t >= off_us => return Ok(start),
                Some((_, start)) => at = start + 1,
                None => return Ok(len),
            }
        }
    }

    /// [`RecordFile::byte_at_offset`] by reading the file from its start.
    fn scan_for_offset(&self, off_us: u64) -> std::io::Result<u64> {
        let mut reader = std::io::BufReader::new(sessrec_core::stored::open(&self.path)?);
        let mut raw = Vec::new();
        let mut pos = 0u64;
        loop {
            raw.clear();
            let n = read_line_bounded(&mut reader, &mut raw)?;
            if n == 0 || raw.last() != Some(&b'\n') {
                return Ok(pos);
            }
            if self.line_offset(&raw).is_some_and(|t| t >= off_us) {
                return Ok(pos);
            }
            pos += n as u64;
        }
    }

    /// When a line happened, in µs from the file's start (`None` for a line without a time).
    fn line_offset(&self, raw: &[u8]) -> Option<u64> {
        let Ok(Value::Object(value)) = serde_json::from_slice::<Value>(raw) else {
            return None;
        };
        let line = Line {
            line_no: 0,
            raw: Vec::new(),
            value,
        };
        line_items(line).into_iter().find_map(|item| match item {
            Item::Frame { off_us, .. } => Some(off_us),
            Item::Event { time_us, event, .. } => {
                event.off().or_else(|| event_offset(self, time_us))
            }
            Item::Damaged { .. } => None,
        })
    }

    /// The file's content positioned one byte before `from` (or at 0), for
    /// [`line_start_at_or_after`]: a plain file by seeking, a compressed one (a closed
    /// session's) by reading through what precedes.
    fn open_at_line(&self, from: u64) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        use std::io::{Read, Seek};
        let skip = from.saturating_sub(1);
        match sessrec_core::stored::open(&self.path)? {
            sessrec_core::stored::Stored::Plain(mut f) => {
                f.seek(std::io::SeekFrom::Start(skip))?;
                Ok(Box::new(f))
            }
            sessrec_core::stored::Stored::Compressed(mut d) => {
                std::io::copy(&mut (&mut *d).take(skip), &mut std::io::sink())?;
                Ok(Box::new(d))
            }
        }
    }

    /// When the line starting at byte `at` (or the next line) happened: µs from the file's
    /// start, and the byte where that line starts. `None` past the last complete line.
    pub fn offset_at(&self, at: u64) -> std::io::Result<Option<(u64, u64)>> {
        let mut reader = std::io::BufReader::new(self.open_at_line(at)?);
        let mut pos = line_start_at_or_after(&mut reader, at)?;
        let mut raw = Vec::new();
        loop {
            raw.clear();
            let n = read_line_bounded(&mut reader, &mut raw)?;
            if n == 0 || raw.last() != Some(&b'\n') {
                return Ok(None);
            }
            let start = pos;
            pos += n as u64;
            if let Some(off) = self.line_offset(&raw) {
                return Ok(Some((off, start)));
            }
        }
    }
}

/// Skips from one byte before `from` to the start of the first line at or after `from`;
/// returns that position.
fn line_start_at_or_after(reader: &mut impl std::io::BufRead, from: u64) -> std::io::Result<u64> {
    if from == 0 {
        return Ok(0);
    }
    // Skipped without keeping it: the line may be long.
    let n = reader.skip_until(b'\n')?;
    Ok(from - 1 + n as u64)
}

/// One line into `raw`, at most [`reader::MAX_READ_LINE`] bytes of it (then without its `\n`).
fn read_line_bounded(
    reader: &mut impl std::io::BufRead,
    raw: &mut Vec<u8>,
) -> std::io::Result<usize> {
    use std::io::{BufRead, Read};
    reader
        .by_ref()
        .take(reader::MAX_READ_LINE as u64 + 1)
        .read_until(b'\n', raw)
}

/// Types a line as read.
fn typed(m: &Map<String, Value>) -> Event {
    let kind = m.get(TYPE_KEY).and_then(Value::as_str).unwrap_or_default();
    Event::from_fields(kind, m.clone())
}

fn line_items(line: Line) -> Vec<Item> {
    if line.kind() == <Io as EventBody>::TYPE {
        // Input typed while the terminal did not echo (recorded, flagged by the recorder).
        let echo_off = line
            .value
            .get(io_fields::echo_off)
            .and_then(Value::as_bool)
            .unwrap_or(false);
        decode_frames(&line)
            .into_iter()
            .map(|f| Item::Frame {
                off_us: f.offset_us,
                stream: f.stream,
                data: f.data,
                echo_off,
            })
            .collect()
    } else {
        let event = Box::new(typed(&line.value));
        let time_us = event_time(&event, &line.value);
        vec![Item::Event {
            line_no: line.line_no,
            time_us,
            event,
            value: line.value,
        }]
    }
}

/// When an event happened: `at` where the writer is not the witness (the sudo importer writes
/// long after the fact), else the line's `time`.
pub fn event_time(event: &Event, line: &Map<String, Value>) -> Option<i64> {
    event
        .at()
        .and_then(crate::timespec::parse_rfc3339)
        .or_else(|| time_us(line))
}

/// All record files of a session, in order (session, channels, sudo by start time).
pub fn session_record_files(session: &SessionRef) -> std::io::Result<Vec<RecordFile>> {
    let mut files: Vec<RecordFile> = session_files(&session.dir)?
        .into_iter()
        .map(|(kind, name, path)| RecordFile::open(kind, name, path))
        .collect();
    files.sort_by_key(|f| match f.kind {
        FileKind::Session => (0, 0, 0),
        FileKind::Channel(n) => (1, f.start_us.unwrap_or(i64::MAX), n as i64),
        FileKind::Sudo => (1, f.start_us.unwrap_or(i64::MAX), i64::MAX),
        FileKind::Audit => (2, 0, 0),
    });
    Ok(files)
}

/// The files a `SESSION[/CHANNEL]` argument names: one file, or every file with I/O in start
/// order (channels and sudo streams interleaved by time).
pub fn target_files(
    ctx_tree: &crate::store::Tree,
    arg: &str,
) -> Result<(SessionRef, Vec<RecordFile>), String> {
    let (session, channel) = crate::store::split_target(arg);
    let session = ctx_tree.resolve(&session)?;
    let files =
        session_record_files(&session).map_err(|e| format!("{}: {e}", session.dir.display()))?;
    let chosen: Vec<RecordFile> = match channel {
        Some(name) => {
            let f = files.into_iter().find(|f| f.name == name).ok_or_else(|| {
                format!(
                    "session {} has no {}",
                    session.id,
                    crate::escape::escape_control(&name)
                )
            })?;
            vec![f]
        }
        None => files.into_iter().filter(RecordFile::has_io).collect(),
    };
    if chosen.is_empty() {
        return Err(format!("session {} has no channel records", session.id));
    }
    Ok((session, chosen))
}

/// Offset of an event from its file's start, in µs (from its `time`).
pub fn event_offset(file: &RecordFile, time_us: Option<i64>) -> Option<u64> {
    Some((time_us? - file.start_us?).max(0) as u64)
}

pub fn path_display(p: &Path) -> String {
    crate::escape::escape_control(&p.display().to_string())
}
