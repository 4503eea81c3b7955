//! Imports sudo I/O logs into sessrec session records.
//!
//! [`iolog`] reads sudo's files, [`discover`] finds sessions in an iolog tree.
#![forbid(unsafe_code)]

pub mod audit_match;
pub mod cli;
pub mod correlate;
pub mod discover;
pub mod import;
pub mod iolog;
pub mod live;
pub mod mask;
pub mod run;
pub mod state;
