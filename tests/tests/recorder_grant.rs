//! A grant is claimed only by a recorder of the same uid running under the grant's sshd
//! monitor; anything else leaves the session (its config, identity and directory) untouched.

mod recorder_support;

use std::process::Stdio;

use recorder_support::*;
use sessrec_tests::*;

const CONFIG: &str = "min_free_mb = 1\n[recorder]\nshell = \"/bin/bash\"\n";

fn run(rig: &Rig) -> std::process::Output {
    rig.command("sessrec-shell", &["-c", "echo claimed-run"])
        .stdin(Stdio::null())
        .output()
        .expect("run the recorder")
}

#[test]
fn a_valid_grant_is_claimed() {
    require_e2e!();
    let rig = Rig::new("rec-gok", CONFIG);
    let out = run(&rig);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "claimed-run\n");
    assert!(rig.grant_claimed());
    let channel = rig.finished_channel(1);
    assert!(event(&channel, "channel.start").get("grant").is_none());
}

#[test]
fn another_users_grant_is_not_claimed() {
    require_e2e!();
    let rig = Rig::new("rec-guid", CONFIG);
    rig.rewrite_grant(|g| g.uid = g.uid.wrapping_add(1));
    let _ = run(&rig);
    assert!(!rig.grant_claimed());
    assert!(channel_files(&rig.session_dir()).is_empty());
}

#[test]
fn a_grant_of_another_connection_is_not_claimed() {
    require_e2e!();
    let rig = Rig::new("rec-ganc", CONFIG);
    // Another connection's monitor is not an ancestor of this recorder: a sibling process.
    let mut other = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let other_pid = other.id();
    let start = sessrec_core::sys::process_start_time(other_pid).unwrap();
    rig.rewrite_grant(|g| {
        g.monitor_pid = other_pid;
        g.monitor_start = start;
    });
    let _ = run(&rig);
    let _ = other.kill();
    let _ = other.wait();
    assert!(!rig.grant_claimed());
    assert!(channel_files(&rig.session_dir()).is_empty());
}

#[test]
fn a_stale_grant_whose_monitor_restarted_is_not_claimed() {
    require_e2e!();
    let rig = Rig::new("rec-gst", CONFIG);
    // Same pid, another start time: the pid was reused.
    rig.rewrite_grant(|g| g.monitor_start += 1);
    let _ = run(&rig);
    assert!(!rig.grant_claimed());
    assert!(channel_files(&rig.session_dir()).is_empty());
}
