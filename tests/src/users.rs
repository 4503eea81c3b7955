//! Test users and groups (`srt-` prefix, removed afterwards), their SSH keys and certificates,
//! and the `sessrec` system user.
#![forbid(unsafe_code)]

use std::fs;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use crate::leftovers::{register, Leftover, Registration};
use crate::procs;
use crate::util::{run, run_ok, unique_name, write_file, TempDir};

/// Serialises this process's changes to /etc/passwd and /etc/group; the shadow tools lock the
/// files too, but give up quickly, so they are also retried.
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// Runs an account tool (useradd, userdel, groupadd...), retrying while another process holds
/// the passwd/group lock. Returns the last output.
fn account_tool(program: &str, args: &[&str]) -> std::process::Output {
    let _guard = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let mut last = None;
    for _ in 0..20 {
        let out = crate::util::output_with_timeout(
            Command::new(program).args(args),
            b"",
            Duration::from_secs(60),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let busy = stderr.contains("lock") || stderr.contains("try again");
        if out.status.success() || !busy {
            return out;
        }
        last = Some(out);
        thread::sleep(Duration::from_millis(250));
    }
    last.expect("at least one attempt")
}

fn account_tool_ok(program: &str, args: &[&str]) {
    let out = account_tool(program, args);
    if !out.status.success() {
        panic!(
            "`{program} {}` failed with {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Name of the system user the recorder switches to.
pub const SESSREC_USER: &str = "sessrec";

/// Creates the `sessrec` system user exactly as the package does
/// (`adduser --system --group --no-create-home sessrec`) if it does not exist. Idempotent;
/// the user is never removed (the package keeps it on purge too).
pub fn ensure_sessrec_user() {
    let _guard = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    if nix::unistd::User::from_name(SESSREC_USER)
        .ok()
        .flatten()
        .is_some()
    {
        return;
    }
    let out = crate::util::output_with_timeout(
        Command::new("adduser").args(["--system", "--group", "--no-create-home", SESSREC_USER]),
        b"",
        Duration::from_secs(60),
    );
    // A concurrent test run may have created it meanwhile; adduser then exits 0 as well.
    let exists = nix::unistd::User::from_name(SESSREC_USER)
        .ok()
        .flatten()
        .is_some();
    assert!(
        out.status.success() && exists,
        "adduser --system --group --no-create-home sessrec failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An ed25519 key pair in a root-only directory (the ssh client runs as root).
#[derive(Clone, Debug)]
pub struct KeyPair {
    private: PathBuf,
}

impl KeyPair {
    /// Generates `<dir>/<name>` and `<dir>/<name>.pub` with no passphrase.
    pub fn generate(dir: &Path, name: &str) -> KeyPair {
        let private = dir.join(name);
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&private));
        KeyPair { private }
    }

    /// The private key file (for `ssh -i`).
    pub fn private(&self) -> &Path {
        &self.private
    }

    /// The public key file.
    pub fn public(&self) -> PathBuf {
        let mut p = self.private.clone().into_os_string();
        p.push(".pub");
        PathBuf::from(p)
    }

    /// The public key as an authorized_keys line (`ssh-ed25519 AAAA... comment`).
    pub fn public_line(&self) -> String {
        fs::read_to_string(self.public())
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.public().display()))
            .trim()
            .to_string()
    }

    /// The key's SHA256 fingerprint as `ssh-keygen -lf` prints it (`SHA256:...`).
    pub fn fingerprint(&self) -> String {
        fingerprint_of(&self.public())
    }
}

/// `SHA256:...` of a public key or certificate file, from `ssh-keygen -lf`.
pub fn fingerprint_of(public: &Path) -> String {
    let out = run(Command::new("ssh-keygen").arg("-lf").arg(public));
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("unexpected ssh-keygen -lf output: {text}"))
        .to_string()
}

/// An OpenSSH user certificate made by [`SshCa::sign`].
#[derive(Clone, Debug)]
pub struct Certificate {
    path: PathBuf,
    key_id: String,
    serial: u64,
}

impl Certificate {
    /// The `*-cert.pub` file (for `ssh -o CertificateFile=`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn serial(&self) -> u64 {
        self.serial
    }
}

/// A user certificate authority (an ed25519 key) in its own root-only directory.
#[derive(Debug)]
pub struct SshCa {
    dir: TempDir,
    key: KeyPair,
}

impl SshCa {
    pub fn new() -> SshCa {
        let dir = TempDir::new("ca");
        let key = KeyPair::generate(dir.path(), "ca");
        SshCa { dir, key }
    }

    /// The CA's key pair (its public file goes into `TrustedUserCAKeys`).
    pub fn key(&self) -> &KeyPair {
        &self.key
    }

    /// The CA's SHA256 fingerprint, the form `[identity] trusted_user_cas` takes.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint()
    }

    /// An authorized_keys line that trusts this CA for the given principals
    /// (`cert-authority,principals="a,b" ssh-ed25519 ...`).
    pub fn authorized_keys_line(&self, principals: &[&str]) -> String {
        format!(
            "cert-authority,principals=\"{}\" {}",
            principals.join(","),
            self.key.public_line()
        )
    }

    /// Signs `key`'s public key: `ssh-keygen -s CA -I key_id -n principals -z serial -V -5m:+1h`.
    /// Each call writes a new certificate file, so one key may hold several certificates.
    pub fn sign(
        &self,
        key: &KeyPair,
        key_id: &str,
        principals: &[&str],
        serial: u64,
    ) -> Certificate {
        let stem = self
            .dir
            .join(format!("cert-{serial}-{}", crate::util::random_hex(4)));
        let pub_copy = PathBuf::from(format!("{}.pub", stem.display()));
        fs::copy(key.public(), &pub_copy).expect("copy public key for signing");
        let serial_text = serial.to_string();
        let principals_text = principals.join(",");
        let mut args: Vec<&str> = vec!["-q", "-s"];
        let ca_private = self.key.private().to_string_lossy().into_owned();
        args.push(&ca_private);
        args.extend(["-I", key_id, "-z", &serial_text, "-V", "-5m:+1h"]);
        if !principals.is_empty() {
            args.extend(["-n", &principals_text]);
        }
        let pub_text = pub_copy.to_string_lossy().into_owned();
        args.push(&pub_text);
        run_ok("ssh-keygen", &args);
        Certificate {
            path: PathBuf::from(format!("{}-cert.pub", stem.display())),
            key_id: key_id.to_string(),
            serial,
        }
    }
}

