//! One channel's record: `channel.start`, I/O (with masking results, the byte cap and its
//! output sampling), events, and `channel.end`; and what happens when the record cannot be
//! written (`on_error`).
#![forbid(unsafe_code)]

use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Instant;

use serde_json::{Map, Value};
use sessrec_core::budget::UsageLedger;
use sessrec_core::config::OnError;
use sessrec_core::record::Stream;
use sessrec_core::schema::{
    self, ChannelEnd, EventBody, Frame, InputMasked, Io, MaskingSuspended, Notice, Truncated,
};
use sessrec_core::sys::{syslog_authpriv, Level};
use sessrec_core::time::monotonic_micros;
use sessrec_core::writer::{Anchor, RecordWriter};

use crate::masking::InputPiece;

/// Where `sessrec kill --message` leaves the text for the recorder with that pid.
pub const KILL_MESSAGE_DIR: &str = "/run/sessrec/kill";
/// Longest administrator message read.
const ADMIN_MESSAGE_MAX: u64 = 16 * 1024;

/// Output kept per second once the byte cap is reached.
pub const SAMPLE_BYTES_PER_SECOND: usize = 1024;
/// How often the bytes written are added to the user's usage ledger (and the budget checked).
const BUDGET_REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// The user's daily byte budget, as this channel spends it.
struct Budget {
    ledger: UsageLedger,
    limit: u64,
    /// Record bytes already added to the ledger.
    reported: u64,
    last_report: Instant,
}

/// Largest input frame written by hand (echo-off lines), so each fits a line.
const HAND_FRAME_MAX: usize = 1024;

/// Why input is recorded in an `io` line of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    /// Typed with echo off, past the one withheld line.
    EchoOff,
    /// The part of a withheld line past `mask_line_max_bytes`.
    MaskLimit,
}

pub struct ChannelRecorder {
    writer: Option<RecordWriter>,
    name: String,
    on_error: OnError,
    failure: Option<String>,
    start_mono_us: u64,
    started: Instant,
    record_input: bool,
    cap: u64,
    counted: u64,
    capped: bool,
    sample_second: u64,
    sample_used: usize,
    skipped_in_second: u64,
    skipped_total: u64,
    echo_off_noted: bool,
    /// `/run/sessrec/kill`, opened while still root: `sessrec kill --message` leaves its text
    /// there, and the recorder (by then the `sessrec` user) reads it through this descriptor.
    kill_dir: Option<OwnedFd>,
    /// The message exactly as `sessrec kill` gave it, for `channel.end`.
    admin_message: Option<String>,
    /// The same, as the user is shown it (control characters as spaces).
    admin_shown: Option<String>,
    /// Who ended the channel with `sessrec kill`.
    ended_by: Option<schema::Operator>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Of `bytes_out`, moved by splice(2) without passing through the recorder.
    spliced_out: u64,
    budget: Option<Budget>,
    /// Bytes of files beside the record this channel wrote (a kept PCAP payload): they count
    /// against the user's daily budget like record bytes.
    side_file_bytes: u64,
}

impl ChannelRecorder {
    /// `name` is `<session>/<file>` for messages.
    pub fn new(
        writer: RecordWriter,
        name: String,
        on_error: OnError,
        record_input: bool,
        cap: u64,
    ) -> Self {
        ChannelRecorder {
            writer: Some(writer),
            name,
            on_error,
            failure: None,
            start_mono_us: monotonic_micros(),
            started: Instant::now(),
            record_input,
            cap,
            counted: 0,
            capped: false,
            sample_second: 0,
            sample_used: 0,
            skipped_in_second: 0,
            skipped_total: 0,
            echo_off_noted: false,
            kill_dir: None,
            admin_message: None,
            admin_shown: None,
            ended_by: None,
            bytes_in: 0,
            bytes_out: 0,
            spliced_out: 0,
            budget: None,
            side_file_bytes: 0,
        }
    }

    /// Counts this channel's record bytes against the user's daily budget of `limit` bytes.
    /// A budget already spent when the channel starts samples its output from the start (the
    /// caller says so in `channel.start`).
    pub fn spend_budget(&mut self, ledger: UsageLedger, limit: u64, already_spent: bool) {
        self.capped |= already_spent;
        let reported = self.writer.as_ref().map_or(0, |w| w.bytes_written());
        self.budget = Some(Budget {
            ledger,
            limit,
            reported,
            last_report: Instant::now(),
        });
    }

