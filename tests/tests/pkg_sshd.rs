//! The shipped sshd drop-ins (packaging/examples/sshd_config.d/): `sshd -t` accepts each one
//! included from a copy of Debian's own sshd_config, they apply to the recorded group only,
//! they never define `Subsystem`, and with them every kind of forwarding is refused to a
//! recorded user who can still log in (the same user on the same set-up without the drop-in
//! can forward, so the refusals are the drop-in's doing).

mod pkg_support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pkg_support::*;
use sessrec_tests::util::output_with_timeout;
use sessrec_tests::*;

/// Debian's pristine sshd_config (openssh-server ships it here; /etc/ssh/sshd_config is the
/// host's own and is never read or changed).
const DEBIAN_SSHD_CONFIG: &str = "/usr/share/openssh/sshd_config";

/// A temp dir holding a copy of Debian's sshd_config whose Include names `<dir>/sshd_config.d`.
fn debian_config_with(dropin: &str) -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new("sshdt");
    let original = fs::read_to_string(DEBIAN_SSHD_CONFIG)
        .unwrap_or_else(|e| panic!("cannot read {DEBIAN_SSHD_CONFIG}: {e}"));
    let include = "Include /etc/ssh/sshd_config.d/*.conf";
    assert!(
        original.contains(include),
        "Debian's sshd_config no longer has `{include}`"
    );
    let dropins = dir.join("sshd_config.d");
    fs::create_dir(&dropins).expect("create sshd_config.d");
    fs::write(dropins.join("sessrec.conf"), dropin).expect("write drop-in");
    let host_key = dir.join("host_key");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&host_key));
    let config = format!(
        "HostKey {}\nPidFile {}\n{}",
        host_key.display(),
        dir.join("sshd.pid").display(),
        original.replace(include, &format!("Include {}/*.conf", dropins.display()))
    );
    let path = dir.join("sshd_config");
    fs::write(&path, config).expect("write sshd_config");
    (dir, path)
}

fn sshd_check(config: &Path) -> std::process::Output {
    output_with_timeout(
        Command::new(SSHD).arg("-t").arg("-f").arg(config),
        b"",
        Duration::from_secs(30),
    )
}

