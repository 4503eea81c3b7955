//! What crossed the channel: I/O frames, window sizes, and input withheld as a likely password.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::event_type;

event_type! {
    /// Reads of the channel's streams: compact (schema 2, see [`super::timing`]: `off`, `t`
    /// and the streams' bytes), or as a frame list (schema 1, and lines written by hand).
    pub struct Io = "io", names in io_fields {
        /// Schema 1: one entry per read.
        frames: Vec<Frame>,
        /// µs since `channel.start` of the line's first read.
        off: u64,
        /// The timing string: where each read starts and how long it is.
        t: String,
        /// Input, output and stderr bytes as text.
        i: String,
        o: String,
        e: String,
        /// Input, output and stderr bytes in base64, one padded piece per read.
        i_b64: String,
        o_b64: String,
        e_b64: String,
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

/// The stream an I/O frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// What the user typed or sent (a pty's input, a pipe channel's stdin).
    Input,
    /// What the user saw (a pty's output, a pipe channel's stdout).
    Output,
    /// A pipe channel's stderr.
    Stderr,
}

impl Stream {
    pub fn code(self) -> &'static str {
        match self {
            Stream::Input => "i",
            Stream::Output => "o",
            Stream::Stderr => "e",
        }
    }

    pub fn from_code(code: &str) -> Option<Stream> {
        match code {
            "i" => Some(Stream::Input),
            "o" => Some(Stream::Output),
            "e" => Some(Stream::Stderr),
            _ => None,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Stream::Input => 0,
            Stream::Output => 1,
            Stream::Stderr => 2,
        }
    }
}
