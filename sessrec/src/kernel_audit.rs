//! The kernel's audit state as `auditctl` reports it: whether auditd runs, whether auditing is
//! enabled, and whether the shipped sessrec rules are loaded. Read by `doctor` and by heartbeats.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::Command;

/// The `auditctl` program, when installed.
pub struct Auditctl(&'static str);

/// What `auditctl -s` says.
pub struct AuditStatus {
    /// auditd's pid as the kernel knows it (0: none).
    pub pid: u64,
    pub enabled: bool,
}

impl AuditStatus {
    /// The kernel names a daemon and that process exists.
    pub fn daemon_runs(&self) -> bool {
        self.pid != 0 && Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

impl Auditctl {
    pub fn find() -> Option<Auditctl> {
        ["/usr/sbin/auditctl", "/sbin/auditctl"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .map(Auditctl)
    }

    fn run(&self, arg: &str) -> Option<String> {
        Command::new(self.0)
            .arg(arg)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// `auditctl -s`, or `None` when it failed (not root, no audit support).
    pub fn status(&self) -> Option<AuditStatus> {
        let status = self.run("-s")?;
        let value = |name: &str| {
            status.lines().find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .split(' ')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
        };
        Some(AuditStatus {
            pid: value("pid").unwrap_or(0),
            enabled: value("enabled").unwrap_or(0) != 0,
        })
    }

    /// The loaded rules (`auditctl -l`), or `None` when it failed.
    pub fn rules(&self) -> Option<String> {
        self.run("-l")
    }
}

/// The rules of packaging/examples/audit/sessrec.rules, each as what `auditctl -l` shows of
/// it: (arch, syscalls, key).
const AUDIT_RULES: &[(&str, &[&str], &str)] = &[
    ("b64", &["execve", "execveat"], "sessrec-exec"),
    ("b32", &["execve", "execveat"], "sessrec-exec"),
    ("b64", &["connect"], "sessrec-connect"),
    ("b32", &["connect"], "sessrec-connect"),
];

/// The shipped rules missing from an `auditctl -l` listing, as rule text.
pub fn missing_rules(listing: &str) -> Vec<String> {
    AUDIT_RULES
        .iter()
        .filter(|(arch, calls, key)| {
            !listing.lines().any(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                let has = |w: &str| words.contains(&w);
                let syscalls: Vec<&str> = words
                    .windows(2)
                    .filter(|w| w[0] == "-S")
                    .flat_map(|w| w[1].split(','))
                    .collect();
                l.starts_with("-a always,exit")
                    && has(&format!("arch={arch}"))
                    && calls.iter().all(|c| syscalls.contains(c))
                    && (has("auid!=-1") || has("auid!=unset") || has("auid!=4294967295"))
                    && has(&format!("key={key}"))
            })
        })
        .map(|(arch, calls, key)| {
            format!(
                "-a always,exit -F arch={arch} -S {} -F auid>=0 -F auid!=-1 -F key={key}",
                calls.join(",")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_rules_are_checked_one_by_one() {
        let shipped = include_str!("../../packaging/examples/audit/sessrec.rules");
        // As auditctl -l prints the shipped file.
        let listing: String = shipped
            .lines()
            .filter(|l| l.starts_with("-a "))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(missing_rules(&listing).is_empty());
        let without_b32_connect: String = listing
            .lines()
            .filter(|l| !(l.contains("b32") && l.contains("connect")))
            .map(|l| format!("{l}\n"))
            .collect();
        let missing = missing_rules(&without_b32_connect);
        assert_eq!(missing.len(), 1);
        assert!(missing[0].contains("arch=b32 -S connect"));
        assert_eq!(missing_rules("No rules").len(), 4);
        let other_key = listing.replace("key=sessrec-exec", "key=other");
        assert_eq!(missing_rules(&other_key).len(), 2);
    }
}
