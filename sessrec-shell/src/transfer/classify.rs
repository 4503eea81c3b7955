//! Decides whether a channel's command is a file-transfer server, and the exact argv to exec.
//!
//! Strict on purpose: the command must split on blanks, with no shell syntax at all, into an
//! allow-listed argv. Anything else (`scp -t /x; bash`, `scp -t '$(id)'`, a glob, a quoted path)
//! is not a transfer and runs as an ordinary, fully recorded exec channel.
#![forbid(unsafe_code)]

use super::event::{Direction, Protocol};
use sessrec_core::config::TransferConfig;

/// The Debian OpenSSH sftp-server, accepted besides the configured one.
pub const DEFAULT_SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";
/// What `scp` and `rsync` resolve to (never looked up in the user's `PATH`).
pub const SCP_PATH: &str = "/usr/bin/scp";
pub const RSYNC_PATH: &str = "/usr/bin/rsync";

/// Longest command considered at all; transfer commands are short.
const MAX_COMMAND_BYTES: usize = 8192;
const MAX_WORDS: usize = 64;
const MAX_WORD_BYTES: usize = 4096;

/// The protocol of a transfer channel and, for scp and rsync, which way the files go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    Sftp,
    Scp { direction: Direction },
    Rsync { direction: Direction },
}

impl TransferKind {
    pub fn protocol(self) -> Protocol {
        match self {
            TransferKind::Sftp => Protocol::Sftp,
            TransferKind::Scp { .. } => Protocol::Scp,
            TransferKind::Rsync { .. } => Protocol::Rsync,
        }
    }
}

/// A recognised transfer: `argv[0]` is an absolute path; exec it directly, never via a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferCommand {
    pub kind: TransferKind,
    pub argv: Vec<String>,
}

/// `command` is the string after `-c` (or `SSH_ORIGINAL_COMMAND` in ForceCommand mode);
/// `has_tty` is whether fd 0 is a terminal. `None` means: not a transfer.
pub fn classify(command: &str, has_tty: bool, cfg: &TransferConfig) -> Option<TransferCommand> {
    if has_tty {
        return None;
    }
    let words = split_plain_words(command)?;
    let program = *words.first()?;
    let sftp_server = cfg.sftp_server.to_str();
    if program == "internal-sftp" || program == DEFAULT_SFTP_SERVER || Some(program) == sftp_server
    {
        if !cfg.allow_sftp {
            return None;
        }
        let exe = if program == "internal-sftp" {
            sftp_server?
        } else {
            program
        };
        if !exe.starts_with('/') {
            return None;
        }
        check_sftp_server_args(&words[1..])?;
        return Some(command_of(TransferKind::Sftp, exe, &words[1..]));
    }
    if program == "scp" || program == SCP_PATH {
        if !cfg.allow_scp {
            return None;
        }
        let direction = check_scp_args(&words[1..], &cfg.scp_flags)?;
        return Some(command_of(
            TransferKind::Scp { direction },
            SCP_PATH,
            &words[1..],
        ));
    }
    if program == "rsync" || program == RSYNC_PATH {
        if !cfg.allow_rsync {
            return None;
        }
        let direction = check_rsync_args(&words[1..], &cfg.rsync_denied_options)?;
        return Some(command_of(
            TransferKind::Rsync { direction },
            RSYNC_PATH,
            &words[1..],
        ));
    }
    None
}

fn command_of(kind: TransferKind, exe: &str, args: &[&str]) -> TransferCommand {
    let mut argv = Vec::with_capacity(args.len() + 1);
    argv.push(exe.to_owned());
    argv.extend(args.iter().map(|s| (*s).to_owned()));
    TransferCommand { kind, argv }
}

/// Splits on spaces and tabs, or `None` if any word holds a byte a shell could treat
/// specially. Only an explicit allow-list of characters passes: letters, digits,
/// `-_./,:+%@`, `=` (not at the start of a word) and non-ASCII text.
pub fn split_plain_words(command: &str) -> Option<Vec<&str>> {
    if command.len() > MAX_COMMAND_BYTES {
        return None;
    }
    let mut words = Vec::new();
    for word in command.split([' ', '\t']).filter(|w| !w.is_empty()) {
        if word.len() > MAX_WORD_BYTES || words.len() == MAX_WORDS || word.starts_with('=') {
            return None;
        }
        let plain = word.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || "-_./,:+%@=".contains(c)
                || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
        });
        if !plain {
            return None;
        }
        words.push(word);
    }
    if words.is_empty() {
        None
    } else {
        Some(words)
    }
}

