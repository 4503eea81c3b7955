//! `sessrec verify`: hash chains, completeness (logout, `channel.end` with the digest the
//! logout recorded), and optionally syslog anchors. Reports exact file and line.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use sessrec_core::chain;
use sessrec_core::reader;
use sessrec_core::schema::{header_key, ChainView, Event, EventBody, Line, Logout};

use crate::context::{exit, CmdResult, Context, Failure};
use crate::escape::escape_control;
use crate::store::{session_files, FileKind, SessionRef};

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Something is missing or cut short (crash, full disk, still running elsewhere).
    Incomplete,
    /// The chain or the logout's digests do not match: modified, removed or reordered lines.
    Broken,
}

#[derive(Debug, Clone)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line, 0 when the problem concerns the file as a whole.
    pub line: u64,
    pub severity: Severity,
    pub text: String,
    /// The file ends inside this line: a live writer can be caught there, so it is no problem
    /// while the session runs.
    pub cut_short: bool,
}

#[derive(Debug, Clone, Default)]
pub struct FileResult {
    pub path: PathBuf,
    pub lines: u64,
    pub last_seq: u64,
    pub last_digest: String,
    pub last_type: String,
}

#[derive(Debug, Clone, Default)]
pub struct SessionResult {
    pub files: Vec<FileResult>,
    pub problems: Vec<Problem>,
    pub live: bool,
}

impl SessionResult {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn worst(&self) -> Option<Severity> {
        self.problems.iter().map(|p| p.severity).max()
    }

    pub fn problem_strings(&self) -> Vec<String> {
        self.problems.iter().map(format_problem).collect()
    }
}

fn format_problem(p: &Problem) -> String {
    if p.line > 0 {
        format!("{}:{}: {}", p.file.display(), p.line, p.text)
    } else {
        format!("{}: {}", p.file.display(), p.text)
    }
}

/// A channel as the logout line recorded it.
#[derive(Debug, Clone)]
struct LoggedChannel {
    seq: u64,
    digest: String,
    open: bool,
}

/// Reads the logout's per-channel list (`channels`: `[{file, last_seq, digest, open}]`);
/// entries without a name, seq or digest (a file the module could not read) are skipped.
fn logged_channels(logout: Map<String, Value>) -> BTreeMap<String, LoggedChannel> {
    let channels = match Line::from_map(logout).event {
        Event::Logout(Logout {
            channels: Some(channels),
            ..
        }) => channels,
        _ => Vec::new(),
    };
    channels
        .into_iter()
        .filter_map(|c| {
            let entry = LoggedChannel {
                seq: c.last_seq?,
                digest: c.digest?,
                open: c.open.unwrap_or(false),
            };
            Some((c.file?, entry))
        })
        .collect()
}

/// Digest (hex) of the lines whose `seq` is in `wanted`.
fn digests_at(path: &Path, wanted: &BTreeSet<u64>) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    if wanted.is_empty() {
        return out;
    }
    let Ok(lines) = reader::lines(path) else {
        return out;
    };
    for line in lines.flatten() {
        if let Some(seq) = line.seq() {
            if wanted.contains(&seq) {
                out.insert(seq, chain::to_hex(&chain::line_digest(&line.raw)));
            }
        }
    }
    out
}

/// Files up to this size are read whole, once, for the chain check and the look for forwards.
const WHOLE_FILE: usize = 64 << 20;
/// A thread's file buffer is kept for the next session up to this size.
const KEEP_BUFFER: usize = 4 << 20;

