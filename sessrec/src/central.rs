//! The central archive's layout, as the shipped rsyslog receiver writes it:
//! `<root>/<host>/<session id>/<file>.jsonl`, one directory per bastion. It sits beside the
//! bastion layout (`<root>/YYYY/MM/DD/<id>/`): a tree may hold both, and every command reads
//! both. A top-level directory is a host when its name is a host name that cannot be a year
//! (`YYYY`) or `unattributed`.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sessrec_core::config::glob_match;
use sessrec_core::id::SessionId;

use serde_json::json;

use crate::escape::escape_control;

/// Whether `name` may be a host directory of a central tree: a DNS-style name (letters,
/// digits, `-`, `.`, `_`), not a 4-digit year, not `unattributed`, the access log's or the
/// heartbeats' directory, not hidden.
pub fn is_host_dir_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && name != "unattributed"
        && name != sessrec_core::access_log::ACCESS_DIR
        && name != HOST_DIR
        && !(name.len() == 4 && name.bytes().all(|b| b.is_ascii_digit()))
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// Hosts of the central layout under `root` whose name matches `host_glob` (all when
/// `None`), sorted.
pub fn hosts(root: &Path, host_glob: Option<&str>) -> Vec<String> {
    let Ok(rd) = fs::read_dir(root) else {
        return Vec::new();
    };
    let mut hosts: Vec<String> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| is_host_dir_name(n))
        .filter(|n| host_glob.is_none_or(|g| glob_match(g, n)))
        .collect();
    hosts.sort();
    hosts
}

/// A session directory of the central layout.
pub struct HostSession {
    pub host: String,
    pub id: SessionId,
    pub dir: PathBuf,
    /// The directory holds a `session.jsonl` (a login session, not a lone sudo session).
    pub has_session_file: bool,
}

/// Whether `<id>/session.jsonl` exists under the open host directory `at` (looked up from
/// it, not along the whole path: this runs once per session of the tree).
fn has_session_file(at: Option<&fs::File>, dir: &Path, id: &str) -> bool {
    use std::os::fd::AsRawFd;
    let flags = nix::fcntl::AtFlags::empty();
    match at {
        Some(d) => nix::sys::stat::fstatat(
            Some(d.as_raw_fd()),
            &Path::new(id).join("session.jsonl"),
            flags,
        )
        .is_ok(),
        None => dir.join("session.jsonl").exists(),
    }
}

/// The sessions of every matching host whose id's time falls in `[since, until)` (µs;
/// `None` = open).
pub fn sessions(
    root: &Path,
    host_glob: Option<&str>,
    since: Option<i64>,
    until: Option<i64>,
) -> Vec<HostSession> {
    let mut out = Vec::new();
    for host in hosts(root, host_glob) {
        let hdir = root.join(&host);
        let Ok(rd) = fs::read_dir(&hdir) else {
            continue;
        };
        let opened = fs::File::open(&hdir).ok();
        for entry in rd.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(SessionId::parse) else {
                continue;
            };
            let start_us = id.unix_millis() as i64 * 1000;
            if since.is_some_and(|s| start_us < s) || until.is_some_and(|u| start_us >= u) {
                continue;
            }
            let dir = entry.path();
            out.push(HostSession {
                host: host.clone(),
                id,
                has_session_file: has_session_file(
                    opened.as_ref(),
                    &dir,
                    name.to_str().unwrap_or_default(),
                ),
                dir,
            });
        }
    }
    out
}

/// Every directory of `id` in the central layout, one per host that holds it.
pub fn find(root: &Path, host_glob: Option<&str>, id: SessionId) -> Vec<HostSession> {
    hosts(root, host_glob)
        .into_iter()
        .filter_map(|host| {
            let dir = root.join(&host).join(id.to_string());
            dir.is_dir().then(|| HostSession {
                host,
                id,
                has_session_file: has_session_file(None, &dir, ""),
                dir,
            })
        })
        .collect()
}

/// A file filed under a host directory other than the host its own first line names (and
/// its chain start binds): moved, or sent by another bastion under a false name.
/// Returns the problem, to be reported against line 1.
pub fn misfiled(dir_host: &str, record_host: Option<&str>) -> Option<String> {
    let record_host = record_host?;
    (record_host != dir_host).then(|| {
        format!(
            "filed under host {} but its records are from host {}",
            escape_control(dir_host),
            escape_control(record_host)
        )
    })
}

/// Where the receiver files a host's trusted anchors.
pub const ANCHORS_FILE: &str = "anchors.log";

/// The directory of a bastion's own host records (heartbeats) under its record tree; never a
/// host of a central tree.
pub const HOST_DIR: &str = "host";

/// The anchors the receiver filed for `host`, if any.
pub fn anchor_text(root: &Path, host: &str) -> Option<String> {
    fs::read_to_string(root.join(host).join(ANCHORS_FILE)).ok()
}

/// `verify`'s report per host of a central tree.
#[derive(Default)]
pub struct HostTally {
    hosts: BTreeMap<String, HostCounts>,
}

#[derive(Default)]
struct HostCounts {
    sessions: u64,
    lines: u64,
    unanchored: u64,
    disagreeing: u64,
}

impl HostTally {
    /// One session: its lines, those after the last anchor, and the files whose chain or
    /// anchors disagree.
    pub fn add(&mut self, host: &str, lines: u64, unanchored: u64, disagreeing: u64) {
        let c = self.hosts.entry(host.to_string()).or_default();
        c.sessions += 1;
        c.lines += lines;
        c.unanchored += unanchored;
        c.disagreeing += disagreeing;
    }

    pub fn report(&self, json: bool, out: &mut dyn Write) -> std::io::Result<()> {
        for (host, c) in &self.hosts {
            if json {
                let v = json!({
                    "host": host, "sessions": c.sessions, "lines_verified": c.lines,
                    "lines_after_last_anchor": c.unanchored, "files_disagreeing": c.disagreeing,
                });
                writeln!(out, "{v}")?;
            } else {
                writeln!(
                    out,
                    "{:<10} host {}: {} sessions, {} lines verified, {} after the last anchor, {} files whose chain or anchors disagree",
                    if c.disagreeing == 0 { "OK" } else { "FAILED" },
                    escape_control(host),
                    c.sessions,
                    c.lines,
                    c.unanchored,
                    c.disagreeing
                )?;
            }
        }
        Ok(())
    }
}

/// Width of a HOST column for these sessions: 0 when none is in the central layout.
pub fn host_column_width<'a>(hosts: impl Iterator<Item = Option<&'a str>>) -> usize {
    hosts
        .flatten()
        .map(|h| h.chars().count().max(4))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_directory_names() {
        assert!(is_host_dir_name("bastion1.example.net"));
        assert!(is_host_dir_name("b-2"));
        assert!(!is_host_dir_name("2026"));
        assert!(!is_host_dir_name("unattributed"));
        assert!(!is_host_dir_name("access"));
        assert!(!is_host_dir_name("host"));
        assert!(!is_host_dir_name(".sessrec-cache"));
        assert!(!is_host_dir_name("a b"));
        assert!(!is_host_dir_name(""));
    }
}
