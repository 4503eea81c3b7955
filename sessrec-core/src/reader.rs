//! Reading record files back: lines, frames, and chain verification.
#![forbid(unsafe_code)]

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use base64::Engine;
use serde_json::{Map, Value};

use crate::chain;
use crate::record::Stream;
use crate::schema::{
    header_key, io_fields, ChainView, EventBody, FrameView, Io, Pieces, TimingError,
};
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
            let (defect, problem) = unterminated(raw.len());
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
    /// The first and the last complete line (with their `\n`), when at most
    /// [`MAX_END_LINE`] bytes: what the file says it holds, without reading it again.
    pub first_line: Option<Vec<u8>>,
    pub last_line: Option<Vec<u8>>,
}

/// Longest first or last line kept in a [`VerifyReport`].
pub const MAX_END_LINE: usize = 1 << 20;

/// The header fields the chain check needs from one line.
struct ChainFields<'a> {
    host: &'a str,
    session: &'a str,
    file: Option<&'a str>,
    prev: Option<&'a str>,
    seq: Option<u64>,
    kind: &'a str,
}

/// The chain check, fed one line at a time.
struct ChainCheck<'n> {
    file_name: &'n str,
    report: VerifyReport,
    prev: Option<chain::Digest32>,
    ids: Option<(String, String)>,
    last: Option<chain::Digest32>,
}

impl<'n> ChainCheck<'n> {
    fn new(file_name: &'n str) -> Self {
        ChainCheck {
            file_name,
            report: VerifyReport::default(),
            prev: None,
            ids: None,
            last: None,
        }
    }

    fn keep_ends(&mut self, raw: &[u8]) {
        if raw.len() > MAX_END_LINE {
            self.report.last_line = None;
            return;
        }
        if self.report.lines == 1 {
            self.report.first_line = Some(raw.to_vec());
        }
        match &mut self.report.last_line {
            Some(l) => {
                l.clear();
                l.extend_from_slice(raw);
            }
            None => self.report.last_line = Some(raw.to_vec()),
        }
    }

    /// A line that could not be used.
    fn defect(&mut self, line_no: u64, defect: Defect, problem: String, raw: &[u8]) {
        self.report.lines += 1;
        if defect == Defect::CutShort {
            self.report.cut_short_line = Some(line_no);
        }
        self.report.problems.push((line_no, problem));
        if raw.last() == Some(&b'\n') {
            self.prev = Some(chain::line_digest(raw));
            self.keep_ends(raw);
        }
    }

    fn line(&mut self, n: u64, raw: &[u8], f: ChainFields<'_>) {
        self.report.lines += 1;
        self.keep_ends(raw);
        let file_name = self.file_name;
        let report = &mut self.report;
        if f.file != Some(file_name) {
            report.problems.push((
                n,
                format!(
                    "file field {:?} does not match the file name {file_name:?}",
                    f.file.unwrap_or("")
                ),
            ));
        }
        let expected = match &self.prev {
            Some(p) => *p,
            None => chain::genesis(f.host, f.session, file_name),
        };
        match &self.ids {
            None => self.ids = Some((f.host.to_string(), f.session.to_string())),
            Some((h, s)) if h != f.host || s != f.session => {
                report
                    .problems
                    .push((n, "host or session differs from the first line".into()));
            }
            _ => {}
        }
        match f.prev {
            Some(p) if p.as_bytes() == chain::hex_bytes(&expected) => {}
            Some(_) if n == 1 => report.problems.push((n, "prev is not the chain's start value for this host, session and file".into())),
            Some(_) => report.problems.push((
                n,
                format!("prev does not match the digest of line {} (a line was modified, removed or reordered)", n - 1),
            )),
            None => report.problems.push((n, "no prev field".into())),
        }
        match f.seq {
            Some(s) if s == report.last_seq + 1 => {}
            Some(s) => report
                .problems
                .push((n, format!("seq {s} follows seq {}", report.last_seq))),
            None => report.problems.push((n, "no seq field".into())),
        }
        report.last_seq = f.seq.unwrap_or(report.last_seq + 1);
        report.last_type.clear();
        report.last_type.push_str(f.kind);
        let digest = chain::line_digest(raw);
        self.last = Some(digest);
        self.prev = Some(digest);
    }

