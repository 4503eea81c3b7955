//! `sessrec prune`: deletes sessions older than a retention period, never live ones.
#![forbid(unsafe_code)]

use std::io::Write;

use crate::context::{exit, CmdResult, Context, Failure};
use crate::escape::escape_control;
use crate::summary::{summarize, State};

pub fn run(ctx: &Context) -> CmdResult {
    let age = ctx
        .duration_arg("--older-than")?
        .ok_or_else(|| Failure::usage("--older-than is required (e.g. --older-than 365d)"))?;
    if age < 86_400_000_000 {
        return Err(Failure::usage("--older-than must be at least 1d"));
    }
    let dry = ctx.args.flag("--dry-run");
    let cutoff = ctx.now_us - age;
    let sessions = ctx
        .tree
        .sessions(None, None)
        .map_err(|e| Failure::error(e.to_string()))?;
    let holds = crate::hold::load(&ctx.tree.root)?;
    let mut held = 0u32;
    let mut gone: Vec<String> = Vec::new();
    let mut out = crate::output::stdout();
    // Every session is counted: kept ones by why (younger, live, ended recently).
    let (mut removed, mut young, mut live, mut ended_recently) = (0u32, 0u32, 0u32, 0u32);
    for s in &sessions {
        if s.start_hint_us >= cutoff {
            young += 1;
            continue;
        }
        let summary = summarize(s, &ctx.host);
        let host = s.host.as_deref().unwrap_or(&summary.host);
        if let Some(h) = holds.iter().find(|h| h.covers(&s.id, &summary.actor, host)) {
            writeln!(
                out,
                "keep   {} (legal hold: {})",
                escape_control(&s.id),
                escape_control(&h.reason)
            )?;
            held += 1;
            continue;
        }
        let last_activity = summary
            .end_us
            .unwrap_or(summary.start_us)
            .max(s.start_hint_us);
        if summary.state == State::Live
            || !summary
                .open_channels
                .iter()
                .all(|(_, st)| !crate::live::recorder_alive(st, &ctx.host))
        {
            writeln!(out, "keep   {} (live)", escape_control(&s.id))?;
            live += 1;
            continue;
        }
        if last_activity >= cutoff {
            writeln!(
                out,
                "keep   {} (ended within the retention period)",
                escape_control(&s.id)
            )?;
            ended_recently += 1;
            continue;
        }
        if dry {
            writeln!(out, "would remove {}", crate::records::path_display(&s.dir))?;
        } else {
            // remove_dir_all does not follow symlinks inside the tree.
            std::fs::remove_dir_all(&s.dir)
                .map_err(|e| Failure::error(format!("{}: {e}", s.dir.display())))?;
            writeln!(out, "removed {}", crate::records::path_display(&s.dir))?;
            // Empty date directories go too; a central tree's host directory stays (the host
            // is still known).
            let mut dir = s.dir.parent().filter(|_| s.host.is_none());
            while let Some(d) = dir {
                if d == ctx.tree.root || std::fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
        }
        removed += 1;
        if !dry {
            gone.push(match &s.host {
                Some(h) => format!("{h}/{}", s.id),
                None => s.id.clone(),
            });
        }
    }
    let kept = young + live + ended_recently + held;
    writeln!(
        out,
        "{} {removed} of {} session(s); kept {kept}: {young} started within the retention period, {ended_recently} ended within it, {live} live, {held} on legal hold",
        if dry { "would remove" } else { "removed" },
        sessions.len()
    )?;
    out.flush()?;
    // What was deleted goes to the chained access log (and syslog) too: retention and erasure
    // requests need a record of deletion.
    if !gone.is_empty() {
        crate::access::log(&ctx.tree.root, &ctx.host, "prune-removed", &[], &gone)?;
    }
    Ok(exit::OK)
}
