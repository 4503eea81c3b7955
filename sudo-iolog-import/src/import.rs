//! Writes one sudo session into the record tree as `sudo-<16 hex>.jsonl`.
//!
//! The file is written under a temporary name, fsynced, linked to its final name (which fails
//! if that exists, so nothing is ever overwritten) and the temporary name removed. The final
//! name is derived from the iolog path and sudo's start time, so a session imported before a
//! crash, whose state update was lost, is recognised instead of imported twice.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use regex::Regex;

use sessrec_core::bounds::set_bounded;
use sessrec_core::exec_args;
use sessrec_core::id::SessionId;
use sessrec_core::record::{FileContext, Stream};
use sessrec_core::schema::{
    sudo_end, sudo_start, InputMasked, Resize, SudoEnd, SudoStart, Suspend,
};
use sessrec_core::time::Timestamp;
use sessrec_core::tree::{session_relative_path, SessionDir};
use sessrec_core::writer::{Anchor, RecordWriter, WriterOptions};
use sha2::{Digest, Sha256};

use crate::correlate::Attribution;
use crate::iolog::session::{Decoded, IologSession, ReplayMode, ReplayOutcome, SessionError};
use crate::iolog::{StartTime, StreamKind};
use crate::mask::PasswordMask;

/// Bounds on user-controlled values in `sudo.start` (DESIGN §3).
const MAX_COMMAND: usize = 16 * 1024;
const MAX_PATH: usize = 4 * 1024;
/// The command's arguments are kept whole up to what execve(2) itself takes: one argument of
/// at most MAX_ARG_STRLEN (128 KiB), all of them together within the usual ARG_MAX (2 MiB).
/// sudo's log.json is read only up to 4 MiB, so a hostile log cannot make more than that.
const MAX_ARG_BYTES: usize = 128 * 1024;
const MAX_ARGV_TOTAL: usize = 2 * 1024 * 1024;

pub struct ImportOptions {
    pub record_dir: PathBuf,
    pub read_gid: Option<u32>,
    pub writer: WriterOptions,
    pub password_prompt: Regex,
    /// The host name used when no login session names one.
    pub host: String,
    /// Most decompressed stream bytes imported from one sudo session (`sudo.max_session_mb`).
    pub max_session_bytes: u64,
}

/// `sudo-<first 16 hex digits of sha256(iolog path ‖ NUL ‖ "<seconds>.<nanoseconds>")>.jsonl`.
pub fn record_file_name(iolog: &Path, start: StartTime) -> String {
    let mut h = Sha256::new();
    h.update(iolog.as_os_str().as_encoded_bytes());
    h.update([0u8]);
    h.update(format!("{}.{:09}", start.seconds, start.nanoseconds).as_bytes());
    let digest = h.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("sudo-{hex}.jsonl")
}

#[derive(Debug)]
pub enum ImportError {
    Read(SessionError),
    Write(io::Error),
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Read(e) => write!(f, "{e}"),
            ImportError::Write(e) => write!(f, "writing the record: {e}"),
        }
    }
}

impl std::error::Error for ImportError {}

#[derive(Debug, Clone)]
pub struct Imported {
    /// The record file, relative to `record_dir`.
    pub record: PathBuf,
    /// False when the file already existed (imported before the state was saved).
    pub written: bool,
    pub outcome: ReplayOutcome,
    pub anchor: Option<Anchor>,
}

/// The session id of a sudo session that matches no login: derived from its record name and
/// start time, so a re-import after a lost state finds the same directory.
pub fn unattributed_id(name: &str, start: StartTime) -> SessionId {
    let micros = Timestamp::from_unix_seconds(start.seconds, start.nanoseconds).as_micros();
    SessionId::derived(micros.max(0) as u64 / 1000, name.as_bytes())
}

/// Where a sudo session's record goes, relative to `record_dir`: its login session's directory,
/// or `unattributed/YYYY/MM/DD/<own id>/` (the same depth as a login session under
/// `unattributed/`, so shipper globs of the main tree never match it twice).
pub fn target_dir(attribution: &Attribution<'_>, start: StartTime, name: &str) -> PathBuf {
    match attribution.session {
        Some(s) => session_relative_path(s.id),
        None => Path::new("unattributed").join(session_relative_path(unattributed_id(name, start))),
    }
}

