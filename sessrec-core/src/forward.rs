//! The `[forward]` policy: which users may reach which destinations through the bastion, and
//! whether the bytes are kept. Read by the recorder (its `connect` channel), by `sessrec
//! forward-sshd` (sshd's `PermitOpen` lines) and by `sessrec doctor`.
//!
//! A destination is `HOST:PORTS`: HOST a DNS name (exact, or `*.` + a domain for every name
//! under it), an IPv4 address or CIDR, or an IPv6 address or CIDR in brackets; PORTS a port, a
//! range `LOW-HIGH`, or `*`.
#![forbid(unsafe_code)]

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::Deserialize;

use crate::glob::glob_match;

/// The longest host name a destination or a request may name (DNS's limit).
pub const HOST_MAX: usize = 253;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardConfig {
    /// Default of the rules' `record_payload`: keep the bytes as PCAP.
    pub record_payload: bool,
    /// How long the recorder waits for a destination to accept.
    pub connect_timeout_s: u64,
    /// Who may reach what; a request is allowed when any rule for the user allows it.
    pub allow: Vec<ForwardRule>,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            record_payload: false,
            connect_timeout_s: 10,
            allow: Vec::new(),
        }
    }
}

/// One rule: users (globs) and groups it applies to, and the destinations they may reach.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ForwardRule {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Destinations as written (`HOST:PORTS`); parsed into `destinations` at load.
    pub to: Vec<String>,
    /// Overrides `[forward] record_payload` for this rule.
    #[serde(default)]
    pub record_payload: Option<bool>,
    #[serde(skip)]
    pub destinations: Vec<Destination>,
}

/// Where a rule lets a user connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub host: HostPattern,
    pub ports: PortRange,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// A DNS name, lowercase, matched exactly (case-insensitively).
    Name(String),
    /// `*.domain`: every name ending in `.domain` (the domain itself not included).
    Suffix(String),
    /// An address block; a single address is a /32 or /128.
    Net { addr: IpAddr, prefix: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
}

impl PortRange {
    pub const ANY: PortRange = PortRange {
        low: 1,
        high: 65535,
    };

    pub fn contains(self, port: u16) -> bool {
        (self.low..=self.high).contains(&port)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == PortRange::ANY {
            f.write_str("*")
        } else if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Name(n) => f.write_str(n),
            HostPattern::Suffix(d) => write!(f, "*.{d}"),
            HostPattern::Net { addr, prefix } => {
                let full = if addr.is_ipv4() { 32 } else { 128 };
                match (addr, *prefix == full) {
                    (IpAddr::V4(a), true) => write!(f, "{a}"),
                    (IpAddr::V4(a), false) => write!(f, "{a}/{prefix}"),
                    (IpAddr::V6(a), true) => write!(f, "[{a}]"),
                    (IpAddr::V6(a), false) => write!(f, "[{a}/{prefix}]"),
                }
            }
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.ports)
    }
}

/// Whether `name` is a syntactically valid DNS host name (letters, digits, `-`, dots between
/// labels of at most 63 bytes), as a request or a rule may name it.
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= HOST_MAX
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(p) if p > 0 && !text.starts_with('0') => Ok(p),
        _ => Err(format!("{text:?} is not a port (1-65535)")),
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(PortRange::ANY);
        }
        let (low, high) = match text.split_once('-') {
            Some((l, h)) => (parse_port(l)?, parse_port(h)?),
            None => {
                let p = parse_port(text)?;
                (p, p)
            }
        };
        if low > high {
            return Err(format!("port range {text:?} runs backwards"));
        }
        Ok(PortRange { low, high })
    }
}

