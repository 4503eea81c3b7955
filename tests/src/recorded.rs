//! The common end-to-end set-up: the recorder and pam_sessrec installed, a record tree whose
//! config records this sshd's PAM service with bash as the real shell, one user whose login
//! shell is the recorder, and a private sshd with pam_sessrec in its session stack.
#![forbid(unsafe_code)]

use std::path::Path;

use crate::{ensure_sessrec_user, Installed, PrivateSshd, RecordTree, SshdBuilder, TestUser};

/// How sshd starts the recorder for the test user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Launch {
    /// The passwd shell is the recorder; sshd runs `<recorder> -c <command>`.
    LoginShell,
    /// `ForceCommand <recorder>` in a Match block; the passwd shell is `/bin/sh`.
    ForceCommand,
}

/// Dropped in field order: the tree, the user, sshd, then the installed programs.
pub struct RecordedLogin {
    pub tree: RecordTree,
    pub user: TestUser,
    pub sshd: PrivateSshd,
    pub installed: Installed,
}

impl RecordedLogin {
    /// `tag` goes into the test user's name.
    pub fn start(tag: &str) -> RecordedLogin {
        ensure_sessrec_user();
        let installed = Installed::recorder_and_pam();
        let builder = PrivateSshd::builder();
        let tree = RecordTree::new(&format!(
            "[policy]\nservices = [\"{}\"]\n[recorder]\nshell = \"/bin/bash\"\n",
            builder.service()
        ));
        let user = TestUser::new(tag, installed.shell());
        let sshd = builder.recorded_by(&installed, tree.config_path()).start();
        RecordedLogin {
            tree,
            user,
            sshd,
            installed,
        }
    }

    /// A recorded login started as `launch` (with `launch` set to match in the config),
    /// `recorder_config` appended to the `[recorder]` table, and `customize` applied to the sshd
    /// before it starts.
    pub fn launched(
        tag: &str,
        launch: Launch,
        recorder_config: &str,
        customize: impl FnOnce(SshdBuilder) -> SshdBuilder,
    ) -> RecordedLogin {
        ensure_sessrec_user();
        let installed = Installed::recorder_and_pam();
        let builder = PrivateSshd::builder();
        let launch_line = match launch {
            Launch::LoginShell => "login-shell",
            Launch::ForceCommand => "force-command",
        };
        let tree = RecordTree::new(&format!(
            "min_free_mb = 1\n[policy]\nservices = [\"{}\"]\nlaunch = \"{launch_line}\"\n[recorder]\nshell = \"/bin/bash\"\n{recorder_config}",
            builder.service()
        ));
        let (user, builder) = match launch {
            Launch::LoginShell => (TestUser::new(tag, installed.shell()), builder),
            Launch::ForceCommand => {
                let user = TestUser::new(tag, Path::new("/bin/sh"));
                let builder = builder.match_block(&format!(
                    "Match User {}\n    ForceCommand {}",
                    user.name(),
                    installed.shell().display()
                ));
                (user, builder)
            }
        };
        let sshd = customize(builder)
            .recorded_by(&installed, tree.config_path())
            .start();
        RecordedLogin {
            tree,
            user,
            sshd,
            installed,
        }
    }
}
