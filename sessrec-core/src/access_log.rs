//! The access log: one chained line per read of record content, in
//! `<record tree>/access/access-YYYY-MM-DD.jsonl` (UTC day), written through the record writer
//! so that it is tamper-evident like every record file.
//!
//! Several operators may read at once: each line is appended under an exclusive `flock(2)` on
//! the file, the chain resumed from the file's last line.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::id::SessionId;
use crate::record::FileContext;
use crate::schema::{Access, EventBody};
use crate::sys;
use crate::time::Timestamp;
use crate::writer::{RecordWriter, WriterOptions};

/// The access log's directory under the record tree.
pub const ACCESS_DIR: &str = "access";
/// Longest access line.
pub const ACCESS_LINE_MAX: usize = 256 * 1024;

/// The file name of a day's access log.
pub fn file_name(day: (i64, u32, u32)) -> String {
    let (y, m, d) = day;
    format!("access-{y:04}-{m:02}-{d:02}.jsonl")
}

/// The id a day's access log carries as its `session`: derived from the date and host, so every
/// writer of that day's file uses the same one.
pub fn day_id(host: &str, day: (i64, u32, u32)) -> SessionId {
    let (y, m, d) = day;
    let millis = crate::time::days_from_civil(y, m, d).max(0) as u64 * 86_400_000;
    let mut seed = b"sessrec-access-log\0".to_vec();
    seed.extend_from_slice(host.as_bytes());
    SessionId::derived(millis, &seed)
}

/// Appends `access` to today's access log under `record_dir`; returns the file written.
///
/// The directory is created 0700 root, or 0770 with the tree's group when the tree root is
/// group-readable (a `read_group` member must be able to log its reads); files likewise 0600 or
/// 0660. Symlinks are refused at every step.
pub fn append(record_dir: &Path, host: &str, access: &Access) -> io::Result<PathBuf> {
    let today = Timestamp::now().date();
    // Room for the session list of a tree-wide read (thousands of ids); a longer one is cut
    // by the writer, which notes its length, and `session_count` still says how many.
    append_daily(
        record_dir,
        ACCESS_DIR,
        &file_name(today),
        day_id(host, today),
        host,
        access,
        ACCESS_LINE_MAX,
    )
}

/// Appends `event` to the chained file `<record_dir>/<dir_name>/<name>`, whose `session` is
/// `session`, under an exclusive lock, resuming the file's chain; returns the file written.
/// Directory and file modes as [`append`] describes.
pub fn append_daily<E: EventBody>(
    record_dir: &Path,
    dir_name: &str,
    name: &str,
    session: SessionId,
    host: &str,
    event: &E,
    max_line_bytes: usize,
) -> io::Result<PathBuf> {
    let root_meta = std::fs::metadata(record_dir)?;
    let group =
        (root_meta.mode() & 0o050 == 0o050 && root_meta.gid() != 0).then(|| root_meta.gid());
    let (dir_mode, file_mode) = if group.is_some() {
        (0o2770, 0o660)
    } else {
        (0o700, 0o600)
    };
    let root_fd = sys::open_dir_at(None, record_dir)?;
    sys::mkdir_at(root_fd.as_fd(), dir_name, dir_mode)?;
    let dir = sys::open_dir_at(Some(root_fd.as_fd()), Path::new(dir_name))?;
    if let Some(gid) = group {
        // Only the owner may change it; another reader finds it set already.
        if std::fs::File::from(dir.try_clone()?).metadata()?.uid()
            == nix::unistd::geteuid().as_raw()
        {
            let _ = std::os::unix::fs::fchown(&dir, None, Some(gid));
            let _ = nix::sys::stat::fchmod(
                std::os::fd::AsRawFd::as_raw_fd(&dir),
                nix::sys::stat::Mode::from_bits_truncate(dir_mode),
            );
        }
    }
    let file = match sys::create_append_at(dir.as_fd(), name, file_mode, true) {
        Ok(f) => {
            if let Some(gid) = group {
                std::os::unix::fs::fchown(&f, None, Some(gid))?;
            }
            f
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            sys::open_append_at(dir.as_fd(), name)?
        }
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(io::Error::other(format!("{name} is not a regular file")));
    }
    let locked: Flock<File> =
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| io::Error::from(errno))?;
    let ctx = FileContext {
        host: host.to_string(),
        session,
        file: name.to_string(),
        user: String::new(),
        actor: String::new(),
    };
    let handle = locked.try_clone()?;
    let opts = WriterOptions {
        max_line_bytes,
        ..WriterOptions::default()
    };
    let mut writer = RecordWriter::resume(handle, ctx, opts)?;
    writer.write(event)?;
    writer.close()?;
    drop(locked);
    Ok(record_dir.join(dir_name).join(name))
}

/// Checks the chain of every access log file under `record_dir` (each read under a shared lock,
/// so a line being appended is never seen half-written). No access directory: nothing to check.
pub fn verify_all(record_dir: &Path) -> io::Result<Vec<(PathBuf, crate::reader::VerifyReport)>> {
    let dir = record_dir.join(ACCESS_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("access-") && n.ends_with(".jsonl"))
        })
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let file = File::open(&path)?;
        let locked: Flock<File> =
            Flock::lock(file, FlockArg::LockShared).map_err(|(_, errno)| io::Error::from(errno))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let report =
            crate::reader::verify_lines(crate::reader::LineIter::new(locked.try_clone()?), &name)?;
        drop(locked);
        out.push((path, report));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_from_several_writers_form_one_chain() {
        let base = std::env::temp_dir().join(format!("sessrec-access-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let base = base.clone();
                std::thread::spawn(move || {
                    for j in 0..10 {
                        let access = Access {
                            command: Some(format!("show-{i}-{j}")),
                            ..Default::default()
                        };
                        append(&base, "h", &access).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let path = base
            .join(ACCESS_DIR)
            .join(file_name(Timestamp::now().date()));
        let report = crate::reader::verify_file(&path).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.lines, 40);
    }
}
