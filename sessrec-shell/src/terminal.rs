//! The outer terminal (sshd's pty, `$SSH_TTY`): taken from the user before the shell starts, and
//! put into raw mode while the recorder relays (restored by a guard).
//!
//! sshd leaves the tty owned by the user (0620), so any process of the user could open it and
//! read keystrokes or write output behind the recorder. When the recorder leads the session of
//! its terminal (as sshd and login start a shell), it chowns the tty to root 0600, revokes every
//! earlier open with vhangup(2) (SIGHUP ignored meanwhile), reopens it by path and makes it the
//! controlling terminal again, as login(1) does. It never gives it back. Only the controlling
//! terminal is touched: a standard descriptor that is some other terminal (another pty of the
//! user, a pty master, whose inode is /dev/ptmx) is the caller's choice and is left as it is. A nested invocation
//! (inside tmux, `su`, a recorded channel) runs in a terminal that another session leads and is
//! already recorded; hanging that up would kill the user's outer shell, so it is left alone.
#![forbid(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::sys::{self, StdFd};

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

/// The device number of the calling process's controlling terminal, from `tty_nr` in
/// /proc/self/stat (fstat of an open of /dev/tty would give /dev/tty's own number).
fn controlling_tty_rdev() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    tty_nr_to_rdev(parse_tty_nr(&stat)?)
}

/// Field 7 of a /proc/<pid>/stat line (after the command name, which may hold spaces and ')').
fn parse_tty_nr(stat: &str) -> Option<u64> {
    let (_, after_comm) = stat.rsplit_once(')')?;
    // state ppid pgrp session tty_nr
    after_comm.split_ascii_whitespace().nth(4)?.parse().ok()
}

/// The kernel's `tty_nr` encoding (major in bits 8–19, minor in bits 0–7 and 20–31) as an
/// `st_rdev`; `None` for 0 (no controlling terminal).
fn tty_nr_to_rdev(tty_nr: u64) -> Option<u64> {
    if tty_nr == 0 {
        return None;
    }
    let major = ((tty_nr >> 8) & 0xfff) as libc::c_uint;
    let minor = ((tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00)) as libc::c_uint;
    Some(libc::makedev(major, minor))
}

/// The descriptors (with their device numbers) that are the controlling terminal.
fn controlling_fds(ttys: &[(i32, u64)], controlling: Option<u64>) -> Vec<i32> {
    ttys.iter()
        .filter(|&&(_, rdev)| Some(rdev) == controlling)
        .map(|&(fd, _)| fd)
        .collect()
}

/// Takes the controlling terminal on fds 0–2 from the user. Must run as root, before any child
/// exists. Also returns what the user typed before the takeover (the hangup would discard it),
/// for the relay to pass on to the shell and record.
pub fn take_over() -> io::Result<(Takeover, Vec<u8>)> {
    let mut ttys = Vec::new();
    for fd in StdFd::ALL.into_iter().filter(|&fd| sys::isatty(fd)) {
        ttys.push((fd.raw(), sys::rdev(fd)?));
    }
    let Some(&(first, _)) = ttys.first() else {
        return Ok((Takeover::NoTerminal, Vec::new()));
    };
    let controlling = controlling_tty_rdev();
    let own_fds = controlling_fds(&ttys, controlling);
    let leader = match own_fds.first() {
        Some(&fd) => {
            sys::getsid() == sys::getpid()
                && StdFd::from_raw(fd).and_then(|fd| sys::tcgetsid(fd).ok()) == Some(sys::getpid())
        }
        None => false,
    };
    let (Some(&own), Some(rdev), true) = (own_fds.first(), controlling, leader) else {
        return Ok((
            Takeover::Nested {
                path: fd_path(first)?,
            },
            Vec::new(),
        ));
    };
    let path = fd_path(own)?;
    let typeahead = if own_fds.contains(&0) {
        drain_typeahead(StdFd::Input)
    } else {
        Vec::new()
    };
    for fd in own_fds.iter().filter_map(|&fd| StdFd::from_raw(fd)) {
        sys::fchown(fd, sys::Uid::from_raw(0), sys::Gid::from_raw(0))?;
        sys::fchmod(fd, 0o600)?;
    }
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    sys::ignore_signal(libc::SIGHUP)?;
    let revoked = sys::vhangup();
    let reopened = revoked.and_then(|()| sys::open_tty(&c_path));
    let result = reopened.and_then(|fd| {
        if sys::rdev(&fd)? != rdev {
            return Err(io::Error::other(format!(
                "{} is no longer the terminal it was",
                path.display()
            )));
        }
        sys::set_controlling_tty(&fd)?;
        for target in own_fds.iter().filter_map(|&fd| StdFd::from_raw(fd)) {
            sys::redirect_std_fd(target, &fd)?;
        }
        Ok(())
    });
    sys::default_signal(libc::SIGHUP)?;
    result?;
    Ok((Takeover::Taken { path }, typeahead))
}

