//! A cache of chain verdicts for closed sessions whose files have not changed, so that views
//! over many sessions (`list`, `hosts`) need not re-hash every chain on every run. `verify`
//! never uses it: asked to verify, it always reads every byte.
//!
//! Soundness. An entry is used only if every record file of the session is the same file with
//! the same bytes as when it was verified, judged by:
//! - device, inode, size, mtime and **ctime** (nanoseconds). A user can set mtime back with
//!   `touch`/`utimensat`, but not ctime: the kernel sets it to the current time on every
//!   write, truncate, chmod, rename or utimes, and no system call sets it to a chosen value.
//!   Only moving the system clock (root) could reproduce one — and root can rewrite a whole
//!   chain anyway, which only anchors that left the host can catch; anchors are always
//!   checked afresh.
//! - the SHA-256 of the file's last line, read on every use, as a second witness that the
//!   end of the chain is the one verified.
//! - the set of record files in the directory (a file added or removed changes it).
//!
//! Only sessions that were verified complete (not live, nothing missing) are stored: an open
//! session keeps changing. The entry is `.verdict.json` in the session directory itself (no
//! shipper glob matches it; `prune` removes it with the session), used only if it is owned by
//! the reading user and writable by no one else: a user who could write it could write the
//! records. Unreadable or malformed entries are ignored and the session is verified again. The entry also records the program version, so an upgrade
//! that changes what verification checks starts afresh.
#![forbid(unsafe_code)]

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sessrec_core::chain;

use crate::store::{session_files, SessionRef};
use crate::verify::{verify_session, FileResult, Problem, SessionResult, Severity};

/// The entry's name in the session directory.
pub const ENTRY: &str = ".verdict.json";

/// The last line of a file can be at most this long for the witness (longer: no caching).
const MAX_TAIL: u64 = 256 * 1024;

/// What identifies a file's content without reading it all.
fn file_key(path: &Path) -> Option<Value> {
    let m = fs::symlink_metadata(path).ok()?;
    if !m.is_file() {
        return None;
    }
    Some(json!([
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        last_line_digest(path, m.size())?
    ]))
}

/// SHA-256 (hex) of the file's last line (from after the previous `\n` to the end).
fn last_line_digest(path: &Path, size: u64) -> Option<String> {
    let mut f = fs::File::open(path).ok()?;
    let take = size.min(MAX_TAIL);
    f.seek(SeekFrom::Start(size - take)).ok()?;
    let mut buf = Vec::with_capacity(take as usize);
    f.take(take).read_to_end(&mut buf).ok()?;
    let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
    let start = match body.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None if take == size => 0,
        None => return None,
    };
    Some(chain::to_hex(&chain::line_digest(&buf[start..])))
}

/// The key of the whole session: every record file's key, by name.
fn session_key(session: &SessionRef) -> Option<Value> {
    let files = session_files(&session.dir).ok()?;
    let mut keys = serde_json::Map::new();
    for (_, name, path) in files {
        keys.insert(name, file_key(&path)?);
    }
    Some(json!({
        "version": sessrec_core::VERSION,
        "dir": session.dir.display().to_string(),
        "files": keys,
    }))
}

fn to_json(r: &SessionResult) -> Value {
    json!({
        "live": r.live,
        "files": r.files.iter().map(|f| json!([
            f.path.display().to_string(), f.lines, f.last_seq, f.last_digest, f.last_type
        ])).collect::<Vec<_>>(),
        "problems": r.problems.iter().map(|p| json!([
            p.file.display().to_string(), p.line,
            matches!(p.severity, Severity::Broken), p.text, p.cut_short
        ])).collect::<Vec<_>>(),
    })
}

