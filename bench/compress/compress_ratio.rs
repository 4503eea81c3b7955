//! How well `sessrec compress` shrinks real recorded sessions: four logins through a private
//! sshd with the PAM module and recorder — typing at a shell, `find /usr`, a full-screen
//! editor, random bytes — each compressed with `sessrec compress`, with the sizes of the same
//! files under `zstd -19` beside them for comparison. See README.md; never run by CI.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sessrec_tests::*;

const T: Duration = Duration::from_secs(300);

/// Bytes of a session's record files (plain or compressed), nothing else.
fn tree_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

fn zstd_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let out = Command::new("sh")
            .arg("-c")
            .arg("zcat -f \"$1\" | zstd -19 -q -c | wc -c")
            .arg("sh")
            .arg(e.path())
            .output()
            .expect("zstd");
        total += String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u64>()
            .unwrap_or(0);
    }
    total
}

fn main() {
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let builder = PrivateSshd::builder();
    let tree = RecordTree::new(&format!(
        "min_free_mb = 1\n[policy]\nservices = [\"{}\"]\n[recorder]\nshell = \"/bin/bash\"\n",
        builder.service()
    ));
    let user = TestUser::new("ratio", installed.shell());
    let sshd = builder.recorded_by(&installed, tree.config_path()).start();
    let kinds = ["typing", "find /usr", "editor (vi)", "random bytes"];
    for (n, kind) in kinds.iter().enumerate() {
        let mut term = sshd.login(&user).interactive();
        term.expect(r"\$ $", T);
        match n {
            0 => {
                // A person at a shell: key by key, with the pauses of typing.
                for cmd in [
                    "cd /etc",
                    "ls -l",
                    "cat hostname",
                    "grep -c . passwd",
                    "uname -a",
                    "df -h /",
                    "ps ax | head -20",
                    "ls /usr/share/doc | head -40",
                    "echo typing-done",
                ] {
                    for c in cmd.chars() {
                        term.send(c.to_string());
                        std::thread::sleep(Duration::from_millis(15));
                    }
                    term.send("\r");
                    std::thread::sleep(Duration::from_millis(300));
                }
                term.expect("typing-done\r\n", T);
            }
            1 => {
                term.send_line("find /usr; echo find-$((1+1))-done");
                term.expect("find-2-done", T);
            }
            2 => {
                term.send_line("vi /tmp/srt-ratio-$$.txt");
                std::thread::sleep(Duration::from_secs(1));
                term.send("i");
                for i in 0..25 {
                    term.send(format!(
                        "line {i} of a file edited full-screen, some text\r"
                    ));
                    std::thread::sleep(Duration::from_millis(150));
                }
                term.send("\x1b");
                std::thread::sleep(Duration::from_millis(500));
                for _ in 0..15 {
                    term.send("k");
                    std::thread::sleep(Duration::from_millis(100));
                }
                term.send("ddGp");
                std::thread::sleep(Duration::from_millis(500));
                term.send(":wq\r");
                term.expect(r"\$ $", T);
                term.send_line("rm -f /tmp/srt-ratio-$$.txt; echo editor-$((1+1))-done");
                term.expect("editor-2-done", T);
            }
            _ => {
                term.send_line(
                    "head -c 4000000 /dev/urandom; stty sane; echo; echo random-$((1+1))-done",
                );
                term.expect("random-2-done", T);
            }
        }
        term.send_line("exit");
        term.wait(T);
        let session = tree.wait_sessions(n + 1, T).remove(n);
        wait_last_event(&session.join("session.jsonl"), "logout", T);
        let before = tree_bytes(&session);
        let zstd = zstd_bytes(&session);
        std::thread::sleep(Duration::from_millis(1100));
        let out = Command::new(products().sessrec_cli())
            .arg("--dir")
            .arg(tree.record_dir())
            .args(["compress", "--older-than", "1s"])
            .env_remove("SESSREC_CONFIG")
            .output()
            .expect("sessrec compress");
        assert!(out.status.success(), "{out:?}");
        let after = tree_bytes(&session);
        let verify = Command::new(products().sessrec_cli())
            .arg("--dir")
            .arg(tree.record_dir())
            .args(["verify", session.file_name().unwrap().to_str().unwrap()])
            .env_remove("SESSREC_CONFIG")
            .output()
            .expect("sessrec verify");
        println!(
            "| {kind} | {before} | {after} | {:.1}:1 | {zstd} | {:.1}:1 | {} |",
            before as f64 / after as f64,
            before as f64 / zstd as f64,
            if verify.status.success() {
                "ok"
            } else {
                "FAILED"
            }
        );
    }
}
