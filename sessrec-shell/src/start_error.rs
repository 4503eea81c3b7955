//! Why a channel did not start, and why its record could not be opened; the message goes to
//! the user's stderr and to syslog.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::path::PathBuf;

use sessrec_core::config::ConfigError;

use crate::invocation::UsageError;

/// A channel that could not start.
#[derive(Debug)]
pub enum StartError {
    /// sshd ran the recorder with a command line it does not take.
    Usage(UsageError),
    /// The configuration cannot be used.
    Config(ConfigError),
    /// No session id could be drawn from the kernel.
    NoSessionId(io::Error),
    /// The record cannot be written and `on_error = deny`.
    RecordUnavailable(RecordUnavailable),
    /// Policy refused the channel (ticket, command length, daily budget).
    Refused(String),
    /// The host or a system call failed while setting the channel up.
    Setup(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Usage(e) => write!(f, "{e}"),
            StartError::Config(e) => write!(f, "configuration error: {e}"),
            StartError::NoSessionId(e) => write!(f, "no session id: {e}"),
            StartError::RecordUnavailable(problem) => write!(
                f,
                "this session must be recorded, but the record cannot be written ({problem}); access refused"
            ),
            StartError::Refused(message) | StartError::Setup(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for StartError {}

/// Why the channel's record cannot be opened before the channel starts.
#[derive(Debug)]
pub enum RecordUnavailable {
    /// The configured `read_group` does not exist.
    NoReadGroup(String),
    /// The session directory under the record root cannot be opened.
    SessionDir { root: PathBuf, source: io::Error },
    /// The free space of the session directory cannot be read.
    FreeSpaceUnknown { dir: PathBuf, source: io::Error },
    /// Less space is free than `min_free_mb`.
    LowSpace {
        dir: PathBuf,
        free_mb: u64,
        min_free_mb: u64,
    },
    /// The recorder's own `session.jsonl` (no PAM grant) cannot be created, started or written.
    OwnSessionFile {
        step: SessionFileStep,
        source: io::Error,
    },
    /// No new channel file can be created in the session directory.
    ChannelFile { dir: PathBuf, source: io::Error },
    /// The channel file was created but its writer cannot start.
    ChannelWriter { path: PathBuf, source: io::Error },
}

/// The step at which the recorder's own `session.jsonl` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionFileStep {
    Create,
    Start,
    Write,
}

impl fmt::Display for RecordUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordUnavailable::NoReadGroup(group) => {
                write!(f, "read_group '{group}' does not exist")
            }
            RecordUnavailable::SessionDir { root, source } => write!(
                f,
                "cannot open the session directory under {}: {source}",
                root.display()
            ),
            RecordUnavailable::FreeSpaceUnknown { dir, source } => {
                write!(f, "cannot check free space in {}: {source}", dir.display())
            }
            RecordUnavailable::LowSpace {
                dir,
                free_mb,
                min_free_mb,
            } => write!(
                f,
                "only {free_mb} MiB free in {} (min_free_mb = {min_free_mb})",
                dir.display()
            ),
            RecordUnavailable::OwnSessionFile { step, source } => {
                let verb = match step {
                    SessionFileStep::Create => "create",
                    SessionFileStep::Start => "start",
                    SessionFileStep::Write => "write",
                };
                write!(f, "cannot {verb} session.jsonl: {source}")
            }
            RecordUnavailable::ChannelFile { dir, source } => write!(
                f,
                "cannot create a channel file in {}: {source}",
                dir.display()
            ),
            RecordUnavailable::ChannelWriter { path, source } => {
                write!(f, "cannot start {}: {source}", path.display())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_failed_where() {
        let low = RecordUnavailable::LowSpace {
            dir: "/var/log/sessrec/x".into(),
            free_mb: 3,
            min_free_mb: 100,
        };
        assert_eq!(
            low.to_string(),
            "only 3 MiB free in /var/log/sessrec/x (min_free_mb = 100)"
        );
        let denied = StartError::RecordUnavailable(RecordUnavailable::OwnSessionFile {
            step: SessionFileStep::Write,
            source: io::Error::from_raw_os_error(libc::ENOSPC),
        });
        let text = denied.to_string();
        assert!(
            text.starts_with("this session must be recorded, but the record cannot be written (cannot write session.jsonl: ")
                && text.ends_with("); access refused"),
            "{text}"
        );
        let config = StartError::Config(ConfigError {
            origin: "/etc/sessrec/sessrec.toml".into(),
            key: Some("max_line_bytes".into()),
            message: "too small".into(),
        });
        assert_eq!(
            config.to_string(),
            "configuration error: /etc/sessrec/sessrec.toml: max_line_bytes: too small"
        );
    }
}
