//! Whether end-to-end tests must run (`SESSREC_E2E=required`) or may skip on a machine that
//! cannot run them (not root, no sshd).
#![forbid(unsafe_code)]

use crate::util::find_program;

/// How missing prerequisites are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum E2eMode {
    /// `SESSREC_E2E=required` (CI): every missing prerequisite is a test failure.
    Required,
    /// `SESSREC_E2E` unset: tests skip, printing why, when not root or sshd is missing.
    Optional,
}

/// Reads `SESSREC_E2E`. Panics on a value other than `required` (or empty/unset), so a typo
/// cannot silently turn CI's tests into skips.
pub fn e2e_mode() -> E2eMode {
    match std::env::var("SESSREC_E2E") {
        Ok(v) if v == "required" => E2eMode::Required,
        Ok(v) if v.is_empty() => E2eMode::Optional,
        Err(std::env::VarError::NotPresent) => E2eMode::Optional,
        Ok(v) => panic!("SESSREC_E2E={v:?}: the only accepted value is \"required\" (or unset)"),
        Err(e) => panic!("SESSREC_E2E: {e}"),
    }
}

/// Programs every end-to-end test relies on.
const BASE_PROGRAMS: &[&str] = &[
    "sshd",
    "ssh",
    "ssh-keygen",
    "useradd",
    "userdel",
    "usermod",
    "adduser",
];

/// Checks the prerequisites of an end-to-end test: root, sshd and the basic tools.
///
/// Returns `true` when the test can run. When it cannot: in [`E2eMode::Required`] it panics
/// naming what is missing; otherwise it prints `skipped: <reason>` and returns `false` if the
/// reason is "not root" or "no sshd", and panics for anything else (a half-installed machine
/// should be noticed, not skipped).
pub fn e2e_ready() -> bool {
    let mode = e2e_mode();
    let mut skip_reasons = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        skip_reasons.push("not running as root".to_string());
    }
    if find_program("/usr/sbin/sshd").is_none() {
        skip_reasons.push("/usr/sbin/sshd is not installed (openssh-server)".to_string());
    }
    let missing: Vec<&str> = BASE_PROGRAMS
        .iter()
        .copied()
        .filter(|p| *p != "sshd" && find_program(p).is_none())
        .collect();
    if skip_reasons.is_empty() && missing.is_empty() {
        crate::leftovers::sweep_once();
        return true;
    }
    let mut all = skip_reasons.clone();
    all.extend(missing.iter().map(|p| format!("program `{p}` not found")));
    if mode == E2eMode::Required || !missing.is_empty() {
        panic!(
            "end-to-end prerequisites missing (SESSREC_E2E={}): {}",
            if mode == E2eMode::Required {
                "required"
            } else {
                "unset"
            },
            all.join("; ")
        );
    }
    eprintln!(
        "skipped: {} (set SESSREC_E2E=required to fail instead)",
        all.join("; ")
    );
    false
}

/// Checks that extra programs a test needs (e.g. `pamtester`, `sudo`, `rsync`) are installed.
/// Returns `true` if all are; otherwise panics in [`E2eMode::Required`], or prints
/// `skipped: ...` and returns `false`.
pub fn require_programs(programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| find_program(p).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let text = format!("programs not installed: {}", missing.join(", "));
    if e2e_mode() == E2eMode::Required {
        panic!("end-to-end prerequisites missing (SESSREC_E2E=required): {text}");
    }
    eprintln!("skipped: {text} (set SESSREC_E2E=required to fail instead)");
    false
}

/// Returns from the calling test early (printing why) when end-to-end tests cannot run here;
/// with `SESSREC_E2E=required` it fails instead. Optionally takes extra programs to require:
/// `require_e2e!("pamtester", "sudo");`
#[macro_export]
macro_rules! require_e2e {
    () => {
        if !$crate::e2e_ready() {
            return;
        }
    };
    ($($program:expr),+ $(,)?) => {
        if !$crate::e2e_ready() || !$crate::require_programs(&[$($program),+]) {
            return;
        }
    };
}
