//! `sessrec compress` and reading compressed sessions: every command reads a compressed
//! session as it read the plain one, open and recently changed sessions are refused, and an
//! edit inside a compressed file is caught by `verify`. Records are written by the real record
//! writer (the synthetic generator), on a bastion tree and a central one.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use sessrec_core::id::SessionId;
use sessrec_core::testing::synth::{id_at, shift_times, SynthSession};
use sessrec_core::testing::TempDir;

mod support;
use support::sessrec;

const DAY_MS: u64 = 86_400_000;

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn now_ms() -> u64 {
    (sessrec_core::time::Timestamp::now().as_micros() / 1000) as u64
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// Sets every file's modification time in `dir` to `age` ago (as for files written then).
fn age_files(dir: &Path, age: Duration) {
    let t = SystemTime::now() - age;
    for e in fs::read_dir(dir).unwrap().flatten() {
        fs::File::options()
            .write(true)
            .open(e.path())
            .unwrap()
            .set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
            .unwrap();
    }
}

/// A session recorded `days_ago`, typing a command and printing many lines of output;
/// closed unless `open`. Returns its id and directory.
fn session(root: &Path, days_ago: u64, word: &str, open: bool) -> (SessionId, PathBuf) {
    let millis = now_ms() - days_ago * DAY_MS;
    let id = id_at(millis).unwrap();
    let mut s = SynthSession::login(root, id, "srt-ops", "ops@example.com", "203.0.113.9").unwrap();
    let mut ch = s.channel("shell", "pty", None).unwrap();
    let mut t = 100_000;
    ch.typed(&mut t, "$ ", &format!("echo {word}"), &format!("{word}\n"))
        .unwrap();
    for i in 0..300 {
        t += 1000;
        ch.output(
            t,
            format!("/usr/share/doc/pkg-{i}/changelog.gz\r\n").as_bytes(),
        )
        .unwrap();
    }
    let dir = if open {
        ch.flush().unwrap();
        drop(ch);
        s.abandon().unwrap()
    } else {
        s.finished(ch, 0).unwrap();
        s.logout().unwrap()
    };
    shift_times(&dir, -((days_ago * DAY_MS) as i64) * 1000).unwrap();
    age_files(&dir, Duration::from_millis(days_ago * DAY_MS));
    (id, dir)
}

/// What each reading command prints for a session.
fn views(root: &Path, id: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for args in [
        vec!["show", id],
        vec!["show", id, "--json"],
        vec!["play", id, "--speed", "1000"],
        vec!["export", id, "--format", "asciicast-v2"],
        vec!["export", id, "--format", "json"],
        vec!["export", id, "--format", "text"],
        vec!["search", "--fixed-strings", "pkg-299", "--json"],
        vec!["verify", id, "--json"],
    ] {
        let o = sessrec(root, &args);
        assert!(o.status.success(), "{args:?}: {o:?}");
        out.push((args.join(" "), text(&o)));
    }
    out
}

fn gzip(args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("gzip")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip(1)");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{o:?}");
    o.stdout
}

