//! The session list refreshes itself: an open list page asks for itself again every
//! [`INTERVAL_SECONDS`] (`console.js`, with the `x-sessrec-refresh` header) and puts the new
//! rows, count and page links in place, so new live sessions and state changes show without a
//! reload, filters and page kept.
//!
//! The access log records what an auditor was shown, not how often: a refresh writes a line
//! (`web-list` with the argument `refresh`) only when its page shows a session that no line
//! for the same login and list (same filters and page) has named yet, and that line names
//! the page's sessions. A refresh that shows the same sessions (durations grown, a state
//! changed) writes nothing. Refreshes of one login faster than [`MIN_GAP`] are turned away.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often an open list page refreshes itself.
pub const INTERVAL_SECONDS: u64 = 5;
/// The shortest time between two refreshes of one login.
pub const MIN_GAP: Duration = Duration::from_secs(2);
/// Lists remembered at most (login and list); the least recently used go first.
const MAX_LISTS: usize = 2_000;
/// Sessions remembered per list at most; beyond it the list starts afresh.
const MAX_NAMED: usize = 10_000;

#[derive(Default)]
struct Named {
    sessions: HashSet<String>,
    used: Option<Instant>,
}

/// Which sessions the access lines of each login's lists have named.
#[derive(Default)]
pub struct ListViews {
    lists: Mutex<HashMap<(String, Vec<String>), Named>>,
    last_refresh: Mutex<HashMap<String, Instant>>,
}

impl ListViews {
    /// Whether a refresh of `login` may go ahead now (not sooner than [`MIN_GAP`] after its
    /// last one).
    pub fn may_refresh(&self, login: &str) -> bool {
        let mut last = self.last_refresh.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last
            .get(login)
            .is_some_and(|t| now.duration_since(*t) < MIN_GAP)
        {
            return false;
        }
        if last.len() >= MAX_LISTS {
            last.retain(|_, t| now.duration_since(*t) < MIN_GAP);
        }
        last.insert(login.to_string(), now);
        true
    }

    /// Notes that `sessions` were shown on `list` to `login`; whether that needs an access
    /// line: always for a page view, for a refresh only when a session is new to that list.
    pub fn shown(&self, login: &str, list: &[String], sessions: &[String], refresh: bool) -> bool {
        let mut lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        let key = (login.to_string(), list.to_vec());
        if !lists.contains_key(&key) && lists.len() >= MAX_LISTS {
            let oldest = lists
                .iter()
                .min_by_key(|(_, n)| n.used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                lists.remove(&k);
            }
        }
        let named = lists.entry(key).or_default();
        named.used = Some(Instant::now());
        let new = sessions.iter().any(|s| !named.sessions.contains(s));
        if named.sessions.len() + sessions.len() > MAX_NAMED {
            named.sessions.clear();
        }
        named.sessions.extend(sessions.iter().cloned());
        !refresh || new
    }

    /// Forgets the rest of `login` once the access line it was told to write could not be
    /// written (the next refresh tries again).
    pub fn forget(&self, login: &str, list: &[String]) {
        let mut lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        lists.remove(&(login.to_string(), list.to_vec()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_refresh_is_logged_only_when_it_shows_a_new_session() {
        let views = ListViews::default();
        let list = ids(&["state=live", "page=0"]);
        assert!(views.shown("c1", &list, &ids(&["a", "b"]), false));
        assert!(!views.shown("c1", &list, &ids(&["a", "b"]), true));
        assert!(!views.shown("c1", &list, &ids(&["b"]), true));
        assert!(views.shown("c1", &list, &ids(&["c", "a"]), true));
        assert!(!views.shown("c1", &list, &ids(&["c", "a"]), true));
        // Another login or another list is its own.
        assert!(views.shown("c2", &list, &ids(&["a"]), true));
        assert!(views.shown("c1", &ids(&["page=1"]), &ids(&["a"]), true));
        // A page view is always logged.
        assert!(views.shown("c1", &list, &ids(&["a"]), false));
    }

    #[test]
    fn refreshes_of_one_login_are_spaced() {
        let views = ListViews::default();
        assert!(views.may_refresh("c1"));
        assert!(!views.may_refresh("c1"));
        assert!(views.may_refresh("c2"));
    }
}
