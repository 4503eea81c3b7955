//! The monitors against the real OpenSSH sftp-server and scp of this machine, started the way
//! the recorder starts them (the argv from `classify`, pipes), with this test as the client.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{json, Value};

use sessrec_core::testing::TempDir;

use super::fixtures::as_json;
use super::{classify, TransferConfig, TransferEvent, TransferMonitor};

/// `dir/name` as the text the commands take.
fn path_text(dir: &TempDir, name: &str) -> String {
    dir.join(name).to_str().expect("utf-8 temp path").to_owned()
}

/// The server process with the monitor watching both directions, as the recorder relays them.
struct Relay {
    child: Child,
    to_server: Option<ChildStdin>,
    from_server: ChildStdout,
    monitor: TransferMonitor,
    events: Vec<TransferEvent>,
    clock: u64,
}

impl Relay {
    fn start(command: &str, cwd: &Path) -> Self {
        let cmd = classify(command, false, &TransferConfig::default()).expect("a transfer");
        let mut child = Command::new(&cmd.argv[0])
            .args(&cmd.argv[1..])
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", cmd.argv[0]));
        Relay {
            to_server: child.stdin.take(),
            from_server: child.stdout.take().expect("stdout"),
            child,
            monitor: TransferMonitor::new(&cmd),
            events: Vec::new(),
            clock: 0,
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 100;
        self.clock
    }

    fn send(&mut self, bytes: &[u8]) {
        let now = self.tick();
        self.monitor.client_to_server(now, bytes);
        self.to_server
            .as_mut()
            .expect("stdin open")
            .write_all(bytes)
            .expect("write to server");
        self.events.extend(self.monitor.drain_events());
    }

    fn receive_exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.from_server
            .read_exact(&mut buf)
            .expect("read from server");
        let now = self.tick();
        self.monitor.server_to_client(now, &buf);
        self.events.extend(self.monitor.drain_events());
        buf
    }

    /// Reads up to a newline (scp error lines).
    fn receive_line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        loop {
            let b = self.receive_exact(1);
            line.push(b[0]);
            if b[0] == b'\n' {
                return line;
            }
        }
    }

    fn finish(mut self) -> Vec<Value> {
        drop(self.to_server.take());
        let mut rest = Vec::new();
        self.from_server
            .read_to_end(&mut rest)
            .expect("drain server");
        let now = self.tick();
        if !rest.is_empty() {
            self.monitor.server_to_client(now, &rest);
        }
        let status = self.child.wait().expect("wait").code();
        let now = self.tick();
        self.events.extend(self.monitor.finish(now, status));
        as_json(&self.events)
    }
}

mod sftp_client {
    pub fn packet(kind: u8, fields: &[&[u8]]) -> Vec<u8> {
        let body_len: usize = 1 + fields.iter().map(|f| f.len()).sum::<usize>();
        let mut out = (body_len as u32).to_be_bytes().to_vec();
        out.push(kind);
        for f in fields {
            out.extend_from_slice(f);
        }
        out
    }
    pub fn string(s: &[u8]) -> Vec<u8> {
        let mut out = (s.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(s);
        out
    }
    pub fn u32(v: u32) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }
    pub fn u64(v: u64) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }
}

impl Relay {
    /// Sends one SFTP request and returns (reply type, reply body after the type and id).
    fn sftp(&mut self, kind: u8, id: u32, fields: &[&[u8]]) -> (u8, Vec<u8>) {
        let id_bytes = sftp_client::u32(id);
        let mut all: Vec<&[u8]> = vec![&id_bytes];
        all.extend_from_slice(fields);
        self.send(&sftp_client::packet(kind, &all));
        let len = self.receive_exact(4);
        let body =
            self.receive_exact(u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize);
        assert_eq!(body[1..5], id.to_be_bytes(), "reply to request {id}");
        (body[0], body[5..].to_vec())
    }
}

fn handle_of(reply: (u8, Vec<u8>)) -> Vec<u8> {
    assert_eq!(reply.0, 102, "HANDLE expected, got {reply:?}");
    reply.1[4..].to_vec()
}

