//! End-to-end test harness for sessrec: real sshd, real PAM, real users, real ptys.
//!
//! Every test file in `tests/tests/` uses these fixtures; each cleans up on drop (also when the
//! test panics) and never touches the host's `/etc/pam.d/sshd`, `/etc/ssh/sshd_config` or real
//! users. Names, ports and directories are unique per run (`srt-<what>-<rand>`), so several test
//! runs can share a machine.
//!
//! # A typical test
//!
//! ```no_run
//! use std::time::Duration;
//! use sessrec_tests::*;
//!
//! #[test]
//! fn typed_text_is_recorded() {
//!     require_e2e!(); // skip (printing why) when not root / no sshd, unless SESSREC_E2E=required
//!     ensure_sessrec_user();
//!     let installed = Installed::recorder_and_pam();        // 4755 root, /usr/local/lib/srt-*/
//!     let builder = PrivateSshd::builder();                 // PAM service name chosen here
//!     let tree = RecordTree::new(&format!(
//!         "[policy]\nservices = [\"{}\"]\n[recorder]\nshell = \"/bin/bash\"\n",
//!         builder.service()
//!     ));
//!     let user = TestUser::new("typing", installed.shell()); // login shell = the recorder
//!     // session required <inst>/pam_sessrec.so config=<tree> services=<svc> recorder=<inst>/sessrec-shell
//!     let sshd = builder.recorded_by(&installed, tree.config_path()).start();
//!     let mut term = sshd.login(&user).interactive();         // real `ssh -tt` on a pty
//!     term.expect(r"\$ $", Duration::from_secs(20));         // type at the prompt
//!     term.send_line("echo hello-$((6*7))");
//!     term.expect("hello-42", Duration::from_secs(20));
//!     term.send_line("exit");
//!     term.wait(Duration::from_secs(20));
//!     let session = tree.wait_sessions(1, Duration::from_secs(10)).remove(0);
//!     let channel = wait_channels(&session, 1, Duration::from_secs(10)).remove(0);
//!     wait_last_event(&channel, "channel.end", Duration::from_secs(10));
//!     assert_chain_ok(&channel);
//!     assert!(stream_text(&channel, Stream::Output).contains("hello-42"));
//! }
//! ```
//!
//! `RecordedLogin::start(tag)` builds exactly that set-up (installed programs, record tree, user,
//! recorded sshd) in one call, for tests that need nothing else.
//!
//! # Modes: `SESSREC_E2E`
//! [`require_e2e!`] / [`e2e_ready`]: with `SESSREC_E2E=required` (CI) any missing prerequisite
//! fails the test; unset, the test returns early printing `skipped: <reason>` only when not
//! root or sshd is missing. `require_e2e!("pamtester", "sudo")` also requires programs.
//!
//! # Build products
//! [`products()`] finds `sessrec-shell`, `sessrec`, `sudo-iolog-import` and
//! `libpam_sessrec.so` in the target directory this test was built in (derived from
//! `current_exe()`), after running `cargo build -p <pkg>` once per test process under a file
//! lock (a no-op when up to date). `SESSREC_E2E_PRODUCTS=DIR` uses prebuilt files instead;
//! `SESSREC_E2E_NO_BUILD=1` skips the build. [`Installed`] copies them into place
//! (recorder 4755 root, `pam_sessrec.so` beside it).
//!
//! # Fixtures
//! - [`ensure_sessrec_user`]: the `sessrec` system user, created as the package does.
//! - [`TestUser`]: `useradd -m` user with a chosen login shell and an ed25519 key
//!   ([`KeyPair`]); [`SshCa`] signs [`Certificate`]s; [`TestGroup`] for group policies.
//! - [`RecordTree`]: fresh `record_dir` (0700) + config file (0644); [`channel_files`],
//!   [`read_lines`], [`events`], [`stream_text`], [`assert_chain_ok`], [`wait_last_event`].
//! - [`PrivateSshd`]: own sshd_config, host key, port, and PAM service
//!   (`/usr/local/sbin/sshd-srt-*` → `/usr/sbin/sshd`, `/etc/pam.d/sshd-srt-*`); add config
//!   lines, `Match` blocks, PAM session lines, trusted CAs. `sshd.log()` shows its log, and the
//!   log is printed when a test panics.
//! - [`SshLogin`]: `exec(cmd, stdin) -> Output` (`ssh -T`), `interactive()` / `pty_exec(cmd)`
//!   (`ssh -tt` on a pty), `scp()`, `sftp_batch()`, `rsync()` (or `scp_args()` /
//!   `rsync_rsh()` to build your own), `with_certificate()`, `with_control_master()`.
//! - [`AuditDaemon`] (a running auditd shared by all tests, started with a private config if
//!   none runs), [`AuditRules`] (rules under the test's own key, deleted exactly on drop),
//!   [`AuditSettings`] (global backlog/rate settings put back on drop), [`AuditImporter`]
//!   (`sessrec-audit-import` on the test's tree): see `audit.rs`.
//! - [`PamService`]: a private `/etc/pam.d/srt-pam-*` stack and `pamtester` runs.
//! - [`SudoersDropIn`]: a `visudo`-checked `/etc/sudoers.d/srt-sudo-*` file.
//! - [`AuthLog`]: wait for authpriv lines (anchors, alerts) in `/var/log/auth.log`;
//!   [`ensure_syslog`] starts rsyslogd when nothing listens on `/dev/log` and proves the
//!   pipeline with a probe message.
//! - [`Mount`]: a small tmpfs (ENOSPC) or a read-only bind mount (EROFS), unmounted on drop.
//! - [`PtySession`]: any command on a pty: `send`, `send_line`, `expect(regex, timeout)`,
//!   `resize`, `send_eof`, `wait(timeout)`, `transcript()`.
//!
//! Environment: `SESSREC_E2E_KEEP=1` keeps temporary files and directories for inspection.
#![deny(unsafe_code)]

