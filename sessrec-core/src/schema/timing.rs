//! The compact form of an `io` line (schema 2): the bytes of each stream in one field
//! (`i`, `o`, `e` as text, `i_b64`, `o_b64`, `e_b64` as base64) and a timing string `t` that
//! cuts them back into reads.
//!
//! `t` is a run of tokens, one per read: `[+DELTA|-DELTA]STREAM[FORM]COUNT`. DELTA is µs
//! after (`+`) or before (`-`: a character completed late keeps the time of its first byte)
//! the previous read (the first: the line's `off`), absent when 0; STREAM is `i`, `o` or `e`;
//! FORM is empty for text, `n` for text in which every `\n` stands for `\r\n` (a terminal's line
//! end, stored in half the escaped bytes), `b` for base64; COUNT is the piece's length in the
//! field's decoded text: UTF-8 bytes for text, base64 characters (a multiple of 4, each piece
//! padded on its own) for `b`. So one keystroke and its echo cost `+200094i1+61o1` and two
//! bytes of text, where a frame list spent some 66 bytes.
#![forbid(unsafe_code)]

use std::fmt;

use base64::Engine;

use super::Stream;

/// How a piece's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceForm {
    /// UTF-8 text, as read.
    Text,
    /// UTF-8 text with every `\r\n` of the read stored as `\n` (the read had no other `\n`).
    FoldedCrlf,
    /// Base64 of the raw bytes.
    Base64,
}

impl PieceForm {
    fn code(self) -> Option<u8> {
        match self {
            PieceForm::Text => None,
            PieceForm::FoldedCrlf => Some(b'n'),
            PieceForm::Base64 => Some(b'b'),
        }
    }
}

/// The longest token: `+` and a u64, a stream, a form and a count.
pub const TOKEN_MAX: usize = 1 + 20 + 1 + 1 + 20;

/// Appends the token of a read at `off_us` to `t`, whose last read was at `last_us`.
pub fn push_token(
    t: &mut Vec<u8>,
    last_us: u64,
    off_us: u64,
    stream: Stream,
    form: PieceForm,
    count: usize,
) {
    if off_us != last_us {
        t.push(if off_us > last_us { b'+' } else { b'-' });
        push_decimal(t, off_us.abs_diff(last_us));
    }
    t.extend_from_slice(stream.code().as_bytes());
    if let Some(c) = form.code() {
        t.push(c);
    }
    push_decimal(t, count as u64);
}

/// Digits of `v` in decimal.
pub fn decimal_len(v: u64) -> usize {
    v.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Appends `v` in decimal, without allocating.
fn push_decimal(t: &mut Vec<u8>, v: u64) {
    let mut digits = [0u8; 20];
    let mut n = v;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    t.extend_from_slice(&digits[i..]);
}

/// Whether `data` can be stored folded: it has at least two `\r\n` and no other `\n`.
pub fn foldable(data: &[u8]) -> bool {
    // Two counting passes the compiler vectorises, rather than one that branches per byte.
    let lf = data.iter().filter(|&&b| b == b'\n').count();
    let crlf = data.windows(2).filter(|w| w == b"\r\n").count();
    lf == crlf && crlf >= 2
}

/// Appends `data` with every `\r\n` as `\n` (see [`foldable`]).
pub fn fold_crlf(data: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\r' && data.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(data[i]);
        i += 1;
    }
}

/// Appends folded `text` with every `\n` back as `\r\n`.
pub fn unfold_crlf(text: &[u8], out: &mut Vec<u8>) {
    for &b in text {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
}

/// The fields of one compact `io` line, borrowed from the parsed line.
#[derive(Debug, Default, Clone, Copy)]
pub struct Pieces<'a> {
    pub off: u64,
    pub t: &'a str,
    /// `i`, `o`, `e`.
    pub text: [&'a str; 3],
    /// `i_b64`, `o_b64`, `e_b64`.
    pub b64: [&'a str; 3],
}

/// Why a timing string could not be followed to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimingError {
    /// Byte position in `t`.
    pub at: usize,
    pub problem: &'static str,
}

impl fmt::Display for TimingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timing string at byte {}: {}", self.at, self.problem)
    }
}

impl std::error::Error for TimingError {}

