//! The writer and reader together: lines, frames, chain, bounds, resume and a full disk.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use sessrec_core::reader::{self, decode_frames, verify_file};
use sessrec_core::record::Stream;
use sessrec_core::testing::{record_file, TempDir};
use sessrec_core::writer::{RecordWriter, WriterOptions};

fn new_writer(dir: &Path, name: &str, max_line_bytes: usize) -> (PathBuf, RecordWriter) {
    let opts = WriterOptions {
        max_line_bytes,
        ..Default::default()
    };
    record_file(dir, name, opts, "alice@example.com")
}

/// Concatenated frame bytes per stream, and every line's length.
fn streams(path: &Path) -> (HashMap<&'static str, Vec<u8>>, Vec<usize>) {
    let mut out: HashMap<&'static str, Vec<u8>> = HashMap::new();
    let mut lens = Vec::new();
    for line in reader::lines(path).unwrap() {
        let line = line.unwrap();
        lens.push(line.raw.len());
        for f in decode_frames(&line) {
            out.entry(f.stream.code())
                .or_default()
                .extend_from_slice(&f.data);
        }
    }
    (out, lens)
}

fn fields(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[test]
fn io_round_trips_exactly_and_chain_verifies() {
    let dir = TempDir::new("rt");
    let (path, mut w) = new_writer(dir.path(), "channel-1.jsonl", 8192);
    w.event("channel.start", fields(&[("kind", "shell".into())]))
        .unwrap();
    let mut expect_o = Vec::new();
    let mut expect_i = Vec::new();
    // A multi-byte character split across two reads, invalid bytes, control bytes, big chunks.
    let chunks: Vec<(Stream, Vec<u8>)> = vec![
        (Stream::Output, b"hello \xe2\x82".to_vec()),
        (Stream::Output, b"\xac world\r\n".to_vec()),
        (Stream::Input, b"ls -l\r".to_vec()),
        (Stream::Output, b"\xff\xfe binary \x00\x01".to_vec()),
        (
            Stream::Output,
            "\u{1b}[1;31mred\u{1b}[0m \"quoted\" back\\slash €😀\n"
                .repeat(400)
                .into_bytes(),
        ),
        (Stream::Output, (0..=255u8).cycle().take(50_000).collect()),
        (Stream::Input, "é".repeat(5000).into_bytes()),
    ];
    for (i, (s, data)) in chunks.iter().enumerate() {
        w.io(*s, i as u64 * 1000, data).unwrap();
        match s {
            Stream::Output => expect_o.extend_from_slice(data),
            _ => expect_i.extend_from_slice(data),
        }
    }
    w.event("channel.end", fields(&[("exit_status", 0.into())]))
        .unwrap();
    let anchor = w.close().unwrap();
    let report = verify_file(&path).unwrap();
    assert!(report.ok, "{:?}", report.problems);
    assert_eq!(report.last_type, "channel.end");
    assert_eq!(report.last_seq, anchor.seq);
    assert_eq!(report.last_digest, anchor.digest);
    let (got, lens) = streams(&path);
    assert_eq!(got["o"], expect_o);
    assert_eq!(got["i"], expect_i);
    assert!(lens.iter().all(|&l| l <= 8192), "{lens:?}");
    // The euro sign split across two reads was joined into one text frame.
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"o\":\"hello € world"), "{}", &text[..600]);
}

#[test]
fn every_line_has_the_header() {
    let dir = TempDir::new("hdr");
    let (path, mut w) = new_writer(dir.path(), "channel-2.jsonl", 8192);
    w.io(Stream::Output, 5, b"x").unwrap();
    w.event(
        "resize",
        fields(&[("cols", 80.into()), ("rows", 24.into())]),
    )
    .unwrap();
    drop(w);
    for line in reader::lines(&path).unwrap() {
        let line = line.unwrap();
        for key in [
            "v", "type", "seq", "time", "host", "session", "file", "user", "actor", "prev",
        ] {
            assert!(
                line.value.contains_key(key),
                "line {} lacks {key}",
                line.line_no
            );
        }
        assert_eq!(line.u64("v"), Some(2));
        assert_eq!(line.str("file"), Some("channel-2.jsonl"));
        assert!(sessrec_core::time::Timestamp::parse(line.str("time").unwrap()).is_some());
    }
}

