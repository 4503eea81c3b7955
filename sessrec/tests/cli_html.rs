//! The HTML export in headless Chromium: the recorded text renders through the inlined player,
//! and markup smuggled into recorded strings stays inert text.
//!
//! Needs `chromium` (Debian package) and the player (`scripts/fetch-player.sh`, which the test
//! runs when `vendor-player/` is missing and npm is installed). Without them the test is
//! skipped, unless SESSREC_E2E=required.

use std::path::{Path, PathBuf};
use std::process::Command;

use sessrec_core::testing::synth::{id_at, SynthSession};

fn required() -> bool {
    std::env::var("SESSREC_E2E").is_ok_and(|v| v == "required")
}

fn skip(why: &str) {
    assert!(!required(), "SESSREC_E2E=required but {why}");
    println!("skipped: {why}");
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn player_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SESSREC_PLAYER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("vendor-player"));
    if !dir.join("asciinema-player.min.js").is_file() {
        let script = repo().join("scripts/fetch-player.sh");
        let ok = Command::new("sh")
            .arg(&script)
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
    }
    Some(dir)
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn headless(browser: &str, profile: &Path, extra: &[&str], page: &Path) -> std::process::Output {
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=5000",
            "--window-size=1000,800",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap()
}

const HOSTILE: &str =
    "/tmp/</script><script>alert(1)</script><img src=x onerror=\"document.title='pwned'\">";

#[test]
fn html_export_renders_and_stays_inert() {
    let Some(browser) = chromium() else {
        return skip("chromium is not installed");
    };
    let Some(player) = player_dir() else {
        return skip("asciinema-player could not be fetched (npm)");
    };
    let base = std::env::temp_dir().join(format!(
        "srt-cli-html-{}-{}",
        std::process::id(),
        sessrec_core::time::monotonic_micros()
    ));
    let records = base.join("records");
    std::fs::create_dir_all(&records).unwrap();

    let id = id_at(1_764_000_000_000).unwrap();
    let mut s = SynthSession::login(&records, id, "srt-html", "srt-html", "192.0.2.8").unwrap();
    let mut ch = s
        .channel("exec", "pty", Some(&format!("cat '{HOSTILE}'")))
        .unwrap();
    ch.output(1000, b"\x1b[1mrecorded-html-text-42\x1b[0m\r\n")
        .unwrap();
    ch.output(2000, HOSTILE.as_bytes()).unwrap();
    ch.output(3000, b"\r\n").unwrap();
    s.finished(ch, 0).unwrap();
    s.logout().unwrap();

    let page = base.join("export.html");
    let out = Command::new(env!("CARGO_BIN_EXE_sessrec"))
        .arg("--dir")
        .arg(&records)
        .args(["export", &format!("{id}/1"), "--format", "html", "--player"])
        .arg(&player)
        .arg("--output")
        .arg(&page)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("default-src 'none'"));
    assert_eq!(
        html.matches("<script").count(),
        3,
        "data block, player, start-up script"
    );
    assert!(
        !html.contains("</script><script>alert"),
        "raw markup must not reach the page"
    );

    let dom = headless(browser, &base.join("profile-dom"), &["--dump-dom"], &page);
    let dom = String::from_utf8_lossy(&dom.stdout);
    // The player drew the recorded text into its terminal lines.
    let terminal = dom
        .split("class=\"ap-line\"")
        .skip(1)
        .collect::<Vec<_>>()
        .join("");
    assert!(
        terminal.contains("recorded-html-text-42"),
        "player did not render the recording:\n{}",
        &dom[..dom.len().min(3000)]
    );
    assert!(
        terminal.contains("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
        "hostile text should render as text"
    );
    assert_eq!(
        dom.matches("<script").count(),
        3,
        "no script element was injected"
    );
    assert!(!dom.contains("<title>pwned"), "an injected handler ran");

    let shot = base.join("shot.png");
    let arg = format!("--screenshot={}", shot.display());
    let o = headless(browser, &base.join("profile-shot"), &[&arg], &page);
    assert!(o.status.success(), "{o:?}");
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 1000)
            .unwrap_or(false),
        "no screenshot"
    );
    if std::env::var_os("SRT_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&base);
    }
}
