//! Forwarded connections as classic PCAP files (Ethernet link type). [`PcapFile`] appends whole
//! packets to a file several connections share and hashes it at each close: the capture of
//! sshd's own forwards writes the real packets the kernel saw through it. [`PcapWriter`] is for
//! the recorder's connect channel, which sees a byte stream, so the Ethernet, IP and TCP
//! headers are made up around it — a handshake, one segment per read
//! with correct sequence and acknowledgement numbers, FIN segments at the end — so `tcpdump -r`
//! and Wireshark follow the stream.
//!
//! All connections of a login to one destination append to one file: each keeps its own ends
//! (the bastion's real local port) and sequence numbers, so they are separate streams in it.
//! Whole packets are appended under an exclusive `flock(2)` on the file (the global header by
//! whoever finds it empty); at its end a connection records the file's size after its last
//! append and the SHA-256 of that prefix, so every earlier connection's packets are covered by
//! every later close.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::FileExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};

/// Packets gathered before they are appended under the lock.
const APPEND_AT: usize = 256 * 1024;

/// Largest TCP payload of one synthesised segment (an IPv4 packet holds at most 65535 bytes).
const SEGMENT_MAX: usize = 32 * 1024;
const LINKTYPE_ETHERNET: u32 = 1;
/// Longest packet kept whole (the global header's snapshot length).
pub const SNAPLEN: u32 = 65535;
const SYN: u8 = 0x02;
const FIN: u8 = 0x01;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
/// Locally administered MAC addresses for the two ends.
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

/// Which end sent a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The bastion's end (the client's bytes going to the destination).
    Client,
    /// The destination.
    Server,
}

/// One end of the synthesised connection.
struct End {
    addr: SocketAddr,
    mac: [u8; 6],
    /// The next sequence number this end sends.
    seq: u32,
    fin_sent: bool,
}

/// One connection's share of a PCAP file: its packets, appended whole under the file's lock.
pub struct PcapFile {
    /// Opened for reading and appending.
    file: File,
    /// Whole packets not yet appended.
    pending: Vec<u8>,
    /// Bytes this connection put into the file (headers included).
    bytes: u64,
}

/// A connection the recorder relayed, as synthesised segments in a [`PcapFile`].
pub struct PcapWriter {
    out: PcapFile,
    client: End,
    server: End,
}

impl PcapWriter {
    /// Starts a connection in `file` (empty or holding earlier connections; opened for reading
    /// and appending) with the three-way handshake. `client` is the bastion's side of the real
    /// connection, `server` the destination (same address family).
    pub fn start(file: File, client: SocketAddr, server: SocketAddr) -> io::Result<Self> {
        let mut w = PcapWriter {
            out: PcapFile::new(file),
            client: End {
                addr: client,
                mac: CLIENT_MAC,
                seq: 0x1000_0000,
                fin_sent: false,
            },
            server: End {
                addr: server,
                mac: SERVER_MAC,
                seq: 0x5000_0000,
                fin_sent: false,
            },
        };
        w.segment(Side::Client, SYN, &[])?;
        w.client.seq = w.client.seq.wrapping_add(1);
        w.segment(Side::Server, SYN | ACK, &[])?;
        w.server.seq = w.server.seq.wrapping_add(1);
        w.segment(Side::Client, ACK, &[])?;
        Ok(w)
    }

    /// Bytes `side` sent, as as many segments as they need.
    pub fn data(&mut self, side: Side, data: &[u8]) -> io::Result<()> {
        for piece in data.chunks(SEGMENT_MAX) {
            self.segment(side, PSH | ACK, piece)?;
            let end = self.end_mut(side);
            end.seq = end.seq.wrapping_add(piece.len() as u32);
        }
        Ok(())
    }

    /// `side` ended its stream (once).
    pub fn fin(&mut self, side: Side) -> io::Result<()> {
        if self.end_mut(side).fin_sent {
            return Ok(());
        }
        self.segment(side, FIN | ACK, &[])?;
        let end = self.end_mut(side);
        end.seq = end.seq.wrapping_add(1);
        end.fin_sent = true;
        Ok(())
    }

    /// Bytes written so far (headers included).
    pub fn bytes(&self) -> u64 {
        self.out.bytes()
    }

    /// See [`PcapFile::finish`].
    pub fn finish(self) -> io::Result<(u64, String)> {
        self.out.finish()
    }

    fn end_mut(&mut self, side: Side) -> &mut End {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    fn segment(&mut self, side: Side, flags: u8, payload: &[u8]) -> io::Result<()> {
        let (from, to) = match side {
            Side::Client => (&self.client, &self.server),
            Side::Server => (&self.server, &self.client),
        };
        let ack = if flags & ACK != 0 { to.seq } else { 0 };
        let packet = frame(from, to, from.seq, ack, flags, payload);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.out.packet(now, &packet)
    }
}

impl PcapFile {
    /// Appends to `file` (empty, or holding other connections' packets; opened for reading and
    /// appending).
    pub fn new(file: File) -> PcapFile {
        PcapFile {
            file,
            pending: Vec::with_capacity(APPEND_AT),
            bytes: 0,
        }
    }

