//! The importer on a captured auditd log (retimed to now) against a record tree with one
//! audited login: execs and connects land on the session and channel, in a chained file, and
//! every event is written exactly once across reruns, appends and a crash between writing
//! and saving the state. No root needed.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use audit_import::import::{Importer, Options, AUDIT_FILE};
use sessrec_core::exec_args;
use sessrec_core::id::SessionId;
use sessrec_core::reader::{self, verify_file};
use sessrec_core::record::FileContext;
use sessrec_core::schema::{ChannelStart, Event, Line, Login};
use sessrec_core::testing::TempDir;
use sessrec_core::tree::SessionDir;
use sessrec_core::writer::{RecordWriter, WriterOptions};

const FIXTURE: &str = include_str!("fixtures/enriched.log");
/// The seconds of the fixture's event ids.
const FIXTURE_SECS: &str = "179666892";

/// The fixture with its times moved to `secs` (keeping their order) and its serials moved by
/// `serial_shift`, so that a second copy is new events.
fn retimed(secs: u64, serial_shift: u64) -> String {
    let base = secs / 10;
    let mut out = String::new();
    for line in FIXTURE.lines() {
        let line = line.replace(&format!("audit({FIXTURE_SECS}"), &format!("audit({base}"));
        let line = match line.split_once("):") {
            Some((head, tail)) => {
                let (time, serial) = head.rsplit_once(':').unwrap();
                let serial: u64 = serial.parse().unwrap();
                format!("{time}:{}):{tail}", serial + serial_shift)
            }
            None => line,
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn session(record_dir: &Path, ses: u32, shell_pid: i32) -> (SessionId, PathBuf) {
    let id = SessionId::new().unwrap();
    let dir = SessionDir::create(record_dir, id, None).unwrap();
    let ctx = |file: &str| FileContext {
        host: "bastion".into(),
        session: id,
        file: file.into(),
        user: "srt-u".into(),
        actor: "alice@example.com".into(),
    };
    let mut w = RecordWriter::new(
        dir.create_file("session.jsonl").unwrap(),
        ctx("session.jsonl"),
        WriterOptions::default(),
    )
    .unwrap();
    w.write(&Login {
        audit_session: Some(ses),
        loginuid: Some(4242),
        boot_id: sessrec_core::sys::boot_id(),
        ..Default::default()
    })
    .unwrap();
    w.close().unwrap();
    let (_, file) = dir.create_channel_file().unwrap();
    let mut w = RecordWriter::new(file, ctx("channel-1.jsonl"), WriterOptions::default()).unwrap();
    w.write(&ChannelStart {
        kind: Some("exec".into()),
        pid: Some(shell_pid),
        ..Default::default()
    })
    .unwrap();
    w.close().unwrap();
    (id, dir.path().to_path_buf())
}

fn options(dir: &Path) -> Options {
    Options {
        record_dir: dir.join("records"),
        log_file: dir.join("audit.log"),
        state_file: dir.join("state/audit-import.state"),
        writer: WriterOptions::default(),
        read_gid: None,
        live: false,
        hold: Duration::ZERO,
        check_lost: false,
        syslog_anchors: false,
        follow_closes: false,
    }
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn lines(path: &Path) -> Vec<Line> {
    assert!(verify_file(path).unwrap().ok, "chain of {}", path.display());
    reader::read_file(path)
        .unwrap()
        .into_iter()
        .map(|l| Line::from_map(l.unwrap().value))
        .collect()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn execs_and_connects_land_on_the_session_and_channel_exactly_once() {
    let tmp = TempDir::new("auditimport");
    let opts = options(tmp.path());
    let (_, sdir) = session(&opts.record_dir, 13, 29925);
    // Another login's audit session gets nothing of it.
    let (_, other) = session(&opts.record_dir, 14, 1);
    // Times a little after the logins.
    let secs = now_secs() + 20;
    append(&opts.log_file, &retimed(secs, 0));
    let summary = Importer::new(opts.clone()).unwrap().pass(true).unwrap();
    assert_eq!(summary.execs_written, 5, "{summary:?}");
    assert_eq!(summary.connects_written, 1);
    let file = sdir.join(AUDIT_FILE);
    let got = lines(&file);
    assert!(!other.join(AUDIT_FILE).exists());
    let execs: Vec<_> = got
        .iter()
        .filter_map(|l| match &l.event {
            Event::Exec(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    let sh = &execs[0];
    assert_eq!(sh.pid, Some(29925));
    assert_eq!(sh.channel.as_deref(), Some("channel-1.jsonl"));
    let echo = execs
        .iter()
        .find(|e| e.comm.as_deref() == Some("echo"))
        .unwrap();
    assert_eq!(echo.channel_via, Some(29925));
    assert_eq!(echo.argv.as_deref().unwrap()[1], "a b");
    assert_eq!(echo.root, Some(true));
    assert_eq!(echo.auid, Some(4242));
    let failed = execs.iter().find(|e| e.success == Some(false)).unwrap();
    assert_eq!(failed.errno.as_deref(), Some("ENOENT"));
    assert_eq!(failed.path.as_deref(), Some("/nonexistent"));
    let python = got
        .iter()
        .find(|l| matches!(&l.event, Event::Exec(e) if e.comm.as_deref() == Some("python3")))
        .unwrap();
    let args = exec_args::read(&python.event.to_fields(), []).unwrap();
    assert!(args.args[2].contains(&b'\n'));
    let connect = got
        .iter()
        .find_map(|l| match &l.event {
            Event::Connect(c) => Some(c.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (
            connect.address.as_deref(),
            connect.port,
            connect.result.as_deref()
        ),
        (Some("127.0.0.1"), Some(9), Some("in_progress"))
    );
    assert_eq!(connect.channel.as_deref(), Some("channel-1.jsonl"));
    assert!(got
        .iter()
        .all(|l| l.header.actor.as_deref() == Some("alice@example.com")));

    // A rerun writes nothing again; new events after it are written once.
    let again = Importer::new(opts.clone()).unwrap().pass(true).unwrap();
    assert_eq!(again.execs_written + again.connects_written, 0, "{again:?}");
    let before = fs::read(&file).unwrap();
    let state_before = fs::read(&opts.state_file).unwrap();
    append(&opts.log_file, &retimed(secs + 5, 1000));
    let more = Importer::new(opts.clone()).unwrap().pass(true).unwrap();
    assert_eq!(more.execs_written, 5);
    let after = fs::read(&file).unwrap();
    assert_eq!(lines(&file).len(), got.len() * 2);

    // A crash after the lines were written but before the state was saved: the next run
    // cuts the file back and writes the same lines again, once.
    fs::write(&opts.state_file, &state_before).unwrap();
    let redo = Importer::new(opts.clone()).unwrap().pass(true).unwrap();
    assert_eq!(redo.execs_written, 5, "{redo:?}");
    assert_eq!(fs::read(&file).unwrap().len(), after.len());
    assert!(fs::read(&file).unwrap().starts_with(&before));
    assert_eq!(lines(&file).len(), got.len() * 2);
}

#[test]
fn a_rotated_away_log_is_a_gap_in_open_sessions() {
    let tmp = TempDir::new("auditrotate");
    let opts = options(tmp.path());
    let (_, sdir) = session(&opts.record_dir, 13, 29925);
    let secs = now_secs() + 20;
    let text = retimed(secs, 0);
    let (first, second) = text.split_at(text.len() / 2);
    let cut = first.rfind('\n').unwrap() + 1;
    append(&opts.log_file, &text[..cut]);
    Importer::new(opts.clone()).unwrap().pass(true).unwrap();
    let _ = second;
    // auditd rotates twice before the next run, and num_logs dropped the file it was in.
    let mut rotated = opts.log_file.as_os_str().to_owned();
    rotated.push(".1");
    fs::remove_file(&opts.log_file).unwrap();
    append(Path::new(&rotated), &retimed(secs + 30, 2000));
    append(&opts.log_file, &retimed(secs + 40, 3000));
    let s = Importer::new(opts.clone()).unwrap().pass(true).unwrap();
    assert_eq!(s.gaps_written, 1, "{s:?}");
    assert_eq!(s.execs_written, 10, "both newer files are read: {s:?}");
    let gap = lines(&sdir.join(AUDIT_FILE))
        .into_iter()
        .find_map(|l| match l.event {
            Event::AuditGap(g) => Some(g),
            _ => None,
        })
        .unwrap();
    assert_eq!(gap.reason.as_deref(), Some("rotated_away"));
}

#[test]
fn a_restart_while_an_event_is_open_skips_what_was_written_after_it() {
    let tmp = TempDir::new("auditrestart");
    let opts = Options {
        live: true,
        ..options(tmp.path())
    };
    let (_, sdir) = session(&opts.record_dir, 13, 29925);
    let secs = now_secs() + 20;
    // An event whose closing record has not come yet, before complete ones: the saved position
    // stays at its start.
    append(
        &opts.log_file,
        &format!(
            "type=CONFIG_CHANGE msg=audit({secs}.000:1): op=add_rule key=\"x\" list=4 res=1\n"
        ),
    );
    append(&opts.log_file, &retimed(secs, 0));
    let first = Importer::new(opts.clone()).unwrap().pass(false).unwrap();
    assert_eq!(first.execs_written, 5, "{first:?}");
    // The importer is restarted: the log is read again from that event on.
    let second = Importer::new(opts.clone()).unwrap().pass(true).unwrap();
    assert_eq!(second.execs_written, 0, "{second:?}");
    assert!(second.already_written >= 5);
    let execs = lines(&sdir.join(AUDIT_FILE))
        .iter()
        .filter(|l| matches!(l.event, Event::Exec(_)))
        .count();
    assert_eq!(execs, 5);
}

#[test]
fn auditd_stopping_and_starting_again_is_a_gap_in_open_sessions() {
    let tmp = TempDir::new("auditdaemon");
    let opts = options(tmp.path());
    let (_, sdir) = session(&opts.record_dir, 13, 29925);
    let (_, closed) = session(&opts.record_dir, 14, 1);
    let secs = now_secs() + 20;
    append(&opts.log_file, &retimed(secs, 0));
    append(
        &opts.log_file,
        &format!(
            "type=DAEMON_END msg=audit({}.100:9001): op=terminate auid=0 uid=0 ses=4294967295 pid=1 res=success\n\
             type=DAEMON_START msg=audit({}.200:9002): op=start ver=3.0.9 format=enriched kernel=6 auid=4294967295 pid=2 uid=0 ses=4294967295 res=success\n",
            secs + 1,
            secs + 9
        ),
    );
    let s = Importer::new(opts.clone()).unwrap().pass(true).unwrap();
    assert!(s.gaps_written >= 1, "{s:?}");
    let gap = lines(&sdir.join(AUDIT_FILE))
        .into_iter()
        .find_map(|l| match l.event {
            Event::AuditGap(g) => Some(g),
            _ => None,
        })
        .unwrap();
    assert_eq!(gap.reason.as_deref(), Some("daemon_end"));
    assert!(gap.from.unwrap() < gap.to.unwrap());
    // Every session open then gets it, also one with no exec of its own.
    assert!(lines(&closed.join(AUDIT_FILE))
        .iter()
        .any(|l| matches!(l.event, Event::AuditGap(_))));
}

#[test]
fn a_first_run_that_stopped_before_saving_is_written_again_once() {
    let tmp = TempDir::new("auditfirst");
    let opts = options(tmp.path());
    let (_, sdir) = session(&opts.record_dir, 13, 29925);
    append(&opts.log_file, &retimed(now_secs() + 20, 0));
    Importer::new(opts.clone()).unwrap().pass(true).unwrap();
    let file = sdir.join(AUDIT_FILE);
    let whole = fs::read(&file).unwrap();
    // The state as the first run saved it before writing: its start, no files.
    let mut state = audit_import::state::State::load(&opts.state_file).unwrap();
    state.files.clear();
    state.done_after.clear();
    state.tree = Default::default();
    state.position.as_mut().unwrap().offset = 0;
    state.save(&opts.state_file).unwrap();
    let again = Importer::new(opts.clone()).unwrap().pass(true).unwrap();
    assert_eq!(again.execs_written, 5, "{again:?}");
    assert_eq!(fs::read(&file).unwrap().len(), whole.len(), "written once");
    assert_eq!(lines(&file).len(), 6);
}
