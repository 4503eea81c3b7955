//! Every foreign call of the recorder: process credentials, signals, limits, terminals, ptys,
//! fork/exec, poll and resource usage. Everything else in the crate is safe code.
//!
//! Functions documented "async-signal-safe" are called in a forked child before `execve` and
//! must neither allocate nor take locks.

use std::ffi::{CStr, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// Highest signal number on Linux (real-time signals included).
pub const MAX_SIGNAL: usize = 64;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

// ---------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------

/// The real uid/gid of the caller and its supplementary groups, as the kernel reports them.
#[derive(Debug, Clone)]
pub struct CallerIds {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub euid: libc::uid_t,
    pub groups: Vec<libc::gid_t>,
}

pub fn caller_ids() -> io::Result<CallerIds> {
    // SAFETY: getuid/getgid/geteuid cannot fail and take no pointers.
    let (uid, gid, euid) = unsafe { (libc::getuid(), libc::getgid(), libc::geteuid()) };
    // SAFETY: a null list with size 0 asks only for the count.
    let count = check(unsafe { libc::getgroups(0, std::ptr::null_mut()) })?;
    let mut groups = vec![0 as libc::gid_t; count as usize];
    // SAFETY: `groups` has room for `count` entries.
    let got = check(unsafe { libc::getgroups(count, groups.as_mut_ptr()) })?;
    groups.truncate(got as usize);
    Ok(CallerIds {
        uid,
        gid,
        euid,
        groups,
    })
}

/// Sets real, effective and saved gid and uid to 0 (the setuid bit gave us euid 0).
pub fn become_root_fully() -> io::Result<()> {
    // SAFETY: plain syscalls with integer arguments.
    check(unsafe { libc::setresgid(0, 0, 0) })?;
    // SAFETY: as above.
    check(unsafe { libc::setresuid(0, 0, 0) })?;
    Ok(())
}

/// Irreversibly switches every id to `uid`/`gid` with exactly `groups`. Async-signal-safe.
/// Fails if root could be regained afterwards.
pub fn drop_to(uid: libc::uid_t, gid: libc::gid_t, groups: &[libc::gid_t]) -> io::Result<()> {
    // SAFETY: `groups` is a valid slice of gid_t for its length.
    check(unsafe { libc::setgroups(groups.len(), groups.as_ptr()) })?;
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::setresgid(gid, gid, gid) })?;
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::setresuid(uid, uid, uid) })?;
    if uid != 0 {
        // SAFETY: plain syscall; success would mean the drop was reversible.
        let regained_uid = unsafe { libc::setuid(0) } == 0;
        // SAFETY: as above, for the group.
        let regained_gid = gid != 0 && unsafe { libc::setgid(0) } == 0;
        if regained_uid || regained_gid {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
    }
    Ok(())
}

// Capabilities are set with capget/capset written out here rather than with the `caps` crate:
// the pipe-mode monitor sets them in a forked copy of the recorder, which must not allocate,
// and `caps` takes and returns `HashSet`s (its bounding-set clear iterates one) and builds
// `String` errors. The hand-written calls are the three below.

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// CAP_KILL (linux/capability.h): signal any process.
pub const CAP_KILL: u32 = 5;
/// CAP_SETPCAP (linux/capability.h): change the bounding set, among others.
const CAP_SETPCAP: libc::c_ulong = 8;

/// The three capability sets of the calling thread (low 64 bits each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapabilitySets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

fn split_capabilities(bits: u64) -> (u32, u32) {
    (bits as u32, (bits >> 32) as u32)
}

