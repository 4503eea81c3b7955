//! What actually ran: with auditd running the shipped rules (under the test's own key) and
//! `sessrec-audit-import --follow`, every exec and connect of a recorded login's processes
//! lands in that session's `audit.jsonl`, on the right channel, whole and chained; losses and
//! rotations are explicit; a restarted importer neither duplicates nor loses.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sessrec_core::command::Completeness;
use sessrec_core::exec_args;
use sessrec_core::schema::{AuditGap, Connect, Event, Exec, Line};
use sessrec_tests::*;

const T: Duration = Duration::from_secs(30);

/// Dropped in field order: the importer, the login (sshd, user, tree), the rules, auditd.
struct Audited {
    importer: AuditImporter,
    r: RecordedLogin,
    rules: AuditRules,
    _steady: Option<SteadySettings>,
    daemon: AuditDaemon,
}

/// A recorded login with audit; no other test forces loss meanwhile.
fn audited(tag: &str) -> Audited {
    audited_with(tag, Some(SteadySettings::hold()))
}

fn audited_with(tag: &str, steady: Option<SteadySettings>) -> Audited {
    let daemon = AuditDaemon::shared();
    let rules = AuditRules::sessrec(tag);
    let r = RecordedLogin::launched(tag, Launch::LoginShell, "", |b| {
        b.pam_session("session required pam_loginuid.so")
    });
    let importer = AuditImporter::follow(&r.tree, daemon.log_file());
    Audited {
        importer,
        r,
        rules,
        _steady: steady,
        daemon,
    }
}

/// An exec line with the lines after it (for its `command.part` lines).
struct ExecLine {
    exec: Exec,
    args: exec_args::ExecArgs,
}

fn audit_file(session: &Path) -> PathBuf {
    session.join("audit.jsonl")
}

fn typed(path: &Path) -> Vec<(Line, serde_json::Map<String, serde_json::Value>)> {
    if !path.exists() {
        return Vec::new();
    }
    // The importer may be writing the last line right now (a reader can see a line that spans
    // a page boundary half written); any other bad line is a failure. Tests end with
    // assert_chain_ok once the importer is done.
    let items = sessrec_core::reader::read_file(path).unwrap();
    let n = items.len();
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| match item {
            Ok(l) => Some((Line::from_map(l.value.clone()), l.value)),
            Err(e) if i + 1 == n && e.defect == sessrec_core::reader::Defect::CutShort => None,
            Err(e) => panic!("{} line {}: {}", path.display(), e.line_no, e.problem),
        })
        .collect()
}

fn execs(session: &Path) -> Vec<ExecLine> {
    let lines = typed(&audit_file(session));
    let maps: Vec<_> = lines.iter().map(|(_, m)| m.clone()).collect();
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, (line, map))| match &line.event {
            Event::Exec(e) => Some(ExecLine {
                exec: e.clone(),
                args: exec_args::read(map, &maps[i + 1..]).expect("exec arguments"),
            }),
            _ => None,
        })
        .collect()
}

fn events_of<T>(session: &Path, pick: impl Fn(&Event) -> Option<T>) -> Vec<T> {
    typed(&audit_file(session))
        .iter()
        .filter_map(|(l, _)| pick(&l.event))
        .collect()
}

/// Waits until an exec of the session matches `want`.
fn wait_exec(session: &Path, what: &str, want: impl Fn(&ExecLine) -> bool) -> ExecLine {
    wait_until(what, T, || execs(session).iter().any(&want));
    execs(session).into_iter().find(|e| want(e)).unwrap()
}

fn argv_is(e: &ExecLine, argv: &[&[u8]]) -> bool {
    e.args
        .args
        .iter()
        .map(Vec::as_slice)
        .eq(argv.iter().copied())
}

