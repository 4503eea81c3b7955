//! Through a real sshd: an exec command of any length the kernel lets through (up to one
//! argument or environment string, 128 KiB) is in the record whole — the padding trick
//! `ssh u@h "$(printf '%9000s' '')id >/tmp/x"` must not leave only blanks in the record —
//! and `sessrec show` / `sessrec search` find its tail. Both launch set-ups: the recorder as
//! the login shell (`<recorder> -c CMD`), and `ForceCommand <recorder>` (the command arrives
//! in `SSH_ORIGINAL_COMMAND`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use base64::Engine;
use serde_json::{Map, Value};
use sessrec_tests::util::output_with_timeout;
use sessrec_tests::*;

const T: Duration = Duration::from_secs(60);
/// The record tree's `max_line_bytes` (the default).
const MAX_LINE: usize = 8192;

struct Rig {
    tree: RecordTree,
    user: TestUser,
    sshd: PrivateSshd,
    _installed: Installed,
}

impl Rig {
    fn new(tag: &str, launch: Launch) -> Rig {
        let RecordedLogin {
            tree,
            user,
            sshd,
            installed,
        } = RecordedLogin::launched(
            tag,
            launch,
            &format!("max_line_bytes = {MAX_LINE}\n"),
            |b| b,
        );
        Rig {
            tree,
            user,
            sshd,
            _installed: installed,
        }
    }

    /// Runs `command` (raw bytes) with `ssh -T`, or on a terminal (`ssh -tt`); true when it
    /// exited with 0.
    fn exec(&self, command: &[u8], pty: bool) -> bool {
        if pty {
            let text = std::str::from_utf8(command).expect("a pty test command is text");
            let mut term = self.sshd.login(&self.user).pty_exec(text);
            return term.wait(T).success();
        }
        let mut cmd = self.sshd.login(&self.user).ssh_command(&["-T"]);
        cmd.arg(OsStr::from_bytes(command));
        let out: Output = output_with_timeout(&mut cmd, b"", T);
        out.status.success() || panic!("{out:?}\n{}", self.sshd.log())
    }

    /// A file in the user's home that only the recorded command creates.
    fn marker(&self, name: &str) -> PathBuf {
        self.user.home().join(name)
    }
}

