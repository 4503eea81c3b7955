//! The hash chain that makes each record file tamper-evident: every line carries `prev`, the
//! SHA-256 of the previous line's exact bytes (with its `\n`); the first line's `prev` is the
//! SHA-256 of `sessrec-chain-v1\0<host>\0<session id>\0<file name>`.
#![forbid(unsafe_code)]

use sha2::{Digest, Sha256};

pub type Digest32 = [u8; 32];

/// The `prev` of a file's first line.
pub fn genesis(host: &str, session: &str, file: &str) -> Digest32 {
    let mut h = Sha256::new();
    h.update(b"sessrec-chain-v1\0");
    h.update(host.as_bytes());
    h.update(b"\0");
    h.update(session.as_bytes());
    h.update(b"\0");
    h.update(file.as_bytes());
    h.finalize().into()
}

/// The digest of one complete line, `\n` included.
pub fn line_digest(line: &[u8]) -> Digest32 {
    Sha256::digest(line).into()
}

pub fn to_hex(d: &Digest32) -> String {
    let mut s = String::with_capacity(64);
    for b in d {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// [`to_hex`] without allocating, for comparing with a line's `prev`.
pub fn hex_bytes(d: &Digest32) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (i, b) in d.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 15)];
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // sha256("abc")
        assert_eq!(
            to_hex(&line_digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(genesis("h", "s", "a"), genesis("h", "s", "b"));
        assert_ne!(genesis("h", "sa", ""), genesis("hs", "a", ""));
    }
}