#[test]
fn a_compressed_session_reads_like_the_plain_one() {
    let t = TempDir::new("compress");
    let root = t.join("records");
    let (old, old_dir) = session(&root, 3, "compress-me", false);
    let (open, open_dir) = session(&root, 3, "still-open", true);
    let (young, young_dir) = session(&root, 0, "too-young", false);
    let (old, open, young) = (old.to_string(), open.to_string(), young.to_string());
    let before = views(&root, &old);

    let o = sessrec(&root, &["compress", "--older-than", "1d", "--dry-run"]);
    assert!(o.status.success(), "{o:?}");
    assert!(text(&o).contains(&format!("would compress {old}")), "{o:?}");
    assert_eq!(files_in(&old_dir), ["channel-1.jsonl", "session.jsonl"]);

    let o = sessrec(&root, &["compress", "--older-than", "1d"]);
    assert!(o.status.success(), "{o:?}");
    let out = text(&o);
    assert!(
        out.contains(&format!("compressed {old}: 2 files, ")),
        "{out}"
    );
    assert!(out.contains(&format!("skip   {open} (")), "{out}");
    assert!(!out.contains(&young), "{out}");
    assert_eq!(
        files_in(&old_dir),
        ["channel-1.jsonl.gz", "session.jsonl.gz"]
    );
    assert_eq!(files_in(&open_dir), ["channel-1.jsonl", "session.jsonl"]);
    assert_eq!(files_in(&young_dir), ["channel-1.jsonl", "session.jsonl"]);
    // The content is the same bytes: gzip(1) gives them back.
    let plain = gzip(
        &["-dc"],
        &fs::read(old_dir.join("channel-1.jsonl.gz")).unwrap(),
    );
    assert!(String::from_utf8_lossy(&plain).contains("pkg-299"));

    // Every view reads it as before.
    let after = views(&root, &old);
    for ((cmd, b), (_, a)) in before.iter().zip(&after) {
        // verify names each file where it is stored.
        let a = a.replace(".jsonl.gz\"", ".jsonl\"");
        assert_eq!(&a, b, "`sessrec {cmd}` differs once compressed");
    }
    let listed = text(&sessrec(&root, &["list", "--json"]));
    let row = listed
        .lines()
        .find(|l| l.contains(&old))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(row.contains("\"state\":\"closed\""), "{row}");
    assert!(row.contains("\"ok\":true"), "{row}");

    // The compression is in the access log.
    let o = sessrec(&root, &["compress", "--older-than", "1d"]);
    assert!(text(&o).contains("1 already compressed"), "{o:?}");
    let access = root.join(sessrec_core::access_log::ACCESS_DIR);
    let logged: String = walk(&access)
        .iter()
        .map(|p| fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert!(logged.contains("compress-done"), "{logged}");
    assert!(logged.contains(&old), "{logged}");

    // A line changed inside the compressed file (and the file recompressed) is caught.
    let gz = old_dir.join("channel-1.jsonl.gz");
    let edited = String::from_utf8(gzip(&["-dc"], &fs::read(&gz).unwrap()))
        .unwrap()
        .replacen("pkg-17/", "pkg-71/", 1);
    fs::write(&gz, gzip(&["-c"], edited.as_bytes())).unwrap();
    let o = sessrec(&root, &["verify", &old]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(text(&o).contains("channel-1.jsonl"), "{o:?}");
    // And bytes damaged in the compressed stream are not silence either.
    let mut bytes = fs::read(&gz).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&gz, &bytes).unwrap();
    let o = sessrec(&root, &["verify", &old]);
    assert_ne!(o.status.code(), Some(0), "{o:?}");
}

#[test]
fn a_central_tree_is_compressed_per_host_and_an_interrupted_run_finishes() {
    let t = TempDir::new("compress-central");
    let stage = t.join("stage");
    let central = t.join("central");
    let (id, dir) = session(&stage, 2, "on-b1", false);
    let target = central.join("b1.example.net").join(id.to_string());
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    fs::rename(&dir, &target).unwrap();
    // Rewritten as the receiver would have filed it: the session names bastion.test as host.
    let target2 = central.join("bastion.test").join(id.to_string());
    fs::create_dir_all(target2.parent().unwrap()).unwrap();
    fs::rename(&target, &target2).unwrap();
    // A run stopped after the rename of one file: both copies of session.jsonl exist.
    let plain = target2.join("session.jsonl");
    fs::write(
        target2.join("session.jsonl.gz"),
        gzip(&["-c"], &fs::read(&plain).unwrap()),
    )
    .unwrap();
    age_files(&target2, Duration::from_millis(2 * DAY_MS));
    let before = text(&sessrec(&central, &["show", &id.to_string()]));
    let o = sessrec(
        &central,
        &["--host", "bastion.*", "compress", "--older-than", "1d"],
    );
    assert!(o.status.success(), "{o:?}");
    assert!(
        text(&o).contains(&format!("compressed bastion.test/{id}")),
        "{o:?}"
    );
    assert_eq!(
        files_in(&target2),
        ["channel-1.jsonl.gz", "session.jsonl.gz"]
    );
    assert_eq!(text(&sessrec(&central, &["show", &id.to_string()])), before);
    let o = sessrec(&central, &["verify", "--all"]);
    assert!(o.status.success(), "{o:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}
