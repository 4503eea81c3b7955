//! The signals that reached the recorder, read from its self-pipe (one byte per signal).
#![forbid(unsafe_code)]

use std::os::fd::AsFd;

use crate::sys;

/// Which of the relayed signals arrived since the last read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Signals {
    /// The terminal's size changed.
    pub winch: bool,
    /// The client went away.
    pub hup: bool,
    /// Root ends the session (`sessrec kill`).
    pub term: bool,
}

impl Signals {
    /// Reads everything the (nonblocking) self-pipe holds.
    pub fn read_from(fd: impl AsFd) -> Signals {
        let mut s = Signals::default();
        let mut buf = [0u8; 64];
        while let Ok(n) = sys::read(&fd, &mut buf) {
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                match libc::c_int::from(b) {
                    libc::SIGWINCH => s.winch = true,
                    libc::SIGHUP => s.hup = true,
                    libc::SIGTERM => s.term = true,
                    _ => {}
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pending_signal_is_read_once() {
        let (r, w) = sys::pipe().unwrap();
        sys::set_nonblocking(&r).unwrap();
        sys::write(
            &w,
            &[
                libc::SIGWINCH as u8,
                libc::SIGUSR1 as u8,
                libc::SIGTERM as u8,
            ],
        )
        .unwrap();
        let s = Signals::read_from(&r);
        assert_eq!(
            s,
            Signals {
                winch: true,
                hup: false,
                term: true
            }
        );
        assert_eq!(Signals::read_from(&r), Signals::default());
        sys::write(&w, &[libc::SIGHUP as u8]).unwrap();
        assert!(Signals::read_from(&r).hup);
    }
}
