//! `sessrec show`: the merged timeline of a session.
#![forbid(unsafe_code)]

use std::io::Write;

use serde_json::{json, Map, Value};
use sessrec_core::command::{Completeness, RecordedCommand};
use sessrec_core::exec_args::ExecArgs;
use sessrec_core::record::Stream;
use sessrec_core::schema::{
    header_key, ChannelStart, Event, EventBody, SudoStart, BASE64_SUFFIX, BYTES_SUFFIX,
    PARTS_SUFFIX,
};

use crate::context::{exit, CmdResult, Context, Failure};
use crate::escape::escape_control;
use crate::eventtext::{event_text, value_text};
use crate::records::{session_record_files, Item, RecordFile};
use crate::store::FileKind;
use crate::timespec::format_offset;
use crate::typed::TypedCommands;

pub use crate::entry::Entry;

/// The `--verbose` lines of an event: its place in the file and every field it holds.
fn verbose_of(event: &Event, value: &Map<String, Value>, line_no: u64) -> Vec<String> {
    let mut lines = vec![format!("line={line_no}")];
    for k in [
        header_key::SEQ,
        header_key::TIME,
        header_key::USER,
        header_key::ACTOR,
    ] {
        if let Some(v) = value.get(k) {
            lines.push(format!("{k}={}", value_text(v)));
        }
    }
    for (k, v) in event.to_fields() {
        lines.push(format!(
            "{}={}",
            crate::escape::escape_visible(&k),
            value_text(&v)
        ));
    }
    lines
}

/// Builds the timeline of every file of a session.
pub fn timeline(files: &[RecordFile]) -> Vec<Entry> {
    let mut entries = Vec::new();
    for f in files {
        match f.kind {
            FileKind::Session => session_entries(f, &mut entries),
            FileKind::Channel(_) | FileKind::Sudo => channel_entries(f, &mut entries),
            FileKind::Audit => crate::execs::audit_entries(f, &mut entries),
        }
    }
    crate::execs::note_audit_off(files, &mut entries);
    // Stable: entries of one file keep their order at equal times.
    entries.sort_by_key(|e| e.time_us);
    entries
}

fn short_name(f: &RecordFile) -> String {
    f.name.trim_end_matches(".jsonl").to_string()
}

fn session_entries(f: &RecordFile, out: &mut Vec<Entry>) {
    let items = match f.items() {
        Ok(i) => i,
        Err(e) => {
            out.push(Entry {
                time_us: i64::MIN,
                file: "session".into(),
                kind: "damaged".into(),
                text: format!("cannot read: {e}"),
                details: Value::Null,
                verbose: Vec::new(),
            });
            return;
        }
    };
    for item in items {
        match item {
            Item::Event {
                time_us,
                event,
                value,
                line_no,
            } => {
                let t = time_us.unwrap_or(i64::MIN);
                let kind = event.kind().to_string();
                let text = event_text(&event, &value, None);
                let verbose = verbose_of(&event, &value, line_no);
                out.push(Entry {
                    time_us: t,
                    file: "session".into(),
                    kind,
                    text,
                    details: with_line(value, line_no),
                    verbose,
                });
            }
            Item::Damaged { line_no, problem } => out.push(damaged(f, line_no, &problem)),
            Item::Frame { .. } => {}
        }
    }
}

fn damaged(f: &RecordFile, line_no: u64, problem: &str) -> Entry {
    Entry {
        time_us: i64::MAX,
        file: short_name(f),
        kind: "damaged".into(),
        text: format!("line {line_no}: {}", escape_control(problem)),
        details: json!({"line": line_no, "problem": problem}),
        verbose: Vec::new(),
    }
}

fn with_line(mut value: Map<String, Value>, line_no: u64) -> Value {
    for k in [
        header_key::V,
        header_key::HOST,
        header_key::SESSION,
        header_key::FILE,
        header_key::PREV,
    ] {
        value.remove(k);
    }
    value.insert("line".into(), line_no.into());
    Value::Object(value)
}

/// A `sudo.start` line's fields with its arguments whole, as the list `argv` (in place of
/// the long form `cmdline` and its counts) and `argv_complete`.
fn sudo_start_details(
    mut value: Map<String, Value>,
    args: Option<&ExecArgs>,
) -> Map<String, Value> {
    let Some(args) = args else {
        return value;
    };
    let long_form = SudoStart {
        cmdline: Some(String::new()),
        ..Default::default()
    };
    for k in long_form.to_fields().unwrap_or_default().keys() {
        for suffix in ["", BASE64_SUFFIX, BYTES_SUFFIX, PARTS_SUFFIX] {
            value.remove(&format!("{k}{suffix}"));
        }
    }
    let whole = SudoStart {
        argv: Some(args.lossy()),
        ..Default::default()
    };
    value.extend(whole.to_fields().unwrap_or_default());
    value.insert(
        "argv_complete".into(),
        (args.completeness == Completeness::Whole).into(),
    );
    value
}