pub fn import_session(
    session: &IologSession,
    attribution: &Attribution<'_>,
    opts: &ImportOptions,
) -> Result<Imported, ImportError> {
    let name = record_file_name(&session.dir, session.meta.start);
    let relative_dir = target_dir(attribution, session.meta.start, &name);
    let record = relative_dir.join(&name);
    if fs::symlink_metadata(opts.record_dir.join(&record)).is_ok() {
        return Ok(Imported {
            record,
            written: false,
            outcome: ReplayOutcome::default(),
            anchor: None,
        });
    }
    let dir = SessionDir::create_relative(&opts.record_dir, &relative_dir, opts.read_gid)
        .map_err(ImportError::Write)?;
    let tmp_name = format!(".{name}.tmp");
    let tmp_path = dir.path().join(&tmp_name);
    let final_path = dir.path().join(&name);
    match fs::remove_file(&tmp_path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(ImportError::Write(e)),
    }
    let file = dir.create_file(&tmp_name).map_err(ImportError::Write)?;
    let result = write_record(file, &name, session, attribution, opts);
    let (outcome, anchor) = match result {
        Ok(done) => done,
        Err(e) => {
            let _ = fs::remove_file(&tmp_path);
            return Err(e);
        }
    };
    let publish = || -> io::Result<()> {
        File::open(&tmp_path)?.sync_all()?;
        fs::hard_link(&tmp_path, &final_path)?;
        fs::remove_file(&tmp_path)?;
        File::open(dir.path())?.sync_all()
    };
    match publish() {
        Ok(()) => Ok(Imported {
            record,
            written: true,
            outcome,
            anchor: Some(anchor),
        }),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let _ = fs::remove_file(&tmp_path);
            Ok(Imported {
                record,
                written: false,
                outcome,
                anchor: None,
            })
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp_path);
            Err(ImportError::Write(e))
        }
    }
}

fn us(ns: u64) -> u64 {
    ns / 1000
}

fn rfc3339(start: StartTime, plus_ns: u64) -> String {
    let micros = start.as_micros().saturating_add((plus_ns / 1000) as i64);
    Timestamp::from_micros(micros).to_string()
}

fn cut(text: &str, max: usize) -> (String, Option<usize>) {
    if text.len() <= max {
        return (text.to_string(), None);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_string(), Some(text.len()))
}

/// The command's arguments as `sudo.start` keeps them (within [`MAX_ARG_BYTES`] each and
/// [`MAX_ARGV_TOTAL`] in all), and whether any was cut or left out.
fn kept_args(m: &crate::iolog::meta::IologMeta) -> (Vec<Vec<u8>>, bool) {
    let Some(argv) = &m.runargv else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut total = 0;
    let mut cut_any = false;
    for arg in argv {
        let (a, was_cut) = cut(arg, MAX_ARG_BYTES);
        cut_any |= was_cut.is_some();
        if total + a.len() > MAX_ARGV_TOTAL {
            return (kept, true);
        }
        total += a.len();
        kept.push(a.into_bytes());
    }
    (kept, cut_any)
}

/// Writes the `sudo.start` line with the command's arguments whole (as `argv`, or `cmdline`
/// with `command.part` lines when long).
pub fn write_start(
    w: &mut RecordWriter,
    session: &IologSession,
    attribution: &Attribution<'_>,
) -> io::Result<()> {
    let start = start_event(session, attribution);
    if session.meta.runargv.is_none() {
        return w.write(&start);
    }
    let (args, _) = kept_args(&session.meta);
    exec_args::write_args(w, start, &args, |s| &mut s.argv, sudo_start::cmdline)
}

