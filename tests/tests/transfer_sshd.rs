//! File transfers through a real sshd (pam_sessrec in its session stack) with real `sftp`,
//! `scp` (SFTP and `-O` legacy protocol) and `rsync` clients, in both launch set-ups:
//! the recorder as the users' login shell (`<recorder> -c /usr/lib/openssh/sftp-server`), and
//! `ForceCommand <recorder>` in a `Match` block for a user whose shell is `/bin/sh`, with
//! `Subsystem sftp internal-sftp` (so the recorder gets `SSH_ORIGINAL_COMMAND=internal-sftp`).
//!
//! Each operation must leave one `transfer` line with its paths, direction, byte counts and
//! status, and no payload; commands that only look like transfers (`scp -t /tmp/x; bash`) must
//! be ordinary exec channels recorded byte for byte. One sshd per set-up, many checks each.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Map, Value};
use sessrec_tests::*;

const T: Duration = Duration::from_secs(60);
/// The 100 MiB copies on a busy machine.
const BIG_T: Duration = Duration::from_secs(300);
const BIG_LEN: u64 = 100 * 1024 * 1024;
/// What a transfer channel's record may grow to, whatever the payload size.
const RECORD_BOUND: u64 = 8 * 1024;
const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// One private sshd, one user, and the channels checked so far. Fields drop in order: the
/// sshd (and its sessions) first, the installation last.
struct Rig {
    sshd: PrivateSshd,
    user: TestUser,
    tree: RecordTree,
    local: TempDir,
    seen: BTreeSet<PathBuf>,
    launch: Launch,
    _installed: Installed,
}

impl Rig {
    fn new(prefix: &str, launch: Launch) -> Rig {
        let RecordedLogin {
            tree,
            user,
            sshd,
            installed,
        } = RecordedLogin::launched(prefix, launch, "", |b| match launch {
            // sshd's own sftp server under ForceCommand, as sites set it up.
            Launch::ForceCommand => b.config("Subsystem sftp internal-sftp"),
            Launch::LoginShell => b,
        });
        Rig {
            sshd,
            user,
            tree,
            local: TempDir::new("xfer"),
            seen: BTreeSet::new(),
            launch,
            _installed: installed,
        }
    }

    fn login(&self) -> SshLogin {
        self.sshd.login(&self.user)
    }

    /// A path in the user's home directory on the "server".
    fn remote(&self, name: &str) -> String {
        self.user.home().join(name).display().to_string()
    }

    /// `user@127.0.0.1:<home>/name` for scp and rsync.
    fn remote_arg(&self, name: &str) -> String {
        self.login().remote_path(&self.remote(name))
    }

    fn local(&self, name: &str) -> PathBuf {
        self.local.join(name)
    }

    fn local_arg(&self, name: &str) -> String {
        self.local(name).display().to_string()
    }

    /// The one channel file that appeared since the last call, once it has ended; its chain is
    /// checked. Every client run here opens exactly one channel.
    fn next_channel(&mut self, what: &str) -> PathBuf {
        let mut fresh = Vec::new();
        wait_until(&format!("the channel of {what}"), T, || {
            fresh = self
                .tree
                .sessions()
                .iter()
                .flat_map(|s| channel_files(s))
                .filter(|c| !self.seen.contains(c))
                .collect();
            !fresh.is_empty()
        });
        assert_eq!(
            fresh.len(),
            1,
            "{what}: expected one new channel: {fresh:?}"
        );
        let channel = fresh.remove(0);
        self.seen.insert(channel.clone());
        wait_last_event(&channel, "channel.end", T);
        assert_chain_ok(&channel);
        channel
    }

    /// The channel of a transfer that succeeded: kind `transfer` with this protocol, launched
    /// the way this rig's sshd launches it, summary `ok`, and no payload in the record.
    fn transfer_channel(&mut self, what: &str, out: &Output, protocol: &str) -> PathBuf {
        assert_ok(what, out);
        let channel = self.next_channel(what);
        let start = only_event(&channel, "channel.start");
        assert_eq!(start["kind"], "transfer", "{what}: {start:?}");
        assert_eq!(start["protocol"], protocol, "{what}: {start:?}");
        assert_eq!(
            start["force_command"],
            self.launch == Launch::ForceCommand,
            "{what}: {start:?}"
        );
        let summary = one_transfer(&channel, what, |t| t["op"] == "summary");
        assert_eq!(summary["status"], "ok", "{what}: {summary:?}");
        assert_eq!(summary["exit_status"], 0, "{what}: {summary:?}");
        assert!(
            stream_bytes(&channel, Stream::Input).is_empty()
                && stream_bytes(&channel, Stream::Output).is_empty(),
            "{what}: payload recorded in {}",
            channel.display()
        );
        channel
    }
}

fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn transfers(channel: &Path) -> Vec<Map<String, Value>> {
    events(channel, "transfer")
}

/// The single `transfer` line matching `pick`; panics listing them all otherwise.
fn one_transfer(
    channel: &Path,
    what: &str,
    pick: impl Fn(&Map<String, Value>) -> bool,
) -> Map<String, Value> {
    let all = transfers(channel);
    let mut found: Vec<_> = all.iter().filter(|t| pick(t)).cloned().collect();
    assert_eq!(
        found.len(),
        1,
        "{what}: expected one matching transfer line in {}:\n{}",
        channel.display(),
        all.iter()
            .map(|t| Value::Object(t.clone()).to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    found.remove(0)
}

/// Asserts that the channel moved between `min` and `max` bytes to the client by splice(2)
/// (payload only, never more than it sent in all).
fn assert_spliced(channel: &Path, what: &str, min: u64, max: u64) {
    let end = only_event(channel, "channel.end");
    let spliced = end["spliced_bytes_out"].as_u64().unwrap_or(0);
    let out = end["bytes_out"].as_u64().unwrap_or(0);
    assert!(
        (min..=max.min(out)).contains(&spliced),
        "{what}: {spliced} bytes spliced, expected {min}..={max}: {end:?}"
    );
}

fn is_op(t: &Map<String, Value>, op: &str, path: &str) -> bool {
    t["op"] == op && t.get("path").and_then(Value::as_str) == Some(path)
}

/// Deterministic, not very compressible test data.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha256_of(path: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(path));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("no sha256sum output for {}", path.display()))
        .to_string()
}

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    let path = path.as_ref();
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Commands that only look like transfers run as exec channels with their I/O recorded.
fn smuggling_is_an_exec_channel(rig: &mut Rig) {
    let shell_after_scp = "scp -t /tmp/x; bash";
    let out = rig
        .login()
        .exec(shell_after_scp, b"x\necho smuggled-$((6*7))\n");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("smuggled-42"),
        "{out:?}"
    );
    let channel = rig.next_channel(shell_after_scp);
    let start = only_event(&channel, "channel.start");
    assert_eq!(start["kind"], "exec", "{start:?}");
    assert_eq!(start["command"], shell_after_scp);
    assert!(transfers(&channel).is_empty());
    assert!(stream_text(&channel, Stream::Input).contains("echo smuggled-$((6*7))\n"));
    assert!(stream_text(&channel, Stream::Output).contains("smuggled-42"));

    let daemon = "rsync --server --daemon --config=~/x .";
    let out = rig.login().exec(daemon, b"");
    assert!(!out.status.success(), "{out:?}");
    let channel = rig.next_channel(daemon);
    let start = only_event(&channel, "channel.start");
    assert_eq!(start["kind"], "exec", "{start:?}");
    assert_eq!(start["command"], daemon);
    assert!(transfers(&channel).is_empty());
    assert!(
        stream_text(&channel, Stream::Stderr).contains("rsync error"),
        "stderr not recorded in {}",
        channel.display()
    );

    // Quoted: a shell would pass the literal name `$(id)` to scp, which then really receives
    // the file; as an exec channel, the file's bytes are in the record.
    let quoted = "scp -t '$(id)'";
    let out = rig.login().exec(quoted, b"C0644 9 f\nsmuggled\n\0");
    assert_ok(quoted, &out);
    assert_eq!(read(rig.user.home().join("$(id)")), b"smuggled\n");
    let channel = rig.next_channel(quoted);
    let start = only_event(&channel, "channel.start");
    assert_eq!(start["kind"], "exec", "{start:?}");
    assert_eq!(start["command"], quoted);
    assert!(transfers(&channel).is_empty());
    assert!(stream_text(&channel, Stream::Input).contains("C0644 9 f\nsmuggled\n"));
}