fn parse_net(text: &str, v6: bool) -> Result<HostPattern, String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr: IpAddr = if v6 {
        IpAddr::V6(
            addr.parse::<Ipv6Addr>()
                .map_err(|_| format!("{addr:?} is not an IPv6 address"))?,
        )
    } else {
        IpAddr::V4(
            addr.parse::<Ipv4Addr>()
                .map_err(|_| format!("{addr:?} is not an IPv4 address"))?,
        )
    };
    let full = if v6 { 128 } else { 32 };
    let prefix = match prefix {
        None => full,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= full => n,
            _ => return Err(format!("{p:?} is not a prefix length (0-{full})")),
        },
    };
    if mask(addr, prefix) != addr {
        return Err(format!(
            "{text} has bits set past its /{prefix} (did you mean {}/{prefix}?)",
            mask(addr, prefix)
        ));
    }
    Ok(HostPattern::Net { addr, prefix })
}

/// `addr` with every bit past `prefix` cleared.
fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

impl FromStr for Destination {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (host, ports) = if let Some(rest) = text.strip_prefix('[') {
            let (inner, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{text:?}: '[' without ']'"))?;
            let ports = after
                .strip_prefix(':')
                .ok_or_else(|| format!("{text:?}: expected :PORTS after ']'"))?;
            (parse_net(inner, true)?, ports)
        } else {
            let (host, ports) = text
                .rsplit_once(':')
                .ok_or_else(|| format!("{text:?}: expected HOST:PORTS (PORTS may be *)"))?;
            let host = if host
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'/')
            {
                parse_net(host, false)?
            } else if let Some(domain) = host.strip_prefix("*.") {
                if !is_host_name(domain) {
                    return Err(format!("{text:?}: {domain:?} is not a host name"));
                }
                HostPattern::Suffix(domain.to_ascii_lowercase())
            } else if is_host_name(host) {
                HostPattern::Name(host.to_ascii_lowercase())
            } else {
                return Err(format!(
                    "{text:?}: {host:?} is not a host name, IPv4 address or CIDR (IPv6 goes in brackets)"
                ));
            };
            (host, ports)
        };
        Ok(Destination {
            host,
            ports: ports.parse().map_err(|e| format!("{text:?}: {e}"))?,
        })
    }
}

impl HostPattern {
    fn matches_name(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        match self {
            HostPattern::Name(n) => *n == name,
            HostPattern::Suffix(d) => name
                .strip_suffix(d.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            HostPattern::Net { .. } => false,
        }
    }

    fn contains(&self, addr: IpAddr) -> bool {
        match self {
            HostPattern::Net { addr: net, prefix } => {
                net.is_ipv4() == addr.is_ipv4() && mask(addr, *prefix) == *net
            }
            _ => false,
        }
    }
}

impl ForwardRule {
    pub fn applies_to(&self, user: &str, groups: &[String]) -> bool {
        self.users.iter().any(|g| glob_match(g, user))
            || groups
                .iter()
                .any(|grp| self.groups.iter().any(|g| glob_match(g, grp)))
    }
}

/// What the policy says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Connect to `addr`; keep the bytes when `record_payload`. `rule` is the destination
    /// entry that allowed it, as written.
    Allowed {
        addr: IpAddr,
        record_payload: bool,
        rule: String,
    },
    Refused(String),
}

impl ForwardConfig {
    /// Parses every rule's destinations; the error names the rule and the entry.
    pub fn validate(&mut self) -> Result<(), (String, String)> {
        if !(1..=600).contains(&self.connect_timeout_s) {
            return Err((
                "forward.connect_timeout_s".into(),
                format!("must be between 1 and 600 (got {})", self.connect_timeout_s),
            ));
        }
        for (i, rule) in self.allow.iter_mut().enumerate() {
            let key = format!("forward.allow[{i}]");
            if rule.users.is_empty() && rule.groups.is_empty() {
                return Err((key, "names neither users nor groups".into()));
            }
            if rule.to.is_empty() {
                return Err((format!("{key}.to"), "lists no destination".into()));
            }
            rule.destinations = rule
                .to
                .iter()
                .map(|d| d.parse())
                .collect::<Result<_, String>>()
                .map_err(|e| (format!("{key}.to"), e))?;
        }
        Ok(())
    }