#[test]
fn a_script_the_user_uploads_is_recorded_command_by_command_with_arguments_whole() {
    require_e2e!();
    let a = audited("aud-script");
    let mark = unique_name("m");
    let script = format!(
        "#!/bin/sh\n\
         /bin/echo from-script-{mark}\n\
         /nonexistent-{mark} 2>/dev/null\n\
         /usr/bin/printf '%s' \"$(printf 'nl\\nesc\\033[31m\\377end')\" >/dev/null\n\
         /bin/echo \"$(head -c 20480 /dev/zero | tr '\\0' x)\" >/dev/null\n"
    );
    let out = a.r.sshd.login(&a.r.user).exec(
        "cat > s.sh && chmod +x s.sh && ./s.sh; exit 0",
        script.as_bytes(),
    );
    assert!(out.status.success(), "{out:?}");
    let session = a.r.tree.wait_sessions(1, T).remove(0);

    let from_script = format!("from-script-{mark}");
    let echo = wait_exec(&session, "the script's echo", |e| {
        argv_is(e, &[b"/bin/echo", from_script.as_bytes()])
    });
    assert_eq!(echo.exec.channel.as_deref(), Some("channel-1.jsonl"));
    assert_eq!(echo.exec.exe.as_deref(), Some("/usr/bin/echo"));
    assert_eq!(echo.exec.auid, Some(a.r.user.uid()));
    assert_eq!(echo.exec.root, Some(false));
    let script_run = execs(&session)
        .into_iter()
        .find(|e| e.exec.path.as_deref() == Some("./s.sh"))
        .expect("the script's own exec");
    assert_eq!(echo.exec.ppid, script_run.exec.pid, "run by the script");

    let failed = wait_exec(&session, "the failed exec", |e| {
        e.exec
            .path
            .as_deref()
            .is_some_and(|p| p.ends_with(&format!("nonexistent-{mark}")))
    });
    assert_eq!(failed.exec.success, Some(false));
    assert_eq!(failed.exec.errno.as_deref(), Some("ENOENT"));
    assert_eq!(failed.exec.exit, Some(-2));

    let hostile = wait_exec(&session, "printf with hostile bytes", |e| {
        e.exec.exe.as_deref() == Some("/usr/bin/printf")
    });
    assert_eq!(hostile.args.args[2], b"nl\nesc\x1b[31m\xffend");

    let long = wait_exec(&session, "the 20 KiB argument", |e| {
        e.exec.exe.as_deref() == Some("/usr/bin/echo")
            && e.args.args.len() == 2
            && e.args.args[1].len() > 1000
    });
    assert_eq!(long.args.args[1], vec![b'x'; 20480]);
    assert_eq!(long.args.completeness, Completeness::Whole);
    assert_chain_ok(&audit_file(&session));
    drop(a.rules);
}

#[test]
fn vi_shell_escapes_are_recorded_as_what_ran() {
    require_e2e!();
    let a = audited("aud-vi");
    let mark = unique_name("v");
    let mut term =
        a.r.sshd
            .login(&a.r.user)
            .pty_exec(&format!("vi -c '!/bin/echo vi-{mark}' -c 'q!'"));
    // vi waits for Enter after a shell command's output.
    term.expect(&format!("vi-{mark}"), T);
    term.send("\r");
    term.wait(T);
    let session = a.r.tree.wait_sessions(1, T).remove(0);
    let want = format!("vi-{mark}");
    let echo = wait_exec(&session, "vi's shell command", |e| {
        e.args.args.last().map(Vec::as_slice) == Some(want.as_bytes())
    });
    assert_eq!(echo.exec.channel.as_deref(), Some("channel-1.jsonl"));
    // Run by vi (through `sh -c`, which execs the command in its own place): the process
    // that ran it last exec'd vi.
    let parent = execs(&session)
        .into_iter()
        .rfind(|e| e.exec.pid == echo.exec.ppid)
        .expect("the process that ran it");
    assert!(
        parent.exec.exe.as_deref().is_some_and(|p| p.contains("vi")),
        "{:?}",
        parent.exec.exe
    );
}

#[test]
fn a_sudo_command_shows_as_root_with_the_logins_actor() {
    require_e2e!("sudo");
    let a = audited("aud-sudo");
    let _sudoers = SudoersDropIn::new(&format!(
        "{} ALL=(root) NOPASSWD: /usr/bin/id\n",
        a.r.user.name()
    ));
    let out =
        a.r.sshd
            .login(&a.r.user)
            .exec("sudo -n /usr/bin/id -u", b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "{out:?}");
    let session = a.r.tree.wait_sessions(1, T).remove(0);
    let id = wait_exec(&session, "the sudo'd id", |e| {
        argv_is(e, &[b"/usr/bin/id", b"-u"])
    });
    assert_eq!(id.exec.euid, Some(0));
    assert_eq!(id.exec.root, Some(true));
    assert_eq!(id.exec.euser_name.as_deref(), Some("root"));
    assert_eq!(id.exec.auid, Some(a.r.user.uid()), "the login's uid stays");
    assert_eq!(id.exec.channel.as_deref(), Some("channel-1.jsonl"));
    let lines = typed(&audit_file(&session));
    let line = lines
        .iter()
        .find(|(l, _)| matches!(&l.event, Event::Exec(e) if e.audit_id == id.exec.audit_id))
        .unwrap();
    assert_eq!(line.0.header.actor.as_deref(), Some(a.r.user.name()));
    let sudo = execs(&session)
        .into_iter()
        .find(|e| e.exec.exe.as_deref() == Some("/usr/bin/sudo"))
        .expect("sudo's own exec");
    assert_eq!(sudo.exec.euid, Some(0), "sudo is setuid root");
    assert_eq!(sudo.exec.uid, Some(a.r.user.uid()), "run by the user");
}

