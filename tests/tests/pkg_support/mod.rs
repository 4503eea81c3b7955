//! Shared by the packaging tests: the shipped files under `packaging/`, adapted to a test's
//! group and paths, and the forwarding attempts a recorded user must be refused.
#![allow(dead_code)] // each test file uses part of it

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sessrec_tests::util::{random_hex, wait_child};
use sessrec_tests::SshLogin;

/// The group name the shipped examples use for recorded users.
pub const EXAMPLE_GROUP: &str = "sessrec-recorded";
/// The recorder path the shipped examples name.
pub const EXAMPLE_RECORDER: &str = "/usr/bin/sessrec-shell";

pub fn packaging_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging")
}

pub fn read_packaging_file(relative: &str) -> String {
    let path = packaging_dir().join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The shipped sshd drop-ins: (file name, text).
pub fn sshd_dropins() -> Vec<(String, String)> {
    let dir = packaging_dir().join("examples/sshd_config.d");
    let mut out: Vec<(String, String)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read_to_string(e.path()).expect("read drop-in"),
            )
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= 2,
        "expected login-shell and force-command drop-ins"
    );
    out
}

/// A shipped drop-in with the example group (and recorder path) replaced.
pub fn adapt_dropin(text: &str, group: &str, recorder: &Path) -> String {
    assert!(
        text.contains(&format!("Match Group {EXAMPLE_GROUP}")),
        "drop-in has no `Match Group {EXAMPLE_GROUP}` line"
    );
    text.replace(EXAMPLE_GROUP, group)
        .replace(EXAMPLE_RECORDER, &recorder.to_string_lossy())
}

/// Uncommented lines of a config text, trimmed.
pub fn active_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// What a forwarding target answers every connection with.
pub const MARKER: &str = "srt-forward-target-reached";

/// A TCP server on 127.0.0.1 that writes [`MARKER`] to every connection and closes it.
pub struct Target {
    pub port: u16,
}

impl Target {
    pub fn start() -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind target");
        let port = listener.local_addr().expect("addr").port();
        thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let _ = conn.write_all(format!("{MARKER}\n").as_bytes());
                let _ = conn.shutdown(Shutdown::Both);
            }
        });
        Target { port }
    }
}

/// An ssh client process killed on drop.
pub struct Client {
    child: Option<Child>,
    stderr_path: PathBuf,
}

impl Client {
    /// Starts `ssh <extra...> dest` (no command), stderr to a file.
    pub fn spawn(login: &SshLogin, extra: &[&str]) -> Client {
        let stderr_path = std::env::temp_dir().join(format!("srt-ssh-{}.err", random_hex(6)));
        let stderr = fs::File::create(&stderr_path).expect("create stderr file");
        let child = login
            .ssh_command(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn ssh");
        Client {
            child: Some(child),
            stderr_path,
        }
    }

    /// Waits up to `timeout` for the client to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        wait_child(self.child.as_mut().expect("running"), timeout)
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_file(&self.stderr_path);
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn read_all(mut stream: impl Read) -> String {
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

pub fn connect_when_listening(port: u16, client: &mut Client) -> Option<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(10))).ok();
            return Some(s);
        }
        if client.wait_exit(Duration::from_millis(100)).is_some() {
            return None;
        }
    }
    None
}

/// What one forwarding attempt achieved.
#[derive(Debug)]
pub struct Attempt {
    pub kind: &'static str,
    /// The target's marker came back through the forward.
    pub reached: bool,
    pub detail: String,
}

