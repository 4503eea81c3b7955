//! The shipped rsyslog configurations (packaging/shippers/rsyslog/) on real rsyslog: a private
//! "bastion" instance tails a record tree with `sessrec-ship.conf` and forwards over RELP with
//! TLS (certificates made with openssl) on 127.0.0.1 to a private "central" instance running
//! `sessrec-receive.conf`, whose `sessrec receive` rebuilds one file per record file. Every
//! record file must arrive byte for byte: each line exactly once, intact, in order — including
//! maximum-size lines appended in 4 KiB pieces, lines written while the shipper was stopped,
//! files renamed into place, both unattributed layouts, and a receiver killed mid-session.
//! The fleet test runs three bastions (sshd + PAM module + recorder + sender, each in its own
//! UTS and mount namespace, so with its own host name and /dev/log) into one receiver.
//!
//! Every instance runs in the foreground (`-n`) with its own config, work directory and pid
//! file, and listens on its own syslog socket: the host's syslog socket and pid file are never
//! touched.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{Map, Value};
use sessrec_core::id::SessionId;
use sessrec_core::record::FileContext;
use sessrec_core::tree::SessionDir;
use sessrec_core::writer::{RecordWriter, WriterOptions};
use sessrec_tests::util::{output_with_timeout, wait_child};
use sessrec_tests::*;

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
const HOST: &str = "bastion-ship-test";
/// How long shipping may take once a line is on disk (generous: the machine is shared).
const SHIP_TIMEOUT: Duration = Duration::from_secs(90);

fn shipped_config(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../packaging/shippers/rsyslog")
        .join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Replaces `from` with `to`, insisting that the shipped text contains `from` (so a change to
/// the shipped file cannot silently leave the test running something else).
fn adapt(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "shipped rsyslog config no longer contains {from:?}; update this test"
    );
    text.replace(from, to)
}

/// A private rsyslogd in the foreground, stopped on drop.
struct Rsyslog {
    name: String,
    config: PathBuf,
    pid_file: PathBuf,
    log: PathBuf,
    /// Runs in its own UTS namespace with this host name (a bastion of its own).
    uts_host: Option<String>,
    child: Option<Child>,
}

impl Rsyslog {
    fn new(name: &str, dir: &Path, config_text: &str) -> Rsyslog {
        let work = dir.join(format!("{name}-work"));
        fs::create_dir_all(&work).expect("create rsyslog work dir");
        let main = dir.join(format!("{name}.conf"));
        let body = dir.join(format!("{name}-shipped.conf"));
        fs::write(&body, config_text).expect("write adapted config");
        fs::write(
            &main,
            format!(
                "global(workDirectory=\"{}\")\ninclude(file=\"{}\")\n",
                work.display(),
                body.display()
            ),
        )
        .expect("write rsyslog config");
        let out = run(Command::new(RSYSLOGD).arg("-N1").arg("-f").arg(&main));
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.contains("error") && !text.contains("warning"),
            "rsyslogd -N1 complains about the {name} config:\n{text}"
        );
        Rsyslog {
            name: name.to_string(),
            config: main,
            pid_file: dir.join(format!("{name}.pid")),
            log: dir.join(format!("{name}.log")),
            uts_host: None,
            child: None,
        }
    }

    fn start(&mut self) {
        assert!(self.child.is_none(), "{} already running", self.name);
        let _ = fs::remove_file(&self.pid_file);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open rsyslog log");
        let mut cmd = match &self.uts_host {
            // unshare(1) execs: the child's pid is rsyslogd's.
            Some(host) => {
                let mut c = Command::new("unshare");
                c.args([
                    "--uts",
                    "--",
                    "sh",
                    "-c",
                    "hostname \"$1\" && shift && exec \"$@\"",
                    "sh",
                ])
                .arg(host)
                .arg(RSYSLOGD);
                c
            }
            None => Command::new(RSYSLOGD),
        };
        let child = cmd
            .arg("-n")
            .arg("-f")
            .arg(&self.config)
            .arg("-i")
            .arg(&self.pid_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("start rsyslogd");
        self.child = Some(child);
        wait_until(
            &format!("{} rsyslogd pid file", self.name),
            Duration::from_secs(20),
            || self.pid_file.exists(),
        );
    }

    /// SIGTERM (rsyslog's orderly shutdown: the queue is saved, imfile state written) and wait.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            if wait_child(&mut child, Duration::from_secs(30)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} rsyslogd did not stop on SIGTERM\n{}",
                    self.name,
                    self.log_text()
                );
            }
        }
    }

    /// SIGKILL: no shutdown at all, as in a crash.
    fn crash(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL rsyslogd");
        child.wait().expect("reap rsyslogd");
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            if wait_child(&mut child, Duration::from_secs(10)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!("--- {} rsyslogd log ---\n{}", self.name, self.log_text());
        }
    }
}

/// The central host's name in its TLS certificate (the senders' target in the shipped file).
const CENTRAL_NAME: &str = "logs.example.net";

/// A private CA and certificates made with openssl, laid out as the shipped files expect in
/// /etc/sessrec/tls/: `<dir>/central/` (ca.pem, central.pem, central.key) and one directory
/// per bastion (ca.pem, bastion.pem, bastion.key), the bastion's certificate naming
/// `<bastion>.bastion.example.net` (the receiver permits `*.bastion.example.net`).
fn make_tls(dir: &Path, bastions: &[&str]) -> PathBuf {
    let tls = dir.join("tls");
    fs::create_dir_all(&tls).expect("tls dir");
    let ca_key = tls.join("ca.key");
    let ca = tls.join("ca.pem");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .args(["req", "-x509", "-days", "2", "-subj", "/CN=sessrec test CA"])
        .args(ec)
        .arg("-keyout")
        .arg(&ca_key)
        .arg("-out")
        .arg(&ca));
    let issue = |sub: &str, role: &str, name: &str| {
        let d = tls.join(sub);
        fs::create_dir_all(&d).expect("cert dir");
        fs::copy(&ca, d.join("ca.pem")).expect("copy CA");
        let key = d.join(format!("{role}.key"));
        let csr = d.join(format!("{role}.csr"));
        let ext = d.join("ext.cnf");
        fs::write(&ext, format!("subjectAltName=DNS:{name}\n")).expect("ext");
        run(Command::new("openssl")
            .args(["req", "-subj", &format!("/CN={name}")])
            .args(ec)
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr));
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-set_serial", "1", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(d.join(format!("{role}.pem"))));
    };
    issue("central", "central", CENTRAL_NAME);
    for b in bastions {
        issue(b, "bastion", &format!("{b}.bastion.example.net"));
    }
    tls
}

