//! Terminals and ptys: attributes, window size, the controlling terminal, pty allocation.

use std::ffi::{CStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::sys::termios;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use super::check;
use super::process::Pid;
use super::signal::Signal;

pub type Termios = libc::termios;
pub type Winsize = libc::winsize;

pub fn isatty(fd: impl AsFd) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd.as_fd().as_raw_fd()) == 1 }
}

pub fn tcgetattr(fd: impl AsFd) -> io::Result<Termios> {
    Ok(termios::tcgetattr(fd)?.into())
}

/// Applies `t` once pending output is written (TCSADRAIN).
pub fn tcsetattr(fd: impl AsFd, t: &Termios) -> io::Result<()> {
    termios::tcsetattr(fd, termios::SetArg::TCSADRAIN, &termios::Termios::from(*t))?;
    Ok(())
}

/// `t` in raw mode, reads returning after one byte.
pub fn make_raw(t: &Termios) -> Termios {
    let mut raw = termios::Termios::from(*t);
    termios::cfmakeraw(&mut raw);
    let mut raw = Termios::from(raw);
    raw.c_cc[libc::VMIN] = 1;
    raw.c_cc[libc::VTIME] = 0;
    raw
}

pub fn get_winsize(fd: impl AsFd) -> io::Result<Winsize> {
    // SAFETY: winsize is plain data.
    let mut ws: Winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize.
    check(unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) })?;
    Ok(ws)
}

pub fn set_winsize(fd: impl AsFd, ws: &Winsize) -> io::Result<()> {
    // SAFETY: TIOCSWINSZ reads a winsize.
    check(unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCSWINSZ, ws) })?;
    Ok(())
}

/// Makes `fd` the controlling terminal of the calling session leader. Async-signal-safe.
pub fn set_controlling_tty(fd: impl AsFd) -> io::Result<()> {
    // SAFETY: TIOCSCTTY with argument 0 (do not steal).
    check(unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCSCTTY, 0) })?;
    Ok(())
}

/// Sends `sig` to the foreground process group of the pty whose master is `master`.
pub fn pty_signal(master: impl AsFd, sig: Signal) -> io::Result<()> {
    // SAFETY: TIOCSIG takes the signal number as its argument.
    check(unsafe {
        libc::ioctl(
            master.as_fd().as_raw_fd(),
            libc::TIOCSIG,
            sig as libc::c_int as libc::c_ulong,
        )
    })?;
    Ok(())
}

/// The caller's session id.
pub fn getsid() -> Pid {
    // getsid(0) asks for the caller's own session, which always exists.
    nix::unistd::getsid(None).unwrap_or_else(|_| Pid::from_raw(0))
}

/// The session whose controlling terminal is on `fd`.
pub fn tcgetsid(fd: impl AsFd) -> io::Result<Pid> {
    Ok(termios::tcgetsid(fd)?)
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

/// The device number of the terminal on `fd`.
pub fn rdev(fd: impl AsFd) -> io::Result<u64> {
    Ok(nix::sys::stat::fstat(fd.as_fd().as_raw_fd())?.st_rdev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pty_is_a_terminal_and_a_pipe_is_not() {
        let pty = open_pty().unwrap();
        assert!(isatty(&pty.slave) && isatty(&pty.master));
        let (r, _w) = super::super::pipe().unwrap();
        assert!(!isatty(&r));
        assert!(tcgetattr(&r).is_err());
    }

    #[test]
    fn settings_and_size_round_trip_through_the_typed_calls() {
        let pty = open_pty().unwrap();
        let cooked = tcgetattr(&pty.slave).unwrap();
        assert_ne!(cooked.c_lflag & libc::ICANON, 0);
        let raw = make_raw(&cooked);
        assert_eq!(raw.c_lflag & (libc::ICANON | libc::ECHO), 0);
        assert_eq!((raw.c_cc[libc::VMIN], raw.c_cc[libc::VTIME]), (1, 0));
        tcsetattr(&pty.slave, &raw).unwrap();
        assert_eq!(tcgetattr(&pty.slave).unwrap().c_lflag & libc::ICANON, 0);
        let ws = Winsize {
            ws_row: 50,
            ws_col: 200,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        set_winsize(&pty.master, &ws).unwrap();
        let got = get_winsize(&pty.slave).unwrap();
        assert_eq!((got.ws_row, got.ws_col), (50, 200));
    }

    #[test]
    fn master_and_slave_are_different_devices() {
        let pty = open_pty().unwrap();
        assert!(pty.path.starts_with("/dev/pts/"));
        assert_ne!(rdev(&pty.master).unwrap(), rdev(&pty.slave).unwrap());
    }
}
