//! One I/O log session: metadata plus the timing file replayed against the stream files.
#![forbid(unsafe_code)]

use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::meta::{parse_legacy_log, parse_log_json, IologMeta};
use super::stream::{open_regular, open_stream, StreamKind, StreamReader};
use super::timing::{TimingEvent, TimingParser, MAX_TIMING_LINE};

/// Largest metadata file read (sudo's log.json is a few KiB; the environment is bounded by ARG_MAX).
const MAX_META_BYTES: u64 = 4 * 1024 * 1024;
/// Data is handed on in pieces of at most this size, so memory stays flat whatever a record claims.
pub const CHUNK: usize = 64 * 1024;

/// Why a session could not be read.
#[derive(Debug)]
pub enum SessionError {
    Meta(String),
    Timing(super::timing::TimingError),
    Io(io::Error),
    /// A timing record names a stream whose file does not exist.
    MissingStream(StreamKind),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Meta(e) => write!(f, "{e}"),
            SessionError::Timing(e) => write!(f, "{e}"),
            SessionError::Io(e) => write!(f, "{e}"),
            SessionError::MissingStream(s) => write!(
                f,
                "the timing file refers to {} but that file is missing",
                s.file_name()
            ),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<io::Error> for SessionError {
    fn from(e: io::Error) -> Self {
        SessionError::Io(e)
    }
}

/// What identifies one session's files on disk (a wrapped sequence number reuses the path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    pub dev: u64,
    pub ino: u64,
}

/// A session directory with its metadata read.
#[derive(Debug, Clone)]
pub struct IologSession {
    pub dir: PathBuf,
    pub meta: IologMeta,
    /// A problem with log.json when the legacy log was used instead.
    pub meta_warning: Option<String>,
    /// sudo ≥ 1.9.1 clears the write bits of `timing` when the session ends.
    pub complete: bool,
    pub timing_identity: FileIdentity,
    /// Latest modification time of any file of the session.
    pub last_change: SystemTime,
}

/// One decoded record, with its time in nanoseconds since the log's start.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    Io {
        at_ns: u64,
        stream: StreamKind,
        data: &'a [u8],
    },
    Winsize {
        at_ns: u64,
        lines: u32,
        cols: u32,
    },
    Suspend {
        at_ns: u64,
        signal: &'a str,
    },
}

/// What a replay found besides the records.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayOutcome {
    pub records: u64,
    /// Bytes delivered per stream (index = [`StreamKind::index`]).
    pub bytes: [u64; 5],
    /// Bytes the timing file announced but the stream did not hold.
    pub missing_bytes: [u64; 5],
    /// Files that ended early (a gzip stream without its end, a stream shorter than announced,
    /// a timing file whose last line was cut).
    pub truncated: Vec<&'static str>,
    /// Time of the last record, ns since start.
    pub end_ns: u64,
    /// Live mode: the replay stopped at a record whose data sudo has not written yet.
    pub waiting: bool,
    /// The replay stopped at [`ReplayMode::max_bytes`]; the rest of the log was left out.
    pub over_limit: bool,
}

impl ReplayOutcome {
    pub fn total_bytes(&self) -> u64 {
        self.bytes.iter().sum()
    }
}

impl IologSession {
    /// Reads the metadata and state of the session in `dir`.
    pub fn open(dir: &Path) -> Result<Self, SessionError> {
        let timing = open_regular(&dir.join("timing"))?;
        let timing_meta = timing.metadata()?;
        let complete = timing_meta.mode() & 0o222 == 0;
        let timing_identity = FileIdentity {
            dev: timing_meta.dev(),
            ino: timing_meta.ino(),
        };
        let (meta, meta_warning) = match read_small(&dir.join("log.json"))? {
            Some(bytes) => match parse_log_json(&bytes) {
                Ok(meta) => (meta, None),
                Err(json_err) => match read_small(&dir.join("log"))? {
                    Some(legacy) => (
                        parse_legacy_log(&legacy)
                            .map_err(|e| SessionError::Meta(format!("{json_err}; and {e}")))?,
                        Some(json_err.to_string()),
                    ),
                    None => return Err(SessionError::Meta(json_err.to_string())),
                },
            },
            None => match read_small(&dir.join("log"))? {
                Some(legacy) => (
                    parse_legacy_log(&legacy).map_err(|e| SessionError::Meta(e.to_string()))?,
                    None,
                ),
                None => {
                    return Err(SessionError::Meta(
                        "neither log.json nor log exists".to_string(),
                    ))
                }
            },
        };
        let mut last_change = timing_meta.modified()?;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if let Ok(m) = entry.metadata() {
                if let Ok(t) = m.modified() {
                    last_change = last_change.max(t);
                }
            }
        }
        Ok(IologSession {
            dir: dir.to_path_buf(),
            meta,
            meta_warning,
            complete,
            timing_identity,
            last_change,
        })
    }

    /// Replays the session in timing order, calling `sink` for each record. Stops at the first
    /// error; the sink's own errors are passed through.
    pub fn replay(
        &self,
        sink: &mut dyn FnMut(Decoded<'_>) -> io::Result<()>,
    ) -> Result<ReplayOutcome, SessionError> {
        self.replay_with(ReplayMode::default(), &mut |d, _| sink(d))
    }

    /// [`IologSession::replay`] with a mode; the sink's flag says the record was skipped.
    pub fn replay_with(
        &self,
        mode: ReplayMode,
        sink: &mut dyn FnMut(Decoded<'_>, bool) -> io::Result<()>,
    ) -> Result<ReplayOutcome, SessionError> {
        let timing = open_stream(&self.dir, "timing")?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "timing vanished"))?;
        let mut streams: [Option<StreamReader>; 5] = Default::default();
        for kind in StreamKind::ALL {
            streams[kind.index()] = open_stream(&self.dir, kind.file_name())?;
        }
        replay_from(timing, &mut streams, self.complete, mode, sink)
    }
}

