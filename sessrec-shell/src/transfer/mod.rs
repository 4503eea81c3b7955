//! File-transfer channels: recognising them, and auditing what they move without the payload.
//!
//! A pure library: it never touches file descriptors. The recorder drives it:
//!
//! 1. **Classify** once, before starting the channel's command:
//!    `classify(command, has_tty, &config.transfer)` with `command` = the string after `-c`
//!    (in ForceCommand mode: `SSH_ORIGINAL_COMMAND`) and `has_tty` = fd 0 is a terminal.
//!    `None`: an ordinary exec channel (full I/O recording). `Some(cmd)`: a transfer; run
//!    `cmd.argv` with `execve` (`argv[0]` is an absolute path), never through a shell, in pipe
//!    mode, with the environment `transfer_environment` leaves (an allow-list: the programs
//!    read `RSYNC_*`, `~/.popt` and more), and record `channel.start` with kind `transfer`.
//! 2. **Observe**: `TransferMonitor::new(&cmd)`, then for every chunk relayed, in relay order:
//!    `client_to_server(now_us, bytes)` for bytes read from the client (sshd) and written to the
//!    command's stdin, and `server_to_client(now_us, bytes)` for bytes read from the command's
//!    stdout. Call each as the chunk is relayed (before reading further from the other side), so
//!    a request is always seen before its reply. `now_us` is the channel's µs offset
//!    (CLOCK_MONOTONIC since `channel.start`). Stderr is not protocol data: record it as usual.
//!    These calls never block, never fail and never hold data back.
//! 3. **Record**: after each relayed chunk (or at each flush), `drain_events()`, and write each
//!    as its typed line (a `TransferEvent` is a `schema::Transfer`: `writer.write(&*ev)`).
//! 4. **End**: at channel end, `finish(now_us, exit_status)` returns the last events, including
//!    a `summary`; write them before `channel.end`. `exit_status` is the command's exit code
//!    (or 128 + signal), `None` if unknown.
//!
//! Payload bytes are never kept or returned; `[transfer] record_payload` is the recorder's
//! business. Field names are documented in `FORMAT.md` beside this file.
#![forbid(unsafe_code)]

mod classify;
mod environment;
mod event;
mod rsync;
mod scp;
mod sftp;
mod wire;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod live_tests;

pub use classify::{classify, Operands, TransferCommand, TransferKind};
pub use environment::transfer_environment;
#[cfg(test)]
use event::Direction;
pub use event::TransferEvent;
use event::{Protocol, WireField};
#[cfg(test)]
use sessrec_core::config::TransferConfig;

use rsync::RsyncCommand;
use scp::ScpDecoder;
use sftp::SftpDecoder;

/// Longest command line kept in the summary.
const MAX_COMMAND_BYTES: usize = 16 * 1024;

enum Decoder {
    Sftp(Box<SftpDecoder>),
    Scp(Box<ScpDecoder>),
    Rsync(RsyncCommand),
}

/// Watches one transfer channel. See the module documentation for when to call what.
pub struct TransferMonitor {
    kind: TransferKind,
    command: String,
    decoder: Decoder,
    bytes_from_client: u64,
    bytes_to_client: u64,
    first_us: Option<u64>,
    finished: bool,
}

impl TransferMonitor {
    pub fn new(cmd: &TransferCommand) -> Self {
        let decoder = match (cmd.kind, &cmd.operands) {
            (TransferKind::Scp { direction }, Operands::Scp { path, recursive }) => Decoder::Scp(
                Box::new(ScpDecoder::new(direction, path.as_bytes(), *recursive)),
            ),
            (TransferKind::Rsync { .. }, Operands::Rsync { options, paths }) => {
                Decoder::Rsync(RsyncCommand::new(options.clone(), paths.clone()))
            }
            // `classify` gives sftp operands with the sftp kind only.
            _ => Decoder::Sftp(Box::default()),
        };
        TransferMonitor {
            kind: cmd.kind,
            command: cmd.argv.join(" "),
            decoder,
            bytes_from_client: 0,
            bytes_to_client: 0,
            first_us: None,
            finished: false,
        }
    }

    /// Bytes the recorder relays from the client to the command's stdin.
    pub fn client_to_server(&mut self, now_us: u64, bytes: &[u8]) {
        self.first_us.get_or_insert(now_us);
        self.bytes_from_client += bytes.len() as u64;
        match &mut self.decoder {
            Decoder::Sftp(d) => d.client_to_server(now_us, bytes),
            Decoder::Scp(d) => d.client_to_server(now_us, bytes),
            Decoder::Rsync(_) => {}
        }
    }

    /// Bytes the recorder relays from the command's stdout to the client.
    pub fn server_to_client(&mut self, now_us: u64, bytes: &[u8]) {
        self.first_us.get_or_insert(now_us);
        self.bytes_to_client += bytes.len() as u64;
        match &mut self.decoder {
            Decoder::Sftp(d) => d.server_to_client(now_us, bytes),
            Decoder::Scp(d) => d.server_to_client(now_us, bytes),
            Decoder::Rsync(_) => {}
        }
    }

