//! When the pending I/O line must reach the file.
//!
//! Every byte read is written at most `flush_interval` after it arrived, with one exception on
//! a terminal: keystrokes that have not been submitted are not yet an action. While a pending
//! line holds only *typing* — small input reads without a line end or a signal key, and the
//! small echo and redraw output they cause — it may wait up to `typing_flush` after its first
//! read. A line is written with one `write(2)` and repeats the common header (about 265 bytes),
//! so a line per second of typing is about 1 MB an hour of headers alone; a line per command
//! line is a tenth of that.
//!
//! The first read that is not typing (Enter, a signal key, output larger than an echo, more
//! echo than the keys pending can explain, stderr) gives the line the ordinary deadline:
//! `flush_interval` after that read arrived. So a submitted command and every byte of command
//! output reach the file as soon as without the hold, and the command line shares its line
//! with the start of its output. Output can only pass as echo while keys are pending, in
//! echo-sized reads, at most [`ECHO_READS_PER_KEY`] per key and [`ECHO_PENDING_MAX`] bytes in
//! all: a program printing in tiny chunks cannot keep more than that out of the file for
//! longer than the ordinary deadline. Events (resize, masking, notices, the channel's end) are
//! written after the pending line anyway, and `max_line_bytes` still cuts lines.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use crate::record::Stream;

/// Largest input read still taken for typing: a key, an escape sequence, a few keys that
/// arrived together over a slow link. A larger read is pasted text.
pub const KEY_READ_MAX: usize = 64;
/// Input bytes that submit or act: CR and LF end a line, ^C ^D ^Z ^\ are the terminal's
/// interrupt, end-of-file, suspend and quit keys.
pub const SUBMIT_BYTES: &[u8] = b"\r\n\x03\x04\x1a\x1c";
/// Largest output read still taken for an echo (a character, a backspace, a redraw of part of
/// a line).
pub const ECHO_READ_MAX: usize = 256;
/// Most output reads held per input read pending (an editor may redraw in a few writes).
pub const ECHO_READS_PER_KEY: u32 = 4;
/// Most output bytes held as echo in one pending line.
pub const ECHO_PENDING_MAX: usize = 1024;

/// The deadline of the pending line, fed every read that went into it.
#[derive(Debug, Clone)]
pub struct FlushPolicy {
    flush_interval: Duration,
    /// `None`: no hold, every read is due `flush_interval` after it arrived.
    typing_flush: Option<Duration>,
    /// The pending line's first read.
    since: Option<Instant>,
    /// Its first read that is not typing.
    due_since: Option<Instant>,
    /// Input reads pending.
    keys: u32,
    /// Output reads and bytes pending while the line was still typing.
    echoes: u32,
    echo_bytes: usize,
    /// The last read was input: its echo may still come, in the next line.
    key_unechoed: bool,
}

impl FlushPolicy {
    /// A hold of `typing_flush` when it is longer than `flush_interval`; otherwise none.
    pub fn new(flush_interval: Duration, typing_flush: Duration) -> FlushPolicy {
        FlushPolicy {
            flush_interval,
            typing_flush: (typing_flush > flush_interval).then_some(typing_flush),
            since: None,
            due_since: None,
            keys: 0,
            echoes: 0,
            echo_bytes: 0,
            key_unechoed: false,
        }
    }

    /// A read of `data` on `stream` went into the pending line just now (`clock` tells when:
    /// asked only when the line's times change, not for every read of a busy channel).
    pub fn note(&mut self, stream: Stream, data: &[u8], clock: impl Fn() -> Instant) {
        let mut read_at = None;
        let mut now = || *read_at.get_or_insert_with(&clock);
        self.since.get_or_insert_with(&mut now);
        self.key_unechoed = stream == Stream::Input;
        if self.due_since.is_some() {
            return;
        }
        if self.typing_flush.is_none() || !self.is_typing(stream, data) {
            self.due_since = Some(now());
        }
    }

    /// Whether the read keeps the line typing only (and counts it).
    fn is_typing(&mut self, stream: Stream, data: &[u8]) -> bool {
        match stream {
            Stream::Input => {
                self.keys = self.keys.saturating_add(1);
                data.len() <= KEY_READ_MAX && !data.iter().any(|b| SUBMIT_BYTES.contains(b))
            }
            Stream::Output => {
                self.echoes = self.echoes.saturating_add(1);
                self.echo_bytes = self.echo_bytes.saturating_add(data.len());
                data.len() <= ECHO_READ_MAX
                    && self.echo_bytes <= ECHO_PENDING_MAX
                    && self.echoes <= self.keys.saturating_mul(ECHO_READS_PER_KEY)
            }
            Stream::Stderr => false,
        }
    }

    /// The pending line was written (or dropped): nothing is pending. A line written between a
    /// key and its echo (a deadline falls between them) lends the next line that key, so that
    /// the echo starting it still counts as one: else every line would start with output that
    /// no key explains and be due at once, a line a second while the typing goes on.
    pub fn written(&mut self) {
        self.since = None;
        self.due_since = None;
        self.keys = u32::from(std::mem::take(&mut self.key_unechoed));
        self.echoes = 0;
        self.echo_bytes = 0;
    }

