//! The session filters `list` and `search` share: time range, user, actor, source address, live.
#![forbid(unsafe_code)]

use sessrec_core::config::glob_match;

use crate::context::{Context, Failure};
use crate::summary::{State, Summary};

/// Which sessions a listing or search looks at.
pub struct Filters {
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub user: Option<String>,
    pub actor: Option<String>,
    pub from: Option<String>,
    pub live: bool,
}

impl Filters {
    pub fn from_args(ctx: &Context) -> Result<Self, Failure> {
        let (since, until) = ctx.time_range()?;
        Ok(Filters {
            since,
            until,
            user: ctx.args.value("--user").map(str::to_string),
            actor: ctx.args.value("--actor").map(str::to_string),
            from: ctx.args.value("--from").map(str::to_string),
            live: ctx.args.flag("--live"),
        })
    }

    /// Whether a summary passes (user, actor and address take shell globs).
    pub fn accepts(&self, s: &Summary) -> bool {
        self.since.is_none_or(|t| s.start_us >= t)
            && self.until.is_none_or(|t| s.start_us < t)
            && self.user.as_deref().is_none_or(|u| glob_match(u, &s.user))
            && self
                .actor
                .as_deref()
                .is_none_or(|a| glob_match(a, &s.actor))
            && self
                .from
                .as_deref()
                .is_none_or(|f| glob_match(f, &s.src_ip))
            && (!self.live || s.state == State::Live)
    }
}
