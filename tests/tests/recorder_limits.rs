//! Limits: the per-channel byte cap samples output but keeps input; a caller's file size
//! limit cannot stop the record; huge TERM and command values are bounded, not fatal; a
//! large output arrives and is recorded without loss.

mod recorder_support;

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use recorder_support::*;
use sessrec_tests::*;

const SHELL_CONFIG: &str = "min_free_mb = 1\n[recorder]\nshell = \"/bin/bash\"\n";

#[test]
fn cap_samples_output_but_keeps_typed_input() {
    require_e2e!();
    ensure_syslog();
    let auth = AuthLog::mark();
    let rig = Rig::new(
        "rec-cap",
        "min_free_mb = 1\n[recorder]\nshell = \"/bin/bash\"\nmax_channel_bytes = 1048576\n",
    );
    let mut term = rig.login();
    term.expect("This session is recorded", WAIT);
    term.send_line("head -c 3000000 /dev/urandom | base64 -w 76; echo DONE-$((1+1))");
    term.expect("DONE-2", Duration::from_secs(120));
    term.send_line("echo AFTER-CAP");
    term.expect("echo AFTER-CAP", WAIT);
    term.expect("AFTER-CAP", WAIT);
    term.send_line("exit");
    term.wait_code(0, WAIT);
    let channel = rig.finished_channel(1);
    assert!(stream_text(&channel, Stream::Input).contains("echo AFTER-CAP\r"));
    let truncated = events(&channel, "truncated");
    assert!(
        truncated
            .iter()
            .any(|t| t["reason"] == "max_channel_bytes" && t["limit"] == 1048576),
        "{truncated:?}"
    );
    let end = event(&channel, "channel.end");
    assert!(end["truncated_output_bytes"].as_u64().unwrap() > 1_000_000);
    let size = std::fs::metadata(&channel).unwrap().len();
    assert!(
        size < 2_500_000,
        "record of {size} bytes: output was not sampled"
    );
    auth.wait_for("passed max_channel_bytes", WAIT);
}

/// `ulimit -f 1; exec sessrec-shell`: the recorder lifts the limit for itself. Without
/// CAP_SYS_RESOURCE (some containers) root cannot raise a hard limit, so the soft limit is used.
#[test]
fn file_size_limit_of_the_caller_does_not_stop_the_record() {
    require_e2e!();
    let rig = Rig::new("rec-ul", SHELL_CONFIG);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    let has_sys_resource = cap_eff & (1 << 24) != 0;
    let ulimit = if has_sys_resource {
        "ulimit -f 1"
    } else {
        "ulimit -S -f 1"
    };
    let mut cmd = Command::new("/bin/bash");
    cmd.arg("-c")
        .arg(format!(
            "{ulimit}; exec -a -sessrec-shell {}",
            rig.installed.shell().display()
        ))
        .env_clear()
        .envs(rig.env())
        .current_dir(rig.user.home())
        .uid(rig.user.uid())
        .gid(rig.user.gid());
    let mut term = PtySession::spawn(cmd, 80, 24);
    term.expect("This session is recorded", WAIT);
    term.send_line("ulimit -f; seq 1 3000");
    term.expect("\n2999\r\n3000", WAIT);
    term.send_line("exit");
    term.wait_code(0, WAIT);
    let channel = rig.finished_channel(1);
    assert!(std::fs::metadata(&channel).unwrap().len() > 8 * 1024);
    let output = stream_text(&channel, Stream::Output);
    assert!(output.contains("2999\r\n3000"));
    // The shell got the caller's limit back.
    assert!(
        output.contains("\r\n1\r\n"),
        "limit not restored in the child: {output:.200}"
    );
}

#[test]
fn huge_term_and_command_are_bounded_not_fatal() {
    require_e2e!();
    let rig = Rig::new("rec-big", SHELL_CONFIG);
    // One environment string may be at most 128 KiB (MAX_ARG_STRLEN), so this is the largest
    // TERM any sshd can pass on.
    let term_value = "t".repeat(128 * 1024 - 8);
    let command = format!(": {}; echo big-$((4*4))-ok", "x".repeat(100_000));
    let mut cmd = rig.command("sessrec-shell", &["-c", &command]);
    cmd.env("TERM", &term_value);
    let mut term = PtySession::spawn(cmd, 80, 24);
    term.expect("big-16-ok", WAIT);
    term.wait_code(0, WAIT);
    let channel = rig.finished_channel(1);
    let start = event(&channel, "channel.start");
    assert_eq!(start["term_truncated"], term_value.len() as u64);
    assert!(start["term"].as_str().unwrap().len() <= 256);
    // The command is never cut: what does not fit channel.start follows in command.part lines.
    assert!(start.get("command_truncated").is_none(), "{start:?}");
    assert_eq!(start["command_bytes"], command.len() as u64);
    let recorded = sessrec_core::command::read_channel_command(&channel)
        .unwrap()
        .expect("a command");
    assert!(recorded.is_whole());
    assert_eq!(recorded.text(), command);
    assert!(stream_text(&channel, Stream::Output).contains("big-16-ok"));
}

#[test]
fn hundred_megabytes_of_output_without_loss() {
    require_e2e!();
    let rig = Rig::new("rec-100m", SHELL_CONFIG);
    let cmd = rig.command(
        "sessrec-shell",
        &[
            "-c",
            "head -c 75000000 /dev/urandom | base64 -w 76; echo END-$((9*9))",
        ],
    );
    let mut term = PtySession::spawn(cmd, 80, 24);
    // Not `expect`: rescanning a 100 MB transcript is the slow part.
    term.wait_code(0, Duration::from_secs(600));
    assert!(term.transcript().ends_with(b"END-81\r\n"));
    let channel = rig.finished_channel(1);
    let recorded = stream_bytes(&channel, Stream::Output);
    let shown = term.transcript();
    assert!(
        recorded.len() > 100_000_000,
        "recorded {} bytes",
        recorded.len()
    );
    assert_eq!(recorded.len(), shown.len());
    assert!(
        recorded == shown,
        "recorded output differs from what the terminal showed"
    );
    assert_eq!(
        event(&channel, "channel.end")["bytes_out"],
        shown.len() as u64
    );
}
