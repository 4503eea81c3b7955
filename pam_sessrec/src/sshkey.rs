//! SSH public key and OpenSSH certificate blobs (RFC 4253 §6.6, RFC 5656, PROTOCOL.certkeys,
//! PROTOCOL.u2f): key type, SHA256 fingerprint as `ssh-keygen -lf` prints it, and the certificate
//! fields an auditor needs.
//!
//! The blobs come from sshd, which has already verified them, but the parser is written as if
//! they were hostile: every length is checked against what is left, counts are bounded, and any
//! malformed input is an error value, never a panic.
#![forbid(unsafe_code)]

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Largest key or certificate blob accepted (real certificates are well under 4 KiB; an RSA
/// 16384-bit key with a 16384-bit CA stays under 8 KiB).
pub const MAX_BLOB_BYTES: usize = 16 * 1024;
/// Most principals kept from one certificate.
pub const MAX_PRINCIPALS: usize = 256;
/// Most critical options or extensions kept from one certificate.
pub const MAX_OPTIONS: usize = 64;
/// Longest key id, principal, option name or option value kept.
pub const MAX_FIELD_BYTES: usize = 1024;

/// Why a blob was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    Base64,
    TooLarge(usize),
    Truncated(&'static str),
    TrailingBytes(&'static str),
    UnknownKeyType(String),
    TypeMismatch { announced: String, blob: String },
    NotUtf8(&'static str),
    TooMany(&'static str),
    FieldTooLong(&'static str),
    BadCertType(u32),
    CaIsCertificate,
    BadCurve(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Base64 => f.write_str("key blob is not valid base64"),
            KeyError::TooLarge(n) => {
                write!(f, "key blob of {n} bytes exceeds {MAX_BLOB_BYTES} bytes")
            }
            KeyError::Truncated(what) => write!(f, "key blob truncated in {what}"),
            KeyError::TrailingBytes(what) => write!(f, "trailing bytes after {what}"),
            KeyError::UnknownKeyType(t) => write!(f, "unknown key type {t:?}"),
            KeyError::TypeMismatch { announced, blob } => {
                write!(
                    f,
                    "key type {announced:?} does not match blob type {blob:?}"
                )
            }
            KeyError::NotUtf8(what) => write!(f, "{what} is not UTF-8"),
            KeyError::TooMany(what) => write!(f, "too many {what}"),
            KeyError::FieldTooLong(what) => {
                write!(f, "{what} longer than {MAX_FIELD_BYTES} bytes")
            }
            KeyError::BadCertType(t) => write!(f, "certificate type {t} is neither user nor host"),
            KeyError::CaIsCertificate => f.write_str("certificate signed by a certificate"),
            KeyError::BadCurve(c) => write!(f, "curve {c:?} does not match the key type"),
        }
    }
}

impl std::error::Error for KeyError {}

/// The plain (non-certificate) key algorithms OpenSSH 9 knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    Dss,
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
    Ed25519,
    SkEcdsaP256,
    SkEd25519,
}

impl KeyKind {
    fn from_plain_name(name: &str) -> Option<Self> {
        Some(match name {
            "ssh-rsa" => KeyKind::Rsa,
            "ssh-dss" => KeyKind::Dss,
            "ecdsa-sha2-nistp256" => KeyKind::EcdsaP256,
            "ecdsa-sha2-nistp384" => KeyKind::EcdsaP384,
            "ecdsa-sha2-nistp521" => KeyKind::EcdsaP521,
            "ssh-ed25519" => KeyKind::Ed25519,
            "sk-ecdsa-sha2-nistp256@openssh.com" => KeyKind::SkEcdsaP256,
            "sk-ssh-ed25519@openssh.com" => KeyKind::SkEd25519,
            _ => return None,
        })
    }

    fn from_cert_name(name: &str) -> Option<Self> {
        Some(match name {
            "ssh-rsa-cert-v01@openssh.com" => KeyKind::Rsa,
            "ssh-dss-cert-v01@openssh.com" => KeyKind::Dss,
            "ecdsa-sha2-nistp256-cert-v01@openssh.com" => KeyKind::EcdsaP256,
            "ecdsa-sha2-nistp384-cert-v01@openssh.com" => KeyKind::EcdsaP384,
            "ecdsa-sha2-nistp521-cert-v01@openssh.com" => KeyKind::EcdsaP521,
            "ssh-ed25519-cert-v01@openssh.com" => KeyKind::Ed25519,
            "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com" => KeyKind::SkEcdsaP256,
            "sk-ssh-ed25519-cert-v01@openssh.com" => KeyKind::SkEd25519,
            _ => return None,
        })
    }

    /// The plain key type name, e.g. `ssh-ed25519`.
    pub fn plain_name(self) -> &'static str {
        match self {
            KeyKind::Rsa => "ssh-rsa",
            KeyKind::Dss => "ssh-dss",
            KeyKind::EcdsaP256 => "ecdsa-sha2-nistp256",
            KeyKind::EcdsaP384 => "ecdsa-sha2-nistp384",
            KeyKind::EcdsaP521 => "ecdsa-sha2-nistp521",
            KeyKind::Ed25519 => "ssh-ed25519",
            KeyKind::SkEcdsaP256 => "sk-ecdsa-sha2-nistp256@openssh.com",
            KeyKind::SkEd25519 => "sk-ssh-ed25519@openssh.com",
        }
    }

    fn curve(self) -> Option<&'static str> {
        match self {
            KeyKind::EcdsaP256 | KeyKind::SkEcdsaP256 => Some("nistp256"),
            KeyKind::EcdsaP384 => Some("nistp384"),
            KeyKind::EcdsaP521 => Some("nistp521"),
            _ => None,
        }
    }
}

/// Reads SSH wire-format fields from a byte slice, never past its end.
struct Wire<'a> {
    rest: &'a [u8],
    whole: &'a [u8],
}

