//! The pty-mode relay between the outer terminal and the pty master: keystrokes in, output
//! out, one chunk in flight per direction. Each readiness has its handler; the loop only waits
//! and dispatches.
//!
//! A read is passed on first and recorded (input after masking) right after, in the same
//! handler: recording only appends to the writer's pending line, which reaches the file by the
//! flush deadline either way, so nothing that could be recorded before is lost, and the echo of
//! a keystroke never waits for the record. The record's own due work (a flush, the anchor, the
//! budget) runs once per wake-up, after everything that wake-up relayed.
#![forbid(unsafe_code)]

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use sessrec_core::record::Stream;
use sessrec_core::schema::{Notice, Resize};

use super::buffer::{Chunk, Filled, CHUNK};
use super::idle::{IdleClock, IdlePolicy, Idleness};
use super::notify::{self, say};
use super::registry::{timeout_ms, Registry};
use super::signals::Signals;
use super::{EndReason, Outcome};
use crate::masking::{InputMasker, InputPiece, TermMode};
use crate::recording::ChannelRecorder;
use crate::sys::{self, ExitStatus, Interest, Pid};

/// How long output is drained after the shell exits while other processes hold the pty.
const DRAIN_MAX: Duration = Duration::from_secs(2);
/// A drain ends when the pty stays quiet this long.
const DRAIN_QUIET_MS: i32 = 50;
/// How soon to look again after the pty's end was seen but not yet the shell's.
const EXIT_EXPECTED: Duration = Duration::from_millis(100);
/// How long to wait for the child after hanging it up.
const HANGUP_WAIT: Duration = Duration::from_secs(3);

/// What the relay is told to run.
pub struct PtyRelay<'a> {
    pub master: OwnedFd,
    /// The outer terminal's input and output (the recorder's fds 0 and 1).
    pub terminal_in: BorrowedFd<'a>,
    pub terminal_out: BorrowedFd<'a>,
    pub signal_fd: BorrowedFd<'a>,
    pub child_pid: Pid,
    pub child_pidfd: OwnedFd,
    pub recorder: &'a mut ChannelRecorder,
    pub masker: Option<InputMasker>,
    /// Typed before the recorder took the terminal: passed on (and recorded) first.
    pub typeahead: Vec<u8>,
    pub idle: IdlePolicy,
}

/// A readiness the relay waits for, in the order the handlers run. Output goes before
/// keystrokes ready in the same wake-up: it was written before they were read, and masking
/// judges a line by the output before it (a prompt still unread would not arm it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PtyEvent {
    Signal,
    Output,
    TerminalWritable,
    Keystrokes,
    MasterWritable,
    ChildExited,
}

/// The running relay.
struct Pty<'a> {
    master: OwnedFd,
    terminal_in: BorrowedFd<'a>,
    terminal_out: BorrowedFd<'a>,
    signal_fd: BorrowedFd<'a>,
    child_pid: Pid,
    child_pidfd: OwnedFd,
    recorder: &'a mut ChannelRecorder,
    masker: Option<InputMasker>,
    to_outer: Chunk,
    to_master: Chunk,
    /// The outer terminal can still be read and written.
    outer_open: bool,
    /// The pty returned end of file (or EIO: no process holds the slave any more).
    master_eof: bool,
    status: Option<ExitStatus>,
    /// After the shell exited: output is drained until then.
    drain_until: Option<Instant>,
    idle: IdleClock,
    end: Option<EndReason>,
}

