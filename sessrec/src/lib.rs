//! The sessrec operator CLI: list, show, play, export, verify, search, kill, prune, doctor.
#![forbid(unsafe_code)]

pub mod escape;
pub mod sanitize;
pub mod timespec;
