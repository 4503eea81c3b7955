//! Reading record files back: lines, frames, and chain verification.
#![forbid(unsafe_code)]

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use base64::Engine;
use serde_json::{Map, Value};

use crate::chain;
use crate::record::Stream;
use crate::schema::{header_key, io_fields, EventBody, FrameView, Io, Pieces, TimingError};
use serde::Deserialize;

/// Longest line the reader accepts (far above any `max_line_bytes`).
pub const MAX_READ_LINE: usize = 16 << 20;

/// One complete, parsed record line.
#[derive(Debug, Clone)]
pub struct Line {
    /// 1-based line number in its file.
    pub line_no: u64,
    pub raw: Vec<u8>,
    pub value: Map<String, Value>,
}

impl Line {
    pub fn kind(&self) -> &str {
        self.value
            .get(header_key::TYPE)
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    pub fn seq(&self) -> Option<u64> {
        self.value.get(header_key::SEQ).and_then(Value::as_u64)
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        self.value.get(key).and_then(Value::as_str)
    }
    pub fn u64(&self, key: &str) -> Option<u64> {
        self.value.get(key).and_then(Value::as_u64)
    }
}

/// What a line that could not be used means for the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// The file ends inside this line: the writer crashed, the disk filled, or it is still
    /// writing.
    CutShort,
    /// The line is not as a writer writes it: unreadable, too long or not a JSON object.
    Broken,
}

/// A line that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line_no: u64,
    pub defect: Defect,
    pub problem: String,
    /// The raw bytes, for chaining past a line that does not parse.
    pub raw: Vec<u8>,
}

/// Iterates the lines of a record file; the last item is an error when the file ends with an
/// incomplete line.
pub struct LineIter<R: Read> {
    reader: BufReader<R>,
    line_no: u64,
    done: bool,
}

impl<R: Read> LineIter<R> {
    pub fn new(inner: R) -> Self {
        LineIter {
            reader: BufReader::with_capacity(64 * 1024, inner),
            line_no: 0,
            done: false,
        }
    }
}

/// The lines of a record file, plain or compressed ([`crate::stored::open`]).
pub fn lines(path: &Path) -> io::Result<LineIter<crate::stored::Stored>> {
    Ok(LineIter::new(crate::stored::open(path)?))
}

impl<R: Read> Iterator for LineIter<R> {
    type Item = Result<Line, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut raw = Vec::new();
        let mut limited = (&mut self.reader).take(MAX_READ_LINE as u64 + 1);
        match limited.read_until(b'\n', &mut raw) {
            Ok(0) => {
                self.done = true;
                return None;
            }
            Ok(_) => {}
            Err(e) => {
                self.done = true;
                return Some(Err(LineError {
                    line_no: self.line_no + 1,
                    defect: Defect::Broken,
                    problem: format!("read error: {e}"),
                    raw,
                }));
            }
        }
        self.line_no += 1;
        let line_no = self.line_no;
        if raw.last() != Some(&b'\n') {
            self.done = true;
            let (defect, problem) = if raw.len() > MAX_READ_LINE {
                (
                    Defect::Broken,
                    format!("line longer than {MAX_READ_LINE} bytes"),
                )
            } else {
                (
                    Defect::CutShort,
                    format!("incomplete last line ({} bytes, no newline)", raw.len()),
                )
            };
            return Some(Err(LineError {
                line_no,
                defect,
                problem,
                raw,
            }));
        }
        match serde_json::from_slice::<Value>(&raw) {
            Ok(Value::Object(value)) => Some(Ok(Line {
                line_no,
                raw,
                value,
            })),
            Ok(_) => Some(Err(LineError {
                line_no,
                defect: Defect::Broken,
                problem: "not a JSON object".into(),
                raw,
            })),
            Err(e) => Some(Err(LineError {
                line_no,
                defect: Defect::Broken,
                problem: format!("not valid JSON: {e}"),
                raw,
            })),
        }
    }
}

/// Reads every line of a file.
pub fn read_file(path: &Path) -> io::Result<Vec<Result<Line, LineError>>> {
    Ok(lines(path)?.collect())
}

/// One decoded I/O frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub offset_us: u64,
    pub stream: Stream,
    pub data: Vec<u8>,
}

/// The frames of an `io` line (empty for other lines; a malformed frame is skipped, a compact
/// line is decoded up to its first malformed token).
pub fn decode_frames(line: &Line) -> Vec<Frame> {
    let mut out = Vec::new();
    let _ = for_each_read(line, |offset_us, stream, data| {
        out.push(Frame {
            offset_us,
            stream,
            data: data.to_vec(),
        })
    });
    out
}

