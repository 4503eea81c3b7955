//! What has been imported, so that re-runs import nothing twice.
//!
//! One JSON file, replaced atomically (temporary file, fsync, rename, fsync of the directory).
//! A key is the iolog directory, sudo's start time and the timing file's inode, so a sequence
//! number reused after `maxseq` wraps is a new session.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sessrec_core::import::resume::ResumePoint;
use sessrec_core::import::store;

use crate::iolog::{FileIdentity, StartTime};

const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The iolog directory.
    pub iolog: PathBuf,
    /// The record file written, relative to `record_dir`.
    pub record: PathBuf,
    /// False when imported unfinished (sudo killed, or an old sudo that never marks completion).
    pub complete: bool,
    pub imported_at: String,
}

/// A sudo session being imported while it runs (`--follow`): its record file so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveEntry {
    pub iolog: PathBuf,
    /// Timing records written so far.
    pub records_done: u64,
    /// The record file and where it stood after them.
    #[serde(flatten)]
    pub at: ResumePoint,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    version: u32,
    imported: BTreeMap<String, Entry>,
    #[serde(default)]
    live: BTreeMap<String, LiveEntry>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: STATE_VERSION,
            imported: BTreeMap::new(),
            live: BTreeMap::new(),
        }
    }
}

pub use sessrec_core::import::store::{lock, PassLock};

/// The key of one sudo session.
pub fn key(iolog: &Path, start: StartTime, timing: FileIdentity) -> String {
    format!(
        "{}.{:09} {}:{} {}",
        start.seconds,
        start.nanoseconds,
        timing.dev,
        timing.ino,
        iolog.display()
    )
}

impl State {
    /// Reads the state; a missing file is an empty state. A damaged one is an error: the
    /// operator has to look (the record files' names still prevent duplicates).
    pub fn load(path: &Path) -> io::Result<State> {
        store::load_versioned(path, STATE_VERSION, |s: &State| s.version)
    }

    /// Replaces the state file atomically.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        store::save(path, self)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.imported.contains_key(key)
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.imported.get(key)
    }

    /// Records a finished import (ending any live import of the same session).
    pub fn insert(&mut self, key: String, entry: Entry) {
        self.live.remove(&key);
        self.imported.insert(key, entry);
    }

    pub fn live(&self, key: &str) -> Option<&LiveEntry> {
        self.live.get(key)
    }

    pub fn set_live(&mut self, key: String, entry: LiveEntry) {
        self.live.insert(key, entry);
    }

    pub fn len(&self) -> usize {
        self.imported.len()
    }

    pub fn is_empty(&self) -> bool {
        self.imported.is_empty()
    }

    /// Forgets sessions whose iolog directory is gone (sudo's logs were rotated away).
    pub fn prune_missing(&mut self) -> usize {
        let before = self.imported.len();
        let live_before = self.live.len();
        self.imported
            .retain(|_, e| fs::symlink_metadata(&e.iolog).is_ok());
        self.live
            .retain(|_, e| fs::symlink_metadata(&e.iolog).is_ok());
        before - self.imported.len() + live_before - self.live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(iolog: &Path) -> Entry {
        Entry {
            iolog: iolog.to_path_buf(),
            record: PathBuf::from("2026/12/04/x/sudo-0123456789abcdef.jsonl"),
            complete: true,
            imported_at: "2026-12-04T00:00:00.000000Z".into(),
        }
    }

    #[test]
    fn wrapped_sequence_number_is_a_new_key() {
        let dir = Path::new("/var/log/sudo-io/00/00/01");
        let id = FileIdentity { dev: 1, ino: 2 };
        let first = key(
            dir,
            StartTime {
                seconds: 100,
                nanoseconds: 5,
            },
            id,
        );
        let wrapped = key(
            dir,
            StartTime {
                seconds: 900,
                nanoseconds: 5,
            },
            id,
        );
        let recreated = key(
            dir,
            StartTime {
                seconds: 100,
                nanoseconds: 5,
            },
            FileIdentity { dev: 1, ino: 3 },
        );
        assert_ne!(first, wrapped);
        assert_ne!(first, recreated);
        assert_eq!(first, "100.000000005 1:2 /var/log/sudo-io/00/00/01");
    }

    #[test]
    fn save_load_round_trip_prune_and_damage() {
        let base = std::env::temp_dir().join(format!("srt-state-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let path = base.join("lib/sudo-import.state");
        assert!(State::load(&path).unwrap().is_empty());
        let live = base.join("live");
        fs::create_dir_all(&live).unwrap();
        let mut s = State::default();
        s.insert("a".into(), entry(&live));
        s.insert("b".into(), entry(&base.join("gone")));
        s.save(&path).unwrap();
        let mut loaded = State::load(&path).unwrap();
        assert_eq!(loaded, s);
        assert_eq!(loaded.prune_missing(), 1);
        assert!(loaded.contains("a") && !loaded.contains("b"));
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(base.join("lib")).unwrap().count(), 1);
        fs::write(&path, b"{\"version\":1,\"imported\":").unwrap();
        let e = State::load(&path).unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
        fs::remove_dir_all(&base).unwrap();
    }
}
