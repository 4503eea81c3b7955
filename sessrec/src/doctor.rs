//! `sessrec doctor`: checks an installation and says what to fix.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use sessrec_core::config::{Config, Launch};
use sessrec_core::forward::{expected_sshd, ForwardConfig, ForwardRule};

use crate::context::{exit, CmdResult, Context};
use crate::escape::escape_control;
use crate::kernel_audit::{missing_rules, Auditctl};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

pub struct Finding {
    pub level: Level,
    pub check: String,
    pub detail: String,
}

#[derive(Default)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, level: Level, check: &str, detail: impl Into<String>) {
        self.findings.push(Finding {
            level,
            check: check.to_string(),
            detail: detail.into(),
        });
    }
}

/// Where the recorder may be installed.
const RECORDER_PATHS: &[&str] = &[
    "/usr/sbin/sessrec-shell",
    "/usr/bin/sessrec-shell",
    "/usr/libexec/sessrec/sessrec-shell",
    "/usr/local/sbin/sessrec-shell",
    "/usr/local/bin/sessrec-shell",
];

/// Shells that read no user file for `-c` (safe under `launch = "force-command"`).
const NO_USER_FILE_SHELLS: &[&str] = &["sh", "dash", "ash", "busybox"];

pub struct Passwd {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub shell: String,
}

pub fn read_passwd(text: &str) -> Vec<Passwd> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 7).then(|| Passwd {
                name: f[0].to_string(),
                uid: f[2].parse().unwrap_or(u32::MAX),
                gid: f[3].parse().unwrap_or(u32::MAX),
                shell: f[6].to_string(),
            })
        })
        .collect()
}

/// group name -> (gid, members)
pub fn read_groups(text: &str) -> BTreeMap<String, (u32, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4).then(|| {
                let members = f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect();
                (
                    f[0].to_string(),
                    (f[2].parse().unwrap_or(u32::MAX), members),
                )
            })
        })
        .collect()
}

fn groups_of(user: &Passwd, groups: &BTreeMap<String, (u32, Vec<String>)>) -> Vec<String> {
    groups
        .iter()
        .filter(|(_, (gid, members))| *gid == user.gid || members.contains(&user.name))
        .map(|(n, _)| n.clone())
        .collect()
}

/// Parses `sshd -T` output into key -> values.
pub fn parse_sshd_t(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(' ') {
            m.entry(k.to_ascii_lowercase())
                .or_default()
                .push(v.trim().to_string());
        }
    }
    m
}

/// Problems in an effective sshd configuration for a recorded user.
pub fn sshd_problems(cfg: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let get = |k: &str| {
        cfg.get(k)
            .and_then(|v| v.first())
            .map(|s| s.to_ascii_lowercase())
            .unwrap_or_default()
    };
    let mut p = Vec::new();
    if get("disableforwarding") != "yes" {
        p.push("DisableForwarding is not yes (port, agent, X11 and socket forwarding channels bypass the recorder)".to_string());
    }
    if get("permittunnel") != "no" {
        p.push("PermitTunnel is not no".into());
    }
    if get("permituserrc") != "no" {
        p.push("PermitUserRC is not no (~/.ssh/rc runs before the recorder)".into());
    }
    if get("permituserenvironment") != "no" {
        p.push("PermitUserEnvironment is not no".into());
    }
    if get("permitlisten") != "none" {
        p.push("PermitListen is not none".into());
    }
    if get("permitopen") != "none" {
        p.push("PermitOpen is not none".into());
    }
    let force = get("forcecommand");
    let internal_sftp = cfg.get("subsystem").is_some_and(|v| {
        v.iter().any(|s| {
            s.split_whitespace()
                .nth(1)
                .is_some_and(|c| c == "internal-sftp")
        })
    });
    if internal_sftp && (force.is_empty() || force == "none") {
        p.push("Subsystem sftp is internal-sftp without a ForceCommand: sftp runs inside sshd, unrecorded".into());
    }
    if force.contains("internal-sftp") {
        p.push(
            "ForceCommand internal-sftp runs inside sshd, unrecorded; force the recorder instead"
                .into(),
        );
    }
    p
}

/// Problems in the effective sshd configuration of a user that a `[forward]` rule names: the
/// jump-host settings, and `PermitOpen` as `sessrec forward-sshd` writes it for that rule (the
/// first rule naming the user, as sshd takes the first `Match` block).
pub fn forward_sshd_problems(
    cfg: &BTreeMap<String, Vec<String>>,
    policy: &ForwardConfig,
    rule: &ForwardRule,
) -> Vec<String> {
    let mut p: Vec<String> = sshd_problems(cfg)
        .into_iter()
        .filter(|problem| {
            !problem.starts_with("DisableForwarding") && !problem.starts_with("PermitOpen")
        })
        .collect();
    for (key, want) in expected_sshd(policy, rule) {
        let got = cfg.get(&key).map(|v| v.join(" ")).unwrap_or_default();
        let same = if key == "permitopen" {
            let mut a: Vec<&str> = got.split_whitespace().collect();
            let mut b: Vec<&str> = want.split_whitespace().collect();
            a.sort_unstable();
            b.sort_unstable();
            a == b
        } else {
            got.eq_ignore_ascii_case(&want)
        };
        if !same {
            p.push(format!(
                "{key} is {got:?}, the [forward] policy wants {want:?} (install the output of `sessrec forward-sshd`)"
            ));
        }
    }
    p
}

/// The sshd and PAM service whose logins are recorded: named on the command line, else the
/// host's sshd configuration and the configuration's `policy.services`.
pub struct InUse {
    /// `--sshd-config`; `None` is sshd's own default.
    pub sshd_config: Option<PathBuf>,
    pub pam_services: Vec<String>,
}

