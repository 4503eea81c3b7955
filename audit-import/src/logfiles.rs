//! auditd's log files: `log_file` and its rotated predecessors `log_file.1`, `.2`, ... (the
//! highest number is the oldest), found again after a rotation by inode.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sessrec_core::import::trusted::open_regular;

/// Most rotated files looked at (auditd's `num_logs` is at most 999).
const MAX_ROTATED: u32 = 999;

/// A log file: its path now and its identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    pub len: u64,
}

/// The log files from oldest to newest (the live file last). Missing numbers end the list.
pub fn list(log_file: &Path) -> io::Result<Vec<LogFile>> {
    let mut files = Vec::new();
    let stat = |p: &Path| -> io::Result<Option<LogFile>> {
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.file_type().is_file() => Ok(Some(LogFile {
                path: p.to_path_buf(),
                dev: m.dev(),
                ino: m.ino(),
                len: m.len(),
            })),
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", p.display()),
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    };
    if let Some(f) = stat(log_file)? {
        files.push(f);
    }
    for n in 1..=MAX_ROTATED {
        let mut name = log_file.as_os_str().to_owned();
        name.push(format!(".{n}"));
        match stat(Path::new(&name))? {
            Some(f) => files.push(f),
            None => break,
        }
    }
    files.reverse();
    Ok(files)
}

/// Reads the complete lines of `file` from `offset`, at most `max` bytes; returns them (with
/// their newlines) and leaves a trailing partial line for the next pass.
pub fn read_lines(file: &LogFile, offset: u64, max: usize) -> io::Result<Vec<u8>> {
    let mut f: File = open_regular(&file.path)?;
    let meta = f.metadata()?;
    if (meta.dev(), meta.ino()) != (file.dev, file.ino) {
        return Ok(Vec::new());
    }
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    f.take(max as u64).read_to_end(&mut buf)?;
    match buf.iter().rposition(|b| *b == b'\n') {
        Some(end) => buf.truncate(end + 1),
        None => buf.clear(),
    }
    Ok(buf)
}

/// The first line of a file (bounded), to tell a file from a later one that reused its inode.
pub fn head(file: &LogFile) -> io::Result<String> {
    let mut f = open_regular(&file.path)?;
    let mut buf = vec![0u8; 160];
    let n = f.read(&mut buf)?;
    buf.truncate(n);
    let end = buf.iter().position(|b| *b == b'\n').unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}
