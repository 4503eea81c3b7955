//! Who logged in, and how we know: established by the PAM module, carried by the grant, and
//! written into the `login` line.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::schema::{self, EventBody, Login};

/// How the `actor` was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActorSource {
    /// The key id of a certificate signed by a CA in `identity.trusted_user_cas`.
    Certificate,
    /// The key fingerprint, mapped through `identity.fingerprints`.
    FingerprintMap,
    /// Only the unix user name is known.
    UnixUser,
}

impl ActorSource {
    /// As the `login` line's `actor_source` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorSource::Certificate => "certificate",
            ActorSource::FingerprintMap => "fingerprint-map",
            ActorSource::UnixUser => "unix-user",
        }
    }
}

/// An OpenSSH user certificate presented at login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Certificate {
    pub key_id: String,
    pub serial: u64,
    pub principals: Vec<String>,
    /// Seconds since the epoch (0 = from the beginning of time).
    pub valid_after: u64,
    /// Seconds since the epoch (u64::MAX = forever).
    pub valid_before: u64,
    /// SHA256 fingerprint of the signing CA key.
    pub ca_fingerprint: String,
    /// Whether that CA is in `identity.trusted_user_cas`.
    pub ca_trusted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The person: see `actor_source`.
    pub actor: String,
    pub actor_source: ActorSource,
    /// False when no PAM grant vouched for this session (the recorder started it alone).
    pub verified: bool,
    pub user: String,
    pub uid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rhost: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    /// e.g. `["publickey"]`, `["publickey", "keyboard-interactive"]`.
    #[serde(default)]
    pub auth_methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
}

impl Identity {
    /// An identity nobody vouched for: just the unix user.
    pub fn unverified(user: &str, uid: u32) -> Identity {
        Identity {
            actor: user.to_string(),
            actor_source: ActorSource::UnixUser,
            verified: false,
            user: user.to_string(),
            uid,
            service: None,
            rhost: None,
            src_ip: None,
            src_port: None,
            dst_ip: None,
            dst_port: None,
            auth_methods: Vec::new(),
            key_type: None,
            key_fingerprint: None,
            certificate: None,
        }
    }

    /// The identity as a `login` line (without `user`/`actor`, which every line has).
    pub fn to_login(&self) -> Login {
        Login {
            actor_source: Some(self.actor_source.as_str().into()),
            verified: Some(self.verified),
            uid: Some(self.uid),
            service: self.service.clone(),
            rhost: self.rhost.clone(),
            src_ip: self.src_ip.clone(),
            src_port: self.src_port,
            dst_ip: self.dst_ip.clone(),
            dst_port: self.dst_port,
            auth_methods: Some(self.auth_methods.clone()),
            key_type: self.key_type.clone(),
            key_fingerprint: self.key_fingerprint.clone(),
            certificate: self.certificate.as_ref().map(|c| schema::Certificate {
                key_id: Some(c.key_id.clone()),
                serial: Some(c.serial),
                principals: Some(c.principals.clone()),
                valid_after: Some(c.valid_after),
                valid_before: Some(c.valid_before),
                ca_fingerprint: Some(c.ca_fingerprint.clone()),
                ca_trusted: Some(c.ca_trusted),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The identity as fields of a `login` line (see [`Identity::to_login`]).
    pub fn to_fields(&self) -> Map<String, Value> {
        self.to_login().to_fields().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut id = Identity::unverified("srt-a", 1001);
        id.src_ip = Some("203.0.113.7".into());
        id.certificate = Some(Certificate {
            key_id: "alice@example.com".into(),
            ..Default::default()
        });
        let f = id.to_fields();
        assert_eq!(f["actor_source"], "unix-user");
        assert_eq!(f["verified"], false);
        assert_eq!(f["src_ip"], "203.0.113.7");
        assert!(!f.contains_key("dst_ip"));
        let back: Identity = serde_json::from_value(serde_json::to_value(&id).unwrap()).unwrap();
        assert_eq!(back, id);
    }

    #[test]
    fn the_login_line_has_the_identity_as_serde_writes_it() {
        let mut id = Identity::unverified("srt-a", 1001);
        id.actor_source = ActorSource::FingerprintMap;
        id.src_port = Some(2222);
        id.auth_methods = vec!["publickey".into()];
        id.key_type = Some("ssh-ed25519".into());
        id.certificate = Some(Certificate {
            key_id: "alice@example.com".into(),
            principals: vec!["alice".into()],
            ca_trusted: true,
            ..Default::default()
        });
        let mut serde_fields = match serde_json::to_value(&id).unwrap() {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        serde_fields.remove("user");
        serde_fields.remove("actor");
        assert_eq!(id.to_fields(), serde_fields);
        for source in [
            ActorSource::Certificate,
            ActorSource::FingerprintMap,
            ActorSource::UnixUser,
        ] {
            assert_eq!(serde_json::to_value(source).unwrap(), source.as_str());
        }
    }
}
