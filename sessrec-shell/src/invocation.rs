//! What sshd (or login, su, tmux) asked for, from argv and `SSH_ORIGINAL_COMMAND`.
//!
//! | argv                              | meaning                                              |
//! |-----------------------------------|------------------------------------------------------|
//! | `-sessrec-shell` (argv[0] = `-…`) | interactive login shell                               |
//! | `sessrec-shell -c CMD`            | run CMD (exec channel, or a transfer)                 |
//! | `sessrec-shell -c <own path>`     | ForceCommand mode (see below)                         |
//! | `sessrec-shell` (no arguments)    | ForceCommand mode                                     |
//!
//! ForceCommand mode: `SSH_ORIGINAL_COMMAND` set → that command; unset → interactive login
//! shell. `ForceCommand /usr/sbin/sessrec-shell` reaches the recorder either directly (passwd
//! shell `/bin/sh -c /usr/sbin/sessrec-shell` execs it without arguments) or as
//! `sessrec-shell -c /usr/sbin/sessrec-shell` when the passwd shell is the recorder itself.
#![forbid(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The name that marks ForceCommand mode when given as `-c` command (besides the own path).
pub const FORCE_COMMAND_MARKER: &str = "sessrec-shell";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// Run the real shell as a login shell (`argv[0]` = `-bash`).
    pub login: bool,
    /// `None`: an interactive shell. `Some(cmd)`: `shell -c cmd`, or a transfer.
    pub command: Option<OsString>,
    /// The command came from `SSH_ORIGINAL_COMMAND` (ForceCommand mode).
    pub force_command: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (usage: sessrec-shell [-c COMMAND]; it is meant to be a login shell or sshd ForceCommand)",
            self.0
        )
    }
}

fn is_force_marker(command: &OsStr, own_path: Option<&Path>) -> bool {
    let trimmed = command.as_bytes().trim_ascii();
    if trimmed == FORCE_COMMAND_MARKER.as_bytes() {
        return true;
    }
    own_path.is_some_and(|p| p.as_os_str().as_bytes() == trimmed)
}

/// Decides the invocation from argv (including argv[0]), the recorder's own path, and the value
/// of `SSH_ORIGINAL_COMMAND`.
pub fn parse(
    argv: &[OsString],
    own_path: Option<&Path>,
    original_command: Option<OsString>,
) -> Result<Invocation, UsageError> {
    let argv0_login = argv
        .first()
        .is_some_and(|a| a.as_bytes().first() == Some(&b'-'));
    let args = argv.get(1..).unwrap_or(&[]);
    let (login_flag, rest) = match args.first().map(|a| a.as_bytes()) {
        Some(b"-l") | Some(b"--login") => (true, &args[1..]),
        _ => (false, args),
    };
    let login = argv0_login || login_flag;
    let force_mode = |login: bool| match original_command.clone() {
        Some(cmd) => Invocation {
            login,
            command: Some(cmd),
            force_command: true,
        },
        None => Invocation {
            login: true,
            command: None,
            force_command: true,
        },
    };
    match rest {
        [] if login => Ok(Invocation {
            login: true,
            command: None,
            force_command: false,
        }),
        [] => Ok(force_mode(false)),
        [flag, command] if flag.as_bytes() == b"-c" => {
            if is_force_marker(command, own_path) {
                Ok(force_mode(login))
            } else {
                Ok(Invocation {
                    login,
                    command: Some(command.clone()),
                    force_command: false,
                })
            }
        }
        [flag] if flag.as_bytes() == b"-c" => Err(UsageError("-c needs a command".into())),
        _ => Err(UsageError(format!(
            "unsupported arguments {:?}",
            rest.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(items: &[&str]) -> Vec<OsString> {
        items.iter().map(OsString::from).collect()
    }

    const OWN: &str = "/usr/sbin/sessrec-shell";

    #[test]
    fn login_shell() {
        let inv = parse(&argv(&["-sessrec-shell"]), Some(Path::new(OWN)), None).unwrap();
        assert_eq!(
            inv,
            Invocation {
                login: true,
                command: None,
                force_command: false
            }
        );
    }

    #[test]
    fn login_shell_ignores_original_command() {
        let inv = parse(
            &argv(&["-sessrec-shell"]),
            Some(Path::new(OWN)),
            Some("rm -rf x".into()),
        )
        .unwrap();
        assert_eq!(inv.command, None);
        assert!(!inv.force_command);
    }

    #[test]
    fn dash_c_runs_command() {
        let inv = parse(
            &argv(&["sessrec-shell", "-c", "ls -l"]),
            Some(Path::new(OWN)),
            None,
        )
        .unwrap();
        assert_eq!(inv.command.as_deref(), Some(OsStr::new("ls -l")));
        assert!(!inv.login && !inv.force_command);
    }

    #[test]
    fn force_command_via_own_path() {
        let inv = parse(
            &argv(&["sessrec-shell", "-c", OWN]),
            Some(Path::new(OWN)),
            Some("uname -a".into()),
        )
        .unwrap();
        assert_eq!(inv.command.as_deref(), Some(OsStr::new("uname -a")));
        assert!(inv.force_command);
        let interactive = parse(
            &argv(&["sessrec-shell", "-c", OWN]),
            Some(Path::new(OWN)),
            None,
        )
        .unwrap();
        assert_eq!(interactive.command, None);
        assert!(interactive.login && interactive.force_command);
    }

    #[test]
    fn bare_invocation_is_force_command_mode() {
        let inv = parse(
            &argv(&[OWN]),
            Some(Path::new(OWN)),
            Some("internal-sftp".into()),
        )
        .unwrap();
        assert_eq!(inv.command.as_deref(), Some(OsStr::new("internal-sftp")));
        let none = parse(&argv(&[OWN]), Some(Path::new(OWN)), None).unwrap();
        assert!(none.login && none.command.is_none());
    }

    #[test]
    fn bad_arguments_are_named() {
        let err = parse(&argv(&["x", "-c"]), None, None).unwrap_err();
        assert!(err.to_string().contains("-c needs a command"));
        let err = parse(&argv(&["x", "--weird"]), None, None).unwrap_err();
        assert!(err.to_string().contains("--weird"));
    }
}
