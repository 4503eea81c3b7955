//! The SFTP decoder, fed packets as the relay sees them.

use super::codes::{FXF_CREAT, FXF_READ, FXF_WRITE};
use super::*;
use serde_json::{json, Value};

/// Builds SFTP packets: type, then fields.
struct Pkt(Vec<u8>);

impl Pkt {
    fn new(kind: u8) -> Self {
        Pkt(vec![kind])
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn str(self, s: &[u8]) -> Self {
        let mut p = self.u32(s.len() as u32);
        p.0.extend_from_slice(s);
        p
    }
    fn bytes(&self) -> Vec<u8> {
        let mut out = (self.0.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&self.0);
        out
    }
}

fn status(id: u32, code: u32, text: &[u8]) -> Vec<u8> {
    Pkt::new(packet::STATUS)
        .u32(id)
        .u32(code)
        .str(text)
        .str(b"")
        .bytes()
}

fn started() -> SftpDecoder {
    let mut d = SftpDecoder::new();
    d.client_to_server(0, &Pkt::new(packet::INIT).u32(3).bytes());
    d.server_to_client(0, &Pkt::new(packet::VERSION).u32(3).bytes());
    d
}

fn json_events(d: &mut SftpDecoder) -> Vec<Value> {
    d.take_events()
        .iter()
        .map(|e| Value::Object(e.to_fields()))
        .collect()
}

fn open_for_write(d: &mut SftpDecoder, id: u32, path: &[u8], handle: &[u8]) {
    d.client_to_server(
        10,
        &Pkt::new(packet::OPEN)
            .u32(id)
            .str(path)
            .u32(FXF_WRITE | FXF_CREAT)
            .u32(0)
            .bytes(),
    );
    d.server_to_client(11, &Pkt::new(packet::HANDLE).u32(id).str(handle).bytes());
}

#[test]
fn a_failed_write_is_not_counted_and_is_reported() {
    let mut d = started();
    open_for_write(&mut d, 0, b"/up", b"h0");
    let write = |id: u32, n: usize| {
        let mut p = Pkt::new(packet::WRITE)
            .u32(id)
            .str(b"h0")
            .u64(0)
            .u32(n as u32)
            .bytes();
        p.extend(vec![7u8; n]);
        // The length prefix must cover the payload too.
        let body = (p.len() - 4) as u32;
        p[..4].copy_from_slice(&body.to_be_bytes());
        p
    };
    d.client_to_server(12, &write(1, 100));
    d.client_to_server(13, &write(2, 50));
    d.server_to_client(14, &status(1, FX_OK, b"Success"));
    d.server_to_client(15, &status(2, 4, b"Failure"));
    d.client_to_server(16, &Pkt::new(packet::CLOSE).u32(3).str(b"h0").bytes());
    d.server_to_client(20, &status(3, FX_OK, b"Success"));
    assert_eq!(
        json_events(&mut d),
        vec![
            json!({"protocol":"sftp","op":"open","path":"/up","direction":"upload","open_flags":"write,create",
            "bytes_read":0,"bytes_written":100,"status":"ok","status_code":0,"io_errors":1,
            "io_error_status":"failure","io_error_text":"Failure","started_us":10,"duration_us":10})
        ]
    );
}

#[test]
fn unfinished_operations_are_reported_at_the_end() {
    let mut d = started();
    open_for_write(&mut d, 0, b"/partial", b"h");
    d.client_to_server(30, &Pkt::new(packet::REMOVE).u32(1).str(b"/gone").bytes());
    d.finish(40);
    let ev = json_events(&mut d);
    assert_eq!(ev[0]["path"], "/partial");
    assert_eq!(ev[0]["status"], "incomplete");
    assert_eq!(ev[0]["closed"], false);
    assert_eq!(ev[0]["duration_us"], 30);
    assert_eq!(
        ev[1],
        json!({"protocol":"sftp","op":"remove","path":"/gone","status":"no_reply","started_us":30})
    );
}

#[test]
fn reused_request_ids_are_answered_in_order() {
    let mut d = started();
    d.client_to_server(1, &Pkt::new(packet::MKDIR).u32(5).str(b"/a").u32(0).bytes());
    d.client_to_server(2, &Pkt::new(packet::MKDIR).u32(5).str(b"/b").u32(0).bytes());
    d.server_to_client(3, &status(5, FX_OK, b""));
    d.server_to_client(4, &status(5, 3, b"Permission denied"));
    let ev = json_events(&mut d);
    assert_eq!(
        (ev[0]["path"].as_str(), ev[0]["status"].as_str()),
        (Some("/a"), Some("ok"))
    );
    assert_eq!(
        (ev[1]["path"].as_str(), ev[1]["status"].as_str()),
        (Some("/b"), Some("permission_denied"))
    );
    assert!(!d.stopped());
}

#[test]
fn garbage_stops_decoding_once_with_the_byte_counts() {
    let mut d = started();
    d.client_to_server(1, &Pkt::new(packet::REMOVE).u32(1).str(b"/x").bytes());
    d.server_to_client(2, &status(1, FX_OK, b""));
    // A reply to a request that was never made.
    d.server_to_client(3, &status(99, FX_OK, b""));
    d.client_to_server(4, b"more bytes that are no longer decoded");
    d.server_to_client(5, &status(2, FX_OK, b""));
    let ev = json_events(&mut d);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(ev[0]["op"], "remove");
    assert_eq!(
        ev[1],
        json!({"protocol":"sftp","op":"decode_stopped","reason":"reply to unknown request 99",
            "bytes_from_client":9 + 15,"bytes_to_client":9 + 2 * 21,"at_us":3})
    );
    assert!(d.stopped());
}

#[test]
fn bad_framing_stops_decoding() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0, 0, 0, 0], "empty packet"),
        (
            ((MAX_PACKET_BYTES + 1) as u32).to_be_bytes().to_vec(),
            "packet of 262145 bytes exceeds the SFTP limit",
        ),
        (
            Pkt::new(packet::REMOVE).bytes(),
            "request of type 13 without an id",
        ),
    ];
    for (bytes, reason) in cases {
        let mut d = started();
        d.client_to_server(1, &bytes);
        let ev = json_events(&mut d);
        assert_eq!(ev.len(), 1, "{reason}: {ev:?}");
        assert_eq!(ev[0]["reason"], reason);
        assert_eq!(ev[0]["bytes_from_client"], (9 + bytes.len()) as u64);
    }
    let mut d = SftpDecoder::new();
    d.server_to_client(1, &Pkt::new(packet::VERSION).u32(6).bytes());
    assert_eq!(
        json_events(&mut d)[0]["reason"],
        "SFTP version 6 is not decoded"
    );
}

