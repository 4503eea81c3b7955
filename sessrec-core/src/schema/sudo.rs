//! Events of `sudo-*.jsonl`, written by sudo-iolog-import from sudo's own I/O log.
#![forbid(unsafe_code)]

use super::event_type;

event_type! {
    /// A sudo session: what ran as whom, from sudo's log, and how it was tied to a login.
    pub struct SudoStart = "sudo.start", names in sudo_start {
        /// When sudo started (RFC 3339); a line's `time` is when it was imported.
        at: String,
        submituser: String,
        submithost: String,
        runuser: String,
        rungroup: String,
        command: String,
        /// The arguments, when every one is UTF-8 and the line holds them all.
        argv: Vec<String>,
        /// Otherwise the arguments joined by NUL bytes, carried whole by the long-field rules
        /// (`cmdline_b64`, `cmdline_bytes`, `cmdline_parts` and `command.part` lines with
        /// `field` = `cmdline`), as `exec` lines carry theirs.
        cmdline: String,
        /// The argument count, when sudo's log held more than the importer keeps.
        argv_truncated: u64,
        cwd: String,
        runcwd: String,
        runchroot: String,
        /// The tty sudo was invoked from (inside a recorded channel: its pty).
        tty: String,
        rows: u32,
        cols: u32,
        iolog_path: String,
        /// `log.json` or the legacy `log`.
        iolog_meta: String,
        iolog_meta_problem: String,
        sudo_uuid: String,
        /// `audit`, `tty`, `only_session` or `none`.
        r#match: String,
        /// `absent`, `agreed` or `disagreed`.
        match_hint: String,
        match_candidates: Vec<String>,
        /// The matching channel file.
        channel: String,
        match_notes: Vec<String>,
        complete: bool,
    }
}

event_type! {
    /// The end of a sudo session.
    pub struct SudoEnd = "sudo.end", names in sudo_end {
        at: String,
        off: u64,
        duration_us: u64,
        complete: bool,
        /// Sudo never marked the log finished.
        incomplete: bool,
        /// Streams that ended early (and `max_session_bytes`).
        truncated: Vec<String>,
        missing_bytes: u64,
        /// The import's byte bound, when it was reached.
        max_session_bytes: u64,
        bytes_in: u64,
        bytes_out: u64,
        bytes_err: u64,
        records: u64,
    }
}

event_type! {
    /// The command was suspended (sudo's timing record 7).
    pub struct Suspend = "suspend" {
        at: String,
        off: u64,
        /// The signal name.
        signal: String,
    }
}
