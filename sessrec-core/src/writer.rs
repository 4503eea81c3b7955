//! The record writer: whole JSON lines, each written with one `write(2)`, chained by SHA-256,
//! bounded by `max_line_bytes`, with I/O batched into frame lists and flushed on a deadline
//! (see [`crate::flush_policy`]).
//!
//! It keeps a reserve of disk blocks allocated past the end of the file so that the final
//! lines of a channel fit even when the disk fills; when the reserve cannot be renewed,
//! [`RecordWriter::space_low`] tells the caller to finish now.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::bounds::cut_at_char_boundary;
use crate::chain::{self, Digest32};
use crate::config::RecorderConfig;
use crate::flush_policy::FlushPolicy;
use crate::frames::{self, Encoding};
use crate::record::{FileContext, Stream};
use crate::schema::timing::{self, PieceForm};
use crate::schema::{
    self, header_key, io_fields, CommandPart, EventBody, Io, BYTES_SUFFIX, HEADER_KEYS,
    PARTS_SUFFIX, SCHEMA_VERSION,
};
use crate::time::Timestamp;

/// Disk space kept allocated past the end of each record file.
pub const RESERVE_BYTES: u64 = 256 * 1024;
/// A held-back partial UTF-8 character is written as base64 once it is this old.
const TAIL_MAX_AGE: Duration = Duration::from_secs(1);
/// Longest value of a header field (host, user, actor).
const HEADER_FIELD_MAX: usize = 256;
/// Room the line tail `,"prev":"<64 hex>"}\n` needs.
const IO_TAIL_LEN: usize = 77;
/// Longest byte count a token can carry (a line's worth).
const COUNT_DIGITS: usize = 7;

#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    pub max_line_bytes: usize,
    pub flush_interval: Duration,
    /// How long a pending line that is only unsubmitted typing may wait (see
    /// [`crate::flush_policy`]); not longer than `flush_interval` (the default, zero): no hold.
    pub typing_flush: Duration,
    pub anchor_interval: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            max_line_bytes: 8192,
            flush_interval: Duration::from_millis(1000),
            typing_flush: Duration::ZERO,
            anchor_interval: Duration::from_secs(60),
        }
    }
}

impl WriterOptions {
    /// For records of anything but a terminal: every read is written within `flush_interval_ms`.
    pub fn from_config(rec: &RecorderConfig) -> Self {
        WriterOptions {
            max_line_bytes: rec.max_line_bytes,
            flush_interval: Duration::from_millis(rec.flush_interval_ms),
            ..WriterOptions::default()
        }
    }

    /// For the record of a terminal (a pty channel): unsubmitted typing may wait up to
    /// `typing_flush_ms`.
    pub fn for_terminal(rec: &RecorderConfig) -> Self {
        WriterOptions {
            typing_flush: Duration::from_millis(rec.typing_flush_ms),
            ..WriterOptions::from_config(rec)
        }
    }
}

/// A (file, seq, digest) triple sent to syslog so that the chain can be checked later against
/// something that left the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// `<session id>/<file name>`.
    pub file: String,
    pub seq: u64,
    pub digest: String,
    /// The host the record names (its `host` field), last so that readers of the older
    /// three-field form keep working; a central receiver files the anchor under it.
    pub host: String,
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sessrec anchor file={} seq={} sha256={} host={}",
            self.file, self.seq, self.digest, self.host
        )
    }
}

/// Bytes of a partial UTF-8 character held back until the rest arrives.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
    offset_us: u64,
    since: Option<Instant>,
}

pub struct RecordWriter {
    file: File,
    ctx: FileContext,
    opts: WriterOptions,
    /// `,"host":..,"session":..,"file":..,"user":..,"actor":..` — the same on every line.
    fixed: Vec<u8>,
    seq: u64,
    prev: Digest32,
    /// Length of the file: complete lines only.
    len: u64,
    reserved_until: u64,
    space_low: bool,
    /// The I/O line being filled (its header and `off`); empty when none is pending.
    line: Vec<u8>,
    /// The pending line's reads: timing string, escaped text and base64 per stream.
    pending: PendingIo,
    /// When the pending line is due.
    flush_policy: FlushPolicy,
    tails: [Tail; 3],
    last_anchor: Instant,
    anchored_seq: u64,
    joined: Vec<u8>,
}

