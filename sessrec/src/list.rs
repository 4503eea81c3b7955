//! `sessrec list`: one line per session, from the first and last lines of its files.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::io::Write;

use serde_json::{json, Value};

use crate::catalog::{Check, Entry};
use crate::context::{exit, CmdResult, Context, Failure};
use crate::escape::escape_control;
use crate::filters::Filters;
use crate::summary::{State, Summary};
use crate::timespec::{format_duration, short_time};

pub fn run(ctx: &Context) -> CmdResult {
    let filters = Filters::from_args(ctx)?;
    // Every listed session's chains are checked (`--verify` is the default and kept for scripts).
    let anchors = crate::integrity::anchors_arg(ctx)?;
    let json = ctx.args.flag("--json");
    // Date directories are pruned with a day of slack for sessions whose login time
    // precedes their id's date by a little.
    // Lone sudo sessions of a central tree are told from login sessions by the survey, which
    // reads each session's file list anyway.
    let sessions = ctx
        .tree
        .sessions_unclassified(
            filters.since.map(|t| t - 86_400_000_000),
            filters.until.map(|t| t + 86_400_000_000),
        )
        .map_err(|e| Failure::error(e.to_string()))?;
    let local = ctx.args.flag("--local");
    let start_width = if local { 25 } else { 20 };
    let mut out = crate::output::stdout();
    // A central tree names each session's host directory: a HOST column leads.
    let host_width = crate::central::host_column_width(sessions.iter().map(|s| s.host.as_deref()));
    if !json {
        if host_width > 0 {
            write!(out, "{:<host_width$}  ", "HOST")?;
        }
        writeln!(
            out,
            "{:<36}  {:<start_width$}  {:>8}  {:<24} {:<12} {:<15} {:<8} {:>3} {:>4} {:>4} {:>4} {:>4} {:>4} {:>7}  {:<15} {:<7}  COMMAND",
            "SESSION",
            "START",
            "DURATION",
            "ACTOR",
            "USER",
            "FROM",
            "KIND",
            "CH",
            "SUDO",
            "XFER",
            "FWD",
            "EXEC",
            "CONN",
            "EXIT",
            "IDENTITY",
            "STATE"
        )?;
    }
    let entries = crate::catalog::survey(&ctx.tree.root, &sessions, &ctx.host);
    let row = Row {
        filters: &filters,
        anchors: anchors.as_deref(),
        json,
        local,
        start_width,
        host_width,
        now_us: ctx.now_us,
    };
    // Rows are formatted on every core, a block at a time, and written in order.
    let blocks: Vec<&[Entry]> = entries.chunks(ROWS_PER_BLOCK).collect();
    let formatted = crate::parallel::map(&blocks, |block| {
        let mut text = Vec::with_capacity(block.len() * 256);
        let mut shown = 0u64;
        for entry in *block {
            shown += u64::from(row.write(&mut text, entry)?);
        }
        Ok::<_, String>((text, shown))
    });
    let mut shown = 0u64;
    for block in formatted {
        let (text, n) = block.map_err(Failure::error)?;
        out.write_all(&text)?;
        shown += n;
    }
    out.flush()?;
    // The process ends with this command: its ~15 allocations per session go back with it,
    // not one `free` at a time.
    drop(blocks);
    std::mem::forget(entries);
    std::mem::forget(sessions);
    if shown == 0 && !json {
        eprintln!(
            "sessrec list: no session in {} matches",
            crate::records::path_display(&ctx.tree.root)
        );
    }
    Ok(exit::OK)
}

/// Rows formatted together on one core.
const ROWS_PER_BLOCK: usize = 2048;

/// How a session's row is written.
struct Row<'a> {
    filters: &'a Filters,
    anchors: Option<&'a [crate::verify::AnchorLine]>,
    json: bool,
    local: bool,
    start_width: usize,
    host_width: usize,
    now_us: i64,
}

