//! Unsubmitted typing waits for the typing deadline; a submitted line, command output and
//! output posing as echo reach the file by the ordinary flush deadline (see
//! `sessrec_core::flush_policy`). Real pty, real recorder, the file read as it grows.
//!
//! Each drive finds out what it checks, then lets the command end, and only then asserts: a
//! failed check must be reported, not leave the relay waiting for a command that never ends.

use std::path::Path;
use std::time::{Duration, Instant};

use super::*;

const FLUSH: Duration = Duration::from_millis(100);
/// A typing deadline longer than any wait below: what reaches the file was not released by it.
const LONG_HOLD: Duration = Duration::from_secs(60);
/// How long to poll for what the ordinary deadline writes (generous: the machine may be busy).
const WAIT: Duration = Duration::from_secs(20);

fn options(typing_flush: Duration) -> WriterOptions {
    WriterOptions {
        flush_interval: FLUSH,
        typing_flush,
        ..WriterOptions::default()
    }
}

/// The bytes of `stream` in the record file as it is now.
fn in_file(path: &Path, stream: Stream) -> Vec<u8> {
    let mut out = Vec::new();
    let lines = sessrec_core::reader::read_file(path).unwrap();
    for line in lines.into_iter().flatten() {
        for frame in sessrec_core::reader::decode_frames(&line) {
            if frame.stream == stream {
                out.extend(frame.data);
            }
        }
    }
    out
}

