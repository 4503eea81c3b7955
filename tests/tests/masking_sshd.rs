//! Input masking through a real sshd (`ssh -tt`, pam_sessrec, the recorder as login shell or
//! as `ForceCommand`): masking keeps real passwords out of the record (`read -s`, sudo's three
//! tries) but is no off switch. `stty -echo; PS1='Password: ' exec dash -i` hides at most one
//! line; a prompt that toggles echo at every line gets a few lines, then masking is suspended
//! for the channel (`masking_suspended`); a withheld line longer than the bound is recorded
//! past it. `sessrec search` finds the commands.

mod recorder_support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use recorder_support::wait_password_mode;
use sessrec_tests::run_sessrec;
use sessrec_tests::*;

const T: Duration = Duration::from_secs(30);
/// bash's prompt, possibly followed by an erase-line sequence.
const SHELL_PROMPT: &str = r"\$ (\x1b\[K)?$";

/// Fields drop in order: sshd (and its sessions) first, the installation last.
struct Rig {
    sshd: PrivateSshd,
    user: TestUser,
    tree: RecordTree,
    _installed: Installed,
}

impl Rig {
    fn new(tag: &str, launch: Launch) -> Rig {
        let RecordedLogin {
            tree,
            user,
            sshd,
            installed,
        } = RecordedLogin::launched(tag, launch, "", |b| b);
        Rig {
            sshd,
            user,
            tree,
            _installed: installed,
        }
    }

    fn login(&self) -> PtySession {
        let mut term = self.sshd.login(&self.user).interactive();
        term.expect(SHELL_PROMPT, T);
        term
    }

    /// The pty the recorder gave the shell (from the live record's `channel.start`).
    fn inner_pty(&self) -> PathBuf {
        let mut pty = None;
        wait_until("channel.start of the login channel", T, || {
            pty = self
                .tree
                .sessions()
                .iter()
                .flat_map(|s| channel_files(s))
                .filter_map(|c| {
                    read_lines(&c)
                        .into_iter()
                        .find(|l| l.kind() == "channel.start")
                        .and_then(|l| l.value["pty"].as_str().map(PathBuf::from))
                })
                .next();
            pty.is_some()
        });
        pty.unwrap()
    }

    /// The one channel, once it has ended, with its chain checked.
    fn finished_channel(&self) -> PathBuf {
        let session = self.tree.wait_sessions(1, T).remove(0);
        let channel = wait_channels(&session, 1, T).remove(0);
        wait_last_event(&channel, "channel.end", T);
        assert_chain_ok(&channel);
        channel
    }

    fn search(&self, pattern: &str) -> (Option<i32>, String) {
        let o = run_sessrec(self.tree.record_dir(), &["search", pattern]);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    }
}

fn set_password(user: &TestUser, password: &str) {
    let mut chpasswd = std::process::Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .expect("chpasswd");
    chpasswd
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}:{password}\n", user.name()).as_bytes())
        .unwrap();
    assert!(chpasswd.wait().unwrap().success());
}

/// Runs the reported attack on a logged-in bash: with echo off and a password-like prompt,
/// every command used to be withheld. Commands print their text reversed, so that the output
/// does not contain what `search` looks for in the input.
fn echo_off_prompt_attack(term: &mut PtySession) {
    term.send_line("stty -echo; PS1='Password: ' exec dash -i");
    // With echo off the line is not shown: dash's prompt follows the shell's (on a new line or
    // not, depending on TERM and the shell's bracketed-paste sequences).
    term.expect(r"Password: $", T);
    for n in 1..=4 {
        term.send_line(&format!("echo hidden-cmd-{n} | rev"));
        term.expect(&format!("{n}-dmc-neddih\r\nPassword: $"), T);
    }
    term.send_line("exit");
    term.wait(T);
}

