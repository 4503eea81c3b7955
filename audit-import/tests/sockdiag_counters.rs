//! The kernel's close notification for a TCP socket carries its final byte counters: a
//! localhost exchange of known sizes is seen with those sizes (root: the destroy groups need
//! CAP_NET_ADMIN).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use audit_import::sockdiag::{dump, dump_of, socket_inode, CloseListener, Family};

#[test]
fn close_notifications_carry_the_final_counters() {
    if !nix::unistd::geteuid().is_root() {
        assert_ne!(
            std::env::var("SESSREC_E2E").as_deref(),
            Ok("required"),
            "needs root"
        );
        eprintln!("skipped: needs root");
        return;
    }
    let mut listener_closes = CloseListener::open().expect("join the TCP destroy groups");
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = server.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(&vec![b'r'; 54_321]).unwrap();
        got.len()
    });
    let mut client = TcpStream::connect(addr).unwrap();
    let local = client.local_addr().unwrap();
    use std::os::fd::AsRawFd;
    let inode = socket_inode(std::process::id(), client.as_raw_fd()).expect("socket inode");
    let live = dump().unwrap();
    let mine = live
        .iter()
        .find(|s| s.inode == inode)
        .expect("the live socket in the dump");
    assert_eq!(mine.local_port, local.port());
    assert_eq!(mine.remote_port, addr.port());
    assert_eq!(mine.uid, nix::unistd::getuid().as_raw());
    let cookie = mine.cookie;
    client.write_all(&vec![b's'; 12_345]).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    client.read_to_end(&mut back).unwrap();
    assert_eq!(peer.join().unwrap(), 12_345);
    assert_eq!(back.len(), 54_321);
    drop(client);
    let start = Instant::now();
    let closed = loop {
        let got = listener_closes.drain(100_000).unwrap();
        if let Some(s) = got.sockets.into_iter().find(|s| s.cookie == cookie) {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no close notification"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("{closed:?}");
    assert_eq!(closed.local_port, local.port());
    let c = closed.counters.expect("tcp_info in the notification");
    assert_eq!(
        c.bytes_acked,
        12_345 + 2,
        "SYN and FIN count in the acked sequence space"
    );
    assert_eq!(c.bytes_received, 54_321 + 1, "the peer's FIN counts");
}

#[test]
fn an_ipv6_socket_is_in_the_ipv6_dump_only() {
    if !nix::unistd::geteuid().is_root() {
        assert_ne!(
            std::env::var("SESSREC_E2E").as_deref(),
            Ok("required"),
            "needs root"
        );
        eprintln!("skipped: needs root");
        return;
    }
    let Ok(server) = TcpListener::bind("[::1]:0") else {
        assert_ne!(
            std::env::var("SESSREC_E2E").as_deref(),
            Ok("required"),
            "no ::1"
        );
        return;
    };
    let client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    use std::os::fd::AsRawFd;
    let inode = socket_inode(std::process::id(), client.as_raw_fd()).unwrap();
    let in_v6 = dump_of(&[Family::Inet6]).unwrap();
    let mine = in_v6
        .iter()
        .find(|s| s.inode == inode)
        .expect("in the IPv6 dump");
    assert_eq!(mine.remote.to_string(), "::1");
    assert_eq!(mine.remote_port, server.local_addr().unwrap().port());
    assert!(!dump_of(&[Family::Inet])
        .unwrap()
        .iter()
        .any(|s| s.inode == inode));
}
