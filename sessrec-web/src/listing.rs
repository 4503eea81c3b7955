//! The session list's filters and paging: which sessions a `/sessions` request selects, newest
//! first, and the one page of them it shows. Sessions are found, summarised and verified by
//! the `sessrec` library's own listing (`Tree::sessions`, and `catalog::survey`, which answers
//! from the tree's per-directory catalog where it is current), so the console shows what
//! `sessrec list` shows and keeps no index of its own.
#![forbid(unsafe_code)]

use serde::Deserialize;
use sessrec::catalog::survey;
use sessrec::store::{SessionRef, Tree};
use sessrec::summary::{State, Summary};
use sessrec::verdict::Verdict;
use sessrec_core::config::glob_match;

use crate::pages::url_component;

/// Longest filter value accepted (longer ones are refused, not cut).
const MAX_VALUE: usize = 256;
/// A session's login may precede its id's date directory by a little: dates are pruned with
/// a day of slack, as `sessrec list` does.
const DAY_US: i64 = 86_400_000_000;

/// The list's query string as the filter form sends it (every field optional).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub since: String,
    #[serde(default)]
    pub until: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub sudo: String,
    #[serde(default)]
    pub transfer: String,
    #[serde(default)]
    pub exec: String,
    #[serde(default)]
    pub forward: String,
    pub page: Option<usize>,
}

/// The checkboxes of the form: (query name, label).
pub const HAS: [(&str, &str); 4] = [
    ("sudo", "sudo"),
    ("transfer", "transfer"),
    ("exec", "exec"),
    ("forward", "forward"),
];

/// The filters of a list request, parsed.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Shell globs, as `sessrec list --user/--actor/--from` take them.
    pub host: Option<String>,
    pub user: Option<String>,
    pub actor: Option<String>,
    pub source: Option<String>,
    /// Start time range `[since, until)`, µs.
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub state: Option<State>,
    pub sudo: bool,
    pub transfer: bool,
    pub exec: bool,
    pub forward: bool,
}

impl ListQuery {
    fn text(&self) -> [(&'static str, &str); 7] {
        [
            ("host", &self.host),
            ("user", &self.user),
            ("actor", &self.actor),
            ("source", &self.source),
            ("since", &self.since),
            ("until", &self.until),
            ("state", &self.state),
        ]
    }

    pub fn checked(&self, name: &str) -> bool {
        let v = match name {
            "sudo" => &self.sudo,
            "transfer" => &self.transfer,
            "exec" => &self.exec,
            "forward" => &self.forward,
            _ => return false,
        };
        !v.is_empty()
    }

    /// The form's value of a text field (for refilling the form).
    pub fn value(&self, name: &str) -> &str {
        self.text()
            .into_iter()
            .find(|(k, _)| *k == name)
            .map_or("", |(_, v)| v)
    }

    /// Parses the filters; the message names the field that is wrong.
    pub fn filter(&self, now_us: i64) -> Result<Filter, String> {
        for (name, value) in self.text() {
            if value.len() > MAX_VALUE {
                return Err(format!("{name}: longer than {MAX_VALUE} bytes"));
            }
        }
        let glob = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_string());
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
        if let (Some(s), Some(u)) = (since, until) {
            if s >= u {
                return Err("since is not before until: no session can match".into());
            }
        }
        let state = match self.state.as_str() {
            "" | "any" => None,
            "live" => Some(State::Live),
            "closed" => Some(State::Closed),
            "damaged" => Some(State::Damaged),
            _ => return Err("state: one of live, closed, damaged".into()),
        };
        Ok(Filter {
            host: glob(&self.host),
            user: glob(&self.user),
            actor: glob(&self.actor),
            source: glob(&self.source),
            since,
            until,
            state,
            sudo: self.checked("sudo"),
            transfer: self.checked("transfer"),
            exec: self.checked("exec"),
            forward: self.checked("forward"),
        })
    }

    /// The query string that selects the same sessions on another page.
    pub fn with_page(&self, page: usize) -> String {
        let mut q: Vec<String> = self
            .text()
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", url_component(v)))
            .collect();
        for (name, _) in HAS {
            if self.checked(name) {
                q.push(format!("{name}=1"));
            }
        }
        q.push(format!("page={page}"));
        q.join("&")
    }

