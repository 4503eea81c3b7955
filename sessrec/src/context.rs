//! What every subcommand shares: its [`Context`], how it fails ([`Failure`]) and the exit
//! codes. A leaf: it imports no subcommand, so subcommands can import it without a cycle.
#![forbid(unsafe_code)]

use std::io;

use sessrec_core::config::Config;

use crate::args::Parsed;
use crate::store::{SessionRef, Tree};
use crate::verdict::Verdict;

/// Exit codes (documented in sessrec(1)).
pub mod exit {
    /// Success; for `verify` every file checked is intact and complete, for `search` a match.
    pub const OK: i32 = 0;
    /// A finding: `verify` found a broken chain or tampering, `search` found nothing,
    /// `doctor` found a problem.
    pub const FINDING: i32 = 1;
    /// The command line was wrong.
    pub const USAGE: i32 = 2;
    /// `verify`: chains intact but something is missing or incomplete (no logout, a channel
    /// without `channel.end`, an incomplete last line).
    pub const INCOMPLETE: i32 = 3;
    /// The records could not be read (no such session, no such directory, permissions), or
    /// another operational error.
    pub const ERROR: i32 = 4;
}

/// An error that ends a command, with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn error(message: impl Into<String>) -> Self {
        Failure {
            code: exit::ERROR,
            message: message.into(),
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: exit::USAGE,
            message: message.into(),
        }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        // A closed pipe (`sessrec list | head`) is not an error worth a message.
        if e.kind() == io::ErrorKind::BrokenPipe {
            Failure {
                code: exit::OK,
                message: String::new(),
            }
        } else {
            Failure::error(e.to_string())
        }
    }
}

pub type CmdResult = Result<i32, Failure>;

/// What every subcommand gets.
pub struct Context {
    pub args: Parsed,
    pub tree: Tree,
    pub config: Option<Config>,
    pub now_us: i64,
    pub host: String,
    /// The integrity of each session the command reads, checked before it reads
    /// ([`crate::gate`]); exports carry it in their metadata.
    pub integrity: Vec<Verdict>,
    /// The sessions a search or `verify` reads, as the gate selected them, each with its start
    /// (µs; for `verify` the start its id names), so that the command does not list or
    /// summarize every session a second time.
    pub reading: Vec<(SessionRef, i64)>,
}

impl Context {
    pub fn time_arg(&self, name: &str) -> Result<Option<i64>, Failure> {
        match self.args.value(name) {
            None => Ok(None),
            Some(v) => crate::timespec::parse_time(v, self.now_us)
                .map(Some)
                .map_err(|e| Failure::usage(format!("{name}: {e}"))),
        }
    }

    /// `--since` and `--until`; an empty range (since not before until) is a usage error.
    pub fn time_range(&self) -> Result<(Option<i64>, Option<i64>), Failure> {
        let since = self.time_arg("--since")?;
        let until = self.time_arg("--until")?;
        if let (Some(s), Some(u)) = (since, until) {
            if s >= u {
                let ts = |us| sessrec_core::time::Timestamp::from_micros(us).to_string();
                return Err(Failure::usage(format!(
                    "--since ({}) is not before --until ({}): no session can match",
                    ts(s),
                    ts(u)
                )));
            }
        }
        Ok((since, until))
    }

    pub fn duration_arg(&self, name: &str) -> Result<Option<i64>, Failure> {
        match self.args.value(name) {
            None => Ok(None),
            Some(v) => crate::timespec::parse_duration(v)
                .map(Some)
                .map_err(|e| Failure::usage(format!("{name}: {e}"))),
        }
    }
}