fn status_of(reply: &(u8, Vec<u8>)) -> u32 {
    assert_eq!(reply.0, 101, "STATUS expected, got type {}", reply.0);
    u32::from_be_bytes([reply.1[0], reply.1[1], reply.1[2], reply.1[3]])
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn real_sftp_server_upload_download_and_file_operations() {
    use sftp_client::{string, u32 as u32f, u64 as u64f};
    let dir = TempDir::new("transfer-sftp");
    let mut r = Relay::start("/usr/lib/openssh/sftp-server", dir.path());
    r.send(&sftp_client::packet(1, &[&u32f(3)]));
    let len = r.receive_exact(4);
    r.receive_exact(u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize);

    let data = pattern(1024 * 1024 + 123);
    let up = path_text(&dir, "up.bin");
    let no_attrs = u32f(0);
    let h = handle_of(r.sftp(
        3,
        1,
        &[&string(up.as_bytes()), &u32f(0x02 | 0x08 | 0x10), &no_attrs],
    ));
    let mut id = 2;
    for (i, chunk) in data.chunks(32 * 1024).enumerate() {
        let reply = r.sftp(
            6,
            id,
            &[&string(&h), &u64f((i * 32 * 1024) as u64), &string(chunk)],
        );
        assert_eq!(status_of(&reply), 0);
        id += 1;
    }
    assert_eq!(status_of(&r.sftp(4, id, &[&string(&h)])), 0);
    id += 1;
    assert_eq!(
        std::fs::read(&up).expect("uploaded file"),
        data,
        "the data arrived intact"
    );

    let h = handle_of(r.sftp(3, id, &[&string(up.as_bytes()), &u32f(0x01), &no_attrs]));
    id += 1;
    let mut offset = 0u64;
    let mut downloaded = Vec::new();
    loop {
        let (kind, body) = r.sftp(5, id, &[&string(&h), &u64f(offset), &u32f(64 * 1024)]);
        id += 1;
        if kind == 101 {
            assert_eq!(status_of(&(kind, body)), 1, "EOF");
            break;
        }
        assert_eq!(kind, 103);
        downloaded.extend_from_slice(&body[4..]);
        offset = downloaded.len() as u64;
    }
    assert_eq!(downloaded, data);
    assert_eq!(status_of(&r.sftp(4, id, &[&string(&h)])), 0);
    id += 1;

    let moved = path_text(&dir, "moved.bin");
    assert_eq!(
        status_of(&r.sftp(18, id, &[&string(up.as_bytes()), &string(moved.as_bytes())])),
        0
    );
    id += 1;
    let missing = path_text(&dir, "missing.bin");
    assert_eq!(
        status_of(&r.sftp(
            3,
            id,
            &[&string(missing.as_bytes()), &u32f(0x01), &no_attrs]
        )),
        2
    );
    id += 1;
    assert_eq!(status_of(&r.sftp(13, id, &[&string(moved.as_bytes())])), 0);
    id += 1;
    let sub = path_text(&dir, "sub");
    assert_eq!(
        status_of(&r.sftp(14, id, &[&string(sub.as_bytes()), &no_attrs])),
        0
    );
    id += 1;
    assert_eq!(status_of(&r.sftp(15, id, &[&string(sub.as_bytes())])), 0);

    let ev = r.finish();
    let ops: Vec<(&str, &str, &str)> = ev
        .iter()
        .map(|e| {
            (
                e["op"].as_str().unwrap_or(""),
                e["path"].as_str().unwrap_or(""),
                e["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("open", up.as_str(), "ok"),
            ("open", up.as_str(), "ok"),
            ("rename", up.as_str(), "ok"),
            ("open", missing.as_str(), "no_such_file"),
            ("remove", moved.as_str(), "ok"),
            ("mkdir", sub.as_str(), "ok"),
            ("rmdir", sub.as_str(), "ok"),
            ("summary", "", "ok"),
        ]
    );
    let total = data.len() as u64;
    assert_eq!(
        (ev[0]["direction"].clone(), ev[0]["bytes_written"].clone()),
        (json!("upload"), json!(total))
    );
    assert_eq!(
        (ev[1]["direction"].clone(), ev[1]["bytes_read"].clone()),
        (json!("download"), json!(total))
    );
    assert_eq!(ev[2]["target"], moved.as_str());
    assert_eq!(ev[3]["direction"], "download");
    assert_eq!(ev[7]["decoded"], true);
    let record: usize = ev.iter().map(|e| e.to_string().len()).sum();
    assert!(record < 4096, "{record} bytes of events for 2 MiB moved");
}

#[test]
fn real_scp_sink_upload_with_a_refused_file() {
    let dir = TempDir::new("transfer-scp-t");
    let target = path_text(&dir, "in");
    std::fs::create_dir(&target).expect("target dir");
    let mut r = Relay::start(&format!("scp -r -t {target}"), dir.path());
    assert_eq!(r.receive_exact(1), [0], "the sink's go-ahead");
    let data = pattern(200_000);
    r.send(format!("C0640 {} data.bin\n", data.len()).as_bytes());
    assert_eq!(r.receive_exact(1), [0]);
    r.send(&data);
    r.send(&[0]);
    assert_eq!(r.receive_exact(1), [0]);
    r.send(b"D0755 0 nested\n");
    assert_eq!(r.receive_exact(1), [0]);
    r.send(b"C0600 3 deep.txt\n");
    assert_eq!(r.receive_exact(1), [0]);
    r.send(b"abc\0");
    assert_eq!(r.receive_exact(1), [0]);
    r.send(b"E\n");
    assert_eq!(r.receive_exact(1), [0]);
    // A file over an existing directory is refused; the source skips its data.
    r.send(b"C0644 5 nested\n");
    let refusal = r.receive_line();
    assert_eq!(refusal[0], 1, "an error reply: {refusal:?}");
    r.send(b"E\n");
    assert_eq!(r.receive_exact(1), [0]);
    let ev = r.finish();

    assert_eq!(
        std::fs::read(format!("{target}/data.bin")).expect("uploaded"),
        data
    );
    assert_eq!(
        std::fs::read(format!("{target}/nested/deep.txt")).expect("uploaded"),
        b"abc"
    );
    let summary: Vec<(&str, &str, &str)> = ev
        .iter()
        .map(|e| {
            (
                e["op"].as_str().unwrap_or(""),
                e["name"].as_str().unwrap_or(""),
                e["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("file", "data.bin", "ok"),
            ("dir", "nested", "ok"),
            ("file", "nested/deep.txt", "ok"),
            ("file", "nested", "error"),
            // scp exits 1 after any refused file.
            ("summary", "", "failed"),
        ]
    );
    assert_eq!(ev[0]["bytes_written"], 200_000);
    assert_eq!(ev[0]["mode"], "0640");
    assert_eq!(ev[0]["path"], target.as_str());
    assert!(
        ev[3]["status_text"]
            .as_str()
            .is_some_and(|t| t.contains("nested")),
        "{}",
        ev[3]
    );
    assert_eq!(ev[3]["bytes_written"], 0);
}

#[test]
fn real_scp_source_download_and_missing_file() {
    let dir = TempDir::new("transfer-scp-f");
    let file = path_text(&dir, "out.bin");
    let data = pattern(70_000);
    std::fs::write(&file, &data).expect("source file");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    let mut r = Relay::start(&format!("scp -f {file}"), dir.path());
    r.send(&[0]);
    let header = r.receive_line();
    assert_eq!(
        header,
        format!("C0644 {} out.bin\n", data.len()).into_bytes()
    );
    r.send(&[0]);
    assert_eq!(r.receive_exact(data.len()), data);
    assert_eq!(r.receive_exact(1), [0]);
    r.send(&[0]);
    let ev = r.finish();
    assert_eq!(ev[0]["op"], "file");
    assert_eq!(ev[0]["direction"], "download");
    assert_eq!(ev[0]["bytes_read"], 70_000);
    assert_eq!(ev[0]["status"], "ok");

    let missing = path_text(&dir, "missing.bin");
    let mut r = Relay::start(&format!("scp -f {missing}"), dir.path());
    r.send(&[0]);
    let line = r.receive_line();
    assert_eq!(line[0], 1);
    let ev = r.finish();
    assert_eq!(ev[0]["op"], "error");
    assert_eq!(
        ev[0]["status_text"],
        format!("scp: {missing}: No such file or directory")
    );
    assert_eq!(ev[1]["exit_status"], 1);
    assert_eq!(ev[1]["status"], "failed");
}
