//! One recorded channel from start to end: decide what to run, take the terminal, open the
//! record, start the child, drop the recorder's privileges, relay, and write the final lines.
#![forbid(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sessrec_core::bounds::{set_bounded, set_bounded_bytes, PATH_MAX, TERM_MAX};
use sessrec_core::budget::UsageLedger;
use sessrec_core::command::COMMAND_RECORD_MAX;
use sessrec_core::config::{BudgetAction, Config, OnError, TicketMode};
use sessrec_core::grant::GrantDir;
use sessrec_core::id::SessionId;
use sessrec_core::identity::Identity;
use sessrec_core::record::FileContext;
use sessrec_core::schema::{self, channel_start, ChannelEnd, ChannelStart, Logout, LogoutChannel};
use sessrec_core::sys::{syslog_authpriv, Level};
use sessrec_core::time::Timestamp;
use sessrec_core::tree::SessionDir;
use sessrec_core::writer::{RecordWriter, WriterOptions};

use crate::forward::ConnectRequest;
use crate::invocation::{self, Invocation};
use crate::masking::{InputMasker, MaskPolicy};
use crate::notice::UserNoticePlan;
use crate::recording::ChannelRecorder;
use crate::relay::{Client, EndReason, IdlePolicy, Outcome, PipeRelay, PtyRelay};
use crate::session::{self, Enclosing, Unclaimed};
use crate::spawn::{self, PreparedExec};
use crate::start_error::{RecordUnavailable, SessionFileStep, StartError};
use crate::startup::{Caller, Inherited};
use crate::sys;
use crate::terminal::{self, RawModeGuard, Takeover};
use crate::transfer::TransferCommand;

mod forward;

use forward::ForwardChannel;

/// The system user the recorder runs as once the child is started.
pub const RECORDER_USER: &str = "sessrec";

/// A set-up step that failed, in words.
fn err(msg: impl Into<String>) -> StartError {
    StartError::Setup(msg.into())
}

/// What kind of channel this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelKind {
    Shell,
    Exec,
    /// An allow-listed transfer, executed directly; its argv[0] is absolute.
    Transfer(TransferCommand),
    /// `connect HOST PORT`: the recorder itself connects and relays (see `forward`).
    Forward(ConnectRequest),
}

impl ChannelKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChannelKind::Shell => "shell",
            ChannelKind::Exec => "exec",
            ChannelKind::Transfer(_) => "transfer",
            ChannelKind::Forward(_) => "forward",
        }
    }
}

fn env_var(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// The record writer for the session's own `session.jsonl` when no grant was claimed.
struct OwnSession {
    writer: RecordWriter,
    started: Instant,
}

/// The state the whole channel shares.
struct Setup {
    caller: Caller,
    inherited: Inherited,
    user: sys::Passwd,
    group_names: Vec<String>,
    config: Config,
    session: SessionId,
    identity: Identity,
    grant_ticket: Option<String>,
    unclaimed: Option<Unclaimed>,
    invocation: Invocation,
    /// The recorded channel this one runs inside (nesting), found by process ancestry.
    enclosing: Option<Enclosing>,
}

/// Runs the channel; returns the process exit code.
pub fn run(caller: Caller, inherited: Inherited) -> Result<i32, StartError> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let own_exe = std::fs::read_link("/proc/self/exe").ok();
    let invocation = invocation::parse(&argv, own_exe.as_deref(), env_var("SSH_ORIGINAL_COMMAND"))
        .map_err(StartError::Usage)?;
    let user = sys::passwd_by_uid(caller.uid)
        .ok()
        .flatten()
        .ok_or_else(|| err(format!("uid {} has no passwd entry", caller.uid)))?;
    let mut group_names = Vec::new();
    for gid in std::iter::once(caller.gid).chain(caller.groups.iter().copied()) {
        if let Ok(Some(name)) = sys::group_name(gid) {
            if !group_names.contains(&name) {
                group_names.push(name);
            }
        }
    }

    let store = GrantDir::default();
    // A recorder started inside a recorded channel belongs to that channel's session, whatever
    // the environment says.
    let enclosing = own_exe.as_deref().and_then(session::enclosing_channel);
    let (config, session, identity, grant_ticket, unclaimed) = match session::claim_grant(
        &store,
        env_var("SESSREC_SESSION").as_ref(),
        &caller,
        enclosing,
    ) {
        Ok(grant) => {
            let config =
                session::load_config(&grant.config_path, false).map_err(StartError::Config)?;
            (config, grant.session, grant.identity, grant.ticket, None)
        }
        Err(reason) => {
            let named = env_var("SESSREC_CONFIG");
            let path = session::unclaimed_config_path(&caller, named.as_ref());
            let by_root = caller.is_root() && named.is_some();
            let config = session::load_config(&path, by_root).map_err(StartError::Config)?;
            let id = match enclosing {
                Some(e) => e.session,
                None => SessionId::new().map_err(StartError::NoSessionId)?,
            };
            let identity = Identity::unverified(&user.name, caller.uid.as_raw());
            (config, id, identity, None, Some(reason))
        }
    };
    let setup = Setup {
        caller,
        inherited,
        user,
        group_names,
        config,
        session,
        identity,
        grant_ticket,
        unclaimed,
        invocation,
        enclosing,
    };
    setup.run(own_exe)
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// A channel's view of its user's daily byte budget.
enum Budget {
    None,
    Within {
        ledger: UsageLedger,
        limit: u64,
    },
    Spent {
        ledger: UsageLedger,
        limit: u64,
        used: u64,
        refuse: bool,
    },
}

impl Budget {
    /// The message for the user when the channel must be refused.
    fn refusal(&self) -> Option<String> {
        match self {
            Budget::Spent {
                used,
                limit,
                refuse: true,
                ..
            } => Some(format!(
                "you have used today's record budget ({used} of {limit} bytes); new sessions are refused until 00:00 UTC"
            )),
            _ => None,
        }
    }

    /// Hands the ledger to the recorder; returns (used, limit) when output is sampled from the
    /// start.
    fn spend_in(self, recorder: &mut ChannelRecorder) -> Option<(u64, u64)> {
        match self {
            Budget::None => None,
            Budget::Within { ledger, limit } => {
                recorder.spend_budget(ledger, limit, false);
                None
            }
            Budget::Spent {
                ledger,
                limit,
                used,
                ..
            } => {
                recorder.spend_budget(ledger, limit, true);
                Some((used, limit))
            }
        }
    }
}

/// What either mode starts its child with.
struct Launch<'a> {
    exec: PreparedExec,
    recorder_user: sys::Passwd,
    signal_fd: OwnedFd,
    recorder: &'a mut ChannelRecorder,
    start: ChannelStart,
    kind: &'a ChannelKind,
}

