//! Signal dispositions and mask: saving and restoring the caller's, the recorder's self-pipe,
//! and sending signals.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd};

use super::check;
use super::fd::{pipe, set_nonblocking};

/// Highest signal number on Linux (real-time signals included).
pub const MAX_SIGNAL: usize = 64;

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
