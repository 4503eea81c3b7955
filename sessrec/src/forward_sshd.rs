//! `sessrec forward-sshd`: the sshd drop-in that lets the `[forward]` rules' users use sshd's own
//! local forwarding (`ssh -J`, `-W`, `-L`) to their destinations and nothing else.
#![forbid(unsafe_code)]

use std::io::Write;

use sessrec_core::config::DEFAULT_CONFIG_PATH;
use sessrec_core::forward::sshd_drop_in;

use crate::context::{exit, CmdResult, Context, Failure};

pub fn run(ctx: &Context) -> CmdResult {
    let config = ctx.config.clone().unwrap_or_default();
    let origin = ctx
        .args
        .value("--config")
        .map(str::to_string)
        .or_else(|| std::env::var("SESSREC_CONFIG").ok())
        .unwrap_or_else(|| DEFAULT_CONFIG_PATH.into());
    let (text, warnings) = sshd_drop_in(&config.forward, &origin);
    for w in &warnings {
        eprintln!("sessrec forward-sshd: warning: {w}");
    }
    let mut out = crate::output::output(ctx.args.value("--output"))?;
    out.write_all(text.as_bytes())
        .and_then(|()| out.finish())
        .map_err(|e| Failure::error(format!("cannot write: {e}")))?;
    Ok(exit::OK)
}
