//! Starting the user's command: everything the child needs (paths, argv, environment, ids,
//! the caller's signals/limits/umask) is prepared before `fork`, so the child only makes
//! system calls until `execve`.
//!
//! pty mode: the child makes a new session, takes the pty slave as its controlling terminal,
//! drops to the user and execs; the recorder (which the user cannot signal) waits for it.
//! Pipe mode: a monitor process (sudo's model) makes a new session, forks the command (which
//! drops to the user and execs), relays its wait status to the recorder and forwards the
//! signals the recorder asks for — so the recorder itself never holds CAP_KILL. The monitor
//! must outlive anything the user does: were it the user's, `kill -STOP $PPID` in the command
//! would leave `sessrec kill` and the idle timeout nobody to deliver their signals, and the exit
//! status nobody to collect it. So it runs as the recorder's system user with CAP_KILL as its
//! only capability (see `sys::become_signaller`): the user can neither signal it (kill(2) needs
//! a matching uid; SIGCONT, allowed within a session, only continues a monitor nobody stopped),
//! nor trace it or open its descriptors (another uid, not dumpable).
// The only unsafe code is the two `fork` calls, each allowed where it is made.
#![deny(unsafe_code)]

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::startup::Inherited;
use crate::sys::{self, StdFd};

/// Exit code of a child whose exec failed (the shell convention).
pub const EXEC_FAILED: i32 = 127;

/// A fully prepared `execve` as the user.
pub struct PreparedExec {
    args: sys::ExecArgs,
    uid: sys::Uid,
    gid: sys::Gid,
    groups: Vec<sys::Gid>,
    inherited: Inherited,
}

fn cstring(bytes: &[u8], what: &str) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

/// Environment names the recorder sets itself (any inherited value is replaced).
const OWN_VARIABLES: [&str; 3] = ["SHELL", "SESSREC_SESSION", "SESSREC_CHANNEL"];

/// The environment for the child: the caller's (as data), minus the variables the recorder
/// owns, plus `set`.
pub fn child_environment(
    inherited: impl IntoIterator<Item = (OsString, OsString)>,
    set: &[(&str, &OsStr)],
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = inherited
        .into_iter()
        .filter(|(k, _)| {
            !OWN_VARIABLES
                .iter()
                .any(|own| k.as_bytes() == own.as_bytes())
        })
        .collect();
    for (k, v) in set {
        env.push((OsString::from(k), v.to_os_string()));
    }
    env
}

impl PreparedExec {
    pub fn new(
        path: &Path,
        argv: &[OsString],
        env: &[(OsString, OsString)],
        user: (sys::Uid, sys::Gid, &[sys::Gid]),
        inherited: &Inherited,
    ) -> io::Result<Self> {
        let path = cstring(path.as_os_str().as_bytes(), "the program path")?;
        let argv = argv
            .iter()
            .map(|a| cstring(a.as_bytes(), "an argument"))
            .collect::<io::Result<Vec<_>>>()?;
        let envp = env
            .iter()
            .filter(|(k, _)| !k.is_empty() && !k.as_bytes().contains(&b'='))
            .filter_map(|(k, v)| {
                let mut entry = k.as_bytes().to_vec();
                entry.push(b'=');
                entry.extend_from_slice(v.as_bytes());
                CString::new(entry).ok()
            })
            .collect::<Vec<_>>();
        Ok(PreparedExec {
            args: sys::ExecArgs::new(path, argv, envp),
            uid: user.0,
            gid: user.1,
            groups: user.2.to_vec(),
            inherited: inherited.clone(),
        })
    }

    /// The program to execute.
    pub fn path(&self) -> &CString {
        self.args.path()
    }

    /// In a forked child: restore the caller's attributes, become the user, wait at `gate`
    /// until the recorder has begun the record, exec. Reports an errno on `error_fd` and exits
    /// on failure. Allocation-free.
    fn become_user_and_exec(&self, error_fd: BorrowedFd<'_>, gate: BorrowedFd<'_>) -> ! {
        sys::restore_limits(&self.inherited.limits);
        let _ = sys::write_oom_score_adj(&self.inherited.oom_score_adj);
        sys::set_umask(self.inherited.umask);
        if let Err(e) = sys::drop_to(self.uid, self.gid, &self.groups) {
            fail(error_fd, &e);
        }
        wait_at_gate(gate, error_fd);
        sys::restore_signals(&self.inherited.signals);
        let err = sys::execve(&self.args);
        fail(error_fd, &err)
    }
}

