//! Session metadata: `log.json` (sudo ≥ 1.9.0) and the legacy three-line `log`.
#![forbid(unsafe_code)]

use std::fmt;

use serde_json::{Map, Value};

/// When sudo started the command, as written by sudo (UTC seconds + nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StartTime {
    pub seconds: i64,
    pub nanoseconds: u32,
}

impl StartTime {
    pub fn as_micros(self) -> i64 {
        self.seconds
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(self.nanoseconds / 1000))
    }
}

/// Which file the metadata came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaSource {
    LogJson,
    LegacyLog,
}

impl MetaSource {
    pub fn as_str(self) -> &'static str {
        match self {
            MetaSource::LogJson => "log.json",
            MetaSource::LegacyLog => "log",
        }
    }
}

/// Everything sudo says about one session that the importer uses.
#[derive(Debug, Clone, PartialEq)]
pub struct IologMeta {
    pub source: MetaSource,
    pub start: StartTime,
    pub submituser: String,
    pub submithost: Option<String>,
    pub submitcwd: Option<String>,
    pub runuser: Option<String>,
    pub rungroup: Option<String>,
    pub runcwd: Option<String>,
    pub runchroot: Option<String>,
    /// The command path; for the legacy `log` this is the whole command line (sudo joined
    /// the path and its arguments with spaces, so they cannot be told apart).
    pub command: String,
    /// The argument vector (log.json only).
    pub runargv: Option<Vec<String>>,
    pub ttyname: Option<String>,
    pub lines: Option<u32>,
    pub columns: Option<u32>,
    /// The invoking user's environment (sudo ≥ 1.9.15).
    pub submitenv: Vec<String>,
    /// The command's environment.
    pub runenv: Vec<String>,
    /// A unique id sudo ≥ 1.9.? writes (`uuid`), when present.
    pub uuid: Option<String>,
}

impl IologMeta {
    /// The value of `name` in `submitenv`, then `runenv` (first match wins), with where it was found.
    pub fn env_var(&self, name: &str) -> Option<(&'static str, &str)> {
        let find = |env: &'_ [String]| -> Option<usize> {
            env.iter().position(|entry| {
                entry.len() > name.len()
                    && entry.as_bytes()[name.len()] == b'='
                    && entry.starts_with(name)
            })
        };
        if let Some(i) = find(&self.submitenv) {
            return Some(("submitenv", &self.submitenv[i][name.len() + 1..]));
        }
        if let Some(i) = find(&self.runenv) {
            return Some(("runenv", &self.runenv[i][name.len() + 1..]));
        }
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaError {
    /// log.json is not a JSON object.
    Json(String),
    /// A key has the wrong type or an impossible value.
    BadKey { key: &'static str, problem: String },
    /// A key every session has is absent.
    MissingKey(&'static str),
    /// The legacy log is malformed.
    Legacy(String),
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaError::Json(e) => write!(f, "log.json is not valid JSON: {e}"),
            MetaError::BadKey { key, problem } => write!(f, "log.json key {key:?}: {problem}"),
            MetaError::MissingKey(key) => write!(f, "log.json lacks the key {key:?}"),
            MetaError::Legacy(e) => write!(f, "log: {e}"),
        }
    }
}

impl std::error::Error for MetaError {}

/// Parses `log.json`. sudo writes bytes from the environment and arguments without checking
/// their encoding, so invalid UTF-8 is replaced (U+FFFD) rather than refused.
pub fn parse_log_json(bytes: &[u8]) -> Result<IologMeta, MetaError> {
    let text = String::from_utf8_lossy(bytes);
    let value: Value = serde_json::from_str(&text).map_err(|e| MetaError::Json(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(MetaError::Json("the top level is not an object".into()));
    };
    let start = match map.get("timestamp") {
        Some(Value::Object(ts)) => parse_timestamp(ts)?,
        Some(_) => {
            return Err(MetaError::BadKey {
                key: "timestamp",
                problem: "not an object".into(),
            })
        }
        None => return Err(MetaError::MissingKey("timestamp")),
    };
    let submituser = opt_string(&map, "submituser")?.ok_or(MetaError::MissingKey("submituser"))?;
    let command = opt_string(&map, "command")?.ok_or(MetaError::MissingKey("command"))?;
    Ok(IologMeta {
        source: MetaSource::LogJson,
        start,
        submituser,
        submithost: opt_string(&map, "submithost")?,
        submitcwd: opt_string(&map, "submitcwd")?,
        runuser: opt_string(&map, "runuser")?,
        rungroup: opt_string(&map, "rungroup")?,
        runcwd: opt_string(&map, "runcwd")?,
        runchroot: opt_string(&map, "runchroot")?,
        command,
        runargv: opt_string_list(&map, "runargv")?,
        ttyname: opt_string(&map, "ttyname")?,
        lines: opt_u32(&map, "lines")?,
        columns: opt_u32(&map, "columns")?,
        submitenv: opt_string_list(&map, "submitenv")?.unwrap_or_default(),
        runenv: opt_string_list(&map, "runenv")?.unwrap_or_default(),
        uuid: opt_string(&map, "uuid")?,
    })
}

fn parse_timestamp(ts: &Map<String, Value>) -> Result<StartTime, MetaError> {
    let bad = |problem: &str| MetaError::BadKey {
        key: "timestamp",
        problem: problem.into(),
    };
    let seconds = ts
        .get("seconds")
        .and_then(Value::as_i64)
        .ok_or_else(|| bad("\"seconds\" is missing or not an integer"))?;
    let nanoseconds = match ts.get("nanoseconds") {
        None => 0,
        Some(v) => v
            .as_u64()
            .filter(|n| *n < 1_000_000_000)
            .ok_or_else(|| bad("\"nanoseconds\" is not an integer below 10^9"))?
            as u32,
    };
    Ok(StartTime {
        seconds,
        nanoseconds,
    })
}

fn opt_string(map: &Map<String, Value>, key: &'static str) -> Result<Option<String>, MetaError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(MetaError::BadKey {
            key,
            problem: "not a string".into(),
        }),
    }
}

