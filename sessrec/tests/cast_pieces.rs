//! Pieces of a long channel's cast (what the web console's player fetches): the byte where a
//! moment starts is found by bisecting the record on its own times, and a piece built from a
//! byte range holds exactly the events of the lines in it, at their times in the whole channel.

use sessrec::records::session_record_files;
use sessrec::store::Tree;
use sessrec_core::testing::synth::{id_at, SynthSession};
use sessrec_core::testing::TempDir;

/// A shell channel with one output line every 10 ms for 40 s (a few MB of record).
fn long_channel(records: &std::path::Path) -> String {
    let id = id_at(1_764_000_000_000).unwrap();
    let mut s = SynthSession::login(records, id, "srt-long", "srt-long", "203.0.113.9").unwrap();
    let mut ch = s.channel("shell", "pty", None).unwrap();
    for i in 0..4000u64 {
        let line = format!("line {i:05} {}\r\n", "x".repeat(600));
        ch.output(i * 10_000, line.as_bytes()).unwrap();
        // One frame per line, so every line of the record has its own time.
        ch.flush().unwrap();
    }
    s.finished(ch, 0).unwrap();
    s.logout().unwrap();
    id.to_string()
}

#[test]
fn a_moment_is_found_by_bisection_and_a_piece_keeps_its_times() {
    let records = TempDir::new("cast-pieces");
    let id = long_channel(records.path());
    let session = Tree::new(records.path()).resolve(&id).unwrap();
    let file = session_record_files(&session)
        .unwrap()
        .into_iter()
        .find(|f| f.name == "channel-1.jsonl")
        .unwrap();
    let len = std::fs::metadata(&file.path).unwrap().len();
    assert!(len > 2_000_000, "{len}");

    // 25.005 s: the first line at or after it is line 2501's, and the line before it is earlier.
    let at = file.byte_at_offset(25_005_000).unwrap();
    let (off, start) = file.offset_at(at).unwrap().unwrap();
    assert_eq!(start, at);
    assert_eq!(off, 25_010_000);
    let before: Vec<u64> = file
        .items_in(at.saturating_sub(2000), at)
        .unwrap()
        .filter_map(|i| match i {
            sessrec::records::Item::Frame { off_us, .. } => Some(off_us),
            _ => None,
        })
        .collect();
    assert_eq!(before.last(), Some(&25_000_000), "{before:?}");
    // Before the first line with I/O, and past the end.
    assert!(file.byte_at_offset(0).unwrap() < 2000);
    assert_eq!(file.byte_at_offset(3_600_000_000).unwrap(), len);

    // A piece from that byte to 100 KB on: its events are the lines' own, at their times.
    let mut events = Vec::new();
    sessrec::cast::build_cast_piece(&session, &file, at, at + 100_000, |e| {
        events.push(e.clone());
        Ok(())
    })
    .unwrap();
    assert!(events.len() > 100, "{}", events.len());
    assert_eq!(events[0][0], 25.01, "{}", events[0]);
    assert!(
        events[0][2].as_str().unwrap().starts_with("line 02501 "),
        "{}",
        events[0]
    );
    // Consecutive pieces meet without a gap or an overlap.
    let (_, next) = file.offset_at(at + 100_000).unwrap().unwrap();
    let mut following = Vec::new();
    sessrec::cast::build_cast_piece(&session, &file, next, next + 100_000, |e| {
        following.push(e.clone());
        Ok(())
    })
    .unwrap();
    let last = events.last().unwrap()[2].as_str().unwrap()[5..10]
        .parse::<u32>()
        .unwrap();
    let first = following[0][2].as_str().unwrap()[5..10]
        .parse::<u32>()
        .unwrap();
    assert_eq!(first, last + 1);
}
