//! man/sessrec-record.5 and the record types describe the same format: every field a type
//! knows is documented with its event, and every field the page documents is typed.

use std::collections::{BTreeMap, BTreeSet};

use sessrec_core::schema::{known_types, HEADER_KEYS};

const PAGE: &str = include_str!("../../man/sessrec-record.5");

/// Bold words in the page that are values or nested fields, not fields of the event itself.
const NOT_FIELDS: &[(&str, &[&str])] = &[
    (
        "login",
        &[
            // actor_source and established_by values
            "certificate",
            "fingerprint\\-map",
            "unix\\-user",
            "sessrec\\-shell",
            "SSH_CONNECTION",
            // fields of `certificate` and of `auth` entries
            "key_id",
            "serial",
            "principals",
            "valid_after",
            "valid_before",
            "ca_fingerprint",
            "ca_trusted",
        ],
    ),
    (
        "logout",
        // fields of each `channels` entry
        &["channel.end", "file", "last_seq", "digest", "open", "error"],
    ),
    (
        "channel.start",
        &[
            "shell",
            "exec",
            "transfer",
            "forward",
            "pty",
            "pipe",
            "taken",
            "nested",
            "off",
            "login",
            "user_budget",
            "truncated",
            "/",
            "/dev/pts/7",
            "SESSREC_CHANNEL",
        ],
    ),
    ("command.part", &["channel.start", "command"]),
    (
        "io",
        // the line's type, and the fields of each frame
        &["mask_line_max_bytes", "io", "type", "off", "s", "u", "b"],
    ),
    // `resize` and `suspend` of sudo records share a paragraph
    ("resize", &["signal"]),
    ("suspend", &["cols", "rows"]),
    (
        "input.masked",
        &["password_mode", "prompt", "sudo.password_prompt_regex"],
    ),
    (
        "masking_suspended",
        &["mask_arm_limit", "mask_arm_window_s"],
    ),
    (
        "user_notice",
        &[
            // the configuration key, where it is shown, and the reasons
            "notice",
            "{session}",
            "channel.start",
            "ForceCommand",
            "Banner",
            "no_terminal",
            "not_configured",
            "terminal_write_failed",
        ],
    ),
    (
        "truncated",
        &[
            "max_channel_bytes",
            "user_budget",
            "truncated",
            "channel.start",
            // fields of channel.start, explained here
            "user_bytes_today",
            "user_budget_bytes",
        ],
    ),
    (
        "channel.end",
        &[
            "exit",
            "hangup",
            "terminated",
            "idle",
            "record_failure",
            "start_failed",
            "internal_error",
            "refused",
        ],
    ),
    (
        "sudo.start",
        &[
            // the long-field rules of `cmdline`, as for exec
            "cmdline_b64",
            "cmdline_bytes",
            "cmdline_parts",
            "command.part",
            "field",
            "audit",
            "audit.jsonl",
            "log.json",
            "log",
            "tty",
            "only_session",
            "none",
            "absent",
            "agreed",
            "disagreed",
        ],
    ),
    (
        "transfer",
        &[
            // protocols, directions and the names of operations and statuses
            "sftp",
            "scp",
            "rsync",
            "upload",
            "download",
            "both",
            "none",
            "transfer",
            "internal\\-sftp",
            "fsetstat",
            "fstat",
            "fsync",
            "copy",
            "statvfs",
            "rename",
            "symlink",
            "hardlink",
            "realpath",
            "readlink",
            "expand\\-path",
            "home\\-directory",
            "setstat",
            "lsetstat",
            "mkdir",
            "read",
            "write",
            "append",
            "create",
            "truncate",
            "exclusive",
            "list",
            "open",
            "ok",
            "eof",
            "no_such_file",
            "permission_denied",
            "failure",
            "bad_message",
            "no_connection",
            "connection_lost",
            "op_unsupported",
            "error",
            "fatal",
            "protocol_error",
            "incomplete",
            "no_reply",
            "untracked",
            "false",
            "true",
            "C",
            "D",
            "T",
            "decode_stopped",
            "channel.end",
            "unknown",
            "summary",
            "tree/inner/i.bin",
            "posix\\-rename@openssh.com",
            "hardlink@openssh.com",
            "copy\\-data",
            "lsetstat@openssh.com",
            "fsync@openssh.com",
            "statvfs@openssh.com",
            "fstatvfs@openssh.com",
            "limits@openssh.com",
            "expand\\-path@openssh.com",
            "users\\-groups\\-by\\-id@openssh.com",
            "code_",
            "\\-t",
            "\\-f",
            // `home-directory`'s user name and a malformed request's type share their names
            // with header keys, which the writer keeps for the header: documented, not typed.
            "user",
            "type",
        ],
    ),
    (
        "exec",
        &[
            // values, the audit id's punctuation, ausearch's option, and the long-field rules
            "execve",
            "execveat",
            "ENOENT",
            ".",
            ":",
            "\\-a",
            "_b64",
            "actor",
            "cmdline_b64",
            "cmdline_bytes",
            "cmdline_parts",
            "command.part",
            "field",
        ],
    ),
    (
        "connect",
        &["inet", "inet6", "connected", "in_progress", "failed"],
    ),
    (
        "connect.end",
        &[
            // the line it ends, the importer's mode and the connect's syscall argument
            "connect",
            "connect.end",
            "\\-\\-follow",
            "a0",
            // result and matched_by values, and what views say
            "closed",
            "unknown",
            "socket",
            "destination_time",
            "end",
        ],
    ),
    (
        "audit_gap",
        &[
            "backlog",
            "daemon_abort",
            "daemon_end",
            "daemon_resume",
            "daemon_rotate",
            "rotated_away",
            "DAEMON_*",
        ],
    ),
    (
        "forward.open",
        &["connected", "refused", "[forward]", "unresolved", "failed"],
    ),
    (
        "forward.close",
        &[
            "closed",
            "client_gone",
            "destination_reset",
            "error",
            "idle",
            "idle_timeout_s",
            "record_failure",
            "terminated",
            "max_channel_bytes",
        ],
    ),
];

