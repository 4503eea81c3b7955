//! Dispatch from the parsed command line to the subcommands.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use sessrec_core::config::{Config, DEFAULT_CONFIG_PATH};

use crate::args::{self, Parsed};
use crate::context::{exit, CmdResult, Context, Failure};
use crate::store::Tree;

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
    // The error names the file already.
    Config::load(&path).map_err(|e| Failure::error(format!("configuration {e}")))
}

/// Runs the program; returns the exit code. Messages go to stderr.
pub fn run(argv: Vec<String>) -> i32 {
    let parsed = match args::parse(&argv) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sessrec: {e}");
            // The help of the command the options were meant for, when one was named.
            match argv.iter().find_map(|a| args::find_command(a)) {
                Some(c) => eprintln!("Try `sessrec {} --help`.", c.name),
                None => eprintln!("Try `sessrec --help`."),
            }
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
    match dispatch(command.name, parsed, &argv) {
        Ok(code) => code,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("sessrec {}: {}", command.name, f.message);
            }
            f.code
        }
    }
}

fn dispatch(name: &str, args: Parsed, argv: &[String]) -> CmdResult {
    if name == "doctor" && !nix::unistd::geteuid().is_root() {
        // Its checks read files only root may read: as another user they would all fail.
        return Err(Failure::error(
            "doctor needs root: it reads the PAM and sshd configuration, sudoers and the record tree; run it as root (e.g. with sudo)",
        ));
    }
    let needs_config = args.value("--dir").is_none()
        || name == "doctor"
        || name == "forward-sshd"
        || name == "heartbeat";
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
    let mut tree = Tree::new(root);
    tree.host_filter = args.value("--host").map(str::to_string);
    let mut ctx = Context {
        args,
        tree,
        config,
        now_us: sessrec_core::time::Timestamp::now().as_micros(),
        host: sessrec_core::sys::hostname(),
        integrity: Vec::new(),
    };
    crate::gate::enter(&mut ctx, name, argv)?;
    let code = match name {
        "list" => crate::list::run(&ctx),
        "show" => crate::show::run(&ctx),
        "play" => crate::play::run(&ctx),
        "export" => crate::export::run(&ctx),
        "verify" => crate::verify::run(&ctx),
        "search" => crate::search::run(&ctx),
        "kill" => crate::kill::run(&ctx),
        "prune" => crate::prune::run(&ctx),
        "compress" => crate::compress::run(&ctx),
        "hosts" => crate::hosts::run(&ctx),
        "hold" => crate::hold::run(&ctx),
        "heartbeat" => crate::heartbeat::run(&ctx),
        "receive" => crate::receive::run(&ctx),
        "doctor" => crate::doctor::run(&ctx),
        "forward-sshd" => crate::forward_sshd::run(&ctx),
        other => Err(Failure::usage(format!("unknown command {other}"))),
    }?;
    Ok(crate::gate::leave(&ctx, name, code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_configuration_is_named_once() {
        let path = std::env::temp_dir().join(format!("sessrec-cli-{}.toml", std::process::id()));
        std::fs::write(&path, "max_line_bytes = \"many\"\n").unwrap();
        let failure = load_config(Some(path.to_str().unwrap())).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(failure.code, exit::ERROR);
        let named = path.display().to_string();
        assert!(
            failure
                .message
                .starts_with(&format!("configuration {named}: ")),
            "{}",
            failure.message
        );
        assert_eq!(
            failure.message.matches(&named).count(),
            1,
            "{}",
            failure.message
        );
    }
}