/// Whether `stream` in the record comes to hold `needle` within `WAIT`.
fn reaches_file(path: &Path, stream: Stream, needle: &[u8]) -> bool {
    let until = Instant::now() + WAIT;
    while Instant::now() < until {
        if contains(&in_file(path, stream), needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Lets many ordinary flush deadlines pass: whatever they would write is in the file after.
fn let_flush_deadlines_pass() {
    std::thread::sleep(FLUSH * 8);
}

/// Types `keys` and waits for their echo (or ten seconds).
fn type_and_see(master: &OwnedFd, keys: &[u8]) {
    sys::write(master, keys).unwrap();
    read_until(master, keys);
}

/// Waits for the program's `ready` on the terminal and then in the file: output no key
/// caused is due by the ordinary deadline, and keys typed before it is written would share
/// its line.
fn wait_ready(master: &OwnedFd, path: &Path) -> bool {
    read_until(master, b"ready");
    reaches_file(path, Stream::Output, b"ready")
}

#[test]
fn pty_unsubmitted_typing_waits_for_the_typing_deadline_and_is_written_by_it() {
    let hold = Duration::from_secs(3);
    let mut rig = PtyRig::new("read a; echo got:$a");
    rig.options = options(hold);
    let (outcome, recorded, _) = rig.run_driven(|master, path| {
        let typed_at = Instant::now();
        type_and_see(master, b"abc");
        let_flush_deadlines_pass();
        let held = in_file(path, Stream::Input);
        // Only meaningful while the typing deadline is ahead (a stalled machine may pass it).
        let deadline_ahead = typed_at.elapsed() < hold;
        let written = reaches_file(path, Stream::Input, b"abc");
        sys::write(master, b"\n").unwrap();
        if deadline_ahead {
            assert!(!contains(&held, b"abc"), "typing not held: {held:?}");
        }
        assert!(written, "the typing deadline did not write the keys");
    });
    assert_eq!(outcome.status, Some(ExitStatus::Code(0)));
    assert_eq!(recorded.input, b"abc\n");
}

#[test]
fn pty_enter_brings_the_typed_line_and_its_output_by_the_flush_deadline() {
    let mut rig = PtyRig::new("read a; echo got:$a; read b");
    rig.options = options(LONG_HOLD);
    let (outcome, recorded, _) = rig.run_driven(|master, path| {
        type_and_see(master, b"abc");
        let_flush_deadlines_pass();
        let held = in_file(path, Stream::Input);
        sys::write(master, b"\n").unwrap();
        read_until(master, b"got:abc");
        let line = reaches_file(path, Stream::Input, b"abc\n");
        let output = reaches_file(path, Stream::Output, b"got:abc");
        sys::write(master, b"end\n").unwrap();
        assert!(!contains(&held, b"abc"), "typing not held: {held:?}");
        assert!(line, "the submitted line waited for the typing deadline");
        assert!(
            output,
            "the command's output waited for the typing deadline"
        );
    });
    assert_eq!(outcome.status, Some(ExitStatus::Code(0)));
    assert_eq!(recorded.input, b"abc\nend\n");
}

#[test]
fn pty_bulk_output_is_not_held_with_the_typing_before_it() {
    let mut rig = PtyRig::new(
        "stty -icanon min 1 time 0; printf ready; \
         dd bs=1 count=2 2>/dev/null >/dev/null; seq 1 3000; read x",
    );
    rig.options = options(LONG_HOLD);
    let (outcome, recorded, _) = rig.run_driven(|master, path| {
        let ready = wait_ready(master, path);
        type_and_see(master, b"a");
        let_flush_deadlines_pass();
        let held = in_file(path, Stream::Input);
        // The second key lets the program print: no Enter, but output larger than an echo.
        sys::write(master, b"b").unwrap();
        read_until(master, b"3000");
        let output = reaches_file(path, Stream::Output, b"2999\r\n3000");
        let keys = reaches_file(path, Stream::Input, b"ab");
        sys::write(master, b"\n").unwrap();
        assert!(ready);
        assert!(!contains(&held, b"a"), "typing not held: {held:?}");
        assert!(output, "bulk output waited for the typing deadline");
        assert!(keys, "the keys before it waited for the typing deadline");
    });
    assert_eq!(outcome.status, Some(ExitStatus::Code(0)));
    assert_eq!(recorded.input, b"ab\n");
}

/// A program that answers one key with many tiny writes cannot pass them all off as its echo:
/// past a few reads per key the line is due by the ordinary deadline.
#[test]
fn pty_output_in_tiny_chunks_cannot_pass_as_echo() {
    let mut rig = PtyRig::new(
        "stty -icanon -echo min 1 time 0; printf ready; \
         dd bs=1 count=1 2>/dev/null >/dev/null; \
         i=0; while [ $i -lt 40 ]; do printf \"c$i;\"; i=$((i+1)); sleep 0.05; done; read x",
    );
    rig.options = options(LONG_HOLD);
    let (outcome, recorded, _) = rig.run_driven(|master, path| {
        let ready = wait_ready(master, path);
        sys::write(master, b"k").unwrap();
        read_until(master, b"c39;");
        let output = reaches_file(path, Stream::Output, b"c39;");
        sys::write(master, b"\n").unwrap();
        assert!(ready);
        assert!(output, "tiny chunks of output were held as echo");
    });
    assert_eq!(outcome.status, Some(ExitStatus::Code(0)));
    assert!(contains(&recorded.output, b"c0;c1;c2;"), "{recorded:?}");
}

/// Echo-sized output, one read per key, cannot hold more than a KiB in the pending line.
#[test]
fn pty_echo_held_with_typing_is_bounded_in_bytes() {
    let reply = "x".repeat(200);
    let mut rig = PtyRig::new(&format!(
        "stty -icanon -echo min 1 time 0; printf ready; \
         while :; do k=$(dd bs=1 count=1 2>/dev/null); [ \"$k\" = q ] && exit 0; \
         printf \"<${{k}}{reply}>\"; done"
    ));
    rig.options = options(LONG_HOLD);
    let (outcome, recorded, _) = rig.run_driven(|master, path| {
        let ready = wait_ready(master, path);
        for key in b"abcdef" {
            sys::write(master, &[*key]).unwrap();
            read_until(master, &[b'<', *key, b'x']);
        }
        // Six replies of 202 bytes: past the KiB, so the line is due.
        let output = reaches_file(path, Stream::Output, b"<fxxx");
        sys::write(master, b"q").unwrap();
        assert!(ready);
        assert!(output, "more than a KiB of output was held as echo");
    });
    assert_eq!(outcome.status, Some(ExitStatus::Code(0)));
    assert_eq!(recorded.input, b"abcdefq");
}
