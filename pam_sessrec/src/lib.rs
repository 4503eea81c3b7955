//! pam_sessrec: the PAM session module that binds each SSH login to a verified identity, makes
//! sure the recorder cannot be skipped, writes the session's `login`/`logout` record and hands a
//! grant to sessrec-shell. See pam_sessrec(8).
//!
//! The entry points never write to stdout/stderr, never call openlog (pam_syslog logs under the
//! application's ident), and catch panics themselves (and pam-bindings again at the boundary,
//! under `panic = "unwind"`), with a panic hook that logs instead of printing.

pub mod actor;
pub mod args;
pub mod authinfo;
pub mod channels;
pub mod launch;
pub mod session;
pub mod sshkey;
mod sys;

use std::ffi::CStr;

use pam::constants::{PamFlag, PamResultCode, PAM_TEXT_INFO};
use pam::conv::Conv;
use pam::module::{PamHandle, PamHooks};
use sessrec_core::grant::GrantDir;

use crate::args::ModuleArgs;
use crate::session::{Level, Log, OpenRequest, Verdict};
use crate::sys::{Priority, StringItem};

struct SessrecModule;
pam::pam_hooks!(SessrecModule);

/// Sends module messages to pam_syslog; debug messages only with the `debug` argument.
struct PamLog<'a> {
    pamh: &'a PamHandle,
    debug: bool,
}

impl Log for PamLog<'_> {
    fn log(&mut self, level: Level, message: &str) {
        let priority = match level {
            Level::Alert => Priority::Alert,
            Level::Error => Priority::Err,
            Level::Warning => Priority::Warning,
            Level::Notice => Priority::Notice,
            Level::Info => Priority::Info,
            Level::Debug if self.debug => Priority::Debug,
            Level::Debug => return,
        };
        sys::syslog(self.pamh, priority, message);
    }
}

fn parse_args(pamh: &PamHandle, args: &[&CStr]) -> Option<ModuleArgs> {
    match ModuleArgs::parse(args.iter().map(|a| a.to_bytes())) {
        Ok(parsed) => Some(parsed),
        Err(e) => {
            sys::syslog(
                pamh,
                Priority::Err,
                &format!("bad module arguments, failing closed: {e}"),
            );
            None
        }
    }
}

fn code(verdict: Verdict) -> PamResultCode {
    match verdict {
        Verdict::Ignore => PamResultCode::PAM_IGNORE,
        Verdict::Success => PamResultCode::PAM_SUCCESS,
        Verdict::Refuse => PamResultCode::PAM_SESSION_ERR,
    }
}

fn service_of(pamh: &PamHandle) -> String {
    sys::get_item(pamh, StringItem::Service)
        .map(|s| String::from_utf8_lossy(&s).into_owned())
        .unwrap_or_default()
}

fn open_session(pamh: &mut PamHandle, args: &[&CStr], flags: PamFlag) -> PamResultCode {
    let Some(args) = parse_args(pamh, args) else {
        return PamResultCode::PAM_SESSION_ERR;
    };
    let service = service_of(pamh);
    if !args.acts_on(&service) {
        // Nothing else is read for services outside the list, not even the config.
        return PamResultCode::PAM_IGNORE;
    }
    let Some(user) = sys::get_item(pamh, StringItem::User).and_then(|u| String::from_utf8(u).ok())
    else {
        sys::syslog(
            pamh,
            Priority::Err,
            "no PAM_USER (or not UTF-8): session refused",
        );
        return PamResultCode::PAM_SESSION_ERR;
    };
    let rhost = sys::get_item(pamh, StringItem::RemoteHost);
    let ssh_connection = sys::getenv(pamh, c"SSH_CONNECTION");
    let auth_info = sys::getenv(pamh, c"SSH_AUTH_INFO_0");
    let request = OpenRequest {
        args: &args,
        service: &service,
        user: &user,
        rhost: rhost.as_deref(),
        ssh_connection: ssh_connection.as_deref(),
        auth_info: auth_info.as_deref(),
        monitor_pid: std::process::id(),
    };
    let grants = GrantDir::default();
    let mut log = PamLog {
        pamh,
        debug: args.debug,
    };
    session::sweep_stale_grants(&grants, &mut log);
    let opened = session::open(&request, &grants, &mut log);
    if opened.verdict != Verdict::Success {
        return code(opened.verdict);
    }
    if let Some(state) = opened.state {
        if let Some(env) = &opened.env {
            if let Err(rc) = sys::putenv(pamh, env) {
                sys::syslog(
                    pamh,
                    Priority::Err,
                    &format!("pam_putenv failed ({rc}); session refused"),
                );
                let mut log = PamLog {
                    pamh,
                    debug: args.debug,
                };
                session::abandon(&state, &grants, &mut log, "pam_putenv failed");
                return PamResultCode::PAM_SESSION_ERR;
            }
        }
        if let Err(rc) = sys::set_state(pamh, state.clone()) {
            // close_session can still find the session through SESSREC_SESSION and the grant.
            sys::syslog(
                pamh,
                Priority::Warning,
                &format!("pam_set_data failed ({rc})"),
            );
        }
    }
    if let Some(notice) = &opened.notice {
        if flags & pam::constants::PAM_SILENT == 0 {
            if let Ok(Some(conv)) = pamh.get_item::<Conv>() {
                // A conversation failure must not fail the login.
                let _ = conv.send(PAM_TEXT_INFO, notice);
            }
        }
    }
    PamResultCode::PAM_SUCCESS
}

fn close_session(pamh: &mut PamHandle, args: &[&CStr]) -> PamResultCode {
    let Some(args) = parse_args(pamh, args) else {
        return PamResultCode::PAM_SESSION_ERR;
    };
    if !args.acts_on(&service_of(pamh)) {
        return PamResultCode::PAM_IGNORE;
    }
    let grants = GrantDir::default();
    let state = sys::get_state(pamh).or_else(|| {
        let named = sys::getenv(pamh, c"SESSREC_SESSION")?;
        session::state_from_grant(&grants, &named, std::process::id())
    });
    let mut log = PamLog {
        pamh,
        debug: args.debug,
    };
    match state {
        Some(state) => code(session::close(&state, &grants, &mut log)),
        None => {
            session::sweep_stale_grants(&grants, &mut log);
            PamResultCode::PAM_IGNORE
        }
    }
}

/// Runs an entry point with panics caught here and reported to syslog rather than stderr
/// (the default hook would print into sshd's stderr). The host's hook is put back afterwards;
/// a panic fails the session closed.
fn guarded(entry: impl FnOnce() -> PamResultCode) -> PamResultCode {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        sessrec_core::sys::syslog_authpriv(
            sessrec_core::sys::Level::Error,
            &format!("pam_sessrec: internal error, session refused: {info}"),
        );
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(entry));
    std::panic::set_hook(previous);
    match result {
        Ok(code) => code,
        Err(payload) => {
            // Dropping a payload can itself panic; never let that unwind further.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(payload)));
            PamResultCode::PAM_SESSION_ERR
        }
    }
}

impl PamHooks for SessrecModule {
    fn sm_open_session(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        guarded(|| open_session(pamh, &args, flags))
    }

    fn sm_close_session(pamh: &mut PamHandle, args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        guarded(|| close_session(pamh, &args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_fails_closed_and_restores_the_hook() {
        assert_eq!(
            guarded(|| panic!("deliberate")),
            PamResultCode::PAM_SESSION_ERR
        );
        assert_eq!(
            guarded(|| PamResultCode::PAM_IGNORE),
            PamResultCode::PAM_IGNORE
        );
    }
}
