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
    let files = session_record_files(&session).map_err(|e| Failure::error(e.to_string()))?;
    let mut targets = Vec::new();
    for f in files
        .iter()
        .filter(|f| matches!(f.kind, FileKind::Channel(_)))
    {
        if channel.as_ref().is_some_and(|c| *c != f.name) {
            continue;
        }
        let ended = crate::summary::last_line_of(&f.path)
            .ok()
            .and_then(|(l, _)| l?.ok())
            .is_some_and(is_channel_end);
        if ended {
            if channel.is_some() {
                return Err(Failure::error(format!("{} has already ended", f.name)));
            }
            continue;
        }
        let Some(start) = f.start.as_ref() else {
            continue;
        };
        let Some((pid, started)) = crate::live::recorder_identity(start) else {
            eprintln!(
                "sessrec kill: {}: channel.start records no recorder_pid; cannot signal it",
                f.name
            );
            continue;
        };
        if Line::from_map(start.clone()).header.host.as_deref() != Some(ctx.host.as_str()) {
            return Err(Failure::error(format!(
                "{} was recorded on another host",
                f.name
            )));
        }
        if !crate::live::is_recorder(pid, started) {
            eprintln!(
                "sessrec kill: {}: recorder {pid} is not running (the record is incomplete)",
                f.name
            );
            continue;
        }
        targets.push((f.name.clone(), pid, f.path.clone()));
    }
    if targets.is_empty() {
        return Err(Failure::error(format!(
            "no live channel in session {}",
            session.id
        )));
    }
    let request = KillRequest {
        message: message.map(str::to_string),
        operator: Some(crate::access::operator()),
        ..Default::default()
    };
    for (name, pid, path) in &targets {
        if let Err(e) = leave_message(*pid, &request) {
            eprintln!("sessrec kill: could not leave the message for {name}: {e}");
        }
        kill(Pid::from_raw(*pid as i32), Signal::SIGTERM)
            .map_err(|e| Failure::error(format!("signal {name} (pid {pid}): {e}")))?;
        let ended = wait_for_end(path, *pid, Duration::from_secs(5));
        let _ = std::fs::remove_file(Path::new(KILL_MESSAGE_DIR).join(pid.to_string()));
        if let Some(m) = message {
            if ended && !last_line_mentions(path, m) {
                eprintln!("sessrec kill: note: {name}'s recorder did not record the message");
            }
        }
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{}/{}: {}",
            session.id,
            name.trim_end_matches(".jsonl"),
            if ended {
                "ended"
            } else {
                "signalled (no channel.end yet)"
            }
        )?;
    }
    Ok(exit::OK)
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
