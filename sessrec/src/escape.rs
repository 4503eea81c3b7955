//! Makes record-derived strings (paths, commands, user names, terminal types) safe to print.
//!
//! Every such string is attacker-controlled. Control characters are shown as visible
//! escapes so they can neither drive the operator's terminal nor hide text, and bidirectional
//! overrides are escaped so text cannot be reordered on screen ("Trojan Source").
#![forbid(unsafe_code)]

use std::fmt::Write;

/// Escapes C0/C1 controls, DEL, backslash and bidi/invisible formatting characters.
pub fn escape_control(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    out
}

/// For text an investigator reads as typed (commands, paths in `show`): backslashes stay as
/// they are, control characters become their Unicode control pictures (ESC `␛`, newline `␊`,
/// DEL `␡`), and C1 controls, bidirectional and invisible formatting characters, and literal
/// control pictures are written `⟨U+XXXX⟩`. Nothing can drive the terminal or reorder text,
/// and nothing typed looks like something else.
pub fn escape_visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c as u32 {
            n @ 0..=0x1f => out.push(char::from_u32(0x2400 + n).unwrap_or('?')),
            0x7f => out.push('\u{2421}'),
            0x2400..=0x2426 | 0x27e8 => {
                let _ = write!(out, "⟨U+{:04X}⟩", c as u32);
            }
            _ if needs_unicode_escape(c) => {
                let _ = write!(out, "⟨U+{:04X}⟩", c as u32);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Like [`escape_control`] for raw bytes: invalid UTF-8 bytes become `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, invalid_len) = match std::str::from_utf8(rest) {
            Ok(s) => (s, 0),
            Err(e) => {
                let (good, _) = rest.split_at(e.valid_up_to());
                let bad = e.error_len().unwrap_or(rest.len() - e.valid_up_to());
                (std::str::from_utf8(good).unwrap_or_default(), bad)
            }
        };
        for c in valid.chars() {
            push_escaped(&mut out, c);
        }
        let start = valid.len();
        for b in &rest[start..start + invalid_len] {
            let _ = write!(out, "\\x{b:02x}");
        }
        rest = &rest[start + invalid_len..];
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x1b' => out.push_str("\\e"),
        c if (c as u32) < 0x20 || c == '\x7f' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if needs_unicode_escape(c) => {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
        c => out.push(c),
    }
}

fn needs_unicode_escape(c: char) -> bool {
    matches!(c as u32,
        0x80..=0x9f            // C1 controls
        | 0x061c               // Arabic letter mark
        | 0x200b..=0x200f      // zero-width space/joiners, LRM, RLM
        | 0x2028 | 0x2029      // line/paragraph separators
        | 0x202a..=0x202e      // bidi embeddings and overrides
        | 0x2060..=0x2064      // word joiner, invisible operators
        | 0x2066..=0x2069      // bidi isolates
        | 0xfeff               // BOM / zero-width no-break space
        | 0xfff9..=0xfffb      // interlinear annotations
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_unchanged() {
        assert_eq!(
            escape_control("/home/alice/ünïcode file.txt"),
            "/home/alice/ünïcode file.txt"
        );
    }

    #[test]
    fn controls_escaped() {
        assert_eq!(
            escape_control("a\x1b]52;c;eA==\x07b"),
            "a\\e]52;c;eA==\\x07b"
        );
        assert_eq!(escape_control("x\ny\rz\t"), "x\\ny\\rz\\t");
        assert_eq!(escape_control("a\u{9b}6n"), "a\\u{009b}6n");
        assert_eq!(escape_control("del\x7f"), "del\\x7f");
        assert_eq!(escape_control("back\\slash"), "back\\\\slash");
    }

    #[test]
    fn bidi_overrides_escaped() {
        assert_eq!(escape_control("ab\u{202e}cd"), "ab\\u{202e}cd");
        assert_eq!(escape_control("\u{2066}x\u{2069}"), "\\u{2066}x\\u{2069}");
    }

    #[test]
    fn invalid_bytes_shown_as_hex() {
        assert_eq!(escape_bytes(b"ok\xff\xfe\x1b"), "ok\\xff\\xfe\\e");
        assert_eq!(escape_bytes("é".as_bytes()), "é");
    }

    #[test]
    fn result_has_no_control_characters() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let out = escape_control(&all);
        assert!(!out
            .chars()
            .any(|c| c.is_control() || needs_unicode_escape(c)));
    }
}
