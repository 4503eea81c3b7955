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
//! recorders. An entry is made only once the directory and files last changed more than
//! [`crate::verdict_cache::SETTLE_NS`] before: the kernel stamps changes with a coarse clock,
//! and a change in the same tick as the `stat` that keyed the entry would not show. Anchors
//! are never cached; they are checked afresh against the files.
//!
//! The files are in a compact binary form (`format`): a list over 100,000 sessions reads
//! ~50 MB of it, and the `stat`s above are then most of its cost.
//!
//! The files live in `<root>/.sessrec-cache/`, a directory owned by the reading user and
//! writable by no one else (a user who could write an entry could hide damage from views);
//! entries of another owner or group/other-writable ones are ignored. A tree the user cannot
//! write gets no catalog and every session is read as before. The program version is part of
//! every file, so an upgrade that changes what is checked starts afresh.
#![forbid(unsafe_code)]

mod format;

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use nix::fcntl::AtFlags;
use nix::sys::stat::{fstatat, FileStat};

use crate::integrity::{unverifiable, unverifiable_reason, verdict_of};
use crate::store::{session_files, FileKind, SessionRef};
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
    let stored = file.as_deref().and_then(load);
    let opened = fs::File::open(container).ok();
    // Records made or dropped this time, by session directory name.
    let mut fresh: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    let mut out = Vec::with_capacity(sessions.len());
    for s in sessions {
        let name = dir_name(s);
        let at = opened
            .as_ref()
            .filter(|_| s.dir.parent() == Some(container));
        let found = stored.as_ref().and_then(|f| Some((f, f.find(name)?)));
        if let Some(entry) = found.and_then(|(f, i)| current_entry(f.record(i), s, at)) {
            out.push(entry);
            continue;
        }
        let (entry, keep) = read_afresh(s, this_host);
        match keep {
            Some(record) => fresh.push((name.to_string(), Some(record))),
            None if found.is_some() => fresh.push((name.to_string(), None)),
            None => {}
        }
        out.push(entry);
    }
    if let (Some(file), false) = (file, fresh.is_empty()) {
        save(&file, container, opened.as_ref(), stored.as_ref(), fresh);
    }
    out
}

/// The name of a session's directory (the key of its catalog record).
fn dir_name(s: &SessionRef) -> &str {
    s.dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
}

/// A central session with `unattributed` decided by its record files: a lone sudo session
/// (only `sudo-*` files) or a login session (see [`crate::store::Tree::sessions_unclassified`]).
fn classified(s: &SessionRef, files: &[(FileKind, &str)]) -> SessionRef {
    let mut s = s.clone();
    if s.host.is_some() {
        s.unattributed = !files.is_empty() && files.iter().all(|(k, _)| *k == FileKind::Sudo);
    }
    s
}

