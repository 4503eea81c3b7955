//! The harness itself, with plain bash as the login shell: a private sshd with its own PAM
//! service accepts key and certificate logins, exec channels keep stdout/stderr/exit status
//! apart, and pty sessions type, read and resize.

use std::fs;
use std::path::Path;
use std::time::Duration;

use sessrec_tests::*;

const T: Duration = Duration::from_secs(30);

#[test]
fn exec_channel_keeps_streams_and_status_apart() {
    require_e2e!();
    let user = TestUser::new("h-exec", Path::new("/bin/bash"));
    let sshd = PrivateSshd::start_default();
    let out = sshd
        .login(&user)
        .exec("printf abc; printf err >&2; exit 3", b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "abc", "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err", "{out:?}");
    assert_eq!(out.status.code(), Some(3), "{out:?}");

    let out = sshd.login(&user).exec("id -un; cat", b"from-stdin\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\nfrom-stdin\n", user.name())
    );
    assert!(out.status.success());
}

#[test]
fn pty_session_types_reads_and_resizes() {
    require_e2e!();
    let user = TestUser::new("h-pty", Path::new("/bin/bash"));
    let sshd = PrivateSshd::start_default();
    let mut term = sshd.login(&user).interactive();
    term.send_line("echo hello-$((6*7))");
    term.expect("hello-42", T);
    term.send_line("stty size; tty");
    term.expect(r"24 80\r?\n/dev/pts/\d+", T);
    term.resize(100, 40);
    // The kernel delivers SIGWINCH to ssh, which forwards the new size to the remote pty.
    let mut seen = false;
    for _ in 0..50 {
        term.send_line("echo size=$(stty size)=");
        let got = term.expect(r"size=\d+ \d+=", T);
        if got == "size=40 100=" {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        seen,
        "resize never reached the remote pty:\n{}",
        term.transcript_text()
    );
    term.send_line("exit 5");
    term.wait_code(5, T);
    assert!(term.transcript_text().contains("hello-42"));
}

#[test]
fn pam_service_is_named_by_the_sshd_symlink() {
    require_e2e!();
    let user = TestUser::new("h-pam", Path::new("/bin/bash"));
    let out_dir = TempDir::new("pamlog");
    let env_log = out_dir.join("env");
    let sshd = PrivateSshd::builder()
        .pam_session(&format!(
            "session required pam_exec.so log={} /usr/bin/env",
            env_log.display()
        ))
        .start();
    let out = sshd.login(&user).exec("true", b"");
    assert!(out.status.success(), "{out:?}\n{}", sshd.log());
    let text = fs::read_to_string(&env_log).expect("pam_exec ran in the session stack");
    assert!(
        text.contains(&format!("PAM_SERVICE={}", sshd.service())),
        "PAM_SERVICE missing from:\n{text}"
    );
    assert!(
        text.contains(&format!("PAM_USER={}", user.name())),
        "{text}"
    );
    assert!(sshd.service().starts_with("sshd-srt-"));
    assert!(sshd.pam_file().exists());
}

#[test]
fn certificate_login_with_trusted_ca() {
    require_e2e!();
    let user = TestUser::new("h-cert", Path::new("/bin/bash"));
    let ca = SshCa::new();
    // Only the certificate may log in: the bare key is no longer authorized.
    user.write_authorized_keys("");
    let cert = ca.sign(user.key(), "alice@example.com", &[user.name()], 4242);
    let sshd = PrivateSshd::builder().trusted_user_ca(ca.key()).start();
    let bare = sshd.login(&user).exec("true", b"");
    assert!(!bare.status.success(), "bare key must be refused");
    let out = sshd
        .login(&user)
        .with_certificate(&cert)
        .exec("echo in", b"");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "in\n",
        "{out:?}\n{}",
        sshd.log()
    );
    assert!(
        sshd.log().contains("ID alice@example.com (serial 4242)"),
        "sshd log lacks the certificate id:\n{}",
        sshd.log()
    );
    assert!(ca.fingerprint().starts_with("SHA256:"));
}

#[test]
fn sshd_stops_and_cleans_up() {
    require_e2e!();
    let (symlink, pam_file, pid) = {
        let sshd = PrivateSshd::start_default();
        let symlink = Path::new("/usr/local/sbin").join(sshd.service());
        assert!(fs::symlink_metadata(&symlink).is_ok());
        let pid = sshd.pid().expect("the private sshd's pid");
        (symlink, sshd.pam_file().to_path_buf(), pid)
    };
    assert!(
        fs::symlink_metadata(&symlink).is_err(),
        "symlink left behind"
    );
    assert!(!pam_file.exists(), "PAM file left behind");
    // The daemon itself is gone (its port may already serve another test's sshd: ports are
    // picked free and reused).
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty()
            || stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        "sshd {pid} still running: {stat}"
    );
}

