//! Forwarded connections in the views: their timeline text in `show`, `search --forward`
//! (by destination) and `export --format pcap`. Connect channels carry `forward.open` /
//! `forward.close`; sshd's own forwarding (`ssh -J`, `-W`, `-L`) is known from the kernel: the
//! audit `connect` lines of the sshd session process in `audit.jsonl`, and the `connect.end`
//! the importer writes from the kernel's close notification of the socket (bytes each way).
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::Path;

use regex::bytes::Regex;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::context::{Context, Failure};
use crate::escape::escape_control;
use crate::store::{session_files, split_target, FileKind, SessionRef};
use sessrec_core::schema::{
    Connect, ConnectEnd, Event, EventBody, ForwardClose, ForwardOpen, Line,
};

/// The audit record of the session's forwarded connections made by sshd itself.
const AUDIT_FILE: &str = "audit.jsonl";

fn shown(v: &Option<String>) -> String {
    escape_control(v.as_deref().unwrap_or("?"))
}

/// `show`'s text for a `forward.*` line.
pub fn timeline_text(event: &Event) -> Option<String> {
    match event {
        Event::ForwardOpen(o) => Some(open_text(o)),
        Event::ForwardClose(c) => Some(close_text(c)),
        _ => None,
    }
}

fn open_text(o: &ForwardOpen) -> String {
    let mut t = format!(
        "forward {} to {} port {}",
        shown(&o.result),
        shown(&o.destination),
        o.port.map_or("?".into(), |p| p.to_string())
    );
    if let Some(a) = &o.address {
        t.push_str(&format!(" ({})", escape_control(a)));
    }
    if let Some(r) = &o.reason {
        t.push_str(&format!(": {}", escape_control(r)));
    }
    if let Some(p) = &o.pcap {
        t.push_str(&format!(", payload kept in {}", escape_control(p)));
    }
    t
}

fn close_text(c: &ForwardClose) -> String {
    let mut t = format!(
        "forward to {} port {} {}: {} B to it, {} B back",
        shown(&c.destination),
        c.port.map_or("?".into(), |p| p.to_string()),
        shown(&c.result),
        c.bytes_to_destination.unwrap_or(0),
        c.bytes_from_destination.unwrap_or(0),
    );
    if let Some(d) = c.duration_us {
        t.push_str(&format!(" in {:.1} s", d as f64 / 1e6));
    }
    if let Some(r) = &c.reason {
        t.push_str(&format!(" ({})", escape_control(r)));
    }
    if let Some(p) = &c.pcap {
        t.push_str(&format!(", payload in {}", escape_control(p)));
    }
    if let Some(n) = c.pcap_bytes {
        t.push_str(&format!(" ({n} B)"));
    }
    if let Some(sha) = &c.pcap_sha256 {
        t.push_str(&format!(" sha256 {}", escape_control(sha)));
    }
    t
}

/// One forwarded connection of a session.
struct Forward {
    /// The file it was read from (`channel-N`, or `audit` for sshd's own).
    file: String,
    time: String,
    via: &'static str,
    destination: String,
    port: Option<u16>,
    address: Option<String>,
    result: Option<String>,
    pcap: Option<PcapRef>,
    end: End,
}

/// How a forwarded connection ended, as far as the record knows.
enum End {
    /// Bytes each way and how long it lasted.
    Closed {
        to: Option<u64>,
        from: Option<u64>,
        duration_us: Option<u64>,
        how: Option<String>,
    },
    /// No end recorded and the session goes on.
    StillOpen,
    /// No end recorded although the session is over, or the record says it is not known.
    Unknown(Option<String>),
    /// Refused or failed: there was no connection to end.
    None,
}

