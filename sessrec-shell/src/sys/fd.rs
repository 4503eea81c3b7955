//! File descriptors: pipes, flags, read/write/splice, and descriptor hygiene around fork.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

use super::check;

/// One of the three standard descriptors. They stay open for the recorder's whole life:
/// start-up puts /dev/null on any the caller left closed, and afterwards they are only ever
/// replaced ([`redirect_std_fd`]), never closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdFd {
    Input = 0,
    Output = 1,
    Error = 2,
}

impl StdFd {
    pub const ALL: [StdFd; 3] = [StdFd::Input, StdFd::Output, StdFd::Error];

    /// The standard descriptor with number `fd`, if it is one.
    pub fn from_raw(fd: RawFd) -> Option<StdFd> {
        StdFd::ALL.into_iter().find(|s| s.raw() == fd)
    }

    pub fn raw(self) -> RawFd {
        self as RawFd
    }

    pub fn fd(self) -> BorrowedFd<'static> {
        // SAFETY: the standard descriptors are open for the life of the process (see above).
        unsafe { BorrowedFd::borrow_raw(self.raw()) }
    }
}

impl AsFd for StdFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd()
    }
}

pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}

pub fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    set_status_flag(fd, OFlag::O_NONBLOCK, true)
}

pub fn set_blocking(fd: impl AsFd) -> io::Result<()> {
    set_status_flag(fd, OFlag::O_NONBLOCK, false)
}

fn set_status_flag(fd: impl AsFd, flag: OFlag, on: bool) -> io::Result<()> {
    let fd = fd.as_fd().as_raw_fd();
    let mut flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    flags.set(flag, on);
    fcntl(fd, FcntlArg::F_SETFL(flags))?;
    Ok(())
}

/// Asks for a pipe buffer of `size` bytes (fails harmlessly on a descriptor that is not a pipe,
/// or past /proc/sys/fs/pipe-max-size).
pub fn grow_pipe(fd: impl AsFd, size: usize) -> io::Result<()> {
    let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    fcntl(fd.as_fd().as_raw_fd(), FcntlArg::F_SETPIPE_SZ(size))?;
    Ok(())
}

/// Whether the standard descriptor is open (the caller may have closed it).
pub fn is_open(fd: StdFd) -> bool {
    fcntl(fd.raw(), FcntlArg::F_GETFD).is_ok()
}

