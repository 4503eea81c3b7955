//! Settings of the console: the web configuration file (`/etc/sessrec/web.toml`), then the
//! command line over it.
#![forbid(unsafe_code)]

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub const USAGE: &str =
    "usage: sessrec-web [--web-config FILE] [--listen ADDR:PORT] [--dir RECORD_DIR] \
[--config FILE] [--pam-service NAME] [--group GROUP] [--kill-group GROUP] [--player DIR] \
[--session-minutes N] [--tls-cert PEM --tls-key PEM]";

/// Where the web configuration is read from when `--web-config` is not given (if it exists).
pub const DEFAULT_WEB_CONFIG: &str = "/etc/sessrec/web.toml";

/// The certificate chain and private key the console serves TLS with (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Login by a header that a trusted reverse proxy (an SSO gateway) sets: honoured only on
/// connections from one of `trusted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyLogin {
    pub trusted: Vec<IpAddr>,
    /// Lower-case header name, e.g. `x-remote-user`.
    pub header: String,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub record_dir: PathBuf,
    pub pam_service: String,
    pub group: String,
    /// Members of this group (who may also look) may end live sessions; none: nobody may.
    pub kill_group: Option<String>,
    pub player: Option<PathBuf>,
    pub session_lifetime: Duration,
    /// Whether the console is served over TLS (cookies are then `Secure`).
    pub tls: bool,
    pub tls_files: Option<TlsFiles>,
    pub proxy_login: Option<ProxyLogin>,
}

/// `web.toml`. Every key is optional; the command line wins over the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebFile {
    listen: Option<String>,
    record_dir: Option<PathBuf>,
    pam_service: Option<String>,
    group: Option<String>,
    kill_group: Option<String>,
    player: Option<PathBuf>,
    session_minutes: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default)]
    proxy: Option<ProxyFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProxyFile {
    /// The proxies' addresses (exact IP addresses, no ranges).
    trusted: Vec<String>,
    /// The header carrying the logged-in user's name.
    user_header: String,
}

/// The longest user name a proxy header may carry.
pub const MAX_PROXY_USER: usize = 256;

fn parse_listen(v: &str, what: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|_| format!("{what} {v}: not an ADDRESS:PORT"))
}

fn parse_minutes(m: u64, what: &str) -> Result<u64, String> {
    if (1..=24 * 60).contains(&m) {
        Ok(m)
    } else {
        Err(format!("{what} {m}: 1 to 1440"))
    }
}

