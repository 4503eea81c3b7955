//! The recorder's seam to the transfer decoder (`transfer`): which commands are transfers
//! (executed directly, payload not recorded unless `[transfer] record_payload`) and the
//! per-channel observer that turns their bytes into `transfer` events.
#![forbid(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use serde_json::{Map, Value};
use sessrec_core::config::Config;
use sessrec_core::schema::{EventBody, Transfer};

use crate::relay::ChannelObserver;
use crate::transfer::{self, TransferCommand, TransferEvent, TransferMonitor};

/// `Some` when `command` is an allow-listed transfer; its argv[0] is absolute.
pub fn classify(command: &OsStr, has_tty: bool, config: &Config) -> Option<TransferCommand> {
    transfer::classify(command.to_str()?, has_tty, &config.transfer)
}

/// The environment a transfer program runs with: `env` (what an ordinary command would get)
/// reduced to an allow-list, so nothing the user can set or write in their home directory
/// changes what the program does (see `transfer::transfer_environment`).
pub fn environment(env: Vec<(OsString, OsString)>) -> Vec<(OsString, OsString)> {
    transfer::transfer_environment(env)
}

/// The absolute program of a transfer argv.
pub fn resolve_program(program: &str) -> Option<PathBuf> {
    let path = PathBuf::from(program);
    path.is_absolute().then_some(path)
}

/// The observer for a transfer channel.
pub fn observer(transfer: &TransferCommand) -> Box<dyn ChannelObserver> {
    Box::new(TransferObserver {
        monitor: TransferMonitor::new(transfer),
        pending: Vec::new(),
    })
}

struct TransferObserver {
    monitor: TransferMonitor,
    pending: Vec<TransferEvent>,
}

impl ChannelObserver for TransferObserver {
    fn client_to_server(&mut self, now_us: u64, data: &[u8]) {
        self.monitor.client_to_server(now_us, data);
    }

    fn server_to_client(&mut self, now_us: u64, data: &[u8]) {
        self.monitor.server_to_client(now_us, data);
    }

    fn server_to_client_skippable(&self) -> usize {
        self.monitor.server_to_client_skippable()
    }

    fn server_to_client_skipped(&mut self, now_us: u64, n: usize) {
        self.monitor.server_to_client_skipped(now_us, n);
    }

    fn server_to_client_read_limit(&self) -> Option<usize> {
        self.monitor.server_to_client_read_limit()
    }

    fn drain_events(&mut self) -> Vec<(String, Map<String, Value>)> {
        let mut events = std::mem::take(&mut self.pending);
        events.extend(self.monitor.drain_events());
        events
            .into_iter()
            .map(|e| (Transfer::TYPE.to_owned(), e.to_fields()))
            .collect()
    }

    fn finish(&mut self, now_us: u64, exit: Option<i32>) {
        let last = self.monitor.finish(now_us, exit);
        self.pending.extend(last);
    }
}