/// `sftp -b`: one line per operation with its paths, direction, bytes and status.
fn sftp_batch_operations(rig: &mut Rig) {
    let data = pattern(300_000, 1);
    fs::write(rig.local("a.bin"), &data).unwrap();
    let dir = rig.remote("batch-dir");
    let (a, b) = (format!("{dir}/a.bin"), format!("{dir}/b.bin"));
    let batch = format!(
        "mkdir {dir}\nput {local_a} {a}\nrename {a} {b}\nget {b} {local_b}\nrm {b}\nrmdir {dir}\n",
        local_a = rig.local_arg("a.bin"),
        local_b = rig.local_arg("b.bin"),
    );
    let out = rig.login().sftp_batch(&batch, T);
    let channel = rig.transfer_channel("sftp -b", &out, "sftp");
    assert_eq!(read(rig.local("b.bin")), data);
    assert!(!Path::new(&dir).exists());

    let start = only_event(&channel, "channel.start");
    assert_eq!(start["argv"][0], SFTP_SERVER, "{start:?}");
    if rig.launch == Launch::ForceCommand {
        assert_eq!(start["command"], "internal-sftp", "{start:?}");
    }
    let what = "sftp -b";
    let mkdir = one_transfer(&channel, what, |t| is_op(t, "mkdir", &dir));
    assert_eq!(mkdir["status"], "ok");
    let put = one_transfer(&channel, what, |t| is_op(t, "open", &a));
    assert_eq!(put["direction"], "upload", "{put:?}");
    assert_eq!(put["bytes_written"], data.len() as u64, "{put:?}");
    assert_eq!(put["bytes_read"], 0, "{put:?}");
    assert_eq!(put["status"], "ok", "{put:?}");
    assert!(put["open_flags"].as_str().unwrap().contains("create"));
    let rename = one_transfer(&channel, what, |t| is_op(t, "rename", &a));
    assert_eq!(rename["target"], b.as_str(), "{rename:?}");
    assert_eq!(rename["status"], "ok");
    let get = one_transfer(&channel, what, |t| is_op(t, "open", &b));
    assert_eq!(get["direction"], "download", "{get:?}");
    assert_eq!(get["bytes_read"], data.len() as u64, "{get:?}");
    assert_eq!(get["bytes_written"], 0, "{get:?}");
    assert_eq!(get["status"], "ok", "{get:?}");
    let rm = one_transfer(&channel, what, |t| is_op(t, "remove", &b));
    assert_eq!(rm["status"], "ok");
    let rmdir = one_transfer(&channel, what, |t| is_op(t, "rmdir", &dir));
    assert_eq!(rmdir["status"], "ok");
    let summary = one_transfer(&channel, what, |t| t["op"] == "summary");
    assert_eq!(summary["decoded"], true);
    assert!(summary["bytes_from_client"].as_u64().unwrap() > data.len() as u64);
    assert!(summary["bytes_to_client"].as_u64().unwrap() > data.len() as u64);
}

/// Transfers of a file that does not exist: the failure is recorded with its status.
fn missing_file_fails_visibly(rig: &mut Rig) {
    let missing = rig.remote("no-such-file.bin");
    let batch = format!("get {missing} {}\n", rig.local_arg("never.bin"));
    let out = rig.login().sftp_batch(&batch, T);
    assert!(!out.status.success(), "{out:?}");
    let channel = rig.next_channel("sftp get of a missing file");
    let failed: Vec<_> = transfers(&channel)
        .into_iter()
        .filter(|t| t.get("path").and_then(Value::as_str) == Some(missing.as_str()))
        .collect();
    assert!(
        !failed.is_empty() && failed.iter().all(|t| t["status"] == "no_such_file"),
        "sftp get of a missing file: {failed:?}"
    );

    let out = rig.login().scp(
        &[
            "-O",
            &rig.remote_arg("no-such-file.bin"),
            &rig.local_arg("never.bin"),
        ],
        T,
    );
    assert!(!out.status.success(), "{out:?}");
    let channel = rig.next_channel("scp -O of a missing file");
    assert_eq!(only_event(&channel, "channel.start")["kind"], "transfer");
    let error = one_transfer(&channel, "scp -O missing", |t| t["op"] == "error");
    assert!(
        error["status_text"]
            .as_str()
            .is_some_and(|m| m.contains("No such file")),
        "{error:?}"
    );
    let summary = one_transfer(&channel, "scp -O missing", |t| t["op"] == "summary");
    assert_eq!(summary["status"], "failed", "{summary:?}");
    assert!(!Path::new(&rig.local("never.bin")).exists());
}

