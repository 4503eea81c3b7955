//! Imports the kernel's audit records of exec and connect (auditd's log) into the sessions'
//! `audit.jsonl` record files.
//!
//! [`auditlog`] reads auditd's format, [`logfiles`] finds the log and its rotated files,
//! [`tree`] follows process ancestry to channels, [`import`] runs a pass, [`state`] is where
//! it stands. [`sockdiag`] asks the kernel about TCP sockets (their end and byte counts), with
//! its FFI in `sys`, the one module that may hold `unsafe`.

pub mod auditlog;
pub mod cli;
pub mod closes;
pub mod import;
pub mod logfiles;
pub mod lost;
pub mod sockdiag;
pub mod state;
mod sys;
pub mod tree;
