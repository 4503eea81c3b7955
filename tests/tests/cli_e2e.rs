//! The `sessrec` operator CLI against records of real sessions: a user logs in through a
//! private sshd whose login shell is the installed recorder, types, edits and runs commands;
//! then list, show, play, export (asciicast replayed by the real `asciinema cat`, text, json,
//! html), search and verify (on copies of the tree, after editing, deleting and truncating
//! lines) are checked against what the test's terminal captured, one behaviour per test over
//! one recording; and `kill` ends a live session.

mod recorder_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use recorder_support::wait_password_mode;
use sessrec_tests::run_sessrec as sessrec;
use sessrec_tests::*;

const T: Duration = Duration::from_secs(30);

/// Records one interactive session with typing, editing, an erased command and output split
/// across record lines, plus one exec session. Returns the pty session's transcript.
fn record_sessions(r: &RecordedLogin) -> Vec<u8> {
    let mut term = r.sshd.login(&r.user).interactive();
    term.expect(r"\$ $", T);
    term.send_line("echo cli-e2e-$((6*7))");
    term.expect("cli-e2e-42", T);
    term.expect(r"\$ $", T);
    // Typed, then erased with Ctrl-U before Enter.
    term.send("rm -rf /tmp/not-really");
    term.expect("not-really", T);
    term.send("\x15");
    term.send_line("echo after-erase");
    term.expect("after-erase\r\n", T);
    term.expect(r"\$ $", T);
    // Output written in two parts a second apart: the recorder flushes in between, so the
    // text is split across two record lines.
    term.send_line("printf SPLIT-NEE; sleep 1.2; printf 'DLE-TOKEN\\n'");
    term.expect("SPLIT-NEEDLE-TOKEN", T);
    term.expect(r"\$ ", T);
    // A password typed without echo is withheld by the recorder. It is typed once `read -s`
    // has turned echo off: typed earlier, it reaches the pty while bash's line editor or bash
    // itself still has it (echoed by the terminal, or held in raw mode where Enter stays `\r`
    // and `read` never sees its line end). The prompt is split in the command so that its echo
    // does not match.
    term.send_line("read -s -p 'Pass''word: ' pw; echo got-${#pw}");
    term.expect("Password: ", T);
    wait_password_mode(&inner_pty(&r.tree));
    term.send_line("hunter2-secret");
    term.expect("got-14", T);
    term.expect(r"\$ ", T);
    term.send_line("exit");
    term.wait_code(0, T);
    let out = r.sshd.login(&r.user).exec("printf exec-out-7", b"");
    assert!(out.status.success(), "{out:?}");
    term.transcript()
}

/// The pty the recorder gave the login shell (from the live record's `channel.start`).
fn inner_pty(tree: &RecordTree) -> PathBuf {
    let mut pty = None;
    wait_until("channel.start of the login channel", T, || {
        pty = tree
            .sessions()
            .iter()
            .flat_map(|s| channel_files(s))
            .find_map(|c| {
                read_lines(&c)
                    .into_iter()
                    .find(|l| l.kind() == "channel.start")
                    .and_then(|l| l.value["pty"].as_str().map(PathBuf::from))
            });
        pty.is_some()
    });
    pty.unwrap()
}

fn pty_session(tree: &RecordTree) -> (PathBuf, PathBuf) {
    for session in tree.wait_sessions(2, T) {
        for channel in channel_files(&session) {
            if only_event(&channel, "channel.start")
                .get("mode")
                .and_then(|v| v.as_str())
                == Some("pty")
            {
                wait_last_event(&channel, "channel.end", T);
                wait_last_event(&session.join("session.jsonl"), "logout", T);
                return (session, channel);
            }
        }
    }
    panic!("no pty channel\n{}", tree.listing());
}

/// One recorded login shared by the behaviours below, recorded once per test run. Its tree
/// is copied out before sshd and the test user go, so every check reads plain files. A static
/// is never dropped: the copy's directory is a registered harness leftover, removed by the
/// next end-to-end run.
struct Recorded {
    /// Holds `dir` and `anchors`.
    _scratch: TempDir,
    /// The copied record tree.
    dir: PathBuf,
    id: String,
    /// The pty channel's file, relative to `dir`.
    channel: PathBuf,
    /// What the test's terminal received.
    transcript: Vec<u8>,
    user: String,
    /// The anchor lines the writers sent to syslog at close.
    anchors: PathBuf,
}

fn recorded() -> &'static Recorded {
    static RECORDED: OnceLock<Recorded> = OnceLock::new();
    RECORDED.get_or_init(record)
}

