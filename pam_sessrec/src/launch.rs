//! The launch check: a recorded login must not be able to start anything before the recorder.
//!
//! - `login-shell`: the user's passwd shell must be the installed recorder (so `chsh` or
//!   `usermod -s` cannot switch recording off).
//! - `force-command`: sshd runs the forced command as `<passwd shell> -c <command>`, so the passwd
//!   shell must read no file the user controls when started that way. bash sources `~/.bashrc`
//!   when it sees it was started by sshd, zsh `~/.zshenv`, fish its `config.fish`, csh/tcsh
//!   `~/.cshrc`; a line like `exec bash -i` there runs before the recorder. Only an allowlist of
//!   shells that read nothing for `-c` is accepted (dash/sh, posh, and shells that run no command
//!   at all), or the recorder itself.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use sessrec_core::config::Launch;

/// Canonical basenames of shells that read no user file for `<shell> -c <command>` when not
/// a login shell, and of "shells" that never run a command.
const SAFE_FOR_FORCE_COMMAND: &[&str] = &["dash", "sh", "posh", "nologin", "false"];

/// Why a login was refused by the launch check.
#[derive(Debug)]
pub enum LaunchError {
    /// The configured recorder path cannot be resolved.
    Recorder(PathBuf, io::Error),
    /// The passwd shell is not the recorder (`login-shell`).
    NotRecorder { shell: PathBuf, recorder: PathBuf },
    /// The passwd shell reads user files for `-c` (`force-command`).
    ReadsUserFiles { shell: PathBuf },
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaunchError::Recorder(path, err) => {
                write!(f, "recorder {} cannot be resolved: {err}", path.display())
            }
            LaunchError::NotRecorder { shell, recorder } => write!(
                f,
                "launch = \"login-shell\" but the passwd shell {} is not the recorder {}",
                shell.display(),
                recorder.display()
            ),
            LaunchError::ReadsUserFiles { shell } => write!(
                f,
                "launch = \"force-command\" but the passwd shell {} may read user files for -c \
                 (allowed: the recorder, {})",
                shell.display(),
                SAFE_FOR_FORCE_COMMAND.join(", ")
            ),
        }
    }
}

impl std::error::Error for LaunchError {}

/// Resolves symlinks; a missing shell resolves to itself (it then matches nothing).
fn resolve(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Checks that `passwd_shell` cannot start anything ahead of `recorder` under `launch`.
pub fn check(launch: Launch, passwd_shell: &Path, recorder: &Path) -> Result<(), LaunchError> {
    let recorder_real = std::fs::canonicalize(recorder)
        .map_err(|e| LaunchError::Recorder(recorder.to_path_buf(), e))?;
    let shell_real = resolve(passwd_shell);
    if shell_real == recorder_real {
        return Ok(());
    }
    match launch {
        Launch::LoginShell => Err(LaunchError::NotRecorder {
            shell: passwd_shell.to_path_buf(),
            recorder: recorder.to_path_buf(),
        }),
        Launch::ForceCommand => {
            let name = shell_real
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("");
            if SAFE_FOR_FORCE_COMMAND.contains(&name) {
                Ok(())
            } else {
                Err(LaunchError::ReadsUserFiles {
                    shell: passwd_shell.to_path_buf(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_shell_requires_the_recorder() {
        let dir = std::env::temp_dir().join(format!("pam-sessrec-launch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let recorder = dir.join("sessrec-shell");
        std::fs::write(&recorder, b"").unwrap();
        let link = dir.join("link-to-recorder");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&recorder, &link).unwrap();

        assert!(check(Launch::LoginShell, &recorder, &recorder).is_ok());
        assert!(check(Launch::LoginShell, &link, &recorder).is_ok());
        assert!(matches!(
            check(Launch::LoginShell, Path::new("/bin/bash"), &recorder),
            Err(LaunchError::NotRecorder { .. })
        ));
        assert!(matches!(
            check(
                Launch::LoginShell,
                Path::new("/bin/sh"),
                &dir.join("missing")
            ),
            Err(LaunchError::Recorder(..))
        ));
        // The recorder is always acceptable under force-command too.
        assert!(check(Launch::ForceCommand, &link, &recorder).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn force_command_refuses_shells_that_read_rc_files() {
        let recorder = Path::new("/bin/true");
        for shell in [
            "/bin/bash",
            "/usr/bin/bash",
            "/bin/zsh",
            "/usr/bin/fish",
            "/bin/tcsh",
        ] {
            assert!(
                check(Launch::ForceCommand, Path::new(shell), recorder).is_err(),
                "{shell}"
            );
        }
        // Debian's /bin/sh is dash.
        assert!(check(Launch::ForceCommand, Path::new("/bin/sh"), recorder).is_ok());
        assert!(check(
            Launch::ForceCommand,
            Path::new("/usr/sbin/nologin"),
            recorder
        )
        .is_ok());
    }
}
