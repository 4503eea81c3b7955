//! How many programs and connections a session's `audit.jsonl` records, for `list`: a scan of
//! each line's start, nothing parsed.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;

use sessrec_core::schema::{Connect, EventBody, Exec};

/// Exec and connect lines of an `audit.jsonl` (a scan of each line's start, nothing parsed).
pub fn count(path: &Path) -> (u64, u64) {
    let exec = format!("\"type\":\"{}\"", Exec::TYPE);
    let connect = format!("\"type\":\"{}\"", Connect::TYPE);
    let Ok(file) = sessrec_core::stored::open(path) else {
        return (0, 0);
    };
    let mut reader = BufReader::new(file);
    let (mut execs, mut connects) = (0, 0);
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
            execs += 1;
        } else if has(&connect) {
            connects += 1;
        }
    }
    (execs, connects)
}