impl RecordWriter {
    /// Starts writing a new, empty record file (opened for appending).
    pub fn new(file: File, ctx: FileContext, opts: WriterOptions) -> io::Result<Self> {
        let prev = chain::genesis(&ctx.host, &ctx.session.to_string(), &ctx.file);
        let mut w = RecordWriter::with_state(file, ctx, opts, 0, prev, 0);
        w.renew_reserve()?;
        if w.space_low {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space to reserve for the record file",
            ));
        }
        Ok(w)
    }

    /// Continues an existing record file (opened for reading and appending): finds its last seq
    /// and digest. An incomplete last line (a crash remnant) is cut off and reported in an
    /// `error` line.
    pub fn resume(mut file: File, ctx: FileContext, opts: WriterOptions) -> io::Result<Self> {
        file.seek(SeekFrom::Start(0))?;
        let mut prev = chain::genesis(&ctx.host, &ctx.session.to_string(), &ctx.file);
        let (mut seq, mut len) = (0u64, 0u64);
        let mut remnant = 0u64;
        {
            let mut reader = BufReader::new(&file);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let n = reader.read_until(b'\n', &mut buf)?;
                if n == 0 {
                    break;
                }
                if buf.last() != Some(&b'\n') {
                    remnant = n as u64;
                    break;
                }
                prev = chain::line_digest(&buf);
                len += n as u64;
                if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(&buf) {
                    seq = m
                        .get(header_key::SEQ)
                        .and_then(Value::as_u64)
                        .unwrap_or(seq + 1);
                } else {
                    seq += 1;
                }
            }
        }
        if remnant > 0 {
            file.set_len(len)?;
        }
        let mut w = RecordWriter::with_state(file, ctx, opts, seq, prev, len);
        w.renew_reserve()?;
        if remnant > 0 {
            w.write(&schema::Error {
                error: Some("incomplete last line removed on resume".into()),
                removed_bytes: Some(remnant),
                ..Default::default()
            })?;
        }
        Ok(w)
    }

    fn with_state(
        file: File,
        ctx: FileContext,
        opts: WriterOptions,
        seq: u64,
        prev: Digest32,
        len: u64,
    ) -> Self {
        let mut fixed = Vec::with_capacity(256);
        for (key, value) in [
            (header_key::HOST, &ctx.host),
            (header_key::SESSION, &ctx.session.to_string()),
            (header_key::FILE, &ctx.file),
            (header_key::USER, &ctx.user),
            (header_key::ACTOR, &ctx.actor),
        ] {
            fixed.extend_from_slice(b",\"");
            fixed.extend_from_slice(key.as_bytes());
            fixed.extend_from_slice(b"\":");
            frames::append_json_str(&mut fixed, cut_at_char_boundary(value, HEADER_FIELD_MAX));
        }
        RecordWriter {
            file,
            ctx,
            opts,
            fixed,
            seq,
            prev,
            len,
            reserved_until: len,
            space_low: false,
            line: Vec::with_capacity(opts.max_line_bytes),
            pending: PendingIo::default(),
            flush_policy: FlushPolicy::new(opts.flush_interval, opts.typing_flush),
            tails: Default::default(),
            last_anchor: Instant::now(),
            anchored_seq: seq,
            joined: Vec::new(),
        }
    }

    pub fn context(&self) -> &FileContext {
        &self.ctx
    }

    /// Seq of the last line written (0: none yet).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Hex SHA-256 of the last line written (the genesis value before any line).
    pub fn digest(&self) -> String {
        chain::to_hex(&self.prev)
    }

    pub fn bytes_written(&self) -> u64 {
        self.len
    }

    /// The disk reserve could not be renewed: the caller should write its final lines and stop.
    pub fn space_low(&self) -> bool {
        self.space_low
    }

    pub fn anchor(&self) -> Anchor {
        Anchor {
            file: format!("{}/{}", self.ctx.session, self.ctx.file),
            seq: self.seq,
            digest: self.digest(),
            host: self.ctx.host.clone(),
        }
    }

    /// An anchor when one is due (every `anchor_interval` while lines are being written).
    pub fn poll_anchor(&mut self, now: Instant) -> Option<Anchor> {
        if now.duration_since(self.last_anchor) < self.opts.anchor_interval
            || self.seq == self.anchored_seq
        {
            return None;
        }
        self.last_anchor = now;
        self.anchored_seq = self.seq;
        Some(self.anchor())
    }

    /// When pending I/O must be written at the latest.
    pub fn flush_deadline(&self) -> Option<Instant> {
        let lines = self.flush_policy.deadline();
        let tails = self
            .tails
            .iter()
            .filter_map(|t| t.since.map(|s| s + TAIL_MAX_AGE))
            .min();
        match (lines, tails) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Records bytes of one stream read at `offset_us` (µs since `channel.start`).
    pub fn io(&mut self, stream: Stream, offset_us: u64, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let tail = &mut self.tails[stream.index()];
        let mut joined = std::mem::take(&mut self.joined);
        joined.clear();
        let (bytes, offset) = if tail.bytes.is_empty() {
            (data, offset_us)
        } else {
            joined.extend_from_slice(&tail.bytes);
            joined.extend_from_slice(data);
            tail.bytes.clear();
            tail.since = None;
            (&joined[..], tail.offset_us)
        };
        let result = self.io_complete(stream, offset, bytes);
        self.joined = joined;
        if !self.line.is_empty() {
            self.flush_policy.note(stream, data, Instant::now);
        }
        result
    }

    fn io_complete(&mut self, stream: Stream, offset: u64, bytes: &[u8]) -> io::Result<()> {
        match std::str::from_utf8(bytes) {
            Ok(_) => {
                let enc = frames::choose_encoding(true, bytes);
                self.push_frame(stream, offset, enc, bytes)
            }
            Err(e) if e.error_len().is_none() => {
                // Valid up to a partial character at the end: hold that back.
                let (done, partial) = bytes.split_at(e.valid_up_to());
                let tail = &mut self.tails[stream.index()];
                tail.bytes.extend_from_slice(partial);
                tail.offset_us = offset;
                tail.since = Some(Instant::now());
                if done.is_empty() {
                    return Ok(());
                }
                let enc = frames::choose_encoding(true, done);
                self.push_frame(stream, offset, enc, done)
            }
            Err(_) => self.push_frame(stream, offset, Encoding::Base64, bytes),
        }
    }

    fn push_frame(
        &mut self,
        stream: Stream,
        offset: u64,
        enc: Encoding,
        data: &[u8],
    ) -> io::Result<()> {
        let form = match enc {
            Encoding::Base64 => PieceForm::Base64,
            Encoding::Utf8 if timing::foldable(data) => PieceForm::FoldedCrlf,
            Encoding::Utf8 => PieceForm::Text,
        };
        let mut data = data;
        let limit = self.opts.max_line_bytes - IO_TAIL_LEN;
        while !data.is_empty() {
            if self.line.is_empty() {
                self.start_io_line(offset);
            }
            let k = stream.index();
            let delta = offset.abs_diff(self.pending.last_off);
            let opening = match form {
                PieceForm::Base64 if self.pending.b64[k].is_empty() => B64_FIELD_OVERHEAD,
                PieceForm::Base64 => 0,
                _ if self.pending.text[k].is_empty() => TEXT_FIELD_OVERHEAD,
                _ => 0,
            };
            let token = 1 + timing::decimal_len(delta) + 2 + COUNT_DIGITS;
            let used_so_far = self.line.len() + self.pending.len();
            let room = limit.saturating_sub(used_so_far + opening + token);
            if room < 16 && self.pending.reads > 0 {
                self.write_io_line()?;
                continue;
            }
            let (used, count) = match form {
                PieceForm::Base64 => {
                    let used = frames::append_base64(&mut self.pending.b64[k], data, room);
                    (used, frames::base64_len(used))
                }
                PieceForm::FoldedCrlf => {
                    frames::append_escaped_folding(&mut self.pending.text[k], data, room)
                }
                PieceForm::Text => {
                    let used = frames::append_escaped(&mut self.pending.text[k], data, room);
                    (used, used)
                }
            };
            if used == 0 {
                if self.pending.reads > 0 {
                    self.write_io_line()?;
                    continue;
                }
                self.line.clear();
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "max_line_bytes leaves no room for I/O",
                ));
            }
            let last = self.pending.last_off;
            timing::push_token(&mut self.pending.t, last, offset, stream, form, count);
            self.pending.last_off = offset;
            self.pending.reads += 1;
            data = &data[used..];
            if !data.is_empty() {
                self.write_io_line()?;
            }
        }
        if self.line.len() + self.pending.len() + 64 > limit {
            self.write_io_line()?;
        }
        Ok(())
    }

    fn start_io_line(&mut self, offset: u64) {
        self.line.clear();
        self.push_head(Io::TYPE);
        push_key(&mut self.line, io_fields::off);
        self.line.extend_from_slice(offset.to_string().as_bytes());
        self.pending.clear();
        self.pending.last_off = offset;
    }

    fn push_head(&mut self, kind: &str) {
        let time = Timestamp::now().to_string();
        self.line.extend_from_slice(b"{\"v\":");
        self.line
            .extend_from_slice(SCHEMA_VERSION.to_string().as_bytes());
        self.line.extend_from_slice(b",\"type\":");
        frames::append_json_str(&mut self.line, kind);
        self.line.extend_from_slice(b",\"seq\":");
        self.line
            .extend_from_slice((self.seq + 1).to_string().as_bytes());
        self.line.extend_from_slice(b",\"time\":\"");
        self.line.extend_from_slice(time.as_bytes());
        self.line.push(b'"');
        let fixed = std::mem::take(&mut self.fixed);
        self.line.extend_from_slice(&fixed);
        self.fixed = fixed;
    }

    fn push_prev_and_end(&mut self) {
        self.line.extend_from_slice(b",\"prev\":\"");
        self.line
            .extend_from_slice(chain::to_hex(&self.prev).as_bytes());
        self.line.extend_from_slice(b"\"}\n");
    }

    fn write_io_line(&mut self) -> io::Result<()> {
        if self.line.is_empty() {
            return Ok(());
        }
        if self.pending.reads == 0 {
            self.line.clear();
            self.flush_policy.written();
            return Ok(());
        }
        let p = std::mem::take(&mut self.pending);
        push_key(&mut self.line, io_fields::t);
        push_quoted(&mut self.line, &p.t);
        let text_keys = [io_fields::i, io_fields::o, io_fields::e];
        let b64_keys = [io_fields::i_b64, io_fields::o_b64, io_fields::e_b64];
        for k in 0..3 {
            if !p.text[k].is_empty() {
                push_key(&mut self.line, text_keys[k]);
                push_quoted(&mut self.line, &p.text[k]);
            }
            if !p.b64[k].is_empty() {
                push_key(&mut self.line, b64_keys[k]);
                push_quoted(&mut self.line, &p.b64[k]);
            }
        }
        self.pending = p;
        self.pending.clear();
        self.push_prev_and_end();
        self.flush_policy.written();
        self.commit_line()
    }

    /// Writes pending I/O now (and partial characters held back longer than a second).
    pub fn flush(&mut self) -> io::Result<()> {
        let now = Instant::now();
        for i in 0..3 {
            let old = self.tails[i]
                .since
                .is_some_and(|s| now.duration_since(s) >= TAIL_MAX_AGE);
            if old {
                self.emit_tail(i)?;
            }
        }
        self.write_io_line()
    }

    /// Writes everything pending, partial characters included (as base64). For channel end.
    pub fn finish_io(&mut self) -> io::Result<()> {
        for i in 0..3 {
            self.emit_tail(i)?;
        }
        self.write_io_line()
    }

    fn emit_tail(&mut self, index: usize) -> io::Result<()> {
        let tail = std::mem::take(&mut self.tails[index]);
        if tail.bytes.is_empty() {
            return Ok(());
        }
        let stream = [Stream::Input, Stream::Output, Stream::Stderr][index];
        self.push_frame(stream, tail.offset_us, Encoding::Base64, &tail.bytes)
    }

    /// Writes one event line (after any pending I/O). String fields too long for the line are
    /// cut, with `<field>_truncated` = their original length.
    pub fn event(&mut self, kind: &str, mut fields: Map<String, Value>) -> io::Result<()> {
        self.write_io_line()?;
        fields.retain(|k, _| !HEADER_KEYS.contains(&k.as_str()));
        for _ in 0..8 {
            self.build_event_line(kind, &fields)?;
            let over = self.line.len().saturating_sub(self.opts.max_line_bytes);
            if over == 0 {
                return self.commit_line();
            }
            shrink_largest_field(&mut fields, over, &[]);
        }
        // Still too large (many large non-string fields): keep only what names the problem.
        let minimal = writer_error(format!("{kind} event too large for max_line_bytes"));
        self.build_event_line(kind, &minimal)?;
        self.commit_line()
    }

    /// Writes one typed event line (see [`RecordWriter::event`]).
    pub fn write<E: EventBody>(&mut self, event: &E) -> io::Result<()> {
        let fields = event.to_fields().map_err(io::Error::other)?;
        self.event(E::TYPE, fields)
    }

    /// Whether `event` fits one line as it is, without any field cut.
    pub fn fits<E: EventBody>(&mut self, event: &E) -> io::Result<bool> {
        let fields = event.to_fields().map_err(io::Error::other)?;
        self.write_io_line()?;
        self.build_event_line(E::TYPE, &fields)?;
        let fits = self.line.len() <= self.opts.max_line_bytes;
        self.line.clear();
        Ok(fits)
    }

    /// Writes one typed event line carrying `value` whole as the field `key` (see
    /// [`RecordWriter::event_with_long_field`]).
    pub fn write_with_long_field<E: EventBody>(
        &mut self,
        event: &E,
        key: &str,
        value: &[u8],
    ) -> io::Result<()> {
        let fields = event.to_fields().map_err(io::Error::other)?;
        self.event_with_long_field(E::TYPE, fields, key, value)
    }

    /// Writes one event line that carries `value` whole as the field `key`, however long:
    /// the line holds `key` (or `<key>_b64` when `value` is not UTF-8) with as much as fits,
    /// `<key>_bytes` = its length and, when it did not fit, `<key>_parts` = the number of
    /// `command.part` lines written right after it with the rest (see [`crate::command`]).
    /// Other string fields too long for the line are cut as in [`RecordWriter::event`]; `value`
    /// never is. An error means the value is not in the record whole.
    pub fn event_with_long_field(
        &mut self,
        kind: &str,
        mut fields: Map<String, Value>,
        key: &str,
        value: &[u8],
    ) -> io::Result<()> {
        use crate::command::{self, Form};
        self.write_io_line()?;
        fields.retain(|k, _| !HEADER_KEYS.contains(&k.as_str()));
        let form = Form::of(value);
        let value_key = form.start_key(key);
        let bytes_key = format!("{key}{BYTES_SUFFIX}");
        let parts_key = format!("{key}{PARTS_SUFFIX}");
        let protected = [value_key.clone(), bytes_key.clone(), parts_key.clone()];
        for k in &protected {
            fields.remove(k);
        }
        // The line with an empty piece and the widest counts: what is left is the first piece's.
        fields.insert(bytes_key.clone(), Value::from(value.len()));
        fields.insert(parts_key.clone(), Value::from(u64::from(u32::MAX)));
        fields.insert(value_key.clone(), Value::String(String::new()));
        let mut fitted = false;
        for _ in 0..8 {
            self.build_event_line(kind, &fields)?;
            let over = self.line.len().saturating_sub(self.opts.max_line_bytes);
            if over == 0 {
                fitted = true;
                break;
            }
            shrink_largest_field(&mut fields, over, &protected);
        }
        if !fitted {
            self.line.clear();
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{kind} event too large for max_line_bytes"),
            ));
        }
        let first_room = self.opts.max_line_bytes - self.line.len();
        // A part line's own fields, with the widest numbers; the seq may gain digits on the way.
        let mut part = CommandPart {
            field: Some(key.into()),
            part: Some(u32::MAX.into()),
            of: Some(u32::MAX.into()),
            offset: Some(u64::MAX),
            ..Default::default()
        };
        form.set_piece(&mut part, String::new());
        let widest = part.to_fields().map_err(io::Error::other)?;
        self.build_event_line(CommandPart::TYPE, &widest)?;
        let part_room = self
            .opts
            .max_line_bytes
            .saturating_sub(self.line.len() + 20);
        self.line.clear();
        let pieces = command::split(form, value, first_room, part_room).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("max_line_bytes leaves no room for the {key} in {kind} lines"),
            )
        })?;
        let parts = pieces.len() - 1;
        fields.insert(value_key, Value::String(form.encode(pieces[0])));
        if parts > 0 {
            fields.insert(parts_key, Value::from(parts));
        } else {
            fields.remove(&parts_key);
        }
        self.commit_fitting(kind, &fields)?;
        let mut offset = pieces[0].len();
        for (i, piece) in pieces[1..].iter().enumerate() {
            part.part = Some(i as u64 + 1);
            part.of = Some(parts as u64);
            part.offset = Some(offset as u64);
            form.set_piece(&mut part, form.encode(piece));
            let fields = part.to_fields().map_err(io::Error::other)?;
            self.commit_fitting(CommandPart::TYPE, &fields)?;
            offset += piece.len();
        }
        Ok(())
    }

    /// Builds and writes one event line that must fit `max_line_bytes` as it is.
    fn commit_fitting(&mut self, kind: &str, fields: &Map<String, Value>) -> io::Result<()> {
        self.build_event_line(kind, fields)?;
        if self.line.len() > self.opts.max_line_bytes {
            let len = self.line.len();
            self.line.clear();
            return Err(io::Error::other(format!(
                "{kind} line of {len} bytes exceeds max_line_bytes"
            )));
        }
        self.commit_line()
    }

    /// Builds `{header, fields..., prev}\n` in `self.line`.
    fn build_event_line(&mut self, kind: &str, fields: &Map<String, Value>) -> io::Result<()> {
        self.line.clear();
        self.push_head(kind);
        for (key, value) in fields {
            self.line.push(b',');
            frames::append_json_str(&mut self.line, key);
            self.line.push(b':');
            serde_json::to_writer(&mut self.line, value).map_err(io::Error::other)?;
        }
        self.push_prev_and_end();
        Ok(())
    }

    /// Writes the built line with one write(2); a short write is retried once, else the file is
    /// cut back to its last complete line and an `error` line records the loss.
    fn commit_line(&mut self) -> io::Result<()> {
        let line = std::mem::take(&mut self.line);
        let result = self.write_whole(&line);
        match result {
            Ok(()) => {
                self.seq += 1;
                self.prev = chain::line_digest(&line);
                self.len += line.len() as u64;
                self.line = line;
                self.line.clear();
                if self.len + RESERVE_BYTES / 2 > self.reserved_until {
                    self.renew_reserve()?;
                }
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                let lost = format!("record line of {} bytes not written: {e}", line.len());
                self.line = line;
                self.line.clear();
                self.pending.clear();
                self.flush_policy.written();
                let _ = self.write_error_line(&lost);
                Err(e)
            }
        }
    }

    fn write_whole(&mut self, line: &[u8]) -> io::Result<()> {
        let n = write_once(&mut self.file, line)?;
        if n == line.len() {
            return Ok(());
        }
        let m = write_once(&mut self.file, &line[n..])?;
        if n + m == line.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write of a record line",
            ))
        }
    }

    /// A last-ditch `error` line after a failed write, without recursion into error handling.
    fn write_error_line(&mut self, message: &str) -> io::Result<()> {
        let fields = writer_error(message.to_string());
        self.build_event_line(schema::Error::TYPE, &fields)?;
        let line = std::mem::take(&mut self.line);
        let result = self.write_whole(&line);
        if result.is_ok() {
            self.seq += 1;
            self.prev = chain::line_digest(&line);
            self.len += line.len() as u64;
        } else {
            let _ = self.file.set_len(self.len);
        }
        self.line = line;
        self.line.clear();
        result
    }

    fn renew_reserve(&mut self) -> io::Result<()> {
        match crate::sys::fallocate_keep_size(&self.file, self.len, RESERVE_BYTES) {
            Ok(()) => {
                self.reserved_until = self.len + RESERVE_BYTES;
                Ok(())
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)) => {
                self.space_low = true;
                // Check again after another half reserve.
                self.reserved_until = self.len + RESERVE_BYTES / 2;
                Ok(())
            }
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS)
                ) =>
            {
                self.reserved_until = u64::MAX;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Writes everything pending and releases the disk reserve.
    pub fn close(mut self) -> io::Result<Anchor> {
        self.finish_io()?;
        self.file.set_len(self.len)?;
        Ok(self.anchor())
    }
}

