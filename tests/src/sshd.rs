//! A private sshd on 127.0.0.1 with its own config, host key and PAM service, started for one
//! test and stopped (with every process it spawned) when dropped.
#![forbid(unsafe_code)]

use std::fs::{self, File};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::installed::Installed;
use crate::leftovers::{register, start_time, Leftover, Registration};
use crate::procs;
use crate::ssh::SshLogin;
use crate::users::{KeyPair, TestUser};
use crate::util::{keep_files, output_with_timeout, random_hex, write_file, TempDir};

/// The system sshd every private instance runs (through a symlink that names its PAM service).
pub const SSHD: &str = "/usr/sbin/sshd";

/// Where the symlinks naming the PAM service go.
const SYMLINK_DIR: &str = "/usr/local/sbin";

/// The PAM stack used unless [`SshdBuilder::pam_stack`] replaces it. `{session}` is replaced
/// by the lines given with [`SshdBuilder::pam_session`]. Keys only: auth is never reached.
const DEFAULT_PAM_STACK: &str = "\
auth     required pam_deny.so
account  required pam_unix.so
password required pam_deny.so
session  required pam_unix.so
{session}";

/// The sshd_config written from scratch for each instance (never an Include of the host's).
/// Options given to [`SshdBuilder::config`] come first and replace the same keyword here.
const BASE_CONFIG: &[&str] = &[
    "UsePAM yes",
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "AuthenticationMethods publickey",
    "AuthorizedKeysFile .ssh/authorized_keys",
    "PermitRootLogin no",
    "AllowUsers srt-*",
    "StrictModes yes",
    "UseDNS no",
    "PrintMotd no",
    "PrintLastLog no",
    "LogLevel VERBOSE",
    "MaxStartups 100:30:200",
    "MaxSessions 32",
    "LoginGraceTime 30",
    "ClientAliveInterval 0",
    "AcceptEnv LANG LC_* SESSREC_TICKET",
    "Subsystem sftp /usr/lib/openssh/sftp-server",
];

/// Options for a [`PrivateSshd`]; start it with [`SshdBuilder::start`]. The PAM service name
/// is chosen when the builder is made ([`SshdBuilder::service`]), so a config naming it can be
/// written before the start.
#[derive(Debug, Clone)]
pub struct SshdBuilder {
    service: String,
    config: Vec<String>,
    match_blocks: Vec<String>,
    pam_session: Vec<String>,
    pam_stack: Option<String>,
    trusted_user_cas: Vec<PathBuf>,
    bastion: Option<Bastion>,
}

/// A bastion of its own on this machine: sshd (and so PAM and the recorder) in its own UTS
/// namespace with its own host name, and in its own mount namespace in which `/dev/log` is a
/// given syslog socket (that bastion's syslog daemon).
#[derive(Debug, Clone)]
struct Bastion {
    host: String,
    syslog_socket: PathBuf,
}

/// Run by sh inside `unshare --uts --mount`: sets the host name, puts the syslog socket at
/// /dev/log (over the host's, or, when the machine has none, on a private /dev that holds the
/// real /dev's entries), then execs sshd. Arguments: host, socket, scratch dir, sshd argv.
const BASTION_SCRIPT: &str = r#"set -e
hostname "$1"
if [ -e /dev/log ] || [ -L /dev/log ]; then
    mount --bind "$2" /dev/log
else
    mkdir -p "$3"
    mount --rbind /dev "$3"
    mount -t tmpfs -o mode=0755 srt-dev /dev
    for n in $(ls -A "$3"); do
        if [ -L "$3/$n" ]; then cp -P "$3/$n" "/dev/$n"
        elif [ -d "$3/$n" ]; then mkdir "/dev/$n"; mount --rbind "$3/$n" "/dev/$n"
        else touch "/dev/$n"; mount --bind "$3/$n" "/dev/$n"; fi
    done
    touch /dev/log
    mount --bind "$2" /dev/log
fi
shift 3
exec "$@""#;

impl Default for SshdBuilder {
    fn default() -> Self {
        SshdBuilder {
            service: format!("sshd-srt-{}", random_hex(4)),
            config: Vec::new(),
            match_blocks: Vec::new(),
            pam_session: Vec::new(),
            pam_stack: None,
            trusted_user_cas: Vec::new(),
            bastion: None,
        }
    }
}

impl SshdBuilder {
    /// The PAM service name this sshd will use (`sshd-srt-<rand>`), which is also the
    /// basename of the program sshd runs as.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Adds the recorder's PAM session line for an installation:
    /// `session required <dir>/pam_sessrec.so config=<config> services=<service>
    /// recorder=<dir>/sessrec-shell`.
    pub fn recorded_by(self, installed: &Installed, config: &Path) -> Self {
        let line = format!(
            "session required {} config={} services={} recorder={}",
            installed.pam_module().display(),
            config.display(),
            self.service,
            installed.shell().display()
        );
        self.pam_session(&line)
    }