#[test]
fn an_outbound_connection_is_a_connect_line() {
    require_e2e!();
    let a = audited("aud-connect");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The listener accepts and closes: ssh fails after connecting, which is enough.
    std::thread::spawn(move || {
        for s in listener.incoming().take(1) {
            drop(s);
        }
    });
    let out = a.r.sshd.login(&a.r.user).exec(
        &format!(
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -p {port} 127.0.0.1 true; exit 0"
        ),
        b"",
    );
    assert!(out.status.success(), "{out:?}");
    let session = a.r.tree.wait_sessions(1, T).remove(0);
    let connect = |c: &Event| match c {
        Event::Connect(c) if c.port == Some(port) => Some(c.clone()),
        _ => None,
    };
    wait_until("the connect line", T, || {
        !events_of(&session, connect).is_empty()
    });
    let c: Connect = events_of(&session, connect).remove(0);
    assert_eq!(c.address.as_deref(), Some("127.0.0.1"));
    assert_eq!(c.family.as_deref(), Some("inet"));
    assert_eq!(c.result.as_deref(), Some("connected"));
    assert!(
        c.exe.as_deref().is_some_and(|e| e.ends_with("/ssh")),
        "{c:?}"
    );
    assert_eq!(c.channel.as_deref(), Some("channel-1.jsonl"));
}

#[test]
fn two_concurrent_sessions_of_one_user_never_get_each_others_execs() {
    require_e2e!();
    let a = audited("aud-two");
    let login = a.r.sshd.login(&a.r.user);
    let mut one = login.interactive();
    let mut two = login.interactive();
    one.expect(r"\$ $", T);
    two.expect(r"\$ $", T);
    let mark = unique_name("c");
    for i in 0..5 {
        one.send_line(&format!("/bin/echo one-{mark}-{i}"));
        two.send_line(&format!("/bin/echo two-{mark}-{i}"));
    }
    one.expect(&format!("one-{mark}-4"), T);
    two.expect(&format!("two-{mark}-4"), T);
    one.send_line("exit");
    two.send_line("exit");
    one.wait(T);
    two.wait(T);
    let sessions = a.r.tree.wait_sessions(2, T);
    let owner = |s: &Path| -> String {
        wait_until("both sessions' echos", T, || {
            execs(s)
                .iter()
                .filter(|e| e.exec.exe.as_deref() == Some("/usr/bin/echo"))
                .count()
                >= 5
        });
        let echos: Vec<String> = execs(s)
            .iter()
            .filter(|e| e.exec.exe.as_deref() == Some("/usr/bin/echo"))
            .map(|e| String::from_utf8_lossy(&e.args.args[1]).into_owned())
            .collect();
        let prefix = echos[0].split('-').next().unwrap().to_string();
        assert_eq!(echos.len(), 5, "{echos:?}");
        assert!(
            echos.iter().all(|e| e.starts_with(&prefix)),
            "mixed: {echos:?}"
        );
        prefix
    };
    let mut owners = [owner(&sessions[0]), owner(&sessions[1])];
    owners.sort();
    assert_eq!(owners, ["one".to_string(), "two".to_string()]);
}