thread_local! {
    /// The content of the file being verified: one buffer per thread, file after file.
    static CONTENT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A line kept by the chain check, parsed (`None` when it is not a JSON object).
fn object(line: &Option<Vec<u8>>) -> Option<Map<String, Value>> {
    match line.as_deref().map(serde_json::from_slice::<Value>) {
        Some(Ok(Value::Object(m))) => Some(m),
        _ => None,
    }
}

/// A line's header field, read as the parsed line would give it: borrowed when the line reads
/// exactly as a full parse would ([`reader::skim`]), else from the parse.
fn header_field(
    line: &Option<Vec<u8>>,
    field: impl Fn(&ChainView<'_>) -> Option<String>,
    key: &str,
) -> Option<String> {
    if let Some(view) = reader::skim(line.as_deref()?) {
        return field(&view);
    }
    object(line)?.get(key)?.as_str().map(str::to_string)
}

/// Verifies one session directory.
pub fn verify_session(session: &SessionRef, this_host: &str) -> SessionResult {
    let mut result = SessionResult::default();
    let files = match session_files(&session.dir) {
        Ok(f) => f,
        Err(e) => {
            result.problems.push(Problem {
                file: session.dir.clone(),
                line: 0,
                severity: Severity::Incomplete,
                cut_short: false,
                text: format!("cannot read the directory: {e}"),
            });
            return result;
        }
    };
    let mut logout: Option<Map<String, Value>> = None;
    // Channels' first lines, parsed only if the session may still be live.
    let mut channel_starts: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    let mut reports: BTreeMap<String, FileResult> = BTreeMap::new();
    // Whether a channel may hold forwarded connections whose payloads need checking.
    let mut may_forward = false;
    let mut content = CONTENT.with(|c| c.take());
    for (kind, name, path) in &files {
        // A channel not looked at whole (too long, unreadable) may hold forwards.
        let mut forwards = matches!(kind, FileKind::Channel(_));
        let mut look = |data: &[u8]| forwards &= crate::forward_view::may_name_forward(data);
        let verified = reader::verify_file_buffered(path, WHOLE_FILE, &mut content, &mut look);
        may_forward |= forwards;
        let report = match verified {
            Ok(r) => r,
            Err(e) => {
                result.problems.push(Problem {
                    file: path.clone(),
                    line: 0,
                    severity: Severity::Incomplete,
                    cut_short: false,
                    text: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        for (line, text) in &report.problems {
            let cut_short = report.cut_short_line == Some(*line);
            result.problems.push(Problem {
                file: path.clone(),
                line: *line,
                severity: if cut_short {
                    Severity::Incomplete
                } else {
                    Severity::Broken
                },
                text: text.clone(),
                cut_short,
            });
        }
        if report.lines == 0 {
            result.problems.push(Problem {
                file: path.clone(),
                line: 0,
                severity: Severity::Incomplete,
                cut_short: false,
                text: "empty file".into(),
            });
        }
        // The first and last lines tell what the file should contain.
        // (Kept by the chain check as it read them: the file is read once.)
        if let Some(dir_host) = session.host.as_deref() {
            let record_host = header_field(
                &report.first_line,
                |v| v.host.as_deref().map(str::to_string),
                header_key::HOST,
            );
            if let Some(text) = crate::central::misfiled(dir_host, record_host.as_deref()) {
                result.problems.push(Problem {
                    file: path.clone(),
                    line: 1,
                    severity: Severity::Broken,
                    cut_short: false,
                    text,
                });
            }
        }
        match kind {
            FileKind::Session => {
                let kind = header_field(
                    &report.last_line,
                    |v| v.kind.as_deref().map(str::to_string),
                    header_key::TYPE,
                );
                if kind.as_deref() == Some(Logout::TYPE) {
                    logout = object(&report.last_line);
                }
            }
            FileKind::Channel(_) => {
                channel_starts.insert(name.clone(), report.first_line.clone());
            }
            FileKind::Sudo | FileKind::Audit => {}
        }
        reports.insert(
            name.clone(),
            FileResult {
                path: path.clone(),
                lines: report.lines,
                last_seq: report.last_seq,
                last_digest: report.last_digest.clone(),
                last_type: report.last_type.clone(),
            },
        );
    }
    if content.capacity() <= KEEP_BUFFER {
        CONTENT.with(|c| c.replace(content));
    }
    let has_session_file = reports.contains_key("session.jsonl");
    // A session that logged out is not live, whatever runs: only without a logout line are
    // the recorders and the grant looked for.
    result.live = logout.is_none() && {
        channel_starts
            .values()
            .filter_map(object)
            .any(|s| crate::live::recorder_alive(&s, this_host))
            || crate::live::grant_exists(&session.id)
    };
    if result.live {
        // A live writer can be caught between the bytes of one line.
        result.problems.retain(|p| !p.cut_short);
    }
    // Files whose missing end is already reported against the logout's record of them.
    let mut ended_at_logout = BTreeSet::new();
    match logout {
        Some(lo) => {
            let logged = logged_channels(lo);
            for (name, entry) in &logged {
                let Some(rep) = reports.get(name) else {
                    result.problems.push(Problem {
                        file: session.dir.join(name),
                        line: 0,
                        severity: Severity::Broken,
                        cut_short: false,
                        text: format!(
                            "missing: the logout line records this file (seq {})",
                            entry.seq
                        ),
                    });
                    continue;
                };
                if !entry.open && rep.last_type != "channel.end" {
                    ended_at_logout.insert(rep.path.clone());
                    result.problems.push(Problem {
                        file: rep.path.clone(),
                        line: rep.lines,
                        severity: Severity::Broken,
                        cut_short: false,
                        text: format!(
                            "last line is {:?}, but the logout recorded the channel as ended at seq {}",
                            rep.last_type, entry.seq
                        ),
                    });
                }
                if entry.seq > rep.last_seq {
                    result.problems.push(Problem {
                        file: rep.path.clone(),
                        line: rep.lines,
                        severity: Severity::Broken,
                        cut_short: false,
                        text: format!(
                            "ends at seq {} but the logout recorded seq {}: lines were removed",
                            rep.last_seq, entry.seq
                        ),
                    });
                    continue;
                }
                let digest = if entry.seq == rep.last_seq {
                    Some(rep.last_digest.clone())
                } else {
                    digests_at(&rep.path, &BTreeSet::from([entry.seq])).remove(&entry.seq)
                };
                if digest.as_deref() != Some(entry.digest.as_str()) {
                    result.problems.push(Problem {
                        file: rep.path.clone(),
                        line: 0,
                        severity: Severity::Broken,
                        cut_short: false,
                        text: format!(
                            "the line with seq {} does not have the digest the logout recorded",
                            entry.seq
                        ),
                    });
                }
            }
            for (name, rep) in &reports {
                if name.starts_with("channel-") && !logged.contains_key(name) && !logged.is_empty()
                {
                    result.problems.push(Problem {
                        file: rep.path.clone(),
                        line: 0,
                        severity: Severity::Incomplete,
                        cut_short: false,
                        text: "not listed in the logout line (started after logout?)".into(),
                    });
                }
            }
        }
        None if !result.live && has_session_file => {
            let rep = &reports["session.jsonl"];
            result.problems.push(Problem {
                file: rep.path.clone(),
                line: rep.lines,
                severity: Severity::Incomplete,
                cut_short: false,
                text: "no logout line and no live recorder: the session did not close cleanly"
                    .into(),
            });
        }
        None => {}
    }
    if !result.live {
        for (name, rep) in &reports {
            let expected = if name.starts_with("channel-") {
                "channel.end"
            } else if name.starts_with("sudo-") {
                "sudo.end"
            } else {
                continue;
            };
            if rep.last_type != expected && rep.lines > 0 && !ended_at_logout.contains(&rep.path) {
                result.problems.push(Problem {
                    file: rep.path.clone(),
                    line: rep.lines,
                    severity: Severity::Incomplete,
                    cut_short: false,
                    text: format!("last line is {:?}, not {expected}", rep.last_type),
                });
            }
        }
    }
    // Kept payloads of connect channels: the file must match the SHA-256 its close recorded.
    let payload = if may_forward {
        crate::forward_view::payload_problems(session)
    } else {
        Vec::new()
    };
    for (file, text) in payload {
        result.problems.push(Problem {
            file,
            line: 0,
            severity: Severity::Broken,
            cut_short: false,
            text,
        });
    }
    result.files = reports.into_values().collect();
    result
}

/// One anchor from syslog: `sessrec anchor file=<path> seq=<n> sha256=<hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorLine {
    pub file: String,
    pub seq: u64,
    pub digest: String,
    /// Sender uid when the export says (journald `_UID`); `None` for plain text.
    pub uid: Option<u32>,
}

/// Parses anchors from `journalctl -o json` lines or plain syslog text lines.
pub fn parse_anchors(text: &str) -> Vec<AnchorLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        let (message, uid) = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(o)) => {
                let msg = o
                    .get("MESSAGE")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let uid = o.get("_UID").and_then(|u| {
                    u.as_str()
                        .and_then(|s| s.parse().ok())
                        .or(u.as_u64().map(|n| n as u32))
                });
                (msg, uid)
            }
            _ => (line.to_string(), None),
        };
        let Some(pos) = message.find("sessrec anchor ") else {
            continue;
        };
        let mut file = None;
        let mut seq = None;
        let mut digest = None;
        for word in message[pos + 15..].split_ascii_whitespace() {
            if let Some(v) = word.strip_prefix("file=") {
                file = Some(v.to_string());
            } else if let Some(v) = word.strip_prefix("seq=") {
                seq = v.parse().ok();
            } else if let Some(v) = word.strip_prefix("sha256=") {
                digest = Some(v.to_string());
            }
        }
        if let (Some(file), Some(seq), Some(digest)) = (file, seq, digest) {
            out.push(AnchorLine {
                file,
                seq,
                digest,
                uid,
            });
        }
    }
    out
}

/// Checks the anchors that name files of this session.
pub fn check_anchors(
    session: &SessionRef,
    anchors: &[AnchorLine],
    trusted_uids: &[u32],
    result: &mut SessionResult,
) {
    let mut wanted: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mine: Vec<(&AnchorLine, String)> = anchors
        .iter()
        .filter_map(|a| {
            let mut parts = a.file.rsplit('/');
            let name = parts.next()?.to_string();
            (parts.next()? == session.id).then_some((a, name))
        })
        .collect();
    for (a, name) in &mine {
        wanted.entry(name.clone()).or_default().insert(a.seq);
    }
    let mut digests: BTreeMap<String, BTreeMap<u64, String>> = BTreeMap::new();
    for (name, seqs) in &wanted {
        digests.insert(name.clone(), digests_at(&session.dir.join(name), seqs));
    }
    for (a, name) in mine {
        let path = session.dir.join(&name);
        if let Some(uid) = a.uid {
            if !trusted_uids.contains(&uid) {
                result.problems.push(Problem {
                    file: path,
                    line: 0,
                    severity: Severity::Broken,
                    cut_short: false,
                    text: format!("anchor for seq {} was sent by uid {uid}, not root or sessrec: ignored as forged", a.seq),
                });
                continue;
            }
        }
        match digests.get(&name).and_then(|d| d.get(&a.seq)) {
            Some(d) if *d == a.digest => {}
            Some(_) => result.problems.push(Problem {
                file: path,
                line: 0,
                severity: Severity::Broken,
                cut_short: false,
                text: format!("the line with seq {} differs from the anchor sent to syslog", a.seq),
            }),
            None => result.problems.push(Problem {
                file: path,
                line: 0,
                severity: Severity::Broken,
                cut_short: false,
                text: format!("no line with seq {} although syslog holds an anchor for it: lines were removed", a.seq),
            }),
        }
    }
}

/// The sessions `verify` checks: SESSION, `--all`, or `--since`/`--until`.
pub fn selected_sessions(ctx: &Context) -> Result<Vec<SessionRef>, Failure> {
    let sessions: Vec<SessionRef> = match (ctx.args.positional.first(), ctx.args.flag("--all")) {
        (Some(_), true) => return Err(Failure::usage("give either SESSION or --all, not both")),
        (Some(arg), false) => {
            let (session, channel) = crate::store::split_target(arg);
            if channel.is_some() {
                return Err(Failure::usage(
                    "verify checks whole sessions: give SESSION without /CHANNEL",
                ));
            }
            vec![ctx.tree.resolve(&session).map_err(Failure::error)?]
        }
        (None, _) => {
            if !ctx.args.flag("--all")
                && ctx.args.value("--since").is_none()
                && ctx.args.value("--until").is_none()
            {
                return Err(Failure::usage("give SESSION, --all, or --since/--until"));
            }
            let (since, until) = ctx.time_range()?;
            ctx.tree
                .sessions(since, until)
                .map_err(|e| Failure::error(e.to_string()))?
                .into_iter()
                .filter(|s| {
                    since.is_none_or(|t| s.start_hint_us >= t)
                        && until.is_none_or(|t| s.start_hint_us < t)
                })
                .collect()
        }
    };
    Ok(sessions)
}

pub fn run(ctx: &Context) -> CmdResult {
    let json = ctx.args.flag("--json");
    // As the gate selected and logged them.
    let sessions: Vec<SessionRef> = ctx.reading.iter().map(|(s, _)| s.clone()).collect();
    let anchors = match ctx.args.value("--anchors") {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::error(format!("cannot read anchors {path}: {e}")))?;
            let a = parse_anchors(&text);
            if a.is_empty() {
                return Err(Failure::error(format!(
                    "{path} holds no `sessrec anchor` lines"
                )));
            }
            if a.iter().any(|x| x.uid.is_none()) && !json {
                eprintln!("sessrec verify: note: plain-text anchors carry no sender uid; export with `journalctl -o json` so forged anchors can be told apart");
            }
            Some(a)
        }
        None => None,
    };
    let trusted_uids: Vec<u32> = {
        let mut v = vec![0];
        if let Ok(Some(u)) = nix::unistd::User::from_name("sessrec") {
            v.push(u.uid.as_raw());
        }
        v
    };
    let mut out = crate::output::stdout();
    let mut worst: Option<Severity> = None;
    // A central tree's anchors, filed per host by the receiver (read once per host).
    let mut host_anchors: BTreeMap<String, Vec<AnchorLine>> = BTreeMap::new();
    let mut tally = crate::central::HostTally::default();
    // Sessions are verified on every core; their reports are printed in order.
    let this_host = ctx.host.as_str();
    crate::parallel::for_each_ordered(
        &sessions,
        |session| verify_session(session, this_host),
        |session, mut result| -> Result<(), Failure> {
            let used = match (&anchors, &session.host) {
                (Some(a), _) => Some(a.as_slice()),
                (None, Some(host)) => Some(
                    host_anchors
                        .entry(host.clone())
                        .or_insert_with(|| {
                            crate::central::anchor_text(&ctx.tree.root, host)
                                .map(|t| parse_anchors(&t))
                                .unwrap_or_default()
                        })
                        .as_slice(),
                ),
                (None, None) => None,
            };
            if let Some(a) = used {
                check_anchors(session, a, &trusted_uids, &mut result);
            }
            if let Some(host) = &session.host {
                tally.add(
                    host,
                    result.files.iter().map(|f| f.lines).sum(),
                    unanchored_lines(session, &result, used.unwrap_or_default()),
                    result
                        .problems
                        .iter()
                        .filter(|p| p.severity == Severity::Broken)
                        .map(|p| &p.file)
                        .collect::<BTreeSet<_>>()
                        .len() as u64,
                );
            }
            worst = worst.max(result.worst());
            if json {
                let v = json!({
                    "session": session.id,
                    "ok": result.ok(),
                    "live": result.live,
                    "files": result.files.iter().map(|f| json!({
                        "file": f.path.display().to_string(), "lines": f.lines, "last_seq": f.last_seq,
                        "last_digest": f.last_digest, "last_type": f.last_type,
                    })).collect::<Vec<_>>(),
                    "problems": result.problems.iter().map(|p| json!({
                        "file": p.file.display().to_string(), "line": p.line,
                        "severity": match p.severity { Severity::Broken => "broken", Severity::Incomplete => "incomplete" },
                        "problem": p.text,
                    })).collect::<Vec<_>>(),
                });
                serde_json::to_writer(&mut out, &v).map_err(|e| Failure::error(e.to_string()))?;
                writeln!(out)?;
            } else {
                let status = match result.worst() {
                    None if result.live => "OK (live)",
                    None => "OK",
                    Some(Severity::Incomplete) => "INCOMPLETE",
                    Some(Severity::Broken) => "FAILED",
                };
                let lines: u64 = result.files.iter().map(|f| f.lines).sum();
                writeln!(
                    out,
                    "{status:<10} {} ({} files, {lines} lines)",
                    escape_control(&session.id),
                    result.files.len()
                )?;
                for p in &result.problems {
                    let tag = match p.severity {
                        Severity::Broken => "broken",
                        Severity::Incomplete => "incomplete",
                    };
                    writeln!(out, "  {tag}: {}", escape_control(&format_problem(p)))?;
                }
            }
            Ok(())
        },
    )?;
    tally.report(json, &mut out)?;
    if ctx.args.flag("--all") {
        worst = worst.max(verify_access_logs(ctx, json, &mut out)?);
    }
    out.flush()?;
    Ok(match worst {
        None => exit::OK,
        Some(Severity::Incomplete) => exit::INCOMPLETE,
        Some(Severity::Broken) => exit::FINDING,
    })
}

