//! Record files as they are stored: plain (`<name>.jsonl`, as written and shipped) or, for
//! closed sessions, compressed in place (`<name>.jsonl.gz`, gzip). Every reader of record
//! content opens files through [`open`] and so reads both alike; the lines, their chain and
//! their anchors are the same bytes either way (compression is of the file, not of lines).
//!
//! [`compress_in_place`] replaces a plain file by its compressed copy so that a crash at any
//! moment leaves the plain file, or the compressed one, or both with the same content — never
//! neither: the copy is written under a temporary name, synced, read back and compared, renamed
//! into place, and only then is the plain file removed.
#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

/// The suffix a compressed record file adds to its name.
pub const COMPRESSED_SUFFIX: &str = ".gz";
/// The suffix of every record file's logical name.
pub const RECORD_SUFFIX: &str = ".jsonl";

/// The record file a directory entry holds, by its logical name (`channel-1.jsonl` for both
/// `channel-1.jsonl` and `channel-1.jsonl.gz`); `None` for anything else.
pub fn logical_name(file_name: &str) -> Option<&str> {
    let name = file_name
        .strip_suffix(COMPRESSED_SUFFIX)
        .unwrap_or(file_name);
    name.ends_with(RECORD_SUFFIX).then_some(name)
}

/// Whether a path names a compressed record file.
pub fn is_compressed(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
        n.strip_suffix(COMPRESSED_SUFFIX)
            .is_some_and(|r| r.ends_with(RECORD_SUFFIX))
    })
}

/// The compressed file's path for a plain one.
pub fn compressed_path(plain: &Path) -> PathBuf {
    let mut name = plain.file_name().unwrap_or_default().to_os_string();
    name.push(COMPRESSED_SUFFIX);
    plain.with_file_name(name)
}

/// Where the record file with the plain path `plain` is stored: `plain` itself, or its
/// compressed copy; `None` when neither is a regular file.
pub fn find(plain: &Path) -> Option<PathBuf> {
    [plain.to_path_buf(), compressed_path(plain)]
        .into_iter()
        .find(|p| p.is_file())
}

/// A record file opened for reading, whichever way it is stored.
pub enum Stored {
    Plain(File),
    Compressed(Box<MultiGzDecoder<BufReader<File>>>),
}

impl Stored {
    /// The file itself when it is plain (for positioned reads of its head and tail).
    pub fn plain(&self) -> Option<&File> {
        match self {
            Stored::Plain(f) => Some(f),
            Stored::Compressed(_) => None,
        }
    }
}

impl Read for Stored {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stored::Plain(f) => f.read(buf),
            Stored::Compressed(d) => d.read(buf).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("damaged compressed record file: {e}"),
                )
            }),
        }
    }
}

/// Opens a record file for reading: the one way record content is read. `path` may name the
/// stored file (`x.jsonl` or `x.jsonl.gz`) or, for a file that was compressed since it was
/// named, the plain name, which then finds `x.jsonl.gz`.
pub fn open(path: &Path) -> io::Result<Stored> {
    if is_compressed(path) {
        return open_compressed(path);
    }
    match File::open(path) {
        Ok(f) => Ok(Stored::Plain(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let gz = compressed_path(path);
            match open_compressed(&gz) {
                Err(e2) if e2.kind() == io::ErrorKind::NotFound => Err(e),
                other => other,
            }
        }
        Err(e) => Err(e),
    }
}

fn open_compressed(path: &Path) -> io::Result<Stored> {
    let f = File::open(path)?;
    Ok(Stored::Compressed(Box::new(MultiGzDecoder::new(
        BufReader::with_capacity(1 << 16, f),
    ))))
}

/// The whole content of a record file.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    open(path)?.read_to_end(&mut out)?;
    Ok(out)
}

