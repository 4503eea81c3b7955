//! Events of `session.jsonl`: the login and the logout.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::event_type;

event_type! {
    /// Who logged in, how that is known, and the connection. Written by pam_sessrec, or by the
    /// recorder when no PAM grant vouched for the session.
    pub struct Login = "login" {
        /// `certificate`, `fingerprint-map` or `unix-user`.
        actor_source: String,
        /// False when no PAM grant vouched for the session.
        verified: bool,
        uid: u32,
        /// The PAM service.
        service: String,
        rhost: String,
        src_ip: String,
        src_port: u16,
        dst_ip: String,
        dst_port: u16,
        auth_methods: Vec<String>,
        /// One entry per method, with its key details.
        auth: Vec<AuthMethod>,
        key_type: String,
        /// SHA256, as `ssh-keygen -l` prints it.
        key_fingerprint: String,
        certificate: Certificate,
        /// Why sshd's authentication information could not be parsed.
        auth_info_error: String,
        /// `login-shell` or `force-command`.
        launch: String,
        /// The passwd shell.
        shell: String,
        /// The configuration file the module read.
        config: String,
        /// The sshd monitor process.
        monitor_pid: u32,
        /// The kernel's audit session id of the login (`ses` in audit records; set by
        /// `pam_loginuid` before this module runs), with the login uid it set and the boot it
        /// belongs to (`ses` counts from 1 again after a reboot). Absent when unset.
        audit_session: u32,
        loginuid: u32,
        boot_id: String,
        module_version: String,
        /// `sessrec-shell` when the recorder wrote the line.
        established_by: String,
        /// Why the recorder found no grant.
        unverified_reason: String,
        /// `SSH_CONNECTION` as the environment gave it (a hint: the user can set it).
        ssh_connection_hint: ConnectionHint,
    }
}

event_type! {
    /// The end of the login, with the state of every channel file.
    pub struct Logout = "logout" {
        /// When the login was (RFC 3339).
        login_time: String,
        duration_us: u64,
        /// No recorder claimed the login's grant: nothing was recorded.
        unclaimed: bool,
        /// Why the login was refused, when it was.
        refused: String,
        channels: Vec<LogoutChannel>,
    }
}

/// A channel file's state at logout.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogoutChannel {
    /// `channel-N.jsonl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// Hex SHA-256 of its last line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// No `channel.end` yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<bool>,
    /// Why the file could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One authentication method of a login, with its key details.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthMethod {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_bits: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
    /// sshd's text for a method without a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An OpenSSH certificate presented at login.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    /// `user` or `host` (in `auth` entries).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub cert_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principals: Option<Vec<String>>,
    /// Seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_after: Option<u64>,
    /// Seconds since the epoch (u64::MAX = forever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_before: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_options: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_key_type: Option<String>,
    /// SHA256 fingerprint of the signing CA key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_fingerprint: Option<String>,
    /// Whether that CA is in `identity.trusted_user_cas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_trusted: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The connection as `SSH_CONNECTION` named it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectionHint {
    #[serde(default)]
    pub src_ip: Option<String>,
    #[serde(default)]
    pub src_port: Option<u16>,
    #[serde(default)]
    pub dst_ip: Option<String>,
    #[serde(default)]
    pub dst_port: Option<u16>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
