//! `SSH_AUTH_INFO_0`: what sshd says about how the user authenticated.
//!
//! sshd writes one line per completed method (several with `AuthenticationMethods`):
//! `method[/submethod][ <key type> <base64 blob>][ <info>]`, e.g.
//! `publickey ssh-ed25519-cert-v01@openssh.com AAAA...`, `password`,
//! `keyboard-interactive/pam`, `hostbased ssh-ed25519 AAAA... client user "u", client host "h"`.
#![forbid(unsafe_code)]

use std::fmt;

use crate::sshkey::{self, KeyError, PublicKey};

/// Largest `SSH_AUTH_INFO_0` value parsed; anything longer is rejected whole.
pub const MAX_AUTH_INFO_BYTES: usize = 64 * 1024;
/// Most method lines parsed.
pub const MAX_METHODS: usize = 16;
/// Longest method name or trailing info kept.
pub const MAX_TEXT_BYTES: usize = 256;

/// One completed authentication method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthMethod {
    /// `publickey`, `password`, `keyboard-interactive/pam`, `gssapi-with-mic`, `hostbased`, ...
    pub method: String,
    /// The key (or certificate) used, for key-based methods.
    pub key: Option<PublicKey>,
    /// Anything sshd appended after the key (hostbased client user/host), cut to
    /// [`MAX_TEXT_BYTES`].
    pub info: Option<String>,
}

/// Why `SSH_AUTH_INFO_0` could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthInfoError {
    TooLarge(usize),
    NotUtf8,
    TooManyMethods,
    BadMethodName { line: usize },
    MissingKeyBlob { line: usize },
    Key { line: usize, error: KeyError },
}

impl fmt::Display for AuthInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthInfoError::TooLarge(n) => {
                write!(
                    f,
                    "SSH_AUTH_INFO_0 is {n} bytes, over {MAX_AUTH_INFO_BYTES}"
                )
            }
            AuthInfoError::NotUtf8 => f.write_str("SSH_AUTH_INFO_0 is not UTF-8"),
            AuthInfoError::TooManyMethods => {
                write!(f, "SSH_AUTH_INFO_0 has more than {MAX_METHODS} methods")
            }
            AuthInfoError::BadMethodName { line } => {
                write!(f, "SSH_AUTH_INFO_0 line {line}: bad method name")
            }
            AuthInfoError::MissingKeyBlob { line } => {
                write!(f, "SSH_AUTH_INFO_0 line {line}: key type without key blob")
            }
            AuthInfoError::Key { line, error } => {
                write!(f, "SSH_AUTH_INFO_0 line {line}: {error}")
            }
        }
    }
}

impl std::error::Error for AuthInfoError {}

/// Methods whose line carries a key after the method name.
fn carries_key(method: &str) -> bool {
    let base = method.split('/').next().unwrap_or(method);
    matches!(base, "publickey" | "hostbased")
}

fn valid_method_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TEXT_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b'/'))
}

/// Parses the whole variable. Empty lines are skipped; an empty value gives no methods.
pub fn parse(raw: &[u8]) -> Result<Vec<AuthMethod>, AuthInfoError> {
    if raw.len() > MAX_AUTH_INFO_BYTES {
        return Err(AuthInfoError::TooLarge(raw.len()));
    }
    let text = std::str::from_utf8(raw).map_err(|_| AuthInfoError::NotUtf8)?;
    let mut methods = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let line_no = index + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if methods.len() == MAX_METHODS {
            return Err(AuthInfoError::TooManyMethods);
        }
        methods.push(parse_line(line, line_no)?);
    }
    Ok(methods)
}

fn parse_line(line: &str, line_no: usize) -> Result<AuthMethod, AuthInfoError> {
    let (method, rest) = split_word(line);
    if !valid_method_name(method) {
        return Err(AuthInfoError::BadMethodName { line: line_no });
    }
    let mut key = None;
    let mut info_text = rest;
    if carries_key(method) && !rest.is_empty() {
        let (key_type, rest) = split_word(rest);
        let (blob_text, rest) = split_word(rest);
        if blob_text.is_empty() {
            return Err(AuthInfoError::MissingKeyBlob { line: line_no });
        }
        let parsed = sshkey::decode_base64_blob(blob_text)
            .and_then(|blob| sshkey::parse_blob(&blob, Some(key_type)))
            .map_err(|error| AuthInfoError::Key {
                line: line_no,
                error,
            })?;
        key = Some(parsed);
        info_text = rest;
    }
    let info = if info_text.is_empty() {
        None
    } else {
        Some(bounded_printable(info_text))
    };
    Ok(AuthMethod {
        method: method.to_owned(),
        key,
        info,
    })
}

/// Splits off the first space-separated word; the rest has its leading spaces removed.
fn split_word(text: &str) -> (&str, &str) {
    match text.split_once(' ') {
        Some((word, rest)) => (word, rest.trim_start_matches(' ')),
        None => (text, ""),
    }
}

/// At most [`MAX_TEXT_BYTES`] bytes, cut on a character boundary, control characters replaced.
fn bounded_printable(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if out.len() + c.len_utf8() > MAX_TEXT_BYTES {
            break;
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_key_methods() {
        let methods = parse(b"password\nkeyboard-interactive/pam\n").unwrap();
        assert_eq!(methods.len(), 2);
        assert_eq!(methods[0].method, "password");
        assert_eq!(methods[1].method, "keyboard-interactive/pam");
        assert!(methods.iter().all(|m| m.key.is_none() && m.info.is_none()));
        assert_eq!(parse(b"").unwrap(), vec![]);
    }

    #[test]
    fn hostile_values_are_errors() {
        assert!(matches!(
            parse(&vec![b'a'; MAX_AUTH_INFO_BYTES + 1]),
            Err(AuthInfoError::TooLarge(_))
        ));
        assert_eq!(parse(b"pass\xffword"), Err(AuthInfoError::NotUtf8));
        assert_eq!(
            parse(b"pass word;rm\n"),
            Ok(vec![AuthMethod {
                method: "pass".into(),
                key: None,
                info: Some("word;rm".into())
            }])
        );
        assert_eq!(
            parse(b"$(id)\n"),
            Err(AuthInfoError::BadMethodName { line: 1 })
        );
        assert_eq!(
            parse(b"publickey ssh-ed25519\n"),
            Err(AuthInfoError::MissingKeyBlob { line: 1 })
        );
        assert!(matches!(
            parse(b"publickey ssh-ed25519 !!!!\n"),
            Err(AuthInfoError::Key {
                line: 1,
                error: KeyError::Base64
            })
        ));
        let many = "password\n".repeat(MAX_METHODS + 1);
        assert_eq!(parse(many.as_bytes()), Err(AuthInfoError::TooManyMethods));
    }

    #[test]
    fn info_is_bounded_and_printable() {
        let long = format!("hostbased-x {}\u{1b}", "é".repeat(400));
        let m = parse(long.as_bytes()).unwrap();
        let info = m[0].info.as_deref().unwrap();
        assert!(info.len() <= MAX_TEXT_BYTES);
        assert!(!info.contains('\u{1b}'));
    }
}
