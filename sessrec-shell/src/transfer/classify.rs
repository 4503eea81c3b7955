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
    /// The operands, as the check of the argv read them (never parsed again).
    pub operands: Operands,
}

/// What a transfer argv names besides its protocol and direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operands {
    Sftp,
    /// `scp -t|-f [-r] PATH`.
    Scp {
        path: String,
        recursive: bool,
    },
    /// `rsync --server [--sender] OPTIONS . PATH...`: the options (without `--server` and
    /// `--sender`) and the server-side paths.
    Rsync {
        options: Vec<String>,
        paths: Vec<String>,
    },
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
        return Some(command_of(
            TransferKind::Sftp,
            exe,
            &words[1..],
            Operands::Sftp,
        ));
    }
    if program == "scp" || program == SCP_PATH {
        if !cfg.allow_scp {
            return None;
        }
        let (direction, operands) = check_scp_args(&words[1..], &cfg.scp_flags)?;
        return Some(command_of(
            TransferKind::Scp { direction },
            SCP_PATH,
            &words[1..],
            operands,
        ));
    }
    if program == "rsync" || program == RSYNC_PATH {
        if !cfg.allow_rsync {
            return None;
        }
        let (direction, operands) = check_rsync_args(&words[1..], &cfg.rsync_denied_options)?;
        return Some(command_of(
            TransferKind::Rsync { direction },
            RSYNC_PATH,
            &words[1..],
            operands,
        ));
    }
    None
}

fn command_of(kind: TransferKind, exe: &str, args: &[&str], operands: Operands) -> TransferCommand {
    let mut argv = Vec::with_capacity(args.len() + 1);
    argv.push(exe.to_owned());
    argv.extend(args.iter().map(|s| (*s).to_owned()));
    TransferCommand {
        kind,
        argv,
        operands,
    }
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
fn check_scp_args(args: &[&str], allowed_flags: &[String]) -> Option<(Direction, Operands)> {
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
    let mut recursive = false;
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
                c if allowed.contains(&c) => {
                    recursive |= c == 'r';
                    None
                }
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
            let operands = Operands::Scp {
                path: (*path).to_owned(),
                recursive,
            };
            Some((direction?, operands))
        }
        _ => None,
    }
}

/// How an allow-listed `rsync --server` long option takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RsyncValue {
    /// A flag: `--name` only.
    Flag,
    /// `--name=N`, a decimal integer (`--max-delete=-1` is sent too).
    Integer,
    /// `--name=SIZE`: digits, an optional fraction and unit (`1048576`, `2G`, `1.5k`).
    Size,
    /// `--name=LIST`: names of algorithms or output levels (`xxh128`, `zstd`, `progress2,name0`).
    Names,
    /// `--skip-compress=gz/jpg`: file-name suffixes separated by `/`.
    Suffixes,
    /// `--suffix=.bak`: one file-name suffix (rsync itself refuses a `/`).
    Suffix,
    /// `--log-format=FMT`: only the formats a client sends (it only tells the server
    /// what to report back; `--out-format` itself stays on the client).
    LogFormat,
    /// `--name DIR` (as the client sends it) or `--name=DIR`: a directory the server
    /// reads or writes files in, with the user's own rights, like the destination.
    Dir,
}