impl Setup {
    fn run(self, own_exe: Option<PathBuf>) -> Result<i32, StartError> {
        let has_tty = sys::isatty(sys::StdFd::Input);
        let kind = self.channel_kind(has_tty);
        let shell = self
            .config
            .recorder
            .shell_for(&self.user.name, &self.group_names)
            .to_path_buf();
        if !shell.is_absolute() {
            return Err(err(format!(
                "the configured shell {} is not an absolute path",
                shell.display()
            )));
        }
        if own_exe.as_deref().is_some_and(|own| same_file(own, &shell)) {
            return Err(err(format!(
                "the configured real shell {} is sessrec-shell itself; set [recorder] shell to the real shell",
                shell.display()
            )));
        }
        let recorder_user = sys::passwd_by_name(RECORDER_USER)
            .ok()
            .flatten()
            .ok_or_else(|| {
                err(format!(
                    "the system user '{RECORDER_USER}' does not exist (create it with: adduser --system --group --no-create-home {RECORDER_USER})"
                ))
            })?;

        // The outer terminal is taken before anything else can run as the user.
        let (takeover, typeahead) = if has_tty {
            terminal::take_over().map_err(|e| err(format!("cannot secure the terminal: {e}")))?
        } else {
            (Takeover::NoTerminal, Vec::new())
        };

        let ticket = self.ticket(&kind, has_tty)?;

        // The record.
        let opened = self.open_record();
        let (session_dir, channel_no, file, own_session) = match opened {
            Ok(v) => v,
            Err(problem) => return self.record_unavailable(problem, &shell, &kind),
        };
        let file_name = format!("channel-{channel_no}.jsonl");
        let ctx = FileContext {
            host: sessrec_core::sys::hostname(),
            session: self.session,
            file: file_name.clone(),
            user: self.user.name.clone(),
            actor: self.identity.actor.clone(),
        };
        // A terminal's unsubmitted typing may wait longer than the flush interval; a pipe
        // carries no keystrokes to hold.
        let options = if has_tty {
            WriterOptions::for_terminal(&self.config.recorder)
        } else {
            WriterOptions::from_config(&self.config.recorder)
        };
        let writer = match RecordWriter::new(file, ctx, options) {
            Ok(w) => w,
            Err(source) => {
                return self.record_unavailable(
                    RecordUnavailable::ChannelWriter {
                        path: session_dir.join(&file_name),
                        source,
                    },
                    &shell,
                    &kind,
                )
            }
        };
        let channel_id = format!("{}/{}", self.session, channel_no);
        let mut recorder = ChannelRecorder::new(
            writer,
            format!("{}/{}", self.session, file_name),
            self.config.on_error,
            self.config.recorder.record_input,
            self.config.recorder.max_channel_bytes,
        );
        recorder.watch_admin_messages();

        // Refused before anything runs: a command the record cannot hold whole, or a user whose
        // daily budget is spent under `action = "refuse"`.
        let budget = self.open_budget();
        if let Some(message) = self.command_too_long().or_else(|| budget.refusal()) {
            return Err(self.refuse_channel(
                recorder,
                own_session,
                &file_name,
                &kind,
                has_tty,
                message,
            ));
        }
        let budget_spent = budget.spend_in(&mut recorder);
        if let ChannelKind::Forward(request) = &kind {
            let channel = ForwardChannel {
                request,
                file_name: &file_name,
                recorder_user: &recorder_user,
            };
            return self.run_forward(channel, recorder, own_session);
        }

        // What to exec.
        let (exec_path, exec_argv) = command_line(&kind, &self.invocation, &shell)?;
        let env = spawn::child_environment(
            std::env::vars_os(),
            &[
                ("SHELL", shell.as_os_str()),
                ("SESSREC_SESSION", OsStr::new(&self.session.to_string())),
                ("SESSREC_CHANNEL", OsStr::new(&channel_id)),
            ],
        );
        let env = match &kind {
            ChannelKind::Transfer(_) => crate::transfer_seam::environment(env),
            _ => env,
        };
        let exec = self.prepare_exec(&exec_path, &exec_argv, &env)?;

        let signal_fd = sys::signal_pipe(&[libc::SIGWINCH, libc::SIGHUP, libc::SIGTERM])
            .map_err(|e| err(format!("signal setup failed: {e}")))?;

        let mode = if has_tty { "pty" } else { "pipe" };
        let mut start = self.channel_start(&recorder, kind.as_str(), mode);
        // The command itself is added whole when the line is written (`write_start`).
        if let ChannelKind::Transfer(transfer) = &kind {
            start.protocol = Some(transfer.kind.protocol().as_str().into());
            start.argv = Some(transfer.argv.clone());
        }
        set_bounded_bytes(
            &mut start.shell,
            &mut start.extra,
            channel_start::shell,
            shell.as_os_str().as_bytes(),
            PATH_MAX,
        );
        if let Some(term) = env_var("TERM") {
            set_bounded_bytes(
                &mut start.term,
                &mut start.extra,
                channel_start::term,
                term.as_bytes(),
                TERM_MAX,
            );
        }
        // The user can set or clear SESSREC_CHANNEL: kept only when it disagrees with the facts.
        if let Some(hint) = env_var("SESSREC_CHANNEL") {
            let hint = hint.as_bytes();
            if self
                .enclosing
                .map(|e| e.to_string())
                .as_deref()
                .map(str::as_bytes)
                != Some(hint)
            {
                set_bounded_bytes(
                    &mut start.parent_channel_hint,
                    &mut start.extra,
                    channel_start::parent_channel_hint,
                    hint,
                    256,
                );
            }
        }
        if let Some(t) = &ticket {
            set_bounded(
                &mut start.ticket,
                &mut start.extra,
                channel_start::ticket,
                t,
                256,
            );
        }
        start.outer_tty = Some(takeover.as_str().into());
        if let Takeover::Taken { path } | Takeover::Nested { path } = &takeover {
            set_bounded_bytes(
                &mut start.outer_tty_path,
                &mut start.extra,
                channel_start::outer_tty_path,
                path.as_os_str().as_bytes(),
                PATH_MAX,
            );
        }
        if let Some((used, limit)) = budget_spent {
            // Output is sampled from the first byte, as past max_channel_bytes.
            start.output_sampled = Some("user_budget".into());
            start.user_bytes_today = Some(used);
            start.user_budget_bytes = Some(limit);
        }

        let launch = Launch {
            exec,
            recorder_user,
            signal_fd,
            recorder: &mut recorder,
            start,
            kind: &kind,
        };
        let started = if has_tty {
            self.run_pty(launch, typeahead)
        } else {
            self.run_pipe(launch)
        };
        let outcome = match started {
            Ok(outcome) => outcome,
            Err(e) => {
                // The record still says what was attempted and why it did not run.
                recorder.write(&schema::Error {
                    message: Some(e.to_string()),
                    ..Default::default()
                });
                let anchor = recorder.finish(ChannelEnd {
                    reason: Some("start_failed".into()),
                    exit_code: Some(None),
                    ..Default::default()
                });
                if let Some(own) = own_session {
                    finish_own_session(own, &file_name, anchor.as_ref());
                }
                return Err(e);
            }
        };

        let mut end = ChannelEnd {
            reason: Some(outcome.reason.as_str().into()),
            ..Default::default()
        };
        match outcome.status {
            Some(sys::ExitStatus::Code(code)) => end.exit_code = Some(Some(code)),
            Some(sys::ExitStatus::Signal {
                signal,
                core_dumped,
            }) => {
                end.signal = Some(signal);
                end.core_dumped = Some(core_dumped);
            }
            None => end.exit_code = Some(None),
        }
        let anchor = recorder.finish(end);
        if let Some(own) = own_session {
            finish_own_session(own, &file_name, anchor.as_ref());
        }
        Ok(match (outcome.reason, outcome.status) {
            (_, Some(status)) => status.shell_code(),
            (EndReason::RecordFailure, None) => 1,
            (_, None) => 128 + libc::SIGHUP,
        })
    }

