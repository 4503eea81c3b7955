//! The catalog: each session's summary and chain verdict, as `list`, `hosts`, `search` and the
//! web console's list need them, kept per directory of sessions (a central tree's host, a day
//! of the bastion layout) so that a view over 100,000 sessions reads one small file per
//! directory and a `stat` per record file instead of opening and hashing every file.
//!
//! Soundness: the catalog never reports a session better than reading it afresh would. An
//! entry is used only if the session directory and every record file in it are the same
//! objects with the same sizes and times as when the entry was made — device, inode, size,
//! mtime and **ctime** in nanoseconds (see [`crate::verdict_cache`] for why ctime cannot be
//! set back by a user) and the directory's own times, which change whenever a file is added,
//! removed or renamed in it. Anything else (an edited line, a truncated or replaced file, a new
//! channel) makes the entry stale and the session is read and verified again. Only sessions
//! that are closed and complete are kept: open ones keep changing and depend on live
//! recorders. Anchors are never cached; they are checked afresh against the files.
//!
//! The files live in `<root>/.sessrec-cache/`, a directory owned by the reading user and
//! writable by no one else (a user who could write an entry could hide damage from views);
//! entries of another owner or group/other-writable ones are ignored. A tree the user cannot
//! write gets no catalog and every session is read as before. The program version is part of
//! every file, so an upgrade that changes what is checked starts afresh.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use nix::fcntl::AtFlags;
use nix::sys::stat::{fstatat, FileStat};
use serde::{Deserialize, Serialize};

use crate::integrity::{unverifiable, unverifiable_reason, verdict_of};
use crate::store::{session_files, SessionRef};
use crate::summary::{summarize, State, Summary};
use crate::verdict::Verdict;
use crate::verify::{AnchorLine, Problem, SessionResult, Severity};

/// The catalog's directory under the tree's root (hidden: never a host, date or session).
pub const CACHE_DIR: &str = ".sessrec-cache";
/// Longest catalog file read (a day or host of ~100,000 sessions).
const MAX_FILE: u64 = 256 << 20;

/// What the views know about one session.
#[derive(Debug, Clone)]
pub struct Entry {
    pub summary: Summary,
    pub check: Check,
    /// Newest modification time (µs) of the session's record files: its last arrival.
    pub newest_us: Option<i64>,
    /// The session directory holds a `session.jsonl`.
    pub has_session_file: bool,
}

/// The chain check of a session's files, before anchors.
#[derive(Debug, Clone)]
pub enum Check {
    Verified(SessionResult),
    /// The files could not be read; why.
    Unverifiable(String),
}

impl Entry {
    /// The session's verdict, anchors (when given) checked afresh.
    pub fn verdict(&self, session: &SessionRef, anchors: Option<&[AnchorLine]>) -> Verdict {
        match &self.check {
            Check::Verified(r) => verdict_of(session, r.clone(), anchors),
            Check::Unverifiable(reason) => unverifiable(session, reason.clone()),
        }
    }
}

