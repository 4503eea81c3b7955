//! The RHEL 9 package: `packaging/build-rpm.sh` builds it here (rpmbuild from Debian's `rpm`),
//! and `rpm -qlvp` shows the right files, owners and modes: the setuid recorder, the PAM module
//! in /usr/lib64/security, the 0700 record tree, the conffile, the units and every man page.
//! The package is only inspected, never installed.

mod pkg_support;

use std::collections::BTreeMap;
use std::process::Command;

use pkg_support::*;
use sessrec_tests::*;

/// `rpm -qlvp` lines by path: (mode string, owner, group).
fn listing(rpm: &std::path::Path) -> BTreeMap<String, (String, String, String)> {
    let out = run(Command::new("rpm").arg("-qlvp").arg(rpm));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // mode links owner group size month day time/year path [-> target]
            let path = f.get(8)?.to_string();
            Some((path, (f[0].to_string(), f[2].to_string(), f[3].to_string())))
        })
        .collect()
}

fn query(rpm: &std::path::Path, args: &[&str]) -> String {
    let out = run(Command::new("rpm").args(args).arg(rpm));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn rpm_has_the_right_files_owners_and_modes() {
    if !require_programs(&["rpmbuild", "rpm", "objdump"]) {
        return;
    }
    let out = TempDir::new("rpm");
    let rpm = build_package("build-rpm.sh", out.path());
    let files = listing(&rpm);
    let expect = |path: &str, mode: &str| {
        let (m, owner, group) = files
            .get(path)
            .unwrap_or_else(|| panic!("{path} not in the rpm: {files:#?}"));
        assert_eq!(
            (m.as_str(), owner.as_str(), group.as_str()),
            (mode, "root", "root"),
            "{path}"
        );
    };
    expect("/usr/bin/sessrec-shell", "-rwsr-xr-x");
    expect("/usr/bin/sessrec", "-rwxr-xr-x");
    expect("/usr/sbin/sudo-iolog-import", "-rwxr-xr-x");
    expect("/usr/sbin/sessrec-audit-import", "-rwxr-xr-x");
    expect(
        "/usr/lib/systemd/system/sessrec-audit-import.service",
        "-rw-r--r--",
    );
    expect(
        "/usr/lib/systemd/system/sessrec-heartbeat.service",
        "-rw-r--r--",
    );
    expect(
        "/usr/lib/systemd/system/sessrec-heartbeat.timer",
        "-rw-r--r--",
    );
    expect(
        "/usr/lib/systemd/system/sessrec-compress.service",
        "-rw-r--r--",
    );
    expect(
        "/usr/lib/systemd/system/sessrec-compress.timer",
        "-rw-r--r--",
    );
    expect("/usr/sbin/sessrec-web", "-rwxr-xr-x");
    expect("/usr/lib/systemd/system/sessrec-web.service", "-rw-r--r--");
    expect("/etc/pam.d/sessrec-web", "-rw-r--r--");
    expect("/etc/sessrec/web.toml", "-rw-r--r--");
    expect("/usr/lib64/security/pam_sessrec.so", "-rw-r--r--");
    expect("/etc/sessrec/sessrec.toml", "-rw-r--r--");
    expect("/usr/lib/tmpfiles.d/sessrec.conf", "-rw-r--r--");
    expect("/var/log/sessrec", "drwx------");
    expect("/var/lib/sessrec", "drwx------");
    expect("/run/sessrec", "drwx------");
    for unit in ["service", "path", "timer"] {
        let name = format!("sudo-iolog-import.{unit}");
        if packaging_dir().join("systemd").join(&name).exists() {
            expect(&format!("/usr/lib/systemd/system/{name}"), "-rw-r--r--");
        }
    }
    for (section, page) in man_pages() {
        expect(
            &format!("/usr/share/man/man{section}/{page}.gz"),
            "-rw-r--r--",
        );
    }
    for player in ["asciinema-player.min.js", "asciinema-player.css"] {
        expect(
            &format!("/usr/share/sessrec/asciinema-player/{player}"),
            "-rw-r--r--",
        );
    }
    for example in [
        "examples/pam.d/sshd-session-line",
        "examples/sshd_config.d/sessrec-login-shell.conf",
        "examples/sshd_config.d/sessrec-force-command.conf",
        "examples/jump-host/sessrec-forward.conf",
        "examples/jump-host/sessrec-audit-import-capture.conf",
        "examples/sudoers.d/sessrec",
        "examples/shippers/rsyslog/sessrec-ship.conf",
    ] {
        expect(&format!("/usr/share/doc/sessrec/{example}"), "-rw-r--r--");
    }
    assert!(
        !files
            .keys()
            .any(|p| p.starts_with("/lib/") || p.contains("x86_64-linux-gnu")),
        "Debian paths in the rpm: {files:#?}"
    );

    // The conffile is %config(noreplace); the record tree is %ghost (never reset or removed).
    let config = query(&rpm, &["-qpc"]);
    let mut config: Vec<&str> = config.lines().map(str::trim).collect();
    config.sort();
    assert_eq!(
        config,
        [
            "/etc/pam.d/sessrec-web",
            "/etc/sessrec/sessrec.toml",
            "/etc/sessrec/web.toml"
        ]
    );
    // RHEL's PAM stack, not Debian's.
    let pam = read_packaging_file("pam.d/rpm/sessrec-web");
    assert!(
        pam.contains("password-auth") && !pam.contains("common-auth"),
        "{pam}"
    );
    let dump = query(&rpm, &["-qp", "--dump"]);
    let ghost_line = dump
        .lines()
        .find(|l| l.starts_with("/var/log/sessrec "))
        .expect("record tree in --dump");
    // --dump: path size mtime digest mode owner group isconfig isdoc rdev symlink
    let fields: Vec<&str> = ghost_line.split_whitespace().collect();
    assert_eq!(fields[4], "040700", "{ghost_line}");

    let scripts = query(&rpm, &["-qp", "--scripts"]);
    assert!(scripts.contains("useradd -r -g sessrec"), "{scripts}");
    // The console's unit is preset on install (disabled unless a preset enables it), stopped
    // and disabled on erase.
    assert!(scripts.contains("sessrec-web.service"), "{scripts}");
    assert!(
        scripts.contains("pam_sessrec"),
        "preun check missing: {scripts}"
    );
    assert!(!scripts.contains("%systemd"), "unexpanded macro: {scripts}");
    assert!(!scripts.contains("/etc/shells"), "{scripts}");
    assert!(!scripts.contains("rm -rf /var/log/sessrec"), "{scripts}");

    let requires = query(&rpm, &["-qpR"]);
    assert!(requires.lines().any(|l| l.trim() == "pam"), "{requires}");
    assert!(requires.contains("libpam.so.0"), "{requires}");
}
