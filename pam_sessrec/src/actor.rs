//! Who the person behind a login is, from what sshd verified.
//!
//! The actor is a certificate's key id only when the signing CA's fingerprint is listed in
//! `[identity] trusted_user_cas` (any user may add a `cert-authority` line of their own to
//! `authorized_keys`, so an untrusted CA's key id means nothing); else the name mapped from a
//! key fingerprint in `[identity] fingerprints`; else the unix user.
#![forbid(unsafe_code)]

use std::net::IpAddr;

use serde_json::{Map, Value};
use sessrec_core::config::IdentityConfig;
use sessrec_core::identity::{ActorSource, Certificate, Identity};
use sessrec_core::schema;

use crate::authinfo::AuthMethod;
use crate::sshkey::{CertType, PublicKey};

/// Longest remote host name kept.
const MAX_RHOST: usize = 256;

/// What the PAM handle and environment say about the connection.
#[derive(Debug, Clone, Default)]
pub struct LoginFacts<'a> {
    pub user: &'a str,
    pub uid: u32,
    pub service: &'a str,
    pub rhost: Option<&'a [u8]>,
    /// `SSH_CONNECTION`: `<client ip> <client port> <server ip> <server port>`.
    pub ssh_connection: Option<&'a [u8]>,
    pub methods: &'a [AuthMethod],
}

/// Source and destination of an SSH connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dst_ip: IpAddr,
    pub dst_port: u16,
}

/// Parses `SSH_CONNECTION`; `None` unless it is exactly two address/port pairs.
pub fn parse_ssh_connection(raw: &[u8]) -> Option<Endpoints> {
    if raw.len() > 256 {
        return None;
    }
    let text = std::str::from_utf8(raw).ok()?;
    let parts: Vec<&str> = text.split(' ').collect();
    let [src_ip, src_port, dst_ip, dst_port] = parts.as_slice() else {
        return None;
    };
    Some(Endpoints {
        src_ip: src_ip.parse().ok()?,
        src_port: src_port.parse().ok()?,
        dst_ip: dst_ip.parse().ok()?,
        dst_port: dst_port.parse().ok()?,
    })
}

/// The key that decides the actor: the first certificate from a trusted CA, else the first key
/// whose fingerprint is mapped; `None` when neither exists.
fn deciding_key<'m>(
    methods: &'m [AuthMethod],
    config: &IdentityConfig,
) -> Option<(&'m PublicKey, ActorSource, String)> {
    let keys = || methods.iter().filter_map(|m| m.key.as_ref());
    let trusted = keys().find_map(|key| {
        let cert = key.certificate.as_ref()?;
        let usable = cert.cert_type == CertType::User
            && !cert.key_id.is_empty()
            && config.trusted_user_cas.contains(&cert.ca_fingerprint);
        usable.then(|| (key, ActorSource::Certificate, cert.key_id.clone()))
    });
    trusted.or_else(|| {
        keys().find_map(|key| {
            let name = config.fingerprints.get(&key.fingerprint)?;
            Some((key, ActorSource::FingerprintMap, name.clone()))
        })
    })
}

/// Builds the verified identity of a login.
pub fn identify(facts: &LoginFacts<'_>, config: &IdentityConfig) -> Identity {
    let mut identity = Identity::unverified(facts.user, facts.uid);
    identity.verified = true;
    identity.service = Some(facts.service.to_owned());
    identity.rhost = facts.rhost.map(printable_host);
    if let Some(ends) = facts.ssh_connection.and_then(parse_ssh_connection) {
        identity.src_ip = Some(ends.src_ip.to_string());
        identity.src_port = Some(ends.src_port);
        identity.dst_ip = Some(ends.dst_ip.to_string());
        identity.dst_port = Some(ends.dst_port);
    }
    identity.auth_methods = facts.methods.iter().map(|m| m.method.clone()).collect();

    let decided = deciding_key(facts.methods, config);
    // The key shown in the identity: the one that decided the actor, else the first key used.
    let shown = decided
        .as_ref()
        .map(|(key, _, _)| *key)
        .or_else(|| facts.methods.iter().find_map(|m| m.key.as_ref()));
    if let Some(key) = shown {
        identity.key_type = Some(key.key_type.clone());
        identity.key_fingerprint = Some(key.fingerprint.clone());
        identity.certificate = key.certificate.as_ref().map(|cert| Certificate {
            key_id: cert.key_id.clone(),
            serial: cert.serial,
            principals: cert.principals.clone(),
            valid_after: cert.valid_after,
            valid_before: cert.valid_before,
            ca_fingerprint: cert.ca_fingerprint.clone(),
            ca_trusted: config.trusted_user_cas.contains(&cert.ca_fingerprint),
        });
    }
    if let Some((_, source, actor)) = decided {
        identity.actor = actor;
        identity.actor_source = source;
    }
    identity
}

/// Every method with its key details, for the `login` line (`auth` field).
pub fn methods_detail(methods: &[AuthMethod], config: &IdentityConfig) -> Vec<schema::AuthMethod> {
    methods
        .iter()
        .map(|m| {
            let mut entry = schema::AuthMethod {
                method: Some(m.method.clone()),
                info: m.info.clone(),
                ..Default::default()
            };
            if let Some(key) = &m.key {
                entry.key_type = Some(key.key_type.clone());
                entry.key_bits = Some(key.bits);
                entry.key_fingerprint = Some(key.fingerprint.clone());
                entry.certificate = key.certificate.as_ref().map(|cert| {
                    let options: Map<String, Value> = cert
                        .critical_options
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                        .collect();
                    schema::Certificate {
                        cert_type: Some(
                            match cert.cert_type {
                                CertType::User => "user",
                                CertType::Host => "host",
                            }
                            .into(),
                        ),
                        key_id: Some(cert.key_id.clone()),
                        serial: Some(cert.serial),
                        principals: Some(cert.principals.clone()),
                        valid_after: Some(cert.valid_after),
                        valid_before: Some(cert.valid_before),
                        critical_options: Some(Value::Object(options)),
                        extensions: Some(cert.extensions.clone()),
                        ca_key_type: Some(cert.ca_key_type.clone()),
                        ca_fingerprint: Some(cert.ca_fingerprint.clone()),
                        ca_trusted: Some(config.trusted_user_cas.contains(&cert.ca_fingerprint)),
                        ..Default::default()
                    }
                });
            }
            entry
        })
        .collect()
}

