//! Is a session still being recorded on this host? Answers from the grant in `/run/sessrec`
//! and from the recorder process named in `channel.start`.
#![forbid(unsafe_code)]

use std::path::Path;

use serde_json::{Map, Value};
use sessrec_core::grant::GRANT_DIR;
use sessrec_core::sys::{parent_pid, process_start_time};

/// The recorder's pid and, when known, its start time (clock ticks since boot) from a
/// `channel.start` line: `recorder_pid`/`recorder_start` when recorded, else the parent of the
/// channel's `pid` (the shell, or the pipe-mode monitor, is forked by the recorder), accepted
/// only if that parent is a `sessrec-shell` that started shortly before the channel
/// (`mono_us`), so a reused pid is not mistaken for it.
pub fn recorder_identity(start: &Map<String, Value>) -> Option<(u32, Option<u64>)> {
    if let Some(pid) = start.get("recorder_pid").and_then(Value::as_u64) {
        let pid = u32::try_from(pid).ok().filter(|&p| p > 1)?;
        let started = start.get("recorder_start").and_then(Value::as_u64);
        return Some((pid, started));
    }
    let child = u32::try_from(start.get("pid").and_then(Value::as_u64)?)
        .ok()
        .filter(|&p| p > 1)?;
    let parent = parent_pid(child).ok().filter(|&p| p > 1)?;
    if comm(parent) != "sessrec-shell" {
        return None;
    }
    let ticks = process_start_time(parent).ok()?;
    if let Some(mono) = start.get("mono_us").and_then(Value::as_u64) {
        let hz = clock_ticks_per_second();
        let started_us = ticks.saturating_mul(1_000_000) / hz;
        // The recorder starts before its channel, within a generous minute.
        if started_us > mono + 2_000_000 || started_us + 60_000_000 < mono {
            return None;
        }
    }
    Some((parent, Some(ticks)))
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

fn clock_ticks_per_second() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(v)) if v > 0 => v as u64,
        _ => 100,
    }
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
        None => comm(pid) == "sessrec-shell",
    }
}

/// Whether the PAM module's grant for this session still exists (it is removed at logout
/// and swept when sshd's monitor is gone).
pub fn grant_exists(id: &str) -> bool {
    sessrec_core::id::SessionId::parse(id).is_some() && Path::new(GRANT_DIR).join(id).exists()
}
