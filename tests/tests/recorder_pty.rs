//! sessrec-shell on a real pty: what is typed and shown is recorded, resizes, masking of
//! secrets, exact bytes, hangup.

mod recorder_support;

use std::time::Duration;

use recorder_support::*;
use sessrec_tests::*;

const SHELL_CONFIG: &str = "min_free_mb = 1\n[recorder]\nshell = \"/bin/bash\"\n";

fn input_text(path: &std::path::Path) -> String {
    stream_text(path, Stream::Input)
}

#[test]
fn typing_and_output_round_trip() {
    require_e2e!();
    let rig = Rig::new("rec-rt", SHELL_CONFIG);
    let mut term = rig.login();
    term.expect("This session is recorded", WAIT);
    term.send_line("echo typed-$((6*7))");
    term.expect("typed-42", WAIT);
    term.send_line("exit 3");
    term.wait_code(3, WAIT);

    let channel = rig.finished_channel(1);
    let start = event(&channel, "channel.start");
    assert_eq!(start["kind"], "shell");
    assert_eq!(start["mode"], "pty");
    assert_eq!(start["login"], true);
    assert_eq!(start["term"], "xterm");
    assert_eq!(start["cols"], 80);
    assert_eq!(start["rows"], 24);
    assert_eq!(start["outer_tty"], "taken");
    assert!(start["pty"].as_str().unwrap().starts_with("/dev/pts/"));
    assert!(start["pid"].as_u64().unwrap() > 1);
    assert!(start["mono_us"].as_u64().is_some());
    assert_eq!(start["session"], rig.session.to_string());
    assert!(input_text(&channel).contains("echo typed-$((6*7))\r"));
    assert!(stream_text(&channel, Stream::Output).contains("typed-42"));
    let end = event(&channel, "channel.end");
    assert_eq!(end["exit_code"], 3);
    assert_eq!(end["reason"], "exit");
    assert!(end["bytes_in"].as_u64().unwrap() >= 20);
    assert!(end["recorder_max_rss_kib"].as_u64().unwrap() > 0);
    assert!(end["recorder_cpu_us"].as_u64().is_some());
}

#[test]
fn resize_is_forwarded_and_recorded() {
    require_e2e!();
    let rig = Rig::new("rec-rs", SHELL_CONFIG);
    let mut term = rig.login();
    term.expect("This session is recorded", WAIT);
    term.send_line("echo ready-$((1+1))");
    term.expect("ready-2", WAIT);
    term.resize(132, 43);
    let pty = inner_pty(&rig, 1);
    wait_until("the resize to reach the inner pty", WAIT, || {
        std::process::Command::new("stty")
            .arg("-F")
            .arg(&pty)
            .arg("size")
            .output()
            .is_ok_and(|o| o.stdout == b"43 132\n")
    });
    term.send_line("stty size");
    term.expect("43 132", WAIT);
    term.send_line("exit");
    term.wait_code(0, WAIT);
    let channel = rig.finished_channel(1);
    let resizes = events(&channel, "resize");
    assert!(
        resizes.iter().any(|r| r["cols"] == 132 && r["rows"] == 43),
        "resize lines: {resizes:?}"
    );
}

#[test]
fn read_s_secret_is_masked() {
    require_e2e!();
    let rig = Rig::new("rec-rd", SHELL_CONFIG);
    let mut term = rig.login();
    term.expect("This session is recorded", WAIT);
    term.send_line("read -s SECRET; echo got-${#SECRET}-chars");
    wait_password_mode(&inner_pty(&rig, 1));
    term.send_line("hunter2-sekrit");
    term.expect("got-14-chars", WAIT);
    term.send_line("echo visible-$((2+3))");
    term.expect("visible-5", WAIT);
    term.send_line("exit");
    term.wait_code(0, WAIT);
    let channel = rig.finished_channel(1);
    let input = input_text(&channel);
    assert!(!input.contains("hunter2"), "secret recorded: {input:?}");
    assert!(input.contains("echo visible-$((2+3))"));
    let masked = events(&channel, "input.masked");
    assert!(
        masked.iter().all(|m| m["reason"] == "password_mode"),
        "{masked:?}"
    );
    assert_eq!(
        masked
            .iter()
            .map(|m| m["bytes"].as_u64().unwrap())
            .sum::<u64>(),
        15,
        "{masked:?}"
    );
}

#[test]
fn echo_off_cannot_hide_commands() {
    require_e2e!();
    let rig = Rig::new("rec-eo", SHELL_CONFIG);
    let mut term = rig.login();
    term.expect("This session is recorded", WAIT);
    term.send_line("stty -echo; echo READY-$((3*3)); exec sh");
    term.expect("READY-9", WAIT);
    wait_password_mode(&inner_pty(&rig, 1));
    term.send_line("echo first-$((1+1))");
    term.expect("first-2", WAIT);
    term.send_line("echo second-$((2+2))");
    term.expect("second-4", WAIT);
    term.send_line("exit 0");
    term.wait_code(0, WAIT);
    let channel = rig.finished_channel(1);
    // The first line after the switch is withheld (it might have been a password) ...
    assert!(!input_text(&channel).contains("echo first-"));
    assert_eq!(events(&channel, "input.masked").len(), 1);
    // ... the second is recorded, in clear, marked echo_off, with a notice.
    let echo_off_lines: Vec<_> = read_lines(&channel)
        .into_iter()
        .filter(|l| l.value.get("echo_off") == Some(&serde_json::Value::Bool(true)))
        .collect();
    let text: String = echo_off_lines
        .iter()
        .flat_map(decode_frames)
        .map(|f| String::from_utf8_lossy(&f.data).into_owned())
        .collect();
    assert!(
        text.contains("echo second-$((2+2))"),
        "echo_off input: {text:?}"
    );
    assert!(events(&channel, "notice")
        .iter()
        .any(|n| n["echo_off"] == true));
}

