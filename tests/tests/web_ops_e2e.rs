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
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=sessrec-web test"])
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
