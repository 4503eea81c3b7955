//! `sessrec receive`: the central archive's writer, run by rsyslog's omprog (see
//! packaging/shippers/rsyslog/sessrec-receive.conf). Each record line that arrives on stdin is
//! filed as `<dir>/<host>/<session>/<file>` (heartbeats as `<dir>/<host>/heartbeat/<file>`),
//! byte for byte, and confirmed with `OK` only once it is in the file.
//!
//! Delivery over RELP is at least once: when the receiver dies between writing a line and
//! acknowledging it, the sender sends it again. Every line names its file and carries the
//! file's `seq`, so a line whose `seq` the file already holds is a repeat and is dropped when it
//! is byte for byte the line already filed. A line claiming a `seq` already filed with other
//! content is never dropped and never interleaved into the file: it goes to `rejected.log`
//! with the reason, as does anything that is not a record line. A `seq` beyond the next one is
//! filed (the gap is what `sessrec hosts` reports).
#![forbid(unsafe_code)]

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde_json::{Map, Value};
use sessrec_core::schema::Header;
use sha2::{Digest, Sha256};

use crate::central::is_host_dir_name;
use crate::context::{exit, CmdResult, Context, Failure};

/// Where lines that cannot be filed go, with the reason, under the archive's root.
pub const REJECTED_FILE: &str = "rejected.log";
/// Held while receiving: one writer per archive, or repeats would go unseen.
const LOCK_FILE: &str = ".receive.lock";
/// The longest line accepted (the shipped configurations' `maxMessageSize`).
const MAX_LINE: usize = 128 * 1024;
/// How many recent lines per file are remembered to recognise repeats (RELP resends at most
/// its window, 128 messages by default, after a reconnect).
const RECENT_LINES: usize = 1024;
/// Files kept open at once.
const OPEN_FILES: usize = 256;
/// How much of an existing file's end is read to learn its recent lines when it is reopened.
const TAIL_BYTES: u64 = 4 * 1024 * 1024;

/// A filed record file: its descriptor and what it holds last.
struct Filed {
    file: File,
    /// `seq` → SHA-256 of the line, for the most recent lines in file order.
    recent: VecDeque<(u64, [u8; 32])>,
    last_seq: Option<u64>,
    last_use: u64,
}

/// What became of one received line.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Filed,
    Repeat,
    Rejected(String),
}

/// The archive being written.
pub struct Receiver {
    root: PathBuf,
    open: HashMap<PathBuf, Filed>,
    uses: u64,
    rejected: Option<File>,
}

impl Receiver {
    pub fn new(root: &Path) -> Receiver {
        Receiver {
            root: root.to_path_buf(),
            open: HashMap::new(),
            uses: 0,
            rejected: None,
        }
    }

