//! `sessrec show`: the merged timeline of a session.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::io::Write;

use serde_json::{json, Map, Value};
use sessrec_core::command::RecordedCommand;
use sessrec_core::record::Stream;
use sessrec_core::schema::{
    header_key, ChannelStart, Event, EventBody, Login, Logout, SudoStart, Transfer,
};

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
                event,
                value,
                line_no,
            } => {
                let t = time_us.unwrap_or(i64::MIN);
                let kind = event.kind().to_string();
                let text = match &*event {
                    Event::Login(login) => login_text(&value, login),
                    Event::Logout(logout) => logout_text(logout),
                    _ => generic_text(&event),
                };
                let text = with_newer_fields(text, &event);
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

/// A text field, escaped; empty when absent.
fn esc(v: &Option<String>) -> String {
    escape_control(v.as_deref().unwrap_or_default())
}

/// Present and not empty.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|x| !x.is_empty())
}

fn login_text(line: &Map<String, Value>, v: &Login) -> String {
    let header = |k: &str| escape_control(get_str(line, k));
    let mut t = format!(
        "{} as {}",
        header(header_key::ACTOR),
        header(header_key::USER)
    );
    t.push_str(&match (given(&v.actor_source), v.verified) {
        (_, Some(false)) => " (identity UNVERIFIED: no PAM grant)".to_string(),
        (None, _) => String::new(),
        (Some(src), _) => format!(" (identity from {})", escape_control(src)),
    });
    if given(&v.src_ip).is_some() {
        t.push_str(&format!(" from {}", esc(&v.src_ip)));
        if let Some(p) = v.src_port {
            t.push_str(&format!(":{p}"));
        }
    }
    if given(&v.dst_ip).is_some() {
        t.push_str(&format!(" to {}", esc(&v.dst_ip)));
        if let Some(p) = v.dst_port {
            t.push_str(&format!(":{p}"));
        }
    }
    if given(&v.service).is_some() {
        t.push_str(&format!(" via {}", esc(&v.service)));
    }
    if let Some(m) = &v.auth_methods {
        let m: Vec<String> = m.iter().map(|x| escape_control(x)).collect();
        if !m.is_empty() {
            t.push_str(&format!(", auth {}", m.join("+")));
        }
    }
    if given(&v.key_type).is_some() {
        t.push_str(&format!(
            ", key {} {}",
            esc(&v.key_type),
            esc(&v.key_fingerprint)
        ));
    }
    if let Some(c) = &v.certificate {
        let principals: Vec<String> = c
            .principals
            .iter()
            .flatten()
            .map(|p| escape_control(p))
            .collect();
        t.push_str(&format!(
            ", certificate key id {:?} serial {} principals [{}] CA {} ({})",
            esc(&c.key_id),
            c.serial.unwrap_or(0),
            principals.join(","),
            esc(&c.ca_fingerprint),
            if c.ca_trusted.unwrap_or(false) {
                "trusted CA"
            } else {
                "CA NOT trusted"
            }
        ));
    }
    t
}

fn logout_text(v: &Logout) -> String {
    let mut t = String::from("logout");
    if let Some(d) = v.duration_us {
        t.push_str(&format!(" after {}", format_duration(d as i64)));
    }
    if let Some(c) = &v.channels {
        t.push_str(&format!(", {} channel(s)", c.len()));
    }
    if v.unclaimed == Some(true) {
        t.push_str(", WARNING: no recorder claimed this login");
    }
    t
}

/// Other events: their type-specific fields, escaped (unknown ones too).
fn generic_text(event: &Event) -> String {
    let mut parts = Vec::new();
    for (k, val) in &event.to_fields() {
        let shown = match val {
            Value::String(x) => escape_control(x),
            other => escape_control(&other.to_string()),
        };
        parts.push(format!("{k}={shown}"));
    }
    parts.join(" ")
}

/// Appends the fields a newer writer added to a known event, which this version's text does
/// not describe (they are in the details too).
fn with_newer_fields(mut text: String, event: &Event) -> String {
    let newer = event.newer_fields();
    if newer.is_empty() || generic_text_used(event) {
        return text;
    }
    let shown: Vec<String> = newer
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(x) => escape_control(x),
                other => escape_control(&other.to_string()),
            };
            format!("{}={v}", escape_control(k))
        })
        .collect();
    text.push_str(&format!("   [newer fields: {}]", shown.join(" ")));
    text
}

/// Events whose text already lists every field.
fn generic_text_used(event: &Event) -> bool {
    !matches!(
        event,
        Event::Login(_)
            | Event::Logout(_)
            | Event::ChannelStart(_)
            | Event::ChannelEnd(_)
            | Event::SudoStart(_)
            | Event::SudoEnd(_)
            | Event::Transfer(_)
            | Event::ForwardOpen(_)
            | Event::ForwardClose(_)
            | Event::InputMasked(_)
            | Event::Resize(_)
    )
}

