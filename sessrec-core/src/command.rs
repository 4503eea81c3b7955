//! A channel's command, whole, however long: `channel.start` holds its first piece, its length
//! (`command_bytes`) and how many `command.part` lines follow (`command_parts`); those lines come
//! right after it, before any I/O, each in the hash chain and within `max_line_bytes`.
//!
//! A command that is valid UTF-8 is recorded as text (`command`, parts `u`), cut only at
//! character boundaries; any other command as base64 of its exact bytes (`command_b64`, parts
//! `b`), cut at multiples of 3 bytes. The writing side is
//! [`RecordWriter::event_with_long_field`](crate::writer::RecordWriter::event_with_long_field);
//! every reader gets the command through [`assemble`] or [`read_channel_command`].
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::io;
use std::path::Path;

use base64::Engine;
use serde_json::{Map, Value};

use crate::frames;
use crate::schema::{
    channel_start, command_part, ChannelStart, CommandPart, EventBody, BASE64_SUFFIX, BYTES_SUFFIX,
    PARTS_SUFFIX, TRUNCATED_SUFFIX, TYPE_KEY,
};

/// Longest command recorded (and therefore run): the kernel's limit for one argument or
/// environment string (MAX_ARG_STRLEN, 32 pages), which bounds both `<shell> -c CMD` and
/// ForceCommand's `SSH_ORIGINAL_COMMAND`. A longer one cannot reach the recorder through
/// execve; should it anyway, the channel is refused.
pub const COMMAND_RECORD_MAX: usize = 128 * 1024;

/// The `type` of a continuation line.
pub const PART_TYPE: &str = <CommandPart as EventBody>::TYPE;

/// How a long field's pieces are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Valid UTF-8, stored as JSON strings.
    Text,
    /// Anything else, stored as base64 of the exact bytes.
    Base64,
}

impl Form {
    pub fn of(value: &[u8]) -> Form {
        if std::str::from_utf8(value).is_ok() {
            Form::Text
        } else {
            Form::Base64
        }
    }

    /// The key of the value in the start line: `command` or `command_b64`.
    pub fn start_key(self, key: &str) -> String {
        match self {
            Form::Text => key.to_string(),
            Form::Base64 => format!("{key}{BASE64_SUFFIX}"),
        }
    }

    /// Puts an encoded piece into a part line: as `u` (text) or `b` (base64).
    pub fn set_piece(self, part: &mut CommandPart, piece: String) {
        let (slot, other) = match self {
            Form::Text => (&mut part.u, &mut part.b),
            Form::Base64 => (&mut part.b, &mut part.u),
        };
        *slot = Some(piece);
        *other = None;
    }

    /// The piece as it goes into a JSON string (text) or base64.
    pub fn encode(self, piece: &[u8]) -> String {
        match self {
            Form::Text => String::from_utf8_lossy(piece).into_owned(),
            Form::Base64 => base64::engine::general_purpose::STANDARD.encode(piece),
        }
    }
}

/// How many bytes of `value` fit in `room` bytes of encoded form (JSON-escaped text without
/// the quotes, or base64), never splitting a character or a base64 group.
pub fn piece_len(form: Form, value: &[u8], room: usize) -> usize {
    let mut scratch = Vec::with_capacity(room.min(value.len() * 6));
    match form {
        Form::Text => frames::append_escaped(&mut scratch, value, room),
        Form::Base64 => frames::append_base64(&mut scratch, value, room),
    }
}

/// Splits `value` into a first piece of at most `first_room` encoded bytes and further pieces of
/// at most `part_room` each. `None` when a part could not hold even one character.
pub fn split(form: Form, value: &[u8], first_room: usize, part_room: usize) -> Option<Vec<&[u8]>> {
    let first = piece_len(form, value, first_room);
    let mut pieces = vec![&value[..first]];
    let mut rest = &value[first..];
    while !rest.is_empty() {
        let n = piece_len(form, rest, part_room);
        if n == 0 {
            return None;
        }
        pieces.push(&rest[..n]);
        rest = &rest[n..];
    }
    Some(pieces)
}

/// How complete a recorded command is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completeness {
    Whole,
    /// Cut by a recorder from before whole commands were recorded (`command_truncated`).
    CutByOlderRecorder {
        original_bytes: u64,
    },
    /// `command.part` lines are missing or out of order (a damaged or cut-off record).
    PartsMissing {
        expected_bytes: u64,
    },
}

/// A channel's command as its record holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCommand {
    pub bytes: Vec<u8>,
    pub completeness: Completeness,
}

impl RecordedCommand {
    /// The command as text (invalid UTF-8 as U+FFFD); views escape it before display.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }

    pub fn is_whole(&self) -> bool {
        self.completeness == Completeness::Whole
    }

