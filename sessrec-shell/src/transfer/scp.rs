//! Legacy scp (rcp) protocol decoder, as spoken by `scp -O` with `scp -t` / `scp -f`.
//!
//! The source (client for `-t`, server for `-f`) sends control lines (`C`/`D`/`E`/`T`, or a
//! `\x01`/`\x02` error line) and file payloads; the sink answers each with `\0` or an error
//! line. The decoder reads both streams exactly as OpenSSH's scp does (2047-byte control and
//! reply lines, the same field checks), so a peer cannot make it see a different sequence of
//! files than the real program does. Payloads are skipped by their announced size.
//!
//! Whether a payload follows a `C` line depends on the sink's reply, which may arrive after
//! the source has already sent more (nothing forces a source to wait). Bytes received ahead of
//! the reply they depend on are held, up to [`MAX_AHEAD_BYTES`]; a real OpenSSH peer always
//! waits, so in practice nothing is held.
#![forbid(unsafe_code)]

use super::event::{octal_mode, Direction, Protocol, TransferEvent, WireField, WireText};

/// OpenSSH reads control lines and replies into 2048-byte buffers: at most 2047 bytes each.
const MAX_LINE_BYTES: usize = 2047;
/// Bytes one side may run ahead of the other before decoding stops.
pub const MAX_AHEAD_BYTES: usize = 1024 * 1024;

/// A reply (`response()` in scp.c): `\0`, or a message ended by a newline.
#[derive(Debug)]
enum Reply {
    Ok,
    /// `\x01` (or any other byte): an error; the peer carries on.
    Error(Vec<u8>),
    /// `\x02`: a fatal error; the peer exits.
    Fatal(Vec<u8>),
}

/// Incrementally reads one reply.
#[derive(Default)]
struct ReplyReader {
    first: Option<u8>,
    text: Vec<u8>,
}

impl ReplyReader {
    /// Consumes bytes until a reply is complete; returns (consumed, reply if complete).
    fn feed(&mut self, data: &[u8]) -> (usize, Option<Reply>) {
        let mut used = 0;
        let first = match self.first {
            Some(b) => b,
            None => {
                let Some(&b) = data.first() else {
                    return (0, None);
                };
                used = 1;
                if b == 0 {
                    return (1, Some(Reply::Ok));
                }
                self.first = Some(b);
                // scp.c keeps an unknown reply byte as the message's first character.
                if b != 1 && b != 2 {
                    self.text.push(b);
                }
                b
            }
        };
        for &b in &data[used..] {
            used += 1;
            self.text.push(b);
            if b == b'\n' || self.text.len() >= MAX_LINE_BYTES {
                let mut text = std::mem::take(&mut self.text);
                if text.last() == Some(&b'\n') {
                    text.pop();
                }
                self.first = None;
                let reply = if first == 2 {
                    Reply::Fatal(text)
                } else {
                    Reply::Error(text)
                };
                return (used, Some(reply));
            }
        }
        (used, None)
    }
}

/// What the sink's next reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Start,
    Times,
    File,
    Dir,
    EndDir,
    FileDone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The source is expected to send a control line.
    Control,
    /// File data from the source, skipped.
    Payload { remaining: u64 },
    /// The source's status byte (or error line) after a file's data.
    Trailing,
    /// A reply from the sink is expected.
    Reply(Awaiting),
    /// A side has exited (or decoding gave up); bytes are only counted.
    Done,
}

struct FileEntry {
    name: Vec<u8>,
    mode: u32,
    size: u64,
    mtime: Option<u64>,
    started_us: u64,
    transferred: u64,
    source_error: Option<Vec<u8>>,
}

/// The decoder for one legacy scp channel.
pub struct ScpDecoder {
    direction: Direction,
    path: WireText,
    recursive: bool,
    state: State,
    line: Vec<u8>,
    first_line: bool,
    source_reply: ReplyReader,
    sink_reply: ReplyReader,
    source_queue: Vec<u8>,
    sink_queue: Vec<u8>,
    dirs: Vec<Vec<u8>>,
    times: Option<u64>,
    current: Option<FileEntry>,
    current_dir: Option<(Vec<u8>, u32, u64)>,
    source_bytes: u64,
    sink_bytes: u64,
    stopped: bool,
    events: Vec<TransferEvent>,
}

