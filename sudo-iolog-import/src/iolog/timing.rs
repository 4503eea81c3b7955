//! The `timing` file: one record per line, `EVENT DELAY ARGS`.
//!
//! EVENT is 0 stdin, 1 stdout, 2 stderr, 3 ttyin, 4 ttyout (ARGS = byte count), 5 window size
//! (ARGS = `lines cols`), 7 suspend (ARGS = signal name, e.g. `TSTP`, or a number). DELAY is the
//! time since the previous record in seconds, as a decimal. Event 6 only appears in files from
//! sudo 1.8.7, which numbered every event two too high; as sudo does, seeing it switches the rest
//! of the file to that numbering.
#![forbid(unsafe_code)]

use std::fmt;

use super::stream::StreamKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimingEvent {
    Io {
        delay_ns: u64,
        stream: StreamKind,
        len: u64,
    },
    Winsize {
        delay_ns: u64,
        lines: u32,
        cols: u32,
    },
    Suspend {
        delay_ns: u64,
        signal: String,
    },
}

impl TimingEvent {
    pub fn delay_ns(&self) -> u64 {
        match self {
            TimingEvent::Io { delay_ns, .. }
            | TimingEvent::Winsize { delay_ns, .. }
            | TimingEvent::Suspend { delay_ns, .. } => *delay_ns,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimingError {
    pub line_no: u64,
    pub problem: String,
}

impl fmt::Display for TimingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timing line {}: {}", self.line_no, self.problem)
    }
}

impl std::error::Error for TimingError {}

/// Longest timing line accepted; real ones are under 64 bytes.
pub const MAX_TIMING_LINE: usize = 1024;

/// Parses timing lines in order (the 1.8.7 numbering is a property of the whole file).
#[derive(Debug, Default)]
pub struct TimingParser {
    line_no: u64,
    sudo_1_8_7_numbering: bool,
}

impl TimingParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one line, without its trailing newline.
    pub fn parse_line(&mut self, line: &[u8]) -> Result<TimingEvent, TimingError> {
        self.line_no += 1;
        let line_no = self.line_no;
        let err = |problem: String| TimingError { line_no, problem };
        if line.len() > MAX_TIMING_LINE {
            return Err(err(format!("longer than {MAX_TIMING_LINE} bytes")));
        }
        let text = std::str::from_utf8(line).map_err(|_| err("not ASCII text".into()))?;
        let mut fields = text.split_ascii_whitespace();
        let event_text = fields.next().ok_or_else(|| err("empty line".into()))?;
        let mut event: u32 = event_text
            .parse()
            .map_err(|_| err(format!("event {event_text:?} is not a number")))?;
        if event == 6 {
            self.sudo_1_8_7_numbering = true;
        }
        if self.sudo_1_8_7_numbering {
            event = event
                .checked_sub(2)
                .ok_or_else(|| err(format!("event {event_text} in a sudo 1.8.7 timing file")))?;
        }
        let delay_text = fields
            .next()
            .ok_or_else(|| err("the delay is missing".into()))?;
        let delay_ns =
            parse_delay(delay_text).ok_or_else(|| err(format!("bad delay {delay_text:?}")))?;
        let number = |what: &str, field: Option<&str>| -> Result<u64, TimingError> {
            let f = field.ok_or_else(|| err(format!("the {what} is missing")))?;
            if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(format!("{what} {f:?} is not a number")));
            }
            f.parse()
                .map_err(|_| err(format!("{what} {f:?} is too large")))
        };
        let parsed = match event {
            0..=4 => TimingEvent::Io {
                delay_ns,
                stream: StreamKind::from_event(event).expect("0..=4 are streams"),
                len: number("byte count", fields.next())?,
            },
            5 => {
                let lines = number("line count", fields.next())?;
                let cols = number("column count", fields.next())?;
                TimingEvent::Winsize {
                    delay_ns,
                    lines: u32::try_from(lines).map_err(|_| err("line count too large".into()))?,
                    cols: u32::try_from(cols).map_err(|_| err("column count too large".into()))?,
                }
            }
            7 => {
                let signal = fields
                    .next()
                    .ok_or_else(|| err("the signal is missing".into()))?;
                if !signal
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-')
                {
                    return Err(err(format!("signal {signal:?} is not a signal name")));
                }
                TimingEvent::Suspend {
                    delay_ns,
                    signal: signal.to_string(),
                }
            }
            other => return Err(err(format!("unknown event {other}"))),
        };
        if let Some(extra) = fields.next() {
            return Err(err(format!("unexpected extra field {extra:?}")));
        }
        Ok(parsed)
    }
}

