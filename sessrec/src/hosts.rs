//! `sessrec hosts`: the completeness of a central archive, per bastion. For each host: when it
//! was last heard (the newest arrival in its directory), its open sessions, and its problems —
//! silent past a threshold, an open session with no line for too long, a `seq` gap (lines lost
//! in transit), a file whose chain start is missing, any other broken chain. Exits non-zero and
//! logs to syslog when something is wrong; can write node_exporter textfile metrics.
#![forbid(unsafe_code)]

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::UNIX_EPOCH;

use serde_json::json;
use sessrec_core::sys::{syslog_authpriv, Level};

use crate::context::{exit, CmdResult, Context, Failure};
use crate::escape::escape_control;
use crate::store::{session_files, Tree};
use crate::summary::summarize;
use crate::verify::Severity;

const HOUR_US: i64 = 3_600_000_000;

/// One host's state.
struct HostReport {
    host: String,
    last_heard_us: Option<i64>,
    sessions: u64,
    open: u64,
    problems: Vec<String>,
}

/// Newest modification time (µs) of the files directly in `dir`.
fn newest_mtime(dir: &Path) -> Option<i64> {
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .filter_map(|m| m.modified().ok())
        .filter_map(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_micros() as i64)
        .max()
}

fn report_host(ctx: &Context, host: &str, silent_us: i64, stalled_us: i64) -> HostReport {
    let mut tree = Tree::new(&ctx.tree.root);
    tree.host_filter = Some(host.to_string());
    let sessions = tree.sessions(None, None).unwrap_or_default();
    let mut r = HostReport {
        host: host.to_string(),
        last_heard_us: newest_mtime(&ctx.tree.root.join(host)),
        sessions: sessions.len() as u64,
        open: 0,
        problems: Vec::new(),
    };
    for s in &sessions {
        let newest = newest_mtime(&s.dir);
        r.last_heard_us = r.last_heard_us.max(newest);
        let summary = summarize(s, &ctx.host);
        let has_session_file =
            session_files(&s.dir).is_ok_and(|f| f.iter().any(|(_, n, _)| n == "session.jsonl"));
        if summary.end_us.is_none() && has_session_file {
            r.open += 1;
            if let Some(t) = newest.filter(|t| ctx.now_us - t > stalled_us) {
                r.problems.push(format!(
                    "session {} is open but no line arrived for {}",
                    escape_control(&s.id),
                    crate::timespec::format_duration(ctx.now_us - t)
                ));
            }
        }
        let result = crate::verdict_cache::verify_cached(s, &ctx.host);
        for p in result
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Broken)
        {
            let file = p
                .file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let what = if p.text.contains(" follows seq ") {
                "seq gap (lines lost in transit)"
            } else if p.line == 1 {
                "chain start missing"
            } else {
                "chain broken"
            };
            r.problems.push(format!(
                "{what}: {}/{}:{}: {}",
                escape_control(&s.id),
                escape_control(&file),
                p.line,
                escape_control(&p.text)
            ));
        }
    }
    match r.last_heard_us {
        Some(t) if ctx.now_us - t > silent_us => r.problems.insert(
            0,
            format!(
                "silent: nothing arrived for {}",
                crate::timespec::format_duration(ctx.now_us - t)
            ),
        ),
        None => r.problems.insert(0, "silent: nothing ever arrived".into()),
        _ => {}
    }
    r
}

/// node_exporter textfile metrics, written to a temporary name and renamed into place.
fn write_prom(path: &str, reports: &[HostReport]) -> std::io::Result<()> {
    let label = |h: &str| h.replace('\\', "\\\\").replace('"', "\\\"");
    let mut text = String::from(
        "# HELP sessrec_host_last_heard_seconds Newest arrival from the host (unix time).\n\
         # TYPE sessrec_host_last_heard_seconds gauge\n",
    );
    for r in reports {
        text += &format!(
            "sessrec_host_last_heard_seconds{{host=\"{}\"}} {}\n",
            label(&r.host),
            r.last_heard_us.unwrap_or(0) / 1_000_000
        );
    }
    text += "# HELP sessrec_host_open_sessions Sessions without a logout.\n\
             # TYPE sessrec_host_open_sessions gauge\n";
    for r in reports {
        text += &format!(
            "sessrec_host_open_sessions{{host=\"{}\"}} {}\n",
            label(&r.host),
            r.open
        );
    }
    text += "# HELP sessrec_host_problems Problems found (silence, stalls, gaps, broken chains).\n\
             # TYPE sessrec_host_problems gauge\n";
    for r in reports {
        text += &format!(
            "sessrec_host_problems{{host=\"{}\"}} {}\n",
            label(&r.host),
            r.problems.len()
        );
    }
    let tmp = format!("{path}.tmp");
    fs::write(&tmp, text)?;
    fs::rename(&tmp, path)
}

pub fn run(ctx: &Context) -> CmdResult {
    let silent_us = ctx.duration_arg("--silent-after")?.unwrap_or(HOUR_US);
    let stalled_us = ctx.duration_arg("--stalled-after")?.unwrap_or(HOUR_US);
    let json = ctx.args.flag("--json");
    if let Err(e) = fs::read_dir(&ctx.tree.root) {
        return Err(Failure::error(format!(
            "cannot read {}: {e}",
            ctx.tree.root.display()
        )));
    }
    let reports: Vec<HostReport> =
        crate::central::hosts(&ctx.tree.root, ctx.tree.host_filter.as_deref())
            .iter()
            .map(|h| report_host(ctx, h, silent_us, stalled_us))
            .collect();
    let mut out = crate::output::stdout();
    if !json {
        writeln!(
            out,
            "{:<30} {:<20} {:>8} {:>5} {:>8}  STATE",
            "HOST", "LAST HEARD", "SESSIONS", "OPEN", "PROBLEMS"
        )?;
    }
    for r in &reports {
        if json {
            let v = json!({
                "host": r.host,
                "last_heard": r.last_heard_us.map(|t| sessrec_core::time::Timestamp::from_micros(t).to_string()),
                "sessions": r.sessions,
                "open_sessions": r.open,
                "problems": r.problems,
            });
            writeln!(out, "{v}")?;
        } else {
            writeln!(
                out,
                "{:<30} {:<20} {:>8} {:>5} {:>8}  {}",
                escape_control(&r.host),
                r.last_heard_us
                    .map(crate::timespec::short_time)
                    .unwrap_or_else(|| "never".into()),
                r.sessions,
                r.open,
                r.problems.len(),
                if r.problems.is_empty() {
                    "ok"
                } else {
                    "PROBLEM"
                }
            )?;
            for p in &r.problems {
                writeln!(out, "    {p}")?;
            }
        }
    }
    out.flush()?;
    if let Some(path) = ctx.args.value("--prom") {
        write_prom(path, &reports).map_err(|e| Failure::error(format!("{path}: {e}")))?;
    }
    let troubled: Vec<&HostReport> = reports.iter().filter(|r| !r.problems.is_empty()).collect();
    for r in &troubled {
        // PCI DSS 10.7.2: a failure of logging is alerted, not only printed.
        syslog_authpriv(
            Level::Alert,
            &format!(
                "sessrec hosts: {} has {} problem(s): {}",
                escape_control(&r.host),
                r.problems.len(),
                r.problems[0]
            ),
        );
    }
    Ok(if troubled.is_empty() {
        exit::OK
    } else {
        exit::FINDING
    })
}
