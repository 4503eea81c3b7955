//! Command-line parsing: a small table-driven parser. The tables are also what the man-page
//! test checks against, so every accepted option is documented.
#![forbid(unsafe_code)]

use std::fmt;

/// One option: `--name` or `--name VALUE`.
#[derive(Debug, Clone, Copy)]
pub struct OptSpec {
    pub name: &'static str,
    /// Metavariable when the option takes a value.
    pub value: Option<&'static str>,
    pub help: &'static str,
}

/// One subcommand.
#[derive(Debug)]
pub struct CmdSpec {
    pub name: &'static str,
    pub usage: &'static str,
    pub summary: &'static str,
    pub options: &'static [OptSpec],
    /// Positional arguments accepted (min, max).
    pub positional: (usize, usize),
}

const fn flag(name: &'static str, help: &'static str) -> OptSpec {
    OptSpec {
        name,
        value: None,
        help,
    }
}

const fn val(name: &'static str, value: &'static str, help: &'static str) -> OptSpec {
    OptSpec {
        name,
        value: Some(value),
        help,
    }
}

/// Options accepted before or after any subcommand.
pub const GLOBAL: &[OptSpec] = &[
    val(
        "--dir",
        "DIR",
        "record tree to read (default: record_dir from the configuration)",
    ),
    val(
        "--config",
        "FILE",
        "configuration file (default: $SESSREC_CONFIG or /etc/sessrec/sessrec.toml)",
    ),
    val(
        "--host",
        "HOST",
        "central tree: only the sessions of hosts matching HOST (a shell glob)",
    ),
    flag("--help", "show help"),
    flag("--version", "show the version"),
];

/// Views check integrity against these anchors too.
const ANCHORS: OptSpec = val(
    "--anchors",
    "FILE",
    "also check the hash chains against anchors exported from syslog",
);

const FILTERS: [OptSpec; 5] = [
    val("--since", "TIME", "sessions that started at or after TIME"),
    val("--until", "TIME", "sessions that started before TIME"),
    val("--user", "USER", "sessions of this unix user"),
    val("--actor", "ACTOR", "sessions of this actor"),
    val("--from", "ADDR", "sessions from this source address"),
];

