//! open_session and close_session, free of FFI: the PAM entry points gather the inputs, this
//! module decides and writes, and the entry points apply the outcome (environment, messages,
//! return code).
#![forbid(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sessrec_core::config::{Config, Launch, OnError};
use sessrec_core::grant::{Grant, GrantDir};
use sessrec_core::id::SessionId;
use sessrec_core::identity::Identity;
use sessrec_core::record::FileContext;
use sessrec_core::schema::{self, Login, Logout};
use sessrec_core::time::{monotonic_micros, Timestamp};
use sessrec_core::tree::{self, SessionDir};
use sessrec_core::writer::{Anchor, RecordWriter, WriterOptions};

use crate::actor::{self, LoginFacts};
use crate::args::ModuleArgs;
use crate::{authinfo, channels, launch};

/// The record file this module writes in each session directory.
pub const SESSION_FILE: &str = "session.jsonl";
/// Grants examined per stale-grant sweep.
const SWEEP_LIMIT: usize = 256;
/// Largest config file read when looking for `on_error`/`break_glass_users` in a config that
/// failed to load.
const FALLBACK_CONFIG_MAX: u64 = 1 << 20;

/// Log levels, mapped to syslog priorities by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Alert,
    Error,
    Warning,
    Notice,
    Info,
    Debug,
}

/// Where the module's messages go (pam_syslog in the module, a vector in tests).
pub trait Log {
    fn log(&mut self, level: Level, message: &str);
}

/// What the module returns to libpam.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not for this module (service or user not covered): PAM_IGNORE.
    Ignore,
    Success,
    /// PAM_SESSION_ERR: with `session required`, sshd refuses the login.
    Refuse,
}

/// The inputs of open_session.
#[derive(Debug, Clone)]
pub struct OpenRequest<'a> {
    pub args: &'a ModuleArgs,
    pub service: &'a str,
    pub user: &'a str,
    pub rhost: Option<&'a [u8]>,
    pub ssh_connection: Option<&'a [u8]>,
    pub auth_info: Option<&'a [u8]>,
    /// The calling process: sshd's privileged monitor.
    pub monitor_pid: u32,
}

/// The result of open_session.
#[derive(Debug)]
pub struct Opened {
    pub verdict: Verdict,
    /// `SESSREC_SESSION=<id>` for the PAM environment.
    pub env: Option<String>,
    /// A message for the user through the PAM conversation.
    pub notice: Option<String>,
    /// Kept with the PAM handle for close_session.
    pub state: Option<SessionState>,
    /// The session id minted, if recording was set up (for tests and logs).
    pub session: Option<SessionId>,
}

impl Opened {
    fn verdict(verdict: Verdict) -> Self {
        Opened {
            verdict,
            env: None,
            notice: None,
            state: None,
            session: None,
        }
    }
}

/// What close_session needs from open_session.
#[derive(Debug, Clone)]
pub struct SessionState {
    pub id: SessionId,
    pub record_dir: PathBuf,
    pub context: FileContext,
    pub login_time: Timestamp,
    pub login_monotonic_us: Option<u64>,
    pub max_line_bytes: usize,
    pub fsync: bool,
}

/// A user's account facts from NSS.
struct Account {
    uid: u32,
    shell: PathBuf,
    groups: Vec<String>,
}

fn lookup_account(user: &str) -> io::Result<Account> {
    let not_found = || {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no passwd entry for {user:?}"),
        )
    };
    let entry = nix::unistd::User::from_name(user)
        .map_err(io::Error::from)?
        .ok_or_else(not_found)?;
    let name = CString::new(user).map_err(|_| not_found())?;
    let gids = nix::unistd::getgrouplist(&name, entry.gid).map_err(io::Error::from)?;
    let mut groups = Vec::with_capacity(gids.len());
    for gid in gids {
        if let Ok(Some(group)) = nix::unistd::Group::from_gid(gid) {
            groups.push(group.name);
        }
    }
    Ok(Account {
        uid: entry.uid.as_raw(),
        shell: entry.shell,
        groups,
    })
}