    /// One Ethernet frame seen at `at` (since the epoch); frames longer than the snapshot
    /// length are cut to it, their original length kept in the record.
    pub fn packet(&mut self, at: Duration, frame: &[u8]) -> io::Result<()> {
        let kept = &frame[..frame.len().min(SNAPLEN as usize)];
        let mut record = Vec::with_capacity(16 + kept.len());
        record.extend_from_slice(&(at.as_secs() as u32).to_le_bytes());
        record.extend_from_slice(&at.subsec_micros().to_le_bytes());
        record.extend_from_slice(&(kept.len() as u32).to_le_bytes());
        record.extend_from_slice(&(frame.len().min(u32::MAX as usize) as u32).to_le_bytes());
        record.extend_from_slice(kept);
        self.emit(&record)
    }

    /// Bytes written so far (headers included).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Appends what is left and syncs the file; returns the file's size after this last append
    /// and the hex SHA-256 of the file up to there (read under the same lock).
    pub fn finish(mut self) -> io::Result<(u64, String)> {
        let lock = self.lock()?;
        let size = self.append_locked()?;
        self.file.sync_data()?;
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut at = 0u64;
        while at < size {
            let want = buf.len().min((size - at) as usize);
            let n = self.file.read_at(&mut buf[..want], at)?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            hash.update(&buf[..n]);
            at += n as u64;
        }
        drop(lock);
        let digest = hash.finalize();
        Ok((size, digest.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// The exclusive lock on the file (its open file description, shared by the clone).
    fn lock(&self) -> io::Result<Flock<File>> {
        Flock::lock(self.file.try_clone()?, FlockArg::LockExclusive)
            .map_err(|(_, errno)| io::Error::from(errno))
    }

    /// Appends the pending packets (after the global header when the file is empty) and
    /// returns the file's size; the caller holds the lock. A write that fails part-way is cut
    /// back off, so that the other connections' later packets still follow whole ones.
    fn append_locked(&mut self) -> io::Result<u64> {
        let before = self.file.metadata()?.len();
        let mut block = if before == 0 {
            global_header()
        } else {
            Vec::new()
        };
        block.extend_from_slice(&self.pending);
        if let Err(e) = self.file.write_all(&block) {
            let _ = self.file.set_len(before);
            return Err(e);
        }
        self.bytes += (block.len() - self.pending.len()) as u64;
        self.pending.clear();
        Ok(before + block.len() as u64)
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.pending.extend_from_slice(bytes);
        self.bytes += bytes.len() as u64;
        if self.pending.len() >= APPEND_AT {
            let lock = self.lock()?;
            self.append_locked()?;
            drop(lock);
        }
        Ok(())
    }
}

/// The classic PCAP global header: microsecond timestamps, Ethernet.
fn global_header() -> Vec<u8> {
    let mut header = Vec::with_capacity(24);
    header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    header.extend_from_slice(&2u16.to_le_bytes());
    header.extend_from_slice(&4u16.to_le_bytes());
    header.extend_from_slice(&0i32.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    header.extend_from_slice(&SNAPLEN.to_le_bytes());
    header.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    header
}

/// Ethernet + IP + TCP headers around `payload`, checksums included.
fn frame(from: &End, to: &End, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut tcp = Vec::with_capacity(20 + payload.len());
    tcp.extend_from_slice(&from.addr.port().to_be_bytes());
    tcp.extend_from_slice(&to.addr.port().to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&ack.to_be_bytes());
    tcp.push(5 << 4);
    tcp.push(flags);
    tcp.extend_from_slice(&65535u16.to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 0]);
    tcp.extend_from_slice(payload);

    let mut out = Vec::with_capacity(14 + 40 + tcp.len());
    out.extend_from_slice(&to.mac);
    out.extend_from_slice(&from.mac);
    match (from.addr.ip(), to.addr.ip()) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            out.extend_from_slice(&0x0800u16.to_be_bytes());
            let mut pseudo = Vec::with_capacity(12);
            pseudo.extend_from_slice(&src.octets());
            pseudo.extend_from_slice(&dst.octets());
            pseudo.extend_from_slice(&[0, 6]);
            pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
            let sum = checksum(&[&pseudo, &tcp]);
            tcp[16..18].copy_from_slice(&sum.to_be_bytes());
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
            ip[6] = 0x40; // don't fragment
            ip[8] = 64;
            ip[9] = 6;
            ip[12..16].copy_from_slice(&src.octets());
            ip[16..20].copy_from_slice(&dst.octets());
            let sum = checksum(&[&ip]);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            out.extend_from_slice(&ip);
        }
        (src, dst) => {
            let (src, dst) = (v6(src), v6(dst));
            out.extend_from_slice(&0x86ddu16.to_be_bytes());
            let mut pseudo = Vec::with_capacity(40);
            pseudo.extend_from_slice(&src.octets());
            pseudo.extend_from_slice(&dst.octets());
            pseudo.extend_from_slice(&(tcp.len() as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 6]);
            let sum = checksum(&[&pseudo, &tcp]);
            tcp[16..18].copy_from_slice(&sum.to_be_bytes());
            let mut ip = [0u8; 40];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&(tcp.len() as u16).to_be_bytes());
            ip[6] = 6;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&src.octets());
            ip[24..40].copy_from_slice(&dst.octets());
            out.extend_from_slice(&ip);
        }
    }
    out.extend_from_slice(&tcp);
    out
}

