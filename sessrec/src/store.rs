//! Finding sessions in a record tree: `<root>/YYYY/MM/DD/<id>/` and
//! `<root>/unattributed/YYYY/MM/DD/<name>/`, and naming a session or channel on the command line.
#![forbid(unsafe_code)]

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sessrec_core::id::SessionId;

/// A session directory found in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    /// The session id (or, for unattributed sudo sessions, the directory's name).
    pub id: String,
    pub dir: PathBuf,
    pub unattributed: bool,
    /// µs since the epoch from the id, or midnight of the date directory.
    pub start_hint_us: i64,
    /// The host directory in a central tree (`<host>/<id>/`); `None` in the bastion layout.
    pub host: Option<String>,
}

/// The record tree rooted at `record_dir` (or a copy of it).
#[derive(Debug, Clone)]
pub struct Tree {
    pub root: PathBuf,
    /// `--host GLOB`: only these host directories of a central tree (and none of the bastion
    /// layout, whose sessions name no host directory).
    pub host_filter: Option<String>,
}

/// What kind of file a session directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    Session,
    Channel(u32),
    Sudo,
    /// `audit.jsonl`: the kernel's exec and connect records of the session.
    Audit,
}

/// The file of the kernel's exec and connect records in a session directory.
pub const AUDIT_FILE: &str = "audit.jsonl";

pub fn classify(name: &str) -> Option<FileKind> {
    if name == "session.jsonl" {
        return Some(FileKind::Session);
    }
    if name == AUDIT_FILE {
        return Some(FileKind::Audit);
    }
    if let Some(n) = name
        .strip_prefix("channel-")
        .and_then(|r| r.strip_suffix(".jsonl"))
    {
        if !n.is_empty()
            && n.len() <= 9
            && n.bytes().all(|b| b.is_ascii_digit())
            && !n.starts_with('0')
        {
            return n.parse().ok().map(FileKind::Channel);
        }
        return None;
    }
    if let Some(h) = name
        .strip_prefix("sudo-")
        .and_then(|r| r.strip_suffix(".jsonl"))
    {
        if !h.is_empty() && h.len() <= 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(FileKind::Sudo);
        }
    }
    None
}

