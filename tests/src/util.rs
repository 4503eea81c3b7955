//! Small helpers shared by the fixtures: unique names, running host commands with clear
//! failures, bounded waits, root-owned files and directories that clean themselves up.
#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// `n` random bytes from the kernel, as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("reading /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A name unique to this run: `srt-<prefix>-<8 hex>` (or `srt-<8 hex>` for an empty prefix),
/// lowercase, at most 30 characters, valid as a user, group, file or PAM service name.
pub fn unique_name(prefix: &str) -> String {
    let clean: String = prefix
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(16)
        .collect();
    let clean = clean.trim_matches('-');
    if clean.is_empty() {
        format!("srt-{}", random_hex(4))
    } else {
        format!("srt-{clean}-{}", random_hex(4))
    }
}

/// Shell-style rendering of a command for error messages.
pub fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs `cmd` (stdin from /dev/null) with a 120 s bound and panics, showing its output, unless
/// it exits 0.
pub fn run(cmd: &mut Command) -> Output {
    let out = output_with_timeout(cmd, b"", Duration::from_secs(120));
    if !out.status.success() {
        panic!(
            "`{}` failed with {}\nstdout: {}\nstderr: {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Runs `program args...` and panics unless it exits 0; returns its stdout as text.
pub fn run_ok(program: &str, args: &[&str]) -> String {
    let out = run(Command::new(program).args(args));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` feeding it `stdin`, capturing stdout and stderr, killing it and panicking if it
/// has not finished within `timeout`.
pub fn output_with_timeout(cmd: &mut Command, stdin: &[u8], timeout: Duration) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", describe(cmd)));
    let input = stdin.to_vec();
    let mut child_stdin = child.stdin.take().expect("piped stdin");
    let _writer = thread::spawn(move || {
        // The command may exit without reading its input; that is not an error here.
        let _ = child_stdin.write_all(&input);
    });
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let status = match wait_child(&mut child, timeout) {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out_reader.join().unwrap_or_default();
            let stderr = err_reader.join().unwrap_or_default();
            panic!(
                "`{}` did not finish within {timeout:?}\nstdout so far: {}\nstderr so far: {}",
                describe(cmd),
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
    };
    // Grandchildren may keep the pipes open after the command exits; do not hang on them
    // (a writer still blocked on such a pipe is left behind, detached).
    let stdout = join_within(out_reader, Duration::from_secs(10));
    let stderr = join_within(err_reader, Duration::from_secs(10));
    Output {
        status,
        stdout,
        stderr,
    }
}

fn join_within(handle: thread::JoinHandle<Vec<u8>>, limit: Duration) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    while !handle.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    if handle.is_finished() {
        handle.join().unwrap_or_default()
    } else {
        Vec::new()
    }
}

/// Waits for `child` up to `timeout`; `None` if it is still running.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(e) => panic!("waiting for child {}: {e}", child.id()),
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `ready` every 20 ms until it returns true; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `contents` to a new or truncated file with exactly `mode` (owned by the caller, root).
pub fn write_file(path: &Path, contents: impl AsRef<[u8]>, mode: u32) {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    file.write_all(contents.as_ref())
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}

/// Creates `path` (which must not exist) as a directory with exactly `mode`.
pub fn create_dir(path: &Path, mode: u32) {
    fs::create_dir(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}

/// Whether the tests were asked to keep their files for inspection (`SESSREC_E2E_KEEP=1`).
pub fn keep_files() -> bool {
    std::env::var_os("SESSREC_E2E_KEEP").is_some_and(|v| v == "1")
}

/// A fresh root-owned directory removed (recursively) on drop, unless `SESSREC_E2E_KEEP=1`.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
    registration: crate::leftovers::Registration,
}

impl TempDir {
    /// Creates `<parent>/<unique_name(prefix)>` with `mode`.
    pub fn new_in(parent: &Path, prefix: &str, mode: u32) -> TempDir {
        let path = parent.join(unique_name(prefix));
        let registration =
            crate::leftovers::register(crate::leftovers::Leftover::Path(path.clone()));
        create_dir(&path, mode);
        TempDir { path, registration }
    }

    /// Creates a root-only (0700) directory under /tmp.
    pub fn new(prefix: &str) -> TempDir {
        TempDir::new_in(Path::new("/tmp"), prefix, 0o700)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self.path().join(name)`.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if keep_files() {
            eprintln!("keeping {}", self.path.display());
            self.registration.release();
            return;
        }
        match fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                eprintln!("warning: cannot remove {}: {e}", self.path.display());
            }
            _ => self.registration.release(),
        }
    }
}

/// Whether `program` names an executable file, either as a path or found in `$PATH` (plus the
/// sbin directories, which root's tests need even when `$PATH` lacks them).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let is_exec = |p: &Path| {
        fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| is_exec(p));
    found
}

/// A command's stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A session's id: the name of its record directory.
pub fn session_id(session_dir: &Path) -> String {
    session_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("session dir name")
        .to_string()
}

/// Asserts that `o` exited with `code` and that its stdout holds `needle`, showing the output
/// when not.
#[track_caller]
pub fn assert_exit_says(o: &Output, code: i32, needle: &str) {
    let out = stdout(o);
    assert_eq!(o.status.code(), Some(code), "{out}{}", stderr(o));
    assert!(out.contains(needle), "no {needle:?} in:\n{out}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_valid_account_names() {
        let a = unique_name("Login Test!");
        let b = unique_name("Login Test!");
        assert_ne!(a, b);
        assert!(a.starts_with("srt-logintest-"), "{a}");
        assert!(a.len() <= 30);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'));
        assert!(unique_name("").starts_with("srt-"));
        assert!(unique_name("a-very-long-prefix-that-goes-on").len() <= 30);
    }

    #[test]
    fn output_with_timeout_keeps_streams_apart() {
        let out = output_with_timeout(
            Command::new("sh").args(["-c", "cat; echo err >&2; exit 4"]),
            b"in",
            Duration::from_secs(10),
        );
        assert_eq!(out.stdout, b"in");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(4));
    }

    #[test]
    #[should_panic(expected = "did not finish within")]
    fn output_with_timeout_is_bounded() {
        output_with_timeout(
            Command::new("sleep").arg("5"),
            b"",
            Duration::from_millis(200),
        );
    }
}