    /// The rules that apply to `user`.
    pub fn rules_for<'a>(
        &'a self,
        user: &'a str,
        groups: &'a [String],
    ) -> impl Iterator<Item = &'a ForwardRule> + 'a {
        self.allow
            .iter()
            .filter(move |r| r.applies_to(user, groups))
    }

    /// Decides a request for `host` (as the user named it) and `port`, given the addresses
    /// `host` resolved to (for an address literal: itself). A name entry allows the name
    /// whatever it resolves to; an address entry allows the first resolved address inside it.
    pub fn decide(
        &self,
        user: &str,
        groups: &[String],
        host: &str,
        port: u16,
        resolved: &[IpAddr],
    ) -> Decision {
        let mut any_rule = false;
        for rule in self.rules_for(user, groups) {
            any_rule = true;
            for dest in rule.destinations.iter().filter(|d| d.ports.contains(port)) {
                let addr = if dest.host.matches_name(host) {
                    resolved.first().copied()
                } else {
                    resolved.iter().copied().find(|a| dest.host.contains(*a))
                };
                if let Some(addr) = addr {
                    return Decision::Allowed {
                        addr,
                        record_payload: rule.record_payload.unwrap_or(self.record_payload),
                        rule: dest.to_string(),
                    };
                }
            }
        }
        Decision::Refused(if any_rule {
            format!("{host} port {port} is not among the destinations allowed to {user}")
        } else {
            format!("no [forward] rule allows {user} to forward")
        })
    }
}

/// Most `PermitOpen` entries one destination may expand to (an address block times a port
/// range); larger ones are left out of sshd's list with a warning.
pub const PERMIT_OPEN_EXPAND_MAX: u128 = 1024;

/// A destination as sshd's `PermitOpen` entries (sshd matches the host as the client named it,
/// with `*` only as the whole host or port). `Err` says why it cannot be written so.
pub fn permit_open_entries(dest: &Destination) -> Result<Vec<String>, String> {
    let ports: Vec<String> = if dest.ports == PortRange::ANY {
        vec!["*".into()]
    } else {
        (dest.ports.low..=dest.ports.high)
            .map(|p| p.to_string())
            .collect()
    };
    let hosts: Vec<String> = match &dest.host {
        HostPattern::Name(n) => vec![n.clone()],
        HostPattern::Suffix(d) => {
            return Err(format!(
                "*.{d}: sshd's PermitOpen has no partial host wildcards; only the connect channel allows it"
            ))
        }
        HostPattern::Net { addr, prefix } => {
            let full = if addr.is_ipv4() { 32 } else { 128 };
            let count = 1u128 << (full - prefix).min(127);
            if count * ports.len() as u128 > PERMIT_OPEN_EXPAND_MAX {
                return Err(format!(
                    "{dest}: {count} addresses × {} ports is more than {PERMIT_OPEN_EXPAND_MAX} PermitOpen entries",
                    ports.len()
                ));
            }
            (0..count)
                .map(|i| match addr {
                    IpAddr::V4(a) => Ipv4Addr::from(u32::from(*a) + i as u32).to_string(),
                    IpAddr::V6(a) => format!("[{}]", Ipv6Addr::from(u128::from(*a) + i)),
                })
                .collect()
        }
    };
    if hosts.len() as u128 * ports.len() as u128 > PERMIT_OPEN_EXPAND_MAX {
        return Err(format!(
            "{dest}: more than {PERMIT_OPEN_EXPAND_MAX} PermitOpen entries"
        ));
    }
    Ok(hosts
        .iter()
        .flat_map(|h| ports.iter().map(move |p| format!("{h}:{p}")))
        .collect())
}

/// The `Match` criteria of a rule: one line per users / groups list (sshd ANDs criteria on
/// one line, so a rule naming both gets two blocks).
pub fn match_lines(rule: &ForwardRule) -> Vec<String> {
    let mut lines = Vec::new();
    if !rule.users.is_empty() {
        lines.push(format!("Match User {}", rule.users.join(",")));
    }
    if !rule.groups.is_empty() {
        lines.push(format!("Match Group {}", rule.groups.join(",")));
    }
    lines
}