    /// When the pending line must be written; `None` when nothing is pending.
    pub fn deadline(&self) -> Option<Instant> {
        let due = self.due_since.map(|t| t + self.flush_interval);
        let held = self
            .since
            .zip(self.typing_flush)
            .map(|(since, hold)| since + hold);
        match (due, held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The pending line is still only typing, held past the ordinary deadline.
    #[cfg(test)]
    fn holding_typing(&self) -> bool {
        self.since.is_some() && self.due_since.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);
    const TEN: Duration = Duration::from_secs(10);

    fn typed(policy: &mut FlushPolicy, t0: Instant, reads: &[(Stream, &[u8])]) {
        for (i, (stream, data)) in reads.iter().enumerate() {
            policy.note(*stream, data, || t0 + Duration::from_millis(200 * i as u64));
        }
    }

    #[test]
    fn keys_and_their_echo_wait_for_the_typing_deadline() {
        let t0 = Instant::now();
        let mut p = FlushPolicy::new(SECOND, TEN);
        assert_eq!(p.deadline(), None);
        typed(
            &mut p,
            t0,
            &[
                (Stream::Input, b"l"),
                (Stream::Output, b"l"),
                (Stream::Input, b"s"),
                (Stream::Output, b"s"),
                (Stream::Input, b"\x7f"),
                (Stream::Output, b"\x08 \x08"),
                (Stream::Input, b"\x1b[A"),
            ],
        );
        assert!(p.holding_typing());
        assert_eq!(p.deadline(), Some(t0 + TEN));
        p.written();
        assert_eq!(p.deadline(), None);
        assert!(!p.holding_typing());
    }

    #[test]
    fn enter_and_signal_keys_bring_the_ordinary_deadline_from_their_arrival() {
        for key in [
            &b"\r"[..],
            b"\n",
            b"\x03",
            b"\x04",
            b"\x1a",
            b"\x1c",
            b"ls -l\r",
        ] {
            let t0 = Instant::now();
            let mut p = FlushPolicy::new(SECOND, TEN);
            p.note(Stream::Input, b"x", || t0);
            let enter = t0 + Duration::from_secs(4);
            p.note(Stream::Input, key, || enter);
            assert_eq!(p.deadline(), Some(enter + SECOND), "{key:?}");
            // What follows cannot push it back.
            p.note(Stream::Input, b"y", || enter + SECOND / 2);
            assert_eq!(p.deadline(), Some(enter + SECOND), "{key:?}");
        }
    }

    #[test]
    fn output_that_is_not_an_echo_is_due_at_once() {
        let t0 = Instant::now();
        // No key pending: output is a program's, not an echo.
        let mut p = FlushPolicy::new(SECOND, TEN);
        p.note(Stream::Output, b"$ ", || t0);
        assert_eq!(p.deadline(), Some(t0 + SECOND));
        // A read larger than an echo.
        let mut p = FlushPolicy::new(SECOND, TEN);
        p.note(Stream::Input, b"q", || t0);
        p.note(Stream::Output, &[b'x'; ECHO_READ_MAX + 1], || t0 + SECOND);
        assert_eq!(p.deadline(), Some(t0 + 2 * SECOND));
        // stderr (a pipe channel) is never typing.
        let mut p = FlushPolicy::new(SECOND, TEN);
        p.note(Stream::Stderr, b"x", || t0);
        assert_eq!(p.deadline(), Some(t0 + SECOND));
        // Pasted text.
        let mut p = FlushPolicy::new(SECOND, TEN);
        p.note(Stream::Input, &[b'p'; KEY_READ_MAX + 1], || t0);
        assert_eq!(p.deadline(), Some(t0 + SECOND));
    }

    #[test]
    fn output_in_tiny_chunks_passes_as_echo_only_within_its_bounds() {
        let t0 = Instant::now();
        // One key cannot explain more than a few reads of output.
        let mut p = FlushPolicy::new(SECOND, TEN);
        p.note(Stream::Input, b"k", || t0);
        for i in 1..=ECHO_READS_PER_KEY {
            p.note(Stream::Output, b".", || {
                t0 + Duration::from_millis(i as u64)
            });
            assert!(p.holding_typing());
        }
        let late = t0 + SECOND;
        p.note(Stream::Output, b".", || late);
        assert_eq!(p.deadline(), Some(late + SECOND));
        // Nor can many keys hold more than ECHO_PENDING_MAX bytes of it.
        let mut p = FlushPolicy::new(SECOND, TEN);
        let mut held = 0;
        let mut at = t0;
        while p.holding_typing() || held == 0 {
            at += Duration::from_millis(10);
            p.note(Stream::Input, b"k", || at);
            p.note(Stream::Output, &[b'.'; 100], || at);
            held += 100;
        }
        assert!(held <= ECHO_PENDING_MAX + 100, "{held}");
        assert_eq!(p.deadline(), Some(at + SECOND));
    }

    #[test]
    fn the_echo_of_a_key_in_the_line_before_still_counts_as_echo() {
        let t0 = Instant::now();
        let mut p = FlushPolicy::new(SECOND, TEN);
        p.note(Stream::Input, b"\r", || t0);
        p.note(Stream::Input, b"e", || t0 + SECOND);
        p.written();
        let echo = t0 + SECOND + Duration::from_micros(30);
        p.note(Stream::Output, b"e", || echo);
        assert!(p.holding_typing());
        assert_eq!(p.deadline(), Some(echo + TEN));
        // Only one key is lent: a line written after an echo lends none.
        p.note(Stream::Output, b"x", || echo);
        p.written();
        p.note(Stream::Output, b"$ ", || echo + SECOND);
        assert_eq!(p.deadline(), Some(echo + 2 * SECOND));
    }

    #[test]
    fn no_hold_when_typing_flush_is_off_or_not_longer() {
        let t0 = Instant::now();
        for hold in [Duration::ZERO, SECOND] {
            let mut p = FlushPolicy::new(SECOND, hold);
            p.note(Stream::Input, b"l", || t0);
            assert!(!p.holding_typing());
            assert_eq!(p.deadline(), Some(t0 + SECOND));
        }
    }
}
