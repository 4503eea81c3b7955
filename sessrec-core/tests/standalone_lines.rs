//! The contract for shipped lines: every line stands alone in a SIEM. Whatever a line carries
//! (an event, I/O frames, the close), it names its schema version, session, file, sequence
//! number, UTC time, host, unix user and actor, so a single line found in a log pipeline says
//! whose session it belongs to without the file's other lines.

use serde_json::{Map, Value};
use sessrec_core::reader;
use sessrec_core::record::Stream;
use sessrec_core::testing::{record_file, TempDir};
use sessrec_core::writer::WriterOptions;

const STANDALONE: [&str; 8] = [
    "v", "session", "file", "seq", "time", "host", "user", "actor",
];

#[test]
fn every_line_names_its_session_file_seq_time_host_user_and_actor() {
    let dir = TempDir::new("standalone");
    let (path, mut w) = record_file(
        dir.path(),
        "channel-1.jsonl",
        WriterOptions::default(),
        "alice@example.com",
    );
    let mut start = Map::new();
    start.insert("kind".into(), "shell".into());
    w.event("channel.start", start).unwrap();
    w.io(Stream::Output, 10, b"$ ").unwrap();
    w.io(Stream::Input, 20, b"ls\r").unwrap();
    w.io(Stream::Output, 30, b"ls\r\nfile\r\n$ ").unwrap();
    w.io(Stream::Output, 40, &[0xff, 0x00, 0x1b]).unwrap();
    let mut end = Map::new();
    end.insert("exit_status".into(), 0.into());
    w.event("channel.end", end).unwrap();
    w.close().unwrap();

    let mut seen_io = false;
    for line in reader::lines(&path).unwrap() {
        let line = line.unwrap();
        let text = String::from_utf8(line.raw.clone()).unwrap();
        let value: Value = serde_json::from_str(text.trim_end()).unwrap();
        let object = value.as_object().expect("a line is one JSON object");
        seen_io |= object.get("type").and_then(Value::as_str) == Some("io");
        for field in STANDALONE {
            let present = object.get(field).is_some_and(|v| !v.is_null());
            assert!(present, "line lacks `{field}`: {text}");
        }
        assert_eq!(object["actor"], "alice@example.com", "{text}");
    }
    assert!(seen_io, "the record has I/O lines");
}