#[test]
fn oversize_event_fields_are_cut_and_marked() {
    let dir = TempDir::new("big");
    let (path, mut w) = new_writer(dir.path(), "channel-1.jsonl", 8192);
    let command = "x".repeat(100_000);
    w.event(
        "channel.start",
        fields(&[
            ("command", command.clone().into()),
            ("term", "xterm".into()),
        ]),
    )
    .unwrap();
    drop(w);
    let lines = reader::read_file(&path).unwrap();
    let line = lines[0].as_ref().unwrap();
    assert!(line.raw.len() <= 8192);
    assert_eq!(line.u64("command_truncated"), Some(100_000));
    assert!(line.str("command").unwrap().len() > 7000);
    assert_eq!(line.str("term"), Some("xterm"));
}

#[test]
fn tampering_is_detected() {
    let dir = TempDir::new("tamper");
    let (path, mut w) = new_writer(dir.path(), "channel-1.jsonl", 1024);
    for i in 0..10u64 {
        w.event("notice", fields(&[("n", i.into())])).unwrap();
    }
    drop(w);
    assert!(verify_file(&path).unwrap().ok);
    let original = fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = original.split_inclusive('\n').collect();

    let check = |content: String, expect_line: u64| {
        fs::write(&path, content).unwrap();
        let r = verify_file(&path).unwrap();
        assert!(!r.ok);
        assert!(
            r.problems.iter().any(|(n, _)| *n == expect_line),
            "{:?}",
            r.problems
        );
    };
    // Modified line 4: line 5's prev no longer matches.
    check(lines.concat().replacen("\"n\":3", "\"n\":33", 1), 5);
    // Removed line 4.
    let mut removed = lines.clone();
    removed.remove(3);
    check(removed.concat(), 4);
    // Swapped lines 6 and 7.
    let mut swapped = lines.clone();
    swapped.swap(5, 6);
    check(swapped.concat(), 6);
    // Truncated last line.
    let whole = lines.concat();
    check(whole[..whole.len() - 10].to_string(), 10);
    // Renamed file: the file field and genesis no longer match.
    fs::write(&path, &original).unwrap();
    let other = dir.join("channel-9.jsonl");
    fs::rename(&path, &other).unwrap();
    assert!(!verify_file(&other).unwrap().ok);
}

#[test]
fn flush_deadline_and_anchor() {
    let dir = TempDir::new("flush");
    let opts = WriterOptions {
        max_line_bytes: 8192,
        flush_interval: Duration::from_millis(50),
        anchor_interval: Duration::from_millis(0),
        ..Default::default()
    };
    let (path, mut w) = record_file(dir.path(), "channel-1.jsonl", opts, "alice@example.com");
    assert!(w.flush_deadline().is_none());
    let before = Instant::now();
    w.io(Stream::Output, 1, b"pending").unwrap();
    let deadline = w.flush_deadline().unwrap();
    assert!(deadline >= before + Duration::from_millis(50));
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        0,
        "I/O is batched until the deadline"
    );
    w.flush().unwrap();
    assert!(w.flush_deadline().is_none());
    assert_eq!(w.seq(), 1);
    let a = w.poll_anchor(Instant::now()).unwrap();
    assert_eq!(a.seq, 1);
    assert!(a.to_string().starts_with("sessrec anchor file="));
    assert!(
        w.poll_anchor(Instant::now()).is_none(),
        "no new lines, no new anchor"
    );
}