/// Record files of a session directory, sorted: session.jsonl, channels by number, sudo files.
/// Each by its logical name (`channel-1.jsonl`) and the path it is stored at, plain or
/// compressed (read it with [`sessrec_core::stored::open`]). Should both exist (compression
/// stopped between its two steps), the plain file is the one read.
pub fn session_files(dir: &Path) -> io::Result<Vec<(FileKind, String, PathBuf)>> {
    let mut files: Vec<(FileKind, String, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Some(stored_name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Some(name) = sessrec_core::stored::logical_name(&stored_name) else {
            continue;
        };
        if let Some(kind) = classify(name) {
            files.push((kind, name.to_string(), entry.path()));
        }
    }
    files.sort();
    // Sorted, a name's plain path (`x.jsonl`) comes before its compressed one (`x.jsonl.gz`).
    files.dedup_by(|later, earlier| later.1 == earlier.1);
    Ok(files)
}

fn numeric_dir(name: &str, len: usize, range: std::ops::RangeInclusive<u32>) -> Option<u32> {
    if name.len() != len || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok().filter(|v| range.contains(v))
}

fn sorted_dir_names(dir: &Path) -> Vec<String> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok()?.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

const DAY_US: i64 = 86_400_000_000;

impl Tree {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Tree {
            root: root.into(),
            host_filter: None,
        }
    }

    /// Every session whose date directory may hold sessions started in `[since, until)`
    /// (µs; `None` = open), oldest first. Dates are pruned by directory name, so a narrow
    /// window reads few directories.
    pub fn sessions(&self, since: Option<i64>, until: Option<i64>) -> io::Result<Vec<SessionRef>> {
        self.sessions_with(since, until, true)
    }

    /// [`Tree::sessions`] without telling the central layout's lone sudo sessions from login
    /// sessions (every central session comes with `unattributed` false), which takes a `stat`
    /// per session: for views that read each session's files through
    /// [`crate::catalog::survey`], whose entries carry the session classified.
    pub fn sessions_unclassified(
        &self,
        since: Option<i64>,
        until: Option<i64>,
    ) -> io::Result<Vec<SessionRef>> {
        self.sessions_with(since, until, false)
    }

    fn sessions_with(
        &self,
        since: Option<i64>,
        until: Option<i64>,
        classify: bool,
    ) -> io::Result<Vec<SessionRef>> {
        // Read, not just looked at: an empty listing of a tree this user may not read would
        // say "no sessions" where the truth is "not allowed".
        if let Err(e) = fs::read_dir(&self.root) {
            let root = self.root.display();
            return Err(match e.kind() {
                io::ErrorKind::PermissionDenied => io::Error::new(
                    e.kind(),
                    format!("the records under {root} are root-only: run as root (or as a member of the configured read_group)"),
                ),
                _ => io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("record tree {root} is not a readable directory: {e}"),
                ),
            });
        }
        let mut out = Vec::new();
        if self.host_filter.is_none() {
            self.walk(&self.root, false, since, until, &mut out);
            self.walk(
                &self.root.join("unattributed"),
                true,
                since,
                until,
                &mut out,
            );
        }
        out.extend(
            crate::central::sessions(
                &self.root,
                self.host_filter.as_deref(),
                since,
                until,
                classify,
            )
            .into_iter()
            .map(central_ref),
        );
        out.sort_by(|a, b| {
            a.start_hint_us
                .cmp(&b.start_hint_us)
                .then_with(|| a.id.cmp(&b.id))
                .then_with(|| a.host.cmp(&b.host))
        });
        Ok(out)
    }

    fn walk(
        &self,
        base: &Path,
        unattributed: bool,
        since: Option<i64>,
        until: Option<i64>,
        out: &mut Vec<SessionRef>,
    ) {
        for y in sorted_dir_names(base) {
            let Some(year) = numeric_dir(&y, 4, 1970..=9999) else {
                continue;
            };
            let ydir = base.join(&y);
            for m in sorted_dir_names(&ydir) {
                let Some(month) = numeric_dir(&m, 2, 1..=12) else {
                    continue;
                };
                let mdir = ydir.join(&m);
                for d in sorted_dir_names(&mdir) {
                    let Some(day) = numeric_dir(&d, 2, 1..=31) else {
                        continue;
                    };
                    let day_start =
                        crate::timespec::days_from_civil(i64::from(year), month, day) * DAY_US;
                    if since.is_some_and(|s| day_start + DAY_US <= s)
                        || until.is_some_and(|u| day_start >= u)
                    {
                        continue;
                    }
                    let ddir = mdir.join(&d);
                    for name in sorted_dir_names(&ddir) {
                        let start_hint_us = match SessionId::parse(&name) {
                            Some(id) => id.unix_millis() as i64 * 1000,
                            None if unattributed && safe_name(&name) => day_start,
                            None => continue,
                        };
                        out.push(SessionRef {
                            id: name.clone(),
                            dir: ddir.join(&name),
                            unattributed,
                            start_hint_us,
                            host: None,
                        });
                    }
                }
            }
        }
    }

    /// Resolves a session argument: a full id (found directly from its date), a unique
    /// prefix of at least 8 characters, or `unattributed/<name>`.
    pub fn resolve(&self, arg: &str) -> Result<SessionRef, String> {
        let shown = crate::escape::escape_control(arg);
        if let Some(name) = arg.strip_prefix("unattributed/") {
            return self
                .sessions(None, None)
                .map_err(|e| e.to_string())?
                .into_iter()
                .find(|s| s.unattributed && s.id == name)
                .ok_or_else(|| {
                    format!("no unattributed session {shown} in {}", self.root.display())
                });
        }
        if let Some(id) = SessionId::parse(arg) {
            let dir = self
                .root
                .join(sessrec_core::tree::session_relative_path(id));
            let mut found = Vec::new();
            if self.host_filter.is_none() && dir.is_dir() {
                found.push(SessionRef {
                    id: arg.to_string(),
                    dir,
                    unattributed: false,
                    start_hint_us: id.unix_millis() as i64 * 1000,
                    host: None,
                });
            }
            found.extend(
                crate::central::find(&self.root, self.host_filter.as_deref(), id)
                    .into_iter()
                    .map(central_ref),
            );
            return one_of(found, &shown, &self.root);
        }
        if arg.len() < 8 || !arg.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(format!(
                "{shown} is not a session id (expected a UUID like 0192b3c4-..., or at least its first 8 characters)"
            ));
        }
        let matches: Vec<SessionRef> = self
            .sessions(None, None)
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|s| !s.unattributed && s.id.starts_with(arg))
            .collect();
        if matches.is_empty() {
            return Err(format!(
                "no session starting with {shown} in {}",
                self.root.display()
            ));
        }
        one_of(matches, &shown, &self.root)
    }
}

