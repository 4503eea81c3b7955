//! The events that open and close a channel file, and the continuation of a long command.
#![forbid(unsafe_code)]

use super::event_type;

event_type! {
    /// A channel starts: what runs, how, on which terminal, and both clocks.
    pub struct ChannelStart = "channel.start", names in channel_start {
        /// `shell`, `exec`, `transfer` or `forward` (a connect channel).
        kind: String,
        /// `pty` or `pipe`.
        mode: String,
        /// The command's first piece (the whole command when `command_parts` is absent).
        command: String,
        /// The command's exact bytes in base64, when it is not UTF-8.
        command_b64: String,
        /// The command's length in bytes.
        command_bytes: u64,
        /// How many `command.part` lines follow.
        command_parts: u64,
        /// The original length, when an older recorder (or a refusal) cut the command.
        command_truncated: u64,
        /// Transfers: `sftp`, `scp` or `rsync`.
        protocol: String,
        /// Transfers: the argv executed.
        argv: Vec<String>,
        /// A login shell.
        login: bool,
        force_command: bool,
        /// The real shell.
        shell: String,
        uid: u32,
        identity_verified: bool,
        /// Why no grant was claimed, when none was.
        grant: String,
        /// The recorder's pty, e.g. `/dev/pts/7` (ties sudo logs to the channel).
        pty: String,
        term: String,
        cols: u16,
        rows: u16,
        /// The shell's pid (pipe mode: the monitor's).
        pid: i32,
        recorder_pid: i32,
        /// The kernel's audit session id and login uid the recorder runs under (inherited from
        /// sshd's session; the user cannot change them). Absent when unset.
        audit_session: u32,
        loginuid: u32,
        /// `<session>/<N>` of the channel this one was started in, from the process tree.
        parent_channel: String,
        /// `SESSREC_CHANNEL`, only when it disagrees with `parent_channel`.
        parent_channel_hint: String,
        ticket: String,
        /// `taken`, or `nested` inside another recorded channel.
        outer_tty: String,
        outer_tty_path: String,
        recorder_version: String,
        /// CLOCK_MONOTONIC in µs: the origin of every `off`.
        mono_us: u64,
        /// UTC, RFC 3339.
        start_time: String,
        /// `user_budget` when the channel starts with the daily budget spent.
        output_sampled: String,
        user_bytes_today: u64,
        user_budget_bytes: u64,
    }
}

event_type! {
    /// The rest of a command too long for `channel.start`.
    pub struct CommandPart = "command.part", names in command_part {
        /// The field continued (`command`).
        field: String,
        /// 1, 2, ...
        part: u64,
        of: u64,
        /// Of this piece's first byte in the command.
        offset: u64,
        /// The piece as text.
        u: String,
        /// The piece as base64.
        b: String,
    }
}

event_type! {
    /// A channel ends: why, the exit status, the byte counts and the recorder's own usage.
    pub struct ChannelEnd = "channel.end" {
        /// `exit`, `hangup`, `terminated`, `idle`, `record_failure`, `start_failed`,
        /// `internal_error` or `refused`.
        reason: String,
        /// Null when the command did not exit by itself.
        #[serde(deserialize_with = "super::present_or_null")]
        exit_code: Option<i32>,
        signal: i32,
        core_dumped: bool,
        bytes_in: u64,
        bytes_out: u64,
        duration_us: u64,
        /// Output not recorded past the byte cap.
        truncated_output_bytes: u64,
        /// `sessrec kill --message`, as given (control characters included, JSON-escaped).
        admin_message: String,
        /// Who ended the channel with `sessrec kill`.
        ended_by: super::Operator,
        recorder_max_rss_kib: u64,
        recorder_cpu_us: u64,
        /// Transfer payload moved by splice(2).
        spliced_bytes_out: u64,
    }
}