    /// Files one line (without its newline). An `Err` means nothing was filed or rejected and
    /// the line must be delivered again.
    pub fn receive(&mut self, line: &[u8]) -> io::Result<Outcome> {
        let path = match self.destination(line) {
            Ok(p) => p,
            Err(reason) => return self.reject(&reason, line),
        };
        let seq = seq_of(line);
        let digest: [u8; 32] = Sha256::digest(line).into();
        self.uses += 1;
        let uses = self.uses;
        if !self.open.contains_key(&path) && !path.exists() {
            let compressed = sessrec_core::stored::compressed_path(&path);
            if compressed.exists() {
                // Compressed at rest: the session was closed long ago, so only a repeat can
                // still arrive; anything else must not start a second, plain copy.
                let content = sessrec_core::stored::read(&compressed)?;
                if content.split(|&b| b == b'\n').any(|l| l == line) {
                    return Ok(Outcome::Repeat);
                }
                let reason = format!("{}: arrived after the file was compressed", path.display());
                return self.reject(&reason, line);
            }
        }
        if !self.open.contains_key(&path) {
            self.make_room();
            let filed = open_filed(&path)?;
            self.open.insert(path.clone(), filed);
        }
        let filed = self.open.get_mut(&path).expect("just inserted");
        filed.last_use = uses;
        if let (Some(seq), Some(last)) = (seq, filed.last_seq) {
            if seq <= last {
                return match filed.recent.iter().find(|(s, _)| *s == seq) {
                    Some((_, d)) if *d == digest => Ok(Outcome::Repeat),
                    Some(_) => {
                        let reason = format!(
                            "{}: seq {seq} is already filed with other content",
                            path.display()
                        );
                        self.reject(&reason, line)
                    }
                    None => {
                        let reason = format!(
                            "{}: seq {seq} comes after seq {last} and is too old to compare",
                            path.display()
                        );
                        self.reject(&reason, line)
                    }
                };
            }
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        // One write of the whole line: a reader never sees half of it from us.
        filed.file.write_all(&buf)?;
        if let Some(seq) = seq {
            filed.last_seq = Some(seq);
            remember(&mut filed.recent, seq, digest);
        }
        Ok(Outcome::Filed)
    }

    /// `<root>/<host>/<session>/<file>`, or `<root>/<host>/heartbeat/<file>` for heartbeats.
    fn destination(&self, line: &[u8]) -> Result<PathBuf, String> {
        let mut map: Map<String, Value> =
            serde_json::from_slice(line).map_err(|e| format!("not a record line: {e}"))?;
        let header = Header::take_from(&mut map);
        let (Some(host), Some(session), Some(file)) = (header.host, header.session, header.file)
        else {
            return Err("the line does not name its host, session and file".into());
        };
        if !is_host_dir_name(&host) {
            return Err("the host is not a host name".into());
        }
        if !is_component(&session) || !is_component(&file) || !file.ends_with(".jsonl") {
            return Err("the session or file is not a plain name".into());
        }
        let host_dir = self.root.join(&host);
        Ok(if file.starts_with("heartbeat-") {
            host_dir.join(crate::heartbeat::CENTRAL_DIR).join(file)
        } else {
            host_dir.join(session).join(file)
        })
    }

    fn make_room(&mut self) {
        while self.open.len() >= OPEN_FILES {
            let Some(oldest) = self
                .open
                .iter()
                .min_by_key(|(_, f)| f.last_use)
                .map(|(p, _)| p.clone())
            else {
                return;
            };
            self.open.remove(&oldest);
        }
    }

    /// Keeps a line that cannot be filed in `rejected.log`, escaped, with the reason.
    fn reject(&mut self, reason: &str, line: &[u8]) -> io::Result<Outcome> {
        if self.rejected.is_none() {
            self.rejected = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(self.root.join(REJECTED_FILE))?,
            );
        }
        let shown = String::from_utf8_lossy(line);
        let entry = format!(
            "{} {}\n",
            crate::escape::escape_control(reason),
            crate::escape::escape_control(&shown)
        );
        self.rejected
            .as_mut()
            .expect("opened above")
            .write_all(entry.as_bytes())?;
        Ok(Outcome::Rejected(reason.to_string()))
    }
}

fn remember(recent: &mut VecDeque<(u64, [u8; 32])>, seq: u64, digest: [u8; 32]) {
    if recent.len() == RECENT_LINES {
        recent.pop_front();
    }
    recent.push_back((seq, digest));
}