fn from_json(v: &Value) -> Option<SessionResult> {
    let mut r = SessionResult {
        live: v.get("live")?.as_bool()?,
        ..SessionResult::default()
    };
    for f in v.get("files")?.as_array()? {
        r.files.push(FileResult {
            path: PathBuf::from(f.get(0)?.as_str()?),
            lines: f.get(1)?.as_u64()?,
            last_seq: f.get(2)?.as_u64()?,
            last_digest: f.get(3)?.as_str()?.to_string(),
            last_type: f.get(4)?.as_str()?.to_string(),
        });
    }
    for p in v.get("problems")?.as_array()? {
        r.problems.push(Problem {
            file: PathBuf::from(p.get(0)?.as_str()?),
            line: p.get(1)?.as_u64()?,
            severity: if p.get(2)?.as_bool()? {
                Severity::Broken
            } else {
                Severity::Incomplete
            },
            text: p.get(3)?.as_str()?.to_string(),
            cut_short: p.get(4)?.as_bool()?,
        });
    }
    Some(r)
}

fn lookup(path: &Path, key: &Value) -> Option<SessionResult> {
    let f = fs::File::open(path).ok()?;
    let m = f.metadata().ok()?;
    if !m.is_file() || m.uid() != nix::unistd::geteuid().as_raw() || m.mode() & 0o022 != 0 {
        return None;
    }
    let mut text = String::new();
    f.take(1 << 20).read_to_string(&mut text).ok()?;
    let entry: CacheEntry = serde_json::from_str(&text).ok()?;
    (entry.key == *key)
        .then(|| from_json(&entry.result))
        .flatten()
}

/// The file's content: what the verdict was keyed by, and the verdict.
#[derive(serde::Serialize, serde::Deserialize)]
struct CacheEntry {
    key: Value,
    result: Value,
}

/// Stores an entry; any failure (read-only tree, full disk) just leaves the cache without it.
fn store(path: &Path, key: Value, result: &SessionResult) {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let entry = CacheEntry {
        key,
        result: to_json(result),
    };
    let Ok(body) = serde_json::to_string(&entry) else {
        return;
    };
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(body.as_bytes()));
    if written.is_err() || fs::rename(&tmp, path).is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

/// [`verify_session`], answered from the cache when the session is closed and unchanged.
pub fn verify_cached(session: &SessionRef, this_host: &str) -> SessionResult {
    let key = session_key(session);
    let path = session.dir.join(ENTRY);
    if let Some(k) = &key {
        if let Some(r) = lookup(&path, k) {
            return r;
        }
    }
    let result = verify_session(session, this_host);
    // Stored only if nothing changed while it was verified, and the session is closed.
    if let Some(k) = key {
        if !result.live
            && session_closed(&result)
            && session_key(session).as_ref() == Some(&k)
            && key_settled(&k)
        {
            store(&path, k, &result);
        }
    }
    result
}

/// How long after its last change a file's times are trusted to tell every later change:
/// the kernel stamps a change with a coarse clock (a tick, up to 10 ms; a second or two on
/// some file systems), so a change made within the same tick as the stat that keyed an
/// entry would leave size, mtime and ctime as keyed. An entry is made only when every
/// ctime it records is older than this (git's "racily clean" problem).
pub const SETTLE_NS: i128 = 2_000_000_000;

/// Whether a change time (`ctime` seconds and nanoseconds) is older than [`SETTLE_NS`] now.
pub fn settled(ctime_s: i64, ctime_ns: i64) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    i128::from(ctime_s) * 1_000_000_000 + i128::from(ctime_ns) + SETTLE_NS < now
}

/// Whether every file of a session key changed long enough ago (see [`SETTLE_NS`]).
fn key_settled(key: &Value) -> bool {
    key.get("files")
        .and_then(Value::as_object)
        .is_some_and(|files| {
            files.values().all(|k| {
                let ctime = |i: usize| k.get(i).and_then(Value::as_i64);
                matches!((ctime(5), ctime(6)), (Some(s), Some(ns)) if settled(s, ns))
            })
        })
}

/// A session whose writers are done: a logout was found (no "no logout" problem) and no file
/// ends mid-line. Open sessions keep being verified afresh.
pub fn session_closed(r: &SessionResult) -> bool {
    !r.problems
        .iter()
        .any(|p| p.cut_short || p.severity == Severity::Incomplete)
}
