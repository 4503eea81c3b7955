//! The connect channel: `ssh bastion connect HOST PORT` (usable as an OpenSSH `ProxyCommand`).
//! The recorder itself checks the `[forward]` policy, opens the TCP connection and relays it,
//! recording `forward.open` / `forward.close` and, where the policy asks, the bytes as PCAP.
//!
//! Only the exact form `connect HOST PORT` (single spaces, nothing else) is a connect channel;
//! any other command, however close, is an ordinary exec channel run by the shell and recorded
//! with all its I/O.
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::os::unix::ffi::OsStrExt;

use sessrec_core::forward::is_host_name;

/// Most addresses of a name that are considered.
const RESOLVED_MAX: usize = 16;

/// A well-formed connect request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// As the user wrote it (brackets of an IPv6 address removed).
    pub host: String,
    pub port: u16,
    /// The host was an address, not a name.
    pub literal: Option<IpAddr>,
}

impl ConnectRequest {
    /// `connect HOST PORT`, exactly; `None` for anything else.
    pub fn parse(command: &OsStr) -> Option<ConnectRequest> {
        let text = std::str::from_utf8(command.as_bytes()).ok()?;
        let mut parts = text.split(' ');
        let (verb, host, port) = (parts.next()?, parts.next()?, parts.next()?);
        if verb != "connect" || parts.next().is_some() {
            return None;
        }
        if port.is_empty()
            || port.len() > 5
            || port.starts_with('0')
            || !port.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let port: u16 = port.parse().ok()?;
        let (host, literal) = if let Some(inner) = host.strip_prefix('[') {
            let addr: Ipv6Addr = inner.strip_suffix(']')?.parse().ok()?;
            (addr.to_string(), Some(IpAddr::V6(addr)))
        } else if host.contains(':') {
            // A bare IPv6 address, as OpenSSH's `%h` passes one.
            let addr: Ipv6Addr = host.parse().ok()?;
            (addr.to_string(), Some(IpAddr::V6(addr)))
        } else if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            let addr: Ipv4Addr = host.parse().ok()?;
            (addr.to_string(), Some(IpAddr::V4(addr)))
        } else if is_host_name(host) {
            (host.to_string(), None)
        } else {
            return None;
        };
        Some(ConnectRequest {
            host,
            port,
            literal,
        })
    }

    /// The addresses to consider: the literal, or what the resolver says for the name.
    pub fn resolve(&self) -> io::Result<Vec<IpAddr>> {
        if let Some(addr) = self.literal {
            return Ok(vec![addr]);
        }
        let mut out: Vec<IpAddr> = Vec::new();
        for sa in (self.host.as_str(), self.port).to_socket_addrs()? {
            if !out.contains(&sa.ip()) && out.len() < RESOLVED_MAX {
                out.push(sa.ip());
            }
        }
        Ok(out)
    }

    /// The PCAP file's name for this connection to `addr` on channel `channel_no`.
    pub fn pcap_name(&self, addr: IpAddr) -> String {
        let addr = addr.to_string().replace(':', "_");
        format!("forward-{addr}-{}.pcap", self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Option<ConnectRequest> {
        ConnectRequest::parse(OsStr::new(s))
    }

    #[test]
    fn only_the_exact_form_is_a_connect_request() {
        let r = parse("connect db1.internal 5432").unwrap();
        assert_eq!(
            (r.host.as_str(), r.port, r.literal),
            ("db1.internal", 5432, None)
        );
        let r = parse("connect 127.0.0.1 80").unwrap();
        assert_eq!(r.literal, Some("127.0.0.1".parse().unwrap()));
        let r = parse("connect [::1] 22").unwrap();
        assert_eq!(
            (r.host.as_str(), r.literal),
            ("::1", Some("::1".parse().unwrap()))
        );
        for smuggled in [
            "connect 127.0.0.1 80; id",
            "connect 127.0.0.1 80 extra",
            "connect  127.0.0.1 80",
            "connect 127.0.0.1 80 ",
            "connect 127.0.0.1 080",
            "connect 127.0.0.1 0",
            "connect 127.0.0.1 65536",
            "connect $(id) 80",
            "connect -oProxyCommand=x 22",
            "connect host\t22",
            "connect 1.2.3 22",
            "connect ::1:: 22",
            "connect [::1 22",
            "connect fe80::1%eth0 22",
            "connect host",
            "CONNECT host 22",
            "connect host 22\nid",
            "connect ho`id`st 22",
        ] {
            assert_eq!(parse(smuggled), None, "{smuggled:?}");
        }
        assert_eq!(
            ConnectRequest::parse(OsStr::from_bytes(b"connect h\xff 22")),
            None
        );
    }

    #[test]
    fn pcap_names_carry_no_colons() {
        let r = parse("connect [2001:db8::1] 443").unwrap();
        assert_eq!(
            r.pcap_name(r.literal.unwrap()),
            "forward-2001_db8__1-443.pcap"
        );
    }
}
