//! The shortcut of `search --fixed-strings`: most channel files do not hold the string at all,
//! and telling so must cost far less than searching them.
//!
//! What is searched is not what is stored: a stream is the concatenation of its pieces over
//! every `io` line (a match may span reads and lines), its text is JSON-escaped, folded line ends
//! lose their `\r`, some pieces are base64, and the searched text has escape sequences and
//! control characters removed (`hel\e[1mlo` is found as `hello`). So "the string is not in the
//! file's bytes" alone proves nothing. [`Prefilter::may_match`] says `false` only when this
//! holds for every `io` line (parsed, as the search parses it):
//!
//! - the line's timing string delivers every byte of its text fields `i`, `o`, `e` and no base64
//!   piece (no frame list either), so each stream is exactly its fields' decoded text joined
//!   line after line, with `\r` put back before folded line ends;
//! - no field's decoded text contains the string;
//! - in no field does a proper prefix of the string end right before a control character
//!   (any byte below 0x20, or DEL) or at the field's end.
//!
//! Why that suffices, for a string with no control character, `"`, `\` or DEL: take a match in
//! a searched stream. Its bytes were kept by the filter, so each is a byte of some field's text.
//! Were they consecutive in one field, the field would contain the string. Otherwise let A be
//! the longest run of them that is (a prefix of the string, consecutive in one field); A is a
//! proper prefix. After A the field ends, or holds a byte c that (the field being delivered
//! whole) is the stream's next byte. c is not the match's next byte, so the filter removed it;
//! right after a kept byte the filter is in plain text, where it removes only control
//! characters and DEL. (`--raw` removes nothing, so there c cannot exist.) Either way A ends at
//! a field's end or before a control character: ruled out above.
//!
//! The channel's command (exec channels) is searched too: the first line must hold it as plain
//! text (no escape, no base64, no continuation lines), so that "the string is not in the file's
//! bytes" rules it out. Anything else, a compressed file's content included, is read as the
//! search reads it; a file that fails any of this is searched in full.
#![forbid(unsafe_code)]

use memchr::memmem;
use sessrec_core::schema::{channel_start, EventBody, Io, IoView, BASE64_SUFFIX, PARTS_SUFFIX};

/// A fixed string searched for in channel files, with what the shortcut needs of it.
pub struct Prefilter {
    needle: Vec<u8>,
    finder: memmem::Finder<'static>,
    /// Markers of content the shortcut does not follow.
    base64: memmem::Finder<'static>,
    parts: memmem::Finder<'static>,
}

impl Prefilter {
    /// The shortcut for searching `needle` as a fixed string in input and/or output (not in
    /// commands rebuilt from keystrokes, where editing keys remove bytes), when it is exact:
    /// case-sensitive, and a needle without control characters, `"`, `\` or DEL.
    pub fn new(needle: &str, ignore_case: bool) -> Option<Prefilter> {
        let bytes = needle.as_bytes();
        let plain = |b: u8| b >= 0x20 && b != 0x7f && b != b'"' && b != b'\\';
        if ignore_case || bytes.is_empty() || !bytes.iter().all(|&b| plain(b)) {
            return None;
        }
        Some(Prefilter {
            needle: bytes.to_vec(),
            finder: memmem::Finder::new(bytes).into_owned(),
            base64: memmem::Finder::new(format!("{BASE64_SUFFIX}\"").as_bytes()).into_owned(),
            parts: memmem::Finder::new(
                format!("\"{}{PARTS_SUFFIX}\"", channel_start::command).as_bytes(),
            )
            .into_owned(),
        })
    }

    /// Whether searching a channel file with this content (as the search reads it) may find
    /// the string; `false` only when it certainly finds nothing.
    pub fn may_match(&self, content: &[u8]) -> bool {
        if self.finder.find(content).is_some() {
            return true;
        }
        let mut lines = content.split_inclusive(|&b| b == b'\n');
        // The channel's command, from the first line.
        if let Some(first) = lines.next() {
            if memchr::memchr(b'\\', first).is_some()
                || self.base64.find(first).is_some()
                || self.parts.find(first).is_some()
            {
                return true;
            }
            if self.io_line_may_match(first) {
                return true;
            }
        }
        lines.any(|line| self.io_line_may_match(line))
    }

