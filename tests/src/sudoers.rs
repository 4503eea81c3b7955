//! A sudoers drop-in for one test, checked with `visudo -cf` and removed on drop.
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::leftovers::{register, Leftover, Registration};
use crate::util::{run, unique_name, write_file};

/// `/etc/sudoers.d/srt-sudo-<rand>` (root 0440). The name has no `.` or `~`, so sudo reads it.
#[derive(Debug)]
pub struct SudoersDropIn {
    path: PathBuf,
    registration: Registration,
}

impl SudoersDropIn {
    /// Writes `text` (e.g. `"Defaults:srt-x log_output, log_input, use_pty\nsrt-x ALL=(ALL)
    /// NOPASSWD: ALL\n"`), refusing it (panic) if `visudo -cf` does not accept it.
    pub fn new(text: &str) -> SudoersDropIn {
        let staged = Path::new("/etc").join(format!("{}.check", unique_name("sudo")));
        write_file(&staged, text, 0o440);
        let check =
            std::panic::catch_unwind(|| run(Command::new("visudo").arg("-cf").arg(&staged)));
        let _ = fs::remove_file(&staged);
        if let Err(panic) = check {
            std::panic::resume_unwind(panic);
        }
        let path = Path::new("/etc/sudoers.d").join(unique_name("sudo"));
        let registration = register(Leftover::Path(path.clone()));
        write_file(&path, text, 0o440);
        SudoersDropIn { path, registration }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SudoersDropIn {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        self.registration.release();
    }
}