    /// Adds a global sshd_config line (`"ForceCommand /x/sessrec-shell"`,
    /// `"DisableForwarding yes"`...). It replaces the default line with the same keyword.
    pub fn config(mut self, line: &str) -> Self {
        self.config.push(line.to_string());
        self
    }

    /// Appends a `Match` block (full text, starting with `Match ...`) after all global lines.
    pub fn match_block(mut self, block: &str) -> Self {
        self.match_blocks.push(block.trim_end().to_string());
        self
    }

    /// Adds a line to the PAM session stack after the default `pam_unix.so` line, e.g.
    /// `format!("session required {} config={}", module.display(), config.display())`.
    /// `{service}` in the line is replaced by the PAM service name.
    pub fn pam_session(mut self, line: &str) -> Self {
        self.pam_session.push(line.to_string());
        self
    }

    /// Replaces the whole PAM service file (`{session}` in it is still replaced by the
    /// [`SshdBuilder::pam_session`] lines).
    pub fn pam_stack(mut self, text: &str) -> Self {
        self.pam_stack = Some(text.to_string());
        self
    }

    /// Trusts this CA public key file for user certificates (`TrustedUserCAKeys`).
    pub fn trusted_user_ca(mut self, ca: &KeyPair) -> Self {
        self.trusted_user_cas.push(ca.public());
        self
    }

    /// Runs sshd as a bastion of its own: in a UTS namespace named `host` (so its records name
    /// that host) and a mount namespace where `/dev/log` is `syslog_socket` (so the recorder's
    /// anchors go to that bastion's syslog daemon, with kernel credentials).
    pub fn bastion(mut self, host: &str, syslog_socket: &Path) -> Self {
        self.bastion = Some(Bastion {
            host: host.to_string(),
            syslog_socket: syslog_socket.to_path_buf(),
        });
        self
    }

    /// Writes the files, checks the config with `sshd -t`, starts `sshd -D -e` and waits until
    /// it accepts connections on its port (up to 20 s). Retries with another port if the one
    /// picked was taken in the meantime.
    pub fn start(self) -> PrivateSshd {
        PrivateSshd::start(self)
    }
}

/// A running private sshd. See [`PrivateSshd::builder`].
#[derive(Debug)]
pub struct PrivateSshd {
    dir: TempDir,
    service: String,
    symlink: PathBuf,
    pam_file: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    port: u16,
    child: Option<Child>,
    registrations: Vec<Registration>,
}

impl PrivateSshd {
    pub fn builder() -> SshdBuilder {
        SshdBuilder::default()
    }

    /// Starts an instance with the default config and PAM stack.
    pub fn start_default() -> PrivateSshd {
        SshdBuilder::default().start()
    }

