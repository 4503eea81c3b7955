//! What the operator's views (`show`, `export`, `search`, `list`, `play`) make of real recorded
//! sessions: nothing recorded is dropped, nothing is invented, damage and withheld input are
//! named for what they are. One set of sessions is recorded through a private sshd (an
//! interactive shell that clears its screen, types with echo off, uses tab completion and runs
//! vi, top, less and a long `find`; an exec channel killed by a signal; a pipe channel writing
//! to stdout and stderr; an sftp and an rsync transfer; a session ended by `sessrec kill`) and
//! every check reads a copy of that tree.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use sessrec_tests::run_sessrec as sessrec;
use sessrec_tests::*;

const T: Duration = Duration::from_secs(30);
/// The end of a bash prompt (after a redraw of a wrapped line, with an erase to the end).
const PROMPT: &str = r"\$ (\x1b\[K)?$";

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{o:?}");
    stdout(&o)
}

/// The sessions of the shared recording, by what they hold.
struct Recorded {
    _scratch: TempDir,
    dir: PathBuf,
    /// The interactive shell.
    shell: String,
    /// `kill -TERM $$` in an exec channel.
    killed: String,
    /// An exec channel writing to stdout and stderr (pipe mode).
    pipe: String,
    sftp: String,
    rsync: String,
    /// Ended by `sessrec kill --message`.
    admin: String,
    /// Two channels over one connection (ControlMaster): a pty command and an exec.
    multi: String,
    /// The file vi wrote.
    vi_file: String,
}

fn recorded() -> &'static Recorded {
    static RECORDED: OnceLock<Recorded> = OnceLock::new();
    RECORDED.get_or_init(record)
}

