//! The web console (`sessrec-web`) in a real browser against a really recorded session: an
//! auditor logs in through PAM (a private service, `pam_unix`) as a member of the configured
//! auditors group, a non-member is refused, the list shows the session, its page shows the
//! timeline and integrity, the player plays the channel from the streamed cast; an HTML/script
//! payload typed and printed in the session stays text; a login without the CSRF token fails;
//! every page view left a line in the chained access log. Screenshots are kept.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sessrec_tests::*;

#[path = "web_support/console.rs"]
mod console;
use console::{set_password, Console};

const T: Duration = Duration::from_secs(30);
const PROMPT: &str = r"\$ (\x1b\[K)?$";
/// Typed and printed in the recorded session: would open a dialog if the console ran it.
const PAYLOAD: &str = "<img src=x onerror=alert(1)><script>alert(2)</script>";

/// The console with PAM service `service` and auditor group `group`.
fn start_console(record_dir: &Path, service: &str, group: &str) -> Console {
    console::start(record_dir, &["--pam-service", service, "--group", group])
}

/// One request over a plain socket; the response's head and body.
fn http(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn form_post(addr: &str, path: &str, cookie: Option<&str>, body: &str) -> String {
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    http(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{cookie}\
Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// A login with a fresh CSRF token (as the form sends it); the response.
fn log_in(addr: &str, user: &str, password: &str) -> String {
    let login_page = http(
        addr,
        &format!("GET /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    let csrf = login_page
        .split("sessrec_login_csrf=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .expect("a login CSRF cookie")
        .to_string();
    form_post(
        addr,
        "/login",
        Some(&format!("sessrec_login_csrf={csrf}")),
        &format!("user={user}&password={password}&csrf={csrf}"),
    )
}

/// The access lines the console wrote (operator with a `remote_addr`).
fn web_access_lines(record_dir: &Path) -> Vec<Value> {
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

#[test]
fn an_auditor_reviews_a_recorded_session_in_a_browser() {
    require_e2e!("chromium", "chromedriver", "npm", "chpasswd");
    let r = RecordedLogin::launched("web", Launch::LoginShell, "", |b| b);
    let before = r.tree.sessions();
    let mut term = r.sshd.login(&r.user).env("TERM", "xterm").interactive();
    term.expect(PROMPT, T);
    term.send_line(&format!("echo '{PAYLOAD}'"));
    term.expect(PROMPT, T);
    // A second apart from what comes before it: a jump to this command shows the screen
    // without its output.
    term.send_line("sleep 1; echo web-marker-$((6*7))");
    term.expect("web-marker-42", T);
    term.expect(PROMPT, T);
    term.send_line("exit");
    term.wait_code(0, T);
    let session_dir = wait_for_new_session(&r.tree, &before);
    let session = session_dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();

    let group = TestGroup::new("webaud");
    let auditor = TestUser::new("webaud", Path::new("/bin/sh"));
    auditor.add_to_group(group.name());
    let outsider = TestUser::new("webout", Path::new("/bin/sh"));
    set_password(auditor.name(), "Aud1tor-pw");
    set_password(outsider.name(), "0utsider-pw");
    let pam = PamService::new("auth required pam_unix.so\naccount required pam_unix.so\n");
    let console = start_console(r.tree.record_dir(), pam.name(), group.name());

    // Right password, no CSRF token: refused, no session cookie.
    let resp = form_post(
        console.addr(),
        "/login",
        None,
        &format!("user={}&password=Aud1tor-pw", auditor.name()),
    );
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(!resp.contains("sessrec_session="), "{resp}");
    // A token in the form that the login cookie does not match: refused as well.
    let resp = form_post(
        console.addr(),
        "/login",
        Some("sessrec_login_csrf=aaaa"),
        &format!("user={}&password=Aud1tor-pw&csrf=bbbb", auditor.name()),
    );
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(!resp.contains("sessrec_session="), "{resp}");

    let artefacts = TempDir::new("web-artefacts");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/web_support/review.py");
    let o = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(format!("http://{}/", console.addr()))
        .args([auditor.name(), "Aud1tor-pw", outsider.name(), "0utsider-pw"])
        .arg(&session)
        .arg("web-marker-42")
        .arg(artefacts.path())
        .arg(artefacts.join("profile"))
        .arg("sleep 1; echo web-marker")
        // The payload's output line (its command line is wrapped at 80 columns).
        .arg("<script>alert(2)</script>")
        .output()
        .expect("run python3 with selenium (python3-selenium, chromium-driver)");
    assert!(o.status.success(), "{o:?}");
    let seen: Value = serde_json::from_slice(&o.stdout).unwrap();
    eprintln!("browser saw: {seen:#}");

    assert!(
        seen["outsider_url"].as_str().unwrap().ends_with("/login"),
        "{seen}"
    );
    assert!(
        seen["outsider_error"].as_str().unwrap().contains("refused"),
        "{seen}"
    );
    assert!(
        seen["outsider_list_url"]
            .as_str()
            .unwrap()
            .ends_with("/login"),
        "{seen}"
    );
    assert_eq!(seen["outsider_sees_session"], false);

    assert!(
        seen["auditor_url"].as_str().unwrap().ends_with("/sessions"),
        "{seen}"
    );
    let rows = seen["list_rows"].as_array().unwrap();
    let row = rows
        .iter()
        .filter_map(Value::as_str)
        .find(|row| row.contains(r.user.name()))
        .unwrap_or_else(|| panic!("no row of {} in {rows:?}", r.user.name()));
    assert!(row.contains("verified"), "{row}");
    assert!(row.contains("closed"), "{row}");

    assert!(
        seen["integrity"].as_str().unwrap().contains("verified"),
        "{seen}"
    );
    let timeline: Vec<&str> = seen["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(timeline.iter().any(|l| l.contains("login")), "{timeline:?}");
    // The typed command, payload and all, shown as text.
    assert!(
        timeline
            .iter()
            .any(|l| l.contains("typed") && l.contains(PAYLOAD)),
        "{timeline:?}"
    );
    assert!(
        timeline.iter().any(|l| l.contains("logout")),
        "{timeline:?}"
    );
    assert_eq!(seen["session_dialog_free"], true, "{seen}");
    assert_eq!(seen["player_dialog_free"], true, "{seen}");
    assert_eq!(seen["injected_elements"], 0, "{seen}");
    let played = seen["player_text"].as_str().unwrap();
    assert!(played.contains("web-marker-42"), "{played}");
    // The payload was printed: the player shows it as characters on the terminal.
    assert!(played.contains("<img src=x onerror=alert(1)>"), "{played}");
    // The jump mark of the `sleep 1` command: the player at the moment it was typed, the
    // payload's output on screen, the marker a second later not yet.
    let jump_url = seen["jump_url"].as_str().unwrap_or_default();
    assert!(jump_url.contains("&t="), "{seen}");
    let jumped = seen["jump_text"].as_str().unwrap();
    assert!(jumped.contains("<script>alert(2)</script>"), "{jumped}");
    assert!(!jumped.contains("web-marker-42"), "{jumped}");
    assert_eq!(seen["jump_waiting_to_play"], true, "{seen}");
    // Started, it plays on from there.
    let played_on = seen["jump_played_on"].as_str().unwrap();
    assert!(played_on.contains("web-marker-42"), "{played_on}");
    let csp_errors: Vec<&Value> = seen["console"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            m.as_str()
                .is_some_and(|m| m.contains("Content Security Policy"))
        })
        .collect();
    assert!(csp_errors.is_empty(), "{csp_errors:?}");
    for shot in ["list.png", "session.png", "player.png", "jump.png"] {
        let p = artefacts.join(shot);
        assert!(
            std::fs::metadata(&p)
                .map(|m| m.len() > 1000)
                .unwrap_or(false),
            "{}",
            p.display()
        );
    }
    println!("screenshots: {}", artefacts.path().display());
    // Kept for the reader of the test log.
    let kept = std::env::temp_dir().join(format!("sessrec-web-screenshots-{}", std::process::id()));
    std::fs::create_dir_all(&kept).unwrap();
    for shot in ["list.png", "session.png", "player.png", "jump.png"] {
        std::fs::copy(artefacts.join(shot), kept.join(shot)).unwrap();
    }
    println!("screenshots kept in {}", kept.display());

    // The cast comes in chunks as the record is read, not as one body of known length.
    let resp = log_in(console.addr(), auditor.name(), "Aud1tor-pw");
    assert!(resp.starts_with("HTTP/1.1 303"), "{resp}");
    let cookie = resp
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: sessrec_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie");
    let set_cookie = resp
        .lines()
        .find(|l| l.starts_with("set-cookie: sessrec_session="))
        .unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Max-Age="] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cast = http(
        console.addr(),
        &format!(
            "GET /cast?id={session}&file=channel-1.jsonl HTTP/1.1\r\nHost: {}\r\n\
Cookie: sessrec_session={cookie}\r\nConnection: close\r\n\r\n",
            console.addr()
        ),
    );
    let (head, body) = cast.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    assert!(body.contains("web-marker-42"), "{body}");
    // A path instead of a channel file name finds nothing.
    let probe = http(
        console.addr(),
        &format!(
            "GET /cast?id={session}&file=..%2F..%2Fsession.jsonl HTTP/1.1\r\nHost: {}\r\n\
Cookie: sessrec_session={cookie}\r\nConnection: close\r\n\r\n",
            console.addr()
        ),
    );
    assert!(probe.starts_with("HTTP/1.1 404"), "{probe}");

    // Every view: the list, the session page, the player page and the cast it fetched.
    let lines = web_access_lines(r.tree.record_dir());
    for command in ["web-list", "web-show", "web-play", "web-cast"] {
        let line = lines
            .iter()
            .find(|l| l["command"] == command)
            .unwrap_or_else(|| panic!("no {command} access line in {lines:#?}"));
        assert_eq!(line["operator"]["user"], auditor.name(), "{line}");
        assert!(
            line["operator"]["remote_addr"]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:"),
            "{line}"
        );
        assert!(
            line["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == session.as_str()),
            "{line}"
        );
    }
    // Login rate limiting: five wrong passwords, then even the right one is turned away
    // (without asking PAM) from that address.
    for _ in 0..5 {
        let resp = log_in(console.addr(), auditor.name(), "wrong-pw");
        assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    }
    let resp = log_in(console.addr(), auditor.name(), "Aud1tor-pw");
    assert!(resp.starts_with("HTTP/1.1 429"), "{resp}");
    assert!(!resp.contains("sessrec_session="), "{resp}");

    central_archive_is_served(
        &session_dir,
        &session,
        pam.name(),
        group.name(),
        auditor.name(),
    );

    // The outsider never got a page, so it left no line.
    assert!(
        lines
            .iter()
            .all(|l| l["operator"]["user"] == auditor.name()),
        "{lines:#?}"
    );
}

/// The session copied into a central archive's layout, `<root>/<host>/<id>/`, served by a
/// console of its own: listed with its host, its page and cast found by `<host>/<id>`.
fn central_archive_is_served(
    session_dir: &Path,
    session: &str,
    service: &str,
    group: &str,
    auditor: &str,
) {
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let central = TempDir::new("web-central");
    let dest = central.join(&host).join(session);
    std::fs::create_dir_all(&dest).unwrap();
    for entry in std::fs::read_dir(session_dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dest.join(entry.file_name())).unwrap();
        }
    }
    let console = start_console(central.path(), service, group);
    let resp = log_in(console.addr(), auditor, "Aud1tor-pw");
    assert!(resp.starts_with("HTTP/1.1 303"), "{resp}");
    let cookie = resp
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: sessrec_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();
    let get = |path: &str| {
        http(
            console.addr(),
            &format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nCookie: sessrec_session={cookie}\r\nConnection: close\r\n\r\n",
                console.addr()
            ),
        )
    };
    let list = get("/sessions");
    let id = format!("{host}%2F{session}");
    assert!(list.contains(&format!("/session?id={id}")), "{list}");
    assert!(list.contains(&format!("<td>{host}</td>")), "{list}");
    let page = get(&format!("/session?id={id}"));
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let timeline = get(&format!("/timeline?id={id}"));
    assert!(timeline.starts_with("HTTP/1.1 200"), "{timeline}");
    assert!(timeline.contains("sleep 1; echo web-marker"), "{timeline}");
    let integrity = get(&format!("/integrity?id={id}"));
    assert!(integrity.contains("integrity: verified"), "{integrity}");
    let cast = get(&format!("/cast?id={id}&file=channel-1.jsonl"));
    assert!(cast.starts_with("HTTP/1.1 200"), "{cast}");
    assert!(cast.contains("web-marker-42"), "{cast}");
    // Another host's name finds nothing, nor does a host name that is a path.
    for other in ["no-such-host", "..", "2026"] {
        let r = get(&format!("/session?id={other}%2F{session}"));
        assert!(r.starts_with("HTTP/1.1 404"), "{other}: {r}");
    }
}

/// The one session that appeared since `before`, once its logout is written.
fn wait_for_new_session(tree: &RecordTree, before: &[PathBuf]) -> PathBuf {
    let mut found = None;
    wait_until("a new recorded session", T, || {
        let now: Vec<PathBuf> = tree
            .sessions()
            .into_iter()
            .filter(|s| !before.contains(s))
            .collect();
        found = now.into_iter().next();
        found.is_some()
    });
    let s = found.unwrap();
    wait_last_event(&s.join("session.jsonl"), "logout", T);
    s
}
