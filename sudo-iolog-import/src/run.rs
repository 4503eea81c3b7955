//! One import pass over every configured iolog directory, and its summary.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use sessrec_core::sys::{syslog_authpriv, Level};
use sessrec_core::time::Timestamp;

use crate::correlate::{attribute, Method};
use crate::discover::discover;
use crate::import::{import_session, ImportOptions};
use crate::iolog::{IologSession, SessionError};
use crate::live::{live_step, LiveStep};
use crate::state::{self, Entry, State};
use sessrec_core::import::index::RecordIndex;

/// How far before the oldest sudo session login sessions are looked for.
pub const MAX_SESSION_AGE: Duration = Duration::from_secs(31 * 24 * 3600);
/// An unfinished log unchanged this long is imported even if its login never logged out
/// (sshd killed before it could write the logout).
pub const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The state is saved at least this often during a long pass.
const SAVE_EVERY: Duration = Duration::from_secs(2);

pub struct PassOptions {
    pub iolog_dirs: Vec<PathBuf>,
    pub state_file: PathBuf,
    /// An unfinished log is imported once unchanged this long (and its login has ended).
    pub settle: Duration,
    pub import: ImportOptions,
    /// Send each record's final chain anchor to syslog authpriv.
    pub syslog_anchors: bool,
    /// Import running sessions as far as sudo has written them (`--follow`).
    pub live: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub error: String,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    /// Sudo sessions found in the iolog directories.
    pub found: u64,
    /// Imported by this pass.
    pub imported: u64,
    /// Of those, imported unfinished (sudo killed, or an old sudo).
    pub imported_incomplete: u64,
    /// Imported earlier, per the state file.
    pub already_imported: u64,
    /// Record file present though the state lacked it (a crash after writing); state fixed.
    pub recovered: u64,
    /// Still running, or waiting to settle.
    pub pending: u64,
    /// Running sessions whose record was brought up to date (`--follow`).
    pub live: u64,
    /// Match methods of this pass's imports.
    pub by_method: BTreeMap<String, u64>,
    /// Decompressed stream bytes read.
    pub stream_bytes: u64,
    /// Directories and logs refused because a user could have written them (also in `errors`).
    pub refused: u64,
    pub errors: Vec<Problem>,
    /// Record files written, relative to record_dir.
    pub records: Vec<PathBuf>,
    pub seconds: f64,
}

/// Progress of a pass: sessions handled so far, of how many, and bytes read.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64, u64);

pub fn run_pass(opts: &PassOptions, progress: Progress<'_>) -> io::Result<Summary> {
    let began = Instant::now();
    let mut summary = Summary::default();
    let _lock = state::lock(&opts.state_file)?;
    let mut state = State::load(&opts.state_file)?;

    let mut candidates = Vec::new();
    for root in &opts.iolog_dirs {
        let found = match discover(root) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                summary.errors.push(problem(root, e.to_string()));
                continue;
            }
        };
        for (path, e) in found.problems {
            summary.errors.push(problem(&path, e.to_string()));
        }
        for (path, e) in found.refused {
            refuse(&mut summary, &path, &e.to_string());
        }
        for dir in found.sessions {
            summary.found += 1;
            match IologSession::open(&dir) {
                Ok(s) => {
                    let key = state::key(&s.dir, s.meta.start, s.timing_identity);
                    if state.contains(&key) {
                        summary.already_imported += 1;
                    } else {
                        candidates.push((key, s));
                    }
                }
                Err(SessionError::Io(e)) if e.kind() == io::ErrorKind::PermissionDenied => {
                    refuse(&mut summary, &dir, &e.to_string())
                }
                Err(e) => summary.errors.push(problem(&dir, e.to_string())),
            }
        }
    }

    let total = candidates.len() as u64;
    let oldest = candidates
        .iter()
        .map(|(_, s)| s.meta.start.as_micros())
        .min();
    let index = match oldest {
        Some(us) => RecordIndex::scan(
            &opts.import.record_dir,
            Some(us - MAX_SESSION_AGE.as_micros() as i64),
        )?,
        None => RecordIndex::default(),
    };
    let now = SystemTime::now();
    let mut last_save = Instant::now();
    let mut dirty = false;
    for (n, (key, session)) in candidates.into_iter().enumerate() {
        progress(n as u64, total, summary.stream_bytes);
        let attribution = attribute(&session.meta, &index);
        let settled = session.complete || {
            let quiet = now
                .duration_since(session.last_change)
                .unwrap_or(Duration::ZERO);
            let login_over = attribution.session.is_none_or(|s| s.logout_us.is_some());
            quiet >= opts.settle && (login_over || quiet >= STALE_AFTER)
        };
        let previous = state.live(&key).cloned();
        let result = if previous.is_some() || (!settled && opts.live) {
            match live_step(
                &session,
                &attribution,
                &opts.import,
                previous.as_ref(),
                settled,
            ) {
                Ok(LiveStep::Finished(done)) => Ok(done),
                Ok(LiveStep::Appended(entry)) => {
                    summary.live += 1;
                    state.set_live(key, entry);
                    dirty = true;
                    if last_save.elapsed() >= SAVE_EVERY {
                        state.save(&opts.state_file)?;
                        last_save = Instant::now();
                        dirty = false;
                    }
                    continue;
                }
                Err(e) => Err(e),
            }
        } else if !settled {
            summary.pending += 1;
            continue;
        } else {
            import_session(&session, &attribution, &opts.import)
        };
        match result {
            Ok(done) => {
                if done.written {
                    summary.imported += 1;
                    if !session.complete {
                        summary.imported_incomplete += 1;
                    }
                    *summary
                        .by_method
                        .entry(attribution.method.as_str().to_string())
                        .or_default() += 1;
                    summary.stream_bytes += done.outcome.total_bytes();
                    summary.records.push(done.record.clone());
                    if let (true, Some(anchor)) = (opts.syslog_anchors, &done.anchor) {
                        syslog_authpriv(Level::Info, &anchor.to_string());
                    }
                    if attribution.method == Method::Unattributed && opts.syslog_anchors {
                        // Worth a look: root activity outside any recorded session.
                        syslog_authpriv(
                            Level::Notice,
                            &format!(
                                "sudo-iolog-import: sudo session {} by {} matches no login session",
                                session.dir.display(),
                                session.meta.submituser
                            ),
                        );
                    }
                } else {
                    summary.recovered += 1;
                }
                state.insert(
                    key,
                    Entry {
                        iolog: session.dir.clone(),
                        record: done.record,
                        complete: session.complete,
                        imported_at: Timestamp::now().to_string(),
                    },
                );
                dirty = true;
            }
            Err(e) => summary.errors.push(problem(&session.dir, e.to_string())),
        }
        if dirty && last_save.elapsed() >= SAVE_EVERY {
            state.save(&opts.state_file)?;
            last_save = Instant::now();
            dirty = false;
        }
    }
    progress(total, total, summary.stream_bytes);
    if state.prune_missing() > 0 {
        dirty = true;
    }
    if dirty {
        state.save(&opts.state_file)?;
    }
    summary.seconds = began.elapsed().as_secs_f64();
    Ok(summary)
}

/// A log a user could have written or planted: not imported, said on stderr and to syslog.
fn refuse(summary: &mut Summary, path: &Path, why: &str) {
    summary.refused += 1;
    syslog_authpriv(
        Level::Warning,
        &format!("sudo-iolog-import: not imported, {why}"),
    );
    summary.errors.push(problem(path, why.to_string()));
}

fn problem(path: &Path, error: String) -> Problem {
    Problem {
        path: path.to_path_buf(),
        error,
    }
}
