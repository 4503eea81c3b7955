//! Replays traffic captured from the real OpenSSH sftp-server, scp and rsync (see
//! `testdata/capture.py`) through a monitor, in the order it was relayed.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use serde_json::{json, Value};

use super::{classify, TransferConfig, TransferEvent, TransferMonitor};

pub(crate) struct Capture {
    pub command: String,
    pub chunks: Vec<(bool, Vec<u8>)>,
    pub exit_status: i32,
}

pub(crate) fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/transfer/testdata")
        .join(name)
}

pub(crate) fn load(name: &str) -> Capture {
    let data = std::fs::read(testdata(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut cap = Capture {
        command: String::new(),
        chunks: Vec::new(),
        exit_status: -1,
    };
    let mut i = 0;
    while i < data.len() {
        let kind = data[i];
        let len = u32::from_be_bytes([data[i + 1], data[i + 2], data[i + 3], data[i + 4]]) as usize;
        let body = data[i + 5..i + 5 + len].to_vec();
        i += 5 + len;
        match kind {
            b'a' => cap.command = String::from_utf8(body).expect("utf-8 command"),
            b'c' => cap.chunks.push((true, body)),
            b's' => cap.chunks.push((false, body)),
            b'x' => cap.exit_status = i32::from_be_bytes([body[0], body[1], body[2], body[3]]),
            other => panic!("{name}: unknown record {other}"),
        }
    }
    cap
}

/// Runs a capture through a monitor; chunk n happens at `now_us` = 1000 * (n + 1).
/// `split` re-chunks every chunk into pieces of at most that many bytes.
pub(crate) fn replay(name: &str, split: usize) -> Vec<TransferEvent> {
    let cap = load(name);
    let command = if cap.command == "sftp" {
        "/usr/lib/openssh/sftp-server".to_owned()
    } else {
        cap.command.clone()
    };
    let cmd = classify(&command, false, &TransferConfig::default())
        .unwrap_or_else(|| panic!("not a transfer: {command}"));
    let mut monitor = TransferMonitor::new(&cmd);
    let mut events = Vec::new();
    let mut now = 0;
    for (from_client, bytes) in &cap.chunks {
        now += 1000;
        for piece in bytes.chunks(split.max(1)) {
            if *from_client {
                monitor.client_to_server(now, piece);
            } else {
                monitor.server_to_client(now, piece);
            }
        }
        events.extend(monitor.drain_events());
    }
    events.extend(monitor.finish(now + 1000, Some(cap.exit_status)));
    events
}

/// The events as JSON objects, for comparison.
pub(crate) fn as_json(events: &[TransferEvent]) -> Vec<Value> {
    events
        .iter()
        .map(|e| Value::Object(e.to_fields()))
        .collect()
}

/// The one event with this op and path (panics if there is not exactly one).
fn one<'a>(events: &'a [Value], op: &str, path: &str) -> &'a Value {
    let found: Vec<&Value> = events
        .iter()
        .filter(|e| e["op"] == op && e["path"] == path)
        .collect();
    assert_eq!(found.len(), 1, "{op} {path}: {found:?}");
    found[0]
}

const REMOTE: &str = "/tmp/sessrec-fixture/remote";

fn remote(name: &str) -> String {
    format!("{REMOTE}/{name}")
}