/// capset(2) of the calling thread. Async-signal-safe.
fn set_capability_sets(sets: CapabilitySets) -> io::Result<()> {
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let (e0, e1) = split_capabilities(sets.effective);
    let (p0, p1) = split_capabilities(sets.permitted);
    let (i0, i1) = split_capabilities(sets.inheritable);
    let data = [
        CapData {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        CapData {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: header and a two-element data array are the layout capset(2) v3 expects.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// capget(2) of the calling thread. Async-signal-safe.
pub fn capability_sets() -> io::Result<CapabilitySets> {
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and a two-element data array are the layout capget(2) v3 expects.
    let ret = unsafe { libc::syscall(libc::SYS_capget, &header, data.as_mut_ptr()) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    let join = |low: u32, high: u32| u64::from(low) | (u64::from(high) << 32);
    Ok(CapabilitySets {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

fn clear_ambient_capabilities() -> io::Result<()> {
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes no pointers.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    })?;
    Ok(())
}

fn set_no_new_privs_and_not_dumpable() -> io::Result<()> {
    // SAFETY: integer-argument prctl.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    set_not_dumpable()
}

/// Empties the effective, permitted and inheritable capability sets, clears ambient
/// capabilities, and sets no-new-privs and not-dumpable.
pub fn drop_capabilities_and_lock() -> io::Result<()> {
    clear_ambient_capabilities()?;
    set_capability_sets(CapabilitySets {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    })?;
    set_no_new_privs_and_not_dumpable()
}

/// Turns a root process into `uid`/`gid` (no supplementary groups) that holds CAP_KILL and no
/// other capability: empty bounding, inheritable and ambient sets, no-new-privs, not dumpable.
/// Verified before returning. Async-signal-safe (the pipe-mode monitor calls it after fork).
pub fn become_signaller(uid: libc::uid_t, gid: libc::gid_t) -> io::Result<()> {
    if uid == 0 {
        // uid 0 would keep root's file access without any capability.
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // The bounding set first: dropping from it needs CAP_SETPCAP, which only root has here.
    for cap in 0..64 {
        // SAFETY: integer-argument prctl.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } == -1 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINVAL) {
                break; // past the kernel's last capability
            }
            return Err(err);
        }
    }
    // Keep the permitted set across the uid change (the effective set is emptied by it).
    // SAFETY: integer-argument prctl.
    check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) })?;
    drop_to(uid, gid, &[])?;
    let kill_only = 1u64 << CAP_KILL;
    let wanted = CapabilitySets {
        effective: kill_only,
        permitted: kill_only,
        inheritable: 0,
    };
    set_capability_sets(wanted)?;
    // SAFETY: integer-argument prctl.
    check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) })?;
    clear_ambient_capabilities()?;
    set_no_new_privs_and_not_dumpable()?;
    // SAFETY: integer-argument prctl; 0 means CAP_SETPCAP has left the bounding set.
    let bounded = unsafe { libc::prctl(libc::PR_CAPBSET_READ, CAP_SETPCAP, 0, 0, 0) };
    if capability_sets()? != wanted || bounded != 0 {
        return Err(io::Error::from_raw_os_error(libc::EPERM));
    }
    Ok(())
}

/// Marks the process not dumpable (no core, no ptrace by its uid, /proc entries root-owned).
pub fn set_not_dumpable() -> io::Result<()> {
    // SAFETY: integer-argument prctl.
    check(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) })?;
    Ok(())
}

/// The effective capability set (low 64 bits), for verification.
pub fn effective_capabilities() -> io::Result<u64> {
    Ok(capability_sets()?.effective)
}

// ---------------------------------------------------------------------------------------------
// Users and groups
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Passwd {
    pub name: String,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

impl From<nix::unistd::User> for Passwd {
    fn from(user: nix::unistd::User) -> Self {
        Passwd {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        }
    }
}

// nix's wrappers of getpwnam_r/getpwuid_r/getgrnam_r/getgrgid_r (growing the buffer on ERANGE).
pub fn passwd_by_name(name: &str) -> io::Result<Option<Passwd>> {
    Ok(nix::unistd::User::from_name(name)?.map(Passwd::from))
}

pub fn passwd_by_uid(uid: libc::uid_t) -> io::Result<Option<Passwd>> {
    Ok(nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))?.map(Passwd::from))
}

