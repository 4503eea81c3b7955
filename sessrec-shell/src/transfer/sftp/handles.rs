//! The files and directories the server has handed out handles for, and the events they
//! end in.
#![forbid(unsafe_code)]

use super::codes::{open_flags_text, status_name, FXF_READ, FXF_WRITE};
use super::events::set_status;
use crate::transfer::event::{
    self, octal_mode, Direction, Protocol, TransferEvent, WireField, WireText,
};
use crate::transfer::wire::Reader;

/// Handles are at most 256 bytes (draft-ietf-secsh-filexfer-02 §6.2).
const MAX_HANDLE_BYTES: usize = 256;

/// A file or directory the server has handed out a handle for.
pub(super) struct OpenFile {
    pub(super) path: WireText,
    pub(super) is_dir: bool,
    pub(super) pflags: u32,
    pub(super) mode: Option<u32>,
    pub(super) started_us: u64,
    pub(super) bytes_read: u64,
    pub(super) bytes_written: u64,
    pub(super) reads: u64,
    pub(super) writes: u64,
    pub(super) entries: u64,
    pub(super) errors: u64,
    pub(super) first_error: Option<(u32, WireText)>,
    /// Reads and writes recorded without their outcome (memory budget exceeded).
    pub(super) untracked: u64,
    pub(super) bytes_unconfirmed: u64,
}

impl OpenFile {
    pub(super) fn note_error(&mut self, code: u32, text: &[u8]) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some((code, WireText::new(text, event::MAX_TEXT_BYTES)));
        }
    }

    pub(super) fn direction(&self) -> Option<Direction> {
        match (self.reads > 0, self.writes > 0) {
            (true, false) => Some(Direction::Download),
            (false, true) => Some(Direction::Upload),
            (true, true) => None,
            (false, false) if self.pflags & FXF_WRITE != 0 => Some(Direction::Upload),
            (false, false) if self.pflags & FXF_READ != 0 => Some(Direction::Download),
            (false, false) => None,
        }
    }

    /// The event for this file once it is closed (or abandoned, with `close` = None).
    pub(super) fn into_event(self, now_us: u64, close: Option<(u32, &[u8])>) -> TransferEvent {
        let mut ev = TransferEvent::new(Protocol::Sftp, if self.is_dir { "list" } else { "open" });
        ev.set_wire(WireField::Path, &self.path);
        if self.is_dir {
            ev.entries = Some(self.entries);
        } else {
            let direction = match self.direction() {
                Some(d) => d.as_str(),
                None if self.reads > 0 => "both",
                None => "none",
            };
            ev.direction = Some(direction.to_owned());
            ev.open_flags = Some(open_flags_text(self.pflags));
            ev.mode = self.mode.map(octal_mode);
            ev.bytes_read = Some(self.bytes_read);
            ev.bytes_written = Some(self.bytes_written);
        }
        match close {
            Some((code, text)) => set_status(&mut ev, code, text),
            None => {
                ev.status = Some("incomplete".to_owned());
                ev.closed = Some(false);
            }
        }
        if self.untracked > 0 {
            ev.untracked_ops = Some(self.untracked);
            ev.bytes_written_unconfirmed = Some(self.bytes_unconfirmed);
        }
        if self.errors > 0 {
            ev.io_errors = Some(self.errors);
            if let Some((code, text)) = &self.first_error {
                ev.io_error_status = Some(status_name(*code));
                ev.set_wire(WireField::IoErrorText, text);
            }
        }
        ev.started_us = Some(self.started_us);
        ev.duration_us = Some(now_us.saturating_sub(self.started_us));
        ev
    }

    pub(super) fn cost(&self) -> usize {
        self.path.cost() + 256
    }
}

/// A handle from a request. sftp-server answers a handle longer than any it issues with a
/// failure status and carries on, so such a handle is not malformed: it is kept as the empty
/// handle, which matches no open file.
pub(super) fn handle(r: &mut Reader<'_>) -> Option<Vec<u8>> {
    let h = r.string()?;
    Some(if h.len() <= MAX_HANDLE_BYTES {
        h.to_vec()
    } else {
        Vec::new()
    })
}
