//! Dispatch from the parsed command line to the subcommands, and what they share.
#![forbid(unsafe_code)]

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sessrec_core::config::{Config, DEFAULT_CONFIG_PATH};

use crate::args::{self, Parsed};
use crate::store::Tree;

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

    pub fn duration_arg(&self, name: &str) -> Result<Option<i64>, Failure> {
        match self.args.value(name) {
            None => Ok(None),
            Some(v) => crate::timespec::parse_duration(v)
                .map(Some)
                .map_err(|e| Failure::usage(format!("{name}: {e}"))),
        }
    }
}

/// Loads the configuration: `--config`, else `$SESSREC_CONFIG`, else the default path (whose
/// absence means built-in defaults).
fn load_config(explicit: Option<&str>) -> Result<Config, Failure> {
    let (path, required) = match explicit {
        Some(p) => (PathBuf::from(p), true),
        None => match std::env::var_os("SESSREC_CONFIG") {
            Some(p) => (PathBuf::from(p), true),
            None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        },
    };
    if !required && !path.exists() {
        return Ok(Config::default());
    }
    Config::load(&path)
        .map_err(|e| Failure::error(format!("configuration {}: {e}", path.display())))
}

/// Runs the program; returns the exit code. Messages go to stderr.
pub fn run(argv: Vec<String>) -> i32 {
    let parsed = match args::parse(&argv) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sessrec: {e}");
            eprintln!("Try `sessrec --help`.");
            return exit::USAGE;
        }
    };
    if parsed.flag("--version") {
        println!("sessrec {}", sessrec_core::VERSION);
        return exit::OK;
    }
    let Some(command) = parsed.command else {
        let help = args::help(None);
        if parsed.flag("--help") {
            print!("{help}");
            return exit::OK;
        }
        eprint!("{help}");
        return exit::USAGE;
    };
    if parsed.flag("--help") {
        print!("{}", args::help(Some(command)));
        return exit::OK;
    }
    match dispatch(command.name, parsed) {
        Ok(code) => code,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("sessrec {}: {}", command.name, f.message);
            }
            f.code
        }
    }
}

fn dispatch(name: &str, args: Parsed) -> CmdResult {
    let needs_config = args.value("--dir").is_none() || name == "doctor";
    let config = if needs_config {
        Some(load_config(args.value("--config"))?)
    } else {
        None
    };
    let root = match args.value("--dir") {
        Some(d) => PathBuf::from(d),
        None => config
            .as_ref()
            .map(|c| c.record_dir.clone())
            .unwrap_or_else(|| PathBuf::from("/var/log/sessrec")),
    };
    let ctx = Context {
        args,
        tree: Tree::new(root),
        config,
        now_us: sessrec_core::time::Timestamp::now().as_micros(),
        host: sessrec_core::sys::hostname(),
    };
    match name {
        "list" => crate::list::run(&ctx),
        "show" => crate::show::run(&ctx),
        "play" => crate::play::run(&ctx),
        "export" => crate::export::run(&ctx),
        "verify" => crate::verify::run(&ctx),
        "search" => crate::search::run(&ctx),
        "kill" => crate::kill::run(&ctx),
        "prune" => crate::prune::run(&ctx),
        "doctor" => crate::doctor::run(&ctx),
        other => Err(Failure::usage(format!("unknown command {other}"))),
    }
}

/// Standard output, buffered, for commands that print a lot.
pub fn stdout() -> io::BufWriter<io::StdoutLock<'static>> {
    io::BufWriter::with_capacity(64 * 1024, io::stdout().lock())
}

/// Opens `--output FILE` (created 0600: exports hold record data) or standard output.
pub fn output(path: Option<&str>) -> Result<Box<dyn Write>, Failure> {
    match path {
        None | Some("-") => Ok(Box::new(stdout())),
        Some(p) => {
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(Path::new(p))
                .map_err(|e| Failure::error(format!("cannot write {p}: {e}")))?;
            Ok(Box::new(io::BufWriter::new(f)))
        }
    }
}

/// RFC 3339 with seconds only, for tables.
pub fn short_time(us: i64) -> String {
    let full = sessrec_core::time::Timestamp::from_micros(us).to_string();
    // 2026-11-24T10:00:00.123456Z -> 2026-11-24 10:00:00Z
    format!("{} {}Z", &full[..10], &full[11..19])
}
