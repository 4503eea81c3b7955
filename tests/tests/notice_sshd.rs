//! Through a real sshd: the user notice (`[recorder] notice`) is shown on the terminal of every
//! pty channel — a login shell, a command run with `ssh -tt`, a ForceCommand login — before the
//! command runs, and each channel's record says what was shown (`user_notice`). A pipe channel
//! shows nothing (its bytes are the command's) and its record says why.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use sessrec_tests::*;

const T: Duration = Duration::from_secs(30);
const NOTICE: &str = "notice = \"Notice-check: this channel is recorded ({session}).\"\n";
/// The notice as the terminal shows it, with any session id.
const SHOWN: &str = r"Notice-check: this channel is recorded \([0-9a-f-]+\)\.";

/// The finished record of the session's only channel.
fn finished_channel(r: &RecordedLogin) -> (PathBuf, PathBuf) {
    let session = r.tree.wait_sessions(1, T).remove(0);
    let channel = wait_channels(&session, 1, T).remove(0);
    wait_last_event(&channel, "channel.end", T);
    assert_chain_ok(&channel);
    (session, channel)
}

/// The channel's one `user_notice` line, checked to come right after `channel.start` (and its
/// command parts), before any I/O.
fn user_notice(channel: &Path) -> serde_json::Map<String, Value> {
    let lines = read_records(channel);
    let kinds: Vec<&str> = lines
        .iter()
        .map(|l| l["type"].as_str().unwrap_or(""))
        .collect();
    let at = kinds
        .iter()
        .position(|k| *k == "user_notice")
        .unwrap_or_else(|| panic!("no user_notice line: {kinds:?}"));
    assert!(
        kinds[..at]
            .iter()
            .all(|k| *k == "channel.start" || *k == "command.part"),
        "user_notice must follow channel.start at once: {kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "user_notice").count(),
        1,
        "{kinds:?}"
    );
    lines[at].clone()
}

/// The notice was shown on the terminal before anything of the command, and recorded as
/// shown with the exact text, naming this session.
fn assert_shown(term: &PtySession, session: &Path, channel: &Path, first_output: &str) {
    let notice = user_notice(channel);
    assert_eq!(notice["shown"], true, "{notice:?}");
    let text = notice["text"].as_str().expect("the notice text");
    let id = session.file_name().unwrap().to_string_lossy();
    assert_eq!(
        text,
        format!("Notice-check: this channel is recorded ({id}).")
    );
    let transcript = term.transcript_text();
    let shown_at = transcript
        .find(text)
        .unwrap_or_else(|| panic!("{text:?} not on the terminal:\n{transcript}"));
    let output_at = transcript
        .find(first_output)
        .unwrap_or_else(|| panic!("{first_output:?} not on the terminal:\n{transcript}"));
    assert!(shown_at < output_at, "{transcript}");
    assert!(notice["off"].is_u64(), "{notice:?}");
}

/// An interactive shell on `term` after the notice: runs `echo <word>-42` and exits; the
/// notice was shown before that output and recorded. Returns the channel file.
fn shell_shows_the_notice(r: &RecordedLogin, mut term: PtySession, word: &str) -> PathBuf {
    term.expect(SHOWN, T);
    term.expect(r"\$ $", T);
    term.send_line(&format!("echo {word}-$((6*7))"));
    term.expect(&format!("{word}-42"), T);
    term.send_line("exit");
    term.wait(T);
    let (session, channel) = finished_channel(r);
    assert_shown(&term, &session, &channel, &format!("{word}-42"));
    channel
}

#[test]
fn login_shell_shows_and_records_the_notice() {
    require_e2e!();
    let r = RecordedLogin::launched("notice-login", Launch::LoginShell, NOTICE, |b| b);
    let term = r.sshd.login(&r.user).interactive();
    shell_shows_the_notice(&r, term, "login");
}

#[test]
fn pty_exec_channel_shows_and_records_the_notice() {
    require_e2e!();
    let r = RecordedLogin::launched("notice-tt", Launch::LoginShell, NOTICE, |b| b);
    // `ssh -tt host 'bash --norc -i'`: an exec channel with a pty is interactive too.
    let term = r.sshd.login(&r.user).pty_exec("bash --norc -i");
    let channel = shell_shows_the_notice(&r, term, "exec");
    assert_eq!(only_event(&channel, "channel.start")["kind"], "exec");
}

#[test]
fn force_command_login_shows_and_records_the_notice() {
    require_e2e!();
    let r = RecordedLogin::launched("notice-fc", Launch::ForceCommand, NOTICE, |b| b);
    let term = r.sshd.login(&r.user).interactive();
    let channel = shell_shows_the_notice(&r, term, "forced");
    assert_eq!(only_event(&channel, "channel.start")["force_command"], true);
}

#[test]
fn pipe_channel_output_is_untouched_and_the_record_says_no_notice_was_shown() {
    require_e2e!();
    let r = RecordedLogin::launched("notice-pipe", Launch::LoginShell, NOTICE, |b| b);
    let out = r.sshd.login(&r.user).exec("echo piped-$((6*7))", b"");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped-42\n");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("Notice-check"),
        "{out:?}"
    );
    let (_, channel) = finished_channel(&r);
    let notice = user_notice(&channel);
    assert_eq!(notice["shown"], false, "{notice:?}");
    assert_eq!(notice["reason"], "no_terminal", "{notice:?}");
    assert!(notice.get("text").is_none(), "{notice:?}");
}
