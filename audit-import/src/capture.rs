//! The packets of sshd's own forwards (`ssh -J`, `-W`, `-L`) to `record_payload` destinations
//! (`[forward] capture_sshd`): sshd relays them itself, so the content is taken where the kernel
//! sees it, from a packet socket. Only TCP frames to or from a payload destination are kept; a
//! connection's frames are buffered (bounded) until the importer ties the connection to a login
//! by its addresses and ports (the `connect` of the sshd session process, whose socket the
//! kernel names), then appended to the destination's PCAP file in that session, and hashed when
//! the kernel frees the socket. Frames of connections no login claims are dropped unread.
//!
//! On the loopback interface every frame is seen twice, sent and received: the sent copy is
//! left out, as libpcap does (by the kernel, with a socket filter, and checked again here).
//! The socket calls are in `sys`.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use sessrec_core::forward::{ForwardConfig, HostPattern, PortRange};
use sessrec_core::pcap::{PcapFile, SNAPLEN};

use crate::sys;

/// Frames of a connection no login has claimed yet, kept at most this long and this much.
const UNCLAIMED_FOR: Duration = Duration::from_secs(120);
const UNCLAIMED_BYTES_MAX: usize = 64 << 20;
/// Every unclaimed connection's frames together.
const UNCLAIMED_TOTAL_MAX: usize = 256 << 20;
/// At most this many connections followed at once.
const FLOWS_MAX: usize = 16_384;
/// At most this many frames read in one go.
const DRAIN_MAX: usize = 1_000_000;
/// The packet socket's receive buffer: room for a burst between two reads.
const RECEIVE_BUFFER: usize = 256 << 20;

/// A connection as the bastion sees it: its own end, and the destination's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub local: SocketAddr,
    pub destination: SocketAddr,
}

/// Where the policy keeps payloads: an address block and ports.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    addr: IpAddr,
    prefix: u8,
    ports: PortRange,
}

impl Target {
    fn contains(&self, a: SocketAddr) -> bool {
        let ip = a.ip().to_canonical();
        if ip.is_ipv4() != self.addr.is_ipv4() || !self.ports.contains(a.port()) {
            return false;
        }
        match (ip, self.addr) {
            (IpAddr::V4(x), IpAddr::V4(n)) => {
                let m = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(x) & m == u32::from(n) & m
            }
            (IpAddr::V6(x), IpAddr::V6(n)) => {
                let m = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(x) & m == u128::from(n) & m
            }
            _ => false,
        }
    }
}

/// The destinations of every `record_payload` rule, names resolved now (a `*.domain` entry
/// cannot be captured: sshd's `PermitOpen` cannot open it either).
fn payload_targets(policy: &ForwardConfig) -> Vec<Target> {
    let mut out = Vec::new();
    for rule in &policy.allow {
        if !rule.record_payload.unwrap_or(policy.record_payload) {
            continue;
        }
        for d in &rule.destinations {
            match &d.host {
                HostPattern::Net { addr, prefix } => out.push(Target {
                    addr: *addr,
                    prefix: *prefix,
                    ports: d.ports,
                }),
                HostPattern::Name(name) => {
                    for a in (name.as_str(), 0).to_socket_addrs().into_iter().flatten() {
                        let addr = a.ip().to_canonical();
                        out.push(Target {
                            addr,
                            prefix: if addr.is_ipv4() { 32 } else { 128 },
                            ports: d.ports,
                        });
                    }
                }
                HostPattern::Suffix(_) => {}
            }
        }
    }
    out
}

/// A TCP frame's two ends, from its Ethernet, IP and TCP headers.
pub fn tcp_ends(frame: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    let ether = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let ip = frame.get(14..)?;
    let (src, dst, tcp) = match ether {
        0x0800 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            if ip.first()? >> 4 != 4 || ihl < 20 || *ip.get(9)? != 6 {
                return None;
            }
            // A fragment past the first carries no TCP header.
            if u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x1fff != 0 {
                return None;
            }
            let s: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            (
                IpAddr::V4(Ipv4Addr::from(s)),
                IpAddr::V4(Ipv4Addr::from(d)),
                ip.get(ihl..)?,
            )
        }
        0x86dd => {
            if ip.first()? >> 4 != 6 || *ip.get(6)? != 6 {
                return None;
            }
            let s: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            (
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
                ip.get(40..)?,
            )
        }
        _ => return None,
    };
    let sport = u16::from_be_bytes([*tcp.first()?, *tcp.get(1)?]);
    let dport = u16::from_be_bytes([*tcp.get(2)?, *tcp.get(3)?]);
    Some((SocketAddr::new(src, sport), SocketAddr::new(dst, dport)))
}

