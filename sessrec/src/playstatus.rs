//! The status line of `sessrec play` on a terminal: the replay's position, speed and whether
//! it is paused, on the terminal's last row, which the replay's scrolling leaves alone (a
//! scroll region above it); redrawn when something changes and a few times a second.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

/// How often the position is redrawn while playing.
const REDRAW: Duration = Duration::from_millis(250);

pub struct StatusLine {
    cols: u16,
    rows: u16,
    last: Option<(Instant, String)>,
}

impl StatusLine {
    /// For a terminal of `cols` x `rows`; `None` when it is too small to spare a row.
    pub fn new((cols, rows): (u16, u16)) -> Option<Self> {
        (rows >= 3 && cols >= 20).then_some(StatusLine {
            cols,
            rows,
            last: None,
        })
    }

    /// Keeps the last row out of the scroll region (the cursor stays where it is).
    pub fn setup(&self) -> Vec<u8> {
        format!("\x1b7\x1b[1;{}r\x1b8", self.rows - 1).into_bytes()
    }

    /// The status text.
    pub fn text(position_us: u64, speed: f64, paused: bool) -> String {
        let s = position_us / 1_000_000;
        let tenth = position_us / 100_000 % 10;
        let state = if paused { "paused" } else { "playing" };
        format!(
            "sessrec play {:02}:{:02}:{:02}.{tenth}  speed x{}  {state}  (space pause, . step, +/- speed, q quit)",
            s / 3600,
            s / 60 % 60,
            s % 60,
            speed
        )
    }

    /// The bytes that draw the status, when it changed (or, with `force`, always) and was not
    /// drawn in the last moment.
    pub fn draw(
        &mut self,
        position_us: u64,
        speed: f64,
        paused: bool,
        force: bool,
    ) -> Option<Vec<u8>> {
        let text = Self::text(position_us, speed, paused);
        if let Some((at, last)) = &self.last {
            if *last == text || (!force && at.elapsed() < REDRAW) {
                return None;
            }
        }
        let shown: String = text.chars().take(self.cols as usize - 1).collect();
        self.last = Some((Instant::now(), text));
        Some(
            format!(
                "\x1b7\x1b[{};1H\x1b[0;7m{shown}\x1b[0m\x1b[K\x1b8",
                self.rows
            )
            .into_bytes(),
        )
    }

    /// Clears the status row and gives the whole screen back to scrolling.
    pub fn clear(&self) -> Vec<u8> {
        format!("\x1b7\x1b[{};1H\x1b[0m\x1b[2K\x1b[r\x1b8", self.rows).into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_position_speed_and_pause() {
        assert!(StatusLine::text(83_450_000, 2.0, true)
            .starts_with("sessrec play 00:01:23.4  speed x2  paused"));
        let mut s = StatusLine::new((80, 24)).unwrap();
        let first = s.draw(0, 1.0, false, false).unwrap();
        assert!(String::from_utf8(first).unwrap().contains("\x1b[24;1H"));
        assert!(s.draw(0, 1.0, false, true).is_none(), "unchanged");
        assert!(s.draw(0, 1.0, true, true).is_some(), "paused");
        assert!(StatusLine::new((80, 2)).is_none());
    }
}
