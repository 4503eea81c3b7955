//! Who read the records: the lines of the access log, the operator they name, and the request
//! `sessrec kill` leaves for a recorder.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::event_type;

/// The person behind an operator command, as the kernel and the login knew them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Operator {
    /// Real uid of the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The kernel's login uid (`/proc/self/loginuid`): who logged in, whatever `sudo` or `su`
    /// came after. Absent when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loginuid: Option<u32>,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_user: Option<String>,
    /// The kernel's audit session id (`/proc/self/sessionid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_session: Option<u32>,
    /// The person, when the command runs inside a login recorded on this host (found through
    /// the login's grant, whose sshd monitor is an ancestor of the command): its actor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// How that actor was established (`certificate`, `fingerprint-map`, `unix-user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_source: Option<String>,
    /// That recorded login's session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_session: Option<String>,
    /// The terminal of the command's standard input, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// For a read through the web console (`sessrec-web`): the client's address and port. The
    /// console's logged-in auditor is then `user` and `uid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
    /// For a request that came through a trusted reverse proxy of the console: the proxy's
    /// address and port (`remote_addr` is then the client that proxy named in
    /// `X-Forwarded-For`, without a port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_addr: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

event_type! {
    /// One read of record content (`show`, `play`, `export`, `search`, `verify`), one `kill`
    /// or one `prune`, in the access log `<record_dir>/access/access-YYYY-MM-DD.jsonl`.
    pub struct Access = "access" {
        /// The subcommand.
        command: String,
        /// Its arguments, as given (escaped).
        args: Vec<String>,
        /// Sessions the command read or ended; for a tree-wide command (`search`,
        /// `verify --all`), the sessions it looked at.
        sessions: Vec<String>,
        /// How many sessions that is (also when a very long list had to be cut).
        session_count: u64,
        /// The record tree read.
        record_dir: String,
        operator: Operator,
    }
}

/// What `sessrec kill` leaves in `/run/sessrec/kill/<recorder pid>` (JSON) for the recorder:
/// the message to show and record, and who ended the channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KillRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<Operator>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
