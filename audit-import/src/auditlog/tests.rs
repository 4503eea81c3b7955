//! The parser on log text captured from auditd 3.0.9 (ENRICHED) and on hand-made records of
//! the kernel's long-argument and hostile forms.

use super::event::{interpret, Fact, OwnedRecord};
use super::record::{parse_line, EventId};

const ENRICHED: &str = include_str!("../../tests/fixtures/enriched.log");

/// The events of a log text, in order of first appearance.
fn events(text: &str) -> Vec<Fact> {
    let mut order: Vec<EventId> = Vec::new();
    let mut by_id: std::collections::HashMap<EventId, Vec<OwnedRecord>> = Default::default();
    for line in text.lines() {
        let Ok(r) = parse_line(line.as_bytes()) else {
            continue;
        };
        if !by_id.contains_key(&r.id) {
            order.push(r.id);
        }
        by_id.entry(r.id).or_default().push(OwnedRecord::of(&r));
    }
    order.iter().map(|id| interpret(*id, &by_id[id])).collect()
}

fn execs(text: &str) -> Vec<super::event::ExecFact> {
    events(text)
        .into_iter()
        .filter_map(|f| match f {
            Fact::Exec(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn captured_enriched_log() {
    let execs = execs(ENRICHED);
    let echo = execs
        .iter()
        .find(|e| e.process.comm.as_deref() == Some(b"echo"))
        .unwrap();
    assert_eq!(echo.syscall, "execve");
    assert_eq!(echo.args[1], b"a b", "hex-encoded argument");
    assert_eq!(echo.argc, 4);
    assert_eq!(echo.process.auid, Some(4242));
    assert_eq!(echo.process.ses, Some(13));
    assert_eq!(echo.process.ppid, 29925);
    assert_eq!(echo.cwd.as_deref(), Some(&b"/tmp/srt-aud"[..]));
    assert_eq!(echo.path.as_deref(), Some(&b"/bin/echo"[..]));
    assert!(echo.problem.is_none());
    let failed = execs.iter().find(|e| !e.process.success).unwrap();
    assert_eq!(failed.process.exit, -2);
    assert_eq!(failed.path.as_deref(), Some(&b"/nonexistent"[..]));
    assert!(failed.args.is_empty());
    let python = execs
        .iter()
        .find(|e| e.args.first().map(Vec::as_slice) == Some(b"python3"));
    assert!(
        python.unwrap().args[2].contains(&b'\n'),
        "a newline in an argument"
    );
    let connects: Vec<_> = events(ENRICHED)
        .into_iter()
        .filter_map(|f| match f {
            Fact::Connect(c) => Some(c),
            _ => None,
        })
        .collect();
    // The netlink "connect" of auditctl is not an IP connect; python's to 127.0.0.1:9 is.
    assert_eq!(connects.len(), 1);
    assert_eq!(
        (
            connects[0].family,
            connects[0].address.as_str(),
            connects[0].port
        ),
        ("inet", "127.0.0.1", 9)
    );
    assert_eq!(connects[0].process.exit, -115);
    let daemon = events(ENRICHED)
        .into_iter()
        .filter(|f| matches!(f, Fact::Daemon(_)))
        .count();
    assert_eq!(daemon, 1);
}

#[test]
fn long_arguments_in_pieces_over_several_records() {
    let big = "6162".repeat(5000);
    let text = format!(
        "type=SYSCALL msg=audit(10.000:1): arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=2 auid=1000 uid=1000 gid=1000 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts1 ses=7 comm=\"sudo\" exe=\"/usr/bin/sudo\" key=\"sessrec-exec\"\n\
         type=EXECVE msg=audit(10.000:1): argc=3 a0=\"echo\" a1_len=20000 a1[0]={big}\n\
         type=EXECVE msg=audit(10.000:1): a1[1]={big} a2=FF0A1B5B33316D\n\
         type=PROCTITLE msg=audit(10.000:1): proctitle=6563686F\n"
    );
    let e = &execs(&text)[0];
    assert_eq!(e.args.len(), 3);
    assert_eq!(e.args[1].len(), 20000);
    assert_eq!(&e.args[1][..4], b"abab");
    assert_eq!(e.args[2], b"\xff\n\x1b[31m");
    assert!(e.problem.is_none(), "{:?}", e.problem);
    assert_eq!(e.process.euid, Some(0));
    // A piece lost on the way is said, not hidden.
    let cut = text.replace(&format!(" a1[1]={big}"), "");
    let e = &execs(&cut)[0];
    assert!(e.problem.as_deref().unwrap().contains("incomplete"));
}

#[test]
fn user_space_messages_never_become_execs() {
    let text = "type=USER msg=audit(11.000:5): pid=9 uid=0 auid=1000 ses=7 msg='type=SYSCALL arch=c000003e syscall=59 success=yes exe=\"/bin/evil\"'\n\
        type=USER_CMD msg=audit(11.000:6): pid=9 uid=1000 auid=1000 ses=7 msg='cwd=\"/\" cmd=6964 exe=\"/usr/bin/sudo\" terminal=pts/1 res=success'\n\
        type=SYSCALL msg=audit(11.000:7): arch=c000003e syscall=44 success=yes exit=1 ppid=1 pid=9 auid=1000 uid=0 euid=0 ses=7 comm=\"logger\" exe=\"/usr/bin/logger\" key=(null)\n\
        type=USER msg=audit(11.000:7): pid=9 uid=0 auid=1000 ses=7 msg='argc=1 a0=\"evil\"'\n";
    assert!(events(text).iter().all(|f| matches!(f, Fact::Other)));
}

#[test]
fn ipv6_and_local_sockets() {
    let v6 = super::record::decode_hex(b"0A001F90000000000000000000000000000000000000000100000000")
        .unwrap();
    assert_eq!(
        super::event::parse_sockaddr(&v6),
        Some(("inet6", "::1".to_string(), 8080))
    );
    let unix = super::record::decode_hex(b"01002F746D702F73").unwrap();
    assert_eq!(super::event::parse_sockaddr(&unix), None);
}
