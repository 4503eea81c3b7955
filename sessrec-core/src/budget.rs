//! Per-user daily byte budget: a ledger of the record bytes each unix user's channels wrote.
//!
//! One file per user and UTC day, `<record_dir>/.usage/<uid>-<YYYY-MM-DD>` (root 0600, outside
//! the date tree that readers and shippers walk), each line `<unix seconds> <bytes>\n` appended
//! with one write(2). Every recorder of that user appends to the same file through a descriptor
//! it opened as root before dropping privileges, and reads the day's total back through it, so
//! concurrent channels see each other's bytes without any lock. Files of past days are removed
//! when a channel starts.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::path::Path;

use crate::time::Timestamp;

/// The ledger directory under `record_dir`.
pub const USAGE_DIR: &str = ".usage";
/// Days of ledger files kept (for `doctor` and an operator's look); older ones are removed.
const KEEP_DAYS: i64 = 7;
/// Longest ledger read: past this the day's total is taken as over any budget.
const MAX_LEDGER_BYTES: u64 = 16 << 20;

/// One user's ledger for one UTC day.
#[derive(Debug)]
pub struct UsageLedger {
    file: File,
    day: String,
}

/// `YYYY-MM-DD` of a timestamp.
fn day_of(t: Timestamp) -> String {
    let (y, m, d) = t.date();
    format!("{y:04}-{m:02}-{d:02}")
}

impl UsageLedger {
    /// Opens (creating) today's ledger of `uid` under `record_dir`. Must run as root, before the
    /// caller drops privileges; removes the user's ledger files older than a week.
    pub fn open(record_dir: &Path, uid: u32) -> io::Result<UsageLedger> {
        let root = crate::sys::open_dir_at(None, record_dir)?;
        crate::sys::mkdir_at(root.as_fd(), USAGE_DIR, 0o700)?;
        let dir = crate::sys::open_dir_at(Some(root.as_fd()), Path::new(USAGE_DIR))?;
        let now = Timestamp::now();
        let day = day_of(now);
        let name = format!("{uid}-{day}");
        let file = match crate::sys::create_append_at(dir.as_fd(), &name, 0o600, true) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                crate::sys::open_append_at(dir.as_fd(), &name)?
            }
            Err(e) => return Err(e),
        };
        remove_old_days(&record_dir.join(USAGE_DIR), uid, now);
        Ok(UsageLedger { file, day })
    }

    /// The UTC day this ledger counts.
    pub fn day(&self) -> &str {
        &self.day
    }

    /// Adds `bytes` written now.
    pub fn add(&mut self, bytes: u64) -> io::Result<()> {
        if bytes == 0 {
            return Ok(());
        }
        let line = format!("{} {bytes}\n", Timestamp::now().as_micros() / 1_000_000);
        let n = self.file.write(line.as_bytes())?;
        if n != line.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write of a usage line",
            ));
        }
        Ok(())
    }

    /// The day's total so far, of every channel of the user.
    pub fn total(&mut self) -> io::Result<u64> {
        let len = self.file.metadata()?.len();
        if len > MAX_LEDGER_BYTES {
            return Ok(u64::MAX);
        }
        let mut text = String::with_capacity(len as usize);
        self.file.seek(SeekFrom::Start(0))?;
        (&self.file)
            .take(MAX_LEDGER_BYTES)
            .read_to_string(&mut text)?;
        Ok(sum_ledger(&text))
    }
}

/// The sum of the byte counts of complete `<seconds> <bytes>` lines; others are skipped.
pub fn sum_ledger(text: &str) -> u64 {
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .filter_map(|l| l.trim_end().split_once(' ')?.1.parse::<u64>().ok())
        .fold(0u64, u64::saturating_add)
}

fn remove_old_days(dir: &Path, uid: u32, now: Timestamp) {
    let oldest = day_of(Timestamp::from_micros(
        now.as_micros() - KEEP_DAYS * 86_400 * 1_000_000,
    ));
    let prefix = format!("{uid}-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(day) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        // `YYYY-MM-DD` sorts as the dates do.
        if day.len() == 10 && *day < *oldest {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_complete_lines_only() {
        assert_eq!(sum_ledger(""), 0);
        assert_eq!(sum_ledger("1 10\n2 20\n"), 30);
        assert_eq!(sum_ledger("1 10\n2 2"), 10, "a line still being written");
        assert_eq!(sum_ledger("x\n1 y\n3 5\n"), 5);
        assert_eq!(sum_ledger("1 18446744073709551615\n1 5\n"), u64::MAX);
    }

    #[test]
    fn two_ledgers_of_one_user_see_each_other() {
        let dir = std::env::temp_dir().join(format!("sessrec-budget-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut a = UsageLedger::open(&dir, 4242).unwrap();
        let mut b = UsageLedger::open(&dir, 4242).unwrap();
        let mut other = UsageLedger::open(&dir, 4343).unwrap();
        a.add(100).unwrap();
        b.add(23).unwrap();
        other.add(7).unwrap();
        assert_eq!(a.total().unwrap(), 123);
        assert_eq!(b.total().unwrap(), 123);
        assert_eq!(other.total().unwrap(), 7);
        // A file of a day long gone is removed when a channel starts.
        let stale = dir.join(USAGE_DIR).join("4242-2000-01-01");
        std::fs::write(&stale, "1 1\n").unwrap();
        UsageLedger::open(&dir, 4242).unwrap();
        assert!(!stale.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
