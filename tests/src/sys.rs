//! The harness's only FFI: starting a child as the leader of a new session on a pty, and
//! setting a pty's window size.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// Spawns `cmd` as the leader of a new session whose controlling terminal is its stdin.
///
/// `cmd`'s stdin must already be set to the slave side of a pty.
pub fn spawn_with_controlling_tty(cmd: &mut Command) -> io::Result<Child> {
    // SAFETY: the closure runs between fork and exec in the child. It calls only setsid(2) and
    // ioctl(2), both async-signal-safe, allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Sets the window size of the terminal behind `fd` (the kernel then sends SIGWINCH to the
/// terminal's foreground process group).
pub fn set_window_size(fd: &impl AsRawFd, cols: u16, rows: u16) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `struct winsize` from the pointer, which points to a live,
    // initialised value for the duration of the call; the fd is borrowed and stays open.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCSWINSZ,
            &size as *const libc::winsize,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