/// Bold words (`\fBword\fR` and `.B word , word`) of a piece of the page.
fn bold_words(text: &str) -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(".B ") {
            words.extend(
                rest.split(',')
                    .map(str::trim)
                    .filter(|w| !w.is_empty())
                    .map(str::to_string),
            );
        }
        let mut rest = line;
        while let Some(start) = rest.find("\\fB") {
            rest = &rest[start + 3..];
            let end = rest.find("\\f").unwrap_or(rest.len());
            let word = &rest[..end];
            if !word.is_empty() && !word.contains(' ') {
                words.insert(word.to_string());
            }
            rest = &rest[end..];
        }
    }
    words
}

/// The page's sections (`.SH`), by title; each body starts with a newline.
fn sections() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for part in PAGE.split("\n.SH ").skip(1) {
        let (title, body) = part.split_once('\n').unwrap_or((part, ""));
        out.insert(title.trim().to_string(), format!("\n{body}"));
    }
    out
}

/// The tagged paragraphs (`.TP`) of a section: the bold words of each tag line, and the text
/// up to the next paragraph of any kind.
fn tagged_paragraphs(section: &str) -> Vec<(BTreeSet<String>, String)> {
    section
        .split("\n.TP\n")
        .skip(1)
        .map(|paragraph| {
            let (tag, text) = paragraph.split_once('\n').unwrap_or((paragraph, ""));
            let text = text
                .split("\n.PP")
                .next()
                .unwrap_or_default()
                .split("\n.SS")
                .next()
                .unwrap_or_default();
            (bold_words(tag), text.to_string())
        })
        .collect()
}

/// What the page says about each event: the tagged paragraphs of the EVENTS sections, by the
/// types they name; the tags of I/O LINES for `io` frames; for `transfer`, the tags of
/// TRANSFER LINES (its fields) and the paragraphs of the operations that have fields of their
/// own.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let sections = sections();
    let mut docs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (title, body) in &sections {
        if !title.starts_with("EVENTS IN") {
            continue;
        }
        for (kinds, text) in tagged_paragraphs(body) {
            for kind in kinds {
                docs.entry(kind).or_default().extend(bold_words(&text));
            }
        }
    }
    let io = &sections["I/O LINES"];
    let io_docs = docs.entry("io".into()).or_default();
    io_docs.extend(bold_words(io.split("\n.TP\n").next().unwrap_or_default()));
    io_docs.extend(tagged_paragraphs(io).into_iter().flat_map(|(tag, _)| tag));
    let transfer = &sections["TRANSFER LINES"];
    let (fields, operations) = transfer.split_once(".SS Operations").unwrap_or_default();
    let transfer_docs = docs.entry("transfer".into()).or_default();
    transfer_docs.extend(
        bold_words(fields)
            .into_iter()
            .filter(|w| w == "protocol" || w == "op"),
    );
    transfer_docs.extend(
        tagged_paragraphs(fields)
            .into_iter()
            .flat_map(|(tag, _)| tag),
    );
    for (tag, text) in tagged_paragraphs(operations) {
        if ["decode_stopped", "summary", "stat_summary"]
            .iter()
            .any(|op| tag.contains(*op))
        {
            transfer_docs.extend(bold_words(&text));
        }
    }
    docs
}

#[test]
fn every_typed_field_is_documented_with_its_event() {
    let docs = documented();
    let mut missing = Vec::new();
    for (kind, fields) in known_types() {
        let Some(words) = docs.get(*kind) else {
            missing.push(format!("{kind}: the event itself"));
            continue;
        };
        for field in *fields {
            if !words.contains(*field) {
                missing.push(format!("{kind}.{field}"));
            }
        }
    }
    assert!(missing.is_empty(), "not in sessrec-record(5): {missing:?}");
}

#[test]
fn every_documented_field_is_typed() {
    let types: BTreeMap<&str, &[&str]> = known_types().iter().copied().collect();
    let not_fields: BTreeMap<&str, &[&str]> = NOT_FIELDS.iter().copied().collect();
    let mut untyped = Vec::new();
    for (kind, words) in documented() {
        let Some(fields) = types.get(kind.as_str()) else {
            untyped.push(format!("{kind}: no type"));
            continue;
        };
        let values = not_fields.get(kind.as_str()).copied().unwrap_or_default();
        for word in words {
            if !fields.contains(&word.as_str()) && !values.contains(&word.as_str()) {
                untyped.push(format!("{kind}.{word}"));
            }
        }
    }
    assert!(untyped.is_empty(), "documented but not typed: {untyped:?}");
}

#[test]
fn the_common_fields_are_the_header() {
    let section = &sections()["COMMON FIELDS"];
    let documented: BTreeSet<String> = section
        .split("\n.TP\n")
        .skip(1)
        .flat_map(|p| bold_words(p.lines().next().unwrap_or_default()))
        .collect();
    let header: BTreeSet<String> = HEADER_KEYS.iter().map(|k| k.to_string()).collect();
    assert_eq!(documented, header);
}
