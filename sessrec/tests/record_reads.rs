//! Record files are read through one function, `sessrec_core::stored::open` (or what is built
//! on it: `reader::lines`, `stored::read`, `summary::first_line_of`/`last_line_of`), so every
//! view reads plain and compressed files alike. A direct `File::open`/`fs::read` in the CLI or
//! the web console is allowed only in the files below, each with why it is not a record read.

use std::fs;
use std::path::{Path, PathBuf};

use regex::Regex;

const CRATES: &[&str] = &["sessrec/src", "sessrec-web/src"];

/// Files that open files directly, and why none of those is a record file read for its content.
const ALLOWED: &[(&str, &str)] = &[
    (
        "sessrec/src/capture_check.rs",
        "the kernel's /proc/net/packet (not records)",
    ),
    (
        "sessrec/src/catalog.rs",
        "its own catalog files, and directories opened to stat the files in them",
    ),
    (
        "sessrec/src/central.rs",
        "a host's anchors.log (syslog lines, not records)",
    ),
    (
        "sessrec/src/doctor.rs",
        "system configuration: PAM, sshd, sudoers, passwd",
    ),
    ("sessrec/src/export.rs", "its own spool file"),
    ("sessrec/src/hold.rs", "the holds file"),
    (
        "sessrec/src/hosts.rs",
        "heartbeat files, which are never compressed",
    ),
    ("sessrec/src/integrity.rs", "the --anchors file"),
    ("sessrec/src/verify.rs", "the --anchors file"),
    ("sessrec/src/html.rs", "the player's script and style sheet"),
    ("sessrec/src/live.rs", "/proc"),
    (
        "sessrec/src/receive.rs",
        "the tail of a plain file it appends to (compressed ones through stored)",
    ),
    (
        "sessrec/src/verdict_cache.rs",
        "its cache entry, and raw bytes as a fingerprint of a stored file",
    ),
    ("sessrec-web/src/server.rs", "the player's files"),
    (
        "sessrec-web/src/config.rs",
        "its own configuration, web.toml",
    ),
];

/// Where a file's test module starts.
const TEST_MODULE: &str = "#[cfg(test)]\nmod ";

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn record_files_are_opened_only_through_stored() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let direct =
        Regex::new(r"(^|[^A-Za-z_])(File::open\(|fs::read\(|fs::read_to_string\(|\.read\(true\))")
            .unwrap();
    let mut offenders = Vec::new();
    let mut used = Vec::new();
    for krate in CRATES {
        let mut files = Vec::new();
        rust_files(&workspace.join(krate), &mut files);
        for file in files {
            let text = fs::read_to_string(&file).unwrap();
            let code = text.split(TEST_MODULE).next().unwrap_or("");
            let rel = file
                .strip_prefix(workspace)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let hits: Vec<usize> = code
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim_start().starts_with("//") && direct.is_match(l))
                .map(|(i, _)| i + 1)
                .collect();
            if hits.is_empty() {
                continue;
            }
            if ALLOWED.iter().any(|(f, _)| *f == rel) {
                used.push(rel);
            } else {
                offenders.push(format!("{rel}:{hits:?}"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "read record files with sessrec_core::stored::open (or say why not in ALLOWED): {offenders:?}"
    );
    for (f, _) in ALLOWED {
        assert!(
            used.iter().any(|u| u == f),
            "{f} no longer opens files directly: remove it from ALLOWED"
        );
    }
}