    /// A line without its `\n` at the end of the file: cut short, or longer than any line a
    /// reader accepts.
    fn cut_line(&mut self, line_no: u64, raw: &[u8]) {
        let (defect, problem) = unterminated(raw.len());
        self.defect(line_no, defect, problem, raw);
    }

    /// A complete line (with its `\n`): its header fields borrowed when it reads exactly as a
    /// full parse would, else parsed whole.
    fn complete_line(&mut self, line_no: u64, raw: &[u8]) {
        if let Some(v) = skim(raw) {
            self.line(
                line_no,
                raw,
                ChainFields {
                    host: v.host.as_deref().unwrap_or_default(),
                    session: v.session.as_deref().unwrap_or_default(),
                    file: v.file.as_deref(),
                    prev: v.prev.as_deref(),
                    seq: v.seq,
                    kind: v.kind.as_deref().unwrap_or_default(),
                },
            );
            return;
        }
        match serde_json::from_slice::<Value>(raw) {
            Ok(Value::Object(value)) => self.parsed(&Line {
                line_no,
                raw: raw.to_vec(),
                value,
            }),
            Ok(_) => self.defect(line_no, Defect::Broken, "not a JSON object".into(), raw),
            Err(e) => self.defect(line_no, Defect::Broken, format!("not valid JSON: {e}"), raw),
        }
    }

    /// A parsed line.
    fn parsed(&mut self, line: &Line) {
        self.line(
            line.line_no,
            &line.raw,
            ChainFields {
                host: line.str(header_key::HOST).unwrap_or_default(),
                session: line.str(header_key::SESSION).unwrap_or_default(),
                file: line.str(header_key::FILE),
                prev: line.str(header_key::PREV),
                seq: line.seq(),
                kind: line.kind(),
            },
        );
    }

    fn finish(mut self) -> VerifyReport {
        if let Some(d) = &self.last {
            self.report.last_digest = chain::to_hex(d);
        }
        self.report.ok = self.report.problems.is_empty();
        self.report
    }
}

/// The header fields of a line read without building it, when that reads it exactly as the
/// full parse would: a UTF-8 JSON object without `\uD...` escapes (a full parse rejects lone
/// surrogates; a skimmed field would not). Anything else takes the full parse.
pub fn skim(raw: &[u8]) -> Option<ChainView<'_>> {
    let start = raw.iter().position(|b| !b.is_ascii_whitespace())?;
    if raw[start] != b'{' || std::str::from_utf8(raw).is_err() {
        return None;
    }
    let surrogate = memchr::memchr_iter(b'\\', raw)
        .any(|i| raw.get(i + 1) == Some(&b'u') && matches!(raw.get(i + 2), Some(b'd' | b'D')));
    if surrogate {
        return None;
    }
    serde_json::from_slice(raw).ok()
}

/// Checks a record file: every line complete JSON, `seq` counting from 1, `file`, `session` and
/// `host` constant and matching the file name, and each `prev` equal to the digest of the line
/// before (the first to the genesis value).
pub fn verify_file(path: &Path) -> io::Result<VerifyReport> {
    verify_file_looking(path, 0, &mut |_| {})
}

/// [`verify_file`] that also hands the file's bytes to `look` when it holds at most `limit`
/// bytes (it is read whole, once, for both); a longer file is streamed and not looked at.
pub fn verify_file_looking(
    path: &Path,
    limit: usize,
    look: &mut dyn FnMut(&[u8]),
) -> io::Result<VerifyReport> {
    verify_file_buffered(path, limit, &mut Vec::new(), look)
}

/// [`verify_file_looking`] reading into `buf`: one buffer serves file after file.
pub fn verify_file_buffered(
    path: &Path,
    limit: usize,
    buf: &mut Vec<u8>,
    look: &mut dyn FnMut(&[u8]),
) -> io::Result<VerifyReport> {
    let stored_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A compressed file holds the lines of the file it was (`x.jsonl.gz` of `x.jsonl`).
    let name = crate::stored::logical_name(&stored_name)
        .unwrap_or(&stored_name)
        .to_string();
    if limit > 0 && crate::stored::read_bounded(path, limit, buf)? {
        look(buf);
        return Ok(verify_content(buf, &name));
    }
    // Too long to read whole (or a plain file whose size said so): streamed, plain or
    // compressed, through the one place record files are opened.
    let file = crate::stored::open(path)?;
    verify_reader(file, &name)
}

