//! sessrec-shell without a terminal (exec channels, `ssh -T`): stdin, stdout and stderr relayed
//! through pipes byte for byte, recorded apart, half-close and exit status passed on.

mod recorder_support;

use std::io::{Read, Write};
use std::process::{Child, Output, Stdio};
use std::thread;

use recorder_support::*;
use sessrec_tests::*;

const CONFIG: &str = "min_free_mb = 1\n[recorder]\nshell = \"/bin/bash\"\n";

/// Runs the recorder with `stdin` fed from a thread and both outputs collected.
fn run_piped(
    rig: &Rig,
    argv0: &str,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Vec<u8>,
) -> Output {
    let mut cmd = rig.command(argv0, args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child: Child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the recorder");
    let mut input = child.stdin.take().unwrap();
    let feeder = thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let mut err_pipe = child.stderr.take().unwrap();
    let err_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    let stderr = err_reader.join().unwrap();
    feeder.join().unwrap();
    let status = child.wait().unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut data = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut data)
        .unwrap();
    data
}

#[test]
fn exec_mode_is_byte_exact_with_stderr_apart() {
    require_e2e!();
    let rig = Rig::new("rec-px", CONFIG);
    let data = random_bytes(20 * 1024 * 1024);
    let out = run_piped(
        &rig,
        "sessrec-shell",
        &["-c", "cat; printf 'err-\\377-text' >&2; exit 7"],
        &[],
        data.clone(),
    );
    assert_eq!(out.status.code(), Some(7));
    assert!(out.stdout == data, "stdout differs from stdin");
    assert_eq!(out.stderr, b"err-\xff-text");

    let channel = rig.finished_channel(1);
    let start = event(&channel, "channel.start");
    assert_eq!(start["kind"], "exec");
    assert_eq!(start["mode"], "pipe");
    assert_eq!(start["outer_tty"], "none");
    assert!(
        stream_bytes(&channel, Stream::Input) == data,
        "recorded input differs"
    );
    assert!(
        stream_bytes(&channel, Stream::Output) == data,
        "recorded output differs"
    );
    assert_eq!(stream_bytes(&channel, Stream::Stderr), b"err-\xff-text");
    let end = event(&channel, "channel.end");
    assert_eq!(end["exit_code"], 7);
    assert_eq!(end["bytes_in"], data.len() as u64);
}

#[test]
fn stdin_half_close_reaches_the_command() {
    require_e2e!();
    let rig = Rig::new("rec-hc", CONFIG);
    let out = run_piped(
        &rig,
        "sessrec-shell",
        &["-c", "cat; echo after-eof"],
        &[],
        b"abc".to_vec(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"abcafter-eof\n");
    let channel = rig.finished_channel(1);
    assert_eq!(stream_bytes(&channel, Stream::Output), b"abcafter-eof\n");
}

#[test]
fn death_by_signal_is_128_plus_signal() {
    require_e2e!();
    let rig = Rig::new("rec-sg", CONFIG);
    let out = run_piped(
        &rig,
        "sessrec-shell",
        &["-c", "kill -TERM $$"],
        &[],
        Vec::new(),
    );
    assert_eq!(out.status.code(), Some(128 + 15));
    let channel = rig.finished_channel(1);
    assert_eq!(event(&channel, "channel.end")["signal"], 15);
}

#[test]
fn force_command_mode_runs_the_original_command() {
    require_e2e!();
    let rig = Rig::new("rec-fc", CONFIG);
    let own = rig.installed.shell().to_str().unwrap().to_string();
    let out = run_piped(
        &rig,
        "sessrec-shell",
        &["-c", &own],
        &[("SSH_ORIGINAL_COMMAND", "echo forced-$((2+2))")],
        Vec::new(),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "forced-4\n");
    let channel = rig.finished_channel(1);
    let start = event(&channel, "channel.start");
    assert_eq!(start["force_command"], true);
    assert_eq!(start["command"], "echo forced-$((2+2))");
    // A bare invocation (sshd's `ForceCommand /path/sessrec-shell` via /bin/sh) too.
    let out = run_piped(
        &rig,
        &own,
        &[],
        &[("SSH_ORIGINAL_COMMAND", "echo bare-$((3+3))")],
        Vec::new(),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bare-6\n");
}

#[test]
fn ssh_t_style_shell_over_pipes_is_recorded() {
    require_e2e!();
    let rig = Rig::new("rec-sT", CONFIG);
    let out = run_piped(
        &rig,
        "-sessrec-shell",
        &[],
        &[],
        b"echo piped-$((5*5))\nexit 4\n".to_vec(),
    );
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stdout).contains("piped-25"));
    let channel = rig.finished_channel(1);
    let start = event(&channel, "channel.start");
    assert_eq!(start["kind"], "shell");
    assert_eq!(start["mode"], "pipe");
    assert!(stream_text(&channel, Stream::Input).contains("echo piped-$((5*5))"));
    assert!(stream_text(&channel, Stream::Output).contains("piped-25"));
}