/// How to replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayMode {
    /// This many records were imported before: they are decoded (the sink sees them flagged)
    /// so that state such as password masking is rebuilt, but not written again.
    pub skip: u64,
    /// sudo is still writing: stop quietly at the first record whose data is not all there yet
    /// (a later pass continues from it), and report no truncation.
    pub live: bool,
    /// Most decompressed stream bytes replayed (`None`: no bound). A record that would pass it
    /// ends the replay with [`ReplayOutcome::over_limit`].
    pub max_bytes: Option<u64>,
}

/// Largest record buffered whole in live mode; a larger one waits for the session to finish.
const LIVE_RECORD_MAX: u64 = 1 << 20;

/// The replay loop over any sources (also used by the fuzz harness).
pub fn replay_from<T: BufRead, S: BufRead>(
    timing: StreamReader<T>,
    streams: &mut [Option<StreamReader<S>>; 5],
    complete: bool,
    mode: ReplayMode,
    sink: &mut dyn FnMut(Decoded<'_>, bool) -> io::Result<()>,
) -> Result<ReplayOutcome, SessionError> {
    let mut outcome = ReplayOutcome::default();
    let mut parser = TimingParser::new();
    let mut timing = BufReader::new(timing);
    let mut line = Vec::with_capacity(128);
    let mut buf = vec![0u8; CHUNK];
    let mut whole = Vec::new();
    let mut exhausted = [false; 5];
    let mut at_ns: u64 = 0;
    loop {
        line.clear();
        let n = (&mut timing)
            .take(MAX_TIMING_LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        let cut_short = line.last() != Some(&b'\n');
        if cut_short {
            let timing_truncated = timing.get_ref().truncated();
            // A partial last line is what a running or killed sudo leaves; a complete log
            // never ends that way.
            if line.len() <= MAX_TIMING_LINE && (timing_truncated || !complete || mode.live) {
                if mode.live {
                    outcome.waiting = true;
                } else {
                    outcome.truncated.push("timing");
                }
                break;
            }
        } else {
            line.pop();
        }
        let event = parser.parse_line(&line).map_err(SessionError::Timing)?;
        let skipped = outcome.records < mode.skip;
        let record_at = at_ns.saturating_add(event.delay_ns());
        match event {
            TimingEvent::Io { stream, len, .. } => {
                let i = stream.index();
                let Some(reader) = streams[i].as_mut() else {
                    return Err(SessionError::MissingStream(stream));
                };
                if mode
                    .max_bytes
                    .is_some_and(|max| outcome.total_bytes().saturating_add(len) > max)
                {
                    outcome.over_limit = true;
                    break;
                }
                if mode.live {
                    // All of the record or nothing, so the next pass starts at a record boundary.
                    if len > LIVE_RECORD_MAX {
                        outcome.waiting = true;
                        break;
                    }
                    whole.resize(len as usize, 0);
                    if read_full(reader, &mut whole)? < whole.len() {
                        outcome.waiting = true;
                        break;
                    }
                    for piece in whole.chunks(CHUNK) {
                        sink(
                            Decoded::Io {
                                at_ns: record_at,
                                stream,
                                data: piece,
                            },
                            skipped,
                        )?;
                    }
                    outcome.bytes[i] += len;
                } else {
                    let mut left = len;
                    while left > 0 && !exhausted[i] {
                        let want = left.min(CHUNK as u64) as usize;
                        let got = read_full(reader, &mut buf[..want])?;
                        if got > 0 {
                            sink(
                                Decoded::Io {
                                    at_ns: record_at,
                                    stream,
                                    data: &buf[..got],
                                },
                                skipped,
                            )?;
                        }
                        outcome.bytes[i] += got as u64;
                        left -= got as u64;
                        if got < want {
                            exhausted[i] = true;
                            outcome.truncated.push(stream.file_name());
                        }
                    }
                    outcome.missing_bytes[i] += left;
                }
            }
            TimingEvent::Winsize { lines, cols, .. } => sink(
                Decoded::Winsize {
                    at_ns: record_at,
                    lines,
                    cols,
                },
                skipped,
            )?,
            TimingEvent::Suspend { ref signal, .. } => sink(
                Decoded::Suspend {
                    at_ns: record_at,
                    signal,
                },
                skipped,
            )?,
        }
        at_ns = record_at;
        outcome.records += 1;
        outcome.end_ns = at_ns;
    }
    if !mode.live && timing.get_ref().truncated() && !outcome.truncated.contains(&"timing") {
        outcome.truncated.push("timing");
    }
    Ok(outcome)
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads a small regular file; `None` when it does not exist.
fn read_small(path: &Path) -> Result<Option<Vec<u8>>, SessionError> {
    let file = match open_regular(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut bytes = Vec::new();
    file.take(MAX_META_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_META_BYTES {
        return Err(SessionError::Meta(format!(
            "{} is larger than {MAX_META_BYTES} bytes",
            path.display()
        )));
    }
    Ok(Some(bytes))
}