/// A single path component a receiver may create: no separators, not hidden, bounded.
fn is_component(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

fn seq_of(line: &[u8]) -> Option<u64> {
    let mut map: Map<String, Value> = serde_json::from_slice(line).ok()?;
    Header::take_from(&mut map).seq
}

/// Opens (creating) a filed record file for appending and learns its last lines from its end.
fn open_filed(path: &Path) -> io::Result<Filed> {
    if let Some(parent) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    (&file).take(len - start).read_to_end(&mut tail)?;
    if !tail.is_empty() && tail.last() != Some(&b'\n') {
        // A line cut short (the machine stopped mid-write): end it, so the next line stands
        // on its own; verify reports the cut line.
        file.write_all(b"\n")?;
    }
    let mut lines: Vec<&[u8]> = tail.split(|&b| b == b'\n').collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // probably a partial line
    }
    let mut recent = VecDeque::new();
    let mut last_seq = None;
    for line in lines.into_iter().filter(|l| !l.is_empty()) {
        if let Some(seq) = seq_of(line) {
            last_seq = Some(seq);
            remember(&mut recent, seq, Sha256::digest(line).into());
        }
    }
    Ok(Filed {
        file,
        recent,
        last_seq,
        last_use: 0,
    })
}

/// Reads one line of at most `MAX_LINE` bytes; a longer one is returned cut, flagged.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Option<bool>> {
    buf.clear();
    let n = input
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Some(true));
    }
    if buf.len() > MAX_LINE {
        // Skip the rest of the overlong line.
        let mut rest = Vec::new();
        loop {
            rest.clear();
            let m = input
                .by_ref()
                .take(64 * 1024)
                .read_until(b'\n', &mut rest)?;
            if m == 0 || rest.last() == Some(&b'\n') {
                break;
            }
        }
        return Ok(Some(false));
    }
    // End of input without a newline: the line is whole as far as anyone can tell.
    Ok(Some(true))
}