/// What the record must show after [`echo_off_prompt_attack`].
fn assert_attack_recorded(rig: &Rig, channel: &Path) {
    let input = stream_text(channel, Stream::Input);
    for n in 2..=4 {
        assert!(
            input.contains(&format!("echo hidden-cmd-{n} | rev")),
            "command {n} not recorded: {input:?}\n{:#?}",
            events(channel, "input.masked")
        );
        let (code, found) = rig.search(&format!("hidden-cmd-{n}"));
        assert_eq!(code, Some(0), "search hidden-cmd-{n}: {found}");
        assert!(found.contains(&format!("hidden-cmd-{n}")), "{found}");
    }
    // At most the first line after the switch into password mode was withheld.
    let hidden: Vec<_> = events(channel, "input.masked")
        .into_iter()
        .filter(|m| m["bytes"] == "echo hidden-cmd-1 | rev\r".len())
        .collect();
    assert!(hidden.len() <= 1, "{hidden:?}");
}

/// `read -s` at a password prompt: the secret stays out of the record.
fn read_secret(rig: &Rig, term: &mut PtySession, secret: &str) {
    term.send_line("read -s -p 'Pass''word: ' pw; echo; echo got-${#pw}-chars");
    term.expect("Password: ", T);
    wait_password_mode(&rig.inner_pty());
    term.send_line(secret);
    term.expect(&format!("got-{}-chars", secret.len()), T);
    term.expect(SHELL_PROMPT, T);
}

#[test]
fn login_shell_echo_off_prompt_cannot_hide_commands_and_passwords_stay_masked() {
    require_e2e!("sudo", "chpasswd", "dash", "rev");
    let rig = Rig::new("mask-ls", Launch::LoginShell);
    let password = "Sudo-Secret-4711";
    set_password(&rig.user, password);
    let _sudoers = SudoersDropIn::new(&format!(
        "Defaults:{0} !lecture, timestamp_timeout=0, passwd_tries=3\n{0} ALL=(ALL) ALL\n",
        rig.user.name()
    ));
    let mut term = rig.login();
    read_secret(&rig, &mut term, "read-secret-0815");
    // sudo's three tries: two wrong passwords, then the right one.
    term.send_line("sudo -k; sudo id -u | rev; echo sudo-done-$((2*2))");
    for wrong in ["Wrong-Guess-One", "Wrong-Guess-Two"] {
        term.expect("password for", T);
        wait_password_mode(&rig.inner_pty());
        term.send_line(wrong);
        term.expect("Sorry, try again", T);
    }
    term.expect("password for", T);
    wait_password_mode(&rig.inner_pty());
    term.send_line(password);
    term.expect("\r\n0\r\n", T);
    term.expect("sudo-done-4", T);
    term.expect(SHELL_PROMPT, T);
    echo_off_prompt_attack(&mut term);

    let channel = rig.finished_channel();
    assert_attack_recorded(&rig, &channel);
    let input = stream_text(&channel, Stream::Input);
    for secret in ["read-secret", "Sudo-Secret", "Wrong-Guess"] {
        assert!(!input.contains(secret), "{secret} recorded: {input:?}");
        assert_eq!(rig.search(secret).0, Some(1), "{secret} found by search");
    }
    assert!(input.contains("sudo id -u | rev"), "{input:?}");
    let masked = events(&channel, "input.masked");
    let bytes: Vec<u64> = masked
        .iter()
        .map(|m| m["bytes"].as_u64().unwrap())
        .collect();
    // read -s, then sudo's three tries, each one line of its own.
    for len in [17, 16, 16, 17] {
        assert!(bytes.contains(&len), "{len} not among {bytes:?}");
    }
    assert!(events(&channel, "masking_suspended").is_empty());
}

