//! The web console's review pages in a real browser (headless Chromium driven by Selenium)
//! against really recorded sessions — a shell with real sudo (log_output, imported), an sftp
//! upload — and 120 synthetic sessions written by the real record writer:
//! - the list filters (user, time range, has sudo, has transfer, a hostile actor) and pages,
//!   the filters kept across pages;
//! - a search hit opens the player paused at the hit's moment (the player's own current time);
//! - a live recorded ssh session is listed as live, followed in the player, and what it prints
//!   while it runs shows up in the browser;
//! - HTML/script payloads in output, typed commands, an sftp file name, a sudo command and an
//!   actor stay text on every page (no dialog, no element or script the console did not ship);
//! - every view left an access line. Screenshots of the list, a session page, search results,
//!   the player at a hit and the live player are kept in a directory named in the output.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use sessrec_core::testing::synth::{id_at, SynthSession};
use sessrec_tests::*;

#[path = "web_support/console.rs"]
mod console;
use console::{set_password, Console};

const T: Duration = Duration::from_secs(30);
const PROMPT: &str = r"\$ (\x1b\[K)?$";
/// Printed (and so typed) in the recorded shell.
const OUTPUT_PAYLOAD: &str = "<img src=x onerror=alert(11)>";
/// In the command sudo runs.
const SUDO_PAYLOAD: &str = "<script>alert(12)</script>";
/// The name of the file uploaded with sftp.
const SFTP_PAYLOAD: &str = "<img src=x onerror=alert(13)>.txt";
/// The actor of one synthetic session (a certificate key id can say anything).
const ACTOR_PAYLOAD: &str = "<script>alert(14)</script>@evil";
const SYNTHETIC: usize = 120;

/// The console with PAM service `service` and auditor group `group`.
fn start_console(record_dir: &Path, service: &str, group: &str) -> Console {
    console::start(record_dir, &["--pam-service", service, "--group", group])
}

/// An auditor allowed in by PAM (a private service with pam_unix) and group.
struct Auditor {
    _group: TestGroup,
    user: TestUser,
    pam: PamService,
}

const PASSWORD: &str = "Rev1ew-pw";