    /// Adds the bytes written since the last report to the ledger; once the day's total passes
    /// the budget, output is sampled from here on.
    fn report_budget(&mut self, now: Instant, force: bool) {
        let written = self.writer.as_ref().map_or(0, |w| w.bytes_written()) + self.side_file_bytes;
        let Some(b) = self.budget.as_mut() else {
            return;
        };
        if !force && now.duration_since(b.last_report) < BUDGET_REPORT_EVERY {
            return;
        }
        b.last_report = now;
        let delta = written.saturating_sub(b.reported);
        if delta > 0 && b.ledger.add(delta).is_ok() {
            b.reported = written;
        }
        let limit = b.limit;
        let over = b.ledger.total().is_ok_and(|total| total >= limit);
        if over && !self.capped {
            self.start_sampling(
                "user_budget",
                limit,
                "the user's daily record budget is spent: input is still recorded in full, output is sampled (first KiB of each second)",
            );
        }
    }

    /// Counts `n` bytes written to a file beside the record (a kept PCAP payload) against the
    /// user's daily budget.
    pub fn count_side_file(&mut self, n: u64) {
        self.side_file_bytes += n;
    }

    /// Output is sampled (past `max_channel_bytes` or the user's daily budget): payload kept
    /// beside the record stops too.
    pub fn is_sampling(&self) -> bool {
        self.capped
    }

    /// µs on CLOCK_MONOTONIC since the channel started.
    pub fn offset_us(&self) -> u64 {
        monotonic_micros().saturating_sub(self.start_mono_us)
    }

    /// Opens the directory `sessrec kill --message` writes to (creating it 0755 root). Called
    /// while the recorder is still root; later reads go through the descriptor.
    pub fn watch_admin_messages(&mut self) {
        let dir = Path::new(KILL_MESSAGE_DIR);
        let _ = std::fs::create_dir(dir);
        self.kill_dir = sessrec_core::sys::open_dir_at(None, dir).ok();
    }

    /// The administrator's message for this recorder, as the user is shown it (control
    /// characters become spaces), if `sessrec kill` left one. The file is a
    /// [`schema::KillRequest`] (from older versions: the bare text); the exact message and the
    /// operator who ended the channel are kept for `channel.end`.
    pub fn take_admin_message(&mut self) -> Option<&str> {
        let dir = self.kill_dir.as_ref()?;
        let name = std::process::id().to_string();
        let file = sessrec_core::sys::open_read_at(dir.as_fd(), &name).ok()?;
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let mut raw = Vec::new();
        file.take(ADMIN_MESSAGE_MAX).read_to_end(&mut raw).ok()?;
        let (message, operator) = match serde_json::from_slice::<schema::KillRequest>(&raw) {
            Ok(request) => (request.message, request.operator),
            Err(_) => (Some(String::from_utf8_lossy(&raw).into_owned()), None),
        };
        self.ended_by = operator;
        let message = message?;
        let shown: String = message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.admin_message = Some(message);
        self.admin_shown = Some(shown.trim().to_string());
        self.admin_shown.as_deref()
    }

    pub fn start_mono_us(&self) -> u64 {
        self.start_mono_us
    }

    /// Why recording failed, if it did.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Recording failed and the policy is to stop the channel.
    pub fn must_stop(&self) -> bool {
        self.failure.is_some() && self.on_error == OnError::Deny
    }

    fn check(&mut self, result: io::Result<()>) {
        let problem = match result {
            Err(e) => Some(format!("writing the record failed: {e}")),
            Ok(()) if self.writer.as_ref().is_some_and(|w| w.space_low()) => Some(
                "the record's filesystem is full (the disk reserve could not be renewed)"
                    .to_string(),
            ),
            Ok(()) => None,
        };
        if let Some(problem) = problem {
            self.fail(problem);
        }
    }