fn opt_u32(map: &Map<String, Value>, key: &'static str) -> Result<Option<u32>, MetaError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or(MetaError::BadKey {
                key,
                problem: "not a small non-negative integer".into(),
            }),
    }
}

fn opt_string_list(
    map: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<Vec<String>>, MetaError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(MetaError::BadKey {
                    key,
                    problem: "holds a value that is not a string".into(),
                }),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(MetaError::BadKey {
            key,
            problem: "not an array".into(),
        }),
    }
}

/// Parses the legacy `log` file:
///
/// ```text
/// TIME:SUBMITUSER:RUNUSER:RUNGROUP:TTY[:LINES:COLS]
/// CWD
/// COMMAND ARGS...
/// ```
///
/// Nothing is escaped: the command line runs to the end of the file and may hold newlines
/// and colons. The first line is split from both ends so the numeric fields anchor it.
pub fn parse_legacy_log(bytes: &[u8]) -> Result<IologMeta, MetaError> {
    let text = String::from_utf8_lossy(bytes);
    let (first, rest) = text
        .split_once('\n')
        .ok_or_else(|| MetaError::Legacy("fewer than three lines".into()))?;
    let (cwd, command) = rest
        .split_once('\n')
        .ok_or_else(|| MetaError::Legacy("fewer than three lines".into()))?;
    let command = command.strip_suffix('\n').unwrap_or(command);
    if command.is_empty() {
        return Err(MetaError::Legacy("the command line is empty".into()));
    }

    let mut fields: Vec<&str> = first.split(':').collect();
    if fields.len() < 5 {
        return Err(MetaError::Legacy(format!(
            "first line has {} ':'-separated fields, expected 5 or 7",
            fields.len()
        )));
    }
    let seconds: i64 = fields[0]
        .parse()
        .map_err(|_| MetaError::Legacy(format!("start time {:?} is not a number", fields[0])))?;
    let mut lines = None;
    let mut columns = None;
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if fields.len() >= 7 && numeric(fields[fields.len() - 1]) && numeric(fields[fields.len() - 2]) {
        columns = fields.pop().and_then(|s| s.parse().ok());
        lines = fields.pop().and_then(|s| s.parse().ok());
    }
    if fields.len() != 5 {
        return Err(MetaError::Legacy(format!(
            "first line {first:?} has an unexpected ':' in a name"
        )));
    }
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let tty = fields[4];
    Ok(IologMeta {
        source: MetaSource::LegacyLog,
        start: StartTime {
            seconds,
            nanoseconds: 0,
        },
        submituser: fields[1].to_string(),
        submithost: None,
        submitcwd: non_empty(cwd),
        runuser: non_empty(fields[2]),
        rungroup: non_empty(fields[3]),
        runcwd: None,
        runchroot: None,
        command: command.to_string(),
        runargv: None,
        // sudo writes "unknown" when there was no tty.
        ttyname: (tty != "unknown")
            .then(|| tty.to_string())
            .filter(|t| !t.is_empty()),
        lines,
        columns,
        submitenv: Vec::new(),
        runenv: Vec::new(),
        uuid: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_json_all_keys() {
        let json = br#"{"timestamp":{"seconds":1796397752,"nanoseconds":864492887},
            "submituser":"alice","submithost":"bastion","submitcwd":"/home/alice",
            "runuser":"root","rungroup":"wheel","runcwd":"/root","runchroot":"/",
            "command":"/usr/bin/printf","runargv":["printf","%s|%s\\n","x:y z","new\nline"],
            "ttyname":"/dev/pts/3","lines":24,"columns":80,
            "submitenv":["SESSREC_SESSION=s-submit","HOME=/home/alice"],
            "runenv":["SESSREC_SESSION=s-run"],"uuid":"abc","runuid":0}"#;
        let m = parse_log_json(json).unwrap();
        assert_eq!(m.start.seconds, 1796397752);
        assert_eq!(m.start.nanoseconds, 864492887);
        assert_eq!(m.submituser, "alice");
        assert_eq!(m.rungroup.as_deref(), Some("wheel"));
        assert_eq!(m.runcwd.as_deref(), Some("/root"));
        assert_eq!(
            m.runargv.as_deref().unwrap(),
            ["printf", "%s|%s\\n", "x:y z", "new\nline"]
        );
        assert_eq!(m.ttyname.as_deref(), Some("/dev/pts/3"));
        assert_eq!(m.lines, Some(24));
        assert_eq!(
            m.env_var("SESSREC_SESSION"),
            Some(("submitenv", "s-submit"))
        );
        assert_eq!(m.env_var("SESSREC_SESSIO"), None);
        assert_eq!(m.env_var("HOME"), Some(("submitenv", "/home/alice")));
    }

    #[test]
    fn log_json_runenv_fallback_and_invalid_utf8() {
        let mut json = br#"{"timestamp":{"seconds":1},"submituser":"al"#.to_vec();
        json.push(0xff);
        json.extend_from_slice(br#"","command":"/bin/x","runenv":["A=1","SESSREC_SESSION=abc"]}"#);
        let m = parse_log_json(&json).unwrap();
        assert_eq!(m.submituser, "al\u{fffd}");
        assert_eq!(m.env_var("SESSREC_SESSION"), Some(("runenv", "abc")));
        assert_eq!(m.start.nanoseconds, 0);
    }

    #[test]
    fn log_json_errors_name_the_key() {
        let e = parse_log_json(br#"{"submituser":"a","command":"b"}"#).unwrap_err();
        assert_eq!(e, MetaError::MissingKey("timestamp"));
        let e = parse_log_json(br#"{"timestamp":{"seconds":1},"submituser":5,"command":"b"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("submituser"), "{e}");
        let e = parse_log_json(
            br#"{"timestamp":{"seconds":1,"nanoseconds":1000000000},"submituser":"a","command":"b"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("nanoseconds"), "{e}");
        assert!(matches!(parse_log_json(b"[1]"), Err(MetaError::Json(_))));
        assert!(matches!(
            parse_log_json(b"{\"a\":"),
            Err(MetaError::Json(_))
        ));
    }

    #[test]
    fn legacy_log_with_colons_and_newlines_in_arguments() {
        let log = b"1796397752:alice:root::/dev/pts/0:24:80\n/tmp/x\n/usr/bin/printf %s|%s\\n x:y z new\nline\n";
        let m = parse_legacy_log(log).unwrap();
        assert_eq!(m.source, MetaSource::LegacyLog);
        assert_eq!(m.start.seconds, 1796397752);
        assert_eq!(m.submituser, "alice");
        assert_eq!(m.runuser.as_deref(), Some("root"));
        assert_eq!(m.rungroup, None);
        assert_eq!(m.ttyname.as_deref(), Some("/dev/pts/0"));
        assert_eq!((m.lines, m.columns), (Some(24), Some(80)));
        assert_eq!(m.submitcwd.as_deref(), Some("/tmp/x"));
        assert_eq!(m.command, "/usr/bin/printf %s|%s\\n x:y z new\nline");
    }

    #[test]
    fn legacy_log_old_five_field_form_and_no_tty() {
        let m = parse_legacy_log(b"1300000000:bob:root:wheel:unknown\n/\n/bin/true\n").unwrap();
        assert_eq!(m.ttyname, None);
        assert_eq!(m.rungroup.as_deref(), Some("wheel"));
        assert_eq!(m.lines, None);
    }

    #[test]
    fn legacy_log_errors() {
        assert!(parse_legacy_log(b"1:a:b:c:d\n/\n").is_err());
        assert!(parse_legacy_log(b"x:a:b:c:d\n/\n/bin/true\n").is_err());
        assert!(parse_legacy_log(b"1:a:b\n/\n/bin/true\n").is_err());
        assert!(parse_legacy_log(b"1:a:b:c:d:e\n/\n/bin/true\n").is_err());
        assert!(parse_legacy_log(b"").is_err());
    }
}
