//! `sessrec export`: asciicast v2 and v3, text (rendered or every glyph), HTML, JSON.
#![forbid(unsafe_code)]

use std::io::{self, Write};

use serde_json::json;

use crate::cast::build_cast;
use crate::context::{exit, CmdResult, Context, Failure};
use crate::playlist::{cues, Cue, Timed};
use crate::records::{target_files, RecordFile};
use crate::sanitize::Sanitizer;
use crate::store::SessionRef;
use crate::utf8::Utf8Decoder;

/// What `--format` names, parsed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    AsciicastV2,
    AsciicastV3,
    Text,
    Html,
    Json,
    /// The kept payload of a connect channel, as its PCAP file.
    Pcap,
}

impl Format {
    const CHOICES: &'static str = "asciicast-v2, asciicast-v3, text, html, json or pcap";

    pub fn parse(name: &str) -> Result<Self, Failure> {
        match name {
            "asciicast-v2" => Ok(Format::AsciicastV2),
            "asciicast-v3" => Ok(Format::AsciicastV3),
            "text" => Ok(Format::Text),
            "html" => Ok(Format::Html),
            "json" => Ok(Format::Json),
            "pcap" => Ok(Format::Pcap),
            other => Err(Failure::usage(format!(
                "unknown format {:?}: use {}",
                crate::escape::escape_control(other),
                Self::CHOICES
            ))),
        }
    }

    /// Formats that hold one terminal, so one file.
    fn is_single_terminal(self) -> bool {
        matches!(self, Format::AsciicastV2 | Format::AsciicastV3)
    }
}

pub fn run(ctx: &Context) -> CmdResult {
    let format = ctx
        .args
        .value("--format")
        .ok_or_else(|| Failure::usage(format!("--format is required: {}", Format::CHOICES)))?;
    let format = Format::parse(format)?;
    let raw = ctx.args.flag("--raw");
    if format == Format::Pcap {
        let mut out = crate::output::output(ctx.args.value("--output"))?;
        crate::forward_view::export_pcap(ctx, &mut out)?;
        out.finish()?;
        return Ok(exit::OK);
    }
    let (session, mut files) =
        target_files(&ctx.tree, &ctx.args.positional[0]).map_err(Failure::error)?;
    if format.is_single_terminal() && files.len() > 1 {
        // A cast has one terminal: take the first channel and say which.
        let first = files.remove(0);
        eprintln!(
            "sessrec export: session has {} files with I/O; exporting {} (name one as SESSION/CHANNEL)",
            files.len() + 1,
            first.name
        );
        files = vec![first];
    }
    if format == Format::Text && ctx.args.flag("--rendered") && ctx.args.flag("--typed") {
        return Err(Failure::usage("--rendered and --typed exclude each other"));
    }
    let options = Options {
        raw,
        typed: ctx.args.flag("--typed"),
        player: ctx.args.value("--player"),
    };
    let integrity = ctx.integrity.first().map(crate::verdict::Verdict::to_json);
    let mut out = crate::output::output(ctx.args.value("--output"))?;
    write(&mut out, &session, &files, format, &options, integrity)?;
    out.finish()?;
    Ok(exit::OK)
}

/// How an export is written, besides its format.
#[derive(Debug, Default, Clone, Copy)]
pub struct Options<'a> {
    /// `--raw`: control sequences unfiltered.
    pub raw: bool,
    /// `--typed` (text): the typed input instead of the rendered screen.
    pub typed: bool,
    /// `--player DIR` (html).
    pub player: Option<&'a str>,
}

/// Writes `files` of `session` as `format` (not PCAP: see
/// [`crate::forward_view::write_pcap`]); casts take the first file. `integrity` is the
/// session's verdict as JSON, stated in the export. Shared by `sessrec export` and the web
/// console's downloads.
pub fn write(
    out: &mut dyn Write,
    session: &SessionRef,
    files: &[RecordFile],
    format: Format,
    options: &Options,
    integrity: Option<serde_json::Value>,
) -> Result<(), Failure> {
    let raw = options.raw;
    if files.is_empty() {
        return Err(Failure::error(format!(
            "session {} has no channel records",
            session.id
        )));
    }
    if let Some(v) = &integrity {
        match format {
            Format::Text => writeln!(out, "[integrity: {}]", v["summary"].as_str().unwrap_or("?"))?,
            Format::Json => {
                let line = json!({"session": session.id, "integrity": v});
                serde_json::to_writer(&mut *out, &line)
                    .map_err(|e| Failure::error(e.to_string()))?;
                writeln!(out)?;
            }
            _ => {}
        }
    }
    match format {
        Format::AsciicastV2 => asciicast(out, session, &files[0], 2, raw, integrity)?,
        Format::AsciicastV3 => asciicast(out, session, &files[0], 3, raw, integrity)?,
        Format::Text if options.typed => typed_text(out, files)?,
        Format::Text => rendered_text(out, files)?,
        Format::Json => {
            json_lines(out, session, files)?;
            crate::execs::export_json(out, session, files)?;
        }
        Format::Pcap => {
            return Err(Failure::error(
                "a PCAP is written by forward_view::write_pcap",
            ))
        }
        Format::Html => {
            let mut page = Vec::new();
            crate::html::export(&mut page, session, files, raw, options.player)?;
            out.write_all(&with_integrity_banner(page, integrity.as_ref()))?;
        }
    }
    Ok(())
}

