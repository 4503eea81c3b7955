//! Signal dispositions and mask: saving and restoring the caller's, the recorder's self-pipe,
//! and sending signals.

use std::io;
use std::os::fd::OwnedFd;

pub use nix::sys::signal::Signal;
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};

use super::check;
use super::fd::{pipe, set_nonblocking};
use super::process::Pid;

/// Highest signal number on Linux (real-time signals included).
pub const MAX_SIGNAL: usize = 64;

/// Which signals the caller had ignored, and its signal mask: what the child gets back.
#[derive(Clone, Copy)]
pub struct SignalState {
    ignored: [bool; MAX_SIGNAL + 1],
    mask: SigSet,
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

/// Every signal number whose disposition can be set.
fn settable_signals() -> impl Iterator<Item = libc::c_int> {
    // glibc reserves 32 and 33 for its threads implementation.
    (1..=MAX_SIGNAL as libc::c_int)
        .filter(|&sig| sig != libc::SIGKILL && sig != libc::SIGSTOP && sig != 32 && sig != 33)
}

/// What a signal does on delivery. Private: a handler must be async-signal-safe, and the only
/// one this module installs is [`signal_to_pipe`].
#[derive(Clone, Copy)]
enum Disposition {
    Default,
    Ignore,
    ToSelfPipe,
}

/// sigaction(2) with an empty mask; returns whether the signal was ignored before.
/// Async-signal-safe.
fn set_disposition(sig: libc::c_int, disposition: Disposition) -> io::Result<bool> {
    // SAFETY: sigaction is plain data; all zeroes is SIG_DFL with an empty mask and no flags.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    match disposition {
        Disposition::Default => action.sa_sigaction = libc::SIG_DFL,
        Disposition::Ignore => action.sa_sigaction = libc::SIG_IGN,
        Disposition::ToSelfPipe => {
            action.sa_sigaction = signal_to_pipe as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
        }
    }
    // SAFETY: as above; receives the previous action.
    let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to sigaction structs; the only handler is async-signal-safe.
    check(unsafe { libc::sigaction(sig, &action, &mut previous) })?;
    Ok(previous.sa_sigaction == libc::SIG_IGN)
}

/// Records the caller's ignored signals and mask, then sets every disposition to default and
/// unblocks everything.
pub fn reset_signals() -> io::Result<SignalState> {
    let mut state = SignalState {
        ignored: [false; MAX_SIGNAL + 1],
        mask: SigSet::empty(),
    };
    sigprocmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::empty()),
        Some(&mut state.mask),
    )?;
    for sig in settable_signals() {
        if let Ok(ignored) = set_disposition(sig, Disposition::Default) {
            state.ignored[sig as usize] = ignored;
        }
    }
    Ok(state)
}

/// Gives a forked child the caller's original dispositions and mask. Async-signal-safe.
pub fn restore_signals(state: &SignalState) {
    for sig in settable_signals() {
        let disposition = if state.ignored[sig as usize] {
            Disposition::Ignore
        } else {
            Disposition::Default
        };
        // A failure leaves the default, which is harmless.
        let _ = set_disposition(sig, disposition);
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&state.mask), None);
}

/// Sets every settable signal to its default disposition. Async-signal-safe.
pub fn default_all_signals() {
    for sig in settable_signals() {
        let _ = set_disposition(sig, Disposition::Default);
    }
}

pub fn ignore_signal(sig: libc::c_int) -> io::Result<()> {
    set_disposition(sig, Disposition::Ignore).map(drop)
}

pub fn default_signal(sig: libc::c_int) -> io::Result<()> {
    set_disposition(sig, Disposition::Default).map(drop)
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
    set_nonblocking(&read)?;
    set_nonblocking(&write)?;
    let old = SIGNAL_PIPE_WRITE.swap(
        std::os::fd::IntoRawFd::into_raw_fd(write),
        std::sync::atomic::Ordering::SeqCst,
    );
    if old >= 0 {
        // SAFETY: `old` was a write end we owned and no longer publish.
        unsafe { libc::close(old) };
    }
    for &sig in signals {
        set_disposition(sig, Disposition::ToSelfPipe)?;
    }
    Ok(read)
}

/// Sends `sig` to a process. Async-signal-safe.
pub fn kill(pid: Pid, sig: Signal) -> io::Result<()> {
    nix::sys::signal::kill(pid, sig)?;
    Ok(())
}

/// Sends `sig` to every process in the group led by `leader`. Async-signal-safe.
pub fn kill_process_group(leader: Pid, sig: Signal) -> io::Result<()> {
    nix::sys::signal::killpg(leader, sig)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settable_signals_leave_out_kill_stop_and_glibc_reserved() {
        let settable: Vec<libc::c_int> = settable_signals().collect();
        for unsettable in [libc::SIGKILL, libc::SIGSTOP, 32, 33] {
            assert!(!settable.contains(&unsettable));
        }
        assert!(settable.contains(&libc::SIGHUP));
        assert_eq!(settable.last(), Some(&(MAX_SIGNAL as libc::c_int)));
    }

    #[test]
    fn set_disposition_reports_whether_the_signal_was_ignored() {
        // SIGUSR2 is used by nothing else in the test process.
        set_disposition(libc::SIGUSR2, Disposition::Ignore).unwrap();
        assert!(set_disposition(libc::SIGUSR2, Disposition::Default).unwrap());
        assert!(!set_disposition(libc::SIGUSR2, Disposition::Default).unwrap());
    }
}