fn record() -> Recorded {
    let r = RecordedLogin::start("cli");
    let log = AuthLog::mark();
    let transcript = record_sessions(&r);
    let (session, channel) = pty_session(&r.tree);
    for s in r.tree.wait_sessions(2, T) {
        wait_last_event(&s.join("session.jsonl"), "logout", T);
    }
    let id = session_id(&session);
    let live = r.tree.record_dir();
    let channel = channel.strip_prefix(live).unwrap().to_path_buf();
    let channel_name = channel.file_name().unwrap().to_string_lossy().into_owned();
    log.wait_for(&format!("sessrec anchor file={id}/{channel_name} "), T);
    log.wait_for(&format!("sessrec anchor file={id}/session.jsonl "), T);
    let scratch = TempDir::new("cli-e2e");
    let anchors = scratch.join("anchors.log");
    let lines: Vec<String> = log
        .since()
        .lines()
        .filter(|l| l.contains("sessrec anchor") && l.contains(&id))
        .map(str::to_owned)
        .collect();
    std::fs::write(&anchors, lines.join("\n") + "\n").unwrap();
    let dir = scratch.join("records");
    run(Command::new("cp").arg("-a").arg(live).arg(&dir));
    Recorded {
        dir,
        id,
        channel,
        transcript,
        user: r.user.name().to_owned(),
        anchors,
        _scratch: scratch,
    }
}

/// A copy of the recorded tree to tamper with, and its pty channel file.
fn tree_copy(r: &Recorded, tag: &str) -> (TempDir, PathBuf, PathBuf) {
    let tmp = TempDir::new(tag);
    let copy = tmp.join("records");
    run(Command::new("cp").arg("-a").arg(&r.dir).arg(&copy));
    let channel = copy.join(&r.channel);
    (tmp, copy, channel)
}