/// `SECONDS[.FRACTION]` → nanoseconds. sudo ≥ 1.8.29 writes `%lld.%09ld`; older versions wrote
/// a `%f` double, in some locales with a comma. Digits past nanoseconds are ignored.
pub fn parse_delay(text: &str) -> Option<u64> {
    let (whole, frac) = match text.find(['.', ',']) {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos: u64 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += u64::from(b - b'0') * 10u64.pow(8 - i as u32);
    }
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(text: &str) -> Vec<Result<TimingEvent, TimingError>> {
        let mut p = TimingParser::new();
        text.lines().map(|l| p.parse_line(l.as_bytes())).collect()
    }

    #[test]
    fn every_event_kind() {
        let got = parse_all(
            "0 0.000000001 3\n1 1.5 4\n2 0.25 5\n3 0.854095710 16\n4 0.003097014 40\n5 0.502199305 40 100\n7 0.000416655 TSTP\n7 0.7 CONT\n",
        );
        let got: Vec<_> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            got[0],
            TimingEvent::Io {
                delay_ns: 1,
                stream: StreamKind::Stdin,
                len: 3
            }
        );
        assert_eq!(got[1].delay_ns(), 1_500_000_000);
        assert!(matches!(
            got[2],
            TimingEvent::Io {
                stream: StreamKind::Stderr,
                len: 5,
                ..
            }
        ));
        assert!(matches!(
            got[3],
            TimingEvent::Io {
                stream: StreamKind::TtyIn,
                len: 16,
                delay_ns: 854_095_710
            }
        ));
        assert!(matches!(
            got[4],
            TimingEvent::Io {
                stream: StreamKind::TtyOut,
                len: 40,
                ..
            }
        ));
        assert_eq!(
            got[5],
            TimingEvent::Winsize {
                delay_ns: 502_199_305,
                lines: 40,
                cols: 100
            }
        );
        assert_eq!(
            got[6],
            TimingEvent::Suspend {
                delay_ns: 416_655,
                signal: "TSTP".into()
            }
        );
    }

    #[test]
    fn sudo_1_8_7_numbering() {
        let got = parse_all("6 0.1 10\n5 0.2 3\n");
        assert!(matches!(
            got[0],
            Ok(TimingEvent::Io {
                stream: StreamKind::TtyOut,
                len: 10,
                ..
            })
        ));
        assert!(matches!(
            got[1],
            Ok(TimingEvent::Io {
                stream: StreamKind::TtyIn,
                len: 3,
                ..
            })
        ));
        let got = parse_all("6 0.1 10\n1 0.2 3\n");
        assert!(got[1].is_err());
    }

    #[test]
    fn delays() {
        assert_eq!(parse_delay("0.003097014"), Some(3_097_014));
        assert_eq!(parse_delay("2"), Some(2_000_000_000));
        assert_eq!(parse_delay("0,5"), Some(500_000_000));
        assert_eq!(parse_delay("1.1234567899"), Some(1_123_456_789));
        assert_eq!(parse_delay(".5"), Some(500_000_000));
        assert_eq!(parse_delay("-1.0"), None);
        assert_eq!(parse_delay("1e3"), None);
        assert_eq!(parse_delay("."), None);
        assert_eq!(parse_delay("99999999999999999999"), None);
    }

    #[test]
    fn garbage_lines_are_errors_with_line_numbers() {
        let cases = [
            "",
            "x 0.1 3",
            "4",
            "4 0.1",
            "4 0.1 -3",
            "4 0.1 3 extra",
            "4 abc 3",
            "5 0.1 40",
            "5 0.1 40 99999999999",
            "7 0.1",
            "7 0.1 TS;TP",
            "8 0.1 3",
            "99999999999999 0.1 3",
            "4 0.1 99999999999999999999999",
        ];
        for case in cases {
            let mut p = TimingParser::new();
            p.parse_line(b"4 0.1 1").unwrap();
            let e = p.parse_line(case.as_bytes()).unwrap_err();
            assert_eq!(e.line_no, 2, "{case:?}");
        }
        let mut p = TimingParser::new();
        assert!(p.parse_line(&[b'4', b' ', 0xff]).is_err());
        assert!(p.parse_line(&[b'1'; 2000]).is_err());
    }
}
