//! Readers for sudo's I/O log format (sudo 1.8.x–1.9.x).
//!
//! One I/O log session is a directory holding `log` and/or `log.json` (metadata), `timing`
//! (the event list) and up to five stream files. Every reader here is pure: it takes bytes or a
//! path and returns values or an error naming the problem; nothing is written.
#![forbid(unsafe_code)]

pub mod meta;
pub mod stream;
pub mod timing;

pub use meta::{IologMeta, MetaError, MetaSource, StartTime};
pub use stream::{open_stream, StreamKind, StreamReader};
pub use timing::{TimingError, TimingEvent, TimingParser};
pub mod session;
pub use session::{Decoded, FileIdentity, IologSession, ReplayMode, ReplayOutcome, SessionError};

#[cfg(test)]
pub(crate) mod fixture_tests;
