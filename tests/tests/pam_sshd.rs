//! pam_sessrec in a real sshd's session stack (a private sshd whose PAM service comes from
//! its symlink name), with the installed setuid recorder as the users' login shell: identity
//! and actor, multiplexed channels, grant isolation between connections, and the launch and
//! fail-closed checks.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Map, Value};
use sessrec_tests::*;

const T: Duration = Duration::from_secs(30);

/// Every recorded test config: the real shell is bash, no disk floor in the way.
fn config_body(extra: &str) -> String {
    format!("min_free_mb = 1\n[recorder]\nshell = \"/bin/bash\"\n{extra}")
}

fn session_file(session: &Path) -> PathBuf {
    session.join("session.jsonl")
}

fn str_of<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string {key:?} in {m:?}"))
}

/// The session whose `login` line has this actor.
fn session_of(tree: &RecordTree, actor: &str) -> PathBuf {
    tree.sessions()
        .into_iter()
        .find(|s| {
            fs::read(session_file(s)).is_ok()
                && events(&session_file(s), "login")
                    .first()
                    .is_some_and(|l| l.get("actor").and_then(Value::as_str) == Some(actor))
        })
        .unwrap_or_else(|| panic!("no session with actor {actor}:\n{}", tree.listing()))
}

/// Waits for the recorder's notice and bash's first prompt: input typed earlier may be
/// discarded when the recorder takes the terminal over.
fn wait_prompt(term: &mut PtySession) {
    term.expect("This session is recorded", T);
    term.expect(r"\$ ", T);
}

fn wait_logout(session: &Path) -> Map<String, Value> {
    wait_last_event(&session_file(session), "logout", T);
    only_event(&session_file(session), "logout")
}

#[test]
fn pubkey_login_records_identity_and_addresses() {
    require_e2e!();
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let tree = RecordTree::new(&config_body(""));
    let user = TestUser::new("ps-key", installed.shell());
    let sshd = PrivateSshd::builder()
        .recorded_by(&installed, tree.config_path())
        .start();
    // The module's records do not depend on what the channel then does.
    let _ = sshd.login(&user).exec("true", b"");
    let session = tree.wait_sessions(1, T).remove(0);
    let login = only_event(&session_file(&session), "login");
    assert_eq!(str_of(&login, "actor"), user.name());
    assert_eq!(str_of(&login, "actor_source"), "unix-user");
    assert_eq!(str_of(&login, "service"), sshd.service());
    assert_eq!(str_of(&login, "src_ip"), "127.0.0.1");
    assert_eq!(str_of(&login, "dst_ip"), "127.0.0.1");
    assert_eq!(login["dst_port"], sshd.port());
    assert!(login["src_port"].as_u64().is_some_and(|p| p > 0));
    assert_eq!(str_of(&login, "rhost"), "127.0.0.1");
    assert_eq!(str_of(&login, "key_type"), "ssh-ed25519");
    assert_eq!(str_of(&login, "key_fingerprint"), user.key().fingerprint());
    assert!(
        sshd.log().contains(&user.key().fingerprint()),
        "sshd logged another key:\n{}",
        sshd.log()
    );
    assert_eq!(login["auth_methods"], serde_json::json!(["publickey"]));
    assert_eq!(login["uid"], user.uid());
    wait_logout(&session);
    assert_chain_ok(&session_file(&session));
    let id = session.file_name().unwrap().to_string_lossy().into_owned();
    assert!(!Path::new(sessrec_core::grant::GRANT_DIR).join(&id).exists());
}