fn auditor(tag: &str) -> Auditor {
    let group = TestGroup::new(tag);
    let user = TestUser::new(tag, Path::new("/bin/sh"));
    user.add_to_group(group.name());
    set_password(user.name(), PASSWORD);
    let pam = PamService::new("auth required pam_unix.so\naccount required pam_unix.so\n");
    Auditor {
        _group: group,
        user,
        pam,
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/web_support/browse.py")
}

/// The access lines the console wrote (operator with a `remote_addr`), chains checked.
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

/// The session a login added to the tree (beside those `before` it), once it has logged out:
/// its directory and id.
fn new_closed_session(r: &RecordedLogin, before: &[PathBuf]) -> (PathBuf, String) {
    let dir = r
        .tree
        .wait_sessions(before.len() + 1, T)
        .into_iter()
        .find(|s| !before.contains(s))
        .unwrap();
    wait_last_event(&dir.join("session.jsonl"), "logout", T);
    let id = dir.file_name().unwrap().to_str().unwrap().to_string();
    (dir, id)
}

/// What the browser script is given: `mode`, the console, the auditor's login, where its
/// artefacts and profile go, and the mode's own fields (`extra`, an object).
fn browser_spec(
    mode: &str,
    console: &Console,
    aud: &Auditor,
    artefacts: &TempDir,
    extra: Value,
) -> Value {
    let mut spec = json!({
        "mode": mode,
        "base": format!("http://{}/", console.addr()),
        "user": aud.user.name(),
        "password": PASSWORD,
        "artefacts": artefacts.path(),
        "profile": artefacts.join("profile"),
    });
    if let (Value::Object(spec), Value::Object(extra)) = (&mut spec, extra) {
        spec.extend(extra);
    }
    spec
}

/// Runs the browser script on `spec` to its end: what it saw.
fn run_browser(spec: &Value) -> Value {
    let o = browser_command(spec)
        .output()
        .expect("run python3 with selenium (python3-selenium, chromium-driver)");
    assert!(o.status.success(), "{o:?}");
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Starts the browser script on `spec`, its output to be read as it goes.
fn start_browser(spec: &Value) -> std::process::Child {
    browser_command(spec)
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python3 with selenium (python3-selenium, chromium-driver)")
}

fn browser_command(spec: &Value) -> Command {
    let mut command = Command::new("/usr/bin/python3");
    command.arg(script()).arg(spec.to_string());
    command
}

/// Screenshots kept past the test, in a directory named in its output.
fn keep_screenshots(from: &Path, names: &[&str]) {
    let kept = std::env::temp_dir().join(format!(
        "sessrec-web-review-screenshots-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&kept).unwrap();
    for shot in names {
        let p = from.join(shot);
        assert!(
            std::fs::metadata(&p)
                .map(|m| m.len() > 1000)
                .unwrap_or(false),
            "{}",
            p.display()
        );
        std::fs::copy(&p, kept.join(shot)).unwrap();
    }
    println!("screenshots kept in {}", kept.display());
}

/// Every page the browser saw stayed free of dialogs and of elements it did not ship.
fn assert_inert(seen: &Value, at_least: usize) {
    let pages = seen["inert"].as_object().expect("pages checked");
    assert!(pages.len() >= at_least, "{seen:#}");
    for (page, v) in pages {
        assert_eq!(v["dialog"], false, "{page}: a dialog opened: {seen:#}");
        assert_eq!(v["injected"], 0, "{page}: injected elements: {seen:#}");
    }
    let csp: Vec<&Value> = seen["console"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            m.as_str()
                .is_some_and(|m| m.contains("Content Security Policy"))
        })
        .collect();
    assert!(csp.is_empty(), "{csp:?}");
}

fn rows(seen: &Value, key: &str) -> Vec<String> {
    seen[key]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {seen:#}"))
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn auditors_filter_page_and_search_sessions_with_hostile_content_in_a_browser() {
    require_e2e!(
        "chromium",
        "chromedriver",
        "npm",
        "chpasswd",
        "sudo",
        "sftp"
    );
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let tree = RecordTree::new("");
    let user = TestUser::new("webrev", installed.shell());
    let iolog = TempDir::new("web-iolog");
    let _dropin = SudoersDropIn::new(&format!(
        "Defaults:{u} log_output, log_input, use_pty, iolog_dir={d}\n\
         Defaults:{u} env_keep += \"SESSREC_SESSION\"\n\
         {u} ALL=(ALL) NOPASSWD: ALL\n",
        u = user.name(),
        d = iolog.path().display()
    ));
    let state = tree.dir().join("sudo-import.state");
    tree.write_config(&format!(
        "[recorder]\nshell = \"/bin/bash\"\n[sudo]\niolog_dirs = [\"{}\"]\nstate_file = \"{}\"\nsettle_minutes = 0\n",
        iolog.path().display(),
        state.display()
    ));
    let sshd = PrivateSshd::builder()
        .recorded_by(&installed, tree.config_path())
        .start();

    // The shell: a payload printed, a pause, a marker to search for, a sudo command carrying
    // a payload of its own.
    let mut term = sshd.login(&user).env("TERM", "xterm").interactive();
    term.expect(PROMPT, T);
    term.send_line(&format!("echo '{OUTPUT_PAYLOAD}'"));
    term.expect(PROMPT, T);
    term.send_line("sleep 2; echo search-marker-$((6*7))");
    term.expect("search-marker-42", T);
    term.expect(PROMPT, T);
    term.send_line(&format!(
        "sudo sh -c 'echo sudo-ran-$((6*7)) # {SUDO_PAYLOAD}'"
    ));
    term.expect("sudo-ran-42", T);
    term.expect(PROMPT, T);
    term.send_line("exit");
    term.wait(T);
    let shell = tree.wait_sessions(1, T).remove(0);
    wait_last_event(&shell.join("session.jsonl"), "logout", T);
    let out = Command::new(products().sudo_iolog_import())
        .args(["--once", "--json"])
        .env("SESSREC_CONFIG", tree.config_path())
        .output()
        .expect("run sudo-iolog-import");
    assert!(out.status.success(), "{out:?}");

    // An sftp upload under a hostile name.
    let scratch = TempDir::new("web-sftp");
    let local = scratch.join("upload.txt");
    std::fs::write(&local, b"payload\n").unwrap();
    let out = sshd
        .login(&user)
        .sftp_batch(&format!("put {} \"{SFTP_PAYLOAD}\"\n", local.display()), T);
    assert!(out.status.success(), "{out:?}");
    let sessions = tree.wait_sessions(2, T);
    let sftp = sessions.iter().find(|s| **s != shell).unwrap().clone();
    wait_last_event(&sftp.join("session.jsonl"), "logout", T);

    // Synthetic sessions: users synth-0 .. synth-5 in turn, started 1.5 h, 2.5 h, ... ago; one
    // with a hostile actor.
    let now_ms = sessrec_core::time::Timestamp::now().as_micros() as u64 / 1000;
    for i in 0..SYNTHETIC {
        let id = id_at(now_ms - (i as u64 * 3600 + 5400) * 1000).unwrap();
        let synth_user = format!("synth-{}", i % 6);
        let actor = if i == 7 {
            ACTOR_PAYLOAD.to_string()
        } else {
            synth_user.clone()
        };
        let mut s = SynthSession::login_on(
            &sessrec_core::sys::hostname(),
            tree.record_dir(),
            id,
            &synth_user,
            &actor,
            "198.51.100.7",
        )
        .unwrap();
        let mut ch = s.channel("shell", "pty", None).unwrap();
        ch.output(1000, format!("synthetic session {i}\r\n").as_bytes())
            .unwrap();
        s.finished(ch, 0).unwrap();
        s.logout().unwrap();
    }

    let aud = auditor("webrev-aud");
    let console = start_console(tree.record_dir(), aud.pam.name(), aud._group.name());
    let artefacts = TempDir::new("web-review-artefacts");
    let shell_id = shell.file_name().unwrap().to_str().unwrap().to_string();
    let sftp_id = sftp.file_name().unwrap().to_str().unwrap().to_string();
    let spec = browser_spec(
        "review",
        &console,
        &aud,
        &artefacts,
        json!({
            "filters": [
                {"name": "user", "fields": {"f-user": "synth-3"}},
                {"name": "since", "fields": {"f-since": "10h"}},
                {"name": "sudo", "checks": ["f-sudo"]},
                {"name": "transfer", "checks": ["f-transfer"]},
                {"name": "actor", "fields": {"f-actor": "<script>*"}},
            ],
            "paged": {"fields": {"f-user": "synth-*"}},
            "search": "search-marker-42",
            "search_payloads": [OUTPUT_PAYLOAD, SUDO_PAYLOAD],
            "sessions": [shell_id, sftp_id],
        }),
    );
    let seen = run_browser(&spec);
    eprintln!("browser saw: {seen:#}");

    // The whole list, then each filter.
    let everything = seen["list"]["count"].as_str().unwrap();
    assert!(
        everything.starts_with(&format!("{} session(s)", SYNTHETIC + 2)),
        "{everything}"
    );
    let by_user = rows(&seen, "user");
    assert_eq!(by_user.len(), SYNTHETIC / 6, "{by_user:#?}");
    assert!(
        by_user.iter().all(|r| r.contains("synth-3")),
        "{by_user:#?}"
    );
    assert!(
        seen["user"]["url"]
            .as_str()
            .unwrap()
            .contains("user=synth-3"),
        "{seen}"
    );
    // Started in the last 10 hours: the two recorded sessions and synthetic 0 to 8.
    let recent = rows(&seen, "since");
    assert_eq!(recent.len(), 2 + 9, "{recent:#?}");
    let sudo = rows(&seen, "sudo");
    assert_eq!(sudo.len(), 1, "{sudo:#?}");
    assert!(sudo[0].contains(user.name()), "{sudo:#?}");
    let transfer = rows(&seen, "transfer");
    assert_eq!(transfer.len(), 1, "{transfer:#?}");
    assert!(
        seen["transfer"]["links"][0]
            .as_str()
            .unwrap()
            .ends_with(&sftp_id),
        "{seen}"
    );
    // The hostile actor is matched as text and shown as text.
    let actor = rows(&seen, "actor");
    assert_eq!(actor.len(), 1, "{actor:#?}");
    assert!(actor[0].contains(ACTOR_PAYLOAD), "{actor:#?}");

    // Paging keeps the filter: 120 synth-* sessions are pages 1-3; page 2 holds 50 of them.
    let first = &seen["paged"]["first"];
    assert!(
        first["count"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{SYNTHETIC} session(s)")),
        "{first}"
    );
    let second = &seen["paged"]["second"];
    assert_eq!(second["page"], "2", "{second}");
    assert!(
        second["url"].as_str().unwrap().contains("user=synth-"),
        "{second}"
    );
    let page2: Vec<&str> = second["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(page2.len(), 50, "{page2:#?}");
    assert!(page2.iter().all(|r| r.contains("synth-")), "{page2:#?}");
    // Newest first: page 2 starts with synthetic session 50, 51.5 hours old.
    assert_ne!(first["rows"][0], second["rows"][0], "{seen}");

    // The search hit of the marker, in the shell's channel, opens the player there.
    let hits = rows(&seen, "search");
    assert!(!hits.is_empty(), "{seen}");
    assert!(
        hits.iter().all(|h| h.contains("search-marker-42")),
        "{hits:#?}"
    );
    let href = seen["search"]["hit_href"].as_str().unwrap();
    assert!(
        href.contains(&format!("id={shell_id}")) && href.contains("file=channel-1.jsonl"),
        "{href}"
    );
    let t: f64 = href
        .split("&t=")
        .nth(1)
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no t in {href}"));
    // The marker comes after a two-second sleep: well into the channel.
    assert!(t > 2.0, "{href}");
    let current = seen["search"]["player_time"].as_f64().unwrap();
    assert!(
        (current - t).abs() < 0.01,
        "player at {current}, hit at {t}"
    );
    assert!(
        seen["search"]["player_text"]
            .as_str()
            .unwrap()
            .contains(OUTPUT_PAYLOAD),
        "the screen before the hit is drawn: {seen}"
    );
    assert_eq!(
        seen["search"]["player_integrity"], "integrity: verified: hash chains intact and complete",
        "{seen}"
    );
    // Payloads searched for come back as text in the hits' context.
    for (i, payload) in [OUTPUT_PAYLOAD, SUDO_PAYLOAD].iter().enumerate() {
        let context = seen["payload_hits"][i].as_array().unwrap();
        assert!(
            context
                .iter()
                .any(|c| c.as_str().unwrap().contains(payload)),
            "{payload}: {context:?}"
        );
    }
    // The session pages show the sudo command and the sftp file name as text.
    let shell_page = seen["session"][0]["timeline"].as_str().unwrap();
    assert!(shell_page.contains(SUDO_PAYLOAD), "{shell_page}");
    assert!(shell_page.contains(OUTPUT_PAYLOAD), "{shell_page}");
    let sftp_page = seen["session"][1]["timeline"].as_str().unwrap();
    assert!(sftp_page.contains(SFTP_PAYLOAD), "{sftp_page}");
    assert_inert(&seen, 13);
    keep_screenshots(
        artefacts.path(),
        &["list.png", "session.png", "search.png", "hit.png"],
    );

    // Every view was logged: the filters, the search, the pieces of the cast from the hit.
    let lines = web_access_lines(tree.record_dir());
    let has = |command: &str, arg: &str| {
        lines.iter().any(|l| {
            l["command"] == command
                && l["args"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|x| x.as_str().is_some_and(|x| x.contains(arg)))
                })
        })
    };
    assert!(has("web-list", "user=synth-3"), "{lines:#?}");
    assert!(has("web-list", "page=1"), "{lines:#?}");
    assert!(has("web-search", "search-marker-42"), "{lines:#?}");
    assert!(has("web-cast", "from="), "{lines:#?}");
    assert!(
        lines
            .iter()
            .all(|l| l["operator"]["user"] == aud.user.name()),
        "{lines:#?}"
    );
}

#[test]
fn a_live_recorded_session_is_followed_in_a_browser() {
    require_e2e!("chromium", "chromedriver", "npm", "chpasswd");
    let r = RecordedLogin::launched("weblive", Launch::LoginShell, "", |b| b);
    let before = r.tree.sessions();
    let mut term = r.sshd.login(&r.user).env("TERM", "xterm").interactive();
    term.expect(PROMPT, T);
    term.send_line(&format!("echo 'before-{OUTPUT_PAYLOAD}'"));
    term.expect(PROMPT, T);
    let session = loop {
        let now: Vec<PathBuf> = r
            .tree
            .sessions()
            .into_iter()
            .filter(|s| !before.contains(s))
            .collect();
        if let [s] = now.as_slice() {
            break s.clone();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let id = session.file_name().unwrap().to_str().unwrap().to_string();

    let aud = auditor("weblive-aud");
    let console = start_console(r.tree.record_dir(), aud.pam.name(), aud._group.name());
    let artefacts = TempDir::new("web-live-artefacts");
    let spec = browser_spec(
        "live",
        &console,
        &aud,
        &artefacts,
        json!({
            "session": id,
            "ready": "before-<img",
            "marker": "live-marker-42",
        }),
    );
    let mut browser = start_browser(&spec);
    let mut out = BufReader::new(browser.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "READY", "the browser did not get to follow");
    // While the browser follows: typed and printed now, after the page was opened.
    term.send_line("echo live-marker-$((6*7))");
    term.expect("live-marker-42", T);
    term.expect(PROMPT, T);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = browser.wait().unwrap();
    assert!(status.success(), "{status:?} {rest}");
    term.send_line("exit");
    term.wait(T);
    let seen: Value = serde_json::from_str(&rest).unwrap();
    eprintln!("browser saw: {seen:#}");

    let live_rows = seen["live_rows"].as_array().unwrap();
    let row = live_rows
        .iter()
        .filter_map(Value::as_str)
        .find(|row| row.contains(r.user.name()))
        .unwrap_or_else(|| panic!("no live row of {} in {live_rows:?}", r.user.name()));
    assert!(row.contains("live"), "{row}");
    let followed = seen["followed_text"].as_str().unwrap();
    assert!(followed.contains("live-marker-42"), "{followed}");
    assert!(followed.contains(OUTPUT_PAYLOAD), "{followed}");
    assert_inert(&seen, 3);
    let probes = seen["probes"].as_object().unwrap();
    assert_eq!(probes.len(), 4, "{seen}");
    for (path, status) in probes {
        assert_eq!(status, 404, "{path}");
    }
    keep_screenshots(artefacts.path(), &["live.png"]);

    let lines = web_access_lines(r.tree.record_dir());
    let follow = lines
        .iter()
        .find(|l| l["command"] == "web-follow")
        .unwrap_or_else(|| panic!("no web-follow line in {lines:#?}"));
    assert_eq!(follow["operator"]["user"], aud.user.name(), "{follow}");
    assert!(
        follow["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == id.as_str()),
        "{follow}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["command"] == "web-list" && l["args"].to_string().contains("state=live")),
        "{lines:#?}"
    );
}

/// Lines typed in the long session: more than one part of its timeline.
const TYPED_LINES: usize = 1500;

/// A session whose timeline is longer than one part: its page comes without the timeline, the
/// timeline comes from `/timeline` in parts of one build (a later part of a build not kept is
/// refused), a kept build is used again only while the files are unchanged, and in the browser
/// every entry arrives with its jump mark and a mark of the last part opens the player there.
#[test]
fn a_long_timeline_comes_in_parts_after_its_page() {
    require_e2e!("chromium", "chromedriver", "npm", "chpasswd", "curl");
    let r = RecordedLogin::launched("weblong", Launch::LoginShell, "", |b| b);
    let before = r.tree.sessions();
    let mut term = r.sshd.login(&r.user).env("TERM", "xterm").interactive();
    term.expect(PROMPT, T);
    for i in 0..TYPED_LINES {
        term.send_line(&format!(": typed-{i:04}"));
        if i % 100 == 99 {
            term.send_line(&format!("echo batch-$(( {i} + 1 ))"));
            term.expect(&format!("batch-{}", i + 1), T);
        }
    }
    term.send_line("sleep 1; echo long-end-$((6*7))");
    term.expect("long-end-42", T);
    term.expect(PROMPT, T);
    term.send_line("exit");
    term.wait(T);
    let (dir, id) = new_closed_session(&r, &before);

    let aud = auditor("weblong-aud");
    let console = start_console(r.tree.record_dir(), aud.pam.name(), aud._group.name());
    let cookie = console.session_cookie(aud.user.name(), PASSWORD);

    // The page: its players and where the timeline comes from, none of the timeline itself.
    let page = console.get(&format!("/session?id={id}"), &cookie);
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(html.contains("href=\"/play?id="), "{html}");
    assert!(
        html.contains(&format!("data-src=\"/timeline?id={id}\"")),
        "{html}"
    );
    assert!(!html.contains("typed-0"), "{html}");

    let part = |n: usize, v: Option<u64>| {
        let v = v.map(|v| format!("&v={v}")).unwrap_or_default();
        console.get(&format!("/timeline?id={id}&part={n}{v}"), &cookie)
    };
    // A build is kept only of files whose times have settled (2 s, as the catalog's entries):
    // let the closed session's files settle first.
    std::thread::sleep(Duration::from_millis(2500));
    let first = part(0, None);
    assert_eq!(first.status, 200, "{}", first.text());
    assert!(first
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let first: Value = serde_json::from_slice(&first.body).unwrap();
    let version = first["version"].as_u64().unwrap();
    let parts = first["parts"].as_u64().unwrap() as usize;
    assert!(parts >= 2, "one part only: {}", first["total"]);
    let mut entries: Vec<Value> = first["entries"].as_array().unwrap().clone();
    for n in 1..parts {
        let p = part(n, Some(version));
        assert_eq!(p.status, 200, "part {n}: {}", p.text());
        let p: Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(p["version"].as_u64(), Some(version));
        entries.extend(p["entries"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(entries.len() as u64, first["total"].as_u64().unwrap());
    // Every typed line is there once, in order, each a jump mark into its channel's player.
    // Typed faster than the shell prompts, a line may carry more than one prompt before it, or
    // be shown as typed to the program still running (`input`): both are the typed line.
    let typed_number = |e: &Value| -> Option<String> {
        let text = e["text"].as_str()?;
        // (What follows "[screen showed" is the screen, not the keys.)
        let text = text.split("[screen showed").next()?;
        let at = text.find(": typed-")? + ": typed-".len();
        (e["kind"] == "typed" || e["kind"] == "input")
            .then(|| text.get(at..at + 4).map(str::to_string))
            .flatten()
    };
    let typed: Vec<&Value> = entries
        .iter()
        .filter(|e| typed_number(e).is_some())
        .collect();
    let odd: Vec<&Value> = entries
        .iter()
        .filter(|e| typed_number(e).is_none())
        .collect();
    assert_eq!(typed.len(), TYPED_LINES, "{odd:?}");
    for (i, e) in typed.iter().enumerate() {
        assert_eq!(typed_number(e), Some(format!("{i:04}")), "{e}");
        let href = e["href"].as_str().unwrap_or_else(|| panic!("no jump: {e}"));
        assert!(
            href.starts_with(&format!("/play?id={id}&file=channel-1.jsonl&t=")),
            "{href}"
        );
    }
    // Without a login: nothing. Past the end, a later part without its version, a build never
    // made: refused.
    assert_eq!(console.curl(&format!("/timeline?id={id}"), &[]).status, 401);
    assert_eq!(part(parts, Some(version)).status, 404);
    assert_eq!(part(1, None).status, 400);
    assert_eq!(part(1, Some(version + 1000)).status, 409);

    // The build is kept while the files are the same; a file whose times changed (an edit
    // that keeps its size shows no other way) is read again.
    let again: Value = serde_json::from_slice(&part(0, None).body).unwrap();
    assert_eq!(again["version"].as_u64(), Some(version));
    let touched = Command::new("touch")
        .arg(dir.join("channel-1.jsonl"))
        .status()
        .unwrap();
    assert!(touched.success());
    let touched_at = std::time::Instant::now();
    let changed: Value = serde_json::from_slice(&part(0, None).body).unwrap();
    assert_ne!(changed["version"].as_u64(), Some(version));
    assert_eq!(changed["total"], first["total"]);
    // Changed so lately that a further change in the same clock tick would leave its times as
    // they are: not kept, read again (checked only while that is surely still so).
    let unsettled: Value = serde_json::from_slice(&part(0, None).body).unwrap();
    if touched_at.elapsed() < Duration::from_millis(1500) {
        assert_ne!(unsettled["version"], changed["version"]);
    }

    // In the browser: the parts arrive into the page, every entry with its jump mark; one of
    // the last part's marks opens the player at its moment.
    let artefacts = TempDir::new("web-long-artefacts");
    let spec = browser_spec(
        "timeline",
        &console,
        &aud,
        &artefacts,
        json!({
            "session": id,
            "jump": format!("$ : typed-{:04}", TYPED_LINES - 1),
            "shown": "typed-1",
        }),
    );
    let seen = run_browser(&spec);
    assert_eq!(seen["state"], "complete", "{seen}");
    assert_eq!(seen["parts"], parts.to_string(), "{seen}");
    let shown = seen["entries"].as_array().unwrap();
    assert_eq!(shown.len(), entries.len(), "{}", seen["status"]);
    let jumps = shown
        .iter()
        .filter(|e| {
            let text = e[0].as_str().unwrap();
            let keys = text.split("[screen showed").next().unwrap();
            keys.contains(": typed-") && (keys.contains(" typed ") || keys.contains(" input "))
        })
        .filter(|e| e[1].as_str().is_some_and(|h| h.starts_with("/play?")))
        .count();
    assert_eq!(jumps, TYPED_LINES);
    let url = seen["jump_url"].as_str().unwrap();
    assert!(url.contains("/play?") && url.contains("&t="), "{url}");
    assert!(
        seen["jump_text"].as_str().unwrap().contains("typed-1"),
        "{seen}"
    );
    assert_inert(&seen, 1);
    keep_screenshots(artefacts.path(), &["long-timeline.png"]);

    // Each part read left its access line.
    let lines = web_access_lines(r.tree.record_dir());
    let timeline_lines = lines
        .iter()
        .filter(|l| l["command"] == "web-timeline")
        .count();
    assert!(timeline_lines >= 2 * parts, "{lines:#?}");
}

/// An open list page, filtered on a user, refreshes itself: a recorded ssh login of that user
/// that starts while the page is open appears as live, and shows closed once it ends, with no
/// reload of the page and its filter kept. Only the refresh that showed the new session wrote
/// an access line.
#[test]
fn an_open_list_shows_a_new_login_and_its_end_without_a_reload() {
    require_e2e!("chromium", "chromedriver", "npm", "chpasswd");
    let r = RecordedLogin::launched("webrefr", Launch::LoginShell, "", |b| b);
    let aud = auditor("webrefr-aud");
    let console = start_console(r.tree.record_dir(), aud.pam.name(), aud._group.name());
    let artefacts = TempDir::new("web-refresh-artefacts");
    let spec = browser_spec(
        "refresh",
        &console,
        &aud,
        &artefacts,
        json!({
            "user_filter": r.user.name(),
        }),
    );
    let mut browser = start_browser(&spec);
    let mut out = BufReader::new(browser.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "READY", "the browser did not open the list");

    // The login starts while the list is open.
    let mut term = r.sshd.login(&r.user).env("TERM", "xterm").interactive();
    term.expect(PROMPT, T);
    term.send_line("echo refresh-$((6*7))");
    term.expect("refresh-42", T);
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "SEEN", "the new login did not appear");
    term.send_line("exit");
    term.wait(T);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = browser.wait().unwrap();
    assert!(status.success(), "{status:?} {rest}");
    let seen: Value = serde_json::from_str(&rest).unwrap();
    eprintln!("browser saw: {seen:#}");

    assert!(
        seen["before"]["count"]
            .as_str()
            .unwrap()
            .starts_with("0 session(s)"),
        "{seen}"
    );
    assert_eq!(
        seen["appeared"]["rows"].as_array().unwrap().len(),
        1,
        "{seen}"
    );
    assert_eq!(seen["first_state"], "live", "{seen}");
    assert_eq!(seen["last_state"], "closed", "{seen}");
    // The same document all along, at the same URL, with the filter as it was sent.
    assert_eq!(seen["same_document"], "once", "{seen}");
    assert_eq!(seen["after"]["url"], seen["before"]["url"], "{seen}");
    assert_eq!(seen["filter_value"], r.user.name(), "{seen}");
    assert!(
        seen["after"]["count"]
            .as_str()
            .unwrap()
            .starts_with("1 session(s)"),
        "{seen}"
    );
    assert_inert(&seen, 1);
    keep_screenshots(
        artefacts.path(),
        &["refreshed-live.png", "refreshed-closed.png"],
    );

    // Refreshes that showed nothing new (before the login, while it ran, its end) wrote no
    // line; the one that showed the new session did, naming it.
    let session = seen["session"].as_str().unwrap().replace("%2F", "/");
    let lines = web_access_lines(r.tree.record_dir());
    let refreshes: Vec<&Value> = lines
        .iter()
        .filter(|l| l["command"] == "web-list" && l["args"].to_string().contains("\"refresh\""))
        .collect();
    assert_eq!(refreshes.len(), 1, "{lines:#?}");
    assert!(
        refreshes[0]["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| *s == session.as_str()),
        "{}",
        refreshes[0]
    );
    assert_eq!(refreshes[0]["operator"]["user"], aud.user.name());
    assert!(seen["refreshes"].as_str().unwrap().parse::<u32>().unwrap() >= 2);
}

/// A recording of more than one piece of cast: the player's progress bar spans the whole
/// channel (its duration is the channel's, past the first piece), and seeking to the last
/// moments fetches the piece there and shows what was printed at the end.
#[test]
fn the_player_seeks_across_a_recording_of_many_pieces() {
    require_e2e!("chromium", "chromedriver", "npm", "chpasswd");
    let r = RecordedLogin::launched("webseek", Launch::LoginShell, "", |b| b);
    let before = r.tree.sessions();
    let mut term = r.sshd.login(&r.user).env("TERM", "xterm").interactive();
    term.expect(PROMPT, T);
    // About 5 MB of output: three pieces of record or more.
    term.send_line("head -c 3600000 /dev/zero | base64 -w 100 | tr A a; echo bulk-$((6*7))");
    term.expect("bulk-42", Duration::from_secs(120));
    term.expect(PROMPT, T);
    term.send_line("sleep 2; echo seek-marker-$((6*7))");
    term.expect("seek-marker-42", T);
    term.expect(PROMPT, T);
    term.send_line("exit");
    term.wait(T);
    let (dir, id) = new_closed_session(&r, &before);
    let size = std::fs::metadata(dir.join("channel-1.jsonl"))
        .unwrap()
        .len();
    assert!(size > 4 << 20, "{size} bytes of record");

    let aud = auditor("webseek-aud");
    let console = start_console(r.tree.record_dir(), aud.pam.name(), aud._group.name());
    let artefacts = TempDir::new("web-seek-artefacts");
    let spec = browser_spec(
        "seek",
        &console,
        &aud,
        &artefacts,
        json!({
            "session": id,
            "marker": "seek-marker-42",
        }),
    );
    let seen = run_browser(&spec);
    eprintln!("browser saw: {seen:#}");
    let next: f64 = seen["next"].as_str().unwrap().parse().unwrap();
    let header: f64 = seen["duration_header"].as_str().unwrap().parse().unwrap();
    let duration = seen["duration"].as_f64().unwrap();
    // The bar spans the channel, not the first piece; the seek landed in a later piece.
    assert!(duration > next, "{seen}");
    assert!((duration - header).abs() < 0.01, "{seen}");
    let from: f64 = seen["from"].as_str().unwrap().parse().unwrap();
    assert!(from > next, "{seen}");
    assert!(
        seen["text"].as_str().unwrap().contains("seek-marker-42"),
        "{seen}"
    );
    assert_inert(&seen, 1);
    keep_screenshots(artefacts.path(), &["sought.png"]);
}