/// OpenSSH sftp-server: `[-ehR] [-d dir] [-f facility] [-l level] [-P list] [-p list] [-u umask]`.
fn check_sftp_server_args(args: &[&str]) -> Option<()> {
    let mut i = 0;
    while i < args.len() {
        let word = args[i];
        let flags = word
            .strip_prefix('-')
            .filter(|f| !f.is_empty() && !f.starts_with('-'))?;
        for (pos, flag) in flags.char_indices() {
            match flag {
                'e' | 'h' | 'R' => continue,
                'd' | 'f' | 'l' | 'P' | 'p' | 'u' => {
                    let attached = &flags[pos + 1..];
                    let value = if attached.is_empty() {
                        i += 1;
                        *args.get(i)?
                    } else {
                        attached
                    };
                    if !sftp_option_value_ok(flag, value) {
                        return None;
                    }
                    break;
                }
                _ => return None,
            }
        }
        i += 1;
    }
    Some(())
}

fn sftp_option_value_ok(flag: char, value: &str) -> bool {
    const LEVELS: &[&str] = &[
        "QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3",
    ];
    const FACILITIES: &[&str] = &[
        "DAEMON", "USER", "AUTH", "AUTHPRIV", "LOCAL0", "LOCAL1", "LOCAL2", "LOCAL3", "LOCAL4",
        "LOCAL5", "LOCAL6", "LOCAL7",
    ];
    match flag {
        'l' => LEVELS.contains(&value),
        'f' => FACILITIES.contains(&value),
        'u' => (1..=4).contains(&value.len()) && value.bytes().all(|b| (b'0'..=b'7').contains(&b)),
        'P' | 'p' => {
            value.len() <= 1024
                && !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"@.,-_".contains(&b))
        }
        'd' => !value.starts_with('-'),
        _ => false,
    }
}

/// `scp -t|-f` with only the configured flags (default `-r -p -d -v`), an optional `--`,
/// and exactly one path. `-t` (sink) receives an upload; `-f` (source) serves a download.
fn check_scp_args(args: &[&str], allowed_flags: &[String]) -> Option<Direction> {
    let allowed: Vec<char> = allowed_flags
        .iter()
        .filter_map(|f| {
            let mut chars = f.strip_prefix('-')?.chars();
            let c = chars.next()?;
            // Only single-letter flags that take no argument can be allowed at all.
            (chars.next().is_none() && "rpdvqT".contains(c)).then_some(c)
        })
        .collect();
    let mut direction = None;
    let mut i = 0;
    while i < args.len() {
        let word = args[i];
        if word == "--" {
            i += 1;
            break;
        }
        let Some(flags) = word.strip_prefix('-') else {
            break;
        };
        if flags.is_empty() {
            return None;
        }
        for flag in flags.chars() {
            let this = match flag {
                't' => Some(Direction::Upload),
                'f' => Some(Direction::Download),
                c if allowed.contains(&c) => None,
                _ => return None,
            };
            if this.is_some() {
                if direction.is_some() {
                    return None;
                }
                direction = this;
            }
        }
        i += 1;
    }
    match &args[i..] {
        [path] if !path.is_empty() && (i > 0 && args[i - 1] == "--" || !path.starts_with('-')) => {
            direction
        }
        _ => None,
    }
}

/// Long options never accepted on an rsync server, whatever the configuration says:
/// each can run commands, write logs or devices, or turn the server into a daemon.
const RSYNC_ALWAYS_DENIED: &[&str] = &[
    "--daemon",
    "--config",
    "--rsh",
    "--rsync-path",
    "--remote-option",
    "--log-file",
    "--log-file-format",
    "--write-devices",
    "--copy-devices",
    "--dparam",
    "--detach",
    "--no-detach",
    "--port",
    "--address",
    "--sockopts",
    "--password-file",
    "--early-input",
    "--write-batch",
    "--only-write-batch",
    "--read-batch",
    "--server",
    "--sender",
];

