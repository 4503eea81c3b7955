//! The outer terminal (sshd's pty, `$SSH_TTY`): taken from the user before the shell starts, and
//! put into raw mode while the recorder relays (restored by a guard).
//!
//! sshd leaves the tty owned by the user (0620), so any process of the user could open it and
//! read keystrokes or write output behind the recorder. When the recorder leads the session of
//! its terminal (as sshd and login start a shell), it chowns the tty to root 0600, revokes every
//! earlier open with vhangup(2) (SIGHUP ignored meanwhile), reopens it by path and makes it the
//! controlling terminal again, as login(1) does. It never gives it back. A nested invocation
//! (inside tmux, `su`, a recorded channel) runs in a terminal that another session leads and is
//! already recorded; hanging that up would kill the user's outer shell, so it is left alone.
#![forbid(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::sys;

/// What happened to the outer terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Takeover {
    /// No standard descriptor is a terminal (pipe mode).
    NoTerminal,
    /// Chowned to root 0600 and earlier opens revoked.
    Taken { path: PathBuf },
    /// Another process leads this terminal's session; left as it was.
    Nested { path: PathBuf },
}

impl Takeover {
    pub fn as_str(&self) -> &'static str {
        match self {
            Takeover::NoTerminal => "none",
            Takeover::Taken { .. } => "taken",
            Takeover::Nested { .. } => "nested",
        }
    }
}

fn fd_path(fd: i32) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
}

/// Most typed-ahead input kept across the takeover.
const TYPEAHEAD_MAX: usize = 64 * 1024;

/// Takes the terminal on fds 0–2 from the user. Must run as root, before any child exists.
/// Also returns what the user typed before the takeover (the hangup would discard it), for the
/// relay to pass on to the shell and record.
pub fn take_over() -> io::Result<(Takeover, Vec<u8>)> {
    let tty_fds: Vec<i32> = (0..=2).filter(|&fd| sys::isatty(fd)).collect();
    let Some(&first) = tty_fds.first() else {
        return Ok((Takeover::NoTerminal, Vec::new()));
    };
    let path = fd_path(first)?;
    let leader = sys::getsid() == sys::getpid() && sys::tcgetsid(first).ok() == Some(sys::getpid());
    if !leader {
        return Ok((Takeover::Nested { path }, Vec::new()));
    }
    let typeahead = if sys::isatty(0) {
        drain_typeahead(0)
    } else {
        Vec::new()
    };
    let rdev = sys::rdev(first)?;
    for &fd in &tty_fds {
        sys::fchown(fd, 0, 0)?;
        sys::fchmod(fd, 0o600)?;
    }
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    sys::ignore_signal(libc::SIGHUP)?;
    let revoked = sys::vhangup();
    let reopened = revoked.and_then(|()| sys::open_tty(&c_path));
    let result = reopened.and_then(|fd| {
        if sys::rdev(fd.as_raw_fd())? != rdev {
            return Err(io::Error::other(format!(
                "{} is no longer the terminal it was",
                path.display()
            )));
        }
        sys::set_controlling_tty(fd.as_raw_fd())?;
        for &target in &tty_fds {
            sys::dup2(fd.as_raw_fd(), target)?;
        }
        Ok(())
    });
    sys::default_signal(libc::SIGHUP)?;
    result?;
    Ok((Takeover::Taken { path }, typeahead))
}

/// Reads what is waiting in the terminal's input queue, partial lines included (canonical mode
/// is switched off for the read, and the settings restored).
fn drain_typeahead(fd: i32) -> Vec<u8> {
    let Ok(saved) = sys::tcgetattr(fd) else {
        return Vec::new();
    };
    let mut peek = saved;
    peek.c_lflag &= !libc::ICANON;
    peek.c_cc[libc::VMIN] = 0;
    peek.c_cc[libc::VTIME] = 0;
    let Ok(_restore) = SavedTermios::set(fd, saved, &peek) else {
        return Vec::new();
    };
    let mut typed = Vec::new();
    let mut buf = [0u8; 4096];
    while typed.len() < TYPEAHEAD_MAX {
        match sys::read(fd, &mut buf) {
            Ok(n) if n > 0 => typed.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    typed
}

/// A terminal's settings, put back when dropped.
struct SavedTermios {
    fd: i32,
    saved: sys::Termios,
}

impl SavedTermios {
    /// Applies `new` to `fd`; `saved` (what `fd` had) comes back on drop.
    fn set(fd: i32, saved: sys::Termios, new: &sys::Termios) -> io::Result<Self> {
        sys::tcsetattr(fd, new)?;
        Ok(SavedTermios { fd, saved })
    }
}

impl Drop for SavedTermios {
    fn drop(&mut self) {
        let _ = sys::tcsetattr(self.fd, &self.saved);
    }
}

/// Raw mode on the outer terminal, and O_NONBLOCK on the standard descriptors, for as long as
/// the guard lives.
pub struct RawModeGuard {
    blocking_restore: Vec<i32>,
    /// Dropped after `Drop::drop` has made the descriptors blocking again.
    saved: Option<SavedTermios>,
}

impl RawModeGuard {
    /// Puts fd 0 (if a terminal) into raw mode and makes `nonblocking` fds nonblocking.
    pub fn new(nonblocking: &[i32]) -> io::Result<Self> {
        let mut guard = RawModeGuard {
            blocking_restore: Vec::new(),
            saved: None,
        };
        if sys::isatty(0) {
            let saved = sys::tcgetattr(0)?;
            let raw = sys::make_raw(&saved);
            guard.saved = Some(SavedTermios::set(0, saved, &raw)?);
        }
        for &fd in nonblocking {
            sys::set_nonblocking(fd)?;
            guard.blocking_restore.push(fd);
        }
        Ok(guard)
    }

    /// The outer terminal's settings before raw mode (the inner pty starts from them).
    pub fn saved(&self) -> Option<&sys::Termios> {
        self.saved.as_ref().map(|s| &s.saved)
    }
}

impl Drop for RawModeGuard {
    fn drop(&mut self) {
        for &fd in &self.blocking_restore {
            let _ = sys::set_blocking(fd);
        }
        // `saved` restores the terminal settings as it is dropped, next.
    }
}
