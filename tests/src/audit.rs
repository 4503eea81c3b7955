//! Kernel audit for end-to-end tests: a running auditd, rules under a test's own key, global
//! settings changed and put back, and `sessrec-audit-import` on a test's record tree.
//!
//! Audit state is global to the machine and several test processes (and other suites) run at
//! once, so:
//! - [`AuditDaemon::shared`] uses the auditd the kernel already talks to (the host's, or one a
//!   test started) and otherwise starts one with a private config and log directory under
//!   `/run/srt-auditd/`. Every user holds a shared lock on `/run/srt-auditd/users`; the last
//!   one out (it gets the exclusive lock) stops the auditd a test started and puts back the
//!   kernel's `enabled` flag found before. Setup and teardown take `/run/srt-auditd/lock`, so
//!   they never interleave. A host auditd is never stopped, and its log is only read.
//! - [`AuditRules`] adds rules under a key no one else uses (`srt-<tag>-<rand>`) and on drop
//!   deletes exactly those rules (`auditctl -d` with each rule's own text).
//! - [`AuditSettings`] changes a global setting (backlog limit, backlog wait, rate limit) for a
//!   test that forces loss, and puts the values found back on drop. It waits until no test
//!   holds [`SteadySettings`] (tests that assert that nothing was lost hold it); tests that do
//!   not may see an `audit_gap` from it, which is the truth.
//! - [`AuditImporter`] runs `sessrec-audit-import --follow` (or `--once`) on a test's record
//!   tree with its own state file, and can be killed and restarted mid-stream.
#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use crate::util::{output_with_timeout, unique_name, wait_until};
use crate::{products, RecordTree, TempDir};

/// Where the shared auditd's files and locks live.
pub const AUDIT_RUN_DIR: &str = "/run/srt-auditd";
/// The shipped rules file.
pub const SHIPPED_RULES: &str = "packaging/examples/audit/sessrec.rules";
const AUDITCTL: &str = "/usr/sbin/auditctl";
const AUDITD: &str = "/usr/sbin/auditd";

fn run_dir() -> PathBuf {
    PathBuf::from(AUDIT_RUN_DIR)
}

fn lock_file(name: &str, how: FlockArg) -> Result<Flock<File>, nix::errno::Errno> {
    fs::create_dir_all(run_dir()).expect("create /run/srt-auditd");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(run_dir().join(name))
        .expect("open audit lock file");
    Flock::lock(file, how).map_err(|(_, e)| e)
}

/// `auditctl ARGS`, panicking with its output when it fails.
pub fn auditctl(args: &[&str]) -> String {
    let out = output_with_timeout(
        Command::new(AUDITCTL).args(args),
        b"",
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "auditctl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A numeric value of `auditctl -s`.
pub fn audit_status(name: &str) -> u64 {
    let status = auditctl(&["-s"]);
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(' ')?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("auditctl -s has no {name}: {status}"))
}

/// Whether process `pid` runs (a zombie does not).
fn alive(pid: u64) -> bool {
    pid != 0
        && fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().to_string())
            })
            .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
}

/// `log_file` of an auditd.conf text.
fn conf_log_file(conf: &str) -> Option<PathBuf> {
    conf.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "log_file").then(|| PathBuf::from(v.trim()))
    })
}

/// The log file of the auditd with `pid`: from its `-c DIR` (DIR/auditd.conf), else the host's
/// /etc/audit/auditd.conf.
fn log_file_of(pid: u64) -> PathBuf {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let dir = args
        .windows(2)
        .find(|w| w[0] == "-c")
        .map(|w| PathBuf::from(&w[1]))
        .unwrap_or_else(|| PathBuf::from("/etc/audit"));
    let conf = fs::read_to_string(dir.join("auditd.conf")).unwrap_or_default();
    conf_log_file(&conf).unwrap_or_else(|| PathBuf::from("/var/log/audit/audit.log"))
}

/// The private auditd's configuration (bench/audit/run_rules.sh starts its auditd from it too).
const PRIVATE_CONF: &str = include_str!("auditd.conf");

/// A running auditd, shared by every test that holds one (see the module docs).
pub struct AuditDaemon {
    log_file: PathBuf,
    pid: u64,
    _user: Option<Flock<File>>,
}

