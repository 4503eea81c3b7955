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
    let mut out = crate::output::stdout();
    // Every session is counted: kept ones by why (younger, live, ended recently).
    let (mut removed, mut young, mut live, mut ended_recently) = (0u32, 0u32, 0u32, 0u32);
    for s in &sessions {
        if s.start_hint_us >= cutoff {
            young += 1;
            continue;
        }
        let summary = summarize(s, &ctx.host);
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
            // Empty date directories go too.
            let mut dir = s.dir.parent();
            while let Some(d) = dir {
                if d == ctx.tree.root || std::fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
        }
        removed += 1;
    }
    let kept = young + live + ended_recently;
    writeln!(
        out,
        "{} {removed} of {} session(s); kept {kept}: {young} started within the retention period, {ended_recently} ended within it, {live} live",
        if dry { "would remove" } else { "removed" },
        sessions.len()
    )?;
    out.flush()?;
    Ok(exit::OK)
}