/// `rsync --server [--sender] OPTIONS . PATH...`. `--sender` means the server sends: a download.
/// Short options may only be flag letters; `e` only in its server form, the capability
/// string (`-logDtpre.iLsfxCIvu`), never `-e COMMAND`.
fn check_rsync_args(args: &[&str], denied: &[String]) -> Option<Direction> {
    let (first, rest) = args.split_first()?;
    if *first != "--server" {
        return None;
    }
    let (direction, rest) = match rest.split_first() {
        Some((&"--sender", tail)) => (Direction::Download, tail),
        _ => (Direction::Upload, rest),
    };
    let dot = rest.iter().position(|w| *w == ".")?;
    // A denied short option ("-z") forbids that letter; "-e" is the remote-shell form,
    // which is refused below in any case (only the capability string passes).
    let denied_letters: Vec<char> = denied
        .iter()
        .filter_map(|d| {
            let mut chars = d.strip_prefix('-')?.chars();
            let c = chars.next()?;
            (chars.next().is_none() && c != 'e').then_some(c)
        })
        .collect();
    for word in &rest[..dot] {
        if let Some(long) = word.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or_default();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return None;
            }
            let option = format!("--{name}");
            let is_denied =
                |d: &str| option == d || (d == "--log-file" && option.starts_with("--log-file"));
            if RSYNC_ALWAYS_DENIED.iter().any(|d| is_denied(d))
                || denied.iter().any(|d| is_denied(d))
            {
                return None;
            }
        } else if let Some(group) = word.strip_prefix('-') {
            if !rsync_short_group_ok(group)
                || group
                    .chars()
                    .take_while(|c| *c != 'e')
                    .any(|c| denied_letters.contains(&c))
            {
                return None;
            }
        } else {
            return None;
        }
    }
    let paths = &rest[dot + 1..];
    // rsync's option parser also takes options after operands, so no operand may look like one.
    if paths.is_empty() || paths.iter().any(|p| p.starts_with('-')) {
        return None;
    }
    if direction == Direction::Upload && paths.len() != 1 {
        return None;
    }
    Some(direction)
}

