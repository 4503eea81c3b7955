//! Who looked: every read of record content and every `kill` is logged before it happens, to
//! syslog (authpriv) and to the chained access log under the record tree
//! ([`sessrec_core::access_log`]). When the access log cannot be written the read is refused:
//! an unlogged read is what PCI DSS 10.2.1.3 forbids.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::path::Path;

use sessrec_core::grant::GrantDir;
use sessrec_core::schema::{Access, Operator};
use sessrec_core::sys::{syslog_authpriv, Level};

use crate::context::Failure;
use crate::escape::escape_control;

/// Grants looked at when finding the operator's own recorded login.
const GRANT_SCAN_LIMIT: usize = 4096;
/// Sessions named in one syslog line (the access log file holds them all).
const SYSLOG_SESSIONS_MAX: usize = 20;

fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// The terminal on standard input, if it is one.
fn tty() -> Option<String> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    std::fs::read_link("/proc/self/fd/0")
        .ok()
        .map(|p| escape_control(&p.display().to_string()))
}

/// Who runs this command: uid, the kernel's login uid and audit session, the terminal, and the
/// actor of the recorded login it runs in (when its grant's sshd monitor is an ancestor).
pub fn operator() -> Operator {
    let uid = nix::unistd::getuid().as_raw();
    let (audit_session, loginuid) = sessrec_core::sys::audit_identity();
    let mut op = Operator {
        uid: Some(uid),
        user: user_name(uid),
        loginuid,
        login_user: loginuid.and_then(user_name),
        audit_session,
        tty: tty(),
        pid: Some(std::process::id()),
        ..Default::default()
    };
    if let Some(login) = loginuid {
        if let Ok(Some(grant)) =
            GrantDir::default().find_by_ancestry(login, std::process::id(), GRANT_SCAN_LIMIT)
        {
            op.actor = Some(grant.identity.actor.clone());
            op.actor_source = Some(grant.identity.actor_source.as_str().to_string());
            op.operator_session = Some(grant.session.to_string());
        }
    }
    op
}

/// The operator in one line of `key=value` words, for syslog and messages.
pub fn describe(op: &Operator) -> String {
    let mut words = Vec::new();
    let mut push = |key: &str, value: Option<String>| {
        words.push(format!(
            "{key}={}",
            value.map_or_else(|| "-".to_string(), |v| escape_control(&v).replace(' ', "_"))
        ));
    };
    push("uid", op.uid.map(|v| v.to_string()));
    push("user", op.user.clone());
    push("loginuid", op.loginuid.map(|v| v.to_string()));
    push("login_user", op.login_user.clone());
    push("ses", op.audit_session.map(|v| v.to_string()));
    push("actor", op.actor.clone());
    push("tty", op.tty.clone());
    words.join(" ")
}

/// Logs one access before it happens; an error means the command must not read.
pub fn log(
    record_dir: &Path,
    host: &str,
    command: &str,
    args: &[String],
    sessions: &[String],
) -> Result<(), Failure> {
    let op = operator();
    let access = Access {
        command: Some(command.to_string()),
        args: Some(args.iter().map(|a| escape_control(a)).collect()),
        sessions: Some(sessions.to_vec()),
        session_count: Some(sessions.len() as u64),
        record_dir: Some(record_dir.display().to_string()),
        operator: Some(op.clone()),
        ..Default::default()
    };
    sessrec_core::sys::open_syslog(c"sessrec");
    let mut named: Vec<&str> = sessions
        .iter()
        .take(SYSLOG_SESSIONS_MAX)
        .map(String::as_str)
        .collect();
    let more = sessions.len().saturating_sub(SYSLOG_SESSIONS_MAX);
    let more = if more > 0 {
        format!(" (+{more} more)")
    } else {
        String::new()
    };
    if named.is_empty() {
        named.push("-");
    }
    let line = format!(
        "sessrec access: command={command} sessions={}{more} {} record_dir={}",
        named.join(","),
        describe(&op),
        escape_control(&record_dir.display().to_string()).replace(' ', "_")
    );
    match sessrec_core::access_log::append(record_dir, host, &access) {
        Ok(_) => {
            syslog_authpriv(Level::Notice, &line);
            Ok(())
        }
        Err(e) => {
            syslog_authpriv(
                Level::Error,
                &format!("{line}: refused, the access log cannot be written: {e}"),
            );
            Err(Failure::error(format!(
                "refused: every read of the records is logged, and the access log {}/{}/ cannot be written: {e}",
                record_dir.display(),
                sessrec_core::access_log::ACCESS_DIR
            )))
        }
    }
}
