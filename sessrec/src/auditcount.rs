//! How many programs and connections a session's `audit.jsonl` records, for `list`: a scan of
//! each line's start; only connect lines are parsed (to tell sshd's own forwards).
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;

use sessrec_core::schema::{Connect, Event, EventBody, Exec, Line};

/// What an `audit.jsonl` counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub execs: u64,
    pub connects: u64,
    /// Connects of the sshd session process: connections sshd forwarded (`-J`, `-W`, `-L`).
    pub sshd_forwards: u64,
}

/// Exec and connect lines of an `audit.jsonl`.
pub fn count(path: &Path) -> Counts {
    let exec = format!("\"type\":\"{}\"", Exec::TYPE);
    let connect = format!("\"type\":\"{}\"", Connect::TYPE);
    let Ok(file) = sessrec_core::stored::open(path) else {
        return Counts::default();
    };
    let mut reader = BufReader::new(file);
    let mut counts = Counts::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let head = &line[..line.len().min(48)];
        let has = |needle: &str| head.windows(needle.len()).any(|w| w == needle.as_bytes());
        if has(&exec) {
            counts.execs += 1;
        } else if has(&connect) {
            counts.connects += 1;
            let by_sshd = serde_json::from_slice(&line).ok().is_some_and(|map| {
                matches!(Line::from_map(map).event, Event::Connect(c) if crate::forward_view::is_sshd(&c))
            });
            if by_sshd {
                counts.sshd_forwards += 1;
            }
        }
    }
    counts
}
