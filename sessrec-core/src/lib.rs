//! Shared pieces of sessrec: configuration, the record format (one type per event, in
//! [`schema`]), the record writer and reader,
//! session ids, identity and grant types, and the few OS calls they need.
//!
//! Everything here is used by code that runs setuid root or inside sshd, so it is written to
//! never panic on bad input and to report problems as values.

pub mod access_log;
pub mod bounds;
pub mod budget;
pub mod chain;
pub mod command;
pub mod config;
pub mod exec_args;
pub mod flush_policy;
pub mod forward;
pub mod frames;
pub mod glob;
pub mod grant;
pub mod id;
pub mod identity;
pub mod import;
pub mod pcap;
pub mod reader;
pub mod record;
pub mod schema;
pub mod stored;
pub mod sys;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod time;
pub mod tree;
pub mod writer;

/// Version of this build, recorded in `channel.start` and `login` lines.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
