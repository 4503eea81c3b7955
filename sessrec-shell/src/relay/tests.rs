//! The relays as a whole, run as an ordinary process: real children on a real pty or real
//! pipes, a pty or pipes standing in for the client, the record read back through the schema.

use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};

use sessrec_core::record::Stream;
use sessrec_core::schema::{ChannelEnd, Event, Line};
use sessrec_core::testing::TempDir;
use sessrec_core::writer::WriterOptions;

use super::*;
use crate::recording::testing::{recorder, recorder_with, verified_lines};
use crate::recording::ChannelRecorder;
use crate::spawn::PipeChild;
use crate::sys::{self, ExitStatus, Pid};

mod typing;

/// Every line of the finished record, typed, and the bytes of each stream.
#[derive(Debug)]
struct Recorded {
    events: Vec<Event>,
    input: Vec<u8>,
    output: Vec<u8>,
    stderr: Vec<u8>,
}

fn finish(rec: ChannelRecorder, path: &std::path::Path) -> Recorded {
    rec.finish(ChannelEnd::default());
    let lines = verified_lines(path);
    let mut r = Recorded {
        events: Vec::new(),
        input: Vec::new(),
        output: Vec::new(),
        stderr: Vec::new(),
    };
    for line in &lines {
        for frame in sessrec_core::reader::decode_frames(line) {
            match frame.stream {
                Stream::Input => r.input.extend(frame.data),
                Stream::Output => r.output.extend(frame.data),
                Stream::Stderr => r.stderr.extend(frame.data),
            }
        }
        r.events.push(Line::from_map(line.value.clone()).event);
    }
    r
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn nonblocking_pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = sys::pipe().unwrap();
    sys::set_nonblocking(&r).unwrap();
    (r, w)
}

/// Everything readable on `fd` now, up to end of file or until it would block.
fn read_available(fd: impl AsFd) -> Vec<u8> {
    let _ = sys::set_nonblocking(&fd);
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = sys::read(&fd, &mut buf) {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
    }
    all
}

/// A child started by the test, as the relay sees it.
fn pid_and_pidfd(child: &std::process::Child) -> (Pid, OwnedFd) {
    let pid = Pid::from_raw(child.id() as i32);
    (pid, sys::pidfd_open(pid).unwrap())
}

/// A pty relay whose outer terminal is another pty (in raw mode), running `script` in `sh`.
struct PtyRig {
    outer: sys::Pty,
    inner_master: OwnedFd,
    child: std::process::Child,
    signals: (OwnedFd, OwnedFd),
    typeahead: Vec<u8>,
    masker: Option<crate::masking::InputMasker>,
    /// The record writer's (flush deadlines).
    options: WriterOptions,
}

impl PtyRig {
    fn new(script: &str) -> PtyRig {
        let outer = sys::open_pty().unwrap();
        let raw = sys::make_raw(&sys::tcgetattr(&outer.slave).unwrap());
        sys::tcsetattr(&outer.slave, &raw).unwrap();
        let inner = sys::open_pty().unwrap();
        let slave = || Stdio::from(inner.slave.try_clone().unwrap());
        let child = Command::new("/bin/sh")
            .args(["-c", script])
            .stdin(slave())
            .stdout(slave())
            .stderr(slave())
            .spawn()
            .unwrap();
        PtyRig {
            outer,
            inner_master: inner.master,
            child,
            signals: nonblocking_pipe(),
            typeahead: Vec::new(),
            masker: None,
            options: WriterOptions::default(),
        }
    }

    /// Types `keys` on the outer terminal.
    fn type_keys(&self, keys: &[u8]) {
        sys::write(&self.outer.master, keys).unwrap();
    }

    fn signal(&self, sig: libc::c_int) {
        sys::write(&self.signals.1, &[sig as u8]).unwrap();
    }

