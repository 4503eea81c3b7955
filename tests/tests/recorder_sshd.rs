//! Through a real sshd (pam_sessrec in the session stack, the recorder as login shell): the
//! user's `$SSH_TTY` is out of reach, and a recorder started inside a recorded session records
//! a nested channel of the same session.

use std::time::Duration;

use sessrec_tests::*;

const T: Duration = Duration::from_secs(30);

#[test]
fn ssh_tty_is_taken_and_nested_channels_are_linked() {
    require_e2e!();
    let RecordedLogin {
        tree,
        user,
        sshd,
        installed,
    } = RecordedLogin::start("rec-ssh");

    let mut term = sshd.login(&user).interactive();
    term.expect(r"\$ $", T);
    term.send_line("stat -c tty=%u:%a $SSH_TTY");
    term.expect("tty=0:600", T);
    term.send_line("printf X >$SSH_TTY 2>/dev/null; echo write-rc=$?");
    term.expect("write-rc=1", T);
    term.send_line("(cat $SSH_TTY >/dev/null 2>&1; echo cat-rc=$?) &");
    term.expect("cat-rc=1", T);
    term.send_line("kill -KILL $PPID; echo kill-rc=$?");
    term.expect("kill-rc=1", T);
    term.send_line("echo every-byte-$((8*8))");
    term.expect("every-byte-64", T);
    term.send_line(&format!(
        "{} -c 'echo nested-$((1+2))'",
        installed.shell().display()
    ));
    term.expect("nested-3", T);
    // Type on only once the shell is back: keys typed while the nested recorder is ending
    // would go to it, as to any program reading the terminal.
    term.expect(r"\$ (\x1b\[K)?$", T);
    term.send_line("exit");
    term.wait(T);

    let session = tree.wait_sessions(1, T).remove(0);
    let channels = wait_channels(&session, 2, T);
    for channel in &channels {
        wait_last_event(channel, "channel.end", T);
        assert_chain_ok(channel);
    }
    let outer = channels
        .iter()
        .find(|c| only_event(c, "channel.start")["kind"] == "shell")
        .expect("the login channel");
    let nested = channels
        .iter()
        .find(|c| only_event(c, "channel.start")["kind"] == "exec")
        .expect("the nested channel");
    let outer_start = only_event(outer, "channel.start");
    assert_eq!(outer_start["outer_tty"], "taken");
    assert_eq!(outer_start["identity_verified"], true);
    let input = stream_text(outer, Stream::Input);
    assert!(input.contains("echo every-byte-$((8*8))\r"), "{input}");
    let nested_start = only_event(nested, "channel.start");
    let outer_no = outer
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .trim_start_matches("channel-")
        .trim_end_matches(".jsonl")
        .to_string();
    let session_id = session.file_name().unwrap().to_str().unwrap();
    assert_eq!(
        nested_start["parent_channel"],
        format!("{session_id}/{outer_no}")
    );
    assert_eq!(nested_start["outer_tty"], "nested");
    assert!(stream_text(nested, Stream::Output).contains("nested-3"));
}

#[test]
fn client_disconnect_mid_output_leaves_a_complete_record() {
    require_e2e!();
    let RecordedLogin {
        tree,
        user,
        sshd,
        installed: _installed,
    } = RecordedLogin::start("rec-disc");
    let mut term = sshd.login(&user).interactive();
    term.expect(r"\$ ", T);
    term.send_line("yes disconnect-output");
    term.expect("disconnect-output\r\ndisconnect-output", T);
    // The client vanishes: sshd closes the terminal under the recorder.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(term.pid() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let session = tree.wait_sessions(1, T).remove(0);
    let channel = wait_channels(&session, 1, T).remove(0);
    wait_last_event(&channel, "channel.end", T);
    assert_chain_ok(&channel);
    assert_eq!(only_event(&channel, "channel.end")["reason"], "hangup");
    assert!(stream_text(&channel, Stream::Output).contains("disconnect-output"));
}

#[test]
fn ssh_t_gets_a_recorded_shell_over_pipes() {
    require_e2e!();
    let RecordedLogin {
        tree,
        user,
        sshd,
        installed: _installed,
    } = RecordedLogin::start("rec-sshT");
    let login = sshd.login(&user);
    // `ssh -T host` with no command: an interactive login shell on pipes.
    let out = sessrec_tests::util::output_with_timeout(
        &mut login.ssh_command(&["-T"]),
        b"echo over-pipes-$((6*7)) ; echo to-stderr >&2 ; exit 5\n",
        T,
    );
    assert_eq!(out.status.code(), Some(5));
    // (sshd may show the PAM module's notice first, for shell sessions.)
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.ends_with("over-pipes-42\n") && stdout.lines().last() == Some("over-pipes-42"),
        "{stdout:?}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to-stderr\n");
    let session = tree.wait_sessions(1, T).remove(0);
    let channel = wait_channels(&session, 1, T).remove(0);
    wait_last_event(&channel, "channel.end", T);
    assert_chain_ok(&channel);
    let start = only_event(&channel, "channel.start");
    assert_eq!(start["kind"], "shell");
    assert_eq!(start["mode"], "pipe");
    assert_eq!(start["login"], true);
    assert!(stream_text(&channel, Stream::Input).contains("echo over-pipes-$((6*7))"));
    assert_eq!(stream_text(&channel, Stream::Output), "over-pipes-42\n");
    assert_eq!(stream_text(&channel, Stream::Stderr), "to-stderr\n");
    assert_eq!(only_event(&channel, "channel.end")["exit_code"], 5);
}
