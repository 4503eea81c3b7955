//! Start-up hardening of the setuid recorder: it records who called it, becomes root in full,
//! and takes away every process attribute the caller could have set to steer it (signals,
//! mask, limits, umask, OOM score). The caller's values are kept to give back to the child.
#![deny(unsafe_code)]

use std::io;

use crate::sys;

/// Who started the recorder (the real ids before the setuid switch).
#[derive(Debug, Clone)]
pub struct Caller {
    pub uid: sys::Uid,
    pub gid: sys::Gid,
    pub groups: Vec<sys::Gid>,
}

impl Caller {
    pub fn is_root(&self) -> bool {
        self.uid.is_root()
    }
}

/// The caller's process attributes, restored in the child before it execs.
#[derive(Debug, Clone)]
pub struct Inherited {
    pub signals: sys::SignalState,
    pub limits: sys::SavedLimits,
    pub umask: libc::mode_t,
    /// The caller's /proc/self/oom_score_adj, as written back (ASCII).
    pub oom_score_adj: Vec<u8>,
}

/// OOM score of the recorder: low, so the kernel kills the user's processes first.
const RECORDER_OOM_SCORE_ADJ: &[u8] = b"-900";

/// Signals the recorder ignores for its whole life (the terminal's keys reach the child only).
const IGNORED: [libc::c_int; 7] = [
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGPIPE,
    // A file size limit that could not be lifted must fail a write (EFBIG), not kill us.
    libc::SIGXFSZ,
];

#[derive(Debug)]
pub enum StartupError {
    NotSetuid,
    Os(&'static str, io::Error),
}

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartupError::NotSetuid => write!(
                f,
                "sessrec-shell must be installed setuid root (mode 4755, owner root) on a filesystem mounted without nosuid"
            ),
            StartupError::Os(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

/// Runs first thing in `main`.
#[allow(unsafe_code)]
pub fn harden() -> Result<(Caller, Inherited), StartupError> {
    // Nothing the caller left open reaches the recorder or the child.
    // SAFETY: nothing has been opened yet, so no descriptor above 2 is owned.
    unsafe { sys::close_inherited_descriptors() };
    // A caller that closed fd 0, 1 or 2 must not get a record file or a config file there.
    for fd in sys::StdFd::ALL {
        if !sys::is_open(fd) {
            sys::open_dev_null_at(fd).map_err(|e| {
                StartupError::Os("opening /dev/null for a closed standard descriptor", e)
            })?;
        }
    }
    let ids = sys::caller_ids().map_err(|e| StartupError::Os("reading process ids", e))?;
    if !ids.euid.is_root() {
        return Err(StartupError::NotSetuid);
    }
    let caller = Caller {
        uid: ids.uid,
        gid: ids.gid,
        groups: ids.groups,
    };
    sys::become_root_fully().map_err(|e| StartupError::Os("switching to root", e))?;
    let mut signals = sys::reset_signals().map_err(|e| StartupError::Os("resetting signals", e))?;
    // Rust's runtime ignores SIGPIPE before `main`, hiding the caller's value: the child gets
    // the default, as sshd gives it.
    signals.set_ignored(libc::SIGPIPE, false);
    for sig in IGNORED {
        sys::ignore_signal(sig).map_err(|e| StartupError::Os("ignoring signals", e))?;
    }
    let limits = sys::raise_limits().map_err(|e| StartupError::Os("raising limits", e))?;
    let umask = sys::set_umask(0o077);
    let oom_score_adj = std::fs::read("/proc/self/oom_score_adj")
        .map(|v| v.trim_ascii().to_vec())
        .unwrap_or_else(|_| b"0".to_vec());
    // A failure here only leaves the default score.
    let _ = sys::write_oom_score_adj(RECORDER_OOM_SCORE_ADJ);
    Ok((
        caller,
        Inherited {
            signals,
            limits,
            umask,
            oom_score_adj,
        },
    ))
}
