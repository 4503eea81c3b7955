//! Writes synthetic but well-formed session records with the real record writer, for the
//! benchmarks (`bench/cli`) and for tests that need many sessions or exact content.
//! Records from real recorded sessions are used wherever a recorder can run.
#![forbid(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};

use crate::id::SessionId;
use crate::identity::{ActorSource, Identity};
use crate::record::{FileContext, Stream};
use crate::schema::{channel_start, header_key, ChannelEnd, ChannelStart, Logout, LogoutChannel};
use crate::tree::SessionDir;
use crate::writer::{RecordWriter, WriterOptions};
use serde_json::{Map, Value};

/// A session id whose timestamp is `unix_millis` (random otherwise).
pub fn id_at(unix_millis: u64) -> io::Result<SessionId> {
    let fresh = SessionId::new()?.to_string();
    let hex = format!("{unix_millis:012x}");
    let text = format!("{}-{}-{}", &hex[..8], &hex[8..12], &fresh[14..]);
    SessionId::parse(&text)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad time for a session id"))
}

fn fields(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// One session being written.
pub struct SynthSession {
    pub id: SessionId,
    pub dir: PathBuf,
    record_dir: PathBuf,
    host: String,
    user: String,
    actor: String,
    session: Option<RecordWriter>,
    channels: Vec<(String, u64, String, bool)>,
}

impl SynthSession {
    /// Creates the session directory and writes the `login` line (host `bastion.test`).
    pub fn login(
        record_dir: &Path,
        id: SessionId,
        user: &str,
        actor: &str,
        src_ip: &str,
    ) -> io::Result<Self> {
        SynthSession::login_on("bastion.test", record_dir, id, user, actor, src_ip)
    }

    /// [`SynthSession::login`] for a session recorded on `host`.
    pub fn login_on(
        host: &str,
        record_dir: &Path,
        id: SessionId,
        user: &str,
        actor: &str,
        src_ip: &str,
    ) -> io::Result<Self> {
        let dir = SessionDir::create(record_dir, id, None)?;
        let host = host.to_string();
        let ctx = FileContext {
            host: host.clone(),
            session: id,
            file: "session.jsonl".into(),
            user: user.into(),
            actor: actor.into(),
        };
        let mut w = RecordWriter::new(
            dir.create_file("session.jsonl")?,
            ctx,
            WriterOptions::default(),
        )?;
        let mut ident = Identity::unverified(user, 1000);
        ident.actor = actor.to_string();
        ident.actor_source = if actor == user {
            ActorSource::UnixUser
        } else {
            ActorSource::FingerprintMap
        };
        ident.verified = true;
        ident.service = Some("sshd".into());
        ident.src_ip = Some(src_ip.into());
        ident.src_port = Some(50_000);
        ident.dst_ip = Some("192.0.2.10".into());
        ident.dst_port = Some(22);
        ident.auth_methods = vec!["publickey".into()];
        ident.key_type = Some("ssh-ed25519".into());
        ident.key_fingerprint = Some("SHA256:synthetic".into());
        w.write(&ident.to_login())?;
        w.flush()?;
        Ok(SynthSession {
            id,
            dir: dir.path().to_path_buf(),
            record_dir: record_dir.to_path_buf(),
            host,
            user: user.into(),
            actor: actor.into(),
            session: Some(w),
            channels: Vec::new(),
        })
    }

    /// Starts channel N (numbered from 1 in call order).
    pub fn channel(
        &mut self,
        kind: &str,
        mode: &str,
        command: Option<&str>,
    ) -> io::Result<SynthChannel> {
        let dir = SessionDir::open(&self.record_dir, self.id)?;
        let (n, file) = dir.create_channel_file()?;
        let name = format!("channel-{n}.jsonl");
        let ctx = FileContext {
            host: self.host.clone(),
            session: self.id,
            file: name.clone(),
            user: self.user.clone(),
            actor: self.actor.clone(),
        };
        let mut w = RecordWriter::new(file, ctx, WriterOptions::default())?;
        let start = ChannelStart {
            kind: Some(kind.into()),
            mode: Some(mode.into()),
            cols: Some(80),
            rows: Some(24),
            term: Some("xterm-256color".into()),
            pid: Some(0),
            mono_us: Some(0),
            pty: (mode == "pty").then(|| "/dev/pts/9".into()),
            ..ChannelStart::default()
        };
        // As the recorder writes it: the command whole, however long.
        match command {
            Some(c) => w.write_with_long_field(&start, channel_start::command, c.as_bytes())?,
            None => w.write(&start)?,
        }
        Ok(SynthChannel { name, writer: w })
    }

    /// Records a finished channel for the logout line.
    pub fn finished(&mut self, ch: SynthChannel, exit_code: i32) -> io::Result<()> {
        let mut w = ch.writer;
        w.write(&ChannelEnd {
            reason: Some("exit".into()),
            exit_code: Some(Some(exit_code)),
            ..ChannelEnd::default()
        })?;
        let anchor = w.close()?;
        self.channels
            .push((ch.name, anchor.seq, anchor.digest, false));
        Ok(())
    }

    /// Writes the `logout` line listing every channel's last seq and digest.
    pub fn logout(mut self) -> io::Result<PathBuf> {
        let channels = self
            .channels
            .iter()
            .map(|(file, seq, digest, open)| LogoutChannel {
                file: Some(file.clone()),
                last_seq: Some(*seq),
                digest: Some(digest.clone()),
                open: Some(*open),
                ..LogoutChannel::default()
            })
            .collect();
        if let Some(mut w) = self.session.take() {
            w.write(&Logout {
                duration_us: Some(1_000_000),
                unclaimed: Some(false),
                channels: Some(channels),
                ..Logout::default()
            })?;
            w.close()?;
        }
        Ok(self.dir.clone())
    }

    /// Leaves the session open (as if still live or crashed).
    pub fn abandon(mut self) -> io::Result<PathBuf> {
        if let Some(mut w) = self.session.take() {
            w.flush()?;
        }
        Ok(self.dir.clone())
    }
}

/// One channel being written.
pub struct SynthChannel {
    pub name: String,
    writer: RecordWriter,
}

impl SynthChannel {
    pub fn output(&mut self, off_us: u64, data: &[u8]) -> io::Result<()> {
        self.writer.io(Stream::Output, off_us, data)
    }

    pub fn input(&mut self, off_us: u64, data: &[u8]) -> io::Result<()> {
        self.writer.io(Stream::Input, off_us, data)
    }

    pub fn event(&mut self, kind: &str, v: Value) -> io::Result<()> {
        self.writer.event(kind, fields(v))
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }

    /// Types `line` key by key (with echo), then Enter, then shows `output`.
    pub fn typed(
        &mut self,
        off_us: &mut u64,
        prompt: &str,
        line: &str,
        output: &str,
    ) -> io::Result<()> {
        self.output(*off_us, prompt.as_bytes())?;
        for c in line.chars() {
            *off_us += 80_000;
            let mut b = [0u8; 4];
            let s = c.encode_utf8(&mut b);
            self.input(*off_us, s.as_bytes())?;
            self.output(*off_us + 500, s.as_bytes())?;
        }
        *off_us += 120_000;
        self.input(*off_us, b"\r")?;
        self.output(*off_us + 500, b"\r\n")?;
        if !output.is_empty() {
            *off_us += 10_000;
            self.output(*off_us, output.replace('\n', "\r\n").as_bytes())?;
        }
        *off_us += 300_000;
        Ok(())
    }
}

/// Moves every time in a session's files by `delta_us` and re-chains them, as if the session
/// had been recorded that much earlier or later (for retention and time-filter tests; the
/// writer always stamps the current time).
pub fn shift_times(session_dir: &Path, delta_us: i64) -> io::Result<()> {
    use crate::chain::{genesis, line_digest, to_hex};
    let time_re = regex::Regex::new(r#""(time|login_time|start_time)":"([^"]+)""#)
        .map_err(io::Error::other)?;
    let prev_re = regex::Regex::new(r#""prev":"[0-9a-f]{64}""#).map_err(io::Error::other)?;
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(session_dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.to_string(), e.path())))
        .filter(|(n, _)| n.ends_with(".jsonl"))
        .collect();
    // Channels first: the session file's logout repeats their last digests.
    files.sort_by_key(|(n, _)| n == "session.jsonl");
    let mut renamed: Vec<(String, String)> = Vec::new();
    for (name, path) in files {
        let text = std::fs::read_to_string(&path)?;
        let mut out = String::with_capacity(text.len());
        let mut prev: Option<[u8; 32]> = None;
        let mut last_old = String::new();
        let mut last_new = String::new();
        for line in text.split_inclusive('\n') {
            let old_digest = to_hex(&line_digest(line.as_bytes()));
            let mut l = time_re
                .replace_all(line, |c: &regex::Captures<'_>| {
                    let t = crate::time::Timestamp::parse(&c[2])
                        .map(|t| {
                            crate::time::Timestamp::from_micros(t.as_micros() + delta_us)
                                .to_string()
                        })
                        .unwrap_or_else(|| c[2].to_string());
                    format!("\"{}\":\"{t}\"", &c[1])
                })
                .into_owned();
            for (old, new) in &renamed {
                l = l.replace(old.as_str(), new.as_str());
            }
            let v: Value = serde_json::from_str(&l).map_err(io::Error::other)?;
            let p = match prev {
                Some(p) => p,
                None => genesis(
                    v[header_key::HOST].as_str().unwrap_or(""),
                    v[header_key::SESSION].as_str().unwrap_or(""),
                    &name,
                ),
            };
            let l = prev_re
                .replace(&l, format!("\"prev\":\"{}\"", to_hex(&p)))
                .into_owned();
            let d = line_digest(l.as_bytes());
            prev = Some(d);
            last_old = old_digest;
            last_new = to_hex(&d);
            out.push_str(&l);
        }
        renamed.push((last_old, last_new));
        std::fs::write(&path, out)?;
    }
    Ok(())
}