    fn start(opts: SshdBuilder) -> PrivateSshd {
        ensure_privsep_dir();
        let dir = TempDir::new_in(Path::new("/run"), "sshd", 0o700);
        let host_key = dir.join("ssh_host_ed25519_key");
        crate::util::run(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "srt-host", "-f"])
                .arg(&host_key),
        );
        let service = opts.service.clone();
        let symlink_path = Path::new(SYMLINK_DIR).join(&service);
        let pam_file = Path::new("/etc/pam.d").join(&service);
        let registrations = vec![
            register(Leftover::Path(symlink_path.clone())),
            register(Leftover::Path(pam_file.clone())),
        ];
        fs::create_dir_all(SYMLINK_DIR).expect("create /usr/local/sbin");
        symlink(SSHD, &symlink_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", symlink_path.display()));
        let stack = opts
            .pam_stack
            .clone()
            .unwrap_or_else(|| DEFAULT_PAM_STACK.to_string());
        let session_lines = opts.pam_session.join("\n");
        let mut pam_text = stack
            .replace("{session}", &session_lines)
            .replace("{service}", &service);
        if !pam_text.ends_with('\n') {
            pam_text.push('\n');
        }
        let mut sshd = PrivateSshd {
            config_path: dir.join("sshd_config"),
            log_path: dir.join("sshd.log"),
            dir,
            service,
            symlink: symlink_path,
            pam_file,
            port: 0,
            child: None,
            registrations,
        };
        write_file(&sshd.pam_file, pam_text, 0o644);

        let mut last_log = String::new();
        for _attempt in 0..5 {
            sshd.port = free_port();
            let config = sshd.render_config(&opts, &host_key);
            write_file(&sshd.config_path, config, 0o600);
            sshd.check_config();
            let log = File::create(&sshd.log_path).expect("create sshd log");
            let mut command = match &opts.bastion {
                // unshare(1) and sh exec: the child's pid is sshd's.
                Some(b) => {
                    let mut c = Command::new("unshare");
                    c.args(["--uts", "--mount", "--propagation", "private", "--"])
                        .args(["sh", "-c", BASTION_SCRIPT, "sh", &b.host])
                        .arg(&b.syslog_socket)
                        .arg(sshd.dir.join("dev"))
                        .arg(&sshd.symlink);
                    c
                }
                None => Command::new(&sshd.symlink),
            };
            let child = command
                .args(["-D", "-e", "-f"])
                .arg(&sshd.config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", sshd.symlink.display()));
            let pid = child.id() as i32;
            sshd.child = Some(child);
            if let Some(start) = start_time(pid) {
                sshd.registrations
                    .push(register(Leftover::Process(pid, start)));
            }
            match sshd.wait_listening(Duration::from_secs(20)) {
                Ok(()) => return sshd,
                Err(log) => {
                    sshd.stop();
                    if !log.contains("Address already in use") {
                        panic!(
                            "private sshd on port {} did not start; log:\n{log}",
                            sshd.port
                        );
                    }
                    last_log = log;
                }
            }
        }
        panic!("private sshd found no free port after 5 tries; last log:\n{last_log}");
    }

    fn render_config(&self, opts: &SshdBuilder, host_key: &Path) -> String {
        let keyword = |line: &str| {
            line.split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        };
        let mut lines = vec![
            format!(
                "# private sshd {} for the sessrec end-to-end tests",
                self.service
            ),
            format!("ListenAddress 127.0.0.1:{}", self.port),
            format!("HostKey {}", host_key.display()),
            format!("PidFile {}", self.dir.join("sshd.pid").display()),
        ];
        if !opts.trusted_user_cas.is_empty() {
            let cas = self.dir.join("trusted_user_ca_keys");
            let mut text = String::new();
            for ca in &opts.trusted_user_cas {
                text.push_str(&fs::read_to_string(ca).expect("read CA public key"));
            }
            write_file(&cas, text, 0o644);
            lines.push(format!("TrustedUserCAKeys {}", cas.display()));
        }
        let overridden: Vec<String> = opts.config.iter().map(|l| keyword(l)).collect();
        lines.extend(opts.config.iter().cloned());
        lines.extend(
            BASE_CONFIG
                .iter()
                .filter(|l| !overridden.contains(&keyword(l)))
                .map(|l| l.to_string()),
        );
        for block in &opts.match_blocks {
            lines.push(block.clone());
        }
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }

    fn check_config(&self) {
        let out = output_with_timeout(
            Command::new(&self.symlink)
                .arg("-t")
                .arg("-f")
                .arg(&self.config_path),
            b"",
            Duration::from_secs(30),
        );
        if !out.status.success() {
            panic!(
                "sshd -t rejected the private config:\n{}\n--- config ---\n{}",
                String::from_utf8_lossy(&out.stderr),
                fs::read_to_string(&self.config_path).unwrap_or_default()
            );
        }
    }

    fn wait_listening(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("sshd exited with {status}\n{}", self.log()));
                }
            }
            if TcpStream::connect_timeout(
                &([127, 0, 0, 1], self.port).into(),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("not listening after {timeout:?}\n{}", self.log()));
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PAM service name (`sshd-srt-<rand>`), also the program name sshd logs under.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The PAM service file, `/etc/pam.d/<service>`.
    pub fn pam_file(&self) -> &Path {
        &self.pam_file
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// sshd's log so far (`-e` output: connections, auth, errors, PAM messages).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The listening sshd's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// `sshd -T -C <spec>` against this instance's config (spec like
    /// `user=srt-x,host=localhost,addr=127.0.0.1`): the effective settings, lowercase keywords.
    pub fn effective_config(&self, spec: &str) -> String {
        let out = crate::util::run(
            Command::new(&self.symlink)
                .arg("-T")
                .arg("-f")
                .arg(&self.config_path)
                .arg("-C")
                .arg(spec),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// An ssh client set up to log in as `user` with the user's key.
    pub fn login(&self, user: &TestUser) -> SshLogin {
        SshLogin::new(self.port, user.name(), user.key().private())
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            // The listener first (no new connections), then every connection it forked.
            let sessions = procs::descendants(pid);
            procs::terminate(&[pid], Duration::from_secs(2));
            let _ = child.wait();
            let mut rest = sessions;
            rest.retain(|p| *p != pid);
            procs::terminate(&rest, Duration::from_secs(3));
        }
    }
}

impl Drop for PrivateSshd {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "--- log of private sshd {} (port {}) ---\n{}--- end of sshd log ---",
                self.service,
                self.port,
                self.log()
            );
        }
        let _ = fs::remove_file(&self.symlink);
        let _ = fs::remove_file(&self.pam_file);
        for registration in &self.registrations {
            registration.release();
        }
        if keep_files() {
            eprintln!("keeping sshd files in {}", self.dir.path().display());
        }
    }
}

/// sshd needs its privilege separation directory; on a machine where sshd never ran (no
/// systemd, container) it does not exist yet.
fn ensure_privsep_dir() {
    let dir = Path::new("/run/sshd");
    if !dir.exists() {
        match fs::create_dir(dir) {
            Ok(()) => {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
                    .expect("chmod /run/sshd");
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => panic!("cannot create /run/sshd: {e}"),
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}