/// A download of `sizes` bytes per DATA reply, then EOF and CLOSE: (requests, replies).
fn download(sizes: &[usize]) -> (Vec<u8>, Vec<u8>) {
    let (mut requests, mut replies) = (Vec::new(), Vec::new());
    requests.extend(
        Pkt::new(packet::OPEN)
            .u32(1)
            .str(b"/srv/big.bin")
            .u32(FXF_READ)
            .u32(0)
            .bytes(),
    );
    replies.extend(Pkt::new(packet::HANDLE).u32(1).str(b"h1").bytes());
    let mut offset = 0u64;
    for (i, &size) in sizes.iter().enumerate() {
        let id = 10 + i as u32;
        requests.extend(
            Pkt::new(packet::READ)
                .u32(id)
                .str(b"h1")
                .u64(offset)
                .u32(size as u32)
                .bytes(),
        );
        let payload: Vec<u8> = (0..size).map(|b| (b % 251) as u8).collect();
        replies.extend(Pkt::new(packet::DATA).u32(id).str(&payload).bytes());
        offset += size as u64;
    }
    let eof_id = 10 + sizes.len() as u32;
    requests.extend(
        Pkt::new(packet::READ)
            .u32(eof_id)
            .str(b"h1")
            .u64(offset)
            .u32(32768)
            .bytes(),
    );
    replies.extend(status(eof_id, FX_EOF, b"EOF"));
    requests.extend(Pkt::new(packet::CLOSE).u32(eof_id + 1).str(b"h1").bytes());
    replies.extend(status(eof_id + 1, FX_OK, b""));
    (requests, replies)
}

#[test]
fn skipping_payloads_as_the_relay_does_decodes_the_same() {
    let sizes = [100, 5000, 32768, 32768, 7, 32768, 65536, 1];
    let (requests, replies) = download(&sizes);
    let mut fed = started();
    fed.client_to_server(1, &requests);
    for piece in replies.chunks(1000) {
        fed.server_to_client(2, piece);
    }
    let expected = json_events(&mut fed);
    assert_eq!(expected.len(), 1, "{expected:?}");
    assert_eq!(
        expected[0]["bytes_read"],
        json!(sizes.iter().sum::<usize>()),
        "{expected:?}"
    );

    // The relay: splice what is skippable (in slices, as a pipe hands it over), read up to
    // the limit otherwise.
    for splice_slice in [1, 4096, 1 << 20] {
        let mut relayed = started();
        relayed.client_to_server(1, &requests);
        let (mut at, mut spliced, mut reads) = (0, 0, 0);
        while at < replies.len() {
            let skippable = relayed.server_to_client_skippable();
            if skippable > 0 {
                let n = skippable.min(splice_slice).min(replies.len() - at);
                relayed.server_to_client_skipped(2, n);
                spliced += n;
                at += n;
            } else {
                // A read returns at most what the pipe holds.
                let limit = relayed.server_to_client_read_limit().unwrap_or(1 << 20);
                let n = limit.min(replies.len() - at).min(40_000);
                relayed.server_to_client(2, &replies[at..at + n]);
                reads += 1;
                at += n;
            }
        }
        assert_eq!(json_events(&mut relayed), expected, "slice {splice_slice}");
        assert!(!relayed.stopped());
        // The first read takes what the pipe holds (up to inside the second 32 KiB reply);
        // every payload after that is skipped, the short one included.
        assert!(
            spliced > 30_000 + 32768 + 65536,
            "payloads after the first large reply are skipped, not read: {spliced}"
        );
        assert!(reads < 40, "{reads} reads");
    }
}

