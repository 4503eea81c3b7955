//! poll(2) over borrowed descriptors (nix's `PollFd` ties each entry to the descriptor's
//! lifetime, so a closed descriptor cannot be polled).

use std::io;
use std::os::fd::BorrowedFd;

pub use nix::poll::PollFd;
use nix::poll::{PollFlags, PollTimeout};

/// What an entry waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    Readable,
    Writable,
}

/// One poll(2) entry. Async-signal-safe.
pub fn pollfd(fd: BorrowedFd<'_>, interest: Interest) -> PollFd<'_> {
    let events = match interest {
        Interest::Readable => PollFlags::POLLIN,
        Interest::Writable => PollFlags::POLLOUT,
    };
    PollFd::new(fd, events)
}

/// Whether poll(2) reported anything for the entry (its interest, an error or a hangup).
pub fn is_ready(fd: &PollFd<'_>) -> bool {
    fd.revents().is_some_and(|r| !r.is_empty())
}

/// poll(2) for at most `timeout_ms` (negative: no limit); EINTR counts as "nothing ready".
/// Async-signal-safe.
pub fn poll(fds: &mut [PollFd<'_>], timeout_ms: i32) -> io::Result<usize> {
    let timeout = PollTimeout::try_from(timeout_ms.max(-1)).unwrap_or(PollTimeout::NONE);
    match nix::poll::poll(fds, timeout) {
        Ok(n) => Ok(n as usize),
        // The kernel reports no events when interrupted: entries keep `revents` as made.
        Err(nix::errno::Errno::EINTR) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys;
    use std::os::fd::AsFd;

    #[test]
    fn a_readable_pipe_is_reported_and_an_empty_one_is_not() {
        let (r, w) = sys::pipe().unwrap();
        let mut fds = [pollfd(r.as_fd(), Interest::Readable)];
        assert_eq!(poll(&mut fds, 0).unwrap(), 0);
        assert!(!is_ready(&fds[0]));
        sys::write(&w, b"x").unwrap();
        let mut fds = [
            pollfd(r.as_fd(), Interest::Readable),
            pollfd(w.as_fd(), Interest::Writable),
        ];
        assert_eq!(poll(&mut fds, 0).unwrap(), 2);
        assert!(is_ready(&fds[0]) && is_ready(&fds[1]));
    }

    #[test]
    fn a_hangup_counts_as_ready() {
        let (r, w) = sys::pipe().unwrap();
        drop(w);
        let mut fds = [pollfd(r.as_fd(), Interest::Readable)];
        assert_eq!(poll(&mut fds, 0).unwrap(), 1);
        assert!(is_ready(&fds[0]));
    }
}