impl Default for SshCa {
    fn default() -> Self {
        SshCa::new()
    }
}

/// A group `srt-<prefix>-<rand>`, removed on drop.
#[derive(Debug)]
pub struct TestGroup {
    name: String,
    registration: Registration,
}

impl TestGroup {
    pub fn new(prefix: &str) -> TestGroup {
        let name = unique_name(prefix);
        let registration = register(Leftover::Group(name.clone()));
        account_tool_ok("groupadd", &[&name]);
        TestGroup { name, registration }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        let out = account_tool("groupdel", &[&self.name]);
        if out.status.success() {
            self.registration.release();
        } else {
            eprintln!(
                "warning: groupdel {} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// A local user `srt-<prefix>-<rand>` made with `useradd -m`, with a login shell of the test's
/// choice, an ed25519 key (kept root-only, outside the home) listed in `~/.ssh/authorized_keys`,
/// and no usable password. On drop its processes are killed and it is removed with `userdel -r`.
#[derive(Debug)]
pub struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
    keys: TempDir,
    key: KeyPair,
    registration: Registration,
}

impl TestUser {
    /// Creates the user with `shell` as its passwd login shell.
    pub fn new(prefix: &str, shell: &Path) -> TestUser {
        let name = unique_name(prefix);
        let registration = register(Leftover::User(name.clone()));
        let shell_text = shell.to_string_lossy().into_owned();
        account_tool_ok("useradd", &["-m", "-s", &shell_text, "-p", "*", &name]);
        let entry = nix::unistd::User::from_name(&name)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("user {name} missing right after useradd"));
        let keys = TempDir::new(&format!("{}-keys", &name[4..]));
        let key = KeyPair::generate(keys.path(), "id_ed25519");
        let user = TestUser {
            uid: entry.uid.as_raw(),
            gid: entry.gid.as_raw(),
            home: entry.dir,
            name,
            keys,
            key,
            registration,
        };
        let ssh_dir = user.home.join(".ssh");
        crate::util::create_dir(&ssh_dir, 0o700);
        chown(&ssh_dir, Some(user.uid), Some(user.gid)).expect("chown ~/.ssh");
        user.write_authorized_keys(&format!("{}\n", user.key.public_line()));
        user
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn uid(&self) -> u32 {
        self.uid
    }

    pub fn gid(&self) -> u32 {
        self.gid
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The key authorized at creation (the one [`crate::SshLogin`] uses by default).
    pub fn key(&self) -> &KeyPair {
        &self.key
    }

    /// A new key pair in this user's root-only key directory (not authorized yet).
    pub fn new_key(&self, name: &str) -> KeyPair {
        KeyPair::generate(self.keys.path(), name)
    }

    pub fn authorized_keys_path(&self) -> PathBuf {
        self.home.join(".ssh/authorized_keys")
    }

    /// Replaces `~/.ssh/authorized_keys` (owned by the user, 0600).
    pub fn write_authorized_keys(&self, text: &str) {
        let path = self.authorized_keys_path();
        write_file(&path, text, 0o600);
        chown(&path, Some(self.uid), Some(self.gid)).expect("chown authorized_keys");
    }

    /// Appends a line (a key with options, a `cert-authority` line...) to authorized_keys.
    pub fn authorize_line(&self, line: &str) {
        let mut text = fs::read_to_string(self.authorized_keys_path()).unwrap_or_default();
        text.push_str(line.trim_end());
        text.push('\n');
        self.write_authorized_keys(&text);
    }

    /// Writes a file in the home directory, owned by the user.
    pub fn write_home_file(&self, relative: &str, contents: &str, mode: u32) -> PathBuf {
        let path = self.home.join(relative);
        write_file(&path, contents, mode);
        chown(&path, Some(self.uid), Some(self.gid)).expect("chown home file");
        path
    }

    /// `usermod -s shell`.
    pub fn set_shell(&self, shell: &Path) {
        account_tool_ok("usermod", &["-s", &shell.to_string_lossy(), &self.name]);
    }

    /// `usermod -aG group`.
    pub fn add_to_group(&self, group: &str) {
        account_tool_ok("usermod", &["-aG", group, &self.name]);
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        procs::terminate(&procs::processes_of_uid(self.uid), Duration::from_secs(2));
        let out = account_tool("userdel", &["-r", "-f", &self.name]);
        // Exit 12 is "could not remove the home/mail spool", which the missing mail spool of a
        // useradd without CREATE_MAIL_SPOOL also causes; the user is gone all the same.
        if !out.status.success() && out.status.code() != Some(12) {
            eprintln!(
                "warning: userdel -r {} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            self.registration.release();
        }
        if self.home.starts_with("/home/srt-") && self.home.exists() {
            let _ = fs::remove_dir_all(&self.home);
        }
    }
}