/// The sshd settings every jump-host user gets: only local TCP forwarding, nothing else.
pub const JUMP_HOST_SETTINGS: &[(&str, &str)] = &[
    ("DisableForwarding", "no"),
    ("AllowTcpForwarding", "local"),
    ("AllowAgentForwarding", "no"),
    ("AllowStreamLocalForwarding", "no"),
    ("X11Forwarding", "no"),
    ("PermitTunnel", "no"),
    ("PermitListen", "none"),
    ("PermitUserRC", "no"),
];

/// The sshd drop-in for the policy: one `Match` block per rule, and warnings for entries sshd
/// cannot express. sshd takes the first value it reads for each keyword, so the file must sort
/// before the recorded users' own drop-in (`sessrec-forward.conf` < `sessrec.conf`), and a user
/// that two rules match gets the first block's destinations from sshd.
pub fn sshd_drop_in(config: &ForwardConfig, origin: &str) -> (String, Vec<String>) {
    let mut out = format!(
        "# Generated by `sessrec forward-sshd` from {origin}; regenerate, do not edit.\n\
         # Install as /etc/ssh/sshd_config.d/sessrec-forward.conf (before sessrec.conf).\n"
    );
    let mut warnings = Vec::new();
    for (i, rule) in config.allow.iter().enumerate() {
        let mut entries = Vec::new();
        for dest in &rule.destinations {
            match permit_open_entries(dest) {
                Ok(e) => entries.extend(e),
                Err(why) => warnings.push(format!("forward.allow[{i}]: {why}")),
            }
        }
        let permit = if entries.is_empty() {
            "none".to_string()
        } else {
            entries.join(" ")
        };
        let payload = rule.record_payload.unwrap_or(config.record_payload);
        if payload && !entries.is_empty() {
            warnings.push(format!(
                "forward.allow[{i}] asks for record_payload, which sshd's own forwarding (-J, -W, -L) cannot give: its connections are recorded without their content; the connect channel keeps it"
            ));
        }
        for line in match_lines(rule) {
            if payload && !entries.is_empty() {
                out.push_str(
                    "\n# record_payload: sshd's own forwarding keeps no content (the connect channel does).",
                );
            }
            out.push_str(&format!("\n{line}\n"));
            for (k, v) in JUMP_HOST_SETTINGS {
                out.push_str(&format!("    {k} {v}\n"));
            }
            out.push_str(&format!("    PermitOpen {permit}\n"));
        }
    }
    (out, warnings)
}

