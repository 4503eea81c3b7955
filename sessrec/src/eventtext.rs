//! The text `show` gives each event: a sentence for the fields an investigator reads first,
//! then every other field the line holds as `name=value`, so nothing recorded is left out.
//!
//! Driven by the typed schema: each event type names the fields its sentence covers
//! (`schema::headline_fields`) and the bookkeeping fields kept for `--verbose`
//! (`schema::bookkeeping_fields`); any other field
//! (one added to the schema later, or a newer writer's) is appended by itself. A test walks
//! every field of every event type to hold this.
#![forbid(unsafe_code)]

use serde_json::{Map, Value};
use sessrec_core::command::{self, RecordedCommand};
use sessrec_core::schema::{
    bookkeeping_fields as quiet, header_key, headline_fields as covered, ChannelEnd, ChannelStart,
    Event, Login, Logout, SudoStart, Transfer, HEADER_KEYS,
};

use crate::escape::escape_visible;
use crate::timespec::format_duration;

/// A field's value as shown: text as it is (controls made visible), anything else as JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(x) => escape_visible(x),
        other => escape_visible(&other.to_string()),
    }
}

/// What `show` says about one event. `line` is the line as read (header included); `command`
/// the channel's command read whole with its continuation lines, when the caller has it.
pub fn event_text(
    event: &Event,
    line: &Map<String, Value>,
    command: Option<&RecordedCommand>,
) -> String {
    let assembled;
    let command = match (event, command) {
        (Event::ChannelStart(_), None) => {
            assembled = command::assemble(line, []);
            assembled.as_ref()
        }
        (_, c) => c,
    };
    let sentence = match event {
        Event::Login(v) => login_text(line, v),
        Event::Logout(v) => logout_text(v),
        Event::ChannelStart(v) => channel_start_text(v, command),
        Event::ChannelEnd(v) => channel_end_text(v),
        Event::SudoStart(v) => sudo_start_text(v, command),
        Event::SudoEnd(v) => bytes_text("end", [v.bytes_in, v.bytes_out]),
        Event::Transfer(v) => transfer_text(v),
        Event::InputMasked(m) => {
            let why = match given(&m.reason) {
                None => String::new(),
                Some(r) => format!(" ({})", escape_visible(r)),
            };
            format!(
                "input withheld: {} bytes typed at a password prompt{why}",
                m.bytes.unwrap_or(0)
            )
        }
        Event::Resize(r) => format!("resize {}x{}", r.cols.unwrap_or(0), r.rows.unwrap_or(0)),
        Event::Exec(e) => exec_sentence(e, exec_args_text(line, &[])),
        Event::ForwardOpen(_) | Event::ForwardClose(_) => {
            crate::forward_view::timeline_text(event).unwrap_or_default()
        }
        Event::Connect(c) if crate::forward_view::is_sshd(c) => {
            crate::forward_view::sshd_connect_text(c)
        }
        Event::Connect(c) => connect_text(c),
        Event::ConnectEnd(e) => crate::forward_view::connect_end_text(e),
        Event::AuditGap(g) => gap_text(g),
        _ => String::new(),
    };
    with_other_fields(event, sentence)
}

/// The sentence followed by every field it does not cover (bookkeeping aside).
fn with_other_fields(event: &Event, sentence: String) -> String {
    let rest: Vec<String> = other_fields(event, false)
        .into_iter()
        .map(|(k, v)| format!("{}={}", escape_visible(&k), value_text(&v)))
        .collect();
    match (sentence.is_empty(), rest.is_empty()) {
        (true, _) => rest.join(" "),
        (false, true) => sentence,
        (false, false) => format!("{sentence}   [{}]", rest.join(" ")),
    }
}

/// What `show` says about an exec line whose arguments continue on the `command.part` lines
/// `following` it, indented by `depth` levels of process ancestry.
pub fn exec_event_text(
    event: &Event,
    line: &Map<String, Value>,
    following: &[Map<String, Value>],
    depth: usize,
) -> String {
    let sentence = match event {
        Event::Exec(e) => exec_sentence(e, exec_args_text(line, following)),
        _ => return event_text(event, line, None),
    };
    format!(
        "{}{}",
        "  ".repeat(depth.min(16)),
        with_other_fields(event, sentence)
    )
}

