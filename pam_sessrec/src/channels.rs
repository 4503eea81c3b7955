//! The state of a session's channel files at logout: for each `channel-N.jsonl`, its last
//! sequence number, the chain digest of its last line, and whether it has ended.
//!
//! Channel files can be large and their recorders may still be writing, so only the tail of
//! each file is read (bounded work inside sshd's monitor).
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde_json::Value;
use sessrec_core::chain;
use sessrec_core::schema::{ChannelEnd, EventBody, Header, LogoutChannel};

/// Most channel files summarised.
pub const MAX_CHANNELS: usize = 1024;

/// One channel file's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelState {
    pub file: String,
    /// Sequence number of the last complete line (0 when the file has none).
    pub last_seq: u64,
    /// Hex SHA-256 of the last complete line (what the next line's `prev` will be).
    pub digest: String,
    /// False once the last line is `channel.end`.
    pub open: bool,
    /// Why the file could not be read, if it could not.
    pub error: Option<String>,
}

impl ChannelState {
    /// The channel's entry in the `logout` line.
    pub fn to_logout_channel(&self) -> LogoutChannel {
        LogoutChannel {
            file: Some(self.file.clone()),
            last_seq: Some(self.last_seq),
            digest: Some(self.digest.clone()),
            open: Some(self.open),
            error: self.error.clone(),
            ..Default::default()
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.to_logout_channel()).unwrap_or(Value::Null)
    }
}

/// Channel number of a `channel-N.jsonl` name.
fn channel_number(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("channel-")?.strip_suffix(".jsonl")?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Summarises every channel file in `dir`, in channel order. `tail_bytes` must exceed the
/// longest line the writers produce (`max_line_bytes`).
pub fn summarize(dir: &Path, tail_bytes: u64) -> io::Result<Vec<ChannelState>> {
    let mut numbered = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if let Some(n) = channel_number(&name) {
            numbered.push((n, name));
            if numbered.len() == MAX_CHANNELS {
                break;
            }
        }
    }
    numbered.sort();
    let mut states = Vec::with_capacity(numbered.len());
    for (_, name) in numbered {
        let path = dir.join(&name);
        let state =
            summarize_file(&path, name.clone(), tail_bytes).unwrap_or_else(|e| ChannelState {
                file: name,
                last_seq: 0,
                digest: String::new(),
                open: true,
                error: Some(e.to_string()),
            });
        states.push(state);
    }
    Ok(states)
}

fn summarize_file(path: &Path, file: String, tail_bytes: u64) -> io::Result<ChannelState> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(tail_bytes);
    let tail = read_range(&mut f, start, len)?;
    let last = last_complete_line(&tail, start == 0);
    let (last_seq, open) = match last.and_then(|l| serde_json::from_slice::<Value>(l).ok()) {
        Some(Value::Object(mut m)) => {
            let header = Header::take_from(&mut m);
            (
                header.seq.unwrap_or(0),
                header.kind.as_deref() != Some(ChannelEnd::TYPE),
            )
        }
        _ => (0, true),
    };
    let digest = last.map(|l| chain::to_hex(&chain::line_digest(l)));
    Ok(ChannelState {
        file,
        last_seq,
        digest: digest.unwrap_or_default(),
        open,
        error: None,
    })
}

fn read_range(f: &mut File, start: u64, end: u64) -> io::Result<Vec<u8>> {
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity((end - start) as usize);
    f.take(end - start).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The last `\n`-terminated line in `tail`, with its `\n`. Unless `from_file_start`, the first
/// (possibly partial) line of the tail is never returned.
fn last_complete_line(tail: &[u8], from_file_start: bool) -> Option<&[u8]> {
    let end = tail.iter().rposition(|&b| b == b'\n')? + 1;
    let body = &tail[..end - 1];
    match body.iter().rposition(|&b| b == b'\n') {
        Some(i) => Some(&tail[i + 1..end]),
        None if from_file_start => Some(&tail[..end]),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names() {
        assert_eq!(channel_number("channel-1.jsonl"), Some(1));
        assert_eq!(channel_number("channel-12.jsonl"), Some(12));
        assert_eq!(channel_number("channel-01.jsonl"), None);
        assert_eq!(channel_number("channel-.jsonl"), None);
        assert_eq!(channel_number("session.jsonl"), None);
        assert_eq!(channel_number("channel-1.jsonl.tmp"), None);
    }

    #[test]
    fn last_line_from_tail() {
        assert_eq!(last_complete_line(b"a\nb\n", true), Some(&b"b\n"[..]));
        assert_eq!(
            last_complete_line(b"a\nb\npartial", true),
            Some(&b"b\n"[..])
        );
        assert_eq!(last_complete_line(b"only\n", true), Some(&b"only\n"[..]));
        assert_eq!(last_complete_line(b"cut-off\n", false), None);
        assert_eq!(last_complete_line(b"", true), None);
    }

    #[test]
    fn summarizes_open_and_ended_channels() {
        let dir = std::env::temp_dir().join(format!("pam-sessrec-ch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ended =
            "{\"type\":\"channel.start\",\"seq\":1}\n{\"type\":\"channel.end\",\"seq\":2}\n";
        let open = "{\"type\":\"channel.start\",\"seq\":1}\n{\"type\":\"io\",\"seq\":2}\n{\"type\":\"io\",\"se";
        std::fs::write(dir.join("channel-2.jsonl"), ended).unwrap();
        std::fs::write(dir.join("channel-1.jsonl"), open).unwrap();
        std::fs::write(dir.join("session.jsonl"), "{}\n").unwrap();
        let s = summarize(&dir, 1 << 16).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].file.as_str(), s[0].last_seq, s[0].open),
            ("channel-1.jsonl", 2, true)
        );
        assert_eq!(
            s[0].digest,
            chain::to_hex(&chain::line_digest(b"{\"type\":\"io\",\"seq\":2}\n"))
        );
        assert_eq!(
            (s[1].file.as_str(), s[1].last_seq, s[1].open),
            ("channel-2.jsonl", 2, false)
        );
        // An unreadable file is reported, not fatal.
        std::fs::create_dir(dir.join("channel-3.jsonl")).unwrap();
        let s3 = summarize(&dir, 1 << 16).unwrap();
        assert_eq!(s3.len(), 3);
        assert!(s3[2].error.is_some());
        assert!(s3[2].to_json().get("error").is_some());
        assert!(s3[0].to_json().get("error").is_none());
        // A tail shorter than the last line yields no line rather than a wrong one.
        let s = summarize(&dir, 10).unwrap();
        assert_eq!((s[1].last_seq, s[1].digest.as_str()), (0, ""));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
