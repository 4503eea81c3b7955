//! The web console for the operations tests (TLS, proxy login, kill, downloads): started with
//! chosen options, driven with curl (plain HTTP or TLS against the test's own certificate).

#![allow(dead_code)] // each test file that includes this uses a part of it
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;
use sessrec_tests::*;

pub fn set_password(user: &str, password: &str) {
    let mut child = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .expect("run chpasswd");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{user}:{password}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "chpasswd {user}");
}

/// A running console, killed when dropped.
pub struct Console {
    child: Child,
    /// What it wrote to stderr after the line saying where it listens.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// `http://127.0.0.1:PORT` or `https://...`.
    pub base: String,
    /// The CA file curl trusts for TLS.
    pub ca: Option<PathBuf>,
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sessrec-web --dir DIR --listen 127.0.0.1:0 --player ... ARGS`, with no web configuration
/// file.
pub fn start(record_dir: &Path, args: &[&str]) -> Console {
    let mut all: Vec<String> = vec![
        "--web-config".into(),
        "/dev/null".into(),
        "--dir".into(),
        record_dir.to_str().unwrap().into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--player".into(),
        player_dir().to_str().unwrap().into(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    start_program(&products().sessrec_web(), &all)
}

/// `program ARGS` (an installed console), once it listens.
pub fn start_program(program: &Path, args: &[&str]) -> Console {
    let mut child = Command::new(program)
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let Some(base) = line
        .trim()
        .strip_prefix("sessrec-web: listening on ")
        .and_then(|a| a.strip_suffix('/'))
        .map(str::to_string)
    else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("unexpected first line: {line:?}");
    };
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = log.clone();
    std::thread::spawn(move || {
        for l in stderr.lines().map_while(Result::ok) {
            eprintln!("[console] {l}");
            kept.lock().unwrap().push(l);
        }
    });
    Console {
        child,
        log,
        base,
        ca: None,
    }
}

/// A response as curl got it.
pub struct Reply {
    pub status: u16,
    /// Header lines, lower-cased names.
    pub head: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers(name).into_iter().next()
    }

    pub fn headers(&self, name: &str) -> Vec<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.head
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
            .collect()
    }

    /// The value of a cookie the response sets.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers("set-cookie").into_iter().find_map(|c| {
            c.strip_prefix(&format!("{name}="))
                .and_then(|v| v.split(';').next())
                .map(str::to_string)
        })
    }
}

impl Console {
    /// `127.0.0.1:PORT` of a console without TLS.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many lines it has written to stderr so far (after the listening line).
    pub fn log_len(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// The first stderr line from line `from` on that contains `needle`, once it is written.
    pub fn wait_log(&self, from: usize, needle: &str) -> String {
        let mut found = None;
        wait_until(
            &format!("the console to log {needle:?}"),
            std::time::Duration::from_secs(30),
            || {
                found = self.log.lock().unwrap()[from..]
                    .iter()
                    .find(|l| l.contains(needle))
                    .cloned();
                found.is_some()
            },
        );
        found.unwrap()
    }

    /// curl with `extra` options on `path`; `source` is the local address to connect from.
    pub fn curl(&self, path: &str, extra: &[&str]) -> Reply {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-D", "-", "-o", "-", "--max-time", "30"]);
        if let Some(ca) = &self.ca {
            cmd.arg("--cacert").arg(ca);
        }
        cmd.args(extra).arg(format!("{}{path}", self.base));
        let o = cmd.output().expect("run curl");
        assert!(o.status.success(), "curl {path}: {}", stderr(&o));
        parse_reply(&o)
    }

    pub fn get(&self, path: &str, cookie: &str) -> Reply {
        self.curl(path, &["-H", &format!("Cookie: sessrec_session={cookie}")])
    }

    pub fn post(&self, path: &str, cookie: &str, form: &str) -> Reply {
        self.curl(
            path,
            &[
                "-H",
                &format!("Cookie: sessrec_session={cookie}"),
                "--data-raw",
                form,
            ],
        )
    }

    /// Logs in with a fresh login CSRF token; the response (303 and a session cookie on success).
    pub fn log_in(&self, user: &str, password: &str) -> Reply {
        let form = self.curl("/login", &[]);
        let csrf = form
            .cookie("sessrec_login_csrf")
            .expect("a login CSRF cookie");
        self.curl(
            "/login",
            &[
                "-H",
                &format!("Cookie: sessrec_login_csrf={csrf}"),
                "--data-raw",
                &format!("user={user}&password={password}&csrf={csrf}"),
            ],
        )
    }

    /// The session cookie of a successful login.
    pub fn session_cookie(&self, user: &str, password: &str) -> String {
        let r = self.log_in(user, password);
        assert_eq!(r.status, 303, "{}\n{}", r.head, r.text());
        r.cookie("sessrec_session").expect("a session cookie")
    }
}

fn parse_reply(o: &Output) -> Reply {
    let out = &o.stdout;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(out)));
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    Reply {
        status,
        head,
        body: out[split + 4..].to_vec(),
    }
}

/// The access lines the console wrote (operator with a `remote_addr`); the chain verified.
pub fn web_access_lines(record_dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for (path, report) in sessrec_core::access_log::verify_all(record_dir).unwrap() {
        assert!(
            report.problems.is_empty(),
            "{}: {:?}",
            path.display(),
            report.problems
        );
        let text = std::fs::read_to_string(&path).unwrap();
        out.extend(
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|v| v["operator"]["remote_addr"].is_string()),
        );
    }
    out
}

/// The access lines of `command` by `user`.
pub fn access_lines_of(record_dir: &Path, command: &str, user: &str) -> Vec<Value> {
    web_access_lines(record_dir)
        .into_iter()
        .filter(|l| l["command"] == command && l["operator"]["user"] == user)
        .collect()
}

/// The browser helper (`web_support/ops.py`) with its arguments; its JSON result.
pub fn browser(args: &[&str]) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/web_support/ops.py");
    let o = Command::new("/usr/bin/python3")
        .arg(&script)
        .args(args)
        .output()
        .expect("run python3 with selenium (python3-selenium, chromium-driver)");
    assert!(o.status.success(), "{o:?}");
    let seen: Value = serde_json::from_slice(&o.stdout).unwrap();
    eprintln!("browser saw: {seen:#}");
    seen
}
