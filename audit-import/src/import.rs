//! One import pass: read what is new in auditd's log, assemble events, place each exec and
//! connect on its login session (kernel audit session id + boot) and channel (process
//! ancestry), write them to the session's `audit.jsonl`, turn every sign of loss into
//! `audit_gap` lines, then save where the import stands.
//!
//! Exactly once: lines are written and fsynced before the state that counts them is saved; a
//! restart cuts each file back to its saved length and reads the log again from the saved
//! position, skipping the events the state lists as written past it.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use sessrec_core::bounds::{set_bounded_bytes, PATH_MAX};
use sessrec_core::exec_args;
use sessrec_core::id::SessionId;
use sessrec_core::import::index::{LoginSession, RecordIndex};
use sessrec_core::import::resume::{self, ResumePoint};
use sessrec_core::import::store;
use sessrec_core::record::FileContext;
use sessrec_core::schema::{audit_gap, connect, exec, AuditGap, Connect, ConnectEnd, Exec};
use sessrec_core::sys::{syslog_authpriv, Level};
use sessrec_core::time::Timestamp;
use sessrec_core::tree::SessionDir;
use sessrec_core::writer::{RecordWriter, WriterOptions};

use crate::auditlog::event::{
    interpret, printable, ConnectFact, ExecFact, Fact, OwnedRecord, Process,
};
use crate::auditlog::record::{parse_line, EventId, LineProblem};
use crate::closes::{self, Closes, Found, OpenConnect};
use crate::logfiles::{self, LogFile};
use crate::sockdiag::TcpSocket;
use crate::state::{DaemonDown, LostMark, Position, State};
use crate::tree::Node;

/// The file each session's audit records go to.
pub const AUDIT_FILE: &str = "audit.jsonl";
/// Bytes of log read at a time.
const READ_CHUNK: usize = 1 << 20;
/// Records of other events after which an event without its closing record counts as whole.
const COMPLETE_AFTER: u64 = 256;
/// How far back the session index looks.
const INDEX_DAYS: i64 = 31;
/// How often the kernel's lost counter is read under `--follow`.
const LOST_INTERVAL: Duration = Duration::from_secs(1);
/// Longest time the session index is used without reading it again.
const INDEX_MAX_AGE_US: i64 = 10_000_000;

#[derive(Debug, Clone)]
pub struct Options {
    pub record_dir: PathBuf,
    pub log_file: PathBuf,
    pub state_file: PathBuf,
    pub writer: WriterOptions,
    pub read_gid: Option<u32>,
    /// Live mode: an event is written only once it is `hold` old, so that the channel it ran
    /// in has written its `channel.start`; and an event with no closing record waits too.
    pub live: bool,
    pub hold: Duration,
    /// Read the kernel's lost counter (off for tests of captured logs).
    pub check_lost: bool,
    pub syslog_anchors: bool,
    /// Follow the kernel's TCP close notifications to write each connect's `connect.end`
    /// (root; live mode).
    pub follow_closes: bool,
}

/// What a pass did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub bytes_read: u64,
    pub records: u64,
    pub events: u64,
    pub execs_written: u64,
    pub connects_written: u64,
    pub gaps_written: u64,
    /// `connect.end` lines written, and connects whose open sockets are now followed.
    pub ends_written: u64,
    pub connects_followed: u64,
    /// Execs and connects of no recorded session (other logins, other hosts' sessions).
    pub unattributed: u64,
    pub skipped_lines: u64,
    pub already_written: u64,
    pub errors: Vec<String>,
}

struct Pending {
    /// Offset of its first record in the current file.
    start: u64,
    records: Vec<OwnedRecord>,
    closed: bool,
    /// Records read (of any event) when its last record was read.
    last_seen: u64,
}

struct OpenWriter {
    writer: RecordWriter,
    dir: PathBuf,
    record: PathBuf,
    ctx: FileContext,
    touched: bool,
}

/// The importer, kept across passes under `--follow`.
pub struct Importer {
    opts: Options,
    state: State,
    index: RecordIndex,
    /// When the index was read (µs since the epoch): a session that logged in before then is
    /// in it.
    index_at_us: i64,
    /// When the lost counter was last read, and its value in the saved state.
    lost_checked: Option<Instant>,
    saved_lost: Option<u64>,
    /// When each session was last read again for its channels.
    session_read_us: HashMap<SessionId, i64>,
    /// The current file and the offset read up to (past `state.position.offset` while events
    /// are pending).
    reading: Option<(LogFile, u64)>,
    pending: BTreeMap<EventId, Pending>,
    records_seen: u64,
    writers: HashMap<SessionId, OpenWriter>,
    boot: BootInfo,
    users: HashMap<u32, Option<String>>,
    /// The kernel's close notifications, when followed; why not, until reported once.
    closes: Option<Closes>,
    closes_problem: Option<String>,
    /// Whether the connections the saved state follows were checked against the live sockets.
    open_checked: bool,
}