/// The shipped receiver on a free port of 127.0.0.1, filing into `central` with this build's
/// `sessrec receive`.
fn receiver(dir: &Path, central: &Path, tls: &Path) -> (Rsyslog, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let receive = shipped_config("sessrec-receive.conf");
    let receive = adapt(
        &receive,
        "/usr/bin/sessrec ",
        &format!("{} ", products().sessrec_cli().display()),
    );
    let receive = adapt(
        &receive,
        "/var/log/sessrec-central",
        &central.display().to_string(),
    );
    assert!(
        !receive.contains("/var/log/"),
        "unadapted path left:\n{receive}"
    );
    let receive = adapt(
        &receive,
        "port=\"2514\"",
        &format!("port=\"{port}\" address=\"127.0.0.1\""),
    );
    let receive = adapt(
        &receive,
        "/etc/sessrec/tls/",
        &format!("{}/", tls.join("central").display()),
    );
    let mut r = Rsyslog::new("receiver", dir, &receive);
    r.start();
    wait_until("receiver listening", Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (r, port)
}

/// The shipped sender for the bastion `name`, tailing `record_dir` and sending to the receiver
/// on `port`; not started. Returns it and its private syslog socket.
fn sender(dir: &Path, name: &str, record_dir: &Path, port: u16, tls: &Path) -> (Rsyslog, PathBuf) {
    let ship = shipped_config("sessrec-ship.conf");
    let ship = adapt(
        &ship,
        "/var/log/sessrec/",
        &format!("{}/", record_dir.display()),
    );
    let ship = adapt(
        &ship,
        &format!("target=\"{CENTRAL_NAME}\" port=\"2514\""),
        &format!("target=\"127.0.0.1\" port=\"{port}\""),
    );
    let ship = adapt(
        &ship,
        "/etc/sessrec/tls/",
        &format!("{}/", tls.join(name).display()),
    );
    assert!(!ship.contains("/var/log/"), "unadapted path left:\n{ship}");
    ensure_sessrec_user();
    let sessrec_uid = nix::unistd::User::from_name("sessrec")
        .ok()
        .flatten()
        .expect("sessrec user")
        .uid;
    let ship = adapt(&ship, "SESSREC_UID", &sessrec_uid.to_string());
    // /run is searchable by everyone, so an unprivileged logger can reach the socket.
    let log_socket = PathBuf::from(format!(
        "/run/srt-ship-{}-{port}-{name}.sock",
        std::process::id()
    ));
    let ship = format!(
        "{ship}\nmodule(load=\"imuxsock\" SysSock.Use=\"off\")\ninput(type=\"imuxsock\" Socket=\"{}\" Annotate=\"on\" ParseTrusted=\"on\")\n",
        log_socket.display()
    );
    (
        Rsyslog::new(&format!("sender-{name}"), dir, &ship),
        log_socket,
    )
}

/// Files the receiver keeps for itself beside the records.
fn is_receiver_bookkeeping(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == ".receive.lock" || n == "receive-errors.log")
}

/// Sends `message` to a sender's syslog socket with logger(1), as root or as `uid`.
fn log_to(socket: &Path, uid: Option<u32>, message: &str) {
    let socket = socket.display().to_string();
    let logger = [
        "logger",
        "-u",
        &socket,
        "-p",
        "authpriv.info",
        "-t",
        "sessrec-shell",
        "--",
        message,
    ];
    let out = match uid {
        None => run(Command::new(logger[0]).args(&logger[1..])),
        Some(uid) => run(Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .arg("--clear-groups")
            .args(logger)),
    };
    assert!(out.status.success(), "logger: {out:?}");
}

/// Record tree → shipping rsyslog → RELP/TLS 127.0.0.1 → receiving rsyslog → rebuilt files.
struct Pipeline {
    dir: TempDir,
    record_dir: PathBuf,
    central: PathBuf,
    /// The sender's private syslog socket (imuxsock with trusted properties), standing in for
    /// the host's /dev/log, which the test never touches.
    log_socket: PathBuf,
    tls: PathBuf,
    port: u16,
    sender: Rsyslog,
    receiver: Rsyslog,
}

impl Pipeline {
    /// A pipeline tailing its own fresh record tree.
    fn start() -> Pipeline {
        Pipeline::start_on(None)
    }

    /// A pipeline tailing `record_dir` (e.g. a recorded sshd's tree), or its own fresh one.
    fn start_on(record_dir: Option<&Path>) -> Pipeline {
        let dir = TempDir::new("ship");
        let central = dir.join("central");
        let record_dir = match record_dir {
            Some(d) => d.to_path_buf(),
            None => {
                let d = dir.join("records");
                fs::create_dir(&d).expect("create record dir");
                d
            }
        };
        fs::create_dir(&central).expect("create central dir");
        let tls = make_tls(dir.path(), &["b1"]);
        let (receiver, port) = receiver(dir.path(), &central, &tls);
        let (sender, log_socket) = sender(dir.path(), "b1", &record_dir, port, &tls);
        Pipeline {
            dir,
            record_dir,
            central,
            log_socket,
            tls,
            port,
            sender,
            receiver,
        }
    }

    fn receiver_port(&self) -> u16 {
        self.port
    }

    /// Sends `message` to the sender's syslog socket with logger(1), as root or as `uid`.
    fn log(&self, uid: Option<u32>, message: &str) {
        log_to(&self.log_socket, uid, message);
    }

    /// Where the receiver rebuilds a record file.
    fn central_path(&self, source: &Path) -> PathBuf {
        central_path(&self.central, source)
    }

    /// Waits until every record file under the tree has arrived byte for byte; then checks that
    /// nothing else arrived and that the rebuilt files verify.
    fn assert_all_shipped(&self) {
        let sources = jsonl_files(&self.record_dir);
        assert!(!sources.is_empty(), "no record files written");
        wait_shipped(&sources, &self.central);
        let arrived: Vec<PathBuf> = jsonl_or_any_files(&self.central)
            .into_iter()
            .filter(|f| !is_receiver_bookkeeping(f))
            .collect();
        let expected: Vec<PathBuf> = sources.iter().map(|s| self.central_path(s)).collect();
        for f in &arrived {
            assert!(
                expected.contains(f),
                "unexpected file at the receiver: {} ({} bytes)",
                f.display(),
                fs::metadata(f).map(|m| m.len()).unwrap_or(0)
            );
        }
        for f in &expected {
            assert_chain_ok(f);
        }
    }
}

