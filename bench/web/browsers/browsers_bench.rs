//! Memory of the web console while 20 browsers follow 20 live recorded ssh sessions (see
//! README.md). Built on the end-to-end harness; run by hand, never by CI, never asserted.

#[path = "../../../tests/tests/web_support/console.rs"]
mod console;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sessrec_tests::*;

const T: Duration = Duration::from_secs(60);

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let browsers = arg("--browsers", 20) as usize;
    let seconds = arg("--seconds", 60);
    let reload = arg("--reload", 5);
    ensure_sessrec_user();
    let r = RecordedLogin::start("webbench");

    // Live sessions, each printing a line five times a second.
    let mut terms = Vec::new();
    for _ in 0..browsers {
        let mut t = r.sshd.login(&r.user).interactive();
        t.expect(r"\$ $", T);
        t.send_line("while :; do echo tick-$(date +%s%N); sleep 0.2; done");
        t.expect("tick-", T);
        terms.push(t);
    }
    let sessions: Vec<String> = r
        .tree
        .wait_sessions(browsers, T)
        .iter()
        .map(|s| session_id(s))
        .collect();

    let group = TestGroup::new("webbench");
    let auditor = TestUser::new("webbench", Path::new("/bin/sh"));
    auditor.add_to_group(group.name());
    console::set_password(auditor.name(), "Bench-aud1tor");
    let pam = PamService::new("auth required pam_unix.so\naccount required pam_unix.so\n");
    let web = console::start(
        r.tree.record_dir(),
        &["--pam-service", pam.name(), "--group", group.name()],
    );
    let pid = web.pid();
    std::thread::sleep(Duration::from_secs(1));
    let (idle_rss, _) = memory_kib(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let profiles = TempDir::new("web-bench-profiles");
    let phase = profiles.join("following");
    // Peaks while the browsers log in, and while they follow (once `phase` exists).
    let sampler = {
        let (stop, phase) = (stop.clone(), phase.clone());
        std::thread::spawn(move || {
            let (mut logging_in, mut following) = (0, 0);
            let mut samples = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let rss = memory_kib(pid).0;
                if phase.exists() {
                    following = following.max(rss);
                } else {
                    logging_in = logging_in.max(rss);
                }
                samples += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            (logging_in, following, samples)
        })
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/web/browsers/follow.py");
    let began = Instant::now();
    let out = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(&web.base)
        .args([auditor.name(), "Bench-aud1tor"])
        .arg(seconds.to_string())
        .arg(reload.to_string())
        .arg(profiles.join("p"))
        .arg(&phase)
        .args(&sessions)
        .output()
        .expect("python3 follow.py (python3-selenium, chromium-driver)");
    let elapsed = began.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (login_peak, follow_peak, samples) = sampler.join().unwrap();
    let (_, hwm) = memory_kib(pid);
    assert!(out.status.success(), "{out:?}");
    let followed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = followed.as_array().unwrap();
    let loads: u64 = rows.iter().map(|b| b["loads"].as_u64().unwrap_or(0)).sum();
    let watching = rows.iter().filter(|b| b["saw_output"] == true).count();
    let live = rows.iter().filter(|b| b["mode"] == "follow").count();
    let how = if live == rows.len() {
        "the console's live follow, server-sent events".to_string()
    } else {
        format!("player page reloaded every {reload} s; {live} by live follow")
    };
    let errors: Vec<&serde_json::Value> = rows.iter().filter(|b| !b["error"].is_null()).collect();
    let served = console::web_access_lines(r.tree.record_dir()).len();

    println!("CPU: {}", cpu_model());
    println!(
        "cores: {}; load average after: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!(
        "{browsers} browsers following {browsers} live sessions for {seconds} s ({}), {:.0} s in all",
        how,
        elapsed.as_secs_f64()
    );
    println!(
        "player pages loaded: {loads}; browsers that saw output appear while following: \
{watching}/{browsers}; access lines (pages, casts, follows served): {served}; browser errors: {}",
        errors.len()
    );
    for e in &errors {
        println!("  {e}");
    }
    println!(
        "console memory (RSS, {samples} samples every 100 ms): idle {:.1} MB; peak while the \
browsers log in {:.1} MB; peak while they follow {:.1} MB (target <= 64 MB); VmHWM {:.1} MB",
        idle_rss as f64 / 1024.0,
        login_peak as f64 / 1024.0,
        follow_peak as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    for mut t in terms {
        t.send(b"\x03");
        t.send_line("exit");
        t.wait(Duration::from_secs(10));
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default()
}
