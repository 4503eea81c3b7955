//! The enum of every event of schema version 1, and a line typed as header plus event.
#![forbid(unsafe_code)]

use serde_json::Value;

use super::{
    Access, AuditGap, ChannelEnd, ChannelStart, CommandPart, Connect, ConnectEnd, Error, EventBody,
    Exec, Fields, ForwardClose, ForwardOpen, Header, Heartbeat, InputMasked, Io, Login, Logout,
    MaskingSuspended, Notice, Resize, SudoEnd, SudoStart, Suspend, Transfer, Truncated, UserNotice,
    BASE64_SUFFIX, HEADER_KEYS, HEX_SUFFIX, TRUNCATED_SUFFIX,
};

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
    UserNotice(UserNotice),
    Error(Error),
    Truncated(Truncated),
    Transfer(Transfer),
    ChannelEnd(ChannelEnd),
    SudoStart(SudoStart),
    SudoEnd(SudoEnd),
    Suspend(Suspend),
    Exec(Exec),
    Connect(Connect),
    ConnectEnd(ConnectEnd),
    AuditGap(AuditGap),
    ForwardOpen(ForwardOpen),
    ForwardClose(ForwardClose),
    Access(Access),
    Heartbeat(Heartbeat),
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
            UserNotice,
            Error,
            Truncated,
            Transfer,
            ChannelEnd,
            SudoStart,
            SudoEnd,
            Suspend,
            Exec,
            Connect,
            ConnectEnd,
            AuditGap,
            ForwardOpen,
            ForwardClose,
            Access,
            Heartbeat
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
            Event::Exec(e) => e.at.as_deref(),
            Event::Connect(e) => e.at.as_deref(),
            Event::ConnectEnd(e) => e.at.as_deref(),
            Event::AuditGap(e) => e.from.as_deref(),
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
            Event::UserNotice(e) => e.off,
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
