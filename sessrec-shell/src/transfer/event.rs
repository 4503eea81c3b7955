//! One `transfer` record line: what happened to which file, as a typed [`Transfer`].
#![forbid(unsafe_code)]

use std::ops::{Deref, DerefMut};

use serde_json::{Map, Value};
use sessrec_core::schema::{transfer_field, EventBody, Transfer, HEX_SUFFIX, TRUNCATED_SUFFIX};

/// Longest path kept in a field (DESIGN §3 bounds); longer ones are cut with `<field>_truncated`.
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest server message or error line kept.
pub const MAX_TEXT_BYTES: usize = 1024;

/// The protocol a transfer channel speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Sftp,
    Scp,
    Rsync,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Sftp => "sftp",
            Protocol::Scp => "scp",
            Protocol::Rsync => "rsync",
        }
    }
}

/// Which way file data moves, seen from the client: upload = client to server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Upload,
    Download,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Upload => "upload",
            Direction::Download => "download",
        }
    }
}

/// A field that holds bytes from the wire (any bytes, any length): kept as text, cut to a
/// bound with `<field>_truncated`, and in hex as well (`<field>_hex`) when not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireField {
    Path,
    Target,
    Name,
    StatusText,
    IoErrorText,
    Extension,
    Reason,
    Command,
    /// The `home-directory` request's user name.
    RequestedUser,
}

impl WireField {
    fn name(self) -> &'static str {
        match self {
            WireField::Path => transfer_field::path,
            WireField::Target => transfer_field::target,
            WireField::Name => transfer_field::name,
            WireField::StatusText => transfer_field::status_text,
            WireField::IoErrorText => transfer_field::io_error_text,
            WireField::Extension => transfer_field::extension,
            WireField::Reason => transfer_field::reason,
            WireField::Command => transfer_field::command,
            WireField::RequestedUser => transfer_field::requested_user,
        }
    }
}

/// One completed (or abandoned) operation: a [`Transfer`] whose `protocol` and `op` are set.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferEvent {
    protocol: Protocol,
    op: &'static str,
    body: Transfer,
}

impl TransferEvent {
    pub fn new(protocol: Protocol, op: &'static str) -> Self {
        TransferEvent {
            protocol,
            op,
            body: Transfer {
                protocol: Some(protocol.as_str().to_owned()),
                op: Some(op.to_owned()),
                ..Transfer::default()
            },
        }
    }

    #[cfg(test)]
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    #[cfg(test)]
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// A field as the record holds it, if set.
    #[cfg(test)]
    pub fn get(&self, key: &str) -> Option<Value> {
        self.to_fields().remove(key)
    }

    /// The fields of the record line.
    pub fn to_fields(&self) -> Map<String, Value> {
        self.body.to_fields().unwrap_or_default()
    }

    /// The packet type of an sftp request that was unknown or could not be parsed.
    pub(crate) fn set_request_type(&mut self, kind: u8) -> &mut Self {
        self.body.request_type = Some(u32::from(kind));
        self
    }

    /// A path from the wire (any bytes).
    pub(crate) fn set_path(&mut self, field: WireField, raw: &[u8]) -> &mut Self {
        self.set_wire(field, &WireText::new(raw, MAX_PATH_BYTES))
    }

    /// A message from the peer (server status text, scp error line).
    pub(crate) fn set_text(&mut self, field: WireField, raw: &[u8]) -> &mut Self {
        self.set_wire(field, &WireText::new(raw, MAX_TEXT_BYTES))
    }

    /// Stored as text; bytes that are not UTF-8 are kept exactly in `<field>_hex` as well, so
    /// nothing is lost or guessed.
    pub(crate) fn set_wire(&mut self, field: WireField, text: &WireText) -> &mut Self {
        let kept = text.kept.as_slice();
        let cut = text.original_len > kept.len();
        if cut {
            self.marker(
                field,
                TRUNCATED_SUFFIX,
                Value::from(text.original_len as u64),
            );
        }
        let value = match std::str::from_utf8(kept) {
            Ok(text) => text.to_owned(),
            // The cut fell inside a multi-byte character: keep the whole characters.
            Err(e) if cut && e.error_len().is_none() => {
                std::str::from_utf8(&kept[..e.valid_up_to()])
                    .unwrap_or_default()
                    .to_owned()
            }
            Err(_) => {
                self.marker(field, HEX_SUFFIX, Value::from(hex(kept)));
                String::from_utf8_lossy(kept).into_owned()
            }
        };
        let slot = match field {
            WireField::Path => &mut self.body.path,
            WireField::Target => &mut self.body.target,
            WireField::Name => &mut self.body.name,
            WireField::StatusText => &mut self.body.status_text,
            WireField::IoErrorText => &mut self.body.io_error_text,
            WireField::Extension => &mut self.body.extension,
            WireField::Reason => &mut self.body.reason,
            WireField::Command => &mut self.body.command,
            WireField::RequestedUser => &mut self.body.requested_user,
        };
        *slot = Some(value);
        self
    }

