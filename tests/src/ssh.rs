//! The OpenSSH client pointed at a private sshd: exec channels with captured output, pty
//! sessions, and the argument lists scp/sftp/rsync need.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::pty::PtySession;
use crate::users::Certificate;
use crate::util::output_with_timeout;

/// Bound on one exec channel unless [`SshLogin::exec_timeout`] says otherwise.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(60);

/// How to reach one user on a private sshd: port, user, key, optional certificate and extra
/// client options. Made by [`crate::PrivateSshd::login`]; cheap to clone and adjust.
#[derive(Clone, Debug)]
pub struct SshLogin {
    port: u16,
    user: String,
    key: PathBuf,
    certificate: Option<PathBuf>,
    options: Vec<String>,
    env: Vec<(String, String)>,
}

impl SshLogin {
    pub fn new(port: u16, user: &str, key: &Path) -> SshLogin {
        SshLogin {
            port,
            user: user.to_string(),
            key: key.to_path_buf(),
            certificate: None,
            options: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Uses another private key.
    pub fn with_key(mut self, key: &Path) -> SshLogin {
        self.key = key.to_path_buf();
        self
    }

    /// Presents `cert` (signed for the current key) instead of the bare key.
    pub fn with_certificate(mut self, cert: &Certificate) -> SshLogin {
        self.certificate = Some(cert.path().to_path_buf());
        self
    }

    /// Adds a client option, e.g. `"SendEnv=SESSREC_TICKET"` or `"ControlPath=/tmp/x"`.
    pub fn option(mut self, option: &str) -> SshLogin {
        self.options.push(option.to_string());
        self
    }

    /// Multiplexes every connection made through this login over one master connection
    /// (`ControlMaster=auto`, `ControlPath=socket`, `ControlPersist=60`): several channels
    /// then share one sshd connection and so one PAM session. End it with
    /// [`SshLogin::stop_master`].
    pub fn with_control_master(self, socket: &Path) -> SshLogin {
        self.option("ControlMaster=auto")
            .option(&format!("ControlPath={}", socket.display()))
            .option("ControlPersist=60")
    }

    /// `ssh -O exit`: closes the master connection of [`SshLogin::with_control_master`].
    pub fn stop_master(&self) {
        let mut cmd = self.ssh_command(&["-O", "exit"]);
        let _ = output_with_timeout(&mut cmd, b"", Duration::from_secs(20));
    }

    /// Sets an environment variable for the client process (sent with `SendEnv` if the
    /// option is also given).
    pub fn env(mut self, key: &str, value: &str) -> SshLogin {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `user@127.0.0.1`.
    pub fn destination(&self) -> String {
        format!("{}@127.0.0.1", self.user)
    }

    /// The `-o` options shared by ssh, scp and sftp (no port flag, which differs between them):
    /// no user config, batch mode, this key only, no host key checks, bounded connect time.
    pub fn common_options(&self) -> Vec<String> {
        let mut args: Vec<String> = vec!["-F".into(), "/dev/null".into()];
        let mut opt = |o: String| {
            args.push("-o".into());
            args.push(o);
        };
        opt("BatchMode=yes".into());
        opt("StrictHostKeyChecking=no".into());
        opt("UserKnownHostsFile=/dev/null".into());
        opt("GlobalKnownHostsFile=/dev/null".into());
        opt("IdentitiesOnly=yes".into());
        opt("IdentityAgent=none".into());
        opt(format!("IdentityFile={}", self.key.display()));
        if let Some(cert) = &self.certificate {
            opt(format!("CertificateFile={}", cert.display()));
        }
        opt("ConnectTimeout=15".into());
        opt("ServerAliveInterval=5".into());
        opt("ServerAliveCountMax=6".into());
        opt("LogLevel=ERROR".into());
        for o in &self.options {
            opt(o.clone());
        }
        args
    }

    /// Arguments for `ssh` up to (not including) the destination: common options plus `-p`.
    pub fn ssh_args(&self) -> Vec<String> {
        let mut args = self.common_options();
        args.push("-p".into());
        args.push(self.port.to_string());
        args
    }

    /// Arguments for `scp` or `sftp` before the paths (they spell the port `-P`).
    pub fn scp_args(&self) -> Vec<String> {
        let mut args = self.common_options();
        args.push("-P".into());
        args.push(self.port.to_string());
        args
    }

    /// The value for `rsync -e`: an ssh command line with these options.
    pub fn rsync_rsh(&self) -> String {
        let mut parts = vec!["ssh".to_string()];
        parts.extend(self.ssh_args());
        parts.join(" ")
    }

    /// A prepared `ssh` command with `extra` flags (e.g. `["-T"]`, `["-tt"]`, `["-N", "-L",
    /// "..."]`) and the destination; append the remote command yourself.
    pub fn ssh_command(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(self.ssh_args())
            .args(extra)
            .arg(self.destination());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `remote` in an exec channel without a tty (`ssh -T`), feeding `stdin`, within
    /// [`EXEC_TIMEOUT`]. Returns stdout, stderr and the exit status as the client saw them.
    pub fn exec(&self, remote: &str, stdin: &[u8]) -> Output {
        self.exec_timeout(remote, stdin, EXEC_TIMEOUT)
    }

    pub fn exec_timeout(&self, remote: &str, stdin: &[u8], timeout: Duration) -> Output {
        let mut cmd = self.ssh_command(&["-T"]);
        cmd.arg(remote);
        output_with_timeout(&mut cmd, stdin, timeout)
    }

    /// `scp <options> args...` (use `remote_path()` for the remote side; add `-O` for the
    /// legacy protocol), bounded by `timeout`.
    pub fn scp(&self, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = Command::new("scp");
        cmd.args(self.scp_args()).args(args);
        output_with_timeout(&mut cmd, b"", timeout)
    }

    /// `sftp -b - <options> user@127.0.0.1` running the batch commands in `batch` (one per
    /// line; a failing command ends the batch with a non-zero exit), bounded by `timeout`.
    pub fn sftp_batch(&self, batch: &str, timeout: Duration) -> Output {
        let mut cmd = Command::new("sftp");
        cmd.args(["-b", "-"])
            .args(self.scp_args())
            .arg(self.destination());
        output_with_timeout(&mut cmd, batch.as_bytes(), timeout)
    }

    /// `rsync -e "<ssh with these options>" args...`, bounded by `timeout`.
    pub fn rsync(&self, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = Command::new("rsync");
        cmd.arg("-e").arg(self.rsync_rsh()).args(args);
        output_with_timeout(&mut cmd, b"", timeout)
    }

    /// `user@127.0.0.1:path`, the remote side of an scp or rsync argument list.
    pub fn remote_path(&self, path: &str) -> String {
        format!("{}:{path}", self.destination())
    }

    /// An interactive login (`ssh -tt`, no command) on a fresh 80×24 pty.
    pub fn interactive(&self) -> PtySession {
        PtySession::spawn(self.ssh_command(&["-tt"]), 80, 24)
    }

    /// `ssh -tt dest remote` on a fresh 80×24 pty (a command with a tty).
    pub fn pty_exec(&self, remote: &str) -> PtySession {
        let mut cmd = self.ssh_command(&["-tt"]);
        cmd.arg(remote);
        PtySession::spawn(cmd, 80, 24)
    }
}
