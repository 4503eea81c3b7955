//! Which login session a channel belongs to: a PAM grant claimed (identity, config and session
//! directory come from it), or, without a valid grant, a session of the recorder's own whose
//! identity is marked unverified.
//!
//! Facts decide, not the environment the user controls: the grant whose sshd monitor is an
//! ancestor of this process, and, for a recorder started inside a recorded channel (tmux,
//! `sudo -s`, `su -`), the channel file held open by the nearest ancestor recorder.
//! `SESSREC_SESSION` and `SESSREC_CHANNEL` only name where to look first.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use sessrec_core::config::{Config, ConfigError, DEFAULT_CONFIG_PATH};
use sessrec_core::grant::{Grant, GrantDir};
use sessrec_core::id::SessionId;
use sessrec_core::identity::Identity;
use sessrec_core::schema::{ConnectionHint, Login};

use crate::startup::Caller;

/// Why a grant named by `SESSREC_SESSION` was not claimed (recorded, never fatal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unclaimed {
    NotNamed,
    BadName,
    Unreadable(String),
    OtherUser {
        grant_uid: u32,
    },
    NotAncestor,
    /// The named grant is not the session of the recorded channel this runs inside.
    NotEnclosing,
}

impl fmt::Display for Unclaimed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unclaimed::NotNamed => write!(f, "no SESSREC_SESSION in the environment"),
            Unclaimed::BadName => write!(f, "SESSREC_SESSION is not a session id"),
            Unclaimed::Unreadable(e) => write!(f, "grant unreadable: {e}"),
            Unclaimed::OtherUser { grant_uid } => {
                write!(f, "grant belongs to uid {grant_uid}, not the caller")
            }
            Unclaimed::NotAncestor => write!(
                f,
                "the grant's sshd monitor is not an ancestor of this process (another connection)"
            ),
            Unclaimed::NotEnclosing => write!(
                f,
                "SESSREC_SESSION names another session than the recorded channel this runs in"
            ),
        }
    }
}

/// Most grants looked at when the environment does not name the right one.
const GRANT_SCAN_LIMIT: usize = 16 * 1024;
/// Most ancestors looked at for an enclosing recorder.
const ANCESTRY_LIMIT: usize = 256;

/// The recorded channel this process runs inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enclosing {
    pub session: SessionId,
    pub channel: u32,
}

impl fmt::Display for Enclosing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.session, self.channel)
    }
}

/// The channel of the nearest ancestor that is this same recorder program (same file) and
/// holds a `<session id>/channel-N.jsonl` open. Needs root (the ancestor is not dumpable).
pub fn enclosing_channel(own_exe: &Path) -> Option<Enclosing> {
    use std::os::unix::fs::MetadataExt;
    let own = std::fs::metadata(own_exe).ok()?;
    let mut pid = std::process::id();
    for _ in 0..ANCESTRY_LIMIT {
        pid = sessrec_core::sys::parent_pid(pid).ok()?;
        if pid <= 1 {
            return None;
        }
        let Ok(exe) = std::fs::metadata(format!("/proc/{pid}/exe")) else {
            continue;
        };
        if (exe.dev(), exe.ino()) != (own.dev(), own.ino()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Some(found) = std::fs::read_link(fd.path())
                .ok()
                .and_then(|target| channel_of_record_path(&target))
            {
                return Some(found);
            }
        }
    }
    None
}

/// `…/<session id>/channel-N.jsonl` → (session, N).
fn channel_of_record_path(path: &Path) -> Option<Enclosing> {
    let channel = path
        .file_name()?
        .to_str()?
        .strip_prefix("channel-")?
        .strip_suffix(".jsonl")?
        .parse()
        .ok()?;
    let session = SessionId::parse(path.parent()?.file_name()?.to_str()?)?;
    Some(Enclosing { session, channel })
}

