//! What the recorder tells the user on the terminal: why the session ends, and the idle
//! warning. Written past pending output, waiting a little for room on a busy terminal.
#![forbid(unsafe_code)]

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::buffer::would_block;
use crate::sys::{self, Interest};

/// How long a message to the user may wait for room on a busy terminal.
const SAY_WAIT: Duration = Duration::from_secs(2);

/// Tells the user `text` on the (nonblocking) terminal, waiting up to [`SAY_WAIT`] for room
/// when the terminal is busy, so the reason a session ends is not lost behind output.
/// Returns whether all of it was written.
pub fn say(fd: impl AsFd, text: &str) -> bool {
    let mut rest = text.as_bytes();
    let give_up = Instant::now() + SAY_WAIT;
    while !rest.is_empty() {
        match sys::write(&fd, rest) {
            Ok(n) => rest = &rest[n..],
            Err(e) if would_block(&e) => {
                let left = give_up.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                let mut fds = [sys::pollfd(fd.as_fd(), Interest::Writable)];
                let _ = sys::poll(&mut fds, left.as_millis().min(1000) as i32 + 1);
            }
            Err(_) => return false,
        }
    }
    true
}

/// `sessrec kill`, with the administrator's message if one was left.
pub fn ended_by_administrator(message: Option<&str>) -> String {
    match message {
        Some(m) if !m.is_empty() => {
            format!("\r\nsessrec: this session was ended by the administrator: {m}\r\n")
        }
        _ => "\r\nsessrec: this session was ended by the administrator.\r\n".to_string(),
    }
}

pub const IDLE_TIMEOUT: &str = "\r\nsessrec: idle timeout; the session is closed.\r\n";

pub fn idle_warning(left_s: u64) -> String {
    format!("\r\nsessrec: this session is idle and will be closed in {left_s} seconds.\r\n")
}

pub fn record_failure(why: &str) -> String {
    format!("\r\nsessrec: the session record cannot be written ({why}); the session is closed.\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_stand_on_their_own_lines() {
        for text in [
            ended_by_administrator(None),
            ended_by_administrator(Some("")),
            ended_by_administrator(Some("maintenance")),
            IDLE_TIMEOUT.to_string(),
            idle_warning(60),
            record_failure("disk full"),
        ] {
            assert!(
                text.starts_with("\r\nsessrec: ") && text.ends_with("\r\n"),
                "{text:?}"
            );
        }
        assert!(ended_by_administrator(Some("maintenance")).contains(": maintenance\r\n"));
        assert!(idle_warning(42).contains("closed in 42 seconds"));
    }

    #[test]
    fn say_writes_everything_to_a_reader() {
        let (r, w) = sys::pipe().unwrap();
        sys::set_nonblocking(&w).unwrap();
        assert!(say(&w, "hello\r\n"));
        let mut buf = [0u8; 16];
        assert_eq!(sys::read(&r, &mut buf).unwrap(), 7);
        assert_eq!(&buf[..7], b"hello\r\n");
    }

    #[test]
    fn say_gives_up_on_a_closed_terminal() {
        let (r, w) = sys::pipe().unwrap();
        drop(r);
        assert!(!say(&w, "nobody reads this"));
    }
}
