//! Where the import stands, saved after every pass (atomically, with the shared machinery of
//! sessrec-core) so that a restart writes every audit event exactly once: the log position up
//! to which every event is written, the events already written past it, each session file's
//! length, the process tree, the loss counter last seen, and the connections still open.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sessrec_core::import::resume::ResumePoint;
use sessrec_core::import::store;

use crate::closes::OpenConnect;
use crate::tree::Tree;

const STATE_VERSION: u32 = 1;

/// A place in one log file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Where the file was (it moves when rotated).
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    /// The file's first line, to tell it from a later file that reused the inode.
    pub head: String,
    /// Every event that starts before this offset is written.
    pub offset: u64,
}

/// The kernel's lost counter when last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostMark {
    pub value: u64,
    pub at_us: i64,
}

/// auditd said it stopped (DAEMON_END or DAEMON_ABORT) and has not said it started again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonDown {
    pub kind: String,
    pub at_us: i64,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    version: u32,
    pub position: Option<Position>,
    /// Events written that start at or after `position.offset`: id → offset of their first
    /// record.
    #[serde(default)]
    pub done_after: BTreeMap<String, u64>,
    /// Each session's audit.jsonl, by session id.
    #[serde(default)]
    pub files: BTreeMap<String, ResumePoint>,
    #[serde(default)]
    pub tree: Tree,
    #[serde(default)]
    pub lost: Option<LostMark>,
    #[serde(default)]
    pub daemon_down: Option<DaemonDown>,
    /// The time of the last event read.
    #[serde(default)]
    pub last_event_us: Option<i64>,
    /// Connections whose sockets were open at the last pass, by kernel socket cookie: their
    /// `connect.end` is still to be written.
    #[serde(default)]
    pub open_connects: BTreeMap<String, OpenConnect>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: STATE_VERSION,
            position: None,
            done_after: BTreeMap::new(),
            files: BTreeMap::new(),
            tree: Tree::default(),
            lost: None,
            daemon_down: None,
            last_event_us: None,
            open_connects: BTreeMap::new(),
        }
    }
}

impl State {
    /// Reads the state; a missing file is an empty state, a damaged one an error.
    pub fn load(path: &Path) -> io::Result<State> {
        store::load_versioned(path, STATE_VERSION, |s: &State| s.version)
    }

    pub fn save(&self, path: &Path) -> io::Result<()> {
        store::save(path, self)
    }
}
