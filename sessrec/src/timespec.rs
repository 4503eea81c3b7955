//! Time arguments (`--since`, `--until`, `--older-than`, `--from`, `--idle-limit`) and
//! duration formatting. Times are µs since the Unix epoch, UTC.
#![forbid(unsafe_code)]

use std::fmt;

const SECOND: i64 = 1_000_000;

/// Why a time or duration argument was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeError(pub String);

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a duration: `90` (seconds), `1.5` (seconds), `2h`, `7d`, `1h30m`, `2w`, `500ms`,
/// or `HH:MM:SS` / `MM:SS`. Returns µs.
pub fn parse_duration(text: &str) -> Result<i64, TimeError> {
    let t = text.trim();
    let bad = || {
        TimeError(format!(
            "bad duration {t:?}: expected e.g. 90, 1.5, 30s, 15m, 2h, 7d, 2w, 1h30m or 01:30:00"
        ))
    };
    if t.is_empty() {
        return Err(bad());
    }
    if t.contains(':') {
        let parts: Vec<&str> = t.split(':').collect();
        if parts.len() > 3 {
            return Err(bad());
        }
        let mut micros = 0i64;
        let n = parts.len();
        for (i, p) in parts.iter().enumerate() {
            let unit = 60i64.pow((n - 1 - i) as u32);
            let v = if i == n - 1 {
                parse_seconds(p).ok_or_else(bad)?
            } else {
                digits(p).ok_or_else(bad)? * SECOND
            };
            micros = micros
                .checked_add(v.checked_mul(unit).ok_or_else(bad)?)
                .ok_or_else(bad)?;
        }
        return Ok(micros);
    }
    if let Some(v) = parse_seconds(t) {
        return Ok(v);
    }
    let mut total = 0i64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        if num_len == 0 {
            return Err(bad());
        }
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "us" | "µs" => 1,
            "ms" => 1_000,
            "s" | "sec" => SECOND,
            "m" | "min" => 60 * SECOND,
            "h" => 3_600 * SECOND,
            "d" => 86_400 * SECOND,
            "w" => 7 * 86_400 * SECOND,
            _ => return Err(bad()),
        };
        let value: f64 = num.parse().map_err(|_| bad())?;
        let part = value * scale as f64;
        if !part.is_finite() || part > 1e17 {
            return Err(bad());
        }
        total = total.checked_add(part.round() as i64).ok_or_else(bad)?;
        rest = tail;
    }
    Ok(total)
}

fn parse_seconds(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let v: f64 = text.parse().ok()?;
    (v.is_finite() && v < 1e11).then(|| (v * SECOND as f64).round() as i64)
}

/// Parses a point in time for `--since` / `--until`, relative to `now_us`:
/// RFC 3339 (`2026-11-24T10:00:00Z`, offsets allowed), `2026-11-24` (midnight UTC),
/// `2026-11-24 10:00[:00]` or `2026-11-24T10:00[:00]` (UTC), a clock time `15:12[:30]` (today,
/// UTC), `now`, `today`, `yesterday`, or an age with its unit meaning that long ago (`2h`,
/// `7d`, `1h30m`). A bare number is refused: `90` could mean seconds, minutes or a time.
pub fn parse_time(text: &str, now_us: i64) -> Result<i64, TimeError> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(TimeError(format!(
            "{t:?} has no unit: give an age such as {t}s, {t}m or {t}h, a clock time such as 09:00, or a date"
        )));
    }
    if t.contains(':') && !t.contains(['-', 'T', 't', ' ']) {
        // A clock time (9:05 or 09:05[:30]), never an age: `15:12` is not 15 h 12 min ago.
        let padded = if t.find(':') == Some(1) {
            format!("0{t}")
        } else {
            t.to_string()
        };
        let clock = parse_clock(&padded).ok_or_else(|| {
            TimeError(format!(
                "bad clock time {t:?}: expected HH:MM or HH:MM:SS (UTC, today)"
            ))
        })?;
        return Ok(now_us.div_euclid(86_400 * SECOND) * 86_400 * SECOND + clock);
    }
    match t {
        "now" => return Ok(now_us),
        "today" => return Ok(now_us.div_euclid(86_400 * SECOND) * 86_400 * SECOND),
        "yesterday" => return Ok((now_us.div_euclid(86_400 * SECOND) - 1) * 86_400 * SECOND),
        _ => {}
    }
    if let Some(us) = parse_rfc3339(t) {
        return Ok(us);
    }
    if let Some(us) = parse_date_time_utc(t) {
        return Ok(us);
    }
    if !t.contains('-') {
        if let Ok(d) = parse_duration(t) {
            return Ok(now_us - d);
        }
    }
    Err(TimeError(format!(
        "bad time {t:?}: expected RFC 3339 (2026-11-24T10:00:00Z), a date (2026-11-24), \
         a UTC date and time (2026-11-24 10:00), a UTC clock time today (15:12), \
         now/today/yesterday, or an age such as 2h or 7d"
    )))
}

