//! The kernel's own account of TCP sockets, over `NETLINK_SOCK_DIAG` (inet_diag): a dump of
//! the live sockets (owner uid, socket inode, cookie, counters) and the notifications the
//! kernel sends when it frees one (`SKNLGRP_INET{,6}_TCP_DESTROY`), with the final `tcp_info`
//! counters. Nothing here comes from the socket's user: the kernel fills every field.
//!
//! Only the message layout lives here; the socket calls are in `sys`.
#![forbid(unsafe_code)]

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;

use crate::sys;

const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
/// `struct inet_diag_msg`.
const DIAG_MSG: usize = 72;
/// `INET_DIAG_INFO`: the attribute holding `struct tcp_info`.
const INET_DIAG_INFO: u16 = 2;
/// Offsets of `struct tcp_info` (linux/tcp.h) read here, and the length each needs.
const TCPI_BYTES_ACKED: usize = 120;
const TCPI_BYTES_RECEIVED: usize = 128;
const TCPI_BYTES_SENT: usize = 200;
const TCPI_BYTES_RETRANS: usize = 208;
/// TCP states left out of a dump: TIME_WAIT, LISTEN and NEW_SYN_RECV are not the sockets a
/// process connected (a TIME_WAIT one is what is left after the socket was freed).
const STATES_DUMPED: u32 = !((1 << 6) | (1 << 10) | (1 << 12));
/// Receive buffer for close notifications: room for tens of thousands between two reads.
const NOTIFY_BUFFER: usize = 8 << 20;

/// What the kernel says of one TCP socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSocket {
    pub local: IpAddr,
    pub local_port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
    /// The kernel's socket cookie: unique while the system runs, the same in the dump and in
    /// the close notification.
    pub cookie: u64,
    /// Owner uid and socket inode; 0 in close notifications (the kernel does not fill them).
    pub uid: u32,
    pub inode: u32,
    /// TCP state (1 = ESTABLISHED ...).
    pub state: u8,
    pub counters: Option<Counters>,
}

/// `tcp_info`'s byte counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Sequence space the peer acknowledged (`tcpi_bytes_acked`): the bytes sent plus one for
    /// the SYN, and one more once a FIN was acknowledged.
    pub bytes_acked: u64,
    /// Sequence space received (`tcpi_bytes_received`): the bytes received, plus one once the
    /// peer's FIN arrived.
    pub bytes_received: u64,
    /// Payload bytes sent including retransmissions, and the retransmitted bytes
    /// (`tcpi_bytes_sent`, `tcpi_bytes_retrans`; Linux 4.19 and later).
    pub bytes_sent: Option<u64>,
    pub bytes_retrans: Option<u64>,
}

fn u16_ne(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}
fn u32_ne(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_ne(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// A dump request for the TCP sockets of `family` (AF_INET or AF_INET6), with `tcp_info`.
fn dump_request(family: u8, seq: u32) -> Vec<u8> {
    let len = NLMSG_HDR + 56;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // struct inet_diag_req_v2: family, protocol, ext (1 << (INET_DIAG_INFO - 1)), pad, states,
    // then a zero inet_diag_sockid (48 bytes: match everything).
    m.extend_from_slice(&[
        family,
        libc::IPPROTO_TCP as u8,
        1 << (INET_DIAG_INFO - 1),
        0,
    ]);
    m.extend_from_slice(&STATES_DUMPED.to_ne_bytes());
    m.resize(len, 0);
    m
}

fn address(family: u8, raw: &[u8]) -> Option<IpAddr> {
    match i32::from(family) {
        libc::AF_INET => Some(IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))),
        libc::AF_INET6 => {
            let b: [u8; 16] = raw[..16].try_into().ok()?;
            let v6 = Ipv6Addr::from(b);
            // A v4-mapped address is the IPv4 one (as the audit record writes it).
            Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
        }
        _ => None,
    }
}

