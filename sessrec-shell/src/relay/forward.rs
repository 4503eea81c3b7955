//! The connect channel's relay: the client's stdin → the destination socket, the socket → the
//! client's stdout, half-closes passed on both ways. Bytes are counted, and written to the
//! PCAP file when the policy keeps them; nothing goes into the channel's JSON record but the
//! `forward.*` lines the caller writes. Same shape as the other relays: the loop says what to
//! wait for from its state, waits once and hands each readiness to its handler.
#![forbid(unsafe_code)]

use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use super::buffer::{Chunk, Filled};
use super::client::Client;
use super::registry::{timeout_ms, Registry};
use super::signals::Signals;
use crate::forward::pcap::{PcapWriter, Side};
use crate::recording::ChannelRecorder;
use crate::sys::Interest;

/// Read size each way: bulk data in few system calls.
const FORWARD_CHUNK: usize = 256 * 1024;

pub struct ForwardRelay<'a> {
    pub client: Client,
    pub socket: TcpStream,
    pub signal_fd: BorrowedFd<'a>,
    pub recorder: &'a mut ChannelRecorder,
    pub pcap: Option<PcapWriter>,
    /// Payload bytes the PCAP file may hold; later ones are counted, not written.
    pub pcap_cap: u64,
}

/// How a forwarded connection ended, and what crossed it.
pub struct ForwardEnd {
    pub to_destination: u64,
    pub from_destination: u64,
    /// `closed`, `client_gone`, `destination_reset`, `error`, `record_failure`, `terminated`.
    pub result: &'static str,
    pub reason: Option<String>,
    pub pcap: Option<PcapWriter>,
    pub pcap_truncated: u64,
    /// Why the PCAP file stopped being written, when it did.
    pub pcap_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ForwardEvent {
    Signal,
    ClientInput,
    SocketWritable,
    SocketInput,
    ClientWritable,
}

impl ForwardRelay<'_> {
    pub fn run(mut self) -> ForwardEnd {
        let mut up = Chunk::with_capacity(FORWARD_CHUNK);
        let mut down = Chunk::with_capacity(FORWARD_CHUNK);
        let (mut up_open, mut down_open) = (true, true);
        let mut end = ForwardEnd {
            to_destination: 0,
            from_destination: 0,
            result: "closed",
            reason: None,
            pcap: None,
            pcap_truncated: 0,
            pcap_error: None,
        };
        let mut pcap_payload: u64 = 0;
        let mut result: Option<&'static str> = None;
        while result.is_none() && (up_open || !up.is_empty() || down_open || !down.is_empty()) {
            let mut reg = Registry::new();
            reg.want(self.signal_fd, Interest::Readable, ForwardEvent::Signal);
            let sock = self.socket.as_fd();
            reg.want_if(
                up_open && up.is_empty(),
                Some(self.client.input.as_fd()),
                Interest::Readable,
                ForwardEvent::ClientInput,
            );
            reg.want_if(
                !up.is_empty(),
                Some(sock),
                Interest::Writable,
                ForwardEvent::SocketWritable,
            );
            reg.want_if(
                down_open && down.is_empty(),
                Some(sock),
                Interest::Readable,
                ForwardEvent::SocketInput,
            );
            reg.want_if(
                !down.is_empty(),
                Some(self.client.output.as_fd()),
                Interest::Writable,
                ForwardEvent::ClientWritable,
            );
            let now = Instant::now();
            let events = match reg.wait(timeout_ms(now, &[self.recorder.deadline()])) {
                Ok(events) => events,
                Err(e) => {
                    end.reason = Some(format!("poll failed: {e}"));
                    result = Some("error");
                    break;
                }
            };
            self.recorder.tick(Instant::now());
            if self.recorder.must_stop() {
                result = Some("record_failure");
                break;
            }
            for event in events {
                match event {
                    ForwardEvent::Signal => {
                        let s = Signals::read_from(self.signal_fd);
                        if s.term || s.hup {
                            result = Some(if s.term { "terminated" } else { "client_gone" });
                        }
                    }
                    ForwardEvent::ClientInput => {
                        match up.fill_from(self.client.input.as_fd(), FORWARD_CHUNK) {
                            Ok(Filled::Bytes(n)) => {
                                end.to_destination += n as u64;
                                self.recorder.count_unrecorded(n, 0);
                                self.capture(Side::Client, up.data(), &mut pcap_payload, &mut end);
                                if let Err(e) = up.drain_to(&self.socket) {
                                    end.reason = Some(format!("writing to the destination: {e}"));
                                    result = Some("destination_reset");
                                }
                            }
                            Ok(Filled::End) => {
                                up_open = false;
                                let _ = self.socket.shutdown(Shutdown::Write);
                                self.fin(Side::Client, &mut end);
                            }
                            Ok(Filled::NotReady) => {}
                            Err(e) => {
                                end.reason = Some(format!("reading from the client: {e}"));
                                result = Some("client_gone");
                            }
                        }
                    }
                    ForwardEvent::SocketWritable => {
                        if let Err(e) = up.drain_to(&self.socket) {
                            end.reason = Some(format!("writing to the destination: {e}"));
                            result = Some("destination_reset");
                        } else if !up_open && up.is_empty() {
                            let _ = self.socket.shutdown(Shutdown::Write);
                        }
                    }
                    ForwardEvent::SocketInput => {
                        match down.fill_from(&self.socket, FORWARD_CHUNK) {
                            Ok(Filled::Bytes(n)) => {
                                end.from_destination += n as u64;
                                self.recorder.count_unrecorded(0, n);
                                self.capture(
                                    Side::Server,
                                    down.data(),
                                    &mut pcap_payload,
                                    &mut end,
                                );
                                if let Err(e) = down.drain_to(self.client.output.as_fd()) {
                                    end.reason = Some(format!("writing to the client: {e}"));
                                    result = Some("client_gone");
                                }
                            }
                            Ok(Filled::End) => {
                                down_open = false;
                                let _ = self.client.output.close();
                                self.fin(Side::Server, &mut end);
                            }
                            Ok(Filled::NotReady) => {}
                            Err(e) => {
                                end.reason = Some(format!("reading from the destination: {e}"));
                                result = Some("destination_reset");
                            }
                        }
                    }
                    ForwardEvent::ClientWritable => {
                        if let Err(e) = down.drain_to(self.client.output.as_fd()) {
                            end.reason = Some(format!("writing to the client: {e}"));
                            result = Some("client_gone");
                        } else if !down_open && down.is_empty() {
                            let _ = self.client.output.close();
                        }
                    }
                }
                if result.is_some() {
                    break;
                }
            }
        }
        end.result = result.unwrap_or("closed");
        end.pcap = self.pcap.take();
        end
    }

    /// Writes bytes into the PCAP file while it has room; a failing file stops the capture
    /// (the connection goes on; the close line says why).
    fn capture(&mut self, side: Side, data: &[u8], written: &mut u64, end: &mut ForwardEnd) {
        let Some(pcap) = self.pcap.as_mut() else {
            return;
        };
        if *written + data.len() as u64 > self.pcap_cap {
            end.pcap_truncated += data.len() as u64;
            return;
        }
        *written += data.len() as u64;
        if let Err(e) = pcap.data(side, data) {
            end.pcap_error = Some(e.to_string());
            self.pcap = None;
        }
    }

    fn fin(&mut self, side: Side, end: &mut ForwardEnd) {
        if let Some(Err(e)) = self.pcap.as_mut().map(|p| p.fin(side)) {
            end.pcap_error = Some(e.to_string());
            self.pcap = None;
        }
    }
}