/// Reads a record file's whole content into `buf` (cleared first) when it holds at most
/// `limit` bytes: `Ok(true)`. `Ok(false)` when it holds more (then `buf` holds its first
/// `limit + 1` bytes, or nothing when a plain file's size told so before reading). One buffer
/// serves file after file: views that read many small files avoid an allocation per file.
pub fn read_bounded(path: &Path, limit: usize, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    let mut stored = open(path)?;
    let cap = limit as u64 + 1;
    if let Some(f) = stored.plain() {
        let len = f.metadata()?.len();
        if len > limit as u64 {
            return Ok(false);
        }
        // The size it has now (one read, no second one to find the end; a writer's later
        // lines are not part of this reading), through the file itself, not `Stored`: its
        // reads fill the buffer without zeroing it first.
        buf.reserve(len as usize);
        f.take(len).read_to_end(buf)?;
    } else {
        (&mut stored).take(cap).read_to_end(buf)?;
    }
    Ok(buf.len() <= limit)
}

/// The first `n` bytes, the last `n` bytes and the length of a record file's content (plain
/// files by positioned reads; compressed ones by one pass).
pub fn head_and_tail(path: &Path, n: usize) -> io::Result<(Vec<u8>, Vec<u8>, u64)> {
    let mut stored = open(path)?;
    if let Some(f) = stored.plain() {
        use std::os::unix::fs::FileExt;
        let len = f.metadata()?.len();
        let h = (n as u64).min(len) as usize;
        let mut head = vec![0u8; h];
        f.read_exact_at(&mut head, 0)?;
        let mut tail = vec![0u8; h];
        f.read_exact_at(&mut tail, len - h as u64)?;
        return Ok((head, tail, len));
    }
    let mut head = Vec::with_capacity(n);
    (&mut stored).take(n as u64).read_to_end(&mut head)?;
    let mut len = head.len() as u64;
    let mut tail = head.clone();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let got = stored.read(&mut buf)?;
        if got == 0 {
            break;
        }
        len += got as u64;
        tail.extend_from_slice(&buf[..got]);
        if tail.len() > 2 * n.max(1 << 16) {
            tail.drain(..tail.len() - n);
        }
    }
    if tail.len() > n {
        tail.drain(..tail.len() - n);
    }
    Ok((head, tail, len))
}

/// What [`compress_in_place`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compressed {
    pub plain_bytes: u64,
    pub compressed_bytes: u64,
}

/// Replaces the plain record file `plain` by `<plain>.gz` with the same content, owner, mode
/// and modification time. A crash leaves the plain file, the compressed one, or both (with
/// equal content; run again to finish). Fails, leaving the plain file, if the file changes
/// while it is compressed or a compressed copy that differs is already there.
pub fn compress_in_place(plain: &Path) -> io::Result<Compressed> {
    let before = fs::symlink_metadata(plain)?;
    if !before.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", plain.display()),
        ));
    }
    let content = fs::read(plain)?;
    let target = compressed_path(plain);
    let dir = plain.parent().unwrap_or(Path::new("."));
    if target.exists() {
        // An earlier run stopped between the rename and the removal.
        if read(&target)? != content {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and differs from {}: left both",
                    target.display(),
                    plain.display()
                ),
            ));
        }
    } else {
        let tmp = dir.join(format!(
            ".{}.tmp",
            target.file_name().unwrap_or_default().to_string_lossy()
        ));
        let _ = fs::remove_file(&tmp);
        let result = write_compressed(&tmp, &content, &before);
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let now = fs::symlink_metadata(plain)?;
        if now.len() != before.len() || now.mtime() != before.mtime() || now.ino() != before.ino() {
            let _ = fs::remove_file(&tmp);
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} changed while it was compressed", plain.display()),
            ));
        }
        fs::rename(&tmp, &target)?;
        File::open(dir)?.sync_all()?;
    }
    fs::remove_file(plain)?;
    File::open(dir)?.sync_all()?;
    Ok(Compressed {
        plain_bytes: content.len() as u64,
        compressed_bytes: fs::metadata(&target)?.len(),
    })
}

