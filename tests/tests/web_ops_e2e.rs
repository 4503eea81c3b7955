//! The web console's operations side, against real PAM logins and real recorded sessions: TLS
//! with a certificate made here (curl and Chromium), the refusal of any non-loopback address
//! without TLS, login by a trusted reverse proxy's header, ending a live ssh session from the
//! browser, and export downloads. Every view is checked in the chained access log.

#[path = "web_support/console.rs"]
mod console;

use std::path::Path;
use std::process::Command;

use console::*;
use sessrec_tests::*;

/// A self-signed certificate for 127.0.0.1 and its key (openssl); the SPKI hash Chromium pins.
struct Certificate {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    spki_sha256: String,
}

fn make_certificate(dir: &Path) -> Certificate {
    make_named_certificate(dir, "sessrec-web test")
}

/// A self-signed certificate whose subject is `CN=cn`, in `dir`.
fn make_named_certificate(dir: &Path, cn: &str) -> Certificate {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let subject = format!("/CN={cn}");
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", &subject])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(o.status.success(), "openssl req: {}", stderr(&o));
    let o = Command::new("sh")
        .arg("-c")
        .arg(
            "openssl x509 -pubkey -noout -in \"$1\" | openssl pkey -pubin -outform der \
             | openssl dgst -sha256 -binary | base64",
        )
        .arg("sh")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    Certificate {
        cert,
        key,
        spki_sha256: stdout(&o).trim().to_string(),
    }
}

/// The SHA-256 fingerprint of a certificate file, or of the one a TLS server at `addr` sends.
fn fingerprint(cert: Option<&Path>, addr: Option<&str>) -> String {
    let script = match (cert, addr) {
        (Some(_), _) => "openssl x509 -noout -fingerprint -sha256 -in \"$1\"",
        _ => {
            "openssl s_client -connect \"$1\" -servername localhost </dev/null 2>/dev/null \
              | openssl x509 -noout -fingerprint -sha256"
        }
    };
    let arg = cert
        .map(|c| c.to_str().unwrap().to_string())
        .or(addr.map(str::to_string))
        .unwrap();
    let o = Command::new("sh")
        .args(["-c", script, "sh", &arg])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let f = stdout(&o).trim().to_string();
    assert!(f.contains("Fingerprint="), "{f}");
    f
}