    /// The request as the access log names it: every filter given, and the page.
    pub fn access_args(&self, page: usize) -> Vec<String> {
        let mut args: Vec<String> = self
            .text()
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        args.extend(
            HAS.iter()
                .filter(|(n, _)| self.checked(n))
                .map(|(n, _)| format!("{n}=1")),
        );
        args.push(format!("page={page}"));
        args
    }
}

impl Filter {
    /// Whether anything but the time range is asked for (then every session in the range is
    /// summarised; otherwise only the page shown).
    fn needs_summary(&self) -> bool {
        self.host.is_some()
            || self.user.is_some()
            || self.actor.is_some()
            || self.source.is_some()
            || self.state.is_some()
            || self.sudo
            || self.transfer
            || self.exec
            || self.forward
    }

    /// The time range, judged by the session's id (its login moment; midnight of the date
    /// directory for unattributed sudo sessions), so a page needs no summary to count.
    fn in_range(&self, s: &SessionRef) -> bool {
        self.since.is_none_or(|t| s.start_hint_us >= t)
            && self.until.is_none_or(|t| s.start_hint_us < t)
    }

    /// Whether a session's summary passes the filters other than time.
    pub fn accepts(&self, s: &Summary) -> bool {
        let glob = |g: &Option<String>, v: &str| g.as_deref().is_none_or(|g| glob_match(g, v));
        let host = s.session.host.as_deref().unwrap_or(&s.host);
        glob(&self.host, host)
            && glob(&self.user, &s.user)
            && glob(&self.actor, &s.actor)
            && glob(&self.source, &s.src_ip)
            && self.state.is_none_or(|st| s.state == st)
            && (!self.sudo || s.sudo > 0)
            && (!self.transfer || s.transfers > 0)
            && (!self.exec || has_exec(s))
            && (!self.forward || s.forwards > 0)
    }
}

/// A command the kernel saw executed, or an exec channel (`ssh host command`).
fn has_exec(s: &Summary) -> bool {
    s.execs.is_some_and(|n| n > 0) || s.kinds.iter().any(|k| k == "exec")
}

/// One page of the selected sessions.
pub struct Listing {
    /// Each session's summary and integrity verdict.
    pub rows: Vec<(Summary, Verdict)>,
    /// Sessions selected in all.
    pub total: usize,
    pub page: usize,
    pub pages: usize,
}

/// Selects the sessions of `tree` that pass `filter`, newest first, and gives page `page`
/// (`page_size` a page; a page past the end shows the last).
pub fn select(
    tree: &Tree,
    this_host: &str,
    filter: &Filter,
    page: usize,
    page_size: usize,
) -> std::io::Result<Listing> {
    // Central sessions come unclassified (no `stat` of each); the survey's entries carry the
    // page's sessions classified by their files.
    let mut refs = tree.sessions_unclassified(
        filter.since.map(|t| t - DAY_US),
        filter.until.map(|t| t + DAY_US),
    )?;
    refs.retain(|s| filter.in_range(s));
    refs.reverse();
    let (total, rows) = if filter.needs_summary() {
        let entries = survey(&tree.root, &refs, this_host);
        let selected: Vec<(&SessionRef, sessrec::catalog::Entry)> = refs
            .iter()
            .zip(entries)
            .filter(|(_, e)| filter.accepts(&e.summary))
            .collect();
        let total = selected.len();
        let page = clamp_page(page, total, page_size);
        let rows = selected
            .into_iter()
            .skip(page * page_size)
            .take(page_size)
            .map(|(_, e)| {
                let verdict = e.verdict(&e.summary.session, None);
                (e.summary, verdict)
            })
            .collect();
        (total, rows)
    } else {
        let total = refs.len();
        let page = clamp_page(page, total, page_size);
        let shown: Vec<SessionRef> = refs
            .into_iter()
            .skip(page * page_size)
            .take(page_size)
            .collect();
        let rows = survey(&tree.root, &shown, this_host)
            .into_iter()
            .map(|e| {
                let verdict = e.verdict(&e.summary.session, None);
                (e.summary, verdict)
            })
            .collect();
        (total, rows)
    };
    Ok(Listing {
        rows,
        total,
        page: clamp_page(page, total, page_size),
        pages: total.div_ceil(page_size),
    })
}

