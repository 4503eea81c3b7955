//! One line of auditd's log: `[node=N ]type=T msg=audit(SECS.MILLIS:SERIAL): k=v k=v ...`,
//! in `log_format` RAW or ENRICHED (ENRICHED appends auditd's interpretations after a 0x1d
//! byte; they are ignored: only the kernel's own fields are read).
//!
//! The kernel quotes a string value only when it holds no space, quote or control byte and
//! nothing above 0x7e; anything else it writes as hex. So a value never contains a space and
//! splitting on spaces is exact for the record types read here.
#![forbid(unsafe_code)]

use std::fmt;

/// Longest line accepted; longer ones are skipped and counted (the kernel keeps records under
/// 8970 bytes; auditd's interpretations can make them longer).
pub const MAX_LINE: usize = 64 * 1024;

/// The id shared by every record of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    pub secs: u64,
    pub millis: u32,
    pub serial: u64,
}

impl EventId {
    /// Microseconds since the epoch.
    pub fn micros(&self) -> i64 {
        (self.secs as i64)
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(self.millis) * 1000)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}:{}", self.secs, self.millis, self.serial)
    }
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// `SYSCALL`, `EXECVE`, ... (or `UNKNOWN[1327]` for types auditd cannot name).
    pub kind: &'a str,
    pub id: EventId,
    /// The kernel's fields, before any ENRICHED part.
    pub body: &'a [u8],
}

/// Why a line was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineProblem {
    TooLong,
    NotARecord,
}

/// Parses one line (without its newline).
pub fn parse_line(line: &[u8]) -> Result<Record<'_>, LineProblem> {
    if line.len() > MAX_LINE {
        return Err(LineProblem::TooLong);
    }
    let mut rest = line;
    if rest.starts_with(b"node=") {
        let sp = rest
            .iter()
            .position(|b| *b == b' ')
            .ok_or(LineProblem::NotARecord)?;
        rest = &rest[sp + 1..];
    }
    let rest = rest.strip_prefix(b"type=").ok_or(LineProblem::NotARecord)?;
    let sp = rest
        .iter()
        .position(|b| *b == b' ')
        .ok_or(LineProblem::NotARecord)?;
    let kind = std::str::from_utf8(&rest[..sp]).map_err(|_| LineProblem::NotARecord)?;
    if kind.is_empty()
        || !kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'[' || b == b']')
    {
        return Err(LineProblem::NotARecord);
    }
    let rest = rest[sp + 1..]
        .strip_prefix(b"msg=audit(")
        .ok_or(LineProblem::NotARecord)?;
    let close = rest
        .iter()
        .position(|b| *b == b')')
        .ok_or(LineProblem::NotARecord)?;
    let id = parse_id(&rest[..close]).ok_or(LineProblem::NotARecord)?;
    let mut body = rest[close + 1..]
        .strip_prefix(b":")
        .ok_or(LineProblem::NotARecord)?;
    if let Some(gs) = body.iter().position(|b| *b == 0x1d) {
        body = &body[..gs];
    }
    Ok(Record { kind, id, body })
}

fn parse_id(text: &[u8]) -> Option<EventId> {
    let text = std::str::from_utf8(text).ok()?;
    let (time, serial) = text.split_once(':')?;
    let (secs, millis) = time.split_once('.')?;
    if millis.len() != 3 {
        return None;
    }
    Some(EventId {
        secs: secs.parse().ok()?,
        millis: millis.parse().ok()?,
        serial: serial.parse().ok()?,
    })
}

impl<'a> Record<'a> {
    /// The fields in order, as (name, raw value).
    pub fn fields(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.body
            .split(|b| *b == b' ')
            .filter(|t| !t.is_empty())
            .filter_map(|t| {
                let eq = t.iter().position(|b| *b == b'=')?;
                Some((&t[..eq], &t[eq + 1..]))
            })
    }

    /// The raw value of the first field `name`.
    pub fn raw(&self, name: &str) -> Option<&'a [u8]> {
        self.fields()
            .find(|(k, _)| *k == name.as_bytes())
            .map(|(_, v)| v)
    }

    /// A numeric field (decimal; negative allowed).
    pub fn num(&self, name: &str) -> Option<i64> {
        std::str::from_utf8(self.raw(name)?).ok()?.parse().ok()
    }

    /// An unsigned 32-bit field (ids: 4294967295 is "unset").
    pub fn u32(&self, name: &str) -> Option<u32> {
        std::str::from_utf8(self.raw(name)?).ok()?.parse().ok()
    }

    /// A string field the kernel may have hex-encoded: the exact bytes.
    pub fn bytes(&self, name: &str) -> Option<Vec<u8>> {
        decode_value(self.raw(name)?)
    }
}

/// The bytes of an untrusted-string value: `"text"` as is, `(null)` as none, else hex.
pub fn decode_value(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() >= 2 && raw[0] == b'"' && raw[raw.len() - 1] == b'"' {
        return Some(raw[1..raw.len() - 1].to_vec());
    }
    if raw == b"(null)" || raw == b"(none)" {
        return None;
    }
    decode_hex(raw)
}

/// Hex (either case) to bytes; `None` when not hex.
pub fn decode_hex(raw: &[u8]) -> Option<Vec<u8>> {
    if !raw.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    raw.chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_raw_and_enriched_lines() {
        let line = b"type=EXECVE msg=audit(1796668928.829:6): argc=4 a0=\"/bin/echo\" a1=612062";
        let r = parse_line(line).unwrap();
        assert_eq!(r.kind, "EXECVE");
        assert_eq!(r.id.to_string(), "1796668928.829:6");
        assert_eq!(r.num("argc"), Some(4));
        assert_eq!(r.bytes("a0").unwrap(), b"/bin/echo");
        assert_eq!(r.bytes("a1").unwrap(), b"a b");
        let enriched =
            b"node=h type=SYSCALL msg=audit(1.002:3): pid=5 key=(null)\x1dARCH=x86_64 UID=\"root\"";
        let r = parse_line(enriched).unwrap();
        assert_eq!(r.kind, "SYSCALL");
        assert_eq!(r.num("pid"), Some(5));
        assert_eq!(r.bytes("key"), None);
        assert!(r.raw("UID").is_none(), "the ENRICHED part is not read");
    }

    #[test]
    fn refuses_what_is_not_a_record() {
        for bad in [
            &b"hello"[..],
            b"type=SYSCALL msg=audit(1.2:3): x",
            b"type=SYS CALL msg=audit(1.002:3): x",
            b"type=SYSCALL msg=audit(1.002): x",
            b"type=SYSCALL msg=audit(1.002:3) x",
        ] {
            assert_eq!(parse_line(bad), Err(LineProblem::NotARecord), "{bad:?}");
        }
        assert_eq!(
            parse_line(&vec![b'a'; MAX_LINE + 1]),
            Err(LineProblem::TooLong)
        );
        assert_eq!(decode_hex(b"6g"), None);
        assert_eq!(decode_value(b"FF0A1B").unwrap(), b"\xff\n\x1b");
    }
}
