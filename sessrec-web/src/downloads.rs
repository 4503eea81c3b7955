//! Downloads of a session's exports — asciicast (one channel), text, JSON, HTML, and the PCAP
//! of a connect channel's kept payload — written by the CLI's own export code
//! (`sessrec export`), each logged (`web-download`) before it is sent, streamed in chunks as the
//! export is written, with a file name built only from safe characters.
#![forbid(unsafe_code)]

use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use sessrec::export::{Format, Options};
use sessrec::records::{session_record_files, RecordFile};
use tokio::sync::mpsc;

use crate::pages::{esc, url_component};
use crate::server::{internal, not_found, redirect, response, shown_id, App};

/// Bytes gathered before a chunk is sent, and chunks in flight per download.
const CHUNK_BYTES: usize = 64 * 1024;
const CHUNKS_IN_FLIGHT: usize = 4;
/// The longest file name offered.
const MAX_FILE_NAME: usize = 120;

/// A download the console offers: its name in requests, the export format, the file
/// extension and the content type.
struct Kind {
    name: &'static str,
    format: Format,
    extension: &'static str,
    content_type: &'static str,
    /// One channel (a cast), or the whole session.
    per_channel: bool,
}

const KINDS: &[Kind] = &[
    Kind {
        name: "asciicast",
        format: Format::AsciicastV2,
        extension: "cast",
        content_type: "application/x-asciicast",
        per_channel: true,
    },
    Kind {
        name: "text",
        format: Format::Text,
        extension: "txt",
        content_type: "text/plain; charset=utf-8",
        per_channel: false,
    },
    Kind {
        name: "json",
        format: Format::Json,
        extension: "jsonl",
        content_type: "application/x-ndjson",
        per_channel: false,
    },
    Kind {
        name: "html",
        format: Format::Html,
        extension: "html",
        content_type: "text/html; charset=utf-8",
        per_channel: false,
    },
    Kind {
        name: "pcap",
        format: Format::Pcap,
        extension: "pcap",
        content_type: "application/vnd.tcpdump.pcap",
        per_channel: false,
    },
];

/// A download's file name: `sessrec-<session>[-<channel>].<ext>`, every character outside
/// `A-Za-z0-9._-` replaced by `_`, no leading dot, bounded.
pub fn file_name(session: &str, channel: Option<&str>, extension: &str) -> String {
    let mut stem = format!("sessrec-{session}");
    if let Some(c) = channel {
        stem.push('-');
        stem.push_str(c.trim_end_matches(".jsonl"));
    }
    let mut safe: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    safe.truncate(MAX_FILE_NAME);
    format!("{safe}.{extension}")
}

/// The download links of a session's page.
pub fn links(id: &str, channels: &[RecordFile], pcap: bool) -> String {
    let href = |kind: &str, file: Option<&str>| {
        let mut h = format!("/download?id={}&amp;format={kind}", url_component(id));
        if let Some(f) = file {
            h.push_str(&format!("&amp;file={}", url_component(f)));
        }
        h
    };
    let mut out = String::from("<p id=\"downloads\">Download:");
    for kind in KINDS.iter().filter(|k| k.name != "pcap" || pcap) {
        if kind.per_channel {
            for c in channels {
                out.push_str(&format!(
                    " <a class=\"download\" data-format=\"{}\" href=\"{}\">{} {}</a>",
                    kind.name,
                    href(kind.name, Some(&c.name)),
                    kind.name,
                    esc(c.name.trim_end_matches(".jsonl"))
                ));
            }
        } else {
            out.push_str(&format!(
                " <a class=\"download\" data-format=\"{}\" href=\"{}\">{}</a>",
                kind.name,
                href(kind.name, None),
                kind.name
            ));
        }
    }
    out.push_str("</p>\n");
    out
}

#[derive(Deserialize)]
pub struct DownloadQuery {
    #[serde(default)]
    id: String,
    #[serde(default)]
    format: String,
    /// The channel, for a cast (default: the first with I/O) or a PCAP.
    #[serde(default)]
    file: String,
}

/// Sends what the export writes as chunks of the response body.
struct ChunkWriter {
    tx: mpsc::Sender<std::io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.tx
            .blocking_send(Ok(std::mem::take(&mut self.buf)))
            .map_err(|_| std::io::Error::other("the browser went away"))
    }
}