/// `on_error` and `break_glass_users` read from a config that failed validation, provided the
/// file itself is trusted (regular, root-owned, not group/world-writable) and is valid TOML.
/// Anything less gives the defaults: deny, nobody.
fn fallback_policy(path: &Path) -> (OnError, Vec<String>) {
    let defaults = (OnError::Deny, Vec::new());
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return defaults;
    };
    if !meta.file_type().is_file()
        || meta.uid() != 0
        || meta.mode() & 0o022 != 0
        || meta.len() > FALLBACK_CONFIG_MAX
    {
        return defaults;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return defaults;
    };
    let Ok(table) = text.parse::<toml::Table>() else {
        return defaults;
    };
    let on_error = match table.get("on_error").and_then(toml::Value::as_str) {
        Some("allow") => OnError::Allow,
        _ => OnError::Deny,
    };
    let break_glass = table
        .get("policy")
        .and_then(|p| p.get("break_glass_users"))
        .and_then(toml::Value::as_array)
        .map(|users| {
            users
                .iter()
                .filter_map(|u| u.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (on_error, break_glass)
}

/// Applies the fail-open/closed policy to a failure to set up recording.
fn recording_failed(
    log: &mut dyn Log,
    user: &str,
    on_error: OnError,
    break_glass: bool,
    problem: &str,
) -> Opened {
    if break_glass {
        log.log(
            Level::Alert,
            &format!("BREAK-GLASS login of {user} admitted WITHOUT recording: {problem}"),
        );
        Opened::verdict(Verdict::Success)
    } else if on_error == OnError::Allow {
        log.log(
            Level::Error,
            &format!("login of {user} allowed WITHOUT recording (on_error = \"allow\"): {problem}"),
        );
        Opened::verdict(Verdict::Success)
    } else {
        log.log(
            Level::Error,
            &format!("login of {user} refused, recording cannot be set up: {problem}"),
        );
        Opened::verdict(Verdict::Refuse)
    }
}

fn read_group_gid(config: &Config) -> io::Result<Option<u32>> {
    if config.read_group.is_empty() {
        return Ok(None);
    }
    match nix::unistd::Group::from_name(&config.read_group).map_err(io::Error::from)? {
        Some(group) => Ok(Some(group.gid.as_raw())),
        None => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("read_group {:?} does not exist", config.read_group),
        )),
    }
}

/// Free space on `record_dir`, or on its nearest existing ancestor before it is created.
fn free_mb_near(record_dir: &Path) -> io::Result<u64> {
    let mut path = record_dir;
    loop {
        match tree::free_mb(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => match path.parent() {
                Some(parent) => path = parent,
                None => return Err(e),
            },
            other => return other,
        }
    }
}

fn launch_name(launch: Launch) -> &'static str {
    match launch {
        Launch::LoginShell => "login-shell",
        Launch::ForceCommand => "force-command",
    }
}

