//! The relay: one thread, poll(2) on nonblocking descriptors, one bounded chunk in flight per
//! direction (so a side that stops reading stops the reading of the other, and memory stays
//! small), every byte recorded in the turn it is read: the pty relay passes a read on first and
//! records it right after (keystroke echo), the pipe relay records first.
//!
//! Each mode is a small state machine over an event registry: the loop decides from its state
//! what to wait for (`registry`), waits once, and hands every readiness to its handler
//! (`pty`, `pipe`). The parts the handlers share each have their file: the chunk per direction
//! (`buffer`), the signal self-pipe (`signals`), the monitor's messages (`monitor`), the idle
//! clock (`idle`), the client's descriptors in pipe mode (`client`) and what the user is told
//! (`notify`). A failed poll ends either relay the same way: as a hangup.
#![forbid(unsafe_code)]

mod buffer;
mod client;
mod forward;
mod idle;
mod monitor;
pub mod notify;
mod pipe;
mod pty;
mod registry;
mod signals;
#[cfg(test)]
mod tests;

pub use client::Client;
pub use forward::ForwardRelay;
pub use idle::IdlePolicy;
pub use pipe::PipeRelay;
pub use pty::PtyRelay;

use serde_json::{Map, Value};

use crate::sys::ExitStatus;

/// Why a channel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The command exited.
    Exit,
    /// The client went away (SIGHUP, terminal or pipe closed).
    Hangup,
    /// SIGTERM (from root).
    Terminated,
    /// `idle_timeout_s` passed without input or output.
    Idle,
    /// The record could not be written (`on_error = "deny"`).
    RecordFailure,
    /// The relay failed unexpectedly (a bug); the record is closed properly all the same.
    InternalError,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Exit => "exit",
            EndReason::Hangup => "hangup",
            EndReason::Terminated => "terminated",
            EndReason::Idle => "idle",
            EndReason::RecordFailure => "record_failure",
            EndReason::InternalError => "internal_error",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub reason: EndReason,
    pub status: Option<ExitStatus>,
}

/// Watches a transfer channel's bytes (see `transfer`); payload is not recorded when present.
pub trait ChannelObserver {
    fn client_to_server(&mut self, now_us: u64, data: &[u8]);
    fn server_to_client(&mut self, now_us: u64, data: &[u8]);
    /// Server→client bytes coming next that the observer only needs counted (a payload it
    /// skips): the relay may move them with splice(2), never through its own memory, and
    /// report them with [`ChannelObserver::server_to_client_skipped`].
    fn server_to_client_skippable(&self) -> usize {
        0
    }
    /// `n` skippable bytes were relayed unseen.
    fn server_to_client_skipped(&mut self, _now_us: u64, _n: usize) {}
    /// Read at most this many server→client bytes next, so that a read stops where skippable
    /// bytes begin; `None`: no limit.
    fn server_to_client_read_limit(&self) -> Option<usize> {
        None
    }
    /// Events ready to be written, as (type, fields).
    fn drain_events(&mut self) -> Vec<(String, Map<String, Value>)>;
    fn finish(&mut self, now_us: u64, exit: Option<i32>);
}
