//! SFTP version 3 decoder: turns copies of both byte streams into one event per operation.
//!
//! It only observes. Packets are framed incrementally; the payload of WRITE requests and DATA
//! replies is skipped by length, never buffered; any other packet is kept whole only up to
//! OpenSSH's own packet limit (256 KiB, beyond which the peer itself gives up). Requests are
//! matched to replies by id. On anything it cannot follow it stops decoding, says so once,
//! and leaves the byte counting to the monitor.
#![forbid(unsafe_code)]

use std::collections::{HashMap, VecDeque};

use super::event::{octal_mode, Direction, Protocol, TransferEvent, WireText};
use super::wire::Reader;

/// OpenSSH's SFTP_MAX_MSG_LENGTH: neither its server nor its client accepts a longer packet.
pub const MAX_PACKET_BYTES: usize = 256 * 1024;
/// Handles are at most 256 bytes (draft-ietf-secsh-filexfer-02 §6.2).
const MAX_HANDLE_BYTES: usize = 256;
/// Memory allowed for outstanding requests and open handles (paths mostly).
const MAX_TRACKED_BYTES: usize = 16 * 1024 * 1024;

mod packet {
    pub const INIT: u8 = 1;
    pub const VERSION: u8 = 2;
    pub const OPEN: u8 = 3;
    pub const CLOSE: u8 = 4;
    pub const READ: u8 = 5;
    pub const WRITE: u8 = 6;
    pub const LSTAT: u8 = 7;
    pub const FSTAT: u8 = 8;
    pub const SETSTAT: u8 = 9;
    pub const FSETSTAT: u8 = 10;
    pub const OPENDIR: u8 = 11;
    pub const READDIR: u8 = 12;
    pub const REMOVE: u8 = 13;
    pub const MKDIR: u8 = 14;
    pub const RMDIR: u8 = 15;
    pub const REALPATH: u8 = 16;
    pub const STAT: u8 = 17;
    pub const RENAME: u8 = 18;
    pub const READLINK: u8 = 19;
    pub const SYMLINK: u8 = 20;
    pub const STATUS: u8 = 101;
    pub const HANDLE: u8 = 102;
    pub const DATA: u8 = 103;
    pub const NAME: u8 = 104;
    pub const ATTRS: u8 = 105;
    pub const EXTENDED: u8 = 200;
    pub const EXTENDED_REPLY: u8 = 201;
}

const FX_OK: u32 = 0;
const FX_EOF: u32 = 1;

const FXF_READ: u32 = 0x01;
const FXF_WRITE: u32 = 0x02;
const FXF_APPEND: u32 = 0x04;
const FXF_CREAT: u32 = 0x08;
const FXF_TRUNC: u32 = 0x10;
const FXF_EXCL: u32 = 0x20;

/// The name of an SFTP status code, as written in the `status` field.
pub fn status_name(code: u32) -> String {
    let name = match code {
        0 => "ok",
        1 => "eof",
        2 => "no_such_file",
        3 => "permission_denied",
        4 => "failure",
        5 => "bad_message",
        6 => "no_connection",
        7 => "connection_lost",
        8 => "op_unsupported",
        _ => return format!("code_{code}"),
    };
    name.to_owned()
}