pub const COMMANDS: &[CmdSpec] = &[
    CmdSpec {
        name: "list",
        usage: "sessrec list [--since TIME] [--until TIME] [--user USER] [--actor ACTOR] [--from ADDR] [--live] [--local] [--anchors FILE] [--json]",
        summary: "list sessions",
        options: &[
            FILTERS[0],
            FILTERS[1],
            FILTERS[2],
            FILTERS[3],
            FILTERS[4],
            flag("--live", "only sessions still running"),
            flag("--verify", "verify every chain (the default; kept for scripts)"),
            flag("--local", "start times in the local time zone"),
            ANCHORS,
            flag("--json", "one JSON object per line"),
        ],
        positional: (0, 0),
    },
    CmdSpec {
        name: "show",
        usage: "sessrec show SESSION [--verbose] [--anchors FILE] [--json]",
        summary: "timeline of a session",
        options: &[
            flag("--verbose", "also every field of every line, as name=value"),
            flag("--json", "one JSON object per timeline entry"),
            ANCHORS,
        ],
        positional: (1, 1),
    },
    CmdSpec {
        name: "play",
        usage: "sessrec play SESSION[/CHANNEL] [--speed X] [--idle-limit DURATION] [--from OFFSET] [--follow] [--raw] [--anchors FILE]",
        summary: "replay in the terminal",
        options: &[
            val("--speed", "X", "playback speed factor (default 1)"),
            val("--idle-limit", "DURATION", "cap pauses at DURATION"),
            val("--from", "OFFSET", "start at this offset into the channel"),
            flag("--follow", "keep playing a live session as it is recorded"),
            flag("--raw", "pass every recorded byte to the terminal (unsafe)"),
            ANCHORS,
        ],
        positional: (1, 1),
    },
    CmdSpec {
        name: "export",
        usage: "sessrec export SESSION[/CHANNEL] --format FORMAT [--output FILE] [--rendered|--typed] [--player DIR] [--raw] [--anchors FILE]",
        summary: "write a channel as asciicast, text, HTML or JSON",
        options: &[
            val("--format", "FORMAT", "asciicast-v2, asciicast-v3, text, html, json or pcap"),
            val("--output", "FILE", "write to FILE instead of standard output"),
            flag("--rendered", "text: the screen as a terminal showed it"),
            flag("--typed", "text: the transcript with every typed glyph kept"),
            val("--player", "DIR", "html: directory holding asciinema-player.min.js and .css"),
            flag("--raw", "keep every recorded sequence (unsafe to replay in a terminal)"),
            ANCHORS,
        ],
        positional: (1, 1),
    },
    CmdSpec {
        name: "verify",
        usage: "sessrec verify [SESSION|--all] [--since TIME] [--until TIME] [--anchors FILE] [--json]",
        summary: "check hash chains and completeness",
        options: &[
            flag("--all", "every session in the tree"),
            FILTERS[0],
            FILTERS[1],
            val("--anchors", "FILE", "check against anchors exported from syslog (journalctl -o json or text)"),
            flag("--json", "one JSON object per file"),
        ],
        positional: (0, 1),
    },
    CmdSpec {
        name: "search",
        usage: "sessrec search REGEX [--input|--output|--commands|--exec|--connect|--forward] [--raw] [--session SESSION] [--fixed-strings] [--ignore-case] [filters] [--anchors FILE] [--json]",
        summary: "find text in recorded input and output",
        options: &[
            flag("--input", "search typed input only"),
            flag("--output", "search output only"),
            flag("--commands", "search reconstructed command lines only"),
            flag("--exec", "search the kernel's exec records (arguments, program)"),
            flag("--connect", "search the kernel's connect records (address:port, program)"),
            flag(
                "--forward",
                "search forwarded connections' destinations (HOST:PORT)",
            ),
            flag("--raw", "search the bytes as recorded, escape sequences and controls included"),
            val("--session", "SESSION", "search this session only"),
            flag("--fixed-strings", "REGEX is a literal string"),
            flag("--ignore-case", "match case-insensitively"),
            FILTERS[0],
            FILTERS[1],
            FILTERS[2],
            FILTERS[3],
            FILTERS[4],
            ANCHORS,
            flag("--json", "one JSON object per match"),
        ],
        positional: (1, 1),
    },
    CmdSpec {
        name: "kill",
        usage: "sessrec kill SESSION[/CHANNEL] [--message TEXT]",
        summary: "end a live session or channel",
        options: &[val("--message", "TEXT", "shown to the user and recorded")],
        positional: (1, 1),
    },
    CmdSpec {
        name: "prune",
        usage: "sessrec prune --older-than DURATION [--dry-run]",
        summary: "delete old closed sessions",
        options: &[
            val("--older-than", "DURATION", "sessions that started longer ago than DURATION"),
            flag("--dry-run", "only list what would be deleted"),
        ],
        positional: (0, 0),
    },
    CmdSpec {
        name: "compress",
        usage: "sessrec compress --older-than DURATION [--dry-run]",
        summary: "compress closed sessions in place (every command reads them as before)",
        options: &[
            val("--older-than", "DURATION", "only sessions started, and files last changed, longer ago than this (e.g. 1d)"),
            flag("--dry-run", "say what would be compressed"),
        ],
        positional: (0, 0),
    },
    CmdSpec {
        name: "hold",
        usage: "sessrec hold [--session ID] [--actor ACTOR] [--host HOST] [--reason TEXT]",
        summary: "put sessions on legal hold (prune keeps them), or list the holds",
        options: &[
            val("--session", "ID", "hold this session"),
            val("--actor", "ACTOR", "hold every session of this actor (a shell glob)"),
            val("--reason", "TEXT", "why (required when adding a hold)"),
        ],
        positional: (0, 0),
    },
    CmdSpec {
        name: "hosts",
        usage: "sessrec hosts [--silent-after DURATION] [--stalled-after DURATION] [--lag-after DURATION] [--prom FILE] [--json]",
        summary: "completeness of a central archive, per host",
        options: &[
            val("--silent-after", "DURATION", "a host with nothing newer, heartbeat or record, is silent (default 3 heartbeat intervals, 1h without heartbeats)"),
            val("--stalled-after", "DURATION", "an open session with no newer line is stalled (default 1h)"),
            val("--lag-after", "DURATION", "an importer further behind, per the newest heartbeat, is a problem (default 15m)"),
            val("--prom", "FILE", "also write node_exporter textfile metrics to FILE"),
            flag("--json", "one JSON object per host"),
        ],
        positional: (0, 0),
    },
    CmdSpec {
        name: "heartbeat",
        usage: "sessrec heartbeat [--interval DURATION]",
        summary: "append this host's state to the record tree (run by sessrec-heartbeat.timer)",
        options: &[val(
            "--interval",
            "DURATION",
            "the interval the timer runs at, recorded for the central archive (default 5m)",
        )],
        positional: (0, 0),
    },
    CmdSpec {
        name: "receive",
        usage: "sessrec --dir CENTRAL receive",
        summary: "file record lines from stdin into a central archive (run by rsyslog's omprog)",
        options: &[],
        positional: (0, 0),
    },
    CmdSpec {
        name: "doctor",
        usage: "sessrec doctor [--sshd-config FILE] [--pam-service NAME]",
        summary: "check the installation",
        options: &[
            val("--sshd-config", "FILE", "the sshd configuration in use (default: sshd's own)"),
            val("--pam-service", "NAME", "the PAM service in use (default: policy.services)"),
        ],
        positional: (0, 0),
    },
    CmdSpec {
        name: "forward-sshd",
        usage: "sessrec forward-sshd [-o FILE]",
        summary: "write the sshd drop-in (PermitOpen) for the [forward] rules",
        options: &[val("--output", "FILE", "write here instead of stdout")],
        positional: (0, 0),
    },
];