fn rsync_short_group_ok(group: &str) -> bool {
    if group.is_empty() {
        return false;
    }
    for (pos, c) in group.char_indices() {
        match c {
            'e' => {
                let caps = &group[pos + 1..];
                return caps.starts_with('.')
                    && caps.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.');
            }
            // These take an argument (block size, filter, remote option, temp dir, window).
            'B' | 'f' | 'M' | 'T' | '@' => return false,
            c if c.is_ascii_alphanumeric() => continue,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn cfg() -> TransferConfig {
        TransferConfig::default()
    }

    fn argv(cmd: &TransferCommand) -> Vec<&str> {
        cmd.argv.iter().map(String::as_str).collect()
    }

    #[test]
    fn the_real_client_commands_are_transfers() {
        let table: &[(&str, TransferKind, &[&str])] = &[
            (
                "/usr/lib/openssh/sftp-server",
                TransferKind::Sftp,
                &["/usr/lib/openssh/sftp-server"],
            ),
            (
                "internal-sftp",
                TransferKind::Sftp,
                &["/usr/lib/openssh/sftp-server"],
            ),
            (
                "internal-sftp -l INFO -f AUTHPRIV -u 022 -R",
                TransferKind::Sftp,
                &[
                    "/usr/lib/openssh/sftp-server",
                    "-l",
                    "INFO",
                    "-f",
                    "AUTHPRIV",
                    "-u",
                    "022",
                    "-R",
                ],
            ),
            (
                "/usr/lib/openssh/sftp-server -eR -lVERBOSE -d /srv/%u -P remove,rmdir",
                TransferKind::Sftp,
                &[
                    "/usr/lib/openssh/sftp-server",
                    "-eR",
                    "-lVERBOSE",
                    "-d",
                    "/srv/%u",
                    "-P",
                    "remove,rmdir",
                ],
            ),
            (
                "scp -t /tmp/sessrec-fixture/remote2/small_scp.txt",
                TransferKind::Scp {
                    direction: Direction::Upload,
                },
                &[
                    "/usr/bin/scp",
                    "-t",
                    "/tmp/sessrec-fixture/remote2/small_scp.txt",
                ],
            ),
            (
                "scp -v -r -p -d -t -- -x",
                TransferKind::Scp {
                    direction: Direction::Upload,
                },
                &["/usr/bin/scp", "-v", "-r", "-p", "-d", "-t", "--", "-x"],
            ),
            (
                "scp -r -f /srv/data",
                TransferKind::Scp {
                    direction: Direction::Download,
                },
                &["/usr/bin/scp", "-r", "-f", "/srv/data"],
            ),
            (
                "/usr/bin/scp -prf x",
                TransferKind::Scp {
                    direction: Direction::Download,
                },
                &["/usr/bin/scp", "-prf", "x"],
            ),
            (
                "rsync --server -logDtpre.iLsfxCIvu . /tmp/dest/",
                TransferKind::Rsync {
                    direction: Direction::Upload,
                },
                &[
                    "/usr/bin/rsync",
                    "--server",
                    "-logDtpre.iLsfxCIvu",
                    ".",
                    "/tmp/dest/",
                ],
            ),
            (
                "rsync --server --sender -logDtprze.iLsfxCIvu . /tmp/x /tmp/y",
                TransferKind::Rsync {
                    direction: Direction::Download,
                },
                &[
                    "/usr/bin/rsync",
                    "--server",
                    "--sender",
                    "-logDtprze.iLsfxCIvu",
                    ".",
                    "/tmp/x",
                    "/tmp/y",
                ],
            ),
            (
                "rsync --server -vlogDtpre.iLsfxCIvu --delete --partial --timeout=30 . dest",
                TransferKind::Rsync {
                    direction: Direction::Upload,
                },
                &[
                    "/usr/bin/rsync",
                    "--server",
                    "-vlogDtpre.iLsfxCIvu",
                    "--delete",
                    "--partial",
                    "--timeout=30",
                    ".",
                    "dest",
                ],
            ),
        ];
        for (command, kind, expected) in table {
            let got = classify(command, false, &cfg())
                .unwrap_or_else(|| panic!("not a transfer: {command}"));
            assert_eq!(got.kind, *kind, "{command}");
            assert_eq!(argv(&got), *expected, "{command}");
        }
    }

    #[test]
    fn smuggling_and_shell_syntax_are_not_transfers() {
        let rejected = [
            "scp -t /tmp/x; bash",
            "scp -t /tmp/x;bash",
            "rsync --server --daemon --config=~/x .",
            "rsync --server --daemon --config=/tmp/x .",
            "scp -t '$(id)'",
            "scp -t $(id)",
            "scp -t `id`",
            "scp -t /tmp/x && bash",
            "scp -t /tmp/x || bash",
            "scp -t /tmp/x | bash",
            "scp -t /tmp/x & bash",
            "scp -t /tmp/x > /tmp/y",
            "scp -t </etc/passwd",
            "scp -t /tmp/x\nbash",
            "scp -t /tmp/x\rbash",
            "scp -t \"/tmp/x\"",
            "scp -t /tmp/a\\ b",
            "scp -t /tmp/*",
            "scp -t /tmp/?",
            "scp -t /tmp/[ab]",
            "scp -t /tmp/{a,b}",
            "scp -t ~/x",
            "scp -t /tmp/x #comment",
            "scp -t !1",
            "scp -t $HOME",
            "scp -t (x)",
            "scp -t =x",
            "scp -t /tmp/x^bash",
            "FOO=bar scp -t /tmp/x",
            "scp -t /tmp/a b",
            "scp -t",
            "scp -t -x",
            "scp -t /x -S /bin/sh",
            "scp -t -f /x",
            "scp -tt /x",
            "scp -S /bin/sh -t /x",
            "scp -o ProxyCommand=x -t /x",
            "scp -3 -t /x",
            "scp /x",
            "scp -- -t /x",
            "/bin/scp -t /x",
            "./scp -t /x",
            "rsync --server -e sh . /x",
            "rsync --server -e /bin/sh . /x",
            "rsync --server --rsh=sh . /x",
            "rsync --server --log-file=/tmp/l . /x",
            "rsync --server --log-file-format=%f . /x",
            "rsync --server --write-devices . /x",
            "rsync --server --rsync-path=sh . /x",
            "rsync --server -M--daemon . /x",
            "rsync --server . /x --daemon",
            "rsync --server . /x -e sh",
            "rsync --server . /x /y",
            "rsync --server -logDtpre.iLsfxCIvu /x",
            "rsync --daemon --server . /x",
            "rsync --server --sender --server . /x",
            "rsync -e.x --server . /x",
            "rsync . /x",
            "sftp-server",
            "/usr/lib/openssh/sftp-server; bash",
            "/usr/lib/openssh/sftp-server -Q requests",
            "/usr/lib/openssh/sftp-server -l LOUD",
            "/usr/lib/openssh/sftp-server -u 0999",
            "/usr/lib/openssh/sftp-server extra",
            "/usr/lib/openssh/sftp-server -d",
            "/usr/lib/openssh/sftp-server --",
            "internal-sftp -c x",
            "bash",
            "",
            "   ",
            "/bin/sh -c scp",
        ];
        for command in rejected {
            assert_eq!(
                classify(command, false, &cfg()),
                None,
                "accepted: {command:?}"
            );
        }
    }

    #[test]
    fn a_tty_channel_is_never_a_transfer() {
        assert_eq!(classify("/usr/lib/openssh/sftp-server", true, &cfg()), None);
        assert_eq!(classify("scp -t /tmp/x", true, &cfg()), None);
    }

    #[test]
    fn the_configuration_controls_the_allow_list() {
        let mut c = cfg();
        c.sftp_server = PathBuf::from("/usr/libexec/sftp-server");
        let cmd = classify("internal-sftp", false, &c).map(|c| c.argv);
        assert_eq!(cmd, Some(vec!["/usr/libexec/sftp-server".to_owned()]));
        assert!(classify("/usr/libexec/sftp-server -e", false, &c).is_some());
        assert!(classify("/usr/lib/openssh/sftp-server", false, &c).is_some());
        assert_eq!(classify("/usr/local/bin/sftp-server", false, &c), None);
        c.sftp_server = PathBuf::from("sftp-server");
        assert_eq!(
            classify("internal-sftp", false, &c),
            None,
            "only an absolute path is run"
        );
        assert_eq!(classify("sftp-server", false, &c), None);
        c.sftp_server = PathBuf::from("/usr/libexec/sftp-server");

        c.allow_sftp = false;
        assert_eq!(classify("internal-sftp", false, &c), None);
        c.allow_scp = false;
        assert_eq!(classify("scp -t /x", false, &c), None);
        c.allow_rsync = false;
        assert_eq!(classify("rsync --server . /x", false, &c), None);

        let mut c = cfg();
        c.scp_flags = vec!["-r".into()];
        assert!(classify("scp -r -t /x", false, &c).is_some());
        assert_eq!(classify("scp -p -t /x", false, &c), None);
        c.scp_flags = vec!["-S".into(), "-o".into(), "-rp".into()];
        assert_eq!(
            classify("scp -S -t /x", false, &c),
            None,
            "flags with arguments are never allowed"
        );

        let mut c = cfg();
        c.rsync_denied_options.push("--delete".into());
        assert_eq!(classify("rsync --server --delete . /x", false, &c), None);
        assert!(classify("rsync --server --partial . /x", false, &c).is_some());
        c.rsync_denied_options.push("-z".into());
        assert_eq!(
            classify("rsync --server -logDtprze.iLsfxCIvu . /x", false, &c),
            None
        );
        assert!(classify("rsync --server -logDtpre.iLsfxCIvzu . /x", false, &c).is_some());
    }

    #[test]
    fn oversized_commands_are_not_transfers() {
        let long = format!("scp -t /{}", "a".repeat(MAX_WORD_BYTES));
        assert_eq!(classify(&long, false, &cfg()), None);
        let many = format!("rsync --server{} . /x", " --partial".repeat(MAX_WORDS));
        assert_eq!(classify(&many, false, &cfg()), None);
    }

    #[test]
    fn plain_words_split_on_blanks_only() {
        assert_eq!(
            split_plain_words(" scp\t-t  /x "),
            Some(vec!["scp", "-t", "/x"])
        );
        assert_eq!(
            split_plain_words("scp -t /tmp/ä"),
            Some(vec!["scp", "-t", "/tmp/ä"])
        );
        assert_eq!(split_plain_words("scp -t /tmp/a\u{a0}b"), None);
        assert_eq!(split_plain_words("scp -t /tmp/a\u{7f}"), None);
    }
}
