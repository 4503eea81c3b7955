//! Finds command lines that were echoed and then removed from the screen by the output that
//! followed (cursor moved back up and the line erased or overwritten): a way to hide what was
//! run from someone watching the terminal. A terminal emulator follows the channel's output;
//! a second after each command, the echoed text must still be on the screen or in its
//! scrollback unless the screen was cleared or switched on purpose (`clear`, an editor's
//! alternate screen), or more output scrolled by than the scrollback keeps.
#![forbid(unsafe_code)]

/// Output followed at most; past this no judgement is made.
const MAX_FED: u64 = 32 << 20;
/// How long after Enter the line is looked for.
pub const CHECK_AFTER_US: u64 = 1_000_000;

/// How far back the counts of newlines and clears are kept: a line is watched only after its
/// echo window, so what happened since its Enter must still be known then.
const HISTORY_US: u64 = 5_000_000;

struct Check {
    entry: usize,
    text: String,
    due_us: u64,
    /// Newlines and clears fed before the line's Enter.
    newlines_before: u64,
    clears_before: u64,
}

pub struct ScreenWatch {
    parser: vt100::Parser,
    rows: u16,
    fed: u64,
    checks: Vec<Check>,
    newlines: u64,
    clears: u64,
    /// (offset, newlines, clears) before each output chunk of the last [`HISTORY_US`].
    history: std::collections::VecDeque<(u64, u64, u64)>,
    /// The end of the previous chunk, for sequences cut between chunks.
    tail: Vec<u8>,
}

