//! An index of the login sessions in the record tree: who logged in, when, under which kernel
//! audit session, and which ptys and processes their channels had while they ran. Only the
//! first line and the tail of each file are read. Shared by the importers (sudo, audit).
#![forbid(unsafe_code)]

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::id::SessionId;
use crate::schema::{
    ChannelEnd, ChannelStart, Event, EventBody, Header, Line, Login, Logout, TYPE_KEY,
};
use crate::time::Timestamp;
use serde_json::{Map, Value};

/// Bytes read from the end of a file to find its closing line.
const TAIL_BYTES: u64 = 64 * 1024;
/// Longest first line read.
const MAX_HEAD_LINE: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpan {
    /// `channel-N.jsonl`.
    pub file: String,
    /// The recorder's pty, e.g. `/dev/pts/7` (absent in pipe mode).
    pub pty: Option<String>,
    pub start_us: i64,
    /// From `channel.end`; `None` while open or when the recorder died.
    pub end_us: Option<i64>,
    /// The channel's process (the shell, or the pipe-mode monitor) and the recorder's.
    pub pid: Option<u32>,
    pub recorder_pid: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct LoginSession {
    pub id: SessionId,
    pub dir: PathBuf,
    pub host: String,
    pub user: String,
    pub actor: String,
    pub login_us: i64,
    pub logout_us: Option<i64>,
    pub channels: Vec<ChannelSpan>,
    /// The kernel audit session id and boot of the login (from `login`).
    pub audit_session: Option<u32>,
    pub boot_id: Option<String>,
}

impl LoginSession {
    /// Reads one session directory; `None` when it holds no record yet.
    pub fn read(dir: &Path, id: SessionId) -> io::Result<Option<LoginSession>> {
        read_session(dir, id)
    }

    /// Whether `at_us` lies in the session (1 s of slack before login for clock granularity).
    pub fn covers(&self, at_us: i64) -> bool {
        at_us >= self.login_us - 1_000_000 && self.logout_us.is_none_or(|end| at_us <= end)
    }

    /// Whether any channel ran at `at_us`.
    pub fn has_channel_open_at(&self, at_us: i64) -> bool {
        self.channels.iter().any(|c| self.channel_open_at(c, at_us))
    }

    /// The channel that ran at `at_us`, when only one did.
    pub fn only_channel_open_at(&self, at_us: i64) -> Option<&ChannelSpan> {
        let mut open = self
            .channels
            .iter()
            .filter(|c| self.channel_open_at(c, at_us));
        match (open.next(), open.next()) {
            (Some(c), None) => Some(c),
            _ => None,
        }
    }

    fn channel_open_at(&self, c: &ChannelSpan, at_us: i64) -> bool {
        at_us >= c.start_us - 1_000_000
            && match c.end_us.or(self.logout_us) {
                Some(end) => at_us <= end,
                None => true,
            }
    }

    /// The channel that had pty `tty` at `at_us` (the latest-started one if several).
    pub fn channel_at(&self, tty: &str, at_us: i64) -> Option<&ChannelSpan> {
        self.channels
            .iter()
            .filter(|c| c.pty.as_deref() == Some(tty))
            .filter(|c| self.channel_open_at(c, at_us))
            .max_by_key(|c| c.start_us)
    }
}

#[derive(Debug, Default)]
pub struct RecordIndex {
    pub sessions: Vec<LoginSession>,
    /// Session directories that could not be read, with why.
    pub problems: Vec<(PathBuf, String)>,
}

impl RecordIndex {
    /// Indexes sessions whose date directory is on or after the day of `since_us` (all when
    /// `None`). A missing record directory is an empty index.
    pub fn scan(record_dir: &Path, since_us: Option<i64>) -> io::Result<RecordIndex> {
        let mut index = RecordIndex::default();
        let since = since_us.map(|us| Timestamp::from_micros(us).date());
        let years = match numbered_dirs(record_dir, 4) {
            Ok(y) => y,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(index),
            Err(e) => return Err(e),
        };
        for (y, year_dir) in years {
            for (m, month_dir) in numbered_dirs(&year_dir, 2)? {
                for (d, day_dir) in numbered_dirs(&month_dir, 2)? {
                    if since
                        .is_some_and(|(sy, sm, sd)| (y, m, d) < (sy, i64::from(sm), i64::from(sd)))
                    {
                        continue;
                    }
                    for entry in fs::read_dir(&day_dir)? {
                        let entry = entry?;
                        if !entry.file_type()?.is_dir() {
                            continue;
                        }
                        let Some(id) = entry.file_name().to_str().and_then(SessionId::parse) else {
                            continue;
                        };
                        match read_session(&entry.path(), id) {
                            Ok(Some(s)) => index.sessions.push(s),
                            Ok(None) => {}
                            Err(e) => index.problems.push((entry.path(), e.to_string())),
                        }
                    }
                }
            }
        }
        index.sessions.sort_by_key(|s| (s.login_us, s.id));
        Ok(index)
    }

    pub fn find(&self, id: SessionId) -> Option<&LoginSession> {
        self.sessions.iter().find(|s| s.id == id)
    }
}

/// Subdirectories named by `width` digits, with their number (symlinks skipped).
fn numbered_dirs(dir: &Path, width: usize) -> io::Result<Vec<(i64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() != width || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if entry.file_type()?.is_dir() {
            out.push((name.parse().unwrap_or(0), entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn line_time(line: &Line) -> Option<i64> {
    line.header
        .time
        .as_deref()
        .and_then(Timestamp::parse)
        .map(|t| t.as_micros())
}

/// Host, user and actor from a line's header.
fn who(header: &Header) -> (String, String, String) {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    (text(&header.host), text(&header.user), text(&header.actor))
}

fn read_session(dir: &Path, id: SessionId) -> io::Result<Option<LoginSession>> {
    let mut session = LoginSession {
        id,
        dir: dir.to_path_buf(),
        host: String::new(),
        user: String::new(),
        actor: String::new(),
        login_us: id.unix_millis() as i64 * 1000,
        logout_us: None,
        channels: Vec::new(),
        audit_session: None,
        boot_id: None,
    };
    let mut have_header = false;
    if let Some((first, last)) = head_and_closing_at(&dir.join("session.jsonl"), Logout::TYPE)? {
        if let Some(first) = first {
            (session.host, session.user, session.actor) = who(&first.header);
            have_header = true;
            if let Event::Login(Login {
                audit_session,
                boot_id,
                ..
            }) = &first.event
            {
                session.login_us = line_time(&first).unwrap_or(session.login_us);
                session.audit_session = *audit_session;
                session.boot_id.clone_from(boot_id);
            }
        }
        session.logout_us = last.as_ref().and_then(line_time);
    }
    let mut names: Vec<String> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| crate::stored::logical_name(&n).map(str::to_string))
        .filter(|n| n.starts_with("channel-"))
        .collect();
    names.sort();
    // A compressed file and its plain original may both be there for a moment.
    names.dedup();
    for name in names {
        let Some((first, last)) = head_and_closing_at(&dir.join(&name), ChannelEnd::TYPE)? else {
            continue;
        };
        let Some(first) = first else { continue };
        let Event::ChannelStart(ChannelStart {
            pty,
            pid,
            recorder_pid,
            ..
        }) = &first.event
        else {
            continue;
        };
        if !have_header {
            (session.host, session.user, session.actor) = who(&first.header);
            have_header = true;
        }
        let Some(start_us) = line_time(&first) else {
            continue;
        };
        session.channels.push(ChannelSpan {
            file: name,
            pty: pty.clone().filter(|p| !p.is_empty()),
            start_us,
            end_us: last.as_ref().and_then(line_time),
            pid: pid.and_then(|p| u32::try_from(p).ok()),
            recorder_pid: recorder_pid.and_then(|p| u32::try_from(p).ok()),
        });
    }
    Ok(have_header.then_some(session))
}

/// The first line and the last `closing` line of the record file named by its plain path,
/// stored plain (opened without following symlinks) or compressed; `None` when absent.
#[allow(clippy::type_complexity)]
fn head_and_closing_at(
    path: &Path,
    closing: &str,
) -> io::Result<Option<(Option<Line>, Option<Line>)>> {
    match super::trusted::open_regular(path) {
        Ok(f) => return head_and_closing(f, closing).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let compressed = crate::stored::compressed_path(path);
    if !fs::symlink_metadata(&compressed).is_ok_and(|m| m.is_file()) {
        return Ok(None);
    }
    let (head, tail, _) = crate::stored::head_and_tail(&compressed, TAIL_BYTES as usize)?;
    let first_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    Ok(Some((
        parse_line(&head[..first_end]).map(Line::from_map),
        closing_in(&tail, closing),
    )))
}

fn closing_in(tail: &[u8], closing: &str) -> Option<Line> {
    tail.split(|b| *b == b'\n')
        .rev()
        .filter_map(parse_line)
        .find(|l| l.get(TYPE_KEY).and_then(Value::as_str) == Some(closing))
        .map(Line::from_map)
}

/// The first line, and the last line of type `closing` within the file's tail.
fn head_and_closing(mut file: File, closing: &str) -> io::Result<(Option<Line>, Option<Line>)> {
    let mut first = Vec::new();
    BufReader::new(&mut file)
        .take(MAX_HEAD_LINE)
        .read_until(b'\n', &mut first)?;
    let first = parse_line(&first).map(Line::from_map);
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.take(TAIL_BYTES).read_to_end(&mut tail)?;
    Ok((first, closing_in(&tail, closing)))
}

fn parse_line(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}