fn channel_lines(channel: &Path) -> Vec<Vec<u8>> {
    std::fs::read(channel)
        .unwrap()
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn list_shows_both_closed_sessions_with_their_facts() {
    require_e2e!();
    let r = recorded();
    let o = sessrec(&r.dir, &["list", "--json"]);
    assert!(o.status.success(), "{o:?}");
    let listed: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{}", stdout(&o));
    for s in &listed {
        assert_eq!(s["user"], r.user.as_str());
        assert_eq!(s["state"], "closed", "{s}");
        assert_eq!(s["src_ip"], "127.0.0.1");
        assert_eq!(s["channels"], 1);
    }
    let o = sessrec(&r.dir, &["list", "--user", "nobody-else"]);
    assert_eq!(stdout(&o).lines().count(), 1, "header only");
}

#[test]
fn show_resolves_editing_and_flags_erased_and_withheld_input() {
    require_e2e!();
    let r = recorded();
    let o = sessrec(&r.dir, &["show", &r.id]);
    assert!(o.status.success(), "{o:?}");
    let shown = stdout(&o);
    assert!(shown.contains("$ echo cli-e2e-$((6*7))"), "{shown}");
    assert!(shown.contains("$ echo after-erase"), "{shown}");
    assert!(
        shown.contains("typed then erased: \"rm -rf /tmp/not-really\""),
        "{shown}"
    );
    assert!(
        shown.contains("login") && shown.contains("logout"),
        "{shown}"
    );
    assert!(!shown.contains('\x1b'), "no raw escapes in show");
    assert!(shown.contains("input withheld"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[test]
fn the_withheld_password_is_not_in_the_record() {
    require_e2e!();
    let r = recorded();
    let o = sessrec(&r.dir, &["search", "hunter2"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "the withheld password is not in the record"
    );
}

#[test]
fn asciicast_exports_replay_in_asciinema_as_the_terminal_showed() {
    require_e2e!("asciinema");
    let r = recorded();
    let (id, transcript) = (&r.id, &r.transcript);
    let tmp = TempDir::new("cli-e2e-cast");
    for (raw, name) in [(true, "raw.cast"), (false, "filtered.cast")] {
        let cast = tmp.join(name);
        let mut args = vec!["export", id, "--format", "asciicast-v2", "--output"];
        let cast_s = cast.to_string_lossy().into_owned();
        args.push(&cast_s);
        if raw {
            args.push("--raw");
        }
        let o = sessrec(&r.dir, &args);
        assert!(o.status.success(), "{o:?}");
        // asciinema reads keys from /dev/tty: run it on a pty in raw mode, so the terminal
        // adds nothing to what it writes.
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("stty raw -echo && exec asciinema cat \"$0\"")
            .arg(&cast);
        let mut cat_term = PtySession::spawn(cmd, 80, 24);
        assert!(
            cat_term.wait(T).success(),
            "asciinema cat: {}",
            cat_term.transcript_text()
        );
        let cat = cat_term.transcript();
        let got = cat;
        assert!(String::from_utf8_lossy(&got).contains("cli-e2e-42"));
        if raw {
            // Byte for byte what the terminal received (the transcript also holds the notice
            // written before recording starts, and ssh's own messages).
            assert!(
                transcript.windows(got.len()).any(|w| w == got.as_slice()),
                "asciinema cat of the raw export is not what the terminal showed\n--- cat ---\n{:?}\n--- terminal ---\n{:?}",
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(transcript)
            );
        } else {
            // The filtered export shows the same text, without the non-drawing sequences.
            let (shown, seen) = (plain_text(&got), plain_text(transcript));
            assert!(
                seen.contains(&shown),
                "filtered cast text differs\n{shown:?}\n{seen:?}"
            );
            let s = String::from_utf8_lossy(&got);
            assert!(
                !s.contains("\x1b]") && !s.contains("\x1bP") && !s.contains("\x1b[?2004h"),
                "{s:?}"
            );
        }
        // Everything the recorder saw is there: from the first command to the last.
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.contains("after-erase")
                && text.contains("SPLIT-NEEDLE-TOKEN")
                && text.contains("exit"),
            "{text:?}"
        );
    }
}

#[test]
fn v3_text_and_json_exports_hold_the_session() {
    require_e2e!();
    let r = recorded();
    let (dir, id) = (&r.dir, r.id.as_str());
    let o = sessrec(dir, &["export", id, "--format", "asciicast-v3"]);
    let header: serde_json::Value =
        serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(header["version"], 3);
    let o = sessrec(dir, &["export", id, "--format", "text"]);
    let text = stdout(&o);
    assert!(
        text.contains("cli-e2e-42") && text.contains("SPLIT-NEEDLE-TOKEN"),
        "{text}"
    );
    assert!(
        !text.contains("not-really"),
        "erased on screen, so not in the rendered text: {text}"
    );
    let o = sessrec(dir, &["export", id, "--format", "text", "--typed"]);
    assert!(
        stdout(&o).contains("not-really"),
        "the typed variant keeps erased glyphs"
    );
    let o = sessrec(dir, &["export", id, "--format", "json"]);
    assert!(stdout(&o)
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
}

#[test]
fn play_without_a_terminal_writes_the_output() {
    require_e2e!();
    let r = recorded();
    // Not a terminal: no keys, just the filtered output at high speed.
    let o = sessrec(&r.dir, &["play", &r.id, "--speed", "1000"]);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("cli-e2e-42"));
}

#[test]
fn search_finds_output_split_across_record_lines_and_commands() {
    require_e2e!();
    let r = recorded();
    let dir = &r.dir;
    // The split really is across two record lines.
    let lines = read_lines(&dir.join(&r.channel));
    assert!(
        lines
            .iter()
            .all(|l| !String::from_utf8_lossy(&l.raw).contains("SPLIT-NEEDLE")),
        "precondition: output split across lines"
    );
    let o = sessrec(dir, &["search", "SPLIT-NEEDLE-TOKEN", "--output", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let hits: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(hits.len(), 1, "{}", stdout(&o));
    assert_eq!(hits[0]["session"], r.id.as_str());
    let o = sessrec(dir, &["search", "--commands", "after-erase"]);
    assert!(stdout(&o).contains("command"), "{}", stdout(&o));
    let o = sessrec(dir, &["search", "exec-out-7"]);
    assert_eq!(o.status.code(), Some(0));
}

/// `sessrec verify` of the shared session in a copy of the tree (named by `tag`) whose
/// channel's record lines `damage` changed.
fn verify_damaged_copy(r: &Recorded, tag: &str, damage: impl FnOnce(&mut Vec<Vec<u8>>)) -> Output {
    let (_tmp, copy, channel) = tree_copy(r, tag);
    let mut lines = channel_lines(&channel);
    damage(&mut lines);
    std::fs::write(&channel, lines.concat()).unwrap();
    sessrec(&copy, &["verify", &r.id])
}

#[test]
fn verify_accepts_the_untouched_tree_with_and_without_anchors() {
    require_e2e!();
    let r = recorded();
    let o = sessrec(&r.dir, &["verify", "--all"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let anchors_arg = r.anchors.to_string_lossy().into_owned();
    let o = sessrec(&r.dir, &["verify", &r.id, "--anchors", &anchors_arg]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn verify_finds_an_edited_line() {
    require_e2e!();
    let r = recorded();
    let (_tmp, copy, channel) = tree_copy(r, "cli-e2e-edit");
    let original = std::fs::read(&channel).unwrap();
    let edited = String::from_utf8_lossy(&original).replacen("cli-e2e", "cli-e3e", 1);
    std::fs::write(&channel, edited.as_bytes()).unwrap();
    let o = sessrec(&copy, &["verify", &r.id]);
    assert_exit_says(
        &o,
        1,
        &format!("{}:", r.channel.file_name().unwrap().to_string_lossy()),
    );
}

#[test]
fn verify_finds_a_deleted_line() {
    require_e2e!();
    let r = recorded();
    let o = verify_damaged_copy(r, "cli-e2e-delete", |lines| {
        lines.remove(2);
    });
    assert_exit_says(&o, 1, ":3: prev does not match");
}

#[test]
fn verify_finds_a_truncated_channel() {
    require_e2e!();
    let r = recorded();
    let o = verify_damaged_copy(r, "cli-e2e-truncate", |lines| {
        lines.pop();
    });
    assert_exit_says(&o, 1, "lines were removed");
}

#[test]
fn verify_tells_removed_lines_from_a_crash_by_the_anchors() {
    require_e2e!();
    let r = recorded();
    // Root removes the channel's last line and the logout: without anchors that looks like a
    // crash (incomplete); the anchors the writers sent to syslog at close show that lines
    // were removed.
    let (_tmp, copy, channel) = tree_copy(r, "cli-e2e-anchors");
    let mut cut = channel_lines(&channel);
    cut.pop();
    std::fs::write(&channel, cut.concat()).unwrap();
    let session_copy = channel.parent().unwrap().join("session.jsonl");
    let mut session_lines = channel_lines(&session_copy);
    session_lines.pop();
    std::fs::write(&session_copy, session_lines.concat()).unwrap();
    let o = sessrec(&copy, &["verify", &r.id]);
    assert_eq!(o.status.code(), Some(3), "no anchors: {}", stdout(&o));
    let anchors_arg = r.anchors.to_string_lossy().into_owned();
    let o = sessrec(&copy, &["verify", &r.id, "--anchors", &anchors_arg]);
    assert_exit_says(&o, 1, "although syslog holds an anchor for it");
}

/// The text of a terminal stream: escape sequences and controls other than newline removed.
fn plain_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let seq = regex::Regex::new(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[ -/]*[0-~])|[\x00-\x09\x0b-\x1f\x7f]").unwrap();
    seq.replace_all(&text, "").into_owned()
}

/// A live interactive shell of `r`'s user, once it answers: its terminal, session directory
/// and session id.
fn live_shell(r: &RecordedLogin) -> (PtySession, PathBuf, String) {
    let mut term = r.sshd.login(&r.user).interactive();
    term.expect(r"\$ $", T);
    term.send_line("echo live-$((2*21))");
    term.expect("live-42", T);
    let session = r.tree.wait_sessions(1, T).remove(0);
    let id = session_id(&session);
    (term, session, id)
}

/// `sessrec kill SESSION --message MESSAGE`, once its channel has ended: the command's output
/// and the channel file.
fn kill(dir: &Path, session: &Path, message: &str) -> (Output, PathBuf) {
    let o = sessrec(dir, &["kill", &session_id(session), "--message", message]);
    assert!(o.status.success(), "{o:?}");
    assert!(
        !stderr(&o).contains("did not record the message"),
        "{}",
        stderr(&o)
    );
    let channel = channel_files(session).remove(0);
    wait_last_event(&channel, "channel.end", T);
    (o, channel)
}

#[test]
fn kill_ends_a_live_session() {
    require_e2e!();
    let r = RecordedLogin::start("kill");
    let (mut term, session, id) = live_shell(&r);
    let dir = r.tree.record_dir();
    let o = sessrec(dir, &["list", "--live", "--json"]);
    assert!(
        stdout(&o).contains(&id),
        "a running session is live: {}",
        stdout(&o)
    );
    let (o, channel) = kill(dir, &session, "ended by the operator");
    assert!(stdout(&o).contains("ended"), "{}", stdout(&o));
    assert_chain_ok(&channel);
    // The operator's message reaches the user and the record.
    term.expect("ended by the administrator: ended by the operator", T);
    let end = std::fs::read_to_string(&channel).expect("read channel");
    let end = end.lines().last().expect("last line");
    assert!(
        end.contains(r#""admin_message":"ended by the operator""#),
        "{end}"
    );
    let o = sessrec(dir, &["list", "--live", "--json"]);
    assert!(!stdout(&o).contains(&id), "no longer live: {}", stdout(&o));
}

#[test]
fn html_export_of_a_real_session_in_chromium() {
    require_e2e!("sftp", "chromium", "npm");
    let r = RecordedLogin::start("html");
    let player = player_dir();
    let tmp = TempDir::new("cli-html");
    // A shell session whose output the page must show.
    let mut term = r.sshd.login(&r.user).interactive();
    term.expect(r"\$ $", T);
    term.send_line("echo page-shows-$((40+2))");
    term.expect("page-shows-42", T);
    term.send_line("exit");
    term.wait_code(0, T);
    // An sftp upload to a path that is markup.
    let local = tmp.join("payload.txt");
    std::fs::write(&local, b"payload\n").unwrap();
    let batch = format!(
        "-mkdir <\nput {} \"</script><script>alert(1)\"\n",
        local.display()
    );
    let out = r.sshd.login(&r.user).sftp_batch(&batch, T);
    assert!(out.status.success(), "sftp: {out:?}");

    let sessions = r.tree.wait_sessions(2, T);
    let dir = r.tree.record_dir();
    let mut pages = Vec::new();
    for session in &sessions {
        wait_last_event(&session.join("session.jsonl"), "logout", T);
        let id = session_id(session);
        let page = tmp.join(format!("{id}.html"));
        let o = sessrec(
            dir,
            &[
                "export",
                &format!("{id}/1"),
                "--format",
                "html",
                "--player",
                &player.to_string_lossy(),
                "--output",
                &page.to_string_lossy(),
            ],
        );
        assert!(o.status.success(), "{o:?}");
        pages.push(page);
    }
    let mut saw_text = false;
    let mut saw_path = false;
    for (i, page) in pages.iter().enumerate() {
        let html = std::fs::read_to_string(page).unwrap();
        assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none'"));
        assert_eq!(html.matches("<script").count(), 3, "data, player, start-up");
        let dom = chromium(&tmp.join(format!("profile-{i}")), &["--dump-dom"], page, "");
        let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
        assert_eq!(dom.matches("<script").count(), 3, "no script was injected");
        if dom
            .split("class=\"ap-line\"")
            .skip(1)
            .any(|l| l.contains("page-shows-42"))
        {
            saw_text = true;
        }
        if html.contains("sftp") && dom.contains("&lt;/script&gt;&lt;script&gt;alert(1)") {
            saw_path = true;
        }
        let shot = tmp.join(format!("shot-{i}.png"));
        let o = chromium(
            &tmp.join(format!("profile-shot-{i}")),
            &[&format!("--screenshot={}", shot.display())],
            page,
            "",
        );
        assert!(o.status.success(), "{o:?}");
        assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1000));
    }
    assert!(saw_text, "the player did not render the recorded text");
    assert!(
        saw_path,
        "the sftp path is not shown as text in the timeline"
    );
}

/// The sessrec invocation as another user (`runuser`), for the root-only checks.
fn sessrec_as(user: &str, dir: &Path, args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", user, "--"])
        .arg(products().sessrec_cli())
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("SESSREC_CONFIG")
        .output()
        .expect("run sessrec as another user")
}

/// The record copy with one byte of recorded output changed in one line (the chain still
/// parses, so only the hash chain can tell): that line's number.
fn alter_one_line(channel: &Path) -> usize {
    let mut lines = channel_lines(channel);
    let at = lines
        .iter()
        .position(|l| String::from_utf8_lossy(l).contains("cli-e2e-42"))
        .expect("a line with the command's output");
    let text = String::from_utf8_lossy(&lines[at]).replacen("cli-e2e-42", "cli-e2e-43", 1);
    lines[at] = text.into_bytes();
    std::fs::write(channel, lines.concat()).unwrap();
    at + 1
}

#[test]
fn every_view_says_whether_the_record_is_intact() {
    require_e2e!();
    let r = recorded();
    let (_tmp, copy, channel) = tree_copy(r, "cli-e2e-integrity");
    let channel_name = channel.file_name().unwrap().to_string_lossy().into_owned();
    let target = format!("{}/{}", r.id, channel_name.trim_end_matches(".jsonl"));
    // Untouched: every view says verified; exports carry it.
    let o = sessrec(&copy, &["show", &r.id]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(
        stdout(&o).starts_with("integrity: verified"),
        "{}",
        stdout(&o)
    );
    let anchors_arg = r.anchors.to_string_lossy().into_owned();
    let o = sessrec(&copy, &["show", &r.id, "--anchors", &anchors_arg]);
    assert!(
        stdout(&o).contains("integrity: verified against"),
        "{}",
        stdout(&o)
    );
    let o = sessrec(&copy, &["export", &target, "--format", "asciicast-v2"]);
    let header: serde_json::Value =
        serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(
        header["sessrec"]["integrity"]["status"], "verified",
        "{header}"
    );

    // One altered line: every view names it, exports carry it, and the views that render one
    // session end with status 1.
    // The chain breaks at the line after the altered one, whose `prev` no longer matches.
    let line = alter_one_line(&channel) + 1;
    let damaged = format!("damaged at {channel_name} line {line}");
    let o = sessrec(&copy, &["show", &r.id]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        stdout(&o).starts_with(&format!("integrity: {damaged}")),
        "{}",
        stdout(&o)
    );
    let o = sessrec(&copy, &["show", &r.id, "--json"]);
    let first: serde_json::Value =
        serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "integrity");
    assert_eq!(first["details"]["damaged_line"], line as u64, "{first}");
    let o = sessrec(&copy, &["play", &target, "--speed", "1000"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(stderr(&o).contains(&damaged), "{}", stderr(&o));
    for format in ["asciicast-v2", "asciicast-v3"] {
        let o = sessrec(&copy, &["export", &target, "--format", format]);
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        let header: serde_json::Value =
            serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
        let integrity = &header["sessrec"]["integrity"];
        assert_eq!(integrity["status"], "damaged", "{header}");
        assert_eq!(integrity["damaged_line"], line as u64, "{header}");
        assert!(stderr(&o).contains(&damaged), "{}", stderr(&o));
    }
    let o = sessrec(&copy, &["export", &target, "--format", "text"]);
    assert!(
        stdout(&o).starts_with(&format!("[integrity: {damaged}")),
        "{}",
        stdout(&o)
    );
    let o = sessrec(&copy, &["export", &target, "--format", "json"]);
    let first: serde_json::Value =
        serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(first["integrity"]["status"], "damaged", "{first}");
    let o = sessrec(&copy, &["search", "exec-out-7"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(
        stderr(&o).contains(&format!("{}: integrity: {damaged}", r.id)),
        "{}",
        stderr(&o)
    );
    let o = sessrec(&copy, &["list"]);
    assert!(stdout(&o).contains(",DAMAGED"), "{}", stdout(&o));
    assert!(stdout(&o).contains(&damaged), "{}", stdout(&o));
}

#[test]
fn the_html_export_carries_the_integrity_verdict() {
    require_e2e!("npm");
    let r = recorded();
    let player = player_dir();
    let (tmp, copy, channel) = tree_copy(r, "cli-e2e-integrity-html");
    let channel_name = channel.file_name().unwrap().to_string_lossy().into_owned();
    let line = alter_one_line(&channel) + 1;
    let page = tmp.join("page.html");
    let o = sessrec(
        &copy,
        &[
            "export",
            &format!("{}/{}", r.id, channel_name.trim_end_matches(".jsonl")),
            "--format",
            "html",
            "--player",
            &player.to_string_lossy(),
            "--output",
            &page.to_string_lossy(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains(&format!(
            "<p id=\"sessrec-integrity\" data-status=\"damaged\"><b>integrity:</b> damaged at {channel_name} line {line}"
        )),
        "{}",
        &html[..html.len().min(4000)]
    );
}

/// The access lines of a record tree (all days).
fn access_lines(tree: &Path) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let mut lines = Vec::new();
    let Ok(dir) = std::fs::read_dir(tree.join("access")) else {
        return lines;
    };
    let mut files: Vec<PathBuf> = dir.map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files {
        assert_chain_ok(&f);
        lines.extend(read_records(&f));
    }
    lines
}

#[test]
fn every_read_is_logged_with_the_operator_before_it_happens() {
    require_e2e!();
    let r = recorded();
    let (_tmp, copy, _) = tree_copy(r, "cli-e2e-access");
    // Only this test's reads: other tests read the shared tree before it was copied.
    let _ = std::fs::remove_dir_all(copy.join("access"));
    let log = AuthLog::mark();
    let target = format!("{}/1", r.id);
    let reads: [&[&str]; 5] = [
        &["show", &r.id],
        &["play", &target, "--speed", "1000"],
        &["export", &target, "--format", "json"],
        &["search", "exec-out-7"],
        &["verify", &r.id],
    ];
    for args in reads {
        let o = sessrec(&copy, args);
        assert!(o.status.code().is_some_and(|c| c <= 1), "{args:?}: {o:?}");
        log.wait_for(
            &format!(
                "sessrec\\[[0-9]+\\]: sessrec access: command={} sessions=[^ ]*{}[^ ]* uid=0 user=root ",
                args[0], r.id
            ),
            T,
        );
    }
    // list reads no record content.
    sessrec(&copy, &["list"]);
    let lines = access_lines(&copy);
    let commands: Vec<&str> = lines
        .iter()
        .map(|l| l["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands, ["show", "play", "export", "search", "verify"]);
    for l in &lines {
        assert_eq!(l["type"], "access");
        assert!(
            l["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == r.id.as_str()),
            "{l:?}"
        );
        assert_eq!(l["operator"]["uid"], 0, "{l:?}");
        assert_eq!(l["operator"]["user"], "root", "{l:?}");
        assert_eq!(l["record_dir"], copy.to_string_lossy().as_ref());
    }
}

#[test]
fn a_read_that_cannot_be_logged_is_refused() {
    require_e2e!();
    let r = recorded();
    let (_tmp, copy, _) = tree_copy(r, "cli-e2e-access-refused");
    // Something that is not a directory where the access log goes.
    let _ = std::fs::remove_dir_all(copy.join("access"));
    std::fs::write(copy.join("access"), b"in the way\n").unwrap();
    for args in [
        vec!["show", r.id.as_str()],
        vec!["export", r.id.as_str(), "--format", "text"],
        vec!["search", "cli-e2e"],
        vec!["verify", r.id.as_str()],
    ] {
        let o = sessrec(&copy, &args);
        assert_eq!(o.status.code(), Some(4), "{args:?}: {o:?}");
        assert!(o.stdout.is_empty(), "{args:?} read without logging: {o:?}");
        assert!(
            stderr(&o).contains("refused: every read of the records is logged"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn the_records_are_root_only_and_say_so() {
    require_e2e!();
    let r = recorded();
    let user = TestUser::new("ro", Path::new("/bin/sh"));
    // The tree as installed: root-only (0700) in a directory anyone can pass.
    let open = TempDir::new_in(Path::new("/tmp"), "cli-e2e-rootonly", 0o755);
    let copy = open.join("records");
    run(Command::new("cp").arg("-a").arg(&r.dir).arg(&copy));
    let o = sessrec_as(user.name(), &copy, &["list"]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert!(stderr(&o).contains("root-only"), "{}", stderr(&o));
    let o = sessrec_as(user.name(), &copy, &["doctor"]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert!(stderr(&o).contains("needs root"), "{}", stderr(&o));
    assert!(!stdout(&o).contains("FAIL"), "{}", stdout(&o));
}

#[test]
fn kill_records_the_operator_and_the_message_as_given() {
    require_e2e!();
    let r = RecordedLogin::start("killop");
    let (mut term, session, id) = live_shell(&r);
    let dir = r.tree.record_dir();
    let message = "maintenance\x1b[31m window\tnow";
    let (_, channel) = kill(dir, &session, message);
    // The user sees the message with its control characters as spaces.
    term.expect(
        "ended by the administrator: maintenance \\[31m window now",
        T,
    );
    let end = only_event(&channel, "channel.end");
    assert_eq!(end["admin_message"], message, "{end:?}");
    assert_eq!(end["ended_by"]["uid"], 0, "{end:?}");
    assert_eq!(end["ended_by"]["user"], "root", "{end:?}");
    assert_chain_ok(&channel);
    // The kill is in the access log too.
    let kills: Vec<_> = access_lines(dir)
        .into_iter()
        .filter(|l| l["command"] == "kill")
        .collect();
    assert_eq!(kills.len(), 1, "{kills:?}");
    assert_eq!(kills[0]["sessions"][0], id.as_str());
}

#[test]
fn time_arguments_mean_what_they_say() {
    require_e2e!();
    let r = recorded();
    // The recorded sessions started minutes ago: a clock time an hour ago (today) finds
    // them; read as an age, "HH:MM" was hours ago.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let hour_ago = now.saturating_sub(3600);
    // A clock time means today: in the first hour after midnight an hour ago was yesterday.
    let day_start = now - now % 86_400;
    if hour_ago >= day_start + 60 {
        let clock = format!(
            "{:02}:{:02}",
            (hour_ago - day_start) / 3600,
            (hour_ago - day_start) % 3600 / 60
        );
        let o = sessrec(&r.dir, &["list", "--since", &clock, "--json"]);
        assert_eq!(o.status.code(), Some(0), "{o:?}");
        assert!(
            stdout(&o).contains(&r.id),
            "--since {clock}: {}",
            stdout(&o)
        );
        let o = sessrec(&r.dir, &["list", "--until", &clock, "--json"]);
        assert!(
            !stdout(&o).contains(&r.id),
            "--until {clock}: {}",
            stdout(&o)
        );
    }
    let o = sessrec(&r.dir, &["list", "--since", "90"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(stderr(&o).contains("has no unit"), "{}", stderr(&o));
    let o = sessrec(&r.dir, &["list", "--since", "1h", "--until", "2h"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        stderr(&o).contains("is not before --until"),
        "{}",
        stderr(&o)
    );
    let o = sessrec(
        &r.dir,
        &["search", "x", "--since", "today", "--until", "yesterday"],
    );
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let target = format!("{}/1", r.id);
    let o = sessrec(&r.dir, &["play", &target, "--from", "10h"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(stderr(&o).contains("past the end"), "{}", stderr(&o));
    let o = sessrec(&r.dir, &["play", &target, "--speed", "0"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(stderr(&o).contains("above 0"), "{}", stderr(&o));
}

#[test]
fn prune_dry_run_counts_every_session() {
    require_e2e!();
    let r = recorded();
    let (_tmp, copy, _) = tree_copy(r, "cli-e2e-prune");
    let _ = std::fs::remove_dir_all(copy.join("access"));
    let o = sessrec(&copy, &["prune", "--older-than", "30d", "--dry-run"]);
    assert!(o.status.success(), "{o:?}");
    // Deleting records is logged like reading them.
    let lines = access_lines(&copy);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["command"], "prune");
    assert!(
        stdout(&o).contains("would remove 0 of 2 session(s); kept 2: 2 started within"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn an_unknown_option_points_to_its_commands_help() {
    require_e2e!();
    let r = recorded();
    let o = sessrec(&r.dir, &["show", &r.id, "--speed", "2"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        stderr(&o).contains("Try `sessrec show --help`."),
        "{}",
        stderr(&o)
    );
    let o = sessrec(&r.dir, &["--bogus"]);
    assert!(
        stderr(&o).contains("Try `sessrec --help`."),
        "{}",
        stderr(&o)
    );
}

/// `sessrec doctor` with a configuration and options.
fn doctor(config: &Path, args: &[&str]) -> Output {
    Command::new(products().sessrec_cli())
        .arg("--config")
        .arg(config)
        .arg("doctor")
        .args(args)
        .env_remove("SESSREC_CONFIG")
        .output()
        .expect("run sessrec doctor")
}

#[test]
fn doctor_checks_the_sshd_and_pam_service_in_use() {
    require_e2e!("sudo");
    // An sshd set up as the quickstart's: forwarding off, only this test's user let in.
    let r = RecordedLogin::launched("doctorq", Launch::LoginShell, "", |b| {
        b.config("DisableForwarding yes")
            .config("PermitTunnel no")
            .config("PermitUserRC no")
            .config("PermitUserEnvironment no")
            .config("PermitListen none")
            .config("PermitOpen none")
            .config("AllowUsers srt-doctorq-*")
            .pam_session("session optional pam_loginuid.so")
    });
    let _sudoers = SudoersDropIn::new(&format!("Defaults:{} log_output, use_pty\n", r.user.name()));
    let sshd_config = r.sshd.config_path().to_string_lossy().into_owned();
    let o = doctor(
        r.tree.config_path(),
        &[
            "--sshd-config",
            &sshd_config,
            "--pam-service",
            r.sshd.service(),
        ],
    );
    let report = stdout(&o);
    assert!(
        !report.contains("FAIL"),
        "doctor on a correct set-up:\n{report}{}",
        stderr(&o)
    );
    assert_eq!(o.status.code(), Some(0), "{report}");
    assert!(
        report.contains(&format!(
            "/etc/pam.d/{} has a session line",
            r.sshd.service()
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "{}: forwarding, tunnels, user rc and environment are off",
            r.user.name()
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!("{} is setuid root", r.installed.shell().display())),
        "{report}"
    );
    // The same sshd without DisableForwarding is found wanting, through the same options.
    let lax = r.tree.dir().join("sshd_config.lax");
    let text = std::fs::read_to_string(r.sshd.config_path())
        .unwrap()
        .replace("DisableForwarding yes", "DisableForwarding no");
    std::fs::write(&lax, text).unwrap();
    let o = doctor(
        r.tree.config_path(),
        &[
            "--sshd-config",
            &lax.to_string_lossy(),
            "--pam-service",
            r.sshd.service(),
        ],
    );
    assert_exit_says(&o, 1, "DisableForwarding is not yes");
}

#[test]
fn verify_all_finds_an_edited_access_log() {
    require_e2e!();
    let r = recorded();
    let (_tmp, copy, _) = tree_copy(r, "cli-e2e-access-edit");
    let _ = std::fs::remove_dir_all(copy.join("access"));
    sessrec(&copy, &["show", &r.id]);
    sessrec(&copy, &["show", &r.id]);
    let o = sessrec(&copy, &["verify", "--all"]);
    assert_exit_says(&o, 0, "OK         access log");
    // Whoever read the records removes the trace of their first read.
    let file = std::fs::read_dir(copy.join("access"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut lines = channel_lines(&file);
    lines.remove(0);
    std::fs::write(&file, lines.concat()).unwrap();
    let o = sessrec(&copy, &["verify", "--all"]);
    assert_exit_says(
        &o,
        1,
        &format!(
            "broken: {}:1: prev is not the chain's start value",
            file.display()
        ),
    );
}

#[test]
fn the_access_log_names_the_person_behind_sudo() {
    require_e2e!("sudo");
    let r = RecordedLogin::launched("accop", Launch::LoginShell, "", |b| {
        b.pam_session("session required pam_loginuid.so")
    });
    let dir = r.tree.record_dir().to_path_buf();
    let cli = products().sessrec_cli();
    let _sudo = SudoersDropIn::new(&format!(
        "{} ALL=(root) NOPASSWD: {}\n",
        r.user.name(),
        cli.display()
    ));
    let mut term = r.sshd.login(&r.user).interactive();
    term.expect(r"\$ $", T);
    let session = r.tree.wait_sessions(1, T).remove(0);
    let id = session_id(&session);
    // An operator logged in through the recorded sshd reads a record as root.
    term.send_line(&format!(
        "sudo {} --dir {} show {id} >/dev/null; echo shown-$?",
        cli.display(),
        dir.display()
    ));
    term.expect("shown-0", T);
    term.send_line("exit");
    term.wait_code(0, T);
    let shows: Vec<_> = access_lines(&dir)
        .into_iter()
        .filter(|l| l["command"] == "show")
        .collect();
    assert_eq!(shows.len(), 1, "{shows:?}");
    let op = &shows[0]["operator"];
    assert_eq!(op["uid"], 0, "{op}");
    assert_eq!(op["loginuid"], r.user.uid(), "{op}");
    assert_eq!(op["login_user"], r.user.name(), "{op}");
    assert!(op["audit_session"].is_u64(), "{op}");
    assert_eq!(op["actor"], r.user.name(), "{op}");
    assert_eq!(op["actor_source"], "unix-user", "{op}");
    assert_eq!(op["operator_session"], id.as_str(), "{op}");
    assert!(
        op["tty"]
            .as_str()
            .is_some_and(|t| t.starts_with("/dev/pts/")),
        "{op}"
    );
}