/// RFC 3339 with `Z` or a numeric offset and an optional fraction.
pub fn parse_rfc3339(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (date, rest) = t.split_at(10);
    let day = parse_date(date)?;
    let rest = &rest[1..];
    let (clock, zone) = split_zone(rest)?;
    let secs = parse_clock(clock)?;
    Some(day * 86_400 * SECOND + secs - zone)
}

fn split_zone(rest: &str) -> Option<(&str, i64)> {
    if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        return Some((c, 0));
    }
    if rest.len() > 6 {
        let (clock, off) = rest.split_at(rest.len() - 6);
        let ob = off.as_bytes();
        if matches!(ob[0], b'+' | b'-') && ob[3] == b':' {
            let h: i64 = off[1..3].parse().ok()?;
            let m: i64 = off[4..6].parse().ok()?;
            if h > 23 || m > 59 {
                return None;
            }
            let s = (h * 3600 + m * 60) * SECOND;
            return Some((clock, if ob[0] == b'-' { -s } else { s }));
        }
    }
    None
}

/// `HH:MM[:SS[.frac]]` → µs since midnight.
fn parse_clock(c: &str) -> Option<i64> {
    let parts: Vec<&str> = c.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts[0].len() != 2 || parts[1].len() != 2 {
        return None;
    }
    let h: i64 = digits(parts[0])?;
    let m: i64 = digits(parts[1])?;
    let s = match parts.get(2) {
        Some(p) => {
            let (whole, frac) = p.split_once('.').unwrap_or((p, ""));
            if whole.len() != 2 || (p.contains('.') && frac.is_empty()) {
                return None;
            }
            let mut us: i64 = digits(whole)? * SECOND;
            if !frac.is_empty() {
                let f = frac.get(..frac.len().min(6))?;
                let fv: i64 = digits(f)?;
                if !frac.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                us += fv * 10i64.pow(6 - f.len() as u32);
            }
            us
        }
        None => 0,
    };
    if h > 23 || m > 59 || s >= 61 * SECOND {
        return None;
    }
    Some((h * 3600 + m * 60) * SECOND + s)
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `YYYY-MM-DD` → days since the epoch.
fn parse_date(d: &str) -> Option<i64> {
    let b = d.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = digits(&d[0..4])?;
    let m = digits(&d[5..7])?;
    let day = digits(&d[8..10])?;
    if !(1..=12).contains(&m) || day < 1 || day > days_in_month(y, m as u32) as i64 {
        return None;
    }
    Some(days_from_civil(y, m as u32, day as u32))
}

fn parse_date_time_utc(t: &str) -> Option<i64> {
    if t.len() == 10 {
        return Some(parse_date(t)? * 86_400 * SECOND);
    }
    if t.len() < 16 || !matches!(t.as_bytes()[10], b'T' | b' ') {
        return None;
    }
    let day = parse_date(&t[..10])?;
    Some(day * 86_400 * SECOND + parse_clock(&t[11..])?)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

pub use sessrec_core::time::days_from_civil;

/// Human duration: `0.4s`, `12.0s`, `3m05s`, `2h03m`, `4d02h`.
pub fn format_duration(us: i64) -> String {
    let neg = us < 0;
    let us = us.unsigned_abs();
    let secs = us / 1_000_000;
    let body = if secs < 60 {
        format!("{}.{}s", secs, (us % 1_000_000) / 100_000)
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else if secs < 86_400 {
        format!("{}h{:02}m", secs / 3600, secs / 60 % 60)
    } else {
        format!("{}d{:02}h", secs / 86_400, secs / 3600 % 24)
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

/// Offset within a session for timelines: `+MM:SS.mmm` or `+H:MM:SS.mmm`.
pub fn format_offset(us: i64) -> String {
    let sign = if us < 0 { "-" } else { "+" };
    let us = us.unsigned_abs();
    let ms = us / 1000 % 1000;
    let s = us / 1_000_000;
    if s >= 3600 {
        format!(
            "{sign}{}:{:02}:{:02}.{ms:03}",
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    } else {
        format!("{sign}{:02}:{:02}.{ms:03}", s / 60, s % 60)
    }
}

/// RFC 3339 with seconds only, for tables.
pub fn short_time(us: i64) -> String {
    let full = sessrec_core::time::Timestamp::from_micros(us).to_string();
    // 2026-11-24T10:00:00.123456Z -> 2026-11-24 10:00:00Z
    format!("{} {}Z", &full[..10], &full[11..19])
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_000_000_000_000; // 2025-11-24T16:00:00Z

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(90 * SECOND));
        assert_eq!(parse_duration("1.5"), Ok(1_500_000));
        assert_eq!(parse_duration("2h"), Ok(7200 * SECOND));
        assert_eq!(parse_duration("7d"), Ok(7 * 86_400 * SECOND));
        assert_eq!(parse_duration("1h30m"), Ok(5400 * SECOND));
        assert_eq!(parse_duration("500ms"), Ok(500_000));
        assert_eq!(parse_duration("2w"), Ok(14 * 86_400 * SECOND));
        assert_eq!(parse_duration("01:30:00"), Ok(5400 * SECOND));
        assert_eq!(parse_duration("2:03.5"), Ok(123_500_000));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("1e300s").is_err());
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("2025-11-24T16:00:00Z", 0), Ok(NOW));
        assert_eq!(
            parse_time("2025-11-24T17:00:00.250+01:00", 0),
            Ok(NOW + 250_000)
        );
        assert_eq!(parse_time("2025-11-24", 0), Ok(NOW - 16 * 3600 * SECOND));
        assert_eq!(parse_time("2025-11-24 16:00", 0), Ok(NOW));
        assert_eq!(parse_time("2025-11-24T16:00:30", 0), Ok(NOW + 30 * SECOND));
        assert_eq!(parse_time("2h", NOW), Ok(NOW - 7200 * SECOND));
        assert_eq!(parse_time("7d", NOW), Ok(NOW - 7 * 86_400 * SECOND));
        assert_eq!(parse_time("now", NOW), Ok(NOW));
        assert_eq!(parse_time("today", NOW), Ok(NOW - 16 * 3600 * SECOND));
        assert_eq!(parse_time("yesterday", NOW), Ok(NOW - 40 * 3600 * SECOND));
        assert!(parse_time("2025-02-30", NOW).is_err());
        assert!(parse_time("2025-11-24T25:00:00Z", NOW).is_err());
        assert!(parse_time("last tuesday", NOW).is_err());
        // A clock time is today's (UTC), not an age; a bare number has no meaning.
        assert_eq!(parse_time("15:12", NOW), Ok(NOW - 48 * 60 * SECOND));
        assert_eq!(
            parse_time("15:12:30", NOW),
            Ok(NOW - 47 * 60 * SECOND - 30 * SECOND)
        );
        assert_eq!(
            parse_time("9:05", NOW),
            Ok(NOW - (6 * 3600 + 55 * 60) * SECOND)
        );
        assert!(parse_time("25:00", NOW).is_err());
        assert!(parse_time("90", NOW).unwrap_err().0.contains("has no unit"));
        let e = parse_time("soon", NOW).unwrap_err();
        assert!(e.0.contains("\"soon\""), "{e}");
    }

    #[test]
    fn formatting() {
        assert_eq!(format_duration(400_000), "0.4s");
        assert_eq!(format_duration(185 * SECOND), "3m05s");
        assert_eq!(format_duration(7380 * SECOND), "2h03m");
        assert_eq!(format_duration(180_000 * SECOND), "2d02h");
        assert_eq!(format_offset(65_432_100), "+01:05.432");
        assert_eq!(format_offset(3_725_000_000), "+1:02:05.000");
    }
}