    fn marker(&mut self, field: WireField, suffix: &str, value: Value) {
        self.body
            .extra
            .insert(format!("{}{suffix}", field.name()), value);
    }

    /// Bytes of wire text the event holds (paths, their hex, the user name, the extension),
    /// for memory budgets.
    pub(crate) fn text_bytes(&self) -> usize {
        let typed = [
            &self.body.path,
            &self.body.target,
            &self.body.extension,
            &self.body.requested_user,
        ]
        .into_iter()
        .flatten()
        .map(String::len);
        let hex = |field: WireField| format!("{}{HEX_SUFFIX}", field.name());
        let kept = [
            hex(WireField::Path),
            hex(WireField::Target),
            hex(WireField::RequestedUser),
        ]
        .into_iter()
        .filter_map(|k| {
            self.body
                .extra
                .get(&k)
                .and_then(Value::as_str)
                .map(str::len)
        });
        typed.chain(kept).sum()
    }
}

impl Deref for TransferEvent {
    type Target = Transfer;

    fn deref(&self) -> &Transfer {
        &self.body
    }
}

impl DerefMut for TransferEvent {
    fn deref_mut(&mut self) -> &mut Transfer {
        &mut self.body
    }
}

/// Bytes taken from the wire, cut to a bound, remembering how long they were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireText {
    kept: Vec<u8>,
    original_len: usize,
}

impl WireText {
    pub(crate) fn new(raw: &[u8], limit: usize) -> Self {
        WireText {
            kept: raw[..raw.len().min(limit)].to_vec(),
            original_len: raw.len(),
        }
    }

    pub(crate) fn path(raw: &[u8]) -> Self {
        Self::new(raw, MAX_PATH_BYTES)
    }

    /// Roughly what keeping it costs, for memory budgets.
    pub(crate) fn cost(&self) -> usize {
        self.kept.len() * 3 + 32
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// A permission mode as the usual four octal digits ("0644").
pub(crate) fn octal_mode(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_start_with_protocol_and_op() {
        let mut ev = TransferEvent::new(Protocol::Sftp, "remove");
        ev.set_path(WireField::Path, b"/tmp/a").status = Some("ok".into());
        assert_eq!(
            Value::Object(ev.to_fields()),
            json!({"protocol": "sftp", "op": "remove", "path": "/tmp/a", "status": "ok"})
        );
    }

    #[test]
    fn non_utf8_path_is_kept_exactly_in_hex() {
        let mut ev = TransferEvent::new(Protocol::Scp, "file");
        ev.set_path(WireField::Path, b"a\xffb");
        assert_eq!(ev.get("path"), Some(json!("a\u{fffd}b")));
        assert_eq!(ev.get("path_hex"), Some(json!("61ff62")));
    }

    #[test]
    fn long_path_is_cut_on_a_character_boundary_with_its_length() {
        let mut raw = vec![b'a'; MAX_PATH_BYTES - 1];
        raw.extend_from_slice("é".as_bytes());
        raw.extend_from_slice(b"tail");
        let mut ev = TransferEvent::new(Protocol::Sftp, "open");
        ev.set_path(WireField::Path, &raw);
        assert_eq!(ev.get("path_truncated"), Some(json!(MAX_PATH_BYTES + 5)));
        assert_eq!(ev.path.as_deref().map(str::len), Some(MAX_PATH_BYTES - 1));
        assert_eq!(ev.get("path_hex"), None);
    }

    #[test]
    fn modes_are_four_octal_digits() {
        assert_eq!(octal_mode(0o100644), "0644");
        assert_eq!(octal_mode(0o4755), "4755");
    }
}
