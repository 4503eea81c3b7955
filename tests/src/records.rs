//! A private record tree and config file for one test, and helpers to find, read and verify
//! the records written into it.
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};
use sessrec_core::reader::{self, Line};
use sessrec_core::record::Stream;

use crate::util::{create_dir, keep_files, wait_until, write_file, TempDir};

/// A fresh root-owned directory `/var/lib/srt-rec-<rand>/` (0755) holding
/// - `records/` (root 0700): the `record_dir`,
/// - `sessrec.toml` (root 0644): the config, `record_dir = "<records>"` followed by the test's
///   TOML.
///
/// Removed on drop (unless `SESSREC_E2E_KEEP=1`); on a panicking test its file list is printed.
#[derive(Debug)]
pub struct RecordTree {
    dir: TempDir,
    record_dir: PathBuf,
    config_path: PathBuf,
}

impl RecordTree {
    /// Creates the tree with a config made of `record_dir = ...` plus `config_body` (TOML
    /// tables and keys, e.g. `"[recorder]\nshell = \"/bin/bash\"\n"`; top-level keys in it
    /// must come before its first table).
    pub fn new(config_body: &str) -> RecordTree {
        fs::create_dir_all("/var/lib").expect("create /var/lib");
        let dir = TempDir::new_in(Path::new("/var/lib"), "rec", 0o755);
        let record_dir = dir.join("records");
        create_dir(&record_dir, 0o700);
        let tree = RecordTree {
            config_path: dir.join("sessrec.toml"),
            record_dir,
            dir,
        };
        tree.write_config(config_body);
        tree
    }

    /// Rewrites the config file (same `record_dir` line first).
    pub fn write_config(&self, config_body: &str) {
        let text = format!(
            "record_dir = \"{}\"\n{config_body}\n",
            self.record_dir.display()
        );
        write_file(&self.config_path, text, 0o644);
    }

    /// Writes the config file verbatim (for tests of bad configs).
    pub fn write_raw_config(&self, text: &str) {
        write_file(&self.config_path, text, 0o644);
    }

    /// The root-owned directory holding `records/` and the config.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn record_dir(&self) -> &Path {
        &self.record_dir
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Session directories (`YYYY/MM/DD/<id>`, not `unattributed/`), sorted by path (ids are
    /// time-ordered).
    pub fn sessions(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for year in subdirs(&self.record_dir) {
            if !is_digits(&year, 4) {
                continue;
            }
            for month in subdirs(&year).into_iter().filter(|p| is_digits(p, 2)) {
                for day in subdirs(&month).into_iter().filter(|p| is_digits(p, 2)) {
                    found.extend(subdirs(&day));
                }
            }
        }
        found.sort();
        found
    }

    /// Waits until at least `n` session directories exist; returns them all.
    pub fn wait_sessions(&self, n: usize, timeout: Duration) -> Vec<PathBuf> {
        wait_until(
            &format!("{n} session(s) under {}", self.record_dir.display()),
            timeout,
            || self.sessions().len() >= n,
        );
        self.sessions()
    }

    /// The one session directory; panics if there are none or several.
    pub fn only_session(&self) -> PathBuf {
        let sessions = self.sessions();
        assert_eq!(
            sessions.len(),
            1,
            "expected exactly one session, found {:?}\n{}",
            sessions,
            self.listing()
        );
        sessions.into_iter().next().expect("one session")
    }

    /// Every regular file under the record dir, sorted (for messages and "nothing else was
    /// written" checks).
    pub fn all_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        walk(&self.record_dir, &mut files);
        files.sort();
        files
    }

    /// A text listing of the tree (paths relative to record_dir, with sizes).
    pub fn listing(&self) -> String {
        let mut text = format!("record tree {}:\n", self.record_dir.display());
        for f in self.all_files() {
            let size = fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
            let rel = f.strip_prefix(&self.record_dir).unwrap_or(&f);
            text.push_str(&format!("  {} ({size} bytes)\n", rel.display()));
        }
        text
    }
}

