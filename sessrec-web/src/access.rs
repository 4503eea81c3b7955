//! Every page that shows record content is logged before it is served, in the same chained
//! access log as the CLI's reads (`<record_dir>/access/`), naming the auditor, the browser's
//! address and what was looked at. A page whose line cannot be written is refused.
#![forbid(unsafe_code)]

use std::path::Path;

use sessrec::escape::escape_control;
use sessrec_core::schema::{Access, Operator};

use crate::auth::Login;

/// One page view: `command` names the page (`web-list`, `web-show`, `web-play`, `web-cast`),
/// `args` what the request asked for, `sessions` the sessions shown.
pub fn log(
    record_dir: &Path,
    host: &str,
    login: &Login,
    remote: crate::remote::Remote,
    command: &str,
    args: &[String],
    sessions: &[String],
) -> Result<(), String> {
    let operator = operator(login, remote);
    let access = Access {
        command: Some(command.to_string()),
        args: Some(args.iter().map(|a| escape_control(a)).collect()),
        sessions: Some(sessions.to_vec()),
        session_count: Some(sessions.len() as u64),
        record_dir: Some(record_dir.display().to_string()),
        operator: Some(operator),
        ..Default::default()
    };
    sessrec_core::access_log::append(record_dir, host, &access)
        .map(|_| ())
        .map_err(|e| format!("the access log cannot be written: {e}"))
}

/// The auditor behind a request as records name an operator: the login, this console's
/// process, and where the request came from.
pub fn operator(login: &Login, remote: crate::remote::Remote) -> Operator {
    let mut operator = Operator {
        uid: Some(login.uid),
        user: Some(login.user.clone()),
        pid: Some(std::process::id()),
        ..Default::default()
    };
    remote.fill(&mut operator);
    operator
}