/// OpenSSH `scp` over SFTP (the default) and the legacy protocol (`-O`), each way.
fn scp_both_protocols_both_ways(rig: &mut Rig) {
    let data = pattern(123_457, 2);
    fs::write(rig.local("c.bin"), &data).unwrap();
    let remote = rig.remote("c.bin");
    let out = rig
        .login()
        .scp(&[&rig.local_arg("c.bin"), &rig.remote_arg("c.bin")], T);
    let channel = rig.transfer_channel("scp upload", &out, "sftp");
    assert_eq!(read(&remote), data);
    let up = one_transfer(&channel, "scp upload", |t| is_op(t, "open", &remote));
    assert_eq!(up["direction"], "upload", "{up:?}");
    assert_eq!(up["bytes_written"], data.len() as u64, "{up:?}");
    assert_eq!(up["status"], "ok", "{up:?}");

    let out = rig
        .login()
        .scp(&[&rig.remote_arg("c.bin"), &rig.local_arg("c-back.bin")], T);
    let channel = rig.transfer_channel("scp download", &out, "sftp");
    assert_eq!(read(rig.local("c-back.bin")), data);
    let down = one_transfer(&channel, "scp download", |t| is_op(t, "open", &remote));
    assert_eq!(down["direction"], "download", "{down:?}");
    assert_eq!(down["bytes_read"], data.len() as u64, "{down:?}");
    assert_eq!(down["status"], "ok", "{down:?}");

    let legacy = rig.remote("d.bin");
    let out = rig.login().scp(
        &[
            "-O",
            "-p",
            &rig.local_arg("c.bin"),
            &rig.remote_arg("d.bin"),
        ],
        T,
    );
    let channel = rig.transfer_channel("scp -O upload", &out, "scp");
    assert_eq!(read(&legacy), data);
    let start = only_event(&channel, "channel.start");
    assert_eq!(start["argv"][0], "/usr/bin/scp", "{start:?}");
    let file = one_transfer(&channel, "scp -O upload", |t| t["op"] == "file");
    assert_eq!(file["path"], legacy.as_str(), "{file:?}");
    assert_eq!(file["name"], "c.bin", "{file:?}");
    assert_eq!(file["direction"], "upload", "{file:?}");
    assert_eq!(file["size"], data.len() as u64, "{file:?}");
    assert_eq!(file["bytes_written"], data.len() as u64, "{file:?}");
    let mode = fs::metadata(rig.local("c.bin"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(file["mode"], format!("{mode:04o}"), "{file:?}");
    assert!(file["mtime"].as_u64().is_some(), "-p sends times: {file:?}");
    assert_eq!(file["status"], "ok", "{file:?}");
    let summary = one_transfer(&channel, "scp -O upload", |t| t["op"] == "summary");
    assert_eq!(summary["direction"], "upload");

    let out = rig.login().scp(
        &["-O", &rig.remote_arg("d.bin"), &rig.local_arg("d-back.bin")],
        T,
    );
    let channel = rig.transfer_channel("scp -O download", &out, "scp");
    assert_eq!(read(rig.local("d-back.bin")), data);
    let file = one_transfer(&channel, "scp -O download", |t| t["op"] == "file");
    assert_eq!(file["path"], legacy.as_str(), "{file:?}");
    assert_eq!(file["direction"], "download", "{file:?}");
    assert_eq!(file["size"], data.len() as u64, "{file:?}");
    assert_eq!(file["bytes_read"], data.len() as u64, "{file:?}");
    assert_eq!(file["status"], "ok", "{file:?}");
    // The file's data went to the client by splice(2), the control lines through the decoder.
    let len = data.len() as u64;
    assert_spliced(&channel, "scp -O download", len - 4096, len);
}

/// `scp -r`: a tree up over SFTP (mkdir + one open per file) and back with `scp -O -r`
/// (one `dir` and `file` line per entry, named below the operand).
fn scp_recursive(rig: &mut Rig) {
    let top = pattern(4_000, 3);
    let inner = pattern(70_000, 4);
    fs::create_dir_all(rig.local("tree/inner")).unwrap();
    fs::write(rig.local("tree/top.txt"), &top).unwrap();
    fs::write(rig.local("tree/inner/i.bin"), &inner).unwrap();
    let remote = rig.remote("tree");
    let out = rig
        .login()
        .scp(&["-r", &rig.local_arg("tree"), &rig.remote_arg("tree")], T);
    let channel = rig.transfer_channel("scp -r upload", &out, "sftp");
    assert_eq!(read(format!("{remote}/inner/i.bin")), inner);
    let what = "scp -r upload";
    for dir in [remote.clone(), format!("{remote}/inner")] {
        let mkdir = one_transfer(&channel, what, |t| is_op(t, "mkdir", &dir));
        assert_eq!(mkdir["status"], "ok", "{mkdir:?}");
    }
    for (path, len) in [
        (format!("{remote}/top.txt"), top.len()),
        (format!("{remote}/inner/i.bin"), inner.len()),
    ] {
        let open = one_transfer(&channel, what, |t| is_op(t, "open", &path));
        assert_eq!(open["direction"], "upload", "{open:?}");
        assert_eq!(open["bytes_written"], len as u64, "{open:?}");
        assert_eq!(open["status"], "ok", "{open:?}");
    }

    let out = rig.login().scp(
        &[
            "-O",
            "-r",
            &rig.remote_arg("tree"),
            &rig.local_arg("tree-back"),
        ],
        T,
    );
    let channel = rig.transfer_channel("scp -O -r download", &out, "scp");
    assert_eq!(read(rig.local("tree-back/inner/i.bin")), inner);
    assert_eq!(read(rig.local("tree-back/top.txt")), top);
    let what = "scp -O -r download";
    for name in ["tree", "tree/inner"] {
        let dir = one_transfer(&channel, what, |t| t["op"] == "dir" && t["name"] == name);
        assert_eq!(dir["path"], remote.as_str(), "{dir:?}");
        assert_eq!(dir["direction"], "download", "{dir:?}");
        assert_eq!(dir["status"], "ok", "{dir:?}");
    }
    for (name, len) in [
        ("tree/top.txt", top.len()),
        ("tree/inner/i.bin", inner.len()),
    ] {
        let file = one_transfer(&channel, what, |t| t["op"] == "file" && t["name"] == name);
        assert_eq!(file["size"], len as u64, "{file:?}");
        assert_eq!(file["bytes_read"], len as u64, "{file:?}");
        assert_eq!(file["status"], "ok", "{file:?}");
    }
    // The larger file's data is spliced; the smaller one (under a page) is read.
    let payload = (top.len() + inner.len()) as u64;
    assert_spliced(&channel, what, inner.len() as u64 - 4096, payload);
}

/// `rsync -a` each way: the summary names the direction, the server-side path and the result.
fn rsync_both_ways(rig: &mut Rig) {
    let one = pattern(50_000, 5);
    let two = pattern(9_000, 6);
    fs::create_dir_all(rig.local("rs/sub")).unwrap();
    fs::write(rig.local("rs/one.bin"), &one).unwrap();
    fs::write(rig.local("rs/sub/two.bin"), &two).unwrap();
    let remote = format!("{}/", rig.remote("rs"));
    let out = rig.login().rsync(
        &[
            "-a",
            &format!("{}/", rig.local_arg("rs")),
            &rig.remote_arg("rs/"),
        ],
        T,
    );
    let channel = rig.transfer_channel("rsync upload", &out, "rsync");
    assert_eq!(read(format!("{remote}sub/two.bin")), two);
    let summary = one_transfer(&channel, "rsync upload", |t| t["op"] == "summary");
    assert_eq!(summary["direction"], "upload", "{summary:?}");
    assert_eq!(summary["paths"], serde_json::json!([remote]), "{summary:?}");
    assert!(summary["bytes_from_client"].as_u64().unwrap() > one.len() as u64);

    let out = rig.login().rsync(
        &[
            "-a",
            &rig.remote_arg("rs/"),
            &format!("{}/", rig.local_arg("rs-back")),
        ],
        T,
    );
    let channel = rig.transfer_channel("rsync download", &out, "rsync");
    assert_eq!(read(rig.local("rs-back/one.bin")), one);
    assert_eq!(read(rig.local("rs-back/sub/two.bin")), two);
    let summary = one_transfer(&channel, "rsync download", |t| t["op"] == "summary");
    assert_eq!(summary["direction"], "download", "{summary:?}");
    assert_eq!(summary["paths"], serde_json::json!([remote]), "{summary:?}");
    let to_client = summary["bytes_to_client"].as_u64().unwrap();
    assert!(to_client > one.len() as u64);
    // rsync's stream is only counted, so all of it may go by splice(2).
    let end = only_event(&channel, "channel.end");
    assert_eq!(end["bytes_out"], to_client, "{end:?}");
    assert!(
        end["spliced_bytes_out"].as_u64().unwrap_or(0) > one.len() as u64,
        "{end:?}"
    );
}

/// 100 MiB up over SFTP and back with `scp -O` and over SFTP: intact each way, each
/// channel's record stays a few KiB, and the downloads' payload goes by splice(2).
fn big_transfer_keeps_the_record_small(rig: &mut Rig) {
    let local = rig.local("big.bin");
    let mut random = fs::File::open("/dev/urandom").unwrap().take(BIG_LEN);
    let mut file = fs::File::create(&local).unwrap();
    std::io::copy(&mut random, &mut file).unwrap();
    drop(file);
    let sum = sha256_of(&local);
    let remote = rig.remote("big.bin");

    let out = rig.login().scp(
        &[&rig.local_arg("big.bin"), &rig.remote_arg("big.bin")],
        BIG_T,
    );
    let channel = rig.transfer_channel("100 MiB upload", &out, "sftp");
    assert_eq!(sha256_of(Path::new(&remote)), sum);
    let up = one_transfer(&channel, "100 MiB upload", |t| is_op(t, "open", &remote));
    assert_eq!(up["bytes_written"], BIG_LEN, "{up:?}");
    let size = fs::metadata(&channel).unwrap().len();
    assert!(
        size < RECORD_BOUND,
        "upload record {} has {size} bytes",
        channel.display()
    );

    let out = rig.login().scp(
        &[
            "-O",
            &rig.remote_arg("big.bin"),
            &rig.local_arg("big-back.bin"),
        ],
        BIG_T,
    );
    let channel = rig.transfer_channel("100 MiB download", &out, "scp");
    assert_eq!(sha256_of(&rig.local("big-back.bin")), sum);
    let down = one_transfer(&channel, "100 MiB download", |t| t["op"] == "file");
    assert_eq!(down["bytes_read"], BIG_LEN, "{down:?}");
    assert_spliced(
        &channel,
        "100 MiB scp -O download",
        BIG_LEN - 2 * 1024 * 1024,
        BIG_LEN,
    );
    let size = fs::metadata(&channel).unwrap().len();
    assert!(
        size < RECORD_BOUND,
        "download record {} has {size} bytes",
        channel.display()
    );

    // Down again over SFTP: the DATA payloads go to the client by splice(2), the replies'
    // headers through the decoder.
    let out = rig.login().scp(
        &[&rig.remote_arg("big.bin"), &rig.local_arg("big-sftp.bin")],
        BIG_T,
    );
    let channel = rig.transfer_channel("100 MiB SFTP download", &out, "sftp");
    assert_eq!(sha256_of(&rig.local("big-sftp.bin")), sum);
    let down = one_transfer(&channel, "100 MiB SFTP download", |t| {
        is_op(t, "open", &remote)
    });
    assert_eq!(down["bytes_read"], BIG_LEN, "{down:?}");
    let end = only_event(&channel, "channel.end");
    let spliced = end["spliced_bytes_out"].as_u64().unwrap_or(0);
    assert!(
        spliced >= BIG_LEN - 2 * 1024 * 1024 && spliced <= end["bytes_out"].as_u64().unwrap(),
        "payload not spliced: {end:?}"
    );
    assert!(fs::metadata(&channel).unwrap().len() < RECORD_BOUND);
    let _ = fs::remove_file(&local);
    let _ = fs::remove_file(rig.local("big-back.bin"));
    let _ = fs::remove_file(rig.local("big-sftp.bin"));
    let _ = fs::remove_file(&remote);
}

/// A shell-quoted word for the `-e` wrapper scripts below.
fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Issue 10, attack 2: `rsync --server -s . x` looks like a transfer, but `-s` makes rsync
/// read a second argument list from the stream, and `--daemon --config=r.conf` there runs the
/// config's `pre-xfer exec` as the user. A real rsync client (daemon-over-ssh syntax,
/// `user@host::m/`) uses an `-e` wrapper that asks for that command and writes the
/// NUL-separated list before the client's own stream. The command must not leave the record:
/// it runs as an ordinary exec channel whose record holds every byte the wrapper sent, and
/// everything the daemon answered.
fn rsync_protected_args_are_recorded(rig: &mut Rig) {
    let marker = PathBuf::from(format!("/tmp/{}", unique_name("rsync-rce")));
    let _ = fs::remove_file(&marker);
    rig.user.write_home_file(
        "r.conf",
        &format!(
            "use chroot = no\n[m]\npath = {}\npre-xfer exec = /bin/sh -c 'id > {}'\n",
            rig.user.home().display(),
            marker.display()
        ),
        0o644,
    );
    let command = "rsync --server -s . x";
    let sent = rig.local("protected-args.sent");
    let fifo = rig.local("protected-args.fifo");
    let _ = fs::remove_file(&fifo);
    let login = rig.login();
    // `exec ssh` so that rsync's child ends with ssh; the feeder (a background job, so
    // given rsync's pipe explicitly as fd 3) ends when rsync closes its end.
    let wrapper = format!(
        "#!/bin/sh\nmkfifo {fifo}\nexec 3<&0\n{{ printf 'rsync\\0--server\\0--daemon\\0--config=r.conf\\0.\\0\\0'; exec cat <&3; }} 2>/dev/null | tee {sent} > {fifo} 2>/dev/null &\nexec {rsh} {dest} {command} < {fifo} 3<&-\n",
        fifo = sh_quote(&fifo.display().to_string()),
        sent = sh_quote(&sent.display().to_string()),
        rsh = login.rsync_rsh(),
        dest = sh_quote(&login.destination()),
        command = sh_quote(command),
    );
    let wrapper_path = rig.local("inject-protected-args.sh");
    util::write_file(&wrapper_path, &wrapper, 0o755);
    let mut client = Command::new("rsync");
    client
        .arg("-e")
        .arg(&wrapper_path)
        .arg("-a")
        .arg(format!("{}::m/r.conf", login.destination()))
        .arg(rig.local_arg("fetched-r.conf"));
    let out = util::output_with_timeout(&mut client, b"", T);

    let channel = rig.next_channel("rsync --server -s");
    let daemon_ran = marker.exists();
    let _ = fs::remove_file(&marker);
    let start = only_event(&channel, "channel.start");
    assert_eq!(
        start["kind"], "exec",
        "{out:?}\n{start:?}\npre-xfer exec ran: {daemon_ran}"
    );
    assert_eq!(start["command"], command, "{start:?}");
    assert!(transfers(&channel).is_empty(), "{}", channel.display());
    let sent = read(&sent);
    assert!(
        sent.starts_with(b"rsync\0--server\0--daemon\0--config=r.conf\0.\0\0@RSYNCD: "),
        "{sent:?}"
    );
    assert_eq!(
        stream_bytes(&channel, Stream::Input),
        sent,
        "the record must hold every byte sent: {}",
        channel.display()
    );
    assert!(
        stream_text(&channel, Stream::Output).starts_with("@RSYNCD: "),
        "the daemon's answers are recorded: {}",
        channel.display()
    );
    // The daemon ran, in the open: its `pre-xfer exec` is the user's own doing, recorded.
    assert!(daemon_ran, "{out:?}");
}

/// A sibling: rsync's option parser (popt) reads `$HOME/.popt` before it sees `--server`,
/// and an `rsync exec --server PROGRAM` line there makes a plain `rsync --server` transfer
/// run PROGRAM, with the payload unrecorded. A transfer program gets no `HOME`, so an
/// ordinary `rsync -a` upload stays a transfer and the `.popt` line does nothing.
fn rsync_ignores_the_users_popt_file(rig: &mut Rig) {
    let marker = PathBuf::from(format!("/tmp/{}", unique_name("popt-rce")));
    let _ = fs::remove_file(&marker);
    rig.user.write_home_file(
        ".popt",
        &format!(
            "rsync exec --server /bin/sh -c 'id > {}'\n",
            marker.display()
        ),
        0o644,
    );
    let data = pattern(5_000, 7);
    fs::write(rig.local("popt.bin"), &data).unwrap();
    let out = rig.login().rsync(
        &[
            "-a",
            &rig.local_arg("popt.bin"),
            &rig.remote_arg("popt.bin"),
        ],
        T,
    );
    let channel = rig.next_channel("rsync with ~/.popt");
    let _ = fs::remove_file(rig.user.home().join(".popt"));
    let popt_ran = marker.exists();
    let _ = fs::remove_file(&marker);
    assert!(
        !popt_ran,
        "~/.popt ran a command inside a transfer channel: {}",
        channel.display()
    );
    assert_ok("rsync with ~/.popt", &out);
    assert_eq!(only_event(&channel, "channel.start")["kind"], "transfer");
    assert_eq!(read(rig.remote("popt.bin")), data);
}

/// Runs one group of checks, printing how long it took (shown with `--nocapture`).
fn timed(what: &str, check: impl FnOnce()) {
    let start = std::time::Instant::now();
    check();
    eprintln!("{what}: {:.1?}", start.elapsed());
}

#[test]
fn transfers_through_the_login_shell_recorder() {
    require_e2e!("scp", "sftp", "rsync", "sha256sum");
    let mut rig = Rig::new("xfer-ls", Launch::LoginShell);
    timed("smuggling_is_an_exec_channel", || {
        smuggling_is_an_exec_channel(&mut rig)
    });
    timed("sftp_batch_operations", || sftp_batch_operations(&mut rig));
    timed("scp_both_protocols_both_ways", || {
        scp_both_protocols_both_ways(&mut rig)
    });
    timed("scp_recursive", || scp_recursive(&mut rig));
    timed("rsync_both_ways", || rsync_both_ways(&mut rig));
    timed("missing_file_fails_visibly", || {
        missing_file_fails_visibly(&mut rig)
    });
    timed("big_transfer_keeps_the_record_small", || {
        big_transfer_keeps_the_record_small(&mut rig)
    });
}

#[test]
fn transfers_through_force_command_with_internal_sftp() {
    require_e2e!("scp", "sftp", "rsync", "sha256sum");
    let mut rig = Rig::new("xfer-fc", Launch::ForceCommand);
    assert!(rig
        .sshd
        .effective_config(&format!(
            "user={},host=localhost,addr=127.0.0.1",
            rig.user.name()
        ))
        .lines()
        .any(|l| l == "subsystem sftp internal-sftp"));
    timed("smuggling_is_an_exec_channel", || {
        smuggling_is_an_exec_channel(&mut rig)
    });
    timed("sftp_batch_operations", || sftp_batch_operations(&mut rig));
    timed("scp_both_protocols_both_ways", || {
        scp_both_protocols_both_ways(&mut rig)
    });
    timed("scp_recursive", || scp_recursive(&mut rig));
    timed("rsync_both_ways", || rsync_both_ways(&mut rig));
    timed("missing_file_fails_visibly", || {
        missing_file_fails_visibly(&mut rig)
    });
}

#[test]
fn rsync_protected_args_through_the_login_shell_recorder() {
    require_e2e!("rsync", "mkfifo", "tee");
    let mut rig = Rig::new("xfer-rs-ls", Launch::LoginShell);
    rsync_protected_args_are_recorded(&mut rig);
}

#[test]
fn rsync_protected_args_through_force_command() {
    require_e2e!("rsync", "mkfifo", "tee");
    let mut rig = Rig::new("xfer-rs-fc", Launch::ForceCommand);
    rsync_protected_args_are_recorded(&mut rig);
}

#[test]
fn rsync_popt_file_through_the_login_shell_recorder() {
    require_e2e!("rsync");
    let mut rig = Rig::new("xfer-po-ls", Launch::LoginShell);
    rsync_ignores_the_users_popt_file(&mut rig);
}

#[test]
fn rsync_popt_file_through_force_command() {
    require_e2e!("rsync");
    let mut rig = Rig::new("xfer-po-fc", Launch::ForceCommand);
    rsync_ignores_the_users_popt_file(&mut rig);
}