/// The details of `channel.start` with the command whole in place of its first piece.
fn start_details(
    mut value: Map<String, Value>,
    command: Option<&RecordedCommand>,
) -> Map<String, Value> {
    let Some(c) = command else {
        return value;
    };
    let whole = ChannelStart {
        command: Some(c.text().into_owned()),
        command_b64: std::str::from_utf8(&c.bytes).is_err().then(|| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(&c.bytes)
        }),
        ..Default::default()
    };
    let removed = ChannelStart {
        command: Some(String::new()),
        command_b64: Some(String::new()),
        command_parts: Some(0),
        ..Default::default()
    };
    for k in removed.to_fields().unwrap_or_default().keys() {
        value.remove(k);
    }
    value.extend(whole.to_fields().unwrap_or_default());
    value.insert("command_complete".into(), c.is_whole().into());
    value
}

fn channel_entries(f: &RecordFile, out: &mut Vec<Entry>) {
    let start_us = f.start_us.unwrap_or(0);
    let items = match f.items() {
        Ok(i) => i,
        Err(e) => {
            out.push(damaged(f, 0, &format!("cannot read: {e}")));
            return;
        }
    };
    // Commands are reconstructed from pty input of channels (sudo input repeats the same
    // keystrokes, so it is not reconstructed twice).
    let pty = rebuilds_lines(f);
    let (cols, rows) = f.geometry();
    let mut typed = pty.then(|| TypedCommands::new(short_name(f), start_us, cols, rows));
    let mut input_bytes = 0u64;
    let mut last_off = 0u64;
    for item in items {
        match item {
            Item::Frame {
                off_us,
                stream,
                data,
                echo_off,
            } => {
                last_off = last_off.max(off_us);
                match (stream, typed.as_mut()) {
                    (Stream::Input, Some(t)) => t.input(off_us, &data, echo_off, out),
                    (Stream::Input, None) => input_bytes += data.len() as u64,
                    (Stream::Output | Stream::Stderr, Some(t)) => t.output(off_us, &data, out),
                    _ => {}
                }
            }
            Item::Event {
                time_us,
                event,
                value,
                line_no,
            } => {
                if let Event::CommandPart(_) = *event {
                    // Shown whole with its channel.start.
                    continue;
                }
                // The file's own start carries the command read whole with its parts.
                let command = match &*event {
                    Event::ChannelStart(_) | Event::SudoStart(_) if line_no == 1 => {
                        f.command.clone()
                    }
                    Event::ChannelStart(_) => sessrec_core::command::assemble(&value, []),
                    _ => None,
                };
                if let (Event::Resize(resize), Some(t)) = (&*event, typed.as_mut()) {
                    let (c, r) = crate::geometry::emulated(
                        resize.cols.unwrap_or(0),
                        resize.rows.unwrap_or(0),
                    );
                    t.resize(c, r);
                }
                let text = event_text(&event, &value, command.as_ref());
                let verbose = verbose_of(&event, &value, line_no);
                let value = match &*event {
                    Event::SudoStart(_) => sudo_start_details(value, f.sudo_args.as_ref()),
                    _ => start_details(value, command.as_ref()),
                };
                out.push(Entry {
                    time_us: time_us.unwrap_or(start_us + last_off as i64),
                    file: short_name(f),
                    kind: event.kind().to_string(),
                    text,
                    details: with_line(value, line_no),
                    verbose,
                });
            }
            Item::Damaged { line_no, problem } => out.push(damaged(f, line_no, &problem)),
        }
    }
    if let Some(t) = typed {
        t.finish(out);
    }
    if input_bytes > 0 {
        out.push(Entry {
            time_us: start_us + last_off as i64,
            file: short_name(f),
            kind: "stdin".into(),
            text: format!("{input_bytes} bytes on standard input (pipe mode: not a terminal, no command lines)"),
            details: json!({"bytes": input_bytes}),
            verbose: Vec::new(),
        });
    }
}

