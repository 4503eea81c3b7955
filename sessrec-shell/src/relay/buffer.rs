//! One chunk in flight per direction: bytes read from one side and not yet written to the other.
//! A direction with a chunk pending reads nothing more, so a side that stops taking bytes stops
//! the reading of the other, and memory stays bounded.
#![forbid(unsafe_code)]

use std::io;
use std::os::fd::AsFd;

use crate::sys;

/// Largest single read of an interactive channel.
pub const CHUNK: usize = 64 * 1024;

/// What a read into a [`Chunk`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filled {
    /// This many bytes are now pending.
    Bytes(usize),
    /// End of input.
    End,
    /// Nothing to read yet (a nonblocking descriptor, or a signal).
    NotReady,
}

/// Bytes read but not yet written on.
pub struct Chunk {
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// Length of the last read (or load), kept after the bytes are written on: the relay
    /// passes them on first and records them right after, in the same turn.
    last: usize,
}

impl Chunk {
    pub fn with_capacity(size: usize) -> Self {
        Chunk {
            buf: vec![0; size],
            pos: 0,
            len: 0,
            last: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pos == self.len
    }

    /// The bytes still to be written.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.pos..self.len]
    }

    /// Everything the last read (or load) brought in, whether or not it is written on yet.
    /// Valid until the next read: a chunk is only refilled once it is empty.
    pub fn last_read(&self) -> &[u8] {
        &self.buf[..self.last]
    }

    /// Drops what is pending.
    pub fn clear(&mut self) {
        self.pos = 0;
        self.len = 0;
    }

    /// Makes (at most a chunk of) `bytes` pending, as if read; returns how many were taken.
    pub fn load(&mut self, bytes: &[u8]) -> usize {
        self.clear();
        let n = bytes.len().min(self.buf.len());
        self.buf[..n].copy_from_slice(&bytes[..n]);
        self.len = n;
        self.last = n;
        n
    }

    /// Reads at most `limit` bytes (at least one) into the empty chunk.
    pub fn fill_from(&mut self, fd: impl AsFd, limit: usize) -> io::Result<Filled> {
        debug_assert!(self.is_empty());
        self.clear();
        self.last = 0;
        let room = self.buf.len().min(limit.max(1));
        match sys::read(fd, &mut self.buf[..room]) {
            Ok(0) => Ok(Filled::End),
            Ok(n) => {
                self.len = n;
                self.last = n;
                Ok(Filled::Bytes(n))
            }
            Err(e) if would_block(&e) => Ok(Filled::NotReady),
            Err(e) => Err(e),
        }
    }

    /// Writes as much as `fd` takes. `Ok(true)` once everything is written.
    pub fn drain_to(&mut self, fd: impl AsFd) -> io::Result<bool> {
        while !self.is_empty() {
            match sys::write(&fd, self.data()) {
                Ok(n) => self.pos += n,
                Err(e) if would_block(&e) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        self.clear();
        Ok(true)
    }
}

/// The call would block, or a signal interrupted it: try again after the next poll.
pub fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonblocking_pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
        let (r, w) = sys::pipe().unwrap();
        sys::set_nonblocking(&r).unwrap();
        sys::set_nonblocking(&w).unwrap();
        (r, w)
    }

    #[test]
    fn a_chunk_is_read_and_written_whole() {
        let (r, w) = nonblocking_pipe();
        let mut chunk = Chunk::with_capacity(CHUNK);
        assert_eq!(chunk.fill_from(&r, usize::MAX).unwrap(), Filled::NotReady);
        sys::write(&w, b"hello").unwrap();
        assert_eq!(chunk.fill_from(&r, usize::MAX).unwrap(), Filled::Bytes(5));
        assert_eq!(chunk.data(), b"hello");
        let (r2, w2) = nonblocking_pipe();
        assert!(chunk.drain_to(&w2).unwrap());
        assert!(chunk.is_empty());
        let mut buf = [0u8; 8];
        assert_eq!(sys::read(&r2, &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        drop(w);
        assert_eq!(chunk.fill_from(&r, usize::MAX).unwrap(), Filled::End);
    }

    #[test]
    fn reads_stop_at_the_limit_and_never_ask_for_nothing() {
        let (r, w) = nonblocking_pipe();
        sys::write(&w, b"abcdef").unwrap();
        let mut chunk = Chunk::with_capacity(16);
        assert_eq!(chunk.fill_from(&r, 2).unwrap(), Filled::Bytes(2));
        assert_eq!(chunk.data(), b"ab");
        chunk.clear();
        assert_eq!(chunk.fill_from(&r, 0).unwrap(), Filled::Bytes(1));
        assert_eq!(chunk.data(), b"c");
    }

    #[test]
    fn a_full_writer_keeps_the_rest_pending() {
        let (r, w) = nonblocking_pipe();
        let big = vec![b'x'; 1 << 20];
        let mut chunk = Chunk::with_capacity(big.len());
        assert_eq!(chunk.load(&big), big.len());
        // A pipe holds less than a MiB by default: the rest stays.
        assert!(!chunk.drain_to(&w).unwrap());
        let left = chunk.data().len();
        assert!(left > 0 && left < big.len());
        drop(r);
        assert_eq!(
            chunk.drain_to(&w).unwrap_err().raw_os_error(),
            Some(libc::EPIPE)
        );
    }

    #[test]
    fn the_last_read_outlives_its_writing_on() {
        let (r, w) = nonblocking_pipe();
        let (r2, w2) = nonblocking_pipe();
        let mut chunk = Chunk::with_capacity(16);
        sys::write(&w, b"first").unwrap();
        chunk.fill_from(&r, usize::MAX).unwrap();
        assert!(chunk.drain_to(&w2).unwrap());
        assert!(chunk.is_empty());
        assert_eq!(chunk.last_read(), b"first", "still there to be recorded");
        sys::write(&w, b"2nd").unwrap();
        chunk.fill_from(&r, usize::MAX).unwrap();
        assert_eq!(chunk.last_read(), b"2nd", "a new read replaces it");
        assert!(chunk.drain_to(&w2).unwrap());
        assert_eq!(chunk.fill_from(&r, 2).unwrap(), Filled::NotReady);
        assert_eq!(chunk.last_read(), b"", "nothing read, nothing to record");
        let mut buf = [0u8; 16];
        assert_eq!(sys::read(&r2, &mut buf).unwrap(), 8);
        assert_eq!(&buf[..8], b"first2nd");
        chunk.load(b"typed");
        assert_eq!(chunk.last_read(), b"typed");
    }

    #[test]
    fn load_takes_at_most_one_chunk() {
        let mut chunk = Chunk::with_capacity(4);
        assert_eq!(chunk.load(b"typed ahead"), 4);
        assert_eq!(chunk.data(), b"type");
    }
}