/// read(2). Async-signal-safe.
pub fn read(fd: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for writes of its length.
    let n = unsafe { libc::read(fd.as_fd().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// splice(2): moves up to `len` bytes from the pipe `from` to `to` inside the kernel, without
/// blocking on the pipe side. `Ok(0)`: end of input.
pub fn splice(from: impl AsFd, to: impl AsFd, len: usize) -> io::Result<usize> {
    // SAFETY: null offsets (both ends are read and written at their current position); splice
    // only moves data between the two descriptors and touches no memory of this process.
    let n = unsafe {
        libc::splice(
            from.as_fd().as_raw_fd(),
            std::ptr::null_mut(),
            to.as_fd().as_raw_fd(),
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

/// write(2). Async-signal-safe.
pub fn write(fd: impl AsFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for reads of its length.
    let n = unsafe { libc::write(fd.as_fd().as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// dup2(2) of `fd` onto a standard descriptor. Async-signal-safe.
pub fn redirect_std_fd(target: StdFd, fd: impl AsFd) -> io::Result<()> {
    // SAFETY: dup2 replaces `target` atomically; a standard descriptor is never owned by an
    // `OwnedFd`, so no owner sees its descriptor change.
    check(unsafe { libc::dup2(fd.as_fd().as_raw_fd(), target.raw()) })?;
    Ok(())
}

pub fn fchown(fd: impl AsFd, uid: Uid, gid: Gid) -> io::Result<()> {
    nix::unistd::fchown(fd.as_fd().as_raw_fd(), Some(uid), Some(gid))?;
    Ok(())
}

/// Sets the permission bits of `fd` (e.g. 0o600).
pub fn fchmod(fd: impl AsFd, mode: libc::mode_t) -> io::Result<()> {
    nix::sys::stat::fchmod(fd.as_fd().as_raw_fd(), Mode::from_bits_truncate(mode))?;
    Ok(())
}

/// Closes every descriptor below `limit` that is not in `keep`. Async-signal-safe.
///
/// # Safety
///
/// No `OwnedFd` or `BorrowedFd` for a closed descriptor may be used or dropped afterwards: the
/// caller is a forked child that only execs or `_exit`s next, or a process that owns none yet.
pub unsafe fn close_all_except(keep: &[RawFd], limit: RawFd) {
    for fd in 0..limit {
        if !keep.contains(&fd) {
            // SAFETY: nothing uses the closed descriptors again (the caller's obligation).
            unsafe { libc::close(fd) };
        }
    }
}

/// Opens /dev/null read-write and puts it on `target`, which the caller left closed.
pub fn open_dev_null_at(target: StdFd) -> io::Result<()> {
    // SAFETY: constant path; flags only.
    let opened = check(unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) })?;
    // SAFETY: a fresh descriptor nothing else owns.
    let opened = unsafe { OwnedFd::from_raw_fd(opened) };
    if opened.as_raw_fd() == target.raw() {
        // The lowest free number was the closed one: it stays open as the standard descriptor.
        let _ = opened.into_raw_fd();
        return Ok(());
    }
    redirect_std_fd(target, &opened)
}

/// Closes every inherited descriptor above 2.
///
/// # Safety
///
/// Must run before the process opens anything itself: no `OwnedFd` above 2 may exist.
pub unsafe fn close_inherited_descriptors() {
    // SAFETY: close_range(3, ~0, 0) only closes descriptors, and none above 2 is owned (the
    // caller's obligation).
    let ret = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if ret != 0 {
        // SAFETY: as above.
        unsafe { close_all_except(&[0, 1, 2], 65536) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_fd_numbers_round_trip() {
        for fd in StdFd::ALL {
            assert_eq!(StdFd::from_raw(fd.raw()), Some(fd));
            assert_eq!(fd.fd().as_raw_fd(), fd.raw());
        }
        assert_eq!(StdFd::from_raw(3), None);
    }

    #[test]
    fn blocking_mode_is_switched_both_ways() {
        let (r, _w) = pipe().unwrap();
        set_nonblocking(&r).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(
            read(&r, &mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        set_blocking(&r).unwrap();
        let flags = fcntl(r.as_raw_fd(), FcntlArg::F_GETFL).unwrap();
        assert_eq!(flags & libc::O_NONBLOCK, 0);
    }

    #[test]
    fn a_pipe_grows_and_a_file_does_not() {
        let (r, _w) = pipe().unwrap();
        grow_pipe(&r, 1 << 20).unwrap();
        let size = fcntl(r.as_raw_fd(), FcntlArg::F_GETPIPE_SZ).unwrap();
        assert!(size >= 1 << 20, "{size}");
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert!(grow_pipe(&file, 1 << 20).is_err());
    }

    #[test]
    fn ownership_and_mode_are_set_through_the_descriptor() {
        let dir = sessrec_core::testing::TempDir::new("sys-fchown");
        let path = dir.path().join("f");
        let file = std::fs::File::create(&path).unwrap();
        fchmod(&file, 0o640).unwrap();
        // Giving a file to its own owner needs no privilege.
        fchown(&file, nix::unistd::geteuid(), nix::unistd::getegid()).unwrap();
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o640);
        assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
    }

    #[test]
    fn the_standard_descriptors_of_a_test_are_open() {
        assert!(StdFd::ALL.into_iter().all(is_open));
    }

    #[test]
    fn pipe_carries_bytes_and_closes_on_drop() {
        let (read_end, write_end) = pipe().unwrap();
        assert_eq!(write(&write_end, b"abc").unwrap(), 3);
        drop(write_end);
        let mut buf = [0u8; 8];
        assert_eq!(read(&read_end, &mut buf).unwrap(), 3);
        assert_eq!(read(&read_end, &mut buf).unwrap(), 0);
    }
}