impl ScpDecoder {
    /// `path` is the path argument of `scp -t|-f`; `recursive` whether `-r` was given.
    pub fn new(direction: Direction, path: &[u8], recursive: bool) -> Self {
        ScpDecoder {
            direction,
            path: WireText::path(path),
            recursive,
            state: State::Reply(Awaiting::Start),
            line: Vec::new(),
            first_line: true,
            source_reply: ReplyReader::default(),
            sink_reply: ReplyReader::default(),
            source_queue: Vec::new(),
            sink_queue: Vec::new(),
            dirs: Vec::new(),
            times: None,
            current: None,
            current_dir: None,
            source_bytes: 0,
            sink_bytes: 0,
            stopped: false,
            events: Vec::new(),
        }
    }

    pub fn client_to_server(&mut self, now_us: u64, bytes: &[u8]) {
        match self.direction {
            Direction::Upload => self.on_source_bytes(now_us, bytes),
            Direction::Download => self.on_sink_bytes(now_us, bytes),
        }
    }

    pub fn server_to_client(&mut self, now_us: u64, bytes: &[u8]) {
        match self.direction {
            Direction::Upload => self.on_sink_bytes(now_us, bytes),
            Direction::Download => self.on_source_bytes(now_us, bytes),
        }
    }

    pub fn take_events(&mut self) -> Vec<TransferEvent> {
        std::mem::take(&mut self.events)
    }

    /// Server→client bytes coming next that are file data and need only be counted: in a
    /// download the server is the source, and once the sink has accepted a `C` line the next
    /// `size` bytes are that file's payload. Zero while source bytes are held.
    pub fn server_to_client_skippable(&self) -> usize {
        match self.state {
            State::Payload { remaining }
                if self.direction == Direction::Download && self.source_queue.is_empty() =>
            {
                usize::try_from(remaining).unwrap_or(usize::MAX)
            }
            _ => 0,
        }
    }

    /// `n` (at most [`Self::server_to_client_skippable`]) payload bytes went by unseen.
    pub fn server_to_client_skipped(&mut self, now_us: u64, n: usize) {
        if self.server_to_client_skippable() < n {
            // Not what the relay is allowed to do; counted, and decoding gives up honestly.
            self.source_bytes += n as u64;
            if self.state != State::Done {
                self.give_up(now_us, "payload skipped past the end of a file");
            }
            return;
        }
        self.source_bytes += n as u64;
        self.take_payload(n as u64);
    }

    /// Counts `n` (at most what remains) bytes of the current file's payload.
    fn take_payload(&mut self, n: u64) {
        let State::Payload { remaining } = self.state else {
            return;
        };
        if let Some(f) = self.current.as_mut() {
            f.transferred += n;
        }
        self.state = if remaining == n {
            State::Trailing
        } else {
            State::Payload {
                remaining: remaining - n,
            }
        };
    }

    pub fn stopped(&self) -> bool {
        self.stopped
    }

    #[cfg(test)]
    pub fn buffered_bytes(&self) -> usize {
        self.source_queue.capacity() + self.sink_queue.capacity() + self.line.capacity()
    }

    /// The channel ended: a file still in flight is reported as incomplete.
    pub fn finish(&mut self, now_us: u64) {
        if let Some(file) = self.current.take() {
            self.emit_file(now_us, file, "incomplete", None);
        }
        if let Some((name, mode, started_us)) = self.current_dir.take() {
            self.emit_dir(&name, mode, started_us, "incomplete", None);
        }
        self.state = State::Done;
    }

    fn on_source_bytes(&mut self, now_us: u64, bytes: &[u8]) {
        self.source_bytes += bytes.len() as u64;
        if self.state == State::Done {
            return;
        }
        if self.source_queue.is_empty() {
            let used = self.run_source(now_us, bytes);
            self.source_queue.extend_from_slice(&bytes[used..]);
        } else {
            self.source_queue.extend_from_slice(bytes);
        }
        self.pump(now_us);
    }

    fn on_sink_bytes(&mut self, now_us: u64, bytes: &[u8]) {
        self.sink_bytes += bytes.len() as u64;
        if self.state == State::Done {
            return;
        }
        self.sink_queue.extend_from_slice(bytes);
        self.pump(now_us);
    }

