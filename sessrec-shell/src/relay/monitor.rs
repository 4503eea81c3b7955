//! The recorder's side of the pipe-mode monitor's message pipe (see `spawn`): every message is
//! decoded once, as a [`MonitorMessage`], and each kind has its one place here.
#![forbid(unsafe_code)]

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use sessrec_core::sys::{syslog_authpriv, Level};

use crate::spawn::{MonitorMessage, MONITOR_MESSAGE_LEN};
use crate::sys::{self, ExitStatus, Pid};

/// What the monitor has told the recorder so far.
pub struct MonitorLink {
    fd: Option<OwnedFd>,
    /// Bytes of a message not yet complete.
    pending: Vec<u8>,
    /// The command's pid (`CommandStarted`).
    command: Option<Pid>,
    /// How the command ended (`CommandEnded`).
    status: Option<ExitStatus>,
}

impl MonitorLink {
    pub fn new(fd: OwnedFd) -> Self {
        MonitorLink {
            fd: Some(fd),
            pending: Vec::with_capacity(MONITOR_MESSAGE_LEN),
            command: None,
            status: None,
        }
    }

    /// The pipe to wait on, while it is open.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|f| f.as_fd())
    }

    pub fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// The pipe is readable: takes one read's worth of messages.
    pub fn on_readable(&mut self) {
        if let Some(fd) = self.fd.as_ref() {
            let mut buf = [0u8; 64];
            match sys::read(fd, &mut buf) {
                Ok(0) | Err(_) => self.fd = None,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
            }
        }
        self.take_messages();
    }

    /// The monitor is gone: takes every message it left.
    pub fn on_monitor_exit(&mut self) {
        if let Some(fd) = self.fd.as_ref() {
            let mut buf = [0u8; 64];
            while let Ok(n) = sys::read(fd, &mut buf) {
                if n == 0 {
                    break;
                }
                self.pending.extend_from_slice(&buf[..n]);
            }
            self.take_messages();
        }
        if self.status.is_none() {
            let command = self
                .command
                .map_or_else(|| "not started".to_string(), |pid| format!("pid {pid}"));
            syslog_authpriv(
                Level::Warning,
                &format!(
                    "the pipe-mode monitor ended without the command's exit status (command {command})"
                ),
            );
        }
    }

    fn take_messages(&mut self) {
        while let Some(bytes) = self.pending.first_chunk::<MONITOR_MESSAGE_LEN>() {
            match MonitorMessage::decode(*bytes) {
                Some(MonitorMessage::CommandStarted(pid)) => self.command = Some(pid),
                Some(MonitorMessage::CommandEnded(wait_status)) => {
                    self.status = Some(ExitStatus::from_wait_status(wait_status));
                }
                // Only this recorder's own monitor writes here; an unknown tag is skipped whole.
                None => {}
            }
            self.pending.drain(..MONITOR_MESSAGE_LEN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(tag: u8, value: i32) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&value.to_ne_bytes());
        m
    }

    #[test]
    fn messages_are_taken_whole_and_each_kind_is_kept() {
        let (r, w) = sys::pipe().unwrap();
        sys::set_nonblocking(&r).unwrap();
        let mut link = MonitorLink::new(r);
        let started = message(b'P', 4242);
        let ended = message(b'S', 3 << 8);
        // A message split across reads waits for its rest.
        let mut first = started.clone();
        first.extend_from_slice(&ended[..2]);
        sys::write(&w, &first).unwrap();
        link.on_readable();
        assert_eq!(link.command, Some(Pid::from_raw(4242)));
        assert_eq!(link.status(), None);
        sys::write(&w, &ended[2..]).unwrap();
        link.on_readable();
        assert_eq!(link.status(), Some(ExitStatus::Code(3)));
        assert!(link.pending.is_empty());
    }

    #[test]
    fn an_unknown_tag_is_skipped_without_losing_the_next_message() {
        let (r, w) = sys::pipe().unwrap();
        sys::set_nonblocking(&r).unwrap();
        let mut link = MonitorLink::new(r);
        let mut bytes = message(b'X', 7);
        bytes.extend(message(b'S', 9));
        sys::write(&w, &bytes).unwrap();
        link.on_readable();
        assert_eq!(
            link.status(),
            Some(ExitStatus::Signal {
                signal: 9,
                core_dumped: false
            })
        );
    }

    #[test]
    fn what_a_gone_monitor_left_is_read_to_the_end() {
        let (r, w) = sys::pipe().unwrap();
        sys::set_nonblocking(&r).unwrap();
        let mut link = MonitorLink::new(r);
        let mut bytes = message(b'P', 1);
        bytes.extend(message(b'S', 0));
        sys::write(&w, &bytes).unwrap();
        drop(w);
        link.on_monitor_exit();
        assert_eq!(link.status(), Some(ExitStatus::Code(0)));
        // End of file closes the link.
        link.on_readable();
        assert!(link.fd().is_none());
    }
}
