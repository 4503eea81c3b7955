//! The record schema: one serde type per event, written and read only through these types.
//!
//! Modelled on asciinema's `asciicast` module: a line is a [`Header`] (what every line
//! repeats) and an [`Event`] (what happened), parsed and encoded side by side. Every field name
//! of the format is spelled here and nowhere else; man/sessrec-record.5 documents the same
//! names, and a test checks the two against each other.
//!
//! Forward compatibility: a field this version does not know (a newer writer's) is kept in the
//! event's `extra` map, and an event type it does not know is kept whole as
//! [`Event::Unknown`]; readers show both instead of dropping them. A known type whose fields do
//! not have the expected JSON types is kept the same way, with the problem.
//!
//! Every event field is optional: records from older writers lack newer fields, and a reader
//! must still show them. Writers fill what they know.
#![forbid(unsafe_code)]

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

mod channel;
mod diagnostics;
mod header;
mod io;
mod session;
mod sudo;
mod transfer;

pub use channel::{channel_start, command_part, ChannelEnd, ChannelStart, CommandPart};
pub use diagnostics::{Error, Notice, Truncated};
pub use header::{key as header_key, Header, HEADER_KEYS, TYPE_KEY};
pub use io::{io_fields, Frame, FrameView, InputMasked, Io, IoView, MaskingSuspended, Resize};
pub use session::{AuthMethod, Certificate, ConnectionHint, Login, Logout, LogoutChannel};
pub use sudo::{sudo_end, sudo_start, SudoEnd, SudoStart, Suspend};
pub use transfer::Transfer;

/// Version of the line schema, the `v` of every line. The types below are version 1; a line
/// of a newer version is read with them too, its new fields kept in `extra`.
pub const SCHEMA_VERSION: u32 = 1;

/// Suffix of a field that holds the original length of a value cut to fit (`term_truncated`).
pub const TRUNCATED_SUFFIX: &str = "_truncated";
/// Suffix of a field that holds a value's exact bytes in base64 when they are not UTF-8.
pub const BASE64_SUFFIX: &str = "_b64";
/// Suffix of a field that holds a wire value's exact bytes in hex when they are not UTF-8.
pub const HEX_SUFFIX: &str = "_hex";
/// Suffix of the field that holds a long value's length in bytes (`command_bytes`).
pub const BYTES_SUFFIX: &str = "_bytes";
/// Suffix of the field that counts a long value's continuation lines (`command_parts`).
pub const PARTS_SUFFIX: &str = "_parts";

/// The fields of an event line other than the [`Header`].
pub type Fields = Map<String, Value>;

/// One event type: its `type` and the names of the fields it knows.
pub trait EventBody: Serialize + DeserializeOwned {
    /// The line's `type`.
    const TYPE: &'static str;
    /// Every field this type knows, as spelled in the record.
    const FIELDS: &'static [&'static str];

    /// The event's fields, ready for the writer.
    fn to_fields(&self) -> Result<Fields, serde_json::Error> {
        match serde_json::to_value(self)? {
            Value::Object(map) => Ok(map),
            _ => Ok(Fields::new()),
        }
    }

    /// Reads the event from a line's fields (header keys are ignored when present).
    fn from_fields(mut fields: Fields) -> Result<Self, serde_json::Error> {
        fields.retain(|k, _| !HEADER_KEYS.contains(&k.as_str()));
        serde_json::from_value(Value::Object(fields))
    }
}

/// A field name as written in the record: a raw identifier (`r#match`) without its `r#`.
pub const fn field_name(ident: &'static str) -> &'static str {
    match ident.as_bytes() {
        [b'r', b'#', rest @ ..] => match std::str::from_utf8(rest) {
            Ok(name) => name,
            Err(_) => ident,
        },
        _ => ident,
    }
}

/// Reads a field that may be `null`: absent is `None`, `null` is `Some(None)`, so that a
/// written `null` reads back as written.
pub(crate) fn present_or_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}

/// Declares one event type: a struct of optional fields plus `extra`, and its [`EventBody`];
/// with `names in <module>`, also a module of its field names.
macro_rules! event_type {
    (
        $(#[$meta:meta])*
        pub struct $name:ident = $type_name:literal, names in $names:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $crate::schema::event_type! {
            $(#[$meta])*
            pub struct $name = $type_name {
                $( $(#[$fmeta])* $field : $ty ),*
            }
        }

        #[doc = concat!("The field names of `", $type_name, "`, for the markers a cut value")]
        #[doc = " gets beside it (`<field>_truncated`, `<field>_b64`)."]
        #[allow(non_upper_case_globals)]
        pub mod $names {
            $(pub const $field: &str = $crate::schema::field_name(stringify!($field));)*
        }
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident = $type_name:literal {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
            /// Fields this version does not know, kept as written.
            #[serde(flatten)]
            pub extra: serde_json::Map<String, serde_json::Value>,
        }

        impl $crate::schema::EventBody for $name {
            const TYPE: &'static str = $type_name;
            const FIELDS: &'static [&'static str] =
                &[$($crate::schema::field_name(stringify!($field))),*];
        }
    };
}
pub(crate) use event_type;

/// An event of a type this version does not know, or whose fields did not parse: kept whole.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownEvent {
    /// Its `type`.
    pub kind: String,
    pub fields: Fields,
    /// Why a known type was not read as such (`None` for an unknown type).
    pub problem: Option<String>,
}

/// Every event of schema version 1.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Login(Login),
    Logout(Logout),
    ChannelStart(ChannelStart),
    CommandPart(CommandPart),
    Io(Io),
    Resize(Resize),
    InputMasked(InputMasked),
    MaskingSuspended(MaskingSuspended),
    Notice(Notice),
    Error(Error),
    Truncated(Truncated),
    Transfer(Transfer),
    ChannelEnd(ChannelEnd),
    SudoStart(SudoStart),
    SudoEnd(SudoEnd),
    Suspend(Suspend),
    Unknown(UnknownEvent),
}

/// Applies `$action` to every known event type (with `$ty` bound to its type).
macro_rules! for_each_event_type {
    ($action:ident) => {
        $action!(
            Login,
            Logout,
            ChannelStart,
            CommandPart,
            Io,
            Resize,
            InputMasked,
            MaskingSuspended,
            Notice,
            Error,
            Truncated,
            Transfer,
            ChannelEnd,
            SudoStart,
            SudoEnd,
            Suspend
        )
    };
}

/// Every known event type with its fields: for the man page check and readers that list them.
pub fn known_types() -> &'static [(&'static str, &'static [&'static str])] {
    macro_rules! table {
        ($($variant:ident),*) => {
            &[$(($variant::TYPE, $variant::FIELDS)),*]
        };
    }
    for_each_event_type!(table)
}

