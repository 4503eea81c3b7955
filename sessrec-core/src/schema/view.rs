//! Borrowed views of a line for readers that scan many lines and need a few fields (search
//! over every `io` line, `list` over the first and last line of every file): they skip the
//! rest without building it. Their field names are checked against the event types.
#![forbid(unsafe_code)]

use std::borrow::Cow;

use base64::Engine;
use serde::Deserialize;

use super::timing::{Pieces, TimingError};
use super::Stream;

/// A line read only for its I/O, borrowing from the line's text: for scans over every `io`
/// line (search), where building the typed event would cost more than the scan.
#[derive(Debug, Deserialize)]
pub struct IoView<'a> {
    /// The line's `type`: frames are meaningful only when it is `io`.
    #[serde(rename = "type", borrow, default)]
    pub kind: Cow<'a, str>,
    /// Schema 1.
    #[serde(default, borrow)]
    pub frames: Vec<FrameView<'a>>,
    #[serde(default)]
    pub echo_off: bool,
    /// Schema 2 (see [`super::timing`]).
    #[serde(default)]
    pub off: u64,
    #[serde(default, borrow)]
    pub t: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub i: Cow<'a, str>,
    #[serde(default, borrow)]
    pub o: Cow<'a, str>,
    #[serde(default, borrow)]
    pub e: Cow<'a, str>,
    #[serde(default, borrow)]
    pub i_b64: Cow<'a, str>,
    #[serde(default, borrow)]
    pub o_b64: Cow<'a, str>,
    #[serde(default, borrow)]
    pub e_b64: Cow<'a, str>,
}

impl IoView<'_> {
    /// Calls `read(offset_us, stream, bytes)` for every read of the line, in either form. A
    /// frame that cannot be decoded is skipped; a compact line is followed up to its first
    /// malformed token, which is returned.
    pub fn for_each_read(
        &self,
        mut read: impl FnMut(u64, Stream, &[u8]),
    ) -> Result<(), TimingError> {
        let mut scratch = Vec::new();
        for f in &self.frames {
            let Some(stream) = Stream::from_code(&f.s) else {
                continue;
            };
            match (&f.u, &f.b) {
                (Some(u), _) => read(f.off, stream, u.as_bytes()),
                (None, Some(b)) => {
                    scratch.clear();
                    if base64::engine::general_purpose::STANDARD
                        .decode_vec(b.as_bytes(), &mut scratch)
                        .is_ok()
                    {
                        read(f.off, stream, &scratch);
                    }
                }
                (None, None) => {}
            }
        }
        match self.pieces() {
            Some(p) => p.for_each(read),
            None => Ok(()),
        }
    }

    /// The compact form's fields (schema 2), when the line has a timing string.
    pub fn pieces(&self) -> Option<Pieces<'_>> {
        Some(Pieces {
            off: self.off,
            t: self.t.as_deref()?,
            text: [&self.i, &self.o, &self.e],
            b64: [&self.i_b64, &self.o_b64, &self.e_b64],
        })
    }
}

/// A [`Frame`] borrowing from the line's text.
#[derive(Debug, Deserialize)]
pub struct FrameView<'a> {
    pub off: u64,
    #[serde(borrow)]
    pub s: Cow<'a, str>,
    #[serde(default, borrow)]
    pub u: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub b: Option<Cow<'a, str>>,
}

/// What `list` shows from a file's first or last line: the header, the login's identity and
/// address, a channel's kind and command, and how it ended.
#[derive(Debug, Default, Deserialize)]
pub struct HeadView<'a> {
    /// The line's `type`.
    #[serde(rename = "type", borrow, default)]
    pub kind: Cow<'a, str>,
    #[serde(borrow, default)]
    pub time: Cow<'a, str>,
    #[serde(borrow, default)]
    pub host: Cow<'a, str>,
    #[serde(borrow, default)]
    pub user: Cow<'a, str>,
    #[serde(borrow, default)]
    pub actor: Cow<'a, str>,
    /// `login`.
    #[serde(borrow, default)]
    pub actor_source: Cow<'a, str>,
    /// `login`.
    #[serde(default)]
    pub verified: Option<bool>,
    /// `login`.
    #[serde(borrow, default)]
    pub src_ip: Cow<'a, str>,
    /// `login`.
    #[serde(default)]
    pub src_port: Option<u64>,
    /// `channel.start`: `shell`, `exec` or `transfer`.
    #[serde(rename = "kind", borrow, default)]
    pub channel_kind: Cow<'a, str>,
    /// `channel.start`: the command's first piece.
    #[serde(borrow, default)]
    pub command: Cow<'a, str>,
    /// `channel.end`: the exit status, or the signal that ended the command.
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub signal: Option<i64>,
}

#[cfg(test)]
mod tests {
    use serde::de::{self, Deserializer, Visitor};

    use super::*;
    use crate::schema::{ChannelEnd, ChannelStart, EventBody, Login, HEADER_KEYS};

    /// The field names a derived `Deserialize` asks for.
    fn names_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
        struct Names(Option<&'static [&'static str]>);
        #[derive(Debug)]
        struct Stop;
        impl std::fmt::Display for Stop {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("stop")
            }
        }
        impl std::error::Error for Stop {}
        impl de::Error for Stop {
            fn custom<M: std::fmt::Display>(_: M) -> Self {
                Stop
            }
        }
        impl<'de> Deserializer<'de> for &mut Names {
            type Error = Stop;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
                Err(Stop)
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Stop> {
                self.0 = Some(fields);
                Err(Stop)
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
                byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
                enum identifier ignored_any
            }
        }
        let mut names = Names(None);
        let _ = T::deserialize(&mut names);
        names.0.unwrap_or_default()
    }

    fn known(fields: &[&str], name: &str) -> bool {
        HEADER_KEYS.contains(&name) || fields.contains(&name)
    }

    #[test]
    fn the_views_name_fields_of_their_types() {
        assert_eq!(names_of::<HeadView>().len(), 13);
        assert_eq!(names_of::<FrameView>().len(), 4);
        for name in names_of::<HeadView>() {
            let typed = Login::FIELDS
                .iter()
                .chain(ChannelStart::FIELDS)
                .chain(ChannelEnd::FIELDS)
                .copied()
                .collect::<Vec<_>>();
            assert!(known(&typed, name), "HeadView.{name}");
        }
        for name in names_of::<IoView>() {
            assert!(known(crate::schema::Io::FIELDS, name), "IoView.{name}");
        }
        for name in names_of::<FrameView>() {
            assert!(["off", "s", "u", "b"].contains(name), "FrameView.{name}");
        }
    }
}

/// The header fields the hash-chain check reads from every line (`verify`), borrowed.
#[derive(Debug, Default, Deserialize)]
pub struct ChainView<'a> {
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub host: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub session: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub file: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub prev: Option<Cow<'a, str>>,
    #[serde(default)]
    pub seq: Option<u64>,
}