impl<'a> Wire<'a> {
    fn new(data: &'a [u8]) -> Self {
        Wire {
            rest: data,
            whole: data,
        }
    }

    fn position(&self) -> usize {
        self.whole.len() - self.rest.len()
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], KeyError> {
        if n > self.rest.len() {
            return Err(KeyError::Truncated(what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, KeyError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, KeyError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn string(&mut self, what: &'static str) -> Result<&'a [u8], KeyError> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }

    fn text(&mut self, what: &'static str) -> Result<&'a str, KeyError> {
        std::str::from_utf8(self.string(what)?).map_err(|_| KeyError::NotUtf8(what))
    }

    fn bounded_text(&mut self, what: &'static str) -> Result<String, KeyError> {
        let s = self.text(what)?;
        if s.len() > MAX_FIELD_BYTES {
            return Err(KeyError::FieldTooLong(what));
        }
        Ok(s.to_owned())
    }

    fn finish(&self, what: &'static str) -> Result<(), KeyError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(KeyError::TrailingBytes(what))
        }
    }
}

/// Bit length of an SSH mpint (big-endian two's complement, positive values carry a leading 0).
fn mpint_bits(raw: &[u8]) -> u32 {
    let mut digits = raw;
    while let [0, rest @ ..] = digits {
        digits = rest;
    }
    match digits.first() {
        None => 0,
        Some(&top) => (digits.len() as u32 - 1) * 8 + (8 - top.leading_zeros()),
    }
}

/// Reads the public key fields of `kind` and returns the key size in bits.
fn read_key_fields(wire: &mut Wire<'_>, kind: KeyKind) -> Result<u32, KeyError> {
    match kind {
        KeyKind::Rsa => {
            wire.string("rsa exponent")?;
            Ok(mpint_bits(wire.string("rsa modulus")?))
        }
        KeyKind::Dss => {
            let p = wire.string("dsa p")?;
            wire.string("dsa q")?;
            wire.string("dsa g")?;
            wire.string("dsa y")?;
            Ok(mpint_bits(p))
        }
        KeyKind::EcdsaP256 | KeyKind::EcdsaP384 | KeyKind::EcdsaP521 => {
            read_curve(wire, kind)?;
            wire.string("ecdsa point")?;
            Ok(ecdsa_bits(kind))
        }
        KeyKind::SkEcdsaP256 => {
            read_curve(wire, kind)?;
            wire.string("ecdsa point")?;
            wire.string("security key application")?;
            Ok(256)
        }
        KeyKind::Ed25519 => {
            wire.string("ed25519 key")?;
            Ok(256)
        }
        KeyKind::SkEd25519 => {
            wire.string("ed25519 key")?;
            wire.string("security key application")?;
            Ok(256)
        }
    }
}

fn ecdsa_bits(kind: KeyKind) -> u32 {
    match kind {
        KeyKind::EcdsaP384 => 384,
        KeyKind::EcdsaP521 => 521,
        _ => 256,
    }
}

fn read_curve(wire: &mut Wire<'_>, kind: KeyKind) -> Result<(), KeyError> {
    let curve = wire.string("ecdsa curve")?;
    if Some(curve) != kind.curve().map(str::as_bytes) {
        return Err(KeyError::BadCurve(
            String::from_utf8_lossy(&curve[..curve.len().min(64)]).into_owned(),
        ));
    }
    Ok(())
}

/// `SHA256:` followed by unpadded base64 of the SHA-256 of `blob`, as `ssh-keygen -l` prints it.
pub fn fingerprint(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(blob)))
}

/// A decoded public key or certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The type name as it appears in the blob, e.g. `ssh-ed25519-cert-v01@openssh.com`.
    pub key_type: String,
    /// Fingerprint of the plain key (for a certificate: of the key it certifies, as sshd logs it).
    pub fingerprint: String,
    pub bits: u32,
    pub certificate: Option<CertInfo>,
}

/// Certificate type (PROTOCOL.certkeys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertType {
    User,
    Host,
}

