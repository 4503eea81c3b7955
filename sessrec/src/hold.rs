//! Legal holds: sessions that `prune` must keep whatever their age, named by session id, actor
//! or host (a shell glob), each with a reason. Kept in `<tree>/holds.jsonl`, one JSON object a
//! line, appended only; `sessrec hold` adds one (the global `--host` names the host) or lists
//! them.
#![forbid(unsafe_code)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde_json::{json, Value};
use sessrec_core::config::glob_match;

use crate::context::{exit, CmdResult, Context, Failure};
use crate::escape::escape_control;

/// The holds file's name under the tree root.
pub const HOLDS_FILE: &str = "holds.jsonl";

/// What a hold covers.
#[derive(Debug, Clone)]
pub struct Hold {
    pub session: Option<String>,
    pub actor: Option<String>,
    pub host: Option<String>,
    pub reason: String,
}

impl Hold {
    /// Whether this hold covers a session with this id, actor and host.
    pub fn covers(&self, id: &str, actor: &str, host: &str) -> bool {
        self.session.as_deref().is_none_or(|s| s == id)
            && self.actor.as_deref().is_none_or(|a| glob_match(a, actor))
            && self.host.as_deref().is_none_or(|h| glob_match(h, host))
    }
}

/// Every hold of the tree. A line that cannot be read as a hold is an error: a hold that is
/// silently skipped would let prune delete what must be kept.
pub fn load(root: &Path) -> Result<Vec<Hold>, Failure> {
    let path = root.join(HOLDS_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Failure::error(format!("{}: {e}", path.display()))),
    };
    let mut holds = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line).map_err(|e| {
            Failure::error(format!("{}:{}: not a hold: {e}", path.display(), n + 1))
        })?;
        let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let hold = Hold {
            session: field("session"),
            actor: field("actor"),
            host: field("host"),
            reason: field("reason").unwrap_or_default(),
        };
        if hold.session.is_none() && hold.actor.is_none() && hold.host.is_none() {
            return Err(Failure::error(format!(
                "{}:{}: a hold names no session, actor or host",
                path.display(),
                n + 1
            )));
        }
        holds.push(hold);
    }
    Ok(holds)
}

/// `sessrec hold [--session ID] [--actor GLOB] [--host GLOB] --reason TEXT`, or the list.
pub fn run(ctx: &Context) -> CmdResult {
    let session = ctx.args.value("--session");
    let actor = ctx.args.value("--actor");
    let host = ctx.args.value("--host");
    let mut out = crate::output::stdout();
    if session.is_none() && actor.is_none() && host.is_none() {
        for h in load(&ctx.tree.root)? {
            let mut what = Vec::new();
            if let Some(s) = &h.session {
                what.push(format!("session {}", escape_control(s)));
            }
            if let Some(a) = &h.actor {
                what.push(format!("actor {}", escape_control(a)));
            }
            if let Some(x) = &h.host {
                what.push(format!("host {}", escape_control(x)));
            }
            writeln!(out, "{}: {}", what.join(", "), escape_control(&h.reason))?;
        }
        out.flush()?;
        return Ok(exit::OK);
    }
    let reason = ctx
        .args
        .value("--reason")
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| Failure::usage("a hold needs --reason"))?;
    let line = json!({
        "session": session, "actor": actor, "host": host, "reason": reason,
        "time": sessrec_core::time::Timestamp::from_micros(ctx.now_us).to_string(),
        "uid": nix::unistd::getuid().as_raw(),
    });
    let path = ctx.tree.root.join(HOLDS_FILE);
    let mut f = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Failure::error(format!("{}: {e}", path.display())))?;
    f.write_all(format!("{line}\n").as_bytes())
        .map_err(|e| Failure::error(format!("{}: {e}", path.display())))?;
    writeln!(out, "hold added: {}", escape_control(reason))?;
    out.flush()?;
    Ok(exit::OK)
}
