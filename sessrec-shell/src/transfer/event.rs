//! One `transfer` record line: what happened to which file, as JSON fields.
#![forbid(unsafe_code)]

use serde_json::{Map, Value};

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

/// One completed (or abandoned) operation. `to_fields` gives the record fields.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferEvent {
    protocol: Protocol,
    op: &'static str,
    fields: Map<String, Value>,
}

impl TransferEvent {
    pub fn new(protocol: Protocol, op: &'static str) -> Self {
        TransferEvent {
            protocol,
            op,
            fields: Map::new(),
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

    /// A field other than `protocol` and `op`, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    /// The fields of the record line: `protocol`, `op`, then the operation's own fields.
    pub fn to_fields(&self) -> Map<String, Value> {
        let mut out = Map::with_capacity(self.fields.len() + 2);
        out.insert("protocol".into(), Value::from(self.protocol.as_str()));
        out.insert("op".into(), Value::from(self.op));
        for (k, v) in &self.fields {
            out.insert(k.clone(), v.clone());
        }
        out
    }

    pub(crate) fn set(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.fields.insert(key.to_owned(), value.into());
        self
    }

    pub(crate) fn unset(&mut self, key: &str) -> &mut Self {
        self.fields.remove(key);
        self
    }

    /// A path from the wire (any bytes). Stored as text; bytes that are not UTF-8
    /// are kept exactly in `<key>_hex` as well, so nothing is lost or guessed.
    pub(crate) fn set_path(&mut self, key: &str, raw: &[u8]) -> &mut Self {
        self.set_wire(key, &WireText::new(raw, MAX_PATH_BYTES))
    }

    /// A message from the peer (server status text, scp error line).
    pub(crate) fn set_text(&mut self, key: &str, raw: &[u8]) -> &mut Self {
        self.set_wire(key, &WireText::new(raw, MAX_TEXT_BYTES))
    }

    pub(crate) fn set_wire(&mut self, key: &str, text: &WireText) -> &mut Self {
        let kept = text.kept.as_slice();
        let cut = text.original_len > kept.len();
        if cut {
            self.set(&format!("{key}_truncated"), text.original_len as u64);
        }
        match std::str::from_utf8(kept) {
            Ok(text) => {
                self.set(key, text);
            }
            Err(e) if cut && e.error_len().is_none() => {
                // The cut fell inside a multi-byte character: keep the whole characters.
                let text = std::str::from_utf8(&kept[..e.valid_up_to()]).unwrap_or_default();
                self.set(key, text);
            }
            Err(_) => {
                self.set(key, String::from_utf8_lossy(kept).into_owned());
                self.set(&format!("{key}_hex"), hex(kept));
            }
        }
        self
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
        ev.set_path("path", b"/tmp/a").set("status", "ok");
        assert_eq!(
            Value::Object(ev.to_fields()),
            json!({"protocol": "sftp", "op": "remove", "path": "/tmp/a", "status": "ok"})
        );
    }

    #[test]
    fn non_utf8_path_is_kept_exactly_in_hex() {
        let mut ev = TransferEvent::new(Protocol::Scp, "file");
        ev.set_path("path", b"a\xffb");
        assert_eq!(ev.get("path"), Some(&json!("a\u{fffd}b")));
        assert_eq!(ev.get("path_hex"), Some(&json!("61ff62")));
    }

    #[test]
    fn long_path_is_cut_on_a_character_boundary_with_its_length() {
        let mut raw = vec![b'a'; MAX_PATH_BYTES - 1];
        raw.extend_from_slice("é".as_bytes());
        raw.extend_from_slice(b"tail");
        let mut ev = TransferEvent::new(Protocol::Sftp, "open");
        ev.set_path("path", &raw);
        assert_eq!(ev.get("path_truncated"), Some(&json!(MAX_PATH_BYTES + 5)));
        assert_eq!(
            ev.get("path").and_then(Value::as_str).map(str::len),
            Some(MAX_PATH_BYTES - 1)
        );
        assert_eq!(ev.get("path_hex"), None);
    }

    #[test]
    fn modes_are_four_octal_digits() {
        assert_eq!(octal_mode(0o100644), "0644");
        assert_eq!(octal_mode(0o4755), "4755");
    }
}