/// The one session that appeared since `before`.
fn new_session(tree: &RecordTree, before: &[PathBuf]) -> PathBuf {
    let deadline = std::time::Instant::now() + T;
    loop {
        let now: Vec<PathBuf> = tree
            .sessions()
            .into_iter()
            .filter(|s| !before.contains(s))
            .collect();
        if now.len() == 1 {
            let s = now.into_iter().next().unwrap();
            wait_last_event(&s.join("session.jsonl"), "logout", T);
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected one new session: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn interactive_shell(r: &RecordedLogin, vi_file: &str) {
    let sshd_pid = r.sshd.pid().expect("sshd running");
    let mut term = r.sshd.login(&r.user).env("TERM", "xterm").interactive();
    term.expect(PROMPT, T);
    term.send_line("export SECRET_MARKER=m4rk-71; echo shown-$SECRET_MARKER");
    term.expect("shown-m4rk-71", T);
    term.expect(PROMPT, T);
    term.send_line("clear");
    term.expect(PROMPT, T);
    term.send_line(r"echo 'back\slash-9'");
    term.expect(r"back\\slash-9\r\n", T);
    term.expect(PROMPT, T);
    // Output that erases itself: up one line, erase it.
    term.send_line(r"printf 'gone-%s\r\n\033[1A\033[2K' line-7");
    term.expect(PROMPT, T);
    // Completed by the shell: the screen shows the whole name.
    term.send("/usr/bin/whoam\t");
    term.expect("whoami ", T);
    term.send("\r");
    term.expect(PROMPT, T);
    // Typed with echo off: recorded, never shown.
    term.send_line("stty -echo");
    term.expect(PROMPT, T);
    term.send_line("echo hidden-cmd > /dev/null");
    term.expect(PROMPT, T);
    term.send_line("stty echo");
    term.expect(PROMPT, T);
    // Full-screen programs: their keys are not shell commands.
    term.send_line(&format!("vi {vi_file}"));
    wait_foreground(sshd_pid, &["vi", vi_file], T);
    std::thread::sleep(Duration::from_millis(500));
    term.send("ihello from vi\x1b");
    std::thread::sleep(Duration::from_millis(300));
    term.send(":wq\r");
    term.expect(PROMPT, T);
    term.send_line("top");
    wait_foreground(sshd_pid, &["top"], T);
    std::thread::sleep(Duration::from_millis(800));
    term.send("q");
    term.expect(PROMPT, T);
    term.send_line("less /etc/passwd");
    wait_foreground(sshd_pid, &["less", "/etc/passwd"], T);
    std::thread::sleep(Duration::from_millis(500));
    term.send("q");
    term.expect(PROMPT, T);
    term.send_line("find /usr/share -maxdepth 3; echo find-$((1+1))-done");
    term.expect("find-2-done", T);
    term.expect(PROMPT, T);
    term.send_line("exit");
    term.wait_code(0, T);
}

fn record() -> Recorded {
    let r = RecordedLogin::launched("views", Launch::LoginShell, "", |b| b);
    let scratch = TempDir::new("views-e2e");
    let home = format!("/home/{}", r.user.name());
    let vi_file = format!("{home}/vi-notes.txt");

    let before = r.tree.sessions();
    interactive_shell(&r, &vi_file);
    let shell = new_session(&r.tree, &before);

    let before = r.tree.sessions();
    let out = r.sshd.login(&r.user).exec("kill -TERM $$", b"");
    assert!(!out.status.success(), "{out:?}");
    let killed = new_session(&r.tree, &before);

    let before = r.tree.sessions();
    let out = r.sshd.login(&r.user).exec(
        "printf 'pipe-1\\npipe-2\\n'; printf 'to-stderr-5\\n' >&2",
        b"",
    );
    assert!(out.status.success(), "{out:?}");
    let pipe = new_session(&r.tree, &before);

    let before = r.tree.sessions();
    let local = scratch.join("upload.txt");
    std::fs::write(&local, b"payload\n").unwrap();
    let batch = format!(
        "put {} up.txt\nls -l\nget up.txt {}\n",
        local.display(),
        scratch.join("down.txt").display()
    );
    let out = r.sshd.login(&r.user).sftp_batch(&batch, T);
    assert!(out.status.success(), "{out:?}");
    let sftp = new_session(&r.tree, &before);

    let before = r.tree.sessions();
    std::fs::create_dir_all(scratch.join("rs")).unwrap();
    std::fs::write(scratch.join("rs/one.bin"), vec![7u8; 20_000]).unwrap();
    let login = r.sshd.login(&r.user);
    let out = login.rsync(
        &[
            "-a",
            &format!("{}/", scratch.join("rs").display()),
            &login.remote_path("rs-dest/"),
        ],
        T,
    );
    assert!(out.status.success(), "{out:?}");
    let rsync = new_session(&r.tree, &before);

    let before = r.tree.sessions();
    let mut term = r.sshd.login(&r.user).interactive();
    term.expect(PROMPT, T);
    let admin = loop {
        let now: Vec<PathBuf> = r
            .tree
            .sessions()
            .into_iter()
            .filter(|s| !before.contains(s))
            .collect();
        if let [s] = now.as_slice() {
            if !channel_files(s).is_empty() {
                break s.clone();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let o = sessrec(
        r.tree.record_dir(),
        &["kill", &session_id(&admin), "--message", "ended-by-op-3"],
    );
    assert!(o.status.success(), "{o:?}");
    term.wait(T);
    wait_last_event(&admin.join("session.jsonl"), "logout", T);

    let before = r.tree.sessions();
    let mux = r
        .sshd
        .login(&r.user)
        .with_control_master(&scratch.join("mux"));
    let mut first = mux.pty_exec("echo first-chan-1; sleep 1; echo first-chan-2");
    first.expect("first-chan-2", T);
    first.wait(T);
    let second = mux.exec("echo second-chan-3", b"");
    assert!(second.status.success(), "{second:?}");
    mux.stop_master();
    let multi = new_session(&r.tree, &before);
    assert_eq!(channel_files(&multi).len(), 2, "{}", r.tree.listing());

    let dir = scratch.join("records");
    run(Command::new("cp")
        .arg("-a")
        .arg(r.tree.record_dir())
        .arg(&dir));
    Recorded {
        dir,
        shell: session_id(&shell),
        killed: session_id(&killed),
        pipe: session_id(&pipe),
        sftp: session_id(&sftp),
        rsync: session_id(&rsync),
        admin: session_id(&admin),
        multi: session_id(&multi),
        vi_file,
        _scratch: scratch,
    }
}

fn show(r: &Recorded, id: &str, extra: &[&str]) -> String {
    let mut args = vec!["show", id];
    args.extend_from_slice(extra);
    ok(sessrec(&r.dir, &args))
}

fn show_json(r: &Recorded, id: &str) -> Vec<Value> {
    show(r, id, &["--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The timeline's command lines (`typed` entries), as shown.
fn typed_lines(shown: &str) -> Vec<&str> {
    shown
        .lines()
        .filter(|l| l.split_whitespace().nth(4) == Some("typed"))
        .collect()
}

// ---- never drop ----------------------------------------------------------------------------

#[test]
fn text_export_keeps_what_clear_erased_once_and_in_order() {
    require_e2e!("vi", "top", "less");
    let r = recorded();
    let text = ok(sessrec(&r.dir, &["export", &r.shell, "--format", "text"]));
    assert_eq!(
        text.matches("export SECRET_MARKER=m4rk-71").count(),
        1,
        "{text}"
    );
    assert_eq!(text.matches("shown-m4rk-71").count(), 1, "{text}");
    let marker = text.find("shown-m4rk-71").unwrap();
    let later = text.find("back\\slash-9").expect("later output");
    assert!(marker < later, "in order: {text}");
    assert!(text.contains("[cleared: "), "marked as cleared: {text}");
    // A line erased in place is there once, marked.
    assert_eq!(text.matches("gone-line-7").count(), 1, "{text}");
    assert!(
        text.contains("gone-line-7\n[erased: the line above was removed from the screen here]"),
        "{text}"
    );
    // The editor's screen is there, marked as the alternate screen.
    assert!(text.contains("hello from vi"), "{text}");
    assert!(text.contains("[alternate screen: "), "{text}");
    assert_eq!(text.matches("find-2-done").count(), 1, "{text}");
}

#[test]
fn typed_text_export_holds_input_typed_with_echo_off() {
    require_e2e!("vi", "top", "less");
    let r = recorded();
    let text = ok(sessrec(
        &r.dir,
        &["export", &r.shell, "--format", "text", "--typed"],
    ));
    assert!(text.contains("hidden-cmd"), "{text}");
}

#[test]
fn show_names_the_killing_signal() {
    require_e2e!();
    let r = recorded();
    let shown = show(r, &r.killed, &[]);
    let end = shown
        .lines()
        .find(|l| l.contains("channel.end"))
        .expect("channel.end");
    assert!(end.contains("signal 15 (SIGTERM)"), "{shown}");
    assert!(!end.contains("(exit)"), "{shown}");
}

#[test]
fn show_has_the_operators_message() {
    require_e2e!();
    let r = recorded();
    let shown = show(r, &r.admin, &[]);
    assert!(shown.contains("ended-by-op-3"), "{shown}");
}

#[test]
fn show_has_rsync_paths_and_byte_counts() {
    require_e2e!("rsync");
    let r = recorded();
    let shown = show(r, &r.rsync, &[]);
    let summary = shown
        .lines()
        .find(|l| l.contains("transfer") && l.contains("summary"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(summary.contains("rs-dest/"), "{summary}");
    assert!(summary.contains("bytes_from_client="), "{summary}");
    assert!(summary.contains("bytes_to_client="), "{summary}");
}

#[test]
fn show_has_the_sftp_stat_summary() {
    require_e2e!("sftp");
    let r = recorded();
    let shown = show(r, &r.sftp, &[]);
    let json = show_json(r, &r.sftp);
    let stat = json
        .iter()
        .find(|e| e["details"]["op"] == "stat_summary")
        .unwrap_or_else(|| panic!("no stat_summary in the record\n{shown}"));
    let count = stat["details"]["count"].as_u64().unwrap();
    let line = shown
        .lines()
        .find(|l| l.contains("stat_summary"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(line.contains(&format!("count={count}")), "{line}");
}

#[test]
fn show_verbose_has_every_field_of_every_line() {
    require_e2e!("vi", "top", "less", "rsync", "sftp");
    let r = recorded();
    for id in [&r.shell, &r.killed, &r.pipe, &r.sftp, &r.rsync, &r.admin] {
        let verbose = show(r, id, &["--verbose"]);
        for entry in show_json(r, id) {
            let Some(details) = entry["details"].as_object() else {
                continue;
            };
            // Entries the view made (commands rebuilt from keys) are not record lines.
            if !details.contains_key("line") {
                continue;
            }
            for (k, v) in details {
                // The type is the entry's column; `command_complete` is the view's own.
                if ["line", "type", "command_complete"].contains(&k.as_str()) || v.is_null() {
                    continue;
                }
                assert!(
                    verbose.contains(&format!("{k}=")) || verbose.contains(&format!("{k}: ")),
                    "{id}: field {k} of {} not shown\n{verbose}",
                    entry["type"]
                );
            }
        }
    }
}

// ---- never invent --------------------------------------------------------------------------

#[test]
fn keys_typed_in_full_screen_programs_are_not_commands() {
    require_e2e!("vi", "top", "less");
    let r = recorded();
    let shown = show(r, &r.shell, &[]);
    let typed = typed_lines(&shown);
    for bad in ["ihello", ":wq", "$ q", "qtop"] {
        assert!(
            !typed.iter().any(|l| l.contains(bad)),
            "{bad} shown as a command:\n{shown}"
        );
    }
    for good in [
        format!("$ vi {}", r.vi_file),
        "$ top".into(),
        "$ less /etc/passwd".into(),
        "$ clear".into(),
    ] {
        assert!(
            typed.iter().any(|l| l.contains(&good)),
            "{good} missing:\n{shown}"
        );
    }
}

#[test]
fn tab_completion_is_resolved_from_the_screen() {
    require_e2e!("vi", "top", "less");
    let r = recorded();
    let shown = show(r, &r.shell, &[]);
    assert!(
        typed_lines(&shown)
            .iter()
            .any(|l| l.contains("$ /usr/bin/whoami") && l.contains("completed on screen")),
        "{shown}"
    );
}

#[test]
fn concealed_is_only_flagged_for_hidden_lines() {
    require_e2e!("vi", "top", "less");
    let r = recorded();
    let shown = show(r, &r.shell, &[]);
    assert!(!shown.contains("concealed"), "{shown}");
    let hidden = typed_lines(&shown)
        .into_iter()
        .find(|l| l.contains("hidden-cmd"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(hidden.contains("no echo"), "{hidden}");
}

#[test]
fn backslashes_are_shown_once() {
    require_e2e!("vi", "top", "less");
    let r = recorded();
    let shown = show(r, &r.shell, &[]);
    assert!(shown.contains(r"$ echo 'back\slash-9'"), "{shown}");
}

// ---- rough edges ---------------------------------------------------------------------------

#[test]
fn pipe_channels_export_with_carriage_returns_and_stderr_apart() {
    require_e2e!();
    let r = recorded();
    let cast = ok(sessrec(
        &r.dir,
        &["export", &r.pipe, "--format", "asciicast-v2"],
    ));
    let output: String = cast
        .lines()
        .skip(1)
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e[1] == "o")
        .map(|e| e[2].as_str().unwrap().to_owned())
        .collect();
    assert!(output.contains("pipe-1\r\npipe-2\r\n"), "{output:?}");
    let json = ok(sessrec(&r.dir, &["export", &r.pipe, "--format", "json"]));
    assert!(
        json.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|v| v["stream"] == "e"
                && v["text"].as_str().unwrap_or("").contains("to-stderr-5")),
        "{json}"
    );
    let text = ok(sessrec(&r.dir, &["export", &r.pipe, "--format", "text"]));
    assert!(text.contains("pipe-1\npipe-2\n"), "{text}");
    assert!(text.contains("\n[stderr] to-stderr-5\n"), "{text}");
    let o = sessrec(&r.dir, &["search", "to-stderr-5", "--output", "--json"]);
    let hit: Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(hit["stream"], "stderr", "{hit}");
    let o = sessrec(&r.dir, &["search", "pipe-2", "--output", "--json"]);
    let hit: Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(hit["stream"], "output", "{hit}");
}

#[test]
fn search_raw_finds_keys_typed_after_escape() {
    require_e2e!("vi", "top", "less");
    let r = recorded();
    let o = sessrec(&r.dir, &["search", ":wq", "--input", "--session", &r.shell]);
    assert_eq!(o.status.code(), Some(1), "escape-stripped text: {o:?}");
    let o = sessrec(
        &r.dir,
        &["search", ":wq", "--input", "--raw", "--session", &r.shell],
    );
    let hits = ok(o);
    assert_eq!(hits.lines().count(), 1, "{hits}");
    assert!(
        hits.starts_with(&format!("{}/channel-1", r.shell)),
        "{hits}"
    );
}

#[test]
fn search_is_limited_to_one_session_and_dated_as_show() {
    require_e2e!("vi", "top", "less", "rsync", "sftp");
    let r = recorded();
    // Only the named session is searched.
    let o = sessrec(
        &r.dir,
        &["search", "hidden-cmd", "--input", "--session", &r.pipe],
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let hits = ok(sessrec(
        &r.dir,
        &["search", "hidden-cmd", "--input", "--session", &r.shell],
    ));
    let hit = hits.lines().next().unwrap();
    // Time and offset as `show` prints them for the same moment.
    let fields: Vec<&str> = hit.split_whitespace().collect();
    let (date, clock, offset) = (fields[1], fields[2], fields[3]);
    let shown = show(r, &r.shell, &[]);
    let typed = shown
        .lines()
        .find(|l| l.contains("$ echo hidden-cmd"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(typed.starts_with(&format!("{date} ")), "{hit}\n{typed}");
    assert!(
        clock.ends_with('Z') && clock.len() == "10:00:00.123Z".len(),
        "{hit}"
    );
    assert!(offset.starts_with('+'), "{hit}");
    // Typed lines are kept apart in the context.
    assert!(
        hit.contains("stty -echo ⏎ echo hidden-cmd > /dev/null ⏎ stty echo"),
        "{hit}"
    );
}

// ---- what ran: the kernel's exec and connect records (audit.jsonl) ------------------------

/// A copy of the tree whose interactive session gets an `audit.jsonl` written through the
/// schema types, as sessrec-audit-import writes it: `bash` running `vi`, vi running `sh -c id`,
/// a `sudo` whose child runs as root, a failed exec, arguments with control characters and a
/// long one carried in `command.part` lines, a connection and a gap.
fn with_audit(r: &Recorded) -> (TempDir, PathBuf) {
    use sessrec_core::exec_args;
    use sessrec_core::id::SessionId;
    use sessrec_core::record::FileContext;
    use sessrec_core::schema::{AuditGap, Connect, Exec};
    use sessrec_core::writer::{RecordWriter, WriterOptions};

    let tmp = TempDir::new("views-audit");
    let copy = tmp.join("records");
    run(Command::new("cp").arg("-a").arg(&r.dir).arg(&copy));
    let session = find_session(&copy, &r.shell);
    let login = &read_records(&session.join("session.jsonl"))[0];
    let text = |k: &str| login[k].as_str().unwrap().to_string();
    let ctx = FileContext {
        host: text("host"),
        session: SessionId::parse(&r.shell).unwrap(),
        file: "audit.jsonl".into(),
        user: text("user"),
        actor: text("actor"),
    };
    let file = std::fs::File::create(session.join("audit.jsonl")).unwrap();
    let mut w = RecordWriter::new(file, ctx, WriterOptions::default()).unwrap();
    let start = login["time"].as_str().unwrap().to_string();
    // Seconds after the login's minute: `2026-12-07T19:10:01.387374Z` -> `...19:10:<s>...`.
    let at = |s: u32| format!("{}{:02}.000000Z", &start[..17], 10 + s);
    let exec = |pid: u32, ppid: u32, s: u32| Exec {
        at: Some(at(s)),
        pid: Some(pid),
        ppid: Some(ppid),
        channel: Some("channel-1.jsonl".into()),
        uid: Some(1000),
        euid: Some(1000),
        success: Some(true),
        cwd: Some("/home/u".into()),
        ..Exec::default()
    };
    let args = |a: &[&[u8]]| a.iter().map(|x| x.to_vec()).collect::<Vec<_>>();
    exec_args::write(
        &mut w,
        Exec {
            exe: Some("/usr/bin/vim.tiny".into()),
            ..exec(100, 50, 1)
        },
        &args(&[b"vi", b"notes"]),
    )
    .unwrap();
    exec_args::write(
        &mut w,
        exec(101, 100, 2),
        &args(&[b"/bin/sh", b"-c", b"id"]),
    )
    .unwrap();
    exec_args::write(&mut w, exec(102, 101, 2), &args(&[b"id"])).unwrap();
    exec_args::write(
        &mut w,
        Exec {
            root: Some(true),
            euid: Some(0),
            euser_name: Some("root".into()),
            ..exec(103, 50, 3)
        },
        &args(&[b"cat", b"/etc/shadow"]),
    )
    .unwrap();
    exec_args::write(
        &mut w,
        Exec {
            success: Some(false),
            errno: Some("ENOENT".into()),
            exit: Some(-2),
            ..exec(104, 50, 4)
        },
        &args(&[b"no-such-prog-7"]),
    )
    .unwrap();
    let long = vec![b'L'; 20 * 1024];
    exec_args::write(
        &mut w,
        exec(105, 50, 5),
        &args(&[b"printf", b"esc\x1b[2Jnl\nbad\xff", &long, b"tail-arg-9"]),
    )
    .unwrap();
    w.write(&Connect {
        at: Some(at(6)),
        pid: Some(106),
        channel: Some("channel-1.jsonl".into()),
        family: Some("inet".into()),
        address: Some("127.0.0.1".into()),
        port: Some(5599),
        result: Some("connected".into()),
        exe: Some("/usr/bin/nc".into()),
        success: Some(true),
        ..Connect::default()
    })
    .unwrap();
    w.write(&AuditGap {
        from: Some(at(7)),
        to: Some(at(8)),
        reason: Some("lost".into()),
        lost: Some(3),
        ..AuditGap::default()
    })
    .unwrap();
    w.close().unwrap();
    (tmp, copy)
}

fn find_session(tree: &Path, id: &str) -> PathBuf {
    let out = run(Command::new("find")
        .arg(tree)
        .args(["-type", "d", "-name", id]));
    PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .expect("session dir"),
    )
}

#[test]
fn show_lists_what_ran_as_an_exec_tree_beside_what_was_typed() {
    require_e2e!("vi", "top", "less");
    let r = recorded();
    let (_tmp, copy) = with_audit(r);
    let shown = ok(sessrec(&copy, &["show", &r.shell]));
    let ran: Vec<String> = ok(sessrec(&copy, &["show", &r.shell, "--json"]))
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "ran")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ran.len(), 6, "{shown}");
    // Indented by ancestry: vi, the shell it ran, the command that shell ran.
    assert!(ran[0].starts_with("vi notes"), "{ran:?}");
    assert!(ran[1].starts_with("  /bin/sh -c id"), "{ran:?}");
    assert!(ran[2].starts_with("    id"), "{ran:?}");
    assert!(
        shown
            .lines()
            .any(|l| l.contains(" ran ") && l.contains("vi notes")),
        "labelled ran: {shown}"
    );
    assert!(
        ran.iter()
            .any(|l| l.contains("cat /etc/shadow") && l.contains("root (as root)")),
        "{shown}"
    );
    assert!(
        ran.iter()
            .any(|l| l.contains("no-such-prog-7") && l.contains("failed: ENOENT")),
        "{shown}"
    );
    // Hostile arguments are shown whole and harmless.
    let long = ran
        .iter()
        .find(|l| l.contains("tail-arg-9"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        long.contains("esc␛[2Jnl␊bad\u{fffd}") && long.contains(&"L".repeat(20 * 1024)),
        "{long}"
    );
    assert!(!shown.contains('\x1b'));
    assert!(
        shown.contains("connect 127.0.0.1:5599 connected by /usr/bin/nc"),
        "{shown}"
    );
    assert!(
        shown.contains("exec audit may have missed events") && shown.contains("3 event(s) lost"),
        "{shown}"
    );
    // Typed commands stay, labelled as such; no note that audit was off.
    assert!(
        typed_lines(&shown).iter().any(|l| l.contains("$ top")),
        "{shown}"
    );
    assert!(!shown.contains("exec audit was off"), "{shown}");
    let plain = show(r, &r.shell, &[]);
    assert!(
        plain.contains("exec audit was off for this session"),
        "{plain}"
    );
}

#[test]
fn search_list_and_json_export_carry_execs_and_connections() {
    require_e2e!("vi", "top", "less", "npm");
    let r = recorded();
    let (tmp, copy) = with_audit(r);
    let hits = ok(sessrec(&copy, &["search", "--exec", "shadow"]));
    assert_eq!(hits.lines().count(), 1, "{hits}");
    assert!(
        hits.contains(&format!("{}/channel-1", r.shell)) && hits.contains(" exec "),
        "{hits}"
    );
    let o = sessrec(&copy, &["search", "--exec", "nc"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "nc connected, it was not exec'd here: {o:?}"
    );
    let hits = ok(sessrec(&copy, &["search", "--connect", ":5599"]));
    assert!(
        hits.contains(" connect ") && hits.contains("127.0.0.1:5599"),
        "{hits}"
    );
    let listed = ok(sessrec(&copy, &["list", "--json"]));
    let shell: Value = listed
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["session"] == r.shell.as_str())
        .unwrap();
    assert_eq!(shell["execs"], 6, "{shell}");
    assert_eq!(shell["connects"], 1, "{shell}");
    let json = ok(sessrec(&copy, &["export", &r.shell, "--format", "json"]));
    let execs: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["event"]["type"] == "exec")
        .collect();
    assert_eq!(execs.len(), 6, "{json}");
    assert!(execs
        .iter()
        .any(|v| v["arguments"].as_array().is_some_and(|a| a.len() == 4)));
    // The HTML page's timeline has them too.
    let page = tmp.join("audit.html");
    let o = Command::new(products().sessrec_cli())
        .arg("--dir")
        .arg(&copy)
        .args(["export", &r.shell, "--format", "html", "--output"])
        .arg(&page)
        .env("SESSREC_PLAYER_DIR", player_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("</b> ran cat /etc/shadow"),
        "exec in the timeline"
    );
    assert!(
        html.contains("connect 127.0.0.1:5599"),
        "connection in the timeline"
    );
}

#[test]
fn list_has_kind_command_and_exit_and_says_when_nothing_matches() {
    require_e2e!("vi", "top", "less", "rsync", "sftp");
    let r = recorded();
    let listed = ok(sessrec(&r.dir, &["list"]));
    let header = listed.lines().next().unwrap();
    for column in ["KIND", "EXIT", "EXEC", "CONN", "COMMAND"] {
        assert!(header.contains(column), "{header}");
    }
    let row = |id: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{listed}"))
            .to_string()
    };
    let killed = row(&r.killed);
    assert!(
        killed.contains(" exec ")
            && killed.contains("SIGTERM")
            && killed.ends_with("kill -TERM $$"),
        "{killed}"
    );
    let rsync = row(&r.rsync);
    assert!(
        rsync.contains(" transfer ") && rsync.contains("rsync --server"),
        "{rsync}"
    );
    assert!(row(&r.shell).contains(" shell "), "{listed}");
    // Without exec audit the counts are not zero but unknown.
    assert!(row(&r.shell).contains("    -    - "), "{listed}");
    let o = sessrec(&r.dir, &["list", "--user", "nobody-at-all"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o).lines().count(), 1, "header only on stdout");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no session in"),
        "{o:?}"
    );
    // Local time: the same moment with the zone's offset.
    let utc = row(&r.shell);
    let o = Command::new(products().sessrec_cli())
        .arg("--dir")
        .arg(&r.dir)
        .args(["list", "--local"])
        .env("TZ", "Asia/Kolkata")
        .output()
        .unwrap();
    let local = stdout(&o);
    let local_row = local.lines().find(|l| l.starts_with(&r.shell)).unwrap();
    assert!(local_row.contains("+05:30"), "{local_row}");
    assert!(
        utc.split_whitespace().nth(2).unwrap().ends_with('Z'),
        "{utc}"
    );
}

/// The page's DOM after its scripts ran, from headless Chromium.
fn dom_of(page: &Path, profile: &Path, hash: &str) -> String {
    let o = chromium(profile, &["--dump-dom"], page, hash);
    assert!(o.status.success(), "{o:?}");
    stdout(&o)
}

#[test]
fn html_export_holds_every_channel_with_the_timeline_as_jump_marks() {
    require_e2e!("chromium", "npm");
    let r = recorded();
    let player = player_dir();
    let tmp = TempDir::new("views-html");
    let page = tmp.join("multi.html");
    let page_arg = page.to_string_lossy().into_owned();
    // The player where a build from this source tree looks: no --player needed.
    assert!(player.ends_with("vendor-player") || std::env::var_os("SESSREC_PLAYER_DIR").is_some());
    let o = Command::new(products().sessrec_cli())
        .arg("--dir")
        .arg(&r.dir)
        .args([
            "export", &r.multi, "--format", "html", "--output", &page_arg,
        ])
        .env("SESSREC_PLAYER_DIR", &player)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("<script").count(), 3, "data, player, start-up");
    assert_eq!(
        html.matches("class=\"sessrec-player\"").count(),
        2,
        "both channels"
    );
    let dom = dom_of(&page, &tmp.join("profile"), "");
    assert_eq!(dom.matches("<script").count(), 3, "no script was injected");
    // The text of the players' terminal rows (each row ends with its two closing spans).
    let lines = |dom: &str| -> String {
        dom.split("class=\"ap-line\"")
            .skip(1)
            .map(|row| row.split("</span></span>").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(lines(&dom).contains("first-chan-2"), "first channel shown");
    assert!(
        lines(&dom).contains("second-chan-3"),
        "second channel shown"
    );
    // The shell session's timeline: every typed command is a jump mark, in the page and in
    // the player's progress bar.
    let shell_page = tmp.join("shell.html");
    let shell_arg = shell_page.to_string_lossy().into_owned();
    let o = Command::new(products().sessrec_cli())
        .arg("--dir")
        .arg(&r.dir)
        .args([
            "export", &r.shell, "--format", "html", "--output", &shell_arg,
        ])
        .env("SESSREC_PLAYER_DIR", &player)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let html = std::fs::read_to_string(&shell_page).unwrap();
    let typed = typed_lines(&show(r, &r.shell, &[])).len();
    let jumps = html.matches("class=\"jump\"").count();
    assert!(
        jumps >= typed && typed > 5,
        "{jumps} jump marks, {typed} typed"
    );
    let dom = dom_of(&shell_page, &tmp.join("profile-2"), "");
    assert!(
        dom.matches("ap-marker-container").count() >= typed,
        "player markers: {}",
        dom.matches("ap-marker-container").count()
    );
    // A jump: the page opened at the mark of `stty -echo` (typed after the backslash line
    // was shown) shows that moment, not the end.
    let mark = html
        .split("<li>")
        .find(|li| li.contains("$ stty -echo"))
        .unwrap_or_else(|| panic!("no timeline entry for stty -echo"));
    let t: String = mark
        .split("data-t=\"")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    let dom = dom_of(&shell_page, &tmp.join("profile-3"), &format!("#t=0:{t}"));
    let shown = lines(&dom);
    assert!(shown.contains("back\\slash-9"), "{shown}");
    assert!(
        !shown.contains("find-2-done"),
        "still at the jump, not the end: {shown}"
    );
}

#[test]
fn a_failed_html_export_leaves_no_file() {
    require_e2e!("vi", "top", "less");
    let r = recorded();
    let tmp = TempDir::new("views-html-fail");
    let page = tmp.join("out.html");
    let o = sessrec(
        &r.dir,
        &[
            "export",
            &r.shell,
            "--format",
            "html",
            "--player",
            "/nonexistent-player-dir",
            "--output",
            &page.to_string_lossy(),
        ],
    );
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `sessrec play` of the shell session on a terminal of `cols` columns.
fn play_on_terminal(r: &Recorded, cols: u16) -> PtySession {
    let mut cmd = Command::new(products().sessrec_cli());
    cmd.arg("--dir")
        .arg(&r.dir)
        .args(["play", &r.shell, "--idle-limit", "1s"])
        .env("TERM", "xterm");
    PtySession::spawn(cmd, cols, 30)
}

#[test]
fn play_shows_a_status_line_and_warns_of_a_wider_recording() {
    require_e2e!("vi", "top", "less");
    let r = recorded();
    let mut term = play_on_terminal(r, 100);
    term.expect(r"sessrec play 00:00:0\d\.\d  speed x1  playing", T);
    term.send(" ");
    term.expect(r"speed x1  paused", T);
    term.send("+");
    term.send(" ");
    term.expect(r"speed x2  playing", T);
    term.send("q");
    assert!(term.wait(T).success());
    assert!(
        !term.transcript_text().contains("columns wide"),
        "no warning when the terminal is wide enough"
    );
    let mut narrow = play_on_terminal(r, 60);
    narrow.expect(
        "the recording is 80 columns wide, this terminal 60: lines will wrap",
        T,
    );
    narrow.send("q");
    assert!(narrow.wait(T).success());
    // Not a terminal: the replay and nothing of play's own after it.
    let o = sessrec(&r.dir, &["play", &r.shell, "--speed", "1000"]);
    let out = ok(o);
    let tail = &out[out.rfind("logout").expect("the replay's end")..];
    assert!(!tail.contains('\x1b'), "{tail:?}");
}

#[test]
fn a_click_on_a_timeline_entry_jumps_its_player_there() {
    require_e2e!("chromium", "chromedriver", "npm", "vi", "top", "less");
    let r = recorded();
    let player = player_dir();
    let tmp = TempDir::new("views-jump");
    let page = tmp.join("shell.html");
    let o = Command::new(products().sessrec_cli())
        .arg("--dir")
        .arg(&r.dir)
        .args(["export", &r.shell, "--format", "html", "--output"])
        .arg(&page)
        .env("SESSREC_PLAYER_DIR", &player)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/views_support/html_jump.py");
    // `stty -echo` was typed after the backslash line was shown, long before `find` ran.
    let o = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(&page)
        .arg("$ stty -echo")
        .arg(tmp.join("profile"))
        .arg("find-2-done")
        .output()
        .expect("run python3 with selenium (python3-selenium, chromium-driver)");
    assert!(o.status.success(), "{o:?}");
    let shown = stdout(&o);
    assert!(shown.contains("back\\slash-9"), "{shown}");
    assert!(!shown.contains("find-2-done"), "{shown}");
}