#[test]
fn execs_of_three_multiplexed_channels_land_on_their_own_channel() {
    require_e2e!();
    let a = audited("aud-mux");
    let socket_dir = TempDir::new("mux");
    let login =
        a.r.sshd
            .login(&a.r.user)
            .with_control_master(&socket_dir.path().join("m"));
    let mark = unique_name("x");
    for i in 1..=3 {
        let out = login.exec(&format!("/bin/echo chan-{mark}-{i}"), b"");
        assert!(out.status.success(), "{out:?}");
    }
    login.stop_master();
    let session = a.r.tree.wait_sessions(1, T).remove(0);
    assert_eq!(a.r.tree.sessions().len(), 1, "one connection, one session");
    let channels = wait_channels(&session, 3, T);
    let mut by_command = BTreeMap::new();
    for c in &channels {
        let start = only_event(c, "channel.start");
        let command = start["command"].as_str().unwrap().to_string();
        by_command.insert(
            command,
            c.file_name().unwrap().to_string_lossy().into_owned(),
        );
    }
    for i in 1..=3 {
        let word = format!("chan-{mark}-{i}");
        let e = wait_exec(&session, "a channel's echo", |e| {
            e.args.args.get(1).map(Vec::as_slice) == Some(word.as_bytes())
        });
        let expected = &by_command[&format!("/bin/echo {word}")];
        assert_eq!(e.exec.channel.as_ref(), Some(expected), "{word}");
    }
}

#[test]
fn events_the_kernel_drops_become_a_gap() {
    require_e2e!();
    let a = audited_with("aud-loss", None);
    let session_login = a.r.sshd.login(&a.r.user);
    let mut term = session_login.interactive();
    term.expect(r"\$ $", T);
    let session = a.r.tree.wait_sessions(1, T).remove(0);
    {
        // A backlog of one event and no waiting: an exec storm overflows it.
        let _tight = AuditSettings::set(&[("--backlog_wait_time", 0), ("-b", 1)]);
        let lost_before = audit_status("lost");
        term.send_line("for i in $(seq 3000); do /bin/true; done; echo storm-done");
        term.expect("storm-done", Duration::from_secs(120));
        assert!(audit_status("lost") > lost_before, "the kernel lost events");
    }
    let gaps = |e: &Event| match e {
        Event::AuditGap(g) => Some(g.clone()),
        _ => None,
    };
    wait_until("an audit_gap line", T, || {
        !events_of(&session, gaps).is_empty()
    });
    let gap: AuditGap = events_of(&session, gaps).remove(0);
    assert_eq!(gap.reason.as_deref(), Some("lost"));
    assert!(gap.lost.unwrap_or(0) > 0, "{gap:?}");
    term.send_line("exit");
    term.wait(T);
}

#[test]
fn a_restarted_importer_duplicates_nothing_and_loses_nothing() {
    require_e2e!();
    let mut a = audited("aud-restart");
    let login = a.r.sshd.login(&a.r.user);
    let mut term = login.interactive();
    term.expect(r"\$ $", T);
    let mark = unique_name("r");
    term.send_line(&format!(
        "for i in $(seq 1 200); do /bin/echo {mark}-$i >/dev/null; sleep 0.01; done; echo loop-done"
    ));
    let session = a.r.tree.wait_sessions(1, T).remove(0);
    let count = |s: &Path| {
        execs(s)
            .iter()
            .filter(|e| {
                e.args
                    .args
                    .get(1)
                    .is_some_and(|a| a.starts_with(mark.as_bytes()))
            })
            .count()
    };
    wait_until("some of the loop's execs", T, || count(&session) >= 20);
    a.importer.kill();
    std::thread::sleep(Duration::from_millis(700));
    a.importer.start();
    term.expect("loop-done", Duration::from_secs(120));
    wait_until("all 200 execs", T, || count(&session) >= 200);
    std::thread::sleep(Duration::from_secs(2));
    let all = execs(&session);
    let mut ids: Vec<_> = all
        .iter()
        .map(|e| e.exec.audit_id.clone().unwrap())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "an audit event was written twice");
    let mut words: Vec<Vec<u8>> = all
        .iter()
        .filter_map(|e| e.args.args.get(1).cloned())
        .filter(|a| a.starts_with(mark.as_bytes()))
        .collect();
    words.sort();
    words.dedup();
    assert_eq!(words.len(), 200);
    assert_eq!(count(&session), 200);
    assert_chain_ok(&audit_file(&session));
    term.send_line("exit");
    term.wait(T);
}