    /// [`Prefilter::may_match`] for one line: whether it is an `io` line the argument above
    /// does not cover.
    fn io_line_may_match(&self, line: &[u8]) -> bool {
        // The search reads complete lines only, and as I/O only those marked so near the start.
        if line.last() != Some(&b'\n') || !marked_as_io(line) {
            return false;
        }
        let Ok(view) = serde_json::from_slice::<IoView<'_>>(line) else {
            return false; // not read by the search either
        };
        if view.kind != Io::TYPE {
            return false;
        }
        if !view.frames.is_empty() {
            return true;
        }
        let delivered_whole = match view.pieces() {
            Some(pieces) => pieces.delivers_text_fields_whole(),
            None => return false, // a line without a timing string delivers no bytes
        };
        !delivered_whole
            || self.field_may_match(&view.i)
            || self.field_may_match(&view.o)
            || self.field_may_match(&view.e)
    }

    /// Whether a field's text holds the string, or a proper prefix of it before a control
    /// character or at its end. Every such prefix starts with the needle's first byte: only
    /// where that byte occurs is there anything to look at.
    fn field_may_match(&self, field: &str) -> bool {
        let text = field.as_bytes();
        let needle = &self.needle[..];
        let control = |b: u8| b < 0x20 || b == 0x7f;
        memchr::memchr_iter(needle[0], text).any(|at| {
            let rest = &text[at..];
            let same = rest.iter().zip(needle).take_while(|(a, b)| a == b).count();
            // The whole string (only possible in text that was JSON-escaped: the line's own
            // bytes were searched already), or a prefix at the end or before a control.
            same == needle.len() || same == rest.len() || control(rest[same])
        })
    }
}

/// The line the search reads as I/O: `"type":"io"` near its start (a cheap check before
/// parsing).
pub fn marked_as_io(line: &[u8]) -> bool {
    memmem::find(&line[..line.len().min(64)], b"\"type\":\"io\"").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_searches_take_the_shortcut() {
        assert!(Prefilter::new("secret", false).is_some());
        assert!(Prefilter::new("secret", true).is_none());
        for needle in ["", "a\"b", "a\\b", "a\tb", "a\x7fb", "\x1b[31m"] {
            assert!(Prefilter::new(needle, false).is_none(), "{needle:?}");
        }
    }

    #[test]
    fn a_recorded_channel_without_the_string_is_ruled_out() {
        use sessrec_core::testing::synth::{id_at, SynthSession};
        let t = sessrec_core::testing::TempDir::new("prefilter");
        let records = t.join("records");
        let id = id_at(1_764_000_000_000).unwrap();
        let mut s = SynthSession::login(&records, id, "u", "u@example.com", "192.0.2.1").unwrap();
        let mut ch = s.channel("shell", "pty", None).unwrap();
        let mut at = 100;
        ch.typed(&mut at, "$ ", "ls -l --color=always", "").unwrap();
        ch.output(
            at + 10,
            b"\x1b[01;34malpha bravo\x1b[0m 40876\r\ncharlie del",
        )
        .unwrap();
        ch.flush().unwrap();
        ch.output(at + 20, b"ta echo\r\n").unwrap();
        s.finished(ch, 0).unwrap();
        let dir = s.logout().unwrap();
        let content = std::fs::read(dir.join("channel-1.jsonl")).unwrap();
        let may = |needle: &str| Prefilter::new(needle, false).unwrap().may_match(&content);
        // Ruled out: the string is nowhere, its prefixes end nowhere a match could go on.
        assert!(!may("no-such-string"));
        assert!(!may("alpha charlie"));
        // Kept: in the bytes; across an escape sequence; across two record lines.
        assert!(may("alpha bravo"));
        assert!(may("bravo 40876"));
        assert!(may("delta echo"));
    }

    #[test]
    fn prefixes_are_found_before_controls_and_at_ends() {
        let p = Prefilter::new("hello", false).unwrap();
        let owned = |s: &str| s.to_string();
        assert!(p.field_may_match(&owned("xx hel\x1b[1m")));
        assert!(p.field_may_match(&owned("xx hel")));
        assert!(p.field_may_match(&owned("h")));
        assert!(p.field_may_match(&owned("a hello b")));
        assert!(!p.field_may_match(&owned("help\r\nhel p\x1b[0m")));
        assert!(!p.field_may_match(""));
    }
}
