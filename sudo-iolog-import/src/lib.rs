//! Imports sudo I/O logs into sessrec session records.
//!
//! [`iolog`] reads sudo's files, [`discover`] finds sessions in an iolog tree.
#![forbid(unsafe_code)]

pub mod discover;
pub mod iolog;
pub mod mask;
pub mod state;
