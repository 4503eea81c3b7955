//! What actually ran: the `exec`, `connect` and `audit_gap` lines of a session's `audit.jsonl`
//! (the kernel's audit records, imported by sessrec-audit-import) as timeline entries, execs
//! labelled "ran" and indented by process ancestry within their channel; the counts `list`
//! shows; the matches `search --exec` / `--connect` finds; and the note `show` gives when a
//! session has no such record.
#![forbid(unsafe_code)]

use std::collections::HashMap;

use serde_json::{json, Map, Value};
use sessrec_core::exec_args::ExecArgs;
use sessrec_core::schema::{Connect, ConnectEnd, Event, EventBody, Login};

use crate::entry::Entry;
use crate::eventtext::{event_text, exec_args_text, exec_event_text};
use crate::records::{Item, RecordFile};
use crate::store::FileKind;

/// The timeline column of entries not tied to one channel.
const AUDIT_COLUMN: &str = "audit";

/// Process depth per channel: how many audited ancestors an exec's process has.
#[derive(Default)]
struct Ancestry {
    depth: HashMap<(String, u32), usize>,
}

impl Ancestry {
    fn place(&mut self, channel: &str, pid: Option<u32>, ppid: Option<u32>) -> usize {
        let key = |p: u32| (channel.to_string(), p);
        let depth = match (pid, ppid) {
            // The same process running a new program stays where it was.
            (Some(p), _) if self.depth.contains_key(&key(p)) => self.depth[&key(p)],
            (_, Some(pp)) => self.depth.get(&key(pp)).map_or(0, |d| d + 1),
            _ => 0,
        };
        if let Some(p) = pid {
            self.depth.insert(key(p), depth);
        }
        depth
    }
}

/// The channel column of an audit line: its channel file without `.jsonl`.
fn column(channel: &Option<String>) -> String {
    channel
        .as_deref()
        .filter(|c| !c.is_empty())
        .map_or(AUDIT_COLUMN.to_string(), |c| {
            crate::escape::escape_visible(c.trim_end_matches(".jsonl"))
        })
}

/// One audit line with the `command.part` lines that continue its arguments.
struct AuditLine {
    line_no: u64,
    time_us: Option<i64>,
    event: Event,
    value: Map<String, Value>,
    parts: Vec<Map<String, Value>>,
}

/// Reads the lines of `audit.jsonl`, each exec with its continuation lines; damage reported.
fn audit_lines(f: &RecordFile, damaged: &mut Vec<(u64, String)>) -> Vec<AuditLine> {
    let items = match f.items() {
        Ok(i) => i,
        Err(e) => {
            damaged.push((0, format!("cannot read: {e}")));
            return Vec::new();
        }
    };
    let mut lines: Vec<AuditLine> = Vec::new();
    let mut want_parts = 0usize;
    for item in items {
        match item {
            Item::Event {
                line_no,
                time_us,
                event,
                value,
            } => {
                if let (Event::CommandPart(_), Some(last)) = (&*event, lines.last_mut()) {
                    if want_parts > 0 {
                        want_parts -= 1;
                        last.parts.push(value);
                        continue;
                    }
                }
                want_parts = match &*event {
                    Event::Exec(_) => ExecArgs::parts_after(&value),
                    _ => 0,
                };
                lines.push(AuditLine {
                    line_no,
                    time_us,
                    event: *event,
                    value,
                    parts: Vec::new(),
                });
            }
            Item::Damaged { line_no, problem } => damaged.push((line_no, problem)),
            Item::Frame { .. } => {}
        }
    }
    lines
}

