//! Driving an interactive program (usually `ssh -tt`) through a pty the test owns, the way a
//! person at a terminal would: type, wait for text, resize, hang up.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::pty::{openpty, Winsize};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use regex::bytes::Regex;

use crate::sys;
use crate::util::{describe, wait_child};

/// Default bound for [`PtySession::expect`] and [`PtySession::wait`] callers that have no
/// better figure.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Transcript {
    bytes: Vec<u8>,
    closed: bool,
}

type Shared = Arc<(Mutex<Transcript>, Condvar)>;

/// A child process running on a fresh pty as its controlling terminal, with everything it
/// prints collected into a transcript. Dropping it hangs up and kills the child if it is
/// still running.
pub struct PtySession {
    child: Child,
    what: String,
    master: File,
    shared: Shared,
    reader: Option<JoinHandle<()>>,
    cursor: usize,
    status: Option<ExitStatus>,
}

impl std::fmt::Debug for PtySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PtySession")
            .field("what", &self.what)
            .field("pid", &self.child.id())
            .finish()
    }
}

impl PtySession {
    /// Starts `cmd` on a new pty of `cols`×`rows` (stdin, stdout and stderr all the pty;
    /// a new session with the pty as controlling terminal).
    pub fn spawn(mut cmd: Command, cols: u16, rows: u16) -> PtySession {
        let size = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(Some(&size), None).expect("openpty");
        for fd in [pty.master.as_raw_fd(), pty.slave.as_raw_fd()] {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).expect("set FD_CLOEXEC on pty");
        }
        let what = describe(&cmd);
        let slave: OwnedFd = pty.slave;
        cmd.stdin(Stdio::from(slave.try_clone().expect("dup pty slave")))
            .stdout(Stdio::from(slave.try_clone().expect("dup pty slave")))
            .stderr(Stdio::from(slave));
        let child = sys::spawn_with_controlling_tty(&mut cmd)
            .unwrap_or_else(|e| panic!("cannot start `{what}` on a pty: {e}"));
        // Close our copies of the slave so EOF/EIO arrives when the child's side is gone.
        drop(cmd);
        let master = File::from(pty.master);
        let mut reading = master.try_clone().expect("dup pty master");
        let shared: Shared = Arc::new((Mutex::new(Transcript::default()), Condvar::new()));
        let sink = Arc::clone(&shared);
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                // EIO once every slave fd is closed: that is the end of the transcript.
                let n = reading.read(&mut buf).unwrap_or(0);
                let (lock, cond) = &*sink;
                let mut t = lock.lock().unwrap_or_else(|e| e.into_inner());
                if n == 0 {
                    t.closed = true;
                    cond.notify_all();
                    return;
                }
                t.bytes.extend_from_slice(&buf[..n]);
                cond.notify_all();
            }
        });
        PtySession {
            child,
            what,
            master,
            shared,
            reader: Some(reader),
            cursor: 0,
            status: None,
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes raw bytes (keystrokes) to the terminal.
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.master
            .write_all(bytes.as_ref())
            .unwrap_or_else(|e| panic!("writing to the pty of `{}`: {e}", self.what));
    }

    /// Types `line` followed by Enter (`\r`, as a terminal sends it).
    pub fn send_line(&mut self, line: &str) {
        self.send(format!("{line}\r"));
    }

    /// Sends the EOF character (Ctrl-D).
    pub fn send_eof(&mut self) {
        self.send([0x04]);
    }

    /// Sets the terminal size; the kernel signals SIGWINCH to the pty's foreground process
    /// group, and the child is signalled as well in case it is not in the foreground.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        sys::set_window_size(&self.master, cols, rows).expect("TIOCSWINSZ on the pty master");
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGWINCH);
    }

    /// Waits until the transcript, from the end of the previous match on, matches `pattern`;
    /// returns the matched text and moves past it. Panics, showing the transcript, on timeout
    /// or if the child closes the terminal first.
    pub fn expect(&mut self, pattern: &str, timeout: Duration) -> String {
        let re = Regex::new(pattern).unwrap_or_else(|e| panic!("bad pattern {pattern:?}: {e}"));
        let deadline = Instant::now() + timeout;
        let (lock, cond) = &*self.shared;
        let mut t = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(m) = re.find(&t.bytes[self.cursor.min(t.bytes.len())..]) {
                let text = String::from_utf8_lossy(m.as_bytes()).into_owned();
                self.cursor += m.end();
                return text;
            }
            let now = Instant::now();
            if t.closed || now >= deadline {
                let why = if t.closed {
                    "the terminal closed"
                } else {
                    "timed out"
                };
                let seen = String::from_utf8_lossy(&t.bytes).into_owned();
                drop(t);
                panic!(
                    "expect({pattern:?}) on `{}`: {why} after {:?}\n--- transcript ---\n{seen}\n--- end ---",
                    self.what,
                    timeout.saturating_sub(deadline.saturating_duration_since(now))
                );
            }
            t = cond
                .wait_timeout(t, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Everything the child has written to the terminal so far.
    pub fn transcript(&self) -> Vec<u8> {
        let (lock, _) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).bytes.clone()
    }

    /// The transcript as (lossy) text.
    pub fn transcript_text(&self) -> String {
        String::from_utf8_lossy(&self.transcript()).into_owned()
    }

    /// Waits for the child to exit and for its output to be drained; panics (after killing it,
    /// showing the transcript) on timeout. Returns its exit status.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let Some(status) = wait_child(&mut self.child, timeout) else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "`{}` did not exit within {timeout:?}\n--- transcript ---\n{}\n--- end ---",
                self.what,
                self.transcript_text()
            );
        };
        self.status = Some(status);
        // Children of the child may keep the slave open; do not wait for them forever.
        let deadline = Instant::now() + Duration::from_secs(5);
        if let Some(reader) = self.reader.take() {
            while !reader.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            if reader.is_finished() {
                let _ = reader.join();
            } else {
                self.reader = Some(reader);
            }
        }
        status
    }

    /// `wait(timeout)`, panicking unless the exit code is `code`.
    pub fn wait_code(&mut self, code: i32, timeout: Duration) {
        let status = self.wait(timeout);
        assert_eq!(
            status.code(),
            Some(code),
            "`{}` exited with {status}, expected {code}\n--- transcript ---\n{}\n--- end ---",
            self.what,
            self.transcript_text()
        );
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        if self.status.is_none() {
            let pid = Pid::from_raw(self.child.id() as i32);
            let _ = kill(pid, Signal::SIGHUP);
            if wait_child(&mut self.child, Duration::from_secs(2)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        // The reader thread ends with EIO once the last slave fd closes; it is detached if a
        // stray grandchild still holds the terminal.
    }
}
