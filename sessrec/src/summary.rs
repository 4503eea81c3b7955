//! Cheap per-session summaries for `list`: only the first line and the last lines of each file
//! are read, no chain is verified.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use serde_json::{Map, Value};
use sessrec_core::schema::{
    header_key, ChannelEnd, ChannelStart, EventBody, HeadView, Login, Logout,
};

use sessrec_core::stored::Stored;

use crate::live;
use crate::store::{session_files, FileKind, SessionRef};

/// Bytes read from each end of a file before looking further.
const PROBE: usize = 16 * 1024;
/// A first or last line longer than this is reported instead of read.
const MAX_PROBE: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Live,
    Closed,
    Damaged,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Live => "live",
            State::Closed => "closed",
            State::Damaged => "damaged",
        }
    }
}

/// What `list` shows about one session.
#[derive(Debug, Clone)]
pub struct Summary {
    pub session: SessionRef,
    pub start_us: i64,
    pub end_us: Option<i64>,
    pub host: String,
    pub user: String,
    pub actor: String,
    pub actor_source: String,
    pub verified: Option<bool>,
    pub src_ip: String,
    pub src_port: Option<u64>,
    pub channels: u32,
    pub transfers: u32,
    /// Forwarded connections: connect channels (through the recorder, refused ones included)
    /// and sshd's own (the kernel audit's connects of the sshd session process).
    pub forwards: u32,
    pub sudo: u32,
    /// The kinds of the channels (`shell`, `exec`, `transfer`), each once, in channel order.
    pub kinds: Vec<String>,
    /// The first channel's command that is not a shell (an exec or transfer command).
    pub command: Option<String>,
    /// How the first channel ended: `0`, `2`, `SIGTERM`, or `None` while open.
    pub exit: Option<String>,
    /// Exec and connect lines of `audit.jsonl`; `None` without one (exec audit off).
    pub execs: Option<u64>,
    pub connects: Option<u64>,
    pub state: State,
    /// Why the session is damaged (file: problem).
    pub problems: Vec<String>,
    /// Recorder pids of channels without `channel.end` (for `kill` and liveness).
    pub open_channels: Vec<(String, Map<String, Value>)>,
}

/// A parsed line, or why it could not be parsed.
pub type Parsed = Result<Map<String, Value>, String>;

/// The first complete line of a file, parsed; `Err` text when it is not usable.
pub fn first_line(file: &mut impl Read) -> io::Result<Result<Map<String, Value>, String>> {
    let mut buf = Vec::with_capacity(PROBE);
    let mut chunk = vec![0u8; PROBE];
    loop {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            return Ok(Err(if buf.is_empty() {
                "empty file".into()
            } else {
                "incomplete first line".into()
            }));
        }
        let start = buf.len();
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            return Ok(parse_obj(&buf[..start + pos + 1]));
        }
        if buf.len() > MAX_PROBE {
            return Ok(Err(format!("first line longer than {MAX_PROBE} bytes")));
        }
    }
}

/// The last complete line of a file, parsed, and whether the file ends with an incomplete
/// line (a crash remnant or a writer caught mid-line).
pub fn last_line(file: &mut File) -> io::Result<(Option<Parsed>, bool)> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok((None, false));
    }
    let mut want = PROBE.min(len as usize);
    loop {
        let start = len - want as u64;
        file.seek(SeekFrom::Start(start))?;
        let mut buf = vec![0u8; want];
        file.read_exact(&mut buf)?;
        let incomplete = buf.last() != Some(&b'\n');
        // End of the last complete line.
        let end = match buf.iter().rposition(|&b| b == b'\n') {
            Some(e) => e + 1,
            None if start == 0 => return Ok((None, incomplete)),
            None => {
                if want >= MAX_PROBE {
                    return Ok((Some(Err("last line too long".into())), incomplete));
                }
                want = (want * 4).min(len as usize);
                continue;
            }
        };
        match buf[..end - 1].iter().rposition(|&b| b == b'\n') {
            Some(s) => return Ok((Some(parse_obj(&buf[s + 1..end])), incomplete)),
            None if start == 0 => return Ok((Some(parse_obj(&buf[..end])), incomplete)),
            None => {
                if want >= MAX_PROBE {
                    return Ok((Some(Err("last line too long".into())), incomplete));
                }
                want = (want * 4).min(len as usize);
            }
        }
    }
}