/// `ssh -W 127.0.0.1:port`: stdio forwarding.
pub fn try_stdio_forward(login: &SshLogin, target: &Target) -> Attempt {
    let out = sessrec_tests::util::output_with_timeout(
        &mut login.ssh_command(&["-W", &format!("127.0.0.1:{}", target.port)]),
        b"",
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Attempt {
        kind: "-W",
        reached: stdout.contains(MARKER),
        detail: format!(
            "{}; stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// `ssh -N -L lport:127.0.0.1:port`, then a connection to lport.
pub fn try_local_forward(login: &SshLogin, target: &Target) -> Attempt {
    let lport = free_port();
    let spec = format!("127.0.0.1:{lport}:127.0.0.1:{}", target.port);
    let mut client = Client::spawn(
        login,
        &["-N", "-o", "ExitOnForwardFailure=yes", "-L", &spec],
    );
    let got = connect_when_listening(lport, &mut client).map(read_all);
    Attempt {
        kind: "-L",
        reached: got.as_deref().is_some_and(|t| t.contains(MARKER)),
        detail: format!("received {got:?}; ssh: {}", client.stderr()),
    }
}

/// `ssh -N -D lport`, then a SOCKS5 CONNECT to the target.
pub fn try_dynamic_forward(login: &SshLogin, target: &Target) -> Attempt {
    let lport = free_port();
    let spec = format!("127.0.0.1:{lport}");
    let mut client = Client::spawn(
        login,
        &["-N", "-o", "ExitOnForwardFailure=yes", "-D", &spec],
    );
    let got = connect_when_listening(lport, &mut client).map(|mut s| {
        let mut hello = [0u8; 2];
        if s.write_all(&[5, 1, 0]).is_err() || s.read_exact(&mut hello).is_err() {
            return "no SOCKS greeting".to_string();
        }
        let p = target.port.to_be_bytes();
        let _ = s.write_all(&[5, 1, 0, 1, 127, 0, 0, 1, p[0], p[1]]);
        read_all(s)
    });
    Attempt {
        kind: "-D",
        reached: got.as_deref().is_some_and(|t| t.contains(MARKER)),
        detail: format!("received {got:?}; ssh: {}", client.stderr()),
    }
}

/// `ssh -N -R rport:127.0.0.1:port`: the server listens on rport (this same host).
pub fn try_remote_forward(login: &SshLogin, target: &Target) -> Attempt {
    let rport = free_port();
    let spec = format!("127.0.0.1:{rport}:127.0.0.1:{}", target.port);
    let mut client = Client::spawn(
        login,
        &["-N", "-o", "ExitOnForwardFailure=yes", "-R", &spec],
    );
    let got = connect_when_listening(rport, &mut client).map(read_all);
    Attempt {
        kind: "-R",
        reached: got.as_deref().is_some_and(|t| t.contains(MARKER)),
        detail: format!("received {got:?}; ssh: {}", client.stderr()),
    }
}

/// `ssh -N -R /path:127.0.0.1:port`: the server creates a Unix socket (as the user).
pub fn try_remote_socket_forward(login: &SshLogin, target: &Target) -> Attempt {
    let socket = PathBuf::from(format!("/tmp/srt-fwd-{}.sock", random_hex(6)));
    let spec = format!("{}:127.0.0.1:{}", socket.display(), target.port);
    let mut client = Client::spawn(
        login,
        &["-N", "-o", "ExitOnForwardFailure=yes", "-R", &spec],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = None;
    while Instant::now() < deadline {
        if let Ok(s) = UnixStream::connect(&socket) {
            s.set_read_timeout(Some(Duration::from_secs(10))).ok();
            got = Some(read_all(s));
            break;
        }
        if client.wait_exit(Duration::from_millis(100)).is_some() {
            break;
        }
    }
    let _ = fs::remove_file(&socket);
    Attempt {
        kind: "-R /path",
        reached: got.as_deref().is_some_and(|t| t.contains(MARKER)),
        detail: format!("received {got:?}; ssh: {}", client.stderr()),
    }
}

/// What sshd answered to a tunnel (`ssh -w`) request, from the debug messages it sends the
/// client (`ssh -v` shows them as `Remote: ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelOutcome {
    /// Past sshd's policy check: the tunnel opened, or sshd tried to open its device.
    Permitted,
    /// "Server has rejected tunnel device forwarding": PermitTunnel (or a key option) said no.
    Refused,
}

const TUNNEL_REFUSED: &str = "Remote: Server has rejected tunnel device forwarding";
const TUNNEL_PERMITTED: [&str; 2] = [
    "tunnel forward established",
    // sshd got past its policy and failed to open its own device (no tun in a container).
    "Remote: Failed to open the tunnel device",
];

fn tunnel_answer(client_log: &str) -> Option<TunnelOutcome> {
    if client_log.contains(TUNNEL_REFUSED) {
        Some(TunnelOutcome::Refused)
    } else if TUNNEL_PERMITTED.iter().any(|m| client_log.contains(m)) {
        Some(TunnelOutcome::Permitted)
    } else {
        None
    }
}

/// The client needs a tun device of its own before it asks the server for one; a root without
/// `/dev/net/tun` (a fresh chroot) gets the node made here (char 10:200, as udev makes it).
fn ensure_tun_device() {
    let path = Path::new("/dev/net/tun");
    if path.exists() {
        return;
    }
    std::fs::create_dir_all("/dev/net").expect("create /dev/net");
    let made = Command::new("mknod")
        .args(["-m", "0600", "/dev/net/tun", "c", "10", "200"])
        .status()
        .expect("run mknod");
    assert!(made.success(), "mknod /dev/net/tun failed");
}

/// Asks for a point-to-point tunnel and says what the server answered, with the client's log.
/// Panics when the question never reached the server (the client could not open its own tun
/// device): the check did not run, and that must not pass for a refusal or an acceptance.
pub fn tunnel_request(login: &SshLogin) -> (TunnelOutcome, String) {
    ensure_tun_device();
    let mut client = Client::spawn(
        login,
        &[
            "-v",
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-o",
            "Tunnel=point-to-point",
            "-w",
            "any:any",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut outcome = None;
    while outcome.is_none() && Instant::now() < deadline {
        let exited = client.wait_exit(Duration::from_millis(100)).is_some();
        outcome = tunnel_answer(&client.stderr());
        if exited {
            break;
        }
    }
    let err = client.stderr();
    match outcome {
        Some(o) => (o, err),
        None => panic!(
            "sshd never answered the tunnel request (could the client open its own tun device?), so nothing was checked:\n{err}"
        ),
    }
}

/// Every TCP/stream forwarding kind, in one list.
pub fn try_all_forwards(login: &SshLogin, target: &Target) -> Vec<Attempt> {
    vec![
        try_local_forward(login, target),
        try_remote_forward(login, target),
        try_dynamic_forward(login, target),
        try_stdio_forward(login, target),
        try_remote_socket_forward(login, target),
    ]
}

/// The cargo target directory these tests were built in (`CARGO_TARGET_DIR` when set, else
/// derived from the test executable, `<target>/<profile>/deps/<test>`), where the package
/// scripts put their release build.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir)
        };
    }
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .expect("<target>/<profile>/deps/<exe>")
        .to_path_buf()
}

/// Runs `packaging/<script>` (a release build plus packaging) with its output in `out`;
/// returns the package path it prints last.
pub fn build_package(script: &str, out: &Path) -> PathBuf {
    let output = sessrec_tests::util::output_with_timeout(
        std::process::Command::new(packaging_dir().join(script))
            .env("CARGO_TARGET_DIR", target_dir())
            .env("SESSREC_PKG_OUT", out),
        b"",
        Duration::from_secs(1800),
    );
    assert!(
        output.status.success(),
        "packaging/{script} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = PathBuf::from(stdout.lines().last().unwrap_or("").trim());
    assert!(
        path.is_file(),
        "packaging/{script} printed no package path: {stdout}"
    );
    path
}

/// Pages in `man/` of programs the packages do not ship yet (packaging/stage.sh skips them).
const UNPACKAGED_PAGES: &[&str] = &[];

/// Man pages in `man/` that the packages ship: (section, file name).
pub fn man_pages() -> Vec<(String, String)> {
    let dir = packaging_dir().join("../man");
    let mut pages: Vec<(String, String)> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if UNPACKAGED_PAGES.contains(&name.as_str()) {
                return None;
            }
            let section = name.rsplit('.').next()?.to_string();
            (section.len() == 1 && ('1'..='8').contains(&section.chars().next()?))
                .then_some((section, name))
        })
        .collect();
    pages.sort();
    pages
}
