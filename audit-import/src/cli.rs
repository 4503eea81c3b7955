//! Command line: `sessrec-audit-import --once | --follow [--json] [--config PATH]
//! [--log-file PATH] [--state-file PATH]`.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use sessrec_core::config::Config;
use sessrec_core::writer::WriterOptions;

use crate::import::{Importer, Options, Summary};

pub const USAGE: &str = "usage: sessrec-audit-import (--once | --follow) [--json] [--config PATH]
                            [--log-file PATH] [--state-file PATH]

  --once             import what auditd's log holds now, then exit
  --follow           keep importing as auditd writes (every [audit] poll_ms)
  --json             print the summary of each pass as one JSON object on stdout
  --config PATH      configuration file (default: $SESSREC_CONFIG, else /etc/sessrec/sessrec.toml)
  --log-file PATH    auditd's log instead of [audit] log_file
  --state-file PATH  the import state instead of [audit] state_file
";

pub use sessrec_core::import::cli::Mode;
use sessrec_core::import::cli::{config_path, read_gid, required_mode, take_mode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub mode: Mode,
    pub json: bool,
    pub config: Option<PathBuf>,
    pub log_file: Option<PathBuf>,
    pub state_file: Option<PathBuf>,
}

pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Args, String> {
    let mut mode = None;
    let mut json = false;
    let (mut config, mut log_file, mut state_file) = (None, None, None);
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let arg = arg
            .into_string()
            .map_err(|a| format!("argument {a:?} is not UTF-8"))?;
        let mut path = |name: &str| -> Result<PathBuf, String> {
            Ok(PathBuf::from(
                it.next().ok_or(format!("{name} needs a path"))?,
            ))
        };
        if take_mode(&mut mode, &arg)? {
            continue;
        }
        match arg.as_str() {
            "--json" => json = true,
            "--config" => config = Some(path("--config")?),
            "--log-file" => log_file = Some(path("--log-file")?),
            "--state-file" => state_file = Some(path("--state-file")?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        mode: required_mode(mode)?,
        json,
        config,
        log_file,
        state_file,
    })
}

/// The import options from the configuration and the arguments.
pub fn options(config: &Config, args: &Args) -> Result<Options, String> {
    let read_gid = read_gid(config)?;
    Ok(Options {
        record_dir: config.record_dir.clone(),
        log_file: args
            .log_file
            .clone()
            .unwrap_or_else(|| config.audit.log_file.clone()),
        state_file: args
            .state_file
            .clone()
            .unwrap_or_else(|| config.audit.state_file.clone()),
        writer: WriterOptions::from_config(&config.recorder),
        read_gid,
        live: args.mode == Mode::Follow,
        hold: Duration::from_millis(300),
        check_lost: true,
        syslog_anchors: true,
        follow_closes: args.mode == Mode::Follow,
    })
}

fn report(summary: &Summary, json: bool, always: bool) {
    if json {
        println!("{}", serde_json::to_string(summary).unwrap_or_default());
    }
    for e in &summary.errors {
        eprintln!("sessrec-audit-import: {e}");
    }
    let worth = always
        || summary.execs_written
            + summary.connects_written
            + summary.gaps_written
            + summary.ends_written
            > 0;
    if !json && worth {
        eprintln!(
            "sessrec-audit-import: {} events read ({} KB), {} execs, {} connects, {} connection ends, {} gaps written; {} of no recorded session, {} already written, {} lines skipped",
            summary.events,
            summary.bytes_read / 1000,
            summary.execs_written,
            summary.connects_written,
            summary.ends_written,
            summary.gaps_written,
            summary.unattributed,
            summary.already_written,
            summary.skipped_lines
        );
    }
}

/// Runs the program; returns the exit status.
pub fn main_with(args: Args) -> i32 {
    let path = config_path(args.config.as_deref());
    let config = match Config::load_trusted(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sessrec-audit-import: {e}");
            return 2;
        }
    };
    let opts = match options(&config, &args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("sessrec-audit-import: {e}");
            return 2;
        }
    };
    let mut importer = match Importer::new(opts) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("sessrec-audit-import: {e}");
            return 2;
        }
    };
    let poll = Duration::from_millis(config.audit.poll_ms);
    loop {
        let once = args.mode == Mode::Once;
        match importer.pass(once) {
            Ok(summary) => {
                report(&summary, args.json, once);
                if once {
                    return i32::from(!summary.errors.is_empty());
                }
            }
            Err(e) => {
                eprintln!("sessrec-audit-import: {e}");
                if once {
                    return 2;
                }
            }
        }
        std::thread::sleep(poll);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(OsString::from))
    }

    #[test]
    fn arguments() {
        let a = parse(&["--follow", "--log-file", "/l", "--state-file", "/s"]).unwrap();
        assert_eq!(a.mode, Mode::Follow);
        assert_eq!(a.log_file, Some(PathBuf::from("/l")));
        assert!(parse(&[]).is_err());
        assert!(parse(&["--once", "--follow"]).is_err());
        assert!(parse(&["--once", "--x"]).unwrap_err().contains("--x"));
        assert!(parse(&["--once", "--log-file"]).is_err());
    }
}