    fn run(self, idle: IdlePolicy) -> (Outcome, Recorded, Vec<u8>) {
        let dir = TempDir::new("relay-pty");
        let (mut rec, path) = recorder_with(dir.path(), 1 << 30, self.options);
        let (child_pid, child_pidfd) = pid_and_pidfd(&self.child);
        let outcome = PtyRelay {
            master: self.inner_master,
            terminal_in: self.outer.slave.as_fd(),
            terminal_out: self.outer.slave.as_fd(),
            signal_fd: self.signals.0.as_fd(),
            child_pid,
            child_pidfd,
            recorder: &mut rec,
            masker: self.masker,
            typeahead: self.typeahead,
            idle,
        }
        .run();
        let shown = read_available(&self.outer.master);
        (outcome, finish(rec, &path), shown)
    }
}

impl PtyRig {
    /// Runs the relay in a thread while `drive` plays the user on the outer terminal's master,
    /// with the record's path to look at as it grows; the command must end by itself once
    /// `drive` is done with it. Returns the outcome, the record, and its frames in file order.
    fn run_driven(
        self,
        drive: impl FnOnce(&OwnedFd, &std::path::Path),
    ) -> (Outcome, Recorded, Vec<sessrec_core::reader::Frame>) {
        let dir = TempDir::new("relay-pty-driven");
        let (mut rec, path) = recorder_with(dir.path(), 1 << 30, self.options);
        let (child_pid, child_pidfd) = pid_and_pidfd(&self.child);
        let outcome = std::thread::scope(|scope| {
            let relay = scope.spawn(|| {
                PtyRelay {
                    master: self.inner_master,
                    terminal_in: self.outer.slave.as_fd(),
                    terminal_out: self.outer.slave.as_fd(),
                    signal_fd: self.signals.0.as_fd(),
                    child_pid,
                    child_pidfd,
                    recorder: &mut rec,
                    masker: self.masker,
                    typeahead: self.typeahead,
                    idle: IdlePolicy::new(0, 0),
                }
                .run()
            });
            drive(&self.outer.master, &path);
            relay.join().unwrap()
        });
        let recorded = finish(rec, &path);
        (outcome, recorded, frames_in_order(&path))
    }
}

