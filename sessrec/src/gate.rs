//! What every command that reads record content does before it reads: name the sessions it will
//! read, log the access ([`crate::access`]), and check their integrity ([`crate::integrity`]),
//! saying the verdict where the operator sees it. The views themselves render unchanged; exports
//! find the verdicts in [`Context::integrity`] for their metadata.
#![forbid(unsafe_code)]

use std::io::Write;

use serde_json::json;

use crate::context::{exit, Context, Failure};
use crate::escape::escape_control;
use crate::filters::Filters;
use crate::store::{split_target, SessionRef};
use crate::verdict::Verdict;

/// Commands that read record content (`hosts` reads every session's summary), end a session,
/// delete records or change what may be deleted (`hold`), so are logged.
pub fn reads_content(command: &str) -> bool {
    matches!(
        command,
        "show"
            | "play"
            | "export"
            | "search"
            | "verify"
            | "kill"
            | "prune"
            | "compress"
            | "hosts"
            | "hold"
    )
}

/// The sessions a command will read.
fn sessions_of(ctx: &Context, command: &str) -> Result<Vec<SessionRef>, Failure> {
    match command {
        "show" | "play" | "export" | "kill" => {
            let (session, _) = split_target(&ctx.args.positional[0]);
            Ok(vec![ctx.tree.resolve(&session).map_err(Failure::error)?])
        }
        "search" => Ok(ctx.reading.iter().map(|(s, _)| s.clone()).collect()),
        "verify" => crate::verify::selected_sessions(ctx),
        "prune" | "compress" => {
            // The candidates: sessions that started before the cutoff (prune keeps live ones
            // and those that ended within the period, and says so).
            let Some(age) = ctx.duration_arg("--older-than")? else {
                return Ok(Vec::new());
            };
            let cutoff = ctx.now_us - age;
            Ok(ctx
                .tree
                .sessions(None, Some(cutoff))
                .map_err(|e| Failure::error(e.to_string()))?
                .into_iter()
                .filter(|s| s.start_hint_us < cutoff)
                .collect())
        }
        _ => Ok(Vec::new()),
    }
}

/// Logs the access and checks integrity; the verdicts go into `ctx.integrity`.
pub fn enter(ctx: &mut Context, command: &str, argv: &[String]) -> Result<(), Failure> {
    if !reads_content(command) {
        return Ok(());
    }
    if command == "kill" && !nix::unistd::geteuid().is_root() {
        // Said before the access log, which such a user cannot write either.
        return Err(Failure::error("only root can end a session"));
    }
    // A search over many sessions takes their summaries and verdicts from the catalog.
    let mut verdicts = Vec::new();
    if command == "search" {
        let anchors = crate::integrity::anchors_arg(ctx)?;
        let filters = Filters::from_args(ctx)?;
        let sessions = ctx
            .tree
            .sessions(
                filters.since.map(|t| t - 86_400_000_000),
                filters.until.map(|t| t + 86_400_000_000),
            )
            .map_err(|e| Failure::error(e.to_string()))?;
        let entries = crate::catalog::survey(&ctx.tree.root, &sessions, &ctx.host);
        for (s, e) in sessions.into_iter().zip(entries) {
            if filters.accepts(&e.summary) {
                verdicts.push(e.verdict(&s, anchors.as_deref()));
                ctx.reading.push((s, e.summary.start_us));
            }
        }
    }
    let sessions = sessions_of(ctx, command)?;
    if command == "verify" {
        // Verify reads what was logged, without listing the tree again.
        ctx.reading = sessions
            .iter()
            .map(|s| (s.clone(), s.start_hint_us))
            .collect();
    }
    let ids: Vec<String> = sessions
        .iter()
        .map(|s| {
            if s.unattributed {
                format!("unattributed/{}", s.id)
            } else {
                s.id.clone()
            }
        })
        .collect();
    crate::access::log(&ctx.tree.root, &ctx.host, command, argv, &ids)?;
    if !matches!(command, "show" | "play" | "export" | "search") {
        return Ok(());
    }
    if command == "search" {
        ctx.integrity = verdicts;
    } else {
        let anchors = crate::integrity::anchors_arg(ctx)?;
        ctx.integrity = sessions
            .iter()
            .map(|s| crate::integrity::check(s, &ctx.host, anchors.as_deref()))
            .collect();
    }
    say(ctx, command)
}

/// Prints the verdicts where the command's reader sees them.
fn say(ctx: &Context, command: &str) -> Result<(), Failure> {
    let json = ctx.args.flag("--json");
    match command {
        "show" if json => {
            let mut out = crate::output::stdout();
            for v in &ctx.integrity {
                let line = json!({
                    "session": v.session, "time": null, "offset_s": null, "file": null,
                    "type": "integrity", "text": v.summary(), "details": v.to_json(),
                });
                serde_json::to_writer(&mut out, &line)
                    .map_err(|e| Failure::error(e.to_string()))?;
                writeln!(out)?;
            }
            out.flush()?;
        }
        "show" => {
            let mut out = crate::output::stdout();
            for v in &ctx.integrity {
                writeln!(out, "integrity: {}", escape_control(&v.summary()))?;
            }
            out.flush()?;
        }
        "play" | "export" => {
            for v in ctx.integrity.iter().filter(|v| !v.is_verified()) {
                eprintln!(
                    "sessrec {command}: integrity: {}",
                    escape_control(&v.summary())
                );
            }
        }
        "search" => {
            for v in ctx.integrity.iter().filter(|v| !v.is_verified()) {
                eprintln!(
                    "sessrec search: {}: integrity: {}",
                    escape_control(&v.session),
                    escape_control(&v.summary())
                );
            }
            let verified = ctx.integrity.iter().filter(|v| v.is_verified()).count();
            eprintln!(
                "sessrec search: integrity: {verified} of {} session(s) searched verified",
                ctx.integrity.len()
            );
        }
        _ => {}
    }
    Ok(())
}

/// After the view: a damaged record turns success into a finding (exit 1), said once more at
/// the end, where the operator looks last.
pub fn leave(ctx: &Context, command: &str, code: i32) -> i32 {
    if code != exit::OK || !matches!(command, "show" | "play" | "export") {
        return code;
    }
    let damaged: Vec<&Verdict> = ctx.integrity.iter().filter(|v| v.is_damaged()).collect();
    for v in &damaged {
        eprintln!(
            "sessrec {command}: the record is DAMAGED: {}",
            escape_control(&v.summary())
        );
    }
    if damaged.is_empty() {
        code
    } else {
        exit::FINDING
    }
}
