//! man/sessrec.1 documents every command and option the program accepts, and renders
//! without warnings.

use std::path::PathBuf;
use std::process::Command;

use sessrec::args::{ALIASES, COMMANDS, GLOBAL};

fn page() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../man/sessrec.1");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn roff(opt: &str) -> String {
    opt.replace('-', "\\-")
}

/// The text of one `.SS`/`.SH` section.
fn section<'a>(page: &'a str, header: &str) -> &'a str {
    let start = page
        .find(header)
        .unwrap_or_else(|| panic!("man page has no section {header}"));
    let rest = &page[start + header.len()..];
    let end = rest
        .find("\n.SS ")
        .into_iter()
        .chain(rest.find("\n.SH "))
        .min()
        .unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn every_option_is_documented_in_its_section() {
    let page = page();
    let global = section(&page, ".SH \"GLOBAL OPTIONS\"");
    for o in GLOBAL {
        assert!(
            global.contains(&roff(o.name)),
            "global option {} is not documented",
            o.name
        );
    }
    for c in COMMANDS {
        let text = section(&page, &format!(".SS \"{}\"", c.name));
        for o in c.options {
            assert!(
                text.contains(&roff(o.name)),
                "`sessrec {} {}` is not documented in its section",
                c.name,
                o.name
            );
        }
        assert!(
            page.contains(&format!(".B sessrec {}", c.name)),
            "{} is missing from the synopsis",
            c.name
        );
    }
    for (short, _) in ALIASES {
        assert!(
            page.contains(&format!(".BR {} ", roff(short))),
            "alias {short} is not documented"
        );
    }
}

#[test]
fn renders_without_warnings() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../man/sessrec.1");
    let out = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(&path)
        .env("MANWIDTH", "80")
        .env("MAN_KEEP_FORMATTING", "0")
        .output()
        .expect("man(1) from man-db is needed (apt-get install man-db)");
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().is_empty(), "man warnings:\n{stderr}");
    // Undo overstrike bold/underline (`X\x08X`, `_\x08X`).
    let mut text = String::new();
    for c in String::from_utf8_lossy(&out.stdout).chars() {
        if c == '\u{8}' {
            text.pop();
        } else {
            text.push(c);
        }
    }
    assert!(text.contains("EXIT STATUS"), "{text}");
}

/// Alternating-font macros (`.BR`, `.RB`, `.IR`, ...) join their arguments without spaces, so
/// prose written on such a line renders as one long word ("prompt).Laterlinestyped...").
#[test]
fn no_page_runs_prose_together_in_an_alternating_font_macro() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../man");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let Some(args) = ["BR", "RB", "IR", "RI", "BI", "IB"]
                .iter()
                .find_map(|m| line.strip_prefix(&format!(".{m} ")))
            else {
                continue;
            };
            // Unquoted arguments only: a quoted one keeps its spaces.
            let words: Vec<&str> = if args.contains('"') {
                Vec::new()
            } else {
                args.split_whitespace().collect()
            };
            let is_word = |w: &&str| {
                let w = w.trim_end_matches([',', '.', ';', ':']);
                !w.is_empty() && w.chars().all(|c| c.is_ascii_alphabetic())
            };
            if words.windows(3).any(|three| three.iter().all(is_word)) {
                found.push(format!("{}:{}: {line}", path.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "prose run together:\n{}",
        found.join("\n")
    );
}
