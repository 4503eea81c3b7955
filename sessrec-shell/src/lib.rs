//! The sessrec-shell recorder: a setuid-root login shell / sshd ForceCommand that runs the
//! user's real shell on a new pty (or pipes), records every byte into the session's
//! tamper-evident JSON Lines record, and cannot be tampered with by the user.
//!
//! `sys` holds every foreign call; all other modules are safe code.

mod channel;
mod forward;
mod invocation;
mod masking;
mod notice;
mod recording;
mod relay;
mod session;
mod spawn;
mod start_error;
mod startup;
mod sys;
mod terminal;
mod transfer;
mod transfer_seam;

/// Runs the recorder; returns the process exit code.
pub fn run() -> i32 {
    let (caller, inherited) = match startup::harden() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("sessrec-shell: {e}");
            return 1;
        }
    };
    sessrec_core::sys::open_syslog(c"sessrec-shell");
    match channel::run(caller, inherited) {
        Ok(code) => code,
        Err(e) => {
            sessrec_core::sys::syslog_authpriv(
                sessrec_core::sys::Level::Error,
                &format!("channel not started: {e}"),
            );
            eprintln!("sessrec-shell: {e}");
            1
        }
    }
}