    /// Alternates between the two held queues until neither can advance.
    fn pump(&mut self, now_us: u64) {
        loop {
            let progressed = match self.state {
                State::Done => break,
                State::Reply(_) => {
                    let queue = std::mem::take(&mut self.sink_queue);
                    let used = self.run_sink(now_us, &queue);
                    self.sink_queue = queue;
                    self.sink_queue.drain(..used);
                    used > 0
                }
                _ => {
                    let queue = std::mem::take(&mut self.source_queue);
                    let used = self.run_source(now_us, &queue);
                    self.source_queue = queue;
                    self.source_queue.drain(..used);
                    used > 0
                }
            };
            if !progressed {
                break;
            }
        }
        if self.state == State::Done {
            self.source_queue = Vec::new();
            self.sink_queue = Vec::new();
        } else if self.source_queue.len() + self.sink_queue.len() > MAX_AHEAD_BYTES {
            self.give_up(now_us, "one side ran too far ahead of the other's replies");
        }
        if self.source_queue.is_empty() && self.source_queue.capacity() > 64 * 1024 {
            self.source_queue = Vec::new();
        }
    }

    fn give_up(&mut self, now_us: u64, reason: &str) {
        self.finish(now_us);
        let mut ev = TransferEvent::new(Protocol::Scp, "decode_stopped");
        ev.set_text(WireField::Reason, reason.as_bytes());
        let (from_client, to_client) = match self.direction {
            Direction::Upload => (self.source_bytes, self.sink_bytes),
            Direction::Download => (self.sink_bytes, self.source_bytes),
        };
        ev.bytes_from_client = Some(from_client);
        ev.bytes_to_client = Some(to_client);
        ev.at_us = Some(now_us);
        self.events.push(ev);
        self.stopped = true;
        self.source_queue = Vec::new();
        self.sink_queue = Vec::new();
    }

    /// Consumes source bytes while the state expects them; returns how many were used.
    fn run_source(&mut self, now_us: u64, data: &[u8]) -> usize {
        let mut used = 0;
        while used < data.len() {
            match self.state {
                State::Control => {
                    let rest = &data[used..];
                    if self.line.is_empty() && rest[0] == b'\n' {
                        used += 1;
                        self.protocol_error(b"unexpected <newline>");
                        continue;
                    }
                    let room = MAX_LINE_BYTES - self.line.len();
                    let take = match rest.iter().take(room).position(|&b| b == b'\n') {
                        Some(i) => i + 1,
                        None => rest.len().min(room),
                    };
                    self.line.extend_from_slice(&rest[..take]);
                    used += take;
                    if self.line.last() == Some(&b'\n') || self.line.len() == MAX_LINE_BYTES {
                        let line = std::mem::take(&mut self.line);
                        self.control_line(now_us, line);
                    }
                }
                State::Payload { remaining } => {
                    let take = remaining.min((data.len() - used) as u64);
                    used += take as usize;
                    self.take_payload(take);
                }
                State::Trailing => {
                    let (n, reply) = self.source_reply.feed(&data[used..]);
                    used += n;
                    match reply {
                        None => {}
                        Some(Reply::Ok) => self.state = State::Reply(Awaiting::FileDone),
                        Some(Reply::Error(text)) => {
                            if let Some(f) = self.current.as_mut() {
                                f.source_error = Some(text);
                            }
                            self.state = State::Reply(Awaiting::FileDone);
                        }
                        Some(Reply::Fatal(text)) => {
                            if let Some(file) = self.current.take() {
                                self.emit_file(now_us, file, "error", Some(&text));
                            }
                            self.state = State::Done;
                        }
                    }
                }
                State::Reply(_) | State::Done => break,
            }
        }
        used
    }

    /// Consumes sink bytes while a reply is expected; returns how many were used.
    fn run_sink(&mut self, now_us: u64, data: &[u8]) -> usize {
        let mut used = 0;
        while used < data.len() {
            let State::Reply(awaiting) = self.state else {
                break;
            };
            let (n, reply) = self.sink_reply.feed(&data[used..]);
            used += n;
            if let Some(reply) = reply {
                self.on_reply(now_us, awaiting, reply);
            }
        }
        used
    }

