//! The kernel's count of audit events it dropped (backlog full, rate limit, no auditd), as
//! `auditctl -s` reports it.
#![forbid(unsafe_code)]

use std::io;
use std::path::Path;
use std::process::{Command, Stdio};

const AUDITCTL: &[&str] = &["/usr/sbin/auditctl", "/sbin/auditctl"];

/// The `lost` counter now.
pub fn read_lost() -> io::Result<u64> {
    let program = AUDITCTL
        .iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "auditctl is not installed"))?;
    let out = Command::new(program)
        .arg("-s")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!("{program} -s failed")));
    }
    parse_status(&String::from_utf8_lossy(&out.stdout), "lost")
        .ok_or_else(|| io::Error::other(format!("{program} -s printed no lost counter")))
}

/// A numeric line `NAME N` of `auditctl -s`.
pub fn parse_status(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.trim().split_once(' ')?;
        (k == name).then(|| v.trim().split(' ').next()?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_status() {
        let s = "enabled 1\nfailure 1\npid 29871\nrate_limit 0\nbacklog_limit 64\nlost 17\n";
        assert_eq!(super::parse_status(s, "lost"), Some(17));
        assert_eq!(super::parse_status(s, "pid"), Some(29871));
        assert_eq!(super::parse_status(s, "nope"), None);
    }
}
