//! Is a session still being recorded on this host? Answers from the grant in `/run/sessrec`
//! and from the recorder process named in `channel.start`.
#![forbid(unsafe_code)]

use std::path::Path;

use serde_json::{Map, Value};
use sessrec_core::grant::GRANT_DIR;
use sessrec_core::schema::{ChannelStart, Event, Line};
use sessrec_core::sys::{parent_pid, process_start_time};

/// The recorder's pid and, when known, its start time (clock ticks since boot) from a
/// `channel.start` line: `recorder_pid` when recorded, else the parent of the channel's `pid`
/// (the shell, or the pipe-mode monitor, is forked by the recorder), accepted only if that
/// process is a `sessrec-shell` that started shortly before the channel (`mono_us`), so a
/// reused pid is not mistaken for it.
pub fn recorder_identity(start: &Map<String, Value>) -> Option<(u32, Option<u64>)> {
    let start = channel_start(start)?;
    let as_pid = |p: Option<i32>| p.and_then(|p| u32::try_from(p).ok()).filter(|&p| p > 1);
    if let Some(pid) = as_pid(start.recorder_pid) {
        return started_with_channel(pid, &start).map(|t| (pid, Some(t)));
    }
    let parent = parent_pid(as_pid(start.pid)?).ok().filter(|&p| p > 1)?;
    started_with_channel(parent, &start).map(|t| (parent, Some(t)))
}

/// The line as its `channel.start`, when it is one.
fn channel_start(line: &Map<String, Value>) -> Option<ChannelStart> {
    match Line::from_map(line.clone()).event {
        Event::ChannelStart(start) => Some(start),
        _ => None,
    }
}

/// The start time of `pid` if it is a `sessrec-shell` that started shortly before the
/// channel (`mono_us` in `channel.start`), so a reused pid is not mistaken for the recorder.
fn started_with_channel(pid: u32, start: &ChannelStart) -> Option<u64> {
    if comm(pid) != "sessrec-shell" {
        return None;
    }
    let ticks = process_start_time(pid).ok()?;
    if let Some(mono) = start.mono_us {
        // /proc counts from boot including suspended time (CLOCK_BOOTTIME); `mono_us` does not.
        let mono = mono + suspended_us();
        let started_us = ticks.saturating_mul(1_000_000) / clock_ticks_per_second();
        // The recorder starts before its channel, within a generous minute.
        if started_us > mono + 2_000_000 || started_us + 60_000_000 < mono {
            return None;
        }
    }
    Some(ticks)
}

/// Time the system spent suspended: CLOCK_BOOTTIME minus CLOCK_MONOTONIC.
fn suspended_us() -> u64 {
    use nix::time::{clock_gettime, ClockId};
    let us = |c| {
        clock_gettime(c)
            .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000)
            .unwrap_or(0)
    };
    us(ClockId::CLOCK_BOOTTIME).saturating_sub(us(ClockId::CLOCK_MONOTONIC))
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
    if Line::from_map(start.clone()).header.host.as_deref() != Some(this_host) {
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
