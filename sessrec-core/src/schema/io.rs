//! What crossed the channel: I/O frames, window sizes, and input withheld as a likely password.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::event_type;

event_type! {
    /// Reads of the channel's streams, as a frame list.
    pub struct Io = "io", names in io_fields {
        frames: Vec<Frame>,
        /// Input typed in password mode and not withheld, or after masking was suspended.
        echo_off: bool,
        /// The part of a withheld line past `mask_line_max_bytes`.
        mask_limit: bool,
    }
}

/// One read of a stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    /// µs on CLOCK_MONOTONIC since `channel.start` (or since sudo started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off: Option<u64>,
    /// `i` input, `o` output, `e` a pipe channel's stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<String>,
    /// The bytes as UTF-8 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u: Option<String>,
    /// The bytes in base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

event_type! {
    /// The terminal's size changed.
    pub struct Resize = "resize" {
        cols: u32,
        rows: u32,
        off: u64,
        /// Sudo records: when it happened (RFC 3339).
        at: String,
    }
}

event_type! {
    /// Input withheld as a likely password.
    pub struct InputMasked = "input.masked" {
        bytes: u64,
        off: u64,
        /// `password_mode` or `prompt` (recorder), `password_prompt` (sudo import).
        reason: String,
        /// Sudo records: the stream (`i`, or `o` for an echoed password).
        s: String,
        /// Sudo records: when it happened (RFC 3339).
        at: String,
    }
}

event_type! {
    /// Masking armed too often: nothing typed later in the channel is withheld.
    pub struct MaskingSuspended = "masking_suspended" {
        armings: u64,
        window_s: u64,
        off: u64,
        /// A sentence.
        reason: String,
    }
}