    fn channel_kind(&self, has_tty: bool) -> ChannelKind {
        let Some(command) = &self.invocation.command else {
            return ChannelKind::Shell;
        };
        if !has_tty {
            if let Some(request) = ConnectRequest::parse(command) {
                return ChannelKind::Forward(request);
            }
        }
        match crate::transfer_seam::classify(command, has_tty, &self.config) {
            Some(transfer) if self.argv_fits_start_line(&transfer.argv) => {
                ChannelKind::Transfer(transfer)
            }
            _ => ChannelKind::Exec,
        }
    }

    /// A transfer's `argv` goes into `channel.start` as it is; one too long to sit there beside
    /// the other fields (only absurd paths make it so) would be cut, so such a command runs as
    /// an ordinary exec channel instead, recorded with all its I/O.
    fn argv_fits_start_line(&self, argv: &[String]) -> bool {
        let json_len: usize = argv
            .iter()
            .map(|a| serde_json::to_string(a).map_or(usize::MAX / 2, |j| j.len() + 1))
            .sum();
        json_len <= self.config.recorder.max_line_bytes / 4
    }

    /// Writes `channel.start` and the user notice (shown on the terminal), then lets the held
    /// command exec: a command whose record could not be begun never runs (unless
    /// `on_error = "allow"`), and none runs before its user was told it is recorded.
    fn start_recorded<T>(
        &self,
        recorder: &mut ChannelRecorder,
        start: ChannelStart,
        notice: UserNoticePlan,
        held: spawn::Held<T>,
        exec: &PreparedExec,
    ) -> Result<T, StartError> {
        self.write_start(recorder, start);
        notice.show_and_record(recorder);
        if recorder.must_stop() {
            held.abandon();
            let why = recorder.failure().unwrap_or("the record cannot be written");
            return Err(err(format!(
                "this session must be recorded, but the record cannot be written ({why}); access refused"
            )));
        }
        held.release().map_err(|e| {
            err(format!(
                "cannot start {}: {e}",
                exec.path().to_string_lossy()
            ))
        })
    }