/// Claims the grant of the connection this process runs in: the one `SESSREC_SESSION` names
/// when it checks out (same uid, its sshd monitor an ancestor, the enclosing channel's session
/// if there is one), else the one found by ancestry. The error says why the named one failed.
pub fn claim_grant(
    store: &GrantDir,
    named: Option<&OsString>,
    caller: &Caller,
    enclosing: Option<Enclosing>,
) -> Result<Grant, Unclaimed> {
    let named_failure = match claim_named_grant(store, named, caller) {
        Ok(grant) if enclosing.is_none_or(|e| e.session == grant.session) => {
            // The marker lets logout tell that a recorder ran; failing to leave it is not fatal.
            let _ = store.mark_claimed(grant.session);
            return Ok(grant);
        }
        Ok(_) => Unclaimed::NotEnclosing,
        Err(why) => why,
    };
    let me = std::process::id();
    let found = match enclosing {
        Some(e) => store.read(e.session).ok().filter(|g| {
            g.uid == caller.uid.as_raw()
                && sessrec_core::sys::is_ancestor(g.monitor_pid, g.monitor_start, me)
        }),
        None => store
            .find_by_ancestry(caller.uid.as_raw(), me, GRANT_SCAN_LIMIT)
            .ok()
            .flatten(),
    };
    match found {
        Some(grant) => {
            let _ = store.mark_claimed(grant.session);
            Ok(grant)
        }
        None => Err(named_failure),
    }
}

fn claim_named_grant(
    store: &GrantDir,
    named: Option<&OsString>,
    caller: &Caller,
) -> Result<Grant, Unclaimed> {
    let named = named.ok_or(Unclaimed::NotNamed)?;
    let id = named
        .to_str()
        .and_then(SessionId::parse)
        .ok_or(Unclaimed::BadName)?;
    let grant = store
        .read(id)
        .map_err(|e| Unclaimed::Unreadable(e.to_string()))?;
    if grant.uid != caller.uid.as_raw() {
        return Err(Unclaimed::OtherUser {
            grant_uid: grant.uid,
        });
    }
    if !sessrec_core::sys::is_ancestor(grant.monitor_pid, grant.monitor_start, std::process::id()) {
        return Err(Unclaimed::NotAncestor);
    }
    Ok(grant)
}

/// Where the config comes from when no grant names one.
pub fn unclaimed_config_path(caller: &Caller, sessrec_config: Option<&OsString>) -> PathBuf {
    match sessrec_config {
        Some(path) if caller.is_root() && !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(DEFAULT_CONFIG_PATH),
    }
}

/// Loads the config: trusted (root-owned, not group/world-writable, no symlink) unless root
/// itself named it with `SESSREC_CONFIG`.
pub fn load_config(path: &Path, named_by_root: bool) -> Result<Config, ConfigError> {
    if named_by_root {
        Config::load(path)
    } else {
        Config::load_trusted(path)
    }
}

/// The `login` line of a session the recorder starts itself.
pub fn own_login(
    identity: &Identity,
    reason: &Unclaimed,
    ssh_connection: Option<&OsString>,
) -> Login {
    let mut login = Login {
        verified: Some(false),
        established_by: Some("sessrec-shell".into()),
        unverified_reason: Some(reason.to_string()),
        ..identity.to_login()
    };
    if let Some(conn) = ssh_connection.and_then(|c| c.to_str()) {
        // From the environment: a hint, not proof.
        let parts: Vec<&str> = conn.split_ascii_whitespace().collect();
        if let [src_ip, src_port, dst_ip, dst_port] = parts[..] {
            login.ssh_connection_hint = Some(ConnectionHint {
                src_ip: Some(src_ip.chars().take(64).collect()),
                src_port: src_port.parse::<u16>().ok(),
                dst_ip: Some(dst_ip.chars().take(64).collect()),
                dst_port: dst_port.parse::<u16>().ok(),
                ..Default::default()
            });
        }
    }
    login
}
