//! The pipe-mode relay: the client's stdin → the command, the command's stdout and stderr →
//! the client's fds 1 and 2, each recorded apart; half-closes are passed on. The command is
//! signalled through the monitor (see `spawn`), which also reports how it ended. Each
//! readiness has its handler; the loop only decides what to wait for, waits and dispatches.
#![forbid(unsafe_code)]

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use sessrec_core::record::Stream;

use super::buffer::{would_block, Chunk, Filled, CHUNK};
use super::client::{Client, ClientFd};
use super::idle::{IdleClock, IdlePolicy};
use super::monitor::MonitorLink;
use super::registry::{timeout_ms, Registry};
use super::signals::Signals;
use super::{ChannelObserver, EndReason, Outcome};
use crate::masking::InputPiece;
use crate::recording::ChannelRecorder;
use crate::spawn::PipeChild;
use crate::sys::{self, Interest, Pid};

/// Read size and pipe capacity for transfer channels: bulk data in fewer, larger system calls
/// (their payload is only observed, not recorded, so this costs no record size).
const TRANSFER_CHUNK: usize = 1 << 20;
/// Skippable runs shorter than this are read, not spliced (a syscall each either way).
const SPLICE_MIN: usize = 4096;
/// How long a command may ignore a hangup before it is killed, and a killed one is waited for.
const HANGUP_WAIT: Duration = Duration::from_secs(3);

/// What the relay is told to run.
pub struct PipeRelay<'a> {
    pub child: PipeChild,
    pub client: Client,
    pub signal_fd: BorrowedFd<'a>,
    pub recorder: &'a mut ChannelRecorder,
    pub observer: Option<Box<dyn ChannelObserver>>,
    pub record_payload: bool,
    pub idle: IdlePolicy,
}

/// A readiness the relay waits for, in the order the handlers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PipeEvent {
    Signal,
    ClientInput,
    CommandWritable,
    CommandOutput,
    ClientOutputWritable,
    CommandErrors,
    ClientErrorWritable,
    MonitorMessage,
    MonitorExited,
}

/// The client's stdin on its way to the command.
struct Inbound {
    /// The client's stdin has not ended.
    open: bool,
    chunk: Chunk,
    /// The command's stdin, until it is closed (or half-closed after the client's end).
    target: Option<OwnedFd>,
}

impl Inbound {
    /// The client's stdin ended and everything is passed on: the command sees end of file.
    fn half_close_when_done(&mut self) {
        if !self.open && self.chunk.is_empty() {
            self.target = None;
        }
    }
}

/// One of the command's output streams on its way to the client.
struct Outbound {
    /// The command's end, until end of file.
    source: Option<OwnedFd>,
    chunk: Chunk,
    target: ClientFd,
    /// The client's end still takes bytes.
    open: bool,
}

impl Outbound {
    /// Passes the command's end of file on to the client.
    fn end_source(&mut self) {
        self.source = None;
        if self.open {
            let _ = self.target.close();
            self.open = false;
        }
    }

    fn write_pending(&mut self) {
        if !self.chunk.is_empty() && self.chunk.drain_to(&self.target).is_err() {
            self.chunk.clear();
            self.open = false;
        }
    }
}

/// How the end of the channel proceeds.
#[derive(Default)]
struct Ending {
    reason: Option<EndReason>,
    /// When the reason was first seen by the loop.
    since: Option<Instant>,
    /// When the command was sent SIGKILL for ignoring the hangup.
    killed_at: Option<Instant>,
    /// The hangup (or termination) was forwarded once.
    hung_up: bool,
}

/// Payload the observer only counts goes from the command's stdout to fd 1 by splice(2) (pages
/// moved, not copied through this process); off for good after any splice error (an fd 1 that
/// takes no splice, a closed reader), and the read path takes over.
struct Splice {
    usable: bool,
    /// A splice would block: wait for fd 1 to take more instead of for stdout.
    waits_for_client: bool,
    /// Bytes to splice this turn (decided before the wait).
    this_turn: Option<usize>,
}

/// The running relay.
struct Pipe<'a> {
    inbound: Inbound,
    stdout: Outbound,
    stderr: Outbound,
    monitor: MonitorLink,
    monitor_pid: Pid,
    monitor_pidfd: OwnedFd,
    monitor_gone: bool,
    /// Signal numbers (one byte each) for the monitor to forward.
    control: OwnedFd,
    signal_fd: BorrowedFd<'a>,
    recorder: &'a mut ChannelRecorder,
    observer: Option<Box<dyn ChannelObserver>>,
    record_payload: bool,
    splice: Splice,
    idle: IdleClock,
    ending: Ending,
}

