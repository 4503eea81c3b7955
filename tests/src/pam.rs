//! A private PAM service file for driving a module through real Linux-PAM with `pamtester`.
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::leftovers::{register, Leftover, Registration};
use crate::util::{output_with_timeout, unique_name, write_file};

/// `/etc/pam.d/srt-pam-<rand>` with the given stack, removed on drop.
#[derive(Debug)]
pub struct PamService {
    name: String,
    path: PathBuf,
    registration: Registration,
}

impl PamService {
    /// Writes the service file; `{service}` in `stack` is replaced by the service name (for a
    /// module's `services=` argument).
    pub fn new(stack: &str) -> PamService {
        let name = unique_name("pam");
        let path = Path::new("/etc/pam.d").join(&name);
        let mut text = stack.replace("{service}", &name);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let registration = register(Leftover::Path(path.clone()));
        write_file(&path, text, 0o644);
        PamService {
            name,
            path,
            registration,
        }
    }

    /// The service name (`srt-pam-<rand>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `pamtester -v [-I item=value]... <service> <user> <operations...>` (e.g.
    /// `["open_session", "close_session"]`, items like `"rhost=203.0.113.7"`), bounded to 60 s.
    pub fn pamtester(&self, user: &str, items: &[&str], operations: &[&str]) -> Output {
        let mut cmd = Command::new("pamtester");
        cmd.arg("-v");
        for item in items {
            cmd.args(["-I", item]);
        }
        cmd.arg(&self.name).arg(user).args(operations);
        output_with_timeout(&mut cmd, b"", Duration::from_secs(60))
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        self.registration.release();
    }
}