pub fn group_gid(name: &str) -> io::Result<Option<libc::gid_t>> {
    Ok(nix::unistd::Group::from_name(name)?.map(|g| g.gid.as_raw()))
}

pub fn group_name(gid: libc::gid_t) -> io::Result<Option<String>> {
    Ok(nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))?.map(|g| g.name))
}

// ---------------------------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------------------------

/// Which signals the caller had ignored, and its signal mask: what the child gets back.
#[derive(Clone, Copy)]
pub struct SignalState {
    ignored: [bool; MAX_SIGNAL + 1],
    mask: libc::sigset_t,
}

impl std::fmt::Debug for SignalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ignored: Vec<usize> = (1..=MAX_SIGNAL).filter(|&s| self.ignored[s]).collect();
        f.debug_struct("SignalState")
            .field("ignored", &ignored)
            .finish_non_exhaustive()
    }
}

impl SignalState {
    /// Overrides whether `sig` counts as ignored by the caller.
    pub fn set_ignored(&mut self, sig: libc::c_int, ignored: bool) {
        if let Some(slot) = self.ignored.get_mut(sig as usize) {
            *slot = ignored;
        }
    }
}

fn settable(sig: usize) -> bool {
    let sig = sig as libc::c_int;
    // glibc reserves 32 and 33 for its threads implementation.
    sig != libc::SIGKILL && sig != libc::SIGSTOP && sig != 32 && sig != 33
}

/// Records the caller's ignored signals and mask, then sets every disposition to default and
/// unblocks everything.
pub fn reset_signals() -> io::Result<SignalState> {
    let mut state = SignalState {
        ignored: [false; MAX_SIGNAL + 1],
        // SAFETY: sigset_t is plain data; sigprocmask fills it below.
        mask: unsafe { std::mem::zeroed() },
    };
    // SAFETY: an all-zero sigset is a valid set to pass; `state.mask` receives the old mask.
    let empty: libc::sigset_t = unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
        libc::sigemptyset(set.as_mut_ptr());
        set.assume_init()
    };
    // SAFETY: both pointers are valid sigsets.
    check(unsafe { libc::sigprocmask(libc::SIG_SETMASK, &empty, &mut state.mask) })?;
    for sig in 1..=MAX_SIGNAL {
        if !settable(sig) {
            continue;
        }
        // SAFETY: zeroed sigaction is a valid SIG_DFL action with an empty mask.
        let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
        new.sa_sigaction = libc::SIG_DFL;
        // SAFETY: as above; receives the old action.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers to sigaction structs for a settable signal number.
        if unsafe { libc::sigaction(sig as libc::c_int, &new, &mut old) } == 0 {
            state.ignored[sig] = old.sa_sigaction == libc::SIG_IGN;
        }
    }
    Ok(state)
}

/// Gives a forked child the caller's original dispositions and mask. Async-signal-safe.
pub fn restore_signals(state: &SignalState) {
    for sig in 1..=MAX_SIGNAL {
        if !settable(sig) {
            continue;
        }
        // SAFETY: zeroed sigaction is a valid action with an empty mask.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = if state.ignored[sig] {
            libc::SIG_IGN
        } else {
            libc::SIG_DFL
        };
        // SAFETY: valid pointer; failures leave the default, which is harmless.
        unsafe { libc::sigaction(sig as libc::c_int, &action, std::ptr::null_mut()) };
    }
    // SAFETY: state.mask is a valid sigset.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &state.mask, std::ptr::null_mut()) };
}

/// Sets every settable signal to its default disposition. Async-signal-safe.
pub fn default_all_signals() {
    for sig in 1..=MAX_SIGNAL {
        if !settable(sig) {
            continue;
        }
        // SAFETY: zeroed sigaction is SIG_DFL with an empty mask.
        let action: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer.
        unsafe { libc::sigaction(sig as libc::c_int, &action, std::ptr::null_mut()) };
    }
}