mod audit;
mod browser;
mod installed;
mod leftovers;
mod mode;
mod mounts;
mod pam;
mod procs;
mod products;
mod pty;
mod recorded;
mod records;
mod ssh;
mod sshd;
mod sudoers;
mod syslog;
mod users;
pub mod util;

// The only module with FFI (pty spawning and window size).
#[allow(unsafe_code)]
mod sys;

pub use audit::{
    audit_status, auditctl, AuditDaemon, AuditImporter, AuditRules, AuditSettings, SteadySettings,
    AUDIT_RUN_DIR,
};
pub use browser::{chromium, player_dir};
pub use installed::{Installed, INSTALL_PARENT};
pub use mode::{e2e_mode, e2e_ready, require_programs, E2eMode};
pub use mounts::Mount;
pub use pam::PamService;
pub use procs::wait_foreground;
pub use products::{export_pcap_through_tcpdump, products, run_sessrec, Product, Products};
pub use pty::{PtySession, DEFAULT_TIMEOUT};
pub use recorded::{Launch, RecordedLogin};
pub use records::{
    assert_chain_ok, channel_files, events, only_event, read_lines, read_records, stream_bytes,
    stream_text, wait_channels, wait_last_event, RecordTree,
};
pub use sessrec_core::reader::{decode_frames, Frame, Line, VerifyReport};
pub use sessrec_core::record::Stream;
pub use ssh::{SshLogin, EXEC_TIMEOUT};
pub use sshd::{PrivateSshd, SshdBuilder, SSHD};
pub use sudoers::SudoersDropIn;
pub use syslog::{ensure_syslog, AuthLog, AUTH_LOG};
pub use users::{
    ensure_sessrec_user, fingerprint_of, Certificate, KeyPair, SshCa, TestGroup, TestUser,
    SESSREC_USER,
};
pub use util::{
    assert_exit_says, run, run_ok, session_id, stderr, stdout, unique_name, wait_until, TempDir,
};