#[test]
fn the_recorder_claims_the_grant_and_logout_lists_its_channel() {
    require_e2e!();
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let tree = RecordTree::new(&config_body(""));
    let user = TestUser::new("ps-claim", installed.shell());
    let sshd = PrivateSshd::builder()
        .recorded_by(&installed, tree.config_path())
        .start();
    let out = sshd.login(&user).exec("echo id=$SESSREC_SESSION", b"");
    assert!(out.status.success(), "{out:?}\n{}", sshd.log());
    let session = tree.wait_sessions(1, T).remove(0);
    let id = session.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("id={id}")),
        "{out:?}"
    );
    let logout = wait_logout(&session);
    assert_eq!(logout["unclaimed"], false, "{logout:?}");
    let channels = logout["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 1, "{logout:?}");
    assert_eq!(channels[0]["file"], "channel-1.jsonl");
    let channel = channel_files(&session).remove(0);
    let report = assert_chain_ok(&channel);
    assert_eq!(channels[0]["last_seq"], report.last_seq);
    assert_eq!(channels[0]["digest"], report.last_digest);
    assert_eq!(channels[0]["open"], report.last_type != "channel.end");
    for line in read_records(&channel) {
        assert_eq!(line["actor"], user.name());
    }
}

#[test]
fn certificate_actor_needs_a_ca_trusted_by_sessrec() {
    require_e2e!();
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let trusted = SshCa::new();
    let users_own = SshCa::new();
    let tree = RecordTree::new(&config_body(&format!(
        "[identity]\ntrusted_user_cas = [\"{}\"]\n",
        trusted.fingerprint()
    )));
    let user = TestUser::new("ps-cert", installed.shell());
    // The user adds their own CA to authorized_keys; sshd accepts its certificates.
    user.write_authorized_keys(&format!(
        "{}\n",
        users_own.authorized_keys_line(&[user.name()])
    ));
    let sshd = PrivateSshd::builder()
        .trusted_user_ca(trusted.key())
        .recorded_by(&installed, tree.config_path())
        .start();

    let good = trusted.sign(user.key(), "alice@example.com", &[user.name()], 501);
    let _ = sshd.login(&user).with_certificate(&good).exec("true", b"");
    let forged = users_own.sign(user.key(), "root@example.com", &[user.name()], 502);
    let _ = sshd
        .login(&user)
        .with_certificate(&forged)
        .exec("true", b"");
    tree.wait_sessions(2, T);
    // sshd accepted both certificates.
    let log = sshd.log();
    assert!(log.contains("ID alice@example.com (serial 501)"), "{log}");
    assert!(log.contains("ID root@example.com (serial 502)"), "{log}");

    let s = session_of(&tree, "alice@example.com");
    let login = only_event(&session_file(&s), "login");
    assert_eq!(str_of(&login, "actor_source"), "certificate");
    let cert = login["certificate"].as_object().unwrap();
    assert_eq!(cert["serial"], 501);
    assert_eq!(cert["ca_trusted"], true);
    assert_eq!(str_of(cert, "ca_fingerprint"), trusted.fingerprint());
    assert_eq!(str_of(&login, "key_fingerprint"), user.key().fingerprint());
    wait_logout(&s);

    let s = session_of(&tree, user.name());
    let login = only_event(&session_file(&s), "login");
    assert_eq!(str_of(&login, "actor_source"), "unix-user");
    let cert = login["certificate"].as_object().unwrap();
    assert_eq!(str_of(cert, "key_id"), "root@example.com");
    assert_eq!(cert["ca_trusted"], false);
    assert_eq!(str_of(cert, "ca_fingerprint"), users_own.fingerprint());
    wait_logout(&s);
    assert!(
        tree.sessions()
            .iter()
            .all(|s| events(&session_file(s), "login")
                .iter()
                .all(|l| l["actor"] != "root@example.com")),
        "an untrusted key id became an actor:\n{}",
        tree.listing()
    );
}

