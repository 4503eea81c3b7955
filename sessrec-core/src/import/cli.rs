//! The command-line frame both importers share: `--help`/`--version`, the `--once`/`--follow`
//! mode, the configuration path and the read group.
#![forbid(unsafe_code)]

use std::ffi::{CStr, OsString};
use std::path::{Path, PathBuf};

use crate::config::{Config, DEFAULT_CONFIG_PATH};

/// One pass, or passes until stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Once,
    Follow,
}

/// Takes `arg` if it is `--once` or `--follow`; an error when a mode was already given.
pub fn take_mode(mode: &mut Option<Mode>, arg: &str) -> Result<bool, String> {
    let m = match arg {
        "--once" => Mode::Once,
        "--follow" => Mode::Follow,
        _ => return Ok(false),
    };
    if mode.replace(m).is_some() {
        return Err("give only one of --once and --follow".into());
    }
    Ok(true)
}

/// The mode given, or the error saying one is needed.
pub fn required_mode(mode: Option<Mode>) -> Result<Mode, String> {
    mode.ok_or_else(|| "give --once or --follow".into())
}

/// The config path: `--config`, else `SESSREC_CONFIG` (the importers run as root, so the
/// environment is the operator's), else the default.
pub fn config_path(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("SESSREC_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

/// The gid of `read_group`, `None` when none is configured.
pub fn read_gid(config: &Config) -> Result<Option<u32>, String> {
    if config.read_group.is_empty() {
        return Ok(None);
    }
    let group = nix::unistd::Group::from_name(&config.read_group)
        .map_err(|e| format!("read_group {:?}: {e}", config.read_group))?
        .ok_or_else(|| format!("read_group {:?} does not exist", config.read_group))?;
    Ok(Some(group.gid.as_raw()))
}

/// An importer's `main`: answers `--help` and `--version`, parses the arguments (usage and
/// status 2 on error), opens syslog as `name` and exits with `run`'s status.
pub fn main<A>(
    name: &'static CStr,
    usage: &str,
    parse: impl FnOnce(Vec<OsString>) -> Result<A, String>,
    run: impl FnOnce(A) -> i32,
) -> ! {
    let shown = name.to_string_lossy();
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{usage}");
        exit_flushed(0);
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("{shown} {}", crate::VERSION);
        exit_flushed(0);
    }
    let args = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprint!("{shown}: {e}\n{usage}");
            std::process::exit(2);
        }
    };
    crate::sys::open_syslog(name);
    let status = run(args);
    exit_flushed(status);
}

fn exit_flushed(status: i32) -> ! {
    let _ = std::io::Write::flush(&mut std::io::stdout());
    std::process::exit(status);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_mode() {
        let mut mode = None;
        assert_eq!(take_mode(&mut mode, "--json"), Ok(false));
        assert!(required_mode(mode).is_err());
        assert_eq!(take_mode(&mut mode, "--follow"), Ok(true));
        assert_eq!(required_mode(mode), Ok(Mode::Follow));
        assert!(take_mode(&mut mode, "--once").is_err());
    }
}