impl<'a> Pieces<'a> {
    /// Calls `read(offset_us, stream, bytes)` for every read, in order. Stops at the first
    /// token that is malformed or names bytes its field does not hold, with the reads before
    /// it delivered; bytes of a field that no token names are not delivered.
    pub fn for_each(&self, mut read: impl FnMut(u64, Stream, &[u8])) -> Result<(), TimingError> {
        let mut scratch = Vec::new();
        self.walk(|off, stream, form, piece| {
            match form {
                PieceForm::Text => read(off, stream, piece.as_bytes()),
                PieceForm::FoldedCrlf => {
                    scratch.clear();
                    unfold_crlf(piece.as_bytes(), &mut scratch);
                    read(off, stream, &scratch);
                }
                PieceForm::Base64 => {
                    scratch.clear();
                    base64::engine::general_purpose::STANDARD
                        .decode_vec(piece, &mut scratch)
                        .map_err(|_| "piece is not base64")?;
                    read(off, stream, &scratch);
                }
            }
            Ok(())
        })
        .map(|_| ())
    }

    /// Whether [`Pieces::for_each`] delivers every byte of the text fields `i`, `o` and `e`, each
    /// as it stands there (text or folded pieces only, no base64): then a stream's bytes are its
    /// field's text with `\r` put back before folded line ends, and nothing else. Follows the
    /// timing string without decoding a byte.
    pub fn delivers_text_fields_whole(&self) -> bool {
        let mut base64 = false;
        let walked = self.walk(|_, _, form, _| {
            base64 |= form == PieceForm::Base64;
            Ok(())
        });
        match walked {
            Ok(text_at) => {
                !base64
                    && self.b64.iter().all(|b| b.is_empty())
                    && text_at.iter().zip(self.text).all(|(&at, t)| at == t.len())
            }
            Err(_) => false,
        }
    }