    fn fail(&mut self, problem: String) {
        if self.failure.is_some() {
            return;
        }
        match self.on_error {
            OnError::Deny => {
                syslog_authpriv(
                    Level::Error,
                    &format!("record {}: {problem}; ending the channel", self.name),
                );
            }
            OnError::Allow => {
                syslog_authpriv(
                    Level::Alert,
                    &format!(
                        "record {}: {problem}; on_error = allow: the channel continues UNRECORDED",
                        self.name
                    ),
                );
                if let Some(mut w) = self.writer.take() {
                    let _ = w.write(&schema::Error {
                        message: Some(problem.clone()),
                        continues_unrecorded: Some(true),
                        ..Default::default()
                    });
                    let _ = w.close();
                }
            }
        }
        self.failure = Some(problem);
    }

    /// Writes one event line.
    pub fn event(&mut self, kind: &str, fields: Map<String, Value>) {
        if let Some(w) = self.writer.as_mut() {
            let r = w.event(kind, fields);
            self.check(r);
        }
    }

    /// Writes one typed event line.
    pub fn write<E: EventBody>(&mut self, event: &E) {
        if let Some(w) = self.writer.as_mut() {
            let r = w.write(event);
            self.check(r);
        }
    }

    /// Writes one typed event line carrying `value` whole as `key`, with continuation lines
    /// when it does not fit one line (the command in `channel.start`).
    pub fn write_with_long_field<E: EventBody>(&mut self, event: &E, key: &str, value: &[u8]) {
        if let Some(w) = self.writer.as_mut() {
            let r = w.write_with_long_field(event, key, value);
            self.check(r);
        }
    }

    fn count(&mut self, n: usize) {
        self.counted = self.counted.saturating_add(n as u64);
        if !self.capped && self.counted >= self.cap {
            self.start_sampling(
                "max_channel_bytes",
                self.cap,
                "byte cap reached: input is still recorded in full, output is sampled (first KiB of each second)",
            );
        }
    }

    /// From here on, output is sampled; the record and syslog say why.
    fn start_sampling(&mut self, reason: &str, limit: u64, message: &str) {
        self.capped = true;
        let off = self.offset_us();
        self.write(&Truncated {
            off: Some(off),
            reason: Some(reason.into()),
            limit: Some(limit),
            message: Some(message.into()),
            ..Default::default()
        });
        syslog_authpriv(
            Level::Warning,
            &format!(
                "record {}: channel passed {reason} ({limit} bytes); output is now sampled",
                self.name
            ),
        );
    }

