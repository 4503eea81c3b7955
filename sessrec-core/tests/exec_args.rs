//! The arguments of an `exec` line of audit.jsonl are written whole, in either form, and read
//! back exactly: a 20 KiB argument, newlines, escape sequences and bytes that are not UTF-8.

use sessrec_core::command::Completeness;
use sessrec_core::exec_args::{self, ExecArgs};
use sessrec_core::schema::{Exec, Line};
use sessrec_core::testing::{chained_lines, record_file, TempDir};
use sessrec_core::writer::WriterOptions;

fn round_trip(args: &[Vec<u8>]) -> (usize, ExecArgs, Exec) {
    let dir = TempDir::new("execargs");
    let (path, mut w) = record_file(dir.path(), "audit.jsonl", WriterOptions::default(), "alice");
    let event = Exec {
        pid: Some(42),
        exe: Some("/usr/bin/printf".into()),
        ..Default::default()
    };
    exec_args::write(&mut w, event, args).unwrap();
    w.close().unwrap();
    let lines = chained_lines(&path);
    for l in &lines {
        assert!(serde_json::to_vec(&l.value).unwrap().len() < 8192);
    }
    let first = &lines[0].value;
    let following: Vec<_> = lines[1..].iter().map(|l| l.value.clone()).collect();
    let read = exec_args::read(first, &following).unwrap();
    let typed = match Line::from_map(first.clone()).event {
        sessrec_core::schema::Event::Exec(e) => e,
        other => panic!("{other:?}"),
    };
    (lines.len(), read, typed)
}

#[test]
fn short_text_arguments_are_a_list() {
    let args = vec![b"ls".to_vec(), b"-l".to_vec(), b"a\nb\x1b[31m".to_vec()];
    let (n, read, typed) = round_trip(&args);
    assert_eq!(n, 1);
    assert_eq!(read.args, args);
    assert_eq!(typed.argc, Some(3));
    assert!(typed.argv.is_some());
}

#[test]
fn a_20_kib_argument_is_whole_across_parts() {
    let big: Vec<u8> = (0..20 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let args = vec![b"echo".to_vec(), big, b"tail".to_vec()];
    let (n, read, typed) = round_trip(&args);
    assert!(n >= 3, "{n} lines");
    assert_eq!(read.args, args);
    assert_eq!(read.completeness, Completeness::Whole);
    assert!(typed.argv.is_none());
    assert_eq!(typed.argc, Some(3));
}

#[test]
fn invalid_utf8_is_kept_exactly() {
    let args = vec![b"printf".to_vec(), b"\xff\xfe\n\x1b]52;c;x\x07".to_vec()];
    let (n, read, typed) = round_trip(&args);
    assert_eq!(n, 1);
    assert_eq!(read.args, args);
    assert!(typed.argv.is_none());
    assert!(typed.extra.contains_key("cmdline_b64"));
}
