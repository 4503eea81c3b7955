//! sessrec-shell on a real pty with its typing deadline (`[recorder] typing_flush_ms`): keys
//! typed without Enter wait for it, a submitted line and its output do not, and a hangup in
//! the middle of a line loses nothing typed.

mod recorder_support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use recorder_support::*;
use sessrec_tests::*;

const SHELL_CONFIG: &str = "min_free_mb = 1\n[recorder]\nshell = \"/bin/bash\"\n";
/// A short flush interval and a typing deadline longer than any wait here: what reaches the
/// record within the waits below was not released by the typing deadline.
const FAST_FLUSH_LONG_HOLD: &str = "flush_interval_ms = 100\ntyping_flush_ms = 60000\n";

/// Logs in and waits until the prompt after a first command is in the record, so that what is
/// typed next starts an I/O line of its own (output no key caused is due by the ordinary
/// deadline, and keys typed while it is pending would share its line).
fn settled_login(rig: &Rig) -> (PtySession, PathBuf) {
    let mut term = rig.login();
    term.expect("This session is recorded", WAIT);
    term.send_line("PS1='P> '; echo ready-$((1+1))");
    term.expect("ready-2", WAIT);
    let channel = rig.session_dir().join("channel-1.jsonl");
    wait_until("the prompt in the record", WAIT, || {
        let output = stream_text(&channel, Stream::Output);
        output.contains("ready-2") && output.ends_with("P> ")
    });
    (term, channel)
}

#[test]
fn typing_waits_for_enter_and_the_submitted_line_does_not() {
    require_e2e!();
    let rig = Rig::new("rec-tyen", &format!("{SHELL_CONFIG}{FAST_FLUSH_LONG_HOLD}"));
    let (mut term, channel) = settled_login(&rig);
    term.send("echo typed-");
    term.expect("echo typed-", WAIT);
    // Ten flush intervals: without the hold the keys would be in the record by now.
    std::thread::sleep(Duration::from_secs(1));
    let held = stream_text(&channel, Stream::Input);
    term.send("$((6*7))\r");
    term.expect("typed-42", WAIT);
    // Well within the typing deadline (60 s): only Enter can have released the line.
    wait_record_contains(&channel, Stream::Input, "echo typed-$((6*7))\r");
    wait_record_contains(&channel, Stream::Output, "typed-42");
    term.send_line("exit");
    term.wait_code(0, WAIT);
    assert!(!held.contains("echo typed-"), "typing not held: {held:?}");
    rig.finished_channel(1);
}

#[test]
fn typing_is_written_by_the_default_typing_deadline() {
    require_e2e!();
    // The defaults: flush_interval_ms = 1000, typing_flush_ms = 10000.
    let rig = Rig::new("rec-tydl", SHELL_CONFIG);
    let (mut term, channel) = settled_login(&rig);
    let typed_at = Instant::now();
    term.send("echo unsent");
    term.expect("echo unsent", WAIT);
    // Three flush intervals.
    std::thread::sleep(Duration::from_secs(3));
    let held = stream_text(&channel, Stream::Input);
    // Only meaningful while the typing deadline is ahead (a stalled machine may pass it).
    let deadline_ahead = typed_at.elapsed() < Duration::from_secs(10);
    // No Enter: only the typing deadline can write it.
    wait_record_contains(&channel, Stream::Input, "echo unsent");
    term.send("\r");
    term.send_line("exit");
    term.wait_code(0, WAIT);
    if deadline_ahead {
        assert!(!held.contains("echo unsent"), "typing not held: {held:?}");
    }
    rig.finished_channel(1);
}

#[test]
fn hangup_in_the_middle_of_a_typed_line_loses_nothing() {
    require_e2e!();
    let rig = Rig::new("rec-tyhu", &format!("{SHELL_CONFIG}{FAST_FLUSH_LONG_HOLD}"));
    let (mut term, channel) = settled_login(&rig);
    term.send("echo never-submitted");
    term.expect("echo never-submitted", WAIT);
    std::thread::sleep(Duration::from_secs(1));
    let held = stream_text(&channel, Stream::Input);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(term.pid() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .expect("SIGHUP to the recorder");
    term.wait(WAIT);
    let channel = rig.finished_channel(1);
    assert!(
        !held.contains("echo never-submitted"),
        "typing not held: {held:?}"
    );
    assert_eq!(event(&channel, "channel.end")["reason"], "hangup");
    let input = stream_text(&channel, Stream::Input);
    assert!(input.ends_with("echo never-submitted"), "{input:?}");
}
