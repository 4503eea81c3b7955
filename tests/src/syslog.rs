//! The host's authpriv log, where sessrec sends its chain anchors and alerts. Tests read
//! `/var/log/auth.log` as written by the Debian rsyslog, started here if nothing listens on
//! `/dev/log` (a machine without systemd).
#![forbid(unsafe_code)]

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use crate::util::{run, wait_until};

/// Where Debian's rsyslog writes `auth,authpriv.*`.
pub const AUTH_LOG: &str = "/var/log/auth.log";

static STARTING: Mutex<()> = Mutex::new(());

fn dev_log_listening() -> bool {
    fs::symlink_metadata("/dev/log")
        .map(|m| m.file_type().is_socket() || m.file_type().is_symlink())
        .unwrap_or(false)
}

/// Makes sure a syslog daemon listens on `/dev/log` and writes [`AUTH_LOG`]: starts
/// `rsyslogd` (Debian package rsyslog) when no socket is there. The daemon is a host service
/// and is left running.
pub fn ensure_syslog() {
    let _guard = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    if dev_log_listening() {
        return;
    }
    // A stale pid file from a daemon that is gone would make rsyslogd refuse to start.
    let pid_file = Path::new("/run/rsyslogd.pid");
    if let Ok(pid) = fs::read_to_string(pid_file) {
        if !Path::new("/proc").join(pid.trim()).exists() {
            let _ = fs::remove_file(pid_file);
        }
    }
    run(&mut Command::new("rsyslogd"));
    wait_until(
        "rsyslogd to create /dev/log",
        Duration::from_secs(10),
        dev_log_listening,
    );
}

/// A position in [`AUTH_LOG`]; lines written after it can be waited for.
#[derive(Debug)]
pub struct AuthLog {
    start: u64,
}

impl AuthLog {
    /// Ensures syslog runs and remembers the current end of the log.
    pub fn mark() -> AuthLog {
        ensure_syslog();
        let start = fs::metadata(AUTH_LOG).map(|m| m.len()).unwrap_or(0);
        AuthLog { start }
    }

    /// Text written to the log since the mark.
    pub fn since(&self) -> String {
        let Ok(mut file) = fs::File::open(AUTH_LOG) else {
            return String::new();
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        // Rotated or truncated meanwhile: read it all.
        let from = if len < self.start { 0 } else { self.start };
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(from)).is_ok() {
            let _ = file.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Waits until a line written since the mark matches `pattern`; returns that line.
    pub fn wait_for(&self, pattern: &str, timeout: Duration) -> String {
        let re =
            regex::Regex::new(pattern).unwrap_or_else(|e| panic!("bad pattern {pattern:?}: {e}"));
        let mut found = None;
        let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until(&format!("{pattern:?} in {AUTH_LOG}"), timeout, || {
                found = self
                    .since()
                    .lines()
                    .find(|l| re.is_match(l))
                    .map(str::to_owned);
                found.is_some()
            })
        }));
        if waited.is_err() {
            panic!(
                "no line matching {pattern:?} reached {AUTH_LOG} within {timeout:?}; written since the mark:\n{}",
                self.since()
            );
        }
        found.expect("found")
    }
}