fn open_flags_text(pflags: u32) -> String {
    let names = [
        (FXF_READ, "read"),
        (FXF_WRITE, "write"),
        (FXF_APPEND, "append"),
        (FXF_CREAT, "create"),
        (FXF_TRUNC, "truncate"),
        (FXF_EXCL, "exclusive"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| pflags & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    set.join(",")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// Called with each packet's kept prefix and its full length; an error stops decoding.
type OnPacket<'a> = dyn FnMut(&[u8], usize) -> Result<(), String> + 'a;

/// Splits one direction's stream into packets, keeping only the bytes worth parsing.
struct Framer {
    side: Side,
    header: [u8; 4],
    header_len: usize,
    in_body: bool,
    body_len: usize,
    seen: usize,
    keep: Vec<u8>,
    want: usize,
    /// In a run of DATA replies that began with a large one: the next is likely one too.
    bulk: bool,
}

/// What a DATA reply's kept prefix holds: type, id, payload length.
const DATA_PREFIX: usize = 9;
/// DATA replies at least this long make the stream worth reading header by header.
const BULK_PACKET_BYTES: usize = 4096;

impl Framer {
    fn new(side: Side) -> Self {
        Framer {
            side,
            header: [0; 4],
            header_len: 0,
            in_body: false,
            body_len: 0,
            seen: 0,
            keep: Vec::new(),
            want: 0,
            bulk: false,
        }
    }

    /// Bytes of the current packet that will not be looked at (a payload being skipped).
    fn skippable(&self) -> usize {
        if self.in_body && self.keep.len() >= self.want {
            self.body_len - self.seen
        } else {
            0
        }
    }

    /// During a run of large DATA replies: how many bytes to read so that a read ends with the
    /// next reply's kept prefix and leaves its payload to be skipped.
    fn read_limit(&self) -> Option<usize> {
        if !self.bulk {
            return None;
        }
        if !self.in_body {
            return Some(4 - self.header_len + DATA_PREFIX);
        }
        let skippable = self.skippable();
        if skippable > 0 {
            // The rest of this payload, then the next reply's length and prefix.
            return Some(skippable + 4 + DATA_PREFIX);
        }
        match self.keep.first() {
            None => Some(DATA_PREFIX),
            Some(&packet::DATA) if self.keep.len() < DATA_PREFIX => {
                Some(DATA_PREFIX - self.keep.len())
            }
            _ => None,
        }
    }

    /// `n` (at most [`Framer::skippable`]) bytes went by unseen.
    fn skip(&mut self, n: usize, on_packet: &mut OnPacket<'_>) -> Result<(), String> {
        let n = n.min(self.skippable());
        self.seen += n;
        if self.in_body && self.seen == self.body_len {
            return self.complete(on_packet);
        }
        Ok(())
    }

    fn complete(&mut self, on_packet: &mut OnPacket<'_>) -> Result<(), String> {
        self.in_body = false;
        // A short reply (a file's last bytes) does not end a run of DATA replies; anything
        // else does.
        self.bulk = self.keep.first() == Some(&packet::DATA)
            && (self.bulk || self.body_len >= BULK_PACKET_BYTES);
        let result = on_packet(&self.keep, self.body_len);
        self.keep.clear();
        if self.keep.capacity() > 64 * 1024 {
            self.keep.shrink_to(4096);
        }
        result
    }

    /// How much of the packet to keep: the header fields of WRITE and DATA, all of the rest.
    fn retain(&self) -> usize {
        let keep = &self.keep;
        let want = match (self.side, keep.first().copied()) {
            (Side::Client, Some(packet::WRITE)) if keep.len() < 9 => 9,
            (Side::Client, Some(packet::WRITE)) => {
                let handle_len = u32::from_be_bytes([keep[5], keep[6], keep[7], keep[8]]) as usize;
                9usize.saturating_add(handle_len).saturating_add(12)
            }
            (Side::Server, Some(packet::DATA)) => DATA_PREFIX,
            _ => self.body_len,
        };
        want.min(self.body_len)
    }

    fn feed(&mut self, mut data: &[u8], on_packet: &mut OnPacket<'_>) -> Result<(), String> {
        while !data.is_empty() {
            if !self.in_body {
                let n = (4 - self.header_len).min(data.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
                self.header_len += n;
                data = &data[n..];
                if self.header_len == 4 {
                    self.header_len = 0;
                    self.body_len = u32::from_be_bytes(self.header) as usize;
                    if self.body_len == 0 {
                        return Err("empty packet".into());
                    }
                    if self.body_len > MAX_PACKET_BYTES {
                        return Err(format!(
                            "packet of {} bytes exceeds the SFTP limit",
                            self.body_len
                        ));
                    }
                    self.in_body = true;
                    self.seen = 0;
                    self.keep.clear();
                    self.want = 1;
                }
                continue;
            }
            if self.keep.len() < self.want {
                let n = (self.want - self.keep.len()).min(data.len());
                self.keep.extend_from_slice(&data[..n]);
                self.seen += n;
                data = &data[n..];
                if self.keep.len() == self.want {
                    self.want = self.retain().max(self.want);
                }
            } else {
                let n = (self.body_len - self.seen).min(data.len());
                self.seen += n;
                data = &data[n..];
            }
            if self.seen == self.body_len {
                self.complete(on_packet)?;
            }
        }
        Ok(())
    }

    fn buffered_bytes(&self) -> usize {
        self.keep.capacity()
    }
}

#[derive(Default)]
struct Attrs {
    size: Option<u64>,
    uid_gid: Option<(u32, u32)>,
    permissions: Option<u32>,
    times: Option<(u32, u32)>,
}

fn parse_attrs(r: &mut Reader<'_>) -> Option<Attrs> {
    let flags = r.u32()?;
    let mut a = Attrs::default();
    if flags & 0x1 != 0 {
        a.size = Some(r.u64()?);
    }
    if flags & 0x2 != 0 {
        a.uid_gid = Some((r.u32()?, r.u32()?));
    }
    if flags & 0x4 != 0 {
        a.permissions = Some(r.u32()?);
    }
    if flags & 0x8 != 0 {
        a.times = Some((r.u32()?, r.u32()?));
    }
    if flags & 0x8000_0000 != 0 {
        let count = r.u32()?;
        for _ in 0..count {
            r.string()?;
            r.string()?;
        }
    }
    Some(a)
}

fn set_attrs(ev: &mut TransferEvent, a: &Attrs) {
    if let Some(mode) = a.permissions {
        ev.set("mode", octal_mode(mode));
    }
    if let Some(size) = a.size {
        ev.set("size", size);
    }
    if let Some((uid, gid)) = a.uid_gid {
        ev.set("uid", uid).set("gid", gid);
    }
    if let Some((atime, mtime)) = a.times {
        ev.set("atime", atime).set("mtime", mtime);
    }
}

/// A file or directory the server has handed out a handle for.
struct OpenFile {
    path: WireText,
    is_dir: bool,
    pflags: u32,
    mode: Option<u32>,
    started_us: u64,
    bytes_read: u64,
    bytes_written: u64,
    reads: u64,
    writes: u64,
    entries: u64,
    errors: u64,
    first_error: Option<(u32, WireText)>,
    /// Reads and writes recorded without their outcome (memory budget exceeded).
    untracked: u64,
    bytes_unconfirmed: u64,
}

impl OpenFile {
    fn note_error(&mut self, code: u32, text: &[u8]) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some((code, WireText::new(text, super::event::MAX_TEXT_BYTES)));
        }
    }

    fn direction(&self) -> Option<Direction> {
        match (self.reads > 0, self.writes > 0) {
            (true, false) => Some(Direction::Download),
            (false, true) => Some(Direction::Upload),
            (true, true) => None,
            (false, false) if self.pflags & FXF_WRITE != 0 => Some(Direction::Upload),
            (false, false) if self.pflags & FXF_READ != 0 => Some(Direction::Download),
            (false, false) => None,
        }
    }

    /// The event for this file once it is closed (or abandoned, with `close` = None).
    fn into_event(self, now_us: u64, close: Option<(u32, &[u8])>) -> TransferEvent {
        let mut ev = TransferEvent::new(Protocol::Sftp, if self.is_dir { "list" } else { "open" });
        ev.set_wire("path", &self.path);
        if self.is_dir {
            ev.set("entries", self.entries);
        } else {
            match self.direction() {
                Some(d) => ev.set("direction", d.as_str()),
                None if self.reads > 0 => ev.set("direction", "both"),
                None => ev.set("direction", "none"),
            };
            ev.set("open_flags", open_flags_text(self.pflags));
            if let Some(mode) = self.mode {
                ev.set("mode", octal_mode(mode));
            }
            ev.set("bytes_read", self.bytes_read)
                .set("bytes_written", self.bytes_written);
        }
        match close {
            Some((code, text)) => set_status(&mut ev, code, text),
            None => {
                ev.set("status", "incomplete").set("closed", false);
            }
        }
        if self.untracked > 0 {
            ev.set("untracked_ops", self.untracked);
            ev.set("bytes_written_unconfirmed", self.bytes_unconfirmed);
        }
        if self.errors > 0 {
            ev.set("io_errors", self.errors);
            if let Some((code, text)) = &self.first_error {
                ev.set("io_error_status", status_name(*code));
                ev.set_wire("io_error_text", text);
            }
        }
        ev.set("started_us", self.started_us)
            .set("duration_us", now_us.saturating_sub(self.started_us));
        ev
    }

    fn cost(&self) -> usize {
        self.path.cost() + 256
    }
}

fn set_status(ev: &mut TransferEvent, code: u32, text: &[u8]) {
    ev.set("status", status_name(code)).set("status_code", code);
    if code != FX_OK && !text.is_empty() {
        ev.set_text("status_text", text);
    }
}

/// What a request is waiting for.
enum Expect {
    Open {
        path: WireText,
        pflags: u32,
        mode: Option<u32>,
    },
    OpenDir {
        path: WireText,
    },
    Close {
        handle: Vec<u8>,
    },
    Read {
        handle: Vec<u8>,
    },
    Write {
        handle: Vec<u8>,
        len: u64,
    },
    ReadDir {
        handle: Vec<u8>,
    },
    /// STAT, LSTAT, FSTAT: counted; a failure is reported with its path.
    Stat {
        event: TransferEvent,
    },
    /// A one-shot operation whose event is complete but for the reply. `resolves`: a NAME
    /// reply carries the answer (realpath, readlink, expand-path, home-directory).
    Op {
        event: TransferEvent,
        resolves: bool,
    },
}

struct Pending {
    started_us: u64,
    expect: Expect,
    cost: usize,
}

/// The decoder for one SFTP channel.
pub struct SftpDecoder {
    from_client: Framer,
    from_server: Framer,
    pending: HashMap<u32, VecDeque<Pending>>,
    handles: HashMap<Vec<u8>, OpenFile>,
    tracked_bytes: usize,
    /// Replies still due for requests recorded without tracking (see `track`).
    untracked_replies: u64,
    stats: u64,
    stats_failed: u64,
    client_bytes: u64,
    server_bytes: u64,
    stopped: bool,
    events: Vec<TransferEvent>,
}

impl Default for SftpDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SftpDecoder {
    pub fn new() -> Self {
        SftpDecoder {
            from_client: Framer::new(Side::Client),
            from_server: Framer::new(Side::Server),
            pending: HashMap::new(),
            handles: HashMap::new(),
            tracked_bytes: 0,
            untracked_replies: 0,
            stats: 0,
            stats_failed: 0,
            client_bytes: 0,
            server_bytes: 0,
            stopped: false,
            events: Vec::new(),
        }
    }

    pub fn client_to_server(&mut self, now_us: u64, bytes: &[u8]) {
        if self.stopped {
            return;
        }
        let mut framer = std::mem::replace(&mut self.from_client, Framer::new(Side::Client));
        let result = framer.feed(bytes, &mut |pkt, len| self.on_request(now_us, pkt, len));
        self.from_client = framer;
        self.client_bytes += bytes.len() as u64;
        if let Err(reason) = result {
            self.stop(now_us, &reason);
        }
    }

    pub fn server_to_client(&mut self, now_us: u64, bytes: &[u8]) {
        if self.stopped {
            return;
        }
        let mut framer = std::mem::replace(&mut self.from_server, Framer::new(Side::Server));
        let result = framer.feed(bytes, &mut |pkt, len| self.on_reply(now_us, pkt, len));
        self.from_server = framer;
        self.server_bytes += bytes.len() as u64;
        if let Err(reason) = result {
            self.stop(now_us, &reason);
        }
    }

    /// Reply bytes coming next that decoding does not need (a DATA payload).
    pub fn server_to_client_skippable(&self) -> usize {
        if self.stopped {
            0
        } else {
            self.from_server.skippable()
        }
    }

    /// `n` skippable reply bytes went by without being seen.
    pub fn server_to_client_skipped(&mut self, now_us: u64, n: usize) {
        if self.stopped {
            return;
        }
        let mut framer = std::mem::replace(&mut self.from_server, Framer::new(Side::Server));
        let result = framer.skip(n, &mut |pkt, len| self.on_reply(now_us, pkt, len));
        self.from_server = framer;
        self.server_bytes += n as u64;
        if let Err(reason) = result {
            self.stop(now_us, &reason);
        }
    }

    /// How many reply bytes to read next so that DATA payloads can be skipped (see
    /// [`Framer::read_limit`]); `None`: no limit.
    pub fn server_to_client_read_limit(&self) -> Option<usize> {
        if self.stopped {
            None
        } else {
            self.from_server.read_limit()
        }
    }

    pub fn take_events(&mut self) -> Vec<TransferEvent> {
        std::mem::take(&mut self.events)
    }

    /// The channel ended: report what never completed, and the stat summary.
    pub fn finish(&mut self, now_us: u64) {
        if !self.stopped {
            self.flush_unfinished(now_us);
        }
        if self.stats > 0 {
            let mut ev = TransferEvent::new(Protocol::Sftp, "stat_summary");
            ev.set("count", self.stats).set("failed", self.stats_failed);
            self.events.push(ev);
            self.stats = 0;
        }
    }

    /// Whether decoding gave up (the `decode_stopped` event says why).
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Memory held for framing and tracking, for bounds checks.
    pub fn buffered_bytes(&self) -> usize {
        self.from_client.buffered_bytes() + self.from_server.buffered_bytes() + self.tracked_bytes
    }

    fn stop(&mut self, now_us: u64, reason: &str) {
        self.flush_unfinished(now_us);
        let mut ev = TransferEvent::new(Protocol::Sftp, "decode_stopped");
        ev.set_text("reason", reason.as_bytes());
        ev.set("bytes_from_client", self.client_bytes)
            .set("bytes_to_client", self.server_bytes);
        ev.set("at_us", now_us);
        self.events.push(ev);
        self.stopped = true;
        self.pending = HashMap::new();
        self.handles = HashMap::new();
        self.tracked_bytes = 0;
        self.untracked_replies = 0;
        self.from_client = Framer::new(Side::Client);
        self.from_server = Framer::new(Side::Server);
    }

    fn flush_unfinished(&mut self, now_us: u64) {
        // In a fixed order (start, then handle or request id), not the maps' hash order.
        let mut files: Vec<(Vec<u8>, OpenFile)> = self.handles.drain().collect();
        files.sort_by(|(ha, a), (hb, b)| (a.started_us, ha).cmp(&(b.started_us, hb)));
        for (_, f) in files {
            self.events.push(f.into_event(now_us, None));
        }
        let mut ops: Vec<(u32, Pending)> = self
            .pending
            .drain()
            .flat_map(|(id, q)| q.into_iter().map(move |p| (id, p)))
            .collect();
        ops.sort_by_key(|(id, p)| (p.started_us, *id));
        for (_, p) in ops {
            if let Expect::Op { mut event, .. } = p.expect {
                event.set("status", "no_reply");
                event.set("started_us", p.started_us);
                self.events.push(event);
            }
        }
        self.tracked_bytes = 0;
    }

    /// Remembers a request until its reply. Past the memory budget (only a client that stops
    /// reading replies gets there) the request is recorded at once, without its outcome, and
    /// its reply is expected as an unmatched one: decoding goes on.
    fn track(&mut self, id: u32, started_us: u64, expect: Expect) {
        let cost = 64
            + match &expect {
                Expect::Open { path, .. } | Expect::OpenDir { path } => path.cost(),
                Expect::Close { handle } | Expect::Read { handle } | Expect::ReadDir { handle } => {
                    handle.len()
                }
                Expect::Write { handle, .. } => handle.len(),
                Expect::Stat { event } => event_cost(event),
                Expect::Op { event, .. } => event_cost(event),
            };
        if self.tracked_bytes + cost > MAX_TRACKED_BYTES {
            self.record_untracked(started_us, expect);
            return;
        }
        self.tracked_bytes += cost;
        self.pending.entry(id).or_default().push_back(Pending {
            started_us,
            expect,
            cost,
        });
    }

    fn record_untracked(&mut self, now_us: u64, expect: Expect) {
        self.untracked_replies += 1;
        let untracked = |mut ev: TransferEvent| {
            ev.set("status", "untracked").set("started_us", now_us);
            ev
        };
        match expect {
            Expect::Open { path, pflags, mode } => {
                let ev = open_failure_event(path, pflags, mode);
                self.events.push(untracked(ev));
            }
            Expect::OpenDir { path } => {
                let mut ev = TransferEvent::new(Protocol::Sftp, "list");
                ev.set_wire("path", &path);
                self.events.push(untracked(ev));
            }
            Expect::Close { handle } => {
                if let Some(file) = self.handles.remove(&handle) {
                    self.tracked_bytes -= file.cost();
                    let mut ev = file.into_event(now_us, None);
                    ev.set("status", "untracked").unset("closed");
                    self.events.push(ev);
                }
            }
            Expect::Read { handle } | Expect::ReadDir { handle } => {
                if let Some(f) = self.handles.get_mut(&handle) {
                    f.untracked += 1;
                }
            }
            Expect::Write { handle, len } => {
                if let Some(f) = self.handles.get_mut(&handle) {
                    f.untracked += 1;
                    f.writes += 1;
                    f.bytes_unconfirmed += len;
                }
            }
            Expect::Stat { .. } => self.stats += 1,
            Expect::Op { event, .. } => self.events.push(untracked(event)),
        }
    }

    fn handle_path(&self, handle: &[u8]) -> Option<&WireText> {
        self.handles.get(handle).map(|f| &f.path)
    }

    fn op_on_handle(&self, op: &'static str, handle: &[u8]) -> TransferEvent {
        let mut ev = TransferEvent::new(Protocol::Sftp, op);
        match self.handle_path(handle) {
            Some(path) => ev.set_wire("path", path),
            None => ev.set("path_unknown", true),
        };
        ev
    }

    fn on_request(&mut self, now_us: u64, pkt: &[u8], len: usize) -> Result<(), String> {
        let mut r = Reader::new(pkt);
        let kind = r.u8().ok_or("empty request")?;
        if kind == packet::INIT {
            return Ok(());
        }
        let id = r
            .u32()
            .ok_or_else(|| format!("request of type {kind} without an id"))?;
        // sftp-server does not parse a request it refuses (-P/-p lists) and answers it, so a
        // body it could not parse either is recorded and followed like any other request.
        let expect = match self.parse_request(now_us, kind, &mut r, pkt.len(), len) {
            Some(Some(expect)) => expect,
            Some(None) => return Ok(()),
            None => {
                let mut ev = TransferEvent::new(Protocol::Sftp, "malformed_request");
                ev.set("type", kind);
                Expect::Op {
                    event: ev,
                    resolves: false,
                }
            }
        };
        self.track(id, now_us, expect);
        Ok(())
    }

    /// What a request waits for; `Some(None)`: nothing (recorded already); `None`: unparsable.
    fn parse_request(
        &mut self,
        now_us: u64,
        kind: u8,
        r: &mut Reader<'_>,
        kept: usize,
        len: usize,
    ) -> Option<Option<Expect>> {
        let path_op = |op: &'static str, path: &[u8]| {
            let mut ev = TransferEvent::new(Protocol::Sftp, op);
            ev.set_path("path", path);
            ev
        };
        let expect = match kind {
            packet::OPEN => {
                let path = r.string()?;
                let pflags = r.u32()?;
                let attrs = parse_attrs(r)?;
                Expect::Open {
                    path: WireText::path(path),
                    pflags,
                    mode: attrs.permissions,
                }
            }
            packet::OPENDIR => Expect::OpenDir {
                path: WireText::path(r.string()?),
            },
            packet::CLOSE => Expect::Close { handle: handle(r)? },
            packet::READ => {
                let handle = handle(r)?;
                r.u64().and(r.u32())?;
                Expect::Read { handle }
            }
            packet::WRITE => {
                let handle = handle(r)?;
                r.u64()?;
                let data_len = r.u32()? as usize;
                if data_len > len - (kept - r.remaining()) {
                    return None;
                }
                Expect::Write {
                    handle,
                    len: data_len as u64,
                }
            }
            packet::READDIR => Expect::ReadDir { handle: handle(r)? },
            packet::STAT => Expect::Stat {
                event: path_op("stat", r.string()?),
            },
            packet::LSTAT => Expect::Stat {
                event: path_op("lstat", r.string()?),
            },
            packet::FSTAT => Expect::Stat {
                event: self.op_on_handle("fstat", &handle(r)?),
            },
            packet::SETSTAT => {
                let mut ev = path_op("setstat", r.string()?);
                set_attrs(&mut ev, &parse_attrs(r)?);
                Expect::Op {
                    event: ev,
                    resolves: false,
                }
            }
            packet::FSETSTAT => {
                let mut ev = self.op_on_handle("fsetstat", &handle(r)?);
                set_attrs(&mut ev, &parse_attrs(r)?);
                Expect::Op {
                    event: ev,
                    resolves: false,
                }
            }
            packet::REMOVE => Expect::Op {
                event: path_op("remove", r.string()?),
                resolves: false,
            },
            packet::MKDIR => {
                let mut ev = path_op("mkdir", r.string()?);
                set_attrs(&mut ev, &parse_attrs(r)?);
                Expect::Op {
                    event: ev,
                    resolves: false,
                }
            }
            packet::RMDIR => Expect::Op {
                event: path_op("rmdir", r.string()?),
                resolves: false,
            },
            packet::REALPATH => Expect::Op {
                event: path_op("realpath", r.string()?),
                resolves: true,
            },
            packet::READLINK => Expect::Op {
                event: path_op("readlink", r.string()?),
                resolves: true,
            },
            packet::RENAME => {
                let mut ev = path_op("rename", r.string()?);
                ev.set_path("target", r.string()?);
                Expect::Op {
                    event: ev,
                    resolves: false,
                }
            }
            packet::SYMLINK => {
                // OpenSSH sends the link's contents first and the new link's path second.
                let target = r.string()?;
                let mut ev = path_op("symlink", r.string()?);
                ev.set_path("target", target);
                Expect::Op {
                    event: ev,
                    resolves: false,
                }
            }
            packet::EXTENDED => self.extended_request(r)?,
            other => {
                // sftp-server logs an unknown request and sends no reply: nothing to wait for.
                let mut ev = TransferEvent::new(Protocol::Sftp, "unknown_request");
                ev.set("type", other).set("started_us", now_us);
                self.events.push(ev);
                return Some(None);
            }
        };
        Some(Some(expect))
    }

    fn extended_request(&self, r: &mut Reader<'_>) -> Option<Expect> {
        let name = r.string()?;
        let two_paths = |op: &'static str, r: &mut Reader<'_>| -> Option<TransferEvent> {
            let mut ev = TransferEvent::new(Protocol::Sftp, op);
            ev.set_path("path", r.string()?);
            ev.set_path("target", r.string()?);
            Some(ev)
        };
        let one_path = |op: &'static str, r: &mut Reader<'_>| -> Option<TransferEvent> {
            let mut ev = TransferEvent::new(Protocol::Sftp, op);
            ev.set_path("path", r.string()?);
            Some(ev)
        };
        let mut resolves = false;
        let mut ev = match name {
            b"posix-rename@openssh.com" => two_paths("rename", r)?,
            b"hardlink@openssh.com" => {
                // oldpath (the existing file), newpath (the link made): path = the new link.
                let existing = r.string()?;
                let mut ev = one_path("hardlink", r)?;
                ev.set_path("target", existing);
                ev
            }
            b"statvfs@openssh.com" => one_path("statvfs", r)?,
            b"fstatvfs@openssh.com" => self.op_on_handle("statvfs", &handle(r)?),
            b"fsync@openssh.com" => self.op_on_handle("fsync", &handle(r)?),
            b"lsetstat@openssh.com" => {
                let mut ev = one_path("lsetstat", r)?;
                set_attrs(&mut ev, &parse_attrs(r)?);
                ev
            }
            b"expand-path@openssh.com" => {
                resolves = true;
                one_path("expand-path", r)?
            }
            b"home-directory" => {
                resolves = true;
                let mut ev = TransferEvent::new(Protocol::Sftp, "home-directory");
                ev.set_path("user", r.string()?);
                ev
            }
            b"limits@openssh.com" => TransferEvent::new(Protocol::Sftp, "limits"),
            b"users-groups-by-id@openssh.com" => {
                TransferEvent::new(Protocol::Sftp, "users-groups-by-id")
            }
            b"copy-data" => {
                let source = handle(r)?;
                let offset = r.u64()?;
                let length = r.u64()?;
                let dest = handle(r)?;
                let dest_offset = r.u64()?;
                let mut ev = self.op_on_handle("copy", &source);
                match self.handle_path(&dest) {
                    Some(path) => ev.set_wire("target", path),
                    None => ev.set("target_unknown", true),
                };
                ev.set("offset", offset)
                    .set("length", length)
                    .set("target_offset", dest_offset);
                ev
            }
            _ => TransferEvent::new(Protocol::Sftp, "extended"),
        };
        ev.set_text("extension", name);
        Some(Expect::Op {
            event: ev,
            resolves,
        })
    }

    fn on_reply(&mut self, now_us: u64, pkt: &[u8], len: usize) -> Result<(), String> {
        let mut r = Reader::new(pkt);
        let kind = r.u8().ok_or("empty reply")?;
        if kind == packet::VERSION {
            let version = r.u32().ok_or("malformed VERSION")?;
            if version != 3 {
                return Err(format!("SFTP version {version} is not decoded"));
            }
            return Ok(());
        }
        let bad = || format!("malformed reply of type {kind}");
        let id = r.u32().ok_or_else(bad)?;
        let Some(queue) = self.pending.get_mut(&id) else {
            if self.untracked_replies > 0 {
                self.untracked_replies -= 1;
                return Ok(());
            }
            return Err(format!("reply to unknown request {id}"));
        };
        let pending = queue
            .pop_front()
            .ok_or_else(|| format!("reply to unknown request {id}"))?;
        if queue.is_empty() {
            self.pending.remove(&id);
        }
        self.tracked_bytes -= pending.cost;
        let started_us = pending.started_us;
        match (kind, pending.expect) {
            (packet::STATUS, expect) => {
                let code = r.u32().ok_or_else(bad)?;
                // OpenSSH always sends the message; very old servers may omit it.
                let text = r.string().unwrap_or_default();
                self.on_status(now_us, started_us, expect, code, text);
            }
            (packet::HANDLE, Expect::Open { path, pflags, mode }) => {
                self.opened(
                    handle(&mut r).ok_or_else(bad)?,
                    path,
                    false,
                    pflags,
                    mode,
                    started_us,
                )?;
            }
            (packet::HANDLE, Expect::OpenDir { path }) => {
                self.opened(
                    handle(&mut r).ok_or_else(bad)?,
                    path,
                    true,
                    0,
                    None,
                    started_us,
                )?;
            }
            (packet::DATA, Expect::Read { handle }) => {
                let data_len = r.u32().ok_or_else(bad)? as usize;
                if data_len > len - 9 {
                    return Err(bad());
                }
                if let Some(f) = self.handles.get_mut(&handle) {
                    f.bytes_read += data_len as u64;
                    f.reads += 1;
                }
            }
            (packet::NAME, Expect::ReadDir { handle }) => {
                let count = r.u32().ok_or_else(bad)?;
                if let Some(f) = self.handles.get_mut(&handle) {
                    f.entries += u64::from(count);
                }
            }
            (
                packet::NAME,
                Expect::Op {
                    mut event,
                    resolves: true,
                },
            ) => {
                let count = r.u32().ok_or_else(bad)?;
                if count > 0 {
                    event.set_path("target", r.string().ok_or_else(bad)?);
                }
                self.complete(now_us, started_us, event, FX_OK, b"");
            }
            (packet::ATTRS, Expect::Stat { .. }) => self.stats += 1,
            (packet::EXTENDED_REPLY, Expect::Op { event, .. }) => {
                self.complete(now_us, started_us, event, FX_OK, b"");
            }
            (kind, _) => return Err(format!("unexpected reply of type {kind} to request {id}")),
        }
        Ok(())
    }

    fn opened(
        &mut self,
        handle: Vec<u8>,
        path: WireText,
        is_dir: bool,
        pflags: u32,
        mode: Option<u32>,
        started_us: u64,
    ) -> Result<(), String> {
        let file = OpenFile {
            path,
            is_dir,
            pflags,
            mode,
            started_us,
            bytes_read: 0,
            bytes_written: 0,
            reads: 0,
            writes: 0,
            entries: 0,
            errors: 0,
            first_error: None,
            untracked: 0,
            bytes_unconfirmed: 0,
        };
        let cost = file.cost();
        if self.tracked_bytes + cost > MAX_TRACKED_BYTES {
            return Err("too many open handles".into());
        }
        self.tracked_bytes += cost;
        if let Some(old) = self.handles.insert(handle, file) {
            // The server reused a handle it never closed: report the old file as unfinished.
            self.tracked_bytes -= old.cost();
            self.events.push(old.into_event(started_us, None));
        }
        Ok(())
    }

    fn complete(
        &mut self,
        now_us: u64,
        started_us: u64,
        mut event: TransferEvent,
        code: u32,
        text: &[u8],
    ) {
        set_status(&mut event, code, text);
        event
            .set("started_us", started_us)
            .set("duration_us", now_us.saturating_sub(started_us));
        self.events.push(event);
    }

    fn on_status(&mut self, now_us: u64, started_us: u64, expect: Expect, code: u32, text: &[u8]) {
        match expect {
            Expect::Open { path, pflags, mode } => {
                let ev = open_failure_event(path, pflags, mode);
                self.complete(now_us, started_us, ev, code, text);
            }
            Expect::OpenDir { path } => {
                let mut ev = TransferEvent::new(Protocol::Sftp, "list");
                ev.set_wire("path", &path);
                self.complete(now_us, started_us, ev, code, text);
            }
            Expect::Close { handle } => {
                if let Some(file) = self.handles.remove(&handle) {
                    self.tracked_bytes -= file.cost();
                    self.events
                        .push(file.into_event(now_us, Some((code, text))));
                }
            }
            Expect::Read { handle } | Expect::ReadDir { handle } => {
                if let Some(f) = self.handles.get_mut(&handle) {
                    if code != FX_EOF {
                        f.note_error(code, text);
                    }
                }
            }
            Expect::Write { handle, len } => {
                if let Some(f) = self.handles.get_mut(&handle) {
                    f.writes += 1;
                    if code == FX_OK {
                        f.bytes_written += len;
                    } else {
                        f.note_error(code, text);
                    }
                }
            }
            Expect::Stat { event } => {
                self.stats += 1;
                if code != FX_OK {
                    self.stats_failed += 1;
                    self.complete(now_us, started_us, event, code, text);
                }
            }
            Expect::Op { event, .. } => self.complete(now_us, started_us, event, code, text),
        }
    }
}

/// The event for an open that produced no handle.
fn open_failure_event(path: WireText, pflags: u32, mode: Option<u32>) -> TransferEvent {
    let mut ev = TransferEvent::new(Protocol::Sftp, "open");
    ev.set_wire("path", &path);
    let direction = if pflags & FXF_WRITE != 0 {
        Direction::Upload
    } else {
        Direction::Download
    };
    ev.set("direction", direction.as_str())
        .set("open_flags", open_flags_text(pflags));
    if let Some(mode) = mode {
        ev.set("mode", octal_mode(mode));
    }
    ev
}

/// A handle from a request. sftp-server answers a handle longer than any it issues with a
/// failure status and carries on, so such a handle is not malformed: it is kept as the empty
/// handle, which matches no open file.
fn handle(r: &mut Reader<'_>) -> Option<Vec<u8>> {
    let h = r.string()?;
    Some(if h.len() <= MAX_HANDLE_BYTES {
        h.to_vec()
    } else {
        Vec::new()
    })
}

fn event_cost(ev: &TransferEvent) -> usize {
    [
        "path",
        "path_hex",
        "target",
        "target_hex",
        "user",
        "extension",
    ]
    .iter()
    .filter_map(|k| ev.get(k).and_then(|v| v.as_str()).map(str::len))
    .sum::<usize>()
        + 128
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// Builds SFTP packets: type, then fields.
    struct Pkt(Vec<u8>);

    impl Pkt {
        fn new(kind: u8) -> Self {
            Pkt(vec![kind])
        }
        fn u32(mut self, v: u32) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn u64(mut self, v: u64) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn str(self, s: &[u8]) -> Self {
            let mut p = self.u32(s.len() as u32);
            p.0.extend_from_slice(s);
            p
        }
        fn bytes(&self) -> Vec<u8> {
            let mut out = (self.0.len() as u32).to_be_bytes().to_vec();
            out.extend_from_slice(&self.0);
            out
        }
    }

    fn status(id: u32, code: u32, text: &[u8]) -> Vec<u8> {
        Pkt::new(packet::STATUS)
            .u32(id)
            .u32(code)
            .str(text)
            .str(b"")
            .bytes()
    }

    fn started() -> SftpDecoder {
        let mut d = SftpDecoder::new();
        d.client_to_server(0, &Pkt::new(packet::INIT).u32(3).bytes());
        d.server_to_client(0, &Pkt::new(packet::VERSION).u32(3).bytes());
        d
    }

    fn json_events(d: &mut SftpDecoder) -> Vec<Value> {
        d.take_events()
            .iter()
            .map(|e| Value::Object(e.to_fields()))
            .collect()
    }

    fn open_for_write(d: &mut SftpDecoder, id: u32, path: &[u8], handle: &[u8]) {
        d.client_to_server(
            10,
            &Pkt::new(packet::OPEN)
                .u32(id)
                .str(path)
                .u32(FXF_WRITE | FXF_CREAT)
                .u32(0)
                .bytes(),
        );
        d.server_to_client(11, &Pkt::new(packet::HANDLE).u32(id).str(handle).bytes());
    }

    #[test]
    fn a_failed_write_is_not_counted_and_is_reported() {
        let mut d = started();
        open_for_write(&mut d, 0, b"/up", b"h0");
        let write = |id: u32, n: usize| {
            let mut p = Pkt::new(packet::WRITE)
                .u32(id)
                .str(b"h0")
                .u64(0)
                .u32(n as u32)
                .bytes();
            p.extend(vec![7u8; n]);
            // The length prefix must cover the payload too.
            let body = (p.len() - 4) as u32;
            p[..4].copy_from_slice(&body.to_be_bytes());
            p
        };
        d.client_to_server(12, &write(1, 100));
        d.client_to_server(13, &write(2, 50));
        d.server_to_client(14, &status(1, FX_OK, b"Success"));
        d.server_to_client(15, &status(2, 4, b"Failure"));
        d.client_to_server(16, &Pkt::new(packet::CLOSE).u32(3).str(b"h0").bytes());
        d.server_to_client(20, &status(3, FX_OK, b"Success"));
        assert_eq!(
            json_events(&mut d),
            vec![
                json!({"protocol":"sftp","op":"open","path":"/up","direction":"upload","open_flags":"write,create",
                "bytes_read":0,"bytes_written":100,"status":"ok","status_code":0,"io_errors":1,
                "io_error_status":"failure","io_error_text":"Failure","started_us":10,"duration_us":10})
            ]
        );
    }

    #[test]
    fn unfinished_operations_are_reported_at_the_end() {
        let mut d = started();
        open_for_write(&mut d, 0, b"/partial", b"h");
        d.client_to_server(30, &Pkt::new(packet::REMOVE).u32(1).str(b"/gone").bytes());
        d.finish(40);
        let ev = json_events(&mut d);
        assert_eq!(ev[0]["path"], "/partial");
        assert_eq!(ev[0]["status"], "incomplete");
        assert_eq!(ev[0]["closed"], false);
        assert_eq!(ev[0]["duration_us"], 30);
        assert_eq!(
            ev[1],
            json!({"protocol":"sftp","op":"remove","path":"/gone","status":"no_reply","started_us":30})
        );
    }

    #[test]
    fn reused_request_ids_are_answered_in_order() {
        let mut d = started();
        d.client_to_server(1, &Pkt::new(packet::MKDIR).u32(5).str(b"/a").u32(0).bytes());
        d.client_to_server(2, &Pkt::new(packet::MKDIR).u32(5).str(b"/b").u32(0).bytes());
        d.server_to_client(3, &status(5, FX_OK, b""));
        d.server_to_client(4, &status(5, 3, b"Permission denied"));
        let ev = json_events(&mut d);
        assert_eq!(
            (ev[0]["path"].as_str(), ev[0]["status"].as_str()),
            (Some("/a"), Some("ok"))
        );
        assert_eq!(
            (ev[1]["path"].as_str(), ev[1]["status"].as_str()),
            (Some("/b"), Some("permission_denied"))
        );
        assert!(!d.stopped());
    }

    #[test]
    fn garbage_stops_decoding_once_with_the_byte_counts() {
        let mut d = started();
        d.client_to_server(1, &Pkt::new(packet::REMOVE).u32(1).str(b"/x").bytes());
        d.server_to_client(2, &status(1, FX_OK, b""));
        // A reply to a request that was never made.
        d.server_to_client(3, &status(99, FX_OK, b""));
        d.client_to_server(4, b"more bytes that are no longer decoded");
        d.server_to_client(5, &status(2, FX_OK, b""));
        let ev = json_events(&mut d);
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(ev[0]["op"], "remove");
        assert_eq!(
            ev[1],
            json!({"protocol":"sftp","op":"decode_stopped","reason":"reply to unknown request 99",
                "bytes_from_client":9 + 15,"bytes_to_client":9 + 2 * 21,"at_us":3})
        );
        assert!(d.stopped());
    }

    #[test]
    fn bad_framing_stops_decoding() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![0, 0, 0, 0], "empty packet"),
            (
                ((MAX_PACKET_BYTES + 1) as u32).to_be_bytes().to_vec(),
                "packet of 262145 bytes exceeds the SFTP limit",
            ),
            (
                Pkt::new(packet::REMOVE).bytes(),
                "request of type 13 without an id",
            ),
        ];
        for (bytes, reason) in cases {
            let mut d = started();
            d.client_to_server(1, &bytes);
            let ev = json_events(&mut d);
            assert_eq!(ev.len(), 1, "{reason}: {ev:?}");
            assert_eq!(ev[0]["reason"], reason);
            assert_eq!(ev[0]["bytes_from_client"], (9 + bytes.len()) as u64);
        }
        let mut d = SftpDecoder::new();
        d.server_to_client(1, &Pkt::new(packet::VERSION).u32(6).bytes());
        assert_eq!(
            json_events(&mut d)[0]["reason"],
            "SFTP version 6 is not decoded"
        );
    }

    /// A download of `sizes` bytes per DATA reply, then EOF and CLOSE: (requests, replies).
    fn download(sizes: &[usize]) -> (Vec<u8>, Vec<u8>) {
        let (mut requests, mut replies) = (Vec::new(), Vec::new());
        requests.extend(
            Pkt::new(packet::OPEN)
                .u32(1)
                .str(b"/srv/big.bin")
                .u32(FXF_READ)
                .u32(0)
                .bytes(),
        );
        replies.extend(Pkt::new(packet::HANDLE).u32(1).str(b"h1").bytes());
        let mut offset = 0u64;
        for (i, &size) in sizes.iter().enumerate() {
            let id = 10 + i as u32;
            requests.extend(
                Pkt::new(packet::READ)
                    .u32(id)
                    .str(b"h1")
                    .u64(offset)
                    .u32(size as u32)
                    .bytes(),
            );
            let payload: Vec<u8> = (0..size).map(|b| (b % 251) as u8).collect();
            replies.extend(Pkt::new(packet::DATA).u32(id).str(&payload).bytes());
            offset += size as u64;
        }
        let eof_id = 10 + sizes.len() as u32;
        requests.extend(
            Pkt::new(packet::READ)
                .u32(eof_id)
                .str(b"h1")
                .u64(offset)
                .u32(32768)
                .bytes(),
        );
        replies.extend(status(eof_id, FX_EOF, b"EOF"));
        requests.extend(Pkt::new(packet::CLOSE).u32(eof_id + 1).str(b"h1").bytes());
        replies.extend(status(eof_id + 1, FX_OK, b""));
        (requests, replies)
    }

    #[test]
    fn skipping_payloads_as_the_relay_does_decodes_the_same() {
        let sizes = [100, 5000, 32768, 32768, 7, 32768, 65536, 1];
        let (requests, replies) = download(&sizes);
        let mut fed = started();
        fed.client_to_server(1, &requests);
        for piece in replies.chunks(1000) {
            fed.server_to_client(2, piece);
        }
        let expected = json_events(&mut fed);
        assert_eq!(expected.len(), 1, "{expected:?}");
        assert_eq!(
            expected[0]["bytes_read"],
            json!(sizes.iter().sum::<usize>()),
            "{expected:?}"
        );

        // The relay: splice what is skippable (in slices, as a pipe hands it over), read up to
        // the limit otherwise.
        for splice_slice in [1, 4096, 1 << 20] {
            let mut relayed = started();
            relayed.client_to_server(1, &requests);
            let (mut at, mut spliced, mut reads) = (0, 0, 0);
            while at < replies.len() {
                let skippable = relayed.server_to_client_skippable();
                if skippable > 0 {
                    let n = skippable.min(splice_slice).min(replies.len() - at);
                    relayed.server_to_client_skipped(2, n);
                    spliced += n;
                    at += n;
                } else {
                    // A read returns at most what the pipe holds.
                    let limit = relayed.server_to_client_read_limit().unwrap_or(1 << 20);
                    let n = limit.min(replies.len() - at).min(40_000);
                    relayed.server_to_client(2, &replies[at..at + n]);
                    reads += 1;
                    at += n;
                }
            }
            assert_eq!(json_events(&mut relayed), expected, "slice {splice_slice}");
            assert!(!relayed.stopped());
            // The first read takes what the pipe holds (up to inside the second 32 KiB reply);
            // every payload after that is skipped, the short one included.
            assert!(
                spliced > 30_000 + 32768 + 65536,
                "payloads after the first large reply are skipped, not read: {spliced}"
            );
            assert!(reads < 40, "{reads} reads");
        }
    }

    #[test]
    fn unparsable_requests_are_recorded_and_answered_like_any_other() {
        // sftp-server answers a refused request (-P) without parsing it.
        let bodies = [
            Pkt::new(packet::OPEN).u32(1).u32(1000).bytes(),
            Pkt::new(packet::WRITE)
                .u32(2)
                .str(b"h")
                .u64(0)
                .u32(10)
                .bytes(),
            Pkt::new(packet::READ).u32(3).str(b"h").u64(0).bytes(),
        ];
        let mut d = started();
        for (i, body) in bodies.iter().enumerate() {
            d.client_to_server(1, body);
            d.server_to_client(2, &status(i as u32 + 1, 3, b"Permission denied"));
        }
        let ev = json_events(&mut d);
        let types: Vec<&Value> = ev.iter().map(|e| &e["type"]).collect();
        assert_eq!(types, [&json!(3), &json!(6), &json!(5)]);
        assert!(ev
            .iter()
            .all(|e| e["op"] == "malformed_request" && e["status"] == "permission_denied"));
        assert!(!d.stopped());
    }

    #[test]
    fn trailing_bytes_in_a_request_are_ignored_as_sftp_server_ignores_them() {
        let mut d = started();
        let mut p = Pkt::new(packet::RMDIR).u32(1).str(b"/d");
        p.0.extend_from_slice(b"padding the server skips");
        d.client_to_server(1, &p.bytes());
        d.server_to_client(2, &status(1, FX_OK, b""));
        assert_eq!(json_events(&mut d)[0]["path"], "/d");
        assert!(!d.stopped());
    }

    #[test]
    fn non_utf8_names_are_kept_exactly() {
        let mut d = started();
        d.client_to_server(1, &Pkt::new(packet::REMOVE).u32(1).str(b"/caf\xe9").bytes());
        d.server_to_client(2, &status(1, FX_OK, b""));
        let ev = json_events(&mut d);
        assert_eq!(ev[0]["path"], "/caf\u{fffd}");
        assert_eq!(ev[0]["path_hex"], "2f636166e9");
    }

    #[test]
    fn write_payload_is_skipped_not_buffered() {
        let mut d = started();
        open_for_write(&mut d, 0, b"/big", b"h");
        let n = 200 * 1024;
        let mut header = Pkt::new(packet::WRITE)
            .u32(1)
            .str(b"h")
            .u64(0)
            .u32(n as u32)
            .bytes();
        let body = (header.len() - 4 + n) as u32;
        header[..4].copy_from_slice(&body.to_be_bytes());
        d.client_to_server(1, &header);
        let chunk = vec![0x55u8; 4096];
        for _ in 0..n / 4096 {
            d.client_to_server(2, &chunk);
            assert!(
                d.buffered_bytes() < 8 * 1024,
                "holds {}",
                d.buffered_bytes()
            );
        }
        d.server_to_client(3, &status(1, FX_OK, b""));
        d.client_to_server(4, &Pkt::new(packet::CLOSE).u32(2).str(b"h").bytes());
        d.server_to_client(5, &status(2, FX_OK, b""));
        assert_eq!(json_events(&mut d)[0]["bytes_written"], n as u64);
    }

    #[test]
    fn a_client_that_stops_reading_replies_cannot_switch_decoding_off() {
        let mut d = started();
        let path = vec![b'p'; 4000];
        let mut id = 0;
        // Requests pile up unanswered until the tracking budget is spent...
        while d.take_events().is_empty() {
            id += 1;
            d.client_to_server(
                1,
                &Pkt::new(packet::MKDIR).u32(id).str(&path).u32(0).bytes(),
            );
            assert!(d.buffered_bytes() <= MAX_TRACKED_BYTES + 2 * MAX_PACKET_BYTES);
        }
        let tracked = id - 1;
        // ...past which each request is recorded at once, path included, and the rest follow.
        for _ in 0..100 {
            id += 1;
            d.client_to_server(
                2,
                &Pkt::new(packet::MKDIR).u32(id).str(&path).u32(0).bytes(),
            );
            assert!(d.buffered_bytes() <= MAX_TRACKED_BYTES + 2 * MAX_PACKET_BYTES);
        }
        let untracked = json_events(&mut d);
        assert_eq!(untracked.len(), 100);
        assert!(untracked
            .iter()
            .all(|e| e["status"] == "untracked" && e["path"].as_str().map(str::len) == Some(4000)));
        for reply in 1..=id {
            d.server_to_client(3, &status(reply, FX_OK, b""));
        }
        let answered = json_events(&mut d);
        assert_eq!(answered.len() as u32, tracked);
        assert!(answered.iter().all(|e| e["status"] == "ok"));
        // Decoding is still on: a new operation is recorded with its outcome.
        d.client_to_server(4, &Pkt::new(packet::REMOVE).u32(1).str(b"/later").bytes());
        d.server_to_client(5, &status(1, FX_OK, b""));
        let later = json_events(&mut d);
        assert_eq!(
            (later[0]["path"].as_str(), later[0]["status"].as_str()),
            (Some("/later"), Some("ok"))
        );
        assert!(!d.stopped());
    }

    #[test]
    fn unknown_request_types_and_oversized_handles_do_not_stop_decoding() {
        let mut d = started();
        d.client_to_server(1, &Pkt::new(77).u32(1).str(b"x").bytes());
        d.client_to_server(
            2,
            &Pkt::new(packet::CLOSE).u32(2).str(&[b'h'; 1000]).bytes(),
        );
        d.server_to_client(3, &status(2, 4, b"Failure"));
        let mut write = Pkt::new(packet::WRITE)
            .u32(3)
            .str(&[b'h'; 1000])
            .u64(0)
            .str(b"data")
            .bytes();
        write.extend_from_slice(b"");
        d.client_to_server(4, &write);
        d.server_to_client(5, &status(3, 4, b"Failure"));
        d.client_to_server(6, &Pkt::new(packet::RMDIR).u32(4).str(b"/d").bytes());
        d.server_to_client(7, &status(4, FX_OK, b""));
        let ev = json_events(&mut d);
        assert_eq!(
            ev[0],
            json!({"protocol":"sftp","op":"unknown_request","type":77,"started_us":1})
        );
        assert_eq!(ev[1]["op"], "rmdir");
        assert!(!d.stopped());
    }

    #[test]
    fn extended_requests_are_named() {
        let mut d = started();
        d.client_to_server(
            1,
            &Pkt::new(packet::EXTENDED)
                .u32(1)
                .str(b"expand-path@openssh.com")
                .str(b"~/x")
                .bytes(),
        );
        d.server_to_client(
            2,
            &Pkt::new(packet::NAME)
                .u32(1)
                .u32(1)
                .str(b"/home/u/x")
                .str(b"")
                .u32(0)
                .bytes(),
        );
        d.client_to_server(
            3,
            &Pkt::new(packet::EXTENDED)
                .u32(2)
                .str(b"vendor-thing@example.com")
                .bytes(),
        );
        d.server_to_client(4, &status(2, 8, b"Operation unsupported"));
        let ev = json_events(&mut d);
        assert_eq!(
            ev[0],
            json!({"protocol":"sftp","op":"expand-path","path":"~/x","target":"/home/u/x",
                "extension":"expand-path@openssh.com","status":"ok","status_code":0,"started_us":1,"duration_us":1})
        );
        assert_eq!(ev[1]["op"], "extended");
        assert_eq!(ev[1]["extension"], "vendor-thing@example.com");
        assert_eq!(ev[1]["status"], "op_unsupported");
    }
}
