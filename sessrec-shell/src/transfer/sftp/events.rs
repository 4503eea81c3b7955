//! Event pieces shared by operations: a reply's status, an open that failed, and what
//! keeping an event costs.
#![forbid(unsafe_code)]

use super::codes::{open_flags_text, status_name, FXF_WRITE, FX_OK};
use crate::transfer::event::{octal_mode, Direction, Protocol, TransferEvent, WireField, WireText};

pub(super) fn set_status(ev: &mut TransferEvent, code: u32, text: &[u8]) {
    ev.status = Some(status_name(code));
    ev.status_code = Some(code);
    if code != FX_OK && !text.is_empty() {
        ev.set_text(WireField::StatusText, text);
    }
}

/// The event for an open that produced no handle.
pub(super) fn open_failure_event(path: WireText, pflags: u32, mode: Option<u32>) -> TransferEvent {
    let mut ev = TransferEvent::new(Protocol::Sftp, "open");
    ev.set_wire(WireField::Path, &path);
    let direction = if pflags & FXF_WRITE != 0 {
        Direction::Upload
    } else {
        Direction::Download
    };
    ev.direction = Some(direction.as_str().to_owned());
    ev.open_flags = Some(open_flags_text(pflags));
    ev.mode = mode.map(octal_mode);
    ev
}

pub(super) fn event_cost(ev: &TransferEvent) -> usize {
    ev.text_bytes() + 128
}