/// The long options a client sends to `rsync --server` for ordinary transfers: exactly
/// what `server_options()` in rsync 3.2.7 and 3.5.0 (`options.c`) emits, checked against
/// `parse_arguments()` for what the server then does. None of them makes the server parse
/// further options (from the stream or the environment), run a command, or open a config,
/// log file, batch file, device or socket.
///
/// Everything else is refused, among them (each checked in `parse_arguments`/`main.c`):
/// `-s`, `--secluded-args`, `--protect-args`: the server reads a second argument list
/// from the stream, where `--daemon --config=FILE` makes it run FILE's `pre-xfer exec`;
/// `--old-args`, `--trust-sender`: client-side quoting and trust switches, never sent;
/// `--files-from`, `-0`/`--from0`: a file list read from the stream or from a file (`--from0`
/// only matters with it); `--daemon`, `--config`, `--dparam`, `--detach`, `--no-detach`:
/// daemon mode and its config file; `-e COMMAND`/`--rsh`, `--rsync-path`, `-M`/`--remote-option`:
/// commands and options for a further hop; `--log-file`, `--log-file-format`: a log file;
/// `--write-batch`, `--only-write-batch`, `--read-batch`: a batch file; `--write-devices`,
/// `--copy-devices`: device contents; `--iconv` (and `--no-iconv`): makes the server load a
/// character-set converter named by the user (a glibc gconv module); `--address`, `--port`,
/// `--sockopts`, `--contimeout`, `--password-file`, `--early-input`: sockets and daemon
/// logins; `--filter`/`-f`, `-F`, `--exclude*`, `--include*`: filters travel in the protocol,
/// the `*-from` forms open files; `--usermap`, `--groupmap`, `--chown`: sent with `\*`
/// quoting, which is shell syntax here anyway; `--fake-super`, `--copy-as`, `--confine-root`,
/// `--stop-*`, `--outbuf`, `--protocol`, `--version`, `--help`: never sent by a client.
const RSYNC_LONG_OPTIONS: &[(&str, RsyncValue)] = &[
    ("--list-only", RsyncValue::Flag),
    ("--no-r", RsyncValue::Flag),
    ("--specials", RsyncValue::Flag),
    ("--no-specials", RsyncValue::Flag),
    ("--msgs2stderr", RsyncValue::Flag),
    ("--no-msgs2stderr", RsyncValue::Flag),
    ("--delete", RsyncValue::Flag),
    ("--delete-before", RsyncValue::Flag),
    ("--delete-during", RsyncValue::Flag),
    ("--delete-delay", RsyncValue::Flag),
    ("--delete-after", RsyncValue::Flag),
    ("--delete-excluded", RsyncValue::Flag),
    ("--delete-missing-args", RsyncValue::Flag),
    ("--ignore-missing-args", RsyncValue::Flag),
    ("--force", RsyncValue::Flag),
    ("--super", RsyncValue::Flag),
    ("--size-only", RsyncValue::Flag),
    ("--stats", RsyncValue::Flag),
    ("--partial", RsyncValue::Flag),
    ("--delay-updates", RsyncValue::Flag),
    ("--inplace", RsyncValue::Flag),
    ("--append", RsyncValue::Flag),
    ("--no-W", RsyncValue::Flag),
    ("--ignore-errors", RsyncValue::Flag),
    ("--copy-unsafe-links", RsyncValue::Flag),
    ("--safe-links", RsyncValue::Flag),
    ("--numeric-ids", RsyncValue::Flag),
    ("--ignore-existing", RsyncValue::Flag),
    ("--existing", RsyncValue::Flag),
    ("--fsync", RsyncValue::Flag),
    ("--no-implied-dirs", RsyncValue::Flag),
    ("--remove-source-files", RsyncValue::Flag),
    ("--remove-sent-files", RsyncValue::Flag),
    ("--preallocate", RsyncValue::Flag),
    ("--open-noatime", RsyncValue::Flag),
    ("--mkpath", RsyncValue::Flag),
    ("--new-compress", RsyncValue::Flag),
    ("--old-compress", RsyncValue::Flag),
    ("--compress-level", RsyncValue::Integer),
    ("--timeout", RsyncValue::Integer),
    ("--bwlimit", RsyncValue::Integer),
    ("--max-delete", RsyncValue::Integer),
    ("--modify-window", RsyncValue::Integer),
    ("--checksum-seed", RsyncValue::Integer),
    ("--min-size", RsyncValue::Size),
    ("--max-size", RsyncValue::Size),
    ("--max-alloc", RsyncValue::Size),
    ("--checksum-choice", RsyncValue::Names),
    ("--compress-choice", RsyncValue::Names),
    ("--info", RsyncValue::Names),
    ("--skip-compress", RsyncValue::Suffixes),
    ("--suffix", RsyncValue::Suffix),
    ("--log-format", RsyncValue::LogFormat),
    ("--backup-dir", RsyncValue::Dir),
    ("--partial-dir", RsyncValue::Dir),
    ("--temp-dir", RsyncValue::Dir),
    ("--compare-dest", RsyncValue::Dir),
    ("--copy-dest", RsyncValue::Dir),
    ("--link-dest", RsyncValue::Dir),
];

