//! When the record cannot be written: fail closed by default (no unrecorded channel starts; a
//! running one ends with a message and a final, chain-valid record), or run unrecorded with
//! `on_error = "allow"`.

mod recorder_support;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use recorder_support::*;
use sessrec_tests::*;

fn fill(mount: &Mount) {
    // dd stops with ENOSPC once the filesystem is full; that is the point.
    let _ = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}/fill", mount.path().display()))
        .arg("bs=4k")
        .stderr(Stdio::null())
        .status();
}

fn run_exec(rig: &Rig, command: &str) -> std::process::Output {
    rig.command("sessrec-shell", &["-c", command])
        .stdin(Stdio::null())
        .output()
        .expect("run the recorder")
}

#[test]
fn full_disk_refuses_the_channel_before_it_starts() {
    require_e2e!();
    let mount = Mount::tmpfs(512);
    let rig = Rig::with_record_dir(
        "rec-full",
        mount.path(),
        "min_free_mb = 0\n[recorder]\nshell = \"/bin/bash\"\n",
    );
    fill(&mount);
    let marker = rig.user.home().join("ran-unrecorded");
    let out = run_exec(&rig, "touch ~/ran-unrecorded; echo ran");
    assert_ne!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("must be recorded") && err.contains("access refused"),
        "{err}"
    );
    assert!(
        !marker.exists(),
        "the command ran although it could not be recorded"
    );
}

#[test]
fn a_command_whose_channel_start_cannot_be_written_never_runs() {
    require_e2e!("prlimit");
    let rig = Rig::new(
        "rec-gate",
        "min_free_mb = 0\n[recorder]\nshell = \"/bin/bash\"\n",
    );
    let marker = rig.user.home().join("ran-before-its-record");
    // Record files may not grow past 4 KiB (a hard limit the recorder cannot raise), and the
    // command is long enough that its channel.start line does not fit: the channel's very
    // first line fails, after the command's process was started.
    let command = format!(": {}; touch {}", "p".repeat(6000), marker.display());
    let out = Command::new("prlimit")
        .arg("--fsize=4096:4096")
        .arg("--")
        .arg(rig.installed.shell())
        .args(["-c", &command])
        .env_clear()
        .envs(rig.env())
        .current_dir(rig.user.home())
        .uid(rig.user.uid())
        .gid(rig.user.gid())
        .stdin(Stdio::null())
        .output()
        .expect("run the recorder under prlimit");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("must be recorded") && err.contains("access refused"),
        "{err}"
    );
    assert!(
        !marker.exists(),
        "the command ran although its channel.start could not be written"
    );
}

#[test]
fn min_free_floor_refuses_new_channels() {
    require_e2e!();
    let mount = Mount::tmpfs(4096);
    let rig = Rig::with_record_dir(
        "rec-floor",
        mount.path(),
        "min_free_mb = 64\n[recorder]\nshell = \"/bin/bash\"\n",
    );
    let out = run_exec(&rig, "echo ran");
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MiB free") && err.contains("min_free_mb = 64"),
        "{err}"
    );
}

#[test]
fn disk_filling_mid_session_ends_it_with_a_complete_record() {
    require_e2e!();
    ensure_syslog();
    let auth = AuthLog::mark();
    let mount = Mount::tmpfs(1024);
    let rig = Rig::with_record_dir(
        "rec-enospc",
        mount.path(),
        "min_free_mb = 0\n[recorder]\nshell = \"/bin/bash\"\n",
    );
    let cmd = rig.command(
        "sessrec-shell",
        &["-c", "head -c 30000000 /dev/urandom | base64; sleep 60"],
    );
    let mut term = PtySession::spawn(cmd, 80, 24);
    term.expect("record cannot be written", Duration::from_secs(60));
    let status = term.wait(WAIT);
    assert_ne!(status.code(), Some(0));
    let channel = rig.finished_channel(1);
    let end = event(&channel, "channel.end");
    assert_eq!(end["reason"], "record_failure");
    assert!(!events(&channel, "error").is_empty());
    auth.wait_for("ending the channel", WAIT);
}

#[test]
fn on_error_allow_runs_unrecorded_and_says_so() {
    require_e2e!();
    ensure_syslog();
    let auth = AuthLog::mark();
    let mount = Mount::tmpfs(512);
    let rig = Rig::with_record_dir(
        "rec-allow",
        mount.path(),
        "min_free_mb = 0\non_error = \"allow\"\n[recorder]\nshell = \"/bin/bash\"\n",
    );
    fill(&mount);
    let out = run_exec(&rig, "echo ran-$((1+1))");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran-2\n");
    assert_eq!(out.status.code(), Some(0));
    auth.wait_for("running UNRECORDED", WAIT);
}