#[test]
fn sftp_batch_session_from_the_real_sftp_server() {
    let ev = as_json(&replay("sftp.cap", usize::MAX));
    assert_eq!(
        one(&ev, "open", &remote("big.bin")),
        &json!({"protocol":"sftp","op":"open","path":remote("big.bin"),"direction":"upload",
            "open_flags":"write,create,truncate","mode":"0644","bytes_read":0,"bytes_written":40000,
            "status":"ok","status_code":0,"started_us":11000,"duration_us":5000})
    );
    assert_eq!(one(&ev, "open", &remote("up.txt"))["bytes_written"], 12);
    assert_eq!(one(&ev, "open", &remote("empty"))["bytes_written"], 0);
    assert_eq!(one(&ev, "open", &remote("empty"))["direction"], "upload");
    assert_eq!(
        one(&ev, "open", &remote("copy.txt"))["open_flags"],
        "write,create,truncate"
    );
    let downloads: Vec<&Value> = ev
        .iter()
        .filter(|e| e["op"] == "open" && e["path"] == remote("r.txt"))
        .collect();
    assert_eq!(
        downloads.len(),
        2,
        "get, then the source of the server-side copy"
    );
    assert_eq!(
        downloads[0],
        &json!({"protocol":"sftp","op":"open","path":remote("r.txt"),"direction":"download",
            "open_flags":"read","bytes_read":50000,"bytes_written":0,"status":"ok","status_code":0,
            "started_us":33000,"duration_us":7000})
    );
    assert_eq!(downloads[1]["bytes_read"], 0);
    // `get missing.txt`: the client looks the path up and gives up before opening it.
    assert_eq!(
        one(&ev, "lstat", &remote("missing.txt")),
        &json!({"protocol":"sftp","op":"lstat","path":remote("missing.txt"),"status":"no_such_file",
            "status_code":2,"status_text":"No such file","started_us":41000,"duration_us":1000})
    );
    assert_eq!(one(&ev, "list", &remote("sub/"))["entries"], 4);
    assert_eq!(one(&ev, "mkdir", &remote("newdir"))["status"], "ok");
    assert_eq!(
        one(&ev, "rename", &remote("up.txt")),
        &json!({"protocol":"sftp","op":"rename","path":remote("up.txt"),"target":remote("newdir/up2.txt"),
            "extension":"posix-rename@openssh.com","status":"ok","status_code":0,"started_us":57000,"duration_us":1000})
    );
    assert_eq!(
        one(&ev, "setstat", &remote("newdir/up2.txt"))["mode"],
        "0600"
    );
    assert_eq!(one(&ev, "symlink", &remote("link.txt"))["target"], "r.txt");
    assert_eq!(
        one(&ev, "hardlink", &remote("hard.txt"))["target"],
        remote("r.txt")
    );
    let copy = one(&ev, "copy", &remote("r.txt"));
    assert_eq!(copy["target"], remote("copy.txt"));
    assert_eq!(copy["extension"], "copy-data");
    assert_eq!(copy["status"], "ok");
    assert_eq!(
        one(&ev, "statvfs", REMOTE)["extension"],
        "statvfs@openssh.com"
    );
    assert_eq!(one(&ev, "remove", &remote("hard.txt"))["status"], "ok");
    assert_eq!(one(&ev, "remove", &remote("link.txt"))["status"], "ok");
    assert_eq!(
        one(&ev, "remove", &remote("nope.txt")),
        &json!({"protocol":"sftp","op":"remove","path":remote("nope.txt"),"status":"no_such_file",
            "status_code":2,"status_text":"No such file","started_us":91000,"duration_us":1000})
    );
    assert_eq!(one(&ev, "rmdir", &remote("sub2"))["status"], "no_such_file");
    assert_eq!(one(&ev, "rmdir", &remote("newdir2"))["status"], "ok");
    let summary = ev.last().expect("events");
    assert_eq!(summary["op"], "summary");
    assert_eq!(summary["decoded"], true);
    assert_eq!(summary["exit_status"], 0);
    assert!(!ev.iter().any(|e| e["op"] == "decode_stopped"));
    let stats = ev
        .iter()
        .find(|e| e["op"] == "stat_summary")
        .expect("a stat summary");
    assert_eq!(stats["failed"], 3);
}

#[test]
fn openssh_scp_over_sftp_both_ways() {
    let up = as_json(&replay("scp_sftp_up.cap", usize::MAX));
    let tree = "/tmp/sessrec-fixture/remote2/tree_sftp";
    assert_eq!(one(&up, "mkdir", tree)["mode"], "0755");
    assert_eq!(one(&up, "mkdir", &format!("{tree}/inner"))["status"], "ok");
    let one_txt = one(&up, "open", &format!("{tree}/one.txt"));
    assert_eq!(
        (
            one_txt["direction"].as_str(),
            one_txt["bytes_written"].as_u64()
        ),
        (Some("upload"), Some(4))
    );
    let i_bin = one(&up, "open", &format!("{tree}/inner/i.bin"));
    assert_eq!(
        (i_bin["status"].as_str(), i_bin["bytes_written"].as_u64()),
        (Some("ok"), Some(3000))
    );

    let down = as_json(&replay("scp_sftp_down.cap", usize::MAX));
    let r = one(&down, "open", &remote("r.txt"));
    assert_eq!(
        (r["direction"].as_str(), r["bytes_read"].as_u64()),
        (Some("download"), Some(50000))
    );
}

#[test]
fn legacy_scp_upload_with_times() {
    let ev = as_json(&replay("scp_legacy_up.cap", usize::MAX));
    let path = "/tmp/sessrec-fixture/remote2/small_scp.txt";
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(ev[0]["op"], "file");
    assert_eq!(ev[0]["path"], path);
    assert_eq!(ev[0]["name"], "small.txt");
    assert_eq!(ev[0]["direction"], "upload");
    assert_eq!(ev[0]["mode"], "0644");
    assert_eq!(ev[0]["size"], 12);
    assert_eq!(ev[0]["bytes_written"], 12);
    assert_eq!(ev[0]["status"], "ok");
    assert!(ev[0]["mtime"].as_u64() > Some(1_700_000_000));
    assert_eq!(ev[1]["op"], "summary");
    assert_eq!(ev[1]["command"], format!("/usr/bin/scp -p -t {path}"));
}

