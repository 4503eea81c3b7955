//! Imports real sudo 1.9.13 I/O logs (fixtures/) into a scratch record tree and checks the
//! records: placement, match method, content, chain, masking, exactly-once.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use serde_json::{json, Value};
use sessrec_core::reader::{decode_frames, read_file, verify_file, Line};
use sessrec_core::record::Stream;
use sessrec_core::testing::TempDir;
use sessrec_core::writer::WriterOptions;
use sudo_iolog_import::import::ImportOptions;
use sudo_iolog_import::run::{run_pass, PassOptions, Summary};

/// Start of the `id` fixture (log.json timestamp), µs.
const FIXTURE_DAY_US: i64 = 1_796_397_700_000_000;

/// A temporary tree with an `iolog/` of fixtures, `records/` and `state/`.
struct Scratch {
    base: TempDir,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let base = TempDir::new(&format!("import-{name}"));
        fs::create_dir_all(base.join("iolog")).unwrap();
        Scratch { base }
    }
    fn iolog(&self) -> PathBuf {
        self.base.join("iolog")
    }
    fn records(&self) -> PathBuf {
        self.base.join("records")
    }
    /// Copies a fixture to iolog/<rel>, marking it complete or running.
    fn add(&self, fixture: &str, rel: &str, complete: bool) -> PathBuf {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/sudo-1.9.13")
            .join(fixture);
        let dst = self.iolog().join(rel);
        fs::create_dir_all(&dst).unwrap();
        for e in fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
        set_complete(&dst, complete);
        dst
    }
    fn options(&self, settle: Duration) -> PassOptions {
        PassOptions {
            iolog_dirs: vec![self.iolog()],
            state_file: self.base.join("state/sudo-import.state"),
            settle,
            import: ImportOptions {
                record_dir: self.records(),
                read_gid: None,
                writer: WriterOptions::default(),
                password_prompt: Regex::new("[Pp]assword[: ]*$").unwrap(),
                host: "bastion".into(),
                max_session_bytes: 1 << 30,
            },
            syslog_anchors: false,
            live: false,
        }
    }
    fn pass(&self) -> Summary {
        run_pass(&self.options(Duration::from_secs(600)), &mut |_, _, _| {}).unwrap()
    }
}

fn set_complete(dir: &Path, complete: bool) {
    let mode = if complete { 0o400 } else { 0o600 };
    fs::set_permissions(dir.join("timing"), fs::Permissions::from_mode(mode)).unwrap();
}

fn ts(us: i64) -> String {
    sessrec_core::time::Timestamp::from_micros(us).to_string()
}

/// A UUIDv7 whose timestamp is `ms`.
fn session_id(ms: i64, tail: u64) -> String {
    format!("{:08x}-{:04x}-7000-8000-{tail:012x}", ms >> 16, ms & 0xffff)
}

/// Writes a login session as the PAM module and recorder would: session.jsonl with login (and
/// logout), channel-N.jsonl with channel.start carrying the pty (and channel.end).
fn add_login(
    records: &Path,
    id: &str,
    user: &str,
    login_us: i64,
    logout_us: Option<i64>,
    channels: &[(&str, i64, Option<i64>)],
) -> PathBuf {
    let (y, m, d) = sessrec_core::time::Timestamp::from_micros(login_us).date();
    let dir = records.join(format!("{y:04}/{m:02}/{d:02}/{id}"));
    fs::create_dir_all(&dir).unwrap();
    let line = |kind: &str, at: i64, file: &str, extra: Value| {
        let mut v = json!({"v":1,"type":kind,"seq":1,"time":ts(at),"host":"bastion","session":id,
            "file":file,"user":user,"actor":"alice@example.com"});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        format!("{v}\n")
    };
    let mut s = line(
        "login",
        login_us,
        "session.jsonl",
        json!({"src_ip":"203.0.113.7"}),
    );
    if let Some(out) = logout_us {
        s += &line("logout", out, "session.jsonl", json!({}));
    }
    fs::write(dir.join("session.jsonl"), s).unwrap();
    for (n, (pty, start, end)) in channels.iter().enumerate() {
        let file = format!("channel-{}.jsonl", n + 1);
        let mut c = line(
            "channel.start",
            *start,
            &file,
            json!({"kind":"shell","mode":"pty","pty":pty,"pid":4242}),
        );
        c += &line("io", start + 10, &file, json!({"frames":[]}));
        if let Some(end) = end {
            c += &line("channel.end", *end, &file, json!({"exit":0}));
        }
        fs::write(dir.join(&file), c).unwrap();
    }
    dir
}

