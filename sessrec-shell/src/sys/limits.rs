//! Resource limits, umask, OOM score and resource usage of the recorder and its child.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use super::check;
use super::fd::write;

/// Limits the recorder raises for itself (the caller's values go back to the child).
pub const RAISED_LIMITS: [libc::__rlimit_resource_t; 6] = [
    libc::RLIMIT_FSIZE,
    libc::RLIMIT_CPU,
    libc::RLIMIT_AS,
    libc::RLIMIT_DATA,
    libc::RLIMIT_NPROC,
    libc::RLIMIT_NOFILE,
];

#[derive(Debug, Clone, Copy)]
pub struct SavedLimits {
    saved: [(libc::__rlimit_resource_t, libc::rlimit); 7],
}

/// Saves the caller's limits, raises those in RAISED_LIMITS (NOFILE to 4096) and disables
/// core dumps for the recorder.
pub fn raise_limits() -> io::Result<SavedLimits> {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    let mut saved = SavedLimits {
        saved: [(libc::RLIMIT_CORE, zero); 7],
    };
    for (slot, &resource) in RAISED_LIMITS
        .iter()
        .chain([libc::RLIMIT_CORE].iter())
        .enumerate()
    {
        let mut current = zero;
        // SAFETY: valid pointer to an rlimit.
        check(unsafe { libc::getrlimit(resource, &mut current) })?;
        saved.saved[slot] = (resource, current);
        let wanted = match resource {
            libc::RLIMIT_CORE => zero,
            libc::RLIMIT_NOFILE => libc::rlimit {
                rlim_cur: 4096,
                rlim_max: current.rlim_max.max(4096),
            },
            _ => libc::rlimit {
                rlim_cur: libc::RLIM_INFINITY,
                rlim_max: libc::RLIM_INFINITY,
            },
        };
        // SAFETY: valid pointer to an rlimit.
        if unsafe { libc::setrlimit(resource, &wanted) } == -1 {
            // Without CAP_SYS_RESOURCE (some containers) the hard limit cannot be raised:
            // take the soft limit up to it instead.
            let fallback = libc::rlimit {
                rlim_cur: wanted.rlim_cur.min(current.rlim_max),
                rlim_max: current.rlim_max,
            };
            // SAFETY: valid pointer to an rlimit.
            check(unsafe { libc::setrlimit(resource, &fallback) })?;
        }
    }
    Ok(saved)
}

/// Puts the caller's limits back. Async-signal-safe.
pub fn restore_limits(limits: &SavedLimits) {
    for (resource, value) in limits.saved.iter() {
        // SAFETY: valid pointer; lowering limits is always permitted.
        unsafe { libc::setrlimit(*resource, value) };
    }
}

pub fn set_umask(mask: libc::mode_t) -> libc::mode_t {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask) }
}

/// Peak RSS in KiB and user+system CPU in microseconds of this process.
pub fn self_usage() -> (u64, u64) {
    // SAFETY: rusage is plain data filled by getrusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let micros = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    (
        usage.ru_maxrss as u64,
        micros(usage.ru_utime) + micros(usage.ru_stime),
    )
}
/// Writes `value` (ASCII decimal) to /proc/self/oom_score_adj. Async-signal-safe.
pub fn write_oom_score_adj(value: &[u8]) -> io::Result<()> {
    // SAFETY: constant path; flags only.
    let fd = check(unsafe {
        libc::open(
            c"/proc/self/oom_score_adj".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: a fresh descriptor nothing else owns; dropping it is close(2), which does not
    // allocate.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    write(&fd, value).map(drop)
}
