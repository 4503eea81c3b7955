//! Command line: `sudo-iolog-import --once | --follow [--json] [--config PATH] [--interval SECS]`.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;
use sessrec_core::config::Config;
use sessrec_core::writer::WriterOptions;

use crate::import::ImportOptions;
use crate::run::{run_pass, PassOptions, Summary};

pub const USAGE: &str =
    "usage: sudo-iolog-import (--once | --follow) [--json] [--config PATH] [--interval SECONDS]

  --once           import every finished sudo session not yet imported, then exit
  --follow         keep importing, running sessions too (poll every --interval, default 5 s)
  --json           print the summary of each pass as one JSON object on stdout
  --config PATH    configuration file (default: $SESSREC_CONFIG, else /etc/sessrec/sessrec.toml)
";

pub use sessrec_core::import::cli::Mode;
use sessrec_core::import::cli::{config_path, read_gid, required_mode, take_mode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub mode: Mode,
    pub json: bool,
    pub config: Option<PathBuf>,
    pub interval: Duration,
}

pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Args, String> {
    let mut mode = None;
    let mut json = false;
    let mut config = None;
    let mut interval = Duration::from_secs(5);
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let arg = arg
            .into_string()
            .map_err(|a| format!("argument {a:?} is not UTF-8"))?;
        if take_mode(&mut mode, &arg)? {
            continue;
        }
        match arg.as_str() {
            "--json" => json = true,
            "--config" => config = Some(PathBuf::from(it.next().ok_or("--config needs a path")?)),
            "--interval" => {
                let v = it.next().ok_or("--interval needs a number of seconds")?;
                let secs: u64 = v
                    .to_str()
                    .and_then(|s| s.parse().ok())
                    .filter(|s| *s > 0)
                    .ok_or("--interval needs a positive number of seconds")?;
                interval = Duration::from_secs(secs);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        mode: required_mode(mode)?,
        json,
        config,
        interval,
    })
}

pub fn pass_options(config: &Config) -> Result<PassOptions, String> {
    let prompt = Regex::new(&config.sudo.password_prompt_regex)
        .map_err(|e| format!("[sudo] password_prompt_regex is not a valid pattern: {e}"))?;
    let read_gid = read_gid(config)?;
    Ok(PassOptions {
        iolog_dirs: config.sudo.iolog_dirs.clone(),
        state_file: config.sudo.state_file.clone(),
        settle: Duration::from_secs(config.sudo.settle_minutes.saturating_mul(60)),
        import: ImportOptions {
            record_dir: config.record_dir.clone(),
            read_gid,
            writer: WriterOptions::from_config(&config.recorder),
            password_prompt: prompt,
            host: sessrec_core::sys::hostname(),
            max_session_bytes: config.sudo.max_session_mb.saturating_mul(1 << 20),
        },
        syslog_anchors: true,
        live: false,
    })
}

/// Human summary on stderr.
pub fn print_summary(s: &Summary, out: &mut dyn Write) -> io::Result<()> {
    let methods: Vec<String> = s
        .by_method
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    writeln!(
        out,
        "sudo-iolog-import: {} found, {} imported ({} incomplete{}{}), {} already imported, {} recovered, {} pending, {} errors; {:.1} MB of stream data in {:.2} s",
        s.found,
        s.imported,
        s.imported_incomplete,
        if methods.is_empty() { "" } else { "; by match: " },
        methods.join(", "),
        s.already_imported,
        s.recovered,
        s.pending,
        s.errors.len(),
        s.stream_bytes as f64 / 1e6,
        s.seconds
    )?;
    for p in &s.errors {
        writeln!(
            out,
            "sudo-iolog-import: skipped {}: {}",
            p.path.display(),
            p.error
        )?;
    }
    Ok(())
}

/// Runs the program; returns the exit status.
pub fn main_with(args: Args) -> i32 {
    let path = config_path(args.config.as_deref());
    let config = match Config::load_trusted(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sudo-iolog-import: {e}");
            return 2;
        }
    };
    let opts = match pass_options(&config) {
        Ok(o) => PassOptions {
            live: args.mode == Mode::Follow,
            ..o
        },
        Err(e) => {
            eprintln!("sudo-iolog-import: {e}");
            return 2;
        }
    };
    let show_progress = !args.json && io::stderr().is_terminal();
    loop {
        let mut progress = |done: u64, total: u64, bytes: u64| {
            if show_progress && total > 0 {
                eprint!(
                    "\rimporting sudo sessions: {done}/{total}, {:.1} MB",
                    bytes as f64 / 1e6
                );
                if done == total {
                    eprintln!();
                }
            }
        };
        let status = match run_pass(&opts, &mut progress) {
            Ok(summary) => {
                if args.json {
                    let line = serde_json::to_string(&summary).unwrap_or_default();
                    println!("{line}");
                }
                let worth_saying =
                    args.mode == Mode::Once || summary.imported > 0 || !summary.errors.is_empty();
                if (!args.json || !summary.errors.is_empty()) && worth_saying {
                    let _ = print_summary(&summary, &mut io::stderr());
                }
                if summary.errors.is_empty() {
                    0
                } else {
                    1
                }
            }
            Err(e) => {
                eprintln!("sudo-iolog-import: {e}");
                2
            }
        };
        if args.mode == Mode::Once {
            return status;
        }
        std::thread::sleep(args.interval);
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
        let a = parse(&["--once", "--json", "--config", "/x.toml"]).unwrap();
        assert_eq!(a.mode, Mode::Once);
        assert!(a.json);
        assert_eq!(a.config.as_deref(), Some(std::path::Path::new("/x.toml")));
        let a = parse(&["--follow", "--interval", "7"]).unwrap();
        assert_eq!((a.mode, a.interval), (Mode::Follow, Duration::from_secs(7)));
        assert!(parse(&[]).unwrap_err().contains("--once"));
        assert!(parse(&["--once", "--follow"]).is_err());
        assert!(parse(&["--once", "--bogus"])
            .unwrap_err()
            .contains("--bogus"));
        assert!(parse(&["--follow", "--interval", "0"]).is_err());
        assert!(parse(&["--once", "--config"]).is_err());
    }
}
