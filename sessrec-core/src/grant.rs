//! The grant: what pam_sessrec hands to sessrec-shell through `/run/sessrec/<session id>`.
//!
//! The PAM module (root, in sshd's monitor) writes it; a recorder may claim it only when the
//! caller's uid matches and the monitor (pid + start time) is its ancestor. `SESSREC_SESSION`
//! only names the grant. Each claim leaves `<id>.claimed` so that logout can tell whether a
//! recorder ever ran.
#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::id::SessionId;
use crate::identity::Identity;

pub const GRANT_DIR: &str = "/run/sessrec";
/// Largest grant file accepted.
const GRANT_MAX: u64 = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub session: SessionId,
    /// The unix user the login is for; a claim needs the recorder's caller to have this uid.
    pub uid: u32,
    pub identity: Identity,
    /// The config the module used; the recorder loads the same one.
    pub config_path: PathBuf,
    /// The session's directory in the record tree.
    pub session_dir: PathBuf,
    /// sshd's privileged monitor for this connection.
    pub monitor_pid: u32,
    /// Its start time (clock ticks since boot, /proc/<pid>/stat field 22).
    pub monitor_start: u64,
    /// RFC 3339 time the login was recorded.
    pub login_time: String,
    /// Ticket given at login, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
}

/// The grant store: `/run/sessrec` normally, another root-owned directory in tests.
#[derive(Debug, Clone)]
pub struct GrantDir {
    dir: PathBuf,
}

impl Default for GrantDir {
    fn default() -> Self {
        GrantDir {
            dir: PathBuf::from(GRANT_DIR),
        }
    }
}

