//! `/etc/sessrec/sessrec.toml`: one file read by every part. Unknown keys and bad values are
//! errors that name the file and the key, so a typo can never silently switch recording off.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;

use crate::forward::ForwardConfig;
pub use crate::glob::glob_match;

/// Where every part looks when nothing else names a config file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/sessrec/sessrec.toml";

/// What to do when a record cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Fail closed: no unrecorded channel runs.
    #[default]
    Deny,
    /// Labs only: continue unrecorded, and log that.
    Allow,
}

/// How the recorder is started for recorded users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Launch {
    /// The user's passwd shell is sessrec-shell.
    #[default]
    LoginShell,
    /// sshd's `ForceCommand` runs sessrec-shell through a passwd shell that reads no user file.
    ForceCommand,
}

/// What a user's channels get once the user's daily byte budget is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BudgetAction {
    /// New channels start with output sampled, as past `max_channel_bytes`; input is recorded in
    /// full.
    #[default]
    Cap,
    /// New channels are refused (running ones are capped).
    Refuse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TicketMode {
    #[default]
    Off,
    Optional,
    Required,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub record_dir: PathBuf,
    pub on_error: OnError,
    pub min_free_mb: u64,
    /// Group given read access to the record tree (for a shipper not running as root); empty = none.
    pub read_group: String,
    pub policy: PolicyConfig,
    pub recorder: RecorderConfig,
    pub identity: IdentityConfig,
    pub transfer: TransferConfig,
    pub ticket: TicketConfig,
    pub sudo: SudoConfig,
    pub budget: BudgetConfig,
    pub audit: AuditConfig,
    /// Forwarded connections through the bastion (see `forward`).
    pub forward: ForwardConfig,
}

/// A per-user byte budget, so one user cannot fill the record disk and lock everyone out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    /// Record bytes one unix user's channels may write per UTC day; 0 = no budget.
    pub user_mb_per_day: u64,
    pub action: BudgetAction,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            user_mb_per_day: 2048,
            action: BudgetAction::Cap,
        }
    }
}