impl AuditDaemon {
    /// The auditd the kernel talks to, started if there is none; kernel auditing enabled.
    pub fn shared() -> AuditDaemon {
        assert!(
            Path::new(AUDITD).exists() && Path::new(AUDITCTL).exists(),
            "auditd is not installed (apt-get install auditd)"
        );
        let _setup = lock_file("lock", FlockArg::LockExclusive).expect("audit setup lock");
        let user = lock_file("users", FlockArg::LockShared).expect("audit users lock");
        let enabled_file = run_dir().join("enabled-before");
        if !enabled_file.exists() {
            fs::write(&enabled_file, audit_status("enabled").to_string()).unwrap();
        }
        let mut pid = audit_status("pid");
        if !alive(pid) {
            fs::create_dir_all(run_dir().join("conf")).unwrap();
            fs::create_dir_all(run_dir().join("log")).unwrap();
            let conf = run_dir().join("conf/auditd.conf");
            fs::write(&conf, PRIVATE_CONF).unwrap();
            fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            let child = Command::new(AUDITD)
                .args(["-n", "-s", "enable", "-c"])
                .arg(run_dir().join("conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start auditd");
            let started = u64::from(child.id());
            // The child outlives this test process when other tests still use it; the last
            // user stops it by pid.
            std::mem::forget(child);
            fs::write(run_dir().join("started-pid"), started.to_string()).unwrap();
            wait_until(
                "auditd registers with the kernel",
                Duration::from_secs(20),
                || audit_status("pid") == started,
            );
            pid = started;
        }
        if audit_status("enabled") == 0 {
            auditctl(&["-e", "1"]);
        }
        AuditDaemon {
            log_file: log_file_of(pid),
            pid,
            _user: Some(user),
        }
    }

    /// auditd's log file (its rotated files are `<log_file>.N`).
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    pub fn pid(&self) -> u64 {
        self.pid
    }

    /// Asks auditd to rotate its log now (SIGUSR1) and waits until it did.
    pub fn rotate(&self) {
        let mut rotated = self.log_file.as_os_str().to_owned();
        rotated.push(".1");
        let before = fs::metadata(&rotated).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid as i32),
            nix::sys::signal::Signal::SIGUSR1,
        )
        .expect("signal auditd");
        wait_until("auditd rotates its log", Duration::from_secs(20), || {
            fs::metadata(&rotated)
                .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
                .ok()
                != before.as_ref().ok().copied()
        });
    }
}

impl Drop for AuditDaemon {
    fn drop(&mut self) {
        let Ok(_setup) = lock_file("lock", FlockArg::LockExclusive) else {
            return;
        };
        drop(self._user.take());
        // The last user gets the users lock exclusively.
        if lock_file("users", FlockArg::LockExclusiveNonblock).is_err() {
            return;
        }
        let started = run_dir().join("started-pid");
        if let Some(pid) = fs::read_to_string(&started)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while alive(pid as u64) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = fs::remove_file(&started);
            // Its log goes with it: the next run starts a fresh one.
            let _ = fs::remove_dir_all(run_dir().join("log"));
        }
        let enabled_file = run_dir().join("enabled-before");
        if let Ok(before) = fs::read_to_string(&enabled_file) {
            let _ = Command::new(AUDITCTL)
                .args(["-e", before.trim()])
                .stdout(Stdio::null())
                .status();
            let _ = fs::remove_file(&enabled_file);
        }
    }
}

/// Audit rules under a key of their own, deleted exactly on drop.
pub struct AuditRules {
    key: String,
    rules: Vec<String>,
}

