//! Through a real sshd (pam_sessrec in the session stack; the recorder as login shell and as
//! `ForceCommand`): in pipe mode (`ssh -T`) the process that forwards signals to the command and
//! collects its exit status (the command's parent, `$PPID`) cannot be stopped or killed by the
//! user, so `sessrec kill` and the idle timeout still end the command and the record keeps how it
//! ended. In pty mode the recorder itself is that process; the user cannot stop it either.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Map, Value};
use sessrec_tests::util::wait_child;
use sessrec_tests::*;

const T: Duration = Duration::from_secs(30);

/// Fields drop in order: sshd (and its sessions) first, the installation last.
struct Rig {
    sshd: PrivateSshd,
    user: TestUser,
    tree: RecordTree,
    _installed: Installed,
}

impl Rig {
    fn new(tag: &str, launch: Launch, recorder_config: &str) -> Rig {
        let RecordedLogin {
            tree,
            user,
            sshd,
            installed,
        } = RecordedLogin::launched(tag, launch, recorder_config, |b| b);
        Rig {
            sshd,
            user,
            tree,
            _installed: installed,
        }
    }

    /// `ssh -T user@host remote`, left running.
    fn spawn_exec(&self, remote: &str) -> Child {
        let mut cmd = self.sshd.login(&self.user).ssh_command(&["-T"]);
        cmd.arg(remote)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.spawn().expect("start ssh")
    }

    /// The session and its one channel, once `needle` is in the channel's output.
    fn channel_with_output(&self, needle: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let session = self.tree.wait_sessions(1, T).remove(0);
        let channel = wait_channels(&session, 1, T).remove(0);
        wait_until(&format!("{needle:?} in the record"), T, || {
            stream_text(&channel, Stream::Output).contains(needle)
        });
        (session, channel)
    }

    /// Processes of the test user running `program`.
    fn user_processes_named(&self, program: &str) -> Vec<i32> {
        let uid_line = format!("Uid:\t{}\t", self.user.uid());
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
                status.is_ok_and(|s| {
                    s.lines().next() == Some(format!("Name:\t{program}").as_str())
                        && s.lines().any(|l| l.starts_with(&uid_line))
                        && !s.lines().any(|l| l.starts_with("State:\tZ"))
                })
            })
            .collect()
    }
}

/// The command signals its parent (the monitor), then becomes a long sleep.
fn attack(signal: &str) -> String {
    format!("kill -{signal} $PPID; echo signal-rc=$?; exec sleep 9999")
}

/// The channel ended as `reason`, with the command's end (a signal) in the record, no sleep of
/// the user left, and the client disconnected.
fn assert_command_ended(rig: &Rig, channel: &Path, client: &mut Child, reason: &str) {
    wait_last_event(channel, "channel.end", T);
    assert_chain_ok(channel);
    let end: Map<String, Value> = only_event(channel, "channel.end");
    assert_eq!(end["reason"], reason, "{end:?}");
    assert!(
        end.get("signal").and_then(Value::as_i64).is_some(),
        "the command's end is in the record: {end:?}"
    );
    wait_until("the user's sleep to end", T, || {
        rig.user_processes_named("sleep").is_empty()
    });
    let ended = wait_child(client, T);
    if ended.is_none() {
        let _ = client.kill();
    }
    assert!(ended.is_some(), "the ssh client was disconnected");
}