#[test]
fn a_log_rotation_mid_session_loses_nothing() {
    require_e2e!();
    let a = audited("aud-rotate");
    let login = a.r.sshd.login(&a.r.user);
    let mut term = login.interactive();
    term.expect(r"\$ $", T);
    let mark = unique_name("o");
    term.send_line(&format!("/bin/echo before-{mark}"));
    term.expect(&format!("before-{mark}\r\n"), T);
    let session = a.r.tree.wait_sessions(1, T).remove(0);
    let before = format!("before-{mark}");
    wait_exec(&session, "the exec before the rotation", |e| {
        e.args.args.get(1).map(Vec::as_slice) == Some(before.as_bytes())
    });
    a.daemon.rotate();
    term.send_line(&format!("/bin/echo after-{mark}"));
    term.expect(&format!("after-{mark}\r\n"), T);
    let after = format!("after-{mark}");
    wait_exec(&session, "the exec after the rotation", |e| {
        e.args.args.get(1).map(Vec::as_slice) == Some(after.as_bytes())
    });
    let gaps = events_of(&session, |e| match e {
        Event::AuditGap(g) => Some(g.clone()),
        _ => None,
    });
    assert!(
        gaps.iter().all(|g| g.reason.as_deref() == Some("lost")),
        "a rotation alone is no gap: {gaps:?}"
    );
    term.send_line("exit");
    term.wait(T);
}

#[test]
fn sudo_logs_are_tied_to_their_login_by_the_audited_exec() {
    require_e2e!("sudo");
    let iolog = TempDir::new("iolog");
    let state = TempDir::new("sudostate");
    let daemon = AuditDaemon::shared();
    let _steady = SteadySettings::hold();
    let _rules = AuditRules::sessrec("aud-sudojoin");
    let sudo_config = format!(
        "[sudo]\niolog_dirs = [\"{}\"]\nstate_file = \"{}\"\nsettle_minutes = 0\n",
        iolog.path().display(),
        state.path().join("sudo.state").display()
    );
    let r = RecordedLogin::launched("aud-sudojoin", Launch::LoginShell, &sudo_config, |b| {
        b.pam_session("session required pam_loginuid.so")
    });
    let importer = AuditImporter::follow(&r.tree, daemon.log_file());
    let user = r.user.name().to_string();
    let _sudoers = SudoersDropIn::new(&format!(
        "Defaults:{user} log_output, log_input, use_pty, iolog_dir={}\n\
         {user} ALL=(root) NOPASSWD: /usr/bin/id\n",
        iolog.path().display()
    ));
    // Session A idles on a terminal; session B runs sudo without one. Without audit, nothing
    // tells the two apart.
    let login = r.sshd.login(&r.user);
    let mut idle = login.interactive();
    idle.expect(r"\$ $", T);
    let first = r.tree.wait_sessions(1, T).remove(0);
    let out = login.exec("sudo -n /usr/bin/id -u", b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "{out:?}");
    let sessions = r.tree.wait_sessions(2, T);
    let second = sessions.iter().find(|s| **s != first).unwrap().clone();
    wait_exec(&second, "the sudo'd exec", |e| {
        argv_is(e, &[b"/usr/bin/id", b"-u"])
    });

    let out = Command::new(products().sudo_iolog_import())
        .args(["--once", "--json"])
        .env("SESSREC_CONFIG", r.tree.config_path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let sudo_file = std::fs::read_dir(&second)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("sudo-")
        })
        .unwrap_or_else(|| {
            panic!(
                "no sudo record in the session that ran sudo: {}",
                r.tree.listing()
            )
        });
    let start = only_event(&sudo_file, "sudo.start");
    assert_eq!(start["match"], "audit", "{start:?}");
    assert_eq!(start["channel"], "channel-1.jsonl", "{start:?}");
    idle.send_line("exit");
    idle.wait(T);
    drop(importer);
}

#[test]
fn doctor_says_whether_auditd_runs_and_which_rules_are_missing() {
    require_e2e!();
    let daemon = AuditDaemon::shared();
    // Only this test's own key is loaded: the sessrec rules are missing, and doctor names them.
    let _rules = AuditRules::sessrec("aud-doctor");
    let tree = RecordTree::new("");
    let out = run_sessrec(tree.record_dir(), &["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{text}"))
            .to_string()
    };
    let runs = line("auditd runs");
    assert!(runs.starts_with("ok"), "{runs}");
    assert!(runs.contains(&format!("pid {}", daemon.pid())), "{runs}");
    let missing = line("missing audit rules");
    assert!(missing.starts_with("WARN"), "{missing}");
    for rule in [
        "arch=b64 -S execve,execveat",
        "arch=b32 -S execve,execveat",
        "arch=b64 -S connect",
        "arch=b32 -S connect",
    ] {
        assert!(missing.contains(rule), "{rule} not named: {missing}");
    }
}