/// The command as the record holds it, put together from `channel.start` and the
/// `command.part` lines that follow it (written here independently of sessrec-core's reader,
/// from the format in sessrec-record(5)).
fn recorded_command(channel: &Path) -> Vec<u8> {
    let lines = read_records(channel);
    let start = &lines[0];
    assert_eq!(start["type"], "channel.start", "{start:?}");
    assert!(
        !start.contains_key("command_truncated"),
        "the command was cut: {}",
        brief(start)
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut bytes = match (start.get("command_b64"), start.get("command")) {
        (Some(Value::String(b)), _) => b64.decode(b).expect("command_b64 is base64"),
        (_, Some(Value::String(c))) => c.as_bytes().to_vec(),
        _ => panic!("no command in {}", brief(start)),
    };
    let parts = start
        .get("command_parts")
        .and_then(Value::as_u64)
        .unwrap_or(0) as usize;
    for (i, part) in lines[1..=parts].iter().enumerate() {
        assert_eq!(
            part["type"],
            "command.part",
            "line {}: {}",
            i + 2,
            brief(part)
        );
        assert_eq!(part["part"], i + 1, "{}", brief(part));
        assert_eq!(part["offset"], bytes.len(), "{}", brief(part));
        match (part.get("u"), part.get("b")) {
            (Some(Value::String(u)), None) => bytes.extend_from_slice(u.as_bytes()),
            (None, Some(Value::String(b))) => {
                bytes.extend_from_slice(&b64.decode(b).expect("part b is base64"))
            }
            _ => panic!("part without u or b: {}", brief(part)),
        }
    }
    if let Some(next) = lines.get(parts + 1) {
        assert_ne!(next["type"], "command.part", "more parts than announced");
    }
    assert_eq!(start["command_bytes"], bytes.len(), "{}", brief(start));
    bytes
}

/// A line for messages, without its long strings.
fn brief(line: &Map<String, Value>) -> String {
    let mut short = line.clone();
    for v in short.values_mut() {
        if let Value::String(s) = v {
            if s.len() > 200 {
                *v = Value::String(format!("<{} bytes>", s.len()));
            }
        }
    }
    Value::Object(short).to_string()
}

fn session_id(channel: &Path) -> String {
    channel
        .parent()
        .and_then(Path::file_name)
        .and_then(OsStr::to_str)
        .expect("session directory name")
        .to_string()
}

/// Runs `command`; checks that it ran, that the record holds it byte for byte in lines no
/// longer than `max_line_bytes`, and that `show` and `search` find `tail`.
fn check_long_command(rig: &Rig, what: &str, command: &[u8], pty: bool, marker: &Path, tail: &str) {
    let before: Vec<PathBuf> = rig
        .tree
        .sessions()
        .iter()
        .flat_map(|s| channel_files(s))
        .collect();
    assert!(rig.exec(command, pty), "{what}: failed\n{}", rig.sshd.log());
    assert!(marker.exists(), "{what}: the command did not run");
    let mut channel = None;
    wait_until(&format!("the channel of {what}"), T, || {
        channel = rig
            .tree
            .sessions()
            .iter()
            .flat_map(|s| channel_files(s))
            .find(|c| !before.contains(c));
        channel.is_some()
    });
    let channel = channel.expect("a new channel");
    wait_last_event(&channel, "channel.end", T);
    assert_chain_ok(&channel);
    for line in read_lines(&channel) {
        assert!(
            line.raw.len() <= MAX_LINE,
            "{what}: line {} has {} bytes",
            line.line_no,
            line.raw.len()
        );
    }
    let recorded = recorded_command(&channel);
    assert!(
        recorded == command,
        "{what}: the record holds {} bytes ending {:?}, the command had {} bytes ending {:?}",
        recorded.len(),
        String::from_utf8_lossy(&recorded[recorded.len().saturating_sub(60)..]),
        command.len(),
        String::from_utf8_lossy(&command[command.len() - 60..])
    );

    let dir = rig.tree.record_dir();
    let id = session_id(&channel);
    let shown = run_sessrec(dir, &["show", &id]);
    assert!(shown.status.success(), "{what}: {shown:?}");
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(
        shown.contains(tail),
        "{what}: show lacks {tail:?}:\n{}",
        &shown[..shown.len().min(4000)]
    );
    assert!(!shown.contains('\x1b') && !shown.contains('\x07'));
    for scope in [None, Some("--commands")] {
        let mut args = vec!["search", "--fixed-strings", tail];
        args.extend(scope);
        let found = run_sessrec(dir, &args);
        let text = String::from_utf8_lossy(&found.stdout);
        assert!(
            found.status.success() && text.contains(&id),
            "{what}: search {scope:?} did not find {tail:?}: {found:?}"
        );
    }
}

/// 9000 blanks, then the command: what the padding trick sends.
fn padded(tail: &str) -> Vec<u8> {
    let mut c = vec![b' '; 9000];
    c.extend_from_slice(tail.as_bytes());
    c
}

/// About 100 KiB of multi-byte characters, quotes and control bytes in a comment-like
/// argument, then the command.
fn big(tail: &str) -> Vec<u8> {
    let mut c = b"true '".to_vec();
    while c.len() < 100 * 1024 {
        c.extend_from_slice("é€😀 \"\\\t\x1b[31m ".as_bytes());
    }
    c.extend_from_slice(b"'; ");
    c.extend_from_slice(tail.as_bytes());
    c
}

/// Not UTF-8: recorded as exact bytes.
fn not_utf8(tail: &str) -> Vec<u8> {
    let mut c = b"true '\xff\xfe".to_vec();
    c.extend(std::iter::repeat_n(b'\x80', 20_000));
    c.extend_from_slice(b"'; ");
    c.extend_from_slice(tail.as_bytes());
    c
}

fn run_all(rig: &Rig, launch: Launch) {
    type Maker = fn(&str) -> Vec<u8>;
    let cases: [(&str, Maker); 3] = [("padded", padded), ("big", big), ("raw", not_utf8)];
    for (name, make) in cases {
        let marker = rig.marker(&format!("unrec-{name}"));
        let tail = format!("id >{}", marker.display());
        let what = format!("{launch:?} {name}");
        check_long_command(rig, &what, &make(&tail), false, &marker, &tail);
    }
    // On a terminal (`ssh -t`) too.
    let marker = rig.marker("unrec-pty");
    let tail = format!("id >{}", marker.display());
    let what = format!("{launch:?} padded on a pty");
    check_long_command(rig, &what, &padded(&tail), true, &marker, &tail);
}

#[test]
fn long_commands_are_recorded_whole_through_the_login_shell() {
    require_e2e!();
    let rig = Rig::new("lc-ls", Launch::LoginShell);
    run_all(&rig, Launch::LoginShell);
}

#[test]
fn long_commands_are_recorded_whole_through_force_command() {
    require_e2e!();
    let rig = Rig::new("lc-fc", Launch::ForceCommand);
    run_all(&rig, Launch::ForceCommand);
}