#[test]
fn one_multiplexed_connection_is_one_session_with_two_channels() {
    require_e2e!();
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let tree = RecordTree::new(&config_body(""));
    let user = TestUser::new("ps-mux", installed.shell());
    let sshd = PrivateSshd::builder()
        .recorded_by(&installed, tree.config_path())
        .start();
    let sockets = TempDir::new("ps-mux-sock");
    let control = sockets.join("ctl");
    let mux = |login: SshLogin| {
        login
            .option("ControlMaster=auto")
            .option(&format!("ControlPath={}", control.display()))
            .option("ControlPersist=no")
    };
    // The master holds the connection open.
    let master_login = mux(sshd.login(&user));
    let mut master = master_login
        .ssh_command(&["-N"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("control socket", T, || control.exists());

    let mut term = mux(sshd.login(&user)).interactive();
    wait_prompt(&mut term);
    term.send_line("echo interactive-$((40+2))");
    term.expect("interactive-42", T);
    let out = mux(sshd.login(&user)).exec("echo exec-$((50+5))", b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "exec-55\n", "{out:?}");
    term.send_line("exit");
    term.wait(T);

    let _ = Command::new("ssh")
        .args(master_login.ssh_args())
        .args(["-O", "exit"])
        .arg(master_login.destination())
        .output();
    let _ = master.kill();
    let _ = master.wait();

    let session = tree.wait_sessions(1, T).remove(0);
    assert_eq!(tree.sessions().len(), 1, "{}", tree.listing());
    let logout = wait_logout(&session);
    let channels = channel_files(&session);
    assert_eq!(channels.len(), 2, "{}", tree.listing());
    let all_output: String = channels
        .iter()
        .map(|c| stream_text(c, Stream::Output))
        .collect();
    assert!(all_output.contains("interactive-42"), "{all_output}");
    assert!(all_output.contains("exec-55"), "{all_output}");
    assert_eq!(
        logout["channels"].as_array().unwrap().len(),
        2,
        "{logout:?}"
    );
    for c in &channels {
        assert_chain_ok(c);
    }
}

#[test]
fn a_connection_cannot_claim_another_connections_grant() {
    require_e2e!();
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let ca = SshCa::new();
    let tree = RecordTree::new(&config_body(&format!(
        "[identity]\ntrusted_user_cas = [\"{}\"]\n",
        ca.fingerprint()
    )));
    let user = TestUser::new("ps-swap", installed.shell());
    user.write_authorized_keys("");
    let sshd = PrivateSshd::builder()
        .trusted_user_ca(ca.key())
        .recorded_by(&installed, tree.config_path())
        .start();
    let alice = ca.sign(user.key(), "alice@example.com", &[user.name()], 1);
    let bob = ca.sign(user.key(), "bob@example.com", &[user.name()], 2);

    let mut term_a = sshd.login(&user).with_certificate(&alice).interactive();
    wait_prompt(&mut term_a);
    term_a.send_line("echo A=$SESSREC_SESSION=");
    let a_id = term_a.expect("A=[0-9a-f-]{36}=", T);
    let mut term_b = sshd.login(&user).with_certificate(&bob).interactive();
    wait_prompt(&mut term_b);
    term_b.send_line("echo B=$SESSREC_SESSION=");
    let b_id = term_b.expect("B=[0-9a-f-]{36}=", T);
    let a_id = a_id
        .trim_start_matches("A=")
        .trim_end_matches('=')
        .to_string();
    let b_id = b_id
        .trim_start_matches("B=")
        .trim_end_matches('=')
        .to_string();
    assert_ne!(a_id, b_id);

    // Each side starts the recorder naming the other's session. The claim must fail (the other
    // connection's sshd monitor is not an ancestor); the recorder then either records under its
    // own, unverified identity or refuses (here: no default config), never under the other's.
    term_a.send_line(&format!(
        "SESSREC_SESSION={b_id} {} -c 'echo from-a-$((1+1))'; echo done-$((10+1))",
        installed.shell().display()
    ));
    term_a.expect("done-11", T);
    term_b.send_line(&format!(
        "SESSREC_SESSION={a_id} {} -c 'echo from-b-$((2+2))'; echo done-$((20+2))",
        installed.shell().display()
    ));
    term_b.expect("done-22", T);
    term_a.send_line("exit");
    term_a.wait(T);
    term_b.send_line("exit");
    term_b.wait(T);

    let a = session_of(&tree, "alice@example.com");
    let b = session_of(&tree, "bob@example.com");
    assert!(a.ends_with(&a_id) && b.ends_with(&b_id));
    wait_logout(&a);
    wait_logout(&b);
    // Whatever the recorder made of the attempt, nothing was filed under the other actor.
    for (session, own, foreign) in [(&a, "alice", "from-b-4"), (&b, "bob", "from-a-2")] {
        let attempt = &foreign[..6];
        for channel in channel_files(session) {
            for start in events(&channel, "channel.start") {
                let command = start.get("command").and_then(Value::as_str).unwrap_or("");
                assert!(
                    !command.contains(attempt),
                    "the other connection's recorder claimed {own}'s grant: {start:?}"
                );
            }
            let text = stream_text(&channel, Stream::Output);
            assert!(
                !text.contains(foreign),
                "{own}'s session holds the other connection's output:\n{}",
                tree.listing()
            );
            for line in read_records(&channel) {
                assert_eq!(
                    line["actor"],
                    format!("{own}@example.com"),
                    "{}",
                    channel.display()
                );
            }
        }
    }
}

#[test]
fn changing_the_login_shell_refuses_the_login() {
    require_e2e!();
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let tree = RecordTree::new(&config_body(""));
    let user = TestUser::new("ps-chsh", installed.shell());
    let sshd = PrivateSshd::builder()
        .recorded_by(&installed, tree.config_path())
        .start();
    let _ = sshd.login(&user).exec("true", b"");
    assert_eq!(tree.wait_sessions(1, T).len(), 1);

    let log = AuthLog::mark();
    user.set_shell(Path::new("/bin/bash"));
    let out = sshd.login(&user).exec("echo UNRECORDED", b"");
    assert!(!out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("UNRECORDED"));
    assert_eq!(tree.sessions().len(), 1, "{}", tree.listing());
    log.wait_for(
        &format!(
            "login of {} refused: launch = \"login-shell\" but the passwd shell /bin/bash is not the recorder",
            user.name()
        ),
        T,
    );
}

#[test]
fn force_command_through_bash_is_refused() {
    require_e2e!();
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let tree = RecordTree::new(&config_body("[policy]\nlaunch = \"force-command\"\n"));
    let bash_user = TestUser::new("ps-fcb", Path::new("/bin/bash"));
    bash_user.write_home_file(".bashrc", "echo BYPASSED; exec bash -i\n", 0o644);
    let sh_user = TestUser::new("ps-fcs", Path::new("/bin/sh"));
    let sshd = PrivateSshd::builder()
        .config(&format!("ForceCommand {}", installed.shell().display()))
        .recorded_by(&installed, tree.config_path())
        .start();

    let log = AuthLog::mark();
    let out = sshd.login(&bash_user).exec("echo via-bash", b"");
    assert!(!out.status.success(), "{out:?}");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains("BYPASSED") && !all.contains("via-bash"),
        "{all}"
    );
    assert!(tree.sessions().is_empty(), "{}", tree.listing());
    log.wait_for(
        &format!(
            "login of {} refused: launch = \"force-command\" but the passwd shell /bin/bash may read user files",
            bash_user.name()
        ),
        T,
    );

    // A passwd shell that reads nothing for -c is accepted: the session is opened.
    let _ = sshd.login(&sh_user).exec("true", b"");
    let session = tree.wait_sessions(1, T).remove(0);
    let login = only_event(&session_file(&session), "login");
    assert_eq!(str_of(&login, "launch"), "force-command");
    assert_eq!(str_of(&login, "shell"), "/bin/sh");
    wait_logout(&session);
}

#[test]
fn force_command_through_sh_is_recorded() {
    require_e2e!();
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let tree = RecordTree::new(&config_body("[policy]\nlaunch = \"force-command\"\n"));
    let sh_user = TestUser::new("ps-fcr", Path::new("/bin/sh"));
    let sshd = PrivateSshd::builder()
        .config(&format!("ForceCommand {}", installed.shell().display()))
        .recorded_by(&installed, tree.config_path())
        .start();
    let out = sshd.login(&sh_user).exec("echo via-sh-$((3*3))", b"");
    assert!(out.status.success(), "{out:?}\n{}", sshd.log());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "via-sh-9\n");
    let session = tree.wait_sessions(1, T).remove(0);
    let logout = wait_logout(&session);
    assert_eq!(logout["unclaimed"], false);
    let channel = channel_files(&session).remove(0);
    assert!(stream_text(&channel, Stream::Output).contains("via-sh-9"));
}