/// Where the receiver rebuilds a record file under `central`.
fn central_path(central: &Path, source: &Path) -> PathBuf {
    let first = read_records(source)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{} has no lines", source.display()));
    let field = |k: &str| first[k].as_str().expect("header field").to_string();
    central
        .join(field("host"))
        .join(field("session"))
        .join(field("file"))
}

/// Waits until every one of `sources` has arrived under `central` byte for byte.
fn wait_shipped(sources: &[PathBuf], central: &Path) {
    let deadline = Instant::now() + SHIP_TIMEOUT;
    loop {
        let pending: Vec<String> = sources
            .iter()
            .filter_map(|s| {
                let want = fs::read(s).expect("read source");
                let got = fs::read(central_path(central, s)).unwrap_or_default();
                (want != got).then(|| describe_difference(s, &want, &got))
            })
            .collect();
        if pending.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "not shipped intact within {SHIP_TIMEOUT:?}:\n{}",
                pending.join("\n")
            );
        }
        thread::sleep(Duration::from_millis(250));
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.sender.stop();
        self.receiver.stop();
        let _ = fs::remove_file(&self.log_socket);
        if std::thread::panicking() {
            eprintln!(
                "pipeline files kept until drop in {}",
                self.dir.path().display()
            );
        }
    }
}

fn describe_difference(source: &Path, want: &[u8], got: &[u8]) -> String {
    let lines = |b: &[u8]| b.split(|&c| c == b'\n').filter(|l| !l.is_empty()).count();
    let common = want.iter().zip(got).take_while(|(a, b)| a == b).count();
    format!(
        "  {}: source {} bytes / {} lines, received {} bytes / {} lines, identical for {} bytes",
        source.display(),
        want.len(),
        lines(want),
        got.len(),
        lines(got),
        common
    )
}