    /// The facts every `channel.start` of this recorder holds: who runs it, how it was
    /// launched, its audit identity and when it started.
    fn channel_start(&self, recorder: &ChannelRecorder, kind: &str, mode: &str) -> ChannelStart {
        let (audit_session, loginuid) = sessrec_core::sys::audit_identity();
        ChannelStart {
            kind: Some(kind.into()),
            mode: Some(mode.into()),
            audit_session,
            loginuid,
            login: Some(self.invocation.login),
            force_command: Some(self.invocation.force_command),
            uid: Some(self.caller.uid.as_raw()),
            identity_verified: Some(self.identity.verified),
            grant: self.unclaimed.as_ref().map(|reason| reason.to_string()),
            parent_channel: self.enclosing.as_ref().map(|parent| parent.to_string()),
            recorder_version: Some(sessrec_core::VERSION.into()),
            recorder_pid: Some(sys::getpid().as_raw()),
            mono_us: Some(recorder.start_mono_us()),
            start_time: Some(Timestamp::now().to_string()),
            ..Default::default()
        }
    }

    /// Writes `channel.start` with the command whole (continuation lines when it is long).
    fn write_start(&self, recorder: &mut ChannelRecorder, start: ChannelStart) {
        match &self.invocation.command {
            Some(cmd) => {
                recorder.write_with_long_field(&start, channel_start::command, cmd.as_bytes())
            }
            None => recorder.write(&start),
        }
    }

    /// Why the command cannot run: longer than any record holds whole.
    fn command_too_long(&self) -> Option<String> {
        let len = self.invocation.command.as_ref()?.len();
        (len > COMMAND_RECORD_MAX).then(|| {
            format!(
                "the command is {len} bytes long; a recorded command may have at most {COMMAND_RECORD_MAX} bytes, so it was not run"
            )
        })
    }

    /// The caller's daily byte budget and how much of it is spent (root is never budgeted:
    /// its activity is what an audit most needs whole). A spent budget is alerted here.
    fn open_budget(&self) -> Budget {
        let Some(limit) = self.config.budget.bytes_per_day() else {
            return Budget::None;
        };
        if self.caller.is_root() {
            return Budget::None;
        }
        let mut ledger = match UsageLedger::open(&self.config.record_dir, self.caller.uid.as_raw())
        {
            Ok(ledger) => ledger,
            Err(e) => {
                syslog_authpriv(
                    Level::Error,
                    &format!(
                        "session {} user {}: cannot open the usage ledger in {}: {e}; no daily budget for this channel",
                        self.session,
                        self.user.name,
                        self.config.record_dir.display()
                    ),
                );
                return Budget::None;
            }
        };
        let used = ledger.total().unwrap_or(0);
        if used < limit {
            return Budget::Within { ledger, limit };
        }
        let action = self.config.budget.action;
        syslog_authpriv(
            Level::Alert,
            &format!(
                "session {} user {}: daily record budget spent ({used} of {limit} bytes on {}); new channel {}",
                self.session,
                self.user.name,
                ledger.day(),
                match action {
                    BudgetAction::Cap => "capped",
                    BudgetAction::Refuse => "refused",
                }
            ),
        );
        Budget::Spent {
            ledger,
            limit,
            used,
            refuse: action == BudgetAction::Refuse,
        }
    }