#[test]
fn read_only_record_tree_refuses_but_admits_break_glass() {
    require_e2e!("mount", "umount");
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let tree = RecordTree::new("");
    let ro = Mount::read_only_bind(tree.record_dir());
    let user = TestUser::new("ps-ro", installed.shell());
    let glass = TestUser::new("ps-glass", installed.shell());
    tree.write_raw_config(&format!(
        "record_dir = \"{}\"\n{}",
        ro.path().display(),
        config_body(&format!(
            "[policy]\nbreak_glass_users = [\"{}\"]\n",
            glass.name()
        ))
    ));
    let sshd = PrivateSshd::builder()
        .recorded_by(&installed, tree.config_path())
        .start();
    let log = AuthLog::mark();

    let out = sshd.login(&user).exec("echo UNRECORDED", b"");
    assert!(!out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("UNRECORDED"));
    log.wait_for(
        &format!(
            "login of {} refused, recording cannot be set up: .*Read-only file system",
            user.name()
        ),
        T,
    );

    // The module admits the break-glass user, with an alert. (Whether the recorder then runs
    // the channel unrecorded is the recorder's own on_error/break-glass policy.)
    let _ = sshd.login(&glass).exec("true", b"");
    log.wait_for(
        &format!(
            "BREAK-GLASS login of {} admitted WITHOUT recording: .*Read-only file system",
            glass.name()
        ),
        T,
    );
    let since = log.since();
    assert!(
        !since.contains(&format!("login of {} refused", glass.name())),
        "{since}"
    );
}