/// Letters of the client's option cluster (`-vlogDtpre.iLsfxCIvu`) that take no value:
/// `server_options()` builds the cluster from exactly these (besides `s`, refused above,
/// and `e`, below). Absent on purpose: `s`, `0`, `a`, `P`, `i`, `h`, `V`, `F`, `4`, `6`, `8`
/// (never sent) and every letter that takes a value (`B`, `f`, `M`, `T`, `@`, `e`).
const RSYNC_FLAG_LETTERS: &str = "vqbunldKmOJyLkWHogDtUNpEAXrcCIRxSz";

/// The option values a client sends with `--log-format`.
const RSYNC_LOG_FORMATS: &[&str] = &["%i", "%i%I", "%o", "X"];

/// `rsync --server [--sender] OPTIONS . PATH...`. `--sender` means the server sends: a
/// download. Only the allow-listed options pass (see [`RSYNC_LONG_OPTIONS`]); `denied`
/// (`[transfer] rsync_denied_options`) removes more of them: `--name` or a letter `-x`.
fn check_rsync_args(args: &[&str], denied: &[String]) -> Option<(Direction, Operands)> {
    let (first, rest) = args.split_first()?;
    if *first != "--server" {
        return None;
    }
    let (direction, rest) = match rest.split_first() {
        Some((&"--sender", tail)) => (Direction::Download, tail),
        _ => (Direction::Upload, rest),
    };
    let letter_denied = |c: char| {
        denied.iter().any(|d| {
            let mut chars = d.chars();
            chars.next() == Some('-') && chars.next() == Some(c) && chars.next().is_none()
        })
    };
    let mut i = 0;
    loop {
        let word = *rest.get(i)?;
        i += 1;
        if word == "." {
            break;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (long, None),
            };
            let option = format!("--{name}");
            let (_, kind) = RSYNC_LONG_OPTIONS.iter().find(|(o, _)| *o == option)?;
            if denied.contains(&option) {
                return None;
            }
            let value = match (kind, attached) {
                (RsyncValue::Flag, None) => continue,
                (RsyncValue::Flag, Some(_)) => return None,
                (_, Some(value)) => value,
                // Only directories are sent as a separate word (`--backup-dir DIR`).
                (RsyncValue::Dir, None) => {
                    i += 1;
                    *rest.get(i - 1)?
                }
                (_, None) => return None,
            };
            if !rsync_value_ok(*kind, value) {
                return None;
            }
        } else if let Some(group) = word.strip_prefix('-') {
            if !rsync_short_word_ok(group, &letter_denied) {
                return None;
            }
        } else {
            return None;
        }
    }
    let paths = &rest[i..];
    // rsync's option parser (popt) also takes options after operands, so no operand may
    // look like one.
    if paths.is_empty() || paths.iter().any(|p| p.starts_with('-')) {
        return None;
    }
    if direction == Direction::Upload && paths.len() != 1 {
        return None;
    }
    let owned = |words: &[&str]| words.iter().map(|w| (*w).to_owned()).collect();
    let operands = Operands::Rsync {
        options: owned(&rest[..i - 1]),
        paths: owned(paths),
    };
    Some((direction, operands))
}

fn rsync_value_ok(kind: RsyncValue, value: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let short = value.len() <= 256;
    match kind {
        RsyncValue::Flag => false,
        RsyncValue::Integer => {
            digits(value.strip_prefix('-').unwrap_or(value)) && value.len() <= 20
        }
        RsyncValue::Size => {
            let number = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            let unit = value.len() - number.len();
            let (whole, fraction) = number.split_once('.').unwrap_or((number, "0"));
            unit <= 3 && digits(whole) && digits(fraction) && value.len() <= 32
        }
        RsyncValue::Names => {
            short
                && !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b',')
        }
        RsyncValue::Suffixes => {
            short
                && !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
        }
        RsyncValue::Suffix => short && !value.is_empty() && !value.contains('/'),
        RsyncValue::LogFormat => RSYNC_LOG_FORMATS.contains(&value),
        // Not "." (the separator before the operands) and nothing option-like.
        RsyncValue::Dir => !value.is_empty() && value != "." && !value.starts_with('-'),
    }
}

