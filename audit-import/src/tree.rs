//! The process tree of audited sessions, built from the exec records themselves (forks are not
//! audited: a process is known from its first exec, with its parent then), so that an exec can
//! be placed on the channel whose process is its ancestor.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Most processes remembered; the least recently seen go first.
pub const MAX_NODES: usize = 200_000;
/// Longest ancestry walked.
const MAX_DEPTH: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub ppid: u32,
    pub ses: u32,
    /// The channel file it was placed on, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub seen_us: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    nodes: BTreeMap<u32, Node>,
}

/// Where a process was placed: its channel file and the pid that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub channel: String,
    pub via: u32,
}

impl Tree {
    /// The channel of process `pid` (parent `ppid`) of audit session `ses`: `roots` names the
    /// session's channel processes (pid → channel file); `parent_of` looks up a parent the tree
    /// does not know (the live /proc, for a process that forked without exec).
    pub fn place(
        &self,
        pid: u32,
        ppid: u32,
        ses: u32,
        roots: &BTreeMap<u32, String>,
        parent_of: &dyn Fn(u32) -> Option<u32>,
    ) -> Option<Placement> {
        if let Some(c) = roots.get(&pid) {
            return Some(Placement {
                channel: c.clone(),
                via: pid,
            });
        }
        let mut current = ppid;
        for _ in 0..MAX_DEPTH {
            if current <= 1 {
                return None;
            }
            if let Some(c) = roots.get(&current) {
                return Some(Placement {
                    channel: c.clone(),
                    via: current,
                });
            }
            match self.nodes.get(&current) {
                Some(n) if n.ses == ses => {
                    if let Some(c) = &n.channel {
                        return Some(Placement {
                            channel: c.clone(),
                            via: current,
                        });
                    }
                    current = n.ppid;
                }
                _ => current = parent_of(current)?,
            }
        }
        None
    }

    /// Remembers process `pid` as seen now.
    pub fn record(&mut self, pid: u32, node: Node) {
        self.nodes.insert(pid, node);
        if self.nodes.len() > MAX_NODES {
            if let Some(oldest) = self
                .nodes
                .iter()
                .min_by_key(|(_, n)| n.seen_us)
                .map(|(p, _)| *p)
            {
                self.nodes.remove(&oldest);
            }
        }
    }

    /// Forgets the processes of audit sessions that are over.
    pub fn retain_sessions(&mut self, open: impl Fn(u32) -> bool) {
        self.nodes.retain(|_, n| open(n.ses));
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_through_exec_ancestry_and_live_parents() {
        let roots: BTreeMap<u32, String> = [(100, "channel-1.jsonl".to_string())].into();
        let mut t = Tree::default();
        let none = |_| None;
        // The channel's own process.
        assert_eq!(t.place(100, 99, 5, &roots, &none).unwrap().via, 100);
        // A child of the shell.
        let p = t.place(200, 100, 5, &roots, &none).unwrap();
        assert_eq!(p.channel, "channel-1.jsonl");
        t.record(
            200,
            Node {
                ppid: 100,
                ses: 5,
                channel: Some(p.channel),
                seen_us: 1,
            },
        );
        // A grandchild through an exec'd parent.
        assert_eq!(t.place(300, 200, 5, &roots, &none).unwrap().via, 200);
        // Through a parent that forked without exec, found live.
        let live = |pid| (pid == 250).then_some(200);
        assert_eq!(t.place(301, 250, 5, &roots, &live).unwrap().via, 200);
        // Another audit session's process of the same pid does not count.
        assert!(t.place(400, 200, 6, &roots, &none).is_none());
        assert!(t.place(401, 1, 5, &roots, &none).is_none());
    }
}
