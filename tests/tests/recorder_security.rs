//! From inside a recorded session the user can neither stop, trace nor read the recorder, read
//! any record, nor use the outer terminal behind the recorder's back; secrets typed at a real
//! sudo prompt are withheld.

mod recorder_support;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use recorder_support::*;
use sessrec_tests::*;

const SHELL_CONFIG: &str = "min_free_mb = 1\n[recorder]\nshell = \"/bin/bash\"\n";

fn status_field(pid: u32, name: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{name}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
}

#[test]
fn user_cannot_touch_the_recorder_its_records_or_the_outer_terminal() {
    require_e2e!();
    let rig = Rig::new("rec-sec", SHELL_CONFIG);
    let mut term = rig.login();
    term.expect("This session is recorded", WAIT);
    term.send_line("echo up-$((1+1))");
    term.expect("up-2", WAIT);

    // The recorder: the sessrec system user, no capabilities, no new privileges.
    let recorder = term.pid();
    let sessrec = nix::unistd::User::from_name(SESSREC_USER).unwrap().unwrap();
    let uid = sessrec.uid.as_raw().to_string();
    assert_eq!(
        status_field(recorder, "Uid")
            .split_whitespace()
            .collect::<Vec<_>>(),
        vec![uid.as_str(); 4]
    );
    assert_eq!(status_field(recorder, "CapEff"), "0000000000000000");
    assert_eq!(status_field(recorder, "CapPrm"), "0000000000000000");
    assert_eq!(status_field(recorder, "NoNewPrivs"), "1");

    // The outer terminal now belongs to root, 0600.
    let channel_dir = rig.session_dir();
    let channel = wait_channels(&channel_dir, 1, WAIT).remove(0);
    let start = event(&channel, "channel.start");
    let outer = PathBuf::from(start["outer_tty_path"].as_str().unwrap());
    let meta = std::fs::metadata(&outer).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600));

    term.send_line("kill -TERM $PPID; echo kill-rc=$?");
    term.expect("kill-rc=1", WAIT);
    term.send_line("kill -KILL $PPID; echo kill9-rc=$?");
    term.expect("kill9-rc=1", WAIT);
    term.send_line(
        "perl -e '$r = syscall(101, 16, int($ARGV[0]), 0, 0); print \"ptrace=$r errno=\", $!+0, \"\\n\"' $PPID",
    );
    term.expect("ptrace=-1 errno=1\r", WAIT);
    term.send_line("cat /proc/$PPID/environ >/dev/null 2>&1; echo environ-rc=$?");
    term.expect("environ-rc=1", WAIT);
    term.send_line(&format!(
        "cat {} >/dev/null 2>&1; echo record-rc=$?",
        channel.display()
    ));
    term.expect("record-rc=1", WAIT);
    term.send_line(&format!(
        "ls {} >/dev/null 2>&1; echo dir-rc=$?",
        channel_dir.display()
    ));
    term.expect("dir-rc=2", WAIT);
    term.send_line(&format!(
        "printf X >{} 2>/dev/null; echo write-rc=$?",
        outer.display()
    ));
    term.expect("write-rc=1", WAIT);
    term.send_line(&format!(
        "(cat {} >/dev/null 2>&1; echo bgcat-rc=$?) &",
        outer.display()
    ));
    term.expect("bgcat-rc=1", WAIT);
    term.send_line("echo typed-after-cat-$((7*6))");
    term.expect("typed-after-cat-42", WAIT);
    // The shell's own pty: the user's, group tty, 0620.
    term.send_line("stat -c 'pty=%U:%G:%a' $(tty)");
    term.expect(&format!("pty={}:tty:620", rig.user.name()), WAIT);
    term.send_line("exit");
    term.wait_code(0, WAIT);

    let channel = rig.finished_channel(1);
    let input = stream_text(&channel, Stream::Input);
    assert!(input.contains("echo typed-after-cat-$((7*6))\r"), "{input}");
    assert_eq!(event(&channel, "channel.end")["reason"], "exit");
}

#[test]
fn sudo_password_prompt_is_masked() {
    require_e2e!("sudo", "chpasswd");
    let rig = Rig::new("rec-sudo", SHELL_CONFIG);
    let password = "Sudo-Secret-4711";
    let mut chpasswd = std::process::Command::new("chpasswd")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    chpasswd
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}:{password}\n", rig.user.name()).as_bytes())
        .unwrap();
    assert!(chpasswd.wait().unwrap().success());
    let _sudoers = SudoersDropIn::new(&format!(
        "Defaults:{0} !lecture, timestamp_timeout=0\n{0} ALL=(ALL) ALL\n",
        rig.user.name()
    ));
    let mut term = rig.login();
    term.expect("This session is recorded", WAIT);
    term.send_line("sudo -k; sudo id -u; echo sudo-done-$((2*2))");
    term.expect("password for", WAIT);
    wait_password_mode(&inner_pty(&rig, 1));
    term.send_line(password);
    term.expect("\r\n0\r\n", WAIT);
    term.expect("sudo-done-4", WAIT);
    term.send_line("exit");
    term.wait_code(0, WAIT);
    let channel = rig.finished_channel(1);
    let input = stream_text(&channel, Stream::Input);
    assert!(
        !input.contains("Sudo-Secret"),
        "password recorded: {input:?}"
    );
    assert!(input.contains("sudo id -u"));
    let masked = events(&channel, "input.masked");
    assert_eq!(
        masked
            .iter()
            .map(|m| m["bytes"].as_u64().unwrap())
            .sum::<u64>(),
        password.len() as u64 + 1
    );
}
