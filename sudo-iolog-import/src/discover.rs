//! Finds I/O log sessions under an `iolog_dir`, whatever its `iolog_file` layout: a session is
//! a directory that holds `timing` and `log` or `log.json`. Symlinks below the root are never
//! followed, so nothing outside the tree is read. Only directories as sudo makes them are
//! entered: the root, every directory above it and every one below must be owned by root and
//! writable by no group or other, else a user could have planted or swapped a session there.
#![forbid(unsafe_code)]

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::iolog::stream::check_trusted;

/// Deepest directory level searched below the root (sudo's deepest default layout is 3).
pub const MAX_DEPTH: usize = 12;

#[derive(Debug, Default)]
pub struct Discovery {
    /// Session directories, sorted.
    pub sessions: Vec<PathBuf>,
    /// Directories that could not be read, with why.
    pub problems: Vec<(PathBuf, io::Error)>,
    /// Symlinks met and not followed.
    pub skipped_symlinks: Vec<PathBuf>,
    /// Directories not entered because a user could have written them, with why.
    pub refused: Vec<(PathBuf, io::Error)>,
}

/// Whether `dir` holds the files of one I/O log session.
pub fn is_session_dir(names: &[std::ffi::OsString]) -> bool {
    let has = |n: &str| names.iter().any(|x| x == n);
    has("timing") && (has("log") || has("log.json"))
}

/// Walks `root` (which may itself be a symlink the operator configured).
pub fn discover(root: &Path) -> io::Result<Discovery> {
    let root = fs::canonicalize(root)?;
    if !fs::metadata(&root)?.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", root.display()),
        ));
    }
    let mut found = Discovery::default();
    // The root and everything above it: whoever can write one of them can replace the tree.
    // A root-owned sticky directory above the root (`/tmp`) is safe: users can add entries
    // there but cannot rename or remove ours.
    for (n, dir) in root.ancestors().enumerate() {
        let meta = fs::metadata(dir)?;
        let sticky_above = n > 0 && meta.uid() == 0 && meta.mode() & libc::S_ISVTX != 0;
        if let (false, Err(e)) = (sticky_above, check_trusted(dir, &meta)) {
            found.refused.push((root, e));
            return Ok(found);
        }
    }
    let mut stack = vec![(root, 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                found.problems.push((dir, e));
                continue;
            }
        };
        let mut names = Vec::new();
        let mut subdirs = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    found.problems.push((dir.clone(), e));
                    continue;
                }
            };
            // DirEntry::file_type does not follow symlinks.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_symlink() {
                found.skipped_symlinks.push(entry.path());
            } else if kind.is_dir() {
                let path = entry.path();
                match entry.metadata().and_then(|m| check_trusted(&path, &m)) {
                    Ok(()) => subdirs.push(path),
                    Err(e) => {
                        found.refused.push((path, e));
                        continue;
                    }
                }
            }
            names.push(entry.file_name());
        }
        if is_session_dir(&names) {
            found.sessions.push(dir);
        } else if depth < MAX_DEPTH {
            stack.extend(subdirs.into_iter().map(|d| (d, depth + 1)));
        }
    }
    found.sessions.sort();
    found.skipped_symlinks.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sessions_in_any_layout_and_skips_symlinks() {
        let root = std::env::temp_dir().join(format!("srt-discover-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let outside = root.with_extension("outside");
        let _ = fs::remove_dir_all(&outside);
        let mk = |rel: &str, files: &[&str]| {
            let d = root.join(rel);
            fs::create_dir_all(&d).unwrap();
            for f in files {
                fs::write(d.join(f), b"").unwrap();
            }
        };
        mk("00/00/01", &["timing", "log", "log.json", "ttyout"]);
        mk("00/00/02", &["timing", "log"]);
        // sudo's %{seq} counts in base 36, two digits per level.
        mk("00/0A/ZZ", &["timing", "log", "log.json"]);
        mk("alice/20261124-0001", &["timing", "log.json"]);
        mk("00/00/03", &["timing"]); // no log: not a session
        mk("seqdir", &["seq"]);
        fs::create_dir_all(outside.join("evil")).unwrap();
        fs::write(outside.join("evil/timing"), b"").unwrap();
        fs::write(outside.join("evil/log"), b"").unwrap();
        std::os::unix::fs::symlink(outside.join("evil"), root.join("00/link")).unwrap();

        let found = discover(&root).unwrap();
        let rel: Vec<_> = found
            .sessions
            .iter()
            .map(|p| p.strip_prefix(&root).unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            rel,
            ["00/00/01", "00/00/02", "00/0A/ZZ", "alice/20261124-0001"]
        );
        assert_eq!(found.skipped_symlinks, [root.join("00/link")]);
        fs::remove_dir_all(&root).unwrap();
        fs::remove_dir_all(&outside).unwrap();
    }
}