fn jsonl_files(dir: &Path) -> Vec<PathBuf> {
    jsonl_or_any_files(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect()
}

fn jsonl_or_any_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn options(max_line_bytes: usize) -> WriterOptions {
    WriterOptions {
        max_line_bytes,
        flush_interval: Duration::from_millis(50),
        anchor_interval: Duration::from_secs(3600),
        ..WriterOptions::default()
    }
}

fn context(session: SessionId, file: &str) -> FileContext {
    FileContext {
        host: HOST.into(),
        session,
        file: file.into(),
        user: "srt-ship".into(),
        actor: "alice@example.com".into(),
    }
}

fn fields(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Writes `n` events and an I/O line with awkward content (DEL, multi-byte characters,
/// escapes, invalid UTF-8 as base64) through the real writer.
fn write_lines(w: &mut RecordWriter, tag: &str, n: usize) {
    for i in 0..n {
        w.event(
            "notice",
            fields(&[(
                "text",
                Value::from(format!("{tag} line {i} \u{7f} é € 😀 \"q\" \\")),
            )]),
        )
        .expect("write event");
    }
    w.io(
        sessrec_core::record::Stream::Output,
        1000,
        format!("{tag}: ls\x7f\x7f\x1b[0m\r\n\u{e9}t\u{e9}\r\n").as_bytes(),
    )
    .expect("write io");
    w.io(sessrec_core::record::Stream::Input, 2000, b"\xff\xfe raw\r")
        .expect("write io");
    w.flush().expect("flush");
}

/// A record file's complete content, produced by the real writer in a scratch file: a few
/// events, then enough output for several full-size lines.
fn full_size_content(scratch: &Path, session: SessionId, file: &str, max: usize) -> Vec<u8> {
    let f = File::create(scratch).expect("create scratch");
    let mut w = RecordWriter::new(f, context(session, file), options(max)).expect("writer");
    write_lines(&mut w, file, 2);
    let text: String = (0..max * 3)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    w.io(sessrec_core::record::Stream::Output, 5000, text.as_bytes())
        .expect("big io");
    w.flush().expect("flush");
    drop(w);
    let data = fs::read(scratch).expect("read scratch");
    let longest = data
        .split(|&c| c == b'\n')
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0);
    assert!(
        longest + 1 + 128 >= max && longest < max,
        "expected a line of nearly {max} bytes, longest is {}",
        longest + 1
    );
    data
}

/// Appends `data` to `path` in 4 KiB writes with pauses, so the shipper sees partial lines.
fn append_in_pieces(path: &Path, data: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    for piece in data.chunks(4096) {
        f.write_all(piece).expect("append piece");
        thread::sleep(Duration::from_millis(120));
    }
}

#[test]
fn shipped_rsyslog_configs_deliver_every_line_once_in_order() {
    require_e2e!(RSYSLOGD);
    let mut p = Pipeline::start();

    // Lines written before the shipper starts.
    let early = SessionId::new().expect("id");
    let early_dir = SessionDir::create(&p.record_dir, early, None).expect("session dir");
    let mut session_file = RecordWriter::new(
        early_dir.create_file("session.jsonl").expect("create"),
        context(early, "session.jsonl"),
        options(8192),
    )
    .expect("writer");
    write_lines(&mut session_file, "before-start", 20);
    let (n, f) = early_dir.create_channel_file().expect("channel");
    let name1 = format!("channel-{n}.jsonl");
    let mut channel1 = RecordWriter::new(f, context(early, &name1), options(8192)).expect("w");
    write_lines(&mut channel1, "channel before start", 5);

    p.sender.start();

    // Live: more lines into the open files, a new session (new directories), and a
    // maximum-size line (default max_line_bytes) and a 64 KiB one appended in 4 KiB pieces.
    write_lines(&mut channel1, "channel live", 50);
    let live = SessionId::new().expect("id");
    let live_dir = SessionDir::create(&p.record_dir, live, None).expect("session dir");
    let mut live_w = RecordWriter::new(
        live_dir.create_file("session.jsonl").expect("create"),
        context(live, "session.jsonl"),
        options(8192),
    )
    .expect("writer");
    write_lines(&mut live_w, "new session", 10);
    let scratch = p.dir.join("scratch.jsonl");
    let big = full_size_content(&scratch, live, "channel-1.jsonl", 8192);
    append_in_pieces(&live_dir.path().join("channel-1.jsonl"), &big);
    let bigger = full_size_content(&scratch, live, "channel-2.jsonl", 65536);
    append_in_pieces(&live_dir.path().join("channel-2.jsonl"), &bigger);

    // The importer's way: complete file under a temporary name, then renamed into place.
    let imported = full_size_content(&scratch, live, "sudo-0123456789abcdef.jsonl", 8192);
    let tmp = live_dir.path().join(".sudo-0123456789abcdef.jsonl.tmp");
    fs::write(&tmp, &imported).expect("write tmp");
    fs::rename(&tmp, live_dir.path().join("sudo-0123456789abcdef.jsonl")).expect("rename");

    // Unattributed sudo sessions, in both layouts (file in the day directory; own directory).
    let day = p.record_dir.join("unattributed/2026/12/04");
    fs::create_dir_all(day.join("sudo-own-dir")).expect("unattributed dirs");
    let u1 = SessionId::new().expect("id");
    let content = full_size_content(&scratch, u1, "sudo-1111111111111111.jsonl", 8192);
    fs::write(day.join("sudo-1111111111111111.jsonl"), &content).expect("write");
    let u2 = SessionId::new().expect("id");
    let content = full_size_content(&scratch, u2, "sudo-2222222222222222.jsonl", 8192);
    fs::write(
        day.join("sudo-own-dir/sudo-2222222222222222.jsonl"),
        &content,
    )
    .expect("write");
    fs::remove_file(&scratch).expect("remove scratch");

    p.assert_all_shipped();

    // Shipper restart: lines written while it is down (old and new files) arrive once.
    p.sender.stop();
    write_lines(&mut channel1, "while shipper down", 40);
    write_lines(&mut session_file, "while shipper down", 5);
    let (n, f) = early_dir.create_channel_file().expect("channel");
    let name2 = format!("channel-{n}.jsonl");
    let mut channel2 = RecordWriter::new(f, context(early, &name2), options(8192)).expect("w");
    write_lines(&mut channel2, "new file while down", 30);
    p.sender.start();
    write_lines(&mut channel1, "after restart", 40);
    write_lines(&mut channel2, "after restart", 10);
    write_lines(&mut live_w, "after restart", 3);

    p.assert_all_shipped();
    let rejected = p.central.join("rejected.log");
    assert!(
        !rejected.exists(),
        "the receiver rejected lines:\n{}",
        fs::read_to_string(&rejected).unwrap_or_default()
    );
}

#[test]
fn live_recorded_sessions_are_shipped_while_they_run() {
    require_e2e!(RSYSLOGD);
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let builder = PrivateSshd::builder();
    let tree = RecordTree::new(&format!(
        "min_free_mb = 1\n[policy]\nservices = [\"{}\"]\n[recorder]\nshell = \"/bin/bash\"\n",
        builder.service()
    ));
    let user = TestUser::new("ship", installed.shell());
    let sshd = builder.recorded_by(&installed, tree.config_path()).start();
    let mut p = Pipeline::start_on(Some(tree.record_dir()));
    p.sender.start();

    let mut term = sshd.login(&user).interactive();
    term.expect(r"\$ $", SHIP_TIMEOUT);
    term.send_line("echo live-$((6*7))-marker");
    term.expect("live-42-marker", SHIP_TIMEOUT);
    // While the session is still open, its output has already reached the receiver.
    let session = tree.wait_sessions(1, SHIP_TIMEOUT).remove(0);
    let channel = wait_channels(&session, 1, SHIP_TIMEOUT).remove(0);
    let central = p.central_path(&channel);
    wait_until("live output at the receiver", SHIP_TIMEOUT, || {
        fs::read(&central).is_ok_and(|b| String::from_utf8_lossy(&b).contains("live-42-marker"))
    });
    // A restart of the shipper mid-session loses and repeats nothing.
    p.sender.stop();
    term.send_line("seq 1 3000 | sed s/^/n-/");
    term.expect("n-3000", SHIP_TIMEOUT);
    p.sender.start();
    term.send_line("exit");
    term.wait_code(0, SHIP_TIMEOUT);
    wait_last_event(&channel, "channel.end", SHIP_TIMEOUT);
    wait_last_event(&session.join("session.jsonl"), "logout", SHIP_TIMEOUT);

    p.assert_all_shipped();
    let shipped = fs::read_to_string(&central).expect("central channel file");
    assert!(shipped.contains("channel.end"), "{shipped}");

    // The receiver's tree is read as it was written: the session is listed under its host,
    // verified, shown and found by search, without any copying.
    let id = session
        .file_name()
        .and_then(|n| n.to_str())
        .expect("session id")
        .to_string();
    let host = sessrec_core::sys::hostname();
    let cli = |args: &[&str]| {
        let o = Command::new(products().sessrec_cli())
            .arg("--dir")
            .arg(&p.central)
            .args(args)
            .env_remove("SESSREC_CONFIG")
            .output()
            .expect("run sessrec");
        assert!(o.status.success(), "sessrec {args:?}: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let listed = cli(&["--host", &host, "list", "--json"]);
    let row: Value = listed
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("list --json line"))
        .find(|v| v["session"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not listed centrally:\n{listed}"));
    assert_eq!(row["host_dir"], host.as_str(), "{row}");
    assert_eq!(row["state"], "closed", "{row}");
    assert_eq!(row["verify"]["ok"], true, "{row}");
    assert!(cli(&["show", &id]).contains("echo live-"));
    assert!(cli(&["search", "--fixed-strings", "n-3000"]).contains(&id));
    cli(&["verify", &id]);
}

/// Every line of `path` carries the next `seq` of its file, from the first: nothing lost or
/// repeated in between.
fn assert_seq_continuous(path: &Path) {
    let seqs: Vec<u64> = read_records(path)
        .iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect();
    let first = *seqs
        .first()
        .unwrap_or_else(|| panic!("{} is empty", path.display()));
    let want: Vec<u64> = (first..first + seqs.len() as u64).collect();
    assert_eq!(seqs, want, "{}: seq not continuous", path.display());
}

#[test]
fn a_receiver_killed_mid_session_loses_and_repeats_nothing() {
    require_e2e!(RSYSLOGD, "/usr/bin/unshare");
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let builder = PrivateSshd::builder();
    let tree = RecordTree::new(&format!(
        "min_free_mb = 1\n[policy]\nservices = [\"{}\"]\n[recorder]\nshell = \"/bin/bash\"\n",
        builder.service()
    ));
    let user = TestUser::new("shipk", installed.shell());
    let sshd = builder.recorded_by(&installed, tree.config_path()).start();
    let mut p = Pipeline::start_on(Some(tree.record_dir()));
    p.sender.start();

    let mut term = sshd.login(&user).interactive();
    term.expect(r"\$ $", SHIP_TIMEOUT);
    // A steady stream of output for the whole test, each tick its own few record lines.
    term.send_line(
        "for i in $(seq 1 900); do echo tick-$i-done; sleep 0.02; done; echo ticks-over",
    );
    let session = tree.wait_sessions(1, SHIP_TIMEOUT).remove(0);
    let channel = wait_channels(&session, 1, SHIP_TIMEOUT).remove(0);
    let central = p.central_path(&channel);
    let has = |path: &Path, text: &str| {
        fs::read(path).is_ok_and(|b| String::from_utf8_lossy(&b).contains(text))
    };
    // Twice: killed while lines flow (some sent but not yet acknowledged), lines written while
    // it is down, restarted.
    for (arrived, written) in [
        ("tick-100-done", "tick-300-done"),
        ("tick-400-done", "tick-600-done"),
    ] {
        wait_until(&format!("{arrived} at the receiver"), SHIP_TIMEOUT, || {
            has(&central, arrived)
        });
        p.receiver.crash();
        wait_until(&format!("{written} on the bastion"), SHIP_TIMEOUT, || {
            has(&channel, written)
        });
        p.receiver.start();
    }
    term.expect("ticks-over", SHIP_TIMEOUT);
    term.send_line("exit");
    term.wait_code(0, SHIP_TIMEOUT);
    wait_last_event(&channel, "channel.end", SHIP_TIMEOUT);
    wait_last_event(&session.join("session.jsonl"), "logout", SHIP_TIMEOUT);

    // Byte for byte, hence line by line: nothing lost, nothing repeated, same order.
    p.assert_all_shipped();
    for source in jsonl_files(&session) {
        assert_seq_continuous(&p.central_path(&source));
    }
    let rejected = p.central.join("rejected.log");
    assert!(
        !rejected.exists(),
        "{}",
        fs::read_to_string(&rejected).unwrap_or_default()
    );
    let id = session
        .file_name()
        .and_then(|n| n.to_str())
        .expect("session id")
        .to_string();
    let o = Command::new(products().sessrec_cli())
        .arg("--dir")
        .arg(&p.central)
        .args(["verify", &id])
        .env_remove("SESSREC_CONFIG")
        .output()
        .expect("run sessrec verify");
    assert!(o.status.success(), "{o:?}");
}

#[test]
fn the_receiver_speaks_tls_with_the_central_certificate() {
    require_e2e!(RSYSLOGD, "/usr/bin/openssl");
    let p = Pipeline::start();
    let port = p.receiver_port();
    let out = output_with_timeout(
        Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .arg("-CAfile")
            .arg(p.tls.join("b1/ca.pem"))
            .args(["-verify_hostname", CENTRAL_NAME, "-verify_return_error"])
            .arg("-cert")
            .arg(p.tls.join("b1/bastion.pem"))
            .arg("-key")
            .arg(p.tls.join("b1/bastion.key")),
        b"",
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("Verify return code: 0 (ok)") && text.contains(CENTRAL_NAME),
        "{out:?}"
    );
}

#[test]
fn anchors_travel_only_from_trusted_senders_and_verify_uses_them() {
    require_e2e!(RSYSLOGD, "/usr/bin/logger", "/usr/bin/setpriv");
    let mut p = Pipeline::start();
    let id = SessionId::new().expect("id");
    let dir = SessionDir::create(&p.record_dir, id, None).expect("session dir");
    let mut w = RecordWriter::new(
        dir.create_file("channel-1.jsonl").expect("create"),
        context(id, "channel-1.jsonl"),
        options(8192),
    )
    .expect("writer");
    write_lines(&mut w, "anchored", 10);
    let anchor = w.anchor();
    drop(w);
    p.sender.start();
    p.assert_all_shipped();
    wait_until("sender socket", Duration::from_secs(20), || {
        p.log_socket.exists()
    });

    // A forged anchor from an unprivileged user (nobody) claiming lines that never existed,
    // then the real one from root. Both pass through the same input and queue in order, so
    // once the real one has arrived the forged one would have too, had it been forwarded.
    let forged = sessrec_core::writer::Anchor {
        seq: anchor.seq + 5,
        digest: "0".repeat(64),
        ..anchor.clone()
    };
    p.log(Some(65534), &forged.to_string());
    p.log(None, &anchor.to_string());
    let anchors_log = p.central.join(HOST).join("anchors.log");
    wait_until("trusted anchor at the receiver", SHIP_TIMEOUT, || {
        fs::read_to_string(&anchors_log).is_ok_and(|t| t.contains(&anchor.to_string()))
    });
    let filed = fs::read_to_string(&anchors_log).expect("anchors.log");
    assert!(
        !filed.contains(&forged.to_string()),
        "forged anchor forwarded:\n{filed}"
    );
    assert!(filed.starts_with("uid=0 sessrec anchor "), "{filed}");

    let cli = |args: &[&str]| {
        Command::new(products().sessrec_cli())
            .arg("--dir")
            .arg(&p.central)
            .args(args)
            .env_remove("SESSREC_CONFIG")
            .output()
            .expect("run sessrec")
    };
    let o = cli(&["verify", "--all"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    // The file has no channel.end (it is a bare channel file): incomplete, but not broken.
    assert_ne!(o.status.code(), Some(1), "{o:?}");
    assert!(
        out.contains(&format!(
            "host {HOST}: 1 sessions, {} lines verified, 0 after the last anchor, 0 files",
            anchor.seq
        )),
        "{out}"
    );

    // Root on the central host (or on the way) drops the last lines: the chain of what is
    // left is intact, but the anchor names a line that is gone.
    let central_file = p
        .central
        .join(HOST)
        .join(id.to_string())
        .join("channel-1.jsonl");
    let body = fs::read_to_string(&central_file).expect("central file");
    let kept: Vec<&str> = body.lines().collect();
    fs::write(&central_file, kept[..kept.len() - 3].join("\n") + "\n").expect("truncate");
    let o = cli(&["verify", "--all"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(!o.status.success(), "{o:?}");
    assert!(
        out.contains(&format!(
            "no line with seq {} although syslog holds an anchor",
            anchor.seq
        )),
        "{out}"
    );
    assert!(out.contains(&format!("FAILED     host {HOST}")), "{out}");
}

#[test]
fn heartbeats_are_shipped_filed_under_the_host_and_reported_by_hosts() {
    require_e2e!(RSYSLOGD);
    let mut p = Pipeline::start();
    let host = sessrec_core::sys::hostname();
    // The importers' inputs and states in the test's own directory: none exists, so the
    // heartbeat reports no lag for either.
    let config = p.dir.join("sessrec.toml");
    fs::write(
        &config,
        format!(
            "record_dir = {:?}\n[sudo]\niolog_dirs = [{:?}]\nstate_file = {:?}\n[audit]\nlog_file = {:?}\nstate_file = {:?}\n",
            p.record_dir,
            p.dir.join("sudo-io"),
            p.dir.join("sudo.state"),
            p.dir.join("audit.log"),
            p.dir.join("audit.state"),
        ),
    )
    .expect("write config");
    let beat = || {
        let o = Command::new(products().sessrec_cli())
            .arg("--config")
            .arg(&config)
            .args(["heartbeat", "--interval", "1m"])
            .output()
            .expect("run sessrec heartbeat");
        assert!(o.status.success(), "{o:?}");
    };
    beat();
    p.sender.start();
    beat();
    let sources = jsonl_files(&p.record_dir.join("host"));
    assert_eq!(sources.len(), 1, "{sources:?}");
    let source = &sources[0];
    let name = source.file_name().expect("file name");
    let filed = p.central.join(&host).join("heartbeat").join(name);
    let want = fs::read(source).expect("read heartbeat");
    let deadline = Instant::now() + SHIP_TIMEOUT;
    while fs::read(&filed).unwrap_or_default() != want {
        assert!(
            Instant::now() < deadline,
            "heartbeat not filed at {} within {SHIP_TIMEOUT:?}; central holds {:?}",
            filed.display(),
            jsonl_or_any_files(&p.central)
        );
        thread::sleep(Duration::from_millis(250));
    }
    assert_chain_ok(&filed);
    // Filed beside the host's sessions, not as one.
    let arrived: Vec<PathBuf> = jsonl_or_any_files(&p.central)
        .into_iter()
        .filter(|f| !is_receiver_bookkeeping(f))
        .collect();
    assert_eq!(arrived, vec![filed.clone()]);

    let o = Command::new(products().sessrec_cli())
        .arg("--dir")
        .arg(&p.central)
        .args(["hosts", "--json"])
        .env_remove("SESSREC_CONFIG")
        .output()
        .expect("run sessrec hosts");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(rows.len(), 1, "{out}");
    let row = &rows[0];
    assert_eq!(row["host"], host.as_str(), "{out}");
    assert_eq!(row["sessions"], 0, "{out}");
    assert_eq!(row["heartbeat"]["interval"], 60, "{out}");
    assert!(
        row["heartbeat"]["record_disk_free_mb"].as_u64().is_some(),
        "{out}"
    );
    assert!(row["heartbeat"]["sudo_import_lag"].is_null(), "{out}");
    let problems = row["problems"].as_array().expect("problems");
    assert!(
        problems
            .iter()
            .all(|p| !p.as_str().unwrap_or_default().starts_with("silent")),
        "{out}"
    );
    // Whether the host's exec audit is on decides the exit status; a heartbeat saying off
    // must have been reported as a problem.
    let audit_off = row["heartbeat"]["exec_audit"] == "off";
    assert_eq!(
        o.status.code(),
        Some(if audit_off { 1 } else { 0 }),
        "{o:?}"
    );
}

/// One bastion of the fleet: its own host name, record tree, syslog sender and sshd.
struct FleetBastion {
    host: String,
    tree: RecordTree,
    socket: PathBuf,
    sender: Rsyslog,
    sshd: PrivateSshd,
}

fn sessrec_at(central: &Path, args: &[&str]) -> std::process::Output {
    Command::new(products().sessrec_cli())
        .arg("--dir")
        .arg(central)
        .args(args)
        .env_remove("SESSREC_CONFIG")
        .output()
        .expect("run sessrec")
}

fn stdout_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Logs in to `b`, shows a marker made by the shell (so typed text cannot match it), logs out.
fn marked_session(b: &FleetBastion, user: &TestUser, marker: &str) -> String {
    let before = b.tree.sessions().len();
    let mut term = b.sshd.login(user).interactive();
    term.expect(r"\$ $", SHIP_TIMEOUT);
    term.send_line(&format!("echo {marker}-$((40+2)) on $(hostname)"));
    term.expect(&format!("{marker}-42 on {}", b.host), SHIP_TIMEOUT);
    term.send_line("exit");
    term.wait_code(0, SHIP_TIMEOUT);
    let session = b
        .tree
        .wait_sessions(before + 1, SHIP_TIMEOUT)
        .remove(before);
    wait_last_event(&session.join("session.jsonl"), "logout", SHIP_TIMEOUT);
    session
        .file_name()
        .and_then(|n| n.to_str())
        .expect("id")
        .to_string()
}

/// The heartbeat directory of a bastion's tree (`<record_dir>/host/`), which is not a session.
fn b_host_dir(record_file: &Path) -> PathBuf {
    record_file
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "host"))
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/nonexistent"))
}

/// Writes a closed session recorded on `host` 40 days ago with the synthetic generator in
/// `scratch`, then puts its files into `record_dir` the importer's way (a temporary name, then
/// renamed), for the shipper to pick up. Returns its id.
fn ship_old_session(record_dir: &Path, host: &str, scratch: &Path) -> String {
    use sessrec_core::testing::synth::{id_at, shift_times, SynthSession};
    const AGE_US: i64 = 40 * 86_400 * 1_000_000;
    fs::create_dir_all(scratch).expect("scratch");
    let now_ms = sessrec_core::time::Timestamp::now().as_micros() / 1000;
    let id = id_at((now_ms - AGE_US / 1000) as u64).expect("old id");
    let mut s =
        SynthSession::login_on(host, scratch, id, "srt-old", "old@example.com", "192.0.2.7")
            .expect("login");
    let mut ch = s.channel("shell", "pty", None).expect("channel");
    ch.output(1000, b"old work\r\n").expect("output");
    s.finished(ch, 0).expect("finished");
    let made = s.logout().expect("logout");
    shift_times(&made, -AGE_US).expect("shift");
    let dest = record_dir.join(made.strip_prefix(scratch).expect("under scratch"));
    fs::create_dir_all(&dest).expect("session dir");
    for f in jsonl_files(&made) {
        let name = f.file_name().expect("name").to_string_lossy().into_owned();
        let tmp = dest.join(format!(".{name}.tmp"));
        fs::copy(&f, &tmp).expect("copy");
        fs::rename(&tmp, dest.join(&name)).expect("rename");
    }
    id.to_string()
}

#[test]
fn three_bastions_ship_to_one_central_archive() {
    require_e2e!(
        RSYSLOGD,
        "/usr/bin/unshare",
        "/usr/bin/logger",
        "/usr/bin/setpriv"
    );
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let dir = TempDir::new("fleet");
    let central = dir.join("central");
    fs::create_dir(&central).expect("central dir");
    let names = ["b1", "b2", "b3"];
    let tls = make_tls(dir.path(), &names);
    let (_receiver, port) = receiver(dir.path(), &central, &tls);
    let user = TestUser::new("fleet", installed.shell());
    let tag = sessrec_tests::util::random_hex(3);
    let mut fleet: Vec<FleetBastion> = names
        .iter()
        .map(|name| {
            let host = format!("srt-{name}-{tag}");
            let builder = PrivateSshd::builder();
            let tree = RecordTree::new(&format!(
                "min_free_mb = 1\n[policy]\nservices = [\"{}\"]\n[recorder]\nshell = \"/bin/bash\"\n",
                builder.service()
            ));
            let (mut sender, socket) = sender(dir.path(), name, tree.record_dir(), port, &tls);
            sender.uts_host = Some(host.clone());
            sender.start();
            wait_until("bastion syslog socket", Duration::from_secs(20), || {
                socket.exists()
            });
            let sshd = builder
                .recorded_by(&installed, tree.config_path())
                .bastion(&host, &socket)
                .start();
            FleetBastion {
                host,
                tree,
                socket,
                sender,
                sshd,
            }
        })
        .collect();

    // Real sessions on each bastion; on the third, one more that stays open and idle.
    let ids: Vec<String> = fleet
        .iter()
        .map(|b| marked_session(b, &user, "fleet"))
        .collect();
    let mut open_term = fleet[2].sshd.login(&user).interactive();
    open_term.expect(r"\$ $", SHIP_TIMEOUT);
    open_term.send_line("echo stall-$((2+2))");
    open_term.expect("stall-4", SHIP_TIMEOUT);
    let open_id = {
        let all = fleet[2].tree.wait_sessions(2, SHIP_TIMEOUT);
        let dir = all
            .into_iter()
            .find(|d| !d.ends_with(&ids[2]))
            .expect("open session");
        wait_channels(&dir, 1, SHIP_TIMEOUT);
        dir.file_name()
            .and_then(|n| n.to_str())
            .expect("id")
            .to_string()
    };
    let sources: Vec<PathBuf> = fleet
        .iter()
        .flat_map(|b| jsonl_files(b.tree.record_dir()))
        .collect();
    wait_shipped(&sources, &central);
    // Every record names the host of its bastion's UTS namespace.
    for (b, id) in fleet.iter().zip(&ids) {
        assert!(
            central.join(&b.host).join(id).is_dir(),
            "{id} not under {}",
            b.host
        );
    }
    // The recorders' own anchors (closing files) came through each bastion's /dev/log with
    // the kernel's credentials and are filed per host.
    for b in &fleet[..2] {
        let anchors = central.join(&b.host).join("anchors.log");
        wait_until(&format!("anchors of {}", b.host), SHIP_TIMEOUT, || {
            fs::read_to_string(&anchors).is_ok_and(|t| t.contains("sessrec anchor file="))
        });
    }

    // Central views across hosts.
    let o = sessrec_at(&central, &["list", "--json"]);
    assert!(o.status.success(), "{o:?}");
    let rows: Vec<Value> = stdout_of(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("list --json"))
        .collect();
    for (b, id) in fleet.iter().zip(&ids) {
        let row = rows
            .iter()
            .find(|r| r["session"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} not listed: {rows:?}"));
        assert_eq!(row["host_dir"], b.host.as_str(), "{row}");
        assert_eq!(row["state"], "closed", "{row}");
    }
    let listed = stdout_of(&sessrec_at(&central, &["list"]));
    for b in &fleet {
        assert!(listed.contains(&b.host), "{listed}");
    }
    for (b, id) in fleet.iter().zip(&ids) {
        let shown = stdout_of(&sessrec_at(&central, &["show", id]));
        assert!(shown.contains("echo fleet-"), "{shown}");
        let o = sessrec_at(&central, &["play", id, "--speed", "1000"]);
        assert!(o.status.success(), "{o:?}");
        assert!(
            stdout_of(&o).contains(&format!("fleet-42 on {}", b.host)),
            "{o:?}"
        );
    }
    let found = stdout_of(&sessrec_at(
        &central,
        &["search", "--fixed-strings", "fleet-42 on srt-"],
    ));
    for id in &ids {
        assert!(found.contains(id.as_str()), "{id} not found:\n{found}");
    }
    let one = stdout_of(&sessrec_at(
        &central,
        &[
            "--host",
            &fleet[1].host,
            "search",
            "--fixed-strings",
            "fleet-42 on srt-",
        ],
    ));
    assert!(one.contains(&ids[1]) && !one.contains(&ids[0]), "{one}");

    // Shipped anchors: all agree; a forged one from an unprivileged logger never arrives.
    let o = sessrec_at(&central, &["verify", "--all"]);
    let out = stdout_of(&o);
    assert_ne!(o.status.code(), Some(1), "{o:?}");
    for b in &fleet {
        assert!(out.contains(&format!("host {}: ", b.host)), "{out}");
    }
    let anchors = central.join(&fleet[0].host).join("anchors.log");
    let text = fs::read_to_string(&anchors).expect("anchors.log");
    let real = text
        .lines()
        .find_map(|l| l.split_once(' ').map(|(_, a)| a.to_string()))
        .expect("an anchor");
    let forged = real.replace("sha256=", "sha256=00");
    log_to(&fleet[0].socket, Some(65534), &forged);
    log_to(&fleet[0].socket, None, &real);
    wait_until("the root anchor again", SHIP_TIMEOUT, || {
        fs::read_to_string(&anchors).is_ok_and(|t| t.matches(real.as_str()).count() >= 2)
    });
    let filed = fs::read_to_string(&anchors).expect("anchors.log");
    assert!(
        !filed.contains(&forged),
        "forged anchor forwarded:\n{filed}"
    );
    let sessrec_uid = nix::unistd::User::from_name("sessrec")
        .ok()
        .flatten()
        .expect("sessrec user")
        .uid;
    for line in filed.lines() {
        assert!(
            line.starts_with("uid=0 ") || line.starts_with(&format!("uid={sessrec_uid} ")),
            "{line}"
        );
    }

    // A line edited on the central copy of b2's session is caught, and only there.
    let edited = jsonl_files(&central.join(&fleet[1].host).join(&ids[1]))
        .into_iter()
        .find(|f| f.file_name().is_some_and(|n| n == "session.jsonl"))
        .expect("central session file");
    let body = fs::read_to_string(&edited).expect("read");
    let changed = body.replacen("\"srt-fleet", "\"srt-fleeT", 1);
    assert_ne!(body, changed);
    fs::write(&edited, changed).expect("edit");
    let o = sessrec_at(&central, &["verify", "--all"]);
    let out = stdout_of(&o);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        out.contains(&format!("FAILED     host {}", fleet[1].host)),
        "{out}"
    );
    assert!(
        !out.contains(&format!("FAILED     host {}", fleet[0].host)),
        "{out}"
    );

    // Completeness: b2's shipping stops (silent); b3's open session stays idle (stalled); b1
    // and b3 still send heartbeats.
    fleet[1].sender.stop();
    thread::sleep(Duration::from_secs(8));
    for b in [&fleet[0], &fleet[2]] {
        let config = b.tree.record_dir().with_extension("heartbeat.toml");
        fs::write(
            &config,
            format!(
                "record_dir = {:?}\n[sudo]\niolog_dirs = [{:?}]\nstate_file = {:?}\n[audit]\nlog_file = {:?}\nstate_file = {:?}\n",
                b.tree.record_dir(),
                dir.join("none-sudo-io"),
                dir.join("none-sudo.state"),
                dir.join("none-audit.log"),
                dir.join("none-audit.state"),
            ),
        )
        .expect("heartbeat config");
        run(Command::new("unshare")
            .args([
                "--uts",
                "--",
                "sh",
                "-c",
                "hostname \"$1\" && shift && exec \"$@\"",
                "sh",
            ])
            .arg(&b.host)
            .arg(products().sessrec_cli())
            .arg("--config")
            .arg(&config)
            .args(["heartbeat", "--interval", "1m"]));
        for beat in jsonl_files(&b.tree.record_dir().join("host")) {
            let filed = central
                .join(&b.host)
                .join("heartbeat")
                .join(beat.file_name().expect("name"));
            let want = fs::read(&beat).expect("heartbeat");
            wait_until(&format!("heartbeat of {}", b.host), SHIP_TIMEOUT, || {
                fs::read(&filed).is_ok_and(|got| got == want)
            });
        }
    }
    let o = sessrec_at(
        &central,
        &[
            "hosts",
            "--json",
            "--silent-after",
            "6s",
            "--stalled-after",
            "6s",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let report: Vec<Value> = stdout_of(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("hosts --json"))
        .collect();
    let problems = |host: &str| -> Vec<String> {
        report
            .iter()
            .find(|r| r["host"] == host)
            .unwrap_or_else(|| panic!("{host} not reported: {report:?}"))["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .map(|p| p.as_str().unwrap_or_default().to_string())
            .collect()
    };
    let (p1, p2, p3) = (
        problems(&fleet[0].host),
        problems(&fleet[1].host),
        problems(&fleet[2].host),
    );
    assert!(p2.iter().any(|p| p.starts_with("silent")), "{p2:?}");
    assert!(
        p3.iter()
            .any(|p| p.contains(&open_id) && p.contains("open but no line arrived")),
        "{p3:?}"
    );
    for p in p1.iter().chain(&p3) {
        assert!(!p.starts_with("silent"), "{p1:?} {p3:?}");
    }

    // Retention: each bastion also ships a session recorded 40 days ago (the synthetic
    // generator, times shifted, renamed into the tree as the importer does). A hold on b1's;
    // prune removes b3's but neither the held one nor any recent one.
    let old: Vec<String> = [&fleet[0], &fleet[2]]
        .iter()
        .map(|b| {
            ship_old_session(
                b.tree.record_dir(),
                &b.host,
                &dir.join(format!("old-{}", b.host)),
            )
        })
        .collect();
    let sources: Vec<PathBuf> = [&fleet[0], &fleet[2]]
        .iter()
        .flat_map(|b| jsonl_files(b.tree.record_dir()))
        .filter(|f| !f.starts_with(b_host_dir(f)))
        .collect();
    wait_shipped(&sources, &central);
    let o = sessrec_at(
        &central,
        &["hold", "--session", &old[0], "--reason", "case 13"],
    );
    assert!(o.status.success(), "{o:?}");
    let o = sessrec_at(&central, &["prune", "--older-than", "30d"]);
    let out = stdout_of(&o);
    assert!(
        out.contains(&format!("keep   {} (legal hold: case 13)", old[0])),
        "{o:?}"
    );
    assert!(central.join(&fleet[0].host).join(&old[0]).is_dir(), "{out}");
    assert!(
        !central.join(&fleet[2].host).join(&old[1]).exists(),
        "{out}"
    );
    for (b, id) in fleet.iter().zip(&ids) {
        assert!(central.join(&b.host).join(id).is_dir(), "{out}");
    }
    assert!(
        central.join(&fleet[2].host).join(&open_id).is_dir(),
        "{out}"
    );

    // Compressed at rest on the central tree: b1's recorded session reads, and verifies with
    // its shipped anchors, as before; b3's open session is refused.
    let b1 = fleet[0].host.clone();
    let views = |id: &str| -> Vec<String> {
        [
            vec!["show", id],
            vec!["play", id, "--speed", "1000"],
            vec!["export", id, "--format", "text"],
            vec!["search", "--fixed-strings", "fleet-42 on", "--session", id],
            vec!["verify", id],
        ]
        .iter()
        .map(|args| {
            let o = sessrec_at(&central, args);
            assert!(o.status.success(), "{args:?}: {o:?}");
            stdout_of(&o).replace(".jsonl.gz", ".jsonl")
        })
        .collect()
    };
    let before = views(&ids[0]);
    let o = sessrec_at(&central, &["--host", &b1, "compress", "--older-than", "1s"]);
    assert!(o.status.success(), "{o:?}");
    assert!(
        stdout_of(&o).contains(&format!("compressed {b1}/{}", ids[0])),
        "{o:?}"
    );
    let stored: Vec<String> = fs::read_dir(central.join(&b1).join(&ids[0]))
        .expect("session dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert!(
        !stored.is_empty() && stored.iter().all(|n| n.ends_with(".jsonl.gz")),
        "{stored:?}"
    );
    assert_eq!(views(&ids[0]), before);
    let o = sessrec_at(
        &central,
        &["--host", &fleet[2].host, "compress", "--older-than", "1s"],
    );
    assert!(
        stdout_of(&o).contains(&format!("skip   {}/{open_id} (", fleet[2].host)),
        "{o:?}"
    );
    let o = sessrec_at(&central, &["--host", &b1, "verify", "--all"]);
    assert!(o.status.success(), "{o:?}");

    open_term.send_line("exit");
    open_term.wait_code(0, SHIP_TIMEOUT);
}