/// Sequences after which a missing line is expected, not suspicious.
const CLEARS: &[&[u8]] = &[
    b"\x1b[2J",
    b"\x1b[3J",
    b"\x1bc",
    b"\x1b[?1049h",
    b"\x1b[?1047h",
    b"\x1b[?47h",
];

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl ScreenWatch {
    pub fn new(cols: u16, rows: u16) -> Self {
        let (cols, rows) = crate::geometry::emulated(cols.into(), rows.into());
        ScreenWatch {
            // vt100 can show at most one screen of scrollback at a time: keep one.
            parser: vt100::Parser::new(rows, cols, rows as usize),
            rows,
            fed: 0,
            checks: Vec::new(),
            newlines: 0,
            clears: 0,
            history: std::collections::VecDeque::new(),
            tail: Vec::new(),
        }
    }

    /// Output at `off_us` into the channel.
    pub fn output(&mut self, off_us: u64, data: &[u8]) {
        if self.fed > MAX_FED {
            return;
        }
        self.history.push_back((off_us, self.newlines, self.clears));
        while self
            .history
            .front()
            .is_some_and(|(o, _, _)| o.saturating_add(HISTORY_US) < off_us)
        {
            self.history.pop_front();
        }
        self.fed += data.len() as u64;
        self.parser.process(data);
        self.newlines += data.iter().filter(|&&b| b == b'\n').count() as u64;
        let mut seen = std::mem::take(&mut self.tail);
        let carried = seen.len();
        seen.extend_from_slice(data);
        let cleared = CLEARS.iter().any(|c| {
            seen.windows(c.len())
                .enumerate()
                .any(|(i, w)| w == *c && i + c.len() > carried)
        });
        if cleared {
            self.clears += 1;
        }
        let keep = seen.len().min(8);
        self.tail = seen[seen.len() - keep..].to_vec();
    }

    /// Newlines and clears fed before offset `at_us`.
    fn counts_before(&self, at_us: u64) -> (u64, u64) {
        self.history
            .iter()
            .find(|(o, _, _)| *o >= at_us)
            .map_or((self.newlines, self.clears), |(_, n, c)| (*n, *c))
    }

    pub fn resize(&mut self, cols: u16, rows: u16) {
        let (cols, rows) = crate::geometry::emulated(cols.into(), rows.into());
        self.rows = rows;
        self.parser.set_size(rows, cols);
    }

    /// Watches timeline entry `entry`, whose command `text` was echoed and entered at
    /// `since_us`, until `due_us`.
    pub fn watch(&mut self, entry: usize, text: &str, since_us: u64, due_us: u64) {
        let text = squash(text);
        if !text.is_empty() && self.fed <= MAX_FED {
            let (newlines_before, clears_before) = self.counts_before(since_us);
            self.checks.push(Check {
                entry,
                text,
                due_us,
                newlines_before,
                clears_before,
            });
        }
    }

    /// Entries whose command vanished from the screen, among the checks due by `now_us`.
    pub fn due(&mut self, now_us: u64) -> Vec<usize> {
        if !self.checks.iter().any(|c| c.due_us <= now_us) {
            return Vec::new();
        }
        let (ready, keep): (Vec<Check>, Vec<Check>) =
            self.checks.drain(..).partition(|c| c.due_us <= now_us);
        self.checks = keep;
        self.judge(ready)
    }

    /// The remaining checks, at the end of the channel.
    pub fn finish(&mut self) -> Vec<usize> {
        let all = std::mem::take(&mut self.checks);
        self.judge(all)
    }

    fn judge(&mut self, checks: Vec<Check>) -> Vec<usize> {
        // Past one screen of scrolling the line may sit beyond the scrollback kept.
        let limit = self.rows as usize;
        let judged: Vec<Check> = checks
            .into_iter()
            .filter(|c| {
                c.clears_before == self.clears
                    && self.newlines - c.newlines_before < limit as u64
                    && self.fed <= MAX_FED
            })
            .collect();
        if judged.is_empty() {
            return Vec::new();
        }
        let shown = squash(&self.screen_and_scrollback());
        judged
            .into_iter()
            .filter(|c| !shown.contains(&c.text))
            .map(|c| c.entry)
            .collect()
    }

    fn screen_and_scrollback(&mut self) -> String {
        // vt100 0.15 can scroll back at most one screen (more underflows).
        self.parser.set_scrollback(self.rows as usize);
        let back = self.parser.screen().scrollback();
        let mut text = String::new();
        for line in self.parser.screen().contents().split('\n').take(back) {
            text.push_str(line);
            text.push('\n');
        }
        self.parser.set_scrollback(0);
        text.push_str(&self.parser.screen().contents());
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_erased_command_line_is_found() {
        let mut w = ScreenWatch::new(80, 24);
        w.output(1, b"$ rm -rf /srv/data\r\n");
        w.watch(7, "rm -rf /srv/data", 2, 10);
        // Cursor up one line and erase it, then a fresh prompt.
        w.output(3, b"\x1b[1A\r\x1b[2K$ ");
        assert_eq!(w.due(11), vec![7]);
    }

    #[test]
    fn visible_cleared_and_scrolled_lines_are_not_flagged() {
        let mut w = ScreenWatch::new(80, 24);
        w.output(1, b"$ ls\r\nfile\r\n$ ");
        w.watch(1, "ls", 1, 5);
        assert!(w.due(6).is_empty());
        w.output(7, b"$ clear\r\n");
        w.watch(2, "clear", 8, 10);
        w.output(9, b"\x1b[H\x1b[2J$ ");
        assert!(w.due(11).is_empty(), "a cleared screen is not concealment");
        w.output(12, b"$ seq 1 100\r\n");
        w.watch(3, "seq 1 100", 13, 20);
        for i in 1..=30 {
            w.output(14, format!("{i}\r\n").as_bytes());
        }
        assert!(w.due(21).is_empty(), "scrolled into the scrollback");
        w.output(22, b"$ seq 1 1000\r\n");
        w.watch(4, "seq 1 1000", 23, 30);
        for i in 1..=1000 {
            w.output(24, format!("{i}\r\n").as_bytes());
        }
        assert!(
            w.finish().is_empty(),
            "scrolled beyond what is kept: not judged"
        );
    }

    #[test]
    fn what_happened_before_the_watch_began_counts() {
        // The line is watched only after its echo window: the editor's alternate screen (cut
        // between two chunks) and a long listing came before that.
        let mut w = ScreenWatch::new(80, 24);
        w.output(10, b"$ vi notes\r\n");
        w.output(20, b"\x1b[?10");
        w.output(21, b"49h\x1b[H\x1b[2J~");
        w.watch(1, "vi notes", 15, 1_000_000);
        assert!(w.finish().is_empty());
        let mut w = ScreenWatch::new(80, 24);
        w.output(10, b"$ find /usr\r\n");
        for i in 1..=500 {
            w.output(20 + i, format!("/usr/{i}\r\n").as_bytes());
        }
        w.watch(1, "find /usr", 15, 1_000_000);
        assert!(w.finish().is_empty());
    }

    #[test]
    fn any_recorded_size_is_watched() {
        for (cols, rows) in [(0, 0), (0, 24), (80, 0), (80, 1), (u16::MAX, u16::MAX)] {
            let mut w = ScreenWatch::new(cols, rows);
            w.output(0, "line \u{4e2d}\r\n\x1b[2J".as_bytes());
            w.resize(0, 0);
            w.output(1, b"more\r\n");
        }
    }
}
