//! `sessrec play` on a real terminal (tmux): the filtered output is drawn, keys pause and quit;
//! `--follow` shows a channel as it is written; `doctor` reports on this host.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sessrec_core::testing::synth::{id_at, SynthSession};
use sessrec_core::testing::TempDir;

/// A scratch directory holding an empty `records/` tree, removed on drop.
fn scratch(tag: &str) -> TempDir {
    let t = TempDir::new(tag);
    std::fs::create_dir_all(t.join("records")).unwrap();
    t
}

fn tmux(args: &[&str]) -> std::process::Output {
    Command::new("tmux")
        .args(args)
        .output()
        .expect("tmux (apt-get install tmux)")
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn play_in_a_terminal_with_keys() {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var("SESSREC_E2E").as_deref() != Ok("required"),
            "tmux is not installed"
        );
        println!("skipped: tmux is not installed");
        return;
    }
    let t = scratch("play");
    let id = id_at(1_764_000_000_000).unwrap();
    let mut s =
        SynthSession::login(&t.join("records"), id, "srt-play", "srt-play", "192.0.2.4").unwrap();
    let mut ch = s.channel("shell", "pty", None).unwrap();
    ch.output(
        100_000,
        b"\x1b]0;fake-title\x07\x1b[1mfirst-frame-ok\x1b[0m\r\n",
    )
    .unwrap();
    // Long pauses: the replay is still in progress when the keys are sent.
    ch.output(20_000_000, b"second-frame\r\n").unwrap();
    ch.output(40_000_000, b"third-frame\r\n").unwrap();
    s.finished(ch, 0).unwrap();
    s.logout().unwrap();

    let name = format!("srt-play-{}", std::process::id());
    let cmd = format!(
        "{} --dir {} play {id}/1; echo play-exited-$?; sleep 30",
        env!("CARGO_BIN_EXE_sessrec"),
        t.join("records").display()
    );
    let o = tmux(&[
        "new-session",
        "-d",
        "-s",
        &name,
        "-x",
        "100",
        "-y",
        "30",
        &cmd,
    ]);
    assert!(o.status.success(), "{o:?}");
    let pane =
        || String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", &name]).stdout).into_owned();
    wait_for("the first frame", Duration::from_secs(10), || {
        pane().contains("first-frame-ok")
    });
    // Space pauses, `.` steps to the next frame at once (without waiting 20 s), q quits.
    tmux(&["send-keys", "-t", &name, " "]);
    std::thread::sleep(Duration::from_millis(300));
    tmux(&["send-keys", "-t", &name, "."]);
    wait_for("a step to the second frame", Duration::from_secs(5), || {
        pane().contains("second-frame")
    });
    assert!(!pane().contains("third-frame"));
    tmux(&["send-keys", "-t", &name, "q"]);
    wait_for("play to quit", Duration::from_secs(5), || {
        pane().contains("play-exited-0")
    });
    let title = String::from_utf8_lossy(
        &tmux(&["display-message", "-p", "-t", &name, "#{pane_title}"]).stdout,
    )
    .into_owned();
    assert!(
        !title.contains("fake-title"),
        "the recorded title must not reach the terminal: {title}"
    );
    tmux(&["kill-session", "-t", &name]);

    // --from: everything before the offset is drawn at once (the 20 s pause is skipped).
    let cmd = format!(
        "{} --dir {} play {id}/1 --from 30s; echo play-exited-$?; sleep 30",
        env!("CARGO_BIN_EXE_sessrec"),
        t.join("records").display()
    );
    let o = tmux(&[
        "new-session",
        "-d",
        "-s",
        &name,
        "-x",
        "100",
        "-y",
        "30",
        &cmd,
    ]);
    assert!(o.status.success(), "{o:?}");
    wait_for("output before the offset", Duration::from_secs(5), || {
        pane().contains("second-frame")
    });
    assert!(
        !pane().contains("third-frame"),
        "the frame after the offset waits its turn"
    );
    tmux(&["send-keys", "-t", &name, "q"]);
    wait_for("play to quit", Duration::from_secs(5), || {
        pane().contains("play-exited-0")
    });
    tmux(&["kill-session", "-t", &name]);
}

#[test]
fn follow_shows_a_channel_as_it_is_written() {
    let t = scratch("follow");
    let id = sessrec_core::id::SessionId::new().unwrap();
    let mut s = SynthSession::login(
        &t.join("records"),
        id,
        "srt-follow",
        "srt-follow",
        "192.0.2.5",
    )
    .unwrap();
    let mut ch = s.channel("shell", "pty", None).unwrap();
    ch.output(1000, b"before-follow\r\n").unwrap();
    ch.flush().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessrec"))
        .arg("--dir")
        .arg(t.join("records"))
        .args(["play", &format!("{id}/1"), "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    ch.output(2000, b"\x1b]52;c;ZXZpbA==\x07written-while-following\r\n")
        .unwrap();
    ch.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.finished(ch, 0).unwrap();
    let out = wait_output(&mut child, Duration::from_secs(10));
    assert!(
        out.contains("before-follow") && out.contains("written-while-following"),
        "{out:?}"
    );
    assert!(!out.contains("]52;"), "filtered: {out:?}");
    let _ = s.logout();
}

fn wait_output(child: &mut std::process::Child, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("play --follow did not stop after channel.end");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut s = String::new();
    use std::io::Read;
    child.stdout.take().unwrap().read_to_string(&mut s).unwrap();
    s
}

#[test]
fn doctor_reports_checks() {
    let t = scratch("doctor");
    let config = t.join("sessrec.toml");
    std::fs::write(
        &config,
        format!(
            "record_dir = \"{}\"\nmin_free_mb = 1\n",
            t.join("records").display()
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sessrec"))
        .arg("--config")
        .arg(&config)
        .arg("doctor")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    for check in [
        "config",
        "pam",
        "recorder",
        "record tree",
        "free space",
        "sessrec user",
        "sudoers",
        "syslog",
    ] {
        assert!(
            out.lines().any(|l| l[5..].starts_with(check)),
            "no {check} check:\n{out}"
        );
    }
    // A tree under the system temporary directory shares its filesystem with /tmp.
    assert!(
        out.contains("shares its filesystem with /tmp") || !Path::new("/tmp").exists(),
        "{out}"
    );
    assert_eq!(o.status.code(), Some(1), "a FAIL line gives exit 1:\n{out}");
}
