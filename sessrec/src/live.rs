//! Is a session still being recorded on this host? Answers from the grant in `/run/sessrec`
//! and from the recorder process named in `channel.start`.
#![forbid(unsafe_code)]

use std::path::Path;

use serde_json::{Map, Value};
use sessrec_core::grant::GRANT_DIR;
use sessrec_core::sys::process_start_time;

/// The recorder's pid and, when recorded, its start time (clock ticks since boot) from a
/// `channel.start` line.
pub fn recorder_identity(start: &Map<String, Value>) -> Option<(u32, Option<u64>)> {
    let pid = start.get("recorder_pid").and_then(Value::as_u64)?;
    let pid = u32::try_from(pid).ok().filter(|&p| p > 1)?;
    let started = start.get("recorder_start").and_then(Value::as_u64);
    Some((pid, started))
}

/// Whether the recorder of this channel runs on this host now. A pid alone could have been
/// reused, so the start time must match when recorded, and the process must be a
/// `sessrec-shell` otherwise.
pub fn recorder_alive(start: &Map<String, Value>, this_host: &str) -> bool {
    if start.get("host").and_then(Value::as_str) != Some(this_host) {
        return false;
    }
    let Some((pid, started)) = recorder_identity(start) else {
        return false;
    };
    is_recorder(pid, started)
}

pub fn is_recorder(pid: u32, started: Option<u64>) -> bool {
    match started {
        Some(t) => process_start_time(pid).ok() == Some(t),
        None => {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            comm.trim_end() == "sessrec-shell"
        }
    }
}

/// Whether the PAM module's grant for this session still exists (it is removed at logout
/// and swept when sshd's monitor is gone).
pub fn grant_exists(id: &str) -> bool {
    sessrec_core::id::SessionId::parse(id).is_some() && Path::new(GRANT_DIR).join(id).exists()
}