    /// Refuses the channel before anything runs: the record says what was refused and why, the
    /// user gets `message`.
    fn refuse_channel(
        &self,
        mut recorder: ChannelRecorder,
        own_session: Option<OwnSession>,
        file_name: &str,
        kind: &ChannelKind,
        has_tty: bool,
        message: String,
    ) -> StartError {
        let mut start = ChannelStart {
            kind: Some(kind.as_str().into()),
            mode: Some(if has_tty { "pty" } else { "pipe" }.into()),
            force_command: Some(self.invocation.force_command),
            uid: Some(self.caller.uid.as_raw()),
            identity_verified: Some(self.identity.verified),
            recorder_version: Some(sessrec_core::VERSION.into()),
            recorder_pid: Some(sys::getpid().as_raw()),
            mono_us: Some(recorder.start_mono_us()),
            start_time: Some(Timestamp::now().to_string()),
            ..Default::default()
        };
        if let Some(cmd) = &self.invocation.command {
            set_bounded_bytes(
                &mut start.command,
                &mut start.extra,
                channel_start::command,
                cmd.as_bytes(),
                1024,
            );
        }
        recorder.write(&start);
        recorder.write(&schema::Error {
            message: Some(message.clone()),
            ..Default::default()
        });
        let anchor = recorder.finish(ChannelEnd {
            reason: Some("refused".into()),
            exit_code: Some(None),
            ..Default::default()
        });
        if let Some(own) = own_session {
            finish_own_session(own, file_name, anchor.as_ref());
        }
        StartError::Refused(message)
    }

    /// Everything the child needs to drop to the caller and exec, prepared before fork.
    fn prepare_exec(
        &self,
        path: &Path,
        argv: &[OsString],
        env: &[(OsString, OsString)],
    ) -> Result<PreparedExec, StartError> {
        PreparedExec::new(
            path,
            argv,
            env,
            (self.caller.uid, self.caller.gid, &self.caller.groups),
            &self.inherited,
        )
        .map_err(|e| err(format!("cannot prepare {}: {e}", path.display())))
    }

    /// Opens the session directory and a new channel file; for an unclaimed session also
    /// starts `session.jsonl`.
    fn open_record(&self) -> Result<(PathBuf, u32, File, Option<OwnSession>), RecordUnavailable> {
        let cfg = &self.config;
        let read_gid = if cfg.read_group.is_empty() {
            None
        } else {
            Some(
                sys::group_gid(&cfg.read_group)
                    .ok()
                    .flatten()
                    .ok_or_else(|| RecordUnavailable::NoReadGroup(cfg.read_group.clone()))?,
            )
        };
        // For a claimed grant the module created the directory; opening it through `create`
        // keeps `read_group` access on the channel files.
        let dir = SessionDir::create(
            &cfg.record_dir,
            self.session,
            read_gid.map(sys::Gid::as_raw),
        )
        .map_err(|source| RecordUnavailable::SessionDir {
            root: cfg.record_dir.clone(),
            source,
        })?;
        let free = sessrec_core::tree::free_mb(dir.path()).map_err(|source| {
            RecordUnavailable::FreeSpaceUnknown {
                dir: dir.path().to_path_buf(),
                source,
            }
        })?;
        if free < cfg.min_free_mb {
            return Err(RecordUnavailable::LowSpace {
                dir: dir.path().to_path_buf(),
                free_mb: free,
                min_free_mb: cfg.min_free_mb,
            });
        }
        let own_file = |step| move |source| RecordUnavailable::OwnSessionFile { step, source };
        let own = match &self.unclaimed {
            // Joining the recorder's own session of the enclosing channel: its writer owns
            // session.jsonl.
            Some(_) if self.enclosing.is_some() => None,
            Some(reason) => {
                let file = dir
                    .create_file("session.jsonl")
                    .map_err(own_file(SessionFileStep::Create))?;
                let ctx = FileContext {
                    host: sessrec_core::sys::hostname(),
                    session: self.session,
                    file: "session.jsonl".into(),
                    user: self.user.name.clone(),
                    actor: self.identity.actor.clone(),
                };
                let mut writer =
                    RecordWriter::new(file, ctx, WriterOptions::from_config(&cfg.recorder))
                        .map_err(own_file(SessionFileStep::Start))?;
                let login =
                    session::own_login(&self.identity, reason, env_var("SSH_CONNECTION").as_ref());
                writer
                    .write(&login)
                    .map_err(own_file(SessionFileStep::Write))?;
                Some(OwnSession {
                    writer,
                    started: Instant::now(),
                })
            }
            None => None,
        };
        let (n, file) =
            dir.create_channel_file()
                .map_err(|source| RecordUnavailable::ChannelFile {
                    dir: dir.path().to_path_buf(),
                    source,
                })?;
        Ok((dir.path().to_path_buf(), n, file, own))
    }

