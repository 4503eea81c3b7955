//! Events of `audit.jsonl`, written by sessrec-audit-import from the kernel's audit records:
//! what actually ran in a session and where it connected, and where that record has holes.
#![forbid(unsafe_code)]

use super::event_type;

event_type! {
    /// One `execve`/`execveat` of a process of the session, as the kernel audited it.
    pub struct Exec = "exec", names in exec {
        /// When the kernel saw it (RFC 3339); a line's `time` is when it was imported.
        at: String,
        /// The audit event id, `<seconds>.<millis>:<serial>` (as `ausearch -a` takes it).
        audit_id: String,
        /// `execve` or `execveat`.
        syscall: String,
        pid: u32,
        ppid: u32,
        /// The channel file whose process tree ran it (`channel-N.jsonl`), when known.
        channel: String,
        /// The pid in that channel's tree it was placed by: the channel's own process or the
        /// nearest audited ancestor.
        channel_via: u32,
        uid: u32,
        euid: u32,
        suid: u32,
        fsuid: u32,
        gid: u32,
        egid: u32,
        /// The login uid (the login's user, whatever uid it runs as now).
        auid: u32,
        /// The kernel audit session id.
        ses: u32,
        /// True when it ran with effective uid 0 (through sudo, su or a setuid program).
        root: bool,
        /// The user names of `uid`/`euid`, from the host's user database at import.
        user_name: String,
        euser_name: String,
        /// The terminal, as the kernel names it (`pts3`), or `(none)`.
        tty: String,
        /// The process name the kernel reports (at most 15 bytes).
        comm: String,
        /// The program's path.
        exe: String,
        cwd: String,
        /// The path of the file named to execve, as the kernel resolved it.
        path: String,
        /// Whether the exec succeeded; `exit` is the syscall's return value (0 or -errno) and
        /// `errno` its name.
        success: bool,
        exit: i64,
        errno: String,
        /// The number of arguments.
        argc: u64,
        /// The arguments, when all are UTF-8 and fit the line beside the other fields.
        argv: Vec<String>,
        /// Otherwise the arguments joined by NUL bytes (as /proc/PID/cmdline, without the
        /// last NUL), carried whole by the long-field rules (`cmdline_b64`, `cmdline_bytes`,
        /// `cmdline_parts` and `command.part` lines with `field` = `cmdline`).
        cmdline: String,
        /// Why the arguments are not complete (the kernel logged fewer than `argc`, or pieces
        /// are missing); absent when they are.
        argv_problem: String,
        /// The audit rule key that selected the event.
        key: String,
    }
}

event_type! {
    /// One `connect` of a process of the session to an IPv4 or IPv6 address.
    pub struct Connect = "connect", names in connect {
        at: String,
        audit_id: String,
        pid: u32,
        ppid: u32,
        channel: String,
        channel_via: u32,
        uid: u32,
        euid: u32,
        auid: u32,
        ses: u32,
        root: bool,
        comm: String,
        exe: String,
        /// `inet` or `inet6`.
        family: String,
        address: String,
        port: u16,
        /// `connected`, `in_progress` (a non-blocking connect still underway) or `failed`.
        result: String,
        success: bool,
        exit: i64,
        errno: String,
        key: String,
    }
}

event_type! {
    /// The end of a TCP connection a `connect` line recorded, from the kernel's own account
    /// of the socket (sock_diag): its close notification with the final `tcp_info` counters.
    /// Written by a following importer (`sessrec-audit-import --follow`), which listens for
    /// the kernel's close notifications; `result` = `unknown` says plainly when the end was
    /// not seen.
    pub struct ConnectEnd = "connect.end", names in connect_end {
        /// When the kernel freed the socket (RFC 3339; read within `[audit] poll_ms`), or for
        /// `unknown` when the importer found it gone.
        at: String,
        /// The `audit_id` of the `connect` line it ends.
        audit_id: String,
        /// The connecting process, its channel and program, as on the `connect` line.
        pid: u32,
        channel: String,
        exe: String,
        /// The destination and the bastion's own end of the connection.
        address: String,
        port: u16,
        local_address: String,
        local_port: u16,
        /// `closed` (the kernel reported the socket freed, with its final counters) or
        /// `unknown` (the end was not seen; `reason` says why).
        result: String,
        reason: String,
        /// Payload bytes the destination acknowledged, and payload bytes received from it
        /// (the kernel's sequence-space counters less the SYN and FINs).
        bytes_to_destination: u64,
        bytes_from_destination: u64,
        /// From the `connect` (its `at`) to `at`.
        duration_us: u64,
        /// The kernel's counters as read: `tcpi_bytes_acked`, `tcpi_bytes_received`,
        /// `tcpi_bytes_sent` and `tcpi_bytes_retrans`.
        tcpi_bytes_acked: u64,
        tcpi_bytes_received: u64,
        tcpi_bytes_sent: u64,
        tcpi_bytes_retrans: u64,
        /// How the socket was tied to the `connect`: `socket` (the connecting fd's socket inode,
        /// read while it was open, names the kernel socket) or `destination_time` (it was
        /// freed before that: the only socket to that destination freed after the connect).
        matched_by: String,
        /// The kernel's socket cookie.
        cookie: u64,
    }
}

event_type! {
    /// A stretch of time in which the audit record of this session may have holes: events the
    /// kernel or auditd lost, or a log that went away before it was read.
    pub struct AuditGap = "audit_gap", names in audit_gap {
        /// The stretch (RFC 3339); `from` is the last moment known to be complete.
        from: String,
        to: String,
        /// `lost` (the kernel's lost counter grew), `backlog` (the kernel's backlog overflowed),
        /// `daemon_abort`, `daemon_end`, `daemon_resume`, `daemon_rotate` or `rotated_away` (a
        /// log file was gone before it was read whole).
        reason: String,
        /// Events known to be lost, when the kernel says how many.
        lost: u64,
        /// What was seen, e.g. the daemon record or the missing file.
        detail: String,
    }
}