/// The fields of an event its sentence does not cover, in record order: without `verbose`
/// the ones always shown (and every field of a newer writer's); with it, only the quiet ones.
pub fn other_fields(event: &Event, verbose: bool) -> Vec<(String, Value)> {
    let kind = event.kind();
    if let Event::Unknown(u) = event {
        return if verbose {
            Vec::new()
        } else {
            u.fields
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
    }
    let (covered, quiet) = (covered(kind), quiet(kind));
    let extra = event.extra();
    let fields = sessrec_core::schema::known_types()
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(&[][..], |(_, f)| *f);
    // The length and continuation count of a long field go with the field (it is whole).
    let long_marker = |key: &str| {
        [
            sessrec_core::schema::BYTES_SUFFIX,
            sessrec_core::schema::PARTS_SUFFIX,
        ]
        .iter()
        .any(|suffix| {
            key.strip_suffix(suffix)
                .is_some_and(|f| fields.contains(&f))
        })
    };
    let newer: Vec<&str> = event
        .newer_fields()
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !long_marker(k))
        .collect();
    let mut listed = Vec::new();
    for (k, v) in event.to_fields() {
        let is_extra = extra.contains_key(&k);
        // Markers beside known fields (`command_truncated`, `path_hex`) go with their field.
        if is_extra && !newer.contains(&k.as_str()) {
            if verbose {
                listed.push((k, v));
            }
            continue;
        }
        if is_extra {
            if !verbose {
                listed.push((k, v));
            }
            continue;
        }
        if covered.contains(&k.as_str()) {
            continue;
        }
        if quiet.contains(&k.as_str()) == verbose {
            listed.push((k, v));
        }
    }
    listed
}

/// Present and not empty.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|x| !x.is_empty())
}

fn esc(v: &Option<String>) -> String {
    escape_visible(v.as_deref().unwrap_or_default())
}

