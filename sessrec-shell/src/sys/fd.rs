//! File descriptors: pipes, flags, read/write/splice, and descriptor hygiene around fork.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::check;

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
