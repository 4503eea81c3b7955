//! Records of every schema version read the same through the CLI: a tree the recorder wrote
//! before the compact I/O lines (schema 1, frame lists) and one written after (schema 2), both
//! by the real recorder typing the same command into `/bin/sh -i`, are verified, searched,
//! shown and exported alike.

use std::path::{Path, PathBuf};
use std::process::Output;

use sessrec_core::testing::TempDir;

mod support;
use support::sessrec;

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn trees() -> [(PathBuf, &'static str, u64); 2] {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    [
        (
            fixtures.join("schema-1"),
            "01a2526c-7efe-7d29-9ff7-4db3e5594d45",
            1,
        ),
        (
            fixtures.join("schema-2"),
            "01a252ac-5758-7080-9531-39232ab0047b",
            2,
        ),
    ]
}

/// A copy of a fixture tree: reading records writes the access log into the tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn both_schemas_verify_search_show_and_export() {
    for (fixture, id, version) in trees() {
        let tmp = TempDir::new("schemas");
        let dir = tmp.join("records");
        copy_tree(&fixture, &dir);
        let channel = dir.join("2026/12/07").join(id).join("channel-1.jsonl");
        let first_io = std::fs::read_to_string(&channel)
            .unwrap()
            .lines()
            .find(|l| l.contains("\"type\":\"io\""))
            .unwrap()
            .to_string();
        assert!(
            first_io.starts_with(&format!("{{\"v\":{version},")),
            "{first_io}"
        );

        let verify = sessrec(&dir, &["verify", id]);
        assert!(
            verify.status.success(),
            "schema {version}: {}",
            text(&verify)
        );
        assert!(text(&verify).starts_with("OK"), "{}", text(&verify));

        let search = sessrec(&dir, &["search", "quick brown"]);
        let found = text(&search);
        assert!(found.contains(" input "), "schema {version}: {found}");
        assert!(found.contains(" output "), "schema {version}: {found}");

        let show = text(&sessrec(&dir, &["show", id]));
        assert!(
            show.contains("typed          $ echo the quick brown fox; ls /tmp >/dev/null"),
            "schema {version}: {show}"
        );

        let export = sessrec(&dir, &["export", &format!("{id}/1"), "--format", "text"]);
        let shown = text(&export);
        assert!(
            shown.contains("echo the quick brown fox; ls /tmp >/dev/null\nthe quick brown fox\n"),
            "schema {version}: {shown}"
        );
    }
}
