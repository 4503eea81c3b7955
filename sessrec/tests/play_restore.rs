//! `sessrec play` gives the operator's terminal back as it found it: a record that sets
//! every mode the filter lets through (LNM, autowrap off, DEC line drawing in G0 and G1 with
//! SO, scroll margins, origin mode, insert mode, hidden cursor, alternate screen, reverse
//! video, colours, cursor style, double width) and some it drops (keypad, cursor keys, mouse,
//! bracketed paste) leaves none of them set after play ends, is quit with `q`, or is stopped
//! by Ctrl-C or SIGTERM. Checked on a real terminal emulator (tmux: its mode flags and what
//! later text looks like); on a pipe play adds nothing of its own.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sessrec_core::testing::synth::{id_at, SynthSession};
use sessrec_core::testing::TempDir;

/// Everything a hostile or careless recording may leave set.
const MODES: &[u8] = b"\x1b[?1049h\x1b[20h\x1b[?7l\x1b(0\x1b)0\x0e\x1b[5;10r\x1b[?6h\x1b[4h\
\x1b[?25l\x1b[?5h\x1b[1;31;7m\x1b[3 q\x1b[?12h\x1b#6\x1b[?1h\x1b=\x1b[?1000h\x1b[?1006h\x1b[?2004h\
\x1b[?2026hqqq-inside-modes";

const ROWS: u32 = 30;

/// A scratch directory holding an empty `records/` tree, removed on drop.
fn scratch(tag: &str) -> TempDir {
    let t = TempDir::new(tag);
    std::fs::create_dir_all(t.join("records")).unwrap();
    t
}

/// A one-channel record: a marker, then [`MODES`], then (with `pause`) a frame 60 s later,
/// so that the replay is still running when it is quit or signalled.
fn record(t: &TempDir, millis: u64, pause: bool) -> String {
    let id = id_at(millis).unwrap();
    let mut s =
        SynthSession::login(&t.join("records"), id, "srt-pr", "srt-pr", "192.0.2.9").unwrap();
    let mut ch = s.channel("shell", "pty", None).unwrap();
    ch.output(100_000, b"replay-started\r\n").unwrap();
    ch.output(200_000, MODES).unwrap();
    if pause {
        ch.output(60_000_000, b"late-frame\r\n").unwrap();
    }
    s.finished(ch, 0).unwrap();
    s.logout().unwrap();
    format!("{id}/1")
}

fn tmux(args: &[&str]) -> std::process::Output {
    Command::new("tmux")
        .args(args)
        .output()
        .expect("tmux (apt-get install tmux)")
}

fn have_tmux() -> bool {
    if Command::new("tmux").arg("-V").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("SESSREC_E2E").as_deref() != Ok("required"),
        "tmux is not installed"
    );
    println!("skipped: tmux is not installed");
    false
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A tmux session running `play` in a shell script, which then prints its exit status and a
/// line that DEC line drawing or leftover attributes would change.
struct Pane {
    name: String,
    pidfile: PathBuf,
}

impl Pane {
    fn start(t: &TempDir, tag: &str, target: &str, play_stdin: &str) -> Pane {
        let name = format!("srt-pr-{tag}-{}", std::process::id());
        let pidfile = t.join(format!("{tag}.pid"));
        // The inner shell writes its pid and becomes play, in the foreground (a background
        // job of a script would start with SIGINT ignored).
        let script = format!(
            "sh -c 'echo $$ >{}; exec {} --dir {} play {target} {play_stdin}'; \
             echo play-exited-$?; printf 'qqq-after-play\\n'; sleep 60",
            pidfile.display(),
            env!("CARGO_BIN_EXE_sessrec"),
            t.join("records").display(),
        );
        let o = tmux(&[
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "100",
            "-y",
            &ROWS.to_string(),
            "sh",
            "-c",
            &script,
        ]);
        assert!(o.status.success(), "{o:?}");
        Pane { name, pidfile }
    }

    fn capture(&self) -> String {
        String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-e", "-t", &self.name]).stdout)
            .into_owned()
    }

    fn pid(&self) -> i32 {
        let mut pid = 0;
        wait_for("the play pid", Duration::from_secs(5), || {
            pid = std::fs::read_to_string(&self.pidfile)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            pid > 0
        });
        pid
    }

    fn wait_modes_set(&self) {
        wait_for("the modes to be set", Duration::from_secs(10), || {
            self.flags().insert == "1"
        });
    }

    fn wait_exit(&self, code: i32) {
        wait_for(
            &format!("play-exited-{code}"),
            Duration::from_secs(10),
            || self.capture().contains(&format!("play-exited-{code}")),
        );
        wait_for("the line after play", Duration::from_secs(5), || {
            self.capture().contains("after-play")
        });
    }