/// This boot's id and start time: `ses` counts from 1 again after a reboot.
struct BootInfo {
    id: Option<String>,
    start_us: Option<i64>,
}

fn boot_info() -> BootInfo {
    let start_us = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(|secs| secs * 1_000_000)
    });
    BootInfo {
        id: sessrec_core::sys::boot_id(),
        start_us,
    }
}

fn rfc3339(us: i64) -> String {
    Timestamp::from_micros(us).to_string()
}

fn errno_name(exit: i64) -> Option<String> {
    if !(-4095..0).contains(&exit) {
        return None;
    }
    let e = nix::errno::Errno::from_raw((-exit) as i32);
    Some(match e {
        nix::errno::Errno::UnknownErrno => format!("E{}", -exit),
        e => format!("{e:?}"),
    })
}

impl Importer {
    pub fn new(opts: Options) -> io::Result<Importer> {
        let state = State::load(&opts.state_file)?;
        let (closes, closes_problem) = if opts.follow_closes {
            match Closes::open(Timestamp::now().as_micros()) {
                Ok(c) => (Some(c), None),
                Err(e) => (
                    None,
                    Some(format!(
                        "the kernel's TCP close notifications (sock_diag): {e}; connection ends are not recorded"
                    )),
                ),
            }
        } else {
            (None, None)
        };
        Ok(Importer {
            opts,
            state,
            index: RecordIndex::default(),
            index_at_us: i64::MIN,
            session_read_us: HashMap::new(),
            lost_checked: None,
            saved_lost: None,
            reading: None,
            pending: BTreeMap::new(),
            records_seen: 0,
            writers: HashMap::new(),
            boot: boot_info(),
            users: HashMap::new(),
            closes,
            closes_problem,
            open_checked: false,
        })
    }

    fn rescan(&mut self) -> io::Result<()> {
        let now = Timestamp::now().as_micros();
        let since = now - INDEX_DAYS * 86_400 * 1_000_000;
        self.index = RecordIndex::scan(&self.opts.record_dir, Some(since))?;
        self.index_at_us = now;
        self.session_read_us.clear();
        Ok(())
    }

    /// One pass. `last`: the log is read to its end and every pending event is written (a
    /// single run, or shutdown).
    pub fn pass(&mut self, last: bool) -> io::Result<Summary> {
        let _lock = store::lock(&self.opts.state_file)?;
        let mut summary = Summary::default();
        // The index is read again when an event needs a session newer than it, and every
        // INDEX_MAX_AGE for logouts and channel ends.
        let mut rescanned = false;
        if Timestamp::now()
            .as_micros()
            .saturating_sub(self.index_at_us)
            > INDEX_MAX_AGE_US
        {
            self.rescan()?;
            rescanned = true;
        }
        if let Some(problem) = self.closes_problem.take() {
            summary.errors.push(problem);
        }
        self.follow_closes(&mut summary, &mut rescanned)?;
        let files = logfiles::list(&self.opts.log_file)?;
        let (mut index, mut offset) = self.start_point(&files, &mut summary)?;
        // A first run saves where it starts before writing anything: a file it creates and
        // does not get to count is then known to be newer than the saved state.
        if self.state.position.is_none() {
            if let Some(file) = index.and_then(|i| files.get(i)) {
                self.reading = Some((file.clone(), offset));
                self.save_position()?;
                self.state.save(&self.opts.state_file)?;
            }
        }
        while let Some(file) = index.and_then(|i| files.get(i)).cloned() {
            if self.reading.as_ref().map(|(f, _)| (f.dev, f.ino)) != Some((file.dev, file.ino)) {
                self.reading = Some((file.clone(), offset));
            }
            loop {
                let buf = logfiles::read_lines(&file, offset, READ_CHUNK)?;
                if buf.is_empty() {
                    break;
                }
                summary.bytes_read += buf.len() as u64;
                let mut at = offset;
                for line in buf.split_inclusive(|b| *b == b'\n') {
                    self.take_line(&line[..line.len() - 1], at, &mut summary);
                    at += line.len() as u64;
                }
                offset = at;
                if let Some((_, o)) = &mut self.reading {
                    *o = offset;
                }
                self.write_ready(false, &mut rescanned, &mut summary)?;
                // Written events before the first pending one are never read again.
                let keep_from = self
                    .pending
                    .values()
                    .map(|p| p.start)
                    .min()
                    .unwrap_or(offset);
                self.state.done_after.retain(|_, start| *start >= keep_from);
            }
            let newest = index == Some(files.len() - 1);
            if newest {
                self.write_ready(last, &mut rescanned, &mut summary)?;
                break;
            }
            // A rotated file read to its end: whatever is pending in it is whole.
            self.write_ready(true, &mut rescanned, &mut summary)?;
            index = index.map(|i| i + 1);
            offset = 0;
            self.state.done_after.clear();
            if let Some(next) = index.and_then(|i| files.get(i)) {
                self.reading = Some((next.clone(), 0));
            }
        }
        self.save_position()?;
        // auditctl is a process: at most once a second.
        if self.opts.check_lost
            && (last
                || self
                    .lost_checked
                    .is_none_or(|t| t.elapsed() >= LOST_INTERVAL))
        {
            self.lost_checked = Some(Instant::now());
            self.check_lost(&mut summary, &mut rescanned)?;
        }
        self.finish_pass(last, &mut summary)?;
        Ok(summary)
    }

