//! The connect channel (`ssh bastion connect HOST PORT`): the recorder checks the `[forward]`
//! policy, connects and relays, and records `forward.open` / `forward.close`; with
//! `record_payload` the bytes are a PCAP file that tcpdump reads. Refusals are recorded, and
//! any other command is an ordinary exec channel. Real ssh client, real sshd, real HTTP server
//! (python3 -m http.server), all on 127.0.0.1.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sessrec_core::schema::{ChannelStart, Event, ForwardClose, ForwardOpen, Line as Typed};
use sessrec_tests::*;

/// `python3 -m http.server` on 127.0.0.1, serving a directory with one known file.
struct HttpServer {
    child: Child,
    port: u16,
    _dir: TempDir,
}

const PAGE: &str = "srt-forward-page-4242\n";

impl HttpServer {
    fn start() -> HttpServer {
        Self::start_on("127.0.0.1")
    }

    fn start_on(address: &str) -> HttpServer {
        let dir = TempDir::new("http");
        std::fs::write(dir.join("page.txt"), PAGE).unwrap();
        let port = TcpListener::bind((address, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", address, &port.to_string()])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect((address, port)).is_err() {
            assert!(Instant::now() < deadline, "http.server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        HttpServer {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn typed(path: &Path) -> Vec<Event> {
    read_lines(path)
        .into_iter()
        .map(|l| Typed::from_map(l.value).event)
        .collect()
}

fn forward_login(tag: &str, forward: &str) -> RecordedLogin {
    RecordedLogin::launched(tag, Launch::LoginShell, &format!("\n{forward}"), |b| b)
}

/// The one channel file of the one session recorded so far, once it has ended.
fn only_channel(login: &RecordedLogin, sessions: usize) -> (PathBuf, PathBuf) {
    let session = login
        .tree
        .wait_sessions(sessions, Duration::from_secs(30))
        .pop()
        .unwrap();
    let channel = wait_channels(&session, 1, Duration::from_secs(30)).remove(0);
    wait_last_event(&channel, "channel.end", Duration::from_secs(30));
    assert_chain_ok(&channel);
    (session, channel)
}

#[test]
fn an_allowed_connection_is_relayed_recorded_and_kept_as_pcap() {
    require_e2e!("python3", "tcpdump");
    let http = HttpServer::start();
    let login = forward_login(
        "fwdpcap",
        &format!(
            "[[forward.allow]]\nusers = [\"srt-*\"]\nto = [\"127.0.0.1:{}\"]\nrecord_payload = true\n",
            http.port
        ),
    );
    let request = "GET /page.txt HTTP/1.0\r\nHost: srt\r\n\r\n";
    let out = login.sshd.login(&login.user).exec(
        &format!("connect 127.0.0.1 {}", http.port),
        request.as_bytes(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("HTTP/1.0 200") && stdout.ends_with(PAGE),
        "through the bastion: {out:?}"
    );

    let (session, channel) = only_channel(&login, 1);
    let events = typed(&channel);
    let start = events.iter().find_map(|e| match e {
        Event::ChannelStart(s) => Some(s.clone()),
        _ => None,
    });
    assert_eq!(
        start.and_then(|s: ChannelStart| s.kind).as_deref(),
        Some("forward")
    );
    let open: ForwardOpen = events
        .iter()
        .find_map(|e| match e {
            Event::ForwardOpen(o) => Some(o.clone()),
            _ => None,
        })
        .expect("forward.open");
    assert_eq!(open.result.as_deref(), Some("connected"));
    assert_eq!(open.destination.as_deref(), Some("127.0.0.1"));
    assert_eq!(open.port, Some(http.port));
    assert_eq!(open.address.as_deref(), Some("127.0.0.1"));
    let close: ForwardClose = events
        .iter()
        .find_map(|e| match e {
            Event::ForwardClose(c) => Some(c.clone()),
            _ => None,
        })
        .expect("forward.close");
    assert_eq!(close.bytes_to_destination, Some(request.len() as u64));
    assert_eq!(close.bytes_from_destination, Some(stdout.len() as u64));
    assert_eq!(close.result.as_deref(), Some("closed"));

    // The PCAP file: named in both lines, hashed into the record, and tcpdump reads the
    // request and the response out of it.
    let name = close.pcap.clone().expect("pcap named in forward.close");
    assert_eq!(open.pcap.as_deref(), Some(name.as_str()));
    let pcap = session.join(&name);
    let bytes = std::fs::read(&pcap).expect("pcap file");
    assert_eq!(close.pcap_bytes, Some(bytes.len() as u64));
    let sha = sha256_hex(&bytes);
    assert_eq!(close.pcap_sha256.as_deref(), Some(sha.as_str()));
    // The views: show, list, search by destination, and the PCAP handed out by export, which
    // tcpdump reads the request and the response from.
    let dir = login.tree.record_dir();
    let id = session.file_name().unwrap().to_string_lossy().into_owned();
    let shown = run_sessrec(dir, &["show", &id]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains(&format!(
            "forward connected to 127.0.0.1 port {}",
            http.port
        )),
        "{shown}"
    );
    let verified = run_sessrec(dir, &["verify", &id]);
    assert!(verified.status.success(), "verify: {verified:?}");
    let listed = run_sessrec(dir, &["list", "--json"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("\"forwards\":1"), "{listed}");
    let found = run_sessrec(
        dir,
        &[
            "search",
            "--forward",
            &format!("^127\\.0\\.0\\.1:{}$", http.port),
        ],
    );
    assert!(found.status.success(), "{found:?}");
    assert!(
        String::from_utf8_lossy(&found.stdout).contains("via connect channel, payload forward-"),
        "{found:?}"
    );
    let other_port = run_sessrec(dir, &["search", "--forward", ":1$"]);
    assert!(!other_port.status.success(), "{other_port:?}");
    let exported = dir.join("exported.pcap");
    let (written, text) = export_pcap_through_tcpdump(dir, &id, &exported);
    assert_eq!(written, bytes);
    assert!(text.contains("GET /page.txt HTTP/1.0"), "{text}");
    assert!(
        text.contains("HTTP/1.0 200") && text.contains(PAGE.trim()),
        "{text}"
    );

    // A changed file is not handed out.
    let mut changed = bytes.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    std::fs::write(&pcap, &changed).unwrap();
    let out = run_sessrec(dir, &["export", &id, "--format", "pcap"]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("differs from the one recorded"),
        "{out:?}"
    );
    let verified = run_sessrec(dir, &["verify", &id]);
    assert!(
        !verified.status.success(),
        "verify passed a changed payload: {verified:?}"
    );
    assert!(
        String::from_utf8_lossy(&verified.stdout).contains("the payload was changed")
            || String::from_utf8_lossy(&verified.stderr).contains("the payload was changed"),
        "{verified:?}"
    );
}

fn sha256_hex(data: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_destination_outside_the_policy_is_refused_and_recorded() {
    require_e2e!("python3");
    let http = HttpServer::start();
    // Allowed, but nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let login = forward_login(
        "fwdref",
        &format!("[[forward.allow]]\nusers = [\"srt-*\"]\nto = [\"127.0.0.1:{closed}\"]\n"),
    );
    let ssh = login.sshd.login(&login.user);
    let out = ssh.exec(
        &format!("connect 127.0.0.1 {}", http.port),
        b"GET /page.txt HTTP/1.0\r\n\r\n",
    );
    assert!(!out.status.success(), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("HTTP/1.0"),
        "refused, yet reached: {out:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused"),
        "{out:?}"
    );
    let (_, channel) = only_channel(&login, 1);
    let open = first_open(&channel);
    assert_eq!(open.result.as_deref(), Some("refused"));
    assert_eq!(open.port, Some(http.port));
    assert!(open
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("not among the destinations")));

    // Allowed but not accepting: recorded as failed, with the reason.
    let out = ssh.exec(&format!("connect 127.0.0.1 {closed}"), b"");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let (_, channel) = only_channel(&login, 2);
    let open = first_open(&channel);
    assert_eq!(open.result.as_deref(), Some("failed"), "{open:?}");
    assert_eq!(open.address.as_deref(), Some("127.0.0.1"));
    assert!(
        open.reason
            .as_deref()
            .is_some_and(|r| r.contains("connect")),
        "{open:?}"
    );
}

fn first_open(channel: &Path) -> ForwardOpen {
    typed(channel)
        .into_iter()
        .find_map(|e| match e {
            Event::ForwardOpen(o) => Some(o),
            _ => None,
        })
        .expect("forward.open")
}

fn first_close(channel: &Path) -> ForwardClose {
    typed(channel)
        .into_iter()
        .find_map(|e| match e {
            Event::ForwardClose(c) => Some(c),
            _ => None,
        })
        .expect("forward.close")
}

#[test]
fn smuggled_connect_commands_are_ordinary_exec_channels() {
    require_e2e!("python3");
    let http = HttpServer::start();
    let login = forward_login(
        "fwdsmug",
        &format!(
            "[[forward.allow]]\nusers = [\"srt-*\"]\nto = [\"127.0.0.1:{}\"]\n",
            http.port
        ),
    );
    let ssh = login.sshd.login(&login.user);
    for (n, command) in [
        format!("connect 127.0.0.1 {}; echo smuggled-$((6*7))", http.port),
        format!("connect  127.0.0.1 {}", http.port),
        format!("connect 127.0.0.1 {} || echo smuggled-$((6*7))", http.port),
    ]
    .iter()
    .enumerate()
    {
        let _ = ssh.exec(command, b"");
        let (_, channel) = only_channel(&login, n + 1);
        let events = typed(&channel);
        let kind = events.iter().find_map(|e| match e {
            Event::ChannelStart(s) => s.kind.clone(),
            _ => None,
        });
        assert_eq!(kind.as_deref(), Some("exec"), "{command:?}");
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, Event::ForwardOpen(_) | Event::ForwardClose(_))),
            "{command:?} was treated as a connect request"
        );
    }
}

#[test]
fn a_100_mb_transfer_through_the_proxycommand_arrives_intact() {
    require_e2e!();
    let target = PrivateSshd::start_default();
    let target_user = TestUser::new("fwdbigt", Path::new("/bin/sh"));
    let login = forward_login(
        "fwdbig",
        &format!(
            "[[forward.allow]]\nusers = [\"srt-*\"]\nto = [\"127.0.0.1:{}\"]\n",
            target.port()
        ),
    );
    let bastion = login.sshd.login(&login.user);
    let mut proxy = vec!["ssh".to_string()];
    proxy.extend(bastion.ssh_args());
    proxy.extend(["-T".into(), bastion.destination(), "connect %h %p".into()]);
    let proxy = format!("ProxyCommand={}", proxy.join(" "));

    let mut data = vec![0u8; 100 << 20];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut data)
        .unwrap();
    let want = sha256_hex(&data);
    let out = sessrec_tests::util::output_with_timeout(
        target
            .login(&target_user)
            .ssh_command(&["-T", "-o", &proxy])
            .arg("sha256sum"),
        &data,
        Duration::from_secs(600),
    );
    let got = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        got.split_whitespace().next(),
        Some(want.as_str()),
        "through the connect channel: {out:?}"
    );

    let (_, channel) = only_channel(&login, 1);
    let close = first_close(&channel);
    assert_eq!(close.port, Some(target.port()));
    assert!(
        close.bytes_to_destination.unwrap_or(0) > data.len() as u64,
        "{close:?}"
    );
    assert!(close.pcap.is_none(), "payload kept without record_payload");
}