    /// A short human note when the command is not whole, e.g. for `show`.
    pub fn note(&self) -> Option<String> {
        match self.completeness {
            Completeness::Whole => None,
            Completeness::CutByOlderRecorder { original_bytes } => Some(format!(
                "CUT by the recorder: {} of {original_bytes} bytes recorded",
                self.bytes.len()
            )),
            Completeness::PartsMissing { expected_bytes } => Some(format!(
                "INCOMPLETE record: {} of {expected_bytes} bytes found",
                self.bytes.len()
            )),
        }
    }
}

fn decode_b64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// The command of a `channel.start` line, completed from the `command.part` lines that follow
/// it (pass the lines after the start line, in file order; only the announced number is read).
/// `None` when the line records no command.
pub fn assemble<'a>(
    start: &Map<String, Value>,
    following: impl IntoIterator<Item = &'a Map<String, Value>>,
) -> Option<RecordedCommand> {
    assemble_field(start, following, channel_start::command)
}

/// A long field `key` of any line written with
/// [`RecordWriter::event_with_long_field`](crate::writer::RecordWriter::event_with_long_field)
/// (`command` of `channel.start`, `cmdline` of `exec`), completed from the `command.part` lines
/// that follow it. `None` when the line does not hold the field.
pub fn assemble_field<'a>(
    start: &Map<String, Value>,
    following: impl IntoIterator<Item = &'a Map<String, Value>>,
    key: &str,
) -> Option<RecordedCommand> {
    let b64_key = format!("{key}{BASE64_SUFFIX}");
    let truncated_key = format!("{key}{TRUNCATED_SUFFIX}");
    let bytes_key = format!("{key}{BYTES_SUFFIX}");
    let parts_key = format!("{key}{PARTS_SUFFIX}");
    let text = start.get(key).and_then(Value::as_str);
    let b64 = start.get(&b64_key).and_then(Value::as_str);
    let (mut bytes, exact) = match (b64.and_then(decode_b64), text) {
        (Some(b), _) => (b, true),
        // A base64 form that does not decode (cut by an older recorder): the lossy text.
        (None, Some(t)) => (t.as_bytes().to_vec(), b64.is_none()),
        (None, None) => return None,
    };
    let cut = start.get(&truncated_key).and_then(Value::as_u64);
    let Some(expected_bytes) = start.get(&bytes_key).and_then(Value::as_u64) else {
        // Written before whole commands were recorded: the start line is all there is.
        let completeness = match cut {
            Some(original_bytes) => Completeness::CutByOlderRecorder { original_bytes },
            None if !exact => Completeness::CutByOlderRecorder {
                original_bytes: bytes.len() as u64,
            },
            None => Completeness::Whole,
        };
        return Some(RecordedCommand {
            bytes,
            completeness,
        });
    };
    let parts = start.get(&parts_key).and_then(Value::as_u64).unwrap_or(0);
    let mut found = 0u64;
    let mut intact = exact && cut.is_none();
    for line in following
        .into_iter()
        .take(parts.min(u32::MAX as u64) as usize)
    {
        let piece = (|| {
            if line.get(TYPE_KEY).and_then(Value::as_str) != Some(PART_TYPE)
                || line.get(command_part::field).and_then(Value::as_str) != Some(key)
                || line.get(command_part::part).and_then(Value::as_u64) != Some(found + 1)
                || line.get(command_part::offset).and_then(Value::as_u64)
                    != Some(bytes.len() as u64)
            {
                return None;
            }
            match (
                line.get(command_part::u).and_then(Value::as_str),
                line.get(command_part::b).and_then(Value::as_str),
            ) {
                (Some(u), None) => Some(u.as_bytes().to_vec()),
                (None, Some(b)) => decode_b64(b),
                _ => None,
            }
        })();
        match piece {
            Some(p) => {
                bytes.extend_from_slice(&p);
                found += 1;
            }
            None => {
                intact = false;
                break;
            }
        }
    }
    let whole = intact && found == parts && bytes.len() as u64 == expected_bytes;
    Some(RecordedCommand {
        bytes,
        completeness: if whole {
            Completeness::Whole
        } else {
            Completeness::PartsMissing { expected_bytes }
        },
    })
}

/// Reads the command of a channel record file: its first line and the parts after it.
/// `Ok(None)` when the file does not start with a `channel.start` that records a command.
pub fn read_channel_command(path: &Path) -> io::Result<Option<RecordedCommand>> {
    match read_first_with_parts(path, channel_start::command)? {
        Some((first, following))
            if first.get(TYPE_KEY).and_then(Value::as_str) == Some(ChannelStart::TYPE) =>
        {
            Ok(assemble(&first, &following))
        }
        _ => Ok(None),
    }
}

/// A record line and the `command.part` lines after it that carry its long field.
pub type LineWithParts = (Map<String, Value>, Vec<Map<String, Value>>);