    /// The record cannot be written before the channel starts: deny (default) or run unrecorded.
    fn record_unavailable(
        &self,
        problem: RecordUnavailable,
        shell: &Path,
        kind: &ChannelKind,
    ) -> Result<i32, StartError> {
        match self.config.on_error {
            OnError::Deny => {
                syslog_authpriv(
                    Level::Error,
                    &format!(
                        "session {} user {}: channel refused, record unavailable: {problem}",
                        self.session, self.user.name
                    ),
                );
                Err(StartError::RecordUnavailable(problem))
            }
            OnError::Allow => {
                syslog_authpriv(
                    Level::Alert,
                    &format!(
                        "session {} user {}: record unavailable ({problem}); on_error = allow: running UNRECORDED",
                        self.session, self.user.name
                    ),
                );
                let (path, argv) = command_line(kind, &self.invocation, shell)?;
                let env =
                    spawn::child_environment(std::env::vars_os(), &[("SHELL", shell.as_os_str())]);
                let exec = self.prepare_exec(&path, &argv, &env)?;
                let e = exec.exec_in_place();
                Err(err(format!("cannot run {}: {e}", path.display())))
            }
        }
    }

    /// The ticket for this channel, asked for on the terminal or taken from the environment.
    fn ticket(&self, kind: &ChannelKind, has_tty: bool) -> Result<Option<String>, StartError> {
        let cfg = &self.config.ticket;
        if cfg.mode == TicketMode::Off {
            return Ok(None);
        }
        let given = if let Some(t) = &self.grant_ticket {
            Some(t.clone())
        } else if let Some(t) = env_var("SESSREC_TICKET").and_then(|t| t.into_string().ok()) {
            Some(t)
        } else if has_tty && *kind == ChannelKind::Shell {
            ask_ticket(cfg.mode == TicketMode::Required)
        } else {
            None
        };
        let given = given
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        match (&given, cfg.mode) {
            (None, TicketMode::Required) => Err(StartError::Refused(
                "a change or incident ticket is required for this login (set SESSREC_TICKET, or type it when asked)".into(),
            )),
            (Some(t), _) if !cfg.pattern_regex().is_none_or(|re| re.is_match(t)) => Err(StartError::Refused(format!(
                "ticket '{}' does not match the required pattern {}",
                t.chars().take(64).collect::<String>(),
                cfg.pattern
            ))),
            _ => Ok(given),
        }
    }

    /// Runs the command on a new pty, relaying the outer terminal.
    fn run_pty(&self, launch: Launch<'_>, typeahead: Vec<u8>) -> Result<Outcome, StartError> {
        let Launch {
            exec,
            recorder_user,
            signal_fd,
            recorder,
            mut start,
            kind: _,
        } = launch;
        let pty = sys::open_pty().map_err(|e| err(format!("cannot allocate a pty: {e}")))?;
        let tty_gid = sys::group_gid("tty")
            .ok()
            .flatten()
            .unwrap_or(self.caller.gid);
        sys::fchown(&pty.slave, self.caller.uid, tty_gid)
            .and_then(|()| sys::fchmod(&pty.slave, 0o620))
            .map_err(|e| err(format!("cannot hand the pty to the user: {e}")))?;
        let guard = RawModeGuard::new(&[sys::StdFd::Input, sys::StdFd::Output])
            .map_err(|e| err(format!("terminal setup failed: {e}")))?;
        if let Some(saved) = guard.saved() {
            let _ = sys::tcsetattr(&pty.slave, saved);
        }
        if let Ok(ws) = sys::get_winsize(sys::StdFd::Input) {
            let _ = sys::set_winsize(&pty.master, &ws);
            start.cols = Some(ws.ws_col);
            start.rows = Some(ws.ws_row);
        }
        set_bounded_bytes(
            &mut start.pty,
            &mut start.extra,
            channel_start::pty,
            pty.path.as_os_str().as_bytes(),
            PATH_MAX,
        );
        let held = spawn::spawn_pty_child(&exec, &pty.slave).map_err(|e| {
            err(format!(
                "cannot start {}: {e}",
                exec.path().to_string_lossy()
            ))
        })?;
        drop(pty.slave);
        start.pid = Some(held.child().pid.as_raw());
        let notice = UserNoticePlan::for_terminal(&self.config.recorder.notice, self.session);
        let child = self.start_recorded(recorder, start, notice, held, &exec)?;
        self.drop_recorder_privileges(&recorder_user)?;
        let masker = self.config.recorder.record_input.then(|| {
            InputMasker::new(
                self.config.recorder.password_prompt().clone(),
                MaskPolicy::from_config(&self.config.recorder),
            )
        });
        let relay = PtyRelay {
            master: pty.master,
            terminal_in: sys::StdFd::Input.fd(),
            terminal_out: sys::StdFd::Output.fd(),
            signal_fd: signal_fd.as_fd(),
            child_pid: child.pid,
            child_pidfd: child.pidfd,
            recorder,
            masker,
            typeahead,
            idle: IdlePolicy::new(
                self.config.recorder.idle_timeout_s,
                self.config.recorder.idle_warning_s,
            ),
        };
        let outcome = run_guarded(|| relay.run(), recorder_panicked);
        drop(guard);
        Ok(outcome)
    }

