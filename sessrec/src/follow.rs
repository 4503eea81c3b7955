//! `play --follow`: shows a record file as it grows, like `tail -f`, until its channel ends,
//! its recorder is gone, or the operator quits.
#![forbid(unsafe_code)]

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde_json::Value;
use sessrec_core::reader::{decode_frames, Line};
use sessrec_core::record::Stream;

use crate::records::RecordFile;
use crate::store::SessionRef;

/// How long a file may stay silent, with no recorder alive, before following stops.
const GONE_AFTER: Duration = Duration::from_secs(3);

/// Streams `file` from its beginning: existing output at once, then new output as it is
/// written. `show` receives output bytes (the caller filters them).
pub fn follow(
    show: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    file: &RecordFile,
    _session: &SessionRef,
    this_host: &str,
    keys: bool,
) -> io::Result<()> {
    // Read on from where the last read stopped: a regular file's new lines come after EOF;
    // a compressed (closed) channel ends with its channel.end.
    let mut f = sessrec_core::stored::open(&file.path)?;
    let mut pending: Vec<u8> = Vec::new();
    let mut line_no = 0u64;
    let mut quiet_since = Instant::now();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n > 0 {
            quiet_since = Instant::now();
            pending.extend_from_slice(&buf[..n]);
            let mut start = 0;
            while let Some(pos) = pending[start..].iter().position(|&b| b == b'\n') {
                let raw = pending[start..start + pos + 1].to_vec();
                start += pos + 1;
                line_no += 1;
                let Ok(Value::Object(value)) = serde_json::from_slice::<Value>(&raw) else {
                    show(format!("\r\n[damaged record line {line_no}]\r\n").as_bytes())?;
                    continue;
                };
                let line = Line {
                    line_no,
                    raw,
                    value,
                };
                match line.kind() {
                    "io" => {
                        for frame in decode_frames(&line) {
                            if frame.stream != Stream::Input {
                                show(&frame.data)?;
                            }
                        }
                    }
                    "channel.end" | "sudo.end" => return Ok(()),
                    _ => {}
                }
            }
            pending.drain(..start);
            continue;
        }
        let alive = file
            .start
            .as_ref()
            .is_some_and(|s| crate::live::recorder_alive(s, this_host));
        if !alive && quiet_since.elapsed() > GONE_AFTER {
            show(b"\r\n[recorder gone: the channel did not end cleanly]\r\n")?;
            return Ok(());
        }
        if wait_for_quit(keys, Duration::from_millis(100)) {
            return Ok(());
        }
    }
}

fn wait_for_quit(keys: bool, timeout: Duration) -> bool {
    if !keys {
        std::thread::sleep(timeout);
        return false;
    }
    let stdin = io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    if matches!(poll(&mut fds, PollTimeout::try_from(timeout.as_millis() as i32).unwrap_or(PollTimeout::ZERO)), Ok(n) if n > 0)
    {
        let mut b = [0u8; 1];
        return !matches!(stdin.lock().read(&mut b), Ok(1) if !matches!(b[0], b'q' | b'Q' | 0x03));
    }
    false
}
