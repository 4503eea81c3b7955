//! Ties a sudo session to the login session it ran in, from facts the user cannot set.
//!
//! With exec audit on, first the kernel's record (see [`crate::audit_match`]): the session
//! whose `audit.jsonl` holds the exec of sudo's command at that time, as the run user, with the
//! same arguments. Otherwise, with a tty: the host, the login's unix user, and the channel whose pty was the sudo tty at
//! sudo's start time (pty numbers are reused, so time decides). Without a tty: the login sessions
//! of that user on that host with a channel open at that time; exactly one is a match, several
//! are ambiguous and stay unattributed with the candidates named (on a shared account, choosing
//! one would blame a person on the user's word). `SESSREC_SESSION` from `submitenv` or `runenv`
//! is the user's to set: it never decides, and only says whether it agreed with the facts.
#![forbid(unsafe_code)]

use sessrec_core::id::SessionId;

use crate::audit_match::AuditMatch;
use crate::iolog::IologMeta;
use sessrec_core::import::index::{ChannelSpan, LoginSession, RecordIndex};

pub const SESSION_VAR: &str = "SESSREC_SESSION";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The kernel's audit record of the command's exec (audit session, time, run uid, argv).
    Audit,
    /// Host, user, pty and time.
    Tty,
    /// No tty: the only login session of that user with a channel open at the time.
    OnlySession,
    Unattributed,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Audit => "audit",
            Method::Tty => "tty",
            Method::OnlySession => "only_session",
            Method::Unattributed => "none",
        }
    }
}

/// What the `SESSREC_SESSION` hint said, next to the facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    Absent,
    Agreed,
    Disagreed,
}

impl Hint {
    pub fn as_str(self) -> &'static str {
        match self {
            Hint::Absent => "absent",
            Hint::Agreed => "agreed",
            Hint::Disagreed => "disagreed",
        }
    }
}

#[derive(Debug)]
pub struct Attribution<'a> {
    pub method: Method,
    pub session: Option<&'a LoginSession>,
    pub channel: Option<&'a ChannelSpan>,
    pub hint: Hint,
    /// Sessions that could each have run it when the facts do not decide between them.
    pub candidates: Vec<SessionId>,
    /// What the hint claimed and why it was not followed.
    pub notes: Vec<String>,
}

/// Whether two host names name the same host (the recorder and sudo may differ in FQDN use).
pub fn same_host(a: &str, b: &str) -> bool {
    let short = |h: &str| h.split('.').next().unwrap_or(h).to_ascii_lowercase();
    a.eq_ignore_ascii_case(b) || short(a) == short(b)
}

pub fn attribute<'a>(meta: &IologMeta, index: &'a RecordIndex) -> Attribution<'a> {
    let start_us = meta.start.as_micros();
    let users_sessions = || {
        index
            .sessions
            .iter()
            .filter(|s| s.user == meta.submituser)
            .filter(|s| {
                meta.submithost
                    .as_deref()
                    .is_none_or(|h| same_host(h, &s.host))
            })
    };
    let mut audit_notes = Vec::new();
    let audit = match crate::audit_match::find(meta, index) {
        AuditMatch::Found {
            session,
            channel,
            audit_id,
        } => {
            audit_notes.push(format!(
                "the kernel audited the command's exec as {audit_id}"
            ));
            let span = channel
                .as_deref()
                .and_then(|file| session.channels.iter().find(|c| c.file == file));
            Some((Method::Audit, Some(session), span, Vec::new()))
        }
        AuditMatch::Ambiguous(ids) => {
            audit_notes.push(format!(
                "{} sessions have an audited exec of the command at that time",
                ids.len()
            ));
            None
        }
        AuditMatch::Absent => None,
    };
    let (method, session, channel, candidates) = match (audit, meta.ttyname.as_deref()) {
        (Some(found), _) => found,
        (None, Some(tty)) => {
            let best = users_sessions()
                .filter_map(|s| s.channel_at(tty, start_us).map(|c| (s, c)))
                .max_by_key(|(_, c)| c.start_us);
            match best {
                Some((s, c)) => (Method::Tty, Some(s), Some(c), Vec::new()),
                None => (Method::Unattributed, None, None, Vec::new()),
            }
        }
        (None, None) => {
            let open: Vec<&LoginSession> = users_sessions()
                .filter(|s| s.covers(start_us) && s.has_channel_open_at(start_us))
                .collect();
            match open[..] {
                [only] => (
                    Method::OnlySession,
                    Some(only),
                    only.only_channel_open_at(start_us),
                    Vec::new(),
                ),
                _ => (
                    Method::Unattributed,
                    None,
                    None,
                    open.iter().map(|s| s.id).collect(),
                ),
            }
        }
    };
    let mut notes = audit_notes;
    if candidates.len() > 1 {
        notes.push(format!(
            "{} sessions of {:?} were open without a tty to tell them apart",
            candidates.len(),
            meta.submituser
        ));
    }
    let hint = match meta.env_var(SESSION_VAR) {
        None => Hint::Absent,
        Some((_, value)) if session.is_some_and(|s| s.id.to_string() == value) => Hint::Agreed,
        Some((source, value)) => {
            notes.push(format!(
                "{SESSION_VAR} in {source} named {:?}, not followed",
                value.chars().take(64).collect::<String>()
            ));
            Hint::Disagreed
        }
    };
    Attribution {
        method,
        session,
        channel,
        hint,
        candidates,
        notes,
    }
}
