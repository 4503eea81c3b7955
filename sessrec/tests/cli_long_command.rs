//! `show`, `search`, `play` banners and exports read a channel's command whole (from its
//! `command.part` lines), escape its control bytes, and say when an older recorder cut it.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Map, Value};
use sessrec_core::record::FileContext;
use sessrec_core::testing::synth::{id_at, SynthSession};
use sessrec_core::testing::TempDir;
use sessrec_core::writer::{RecordWriter, WriterOptions};

mod support;
use support::sessrec;

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const TAIL: &str = "id >/tmp/unrec";

/// A session with a padded exec command (channel 1) and a channel written the way recorders
/// before whole commands did: cut, with `command_truncated` (channel 2).
fn long_command_session(records: &Path) -> (String, PathBuf) {
    let id = id_at(1_764_000_000_000).unwrap();
    let mut s = SynthSession::login(records, id, "srt-bob", "srt-bob", "192.0.2.7").unwrap();
    let command = format!("{}\x1b]52;c;aGk=\x07{TAIL}", " ".repeat(9000));
    let mut ch = s.channel("exec", "pipe", Some(&command)).unwrap();
    ch.output(10, b"uid=1000\n").unwrap();
    s.finished(ch, 0).unwrap();
    let dir = s.logout().unwrap();
    // The older form, cut at the line size.
    let name = "channel-2.jsonl";
    let file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join(name))
        .unwrap();
    let ctx = FileContext {
        host: "bastion.test".into(),
        session: id,
        file: name.into(),
        user: "srt-bob".into(),
        actor: "srt-bob".into(),
    };
    let mut w = RecordWriter::new(file, ctx, WriterOptions::default()).unwrap();
    let old: Map<String, Value> = serde_json::from_value(json!({
        "kind": "exec", "mode": "pipe", "pid": 0, "mono_us": 0,
        "command": " ".repeat(7000), "command_truncated": 9014,
    }))
    .unwrap();
    w.event("channel.start", old).unwrap();
    w.event("channel.end", Map::new()).unwrap();
    w.close().unwrap();
    (id.to_string(), dir)
}

#[test]
fn show_search_and_exports_read_the_whole_command() {
    let t = TempDir::new("longcmd");
    let (id, _) = long_command_session(&t.join("records"));

    let o = sessrec(&t.join("records"), &["show", &id]);
    assert!(o.status.success(), "{o:?}");
    let shown = text(&o);
    let start = shown
        .lines()
        .find(|l| l.contains("channel-1") && l.contains("channel.start"))
        .expect("channel-1 start in show");
    assert!(start.ends_with(TAIL), "{start}");
    assert!(
        !shown.contains('\x1b') && !shown.contains('\x07'),
        "escaped"
    );
    assert!(
        !shown.contains("command.part"),
        "parts are shown with their start"
    );
    let old = shown
        .lines()
        .find(|l| l.contains("channel-2") && l.contains("channel.start"))
        .expect("channel-2 start in show");
    assert!(
        old.contains("CUT by the recorder: 7000 of 9014 bytes recorded"),
        "{old}"
    );

    let o = sessrec(&t.join("records"), &["show", &id, "--json"]);
    let start: Value = text(&o)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["file"] == "channel-1" && v["type"] == "channel.start")
        .unwrap();
    let whole = start["details"]["command"].as_str().unwrap();
    assert_eq!(whole.len(), 9000 + 12 + TAIL.len());
    assert!(whole.ends_with(TAIL));
    assert_eq!(start["details"]["command_complete"], true);

    for scope in [None, Some("--commands")] {
        let mut args = vec!["search", "--fixed-strings", TAIL];
        args.extend(scope);
        let o = sessrec(&t.join("records"), &args);
        assert!(o.status.success(), "{scope:?}: {o:?}");
        let out = text(&o);
        assert!(
            out.lines()
                .any(|l| l.contains(&format!("{id}/channel-1")) && l.contains("command")),
            "{scope:?}: {out}"
        );
        assert!(!out.contains('\x1b'), "search escapes: {out}");
    }
    let o = sessrec(&t.join("records"), &["search", "--input", TAIL]);
    assert_eq!(o.status.code(), Some(1), "not typed input: {o:?}");

    let target = format!("{id}/1");
    let o = sessrec(
        &t.join("records"),
        &["export", &target, "--format", "asciicast-v2"],
    );
    assert!(o.status.success(), "{o:?}");
    let header: Value = serde_json::from_str(text(&o).lines().next().unwrap()).unwrap();
    assert!(header["command"].as_str().unwrap().ends_with(TAIL));
}
