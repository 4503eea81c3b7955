//! What the writer needs besides the event types: a file's fixed header values (the event
//! types and the stream codes of I/O are in [`crate::schema`]).
#![forbid(unsafe_code)]

use crate::id::SessionId;

pub use crate::schema::{Stream, HEADER_KEYS, SCHEMA_VERSION};

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