/// Writes a cast: events are buffered to a temporary file first, because the header (with
/// the invalid-byte count) comes first but is known only at the end.
fn asciicast(
    out: &mut dyn Write,
    session: &SessionRef,
    file: &RecordFile,
    version: u8,
    raw: bool,
    integrity: Option<serde_json::Value>,
) -> Result<(), Failure> {
    let mut spool = tempfile_spool()?;
    let header = {
        let mut w = io::BufWriter::new(&mut spool);
        let h = build_cast(session, file, version, raw, |ev| {
            serde_json::to_writer(&mut w, ev)?;
            w.write_all(b"\n")
        })?;
        w.flush()?;
        h
    };
    let mut header = header;
    if let Some(v) = integrity {
        header["sessrec"]["integrity"] = v;
    }
    serde_json::to_writer(&mut *out, &header).map_err(|e| Failure::error(e.to_string()))?;
    out.write_all(b"\n")?;
    use std::io::{Seek, SeekFrom};
    spool.seek(SeekFrom::Start(0))?;
    io::copy(&mut spool, out)?;
    Ok(())
}

/// The page with the integrity verdict shown first in its body (and as a `<meta>` for tools).
fn with_integrity_banner(page: Vec<u8>, integrity: Option<&serde_json::Value>) -> Vec<u8> {
    let Some(v) = integrity else {
        return page;
    };
    let text = v["summary"].as_str().unwrap_or("?");
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    let status = v["status"].as_str().unwrap_or("unverifiable");
    let meta = format!("<meta name=\"sessrec-integrity\" content=\"{escaped}\">\n");
    let banner = format!(
        "<p id=\"sessrec-integrity\" data-status=\"{status}\"><b>integrity:</b> {escaped}</p>\n"
    );
    let text = String::from_utf8_lossy(&page);
    let text = text.replacen("</head>", &format!("{meta}</head>"), 1);
    text.replacen("<body>\n", &format!("<body>\n{banner}"), 1)
        .into_bytes()
}

/// An anonymous temporary file (O_TMPFILE-like: created and unlinked at once, mode 0600).
pub fn tempfile_spool() -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    for attempt in 0..100u32 {
        let path = dir.join(format!(
            ".sessrec-spool-{}-{}-{attempt}",
            std::process::id(),
            sessrec_core::time::monotonic_micros()
        ));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => {
                std::fs::remove_file(&path)?;
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary file name",
    ))
}

/// The transcript as a terminal would have shown it (scrollback plus the final screen).
fn rendered_text(out: &mut dyn Write, files: &[RecordFile]) -> Result<(), Failure> {
    for (i, f) in files.iter().enumerate() {
        if files.len() > 1 {
            if i > 0 {
                writeln!(out)?;
            }
            writeln!(out, "{}", crate::playlist::banner(f))?;
        }
        if f.is_pipe() {
            crate::transcript::pipe_text(f, out)?;
            continue;
        }
        let (cols, rows) = f.geometry();
        let mut r = crate::transcript::Renderer::new(cols, rows);
        let mut sanitizer = Sanitizer::new();
        for Timed { cue, .. } in cues(std::slice::from_ref(f), false) {
            match cue {
                Cue::Output(d) => {
                    let mut clean = Vec::new();
                    sanitizer.push(&d, &mut clean);
                    r.process(&clean, out)?;
                }
                Cue::Resize { cols, rows } => r.resize(cols, rows),
                Cue::Damaged(d) => writeln!(out, "[damaged record: {d}]")?,
                _ => {}
            }
        }
        r.finish(out)?;
    }
    Ok(())
}

