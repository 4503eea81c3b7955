//! The idle policy: warn, then end a channel without input or output.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

/// `idle_timeout_s` and `idle_warning_s`.
#[derive(Debug, Clone, Copy)]
pub struct IdlePolicy {
    pub timeout: Option<Duration>,
    pub warning: Duration,
}

impl IdlePolicy {
    pub fn new(timeout_s: u64, warning_s: u64) -> Self {
        IdlePolicy {
            timeout: (timeout_s > 0).then(|| Duration::from_secs(timeout_s)),
            warning: Duration::from_secs(warning_s.min(timeout_s)),
        }
    }
}

/// Where a channel stands against its idle policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idleness {
    Active,
    /// Time to warn: the channel ends in this many seconds.
    Warn {
        left_s: u64,
    },
    Expired,
}

/// Time since the last input or output, against the policy.
pub struct IdleClock {
    policy: IdlePolicy,
    last_activity: Instant,
    warned: bool,
}

impl IdleClock {
    pub fn new(policy: IdlePolicy, now: Instant) -> Self {
        IdleClock {
            policy,
            last_activity: now,
            warned: false,
        }
    }

    /// Input or output crossed the channel.
    pub fn activity(&mut self, now: Instant) {
        self.last_activity = now;
    }

    /// The user typed: a later silence is warned about again.
    pub fn typed(&mut self, now: Instant) {
        self.last_activity = now;
        self.warned = false;
    }

    /// When the channel expires.
    pub fn expires_at(&self) -> Option<Instant> {
        self.policy.timeout.map(|t| self.last_activity + t)
    }

    /// When the next warning is due.
    pub fn warn_at(&self) -> Option<Instant> {
        self.policy
            .timeout
            .filter(|_| !self.warned)
            .map(|t| self.last_activity + t.saturating_sub(self.policy.warning))
    }

    /// Whether the channel has expired by `now` (no warning considered).
    pub fn expired(&self, now: Instant) -> bool {
        self.policy
            .timeout
            .is_some_and(|t| now.saturating_duration_since(self.last_activity) >= t)
    }

    /// Where the channel stands at `now`; a warning is given once per silence.
    pub fn check(&mut self, now: Instant) -> Idleness {
        let Some(timeout) = self.policy.timeout else {
            return Idleness::Active;
        };
        let idle_for = now.saturating_duration_since(self.last_activity);
        if idle_for >= timeout {
            return Idleness::Expired;
        }
        if !self.warned && idle_for >= timeout.saturating_sub(self.policy.warning) {
            self.warned = true;
            return Idleness::Warn {
                left_s: timeout.saturating_sub(idle_for).as_secs(),
            };
        }
        Idleness::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_timeout_is_never_idle() {
        let t0 = Instant::now();
        let mut clock = IdleClock::new(IdlePolicy::new(0, 60), t0);
        assert_eq!(
            clock.check(t0 + Duration::from_secs(86_400)),
            Idleness::Active
        );
        assert_eq!(clock.expires_at(), None);
        assert_eq!(clock.warn_at(), None);
        assert!(!clock.expired(t0 + Duration::from_secs(86_400)));
    }

    #[test]
    fn a_silence_is_warned_once_then_expires() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut clock = IdleClock::new(IdlePolicy::new(10, 3), t0);
        assert_eq!(clock.warn_at(), Some(t0 + s(7)));
        assert_eq!(clock.check(t0 + s(6)), Idleness::Active);
        assert_eq!(clock.check(t0 + s(7)), Idleness::Warn { left_s: 3 });
        assert_eq!(clock.warn_at(), None);
        assert_eq!(clock.check(t0 + s(8)), Idleness::Active);
        assert_eq!(clock.check(t0 + s(10)), Idleness::Expired);
        assert!(clock.expired(t0 + s(10)));
    }

    #[test]
    fn typing_restarts_the_clock_and_the_warning_output_only_the_clock() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut clock = IdleClock::new(IdlePolicy::new(10, 3), t0);
        assert_eq!(clock.check(t0 + s(7)), Idleness::Warn { left_s: 3 });
        clock.activity(t0 + s(8));
        assert_eq!(clock.warn_at(), None);
        assert_eq!(clock.expires_at(), Some(t0 + s(18)));
        clock.typed(t0 + s(9));
        assert_eq!(clock.warn_at(), Some(t0 + s(16)));
        assert_eq!(clock.check(t0 + s(16)), Idleness::Warn { left_s: 3 });
    }

    #[test]
    fn the_warning_is_never_longer_than_the_timeout() {
        let p = IdlePolicy::new(5, 60);
        assert_eq!(p.warning, Duration::from_secs(5));
    }
}