pub fn ignore_signal(sig: libc::c_int) -> io::Result<()> {
    // SAFETY: zeroed sigaction with SIG_IGN is a valid action.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = libc::SIG_IGN;
    // SAFETY: valid pointer.
    check(unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) })?;
    Ok(())
}

pub fn default_signal(sig: libc::c_int) -> io::Result<()> {
    // SAFETY: zeroed sigaction is SIG_DFL.
    let action: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    check(unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) })?;
    Ok(())
}

static SIGNAL_PIPE_WRITE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn signal_to_pipe(sig: libc::c_int) {
    let fd = SIGNAL_PIPE_WRITE.load(std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write(2) is async-signal-safe; errno is saved and restored around it.
        unsafe {
            let errno = *libc::__errno_location();
            libc::write(fd, (&byte as *const u8).cast(), 1);
            *libc::__errno_location() = errno;
        }
    }
}

/// Routes `signals` to a nonblocking self-pipe; returns its read end (one byte per signal).
pub fn signal_pipe(signals: &[libc::c_int]) -> io::Result<OwnedFd> {
    let (read, write) = pipe()?;
    set_nonblocking(read.as_raw_fd())?;
    set_nonblocking(write.as_raw_fd())?;
    let old = SIGNAL_PIPE_WRITE.swap(
        std::os::fd::IntoRawFd::into_raw_fd(write),
        std::sync::atomic::Ordering::SeqCst,
    );
    if old >= 0 {
        // SAFETY: `old` was a write end we owned and no longer publish.
        unsafe { libc::close(old) };
    }
    for &sig in signals {
        // SAFETY: zeroed sigaction, then handler and flags set.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = signal_to_pipe as extern "C" fn(libc::c_int) as usize;
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: valid pointer; the handler only calls write(2).
        check(unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) })?;
    }
    Ok(read)
}

/// Sends `sig` to a process (or a process group when `pid` is negative).
pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: integer-argument syscall.
    check(unsafe { libc::kill(pid, sig) })?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Resource limits, umask, OOM, usage
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// File descriptors
// ---------------------------------------------------------------------------------------------

pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 returned two fresh descriptors we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor with integer arguments.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    Ok(())
}

/// Asks for a pipe buffer of `size` bytes (fails harmlessly on a descriptor that is not a pipe,
/// or past /proc/sys/fs/pipe-max-size).
pub fn grow_pipe(fd: RawFd, size: usize) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor with integer arguments.
    check(unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, size as libc::c_int) })?;
    Ok(())
}

pub fn set_blocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor with integer arguments.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) })?;
    Ok(())
}

pub fn is_valid_fd(fd: RawFd) -> bool {
    // SAFETY: F_GETFD on any integer is harmless.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// read(2) on a raw descriptor.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for writes of its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// splice(2): moves up to `len` bytes from the pipe `from` to `to` inside the kernel, without
/// blocking on the pipe side. `Ok(0)`: end of input.
pub fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: null offsets (both ends are read and written at their current position); splice
    // only moves data between the two descriptors and touches no memory of this process.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// write(2) on a raw descriptor.
pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for reads of its length.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

pub fn dup2(from: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: dup2 on descriptors; `to` is replaced atomically.
    check(unsafe { libc::dup2(from, to) })?;
    Ok(())
}

pub fn close(fd: RawFd) {
    // SAFETY: the caller gives up `fd`; errors from close are not actionable.
    unsafe { libc::close(fd) };
}

pub fn fchown(fd: RawFd, uid: libc::uid_t, gid: libc::gid_t) -> io::Result<()> {
    // SAFETY: integer-argument syscall.
    check(unsafe { libc::fchown(fd, uid, gid) })?;
    Ok(())
}

pub fn fchmod(fd: RawFd, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: integer-argument syscall.
    check(unsafe { libc::fchmod(fd, mode) })?;
    Ok(())
}

/// One poll(2) entry.
pub type PollFd = libc::pollfd;
pub const POLLIN: i16 = libc::POLLIN;
pub const POLLOUT: i16 = libc::POLLOUT;
pub const POLLHUP: i16 = libc::POLLHUP;
pub const POLLERR: i16 = libc::POLLERR;

pub fn pollfd(fd: RawFd, events: i16) -> PollFd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// poll(2); EINTR counts as "nothing ready".
pub fn poll(fds: &mut [PollFd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: fds is a valid array of pollfd for its length.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            for fd in fds.iter_mut() {
                fd.revents = 0;
            }
            return Ok(0);
        }
        return Err(err);
    }
    Ok(n as usize)
}

