//! The event registry: each turn of a relay loop says which descriptors it waits on and what
//! each readiness means (an event of the relay's own type), waits once, and gets the events that
//! happened in the order they were registered — the order the relay handles them in.
//!
//! Interest is rebuilt from the relay's state every turn instead of being switched on and off
//! through handles: what a relay waits for is then a function of its state, visible in one
//! place, and a closed descriptor can never be left registered (entries borrow their
//! descriptors for the turn).
#![forbid(unsafe_code)]

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Instant;

use crate::sys::{self, Interest, PollFd};

/// The longest a relay sleeps without a deadline.
const MAX_WAIT_MS: i32 = 60_000;

pub struct Registry<'fd, E> {
    fds: Vec<PollFd<'fd>>,
    events: Vec<E>,
}

impl<'fd, E: Copy> Registry<'fd, E> {
    pub fn new() -> Self {
        Registry {
            fds: Vec::with_capacity(10),
            events: Vec::with_capacity(10),
        }
    }

    /// Waits for `interest` on `fd`; `event` is reported when it is ready.
    pub fn want(&mut self, fd: BorrowedFd<'fd>, interest: Interest, event: E) {
        self.fds.push(sys::pollfd(fd, interest));
        self.events.push(event);
    }

    /// [`Registry::want`] when `fd` is there and `wanted`.
    pub fn want_if(
        &mut self,
        wanted: bool,
        fd: Option<BorrowedFd<'fd>>,
        interest: Interest,
        event: E,
    ) {
        if let (true, Some(fd)) = (wanted, fd) {
            self.want(fd, interest, event);
        }
    }

    /// Waits at most `timeout_ms`; returns the ready events in registration order (none on a
    /// timeout or an interrupting signal). An error means poll itself failed: the relay cannot
    /// wait any more, and every relay ends the channel on it alike.
    pub fn wait(mut self, timeout_ms: i32) -> io::Result<Vec<E>> {
        sys::poll(&mut self.fds, timeout_ms)?;
        Ok(self
            .fds
            .iter()
            .zip(self.events)
            .filter(|(fd, _)| sys::is_ready(fd))
            .map(|(_, event)| event)
            .collect())
    }
}

/// poll(2) timeout until the nearest deadline, rounded up (so a deadline less than a
/// millisecond away does not spin), at most a minute.
pub fn timeout_ms(now: Instant, deadlines: &[Option<Instant>]) -> i32 {
    deadlines
        .iter()
        .flatten()
        .map(|d| {
            let micros = d.saturating_duration_since(now).as_micros();
            micros.div_ceil(1000).min(MAX_WAIT_MS as u128) as i32
        })
        .min()
        .unwrap_or(MAX_WAIT_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::time::Duration;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Ev {
        A,
        B,
        C,
    }

    #[test]
    fn ready_events_come_back_in_registration_order() {
        let (r1, w1) = sys::pipe().unwrap();
        let (r2, w2) = sys::pipe().unwrap();
        sys::write(&w1, b"1").unwrap();
        sys::write(&w2, b"2").unwrap();
        let mut reg = Registry::new();
        reg.want(r2.as_fd(), Interest::Readable, Ev::C);
        reg.want(w1.as_fd(), Interest::Writable, Ev::A);
        reg.want(r1.as_fd(), Interest::Readable, Ev::B);
        assert_eq!(reg.wait(0).unwrap(), [Ev::C, Ev::A, Ev::B]);
    }

    #[test]
    fn what_is_not_wanted_is_not_reported() {
        let (r, w) = sys::pipe().unwrap();
        sys::write(&w, b"x").unwrap();
        let mut reg = Registry::new();
        reg.want_if(false, Some(r.as_fd()), Interest::Readable, Ev::A);
        reg.want_if(true, None, Interest::Readable, Ev::B);
        reg.want_if(true, Some(w.as_fd()), Interest::Writable, Ev::C);
        assert_eq!(reg.wait(0).unwrap(), [Ev::C]);
    }

    #[test]
    fn a_quiet_descriptor_times_out_empty() {
        let (r, _w) = sys::pipe().unwrap();
        let mut reg = Registry::new();
        reg.want(r.as_fd(), Interest::Readable, Ev::A);
        assert!(reg.wait(1).unwrap().is_empty());
    }

    #[test]
    fn timeouts_round_up_and_are_bounded() {
        let now = Instant::now();
        assert_eq!(timeout_ms(now, &[]), 60_000);
        assert_eq!(timeout_ms(now, &[None]), 60_000);
        assert_eq!(timeout_ms(now, &[Some(now)]), 0);
        assert_eq!(timeout_ms(now, &[Some(now + Duration::from_micros(10))]), 1);
        assert_eq!(
            timeout_ms(
                now,
                &[
                    Some(now + Duration::from_millis(500)),
                    Some(now + Duration::from_millis(20))
                ]
            ),
            20
        );
        assert_eq!(
            timeout_ms(now, &[Some(now + Duration::from_secs(3600))]),
            60_000
        );
    }
}