impl AuditRules {
    /// The shipped rules file, with its keys replaced by this test's own key.
    pub fn sessrec(tag: &str) -> AuditRules {
        let text = fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(SHIPPED_RULES),
        )
        .expect("read the shipped rules");
        let key = unique_name(tag);
        let rules: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with("-a "))
            .map(|l| {
                l.replace("key=sessrec-exec", &format!("key={key}"))
                    .replace("key=sessrec-connect", &format!("key={key}"))
            })
            .collect();
        assert!(rules.len() >= 4, "shipped rules: {text}");
        AuditRules::add(key, rules)
    }

    /// `rules` (each `-a ...` with `-F key=<key>`), added now.
    pub fn add(key: String, rules: Vec<String>) -> AuditRules {
        let mut added = AuditRules {
            key,
            rules: Vec::new(),
        };
        for rule in rules {
            assert!(rule.contains(&format!("key={}", added.key)), "{rule}");
            let args: Vec<&str> = rule.split_whitespace().collect();
            auditctl(&args);
            added.rules.push(rule);
        }
        added
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

impl Drop for AuditRules {
    fn drop(&mut self) {
        for rule in &self.rules {
            let delete = rule.replacen("-a ", "-d ", 1);
            let args: Vec<&str> = delete.split_whitespace().collect();
            let _ = Command::new(AUDITCTL)
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// While held, no test changes the global audit settings: for tests that assert nothing was
/// lost. [`AuditSettings::set`] waits until no one holds it.
pub struct SteadySettings {
    _lock: Flock<File>,
}

impl SteadySettings {
    pub fn hold() -> SteadySettings {
        SteadySettings {
            _lock: lock_file("settings", FlockArg::LockShared).expect("audit settings lock"),
        }
    }
}

/// Global audit settings changed for one test, put back on drop.
pub struct AuditSettings {
    restore: Vec<(String, u64)>,
    _lock: Flock<File>,
}

impl AuditSettings {
    /// Sets each (`auditctl` option, value), e.g. (`-b`, 1) for the backlog limit,
    /// (`--backlog_wait_time`, 0), (`-r`, rate); remembers the values found.
    pub fn set(changes: &[(&str, u64)]) -> AuditSettings {
        let status_name = |opt: &str| match opt {
            "-b" => "backlog_limit",
            "-r" => "rate_limit",
            "--backlog_wait_time" => "backlog_wait_time",
            other => panic!("unsupported audit setting {other}"),
        };
        let mut s = AuditSettings {
            restore: Vec::new(),
            _lock: lock_file("settings", FlockArg::LockExclusive).expect("audit settings lock"),
        };
        for (opt, value) in changes {
            let before = audit_status(status_name(opt));
            s.restore.push((opt.to_string(), before));
            auditctl(&[opt, &value.to_string()]);
        }
        s
    }
}

impl Drop for AuditSettings {
    fn drop(&mut self) {
        for (opt, value) in self.restore.iter().rev() {
            let _ = Command::new(AUDITCTL)
                .args([opt.as_str(), &value.to_string()])
                .stdout(Stdio::null())
                .status();
        }
    }
}

/// `sessrec-audit-import` on a test's record tree, with its own state file.
pub struct AuditImporter {
    config: PathBuf,
    log_file: PathBuf,
    dir: TempDir,
    child: Option<Child>,
}

impl AuditImporter {
    fn command(&self, mode: &str) -> Command {
        let mut c = Command::new(products().audit_import());
        c.args([mode, "--config"])
            .arg(&self.config)
            .arg("--log-file")
            .arg(&self.log_file)
            .arg("--state-file")
            .arg(self.state_file());
        c
    }

    /// A stopped importer for `tree` reading `log_file`.
    pub fn new(tree: &RecordTree, log_file: &Path) -> AuditImporter {
        AuditImporter {
            config: tree.config_path().to_path_buf(),
            log_file: log_file.to_path_buf(),
            dir: TempDir::new("auditimp"),
            child: None,
        }
    }

    /// Started with `--follow`.
    pub fn follow(tree: &RecordTree, log_file: &Path) -> AuditImporter {
        let mut i = AuditImporter::new(tree, log_file);
        i.start();
        i
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.path().join("audit-import.state")
    }

    /// (Re)starts `--follow`, its stderr kept in the importer's directory.
    pub fn start(&mut self) {
        self.stop();
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("stderr"))
            .unwrap();
        let child = self
            .command("--follow")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sessrec-audit-import");
        self.child = Some(child);
    }

    /// Kills a running `--follow` at once (SIGKILL: no chance to finish anything).
    pub fn kill(&mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// One `--once` pass.
    pub fn once(&self) -> Output {
        output_with_timeout(&mut self.command("--once"), b"", Duration::from_secs(120))
    }

    /// What the importer printed on stderr so far.
    pub fn stderr(&self) -> String {
        let mut s = String::new();
        let _ = File::open(self.dir.path().join("stderr")).map(|mut f| f.read_to_string(&mut s));
        s
    }
}

impl Drop for AuditImporter {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("sessrec-audit-import stderr:\n{}", self.stderr());
        }
    }
}