/// Reads one session: its summary and its chains' verdict, and the catalog record for it
/// when it is closed and nothing changed while it was read.
fn read_afresh(s: &SessionRef, this_host: &str) -> (Entry, Option<Vec<u8>>) {
    let before = Identity::of(&s.dir);
    let listed = session_files(&s.dir).unwrap_or_default();
    let kinds: Vec<(FileKind, &str)> = listed.iter().map(|(k, n, _)| (*k, n.as_str())).collect();
    let s = &classified(s, &kinds);
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
                && a.settled()
                && summary.state == State::Closed
                && summary.open_channels.is_empty()
                && !r.live
                && crate::verdict_cache::session_closed(r) =>
        {
            encode(dir_name(s), a, &summary, r, &s.dir)
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
/// identities mean the same files, unchanged (anything derived from them may be reused), when
/// the first was taken [`Identity::settled`].
#[derive(Debug, Clone, PartialEq, Eq)]
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

    /// The directory and every file last changed long enough ago for their times to show
    /// any later change (see [`crate::verdict_cache::SETTLE_NS`]).
    pub fn settled(&self) -> bool {
        use crate::verdict_cache::settled;
        settled(self.dir[4], self.dir[5]) && self.files.iter().all(|(_, k)| settled(k[5], k[6]))
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

/// The catalog record of a session: its identity, summary and chain problems.
fn encode(
    name: &str,
    id: &Identity,
    s: &Summary,
    r: &SessionResult,
    dir: &Path,
) -> Option<Vec<u8>> {
    format::record(name, |w| {
        w.keys(&id.dir);
        w.count(id.files.len())?;
        for (file, key) in &id.files {
            w.str(file)?;
            w.keys(key);
        }
        w.i64(s.start_us);
        w.opt_i64(s.end_us);
        for text in [&s.host, &s.user, &s.actor, &s.actor_source] {
            w.str(text)?;
        }
        w.u8(match s.verified {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        });
        w.str(&s.src_ip)?;
        w.opt_u64(s.src_port);
        for n in [s.channels, s.transfers, s.forwards, s.sudo] {
            w.u32(n);
        }
        w.count(s.kinds.len())?;
        for k in &s.kinds {
            w.str(k)?;
        }
        w.opt_str(s.command.as_deref())?;
        w.opt_str(s.exit.as_deref())?;
        w.opt_u64(s.execs);
        w.opt_u64(s.connects);
        // Summary problems (a closed session can still have some, e.g. an unreadable line).
        w.count(s.problems.len())?;
        for p in &s.problems {
            w.str(p)?;
        }
        // Chain problems, each file relative to the session directory when inside it.
        w.count(r.problems.len())?;
        for p in &r.problems {
            let file = match p.file.strip_prefix(dir) {
                Ok(rel) if !rel.as_os_str().is_empty() => rel.to_str()?.to_string(),
                _ => p.file.to_str()?.to_string(),
            };
            w.str(&file)?;
            w.u64(p.line);
            w.u8(u8::from(p.severity == Severity::Broken));
            w.str(&p.text)?;
        }
        Some(())
    })
}

/// The entry of a catalog record when the session directory and its record files are still
/// the ones catalogued (looked up from the open directory that holds the session, when there
/// is one); `None` when anything differs or the record is not readable.
fn current_entry(
    rec: format::Record<'_>,
    s: &SessionRef,
    container: Option<&fs::File>,
) -> Option<Entry> {
    let mut r = format::Reader::new(rec.body);
    let rel: &Path = match container {
        Some(_) => Path::new(rec.name),
        None => &s.dir,
    };
    let dir: [i64; 6] = r.keys()?;
    if !lstat(container, rel).is_some_and(|d| is_dir(&d) && dir_key(&d) == dir) {
        return None;
    }
    let mut path = rel.to_path_buf();
    let mut kinds = Vec::with_capacity(4);
    let mut newest_us = None;
    for _ in 0..r.count(4 + 7 * 8)? {
        let name = r.str()?;
        let key: [i64; 7] = r.keys()?;
        path.push(name);
        let same = lstat(container, &path).is_some_and(|m| is_file(&m) && file_key(&m) == key);
        path.pop();
        if !same {
            return None;
        }
        let logical = sessrec_core::stored::logical_name(name)?;
        kinds.push((crate::store::classify(logical)?, logical));
        newest_us = newest_us.max(Some(key[3] * 1_000_000 + key[4] / 1000));
    }
    let has_session_file = kinds.iter().any(|(k, _)| *k == FileKind::Session);
    let session = classified(s, &kinds);
    let start_us = r.i64()?;
    let end_us = r.opt_i64()?;
    let (host, user, actor, actor_source) = (r.string()?, r.string()?, r.string()?, r.string()?);
    let verified = match r.u8()? {
        0 => None,
        1 => Some(false),
        2 => Some(true),
        _ => return None,
    };
    let src_ip = r.string()?;
    let src_port = r.opt_u64()?;
    let (channels, transfers, forwards, sudo) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
    let kinds = (0..r.count(4)?)
        .map(|_| r.string())
        .collect::<Option<Vec<_>>>()?;
    let command = r.opt_string()?;
    let exit = r.opt_string()?;
    let execs = r.opt_u64()?;
    let connects = r.opt_u64()?;
    let notes = (0..r.count(4)?)
        .map(|_| r.string())
        .collect::<Option<Vec<_>>>()?;
    let problems = (0..r.count(4 + 8 + 1 + 4)?)
        .map(|_| {
            let file = r.str()?;
            let line = r.u64()?;
            let broken = r.u8()?;
            let text = r.string()?;
            Some(Problem {
                file: if Path::new(file).is_absolute() {
                    PathBuf::from(file)
                } else {
                    s.dir.join(file)
                },
                line,
                severity: match broken {
                    0 => Severity::Incomplete,
                    1 => Severity::Broken,
                    _ => return None,
                },
                text,
                cut_short: false,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    if !r.is_empty() {
        return None;
    }
    let summary = Summary {
        session,
        start_us,
        end_us,
        host,
        user,
        actor,
        actor_source,
        verified,
        src_ip,
        src_port,
        channels,
        transfers,
        forwards,
        sudo,
        kinds,
        command,
        exit,
        execs,
        connects,
        state: State::Closed,
        problems: notes,
        open_channels: Vec::new(),
    };
    Some(Entry {
        summary,
        check: Check::Verified(SessionResult {
            files: Vec::new(),
            live: false,
            problems,
        }),
        newest_us,
        has_session_file,
    })
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

/// A catalog file; `None` when it is missing, not trusted, of another version, or not
/// readable as a whole.
fn load(path: &Path) -> Option<format::CatalogFile> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let m = f.metadata().ok()?;
    if !m.is_file() || !owned_and_private(&m) || m.len() > MAX_FILE {
        return None;
    }
    let mut bytes = Vec::with_capacity(m.len() as usize);
    f.take(MAX_FILE).read_to_end(&mut bytes).ok()?;
    format::CatalogFile::parse(bytes, sessrec_core::VERSION)
}

/// Writes a directory's catalog file (to a temporary name, renamed into place): the records
/// of `stored` as they were, except those `fresh` replaces or drops and those of session
/// directories no longer there, plus the new ones. Any failure just leaves the catalog
/// without it.
fn save(
    path: &Path,
    container: &Path,
    opened: Option<&fs::File>,
    stored: Option<&format::CatalogFile>,
    fresh: Vec<(String, Option<Vec<u8>>)>,
) {
    let mut records: Vec<(&str, &[u8])> = Vec::new();
    let replaced: std::collections::HashSet<&str> = fresh.iter().map(|(n, _)| n.as_str()).collect();
    if let Some(f) = stored {
        for i in 0..f.len() {
            let rec = f.record(i);
            // Records of sessions not asked for this time stay while their directory exists.
            let exists = match opened {
                Some(at) => lstat(Some(at), Path::new(rec.name)).is_some_and(|m| is_dir(&m)),
                None => container.join(rec.name).is_dir(),
            };
            if !replaced.contains(rec.name) && exists {
                records.push((rec.name, rec.raw));
            }
        }
    }
    records.extend(
        fresh
            .iter()
            .filter_map(|(n, r)| Some((n.as_str(), r.as_deref()?))),
    );
    records.sort_by(|a, b| a.0.cmp(b.0));
    records.dedup_by(|a, b| a.0 == b.0);
    let raw: Vec<&[u8]> = records.iter().map(|(_, r)| *r).collect();
    let Some(body) = format::file(sessrec_core::VERSION, &raw) else {
        return;
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use sessrec_core::id::SessionId;
    use sessrec_core::testing::synth::SynthSession;
    use sessrec_core::testing::TempDir;
    use std::time::{Duration, SystemTime};

    const HOST: &str = "central.test";

    /// A closed session recorded on `host`, filed under `<root>/<host>/<id>/`.
    fn session_on(root: &Path, stage: &Path, host: &str, word: &str) -> SessionRef {
        let id = SessionId::new().unwrap();
        let mut s =
            SynthSession::login_on(host, stage, id, "srt-ops", "ops@example.com", "203.0.113.9")
                .unwrap();
        let mut ch = s.channel("shell", "pty", None).unwrap();
        let mut t = 100_000;
        ch.typed(&mut t, "$ ", &format!("echo {word}"), &format!("{word}\n"))
            .unwrap();
        s.finished(ch, 0).unwrap();
        let mut ch = s.channel("exec", "pipe", Some("uptime")).unwrap();
        ch.output(1000, format!("{word} up\n").as_bytes()).unwrap();
        s.finished(ch, 0).unwrap();
        let dir = s.logout().unwrap();
        let target = root.join(host).join(id.to_string());
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::rename(&dir, &target).unwrap();
        SessionRef {
            id: id.to_string(),
            dir: target,
            unattributed: false,
            start_hint_us: id.unix_millis() as i64 * 1000,
            host: Some(host.to_string()),
        }
    }

    /// What a view shows of an entry: its summary and its verdict.
    fn shown(e: &Entry) -> String {
        let v = e.verdict(&e.summary.session, None);
        format!("{:?}\n{} {:?}", e.summary, v.word(), v.problems)
    }

    /// Waits until every change made so far is old enough to be catalogued.
    fn settle() {
        std::thread::sleep(Duration::from_nanos(
            crate::verdict_cache::SETTLE_NS as u64 + 100_000_000,
        ));
    }

    fn catalogued(root: &Path, s: &SessionRef) -> bool {
        let file = CacheDir::open(root)
            .unwrap()
            .file_for(root, s.dir.parent().unwrap());
        load(&file).is_some_and(|f| f.find(dir_name(s)).is_some())
    }

    /// Same length, same modification time, other bytes.
    fn edit_keeping_size_and_mtime(file: &Path, from: &str, to: &str) {
        let before = fs::metadata(file).unwrap();
        let body = fs::read_to_string(file).unwrap();
        let edited = body.replacen(from, to, 1);
        assert_eq!(edited.len(), body.len());
        assert_ne!(edited, body);
        fs::write(file, edited).unwrap();
        set_mtime(file, before.modified().unwrap());
    }

    fn set_mtime(file: &Path, t: SystemTime) {
        fs::File::options()
            .write(true)
            .open(file)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn every_change_to_a_catalogued_session_is_seen() {
        let t = TempDir::new("catalog-changes");
        let (root, stage) = (t.join("central"), t.join("stage"));
        let host = "b1.example.net";
        type Change = Box<dyn Fn(&Path)>;
        let changes: Vec<(&str, Change)> = vec![
            (
                "an edited line, same size and mtime",
                Box::new(|d: &Path| {
                    edit_keeping_size_and_mtime(&d.join("channel-1.jsonl"), "needle", "noodle")
                }),
            ),
            (
                "a truncated file",
                Box::new(|d: &Path| {
                    let f = d.join("channel-1.jsonl");
                    let len = fs::metadata(&f).unwrap().len();
                    fs::File::options()
                        .write(true)
                        .open(&f)
                        .unwrap()
                        .set_len(len / 2)
                        .unwrap();
                }),
            ),
            (
                "a file replaced by an edited copy of the same size and mtime",
                Box::new(|d: &Path| {
                    let f = d.join("channel-2.jsonl");
                    let copy = d.join("copy.tmp");
                    fs::copy(&f, &copy).unwrap();
                    edit_keeping_size_and_mtime(&copy, "needle", "noodle");
                    fs::rename(&copy, &f).unwrap();
                }),
            ),
            (
                "a new channel file",
                Box::new(|d: &Path| {
                    fs::copy(d.join("channel-1.jsonl"), d.join("channel-3.jsonl")).unwrap();
                }),
            ),
            (
                "a removed channel file",
                Box::new(|d: &Path| fs::remove_file(d.join("channel-2.jsonl")).unwrap()),
            ),
            (
                "the session directory replaced by an edited copy",
                Box::new(|d: &Path| {
                    let old = d.with_extension("old");
                    fs::rename(d, &old).unwrap();
                    fs::create_dir(d).unwrap();
                    for e in fs::read_dir(&old).unwrap() {
                        let e = e.unwrap();
                        if e.file_name() != crate::verdict_cache::ENTRY {
                            fs::copy(e.path(), d.join(e.file_name())).unwrap();
                        }
                    }
                    edit_keeping_size_and_mtime(
                        &d.join("session.jsonl"),
                        "203.0.113.9",
                        "203.0.113.8",
                    );
                }),
            ),
        ];
        let sessions: Vec<SessionRef> = changes
            .iter()
            .map(|_| session_on(&root, &stage, host, "needle"))
            .collect();
        // The first survey keeps each verdict, the next (once the verdict files have
        // settled) the catalog, which then answers.
        settle();
        survey(&root, &sessions, HOST);
        settle();
        survey(&root, &sessions, HOST);
        let before = survey(&root, &sessions, HOST);
        for (s, e) in sessions.iter().zip(&before) {
            assert!(catalogued(&root, s), "{}", s.id);
            assert_eq!(e.verdict(s, None).word(), "verified", "{}", shown(e));
            assert_eq!(e.summary.state, State::Closed);
        }
        // The verdict cache is out of the way (its entries unreadable, rewritten in place so
        // that the directories stay as catalogued): only the catalog could answer stale.
        for s in &sessions {
            fs::write(s.dir.join(crate::verdict_cache::ENTRY), "not a verdict").unwrap();
        }
        for (s, e) in sessions.iter().zip(&survey(&root, &sessions, HOST)) {
            assert!(catalogued(&root, s));
            assert_eq!(e.verdict(s, None).word(), "verified", "{}", shown(e));
        }
        for (((what, change), s), earlier) in changes.iter().zip(&sessions).zip(&before) {
            change(&s.dir);
            let surveyed = &survey(&root, std::slice::from_ref(s), HOST)[0];
            let fresh = read_afresh(s, HOST).0;
            assert_eq!(shown(surveyed), shown(&fresh), "{what}");
            assert_ne!(shown(surveyed), shown(earlier), "{what}: the change shows");
        }
    }

    #[test]
    fn a_catalog_another_user_could_write_is_not_believed() {
        let t = TempDir::new("catalog-forged");
        let (root, stage) = (t.join("central"), t.join("stage"));
        let s = session_on(&root, &stage, "b2.example.net", "needle");
        edit_keeping_size_and_mtime(&s.dir.join("channel-1.jsonl"), "needle", "noodle");
        settle();
        let first = &survey(&root, std::slice::from_ref(&s), HOST)[0];
        assert!(first.verdict(&s, None).is_damaged());
        settle();
        survey(&root, std::slice::from_ref(&s), HOST);
        assert!(catalogued(&root, &s));

        // A forged record: the session as it is now, its damage left out.
        let file = CacheDir::open(&root)
            .unwrap()
            .file_for(&root, s.dir.parent().unwrap());
        let stored = load(&file).unwrap();
        let kept = current_entry(stored.record(0), &s, None).unwrap();
        let forged = encode(
            dir_name(&s),
            &Identity::of(&s.dir).unwrap(),
            &kept.summary,
            &SessionResult::default(),
            &s.dir,
        )
        .unwrap();
        let forge = |mode: u32| {
            let _ = fs::remove_file(&file);
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&file)
                .unwrap()
                .write_all(&format::file(sessrec_core::VERSION, &[&forged]).unwrap())
                .unwrap();
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();
            survey(&root, std::slice::from_ref(&s), HOST).remove(0)
        };
        // Written by the reading user alone, it is believed (what the owner writes, the
        // owner could write into the records too) ...
        assert_eq!(forge(0o600).verdict(&s, None).word(), "verified");
        // ... but not when anyone else could have written it.
        assert!(forge(0o620).verdict(&s, None).is_damaged());
        assert!(forge(0o602).verdict(&s, None).is_damaged());
    }

    #[test]
    fn a_session_changed_moments_ago_is_not_catalogued() {
        let t = TempDir::new("catalog-racy");
        let (root, stage) = (t.join("central"), t.join("stage"));
        let s = session_on(&root, &stage, "b3.example.net", "needle");
        // Its files were written just now: a change within the same clock tick would leave
        // their times as they are, so neither the verdict nor the catalog keeps it yet.
        let e = &survey(&root, std::slice::from_ref(&s), HOST)[0];
        assert_eq!(e.verdict(&s, None).word(), "verified");
        assert!(!s.dir.join(crate::verdict_cache::ENTRY).exists());
        assert!(!catalogued(&root, &s));
        settle();
        survey(&root, std::slice::from_ref(&s), HOST);
        assert!(s.dir.join(crate::verdict_cache::ENTRY).exists());
    }
}
