//! Logging in through a real sshd whose user's login shell is the installed setuid recorder,
//! with pam_sessrec in the session stack: an interactive pty session and an exec session each
//! leave a chain-valid record holding what was typed and shown.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sessrec_tests::*;

const T: Duration = Duration::from_secs(30);

/// The channel file of the one session whose `channel.start` has `mode` (`pty`/`pipe`).
fn channel_with_mode(tree: &RecordTree, mode: &str) -> (PathBuf, PathBuf) {
    for session in tree.sessions() {
        for channel in channel_files(&session) {
            let start = only_event(&channel, "channel.start");
            if start.get("mode").and_then(|v| v.as_str()) == Some(mode) {
                return (session, channel);
            }
        }
    }
    panic!("no {mode} channel recorded\n{}", tree.listing());
}

fn assert_session_complete(session: &Path, channel: &Path) {
    wait_last_event(channel, "channel.end", T);
    assert_chain_ok(channel);
    let session_file = session.join("session.jsonl");
    wait_last_event(&session_file, "logout", T);
    assert_chain_ok(&session_file);
}

/// The `logout` line lists the channel; once it says the channel was closed, its last seq and
/// digest are those of the channel file's final line.
fn assert_logout_matches(session: &Path, channel: &Path) {
    let logout = only_event(&session.join("session.jsonl"), "logout");
    let name = channel
        .file_name()
        .and_then(|n| n.to_str())
        .expect("file name");
    let listed = logout
        .get("channels")
        .and_then(|v| v.as_array())
        .and_then(|list| {
            list.iter()
                .find(|c| c.get("file").and_then(|f| f.as_str()) == Some(name))
        })
        .unwrap_or_else(|| panic!("logout does not list {name}: {logout:?}"))
        .clone();
    if listed.get("open").and_then(|v| v.as_bool()) == Some(false) {
        let report = assert_chain_ok(channel);
        assert_eq!(
            listed.get("last_seq").and_then(|v| v.as_u64()),
            Some(report.last_seq)
        );
        assert_eq!(
            listed.get("digest").and_then(|v| v.as_str()),
            Some(report.last_digest.as_str())
        );
    }
}

#[test]
fn interactive_and_exec_logins_are_recorded() {
    require_e2e!();
    let r = RecordedLogin::start("login");

    let mut term = r.sshd.login(&r.user).interactive();
    term.expect(r"\$ $", T);
    term.send_line("echo hello-$((6*7))");
    term.expect("hello-42", T);
    term.resize(100, 40);
    let mut resized = false;
    for _ in 0..50 {
        term.send_line("echo size=$(stty size)=");
        if term.expect(r"size=\d+ \d+=", T) == "size=40 100=" {
            resized = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        resized,
        "resize never reached the shell:\n{}",
        term.transcript_text()
    );
    term.send_line("exit");
    term.wait_code(0, T);

    let out = r
        .sshd
        .login(&r.user)
        .exec("printf abc; printf err >&2; exit 3", b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "abc", "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err", "{out:?}");
    assert_eq!(out.status.code(), Some(3), "{out:?}");

    r.tree.wait_sessions(2, T);

    let (session, channel) = channel_with_mode(&r.tree, "pty");
    assert_session_complete(&session, &channel);
    let typed = stream_text(&channel, Stream::Input);
    assert!(
        typed.contains("echo hello-$((6*7))"),
        "typed input missing: {typed:?}"
    );
    let shown = stream_text(&channel, Stream::Output);
    assert!(shown.contains("hello-42"), "output missing: {shown:?}");
    let start = only_event(&channel, "channel.start");
    assert_eq!(start.get("kind").and_then(|v| v.as_str()), Some("shell"));
    assert_eq!(
        start.get("cols").and_then(|v| v.as_u64()),
        Some(80),
        "{start:?}"
    );
    assert_eq!(
        start.get("rows").and_then(|v| v.as_u64()),
        Some(24),
        "{start:?}"
    );
    assert!(
        events(&channel, "resize").iter().any(|e| {
            e.get("cols").and_then(|v| v.as_u64()) == Some(100)
                && e.get("rows").and_then(|v| v.as_u64()) == Some(40)
        }),
        "no resize to 100x40 recorded"
    );
    let login = only_event(&session.join("session.jsonl"), "login");
    assert_eq!(
        login.get("user").and_then(|v| v.as_str()),
        Some(r.user.name())
    );
    assert_eq!(
        login.get("key_fingerprint").and_then(|v| v.as_str()),
        Some(r.user.key().fingerprint().as_str()),
        "{login:?}"
    );
    assert_logout_matches(&session, &channel);

    let (session, channel) = channel_with_mode(&r.tree, "pipe");
    assert_session_complete(&session, &channel);
    assert_eq!(stream_text(&channel, Stream::Output), "abc");
    assert_eq!(stream_text(&channel, Stream::Stderr), "err");
    assert_logout_matches(&session, &channel);
    let start = only_event(&channel, "channel.start");
    assert_eq!(start.get("kind").and_then(|v| v.as_str()), Some("exec"));
    assert_eq!(
        start.get("command").and_then(|v| v.as_str()),
        Some("printf abc; printf err >&2; exit 3")
    );
    let end = only_event(&channel, "channel.end");
    assert_eq!(
        end.get("exit_code").and_then(|v| v.as_i64()),
        Some(3),
        "channel.end: {end:?}"
    );
}

#[test]
fn records_are_root_only() {
    require_e2e!();
    let r = RecordedLogin::start("login");
    let out = r.sshd.login(&r.user).exec(
        &format!("ls {} 2>&1; echo rc=$?", r.tree.record_dir().display()),
        b"",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Permission denied") && text.contains("rc=2"),
        "user could list the record tree: {out:?}"
    );
    let session = r.tree.wait_sessions(1, T).remove(0);
    let channel = wait_channels(&session, 1, T).remove(0);
    assert_session_complete(&session, &channel);
    use std::os::unix::fs::MetadataExt;
    for file in r.tree.all_files() {
        let meta = std::fs::metadata(&file).expect("stat record");
        assert_eq!(meta.uid(), 0, "{} not root-owned", file.display());
        assert_eq!(
            meta.mode() & 0o077,
            0,
            "{} readable by others",
            file.display()
        );
    }
}

#[test]
fn keys_typed_before_the_recorder_starts_reach_the_shell_and_the_record() {
    require_e2e!();
    let r = RecordedLogin::start("login");
    let mut term = r.sshd.login(&r.user).interactive();
    // Typed at once, while the connection is still being set up: the keys wait in sshd's
    // terminal, which the recorder revokes; it must pass them on rather than lose them.
    term.send_line("echo early-$((40+2))");
    term.expect("early-42", T);
    term.send_line("exit");
    term.wait(T);
    let session = r.tree.wait_sessions(1, T).remove(0);
    let channel = wait_channels(&session, 1, T).remove(0);
    wait_last_event(&channel, "channel.end", T);
    assert_chain_ok(&channel);
    assert!(stream_text(&channel, Stream::Input).contains("echo early-$((40+2))"));
}