/// The fields of an OpenSSH certificate that identify its holder and issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub serial: u64,
    pub cert_type: CertType,
    pub key_id: String,
    pub principals: Vec<String>,
    /// Seconds since the epoch; 0 means "always".
    pub valid_after: u64,
    /// Seconds since the epoch; `u64::MAX` means "forever".
    pub valid_before: u64,
    pub critical_options: Vec<(String, String)>,
    pub extensions: Vec<String>,
    /// Plain key type of the signing CA key.
    pub ca_key_type: String,
    /// Fingerprint of the signing CA key.
    pub ca_fingerprint: String,
}

/// Decodes standard base64 as OpenSSH writes it (padding optional), bounded in size.
pub fn decode_base64_blob(text: &str) -> Result<Vec<u8>, KeyError> {
    // 4 base64 characters per 3 bytes, plus padding.
    if text.len() > MAX_BLOB_BYTES / 3 * 4 + 4 {
        return Err(KeyError::TooLarge(text.len() / 4 * 3));
    }
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(text).map_err(|_| KeyError::Base64)
}

/// Parses a key or certificate blob. `announced_type`, when given, must match the type inside.
pub fn parse_blob(blob: &[u8], announced_type: Option<&str>) -> Result<PublicKey, KeyError> {
    if blob.len() > MAX_BLOB_BYTES {
        return Err(KeyError::TooLarge(blob.len()));
    }
    let mut wire = Wire::new(blob);
    let type_name = wire.text("key type")?;
    if let Some(announced) = announced_type {
        if announced != type_name {
            return Err(KeyError::TypeMismatch {
                announced: clip(announced),
                blob: clip(type_name),
            });
        }
    }
    if let Some(kind) = KeyKind::from_plain_name(type_name) {
        let bits = read_key_fields(&mut wire, kind)?;
        wire.finish("public key")?;
        return Ok(PublicKey {
            key_type: type_name.to_owned(),
            fingerprint: fingerprint(blob),
            bits,
            certificate: None,
        });
    }
    let kind = KeyKind::from_cert_name(type_name)
        .ok_or_else(|| KeyError::UnknownKeyType(clip(type_name)))?;
    parse_certificate(&mut wire, type_name, kind)
}

fn parse_certificate(
    wire: &mut Wire<'_>,
    type_name: &str,
    kind: KeyKind,
) -> Result<PublicKey, KeyError> {
    wire.string("certificate nonce")?;
    let key_start = wire.position();
    let bits = read_key_fields(wire, kind)?;
    let key_fields = &wire.whole[key_start..wire.position()];
    // The plain key blob: its type name followed by the same fields.
    let plain_name = kind.plain_name();
    let mut plain = Vec::with_capacity(4 + plain_name.len() + key_fields.len());
    plain.extend_from_slice(&(plain_name.len() as u32).to_be_bytes());
    plain.extend_from_slice(plain_name.as_bytes());
    plain.extend_from_slice(key_fields);

    let serial = wire.u64("certificate serial")?;
    let cert_type = match wire.u32("certificate type")? {
        1 => CertType::User,
        2 => CertType::Host,
        other => return Err(KeyError::BadCertType(other)),
    };
    let key_id = wire.bounded_text("certificate key id")?;

    let mut principals = Vec::new();
    let mut list = Wire::new(wire.string("valid principals")?);
    while !list.rest.is_empty() {
        if principals.len() == MAX_PRINCIPALS {
            return Err(KeyError::TooMany("principals"));
        }
        principals.push(list.bounded_text("principal")?);
    }

    let valid_after = wire.u64("valid after")?;
    let valid_before = wire.u64("valid before")?;

    let mut critical_options = Vec::new();
    let mut list = Wire::new(wire.string("critical options")?);
    while !list.rest.is_empty() {
        if critical_options.len() == MAX_OPTIONS {
            return Err(KeyError::TooMany("critical options"));
        }
        let name = list.bounded_text("critical option name")?;
        // The value is itself a string inside the data string (e.g. force-command).
        let data = list.string("critical option data")?;
        let value = if data.is_empty() {
            String::new()
        } else {
            let mut inner = Wire::new(data);
            let v = inner.bounded_text("critical option value")?;
            inner.finish("critical option value")?;
            v
        };
        critical_options.push((name, value));
    }

    let mut extensions = Vec::new();
    let mut list = Wire::new(wire.string("extensions")?);
    while !list.rest.is_empty() {
        if extensions.len() == MAX_OPTIONS {
            return Err(KeyError::TooMany("extensions"));
        }
        extensions.push(list.bounded_text("extension name")?);
        list.string("extension data")?;
    }

    wire.string("reserved")?;
    let ca_blob = wire.string("signature key")?;
    wire.string("signature")?;
    wire.finish("certificate")?;

    let ca = parse_blob(ca_blob, None)?;
    if ca.certificate.is_some() {
        return Err(KeyError::CaIsCertificate);
    }

    Ok(PublicKey {
        key_type: type_name.to_owned(),
        fingerprint: fingerprint(&plain),
        bits,
        certificate: Some(CertInfo {
            serial,
            cert_type,
            key_id,
            principals,
            valid_after,
            valid_before,
            critical_options,
            extensions,
            ca_key_type: ca.key_type,
            ca_fingerprint: ca.fingerprint,
        }),
    })
}