/// The first line of a record file and the `command.part` lines after it that its long field
/// `key` announces (`<key>_parts`, at most that many). `Ok(None)` when the file has no
/// readable first line.
pub fn read_first_with_parts(path: &Path, key: &str) -> io::Result<Option<LineWithParts>> {
    let mut lines = crate::reader::lines(path)?;
    let Some(Ok(first)) = lines.next() else {
        return Ok(None);
    };
    let parts = first.u64(&format!("{key}{PARTS_SUFFIX}")).unwrap_or(0) as usize;
    let following = lines
        .take(parts)
        .map_while(Result::ok)
        .map(|l| l.value)
        .collect();
    Ok(Some((first.value, following)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded_len(form: Form, piece: &[u8]) -> usize {
        match form {
            Form::Text => serde_json::to_string(&form.encode(piece)).unwrap().len() - 2,
            Form::Base64 => form.encode(piece).len(),
        }
    }

    #[test]
    fn splits_text_at_character_boundaries_within_room() {
        let text = "aé€😀\"\\\x01\n".repeat(50);
        for room in [6usize, 7, 8, 9, 10, 13, 64] {
            let pieces = split(Form::Text, text.as_bytes(), room, room).unwrap();
            let joined: Vec<u8> = pieces.concat();
            assert_eq!(joined, text.as_bytes());
            for p in &pieces {
                assert!(
                    std::str::from_utf8(p).is_ok(),
                    "room {room}: split a character"
                );
                assert!(encoded_len(Form::Text, p) <= room, "room {room}");
            }
        }
        // Too small for a 4-byte character or a \u0001 escape: no split.
        assert!(split(Form::Text, "😀".as_bytes(), 0, 3).is_none());
        assert!(split(Form::Text, b"\x01", 0, 5).is_none());
        assert_eq!(split(Form::Text, b"", 10, 10).unwrap(), vec![b"" as &[u8]]);
    }

    #[test]
    fn splits_invalid_utf8_as_base64_groups() {
        let raw: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        assert_eq!(Form::of(&raw), Form::Base64);
        let pieces = split(Form::Base64, &raw, 10, 17).unwrap();
        assert_eq!(pieces[0].len(), 6);
        assert!(pieces[1..pieces.len() - 1].iter().all(|p| p.len() == 12));
        assert_eq!(pieces.concat(), raw);
        assert!(split(Form::Base64, &raw, 0, 3).is_none());
    }

    fn part(i: u64, offset: usize, key: &str, value: &str) -> Map<String, Value> {
        serde_json::from_value(serde_json::json!({
            "type": PART_TYPE, "field": "command", "part": i, "of": 2, "offset": offset, key: value,
        }))
        .unwrap()
    }

    fn map(v: Value) -> Map<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn assembles_parts_and_reports_gaps() {
        let start = map(serde_json::json!({
            "type": "channel.start", "command": "ab", "command_bytes": 7, "command_parts": 2,
        }));
        let parts = [part(1, 2, "u", "cdé"), part(2, 6, "b", "eA==")];
        let c = assemble(&start, &parts).unwrap();
        assert_eq!(c.bytes, "abcdéx".as_bytes());
        assert!(c.is_whole());
        let c = assemble(&start, &parts[..1]).unwrap();
        assert_eq!(
            c.completeness,
            Completeness::PartsMissing { expected_bytes: 7 }
        );
        assert!(c.note().unwrap().contains("6 of 7"));
        let swapped = [parts[1].clone(), parts[0].clone()];
        assert!(!assemble(&start, &swapped).unwrap().is_whole());
        // Extra lines after the announced parts are not read.
        let io = map(serde_json::json!({"type": "io"}));
        let more = [parts[0].clone(), parts[1].clone(), io];
        assert!(assemble(&start, &more).unwrap().is_whole());
    }

    #[test]
    fn reads_older_records() {
        let whole = map(serde_json::json!({"type": "channel.start", "command": "ls"}));
        assert_eq!(assemble(&whole, []).unwrap().bytes, b"ls");
        assert!(assemble(&whole, []).unwrap().is_whole());
        let cut = map(serde_json::json!({
            "type": "channel.start", "command": "   ", "command_truncated": 9014,
        }));
        let c = assemble(&cut, []).unwrap();
        assert_eq!(
            c.completeness,
            Completeness::CutByOlderRecorder {
                original_bytes: 9014
            }
        );
        assert!(c.note().unwrap().contains("3 of 9014"));
        let raw = map(serde_json::json!({
            "type": "channel.start", "command": "ls \u{fffd}", "command_b64": "bHMg/w==",
        }));
        assert_eq!(assemble(&raw, []).unwrap().bytes, b"ls \xff");
        let none = map(serde_json::json!({"type": "channel.start", "kind": "shell"}));
        assert!(assemble(&none, []).is_none());
    }
}