fn parse_obj(line: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("line is not a JSON object".into()),
        Err(e) => Err(format!("line is not valid JSON: {e}")),
    }
}

pub fn get_str<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

pub fn time_us(m: &Map<String, Value>) -> Option<i64> {
    m.get(header_key::TIME)
        .and_then(Value::as_str)
        .and_then(crate::timespec::parse_rfc3339)
}

/// The first line of a record file, plain or compressed.
pub fn first_line_of(path: &Path) -> io::Result<Result<Map<String, Value>, String>> {
    first_line(&mut sessrec_core::stored::open(path)?)
}

/// The last complete line of a record file, plain or compressed, and whether the file ends
/// with an incomplete line.
pub fn last_line_of(path: &Path) -> io::Result<(Option<Parsed>, bool)> {
    match sessrec_core::stored::open(path)? {
        Stored::Plain(mut f) => last_line(&mut f),
        compressed => {
            let p = probe_stream(compressed)?;
            Ok((p.last.map(|l| parse_obj(&l)), p.incomplete))
        }
    }
}

/// The probe of a record file, plain (positioned reads) or compressed (one pass).
fn probe_path(path: &Path) -> io::Result<Probe> {
    match sessrec_core::stored::open(path)? {
        Stored::Plain(f) => probe(&f),
        compressed => probe_stream(compressed),
    }
}

/// [`probe`] by reading the whole content once (a compressed file cannot be read from its end).
fn probe_stream(content: impl Read) -> io::Result<Probe> {
    use std::io::BufRead;
    let mut p = Probe {
        first: None,
        last: None,
        incomplete: false,
        problem: None,
    };
    let mut reader = io::BufReader::with_capacity(1 << 16, content);
    let mut line = Vec::new();
    let mut any = false;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_PROBE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        let complete = line.last() == Some(&b'\n');
        if !complete && line.len() > MAX_PROBE {
            // Skip the rest of an overlong line.
            let mut rest = Vec::new();
            reader.read_until(b'\n', &mut rest)?;
            if !any {
                p.problem = Some(format!("first line longer than {MAX_PROBE} bytes"));
            }
            any = true;
            p.incomplete = rest.last() != Some(&b'\n');
            continue;
        }
        if complete {
            if !any {
                p.first = Some(line.clone());
            }
            p.last = Some(line.clone());
        } else if !any {
            p.problem = Some("incomplete first line".into());
        }
        p.incomplete = !complete;
        any = true;
    }
    if !any {
        p.problem = Some("empty file".into());
    }
    Ok(p)
}

/// The first and last complete lines of a file, read with at most a few positional reads.
struct Probe {
    first: Option<Vec<u8>>,
    last: Option<Vec<u8>>,
    /// The file does not end with a newline.
    incomplete: bool,
    /// Why a line could not be read.
    problem: Option<String>,
}

fn probe(file: &File) -> io::Result<Probe> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    let mut p = Probe {
        first: None,
        last: None,
        incomplete: false,
        problem: None,
    };
    if len == 0 {
        p.problem = Some("empty file".into());
        return Ok(p);
    }
    let head_len = (PROBE as u64).min(len) as usize;
    let mut head = vec![0u8; head_len];
    file.read_exact_at(&mut head, 0)?;
    let whole = head_len as u64 == len;
    p.incomplete = if whole {
        head.last() != Some(&b'\n')
    } else {
        let mut b = [0u8; 1];
        file.read_exact_at(&mut b, len - 1)?;
        b[0] != b'\n'
    };
    match head.iter().position(|&b| b == b'\n') {
        Some(end) => p.first = Some(head[..=end].to_vec()),
        None if whole => p.problem = Some("incomplete first line".into()),
        None => {
            // A first line longer than the probe: read on.
            let mut f = file.try_clone()?;
            match first_line(&mut f)? {
                Ok(m) => p.first = Some(serde_json::to_vec(&m).unwrap_or_default()),
                Err(e) => p.problem = Some(e),
            }
        }
    }
    // The last complete line: from the head when the file fits in it, else from the tail.
    let tail: Vec<u8> = if whole {
        head
    } else {
        let tail_len = (PROBE as u64).min(len) as usize;
        let mut t = vec![0u8; tail_len];
        file.read_exact_at(&mut t, len - tail_len as u64)?;
        t
    };
    let end = tail.iter().rposition(|&b| b == b'\n');
    if let Some(end) = end {
        match tail[..end].iter().rposition(|&b| b == b'\n') {
            Some(start) => p.last = Some(tail[start + 1..=end].to_vec()),
            None if whole || len <= PROBE as u64 => p.last = Some(tail[..=end].to_vec()),
            None => {
                let mut f = file.try_clone()?;
                if let (Some(Ok(m)), _) = last_line(&mut f)? {
                    p.last = Some(serde_json::to_vec(&m).unwrap_or_default());
                }
            }
        }
    } else if !whole {
        let mut f = file.try_clone()?;
        if let (Some(Ok(m)), _) = last_line(&mut f)? {
            p.last = Some(serde_json::to_vec(&m).unwrap_or_default());
        }
    }
    Ok(p)
}