#[test]
fn legacy_scp_recursive_both_ways() {
    let up = as_json(&replay("scp_legacy_up_r.cap", usize::MAX));
    let names: Vec<(&str, &str, &str)> = up
        .iter()
        .filter(|e| e["op"] != "summary")
        .map(|e| {
            (
                e["op"].as_str().unwrap_or(""),
                e["name"].as_str().unwrap_or(""),
                e["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("dir", "tree", "ok"),
            ("file", "tree/one.txt", "ok"),
            ("dir", "tree/inner", "ok"),
            ("file", "tree/inner/i.bin", "ok")
        ]
    );
    assert_eq!(up[3]["bytes_written"], 3000);
    assert_eq!(up[3]["path"], "/tmp/sessrec-fixture/remote2/tree_scp");

    let down = as_json(&replay("scp_legacy_down_r.cap", usize::MAX));
    let mut files: Vec<(&str, u64)> = down
        .iter()
        .filter(|e| e["op"] == "file")
        .map(|e| {
            (
                e["name"].as_str().unwrap_or(""),
                e["bytes_read"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    files.sort();
    assert_eq!(files, [("sub/a", 2), ("sub/b", 2)]);
    assert!(down.iter().all(|e| e["direction"] == "download"));
}

#[test]
fn legacy_scp_download() {
    let ev = as_json(&replay("scp_legacy_down.cap", usize::MAX));
    assert_eq!(
        ev[0],
        json!({"protocol":"scp","op":"file","path":remote("r.txt"),"direction":"download","name":"r.txt",
            "mode":"0644","size":50000,"bytes_read":50000,"status":"ok","started_us":2000,"duration_us":4000})
    );
}

#[test]
fn legacy_scp_failures_are_recorded_with_the_servers_message() {
    let missing = as_json(&replay("scp_legacy_missing.cap", usize::MAX));
    assert_eq!(
        missing[0],
        json!({"protocol":"scp","op":"error","path":remote("missing.txt"),"direction":"download","status":"error",
            "status_text":format!("scp: {}: No such file or directory", remote("missing.txt"))})
    );
    assert_eq!(missing[1]["status"], "failed");
    assert_eq!(missing[1]["exit_status"], 1);

    let denied = as_json(&replay("scp_legacy_denied.cap", usize::MAX));
    assert_eq!(denied[0]["op"], "file");
    assert_eq!(denied[0]["name"], "small.txt");
    assert_eq!(denied[0]["status"], "error");
    assert_eq!(
        denied[0]["status_text"],
        "scp: /proc/nope/x: No such file or directory"
    );
    assert_eq!(denied[0]["bytes_written"], 0);
}

#[test]
fn rsync_summaries_carry_direction_paths_and_byte_counts() {
    let cap = load("rsync_up.cap");
    let sent: usize = cap
        .chunks
        .iter()
        .filter(|(c, _)| *c)
        .map(|(_, b)| b.len())
        .sum();
    let up = as_json(&replay("rsync_up.cap", usize::MAX));
    assert_eq!(up.len(), 1);
    assert_eq!(up[0]["op"], "summary");
    assert_eq!(up[0]["protocol"], "rsync");
    assert_eq!(up[0]["direction"], "upload");
    assert_eq!(
        up[0]["paths"],
        json!(["/tmp/sessrec-fixture/remote2/tree_rsync/"])
    );
    assert_eq!(up[0]["bytes_from_client"], sent as u64);
    assert!(sent > 3000, "the 3000-byte file went up");

    let down = as_json(&replay("rsync_down.cap", usize::MAX));
    assert_eq!(down[0]["direction"], "download");
    assert_eq!(
        down[0]["paths"],
        json!(["/tmp/sessrec-fixture/remote/sub/"])
    );
}

#[test]
fn every_fixture_decodes_the_same_however_the_bytes_are_chunked() {
    for name in FIXTURES {
        let whole = as_json(&replay(name, usize::MAX));
        for split in [1, 3, 7, 4096] {
            assert_eq!(
                as_json(&replay(name, split)),
                whole,
                "{name} in pieces of {split}"
            );
        }
    }
}

pub(crate) const FIXTURES: &[&str] = &[
    "sftp.cap",
    "scp_sftp_up.cap",
    "scp_sftp_down.cap",
    "scp_legacy_up.cap",
    "scp_legacy_up_r.cap",
    "scp_legacy_down.cap",
    "scp_legacy_down_r.cap",
    "scp_legacy_missing.cap",
    "scp_legacy_denied.cap",
    "rsync_up.cap",
    "rsync_down.cap",
];