/// Removes grants whose sshd monitor has gone, logging what it did.
pub fn sweep_stale_grants(grants: &GrantDir, log: &mut dyn Log) {
    match grants.sweep_stale(SWEEP_LIMIT) {
        Ok(removed) => {
            for id in removed {
                log.log(
                    Level::Warning,
                    &format!("removed stale grant {id}: its sshd monitor is gone (logout was never recorded)"),
                );
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => log.log(Level::Warning, &format!("cannot sweep stale grants: {e}")),
    }
}

/// open_session: decide whether this login is recorded and, if so, set recording up.
pub fn open(req: &OpenRequest<'_>, grants: &GrantDir, log: &mut dyn Log) -> Opened {
    let args = req.args;
    if !args.acts_on(req.service) {
        if args.debug {
            log.log(
                Level::Debug,
                &format!("service {:?} not in services=, ignored", req.service),
            );
        }
        return Opened::verdict(Verdict::Ignore);
    }
    let config = match Config::load_trusted(&args.config) {
        Ok(config) => config,
        Err(e) => {
            let (on_error, break_glass) = fallback_policy(&args.config);
            let glass = break_glass.iter().any(|u| u == req.user);
            return recording_failed(log, req.user, on_error, glass, &format!("config: {e}"));
        }
    };
    if !args.services_given && !config.policy.services.iter().any(|s| s == req.service) {
        if args.debug {
            log.log(
                Level::Debug,
                &format!(
                    "service {:?} not in [policy] services, ignored",
                    req.service
                ),
            );
        }
        return Opened::verdict(Verdict::Ignore);
    }
    let break_glass = config.policy.is_break_glass(req.user);
    let account = match lookup_account(req.user) {
        Ok(a) => a,
        Err(e) => {
            return recording_failed(log, req.user, config.on_error, break_glass, &e.to_string())
        }
    };
    if !config.policy.records(req.user, &account.groups) {
        if args.debug {
            log.log(
                Level::Debug,
                &format!("{} is not recorded by policy", req.user),
            );
        }
        return Opened::verdict(Verdict::Ignore);
    }

    if let Err(e) = launch::check(config.policy.launch, &account.shell, &args.recorder) {
        if break_glass {
            log.log(
                Level::Alert,
                &format!(
                    "BREAK-GLASS login of {} admitted although recording can be bypassed: {e}",
                    req.user
                ),
            );
            return Opened::verdict(Verdict::Success);
        }
        log.log(Level::Error, &format!("login of {} refused: {e}", req.user));
        return Opened::verdict(Verdict::Refuse);
    }

    match free_mb_near(&config.record_dir) {
        Ok(free) if free < config.min_free_mb => {
            let problem = format!(
                "{} has {free} MiB free, under min_free_mb = {}",
                config.record_dir.display(),
                config.min_free_mb
            );
            return recording_failed(log, req.user, config.on_error, break_glass, &problem);
        }
        Ok(_) => {}
        Err(e) => {
            let problem = format!(
                "cannot check free space of {}: {e}",
                config.record_dir.display()
            );
            return recording_failed(log, req.user, config.on_error, break_glass, &problem);
        }
    }

    // Identity.
    let (methods, auth_error) = match req.auth_info.map(authinfo::parse) {
        None => (Vec::new(), None),
        Some(Ok(methods)) => (methods, None),
        Some(Err(e)) => {
            log.log(
                Level::Warning,
                &format!("ignoring SSH_AUTH_INFO_0 of {}: {e}", req.user),
            );
            (Vec::new(), Some(e.to_string()))
        }
    };
    let facts = LoginFacts {
        user: req.user,
        uid: account.uid,
        service: req.service,
        rhost: req.rhost,
        ssh_connection: req.ssh_connection,
        methods: &methods,
    };
    let identity = actor::identify(&facts, &config.identity);

    let setup = set_up_recording(
        req, &config, &account, &identity, &methods, auth_error, grants,
    );
    match setup {
        Ok((state, anchor)) => {
            log.log(
                Level::Info,
                &format!(
                    "session {} opened for {} (actor {} via {}) from {}",
                    state.id,
                    req.user,
                    identity.actor,
                    actor_source_name(&identity),
                    identity.src_ip.as_deref().unwrap_or("?")
                ),
            );
            log.log(Level::Info, &anchor.to_string());
            let id = state.id;
            let notice = (req.args.notice && !config.recorder.notice.is_empty())
                .then(|| config.recorder.notice.replace("{session}", &id.to_string()));
            Opened {
                verdict: Verdict::Success,
                env: Some(format!("SESSREC_SESSION={id}")),
                notice,
                state: Some(state),
                session: Some(id),
            }
        }
        Err(problem) => recording_failed(log, req.user, config.on_error, break_glass, &problem),
    }
}

fn actor_source_name(identity: &Identity) -> String {
    serde_json::to_value(identity.actor_source)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Creates the session directory, writes the `login` line and the grant.
fn set_up_recording(
    req: &OpenRequest<'_>,
    config: &Config,
    account: &Account,
    identity: &Identity,
    methods: &[authinfo::AuthMethod],
    auth_error: Option<String>,
    grants: &GrantDir,
) -> Result<(SessionState, Anchor), String> {
    let id = SessionId::new().map_err(|e| format!("cannot mint a session id: {e}"))?;
    let read_gid = read_group_gid(config).map_err(|e| e.to_string())?;
    let dir = SessionDir::create(&config.record_dir, id, read_gid).map_err(|e| {
        format!(
            "cannot create the session directory under {}: {e}",
            config.record_dir.display()
        )
    })?;
    let file = dir
        .create_file(SESSION_FILE)
        .map_err(|e| format!("cannot create {}/{SESSION_FILE}: {e}", dir.path().display()))?;
    let sync_handle = file.try_clone().map_err(|e| e.to_string())?;
    let context = FileContext {
        host: sessrec_core::sys::hostname(),
        session: id,
        file: SESSION_FILE.to_owned(),
        user: req.user.to_owned(),
        actor: identity.actor.clone(),
    };
    let opts = WriterOptions::from_config(&config.recorder);
    let login_time = Timestamp::now();
    let mut writer = RecordWriter::new(file, context.clone(), opts)
        .map_err(|e| format!("cannot start {SESSION_FILE}: {e}"))?;

    let (audit_session, loginuid) = sessrec_core::sys::audit_identity();
    let login = Login {
        audit_session,
        loginuid,
        boot_id: sessrec_core::sys::boot_id(),
        auth: Some(actor::methods_detail(methods, &config.identity)),
        auth_info_error: auth_error,
        launch: Some(launch_name(config.policy.launch).into()),
        shell: Some(account.shell.to_string_lossy().into_owned()),
        config: Some(req.args.config.to_string_lossy().into_owned()),
        monitor_pid: Some(req.monitor_pid),
        module_version: Some(sessrec_core::VERSION.into()),
        ..identity.to_login()
    };
    writer
        .write(&login)
        .map_err(|e| format!("cannot write the login line: {e}"))?;
    if req.args.fsync {
        sync_handle
            .sync_data()
            .map_err(|e| format!("cannot sync {SESSION_FILE}: {e}"))?;
    }

    let monitor_start = sessrec_core::sys::process_start_time(req.monitor_pid).map_err(|e| {
        format!(
            "cannot read the start time of process {}: {e}",
            req.monitor_pid
        )
    })?;
    let grant = Grant {
        session: id,
        uid: account.uid,
        identity: identity.clone(),
        config_path: req.args.config.clone(),
        session_dir: dir.path().to_path_buf(),
        monitor_pid: req.monitor_pid,
        monitor_start,
        login_time: login_time.to_string(),
        ticket: None,
    };
    if let Err(e) = grants.write(&grant) {
        let problem = format!("cannot write the grant in {}: {e}", grants.path().display());
        let _ = writer.write(&schema::Error {
            error: Some(problem.clone()),
            ..Default::default()
        });
        return Err(problem);
    }
    let anchor = writer.anchor();
    drop(writer);
    Ok((
        SessionState {
            id,
            record_dir: config.record_dir.clone(),
            context,
            login_time,
            login_monotonic_us: Some(monotonic_micros()),
            max_line_bytes: config.recorder.max_line_bytes,
            fsync: req.args.fsync,
        },
        anchor,
    ))
}

/// Rebuilds the close_session state from the grant named by `SESSREC_SESSION`, for callers
/// whose PAM handle lost the module data.
pub fn state_from_grant(
    grants: &GrantDir,
    session_env: &[u8],
    monitor_pid: u32,
) -> Option<SessionState> {
    let id = std::str::from_utf8(session_env)
        .ok()
        .and_then(SessionId::parse)?;
    let grant = grants.read(id).ok()?;
    if grant.monitor_pid != monitor_pid {
        return None;
    }
    let relative = tree::session_relative_path(id);
    let mut record_dir = grant.session_dir.clone();
    for _ in relative.components() {
        record_dir.pop();
    }
    if record_dir.join(&relative) != grant.session_dir {
        return None;
    }
    Some(SessionState {
        id,
        record_dir,
        context: FileContext {
            host: sessrec_core::sys::hostname(),
            session: id,
            file: SESSION_FILE.to_owned(),
            user: grant.identity.user.clone(),
            actor: grant.identity.actor.clone(),
        },
        login_time: Timestamp::parse(&grant.login_time).unwrap_or_else(Timestamp::now),
        login_monotonic_us: None,
        max_line_bytes: WriterOptions::default().max_line_bytes,
        fsync: true,
    })
}

/// close_session: the `logout` line, the grant removed, the anchor logged, a loud warning when
/// no recorder ever claimed the grant, stale grants swept.
pub fn close(state: &SessionState, grants: &GrantDir, log: &mut dyn Log) -> Verdict {
    finish(state, grants, log, None)
}

/// Ends a session that open_session set up but then refused (`reason`): the same logout line
/// and grant removal, without the "never claimed" alert, since no recorder could run.
pub fn abandon(
    state: &SessionState,
    grants: &GrantDir,
    log: &mut dyn Log,
    reason: &str,
) -> Verdict {
    finish(state, grants, log, Some(reason))
}

fn finish(
    state: &SessionState,
    grants: &GrantDir,
    log: &mut dyn Log,
    refused: Option<&str>,
) -> Verdict {
    let claimed = grants.was_claimed(state.id);
    let result = write_logout(state, claimed, refused);
    if let Err(e) = grants.remove(state.id) {
        log.log(
            Level::Error,
            &format!("cannot remove the grant of session {}: {e}", state.id),
        );
    }
    if !claimed && refused.is_none() {
        log.log(
            Level::Alert,
            &format!(
                "session {} of {} (actor {}) was to be recorded but no recorder ever claimed its grant: \
                 check the user's shell, ForceCommand and sshd options",
                state.id, state.context.user, state.context.actor
            ),
        );
    }
    sweep_stale_grants(grants, log);
    match result {
        Ok(anchor) => {
            log.log(
                Level::Info,
                &format!("session {} closed for {}", state.id, state.context.user),
            );
            log.log(Level::Info, &anchor.to_string());
            Verdict::Success
        }
        Err(e) => {
            log.log(
                Level::Error,
                &format!("cannot write the logout line of session {}: {e}", state.id),
            );
            Verdict::Refuse
        }
    }
}

fn write_logout(state: &SessionState, claimed: bool, refused: Option<&str>) -> io::Result<Anchor> {
    let dir = SessionDir::open(&state.record_dir, state.id)?;
    let file = dir.open_file(SESSION_FILE)?;
    let sync_handle = file.try_clone()?;
    let opts = WriterOptions {
        max_line_bytes: state.max_line_bytes,
        ..WriterOptions::default()
    };
    let mut writer = RecordWriter::resume(file, state.context.clone(), opts)?;
    let duration_us = match state.login_monotonic_us {
        Some(start) => monotonic_micros().saturating_sub(start),
        None => (Timestamp::now().as_micros() - state.login_time.as_micros()).max(0) as u64,
    };
    // Twice the longest line, so the last complete line of each file is always in the tail.
    let tail = (state.max_line_bytes as u64)
        .saturating_mul(2)
        .max(64 * 1024);
    let channels = channels::summarize(dir.path(), tail)?;
    writer.write(&Logout {
        login_time: Some(state.login_time.to_string()),
        duration_us: Some(duration_us),
        unclaimed: Some(!claimed),
        refused: refused.map(str::to_string),
        channels: Some(
            channels
                .iter()
                .map(channels::ChannelState::to_logout_channel)
                .collect(),
        ),
        ..Default::default()
    })?;
    // The logout line is durable before the reserve past it is released: the sync then waits
    // for the line alone, not also for freeing the reserved blocks.
    if state.fsync {
        sync_handle.sync_data()?;
    }
    writer.close()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessrec_core::testing::TempDir;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn fallback_policy_reads_only_trusted_files() {
        let dir = std::env::temp_dir().join(format!("pam-sessrec-fb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(
            &path,
            "on_error = \"allow\"\nbogus_key = 1\n[policy]\nbreak_glass_users = [\"srt-bg\"]\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let root = nix::unistd::geteuid().is_root();
        let (on_error, glass) = fallback_policy(&path);
        if root {
            assert_eq!(on_error, OnError::Allow);
            assert_eq!(glass, vec!["srt-bg".to_string()]);
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(fallback_policy(&path), (OnError::Deny, vec![]));
        std::fs::write(&path, "on_error = \"allow\"\n[[[").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(fallback_policy(&path).0, OnError::Deny);
        assert_eq!(fallback_policy(&dir.join("missing")).0, OnError::Deny);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The module's log lines, kept for the test to read.
    #[derive(Default)]
    struct Lines(Vec<(Level, String)>);

    impl Log for Lines {
        fn log(&mut self, level: Level, message: &str) {
            self.0.push((level, message.to_owned()));
        }
    }

    impl Lines {
        fn has(&self, level: Level, text: &str) -> bool {
            self.0.iter().any(|(l, m)| *l == level && m.contains(text))
        }
    }

    fn module_args(config: &Path) -> ModuleArgs {
        let config_arg = format!("config={}", config.display());
        ModuleArgs::parse([config_arg.as_bytes(), b"debug".as_slice()]).unwrap()
    }

    fn request<'a>(args: &'a ModuleArgs, service: &'a str, user: &'a str) -> OpenRequest<'a> {
        OpenRequest {
            args,
            service,
            user,
            rhost: None,
            ssh_connection: Some(b"203.0.113.7 50000 192.0.2.1 22"),
            auth_info: None,
            monitor_pid: std::process::id(),
        }
    }

    /// A config the module trusts (root-owned, 0644) with `policy` as its `[policy]` table;
    /// `None` when the test does not run as root and so cannot own one.
    fn trusted_config(dir: &TempDir, policy: &str) -> Option<PathBuf> {
        if !nix::unistd::geteuid().is_root() {
            return None;
        }
        let path = dir.join("sessrec.toml");
        let records = dir.join("records");
        std::fs::write(
            &path,
            format!("record_dir = {records:?}\n[policy]\nservices = [\"sshd\"]\n{policy}\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        Some(path)
    }

    #[test]
    fn a_service_not_covered_is_ignored_before_the_config_is_read() {
        let dir = TempDir::new("pam-open");
        let args = module_args(&dir.join("missing.toml"));
        let grants = GrantDir::new(dir.join("grants"));
        let mut lines = Lines::default();
        let opened = open(&request(&args, "su", "root"), &grants, &mut lines);
        assert_eq!(opened.verdict, Verdict::Ignore);
        assert!(opened.env.is_none() && opened.state.is_none());
        assert!(lines.has(Level::Debug, "not in services="));
    }

    #[test]
    fn a_config_that_cannot_be_read_refuses_the_login() {
        let dir = TempDir::new("pam-open");
        let args = module_args(&dir.join("missing.toml"));
        let grants = GrantDir::new(dir.join("grants"));
        let mut lines = Lines::default();
        let opened = open(&request(&args, "sshd", "root"), &grants, &mut lines);
        assert_eq!(opened.verdict, Verdict::Refuse);
        assert!(opened.env.is_none() && opened.session.is_none());
        assert!(lines.has(Level::Error, "refused, recording cannot be set up: config:"));
        assert!(!dir.join("grants").exists(), "nothing is written");
    }

    #[test]
    fn a_user_outside_the_policy_is_ignored() {
        let dir = TempDir::new("pam-open");
        let Some(config) = trusted_config(&dir, "users = [\"srt-nobody-*\"]") else {
            return;
        };
        let args = module_args(&config);
        let grants = GrantDir::new(dir.join("grants"));
        let mut lines = Lines::default();
        let opened = open(&request(&args, "sshd", "root"), &grants, &mut lines);
        assert_eq!(opened.verdict, Verdict::Ignore);
        assert!(lines.has(Level::Debug, "root is not recorded by policy"));
        // A service the module argument allows but the config's [policy] does not.
        let opened = open(&request(&args, "sshd-other", "root"), &grants, &mut lines);
        assert_eq!(opened.verdict, Verdict::Ignore);
    }

    #[test]
    fn a_login_that_could_bypass_the_recorder_is_refused_unless_break_glass() {
        let dir = TempDir::new("pam-open");
        // root's passwd shell is not the recorder, so a login shell launch cannot be trusted.
        let Some(config) = trusted_config(&dir, "users = [\"root\"]") else {
            return;
        };
        let args = module_args(&config);
        let grants = GrantDir::new(dir.join("grants"));
        let mut lines = Lines::default();
        let opened = open(&request(&args, "sshd", "root"), &grants, &mut lines);
        assert_eq!(opened.verdict, Verdict::Refuse);
        assert!(lines.has(Level::Error, "login of root refused"));

        let config = trusted_config(&dir, "users = [\"root\"]\nbreak_glass_users = [\"root\"]");
        let args = module_args(&config.unwrap());
        let mut lines = Lines::default();
        let opened = open(&request(&args, "sshd", "root"), &grants, &mut lines);
        assert_eq!(opened.verdict, Verdict::Success);
        assert!(opened.env.is_none(), "admitted without a recorded session");
        assert!(lines.has(Level::Alert, "BREAK-GLASS login of root"));
        assert!(!dir.join("records").exists(), "nothing is written");
    }

    #[test]
    fn a_failed_set_up_follows_break_glass_then_on_error() {
        let mut lines = Lines::default();
        let glass = recording_failed(&mut lines, "alice", OnError::Deny, true, "disk full");
        assert_eq!(glass.verdict, Verdict::Success);
        assert!(lines.has(
            Level::Alert,
            "BREAK-GLASS login of alice admitted WITHOUT recording: disk full"
        ));
        let allow = recording_failed(&mut lines, "alice", OnError::Allow, false, "disk full");
        assert_eq!(allow.verdict, Verdict::Success);
        assert!(lines.has(
            Level::Error,
            "allowed WITHOUT recording (on_error = \"allow\")"
        ));
        let deny = recording_failed(&mut lines, "alice", OnError::Deny, false, "disk full");
        assert_eq!(deny.verdict, Verdict::Refuse);
        assert!(lines.has(
            Level::Error,
            "login of alice refused, recording cannot be set up: disk full"
        ));
        for opened in [glass, allow, deny] {
            assert!(opened.env.is_none() && opened.state.is_none() && opened.notice.is_none());
        }
    }

    #[test]
    fn close_state_comes_only_from_this_monitors_grant() {
        let dir = TempDir::new("pam-open");
        let grants = GrantDir::new(dir.join("grants"));
        assert!(state_from_grant(&grants, b"not an id", 1).is_none());
        let id = SessionId::new().unwrap();
        assert!(state_from_grant(&grants, id.to_string().as_bytes(), 1).is_none());
    }

    /// A config that records `daemon` (passwd shell nologin, which runs nothing ahead of the
    /// recorder) under `launch = "force-command"`, with `extra` at the top level.
    fn recording_config(dir: &TempDir, extra: &str) -> Option<PathBuf> {
        let path = trusted_config(dir, "users = [\"daemon\"]\nlaunch = \"force-command\"")?;
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("read_group = \"\"\n{extra}\n{text}")).unwrap();
        Some(path)
    }

    /// Module arguments naming an existing program as the recorder.
    fn recording_args(config: &Path) -> ModuleArgs {
        let config_arg = format!("config={}", config.display());
        ModuleArgs::parse([
            config_arg.as_bytes(),
            b"recorder=/bin/true".as_slice(),
            b"nofsync".as_slice(),
        ])
        .unwrap()
    }

    /// The typed lines of a record file.
    fn lines_of(path: &Path) -> Vec<schema::Line> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| schema::Line::parse(l.as_bytes()).expect("a JSON line"))
            .collect()
    }

    #[test]
    fn a_recorded_login_writes_its_login_line_and_grant_and_close_its_logout() {
        let dir = TempDir::new("pam-open");
        let Some(config) = recording_config(&dir, "") else {
            return;
        };
        let args = recording_args(&config);
        let grants = GrantDir::new(dir.join("grants"));
        let mut lines = Lines::default();
        let opened = open(&request(&args, "sshd", "daemon"), &grants, &mut lines);
        assert_eq!(opened.verdict, Verdict::Success, "{:?}", lines.0);
        let id = opened.session.expect("a session id");
        assert_eq!(opened.env, Some(format!("SESSREC_SESSION={id}")));
        assert!(lines.has(Level::Info, &format!("session {id} opened for daemon")));

        let grant = grants.read(id).expect("the grant");
        assert_eq!((grant.uid, grant.monitor_pid), (1, std::process::id()));
        let session_file = grant.session_dir.join(SESSION_FILE);
        assert!(session_file.starts_with(dir.join("records")));
        let written = lines_of(&session_file);
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].header.user.as_deref(), Some("daemon"));
        let schema::Event::Login(login) = &written[0].event else {
            panic!("not a login line: {:?}", written[0]);
        };
        assert_eq!(login.monitor_pid, Some(std::process::id()));
        assert_eq!(login.launch.as_deref(), Some("force-command"));
        assert_eq!(login.src_ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(login.shell.as_deref(), Some("/usr/sbin/nologin"));

        let state = opened.state.expect("the close state");
        let mut lines = Lines::default();
        assert_eq!(close(&state, &grants, &mut lines), Verdict::Success);
        assert!(grants.read(id).is_err(), "the grant is removed");
        assert!(lines.has(Level::Alert, "no recorder ever claimed its grant"));
        let written = lines_of(&session_file);
        assert_eq!(written.len(), 2);
        let schema::Event::Logout(logout) = &written[1].event else {
            panic!("not a logout line: {:?}", written[1]);
        };
        assert_eq!(logout.unclaimed, Some(true));
        assert_eq!(logout.channels, Some(Vec::new()));
    }

    #[test]
    fn too_little_free_space_refuses_the_login_unless_on_error_allows_it() {
        let dir = TempDir::new("pam-open");
        let Some(config) = recording_config(&dir, "min_free_mb = 1000000000") else {
            return;
        };
        let args = recording_args(&config);
        let grants = GrantDir::new(dir.join("grants"));
        let mut lines = Lines::default();
        let opened = open(&request(&args, "sshd", "daemon"), &grants, &mut lines);
        assert_eq!(opened.verdict, Verdict::Refuse);
        assert!(lines.has(Level::Error, "under min_free_mb = 1000000000"));

        let config = recording_config(&dir, "min_free_mb = 1000000000\non_error = \"allow\"");
        let args = recording_args(&config.unwrap());
        let mut lines = Lines::default();
        let opened = open(&request(&args, "sshd", "daemon"), &grants, &mut lines);
        assert_eq!(opened.verdict, Verdict::Success);
        assert!(opened.env.is_none() && opened.state.is_none());
        assert!(lines.has(Level::Error, "allowed WITHOUT recording"));
        assert!(!dir.join("records").exists() && !dir.join("grants").exists());
    }

    #[test]
    fn launch_names_match_the_config_words() {
        assert_eq!(launch_name(Launch::LoginShell), "login-shell");
        assert_eq!(launch_name(Launch::ForceCommand), "force-command");
    }
}
