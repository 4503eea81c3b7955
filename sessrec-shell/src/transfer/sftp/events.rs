//! Event pieces shared by operations: a reply's status, an open that failed, and what
//! keeping an event costs.
#![forbid(unsafe_code)]

use super::codes::{open_flags_text, status_name, FXF_WRITE, FX_OK};
use crate::transfer::event::{octal_mode, Direction, Protocol, TransferEvent, WireText};

pub(super) fn set_status(ev: &mut TransferEvent, code: u32, text: &[u8]) {
    ev.set("status", status_name(code)).set("status_code", code);
    if code != FX_OK && !text.is_empty() {
        ev.set_text("status_text", text);
    }
}

/// The event for an open that produced no handle.
pub(super) fn open_failure_event(path: WireText, pflags: u32, mode: Option<u32>) -> TransferEvent {
    let mut ev = TransferEvent::new(Protocol::Sftp, "open");
    ev.set_wire("path", &path);
    let direction = if pflags & FXF_WRITE != 0 {
        Direction::Upload
    } else {
        Direction::Download
    };
    ev.set("direction", direction.as_str())
        .set("open_flags", open_flags_text(pflags));
    if let Some(mode) = mode {
        ev.set("mode", octal_mode(mode));
    }
    ev
}

pub(super) fn event_cost(ev: &TransferEvent) -> usize {
    [
        "path",
        "path_hex",
        "target",
        "target_hex",
        "user",
        "extension",
    ]
    .iter()
    .filter_map(|k| ev.get(k).and_then(|v| v.as_str()).map(str::len))
    .sum::<usize>()
        + 128
}
