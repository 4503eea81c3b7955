//! The relay loops: one thread, poll(2) on nonblocking descriptors, one bounded chunk in flight
//! per direction (so a terminal that stops reading stops the reading of the pty, and memory
//! stays small), every byte recorded before it is passed on.
#![forbid(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use sessrec_core::record::Stream;

use crate::masking::{InputMasker, InputPiece, TermMode};
use crate::recording::ChannelRecorder;
use crate::spawn::{MonitorMessage, PipeChild, MONITOR_MESSAGE_LEN};
use crate::sys::{self, ExitStatus, StdFd};

/// Largest single read.
const CHUNK: usize = 64 * 1024;
/// Read size and pipe capacity for transfer channels: bulk data in fewer, larger system calls
/// (their payload is only observed, not recorded, so this costs no record size).
const TRANSFER_CHUNK: usize = 1 << 20;
/// Skippable runs shorter than this are read, not spliced (a syscall each either way).
const SPLICE_MIN: usize = 4096;
/// How long output is drained after the shell exits while other processes hold the pty.
const DRAIN_MAX: Duration = Duration::from_secs(2);
/// A drain ends when the pty stays quiet this long.
const DRAIN_QUIET_MS: i32 = 50;
/// How long a message to the user may wait for room on a busy terminal.
const SAY_WAIT: Duration = Duration::from_secs(2);
/// How long to wait for the child after hanging it up.
const HANGUP_WAIT: Duration = Duration::from_secs(3);

/// Why a channel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The command exited.
    Exit,
    /// The client went away (SIGHUP, terminal or pipe closed).
    Hangup,
    /// SIGTERM (from root).
    Terminated,
    /// `idle_timeout_s` passed without input or output.
    Idle,
    /// The record could not be written (`on_error = "deny"`).
    RecordFailure,
    /// The relay failed unexpectedly (a bug); the record is closed properly all the same.
    InternalError,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Exit => "exit",
            EndReason::Hangup => "hangup",
            EndReason::Terminated => "terminated",
            EndReason::Idle => "idle",
            EndReason::RecordFailure => "record_failure",
            EndReason::InternalError => "internal_error",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub reason: EndReason,
    pub status: Option<ExitStatus>,
}

/// Idle policy: warn, then end.
#[derive(Debug, Clone, Copy)]
pub struct IdlePolicy {
    pub timeout: Option<Duration>,
    pub warning: Duration,
}

impl IdlePolicy {
    pub fn new(timeout_s: u64, warning_s: u64) -> Self {
        IdlePolicy {
            timeout: (timeout_s > 0).then(|| Duration::from_secs(timeout_s)),
            warning: Duration::from_secs(warning_s.min(timeout_s)),
        }
    }
}

/// Watches a transfer channel's bytes (see `transfer`); payload is not recorded when present.
pub trait ChannelObserver {
    fn client_to_server(&mut self, now_us: u64, data: &[u8]);
    fn server_to_client(&mut self, now_us: u64, data: &[u8]);
    /// Server→client bytes coming next that the observer only needs counted (a payload it
    /// skips): the relay may move them with splice(2), never through its own memory, and
    /// report them with [`ChannelObserver::server_to_client_skipped`].
    fn server_to_client_skippable(&self) -> usize {
        0
    }
    /// `n` skippable bytes were relayed unseen.
    fn server_to_client_skipped(&mut self, _now_us: u64, _n: usize) {}
    /// Read at most this many server→client bytes next, so that a read stops where skippable
    /// bytes begin; `None`: no limit.
    fn server_to_client_read_limit(&self) -> Option<usize> {
        None
    }
    /// Events ready to be written, as (type, fields).
    fn drain_events(&mut self) -> Vec<(String, Map<String, Value>)>;
    fn finish(&mut self, now_us: u64, exit: Option<i32>);
}