    /// Follows the timing string, calling `piece(offset_us, stream, form, piece)` for every
    /// read with the piece of its field (text, or base64 still encoded), in order; stops at the
    /// first token that is malformed, names bytes its field does not hold, or that `piece`
    /// refuses. Returns how far each text field (`i`, `o`, `e`) was read.
    fn walk(
        &self,
        mut piece: impl FnMut(u64, Stream, PieceForm, &'a str) -> Result<(), &'static str>,
    ) -> Result<[usize; 3], TimingError> {
        let t = self.t.as_bytes();
        let mut pos = 0;
        let mut off = self.off;
        let mut text_at = [0usize; 3];
        let mut b64_at = [0usize; 3];
        let err = |at, problem| Err(TimingError { at, problem });
        while pos < t.len() {
            let start = pos;
            if t[pos] == b'+' || t[pos] == b'-' {
                let later = t[pos] == b'+';
                pos += 1;
                let Some((delta, next)) = number(t, pos) else {
                    return err(start, "no number after + or -");
                };
                pos = next;
                let moved = if later {
                    off.checked_add(delta)
                } else {
                    off.checked_sub(delta)
                };
                off = match moved {
                    Some(o) => o,
                    None => return err(start, "offset out of range"),
                };
            }
            let Some(stream) = t
                .get(pos)
                .and_then(|&c| Stream::from_code(std::str::from_utf8(&[c]).unwrap_or("")))
            else {
                return err(pos, "no stream (i, o or e)");
            };
            pos += 1;
            let form = match t.get(pos) {
                Some(b'n') => {
                    pos += 1;
                    PieceForm::FoldedCrlf
                }
                Some(b'b') => {
                    pos += 1;
                    PieceForm::Base64
                }
                _ => PieceForm::Text,
            };
            let Some((count, next)) = number(t, pos) else {
                return err(pos, "no byte count");
            };
            pos = next;
            let k = stream.index();
            let Ok(count) = usize::try_from(count) else {
                return err(start, "byte count too large");
            };
            let (field, at, problem) = match form {
                PieceForm::Text | PieceForm::FoldedCrlf => (
                    self.text[k],
                    &mut text_at[k],
                    "count runs past its text or splits a character",
                ),
                PieceForm::Base64 => (self.b64[k], &mut b64_at[k], "count runs past its base64"),
            };
            let end = at.saturating_add(count);
            let Some(p) = field.get(*at..end) else {
                return err(start, problem);
            };
            *at = end;
            if let Err(problem) = piece(off, stream, form, p) {
                return err(start, problem);
            }
        }
        Ok(text_at)
    }
}

/// A decimal number at `pos` (at most 20 digits) and the position after it.
fn number(t: &[u8], pos: usize) -> Option<(u64, usize)> {
    let digits = t[pos.min(t.len())..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits == 0 || digits > 20 {
        return None;
    }
    let text = std::str::from_utf8(&t[pos..pos + digits]).ok()?;
    Some((text.parse().ok()?, pos + digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Read = (u64, Stream, Vec<u8>);

    fn reads(p: &Pieces) -> (Vec<Read>, Result<(), TimingError>) {
        let mut out = Vec::new();
        let r = p.for_each(|o, s, d| out.push((o, s, d.to_vec())));
        (out, r)
    }

    #[test]
    fn tokens_cut_fields_into_reads() {
        let mut t = Vec::new();
        push_token(&mut t, 100, 100, Stream::Input, PieceForm::Text, 1);
        push_token(&mut t, 100, 161, Stream::Output, PieceForm::Text, 1);
        push_token(
            &mut t,
            161,
            200_255,
            Stream::Output,
            PieceForm::FoldedCrlf,
            4,
        );
        push_token(
            &mut t,
            200_255,
            200_258,
            Stream::Output,
            PieceForm::Base64,
            4,
        );
        push_token(&mut t, 200_258, 200_250, Stream::Input, PieceForm::Text, 1);
        let t = String::from_utf8(t).unwrap();
        assert_eq!(t, "i1+61o1+200094on4+3ob4-8i1");
        let p = Pieces {
            off: 100,
            t: &t,
            text: ["lx", "la\nb\n", ""],
            b64: ["", "//4=", ""],
        };
        let (got, r) = reads(&p);
        r.unwrap();
        assert_eq!(
            got,
            vec![
                (100, Stream::Input, b"l".to_vec()),
                (161, Stream::Output, b"l".to_vec()),
                (200_255, Stream::Output, b"a\r\nb\r\n".to_vec()),
                (200_258, Stream::Output, vec![0xff, 0xfe]),
                (200_250, Stream::Input, b"x".to_vec()),
            ]
        );
    }

    #[test]
    fn malformed_timing_stops_with_the_reads_before() {
        for (t, delivered) in [
            ("o1x", 1),
            ("o1+", 1),
            ("o9", 0),
            ("o1+99999999999999999999999o1", 1),
            ("o1+9o1", 1),
            ("ob3", 0),
            ("o", 0),
            ("é", 0),
        ] {
            let p = Pieces {
                off: u64::MAX - 5,
                t,
                text: ["", "ab", ""],
                b64: ["", "abc", ""],
            };
            let (got, r) = reads(&p);
            assert!(r.is_err(), "{t}");
            assert_eq!(got.len(), delivered, "{t}");
        }
        // A count that would split a character.
        let p = Pieces {
            t: "o1",
            text: ["", "é", ""],
            ..Default::default()
        };
        assert!(reads(&p).1.is_err());
    }

    #[test]
    fn whole_delivery_of_the_text_fields_is_told_without_decoding() {
        let whole = |t, text: [&str; 3], b64: [&str; 3]| {
            Pieces {
                off: 5,
                t,
                text,
                b64,
            }
            .delivers_text_fields_whole()
        };
        assert!(whole("i1+61o1+9on3", ["l", "la\nb", ""], ["", "", ""]));
        assert!(whole("", ["", "", ""], ["", "", ""]));
        // Bytes no token names, a malformed token, a split character, a base64 piece.
        assert!(!whole("i1o1", ["l", "la", ""], ["", "", ""]));
        assert!(!whole("i1o1x", ["l", "l", ""], ["", "", ""]));
        assert!(!whole("o1o1", ["", "é", ""], ["", "", ""]));
        assert!(!whole("-9o1", ["", "a", ""], ["", "", ""]));
        assert!(!whole("ob4", ["", "", ""], ["", "//4=", ""]));
        assert!(!whole("o1", ["", "a", ""], ["", "//4=", ""]));
    }

    #[test]
    fn folding_round_trips_and_is_chosen_only_when_exact() {
        assert!(foldable(b"a\r\nb\r\n"));
        assert!(!foldable(b"a\r\nb\n"));
        assert!(!foldable(b"\na\r\n"));
        assert!(!foldable(b"a\r\n"));
        let data = b"x\r\r\ny\r\n\r";
        let mut folded = Vec::new();
        fold_crlf(data, &mut folded);
        assert_eq!(folded, b"x\r\ny\n\r");
        let mut back = Vec::new();
        unfold_crlf(&folded, &mut back);
        assert_eq!(back, data);
    }
}