/// The `sudo.start` line: sudo's log, and how it was tied to a login session.
pub fn start_event(session: &IologSession, attribution: &Attribution<'_>) -> SudoStart {
    let m = &session.meta;
    let mut start = SudoStart {
        at: Some(rfc3339(m.start, 0)),
        submituser: Some(m.submituser.clone()),
        ..Default::default()
    };
    let extra = &mut start.extra;
    let mut put = |slot: &mut Option<String>, name: &str, value: Option<&str>, max: usize| {
        if let Some(v) = value {
            set_bounded(slot, extra, name, v, max);
        }
    };
    put(
        &mut start.submithost,
        sudo_start::submithost,
        m.submithost.as_deref(),
        256,
    );
    put(
        &mut start.runuser,
        sudo_start::runuser,
        m.runuser.as_deref(),
        256,
    );
    put(
        &mut start.rungroup,
        sudo_start::rungroup,
        m.rungroup.as_deref(),
        256,
    );
    put(
        &mut start.command,
        sudo_start::command,
        Some(&m.command),
        MAX_COMMAND,
    );
    put(
        &mut start.cwd,
        sudo_start::cwd,
        m.submitcwd.as_deref(),
        MAX_PATH,
    );
    put(
        &mut start.runcwd,
        sudo_start::runcwd,
        m.runcwd.as_deref(),
        MAX_PATH,
    );
    put(
        &mut start.runchroot,
        sudo_start::runchroot,
        m.runchroot.as_deref(),
        MAX_PATH,
    );
    put(
        &mut start.tty,
        sudo_start::tty,
        m.ttyname.as_deref(),
        MAX_PATH,
    );
    put(
        &mut start.iolog_path,
        sudo_start::iolog_path,
        Some(&session.dir.to_string_lossy()),
        MAX_PATH,
    );
    put(
        &mut start.sudo_uuid,
        sudo_start::sudo_uuid,
        m.uuid.as_deref(),
        64,
    );
    if kept_args(m).1 {
        start.argv_truncated = m.runargv.as_ref().map(|a| a.len() as u64);
    }
    if let (Some(rows), Some(cols)) = (m.lines, m.columns) {
        start.rows = Some(rows);
        start.cols = Some(cols);
    }
    start.iolog_meta = Some(m.source.as_str().into());
    start.iolog_meta_problem = session.meta_warning.clone();
    start.r#match = Some(attribution.method.as_str().into());
    start.match_hint = Some(attribution.hint.as_str().into());
    if !attribution.candidates.is_empty() {
        start.match_candidates = Some(
            attribution
                .candidates
                .iter()
                .map(|c| c.to_string())
                .collect(),
        );
    }
    start.channel = attribution.channel.map(|c| c.file.clone());
    if !attribution.notes.is_empty() {
        start.match_notes = Some(attribution.notes.iter().map(|n| n.to_string()).collect());
    }
    start.complete = Some(session.complete);
    start
}

/// The header every line of the record repeats.
pub fn file_context(
    name: &str,
    session: &IologSession,
    attribution: &Attribution<'_>,
    opts: &ImportOptions,
) -> io::Result<FileContext> {
    let (host, id, actor) = match attribution.session {
        Some(s) => (s.host.clone(), s.id, s.actor.clone()),
        None => (
            session
                .meta
                .submithost
                .clone()
                .unwrap_or_else(|| opts.host.clone()),
            // Lines need a session id; an unattributed sudo session gets one of its own.
            unattributed_id(name, session.meta.start),
            session.meta.submituser.clone(),
        ),
    };
    Ok(FileContext {
        host,
        session: id,
        file: name.to_string(),
        user: session.meta.submituser.clone(),
        actor: if actor.is_empty() {
            session.meta.submituser.clone()
        } else {
            actor
        },
    })
}

/// Turns decoded records into record lines, withholding passwords.
pub struct Feeder {
    w: RecordWriter,
    max_bytes: u64,
    mask: PasswordMask,
    start: StartTime,
    withheld_in: usize,
    masked_at: u64,
}

impl Feeder {
    pub fn new(w: RecordWriter, start: StartTime, opts: &ImportOptions) -> Feeder {
        Feeder {
            w,
            max_bytes: opts.max_session_bytes,
            mask: PasswordMask::new(opts.password_prompt.clone()),
            start,
            withheld_in: 0,
            masked_at: 0,
        }
    }

    /// How to replay a session into this feeder from its start.
    pub fn replay_mode(&self) -> ReplayMode {
        ReplayMode {
            max_bytes: Some(self.max_bytes),
            ..ReplayMode::default()
        }
    }

    pub fn writer(&mut self) -> &mut RecordWriter {
        &mut self.w
    }

    /// One record; a `skipped` one (written by an earlier pass) only updates the masking state.
    pub fn feed(&mut self, d: Decoded<'_>, skipped: bool) -> io::Result<()> {
        let start = self.start;
        match d {
            Decoded::Io {
                at_ns,
                stream,
                data,
            } => {
                let off = us(at_ns);
                if stream.is_input() {
                    let m = self.mask.input(data);
                    if !skipped {
                        self.w.io(Stream::Input, off, m.before)?;
                    }
                    if m.withheld > 0 {
                        if self.withheld_in == 0 {
                            self.masked_at = off;
                        }
                        self.withheld_in += m.withheld;
                    }
                    if m.ended && self.withheld_in > 0 {
                        if !skipped {
                            self.w.write(&masked_event(
                                start,
                                self.masked_at,
                                Stream::Input,
                                self.withheld_in,
                            ))?;
                        }
                        self.withheld_in = 0;
                    }
                    if !skipped {
                        self.w.io(Stream::Input, off, m.after)?;
                    }
                } else {
                    let echo = self.mask.output(data);
                    if skipped {
                        return Ok(());
                    }
                    if echo > 0 {
                        self.w
                            .write(&masked_event(start, off, Stream::Output, echo))?;
                    }
                    let s = if stream == StreamKind::Stderr {
                        Stream::Stderr
                    } else {
                        Stream::Output
                    };
                    self.w.io(s, off, &data[echo..])?;
                }
                Ok(())
            }
            Decoded::Winsize { .. } | Decoded::Suspend { .. } if skipped => Ok(()),
            Decoded::Winsize { at_ns, lines, cols } => self.w.write(&Resize {
                at: Some(rfc3339(start, at_ns)),
                off: Some(us(at_ns)),
                cols: Some(cols),
                rows: Some(lines),
                ..Default::default()
            }),
            Decoded::Suspend { at_ns, signal } => self.w.write(&Suspend {
                at: Some(rfc3339(start, at_ns)),
                off: Some(us(at_ns)),
                signal: Some(signal.to_string()),
                ..Default::default()
            }),
        }
    }