/// Lines of the session's files after the last anchor that names them (all of a file that no
/// anchor names): what root on the bastion could still have rewritten unseen.
fn unanchored_lines(session: &SessionRef, result: &SessionResult, anchors: &[AnchorLine]) -> u64 {
    result
        .files
        .iter()
        .map(|f| {
            let stored_name = f
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            // Anchors name the file as written, whether it is stored compressed now or not.
            let name = sessrec_core::stored::logical_name(&stored_name).unwrap_or(&stored_name);
            let key = format!("{}/{name}", session.id);
            let anchored = anchors
                .iter()
                .filter(|a| a.file == key || a.file.ends_with(&format!("/{key}")))
                .map(|a| a.seq)
                .max()
                .unwrap_or(0);
            f.last_seq.saturating_sub(anchored)
        })
        .sum()
}

/// `--all` also checks the access log's chains ([`sessrec_core::access_log`]): a broken one
/// means someone edited the record of who read the records.
fn verify_access_logs(
    ctx: &Context,
    json: bool,
    out: &mut dyn Write,
) -> Result<Option<Severity>, Failure> {
    let reports = sessrec_core::access_log::verify_all(&ctx.tree.root).map_err(|e| {
        Failure::error(format!(
            "cannot read the access log under {}: {e}",
            ctx.tree.root.display()
        ))
    })?;
    let mut worst = None;
    for (path, report) in reports {
        // The last line of today's file may be being written under its lock only; a cut-short
        // line is a crash remnant, broken like any other.
        let severity = (!report.problems.is_empty()).then_some(Severity::Broken);
        worst = worst.max(severity);
        if json {
            let v = json!({
                "access_log": path.display().to_string(),
                "ok": report.problems.is_empty(),
                "lines": report.lines,
                "problems": report.problems.iter().map(|(line, text)| json!({
                    "file": path.display().to_string(), "line": line,
                    "severity": "broken", "problem": text,
                })).collect::<Vec<_>>(),
            });
            serde_json::to_writer(&mut *out, &v).map_err(|e| Failure::error(e.to_string()))?;
            writeln!(out)?;
        } else {
            let status = if report.problems.is_empty() {
                "OK"
            } else {
                "FAILED"
            };
            writeln!(
                out,
                "{status:<10} access log {} ({} lines)",
                escape_control(&path.display().to_string()),
                report.lines
            )?;
            for (line, text) in &report.problems {
                writeln!(
                    out,
                    "  broken: {}:{line}: {}",
                    escape_control(&path.display().to_string()),
                    escape_control(text)
                )?;
            }
        }
    }
    Ok(worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_anchor_exports() {
        let text = concat!(
            "Dec  4 10:00:00 bastion sessrec-shell[42]: sessrec anchor file=/var/log/sessrec/2026/12/04/x/channel-1.jsonl seq=17 sha256=ab\n",
            "{\"MESSAGE\":\"sessrec anchor file=a/b/session.jsonl seq=2 sha256=cd\",\"_UID\":\"1000\"}\n",
            "unrelated line\n",
        );
        let a = parse_anchors(text);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].seq, 17);
        assert_eq!(a[0].uid, None);
        assert_eq!(a[1].file, "a/b/session.jsonl");
        assert_eq!(a[1].uid, Some(1000));
    }

    #[test]
    fn reads_the_channels_the_logout_recorded() {
        let logout: Map<String, Value> = serde_json::from_str(
            r#"{"type":"logout","channels":[
                {"file":"channel-1.jsonl","last_seq":9,"digest":"aa","open":false},
                {"file":"channel-2.jsonl","last_seq":3,"digest":"bb","open":true,"newer":1},
                {"file":"channel-3.jsonl","error":"cannot read"}]}"#,
        )
        .unwrap();
        let logged = logged_channels(logout);
        assert_eq!(logged.len(), 2, "{logged:?}");
        assert_eq!(logged["channel-1.jsonl"].seq, 9);
        assert!(!logged["channel-1.jsonl"].open);
        let c = &logged["channel-2.jsonl"];
        assert!(c.open && c.digest == "bb" && c.seq == 3);
    }
}