/// Reads one `SOCK_DIAG_BY_FAMILY` message body (an inet_diag_msg and its attributes).
fn parse_socket(body: &[u8]) -> Option<TcpSocket> {
    if body.len() < DIAG_MSG {
        return None;
    }
    let family = body[0];
    let id = &body[4..52];
    let mut socket = TcpSocket {
        local_port: u16::from_be_bytes([id[0], id[1]]),
        remote_port: u16::from_be_bytes([id[2], id[3]]),
        local: address(family, &id[4..20])?,
        remote: address(family, &id[20..36])?,
        cookie: u64::from(u32_ne(id, 40)) | (u64::from(u32_ne(id, 44)) << 32),
        uid: u32_ne(body, 64),
        inode: u32_ne(body, 68),
        state: body[1],
        counters: None,
    };
    let mut at = DIAG_MSG;
    while at + 4 <= body.len() {
        let len = usize::from(u16_ne(body, at));
        let kind = u16_ne(body, at + 2) & 0x3fff;
        if len < 4 || at + len > body.len() {
            break;
        }
        let value = &body[at + 4..at + len];
        if kind == INET_DIAG_INFO && value.len() >= TCPI_BYTES_RECEIVED + 8 {
            let wide = value.len() >= TCPI_BYTES_RETRANS + 8;
            socket.counters = Some(Counters {
                bytes_acked: u64_ne(value, TCPI_BYTES_ACKED),
                bytes_received: u64_ne(value, TCPI_BYTES_RECEIVED),
                bytes_sent: wide.then(|| u64_ne(value, TCPI_BYTES_SENT)),
                bytes_retrans: wide.then(|| u64_ne(value, TCPI_BYTES_RETRANS)),
            });
        }
        at += (len + 3) & !3;
    }
    Some(socket)
}

/// What one datagram held.
enum Messages {
    Sockets(Vec<TcpSocket>),
    Done(Vec<TcpSocket>),
}

fn parse_datagram(buf: &[u8]) -> io::Result<Messages> {
    let mut sockets = Vec::new();
    let mut at = 0;
    while at + NLMSG_HDR <= buf.len() {
        let len = u32_ne(buf, at) as usize;
        let kind = u16_ne(buf, at + 4);
        if len < NLMSG_HDR || at + len > buf.len() {
            break;
        }
        let body = &buf[at + NLMSG_HDR..at + len];
        match kind {
            NLMSG_DONE => return Ok(Messages::Done(sockets)),
            NLMSG_ERROR => {
                let errno = if body.len() >= 4 {
                    -(u32_ne(body, 0) as i32)
                } else {
                    libc::EPROTO
                };
                if errno != 0 {
                    return Err(io::Error::from_raw_os_error(errno));
                }
            }
            SOCK_DIAG_BY_FAMILY => sockets.extend(parse_socket(body)),
            _ => {}
        }
        at += (len + 3) & !3;
    }
    Ok(Messages::Sockets(sockets))
}

/// Which sockets [`dump_of`] lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Inet,
    Inet6,
}

/// The live TCP sockets of the host (its network namespace), IPv4 and IPv6.
pub fn dump() -> io::Result<Vec<TcpSocket>> {
    dump_of(&[Family::Inet, Family::Inet6])
}

/// The live TCP sockets of the given families. Each family is a walk of the kernel's whole
/// TCP hash table (milliseconds on a large one): ask only for the one needed.
pub fn dump_of(families: &[Family]) -> io::Result<Vec<TcpSocket>> {
    let fd = sys::sock_diag_socket(false)?;
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    for (seq, family) in families.iter().enumerate() {
        let seq = seq as u32 + 1;
        let family = match family {
            Family::Inet => libc::AF_INET as u8,
            Family::Inet6 => libc::AF_INET6 as u8,
        };
        sys::send_to_kernel(&fd, &dump_request(family, seq))?;
        loop {
            let n = sys::receive(&fd, &mut buf)?;
            if n == 0 {
                break;
            }
            match parse_datagram(&buf[..n])? {
                Messages::Sockets(s) => all.extend(s),
                Messages::Done(s) => {
                    all.extend(s);
                    break;
                }
            }
        }
    }
    Ok(all)
}