#[test]
fn an_ipv6_destination_named_as_ssh_passes_it_is_relayed_and_its_pcap_reads() {
    require_e2e!("python3", "tcpdump");
    let http = HttpServer::start_on("::1");
    let login = forward_login(
        "fwdsix",
        &format!(
            "[[forward.allow]]\nusers = [\"srt-*\"]\nto = [\"[::1]:{}\"]\nrecord_payload = true\n",
            http.port
        ),
    );
    let request = "GET /page.txt HTTP/1.0\r\n\r\n";
    let out = login
        .sshd
        .login(&login.user)
        .exec(&format!("connect ::1 {}", http.port), request.as_bytes());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.ends_with(PAGE), "{out:?}");
    let (session, channel) = only_channel(&login, 1);
    let close = first_close(&channel);
    assert_eq!(close.address.as_deref(), Some("::1"));
    let pcap = session.join(close.pcap.expect("pcap"));
    let dump = Command::new("tcpdump")
        .args(["-n", "-v", "-A", "-r"])
        .arg(&pcap)
        .output()
        .expect("tcpdump");
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.status.success(), "{dump:?}");
    assert!(text.contains("IP6 (") && text.contains(") ::1."), "{text}");
    assert!(
        text.contains("GET /page.txt") && text.contains(PAGE.trim()),
        "{text}"
    );
    assert!(
        !text.contains("incorrect"),
        "a checksum tcpdump rejects: {text}"
    );
}

