//! The connect channel's relay: the client's stdin → the destination socket, the socket → the
//! client's stdout, half-closes passed on both ways. Bytes are counted, and written to the
//! PCAP file when the policy keeps them; nothing goes into the channel's JSON record but the
//! `forward.*` lines the caller writes. Same shape as the other relays: the loop says what to
//! wait for from its state, waits once and hands each readiness to its handler.
//!
//! Without a PCAP file the bytes never pass through this process: each direction moves them
//! with splice(2) through a pipe of its own (pages moved inside the kernel). With one, they
//! are read and written, since the file needs them.
#![forbid(unsafe_code)]

use std::io;
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use super::buffer::{would_block, Chunk, Filled};
use super::client::Client;
use super::idle::{IdleClock, IdlePolicy};
use super::registry::{timeout_ms, Registry};
use super::signals::Signals;
use crate::recording::ChannelRecorder;
use crate::sys::{self, Interest};
use sessrec_core::pcap::{PcapWriter, Side};

/// Read size each way: bulk data in few system calls.
const FORWARD_CHUNK: usize = 256 * 1024;
/// The pipe each spliced direction moves its bytes through.
const SPLICE_PIPE: usize = 1 << 20;

/// How one direction carries its bytes.
enum Carrier {
    /// Read into memory, then written (the PCAP file needs the bytes).
    Copy(Chunk),
    /// splice(2) into a pipe, and from it to the other side; `pending` bytes sit in the pipe.
    Splice {
        read: OwnedFd,
        write: OwnedFd,
        pending: usize,
    },
}

/// One direction of the connection.
struct Lane {
    /// Its source has not ended.
    open: bool,
    carrier: Carrier,
}

impl Lane {
    fn new(copy: bool) -> Lane {
        let carrier = if copy {
            Carrier::Copy(Chunk::with_capacity(FORWARD_CHUNK))
        } else {
            match sys::pipe().and_then(|(read, write)| {
                sys::set_nonblocking(&read)?;
                sys::set_nonblocking(&write)?;
                let _ = sys::grow_pipe(&write, SPLICE_PIPE);
                Ok((read, write))
            }) {
                Ok((read, write)) => Carrier::Splice {
                    read,
                    write,
                    pending: 0,
                },
                Err(_) => Carrier::Copy(Chunk::with_capacity(FORWARD_CHUNK)),
            }
        };
        Lane {
            open: true,
            carrier,
        }
    }

    fn is_empty(&self) -> bool {
        match &self.carrier {
            Carrier::Copy(chunk) => chunk.is_empty(),
            Carrier::Splice { pending, .. } => *pending == 0,
        }
    }

    /// The bytes just read, when they pass through memory.
    fn data(&self) -> Option<&[u8]> {
        match &self.carrier {
            Carrier::Copy(chunk) => Some(chunk.data()),
            Carrier::Splice { .. } => None,
        }
    }

    /// Takes bytes from `from` (only when empty). A source that takes no splice turns the
    /// lane into a copying one.
    fn fill(&mut self, from: BorrowedFd<'_>) -> io::Result<Filled> {
        match &mut self.carrier {
            Carrier::Copy(chunk) => chunk.fill_from(from, FORWARD_CHUNK),
            Carrier::Splice { write, pending, .. } => match sys::splice(from, &*write, SPLICE_PIPE)
            {
                Ok(0) => Ok(Filled::End),
                Ok(n) => {
                    *pending = n;
                    Ok(Filled::Bytes(n))
                }
                Err(e) if would_block(&e) => Ok(Filled::NotReady),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    self.carrier = Carrier::Copy(Chunk::with_capacity(FORWARD_CHUNK));
                    self.fill(from)
                }
                Err(e) => Err(e),
            },
        }
    }

    /// Passes on as much as `to` takes. `Ok(true)` once everything is passed on.
    fn drain(&mut self, to: BorrowedFd<'_>) -> io::Result<bool> {
        match &mut self.carrier {
            Carrier::Copy(chunk) => chunk.drain_to(to),
            Carrier::Splice { read, pending, .. } => {
                while *pending > 0 {
                    match sys::splice(&*read, to, *pending) {
                        Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                        Ok(n) => *pending -= n,
                        Err(e) if would_block(&e) => return Ok(false),
                        Err(e) => return Err(e),
                    }
                }
                Ok(true)
            }
        }
    }
}

pub struct ForwardRelay<'a> {
    pub client: Client,
    pub socket: TcpStream,
    pub signal_fd: BorrowedFd<'a>,
    pub recorder: &'a mut ChannelRecorder,
    pub pcap: Option<PcapWriter>,
    /// Payload bytes the PCAP file may hold; later ones are counted, not written.
    pub pcap_cap: u64,
    /// A connection with no bytes either way for its timeout is closed. No warning: the
    /// client's stdout is the forwarded stream, where nothing but the destination's bytes
    /// may appear.
    pub idle: IdlePolicy,
}