/// The kernel's notifications of TCP sockets being freed, read without blocking.
pub struct CloseListener {
    fd: OwnedFd,
    buf: Vec<u8>,
}

/// What [`CloseListener::drain`] read.
#[derive(Debug, Default)]
pub struct Closed {
    pub sockets: Vec<TcpSocket>,
    /// The kernel dropped notifications (the receive buffer was full): some closes are unknown.
    pub overflowed: bool,
}

impl CloseListener {
    /// Joins the IPv4 and IPv6 TCP destroy groups (root: CAP_NET_ADMIN).
    pub fn open() -> io::Result<CloseListener> {
        let fd = sys::sock_diag_socket(true)?;
        sys::set_receive_buffer(&fd, NOTIFY_BUFFER)?;
        sys::join_group(&fd, sys::SKNLGRP_INET_TCP_DESTROY)?;
        sys::join_group(&fd, sys::SKNLGRP_INET6_TCP_DESTROY)?;
        Ok(CloseListener {
            fd,
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// Every notification waiting, up to `max` sockets.
    pub fn drain(&mut self, max: usize) -> io::Result<Closed> {
        let mut closed = Closed::default();
        while closed.sockets.len() < max {
            match sys::receive(&self.fd, &mut self.buf) {
                Ok(0) => break,
                Ok(n) => match parse_datagram(&self.buf[..n])? {
                    Messages::Sockets(s) | Messages::Done(s) => closed.sockets.extend(s),
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => closed.overflowed = true,
                Err(e) => return Err(e),
            }
        }
        Ok(closed)
    }
}

/// The inode of the socket open as `fd` in process `pid` (`socket:[N]`), when it still is.
pub fn socket_inode(pid: u32, fd: i32) -> Option<u32> {
    let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    let text = link.to_str()?;
    text.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_message_is_read_back() {
        let mut body = vec![0u8; DIAG_MSG];
        body[0] = libc::AF_INET as u8;
        body[1] = 1;
        body[4..6].copy_from_slice(&4242u16.to_be_bytes());
        body[6..8].copy_from_slice(&80u16.to_be_bytes());
        body[8..12].copy_from_slice(&[127, 0, 0, 1]);
        body[24..28].copy_from_slice(&[10, 1, 2, 3]);
        body[44..48].copy_from_slice(&7u32.to_ne_bytes());
        body[48..52].copy_from_slice(&1u32.to_ne_bytes());
        body[64..68].copy_from_slice(&1000u32.to_ne_bytes());
        body[68..72].copy_from_slice(&555u32.to_ne_bytes());
        let mut info = vec![0u8; 232];
        info[TCPI_BYTES_ACKED..TCPI_BYTES_ACKED + 8].copy_from_slice(&101u64.to_ne_bytes());
        info[TCPI_BYTES_RECEIVED..TCPI_BYTES_RECEIVED + 8].copy_from_slice(&51u64.to_ne_bytes());
        body.extend_from_slice(&((4 + info.len()) as u16).to_ne_bytes());
        body.extend_from_slice(&INET_DIAG_INFO.to_ne_bytes());
        body.extend_from_slice(&info);
        let s = parse_socket(&body).unwrap();
        assert_eq!(s.local, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!((s.local_port, s.remote_port), (4242, 80));
        assert_eq!(s.remote.to_string(), "10.1.2.3");
        assert_eq!(s.cookie, 7 | (1 << 32));
        assert_eq!((s.uid, s.inode), (1000, 555));
        let c = s.counters.unwrap();
        assert_eq!((c.bytes_acked, c.bytes_received), (101, 51));
        // A short or damaged message is no socket.
        assert!(parse_socket(&body[..DIAG_MSG - 1]).is_none());
    }
}