#[test]
fn force_command_echo_off_prompts_cannot_hide_commands() {
    require_e2e!("dash", "rev");
    let rig = Rig::new("mask-fc", Launch::ForceCommand);
    let mut term = rig.login();
    read_secret(&rig, &mut term, "fc-secret-4242");
    // Sibling: bash with a prompt that switches echo off each time it is shown.
    term.send_line("PS1='$(stty -echo)Password: '");
    term.expect(r"Password: $", T);
    for n in 1..=3 {
        term.send_line(&format!("echo ps1-cmd-{n} | rev"));
        term.expect(&format!("{n}-dmc-1sp\r\n(\x1b\\[\\?2004h)?Password: $"), T);
    }
    echo_off_prompt_attack(&mut term);

    let channel = rig.finished_channel();
    assert_attack_recorded(&rig, &channel);
    let input = stream_text(&channel, Stream::Input);
    assert!(!input.contains("fc-secret"), "{input:?}");
    assert_eq!(rig.search("fc-secret").0, Some(1));
    for n in 2..=3 {
        assert!(
            input.contains(&format!("echo ps1-cmd-{n} | rev")),
            "ps1 command {n} not recorded: {input:?}"
        );
    }
}

/// A prompt that switches echo on and off around every line arms masking afresh each time:
/// after `mask_arm_limit` (5) lines within a minute, masking stops for the channel.
#[test]
fn rearming_at_every_line_suspends_masking_for_the_channel() {
    require_e2e!("rev");
    let rig = Rig::new("mask-rl", Launch::LoginShell);
    let mut term = rig.login();
    term.send_line(
        "while :; do stty echo; echo toggle-ready; sleep 0.3; stty -echo; printf 'Pass''word: '; read -r l || break; eval \"$l\"; done",
    );
    for n in 1..=8 {
        term.expect("toggle-ready\r\nPassword: $", T);
        term.send_line(&format!("echo toggled-cmd-{n} | rev"));
        term.expect(&format!("{n}-dmc-delggot\r\n"), T);
    }
    term.expect("toggle-ready\r\nPassword: $", T);
    term.send_line("exit");
    term.wait(T);

    let channel = rig.finished_channel();
    let suspended = events(&channel, "masking_suspended");
    assert_eq!(suspended.len(), 1, "{suspended:?}");
    assert_eq!(suspended[0]["armings"], 6, "{suspended:?}");
    assert_eq!(suspended[0]["window_s"], 60, "{suspended:?}");
    assert!(events(&channel, "input.masked").len() <= 5);
    let input = stream_text(&channel, Stream::Input);
    for n in 6..=8 {
        assert!(
            input.contains(&format!("echo toggled-cmd-{n} | rev")),
            "{n}: {input:?}"
        );
        assert_eq!(rig.search(&format!("toggled-cmd-{n}")).0, Some(0));
    }
    assert!(input.contains("exit"), "{input:?}");
}

/// A withheld line is bounded: past `mask_line_max_bytes` (256) the line is recorded.
#[test]
fn a_long_withheld_line_is_recorded_past_the_bound() {
    require_e2e!("rev");
    let rig = Rig::new("mask-long", Launch::LoginShell);
    let mut term = rig.login();
    term.send_line("read -s x; eval \"$x\"");
    wait_password_mode(&rig.inner_pty());
    let line = format!("true {}; echo long-tail-cmd | rev", "x".repeat(300));
    term.send_line(&line);
    term.expect("dmc-liat-gnol", T);
    term.expect(SHELL_PROMPT, T);
    term.send_line("exit");
    term.wait(T);

    let channel = rig.finished_channel();
    let masked = events(&channel, "input.masked");
    let withheld: u64 = masked.iter().map(|m| m["bytes"].as_u64().unwrap()).sum();
    assert_eq!(withheld, 256, "{masked:?}");
    let input = stream_text(&channel, Stream::Input);
    assert!(input.contains("; echo long-tail-cmd | rev\r"), "{input:?}");
    assert!(read_lines(&channel)
        .iter()
        .any(|l| l.kind() == "io" && l.value.get("mask_limit") == Some(&true.into())));
    assert_eq!(rig.search("long-tail-cmd").0, Some(0));
}
