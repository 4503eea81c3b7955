//! What the integrity check of a session found, in the words every view prints: "verified",
//! "damaged at FILE line N", "incomplete" or "unverifiable". A leaf, so that [`crate::context`]
//! can carry verdicts to the views.
#![forbid(unsafe_code)]

use serde_json::{json, Value};

/// The outcome of checking a session's hash chains (and anchors, when given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Every chain intact, every file complete (a live session: complete so far).
    Verified { live: bool },
    /// Chains intact, but something is missing or cut short (a crash, a full disk).
    Incomplete { problem: String },
    /// A chain, a logout digest or an anchor does not match: lines were modified, removed or
    /// reordered. `line` is 0 when the problem concerns a file as a whole.
    Damaged {
        file: String,
        line: u64,
        problem: String,
    },
    /// The chains could not be checked at all.
    Unverifiable { reason: String },
}

/// One session's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub session: String,
    pub status: Status,
    /// Anchors from syslog checked against the session's files (`None`: none were given).
    pub anchors: Option<usize>,
    /// Every problem found, `file:line: text`.
    pub problems: Vec<String>,
}

impl Verdict {
    /// The status word: `verified`, `incomplete`, `damaged` or `unverifiable`.
    pub fn word(&self) -> &'static str {
        match self.status {
            Status::Verified { .. } => "verified",
            Status::Incomplete { .. } => "incomplete",
            Status::Damaged { .. } => "damaged",
            Status::Unverifiable { .. } => "unverifiable",
        }
    }

    pub fn is_damaged(&self) -> bool {
        matches!(self.status, Status::Damaged { .. })
    }

    pub fn is_verified(&self) -> bool {
        matches!(self.status, Status::Verified { .. })
    }

    /// One line: `verified against 3 syslog anchors`, `damaged at channel-1.jsonl line 7: ...`.
    pub fn summary(&self) -> String {
        let anchors = match self.anchors {
            Some(n) => format!(" against {n} syslog anchor(s)"),
            None => String::new(),
        };
        let more = match self.problems.len() {
            0 | 1 => String::new(),
            n => format!(" (and {} more problem(s))", n - 1),
        };
        match &self.status {
            Status::Verified { live: false } => {
                format!("verified{anchors}: hash chains intact and complete")
            }
            Status::Verified { live: true } => {
                format!("verified{anchors}: hash chains intact so far (session still recorded)")
            }
            Status::Incomplete { problem } => {
                format!("incomplete{anchors}: hash chains intact, but {problem}{more}")
            }
            Status::Damaged {
                file,
                line: 0,
                problem,
            } => format!("damaged{anchors}: {file}: {problem}{more}"),
            Status::Damaged {
                file,
                line,
                problem,
            } => format!("damaged at {file} line {line}{anchors}: {problem}{more}"),
            Status::Unverifiable { reason } => format!("unverifiable: {reason}"),
        }
    }

    /// The verdict as exports carry it in their metadata.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "status": self.word(),
            "summary": self.summary(),
            "problems": self.problems,
        });
        if let Status::Damaged { file, line, .. } = &self.status {
            v["damaged_file"] = file.as_str().into();
            v["damaged_line"] = (*line).into();
        }
        if let Some(n) = self.anchors {
            v["anchors_checked"] = n.into();
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_names_the_file_and_line() {
        let v = Verdict {
            session: "s".into(),
            status: Status::Damaged {
                file: "channel-1.jsonl".into(),
                line: 7,
                problem: "prev does not match".into(),
            },
            anchors: None,
            problems: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            v.summary(),
            "damaged at channel-1.jsonl line 7: prev does not match (and 1 more problem(s))"
        );
        assert_eq!(v.to_json()["damaged_line"], 7);
    }
}
