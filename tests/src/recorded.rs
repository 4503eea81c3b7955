//! The common end-to-end set-up: the recorder and pam_sessrec installed, a record tree whose
//! config records this sshd's PAM service with bash as the real shell, one user whose login
//! shell is the recorder, and a private sshd with pam_sessrec in its session stack.
#![forbid(unsafe_code)]

use crate::{ensure_sessrec_user, Installed, PrivateSshd, RecordTree, TestUser};

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
}
