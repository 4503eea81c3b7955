//! `sessrec compress`: compresses the record files of closed sessions in place (gzip, see
//! [`sessrec_core::stored`]), on a bastion or a central tree. Every command reads compressed
//! and plain files alike; the lines, their chains and their anchors are unchanged.
//!
//! Never compressed: a session that is live or not cleanly closed (its writers may still
//! append), and a session any of whose files changed within `--older-than` (a shipper tailing
//! the tree may not have read its end yet; shippers match `*.jsonl` and never see a compressed
//! file). Sessions that do not verify are left as they are, for an investigator to see as found.
#![forbid(unsafe_code)]

use std::io::Write;
use std::time::UNIX_EPOCH;

use sessrec_core::stored;

use crate::context::{exit, CmdResult, Context, Failure};
use crate::escape::escape_control;
use crate::store::session_files;
use crate::summary::{summarize, State};

pub fn run(ctx: &Context) -> CmdResult {
    let age = ctx
        .duration_arg("--older-than")?
        .ok_or_else(|| Failure::usage("--older-than is required (e.g. --older-than 1d)"))?;
    let dry = ctx.args.flag("--dry-run");
    let cutoff = ctx.now_us - age;
    let sessions = ctx
        .tree
        .sessions(None, Some(cutoff))
        .map_err(|e| Failure::error(e.to_string()))?;
    let mut out = crate::output::stdout();
    let (mut plain_total, mut compressed_total) = (0u64, 0u64);
    let (mut done, mut already, mut young, mut refused, mut failed) =
        (0u32, 0u32, 0u32, 0u32, 0u32);
    let mut compressed_ids: Vec<String> = Vec::new();
    for s in sessions.iter().filter(|s| s.start_hint_us < cutoff) {
        let shown = match &s.host {
            Some(h) => format!("{}/{}", escape_control(h), escape_control(&s.id)),
            None => escape_control(&s.id),
        };
        let files = match session_files(&s.dir) {
            Ok(f) => f,
            Err(e) => {
                writeln!(out, "skip   {shown} (cannot read: {e})")?;
                failed += 1;
                continue;
            }
        };
        let plain: Vec<_> = files
            .iter()
            .filter(|(_, _, p)| !stored::is_compressed(p))
            .collect();
        if plain.is_empty() {
            already += 1;
            continue;
        }
        let summary = summarize(s, &ctx.host);
        if summary.state != State::Closed || !summary.open_channels.is_empty() {
            writeln!(
                out,
                "skip   {shown} ({})",
                if summary.state == State::Damaged {
                    "damaged or not cleanly closed: left as found"
                } else {
                    "open: its recorder may still write"
                }
            )?;
            refused += 1;
            continue;
        }
        let changed_recently = plain.iter().any(|(_, _, p)| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .is_none_or(|d| d.as_micros() as i64 >= cutoff)
        });
        if changed_recently {
            writeln!(
                out,
                "skip   {shown} (a file changed within --older-than: a shipper may still be reading it)"
            )?;
            young += 1;
            continue;
        }
        let result = crate::verify::verify_session(s, &ctx.host);
        if !result.ok() {
            writeln!(out, "skip   {shown} (does not verify: left as found)")?;
            refused += 1;
            continue;
        }
        if dry {
            writeln!(out, "would compress {shown} ({} files)", plain.len())?;
            done += 1;
            continue;
        }
        let (mut before, mut after) = (0u64, 0u64);
        let mut error = None;
        for (_, name, path) in &plain {
            match stored::compress_in_place(path) {
                Ok(c) => {
                    before += c.plain_bytes;
                    after += c.compressed_bytes;
                }
                Err(e) => {
                    error = Some(format!("{name}: {e}"));
                    break;
                }
            }
        }
        plain_total += before;
        compressed_total += after;
        match error {
            Some(e) => {
                writeln!(out, "FAILED {shown}: {}", escape_control(&e))?;
                failed += 1;
            }
            None => {
                writeln!(
                    out,
                    "compressed {shown}: {} files, {before} -> {after} bytes",
                    plain.len()
                )?;
                done += 1;
            }
        }
        compressed_ids.push(match &s.host {
            Some(h) => format!("{h}/{}", s.id),
            None => s.id.clone(),
        });
        // The views' cached verdict named the plain files; it is stale now.
        let _ = std::fs::remove_file(s.dir.join(crate::verdict_cache::ENTRY));
    }
    let ratio = if compressed_total > 0 {
        format!(" ({:.1}:1)", plain_total as f64 / compressed_total as f64)
    } else {
        String::new()
    };
    writeln!(
        out,
        "{} {done} session(s): {plain_total} -> {compressed_total} bytes{ratio}; {already} already compressed, {young} changed within --older-than, {refused} open, damaged or unverified, {failed} failed",
        if dry { "would compress" } else { "compressed" },
    )?;
    out.flush()?;
    // Which sessions were rewritten (in form, not content) goes to the chained access log too.
    if !compressed_ids.is_empty() {
        crate::access::log(
            &ctx.tree.root,
            &ctx.host,
            "compress-done",
            &[],
            &compressed_ids,
        )?;
    }
    Ok(if failed > 0 { exit::ERROR } else { exit::OK })
}
