//! The `sessrec` CLI on a recorded session with real sudo (log_output) imported by
//! sudo-iolog-import: the sudo session appears in `list`, in the `show` timeline with its
//! run-as user and command, in `play` after its channel, in `search`, and passes `verify`.

use std::process::Command;
use std::time::Duration;

use sessrec_tests::run_sessrec as sessrec;
use sessrec_tests::*;

const T: Duration = Duration::from_secs(30);

#[test]
fn sudo_sessions_in_the_cli() {
    require_e2e!("sudo");
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let tree = RecordTree::new("");
    let user = TestUser::new("clisudo", installed.shell());
    let iolog = TempDir::new("cli-iolog");
    let _dropin = SudoersDropIn::new(&format!(
        "Defaults:{u} log_output, log_input, use_pty, iolog_dir={d}\n\
         Defaults:{u} env_keep += \"SESSREC_SESSION\"\n\
         {u} ALL=(ALL) NOPASSWD: ALL\n",
        u = user.name(),
        d = iolog.path().display()
    ));
    let state = tree.dir().join("sudo-import.state");
    tree.write_config(&format!(
        "[recorder]\nshell = \"/bin/bash\"\n[sudo]\niolog_dirs = [\"{}\"]\nstate_file = \"{}\"\nsettle_minutes = 0\n",
        iolog.path().display(),
        state.display()
    ));
    let sshd = PrivateSshd::builder()
        .recorded_by(&installed, tree.config_path())
        .start();

    let mut term = sshd.login(&user).interactive();
    term.expect(r"\$ ", T);
    term.send_line("echo ready-$((40+2))");
    term.expect("ready-42", T);
    // At the prompt again, so the next line is typed to the shell, not ahead of it.
    term.expect(r"\$ ", T);
    term.send_line("sudo sh -c 'echo as-root-$((6*7)); id -un'");
    term.expect("as-root-42", T);
    term.expect(r"\$ ", T);
    term.send_line("exit");
    term.wait(T);
    let session = tree.wait_sessions(1, T).remove(0);
    wait_last_event(&session.join("session.jsonl"), "logout", T);
    let out = Command::new(products().sudo_iolog_import())
        .args(["--once", "--json"])
        .env("SESSREC_CONFIG", tree.config_path())
        .output()
        .expect("run sudo-iolog-import");
    assert!(out.status.success(), "{out:?}");

    let dir = tree.record_dir();
    let id = session.file_name().unwrap().to_string_lossy().into_owned();
    let o = sessrec(dir, &["list", "--json"]);
    let s: serde_json::Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(s["sudo"], 1, "{s}\n{}", tree.listing());

    let o = sessrec(dir, &["show", &id]);
    let shown = stdout(&o);
    assert!(
        shown.contains("sudo.start") && shown.contains("sudo as root:"),
        "{shown}"
    );
    assert!(shown.contains("as-root-$((6*7))"), "{shown}");
    assert!(
        shown.contains("$ sudo sh -c 'echo as-root-$((6*7)); id -un'"),
        "{shown}"
    );
    // The sudo session comes after the command that started it.
    let typed = shown.find("$ sudo sh -c").unwrap();
    let sudo = shown.find("sudo.start").unwrap();
    assert!(typed < sudo, "{shown}");

    let o = sessrec(dir, &["play", &id, "--speed", "1000"]);
    let played = stdout(&o);
    let channel_at = played.find("── channel-1").expect("channel banner");
    let sudo_at = played.find("── sudo-").expect("sudo banner");
    assert!(channel_at < sudo_at, "{played}");
    assert!(played[sudo_at..].contains("as-root-42"), "{played}");

    let o = sessrec(dir, &["search", "as-root-42", "--output", "--json"]);
    let files: Vec<String> = stdout(&o)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["file"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(files.iter().any(|f| f.starts_with("sudo-")), "{files:?}");
    assert!(files.iter().any(|f| f.starts_with("channel-")), "{files:?}");

    let o = sessrec(dir, &["verify", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}
