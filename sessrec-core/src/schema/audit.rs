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
