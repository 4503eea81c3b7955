//! sshd's own forwarding on a jump host: the drop-in `sessrec forward-sshd` writes from the
//! `[forward]` rules lets the users they name reach their destinations with `ssh -W` / `-L`
//! and nothing else (`-R`, `-D`, stream-local, tunnels, agent and X11 stay refused), while a
//! user the rules do not name keeps the sshd's own settings (the control that makes the
//! refusals the drop-in's doing); `sessrec doctor --sshd-config` agrees. `ssh -J` through the
//! bastion logs in to a second sshd, and the bastion's record names the target's port from the
//! kernel's audit `connect` record of the sshd session process; `ssh -W` to a sink that takes and
//! sends known byte counts gets a `connect.end` with those counts from the kernel's socket
//! counters, which `show`, `search --forward` and `list` state; so does each `-L` connection
//! while the login goes on, and the `-J` connection once it ends. An end not seen is recorded
//! as unknown.

mod pkg_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pkg_support::*;
use sessrec_core::schema::{Connect, ConnectEnd, Event, Line};
use sessrec_tests::util::output_with_timeout;
use sessrec_tests::*;

const T: Duration = Duration::from_secs(30);

/// The drop-in the built `sessrec forward-sshd` writes for `forward` (a `[forward]` section).
fn generated_dropin(forward: &str) -> String {
    generated_dropin_and_warnings(forward).0
}