    /// Where to read: the saved position's file (found again by inode after a rotation), or
    /// the oldest file when there is none; a file rotated away before it was read whole is a
    /// gap.
    fn start_point(
        &mut self,
        files: &[LogFile],
        summary: &mut Summary,
    ) -> io::Result<(Option<usize>, u64)> {
        if let Some((file, offset)) = &self.reading {
            if let Some(i) = files
                .iter()
                .position(|f| (f.dev, f.ino) == (file.dev, file.ino))
            {
                return Ok((Some(i), *offset));
            }
        }
        self.pending.clear();
        self.reading = None;
        let Some(pos) = self.state.position.clone() else {
            return Ok((if files.is_empty() { None } else { Some(0) }, 0));
        };
        for (i, f) in files.iter().enumerate() {
            if (f.dev, f.ino) == (pos.dev, pos.ino)
                && f.len >= pos.offset
                && logfiles::head(f).ok().as_deref() == Some(pos.head.as_str())
            {
                return Ok((Some(i), pos.offset));
            }
        }
        // The file is gone: everything after the last event read may have been in it.
        let first_us = files.first().and_then(|f| first_event_us(f).ok().flatten());
        let now = Timestamp::now().as_micros();
        let from = self.state.last_event_us.unwrap_or(now);
        let to = first_us.unwrap_or(now).max(from);
        let detail = format!(
            "{} was rotated away before it was read to its end (offset {})",
            printable(pos.path.as_os_str().as_encoded_bytes(), 512),
            pos.offset
        );
        self.gap(from, to, "rotated_away", None, &detail, summary, &mut false)?;
        self.state.done_after.clear();
        self.state.position = None;
        Ok((if files.is_empty() { None } else { Some(0) }, 0))
    }

    fn take_line(&mut self, line: &[u8], at: u64, summary: &mut Summary) {
        let record = match parse_line(line) {
            Ok(r) => r,
            Err(LineProblem::TooLong | LineProblem::NotARecord) => {
                if !line.is_empty() {
                    summary.skipped_lines += 1;
                }
                return;
            }
        };
        summary.records += 1;
        self.records_seen += 1;
        let closing = record.kind == "PROCTITLE" || record.kind.starts_with("DAEMON_");
        let seen = self.records_seen;
        let p = self.pending.entry(record.id).or_insert_with(|| Pending {
            start: at,
            records: Vec::new(),
            closed: false,
            last_seen: seen,
        });
        // An event's records are bounded: a flood of one id cannot grow without end.
        if p.records.len() < 4096 {
            p.records.push(OwnedRecord::of(&record));
        }
        p.closed |= closing;
        p.last_seen = seen;
    }

    /// Writes the pending events that are whole (all of them when `all`), in the order they
    /// started in the log; an event still open does not hold back the ones after it.
    fn write_ready(
        &mut self,
        all: bool,
        rescanned: &mut bool,
        summary: &mut Summary,
    ) -> io::Result<()> {
        let now = Timestamp::now().as_micros();
        let hold = if self.opts.live && !all {
            self.opts.hold.as_micros() as i64
        } else {
            0
        };
        let mut order: Vec<(u64, EventId)> =
            self.pending.iter().map(|(id, p)| (p.start, *id)).collect();
        order.sort();
        for (_, id) in order {
            let ready = {
                let p = &self.pending[&id];
                let whole = all
                    || p.closed
                    || self.records_seen.saturating_sub(p.last_seen) >= COMPLETE_AFTER
                    || (self.opts.live && now - id.micros() > 2 * hold.max(500_000));
                whole && (hold == 0 || now - id.micros() >= hold)
            };
            if !ready {
                continue;
            }
            let Some(p) = self.pending.remove(&id) else {
                continue;
            };
            summary.events += 1;
            let key = id.to_string();
            if self.state.done_after.contains_key(&key) {
                summary.already_written += 1;
            } else {
                self.handle(id, &p.records, rescanned, summary)?;
            }
            self.state.done_after.insert(key, p.start);
            self.state.last_event_us = Some(
                self.state
                    .last_event_us
                    .map_or(id.micros(), |l| l.max(id.micros())),
            );
        }
        Ok(())
    }

    /// Moves the saved position up to the first event still pending, and forgets written
    /// events before it.
    fn save_position(&mut self) -> io::Result<()> {
        let Some((file, read_to)) = self.reading.clone() else {
            return Ok(());
        };
        let offset = self
            .pending
            .values()
            .map(|p| p.start)
            .min()
            .unwrap_or(read_to);
        let head = match &self.state.position {
            Some(p) if (p.dev, p.ino) == (file.dev, file.ino) && !p.head.is_empty() => {
                p.head.clone()
            }
            _ => logfiles::head(&file).unwrap_or_default(),
        };
        // Events that start before the new offset are never read again.
        self.state.done_after.retain(|_, start| *start >= offset);
        self.state.position = Some(Position {
            path: file.path.clone(),
            dev: file.dev,
            ino: file.ino,
            head,
            offset,
        });
        Ok(())
    }