struct Flow {
    first_seen: Instant,
    /// The drop counter before the read that saw its first frame: drops since then may be
    /// this connection's.
    drops_before: u64,
    /// Frames not yet in a file (unclaimed), with their receive times.
    waiting: Vec<(Duration, Vec<u8>)>,
    waiting_bytes: usize,
    truncated_bytes: u64,
    out: Option<Claimed>,
}

struct Claimed {
    file: PcapFile,
    name: String,
}

/// A connection's capture, finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
    pub dropped_packets: u64,
    pub truncated_bytes: u64,
}

/// The packet socket and the connections being captured.
pub struct Capture {
    socket: OwnedFd,
    targets: Vec<Target>,
    flows: HashMap<FlowKey, Flow>,
    unclaimed_bytes: usize,
    /// Frames the kernel dropped from the socket since it was opened.
    dropped: u64,
    buf: Vec<u8>,
}

impl Capture {
    /// Opens the capture for the policy's payload destinations; `None` when it has none.
    pub fn open(policy: &ForwardConfig) -> io::Result<Option<Capture>> {
        let targets = payload_targets(policy);
        if targets.is_empty() {
            return Ok(None);
        }
        let socket = sys::packet_socket()?;
        sys::set_receive_buffer(&socket, RECEIVE_BUFFER)?;
        sys::skip_loopback_outgoing(&socket)?;
        Ok(Some(Capture {
            socket,
            targets,
            flows: HashMap::new(),
            unclaimed_bytes: 0,
            dropped: 0,
            buf: vec![0u8; SNAPLEN as usize + 16],
        }))
    }

    /// Whether `destination` is one whose payload the policy keeps (for some rule).
    pub fn is_target(&self, destination: SocketAddr) -> bool {
        self.targets.iter().any(|t| t.contains(destination))
    }

    /// Reads every waiting frame: those of connections to payload destinations are appended
    /// to their file, or kept until claimed. Unclaimed connections past their time are dropped.
    pub fn drain(&mut self) -> io::Result<()> {
        for _ in 0..DRAIN_MAX {
            let info = match sys::receive_frame(&self.socket, &mut self.buf) {
                Ok(info) => info,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            };
            if info.packet_type == sys::PACKET_OUTGOING
                && info.hardware_type == sys::ARPHRD_LOOPBACK
            {
                continue;
            }
            let frame: Vec<u8> = match info.hardware_type {
                sys::ARPHRD_ETHER | sys::ARPHRD_LOOPBACK => self.buf[..info.copied].to_vec(),
                // No link header (tunnels, WireGuard): an Ethernet one with the protocol.
                _ => {
                    let mut f = vec![0u8; 12];
                    f.extend_from_slice(&info.protocol.to_be_bytes());
                    f.extend_from_slice(&self.buf[..info.copied]);
                    f
                }
            };
            let Some((src, dst)) = tcp_ends(&frame) else {
                continue;
            };
            let key = if self.is_target(dst) {
                FlowKey {
                    local: src,
                    destination: dst,
                }
            } else if self.is_target(src) {
                FlowKey {
                    local: dst,
                    destination: src,
                }
            } else {
                continue;
            };
            let cut = info.length.saturating_sub(info.copied) as u64;
            self.frame(key, info.at, frame, cut)?;
        }
        self.dropped += sys::packet_drops(&self.socket)?;
        let now = Instant::now();
        let mut freed = 0;
        self.flows.retain(|_, f| {
            let keep = f.out.is_some() || now.duration_since(f.first_seen) < UNCLAIMED_FOR;
            if !keep {
                freed += f.waiting_bytes;
            }
            keep
        });
        self.unclaimed_bytes -= freed;
        Ok(())
    }

    fn frame(&mut self, key: FlowKey, at: Duration, frame: Vec<u8>, cut: u64) -> io::Result<()> {
        if !self.flows.contains_key(&key) {
            if self.flows.len() >= FLOWS_MAX {
                return Ok(());
            }
            self.flows.insert(
                key,
                Flow {
                    first_seen: Instant::now(),
                    drops_before: self.dropped,
                    waiting: Vec::new(),
                    waiting_bytes: 0,
                    truncated_bytes: 0,
                    out: None,
                },
            );
        }
        let flow = self.flows.get_mut(&key).expect("inserted above");
        flow.truncated_bytes += cut;
        match &mut flow.out {
            Some(c) => c.file.packet(at, &frame),
            None => {
                if flow.waiting_bytes + frame.len() > UNCLAIMED_BYTES_MAX
                    || self.unclaimed_bytes + frame.len() > UNCLAIMED_TOTAL_MAX
                {
                    flow.truncated_bytes += frame.len() as u64;
                    return Ok(());
                }
                flow.waiting_bytes += frame.len();
                self.unclaimed_bytes += frame.len();
                flow.waiting.push((at, frame));
                Ok(())
            }
        }
    }