/// The drop-in and what `sessrec forward-sshd` said on stderr.
fn generated_dropin_and_warnings(forward: &str) -> (String, String) {
    let dir = TempDir::new("fwdcfg");
    let config = dir.join("sessrec.toml");
    std::fs::write(&config, forward).unwrap();
    let out = Command::new(products().sessrec_cli())
        .arg("--config")
        .arg(&config)
        .arg("forward-sshd")
        .output()
        .expect("sessrec forward-sshd");
    assert!(out.status.success(), "forward-sshd: {out:?}");
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every forwarding kind allowed globally, so that a refusal can only come from the drop-in.
fn permissive(builder: SshdBuilder) -> SshdBuilder {
    builder
        .config("AllowTcpForwarding yes")
        .config("AllowAgentForwarding yes")
        .config("AllowStreamLocalForwarding yes")
        .config("X11Forwarding yes")
        .config("PermitTunnel yes")
        .config("GatewayPorts no")
}

/// An ssh-agent on a private socket, killed on drop.
struct Agent {
    child: Child,
    socket: PathBuf,
    _dir: TempDir,
}

impl Agent {
    fn start() -> Agent {
        let dir = TempDir::new("agent");
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent");
        wait_until("the agent's socket", T, || socket.exists());
        Agent {
            child,
            socket,
            _dir: dir,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the session saw of agent and X11 forwarding: `SSH_AUTH_SOCK` and `DISPLAY`.
fn agent_and_x11(login: &SshLogin, agent: &Agent) -> (String, String, String) {
    // Before the harness's options (`IdentityAgent=none`): ssh keeps the first value it reads.
    let identity_agent = format!("IdentityAgent={}", agent.socket.display());
    let out = output_with_timeout(
        Command::new("ssh")
            .args(["-T", "-o", &identity_agent, "-o", "ForwardAgent=yes"])
            .args(["-o", "ForwardX11=yes"])
            .args(login.ssh_args())
            .arg(login.destination())
            .env("DISPLAY", "127.0.0.1:77")
            .arg("echo \"agent=[$SSH_AUTH_SOCK] display=[$DISPLAY]\""),
        b"",
        T,
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| {
        text.split(&format!("{name}=["))
            .nth(1)
            .and_then(|r| r.split(']').next())
            .unwrap_or("?")
            .to_string()
    };
    (
        field("agent"),
        field("display"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sshd_forwarding_follows_the_generated_drop_in() {
    require_e2e!("ssh-agent");
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let allowed = Target::start();
    let other = Target::start();
    let jumper = TestUser::new("fwdjump", installed.shell());
    let control = TestUser::new("fwdctl", installed.shell());
    let forward = format!(
        "[[forward.allow]]\nusers = [\"{}\"]\nto = [\"127.0.0.1:{}\"]\n",
        jumper.name(),
        allowed.port
    );
    let dropin = generated_dropin(&forward);
    let builder = PrivateSshd::builder();
    let tree = RecordTree::new(&format!(
        "min_free_mb = 1\n[policy]\nservices = [\"{}\"]\n[recorder]\nshell = \"/bin/bash\"\n{forward}",
        builder.service()
    ));
    let sshd = permissive(builder)
        .match_block(&dropin)
        .recorded_by(&installed, tree.config_path())
        .start();
    let agent = Agent::start();

    // The control user gets the sshd's own, permissive settings: every kind works for them.
    let login = sshd.login(&control);
    for attempt in try_all_forwards(&login, &other) {
        assert!(
            attempt.reached,
            "control: {} did not work, so a refusal would prove nothing: {}",
            attempt.kind, attempt.detail
        );
    }
    let (sock, display, err) = agent_and_x11(&login, &agent);
    assert!(
        sock.starts_with('/') && !display.is_empty(),
        "control: agent [{sock}] and X11 [{display}] were not forwarded, so refusals would prove nothing: {err}"
    );

    // The user the rule names: local forwarding to the allowed destination only.
    let login = sshd.login(&jumper);
    let out = login.exec("echo jump-$((40+2))", b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "jump-42\n", "{out:?}");
    for attempt in [
        try_stdio_forward(&login, &allowed),
        try_local_forward(&login, &allowed),
    ] {
        assert!(
            attempt.reached,
            "{} to the allowed destination: {}",
            attempt.kind, attempt.detail
        );
    }
    for attempt in [
        try_stdio_forward(&login, &other),
        try_local_forward(&login, &other),
        try_remote_forward(&login, &allowed),
        // -D is the client's own SOCKS server: sshd sees the same request as -L, so it reaches
        // the allowed destination and nothing else.
        try_dynamic_forward(&login, &other),
        try_remote_socket_forward(&login, &allowed),
    ] {
        assert!(
            !attempt.reached,
            "{} was allowed: {}",
            attempt.kind, attempt.detail
        );
    }
    // sshd logs what PermitOpen refused (not into the session record: see sessrec-shell(8)).
    let denied = format!(
        "to connect to host 127.0.0.1 port {}, but the request was denied",
        other.port
    );
    wait_until("sshd's log line for the refused -W", T, || {
        sshd.log().contains(&denied)
    });
    let (outcome, err) = tunnel_request(&login);
    assert_eq!(outcome, TunnelOutcome::Refused, "tunnel: {err}");
    let (sock, display, err) = agent_and_x11(&login, &agent);
    assert_eq!(
        (sock.as_str(), display.as_str()),
        ("", ""),
        "agent or X11 forwarded: {err}"
    );

    // doctor reads the same sshd configuration and finds it matches the policy.
    let out = Command::new(products().sessrec_cli())
        .arg("--config")
        .arg(tree.config_path())
        .arg("doctor")
        .arg("--sshd-config")
        .arg(sshd.config_path())
        .output()
        .expect("sessrec doctor");
    let report = String::from_utf8_lossy(&out.stdout);
    let line = report
        .lines()
        .find(|l| l.contains(jumper.name()) && l.contains("forwarding"))
        .unwrap_or_else(|| panic!("doctor says nothing of {}:\n{report}", jumper.name()));
    assert!(
        line.contains("only local forwarding to the [forward] destinations"),
        "{line}"
    );
}

/// A rule with `record_payload` fails closed on sshd's own path, which keeps no content: the
/// generated drop-in opens none of its destinations (saying why, and on stderr), so `-W` and
/// `-L` to them are refused by the real sshd, and doctor finds that matches the policy.
#[test]
fn a_payload_rule_is_not_opened_by_sshds_own_forwarding() {
    require_e2e!();
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let target = Target::start();
    let user = TestUser::new("fwdpay", installed.shell());
    let forward = format!(
        "[[forward.allow]]\nusers = [\"{}\"]\nto = [\"127.0.0.1:{}\"]\nrecord_payload = true\n",
        user.name(),
        target.port
    );
    let (dropin, warnings) = generated_dropin_and_warnings(&forward);
    assert!(dropin.contains("    PermitOpen none\n"), "{dropin}");
    assert!(
        !dropin.contains(&format!("127.0.0.1:{}\n", target.port)),
        "{dropin}"
    );
    assert!(dropin.contains("has record_payload"), "{dropin}");
    assert!(
        warnings.contains("record_payload") && warnings.contains("connect channel"),
        "{warnings}"
    );
    let builder = PrivateSshd::builder();
    let tree = RecordTree::new(&format!(
        "min_free_mb = 1\n[policy]\nservices = [\"{}\"]\n[recorder]\nshell = \"/bin/bash\"\n{forward}",
        builder.service()
    ));
    let sshd = permissive(builder)
        .match_block(&dropin)
        .recorded_by(&installed, tree.config_path())
        .start();
    let login = sshd.login(&user);
    let out = login.exec("echo pay-$((40+2))", b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pay-42\n", "{out:?}");
    for attempt in [
        try_stdio_forward(&login, &target),
        try_local_forward(&login, &target),
    ] {
        assert!(
            !attempt.reached,
            "{} reached a record_payload destination through sshd: {}",
            attempt.kind, attempt.detail
        );
    }
    let out = Command::new(products().sessrec_cli())
        .arg("--config")
        .arg(tree.config_path())
        .arg("doctor")
        .arg("--sshd-config")
        .arg(sshd.config_path())
        .output()
        .expect("sessrec doctor");
    let report = String::from_utf8_lossy(&out.stdout);
    let line = report
        .lines()
        .find(|l| l.contains(user.name()) && l.contains("forwarding"))
        .unwrap_or_else(|| panic!("doctor says nothing of {}:\n{report}", user.name()));
    assert!(
        line.contains("only local forwarding to the [forward] destinations"),
        "{line}"
    );
}

/// Dropped in field order.
struct AuditedBastion {
    importer: AuditImporter,
    tree: RecordTree,
    user: TestUser,
    sshd: PrivateSshd,
    _installed: Installed,
    _rules: AuditRules,
    _steady: SteadySettings,
    _daemon: AuditDaemon,
}

fn audited_bastion(tag: &str, target_port: u16) -> AuditedBastion {
    audited_bastion_with(tag, target_port, "", "")
}

/// An audited bastion whose `[forward]` section starts with `settings` and whose rule ends
/// with `rule_extra`.
fn audited_bastion_with(
    tag: &str,
    target_port: u16,
    settings: &str,
    rule_extra: &str,
) -> AuditedBastion {
    let daemon = AuditDaemon::shared();
    let rules = AuditRules::sessrec(tag);
    let steady = SteadySettings::hold();
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let user = TestUser::new(tag, installed.shell());
    let forward = format!(
        "[forward]\n{settings}[[forward.allow]]\nusers = [\"{}\"]\nto = [\"127.0.0.1:{target_port}\"]\n{rule_extra}",
        user.name()
    );
    let builder = PrivateSshd::builder();
    let tree = RecordTree::new(&format!(
        "min_free_mb = 1\n[policy]\nservices = [\"{}\"]\n[recorder]\nshell = \"/bin/bash\"\n{forward}",
        builder.service()
    ));
    let sshd = builder
        .match_block(&generated_dropin(&forward))
        .match_block("Match all\n    DisableForwarding yes\n    PermitOpen none")
        .pam_session("session required pam_loginuid.so")
        .recorded_by(&installed, tree.config_path())
        .start();
    let importer = AuditImporter::follow(&tree, daemon.log_file());
    AuditedBastion {
        importer,
        tree,
        user,
        sshd,
        _installed: installed,
        _rules: rules,
        _steady: steady,
        _daemon: daemon,
    }
}

/// `ssh <bastion options> -W %h:%p bastion`: what `ssh -J bastion` runs.
fn jump_via(bastion: &SshLogin) -> String {
    let mut parts = vec!["ssh".to_string()];
    parts.extend(bastion.ssh_args());
    parts.extend(["-W".into(), "%h:%p".into(), bastion.destination()]);
    format!("ProxyCommand={}", parts.join(" "))
}

fn audit_events(session: &Path) -> Vec<Event> {
    let path = session.join("audit.jsonl");
    if !path.exists() {
        return Vec::new();
    }
    read_lines(&path)
        .into_iter()
        .map(|l| Line::from_map(l.value).event)
        .collect()
}

fn connects(session: &Path) -> Vec<Connect> {
    audit_events(session)
        .into_iter()
        .filter_map(|e| match e {
            Event::Connect(c) => Some(c),
            _ => None,
        })
        .collect()
}

fn connect_ends(session: &Path) -> Vec<ConnectEnd> {
    audit_events(session)
        .into_iter()
        .filter_map(|e| match e {
            Event::ConnectEnd(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// The session directories under `record_dir` (date directories, then ids).
fn session_dirs(record_dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![record_dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        if dir.join("session.jsonl").exists() {
            found.push(dir);
            continue;
        }
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(entry.path());
            }
        }
    }
    found
}

/// What a sink does with one connection: read it to its end (the client's EOF), run `before`,
/// send `reply` bytes and close.
struct Reply {
    before: Box<dyn FnOnce() + Send>,
    reply: usize,
}

/// A TCP sink on 127.0.0.1 taking one connection per [`Reply`], in turn. Returns its port and
/// how many bytes each connection brought.
fn sink(replies: Vec<Reply>) -> (u16, std::thread::JoinHandle<Vec<usize>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let mut read = Vec::new();
        for r in replies {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            (r.before)();
            s.write_all(&vec![b'r'; r.reply]).unwrap();
            read.push(got.len());
        }
        read
    });
    (port, handle)
}

/// `ssh -W 127.0.0.1:PORT` through the bastion with `input` on stdin; returns stdout.
fn stdio_forward(login: &SshLogin, port: u16, input: usize) -> Vec<u8> {
    let out = output_with_timeout(
        &mut login.ssh_command(&["-W", &format!("127.0.0.1:{port}")]),
        &vec![b's'; input],
        T,
    );
    assert!(
        out.status.success(),
        "ssh -W: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The end of the sshd connect to `port` whose audit id is `audit_id`, once written.
fn wait_end(session: &Path, connect: &Connect) -> ConnectEnd {
    wait_until("the connect's end", T, || {
        connect_ends(session)
            .iter()
            .any(|e| e.audit_id == connect.audit_id)
    });
    connect_ends(session)
        .into_iter()
        .find(|e| e.audit_id == connect.audit_id)
        .unwrap()
}

/// The sshd connects to `port` in the sessions under `record_dir` (each `ssh -W` is a login of
/// its own), with their session directories, oldest first, once there are `n`.
fn sshd_connects(record_dir: &Path, port: u16, n: usize) -> Vec<(PathBuf, Connect)> {
    let of_port = || -> Vec<(PathBuf, Connect)> {
        let mut found: Vec<(PathBuf, Connect)> = session_dirs(record_dir)
            .into_iter()
            .flat_map(|s| {
                connects(&s)
                    .into_iter()
                    .filter(|c| c.port == Some(port) && c.exe.as_deref() == Some("/usr/sbin/sshd"))
                    .map(move |c| (s.clone(), c))
            })
            .collect();
        found.sort_by(|a, b| a.1.at.cmp(&b.1.at));
        found
    };
    wait_until(&format!("{n} sshd connect(s) to port {port}"), T, || {
        of_port().len() >= n
    });
    of_port()
}

#[test]
fn ssh_jump_through_the_bastion_is_in_its_record() {
    require_e2e!("auditctl", "auditd");
    let target = PrivateSshd::start_default();
    let target_user = TestUser::new("fwdtgt", Path::new("/bin/sh"));
    let mut b = audited_bastion("fwd-J", target.port());
    let out = output_with_timeout(
        target
            .login(&target_user)
            .ssh_command(&["-T", "-o", &jump_via(&b.sshd.login(&b.user))])
            .arg("echo target-$((40+2))"),
        b"",
        T,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "target-42\n",
        "ssh -J through the bastion: {out:?}\nbastion: {}",
        b.sshd.log()
    );
    let session = b.tree.wait_sessions(1, T).remove(0);
    let want = |c: &Connect| {
        c.port == Some(target.port())
            && c.address.as_deref() == Some("127.0.0.1")
            && c.auid == Some(b.user.uid())
    };
    wait_until("the bastion's connect to the target", T, || {
        connects(&session).iter().any(want)
    });
    let c = connects(&session).into_iter().find(|c| want(c)).unwrap();
    // sshd connects without blocking: the kernel's record says `in_progress`.
    assert!(
        matches!(c.result.as_deref(), Some("connected" | "in_progress")),
        "{c:?}"
    );
    assert_eq!(c.exe.as_deref(), Some("/usr/sbin/sshd"), "{c:?}");
    // The SSH connection to the target crossed it both ways, and it ended with the ssh.
    let end = wait_end(&session, &c);
    assert_eq!(end.result.as_deref(), Some("closed"), "{end:?}");
    assert!(
        end.bytes_to_destination.is_some_and(|b| b > 0)
            && end.bytes_from_destination.is_some_and(|b| b > 0),
        "{end:?}"
    );
    b.importer.kill();
    // show puts it in the timeline, and search --forward finds it by destination, as sshd's
    // own.
    let id = session.file_name().unwrap().to_string_lossy().into_owned();
    let shown = run_sessrec(b.tree.record_dir(), &["show", &id]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains(&format!(
            "forwarded by sshd to 127.0.0.1 port {}",
            target.port()
        )),
        "{shown}"
    );
    let found = run_sessrec(
        b.tree.record_dir(),
        &["search", "--forward", &format!(":{}$", target.port())],
    );
    let text = String::from_utf8_lossy(&found.stdout);
    assert!(
        found.status.success() && text.contains(&id) && text.contains("via sshd (kernel audit)"),
        "{found:?}"
    );
}

#[test]
fn ssh_w_through_the_bastion_records_the_end_and_the_bytes_each_way() {
    require_e2e!("auditctl", "auditd");
    const TO_SINK: usize = 123_457;
    const FROM_SINK: usize = 234_561;
    // The sink answers only once the connect is in the record, so that the importer ties the
    // connect to its socket while it is open (the kernel's socket inode, not a guess).
    let (tx, rx) = std::sync::mpsc::channel::<PathBuf>();
    let (port, sink) = sink(vec![Reply {
        before: Box::new(move || {
            let record_dir = rx.recv().unwrap();
            wait_until("the connect to the sink in the record", T, || {
                session_dirs(&record_dir).iter().any(|s| {
                    connects(s)
                        .iter()
                        .any(|c| c.exe.as_deref() == Some("/usr/sbin/sshd"))
                })
            });
        }),
        reply: FROM_SINK,
    }]);
    let mut b = audited_bastion("fwd-W", port);
    tx.send(b.tree.record_dir().to_path_buf()).unwrap();
    let got = stdio_forward(&b.sshd.login(&b.user), port, TO_SINK);
    assert_eq!(got.len(), FROM_SINK, "bastion: {}", b.sshd.log());
    assert_eq!(sink.join().unwrap(), vec![TO_SINK]);
    let (session, connect) = sshd_connects(b.tree.record_dir(), port, 1).remove(0);
    let end = wait_end(&session, &connect);
    assert_eq!(end.result.as_deref(), Some("closed"), "{end:?}");
    assert_eq!(end.matched_by.as_deref(), Some("socket"), "{end:?}");
    assert_eq!(end.bytes_to_destination, Some(TO_SINK as u64), "{end:?}");
    assert_eq!(
        end.bytes_from_destination,
        Some(FROM_SINK as u64),
        "{end:?}"
    );
    assert_eq!(end.port, Some(port));
    assert!(end.duration_us.is_some_and(|d| d > 0), "{end:?}");
    b.importer.kill();

    // The views state the end: show in the timeline, search --forward beside the destination.
    let id = session.file_name().unwrap().to_string_lossy().into_owned();
    let shown = run_sessrec(b.tree.record_dir(), &["show", &id]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    let want = format!(
        "forwarded connection by sshd to 127.0.0.1 port {port} closed: {TO_SINK} B to it, {FROM_SINK} B back"
    );
    assert!(shown.contains(&want), "{want}\n{shown}");
    let found = run_sessrec(
        b.tree.record_dir(),
        &["search", "--forward", &format!(":{port}$")],
    );
    let text = String::from_utf8_lossy(&found.stdout);
    assert!(
        text.contains(&format!("{TO_SINK} B to it, {FROM_SINK} B back")),
        "{found:?}"
    );
    // list counts it as a forward of the session.
    let listed = run_sessrec(b.tree.record_dir(), &["list", "--json"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("\"forwards\":1"), "{listed}");
}

/// `ssh -L`: each connection through the local port is one sshd connect, and its end and bytes
/// are recorded while the login goes on.
#[test]
fn ssh_l_through_the_bastion_records_the_connection_while_the_login_goes_on() {
    use std::io::{Read, Write};
    require_e2e!("auditctl", "auditd");
    const TO_SINK: usize = 4_321;
    const FROM_SINK: usize = 8_765;
    let (port, sink) = sink(vec![Reply {
        before: Box::new(|| {}),
        reply: FROM_SINK,
    }]);
    let mut b = audited_bastion("fwd-L", port);
    let login = b.sshd.login(&b.user);
    let lport = free_port();
    let spec = format!("127.0.0.1:{lport}:127.0.0.1:{port}");
    let mut client = Client::spawn(
        &login,
        &["-N", "-o", "ExitOnForwardFailure=yes", "-L", &spec],
    );
    let mut stream = connect_when_listening(lport, &mut client)
        .unwrap_or_else(|| panic!("the -L port: {}", client.stderr()));
    stream.write_all(&vec![b's'; TO_SINK]).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    stream.read_to_end(&mut back).unwrap();
    assert_eq!(back.len(), FROM_SINK, "ssh -L: {}", client.stderr());
    assert_eq!(sink.join().unwrap(), vec![TO_SINK]);
    let (session, connect) = sshd_connects(b.tree.record_dir(), port, 1).remove(0);
    let end = wait_end(&session, &connect);
    assert_eq!(end.result.as_deref(), Some("closed"), "{end:?}");
    assert_eq!(
        (end.bytes_to_destination, end.bytes_from_destination),
        (Some(TO_SINK as u64), Some(FROM_SINK as u64)),
        "{end:?}"
    );
    // Recorded while the login is still open (ssh -N runs on).
    assert!(
        client.wait_exit(Duration::from_millis(0)).is_none(),
        "ssh -L ended: {}",
        client.stderr()
    );
    drop(client);
    b.importer.kill();
}

/// `python3 -m http.server` on 127.0.0.1 serving one page; killed on drop.
struct HttpServer {
    child: Child,
    port: u16,
    _dir: TempDir,
}

const PAGE: &str = "srt-sshd-captured-page-4242\n";

impl HttpServer {
    fn start() -> HttpServer {
        let dir = TempDir::new("http");
        std::fs::write(dir.join("page.txt"), PAGE).unwrap();
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        wait_until("http.server listening", T, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        HttpServer {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ssh -L` to a web server with `record_payload` and `capture_sshd`: the generated drop-in
/// opens the destination to sshd again, the importer captures the connection's real packets
/// into the session's PCAP file, its `connect.end` names and hashes it, and tcpdump reads the
/// HTTP request and the response out of what `export --format pcap` hands out.
#[test]
fn ssh_l_with_record_payload_is_captured_and_exported_as_pcap() {
    use std::io::{Read, Write};
    require_e2e!("auditctl", "auditd", "python3", "tcpdump");
    let http = HttpServer::start();
    let mut b = audited_bastion_with(
        "fwd-cap",
        http.port,
        "capture_sshd = true\n",
        "record_payload = true\n",
    );
    let login = b.sshd.login(&b.user);
    let lport = free_port();
    let spec = format!("127.0.0.1:{lport}:127.0.0.1:{}", http.port);
    let mut client = Client::spawn(
        &login,
        &["-N", "-o", "ExitOnForwardFailure=yes", "-L", &spec],
    );
    let mut stream = connect_when_listening(lport, &mut client)
        .unwrap_or_else(|| panic!("the -L port: {}", client.stderr()));
    let request = "GET /page.txt HTTP/1.0\r\nHost: srt\r\n\r\n";
    stream.write_all(request.as_bytes()).unwrap();
    let mut back = Vec::new();
    stream.read_to_end(&mut back).unwrap();
    // The client's end closes too: only then does sshd close the channel and its socket.
    drop(stream);
    let back = String::from_utf8_lossy(&back).into_owned();
    assert!(
        back.starts_with("HTTP/1.0 200") && back.ends_with(PAGE),
        "through ssh -L: {back:?} {}",
        client.stderr()
    );
    let (session, connect) = sshd_connects(b.tree.record_dir(), http.port, 1).remove(0);
    let end = wait_end(&session, &connect);
    assert_eq!(end.result.as_deref(), Some("closed"), "{end:?}");
    let name = end.pcap.clone().unwrap_or_else(|| {
        panic!(
            "no PCAP named in connect.end: {end:?}\nimporter: {}",
            b.importer.stderr()
        )
    });
    let bytes = std::fs::read(session.join(&name)).expect("the PCAP file");
    assert_eq!(end.pcap_bytes, Some(bytes.len() as u64), "{end:?}");
    assert_eq!(end.pcap_dropped_packets, Some(0), "{end:?}");
    assert_eq!(end.pcap_truncated_bytes, Some(0), "{end:?}");

    let dir = b.tree.record_dir();
    let id = session.file_name().unwrap().to_string_lossy().into_owned();
    let verified = run_sessrec(dir, &["verify", &id]);
    assert!(verified.status.success(), "verify: {verified:?}");
    let export_dir = TempDir::new("fwdcap-export");
    let exported = export_dir.join("exported.pcap");
    let (written, text) = export_pcap_through_tcpdump(dir, &id, &exported);
    assert_eq!(written, bytes);
    assert!(text.contains("GET /page.txt HTTP/1.0"), "{text}");
    assert!(
        text.contains("HTTP/1.0 200") && text.contains(PAGE.trim()),
        "{text}"
    );
    // Each packet once, though the loopback interface shows every one twice: exactly one SYN
    // to the web server.
    let syns = text
        .lines()
        .filter(|l| l.contains(&format!("> 127.0.0.1.{}: Flags [S]", http.port)))
        .count();
    assert_eq!(syns, 1, "{text}");
    drop(client);

    // doctor sees the capture running from the kernel's tables, and says so when it stops.
    let doctor = |b: &AuditedBastion| -> String {
        let out = Command::new(products().sessrec_cli())
            .arg("--config")
            .arg(b.tree.config_path())
            .arg("doctor")
            .arg("--sshd-config")
            .arg(b.sshd.config_path())
            .output()
            .expect("sessrec doctor");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.contains("capture"))
            .unwrap_or_default()
            .to_string()
    };
    let running = doctor(&b);
    assert!(
        running.contains("sshd's forwards to record_payload destinations are captured"),
        "{running}"
    );
    b.importer.kill();
    let stopped = doctor(&b);
    assert!(
        stopped.contains("no sessrec-audit-import holds a packet socket"),
        "{stopped}"
    );
}

/// A connection freed before its connect is imported is still matched (by destination and
/// time, the only freed socket that fits); one that ends while no importer is following gets an
/// end that says it is unknown, not a made-up one.
#[test]
fn sshd_forward_ends_seen_late_or_not_at_all_are_stated_as_such() {
    require_e2e!("auditctl", "auditd");
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let (port, sink) = sink(vec![
        Reply {
            before: Box::new(|| {}),
            reply: 5_000,
        },
        Reply {
            before: Box::new(move || wait.recv().unwrap()),
            reply: 7_000,
        },
    ]);
    let mut b = audited_bastion("fwd-late", port);
    let login = b.sshd.login(&b.user);
    assert_eq!(stdio_forward(&login, port, 3_000).len(), 5_000);
    let (session, first) = sshd_connects(b.tree.record_dir(), port, 1).remove(0);
    let end = wait_end(&session, &first);
    assert_eq!(end.result.as_deref(), Some("closed"), "{end:?}");
    assert_eq!(
        (end.bytes_to_destination, end.bytes_from_destination),
        (Some(3_000), Some(5_000)),
        "{end:?}"
    );
    assert!(
        matches!(
            end.matched_by.as_deref(),
            Some("socket" | "destination_time")
        ),
        "{end:?}"
    );

    // The second connection is followed (the importer's state holds its socket), then the
    // importer is killed, the connection ends, and the importer starts again.
    let second = std::thread::spawn(move || stdio_forward(&login, port, 2_000));
    let (second_session, second_connect) = sshd_connects(b.tree.record_dir(), port, 2).remove(1);
    let state_file = b.importer.state_file();
    wait_until("the importer to follow the open connection", T, || {
        std::fs::read(&state_file)
            .ok()
            .and_then(|s| serde_json::from_slice::<serde_json::Value>(&s).ok())
            .is_some_and(|v| {
                v["open_connects"].as_object().is_some_and(|o| {
                    o.values()
                        .any(|c| c["audit_id"] == second_connect.audit_id.as_deref().unwrap_or("?"))
                })
            })
    });
    b.importer.kill();
    go.send(()).unwrap();
    assert_eq!(second.join().unwrap().len(), 7_000);
    assert_eq!(sink.join().unwrap(), vec![3_000, 2_000]);
    b.importer.start();
    let end = wait_end(&second_session, &second_connect);
    assert_eq!(end.result.as_deref(), Some("unknown"), "{end:?}");
    assert_eq!(end.bytes_to_destination, None, "{end:?}");
    assert!(
        end.reason
            .as_deref()
            .is_some_and(|r| r.contains("no importer was following")),
        "{end:?}"
    );
    b.importer.kill();
    let found = run_sessrec(
        b.tree.record_dir(),
        &["search", "--forward", &format!(":{port}$")],
    );
    let text = String::from_utf8_lossy(&found.stdout);
    assert!(
        text.contains("3000 B to it, 5000 B back")
            && text.contains("end unknown: it closed while no importer was following"),
        "{text}"
    );
}

/// The shipped jump-host example is what `sessrec forward-sshd` writes for the policy its
/// header names, and sshd accepts it beside the recorded group's drop-in.
#[test]
fn the_shipped_jump_host_example_is_the_generators_output_and_sshd_accepts_it() {
    require_e2e!();
    let shipped =
        std::fs::read_to_string(packaging_dir().join("examples/jump-host/sessrec-forward.conf"))
            .unwrap();
    // The policy, from the commented TOML lines after "for the example policy:".
    let policy: String = shipped
        .lines()
        .skip_while(|l| !l.contains("for the example policy"))
        .skip(1)
        .map_while(|l| l.strip_prefix("#   "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(policy.contains("[[forward.allow]]"), "{policy}");
    let generated = generated_dropin(&policy);
    let body = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(body(&shipped), body(&generated), "regenerate the example");

    let dir = TempDir::new("jumpex");
    let (_, login_shell) = sshd_dropins()
        .into_iter()
        .find(|(n, _)| n.contains("login-shell"))
        .unwrap();
    let host_key = dir.join("host_key");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&host_key)
        .status()
        .unwrap();
    assert!(keygen.success());
    std::fs::write(dir.join("sessrec-forward.conf"), &shipped).unwrap();
    std::fs::write(dir.join("sessrec.conf"), &login_shell).unwrap();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "HostKey {}\nInclude {}/sessrec*.conf\n",
            host_key.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let out = Command::new(SSHD)
        .arg("-t")
        .arg("-f")
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "sshd -t: {out:?}");
}