    /// Writes everything decoded so far (a later pass continues); returns the file length.
    pub fn pause(mut self) -> io::Result<u64> {
        self.w.finish_io()?;
        Ok(self.w.bytes_written())
    }

    /// Writes `sudo.end` and closes the file.
    pub fn end(mut self, outcome: &ReplayOutcome, complete: bool) -> io::Result<Anchor> {
        if self.withheld_in > 0 {
            let masked = masked_event(self.start, self.masked_at, Stream::Input, self.withheld_in);
            self.w.write(&masked)?;
        }
        self.w.finish_io()?;
        let b = &outcome.bytes;
        let mut end = SudoEnd {
            at: Some(rfc3339(self.start, outcome.end_ns)),
            off: Some(us(outcome.end_ns)),
            duration_us: Some(us(outcome.end_ns)),
            complete: Some(complete),
            incomplete: (!complete).then_some(true),
            bytes_in: Some(b[StreamKind::Stdin.index()] + b[StreamKind::TtyIn.index()]),
            bytes_out: Some(b[StreamKind::Stdout.index()] + b[StreamKind::TtyOut.index()]),
            bytes_err: Some(b[StreamKind::Stderr.index()]),
            records: Some(outcome.records),
            max_session_bytes: outcome.over_limit.then_some(self.max_bytes),
            ..Default::default()
        };
        if !outcome.truncated.is_empty() || outcome.over_limit {
            let mut truncated: Vec<String> =
                outcome.truncated.iter().map(|t| t.to_string()).collect();
            if outcome.over_limit {
                truncated.push(sudo_end::max_session_bytes.into());
            }
            end.truncated = Some(truncated);
            let missing: u64 = outcome.missing_bytes.iter().sum();
            if missing > 0 {
                end.missing_bytes = Some(missing);
            }
        }
        self.w.write(&end)?;
        self.w.close()
    }
}

/// Replays `session` through `feeder`, telling the writer's errors from the reader's.
pub fn replay_into(
    session: &IologSession,
    feeder: &mut Feeder,
    mode: ReplayMode,
) -> Result<ReplayOutcome, ImportError> {
    let mut sink = |d: Decoded<'_>, skipped: bool| {
        feeder
            .feed(d, skipped)
            .map_err(|e| io::Error::other(WriteFailure(e)))
    };
    session.replay_with(mode, &mut sink).map_err(|e| match e {
        SessionError::Io(io) if is_write_error(&io) => ImportError::Write(io),
        other => ImportError::Read(other),
    })
}

fn write_record(
    file: File,
    name: &str,
    session: &IologSession,
    attribution: &Attribution<'_>,
    opts: &ImportOptions,
) -> Result<(ReplayOutcome, Anchor), ImportError> {
    let ctx = file_context(name, session, attribution, opts).map_err(ImportError::Write)?;
    let mut w = RecordWriter::new(file, ctx, opts.writer).map_err(ImportError::Write)?;
    write_start(&mut w, session, attribution).map_err(ImportError::Write)?;
    let mut feeder = Feeder::new(w, session.meta.start, opts);
    let mode = feeder.replay_mode();
    let outcome = replay_into(session, &mut feeder, mode)?;
    let anchor = feeder
        .end(&outcome, session.complete)
        .map_err(ImportError::Write)?;
    Ok((outcome, anchor))
}

fn masked_event(start: StartTime, off_us: u64, stream: Stream, bytes: usize) -> InputMasked {
    InputMasked {
        at: Some(rfc3339(start, off_us * 1000)),
        off: Some(off_us),
        s: Some(stream.code().into()),
        bytes: Some(bytes as u64),
        reason: Some("password_prompt".into()),
        ..Default::default()
    }
}

/// Errors from the writer travel through the replay's sink; tell them from read errors.
fn is_write_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<WriteFailure>())
}

/// Marks an error as coming from the record writer.
#[derive(Debug)]
pub struct WriteFailure(pub io::Error);

impl fmt::Display for WriteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for WriteFailure {}