/// Calls `read(offset_us, stream, bytes)` for every read an `io` line holds, in either form
/// (a frame list, or the compact form of [`crate::schema::timing`]); the error names the first
/// malformed token of a compact line.
pub fn for_each_read(
    line: &Line,
    mut read: impl FnMut(u64, Stream, &[u8]),
) -> Result<(), TimingError> {
    if let Some(frames) = line.value.get(io_fields::frames).and_then(Value::as_array) {
        // Frames are read in place, borrowing their text from the parsed line.
        let mut scratch = Vec::new();
        for f in frames {
            let Ok(f) = FrameView::deserialize(f) else {
                continue;
            };
            let Some(stream) = Stream::from_code(&f.s) else {
                continue;
            };
            match (&f.u, &f.b) {
                (Some(u), _) => read(f.off, stream, u.as_bytes()),
                (None, Some(b)) => {
                    scratch.clear();
                    if base64::engine::general_purpose::STANDARD
                        .decode_vec(b.as_bytes(), &mut scratch)
                        .is_ok()
                    {
                        read(f.off, stream, &scratch);
                    }
                }
                (None, None) => {}
            }
        }
    }
    if line.kind() != Io::TYPE {
        return Ok(());
    }
    let Some(t) = line.str(io_fields::t) else {
        return Ok(());
    };
    let text = |key| line.str(key).unwrap_or_default();
    Pieces {
        off: line.u64(io_fields::off).unwrap_or_default(),
        t,
        text: [text(io_fields::i), text(io_fields::o), text(io_fields::e)],
        b64: [
            text(io_fields::i_b64),
            text(io_fields::o_b64),
            text(io_fields::e_b64),
        ],
    }
    .for_each(read)
}

/// The outcome of checking one file's chain.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub ok: bool,
    pub lines: u64,
    pub last_seq: u64,
    /// Hex digest of the last complete line.
    pub last_digest: String,
    /// The file's last line is of this type (e.g. `channel.end`).
    pub last_type: String,
    pub problems: Vec<(u64, String)>,
    /// The line the file ends inside of (reported among `problems`): no damage while its
    /// writer is still running.
    pub cut_short_line: Option<u64>,
}

/// Checks a record file: every line complete JSON, `seq` counting from 1, `file`, `session` and
/// `host` constant and matching the file name, and each `prev` equal to the digest of the line
/// before (the first to the genesis value).
pub fn verify_file(path: &Path) -> io::Result<VerifyReport> {
    let stored_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A compressed file holds the lines of the file it was (`x.jsonl.gz` of `x.jsonl`).
    let name = crate::stored::logical_name(&stored_name).unwrap_or(&stored_name);
    verify_lines(lines(path)?, name)
}

pub fn verify_lines<R: Read>(iter: LineIter<R>, file_name: &str) -> io::Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let mut prev: Option<chain::Digest32> = None;
    let mut ids: Option<(String, String)> = None;
    for item in iter {
        report.lines += 1;
        let line = match item {
            Ok(line) => line,
            Err(e) => {
                if e.defect == Defect::CutShort {
                    report.cut_short_line = Some(e.line_no);
                }
                report.problems.push((e.line_no, e.problem));
                if e.raw.last() == Some(&b'\n') {
                    prev = Some(chain::line_digest(&e.raw));
                }
                continue;
            }
        };
        let n = line.line_no;
        let host = line.str(header_key::HOST).unwrap_or_default().to_string();
        let session = line
            .str(header_key::SESSION)
            .unwrap_or_default()
            .to_string();
        if line.str(header_key::FILE) != Some(file_name) {
            report.problems.push((
                n,
                format!(
                    "file field {:?} does not match the file name {file_name:?}",
                    line.str(header_key::FILE).unwrap_or("")
                ),
            ));
        }
        let expected = match (&prev, &ids) {
            (Some(p), _) => *p,
            (None, _) => chain::genesis(&host, &session, file_name),
        };
        match &ids {
            None => ids = Some((host.clone(), session.clone())),
            Some((h, s)) if *h != host || *s != session => {
                report
                    .problems
                    .push((n, "host or session differs from the first line".into()));
            }
            _ => {}
        }
        match line.str(header_key::PREV) {
            Some(p) if p == chain::to_hex(&expected) => {}
            Some(_) if n == 1 => report.problems.push((n, "prev is not the chain's start value for this host, session and file".into())),
            Some(_) => report.problems.push((
                n,
                format!("prev does not match the digest of line {} (a line was modified, removed or reordered)", n - 1),
            )),
            None => report.problems.push((n, "no prev field".into())),
        }
        match line.seq() {
            Some(s) if s == report.last_seq + 1 => {}
            Some(s) => report
                .problems
                .push((n, format!("seq {s} follows seq {}", report.last_seq))),
            None => report.problems.push((n, "no seq field".into())),
        }
        report.last_seq = line.seq().unwrap_or(report.last_seq + 1);
        report.last_type = line.kind().to_string();
        let digest = chain::line_digest(&line.raw);
        report.last_digest = chain::to_hex(&digest);
        prev = Some(digest);
    }
    report.ok = report.problems.is_empty();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(text: &[u8]) -> VerifyReport {
        verify_lines(LineIter::new(text), "channel-1.jsonl").unwrap()
    }

    #[test]
    fn a_file_ending_inside_a_line_is_cut_short() {
        let r = report(b"{\"type\":\"x\"");
        assert_eq!(r.cut_short_line, Some(1));
        assert_eq!(r.problems.len(), 1);
        let mut lines = LineIter::new(&b"{}\n{\"a\""[..]);
        assert!(lines.next().unwrap().is_ok());
        assert_eq!(lines.next().unwrap().unwrap_err().defect, Defect::CutShort);
    }

    #[test]
    fn lines_a_writer_never_writes_are_not_cut_short() {
        for text in [&b"not json\n"[..], b"[1]\n", b"{\"type\":\"x\"}\n"] {
            let r = report(text);
            assert!(!r.problems.is_empty());
            assert_eq!(r.cut_short_line, None);
        }
        let mut lines = LineIter::new(&b"not json\n"[..]);
        assert_eq!(lines.next().unwrap().unwrap_err().defect, Defect::Broken);
    }
}
