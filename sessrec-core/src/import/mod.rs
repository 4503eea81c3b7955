//! What the importers (sudo-iolog-import, sessrec-audit-import) share: the index of login
//! sessions they attribute to, their state file and lock, resuming a record file across
//! passes, and opening the files they read as root.

pub mod cli;
pub mod index;
pub mod resume;
pub mod store;
pub mod trusted;
