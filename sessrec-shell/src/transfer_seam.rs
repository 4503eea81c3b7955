//! The recorder's seam to the transfer decoder: which commands are transfers (executed
//! directly, payload not recorded) and the per-channel observer that turns their bytes into
//! `transfer` events.
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::path::PathBuf;

use sessrec_core::config::Config;

use crate::relay::ChannelObserver;

/// `Some((protocol, argv))` when `command` is an allow-listed transfer; argv[0] is absolute.
pub fn classify(
    _command: &OsStr,
    _has_tty: bool,
    _config: &Config,
) -> Option<(&'static str, Vec<String>)> {
    None
}

/// The absolute program of a transfer argv.
pub fn resolve_program(program: &str) -> Option<PathBuf> {
    let path = PathBuf::from(program);
    path.is_absolute().then_some(path)
}

/// The observer for a transfer channel.
pub fn observer(_protocol: &str, _argv: &[String]) -> Option<Box<dyn ChannelObserver>> {
    None
}
