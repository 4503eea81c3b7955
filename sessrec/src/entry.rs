//! One entry of a session's timeline, as `show` prints it and the HTML export lists it.
#![forbid(unsafe_code)]

use serde_json::Value;

/// One timeline entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub time_us: i64,
    pub file: String,
    pub kind: String,
    /// Human text (already escaped).
    pub text: String,
    pub details: Value,
    /// `name=value` of every field of the line, for `--verbose` (already escaped).
    pub verbose: Vec<String>,
}
