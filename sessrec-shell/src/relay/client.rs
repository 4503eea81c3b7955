//! The client's side of a pipe-mode channel: the recorder's fds 0–2 (sshd's pipes), or any
//! descriptors (tests). Output toward the client is "closed" by putting /dev/null in its place,
//! so the reader on the other side sees end of file while the descriptor number stays valid.
#![forbid(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::sys::{self, StdFd};

/// One of the client's descriptors.
pub enum ClientFd {
    Std(StdFd),
    /// Any descriptor standing in for the client (the relay's tests use pipes).
    #[cfg_attr(not(test), allow(dead_code))]
    Owned(OwnedFd),
}

impl ClientFd {
    /// Ends this stream for the client: /dev/null takes the descriptor's place.
    pub fn close(&mut self) -> io::Result<()> {
        let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
        match self {
            ClientFd::Std(fd) => sys::redirect_std_fd(*fd, &null),
            ClientFd::Owned(fd) => {
                *fd = OwnedFd::from(null);
                Ok(())
            }
        }
    }
}

impl AsFd for ClientFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            ClientFd::Std(fd) => fd.fd(),
            ClientFd::Owned(fd) => fd.as_fd(),
        }
    }
}

/// The client's three streams.
pub struct Client {
    pub input: ClientFd,
    pub output: ClientFd,
    pub error: ClientFd,
}

impl Client {
    /// The recorder's own fds 0–2.
    pub fn standard() -> Self {
        Client {
            input: ClientFd::Std(StdFd::Input),
            output: ClientFd::Std(StdFd::Output),
            error: ClientFd::Std(StdFd::Error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_an_owned_stream_gives_its_reader_end_of_file() {
        let (r, w) = sys::pipe().unwrap();
        let mut out = ClientFd::Owned(w);
        assert_eq!(sys::write(&out, b"x").unwrap(), 1);
        out.close().unwrap();
        // Writes still succeed (into /dev/null); the reader sees what came before, then EOF.
        assert_eq!(sys::write(&out, b"lost").unwrap(), 4);
        let mut buf = [0u8; 8];
        assert_eq!(sys::read(&r, &mut buf).unwrap(), 1);
        assert_eq!(sys::read(&r, &mut buf).unwrap(), 0);
    }
}
