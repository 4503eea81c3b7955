//! `search --fixed-strings` skips files that cannot hold the string without searching them
//! (`sessrec::prefilter`). Each case below is a string the search finds although it is not in
//! the stored bytes of its file — split across record lines, cut by an escape sequence,
//! JSON-escaped, with a line end folded, in base64, in a compressed file — so a shortcut that
//! looked for the string in the file's bytes would lose it. Each is checked to be absent from
//! the bytes, found by the fixed-string search, and found alike by the same search as a regex
//! (which takes no shortcut).

use std::path::{Path, PathBuf};

use sessrec_core::testing::synth::{id_at, SynthSession};
use sessrec_core::testing::TempDir;

mod support;
use support::sessrec;

/// One closed session whose shell channel gets `write`'s I/O; its channel file.
fn session(
    records: &Path,
    at_ms: u64,
    write: impl FnOnce(&mut sessrec_core::testing::synth::SynthChannel),
) -> PathBuf {
    let id = id_at(at_ms).unwrap();
    let mut s =
        SynthSession::login(records, id, "srt-alice", "alice@example.com", "203.0.113.7").unwrap();
    let mut ch = s.channel("shell", "pty", None).unwrap();
    write(&mut ch);
    s.finished(ch, 0).unwrap();
    let dir = s.logout().unwrap();
    dir.join("channel-1.jsonl")
}

/// The hits of a search, as printed, with the command's status.
fn hits(records: &Path, args: &[&str]) -> (Option<i32>, Vec<String>) {
    let o = sessrec(records, &[&["search"], args].concat());
    let out = String::from_utf8_lossy(&o.stdout);
    (o.status.code(), out.lines().map(str::to_string).collect())
}

/// The fixed-string search finds `needle` once in `file`, which does not hold it as stored,
/// and the regex search finds the same.
fn found_though_not_stored(records: &Path, file: &Path, needle: &str, extra: &[&str]) {
    let stored = std::fs::read(file).unwrap();
    assert!(
        memchr::memmem::find(&stored, needle.as_bytes()).is_none(),
        "{needle:?} is in the stored bytes of {}: not a case a byte search would miss",
        file.display()
    );
    let (code, fixed) = hits(records, &[extra, &["--fixed-strings", needle]].concat());
    assert_eq!(code, Some(0), "{needle:?} not found: {fixed:?}");
    assert_eq!(fixed.len(), 1, "{needle:?}: {fixed:?}");
    let (_, as_regex) = hits(records, &[extra, &[&regex::escape(needle)]].concat());
    assert_eq!(fixed, as_regex, "{needle:?}");
}

/// A record tree with one session whose shell channel gets `write`'s I/O.
fn one_session(
    tag: &str,
    write: impl FnOnce(&mut sessrec_core::testing::synth::SynthChannel),
) -> (TempDir, PathBuf, PathBuf) {
    let t = TempDir::new(tag);
    let records = t.join("records");
    let file = session(&records, 1_764_000_000_000, write); // 2025-11-24
    (t, records, file)
}

#[test]
fn a_string_across_two_record_lines_is_found() {
    let (_t, records, file) = one_session("fixed-lines", |ch| {
        ch.output(100, b"$ cat notes\r\nthe pass").unwrap();
        // A new record line between the two reads.
        ch.flush().unwrap();
        ch.output(200, b"word-across-lines is here\r\n").unwrap();
    });
    found_though_not_stored(&records, &file, "password-across-lines", &[]);
    // A prefix at a line's end that does not go on.
    let (code, none) = hits(&records, &["--fixed-strings", "password-elsewhere"]);
    assert_eq!((code, none.len()), (Some(1), 0), "{none:?}");
}

#[test]
fn a_string_cut_by_an_escape_sequence_is_found() {
    // The screen shows it whole; the record holds a colour change inside it.
    let (_t, records, file) = one_session("fixed-escape", |ch| {
        ch.output(100, b"xx colour\x1b[01;31m-cut-needle\x1b[0m yy\r\n")
            .unwrap();
    });
    found_though_not_stored(&records, &file, "colour-cut-needle", &[]);
    let (code, none) = hits(&records, &["--fixed-strings", "colour-cut-other"]);
    assert_eq!((code, none.len()), (Some(1), 0), "{none:?}");
}

#[test]
fn a_string_that_json_escaping_changes_is_found() {
    let (_t, records, file) = one_session("fixed-quotes", |ch| {
        ch.output(100, b"she said \"quoted needle\" twice\r\n")
            .unwrap();
    });
    found_though_not_stored(&records, &file, "\"quoted needle\"", &[]);
}

#[test]
fn a_string_with_a_folded_line_end_is_found() {
    // Searched as recorded (`--raw`): the record stores each `\r\n` as `\n`.
    let (_t, records, file) = one_session("fixed-folded", |ch| {
        ch.output(100, b"first-folded\r\nsecond-folded\r\nthird\r\n")
            .unwrap();
    });
    found_though_not_stored(&records, &file, "first-folded\r\nsecond", &["--raw"]);
}

#[test]
fn a_string_in_a_base64_read_is_found() {
    // A read that is not UTF-8 is stored in base64.
    let (_t, records, file) = one_session("fixed-base64", |ch| {
        ch.output(100, b"\xff\xfe in-base64-needle \xff\r\n")
            .unwrap();
    });
    found_though_not_stored(&records, &file, "in-base64-needle", &[]);
}

#[test]
fn a_string_in_a_compressed_file_is_found() {
    let (_t, records, file) = one_session("fixed-gz", |ch| {
        ch.output(100, b"inside a compressed-needle file\r\n")
            .unwrap();
    });
    sessrec_core::stored::compress_in_place(&file).unwrap();
    let file = sessrec_core::stored::compressed_path(&file);
    found_though_not_stored(&records, &file, "compressed-needle", &[]);
}

#[test]
fn typed_input_and_a_missing_string() {
    let (_t, records, _file) = one_session("fixed-typed", |ch| {
        let mut t = 100;
        ch.typed(&mut t, "$ ", "echo typed-needle", "typed-needle\n")
            .unwrap();
    });
    let (code, input) = hits(
        &records,
        &["--input", "--fixed-strings", "echo typed-needle"],
    );
    assert_eq!(code, Some(0), "{input:?}");
    assert_eq!(input.len(), 1, "{input:?}");
    let (code, none) = hits(&records, &["--fixed-strings", "nowhere-at-all"]);
    assert_eq!((code, none.len()), (Some(1), 0), "{none:?}");
}
