//! The ends of audited TCP connections, from the kernel's own account of the sockets: a
//! `connect` imported while its socket is still open is tied to the kernel socket through the
//! connecting descriptor (`/proc/PID/fd/FD` → socket inode → the sock_diag dump → cookie), and
//! the kernel's close notification for that cookie, with the final byte counters, becomes its
//! `connect.end`. A socket freed before its connect was imported is matched by destination and
//! time, and only when one socket fits.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::sockdiag::{self, CloseListener, Counters, TcpSocket};

/// How long a freed socket no connect claimed is kept for a connect imported later.
const RECENT_US: i64 = 120_000_000;
/// At most this many such sockets (a busy host frees many that no login opened).
const RECENT_MAX: usize = 65_536;
/// At most this many notifications read in one go.
const DRAIN_MAX: usize = 1_000_000;
/// At most this many connections followed at once.
pub const OPEN_MAX: usize = 100_000;

/// A connect whose socket is open, followed until the kernel frees it (kept in the state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenConnect {
    pub session: String,
    pub audit_id: String,
    pub at_us: i64,
    pub pid: u32,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub exe: Option<String>,
    pub address: String,
    pub port: u16,
    pub local_address: String,
    pub local_port: u16,
    pub cookie: u64,
}

/// What the kernel said of a connect's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Already freed (seen at the time given): this is its end, matched by destination and
    /// time.
    Freed(i64, TcpSocket),
    /// Several freed sockets fit and none can be told from the others.
    Ambiguous(usize),
    /// No TCP socket fits (a UDP "connect", or one not in this network namespace).
    NotTcp,
}

/// The kernel's close notifications and the freed sockets no connect has claimed yet.
pub struct Closes {
    listener: CloseListener,
    recent: VecDeque<(i64, TcpSocket)>,
    /// When the importer began listening (µs since the epoch): a socket freed before then
    /// left no notification.
    pub since_us: i64,
}

/// Payload bytes from the kernel's sequence-space counters: the destination's acknowledgements
/// less the SYN (and our FIN, when it was acknowledged: never more than was sent), and what
/// arrived less the peer's FIN.
pub fn payload(c: &Counters) -> (u64, u64) {
    let mut to = c.bytes_acked.saturating_sub(1);
    if let Some(sent) = c.bytes_sent {
        to = to.min(sent.saturating_sub(c.bytes_retrans.unwrap_or(0)));
    }
    (to, c.bytes_received.saturating_sub(1))
}

fn same_address(text: &str, ip: &IpAddr) -> bool {
    text.parse::<IpAddr>()
        .is_ok_and(|a| a.to_canonical() == ip.to_canonical())
}

impl Closes {
    pub fn open(now_us: i64) -> io::Result<Closes> {
        Ok(Closes {
            listener: CloseListener::open()?,
            recent: VecDeque::new(),
            since_us: now_us,
        })
    }

    /// Reads every waiting notification: the sockets `followed` names are returned (their
    /// ends), the others kept for connects imported later. `overflowed` when the kernel
    /// dropped some.
    pub fn drain(
        &mut self,
        now_us: i64,
        followed: impl Fn(u64) -> bool,
    ) -> io::Result<(Vec<TcpSocket>, bool)> {
        let closed = self.listener.drain(DRAIN_MAX)?;
        let mut ends = Vec::new();
        for s in closed.sockets {
            if followed(s.cookie) {
                ends.push(s);
            } else {
                self.recent.push_back((now_us, s));
            }
        }
        while self.recent.len() > RECENT_MAX
            || self
                .recent
                .front()
                .is_some_and(|(at, _)| now_us - at > RECENT_US)
        {
            self.recent.pop_front();
        }
        Ok((ends, closed.overflowed))
    }

    /// The open socket of a connect by `pid` on descriptor `fd` to `address`:`port` (of
    /// `family`, as the audit record names it): the descriptor's socket inode, found in the
    /// kernel's dump with that destination.
    pub fn find_open(
        &self,
        pid: u32,
        fd: Option<i32>,
        family: &str,
        address: &str,
        port: u16,
    ) -> io::Result<Option<TcpSocket>> {
        let Some(inode) = fd.and_then(|fd| sockdiag::socket_inode(pid, fd)) else {
            return Ok(None);
        };
        let family = if family == "inet6" {
            sockdiag::Family::Inet6
        } else {
            sockdiag::Family::Inet
        };
        Ok(sockdiag::dump_of(&[family])?.into_iter().find(|s| {
            s.inode == inode && s.remote_port == port && same_address(address, &s.remote)
        }))
    }

    /// The freed socket of a connect to `address`:`port` made at `at_us`, among those no
    /// connect claimed (read them with [`Closes::drain`] first), with when it was seen freed.
    pub fn find_freed(&mut self, address: &str, port: u16, at_us: i64) -> Found {
        let fits: Vec<usize> = self
            .recent
            .iter()
            .enumerate()
            .filter(|(_, (seen, s))| {
                *seen >= at_us && s.remote_port == port && same_address(address, &s.remote)
            })
            .map(|(i, _)| i)
            .collect();
        match fits.as_slice() {
            [] => Found::NotTcp,
            [one] => {
                let (seen, s) = self.recent.remove(*one).expect("index from the scan");
                Found::Freed(seen, s)
            }
            many => Found::Ambiguous(many.len()),
        }
    }
}

/// The cookies of the TCP sockets open now.
pub fn live_cookies() -> io::Result<std::collections::HashSet<u64>> {
    Ok(sockdiag::dump()?.into_iter().map(|s| s.cookie).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_leaves_out_syn_and_fins() {
        let both_fins = Counters {
            bytes_acked: 12_347,
            bytes_received: 54_322,
            bytes_sent: Some(12_345),
            bytes_retrans: Some(0),
        };
        assert_eq!(payload(&both_fins), (12_345, 54_321));
        // Our FIN not acknowledged: acked less the SYN is the payload.
        let no_fin = Counters {
            bytes_acked: 101,
            bytes_received: 1,
            bytes_sent: Some(100),
            bytes_retrans: Some(0),
        };
        assert_eq!(payload(&no_fin), (100, 0));
        // Retransmissions are not payload twice; what was not acknowledged is not counted.
        let partly = Counters {
            bytes_acked: 51,
            bytes_received: 0,
            bytes_sent: Some(130),
            bytes_retrans: Some(30),
        };
        assert_eq!(payload(&partly), (50, 0));
        // Older kernels without bytes_sent: the acknowledged sequence space less the SYN.
        let old = Counters {
            bytes_acked: 11,
            bytes_received: 6,
            bytes_sent: None,
            bytes_retrans: None,
        };
        assert_eq!(payload(&old), (10, 5));
    }

    #[test]
    fn addresses_compare_as_the_kernel_sees_them() {
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(same_address("127.0.0.1", &v4));
        assert!(same_address("::ffff:127.0.0.1", &v4));
        assert!(!same_address("127.0.0.2", &v4));
        assert!(!same_address("not an address", &v4));
    }
}