/// Unsubmitted typing waits for `typing_flush`; Enter brings the ordinary deadline, measured
/// from its arrival; a full line is still written at once.
#[test]
fn typing_waits_longer_until_it_is_submitted() {
    let dir = TempDir::new("typing-flush");
    let opts = WriterOptions {
        max_line_bytes: 1024,
        flush_interval: Duration::from_millis(1000),
        typing_flush: Duration::from_secs(10),
        ..Default::default()
    };
    let (path, mut w) = record_file(dir.path(), "channel-1.jsonl", opts, "alice@example.com");
    let before = Instant::now();
    w.io(Stream::Input, 1, b"l").unwrap();
    w.io(Stream::Output, 2, b"l").unwrap();
    w.io(Stream::Input, 3, b"s").unwrap();
    w.io(Stream::Output, 4, b"s").unwrap();
    let held = w.flush_deadline().unwrap();
    assert!(held >= before + Duration::from_secs(10), "{held:?}");
    let enter = Instant::now();
    w.io(Stream::Input, 5, b"\r").unwrap();
    let due = w.flush_deadline().unwrap();
    assert!(
        due >= enter + Duration::from_secs(1) && due < held,
        "{due:?}"
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), 0);
    w.flush().unwrap();
    assert!(w.flush_deadline().is_none());
    // Typing that fills a line is written without waiting.
    for i in 0..200u64 {
        w.io(Stream::Input, 10 + 2 * i, b"x").unwrap();
        w.io(Stream::Output, 11 + 2 * i, b"x").unwrap();
    }
    assert!(w.seq() >= 2, "lines written: {}", w.seq());
    drop(w);
    let r = verify_file(&path).unwrap();
    assert!(r.ok, "{:?}", r.problems);
    for line in reader::lines(&path).unwrap() {
        assert!(line.unwrap().raw.len() <= 1024);
    }
}

#[test]
fn resume_continues_the_chain_and_cuts_a_partial_line() {
    let dir = TempDir::new("resume");
    let (path, mut w) = new_writer(dir.path(), "session.jsonl", 8192);
    let c = w.context().clone();
    w.event("login", fields(&[("x", 1.into())])).unwrap();
    drop(w);
    // A crash left half a line.
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"{\"v\":1,\"type\":\"half")
        .unwrap();
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .open(&path)
        .unwrap();
    let mut w = RecordWriter::resume(file, c, WriterOptions::default()).unwrap();
    w.event("logout", Map::new()).unwrap();
    drop(w);
    let r = verify_file(&path).unwrap();
    assert!(r.ok, "{:?}", r.problems);
    assert_eq!(r.last_seq, 3);
    let kinds: Vec<String> = reader::lines(&path)
        .unwrap()
        .map(|l| l.unwrap().kind().to_string())
        .collect();
    assert_eq!(kinds, ["login", "error", "logout"]);
}

#[test]
fn full_disk_reports_space_low_and_final_lines_fit() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to mount a tmpfs");
        return;
    }
    let dir = TempDir::new("full");
    let mnt = dir.join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(status.success());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let (path, mut w) = new_writer(&mnt, "channel-1.jsonl", 8192);
    let chunk = vec![b'a'; 4000];
    let mut n = 0u64;
    while !w.space_low() {
        w.io(Stream::Output, n, &chunk).unwrap();
        n += 1;
        assert!(n < 10_000, "the disk never filled");
    }
    // The reserve still holds the final lines.
    w.event("error", fields(&[("error", "record disk full".into())]))
        .unwrap();
    w.event("channel.end", fields(&[("reason", "record-error".into())]))
        .unwrap();
    w.close().unwrap();
    let r = verify_file(&path).unwrap();
    assert!(r.ok, "{:?}", r.problems);
    assert_eq!(r.last_type, "channel.end");
}

/// Records written by schema 1 (frame lists, every header field on every line) stay readable
/// and verifiable: the fixture is a file the writer wrote before the compact I/O lines.
#[test]
fn schema_1_records_stay_readable_and_verifiable() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-1/channel-1.jsonl");
    let report = verify_file(&path).unwrap();
    assert!(report.ok, "{:?}", report.problems);
    assert_eq!(report.last_type, "channel.end");
    let (got, _) = streams(&path);
    let mut output = b"hello \xe2\x82\xac world\r\n\xff\xfe binary \x00\x01".to_vec();
    output.extend_from_slice(
        "total 0\r\n\x1b[1mbold\x1b[0m €😀\r\n"
            .repeat(40)
            .as_bytes(),
    );
    assert_eq!(got["o"], output);
    assert_eq!(got["i"], b"ls -l\rexit\r");
    let first = reader::lines(&path).unwrap().nth(1).unwrap().unwrap();
    assert_eq!(first.u64("v"), Some(1));
    assert_eq!(decode_frames(&first)[0].offset_us, 10);
}

