//! Shared set-up for the recorder tests: the recorder installed setuid root, a test user whose
//! login shell it is, a record tree with its config, and a grant written the way pam_sessrec
//! writes one (with this test process as the "sshd monitor", which is an ancestor of every
//! recorder it starts), so each test gets its own config without touching /etc/sessrec.
// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Map, Value};
use sessrec_core::grant::{Grant, GrantDir};
use sessrec_core::id::SessionId;
use sessrec_core::identity::Identity;
use sessrec_core::tree::SessionDir;
use sessrec_tests::*;

pub const WAIT: Duration = Duration::from_secs(30);

pub struct Rig {
    pub installed: Installed,
    pub tree: RecordTree,
    pub user: TestUser,
    pub session: SessionId,
    grants: GrantDir,
    record_dir: PathBuf,
}

impl Rig {
    /// `config_body` is appended to the `record_dir` line (see [`RecordTree::new`]).
    pub fn new(prefix: &str, config_body: &str) -> Rig {
        Rig::build(prefix, config_body, None)
    }

    /// Like [`Rig::new`] with `record_dir` somewhere else (a small tmpfs, a read-only mount).
    pub fn with_record_dir(prefix: &str, record_dir: &Path, config_body: &str) -> Rig {
        Rig::build(prefix, config_body, Some(record_dir))
    }

    fn build(prefix: &str, config_body: &str, record_dir: Option<&Path>) -> Rig {
        ensure_sessrec_user();
        let installed = Installed::recorder();
        let tree = RecordTree::new(config_body);
        let record_dir = match record_dir {
            Some(dir) => {
                tree.write_raw_config(&format!(
                    "record_dir = \"{}\"\n{config_body}\n",
                    dir.display()
                ));
                dir.to_path_buf()
            }
            None => tree.record_dir().to_path_buf(),
        };
        let user = TestUser::new(prefix, installed.shell());
        let grants = GrantDir::default();
        let session = SessionId::new().expect("session id");
        let dir = SessionDir::create(&record_dir, session, None).expect("session dir");
        let me = std::process::id();
        let grant = Grant {
            session,
            uid: user.uid(),
            identity: Identity::unverified(user.name(), user.uid()),
            config_path: tree.config_path().to_path_buf(),
            session_dir: dir.path().to_path_buf(),
            monitor_pid: me,
            monitor_start: sessrec_core::sys::process_start_time(me).expect("own start time"),
            login_time: sessrec_core::time::Timestamp::now().to_string(),
            ticket: None,
        };
        grants.write(&grant).expect("write grant");
        Rig {
            installed,
            tree,
            user,
            session,
            grants,
            record_dir,
        }
    }

    pub fn session_dir(&self) -> PathBuf {
        self.record_dir
            .join(sessrec_core::tree::session_relative_path(self.session))
    }

    /// The recorder as the test user would get it from sshd: `argv[0]` and arguments as given,
    /// a clean environment naming the grant.
    pub fn command(&self, argv0: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.installed.shell());
        cmd.arg0(argv0)
            .args(args)
            .env_clear()
            .env("HOME", self.user.home())
            .env("USER", self.user.name())
            .env("LOGNAME", self.user.name())
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("TERM", "xterm")
            .env("SESSREC_SESSION", self.session.to_string())
            .current_dir(self.user.home())
            .uid(self.user.uid())
            .gid(self.user.gid());
        cmd
    }

    /// The environment `command` gives the recorder, for building other command lines.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("HOME".into(), self.user.home().display().to_string()),
            ("USER".into(), self.user.name().into()),
            ("LOGNAME".into(), self.user.name().into()),
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("TERM".into(), "xterm".into()),
            ("SESSREC_SESSION".into(), self.session.to_string()),
        ]
    }

    /// An interactive login shell on a pty of 80×24.
    pub fn login(&self) -> PtySession {
        PtySession::spawn(self.command("-sessrec-shell", &[]), 80, 24)
    }

    /// The n-th channel file (1-based), once it ends with `channel.end`; chain checked.
    pub fn finished_channel(&self, n: usize) -> PathBuf {
        let channels = wait_channels(&self.session_dir(), n, WAIT);
        let path = channels
            .iter()
            .find(|p| p.file_name().and_then(|f| f.to_str()) == Some(&format!("channel-{n}.jsonl")))
            .cloned()
            .unwrap_or_else(|| panic!("no channel-{n}.jsonl in {channels:?}"));
        wait_last_event(&path, "channel.end", WAIT);
        assert_chain_ok(&path);
        path
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.grants.remove(self.session);
    }
}

/// Fields of the single `kind` event, as a map.
pub fn event(path: &Path, kind: &str) -> Map<String, Value> {
    only_event(path, kind)
}

/// Waits until `path` exists and its text contains `needle` (records are flushed on a deadline).
pub fn wait_record_contains(path: &Path, stream: Stream, needle: &str) {
    wait_until(&format!("{needle:?} in {}", path.display()), WAIT, || {
        stream_text(path, stream).contains(needle)
    });
}

/// The recorder's inner pty of channel `n`, from its `channel.start` line.
pub fn inner_pty(rig: &Rig, n: usize) -> PathBuf {
    let dir = rig.session_dir();
    let path = dir.join(format!("channel-{n}.jsonl"));
    wait_until("channel.start", WAIT, || {
        read_lines(&path)
            .iter()
            .any(|l| l.kind() == "channel.start")
    });
    PathBuf::from(
        only_event(&path, "channel.start")["pty"]
            .as_str()
            .expect("channel.start names its pty"),
    )
}

/// Waits until the program on `pty` has switched it to password mode (ECHO off, ICANON on),
/// so that what is typed next meets the recorder's masking rule, not a race.
pub fn wait_password_mode(pty: &Path) {
    use nix::sys::termios::{tcgetattr, LocalFlags};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOCTTY)
        .open(pty)
        .unwrap_or_else(|e| panic!("open {}: {e}", pty.display()));
    wait_until(&format!("password mode on {}", pty.display()), WAIT, || {
        tcgetattr(&file).is_ok_and(|t| {
            !t.local_flags.contains(LocalFlags::ECHO) && t.local_flags.contains(LocalFlags::ICANON)
        })
    });
}

impl Rig {
    /// Rewrites this rig's grant with `change` applied (to test claims that must fail).
    pub fn rewrite_grant(&self, change: impl FnOnce(&mut Grant)) {
        let mut grant = self.grants.read(self.session).expect("read own grant");
        change(&mut grant);
        self.grants.write(&grant).expect("rewrite grant");
    }

    /// Whether a recorder left its claim mark on this rig's grant.
    pub fn grant_claimed(&self) -> bool {
        self.grants.was_claimed(self.session)
    }
}