#[test]
fn a_connection_silent_both_ways_is_closed_at_the_idle_timeout() {
    require_e2e!();
    // The destination greets, reads the client's bytes, then stays silent with the connection
    // open until the client is done; then it reports whether the bastion's end is gone (a
    // write to a closed connection fails once the reset is back).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (client_done, client_is_done) = std::sync::mpsc::channel::<()>();
    let destination = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(b"hello\n").unwrap();
        let mut got = [0u8; 5];
        conn.read_exact(&mut got).unwrap();
        let _ = client_is_done.recv_timeout(Duration::from_secs(30));
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut gone = false;
        while !gone && Instant::now() < deadline {
            gone = conn.write_all(b"late\n").is_err();
            std::thread::sleep(Duration::from_millis(50));
        }
        (got, gone)
    });
    let login = forward_login(
        "fwdidle",
        &format!(
            "idle_timeout_s = 2\nidle_warning_s = 1\n[[forward.allow]]\nusers = [\"srt-*\"]\nto = [\"127.0.0.1:{port}\"]\nrecord_payload = true\n"
        ),
    );
    let out = login.sshd.login(&login.user).exec_timeout(
        &format!("connect 127.0.0.1 {port}"),
        b"ping\n",
        Duration::from_secs(60),
    );
    // Nothing but the destination's bytes reaches the client: no warning in the stream.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    client_done.send(()).unwrap();
    let (got, closed_by_bastion) = destination.join().unwrap();
    assert_eq!(&got, b"ping\n");
    assert!(closed_by_bastion, "the silent connection stayed open");

    let (session, channel) = only_channel(&login, 1);
    let close = typed(&channel)
        .into_iter()
        .find_map(|e| match e {
            Event::ForwardClose(c) => Some(c),
            _ => None,
        })
        .expect("forward.close");
    assert_eq!(close.result.as_deref(), Some("idle"), "{close:?}");
    assert!(
        close
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("idle timeout")),
        "{close:?}"
    );
    assert_eq!(
        (close.bytes_to_destination, close.bytes_from_destination),
        (Some(5), Some(6))
    );
    // The PCAP file is closed and hashed as for any other end.
    let pcap = std::fs::read(session.join(close.pcap.expect("pcap"))).unwrap();
    assert_eq!(close.pcap_sha256, Some(sha256_hex(&pcap)));
}

