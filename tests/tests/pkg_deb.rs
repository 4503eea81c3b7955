//! The Debian package, installed for real on this machine: `packaging/build-deb.sh` builds it,
//! `dpkg -i` installs it, the files have the right owners and modes, the `sessrec` user exists,
//! the installed module and recorder record a login through a private sshd, prerm refuses while
//! a PAM file loads the module or a user has the recorder as shell, and remove + purge leave
//! nothing behind but the records and the system user.
//!
//! Installing changes /usr/bin, /etc and /lib on this host, so the test refuses to run when
//! the package (or its configuration/state) is already there, holds a machine-wide lock, and
//! purges the package again even when it fails.

mod pkg_support;
#[path = "web_support/console.rs"]
mod web_console;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use pkg_support::*;
use sessrec_core::config::Config;
use sessrec_core::id::SessionId;
use sessrec_core::record::FileContext;
use sessrec_core::tree::SessionDir;
use sessrec_core::writer::{RecordWriter, WriterOptions};
use sessrec_tests::util::{output_with_timeout, random_hex};
use sessrec_tests::*;

const T: Duration = Duration::from_secs(30);
const LOCK: &str = "/run/lock/sessrec-package-test.lock";
const RECORD_DIR: &str = "/var/log/sessrec";
const SHELL: &str = "/usr/bin/sessrec-shell";

fn dpkg(args: &[&str]) -> Output {
    output_with_timeout(
        Command::new("dpkg").args(args),
        b"",
        Duration::from_secs(300),
    )
}