fn printable_host(raw: &[u8]) -> String {
    String::from_utf8_lossy(&raw[..raw.len().min(MAX_RHOST)])
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sshkey::{CertInfo, PublicKey};

    fn cert_key(fp: &str, key_id: &str, ca: &str) -> AuthMethod {
        AuthMethod {
            method: "publickey".into(),
            key: Some(PublicKey {
                key_type: "ssh-ed25519-cert-v01@openssh.com".into(),
                fingerprint: fp.into(),
                bits: 256,
                certificate: Some(CertInfo {
                    serial: 9,
                    cert_type: CertType::User,
                    key_id: key_id.into(),
                    principals: vec!["srt-u".into()],
                    valid_after: 0,
                    valid_before: u64::MAX,
                    critical_options: vec![],
                    extensions: vec!["permit-pty".into()],
                    ca_key_type: "ssh-ed25519".into(),
                    ca_fingerprint: ca.into(),
                }),
            }),
            info: None,
        }
    }

    fn plain_key(fp: &str) -> AuthMethod {
        AuthMethod {
            method: "publickey".into(),
            key: Some(PublicKey {
                key_type: "ssh-ed25519".into(),
                fingerprint: fp.into(),
                bits: 256,
                certificate: None,
            }),
            info: None,
        }
    }

    fn facts(methods: &[AuthMethod]) -> LoginFacts<'_> {
        LoginFacts {
            user: "srt-u",
            uid: 1234,
            service: "sshd",
            rhost: Some(b"127.0.0.1"),
            ssh_connection: Some(b"127.0.0.1 40000 127.0.0.1 2222"),
            methods,
        }
    }

    fn config(trusted: &[&str], map: &[(&str, &str)]) -> IdentityConfig {
        IdentityConfig {
            trusted_user_cas: trusted.iter().map(|s| s.to_string()).collect(),
            fingerprints: map
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn trusted_certificate_names_the_actor() {
        let methods = [cert_key("SHA256:key", "alice@example.com", "SHA256:ca")];
        let id = identify(&facts(&methods), &config(&["SHA256:ca"], &[]));
        assert_eq!(id.actor, "alice@example.com");
        assert_eq!(id.actor_source, ActorSource::Certificate);
        assert!(id.certificate.as_ref().unwrap().ca_trusted);
        assert_eq!(id.src_port, Some(40000));
        assert_eq!(id.dst_port, Some(2222));
        assert!(id.verified);
    }

    #[test]
    fn untrusted_certificate_is_not_the_actor() {
        let methods = [cert_key("SHA256:key", "root@evil", "SHA256:users-own-ca")];
        let id = identify(&facts(&methods), &config(&["SHA256:ca"], &[]));
        assert_eq!(id.actor, "srt-u");
        assert_eq!(id.actor_source, ActorSource::UnixUser);
        let cert = id.certificate.unwrap();
        assert_eq!(cert.key_id, "root@evil");
        assert!(!cert.ca_trusted);
        // The same key may still be mapped by fingerprint.
        let id = identify(
            &facts(&methods),
            &config(&["SHA256:ca"], &[("SHA256:key", "bob")]),
        );
        assert_eq!(
            (id.actor.as_str(), id.actor_source),
            ("bob", ActorSource::FingerprintMap)
        );
    }

    #[test]
    fn fingerprint_map_then_unix_user() {
        let methods = [
            AuthMethod {
                method: "password".into(),
                key: None,
                info: None,
            },
            plain_key("SHA256:k2"),
        ];
        let id = identify(&facts(&methods), &config(&[], &[("SHA256:k2", "carol")]));
        assert_eq!(id.actor, "carol");
        assert_eq!(id.key_fingerprint.as_deref(), Some("SHA256:k2"));
        assert_eq!(id.auth_methods, vec!["password", "publickey"]);
        let id = identify(&facts(&methods), &config(&[], &[]));
        assert_eq!(
            (id.actor.as_str(), id.actor_source),
            ("srt-u", ActorSource::UnixUser)
        );
    }

    #[test]
    fn trusted_certificate_wins_over_an_earlier_mapped_key() {
        let methods = [
            plain_key("SHA256:k1"),
            cert_key("SHA256:k2", "dave@example.com", "SHA256:ca"),
        ];
        let id = identify(
            &facts(&methods),
            &config(&["SHA256:ca"], &[("SHA256:k1", "mapped")]),
        );
        assert_eq!(id.actor, "dave@example.com");
        assert_eq!(id.key_fingerprint.as_deref(), Some("SHA256:k2"));
    }

    #[test]
    fn ssh_connection_parsing() {
        let e = parse_ssh_connection(b"::1 51234 ::1 22").unwrap();
        assert_eq!(e.src_ip.to_string(), "::1");
        assert!(parse_ssh_connection(b"1.2.3.4 99999 1.2.3.4 22").is_none());
        assert!(parse_ssh_connection(b"1.2.3.4 1 1.2.3.4").is_none());
        assert!(parse_ssh_connection(b"x 1 y 2").is_none());
        assert!(parse_ssh_connection(&[b'1'; 300]).is_none());
    }
}