    fn handle(
        &mut self,
        id: EventId,
        records: &[OwnedRecord],
        rescanned: &mut bool,
        summary: &mut Summary,
    ) -> io::Result<()> {
        match interpret(id, records) {
            Fact::Exec(e) => self.exec(e, rescanned, summary),
            Fact::Connect(c) => self.connect(c, rescanned, summary),
            Fact::Daemon(d) => {
                let at = id.micros();
                match d.kind.as_str() {
                    "DAEMON_END" | "DAEMON_ABORT" => {
                        self.state.daemon_down = Some(DaemonDown {
                            kind: d.kind.to_ascii_lowercase(),
                            at_us: at,
                            detail: d.detail,
                        });
                    }
                    "DAEMON_START" => {
                        if let Some(down) = self.state.daemon_down.take() {
                            let detail = format!("{} until DAEMON_START", down.detail);
                            self.gap(
                                down.at_us, at, &down.kind, None, &detail, summary, rescanned,
                            )?;
                        }
                    }
                    "DAEMON_RESUME" => {
                        let from = self.state.last_event_us.unwrap_or(at).min(at);
                        self.gap(
                            from,
                            at,
                            "daemon_resume",
                            None,
                            &d.detail,
                            summary,
                            rescanned,
                        )?;
                    }
                    _ => {}
                }
                Ok(())
            }
            Fact::Other => Ok(()),
        }
    }

    /// The recorded login session of audit session `ses` at `at_us`.
    fn session_of(
        &mut self,
        ses: u32,
        at_us: i64,
        rescanned: &mut bool,
    ) -> io::Result<Option<usize>> {
        let find = |index: &RecordIndex, boot: &BootInfo| {
            index.sessions.iter().position(|s| {
                s.audit_session == Some(ses) && s.covers(at_us) && same_boot(s, at_us, boot)
            })
        };
        if let Some(i) = find(&self.index, &self.boot) {
            return Ok(Some(i));
        }
        // A login after the index was read (its line is written before any of its processes
        // runs) is found by reading it again; an older index would have had it.
        if !*rescanned && self.index_at_us < at_us + 1_000_000 {
            self.rescan()?;
            *rescanned = true;
            return Ok(find(&self.index, &self.boot));
        }
        Ok(None)
    }

    /// The channel of a process of session `si`; the session is read again once when no
    /// channel claims it (its channel.start may be newer than the index).
    fn place(
        &mut self,
        si: usize,
        process: &Process,
        ses: u32,
        at_us: i64,
    ) -> Option<crate::tree::Placement> {
        let roots = |s: &LoginSession| -> BTreeMap<u32, String> {
            let mut r = BTreeMap::new();
            for c in &s.channels {
                for pid in [c.recorder_pid, c.pid].into_iter().flatten() {
                    r.insert(pid, c.file.clone());
                }
            }
            r
        };
        let live_parent = |pid: u32| sessrec_core::sys::parent_pid(pid).ok();
        let r = roots(&self.index.sessions[si]);
        if let Some(p) = self
            .state
            .tree
            .place(process.pid, process.ppid, ses, &r, &live_parent)
        {
            return Some(p);
        }
        // Its channel.start may be newer than what was read of the session.
        let s = &self.index.sessions[si];
        let read_at = self
            .session_read_us
            .get(&s.id)
            .copied()
            .unwrap_or(self.index_at_us);
        if read_at >= at_us + 1_000_000 {
            return None;
        }
        let id = s.id;
        if let Ok(Some(fresh)) = LoginSession::read(&s.dir, s.id) {
            self.index.sessions[si] = fresh;
        }
        self.session_read_us
            .insert(id, Timestamp::now().as_micros());
        let r = roots(&self.index.sessions[si]);
        self.state
            .tree
            .place(process.pid, process.ppid, ses, &r, &live_parent)
    }

    fn user_name(&mut self, uid: Option<u32>) -> Option<String> {
        let uid = uid?;
        self.users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .clone()
    }

    /// The recorded session (its index and audit session) and channel of `process` at `at`;
    /// `None` for a process of no audit session, or of none recorded (counted).
    fn attribute(
        &mut self,
        process: &Process,
        at: i64,
        rescanned: &mut bool,
        summary: &mut Summary,
    ) -> io::Result<Option<(usize, u32, Option<crate::tree::Placement>)>> {
        let Some(ses) = process.ses else {
            return Ok(None);
        };
        let Some(si) = self.session_of(ses, at, rescanned)? else {
            summary.unattributed += 1;
            return Ok(None);
        };
        let placed = self.place(si, process, ses, at);
        Ok(Some((si, ses, placed)))
    }