fn v6(addr: IpAddr) -> std::net::Ipv6Addr {
    match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// The Internet checksum of the concatenated parts (each of even length but the last).
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        let mut words = part.chunks_exact(2);
        for w in &mut words {
            sum = sum.wrapping_add(u32::from(u16::from_be_bytes([w[0], w[1]])));
        }
        if let [last] = words.remainder() {
            sum = sum.wrapping_add(u32::from(*last) << 8);
        }
        sum = (sum & 0xffff) + (sum >> 16);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ip_checksum_verifies() {
        // RFC 1071's example words sum to ddf2; the checksum is its complement.
        assert_eq!(
            checksum(&[&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]]),
            !0xddf2
        );
        let from = End {
            addr: "10.0.0.1:40000".parse().unwrap(),
            mac: CLIENT_MAC,
            seq: 1,
            fin_sent: false,
        };
        let to = End {
            addr: "10.0.0.2:80".parse().unwrap(),
            mac: SERVER_MAC,
            seq: 7,
            fin_sent: false,
        };
        let packet = frame(&from, &to, 1, 7, PSH | ACK, b"hello");
        assert_eq!(packet.len(), 14 + 20 + 20 + 5);
        assert_eq!(checksum(&[&packet[14..34]]), 0, "IPv4 header checksum");
    }

    #[test]
    fn sequence_numbers_advance_by_the_bytes_sent() {
        let dir = crate::testing::TempDir::new("pcap-seq");
        let path = dir.path().join("x.pcap");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .unwrap();
        let mut w = PcapWriter::start(
            file,
            "127.0.0.1:40000".parse().unwrap(),
            "127.0.0.1:80".parse().unwrap(),
        )
        .unwrap();
        let client_isn = w.client.seq;
        w.data(Side::Client, &[b'x'; 70_000]).unwrap();
        assert_eq!(w.client.seq, client_isn.wrapping_add(70_000));
        w.fin(Side::Client).unwrap();
        w.fin(Side::Client).unwrap();
        w.fin(Side::Server).unwrap();
        let (bytes, sha) = w.finish().unwrap();
        let data = std::fs::read(&path).unwrap();
        assert_eq!(bytes, data.len() as u64);
        let want: String = Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sha, want);
        // header + 3 handshake + 3 data segments + 2 FINs
        let mut off = 24;
        let mut packets = 0;
        while off < data.len() {
            let len = u32::from_le_bytes(data[off + 8..off + 12].try_into().unwrap()) as usize;
            off += 16 + len;
            packets += 1;
        }
        assert_eq!((off, packets), (data.len(), 8));
    }

    #[test]
    fn connections_to_one_destination_append_to_one_file_each_close_hashing_its_prefix() {
        let dir = crate::testing::TempDir::new("pcap-shared");
        let path = dir.path().join("x.pcap");
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&path)
                .unwrap()
        };
        let server = "127.0.0.1:80".parse().unwrap();
        let mut a = PcapWriter::start(open(), "127.0.0.1:40000".parse().unwrap(), server).unwrap();
        let mut b = PcapWriter::start(open(), "127.0.0.1:40001".parse().unwrap(), server).unwrap();
        a.data(Side::Client, &[b'a'; 300_000]).unwrap();
        b.data(Side::Client, &[b'b'; 300_000]).unwrap();
        let (a_size, a_sha) = a.finish().unwrap();
        b.data(Side::Server, b"late").unwrap();
        let (b_size, b_sha) = b.finish().unwrap();
        let data = std::fs::read(&path).unwrap();
        let hex = |d: &[u8]| -> String {
            Sha256::digest(d)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        assert_eq!(b_size, data.len() as u64);
        assert_eq!(b_sha, hex(&data));
        assert!(a_size < b_size);
        assert_eq!(a_sha, hex(&data[..a_size as usize]));
        // One global header; then whole packets of both connections, each with its own port.
        assert_eq!(&data[..4], &0xa1b2_c3d4u32.to_le_bytes());
        let mut off = 24;
        let mut ports = std::collections::BTreeMap::new();
        while off < data.len() {
            let len = u32::from_le_bytes(data[off + 8..off + 12].try_into().unwrap()) as usize;
            let packet = &data[off + 16..off + 16 + len];
            let sport = u16::from_be_bytes([packet[34], packet[35]]);
            let dport = u16::from_be_bytes([packet[36], packet[37]]);
            let client_port = if sport == 80 { dport } else { sport };
            *ports.entry(client_port).or_insert(0) += 1;
            off += 16 + len;
        }
        assert_eq!(off, data.len());
        assert_eq!(
            ports.keys().copied().collect::<Vec<u16>>(),
            vec![40000, 40001]
        );
    }
}