fn parse_proxy(p: ProxyFile, file: &Path) -> Result<ProxyLogin, String> {
    let at = file.display();
    if p.trusted.is_empty() {
        return Err(format!("{at}: [proxy] trusted names no proxy address"));
    }
    let trusted = p
        .trusted
        .iter()
        .map(|a| {
            a.parse::<IpAddr>()
                .map_err(|_| format!("{at}: [proxy] trusted {a:?} is not an IP address"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let header = p.user_header.to_ascii_lowercase();
    let valid = !header.is_empty()
        && header.len() <= 64
        && header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(format!(
            "{at}: [proxy] user_header {:?} is not a header name",
            p.user_header
        ));
    }
    // Headers a browser sets itself could never prove anything.
    if matches!(
        header.as_str(),
        "cookie" | "host" | "authorization" | "user-agent" | "referer" | "origin"
    ) {
        return Err(format!(
            "{at}: [proxy] user_header {header} is set by browsers, not by a proxy"
        ));
    }
    Ok(ProxyLogin { trusted, header })
}

impl Settings {
    pub fn parse(argv: &[String]) -> Result<Settings, String> {
        // The file first (its path may come on the command line), then the options over it.
        let mut web_config: Option<PathBuf> = None;
        let mut it = argv.iter();
        while let Some(arg) = it.next() {
            if arg == "--web-config" {
                web_config =
                    Some(PathBuf::from(it.next().ok_or_else(|| {
                        format!("--web-config needs a value\n{USAGE}")
                    })?));
            }
        }
        let file_path = web_config.clone().or_else(|| {
            let p = PathBuf::from(DEFAULT_WEB_CONFIG);
            p.exists().then_some(p)
        });
        let file: WebFile = match &file_path {
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
                toml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?
            }
            None => WebFile::default(),
        };
        let file_name = file_path.clone().unwrap_or_default();

        let mut listen =
            parse_listen(file.listen.as_deref().unwrap_or("127.0.0.1:8080"), "listen")?;
        let mut dir = file.record_dir;
        let mut config = std::env::var_os("SESSREC_CONFIG").map(PathBuf::from);
        let mut pam_service = file.pam_service.unwrap_or_else(|| "sessrec-web".into());
        let mut group = file.group.unwrap_or_else(|| "sessrec-auditors".into());
        let mut kill_group = file.kill_group;
        let mut player = file.player;
        let mut minutes = parse_minutes(file.session_minutes.unwrap_or(60), "session_minutes")?;
        let mut tls_cert = file.tls_cert;
        let mut tls_key = file.tls_key;
        let proxy_login = file.proxy.map(|p| parse_proxy(p, &file_name)).transpose()?;

        let mut it = argv.iter();
        while let Some(arg) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
            };
            match arg.as_str() {
                "--web-config" => {
                    value()?;
                }
                "--listen" => listen = parse_listen(&value()?, "--listen")?,
                "--dir" => dir = Some(PathBuf::from(value()?)),
                "--config" => config = Some(PathBuf::from(value()?)),
                "--pam-service" => pam_service = value()?,
                "--group" => group = value()?,
                "--kill-group" => kill_group = Some(value()?),
                "--player" => player = Some(PathBuf::from(value()?)),
                "--tls-cert" => tls_cert = Some(PathBuf::from(value()?)),
                "--tls-key" => tls_key = Some(PathBuf::from(value()?)),
                "--session-minutes" => {
                    let v = value()?;
                    minutes = v
                        .parse()
                        .map_err(|_| format!("--session-minutes {v}: 1 to 1440"))
                        .and_then(|m| parse_minutes(m, "--session-minutes"))?;
                }
                "-h" | "--help" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown argument {other}\n{USAGE}")),
            }
        }
        let tls_files = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => return Err("a TLS certificate needs its key (tls_key)".into()),
            (None, Some(_)) => return Err("a TLS key needs its certificate (tls_cert)".into()),
        };
        if kill_group.as_deref() == Some("") {
            kill_group = None;
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
            kill_group,
            player,
            session_lifetime: Duration::from_secs(minutes * 60),
            tls: tls_files.is_some(),
            tls_files,
            proxy_login,
        };
        settings.check_listen()?;
        Ok(settings)
    }

    /// Passwords and session cookies cross the network only under TLS: any address but
    /// loopback needs a certificate.
    pub fn check_listen(&self) -> Result<(), String> {
        if self.listen.ip().is_loopback() || self.tls {
            Ok(())
        } else {
            Err(format!(
                "refusing to listen on {} without TLS: logins and session cookies would cross \
the network unencrypted; set tls_cert and tls_key (or --tls-cert/--tls-key), or listen on \
127.0.0.1 or ::1",
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

    fn no_file() -> Vec<&'static str> {
        vec!["--web-config", "/dev/null"]
    }

    #[test]
    fn a_non_loopback_address_is_refused_without_tls() {
        let parse = |extra: &[&str]| {
            let mut a = no_file();
            a.extend_from_slice(&["--dir", "/x"]);
            a.extend_from_slice(extra);
            Settings::parse(&args(&a))
        };
        let e = parse(&["--listen", "0.0.0.0:8080"]).unwrap_err();
        assert!(e.contains("without TLS"), "{e}");
        let e = parse(&["--listen", "192.0.2.1:80"]).unwrap_err();
        assert!(e.contains("refusing"), "{e}");
        let s = parse(&["--listen", "[::1]:9"]).unwrap();
        assert!(s.listen.ip().is_loopback());
        assert!(!s.tls);
        let s = parse(&[]).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.group, "sessrec-auditors");
        assert_eq!(s.pam_service, "sessrec-web");
        assert_eq!(s.kill_group, None);
        let s = parse(&[
            "--listen",
            "0.0.0.0:8443",
            "--tls-cert",
            "/c",
            "--tls-key",
            "/k",
        ])
        .unwrap();
        assert!(s.tls);
        let e = parse(&["--listen", "0.0.0.0:8443", "--tls-cert", "/c"]).unwrap_err();
        assert!(e.contains("needs its key"), "{e}");
    }

    #[test]
    fn the_web_config_file_sets_tls_proxy_and_kill_group() {
        let dir = std::env::temp_dir().join(format!("sessrec-web-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("web.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:8443\"\nrecord_dir = \"/srv/rec\"\ntls_cert = \"/c.pem\"\n\
tls_key = \"/k.pem\"\nkill_group = \"sessrec-killers\"\n\
[proxy]\ntrusted = [\"127.0.0.1\", \"::1\"]\nuser_header = \"X-Remote-User\"\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let s = Settings::parse(&args(&["--web-config", f])).unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:8443");
        assert_eq!(s.record_dir, PathBuf::from("/srv/rec"));
        assert!(s.tls);
        assert_eq!(s.kill_group.as_deref(), Some("sessrec-killers"));
        let p = s.proxy_login.unwrap();
        assert_eq!(p.header, "x-remote-user");
        assert_eq!(p.trusted.len(), 2);
        // The command line wins.
        let s = Settings::parse(&args(&["--web-config", f, "--listen", "127.0.0.1:1"])).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:1");

        std::fs::write(
            &file,
            "[proxy]\ntrusted = [\"10.0.0.0/8\"]\nuser_header = \"x\"\n",
        )
        .unwrap();
        let e = Settings::parse(&args(&["--web-config", f])).unwrap_err();
        assert!(e.contains("not an IP address"), "{e}");
        std::fs::write(
            &file,
            "[proxy]\ntrusted = [\"::1\"]\nuser_header = \"Cookie\"\n",
        )
        .unwrap();
        let e = Settings::parse(&args(&["--web-config", f])).unwrap_err();
        assert!(e.contains("set by browsers"), "{e}");
        std::fs::write(&file, "lissen = \"x\"\n").unwrap();
        let e = Settings::parse(&args(&["--web-config", f])).unwrap_err();
        assert!(e.contains("lissen"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