    fn exec(&mut self, e: ExecFact, rescanned: &mut bool, summary: &mut Summary) -> io::Result<()> {
        let at = e.id.micros();
        let Some((si, ses, placed)) = self.attribute(&e.process, at, rescanned, summary)? else {
            return Ok(());
        };
        self.state.tree.record(
            e.process.pid,
            Node {
                ppid: e.process.ppid,
                ses,
                channel: placed.as_ref().map(|p| p.channel.clone()),
                seen_us: at,
            },
        );
        let p = &e.process;
        let mut line = Exec {
            at: Some(rfc3339(at)),
            audit_id: Some(e.id.to_string()),
            syscall: Some(e.syscall.into()),
            pid: Some(p.pid),
            ppid: Some(p.ppid),
            channel: placed.as_ref().map(|p| p.channel.clone()),
            channel_via: placed.as_ref().map(|p| p.via),
            uid: p.uid,
            euid: p.euid,
            suid: p.suid,
            fsuid: p.fsuid,
            gid: p.gid,
            egid: p.egid,
            auid: p.auid,
            ses: p.ses,
            root: p.euid.map(|u| u == 0),
            success: Some(p.success),
            exit: Some(p.exit),
            errno: errno_name(p.exit),
            argc: Some(e.argc),
            argv_problem: e.problem.clone(),
            ..Default::default()
        };
        line.user_name = self.user_name(p.uid);
        line.euser_name = self.user_name(p.euid);
        let extra = &mut line.extra;
        for (slot, name, value) in [
            (&mut line.tty, exec::tty, &p.tty),
            (&mut line.comm, exec::comm, &p.comm),
            (&mut line.exe, exec::exe, &p.exe),
            (&mut line.cwd, exec::cwd, &e.cwd),
            (&mut line.path, exec::path, &e.path),
            (&mut line.key, exec::key, &p.key),
        ] {
            if let Some(v) = value {
                set_bounded_bytes(slot, extra, name, v, PATH_MAX);
            }
        }
        let w = self.writer_for(si)?;
        exec_args::write(&mut w.writer, line, &e.args)?;
        w.touched = true;
        summary.execs_written += 1;
        Ok(())
    }

    fn connect(
        &mut self,
        c: ConnectFact,
        rescanned: &mut bool,
        summary: &mut Summary,
    ) -> io::Result<()> {
        let at = c.id.micros();
        let Some((si, _, placed)) = self.attribute(&c.process, at, rescanned, summary)? else {
            return Ok(());
        };
        let p = &c.process;
        let result = if p.success {
            "connected"
        } else if p.exit == -i64::from(libc::EINPROGRESS) {
            "in_progress"
        } else {
            "failed"
        };
        let mut line = Connect {
            at: Some(rfc3339(at)),
            audit_id: Some(c.id.to_string()),
            pid: Some(p.pid),
            ppid: Some(p.ppid),
            channel: placed.as_ref().map(|p| p.channel.clone()),
            channel_via: placed.as_ref().map(|p| p.via),
            uid: p.uid,
            euid: p.euid,
            auid: p.auid,
            ses: p.ses,
            root: p.euid.map(|u| u == 0),
            family: Some(c.family.into()),
            address: Some(c.address.clone()),
            port: Some(c.port),
            result: Some(result.into()),
            success: Some(p.success),
            exit: Some(p.exit),
            errno: errno_name(p.exit),
            ..Default::default()
        };
        let extra = &mut line.extra;
        for (slot, name, value) in [
            (&mut line.comm, connect::comm, &p.comm),
            (&mut line.exe, connect::exe, &p.exe),
            (&mut line.key, connect::key, &p.key),
        ] {
            if let Some(v) = value {
                set_bounded_bytes(slot, extra, name, v, PATH_MAX);
            }
        }
        // The socket is looked for before the line is written: a reader who sees the line may
        // end the connection.
        let open_now = match &self.closes {
            Some(closes) if p.success || result == "in_progress" => {
                Some(closes.find_open(p.pid, c.fd, c.family, &c.address, c.port))
            }
            _ => None,
        };
        let w = self.writer_for(si)?;
        w.writer.write(&line)?;
        w.touched = true;
        summary.connects_written += 1;
        if let Some(open_now) = open_now {
            self.follow_connect(si, &c, line, open_now, rescanned, summary)?;
        }
        Ok(())
    }