/// Every printable glyph of the output, nothing overwritten (escape sequences removed, CR and
/// BS ignored), with input that was typed without echo inserted as `⟨typed: ...⟩`: in a pty
/// channel every line `show` flags "no echo" (typed after `stty -echo`, at a password prompt),
/// where it was entered; elsewhere the input the recorder flagged as typed with echo off.
fn typed_text(out: &mut dyn Write, files: &[RecordFile]) -> Result<(), Failure> {
    for f in files {
        if files.len() > 1 {
            writeln!(out, "{}", crate::playlist::banner(f))?;
        }
        let mut unechoed = crate::show::unechoed_lines(f).into_iter().peekable();
        let pty_lines = crate::show::rebuilds_lines(f);
        let mut sanitizer = Sanitizer::new();
        let mut strip = EscapeStripper::default();
        let mut hidden = Utf8Decoder::new();
        for Timed { cue, at_us } in cues(std::slice::from_ref(f), false) {
            while let Some((_, line)) = unechoed.next_if(|(end, _)| *end <= at_us) {
                write!(out, "⟨typed: {}⟩", crate::escape::escape_visible(&line))?;
            }
            match cue {
                Cue::Output(d) => {
                    let clean = sanitizer.filter(&d);
                    out.write_all(&strip.strip(&clean))?;
                }
                Cue::Input {
                    data,
                    echo_off: true,
                } if !pty_lines => {
                    write!(
                        out,
                        "⟨typed: {}⟩",
                        crate::escape::escape_control(&hidden.push(&data))
                    )?;
                }
                Cue::Damaged(d) => writeln!(out, "[damaged record: {d}]")?,
                _ => {}
            }
        }
        for (_, line) in unechoed {
            write!(out, "⟨typed: {}⟩", crate::escape::escape_visible(&line))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Removes the (already sanitized) escape sequences and CR/BS, keeping text and newlines.
#[derive(Default)]
struct EscapeStripper {
    in_esc: bool,
    in_csi: bool,
}

impl EscapeStripper {
    fn strip(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            if self.in_csi {
                if (0x40..=0x7e).contains(&b) {
                    self.in_csi = false;
                }
                continue;
            }
            if self.in_esc {
                self.in_esc = false;
                if b == b'[' {
                    self.in_csi = true;
                } else if (0x20..0x30).contains(&b) {
                    // ESC ( X: one more byte.
                    self.in_esc = true;
                }
                continue;
            }
            match b {
                0x1b => self.in_esc = true,
                b'\n' | b'\t' => out.push(b),
                b'\r' | 0x08 | 0x0b | 0x0c | 0x0e | 0x0f => {}
                _ => out.push(b),
            }
        }
        out
    }
}

/// One JSON object per frame and event, times resolved.
fn json_lines(
    out: &mut dyn Write,
    session: &SessionRef,
    files: &[RecordFile],
) -> Result<(), Failure> {
    use base64::Engine;
    for f in files {
        let base = f.start_us.unwrap_or(0);
        let items = f
            .items()
            .map_err(|e| Failure::error(format!("{}: {e}", f.name)))?;
        for item in items {
            let v = match item {
                crate::records::Item::Frame {
                    off_us,
                    stream,
                    data,
                    echo_off,
                } => {
                    let mut v = json!({
                        "session": session.id, "file": f.name,
                        "time": sessrec_core::time::Timestamp::from_micros(base + off_us as i64).to_string(),
                        "offset_s": off_us as f64 / 1e6, "stream": stream.code(),
                    });
                    match String::from_utf8(data) {
                        Ok(s) => v["text"] = s.into(),
                        Err(e) => {
                            v["base64"] = base64::engine::general_purpose::STANDARD
                                .encode(e.as_bytes())
                                .into()
                        }
                    }
                    if echo_off {
                        v["echo_off"] = true.into();
                    }
                    v
                }
                crate::records::Item::Event { line_no, value, .. } => {
                    json!({"session": session.id, "file": f.name, "line": line_no, "event": value})
                }
                crate::records::Item::Damaged { line_no, problem } => {
                    json!({"session": session.id, "file": f.name, "line": line_no, "damaged": problem})
                }
            };
            serde_json::to_writer(&mut *out, &v).map_err(|e| Failure::error(e.to_string()))?;
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripper_keeps_glyphs() {
        let mut s = EscapeStripper::default();
        assert_eq!(s.strip(b"ab\x08c\r\n\x1b[1;31mred\x1b(0x"), b"abc\nredx");
    }
}