/// One short-option word after its `-`: a cluster of [`RSYNC_FLAG_LETTERS`], optionally
/// ending in `e` with the capability string (`e.iLsfxCIvu`, or `e32.1iLs...` from a
/// pre-release client); or `B` with a block size; or `@` with a modify window.
fn rsync_short_word_ok(group: &str, letter_denied: &dyn Fn(char) -> bool) -> bool {
    if let Some(size) = group.strip_prefix('B') {
        return !letter_denied('B')
            && rsync_value_ok(RsyncValue::Integer, size)
            && !size.starts_with('-');
    }
    if let Some(window) = group.strip_prefix('@') {
        return !letter_denied('@') && rsync_value_ok(RsyncValue::Integer, window);
    }
    let (flags, capabilities) = match group.split_once('e') {
        Some((flags, caps)) => (flags, Some(caps)),
        None => (group, None),
    };
    if flags.is_empty() && capabilities.is_none() {
        return false;
    }
    if !flags
        .chars()
        .all(|c| RSYNC_FLAG_LETTERS.contains(c) && !letter_denied(c))
    {
        return false;
    }
    // `-e` is `--rsh`: a command for a client, but on a server only the capability string
    // the client sends with it (compat.c reads it as `client_info`).
    capabilities.is_none_or(rsync_capabilities_ok)
}

