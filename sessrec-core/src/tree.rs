//! The root-only record tree: `<record_dir>/YYYY/MM/DD/<session id>/`, each directory created
//! without following symlinks, 0700 root (or 0750 root:<read_group>).
#![forbid(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::id::SessionId;
use crate::sys;
use crate::time::Timestamp;

/// An open session directory; files are created relative to its descriptor, so a rename or
/// symlink swap of the path cannot redirect them.
#[derive(Debug)]
pub struct SessionDir {
    fd: OwnedFd,
    path: PathBuf,
    read_gid: Option<u32>,
}

/// `YYYY/MM/DD/<id>`, the date taken from the id's own timestamp (UTC).
pub fn session_relative_path(id: SessionId) -> PathBuf {
    let (y, m, d) = Timestamp::from_micros(id.unix_millis() as i64 * 1000).date();
    PathBuf::from(format!("{y:04}/{m:02}/{d:02}/{id}"))
}

/// Free space, in MiB, available to unprivileged writers on the filesystem holding `path`.
pub fn free_mb(path: &Path) -> io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    Ok(st.blocks_available() as u64 * st.fragment_size() as u64 / (1024 * 1024))
}

impl SessionDir {
    /// Creates (or opens) the session directory for `id`, creating `record_dir` and the date
    /// directories as needed.
    pub fn create(
        record_dir: &Path,
        id: SessionId,
        read_gid: Option<u32>,
    ) -> io::Result<SessionDir> {
        SessionDir::create_relative(record_dir, &session_relative_path(id), read_gid)
    }

    /// Creates (or opens) `record_dir/<relative>` component by component.
    pub fn create_relative(
        record_dir: &Path,
        relative: &Path,
        read_gid: Option<u32>,
    ) -> io::Result<SessionDir> {
        let mode = if read_gid.is_some() { 0o750 } else { 0o700 };
        if let Some(parent) = record_dir.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let root_fd = sys::open_dir_at(None, record_dir.parent().unwrap_or(Path::new("/")))?;
        let base = record_dir.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "record_dir has no final component",
            )
        })?;
        let base = base.to_str().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "record_dir is not UTF-8")
        })?;
        sys::mkdir_at(root_fd.as_fd(), base, mode)?;
        let mut fd = sys::open_dir_at(Some(root_fd.as_fd()), Path::new(base))?;
        fix_dir(&fd, mode, read_gid)?;
        for part in relative.components() {
            let name = part
                .as_os_str()
                .to_str()
                .filter(|n| !n.is_empty() && *n != "." && *n != ".." && !n.contains('/'))
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "bad session path component")
                })?;
            sys::mkdir_at(fd.as_fd(), name, mode)?;
            let next = sys::open_dir_at(Some(fd.as_fd()), Path::new(name))?;
            fix_dir(&next, mode, read_gid)?;
            fd = next;
        }
        Ok(SessionDir {
            fd,
            path: record_dir.join(relative),
            read_gid,
        })
    }

    /// Opens an existing session directory (no creation).
    pub fn open(record_dir: &Path, id: SessionId) -> io::Result<SessionDir> {
        let path = record_dir.join(session_relative_path(id));
        let fd = sys::open_dir_at(None, &path)?;
        Ok(SessionDir {
            fd,
            path,
            read_gid: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates a new record file for appending (fails if it exists).
    pub fn create_file(&self, name: &str) -> io::Result<File> {
        check_file_name(name)?;
        let mode = if self.read_gid.is_some() {
            0o640
        } else {
            0o600
        };
        let file = sys::create_append_at(self.fd.as_fd(), name, mode, false)?;
        self.fix_file(&file, mode)?;
        Ok(file)
    }

    /// Opens a file that several channels of the session append to (a destination's PCAP
    /// file), creating it when it is not there yet; readable, so that its writer can hash it.
    pub fn open_shared_file(&self, name: &str) -> io::Result<File> {
        check_file_name(name)?;
        let mode = if self.read_gid.is_some() {
            0o640
        } else {
            0o600
        };
        match sys::create_append_at(self.fd.as_fd(), name, mode, true) {
            Ok(file) => {
                self.fix_file(&file, mode)?;
                Ok(file)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                sys::open_append_at(self.fd.as_fd(), name)
            }
            Err(e) => Err(e),
        }
    }

    /// Opens an existing record file for reading and appending (to resume it).
    pub fn open_file(&self, name: &str) -> io::Result<File> {
        check_file_name(name)?;
        sys::open_append_at(self.fd.as_fd(), name)
    }

    /// Creates the next free `channel-N.jsonl`, N = 1, 2, ...
    pub fn create_channel_file(&self) -> io::Result<(u32, File)> {
        for n in 1..=100_000u32 {
            match self.create_file(&format!("channel-{n}.jsonl")) {
                Ok(file) => return Ok((n, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("too many channels in one session"))
    }

    fn fix_file(&self, file: &File, mode: u32) -> io::Result<()> {
        if let Some(gid) = self.read_gid {
            std::os::unix::fs::fchown(file, None, Some(gid))?;
        }
        file.set_permissions(std::fs::Permissions::from_mode(mode))
    }
}

fn check_file_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad record file name {name:?}"),
        ));
    }
    Ok(())
}

/// Sets a tree directory's owner (root, or root:read_gid) and mode, whatever the umask was.
fn fix_dir(fd: &OwnedFd, mode: u32, read_gid: Option<u32>) -> io::Result<()> {
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::fchown(fd, Some(0), Some(read_gid.unwrap_or(0)))?;
    }
    nix::sys::stat::fchmod(
        fd.as_raw_fd(),
        nix::sys::stat::Mode::from_bits_truncate(mode),
    )
    .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn creates_dated_tree_and_channels() {
        let base = std::env::temp_dir().join(format!("sessrec-tree-{}", std::process::id()));
        let record_dir = base.join("rec");
        let id = SessionId::new().unwrap();
        let dir = SessionDir::create(&record_dir, id, None).unwrap();
        assert!(dir.path().ends_with(session_relative_path(id)));
        assert_eq!(std::fs::metadata(dir.path()).unwrap().mode() & 0o777, 0o700);
        assert_eq!(
            std::fs::metadata(&record_dir).unwrap().mode() & 0o777,
            0o700
        );
        let (n1, _) = dir.create_channel_file().unwrap();
        let (n2, f2) = dir.create_channel_file().unwrap();
        assert_eq!((n1, n2), (1, 2));
        assert_eq!(f2.metadata().unwrap().mode() & 0o777, 0o600);
        assert!(dir.create_file("session.jsonl").is_ok());
        assert_eq!(
            dir.create_file("session.jsonl").unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert!(dir.create_file("../x").is_err());
        // Same session again opens the same directory.
        let again = SessionDir::create(&record_dir, id, None).unwrap();
        assert_eq!(again.create_channel_file().unwrap().0, 3);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn refuses_symlinked_components() {
        let base = std::env::temp_dir().join(format!("sessrec-tree-link-{}", std::process::id()));
        let record_dir = base.join("rec");
        std::fs::create_dir_all(&record_dir).unwrap();
        let elsewhere = base.join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        let id = SessionId::new().unwrap();
        let rel = session_relative_path(id);
        let year = rel.components().next().unwrap().as_os_str().to_owned();
        std::os::unix::fs::symlink(&elsewhere, record_dir.join(&year)).unwrap();
        assert!(SessionDir::create(&record_dir, id, None).is_err());
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
