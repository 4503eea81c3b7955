//! `export --format asciicast-v3` checked by a parser written from the asciicast v3
//! specification (docs.asciinema.org/manual/asciicast/v3): newline-delimited JSON; the first
//! line is the header object (never a comment) with `version: 3` and `term.cols`/`term.rows`;
//! every following line is a comment starting with `#` or an event `[interval, code, data]`
//! where interval is the non-negative time since the previous event, code one of `o i m r x`,
//! data a string (`COLSxROWS` for `r`, the exit status for `x`).

use std::process::Command;

use serde_json::Value;
use sessrec_core::testing::synth::{id_at, SynthSession};

/// Parses a v3 file; returns the output text and the sum of intervals, or what is wrong.
fn parse_v3(text: &str) -> Result<(String, f64), String> {
    let mut lines = text.split('\n');
    let first = lines.next().ok_or("empty file")?;
    if first.starts_with('#') {
        return Err("the first line must not be a comment".into());
    }
    let header: Value =
        serde_json::from_str(first).map_err(|e| format!("header is not JSON: {e}"))?;
    let header = header.as_object().ok_or("header is not an object")?;
    if header.get("version") != Some(&Value::from(3)) {
        return Err("version is not 3".into());
    }
    let term = header
        .get("term")
        .and_then(Value::as_object)
        .ok_or("no term object")?;
    for k in ["cols", "rows"] {
        match term.get(k).and_then(Value::as_u64) {
            Some(n) if n > 0 => {}
            _ => return Err(format!("term.{k} is not a positive integer")),
        }
    }
    if let Some(t) = term.get("type") {
        t.as_str().ok_or("term.type is not a string")?;
    }
    if let Some(t) = header.get("timestamp") {
        t.as_i64().ok_or("timestamp is not an integer")?;
    }
    if let Some(t) = header.get("idle_time_limit") {
        t.as_f64().ok_or("idle_time_limit is not a number")?;
    }
    for k in ["command", "title"] {
        if let Some(v) = header.get(k) {
            v.as_str().ok_or(format!("{k} is not a string"))?;
        }
    }
    if let Some(env) = header.get("env") {
        let env = env.as_object().ok_or("env is not an object")?;
        if !env.values().all(Value::is_string) {
            return Err("env values must be strings".into());
        }
    }
    let mut output = String::new();
    let mut total = 0.0;
    for (i, line) in lines.enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let ev: Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: not JSON: {e}", i + 2))?;
        let ev = ev
            .as_array()
            .ok_or(format!("line {}: event is not an array", i + 2))?;
        if ev.len() != 3 {
            return Err(format!("line {}: event has {} elements", i + 2, ev.len()));
        }
        let interval = ev[0]
            .as_f64()
            .ok_or(format!("line {}: interval is not a number", i + 2))?;
        if interval < 0.0 {
            return Err(format!("line {}: negative interval", i + 2));
        }
        total += interval;
        let code = ev[1]
            .as_str()
            .ok_or(format!("line {}: code is not a string", i + 2))?;
        let data = ev[2]
            .as_str()
            .ok_or(format!("line {}: data is not a string", i + 2))?;
        match code {
            "o" => output.push_str(data),
            "i" | "m" => {}
            "r" => {
                let (c, r) = data
                    .split_once('x')
                    .ok_or(format!("line {}: bad resize {data:?}", i + 2))?;
                c.parse::<u16>()
                    .and(r.parse::<u16>())
                    .map_err(|_| format!("line {}: bad resize {data:?}", i + 2))?;
            }
            "x" => {
                data.parse::<i64>()
                    .map_err(|_| format!("line {}: bad exit status {data:?}", i + 2))?;
            }
            other => return Err(format!("line {}: unknown event code {other:?}", i + 2)),
        }
    }
    Ok((output, total))
}

#[test]
fn the_parser_rejects_what_the_spec_forbids() {
    assert!(
        parse_v3("{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}\n[0.5,\"o\",\"hi\"]\n")
            .is_ok()
    );
    assert!(parse_v3("# c\n{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}\n").is_err());
    assert!(parse_v3("{\"version\":2,\"width\":80,\"height\":24}\n").is_err());
    assert!(parse_v3("{\"version\":3,\"term\":{\"cols\":0,\"rows\":24}}\n").is_err());
    assert!(
        parse_v3("{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}\n[-1,\"o\",\"x\"]\n").is_err()
    );
    assert!(
        parse_v3("{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}\n[1,\"r\",\"80-24\"]\n")
            .is_err()
    );
    assert!(
        parse_v3("{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}\n[1,\"z\",\"\"]\n").is_err()
    );
}

#[test]
fn export_is_valid_v3() {
    let base = std::env::temp_dir().join(format!(
        "srt-cli-v3-{}-{}",
        std::process::id(),
        sessrec_core::time::monotonic_micros()
    ));
    let records = base.join("records");
    std::fs::create_dir_all(&records).unwrap();
    let id = id_at(1_764_000_000_000).unwrap();
    let mut s = SynthSession::login(&records, id, "srt-v3", "srt-v3", "192.0.2.9").unwrap();
    let mut ch = s.channel("shell", "pty", None).unwrap();
    let mut t = 50_000;
    ch.typed(&mut t, "$ ", "echo v3-check", "v3-check\n")
        .unwrap();
    ch.event(
        "resize",
        serde_json::json!({"off": t, "cols": 100, "rows": 30}),
    )
    .unwrap();
    t += 2_000_000;
    ch.output(t, "tail ünï\n".as_bytes()).unwrap();
    s.finished(ch, 3).unwrap();
    s.logout().unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_sessrec"))
        .arg("--dir")
        .arg(&records)
        .args(["export", &format!("{id}/1"), "--format", "asciicast-v3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (output, total) = parse_v3(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(
        output.contains("$ echo v3-check\r\nv3-check\r\n"),
        "{output:?}"
    );
    assert!(output.contains("tail ünï"));
    // Intervals add up to the last event's offset.
    assert!((total - t as f64 / 1e6).abs() < 0.01, "{total} vs {t}");
    assert!(
        text.contains("[0.0,\"r\",\"100x30\"]") || text.contains(",\"r\",\"100x30\"]"),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with(",\"x\",\"3\"]"),
        "exit status event last: {text}"
    );
    let _ = std::fs::remove_dir_all(&base);
}
