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
#![forbid(unsafe_code)]

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::startup::Inherited;
use crate::sys;

/// Exit code of a child whose exec failed (the shell convention).
pub const EXEC_FAILED: i32 = 127;

/// A fully prepared `execve` as the user.
pub struct PreparedExec {
    path: CString,
    /// Owns the strings `argv_ptrs` points into.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    /// Owns the strings `envp_ptrs` points into.
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
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
        user: (libc::uid_t, libc::gid_t, &[libc::gid_t]),
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
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
        envp_ptrs.push(std::ptr::null());
        Ok(PreparedExec {
            path,
            _argv: argv,
            argv_ptrs,
            _envp: envp,
            envp_ptrs,
            uid: user.0,
            gid: user.1,
            groups: user.2.to_vec(),
            inherited: inherited.clone(),
        })
    }

    /// The program to execute.
    pub fn path(&self) -> &CString {
        &self.path
    }

    /// In a forked child: restore the caller's attributes, become the user, exec.
    /// Reports an errno on `error_fd` and exits on failure. Allocation-free.
    fn become_user_and_exec(&self, error_fd: RawFd) -> ! {
        sys::restore_limits(&self.inherited.limits);
        let _ = sys::write_oom_score_adj(&self.inherited.oom_score_adj);
        sys::set_umask(self.inherited.umask);
        if let Err(e) = sys::drop_to(self.uid, self.gid, &self.groups) {
            fail(error_fd, &e);
        }
        sys::restore_signals(&self.inherited.signals);
        let err = sys::execve(&self.path, &self.argv_ptrs, &self.envp_ptrs);
        fail(error_fd, &err)
    }
}

fn fail(error_fd: RawFd, err: &io::Error) -> ! {
    let code = err.raw_os_error().unwrap_or(libc::EINVAL);
    let _ = sys::write(error_fd, &code.to_ne_bytes());
    sys::exit_now(EXEC_FAILED)
}

