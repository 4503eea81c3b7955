//! What one audit event says, from its records: an exec, a connect, or auditd's own news.
//!
//! Only record types the kernel generates are read for execs and connects (SYSCALL, EXECVE,
//! CWD, PATH, PROCTITLE, SOCKADDR); user-space messages (USER_*, anything sent with
//! `auditctl -m`) are never read as either, whatever they contain. The DAEMON_* records are
//! auditd's own.
#![forbid(unsafe_code)]

use std::net::{Ipv4Addr, Ipv6Addr};

use super::record::{EventId, Record};

/// The kernel's record types an exec or connect is read from.
pub const KERNEL_TYPES: &[&str] = &["SYSCALL", "EXECVE", "CWD", "PATH", "PROCTITLE", "SOCKADDR"];

/// An owned record of a pending event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    pub kind: String,
    pub body: Vec<u8>,
}

impl OwnedRecord {
    pub fn of(r: &Record<'_>) -> OwnedRecord {
        OwnedRecord {
            kind: r.kind.to_string(),
            body: r.body.to_vec(),
        }
    }

    pub fn view(&self, id: EventId) -> Record<'_> {
        Record {
            kind: &self.kind,
            id,
            body: &self.body,
        }
    }
}

/// The process that made the syscall, from the SYSCALL record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub uid: Option<u32>,
    pub euid: Option<u32>,
    pub suid: Option<u32>,
    pub fsuid: Option<u32>,
    pub gid: Option<u32>,
    pub egid: Option<u32>,
    /// None when unset (4294967295).
    pub auid: Option<u32>,
    pub ses: Option<u32>,
    pub tty: Option<Vec<u8>>,
    pub comm: Option<Vec<u8>>,
    pub exe: Option<Vec<u8>>,
    pub success: bool,
    pub exit: i64,
    pub key: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecFact {
    pub id: EventId,
    pub syscall: &'static str,
    pub process: Process,
    pub cwd: Option<Vec<u8>>,
    /// The path given to execve (PATH item 0).
    pub path: Option<Vec<u8>>,
    pub args: Vec<Vec<u8>>,
    pub argc: u64,
    /// Why `args` is not the whole argv, when it is not.
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectFact {
    pub id: EventId,
    pub process: Process,
    /// `inet` or `inet6`.
    pub family: &'static str,
    pub address: String,
    pub port: u16,
    /// The socket's descriptor (`a0`, hex), where the syscall takes it directly (not i386's
    /// socketcall).
    pub fd: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonFact {
    pub id: EventId,
    /// `DAEMON_END`, ...
    pub kind: String,
    /// The record's fields as text (bounded; bytes outside printable ASCII escaped).
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    Exec(ExecFact),
    Connect(ConnectFact),
    Daemon(DaemonFact),
    /// Anything else (other syscalls, user-space messages, connects to local sockets).
    Other,
}

/// The name of syscall `nr` on audit arch `arch` (hex, as the SYSCALL record writes it), for
/// the syscalls read here; for i386's socketcall, `a0` = 3 is connect.
fn syscall_name(arch: &[u8], nr: i64, a0: Option<&[u8]>) -> Option<&'static str> {
    let arch = std::str::from_utf8(arch).ok()?.to_ascii_lowercase();
    let table: &[(i64, &str)] = match arch.as_str() {
        "c000003e" => &[(59, "execve"), (322, "execveat"), (42, "connect")],
        "40000003" => &[(11, "execve"), (358, "execveat"), (362, "connect")],
        "c00000b7" => &[(221, "execve"), (281, "execveat"), (203, "connect")],
        "40000028" => &[(11, "execve"), (387, "execveat"), (283, "connect")],
        _ => &[],
    };
    if arch == "40000003" && nr == 102 {
        return (a0 == Some(b"3")).then_some("connect");
    }
    table.iter().find(|(n, _)| *n == nr).map(|(_, name)| *name)
}

/// The descriptor `connect` was called on: `a0` of the SYSCALL record (hex), except for
/// i386's socketcall, whose `a0` is the call number.
fn connect_fd(syscall: &Record<'_>) -> Option<i32> {
    if syscall.num("syscall") == Some(102) && syscall.raw("arch") == Some(b"40000003") {
        return None;
    }
    let a0 = std::str::from_utf8(syscall.raw("a0")?).ok()?;
    i32::try_from(u64::from_str_radix(a0, 16).ok()?).ok()
}

fn unset_is_none(v: Option<u32>) -> Option<u32> {
    v.filter(|v| *v != u32::MAX)
}

fn process_of(r: &Record<'_>) -> Process {
    Process {
        pid: r.u32("pid").unwrap_or(0),
        ppid: r.u32("ppid").unwrap_or(0),
        uid: r.u32("uid"),
        euid: r.u32("euid"),
        suid: r.u32("suid"),
        fsuid: r.u32("fsuid"),
        gid: r.u32("gid"),
        egid: r.u32("egid"),
        auid: unset_is_none(r.u32("auid")),
        ses: unset_is_none(r.u32("ses")),
        tty: r.raw("tty").map(<[u8]>::to_vec),
        comm: r.bytes("comm"),
        exe: r.bytes("exe"),
        success: r.raw("success") == Some(b"yes"),
        exit: r.num("exit").unwrap_or(0),
        key: r.bytes("key"),
    }
}

/// Reads one complete event.
pub fn interpret(id: EventId, records: &[OwnedRecord]) -> Fact {
    let views: Vec<Record<'_>> = records.iter().map(|r| r.view(id)).collect();
    if let Some(daemon) = views.iter().find(|r| r.kind.starts_with("DAEMON_")) {
        return Fact::Daemon(DaemonFact {
            id,
            kind: daemon.kind.to_string(),
            detail: printable(daemon.body, 512),
        });
    }
    let kernel: Vec<&Record<'_>> = views
        .iter()
        .filter(|r| KERNEL_TYPES.contains(&r.kind))
        .collect();
    let Some(syscall) = kernel.iter().find(|r| r.kind == "SYSCALL") else {
        return Fact::Other;
    };
    let Some(name) = syscall
        .raw("arch")
        .zip(syscall.num("syscall"))
        .and_then(|(arch, nr)| syscall_name(arch, nr, syscall.raw("a0")))
    else {
        return Fact::Other;
    };
    let process = process_of(syscall);
    let find = |kind: &str| kernel.iter().find(|r| r.kind == kind);
    if name == "connect" {
        let Some(addr) = find("SOCKADDR")
            .and_then(|r| r.bytes("saddr"))
            .and_then(|s| parse_sockaddr(&s))
        else {
            return Fact::Other;
        };
        return Fact::Connect(ConnectFact {
            id,
            process,
            family: addr.0,
            address: addr.1,
            port: addr.2,
            fd: connect_fd(syscall),
        });
    }
    let execve: Vec<&&Record<'_>> = kernel.iter().filter(|r| r.kind == "EXECVE").collect();
    let (args, argc, problem) = if execve.is_empty() {
        // A failed exec has no EXECVE record: the title of the process that tried.
        let title = find("PROCTITLE").and_then(|r| r.bytes("proctitle"));
        match title {
            Some(t) if process.success => {
                let args: Vec<Vec<u8>> = t.split(|b| *b == 0).map(<[u8]>::to_vec).collect();
                let n = args.len() as u64;
                (
                    args,
                    n,
                    Some("no EXECVE record: arguments from PROCTITLE (at most 128 bytes)".into()),
                )
            }
            _ => (Vec::new(), 0, None),
        }
    } else {
        assemble_args(&execve)
    };
    let path = kernel
        .iter()
        .filter(|r| r.kind == "PATH")
        .find(|r| r.raw("item") == Some(b"0"))
        .and_then(|r| r.bytes("name"));
    Fact::Exec(ExecFact {
        id,
        syscall: name,
        process,
        cwd: find("CWD").and_then(|r| r.bytes("cwd")),
        path,
        args,
        argc,
        problem,
    })
}

/// The argv from the EXECVE records: `argc`, then `aN` whole or `aN_len` with pieces
/// `aN[i]`, over as many records as the kernel needed.
/// Grows `v` to hold index `i` (tables grow only as indexes appear in the records).
fn slot<T: Default>(v: &mut Vec<T>, i: usize) {
    if v.len() <= i {
        v.resize_with(i + 1, Default::default);
    }
}

fn assemble_args(records: &[&&Record<'_>]) -> (Vec<Vec<u8>>, u64, Option<String>) {
    let mut argc: Option<u64> = None;
    let mut whole: Vec<Option<Vec<u8>>> = Vec::new();
    let mut pieces: Vec<Vec<(u64, Vec<u8>)>> = Vec::new();
    let mut lens: Vec<Option<u64>> = Vec::new();
    let mut bad = 0u64;
    for r in records {
        for (k, v) in r.fields() {
            let Ok(k) = std::str::from_utf8(k) else {
                continue;
            };
            if k == "argc" {
                argc = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok());
                continue;
            }
            let Some(rest) = k.strip_prefix('a') else {
                continue;
            };
            let (index, tail) = match rest.find(|c: char| !c.is_ascii_digit()) {
                Some(p) => (&rest[..p], &rest[p..]),
                None => (rest, ""),
            };
            let Ok(i) = index.parse::<usize>() else {
                continue;
            };
            if i > 1 << 20 {
                bad += 1;
                continue;
            }
            if tail.is_empty() {
                slot(&mut whole, i);
                whole[i] = super::record::decode_value(v);
                if whole[i].is_none() {
                    bad += 1;
                }
            } else if tail == "_len" {
                slot(&mut lens, i);
                lens[i] = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok());
            } else if let Some(j) = tail
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
            {
                slot(&mut pieces, i);
                match super::record::decode_value(v) {
                    Some(p) => pieces[i].push((j, p)),
                    None => bad += 1,
                }
            }
        }
    }
    let argc_n = argc.unwrap_or(whole.len().max(pieces.len()) as u64);
    let mut args = Vec::new();
    let mut missing = 0u64;
    let mut short = 0u64;
    for i in 0..argc_n.min(1 << 20) as usize {
        if let Some(Some(a)) = whole.get(i) {
            args.push(a.clone());
            continue;
        }
        match pieces.get_mut(i) {
            Some(p) if !p.is_empty() => {
                p.sort_by_key(|(j, _)| *j);
                let complete = p.iter().enumerate().all(|(n, (j, _))| n as u64 == *j);
                let joined: Vec<u8> = p.iter().flat_map(|(_, b)| b.iter().copied()).collect();
                let expected = lens.get(i).copied().flatten();
                if !complete || expected.is_some_and(|e| e != joined.len() as u64) {
                    short += 1;
                }
                args.push(joined);
            }
            _ => {
                missing += 1;
                args.push(Vec::new());
            }
        }
    }
    let mut problems = Vec::new();
    if argc.is_none() {
        problems.push("no argc".to_string());
    }
    if missing > 0 {
        problems.push(format!("{missing} of {argc_n} arguments missing"));
    }
    if short > 0 {
        problems.push(format!("{short} arguments incomplete"));
    }
    if bad > 0 {
        problems.push(format!("{bad} unreadable argument values"));
    }
    let problem = (!problems.is_empty()).then(|| problems.join("; "));
    (args, argc_n, problem)
}

/// (family, address, port) of an IPv4 or IPv6 sockaddr; `None` for other families.
pub fn parse_sockaddr(s: &[u8]) -> Option<(&'static str, String, u16)> {
    if s.len() < 2 {
        return None;
    }
    let family = u16::from_ne_bytes([s[0], s[1]]);
    let port = |s: &[u8]| u16::from_be_bytes([s[2], s[3]]);
    match i32::from(family) {
        libc::AF_INET if s.len() >= 8 => Some((
            "inet",
            Ipv4Addr::new(s[4], s[5], s[6], s[7]).to_string(),
            port(s),
        )),
        libc::AF_INET6 if s.len() >= 24 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&s[8..24]);
            Some(("inet6", Ipv6Addr::from(a).to_string(), port(s)))
        }
        _ => None,
    }
}

/// `bytes` as printable ASCII, others as `\xNN`, cut at `max` output bytes.
pub fn printable(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    for b in bytes {
        if out.len() >= max {
            out.push_str("...");
            break;
        }
        if (0x20..0x7f).contains(b) && *b != b'\\' {
            out.push(*b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}