#[test]
fn a_required_ticket_is_asked_for_or_taken_from_sendenv() {
    require_e2e!();
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let tree = RecordTree::new(&config_body(
        "[ticket]\nmode = \"required\"\npattern = \"^INC-[0-9]+$\"\n",
    ));
    let user = TestUser::new("ps-ticket", installed.shell());
    let sshd = PrivateSshd::builder()
        .recorded_by(&installed, tree.config_path())
        .start();

    // Interactively: the recorder asks on the terminal before the shell starts.
    let mut term = sshd.login(&user).interactive();
    term.expect(r"Ticket \(required\): ", T);
    term.send_line("INC-4242");
    wait_prompt(&mut term);
    term.send_line("echo ticketed-$((6*7))");
    term.expect("ticketed-42", T);
    term.send_line("exit");
    term.wait(T);

    // An exec channel takes it from SESSREC_TICKET (client SendEnv, sshd AcceptEnv).
    let out = sshd
        .login(&user)
        .env("SESSREC_TICKET", "INC-7")
        .option("SendEnv=SESSREC_TICKET")
        .exec("echo exec-ticketed", b"");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "exec-ticketed\n",
        "{out:?}"
    );

    // Missing or malformed: refused with a message naming the problem.
    let out = sshd.login(&user).exec("echo NO-TICKET", b"");
    assert!(!out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("NO-TICKET"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ticket"),
        "{out:?}"
    );
    let out = sshd
        .login(&user)
        .env("SESSREC_TICKET", "not-a-ticket")
        .option("SendEnv=SESSREC_TICKET")
        .exec("echo BAD-TICKET", b"");
    assert!(!out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("BAD-TICKET"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not match"),
        "{out:?}"
    );

    tree.wait_sessions(4, T);
    let mut tickets: Vec<String> = Vec::new();
    for session in tree.sessions() {
        wait_logout(&session);
        for channel in channel_files(&session) {
            for start in events(&channel, "channel.start") {
                if let Some(t) = start.get("ticket").and_then(Value::as_str) {
                    tickets.push(t.to_string());
                }
            }
        }
    }
    tickets.sort();
    assert_eq!(tickets, vec!["INC-4242", "INC-7"], "{}", tree.listing());
}