/// The timeline entries of a session's `audit.jsonl`.
pub fn audit_entries(f: &RecordFile, out: &mut Vec<Entry>) {
    let mut damaged = Vec::new();
    let mut ancestry = Ancestry::default();
    let lines = audit_lines(f, &mut damaged);
    // sshd's forwards whose end the record holds; the others say that it does not.
    let ended: std::collections::HashSet<&str> = lines
        .iter()
        .filter_map(|l| match &l.event {
            Event::ConnectEnd(e) => e.audit_id.as_deref(),
            _ => None,
        })
        .collect();
    for l in &lines {
        let time_us = l.time_us.unwrap_or(i64::MAX);
        let (kind, file, text) = match &l.event {
            Event::Exec(e) => {
                let file = column(&e.channel);
                let depth = ancestry.place(&file, e.pid, e.ppid);
                let text = exec_event_text(&l.event, &l.value, &l.parts, depth);
                ("ran", file, text)
            }
            Event::Connect(c) => {
                let mut text = event_text(&l.event, &l.value, None);
                let unended = c.audit_id.as_deref().is_none_or(|id| !ended.contains(id));
                if crate::forward_view::is_sshd(c)
                    && unended
                    && c.result.as_deref() != Some("failed")
                {
                    text.push_str("; no end recorded (still open, or it ended unseen)");
                }
                (Connect::TYPE, column(&c.channel), text)
            }
            Event::ConnectEnd(e) => (
                ConnectEnd::TYPE,
                column(&e.channel),
                event_text(&l.event, &l.value, None),
            ),
            other => (
                other.kind(),
                AUDIT_COLUMN.to_string(),
                event_text(other, &l.value, None),
            ),
        };
        let mut details = l.value.clone();
        if let Event::Exec(_) = l.event {
            if let Some(args) = sessrec_core::exec_args::read(&l.value, &l.parts) {
                details.insert("arguments".into(), json!(args.lossy()));
            }
        }
        details.insert("line".into(), l.line_no.into());
        let mut verbose = vec![format!("line={}", l.line_no)];
        for (k, v) in l.event.to_fields() {
            verbose.push(format!(
                "{}={}",
                crate::escape::escape_visible(&k),
                crate::eventtext::value_text(&v)
            ));
        }
        out.push(Entry {
            time_us,
            file,
            kind: kind.to_string(),
            text,
            details: Value::Object(details),
            verbose,
        });
    }
    for (line_no, problem) in damaged {
        out.push(Entry {
            time_us: i64::MAX,
            file: AUDIT_COLUMN.into(),
            kind: "damaged".into(),
            text: format!(
                "audit.jsonl line {line_no}: {}",
                crate::escape::escape_visible(&problem)
            ),
            details: json!({"line": line_no, "problem": problem}),
            verbose: Vec::new(),
        });
    }
}

/// When a session has no `audit.jsonl`, says so at its start: its commands are only the ones
/// rebuilt from keystrokes.
pub fn note_audit_off(files: &[RecordFile], out: &mut Vec<Entry>) {
    if files.iter().any(|f| f.kind == FileKind::Audit) {
        return;
    }
    let Some(session) = files.iter().find(|f| f.kind == FileKind::Session) else {
        return;
    };
    let bound = matches!(
        &session.start_event,
        Some(Event::Login(Login {
            audit_session: Some(_),
            ..
        }))
    );
    let why = if bound {
        "the login has an audit session, but no exec record was imported (auditd or sessrec-audit-import not running, or no rules loaded)"
    } else {
        "the login has no audit session (pam_loginuid does not run before pam_sessrec)"
    };
    out.insert(
        0,
        Entry {
            time_us: session.start_us.unwrap_or(i64::MIN),
            file: "session".into(),
            kind: "exec-audit".into(),
            text: format!(
                "exec audit was off for this session: {why}; commands below are only those rebuilt from keystrokes"
            ),
            details: json!({"exec_audit": false, "audit_session": bound}),
            verbose: Vec::new(),
        },
    );
}

/// A match in the audit record: when, on which channel, what (exec or connect), the text.
pub struct AuditHit {
    pub time_us: i64,
    pub channel: String,
    pub stream: &'static str,
    pub text: String,
}