fn clamp_page(page: usize, total: usize, page_size: usize) -> usize {
    page.min(total.div_ceil(page_size).saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_keeps_its_filters_across_pages() {
        let q = ListQuery {
            user: "al ice&x".into(),
            sudo: "1".into(),
            page: Some(3),
            ..Default::default()
        };
        assert_eq!(q.with_page(4), "user=al%20ice%26x&sudo=1&page=4");
        assert_eq!(q.access_args(3), ["user=al ice&x", "sudo=1", "page=3"]);
    }

    #[test]
    fn bad_filters_are_named() {
        let q = ListQuery {
            since: "yesterday".into(),
            until: "2000-01-01".into(),
            ..Default::default()
        };
        assert!(q
            .filter(1_800_000_000_000_000)
            .unwrap_err()
            .contains("since"));
        let q = ListQuery {
            state: "gone".into(),
            ..Default::default()
        };
        assert!(q.filter(0).unwrap_err().starts_with("state"));
        let q = ListQuery {
            user: "x".repeat(300),
            ..Default::default()
        };
        assert!(q.filter(0).unwrap_err().starts_with("user"));
        assert_eq!(clamp_page(9, 120, 50), 2);
        assert_eq!(clamp_page(0, 0, 50), 0);
    }

    /// A closed session of `host` filed under `<root>/<host>/<id>/`; its shell channel's file.
    fn session_on(root: &std::path::Path, host: &str) -> std::path::PathBuf {
        use sessrec_core::testing::synth::SynthSession;
        let stage = root.with_extension("stage");
        let id = sessrec_core::id::SessionId::new().unwrap();
        let mut s = SynthSession::login_on(
            host,
            &stage,
            id,
            "srt-ops",
            "ops@example.com",
            "203.0.113.9",
        )
        .unwrap();
        let mut ch = s.channel("shell", "pty", None).unwrap();
        let mut t = 100_000;
        ch.typed(&mut t, "$ ", "echo needle", "needle\n").unwrap();
        s.finished(ch, 0).unwrap();
        let dir = s.logout().unwrap();
        let target = root.join(host).join(id.to_string());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::rename(&dir, &target).unwrap();
        target.join("channel-1.jsonl")
    }

    #[test]
    fn a_session_damaged_after_it_was_catalogued_shows_damaged_on_its_page() {
        let t = sessrec_core::testing::TempDir::new("web-list-damage");
        let root = t.join("central");
        let files: Vec<_> = ["b1.example.net", "b2.example.net", "b1.example.net"]
            .iter()
            .map(|h| session_on(&root, h))
            .collect();
        let tree = Tree::new(&root);
        let page = || select(&tree, "central.test", &Filter::default(), 0, 50).unwrap();
        let words = |l: &Listing| -> Vec<String> {
            l.rows
                .iter()
                .map(|(s, v)| format!("{} {}", s.session.id, v.word()))
                .collect()
        };
        // Verdicts, then catalog entries, are kept once the files' times have settled.
        let settle = || std::thread::sleep(std::time::Duration::from_millis(2_200));
        settle();
        page();
        settle();
        let before = page();
        assert_eq!(before.total, 3);
        assert!(before.rows.iter().all(|(_, v)| v.word() == "verified"));
        assert!(root.join(".sessrec-cache/b1.example.net.catalog").is_file());

        // One line edited in place, same size and mtime.
        let file = &files[2];
        let m = std::fs::metadata(file).unwrap();
        let body = std::fs::read_to_string(file).unwrap();
        std::fs::write(file, body.replacen("needle", "noodle", 1)).unwrap();
        std::fs::File::options()
            .write(true)
            .open(file)
            .unwrap()
            .set_modified(m.modified().unwrap())
            .unwrap();
        let id = file
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        let after = page();
        let shown = words(&after);
        assert!(shown.contains(&format!("{id} damaged")), "{shown:?}");
        assert_eq!(
            shown.iter().filter(|w| w.ends_with(" verified")).count(),
            2,
            "{shown:?}"
        );
    }
}
