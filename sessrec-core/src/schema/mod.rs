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

mod access;
mod audit;
mod channel;
mod define;
mod diagnostics;
mod display;
mod event;
mod forward;
mod header;
mod host;
mod io;
mod session;
mod sudo;
pub mod timing;
mod transfer;
mod view;

pub use define::field_name;
pub(crate) use define::{event_type, present_or_null};
pub use event::{known_types, Event, Line, UnknownEvent};

pub use access::{Access, KillRequest, Operator};
pub use audit::{audit_gap, connect, connect_end, exec, AuditGap, Connect, ConnectEnd, Exec};
pub use channel::{channel_start, command_part, ChannelEnd, ChannelStart, CommandPart};
pub use diagnostics::{user_notice, Error, Notice, Truncated, UserNotice};
pub use display::{bookkeeping_fields, headline_fields};
pub use forward::{forward_close, forward_open, ForwardClose, ForwardOpen};
pub use header::{key as header_key, Header, HEADER_KEYS, TYPE_KEY};
pub use host::Heartbeat;
pub use io::{io_fields, Frame, InputMasked, Io, MaskingSuspended, Resize, Stream};
pub use session::{AuthMethod, Certificate, ConnectionHint, Login, Logout, LogoutChannel};
pub use sudo::{sudo_end, sudo_start, SudoEnd, SudoStart, Suspend};
pub use timing::{PieceForm, Pieces, TimingError};
pub use transfer::{transfer_field, Transfer};
pub use view::{FrameView, HeadView, IoView};

/// Version of the line schema, the `v` of every line. Version 2 writes `io` lines in the
/// compact form (see [`timing`]); version 1 lines (frame lists) are read as before. A line of a newer version is read with these types
/// too, its new fields kept in `extra`.
pub const SCHEMA_VERSION: u32 = 2;

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

#[cfg(test)]
mod tests;
