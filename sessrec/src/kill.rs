//! `sessrec kill`: root ends a live channel. The recorder runs as the `sessrec` user, so root
//! can signal it: SIGTERM to the recorder pid from `channel.start` (checked against its
//! recorded start time, so a reused pid is never hit). The recorder writes its final lines
//! and hangs up the channel.
//!
//! Before the signal, a [`KillRequest`] is left for the recorder in
//! `/run/sessrec/kill/<recorder pid>` (owned by the `sessrec` user, 0600): who ends the channel,
//! and `--message TEXT` (at most 1 KiB of UTF-8); the recorder shows the message to the user and
//! records both in `channel.end`.
#![forbid(unsafe_code)]

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{Pid, Uid};
use serde_json::{Map, Value};
use sessrec_core::schema::{ChannelEnd, EventBody, Line};

use sessrec_core::schema::KillRequest;

use crate::context::{exit, CmdResult, Context, Failure};
use crate::records::session_record_files;
use crate::store::FileKind;

pub const KILL_MESSAGE_DIR: &str = "/run/sessrec/kill";
pub const MAX_MESSAGE: usize = 1024;

pub fn run(ctx: &Context) -> CmdResult {
    if !Uid::effective().is_root() {
        return Err(Failure::error("only root can end a session"));
    }
    let message = ctx.args.value("--message");
    if let Some(m) = message {
        if m.len() > MAX_MESSAGE {
            return Err(Failure::usage(format!(
                "--message is {} bytes; at most {MAX_MESSAGE}",
                m.len()
            )));
        }
    }
    let (session_arg, channel) = crate::store::split_target(&ctx.args.positional[0]);
    let session = ctx.tree.resolve(&session_arg).map_err(Failure::error)?;
    let request = KillRequest {
        message: message.map(str::to_string),
        operator: Some(crate::access::operator()),
        ..Default::default()
    };
    let outcome = end_live_channels(&session, channel.as_deref(), &ctx.host, &request);
    for note in &outcome.notes {
        eprintln!("sessrec kill: {note}");
    }
    let mut out = std::io::stdout().lock();
    for c in &outcome.channels {
        writeln!(
            out,
            "{}/{}: {}",
            session.id,
            c.name.trim_end_matches(".jsonl"),
            if c.ended {
                "ended"
            } else {
                "signalled (no channel.end yet)"
            }
        )?;
    }
    match outcome.error {
        Some(e) => Err(Failure::error(e)),
        None => Ok(exit::OK),
    }
}

/// One channel that was signalled.
#[derive(Debug, Clone)]
pub struct EndedChannel {
    pub name: String,
    /// Whether its `channel.end` was written within the wait.
    pub ended: bool,
}

/// What [`end_live_channels`] did.
#[derive(Debug, Default)]
pub struct KillOutcome {
    pub channels: Vec<EndedChannel>,
    /// Channels passed over, and messages not delivered.
    pub notes: Vec<String>,
    /// Why nothing (or not everything) was ended.
    pub error: Option<String>,
}

/// Ends the live channels of `session` (only `channel`, a file name, when given): leaves
/// `request` (who ends it, the message) for each recorder, signals it, and waits up to five
/// seconds for its `channel.end`. Used by `sessrec kill` and the web console; the caller must
/// be root and must have checked `request.message` against [`MAX_MESSAGE`].
pub fn end_live_channels(
    session: &crate::store::SessionRef,
    channel: Option<&str>,
    host: &str,
    request: &KillRequest,
) -> KillOutcome {
    let mut outcome = KillOutcome::default();
    let files = match session_record_files(session) {
        Ok(f) => f,
        Err(e) => {
            outcome.error = Some(e.to_string());
            return outcome;
        }
    };
    let mut targets = Vec::new();
    for f in files
        .iter()
        .filter(|f| matches!(f.kind, FileKind::Channel(_)))
    {
        if channel.is_some_and(|c| c != f.name) {
            continue;
        }
        let ended = crate::summary::last_line_of(&f.path)
            .ok()
            .and_then(|(l, _)| l?.ok())
            .is_some_and(is_channel_end);
        if ended {
            if channel.is_some() {
                outcome.error = Some(format!("{} has already ended", f.name));
                return outcome;
            }
            continue;
        }
        let Some(start) = f.start.as_ref() else {
            continue;
        };
        let Some((pid, started)) = crate::live::recorder_identity(start) else {
            outcome.notes.push(format!(
                "{}: channel.start records no recorder_pid; cannot signal it",
                f.name
            ));
            continue;
        };
        if Line::from_map(start.clone()).header.host.as_deref() != Some(host) {
            outcome.error = Some(format!("{} was recorded on another host", f.name));
            return outcome;
        }
        if !crate::live::is_recorder(pid, started) {
            outcome.notes.push(format!(
                "{}: recorder {pid} is not running (the record is incomplete)",
                f.name
            ));
            continue;
        }
        targets.push((f.name.clone(), pid, f.path.clone()));
    }
    if targets.is_empty() {
        outcome.error = Some(format!("no live channel in session {}", session.id));
        return outcome;
    }
    let message = request.message.as_deref();
    for (name, pid, path) in &targets {
        if let Err(e) = leave_message(*pid, request) {
            outcome
                .notes
                .push(format!("could not leave the message for {name}: {e}"));
        }
        if let Err(e) = kill(Pid::from_raw(*pid as i32), Signal::SIGTERM) {
            outcome.error = Some(format!("signal {name} (pid {pid}): {e}"));
            return outcome;
        }
        let ended = wait_for_end(path, *pid, Duration::from_secs(5));
        let _ = std::fs::remove_file(Path::new(KILL_MESSAGE_DIR).join(pid.to_string()));
        if let Some(m) = message {
            if ended && !last_line_mentions(path, m) {
                outcome.notes.push(format!(
                    "note: {name}'s recorder did not record the message"
                ));
            }
        }
        outcome.channels.push(EndedChannel {
            name: name.clone(),
            ended,
        });
    }
    outcome
}

fn leave_message(pid: u32, request: &KillRequest) -> std::io::Result<()> {
    let dir = Path::new(KILL_MESSAGE_DIR);
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    let path = dir.join(pid.to_string());
    let _ = std::fs::remove_file(&path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    f.write_all(&serde_json::to_vec(request).map_err(std::io::Error::other)?)?;
    if let Ok(Some(user)) = nix::unistd::User::from_name("sessrec") {
        nix::unistd::fchown(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            Some(user.uid),
            Some(user.gid),
        )?;
    }
    Ok(())
}

/// Whether the channel's last line is a `channel.end` holding exactly this message.
fn last_line_mentions(path: &Path, text: &str) -> bool {
    use sessrec_core::schema::{ChannelEnd, EventBody};
    crate::summary::last_line_of(path)
        .ok()
        .and_then(|(l, _)| l?.ok())
        .and_then(|l| ChannelEnd::from_fields(l).ok())
        .is_some_and(|end| end.admin_message.as_deref() == Some(text))
}

fn ended(path: &Path) -> bool {
    crate::summary::last_line_of(path)
        .ok()
        .and_then(|(l, _)| l?.ok())
        .is_some_and(is_channel_end)
}

/// Whether a line is a `channel.end`.
fn is_channel_end(line: Map<String, Value>) -> bool {
    Line::from_map(line).header.kind.as_deref() == Some(ChannelEnd::TYPE)
}

fn wait_for_end(path: &Path, pid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        // Checked before the file, so a recorder that wrote its last line and exited in
        // between is seen as ended.
        let gone = !Path::new(&format!("/proc/{pid}")).exists();
        if ended(path) {
            return true;
        }
        if gone {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
