//! What every line repeats, so each line stands alone in a SIEM.
#![forbid(unsafe_code)]

use serde_json::{Map, Value};

/// The keys of the common line header.
pub mod key {
    pub const V: &str = "v";
    pub const TYPE: &str = "type";
    pub const SEQ: &str = "seq";
    pub const TIME: &str = "time";
    pub const HOST: &str = "host";
    pub const SESSION: &str = "session";
    pub const FILE: &str = "file";
    pub const USER: &str = "user";
    pub const ACTOR: &str = "actor";
    pub const PREV: &str = "prev";
}

/// The key of a line's event type.
pub const TYPE_KEY: &str = key::TYPE;

/// Keys of the common line header, in the order the writer puts them; event fields must not
/// reuse them.
pub const HEADER_KEYS: &[&str] = &[
    key::V,
    key::TYPE,
    key::SEQ,
    key::TIME,
    key::HOST,
    key::SESSION,
    key::FILE,
    key::USER,
    key::ACTOR,
    key::PREV,
];

/// The common fields of a line, as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// `v`: the schema version.
    pub v: Option<u64>,
    /// `type`.
    pub kind: Option<String>,
    pub seq: Option<u64>,
    /// RFC 3339 UTC with microseconds.
    pub time: Option<String>,
    pub host: Option<String>,
    pub session: Option<String>,
    pub file: Option<String>,
    pub user: Option<String>,
    pub actor: Option<String>,
    /// Hex SHA-256 of the previous line.
    pub prev: Option<String>,
}

impl Header {
    /// Takes the header keys out of a parsed line; what remains are the event's fields.
    pub fn take_from(map: &mut Map<String, Value>) -> Header {
        let mut text = |key: &str| match map.remove(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let kind = text(key::TYPE);
        let time = text(key::TIME);
        let host = text(key::HOST);
        let session = text(key::SESSION);
        let file = text(key::FILE);
        let user = text(key::USER);
        let actor = text(key::ACTOR);
        let prev = text(key::PREV);
        let v = map.remove(key::V).and_then(|v| v.as_u64());
        let seq = map.remove(key::SEQ).and_then(|v| v.as_u64());
        Header {
            v,
            kind,
            seq,
            time,
            host,
            session,
            file,
            user,
            actor,
            prev,
        }
    }
}
