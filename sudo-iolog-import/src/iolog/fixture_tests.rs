//! Replays of real sudo 1.9.13 I/O logs (fixtures/sudo-1.9.13, generated with sudo under a pty;
//! see fixtures/README.md) and of damaged copies of them.
#![forbid(unsafe_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::session::{Decoded, IologSession, ReplayOutcome, SessionError};
use super::stream::StreamKind;
use super::MetaSource;

/// A private copy of a fixture; `complete` sets the timing file's mode the way sudo does.
pub(crate) struct Fixture {
    pub dir: PathBuf,
}

impl Fixture {
    pub fn new(name: &str, complete: bool) -> Fixture {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/sudo-1.9.13")
            .join(name);
        let dir = std::env::temp_dir().join(format!(
            "srt-fixture-{}-{}-{}",
            std::process::id(),
            name,
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for entry in fs::read_dir(&src).unwrap() {
            let entry = entry.unwrap();
            fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        let mode = if complete { 0o400 } else { 0o600 };
        fs::set_permissions(dir.join("timing"), fs::Permissions::from_mode(mode)).unwrap();
        Fixture { dir }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[derive(Debug, Default)]
struct Collected {
    streams: [Vec<u8>; 5],
    resizes: Vec<(u64, u32, u32)>,
    suspends: Vec<(u64, String)>,
    io_times: Vec<u64>,
}

fn replay(dir: &Path) -> Result<(IologSession, Collected, ReplayOutcome), SessionError> {
    let session = IologSession::open(dir)?;
    let mut got = Collected::default();
    let outcome = session.replay(&mut |d| {
        match d {
            Decoded::Io {
                at_ns,
                stream,
                data,
            } => {
                got.streams[stream.index()].extend_from_slice(data);
                got.io_times.push(at_ns);
            }
            Decoded::Winsize { at_ns, lines, cols } => got.resizes.push((at_ns, lines, cols)),
            Decoded::Suspend { at_ns, signal } => got.suspends.push((at_ns, signal.to_string())),
        }
        Ok(())
    })?;
    Ok((session, got, outcome))
}

fn tty_out(c: &Collected) -> String {
    String::from_utf8_lossy(&c.streams[StreamKind::TtyOut.index()]).into_owned()
}

#[test]
fn sudo_id() {
    let f = Fixture::new("id", true);
    let (s, got, out) = replay(&f.dir).unwrap();
    assert!(s.complete);
    assert_eq!(s.meta.source, MetaSource::LogJson);
    assert_eq!(s.meta.command, "/usr/bin/id");
    assert_eq!(s.meta.submituser, "srt-alice");
    assert_eq!(s.meta.ttyname.as_deref(), Some("/dev/pts/0"));
    assert_eq!(tty_out(&got), "uid=0(root) gid=0(root) groups=0(root)\r\n");
    assert_eq!(out.records, 1);
    assert_eq!(out.end_ns, 3_097_014);
    assert!(out.truncated.is_empty());
}

#[test]
fn sudo_i_with_typing_and_resize() {
    let f = Fixture::new("interactive", true);
    let (s, got, out) = replay(&f.dir).unwrap();
    assert_eq!(s.meta.runargv.as_deref().unwrap(), ["-bash"]);
    let typed = String::from_utf8_lossy(&got.streams[StreamKind::TtyIn.index()]).into_owned();
    assert_eq!(
        typed,
        "echo hello-root\nprintf 'a:b\\n'\nsleep 30\n\u{1a}fg\n\u{3}exit\n"
    );
    assert!(tty_out(&got).contains("hello-root\r\n"));
    assert!(tty_out(&got).contains("logout\r\n"));
    assert_eq!(got.resizes.len(), 1);
    let (at, lines, cols) = got.resizes[0];
    assert_eq!((lines, cols), (40, 100));
    // 0.174285034 + 0.854095710 + 0.000768795 + 0.002803304 + 0.502199305
    assert_eq!(at, 1_534_152_148);
    assert!(got.io_times.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(out.records, 24);
    assert_eq!(out.missing_bytes, [0; 5]);
}

#[test]
fn suspend_and_continue() {
    let f = Fixture::new("suspend", true);
    let (_, got, _) = replay(&f.dir).unwrap();
    let names: Vec<_> = got.suspends.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(names, ["TSTP", "CONT"]);
    assert!(got.suspends[1].0 > got.suspends[0].0);
}

#[test]
fn uncompressed_streams() {
    let f = Fixture::new("plain", true);
    let (_, got, _) = replay(&f.dir).unwrap();
    assert_eq!(tty_out(&got), "plain-out\r\n");
}

#[test]
fn iolog_flush_mid_session_is_read_and_marked_truncated() {
    let f = Fixture::new("midflush", false);
    let (s, got, out) = replay(&f.dir).unwrap();
    assert!(!s.complete);
    assert!(tty_out(&got).starts_with("line-1\r\nline-2\r\n"));
    assert!(out.truncated.contains(&"timing"), "{:?}", out.truncated);
}

#[test]
fn arguments_with_colons_and_newlines_in_both_metadata_files() {
    let f = Fixture::new("argv", true);
    let (s, got, _) = replay(&f.dir).unwrap();
    assert_eq!(
        s.meta.runargv.as_deref().unwrap(),
        ["printf", "%s|%s\\n", "x:y z", "new\nline"]
    );
    assert_eq!(
        s.meta.env_var("SESSREC_SESSION"),
        Some(("runenv", "0190b8a0-0000-7000-8000-000000000001"))
    );
    assert_eq!(tty_out(&got), "x:y z|new\r\nline\r\n");
    fs::remove_file(f.dir.join("log.json")).unwrap();
    let (s, _, _) = replay(&f.dir).unwrap();
    assert_eq!(s.meta.source, MetaSource::LegacyLog);
    assert_eq!(s.meta.command, "/usr/bin/printf %s|%s\\n x:y z new\nline");
    assert_eq!(s.meta.submituser, "srt-alice");
    assert_eq!(s.meta.start.seconds, 1796397752);
}

#[test]
fn broken_log_json_falls_back_to_log_with_a_warning() {
    let f = Fixture::new("id", true);
    fs::write(f.dir.join("log.json"), b"{\"timestamp\": ").unwrap();
    let s = IologSession::open(&f.dir).unwrap();
    assert_eq!(s.meta.source, MetaSource::LegacyLog);
    assert!(s.meta_warning.unwrap().contains("log.json"));
    fs::remove_file(f.dir.join("log")).unwrap();
    assert!(matches!(
        IologSession::open(&f.dir),
        Err(SessionError::Meta(_))
    ));
}

#[test]
fn truncated_gzip_stream_keeps_the_prefix() {
    let f = Fixture::new("interactive", true);
    let full = fs::read(f.dir.join("ttyout")).unwrap();
    fs::write(f.dir.join("ttyout"), &full[..full.len() / 2]).unwrap();
    let (_, got, out) = replay(&f.dir).unwrap();
    assert!(out.truncated.contains(&"ttyout"));
    assert!(out.missing_bytes[StreamKind::TtyOut.index()] > 0);
    assert!(tty_out(&got).starts_with("\u{1b}[?2004hroot@vm:~# echo hello-root"));
    // Input is unaffected.
    assert_eq!(got.streams[StreamKind::TtyIn.index()].len(), 50);
}

#[test]
fn garbage_timing_line_is_an_error_naming_the_line() {
    let f = Fixture::new("id", true);
    fs::set_permissions(f.dir.join("timing"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(f.dir.join("timing"), b"4 0.1 10\n4 zero 3\n").unwrap();
    fs::set_permissions(f.dir.join("timing"), fs::Permissions::from_mode(0o400)).unwrap();
    let err = replay(&f.dir).unwrap_err();
    assert_eq!(err.to_string(), "timing line 2: bad delay \"zero\"");
}

#[test]
fn partial_last_timing_line_of_a_running_session_is_truncation() {
    let f = Fixture::new("plain", false);
    fs::write(f.dir.join("timing"), b"4 0.1 5\n4 0.0").unwrap();
    let (_, got, out) = replay(&f.dir).unwrap();
    assert_eq!(tty_out(&got), "plain");
    assert_eq!(out.truncated, ["timing"]);
}

#[test]
fn missing_stream_and_symlinked_stream_are_errors() {
    let f = Fixture::new("id", true);
    fs::remove_file(f.dir.join("ttyout")).unwrap();
    let err = replay(&f.dir).unwrap_err();
    assert!(matches!(
        err,
        SessionError::MissingStream(StreamKind::TtyOut)
    ));
    std::os::unix::fs::symlink("/etc/shadow", f.dir.join("ttyout")).unwrap();
    let err = replay(&f.dir).unwrap_err();
    assert!(err.to_string().contains("symlink"), "{err}");
}