/// `.LETTERS`, or `VERSION.SUBVERSIONLETTERS` from a pre-release client.
fn rsync_capabilities_ok(caps: &str) -> bool {
    let Some((version, rest)) = caps.split_once('.') else {
        return false;
    };
    let letters = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    let subversion = rest.len() - letters.len();
    let prerelease = !version.is_empty();
    version.bytes().all(|b| b.is_ascii_digit())
        && (prerelease == (subversion > 0))
        && letters.bytes().all(|b| b.is_ascii_alphabetic())
        && caps.len() <= 64
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

#[cfg(test)]
mod rsync_tests {
    use super::*;

    fn cfg() -> TransferConfig {
        TransferConfig::default()
    }

    /// Server command lines a real rsync 3.5.0 client sent (captured with an `-e` wrapper that
    /// logs its argv) for, in order: -av; -az --delete; -a --partial; -a --inplace; -aHAX;
    /// -a --checksum; -rlptgoD; --delete-after --delete-excluded; --backup --backup-dir;
    /// --partial-dir; -P; --append-verify; --numeric-ids; --bwlimit --timeout;
    /// --compress-choice; --checksum-choice; --link-dest; --remove-source-files; -W;
    /// --sparse; -u; --dry-run; -ai; --stats; --size-only; --temp-dir; --max-delete;
    /// --min-size --max-size; --delay-updates; --mkpath; --ignore-existing; --existing;
    /// --fsync; --safe-links; --copy-unsafe-links; --super; -x; -m; -K; -y; -c -C; -R; -U;
    /// -O -J; -S --inplace; --modify-window=2; -q; -b --suffix; --preallocate;
    /// --open-noatime; --list-only; -k -L; --delete-missing-args; --ignore-missing-args;
    /// --max-alloc; --checksum-seed; --compress-level; --skip-compress; --old-compress;
    /// --new-compress; --msgs2stderr; --no-msgs2stderr; -B 2048; --modify-window=-1; -vvv;
    /// --out-format; -d --delete; --no-implied-dirs -R. rsync 3.2.7 sends the same.
    const REAL_UPLOADS: &[&str] = &[
        "-vlogDtpre.iLsfxCIvu",
        "-logDtprze.iLsfxCIvu --delete",
        "-logDtpre.iLsfxCIvu --partial",
        "-logDtpre.iLsfxCIvu --inplace",
        "-lHogDtpAXre.iLsfxCIvu",
        "-logDtprce.iLsfxCIvu",
        "-logDtpre.iLsfxCIvu --delete-after --delete-excluded",
        "-blogDtpre.iLsfxCIvu --backup-dir /tmp/cap/bk",
        "-logDtpre.iLsfxCIvu --partial-dir .rsync-partial",
        "-logDtpre.iLsfxCIvu --log-format=X --partial",
        "-logDtpre.iLsfxCIvu --append --append",
        "-logDtpre.iLsfxCIvu --numeric-ids",
        "-logDtpre.iLsfxCIvu --timeout=30 --bwlimit=1000",
        "-logDtpre.iLsfxCIvu --compress-choice=zstd",
        "-logDtpre.iLsfxCIvu --checksum-choice=xxh128",
        "-logDtpre.iLsfxCIvu --link-dest /tmp/cap/src",
        "-logDtpre.iLsfxCIvu --remove-source-files",
        "-lWogDtpre.iLsfxCIvu",
        "-logDtprSe.iLsfxCIvu",
        "-ulogDtpre.iLsfxCIvu",
        "-nlogDtpre.iLsfxCIvu",
        "-logDtpre.iLsfxCIvu --log-format=%i",
        "-logDtpre.iLsfxCIvu --stats",
        "-logDtpre.iLsfxCIvu --size-only",
        "-logDtpre.iLsfxCIvu --temp-dir /tmp",
        "-logDtpre.iLsfxCIvu --max-delete=5 --delete",
        "-logDtpre.iLsfxCIvu --min-size=1 --max-size=1048576",
        "-logDtpre.iLsfxCIvu --delay-updates",
        "-logDtpre.iLsfxCIvu --mkpath",
        "-logDtpre.iLsfxCIvu --ignore-existing",
        "-logDtpre.iLsfxCIvu --existing",
        "-logDtpre.iLsfxCIvu --fsync",
        "-logDtpre.iLsfxCIvu --safe-links",
        "-logDtpre.iLsfxCIvu --copy-unsafe-links",
        "-logDtpre.iLsfxCIvu --super",
        "-logDtprxe.iLsfxCIvu",
        "-lmogDtpre.iLsfxCIvu",
        "-lKogDtpre.iLsfxCIvu",
        "-lyogDtpre.iLsfxCIvu",
        "-logDtprcCe.iLsfxCIvu",
        "-logDtprRe.iLsfxCIvu",
        "-logDtUpre.iLsfxCIvu",
        "-lOJogDtpre.iLsfxCIvu",
        "-logDtprSe.iLsfxCIvu --inplace",
        "-logDtpre.iLsfxCIvu --modify-window=2",
        "-qlogDtpre.iLsfxCIvu",
        "-blogDtpre.iLsfxCIvu --suffix=.bak",
        "-logDtpre.iLsfxCIvu --preallocate",
        "-logDtpre.iLsfxCIvu --open-noatime",
        "-logDtpre.iLsfxCIvu --list-only",
        "-logDtpre.iLsfxCIvu --delete-missing-args",
        "-logDtpre.iLsfxCIvu --max-alloc=2G",
        "-logDtpre.iLsfxCIvu --checksum-seed=5",
        "-logDtprze.iLsfxCIvu --compress-level=3",
        "-logDtprze.iLsfxCIvu --old-compress",
        "-logDtpre.iLsfxCIvu --new-compress",
        "-logDtpre.iLsfxCIvu --msgs2stderr",
        "-logDtpre.iLsfxCIvu --no-msgs2stderr",
        "-logDtpre.iLsfxCIvu -B2048",
        "-logDtpre.iLsfxCIvu -@-1",
        "-vvvlogDtpre.iLsfxCIvu",
        "-de.LsfxCIvu --no-r --delete",
        "-logDtprRe.iLsfxCIvu --no-implied-dirs",
        // rsync 3.0 (protocol 30) and a pre-release client's capability strings.
        "-logDtpre.iLsf",
        "-logDtpre31.2iLsfxC",
    ];

    const REAL_DOWNLOADS: &[&str] = &[
        "-vlogDtpre.iLsfxCIvu",
        "-logDtprze.iLsfxCIvu",
        "-logDtpre.iLsfxCIvu --inplace",
        "-lHogDtpAXre.iLsfxCIvu",
        "-logDtprce.iLsfxCIvu",
        "-logDtpre.LsfxCIvu",
        "-blogDtpre.iLsfxCIvu --backup-dir /tmp/cap/bk",
        "-logDtpre.iLsfxCIvu --append --append",
        "-logDtpre.iLsfxCIvu --timeout=30 --bwlimit=1000",
        "-lLkogDtpre.iLsfxCIvu",
        "-logDtpre.iLsfxCIvu --ignore-missing-args",
        "-logDtprze.iLsfxCIvu --skip-compress=gz/jpg",
        "-logDtpre.iLsfxCIvu --open-noatime",
        "-de.LsfxCIvu",
    ];

    #[test]
    fn real_client_command_lines_are_transfers() {
        for options in REAL_UPLOADS {
            let command = format!("rsync --server {options} . /tmp/cap/d1/");
            let got = classify(&command, false, &cfg());
            assert_eq!(
                got.map(|c| c.kind),
                Some(TransferKind::Rsync {
                    direction: Direction::Upload
                }),
                "{command}"
            );
        }
        for options in REAL_DOWNLOADS {
            let command = format!("rsync --server --sender {options} . /tmp/cap/src/ /tmp/b");
            let got = classify(&command, false, &cfg());
            assert_eq!(
                got.map(|c| c.kind),
                Some(TransferKind::Rsync {
                    direction: Direction::Download
                }),
                "{command}"
            );
        }
    }

    /// Each of these makes the server read options or file names from the stream or a file,
    /// run a command, or open a config, log, batch file, device or socket; or a client never
    /// sends it. Each must leave the transfer path (and run as a recorded exec channel).
    #[test]
    fn options_outside_the_allow_list_are_not_transfers() {
        let refused = [
            // The reported attack and its spellings: a second argument list from the stream.
            "-s",
            "-slogDtpre.iLsfxCIvu",
            "-logDtpsre.iLsfxCIvu",
            "--secluded-args",
            "--protect-args",
            "--no-secluded-args",
            "--no-protect-args",
            "--no-s",
            "--old-args",
            "--no-old-args",
            "--trust-sender",
            // File lists from the stream or a file.
            "--files-from=-",
            "--files-from=-  --from0",
            "--files-from /tmp/list",
            "--from0",
            "-0",
            "-logDtp0re.iLsfxCIvu",
            "--no-from0",
            // Daemon mode and its config (`pre-xfer exec`).
            "--daemon",
            "--daemon --config=r.conf",
            "--config=r.conf",
            "--dparam=x=y",
            "--detach",
            "--no-detach",
            // Commands and options for another hop.
            "-e sh",
            "-e",
            "-esh",
            "-e/bin/sh",
            "-e.x/y",
            "-logDtpre.i;s",
            "-logDtpre..i",
            "-logDtpre31.iLs",
            "-logDtpre.3",
            "--rsh=sh",
            "--rsh sh",
            "--rsync-path=sh",
            "-M--daemon",
            "-M",
            "--remote-option=--daemon",
            // Log, batch files and devices.
            "--log-file=/tmp/l",
            "--log-file-format=%f",
            "--write-batch=/tmp/b",
            "--only-write-batch=X",
            "--read-batch=/tmp/b",
            "--write-devices",
            "--copy-devices",
            "--devices",
            // A character-set converter named by the user.
            "--iconv=latin1",
            "--iconv=.",
            "--no-iconv",
            // Sockets and daemon logins.
            "--address=127.0.0.1",
            "--port=873",
            "--sockopts=SO_SNDBUF=1",
            "--contimeout=5",
            "--password-file=/tmp/p",
            "--early-input=/tmp/e",
            // Filters are protocol data; the *-from forms open files.
            "--filter=._/tmp/x",
            "-f._/tmp/x",
            "-F",
            "--exclude=x",
            "--include=x",
            "--exclude-from=/tmp/x",
            "--include-from=/tmp/x",
            "--cvs-exclude",
            // Never sent by a client.
            "--fake-super",
            "--copy-as=root",
            "--confine-root=/",
            "--stop-after=1",
            "--stop-at=23:59",
            "--time-limit=1",
            "--outbuf=N",
            "--protocol=29",
            "--version",
            "-V",
            "--help",
            "-h",
            "-a",
            "-P",
            "-i",
            "-logDtpre.iLsfxCIvu --usermap=root",
            "--groupmap=root",
            "--chown=root",
            "--server",
            "--debug=ALL",
            "--out-format=%n",
            "-T /tmp",
            "-T/tmp",
            "-B",
            "-B-1",
            "-B1k",
            "-@",
            "-@x",
            // Values outside what a client sends.
            "--partial=1",
            "--delete=x",
            "--timeout",
            "--timeout=x",
            "--timeout=1e3",
            "--max-size=1..2",
            "--max-size=G",
            "--checksum-choice=md5:x",
            "--info=progress2/x",
            "--log-format=%f",
            "--log-format",
            "--skip-compress=a,b",
            "--suffix=/x",
            "--backup-dir",
            "--backup-dir -x",
            "--backup-dir=-x",
            "--partial-dir .",
            "--temp-dir=",
            // Letters never sent, and odd words.
            "-",
            "--",
            "--=x",
            "-logDtpr4e.iLsfxCIvu",
            "-8",
            "---server",
            "--Delete",
        ];
        for options in refused {
            for command in [
                format!("rsync --server {options} . /tmp/x"),
                format!("rsync --server --sender {options} . /tmp/x"),
            ] {
                assert_eq!(
                    classify(&command, false, &cfg()),
                    None,
                    "accepted: {command:?}"
                );
            }
        }
    }

    #[test]
    fn the_operands_stay_operands() {
        for command in [
            // popt parses options after operands too.
            "rsync --server -logDtpre.iLsfxCIvu . /x -s",
            "rsync --server -logDtpre.iLsfxCIvu . /x --daemon",
            "rsync --server --sender -logDtpre.iLsfxCIvu . /x -",
            // An upload has one destination; the dot must be there.
            "rsync --server -logDtpre.iLsfxCIvu . /x /y",
            "rsync --server -logDtpre.iLsfxCIvu /x",
            "rsync --server -logDtpre.iLsfxCIvu .",
            "rsync --server -slogDtpre.iLsfxCIvu",
            // `--server` first, `--sender` only second.
            "rsync -logDtpre.iLsfxCIvu --server . /x",
            "rsync --sender --server -logDtpre.iLsfxCIvu . /x",
            "rsync --server -logDtpre.iLsfxCIvu --sender . /x",
            "rsync --server --sender --sender -logDtpre.iLsfxCIvu . /x",
        ] {
            assert_eq!(
                classify(command, false, &cfg()),
                None,
                "accepted: {command}"
            );
        }
        // A directory option's separate value is not the dot.
        let got = classify(
            "rsync --server -logDtpre.iLsfxCIvu --backup-dir bk . dest",
            false,
            &cfg(),
        )
        .expect("a transfer");
        assert_eq!(got.argv.last().map(String::as_str), Some("dest"));
    }

    #[test]
    fn the_configuration_removes_more_options() {
        let mut c = cfg();
        c.rsync_denied_options = vec!["--inplace".into(), "-z".into(), "-B".into()];
        let cmd = |opts: &str| format!("rsync --server {opts} . /x");
        assert_eq!(
            classify(&cmd("-logDtpre.iLsfxCIvu --inplace"), false, &c),
            None
        );
        assert_eq!(classify(&cmd("-logDtprze.iLsfxCIvu"), false, &c), None);
        assert_eq!(
            classify(&cmd("-logDtpre.iLsfxCIvu -B2048"), false, &c),
            None
        );
        // The capability string is not options: its letters are not denied letters.
        assert!(classify(&cmd("-logDtpre.iLsfxCIvzu"), false, &c).is_some());
        assert!(classify(&cmd("-logDtpre.iLsfxCIvu --partial"), false, &c).is_some());
        // Denying "-e" (in the default list) never refuses the capability string.
        assert!(classify(&cmd("-logDtpre.iLsfxCIvu"), false, &cfg()).is_some());
    }
}
