//! Imports the kernel's audit records of exec and connect (auditd's log) into the sessions'
//! `audit.jsonl` record files.
//!
//! [`auditlog`] reads auditd's format, [`logfiles`] finds the log and its rotated files,
//! [`tree`] follows process ancestry to channels, [`import`] runs a pass, [`state`] is where
//! it stands.
#![forbid(unsafe_code)]

pub mod auditlog;
pub mod cli;
pub mod import;
pub mod logfiles;
pub mod lost;
pub mod state;
pub mod tree;