impl GrantDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        GrantDir { dir: dir.into() }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn grant_path(&self, id: SessionId) -> PathBuf {
        self.dir.join(id.to_string())
    }

    pub fn claim_marker_path(&self, id: SessionId) -> PathBuf {
        self.dir.join(format!("{id}.claimed"))
    }

    /// Creates the directory 0700 root if missing; refuses a symlink, a non-directory, another
    /// owner or a looser mode.
    pub fn ensure(&self) -> io::Result<()> {
        match fs::DirBuilder::new().mode(0o700).create(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        self.check()
    }

    fn check(&self) -> io::Result<()> {
        let meta = fs::symlink_metadata(&self.dir)?;
        let problem = if !meta.file_type().is_dir() {
            Some("is not a directory (or is a symlink)".to_string())
        } else if meta.uid() != 0 && nix::unistd::geteuid().is_root() {
            Some(format!("is owned by uid {}, not root", meta.uid()))
        } else if meta.mode() & 0o077 != 0 {
            Some(format!(
                "has mode {:04o}, expected 0700",
                meta.mode() & 0o7777
            ))
        } else {
            None
        };
        match problem {
            Some(p) => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} {p}", self.dir.display()),
            )),
            None => Ok(()),
        }
    }

    /// Writes the grant atomically: a temporary file (0600), then rename.
    pub fn write(&self, grant: &Grant) -> io::Result<()> {
        self.ensure()?;
        let data = serde_json::to_vec(grant).map_err(io::Error::other)?;
        let tmp = self.dir.join(format!(".{}.tmp", grant.session));
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        // No fsync: a grant names a live sshd monitor and means nothing after a reboot (the
        // rename alone keeps readers from seeing a partial file).
        f.write_all(&data)?;
        drop(f);
        fs::rename(&tmp, self.grant_path(grant.session))
    }

    /// Reads the grant named `id`: a regular file (never a symlink), root-owned, 0600.
    pub fn read(&self, id: SessionId) -> io::Result<Grant> {
        self.check()?;
        let mut f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(self.grant_path(id))?;
        let meta = f.metadata()?;
        if !meta.file_type().is_file() || meta.mode() & 0o077 != 0 || meta.len() > GRANT_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "grant file has the wrong type, mode or size",
            ));
        }
        if meta.uid() != 0 && nix::unistd::geteuid().is_root() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "grant file is not owned by root",
            ));
        }
        let mut data = Vec::new();
        (&mut f).take(GRANT_MAX).read_to_end(&mut data)?;
        let grant: Grant = serde_json::from_slice(&data)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if grant.session != id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "grant names another session",
            ));
        }
        Ok(grant)
    }

    /// Leaves the claim marker for `id` (several channels may claim the same grant).
    pub fn mark_claimed(&self, id: SessionId) -> io::Result<()> {
        let f: File = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(self.claim_marker_path(id))?;
        f.set_permissions(fs::Permissions::from_mode(0o600))
    }

    pub fn was_claimed(&self, id: SessionId) -> bool {
        fs::symlink_metadata(self.claim_marker_path(id)).is_ok_and(|m| m.file_type().is_file())
    }

    /// Removes the grant and its claim marker.
    pub fn remove(&self, id: SessionId) -> io::Result<()> {
        let _ = fs::remove_file(self.claim_marker_path(id));
        match fs::remove_file(self.grant_path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The grant of `uid` whose sshd monitor (pid + start time) is an ancestor of `pid`: the
    /// connection this process runs in, found from kernel facts alone. Bounded to `limit`
    /// entries.
    pub fn find_by_ancestry(&self, uid: u32, pid: u32, limit: usize) -> io::Result<Option<Grant>> {
        for entry in fs::read_dir(&self.dir)?.take(limit) {
            let Some(id) = entry?.file_name().to_str().and_then(SessionId::parse) else {
                continue;
            };
            let Ok(grant) = self.read(id) else { continue };
            if grant.uid == uid
                && crate::sys::is_ancestor(grant.monitor_pid, grant.monitor_start, pid)
            {
                return Ok(Some(grant));
            }
        }
        Ok(None)
    }

    /// Removes grants whose sshd monitor (pid + start time) is gone; never by age. Returns the
    /// ids removed. Bounded to `limit` entries per call.
    pub fn sweep_stale(&self, limit: usize) -> io::Result<Vec<SessionId>> {
        let mut removed = Vec::new();
        for entry in fs::read_dir(&self.dir)?.take(limit) {
            let entry = entry?;
            let Some(id) = entry.file_name().to_str().and_then(SessionId::parse) else {
                continue;
            };
            let Ok(grant) = self.read(id) else { continue };
            let alive =
                crate::sys::process_start_time(grant.monitor_pid).ok() == Some(grant.monitor_start);
            if !alive {
                self.remove(id)?;
                removed.push(id);
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: SessionId, pid: u32, start: u64) -> Grant {
        Grant {
            session: id,
            uid: 1000,
            identity: Identity::unverified("srt-g", 1000),
            config_path: "/etc/sessrec/sessrec.toml".into(),
            session_dir: "/var/log/sessrec/x".into(),
            monitor_pid: pid,
            monitor_start: start,
            login_time: crate::time::Timestamp::now().to_string(),
            ticket: None,
        }
    }

    #[test]
    fn write_read_claim_sweep() {
        let base = std::env::temp_dir().join(format!("sessrec-grant-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let store = GrantDir::new(&base);
        let me = std::process::id();
        let live = sample(
            SessionId::new().unwrap(),
            me,
            crate::sys::process_start_time(me).unwrap(),
        );
        let dead = sample(SessionId::new().unwrap(), me, 1);
        store.write(&live).unwrap();
        store.write(&dead).unwrap();
        assert_eq!(store.read(live.session).unwrap(), live);
        assert_eq!(
            fs::metadata(store.grant_path(live.session)).unwrap().mode() & 0o777,
            0o600
        );
        assert!(!store.was_claimed(live.session));
        store.mark_claimed(live.session).unwrap();
        store.mark_claimed(live.session).unwrap();
        assert!(store.was_claimed(live.session));
        assert_eq!(store.sweep_stale(100).unwrap(), vec![dead.session]);
        assert!(store.read(dead.session).is_err());
        store.remove(live.session).unwrap();
        assert!(!store.was_claimed(live.session));
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn refuses_loose_dir_and_symlinked_grant() {
        let base = std::env::temp_dir().join(format!("sessrec-grant-bad-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
        let store = GrantDir::new(&base);
        assert!(store.ensure().is_err());
        fs::set_permissions(&base, fs::Permissions::from_mode(0o700)).unwrap();
        let id = SessionId::new().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", store.grant_path(id)).unwrap();
        assert!(store.read(id).is_err());
        fs::remove_dir_all(&base).unwrap();
    }
}