impl PipeRelay<'_> {
    pub fn run(self) -> Outcome {
        let bulk = self.observer.is_some();
        let chunk = if bulk { TRANSFER_CHUNK } else { CHUNK };
        let PipeChild {
            monitor_pid,
            monitor_pidfd,
            stdin,
            stdout,
            stderr,
            control,
            status,
        } = self.child;
        for fd in [&stdin, &stdout, &stderr, &status] {
            let _ = sys::set_nonblocking(fd);
        }
        if bulk {
            // Best effort: larger pipes mean fewer wake-ups per MiB moved.
            for fd in [
                self.client.input.as_fd(),
                self.client.output.as_fd(),
                stdin.as_fd(),
                stdout.as_fd(),
            ] {
                let _ = sys::grow_pipe(fd, TRANSFER_CHUNK);
            }
        }
        let Client {
            input: client_input,
            output: client_output,
            error: client_error,
        } = self.client;
        let mut pipe = Pipe {
            inbound: Inbound {
                open: true,
                chunk: Chunk::with_capacity(chunk),
                target: Some(stdin),
            },
            stdout: Outbound {
                source: Some(stdout),
                chunk: Chunk::with_capacity(chunk),
                target: client_output,
                open: true,
            },
            stderr: Outbound {
                source: Some(stderr),
                chunk: Chunk::with_capacity(CHUNK),
                target: client_error,
                open: true,
            },
            monitor: MonitorLink::new(status),
            monitor_pid,
            monitor_pidfd,
            monitor_gone: false,
            control,
            signal_fd: self.signal_fd,
            recorder: self.recorder,
            splice: Splice {
                usable: bulk && !self.record_payload,
                waits_for_client: false,
                this_turn: None,
            },
            observer: self.observer,
            record_payload: self.record_payload,
            idle: IdleClock::new(self.idle, Instant::now()),
            ending: Ending::default(),
        };
        pipe.relay(&client_input);
        pipe.finish()
    }
}