    /// Ties a connect just written to its kernel socket (`open_now`: looked for before the
    /// line was written): followed until it closes when open, ended now when it was freed
    /// already.
    fn follow_connect(
        &mut self,
        si: usize,
        c: &ConnectFact,
        line: Connect,
        open_now: io::Result<Option<TcpSocket>>,
        rescanned: &mut bool,
        summary: &mut Summary,
    ) -> io::Result<()> {
        let at = c.id.micros();
        let mut open = OpenConnect {
            session: self.index.sessions[si].id.to_string(),
            audit_id: c.id.to_string(),
            at_us: at,
            pid: c.process.pid,
            channel: line.channel,
            exe: line.exe,
            address: c.address.clone(),
            port: c.port,
            local_address: String::new(),
            local_port: 0,
            cookie: 0,
        };
        match open_now {
            Ok(Some(s)) => {
                open.local_address = s.local.to_string();
                open.local_port = s.local_port;
                open.cookie = s.cookie;
                if self.state.open_connects.len() >= closes::OPEN_MAX {
                    summary.errors.push(format!(
                        "more than {} connections open at once: the end of {} is not followed",
                        closes::OPEN_MAX,
                        open.audit_id
                    ));
                    return Ok(());
                }
                self.state.open_connects.insert(s.cookie.to_string(), open);
                summary.connects_followed += 1;
                return Ok(());
            }
            Ok(None) => {}
            Err(e) => {
                summary
                    .errors
                    .push(format!("the kernel's socket list (sock_diag): {e}"));
                return Ok(());
            }
        }
        // Freed already: its notification may still wait in the queue.
        self.follow_closes(summary, rescanned)?;
        let Some(closes) = self.closes.as_mut() else {
            return Ok(());
        };
        match closes.find_freed(&c.address, c.port, at) {
            Found::Freed(seen, s) => {
                open.local_address = s.local.to_string();
                open.local_port = s.local_port;
                open.cookie = s.cookie;
                let end = End {
                    at_us: seen,
                    socket: Some(&s),
                    result: "closed",
                    reason: None,
                    matched_by: Some("destination_time"),
                };
                self.write_end(&open, end, rescanned, summary)
            }
            Found::Ambiguous(n) => {
                let reason = format!(
                    "{n} sockets to this destination were freed before the connect was imported, and none can be told from the others"
                );
                let end = End {
                    at_us: Timestamp::now().as_micros(),
                    socket: None,
                    result: "unknown",
                    reason: Some(&reason),
                    matched_by: None,
                };
                self.write_end(&open, end, rescanned, summary)
            }
            // Made before the importer listened, and gone: its end left no trace here.
            Found::NotTcp if at < closes.since_us => {
                let end = End {
                    at_us: Timestamp::now().as_micros(),
                    socket: None,
                    result: "unknown",
                    reason: Some(
                        "it was made before the importer began following closes, and its socket was gone when it was imported",
                    ),
                    matched_by: None,
                };
                self.write_end(&open, end, rescanned, summary)
            }
            Found::NotTcp => Ok(()),
        }
    }

    /// Reads the kernel's close notifications: the followed connections that closed get their
    /// `connect.end`. After a restart, or when the kernel dropped notifications, a followed
    /// connection whose socket is gone gets an end marked `unknown`.
    fn follow_closes(&mut self, summary: &mut Summary, rescanned: &mut bool) -> io::Result<()> {
        let now = Timestamp::now().as_micros();
        let followed = &self.state.open_connects;
        let Some(closes) = self.closes.as_mut() else {
            return Ok(());
        };
        let (ends, overflowed) =
            match closes.drain(now, |cookie| followed.contains_key(&cookie.to_string())) {
                Ok(r) => r,
                Err(e) => {
                    summary
                        .errors
                        .push(format!("the kernel's TCP close notifications: {e}"));
                    return Ok(());
                }
            };
        for s in ends {
            if let Some(open) = self.state.open_connects.remove(&s.cookie.to_string()) {
                let end = End {
                    at_us: now,
                    socket: Some(&s),
                    result: "closed",
                    reason: None,
                    matched_by: Some("socket"),
                };
                self.write_end(&open, end, rescanned, summary)?;
            }
        }
        if self.open_checked && !overflowed {
            return Ok(());
        }
        self.open_checked = true;
        if self.state.open_connects.is_empty() {
            return Ok(());
        }
        let reason = if overflowed {
            "the kernel dropped close notifications (the importer's receive buffer was full)"
        } else {
            "it closed while no importer was following"
        };
        let live = match closes::live_cookies() {
            Ok(live) => live,
            Err(e) => {
                summary
                    .errors
                    .push(format!("the kernel's socket list (sock_diag): {e}"));
                return Ok(());
            }
        };
        let gone: Vec<String> = self
            .state
            .open_connects
            .keys()
            .filter(|k| k.parse::<u64>().is_ok_and(|c| !live.contains(&c)))
            .cloned()
            .collect();
        for key in gone {
            if let Some(open) = self.state.open_connects.remove(&key) {
                let end = End {
                    at_us: now,
                    socket: None,
                    result: "unknown",
                    reason: Some(reason),
                    matched_by: Some("socket"),
                };
                self.write_end(&open, end, rescanned, summary)?;
            }
        }
        Ok(())
    }

