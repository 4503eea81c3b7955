//! Who may look: auditors logged in through PAM and members of the configured group, held in
//! server-side sessions named by a random cookie; CSRF tokens for every form.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A random token: 32 bytes from the kernel, hex.
pub fn token() -> String {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).expect("the kernel's random source");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Compares secrets without an early exit on the first differing byte.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A logged-in auditor.
#[derive(Debug, Clone)]
pub struct Login {
    pub user: String,
    pub uid: u32,
    /// The token the session's forms carry.
    pub csrf: String,
    expires: Instant,
}

/// Logged-in sessions, by cookie value.
pub struct Sessions {
    lifetime: Duration,
    map: Mutex<HashMap<String, Login>>,
}

/// The most sessions held at once; the oldest go first beyond it.
const MAX_SESSIONS: usize = 10_000;

impl Sessions {
    pub fn new(lifetime: Duration) -> Self {
        Sessions {
            lifetime,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Starts a session; returns its cookie value.
    pub fn start(&self, user: String, uid: u32) -> String {
        let id = token();
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, l| l.expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, l)| l.expires)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            id.clone(),
            Login {
                user,
                uid,
                csrf: token(),
                expires: now + self.lifetime,
            },
        );
        id
    }

    /// The live session a cookie names.
    pub fn get(&self, id: &str) -> Option<Login> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id).filter(|l| l.expires > Instant::now()).cloned()
    }

    pub fn end(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// Failed logins allowed per source address and user name in [`THROTTLE_WINDOW`].
pub const MAX_FAILURES: u32 = 5;
/// How long failures count, and how long a throttled login waits.
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(300);
/// Pairs remembered at most (the oldest are forgotten first).
const THROTTLE_ENTRIES: usize = 10_000;

/// Login rate limiting: after [`MAX_FAILURES`] failed logins of one user name from one
/// address, further attempts are refused without asking PAM until the window has passed.
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<(std::net::IpAddr, String), (u32, Instant)>>,
}

impl Throttle {
    /// Whether an attempt may go to PAM.
    pub fn allows(&self, ip: std::net::IpAddr, user: &str) -> bool {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&(ip, user.to_string())) {
            Some((n, first)) => *n < MAX_FAILURES || first.elapsed() >= THROTTLE_WINDOW,
            None => true,
        }
    }

    pub fn failed(&self, ip: std::net::IpAddr, user: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (_, first)| first.elapsed() < THROTTLE_WINDOW);
        if map.len() >= THROTTLE_ENTRIES {
            if let Some(oldest) = map.iter().min_by_key(|(_, v)| v.1).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        map.entry((ip, user.to_string()))
            .or_insert((0, Instant::now()))
            .0 += 1;
    }

    pub fn succeeded(&self, ip: std::net::IpAddr, user: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(ip, user.to_string()));
    }
}

/// Password checks running at once. A PAM password check hashes with the system's scheme
/// (yescrypt on Debian: about 16 MiB and tens of milliseconds each), so a burst of logins is
/// queued rather than run side by side; the console's memory stays bounded whatever arrives.
pub const PAM_CHECKS_AT_ONCE: usize = 2;
static PAM_CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(PAM_CHECKS_AT_ONCE);

/// A slot for one PAM password check, held while it runs.
pub async fn pam_slot() -> tokio::sync::SemaphorePermit<'static> {
    PAM_CHECKS
        .acquire()
        .await
        .expect("the semaphore is never closed")
}

/// Whether `user` is a member of `group` (primary or supplementary), and its uid.
pub fn member_of(user: &str, group: &str) -> Result<u32, String> {
    let u = nix::unistd::User::from_name(user)
        .map_err(|e| format!("user lookup: {e}"))?
        .ok_or("no such user")?;
    let g = nix::unistd::Group::from_name(group)
        .map_err(|e| format!("group lookup: {e}"))?
        .ok_or_else(|| format!("group {group} does not exist"))?;
    let name = std::ffi::CString::new(user).map_err(|_| "a NUL byte in the user name")?;
    let groups = nix::unistd::getgrouplist(&name, u.gid).map_err(|e| format!("groups: {e}"))?;
    if groups.contains(&g.gid) {
        Ok(u.uid.as_raw())
    } else {
        Err(format!("not a member of {group}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_and_long() {
        let (a, b) = (token(), token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, &b));
        assert!(!same_secret(&a, &a[..63]));
    }

    #[test]
    fn repeated_failures_throttle_one_user_from_one_address() {
        let t = Throttle::default();
        let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(t.allows(ip, "alice"));
            t.failed(ip, "alice");
        }
        assert!(!t.allows(ip, "alice"));
        assert!(t.allows(ip, "bob"));
        assert!(t.allows("192.0.2.8".parse().unwrap(), "alice"));
        t.succeeded(ip, "alice");
        assert!(t.allows(ip, "alice"));
    }

    #[test]
    fn an_expired_session_is_gone() {
        let s = Sessions::new(Duration::from_millis(0));
        let id = s.start("u".into(), 1);
        assert!(s.get(&id).is_none());
        let s = Sessions::new(Duration::from_secs(60));
        let id = s.start("u".into(), 1);
        assert_eq!(s.get(&id).unwrap().user, "u");
        s.end(&id);
        assert!(s.get(&id).is_none());
    }
}
