//! Opening files an importer reads as root (sudo's logs, auditd's logs, the record tree):
//! regular files only, never through a symlink, never one a non-root user could have written.
#![forbid(unsafe_code)]

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Whether `meta` is as sudo itself leaves its I/O logs: owned by root (or by the importer's
/// own user, for tests run without root) and writable by no group or other. Anything else could
/// have been planted or altered by a user and is refused, with why.
pub fn check_trusted(path: &Path, meta: &Metadata) -> io::Result<()> {
    let owner_ok = meta.uid() == 0 || meta.uid() == nix::unistd::geteuid().as_raw();
    let why = if !owner_ok {
        format!("is owned by uid {}, not root", meta.uid())
    } else if meta.mode() & 0o022 != 0 {
        format!(
            "is writable by its group or others (mode {:04o})",
            meta.mode() & 0o7777
        )
    } else {
        return Ok(());
    };
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("refused: {} {why}", path.display()),
    ))
}

/// Opens a regular file without following a symlink in its last component and without blocking
/// on a FIFO; anything but a regular file, or a file a user could have written, is an error
/// naming what it is.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is a symlink", path.display()),
                )
            } else {
                io::Error::new(e.kind(), format!("{}: {e}", path.display()))
            }
        })?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    check_trusted(path, &meta)?;
    Ok(file)
}