pub fn run(ctx: &Context) -> CmdResult {
    let root = ctx.tree.root.clone();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&root)
        .map_err(|e| Failure::error(format!("{}: {e}", root.display())))?;
    let lock_path = root.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| Failure::error(format!("{}: {e}", lock_path.display())))?;
    let _lock = match Flock::lock(lock, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((lock, _)) => {
            // The previous receiver (rsyslog restarted it) may still be writing its last line.
            eprintln!(
                "sessrec receive: waiting for the receiver already writing {}",
                root.display()
            );
            Flock::lock(lock, FlockArg::LockExclusive)
                .map_err(|(_, e)| Failure::error(format!("{}: {e}", lock_path.display())))?
        }
    };

    let mut receiver = Receiver::new(&root);
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    // omprog (confirmMessages="on") waits for this before sending the first line.
    let confirm = |out: &mut io::StdoutLock, text: &str| -> Result<(), Failure> {
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| Failure::error(format!("stdout: {e}")))
    };
    confirm(&mut out, "OK\n")?;
    let mut buf = Vec::new();
    loop {
        let whole = match read_line(&mut input, &mut buf) {
            Ok(Some(whole)) => whole,
            Ok(None) => break,
            Err(e) => return Err(Failure::error(format!("stdin: {e}"))),
        };
        let outcome = if whole {
            receiver.receive(&buf)
        } else {
            receiver.reject(&format!("line longer than {MAX_LINE} bytes"), &buf)
        };
        match outcome {
            Ok(_) => confirm(&mut out, "OK\n")?,
            // Anything but OK makes rsyslog keep the line and send it again later.
            Err(e) => confirm(
                &mut out,
                &format!(
                    "error filing a line: {}\n",
                    crate::escape::escape_control(&e.to_string())
                ),
            )?,
        }
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(host: &str, session: &str, file: &str, seq: u64, text: &str) -> Vec<u8> {
        let mut map = Map::new();
        map.insert(sessrec_core::schema::header_key::SEQ.into(), seq.into());
        map.insert(sessrec_core::schema::header_key::HOST.into(), host.into());
        map.insert(
            sessrec_core::schema::header_key::SESSION.into(),
            session.into(),
        );
        map.insert(sessrec_core::schema::header_key::FILE.into(), file.into());
        map.insert("payload".into(), text.into());
        serde_json::to_vec(&Value::Object(map)).unwrap()
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sessrec-receive-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn repeats_are_dropped_and_conflicts_rejected_across_restarts() {
        let root = scratch("repeats");
        let sid = "0192b3c4-0000-7000-8000-000000000001";
        let l: Vec<Vec<u8>> = (1..=4)
            .map(|i| line("b1", sid, "channel-1.jsonl", i, &format!("line {i}")))
            .collect();
        let mut r = Receiver::new(&root);
        assert_eq!(r.receive(&l[0]).unwrap(), Outcome::Filed);
        assert_eq!(r.receive(&l[1]).unwrap(), Outcome::Filed);
        assert_eq!(r.receive(&l[1]).unwrap(), Outcome::Repeat);
        // A new receiver (the old one was killed) learns the file's end from the file.
        drop(r);
        let mut r = Receiver::new(&root);
        assert_eq!(r.receive(&l[0]).unwrap(), Outcome::Repeat);
        assert_eq!(r.receive(&l[1]).unwrap(), Outcome::Repeat);
        let forged = line("b1", sid, "channel-1.jsonl", 2, "other");
        assert!(matches!(r.receive(&forged).unwrap(), Outcome::Rejected(_)));
        assert_eq!(r.receive(&l[2]).unwrap(), Outcome::Filed);
        assert_eq!(r.receive(&l[3]).unwrap(), Outcome::Filed);
        let filed = fs::read(root.join("b1").join(sid).join("channel-1.jsonl")).unwrap();
        let want: Vec<u8> = l
            .iter()
            .flat_map(|x| [x.as_slice(), b"\n"].concat())
            .collect();
        assert_eq!(filed, want);
        let rejected = fs::read_to_string(root.join(REJECTED_FILE)).unwrap();
        assert!(
            rejected.contains("seq 2 is already filed with other content"),
            "{rejected}"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn names_that_would_leave_the_tree_are_rejected() {
        let root = scratch("names");
        let mut r = Receiver::new(&root);
        for (host, session, file) in [
            ("..", "s", "a.jsonl"),
            ("b1", "../x", "a.jsonl"),
            ("b1", "s", "../../etc/passwd.jsonl"),
            ("b1", "s", "a.txt"),
            ("b1", ".hidden", "a.jsonl"),
        ] {
            let out = r.receive(&line(host, session, file, 1, "x")).unwrap();
            assert!(
                matches!(out, Outcome::Rejected(_)),
                "{host} {session} {file}"
            );
        }
        assert!(matches!(
            r.receive(b"not json").unwrap(),
            Outcome::Rejected(_)
        ));
        let entries: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(entries, vec![std::ffi::OsString::from(REJECTED_FILE)]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_compressed_file_gets_no_plain_twin() {
        let root = scratch("compressed");
        let sid = "0192b3c4-0000-7000-8000-000000000002";
        let l1 = line("b1", sid, "channel-1.jsonl", 1, "one");
        let mut r = Receiver::new(&root);
        assert_eq!(r.receive(&l1).unwrap(), Outcome::Filed);
        drop(r);
        let plain = root.join("b1").join(sid).join("channel-1.jsonl");
        sessrec_core::stored::compress_in_place(&plain).unwrap();
        let mut r = Receiver::new(&root);
        assert_eq!(r.receive(&l1).unwrap(), Outcome::Repeat);
        let late = line("b1", sid, "channel-1.jsonl", 2, "two");
        assert!(matches!(r.receive(&late).unwrap(), Outcome::Rejected(_)));
        assert!(!plain.exists());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn heartbeats_are_filed_beside_the_sessions() {
        let root = scratch("beats");
        let mut r = Receiver::new(&root);
        let beat = line("b1", "host", "heartbeat-2026-12-07.jsonl", 1, "beat");
        assert_eq!(r.receive(&beat).unwrap(), Outcome::Filed);
        assert!(root
            .join("b1/heartbeat/heartbeat-2026-12-07.jsonl")
            .is_file());
        fs::remove_dir_all(&root).unwrap();
    }
}
