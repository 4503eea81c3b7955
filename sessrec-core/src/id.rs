//! Session ids: RFC 9562 UUIDv7, lowercase and hyphenated.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::str::FromStr;

use crate::sys;

/// A login session's id. Its 48-bit millisecond timestamp names the date directory.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; 16]);

impl SessionId {
    /// A new UUIDv7 from the current time and the kernel CSPRNG.
    pub fn new() -> io::Result<Self> {
        let millis = crate::time::Timestamp::now().as_micros().max(0) as u64 / 1000;
        let mut bytes = [0u8; 16];
        sys::getrandom(&mut bytes[6..])?;
        Ok(Self::from_parts(millis, bytes))
    }

    /// A UUIDv7 whose random bits come from SHA-256 of `seed`: the same time and seed always
    /// give the same id. For records that must land in the same place when imported again.
    pub fn derived(unix_millis: u64, seed: &[u8]) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(seed);
        let mut bytes = [0u8; 16];
        bytes[6..].copy_from_slice(&digest[..10]);
        Self::from_parts(unix_millis, bytes)
    }

    fn from_parts(millis: u64, mut bytes: [u8; 16]) -> Self {
        bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
        bytes[6] = 0x70 | (bytes[6] & 0x0f); // version 7
        bytes[8] = 0x80 | (bytes[8] & 0x3f); // RFC 9562 variant
        SessionId(bytes)
    }

    /// Strictly parses the canonical lowercase hyphenated form of a version-7 UUID.
    pub fn parse(text: &str) -> Option<Self> {
        let raw = text.as_bytes();
        if raw.len() != 36 {
            return None;
        }
        let mut bytes = [0u8; 16];
        let mut nibbles = 0usize;
        for (i, &c) in raw.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return None;
                }
                continue;
            }
            let v = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                _ => return None,
            };
            bytes[nibbles / 2] |= if nibbles.is_multiple_of(2) { v << 4 } else { v };
            nibbles += 1;
        }
        if bytes[6] >> 4 != 7 || bytes[8] >> 6 != 0b10 {
            return None;
        }
        Some(SessionId(bytes))
    }

    /// Milliseconds since the Unix epoch embedded in the id.
    pub fn unix_millis(&self) -> u64 {
        let mut b = [0u8; 8];
        b[2..].copy_from_slice(&self.0[..6]);
        u64::from_be_bytes(b)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

impl FromStr for SessionId {
    type Err = InvalidSessionId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionId::parse(s).ok_or(InvalidSessionId)
    }
}

/// The text is not a lowercase hyphenated UUIDv7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidSessionId;

impl fmt::Display for InvalidSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a session id (lowercase hyphenated UUIDv7 expected)")
    }
}

impl std::error::Error for InvalidSessionId {}

impl serde::Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        SessionId::parse(&text).ok_or_else(|| serde::de::Error::custom(InvalidSessionId))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_version_7() {
        let id = SessionId::new().unwrap();
        let text = id.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(&text[14..15], "7");
        assert_eq!(SessionId::parse(&text), Some(id));
        let now_ms = crate::time::Timestamp::now().as_micros() as u64 / 1000;
        assert!(now_ms.abs_diff(id.unix_millis()) < 5_000);
    }

    #[test]
    fn rejects_other_forms() {
        let good = SessionId::from_parts(1_700_000_000_000, [0xab; 16]).to_string();
        assert!(SessionId::parse(&good).is_some());
        assert!(SessionId::parse(&good.to_uppercase()).is_none());
        assert!(SessionId::parse(&good.replace('-', "")).is_none());
        assert!(SessionId::parse("../../etc/passwd").is_none());
        // version 4 UUID
        assert!(SessionId::parse("0b0e3f5a-1c2d-4e5f-8a9b-0c1d2e3f4a5b").is_none());
        assert_eq!(
            SessionId::from_parts(1_700_000_000_000, [0; 16]).unix_millis(),
            1_700_000_000_000
        );
    }

    #[test]
    fn derived_ids_are_stable_valid_v7() {
        let a = SessionId::derived(1_700_000_000_000, b"seed");
        assert_eq!(a, SessionId::derived(1_700_000_000_000, b"seed"));
        assert_ne!(a, SessionId::derived(1_700_000_000_000, b"other"));
        assert_eq!(SessionId::parse(&a.to_string()), Some(a));
        assert_eq!(a.unix_millis(), 1_700_000_000_000);
    }

    #[test]
    fn distinct() {
        let a = SessionId::new().unwrap();
        let b = SessionId::new().unwrap();
        assert_ne!(a, b);
    }
}
