//! Creating processes and replacing or ending this one: fork, sessions, execve, _exit.

use std::ffi::CString;
use std::io;

pub use nix::unistd::Pid;

use super::check;

pub enum Forked {
    Child,
    Parent(Pid),
}

/// fork(2).
///
/// # Safety
///
/// The calling process must be single-threaded, and until it execs or exits the child must
/// make only async-signal-safe calls: no allocation, no locks, no destructors of state it
/// shares with the parent (descriptors are closed by number or by the exec, and the child
/// leaves with [`exit_now`]).
pub unsafe fn fork() -> io::Result<Forked> {
    // SAFETY: the caller guarantees a single thread and an async-signal-safe child.
    let pid = check(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Forked::Child
    } else {
        Forked::Parent(Pid::from_raw(pid))
    })
}

/// Makes the caller the leader of a new session. Async-signal-safe.
pub fn setsid() -> io::Result<()> {
    nix::unistd::setsid()?;
    Ok(())
}

/// Makes the caller the leader of a new process group. Async-signal-safe.
pub fn setpgid_self() -> io::Result<()> {
    nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
    Ok(())
}

/// Everything execve(2) reads, laid out before `fork` so the child does not allocate: the
/// program path and NULL-terminated pointer arrays into the argument and environment strings
/// this value owns.
pub struct ExecArgs {
    path: CString,
    /// Owns the strings `argv_ptrs` points into.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    /// Owns the strings `envp_ptrs` points into.
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
}

impl ExecArgs {
    pub fn new(path: CString, argv: Vec<CString>, envp: Vec<CString>) -> Self {
        // A CString's bytes live on the heap: moving the vectors into `Self` keeps the
        // pointers valid, and nothing hands out `&mut` to the strings.
        let null_terminated = |strings: &[CString]| {
            let mut ptrs: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
            ptrs.push(std::ptr::null());
            ptrs
        };
        ExecArgs {
            argv_ptrs: null_terminated(&argv),
            envp_ptrs: null_terminated(&envp),
            path,
            _argv: argv,
            _envp: envp,
        }
    }

    /// The program to execute.
    pub fn path(&self) -> &CString {
        &self.path
    }
}

/// execve(2); returns only on failure. Async-signal-safe.
pub fn execve(args: &ExecArgs) -> io::Error {
    // SAFETY: `args` keeps the path and the NULL-terminated argv/envp arrays, and the strings
    // they point to, alive for the call (see `ExecArgs::new`).
    unsafe {
        libc::execve(
            args.path.as_ptr(),
            args.argv_ptrs.as_ptr(),
            args.envp_ptrs.as_ptr(),
        )
    };
    io::Error::last_os_error()
}

/// _exit(2) without running destructors or atexit handlers. Async-signal-safe.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: terminates the process.
    unsafe { libc::_exit(code) }
}

pub fn getpid() -> Pid {
    nix::unistd::getpid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_args_point_into_their_own_strings() {
        let args = ExecArgs::new(
            c"/bin/sh".to_owned(),
            vec![c"-sh".to_owned(), c"-c".to_owned()],
            vec![c"A=1".to_owned()],
        );
        assert_eq!(args.argv_ptrs.len(), 3);
        assert_eq!(args.argv_ptrs[1], args._argv[1].as_ptr());
        assert!(args.argv_ptrs[2].is_null());
        assert_eq!(args.envp_ptrs, [args._envp[0].as_ptr(), std::ptr::null()]);
        assert_eq!(args.path().as_c_str(), c"/bin/sh");
    }
}
