//! What the writer needs besides the event types: a file's fixed header values and the
//! stream codes of I/O frames (the event types are in [`crate::schema`]).
#![forbid(unsafe_code)]

use crate::id::SessionId;

pub use crate::schema::{HEADER_KEYS, SCHEMA_VERSION};

/// What every line of one file repeats, so each line stands alone in a SIEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContext {
    pub host: String,
    pub session: SessionId,
    /// The file's name within its session directory, e.g. `channel-1.jsonl`.
    pub file: String,
    /// The unix user.
    pub user: String,
    /// The person, as established at login (see `login.actor_source`).
    pub actor: String,
}

/// The stream an I/O frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// What the user typed or sent (a pty's input, a pipe channel's stdin).
    Input,
    /// What the user saw (a pty's output, a pipe channel's stdout).
    Output,
    /// A pipe channel's stderr.
    Stderr,
}

impl Stream {
    pub fn code(self) -> &'static str {
        match self {
            Stream::Input => "i",
            Stream::Output => "o",
            Stream::Stderr => "e",
        }
    }

    pub fn from_code(code: &str) -> Option<Stream> {
        match code {
            "i" => Some(Stream::Input),
            "o" => Some(Stream::Output),
            "e" => Some(Stream::Stderr),
            _ => None,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Stream::Input => 0,
            Stream::Output => 1,
            Stream::Stderr => 2,
        }
    }
}
