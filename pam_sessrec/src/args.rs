//! Module arguments from the PAM stack line:
//! `session required pam_sessrec.so [debug] [config=PATH] [services=a,b] [recorder=PATH] [nofsync] [notice]`.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::PathBuf;

/// Where the module looks for its configuration unless `config=` says otherwise.
pub const DEFAULT_CONFIG: &str = "/etc/sessrec/sessrec.toml";
/// The installed recorder unless `recorder=` says otherwise.
pub const DEFAULT_RECORDER: &str = "/usr/bin/sessrec-shell";
/// The PAM services acted on unless `services=` says otherwise.
pub const DEFAULT_SERVICES: &[&str] = &["sshd"];

/// Parsed module arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleArgs {
    pub debug: bool,
    pub config: PathBuf,
    pub services: Vec<String>,
    /// Whether `services=` was given; if not, `[policy] services` of the config also applies.
    pub services_given: bool,
    /// The recorder a recorded user's passwd shell must be (`launch = "login-shell"`).
    pub recorder: PathBuf,
    /// Sync `session.jsonl` to disk after the login and logout lines (off with `nofsync`).
    pub fsync: bool,
    /// Also show `[recorder] notice` through the PAM conversation at login (`notice`). Off by
    /// default: the recorder shows it on every interactive channel already.
    pub notice: bool,
}

/// A module argument the module does not understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError(pub String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ModuleArgs {
    /// Parses the arguments; an unknown or malformed one is an error (the caller fails closed).
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, ArgError> {
        let mut parsed = ModuleArgs {
            debug: false,
            config: PathBuf::from(DEFAULT_CONFIG),
            services: DEFAULT_SERVICES.iter().map(|s| s.to_string()).collect(),
            services_given: false,
            recorder: PathBuf::from(DEFAULT_RECORDER),
            fsync: true,
            notice: false,
        };
        for raw in args {
            let arg = std::str::from_utf8(raw)
                .map_err(|_| ArgError("module argument is not UTF-8".into()))?;
            match arg.split_once('=') {
                None if arg == "debug" => parsed.debug = true,
                None if arg == "nofsync" => parsed.fsync = false,
                None if arg == "notice" => parsed.notice = true,
                Some(("config", path)) => parsed.config = absolute_path("config", path)?,
                Some(("recorder", path)) => parsed.recorder = absolute_path("recorder", path)?,
                Some(("services", list)) => {
                    let services: Vec<String> = list
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if services.is_empty() {
                        return Err(ArgError("services= names no service".into()));
                    }
                    parsed.services = services;
                    parsed.services_given = true;
                }
                _ => return Err(ArgError(format!("unknown module argument {arg:?}"))),
            }
        }
        Ok(parsed)
    }

    pub fn acts_on(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == service)
    }
}

fn absolute_path(key: &str, value: &str) -> Result<PathBuf, ArgError> {
    if value.starts_with('/') {
        Ok(PathBuf::from(value))
    } else {
        Err(ArgError(format!(
            "{key}= needs an absolute path, got {value:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ModuleArgs, ArgError> {
        ModuleArgs::parse(args.iter().map(|s| s.as_bytes()))
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert!(!a.debug);
        assert!(a.fsync);
        assert!(!a.notice);
        assert_eq!(a.config, PathBuf::from(DEFAULT_CONFIG));
        assert_eq!(a.recorder, PathBuf::from(DEFAULT_RECORDER));
        assert!(a.acts_on("sshd"));
        assert!(!a.acts_on("sudo"));
    }

    #[test]
    fn all_options() {
        let a = parse(&[
            "debug",
            "config=/tmp/x.toml",
            "services=sshd,sshd-test",
            "recorder=/opt/sessrec/sessrec-shell",
            "nofsync",
            "notice",
        ])
        .unwrap();
        assert!(a.debug);
        assert!(!a.fsync);
        assert!(a.notice);
        assert_eq!(a.config, PathBuf::from("/tmp/x.toml"));
        assert!(a.acts_on("sshd-test") && a.acts_on("sshd") && !a.acts_on("login"));
        assert_eq!(a.recorder, PathBuf::from("/opt/sessrec/sessrec-shell"));
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(parse(&["config=relative.toml"]).is_err());
        assert!(parse(&["services="]).is_err());
        assert!(parse(&["servcies=sshd"]).is_err());
        assert!(parse(&["debug=1"]).is_err());
        assert!(ModuleArgs::parse([&b"config=/\xff"[..]]).is_err());
    }
}
