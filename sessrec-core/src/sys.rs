//! The few OS calls the shared code needs that std and nix do not offer safely.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Fills `buf` from the kernel CSPRNG (blocking until it is seeded).
pub fn getrandom(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe the writable tail of `buf`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        filled += n as usize;
    }
    Ok(())
}

/// Reserves disk blocks for `[offset, offset + len)` without changing the file size, so later
/// appends into that range cannot fail with ENOSPC.
pub fn fallocate_keep_size(file: &impl AsRawFd, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: fallocate only reads its integer arguments; an invalid fd yields EBADF.
    let rc = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_KEEP_SIZE,
            offset as libc::off_t,
            len as libc::off_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn check_fd(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by a successful open call and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens a directory without following a symlink in its last component; relative to `dir`
/// when given.
pub fn open_dir_at(dir: Option<BorrowedFd<'_>>, path: &Path) -> io::Result<OwnedFd> {
    let name = c_path(path)?;
    let at = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `name` is NUL-terminated and outlives the call; `at` is AT_FDCWD or a live fd.
    check_fd(unsafe { libc::openat(at, name.as_ptr(), flags) })
}

/// Creates directory `name` in `dir` with `mode`; an existing entry is not an error (the caller
/// opens it with [`open_dir_at`], which refuses symlinks).
pub fn mkdir_at(dir: BorrowedFd<'_>, name: &str, mode: u32) -> io::Result<()> {
    let name = c_path(Path::new(name))?;
    // SAFETY: `name` is NUL-terminated and outlives the call; `dir` is a live fd.
    let rc = unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EEXIST) {
        Ok(())
    } else {
        Err(err)
    }
}

/// Creates a new file `name` in `dir` for appending: `O_CREAT|O_EXCL|O_NOFOLLOW|O_APPEND|O_CLOEXEC`.
pub fn create_append_at(
    dir: BorrowedFd<'_>,
    name: &str,
    mode: u32,
    readable: bool,
) -> io::Result<File> {
    let cname = c_path(Path::new(name))?;
    let access = if readable {
        libc::O_RDWR
    } else {
        libc::O_WRONLY
    };
    let flags =
        access | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_APPEND | libc::O_CLOEXEC;
    // SAFETY: `cname` is NUL-terminated and outlives the call; `dir` is a live fd.
    let fd = check_fd(unsafe {
        libc::openat(dir.as_raw_fd(), cname.as_ptr(), flags, mode as libc::c_uint)
    })?;
    Ok(File::from(fd))
}

/// Opens an existing regular file in `dir` for reading and appending, refusing symlinks.
pub fn open_append_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<File> {
    let cname = c_path(Path::new(name))?;
    let flags = libc::O_RDWR | libc::O_APPEND | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `cname` is NUL-terminated and outlives the call; `dir` is a live fd.
    let fd = check_fd(unsafe { libc::openat(dir.as_raw_fd(), cname.as_ptr(), flags) })?;
    Ok(File::from(fd))
}

/// Opens an existing regular file in `dir` for reading, refusing symlinks.
pub fn open_read_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<File> {
    let cname = c_path(Path::new(name))?;
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: `cname` is NUL-terminated and outlives the call; `dir` is a live fd.
    let fd = check_fd(unsafe { libc::openat(dir.as_raw_fd(), cname.as_ptr(), flags) })?;
    Ok(File::from(fd))
}

/// Syslog priority for [`syslog_authpriv`].
#[derive(Clone, Copy, Debug)]
pub enum Level {
    Alert,
    Error,
    Warning,
    Notice,
    Info,
}

/// Sends one message to syslog's authpriv facility. The program's `main` calls
/// [`open_syslog`] once; the PAM module must not (it would change sshd's ident) and uses
/// `pam_syslog` instead.
pub fn syslog_authpriv(level: Level, msg: &str) {
    let prio = match level {
        Level::Alert => libc::LOG_ALERT,
        Level::Error => libc::LOG_ERR,
        Level::Warning => libc::LOG_WARNING,
        Level::Notice => libc::LOG_NOTICE,
        Level::Info => libc::LOG_INFO,
    };
    let text = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    // SAFETY: the format string is a constant "%s" and `text` is a valid NUL-terminated string.
    unsafe { libc::syslog(libc::LOG_AUTHPRIV | prio, c"%s".as_ptr(), text.as_ptr()) };
}

/// Opens syslog with a static ident, the pid, and the authpriv facility. For programs only.
pub fn open_syslog(ident: &'static CStr) {
    // SAFETY: `ident` is 'static, as openlog keeps the pointer.
    unsafe {
        libc::openlog(
            ident.as_ptr(),
            libc::LOG_PID | libc::LOG_NDELAY,
            libc::LOG_AUTHPRIV,
        )
    };
}

/// Whether a syslog daemon accepts messages on `path` (`/dev/log`): datagram, as glibc tries
/// first, else stream. A socket file alone proves nothing: one left by a daemon that is gone
/// fails with ECONNREFUSED, and glibc's syslog(3) then drops every message without an error.
pub fn syslog_socket_reachable(path: &Path) -> io::Result<()> {
    use std::os::unix::net::{UnixDatagram, UnixStream};
    match UnixDatagram::unbound().and_then(|s| s.connect(path)) {
        Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => UnixStream::connect(path).map(drop),
        other => other,
    }
}

/// The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), which
/// together with the pid identifies a process across pid reuse.
pub fn process_start_time(pid: u32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat_field(&stat, 22)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unparsable /proc stat"))
}

/// The parent pid (field 4 of /proc/<pid>/stat).
pub fn parent_pid(pid: u32) -> io::Result<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat_field(&stat, 4)
        .map(|p| p as u32)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unparsable /proc stat"))
}