/// Searches the session's `audit.jsonl` (if any): `execs` each exec's arguments joined by
/// spaces (and its program path), `connects` each connection's `address:port` and program.
pub fn search(
    f: &RecordFile,
    regex: &regex::bytes::Regex,
    execs: bool,
    connects: bool,
) -> Vec<AuditHit> {
    let mut damaged = Vec::new();
    let mut hits = Vec::new();
    for l in audit_lines(f, &mut damaged) {
        let (stream, channel, haystack) = match &l.event {
            Event::Exec(e) if execs => {
                let args = sessrec_core::exec_args::read(&l.value, &l.parts)
                    .map(|a| a.lossy().join(" "))
                    .unwrap_or_default();
                let exe = e.exe.clone().unwrap_or_default();
                ("exec", &e.channel, format!("{args}\n{exe}"))
            }
            Event::Connect(c) if connects => {
                let port = c.port.map(|p| p.to_string()).unwrap_or_default();
                let text = format!(
                    "{}:{port}\n{}",
                    c.address.as_deref().unwrap_or_default(),
                    c.exe.as_deref().unwrap_or_default()
                );
                ("connect", &c.channel, text)
            }
            _ => continue,
        };
        if regex.is_match(haystack.as_bytes()) {
            let text = match &l.event {
                Event::Exec(_) => exec_args_text(&l.value, &l.parts),
                other => event_text(other, &l.value, None),
            };
            hits.push(AuditHit {
                time_us: l.time_us.unwrap_or(0),
                channel: column(channel),
                stream,
                text,
            });
        }
    }
    hits
}

/// `export --format json`: the lines of the session's `audit.jsonl` that belong to the
/// exported channels (all of them when every channel is exported), one object each as the
/// other lines are, the arguments of each exec whole under `arguments`.
pub fn export_json(
    out: &mut dyn std::io::Write,
    session: &crate::store::SessionRef,
    exported: &[RecordFile],
) -> std::io::Result<()> {
    let Some(path) = sessrec_core::stored::find(&session.dir.join(crate::store::AUDIT_FILE)) else {
        return Ok(());
    };
    let all = crate::store::session_files(&session.dir)?
        .into_iter()
        .filter(|(k, _, _)| matches!(k, FileKind::Channel(_)))
        .count();
    let channels: Vec<&str> = exported
        .iter()
        .filter(|f| matches!(f.kind, FileKind::Channel(_)))
        .map(|f| f.name.as_str())
        .collect();
    let whole = channels.len() == all;
    let f = RecordFile::open(FileKind::Audit, crate::store::AUDIT_FILE.into(), path);
    let mut damaged = Vec::new();
    for l in audit_lines(&f, &mut damaged) {
        let channel = match &l.event {
            Event::Exec(e) => e.channel.as_deref(),
            Event::Connect(c) => c.channel.as_deref(),
            Event::ConnectEnd(e) => e.channel.as_deref(),
            _ => None,
        };
        if !whole && !channel.is_some_and(|c| channels.contains(&c)) {
            continue;
        }
        let mut v = json!({
            "session": session.id, "file": crate::store::AUDIT_FILE, "line": l.line_no,
            "event": l.value,
        });
        if let Some(args) = sessrec_core::exec_args::read(&l.value, &l.parts) {
            v["arguments"] = json!(args.lossy());
        }
        serde_json::to_writer(&mut *out, &v)?;
        out.write_all(b"\n")?;
    }
    for (line_no, problem) in damaged {
        let v = json!({"session": session.id, "file": crate::store::AUDIT_FILE, "line": line_no, "damaged": problem});
        serde_json::to_writer(&mut *out, &v)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestry_indents_children_and_keeps_a_re_exec_in_place() {
        let mut a = Ancestry::default();
        assert_eq!(a.place("channel-1", Some(10), Some(1)), 0);
        assert_eq!(a.place("channel-1", Some(11), Some(10)), 1);
        assert_eq!(a.place("channel-1", Some(12), Some(11)), 2);
        assert_eq!(a.place("channel-1", Some(11), Some(10)), 1, "re-exec");
        assert_eq!(a.place("channel-2", Some(11), Some(10)), 0, "other channel");
    }
}
