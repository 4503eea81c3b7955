//! SFTP version 3 decoder: turns copies of both byte streams into one event per operation.
//!
//! It only observes. Packets are framed incrementally; the payload of WRITE requests and DATA
//! replies is skipped by length, never buffered; any other packet is kept whole only up to
//! OpenSSH's own packet limit (256 KiB, beyond which the peer itself gives up). Requests are
//! matched to replies by id. On anything it cannot follow it stops decoding, says so once,
//! and leaves the byte counting to the monitor.
#![forbid(unsafe_code)]

mod attrs;
mod codes;
mod events;
mod framing;
mod handles;

use std::collections::{HashMap, VecDeque};

use super::event::{Protocol, TransferEvent, WireField, WireText};
use super::wire::Reader;
use attrs::{parse_attrs, set_attrs};
use codes::{packet, FX_EOF, FX_OK};
use events::{event_cost, open_failure_event, set_status};
use framing::{Framer, Side};
use handles::{handle, OpenFile};

#[cfg(test)]
pub use framing::MAX_PACKET_BYTES;

/// Memory allowed for outstanding requests and open handles (paths mostly).
const MAX_TRACKED_BYTES: usize = 16 * 1024 * 1024;

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
            ev.count = Some(self.stats);
            ev.failed = Some(self.stats_failed);
            self.events.push(ev);
            self.stats = 0;
        }
    }

    /// Whether decoding gave up (the `decode_stopped` event says why).
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Memory held for framing and tracking, for bounds checks.
    #[cfg(test)]
    pub fn buffered_bytes(&self) -> usize {
        self.from_client.buffered_bytes() + self.from_server.buffered_bytes() + self.tracked_bytes
    }

    fn stop(&mut self, now_us: u64, reason: &str) {
        self.flush_unfinished(now_us);
        let mut ev = TransferEvent::new(Protocol::Sftp, "decode_stopped");
        ev.set_text(WireField::Reason, reason.as_bytes());
        ev.bytes_from_client = Some(self.client_bytes);
        ev.bytes_to_client = Some(self.server_bytes);
        ev.at_us = Some(now_us);
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
                event.status = Some("no_reply".to_owned());
                event.started_us = Some(p.started_us);
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
            ev.status = Some("untracked".to_owned());
            ev.started_us = Some(now_us);
            ev
        };
        match expect {
            Expect::Open { path, pflags, mode } => {
                let ev = open_failure_event(path, pflags, mode);
                self.events.push(untracked(ev));
            }
            Expect::OpenDir { path } => {
                let mut ev = TransferEvent::new(Protocol::Sftp, "list");
                ev.set_wire(WireField::Path, &path);
                self.events.push(untracked(ev));
            }
            Expect::Close { handle } => {
                if let Some(file) = self.handles.remove(&handle) {
                    self.tracked_bytes -= file.cost();
                    let mut ev = file.into_event(now_us, None);
                    ev.status = Some("untracked".to_owned());
                    ev.closed = None;
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
            Some(path) => {
                ev.set_wire(WireField::Path, path);
            }
            None => ev.path_unknown = Some(true),
        }
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
                ev.set_request_type(kind);
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
            ev.set_path(WireField::Path, path);
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
                ev.set_path(WireField::Target, r.string()?);
                Expect::Op {
                    event: ev,
                    resolves: false,
                }
            }
            packet::SYMLINK => {
                // OpenSSH sends the link's contents first and the new link's path second.
                let target = r.string()?;
                let mut ev = path_op("symlink", r.string()?);
                ev.set_path(WireField::Target, target);
                Expect::Op {
                    event: ev,
                    resolves: false,
                }
            }
            packet::EXTENDED => self.extended_request(r)?,
            other => {
                // sftp-server logs an unknown request and sends no reply: nothing to wait for.
                let mut ev = TransferEvent::new(Protocol::Sftp, "unknown_request");
                ev.set_request_type(other);
                ev.started_us = Some(now_us);
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
            ev.set_path(WireField::Path, r.string()?);
            ev.set_path(WireField::Target, r.string()?);
            Some(ev)
        };
        let one_path = |op: &'static str, r: &mut Reader<'_>| -> Option<TransferEvent> {
            let mut ev = TransferEvent::new(Protocol::Sftp, op);
            ev.set_path(WireField::Path, r.string()?);
            Some(ev)
        };
        let mut resolves = false;
        let mut ev = match name {
            b"posix-rename@openssh.com" => two_paths("rename", r)?,
            b"hardlink@openssh.com" => {
                // oldpath (the existing file), newpath (the link made): path = the new link.
                let existing = r.string()?;
                let mut ev = one_path("hardlink", r)?;
                ev.set_path(WireField::Target, existing);
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
                ev.set_path(WireField::RequestedUser, r.string()?);
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
                    Some(path) => {
                        ev.set_wire(WireField::Target, path);
                    }
                    None => ev.target_unknown = Some(true),
                }
                ev.offset = Some(offset);
                ev.length = Some(length);
                ev.target_offset = Some(dest_offset);
                ev
            }
            _ => TransferEvent::new(Protocol::Sftp, "extended"),
        };
        ev.set_text(WireField::Extension, name);
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
                    event.set_path(WireField::Target, r.string().ok_or_else(bad)?);
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
        event.started_us = Some(started_us);
        event.duration_us = Some(now_us.saturating_sub(started_us));
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
                ev.set_wire(WireField::Path, &path);
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

#[cfg(test)]
mod tests;