    /// Records what the user typed, after masking.
    pub fn input(&mut self, pieces: &[InputPiece<'_>]) {
        let off = self.offset_us();
        for piece in pieces {
            match *piece {
                InputPiece::Clear(data) => {
                    self.bytes_in += data.len() as u64;
                    if self.record_input {
                        self.count(data.len());
                        if let Some(w) = self.writer.as_mut() {
                            let r = w.io(Stream::Input, off, data);
                            self.check(r);
                        }
                    }
                }
                InputPiece::EchoOff(data) => {
                    self.bytes_in += data.len() as u64;
                    if self.record_input {
                        self.count(data.len());
                        self.echo_off_input(off, data);
                    }
                }
                InputPiece::Masked(n, reason) => {
                    self.bytes_in += n as u64;
                    if self.record_input {
                        self.write(&InputMasked {
                            off: Some(off),
                            bytes: Some(n as u64),
                            reason: Some(reason.to_string()),
                            ..Default::default()
                        });
                    }
                }
                InputPiece::PastMaskLimit(data) => {
                    self.bytes_in += data.len() as u64;
                    if self.record_input {
                        self.count(data.len());
                        self.marked_input(off, data, Marker::MaskLimit);
                    }
                }
                InputPiece::Suspended { armings, window } => {
                    if self.record_input {
                        self.masking_suspended(off, armings, window);
                    }
                }
            }
        }
    }

    /// Masking re-armed too often: from here on every typed byte is recorded. Worth an
    /// alert, since a real user rarely types that many passwords in a row.
    fn masking_suspended(&mut self, off: u64, armings: usize, window: std::time::Duration) {
        let reason = format!(
            "{armings} password prompts within {} s (more than recorder.mask_arm_limit = {}): \
             input masking is suspended for the rest of this channel; everything typed is recorded",
            window.as_secs(),
            armings.saturating_sub(1)
        );
        self.write(&MaskingSuspended {
            off: Some(off),
            armings: Some(armings as u64),
            window_s: Some(window.as_secs()),
            reason: Some(reason.clone()),
            ..Default::default()
        });
        syslog_authpriv(Level::Warning, &format!("record {}: {reason}", self.name));
    }

    /// Input typed with echo off past the one masked line: recorded in an `io` line marked
    /// `echo_off`, with a notice the first time.
    fn echo_off_input(&mut self, off: u64, data: &[u8]) {
        if !self.echo_off_noted {
            self.echo_off_noted = true;
            self.write(&Notice {
                off: Some(off),
                echo_off: Some(true),
                message: Some("input typed while terminal echo is off is recorded (a line is withheld only right after a switch into password mode or a fresh password prompt)".into()),
                ..Default::default()
            });
        }
        self.marked_input(off, data, Marker::EchoOff);
    }

    /// Input recorded in `io` lines of its own that carry the marker (and `echo_off`, which
    /// tells the viewers it was not shown on screen).
    fn marked_input(&mut self, off: u64, data: &[u8], marker: Marker) {
        for chunk in data.chunks(HAND_FRAME_MAX) {
            let mut frame = Frame {
                off: Some(off),
                s: Some(Stream::Input.code().into()),
                ..Default::default()
            };
            match std::str::from_utf8(chunk) {
                Ok(text) => frame.u = Some(text.into()),
                Err(_) => frame.b = Some(base64_encode(chunk)),
            }
            self.write(&Io {
                frames: Some(vec![frame]),
                echo_off: Some(true),
                mask_limit: (marker == Marker::MaskLimit).then_some(true),
                ..Default::default()
            });
        }
    }

    /// Records output (or stderr); past the cap only the first KiB of each second.
    pub fn output(&mut self, stream: Stream, data: &[u8]) {
        self.bytes_out += data.len() as u64;
        let off = self.offset_us();
        let mut keep = data;
        if self.capped {
            let second = off / 1_000_000;
            if second != self.sample_second {
                self.close_sample_second();
                self.sample_second = second;
                self.sample_used = 0;
            }
            let room = SAMPLE_BYTES_PER_SECOND.saturating_sub(self.sample_used);
            let mut n = room.min(data.len());
            // Keep whole characters where possible (the writer never splits them anyway).
            while n > 0 && n < data.len() && (data[n] & 0xC0) == 0x80 {
                n -= 1;
            }
            keep = &data[..n];
            self.sample_used += n;
            self.skipped_in_second += (data.len() - n) as u64;
        }
        if keep.is_empty() {
            return;
        }
        self.count(keep.len());
        if let Some(w) = self.writer.as_mut() {
            let r = w.io(stream, off, keep);
            self.check(r);
        }
    }

    fn close_sample_second(&mut self) {
        if self.skipped_in_second == 0 {
            return;
        }
        let skipped = std::mem::take(&mut self.skipped_in_second);
        self.skipped_total += skipped;
        self.write(&Truncated {
            off: Some(self.offset_us()),
            second: Some(self.sample_second),
            skipped_bytes: Some(skipped),
            ..Default::default()
        });
    }

    /// Payload bytes that crossed the channel without being recorded (transfers).
    pub fn count_unrecorded(&mut self, input: usize, output: usize) {
        self.bytes_in += input as u64;
        self.bytes_out += output as u64;
    }

    /// Transfer payload that went to the client by splice(2), unseen and unrecorded.
    pub fn count_spliced(&mut self, output: usize) {
        self.bytes_out += output as u64;
        self.spliced_out += output as u64;
    }

    /// When the writer must be called again (pending I/O flush).
    pub fn deadline(&self) -> Option<Instant> {
        self.writer.as_ref().and_then(|w| w.flush_deadline())
    }

    /// Flushes pending I/O when due and sends the periodic anchor.
    pub fn tick(&mut self, now: Instant) {
        let due = self
            .writer
            .as_ref()
            .and_then(|w| w.flush_deadline())
            .is_some_and(|d| d <= now);
        if due {
            if let Some(w) = self.writer.as_mut() {
                let r = w.flush();
                self.check(r);
            }
        }
        if let Some(anchor) = self.writer.as_mut().and_then(|w| w.poll_anchor(now)) {
            syslog_authpriv(Level::Info, &anchor.to_string());
        }
        self.report_budget(now, false);
    }

    /// Writes `channel.end` (with the recorder's own usage) and closes the file. Returns the
    /// final anchor, also sent to syslog.
    pub fn finish(mut self, mut end: ChannelEnd) -> Option<Anchor> {
        self.close_sample_second();
        let (max_rss_kib, cpu_us) = crate::sys::self_usage();
        end.bytes_in = Some(self.bytes_in);
        end.bytes_out = Some(self.bytes_out);
        end.duration_us = Some(self.started.elapsed().as_micros() as u64);
        end.recorder_max_rss_kib = Some(own_peak_rss_kib().unwrap_or(max_rss_kib));
        end.admin_message = self.admin_message.clone();
        end.ended_by = self.ended_by.clone();
        end.recorder_cpu_us = Some(cpu_us);
        if self.spliced_out > 0 {
            end.spliced_bytes_out = Some(self.spliced_out);
        }
        if self.capped {
            end.truncated_output_bytes = Some(self.skipped_total);
        }
        if let Some(problem) = &self.failure {
            let error = schema::Error {
                message: Some(problem.clone()),
                ..Default::default()
            };
            if let Some(w) = self.writer.as_mut() {
                let _ = w.write(&error);
            }
        }
        let mut writer = self.writer.take()?;
        let end = writer.write(&end);
        // What closing writes is within a line or two of this; count it all.
        let written = writer.bytes_written() + self.side_file_bytes;
        if let Some(b) = self.budget.as_mut() {
            let _ = b.ledger.add(written.saturating_sub(b.reported));
        }
        if end.is_err() {
            syslog_authpriv(
                Level::Error,
                &format!(
                    "record {}: the final channel.end line could not be written",
                    self.name
                ),
            );
        }
        match writer.close() {
            Ok(anchor) => {
                syslog_authpriv(Level::Info, &anchor.to_string());
                Some(anchor)
            }
            Err(e) => {
                syslog_authpriv(
                    Level::Error,
                    &format!("record {}: closing failed: {e}", self.name),
                );
                None
            }
        }
    }
}

fn base64_encode(data: &[u8]) -> String {
    let mut out = Vec::new();
    sessrec_core::frames::append_base64(&mut out, data, usize::MAX);
    String::from_utf8(out).unwrap_or_default()
}

/// Peak resident set of this program image (VmHWM). getrusage's ru_maxrss also counts the
/// image before exec (the caller's), which says nothing about the recorder.
fn own_peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A recorder on a fresh file, for the unit tests of the parts that record.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use sessrec_core::id::SessionId;
    use sessrec_core::reader;
    use sessrec_core::record::FileContext;
    use sessrec_core::writer::WriterOptions;

