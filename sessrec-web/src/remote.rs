//! Who is on the other end of a request: the connection's peer and, when that peer is one of
//! the configured trusted reverse proxies, the client it names in `X-Forwarded-For`.
//!
//! Only a trusted proxy's header is read, and in it the right-most entry that is not itself a
//! trusted proxy: each proxy appends the address it was connected from, so entries to the left
//! of that one were written by the client and prove nothing.
#![forbid(unsafe_code)]

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use sessrec_core::schema::Operator;

/// Entries of `X-Forwarded-For` looked at, from the right.
const MAX_HOPS: usize = 32;

/// The client a trusted proxy named (set on the request by [`crate::proxy_auth`]).
#[derive(Debug, Clone, Copy)]
pub struct ForwardedClient(pub IpAddr);

/// A request's remote end.
#[derive(Debug, Clone, Copy)]
pub struct Remote {
    /// The connection's peer.
    pub peer: SocketAddr,
    /// The client a trusted proxy (the peer) forwarded for.
    pub client: Option<IpAddr>,
}

impl Remote {
    /// The client's address: the forwarded one, or the peer's.
    pub fn ip(&self) -> IpAddr {
        self.client.unwrap_or(self.peer.ip())
    }

    /// `remote_addr` (and, through a proxy, `proxy_addr`) of an access line's operator.
    pub fn fill(&self, operator: &mut Operator) {
        match self.client {
            Some(client) => {
                operator.remote_addr = Some(client.to_string());
                operator.proxy_addr = Some(self.peer.to_string());
            }
            None => operator.remote_addr = Some(self.peer.to_string()),
        }
    }
}

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.client {
            Some(client) => write!(f, "{client} (through the proxy {})", self.peer),
            None => write!(f, "{}", self.peer),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Remote {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Remote, StatusCode> {
        let ConnectInfo(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .copied()
            .ok_or(StatusCode::INTERNAL_SERVER_ERROR)?;
        let client = parts
            .extensions
            .get::<ForwardedClient>()
            .map(|ForwardedClient(ip)| *ip);
        Ok(Remote { peer, client })
    }
}

/// One entry: an address, optionally with a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn entry_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

/// The client named in `X-Forwarded-For` (all of its headers, in order): the right-most entry
/// that is not a trusted proxy. `None` when there is no header, every entry is a trusted
/// proxy, or that entry is not an address (then nothing in the header is believed).
pub fn forwarded_client(headers: &HeaderMap, trusted: &[IpAddr]) -> Option<IpAddr> {
    let mut entries: Vec<&str> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let value = value.to_str().ok()?;
        entries.extend(value.split(','));
    }
    for entry in entries.iter().rev().take(MAX_HOPS) {
        let ip = entry_address(entry)?;
        if !trusted.iter().any(|t| t.to_canonical() == ip) {
            return Some(ip);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_right_most_untrusted_entry_is_the_client() {
        let trusted: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // What a client wrote on the left is passed over.
        assert_eq!(
            forwarded_client(&headers(&["6.6.6.6, 203.0.113.9"]), &trusted),
            ip("203.0.113.9")
        );
        // Trusted hops on the right are skipped, across several headers.
        assert_eq!(
            forwarded_client(&headers(&["6.6.6.6, 203.0.113.9", "10.0.0.2"]), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            forwarded_client(&headers(&["[2001:db8::7]:4711"]), &trusted),
            ip("2001:db8::7")
        );
        assert_eq!(
            forwarded_client(&headers(&["::ffff:198.51.100.4"]), &trusted),
            ip("198.51.100.4")
        );
        assert_eq!(forwarded_client(&headers(&[]), &trusted), None);
        assert_eq!(forwarded_client(&headers(&["10.0.0.1"]), &trusted), None);
        assert_eq!(
            forwarded_client(&headers(&["203.0.113.9, <script>"]), &trusted),
            None
        );
    }
}