// ---------------------------------------------------------------------------------------------
// Terminals and ptys
// ---------------------------------------------------------------------------------------------

pub type Termios = libc::termios;
pub type Winsize = libc::winsize;

pub fn isatty(fd: RawFd) -> bool {
    // SAFETY: isatty takes any integer.
    unsafe { libc::isatty(fd) == 1 }
}

pub fn tcgetattr(fd: RawFd) -> io::Result<Termios> {
    // SAFETY: termios is plain data filled by tcgetattr.
    let mut t: Termios = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    check(unsafe { libc::tcgetattr(fd, &mut t) })?;
    Ok(t)
}

pub fn tcsetattr(fd: RawFd, t: &Termios) -> io::Result<()> {
    // SAFETY: valid pointer to a termios.
    check(unsafe { libc::tcsetattr(fd, libc::TCSADRAIN, t) })?;
    Ok(())
}

pub fn make_raw(t: &Termios) -> Termios {
    let mut raw = *t;
    // SAFETY: cfmakeraw only edits the struct.
    unsafe { libc::cfmakeraw(&mut raw) };
    raw.c_cc[libc::VMIN] = 1;
    raw.c_cc[libc::VTIME] = 0;
    raw
}

pub fn get_winsize(fd: RawFd) -> io::Result<Winsize> {
    // SAFETY: winsize is plain data.
    let mut ws: Winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize.
    check(unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) })?;
    Ok(ws)
}

pub fn set_winsize(fd: RawFd, ws: &Winsize) -> io::Result<()> {
    // SAFETY: TIOCSWINSZ reads a winsize.
    check(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, ws) })?;
    Ok(())
}

/// Makes `fd` the controlling terminal of the calling session leader. Async-signal-safe.
pub fn set_controlling_tty(fd: RawFd) -> io::Result<()> {
    // SAFETY: TIOCSCTTY with argument 0 (do not steal).
    check(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) })?;
    Ok(())
}

/// Sends `sig` to the foreground process group of the pty whose master is `master`.
pub fn pty_signal(master: RawFd, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: TIOCSIG takes the signal number as its argument.
    check(unsafe { libc::ioctl(master, libc::TIOCSIG, sig as libc::c_ulong) })?;
    Ok(())
}

pub fn getpid() -> libc::pid_t {
    // SAFETY: cannot fail.
    unsafe { libc::getpid() }
}

pub fn getsid() -> libc::pid_t {
    // SAFETY: getsid(0) is the caller's session.
    unsafe { libc::getsid(0) }
}

pub fn tcgetsid(fd: RawFd) -> io::Result<libc::pid_t> {
    // SAFETY: integer-argument call.
    let sid = unsafe { libc::tcgetsid(fd) };
    if sid == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sid)
    }
}

/// vhangup(2): revokes every open of the controlling terminal. Needs CAP_SYS_TTY_CONFIG.
pub fn vhangup() -> io::Result<()> {
    // SAFETY: no arguments.
    check(unsafe { libc::vhangup() })?;
    Ok(())
}

/// Opens a terminal device by path without making it the controlling terminal.
pub fn open_tty(path: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: path is a valid C string.
    let fd = check(unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    })?;
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    pub path: PathBuf,
}