    /// Runs the command on pipes through the monitor, relaying fds 0–2.
    fn run_pipe(&self, launch: Launch<'_>) -> Result<Outcome, StartError> {
        let Launch {
            exec,
            recorder_user,
            signal_fd,
            recorder,
            mut start,
            kind,
        } = launch;
        let guard = RawModeGuard::new(&sys::StdFd::ALL)
            .map_err(|e| err(format!("descriptor setup failed: {e}")))?;
        let monitor_user = spawn::MonitorUser {
            uid: recorder_user.uid,
            gid: recorder_user.gid,
        };
        let held = spawn::spawn_pipe_child(&exec, monitor_user).map_err(|e| {
            err(format!(
                "cannot start {}: {e}",
                exec.path().to_string_lossy()
            ))
        })?;
        start.pid = Some(held.child().monitor_pid.as_raw());
        let child =
            self.start_recorded(recorder, start, UserNoticePlan::NoTerminal, held, &exec)?;
        self.drop_recorder_privileges(&recorder_user)?;
        let observer = match kind {
            ChannelKind::Transfer(transfer) => Some(crate::transfer_seam::observer(transfer)),
            _ => None,
        };
        let relay = PipeRelay {
            child,
            client: Client::standard(),
            signal_fd: signal_fd.as_fd(),
            recorder,
            record_payload: self.config.transfer.record_payload,
            observer,
            idle: if matches!(kind, ChannelKind::Transfer(_)) {
                IdlePolicy::new(0, 0)
            } else {
                IdlePolicy::new(
                    self.config.recorder.idle_timeout_s,
                    self.config.recorder.idle_warning_s,
                )
            },
        };
        let outcome = run_guarded(|| relay.run(), recorder_panicked);
        drop(guard);
        Ok(outcome)
    }

    /// After the child runs: become the `sessrec` system user, with no capabilities, no new
    /// privileges and not dumpable, so the user can neither signal, trace nor read the recorder.
    fn drop_recorder_privileges(&self, recorder_user: &sys::Passwd) -> Result<(), StartError> {
        sys::drop_to(recorder_user.uid, recorder_user.gid, &[])
            .and_then(|()| sys::drop_capabilities_and_lock())
            .and_then(|()| match sys::effective_capabilities()? {
                0 => Ok(()),
                left => Err(io::Error::other(format!(
                    "capabilities {left:#x} remain after dropping them"
                ))),
            })
            .map_err(|e| {
                syslog_authpriv(
                    Level::Error,
                    &format!("cannot drop recorder privileges: {e}"),
                );
                err(format!("cannot drop recorder privileges: {e}"))
            })
    }
}

/// The path and argv of the child: the real shell (`-bash` for a login, `-c` with a command),
/// or a transfer program found on the allow-list's path.
fn command_line(
    kind: &ChannelKind,
    invocation: &Invocation,
    shell: &Path,
) -> Result<(PathBuf, Vec<OsString>), StartError> {
    let base = shell
        .file_name()
        .map(|b| b.to_os_string())
        .unwrap_or_else(|| OsString::from("sh"));
    let argv0 = if invocation.login {
        let mut a = OsString::from("-");
        a.push(&base);
        a
    } else {
        base
    };
    Ok(match (kind, &invocation.command) {
        (ChannelKind::Transfer(TransferCommand { argv, .. }), _) => {
            let program = crate::transfer_seam::resolve_program(&argv[0])
                .ok_or_else(|| err(format!("{} not found", argv[0])))?;
            (program, argv.iter().map(OsString::from).collect())
        }
        (_, Some(command)) => (
            shell.to_path_buf(),
            vec![argv0, OsString::from("-c"), command.clone()],
        ),
        (_, None) => (shell.to_path_buf(), vec![argv0]),
    })
}

/// Runs a relay; a panic (a bug) still ends the channel with a final record instead of leaving
/// the record open.
fn run_guarded(relay: impl FnOnce() -> Outcome, on_panic: fn()) -> Outcome {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(relay)).unwrap_or_else(|_| {
        on_panic();
        Outcome {
            reason: EndReason::InternalError,
            status: None,
        }
    })
}