impl InUse {
    fn from_args(ctx: &Context, config: &Config) -> InUse {
        let pam_services = match ctx.args.value("--pam-service") {
            Some(s) => vec![s.to_string()],
            None => config.policy.services.clone(),
        };
        InUse {
            sshd_config: ctx.args.value("--sshd-config").map(PathBuf::from),
            pam_services,
        }
    }

    /// `sshd -T` for a connection of `user` (effective settings, Match blocks applied).
    fn sshd_effective(&self, user: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
        let spec = format!("user={user},host=doctor.invalid,addr=192.0.2.1");
        let mut args: Vec<String> = vec!["-T".into(), "-C".into(), spec.clone()];
        if let Some(c) = &self.sshd_config {
            args.push("-f".into());
            args.push(c.display().to_string());
        }
        let out = Command::new("sshd")
            .args(&args)
            .output()
            .or_else(|_| Command::new("/usr/sbin/sshd").args(&args).output())
            .map_err(|e| format!("cannot run sshd -T: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "sshd {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(parse_sshd_t(&String::from_utf8_lossy(&out.stdout)))
    }
}

pub fn run(ctx: &Context) -> CmdResult {
    let config = ctx.config.clone().unwrap_or_default();
    let in_use = InUse::from_args(ctx, &config);
    let mut r = Report::default();
    check_config(ctx, &mut r);
    let named_recorders = check_pam(&config, &in_use.pam_services, &mut r);
    let recorder = check_recorder(&named_recorders, &mut r);
    let recorded = check_users(&config, recorder.as_deref(), &in_use, &mut r);
    check_masking(&config, &mut r);
    check_tree(
        &config,
        ctx.args
            .value("--dir")
            .map(PathBuf::from)
            .unwrap_or(config.record_dir.clone()),
        &mut r,
    );
    check_system_user(&mut r);
    check_sudoers(&recorded, &mut r);
    check_syslog(Path::new("/dev/log"), &mut r);
    check_selinux(&mut r);
    check_transfer_allow_list(&config, &mut r);
    check_budget(&config, &mut r);
    check_audit(&config, &mut r);
    check_capture(&config, &mut r);
    let mut out = crate::output::stdout();
    for f in &r.findings {
        let tag = match f.level {
            Level::Ok => "ok  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        writeln!(out, "{tag} {:<22} {}", f.check, escape_control(&f.detail))?;
    }
    let worst = r
        .findings
        .iter()
        .map(|f| f.level)
        .max()
        .unwrap_or(Level::Ok);
    writeln!(
        out,
        "{}",
        match worst {
            Level::Ok => "all checks passed",
            Level::Warn => "warnings only",
            Level::Fail => "problems found: fix the FAIL lines above",
        }
    )?;
    out.flush()?;
    Ok(if worst == Level::Fail {
        exit::FINDING
    } else {
        exit::OK
    })
}

fn check_config(ctx: &Context, r: &mut Report) {
    let path = ctx
        .args
        .value("--config")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("SESSREC_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(sessrec_core::config::DEFAULT_CONFIG_PATH));
    if !path.exists() {
        r.add(
            Level::Fail,
            "config",
            format!("{} does not exist (built-in defaults used)", path.display()),
        );
        return;
    }
    match Config::load_trusted(&path) {
        Ok(config) => {
            r.add(
                Level::Ok,
                "config",
                format!(
                    "{} loads and is root-owned, not group/world-writable",
                    path.display()
                ),
            );
            // Loading checks the syntax only; the programs compile the patterns when used.
            for (key, pattern) in [
                (
                    "recorder.password_prompt_regex",
                    &config.recorder.password_prompt_regex,
                ),
                (
                    "sudo.password_prompt_regex",
                    &config.sudo.password_prompt_regex,
                ),
            ] {
                if let Err(e) = regex::Regex::new(pattern) {
                    r.add(Level::Fail, "config", format!("{key}: {e}"));
                }
            }
        }
        Err(e) => r.add(Level::Fail, "config", format!("{}: {e}", path.display())),
    }
}

/// What input masking may withhold under this configuration (`[recorder]`).
fn check_masking(config: &Config, r: &mut Report) {
    let rec = &config.recorder;
    if !rec.record_input {
        r.add(
            Level::Warn,
            "masking",
            "recorder.record_input = false: nothing typed is recorded at all",
        );
        return;
    }
    if rec.mask_arm_limit == 0 {
        r.add(
            Level::Warn,
            "masking",
            "recorder.mask_arm_limit = 0: nothing is withheld, passwords typed in recorded sessions are recorded",
        );
        return;
    }
    r.add(
        Level::Ok,
        "masking",
        format!(
            "a line is withheld only after a fresh switch into password mode or a fresh prompt matching {:?}; at most {} bytes of it; more than {} armings within {} s suspend masking for the channel",
            rec.password_prompt_regex,
            rec.mask_line_max_bytes,
            rec.mask_arm_limit,
            rec.mask_arm_window_s
        ),
    );
    // A prompt pattern that also matches shell prompts arms on every reconfigured prompt: the
    // rate limit still bounds it, but passwords then compete with commands for the budget.
    if let Ok(re) = regex::Regex::new(&rec.password_prompt_regex) {
        if let Some(p) = ["", "$ ", "# ", "> ", "user@host:~$ "]
            .into_iter()
            .find(|p| re.is_match(p))
        {
            r.add(
                Level::Warn,
                "masking",
                format!(
                    "recorder.password_prompt_regex also matches the shell prompt {p:?}: it should match password prompts only"
                ),
            );
        }
    }
}

/// Checks each PAM service's file; returns the recorders its `pam_sessrec.so` lines name
/// (`recorder=PATH`).
fn check_pam(config: &Config, services: &[String], r: &mut Report) -> Vec<String> {
    let session_lines = |text: &str| -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#') && l.starts_with("session"))
            .map(str::to_string)
            .collect()
    };
    let mut recorders = Vec::new();
    if services.is_empty() {
        r.add(
            Level::Fail,
            "pam",
            "policy.services is empty: no login is recorded",
        );
    }
    for service in services {
        if !config.policy.services.contains(service) {
            r.add(
                Level::Fail,
                "pam",
                format!(
                    "PAM service {service} is not in policy.services: its logins are not recorded"
                ),
            );
        }
        let path = format!("/etc/pam.d/{service}");
        let Ok(text) = std::fs::read_to_string(&path) else {
            r.add(
                Level::Fail,
                "pam",
                format!("{path} is missing or unreadable"),
            );
            continue;
        };
        let lines = session_lines(&text);
        let ours: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("pam_sessrec.so"))
            .collect();
        if ours.is_empty() {
            r.add(
                Level::Fail,
                "pam",
                format!("{path} has no `session required pam_sessrec.so` line"),
            );
            continue;
        }
        r.add(
            Level::Ok,
            "pam",
            format!("{path} has a session line for pam_sessrec.so"),
        );
        for line in &ours {
            recorders.extend(
                line.split_whitespace()
                    .filter_map(|w| w.strip_prefix("recorder="))
                    .map(str::to_string),
            );
        }
        let (level, detail) = loginuid_order(&text);
        r.add(level, "pam", format!("{service}: {detail}"));
    }
    if let Ok(text) = std::fs::read_to_string("/etc/pam.d/common-session") {
        if session_lines(&text)
            .iter()
            .any(|l| l.contains("pam_sessrec.so"))
        {
            r.add(
                Level::Fail,
                "pam",
                "/etc/pam.d/common-session loads pam_sessrec.so: it belongs in sshd's stack only",
            );
        }
    }
    recorders
}

/// Whether `pam_loginuid.so` runs before `pam_sessrec.so` in a PAM service's session stack:
/// only then do the records carry the kernel audit session id that joins them to audit logs.
fn loginuid_order(pam_file: &str) -> (Level, &'static str) {
    let session_modules: Vec<&str> = pam_file
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && l.starts_with("session"))
        .collect();
    let position = |module: &str| session_modules.iter().position(|l| l.contains(module));
    match (position("pam_loginuid.so"), position("pam_sessrec.so")) {
        (Some(loginuid), Some(sessrec)) if loginuid < sessrec => (
            Level::Ok,
            "pam_loginuid runs before pam_sessrec: records carry the kernel audit session id",
        ),
        (Some(_), Some(_)) => (
            Level::Warn,
            "pam_loginuid runs after pam_sessrec: records miss the kernel audit session id (move it up)",
        ),
        (None, Some(_)) => (
            Level::Warn,
            "no pam_loginuid in the session stack: records carry no kernel audit session id to join audit logs",
        ),
        (_, None) => (Level::Ok, "pam_loginuid order not checked (no pam_sessrec line)"),
    }
}

fn check_recorder(named: &[String], r: &mut Report) -> Option<String> {
    let candidates: Vec<&str> = if named.is_empty() {
        RECORDER_PATHS.to_vec()
    } else {
        named.iter().map(String::as_str).collect()
    };
    for p in candidates {
        let Ok(meta) = std::fs::metadata(p) else {
            continue;
        };
        let mode = meta.permissions().mode();
        if meta.uid() == 0 && mode & 0o4000 != 0 && mode & 0o022 == 0 {
            r.add(Level::Ok, "recorder", format!("{p} is setuid root"));
        } else {
            r.add(
                Level::Fail,
                "recorder",
                format!(
                    "{p} must be owned by root, mode 4755 (is uid {} mode {:o})",
                    meta.uid(),
                    mode & 0o7777
                ),
            );
        }
        return Some(p.to_string());
    }
    r.add(
        Level::Fail,
        "recorder",
        if named.is_empty() {
            format!("sessrec-shell not found in {}", RECORDER_PATHS.join(", "))
        } else {
            format!(
                "the recorder the PAM line names ({}) does not exist",
                named.join(", ")
            )
        },
    );
    None
}

/// Whether sshd's AllowUsers/DenyUsers/AllowGroups/DenyGroups let `user` log in at all.
pub fn sshd_admits(cfg: &BTreeMap<String, Vec<String>>, user: &str, groups: &[String]) -> bool {
    use sessrec_core::config::glob_match;
    let list = |k: &str| -> Vec<String> {
        cfg.get(k)
            .into_iter()
            .flatten()
            .flat_map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect()
    };
    // `user@host` patterns: only the user part can be judged here.
    let user_part = |p: &str| p.split('@').next().unwrap_or(p).to_string();
    let matches_user = |p: &String| glob_match(&user_part(p), user);
    let matches_group = |p: &String| groups.iter().any(|g| glob_match(p, g));
    let allow_users = list("allowusers");
    let allow_groups = list("allowgroups");
    !list("denyusers").iter().any(matches_user)
        && !list("denygroups").iter().any(matches_group)
        && (allow_users.is_empty() || allow_users.iter().any(matches_user))
        && (allow_groups.is_empty() || allow_groups.iter().any(matches_group))
}

/// Checks the users the policy records and this sshd lets in; returns their names.
fn check_users(
    config: &Config,
    recorder: Option<&str>,
    in_use: &InUse,
    r: &mut Report,
) -> Vec<String> {
    let passwd = read_passwd(&std::fs::read_to_string("/etc/passwd").unwrap_or_default());
    let groups = read_groups(&std::fs::read_to_string("/etc/group").unwrap_or_default());
    let mut recorded = Vec::new();
    let mut elsewhere = 0usize;
    for u in passwd.iter().filter(|u| u.uid >= 1000 && u.uid != 65534) {
        let g = groups_of(u, &groups);
        if !config.policy.records(&u.name, &g) {
            continue;
        }
        // A user this sshd does not let in never reaches the recorded PAM service.
        match in_use.sshd_effective(&u.name) {
            Ok(effective) if !sshd_admits(&effective, &u.name, &g) => elsewhere += 1,
            Ok(effective) => recorded.push((u, Ok(effective))),
            Err(e) => recorded.push((u, Err(e))),
        }
    }
    if elsewhere > 0 {
        r.add(
            Level::Ok,
            "users",
            format!("{elsewhere} user(s) the policy would record cannot log in through this sshd (AllowUsers/DenyUsers/AllowGroups/DenyGroups): not checked"),
        );
    }
    if recorded.is_empty() {
        r.add(Level::Warn, "users", "the policy records no local user (uid >= 1000) in /etc/passwd that this sshd lets in (users from NSS/LDAP are not checked)");
    }
    for (u, effective) in &recorded {
        let shell_name = Path::new(&u.shell)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        match config.policy.launch {
            Launch::LoginShell => {
                if recorder.is_some_and(|rec| same_file(rec, &u.shell))
                    || shell_name == "sessrec-shell"
                {
                    r.add(
                        Level::Ok,
                        "users",
                        format!("{}: login shell is the recorder", u.name),
                    );
                } else {
                    r.add(
                        Level::Fail,
                        "users",
                        format!(
                            "{}: login shell is {} (chsh -s <sessrec-shell> {})",
                            u.name, u.shell, u.name
                        ),
                    );
                }
            }
            Launch::ForceCommand => {
                if NO_USER_FILE_SHELLS.contains(&shell_name) {
                    r.add(
                        Level::Ok,
                        "users",
                        format!(
                            "{}: passwd shell {} reads no user file for -c",
                            u.name, u.shell
                        ),
                    );
                } else {
                    r.add(Level::Fail, "users", format!("{}: passwd shell {} may read user files before ForceCommand; use /bin/sh", u.name, u.shell));
                }
            }
        }
        let g = groups_of(u, &groups);
        let forward = config.forward.rules_for(&u.name, &g).next();
        check_sshd_for(u, &config.forward, forward, effective, r);
    }
    recorded.iter().map(|(u, _)| u.name.clone()).collect()
}

fn same_file(a: &str, b: &str) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

fn check_sshd_for(
    u: &Passwd,
    policy: &ForwardConfig,
    forward: Option<&ForwardRule>,
    effective: &Result<BTreeMap<String, Vec<String>>, String>,
    r: &mut Report,
) {
    match effective {
        Ok(cfg) => {
            let problems = match forward {
                None => sshd_problems(cfg),
                Some(rule) => forward_sshd_problems(cfg, policy, rule),
            };
            if problems.is_empty() {
                let what = match forward {
                    None => "forwarding, tunnels, user rc and environment are off",
                    Some(_) => "only local forwarding to the [forward] destinations; tunnels, user rc and environment are off",
                };
                r.add(Level::Ok, "sshd", format!("{}: {what}", u.name));
            }
            for p in problems {
                r.add(Level::Fail, "sshd", format!("{}: {p}", u.name));
            }
        }
        Err(e) => r.add(Level::Fail, "sshd", format!("{}: {e}", u.name)),
    }
}

fn check_tree(config: &Config, dir: PathBuf, r: &mut Report) {
    let meta = match std::fs::symlink_metadata(&dir) {
        Ok(m) => m,
        Err(e) => {
            r.add(
                Level::Fail,
                "record tree",
                format!("{}: {e}", dir.display()),
            );
            return;
        }
    };
    let mode = meta.permissions().mode() & 0o7777;
    if meta.file_type().is_symlink() {
        r.add(
            Level::Fail,
            "record tree",
            format!("{} is a symlink", dir.display()),
        );
    } else if meta.uid() != 0
        || mode & 0o022 != 0
        || (mode & 0o077 != 0 && config.read_group.is_empty())
    {
        r.add(
            Level::Fail,
            "record tree",
            format!(
                "{} must be root-owned 0700 (0750 with read_group); is uid {} mode {mode:o}",
                dir.display(),
                meta.uid()
            ),
        );
    } else {
        r.add(
            Level::Ok,
            "record tree",
            format!("{} is root-owned, mode {mode:o}", dir.display()),
        );
    }
    // Every parent must be unwritable by others, or the tree could be swapped.
    let mut p = dir.parent();
    while let Some(d) = p {
        if let Ok(m) = std::fs::metadata(d) {
            if m.uid() != 0 || m.permissions().mode() & 0o022 != 0 {
                r.add(
                    Level::Fail,
                    "record tree",
                    format!("parent {} is writable by non-root users", d.display()),
                );
            }
        }
        p = d.parent();
    }
    // A filesystem users can write to can be filled by them.
    let dev = meta.dev();
    for shared in ["/tmp", "/var/tmp", "/dev/shm", "/home"] {
        if std::fs::metadata(shared).is_ok_and(|m| m.dev() == dev) {
            // Availability, not integrity: at min_free_mb new sessions are refused, none is
            // recorded partly.
            r.add(
                Level::Warn,
                "record fs",
                format!(
                    "{} shares its filesystem with {shared}, which users can fill: new sessions are then refused (min_free_mb); give the tree its own filesystem",
                    dir.display()
                ),
            );
        }
    }
    match sessrec_core::tree::free_mb(&dir) {
        Ok(free) if free >= config.min_free_mb => r.add(
            Level::Ok,
            "free space",
            format!("{free} MiB free (min_free_mb = {})", config.min_free_mb),
        ),
        Ok(free) => r.add(
            Level::Fail,
            "free space",
            format!(
                "{free} MiB free, below min_free_mb = {}: new sessions are refused",
                config.min_free_mb
            ),
        ),
        Err(e) => r.add(Level::Warn, "free space", format!("statvfs: {e}")),
    }
}

fn check_system_user(r: &mut Report) {
    match nix::unistd::User::from_name("sessrec") {
        Ok(Some(u)) if u.uid.as_raw() < 1000 && u.uid.as_raw() != 0 => r.add(
            Level::Ok,
            "sessrec user",
            format!("system user sessrec (uid {})", u.uid),
        ),
        Ok(Some(u)) => r.add(
            Level::Fail,
            "sessrec user",
            format!(
                "sessrec has uid {}: must be a system user (adduser --system --group sessrec)",
                u.uid
            ),
        ),
        _ => r.add(
            Level::Fail,
            "sessrec user",
            "no sessrec user: adduser --system --group --no-create-home sessrec",
        ),
    }
}

/// Whether sudo records its own sessions (`log_output`, with `use_pty`) for the recorded users:
/// global `Defaults` lines and `Defaults:USER` lines naming them (or `ALL`) count; lines for
/// other users do not.
fn check_sudoers(users: &[String], r: &mut Report) {
    let mut text = std::fs::read_to_string("/etc/sudoers").unwrap_or_default();
    if let Ok(rd) = std::fs::read_dir("/etc/sudoers.d") {
        let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // sudo skips names with a dot or ending in ~.
            if !name.contains('.') && !name.ends_with('~') {
                text.push('\n');
                text.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    for (level, detail) in sudoers_findings(&text, users) {
        r.add(level, "sudoers", detail);
    }
}

/// The sudoers findings for `users` (or for a global setting when there are none).
pub fn sudoers_findings(text: &str, users: &[String]) -> Vec<(Level, String)> {
    // (scope, options): scope None is global, Some(list) the users of `Defaults:list`.
    let defaults: Vec<(Option<Vec<&str>>, Vec<&str>)> = text
        .lines()
        .map(str::trim)
        .filter_map(|l| {
            let (head, rest) = l.split_once([' ', '\t'])?;
            let options = rest
                .split([' ', ',', '\t'])
                .filter(|w| !w.is_empty())
                .collect();
            match head {
                "Defaults" => Some((None, options)),
                _ => head
                    .strip_prefix("Defaults:")
                    .map(|list| (Some(list.split(',').collect()), options)),
            }
        })
        .collect();
    let setting = |user: Option<&str>, opt: &str| -> bool {
        let applies = |scope: &Option<Vec<&str>>| match (scope, user) {
            (None, _) => true,
            (Some(list), Some(u)) => list.iter().any(|x| *x == u || *x == "ALL"),
            (Some(_), None) => false,
        };
        // Later lines win, as in sudo.
        let mut on = false;
        for (_, options) in defaults.iter().filter(|(s, _)| applies(s)) {
            for w in options {
                if *w == opt {
                    on = true;
                } else if w.strip_prefix('!') == Some(opt) {
                    on = false;
                }
            }
        }
        on
    };
    let mut out = Vec::new();
    let who: Vec<Option<&str>> = if users.is_empty() {
        vec![None]
    } else {
        users.iter().map(|u| Some(u.as_str())).collect()
    };
    for opt in ["log_output", "use_pty"] {
        let missing: Vec<&str> = who
            .iter()
            .filter(|u| !setting(**u, opt))
            .map(|u| u.unwrap_or("everyone"))
            .collect();
        if missing.is_empty() {
            out.push((
                Level::Ok,
                format!("Defaults {opt} applies to every recorded user"),
            ));
        } else {
            out.push((
                Level::Fail,
                format!(
                    "Defaults {opt} is not set for {}: sudo sessions are not recorded by sudo itself",
                    missing.join(", ")
                ),
            ));
        }
    }
    out
}

/// Chain anchors and alerts go to syslog through `/dev/log`. A socket file proves nothing: a
/// daemon that died leaves it behind, and every message is then dropped without an error.
fn check_syslog(dev_log: &Path, r: &mut Report) {
    let path = dev_log.display();
    match sessrec_core::sys::syslog_socket_reachable(dev_log) {
        Ok(()) => r.add(Level::Ok, "syslog", format!("a daemon listens on {path}")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => r.add(
            Level::Fail,
            "syslog",
            format!("no {path}: chain anchors and alerts are lost; start the syslog daemon"),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => r.add(
            Level::Fail,
            "syslog",
            format!(
                "nothing listens on {path} (left by a daemon that is gone): chain anchors and \
                 alerts are lost; start the syslog daemon"
            ),
        ),
        Err(e) => r.add(Level::Fail, "syslog", format!("{path}: {e}")),
    }
}

fn check_selinux(r: &mut Report) {
    if std::fs::read_to_string("/sys/fs/selinux/enforce").is_ok_and(|s| s.trim() == "1") {
        r.add(
            Level::Fail,
            "selinux",
            "SELinux is enforcing: unsupported until a policy module ships",
        );
    }
}

/// The per-user daily record budget, and who has spent it today.
/// Exec audit is optional: without it everything else works, and records say it was off.
/// With `[forward] capture_sshd`, `forward-sshd` opens `record_payload` destinations to sshd:
/// their content is kept only while a following importer captures it.
fn check_capture(config: &Config, r: &mut Report) {
    if !config.forward.capture_sshd {
        return;
    }
    match crate::capture_check::capturing_importers(Path::new("/proc")).as_slice() {
        [] => r.add(
            Level::Fail,
            "forward",
            "capture_sshd is set but no sessrec-audit-import holds a packet socket: the content of sshd's forwards to record_payload destinations is not recorded (run sessrec-audit-import --follow with examples/jump-host/sessrec-audit-import-capture.conf, or unset capture_sshd and regenerate forward-sshd)",
        ),
        pids => r.add(
            Level::Ok,
            "forward",
            format!(
                "sshd's forwards to record_payload destinations are captured (sessrec-audit-import pid {})",
                pids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            ),
        ),
    }
}

fn check_audit(config: &Config, r: &mut Report) {
    const ENABLE: &str = "install /usr/share/doc/sessrec/examples/audit/sessrec.rules into /etc/audit/rules.d/ and run augenrules --load";
    let Some(auditctl) = Auditctl::find() else {
        r.add(
            Level::Warn,
            "audit",
            "auditd is not installed: commands run and connections made are known only from keystrokes (install auditd)",
        );
        return;
    };
    let Some(status) = auditctl.status() else {
        r.add(
            Level::Warn,
            "audit",
            "auditctl -s failed (doctor must run as root to check audit)",
        );
        return;
    };
    if !status.daemon_runs() {
        r.add(
            Level::Warn,
            "audit",
            "auditd does not run: exec and connect records are not written (start auditd)",
        );
    } else if !status.enabled {
        r.add(
            Level::Warn,
            "audit",
            "auditd runs but kernel auditing is disabled (auditctl -e 1)",
        );
    } else {
        r.add(
            Level::Ok,
            "audit",
            format!("auditd runs (pid {}), auditing enabled", status.pid),
        );
    }
    match auditctl.rules() {
        Some(listing) => {
            let missing = missing_rules(&listing);
            if missing.is_empty() {
                r.add(
                    Level::Ok,
                    "audit",
                    "the sessrec exec and connect rules are loaded",
                );
            } else {
                r.add(
                    Level::Warn,
                    "audit",
                    format!("missing audit rules: {} ({ENABLE})", missing.join("; ")),
                );
            }
        }
        None => r.add(Level::Warn, "audit", "auditctl -l failed"),
    }
    if config.audit.log_file.exists() {
        r.add(
            Level::Ok,
            "audit",
            format!(
                "{} exists (read by sessrec-audit-import)",
                config.audit.log_file.display()
            ),
        );
    } else {
        r.add(
            Level::Warn,
            "audit",
            format!(
                "{} does not exist: set [audit] log_file to auditd's log_file",
                config.audit.log_file.display()
            ),
        );
    }
}

fn check_budget(config: &Config, r: &mut Report) {
    let Some(limit) = config.budget.bytes_per_day() else {
        r.add(
            Level::Warn,
            "budget",
            "[budget] user_mb_per_day = 0: one user can fill the record disk and, at min_free_mb, lock every user out",
        );
        return;
    };
    let action = match config.budget.action {
        sessrec_core::config::BudgetAction::Cap => "output of their new channels is sampled",
        sessrec_core::config::BudgetAction::Refuse => "their new channels are refused",
    };
    r.add(
        Level::Ok,
        "budget",
        format!(
            "each user may write {} MiB of records per UTC day; past it {action} (input is always recorded)",
            config.budget.user_mb_per_day
        ),
    );
    let today = {
        let (y, m, d) = sessrec_core::time::Timestamp::now().date();
        format!("{y:04}-{m:02}-{d:02}")
    };
    let dir = config.record_dir.join(sessrec_core::budget::USAGE_DIR);
    let mut spent = Vec::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(uid) = name.strip_suffix(&format!("-{today}")) else {
            continue;
        };
        let used = std::fs::read_to_string(entry.path())
            .map(|t| sessrec_core::budget::sum_ledger(&t))
            .unwrap_or(0);
        if used >= limit {
            spent.push(format!("uid {uid} ({} MiB)", used >> 20));
        }
    }
    if !spent.is_empty() {
        spent.sort();
        r.add(
            Level::Warn,
            "budget",
            format!("spent today: {}", spent.join(", ")),
        );
    }
}

/// Which transfer programs run on the transfer path (payload not recorded) and with what.
/// Anything outside the recorder's built-in allow-lists (sessrec-shell(8), "Transfer
/// channels") is an ordinary, fully recorded exec channel whatever the configuration says.
fn check_transfer_allow_list(config: &Config, r: &mut Report) {
    let rsync_version = Command::new("/usr/bin/rsync")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.split_whitespace()
                .skip_while(|w| *w != "version")
                .nth(1)
                .map(str::to_owned)
        });
    for (level, detail) in transfer_findings(&config.transfer, rsync_version.as_deref()) {
        r.add(level, "transfer", detail);
    }
}

fn transfer_findings(
    t: &sessrec_core::config::TransferConfig,
    rsync_version: Option<&str>,
) -> Vec<(Level, String)> {
    let mut found = Vec::new();
    let payload = if t.record_payload {
        "payload recorded"
    } else {
        "payload not recorded"
    };
    let enabled: Vec<&str> = [
        (t.allow_sftp, "sftp"),
        (t.allow_scp, "scp"),
        (t.allow_rsync, "rsync"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect();
    found.push((
        Level::Ok,
        if enabled.is_empty() {
            "no transfer programs allowed: every command is a recorded exec channel".to_string()
        } else {
            format!("allowed: {} ({payload})", enabled.join(", "))
        },
    ));
    if t.allow_sftp {
        found.push((Level::Ok, format!("sftp runs {}", t.sftp_server.display())));
    }
    if t.allow_scp {
        // Only letters that take no value are ever honoured (see the classifier).
        let (honoured, ignored): (Vec<&String>, Vec<&String>) = t.scp_flags.iter().partition(|f| {
            let mut c = f.chars();
            c.next() == Some('-')
                && c.next().is_some_and(|l| "rpdvqT".contains(l))
                && c.next().is_none()
        });
        let list = |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
        found.push((Level::Ok, format!("scp -t|-f flags: {}", list(&honoured))));
        if !ignored.is_empty() {
            found.push((
                Level::Warn,
                format!(
                    "scp_flags never honoured (not no-value flags): {}",
                    list(&ignored)
                ),
            ));
        }
    }
    if t.allow_rsync {
        let denied = if t.rsync_denied_options.is_empty() {
            "none".to_string()
        } else {
            t.rsync_denied_options.join(" ")
        };
        found.push((
            Level::Ok,
            format!(
                "rsync --server: built-in allow-list (no -s/--secluded-args, --files-from, \
                 --daemon, --config, -e COMMAND, --log-file, batch, device or --iconv \
                 options; no HOME or RSYNC_* in its environment); denied by config as well: \
                 {denied}"
            ),
        ));
        match rsync_version {
            Some(v) if v.starts_with("3.") => {
                found.push((Level::Ok, format!("/usr/bin/rsync is version {v}")))
            }
            Some(v) => found.push((
                Level::Warn,
                format!(
                    "/usr/bin/rsync is version {v}: the allow-list was checked against \
                     rsync 3.2.7 to 3.5.0; review it or set allow_rsync = false"
                ),
            )),
            None => found.push((
                Level::Warn,
                "allow_rsync is on but /usr/bin/rsync --version gave no version".to_string(),
            )),
        }
    }
    found
}

#[cfg(test)]
mod tests {

    #[test]
    fn pam_loginuid_must_come_before_pam_sessrec() {
        let debian = "@include common-auth\nsession required pam_loginuid.so\nsession optional pam_keyinit.so force revoke\n@include common-session\nsession required pam_sessrec.so\n";
        assert_eq!(loginuid_order(debian).0, Level::Ok);
        let after = "session required pam_sessrec.so\nsession required pam_loginuid.so\n";
        assert_eq!(loginuid_order(after).0, Level::Warn);
        let missing = "session required pam_unix.so\nsession required pam_sessrec.so\n";
        assert_eq!(loginuid_order(missing).0, Level::Warn);
        let commented = "#session required pam_loginuid.so\nsession required pam_sessrec.so\n";
        assert_eq!(loginuid_order(commented).0, Level::Warn);
    }

    use super::*;

    #[test]
    fn sudoers_defaults_count_for_the_users_they_name() {
        let text = "Defaults use_pty\nDefaults:alice log_output\nDefaults:bob !use_pty\n";
        let alice = sudoers_findings(text, &["alice".into()]);
        assert!(
            alice.iter().all(|(l, _)| *l == Level::Ok),
            "{:?}",
            alice.iter().map(|f| &f.1).collect::<Vec<_>>()
        );
        let bob = sudoers_findings(text, &["bob".into()]);
        assert!(bob.iter().all(|(l, _)| *l == Level::Fail));
        assert!(bob[1].1.contains("for bob"));
    }

    #[test]
    fn sshd_lets_in_only_whom_it_allows() {
        let cfg = parse_sshd_t("allowusers srt-demo\ndenyusers\n");
        assert!(sshd_admits(&cfg, "srt-demo", &[]));
        assert!(!sshd_admits(&cfg, "alice", &[]));
        let cfg = parse_sshd_t("allowgroups ops\ndenyusers mallory@*\n");
        assert!(sshd_admits(&cfg, "alice", &["ops".into()]));
        assert!(!sshd_admits(&cfg, "bob", &["dev".into()]));
        assert!(!sshd_admits(&cfg, "mallory", &["ops".into()]));
    }

    #[test]
    fn syslog_socket_left_by_a_dead_daemon_fails() {
        let dir = std::env::temp_dir().join(format!("sessrec-doctor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("log");
        let _ = std::fs::remove_file(&sock);
        let level = |path: &Path| {
            let mut r = Report::default();
            check_syslog(path, &mut r);
            let f = r.findings.pop().unwrap();
            (f.level, f.detail)
        };
        assert_eq!(level(&sock).0, Level::Fail, "missing socket");
        let daemon = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
        assert_eq!(level(&sock).0, Level::Ok);
        drop(daemon);
        let (lvl, detail) = level(&sock);
        assert_eq!(lvl, Level::Fail);
        assert!(detail.contains("nothing listens"), "{detail}");
        let stream = std::os::unix::net::UnixListener::bind(dir.join("stream")).unwrap();
        assert_eq!(level(&dir.join("stream")).0, Level::Ok, "stream /dev/log");
        drop(stream);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn masking_settings_are_reported() {
        let levels = |text: &str| {
            let config = Config::from_toml_str(text, "t").unwrap();
            let mut r = Report::default();
            check_masking(&config, &mut r);
            r.findings
                .iter()
                .map(|f| (f.level, f.detail.clone()))
                .collect::<Vec<_>>()
        };
        let found = levels("");
        assert_eq!(
            found.len(),
            1,
            "{:?}",
            found.iter().map(|f| &f.1).collect::<Vec<_>>()
        );
        assert_eq!(found[0].0, Level::Ok);
        assert!(found[0].1.contains("at most 256 bytes"), "{}", found[0].1);
        assert!(
            found[0].1.contains("more than 5 armings within 60 s"),
            "{}",
            found[0].1
        );
        let found = levels("[recorder]\nmask_arm_limit = 0\n");
        assert_eq!(found[0].0, Level::Warn);
        assert!(found[0].1.contains("passwords"), "{}", found[0].1);
        let found = levels("[recorder]\nrecord_input = false\n");
        assert_eq!(found[0].0, Level::Warn);
        let found = levels("[recorder]\npassword_prompt_regex = \"[:$] *$\"\n");
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].0, Level::Warn);
        assert!(found[1].1.contains("shell prompt"), "{}", found[1].1);
    }

    #[test]
    fn a_forwarding_user_is_checked_against_the_policy() {
        let config = Config::from_toml_str(
            "[[forward.allow]]\nusers = [\"a\"]\nto = [\"db:5432\", \"127.0.0.1:80\"]\n",
            "t",
        )
        .unwrap();
        let rule = &config.forward.allow[0];
        let good = "disableforwarding no\nallowtcpforwarding local\nallowagentforwarding no\nallowstreamlocalforwarding no\nx11forwarding no\npermittunnel no\npermituserrc no\npermituserenvironment no\npermitlisten none\npermitopen 127.0.0.1:80 db:5432\n";
        assert_eq!(
            forward_sshd_problems(&parse_sshd_t(good), &config.forward, rule),
            Vec::<String>::new()
        );
        let bad = good
            .replace("allowtcpforwarding local", "allowtcpforwarding yes")
            .replace("permitopen 127.0.0.1:80 db:5432", "permitopen any");
        let problems = forward_sshd_problems(&parse_sshd_t(&bad), &config.forward, rule);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("allowtcpforwarding is \"yes\""));
        assert!(problems[1].contains("sessrec forward-sshd"));
        // Without the rule, the same user would have to have forwarding off.
        assert!(!sshd_problems(&parse_sshd_t(good)).is_empty());
    }

    #[test]
    fn a_payload_rule_must_not_be_opened_by_sshd() {
        let config = Config::from_toml_str(
            "[[forward.allow]]\nusers = [\"a\"]\nto = [\"127.0.0.1:80\"]\nrecord_payload = true\n",
            "t",
        )
        .unwrap();
        let rule = &config.forward.allow[0];
        let closed = "disableforwarding no\nallowtcpforwarding local\nallowagentforwarding no\nallowstreamlocalforwarding no\nx11forwarding no\npermittunnel no\npermituserrc no\npermituserenvironment no\npermitlisten none\npermitopen none\n";
        assert_eq!(
            forward_sshd_problems(&parse_sshd_t(closed), &config.forward, rule),
            Vec::<String>::new()
        );
        let open = closed.replace("permitopen none", "permitopen 127.0.0.1:80");
        let problems = forward_sshd_problems(&parse_sshd_t(&open), &config.forward, rule);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("permitopen is \"127.0.0.1:80\""),
            "{problems:?}"
        );
    }

    #[test]
    fn sshd_config_problems() {
        let good = "disableforwarding yes\npermittunnel no\npermituserrc no\npermituserenvironment no\npermitlisten none\npermitopen none\nsubsystem sftp /usr/lib/openssh/sftp-server\nforcecommand none\n";
        assert!(sshd_problems(&parse_sshd_t(good)).is_empty());
        let bad = "disableforwarding no\npermittunnel yes\npermituserrc yes\npermituserenvironment no\npermitlisten any\npermitopen any\nsubsystem sftp internal-sftp\n";
        let p = sshd_problems(&parse_sshd_t(bad));
        assert_eq!(p.len(), 6, "{p:?}");
        assert!(p.iter().any(|x| x.contains("internal-sftp")));
    }

    #[test]
    fn passwd_and_groups() {
        let u = read_passwd("alice:x:1001:1001:A:/home/alice:/usr/sbin/sessrec-shell\n");
        assert_eq!(u[0].uid, 1001);
        let g = read_groups("ops:x:2000:alice,bob\nalice:x:1001:\n");
        assert_eq!(
            groups_of(&u[0], &g),
            vec!["alice".to_string(), "ops".to_string()]
        );
    }

    #[test]
    fn transfer_allow_list_state() {
        let mut t = sessrec_core::config::TransferConfig::default();
        let text = |f: &[(Level, String)]| {
            f.iter()
                .map(|(l, d)| format!("{l:?} {d}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let found = transfer_findings(&t, Some("3.2.7"));
        assert!(
            found.iter().all(|(l, _)| *l == Level::Ok),
            "{}",
            text(&found)
        );
        let all = text(&found);
        assert!(
            all.contains("allowed: sftp, scp, rsync (payload not recorded)"),
            "{all}"
        );
        assert!(all.contains("no -s/--secluded-args"), "{all}");
        assert!(all.contains("denied by config as well: --daemon"), "{all}");
        assert!(all.contains("version 3.2.7"), "{all}");

        t.scp_flags.push("-S".into());
        let found = transfer_findings(&t, Some("4.0.0"));
        let warnings: Vec<_> = found.iter().filter(|(l, _)| *l == Level::Warn).collect();
        assert_eq!(warnings.len(), 2, "{}", text(&found));

        t.allow_sftp = false;
        t.allow_scp = false;
        t.allow_rsync = false;
        let all = text(&transfer_findings(&t, None));
        assert!(all.contains("no transfer programs allowed"), "{all}");
        assert!(!all.contains("rsync"), "{all}");
    }
}
