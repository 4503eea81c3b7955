//! sudo-iolog-import against real sudo 1.9 (`log_output, log_input, use_pty`): sudo run on a
//! pty and inside recorded ssh sessions (private sshd, sessrec-shell login shell), imported
//! with the built `sudo-iolog-import`, each sudo session checked for placement, match method
//! and content; a second run imports nothing.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use sessrec_tests::*;

const T: Duration = Duration::from_secs(30);

/// An iolog directory and a sudoers drop-in logging everything `user` runs through sudo.
struct SudoLogging {
    iolog: TempDir,
    _dropin: SudoersDropIn,
}

impl SudoLogging {
    /// `extra` are more sudoers lines (e.g. command-specific Defaults).
    fn new(user: &str, iolog_dir_suffix: &str, extra: &str) -> SudoLogging {
        let iolog = TempDir::new("iolog");
        let dropin = SudoersDropIn::new(&format!(
            "Defaults:{user} log_output, log_input, use_pty, iolog_dir={}{iolog_dir_suffix}\n\
             Defaults:{user} env_keep += \"SESSREC_SESSION\"\n\
             {extra}\
             {user} ALL=(ALL) NOPASSWD: ALL\n",
            iolog.path().display()
        ));
        SudoLogging {
            iolog,
            _dropin: dropin,
        }
    }

    fn dir(&self) -> &Path {
        self.iolog.path()
    }
}

fn config(iolog: &Path, state: &Path) -> String {
    config_settling(iolog, state, 0)
}

/// `settle_minutes`: how long an unfinished log must be unchanged before it is imported whole.
fn config_settling(iolog: &Path, state: &Path, settle_minutes: u32) -> String {
    format!(
        "[recorder]\nshell = \"/bin/bash\"\n[sudo]\niolog_dirs = [\"{}\"]\nstate_file = \"{}\"\nsettle_minutes = {settle_minutes}\n",
        iolog.display(),
        state.display()
    )
}

fn import(tree: &RecordTree) -> (Value, Output) {
    let out = Command::new(products().sudo_iolog_import())
        .args(["--once", "--json"])
        .env("SESSREC_CONFIG", tree.config_path())
        .output()
        .expect("run sudo-iolog-import");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}): stdout {stdout:?} stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (summary, out)
}