/// Reads the outer terminal until `want` has come back (or nothing comes for ten seconds).
fn read_until(master: &OwnedFd, want: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    while !contains(&got, want) {
        let mut fds = [sys::pollfd(master.as_fd(), sys::Interest::Readable)];
        if sys::poll(&mut fds, 10_000).unwrap() == 0 {
            break;
        }
        let mut buf = [0u8; 4096];
        match sys::read(master, &mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    got
}

/// Every frame of a record, in file order.
fn frames_in_order(path: &std::path::Path) -> Vec<sessrec_core::reader::Frame> {
    verified_lines(path)
        .iter()
        .flat_map(sessrec_core::reader::decode_frames)
        .collect()
}

/// Keystrokes are passed on before they are recorded, and their echo is recorded on the next
/// wake-up: the record still has every keystroke before its echo, offsets never go back, and
/// the chain verifies.
#[test]
fn pty_each_keystroke_is_recorded_before_its_echo() {
    let rig = PtyRig::new("stty -icanon min 1 time 0; printf ready; head -c 20 >/dev/null");
    let (outcome, _, frames) = rig.run_driven(|master, _| {
        assert!(contains(&read_until(master, b"ready"), b"ready"));
        for key in b"abcdefghijklmnopqrst" {
            sys::write(master, &[*key]).unwrap();
            let echo = read_until(master, &[*key]);
            assert!(contains(&echo, &[*key]), "no echo of {}", *key as char);
        }
    });
    assert_eq!(outcome.status, Some(ExitStatus::Code(0)));
    let mut last_off = 0;
    let mut typed_not_echoed: Vec<u8> = Vec::new();
    let mut input = Vec::new();
    for f in &frames {
        assert!(f.offset_us >= last_off, "offsets go back: {frames:?}");
        last_off = f.offset_us;
        match f.stream {
            Stream::Input => {
                typed_not_echoed.extend_from_slice(&f.data);
                input.extend_from_slice(&f.data);
            }
            Stream::Output => {
                for b in &f.data {
                    if let Some(i) = typed_not_echoed.iter().position(|t| t == b) {
                        typed_not_echoed.remove(i);
                    } else {
                        assert!(
                            b"ready".contains(b),
                            "echo of {} recorded before the keystroke: {frames:?}",
                            *b as char
                        );
                    }
                }
            }
            Stream::Stderr => {}
        }
    }
    assert_eq!(input, b"abcdefghijklmnopqrst");
    assert!(typed_not_echoed.is_empty(), "{frames:?}");
}

/// While the channel is quiet, what was relayed reaches the file by the flush deadline, not
/// only at the end.
#[test]
fn pty_pending_io_reaches_the_file_by_the_flush_deadline() {
    let rig = PtyRig::new("read a; echo got:$a; read b");
    let (outcome, recorded, _) = rig.run_driven(|master, path| {
        sys::write(master, b"one\n").unwrap();
        assert!(contains(&read_until(master, b"got:one"), b"got:one"));
        // The relay now sleeps in poll; only the deadline (1 s) can write the line.
        let mut in_file = false;
        for _ in 0..200 {
            let lines = sessrec_core::reader::read_file(path).unwrap();
            in_file = lines.iter().flatten().any(|l| {
                sessrec_core::reader::decode_frames(l)
                    .iter()
                    .any(|f| contains(&f.data, b"got:one"))
            });
            if in_file {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // The command ends either way, so that a failure is reported rather than hanging.
        sys::write(master, b"two\n").unwrap();
        assert!(in_file, "the output was not written while the channel ran");
    });
    assert_eq!(outcome.status, Some(ExitStatus::Code(0)));
    assert_eq!(recorded.input, b"one\ntwo\n");
}

#[test]
fn pty_keystrokes_reach_the_command_and_both_directions_are_recorded() {
    let rig = PtyRig::new("read line; echo got:$line; exit 3");
    rig.type_keys(b"hello\n");
    let (outcome, recorded, shown) = rig.run(IdlePolicy::new(0, 0));
    assert_eq!(outcome.reason, EndReason::Exit);
    assert_eq!(outcome.status, Some(ExitStatus::Code(3)));
    assert_eq!(recorded.input, b"hello\n");
    assert!(contains(&recorded.output, b"got:hello"), "{recorded:?}");
    assert!(contains(&shown, b"got:hello"), "{shown:?}");
}

#[test]
fn pty_typeahead_goes_first_and_is_recorded() {
    let mut rig = PtyRig::new("read a; read b; echo got:$a+$b");
    rig.typeahead = b"early\n".to_vec();
    rig.type_keys(b"later\n");
    let (outcome, recorded, shown) = rig.run(IdlePolicy::new(0, 0));
    assert_eq!(outcome.status, Some(ExitStatus::Code(0)));
    assert_eq!(recorded.input, b"early\nlater\n");
    assert!(contains(&shown, b"got:early+later"), "{shown:?}");
}

/// Waits until `fd` has something to read.
fn wait_readable(fd: impl AsFd) {
    let mut fds = [sys::pollfd(fd.as_fd(), sys::Interest::Readable)];
    assert_eq!(sys::poll(&mut fds, 10_000).unwrap(), 1, "nothing to read");
}

/// A raw-mode reader prints its prompt, and the answer arrives before the relay has read the
/// prompt: both are ready in the same wake-up. The prompt came first, so it arms the line.
#[test]
fn pty_a_prompt_already_written_arms_keystrokes_ready_in_the_same_wake_up() {
    let mut rig = PtyRig::new("stty raw -echo; printf 'Token password: '; head -c 8 >/dev/null");
    rig.masker = Some(crate::masking::InputMasker::new(
        regex::Regex::new("[Pp]assword[: ]*$").unwrap(),
        crate::masking::MaskPolicy {
            line_max_bytes: 256,
            arm_limit: 5,
            arm_window: std::time::Duration::from_secs(60),
        },
    ));
    // The prompt is written after the mode change: once it is there, so is the mode.
    wait_readable(&rig.inner_master);
    rig.type_keys(b"s3cr3t-8");
    wait_readable(&rig.outer.slave);
    let (outcome, recorded, _) = rig.run(IdlePolicy::new(0, 0));
    assert_eq!(outcome.status, Some(ExitStatus::Code(0)));
    assert!(
        contains(&recorded.output, b"Token password: "),
        "{recorded:?}"
    );
    assert!(!contains(&recorded.input, b"s3cr3t"), "{recorded:?}");
    assert!(
        recorded
            .events
            .iter()
            .any(|e| matches!(e, Event::InputMasked(m) if m.bytes == Some(8))),
        "{recorded:?}"
    );
}

#[test]
fn pty_resize_reaches_the_pty_before_later_keystrokes_and_is_recorded() {
    let rig = PtyRig::new("read x; stty size");
    let ws = libc::winsize {
        ws_row: 33,
        ws_col: 101,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    sys::set_winsize(&rig.outer.slave, &ws).unwrap();
    rig.signal(libc::SIGWINCH);
    rig.type_keys(b"go\n");
    let (outcome, recorded, _) = rig.run(IdlePolicy::new(0, 0));
    assert_eq!(outcome.status, Some(ExitStatus::Code(0)));
    assert!(contains(&recorded.output, b"33 101"), "{recorded:?}");
    let resize = recorded
        .events
        .iter()
        .find_map(|e| match e {
            Event::Resize(r) => Some(r.clone()),
            _ => None,
        })
        .expect("a resize line");
    assert_eq!((resize.cols, resize.rows), (Some(101), Some(33)));
    assert!(resize.off.is_some());
}

#[test]
fn pty_termination_tells_the_user_and_hangs_the_command_up() {
    let rig = PtyRig::new("exec cat");
    rig.signal(libc::SIGTERM);
    let (outcome, _, shown) = rig.run(IdlePolicy::new(0, 0));
    assert_eq!(outcome.reason, EndReason::Terminated);
    // cat ends when the pty goes away.
    assert!(outcome.status.is_some());
    assert!(
        contains(&shown, b"ended by the administrator"),
        "{:?}",
        String::from_utf8_lossy(&shown)
    );
}

#[test]
fn pty_idle_channel_is_warned_recorded_and_ended() {
    let rig = PtyRig::new("exec cat");
    let (outcome, recorded, shown) = rig.run(IdlePolicy::new(1, 1));
    assert_eq!(outcome.reason, EndReason::Idle);
    let shown = String::from_utf8_lossy(&shown);
    assert!(shown.contains("will be closed in"), "{shown:?}");
    assert!(shown.contains("idle timeout"), "{shown:?}");
    assert!(recorded
        .events
        .iter()
        .any(|e| matches!(e, Event::Notice(n) if n.idle_warning == Some(true))));
}

#[test]
fn pty_client_hangup_ends_the_channel() {
    let rig = PtyRig::new("exec cat");
    rig.signal(libc::SIGHUP);
    let (outcome, _, _) = rig.run(IdlePolicy::new(0, 0));
    assert_eq!(outcome.reason, EndReason::Hangup);
}

/// What a pipe relay run gives: the outcome, the record, what the client got on stdout and
/// stderr, the signal numbers the relay forwarded, and the command.
type PipeRun = (
    Outcome,
    Recorded,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    std::process::Child,
);

/// A pipe relay whose client is three pipes and whose "monitor" is the command itself: the
/// test writes the monitor's messages and reads the signals the relay forwards.
struct PipeRig {
    child: std::process::Child,
    relay_ends: Option<PipeChild>,
    client_in: OwnedFd,
    client_out: OwnedFd,
    client_err: OwnedFd,
    to_relay_in: Option<OwnedFd>,
    from_relay_out: OwnedFd,
    from_relay_err: OwnedFd,
    messages: OwnedFd,
    forwarded: OwnedFd,
    signals: (OwnedFd, OwnedFd),
}

impl PipeRig {
    fn new(script: &str) -> PipeRig {
        let (cmd_in, relay_stdin) = sys::pipe().unwrap();
        let (relay_stdout, cmd_out) = sys::pipe().unwrap();
        let (relay_stderr, cmd_err) = sys::pipe().unwrap();
        let child = Command::new("/bin/sh")
            .args(["-c", script])
            .stdin(Stdio::from(cmd_in))
            .stdout(Stdio::from(cmd_out))
            .stderr(Stdio::from(cmd_err))
            .spawn()
            .unwrap();
        let (monitor_pid, monitor_pidfd) = pid_and_pidfd(&child);
        let (status, messages) = sys::pipe().unwrap();
        let (forwarded, control) = nonblocking_pipe();
        let (client_in, to_relay_in) = sys::pipe().unwrap();
        let (from_relay_out, client_out) = sys::pipe().unwrap();
        let (from_relay_err, client_err) = sys::pipe().unwrap();
        PipeRig {
            child,
            relay_ends: Some(PipeChild {
                monitor_pid,
                monitor_pidfd,
                stdin: relay_stdin,
                stdout: relay_stdout,
                stderr: relay_stderr,
                control,
                status,
            }),
            client_in,
            client_out,
            client_err,
            to_relay_in: Some(to_relay_in),
            from_relay_out,
            from_relay_err,
            messages,
            forwarded,
            signals: nonblocking_pipe(),
        }
    }

    fn client_sends(&mut self, bytes: &[u8], then_close: bool) {
        sys::write(self.to_relay_in.as_ref().unwrap(), bytes).unwrap();
        if then_close {
            self.to_relay_in = None;
        }
    }

    fn monitor_says(&self, tag: u8, value: i32) {
        let mut m = vec![tag];
        m.extend_from_slice(&value.to_ne_bytes());
        sys::write(&self.messages, &m).unwrap();
    }

    fn run(self) -> PipeRun {
        self.run_observed(None)
    }

    fn run_observed(mut self, observer: Option<Box<dyn ChannelObserver>>) -> PipeRun {
        let dir = TempDir::new("relay-pipe");
        let (mut rec, path) = recorder(dir.path(), 1 << 30);
        let outcome = PipeRelay {
            child: self.relay_ends.take().unwrap(),
            client: Client {
                input: client::ClientFd::Owned(self.client_in),
                output: client::ClientFd::Owned(self.client_out),
                error: client::ClientFd::Owned(self.client_err),
            },
            signal_fd: self.signals.0.as_fd(),
            recorder: &mut rec,
            observer,
            record_payload: false,
            idle: IdlePolicy::new(0, 0),
        }
        .run();
        let out = read_available(&self.from_relay_out);
        let err = read_available(&self.from_relay_err);
        let forwarded = read_available(&self.forwarded);
        (outcome, finish(rec, &path), out, err, forwarded, self.child)
    }
}

#[test]
fn pipe_streams_are_relayed_apart_and_the_half_close_reaches_the_command() {
    let mut rig = PipeRig::new("cat; echo err >&2");
    rig.monitor_says(b'P', rig.child.id() as i32);
    rig.monitor_says(b'S', 4 << 8);
    rig.client_sends(b"hello\n", true);
    let (outcome, recorded, out, err, forwarded, _) = rig.run();
    assert_eq!(outcome.reason, EndReason::Exit);
    assert_eq!(outcome.status, Some(ExitStatus::Code(4)));
    assert_eq!(out, b"hello\n");
    assert_eq!(err, b"err\n");
    assert_eq!(recorded.input, b"hello\n");
    assert_eq!(recorded.output, b"hello\n");
    assert_eq!(recorded.stderr, b"err\n");
    assert!(forwarded.is_empty(), "{forwarded:?}");
}

#[test]
fn pipe_hangup_is_forwarded_to_the_command_once() {
    let mut rig = PipeRig::new("exec cat");
    rig.client_sends(b"", false);
    sys::write(&rig.signals.1, &[libc::SIGHUP as u8, libc::SIGHUP as u8]).unwrap();
    rig.monitor_says(b'S', libc::SIGHUP);
    let (outcome, _, _, _, forwarded, mut child) = rig.run();
    assert_eq!(outcome.reason, EndReason::Hangup);
    assert_eq!(
        outcome.status,
        Some(ExitStatus::Signal {
            signal: libc::SIGHUP,
            core_dumped: false
        })
    );
    assert_eq!(forwarded, [libc::SIGHUP as u8]);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn pipe_termination_forwards_hangup_then_terminate() {
    let rig = PipeRig::new("exec cat");
    sys::write(&rig.signals.1, &[libc::SIGTERM as u8]).unwrap();
    rig.monitor_says(b'S', libc::SIGTERM);
    let (outcome, _, _, _, forwarded, mut child) = rig.run();
    assert_eq!(outcome.reason, EndReason::Terminated);
    assert_eq!(forwarded, [libc::SIGHUP as u8, libc::SIGTERM as u8]);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn pipe_monitor_gone_without_a_status_ends_the_channel_without_one() {
    let rig = PipeRig::new("echo bye");
    let (outcome, recorded, out, _, _, _) = rig.run();
    assert_eq!(outcome.reason, EndReason::Exit);
    assert_eq!(outcome.status, None);
    assert_eq!(out, b"bye\n");
    assert_eq!(recorded.output, b"bye\n");
}

/// Says the first `skippable` bytes of the command's stdout are payload it only counts, and
/// reports what it was shown and what went past unseen.
struct CountingObserver {
    skippable: usize,
    seen: std::rc::Rc<std::cell::RefCell<(usize, usize, bool)>>,
}

impl ChannelObserver for CountingObserver {
    fn client_to_server(&mut self, _now_us: u64, _data: &[u8]) {}
    fn server_to_client(&mut self, _now_us: u64, data: &[u8]) {
        self.seen.borrow_mut().0 += data.len();
    }
    fn server_to_client_skippable(&self) -> usize {
        self.skippable
    }
    fn server_to_client_skipped(&mut self, _now_us: u64, n: usize) {
        self.skippable -= n;
        self.seen.borrow_mut().1 += n;
    }
    fn server_to_client_read_limit(&self) -> Option<usize> {
        (self.skippable > 0).then_some(self.skippable)
    }
    fn drain_events(&mut self) -> Vec<(String, serde_json::Map<String, serde_json::Value>)> {
        Vec::new()
    }
    fn finish(&mut self, _now_us: u64, _exit: Option<i32>) {
        self.seen.borrow_mut().2 = true;
    }
}

#[test]
fn pipe_payload_the_observer_skips_is_spliced_past_the_recorder() {
    // 64 KiB of payload, then a trailer the observer reads.
    let rig = PipeRig::new("head -c 65536 /dev/zero; printf trailer");
    rig.monitor_says(b'S', 0);
    let seen = std::rc::Rc::new(std::cell::RefCell::new((0, 0, false)));
    let observer = CountingObserver {
        skippable: 65536,
        seen: seen.clone(),
    };
    let (outcome, recorded, out, _, _, _) = rig.run_observed(Some(Box::new(observer)));
    assert_eq!(outcome.status, Some(ExitStatus::Code(0)));
    assert_eq!(out.len(), 65536 + 7);
    assert!(out.ends_with(b"trailer"));
    let (observed, skipped, finished) = *seen.borrow();
    assert_eq!((observed, skipped), (7, 65536));
    assert!(finished);
    // Observed payload is not recorded (record_payload is off); nothing skipped is either.
    assert!(recorded.output.is_empty(), "{:?}", recorded.output.len());
}