#[test]
fn unparsable_requests_are_recorded_and_answered_like_any_other() {
    // sftp-server answers a refused request (-P) without parsing it.
    let bodies = [
        Pkt::new(packet::OPEN).u32(1).u32(1000).bytes(),
        Pkt::new(packet::WRITE)
            .u32(2)
            .str(b"h")
            .u64(0)
            .u32(10)
            .bytes(),
        Pkt::new(packet::READ).u32(3).str(b"h").u64(0).bytes(),
    ];
    let mut d = started();
    for (i, body) in bodies.iter().enumerate() {
        d.client_to_server(1, body);
        d.server_to_client(2, &status(i as u32 + 1, 3, b"Permission denied"));
    }
    let ev = json_events(&mut d);
    let types: Vec<&Value> = ev.iter().map(|e| &e["request_type"]).collect();
    assert_eq!(types, [&json!(3), &json!(6), &json!(5)]);
    assert!(ev
        .iter()
        .all(|e| e["op"] == "malformed_request" && e["status"] == "permission_denied"));
    assert!(!d.stopped());
}

#[test]
fn trailing_bytes_in_a_request_are_ignored_as_sftp_server_ignores_them() {
    let mut d = started();
    let mut p = Pkt::new(packet::RMDIR).u32(1).str(b"/d");
    p.0.extend_from_slice(b"padding the server skips");
    d.client_to_server(1, &p.bytes());
    d.server_to_client(2, &status(1, FX_OK, b""));
    assert_eq!(json_events(&mut d)[0]["path"], "/d");
    assert!(!d.stopped());
}

#[test]
fn non_utf8_names_are_kept_exactly() {
    let mut d = started();
    d.client_to_server(1, &Pkt::new(packet::REMOVE).u32(1).str(b"/caf\xe9").bytes());
    d.server_to_client(2, &status(1, FX_OK, b""));
    let ev = json_events(&mut d);
    assert_eq!(ev[0]["path"], "/caf\u{fffd}");
    assert_eq!(ev[0]["path_hex"], "2f636166e9");
}

#[test]
fn write_payload_is_skipped_not_buffered() {
    let mut d = started();
    open_for_write(&mut d, 0, b"/big", b"h");
    let n = 200 * 1024;
    let mut header = Pkt::new(packet::WRITE)
        .u32(1)
        .str(b"h")
        .u64(0)
        .u32(n as u32)
        .bytes();
    let body = (header.len() - 4 + n) as u32;
    header[..4].copy_from_slice(&body.to_be_bytes());
    d.client_to_server(1, &header);
    let chunk = vec![0x55u8; 4096];
    for _ in 0..n / 4096 {
        d.client_to_server(2, &chunk);
        assert!(
            d.buffered_bytes() < 8 * 1024,
            "holds {}",
            d.buffered_bytes()
        );
    }
    d.server_to_client(3, &status(1, FX_OK, b""));
    d.client_to_server(4, &Pkt::new(packet::CLOSE).u32(2).str(b"h").bytes());
    d.server_to_client(5, &status(2, FX_OK, b""));
    assert_eq!(json_events(&mut d)[0]["bytes_written"], n as u64);
}