fn lines(path: &Path) -> Vec<Line> {
    read_file(path)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

fn stream_text(lines: &[Line], stream: Stream) -> String {
    let mut out = Vec::new();
    for l in lines.iter().filter(|l| l.kind() == "io") {
        for f in decode_frames(l) {
            if f.stream == stream {
                out.extend_from_slice(&f.data);
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The files in `dir` and in its subdirectories: a login session's directory holds its sudo
/// records itself, a day of `unattributed/` holds one session directory per record.
fn day_records(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            out.push(path);
        }
    }
    out
}

fn only_record(dir: &Path) -> PathBuf {
    let files: Vec<_> = day_records(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("sudo-")
        })
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn tty_match_content_chain_and_exactly_once() {
    let s = Scratch::new("tty");
    s.add("id", "00/00/01", true);
    let login = FIXTURE_DAY_US - 3_600_000_000;
    let id = session_id(login / 1000, 1);
    // An earlier channel had the same pty and ended: pty numbers are reused.
    let dir = add_login(
        &s.records(),
        &id,
        "srt-alice",
        login,
        None,
        &[
            ("/dev/pts/0", login + 1_000_000, Some(login + 2_000_000)),
            ("/dev/pts/0", login + 5_000_000, None),
        ],
    );
    // Another user on the same pty number at the same time must not match.
    add_login(
        &s.records(),
        &session_id(login / 1000, 2),
        "srt-bob",
        login,
        None,
        &[("/dev/pts/0", login + 6_000_000, None)],
    );
    let sum = s.pass();
    assert_eq!(
        (sum.found, sum.imported, sum.errors.len()),
        (1, 1, 0),
        "{sum:?}"
    );
    assert_eq!(sum.by_method.get("tty"), Some(&1));
    let rec = only_record(&dir);
    let report = verify_file(&rec).unwrap();
    assert!(report.ok, "{:?}", report.problems);
    let l = lines(&rec);
    assert_eq!(l.first().unwrap().kind(), "sudo.start");
    let start = &l[0];
    assert_eq!(start.str("match"), Some("tty"));
    assert_eq!(start.str("channel"), Some("channel-2.jsonl"));
    assert_eq!(start.str("command"), Some("/usr/bin/id"));
    assert_eq!(start.str("runuser"), Some("root"));
    assert_eq!(start.str("tty"), Some("/dev/pts/0"));
    assert_eq!(start.str("session"), Some(id.as_str()));
    assert_eq!(start.str("actor"), Some("alice@example.com"));
    assert_eq!(start.str("user"), Some("srt-alice"));
    assert_eq!(start.str("at"), Some("2026-12-04T15:22:27.680830Z"));
    assert_eq!(
        stream_text(&l, Stream::Output),
        "uid=0(root) gid=0(root) groups=0(root)\r\n"
    );
    let frame_off = decode_frames(&l[1])[0].offset_us;
    assert_eq!(frame_off, 3097);
    let end = l.last().unwrap();
    assert_eq!(end.kind(), "sudo.end");
    assert_eq!(end.value["complete"], json!(true));
    assert_eq!(end.u64("bytes_out"), Some(40));

    // A second run imports nothing.
    let again = s.pass();
    assert_eq!((again.imported, again.already_imported), (0, 1));
    // Losing the state (a crash before it was saved) does not duplicate the record.
    fs::remove_file(s.base.join("state/sudo-import.state")).unwrap();
    let after_crash = s.pass();
    assert_eq!((after_crash.imported, after_crash.recovered), (0, 1));
    assert_eq!(only_record(&dir), rec);
    // Nothing but the record file was added to the session directory.
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 4);
}

#[test]
fn sessrec_session_variable_is_a_hint_and_the_facts_decide() {
    let s = Scratch::new("env");
    let login = FIXTURE_DAY_US - 600_000_000;
    let good = session_id(login / 1000, 7);
    let dir = add_login(
        &s.records(),
        &good,
        "srt-alice",
        login,
        Some(FIXTURE_DAY_US + 3_600_000_000),
        &[(
            "/dev/pts/0",
            login + 1_000_000,
            Some(FIXTURE_DAY_US + 3_000_000_000),
        )],
    );
    let argv = s.add("argv", "00/00/04", false);
    let text = fs::read_to_string(argv.join("log.json")).unwrap();
    fs::write(
        argv.join("log.json"),
        text.replace("0190b8a0-0000-7000-8000-000000000001", &good),
    )
    .unwrap();
    set_complete(&argv, true);

    // A claim naming another user's session is not followed: the tty decides.
    let bob = session_id(login / 1000, 8);
    add_login(
        &s.records(),
        &bob,
        "srt-bob",
        login,
        None,
        &[("/dev/pts/0", login, None)],
    );
    let forged = s.add("id", "00/00/05", false);
    let text = fs::read_to_string(forged.join("log.json")).unwrap();
    fs::write(
        forged.join("log.json"),
        text.replace(
            "\"runenv\": [",
            &format!("\"runenv\": [\n        \"SESSREC_SESSION={bob}\","),
        ),
    )
    .unwrap();
    set_complete(&forged, true);

    let sum = s.pass();
    assert_eq!(sum.imported, 2, "{sum:?}");
    let mut starts: Vec<Line> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("sudo-")
        })
        .map(|p| lines(&p).remove(0))
        .collect();
    starts.sort_by_key(|l| l.str("command").unwrap().to_string());
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[0].str("command"), Some("/usr/bin/id"));
    assert_eq!(starts[0].str("match"), Some("tty"));
    assert_eq!(starts[0].str("match_hint"), Some("disagreed"));
    let notes = starts[0].value["match_notes"].to_string();
    assert!(
        notes.contains(&bob) && notes.contains("not followed"),
        "{notes}"
    );
    // A hint naming the session the tty ties it to agreed with the facts.
    assert_eq!(starts[1].str("command"), Some("/usr/bin/printf"));
    assert_eq!(starts[1].str("match"), Some("tty"));
    assert_eq!(starts[1].str("match_hint"), Some("agreed"));
    assert_eq!(
        starts[1].value["argv"],
        json!(["printf", "%s|%s\\n", "x:y z", "new\nline"])
    );
}