fn sudo_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().path())
                .filter(|p| {
                    let n = p.file_name().unwrap().to_string_lossy();
                    n.starts_with("sudo-") && n.ends_with(".jsonl")
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The sudo record whose `sudo.start` command line contains `needle`.
fn record_for(files: &[PathBuf], needle: &str) -> (PathBuf, serde_json::Map<String, Value>) {
    for f in files {
        let start = only_event(f, "sudo.start");
        let argv = start.get("argv").map(Value::to_string).unwrap_or_default();
        let cmd = start.get("command").and_then(Value::as_str).unwrap_or("");
        if argv.contains(needle) || cmd.contains(needle) {
            return (f.clone(), start);
        }
    }
    panic!("no sudo record for {needle:?} among {files:?}");
}

fn all_unattributed(tree: &RecordTree) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let base = tree.record_dir().join("unattributed");
    for y in fs::read_dir(&base).into_iter().flatten() {
        for m in fs::read_dir(y.unwrap().path()).into_iter().flatten() {
            for d in fs::read_dir(m.unwrap().path()).into_iter().flatten() {
                for session in fs::read_dir(d.unwrap().path()).into_iter().flatten() {
                    out.extend(sudo_files(&session.unwrap().path()));
                }
            }
        }
    }
    out
}

#[test]
fn sudo_on_a_pty_outside_any_session_is_imported_unattributed() {
    require_e2e!("sudo", "runuser");
    let user = TestUser::new("sudo-pty", Path::new("/bin/bash"));
    // A per-user iolog_dir, and one command logged without compression.
    let sudo = SudoLogging::new(
        user.name(),
        "/%{user}",
        "Defaults!/usr/bin/printf !compress_io\n",
    );
    let tree = RecordTree::new("");
    let state = tree.dir().join("sudo-import.state");
    tree.write_config(&config(sudo.dir(), &state));

    let mut cmd = Command::new("runuser");
    cmd.args(["-u", user.name(), "--", "sudo", "id"]);
    let mut term = PtySession::spawn(cmd, 80, 24);
    term.expect(r"uid=0\(root\)", T);
    term.wait_code(0, T);
    let mut cmd = Command::new("runuser");
    cmd.args([
        "-u",
        user.name(),
        "--",
        "sudo",
        "printf",
        "%s|%s\\n",
        "a:b c",
        "plain",
    ]);
    let mut term = PtySession::spawn(cmd, 80, 24);
    term.expect(r"a:b c\|plain", T);
    term.wait_code(0, T);

    let (summary, out) = import(&tree);
    assert!(out.status.success(), "{summary} {out:?}");
    assert_eq!(summary["imported"], 2, "{summary}");
    assert_eq!(summary["by_method"]["none"], 2, "{summary}");
    let files = all_unattributed(&tree);
    assert_eq!(files.len(), 2, "{}", tree.listing());
    let (id_rec, start) = record_for(&files, "/usr/bin/id");
    assert_chain_ok(&id_rec);
    assert_eq!(start["match"], "none");
    assert_eq!(start["submituser"], user.name());
    assert!(start["iolog_path"]
        .as_str()
        .unwrap()
        .contains(&format!("/{}/", user.name())));
    assert!(stream_text(&id_rec, Stream::Output).contains("uid=0(root) gid=0(root)"));
    let (printf_rec, start) = record_for(&files, "a:b c");
    assert_eq!(
        start["argv"],
        serde_json::json!(["printf", "%s|%s\\n", "a:b c", "plain"])
    );
    assert!(stream_text(&printf_rec, Stream::Output).contains("a:b c|plain"));
    assert_eq!(only_event(&printf_rec, "sudo.end")["complete"], true);

    let (again, out) = import(&tree);
    assert!(out.status.success());
    assert_eq!(again["imported"], 0, "{again}");
    assert_eq!(again["already_imported"], 2, "{again}");
}

/// Input typed while a sudo command is still ending goes to sudo's pty and is lost: types
/// `echo <word>-$((2+3))` until the login shell answers `<word>-5`.
fn retype_until_shell_answers(term: &mut PtySession, word: &str) {
    let answer = format!("{word}-5");
    for _ in 0..40 {
        term.send_line(&format!("echo {word}-$((2+3))"));
        std::thread::sleep(Duration::from_millis(500));
        if term.transcript_text().contains(&answer) {
            term.expect(&answer, T);
            return;
        }
    }
    panic!("the shell never answered:\n{}", term.transcript_text());
}

/// A recorded login with sudo logging for its user, and a config importing that iolog dir.
struct Recorded {
    _installed: Installed,
    tree: RecordTree,
    user: TestUser,
    _sudo: SudoLogging,
    sshd: PrivateSshd,
}

impl Recorded {
    fn new(prefix: &str) -> Recorded {
        ensure_sessrec_user();
        let installed = Installed::recorder_and_pam();
        let tree = RecordTree::new("");
        let user = TestUser::new(prefix, installed.shell());
        // Compressed streams flushed as they are written, for one command.
        let sudo = SudoLogging::new(user.name(), "", "Defaults!/usr/bin/sleep iolog_flush\n");
        let state = tree.dir().join("sudo-import.state");
        tree.write_config(&config(sudo.dir(), &state));
        let sshd = PrivateSshd::builder()
            .recorded_by(&installed, tree.config_path())
            .start();
        Recorded {
            _installed: installed,
            tree,
            user,
            _sudo: sudo,
            sshd,
        }
    }

    /// The only login session, once it has logged out.
    fn ended_session(&self) -> PathBuf {
        let session = self.tree.wait_sessions(1, T).remove(0);
        wait_last_event(&session.join("session.jsonl"), "logout", T);
        session
    }
}

#[test]
fn sudo_inside_a_recorded_interactive_session_joins_its_timeline() {
    require_e2e!("sudo");
    let r = Recorded::new("sudo-ssh");
    let (tree, user, sshd) = (&r.tree, &r.user, &r.sshd);

    // sudo with SESSREC_SESSION kept, without it, with a forged one, and `sudo -i` with typed
    // commands and a resize.
    let mut term = sshd.login(user).interactive();
    // Type only once the shell is up (the recorder takes the terminal over first).
    term.expect(r"\$ ", T);
    term.send_line("echo ready-$((40+2))");
    term.expect("ready-42", T);
    term.send_line("sudo id -un; echo done-$((0+1))");
    term.expect("done-1", T);
    term.send_line("env -u SESSREC_SESSION sudo printf 'via-%s\\n' tty; echo done-$((0+2))");
    term.expect("done-2", T);
    term.send_line(
        "SESSREC_SESSION=00000000-0000-7000-8000-000000000000 sudo printf 'forged-%s\\n' x; echo done-$((0+3))",
    );
    term.expect("done-3", T);
    // Suspended with Ctrl-Z, resumed with fg, killed with Ctrl-C.
    // Keys for the job are typed once it holds its terminal (sudo's own pty, and sudo the
    // recorder's): a Ctrl-C that comes before goes to the shell instead.
    let sshd_pid = sshd.pid().expect("sshd running");
    term.send_line("sudo sleep 31");
    wait_foreground(sshd_pid, &["sleep", "31"], T);
    wait_foreground(sshd_pid, &["sudo", "sleep", "31"], T);
    term.send("\x1a");
    term.expect("Stopped", T);
    // Stopped for a second, which the record's duration must show.
    std::thread::sleep(Duration::from_secs(1));
    term.send_line("fg");
    wait_foreground(sshd_pid, &["sleep", "31"], T);
    wait_foreground(sshd_pid, &["sudo", "sleep", "31"], T);
    term.send("\x03");
    retype_until_shell_answers(&mut term, "after");
    // Nothing is typed ahead: input typed while sudo runs goes to sudo's own pty.
    term.send_line("sudo -i");
    term.expect(r"root@[^\s]*# ", T);
    term.send_line("echo root-$((6*7)); whoami");
    term.expect("root-42", T);
    term.resize(100, 40);
    // The new size travels ssh → sshd → recorder → sudo's pty: ask until it has arrived.
    let mut resized = false;
    for _ in 0..40 {
        term.send_line("stty size");
        std::thread::sleep(Duration::from_millis(250));
        if term.transcript_text().contains("40 100") {
            resized = true;
            break;
        }
    }
    assert!(resized, "{}", term.transcript_text());
    term.expect("40 100", T);
    term.send_line("exit");
    term.expect(r"logout", T);
    retype_until_shell_answers(&mut term, "back");
    term.send_line("exit");
    term.wait(T);

    let session = r.ended_session();
    let (summary, out) = import(tree);
    assert!(
        out.status.success(),
        "{summary} {out:?}\n{}",
        tree.listing()
    );
    assert_eq!(summary["imported"], 5, "{summary}\n{}", tree.listing());
    assert!(all_unattributed(tree).is_empty(), "{}", tree.listing());

    let interactive = sudo_files(&session);
    assert_eq!(interactive.len(), 5, "{}", tree.listing());
    for f in &interactive {
        assert_chain_ok(f);
    }
    let pty = only_event(&wait_channels(&session, 1, T)[0], "channel.start")["pty"].clone();

    let (f, start) = record_for(&interactive, "/usr/bin/id");
    assert_eq!(start["match"], "tty", "{start:?}");
    assert_eq!(start["match_hint"], "agreed", "{start:?}");
    assert_eq!(start["tty"], pty);
    assert_eq!(start["channel"], "channel-1.jsonl");
    assert!(stream_text(&f, Stream::Output).contains("root"));

    let (f, start) = record_for(&interactive, "via-%s");
    assert_eq!(start["match"], "tty", "{start:?}");
    assert!(stream_text(&f, Stream::Output).contains("via-tty"));

    let (_, start) = record_for(&interactive, "forged-%s");
    assert_eq!(start["match"], "tty", "{start:?}");
    assert_eq!(start["match_hint"], "disagreed", "{start:?}");
    assert!(
        start["match_notes"].to_string().contains("not followed"),
        "{start:?}"
    );

    let (f, start) = record_for(&interactive, "/usr/bin/sleep");
    assert_eq!(start["match"], "tty", "{start:?}");
    let signals: Vec<Value> = events(&f, "suspend")
        .into_iter()
        .map(|e| e["signal"].clone())
        .collect();
    assert_eq!(signals, ["TSTP", "CONT"], "{}", tree.listing());
    let end = only_event(&f, "sudo.end");
    assert_eq!(end["complete"], true);
    assert!(end["duration_us"].as_u64().unwrap() >= 1_000_000, "{end:?}");

    let (f, start) = record_for(&interactive, "-bash");
    assert_eq!(start["runuser"], "root");
    assert!(stream_text(&f, Stream::Input).contains("echo root-$((6*7))"));
    assert!(stream_text(&f, Stream::Output).contains("root-42"));
    let resize = only_event(&f, "resize");
    assert_eq!(
        (resize["cols"].clone(), resize["rows"].clone()),
        (100.into(), 40.into())
    );

    let (again, _) = import(tree);
    assert_eq!(again["imported"], 0, "{again}");
    assert_eq!(again["already_imported"], 5, "{again}");
}

/// sudo run in an exec channel (no tty) with `prefix` before it, imported: the user's only
/// open session ties it, whatever `SESSREC_SESSION` said (`hint`).
fn sudo_in_an_exec_channel_is_tied_to_the_only_open_session(tag: &str, prefix: &str, hint: &str) {
    let r = Recorded::new(tag);
    let out = r
        .sshd
        .login(&r.user)
        .exec(&format!("{prefix}sudo printf 'pipe-%s\\n' mode"), b"");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "pipe-mode\n",
        "{out:?}"
    );
    let session = r.ended_session();
    let (summary, out) = import(&r.tree);
    assert!(out.status.success(), "{summary} {out:?}");
    assert_eq!(summary["imported"], 1, "{summary}\n{}", r.tree.listing());
    assert!(all_unattributed(&r.tree).is_empty(), "{}", r.tree.listing());
    let exec = sudo_files(&session);
    assert_eq!(exec.len(), 1, "{}", r.tree.listing());
    let (f, start) = record_for(&exec, "pipe-%s");
    assert_eq!(start["match"], "only_session", "{start:?}");
    assert_eq!(start["match_hint"], hint, "{start:?}");
    assert_eq!(start["channel"], "channel-1.jsonl", "{start:?}");
    assert!(start.get("tty").is_none(), "{start:?}");
    assert!(stream_text(&f, Stream::Output).contains("pipe-mode"));

    let (again, _) = import(&r.tree);
    assert_eq!(again["imported"], 0, "{again}");
}