/// Reads the exec-error pipe: `Ok(())` once it closes empty (the exec happened).
fn exec_result(error_read: OwnedFd) -> io::Result<()> {
    let mut buf = [0u8; 4];
    let mut got = 0;
    loop {
        match sys::read(error_read.as_raw_fd(), &mut buf[got..]) {
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
    pub pid: libc::pid_t,
    pub pidfd: OwnedFd,
}

/// Forks the pty-mode child: new session, `slave` as controlling terminal and fds 0–2, then
/// the prepared exec. Returns once the exec succeeded (or with its error).
pub fn spawn_pty_child(exec: &PreparedExec, slave: &OwnedFd) -> io::Result<PtyChild> {
    let (error_read, error_write) = sys::pipe()?;
    match sys::fork()? {
        sys::Forked::Child => {
            let ew = error_write.as_raw_fd();
            let setup = sys::setsid()
                .and_then(|()| sys::set_controlling_tty(slave.as_raw_fd()))
                .and_then(|()| sys::dup2(slave.as_raw_fd(), 0))
                .and_then(|()| sys::dup2(slave.as_raw_fd(), 1))
                .and_then(|()| sys::dup2(slave.as_raw_fd(), 2));
            if let Err(e) = setup {
                fail(ew, &e);
            }
            exec.become_user_and_exec(ew)
        }
        sys::Forked::Parent(pid) => {
            drop(error_write);
            let pidfd = sys::pidfd_open(pid)?;
            match exec_result(error_read) {
                Ok(()) => Ok(PtyChild { pid, pidfd }),
                Err(e) => {
                    let _ = sys::waitpid(pid, false);
                    Err(e)
                }
            }
        }
    }
}

/// The recorder's ends of a pipe-mode command.
pub struct PipeChild {
    /// The monitor process (the recorder's child).
    pub monitor_pid: libc::pid_t,
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

/// Who the pipe-mode monitor runs as (the recorder's system user, never root).
#[derive(Debug, Clone, Copy)]
pub struct MonitorUser {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

/// Forks the monitor, which forks and execs the command with three pipes as its fds 0–2.
pub fn spawn_pipe_child(exec: &PreparedExec, monitor_user: MonitorUser) -> io::Result<PipeChild> {
    let (stdin_read, stdin_write) = sys::pipe()?;
    let (stdout_read, stdout_write) = sys::pipe()?;
    let (stderr_read, stderr_write) = sys::pipe()?;
    let (control_read, control_write) = sys::pipe()?;
    let (status_read, status_write) = sys::pipe()?;
    let (error_read, error_write) = sys::pipe()?;
    match sys::fork()? {
        sys::Forked::Child => {
            let keep = [
                stdin_read.as_raw_fd(),
                stdout_write.as_raw_fd(),
                stderr_write.as_raw_fd(),
                control_read.as_raw_fd(),
                status_write.as_raw_fd(),
                error_write.as_raw_fd(),
            ];
            run_monitor(exec, monitor_user, keep)
        }
        sys::Forked::Parent(monitor_pid) => {
            drop((stdin_read, stdout_write, stderr_write));
            drop((control_read, status_write, error_write));
            let monitor_pidfd = sys::pidfd_open(monitor_pid)?;
            if let Err(e) = exec_result(error_read) {
                let _ = sys::waitpid(monitor_pid, false);
                return Err(e);
            }
            Ok(PipeChild {
                monitor_pid,
                monitor_pidfd,
                stdin: stdin_write,
                stdout: stdout_read,
                stderr: stderr_read,
                control: control_write,
                status: status_read,
            })
        }
    }
}

/// The monitor's whole life. `fds` = [stdin_r, stdout_w, stderr_w, control_r, status_w, error_w].
/// Allocation-free: it is a forked copy of the recorder that never execs.
fn run_monitor(exec: &PreparedExec, monitor_user: MonitorUser, fds: [RawFd; 6]) -> ! {
    let [stdin_r, stdout_w, stderr_w, control_r, status_w, error_w] = fds;
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
    sys::close_all_except(&fds, 4096);
    if let Err(e) = sys::setsid() {
        fail(error_w, &e);
    }
    // The command is forked while the monitor is still root, so that it can drop to the user
    // itself; the monitor then gives up everything but CAP_KILL.
    let command = match sys::fork() {
        Ok(sys::Forked::Child) => {
            let setup = sys::setpgid_self()
                .and_then(|()| sys::dup2(stdin_r, 0))
                .and_then(|()| sys::dup2(stdout_w, 1))
                .and_then(|()| sys::dup2(stderr_w, 2));
            if let Err(e) = setup {
                fail(error_w, &e);
            }
            exec.become_user_and_exec(error_w)
        }
        Ok(sys::Forked::Parent(pid)) => pid,
        Err(e) => fail(error_w, &e),
    };
    if let Err(e) = sys::become_signaller(monitor_user.uid, monitor_user.gid) {
        let _ = sys::kill(command, libc::SIGKILL);
        let _ = sys::waitpid(command, false);
        fail(error_w, &e);
    }
    for fd in [stdin_r, stdout_w, stderr_w, error_w] {
        sys::close(fd);
    }
    send_message(status_w, b'P', command);
    let pidfd = match sys::pidfd_open(command) {
        Ok(fd) => fd,
        Err(_) => {
            // Without a pidfd, wait blocking; forwarding is then unavailable.
            let status = sys::waitpid(command, false).ok().flatten().unwrap_or(0);
            send_message(status_w, b'S', status);
            sys::exit_now(0);
        }
    };
    let mut control_open = true;
    loop {
        let mut fds = [
            sys::pollfd(pidfd.as_raw_fd(), sys::POLLIN),
            sys::pollfd(if control_open { control_r } else { -1 }, sys::POLLIN),
        ];
        if sys::poll(&mut fds, -1).is_err() {
            continue;
        }
        if fds[0].revents != 0 {
            // Signals are sent only before this point: the command's pid (and so its process
            // group id) stays allocated until it is reaped here, so CAP_KILL never reaches a
            // process that reused it.
            let status = sys::waitpid(command, false).ok().flatten().unwrap_or(0);
            send_message(status_w, b'S', status);
            sys::exit_now(0);
        }
        if fds[1].revents != 0 {
            let mut byte = [0u8; 1];
            match sys::read(control_r, &mut byte) {
                Ok(1) => forward(command, libc::c_int::from(byte[0])),
                Ok(_) => {
                    // The recorder is gone: hang the command up, as a closed terminal would.
                    control_open = false;
                    forward(command, libc::SIGHUP);
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
fn forward(command: libc::pid_t, sig: libc::c_int) {
    let send = |sig| {
        if sys::kill(-command, sig).is_err() {
            let _ = sys::kill(command, sig);
        }
    };
    send(sig);
    if sig == libc::SIGHUP || sig == libc::SIGTERM {
        send(libc::SIGCONT);
    }
}

fn send_message(fd: RawFd, tag: u8, value: i32) {
    let v = value.to_ne_bytes();
    let message = [tag, v[0], v[1], v[2], v[3]];
    let _ = sys::write(fd, &message);
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
        sys::execve(&self.path, &self.argv_ptrs, &self.envp_ptrs)
    }
}