/// What `sshd -T` should say for a user that `rules` apply to (the first rule's block wins in
/// sshd): (lowercase keyword, expected value).
pub fn expected_sshd(rule: &ForwardRule) -> Vec<(String, String)> {
    let mut want: Vec<(String, String)> = JUMP_HOST_SETTINGS
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    let entries: Vec<String> = rule
        .destinations
        .iter()
        .filter_map(|d| permit_open_entries(d).ok())
        .flatten()
        .collect();
    want.push((
        "permitopen".into(),
        if entries.is_empty() {
            "none".into()
        } else {
            entries.join(" ")
        },
    ));
    want
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(s: &str) -> Destination {
        s.parse().unwrap()
    }

    #[test]
    fn destinations_parse_and_print_back() {
        for s in [
            "db1.internal:5432",
            "*.web.internal:443",
            "10.1.0.0/16:22",
            "127.0.0.1:8000-8100",
            "[::1]:*",
            "[2001:db8::/32]:443",
        ] {
            assert_eq!(dest(s).to_string(), s);
        }
        assert_eq!(dest("DB1.Internal:22").to_string(), "db1.internal:22");
        for bad in [
            "db1",
            "db1:0",
            "db1:65536",
            "db1:22-21",
            "10.0.0.1/33:22",
            "10.0.0.1/8:22",
            "::1:22",
            "[::1]22",
            "a_b:22",
            "*:22",
            "host:022",
        ] {
            assert!(bad.parse::<Destination>().is_err(), "{bad}");
        }
    }

    fn policy(text: &str) -> ForwardConfig {
        let mut c: ForwardConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        c
    }

    #[test]
    fn requests_are_decided_by_name_or_address() {
        let c = policy(
            r#"
[[allow]]
users = ["alice"]
to = ["db1.internal:5432", "10.1.0.0/16:22", "*.web.internal:443"]
[[allow]]
groups = ["dba"]
to = ["127.0.0.1:*"]
record_payload = true
"#,
        );
        let db: IpAddr = "192.0.2.7".parse().unwrap();
        let inside: IpAddr = "10.1.2.3".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(matches!(
            c.decide("alice", &[], "DB1.internal", 5432, &[db]),
            Decision::Allowed { addr, record_payload: false, .. } if addr == db
        ));
        assert!(matches!(
            c.decide("alice", &[], "db1.internal", 22, &[db]),
            Decision::Refused(_)
        ));
        assert!(matches!(
            c.decide("alice", &[], "jump.example", 22, &[db, inside]),
            Decision::Allowed { addr, .. } if addr == inside
        ));
        assert!(matches!(
            c.decide("alice", &[], "a.web.internal", 443, &[db]),
            Decision::Allowed { .. }
        ));
        assert!(matches!(
            c.decide("alice", &[], "web.internal", 443, &[db]),
            Decision::Refused(_)
        ));
        assert!(matches!(
            c.decide("bob", &["dba".into()], "127.0.0.1", 8080, &[lo]),
            Decision::Allowed {
                record_payload: true,
                ..
            }
        ));
        match c.decide("carol", &[], "127.0.0.1", 80, &[lo]) {
            Decision::Refused(why) => assert!(why.contains("no [forward] rule"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_rules_name_the_rule() {
        let mut c: ForwardConfig =
            toml::from_str("[[allow]]\nusers=[\"a\"]\nto=[\"x\"]\n").unwrap();
        let (key, msg) = c.validate().unwrap_err();
        assert_eq!(key, "forward.allow[0].to");
        assert!(msg.contains("HOST:PORTS"), "{msg}");
        let mut c: ForwardConfig = toml::from_str("[[allow]]\nto=[\"x:1\"]\n").unwrap();
        assert_eq!(c.validate().unwrap_err().0, "forward.allow[0]");
    }

    #[test]
    fn permit_open_is_generated_or_refused_with_a_reason() {
        assert_eq!(
            permit_open_entries(&dest("db1:5432")).unwrap(),
            ["db1:5432"]
        );
        assert_eq!(permit_open_entries(&dest("db1:*")).unwrap(), ["db1:*"]);
        assert_eq!(
            permit_open_entries(&dest("10.0.0.0/31:22-23")).unwrap(),
            ["10.0.0.0:22", "10.0.0.0:23", "10.0.0.1:22", "10.0.0.1:23"]
        );
        assert_eq!(
            permit_open_entries(&dest("[::1]:22")).unwrap(),
            ["[::1]:22"]
        );
        assert!(permit_open_entries(&dest("*.web:443")).is_err());
        assert!(permit_open_entries(&dest("10.0.0.0/8:22")).is_err());
        let c = policy("[[allow]]\nusers=[\"a\",\"b\"]\ngroups=[\"g\"]\nto=[\"h:1\",\"*.w:2\"]\n");
        let (text, warnings) = sshd_drop_in(&c, "/etc/sessrec/sessrec.toml");
        assert!(text.contains("\nMatch User a,b\n"), "{text}");
        assert!(text.contains("\nMatch Group g\n"), "{text}");
        assert_eq!(text.matches("    PermitOpen h:1\n").count(), 2, "{text}");
        assert!(text.contains("    AllowTcpForwarding local\n"));
        assert_eq!(warnings.len(), 1);
        assert!(!text.contains("record_payload"), "{text}");
        // A rule that asks for the content is told that sshd's own path keeps none.
        let c = policy("[[allow]]\nusers=[\"a\"]\nto=[\"h:1\"]\nrecord_payload=true\n");
        let (text, warnings) = sshd_drop_in(&c, "/etc/sessrec/sessrec.toml");
        assert!(
            text.contains("# record_payload: sshd's own forwarding keeps no content"),
            "{text}"
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("record_payload"), "{warnings:?}");
    }
}
