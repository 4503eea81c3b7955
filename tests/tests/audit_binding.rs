//! The kernel's audit identity of a login in its record: `pam_loginuid` (before pam_sessrec in
//! sshd's session stack) gives the login a login uid and an audit session id (`ses`); the
//! `login` line and every `channel.start` of the session carry them, with the boot id, so
//! kernel audit records can be joined to the session by facts the user cannot set.

use std::time::Duration;

use sessrec_tests::*;

const T: Duration = Duration::from_secs(30);

fn login_with_loginuid(tag: &str) -> RecordedLogin {
    RecordedLogin::launched(tag, Launch::LoginShell, "", |b| {
        b.pam_session("session required pam_loginuid.so")
    })
}

/// What the session's own processes see as their audit session id and login uid.
fn audit_identity_seen_by(r: &RecordedLogin) -> (u64, u64) {
    let out = r.sshd.login(&r.user).exec(
        "echo $(cat /proc/self/sessionid) $(cat /proc/self/loginuid)",
        b"",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace().map(|w| w.parse::<u64>().unwrap());
    (words.next().unwrap(), words.next().unwrap())
}

#[test]
fn the_login_and_its_channels_carry_the_kernel_audit_session() {
    require_e2e!();
    let r = login_with_loginuid("audit-ses");
    let (ses, loginuid) = audit_identity_seen_by(&r);
    assert_eq!(
        loginuid,
        u64::from(r.user.uid()),
        "pam_loginuid set the login uid"
    );
    assert_ne!(
        ses,
        u64::from(u32::MAX),
        "pam_loginuid set an audit session"
    );

    let session = r.tree.wait_sessions(1, T).remove(0);
    let login = only_event(&session.join("session.jsonl"), "login");
    assert_eq!(login["audit_session"], ses, "{login:?}");
    assert_eq!(login["loginuid"], loginuid, "{login:?}");
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(login["boot_id"], boot.trim(), "{login:?}");
    let channel = wait_channels(&session, 1, T).remove(0);
    let start = only_event(&channel, "channel.start");
    assert_eq!(start["audit_session"], ses, "{start:?}");
    assert_eq!(start["loginuid"], loginuid, "{start:?}");

    // The next login is another audit session.
    let (next, _) = audit_identity_seen_by(&r);
    assert_ne!(next, ses);
    let sessions = r.tree.wait_sessions(2, T);
    let other = sessions.iter().find(|s| **s != session).unwrap();
    assert_eq!(
        only_event(&other.join("session.jsonl"), "login")["audit_session"],
        next
    );
}

#[test]
fn without_pam_loginuid_the_record_says_nothing_of_an_audit_session() {
    require_e2e!();
    // sshd's own login uid is unset when it was started outside a login (as here).
    let r = RecordedLogin::start("audit-none");
    let own = std::fs::read_to_string("/proc/self/loginuid").unwrap();
    let out = r.sshd.login(&r.user).exec("true", b"");
    assert!(out.status.success(), "{out:?}");
    let session = r.tree.wait_sessions(1, T).remove(0);
    let login = only_event(&session.join("session.jsonl"), "login");
    if own.trim() == u32::MAX.to_string() {
        assert!(login.get("audit_session").is_none(), "{login:?}");
        assert!(login.get("loginuid").is_none(), "{login:?}");
    }
    assert!(login.get("boot_id").is_some(), "{login:?}");
}