/// Blocks until the recorder opens the gate (one byte); a gate closed without it means the
/// record could not be begun, and the command must not run.
fn wait_at_gate(gate: BorrowedFd<'_>, error_fd: BorrowedFd<'_>) {
    let mut go = [0u8; 1];
    loop {
        match sys::read(gate, &mut go) {
            Ok(1) => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            _ => fail(error_fd, &io::Error::from_raw_os_error(libc::ECANCELED)),
        }
    }
}

/// A started child held before its `execve` until [`Held::release`]: the recorder writes
/// `channel.start` in between, so a command never runs before its record has begun.
pub struct Held<T> {
    child: T,
    /// The process to reap if the command never runs (the pty child, or the monitor).
    reap: sys::Pid,
    gate: OwnedFd,
    exec_error: OwnedFd,
}

impl<T> Held<T> {
    pub fn child(&self) -> &T {
        &self.child
    }

    /// Lets the command exec; returns once it did (or with why it did not).
    pub fn release(self) -> io::Result<T> {
        let sent = sys::write(&self.gate, b"g");
        drop(self.gate);
        let result = sent.and_then(|_| exec_result(self.exec_error));
        match result {
            Ok(()) => Ok(self.child),
            Err(e) => {
                let _ = sys::waitpid(self.reap, false);
                Err(e)
            }
        }
    }

    /// The record could not be begun: the command never execs.
    pub fn abandon(self) {
        drop(self.gate);
        let _ = exec_result(self.exec_error);
        let _ = sys::waitpid(self.reap, false);
    }
}

fn fail(error_fd: BorrowedFd<'_>, err: &io::Error) -> ! {
    let code = err.raw_os_error().unwrap_or(libc::EINVAL);
    let _ = sys::write(error_fd, &code.to_ne_bytes());
    sys::exit_now(EXEC_FAILED)
}