    /// Writes a `connect.end` into the connect's session.
    fn write_end(
        &mut self,
        open: &OpenConnect,
        end: End<'_>,
        rescanned: &mut bool,
        summary: &mut Summary,
    ) -> io::Result<()> {
        let Some(id) = SessionId::parse(&open.session) else {
            return Ok(());
        };
        let find = |index: &RecordIndex| index.sessions.iter().position(|s| s.id == id);
        let si = match find(&self.index) {
            Some(si) => si,
            None if !*rescanned => {
                self.rescan()?;
                *rescanned = true;
                match find(&self.index) {
                    Some(si) => si,
                    None => return Ok(()),
                }
            }
            None => return Ok(()),
        };
        let mut line = ConnectEnd {
            at: Some(rfc3339(end.at_us)),
            audit_id: Some(open.audit_id.clone()),
            pid: Some(open.pid),
            channel: open.channel.clone(),
            exe: open.exe.clone(),
            address: Some(open.address.clone()),
            port: Some(open.port),
            result: Some(end.result.into()),
            reason: end.reason.map(str::to_string),
            duration_us: Some(end.at_us.saturating_sub(open.at_us).max(0) as u64),
            matched_by: end.matched_by.map(str::to_string),
            ..Default::default()
        };
        if open.cookie != 0 {
            line.cookie = Some(open.cookie);
            line.local_address = Some(open.local_address.clone());
            line.local_port = Some(open.local_port);
        }
        if let Some(c) = end.socket.and_then(|s| s.counters) {
            let (to, from) = closes::payload(&c);
            line.bytes_to_destination = Some(to);
            line.bytes_from_destination = Some(from);
            line.tcpi_bytes_acked = Some(c.bytes_acked);
            line.tcpi_bytes_received = Some(c.bytes_received);
            line.tcpi_bytes_sent = c.bytes_sent;
            line.tcpi_bytes_retrans = c.bytes_retrans;
        }
        let w = self.writer_for(si)?;
        w.writer.write(&line)?;
        w.touched = true;
        summary.ends_written += 1;
        Ok(())
    }

