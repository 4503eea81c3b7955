//! auditd's log format: lines ([`record`]) and what an event's records say ([`event`]).
//!
//! Field names here are auditd's, not sessrec's record fields.
#![forbid(unsafe_code)]

pub mod event;
pub mod record;

#[cfg(test)]
mod tests;