impl BudgetConfig {
    /// The budget in bytes, when there is one.
    pub fn bytes_per_day(&self) -> Option<u64> {
        (self.user_mb_per_day > 0).then(|| self.user_mb_per_day.saturating_mul(1 << 20))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Globs of user names that are recorded.
    pub users: Vec<String>,
    /// Groups whose members are recorded.
    pub groups: Vec<String>,
    pub exclude_users: Vec<String>,
    pub exclude_groups: Vec<String>,
    /// PAM services the module acts on.
    pub services: Vec<String>,
    pub launch: Launch,
    /// Users let in, with an alert, when recording cannot be set up.
    pub break_glass_users: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecorderConfig {
    /// The real shell the recorder runs.
    pub shell: PathBuf,
    pub shell_by_user: BTreeMap<String, PathBuf>,
    pub shell_by_group: BTreeMap<String, PathBuf>,
    pub record_input: bool,
    pub password_prompt_regex: String,
    /// Longest part of one typed line that masking withholds; the rest of the line is
    /// recorded (marked), so a withheld "password" cannot carry a long command.
    pub mask_line_max_bytes: usize,
    /// More than this many maskings within `mask_arm_window_s` stop masking for the rest of
    /// the channel (`masking_suspended`). 0: nothing is ever withheld.
    pub mask_arm_limit: usize,
    pub mask_arm_window_s: u64,
    /// I/O reaches the record at most this long after it arrives (one line per second instead
    /// of one per keystroke), except unsubmitted typing on a terminal (`typing_flush_ms`).
    pub flush_interval_ms: u64,
    /// On a terminal, keystrokes not yet submitted (no Enter) and their echo may wait this long
    /// in one line: about 0.4 MB an hour for a typing user instead of 1.3 at one line per
    /// second (see `sessrec_core::flush_policy`). 0, or not longer than `flush_interval_ms`: no
    /// hold.
    pub typing_flush_ms: u64,
    pub max_line_bytes: usize,
    pub max_channel_bytes: u64,
    /// 0 = off.
    pub idle_timeout_s: u64,
    /// How long before an idle timeout the user is warned.
    pub idle_warning_s: u64,
    /// Shown on interactive channels; `{session}` is replaced by the session id.
    pub notice: String,
    /// Compiled on first use: building it costs more than the rest of a PAM open together,
    /// and only the recorder needs it.
    #[serde(skip)]
    password_prompt: std::sync::OnceLock<Regex>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// SHA256 fingerprints ("SHA256:...") of CAs whose certificate key ids are trusted as identities.
    pub trusted_user_cas: Vec<String>,
    /// Key fingerprint ("SHA256:...") → actor name.
    pub fingerprints: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransferConfig {
    /// Store transfer payload bytes too (off: only what moved is recorded).
    pub record_payload: bool,
    pub sftp_server: PathBuf,
    pub allow_sftp: bool,
    pub allow_scp: bool,
    pub allow_rsync: bool,
    /// Flags accepted with `scp -t|-f`.
    pub scp_flags: Vec<String>,
    /// `rsync --server` options that make a channel an ordinary exec channel.
    pub rsync_denied_options: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TicketConfig {
    pub mode: TicketMode,
    /// Regex a ticket must match (whole string), e.g. `^(INC|CHG)-[0-9]+$`.
    pub pattern: String,
    #[serde(skip)]
    pattern_regex: Option<Regex>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SudoConfig {
    pub iolog_dirs: Vec<PathBuf>,
    pub state_file: PathBuf,
    pub password_prompt_regex: String,
    /// An unfinished sudo log is imported as incomplete once its login session has ended and its
    /// files have not changed for this long.
    pub settle_minutes: u64,
    /// Most decompressed stream bytes imported from one sudo session; the rest is left out with
    /// a `truncated` mark (a gzip bomb or a runaway command cannot fill the record disk).
    pub max_session_mb: u64,
}

/// The kernel audit importer (`sessrec-audit-import`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// auditd's log file (`log_file` of auditd.conf); its rotated files `<log_file>.N` are read
    /// too.
    pub log_file: PathBuf,
    pub state_file: PathBuf,
    /// Milliseconds between passes under `--follow`.
    pub poll_ms: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            log_file: PathBuf::from("/var/log/audit/audit.log"),
            state_file: PathBuf::from("/var/lib/sessrec/audit-import.state"),
            poll_ms: 250,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            record_dir: PathBuf::from("/var/log/sessrec"),
            on_error: OnError::Deny,
            min_free_mb: 512,
            read_group: String::new(),
            policy: PolicyConfig::default(),
            recorder: RecorderConfig::default(),
            identity: IdentityConfig::default(),
            transfer: TransferConfig::default(),
            ticket: TicketConfig::default(),
            sudo: SudoConfig::default(),
            budget: BudgetConfig::default(),
            audit: AuditConfig::default(),
            forward: ForwardConfig::default(),
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            users: vec!["*".into()],
            groups: Vec::new(),
            exclude_users: Vec::new(),
            exclude_groups: Vec::new(),
            services: vec!["sshd".into()],
            launch: Launch::LoginShell,
            break_glass_users: Vec::new(),
        }
    }
}

const DEFAULT_PASSWORD_PROMPT: &str = "[Pp]assword[: ]*$";

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            shell: PathBuf::from("/bin/bash"),
            shell_by_user: BTreeMap::new(),
            shell_by_group: BTreeMap::new(),
            record_input: true,
            password_prompt_regex: DEFAULT_PASSWORD_PROMPT.into(),
            // Longer than any password or passphrase people type; far shorter than a script.
            mask_line_max_bytes: 256,
            // Room for sudo's three tries and an ssh-add within a minute.
            mask_arm_limit: 5,
            mask_arm_window_s: 60,
            flush_interval_ms: 1000,
            // tlog's default latency: a command line typed in under 10 s is one line.
            typing_flush_ms: 10_000,
            max_line_bytes: 8192,
            max_channel_bytes: 1 << 30,
            idle_timeout_s: 0,
            idle_warning_s: 60,
            notice: "This session is recorded (session {session}).".into(),
            password_prompt: std::sync::OnceLock::new(),
        }
    }
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            record_payload: false,
            sftp_server: PathBuf::from("/usr/lib/openssh/sftp-server"),
            allow_sftp: true,
            allow_scp: true,
            allow_rsync: true,
            scp_flags: ["-r", "-p", "-d", "-v"].map(String::from).to_vec(),
            rsync_denied_options: [
                "--daemon",
                "--config",
                "-e",
                "--rsh",
                "--log-file",
                "--log-file-format",
                "--write-devices",
                "--remote-option",
                "-M",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

impl Default for SudoConfig {
    fn default() -> Self {
        SudoConfig {
            iolog_dirs: vec![PathBuf::from("/var/log/sudo-io")],
            state_file: PathBuf::from("/var/lib/sessrec/sudo-import.state"),
            password_prompt_regex: "[Pp]assword[: ]*".into(),
            settle_minutes: 10,
            max_session_mb: 1024,
        }
    }
}

/// A config file that cannot be used, with the file and the key at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub origin: String,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: {}: {}", self.origin, key, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parses and validates config text; `origin` names it in errors (usually the path).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError {
            origin: origin.into(),
            key: None,
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            key: None,
            message: format!("cannot read: {e}"),
        })?;
        Config::from_toml_str(&text, &origin)
    }

    /// Like [`Config::load`], for callers running as root on behalf of someone else: the file
    /// must be a regular file (not a symlink), owned by root, and not writable by group or others.
    pub fn load_trusted(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let fail = |message: String| ConfigError {
            origin: origin.clone(),
            key: None,
            message,
        };
        if !path.is_absolute() {
            return Err(fail("config path must be absolute".into()));
        }
        let meta =
            std::fs::symlink_metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        if !meta.file_type().is_file() {
            return Err(fail("not a regular file (symlinks are refused)".into()));
        }
        if meta.uid() != 0 {
            return Err(fail(format!(
                "owned by uid {}, must be owned by root",
                meta.uid()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(fail(format!(
                "mode {:04o} is group- or world-writable; must not be",
                meta.mode() & 0o7777
            )));
        }
        Config::load(path)
    }

    fn validate(&mut self, origin: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError {
            origin: origin.into(),
            key: Some(key.into()),
            message,
        };
        if !self.record_dir.is_absolute() {
            return Err(bad("record_dir", "must be an absolute path".into()));
        }
        if self.record_dir == Path::new("/") {
            return Err(bad("record_dir", "must not be /".into()));
        }
        let rec = &mut self.recorder;
        if !rec.shell.is_absolute() {
            return Err(bad("recorder.shell", "must be an absolute path".into()));
        }
        for (name, shell) in rec.shell_by_user.iter().chain(rec.shell_by_group.iter()) {
            if !shell.is_absolute() {
                return Err(bad(
                    "recorder.shell_by_user/shell_by_group",
                    format!("shell for {name:?} must be an absolute path"),
                ));
            }
        }
        if !(1024..=1 << 20).contains(&rec.max_line_bytes) {
            return Err(bad(
                "recorder.max_line_bytes",
                format!(
                    "must be between 1024 and 1048576 (got {})",
                    rec.max_line_bytes
                ),
            ));
        }
        if !(1..=60_000).contains(&rec.flush_interval_ms) {
            return Err(bad(
                "recorder.flush_interval_ms",
                format!(
                    "must be between 1 and 60000 (got {})",
                    rec.flush_interval_ms
                ),
            ));
        }
        // Not longer than flush_interval_ms (0 included) is no hold; a config that only raised
        // flush_interval_ms stays valid.
        if rec.typing_flush_ms > 60_000 {
            return Err(bad(
                "recorder.typing_flush_ms",
                format!(
                    "must be at most 60000 (got {}; 0: off)",
                    rec.typing_flush_ms
                ),
            ));
        }
        if rec.max_channel_bytes < 65_536 {
            return Err(bad(
                "recorder.max_channel_bytes",
                format!("must be at least 65536 (got {})", rec.max_channel_bytes),
            ));
        }
        if !(1..=4096).contains(&rec.mask_line_max_bytes) {
            return Err(bad(
                "recorder.mask_line_max_bytes",
                format!(
                    "must be between 1 and 4096 (got {})",
                    rec.mask_line_max_bytes
                ),
            ));
        }
        if rec.mask_arm_limit > 100 {
            return Err(bad(
                "recorder.mask_arm_limit",
                format!(
                    "must be between 0 (never withhold) and 100 (got {})",
                    rec.mask_arm_limit
                ),
            ));
        }
        if !(1..=86_400).contains(&rec.mask_arm_window_s) {
            return Err(bad(
                "recorder.mask_arm_window_s",
                format!(
                    "must be between 1 and 86400 (got {})",
                    rec.mask_arm_window_s
                ),
            ));
        }
        if rec.notice.len() > 4096 {
            return Err(bad("recorder.notice", "must be at most 4096 bytes".into()));
        }
        check_regex_syntax(&rec.password_prompt_regex)
            .map_err(|e| bad("recorder.password_prompt_regex", e))?;
        check_regex_syntax(&self.sudo.password_prompt_regex)
            .map_err(|e| bad("sudo.password_prompt_regex", e))?;
        for dir in &self.sudo.iolog_dirs {
            if !dir.is_absolute() {
                return Err(bad(
                    "sudo.iolog_dirs",
                    format!("{} is not an absolute path", dir.display()),
                ));
            }
        }
        if !self.sudo.state_file.is_absolute() {
            return Err(bad("sudo.state_file", "must be an absolute path".into()));
        }
        for (key, path) in [
            ("audit.log_file", &self.audit.log_file),
            ("audit.state_file", &self.audit.state_file),
        ] {
            if !path.is_absolute() {
                return Err(bad(key, "must be an absolute path".into()));
            }
        }
        if self.audit.poll_ms == 0 || self.audit.poll_ms > 60_000 {
            return Err(bad("audit.poll_ms", "must be between 1 and 60000".into()));
        }
        if self.sudo.max_session_mb == 0 || self.sudo.max_session_mb > 1 << 20 {
            return Err(bad(
                "sudo.max_session_mb",
                "must be between 1 and 1048576 (1 TiB)".into(),
            ));
        }
        for fp in self
            .identity
            .trusted_user_cas
            .iter()
            .chain(self.identity.fingerprints.keys())
        {
            if !is_sha256_fingerprint(fp) {
                return Err(bad(
                    "identity",
                    format!("{fp:?} is not a SHA256 key fingerprint (\"SHA256:\" + 43 base64 characters)"),
                ));
            }
        }
        if !self.transfer.sftp_server.is_absolute() {
            return Err(bad(
                "transfer.sftp_server",
                "must be an absolute path".into(),
            ));
        }
        if self.ticket.mode != TicketMode::Off || !self.ticket.pattern.is_empty() {
            let pattern = if self.ticket.pattern.is_empty() {
                ".+"
            } else {
                &self.ticket.pattern
            };
            self.ticket.pattern_regex = Some(
                Regex::new(pattern)
                    .map_err(|e| bad("ticket.pattern", format!("invalid regex: {e}")))?,
            );
        }
        if self
            .policy
            .services
            .iter()
            .any(|s| s.is_empty() || s.contains('/'))
        {
            return Err(bad(
                "policy.services",
                "service names must be non-empty and contain no '/'".into(),
            ));
        }
        self.forward
            .validate()
            .map_err(|(key, message)| bad(&key, message))?;
        Ok(())
    }
}

impl PolicyConfig {
    /// Whether a login by `user`, a member of `groups`, is recorded.
    pub fn records(&self, user: &str, groups: &[String]) -> bool {
        let excluded = self.exclude_users.iter().any(|g| glob_match(g, user))
            || groups
                .iter()
                .any(|grp| self.exclude_groups.iter().any(|g| glob_match(g, grp)));
        if excluded {
            return false;
        }
        self.users.iter().any(|g| glob_match(g, user))
            || groups
                .iter()
                .any(|grp| self.groups.iter().any(|g| glob_match(g, grp)))
    }

    pub fn is_break_glass(&self, user: &str) -> bool {
        self.break_glass_users.iter().any(|u| u == user)
    }
}

impl RecorderConfig {
    /// The real shell for `user`: a per-user entry, else the first matching group, else `shell`.
    pub fn shell_for(&self, user: &str, groups: &[String]) -> &Path {
        if let Some(shell) = self.shell_by_user.get(user) {
            return shell;
        }
        groups
            .iter()
            .find_map(|g| self.shell_by_group.get(g))
            .map_or(self.shell.as_path(), PathBuf::as_path)
    }

    /// The compiled `password_prompt_regex`. Its syntax was checked when the config loaded; a
    /// pattern that still fails (it compiles past the regex size limit) falls back to the
    /// default prompt, so masking never turns off (`sessrec doctor` reports such a pattern).
    pub fn password_prompt(&self) -> &Regex {
        self.password_prompt.get_or_init(|| {
            Regex::new(&self.password_prompt_regex)
                .or_else(|_| Regex::new(DEFAULT_PASSWORD_PROMPT))
                .expect("constant regex")
        })
    }
}

impl TicketConfig {
    /// The compiled pattern, when tickets are in use.
    pub fn pattern_regex(&self) -> Option<&Regex> {
        self.pattern_regex.as_ref()
    }
}

/// Parses a pattern as the regex crate would, without building the matcher.
fn check_regex_syntax(pattern: &str) -> Result<(), String> {
    regex_syntax::Parser::new()
        .parse(pattern)
        .map(drop)
        .map_err(|e| format!("invalid regex: {e}"))
}

/// `SHA256:` followed by 43 characters of unpadded standard base64, as `ssh-keygen -l` prints.
pub fn is_sha256_fingerprint(text: &str) -> bool {
    text.strip_prefix("SHA256:").is_some_and(|b64| {
        b64.len() == 43
            && b64
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = Config::from_toml_str("", "test").unwrap();
        assert_eq!(c.record_dir, Path::new("/var/log/sessrec"));
        assert_eq!(c.on_error, OnError::Deny);
        assert_eq!(c.recorder.max_line_bytes, 8192);
        assert_eq!(c.recorder.mask_line_max_bytes, 256);
        assert_eq!(c.recorder.mask_arm_limit, 5);
        assert_eq!(c.recorder.mask_arm_window_s, 60);
        assert_eq!(c.recorder.flush_interval_ms, 1000);
        assert_eq!(c.recorder.typing_flush_ms, 10_000);
        assert!(c.policy.records("alice", &[]));
        assert!(c.recorder.password_prompt().is_match("Password: "));
    }

    #[test]
    fn full_example_parses() {
        let text = r#"
record_dir = "/srv/rec"
on_error = "allow"
min_free_mb = 10
[policy]
users = ["srt-*"]
groups = ["ops"]
exclude_users = ["srt-backup"]
launch = "force-command"
break_glass_users = ["rescue"]
[recorder]
shell = "/bin/sh"
shell_by_user = { alice = "/bin/zsh" }
shell_by_group = { dba = "/bin/bash" }
flush_interval_ms = 50
max_line_bytes = 65536
idle_timeout_s = 900
mask_line_max_bytes = 128
mask_arm_limit = 0
mask_arm_window_s = 600
[identity]
trusted_user_cas = ["SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]
fingerprints = { "SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB" = "alice@example.com" }
[ticket]
mode = "required"
pattern = "^(INC|CHG)-[0-9]+$"
[sudo]
iolog_dirs = ["/var/log/sudo-io", "/srv/sudo"]
"#;
        let c = Config::from_toml_str(text, "t").unwrap();
        assert_eq!(c.policy.launch, Launch::ForceCommand);
        assert!(c.policy.records("srt-x", &[]));
        assert!(!c.policy.records("srt-backup", &[]));
        assert!(c.policy.records("bob", &["ops".into()]));
        assert!(!c.policy.records("bob", &[]));
        assert_eq!(
            c.recorder.shell_for("alice", &["dba".into()]),
            Path::new("/bin/zsh")
        );
        assert_eq!(
            c.recorder.shell_for("carol", &["dba".into()]),
            Path::new("/bin/bash")
        );
        assert_eq!(c.recorder.shell_for("dave", &[]), Path::new("/bin/sh"));
        assert!(c.ticket.pattern_regex().unwrap().is_match("INC-42"));
        assert!(c.policy.is_break_glass("rescue"));
        assert_eq!(
            (
                c.recorder.mask_line_max_bytes,
                c.recorder.mask_arm_limit,
                c.recorder.mask_arm_window_s
            ),
            (128, 0, 600)
        );
    }

    #[test]
    fn errors_name_the_key() {
        let e =
            Config::from_toml_str("[recorder]\nmax_line_bytes = 12\n", "/etc/x.toml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("recorder.max_line_bytes"));
        assert!(e
            .to_string()
            .starts_with("/etc/x.toml: recorder.max_line_bytes: must be between"));

        let e = Config::from_toml_str("[recorder]\nmax_line_byte = 9000\n", "f").unwrap_err();
        assert!(e.message.contains("max_line_byte"), "{e}");

        let e = Config::from_toml_str("on_error = \"maybe\"\n", "f").unwrap_err();
        assert!(
            e.message.contains("maybe") || e.message.contains("on_error"),
            "{e}"
        );

        let e =
            Config::from_toml_str("[recorder]\npassword_prompt_regex = \"(\"\n", "f").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("recorder.password_prompt_regex"));
        let e = Config::from_toml_str("[sudo]\npassword_prompt_regex = \"[\"\n", "f").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("sudo.password_prompt_regex"));
        assert!(e.message.contains("invalid regex"), "{e}");

        // Parses, but compiles past the size limit: masking falls back to the default prompt.
        let c = Config::from_toml_str(
            "[recorder]\npassword_prompt_regex = \"x{1000}{1000}\"\n",
            "f",
        )
        .unwrap();
        assert!(regex::Regex::new(&c.recorder.password_prompt_regex).is_err());
        assert!(c.recorder.password_prompt().is_match("Password: "));
        let c =
            Config::from_toml_str("[recorder]\npassword_prompt_regex = \"PIN:$\"\n", "f").unwrap();
        assert!(c.recorder.password_prompt().is_match("Enter PIN:"));
        assert!(!c.recorder.password_prompt().is_match("Password: "));

        for (text, key) in [
            ("mask_line_max_bytes = 0", "recorder.mask_line_max_bytes"),
            ("mask_line_max_bytes = 5000", "recorder.mask_line_max_bytes"),
            ("mask_arm_limit = 101", "recorder.mask_arm_limit"),
            ("mask_arm_window_s = 0", "recorder.mask_arm_window_s"),
            ("mask_arm_window_s = 86401", "recorder.mask_arm_window_s"),
        ] {
            let e =
                Config::from_toml_str(&format!("[recorder]\n{text}\n"), "/etc/x.toml").unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{text}: {e}");
            assert!(e.to_string().contains("must be between"), "{e}");
        }
        let e = Config::from_toml_str("[recorder]\ntyping_flush_ms = 60001\n", "/etc/x.toml")
            .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("recorder.typing_flush_ms"), "{e}");
        assert!(e.to_string().contains("at most 60000"), "{e}");
        // Not longer than the flush interval: valid, and no hold.
        let c = Config::from_toml_str(
            "[recorder]\nflush_interval_ms = 20000\ntyping_flush_ms = 0\n",
            "f",
        )
        .unwrap();
        assert_eq!(c.recorder.typing_flush_ms, 0);
        let e = Config::from_toml_str("[recorder]\nmask_arm_limit = -1\n", "f").unwrap_err();
        assert!(e.message.contains("mask_arm_limit"), "{e}");

        let e = Config::from_toml_str("record_dir = \"relative\"\n", "f").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("record_dir"));

        let e = Config::from_toml_str("[identity]\ntrusted_user_cas = [\"MD5:aa\"]\n", "f")
            .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("identity"));

        let e = Config::from_toml_str("min_free_mb = -1\n", "f").unwrap_err();
        assert!(
            e.message.contains("min_free_mb") || e.message.contains("invalid value"),
            "{e}"
        );
    }

    #[test]
    fn trusted_load_checks_owner_and_mode() {
        let dir = std::env::temp_dir().join(format!("sessrec-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "min_free_mb = 1\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        if nix::unistd::geteuid().is_root() {
            assert!(Config::load_trusted(&path).is_ok());
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = Config::load_trusted(&path).unwrap_err();
        assert!(
            e.message.contains("writable") || e.message.contains("owned"),
            "{e}"
        );
        let link = dir.join("link.toml");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(Config::load_trusted(&link)
            .unwrap_err()
            .message
            .contains("symlink"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn forward_rules_are_checked_at_load() {
        let c = Config::from_toml_str(
            "[forward]\n[[forward.allow]]\ngroups = [\"ops\"]\nto = [\"127.0.0.1:8080\"]\n",
            "f",
        )
        .unwrap();
        assert_eq!(c.forward.allow[0].destinations.len(), 1);
        assert!(!c.forward.record_payload);
        let e = Config::from_toml_str(
            "[[forward.allow]]\nusers = [\"a\"]\nto = [\"10.0.0.1/8:22\"]\n",
            "/etc/x.toml",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("forward.allow[0].to"));
        assert!(e.to_string().contains("did you mean 10.0.0.0/8"), "{e}");
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("srt-*", "srt-a1"));
        assert!(!glob_match("srt-*", "root"));
        assert!(glob_match("a?c*d", "abcxxd"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*x*y", "zzxzzy"));
    }
}
