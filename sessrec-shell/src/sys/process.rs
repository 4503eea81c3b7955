//! Creating processes and replacing or ending this one: fork, sessions, execve, _exit.

use std::ffi::CStr;
use std::io;

use super::check;

pub enum Forked {
    Child,
    Parent(libc::pid_t),
}

/// fork(2). The process is single-threaded, so the child may continue in Rust; callers keep
/// the child's path allocation-free anyway.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: the recorder is single-threaded when it forks.
    let pid = check(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Forked::Child
    } else {
        Forked::Parent(pid)
    })
}

pub fn setsid() -> io::Result<()> {
    // SAFETY: no arguments.
    check(unsafe { libc::setsid() })?;
    Ok(())
}

pub fn setpgid_self() -> io::Result<()> {
    // SAFETY: integer arguments.
    check(unsafe { libc::setpgid(0, 0) })?;
    Ok(())
}

/// execve(2); returns only on failure. Async-signal-safe.
pub fn execve(
    path: &CStr,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> io::Error {
    // SAFETY: argv and envp are NULL-terminated arrays of pointers to C strings that outlive
    // the call (the caller keeps the owning CStrings alive).
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}

/// _exit(2) without running destructors or atexit handlers. Async-signal-safe.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: terminates the process.
    unsafe { libc::_exit(code) }
}

pub fn getpid() -> libc::pid_t {
    // SAFETY: cannot fail.
    unsafe { libc::getpid() }
}
