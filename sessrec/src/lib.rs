//! The sessrec operator CLI: list, show, play, export, verify, search, kill, prune, doctor.
//!
//! Everything read from a record is treated as hostile: terminal output passes through
//! [`sanitize`] before it reaches the operator's terminal, and record-derived strings through
//! [`escape`].
#![forbid(unsafe_code)]

pub mod access;
pub mod args;
pub mod auditcount;
pub mod capture_check;
pub mod cast;
pub mod catalog;
pub mod central;
pub mod cli;
pub mod compress;
pub mod conceal;
pub mod context;
pub mod doctor;
pub mod entry;
pub mod escape;
pub mod eventtext;
pub mod execs;
pub mod export;
pub mod filters;
pub mod follow;
pub mod forward_sshd;
pub mod forward_view;
pub mod gate;
pub mod geometry;
pub mod heartbeat;
pub mod hold;
pub mod hosts;
pub mod html;
pub mod integrity;
pub mod kernel_audit;
pub mod kill;
pub mod lineedit;
pub mod list;
pub mod live;
pub mod output;
pub mod parallel;
pub mod play;
pub mod playlist;
pub mod playstatus;
pub mod prefilter;
pub mod prune;
pub mod receive;
pub mod records;
pub mod sanitize;
pub mod search;
pub mod show;
pub mod store;
pub mod summary;
pub mod timespec;
pub mod transcript;
pub mod typed;
pub mod utf8;
pub mod verdict;
pub mod verdict_cache;
pub mod verify;