impl Drop for RecordWriter {
    fn drop(&mut self) {
        let _ = self.finish_io();
    }
}

/// `,"o":""`: what a stream's text field costs besides its bytes.
const TEXT_FIELD_OVERHEAD: usize = 7;
/// `,"o_b64":""`.
const B64_FIELD_OVERHEAD: usize = 11;

/// The reads of the `io` line being filled, kept apart until the line is written.
#[derive(Default)]
struct PendingIo {
    /// The timing string (see [`crate::schema::timing`]).
    t: Vec<u8>,
    /// JSON-escaped text per stream (input, output, stderr).
    text: [Vec<u8>; 3],
    /// Base64 per stream.
    b64: [Vec<u8>; 3],
    /// Offset of the last read.
    last_off: u64,
    reads: usize,
}

impl PendingIo {
    /// Bytes these reads add to the line: `t` and every non-empty stream field.
    fn len(&self) -> usize {
        let text: usize = self
            .text
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| t.len() + TEXT_FIELD_OVERHEAD)
            .sum();
        let b64: usize = self
            .b64
            .iter()
            .filter(|b| !b.is_empty())
            .map(|b| b.len() + B64_FIELD_OVERHEAD)
            .sum();
        TEXT_FIELD_OVERHEAD + self.t.len() + text + b64
    }

    fn clear(&mut self) {
        self.t.clear();
        self.text.iter_mut().for_each(Vec::clear);
        self.b64.iter_mut().for_each(Vec::clear);
        self.reads = 0;
    }
}

