//! `sessrec hosts`: the completeness of a central archive, per bastion. For each host: when it
//! was last heard (the newest arrival in its directory), its open sessions, and its problems —
//! silent past a threshold, an open session with no line for too long, a `seq` gap (lines lost
//! in transit), a file whose chain start is missing, any other broken chain. Exits non-zero and
//! logs to syslog when something is wrong; can write node_exporter textfile metrics.
//!
//! A host's heartbeats (`<host>/heartbeat/heartbeat-*.jsonl`, see [`crate::heartbeat`]) count
//! as arrivals, so a host without sessions is not silent while it beats; the newest one says
//! the host's free record space, importer lag and exec-audit state, and sets the default
//! silence threshold to three heartbeat intervals.
#![forbid(unsafe_code)]

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::UNIX_EPOCH;

use serde_json::json;
use sessrec_core::schema::{Event, Heartbeat, Line};
use sessrec_core::sys::{syslog_authpriv, Level};
use sessrec_core::time::Timestamp;

use crate::catalog::{Check, Entry};
use crate::context::{exit, CmdResult, Context, Failure};
use crate::escape::escape_control;
use crate::store::{SessionRef, Tree};
use crate::verify::Severity;

const HOUR_US: i64 = 3_600_000_000;
/// Longest heartbeat file read (a day at one beat a minute is ~0.5 MB).
const HEARTBEAT_FILE_MAX: u64 = 8 << 20;

/// The thresholds a host is judged by.
struct Thresholds {
    /// `None`: three heartbeat intervals when the host beats, else an hour.
    silent_us: Option<i64>,
    stalled_us: i64,
    lag_s: u64,
}

/// The newest heartbeat filed for a host and when it was written.
struct Beat {
    time_us: i64,
    heartbeat: Heartbeat,
}

