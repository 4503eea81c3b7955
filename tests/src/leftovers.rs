//! What a test run leaves behind when it is killed before its drop guards run (a timeout,
//! Ctrl-C): every fixture registers what it creates under `/run/srt-harness/`, tagged with the
//! creating process (pid + start time), and unregisters on drop. The first end-to-end test of
//! a later run removes what dead processes left — never anything of a live run.
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::time::Duration;

use crate::procs;
use crate::util::{output_with_timeout, random_hex, write_file};

const REGISTRY: &str = "/run/srt-harness";

/// Something a fixture created that must not outlive the test run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    /// A file, symlink or directory (removed recursively).
    Path(PathBuf),
    /// A `srt-` user (its processes are killed, then `userdel -r`).
    User(String),
    /// A `srt-` group.
    Group(String),
    /// A mount point (lazily unmounted).
    Mount(PathBuf),
    /// A daemon: pid and its start time (killed with its descendants only if both match).
    Process(i32, u64),
}

impl Leftover {
    fn encode(&self) -> String {
        match self {
            Leftover::Path(p) => format!("path {}", p.display()),
            Leftover::User(u) => format!("user {u}"),
            Leftover::Group(g) => format!("group {g}"),
            Leftover::Mount(p) => format!("mount {}", p.display()),
            Leftover::Process(pid, start) => format!("process {pid} {start}"),
        }
    }

    fn decode(text: &str) -> Option<Leftover> {
        let (kind, value) = text.split_once(' ')?;
        Some(match kind {
            "path" => Leftover::Path(PathBuf::from(value)),
            "user" => Leftover::User(value.to_string()),
            "group" => Leftover::Group(value.to_string()),
            "mount" => Leftover::Mount(PathBuf::from(value)),
            "process" => {
                let (pid, start) = value.split_once(' ')?;
                Leftover::Process(pid.parse().ok()?, start.parse().ok()?)
            }
            _ => return None,
        })
    }
}

/// Start time (clock ticks since boot) of `pid`, from /proc/PID/stat field 22.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// A registration; dropping it does not unregister (call [`Registration::release`] once the
/// resource is gone), so a panic in a destructor leaves the entry for the next sweep.
#[derive(Debug)]
pub struct Registration {
    entry: PathBuf,
}

impl Registration {
    pub fn release(&self) {
        let _ = fs::remove_file(&self.entry);
    }
}

/// Records `what` as owned by this process.
pub fn register(what: Leftover) -> Registration {
    let _ = fs::create_dir(REGISTRY);
    let me = std::process::id() as i32;
    let owner_start = start_time(me).unwrap_or(0);
    let entry = Path::new(REGISTRY).join(random_hex(8));
    write_file(
        &entry,
        format!("{me} {owner_start}\n{}\n", what.encode()),
        0o600,
    );
    Registration { entry }
}

/// Removes what processes that no longer run left behind. Runs once per test process.
pub fn sweep_once() {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(sweep);
}

fn sweep() {
    let Ok(entries) = fs::read_dir(REGISTRY) else {
        return;
    };
    let mut dead = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let mut lines = text.lines();
        let owner: Option<(i32, u64)> = lines.next().and_then(|l| {
            let (pid, start) = l.split_once(' ')?;
            Some((pid.parse().ok()?, start.parse().ok()?))
        });
        let Some((pid, start)) = owner else {
            continue;
        };
        if start_time(pid) == Some(start) {
            continue; // its test run is still going
        }
        dead.push((lines.next().and_then(Leftover::decode), path));
    }
    // Daemons and mounts first (they keep users and directories busy), paths last.
    dead.sort_by_key(|(what, _)| match what {
        Some(Leftover::Process(..)) => 0,
        Some(Leftover::Mount(_)) => 1,
        Some(Leftover::User(_)) => 2,
        Some(Leftover::Group(_)) => 3,
        Some(Leftover::Path(_)) | None => 4,
    });
    for (what, entry) in dead {
        if let Some(what) = what {
            eprintln!(
                "removing leftover of an interrupted test run: {}",
                what.encode()
            );
            clean(&what);
        }
        let _ = fs::remove_file(&entry);
    }
}

fn quiet(program: &str, args: &[&str]) {
    let _ = output_with_timeout(
        Command::new(program).args(args),
        b"",
        Duration::from_secs(60),
    );
}

fn clean(what: &Leftover) {
    match what {
        Leftover::Path(p) => {
            if fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()) {
                let _ = fs::remove_dir_all(p);
            } else {
                let _ = fs::remove_file(p);
            }
        }
        Leftover::User(name) if name.starts_with("srt-") => {
            if let Ok(Some(user)) = nix::unistd::User::from_name(name) {
                procs::terminate(
                    &procs::processes_of_uid(user.uid.as_raw()),
                    Duration::from_secs(2),
                );
            }
            quiet("userdel", &["-r", "-f", name]);
        }
        Leftover::Group(name) if name.starts_with("srt-") => quiet("groupdel", &[name]),
        Leftover::Mount(p) => quiet("umount", &["-l", &p.to_string_lossy()]),
        Leftover::Process(pid, start) => {
            if start_time(*pid) == Some(*start) {
                let mut all = procs::descendants(*pid);
                all.push(*pid);
                procs::terminate(&all, Duration::from_secs(2));
            }
        }
        Leftover::User(_) | Leftover::Group(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        for what in [
            Leftover::Path(PathBuf::from("/etc/pam.d/sshd-srt-1 x")),
            Leftover::User("srt-a-1".into()),
            Leftover::Group("srt-g-1".into()),
            Leftover::Mount(PathBuf::from("/var/lib/srt-mnt-1/m")),
            Leftover::Process(42, 12345),
        ] {
            assert_eq!(Leftover::decode(&what.encode()), Some(what));
        }
        assert_eq!(Leftover::decode("bogus value"), None);
        assert_eq!(Leftover::decode("process x 1"), None);
    }

    #[test]
    fn own_start_time_is_known() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some_and(|t| t > 0));
        assert_eq!(start_time(-1), None);
    }
}