    /// A recorder writing `channel-1.jsonl` in `dir`, with output capped at `cap` bytes.
    pub fn recorder(dir: &std::path::Path, cap: u64) -> (ChannelRecorder, std::path::PathBuf) {
        recorder_with(dir, cap, WriterOptions::default())
    }

    /// [`recorder`] with the writer's options given.
    pub fn recorder_with(
        dir: &std::path::Path,
        cap: u64,
        options: WriterOptions,
    ) -> (ChannelRecorder, std::path::PathBuf) {
        let path = dir.join("channel-1.jsonl");
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .unwrap();
        let ctx = FileContext {
            host: "test".into(),
            session: SessionId::new().unwrap(),
            file: "channel-1.jsonl".into(),
            user: "u".into(),
            actor: "u".into(),
        };
        let writer = RecordWriter::new(file, ctx, options).unwrap();
        (
            ChannelRecorder::new(writer, "test".into(), OnError::Deny, true, cap),
            path,
        )
    }

    /// The lines of a record whose chain verifies.
    pub fn verified_lines(path: &std::path::Path) -> Vec<reader::Line> {
        let report = reader::verify_file(path).unwrap();
        assert!(report.ok, "{:?}", report.problems);
        reader::read_file(path)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{recorder, verified_lines};
    use super::*;
    use serde_json::json;
    use sessrec_core::reader;
    use sessrec_core::testing::TempDir;

    #[test]
    fn past_the_cap_output_is_sampled_and_input_kept() {
        let dir = TempDir::new("rec-cap");
        let (mut rec, path) = recorder(dir.path(), 65_536);
        let chunk = vec![b'x'; 4096];
        for _ in 0..64 {
            rec.output(Stream::Output, &chunk);
        }
        rec.input(&[InputPiece::Clear(b"typed after cap\r")]);
        rec.finish(ChannelEnd::default());
        let lines = verified_lines(&path);
        let mut output = 0;
        let mut input = Vec::new();
        for line in &lines {
            for frame in reader::decode_frames(line) {
                match frame.stream {
                    Stream::Output => output += frame.data.len(),
                    _ => input.extend(frame.data),
                }
            }
        }
        // The cap, plus at most a KiB per second of sampling (the test takes well under 5 s).
        assert!(
            (65_536..65_536 + 4096 + 5 * 1024).contains(&output),
            "{output}"
        );
        assert_eq!(input, b"typed after cap\r");
        assert!(lines
            .iter()
            .any(|l| l.kind() == "truncated" && l.str("reason") == Some("max_channel_bytes")));
        let end = lines.last().unwrap();
        assert_eq!(end.kind(), "channel.end");
        assert_eq!(end.u64("bytes_out"), Some(64 * 4096));
        assert!(end.u64("truncated_output_bytes").unwrap() > 190_000);
    }

    #[test]
    fn masked_and_echo_off_input_are_recorded_as_such() {
        let dir = TempDir::new("rec-mask");
        let (mut rec, path) = recorder(dir.path(), 1 << 30);
        rec.input(&[
            InputPiece::Masked(7, "password_mode"),
            InputPiece::EchoOff(b"ls -l\n"),
        ]);
        rec.finish(ChannelEnd::default());
        let lines: Vec<_> = reader::read_file(&path)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let masked = lines.iter().find(|l| l.kind() == "input.masked").unwrap();
        assert_eq!(masked.u64("bytes"), Some(7));
        assert_eq!(masked.str("reason"), Some("password_mode"));
        let echo_off = lines
            .iter()
            .find(|l| l.kind() == "io" && l.value.get("echo_off") == Some(&json!(true)))
            .unwrap();
        assert_eq!(reader::decode_frames(echo_off)[0].data, b"ls -l\n");
        assert!(lines.iter().any(|l| l.kind() == "notice"));
        assert_eq!(lines.last().unwrap().u64("bytes_in"), Some(13));
    }

    #[test]
    fn mask_limit_and_suspension_are_recorded() {
        let dir = TempDir::new("rec-mask-limit");
        let (mut rec, path) = recorder(dir.path(), 1 << 30);
        rec.input(&[
            InputPiece::Masked(256, "password_mode"),
            InputPiece::PastMaskLimit(b"; id >/tmp/x\r"),
            InputPiece::Suspended {
                armings: 6,
                window: std::time::Duration::from_secs(60),
            },
            InputPiece::EchoOff(b"echo clear\r"),
        ]);
        rec.finish(ChannelEnd::default());
        let lines = verified_lines(&path);
        let past = lines
            .iter()
            .find(|l| l.value.get("mask_limit") == Some(&json!(true)))
            .unwrap();
        assert_eq!(past.kind(), "io");
        assert_eq!(past.value["echo_off"], json!(true));
        assert_eq!(reader::decode_frames(past)[0].data, b"; id >/tmp/x\r");
        let suspended = lines
            .iter()
            .find(|l| l.kind() == "masking_suspended")
            .unwrap();
        assert_eq!(suspended.u64("armings"), Some(6));
        assert_eq!(suspended.u64("window_s"), Some(60));
        assert!(suspended.str("reason").unwrap().contains("suspended"));
        let typed: Vec<u8> = lines
            .iter()
            .flat_map(reader::decode_frames)
            .flat_map(|f| f.data)
            .collect();
        assert_eq!(typed, b"; id >/tmp/x\recho clear\r");
        assert_eq!(lines.last().unwrap().u64("bytes_in"), Some(256 + 13 + 11));
    }
}