impl End {
    fn text(&self) -> String {
        match self {
            End::Closed {
                to,
                from,
                duration_us,
                how,
            } => {
                let mut t = format!(
                    ", {} B to it, {} B back",
                    to.map_or("?".into(), |b| b.to_string()),
                    from.map_or("?".into(), |b| b.to_string())
                );
                if let Some(d) = duration_us {
                    t.push_str(&format!(", {:.1} s", *d as f64 / 1e6));
                }
                if let Some(how) = how {
                    t.push_str(&format!(" ({})", escape_control(how)));
                }
                t
            }
            End::StillOpen => ", still open (no end recorded yet)".into(),
            End::Unknown(None) => ", end unknown".into(),
            End::Unknown(Some(why)) => format!(", end unknown: {}", escape_control(why)),
            End::None => String::new(),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            End::Closed {
                to,
                from,
                duration_us,
                how,
            } => json!({
                "state": "closed",
                "bytes_to_destination": to,
                "bytes_from_destination": from,
                "duration_us": duration_us,
                "result": how,
            }),
            End::StillOpen => json!({"state": "still_open"}),
            End::Unknown(why) => json!({"state": "unknown", "reason": why}),
            End::None => serde_json::Value::Null,
        }
    }
}

/// `connect.end`'s account of an sshd forward's end.
fn audit_end(e: &ConnectEnd) -> End {
    if e.result.as_deref() == Some("closed") {
        End::Closed {
            to: e.bytes_to_destination,
            from: e.bytes_from_destination,
            duration_us: e.duration_us,
            how: Some("kernel socket counters".into()),
        }
    } else {
        End::Unknown(e.reason.clone())
    }
}

/// Whether the session's record says it ended (a `logout` line).
fn session_over(files: &[(FileKind, String, std::path::PathBuf)]) -> bool {
    files
        .iter()
        .filter(|(kind, _, _)| matches!(kind, FileKind::Session))
        .any(|(_, _, path)| {
            typed_lines(path)
                .into_iter()
                .any(|(_, e)| matches!(e, Event::Logout(_)))
        })
}

/// A PCAP file as one `forward.close` names it: the file's size after that connection's last
/// append and the SHA-256 of the file up to there.
#[derive(Clone)]
struct PcapRef {
    name: String,
    bytes: Option<u64>,
    sha256: Option<String>,
}

fn typed_lines(path: &Path) -> Vec<(String, Event)> {
    typed_lines_naming(path, b"")
}

/// The lines of `path` that may be of a type containing `word` (all lines for an empty
/// word), typed. Other lines are skipped unparsed: a line's `type` can spell `word` only
/// with its letters, or with `\u00XX` escapes of them.
fn typed_lines_naming(path: &Path, word: &[u8]) -> Vec<(String, Event)> {
    use std::io::{BufRead, Read};
    let Ok(file) = sessrec_core::stored::open(path) else {
        return Vec::new();
    };
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, file);
    let finder = memchr::memmem::Finder::new(word);
    let mut raw = Vec::new();
    let mut out = Vec::new();
    loop {
        raw.clear();
        let limit = sessrec_core::reader::MAX_READ_LINE as u64 + 1;
        match (&mut reader).take(limit).read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        // Damaged lines (cut short, too long, not an object) are not forwards; `show` and
        // `verify` report them.
        if raw.last() != Some(&b'\n') {
            break;
        }
        if finder.find(&raw).is_none() && !escapes_printable(&raw) {
            continue;
        }
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(&raw) {
            let line = Line::from_map(map);
            out.push((line.header.time.clone().unwrap_or_default(), line.event));
        }
    }
    out
}

/// Whether a channel file's bytes may hold a `forward.open` or `forward.close` line.
pub fn may_name_forward(data: &[u8]) -> bool {
    memchr::memmem::find(data, forward_word()).is_some() || escapes_printable(data)
}

/// `forward.open` and `forward.close` share their first word.
fn forward_word() -> &'static [u8] {
    let word = ForwardOpen::TYPE.split('.').next().unwrap_or_default();
    debug_assert!(ForwardClose::TYPE.starts_with(word));
    word.as_bytes()
}

/// The line holds a `\u00XX` escape of a printable ASCII character.
fn escapes_printable(raw: &[u8]) -> bool {
    memchr::memmem::find_iter(raw, b"\\u00").any(|i| {
        matches!(raw.get(i + 4), Some(b'2'..=b'7'))
            && raw.get(i + 5).is_some_and(u8::is_ascii_hexdigit)
    })
}

