//! Ties a sudo session to its login through the kernel's audit record: the exec of the command
//! sudo ran (by time, run uid and argv) in a session's `audit.jsonl`, written by
//! sessrec-audit-import. The kernel's audit session id put that exec in that session, so this
//! is a fact no user can set; it is tried before the tty and before any environment hint.
#![forbid(unsafe_code)]

use std::path::Path;

use sessrec_core::exec_args;
use sessrec_core::id::SessionId;
use sessrec_core::import::index::{LoginSession, RecordIndex};
use sessrec_core::reader;
use sessrec_core::schema::{Event, Line};
use sessrec_core::time::Timestamp;

use crate::iolog::IologMeta;

/// How far apart sudo's start and the command's exec may be.
const WINDOW_US: i64 = 2_000_000;
/// The audit file of a session, as sessrec-audit-import names it.
const AUDIT_FILE: &str = "audit.jsonl";

/// What the audit records say about one sudo session.
#[derive(Debug)]
pub enum AuditMatch<'a> {
    /// Exactly one session ran it: the session, the channel file and the exec's audit id.
    Found {
        session: &'a LoginSession,
        channel: Option<String>,
        audit_id: String,
    },
    /// Several sessions have a matching exec.
    Ambiguous(Vec<SessionId>),
    /// No audit record of it (audit off, or not imported yet).
    Absent,
}

/// The uid sudo ran the command as.
fn run_uid(meta: &IologMeta) -> Option<u32> {
    let name = meta.runuser.as_deref().unwrap_or("root");
    if let Some(n) = name.strip_prefix('#') {
        return n.parse().ok();
    }
    nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
}

/// Whether the exec's arguments are sudo's command.
fn same_command(meta: &IologMeta, exe: Option<&str>, path: Option<&str>, args: &[Vec<u8>]) -> bool {
    let text: Vec<String> = args
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    match &meta.runargv {
        Some(argv) => {
            let named = exe == Some(meta.command.as_str()) || path == Some(meta.command.as_str());
            named && text.len() == argv.len() && text[1..] == argv[1..]
        }
        // The legacy log joins path and arguments with spaces.
        None => {
            let mut joined = vec![exe.unwrap_or_default().to_string()];
            joined.extend(text.iter().skip(1).cloned());
            joined.join(" ") == meta.command
        }
    }
}

/// The execs in `dir/audit.jsonl` that are sudo's command: (channel, audit id).
fn matching_execs(dir: &Path, meta: &IologMeta, uid: u32) -> Vec<(Option<String>, String)> {
    let Ok(lines) = reader::read_file(&dir.join(AUDIT_FILE)) else {
        return Vec::new();
    };
    let maps: Vec<_> = lines
        .into_iter()
        .filter_map(Result::ok)
        .map(|l| l.value)
        .collect();
    let start = meta.start.as_micros();
    let mut found = Vec::new();
    for (i, map) in maps.iter().enumerate() {
        let Event::Exec(e) = Line::from_map(map.clone()).event else {
            continue;
        };
        let at =
            e.at.as_deref()
                .and_then(Timestamp::parse)
                .map(|t| t.as_micros());
        if e.success != Some(true)
            || e.uid != Some(uid)
            || at.is_none_or(|at| (at - start).abs() > WINDOW_US)
        {
            continue;
        }
        let Some(args) = exec_args::read(map, &maps[i + 1..]) else {
            continue;
        };
        if same_command(meta, e.exe.as_deref(), e.path.as_deref(), &args.args) {
            found.push((e.channel.clone(), e.audit_id.clone().unwrap_or_default()));
        }
    }
    found
}

/// Looks for the command's exec in the audit records of the sessions of sudo's user that were
/// open when it started.
pub fn find<'a>(meta: &IologMeta, index: &'a RecordIndex) -> AuditMatch<'a> {
    let Some(uid) = run_uid(meta) else {
        return AuditMatch::Absent;
    };
    let start = meta.start.as_micros();
    let mut hits: Vec<(&'a LoginSession, Option<String>, String)> = Vec::new();
    for s in index
        .sessions
        .iter()
        .filter(|s| s.user == meta.submituser && s.covers(start) && s.audit_session.is_some())
    {
        for (channel, id) in matching_execs(&s.dir, meta, uid) {
            hits.push((s, channel, id));
        }
    }
    let mut sessions: Vec<SessionId> = hits.iter().map(|(s, _, _)| s.id).collect();
    sessions.sort();
    sessions.dedup();
    match (sessions.len(), hits.into_iter().next()) {
        (1, Some((session, channel, audit_id))) => AuditMatch::Found {
            session,
            channel,
            audit_id,
        },
        (0, _) | (_, None) => AuditMatch::Absent,
        _ => AuditMatch::Ambiguous(sessions),
    }
}
