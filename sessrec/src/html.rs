//! `export --format html`: one self-contained page that replays a channel offline with the
//! asciinema-player (inlined), the recording embedded as escaped JSON data, under a CSP of
//! `default-src 'none'` plus hashes of exactly the inlined script and style.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;
use sessrec_core::schema::header_key;
use sha2::{Digest, Sha256};

use crate::context::Failure;
use crate::records::RecordFile;
use crate::store::SessionRef;

/// Where the player is looked for when `--player` is not given.
const PLAYER_DIRS: &[&str] = &["/usr/share/sessrec/asciinema-player"];

fn player_dir(explicit: Option<&str>) -> Result<PathBuf, Failure> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = explicit {
        candidates.push(PathBuf::from(p));
    } else {
        if let Some(p) = std::env::var_os("SESSREC_PLAYER_DIR") {
            candidates.push(PathBuf::from(p));
        }
        candidates.extend(PLAYER_DIRS.iter().map(PathBuf::from));
    }
    for c in &candidates {
        if c.join("asciinema-player.min.js").is_file() && c.join("asciinema-player.css").is_file() {
            return Ok(c.clone());
        }
    }
    Err(Failure::error(format!(
        "asciinema-player not found in {} (run scripts/fetch-player.sh, or give --player DIR)",
        candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// JSON text that is safe inside an HTML `<script type="application/json">` element: no `<`,
/// `>`, `&` or line separators appear literally, so `</script>` cannot end the element.
pub fn json_for_html(v: &Value) -> String {
    let text = v.to_string();
    let mut out = String::with_capacity(text.len() + 64);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

pub fn html_escape(text: &str) -> String {
    html_text(&crate::escape::escape_control(text))
}

/// HTML-escapes text whose control characters are already escaped.
fn html_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn csp_hash(text: &str) -> String {
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

/// Reads the player after checking it cannot end its own element early.
fn read_player(dir: &Path) -> Result<(String, String), Failure> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .map_err(|e| Failure::error(format!("{}: {e}", dir.join(name).display())))
    };
    let js = read("asciinema-player.min.js")?;
    let css = read("asciinema-player.css")?;
    if js.to_ascii_lowercase().contains("</script") || css.to_ascii_lowercase().contains("</style")
    {
        return Err(Failure::error(
            "the player files contain a closing tag and cannot be inlined",
        ));
    }
    Ok((js, css))
}

pub fn export(
    out: &mut dyn Write,
    session: &SessionRef,
    file: &RecordFile,
    raw: bool,
    player: Option<&str>,
) -> Result<(), Failure> {
    let dir = player_dir(player)?;
    let (js, css) = read_player(&dir)?;
    let mut events = Vec::new();
    let header = crate::cast::build_cast(session, file, 3, raw, |ev| {
        events.push(ev.clone());
        Ok(())
    })?;
    // The player takes the recording as asciicast text.
    let mut cast = header.to_string();
    cast.push('\n');
    let mut duration = 0.0f64;
    for ev in &events {
        duration += ev.get(0).and_then(Value::as_f64).unwrap_or(0.0);
        cast.push_str(&ev.to_string());
        cast.push('\n');
    }
    let (cols, rows) = file.geometry();
    let data = serde_json::json!({
        "cast": cast,
        "cols": cols,
        "rows": rows,
        // Show the end of the recording before it is played: that is what the investigator
        // usually wants to see first.
        "poster": format!("npt:{:.3}", duration),
    });
    let init = "(function(){var d=JSON.parse(document.getElementById('sessrec-data').textContent);\
AsciinemaPlayer.create({data:d.cast},document.getElementById('sessrec-player'),\
{cols:d.cols,rows:d.rows,poster:d.poster,fit:'width',idleTimeLimit:5});})();";
    let page_css = "body{margin:0;padding:1em;background:#fff;color:#111;font-family:sans-serif}\
h1{font-size:1.1em}dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;font-size:.9em}\
dt{font-weight:bold}#sessrec-player{max-width:100%}\
h2{font-size:1em}.timeline{font-family:monospace;font-size:.85em}";
    let csp = format!(
        "default-src 'none'; script-src {} {} 'wasm-unsafe-eval'; style-src {} {}; img-src data:; font-src data:",
        csp_hash(&js),
        csp_hash(init),
        csp_hash(&css),
        csp_hash(page_css)
    );
    let title = format!(
        "sessrec {} {}",
        session.id,
        file.name.trim_end_matches(".jsonl")
    );
    // The channel's timeline (and the login/logout around it) as escaped text under the player.
    let mut timeline = String::new();
    let mut files = Vec::new();
    let session_file = session.dir.join("session.jsonl");
    if session_file.is_file() {
        files.push(RecordFile::open(
            crate::store::FileKind::Session,
            "session.jsonl".into(),
            session_file,
        ));
    }
    files.push(file.clone());
    for e in crate::show::timeline(&files) {
        let when = if e.time_us == i64::MIN || e.time_us == i64::MAX {
            "?".to_string()
        } else {
            sessrec_core::time::Timestamp::from_micros(e.time_us).to_string()
        };
        timeline.push_str(&format!(
            "<li><time>{}</time> <b>{}</b> {} {}</li>\n",
            html_text(&when),
            html_text(&e.file),
            html_text(&e.kind),
            html_text(&e.text)
        ));
    }
    let mut facts = String::new();
    let command = file.command_text();
    for (label, value) in [
        ("session", session.id.as_str()),
        ("file", file.name.as_str()),
        ("user", file.field(header_key::USER)),
        ("actor", file.field(header_key::ACTOR)),
        ("host", file.field(header_key::HOST)),
        ("started", file.field(header_key::TIME)),
        ("command", command.as_str()),
    ] {
        if !value.is_empty() {
            facts.push_str(&format!(
                "<dt>{}</dt><dd>{}</dd>",
                label,
                html_escape(value)
            ));
        }
    }
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n\
<meta name=\"referrer\" content=\"no-referrer\">\n<title>{title}</title>\n\
<style>{css}</style>\n<style>{page_css}</style>\n</head><body>\n\
<h1>{title}</h1>\n<dl>{facts}</dl>\n<div id=\"sessrec-player\"></div>\n\
<h2>Timeline</h2>\n<ol class=\"timeline\">{timeline}</ol>\n\
<script type=\"application/json\" id=\"sessrec-data\">{data}</script>\n\
<script>{js}</script>\n<script>{init}</script>\n</body></html>\n",
        title = html_escape(&title),
        data = json_for_html(&data),
    );
    out.write_all(page.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_cannot_close_the_script() {
        let v =
            serde_json::json!({"path": "</script><script>alert(1)</script>", "x": "a&b\u{2028}"});
        let s = json_for_html(&v);
        assert!(
            !s.contains('<') && !s.contains('>') && !s.contains('&') && !s.contains('\u{2028}')
        );
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn html_text_is_escaped() {
        assert_eq!(
            html_escape("<b>\"x\"&'"),
            "&lt;b&gt;&quot;x&quot;&amp;&#39;"
        );
    }
}
