//! Session behaviour of sessrec-shell: idle timeout with a warning, tickets, job control inside
//! the recorded pty, termination by root.

mod recorder_support;

use std::process::Stdio;

use recorder_support::*;
use sessrec_tests::*;

#[test]
fn idle_channel_is_warned_then_ended() {
    require_e2e!();
    let rig = Rig::new(
        "rec-idle",
        "min_free_mb = 1\n[recorder]\nshell = \"/bin/bash\"\nidle_timeout_s = 3\nidle_warning_s = 2\n",
    );
    let mut term = rig.login();
    term.expect("This session is recorded", WAIT);
    term.send_line("echo active-$((2+2))");
    term.expect("active-4", WAIT);
    term.expect("idle and will be closed", WAIT);
    term.expect("idle timeout", WAIT);
    term.wait(WAIT);
    let channel = rig.finished_channel(1);
    assert_eq!(event(&channel, "channel.end")["reason"], "idle");
    assert!(events(&channel, "notice")
        .iter()
        .any(|n| n["idle_warning"] == true));
}

const TICKET_CONFIG: &str = "min_free_mb = 1\n[recorder]\nshell = \"/bin/bash\"\n[ticket]\nmode = \"required\"\npattern = \"^(INC|CHG)-[0-9]+$\"\n";

#[test]
fn required_ticket_is_asked_for_and_recorded() {
    require_e2e!();
    let rig = Rig::new("rec-tkt", TICKET_CONFIG);
    let mut term = rig.login();
    term.expect("Ticket", WAIT);
    term.send_line("CHG-4711");
    term.expect("This session is recorded", WAIT);
    term.send_line("exit");
    term.wait_code(0, WAIT);
    let channel = rig.finished_channel(1);
    assert_eq!(event(&channel, "channel.start")["ticket"], "CHG-4711");
}

#[test]
fn exec_channels_take_the_ticket_from_the_environment() {
    require_e2e!();
    let rig = Rig::new("rec-tke", TICKET_CONFIG);
    let out = rig
        .command("sessrec-shell", &["-c", "echo with-ticket"])
        .env("SESSREC_TICKET", "INC-17")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "with-ticket\n");
    let channel = rig.finished_channel(1);
    assert_eq!(event(&channel, "channel.start")["ticket"], "INC-17");

    let missing = rig
        .command("sessrec-shell", &["-c", "echo no-ticket"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ne!(missing.status.code(), Some(0));
    assert!(missing.stdout.is_empty());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ticket is required"));

    let wrong = rig
        .command("sessrec-shell", &["-c", "echo bad-ticket"])
        .env("SESSREC_TICKET", "please")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(wrong.stdout.is_empty());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("does not match"));
}

#[test]
fn job_control_works_inside_the_recorded_pty() {
    require_e2e!();
    let rig = Rig::new(
        "rec-job",
        "min_free_mb = 1\n[recorder]\nshell = \"/bin/bash\"\n",
    );
    let mut term = rig.login();
    term.expect("This session is recorded", WAIT);
    // Each key meant for the job is typed once the job holds the terminal: bash gives it the
    // terminal some time after echoing the command (`fg` included), and a Ctrl-C that comes
    // before goes to bash instead.
    term.send_line("sleep 317");
    wait_foreground(term.pid(), &["sleep", "317"], WAIT);
    term.send([0x1a]); // Ctrl-Z
    term.expect("Stopped", WAIT);
    term.send_line("jobs; echo jobs-$((5+5))");
    term.expect("jobs-10", WAIT);
    term.send_line("fg");
    wait_foreground(term.pid(), &["sleep", "317"], WAIT);
    term.send([0x03]); // Ctrl-C
    term.send_line("echo back-$((3+4))");
    term.expect("back-7", WAIT);
    term.send_line("exit");
    term.wait_code(0, WAIT);
    let channel = rig.finished_channel(1);
    let input = stream_bytes(&channel, Stream::Input);
    assert!(input.contains(&0x1a) && input.contains(&0x03));
    let output = stream_text(&channel, Stream::Output);
    assert!(output.contains("Stopped") && output.contains("back-7"));
}

#[test]
fn sigterm_from_root_ends_the_channel_with_a_final_record() {
    require_e2e!();
    let rig = Rig::new(
        "rec-term",
        "min_free_mb = 1\n[recorder]\nshell = \"/bin/bash\"\n",
    );
    let mut term = rig.login();
    term.expect("This session is recorded", WAIT);
    term.send_line("echo alive-$((1+1))");
    term.expect("alive-2", WAIT);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(term.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    term.expect("ended by the administrator", WAIT);
    term.wait(WAIT);
    let channel = rig.finished_channel(1);
    assert_eq!(event(&channel, "channel.end")["reason"], "terminated");
}