#[test]
fn unattributed_masking_incomplete_and_errors() {
    let s = Scratch::new("misc");
    s.add("read-prompt", "00/00/06", true);
    s.add("interactive", "alice/session-a", true);
    let running = s.add("midflush", "00/00/09", false);
    let broken = s.add("plain", "00/00/08", true);
    fs::remove_file(broken.join("ttyout")).unwrap();

    let sum = s.pass();
    assert_eq!((sum.found, sum.imported, sum.pending), (4, 2, 1), "{sum:?}");
    assert_eq!(sum.by_method.get("none"), Some(&2));
    assert_eq!(sum.errors.len(), 1);
    assert_eq!(sum.errors[0].path, broken);
    assert!(sum.errors[0].error.contains("ttyout"), "{:?}", sum.errors);

    let day = s.records().join("unattributed/2026/12/04");
    let mut prompt_record = None;
    for p in day_records(&day) {
        assert!(verify_file(&p).unwrap().ok, "{p:?}");
        let l = lines(&p);
        if l[0].str("command") == Some("/usr/bin/bash") && l[0].value["argv"][0] == "bash" {
            prompt_record = Some(l);
        }
    }
    let l = prompt_record.expect("the read-prompt session was imported");
    let raw: Vec<u8> = l.iter().flat_map(|x| x.raw.clone()).collect();
    assert!(!String::from_utf8_lossy(&raw).contains("s3cret"));
    let masked: Vec<&Line> = l.iter().filter(|x| x.kind() == "input.masked").collect();
    assert_eq!(masked.len(), 2, "typed password and its echo");
    assert_eq!(masked[0].u64("bytes"), Some(6));
    assert_eq!(masked[0].str("s"), Some("i"));
    assert_eq!(masked[1].str("s"), Some("o"));
    assert_eq!(stream_text(&l, Stream::Input), "\n");
    assert!(stream_text(&l, Stream::Output).starts_with("Password: \r\ngot-6"));

    // The running session is imported, marked incomplete, once it has settled.
    let mut opts = s.options(Duration::ZERO);
    opts.settle = Duration::ZERO;
    let sum = run_pass(&opts, &mut |_, _, _| {}).unwrap();
    assert_eq!((sum.imported, sum.imported_incomplete), (1, 1), "{sum:?}");
    let rec = s.records().join(&sum.records[0]);
    let l = lines(&rec);
    let end = l.last().unwrap();
    assert_eq!(end.value["incomplete"], json!(true));
    assert_eq!(end.value["truncated"], json!(["timing"]));
    assert!(stream_text(&l, Stream::Output).starts_with("line-1\r\n"));
    assert!(running.exists());
}