/// A second of typing (five keys and their echo) costs one short line, not a frame list.
#[test]
fn a_second_of_typing_is_one_short_line() {
    let dir = TempDir::new("typing");
    let (path, mut w) = new_writer(dir.path(), "channel-1.jsonl", 8192);
    let start = 19_776_083_121u64;
    for (n, key) in b"ls -l".iter().enumerate() {
        let at = start + n as u64 * 200_094;
        w.io(Stream::Input, at, &[*key]).unwrap();
        w.io(Stream::Output, at + 31, &[*key]).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let lines = reader::read_file(&path).unwrap();
    assert_eq!(lines.len(), 1);
    let line = lines[0].as_ref().unwrap();
    // Schema 1 wrote 585 bytes for this (with host "bastion", user and actor as here).
    assert!(
        line.raw.len() < 400,
        "{}",
        String::from_utf8_lossy(&line.raw)
    );
    let frames = decode_frames(line);
    assert_eq!(frames.len(), 10);
    assert_eq!(frames[9].offset_us, start + 4 * 200_094 + 31);
    assert_eq!(frames[9].data, b"l");
    assert!(report_ok(&path));
}

fn report_ok(path: &Path) -> bool {
    let r = verify_file(path).unwrap();
    r.ok
}

/// Terminal text (lines ending in CR LF) costs at most 5 % over its own size at the default
/// 8 KiB lines: its line ends are stored folded instead of as four escaped bytes.
#[test]
fn terminal_text_costs_under_five_percent_at_8k_lines() {
    let dir = TempDir::new("text");
    let (path, mut w) = new_writer(dir.path(), "channel-1.jsonl", 8192);
    let mut sent = Vec::new();
    let row = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n";
    let mut read = Vec::new();
    for n in 0..4000u64 {
        read.extend_from_slice(row);
        if read.len() >= 4000 || n == 3999 {
            w.io(Stream::Output, n * 10, &read).unwrap();
            sent.extend_from_slice(&read);
            read.clear();
        }
    }
    w.close().unwrap();
    let size = fs::metadata(&path).unwrap().len() as f64;
    let ratio = size / sent.len() as f64;
    assert!(ratio <= 1.05, "{ratio}");
    let (got, lens) = streams(&path);
    assert_eq!(got["o"], sent);
    assert!(lens.iter().all(|&l| l <= 8192));
    assert!(report_ok(&path));
}

/// Reads in every form mixed in one line (text, folded text, base64, a character completed by
/// a later read) come back exactly, at their offsets.
#[test]
fn mixed_reads_come_back_at_their_offsets() {
    let dir = TempDir::new("mixed");
    let (path, mut w) = new_writer(dir.path(), "channel-1.jsonl", 1024);
    let reads: Vec<(Stream, u64, &[u8])> = vec![
        (Stream::Output, 100, b"one\r\ntwo\r\n"),
        (Stream::Input, 150, b"x"),
        (Stream::Output, 160, b"\xff\x00bin"),
        (Stream::Output, 170, b"euro \xe2\x82"),
        (Stream::Input, 180, b"y"),
        (Stream::Output, 190, b"\xac done\n"),
        (Stream::Stderr, 200, b"err\r\n"),
    ];
    for (s, off, data) in &reads {
        w.io(*s, *off, data).unwrap();
    }
    w.close().unwrap();
    let mut frames = Vec::new();
    for line in reader::lines(&path).unwrap() {
        frames.extend(decode_frames(&line.unwrap()));
    }
    let got: Vec<(Stream, u64, Vec<u8>)> = frames
        .into_iter()
        .map(|f| (f.stream, f.offset_us, f.data))
        .collect();
    assert_eq!(
        got,
        vec![
            (Stream::Output, 100, b"one\r\ntwo\r\n".to_vec()),
            (Stream::Input, 150, b"x".to_vec()),
            (Stream::Output, 160, b"\xff\x00bin".to_vec()),
            (Stream::Output, 170, b"euro ".to_vec()),
            (Stream::Input, 180, b"y".to_vec()),
            (Stream::Output, 170, "€ done\n".as_bytes().to_vec()),
            (Stream::Stderr, 200, b"err\r\n".to_vec()),
        ]
    );
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("\"o\":\"one\\ntwo\\neuro € done\\n\""),
        "{text}"
    );
    assert!(report_ok(&path));
}