/// A short, printable excerpt of attacker-influenced text for error messages.
fn clip(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s);
    }

    #[test]
    fn mpint_bit_lengths() {
        assert_eq!(mpint_bits(&[]), 0);
        assert_eq!(mpint_bits(&[0x00, 0x80]), 8);
        assert_eq!(mpint_bits(&[0x01, 0x00]), 9);
        assert_eq!(mpint_bits(&[0x00, 0x00, 0x7f]), 7);
    }

    #[test]
    fn truncated_and_oversized_blobs_are_errors() {
        let mut blob = Vec::new();
        string(&mut blob, b"ssh-ed25519");
        string(&mut blob, &[7u8; 32]);
        assert!(parse_blob(&blob, None).is_ok());
        for cut in 0..blob.len() {
            assert!(parse_blob(&blob[..cut], None).is_err(), "cut at {cut}");
        }
        let mut long = blob.clone();
        long.push(0);
        assert_eq!(
            parse_blob(&long, None),
            Err(KeyError::TrailingBytes("public key"))
        );
        // A length field claiming 4 GiB.
        let mut huge = Vec::new();
        string(&mut huge, b"ssh-ed25519");
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            parse_blob(&huge, None),
            Err(KeyError::Truncated("ed25519 key"))
        );
        assert!(matches!(
            parse_blob(&vec![0u8; MAX_BLOB_BYTES + 1], None),
            Err(KeyError::TooLarge(_))
        ));
    }

    #[test]
    fn announced_type_must_match() {
        let mut blob = Vec::new();
        string(&mut blob, b"ssh-ed25519");
        string(&mut blob, &[7u8; 32]);
        assert!(matches!(
            parse_blob(&blob, Some("ssh-rsa")),
            Err(KeyError::TypeMismatch { .. })
        ));
    }

    #[test]
    fn unknown_type_and_bad_curve() {
        let mut blob = Vec::new();
        string(&mut blob, b"ssh-foo");
        assert_eq!(
            parse_blob(&blob, None),
            Err(KeyError::UnknownKeyType("ssh-foo".into()))
        );
        let mut blob = Vec::new();
        string(&mut blob, b"ecdsa-sha2-nistp256");
        string(&mut blob, b"nistp384");
        string(&mut blob, &[4u8; 65]);
        assert!(matches!(
            parse_blob(&blob, None),
            Err(KeyError::BadCurve(_))
        ));
    }

    #[test]
    fn principal_count_is_bounded() {
        let mut ca = Vec::new();
        string(&mut ca, b"ssh-ed25519");
        string(&mut ca, &[1u8; 32]);
        let mut principals = Vec::new();
        for _ in 0..=MAX_PRINCIPALS {
            string(&mut principals, b"p");
        }
        let mut blob = Vec::new();
        string(&mut blob, b"ssh-ed25519-cert-v01@openssh.com");
        string(&mut blob, &[0u8; 32]);
        string(&mut blob, &[2u8; 32]);
        blob.extend_from_slice(&5u64.to_be_bytes());
        blob.extend_from_slice(&1u32.to_be_bytes());
        string(&mut blob, b"id");
        string(&mut blob, &principals);
        blob.extend_from_slice(&0u64.to_be_bytes());
        blob.extend_from_slice(&u64::MAX.to_be_bytes());
        string(&mut blob, b"");
        string(&mut blob, b"");
        string(&mut blob, b"");
        string(&mut blob, &ca);
        string(&mut blob, b"sig");
        assert_eq!(
            parse_blob(&blob, None),
            Err(KeyError::TooMany("principals"))
        );
    }
}