/// Bytes read but not yet written on.
struct Pending {
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

impl Pending {
    fn new() -> Self {
        Pending::with_capacity(CHUNK)
    }
    fn with_capacity(size: usize) -> Self {
        Pending {
            buf: vec![0; size],
            pos: 0,
            len: 0,
        }
    }
    fn is_empty(&self) -> bool {
        self.pos == self.len
    }
    fn data(&self) -> &[u8] {
        &self.buf[self.pos..self.len]
    }
    fn clear(&mut self) {
        self.pos = 0;
        self.len = 0;
    }
    /// Reads into the (empty) buffer. `Ok(None)`: would block.
    fn fill_from(&mut self, fd: impl AsFd) -> io::Result<Option<usize>> {
        self.fill_from_at_most(fd, usize::MAX)
    }
    /// Reads at most `limit` bytes into the (empty) buffer.
    fn fill_from_at_most(&mut self, fd: impl AsFd, limit: usize) -> io::Result<Option<usize>> {
        debug_assert!(self.is_empty());
        self.clear();
        let room = self.buf.len().min(limit.max(1));
        match sys::read(fd, &mut self.buf[..room]) {
            Ok(n) => {
                self.len = n;
                Ok(Some(n))
            }
            Err(e) if would_block(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }
    /// Writes as much as the fd takes. `Ok(true)` when all is written.
    fn drain_to(&mut self, fd: impl AsFd) -> io::Result<bool> {
        while !self.is_empty() {
            match sys::write(&fd, self.data()) {
                Ok(n) => self.pos += n,
                Err(e) if would_block(&e) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        self.clear();
        Ok(true)
    }
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

fn is_eio(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EIO)
}

/// poll(2) timeout until the nearest deadline, rounded up (so a deadline less than a
/// millisecond away does not spin), at most a minute.
fn timeout_ms(now: Instant, deadlines: &[Option<Instant>]) -> i32 {
    deadlines
        .iter()
        .flatten()
        .map(|d| {
            let micros = d.saturating_duration_since(now).as_micros();
            micros.div_ceil(1000).min(60_000) as i32
        })
        .min()
        .unwrap_or(60_000)
}

/// Signals that reached the recorder, read from the self-pipe.
#[derive(Default)]
struct Signals {
    winch: bool,
    hup: bool,
    term: bool,
}

fn read_signals(fd: BorrowedFd<'_>) -> Signals {
    let mut s = Signals::default();
    let mut buf = [0u8; 64];
    while let Ok(n) = sys::read(fd, &mut buf) {
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            match libc::c_int::from(b) {
                libc::SIGWINCH => s.winch = true,
                libc::SIGHUP => s.hup = true,
                libc::SIGTERM => s.term = true,
                _ => {}
            }
        }
    }
    s
}

/// Tells the user something on the (nonblocking) terminal, waiting up to `SAY_WAIT` for room
/// when the terminal is busy, so the reason a session ends is not lost behind output.
fn say(fd: StdFd, text: &str) {
    let mut rest = text.as_bytes();
    let give_up = Instant::now() + SAY_WAIT;
    while !rest.is_empty() {
        match sys::write(fd, rest) {
            Ok(n) => rest = &rest[n..],
            Err(e) if would_block(&e) => {
                let left = give_up.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return;
                }
                let mut fds = [sys::pollfd(fd.raw(), sys::POLLOUT)];
                let _ = sys::poll(&mut fds, left.as_millis().min(1000) as i32 + 1);
            }
            Err(_) => return,
        }
    }
}

fn reap(pidfd: &OwnedFd, pid: sys::Pid, wait: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + wait;
    loop {
        if let Ok(Some(status)) = sys::waitpid(pid, true) {
            return Some(ExitStatus::from_wait_status(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        let mut fds = [sys::pollfd(pidfd.as_raw_fd(), sys::POLLIN)];
        let _ = sys::poll(&mut fds, timeout_ms(now, &[Some(deadline)]));
    }
}

/// The pty-mode relay between the outer terminal (fds 0/1) and the pty master.
pub struct PtyRelay<'a> {
    pub master: OwnedFd,
    pub signal_fd: BorrowedFd<'a>,
    pub child_pid: sys::Pid,
    pub child_pidfd: OwnedFd,
    pub recorder: &'a mut ChannelRecorder,
    pub masker: Option<InputMasker>,
    /// Typed before the recorder took the terminal: passed on (and recorded) first.
    pub typeahead: Vec<u8>,
    pub idle: IdlePolicy,
}

impl PtyRelay<'_> {
    pub fn run(mut self) -> Outcome {
        let (outer_in, outer_out) = (StdFd::Input, StdFd::Output);
        let master = self.master.as_raw_fd();
        // Reads without a poll first (the final drain) must never block.
        let _ = sys::set_nonblocking(&self.master);
        let mut to_outer = Pending::new();
        let mut to_master = Pending::new();
        if !self.typeahead.is_empty() {
            let typed = std::mem::take(&mut self.typeahead);
            let n = typed.len().min(to_master.buf.len());
            to_master.buf[..n].copy_from_slice(&typed[..n]);
            to_master.len = n;
            self.record_input(to_master.data());
        }
        let mut outer_open = true;
        let mut master_eof = false;
        let mut status: Option<ExitStatus> = None;
        let mut drain_until: Option<Instant> = None;
        let mut last_activity = Instant::now();
        let mut warned = false;
        let mut end: Option<EndReason> = None;

        loop {
            if self.recorder.must_stop() {
                end = Some(EndReason::RecordFailure);
            }
            if end.is_some() {
                break;
            }
            if master_eof && to_outer.is_empty() && status.is_some() {
                break;
            }
            let now = Instant::now();
            if let Some(until) = drain_until {
                if now >= until && to_outer.is_empty() {
                    break;
                }
            }
            let idle_at = self.idle.timeout.map(|t| last_activity + t);
            let warn_at = self
                .idle
                .timeout
                .filter(|_| !warned)
                .map(|t| last_activity + t.saturating_sub(self.idle.warning));
            let mask_sample_at = self.masker.as_ref().and_then(InputMasker::sample_deadline);
            let mut deadlines = vec![
                self.recorder.deadline(),
                idle_at,
                warn_at,
                drain_until,
                mask_sample_at,
            ];
            if master_eof && status.is_none() {
                // EIO seen: the shell is about to exit.
                deadlines.push(Some(now + Duration::from_millis(100)));
            }
            let mut timeout = timeout_ms(now, &deadlines);
            if drain_until.is_some() {
                timeout = timeout.min(DRAIN_QUIET_MS);
            }

            let mut master_events = 0;
            if !master_eof && to_outer.is_empty() {
                master_events |= sys::POLLIN;
            }
            if !master_eof && !to_master.is_empty() {
                master_events |= sys::POLLOUT;
            }
            let mut fds = [
                sys::pollfd(
                    if outer_open && to_master.is_empty() && drain_until.is_none() {
                        outer_in.raw()
                    } else {
                        -1
                    },
                    sys::POLLIN,
                ),
                sys::pollfd(
                    if outer_open && !to_outer.is_empty() {
                        outer_out.raw()
                    } else {
                        -1
                    },
                    sys::POLLOUT,
                ),
                sys::pollfd(if master_events != 0 { master } else { -1 }, master_events),
                sys::pollfd(self.signal_fd.as_raw_fd(), sys::POLLIN),
                sys::pollfd(
                    if status.is_none() {
                        self.child_pidfd.as_raw_fd()
                    } else {
                        -1
                    },
                    sys::POLLIN,
                ),
            ];
            let ready = match sys::poll(&mut fds, timeout) {
                Ok(n) => n,
                Err(_) => {
                    end = Some(EndReason::Hangup);
                    continue;
                }
            };
            let now = Instant::now();
            self.recorder.tick(now);
            if mask_sample_at.is_some_and(|at| now >= at) {
                self.sample_mode(now);
            }

            if ready == 0 && drain_until.is_some() && to_outer.is_empty() {
                break;
            }

            if fds[3].revents != 0 {
                let s = read_signals(self.signal_fd);
                if s.winch {
                    self.resize();
                }
                if s.term {
                    let message = self.recorder.take_admin_message().map(str::to_string);
                    if outer_open {
                        let text = match message {
                            Some(m) if !m.is_empty() => format!(
                                "\r\nsessrec: this session was ended by the administrator: {m}\r\n"
                            ),
                            _ => "\r\nsessrec: this session was ended by the administrator.\r\n"
                                .to_string(),
                        };
                        say(outer_out, &text);
                    }
                    end = Some(EndReason::Terminated);
                    continue;
                }
                if s.hup {
                    end = Some(EndReason::Hangup);
                    continue;
                }
            }

            // Keystrokes.
            if fds[0].revents != 0 {
                match to_master.fill_from(outer_in) {
                    Ok(Some(0)) | Err(_) => {
                        outer_open = false;
                        end = Some(EndReason::Hangup);
                        continue;
                    }
                    Ok(Some(_)) => {
                        last_activity = now;
                        warned = false;
                        self.record_input(to_master.data());
                        // Pass it on now rather than after another poll: keystroke latency.
                        if let Err(e) = to_master.drain_to(&self.master) {
                            if !would_block(&e) {
                                to_master.clear();
                            }
                        }
                    }
                    Ok(None) => {}
                }
            }
            if fds[2].revents & (sys::POLLOUT | sys::POLLERR | sys::POLLHUP) != 0
                && !to_master.is_empty()
            {
                if let Err(e) = to_master.drain_to(&self.master) {
                    if !would_block(&e) {
                        to_master.clear();
                    }
                }
            }
            // Output.
            if fds[2].revents & (sys::POLLIN | sys::POLLHUP | sys::POLLERR) != 0
                && to_outer.is_empty()
                && !master_eof
            {
                match to_outer.fill_from(&self.master) {
                    Ok(Some(0)) => master_eof = true,
                    Ok(Some(_)) => {
                        last_activity = now;
                        if self.masker.as_ref().is_some_and(InputMasker::wants_mode) {
                            self.sample_mode(now);
                        }
                        let data = to_outer.data();
                        if let Some(m) = self.masker.as_mut() {
                            m.on_output(data);
                        }
                        self.recorder.output(Stream::Output, data);
                        if !outer_open {
                            to_outer.clear();
                        } else if to_outer.drain_to(outer_out).is_err() {
                            // Written at once when the terminal takes it (echo latency).
                            to_outer.clear();
                            outer_open = false;
                            end = Some(EndReason::Hangup);
                            continue;
                        }
                    }
                    Ok(None) => {}
                    Err(e) if is_eio(&e) => master_eof = true,
                    Err(_) => master_eof = true,
                }
            }
            if fds[1].revents != 0 && !to_outer.is_empty() && to_outer.drain_to(outer_out).is_err()
            {
                to_outer.clear();
                outer_open = false;
                end = Some(EndReason::Hangup);
                continue;
            }
            if fds[4].revents != 0 && status.is_none() {
                if let Ok(Some(st)) = sys::waitpid(self.child_pid, true) {
                    status = Some(ExitStatus::from_wait_status(st));
                    drain_until = Some(now + DRAIN_MAX);
                }
            }
            // Idle policy.
            if let Some(timeout) = self.idle.timeout {
                let idle_for = now.saturating_duration_since(last_activity);
                if idle_for >= timeout {
                    if outer_open {
                        say(
                            outer_out,
                            "\r\nsessrec: idle timeout; the session is closed.\r\n",
                        );
                    }
                    end = Some(EndReason::Idle);
                    continue;
                }
                if !warned && idle_for >= timeout.saturating_sub(self.idle.warning) {
                    warned = true;
                    let left = timeout.saturating_sub(idle_for).as_secs();
                    let text = format!(
                        "\r\nsessrec: this session is idle and will be closed in {left} seconds.\r\n"
                    );
                    if outer_open {
                        say(outer_out, &text);
                    }
                    let mut f = Map::new();
                    f.insert("off".into(), json!(self.recorder.offset_us()));
                    f.insert("message".into(), json!(text.trim()));
                    f.insert("idle_warning".into(), json!(true));
                    self.recorder.event("notice", f);
                }
            }
        }

        let reason = end.unwrap_or(EndReason::Exit);
        if reason == EndReason::RecordFailure {
            let why = self
                .recorder
                .failure()
                .unwrap_or("unknown error")
                .to_string();
            say(
                outer_out,
                &format!("\r\nsessrec: the session record cannot be written ({why}); the session is closed.\r\n"),
            );
        }
        if status.is_none() {
            // Drain what is already there, then hang the session up by closing the master.
            if reason != EndReason::RecordFailure {
                let mut buf = Pending::new();
                for _ in 0..64 {
                    buf.clear();
                    match buf.fill_from(&self.master) {
                        Ok(Some(n)) if n > 0 => {
                            self.recorder.output(Stream::Output, buf.data());
                            if outer_open {
                                let _ = sys::write(outer_out, buf.data());
                            }
                        }
                        _ => break,
                    }
                }
            }
            let _ = sys::pty_signal(master, libc::SIGHUP);
            drop(self.master);
            status = reap(&self.child_pidfd, self.child_pid, HANGUP_WAIT);
        }
        Outcome { reason, status }
    }

    fn record_input(&mut self, data: &[u8]) {
        let mode = self.master_mode();
        match self.masker.as_mut() {
            Some(m) => {
                // Unreadable settings: as if echo were on, which withholds nothing.
                let mode = mode.unwrap_or(TermMode::ECHOING);
                let pieces = m.on_input(data, mode, Instant::now());
                self.recorder.input(&pieces);
            }
            None => self.recorder.input(&[InputPiece::Clear(data)]),
        }
    }

    fn master_mode(&self) -> Option<TermMode> {
        sys::tcgetattr(self.master.as_raw_fd())
            .ok()
            .map(|t| TermMode::from_termios(&t))
    }

    /// Shows masking the pty's mode between keystrokes (see `InputMasker::observe_mode`).
    fn sample_mode(&mut self, now: Instant) {
        if let Some(mode) = self.master_mode() {
            if let Some(m) = self.masker.as_mut() {
                m.observe_mode(mode, now);
            }
        }
    }

    fn resize(&mut self) {
        if let Ok(ws) = sys::get_winsize(0) {
            if sys::set_winsize(self.master.as_raw_fd(), &ws).is_ok() {
                let mut f = Map::new();
                f.insert("off".into(), json!(self.recorder.offset_us()));
                f.insert("cols".into(), json!(ws.ws_col));
                f.insert("rows".into(), json!(ws.ws_row));
                self.recorder.event("resize", f);
            }
        }
    }
}

/// The pipe-mode relay: stdin → command, command's stdout/stderr → fds 1/2, each recorded
/// apart; half-closes are passed on.
pub struct PipeRelay<'a> {
    pub child: PipeChild,
    pub signal_fd: BorrowedFd<'a>,
    pub recorder: &'a mut ChannelRecorder,
    pub observer: Option<Box<dyn ChannelObserver>>,
    pub record_payload: bool,
    pub idle: IdlePolicy,
}

impl PipeRelay<'_> {
    pub fn run(mut self) -> Outcome {
        let bulk = self.observer.is_some();
        let chunk = if bulk { TRANSFER_CHUNK } else { CHUNK };
        let mut stdin_buf = Pending::with_capacity(chunk);
        let mut stdout_buf = Pending::with_capacity(chunk);
        let mut stderr_buf = Pending::new();
        let mut stdin_open = true; // our fd 0
        let mut to_command: Option<OwnedFd> = Some(self.child.stdin);
        let mut from_stdout: Option<OwnedFd> = Some(self.child.stdout);
        let mut from_stderr: Option<OwnedFd> = Some(self.child.stderr);
        let mut out_open = true;
        let mut err_open = true;
        let mut status_fd: Option<OwnedFd> = Some(self.child.status);
        let mut message = Vec::with_capacity(MONITOR_MESSAGE_LEN);
        let mut status: Option<ExitStatus> = None;
        let mut monitor_gone = false;
        let mut end: Option<EndReason> = None;
        let mut last_activity = Instant::now();
        let mut hung_up = false;
        let mut end_since: Option<Instant> = None;
        let mut killed_at: Option<Instant> = None;
        for fd in [
            to_command.as_ref(),
            from_stdout.as_ref(),
            from_stderr.as_ref(),
            status_fd.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            let _ = sys::set_nonblocking(fd);
        }
        if bulk {
            // Best effort: larger pipes mean fewer wake-ups per MiB moved.
            let data_fds = [
                Some(StdFd::Input.fd()),
                Some(StdFd::Output.fd()),
                to_command.as_ref().map(|f| f.as_fd()),
                from_stdout.as_ref().map(|f| f.as_fd()),
            ];
            for fd in data_fds.into_iter().flatten() {
                let _ = sys::grow_pipe(fd, TRANSFER_CHUNK);
            }
        }
        let control = self.child.control.as_fd();
        let forward = |sig: libc::c_int| {
            let _ = sys::write(control, &[sig as u8]);
        };
        // Payload the observer only counts goes from the command's stdout to fd 1 by splice(2)
        // (pages moved, not copied through this process); off for good after any splice error
        // (fd 1 that takes no splice, a closed reader), and the read path takes over.
        let mut splice_usable = bulk && !self.record_payload;
        // A splice would block: wait for fd 1 to take more instead of for stdout.
        let mut splice_waits_for_out = false;

        loop {
            if self.recorder.must_stop() && end.is_none() {
                end = Some(EndReason::RecordFailure);
                forward(libc::SIGHUP);
                forward(libc::SIGTERM);
            }
            let skippable = if splice_usable && stdout_buf.is_empty() && out_open {
                self.observer
                    .as_ref()
                    .map_or(0, |o| o.server_to_client_skippable())
            } else {
                0
            };
            let splicing = skippable >= SPLICE_MIN && from_stdout.is_some();
            if !splicing {
                splice_waits_for_out = false;
            }
            let outputs_done = from_stdout.is_none()
                && from_stderr.is_none()
                && stdout_buf.is_empty()
                && stderr_buf.is_empty();
            if outputs_done && (status.is_some() || monitor_gone) {
                break;
            }
            if end.is_some() && (status.is_some() || monitor_gone) {
                break;
            }
            let now = Instant::now();
            // A command that ignores the hangup is killed, and then no longer waited for.
            if end.is_some() {
                let since = *end_since.get_or_insert(now);
                if killed_at.is_none() && now >= since + HANGUP_WAIT {
                    forward(libc::SIGKILL);
                    killed_at = Some(now);
                }
                if killed_at.is_some_and(|k| now >= k + HANGUP_WAIT) {
                    break;
                }
            }
            let idle_at = self.idle.timeout.map(|t| last_activity + t);
            let escalate_at = end_since.map(|s| s + HANGUP_WAIT);
            let give_up_at = killed_at.map(|k| k + HANGUP_WAIT);
            let timeout = timeout_ms(
                now,
                &[self.recorder.deadline(), idle_at, escalate_at, give_up_at],
            );
            let raw = |f: &Option<OwnedFd>| f.as_ref().map_or(-1, |f| f.as_raw_fd());
            let mut fds = [
                sys::pollfd(
                    if stdin_open && stdin_buf.is_empty() && to_command.is_some() && end.is_none() {
                        0
                    } else {
                        -1
                    },
                    sys::POLLIN,
                ),
                sys::pollfd(
                    if stdin_buf.is_empty() {
                        -1
                    } else {
                        raw(&to_command)
                    },
                    sys::POLLOUT,
                ),
                sys::pollfd(
                    if stdout_buf.is_empty() && !splice_waits_for_out {
                        raw(&from_stdout)
                    } else {
                        -1
                    },
                    sys::POLLIN,
                ),
                sys::pollfd(
                    if stdout_buf.is_empty() && !splice_waits_for_out {
                        -1
                    } else {
                        1
                    },
                    sys::POLLOUT,
                ),
                sys::pollfd(
                    if stderr_buf.is_empty() {
                        raw(&from_stderr)
                    } else {
                        -1
                    },
                    sys::POLLIN,
                ),
                sys::pollfd(if stderr_buf.is_empty() { -1 } else { 2 }, sys::POLLOUT),
                sys::pollfd(raw(&status_fd), sys::POLLIN),
                sys::pollfd(self.signal_fd.as_raw_fd(), sys::POLLIN),
                sys::pollfd(
                    if monitor_gone {
                        -1
                    } else {
                        self.child.monitor_pidfd.as_raw_fd()
                    },
                    sys::POLLIN,
                ),
            ];
            if sys::poll(&mut fds, timeout).is_err() {
                end.get_or_insert(EndReason::Hangup);
                break;
            }
            let now = Instant::now();
            self.recorder.tick(now);
            let now_us = self.recorder.offset_us();

            if fds[7].revents != 0 {
                let s = read_signals(self.signal_fd);
                if (s.hup || s.term) && !hung_up {
                    hung_up = true;
                    if s.term {
                        self.recorder.take_admin_message();
                    }
                    forward(libc::SIGHUP);
                    if s.term {
                        forward(libc::SIGTERM);
                    }
                    end.get_or_insert(if s.term {
                        EndReason::Terminated
                    } else {
                        EndReason::Hangup
                    });
                }
            }
            if fds[0].revents != 0 {
                match stdin_buf.fill_from(StdFd::Input) {
                    Ok(Some(0)) | Err(_) => {
                        stdin_open = false;
                    }
                    Ok(Some(n)) => {
                        last_activity = now;
                        let data = stdin_buf.data();
                        if let Some(obs) = self.observer.as_mut() {
                            obs.client_to_server(now_us, data);
                        }
                        if self.observer.is_none() || self.record_payload {
                            self.recorder.input(&[InputPiece::Clear(data)]);
                        } else {
                            self.recorder.count_unrecorded(n, 0);
                        }
                    }
                    Ok(None) => {}
                }
            }
            if !stdin_buf.is_empty() {
                if let Some(fd) = to_command.as_ref() {
                    if fds[1].revents != 0 && stdin_buf.drain_to(fd).is_err() {
                        // The command closed its stdin: drop what it will never read.
                        stdin_buf.clear();
                        to_command = None;
                    }
                }
            }
            if !stdin_open && stdin_buf.is_empty() && to_command.is_some() {
                // Half-close: the command sees EOF on stdin.
                to_command = None;
            }
            if splicing {
                let ready = if splice_waits_for_out {
                    fds[3].revents != 0
                } else {
                    fds[2].revents != 0
                };
                if ready {
                    let spliced = match from_stdout.as_ref() {
                        Some(from) => {
                            sys::splice(from, StdFd::Output, skippable.min(TRANSFER_CHUNK))
                        }
                        None => Err(io::Error::from_raw_os_error(libc::EBADF)),
                    };
                    match spliced {
                        Ok(0) => {
                            // End of the command's output: pass the EOF on.
                            from_stdout = None;
                            let _ = close_std(StdFd::Output);
                            out_open = false;
                        }
                        Ok(n) => {
                            last_activity = now;
                            splice_waits_for_out = false;
                            if let Some(obs) = self.observer.as_mut() {
                                obs.server_to_client_skipped(now_us, n);
                            }
                            self.recorder.count_spliced(n);
                        }
                        // Readable stdout but no room on fd 1, or room but nothing to read.
                        Err(e) if would_block(&e) => splice_waits_for_out = !splice_waits_for_out,
                        Err(_) => {
                            splice_usable = false;
                            splice_waits_for_out = false;
                        }
                    }
                }
            }
            let read_limit = if splice_usable {
                self.observer
                    .as_ref()
                    .and_then(|o| o.server_to_client_read_limit())
                    .unwrap_or(usize::MAX)
            } else {
                usize::MAX
            };
            for (poll_in, poll_out, source, buf, target, open, stream) in [
                (
                    2usize,
                    3usize,
                    &mut from_stdout,
                    &mut stdout_buf,
                    StdFd::Output,
                    &mut out_open,
                    Stream::Output,
                ),
                (
                    4,
                    5,
                    &mut from_stderr,
                    &mut stderr_buf,
                    StdFd::Error,
                    &mut err_open,
                    Stream::Stderr,
                ),
            ] {
                if fds[poll_in].revents != 0
                    && buf.is_empty()
                    && !(splicing && target == StdFd::Output)
                {
                    if let Some(fd) = source.as_ref() {
                        let limit = if target == StdFd::Output {
                            read_limit
                        } else {
                            usize::MAX
                        };
                        match buf.fill_from_at_most(fd, limit) {
                            Ok(Some(0)) | Err(_) => {
                                *source = None;
                                // Pass the EOF on to the client.
                                if *open {
                                    let _ = close_std(target);
                                    *open = false;
                                }
                            }
                            Ok(Some(n)) => {
                                last_activity = now;
                                let data = buf.data();
                                let observed = stream == Stream::Output
                                    && self
                                        .observer
                                        .as_mut()
                                        .map(|o| {
                                            o.server_to_client(now_us, data);
                                        })
                                        .is_some();
                                if !observed || self.record_payload {
                                    self.recorder.output(stream, data);
                                } else {
                                    self.recorder.count_unrecorded(0, n);
                                }
                                if !*open {
                                    buf.clear();
                                }
                            }
                            Ok(None) => {}
                        }
                    }
                }
                // While splicing, a reply's header is passed on at once, so its payload can
                // follow without another poll.
                let write_now =
                    fds[poll_out].revents != 0 || (splice_usable && target == StdFd::Output);
                if !buf.is_empty() && write_now && buf.drain_to(target).is_err() {
                    buf.clear();
                    *open = false;
                }
            }
            if let Some(obs) = self.observer.as_mut() {
                for (kind, fields) in obs.drain_events() {
                    self.recorder.event(&kind, fields);
                }
            }
            if fds[6].revents != 0 {
                if let Some(fd) = status_fd.as_ref() {
                    let mut buf = [0u8; 64];
                    match sys::read(fd, &mut buf) {
                        Ok(0) | Err(_) => status_fd = None,
                        Ok(n) => message.extend_from_slice(&buf[..n]),
                    }
                }
                take_monitor_messages(&mut message, &mut status);
            }
            if fds[8].revents != 0 && !monitor_gone {
                let _ = sys::waitpid(self.child.monitor_pid, false);
                monitor_gone = true;
                // Read any status message it left.
                if let Some(fd) = status_fd.as_ref() {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = sys::read(fd, &mut buf) {
                        if n == 0 {
                            break;
                        }
                        message.extend_from_slice(&buf[..n]);
                    }
                    take_monitor_messages(&mut message, &mut status);
                }
            }
            if let Some(timeout) = self.idle.timeout {
                if end.is_none() && now.saturating_duration_since(last_activity) >= timeout {
                    end = Some(EndReason::Idle);
                    forward(libc::SIGHUP);
                    forward(libc::SIGTERM);
                }
            }
        }
        if let Some(obs) = self.observer.as_mut() {
            obs.finish(self.recorder.offset_us(), status.map(|s| s.shell_code()));
            for (kind, fields) in obs.drain_events() {
                self.recorder.event(&kind, fields);
            }
        }
        Outcome {
            reason: end.unwrap_or(EndReason::Exit),
            status,
        }
    }
}

/// Consumes the complete monitor messages in `pending`; the command's end sets `status`.
/// (The command's pid is not needed here: the monitor forwards the signals.)
fn take_monitor_messages(pending: &mut Vec<u8>, status: &mut Option<ExitStatus>) {
    while let Some(bytes) = pending.first_chunk::<MONITOR_MESSAGE_LEN>() {
        if let Some(MonitorMessage::CommandEnded(wait_status)) = MonitorMessage::decode(*bytes) {
            *status = Some(ExitStatus::from_wait_status(wait_status));
        }
        pending.drain(..MONITOR_MESSAGE_LEN);
    }
}

/// Replaces fd 1 or 2 with /dev/null, so the reader on the other side sees EOF.
fn close_std(fd: StdFd) -> io::Result<()> {
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    sys::redirect_std_fd(fd, &null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up_and_are_bounded() {
        let now = Instant::now();
        assert_eq!(timeout_ms(now, &[]), 60_000);
        assert_eq!(timeout_ms(now, &[None]), 60_000);
        assert_eq!(timeout_ms(now, &[Some(now)]), 0);
        assert_eq!(timeout_ms(now, &[Some(now + Duration::from_micros(10))]), 1);
        assert_eq!(
            timeout_ms(
                now,
                &[
                    Some(now + Duration::from_millis(500)),
                    Some(now + Duration::from_millis(20))
                ]
            ),
            20
        );
        assert_eq!(
            timeout_ms(now, &[Some(now + Duration::from_secs(3600))]),
            60_000
        );
    }

    #[test]
    fn pending_keeps_partial_writes() {
        let (r, w) = sys::pipe().unwrap();
        let mut p = Pending::new();
        sys::write(&w, b"hello").unwrap();
        assert_eq!(p.fill_from(&r).unwrap(), Some(5));
        assert_eq!(p.data(), b"hello");
        let (r2, w2) = sys::pipe().unwrap();
        assert!(p.drain_to(&w2).unwrap());
        assert!(p.is_empty());
        let mut buf = [0u8; 8];
        assert_eq!(sys::read(&r2, &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
    }

    #[test]
    fn monitor_messages_are_taken_whole_and_the_end_sets_the_status() {
        let mut pending = Vec::new();
        let mut status = None;
        pending.extend_from_slice(&[b'P', 1, 0, 0, 0, b'S', 0]);
        take_monitor_messages(&mut pending, &mut status);
        assert_eq!(status, None);
        assert_eq!(pending, [b'S', 0]);
        pending.extend_from_slice(&[3, 0, 0]);
        take_monitor_messages(&mut pending, &mut status);
        assert_eq!(status, Some(ExitStatus::from_wait_status(3 << 8)));
        assert!(pending.is_empty());
    }
}
