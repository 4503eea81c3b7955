//! HTML exports in a real browser: the vendored asciinema-player and headless Chromium.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The asciinema-player for HTML exports: `$SESSREC_PLAYER_DIR`, or `vendor-player/` in the
/// source tree (fetched by scripts/test.sh, or here with scripts/fetch-player.sh when missing).
pub fn player_dir() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::var_os("SESSREC_PLAYER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("vendor-player"));
    if !dir.join("asciinema-player.min.js").is_file() {
        let status = Command::new("sh")
            .arg(repo.join("scripts/fetch-player.sh"))
            .arg(&dir)
            .status()
            .expect("run scripts/fetch-player.sh");
        assert!(
            status.success(),
            "scripts/fetch-player.sh failed (npm needed)"
        );
    }
    dir
}

/// Headless Chromium on `page` (with `fragment`, e.g. `#t=0:3`, or none) after its scripts
/// ran, with its own profile directory and the `extra` arguments (`--dump-dom`,
/// `--screenshot=...`).
pub fn chromium(profile: &Path, extra: &[&str], page: &Path, fragment: &str) -> Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=5000",
            "--window-size=1000,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}{fragment}", page.display()))
        .output()
        .expect("run chromium")
}