impl Row<'_> {
    /// Writes the session's row (and its problem lines) when it passes the filters; whether
    /// it did.
    fn write(&self, out: &mut Vec<u8>, entry: &Entry) -> Result<bool, String> {
        let summary = &entry.summary;
        // The survey's copy of the session: a central session classified by its files.
        let session = &summary.session;
        if !self.filters.accepts(summary) {
            return Ok(false);
        }
        let verdict = match &entry.check {
            Check::Verified(r) => crate::integrity::verdict_of(session, r.clone(), self.anchors),
            Check::Unverifiable(reason) => crate::integrity::unverifiable(session, reason.clone()),
        };
        let io = |e: std::io::Error| e.to_string();
        if self.json {
            let mut v = to_json(summary, self.now_us);
            v["host_dir"] = json!(session.host);
            v["verify"] = json!({"ok": verdict.problems.is_empty(), "problems": verdict.problems});
            v["integrity"] = verdict.to_json();
            serde_json::to_writer(&mut *out, &v).map_err(|e| e.to_string())?;
            out.push(b'\n');
            return Ok(true);
        }
        let (start_width, host_width) = (self.start_width, self.host_width);
        let duration = match (summary.end_us, summary.state) {
            (Some(end), _) => format_duration(end - summary.start_us),
            (None, State::Live) => {
                format!("{}+", format_duration(self.now_us - summary.start_us))
            }
            (None, _) => "?".into(),
        };
        let identity = match summary.verified {
            Some(true) => summary.actor_source.as_str(),
            Some(false) => "unverified",
            None => "-",
        };
        let mut state = summary.state.as_str().to_string();
        state.push(',');
        state.push_str(if verdict.is_damaged() {
            "DAMAGED"
        } else {
            verdict.word()
        });
        let id: Cow<'_, str> = if session.unattributed {
            Cow::Owned(format!("unattributed/{}", session.id))
        } else {
            Cow::Borrowed(&session.id)
        };
        let start = if self.local {
            local_time(summary.start_us)
        } else {
            short_time(summary.start_us)
        };
        let count = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
        let kind = if summary.kinds.is_empty() {
            "-".to_string()
        } else {
            summary.kinds.join("+")
        };
        if host_width > 0 {
            write!(
                out,
                "{:<host_width$}  ",
                control_escaped(session.host.as_deref().unwrap_or("-"))
            )
            .map_err(io)?;
        }
        writeln!(
            out,
            "{:<36}  {:<start_width$}  {:>8}  {:<24} {:<12} {:<15} {:<8} {:>3} {:>4} {:>4} {:>4} {:>4} {:>4} {:>7}  {:<15} {:<7}  {}",
            control_escaped(&id),
            start,
            duration,
            cell(&summary.actor, 24),
            cell(&summary.user, 12),
            cell(&summary.src_ip, 15),
            cell(&kind, 8),
            summary.channels,
            summary.sudo,
            summary.transfers,
            summary.forwards,
            count(summary.execs),
            count(summary.connects),
            cell(summary.exit.as_deref().unwrap_or("-"), 7),
            identity,
            state,
            cell(summary.command.as_deref().unwrap_or("-"), 60)
        )
        .map_err(io)?;
        for p in &summary.problems {
            writeln!(out, "    damaged: {}", escape_control(p)).map_err(io)?;
        }
        if !verdict.is_verified() {
            writeln!(out, "    integrity: {}", escape_control(&verdict.summary())).map_err(io)?;
        }
        Ok(true)
    }
}

/// A time in the local time zone, with its offset: `2026-11-24 11:00:00+01:00`.
fn local_time(us: i64) -> String {
    let offset = sessrec_core::sys::local_utc_offset(us.div_euclid(1_000_000)).unwrap_or(0);
    let shifted = short_time(us + offset * 1_000_000);
    let sign = if offset < 0 { '-' } else { '+' };
    let abs = offset.unsigned_abs();
    format!(
        "{}{sign}{:02}:{:02}",
        shifted.trim_end_matches('Z'),
        abs / 3600,
        abs / 60 % 60
    )
}

/// Escaped and cut to `width` characters (an ellipsis marks the cut).
fn cell(text: &str, width: usize) -> Cow<'_, str> {
    let text = if text.is_empty() { "-" } else { text };
    if text.len() <= width && plain(text) {
        return Cow::Borrowed(text);
    }
    let e = crate::escape::escape_visible(text);
    if e.chars().count() <= width {
        Cow::Owned(e)
    } else {
        let mut s: String = e.chars().take(width - 1).collect();
        s.push('…');
        Cow::Owned(s)
    }
}

/// [`escape_control`] without a copy for the common case.
fn control_escaped(text: &str) -> Cow<'_, str> {
    if plain(text) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(escape_control(text))
    }
}

/// Printable ASCII but `\`: text that both escapes leave as it is.
fn plain(text: &str) -> bool {
    text.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'\\')
}

pub fn to_json(s: &Summary, now_us: i64) -> Value {
    let ts = |us: i64| sessrec_core::time::Timestamp::from_micros(us).to_string();
    json!({
        "session": s.session.id,
        "unattributed": s.session.unattributed,
        "dir": s.session.dir.display().to_string(),
        "start": ts(s.start_us),
        "end": s.end_us.map(ts),
        "duration_s": s.end_us.map(|e| (e - s.start_us) as f64 / 1e6)
            .or_else(|| (s.state == State::Live).then(|| (now_us - s.start_us) as f64 / 1e6)),
        "host": s.host,
        "user": s.user,
        "actor": s.actor,
        "actor_source": s.actor_source,
        "verified_identity": s.verified,
        "src_ip": s.src_ip,
        "src_port": s.src_port,
        "channels": s.channels,
        "sudo": s.sudo,
        "transfers": s.transfers,
        "forwards": s.forwards,
        "kinds": s.kinds,
        "command": s.command,
        "exit": s.exit,
        "execs": s.execs,
        "connects": s.connects,
        "state": s.state.as_str(),
        "problems": s.problems,
    })
}