fn stopped_or_killed_monitor_cannot_defeat_kill(tag: &str, launch: Launch, signal: &str) {
    let rig = Rig::new(tag, launch, "");
    let mut client = rig.spawn_exec(&attack(signal));
    let (session, channel) = rig.channel_with_output("signal-rc=");
    assert_eq!(only_event(&channel, "channel.start")["mode"], "pipe");
    // The monitor is out of the user's reach.
    assert!(
        stream_text(&channel, Stream::Output).contains("signal-rc=1"),
        "{}",
        stream_text(&channel, Stream::Output)
    );
    let out = run_sessrec(
        rig.tree.record_dir(),
        &[
            "kill",
            &session_id(&session),
            "--message",
            "ended by the operator",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_command_ended(&rig, &channel, &mut client, "terminated");
}

#[test]
fn stopped_monitor_cannot_defeat_kill_login_shell() {
    require_e2e!();
    stopped_or_killed_monitor_cannot_defeat_kill("mon-stop", Launch::LoginShell, "STOP");
}

#[test]
fn stopped_monitor_cannot_defeat_kill_force_command() {
    require_e2e!();
    stopped_or_killed_monitor_cannot_defeat_kill("mon-stopf", Launch::ForceCommand, "STOP");
}

#[test]
fn killed_monitor_cannot_defeat_kill_login_shell() {
    require_e2e!();
    stopped_or_killed_monitor_cannot_defeat_kill("mon-kill", Launch::LoginShell, "KILL");
}

#[test]
fn killed_monitor_cannot_defeat_kill_force_command() {
    require_e2e!();
    stopped_or_killed_monitor_cannot_defeat_kill("mon-killf", Launch::ForceCommand, "KILL");
}

#[test]
fn stopped_monitor_cannot_defeat_the_idle_timeout() {
    require_e2e!();
    let rig = Rig::new(
        "mon-idle",
        Launch::LoginShell,
        "idle_timeout_s = 3\nidle_warning_s = 1\n",
    );
    let mut client = rig.spawn_exec(&attack("STOP"));
    let (_session, channel) = rig.channel_with_output("signal-rc=");
    assert_command_ended(&rig, &channel, &mut client, "idle");
}

#[test]
fn the_stopped_process_group_of_the_monitor_and_the_command_itself_change_nothing() {
    require_e2e!();
    let rig = Rig::new("mon-pgrp", Launch::ForceCommand, "");
    // The monitor's process group, then the command's own: stopping itself must not keep the
    // command from being ended.
    let mut client = rig.spawn_exec(
        "kill -STOP -- -$(ps -o pgid= -p $PPID | tr -d ' '); echo signal-rc=$?; \
         sleep 9999 & kill -STOP -- -$$; wait",
    );
    let (session, channel) = rig.channel_with_output("signal-rc=");
    assert!(
        stream_text(&channel, Stream::Output).contains("signal-rc=1"),
        "{}",
        stream_text(&channel, Stream::Output)
    );
    let out = run_sessrec(rig.tree.record_dir(), &["kill", &session_id(&session)]);
    assert!(out.status.success(), "{out:?}");
    assert_command_ended(&rig, &channel, &mut client, "terminated");
}

#[test]
fn pty_mode_recorder_cannot_be_stopped() {
    require_e2e!();
    let rig = Rig::new("mon-pty", Launch::LoginShell, "");
    let mut term = rig.sshd.login(&rig.user).interactive();
    term.expect(r"\$ $", T);
    // $PPID of the login shell is the recorder, which collects its exit status.
    term.send_line("kill -STOP $PPID; echo stop-rc=$?");
    term.expect("stop-rc=1", T);
    term.send_line("kill -CONT $PPID; echo cont-rc=$?");
    term.expect("cont-rc=1", T);
    term.send_line("exec sleep 9999");
    let session = rig.tree.wait_sessions(1, T).remove(0);
    let channel = wait_channels(&session, 1, T).remove(0);
    let out = run_sessrec(rig.tree.record_dir(), &["kill", &session_id(&session)]);
    assert!(out.status.success(), "{out:?}");
    wait_last_event(&channel, "channel.end", T);
    assert_chain_ok(&channel);
    let end = only_event(&channel, "channel.end");
    assert_eq!(end["reason"], "terminated", "{end:?}");
    assert!(
        end.get("signal").and_then(Value::as_i64).is_some(),
        "{end:?}"
    );
    term.wait(T);
}