fn recorder_panicked() {
    syslog_authpriv(
        Level::Error,
        "the relay failed internally; the channel was hung up and its record closed",
    );
}

/// Asks for a ticket on the outer terminal (before raw mode), bounded in time and length.
fn ask_ticket(required: bool) -> Option<String> {
    let prompt = if required {
        "Ticket (required): "
    } else {
        "Ticket (optional, Enter to skip): "
    };
    let _ = io::stderr().write_all(prompt.as_bytes());
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 256 {
        let mut fds = [sys::pollfd(sys::StdFd::Input.fd(), sys::Interest::Readable)];
        match sys::poll(&mut fds, 120_000) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        match sys::read(sys::StdFd::Input, &mut byte) {
            Ok(1) if byte[0] == b'\n' || byte[0] == b'\r' => break,
            Ok(1) => line.push(byte[0]),
            _ => return None,
        }
    }
    String::from_utf8(line).ok()
}

fn finish_own_session(
    mut own: OwnSession,
    file_name: &str,
    anchor: Option<&sessrec_core::writer::Anchor>,
) {
    let channel = LogoutChannel {
        file: Some(file_name.into()),
        last_seq: anchor.map(|a| a.seq),
        digest: anchor.map(|a| a.digest.clone()),
        open: Some(false),
        ..Default::default()
    };
    let _ = own.writer.write(&Logout {
        duration_us: Some(own.started.elapsed().as_micros() as u64),
        channels: Some(vec![channel]),
        ..Default::default()
    });
    if let Ok(anchor) = own.writer.close() {
        syslog_authpriv(Level::Info, &anchor.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(login: bool, command: Option<&str>) -> Invocation {
        Invocation {
            login,
            command: command.map(OsString::from),
            force_command: false,
        }
    }

    #[test]
    fn a_login_shell_gets_a_dash_and_a_command_gets_dash_c() {
        let bash = Path::new("/bin/bash");
        let (path, argv) =
            command_line(&ChannelKind::Shell, &invocation(true, None), bash).unwrap();
        assert_eq!(path, bash);
        assert_eq!(argv, [OsString::from("-bash")]);
        let (path, argv) =
            command_line(&ChannelKind::Exec, &invocation(false, Some("id -u")), bash).unwrap();
        assert_eq!(path, bash);
        assert_eq!(argv, ["bash", "-c", "id -u"].map(OsString::from));
        let (_, argv) =
            command_line(&ChannelKind::Exec, &invocation(true, Some("ls")), bash).unwrap();
        assert_eq!(argv, ["-bash", "-c", "ls"].map(OsString::from));
    }

    #[test]
    fn channel_kinds_are_named_as_the_record_names_them() {
        assert_eq!(ChannelKind::Shell.as_str(), "shell");
        assert_eq!(ChannelKind::Exec.as_str(), "exec");
    }

    #[test]
    fn same_file_follows_links_and_tells_files_apart() {
        let dir = sessrec_core::testing::TempDir::new("channel-same-file");
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, b"x").unwrap();
        std::fs::write(&b, b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        assert!(same_file(&a, &link));
        assert!(!same_file(&a, &b));
        assert!(!same_file(&a, &dir.path().join("missing")));
    }

    #[test]
    fn a_spent_budget_refuses_only_under_refuse() {
        let dir = sessrec_core::testing::TempDir::new("channel-budget");
        let ledger = || UsageLedger::open(dir.path(), 4242).unwrap();
        assert_eq!(Budget::None.refusal(), None);
        let within = Budget::Within {
            ledger: ledger(),
            limit: 10,
        };
        assert_eq!(within.refusal(), None);
        let capped = Budget::Spent {
            ledger: ledger(),
            limit: 10,
            used: 12,
            refuse: false,
        };
        assert_eq!(capped.refusal(), None);
        let refused = Budget::Spent {
            ledger: ledger(),
            limit: 10,
            used: 12,
            refuse: true,
        };
        let message = refused.refusal().unwrap();
        assert!(message.contains("12 of 10 bytes"), "{message}");
    }

    #[test]
    fn a_panicking_relay_still_gives_an_outcome() {
        use std::sync::atomic::{AtomicBool, Ordering};
        static CALLED: AtomicBool = AtomicBool::new(false);
        fn note() {
            CALLED.store(true, Ordering::SeqCst);
        }
        let ok = run_guarded(
            || Outcome {
                reason: EndReason::Exit,
                status: Some(sys::ExitStatus::Code(0)),
            },
            note,
        );
        assert_eq!(ok.reason, EndReason::Exit);
        assert!(!CALLED.load(Ordering::SeqCst));
        let failed = run_guarded(|| panic!("a bug in the relay"), note);
        assert_eq!(failed.reason, EndReason::InternalError);
        assert_eq!(failed.status, None);
        assert!(CALLED.load(Ordering::SeqCst));
    }
}
