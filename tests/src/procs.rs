//! Finding and ending the processes a fixture started, by pid: the descendants of a daemon,
//! or the processes running as a test user; waiting for one of them to hold its terminal.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// (pid, parent pid, real uid) of every process, from /proc.
fn process_table() -> Vec<(i32, i32, u32)> {
    let mut table = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return table;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let mut ppid = None;
        let mut uid = None;
        for line in status.lines() {
            if let Some(v) = line.strip_prefix("PPid:") {
                ppid = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("Uid:") {
                uid = v.split_whitespace().next().and_then(|u| u.parse().ok());
            }
        }
        if let (Some(ppid), Some(uid)) = (ppid, uid) {
            table.push((pid, ppid, uid));
        }
    }
    table
}

/// Every live descendant of `root` (children, their children, ...), not `root` itself.
pub fn descendants(root: i32) -> Vec<i32> {
    let table = process_table();
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (pid, ppid, _) in &table {
        children.entry(*ppid).or_default().push(*pid);
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(p) = queue.pop() {
        if let Some(kids) = children.get(&p) {
            for k in kids {
                found.push(*k);
                queue.push(*k);
            }
        }
    }
    found
}

/// Every live process whose real uid is `uid`.
pub fn processes_of_uid(uid: u32) -> Vec<i32> {
    process_table()
        .into_iter()
        .filter(|(_, _, u)| *u == uid)
        .map(|(pid, _, _)| pid)
        .collect()
}

fn alive(pid: i32) -> bool {
    // A zombie still answers kill(0); count it as gone.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Sends SIGTERM to each pid, waits up to `grace` for them to go, then SIGKILLs the rest.
pub fn terminate(pids: &[i32], grace: Duration) {
    for pid in pids {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    for pid in pids {
        if alive(*pid) {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
    }
}

/// State (field 3), process group (5) and the foreground process group of its terminal (8),
/// from /proc/<pid>/stat.
fn job_state(pid: i32) -> Option<(char, i32, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    Some((
        state,
        fields.get(2)?.parse().ok()?,
        fields.get(5)?.parse().ok()?,
    ))
}

fn argv_of(pid: i32) -> Vec<u8> {
    fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()
}

/// Waits until a descendant of `ancestor` whose argv is exactly `argv` is running (not
/// stopped) in the foreground of its terminal (its process group is the terminal's foreground
/// group), and returns its pid. Interactive tests wait for this before typing a key meant for
/// that process (Ctrl-C, Ctrl-Z): a shell gives the terminal to a job some time after echoing
/// its command. `ancestor` is the test's own sshd or the recorder it started, so that the same
/// command run by another test (or anything else on the host) does not count. Panics after
/// `timeout`.
pub fn wait_foreground(ancestor: u32, argv: &[&str], timeout: Duration) -> i32 {
    let ancestor = i32::try_from(ancestor).expect("a pid");
    let wanted: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    let deadline = Instant::now() + timeout;
    loop {
        let mut seen = Vec::new();
        for pid in descendants(ancestor) {
            if argv_of(pid) != wanted {
                continue;
            }
            match job_state(pid) {
                Some((state, pgrp, tpgid)) if state != 'T' && state != 'Z' && pgrp == tpgid => {
                    return pid
                }
                other => seen.push((pid, other)),
            }
        }
        if Instant::now() >= deadline {
            panic!("no {argv:?} below pid {ancestor} running in the foreground of its terminal after {timeout:?}; (pid, (state, pgrp, tpgid)) seen: {seen:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PtySession;
    use std::process::Command;

    /// A shell on its own terminal running `sleep` in the foreground (the shell stays its
    /// parent).
    fn terminal_with_sleep() -> PtySession {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 977; :"]);
        PtySession::spawn(cmd, 80, 24)
    }

    #[test]
    fn wait_foreground_finds_only_the_given_ancestors_process() {
        let first = terminal_with_sleep();
        let first_sleep = wait_foreground(first.pid(), &["sleep", "977"], DEFAULT_WAIT);
        // The same command in the foreground of another terminal is not the first one's.
        let second = terminal_with_sleep();
        let second_sleep = wait_foreground(second.pid(), &["sleep", "977"], DEFAULT_WAIT);
        assert_ne!(first_sleep, second_sleep);
        assert!(descendants(second.pid() as i32).contains(&second_sleep));
        let mut sleeps = descendants(first.pid() as i32);
        sleeps.extend(descendants(second.pid() as i32));
        drop((first, second));
        terminate(&sleeps, Duration::from_secs(2));
    }

    const DEFAULT_WAIT: Duration = Duration::from_secs(10);
}