#[test]
fn a_client_that_stops_reading_replies_cannot_switch_decoding_off() {
    let mut d = started();
    let path = vec![b'p'; 4000];
    let mut id = 0;
    // Requests pile up unanswered until the tracking budget is spent...
    while d.take_events().is_empty() {
        id += 1;
        d.client_to_server(
            1,
            &Pkt::new(packet::MKDIR).u32(id).str(&path).u32(0).bytes(),
        );
        assert!(d.buffered_bytes() <= MAX_TRACKED_BYTES + 2 * MAX_PACKET_BYTES);
    }
    let tracked = id - 1;
    // ...past which each request is recorded at once, path included, and the rest follow.
    for _ in 0..100 {
        id += 1;
        d.client_to_server(
            2,
            &Pkt::new(packet::MKDIR).u32(id).str(&path).u32(0).bytes(),
        );
        assert!(d.buffered_bytes() <= MAX_TRACKED_BYTES + 2 * MAX_PACKET_BYTES);
    }
    let untracked = json_events(&mut d);
    assert_eq!(untracked.len(), 100);
    assert!(untracked
        .iter()
        .all(|e| e["status"] == "untracked" && e["path"].as_str().map(str::len) == Some(4000)));
    for reply in 1..=id {
        d.server_to_client(3, &status(reply, FX_OK, b""));
    }
    let answered = json_events(&mut d);
    assert_eq!(answered.len() as u32, tracked);
    assert!(answered.iter().all(|e| e["status"] == "ok"));
    // Decoding is still on: a new operation is recorded with its outcome.
    d.client_to_server(4, &Pkt::new(packet::REMOVE).u32(1).str(b"/later").bytes());
    d.server_to_client(5, &status(1, FX_OK, b""));
    let later = json_events(&mut d);
    assert_eq!(
        (later[0]["path"].as_str(), later[0]["status"].as_str()),
        (Some("/later"), Some("ok"))
    );
    assert!(!d.stopped());
}

#[test]
fn unknown_request_types_and_oversized_handles_do_not_stop_decoding() {
    let mut d = started();
    d.client_to_server(1, &Pkt::new(77).u32(1).str(b"x").bytes());
    d.client_to_server(
        2,
        &Pkt::new(packet::CLOSE).u32(2).str(&[b'h'; 1000]).bytes(),
    );
    d.server_to_client(3, &status(2, 4, b"Failure"));
    let mut write = Pkt::new(packet::WRITE)
        .u32(3)
        .str(&[b'h'; 1000])
        .u64(0)
        .str(b"data")
        .bytes();
    write.extend_from_slice(b"");
    d.client_to_server(4, &write);
    d.server_to_client(5, &status(3, 4, b"Failure"));
    d.client_to_server(6, &Pkt::new(packet::RMDIR).u32(4).str(b"/d").bytes());
    d.server_to_client(7, &status(4, FX_OK, b""));
    let ev = json_events(&mut d);
    assert_eq!(
        ev[0],
        json!({"protocol":"sftp","op":"unknown_request","request_type":77,"started_us":1})
    );
    assert_eq!(ev[1]["op"], "rmdir");
    assert!(!d.stopped());
}

#[test]
fn extended_requests_are_named() {
    let mut d = started();
    d.client_to_server(
        1,
        &Pkt::new(packet::EXTENDED)
            .u32(1)
            .str(b"expand-path@openssh.com")
            .str(b"~/x")
            .bytes(),
    );
    d.server_to_client(
        2,
        &Pkt::new(packet::NAME)
            .u32(1)
            .u32(1)
            .str(b"/home/u/x")
            .str(b"")
            .u32(0)
            .bytes(),
    );
    d.client_to_server(
        3,
        &Pkt::new(packet::EXTENDED)
            .u32(2)
            .str(b"vendor-thing@example.com")
            .bytes(),
    );
    d.server_to_client(4, &status(2, 8, b"Operation unsupported"));
    let ev = json_events(&mut d);
    assert_eq!(
        ev[0],
        json!({"protocol":"sftp","op":"expand-path","path":"~/x","target":"/home/u/x",
            "extension":"expand-path@openssh.com","status":"ok","status_code":0,"started_us":1,"duration_us":1})
    );
    assert_eq!(ev[1]["op"], "extended");
    assert_eq!(ev[1]["extension"], "vendor-thing@example.com");
    assert_eq!(ev[1]["status"], "op_unsupported");
}

#[test]
fn the_home_directory_request_keeps_the_user_name_asked_for() {
    let mut d = started();
    d.client_to_server(
        1,
        &Pkt::new(packet::EXTENDED)
            .u32(1)
            .str(b"home-directory")
            .str(b"bob\xff")
            .bytes(),
    );
    d.server_to_client(
        2,
        &Pkt::new(packet::NAME)
            .u32(1)
            .u32(1)
            .str(b"/home/bob")
            .str(b"")
            .u32(0)
            .bytes(),
    );
    let ev = json_events(&mut d);
    assert_eq!(ev[0]["op"], "home-directory");
    assert_eq!(ev[0]["requested_user"], "bob\u{fffd}");
    assert_eq!(ev[0]["requested_user_hex"], "626f62ff");
    assert_eq!(ev[0]["target"], "/home/bob");
    // Neither field is a header key, so the record writer keeps both as written.
    for field in ["requested_user", "request_type"] {
        assert!(!sessrec_core::schema::HEADER_KEYS.contains(&field));
    }
}