/// Reads the exec-error pipe: `Ok(())` once it closes empty (the exec happened).
fn exec_result(error_read: OwnedFd) -> io::Result<()> {
    let mut buf = [0u8; 4];
    let mut got = 0;
    loop {
        match sys::read(&error_read, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if got == buf.len() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    if got == buf.len() {
        Err(io::Error::from_raw_os_error(i32::from_ne_bytes(buf)))
    } else {
        Ok(())
    }
}

/// A running pty-mode child.
pub struct PtyChild {
    pub pid: sys::Pid,
    pub pidfd: OwnedFd,
}

/// Forks the pty-mode child: new session, `slave` as controlling terminal and fds 0–2, then
/// the prepared exec once [`Held::release`] lets it.
#[allow(unsafe_code)]
pub fn spawn_pty_child(exec: &PreparedExec, slave: &OwnedFd) -> io::Result<Held<PtyChild>> {
    let (error_read, error_write) = sys::pipe()?;
    let (gate_read, gate_write) = sys::pipe()?;
    // SAFETY: the recorder is single-threaded; the child makes only system calls on prepared
    // data until it execs or `_exit`s (`become_user_and_exec`, `fail`).
    match unsafe { sys::fork() }? {
        sys::Forked::Child => {
            let ew = error_write.as_fd();
            let setup = sys::setsid()
                .and_then(|()| sys::set_controlling_tty(slave))
                .and_then(|()| sys::redirect_std_fd(StdFd::Input, slave))
                .and_then(|()| sys::redirect_std_fd(StdFd::Output, slave))
                .and_then(|()| sys::redirect_std_fd(StdFd::Error, slave));
            if let Err(e) = setup {
                fail(ew, &e);
            }
            exec.become_user_and_exec(ew, gate_read.as_fd())
        }
        sys::Forked::Parent(pid) => {
            drop((error_write, gate_read));
            let pidfd = match sys::pidfd_open(pid) {
                Ok(fd) => fd,
                Err(e) => {
                    drop(gate_write);
                    let _ = sys::waitpid(pid, false);
                    return Err(e);
                }
            };
            Ok(Held {
                child: PtyChild { pid, pidfd },
                reap: pid,
                gate: gate_write,
                exec_error: error_read,
            })
        }
    }
}

/// The recorder's ends of a pipe-mode command.
pub struct PipeChild {
    /// The monitor process (the recorder's child).
    pub monitor_pid: sys::Pid,
    pub monitor_pidfd: OwnedFd,
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// Write a signal number (one byte) to have the monitor forward it to the command.
    pub control: OwnedFd,
    /// Messages from the monitor: `P` + pid (command started), `S` + wait status.
    pub status: OwnedFd,
}

/// Monitor messages are a tag byte and a native-endian i32.
pub const MONITOR_MESSAGE_LEN: usize = 5;

/// A message from the pipe-mode monitor to the recorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorMessage {
    /// `P`: the command runs with this pid.
    CommandStarted(sys::Pid),
    /// `S`: the command ended with this wait status.
    CommandEnded(i32),
}

impl MonitorMessage {
    fn encode(self) -> [u8; MONITOR_MESSAGE_LEN] {
        let (tag, value) = match self {
            MonitorMessage::CommandStarted(pid) => (b'P', pid.as_raw()),
            MonitorMessage::CommandEnded(status) => (b'S', status),
        };
        let v = value.to_ne_bytes();
        [tag, v[0], v[1], v[2], v[3]]
    }

    /// `None` for an unknown tag.
    pub fn decode(bytes: [u8; MONITOR_MESSAGE_LEN]) -> Option<Self> {
        let value = i32::from_ne_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        match bytes[0] {
            b'P' => Some(MonitorMessage::CommandStarted(sys::Pid::from_raw(value))),
            b'S' => Some(MonitorMessage::CommandEnded(value)),
            _ => None,
        }
    }
}

/// Who the pipe-mode monitor runs as (the recorder's system user, never root).
#[derive(Debug, Clone, Copy)]
pub struct MonitorUser {
    pub uid: sys::Uid,
    pub gid: sys::Gid,
}

/// Forks the monitor, which forks the command with three pipes as its fds 0–2; the command
/// execs once [`Held::release`] lets it.
#[allow(unsafe_code)]
pub fn spawn_pipe_child(
    exec: &PreparedExec,
    monitor_user: MonitorUser,
) -> io::Result<Held<PipeChild>> {
    let (stdin_read, stdin_write) = sys::pipe()?;
    let (stdout_read, stdout_write) = sys::pipe()?;
    let (stderr_read, stderr_write) = sys::pipe()?;
    let (control_read, control_write) = sys::pipe()?;
    let (status_read, status_write) = sys::pipe()?;
    let (error_read, error_write) = sys::pipe()?;
    let (gate_read, gate_write) = sys::pipe()?;
    // SAFETY: the recorder is single-threaded; the monitor is allocation-free and never returns
    // (`run_monitor` execs the command in its own child and leaves with `_exit`).
    match unsafe { sys::fork() }? {
        sys::Forked::Child => run_monitor(
            exec,
            monitor_user,
            MonitorFds {
                command_stdin: stdin_read,
                command_stdout: stdout_write,
                command_stderr: stderr_write,
                control: control_read,
                status: status_write,
                exec_error: error_write,
                gate: gate_read,
            },
        ),
        sys::Forked::Parent(monitor_pid) => {
            drop((stdin_read, stdout_write, stderr_write));
            drop((control_read, status_write, error_write, gate_read));
            let monitor_pidfd = match sys::pidfd_open(monitor_pid) {
                Ok(fd) => fd,
                Err(e) => {
                    drop(gate_write);
                    let _ = sys::waitpid(monitor_pid, false);
                    return Err(e);
                }
            };
            Ok(Held {
                child: PipeChild {
                    monitor_pid,
                    monitor_pidfd,
                    stdin: stdin_write,
                    stdout: stdout_read,
                    stderr: stderr_read,
                    control: control_write,
                    status: status_read,
                },
                reap: monitor_pid,
                gate: gate_write,
                exec_error: error_read,
            })
        }
    }
}

/// The monitor's ends of its pipes to the command and the recorder.
struct MonitorFds {
    /// The command's fds 0–2.
    command_stdin: OwnedFd,
    command_stdout: OwnedFd,
    command_stderr: OwnedFd,
    /// Signal numbers from the recorder.
    control: OwnedFd,
    /// Messages to the recorder.
    status: OwnedFd,
    /// The exec error pipe: closes empty once the command has exec'd.
    exec_error: OwnedFd,
    /// Where the command waits before its exec (see [`Held`]).
    gate: OwnedFd,
}

/// The monitor's whole life. Allocation-free: it is a forked copy of the recorder that never
/// execs.
#[allow(unsafe_code)]
fn run_monitor(exec: &PreparedExec, monitor_user: MonitorUser, fds: MonitorFds) -> ! {
    sys::default_all_signals();
    // Only root and the recorder's user can signal the monitor; still, none of these should end
    // or stop it early.
    for sig in [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGTERM,
        libc::SIGPIPE,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
    ] {
        let _ = sys::ignore_signal(sig);
    }
    let keep = [
        fds.command_stdin.as_raw_fd(),
        fds.command_stdout.as_raw_fd(),
        fds.command_stderr.as_raw_fd(),
        fds.control.as_raw_fd(),
        fds.status.as_raw_fd(),
        fds.exec_error.as_raw_fd(),
        fds.gate.as_raw_fd(),
    ];
    // SAFETY: this process never returns from here and so never drops the recorder's
    // descriptors it was forked with; it uses only those in `keep`.
    unsafe { sys::close_all_except(&keep, 4096) };
    let error_w = fds.exec_error.as_fd();
    if let Err(e) = sys::setsid() {
        fail(error_w, &e);
    }
    // The command is forked while the monitor is still root, so that it can drop to the user
    // itself; the monitor then gives up everything but CAP_KILL.
    // SAFETY: the monitor is single-threaded, and the command's child makes only system calls
    // on prepared data until it execs or `_exit`s.
    let command = match unsafe { sys::fork() } {
        Ok(sys::Forked::Child) => {
            let setup = sys::setpgid_self()
                .and_then(|()| sys::redirect_std_fd(StdFd::Input, &fds.command_stdin))
                .and_then(|()| sys::redirect_std_fd(StdFd::Output, &fds.command_stdout))
                .and_then(|()| sys::redirect_std_fd(StdFd::Error, &fds.command_stderr));
            if let Err(e) = setup {
                fail(error_w, &e);
            }
            exec.become_user_and_exec(error_w, fds.gate.as_fd())
        }
        Ok(sys::Forked::Parent(pid)) => pid,
        Err(e) => fail(error_w, &e),
    };
    if let Err(e) = sys::become_signaller(monitor_user.uid, monitor_user.gid) {
        let _ = sys::kill(command, sys::Signal::SIGKILL);
        let _ = sys::waitpid(command, false);
        fail(error_w, &e);
    }
    let MonitorFds {
        command_stdin,
        command_stdout,
        command_stderr,
        control,
        status: status_w,
        exec_error,
        gate,
    } = fds;
    drop((
        command_stdin,
        command_stdout,
        command_stderr,
        exec_error,
        gate,
    ));
    send_message(&status_w, MonitorMessage::CommandStarted(command));
    let pidfd = match sys::pidfd_open(command) {
        Ok(fd) => fd,
        Err(_) => {
            // Without a pidfd, wait blocking; forwarding is then unavailable.
            let status = sys::waitpid(command, false).ok().flatten().unwrap_or(0);
            send_message(&status_w, MonitorMessage::CommandEnded(status));
            sys::exit_now(0);
        }
    };
    let mut control_open = true;
    loop {
        let mut fds = [
            sys::pollfd(pidfd.as_fd(), sys::Interest::Readable),
            sys::pollfd(control.as_fd(), sys::Interest::Readable),
        ];
        let watched = if control_open { 2 } else { 1 };
        if sys::poll(&mut fds[..watched], -1).is_err() {
            continue;
        }
        let (command_ended, control_ready) = (
            sys::is_ready(&fds[0]),
            watched == 2 && sys::is_ready(&fds[1]),
        );
        if command_ended {
            // Signals are sent only before this point: the command's pid (and so its process
            // group id) stays allocated until it is reaped here, so CAP_KILL never reaches a
            // process that reused it.
            let status = sys::waitpid(command, false).ok().flatten().unwrap_or(0);
            send_message(&status_w, MonitorMessage::CommandEnded(status));
            sys::exit_now(0);
        }
        if control_ready {
            let mut byte = [0u8; 1];
            match sys::read(&control, &mut byte) {
                Ok(1) => {
                    // Only the recorder writes here; a number that is no signal is ignored.
                    if let Ok(sig) = sys::Signal::try_from(libc::c_int::from(byte[0])) {
                        forward(command, sig);
                    }
                }
                Ok(_) => {
                    // The recorder is gone: hang the command up, as a closed terminal would.
                    control_open = false;
                    forward(command, sys::Signal::SIGHUP);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => control_open = false,
            }
        }
    }
}

/// Sends `sig` to the command's process group (or the command alone, if it left the group).
/// A hangup or termination is followed by SIGCONT, as a terminal hangup does, so that a
/// command that stopped itself gets it now rather than at the SIGKILL that follows.
fn forward(command: sys::Pid, sig: sys::Signal) {
    let send = |sig| {
        if sys::kill_process_group(command, sig).is_err() {
            let _ = sys::kill(command, sig);
        }
    };
    send(sig);
    if sig == sys::Signal::SIGHUP || sig == sys::Signal::SIGTERM {
        send(sys::Signal::SIGCONT);
    }
}

fn send_message(fd: impl AsFd, message: MonitorMessage) {
    let _ = sys::write(fd, &message.encode());
}

impl PreparedExec {
    /// Becomes the user and execs without forking (`on_error = "allow"` with no record).
    /// Returns only on failure.
    pub fn exec_in_place(&self) -> io::Error {
        sys::restore_limits(&self.inherited.limits);
        let _ = sys::write_oom_score_adj(&self.inherited.oom_score_adj);
        sys::set_umask(self.inherited.umask);
        if let Err(e) = sys::drop_to(self.uid, self.gid, &self.groups) {
            return e;
        }
        sys::restore_signals(&self.inherited.signals);
        sys::execve(&self.args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_messages_round_trip() {
        for message in [
            MonitorMessage::CommandStarted(sys::Pid::from_raw(4242)),
            MonitorMessage::CommandEnded(0x0f00),
            MonitorMessage::CommandEnded(-1),
        ] {
            assert_eq!(MonitorMessage::decode(message.encode()), Some(message));
        }
        assert_eq!(MonitorMessage::decode(*b"X\0\0\0\0"), None);
    }

    #[test]
    fn the_recorders_own_variables_replace_inherited_ones() {
        let inherited = [
            ("PATH", "/usr/bin"),
            ("SHELL", "/usr/local/bin/sessrec-shell"),
            ("SESSREC_SESSION", "forged"),
            ("SESSREC_CHANNEL", "forged/1"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let env = child_environment(
            inherited,
            &[
                ("SHELL", OsStr::new("/bin/bash")),
                ("SESSREC_SESSION", OsStr::new("real")),
            ],
        );
        let env: Vec<(&str, &str)> = env
            .iter()
            .map(|(k, v)| (k.to_str().unwrap(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            env,
            [
                ("PATH", "/usr/bin"),
                ("SHELL", "/bin/bash"),
                ("SESSREC_SESSION", "real")
            ]
        );
    }

    #[test]
    fn a_nul_byte_is_refused_by_name() {
        let e = cstring(b"a\0b", "an argument").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("an argument"));
        assert_eq!(cstring(b"ok", "x").unwrap().as_bytes(), b"ok");
    }

    #[test]
    fn an_exec_error_pipe_closed_empty_means_the_exec_happened() {
        let (r, w) = sys::pipe().unwrap();
        drop(w);
        assert!(exec_result(r).is_ok());
    }

    #[test]
    fn an_errno_on_the_exec_error_pipe_is_the_failure() {
        let (r, w) = sys::pipe().unwrap();
        sys::write(&w, &libc::ENOENT.to_ne_bytes()).unwrap();
        drop(w);
        assert_eq!(
            exec_result(r).unwrap_err().raw_os_error(),
            Some(libc::ENOENT)
        );
    }
}