#[test]
fn non_utf8_and_split_characters_are_exact() {
    require_e2e!();
    let rig = Rig::new("rec-bin", SHELL_CONFIG);
    let mut term = rig.login();
    term.expect("This session is recorded", WAIT);
    term.send_line(r"printf 'A\377\376B\n'; printf '\342\202'; sleep 0.5; printf '\254-euro\n'");
    term.expect("-euro", WAIT);
    term.send_line("exit");
    term.wait_code(0, WAIT);
    let channel = rig.finished_channel(1);
    let output = stream_bytes(&channel, Stream::Output);
    let find = |needle: &[u8]| output.windows(needle.len()).any(|w| w == needle);
    assert!(find(b"A\xff\xfeB\r\n"), "invalid UTF-8 not kept exactly");
    assert!(
        find("\u{20ac}-euro".as_bytes()),
        "split character not rejoined"
    );
    // What the terminal showed is exactly what was recorded (after the notice).
    let transcript = term.transcript();
    let shown = &transcript[transcript.len() - output.len()..];
    assert_eq!(shown, &output[..]);
}

#[test]
fn hangup_mid_output_leaves_a_complete_record() {
    require_e2e!();
    let rig = Rig::new("rec-hup", SHELL_CONFIG);
    let mut term = rig.login();
    term.expect("This session is recorded", WAIT);
    term.send_line("yes hangup-line-output");
    term.expect("hangup-line-output", WAIT);
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(term.pid() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .expect("SIGHUP to the recorder");
    term.wait(WAIT);
    let channel = rig.finished_channel(1);
    let end = event(&channel, "channel.end");
    assert_eq!(end["reason"], "hangup");
    assert!(stream_text(&channel, Stream::Output).contains("hangup-line-output"));
}

#[test]
fn tampering_with_a_real_record_is_detected() {
    require_e2e!();
    // A short flush interval puts each command's output in lines of its own.
    let rig = Rig::new(
        "rec-tamper",
        &format!("{SHELL_CONFIG}flush_interval_ms = 100\n"),
    );
    let mut term = rig.login();
    term.expect("This session is recorded", WAIT);
    for i in 0..3 {
        term.send_line(&format!("echo line-{i}-$((i+1))"));
        term.expect(&format!("line-{i}-"), WAIT);
        std::thread::sleep(Duration::from_millis(300));
    }
    term.send_line("exit");
    term.wait_code(0, WAIT);
    let channel = rig.finished_channel(1);
    let original = std::fs::read(&channel).unwrap();
    let lines: Vec<&[u8]> = original.split_inclusive(|&b| b == b'\n').collect();
    assert!(lines.len() >= 5, "too few lines to tamper with");
    // The chain starts from the file's own name, so the copy keeps it.
    let copy_dir = rig.tree.dir().join("copy");
    std::fs::create_dir_all(&copy_dir).unwrap();
    let copy = copy_dir.join("channel-1.jsonl");
    let verify = |bytes: Vec<u8>| {
        std::fs::write(&copy, bytes).unwrap();
        sessrec_core::reader::verify_file(&copy).unwrap()
    };
    // Unchanged: valid.
    assert!(verify(original.clone()).ok);
    // A modified byte inside a line.
    let mut modified = original.clone();
    let at = lines[0].len() + lines[1].len() / 2;
    modified[at] = if modified[at] == b'x' { b'y' } else { b'x' };
    assert!(!verify(modified).ok);
    // A removed line.
    let removed: Vec<u8> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .flat_map(|(_, l)| l.to_vec())
        .collect();
    assert!(!verify(removed).ok);
    // Two lines swapped.
    let mut order: Vec<&[u8]> = lines.clone();
    order.swap(1, 2);
    assert!(!verify(order.concat()).ok);
}

#[test]
fn a_line_after_a_password_prompt_is_masked_in_raw_mode() {
    require_e2e!();
    let rig = Rig::new("rec-raw", SHELL_CONFIG);
    let mut term = rig.login();
    term.expect("This session is recorded", WAIT);
    term.send_line(
        "stty raw -echo; printf 'Token pass''word: '; head -c 11 >/dev/null; stty sane; echo; echo done-$((1+1))",
    );
    // (The quotes keep the typed command's echo from looking like the prompt.)
    term.expect("Token password: ", WAIT);
    term.send("raw-secret\r");
    term.expect("done-2", WAIT);
    term.send_line("echo after-$((2+3))");
    term.expect("after-5", WAIT);
    term.send_line("exit");
    term.wait_code(0, WAIT);
    let channel = rig.finished_channel(1);
    let input = stream_text(&channel, Stream::Input);
    assert!(!input.contains("raw-secret"), "{input:?}");
    assert!(input.contains("echo after-$((2+3))"));
    let masked = events(&channel, "input.masked");
    assert!(
        masked
            .iter()
            .any(|m| m["reason"] == "prompt" && m["bytes"] == 11),
        "{masked:?}"
    );
}
