//! Search across sessions with the CLI's own search (`sessrec::search::search_records`): the
//! same streams, the same handling of escape sequences and frame boundaries. Each hit names
//! its channel file and its offset there, so the page links it into the player at that moment.
//! A search stops at [`MAX_HITS`] hits; sessions are searched newest first.
#![forbid(unsafe_code)]

use regex::bytes::RegexBuilder;
use serde::Deserialize;
use sessrec::search::{search_records, Hit, Scope};
use sessrec::store::{session_files, SessionRef, Tree};
use sessrec_core::config::glob_match;

use crate::pages::url_component;

/// Hits shown for one search; the page says when there were more.
pub const MAX_HITS: usize = 200;
/// How long one search may read records; the page says where it stopped.
pub const TIME_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);
/// Longest pattern or filter value accepted.
const MAX_VALUE: usize = 1024;
const DAY_US: i64 = 86_400_000_000;

#[derive(Debug, Default, Clone, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    pub q: String,
    /// `both` (input and output, the default), `input`, `output` or `commands`.
    #[serde(default)]
    pub scope: String,
    /// Non-empty: `q` is a regular expression; else a fixed string.
    #[serde(default)]
    pub regex: String,
    /// Non-empty: letters match either case.
    #[serde(default)]
    pub icase: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub since: String,
    #[serde(default)]
    pub until: String,
}

/// One hit, ready for the page.
pub struct Found {
    /// The session as pages name it (`shown_id`).
    pub session: String,
    pub host: String,
    pub user: String,
    /// The record file (`channel-1.jsonl`, `sudo-….jsonl`).
    pub file: String,
    pub stream: &'static str,
    /// UTC µs of the hit.
    pub at_us: i64,
    /// Seconds from the file's start: where the player opens.
    pub offset_s: f64,
    /// The text around the match (bytes as recorded, not yet escaped).
    pub context: Vec<u8>,
}

impl Found {
    /// The player at the hit's moment.
    pub fn play_href(&self) -> String {
        format!(
            "/play?id={}&file={}&t={:.3}",
            url_component(&self.session),
            url_component(&self.file),
            self.offset_s
        )
    }
}

pub struct Outcome {
    pub hits: Vec<Found>,
    /// The search stopped at [`MAX_HITS`].
    pub more: bool,
    /// The search stopped at [`TIME_BUDGET`] with sessions left unread.
    pub out_of_time: bool,
    pub sessions_searched: usize,
}

impl SearchQuery {
    pub fn scope(&self) -> Result<Scope, String> {
        Ok(match self.scope.as_str() {
            "" | "both" => Scope::Both,
            "input" => Scope::Input,
            "output" => Scope::Output,
            "commands" => Scope::Commands,
            _ => return Err("scope: one of both, input, output, commands".into()),
        })
    }

    /// The request as the access log names it.
    pub fn access_args(&self) -> Vec<String> {
        let mut args = vec![self.q.clone()];
        for (k, v) in [
            ("scope", &self.scope),
            ("regex", &self.regex),
            ("icase", &self.icase),
            ("host", &self.host),
            ("user", &self.user),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !v.is_empty() {
                args.push(format!("{k}={v}"));
            }
        }
        args
    }

    /// Runs the search; `shown_id` names a session as the pages do.
    pub fn run(
        &self,
        tree: &Tree,
        this_host: &str,
        now_us: i64,
        shown_id: &dyn Fn(&SessionRef) -> String,
    ) -> Result<Outcome, String> {
        for (name, v) in [
            ("pattern", &self.q),
            ("host", &self.host),
            ("user", &self.user),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if v.len() > MAX_VALUE {
                return Err(format!("{name}: longer than {MAX_VALUE} bytes"));
            }
        }
        if self.q.is_empty() {
            return Err("nothing to search for".into());
        }
        let scope = self.scope()?;
        let source = if self.regex.is_empty() {
            regex::escape(&self.q)
        } else {
            self.q.clone()
        };
        let regex = RegexBuilder::new(&source)
            .case_insensitive(!self.icase.is_empty())
            .size_limit(16 << 20)
            .build()
            .map_err(|e| format!("bad regular expression: {e}"))?;
        let time = |name: &str, v: &str| -> Result<Option<i64>, String> {
            if v.trim().is_empty() {
                return Ok(None);
            }
            sessrec::timespec::parse_time(v, now_us)
                .map(Some)
                .map_err(|e| format!("{name}: {e}"))
        };
        let since = time("since", &self.since)?;
        let until = time("until", &self.until)?;
        let mut refs = tree
            .sessions(since.map(|t| t - DAY_US), until.map(|t| t + DAY_US))
            .map_err(|e| e.to_string())?;
        refs.retain(|s| {
            since.is_none_or(|t| s.start_hint_us >= t) && until.is_none_or(|t| s.start_hint_us < t)
        });
        refs.reverse();
        let glob = |g: &str, v: &str| g.trim().is_empty() || glob_match(g.trim(), v);
        let mut out = Outcome {
            hits: Vec::new(),
            more: false,
            out_of_time: false,
            sessions_searched: 0,
        };
        let began = std::time::Instant::now();
        for s in &refs {
            if began.elapsed() > TIME_BUDGET {
                out.out_of_time = true;
                break;
            }
            let (host, user) = if self.host.is_empty() && self.user.is_empty() {
                (s.host.clone().unwrap_or_default(), String::new())
            } else {
                let summary = sessrec::summary::summarize(s, this_host);
                let host = s.host.clone().unwrap_or(summary.host);
                if !glob(&self.host, &host) || !glob(&self.user, &summary.user) {
                    continue;
                }
                (host, summary.user)
            };
            let Ok(files) = session_files(&s.dir) else {
                continue;
            };
            out.sessions_searched += 1;
            let id = shown_id(s);
            let mut report = |rf: &sessrec::records::RecordFile, h: Hit| -> std::io::Result<()> {
                if out.hits.len() >= MAX_HITS {
                    out.more = true;
                    return Err(std::io::Error::other("enough hits"));
                }
                out.hits.push(Found {
                    session: id.clone(),
                    host: if host.is_empty() {
                        rf.field(sessrec_core::schema::header_key::HOST).to_string()
                    } else {
                        host.clone()
                    },
                    user: if user.is_empty() {
                        rf.field(sessrec_core::schema::header_key::USER).to_string()
                    } else {
                        user.clone()
                    },
                    file: rf.name.clone(),
                    stream: h.stream,
                    at_us: rf.start_us.unwrap_or(0) + h.off_us as i64,
                    offset_s: h.off_us as f64 / 1e6,
                    context: h.context,
                });
                Ok(())
            };
            let mut unreadable = |path: &std::path::Path, e: std::io::Error| {
                eprintln!("sessrec-web: search: {}: {e}", path.display());
            };
            if search_records(files, &regex, scope, false, &mut report, &mut unreadable).is_err() {
                break;
            }
        }
        Ok(out)
    }
}
