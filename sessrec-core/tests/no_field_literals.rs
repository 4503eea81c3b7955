//! Record field names are spelled in one place, `sessrec_core::schema`: a string literal that
//! names a field where a record is read or written anywhere else is a field the types do not
//! guard (a rename there compiles and silently breaks a join).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use regex::Regex;
use sessrec_core::schema::{known_types, HEADER_KEYS};

/// Source trees scanned (tests and benches are not: they check records, not write them).
const CRATES: &[&str] = &[
    "sessrec-core/src",
    "sessrec-shell/src",
    "pam_sessrec/src",
    "sudo-iolog-import/src",
    "audit-import/src",
    "sessrec/src",
    "sessrec-web/src",
];

/// Where field names are defined, and files that read other formats with keys of the same
/// names (sudo's log.json), or hold only tests.
const EXEMPT: &[&str] = &[
    "sessrec-core/src/schema/",
    "sudo-iolog-import/src/iolog/",
    "audit-import/src/auditlog/",
    "sessrec-shell/src/transfer/fixtures.rs",
    "sessrec-shell/src/transfer/fuzz.rs",
    "sessrec-shell/src/transfer/live_tests.rs",
];

/// Files that still name fields by string, each with why. The test fails when one of them no
/// longer does, so the list only shrinks.
const PENDING: &[(&str, &str)] = &[];

/// Calls whose string argument is a record key.
const KEY_CALLS: &str = r#"(?:\.get|\.insert|\.remove|\.contains_key|\.set|\.set_path|\.set_text|\.set_wire|\.unset|\.event|\.str|\.u64|\.field|get_str\([^,()]*,)\(?\s*"([a-z][a-z0-9_.]*)""#;

/// Where a file's test module starts.
const TEST_MODULE: &str = "#[cfg(test)]\nmod ";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds the crate")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Record field names and event types.
fn record_names() -> BTreeSet<&'static str> {
    let mut names: BTreeSet<&str> = HEADER_KEYS.iter().copied().collect();
    for (kind, fields) in known_types() {
        names.insert(kind);
        names.extend(fields.iter().copied());
    }
    names
}

/// Field literals per file (code before its `#[cfg(test)]` module only: a `#[cfg(test)]` on
/// an item inside the code does not end it).
fn field_literals() -> BTreeMap<String, BTreeSet<String>> {
    let root = workspace();
    let names = record_names();
    let call = Regex::new(KEY_CALLS).expect("pattern");
    let mut found = BTreeMap::new();
    for dir in CRATES {
        let mut files = Vec::new();
        rust_files(&root.join(dir), &mut files);
        for path in files {
            let rel = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            if EXEMPT.iter().any(|e| rel.starts_with(e)) {
                continue;
            }
            let text = fs::read_to_string(&path).unwrap_or_default();
            let code = text.split(TEST_MODULE).next().unwrap_or_default();
            let hits: BTreeSet<String> = call
                .captures_iter(code)
                .filter_map(|c| c.get(1))
                .map(|m| m.as_str())
                .filter(|name| names.contains(name))
                .map(str::to_string)
                .collect();
            if !hits.is_empty() {
                found.insert(rel, hits);
            }
        }
    }
    found
}

#[test]
fn no_string_literal_names_a_record_field_outside_the_schema() {
    let pending: BTreeSet<&str> = PENDING.iter().map(|(f, _)| *f).collect();
    let unexpected: Vec<String> = field_literals()
        .into_iter()
        .filter(|(file, _)| !pending.contains(file.as_str()))
        .map(|(file, names)| format!("{file}: {names:?}"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "record fields named by string (use the types or the names in sessrec_core::schema):\n{}",
        unexpected.join("\n")
    );
}

#[test]
fn the_pending_list_only_names_files_that_still_need_it() {
    let found = field_literals();
    let done: Vec<&str> = PENDING
        .iter()
        .map(|(f, _)| *f)
        .filter(|f| !found.contains_key(*f))
        .collect();
    assert!(done.is_empty(), "no longer pending, remove: {done:?}");
}

#[test]
fn the_scan_sees_a_field_literal() {
    let call = Regex::new(KEY_CALLS).expect("pattern");
    for code in [
        r#"m.get("pty")"#,
        r#"f.insert("exit_code".into(), x)"#,
        r#"get_str(&value, "runuser")"#,
        r#"ev.set("path", p)"#,
    ] {
        assert!(call.is_match(code), "{code}");
    }
}

#[test]
fn a_test_only_item_does_not_end_the_scanned_code() {
    let text = "#[cfg(test)]\nfn helper() {}\nfn f() { ev.set(\"path\", p); }\n#[cfg(test)]\nmod tests {}\n";
    let code = text.split(TEST_MODULE).next().unwrap_or_default();
    let call = Regex::new(KEY_CALLS).expect("pattern");
    assert!(call.is_match(code), "{code}");
}
