//! Stream files (`stdin`, `stdout`, `stderr`, `ttyin`, `ttyout`, and `timing` itself): plain or
//! gzip, complete or cut short.
//!
//! A gzip stream that ends early — sudo still running with `iolog_flush`, sudo killed, a disk
//! that filled — is decoded as far as it goes and then reported as truncated instead of failing.
//! Data that is not gzip past a gzip header is an error.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;

/// The five data streams sudo can log, in timing-file event order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamKind {
    Stdin,
    Stdout,
    Stderr,
    TtyIn,
    TtyOut,
}

impl StreamKind {
    pub const ALL: [StreamKind; 5] = [
        StreamKind::Stdin,
        StreamKind::Stdout,
        StreamKind::Stderr,
        StreamKind::TtyIn,
        StreamKind::TtyOut,
    ];

    pub fn from_event(event: u32) -> Option<Self> {
        Self::ALL.get(event as usize).copied()
    }

    pub fn file_name(self) -> &'static str {
        match self {
            StreamKind::Stdin => "stdin",
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
            StreamKind::TtyIn => "ttyin",
            StreamKind::TtyOut => "ttyout",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the bytes were typed by the user (as opposed to shown to them).
    pub fn is_input(self) -> bool {
        matches!(self, StreamKind::Stdin | StreamKind::TtyIn)
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const READ_BUFFER: usize = 64 * 1024;

enum Inner<R: BufRead> {
    Plain(R),
    Gzip(Box<MultiGzDecoder<R>>),
}

/// A decoded stream. Reads end cleanly where the data ends; [`StreamReader::truncated`] then says
/// whether a gzip stream stopped before its end marker.
pub struct StreamReader<R: BufRead = BufReader<File>> {
    inner: Inner<R>,
    truncated: bool,
    compressed: bool,
}

impl<R: BufRead> StreamReader<R> {
    /// Wraps `source`, choosing gzip or plain by the first two bytes.
    pub fn new(mut source: R) -> io::Result<Self> {
        let head = loop {
            match source.fill_buf() {
                Ok(buf) => break buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        let compressed = head.starts_with(&GZIP_MAGIC);
        let inner = if compressed {
            Inner::Gzip(Box::new(MultiGzDecoder::new(source)))
        } else {
            Inner::Plain(source)
        };
        Ok(StreamReader {
            inner,
            truncated: false,
            compressed,
        })
    }

    /// True once a read found the gzip data cut short (everything before the cut was returned).
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    pub fn compressed(&self) -> bool {
        self.compressed
    }
}

impl<R: BufRead> Read for StreamReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.truncated {
            return Ok(0);
        }
        match &mut self.inner {
            Inner::Plain(r) => r.read(buf),
            Inner::Gzip(r) => match r.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.truncated = true;
                    Ok(0)
                }
                Err(e) => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("corrupt gzip data: {e}"),
                )),
                ok => ok,
            },
        }
    }
}

pub use sessrec_core::import::trusted::{check_trusted, open_regular};

/// Opens `dir/<name>` as a stream; `Ok(None)` when it does not exist.
pub fn open_stream(dir: &Path, name: &str) -> io::Result<Option<StreamReader>> {
    let path = dir.join(name);
    match open_regular(&path) {
        Ok(file) => StreamReader::new(BufReader::with_capacity(READ_BUFFER, file)).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> (io::Result<Vec<u8>>, bool) {
        let mut r = StreamReader::new(bytes).unwrap();
        let mut out = Vec::new();
        let res = r.read_to_end(&mut out).map(|_| out);
        (res, r.truncated())
    }

    #[test]
    fn plain_and_gzip_and_empty() {
        let (got, t) = read_all(b"hello");
        assert_eq!(got.unwrap(), b"hello");
        assert!(!t);
        let (got, t) = read_all(&gzip(b"hello gzip"));
        assert_eq!(got.unwrap(), b"hello gzip");
        assert!(!t);
        let (got, t) = read_all(b"");
        assert_eq!(got.unwrap(), b"");
        assert!(!t);
    }

    #[test]
    fn truncated_gzip_keeps_what_is_there() {
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let full = gzip(&data);
        // Cut inside the deflate data: a prefix comes back, marked truncated.
        let (got, t) = read_all(&full[..full.len() / 2]);
        let got = got.unwrap();
        assert!(t);
        assert!(!got.is_empty() && got.len() < data.len());
        assert_eq!(&data[..got.len()], &got[..]);
        // Only the trailer missing: all data, still marked truncated.
        let (got, t) = read_all(&full[..full.len() - 8]);
        assert_eq!(got.unwrap(), data);
        assert!(t);
        // Only part of the header.
        let (got, t) = read_all(&full[..5]);
        assert_eq!(got.unwrap(), b"");
        assert!(t);
    }

    #[test]
    fn sync_flushed_stream_without_trailer() {
        // What zlib leaves on disk with sudo's iolog_flush while the command runs.
        let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(b"line-1\r\nline-2\r\n").unwrap();
        e.flush().unwrap();
        let mut bytes = e.get_ref().clone();
        let (got, t) = read_all(&bytes);
        assert_eq!(got.unwrap(), b"line-1\r\nline-2\r\n");
        assert!(t);
        bytes.truncate(bytes.len() - 3);
        let (got, t) = read_all(&bytes);
        assert!(t);
        assert!(b"line-1\r\nline-2\r\n".starts_with(&got.unwrap()));
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let mut bytes = gzip(&vec![b'a'; 10_000]);
        let n = bytes.len();
        for b in &mut bytes[12..n - 8] {
            *b = 0xff;
        }
        let (got, _) = read_all(&bytes);
        assert_eq!(got.unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn symlinks_and_fifos_are_refused() {
        let dir = std::env::temp_dir().join(format!("srt-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("real"), b"x").unwrap();
        let _ = std::fs::remove_file(dir.join("ttyout"));
        std::os::unix::fs::symlink(dir.join("real"), dir.join("ttyout")).unwrap();
        let e = open_stream(&dir, "ttyout").err().unwrap();
        assert!(e.to_string().contains("symlink"), "{e}");
        assert!(open_stream(&dir, "stdin").unwrap().is_none());
        std::fs::create_dir_all(dir.join("stdout")).unwrap();
        let e = open_stream(&dir, "stdout").err().unwrap();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
