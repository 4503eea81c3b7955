//! What the writers say about the recording itself and to the user: notices, errors, and output
//! sampling.
#![forbid(unsafe_code)]

use super::event_type;

event_type! {
    /// Something the recorder noticed or told the user.
    pub struct Notice = "notice" {
        message: String,
        off: u64,
        /// The notice that input typed with echo off is recorded.
        echo_off: bool,
        /// The warning before an idle channel is ended.
        idle_warning: bool,
    }
}

event_type! {
    /// Whether the channel's user was shown `[recorder] notice`: on every pty channel it is
    /// written to the terminal before the command runs (`shown`, the exact `text`); on a pipe
    /// channel it is not, because its bytes belong to the command (`reason`).
    pub struct UserNotice = "user_notice", names in user_notice {
        shown: bool,
        /// The text as the terminal got it (`{session}` replaced).
        text: String,
        /// Why it was not shown: `no_terminal` or `not_configured`.
        reason: String,
        off: u64,
    }
}

event_type! {
    /// A recording problem.
    pub struct Error = "error" {
        message: String,
        /// Under `on_error = "allow"`: the channel goes on without a record.
        continues_unrecorded: bool,
        /// The writer's own problems (a cut-off last line, a line too large), and the module's.
        error: String,
        /// Bytes of an incomplete last line removed when the file was continued.
        removed_bytes: u64,
    }
}

event_type! {
    /// Output is sampled from here on (`reason`, `limit`), or a second's skipped output
    /// (`second`, `skipped_bytes`).
    pub struct Truncated = "truncated" {
        /// `max_channel_bytes` or `user_budget`.
        reason: String,
        limit: u64,
        off: u64,
        message: String,
        second: u64,
        skipped_bytes: u64,
    }
}
