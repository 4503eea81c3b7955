//! The host's authpriv log, where sessrec sends its chain anchors and alerts. Tests read
//! `/var/log/auth.log` as written by the Debian rsyslog, started here if nothing listens on
//! `/dev/log` (a machine without systemd, or one whose `/dev/log` is a socket left behind by a
//! daemon that is gone).
#![forbid(unsafe_code)]

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use crate::util::{run, unique_name, wait_until};

/// Where Debian's rsyslog writes `auth,authpriv.*`.
pub const AUTH_LOG: &str = "/var/log/auth.log";

const DEV_LOG: &str = "/dev/log";

/// Whether the pipeline was proved end to end in this process.
static READY: Mutex<bool> = Mutex::new(false);

fn dev_log_listening() -> bool {
    sessrec_core::sys::syslog_socket_reachable(Path::new(DEV_LOG)).is_ok()
}

/// Makes sure a syslog daemon listens on `/dev/log` and writes [`AUTH_LOG`], and proves it
/// with a probe message sent by `logger`. Starts `rsyslogd` (Debian package rsyslog) when
/// nothing listens, removing a socket or link a dead daemon left behind. The daemon is a host
/// service and is left running.
pub fn ensure_syslog() {
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    if *ready {
        return;
    }
    if !dev_log_listening() {
        start_rsyslogd();
    }
    let start = fs::metadata(AUTH_LOG).map(|m| m.len()).unwrap_or(0);
    let probe = unique_name("syslog-probe");
    run(Command::new("logger")
        .args(["-p", "authpriv.notice", "-t", "sessrec-tests"])
        .arg(&probe));
    let seen = AuthLog { start };
    let arrived = std::panic::catch_unwind(|| {
        wait_until(
            &format!("the probe {probe} in {AUTH_LOG}"),
            Duration::from_secs(15),
            || seen.since().contains(&probe),
        )
    });
    if arrived.is_err() {
        panic!(
            "syslog does not reach {AUTH_LOG}: `logger -p authpriv.notice {probe}` was accepted \
             on {DEV_LOG} but never written there (is another daemon listening on {DEV_LOG}?)"
        );
    }
    *ready = true;
}

fn start_rsyslogd() {
    // A socket or symlink left by a daemon that is gone: rsyslogd's imuxsock binds a fresh one.
    if let Ok(meta) = fs::symlink_metadata(DEV_LOG) {
        if meta.file_type().is_socket() || meta.file_type().is_symlink() {
            let _ = fs::remove_file(DEV_LOG);
        }
    }
    // A pid file naming a daemon that is gone (or a zombie, or a reused pid) would make
    // rsyslogd refuse to start.
    let pid_file = Path::new("/run/rsyslogd.pid");
    if let Ok(pid) = fs::read_to_string(pid_file) {
        if !live_rsyslogd(pid.trim()) {
            let _ = fs::remove_file(pid_file);
        }
    }
    run(&mut Command::new("rsyslogd"));
    wait_until(
        "rsyslogd to listen on /dev/log",
        Duration::from_secs(10),
        dev_log_listening,
    );
}

/// Whether `pid` is a running (not zombie) rsyslogd: `/proc/<pid>/stat` is
/// `pid (comm) state ...`.
fn live_rsyslogd(pid: &str) -> bool {
    let stat = fs::read_to_string(Path::new("/proc").join(pid).join("stat")).unwrap_or_default();
    match stat.rsplit_once(") ") {
        Some((head, rest)) => head.ends_with("(rsyslogd") && !rest.starts_with('Z'),
        None => false,
    }
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