/// The newest heartbeat under `<root>/<host>/heartbeat/`: the last line of the newest day's file.
fn newest_heartbeat(host_dir: &Path) -> Option<Beat> {
    let dir = host_dir.join(crate::heartbeat::CENTRAL_DIR);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .ok()?
        .flatten()
        .filter(|e| {
            e.file_name().to_str().is_some_and(|n| {
                n.starts_with(crate::heartbeat::FILE_PREFIX) && n.ends_with(".jsonl")
            })
        })
        .filter(|e| {
            e.metadata()
                .is_ok_and(|m| m.is_file() && m.len() <= HEARTBEAT_FILE_MAX)
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    files.iter().rev().find_map(|path| {
        let text = fs::read_to_string(path).ok()?;
        text.lines().rev().find_map(|l| {
            let map = serde_json::from_str(l).ok()?;
            let line = Line::from_map(map);
            let time_us = Timestamp::parse(line.header.time.as_deref()?)?.as_micros();
            match line.event {
                Event::Heartbeat(heartbeat) => Some(Beat { time_us, heartbeat }),
                _ => None,
            }
        })
    })
}

/// Broken chains of the host's heartbeat files: a heartbeat edited, removed or forged in
/// transit or on the central host is a logging failure like a broken session record.
fn heartbeat_chain_problems(host_dir: &Path) -> Vec<String> {
    let dir = host_dir.join(crate::heartbeat::CENTRAL_DIR);
    let Ok(rd) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = rd
        .flatten()
        .filter(|e| {
            e.file_name().to_str().is_some_and(|n| {
                n.starts_with(crate::heartbeat::FILE_PREFIX) && n.ends_with(".jsonl")
            })
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut problems = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(report) = sessrec_core::reader::verify_file(&path) else {
            continue;
        };
        for (line, text) in &report.problems {
            // The newest line may still be arriving.
            if report.cut_short_line == Some(*line) {
                continue;
            }
            problems.push(format!(
                "heartbeat chain broken: {}:{line}: {}",
                escape_control(&name),
                escape_control(text)
            ));
        }
    }
    problems
}

/// One host's state.
struct HostReport {
    host: String,
    last_heard_us: Option<i64>,
    sessions: u64,
    open: u64,
    problems: Vec<String>,
    beat: Option<Beat>,
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

/// The sessions of `host` in the central layout (unclassified: the survey tells lone sudo
/// sessions from login sessions by the files it reads or checks anyway).
fn host_sessions(ctx: &Context, host: &str) -> Vec<SessionRef> {
    let mut tree = Tree::new(&ctx.tree.root);
    tree.host_filter = Some(host.to_string());
    tree.sessions_unclassified(None, None).unwrap_or_default()
}

fn report_host(
    ctx: &Context,
    host: &str,
    sessions: &[(&SessionRef, Entry)],
    limits: &Thresholds,
) -> HostReport {
    let stalled_us = limits.stalled_us;
    let host_dir = ctx.tree.root.join(host);
    let beat = newest_heartbeat(&host_dir);
    let mut r = HostReport {
        host: host.to_string(),
        last_heard_us: newest_mtime(&host_dir)
            .max(newest_mtime(&host_dir.join(crate::heartbeat::CENTRAL_DIR)))
            .max(beat.as_ref().map(|b| b.time_us)),
        sessions: sessions.len() as u64,
        open: 0,
        problems: Vec::new(),
        beat,
    };
    for (s, entry) in sessions {
        // Arrivals are record files (not the verdict cache's entries beside them).
        let newest = entry.newest_us;
        r.last_heard_us = r.last_heard_us.max(newest);
        if entry.summary.end_us.is_none() && entry.has_session_file {
            r.open += 1;
            if let Some(t) = newest.filter(|t| ctx.now_us - t > stalled_us) {
                r.problems.push(format!(
                    "session {} is open but no line arrived for {}",
                    escape_control(&s.id),
                    crate::timespec::format_duration(ctx.now_us - t)
                ));
            }
        }
        let fresh;
        let result = match &entry.check {
            Check::Verified(r) => r,
            Check::Unverifiable(_) => {
                fresh = crate::verdict_cache::verify_cached(s, &ctx.host);
                &fresh
            }
        };
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
    r.problems.extend(heartbeat_chain_problems(&host_dir));
    if let Some(h) = r.beat.as_ref().map(|b| &b.heartbeat) {
        for (importer, lag) in [
            ("sudo-iolog-import", h.sudo_import_lag),
            ("sessrec-audit-import", h.audit_import_lag),
        ] {
            if let Some(lag) = lag.filter(|&l| l > limits.lag_s) {
                r.problems.push(format!(
                    "{importer} is {} behind its input",
                    crate::timespec::format_duration(lag as i64 * 1_000_000)
                ));
            }
        }
        if h.exec_audit.as_deref() == Some("off") {
            r.problems.push(
                "exec audit is off: commands and connections are not audited (auditd stopped, auditing disabled or the sessrec rules not loaded)".into(),
            );
        }
    }
    let silent_us = limits.silent_us.unwrap_or_else(|| {
        r.beat
            .as_ref()
            .and_then(|b| b.heartbeat.interval)
            .filter(|&i| i > 0)
            .map_or(HOUR_US, |i| 3 * i as i64 * 1_000_000)
    });
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

/// The newest heartbeat, in one line.
fn heartbeat_text(b: &Beat) -> String {
    let h = &b.heartbeat;
    let lag = |l: Option<u64>| match l {
        None => "unknown".to_string(),
        Some(0) => "0s".to_string(),
        Some(s) => crate::timespec::format_duration(s as i64 * 1_000_000),
    };
    format!(
        "heartbeat {}: {} open, {} MiB free for records, sudo import lag {}, audit import lag {}, exec audit {}",
        crate::timespec::short_time(b.time_us),
        h.open_sessions.map_or("?".into(), |n| n.to_string()),
        h.record_disk_free_mb.map_or("?".into(), |n| n.to_string()),
        lag(h.sudo_import_lag),
        lag(h.audit_import_lag),
        escape_control(h.exec_audit.as_deref().unwrap_or("unknown"))
    )
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
    text +=
        "# HELP sessrec_host_last_heartbeat_seconds Time of the newest heartbeat (unix time).\n\
             # TYPE sessrec_host_last_heartbeat_seconds gauge\n";
    for r in reports {
        if let Some(b) = &r.beat {
            text += &format!(
                "sessrec_host_last_heartbeat_seconds{{host=\"{}\"}} {}\n",
                label(&r.host),
                b.time_us / 1_000_000
            );
        }
    }
    text += "# HELP sessrec_host_record_disk_free_bytes Space free for records, per the newest heartbeat.\n\
             # TYPE sessrec_host_record_disk_free_bytes gauge\n";
    for r in reports {
        if let Some(mb) = r
            .beat
            .as_ref()
            .and_then(|b| b.heartbeat.record_disk_free_mb)
        {
            text += &format!(
                "sessrec_host_record_disk_free_bytes{{host=\"{}\"}} {}\n",
                label(&r.host),
                mb * 1024 * 1024
            );
        }
    }
    text += "# HELP sessrec_host_import_lag_seconds How far an importer is behind its input, per the newest heartbeat.\n\
             # TYPE sessrec_host_import_lag_seconds gauge\n";
    for r in reports {
        let Some(h) = r.beat.as_ref().map(|b| &b.heartbeat) else {
            continue;
        };
        for (importer, lag) in [
            ("sudo-iolog-import", h.sudo_import_lag),
            ("sessrec-audit-import", h.audit_import_lag),
        ] {
            if let Some(lag) = lag {
                text += &format!(
                    "sessrec_host_import_lag_seconds{{host=\"{}\",importer=\"{importer}\"}} {lag}\n",
                    label(&r.host)
                );
            }
        }
    }
    text +=
        "# HELP sessrec_host_exec_audit_on 1 when exec auditing is on, per the newest heartbeat.\n\
             # TYPE sessrec_host_exec_audit_on gauge\n";
    for r in reports {
        if let Some(state) = r
            .beat
            .as_ref()
            .and_then(|b| b.heartbeat.exec_audit.as_deref())
        {
            text += &format!(
                "sessrec_host_exec_audit_on{{host=\"{}\",state=\"{}\"}} {}\n",
                label(&r.host),
                label(state),
                u8::from(state == "on")
            );
        }
    }
    let tmp = format!("{path}.tmp");
    fs::write(&tmp, text)?;
    fs::rename(&tmp, path)
}

pub fn run(ctx: &Context) -> CmdResult {
    let limits = Thresholds {
        silent_us: ctx.duration_arg("--silent-after")?,
        stalled_us: ctx.duration_arg("--stalled-after")?.unwrap_or(HOUR_US),
        lag_s: (ctx.duration_arg("--lag-after")?.unwrap_or(HOUR_US / 4) / 1_000_000) as u64,
    };
    let json = ctx.args.flag("--json");
    if let Err(e) = fs::read_dir(&ctx.tree.root) {
        return Err(Failure::error(format!(
            "cannot read {}: {e}",
            ctx.tree.root.display()
        )));
    }
    let hosts = crate::central::hosts(&ctx.tree.root, ctx.tree.host_filter.as_deref());
    let per_host: Vec<Vec<SessionRef>> = hosts.iter().map(|h| host_sessions(ctx, h)).collect();
    let all: Vec<SessionRef> = per_host.iter().flatten().cloned().collect();
    let mut entries = crate::catalog::survey(&ctx.tree.root, &all, &ctx.host).into_iter();
    let reports: Vec<HostReport> = hosts
        .iter()
        .zip(&per_host)
        .map(|(h, sessions)| {
            let mine: Vec<(&SessionRef, Entry)> = sessions.iter().zip(entries.by_ref()).collect();
            report_host(ctx, h, &mine, &limits)
        })
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
                "heartbeat": r.beat.as_ref().map(|b| json!({
                    "time": Timestamp::from_micros(b.time_us).to_string(),
                    "open_sessions": b.heartbeat.open_sessions,
                    "record_disk_free_mb": b.heartbeat.record_disk_free_mb,
                    "sudo_import_lag": b.heartbeat.sudo_import_lag,
                    "audit_import_lag": b.heartbeat.audit_import_lag,
                    "exec_audit": b.heartbeat.exec_audit,
                    "interval": b.heartbeat.interval,
                })),
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
            if let Some(b) = &r.beat {
                writeln!(out, "    {}", heartbeat_text(b))?;
            }
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