/// Writes `content` gzip-compressed to `tmp` (new file, owner, mode and times of `like`),
/// synced, and checks that it reads back as `content`.
fn write_compressed(tmp: &Path, content: &[u8], like: &fs::Metadata) -> io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(like.mode() & 0o7777)
        .open(tmp)?;
    std::os::unix::fs::fchown(&file, Some(like.uid()), Some(like.gid()))?;
    let mut enc = GzEncoder::new(file, Compression::best());
    enc.write_all(content)?;
    let file = enc.finish()?;
    file.set_times(
        fs::FileTimes::new()
            .set_accessed(like.accessed()?)
            .set_modified(like.modified()?),
    )?;
    file.sync_all()?;
    drop(file);
    let mut back = Vec::with_capacity(content.len());
    open_compressed(tmp)?.read_to_end(&mut back)?;
    if back != content {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} does not read back as written", tmp.display()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sessrec-stored-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_compressed_file_reads_like_the_plain_one_by_either_name() {
        let d = scratch("read");
        let plain = d.join("channel-1.jsonl");
        let content: Vec<u8> = (0..5000)
            .flat_map(|i| format!("{{\"seq\":{i}}}\n").into_bytes())
            .collect();
        fs::write(&plain, &content).unwrap();
        let c = compress_in_place(&plain).unwrap();
        assert_eq!(c.plain_bytes, content.len() as u64);
        assert!(c.compressed_bytes < c.plain_bytes / 4, "{c:?}");
        assert!(!plain.exists());
        let gz = compressed_path(&plain);
        assert_eq!(read(&gz).unwrap(), content);
        assert_eq!(read(&plain).unwrap(), content);
        let (head, tail, len) = head_and_tail(&gz, 100).unwrap();
        assert_eq!(len, content.len() as u64);
        assert_eq!(head, content[..100]);
        assert_eq!(tail, content[content.len() - 100..]);
        assert_eq!(logical_name("channel-1.jsonl.gz"), Some("channel-1.jsonl"));
        assert_eq!(logical_name("channel-1.jsonl"), Some("channel-1.jsonl"));
        assert_eq!(logical_name("x.gz"), None);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bounded_reads_take_whole_files_up_to_the_limit_plain_or_compressed() {
        let d = scratch("bounded");
        let plain = d.join("channel-1.jsonl");
        fs::write(&plain, b"0123456789").unwrap();
        let mut buf = b"left over".to_vec();
        assert!(read_bounded(&plain, 10, &mut buf).unwrap());
        assert_eq!(buf, b"0123456789");
        assert!(!read_bounded(&plain, 9, &mut buf).unwrap());
        compress_in_place(&plain).unwrap();
        assert!(read_bounded(&plain, 10, &mut buf).unwrap());
        assert_eq!(buf, b"0123456789");
        assert!(!read_bounded(&plain, 9, &mut buf).unwrap());
        assert_eq!(buf, b"0123456789", "the first limit + 1 bytes");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_interrupted_compression_is_finished_and_a_differing_copy_left_alone() {
        let d = scratch("crash");
        let plain = d.join("session.jsonl");
        fs::write(&plain, b"{\"seq\":1}\n").unwrap();
        // As if a crash came after the rename: both, same content.
        let gz = compressed_path(&plain);
        let mut e = GzEncoder::new(File::create(&gz).unwrap(), Compression::fast());
        e.write_all(b"{\"seq\":1}\n").unwrap();
        e.finish().unwrap();
        compress_in_place(&plain).unwrap();
        assert!(!plain.exists() && gz.exists());
        // A plain file that differs from the compressed one is never removed.
        fs::write(&plain, b"{\"seq\":1}\n{\"seq\":2}\n").unwrap();
        let err = compress_in_place(&plain).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        assert!(plain.exists());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn damage_in_a_compressed_file_is_an_error_not_silence() {
        let d = scratch("damage");
        let plain = d.join("channel-2.jsonl");
        let content: Vec<u8> = (0..2000)
            .flat_map(|i| format!("{{\"seq\":{i}}}\n").into_bytes())
            .collect();
        fs::write(&plain, &content).unwrap();
        compress_in_place(&plain).unwrap();
        let gz = compressed_path(&plain);
        let mut bytes = fs::read(&gz).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        fs::write(&gz, &bytes).unwrap();
        assert!(read(&gz).is_err() || read(&gz).unwrap() != content);
        fs::remove_dir_all(&d).unwrap();
    }
}