impl Event {
    /// Types `fields` (the line without its header) as the event `kind`.
    pub fn from_fields(kind: &str, mut fields: Fields) -> Event {
        fields.retain(|k, _| !HEADER_KEYS.contains(&k.as_str()));
        let value = Value::Object(fields);
        macro_rules! parse {
            ($($variant:ident),*) => {
                match kind {
                    $($variant::TYPE => {
                        match <$variant as serde::Deserialize>::deserialize(&value) {
                            Ok(e) => return Event::$variant(e),
                            Err(e) => Some(e.to_string()),
                        }
                    })*
                    _ => None,
                }
            };
        }
        let problem = for_each_event_type!(parse);
        let fields = match value {
            Value::Object(fields) => fields,
            _ => Fields::new(),
        };
        Event::Unknown(UnknownEvent {
            kind: kind.to_string(),
            fields,
            problem,
        })
    }

    /// The line's `type`.
    pub fn kind(&self) -> &str {
        macro_rules! kind {
            ($($variant:ident),*) => {
                match self {
                    $(Event::$variant(_) => $variant::TYPE,)*
                    Event::Unknown(u) => &u.kind,
                }
            };
        }
        for_each_event_type!(kind)
    }

    /// The event's fields as the record holds them.
    pub fn to_fields(&self) -> Fields {
        macro_rules! fields {
            ($($variant:ident),*) => {
                match self {
                    $(Event::$variant(e) => e.to_fields().unwrap_or_default(),)*
                    Event::Unknown(u) => u.fields.clone(),
                }
            };
        }
        for_each_event_type!(fields)
    }

    /// Fields of a known type that this version does not know (a newer writer's), without
    /// the markers of known fields (`<field>_truncated`, `_b64`, `_hex`). Empty for an unknown
    /// type, which is shown whole.
    pub fn newer_fields(&self) -> Vec<(&str, &Value)> {
        if let Event::Unknown(_) = self {
            return Vec::new();
        }
        let known = known_types()
            .iter()
            .find(|(kind, _)| *kind == self.kind())
            .map_or(&[][..], |(_, fields)| *fields);
        let is_marker = |key: &str| {
            [TRUNCATED_SUFFIX, BASE64_SUFFIX, HEX_SUFFIX]
                .iter()
                .any(|suffix| key.strip_suffix(suffix).is_some_and(|f| known.contains(&f)))
        };
        self.extra()
            .iter()
            .filter(|(key, _)| !is_marker(key))
            .map(|(key, value)| (key.as_str(), value))
            .collect()
    }

    /// When the event happened, for events whose writer was not the witness (the sudo importer
    /// writes long after the fact): their `at` (RFC 3339).
    pub fn at(&self) -> Option<&str> {
        match self {
            Event::Resize(e) => e.at.as_deref(),
            Event::InputMasked(e) => e.at.as_deref(),
            Event::SudoStart(e) => e.at.as_deref(),
            Event::SudoEnd(e) => e.at.as_deref(),
            Event::Suspend(e) => e.at.as_deref(),
            _ => None,
        }
    }

    /// The event's offset on its file's I/O clock (`off`), for events that have one.
    pub fn off(&self) -> Option<u64> {
        match self {
            Event::Resize(e) => e.off,
            Event::InputMasked(e) => e.off,
            Event::MaskingSuspended(e) => e.off,
            Event::Notice(e) => e.off,
            Event::Truncated(e) => e.off,
            Event::SudoEnd(e) => e.off,
            Event::Suspend(e) => e.off,
            _ => None,
        }
    }

    /// Fields the reader's version does not know (all of them for an unknown type).
    pub fn extra(&self) -> &Fields {
        macro_rules! extra {
            ($($variant:ident),*) => {
                match self {
                    $(Event::$variant(e) => &e.extra,)*
                    Event::Unknown(u) => &u.fields,
                }
            };
        }
        for_each_event_type!(extra)
    }
}

/// One record line: what every line repeats, and its event.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub header: Header,
    pub event: Event,
}

impl Line {
    /// Types a parsed JSON line. Never fails: what does not fit the types is kept as
    /// [`Event::Unknown`].
    pub fn from_map(mut map: Fields) -> Line {
        let header = Header::take_from(&mut map);
        let kind = header.kind.clone().unwrap_or_default();
        Line {
            header,
            event: Event::from_fields(&kind, map),
        }
    }

    /// Types one line of JSON text; `None` when it is not a JSON object.
    pub fn parse(text: &[u8]) -> Option<Line> {
        match serde_json::from_slice::<Value>(text) {
            Ok(Value::Object(map)) => Some(Line::from_map(map)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