/// Allocates a new pty pair from /dev/ptmx; the slave is opened through the master
/// (TIOCGPTPEER), so no path lookup can be raced.
pub fn open_pty() -> io::Result<Pty> {
    // SAFETY: flags only.
    let master = check(unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) })?;
    // SAFETY: fresh descriptor.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    // SAFETY: integer-argument fcntl.
    check(unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
    // SAFETY: descriptor argument only.
    check(unsafe { libc::grantpt(master.as_raw_fd()) })?;
    // SAFETY: descriptor argument only.
    check(unsafe { libc::unlockpt(master.as_raw_fd()) })?;
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: name has room for 128 bytes including the NUL.
    let ret = unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    // SAFETY: ptsname_r wrote a NUL-terminated string.
    let path = unsafe { CStr::from_ptr(name.as_ptr()) }.to_bytes().to_vec();
    // SAFETY: TIOCGPTPEER returns a new descriptor for the slave.
    let slave = check(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fresh descriptor.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    Ok(Pty {
        master,
        slave,
        path: PathBuf::from(OsString::from_vec(path)),
    })
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

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

/// A descriptor that becomes readable when the process exits.
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: integer-argument syscall returning a new descriptor (O_CLOEXEC by default).
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal { signal: i32, core_dumped: bool },
}

impl ExitStatus {
    pub fn from_wait_status(status: libc::c_int) -> Self {
        if libc::WIFSIGNALED(status) {
            ExitStatus::Signal {
                signal: libc::WTERMSIG(status),
                core_dumped: libc::WCOREDUMP(status),
            }
        } else {
            ExitStatus::Code(libc::WEXITSTATUS(status))
        }
    }

    /// The status a shell would report: the code, or 128 + signal.
    pub fn shell_code(&self) -> i32 {
        match *self {
            ExitStatus::Code(code) => code,
            ExitStatus::Signal { signal, .. } => 128 + signal,
        }
    }
}

/// waitpid(2); `Ok(None)` when `nohang` and the child is still running.
pub fn waitpid(pid: libc::pid_t, nohang: bool) -> io::Result<Option<libc::c_int>> {
    let mut status = 0;
    let flags = if nohang { libc::WNOHANG } else { 0 };
    loop {
        // SAFETY: valid pointer to an int.
        let ret = unsafe { libc::waitpid(pid, &mut status, flags) };
        if ret == -1 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        return Ok(if ret == 0 { None } else { Some(status) });
    }
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
    let result = write(fd, value);
    close(fd);
    result.map(|_| ())
}

/// Closes every descriptor below `limit` that is not in `keep`. Async-signal-safe.
pub fn close_all_except(keep: &[RawFd], limit: RawFd) {
    for fd in 0..limit {
        if !keep.contains(&fd) {
            // SAFETY: closing descriptors this forked process will never use; no Rust object
            // in this process outlives the following exec/_exit.
            unsafe { libc::close(fd) };
        }
    }
}

/// Opens /dev/null read-write and puts it on `fd` (which must be closed).
pub fn open_dev_null_at(fd: RawFd) -> io::Result<()> {
    // SAFETY: constant path; flags only. The new descriptor is moved to `fd` and never owned
    // by Rust code.
    let opened = check(unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) })?;
    if opened != fd {
        dup2(opened, fd)?;
        close(opened);
    }
    Ok(())
}

/// Closes every inherited descriptor above 2. Called first thing, before the process opens
/// anything itself, so no owned descriptor is affected.
pub fn close_inherited_descriptors() {
    // SAFETY: close_range(3, ~0, 0) only closes descriptors; none is owned by Rust code yet.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if ret != 0 {
        close_all_except(&[0, 1, 2], 65536);
    }
}

/// The device number of the terminal on `fd`.
pub fn rdev(fd: RawFd) -> io::Result<u64> {
    // SAFETY: stat is plain data filled by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    check(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st.st_rdev)
}