/// Sends the console SIGHUP and returns what it then logged about its certificate.
fn reload(console: &Console) -> String {
    let from = console.log_len();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(console.pid() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    console.wait_log(from, "TLS certificate")
}

/// On SIGHUP the console reads its certificate files again: a renewed certificate is what new
/// TLS connections get, with no restart; a broken file (or a key that is not the
/// certificate's) is refused with an error naming the file, and the certificate served
/// before stays.
#[test]
fn a_renewed_certificate_is_served_after_sighup_and_a_broken_one_is_not() {
    require_e2e!("curl", "openssl");
    let dir = TempDir::new("web-reload");
    let (old_dir, new_dir, served) = (dir.join("old"), dir.join("new"), dir.join("served"));
    for d in [&old_dir, &new_dir, &served] {
        std::fs::create_dir_all(d).unwrap();
    }
    let old = make_named_certificate(&old_dir, "sessrec-web before renewal");
    let new = make_named_certificate(&new_dir, "sessrec-web renewed");
    let (cert, key) = (served.join("cert.pem"), served.join("key.pem"));
    let install = |c: &Certificate| {
        // As a renewal tool does: new files renamed into place.
        std::fs::copy(&c.cert, served.join("cert.tmp")).unwrap();
        std::fs::copy(&c.key, served.join("key.tmp")).unwrap();
        std::fs::rename(served.join("key.tmp"), &key).unwrap();
        std::fs::rename(served.join("cert.tmp"), &cert).unwrap();
    };
    install(&old);
    let records = TempDir::new("web-reload-records");
    let mut console = start(
        records.path(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let addr = console.base.trim_start_matches("https://").to_string();
    let served_now = || fingerprint(None, Some(&addr));
    let (old_print, new_print) = (
        fingerprint(Some(&old.cert), None),
        fingerprint(Some(&new.cert), None),
    );
    assert_ne!(old_print, new_print);
    assert_eq!(served_now(), old_print);
    // A connection opened before the renewal.
    console.ca = Some(old.cert.clone());
    assert_eq!(console.curl("/login", &[]).status, 200);

    // Renewed: after SIGHUP new connections get the new certificate, which curl then trusts.
    install(&new);
    assert_eq!(served_now(), old_print, "changed without a reload");
    let said = reload(&console);
    assert!(said.contains("reloaded from"), "{said}");
    assert_eq!(served_now(), new_print);
    console.ca = Some(new.cert.clone());
    assert_eq!(console.curl("/login", &[]).status, 200);

    // A broken certificate file: refused, named, the renewed certificate still served.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n").unwrap();
    let said = reload(&console);
    assert!(said.contains("not reloaded"), "{said}");
    assert!(said.contains(cert.to_str().unwrap()), "{said}");
    assert_eq!(served_now(), new_print);
    assert_eq!(console.curl("/login", &[]).status, 200);

    // The old certificate with the new key: they do not belong together, refused.
    std::fs::copy(&old.cert, &cert).unwrap();
    let said = reload(&console);
    assert!(said.contains("not reloaded"), "{said}");
    assert!(said.contains(key.to_str().unwrap()), "{said}");
    assert_eq!(served_now(), new_print);
}

/// An auditor (in the group, with a password) and a PAM service that checks passwords.
struct Auditors {
    group: TestGroup,
    auditor: TestUser,
    pam: PamService,
}

const AUDITOR_PW: &str = "Aud1tor-pw";

fn auditors(tag: &str) -> Auditors {
    let group = TestGroup::new(tag);
    let auditor = TestUser::new(tag, Path::new("/bin/sh"));
    auditor.add_to_group(group.name());
    set_password(auditor.name(), AUDITOR_PW);
    let pam = PamService::new("auth required pam_unix.so\naccount required pam_unix.so\n");
    Auditors {
        group,
        auditor,
        pam,
    }
}

#[test]
fn tls_serves_the_console_with_secure_cookies() {
    require_e2e!(
        "chromium",
        "chromedriver",
        "npm",
        "chpasswd",
        "curl",
        "openssl"
    );
    let dir = TempDir::new("web-tls");
    let certificate = make_certificate(dir.path());
    let records = TempDir::new("web-tls-records");
    let a = auditors("webtls");
    let mut console = start(
        records.path(),
        &[
            "--pam-service",
            a.pam.name(),
            "--group",
            a.group.name(),
            "--tls-cert",
            certificate.cert.to_str().unwrap(),
            "--tls-key",
            certificate.key.to_str().unwrap(),
        ],
    );
    assert!(
        console.base.starts_with("https://127.0.0.1:"),
        "{}",
        console.base
    );
    console.ca = Some(certificate.cert.clone());

    // curl checks the chain against the certificate made here.
    let form = console.curl("/login", &[]);
    assert_eq!(form.status, 200, "{}", form.head);
    let login_cookie = form
        .headers("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("sessrec_login_csrf="))
        .unwrap();
    assert!(login_cookie.contains("; Secure"), "{login_cookie}");
    assert!(
        form.header("strict-transport-security").is_some(),
        "{}",
        form.head
    );
    let login = console.log_in(a.auditor.name(), AUDITOR_PW);
    assert_eq!(login.status, 303, "{}", login.head);
    let session_cookie = login
        .headers("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("sessrec_session="))
        .unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Max-Age=", "Secure"] {
        assert!(session_cookie.contains(attribute), "{session_cookie}");
    }
    let cookie = login.cookie("sessrec_session").unwrap();
    let list = console.get("/sessions", &cookie);
    assert_eq!(list.status, 200, "{}", list.head);
    assert!(list.text().contains("0 session(s)"), "{}", list.text());

    // Plain HTTP on the TLS port gets no HTTP answer, and a client that does not trust the
    // certificate gets no page.
    let plain = console.base.replacen("https://", "http://", 1);
    let o = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("{plain}/login"))
        .output()
        .unwrap();
    assert_eq!(stdout(&o).trim(), "000", "{}", stderr(&o));
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "/dev/null"])
        .arg(format!("{}/login", console.base))
        .output()
        .unwrap();
    assert!(!o.status.success(), "an untrusted certificate was accepted");

    // Chromium, the certificate pinned by its key: a PAM login over TLS, a secure context, a
    // session cookie script cannot read.
    let artefacts = TempDir::new("web-tls-artefacts");
    let seen = browser(&[
        "tls",
        artefacts.join("profile").to_str().unwrap(),
        artefacts.path().to_str().unwrap(),
        &console.base,
        &certificate.spki_sha256,
        a.auditor.name(),
        AUDITOR_PW,
    ]);
    assert!(
        seen["url"].as_str().unwrap().ends_with("/sessions"),
        "{seen}"
    );
    assert_eq!(seen["h1"], "Sessions", "{seen}");
    assert_eq!(seen["protocol"], "https:", "{seen}");
    assert_eq!(seen["secure_context"], true, "{seen}");
    assert_eq!(seen["script_cookies"], "", "{seen}");
    let browser_cookie = seen["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "sessrec_session")
        .unwrap_or_else(|| panic!("no session cookie in {seen}"));
    assert_eq!(browser_cookie["secure"], true, "{browser_cookie}");
    assert_eq!(browser_cookie["httpOnly"], true, "{browser_cookie}");
    assert_eq!(browser_cookie["sameSite"], "Strict", "{browser_cookie}");
    let shot = artefacts.join("tls-list.png");
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);

    // Both lists (curl's and the browser's) were logged, with the peer's address.
    let lines = access_lines_of(records.path(), "web-list", a.auditor.name());
    assert_eq!(lines.len(), 2, "{lines:#?}");
    for l in &lines {
        assert!(
            l["operator"]["remote_addr"]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:"),
            "{l}"
        );
    }
}

fn assert_fails_saying(o: &std::process::Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    assert!(err.contains(needle), "no {needle:?} in:\n{err}");
}

#[test]
fn a_non_loopback_address_needs_tls() {
    require_e2e!();
    let records = TempDir::new("web-notls");
    for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:8080"] {
        let o = Command::new(products().sessrec_web())
            .args(["--web-config", "/dev/null", "--dir"])
            .arg(records.path())
            .args(["--listen", listen])
            .output()
            .unwrap();
        assert_fails_saying(&o, 2, "without TLS");
    }
    // The same through the configuration file.
    let file = records.join("web.toml");
    std::fs::write(&file, "listen = \"0.0.0.0:0\"\n").unwrap();
    let o = Command::new(products().sessrec_web())
        .arg("--web-config")
        .arg(&file)
        .arg("--dir")
        .arg(records.path())
        .output()
        .unwrap();
    assert_fails_saying(&o, 2, "refusing to listen on 0.0.0.0:0 without TLS");
    // A certificate that is not one: a clear error before anything listens.
    let bad = records.join("bad.pem");
    std::fs::write(&bad, "not a certificate\n").unwrap();
    let o = Command::new(products().sessrec_web())
        .args(["--web-config", "/dev/null", "--dir"])
        .arg(records.path())
        .args(["--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&bad)
        .arg("--tls-key")
        .arg(&bad)
        .arg("--player")
        .arg(player_dir())
        .output()
        .unwrap();
    assert_fails_saying(&o, 1, "no CERTIFICATE");
}

/// A console whose web.toml (`name`, in `dir`) trusts the reverse proxies at `proxies`, with
/// PAM service `pam` and access for `group`.
fn start_behind_proxies(
    dir: &Path,
    name: &str,
    proxies: &[&str],
    pam: &PamService,
    group: &TestGroup,
) -> Console {
    let file = dir.join(name);
    let trusted: Vec<String> = proxies.iter().map(|p| format!("\"{p}\"")).collect();
    std::fs::write(
        &file,
        format!(
            "[proxy]\ntrusted = [{}]\nuser_header = \"X-Remote-User\"\n",
            trusted.join(", ")
        ),
    )
    .unwrap();
    start(
        dir,
        &[
            "--web-config",
            file.to_str().unwrap(),
            "--pam-service",
            pam.name(),
            "--group",
            group.name(),
        ],
    )
}

#[test]
fn a_proxy_header_logs_in_only_from_the_trusted_proxy() {
    require_e2e!("chromium", "chromedriver", "npm", "curl");
    let records = TempDir::new("web-proxy-records");
    let group = TestGroup::new("webprx");
    let auditor = TestUser::new("webprx", Path::new("/bin/sh"));
    auditor.add_to_group(group.name());
    let outsider = TestUser::new("webprxout", Path::new("/bin/sh"));
    let pam = PamService::new("auth required pam_deny.so\naccount required pam_deny.so\n");
    let console = start_behind_proxies(records.path(), "proxy.toml", &["127.0.0.2"], &pam, &group);
    let as_user = |user: &str| format!("X-Remote-User: {user}");
    let from_proxy = |path: &str, user: &str, extra: &[&str]| {
        let mut args = vec!["--interface", "127.0.0.2", "-H"];
        let header = as_user(user);
        args.push(&header);
        args.extend_from_slice(extra);
        console.curl(path, &args)
    };

    // From the proxy's address the header logs the auditor in.
    let list = from_proxy("/sessions", auditor.name(), &[]);
    assert_eq!(list.status, 200, "{}\n{}", list.head, list.text());
    assert!(
        list.text()
            .contains(&format!("<span class=\"who\">{}</span>", auditor.name())),
        "{}",
        list.text()
    );
    let lines = access_lines_of(records.path(), "web-list", auditor.name());
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0]["operator"]["remote_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.2:"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[0]["operator"]["uid"], auditor.uid(), "{}", lines[0]);

    // The same header from another address is ignored: no page, no access line.
    let direct = console.curl("/sessions", &["-H", &as_user(auditor.name())]);
    assert_eq!(direct.status, 303, "{}", direct.head);
    assert_eq!(direct.header("location").as_deref(), Some("/login"));
    let cast = console.curl(
        "/cast?id=x&file=channel-1.jsonl",
        &["-H", &as_user(auditor.name())],
    );
    assert_eq!(cast.status, 401, "{}", cast.head);

    // From the proxy, a user outside the group, or a header that is no user name, is refused.
    let r = from_proxy("/sessions", outsider.name(), &[]);
    assert_eq!(r.status, 403, "{}", r.head);
    let r = console.curl(
        "/sessions",
        &["--interface", "127.0.0.2", "-H", "X-Remote-User: a\tb"],
    );
    assert_eq!(r.status, 403, "{}", r.head);

    // Proxied logins still need the CSRF token to change anything.
    let r = from_proxy("/logout", auditor.name(), &["--data-raw", "csrf=wrong"]);
    assert_eq!(r.status, 403, "{}", r.head);
    let csrf = list
        .text()
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .unwrap()
        .to_string();
    let r = from_proxy(
        "/logout",
        auditor.name(),
        &["--data-raw", &format!("csrf={csrf}")],
    );
    assert_eq!(r.status, 303, "{}", r.head);

    // A browser on another address than the proxy's, sending the header itself: the login page.
    let artefacts = TempDir::new("web-proxy-artefacts");
    let seen = browser(&[
        "proxy",
        artefacts.join("profile-direct").to_str().unwrap(),
        artefacts.path().to_str().unwrap(),
        &console.base,
        "X-Remote-User",
        auditor.name(),
    ]);
    assert!(seen["url"].as_str().unwrap().ends_with("/login"), "{seen}");
    assert_eq!(seen["who"], "", "{seen}");
    // Only the one list from the proxy was ever served.
    assert_eq!(web_access_lines(records.path()).len(), 1);

    // A proxy on the browser's own address (127.0.0.1): the browser is logged in by the header.
    let local = start_behind_proxies(records.path(), "local.toml", &["127.0.0.1"], &pam, &group);
    let seen = browser(&[
        "proxy",
        artefacts.join("profile-proxied").to_str().unwrap(),
        artefacts.path().to_str().unwrap(),
        &local.base,
        "X-Remote-User",
        auditor.name(),
    ]);
    assert!(
        seen["url"].as_str().unwrap().ends_with("/sessions"),
        "{seen}"
    );
    assert_eq!(seen["h1"], "Sessions", "{seen}");
    assert_eq!(seen["who"], auditor.name(), "{seen}");
    let lines = access_lines_of(records.path(), "web-list", auditor.name());
    assert_eq!(lines.len(), 2, "{lines:#?}");
}

/// Through a trusted proxy the access line names the client the proxy forwarded for (the
/// right-most `X-Forwarded-For` entry that is not a trusted proxy) and the proxy beside it; the
/// header from anyone else, or one whose deciding entry is no address, is not believed.
#[test]
fn a_proxied_access_line_names_the_client_and_the_proxy() {
    require_e2e!("curl", "chpasswd");
    let records = TempDir::new("web-xff-records");
    let group = TestGroup::new("webxff");
    let auditor = TestUser::new("webxff", Path::new("/bin/sh"));
    auditor.add_to_group(group.name());
    set_password(auditor.name(), "Xff-pw-1");
    let pam = PamService::new("auth required pam_unix.so\naccount required pam_unix.so\n");
    let console = start_behind_proxies(
        records.path(),
        "xff.toml",
        &["127.0.0.2", "127.0.0.3"],
        &pam,
        &group,
    );
    let user_header = format!("X-Remote-User: {}", auditor.name());
    let list_lines = || access_lines_of(records.path(), "web-list", auditor.name());

    // Two proxies in a row (127.0.0.3, then 127.0.0.2 connecting); what the client wrote
    // itself on the left is passed over.
    let r = console.curl(
        "/sessions?user=through-proxies",
        &[
            "--interface",
            "127.0.0.2",
            "-H",
            &user_header,
            "-H",
            "X-Forwarded-For: 6.6.6.6, 203.0.113.9",
            "-H",
            "X-Forwarded-For: 127.0.0.3",
        ],
    );
    assert_eq!(r.status, 200, "{}\n{}", r.head, r.text());
    let lines = list_lines();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let operator = &lines[0]["operator"];
    assert_eq!(operator["remote_addr"], "203.0.113.9", "{operator}");
    assert!(
        operator["proxy_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.2:"),
        "{operator}"
    );

    // The deciding entry is no address: nothing in the header is believed.
    let r = console.curl(
        "/sessions?user=garbled",
        &[
            "--interface",
            "127.0.0.2",
            "-H",
            &user_header,
            "-H",
            "X-Forwarded-For: 203.0.113.9, not-an-address",
        ],
    );
    assert_eq!(r.status, 200, "{}", r.head);
    let lines = list_lines();
    let operator = &lines[1]["operator"];
    assert!(
        operator["remote_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.2:"),
        "{operator}"
    );
    assert!(operator.get("proxy_addr").is_none(), "{operator}");

    // A browser connecting directly (a PAM login) names whatever client it likes: ignored.
    let cookie = console.session_cookie(auditor.name(), "Xff-pw-1");
    let r = console.curl(
        "/sessions?user=direct",
        &[
            "-H",
            &format!("Cookie: sessrec_session={cookie}"),
            "-H",
            "X-Forwarded-For: 203.0.113.66",
        ],
    );
    assert_eq!(r.status, 200, "{}", r.head);
    let lines = list_lines();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let operator = &lines[2]["operator"];
    assert!(
        operator["remote_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{operator}"
    );
    assert!(operator.get("proxy_addr").is_none(), "{operator}");
}

const T: std::time::Duration = std::time::Duration::from_secs(30);

#[test]
fn a_member_of_the_kill_group_ends_a_live_session_from_the_browser() {
    require_e2e!("chromium", "chromedriver", "npm", "chpasswd", "curl");
    let r = RecordedLogin::start("webkill");
    let mut term = r.sshd.login(&r.user).interactive();
    term.expect(r"\$ $", T);
    term.send_line("echo live-$((2*21))");
    term.expect("live-42", T);
    let session_dir = r.tree.wait_sessions(1, T).remove(0);
    let session = session_id(&session_dir);
    let records = r.tree.record_dir();

    let a = auditors("webkaud");
    let killers = TestGroup::new("webkil");
    let killer = TestUser::new("webkil", Path::new("/bin/sh"));
    killer.add_to_group(a.group.name());
    killer.add_to_group(killers.name());
    set_password(killer.name(), "K1ller-pw");
    let console = start(
        records,
        &[
            "--pam-service",
            a.pam.name(),
            "--group",
            a.group.name(),
            "--kill-group",
            killers.name(),
        ],
    );

    // An auditor outside the kill group sees no form, and a POST with its valid token is
    // refused before anything is logged or signalled.
    let auditor_cookie = console.session_cookie(a.auditor.name(), AUDITOR_PW);
    let page = console.get(&format!("/session?id={session}"), &auditor_cookie);
    assert_eq!(page.status, 200);
    assert!(!page.text().contains("id=\"kill\""), "{}", page.text());
    let csrf = csrf_of(&page.text());
    let r403 = console.post(
        "/kill",
        &auditor_cookie,
        &format!("csrf={csrf}&id={session}&confirm=yes"),
    );
    assert_eq!(r403.status, 403, "{}", r403.text());
    // A killer without the right token: refused as well.
    let killer_cookie = console.session_cookie(killer.name(), "K1ller-pw");
    let r = console.post(
        "/kill",
        &killer_cookie,
        &format!("csrf={csrf}&id={session}&confirm=yes"),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = console.post(
        "/kill",
        &killer_cookie,
        &format!("id={session}&confirm=yes"),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    // The right token without the confirmation: nothing happens either.
    let killer_csrf = csrf_of(
        &console
            .get(&format!("/session?id={session}"), &killer_cookie)
            .text(),
    );
    let r = console.post(
        "/kill",
        &killer_cookie,
        &format!("csrf={killer_csrf}&id={session}"),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(access_lines_of(records, "web-kill", a.auditor.name()).is_empty());
    assert!(access_lines_of(records, "web-kill", killer.name()).is_empty());
    // Still live: the shell answers.
    term.send_line("echo still-$((2*21))");
    term.expect("still-42", T);

    let message = "ended from the web console";
    let artefacts = TempDir::new("web-kill-artefacts");
    let seen = browser(&[
        "kill",
        artefacts.join("profile").to_str().unwrap(),
        artefacts.path().to_str().unwrap(),
        &console.base,
        a.auditor.name(),
        AUDITOR_PW,
        killer.name(),
        "K1ller-pw",
        &session,
        message,
    ]);
    assert_eq!(seen["auditor_kill_form"], false, "{seen}");
    assert!(
        seen["auditor_state"].as_str().unwrap().contains("live"),
        "{seen}"
    );
    assert_eq!(seen["killer_kill_form"], true, "{seen}");
    assert_eq!(seen["unconfirmed_stays"], true, "{seen}");
    assert!(
        seen["killed"]
            .as_str()
            .unwrap()
            .contains("channel-1: ended"),
        "{seen}"
    );
    assert_eq!(seen["kill_error"], "", "{seen}");
    assert!(
        seen["after_state"].as_str().unwrap().contains("closed"),
        "{seen}"
    );
    assert_eq!(seen["after_kill_form"], false, "{seen}");

    // The user was told, the recorder wrote who ended it.
    term.expect(&format!("ended by the administrator: {message}"), T);
    let channel = channel_files(&session_dir).remove(0);
    wait_last_event(&channel, "channel.end", T);
    assert_chain_ok(&channel);
    let end = serde_json::Value::Object(events(&channel, "channel.end").pop().unwrap());
    assert_eq!(end["admin_message"], message, "{end}");
    assert_eq!(end["ended_by"]["user"], killer.name(), "{end}");
    assert_eq!(end["ended_by"]["uid"], killer.uid(), "{end}");
    assert!(
        end["ended_by"]["remote_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{end}"
    );

    // One kill line, by the killer, naming the session; the pages each left theirs.
    let kills = access_lines_of(records, "web-kill", killer.name());
    assert_eq!(kills.len(), 1, "{kills:#?}");
    assert_eq!(kills[0]["sessions"][0], session.as_str(), "{}", kills[0]);
    assert!(
        kills[0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().contains(message)),
        "{}",
        kills[0]
    );
    for user in [a.auditor.name(), killer.name()] {
        assert!(
            !access_lines_of(records, "web-show", user).is_empty(),
            "no web-show line of {user}"
        );
    }
    // Nothing live is left to end.
    let page = console.get(&format!("/session?id={session}"), &killer_cookie);
    let again = console.post(
        "/kill",
        &killer_cookie,
        &format!("csrf={}&id={session}&confirm=yes", csrf_of(&page.text())),
    );
    assert_eq!(again.status, 409, "{}", again.text());
    assert!(again.text().contains("no live channel"), "{}", again.text());
}

/// The CSRF token of a logged-in page (its logout form's).
fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token in {page}"))
        .to_string()
}

/// A TCP service on 127.0.0.1 answering one request with `reply`; its port.
fn one_shot_service(reply: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut c, _)) = listener.accept() {
            c.set_read_timeout(Some(T)).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = c.write_all(reply.as_bytes());
        }
    });
    port
}

#[test]
fn exports_download_in_the_browser_as_the_cli_writes_them() {
    require_e2e!("chromium", "chromedriver", "npm", "chpasswd", "curl");
    const REPLY: &str = "HTTP/1.0 200 OK\r\n\r\npcap-payload-42\n";
    let port = one_shot_service(REPLY);
    let r = RecordedLogin::launched(
        "webdl",
        Launch::LoginShell,
        &format!(
            "\n[[forward.allow]]\nusers = [\"srt-*\"]\nto = [\"127.0.0.1:{port}\"]\nrecord_payload = true\n"
        ),
        |b| b,
    );
    // A shell session with output, then a connection through the bastion whose payload is kept.
    let mut term = r.sshd.login(&r.user).env("TERM", "xterm").interactive();
    term.expect(r"\$ (\x1b\[K)?$", T);
    term.send_line("echo download-$((6*7)) '<b>\"x\"</b>'");
    term.expect("download-42", T);
    term.send_line("exit");
    term.wait_code(0, T);
    let shell = r.tree.wait_sessions(1, T).remove(0);
    wait_last_event(&shell.join("session.jsonl"), "logout", T);
    let out = r.sshd.login(&r.user).exec(
        &format!("connect 127.0.0.1 {port}"),
        b"GET / HTTP/1.0\r\n\r\n",
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("pcap-payload-42"),
        "{out:?}"
    );
    let sessions = r.tree.wait_sessions(2, T);
    let connect = sessions.iter().find(|s| **s != shell).unwrap().clone();
    wait_last_event(&connect.join("session.jsonl"), "logout", T);
    let (shell_id, connect_id) = (session_id(&shell), session_id(&connect));
    let records = r.tree.record_dir();

    let a = auditors("webdl");
    let console = start(
        records,
        &["--pam-service", a.pam.name(), "--group", a.group.name()],
    );
    let artefacts = TempDir::new("web-dl-artefacts");
    let saved = TempDir::new("web-dl-saved");
    let seen = browser(&[
        "download",
        artefacts.join("profile").to_str().unwrap(),
        artefacts.path().to_str().unwrap(),
        &console.base,
        a.auditor.name(),
        AUDITOR_PW,
        &shell_id,
        saved.path().to_str().unwrap(),
    ]);
    let formats: Vec<&str> = seen["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["format"].as_str().unwrap())
        .collect();
    // No PCAP link for a session without a kept payload.
    assert_eq!(formats, ["asciicast", "text", "json", "html"], "{seen}");
    // Saved under the names the console gave, byte for byte what `sessrec export` writes.
    let player = player_dir();
    let expected = [
        (
            format!("sessrec-{shell_id}-channel-1.cast"),
            vec!["asciicast-v2".to_string()],
            format!("{shell_id}/channel-1.jsonl"),
        ),
        (
            format!("sessrec-{shell_id}.txt"),
            vec!["text".into()],
            shell_id.clone(),
        ),
        (
            format!("sessrec-{shell_id}.jsonl"),
            vec!["json".into()],
            shell_id.clone(),
        ),
        (
            format!("sessrec-{shell_id}.html"),
            vec![
                "html".into(),
                "--player".into(),
                player.to_str().unwrap().to_string(),
            ],
            shell_id.clone(),
        ),
    ];
    let names: Vec<String> = expected.iter().map(|e| e.0.clone()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(seen["files"], serde_json::json!(sorted), "{seen}");
    for (name, format, target) in &expected {
        let mut args = vec!["export", target.as_str(), "--format"];
        args.extend(format.iter().map(String::as_str));
        let cli = run_sessrec(records, &args);
        assert!(cli.status.success(), "{cli:?}");
        let got = std::fs::read(saved.join(name)).unwrap();
        assert!(
            got == cli.stdout,
            "{name} differs from sessrec export:\n{}\n---\n{}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&cli.stdout)
        );
    }
    let text = std::fs::read_to_string(saved.join(&names[1])).unwrap();
    assert!(text.contains("download-42"), "{text}");
    assert!(text.contains("[integrity: verified"), "{text}");

    // The connect session: its PCAP, as the CLI exports it.
    let saved_pcap = TempDir::new("web-dl-pcap");
    let seen = browser(&[
        "download",
        artefacts.join("profile-pcap").to_str().unwrap(),
        artefacts.path().to_str().unwrap(),
        &console.base,
        a.auditor.name(),
        AUDITOR_PW,
        &connect_id,
        saved_pcap.path().to_str().unwrap(),
    ]);
    assert!(
        seen["links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["format"] == "pcap"),
        "{seen}"
    );
    let pcap_name = format!("sessrec-{connect_id}.pcap");
    assert!(
        seen["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == pcap_name.as_str()),
        "{seen}"
    );
    let got = std::fs::read(saved_pcap.join(&pcap_name)).unwrap();
    let cli = run_sessrec(records, &["export", &connect_id, "--format", "pcap"]);
    assert!(cli.status.success(), "{cli:?}");
    assert!(got == cli.stdout, "the PCAP differs from sessrec export");
    assert!(
        String::from_utf8_lossy(&got).contains("pcap-payload-42"),
        "the PCAP holds the reply"
    );

    // Headers: an attachment with the safe name, the CSP, and nothing for a stranger id or a
    // channel that is a path.
    let cookie = console.session_cookie(a.auditor.name(), AUDITOR_PW);
    let r = console.get(&format!("/download?id={shell_id}&format=text"), &cookie);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-disposition").as_deref(),
        Some(format!("attachment; filename=\"sessrec-{shell_id}.txt\"").as_str())
    );
    assert!(r.header("content-security-policy").is_some(), "{}", r.head);
    for bad in [
        format!("/download?id={shell_id}&format=text&file=..%2Fsession.jsonl"),
        format!("/download?id={shell_id}&format=exe"),
        format!("/download?id={shell_id}&format=pcap"),
        "/download?id=..%2F..%2Fetc&format=text".to_string(),
    ] {
        let r = console.get(&bad, &cookie);
        assert_eq!(r.status, 404, "{bad}: {}", r.head);
    }
    // Not logged in: no export.
    let r = console.curl(&format!("/download?id={shell_id}&format=text"), &[]);
    assert_eq!(r.status, 303, "{}", r.head);

    // Every download left its line: four of each session (its PCAP too for the connect
    // session's), and curl's.
    let lines = access_lines_of(records, "web-download", a.auditor.name());
    assert_eq!(lines.len(), 10, "{lines:#?}");
    for format in ["asciicast", "text", "json", "html"] {
        assert!(
            lines.iter().any(|l| l["sessions"][0] == shell_id.as_str()
                && l["args"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| *a == format!("--format={format}"))),
            "no {format} download line in {lines:#?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l["sessions"][0] == connect_id.as_str()),
        "{lines:#?}"
    );
    // And each session page the browser opened.
    assert_eq!(
        access_lines_of(records, "web-show", a.auditor.name()).len(),
        2
    );
}