    /// Ties a connection to a login: its frames so far and from now on go to `file` (the
    /// destination's PCAP file in the session, named `name`). Read the waiting frames first.
    pub fn claim(&mut self, key: FlowKey, file: File, name: String) -> io::Result<()> {
        let dropped = self.dropped;
        let flow = self.flows.entry(key).or_insert_with(|| Flow {
            first_seen: Instant::now(),
            drops_before: dropped,
            waiting: Vec::new(),
            waiting_bytes: 0,
            truncated_bytes: 0,
            out: None,
        });
        if flow.out.is_some() {
            return Ok(());
        }
        let mut out = PcapFile::new(file);
        for (at, frame) in flow.waiting.drain(..) {
            out.packet(at, &frame)?;
        }
        self.unclaimed_bytes -= flow.waiting_bytes;
        flow.waiting_bytes = 0;
        flow.out = Some(Claimed { file: out, name });
        Ok(())
    }

    /// Whether the connection is claimed (its frames go to a file).
    pub fn is_claimed(&self, key: &FlowKey) -> bool {
        self.flows.get(key).is_some_and(|f| f.out.is_some())
    }

    /// A connection no login keeps: its frames are dropped.
    pub fn forget(&mut self, key: &FlowKey) {
        if let Some(f) = self.flows.remove(key) {
            self.unclaimed_bytes -= f.waiting_bytes;
        }
    }

    /// The connection ended (the kernel freed its socket; read the waiting frames first): its
    /// file is appended to, synced and hashed. `None` when it was not claimed.
    pub fn finish(&mut self, key: &FlowKey) -> Option<io::Result<Finished>> {
        let flow = self.flows.remove(key)?;
        self.unclaimed_bytes -= flow.waiting_bytes;
        let claimed = flow.out?;
        let dropped_packets = self.dropped - flow.drops_before;
        Some(claimed.file.finish().map(|(bytes, sha256)| Finished {
            name: claimed.name,
            bytes,
            sha256,
            dropped_packets,
            truncated_bytes: flow.truncated_bytes,
        }))
    }
}

/// The PCAP file of sshd's forwards to `destination` in a session.
pub fn pcap_name(destination: SocketAddr) -> String {
    let addr = destination
        .ip()
        .to_canonical()
        .to_string()
        .replace(':', "_");
    format!("sshd-forward-{addr}-{}.pcap", destination.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_v4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[0u8; 16]);
        f
    }

    #[test]
    fn tcp_ends_are_read_from_the_headers_and_nothing_else_is() {
        let f = frame_v4([127, 0, 0, 1], 40000, [10, 0, 0, 2], 80);
        assert_eq!(
            tcp_ends(&f),
            Some((
                "127.0.0.1:40000".parse().unwrap(),
                "10.0.0.2:80".parse().unwrap()
            ))
        );
        let mut udp = f.clone();
        udp[14 + 9] = 17;
        assert_eq!(tcp_ends(&udp), None);
        let mut fragment = f.clone();
        fragment[14 + 7] = 1;
        assert_eq!(tcp_ends(&fragment), None);
        for n in 0..f.len() - 16 {
            assert_eq!(tcp_ends(&f[..n]), None, "cut at {n}");
        }
    }

    #[test]
    fn only_payload_rules_are_captured() {
        let p = sessrec_core::config::Config::from_toml_str(
            "[[forward.allow]]\nusers=[\"a\"]\nto=[\"10.0.0.0/30:80\",\"[::1]:8000-8001\"]\nrecord_payload=true\n[[forward.allow]]\nusers=[\"b\"]\nto=[\"10.9.0.1:22\"]\n",
            "t",
        )
        .unwrap();
        let t = payload_targets(&p.forward);
        let hit = |s: &str| t.iter().any(|t| t.contains(s.parse().unwrap()));
        assert!(hit("10.0.0.3:80"));
        assert!(!hit("10.0.0.4:80"));
        assert!(!hit("10.0.0.1:81"));
        assert!(hit("[::1]:8001"));
        assert!(!hit("10.9.0.1:22"));
        assert_eq!(
            pcap_name("[::1]:8000".parse().unwrap()),
            "sshd-forward-__1-8000.pcap"
        );
    }
}