fn forwards_of(session: &SessionRef) -> Result<Vec<Forward>, Failure> {
    let files = session_files(&session.dir)
        .map_err(|e| Failure::error(format!("{}: {e}", session.dir.display())))?;
    let over = session_over(&files);
    let unended = || {
        if over {
            End::Unknown(None)
        } else {
            End::StillOpen
        }
    };
    let mut out = Vec::new();
    for (kind, name, path) in files {
        if !matches!(kind, FileKind::Channel(_)) {
            continue;
        }
        let short = name.trim_end_matches(".jsonl").to_string();
        let mut open: Option<(String, ForwardOpen)> = None;
        for (time, event) in typed_lines_naming(&path, forward_word()) {
            match event {
                Event::ForwardOpen(o) => open = Some((time, o)),
                Event::ForwardClose(c) => {
                    if let Some((time, o)) = open.take() {
                        let end = End::Closed {
                            to: c.bytes_to_destination,
                            from: c.bytes_from_destination,
                            duration_us: c.duration_us,
                            how: c.result.clone(),
                        };
                        out.push(Forward {
                            file: short.clone(),
                            time,
                            via: "connect channel",
                            destination: o.destination.unwrap_or_default(),
                            port: o.port,
                            address: o.address,
                            result: o.result,
                            pcap: c.pcap.map(|name| PcapRef {
                                name,
                                bytes: c.pcap_bytes,
                                sha256: c.pcap_sha256,
                            }),
                            end,
                        });
                    }
                }
                _ => {}
            }
        }
        if let Some((time, o)) = open {
            let end = if o.result.as_deref() == Some("connected") {
                unended()
            } else {
                End::None
            };
            out.push(Forward {
                file: short,
                time,
                via: "connect channel",
                destination: o.destination.unwrap_or_default(),
                port: o.port,
                address: o.address,
                result: o.result,
                pcap: None,
                end,
            });
        }
    }
    if let Some(audit) = sessrec_core::stored::find(&session.dir.join(AUDIT_FILE)) {
        let lines = typed_lines(&audit);
        let ends: std::collections::HashMap<&str, &ConnectEnd> = lines
            .iter()
            .filter_map(|(_, e)| match e {
                Event::ConnectEnd(end) => end.audit_id.as_deref().map(|id| (id, end)),
                _ => None,
            })
            .collect();
        for (time, event) in &lines {
            if let Event::Connect(c) = event {
                if is_sshd(c) {
                    let ended = c.audit_id.as_deref().and_then(|id| ends.get(id));
                    let captured = ended.and_then(|e| {
                        e.pcap.clone().map(|name| PcapRef {
                            name,
                            bytes: e.pcap_bytes,
                            sha256: e.pcap_sha256.clone(),
                        })
                    });
                    let end = match ended {
                        Some(e) => audit_end(e),
                        None if c.result.as_deref() == Some("failed") => End::None,
                        None => unended(),
                    };
                    let c = c.clone();
                    out.push(Forward {
                        file: "audit".into(),
                        time: c.at.clone().unwrap_or_else(|| time.clone()),
                        via: "sshd (kernel audit)",
                        destination: c.address.clone().unwrap_or_default(),
                        port: c.port,
                        address: c.address,
                        result: c.result,
                        pcap: captured,
                        end,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// A connect by sshd's own session process: a forwarded connection it opened.
pub fn is_sshd(c: &Connect) -> bool {
    c.exe.as_deref().is_some_and(|e| e.ends_with("/sshd"))
}

/// `search --forward`: forwarded connections whose destination (`host:port`, or the address)
/// matches. Returns the number found.
pub fn search_session(
    session: &SessionRef,
    regex: &Regex,
    json: bool,
    out: &mut dyn Write,
) -> Result<u64, Failure> {
    let mut found = 0;
    for f in forwards_of(session)? {
        let port = f.port.map_or("?".into(), |p| p.to_string());
        let target = format!("{}:{port}", f.destination);
        let address = f.address.as_deref().map(|a| format!("{a}:{port}"));
        if !regex.is_match(target.as_bytes())
            && !address
                .as_deref()
                .is_some_and(|a| regex.is_match(a.as_bytes()))
        {
            continue;
        }
        found += 1;
        if json {
            let v = json!({
                "session": session.id,
                "file": f.file,
                "time": f.time,
                "via": f.via,
                "destination": f.destination,
                "port": f.port,
                "address": f.address,
                "result": f.result,
                "pcap": f.pcap.as_ref().map(|p| &p.name),
                "end": f.end.json(),
            });
            serde_json::to_writer(&mut *out, &v).map_err(|e| Failure::error(e.to_string()))?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{}/{}  {}  forward {} to {} ({}) via {}{}{}",
                escape_control(&session.id),
                escape_control(&f.file),
                escape_control(&f.time),
                shown(&f.result),
                escape_control(&target),
                shown(&f.address),
                f.via,
                f.pcap
                    .as_ref()
                    .map(|p| format!(", payload {}", escape_control(&p.name)))
                    .unwrap_or_default(),
                f.end.text()
            )?;
        }
    }
    Ok(found)
}

/// `export --format pcap`: the kept payload of a destination (the one PCAP file its connect
/// channels appended to), checked against every `forward.close` naming it; a file that does
/// not match is not handed out, and bytes past the last close are left out.
pub fn export_pcap(ctx: &Context, out: &mut dyn Write) -> Result<(), Failure> {
    let (session_arg, channel) = split_target(&ctx.args.positional[0]);
    let session = ctx.tree.resolve(&session_arg).map_err(Failure::error)?;
    write_pcap(&session, channel.as_deref(), out)
}

/// Whether `session` has a connect channel with a kept payload (a PCAP to export).
pub fn has_pcap(session: &SessionRef) -> bool {
    forwards_of(session).is_ok_and(|f| f.iter().any(|f| f.pcap.is_some()))
}

/// Writes the PCAP of the session's connect channel (`channel`, a file name, when it has
/// several destinations), up to the last prefix whose SHA-256 a `forward.close` recorded.
/// Shared by `sessrec export --format pcap` and the web console's downloads.
pub fn write_pcap(
    session: &SessionRef,
    channel: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let forwards: Vec<Forward> = forwards_of(session)?
        .into_iter()
        .filter(|f| f.pcap.is_some())
        .collect();
    let mut names: Vec<String> = forwards
        .iter()
        .filter(|f| channel.is_none_or(|c| c == f.file))
        .filter_map(|f| f.pcap.as_ref().map(|p| p.name.clone()))
        .collect();
    names.sort();
    names.dedup();
    let name = match names.as_slice() {
        [one] => one.clone(),
        [] => {
            let target = match channel {
                Some(c) => format!("{}/{}", session.id, c),
                None => session.id.clone(),
            };
            return Err(Failure::error(format!(
                "{} has no connect channel with a kept payload (record_payload)",
                escape_control(&target)
            )));
        }
        _ => {
            let channels: Vec<String> = forwards.iter().map(|f| escape_control(&f.file)).collect();
            return Err(Failure::usage(format!(
                "session {} has payloads for several destinations: name one of their channels ({}) as SESSION/CHANNEL",
                session.id,
                channels.join(", ")
            )));
        }
    };
    let closes: Vec<&PcapRef> = forwards
        .iter()
        .filter_map(|f| f.pcap.as_ref())
        .filter(|p| p.name == name)
        .collect();
    let path = usable_path(session, &name).map_err(Failure::error)?;
    let data = sessrec_core::stored::read(&path)
        .map_err(|e| Failure::error(format!("{}: {e}", path.display())))?;
    let mut covered = None;
    for close in &closes {
        let Some(want) = &close.sha256 else { continue };
        let upto = check_prefix(&data, close.bytes, want).map_err(|problem| {
            Failure::error(format!(
                "{}: {problem}: the file was changed",
                path.display()
            ))
        })?;
        covered = covered.max(Some(upto));
    }
    let Some(upto) = covered else {
        return Err(Failure::error(format!(
            "{}: the record holds no SHA-256 for it (no connection to it closed cleanly)",
            path.display()
        )));
    };
    out.write_all(&data[..upto])?;
    Ok(())
}

/// The path of a PCAP file a record names, refusing names that leave the session directory.
fn usable_path(session: &SessionRef, name: &str) -> Result<std::path::PathBuf, String> {
    if name.contains('/') || name.starts_with('.') {
        return Err(format!(
            "the record names an unusable PCAP file {}",
            escape_control(name)
        ));
    }
    Ok(session.dir.join(name))
}

fn hex_sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks the file's first `bytes` bytes (all of it for a record without the size) against
/// the SHA-256 a close recorded; returns how far that close covers the file.
fn check_prefix(data: &[u8], bytes: Option<u64>, want: &str) -> Result<usize, String> {
    let upto = bytes.map_or(data.len() as u64, |b| b);
    if upto > data.len() as u64 {
        return Err(format!(
            "{} B long, shorter than the {upto} B recorded at a close (bytes were removed)",
            data.len()
        ));
    }
    let upto = upto as usize;
    let got = hex_sha256(&data[..upto]);
    if got != want {
        return Err(format!(
            "SHA-256 {got} of its first {upto} B differs from the one recorded at a close ({})",
            escape_control(want)
        ));
    }
    Ok(upto)
}

/// `show`'s text for an audited connect of the sshd session process: a connection sshd
/// forwarded (`ssh -J`, `-W`, `-L`). Its end and bytes are on its `connect.end`, when the
/// importer saw it.
pub fn sshd_connect_text(c: &Connect) -> String {
    format!(
        "forwarded by sshd to {} port {} (kernel audit: connect {})",
        shown(&c.address),
        c.port.map_or("?".into(), |p| p.to_string()),
        shown(&c.result),
    )
}

/// `show`'s text for a `connect.end`: the end of an audited connection, from the kernel's
/// socket counters.
pub fn connect_end_text(e: &ConnectEnd) -> String {
    let what = match e.exe.as_deref() {
        Some(x) if x.ends_with("/sshd") => "forwarded connection by sshd".to_string(),
        Some(x) => format!("connection by {}", escape_control(x)),
        None => "connection".to_string(),
    };
    let target = format!(
        "{what} to {} port {}",
        shown(&e.address),
        e.port.map_or("?".into(), |p| p.to_string())
    );
    let mut t = match e.result.as_deref() {
        Some("closed") => format!("{target} closed"),
        None | Some("unknown") => format!("{target}: end unknown"),
        Some(other) => format!("{target} ended: {}", escape_control(other)),
    };
    if e.bytes_to_destination.is_some() || e.bytes_from_destination.is_some() {
        t.push_str(&format!(
            ": {} B to it, {} B back",
            e.bytes_to_destination.map_or("?".into(), |b| b.to_string()),
            e.bytes_from_destination
                .map_or("?".into(), |b| b.to_string()),
        ));
    }
    if let Some(d) = e.duration_us {
        t.push_str(&format!(" in {:.1} s", d as f64 / 1e6));
    }
    if e.result.as_deref() == Some("closed") {
        t.push_str(" (kernel socket counters)");
    }
    if let Some(r) = &e.reason {
        t.push_str(&format!(" ({})", escape_control(r)));
    }
    t
}

/// For `verify`: kept payloads (PCAP files) that are missing, or whose first `pcap_bytes`
/// bytes differ from the SHA-256 a `forward.close` naming them recorded, as (file, problem).
/// Every close covers the file up to its last append, so a change to any earlier connection's
/// packets breaks every later close.
pub fn payload_problems(session: &SessionRef) -> Vec<(std::path::PathBuf, String)> {
    let Ok(forwards) = forwards_of(session) else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let mut files: std::collections::BTreeMap<String, std::io::Result<Vec<u8>>> =
        Default::default();
    for f in forwards {
        let Some(PcapRef {
            name,
            bytes,
            sha256: Some(want),
        }) = f.pcap
        else {
            continue;
        };
        let path = match usable_path(session, &name) {
            Ok(path) => path,
            Err(problem) => {
                problems.push((session.dir.clone(), format!("{}: {problem}", f.file)));
                continue;
            }
        };
        match files
            .entry(name)
            .or_insert_with(|| sessrec_core::stored::read(&path))
        {
            Ok(data) => {
                if let Err(problem) = check_prefix(data, bytes, &want) {
                    problems.push((
                        path,
                        format!("{problem} by {}: the payload was changed", f.file),
                    ));
                }
            }
            Err(e) => problems.push((path, format!("the payload {} recorded: {e}", f.file))),
        }
    }
    problems
}