    /// Server→client bytes coming next that need only be counted: a DATA payload for SFTP,
    /// a downloaded file's data for scp, everything for rsync (only its byte counts are
    /// recorded).
    pub fn server_to_client_skippable(&self) -> usize {
        match &self.decoder {
            Decoder::Sftp(d) => d.server_to_client_skippable(),
            Decoder::Scp(d) => d.server_to_client_skippable(),
            Decoder::Rsync(_) => usize::MAX,
        }
    }

    /// `n` skippable server→client bytes were relayed without being seen.
    pub fn server_to_client_skipped(&mut self, now_us: u64, n: usize) {
        self.first_us.get_or_insert(now_us);
        self.bytes_to_client += n as u64;
        match &mut self.decoder {
            Decoder::Sftp(d) => d.server_to_client_skipped(now_us, n),
            Decoder::Scp(d) => d.server_to_client_skipped(now_us, n),
            Decoder::Rsync(_) => {}
        }
    }

    /// At most this many server→client bytes should be read next (see
    /// [`Self::server_to_client_skippable`]); `None`: no limit.
    pub fn server_to_client_read_limit(&self) -> Option<usize> {
        match &self.decoder {
            Decoder::Sftp(d) => d.server_to_client_read_limit(),
            Decoder::Scp(_) | Decoder::Rsync(_) => None,
        }
    }

    /// Operations completed since the last call.
    pub fn drain_events(&mut self) -> Vec<TransferEvent> {
        match &mut self.decoder {
            Decoder::Sftp(d) => d.take_events(),
            Decoder::Scp(d) => d.take_events(),
            Decoder::Rsync(_) => Vec::new(),
        }
    }

    /// The channel ended. Returns the remaining events and a `summary`; later calls return nothing.
    pub fn finish(&mut self, now_us: u64, exit_status: Option<i32>) -> Vec<TransferEvent> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        let (protocol, mut events, decoded) = match &mut self.decoder {
            Decoder::Sftp(d) => {
                d.finish(now_us);
                (Protocol::Sftp, d.take_events(), !d.stopped())
            }
            Decoder::Scp(d) => {
                d.finish(now_us);
                (Protocol::Scp, d.take_events(), !d.stopped())
            }
            Decoder::Rsync(_) => (Protocol::Rsync, Vec::new(), true),
        };
        let mut summary = TransferEvent::new(protocol, "summary");
        summary.set_wire(
            WireField::Command,
            &event::WireText::new(self.command.as_bytes(), MAX_COMMAND_BYTES),
        );
        match self.kind {
            TransferKind::Scp { direction } | TransferKind::Rsync { direction } => {
                summary.direction = Some(direction.as_str().to_owned());
            }
            TransferKind::Sftp => {}
        }
        if let Decoder::Rsync(r) = &self.decoder {
            r.describe(&mut summary);
        }
        summary.bytes_from_client = Some(self.bytes_from_client);
        summary.bytes_to_client = Some(self.bytes_to_client);
        summary.exit_status = exit_status;
        let status = match exit_status {
            Some(0) => "ok",
            Some(_) => "failed",
            None => "unknown",
        };
        summary.status = Some(status.to_owned());
        if protocol != Protocol::Rsync {
            summary.decoded = Some(decoded);
        }
        let started = self.first_us.unwrap_or(now_us);
        summary.started_us = Some(started);
        summary.duration_us = Some(now_us.saturating_sub(started));
        events.push(summary);
        events
    }

    /// Memory the monitor holds for decoding (framing buffers, outstanding requests); tests
    /// bound it.
    #[cfg(test)]
    pub fn buffered_bytes(&self) -> usize {
        match &self.decoder {
            Decoder::Sftp(d) => d.buffered_bytes(),
            Decoder::Scp(d) => d.buffered_bytes(),
            Decoder::Rsync(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &str) -> TransferCommand {
        classify(s, false, &TransferConfig::default()).expect("a transfer")
    }

    #[test]
    fn scp_operand_and_recursion_come_from_the_argv() {
        let scp = |s: &str| match cmd(s).operands {
            Operands::Scp { path, recursive } => (path, recursive),
            other => panic!("{other:?}"),
        };
        assert_eq!(scp("scp -r -t /x"), ("/x".into(), true));
        assert_eq!(scp("scp -prf /x"), ("/x".into(), true));
        assert_eq!(scp("scp -v -t -- -r"), ("-r".into(), false));
    }

    #[test]
    fn finish_reports_once_with_the_byte_counts() {
        let mut m = TransferMonitor::new(&cmd("rsync --server -logDtpre.iLsfxCIvu . /tmp/dest/"));
        m.client_to_server(10, b"abc");
        m.server_to_client(20, b"defgh");
        assert!(m.drain_events().is_empty());
        let events = m.finish(110, Some(0));
        assert_eq!(events.len(), 1);
        let f = events[0].to_fields();
        assert_eq!(f["op"], "summary");
        assert_eq!(f["protocol"], "rsync");
        assert_eq!(f["direction"], "upload");
        assert_eq!(f["bytes_from_client"], 3);
        assert_eq!(f["bytes_to_client"], 5);
        assert_eq!(f["status"], "ok");
        assert_eq!(f["duration_us"], 100);
        assert!(m.finish(120, Some(0)).is_empty());
    }
}