    fn on_reply(&mut self, now_us: u64, awaiting: Awaiting, reply: Reply) {
        let (status, text) = match &reply {
            Reply::Ok => ("ok", None),
            Reply::Error(t) => ("error", Some(t.as_slice())),
            Reply::Fatal(t) => ("fatal", Some(t.as_slice())),
        };
        let ok = matches!(reply, Reply::Ok);
        match awaiting {
            Awaiting::Start | Awaiting::Times => {
                if !ok {
                    self.emit_error(status, text.unwrap_or_default());
                }
                if awaiting == Awaiting::Times && !ok {
                    self.times = None;
                }
                self.state = State::Control;
            }
            Awaiting::File => {
                let file = self.current.take();
                match (ok, file) {
                    (true, Some(file)) => {
                        self.state = if file.size == 0 {
                            State::Trailing
                        } else {
                            State::Payload {
                                remaining: file.size,
                            }
                        };
                        self.current = Some(file);
                    }
                    (_, file) => {
                        if let Some(file) = file {
                            self.emit_file(now_us, file, status, text);
                        }
                        self.state = State::Control;
                    }
                }
            }
            Awaiting::Dir => {
                if let Some((name, mode, started_us)) = self.current_dir.take() {
                    self.emit_dir(&name, mode, started_us, status, text);
                    if ok {
                        // The sink reads the directory in a new sink() call, with its own
                        // "first line" rule.
                        self.dirs.push(name);
                        self.first_line = true;
                    }
                }
                self.state = State::Control;
            }
            Awaiting::EndDir => {
                // At the top level an `E` ends the sink (scp.c returns from sink()).
                self.state = if self.dirs.pop().is_some() {
                    State::Control
                } else {
                    State::Done
                };
                if !ok {
                    self.emit_error(status, text.unwrap_or_default());
                }
            }
            Awaiting::FileDone => {
                if let Some(file) = self.current.take() {
                    let source_error = file.source_error.clone();
                    match (ok, source_error) {
                        (true, None) => self.emit_file(now_us, file, "ok", None),
                        (true, Some(err)) => self.emit_file(now_us, file, "error", Some(&err)),
                        (false, _) => self.emit_file(now_us, file, status, text),
                    }
                }
                self.state = State::Control;
            }
        }
        if matches!(reply, Reply::Fatal(_)) {
            self.state = State::Done;
        }
    }

    fn protocol_error(&mut self, why: &[u8]) {
        let mut text = b"protocol error: ".to_vec();
        text.extend_from_slice(why);
        self.emit_error("protocol_error", &text);
        self.state = State::Done;
    }

    /// One complete control line from the source, checked the way scp.c's sink() does:
    /// the first byte as read, the rest as a C string (up to a NUL, without the newline).
    fn control_line(&mut self, now_us: u64, line: Vec<u8>) {
        let first = std::mem::replace(&mut self.first_line, false);
        let lead = line[0];
        let mut text = &line[..line.iter().position(|&b| b == 0).unwrap_or(line.len())];
        match lead {
            1 | 2 => {
                let fatal = lead == 2;
                let message = text.get(1..).unwrap_or_default();
                self.emit_error(
                    if fatal { "fatal" } else { "error" },
                    message.strip_suffix(b"\n").unwrap_or(message),
                );
                if fatal {
                    self.state = State::Done;
                }
                return;
            }
            b'E' => {
                self.state = State::Reply(Awaiting::EndDir);
                return;
            }
            _ => {}
        }
        if let Some(stripped) = text.strip_suffix(b"\n") {
            text = stripped;
        }
        let line = text;
        match line.first().copied().unwrap_or(0) {
            b'T' => match parse_times(&line[1..]) {
                Some(mtime) => {
                    self.times = Some(mtime);
                    self.state = State::Reply(Awaiting::Times);
                }
                None => self.protocol_error(b"bad time record"),
            },
            kind @ (b'C' | b'D') => {
                let Some((mode, size, name)) = parse_entry(line) else {
                    return self.protocol_error(b"bad file record");
                };
                if name.is_empty() || name.contains(&b'/') || name == b"." || name == b".." {
                    let mut text = b"error: unexpected filename: ".to_vec();
                    text.extend_from_slice(name);
                    self.emit_error("protocol_error", &text);
                    self.state = State::Done;
                    return;
                }
                if kind == b'D' {
                    if self.direction == Direction::Upload && !self.recursive {
                        return self.protocol_error(b"received directory without -r");
                    }
                    self.times = None;
                    self.current_dir = Some((name.to_vec(), mode, now_us));
                    self.state = State::Reply(Awaiting::Dir);
                } else {
                    self.current = Some(FileEntry {
                        name: name.to_vec(),
                        mode,
                        size,
                        mtime: self.times.take(),
                        started_us: now_us,
                        transferred: 0,
                        source_error: None,
                    });
                    self.state = State::Reply(Awaiting::File);
                }
            }
            _ if first => {
                // What a shell printed instead of starting scp, or garbage: the sink exits.
                self.emit_error("error", line);
                self.state = State::Done;
            }
            _ => self.protocol_error(b"expected control record"),
        }
    }

