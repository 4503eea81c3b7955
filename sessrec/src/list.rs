//! `sessrec list`: one line per session, from the first and last lines of its files.
#![forbid(unsafe_code)]

use std::io::Write;

use serde_json::{json, Value};

use crate::context::{exit, CmdResult, Context, Failure};
use crate::escape::escape_control;
use crate::filters::Filters;
use crate::summary::{summarize, State, Summary};
use crate::timespec::{format_duration, short_time};

pub fn run(ctx: &Context) -> CmdResult {
    let filters = Filters::from_args(ctx)?;
    // Every listed session's chains are checked (`--verify` is the default and kept for scripts).
    let anchors = crate::integrity::anchors_arg(ctx)?;
    let json = ctx.args.flag("--json");
    // Date directories are pruned with a day of slack for sessions whose login time
    // precedes their id's date by a little.
    let sessions = ctx
        .tree
        .sessions(
            filters.since.map(|t| t - 86_400_000_000),
            filters.until.map(|t| t + 86_400_000_000),
        )
        .map_err(|e| Failure::error(e.to_string()))?;
    let mut out = crate::output::stdout();
    if !json {
        writeln!(
            out,
            "{:<36}  {:<20}  {:>8}  {:<24} {:<12} {:<15} {:>3} {:>4} {:>4}  {:<15} STATE",
            "SESSION",
            "START",
            "DURATION",
            "ACTOR",
            "USER",
            "FROM",
            "CH",
            "SUDO",
            "XFER",
            "IDENTITY"
        )?;
    }
    for session in &sessions {
        let summary = summarize(session, &ctx.host);
        if !filters.accepts(&summary) {
            continue;
        }
        let verdict = crate::integrity::check(session, &ctx.host, anchors.as_deref());
        if json {
            let mut v = to_json(&summary, ctx.now_us);
            v["verify"] = json!({"ok": verdict.problems.is_empty(), "problems": verdict.problems});
            v["integrity"] = verdict.to_json();
            serde_json::to_writer(&mut out, &v).map_err(|e| Failure::error(e.to_string()))?;
            writeln!(out)?;
        } else {
            let duration = match (summary.end_us, summary.state) {
                (Some(end), _) => format_duration(end - summary.start_us),
                (None, State::Live) => {
                    format!("{}+", format_duration(ctx.now_us - summary.start_us))
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
            let id = if session.unattributed {
                format!("unattributed/{}", session.id)
            } else {
                session.id.clone()
            };
            writeln!(
                out,
                "{:<36}  {:<20}  {:>8}  {:<24} {:<12} {:<15} {:>3} {:>4} {:>4}  {:<15} {}",
                escape_control(&id),
                short_time(summary.start_us),
                duration,
                cell(&summary.actor, 24),
                cell(&summary.user, 12),
                cell(&summary.src_ip, 15),
                summary.channels,
                summary.sudo,
                summary.transfers,
                identity,
                state
            )?;
            for p in &summary.problems {
                writeln!(out, "    damaged: {}", escape_control(p))?;
            }
            if !verdict.is_verified() {
                writeln!(out, "    integrity: {}", escape_control(&verdict.summary()))?;
            }
        }
    }
    out.flush()?;
    Ok(exit::OK)
}

/// Escaped and cut to `width` characters (an ellipsis marks the cut).
fn cell(text: &str, width: usize) -> String {
    let e = escape_control(if text.is_empty() { "-" } else { text });
    if e.chars().count() <= width {
        e
    } else {
        let mut s: String = e.chars().take(width - 1).collect();
        s.push('…');
        s
    }
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
        "state": s.state.as_str(),
        "problems": s.problems,
    })
}