    fn flags(&self) -> Flags {
        let out = tmux(&[
            "display-message",
            "-p",
            "-t",
            &self.name,
            "#{insert_flag} #{wrap_flag} #{origin_flag} #{cursor_flag} #{alternate_on} \
             #{scroll_region_upper} #{scroll_region_lower} #{keypad_flag} \
             #{keypad_cursor_flag} #{mouse_any_flag}",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let f: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        assert_eq!(f.len(), 10, "{text:?}");
        Flags {
            insert: f[0].clone(),
            all: text.trim().to_string(),
        }
    }

    /// The terminal after play: every mode back to its default, and later text plain.
    fn assert_restored(&self) {
        let flags = self.flags();
        // insert, wrap, origin, cursor, alternate, margins (whole screen), keypad, cursor
        // keys, mouse.
        let expected = format!("0 1 0 1 0 0 {} 0 0 0", ROWS - 1);
        assert_eq!(flags.all, expected, "tmux mode flags after play");
        let screen = self.capture();
        let line = screen
            .lines()
            .find(|l| l.contains("after-play"))
            .unwrap_or_else(|| panic!("no line after play:\n{screen}"));
        // Line drawing shows as SO + the letters in tmux's capture; attributes as SGR.
        assert!(
            line.starts_with("qqq-after-play"),
            "the line after play is drawn with leftover state: {line:?}"
        );
    }
}

struct Flags {
    insert: String,
    all: String,
}

impl Drop for Pane {
    fn drop(&mut self) {
        tmux(&["kill-session", "-t", &self.name]);
    }
}

#[test]
fn modes_are_restored_when_play_ends() {
    if !have_tmux() {
        return;
    }
    let t = scratch("pr-end");
    let target = record(&t, 1_764_000_100_000, false);
    let pane = Pane::start(&t, "end", &target, "");
    pane.wait_exit(0);
    pane.assert_restored();
}

#[test]
fn modes_are_restored_when_play_is_quit() {
    if !have_tmux() {
        return;
    }
    let t = scratch("pr-quit");
    let target = record(&t, 1_764_000_200_000, true);
    // Keys are read from the terminal (stdin is the pane's tty).
    let pane = Pane::start(&t, "quit", &target, "");
    pane.wait_modes_set();
    tmux(&["send-keys", "-t", &pane.name, "q"]);
    pane.wait_exit(0);
    pane.assert_restored();
}

#[test]
fn modes_are_restored_after_ctrl_c() {
    if !have_tmux() {
        return;
    }
    let t = scratch("pr-int");
    let target = record(&t, 1_764_000_300_000, true);
    // stdin is not a terminal: no keys are read, so Ctrl-C is the terminal's SIGINT.
    let pane = Pane::start(&t, "int", &target, "</dev/null");
    pane.wait_modes_set();
    let pid = pane.pid();
    // Ctrl-C would signal the script around play too: SIGINT goes to play alone.
    assert!(Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    pane.wait_exit(130);
    pane.assert_restored();
}

#[test]
fn modes_are_restored_after_sigterm() {
    if !have_tmux() {
        return;
    }
    let t = scratch("pr-term");
    let target = record(&t, 1_764_000_400_000, true);
    let pane = Pane::start(&t, "term", &target, "</dev/null");
    pane.wait_modes_set();
    let pid = pane.pid();
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    pane.wait_exit(143);
    pane.assert_restored();
}

/// Not a terminal (a file, a pipe): play writes the filtered replay and nothing of its own,
/// at the end, on `q` or on a signal alike.
#[test]
fn nothing_is_added_on_a_pipe() {
    let t = scratch("pr-pipe");
    let target = record(&t, 1_764_000_500_000, false);
    let o = Command::new(env!("CARGO_BIN_EXE_sessrec"))
        .arg("--dir")
        .arg(t.join("records"))
        .args(["play", &target])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_ends_with_the_replay(&o.stdout);

    // Interrupted in the middle of the replay: the same.
    let target = record(&t, 1_764_000_600_000, true);
    for (signal, code) in [("-INT", 130), ("-TERM", 143)] {
        let child = Command::new(env!("CARGO_BIN_EXE_sessrec"))
            .arg("--dir")
            .arg(t.join("records"))
            .args(["play", &target])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        assert!(Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap()
            .success());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(code), "{signal}: {o:?}");
        assert_ends_with_the_replay(&o.stdout);
        assert!(!String::from_utf8_lossy(&o.stdout).contains("late-frame"));
    }
}

fn assert_ends_with_the_replay(out: &[u8]) {
    assert!(
        out.ends_with(b"qqq-inside-modes"),
        "{:?}",
        String::from_utf8_lossy(&out[out.len().saturating_sub(200)..])
    );
}