/// The few fields `list` needs from a first or last line (a borrowed view, so other fields
/// are skipped without building a map).
fn head(line: &[u8]) -> Result<HeadView<'_>, String> {
    serde_json::from_slice(line).map_err(|e| format!("line does not parse: {e}"))
}

/// Reads the summary of one session directory. I/O problems with single files are reported
/// in `problems`, never fatal.
pub fn summarize(session: &SessionRef, this_host: &str) -> Summary {
    let mut s = Summary {
        session: session.clone(),
        start_us: session.start_hint_us,
        end_us: None,
        host: String::new(),
        user: String::new(),
        actor: String::new(),
        actor_source: String::new(),
        verified: None,
        src_ip: String::new(),
        src_port: None,
        channels: 0,
        transfers: 0,
        forwards: 0,
        sudo: 0,
        kinds: Vec::new(),
        command: None,
        exit: None,
        execs: None,
        connects: None,
        state: State::Closed,
        problems: Vec::new(),
        open_channels: Vec::new(),
    };
    let files = match session_files(&session.dir) {
        Ok(f) => f,
        Err(e) => {
            s.problems.push(format!("{}: {e}", session.dir.display()));
            s.state = State::Damaged;
            return s;
        }
    };
    let mut has_logout = false;
    let mut has_session_file = false;
    let mut any_open_live = false;
    for (kind, name, path) in &files {
        let probed = probe_path(path);
        let p = match probed {
            Ok(p) => p,
            Err(e) => {
                s.problems.push(format!("{name}: {e}"));
                continue;
            }
        };
        if let Some(problem) = &p.problem {
            s.problems.push(format!("{name}: {problem}"));
        }
        if p.incomplete {
            s.problems.push(format!("{name}: incomplete last line"));
        }
        let first = p.first.as_deref().map(head);
        let last = p.last.as_deref().map(head);
        if let Some(Err(e)) = &first {
            s.problems.push(format!("{name}: first {e}"));
        }
        let first = first.and_then(Result::ok);
        let last_kind = match last {
            Some(Ok(l)) => {
                if *kind == FileKind::Session && l.kind == Logout::TYPE {
                    has_logout = true;
                    s.end_us = crate::timespec::parse_rfc3339(&l.time);
                }
                if matches!(kind, FileKind::Channel(_))
                    && l.kind == ChannelEnd::TYPE
                    && s.exit.is_none()
                {
                    s.exit = Some(match (l.signal, l.exit_code) {
                        (Some(sig), _) => i32::try_from(sig)
                            .ok()
                            .and_then(crate::eventtext::signal_name)
                            .map_or(format!("signal {sig}"), str::to_string),
                        (None, Some(code)) => code.to_string(),
                        (None, None) => "-".into(),
                    });
                }
                l.kind.into_owned()
            }
            Some(Err(e)) => {
                s.problems.push(format!("{name}: last {e}"));
                String::new()
            }
            None => String::new(),
        };
        if let Some(f) = &first {
            if s.host.is_empty() {
                s.host = f.host.to_string();
            }
            if s.user.is_empty() {
                s.user = f.user.to_string();
                s.actor = f.actor.to_string();
            }
        }
        match kind {
            FileKind::Session => {
                has_session_file = true;
                if let Some(f) = first.as_ref().filter(|f| f.kind == Login::TYPE) {
                    s.user = f.user.to_string();
                    s.actor = f.actor.to_string();
                    s.actor_source = f.actor_source.to_string();
                    s.verified = f.verified;
                    s.src_ip = f.src_ip.to_string();
                    s.src_port = f.src_port;
                    if let Some(t) = crate::timespec::parse_rfc3339(&f.time) {
                        s.start_us = t;
                    }
                }
            }
            FileKind::Channel(_) => {
                s.channels += 1;
                let is_start = first.as_ref().is_some_and(|f| f.kind == ChannelStart::TYPE);
                if is_start && first.as_ref().is_some_and(|f| f.channel_kind == "transfer") {
                    s.transfers += 1;
                }
                if is_start && first.as_ref().is_some_and(|f| f.channel_kind == "forward") {
                    s.forwards += 1;
                }
                if let Some(f) = first.as_ref().filter(|_| is_start) {
                    if !s.kinds.iter().any(|k| *k == f.channel_kind) {
                        s.kinds.push(f.channel_kind.to_string());
                    }
                    if s.command.is_none() && !f.command.is_empty() {
                        s.command = Some(f.command.to_string());
                    }
                }
                if last_kind != ChannelEnd::TYPE && is_start {
                    // Rare: a channel still open (or cut short). Its full first line tells
                    // which recorder to look for.
                    if let Some(Ok(m)) = p.first.as_deref().map(parse_obj) {
                        if live::recorder_alive(&m, this_host) {
                            any_open_live = true;
                        }
                        s.open_channels.push((name.clone(), m));
                    }
                }
            }
            FileKind::Sudo => s.sudo += 1,
            FileKind::Audit => {
                let counts = crate::auditcount::count(path);
                s.execs = Some(counts.execs);
                s.connects = Some(counts.connects);
                s.forwards += counts.sshd_forwards as u32;
            }
        }
    }
    let grant_live =
        || !session.unattributed && s.host == this_host && live::grant_exists(&session.id);
    s.state = if has_logout && s.problems.is_empty() {
        State::Closed
    } else if !has_logout
        && s.problems
            .iter()
            .all(|p| p.ends_with("incomplete last line"))
        && (any_open_live || grant_live())
    {
        // A live writer can be caught mid-line: not damage.
        s.problems.clear();
        State::Live
    } else if session.unattributed && !has_session_file && s.problems.is_empty() {
        State::Closed
    } else {
        if !has_logout && !session.unattributed {
            s.problems.push("session.jsonl: no logout line".into());
        }
        State::Damaged
    };
    s
}

