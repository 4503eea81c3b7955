//! Bounds on values a user controls, so that no session fails because of them: longer values
//! are cut (at a character boundary) and `<field>_truncated` records the original length.
//! Bytes that are not UTF-8 are kept losslessly in `<field>_b64`.
#![forbid(unsafe_code)]

use base64::Engine;
use serde_json::{Map, Value};

pub const TERM_MAX: usize = 256;
/// Bound for command-like values that are context, not what runs. A channel's own command is
/// never cut: it is recorded whole (see [`crate::command`]).
pub const COMMAND_MAX: usize = 16 * 1024;
pub const PATH_MAX: usize = 4096;

/// Cuts `text` to at most `max` bytes without splitting a character.
pub fn cut_at_char_boundary(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Inserts `key` = `value` cut to `max` bytes, with `<key>_truncated` = original length when cut.
pub fn insert_bounded(fields: &mut Map<String, Value>, key: &str, value: &str, max: usize) {
    let cut = cut_at_char_boundary(value, max);
    fields.insert(key.into(), Value::String(cut.into()));
    if cut.len() < value.len() {
        fields.insert(format!("{key}_truncated"), Value::from(value.len()));
    }
}

/// Like [`insert_bounded`] for raw bytes (environment values, argv): valid UTF-8 is stored as
/// text; anything else as lossy text plus `<key>_b64` with the exact (bounded) bytes.
pub fn insert_bounded_bytes(fields: &mut Map<String, Value>, key: &str, value: &[u8], max: usize) {
    match std::str::from_utf8(value) {
        Ok(text) => insert_bounded(fields, key, text, max),
        Err(_) => {
            let kept = &value[..value.len().min(max)];
            fields.insert(
                key.into(),
                Value::String(String::from_utf8_lossy(kept).into_owned()),
            );
            fields.insert(
                format!("{key}_b64"),
                Value::String(base64::engine::general_purpose::STANDARD.encode(kept)),
            );
            if kept.len() < value.len() {
                fields.insert(format!("{key}_truncated"), Value::from(value.len()));
            }
        }
    }
}

/// Sets `slot` (the event field `name`) to `value` cut to `max` bytes; the markers of a cut
/// value go into the event's `extra` (as [`insert_bounded`] does for a map).
pub fn set_bounded(
    slot: &mut Option<String>,
    extra: &mut Map<String, Value>,
    name: &str,
    value: &str,
    max: usize,
) {
    let mut fields = Map::new();
    insert_bounded(&mut fields, name, value, max);
    *slot = fields
        .remove(name)
        .and_then(|v| v.as_str().map(str::to_string));
    extra.extend(fields);
}

/// Like [`set_bounded`] for raw bytes (as [`insert_bounded_bytes`]).
pub fn set_bounded_bytes(
    slot: &mut Option<String>,
    extra: &mut Map<String, Value>,
    name: &str,
    value: &[u8],
    max: usize,
) {
    let mut fields = Map::new();
    insert_bounded_bytes(&mut fields, name, value, max);
    *slot = fields
        .remove(name)
        .and_then(|v| v.as_str().map(str::to_string));
    extra.extend(fields);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_without_splitting_characters() {
        assert_eq!(cut_at_char_boundary("aé", 2), "a");
        assert_eq!(cut_at_char_boundary("abc", 5), "abc");
        let mut m = Map::new();
        insert_bounded(&mut m, "term", &"x".repeat(300), TERM_MAX);
        assert_eq!(m["term"].as_str().unwrap().len(), 256);
        assert_eq!(m["term_truncated"], 300);
        let mut m = Map::new();
        insert_bounded_bytes(&mut m, "command", b"ls \xff", COMMAND_MAX);
        assert_eq!(m["command_b64"], "bHMg/w==");
        assert!(!m.contains_key("command_truncated"));
    }
}
