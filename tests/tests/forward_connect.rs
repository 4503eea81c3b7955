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
    let out = run_sessrec(
        dir,
        &[
            "export",
            &id,
            "--format",
            "pcap",
            "-o",
            exported.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(&exported).unwrap(), bytes);
    let dump = Command::new("tcpdump")
        .args(["-n", "-A", "-r"])
        .arg(&exported)
        .output()
        .expect("tcpdump");
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.status.success(), "tcpdump: {dump:?}");
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