#[test]
fn sudo_in_an_exec_session_without_a_tty_is_tied_to_the_only_open_session() {
    require_e2e!("sudo");
    sudo_in_an_exec_channel_is_tied_to_the_only_open_session("sudo-exec", "", "agreed");
}

#[test]
fn sudo_without_the_session_variable_is_still_tied_to_its_only_open_session() {
    require_e2e!("sudo");
    // The user removes the hint: the facts (user, host, one open session) still decide.
    sudo_in_an_exec_channel_is_tied_to_the_only_open_session(
        "sudo-nohint",
        "env -u SESSREC_SESSION ",
        "absent",
    );
}

/// Kills the follower on drop (also when the test fails).
struct Follower(std::process::Child);

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn follow_imports_a_running_sudo_as_it_goes() {
    require_e2e!("sudo", "runuser");
    let user = TestUser::new("sudo-follow", Path::new("/bin/bash"));
    let sudo = SudoLogging::new(user.name(), "", "Defaults!/usr/bin/bash iolog_flush\n");
    let tree = RecordTree::new("");
    let state = tree.dir().join("sudo-import.state");
    tree.write_config(&config_settling(sudo.dir(), &state, 10));
    let _follower = Follower(
        Command::new(products().sudo_iolog_import())
            .args(["--follow", "--interval", "1"])
            .env("SESSREC_CONFIG", tree.config_path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start sudo-iolog-import --follow"),
    );

    let mut cmd = Command::new("runuser");
    cmd.args([
        "-u",
        user.name(),
        "--",
        "sudo",
        "bash",
        "-c",
        "echo first-$((1)); read line; echo second-$line",
    ]);
    let mut term = PtySession::spawn(cmd, 80, 24);
    term.expect("first-1", T);
    // While sudo waits for input, its record already holds the first line and no end.
    let live = || {
        all_unattributed(&tree)
            .into_iter()
            .find(|f| stream_text(f, Stream::Output).contains("first-1"))
    };
    wait_until("the live record", T, || live().is_some());
    let record = live().unwrap();
    assert!(events(&record, "sudo.end").is_empty());
    assert_chain_ok(&record);

    term.send_line("two");
    term.expect("second-two", T);
    term.wait_code(0, T);
    wait_last_event(&record, "sudo.end", T);
    assert_chain_ok(&record);
    assert_eq!(only_event(&record, "sudo.end")["complete"], true);
    let out = stream_text(&record, Stream::Output);
    assert!(
        out.contains("first-1") && out.contains("second-two"),
        "{out:?}"
    );
    assert!(stream_text(&record, Stream::Input).starts_with("two"));
    assert_eq!(all_unattributed(&tree).len(), 1, "{}", tree.listing());
}

/// The session directories of the tree, as `sessrec list` sees them.
fn session_id_of(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn a_forged_session_variable_never_files_sudo_in_another_live_session() {
    require_e2e!("sudo");
    let r = Recorded::new("sudo-forge");
    // Session A stays open (a pipe channel sleeping) while session B runs sudo claiming A.
    let mut holder = r
        .sshd
        .login(&r.user)
        .ssh_command(&["-T"])
        .arg("sleep 60")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the session that stays open");
    let a = r.tree.wait_sessions(1, T).remove(0);
    wait_channels(&a, 1, T);
    let a_id = session_id_of(&a);
    let out = r.sshd.login(&r.user).exec(
        &format!("SESSREC_SESSION={a_id} sudo printf 'forged-%s\\n' claim"),
        b"",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "forged-claim\n",
        "{out:?}"
    );
    let sessions = r.tree.wait_sessions(2, T);
    let b = sessions.iter().find(|s| **s != a).unwrap().clone();
    wait_last_event(&b.join("session.jsonl"), "logout", T);

    let (summary, out) = import(&r.tree);
    assert!(out.status.success(), "{summary} {out:?}");
    assert!(
        sudo_files(&a).is_empty(),
        "filed in the named session:\n{}",
        r.tree.listing()
    );
    // Two sessions of the user were open and no tty tells them apart: unattributed, with
    // both named as candidates and the hint shown as not followed.
    let (_, start) = record_for(&all_unattributed(&r.tree), "forged-%s");
    assert_eq!(start["match"], "none", "{start:?}");
    assert_eq!(start["match_hint"], "disagreed", "{start:?}");
    let candidates = start["match_candidates"].to_string();
    assert!(candidates.contains(&a_id), "{start:?}");
    assert!(candidates.contains(&session_id_of(&b)), "{start:?}");
    let _ = holder.kill();
    let _ = holder.wait();
}

#[test]
fn a_nested_recorder_with_a_forged_environment_stays_in_its_login_session() {
    require_e2e!("sudo");
    let r = Recorded::new("sudo-nest");
    let mut term = r.sshd.login(&r.user).interactive();
    term.expect(r"\$ ", T);
    // A nested recorder told nothing of its session and given a made-up connection would,
    // trusting the environment, start a throwaway session that then captures the sudo record.
    term.send_line(&format!(
        "env -u SESSREC_SESSION SESSREC_CHANNEL=forged SSH_CONNECTION='203.0.113.9 4 198.51.100.1 22' {} -c \"sudo printf 'nested-%s\\\\n' sudo\"",
        r._installed.shell().display()
    ));
    term.expect("nested-sudo", T);
    term.expect(r"\$ (\x1b\[K)?$", T);
    term.send_line("exit");
    term.wait(T);

    let session = r.ended_session();
    assert_eq!(r.tree.sessions().len(), 1, "{}", r.tree.listing());
    let channels = wait_channels(&session, 2, T);
    let nested = channels
        .iter()
        .find(|c| only_event(c, "channel.start")["kind"] == "exec")
        .expect("the nested channel");
    let start = only_event(nested, "channel.start");
    assert_eq!(
        start["parent_channel"],
        format!("{}/1", session_id_of(&session)),
        "{start:?}"
    );
    assert_eq!(start["parent_channel_hint"], "forged", "{start:?}");
    assert_eq!(start["identity_verified"], true, "{start:?}");

    let (summary, out) = import(&r.tree);
    assert!(out.status.success(), "{summary} {out:?}");
    let (_, sudo) = record_for(&sudo_files(&session), "nested-%s");
    assert_eq!(sudo["match"], "tty", "{sudo:?}");
    assert_eq!(sudo["tty"], start["pty"], "{sudo:?}");
}

#[test]
fn logs_a_user_could_have_written_are_refused_and_reported() {
    require_e2e!("sudo", "runuser");
    let user = TestUser::new("sudo-trust", Path::new("/bin/bash"));
    let sudo = SudoLogging::new(user.name(), "", "");
    let tree = RecordTree::new("");
    let state = tree.dir().join("sudo-import.state");
    tree.write_config(&config(sudo.dir(), &state));
    let out = Command::new("runuser")
        .args([
            "-u",
            user.name(),
            "--",
            "sudo",
            "printf",
            "real-%s\\n",
            "log",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let real = sudo.dir().join("00/00/01");
    assert!(
        real.join("timing").exists(),
        "no sudo log at {}",
        real.display()
    );
    // Copies of the real log planted where a user could have put them: a user-owned session
    // directory, and a group-writable one.
    let copy = |to: &str| {
        let dst = sudo.dir().join(to);
        fs::create_dir_all(&dst).unwrap();
        for e in fs::read_dir(&real).unwrap() {
            let e = e.unwrap();
            fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
        dst
    };
    let owned = copy("planted/owned");
    nix::unistd::chown(&owned, Some(user.uid().into()), None).unwrap();
    let writable = copy("planted/writable");
    fs::set_permissions(&writable, fs::Permissions::from_mode(0o770)).unwrap();
    let file_owned = copy("planted/file");
    nix::unistd::chown(&file_owned.join("timing"), Some(user.uid().into()), None).unwrap();

    let (summary, out) = import(&tree);
    assert_eq!(out.status.code(), Some(1), "{summary} {out:?}");
    assert_eq!(summary["imported"], 1, "{summary}");
    assert_eq!(summary["refused"], 3, "{summary}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("owned by uid"), "{stderr}");
    assert!(
        stderr.contains("writable by its group or others"),
        "{stderr}"
    );
    assert_eq!(all_unattributed(&tree).len(), 1, "{}", tree.listing());
}

#[test]
fn a_sudo_log_larger_than_the_bound_is_imported_up_to_it() {
    require_e2e!("sudo", "runuser");
    let user = TestUser::new("sudo-big", Path::new("/bin/bash"));
    let sudo = SudoLogging::new(user.name(), "", "");
    let tree = RecordTree::new("");
    let state = tree.dir().join("sudo-import.state");
    tree.write_config(&format!(
        "{}max_session_mb = 1\n",
        config(sudo.dir(), &state)
    ));
    // 3 MB of output compress to a few KiB in sudo's log: the bound is on decompressed bytes.
    let out = Command::new("runuser")
        .args([
            "-u",
            user.name(),
            "--",
            "sudo",
            "head",
            "-c",
            "3000000",
            "/dev/zero",
        ])
        .stdout(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (summary, out) = import(&tree);
    assert!(out.status.success(), "{summary} {out:?}");
    let files = all_unattributed(&tree);
    let (f, _) = record_for(&files, "/usr/bin/head");
    let end = only_event(&f, "sudo.end");
    assert!(
        end["truncated"].to_string().contains("max_session_bytes"),
        "{end:?}"
    );
    assert_eq!(end["max_session_bytes"], 1 << 20, "{end:?}");
    assert!(end["bytes_out"].as_u64().unwrap() <= 1 << 20, "{end:?}");
    assert_chain_ok(&f);
}

#[test]
fn a_sudo_command_with_a_20_kib_argument_is_recorded_whole_and_shown() {
    require_e2e!("sudo");
    let r = Recorded::new("sudo-long");
    // Every 8 bytes different, so that a cut or a reordered piece shows.
    let mut arg: String = (0..2560).map(|i| format!("{i:07}-")).collect();
    arg.push_str("end-arg");
    assert!(arg.len() >= 20 * 1024);
    let out = r
        .sshd
        .login(&r.user)
        .exec(&format!("sudo true {arg} && echo ran-$((6*7))"), b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran-42\n", "{out:?}");
    let session = r.ended_session();
    let (summary, out) = import(&r.tree);
    assert!(out.status.success(), "{summary} {out:?}");
    let files = sudo_files(&session);
    assert_eq!(files.len(), 1, "{}", r.tree.listing());
    let start = only_event(&files[0], "sudo.start");
    // Too long for one line: the arguments continue on command.part lines.
    assert!(start["cmdline_parts"].as_u64().unwrap() >= 1, "{start:?}");
    assert!(start.get("argv_truncated").is_none(), "{start:?}");
    assert_chain_ok(&files[0]);
    let shown = run_sessrec(r.tree.record_dir(), &["show", &session_id(&session)]);
    assert!(shown.status.success(), "{shown:?}");
    assert!(
        stdout(&shown).contains(&format!("sudo as root: true {arg}")),
        "{}",
        stdout(&shown)
    );
    let json = run_sessrec(
        r.tree.record_dir(),
        &["show", "--json", &session_id(&session)],
    );
    assert!(
        stdout(&json).contains(&format!("[\"true\",\"{arg}\"]")),
        "{}",
        stdout(&json)
    );
    // Its end, beyond the first line, is found as the sudo session's command.
    let found = run_sessrec(
        r.tree.record_dir(),
        &["search", "--commands", "0002559-end-arg"],
    );
    let sudo_name = files[0].file_stem().unwrap().to_string_lossy().into_owned();
    assert!(
        stdout(&found)
            .lines()
            .any(|l| l.contains(&sudo_name) && l.ends_with("0002559-end-arg")),
        "{found:?}"
    );
}
