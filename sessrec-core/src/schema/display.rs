//! Which fields of each event type a view states first and which are bookkeeping: kept with
//! the types so that the views are driven by the schema (a test in the CLI walks every field of
//! every type against these lists).
#![forbid(unsafe_code)]

use super::{
    ChannelEnd, ChannelStart, EventBody, InputMasked, Login, Logout, Resize, SudoEnd, SudoStart,
    Transfer,
};

/// The fields a view states in an event's one-line sentence (`show`); every other field is
/// listed after it as `name=value`, except the [`bookkeeping_fields`].
pub fn headline_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        Login::TYPE => &[
            "actor_source",
            "verified",
            "src_ip",
            "src_port",
            "dst_ip",
            "dst_port",
            "service",
            "auth_methods",
            "key_type",
            "key_fingerprint",
            "certificate",
        ],
        Logout::TYPE => &["duration_us", "channels", "unclaimed"],
        ChannelStart::TYPE => &[
            "kind",
            "mode",
            "pty",
            "term",
            "ticket",
            "cols",
            "rows",
            "parent_channel",
            "command",
            "command_b64",
            "command_bytes",
            "command_parts",
            "command_truncated",
        ],
        ChannelEnd::TYPE => &[
            "reason",
            "exit_code",
            "signal",
            "core_dumped",
            "bytes_in",
            "bytes_out",
            "admin_message",
        ],
        SudoStart::TYPE => &["runuser", "command"],
        SudoEnd::TYPE => &["bytes_in", "bytes_out"],
        Transfer::TYPE => &["protocol", "op", "direction", "path"],
        InputMasked::TYPE => &["bytes", "reason"],
        Resize::TYPE => &["cols", "rows"],
        _ => &[],
    }
}

/// Fields a view shows only on request (`show --verbose`, and always in `--json`): the
/// recorder's own bookkeeping. Types without a list of their own: their `off` and `at`.
pub fn bookkeeping_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        Login::TYPE => &[
            "uid",
            "rhost",
            "auth",
            "launch",
            "shell",
            "config",
            "monitor_pid",
            "audit_session",
            "loginuid",
            "boot_id",
            "module_version",
            "established_by",
            "ssh_connection_hint",
        ],
        Logout::TYPE => &["login_time"],
        ChannelStart::TYPE => &[
            "protocol",
            "argv",
            "login",
            "force_command",
            "shell",
            "uid",
            "identity_verified",
            "pid",
            "recorder_pid",
            "audit_session",
            "loginuid",
            "outer_tty",
            "outer_tty_path",
            "recorder_version",
            "mono_us",
            "start_time",
            "user_bytes_today",
            "user_budget_bytes",
        ],
        ChannelEnd::TYPE => &[
            "duration_us",
            "recorder_max_rss_kib",
            "recorder_cpu_us",
            "spliced_bytes_out",
        ],
        SudoStart::TYPE => &[
            "at",
            "submithost",
            "rungroup",
            "argv",
            "runcwd",
            "runchroot",
            "rows",
            "cols",
            "iolog_path",
            "iolog_meta",
            "sudo_uuid",
            "match_candidates",
            "channel",
        ],
        SudoEnd::TYPE => &["at", "off", "duration_us", "records"],
        Transfer::TYPE => &["started_us"],
        InputMasked::TYPE => &["off", "at", "s"],
        Resize::TYPE => &["off", "at"],
        _ => &["off", "at"],
    }
}