/// Reads what is waiting in the terminal's input queue, partial lines included (canonical mode
/// is switched off for the read, and the settings restored).
fn drain_typeahead(fd: StdFd) -> Vec<u8> {
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
    fd: StdFd,
    saved: sys::Termios,
}

impl SavedTermios {
    /// Applies `new` to `fd`; `saved` (what `fd` had) comes back on drop.
    fn set(fd: StdFd, saved: sys::Termios, new: &sys::Termios) -> io::Result<Self> {
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
    blocking_restore: Vec<StdFd>,
    /// Dropped after `Drop::drop` has made the descriptors blocking again.
    saved: Option<SavedTermios>,
}

impl RawModeGuard {
    /// Puts fd 0 (if a terminal) into raw mode and makes `nonblocking` fds nonblocking.
    pub fn new(nonblocking: &[StdFd]) -> io::Result<Self> {
        let mut guard = RawModeGuard {
            blocking_restore: Vec::new(),
            saved: None,
        };
        if sys::isatty(StdFd::Input) {
            let saved = sys::tcgetattr(StdFd::Input)?;
            let raw = sys::make_raw(&saved);
            guard.saved = Some(SavedTermios::set(StdFd::Input, saved, &raw)?);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tty_nr_is_read_after_the_command_name() {
        let stat = "4242 (a) b (c) S 1 4242 4242 34818 4242 4194560 0 0";
        assert_eq!(parse_tty_nr(stat), Some(34818));
        assert_eq!(parse_tty_nr("1 (init) S 0 1 1 0 -1"), Some(0));
        assert_eq!(parse_tty_nr("garbage"), None);
    }

    #[test]
    fn tty_nr_decodes_to_the_devices_rdev() {
        // /dev/pts/2: major 136, minor 2.
        assert_eq!(tty_nr_to_rdev(34818), Some(libc::makedev(136, 2)));
        // A minor above 255 (/dev/pts/300) uses the high minor bits.
        let tty_nr = (300 & 0xff) | (136 << 8) | ((300 & !0xff) << 12);
        assert_eq!(tty_nr_to_rdev(tty_nr), Some(libc::makedev(136, 300)));
        assert_eq!(tty_nr_to_rdev(0), None);
    }

    #[test]
    fn only_the_controlling_terminal_is_selected() {
        let ctty = libc::makedev(136, 2);
        let other_pty = libc::makedev(136, 7);
        let ptmx = libc::makedev(5, 2);
        let ttys = [(0, ctty), (1, other_pty), (2, ptmx)];
        assert_eq!(controlling_fds(&ttys, Some(ctty)), vec![0]);
        assert_eq!(controlling_fds(&ttys, None), Vec::<i32>::new());
        let ttys = [(0, other_pty), (1, ctty), (2, ctty)];
        assert_eq!(controlling_fds(&ttys, Some(ctty)), vec![1, 2]);
    }

    #[test]
    fn a_pty_master_is_not_its_slave() {
        let pty = sys::open_pty().expect("open a pty");
        let master = sys::rdev(&pty.master).unwrap();
        let slave = sys::rdev(&pty.slave).unwrap();
        assert_ne!(master, slave);
        let ttys = [(0, master), (1, slave)];
        assert_eq!(controlling_fds(&ttys, Some(slave)), vec![1]);
    }
}