/// Appends `,"key":`.
fn push_key(line: &mut Vec<u8>, key: &str) {
    line.extend_from_slice(b",\"");
    line.extend_from_slice(key.as_bytes());
    line.extend_from_slice(b"\":");
}

/// Appends already escaped bytes in quotes.
fn push_quoted(line: &mut Vec<u8>, escaped: &[u8]) {
    line.push(b'"');
    line.extend_from_slice(escaped);
    line.push(b'"');
}

/// The fields of the writer's own problem report.
fn writer_error(message: String) -> Map<String, Value> {
    schema::Error {
        error: Some(message),
        ..Default::default()
    }
    .to_fields()
    .unwrap_or_default()
}

fn write_once(file: &mut File, data: &[u8]) -> io::Result<usize> {
    loop {
        match file.write(data) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Cuts the longest string field by at least `over` bytes (its JSON form shrinks by at least as
/// much) and notes its original length; replaces the largest non-string value when no string
/// can give enough. Fields named in `protected` are left alone.
fn shrink_largest_field(fields: &mut Map<String, Value>, over: usize, protected: &[String]) {
    let margin = over + 48;
    let open = |k: &String| !protected.contains(k);
    let largest_string = fields
        .iter()
        .filter(|(k, _)| open(k))
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.len())))
        .filter(|(k, _)| !k.ends_with("_truncated"))
        .max_by_key(|(_, len)| *len);
    if let Some((key, len)) = largest_string {
        if len > margin {
            let text = fields[&key].as_str().unwrap_or_default().to_string();
            let cut = cut_at_char_boundary(&text, len - margin).to_string();
            fields.insert(key.clone(), Value::String(cut));
            let marker = format!("{key}_truncated");
            if !fields.contains_key(&marker) {
                fields.insert(marker, Value::from(len));
            }
            return;
        }
    }
    let largest = fields
        .iter()
        .filter(|(k, _)| open(k))
        .map(|(k, v)| (k.clone(), v.to_string().len()))
        .max_by_key(|(_, len)| *len);
    if let Some((key, len)) = largest {
        fields.insert(key.clone(), Value::Null);
        fields.insert(format!("{key}_truncated"), Value::from(len));
    }
}
