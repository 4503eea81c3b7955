//! The bastion's own state, sent at a fixed interval so that a central archive can tell a
//! quiet host from a silent one.
#![forbid(unsafe_code)]

use super::event_type;

event_type! {
    /// One heartbeat of `sessrec heartbeat`, in `<record_dir>/host/heartbeat-YYYY-MM-DD.jsonl`.
    pub struct Heartbeat = "host.heartbeat" {
        /// Sessions recorded on the host right now (grants in the grant directory).
        open_sessions: u64,
        /// MiB free for the record tree (to an unprivileged writer).
        record_disk_free_mb: u64,
        /// Seconds the sudo I/O log importer is behind its input (0: caught up); absent when
        /// it has neither input nor state.
        sudo_import_lag: u64,
        /// Seconds the audit importer is behind the audit log; absent likewise.
        audit_import_lag: u64,
        /// Kernel exec auditing: `on`, `off` (auditd not running, auditing disabled or the
        /// sessrec rules not loaded) or `unknown` (auditctl missing or failing).
        exec_audit: String,
        /// The heartbeat interval the timer runs at, in seconds, as configured.
        interval: u64,
    }
}