/// `sshd -T` for a connection by `user`: the effective settings, one `keyword value` per line.
fn effective(config: &Path, user: &str) -> Vec<String> {
    let out = run(Command::new(SSHD)
        .arg("-T")
        .arg("-f")
        .arg(config)
        .arg("-C")
        .arg(format!("user={user},host=localhost,addr=127.0.0.1")));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn has(settings: &[String], line: &str) -> bool {
    settings.iter().any(|l| l == line)
}

const RESTRICTIONS: &[&str] = &[
    "disableforwarding yes",
    "permittunnel no",
    "permituserrc no",
    "permituserenvironment no",
    "permitlisten none",
    "permitopen none",
];

#[test]
fn dropins_pass_sshd_t_in_debians_config_and_apply_to_the_group_only() {
    require_e2e!();
    let group = TestGroup::new("rec");
    let member = TestUser::new("member", Path::new("/bin/sh"));
    member.add_to_group(group.name());
    let other = TestUser::new("other", Path::new("/bin/sh"));

    for (name, text) in sshd_dropins() {
        assert!(
            !active_lines(&text)
                .iter()
                .any(|l| l.to_ascii_lowercase().starts_with("subsystem")),
            "{name} defines Subsystem (global-only in sshd, fatal when defined twice)"
        );
        let adapted = adapt_dropin(&text, group.name(), Path::new(EXAMPLE_RECORDER));
        let (_dir, config) = debian_config_with(&adapted);
        let out = sshd_check(&config);
        assert!(
            out.status.success(),
            "sshd -t rejects {name} in Debian's sshd_config: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let recorded = effective(&config, member.name());
        for want in RESTRICTIONS {
            assert!(
                has(&recorded, want),
                "{name}: `{want}` missing for a member:\n{recorded:?}"
            );
        }
        let acceptenv: Vec<&String> = recorded
            .iter()
            .filter(|l| l.starts_with("acceptenv "))
            .collect();
        for var in ["SESSREC_TICKET", "LANG", "LC_*"] {
            assert!(
                acceptenv
                    .iter()
                    .any(|l| l.split_whitespace().any(|w| w == var)),
                "{name}: AcceptEnv lacks {var}: {acceptenv:?}"
            );
        }
        let force = format!("forcecommand {EXAMPLE_RECORDER}");
        if name.contains("force-command") {
            assert!(
                has(&recorded, &force),
                "{name}: no ForceCommand for a member"
            );
        } else {
            assert!(
                !recorded.iter().any(|l| l.starts_with("forcecommand /")),
                "{name}: unexpected ForceCommand:\n{recorded:?}"
            );
        }
        // Debian's global Subsystem is untouched: sftp runs through the user's shell.
        assert!(
            has(&recorded, "subsystem sftp /usr/lib/openssh/sftp-server"),
            "{name}: Debian's sftp Subsystem changed:\n{recorded:?}"
        );

        let unrecorded = effective(&config, other.name());
        assert!(
            has(&unrecorded, "disableforwarding no"),
            "{name} applies to non-members"
        );
        assert!(
            !unrecorded.iter().any(|l| l.starts_with("forcecommand /")),
            "{name}: ForceCommand applies to non-members:\n{unrecorded:?}"
        );
    }
}

#[test]
fn a_second_subsystem_line_is_fatal_which_is_why_none_ships() {
    require_e2e!();
    let (_dir, config) = debian_config_with("Subsystem sftp internal-sftp\n");
    let out = sshd_check(&config);
    assert!(
        !out.status.success(),
        "sshd accepted a second Subsystem sftp definition"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already defined"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_forwarding_kind_is_refused_to_a_recorded_user() {
    require_e2e!();
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let group = TestGroup::new("fwd");
    let user = TestUser::new("fwd", installed.shell());
    user.add_to_group(group.name());
    let target = Target::start();

    let (_, login_shell_dropin) = sshd_dropins()
        .into_iter()
        .find(|(n, _)| n.contains("login-shell"))
        .expect("login-shell drop-in");
    let start = |with_dropin: bool| {
        let builder = PrivateSshd::builder();
        let tree = RecordTree::new(&format!(
            "min_free_mb = 1\n[policy]\nusers = []\ngroups = [\"{}\"]\nservices = [\"{}\"]\n\
             [recorder]\nshell = \"/bin/bash\"\n",
            group.name(),
            builder.service()
        ));
        // Allowed globally, so that a refusal can only come from the drop-in.
        let mut builder = builder
            .config("PermitTunnel yes")
            .config("AllowTcpForwarding yes")
            .config("AllowStreamLocalForwarding yes")
            .config("GatewayPorts no")
            .recorded_by(&installed, tree.config_path());
        if with_dropin {
            builder = builder.match_block(&adapt_dropin(
                &login_shell_dropin,
                group.name(),
                installed.shell(),
            ));
        }
        (builder.start(), tree)
    };

    let (without, _tree_a) = start(false);
    let login = without.login(&user);
    for attempt in try_all_forwards(&login, &target) {
        assert!(
            attempt.reached,
            "control set-up (no drop-in): {} did not work, so refusals would prove nothing: {}",
            attempt.kind, attempt.detail
        );
    }
    let (outcome, err) = tunnel_request(&login);
    assert_eq!(
        outcome,
        TunnelOutcome::Permitted,
        "control set-up: sshd refused the tunnel, so a refusal would prove nothing: {err}"
    );
    drop(without);

    let (with, tree) = start(true);
    let login = with.login(&user);
    // The recorded user still logs in and is recorded.
    let out = login.exec("echo fwd-$((40+2))", b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "fwd-42\n", "{out:?}");
    tree.wait_sessions(1, Duration::from_secs(30));
    for attempt in try_all_forwards(&login, &target) {
        assert!(
            !attempt.reached,
            "recorded user could forward with {}: {}",
            attempt.kind, attempt.detail
        );
    }
    let (outcome, err) = tunnel_request(&login);
    assert_eq!(
        outcome,
        TunnelOutcome::Refused,
        "tunnel (-w) not refused by PermitTunnel: {err}"
    );
}

#[test]
fn force_command_dropin_records_users_whose_shell_is_sh() {
    require_e2e!();
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let group = TestGroup::new("fc");
    let user = TestUser::new("fc", Path::new("/bin/sh"));
    user.add_to_group(group.name());
    let (_, dropin) = sshd_dropins()
        .into_iter()
        .find(|(n, _)| n.contains("force-command"))
        .expect("force-command drop-in");
    let builder = PrivateSshd::builder();
    let tree = RecordTree::new(&format!(
        "min_free_mb = 1\n[policy]\nusers = []\ngroups = [\"{}\"]\nservices = [\"{}\"]\n\
         launch = \"force-command\"\n[recorder]\nshell = \"/bin/bash\"\n",
        group.name(),
        builder.service()
    ));
    let sshd = builder
        .recorded_by(&installed, tree.config_path())
        .match_block(&adapt_dropin(&dropin, group.name(), installed.shell()))
        .start();
    let login = sshd.login(&user);
    let out = login.exec("echo fc-$((40+2)); exit 5", b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "fc-42\n", "{out:?}");
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let mut term = login.interactive();
    term.expect(r"\$ $", Duration::from_secs(30));
    term.send_line("echo typed-$((6*7))");
    term.expect("typed-42", Duration::from_secs(30));
    term.send_line("exit");
    term.wait_code(0, Duration::from_secs(30));

    let sessions = tree.wait_sessions(2, Duration::from_secs(30));
    let mut shown = String::new();
    for session in &sessions {
        let channel = wait_channels(session, 1, Duration::from_secs(30)).remove(0);
        wait_last_event(&channel, "channel.end", Duration::from_secs(30));
        assert_chain_ok(&channel);
        shown.push_str(&stream_text(&channel, Stream::Output));
    }
    assert!(
        shown.contains("fc-42") && shown.contains("typed-42"),
        "{shown:?}"
    );
    let attempt = try_stdio_forward(&login, &Target::start());
    assert!(!attempt.reached, "forwarding allowed: {}", attempt.detail);
}