    fn relative_name(&self, name: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for dir in &self.dirs {
            out.extend_from_slice(dir);
            out.push(b'/');
        }
        out.extend_from_slice(name);
        out
    }

    fn base_event(&self, op: &'static str) -> TransferEvent {
        let mut ev = TransferEvent::new(Protocol::Scp, op);
        ev.set_wire(WireField::Path, &self.path);
        ev.direction = Some(self.direction.as_str().to_owned());
        ev
    }

    fn emit_file(&mut self, now_us: u64, file: FileEntry, status: &str, text: Option<&[u8]>) {
        let mut ev = self.base_event("file");
        ev.set_path(WireField::Name, &self.relative_name(&file.name));
        ev.mode = Some(octal_mode(file.mode));
        ev.size = Some(file.size);
        match self.direction {
            Direction::Upload => ev.bytes_written = Some(file.transferred),
            Direction::Download => ev.bytes_read = Some(file.transferred),
        }
        ev.mtime = file.mtime;
        ev.status = Some(status.to_owned());
        if let Some(text) = text {
            ev.set_text(WireField::StatusText, text);
        }
        ev.started_us = Some(file.started_us);
        ev.duration_us = Some(now_us.saturating_sub(file.started_us));
        self.events.push(ev);
    }

    fn emit_dir(
        &mut self,
        name: &[u8],
        mode: u32,
        started_us: u64,
        status: &str,
        text: Option<&[u8]>,
    ) {
        let mut ev = self.base_event("dir");
        ev.set_path(WireField::Name, &self.relative_name(name));
        ev.mode = Some(octal_mode(mode));
        ev.status = Some(status.to_owned());
        if let Some(text) = text {
            ev.set_text(WireField::StatusText, text);
        }
        ev.started_us = Some(started_us);
        self.events.push(ev);
    }

    fn emit_error(&mut self, status: &str, text: &[u8]) {
        let mut ev = self.base_event("error");
        ev.status = Some(status.to_owned());
        ev.set_text(WireField::StatusText, text);
        self.events.push(ev);
    }
}

/// `<mtime> <mtime usec> <atime> <atime usec>` after the `T`; returns mtime.
fn parse_times(rest: &[u8]) -> Option<u64> {
    let fields: Vec<&[u8]> = rest.split(|&b| b == b' ').collect();
    if fields.len() != 4
        || fields
            .iter()
            .any(|f| f.is_empty() || !f.iter().all(u8::is_ascii_digit))
    {
        return None;
    }
    let usec_ok = |f: &[u8]| decimal(f).is_some_and(|v| v <= 999_999);
    if !usec_ok(fields[1]) || !usec_ok(fields[3]) {
        return None;
    }
    decimal(fields[0])
}

/// `C`/`D` + four octal digits + ` ` + decimal size + ` ` + name.
fn parse_entry(line: &[u8]) -> Option<(u32, u64, &[u8])> {
    let digits = line.get(1..5)?;
    if !digits.iter().all(|b| (b'0'..=b'7').contains(b)) || line.get(5) != Some(&b' ') {
        return None;
    }
    let mode = digits
        .iter()
        .fold(0u32, |m, b| (m << 3) | u32::from(b - b'0'));
    let rest = &line[6..];
    let size_len = rest.iter().position(|b| !b.is_ascii_digit())?;
    if size_len == 0 || rest[size_len] != b' ' {
        return None;
    }
    let size = decimal(&rest[..size_len]).filter(|&s| s <= i64::MAX as u64)?;
    Some((mode, size, &rest[size_len + 1..]))
}