#[test]
fn mounts_refuse_writes() {
    require_e2e!();
    let full = Mount::tmpfs(256);
    let err = fs::write(full.path().join("big"), vec![0u8; 1 << 20]).expect_err("tmpfs must fill");
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    let source = TempDir::new("ro-src");
    let ro = Mount::read_only_bind(source.path());
    let err = fs::write(ro.path().join("x"), b"x").expect_err("read-only bind must refuse");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
}

#[test]
fn pam_service_and_sudoers_drop_in() {
    require_e2e!("pamtester", "sudo", "visudo");
    let user = TestUser::new("h-sudo", Path::new("/bin/bash"));
    let out_dir = TempDir::new("pamtester");
    let log = out_dir.join("env");
    let service = PamService::new(&format!(
        "account required pam_permit.so\nsession required pam_exec.so log={} /usr/bin/env\n",
        log.display()
    ));
    let out = service.pamtester(user.name(), &["rhost=203.0.113.7"], &["open_session"]);
    assert!(out.status.success(), "{out:?}");
    let env = fs::read_to_string(&log).expect("pam_exec log");
    assert!(
        env.contains(&format!("PAM_SERVICE={}", service.name())),
        "{env}"
    );
    assert!(env.contains("PAM_RHOST=203.0.113.7"), "{env}");

    let sudoers = SudoersDropIn::new(&format!(
        "{} ALL=(root) NOPASSWD: /usr/bin/id\n",
        user.name()
    ));
    let sshd = PrivateSshd::start_default();
    let out = sshd.login(&user).exec("sudo -n /usr/bin/id -u", b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n", "{out:?}");
    drop(sudoers);
    let out = sshd.login(&user).exec("sudo -n /usr/bin/id -u", b"");
    assert!(
        !out.status.success(),
        "sudo still allowed after the drop-in was removed"
    );
}

#[test]
fn auth_log_sees_authpriv_lines() {
    require_e2e!("rsyslogd", "logger");
    let log = AuthLog::mark();
    let marker = format!("srt-harness-{}", sessrec_tests::util::random_hex(6));
    run_ok(
        "logger",
        &["-p", "authpriv.notice", "-t", "srt-harness", &marker],
    );
    let line = log.wait_for(&marker, T);
    assert!(line.contains("srt-harness"), "{line}");
}

#[test]
fn multiplexed_channels_share_one_connection() {
    require_e2e!();
    let user = TestUser::new("h-mux", Path::new("/bin/bash"));
    let sshd = PrivateSshd::start_default();
    let sockets = TempDir::new("mux");
    let login = sshd
        .login(&user)
        .with_control_master(&sockets.join("master"));
    let first = login.exec("echo $SSH_CONNECTION", b"");
    let second = login.exec("echo $SSH_CONNECTION", b"");
    login.stop_master();
    assert!(first.status.success() && second.status.success());
    // Same client port: one TCP connection carried both channels.
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(
        sshd.log().matches("Accepted publickey").count(),
        1,
        "{}",
        sshd.log()
    );
}

#[test]
fn transfer_clients_reach_the_private_sshd() {
    require_e2e!("scp", "sftp", "rsync");
    let user = TestUser::new("h-xfer", Path::new("/bin/bash"));
    let sshd = PrivateSshd::start_default();
    let login = sshd.login(&user);
    let local = TempDir::new("xfer");
    let source = local.join("up.txt");
    fs::write(&source, b"payload-1\n").expect("write source");
    let remote_up = format!("{}/up.txt", user.home().display());

    let out = login.scp(
        &[source.to_str().unwrap(), &login.remote_path(&remote_up)],
        T,
    );
    assert!(out.status.success(), "scp: {out:?}");
    assert_eq!(fs::read(&remote_up).expect("uploaded"), b"payload-1\n");

    let back = local.join("back.txt");
    let out = login.sftp_batch(&format!("get {remote_up} {}\n", back.display()), T);
    assert!(out.status.success(), "sftp: {out:?}");
    assert_eq!(fs::read(&back).expect("downloaded"), b"payload-1\n");

    let synced = local.join("synced.txt");
    let out = login.rsync(
        &[&login.remote_path(&remote_up), synced.to_str().unwrap()],
        T,
    );
    assert!(out.status.success(), "rsync: {out:?}");
    assert_eq!(fs::read(&synced).expect("rsynced"), b"payload-1\n");
}