/// Short forms of some options.
pub const ALIASES: &[(&str, &str)] = &[
    ("-h", "--help"),
    ("-o", "--output"),
    ("-F", "--fixed-strings"),
    ("-i", "--ignore-case"),
];

/// A usage error, naming the problem.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The parsed command line.
#[derive(Debug)]
pub struct Parsed {
    pub command: Option<&'static CmdSpec>,
    opts: Vec<(&'static str, Option<String>)>,
    pub positional: Vec<String>,
}

impl Parsed {
    pub fn flag(&self, name: &str) -> bool {
        self.opts.iter().any(|(n, _)| *n == name)
    }

    /// The last value given for `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.opts
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

pub fn find_command(name: &str) -> Option<&'static CmdSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// Parses `args` (without the program name).
pub fn parse(args: &[String]) -> Result<Parsed, UsageError> {
    let mut parsed = Parsed {
        command: None,
        opts: Vec::new(),
        positional: Vec::new(),
    };
    let mut only_positional = false;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if only_positional || !arg.starts_with('-') || arg == "-" {
            if parsed.command.is_none() {
                parsed.command = Some(find_command(arg).ok_or_else(|| {
                    UsageError(format!(
                        "unknown command {:?}; commands: {}",
                        crate::escape::escape_control(arg),
                        COMMANDS
                            .iter()
                            .map(|c| c.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?);
            } else {
                parsed.positional.push(arg.clone());
            }
            continue;
        }
        if arg == "--" {
            only_positional = true;
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let name = ALIASES
            .iter()
            .find(|(short, _)| *short == name)
            .map_or(name, |(_, long)| *long);
        let local = parsed.command.map(|c| c.options).unwrap_or(&[]);
        let spec = local
            .iter()
            .chain(GLOBAL.iter())
            .find(|o| o.name == name)
            .ok_or_else(|| {
                let within = parsed
                    .command
                    .map(|c| format!(" for `sessrec {}`", c.name))
                    .unwrap_or_default();
                UsageError(format!(
                    "unknown option {}{within}",
                    crate::escape::escape_control(name)
                ))
            })?;
        let value = match (spec.value, inline) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(UsageError(format!("option {} takes no value", spec.name)))
            }
            (Some(_), Some(v)) => Some(v),
            (Some(meta), None) => {
                let v = args.get(i).ok_or_else(|| {
                    UsageError(format!("option {} needs a value ({meta})", spec.name))
                })?;
                i += 1;
                Some(v.clone())
            }
        };
        parsed.opts.push((spec.name, value));
    }
    if let Some(cmd) = parsed.command {
        if !parsed.flag("--help") {
            let (min, max) = cmd.positional;
            if parsed.positional.len() < min {
                return Err(UsageError(format!(
                    "missing argument; usage: {}",
                    cmd.usage
                )));
            }
            if parsed.positional.len() > max {
                return Err(UsageError(format!(
                    "unexpected argument {:?}; usage: {}",
                    crate::escape::escape_control(&parsed.positional[max]),
                    cmd.usage
                )));
            }
        }
    }
    Ok(parsed)
}

/// Help text for the program or one command.
pub fn help(command: Option<&CmdSpec>) -> String {
    let mut s = String::new();
    match command {
        None => {
            s.push_str(
                "usage: sessrec [--dir DIR] [--config FILE] COMMAND [OPTIONS]\n\ncommands:\n",
            );
            for c in COMMANDS {
                s.push_str(&format!("  {:<8} {}\n", c.name, c.summary));
            }
            s.push_str("\nglobal options:\n");
            push_opts(&mut s, GLOBAL);
            s.push_str(
                "\n`sessrec COMMAND --help` for a command's options; man sessrec(1) for details.\n",
            );
        }
        Some(c) => {
            s.push_str(&format!(
                "usage: {}\n\n{}\n\noptions:\n",
                c.usage, c.summary
            ));
            push_opts(&mut s, c.options);
        }
    }
    s
}

fn push_opts(s: &mut String, opts: &[OptSpec]) {
    for o in opts {
        let left = match o.value {
            Some(v) => format!("{} {v}", o.name),
            None => o.name.to_string(),
        };
        s.push_str(&format!("  {left:<24} {}\n", o.help));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Parsed, UsageError> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_commands_options_and_values() {
        let a = p(&[
            "--dir",
            "/tmp/x",
            "list",
            "--since=2h",
            "--user",
            "bob",
            "--json",
        ])
        .unwrap();
        assert_eq!(a.command.unwrap().name, "list");
        assert_eq!(a.value("--dir"), Some("/tmp/x"));
        assert_eq!(a.value("--since"), Some("2h"));
        assert_eq!(a.value("--user"), Some("bob"));
        assert!(a.flag("--json"));
        assert!(!a.flag("--live"));
        let a = p(&[
            "export",
            "abc/1",
            "-o",
            "f.cast",
            "--format",
            "asciicast-v2",
        ])
        .unwrap();
        assert_eq!(a.positional, vec!["abc/1"]);
        assert_eq!(a.value("--output"), Some("f.cast"));
        let a = p(&["search", "--", "--not-an-option"]).unwrap();
        assert_eq!(a.positional, vec!["--not-an-option"]);
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(p(&["lisst"])
            .unwrap_err()
            .0
            .contains("unknown command \"lisst\""));
        assert!(p(&["list", "--speed", "2"])
            .unwrap_err()
            .0
            .contains("unknown option --speed for `sessrec list`"));
        assert!(p(&["play", "x", "--speed"])
            .unwrap_err()
            .0
            .contains("--speed needs a value"));
        assert!(p(&["show"]).unwrap_err().0.contains("missing argument"));
        assert!(p(&["show", "a", "b"])
            .unwrap_err()
            .0
            .contains("unexpected argument \"b\""));
        assert!(p(&["list", "--json=yes"])
            .unwrap_err()
            .0
            .contains("takes no value"));
    }
}