/// Summaries and verdicts of `sessions` (in their order), from the catalog where it is
/// current, read afresh (and catalogued) where not. Directories are worked on in parallel.
pub fn survey(root: &Path, sessions: &[SessionRef], this_host: &str) -> Vec<Entry> {
    // Sessions grouped by the directory that holds them, in order of first appearance.
    let mut groups: Vec<(PathBuf, Vec<usize>)> = Vec::new();
    let mut group_of: HashMap<PathBuf, usize> = HashMap::new();
    for (i, s) in sessions.iter().enumerate() {
        let parent = s.dir.parent().unwrap_or(Path::new("")).to_path_buf();
        let g = *group_of.entry(parent.clone()).or_insert_with(|| {
            groups.push((parent, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    let cache = CacheDir::open(root);
    let slots: Vec<Mutex<Option<Entry>>> = sessions.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let g = next.fetch_add(1, Ordering::Relaxed);
        let Some((container, members)) = groups.get(g) else {
            break;
        };
        let refs: Vec<&SessionRef> = members.iter().map(|&i| &sessions[i]).collect();
        let entries = survey_group(cache.as_ref(), root, container, &refs, this_host);
        for (&i, e) in members.iter().zip(entries) {
            *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        }
    };
    let threads = crate::parallel::workers().min(groups.len()).max(1);
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
    slots
        .into_iter()
        .zip(sessions)
        .map(|(slot, s)| {
            slot.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| read_afresh(s, this_host).0)
        })
        .collect()
}

/// One directory's sessions: catalogued entries that are current, the rest read afresh; the
/// directory's catalog file is rewritten when anything changed.
fn survey_group(
    cache: Option<&CacheDir>,
    root: &Path,
    container: &Path,
    sessions: &[&SessionRef],
    this_host: &str,
) -> Vec<Entry> {
    let file = cache.map(|c| c.file_for(root, container));
    let mut stored = file.as_deref().map(load).unwrap_or_default();
    let opened = fs::File::open(container).ok();
    let mut changed = false;
    let mut out = Vec::with_capacity(sessions.len());
    for s in sessions {
        let name = dir_name(s);
        if let Some(entry) = stored.get(&name).and_then(|e| {
            let at = opened
                .as_ref()
                .filter(|_| s.dir.parent() == Some(container));
            e.current(s, at).then(|| e.to_entry(s))
        }) {
            out.push(entry);
            continue;
        }
        let (entry, keep) = read_afresh(s, this_host);
        match keep {
            Some(k) => {
                stored.insert(name, k);
                changed = true;
            }
            None => changed |= stored.remove(&name).is_some(),
        }
        out.push(entry);
    }
    if let (Some(file), true) = (file, changed) {
        // Entries of sessions not asked for this time stay while their directory exists.
        stored.retain(|name, _| container.join(name).is_dir());
        save(&file, &stored);
    }
    out
}

fn dir_name(s: &SessionRef) -> String {
    s.dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads one session: its summary and its chains' verdict, and the catalog entry for it when
/// it is closed and nothing changed while it was read.
fn read_afresh(s: &SessionRef, this_host: &str) -> (Entry, Option<Stored>) {
    let before = Identity::of(&s.dir);
    let summary = summarize(s, this_host);
    let check = match unverifiable_reason(s) {
        Some(reason) => Check::Unverifiable(reason),
        None => Check::Verified(crate::verdict_cache::verify_cached(s, this_host)),
    };
    let after = Identity::of(&s.dir);
    let newest_us = after
        .as_ref()
        .map(|i| i.newest_us())
        .unwrap_or_else(|| newest_record_mtime(&s.dir));
    let has_session_file = match &after {
        Some(i) => i.has_session_file(),
        None => session_files(&s.dir).is_ok_and(|f| f.iter().any(|(_, n, _)| n == "session.jsonl")),
    };
    let keep = match (&before, &after, &check) {
        (Some(b), Some(a), Check::Verified(r))
            // The directory's times change when the verdict cache stores its entry: the
            // files must be the same ones, and the directory is keyed as it is now.
            if b.files == a.files
                && summary.state == State::Closed
                && summary.open_channels.is_empty()
                && !r.live
                && crate::verdict_cache::session_closed(r) =>
        {
            Some(Stored::new(a, &summary, r, &s.dir))
        }
        _ => None,
    };
    let entry = Entry {
        summary,
        check,
        newest_us,
        has_session_file,
    };
    (entry, keep)
}

/// Newest modification time (µs) of a directory's record files.
pub fn newest_record_mtime(dir: &Path) -> Option<i64> {
    session_files(dir)
        .ok()?
        .iter()
        .filter_map(|(_, _, p)| lstat(None, p))
        .filter(is_file)
        .map(|m| m.st_mtime * 1_000_000 + m.st_mtime_nsec / 1000)
        .max()
}

/// What identifies a session directory and its record files without reading them: two equal
/// identities mean the same files, unchanged (anything derived from them may be reused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// dev, inode, mtime s, mtime ns, ctime s, ctime ns of the directory.
    dir: [i64; 6],
    /// Each record file by its name on disk: dev, inode, size, mtime s, mtime ns, ctime s, ctime ns.
    files: Vec<(String, [i64; 7])>,
}

/// `lstat` of `path`, relative to the open directory `at` (a short lookup instead of the
/// whole path's) when given.
fn lstat(at: Option<&fs::File>, path: &Path) -> Option<FileStat> {
    fstatat(
        at.map(|d| d.as_raw_fd()),
        path,
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ok()
}

fn is_dir(st: &FileStat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

fn is_file(st: &FileStat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFREG
}

fn dir_key(m: &FileStat) -> [i64; 6] {
    [
        m.st_dev as i64,
        m.st_ino as i64,
        m.st_mtime,
        m.st_mtime_nsec,
        m.st_ctime,
        m.st_ctime_nsec,
    ]
}

fn file_key(m: &FileStat) -> [i64; 7] {
    [
        m.st_dev as i64,
        m.st_ino as i64,
        m.st_size,
        m.st_mtime,
        m.st_mtime_nsec,
        m.st_ctime,
        m.st_ctime_nsec,
    ]
}

impl Identity {
    /// `None` when the directory or a record file is not there as a plain directory or file.
    pub fn of(dir: &Path) -> Option<Identity> {
        let d = lstat(None, dir).filter(is_dir)?;
        let mut files = Vec::new();
        for (_, _, path) in session_files(dir).ok()? {
            let m = lstat(None, &path).filter(is_file)?;
            // The name on disk (`x.jsonl` or, compressed, `x.jsonl.gz`).
            let name = path.file_name()?.to_str()?.to_string();
            files.push((name, file_key(&m)));
        }
        Some(Identity {
            dir: dir_key(&d),
            files,
        })
    }

    fn has_session_file(&self) -> bool {
        self.files
            .iter()
            .any(|(name, _)| sessrec_core::stored::logical_name(name) == Some("session.jsonl"))
    }

    fn newest_us(&self) -> Option<i64> {
        self.files
            .iter()
            .map(|(_, k)| k[3] * 1_000_000 + k[4] / 1000)
            .max()
    }
}

/// A catalogued session, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    /// The session directory's name.
    name: String,
    id: Identity,
    start_us: i64,
    end_us: Option<i64>,
    host: String,
    user: String,
    actor: String,
    actor_source: String,
    verified: Option<bool>,
    src_ip: String,
    src_port: Option<u64>,
    channels: u32,
    transfers: u32,
    forwards: u32,
    sudo: u32,
    kinds: Vec<String>,
    command: Option<String>,
    exit: Option<String>,
    execs: Option<u64>,
    connects: Option<u64>,
    /// Summary problems (a closed session can still have some, e.g. an unreadable line).
    notes: Vec<String>,
    /// Chain problems: file (relative to the session directory when inside it), line,
    /// broken, text.
    problems: Vec<(String, u64, bool, String)>,
}

impl Stored {
    fn new(id: &Identity, s: &Summary, r: &SessionResult, dir: &Path) -> Stored {
        Stored {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            id: id.clone(),
            start_us: s.start_us,
            end_us: s.end_us,
            host: s.host.clone(),
            user: s.user.clone(),
            actor: s.actor.clone(),
            actor_source: s.actor_source.clone(),
            verified: s.verified,
            src_ip: s.src_ip.clone(),
            src_port: s.src_port,
            channels: s.channels,
            transfers: s.transfers,
            forwards: s.forwards,
            sudo: s.sudo,
            kinds: s.kinds.clone(),
            command: s.command.clone(),
            exit: s.exit.clone(),
            execs: s.execs,
            connects: s.connects,
            notes: s.problems.clone(),
            problems: r
                .problems
                .iter()
                .map(|p| {
                    let file = match p.file.strip_prefix(dir) {
                        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
                        _ => p.file.display().to_string(),
                    };
                    (file, p.line, p.severity == Severity::Broken, p.text.clone())
                })
                .collect(),
        }
    }

    /// The session directory and its record files are still the ones catalogued (looked up
    /// from the open directory that holds the session, when there is one).
    fn current(&self, s: &SessionRef, container: Option<&fs::File>) -> bool {
        let rel: &Path = match container {
            Some(_) => Path::new(&self.name),
            None => &s.dir,
        };
        if !lstat(container, rel).is_some_and(|d| is_dir(&d) && dir_key(&d) == self.id.dir) {
            return false;
        }
        let mut path = rel.to_path_buf();
        self.id.files.iter().all(|(name, key)| {
            path.push(name);
            let same = lstat(container, &path).is_some_and(|m| is_file(&m) && file_key(&m) == *key);
            path.pop();
            same
        })
    }

    fn to_entry(&self, s: &SessionRef) -> Entry {
        let summary = Summary {
            session: s.clone(),
            start_us: self.start_us,
            end_us: self.end_us,
            host: self.host.clone(),
            user: self.user.clone(),
            actor: self.actor.clone(),
            actor_source: self.actor_source.clone(),
            verified: self.verified,
            src_ip: self.src_ip.clone(),
            src_port: self.src_port,
            channels: self.channels,
            transfers: self.transfers,
            forwards: self.forwards,
            sudo: self.sudo,
            kinds: self.kinds.clone(),
            command: self.command.clone(),
            exit: self.exit.clone(),
            execs: self.execs,
            connects: self.connects,
            state: State::Closed,
            problems: self.notes.clone(),
            open_channels: Vec::new(),
        };
        let result = SessionResult {
            files: Vec::new(),
            live: false,
            problems: self
                .problems
                .iter()
                .map(|(file, line, broken, text)| Problem {
                    file: if Path::new(file).is_absolute() {
                        PathBuf::from(file)
                    } else {
                        s.dir.join(file)
                    },
                    line: *line,
                    severity: if *broken {
                        Severity::Broken
                    } else {
                        Severity::Incomplete
                    },
                    text: text.clone(),
                    cut_short: false,
                })
                .collect(),
        };
        Entry {
            summary,
            check: Check::Verified(result),
            newest_us: self.id.newest_us(),
            has_session_file: self.id.has_session_file(),
        }
    }
}

/// The catalog directory, when this user owns it and no one else can write it.
struct CacheDir {
    path: PathBuf,
}

impl CacheDir {
    fn open(root: &Path) -> Option<CacheDir> {
        let path = root.join(CACHE_DIR);
        if fs::symlink_metadata(&path).is_err() {
            // Made only by the owner of the tree's root (the records' owner): a reader of
            // another tree gets no catalog rather than an unexpected directory in it.
            let root_owner = fs::metadata(root).ok()?.uid();
            if root_owner != nix::unistd::geteuid().as_raw() {
                return None;
            }
            let _ = fs::DirBuilder::new().mode(0o700).create(&path);
        }
        let m = fs::symlink_metadata(&path).ok()?;
        (m.is_dir() && owned_and_private(&m)).then_some(CacheDir { path })
    }

    /// The catalog file of the sessions in `container` (`<host>`, `YYYY/MM/DD`, ...).
    fn file_for(&self, root: &Path, container: &Path) -> PathBuf {
        let rel = container.strip_prefix(root).unwrap_or(container);
        // `+` appears in no host or date directory name, so names cannot collide.
        let name: String = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("+");
        self.path.join(format!("{name}.catalog"))
    }
}

fn owned_and_private(m: &fs::Metadata) -> bool {
    m.uid() == nix::unistd::geteuid().as_raw() && m.mode() & 0o022 == 0
}

/// The first line of a catalog file: what wrote it.
#[derive(Serialize, Deserialize, PartialEq, Eq)]
struct Header {
    catalog: u32,
    version: String,
}

fn header() -> Header {
    Header {
        catalog: 1,
        version: sessrec_core::VERSION.to_string(),
    }
}

/// A catalog file's entries by session directory name; empty when it is missing, not
/// trusted, of another version, or not readable as a whole.
fn load(path: &Path) -> HashMap<String, Stored> {
    let read = || -> Option<HashMap<String, Stored>> {
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .ok()?;
        let m = f.metadata().ok()?;
        if !m.is_file() || !owned_and_private(&m) || m.len() > MAX_FILE {
            return None;
        }
        let mut lines = std::io::BufReader::with_capacity(1 << 20, f).lines();
        let first: Header = serde_json::from_str(&lines.next()?.ok()?).ok()?;
        if first != header() {
            return None;
        }
        let mut out = HashMap::new();
        for line in lines {
            let stored: Stored = serde_json::from_str(&line.ok()?).ok()?;
            out.insert(stored.name.clone(), stored);
        }
        Some(out)
    };
    read().unwrap_or_default()
}

/// Writes a catalog file (to a temporary name, renamed into place); any failure just leaves
/// the catalog without it.
fn save(path: &Path, entries: &HashMap<String, Stored>) {
    let mut body = Vec::with_capacity(entries.len() * 700);
    let mut names: Vec<&String> = entries.keys().collect();
    names.sort();
    let written = serde_json::to_writer(&mut body, &header()).is_ok()
        && names.into_iter().all(|name| {
            body.push(b'\n');
            serde_json::to_writer(&mut body, &entries[name]).is_ok()
        });
    body.push(b'\n');
    if !written {
        return;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let ok = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&body));
    if ok.is_err() || fs::rename(&tmp, path).is_err() {
        let _ = fs::remove_file(&tmp);
    }
}