impl PtyRelay<'_> {
    pub fn run(self) -> Outcome {
        // Reads without a poll first (the final drain) must never block.
        let _ = sys::set_nonblocking(&self.master);
        let mut pty = Pty {
            master: self.master,
            terminal_in: self.terminal_in,
            terminal_out: self.terminal_out,
            signal_fd: self.signal_fd,
            child_pid: self.child_pid,
            child_pidfd: self.child_pidfd,
            recorder: self.recorder,
            masker: self.masker,
            to_outer: Chunk::with_capacity(CHUNK),
            to_master: Chunk::with_capacity(CHUNK),
            outer_open: true,
            master_eof: false,
            status: None,
            drain_until: None,
            idle: IdleClock::new(self.idle, Instant::now()),
            end: None,
        };
        if !self.typeahead.is_empty() {
            pty.to_master.load(&self.typeahead);
            let mode = pty.input_mode();
            pty.record_input(mode);
        }
        pty.relay();
        pty.finish()
    }
}

impl Pty<'_> {
    fn relay(&mut self) {
        loop {
            if self.recorder.must_stop() {
                self.end = Some(EndReason::RecordFailure);
            }
            let now = Instant::now();
            if self.end.is_some() || self.done(now) {
                return;
            }
            let mask_sample_at = self.masker.as_ref().and_then(InputMasker::sample_deadline);
            let ready = match self.wait(self.timeout(now, mask_sample_at)) {
                Ok(ready) => ready,
                Err(_) => {
                    self.end = Some(EndReason::Hangup);
                    return;
                }
            };
            let now = Instant::now();
            if mask_sample_at.is_some_and(|at| now >= at) {
                self.sample_mode(now);
            }
            if ready.is_empty() && self.drain_until.is_some() && self.to_outer.is_empty() {
                // The drain found the pty quiet.
                self.recorder.tick(now);
                return;
            }
            for event in ready {
                self.handle(event, now);
                if self.end.is_some() {
                    break;
                }
            }
            // After the relaying: a flush due now never delays bytes that are ready.
            self.recorder.tick(now);
            if self.end.is_none() {
                self.check_idle(now);
            }
        }
    }

    /// Everything is relayed: the shell ended and its output is out, or the drain is over.
    fn done(&self, now: Instant) -> bool {
        let relayed = self.to_outer.is_empty();
        (self.master_eof && relayed && self.status.is_some())
            || (relayed && self.drain_until.is_some_and(|until| now >= until))
    }

    fn timeout(&self, now: Instant, mask_sample_at: Option<Instant>) -> i32 {
        let exit_expected = (self.master_eof && self.status.is_none()).then(|| now + EXIT_EXPECTED);
        let timeout = timeout_ms(
            now,
            &[
                self.recorder.deadline(),
                self.idle.expires_at(),
                self.idle.warn_at(),
                self.drain_until,
                mask_sample_at,
                exit_expected,
            ],
        );
        if self.drain_until.is_some() {
            timeout.min(DRAIN_QUIET_MS)
        } else {
            timeout
        }
    }

    /// Waits for what the state calls for: input only while nothing is pending toward the
    /// pty (and not while draining), output only while nothing is pending toward the terminal.
    fn wait(&self, timeout: i32) -> std::io::Result<Vec<PtyEvent>> {
        let mut reg = Registry::new();
        let master = self.master.as_fd();
        reg.want(self.signal_fd, Interest::Readable, PtyEvent::Signal);
        reg.want_if(
            !self.master_eof && self.to_outer.is_empty(),
            Some(master),
            Interest::Readable,
            PtyEvent::Output,
        );
        reg.want_if(
            self.outer_open && !self.to_outer.is_empty(),
            Some(self.terminal_out),
            Interest::Writable,
            PtyEvent::TerminalWritable,
        );
        reg.want_if(
            self.outer_open && self.to_master.is_empty() && self.drain_until.is_none(),
            Some(self.terminal_in),
            Interest::Readable,
            PtyEvent::Keystrokes,
        );
        reg.want_if(
            !self.master_eof && !self.to_master.is_empty(),
            Some(master),
            Interest::Writable,
            PtyEvent::MasterWritable,
        );
        reg.want_if(
            self.status.is_none(),
            Some(self.child_pidfd.as_fd()),
            Interest::Readable,
            PtyEvent::ChildExited,
        );
        reg.wait(timeout)
    }

    fn handle(&mut self, event: PtyEvent, now: Instant) {
        match event {
            PtyEvent::Signal => self.on_signals(),
            PtyEvent::Keystrokes => self.on_keystrokes(now),
            PtyEvent::MasterWritable => self.on_master_writable(),
            PtyEvent::Output => self.on_output(now),
            PtyEvent::TerminalWritable => self.on_terminal_writable(),
            PtyEvent::ChildExited => self.on_child_exited(now),
        }
    }

    fn on_signals(&mut self) {
        let signals = Signals::read_from(self.signal_fd);
        if signals.winch {
            self.resize();
        }
        if signals.term {
            let message = self.recorder.take_admin_message().map(str::to_string);
            if self.outer_open {
                say(
                    self.terminal_out,
                    &notify::ended_by_administrator(message.as_deref()),
                );
            }
            self.end = Some(EndReason::Terminated);
        } else if signals.hup {
            self.end = Some(EndReason::Hangup);
        }
    }

    fn on_keystrokes(&mut self, now: Instant) {
        match self.to_master.fill_from(self.terminal_in, usize::MAX) {
            Ok(Filled::End) | Err(_) => self.lose_terminal(),
            Ok(Filled::Bytes(_)) => {
                self.idle.typed(now);
                // Masking judges the keystrokes by the mode the pty had when they came, so
                // it is read before they reach the pty (where they may change it).
                let mode = self.input_mode();
                // Passed on at once, recorded right after: keystroke latency.
                self.on_master_writable();
                self.record_input(mode);
            }
            Ok(Filled::NotReady) => {}
        }
    }

    fn on_master_writable(&mut self) {
        if !self.to_master.is_empty() && self.to_master.drain_to(&self.master).is_err() {
            self.to_master.clear();
        }
    }

    fn on_output(&mut self, now: Instant) {
        if !self.to_outer.is_empty() || self.master_eof {
            return;
        }
        match self.to_outer.fill_from(&self.master, usize::MAX) {
            Ok(Filled::Bytes(_)) => {
                self.idle.activity(now);
                if !self.outer_open {
                    self.to_outer.clear();
                } else {
                    // Written at once when the terminal takes it, recorded right after: echo
                    // latency.
                    self.on_terminal_writable();
                }
                if self.masker.as_ref().is_some_and(InputMasker::wants_mode) {
                    self.sample_mode(now);
                }
                let data = self.to_outer.last_read();
                if let Some(m) = self.masker.as_mut() {
                    m.on_output(data);
                }
                self.recorder.output(Stream::Output, data);
            }
            Ok(Filled::NotReady) => {}
            // EIO: no process holds the slave any more.
            Ok(Filled::End) | Err(_) => self.master_eof = true,
        }
    }

    fn on_terminal_writable(&mut self) {
        if !self.to_outer.is_empty() && self.to_outer.drain_to(self.terminal_out).is_err() {
            self.to_outer.clear();
            self.lose_terminal();
        }
    }

    fn on_child_exited(&mut self, now: Instant) {
        if self.status.is_some() {
            return;
        }
        if let Ok(Some(status)) = sys::waitpid(self.child_pid, true) {
            self.status = Some(ExitStatus::from_wait_status(status));
            self.drain_until = Some(now + DRAIN_MAX);
        }
    }

    /// The outer terminal is gone: the client hung up.
    fn lose_terminal(&mut self) {
        self.outer_open = false;
        self.end = Some(EndReason::Hangup);
    }

    fn check_idle(&mut self, now: Instant) {
        match self.idle.check(now) {
            Idleness::Active => {}
            Idleness::Expired => {
                if self.outer_open {
                    say(self.terminal_out, notify::IDLE_TIMEOUT);
                }
                self.end = Some(EndReason::Idle);
            }
            Idleness::Warn { left_s } => {
                let text = notify::idle_warning(left_s);
                if self.outer_open {
                    say(self.terminal_out, &text);
                }
                let off = self.recorder.offset_us();
                self.recorder.write(&Notice {
                    off: Some(off),
                    message: Some(text.trim().to_string()),
                    idle_warning: Some(true),
                    ..Default::default()
                });
            }
        }
    }

    /// The pty's mode as masking needs it for keystrokes arriving now (`None`: no masking).
    fn input_mode(&self) -> Option<TermMode> {
        // Unreadable settings: as if echo were on, which withholds nothing.
        self.masker
            .as_ref()
            .map(|_| master_mode(&self.master).unwrap_or(TermMode::ECHOING))
    }

    /// Records the keystrokes last read, through masking, judged by `mode` (see
    /// [`Pty::input_mode`]).
    fn record_input(&mut self, mode: Option<TermMode>) {
        let data = self.to_master.last_read();
        match (self.masker.as_mut(), mode) {
            (Some(m), Some(mode)) => {
                let pieces = m.on_input(data, mode, Instant::now());
                self.recorder.input(&pieces);
            }
            _ => self.recorder.input(&[InputPiece::Clear(data)]),
        }
    }

    /// Shows masking the pty's mode between keystrokes (see `InputMasker::observe_mode`).
    fn sample_mode(&mut self, now: Instant) {
        if let (Some(mode), Some(m)) = (master_mode(&self.master), self.masker.as_mut()) {
            m.observe_mode(mode, now);
        }
    }

    /// The outer terminal's size goes to the pty and into the record.
    fn resize(&mut self) {
        if let Ok(ws) = sys::get_winsize(self.terminal_in) {
            if sys::set_winsize(&self.master, &ws).is_ok() {
                let off = self.recorder.offset_us();
                self.recorder.write(&Resize {
                    off: Some(off),
                    cols: Some(u32::from(ws.ws_col)),
                    rows: Some(u32::from(ws.ws_row)),
                    ..Default::default()
                });
            }
        }
    }

    /// Says why the channel ended, hangs up a shell still running and waits for it.
    fn finish(mut self) -> Outcome {
        let reason = self.end.unwrap_or(EndReason::Exit);
        if reason == EndReason::RecordFailure {
            let why = self
                .recorder
                .failure()
                .unwrap_or("unknown error")
                .to_string();
            say(self.terminal_out, &notify::record_failure(&why));
        }
        if self.status.is_none() {
            // Drain what is already there, then hang the session up by closing the master.
            if reason != EndReason::RecordFailure {
                self.drain_master();
            }
            let _ = sys::pty_signal(&self.master, sys::Signal::SIGHUP);
            drop(self.master);
            self.status = reap(&self.child_pidfd, self.child_pid, HANGUP_WAIT);
        }
        Outcome {
            reason,
            status: self.status,
        }
    }

    /// Records (and shows, while the terminal is there) what the pty still holds.
    fn drain_master(&mut self) {
        let mut buf = Chunk::with_capacity(CHUNK);
        for _ in 0..64 {
            buf.clear();
            match buf.fill_from(&self.master, usize::MAX) {
                Ok(Filled::Bytes(_)) => {
                    self.recorder.output(Stream::Output, buf.data());
                    if self.outer_open {
                        let _ = sys::write(self.terminal_out, buf.data());
                    }
                }
                _ => break,
            }
        }
    }
}

fn master_mode(master: &OwnedFd) -> Option<TermMode> {
    sys::tcgetattr(master)
        .ok()
        .map(|t| TermMode::from_termios(&t))
}

/// Waits up to `wait` for the child to end.
fn reap(pidfd: &OwnedFd, pid: Pid, wait: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + wait;
    loop {
        if let Ok(Some(status)) = sys::waitpid(pid, true) {
            return Some(ExitStatus::from_wait_status(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        let mut fds = [sys::pollfd(pidfd.as_fd(), Interest::Readable)];
        let _ = sys::poll(&mut fds, timeout_ms(now, &[Some(deadline)]));
    }
}