/// How a forwarded connection ended, and what crossed it.
pub struct ForwardEnd {
    pub to_destination: u64,
    pub from_destination: u64,
    /// `closed`, `client_gone`, `destination_reset`, `error`, `idle`, `record_failure`,
    /// `terminated`.
    pub result: &'static str,
    pub reason: Option<String>,
    pub pcap: Option<PcapWriter>,
    pub pcap_truncated: u64,
    /// Why the PCAP file stopped being written, when it did.
    pub pcap_error: Option<String>,
}

/// A handler's verdict: go on, or end the connection with a result and a reason.
type Step = Result<(), (&'static str, Option<String>)>;

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
        let copy = self.pcap.is_some();
        let mut up = Lane::new(copy);
        let mut down = Lane::new(copy);
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
        let mut idle = IdleClock::new(self.idle, Instant::now());
        let mut result: Option<&'static str> = None;
        while result.is_none() && (up.open || !up.is_empty() || down.open || !down.is_empty()) {
            let mut reg = Registry::new();
            reg.want(self.signal_fd, Interest::Readable, ForwardEvent::Signal);
            let sock = self.socket.as_fd();
            reg.want_if(
                up.open && up.is_empty(),
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
                down.open && down.is_empty(),
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
            let deadlines = [self.recorder.deadline(), idle.expires_at()];
            let events = match reg.wait(timeout_ms(now, &deadlines)) {
                Ok(events) => events,
                Err(e) => {
                    end.reason = Some(format!("poll failed: {e}"));
                    result = Some("error");
                    break;
                }
            };
            let now = Instant::now();
            self.recorder.tick(now);
            if self.recorder.must_stop() {
                result = Some("record_failure");
                break;
            }
            // Bytes read or written either way (or an end of file) are activity.
            let active = events.iter().any(|e| *e != ForwardEvent::Signal);
            for event in events {
                let outcome = match event {
                    ForwardEvent::Signal => {
                        let s = Signals::read_from(self.signal_fd);
                        match (s.term, s.hup) {
                            (true, _) => Err(("terminated", None)),
                            (_, true) => Err(("client_gone", None)),
                            _ => Ok(()),
                        }
                    }
                    ForwardEvent::ClientInput => {
                        self.on_client_input(&mut up, &mut end, &mut pcap_payload)
                    }
                    ForwardEvent::SocketWritable => self.pass_up(&mut up),
                    ForwardEvent::SocketInput => {
                        self.on_socket_input(&mut down, &mut end, &mut pcap_payload)
                    }
                    ForwardEvent::ClientWritable => self.pass_down(&mut down),
                };
                if let Err((why, reason)) = outcome {
                    result = Some(why);
                    end.reason = reason;
                    break;
                }
            }
            if active {
                idle.activity(now);
            } else if result.is_none() && idle.expired(now) {
                let secs = self.idle.timeout.map_or(0, |t| t.as_secs());
                end.reason = Some(format!("idle timeout: no bytes either way for {secs} s"));
                result = Some("idle");
            }
        }
        end.result = result.unwrap_or("closed");
        end.pcap = self.pcap.take();
        end
    }

    /// The client sent bytes (or ended): on to the destination.
    fn on_client_input(&mut self, up: &mut Lane, end: &mut ForwardEnd, pcap: &mut u64) -> Step {
        match up.fill(self.client.input.as_fd()) {
            Ok(Filled::Bytes(n)) => {
                end.to_destination += n as u64;
                self.recorder.count_unrecorded(n, 0);
                if let Some(data) = up.data() {
                    self.capture(Side::Client, data, pcap, end);
                }
                self.pass_up(up)
            }
            Ok(Filled::End) => {
                up.open = false;
                self.fin(Side::Client, end);
                self.pass_up(up)
            }
            Ok(Filled::NotReady) => Ok(()),
            Err(e) => Err(("client_gone", Some(format!("reading from the client: {e}")))),
        }
    }

    /// The destination sent bytes (or ended): on to the client.
    fn on_socket_input(&mut self, down: &mut Lane, end: &mut ForwardEnd, pcap: &mut u64) -> Step {
        match down.fill(self.socket.as_fd()) {
            Ok(Filled::Bytes(n)) => {
                end.from_destination += n as u64;
                self.recorder.count_unrecorded(0, n);
                if let Some(data) = down.data() {
                    self.capture(Side::Server, data, pcap, end);
                }
                self.pass_down(down)
            }
            Ok(Filled::End) => {
                down.open = false;
                self.fin(Side::Server, end);
                self.pass_down(down)
            }
            Ok(Filled::NotReady) => Ok(()),
            Err(e) => Err((
                "destination_reset",
                Some(format!("reading from the destination: {e}")),
            )),
        }
    }

    /// Writes what the client sent to the destination; its end of file once all is written.
    fn pass_up(&mut self, up: &mut Lane) -> Step {
        match up.drain(self.socket.as_fd()) {
            Ok(true) if !up.open => {
                let _ = self.socket.shutdown(Shutdown::Write);
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => Err((
                "destination_reset",
                Some(format!("writing to the destination: {e}")),
            )),
        }
    }

    /// Writes what the destination sent to the client; its end of file once all is written.
    fn pass_down(&mut self, down: &mut Lane) -> Step {
        match down.drain(self.client.output.as_fd()) {
            Ok(true) if !down.open => {
                let _ = self.client.output.close();
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(("client_gone", Some(format!("writing to the client: {e}")))),
        }
    }

    /// Writes bytes into the PCAP file while it has room (the channel's byte cap, and the
    /// user's daily budget, which its bytes count against); a failing file stops the capture
    /// (the connection goes on; the close line says why).
    fn capture(&mut self, side: Side, data: &[u8], written: &mut u64, end: &mut ForwardEnd) {
        let Some(pcap) = self.pcap.as_mut() else {
            return;
        };
        if *written + data.len() as u64 > self.pcap_cap || self.recorder.is_sampling() {
            end.pcap_truncated += data.len() as u64;
            return;
        }
        *written += data.len() as u64;
        let before = pcap.bytes();
        let result = pcap.data(side, data);
        self.recorder.count_side_file(pcap.bytes() - before);
        if let Err(e) = result {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::testing::recorder;
    use crate::relay::client::ClientFd;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// Runs the relay between pipes standing in for the client and a loopback connection to an
    /// echo-like destination that sends `reply` after the client's end of file, and returns
    /// what the client received, what the destination received, and how it ended.
    fn relay_once(
        sent: &[u8],
        reply: &[u8],
        pcap: bool,
        pcap_cap: u64,
        idle: IdlePolicy,
    ) -> (Vec<u8>, Vec<u8>, ForwardEnd) {
        let dir = sessrec_core::testing::TempDir::new("forward-relay");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reply = reply.to_vec();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            conn.read_to_end(&mut got).unwrap();
            conn.write_all(&reply).unwrap();
            got
        });
        let socket = TcpStream::connect(addr).unwrap();
        socket.set_nonblocking(true).unwrap();
        let (in_r, in_w) = sys::pipe().unwrap();
        let (out_r, out_w) = sys::pipe().unwrap();
        let (err_r, err_w) = sys::pipe().unwrap();
        sys::set_nonblocking(&in_r).unwrap();
        sys::set_nonblocking(&out_w).unwrap();
        let (sig_r, _sig_w) = sys::pipe().unwrap();
        sys::set_nonblocking(&sig_r).unwrap();
        let sent = sent.to_vec();
        let feeder = std::thread::spawn(move || {
            let mut w = std::fs::File::from(in_w);
            w.write_all(&sent).unwrap();
        });
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            std::fs::File::from(out_r).read_to_end(&mut got).unwrap();
            got
        });
        let (mut rec, _) = recorder(dir.path(), 1 << 30);
        let pcap = pcap.then(|| {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(dir.path().join("x.pcap"))
                .unwrap();
            PcapWriter::start(file, socket.local_addr().unwrap(), addr).unwrap()
        });
        let end = ForwardRelay {
            client: Client {
                input: ClientFd::Owned(in_r),
                output: ClientFd::Owned(out_w),
                error: ClientFd::Owned(err_w),
            },
            socket,
            signal_fd: sig_r.as_fd(),
            recorder: &mut rec,
            pcap,
            pcap_cap,
            idle,
        }
        .run();
        drop(err_r);
        feeder.join().unwrap();
        (reader.join().unwrap(), server.join().unwrap(), end)
    }

    #[test]
    fn bytes_and_half_closes_cross_both_ways_spliced_or_copied() {
        let sent: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let reply: Vec<u8> = (0..2_000_000u32).map(|i| (i % 241) as u8).collect();
        for pcap in [false, true] {
            let (client_got, server_got, end) =
                relay_once(&sent, &reply, pcap, 1 << 30, IdlePolicy::new(0, 0));
            assert_eq!(server_got, sent, "pcap {pcap}");
            assert_eq!(client_got, reply, "pcap {pcap}");
            assert_eq!(end.result, "closed");
            assert_eq!(end.to_destination, sent.len() as u64);
            assert_eq!(end.from_destination, reply.len() as u64);
            assert_eq!(end.pcap.is_some(), pcap);
        }
    }

    #[test]
    fn past_its_cap_the_payload_is_counted_not_kept_and_the_connection_goes_on() {
        let sent = vec![7u8; 300_000];
        let (client_got, server_got, end) =
            relay_once(&sent, b"ok", true, 100_000, IdlePolicy::new(0, 0));
        assert_eq!(
            (server_got.len(), client_got.as_slice()),
            (sent.len(), &b"ok"[..])
        );
        assert_eq!(end.result, "closed");
        assert!(end.pcap_truncated >= 200_000, "{}", end.pcap_truncated);
        let (bytes, _) = end.pcap.unwrap().finish().unwrap();
        assert!(bytes < 110_000, "{bytes}");
    }

    #[test]
    fn a_lane_without_pcap_splices() {
        let lane = Lane::new(false);
        assert!(matches!(lane.carrier, Carrier::Splice { .. }));
        assert!(lane.data().is_none());
        assert!(matches!(Lane::new(true).carrier, Carrier::Copy(_)));
    }
}