/// Whether `show` rebuilds command lines from this file's input (a pty channel).
pub fn rebuilds_lines(f: &RecordFile) -> bool {
    !f.is_pipe() && matches!(f.kind, FileKind::Channel(_))
}

/// The lines typed in a pty channel that the screen never showed (`no echo`), each with the
/// offset of its Enter in µs: for transcripts that must hold them.
pub fn unechoed_lines(f: &RecordFile) -> Vec<(u64, String)> {
    if !rebuilds_lines(f) {
        return Vec::new();
    }
    let mut entries = Vec::new();
    channel_entries(f, &mut entries);
    let mut lines: Vec<(u64, String)> = entries
        .iter()
        .filter(|e| e.details.get("no_echo") == Some(&Value::Bool(true)))
        .filter_map(|e| {
            let keys = e.details.get("keys")?.as_str()?.to_string();
            let off = e.details.get("offset_s")?.as_f64()?;
            Some(((off * 1e6).round() as u64, keys))
        })
        .collect();
    lines.sort_by_key(|(off, _)| *off);
    lines
}

pub fn run(ctx: &Context) -> CmdResult {
    let arg = &ctx.args.positional[0];
    let (session_arg, channel) = crate::store::split_target(arg);
    let session = ctx.tree.resolve(&session_arg).map_err(Failure::error)?;
    let mut files = session_record_files(&session)
        .map_err(|e| Failure::error(format!("{}: {e}", session.dir.display())))?;
    if let Some(c) = &channel {
        files.retain(|f| f.name == *c || matches!(f.kind, FileKind::Session | FileKind::Audit));
    }
    let mut entries = timeline(&files);
    if let Some(c) = &channel {
        // The audit record of the other channels stays out.
        let column = c.trim_end_matches(".jsonl");
        entries.retain(|e| e.file == "session" || e.file == column || e.file == "audit");
    }
    let origin = entries
        .iter()
        .map(|e| e.time_us)
        .find(|t| *t != i64::MIN)
        .unwrap_or(session.start_hint_us);
    let mut out = crate::output::stdout();
    let verbose = ctx.args.flag("--verbose");
    if ctx.args.flag("--json") {
        for e in &entries {
            let v = json!({
                "session": session.id,
                "time": (e.time_us != i64::MIN && e.time_us != i64::MAX).then(|| sessrec_core::time::Timestamp::from_micros(e.time_us).to_string()),
                "offset_s": (e.time_us != i64::MIN && e.time_us != i64::MAX).then(|| (e.time_us - origin) as f64 / 1e6),
                "file": e.file,
                "type": e.kind,
                "text": e.text,
                "details": e.details,
            });
            serde_json::to_writer(&mut out, &v).map_err(|e| Failure::error(e.to_string()))?;
            writeln!(out)?;
        }
    } else {
        writeln!(
            out,
            "session {}  ({})",
            escape_control(&session.id),
            crate::records::path_display(&session.dir)
        )?;
        for e in &entries {
            let (abs, rel) = if e.time_us == i64::MIN || e.time_us == i64::MAX {
                ("?".to_string(), "?".to_string())
            } else {
                (
                    crate::eventtext::timeline_time(e.time_us),
                    format_offset(e.time_us - origin),
                )
            };
            writeln!(
                out,
                "{abs:<24} {rel:>12}  {:<12} {:<14} {}",
                e.file, e.kind, e.text
            )?;
            if verbose {
                for line in &e.verbose {
                    writeln!(out, "{:<24} {:>12}  {:<12} {:<14}   {line}", "", "", "", "")?;
                }
            }
        }
    }
    out.flush()?;
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, fields: Value) -> Event {
        match fields {
            Value::Object(m) => Event::from_fields(kind, m),
            _ => unreachable!(),
        }
    }

    #[test]
    fn fields_of_a_newer_writer_are_shown_with_a_known_event() {
        let fields = json!({"reason": "exit", "exit_code": 0, "cgroup_peak_kib": 512});
        let end = event("channel.end", fields.clone());
        let Value::Object(line) = fields else {
            unreachable!()
        };
        assert_eq!(
            event_text(&end, &line, None),
            "end exit 0 (exit)   [cgroup_peak_kib=512]"
        );
    }

    #[test]
    fn an_unknown_event_is_shown_whole() {
        let fields = json!({"conn": "10.0.0.1:22", "bytes": 5});
        let e = event("tunnel.open", fields.clone());
        let Value::Object(line) = fields else {
            unreachable!()
        };
        assert_eq!(event_text(&e, &line, None), "bytes=5 conn=10.0.0.1:22");
    }
}
