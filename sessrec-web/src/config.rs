//! Command-line settings of the console.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str =
    "usage: sessrec-web [--listen ADDR:PORT] [--dir RECORD_DIR] [--config FILE] \
[--pam-service NAME] [--group GROUP] [--player DIR] [--session-minutes N]";

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub record_dir: PathBuf,
    pub pam_service: String,
    pub group: String,
    pub player: Option<PathBuf>,
    pub session_lifetime: Duration,
    /// TLS is not offered yet: only loopback addresses are served.
    pub tls: bool,
}

impl Settings {
    pub fn parse(argv: &[String]) -> Result<Settings, String> {
        let mut listen: SocketAddr = "127.0.0.1:8080".parse().expect("literal address");
        let mut dir = None;
        let mut config = std::env::var_os("SESSREC_CONFIG").map(PathBuf::from);
        let mut pam_service = "sessrec-web".to_string();
        let mut group = "sessrec-auditors".to_string();
        let mut player = None;
        let mut minutes = 60u64;
        let mut it = argv.iter();
        while let Some(arg) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
            };
            match arg.as_str() {
                "--listen" => {
                    let v = value()?;
                    listen = v
                        .parse()
                        .map_err(|_| format!("--listen {v}: not an ADDRESS:PORT"))?;
                }
                "--dir" => dir = Some(PathBuf::from(value()?)),
                "--config" => config = Some(PathBuf::from(value()?)),
                "--pam-service" => pam_service = value()?,
                "--group" => group = value()?,
                "--player" => player = Some(PathBuf::from(value()?)),
                "--session-minutes" => {
                    let v = value()?;
                    minutes = v
                        .parse()
                        .ok()
                        .filter(|m| (1..=24 * 60).contains(m))
                        .ok_or_else(|| format!("--session-minutes {v}: 1 to 1440"))?;
                }
                "-h" | "--help" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown argument {other}\n{USAGE}")),
            }
        }
        let record_dir = match dir {
            Some(d) => d,
            None => {
                let path = config
                    .unwrap_or_else(|| PathBuf::from(sessrec_core::config::DEFAULT_CONFIG_PATH));
                if path.exists() {
                    sessrec_core::config::Config::load(&path)
                        .map_err(|e| format!("configuration {e}"))?
                        .record_dir
                } else {
                    PathBuf::from("/var/log/sessrec")
                }
            }
        };
        let settings = Settings {
            listen,
            record_dir,
            pam_service,
            group,
            player,
            session_lifetime: Duration::from_secs(minutes * 60),
            tls: false,
        };
        settings.check_listen()?;
        Ok(settings)
    }

    /// Passwords and session cookies cross the network only under TLS, which this version does
    /// not offer: any address but loopback is refused.
    pub fn check_listen(&self) -> Result<(), String> {
        if self.listen.ip().is_loopback() || self.tls {
            Ok(())
        } else {
            Err(format!(
                "refusing to listen on {}: logins would cross the network unencrypted, and TLS is \
not supported yet; listen on 127.0.0.1 or ::1 (behind a TLS-terminating proxy on this host)",
                self.listen
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_non_loopback_address_is_refused_without_tls() {
        let e = Settings::parse(&args(&["--dir", "/x", "--listen", "0.0.0.0:8080"])).unwrap_err();
        assert!(e.contains("TLS"), "{e}");
        let e = Settings::parse(&args(&["--dir", "/x", "--listen", "192.0.2.1:80"])).unwrap_err();
        assert!(e.contains("refusing"), "{e}");
        let s = Settings::parse(&args(&["--dir", "/x", "--listen", "[::1]:9"])).unwrap();
        assert!(s.listen.ip().is_loopback());
        let s = Settings::parse(&args(&["--dir", "/x"])).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.group, "sessrec-auditors");
        assert_eq!(s.pam_service, "sessrec-web");
    }
}