#[test]
fn connections_of_one_login_to_one_destination_share_one_pcap_that_verify_checks_per_close() {
    require_e2e!("python3", "tcpdump");
    let http = HttpServer::start();
    let login = forward_login(
        "fwdshare",
        &format!(
            "[[forward.allow]]\nusers = [\"srt-*\"]\nto = [\"127.0.0.1:{}\"]\nrecord_payload = true\n",
            http.port
        ),
    );
    let socket_dir = TempDir::new("fwdmux");
    let ssh = login
        .sshd
        .login(&login.user)
        .with_control_master(&socket_dir.path().join("m"));
    let connect = format!("connect 127.0.0.1 {}", http.port);
    let request = |n: u32| format!("GET /page.txt?conn={n} HTTP/1.0\r\n\r\n");
    // One connection alone, then two at once, all over one sshd connection: one login.
    let out = ssh.exec(&connect, request(1).as_bytes());
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with(PAGE),
        "{out:?}"
    );
    std::thread::scope(|s| {
        let runs: Vec<_> = [2, 3]
            .map(|n| {
                let (ssh, connect, request) = (&ssh, &connect, request(n));
                s.spawn(move || ssh.exec(connect, request.as_bytes()))
            })
            .into_iter()
            .collect();
        for run in runs {
            let out = run.join().unwrap();
            assert!(
                String::from_utf8_lossy(&out.stdout).ends_with(PAGE),
                "{out:?}"
            );
        }
    });
    ssh.stop_master();
    let sessions = login.tree.wait_sessions(1, Duration::from_secs(30));
    assert_eq!(sessions.len(), 1, "one login, one session");
    let session = &sessions[0];
    let channels = wait_channels(session, 3, Duration::from_secs(30));
    let mut closes = Vec::new();
    let mut ports = Vec::new();
    for channel in &channels {
        wait_last_event(channel, "channel.end", Duration::from_secs(30));
        for event in typed(channel) {
            match event {
                Event::ForwardOpen(o) => ports.push(o.local_port.expect("local_port")),
                Event::ForwardClose(c) => closes.push((channel.clone(), c)),
                _ => {}
            }
        }
    }
    assert_eq!((closes.len(), ports.len()), (3, 3));

    // One PCAP file for the destination, named by every close; each close hashed the file as
    // it stood after its own last append, the last one all of it.
    let pcaps: Vec<PathBuf> = std::fs::read_dir(session)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    assert_eq!(pcaps.len(), 1, "{pcaps:?}");
    let bytes = std::fs::read(&pcaps[0]).unwrap();
    let name = pcaps[0].file_name().unwrap().to_string_lossy().into_owned();
    for (_, c) in &closes {
        assert_eq!(c.pcap.as_deref(), Some(name.as_str()), "{c:?}");
        let upto = c.pcap_bytes.expect("pcap_bytes") as usize;
        assert_eq!(
            c.pcap_sha256.as_deref(),
            Some(sha256_hex(&bytes[..upto]).as_str())
        );
    }
    let largest = closes.iter().filter_map(|(_, c)| c.pcap_bytes).max();
    assert_eq!(largest, Some(bytes.len() as u64));

    // tcpdump reads it: three streams, one per connection (its own client port), each with
    // its request and the response.
    let dump = Command::new("tcpdump")
        .args(["-n", "-A", "-r"])
        .arg(&pcaps[0])
        .output()
        .expect("tcpdump");
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.status.success(), "{dump:?}");
    for n in 1..=3 {
        assert!(text.contains(&format!("GET /page.txt?conn={n}")), "{text}");
    }
    for port in &ports {
        assert!(
            text.contains(&format!("127.0.0.1.{port} > 127.0.0.1.{}", http.port)),
            "no stream from port {port}: {text}"
        );
    }
    assert_eq!(text.matches(PAGE.trim()).count(), 3, "{text}");

    let dir = login.tree.record_dir();
    let id = session.file_name().unwrap().to_string_lossy().into_owned();
    let verified = run_sessrec(dir, &["verify", &id]);
    assert!(verified.status.success(), "verify: {verified:?}");
    let exported = run_sessrec(dir, &["export", &id, "--format", "pcap"]);
    assert!(exported.status.success(), "{exported:?}");
    assert_eq!(exported.stdout, bytes);

    // An edit inside the first connection's packets (it ran alone, before the others) is
    // caught, by its own close as by the later ones.
    let first = closes
        .iter()
        .min_by_key(|(_, c)| c.pcap_bytes)
        .map(|(channel, c)| (channel.clone(), c.pcap_bytes.unwrap() as usize))
        .unwrap();
    let at = text_offset(&bytes, b"conn=1").expect("first request in the file");
    assert!(at < first.1);
    let mut changed = bytes.clone();
    changed[at + 5] = b'9';
    std::fs::write(&pcaps[0], &changed).unwrap();
    let verified = run_sessrec(dir, &["verify", &id]);
    assert!(!verified.status.success(), "verify passed: {verified:?}");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    let first_channel = first.0.file_stem().unwrap().to_string_lossy().into_owned();
    assert!(
        report.contains(&format!("by {first_channel}: the payload was changed")),
        "{report}"
    );
    let out = run_sessrec(dir, &["export", &id, "--format", "pcap"]);
    assert!(!out.status.success(), "a changed file was handed out");
}

fn text_offset(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
