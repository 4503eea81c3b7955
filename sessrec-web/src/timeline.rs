//! A session's timeline for its page, in parts: the page comes at once and fetches the timeline
//! from `/timeline` a part at a time, so a long recording (whose timeline takes tens of seconds
//! to build from a 1 GB channel) never holds the page or its player back.
//!
//! A built timeline is kept (a few, bounded by size) and reused only while the session's
//! directory and every record file are the same objects with the same sizes and times as when
//! it was built ([`sessrec::catalog::Identity`], the check the catalog makes); anything else
//! builds it again from the files. The parts of one view come from one build, named by its
//! `version`: a view of a session still being recorded is a snapshot of its files when part 0
//! was asked for, and a part of a build no longer kept is refused (the page starts again).
//!
//! Entries go out as JSON and the page puts them in with `textContent`: recorded text is never
//! markup. Every entry whose channel has I/O carries its jump mark, a `/play` link at its moment.
#![forbid(unsafe_code)]

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use serde::Serialize;
use sessrec::catalog::Identity;
use sessrec::records::{session_record_files, RecordFile};
use sessrec::show::Entry;
use sessrec::store::SessionRef;

use crate::pages::url_component;

/// Entries in one part: a few hundred KB of JSON.
pub const PART_ENTRIES: usize = 1000;
/// Built timelines kept at most, and their size at most (their text, roughly).
const KEPT: usize = 16;
const KEPT_BYTES: usize = 32 << 20;

/// One entry as the page shows it; every string is text, control characters made visible.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub when: String,
    /// The jump mark: the player at this moment (a same-origin path), when the entry's channel
    /// has I/O.
    pub href: Option<String>,
    pub file: String,
    pub kind: String,
    pub text: String,
}

impl Line {
    fn size(&self) -> usize {
        std::mem::size_of::<Line>()
            + self.when.len()
            + self.href.as_ref().map_or(0, String::len)
            + self.file.len()
            + self.kind.len()
            + self.text.len()
    }
}

/// One build of a session's timeline.
pub struct Built {
    pub version: u64,
    pub lines: Vec<Line>,
    session: String,
    /// The files it was read from; `None` when they changed while being read (then the build
    /// serves the later parts of its own view only).
    identity: Option<Identity>,
    bytes: usize,
}

/// The kept builds, newest use last.
#[derive(Default)]
pub struct Kept {
    builds: Mutex<VecDeque<Arc<Built>>>,
    next_version: AtomicU64,
    /// Sessions whose timeline is being built: a second view waits for that build instead of
    /// reading the same gigabyte again.
    building: Mutex<HashSet<String>>,
    built: Condvar,
}

/// Marks a session's build as under way; done (and waiters woken) when dropped.
struct Building<'a> {
    kept: &'a Kept,
    session: String,
}

impl Drop for Building<'_> {
    fn drop(&mut self) {
        let mut building = self.kept.building.lock().unwrap_or_else(|e| e.into_inner());
        building.remove(&self.session);
        self.kept.built.notify_all();
    }
}

/// What `/timeline` answers.
#[derive(Serialize)]
pub struct Part<'a> {
    pub version: u64,
    pub part: usize,
    pub parts: usize,
    pub total: usize,
    pub entries: &'a [Line],
}

pub enum Wanted {
    /// Part 0: the current timeline, from a kept build if the files are unchanged.
    Current,
    /// A later part of the build `version`.
    Of(u64),
}

impl Kept {
    fn find(&self, session: &str, pick: impl Fn(&Built) -> bool) -> Option<Arc<Built>> {
        let mut builds = self.builds.lock().unwrap_or_else(|e| e.into_inner());
        let at = builds
            .iter()
            .position(|b| b.session == session && pick(b))?;
        let b = builds.remove(at)?;
        builds.push_back(b.clone());
        Some(b)
    }

    fn keep(&self, built: Arc<Built>) {
        let mut builds = self.builds.lock().unwrap_or_else(|e| e.into_inner());
        // One build per session: the newer replaces the older. The newest is kept even when it
        // alone is over the size (its view's later parts are read from it), the others go.
        builds.retain(|b| b.session != built.session);
        builds.push_back(built);
        while builds.len() > 1
            && (builds.len() > KEPT || builds.iter().map(|b| b.bytes).sum::<usize>() > KEPT_BYTES)
        {
            builds.pop_front();
        }
    }

