//! Events of a connect channel (`ssh bastion connect HOST PORT`): the recorder's own forwarded
//! TCP connection, allowed by the `[forward]` policy or refused.
#![forbid(unsafe_code)]

use super::event_type;

event_type! {
    /// The policy's answer to a forwarding request, and the connection the recorder opened.
    pub struct ForwardOpen = "forward.open", names in forward_open {
        /// The host as the user named it (a DNS name or an address).
        destination: String,
        port: u16,
        /// The address the recorder connected to (or would have).
        address: String,
        /// `connected`, `refused` (by the policy), `unresolved` (no address for the name) or
        /// `failed` (the destination did not accept).
        result: String,
        /// Why it was refused or failed.
        reason: String,
        /// The `[forward]` destination entry that allowed it, as written.
        rule: String,
        /// Whether the bytes are kept as PCAP.
        record_payload: bool,
        /// The PCAP file in the session directory, when they are.
        pcap: String,
        /// The bastion's own address and port of the connection.
        local_address: String,
        local_port: u16,
    }
}

event_type! {
    /// A forwarded connection ended.
    pub struct ForwardClose = "forward.close", names in forward_close {
        destination: String,
        port: u16,
        address: String,
        /// Bytes from the client to the destination and back.
        bytes_to_destination: u64,
        bytes_from_destination: u64,
        duration_us: u64,
        /// `closed` (both sides ended), `client_gone`, `destination_reset`, `error`, `idle`
        /// (no bytes either way for `idle_timeout_s`), `record_failure` or `terminated`.
        result: String,
        reason: String,
        /// The destination's PCAP file (shared by the login's connections to it), its size
        /// right after this connection's last append, and the SHA-256 (hex) of the file's first
        /// `pcap_bytes` bytes.
        pcap: String,
        pcap_bytes: u64,
        pcap_sha256: String,
        /// Packets left out of the PCAP after `max_channel_bytes` (the connection went on).
        pcap_truncated_bytes: u64,
    }
}