pub async fn download(
    State(app): State<Arc<App>>,
    remote: crate::remote::Remote,
    headers: HeaderMap,
    Query(q): Query<DownloadQuery>,
) -> Response {
    let Some((_, login)) = app.login(&headers) else {
        return redirect("/login");
    };
    let (tx, mut rx) = mpsc::channel::<std::io::Result<Vec<u8>>>(CHUNKS_IN_FLIGHT);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<String, Response>>();
    let content_type = KINDS
        .iter()
        .find(|k| k.name == q.format)
        .map(|k| k.content_type);
    tokio::task::spawn_blocking(move || {
        let Some(kind) = KINDS.iter().find(|k| k.name == q.format) else {
            let _ = ready_tx.send(Err(not_found(&login)));
            return;
        };
        let Some(session) = app.find(&q.id) else {
            let _ = ready_tx.send(Err(not_found(&login)));
            return;
        };
        let id = shown_id(&session);
        let files: Vec<RecordFile> = match session_record_files(&session) {
            Ok(f) => f.into_iter().filter(RecordFile::has_io).collect(),
            Err(e) => {
                let _ = ready_tx.send(Err(internal(format!("session {id}: {e}"))));
                return;
            }
        };
        // A named channel must be one of the session's files with I/O; nothing else of the
        // request is used to find a file.
        let channel = if q.file.is_empty() {
            None
        } else {
            match files.iter().find(|f| f.name == q.file) {
                Some(f) => Some(f.name.clone()),
                None => {
                    let _ = ready_tx.send(Err(not_found(&login)));
                    return;
                }
            }
        };
        let chosen: Vec<RecordFile> = match (kind.per_channel, &channel) {
            (true, Some(c)) => files.into_iter().filter(|f| &f.name == c).collect(),
            (true, None) => files.into_iter().take(1).collect(),
            (false, _) => files,
        };
        if kind.format != Format::Pcap && chosen.is_empty() {
            let _ = ready_tx.send(Err(not_found(&login)));
            return;
        }
        if kind.format == Format::Pcap && !sessrec::forward_view::has_pcap(&session) {
            let _ = ready_tx.send(Err(not_found(&login)));
            return;
        }
        let named_channel = if kind.per_channel {
            chosen.first().map(|f| f.name.clone())
        } else {
            channel.clone()
        };
        let mut args = vec![id.clone(), format!("--format={}", kind.name)];
        if let Some(c) = &named_channel {
            args.push(c.clone());
        }
        if let Err(r) = app.log(
            &login,
            remote,
            "web-download",
            &args,
            std::slice::from_ref(&id),
        ) {
            let _ = ready_tx.send(Err(r));
            return;
        }
        let name = file_name(&id, named_channel.as_deref(), kind.extension);
        let _ = ready_tx.send(Ok(name));
        let mut out = ChunkWriter {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        let written = if kind.format == Format::Pcap {
            sessrec::forward_view::write_pcap(&session, channel.as_deref(), &mut out)
        } else {
            let integrity = Some(sessrec::integrity::check(&session, &app.host, None).to_json());
            let player = app.settings.player.as_ref().and_then(|p| p.to_str());
            let options = Options {
                player,
                ..Default::default()
            };
            sessrec::export::write(
                &mut out,
                &session,
                &chosen,
                kind.format,
                &options,
                integrity,
            )
        };
        let flushed = out.flush();
        let failed = match (written, flushed) {
            (Err(e), _) => Some(e.message),
            (Ok(()), Err(e)) => Some(e.to_string()),
            (Ok(()), Ok(())) => None,
        };
        if let Some(e) = failed {
            eprintln!("sessrec-web: download of {id} as {}: {e}", kind.name);
            // The body ends with an error: the browser sees a failed download, not a short file.
            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    let name = match ready_rx.await {
        Ok(Ok(name)) => name,
        Ok(Err(r)) => return r,
        Err(_) => return internal("the export stopped".into()),
    };
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut r = response(
        StatusCode::OK,
        content_type.unwrap_or("application/octet-stream"),
        Body::from_stream(stream),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_hold_only_safe_characters() {
        assert_eq!(
            file_name("20261207T101010Z-ab12", Some("channel-1.jsonl"), "cast"),
            "sessrec-20261207T101010Z-ab12-channel-1.cast"
        );
        assert_eq!(
            file_name("bastion-1/20261207T101010Z-ab12", None, "txt"),
            "sessrec-bastion-1_20261207T101010Z-ab12.txt"
        );
        let hostile = file_name("a\"; filename=x.exe\r\n/../é", None, "html");
        assert_eq!(hostile, "sessrec-a___filename_x.exe___..__.html");
        assert!(file_name(&"x".repeat(1000), None, "json").len() <= MAX_FILE_NAME + 5);
    }
}