    /// An `audit_gap` in every recorded session with an audit session that was open at some
    /// time between `from` and `to`.
    #[allow(clippy::too_many_arguments)]
    fn gap(
        &mut self,
        from: i64,
        to: i64,
        reason: &str,
        lost: Option<u64>,
        detail: &str,
        summary: &mut Summary,
        rescanned: &mut bool,
    ) -> io::Result<()> {
        if !*rescanned && self.index_at_us < to {
            self.rescan()?;
            *rescanned = true;
        }
        let open: Vec<usize> = self
            .index
            .sessions
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.audit_session.is_some()
                    && s.login_us <= to
                    && s.logout_us.is_none_or(|end| end >= from)
            })
            .map(|(i, _)| i)
            .collect();
        for si in open {
            let mut line = AuditGap {
                from: Some(rfc3339(from)),
                to: Some(rfc3339(to)),
                reason: Some(reason.into()),
                lost,
                ..Default::default()
            };
            sessrec_core::bounds::set_bounded(
                &mut line.detail,
                &mut line.extra,
                audit_gap::detail,
                detail,
                1024,
            );
            let w = self.writer_for(si)?;
            w.writer.write(&line)?;
            w.touched = true;
            summary.gaps_written += 1;
        }
        Ok(())
    }

    fn check_lost(&mut self, summary: &mut Summary, rescanned: &mut bool) -> io::Result<()> {
        let value = match crate::lost::read_lost() {
            Ok(v) => v,
            Err(e) => {
                summary.errors.push(format!("lost counter: {e}"));
                return Ok(());
            }
        };
        let now = Timestamp::now().as_micros();
        if let Some(prev) = self.state.lost {
            let grew = if value >= prev.value {
                value - prev.value
            } else {
                // Reset (auditctl --reset-lost) since: what it counts now was lost since.
                value
            };
            if grew > 0 {
                let detail = format!(
                    "the kernel's lost counter went from {} to {value}",
                    prev.value
                );
                self.gap(
                    prev.at_us,
                    now,
                    "lost",
                    Some(grew),
                    &detail,
                    summary,
                    rescanned,
                )?;
            }
        }
        self.state.lost = Some(LostMark { value, at_us: now });
        Ok(())
    }

    /// The open writer of session `si`'s audit.jsonl: resumed from the state, or created.
    fn writer_for(&mut self, si: usize) -> io::Result<&mut OpenWriter> {
        let s = &self.index.sessions[si];
        let id = s.id;
        if !self.writers.contains_key(&id) {
            let dir = SessionDir::open(&self.opts.record_dir, id)?;
            let relative = s
                .dir
                .strip_prefix(&self.opts.record_dir)
                .unwrap_or(&s.dir)
                .join(AUDIT_FILE);
            let ctx = FileContext {
                host: s.host.clone(),
                session: id,
                file: AUDIT_FILE.into(),
                user: s.user.clone(),
                actor: s.actor.clone(),
            };
            let (writer, ctx) = match self.state.files.get(&id.to_string()) {
                Some(point) => (
                    point.reopen(&dir, &self.opts.record_dir, self.opts.writer)?,
                    point.context()?,
                ),
                None => match dir.create_file(AUDIT_FILE) {
                    Ok(file) => (RecordWriter::new(file, ctx.clone(), self.opts.writer)?, ctx),
                    // Created after the last saved state (which names every file it counts):
                    // a run that stopped before saving. Its lines are written again from the
                    // saved position, so the file starts over.
                    Err(e)
                        if e.kind() == io::ErrorKind::AlreadyExists
                            && self.state.position.is_some() =>
                    {
                        let file = dir.open_file(AUDIT_FILE)?;
                        file.set_len(0)?;
                        (RecordWriter::new(file, ctx.clone(), self.opts.writer)?, ctx)
                    }
                    // No state at all (it was deleted): continue the file rather than lose
                    // it; events read again may then be written twice.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => (
                        RecordWriter::resume(
                            dir.open_file(AUDIT_FILE)?,
                            ctx.clone(),
                            self.opts.writer,
                        )?,
                        ctx,
                    ),
                    Err(e) => return Err(e),
                },
            };
            self.writers.insert(
                id,
                OpenWriter {
                    writer,
                    dir: dir.path().to_path_buf(),
                    record: relative,
                    ctx,
                    touched: false,
                },
            );
        }
        Ok(self.writers.get_mut(&id).expect("inserted above"))
    }

    /// Syncs what was written, saves the state, and closes the files of sessions that ended.
    fn finish_pass(&mut self, last: bool, summary: &mut Summary) -> io::Result<()> {
        for (id, w) in &mut self.writers {
            if !w.touched {
                continue;
            }
            w.writer.flush()?;
            resume::sync(&w.dir.join(AUDIT_FILE), &w.dir)?;
            self.state.files.insert(
                id.to_string(),
                ResumePoint::at(w.record.clone(), &w.ctx, w.writer.bytes_written()),
            );
            w.touched = false;
            if self.opts.syslog_anchors {
                if let Some(anchor) = w.writer.poll_anchor(Instant::now()) {
                    syslog_authpriv(Level::Info, &anchor.to_string());
                }
            }
        }
        // Sessions over for a while: their files and processes are done.
        let now = Timestamp::now().as_micros();
        let over = |s: &LoginSession| s.logout_us.is_some_and(|end| now - end > 60_000_000);
        let ended: Vec<SessionId> = self
            .index
            .sessions
            .iter()
            .filter(|s| over(s))
            .map(|s| s.id)
            .collect();
        let open_ses: Vec<u32> = self
            .index
            .sessions
            .iter()
            .filter(|s| !over(s))
            .filter_map(|s| s.audit_session)
            .collect();
        self.state
            .tree
            .retain_sessions(|ses| open_ses.contains(&ses));
        // Their files stay in the state (a late event continues them at the saved length)
        // until the sessions are older than the index reaches.
        let oldest_ms = (now / 1000).saturating_sub((INDEX_DAYS + 1) * 86_400_000);
        self.state.files.retain(|id, _| {
            SessionId::parse(id).is_none_or(|id| id.unix_millis() as i64 >= oldest_ms)
        });
        for id in ended {
            if let Some(w) = self.writers.remove(&id) {
                let anchor = w.writer.close()?;
                if self.opts.syslog_anchors {
                    syslog_authpriv(Level::Info, &anchor.to_string());
                }
            }
        }
        // An idle pass changes nothing worth an fsync (a lost mark's time only moves the
        // start of a later gap earlier).
        let lost_moved = self.state.lost.map(|l| l.value) != self.saved_lost;
        let followed_moved = summary.ends_written > 0 || summary.connects_followed > 0;
        if summary.bytes_read > 0
            || summary.gaps_written > 0
            || lost_moved
            || followed_moved
            || last
        {
            self.state.save(&self.opts.state_file)?;
            self.saved_lost = self.state.lost.map(|l| l.value);
        }
        if last {
            for (_, w) in self.writers.drain() {
                let anchor = w.writer.close()?;
                if self.opts.syslog_anchors {
                    syslog_authpriv(Level::Info, &anchor.to_string());
                }
            }
        }
        Ok(())
    }
}

/// How a followed connection ended.
struct End<'a> {
    at_us: i64,
    /// The freed socket, with its final counters, when the kernel reported it.
    socket: Option<&'a TcpSocket>,
    /// `closed` or `unknown`.
    result: &'static str,
    reason: Option<&'a str>,
    matched_by: Option<&'static str>,
}

/// Whether session `s` is of the boot an event at `at_us` happened in.
fn same_boot(s: &LoginSession, at_us: i64, boot: &BootInfo) -> bool {
    match (&s.boot_id, &boot.id, boot.start_us) {
        (Some(sb), Some(b), Some(start)) => (sb == b) == (at_us >= start),
        _ => true,
    }
}

/// The time of the first event in a log file.
fn first_event_us(file: &LogFile) -> io::Result<Option<i64>> {
    let buf = logfiles::read_lines(file, 0, 64 * 1024)?;
    Ok(buf
        .split(|b| *b == b'\n')
        .find_map(|l| parse_line(l).ok())
        .map(|r| r.id.micros()))
}
