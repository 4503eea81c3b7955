//! Ties a sudo session to the login session it ran in.
//!
//! Strongest first: `SESSREC_SESSION` from `submitenv` or `runenv` — a hint the user can set to
//! anything, so accepted only when that session's unix user, time span and (when sudo had a
//! tty) pty agree; else the host, the login's unix user, and a channel whose pty was the sudo
//! tty at sudo's start time (pty numbers are reused, so time decides); else unattributed.
#![forbid(unsafe_code)]

use sessrec_core::id::SessionId;

use crate::iolog::IologMeta;
use crate::records::{ChannelSpan, LoginSession, RecordIndex};

pub const SESSION_VAR: &str = "SESSREC_SESSION";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `SESSREC_SESSION` in `submitenv`, checked.
    SubmitEnv,
    /// `SESSREC_SESSION` in `runenv` (kept by `env_keep`), checked.
    RunEnv,
    /// Host, user, pty and time.
    Tty,
    Unattributed,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::SubmitEnv => "submitenv",
            Method::RunEnv => "runenv",
            Method::Tty => "tty",
            Method::Unattributed => "none",
        }
    }
}

#[derive(Debug)]
pub struct Attribution<'a> {
    pub method: Method,
    pub session: Option<&'a LoginSession>,
    pub channel: Option<&'a ChannelSpan>,
    /// Why a stronger method was not used (e.g. a `SESSREC_SESSION` that did not check out).
    pub notes: Vec<String>,
}

/// Whether two host names name the same host (the recorder and sudo may differ in FQDN use).
pub fn same_host(a: &str, b: &str) -> bool {
    let short = |h: &str| h.split('.').next().unwrap_or(h).to_ascii_lowercase();
    a.eq_ignore_ascii_case(b) || short(a) == short(b)
}

pub fn attribute<'a>(meta: &IologMeta, index: &'a RecordIndex) -> Attribution<'a> {
    let start_us = meta.start.as_micros();
    let tty = meta.ttyname.as_deref();
    let mut notes = Vec::new();

    if let Some((source, value)) = meta.env_var(SESSION_VAR) {
        let method = if source == "submitenv" {
            Method::SubmitEnv
        } else {
            Method::RunEnv
        };
        match check_env_claim(value, meta, index, start_us, tty) {
            Ok((session, channel)) => {
                return Attribution {
                    method,
                    session: Some(session),
                    channel,
                    notes,
                }
            }
            Err(why) => notes.push(format!("{SESSION_VAR} in {source} rejected: {why}")),
        }
    }

    if let Some(tty) = tty {
        let best = index
            .sessions
            .iter()
            .filter(|s| s.user == meta.submituser)
            .filter(|s| {
                meta.submithost
                    .as_deref()
                    .is_none_or(|h| same_host(h, &s.host))
            })
            .filter_map(|s| s.channel_at(tty, start_us).map(|c| (s, c)))
            .max_by_key(|(_, c)| c.start_us);
        if let Some((session, channel)) = best {
            return Attribution {
                method: Method::Tty,
                session: Some(session),
                channel: Some(channel),
                notes,
            };
        }
    }
    Attribution {
        method: Method::Unattributed,
        session: None,
        channel: None,
        notes,
    }
}

fn check_env_claim<'a>(
    value: &str,
    meta: &IologMeta,
    index: &'a RecordIndex,
    start_us: i64,
    tty: Option<&str>,
) -> Result<(&'a LoginSession, Option<&'a ChannelSpan>), String> {
    let id = SessionId::parse(value).ok_or_else(|| format!("{value:?} is not a session id"))?;
    let session = index
        .find(id)
        .ok_or_else(|| format!("no session {id} in the record tree"))?;
    if session.user != meta.submituser {
        return Err(format!(
            "session {id} belongs to {:?}, sudo was run by {:?}",
            session.user, meta.submituser
        ));
    }
    if !session.covers(start_us) {
        return Err(format!("sudo started outside session {id}"));
    }
    match tty {
        None => Ok((session, None)),
        Some(tty) => session
            .channel_at(tty, start_us)
            .map(|c| (session, Some(c)))
            .ok_or_else(|| format!("no channel of session {id} had {tty} then")),
    }
}
