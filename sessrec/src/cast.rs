//! Builds an asciicast (v2 or v3) from one record file: shared by `export` and the HTML page.
#![forbid(unsafe_code)]

use std::io;

use serde_json::{json, Value};

use crate::playlist::{cues, cues_in, Cue, Timed};
use crate::records::RecordFile;
use crate::sanitize::Sanitizer;
use crate::store::SessionRef;
use crate::utf8::Utf8Decoder;

/// Builds an asciicast (v2: absolute times; v3: intervals) from one file's cues. Output is
/// filtered to drawing sequences unless `raw`; invalid UTF-8 becomes U+FFFD and is counted in
/// the header (`sessrec.invalid_bytes`).
pub fn build_cast(
    session: &SessionRef,
    file: &RecordFile,
    version: u8,
    raw: bool,
    sink: impl FnMut(&Value) -> io::Result<()>,
) -> io::Result<Value> {
    build(session, file, version, raw, None, sink)
}

/// [`build_cast`] (v2, filtered) of the lines that start in the byte range `[from, to)` of the
/// file: a piece of a long recording, its events at their times in the whole file.
pub fn build_cast_piece(
    session: &SessionRef,
    file: &RecordFile,
    from: u64,
    to: u64,
    sink: impl FnMut(&Value) -> io::Result<()>,
) -> io::Result<Value> {
    build(session, file, 2, false, Some((from, to)), sink)
}

fn build(
    session: &SessionRef,
    file: &RecordFile,
    version: u8,
    raw: bool,
    range: Option<(u64, u64)>,
    mut sink: impl FnMut(&Value) -> io::Result<()>,
) -> io::Result<Value> {
    let (cols, rows) = file.geometry();
    let mut decoder = Utf8Decoder::new();
    let mut input_decoder = Utf8Decoder::new();
    let mut sanitizer = Sanitizer::with_raw(raw);
    let mut last_us = 0u64;
    let mut exit_status = None;
    let mut damaged = Vec::new();
    let mut emit = |at_us: u64, code: &str, data: String, last_us: &mut u64| -> io::Result<()> {
        let t = if version == 2 {
            at_us as f64 / 1e6
        } else {
            at_us.saturating_sub(*last_us) as f64 / 1e6
        };
        *last_us = at_us;
        sink(&json!([round6(t), code, data]))
    };
    let all = match range {
        None => Box::new(cues(std::slice::from_ref(file), false)) as Box<dyn Iterator<Item = _>>,
        Some((from, to)) => Box::new(cues_in(file, from, to)),
    };
    for Timed { at_us, cue } in all {
        match cue {
            Cue::Output(data) => {
                let mut filtered = Vec::with_capacity(data.len());
                sanitizer.push(decoder.push(&data).as_bytes(), &mut filtered);
                if !filtered.is_empty() {
                    emit(
                        at_us,
                        "o",
                        String::from_utf8_lossy(&filtered).into_owned(),
                        &mut last_us,
                    )?;
                }
            }
            Cue::Input { data, .. } => {
                let text = input_decoder.push(&data);
                if !text.is_empty() {
                    emit(at_us, "i", text, &mut last_us)?;
                }
            }
            Cue::Resize { cols, rows } => emit(at_us, "r", format!("{cols}x{rows}"), &mut last_us)?,
            Cue::Exit(status) => exit_status = status,
            Cue::Damaged(d) => damaged.push(d),
            Cue::Banner(_) => {}
        }
    }
    let tail = decoder.finish();
    let mut filtered = Vec::new();
    sanitizer.push(tail.as_bytes(), &mut filtered);
    sanitizer.finish(&mut filtered);
    if !filtered.is_empty() {
        emit(
            last_us,
            "o",
            String::from_utf8_lossy(&filtered).into_owned(),
            &mut last_us,
        )?;
    }
    if version == 3 {
        if let Some(s) = exit_status {
            emit(last_us, "x", s.to_string(), &mut last_us)?;
        }
    }
    let timestamp = file.start_us.map(|t| t.div_euclid(1_000_000));
    let term = file
        .channel_start()
        .and_then(|s| s.term.as_deref())
        .unwrap_or_default();
    let meta = json!({
        "session": session.id,
        "file": file.name,
        "invalid_bytes": decoder.invalid_bytes(),
        "input_invalid_bytes": input_decoder.invalid_bytes(),
        "filtered": !raw,
        "sequences_dropped": sanitizer.dropped(),
        "damaged_lines": damaged,
    });
    let title = format!(
        "sessrec {} {}",
        session.id,
        file.name.trim_end_matches(".jsonl")
    );
    let mut header = if version == 2 {
        json!({"version": 2, "width": cols, "height": rows, "title": title, "sessrec": meta})
    } else {
        let mut t = json!({"cols": cols, "rows": rows});
        if !term.is_empty() {
            t["type"] = term.into();
        }
        json!({"version": 3, "term": t, "title": title, "sessrec": meta})
    };
    if let Some(ts) = timestamp {
        header["timestamp"] = ts.into();
    }
    let command = file.command_text();
    if !command.is_empty() {
        header["command"] = command.into();
    }
    if version == 2 && !term.is_empty() {
        header["env"] = json!({"TERM": term});
    }
    Ok(header)
}

fn round6(t: f64) -> f64 {
    (t * 1e6).round() / 1e6
}