impl Pipe<'_> {
    fn relay(&mut self, client_input: &ClientFd) {
        loop {
            if self.recorder.must_stop() && self.ending.reason.is_none() {
                self.ending.reason = Some(EndReason::RecordFailure);
                self.hang_up_command();
            }
            self.plan_splice();
            let ended = self.monitor.status().is_some() || self.monitor_gone;
            if ended && (self.outputs_done() || self.ending.reason.is_some()) {
                return;
            }
            let now = Instant::now();
            if self.escalate(now) {
                return;
            }
            let ready = match self.wait(client_input, self.timeout(now)) {
                Ok(ready) => ready,
                Err(_) => {
                    self.ending.reason.get_or_insert(EndReason::Hangup);
                    return;
                }
            };
            let now = Instant::now();
            self.recorder.tick(now);
            let now_us = self.recorder.offset_us();
            for event in ready {
                self.handle(event, client_input, now, now_us);
            }
            self.record_observer_events();
            if self.ending.reason.is_none() && self.idle.expired(now) {
                self.ending.reason = Some(EndReason::Idle);
                self.hang_up_command();
            }
        }
    }

    /// Decides before the wait whether stdout is spliced this turn.
    fn plan_splice(&mut self) {
        let skippable = if self.splice.usable && self.stdout.chunk.is_empty() && self.stdout.open {
            self.observer
                .as_ref()
                .map_or(0, |o| o.server_to_client_skippable())
        } else {
            0
        };
        let splicing = skippable >= SPLICE_MIN && self.stdout.source.is_some();
        self.splice.this_turn = splicing.then_some(skippable);
        if !splicing {
            self.splice.waits_for_client = false;
        }
    }

    fn outputs_done(&self) -> bool {
        self.stdout.source.is_none()
            && self.stderr.source.is_none()
            && self.stdout.chunk.is_empty()
            && self.stderr.chunk.is_empty()
    }

    /// A command that ignores the hangup is killed, and then no longer waited for: `true`
    /// when it is time to give up.
    fn escalate(&mut self, now: Instant) -> bool {
        if self.ending.reason.is_none() {
            return false;
        }
        let since = *self.ending.since.get_or_insert(now);
        if self.ending.killed_at.is_none() && now >= since + HANGUP_WAIT {
            self.forward(libc::SIGKILL);
            self.ending.killed_at = Some(now);
        }
        self.ending
            .killed_at
            .is_some_and(|killed| now >= killed + HANGUP_WAIT)
    }

    fn timeout(&self, now: Instant) -> i32 {
        timeout_ms(
            now,
            &[
                self.recorder.deadline(),
                self.idle.expires_at(),
                self.ending.since.map(|s| s + HANGUP_WAIT),
                self.ending.killed_at.map(|k| k + HANGUP_WAIT),
            ],
        )
    }

    /// Waits for what the state calls for: a direction reads only while nothing of it is
    /// pending, and writes only while something is; client input stops once the channel ends.
    fn wait(&self, client_input: &ClientFd, timeout: i32) -> std::io::Result<Vec<PipeEvent>> {
        let mut reg = Registry::new();
        let inbound = &self.inbound;
        let (stdout, stderr) = (&self.stdout, &self.stderr);
        let to_client = stdout.chunk.is_empty() && !self.splice.waits_for_client;
        reg.want(self.signal_fd, Interest::Readable, PipeEvent::Signal);
        reg.want_if(
            inbound.open
                && inbound.chunk.is_empty()
                && inbound.target.is_some()
                && self.ending.reason.is_none(),
            Some(client_input.as_fd()),
            Interest::Readable,
            PipeEvent::ClientInput,
        );
        reg.want_if(
            !inbound.chunk.is_empty(),
            inbound.target.as_ref().map(|f| f.as_fd()),
            Interest::Writable,
            PipeEvent::CommandWritable,
        );
        reg.want_if(
            to_client,
            stdout.source.as_ref().map(|f| f.as_fd()),
            Interest::Readable,
            PipeEvent::CommandOutput,
        );
        reg.want_if(
            !to_client,
            Some(stdout.target.as_fd()),
            Interest::Writable,
            PipeEvent::ClientOutputWritable,
        );
        reg.want_if(
            stderr.chunk.is_empty(),
            stderr.source.as_ref().map(|f| f.as_fd()),
            Interest::Readable,
            PipeEvent::CommandErrors,
        );
        reg.want_if(
            !stderr.chunk.is_empty(),
            Some(stderr.target.as_fd()),
            Interest::Writable,
            PipeEvent::ClientErrorWritable,
        );
        reg.want_if(
            true,
            self.monitor.fd(),
            Interest::Readable,
            PipeEvent::MonitorMessage,
        );
        reg.want_if(
            !self.monitor_gone,
            Some(self.monitor_pidfd.as_fd()),
            Interest::Readable,
            PipeEvent::MonitorExited,
        );
        reg.wait(timeout)
    }

    fn handle(&mut self, event: PipeEvent, client_input: &ClientFd, now: Instant, now_us: u64) {
        match event {
            PipeEvent::Signal => self.on_signals(),
            PipeEvent::ClientInput => self.on_client_input(client_input, now, now_us),
            PipeEvent::CommandWritable => self.on_command_writable(),
            PipeEvent::CommandOutput | PipeEvent::ClientOutputWritable
                if self.splice.this_turn.is_some() =>
            {
                self.on_splice_ready(now, now_us)
            }
            PipeEvent::CommandOutput => {
                self.on_command_output(Stream::Output, now, now_us);
                // While splicing, a reply's header is passed on at once, so its payload can
                // follow without another poll.
                if self.splice.usable {
                    self.stdout.write_pending();
                }
            }
            PipeEvent::ClientOutputWritable => self.stdout.write_pending(),
            PipeEvent::CommandErrors => self.on_command_output(Stream::Stderr, now, now_us),
            PipeEvent::ClientErrorWritable => self.stderr.write_pending(),
            PipeEvent::MonitorMessage => self.monitor.on_readable(),
            PipeEvent::MonitorExited => self.on_monitor_exited(),
        }
    }

    fn on_signals(&mut self) {
        let signals = Signals::read_from(self.signal_fd);
        if !(signals.hup || signals.term) || self.ending.hung_up {
            return;
        }
        self.ending.hung_up = true;
        if signals.term {
            // Kept for channel.end.
            self.recorder.take_admin_message();
        }
        self.forward(libc::SIGHUP);
        if signals.term {
            self.forward(libc::SIGTERM);
        }
        self.ending.reason.get_or_insert(if signals.term {
            EndReason::Terminated
        } else {
            EndReason::Hangup
        });
    }

    fn on_client_input(&mut self, client_input: &ClientFd, now: Instant, now_us: u64) {
        match self.inbound.chunk.fill_from(client_input, usize::MAX) {
            Ok(Filled::End) | Err(_) => self.inbound.open = false,
            Ok(Filled::Bytes(n)) => {
                self.idle.activity(now);
                let data = self.inbound.chunk.data();
                if let Some(obs) = self.observer.as_mut() {
                    obs.client_to_server(now_us, data);
                }
                if self.observer.is_none() || self.record_payload {
                    self.recorder.input(&[InputPiece::Clear(data)]);
                } else {
                    self.recorder.count_unrecorded(n, 0);
                }
            }
            Ok(Filled::NotReady) => {}
        }
        self.inbound.half_close_when_done();
    }

    fn on_command_writable(&mut self) {
        let inbound = &mut self.inbound;
        if let Some(fd) = inbound.target.as_ref() {
            if !inbound.chunk.is_empty() && inbound.chunk.drain_to(fd).is_err() {
                // The command closed its stdin: drop what it will never read.
                inbound.chunk.clear();
                inbound.target = None;
            }
        }
        inbound.half_close_when_done();
    }

    /// Moves skippable payload from the command's stdout to the client's by splice(2).
    fn on_splice_ready(&mut self, now: Instant, now_us: u64) {
        let len = self.splice.this_turn.unwrap_or(0).min(TRANSFER_CHUNK);
        let spliced = match self.stdout.source.as_ref() {
            Some(from) => sys::splice(from, &self.stdout.target, len),
            None => Err(std::io::Error::from_raw_os_error(libc::EBADF)),
        };
        match spliced {
            // End of the command's output: pass the EOF on.
            Ok(0) => self.stdout.end_source(),
            Ok(n) => {
                self.idle.activity(now);
                self.splice.waits_for_client = false;
                if let Some(obs) = self.observer.as_mut() {
                    obs.server_to_client_skipped(now_us, n);
                }
                self.recorder.count_spliced(n);
            }
            // Readable stdout but no room on fd 1, or room but nothing to read.
            Err(e) if would_block(&e) => {
                self.splice.waits_for_client = !self.splice.waits_for_client;
            }
            Err(_) => {
                self.splice.usable = false;
                self.splice.waits_for_client = false;
            }
        }
    }

    /// Reads one chunk of the command's stdout or stderr and records it (a transfer's
    /// payload only when `record_payload`).
    fn on_command_output(&mut self, stream: Stream, now: Instant, now_us: u64) {
        let limit = match stream {
            Stream::Output if self.splice.usable => self
                .observer
                .as_ref()
                .and_then(|o| o.server_to_client_read_limit())
                .unwrap_or(usize::MAX),
            _ => usize::MAX,
        };
        let out = match stream {
            Stream::Output => &mut self.stdout,
            _ => &mut self.stderr,
        };
        if !out.chunk.is_empty() {
            return;
        }
        let Some(source) = out.source.as_ref() else {
            return;
        };
        match out.chunk.fill_from(source, limit) {
            Ok(Filled::End) | Err(_) => out.end_source(),
            Ok(Filled::Bytes(n)) => {
                self.idle.activity(now);
                let data = out.chunk.data();
                let observed = stream == Stream::Output
                    && self
                        .observer
                        .as_mut()
                        .map(|o| o.server_to_client(now_us, data))
                        .is_some();
                if !observed || self.record_payload {
                    self.recorder.output(stream, data);
                } else {
                    self.recorder.count_unrecorded(0, n);
                }
                if !out.open {
                    out.chunk.clear();
                }
            }
            Ok(Filled::NotReady) => {}
        }
    }

    fn on_monitor_exited(&mut self) {
        if self.monitor_gone {
            return;
        }
        let _ = sys::waitpid(self.monitor_pid, false);
        self.monitor_gone = true;
        self.monitor.on_monitor_exit();
    }

    fn record_observer_events(&mut self) {
        if let Some(obs) = self.observer.as_mut() {
            for (kind, fields) in obs.drain_events() {
                self.recorder.event(&kind, fields);
            }
        }
    }

    /// Has the monitor send `sig` to the command's process group.
    fn forward(&self, sig: libc::c_int) {
        let _ = sys::write(&self.control, &[sig as u8]);
    }

    /// Hangs the command up as a closed terminal would, then asks it to terminate.
    fn hang_up_command(&self) {
        self.forward(libc::SIGHUP);
        self.forward(libc::SIGTERM);
    }

    fn finish(mut self) -> Outcome {
        let status = self.monitor.status();
        if let Some(obs) = self.observer.as_mut() {
            obs.finish(self.recorder.offset_us(), status.map(|s| s.shell_code()));
        }
        self.record_observer_events();
        Outcome {
            reason: self.ending.reason.unwrap_or(EndReason::Exit),
            status,
        }
    }
}