/// `Path` of the session file, for messages.
pub fn display(path: &Path) -> String {
    crate::escape::escape_control(&path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(content: &[u8]) -> File {
        let path = std::env::temp_dir().join(format!(
            "sessrec-summary-{}-{}",
            std::process::id(),
            content.len()
        ));
        let mut f = File::create(&path).unwrap();
        f.write_all(content).unwrap();
        let f = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }

    #[test]
    fn reads_first_and_last_lines() {
        let mut text = b"{\"type\":\"login\",\"n\":1}\n".to_vec();
        for i in 0..5000 {
            text.extend_from_slice(format!("{{\"type\":\"io\",\"n\":{i}}}\n").as_bytes());
        }
        text.extend_from_slice(b"{\"type\":\"logout\"}\n");
        let mut f = file_with(&text);
        assert_eq!(
            get_str(&first_line(&mut f).unwrap().unwrap(), "type"),
            "login"
        );
        let (last, inc) = last_line(&mut f).unwrap();
        assert_eq!(get_str(&last.unwrap().unwrap(), "type"), "logout");
        assert!(!inc);
    }

    #[test]
    fn reports_incomplete_tail_and_long_lines() {
        let mut f = file_with(b"{\"type\":\"a\"}\n{\"type\":\"b\"}\n{\"type\":\"c\",\"x");
        let (last, inc) = last_line(&mut f).unwrap();
        assert_eq!(get_str(&last.unwrap().unwrap(), "type"), "b");
        assert!(inc);
        let long = format!("{{\"type\":\"big\",\"x\":\"{}\"}}\n", "y".repeat(100_000));
        let mut f = file_with(long.as_bytes());
        assert_eq!(
            get_str(&first_line(&mut f).unwrap().unwrap(), "type"),
            "big"
        );
        let (last, _) = last_line(&mut f).unwrap();
        assert_eq!(get_str(&last.unwrap().unwrap(), "type"), "big");
        let mut f = file_with(b"");
        assert!(first_line(&mut f).unwrap().is_err());
        assert!(last_line(&mut f).unwrap().0.is_none());
    }
}
