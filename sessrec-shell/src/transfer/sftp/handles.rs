//! The files and directories the server has handed out handles for, and the events they
//! end in.
#![forbid(unsafe_code)]

use super::codes::{open_flags_text, status_name, FXF_READ, FXF_WRITE};
use super::events::set_status;
use crate::transfer::event::{self, octal_mode, Direction, Protocol, TransferEvent, WireText};
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
        ev.set_wire("path", &self.path);
        if self.is_dir {
            ev.set("entries", self.entries);
        } else {
            match self.direction() {
                Some(d) => ev.set("direction", d.as_str()),
                None if self.reads > 0 => ev.set("direction", "both"),
                None => ev.set("direction", "none"),
            };
            ev.set("open_flags", open_flags_text(self.pflags));
            if let Some(mode) = self.mode {
                ev.set("mode", octal_mode(mode));
            }
            ev.set("bytes_read", self.bytes_read)
                .set("bytes_written", self.bytes_written);
        }
        match close {
            Some((code, text)) => set_status(&mut ev, code, text),
            None => {
                ev.set("status", "incomplete").set("closed", false);
            }
        }
        if self.untracked > 0 {
            ev.set("untracked_ops", self.untracked);
            ev.set("bytes_written_unconfirmed", self.bytes_unconfirmed);
        }
        if self.errors > 0 {
            ev.set("io_errors", self.errors);
            if let Some((code, text)) = &self.first_error {
                ev.set("io_error_status", status_name(*code));
                ev.set_wire("io_error_text", text);
            }
        }
        ev.set("started_us", self.started_us)
            .set("duration_us", now_us.saturating_sub(self.started_us));
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