fn channel_start_text(v: &ChannelStart, command: Option<&RecordedCommand>) -> String {
    let mut t = format!("{} {}", esc(&v.kind), esc(&v.mode));
    for (value, label) in [(&v.pty, ""), (&v.term, "TERM="), (&v.ticket, "ticket ")] {
        if given(value).is_some() {
            t.push_str(&format!(" {label}{}", esc(value)));
        }
    }
    if let (Some(c), Some(r)) = (v.cols, v.rows) {
        t.push_str(&format!(" {c}x{r}"));
    }
    if let Some(p) = &v.parent_channel {
        t.push_str(&format!(
            " nested in {} (as the environment named it)",
            escape_control(p)
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

fn sudo_start_text(v: &SudoStart) -> String {
    let runas = given(&v.runuser).unwrap_or("?");
    format!("sudo as {}: {}", escape_control(runas), esc(&v.command))
}

fn channel_end_text(
    exit_code: Option<i64>,
    signal: Option<i32>,
    reason: &Option<String>,
    bytes: [Option<u64>; 2],
) -> String {
    let mut t = String::from("end");
    if let Some(code) = exit_code {
        t.push_str(&format!(" exit {code}"));
    }
    if let Some(signal) = signal {
        t.push_str(&format!(" signal {signal}"));
    }
    if given(reason).is_some() {
        t.push_str(&format!(" ({})", esc(reason)));
    }
    for (n, label) in bytes.into_iter().zip(["in", "out"]) {
        if let Some(n) = n {
            t.push_str(&format!(", {label} {n} B"));
        }
    }
    t
}

fn transfer_text(v: &Transfer, event: &Event) -> String {
    fn shown<T: ToString>(v: &Option<T>) -> Option<String> {
        v.as_ref().map(|x| escape_control(&x.to_string()))
    }
    // The operation, then its outcome and sizes.
    let words = [&v.protocol, &v.op, &v.direction, &v.path]
        .into_iter()
        .filter_map(shown);
    let named = [
        ("target", shown(&v.target)),
        ("size", shown(&v.size)),
        ("bytes_read", shown(&v.bytes_read)),
        ("bytes_written", shown(&v.bytes_written)),
        ("status", shown(&v.status)),
        ("status_code", shown(&v.status_code)),
        ("duration_us", shown(&v.duration_us)),
    ];
    let mut t: Vec<String> = words.collect();
    t.extend(
        named
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={v}"))),
    );
    if t.is_empty() {
        generic_text(event)
    } else {
        t.join(" ")
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
    let pty = !f.is_pipe() && matches!(f.kind, FileKind::Channel(_));
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
                    Event::ChannelStart(_) if line_no == 1 => f.command.clone(),
                    Event::ChannelStart(_) => sessrec_core::command::assemble(&value, []),
                    _ => None,
                };
                let text = match &*event {
                    Event::ChannelStart(start) => channel_start_text(start, command.as_ref()),
                    Event::ChannelEnd(end) => channel_end_text(
                        end.exit_code.flatten().map(i64::from),
                        end.signal,
                        &end.reason,
                        [end.bytes_in, end.bytes_out],
                    ),
                    Event::SudoEnd(end) => {
                        channel_end_text(None, None, &None, [end.bytes_in, end.bytes_out])
                    }
                    Event::SudoStart(start) => sudo_start_text(start),
                    Event::Transfer(transfer) => transfer_text(transfer, &event),
                    Event::ForwardOpen(_) | Event::ForwardClose(_) => {
                        crate::forward_view::timeline_text(&event).unwrap_or_default()
                    }
                    Event::InputMasked(masked) => {
                        let why = match given(&masked.reason) {
                            None => String::new(),
                            Some(r) => format!(" ({})", escape_control(r)),
                        };
                        format!(
                            "input withheld: {} bytes typed at a password prompt{why}",
                            masked.bytes.unwrap_or(0)
                        )
                    }
                    Event::Resize(resize) => {
                        let c = resize.cols.unwrap_or(0);
                        let r = resize.rows.unwrap_or(0);
                        if let Some(w) = watch.as_mut() {
                            w.resize(c.clamp(1, 1000) as u16, r.clamp(1, 500) as u16);
                        }
                        format!("resize {c}x{r}")
                    }
                    _ => generic_text(&event),
                };
                let text = with_newer_fields(text, &event);
                let value = start_details(value, command.as_ref());
                out.push(Entry {
                    time_us: time_us.unwrap_or(start_us + last_off as i64),
                    file: short_name(f),
                    kind: event.kind().to_string(),
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
    if let Some(c) = &channel {
        files.retain(|f| &f.name == c || f.kind == FileKind::Session);
    }
    let mut entries = timeline(&files);
    if channel.is_none() {
        entries.extend(
            crate::forward_view::sshd_timeline(&session)
                .into_iter()
                .map(|(time_us, file, kind, text, details)| Entry {
                    time_us,
                    file,
                    kind,
                    text,
                    details,
                }),
        );
        entries.sort_by_key(|e| e.time_us);
    }
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
        let end = event(
            "channel.end",
            json!({"reason": "exit", "exit_code": 0, "cgroup_peak_kib": 512}),
        );
        let Event::ChannelEnd(e) = &end else {
            unreachable!()
        };
        let text = channel_end_text(Some(0), None, &e.reason, [None, None]);
        assert_eq!(
            with_newer_fields(text, &end),
            "end exit 0 (exit)   [newer fields: cgroup_peak_kib=512]"
        );
        let start = event(
            "channel.start",
            json!({"kind": "shell", "term_truncated": 300}),
        );
        assert_eq!(with_newer_fields("shell".into(), &start), "shell");
    }

    #[test]
    fn an_unknown_event_is_shown_whole() {
        let e = event("tunnel.open", json!({"conn": "10.0.0.1:22", "bytes": 5}));
        assert_eq!(generic_text(&e), "bytes=5 conn=10.0.0.1:22");
    }
}