    /// The build a request reads: `None` for a later part of a build no longer kept.
    pub fn get(
        &self,
        s: &SessionRef,
        id: &str,
        wanted: Wanted,
    ) -> Option<std::io::Result<Arc<Built>>> {
        match wanted {
            Wanted::Of(version) => self.find(id, |b| b.version == version).map(Ok),
            Wanted::Current => {
                let Some(identity) = Identity::of(&s.dir) else {
                    // Not there as plain files: read afresh, keep nothing.
                    return Some(self.build(s, id, None));
                };
                let _building = loop {
                    if let Some(b) = self.find(id, |b| b.identity.as_ref() == Some(&identity)) {
                        return Some(Ok(b));
                    }
                    if let Some(mine) = self.start_building(id) {
                        break mine;
                    }
                };
                Some(self.build(s, id, Some(identity)))
            }
        }
    }

    /// Marks `session` as being built, or waits until the build under way has ended (then
    /// `None`: look for it among the kept builds again).
    fn start_building(&self, session: &str) -> Option<Building<'_>> {
        let mut building = self.building.lock().unwrap_or_else(|e| e.into_inner());
        if building.insert(session.to_string()) {
            return Some(Building {
                kept: self,
                session: session.to_string(),
            });
        }
        while building.contains(session) {
            building = self.built.wait(building).unwrap_or_else(|e| e.into_inner());
        }
        None
    }

    fn build(
        &self,
        s: &SessionRef,
        id: &str,
        identity: Option<Identity>,
    ) -> std::io::Result<Arc<Built>> {
        let files = session_record_files(s)?;
        let entries = sessrec::show::timeline(&files);
        let channels: Vec<RecordFile> = files.into_iter().filter(RecordFile::has_io).collect();
        let lines: Vec<Line> = entries.iter().map(|e| line(id, &channels, e)).collect();
        drop(entries);
        let bytes = lines.iter().map(Line::size).sum();
        let version = self.next_version.fetch_add(1, Ordering::Relaxed) + 1;
        // Files that changed while they were read are read again by the next view, and so are
        // files changed so lately that a further change could leave their times as they are.
        let identity = identity
            .filter(|before| Identity::of(&s.dir).as_ref() == Some(before))
            .filter(Identity::settled);
        let built = Arc::new(Built {
            version,
            lines,
            session: id.to_string(),
            identity,
            bytes,
        });
        self.keep(built.clone());
        Ok(built)
    }
}

impl Built {
    pub fn part(&self, n: usize) -> Option<Part<'_>> {
        let parts = self.lines.len().div_ceil(PART_ENTRIES).max(1);
        if n >= parts {
            return None;
        }
        let from = n * PART_ENTRIES;
        let to = (from + PART_ENTRIES).min(self.lines.len());
        Some(Part {
            version: self.version,
            part: n,
            parts,
            total: self.lines.len(),
            entries: &self.lines[from..to],
        })
    }
}

/// Control characters made visible (entry text already has most of them escaped).
fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn line(id: &str, channels: &[RecordFile], e: &Entry) -> Line {
    let when = if e.time_us == i64::MIN || e.time_us == i64::MAX {
        "?".to_string()
    } else {
        sessrec::eventtext::timeline_time(e.time_us)
    };
    // An entry of a channel with I/O is a jump mark: its player, at its moment.
    let href = channels.iter().find_map(|f| {
        if f.name.trim_end_matches(".jsonl") != e.file || e.time_us == i64::MAX {
            return None;
        }
        let t = (e.time_us - f.start_us?).max(0) as f64 / 1e6;
        Some(format!(
            "/play?id={}&file={}&t={t:.3}",
            url_component(id),
            url_component(&f.name)
        ))
    });
    Line {
        when: visible(&when),
        href,
        file: visible(&e.file),
        kind: visible(&e.kind),
        text: visible(&e.text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_made_visible() {
        assert_eq!(visible("a\u{1b}[31mb\u{7}"), "a\\u{1b}[31mb\\u{7}");
    }
}