fn decimal(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |v, &b| {
        v.checked_mul(10)?
            .checked_add(u64::from(b.wrapping_sub(b'0')))
            .filter(|_| b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn fields(events: &[TransferEvent]) -> Vec<Value> {
        events
            .iter()
            .map(|e| Value::Object(e.to_fields()))
            .collect()
    }

    #[test]
    fn an_upload_in_lockstep() {
        let mut d = ScpDecoder::new(Direction::Upload, b"/srv/in", false);
        d.server_to_client(1, b"\0");
        d.client_to_server(2, b"T1700000000 0 1700000001 0\n");
        d.server_to_client(3, b"\0");
        d.client_to_server(4, b"C0640 5 a.txt\n");
        d.server_to_client(5, b"\0");
        d.client_to_server(6, b"hel");
        d.client_to_server(7, b"lo\0");
        d.server_to_client(8, b"\0");
        assert_eq!(
            fields(&d.take_events()),
            vec![
                json!({"protocol":"scp","op":"file","path":"/srv/in","direction":"upload","name":"a.txt",
                "mode":"0640","size":5,"bytes_written":5,"mtime":1700000000u64,"status":"ok",
                "started_us":4,"duration_us":4})
            ]
        );
    }

    /// A download of one 10,000-byte file, its payload fed (`skip` false) or skipped unseen
    /// in two pieces as the relay splices it.
    fn download(skip: bool) -> Vec<Value> {
        let mut d = ScpDecoder::new(Direction::Download, b"/srv/out", false);
        d.client_to_server(1, b"\0");
        d.server_to_client(2, b"T1700000000 0 1700000001 0\n");
        d.client_to_server(3, b"\0");
        d.server_to_client(4, b"C0640 10000 a.bin\n");
        assert_eq!(
            d.server_to_client_skippable(),
            0,
            "before the sink takes the file"
        );
        d.client_to_server(5, b"\0");
        if skip {
            assert_eq!(d.server_to_client_skippable(), 10_000);
            d.server_to_client_skipped(6, 6_000);
            assert_eq!(d.server_to_client_skippable(), 4_000);
            d.server_to_client_skipped(7, 4_000);
        } else {
            d.server_to_client(6, &[7; 6_000]);
            d.server_to_client(7, &[7; 4_000]);
        }
        assert_eq!(d.server_to_client_skippable(), 0, "the status byte is read");
        d.server_to_client(8, b"\0");
        d.client_to_server(9, b"\0");
        d.finish(10);
        assert!(!d.stopped());
        fields(&d.take_events())
    }

    #[test]
    fn a_downloaded_payload_skipped_unseen_is_recorded_as_if_read() {
        let read = download(false);
        assert_eq!(
            read,
            vec![
                json!({"protocol":"scp","op":"file","path":"/srv/out","direction":"download","name":"a.bin",
                "mode":"0640","size":10000,"bytes_read":10000,"mtime":1700000000u64,"status":"ok",
                "started_us":4,"duration_us":5})
            ]
        );
        assert_eq!(download(true), read);
    }

    #[test]
    fn only_a_download_s_accepted_payload_is_skippable() {
        let mut up = ScpDecoder::new(Direction::Upload, b"/srv/in", false);
        up.server_to_client(1, b"\0");
        up.client_to_server(2, b"C0644 9000 a\n");
        up.server_to_client(3, b"\0");
        assert_eq!(
            up.server_to_client_skippable(),
            0,
            "upload payload comes from the client"
        );

        let mut down = ScpDecoder::new(Direction::Download, b"/srv/out", false);
        down.client_to_server(1, b"\0");
        down.server_to_client(2, b"C0644 9000 a\n");
        down.client_to_server(3, b"\x01scp: a: Permission denied\n");
        assert_eq!(
            down.server_to_client_skippable(),
            0,
            "a refused file has no payload"
        );
        down.server_to_client(4, b"C0644 9000 b\n");
        down.client_to_server(5, b"\0");
        assert_eq!(down.server_to_client_skippable(), 9000);
        // More than the file holds: never done by the relay; counted, and decoding stops.
        down.server_to_client_skipped(6, 9001);
        assert!(down.stopped());
        assert_eq!(down.server_to_client_skippable(), 0);
        let ev = fields(&down.take_events());
        assert_eq!(ev.last().unwrap()["op"], "decode_stopped", "{ev:?}");
        assert_eq!(
            ev.last().unwrap()["bytes_to_client"],
            2 * 13 + 9001,
            "{ev:?}"
        );
    }

    #[test]
    fn a_source_that_does_not_wait_is_read_as_the_sink_reads_it() {
        // The client sends everything at once; the sink refuses the first file, so what
        // follows its C line is the next control line, not payload.
        let mut d = ScpDecoder::new(Direction::Upload, b"/srv/in", false);
        d.client_to_server(1, b"C0644 6 x\nC0644 2 y\nok\0");
        d.server_to_client(2, b"\0\x01scp: /srv/in/x: Permission denied\n\0\0");
        let ev = fields(&d.take_events());
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(ev[0]["name"], "x");
        assert_eq!(ev[0]["status"], "error");
        assert_eq!(ev[0]["status_text"], "scp: /srv/in/x: Permission denied");
        assert_eq!(ev[0]["bytes_written"], 0);
        assert_eq!(ev[1]["name"], "y");
        assert_eq!(ev[1]["status"], "ok");
        assert_eq!(ev[1]["bytes_written"], 2);
    }

    #[test]
    fn long_control_lines_split_where_scp_splits_them() {
        let mut d = ScpDecoder::new(Direction::Upload, b"/srv/in", false);
        d.server_to_client(1, b"\0");
        let mut line = b"C0644 5 ".to_vec();
        line.extend(vec![b'a'; MAX_LINE_BYTES - 8]);
        line.extend_from_slice(b"\n");
        d.client_to_server(2, &line);
        // The sink took 2047 bytes as the line and answers for that name; the `\n` that
        // follows is then a control line of its own: a protocol error that ends the sink.
        d.server_to_client(3, b"\x01scp: name too long\n");
        let ev = fields(&d.take_events());
        assert_eq!(
            ev[0]["name"].as_str().map(str::len),
            Some(MAX_LINE_BYTES - 8)
        );
        assert_eq!(ev[1]["status"], "protocol_error");
        assert_eq!(ev[1]["status_text"], "protocol error: unexpected <newline>");
    }

    #[test]
    fn bad_names_and_records_end_decoding_like_they_end_the_sink() {
        for (line, text) in [
            (&b"C0644 1 ../x\n"[..], "error: unexpected filename: ../x"),
            (b"C0644 1 a/b\n", "error: unexpected filename: a/b"),
            (b"C0844 1 a\n", "protocol error: bad file record"),
            (b"C0644 1a a\n", "protocol error: bad file record"),
            (
                b"D0755 0 d\n",
                "protocol error: received directory without -r",
            ),
        ] {
            let mut d = ScpDecoder::new(Direction::Upload, b"/srv", false);
            d.server_to_client(1, b"\0");
            d.client_to_server(2, line);
            d.client_to_server(3, b"anything at all");
            let ev = fields(&d.take_events());
            assert_eq!(ev.len(), 1, "{ev:?}");
            assert_eq!(ev[0]["status_text"], text);
        }
    }

    #[test]
    fn a_source_far_ahead_of_the_replies_stops_decoding_with_counts() {
        let mut d = ScpDecoder::new(Direction::Upload, b"/srv", false);
        d.client_to_server(1, b"C0644 9999999 big\n");
        let chunk = vec![0u8; 64 * 1024];
        for i in 0..20 {
            d.client_to_server(2 + i, &chunk);
        }
        assert!(d.stopped());
        assert!(d.buffered_bytes() <= MAX_AHEAD_BYTES + 128 * 1024);
        let ev = fields(&d.take_events());
        let stop = ev
            .iter()
            .find(|e| e["op"] == "decode_stopped")
            .expect("a decode_stopped event");
        assert_eq!(stop["bytes_to_client"], 0);
        assert!(stop["bytes_from_client"].as_u64() > Some(MAX_AHEAD_BYTES as u64));
    }

    #[test]
    fn parses_records() {
        assert_eq!(
            parse_entry(b"C0644 12 name with space"),
            Some((0o644, 12, &b"name with space"[..]))
        );
        assert_eq!(parse_entry(b"D0755 0 d"), Some((0o755, 0, &b"d"[..])));
        assert_eq!(parse_entry(b"C644 12 x"), None);
        assert_eq!(parse_entry(b"C0644 99999999999999999999 x"), None);
        assert_eq!(parse_times(b"1 0 2 0"), Some(1));
        assert_eq!(parse_times(b"1 0 2"), None);
        assert_eq!(parse_times(b"1 1000000 2 0"), None);
    }
}
