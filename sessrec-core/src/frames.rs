//! Encoding of I/O bytes into JSON frame payloads: `u` (JSON-escaped UTF-8) or `b` (base64).
//! Both encoders fill at most a given number of output bytes and report how much input they
//! consumed, so a long read is spread over several lines without splitting a character.
#![forbid(unsafe_code)]

use base64::Engine;

/// Which payload encoding a chunk of bytes gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Base64,
}

/// `u` when the bytes are valid UTF-8 and escaping them costs no more than base64 would,
/// else `b` (invalid UTF-8, or mostly control bytes).
pub fn choose_encoding(valid_utf8: bool, data: &[u8]) -> Encoding {
    if !valid_utf8 {
        return Encoding::Base64;
    }
    let escaped: usize = data.iter().map(|&b| escaped_len(b)).sum();
    if escaped <= base64_len(data.len()) {
        Encoding::Utf8
    } else {
        Encoding::Base64
    }
}

pub fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

#[inline]
fn escaped_len(b: u8) -> usize {
    match b {
        b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
        0..=0x1f => 6,
        _ => 1,
    }
}

/// Appends the JSON string escape of (valid UTF-8) `data` to `out`, using at most `room` bytes.
/// Returns how many input bytes were consumed; never stops inside a character.
pub fn append_escaped(out: &mut Vec<u8>, data: &[u8], room: usize) -> usize {
    escape_into(out, data, room, false).0
}

/// The escaper of both forms: with `fold`, a `\r\n` is written as `\n`. Returns the input
/// bytes consumed and how many line ends were folded.
fn escape_into(out: &mut Vec<u8>, data: &[u8], room: usize, fold: bool) -> (usize, usize) {
    let start = out.len();
    let mut i = 0;
    let mut folds = 0;
    while i < data.len() {
        let used = out.len() - start;
        let b = data[i];
        if !needs_escape(b) {
            let mut j = i + 1;
            while j < data.len() && !needs_escape(data[j]) {
                j += 1;
            }
            let left = room - used;
            if j - i > left {
                let mut cut = i + left;
                while cut > i && (data[cut] & 0xc0) == 0x80 {
                    cut -= 1;
                }
                out.extend_from_slice(&data[i..cut]);
                return (cut, folds);
            }
            out.extend_from_slice(&data[i..j]);
            i = j;
        } else if fold && b == b'\r' && data.get(i + 1) == Some(&b'\n') {
            if used + 2 > room {
                break;
            }
            out.extend_from_slice(b"\\n");
            i += 2;
            folds += 1;
        } else {
            let n = escaped_len(b);
            if used + n > room {
                break;
            }
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                _ => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 15)]);
                }
            }
            i += 1;
        }
    }
    (i, folds)
}

/// Like [`append_escaped`], with every `\r\n` of `data` written as `\n` (the folded form of
/// [`crate::schema::timing`]; `data` holds no other `\n`). Returns the input bytes consumed
/// and the length of the folded text they make; never stops between `\r` and `\n`.
pub fn append_escaped_folding(out: &mut Vec<u8>, data: &[u8], room: usize) -> (usize, usize) {
    let (used, folds) = escape_into(out, data, room, true);
    (used, used - folds)
}

/// Appends base64 of a prefix of `data` to `out`, using at most `room` bytes; the prefix is a
/// multiple of 3 bytes unless it is all of `data`. Returns how many input bytes were consumed.
pub fn append_base64(out: &mut Vec<u8>, data: &[u8], room: usize) -> usize {
    let n = if base64_len(data.len()) <= room {
        data.len()
    } else {
        room / 4 * 3
    };
    if n == 0 {
        return 0;
    }
    let start = out.len();
    out.resize(start + base64_len(n), 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(&data[..n], &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
    n
}

/// Appends `text` as a JSON string literal (with quotes).
pub fn append_json_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    append_escaped(out, text.as_bytes(), usize::MAX);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_u(bytes: &[u8]) -> String {
        let mut quoted = vec![b'"'];
        quoted.extend_from_slice(bytes);
        quoted.push(b'"');
        serde_json::from_slice(&quoted).unwrap()
    }

    #[test]
    fn escapes_round_trip() {
        let text = "a\"b\\c\n\t\x1b[0m\u{7f}é€😀";
        let mut out = Vec::new();
        assert_eq!(
            append_escaped(&mut out, text.as_bytes(), usize::MAX),
            text.len()
        );
        assert_eq!(decode_u(&out), text);
    }

    #[test]
    fn limited_escape_never_splits_chars() {
        let text = "ab€€€";
        for room in 0..20 {
            let mut out = Vec::new();
            let n = append_escaped(&mut out, text.as_bytes(), room);
            assert!(out.len() <= room);
            assert!(text.is_char_boundary(n));
            assert_eq!(decode_u(&out), &text[..n]);
        }
        let mut out = Vec::new();
        assert_eq!(append_escaped(&mut out, b"\x01x", 5), 0);
        assert!(out.is_empty());
    }

    #[test]
    fn folding_escape_never_splits_a_line_end() {
        let data = b"ab\r\ncd\r\n\r\n";
        for room in 0..20 {
            let mut out = Vec::new();
            let (used, folded) = append_escaped_folding(&mut out, data, room);
            assert!(out.len() <= room);
            assert_ne!(data.get(used.wrapping_sub(1)), Some(&b'\r'), "room {room}");
            let mut back = Vec::new();
            crate::schema::timing::unfold_crlf(decode_u(&out).as_bytes(), &mut back);
            assert_eq!(back, &data[..used]);
            assert_eq!(decode_u(&out).len(), folded);
        }
    }

    #[test]
    fn base64_prefixes() {
        let data: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        let n = append_base64(&mut out, &data, 10);
        assert_eq!(n, 6);
        assert_eq!(out.len(), 8);
        let mut out = Vec::new();
        assert_eq!(append_base64(&mut out, &data[..4], 8), 4);
        assert_eq!(out, b"AAECAw==");
    }

    #[test]
    fn encoding_choice() {
        assert_eq!(choose_encoding(true, b"hello world\n"), Encoding::Utf8);
        assert_eq!(choose_encoding(false, b"hello"), Encoding::Base64);
        assert_eq!(choose_encoding(true, &[1u8; 30]), Encoding::Base64);
        assert_eq!(
            choose_encoding(true, b"\x1b[1;31mred\x1b[0m plain text here"),
            Encoding::Utf8
        );
    }
}
