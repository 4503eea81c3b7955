//! Commands of any length written whole (`channel.start` + `command.part` lines) and read back
//! by the one reader function, at the exact line-size limits.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sessrec_core::command::{assemble, read_channel_command, Completeness, PART_TYPE};
use sessrec_core::reader;
use sessrec_core::record::Stream;
use sessrec_core::testing::{chained_lines, record_file, TempDir};
use sessrec_core::writer::{RecordWriter, WriterOptions};

fn writer(dir: &Path, name: &str, max_line_bytes: usize, actor: &str) -> (PathBuf, RecordWriter) {
    let opts = WriterOptions {
        max_line_bytes,
        ..Default::default()
    };
    record_file(dir, name, opts, actor)
}

fn start_fields(term: &str) -> Map<String, Value> {
    let mut f = Map::new();
    f.insert("kind".into(), "exec".into());
    f.insert("term".into(), term.into());
    f.insert("argv".into(), serde_json::json!(["a", "b"]));
    f
}

/// Writes `command` in a channel.start, then output; checks the chain, every line's size, that
/// the parts come right after the start, and that the reader gives back the exact bytes.
fn round_trip(max_line_bytes: usize, command: &[u8], actor: &str) -> Vec<reader::Line> {
    let dir = TempDir::new("longcmd");
    let (path, mut w) = writer(dir.path(), "channel-1.jsonl", max_line_bytes, actor);
    w.event_with_long_field("channel.start", start_fields("xterm"), "command", command)
        .unwrap();
    w.io(Stream::Output, 5, b"after").unwrap();
    w.close().unwrap();
    let lines = chained_lines(&path);
    for l in &lines {
        assert!(
            l.raw.len() <= max_line_bytes,
            "line {} has {} bytes, limit {max_line_bytes}",
            l.line_no,
            l.raw.len()
        );
    }
    let parts = lines[0].u64("command_parts").unwrap_or(0) as usize;
    assert!(lines[1..=parts].iter().all(|l| l.kind() == PART_TYPE));
    assert_eq!(lines[parts + 1].kind(), "io");
    assert_eq!(lines[0].u64("command_bytes"), Some(command.len() as u64));
    assert!(!lines[0].value.contains_key("command_truncated"));
    let got = read_channel_command(&path).unwrap().unwrap();
    assert!(got.is_whole(), "{:?}", got.completeness);
    assert!(got.bytes == command, "reassembled command differs");
    lines
}

#[test]
fn short_command_stays_on_the_start_line() {
    let lines = round_trip(8192, b"uname -a", "alice");
    assert_eq!(lines[0].str("command"), Some("uname -a"));
    assert!(!lines[0].value.contains_key("command_parts"));
    assert_eq!(lines[0].str("term"), Some("xterm"));
}

#[test]
fn padded_command_keeps_its_tail() {
    let mut c = vec![b' '; 9000];
    c.extend_from_slice(b"id >/tmp/unrec");
    let lines = round_trip(8192, &c, "alice");
    assert_eq!(lines[0].u64("command_parts"), Some(1));
    assert!(lines[1].str("u").unwrap().ends_with("id >/tmp/unrec"));
}

#[test]
fn kernel_sized_commands_of_every_kind_fit_small_lines() {
    let unicode = "é€😀 \"\\\t\x1b[31m ".repeat(128 * 1024 / 20);
    let mut raw: Vec<u8> = (0..=255u8).cycle().take(128 * 1024).collect();
    raw[0] = 0xff;
    let controls = vec![1u8; 20_000];
    for max in [1024usize, 1100, 4097, 8192] {
        for command in [unicode.as_bytes(), &raw[..], &controls[..]] {
            round_trip(max, command, "alice");
        }
    }
    // Base64 form for bytes that are not UTF-8.
    let lines = round_trip(1024, &raw, "alice");
    assert!(lines[0].value.contains_key("command_b64"));
    assert!(lines[1].value.contains_key("b"));
}

#[test]
fn every_room_size_near_the_limit() {
    // Every first-piece room from 0 to a few bytes, so cuts land on every position of a
    // multi-byte character or escape.
    for pad in 0..40 {
        let term = "t".repeat(pad);
        let dir = TempDir::new("room");
        let (path, mut w) = writer(dir.path(), "channel-1.jsonl", 1024, "alice");
        let command = "😀é\x01".repeat(300);
        w.event_with_long_field(
            "channel.start",
            start_fields(&term),
            "command",
            command.as_bytes(),
        )
        .unwrap();
        w.close().unwrap();
        let got = read_channel_command(&path).unwrap().unwrap();
        assert_eq!(got.bytes, command.as_bytes());
        for l in reader::read_file(&path).unwrap() {
            assert!(l.unwrap().raw.len() <= 1024);
        }
    }
}

#[test]
fn other_fields_are_cut_before_the_command() {
    let dir = TempDir::new("crowded");
    let (path, mut w) = writer(dir.path(), "channel-1.jsonl", 1024, "alice");
    let term = "\x01".repeat(2000);
    let command = "c".repeat(3000);
    w.event_with_long_field(
        "channel.start",
        start_fields(&term),
        "command",
        command.as_bytes(),
    )
    .unwrap();
    w.close().unwrap();
    let lines = reader::read_file(&path).unwrap();
    let start = lines[0].as_ref().unwrap();
    assert!(start.raw.len() <= 1024);
    assert!(start.value.contains_key("term_truncated"), "{start:?}");
    let got = read_channel_command(&path).unwrap().unwrap();
    assert_eq!(got.bytes, command.as_bytes());
}

#[test]
fn a_missing_part_is_reported() {
    let dir = TempDir::new("gap");
    let (path, mut w) = writer(dir.path(), "channel-1.jsonl", 1024, "alice");
    let command = "x".repeat(5000);
    w.event_with_long_field("channel.start", Map::new(), "command", command.as_bytes())
        .unwrap();
    w.close().unwrap();
    let lines: Vec<Map<String, Value>> = reader::read_file(&path)
        .unwrap()
        .into_iter()
        .map(|l| l.unwrap().value)
        .collect();
    let mut following: Vec<&Map<String, Value>> = lines[1..].iter().collect();
    following.remove(2);
    let got = assemble(&lines[0], following).unwrap();
    assert_eq!(
        got.completeness,
        Completeness::PartsMissing {
            expected_bytes: 5000
        }
    );
    assert!(got.bytes.len() < 5000);
}