#[test]
fn wrapped_sequence_number_is_imported_again() {
    let s = Scratch::new("wrap");
    let dir = s.add("id", "00/00/01", true);
    assert_eq!(s.pass().imported, 1);
    // maxseq wrapped: sudo reuses 00/00/01 for a new session.
    fs::remove_dir_all(&dir).unwrap();
    let dir = s.add("plain", "00/00/01", true);
    assert!(dir.ends_with("00/00/01"));
    let sum = s.pass();
    assert_eq!((sum.imported, sum.already_imported), (1, 0), "{sum:?}");
    assert_eq!(
        day_records(&s.records().join("unattributed/2026/12/04")).len(),
        2
    );
}

#[test]
fn follow_imports_a_running_session_incrementally() {
    let s = Scratch::new("live");
    let dir = s.add("plain", "00/00/01", false);
    let write = |name: &str, data: &[u8]| fs::write(dir.join(name), data).unwrap();
    write("timing", b"4 0.100000000 5\n");
    write("ttyout", b"hello");
    let mut opts = s.options(Duration::from_secs(600));
    opts.live = true;
    let pass = |opts: &PassOptions| run_pass(opts, &mut |_, _, _| {}).unwrap();

    let sum = pass(&opts);
    assert_eq!((sum.live, sum.imported, sum.pending), (1, 0, 0), "{sum:?}");
    let day = s.records().join("unattributed/2026/12/04");
    let rec = only_record(&day);
    assert!(verify_file(&rec).unwrap().ok);
    let l = lines(&rec);
    assert_eq!(l[0].kind(), "sudo.start");
    assert_eq!(stream_text(&l, Stream::Output), "hello");
    assert!(l.iter().all(|x| x.kind() != "sudo.end"));

    // More output, and a timing line sudo has only half written.
    write("timing", b"4 0.100000000 5\n4 0.200000000 6\n4 0.1");
    write("ttyout", b"hello world!!!");
    let sum = pass(&opts);
    assert_eq!(sum.live, 1, "{sum:?}");
    assert_eq!(stream_text(&lines(&rec), Stream::Output), "hello world");

    // A pass that died mid-line leaves a partial line: it is cut off, not duplicated.
    let mut f = fs::OpenOptions::new().append(true).open(&rec).unwrap();
    std::io::Write::write_all(&mut f, b"{\"v\":1,\"type\":\"io\",\"seq\":99").unwrap();
    drop(f);

    // sudo finishes.
    write(
        "timing",
        b"4 0.100000000 5\n4 0.200000000 6\n4 0.100000000 3\n",
    );
    set_complete(&dir, true);
    let sum = pass(&opts);
    assert_eq!((sum.imported, sum.live), (1, 0), "{sum:?}");
    assert_eq!(only_record(&day), rec);
    let report = verify_file(&rec).unwrap();
    assert!(report.ok, "{:?}", report.problems);
    let l = lines(&rec);
    assert_eq!(stream_text(&l, Stream::Output), "hello world!!!");
    let seqs: Vec<u64> = l.iter().map(|x| x.seq().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let end = l.last().unwrap();
    assert_eq!(end.kind(), "sudo.end");
    assert_eq!(end.value["complete"], json!(true));
    assert_eq!(end.u64("bytes_out"), Some(14));
    assert_eq!(end.u64("off"), Some(400_000));

    let sum = pass(&opts);
    assert_eq!((sum.imported, sum.live, sum.already_imported), (0, 0, 1));
}

#[test]
fn follow_reads_a_flushed_gzip_stream_of_a_running_sudo() {
    let s = Scratch::new("live-gz");
    s.add("midflush", "00/00/01", false);
    let mut opts = s.options(Duration::from_secs(600));
    opts.live = true;
    let sum = run_pass(&opts, &mut |_, _, _| {}).unwrap();
    assert_eq!(sum.live, 1, "{sum:?}");
    let rec = only_record(&s.records().join("unattributed/2026/12/04"));
    let out = stream_text(&lines(&rec), Stream::Output);
    assert!(out.starts_with("line-1\r\nline-2\r\n"), "{out:?}");
}
