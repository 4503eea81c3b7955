//! What the `sessrec` command-line tests share.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the built `sessrec` on the record tree `dir` (no config from the environment).
pub fn sessrec(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sessrec"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("SESSREC_CONFIG")
        .output()
        .unwrap()
}