/// Numeric field `n` (1-based, as in proc(5)) of a /proc/<pid>/stat line. The command name in
/// field 2 may contain spaces and parentheses, so counting starts after its last `)`.
fn parse_stat_field(stat: &str, n: usize) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    after
        .split_ascii_whitespace()
        .nth(n.checked_sub(3)?)?
        .parse()
        .ok()
}

/// Whether process `ancestor` (pid + start time) is `pid` itself or one of its ancestors.
pub fn is_ancestor(ancestor_pid: u32, ancestor_start: u64, pid: u32) -> bool {
    let mut current = pid;
    for _ in 0..4096 {
        if current == ancestor_pid {
            return process_start_time(current).ok() == Some(ancestor_start);
        }
        if current <= 1 {
            return false;
        }
        match parent_pid(current) {
            Ok(parent) => current = parent,
            Err(_) => return false,
        }
    }
    false
}

/// The kernel's audit identity of this process: its audit session id (`ses`) and login uid,
/// as `pam_loginuid` set them for the login; `None` for each that is unset (the kernel shows
/// unset as 4294967295) or unreadable.
pub fn audit_identity() -> (Option<u32>, Option<u32>) {
    let read = |file: &str| {
        std::fs::read_to_string(file)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
            .filter(|v| *v != u32::MAX)
    };
    (read("/proc/self/sessionid"), read("/proc/self/loginuid"))
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`).
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|t| t.trim().chars().take(64).collect())
}

/// The local time zone's offset from UTC, in seconds, at `unix_secs`: from the C library's
/// `localtime_r`, which follows `TZ` and `/etc/localtime`. `None` when it cannot tell.
pub fn local_utc_offset(unix_secs: i64) -> Option<i64> {
    let t = libc::time_t::try_from(unix_secs).ok()?;
    let mut tm = std::mem::MaybeUninit::<libc::tm>::zeroed();
    // SAFETY: `t` and `tm` are valid for the call; localtime_r writes only into `tm`.
    let filled = unsafe { libc::localtime_r(&t, tm.as_mut_ptr()) };
    if filled.is_null() {
        return None;
    }
    // SAFETY: localtime_r returned non-null, so it filled `tm` (which started zeroed).
    let tm = unsafe { tm.assume_init() };
    Some(tm.tm_gmtoff)
}

/// The size (columns, rows) of the terminal on `fd`, when it is one.
pub fn terminal_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into `ws`, which outlives the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
}

/// The host name as the kernel reports it.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_survive_odd_command_names() {
        let stat =
            "1234 (a) b (c)) S 77 1234 1234 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 98765 1000 2";
        assert_eq!(parse_stat_field(stat, 4), Some(77));
        assert_eq!(parse_stat_field(stat, 22), Some(98765));
    }

    #[test]
    fn self_is_ancestor_of_self() {
        let me = std::process::id();
        let start = process_start_time(me).unwrap();
        assert!(is_ancestor(me, start, me));
        assert!(!is_ancestor(me, start + 1, me));
        let parent = parent_pid(me).unwrap();
        assert!(!is_ancestor(me, start, parent));
    }

    #[test]
    fn random_is_random() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        getrandom(&mut a).unwrap();
        getrandom(&mut b).unwrap();
        assert_ne!(a, b);
    }
}