fn login_text(line: &Map<String, Value>, v: &Login) -> String {
    let header = |k: &str| escape_visible(line.get(k).and_then(Value::as_str).unwrap_or(""));
    let mut t = format!(
        "{} as {}",
        header(header_key::ACTOR),
        header(header_key::USER)
    );
    t.push_str(&match (given(&v.actor_source), v.verified) {
        (_, Some(false)) => " (identity UNVERIFIED: no PAM grant)".to_string(),
        (None, Some(true)) => " (identity verified)".to_string(),
        (None, None) => String::new(),
        (Some(src), _) => format!(" (identity from {})", escape_visible(src)),
    });
    for (ip, port, word) in [
        (&v.src_ip, v.src_port, "from"),
        (&v.dst_ip, v.dst_port, "to"),
    ] {
        match (given(ip), port) {
            (Some(ip), Some(p)) => t.push_str(&format!(" {word} {}:{p}", escape_visible(ip))),
            (Some(ip), None) => t.push_str(&format!(" {word} {}", escape_visible(ip))),
            (None, Some(p)) => t.push_str(&format!(" {word} port {p}")),
            (None, None) => {}
        }
    }
    if given(&v.service).is_some() {
        t.push_str(&format!(" via {}", esc(&v.service)));
    }
    if let Some(m) = &v.auth_methods {
        let m: Vec<String> = m.iter().map(|x| escape_visible(x)).collect();
        if !m.is_empty() {
            t.push_str(&format!(", auth {}", m.join("+")));
        }
    }
    if given(&v.key_type).is_some() || given(&v.key_fingerprint).is_some() {
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
            .map(|p| escape_visible(p))
            .collect();
        t.push_str(&format!(
            ", certificate key id \"{}\" serial {} principals [{}] CA {} ({})",
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

fn channel_start_text(v: &ChannelStart, command: Option<&RecordedCommand>) -> String {
    let mut t = format!("{} {}", esc(&v.kind), esc(&v.mode));
    for (value, label) in [(&v.pty, ""), (&v.term, "TERM="), (&v.ticket, "ticket ")] {
        if given(value).is_some() {
            t.push_str(&format!(" {label}{}", esc(value)));
        }
    }
    match (v.cols, v.rows) {
        (Some(c), Some(r)) => t.push_str(&format!(" {c}x{r}")),
        (Some(c), None) => t.push_str(&format!(" {c} columns")),
        (None, Some(r)) => t.push_str(&format!(" {r} rows")),
        (None, None) => {}
    }
    if let Some(p) = &v.parent_channel {
        t.push_str(&format!(" nested in {}", escape_visible(p)));
    }
    if let Some(c) = command {
        t.push_str(&format!(" command: {}", escape_visible(&c.text())));
        if let Some(note) = c.note() {
            t.push_str(&format!("   [{note}]"));
        }
    } else if v.command_bytes.is_some()
        || v.command_parts.is_some()
        || v.command_truncated.is_some()
    {
        t.push_str(&format!(
            " command of {} bytes in {} part(s) not readable",
            v.command_bytes.unwrap_or(0),
            v.command_parts.unwrap_or(0)
        ));
    }
    t
}

/// A signal's name (`SIGTERM`), when it is one this system knows.
pub fn signal_name(signal: i32) -> Option<&'static str> {
    nix::sys::signal::Signal::try_from(signal)
        .ok()
        .map(|s| s.as_str())
}

fn channel_end_text(v: &ChannelEnd) -> String {
    let mut t = String::from("end");
    if let Some(Some(code)) = v.exit_code {
        t.push_str(&format!(" exit {code}"));
    }
    if let Some(signal) = v.signal {
        match signal_name(signal) {
            Some(name) => t.push_str(&format!(" killed by signal {signal} ({name})")),
            None => t.push_str(&format!(" killed by signal {signal}")),
        }
        if v.core_dumped == Some(true) {
            t.push_str(", core dumped");
        }
    } else if v.core_dumped == Some(true) {
        t.push_str(" core dumped");
    }
    // "exit" says the command ended by itself, which a signal contradicts: the signal says it.
    match given(&v.reason) {
        Some("exit") if v.signal.is_some() => {}
        Some(r) => t.push_str(&format!(" ({})", escape_visible(r))),
        None => {}
    }
    if let Some(m) = given(&v.admin_message) {
        t.push_str(&format!(", operator's message \"{}\"", escape_visible(m)));
    }
    let b = bytes_text("", [v.bytes_in, v.bytes_out]);
    t.push_str(&b);
    t
}

fn bytes_text(start: &str, bytes: [Option<u64>; 2]) -> String {
    let mut t = start.to_string();
    for (n, label) in bytes.into_iter().zip(["in", "out"]) {
        if let Some(n) = n {
            t.push_str(&format!(", {label} {n} B"));
        }
    }
    t
}

/// An exec's arguments (whole, from either form) as shown: each made visible, joined by
/// spaces, one with spaces or nothing in it quoted.
pub fn exec_args_text(line: &Map<String, Value>, following: &[Map<String, Value>]) -> String {
    let Some(args) = sessrec_core::exec_args::read(line, following) else {
        return String::new();
    };
    let visible: Vec<String> = args.lossy().iter().map(|a| escape_visible(a)).collect();
    let mut shown = quoted_args(&visible);
    if !matches!(
        args.completeness,
        sessrec_core::command::Completeness::Whole
    ) {
        shown = format!("{shown} {INCOMPLETE_ARGS}")
            .trim_start()
            .to_string();
    }
    shown
}

/// Said after arguments whose `command.part` lines are missing.
const INCOMPLETE_ARGS: &str = "[INCOMPLETE: continuation lines missing]";

/// Arguments as one command line: joined by spaces, one with a space or a quote in it, or
/// nothing, quoted.
pub fn quoted_args(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.is_empty() || a.contains(' ') || a.contains('"') {
                format!("\"{}\"", a.replace('"', "\\\""))
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn exec_sentence(e: &sessrec_core::schema::Exec, args: String) -> String {
    let mut t = args;
    let mut flags = Vec::new();
    if e.root == Some(true) {
        flags.push(match given(&e.euser_name) {
            Some(name) => format!("root (as {})", escape_visible(name)),
            None => "root".to_string(),
        });
    }
    if let Some(errno) = given(&e.errno) {
        flags.push(format!("failed: {}", escape_visible(errno)));
    } else if e.success == Some(false) {
        flags.push("failed".into());
    }
    if let Some(p) = given(&e.argv_problem) {
        flags.push(format!("arguments incomplete: {}", escape_visible(p)));
    }
    if let Some(exe) = given(&e.exe) {
        flags.push(format!("exe {}", escape_visible(exe)));
    }
    if let Some(cwd) = given(&e.cwd) {
        flags.push(format!("in {}", escape_visible(cwd)));
    }
    if !flags.is_empty() {
        t.push_str(&format!("   [{}]", flags.join("; ")));
    }
    t
}

fn connect_text(c: &sessrec_core::schema::Connect) -> String {
    let mut t = format!(
        "connect {}:{}",
        esc(&c.address),
        c.port.map(|p| p.to_string()).unwrap_or_else(|| "?".into())
    );
    if let Some(r) = given(&c.result) {
        t.push_str(&format!(" {}", escape_visible(r)));
    }
    if let Some(errno) = given(&c.errno) {
        t.push_str(&format!(" ({})", escape_visible(errno)));
    }
    if let Some(exe) = given(&c.exe) {
        t.push_str(&format!(" by {}", escape_visible(exe)));
    }
    t
}

fn gap_text(g: &sessrec_core::schema::AuditGap) -> String {
    let mut t = format!(
        "exec audit may have missed events from {} to {}",
        given(&g.from).map_or("?".into(), escape_visible),
        given(&g.to).map_or("?".into(), escape_visible)
    );
    if let Some(r) = given(&g.reason) {
        t.push_str(&format!(": {}", escape_visible(r)));
    }
    if let Some(n) = g.lost {
        t.push_str(&format!(", {n} event(s) lost"));
    }
    if let Some(d) = given(&g.detail) {
        t.push_str(&format!(" ({})", escape_visible(d)));
    }
    t
}

/// `command` is the sudo command's arguments read whole (see `RecordFile::command`), when the
/// caller has them; else the program sudo ran.
fn sudo_start_text(v: &SudoStart, command: Option<&RecordedCommand>) -> String {
    let runas = given(&v.runuser).unwrap_or("?");
    let ran = match command {
        Some(c) if c.is_whole() => escape_visible(&c.text()),
        Some(c) => format!("{} {INCOMPLETE_ARGS}", escape_visible(&c.text())),
        None => esc(&v.command),
    };
    format!("sudo as {}: {ran}", escape_visible(runas))
}

fn transfer_text(v: &Transfer) -> String {
    [&v.protocol, &v.op, &v.direction, &v.path]
        .into_iter()
        .filter_map(|x| x.as_deref().map(escape_visible))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A time as every timeline view prints it: `2026-11-24 10:00:00.123Z` (UTC, milliseconds).
pub fn timeline_time(us: i64) -> String {
    let full = sessrec_core::time::Timestamp::from_micros(us).to_string();
    match full.get(..23) {
        Some(head) => format!("{}Z", head.replace('T', " ")),
        None => full,
    }
}

/// Header keys that `--verbose` shows besides the event's fields.
pub const VERBOSE_HEADER: &[&str] = &[header_key::SEQ, header_key::TIME];

/// Whether a key of a line is part of the header.
pub fn is_header(key: &str) -> bool {
    HEADER_KEYS.contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sessrec_core::schema::known_types;

    /// A value of the field's type: the first candidate the typed event takes as that field.
    fn sample(kind: &str, field: &str) -> Option<(Event, Map<String, Value>)> {
        let candidates = [
            json!("eA=="),
            json!(7),
            json!(true),
            json!(["eA=="]),
            json!([{}]),
            json!({}),
        ];
        candidates.into_iter().find_map(|v| {
            let mut line = Map::new();
            line.insert(field.to_string(), v);
            let event = Event::from_fields(kind, line.clone());
            let typed = !matches!(event, Event::Unknown(_)) && !event.extra().contains_key(field);
            typed.then_some((event, line))
        })
    }

    /// Every field of every event type is shown: in the sentence, appended to it, or (the
    /// bookkeeping ones) with `--verbose`. A field added to the schema is shown by itself.
    #[test]
    fn every_field_of_every_event_type_is_shown() {
        for (kind, fields) in known_types() {
            if ["io", "command.part"].contains(kind) {
                // Frames are the replay; continuation lines are shown whole with their start.
                continue;
            }
            // Types without lists of their own share the generic one (`off`, `at`).
            let own_quiet = if quiet(kind) == quiet("") {
                &[][..]
            } else {
                quiet(kind)
            };
            for name in covered(kind).iter().chain(own_quiet) {
                assert!(fields.contains(name), "{kind}: {name} is not a field");
            }
            for name in covered(kind) {
                assert!(!quiet(kind).contains(name), "{kind}: {name} listed twice");
            }
            let empty = Event::from_fields(kind, Map::new());
            let plain = event_text(&empty, &Map::new(), None);
            for field in *fields {
                let (event, line) =
                    sample(kind, field).unwrap_or_else(|| panic!("{kind}.{field}: no sample"));
                if quiet(kind).contains(field) {
                    let verbose = other_fields(&event, true);
                    assert!(
                        verbose.iter().any(|(k, _)| k == field),
                        "{kind}.{field} missing from --verbose"
                    );
                } else {
                    let text = event_text(&event, &line, None);
                    assert_ne!(text, plain, "{kind}.{field} does not change the text");
                }
            }
        }
    }

    #[test]
    fn a_killing_signal_is_named_and_not_called_an_exit() {
        let line = json!({"reason": "exit", "exit_code": null, "signal": 15, "bytes_in": 0});
        let Value::Object(line) = line else {
            unreachable!()
        };
        let event = Event::from_fields("channel.end", line.clone());
        assert_eq!(
            event_text(&event, &line, None),
            "end killed by signal 15 (SIGTERM), in 0 B"
        );
    }

    #[test]
    fn controls_are_visible_and_backslashes_kept() {
        assert_eq!(
            escape_visible("printf 'a\\tb' \u{1b}[2J\n\u{202e}"),
            "printf 'a\\tb' ␛[2J␊⟨U+202E⟩"
        );
    }
}