#[test]
fn bad_config_is_refused_with_a_clear_error() {
    require_e2e!();
    let rig = Rig::new("rec-bc", CONFIG);
    rig.tree
        .write_config("[recorder]\nshell = \"/bin/bash\"\nmax_line_bytes = \"many\"\n");
    let out = run_piped(
        &rig,
        "sessrec-shell",
        &["-c", "echo should-not-run"],
        &[],
        Vec::new(),
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("configuration error") && err.contains("max_line_bytes"),
        "{err}"
    );
}

#[test]
fn closed_standard_descriptors_cannot_capture_the_record() {
    require_e2e!();
    use std::os::unix::process::CommandExt;
    let rig = Rig::new("rec-cl", CONFIG);
    // The caller closes stderr; a file the recorder opens must not land on fd 2.
    let out = std::process::Command::new("/bin/bash")
        .arg("-c")
        .arg(format!(
            "exec 2>&-; exec -a sessrec-shell {} -c 'echo out-$((1+1)); echo err-text >&2'",
            rig.installed.shell().display()
        ))
        .env_clear()
        .envs(rig.env())
        .current_dir(rig.user.home())
        .uid(rig.user.uid())
        .gid(rig.user.gid())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out-2\n");
    assert_eq!(out.status.code(), Some(0));
    let channel = rig.finished_channel(1);
    assert_eq!(stream_bytes(&channel, Stream::Stderr), b"err-text\n");
}

#[test]
fn hangup_reaches_a_pipe_mode_command_and_stubborn_ones_are_killed() {
    require_e2e!();
    let rig = Rig::new("rec-phu", CONFIG);
    let mut child = rig
        .command(
            "sessrec-shell",
            &["-c", "trap '' HUP TERM; echo trapped; sleep 100"],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 8];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"trapped\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let status = wait_until_exit(&mut child);
    assert_eq!(status.code(), Some(128 + 9));
    let channel = rig.finished_channel(1);
    let end = event(&channel, "channel.end");
    assert_eq!(end["reason"], "hangup");
    assert_eq!(end["signal"], 9);
}

fn wait_until_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "recorder did not end after SIGHUP"
        );
        thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_shell_that_cannot_start_is_recorded_as_such() {
    require_e2e!();
    let rig = Rig::new(
        "rec-nosh",
        "min_free_mb = 1\n[recorder]\nshell = \"/nonexistent/shell\"\n",
    );
    let out = run_piped(&rig, "sessrec-shell", &["-c", "echo x"], &[], Vec::new());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/shell"));
    let channel = rig.finished_channel(1);
    assert!(!events(&channel, "error").is_empty());
    assert_eq!(event(&channel, "channel.end")["reason"], "start_failed");
}

#[test]
fn the_recorder_itself_as_real_shell_is_refused() {
    require_e2e!();
    let rig = Rig::new("rec-self", "min_free_mb = 1\n");
    let own = rig.installed.shell().display().to_string();
    rig.tree
        .write_config(&format!("min_free_mb = 1\n[recorder]\nshell = \"{own}\"\n"));
    let out = run_piped(&rig, "sessrec-shell", &["-c", "echo x"], &[], Vec::new());
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is sessrec-shell itself"));
}

#[test]
fn the_final_anchor_goes_to_authpriv() {
    require_e2e!();
    ensure_syslog();
    let auth = AuthLog::mark();
    let rig = Rig::new("rec-anc", CONFIG);
    let out = run_piped(
        &rig,
        "sessrec-shell",
        &["-c", "echo anchored"],
        &[],
        Vec::new(),
    );
    assert_eq!(out.status.code(), Some(0));
    let channel = rig.finished_channel(1);
    let report = assert_chain_ok(&channel);
    let expected = format!(
        "sessrec anchor file={}/channel-1.jsonl seq={} sha256={}",
        rig.session, report.last_seq, report.last_digest
    );
    let line = auth.wait_for(&regex_escape(&expected), WAIT);
    assert!(line.contains("sessrec-shell"), "{line}");
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}