fn package_status() -> String {
    let out = output_with_timeout(
        Command::new("dpkg-query").args(["-W", "-f", "${db:Status-Abbrev}", "sessrec"]),
        b"",
        T,
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// dpkg's state says installed (the selection may say "remove" after a refused removal).
fn assert_installed() {
    let status = package_status();
    assert_eq!(
        status.chars().nth(1),
        Some('i'),
        "package not installed: {status:?}"
    );
}

fn multiarch() -> String {
    run_ok("dpkg-architecture", &["-qDEB_HOST_MULTIARCH"])
        .trim()
        .to_string()
}

/// Purges the package if a failed test left it installed, after undoing what would make
/// prerm refuse (the test's own PAM file and user shells).
/// Also removes the record planted in the default tree (and the tree, if the test made it).
struct Installation {
    pam_file: PathBuf,
    planted: Option<PathBuf>,
    remove_record_dir: bool,
}

impl Drop for Installation {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.pam_file);
        if !package_status().is_empty() && !package_status().starts_with("un") {
            let out = dpkg(&["--purge", "sessrec"]);
            if !out.status.success() {
                eprintln!(
                    "warning: dpkg --purge sessrec failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        if let Some(dir) = self.planted.take() {
            let _ = fs::remove_dir_all(dir);
        }
        if self.remove_record_dir {
            let _ = fs::remove_dir_all(RECORD_DIR);
        }
    }
}

fn assert_file(path: &str, mode: u32) {
    let meta = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (mode, 0, 0),
        "{path}: mode {:o} uid {} gid {}",
        meta.mode() & 0o7777,
        meta.uid(),
        meta.gid()
    );
}

/// A real record file in the default record tree, to prove purge keeps it.
fn plant_record() -> (PathBuf, Vec<u8>) {
    let id = SessionId::new().expect("session id");
    let dir = SessionDir::create(Path::new(RECORD_DIR), id, None).expect("session dir");
    let file = dir.create_file("session.jsonl").expect("record file");
    let mut w = RecordWriter::new(
        file,
        FileContext {
            host: "srt-pkg".into(),
            session: id,
            file: "session.jsonl".into(),
            user: "srt-pkg".into(),
            actor: "srt-pkg".into(),
        },
        WriterOptions::default(),
    )
    .expect("writer");
    let mut fields = serde_json::Map::new();
    fields.insert("text".into(), "kept across purge".into());
    w.event("notice", fields).expect("write");
    w.close().expect("close");
    let path = dir.path().join("session.jsonl");
    let bytes = fs::read(&path).expect("read record");
    (dir.path().to_path_buf(), bytes)
}

#[test]
fn deb_installs_records_refuses_removal_in_use_and_purges_cleanly() {
    require_e2e!("dpkg-deb", "dpkg-shlibdeps", "dpkg-architecture");
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK)
        .expect("open lock");
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive).expect("lock");
    assert_eq!(
        package_status(),
        "",
        "the sessrec package is already known to dpkg here; this test installs and purges it"
    );
    for path in ["/etc/sessrec", "/var/lib/sessrec"] {
        assert!(
            !Path::new(path).exists(),
            "{path} exists although the package is not installed; purge would remove it"
        );
    }
    let record_dir_existed = Path::new(RECORD_DIR).exists();

    let out_dir = TempDir::new("deb");
    let deb = build_package("build-deb.sh", out_dir.path());
    let contents = run_ok("dpkg-deb", &["-c", &deb.to_string_lossy()]);
    assert!(
        !contents.contains("./var/log/sessrec"),
        "the record tree must not be a packaged path (dpkg would reset or remove it)"
    );

    let pam_file = PathBuf::from(format!("/etc/pam.d/srt-pkg-{}", random_hex(4)));
    let mut installation = Installation {
        pam_file: pam_file.clone(),
        planted: None,
        remove_record_dir: !record_dir_existed,
    };
    let out = dpkg(&["-i", &deb.to_string_lossy()]);
    assert!(
        out.status.success(),
        "dpkg -i failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_installed();

    // Files, owners, modes.
    let pam_module = format!("/lib/{}/security/pam_sessrec.so", multiarch());
    assert_file(SHELL, 0o4755);
    assert_file("/usr/bin/sessrec", 0o755);
    assert_file("/usr/sbin/sudo-iolog-import", 0o755);
    assert_file("/usr/sbin/sessrec-audit-import", 0o755);
    assert_file("/lib/systemd/system/sessrec-audit-import.service", 0o644);
    assert_file("/lib/systemd/system/sessrec-heartbeat.service", 0o644);
    assert_file("/lib/systemd/system/sessrec-heartbeat.timer", 0o644);
    // Installed disabled: the administrator enables the heartbeat with the shipper.
    assert!(
        !Path::new("/etc/systemd/system/timers.target.wants/sessrec-heartbeat.timer").exists(),
        "the heartbeat timer was enabled by installing"
    );
    // Compression of closed sessions: a daily timer, installed disabled too.
    assert_file("/lib/systemd/system/sessrec-compress.service", 0o644);
    assert_file("/lib/systemd/system/sessrec-compress.timer", 0o644);
    assert!(
        !Path::new("/etc/systemd/system/timers.target.wants/sessrec-compress.timer").exists(),
        "the compress timer was enabled by installing"
    );
    // What the unit runs is a command the installed program accepts (with --dry-run: the
    // host's own records are not touched).
    let unit = fs::read_to_string("/lib/systemd/system/sessrec-compress.service").expect("unit");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart in sessrec-compress.service");
    let argv: Vec<&str> = exec.split_whitespace().collect();
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .arg("--dry-run")
        .output()
        .expect("run ExecStart");
    assert!(
        out.status.success(),
        "{exec}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The web console: program, PAM service, configuration, a unit installed disabled.
    assert_file("/usr/sbin/sessrec-web", 0o755);
    assert_file("/etc/pam.d/sessrec-web", 0o644);
    assert_file("/etc/sessrec/web.toml", 0o644);
    assert_file("/lib/systemd/system/sessrec-web.service", 0o644);
    assert!(
        !Path::new("/etc/systemd/system/multi-user.target.wants/sessrec-web.service").exists(),
        "the web console was enabled by installing"
    );
    assert_file("/usr/share/doc/sessrec/examples/audit/sessrec.rules", 0o644);
    assert_file(&pam_module, 0o644);
    assert_file("/etc/sessrec/sessrec.toml", 0o644);
    assert_file("/usr/lib/tmpfiles.d/sessrec.conf", 0o644);
    assert_file("/var/lib/sessrec", 0o700);
    assert_file("/run/sessrec", 0o700);
    if !record_dir_existed {
        assert_file(RECORD_DIR, 0o700);
    }
    for unit in ["service", "path", "timer"] {
        let name = format!("sudo-iolog-import.{unit}");
        if packaging_dir().join("systemd").join(&name).exists() {
            assert_file(&format!("/lib/systemd/system/{name}"), 0o644);
        }
    }
    for (section, page) in man_pages() {
        assert_file(&format!("/usr/share/man/man{section}/{page}.gz"), 0o644);
    }
    for player in ["asciinema-player.min.js", "asciinema-player.css"] {
        assert_file(
            &format!("/usr/share/sessrec/asciinema-player/{player}"),
            0o644,
        );
    }
    for example in [
        "pam.d/sshd-session-line",
        "sshd_config.d/sessrec-login-shell.conf",
        "sshd_config.d/sessrec-force-command.conf",
        "jump-host/sessrec-forward.conf",
        "jump-host/sessrec-audit-import-capture.conf",
        "sudoers.d/sessrec",
        "background-jobs.md",
        "shippers/rsyslog/sessrec-ship.conf",
        "shippers/vector/sessrec.yaml",
        "shippers/fluent-bit/sessrec.conf",
    ] {
        assert_file(&format!("/usr/share/doc/sessrec/examples/{example}"), 0o644);
    }
    let conffiles = run_ok("dpkg-query", &["-W", "-f", "${Conffiles}", "sessrec"]);
    for conffile in [
        "/etc/sessrec/sessrec.toml",
        "/etc/sessrec/web.toml",
        "/etc/pam.d/sessrec-web",
    ] {
        assert!(conffiles.contains(conffile), "{conffiles}");
    }
    let ldd = run_ok("ldd", &[&pam_module]);
    assert!(
        ldd.contains("libpam.so.0"),
        "module not linked to libpam: {ldd}"
    );

    // The system user; nothing switched on.
    let user = nix::unistd::User::from_name(SESSREC_USER)
        .expect("getpwnam")
        .expect("sessrec user");
    assert!(user.uid.as_raw() < 1000, "sessrec is not a system user");
    assert!(nix::unistd::Group::from_name(SESSREC_USER)
        .expect("getgrnam")
        .is_some());
    let shells = fs::read_to_string("/etc/shells").unwrap_or_default();
    assert!(
        !shells.lines().any(|l| l.trim().ends_with("sessrec-shell")),
        "sessrec-shell was added to /etc/shells"
    );
    for entry in fs::read_dir("/etc/pam.d").expect("/etc/pam.d").flatten() {
        let text = fs::read_to_string(entry.path()).unwrap_or_default();
        assert!(
            !text
                .lines()
                .any(|l| l.trim_start().starts_with("session") && l.contains(" pam_sessrec.so")),
            "installing enabled the module in {}",
            entry.path().display()
        );
    }
    let config = Config::load_trusted(Path::new("/etc/sessrec/sessrec.toml"))
        .expect("shipped config loads as the recorder loads it");
    assert!(
        !config.policy.records("root", &["root".into()]),
        "the shipped config records users outside the recorded group"
    );
    assert!(config
        .policy
        .records("anyone", &["sessrec-recorded".into()]));

    // The installed module and recorder, through a private sshd, with the shipped drop-in.
    let group = TestGroup::new("pkg");
    let login_user = TestUser::new("pkg", Path::new(SHELL));
    login_user.add_to_group(group.name());
    let builder = PrivateSshd::builder();
    let tree = RecordTree::new(&format!(
        "min_free_mb = 1\n[policy]\nusers = []\ngroups = [\"{}\"]\nservices = [\"{}\"]\n\
         [recorder]\nshell = \"/bin/bash\"\n",
        group.name(),
        builder.service()
    ));
    let (_, dropin) = sshd_dropins()
        .into_iter()
        .find(|(n, _)| n.contains("login-shell"))
        .expect("login-shell drop-in");
    let sshd = builder
        .pam_session(&format!(
            // The harness puts the PAM service name (its sshd symlink's name) for {service}.
            "session required pam_sessrec.so config={} services={{service}}",
            tree.config_path().display()
        ))
        .match_block(&adapt_dropin(&dropin, group.name(), Path::new(SHELL)))
        .start();
    let login = sshd.login(&login_user);
    let out = login.exec("echo installed-$((6*7))", b"");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "installed-42\n",
        "{out:?}"
    );
    let mut term = login.interactive();
    term.expect(r"\$ $", T);
    term.send_line("echo typed-$((7*6))");
    term.expect("typed-42", T);
    term.send_line("exit");
    term.wait_code(0, T);
    let sessions = tree.wait_sessions(2, T);
    for session in &sessions {
        let channel = wait_channels(session, 1, T).remove(0);
        wait_last_event(&channel, "channel.end", T);
        assert_chain_ok(&channel);
    }
    let all_output: String = sessions
        .iter()
        .flat_map(|s| channel_files(s))
        .map(|c| stream_text(&c, Stream::Output))
        .collect();
    assert!(all_output.contains("installed-42"), "{all_output:?}");
    assert!(all_output.contains("typed-42"), "{all_output:?}");
    let target = Target::start();
    let refused = try_stdio_forward(&login, &target);
    assert!(!refused.reached, "forwarding allowed: {}", refused.detail);
    drop(term);
    drop(sshd);
    installed_console_serves(&tree, &sessions);

    // prerm refuses while the module is configured or the recorder is someone's shell.
    let (planted_dir, planted_bytes) = plant_record();
    installation.planted = Some(planted_dir.clone());
    fs::write(&pam_file, "session required pam_sessrec.so\n").expect("write pam file");
    let out = dpkg(&["--remove", "sessrec"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "removal allowed while {} loads the module",
        pam_file.display()
    );
    assert!(
        err.contains(&pam_file.to_string_lossy().into_owned()),
        "{err}"
    );
    assert!(
        err.contains(login_user.name()),
        "user with the recorder shell not named: {err}"
    );
    assert_installed();
    assert_file(SHELL, 0o4755);

    fs::write(&pam_file, "# session required pam_sessrec.so\n").expect("comment out");
    let out = dpkg(&["--remove", "sessrec"]);
    assert!(
        !out.status.success(),
        "removal allowed while a user has the recorder shell"
    );
    login_user.set_shell(Path::new("/bin/bash"));

    // Remove: programs gone, conffile kept. Purge: configuration and state gone.
    let files = run_ok("dpkg-query", &["-L", "sessrec"]);
    let out = dpkg(&["--remove", "sessrec"]);
    assert!(
        out.status.success(),
        "dpkg --remove failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!Path::new(SHELL).exists());
    assert!(!Path::new(&pam_module).exists());
    assert!(
        Path::new("/etc/sessrec/sessrec.toml").exists(),
        "conffile removed before purge"
    );
    let out = dpkg(&["--purge", "sessrec"]);
    assert!(
        out.status.success(),
        "dpkg --purge failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(package_status(), "", "package still known to dpkg");
    for path in files.lines().map(str::trim).filter(|p| !p.is_empty()) {
        let p = Path::new(path);
        if p.is_dir() {
            continue; // shared directories (/usr/bin, /lib/systemd/system ...)
        }
        assert!(!p.exists(), "{path} left behind after purge");
    }
    for path in [
        "/etc/sessrec",
        "/var/lib/sessrec",
        "/usr/share/doc/sessrec",
        // masks left by remove must go with purge
        "/etc/systemd/system/sudo-iolog-import.path",
        "/etc/systemd/system/sudo-iolog-import.timer",
        "/etc/systemd/system/sessrec-heartbeat.timer",
        "/etc/systemd/system/sessrec-compress.timer",
        "/etc/systemd/system/sessrec-web.service",
    ] {
        assert!(!Path::new(path).exists(), "{path} left behind after purge");
    }
    // The records and the system user stay.
    assert_eq!(
        fs::read(planted_dir.join("session.jsonl")).expect("record kept"),
        planted_bytes
    );
    assert!(nix::unistd::User::from_name(SESSREC_USER)
        .expect("getpwnam")
        .is_some());
    // The guard removes the planted record (and the tree if this test created it).
    drop(installation);
}

/// The installed console, as the unit starts it (the shipped web.toml and PAM service, the
/// packaged player), over the sessions just recorded: an auditor logs in with a password
/// through /etc/pam.d/sessrec-web and sees them; a wrong password is refused.
fn installed_console_serves(tree: &RecordTree, sessions: &[PathBuf]) {
    let group = TestGroup::new("pkgweb");
    let auditor = TestUser::new("pkgweb", Path::new("/bin/sh"));
    auditor.add_to_group(group.name());
    web_console::set_password(auditor.name(), "Pkg-aud1tor");
    let console = web_console::start_program(
        Path::new("/usr/sbin/sessrec-web"),
        &[
            "--dir",
            tree.record_dir().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--group",
            group.name(),
        ],
    );
    let refused = console.log_in(auditor.name(), "wrong");
    assert_eq!(refused.status, 403, "{}", refused.head);
    let cookie = console.session_cookie(auditor.name(), "Pkg-aud1tor");
    let list = console.get("/sessions", &cookie);
    assert_eq!(list.status, 200, "{}", list.head);
    for session in sessions {
        let id = session_id(session);
        assert!(
            list.text().contains(&id),
            "{id} not listed: {}",
            list.text()
        );
    }
    let player = console.get("/static/asciinema-player.min.js", &cookie);
    assert_eq!(player.status, 200, "{}", player.head);
    assert!(player.body.len() > 10_000);
}
