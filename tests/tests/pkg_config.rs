//! The configuration files the package ships: `/etc/sessrec/sessrec.toml` lists every key the
//! program accepts, each commented-out value is the built-in default, and the file as shipped
//! records only the example group; the sudoers drop-in passes `visudo -c`.

mod pkg_support;

use std::collections::BTreeSet;
use std::process::Command;

use pkg_support::*;
use sessrec_core::config::Config;
use sessrec_tests::util::output_with_timeout;
use sessrec_tests::*;

/// `#key = value` (a commented default) or `key = value`, by table: ("policy", "users").
fn keys_by_table(text: &str) -> BTreeSet<(String, String)> {
    let mut table = String::new();
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = name.to_string();
            continue;
        }
        let body = line.strip_prefix('#').unwrap_or(line);
        if let Some((key, _)) = body.split_once(" = ") {
            if !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                keys.insert((table.clone(), key.to_string()));
            }
        }
    }
    keys
}

/// The public fields of the config structs in sessrec-core/src/config.rs (and forward.rs, for
/// `[forward]`), by table.
fn keys_in_source() -> BTreeSet<(String, String)> {
    let source = ["config.rs", "forward.rs"]
        .map(|f| {
            std::fs::read_to_string(packaging_dir().join("../sessrec-core/src").join(f))
                .unwrap_or_else(|e| panic!("read {f}: {e}"))
        })
        .join("\n");
    let tables = [
        ("Config", ""),
        ("PolicyConfig", "policy"),
        ("RecorderConfig", "recorder"),
        ("IdentityConfig", "identity"),
        ("TransferConfig", "transfer"),
        ("TicketConfig", "ticket"),
        ("SudoConfig", "sudo"),
        ("BudgetConfig", "budget"),
        ("AuditConfig", "audit"),
        ("ForwardConfig", "forward"),
    ];
    let mut keys = BTreeSet::new();
    let mut current: Option<&str> = None;
    for line in source.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("pub struct ") {
            let name = rest.split_whitespace().next().unwrap_or("");
            current = tables.iter().find(|(s, _)| *s == name).map(|(_, t)| *t);
            continue;
        }
        if trimmed == "}" {
            current = None;
            continue;
        }
        if let (Some(table), Some(rest)) = (current, trimmed.strip_prefix("pub ")) {
            if let Some((field, _)) = rest.split_once(':') {
                let sub_table = tables.iter().any(|(_, t)| !t.is_empty() && *t == field);
                if !(table.is_empty() && sub_table) {
                    keys.insert((table.to_string(), field.to_string()));
                }
            }
        }
    }
    assert!(
        keys.len() > 30,
        "could not read the config structs: {keys:?}"
    );
    keys
}

/// The shipped file with every commented default switched on.
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|line| match line.strip_prefix('#') {
            Some(body)
                if body.split_once(" = ").is_some_and(|(k, _)| {
                    k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                }) =>
            {
                body.to_string()
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn shipped_config_lists_every_key_with_its_built_in_default() {
    let text = read_packaging_file("sessrec.toml");
    let shipped = Config::from_toml_str(&text, "packaging/sessrec.toml").expect("shipped config");

    let listed = keys_by_table(&text);
    let accepted = keys_in_source();
    let missing: Vec<_> = accepted.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "keys not listed in the shipped config: {missing:?}"
    );
    let unknown: Vec<_> = listed.difference(&accepted).collect();
    assert!(
        unknown.is_empty(),
        "keys the program does not accept: {unknown:?}"
    );

    // Switching every commented line on changes nothing: each shows the built-in default.
    let all_on = Config::from_toml_str(&uncommented(&text), "uncommented")
        .expect("every commented default parses");
    assert_eq!(format!("{all_on:?}"), format!("{shipped:?}"));

    // As shipped, only the example group is recorded (the built-in default is everyone).
    assert!(!shipped.policy.records("root", &["root".into()]));
    assert!(!shipped.policy.records("admin", &["sudo".into()]));
    assert!(shipped.policy.records("alice", &[EXAMPLE_GROUP.into()]));
    assert!(Config::default().policy.records("root", &[]));
}

#[test]
fn sudoers_dropin_passes_visudo() {
    if !require_programs(&["visudo"]) {
        return;
    }
    let path = packaging_dir().join("examples/sudoers.d/sessrec");
    let out = output_with_timeout(
        Command::new("visudo").arg("-c").arg("-f").arg(&path),
        b"",
        std::time::Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "visudo -c rejects the sudoers drop-in: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = active_lines(&read_packaging_file("examples/sudoers.d/sessrec"));
    let text = lines.join("\n");
    for want in [
        "log_output",
        "log_input",
        "use_pty",
        "env_keep += \"SESSREC_SESSION\"",
        "!log_passwords",
    ] {
        assert!(text.contains(want), "sudoers drop-in lacks {want}:\n{text}");
    }
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with(&format!("Defaults:%{EXAMPLE_GROUP}"))),
        "every line applies to the recorded group only:\n{text}"
    );
}
