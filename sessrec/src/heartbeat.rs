//! `sessrec heartbeat`: one chained host record of this bastion's state — open sessions, free
//! space for records, how far each importer is behind, whether exec auditing is on — appended to
//! `<record_dir>/host/heartbeat-YYYY-MM-DD.jsonl`, which the shipped sender carries to the
//! central archive like any record file. Run from `sessrec-heartbeat.timer`; `sessrec hosts`
//! on the central tree tells a quiet host (heartbeats, no sessions) from a silent one.
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sessrec_core::config::Config;
use sessrec_core::id::SessionId;
use sessrec_core::schema::Heartbeat;
use sessrec_core::time::Timestamp;

use crate::kernel_audit::{missing_rules, Auditctl};

use crate::context::{exit, CmdResult, Context, Failure};

pub use crate::central::HOST_DIR;
/// Where the central receiver files a host's heartbeats: `<central>/<host>/heartbeat/`.
pub const CENTRAL_DIR: &str = "heartbeat";
/// Prefix of a heartbeat file's name.
pub const FILE_PREFIX: &str = "heartbeat-";
/// The interval the shipped timer runs at.
pub const DEFAULT_INTERVAL_US: i64 = 5 * 60 * 1_000_000;
/// Longest heartbeat line (it is a few hundred bytes).
const LINE_MAX: usize = 8192;

/// The file name of a day's heartbeats.
pub fn file_name(day: (i64, u32, u32)) -> String {
    let (y, m, d) = day;
    format!("{FILE_PREFIX}{y:04}-{m:02}-{d:02}.jsonl")
}

/// The `session` a day's heartbeat file carries: derived from the date and host.
fn day_id(host: &str, day: (i64, u32, u32)) -> SessionId {
    let (y, m, d) = day;
    let millis = sessrec_core::time::days_from_civil(y, m, d).max(0) as u64 * 86_400_000;
    let mut seed = b"sessrec-heartbeat\0".to_vec();
    seed.extend_from_slice(host.as_bytes());
    SessionId::derived(millis, &seed)
}

fn mtime_us(path: &Path) -> Option<i64> {
    let t = fs::metadata(path).ok()?.modified().ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_micros() as i64)
}

/// Seconds an importer is behind: 0 when its state was saved after its newest input changed,
/// else the time since it last saved (or since the input changed, when it never did). `None`
/// when there is neither input nor state (the importer is not in use).
pub fn import_lag(state_file: &Path, inputs: &[PathBuf], now_us: i64) -> Option<u64> {
    let state = mtime_us(state_file);
    let input = inputs.iter().filter_map(|p| mtime_us(p)).max();
    let behind_since = match (state, input) {
        (None, None) => return None,
        (Some(_), None) => return Some(0),
        (Some(s), Some(i)) if s >= i => return Some(0),
        (Some(s), Some(_)) => s,
        (None, Some(i)) => i,
    };
    Some(((now_us - behind_since).max(0) / 1_000_000) as u64)
}

/// The sudo importer's inputs: each I/O log directory and its `seq` file (sudo bumps it for
/// every new session).
fn sudo_inputs(config: &Config) -> Vec<PathBuf> {
    config
        .sudo
        .iolog_dirs
        .iter()
        .flat_map(|d| [d.clone(), d.join("seq")])
        .collect()
}

/// Kernel exec auditing as `auditctl` reports it: `on` (auditd runs, auditing enabled, the
/// sessrec rules loaded), `off`, or `unknown` (no auditctl, or it failed).
pub fn exec_audit_state() -> &'static str {
    let Some(auditctl) = Auditctl::find() else {
        return "unknown";
    };
    let Some(status) = auditctl.status() else {
        return "unknown";
    };
    if !status.daemon_runs() || !status.enabled {
        return "off";
    }
    match auditctl.rules() {
        Some(listing) if missing_rules(&listing).is_empty() => "on",
        Some(_) => "off",
        None => "unknown",
    }
}

/// Sessions being recorded now: the grants in the grant directory.
fn open_sessions() -> u64 {
    fs::read_dir(sessrec_core::grant::GRANT_DIR)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_str().and_then(SessionId::parse).is_some())
                .count() as u64
        })
        .unwrap_or(0)
}

pub fn run(ctx: &Context) -> CmdResult {
    let config = ctx.config.clone().unwrap_or_default();
    let interval_us = ctx
        .duration_arg("--interval")?
        .unwrap_or(DEFAULT_INTERVAL_US);
    let root = &ctx.tree.root;
    let beat = Heartbeat {
        open_sessions: Some(open_sessions()),
        record_disk_free_mb: sessrec_core::tree::free_mb(root).ok(),
        sudo_import_lag: import_lag(&config.sudo.state_file, &sudo_inputs(&config), ctx.now_us),
        audit_import_lag: import_lag(
            &config.audit.state_file,
            std::slice::from_ref(&config.audit.log_file),
            ctx.now_us,
        ),
        exec_audit: Some(exec_audit_state().to_string()),
        interval: Some((interval_us / 1_000_000) as u64),
        ..Default::default()
    };
    let today = Timestamp::from_micros(ctx.now_us).date();
    let path = sessrec_core::access_log::append_daily(
        root,
        HOST_DIR,
        &file_name(today),
        day_id(&ctx.host, today),
        &ctx.host,
        &beat,
        LINE_MAX,
    )
    .map_err(|e| Failure::error(format!("{}: {e}", root.join(HOST_DIR).display())))?;
    let _ = path;
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn importer_lag() {
        let dir = std::env::temp_dir().join(format!("sessrec-lag-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let (state, input) = (dir.join("state"), dir.join("input"));
        let now = Timestamp::now().as_micros() + 10_000_000;
        assert_eq!(import_lag(&state, std::slice::from_ref(&input), now), None);
        fs::write(&input, "x").unwrap();
        assert!(import_lag(&state, std::slice::from_ref(&input), now).unwrap() >= 9);
        fs::write(&state, "x").unwrap();
        assert_eq!(
            import_lag(&state, std::slice::from_ref(&input), now),
            Some(0)
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
