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

/// Where the player is looked for when `--player` is not given, after
/// `$SESSREC_PLAYER_DIR` and `<prefix>/share/sessrec/asciinema-player` beside this program's
/// `<prefix>/bin`.
const PLAYER_DIRS: &[&str] = &[
    "/usr/share/sessrec/asciinema-player",
    "/usr/local/share/sessrec/asciinema-player",
];

/// Where a build from a source tree finds the player scripts/fetch-player.sh put there.
const SOURCE_PLAYER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vendor-player");

pub fn player_dir(explicit: Option<&str>) -> Result<PathBuf, Failure> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = explicit {
        candidates.push(PathBuf::from(p));
    } else {
        if let Some(p) = std::env::var_os("SESSREC_PLAYER_DIR") {
            candidates.push(PathBuf::from(p));
        }
        if let Some(prefix) = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
        {
            candidates.push(prefix.join("share/sessrec/asciinema-player"));
        }
        candidates.extend(PLAYER_DIRS.iter().map(PathBuf::from));
        candidates.push(PathBuf::from(SOURCE_PLAYER));
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

/// Longest pause kept in the page's recordings (longer ones are shortened to this, and the
/// timeline's jump marks are placed on the shortened clock).
const IDLE_LIMIT_S: f64 = 5.0;
/// Jump marks given to one player (the timeline lists every entry).
const MAX_MARKERS: usize = 1000;

/// A channel's recording for the player, its clock shortened at long pauses.
struct Recording {
    cast: String,
    duration: f64,
    /// (recording offset, player time) at each event, for placing timeline entries.
    clock: Vec<(f64, f64)>,
}

impl Recording {
    fn build(session: &SessionRef, file: &RecordFile, raw: bool) -> Result<Self, Failure> {
        let mut events = Vec::new();
        let header = crate::cast::build_cast(session, file, 3, raw, |ev| {
            events.push(ev.clone());
            Ok(())
        })?;
        // The player takes the recording as asciicast text.
        let mut cast = header.to_string();
        cast.push('\n');
        let (mut orig, mut shown) = (0.0f64, 0.0f64);
        let mut clock = Vec::with_capacity(events.len());
        for mut ev in events {
            let gap = ev.get(0).and_then(Value::as_f64).unwrap_or(0.0);
            orig += gap;
            let kept = gap.min(IDLE_LIMIT_S);
            shown += kept;
            clock.push((orig, shown));
            if let Some(t) = ev.get_mut(0) {
                *t = serde_json::json!((kept * 1e6).round() / 1e6);
            }
            cast.push_str(&ev.to_string());
            cast.push('\n');
        }
        Ok(Recording {
            cast,
            duration: shown,
            clock,
        })
    }

    /// Where the player shows recording offset `t` (seconds).
    fn player_time(&self, t: f64) -> f64 {
        let i = self.clock.partition_point(|(o, _)| *o <= t);
        match i.checked_sub(1).map(|i| self.clock[i]) {
            Some((o, s)) => s + (t - o).min(IDLE_LIMIT_S),
            None => t.min(IDLE_LIMIT_S),
        }
    }
}

/// One self-contained page for `files` (every channel of the session, or one): a player per
/// channel, and the session's timeline whose entries jump to their moment in their channel's
/// player (also the player's markers).
pub fn export(
    out: &mut dyn Write,
    session: &SessionRef,
    files: &[RecordFile],
    raw: bool,
    player: Option<&str>,
) -> Result<(), Failure> {
    let dir = player_dir(player)?;
    let (js, css) = read_player(&dir)?;
    let recordings = files
        .iter()
        .map(|f| Recording::build(session, f, raw))
        .collect::<Result<Vec<_>, _>>()?;
    let column = |f: &RecordFile| f.name.trim_end_matches(".jsonl").to_string();
    // The timeline of the session (login, logout, execs) and of the exported files.
    let mut timeline_files = Vec::new();
    for (kind, name) in [
        (crate::store::FileKind::Session, "session.jsonl"),
        (crate::store::FileKind::Audit, crate::store::AUDIT_FILE),
    ] {
        let path = session.dir.join(name);
        if path.is_file() {
            timeline_files.push(RecordFile::open(kind, name.into(), path));
        }
    }
    timeline_files.extend(files.iter().cloned());
    let columns: Vec<String> = files.iter().map(column).collect();
    let mut markers: Vec<Vec<Value>> = vec![Vec::new(); files.len()];
    let mut timeline = String::new();
    for e in crate::show::timeline(&timeline_files) {
        let channel = columns.iter().position(|c| *c == e.file);
        if channel.is_none() && !matches!(e.file.as_str(), "session" | "audit") {
            // Another channel's audit record: not part of this page.
            continue;
        }
        let when = if e.time_us == i64::MIN || e.time_us == i64::MAX {
            "?".to_string()
        } else {
            crate::eventtext::timeline_time(e.time_us)
        };
        let jump = channel.and_then(|i| {
            let start = files[i].start_us?;
            let t = recordings[i].player_time((e.time_us - start).max(0) as f64 / 1e6);
            Some((i, t))
        });
        let when = match jump {
            Some((i, t)) => {
                if markers[i].len() < MAX_MARKERS
                    && matches!(e.kind.as_str(), "typed" | "ran" | "transfer" | "sudo.start")
                {
                    let label: String = e.text.trim_start().chars().take(80).collect();
                    markers[i].push(serde_json::json!([(t * 1e3).round() / 1e3, label]));
                }
                format!(
                    "<a class=\"jump\" href=\"#sessrec-player-{i}\" data-player=\"{i}\" data-t=\"{t:.3}\"><time>{}</time></a>",
                    html_text(&when)
                )
            }
            None => format!("<time>{}</time>", html_text(&when)),
        };
        timeline.push_str(&format!(
            "<li>{when} <b>{}</b> {} {}</li>\n",
            html_text(&e.file),
            html_text(&e.kind),
            html_text(&e.text)
        ));
    }
    let channels: Vec<Value> = files
        .iter()
        .zip(&recordings)
        .zip(markers)
        .map(|((f, r), markers)| {
            let (cols, rows) = f.geometry();
            serde_json::json!({
                "cast": r.cast,
                "cols": cols,
                "rows": rows,
                // Show the end of the recording before it is played: that is what the
                // investigator usually wants to see first.
                // (A millisecond past the last event: a poster at its exact time may show
                // the screen from before it.)
                "poster": format!("npt:{:.3}", r.duration + 0.001),
                "markers": markers,
            })
        })
        .collect();
    let data = serde_json::json!({ "channels": channels });
    let init = "(function(){var d=JSON.parse(document.getElementById('sessrec-data').textContent);\
var ps=d.channels.map(function(c,i){return AsciinemaPlayer.create({data:c.cast},\
document.getElementById('sessrec-player-'+i),{cols:c.cols,rows:c.rows,poster:c.poster,\
fit:'width',markers:c.markers});});\
function jump(i,t){var p=ps[i];if(p){p.seek(t);}}\
document.querySelectorAll('a.jump').forEach(function(a){a.addEventListener('click',function(){\
jump(+a.dataset.player,+a.dataset.t);});});\
var m=/^#t=([0-9]+):([0-9.]+)$/.exec(location.hash);if(m){jump(+m[1],+m[2]);}})();";
    let page_css = "body{margin:0;padding:1em;background:#fff;color:#111;font-family:sans-serif}\
h1{font-size:1.1em}dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;font-size:.9em}\
dt{font-weight:bold}.sessrec-player{max-width:100%}\
h2{font-size:1em}.timeline{font-family:monospace;font-size:.85em}";
    let csp = format!(
        "default-src 'none'; script-src {} {} 'wasm-unsafe-eval'; style-src {} {}; img-src data:; font-src data:",
        csp_hash(&js),
        csp_hash(init),
        csp_hash(&css),
        csp_hash(page_css)
    );
    let title = match files {
        [one] => format!("sessrec {} {}", session.id, column(one)),
        _ => format!("sessrec {}", session.id),
    };
    let first = &files[0];
    let mut facts = String::new();
    for (label, value) in [
        ("session", session.id.as_str()),
        ("user", first.field(header_key::USER)),
        ("actor", first.field(header_key::ACTOR)),
        ("host", first.field(header_key::HOST)),
        ("started", first.field(header_key::TIME)),
    ] {
        if !value.is_empty() {
            facts.push_str(&format!(
                "<dt>{}</dt><dd>{}</dd>",
                label,
                html_escape(value)
            ));
        }
    }
    let mut players = String::new();
    for (i, f) in files.iter().enumerate() {
        players.push_str(&format!(
            "<h2 id=\"channel-{i}\">{}</h2>\n<div id=\"sessrec-player-{i}\" class=\"sessrec-player\"></div>\n",
            html_text(&crate::playlist::banner(f))
        ));
    }
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n\
<meta name=\"referrer\" content=\"no-referrer\">\n<title>{title}</title>\n\
<style>{css}</style>\n<style>{page_css}</style>\n</head><body>\n\
<h1>{title}</h1>\n<dl>{facts}</dl>\n{players}\
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