/// A session of the central layout. Unattributed sudo sessions carry an id of their own, so
/// they arrive as `<host>/<id>/` holding only `sudo-*.jsonl` files; a directory with any
/// other record file (or none) is a login session, so a lost `session.jsonl` is still reported.
fn central_ref(s: crate::central::HostSession) -> SessionRef {
    let only_sudo = !s.has_session_file
        && session_files(&s.dir).is_ok_and(|files| {
            !files.is_empty() && files.iter().all(|(kind, _, _)| *kind == FileKind::Sudo)
        });
    SessionRef {
        // The directory's name is the id's text (ids parse only in their canonical form).
        id: s
            .dir
            .file_name()
            .and_then(|n| n.to_str())
            .map_or_else(|| s.id.to_string(), str::to_string),
        start_hint_us: s.id.unix_millis() as i64 * 1000,
        unattributed: only_sudo,
        dir: s.dir,
        host: Some(s.host),
    }
}

/// The one session found, or why there is not exactly one. The same id under two hosts of a
/// central tree (a copy, or a forgery) is never silently resolved to either.
fn one_of(mut found: Vec<SessionRef>, shown: &str, root: &Path) -> Result<SessionRef, String> {
    match found.len() {
        0 => Err(format!("no session {shown} in {}", root.display())),
        1 => Ok(found.remove(0)),
        n if found.iter().all(|s| s.id == found[0].id) => {
            let hosts: Vec<String> = found
                .iter()
                .map(|s| {
                    crate::escape::escape_control(s.host.as_deref().unwrap_or("(bastion layout)"))
                })
                .collect();
            Err(format!(
                "{shown} is held {n} times, under {}: choose one with --host",
                hosts.join(", ")
            ))
        }
        n => Err(format!("{shown} is ambiguous: {n} sessions start with it")),
    }
}

fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `SESSION[/CHANNEL]`: CHANNEL is `N`, `channel-N` or `sudo-<hex>` (file name with or
/// without `.jsonl`).
pub fn split_target(arg: &str) -> (String, Option<String>) {
    let (session, channel) = match arg.strip_prefix("unattributed/") {
        Some(rest) => match rest.split_once('/') {
            Some((s, c)) => (format!("unattributed/{s}"), Some(c)),
            None => (arg.to_string(), None),
        },
        None => match arg.split_once('/') {
            Some((s, c)) => (s.to_string(), Some(c)),
            None => (arg.to_string(), None),
        },
    };
    let channel = channel.filter(|c| !c.is_empty()).map(|c| {
        let c = c.strip_suffix(".jsonl").unwrap_or(c);
        if c.bytes().all(|b| b.is_ascii_digit()) {
            format!("channel-{c}.jsonl")
        } else {
            format!("{c}.jsonl")
        }
    });
    (session, channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_file_names() {
        assert_eq!(classify("session.jsonl"), Some(FileKind::Session));
        assert_eq!(classify("channel-12.jsonl"), Some(FileKind::Channel(12)));
        assert_eq!(classify("channel-01.jsonl"), None);
        assert_eq!(classify("channel-.jsonl"), None);
        assert_eq!(
            classify("sudo-0123456789abcdef.jsonl"),
            Some(FileKind::Sudo)
        );
        assert_eq!(classify("sudo-xyz.jsonl"), None);
        assert_eq!(classify("notes.txt"), None);
    }

    #[test]
    fn splits_targets() {
        assert_eq!(split_target("abc"), ("abc".into(), None));
        assert_eq!(
            split_target("abc/2"),
            ("abc".into(), Some("channel-2.jsonl".into()))
        );
        assert_eq!(
            split_target("abc/channel-3"),
            ("abc".into(), Some("channel-3.jsonl".into()))
        );
        assert_eq!(
            split_target("abc/sudo-00ff"),
            ("abc".into(), Some("sudo-00ff.jsonl".into()))
        );
        assert_eq!(
            split_target("unattributed/x/sudo-1"),
            ("unattributed/x".into(), Some("sudo-1.jsonl".into()))
        );
    }
}
