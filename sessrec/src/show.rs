//! `sessrec show`: the merged timeline of a session.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::io::Write;

use serde_json::{json, Map, Value};
use sessrec_core::command::{RecordedCommand, PART_TYPE};
use sessrec_core::record::Stream;

use crate::conceal::ScreenWatch;
use crate::context::{exit, CmdResult, Context, Failure};
use crate::escape::escape_control;
use crate::lineedit::{LineEditor, TypedLine};
use crate::records::{session_record_files, Item, RecordFile};
use crate::store::FileKind;
use crate::summary::get_str;
use crate::timespec::{format_duration, format_offset};

/// One timeline entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub time_us: i64,
    pub file: String,
    pub kind: String,
    /// Human text (already escaped).
    pub text: String,
    pub details: Value,
}

/// How long after Enter the echo of a line may still arrive.
const ECHO_GRACE_US: u64 = 500_000;
/// Output kept for echo comparison.
const ECHO_BUFFER_MAX: usize = 256 * 1024;

/// Builds the timeline of every file of a session.
pub fn timeline(files: &[RecordFile]) -> Vec<Entry> {
    let mut entries = Vec::new();
    for f in files {
        match f.kind {
            FileKind::Session => session_entries(f, &mut entries),
            FileKind::Channel(_) | FileKind::Sudo => channel_entries(f, &mut entries),
        }
    }
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
            });
            return;
        }
    };
    for item in items {
        match item {
            Item::Event {
                time_us,
                value,
                line_no,
            } => {
                let t = time_us.unwrap_or(i64::MIN);
                let kind = get_str(&value, "type").to_string();
                let text = match kind.as_str() {
                    "login" => login_text(&value),
                    "logout" => logout_text(&value),
                    _ => generic_text(&value),
                };
                out.push(Entry {
                    time_us: t,
                    file: "session".into(),
                    kind,
                    text,
                    details: with_line(value, line_no),
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
    }
}

fn with_line(mut value: Map<String, Value>, line_no: u64) -> Value {
    for k in ["v", "host", "session", "file", "prev"] {
        value.remove(k);
    }
    value.insert("line".into(), line_no.into());
    Value::Object(value)
}

fn s(v: &Map<String, Value>, k: &str) -> String {
    escape_control(get_str(v, k))
}

fn login_text(v: &Map<String, Value>) -> String {
    let mut t = format!("{} as {}", s(v, "actor"), s(v, "user"));
    let source = get_str(v, "actor_source");
    let verified = v.get("verified").and_then(Value::as_bool);
    t.push_str(&match (source, verified) {
        (_, Some(false)) => " (identity UNVERIFIED: no PAM grant)".to_string(),
        ("", _) => String::new(),
        (src, _) => format!(" (identity from {})", escape_control(src)),
    });
    if !get_str(v, "src_ip").is_empty() {
        t.push_str(&format!(" from {}", s(v, "src_ip")));
        if let Some(p) = v.get("src_port").and_then(Value::as_u64) {
            t.push_str(&format!(":{p}"));
        }
    }
    if !get_str(v, "dst_ip").is_empty() {
        t.push_str(&format!(" to {}", s(v, "dst_ip")));
        if let Some(p) = v.get("dst_port").and_then(Value::as_u64) {
            t.push_str(&format!(":{p}"));
        }
    }
    if !get_str(v, "service").is_empty() {
        t.push_str(&format!(" via {}", s(v, "service")));
    }
    if let Some(Value::Array(m)) = v.get("auth_methods") {
        let m: Vec<String> = m
            .iter()
            .filter_map(Value::as_str)
            .map(escape_control)
            .collect();
        if !m.is_empty() {
            t.push_str(&format!(", auth {}", m.join("+")));
        }
    }
    if !get_str(v, "key_type").is_empty() {
        t.push_str(&format!(
            ", key {} {}",
            s(v, "key_type"),
            s(v, "key_fingerprint")
        ));
    }
    if let Some(Value::Object(c)) = v.get("certificate") {
        let principals: Vec<String> = c
            .get("principals")
            .and_then(Value::as_array)
            .map(|p| {
                p.iter()
                    .filter_map(Value::as_str)
                    .map(escape_control)
                    .collect()
            })
            .unwrap_or_default();
        t.push_str(&format!(
            ", certificate key id {:?} serial {} principals [{}] CA {} ({})",
            escape_control(get_str(c, "key_id")),
            c.get("serial").and_then(Value::as_u64).unwrap_or(0),
            principals.join(","),
            escape_control(get_str(c, "ca_fingerprint")),
            if c.get("ca_trusted")
                .and_then(Value::as_bool)
                .unwrap_or(false)
            {
                "trusted CA"
            } else {
                "CA NOT trusted"
            }
        ));
    }
    if !get_str(v, "ticket").is_empty() {
        t.push_str(&format!(", ticket {}", s(v, "ticket")));
    }
    t
}

fn logout_text(v: &Map<String, Value>) -> String {
    let mut t = String::from("logout");
    if let Some(d) = v.get("duration_us").and_then(Value::as_u64) {
        t.push_str(&format!(" after {}", format_duration(d as i64)));
    }
    match v.get("channels") {
        Some(Value::Array(c)) => t.push_str(&format!(", {} channel(s)", c.len())),
        Some(Value::Object(c)) => t.push_str(&format!(", {} channel(s)", c.len())),
        _ => {}
    }
    if v.get("unclaimed").and_then(Value::as_bool) == Some(true)
        || v.get("grant_claimed").and_then(Value::as_bool) == Some(false)
    {
        t.push_str(", WARNING: no recorder claimed this login");
    }
    t
}

/// Other events: their type-specific fields, escaped.
fn generic_text(v: &Map<String, Value>) -> String {
    let mut parts = Vec::new();
    for (k, val) in v {
        if sessrec_core::record::HEADER_KEYS.contains(&k.as_str()) {
            continue;
        }
        let shown = match val {
            Value::String(x) => escape_control(x),
            other => escape_control(&other.to_string()),
        };
        parts.push(format!("{k}={shown}"));
    }
    parts.join(" ")
}

fn channel_start_text(v: &Map<String, Value>, command: Option<&RecordedCommand>) -> String {
    let mut t = format!("{} {}", s(v, "kind"), s(v, "mode"));
    for (key, label) in [
        ("tty", ""),
        ("pty", ""),
        ("term", "TERM="),
        ("ticket", "ticket "),
    ] {
        if !get_str(v, key).is_empty() {
            t.push_str(&format!(" {label}{}", s(v, key)));
        }
    }
    if let (Some(c), Some(r)) = (
        v.get("cols").and_then(Value::as_u64),
        v.get("rows").and_then(Value::as_u64),
    ) {
        t.push_str(&format!(" {c}x{r}"));
    }
    if let Some(p) = v.get("parent_channel").and_then(|p| {
        p.as_u64()
            .map(|n| n.to_string())
            .or(p.as_str().map(str::to_string))
    }) {
        t.push_str(&format!(
            " nested in {} (as the environment named it)",
            escape_control(&p)
        ));
    }
    if let Some(c) = command {
        t.push_str(&format!(" command: {}", escape_control(&c.text())));
        if let Some(note) = c.note() {
            t.push_str(&format!("   [{note}]"));
        }
    }
    t
}

/// The details of `channel.start` with the command whole in place of its first piece.
fn start_details(
    mut value: Map<String, Value>,
    command: Option<&RecordedCommand>,
) -> Map<String, Value> {
    let Some(c) = command else {
        return value;
    };
    for k in ["command", "command_b64", "command_parts"] {
        value.remove(k);
    }
    value.insert("command".into(), c.text().into_owned().into());
    if std::str::from_utf8(&c.bytes).is_err() {
        use base64::Engine;
        value.insert(
            "command_b64".into(),
            base64::engine::general_purpose::STANDARD
                .encode(&c.bytes)
                .into(),
        );
    }
    value.insert("command_complete".into(), c.is_whole().into());
    value
}

fn sudo_start_text(v: &Map<String, Value>) -> String {
    let runas = ["runuser", "runas_user", "runas"]
        .iter()
        .map(|k| get_str(v, k))
        .find(|x| !x.is_empty())
        .unwrap_or("?");
    let command = match v.get("command") {
        Some(Value::String(c)) => escape_control(c),
        Some(Value::Array(a)) => escape_control(
            &a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => escape_control(get_str(v, "cmd")),
    };
    format!("sudo as {}: {command}", escape_control(runas))
}

fn channel_end_text(v: &Map<String, Value>) -> String {
    let mut t = String::from("end");
    if let Some(code) = v
        .get("exit_code")
        .or_else(|| v.get("exit_status"))
        .and_then(Value::as_i64)
    {
        t.push_str(&format!(" exit {code}"));
    }
    if !get_str(v, "signal").is_empty() {
        t.push_str(&format!(" signal {}", s(v, "signal")));
    }
    if !get_str(v, "reason").is_empty() {
        t.push_str(&format!(" ({})", s(v, "reason")));
    }
    for (k, label) in [("bytes_in", "in"), ("bytes_out", "out")] {
        if let Some(n) = v.get(k).and_then(Value::as_u64) {
            t.push_str(&format!(", {label} {n} B"));
        }
    }
    t
}

fn transfer_text(v: &Map<String, Value>) -> String {
    let mut t = String::new();
    for k in [
        "protocol",
        "op",
        "direction",
        "path",
        "target",
        "size",
        "bytes_read",
        "bytes_written",
        "bytes",
        "status",
        "status_code",
        "error",
        "duration_us",
    ] {
        if let Some(val) = v.get(k) {
            let shown = match val {
                Value::String(x) => escape_control(x),
                other => escape_control(&other.to_string()),
            };
            if matches!(k, "path" | "op" | "direction" | "protocol") {
                t.push_str(&format!("{shown} "));
            } else {
                t.push_str(&format!("{k}={shown} "));
            }
        }
    }
    if t.is_empty() {
        generic_text(v)
    } else {
        t.trim_end().to_string()
    }
}

struct EchoCheck {
    output: VecDeque<(u64, Vec<u8>)>,
    bytes: usize,
    overflowed: bool,
    pending: Vec<TypedLine>,
    cols: u16,
}

impl EchoCheck {
    fn push_output(&mut self, off: u64, data: &[u8]) {
        self.output.push_back((off, data.to_vec()));
        self.bytes += data.len();
        while self.bytes > ECHO_BUFFER_MAX {
            if let Some((_, d)) = self.output.pop_front() {
                self.bytes -= d.len();
                self.overflowed = true;
            }
        }
    }

    /// Drops output older than `keep_from`.
    fn prune(&mut self, keep_from: u64) {
        while self.output.front().is_some_and(|(o, _)| *o < keep_from) {
            if let Some((_, d)) = self.output.pop_front() {
                self.bytes -= d.len();
            }
        }
    }

    /// What the terminal showed while `line` was typed, rendered.
    fn echo_of(&self, line: &TypedLine) -> Option<String> {
        if self.overflowed && self.output.front().is_some_and(|(o, _)| *o > line.start_us) {
            return None;
        }
        let mut echo = Vec::new();
        for (off, data) in &self.output {
            if *off < line.start_us {
                continue;
            }
            if *off > line.end_us + ECHO_GRACE_US {
                break;
            }
            if *off >= line.end_us {
                // After Enter: only up to the end of the echoed line.
                match data.iter().position(|&b| b == b'\n') {
                    Some(p) => {
                        echo.extend_from_slice(&data[..p]);
                        break;
                    }
                    None => echo.extend_from_slice(data),
                }
            } else {
                echo.extend_from_slice(data);
            }
        }
        let mut parser = vt100::Parser::new(12, self.cols.max(200), 0);
        parser.process(&crate::sanitize::sanitize(&echo));
        let text = parser.screen().contents();
        Some(
            text.lines()
                .map(str::trim_end)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        )
    }
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn typed_entry(f: &RecordFile, line: &TypedLine, echo: Option<String>, start_us: i64) -> Entry {
    let mut flags: Vec<String> = Vec::new();
    let mut text = if line.eof {
        "^D (end of input)".to_string()
    } else {
        format!("$ {}", escape_control(&line.text))
    };
    if line.cancelled {
        flags.push("cancelled with Ctrl-C, not run".into());
    }
    if !line.erased.is_empty() {
        flags.push(format!(
            "typed then erased: {:?}",
            escape_control(&line.erased)
        ));
    }
    if line.echo_off {
        flags.push("typed while the terminal did not echo: not visible on screen".into());
    }
    let mut screen = None;
    if let Some(echo) = &echo {
        let typed = squash(&line.text);
        let shown = squash(echo);
        // Where the keys leave room for doubt (completion, history), the echoed line is the
        // better witness of what was run: show it whenever it differs from the keys.
        let doubtful = !line.guesses.is_empty() && shown != typed;
        if !line.echo_off && (!typed.is_empty() || doubtful) {
            if shown.is_empty() {
                flags.push("no echo: typed input was not shown on screen".into());
            } else if !shown.contains(&typed) || doubtful {
                flags.push(format!("screen showed {:?}", escape_control(&shown)));
                screen = Some(shown.clone());
            }
        }
    }
    for g in &line.guesses {
        flags.push(format!("guess: {g}"));
    }
    if !flags.is_empty() {
        text.push_str(&format!("   [{}]", flags.join("; ")));
    }
    Entry {
        time_us: start_us + line.end_us as i64,
        file: short_name(f),
        kind: "command".into(),
        text,
        details: json!({
            "command": line.text,
            "typed_glyphs": line.glyphs,
            "erased": line.erased,
            "cancelled": line.cancelled,
            "eof": line.eof,
            "echo_off": line.echo_off,
            "guesses": line.guesses,
            "screen_showed": screen,
            "offset_start_s": line.start_us as f64 / 1e6,
        }),
    }
}

/// Adds a command entry; one that the screen showed as typed is watched for concealment.
fn push_typed(
    out: &mut Vec<Entry>,
    watch: Option<&mut ScreenWatch>,
    entry: Entry,
    line: &TypedLine,
) {
    let shown_as_typed = entry
        .details
        .get("screen_showed")
        .is_some_and(Value::is_null)
        && !line.echo_off
        && !line.cancelled
        && !line.eof
        && !entry.text.contains("no echo:");
    out.push(entry);
    if let (Some(w), true) = (watch, shown_as_typed) {
        w.watch(
            out.len() - 1,
            &line.text,
            line.end_us + crate::conceal::CHECK_AFTER_US,
        );
    }
}

fn mark_concealed(entry: &mut Entry) {
    let flag = "concealed: erased from the screen by the output that followed";
    if entry.text.ends_with(']') {
        entry.text.pop();
        entry.text.push_str(&format!("; {flag}]"));
    } else {
        entry.text.push_str(&format!("   [{flag}]"));
    }
    if let Value::Object(d) = &mut entry.details {
        d.insert("concealed".into(), true.into());
    }
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
    let pty = f.field("mode") != "pipe" && matches!(f.kind, FileKind::Channel(_));
    let mut editor = LineEditor::new();
    let (cols, _) = f.geometry();
    let mut echo = EchoCheck {
        output: VecDeque::new(),
        bytes: 0,
        overflowed: false,
        pending: Vec::new(),
        cols,
    };
    let mut watch = pty.then(|| ScreenWatch::new(cols, f.geometry().1));
    let mut input_bytes = 0u64;
    let mut done = Vec::new();
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
                match stream {
                    Stream::Input if pty => {
                        editor.feed(off_us, &data, echo_off, &mut done);
                        echo.pending.append(&mut done);
                    }
                    Stream::Input => input_bytes += data.len() as u64,
                    Stream::Output | Stream::Stderr if pty => {
                        echo.push_output(off_us, &data);
                        if let Some(w) = watch.as_mut() {
                            w.output(&data);
                        }
                    }
                    _ => {}
                }
                // Lines whose echo window has passed are checked now.
                let ready: Vec<TypedLine> = {
                    let (r, keep): (Vec<_>, Vec<_>) = echo
                        .pending
                        .drain(..)
                        .partition(|l| l.end_us + ECHO_GRACE_US < off_us);
                    echo.pending = keep;
                    r
                };
                for line in ready {
                    let e = echo.echo_of(&line);
                    push_typed(
                        out,
                        watch.as_mut(),
                        typed_entry(f, &line, e, start_us),
                        &line,
                    );
                }
                if let Some(w) = watch.as_mut() {
                    for idx in w.due(off_us) {
                        mark_concealed(&mut out[idx]);
                    }
                }
                let keep_from = echo
                    .pending
                    .iter()
                    .map(|l| l.start_us)
                    .chain(editor.current_start())
                    .min()
                    .unwrap_or(off_us.saturating_sub(ECHO_GRACE_US));
                echo.prune(keep_from.min(off_us.saturating_sub(ECHO_GRACE_US)));
            }
            Item::Event {
                time_us,
                value,
                line_no,
            } => {
                let kind = get_str(&value, "type").to_string();
                if kind == PART_TYPE {
                    // Shown whole with its channel.start.
                    continue;
                }
                // The file's own start carries the command read whole with its parts.
                let command = match kind.as_str() {
                    "channel.start" if line_no == 1 => f.command.clone(),
                    "channel.start" => sessrec_core::command::assemble(&value, []),
                    _ => None,
                };
                let text = match kind.as_str() {
                    "channel.start" => channel_start_text(&value, command.as_ref()),
                    "channel.end" | "sudo.end" => channel_end_text(&value),
                    "sudo.start" => sudo_start_text(&value),
                    "transfer" => transfer_text(&value),
                    "input.masked" => {
                        let bytes = value.get("bytes").and_then(Value::as_u64).unwrap_or(0);
                        let why = match get_str(&value, "reason") {
                            "" => String::new(),
                            r => format!(" ({})", escape_control(r)),
                        };
                        format!("input withheld: {bytes} bytes typed at a password prompt{why}")
                    }
                    "resize" => {
                        let c = value.get("cols").and_then(Value::as_u64).unwrap_or(0);
                        let r = value.get("rows").and_then(Value::as_u64).unwrap_or(0);
                        if let Some(w) = watch.as_mut() {
                            w.resize(c.clamp(1, 1000) as u16, r.clamp(1, 500) as u16);
                        }
                        format!("resize {c}x{r}")
                    }
                    _ => generic_text(&value),
                };
                let value = start_details(value, command.as_ref());
                out.push(Entry {
                    time_us: time_us.unwrap_or(start_us + last_off as i64),
                    file: short_name(f),
                    kind,
                    text,
                    details: with_line(value, line_no),
                });
            }
            Item::Damaged { line_no, problem } => out.push(damaged(f, line_no, &problem)),
        }
    }
    let mut rest = std::mem::take(&mut echo.pending);
    rest.extend(editor.finish());
    for line in rest {
        let e = echo.echo_of(&line);
        push_typed(
            out,
            watch.as_mut(),
            typed_entry(f, &line, e, start_us),
            &line,
        );
    }
    if let Some(w) = watch.as_mut() {
        for idx in w.finish() {
            mark_concealed(&mut out[idx]);
        }
    }
    if input_bytes > 0 {
        out.push(Entry {
            time_us: start_us + last_off as i64,
            file: short_name(f),
            kind: "stdin".into(),
            text: format!("{input_bytes} bytes on standard input (pipe mode: not a terminal, no command lines)"),
            details: json!({"bytes": input_bytes}),
        });
    }
}

pub fn run(ctx: &Context) -> CmdResult {
    let arg = &ctx.args.positional[0];
    let (session_arg, channel) = crate::store::split_target(arg);
    let session = ctx.tree.resolve(&session_arg).map_err(Failure::error)?;
    let mut files = session_record_files(&session)
        .map_err(|e| Failure::error(format!("{}: {e}", session.dir.display())))?;
    if let Some(c) = channel {
        files.retain(|f| f.name == c || f.kind == FileKind::Session);
    }
    let entries = timeline(&files);
    let origin = entries
        .iter()
        .map(|e| e.time_us)
        .find(|t| *t != i64::MIN)
        .unwrap_or(session.start_hint_us);
    let mut out = crate::output::stdout();
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
                    sessrec_core::time::Timestamp::from_micros(e.time_us).to_string(),
                    format_offset(e.time_us - origin),
                )
            };
            let abs = abs
                .get(..23)
                .map(|a| format!("{}Z", a.replace('T', " ")))
                .unwrap_or(abs);
            writeln!(
                out,
                "{abs:<24} {rel:>12}  {:<12} {:<14} {}",
                e.file, e.kind, e.text
            )?;
        }
    }
    out.flush()?;
    Ok(exit::OK)
}