impl Drop for RecordTree {
    fn drop(&mut self) {
        if std::thread::panicking() || keep_files() {
            eprintln!("{}", self.listing());
        }
    }
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn is_digits(p: &Path, len: usize) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.len() == len && n.bytes().all(|b| b.is_ascii_digit()))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&p, out),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
}

/// `channel-N.jsonl` files of a session directory, in channel-number order.
pub fn channel_files(session_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<(u32, PathBuf)> = fs::read_dir(session_dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let n = name
                        .strip_prefix("channel-")?
                        .strip_suffix(".jsonl")?
                        .parse()
                        .ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files.into_iter().map(|(_, p)| p).collect()
}

/// Waits until the session has at least `n` channel files; returns them.
pub fn wait_channels(session_dir: &Path, n: usize, timeout: Duration) -> Vec<PathBuf> {
    wait_until(
        &format!("{n} channel file(s) in {}", session_dir.display()),
        timeout,
        || channel_files(session_dir).len() >= n,
    );
    channel_files(session_dir)
}

/// All lines of a record file, parsed; panics naming the file and line on any line that is
/// not a complete JSON object.
pub fn read_lines(path: &Path) -> Vec<Line> {
    reader::read_file(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .into_iter()
        .map(|item| {
            item.unwrap_or_else(|e| panic!("{} line {}: {}", path.display(), e.line_no, e.problem))
        })
        .collect()
}

/// The JSON objects of a record file.
pub fn read_records(path: &Path) -> Vec<Map<String, Value>> {
    read_lines(path).into_iter().map(|l| l.value).collect()
}

/// Lines of type `kind` (e.g. `"channel.start"`).
pub fn events(path: &Path, kind: &str) -> Vec<Map<String, Value>> {
    read_lines(path)
        .into_iter()
        .filter(|l| l.kind() == kind)
        .map(|l| l.value)
        .collect()
}

/// The one line of type `kind`; panics if there is not exactly one.
pub fn only_event(path: &Path, kind: &str) -> Map<String, Value> {
    let mut found = events(path, kind);
    assert_eq!(
        found.len(),
        1,
        "expected one {kind:?} line in {}, found {}",
        path.display(),
        found.len()
    );
    found.remove(0)
}

/// Checks the file's hash chain and line structure with `sessrec_core::reader::verify_file`;
/// panics listing every problem.
pub fn assert_chain_ok(path: &Path) -> reader::VerifyReport {
    let report = reader::verify_file(path)
        .unwrap_or_else(|e| panic!("cannot verify {}: {e}", path.display()));
    assert!(
        report.ok && report.problems.is_empty(),
        "chain verification of {} failed: {:?}",
        path.display(),
        report.problems
    );
    report
}

/// The concatenated bytes of every frame of `stream` (input, output or stderr) in the file,
/// in order.
pub fn stream_bytes(path: &Path, stream: Stream) -> Vec<u8> {
    let mut data = Vec::new();
    for line in read_lines(path) {
        for frame in reader::decode_frames(&line) {
            if frame.stream == stream {
                data.extend_from_slice(&frame.data);
            }
        }
    }
    data
}

/// [`stream_bytes`] as (lossy) text.
pub fn stream_text(path: &Path, stream: Stream) -> String {
    String::from_utf8_lossy(&stream_bytes(path, stream)).into_owned()
}

/// Waits until the file's last complete line is of type `kind` (e.g. `channel.end`): the
/// writer may still be draining after the client has gone.
pub fn wait_last_event(path: &Path, kind: &str, timeout: Duration) {
    wait_until(
        &format!("last line of {} to be {kind:?}", path.display()),
        timeout,
        || {
            reader::read_file(path)
                .ok()
                .and_then(|lines| lines.into_iter().rev().find_map(Result::ok))
                .is_some_and(|l| l.kind() == kind)
        },
    );
}
