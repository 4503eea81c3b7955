//! The per-user daily record budget through a real sshd: one user's output past the budget is
//! sampled (mid-channel and from the start of later channels) or their new channels refused,
//! while another user keeps being recorded in full.

use std::path::Path;
use std::time::Duration;

use sessrec_tests::*;

const T: Duration = Duration::from_secs(60);

/// A recorded sshd whose config gives each user `budget_mb` per day with `action`.
fn budget_login(tag: &str, budget_mb: u64, action: &str) -> RecordedLogin {
    let login = RecordedLogin::start(tag);
    login.tree.write_config(&format!(
        "[policy]\nservices = [\"{}\"]\n[recorder]\nshell = \"/bin/bash\"\n\
         [budget]\nuser_mb_per_day = {budget_mb}\naction = \"{action}\"\n",
        login.sshd.service()
    ));
    login
}

fn channel_of_session_with(tree: &RecordTree, needle: &str) -> std::path::PathBuf {
    for session in tree.sessions() {
        for channel in channel_files(&session) {
            let start = only_event(&channel, "channel.start");
            if start["command"]
                .as_str()
                .is_some_and(|c| c.contains(needle))
            {
                wait_last_event(&channel, "channel.end", T);
                return channel;
            }
        }
    }
    panic!("no channel ran {needle:?}:\n{}", tree.listing());
}

/// About 4 MB of base64 over about 4 s, so the budget is checked while it streams.
const STREAM: &str =
    "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do head -c 250000 /dev/urandom | base64; sleep 0.3; done; echo stream-$((4+4))";

#[test]
fn past_the_budget_output_is_sampled_and_other_users_are_untouched() {
    require_e2e!();
    let r = budget_login("budget-cap", 1, "cap");
    let other = TestUser::new("budget-other", r.installed.shell());

    let out = r.sshd.login(&r.user).exec(STREAM, b"");
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("stream-8\n"));
    let first = channel_of_session_with(&r.tree, "stream-$((4+4))");
    let cut = events(&first, "truncated");
    assert!(
        cut.iter().any(|e| e["reason"] == "user_budget"),
        "the streaming channel was not capped by the budget: {cut:?}"
    );
    // Sampling after the cut keeps the record well below what was shown.
    let size = std::fs::metadata(&first).unwrap().len();
    assert!(size < 3_000_000, "record of {size} bytes");

    // The next channel of the same user is sampled from its start, with an alert.
    let out = r.sshd.login(&r.user).exec(
        "head -c 3000000 /dev/zero | base64 | wc -c; echo second-$((1+1))",
        b"",
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("second-2"),
        "{out:?}"
    );
    let second = channel_of_session_with(&r.tree, "second-$((1+1))");
    let start = only_event(&second, "channel.start");
    assert_eq!(start["output_sampled"], "user_budget", "{start:?}");
    assert!(
        start["user_bytes_today"].as_u64().unwrap() >= 1 << 20,
        "{start:?}"
    );
    assert_chain_ok(&second);
    // Input is never sampled: a command typed past the budget is in the record whole.
    let out = r
        .sshd
        .login(&r.user)
        .exec("cat >/dev/null", &vec![b'k'; 200_000]);
    assert!(out.status.success(), "{out:?}");
    let third = channel_of_session_with(&r.tree, "cat >/dev/null");
    assert_eq!(stream_bytes(&third, Stream::Input).len(), 200_000);

    // Another user on the same host is recorded in full.
    let out = r.sshd.login(&other).exec(
        "head -c 300000 /dev/zero | base64 | head -c 200000; echo; echo other-$((2+3))",
        b"",
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("other-5"),
        "{out:?}"
    );
    let theirs = channel_of_session_with(&r.tree, "other-$((2+3))");
    let start = only_event(&theirs, "channel.start");
    assert!(start.get("output_sampled").is_none(), "{start:?}");
    assert!(events(&theirs, "truncated").is_empty());
    assert!(stream_bytes(&theirs, Stream::Output).len() > 200_000);
}

#[test]
fn with_action_refuse_new_channels_of_that_user_do_not_run() {
    require_e2e!();
    let r = budget_login("budget-refuse", 1, "refuse");
    let marker = Path::new("/tmp").join(unique_name("budget-marker"));
    let out = r.sshd.login(&r.user).exec(STREAM, b"");
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("stream-8\n"));

    let out = r.sshd.login(&r.user).exec(
        &format!("touch {}; echo refused-$((3+3))", marker.display()),
        b"",
    );
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    assert!(!marker.exists(), "the refused command ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("record budget"), "{stderr}");
    let refused = channel_of_session_with(&r.tree, "refused-$((3+3))");
    assert_eq!(only_event(&refused, "channel.end")["reason"], "refused");
    assert_chain_ok(&refused);
}