/// [`verify_file`] over a file's whole content: lines are taken in place and their header
/// fields borrowed from them (no copy and no allocation per line).
pub fn verify_content(content: &[u8], file_name: &str) -> VerifyReport {
    let mut check = ChainCheck::new(file_name);
    let mut rest = content;
    let mut line_no = 0u64;
    while !rest.is_empty() {
        line_no += 1;
        // As the streamed reader: a line is read up to MAX_READ_LINE + 1 bytes.
        let window = &rest[..rest.len().min(MAX_READ_LINE + 1)];
        let Some(end) = memchr::memchr(b'\n', window) else {
            check.cut_line(line_no, window);
            break;
        };
        let (raw, after) = rest.split_at(end + 1);
        check.complete_line(line_no, raw);
        rest = after;
    }
    check.finish()
}

/// [`verify_file`] over any reader: lines are read into one buffer and their header fields
/// borrowed from it (no allocation per line).
pub fn verify_reader<R: Read>(inner: R, file_name: &str) -> io::Result<VerifyReport> {
    let mut check = ChainCheck::new(file_name);
    let mut reader = BufReader::with_capacity(64 * 1024, inner);
    let mut raw = Vec::with_capacity(16 * 1024);
    let mut line_no = 0u64;
    loop {
        raw.clear();
        let mut limited = (&mut reader).take(MAX_READ_LINE as u64 + 1);
        match limited.read_until(b'\n', &mut raw) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                check.defect(
                    line_no + 1,
                    Defect::Broken,
                    format!("read error: {e}"),
                    &raw,
                );
                break;
            }
        }
        line_no += 1;
        if raw.last() != Some(&b'\n') {
            check.cut_line(line_no, &raw);
            break;
        }
        check.complete_line(line_no, &raw);
    }
    Ok(check.finish())
}

pub fn verify_lines<R: Read>(iter: LineIter<R>, file_name: &str) -> io::Result<VerifyReport> {
    let mut check = ChainCheck::new(file_name);
    for item in iter {
        match item {
            Ok(line) => check.parsed(&line),
            Err(e) => check.defect(e.line_no, e.defect, e.problem, &e.raw),
        }
    }
    Ok(check.finish())
}

/// What a last line of `len` bytes without its `\n` is: cut short, or longer than any line a
/// reader accepts.
fn unterminated(len: usize) -> (Defect, String) {
    if len > MAX_READ_LINE {
        (
            Defect::Broken,
            format!("line longer than {MAX_READ_LINE} bytes"),
        )
    } else {
        (
            Defect::CutShort,
            format!("incomplete last line ({len} bytes, no newline)"),
        )
    }
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
    fn whole_content_and_streamed_reads_report_alike() {
        let good = b"{\"type\":\"x\",\"seq\":1,\"file\":\"channel-1.jsonl\"}\n";
        let texts: [&[u8]; 6] = [
            b"",
            good,
            b"{\"type\":\"x\"",
            b"not json\n[1]\n{\"seq\":2}\n{\"a\"",
            b"{\"seq\":1,\"seq\":1}\n{\"host\":\"\\ud800\"}\n\n",
            b"{\"type\":\"x\"}\n{\"type\":\"y\"}\n",
        ];
        for text in texts {
            let whole = verify_content(text, "channel-1.jsonl");
            let streamed = verify_reader(text, "channel-1.jsonl").unwrap();
            assert_eq!(whole.problems, streamed.problems, "{text:?}");
            assert_eq!(
                (
                    whole.lines,
                    whole.last_seq,
                    &whole.last_digest,
                    &whole.last_type
                ),
                (
                    streamed.lines,
                    streamed.last_seq,
                    &streamed.last_digest,
                    &streamed.last_type
                ),
                "{text:?}"
            );
            assert_eq!(whole.cut_short_line, streamed.cut_short_line);
            assert_eq!(whole.first_line, streamed.first_line);
            assert_eq!(whole.last_line, streamed.last_line);
        }
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
