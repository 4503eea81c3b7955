//! The rendered transcript of `export --format text`: every line that was ever on the screen,
//! once, in order. Output goes through a terminal emulator; a row is written when it scrolls
//! off the top, when a clear is about to erase it (marked `[cleared]`), when a full-screen
//! program leaves the alternate screen (its last screen, marked), and at the end (the final
//! screen). Rows a program overwrote in place (a progress line, a redraw) are shown as they
//! were last drawn.
//!
//! vt100 0.15 can look back at most one screen into its scrollback, so output is fed in pieces
//! that scroll less than a screen each; after each piece the rows that scrolled off are read
//! and written, and the emulator is restarted from its screen state before its scrollback
//! fills.
#![forbid(unsafe_code)]

use std::io::{self, Write};

/// Written after a line erased from the screen (a whole-line erase, or a carriage return and
/// an erase to the end of the line).
pub const ERASED: &str = "[erased: the line above was removed from the screen here]";
/// Written after the rows a clear erased.
pub const CLEARED: &str = "[cleared: the lines above were erased from the screen here]";
/// Written around the last screen of a full-screen program.
pub const ALTERNATE_START: &str = "[alternate screen: what the full-screen program showed]";
pub const ALTERNATE_END: &str = "[end of alternate screen]";

/// A sequence that takes rows off the screen without scrolling them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Erase {
    /// ED 2, RIS, or ED 0 from the top-left corner: the whole screen.
    Screen,
    /// ED 0 from the cursor / ED 1 up to it: part of the screen (treated as whole rows
    /// below / above the cursor row).
    Below,
    /// Entering the alternate screen (the main screen is kept).
    AlternateOn,
    /// Leaving it (its content is gone).
    AlternateOff,
    /// EL: part or all of the cursor's row.
    Line,
}

/// Where the next special sequence starts, its length and what it does; `Err(at)` when an
/// escape sequence starting at `at` is cut by the end of `data`.
fn next_special(data: &[u8]) -> Result<Option<(usize, usize, Erase)>, usize> {
    let mut i = 0;
    while let Some(p) = data[i..].iter().position(|&b| b == 0x1b) {
        let at = i + p;
        let rest = &data[at..];
        if rest.len() < 2 {
            return Err(at);
        }
        match rest[1] {
            b'c' => return Ok(Some((at, 2, Erase::Screen))),
            b'[' => {
                let body = &rest[2..];
                let end = body.iter().position(|&b| (0x40..=0x7e).contains(&b));
                let Some(end) = end else {
                    if body.len() < 32 {
                        return Err(at);
                    }
                    i = at + 1;
                    continue;
                };
                let params = &body[..end];
                let len = 2 + end + 1;
                match (params, body[end]) {
                    // ED 3 empties the scrollback only: nothing on the screen goes.
                    (b"2", b'J') => return Ok(Some((at, len, Erase::Screen))),
                    (b"" | b"0", b'J') => return Ok(Some((at, len, Erase::Below))),
                    (b"" | b"0" | b"1" | b"2", b'K') => return Ok(Some((at, len, Erase::Line))),
                    (p, b'h' | b'l') if p.starts_with(b"?") => {
                        let alt = p[1..]
                            .split(|b| *b == b';')
                            .any(|m| matches!(m, b"1049" | b"1047" | b"47"));
                        if alt {
                            let e = if body[end] == b'h' {
                                Erase::AlternateOn
                            } else {
                                Erase::AlternateOff
                            };
                            return Ok(Some((at, len, e)));
                        }
                    }
                    _ => {}
                }
                i = at + len;
            }
            _ => i = at + 1,
        }
    }
    Ok(None)
}

pub struct Renderer {
    parser: vt100::Parser,
    cols: u16,
    rows: u16,
    capacity: usize,
    alternate: bool,
    /// An escape sequence cut by the end of the last chunk.
    pending: Vec<u8>,
    /// Rows at the top of the main screen already written (when a full-screen program took
    /// the terminal, in order): they are not written again when they scroll off or go.
    written_top: usize,
    /// The main screen while a full-screen program has the alternate one (which `parser`
    /// then emulates, with a scrollback of its own so that nothing scrolled off it is lost).
    main: Option<vt100::Parser>,
    /// The alternate screen's start marker is written.
    alt_marked: bool,
}

impl Renderer {
    pub fn new(cols: u16, rows: u16) -> Self {
        let (cols, rows) = crate::geometry::emulated(cols.into(), rows.into());
        let capacity = (rows as usize * 4).max(1000);
        Renderer {
            parser: vt100::Parser::new(rows, cols, capacity),
            cols,
            rows,
            capacity,
            alternate: false,
            pending: Vec::new(),
            written_top: 0,
            main: None,
            alt_marked: false,
        }
    }

    fn scrollback_len(&mut self) -> usize {
        self.parser.set_scrollback(usize::MAX);
        let n = self.parser.screen().scrollback();
        self.parser.set_scrollback(0);
        n
    }

    pub fn process(&mut self, data: &[u8], out: &mut dyn Write) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.pending);
        buf.extend_from_slice(data);
        let mut rest = &buf[..];
        loop {
            match next_special(rest) {
                Ok(None) => {
                    self.feed(rest, out)?;
                    return Ok(());
                }
                Err(cut) => {
                    self.feed(&rest[..cut], out)?;
                    self.pending = rest[cut..].to_vec();
                    return Ok(());
                }
                Ok(Some((at, len, erase))) => {
                    self.feed(&rest[..at], out)?;
                    self.before(erase, out)?;
                    match erase {
                        Erase::AlternateOn if !self.alternate => {
                            let alt = vt100::Parser::new(self.rows, self.cols, self.capacity);
                            self.main = Some(std::mem::replace(&mut self.parser, alt));
                            self.alternate = true;
                            self.alt_marked = false;
                        }
                        Erase::AlternateOff if self.alternate => {
                            if let Some(main) = self.main.take() {
                                self.parser = main;
                            }
                            self.alternate = false;
                        }
                        Erase::AlternateOn | Erase::AlternateOff => {}
                        Erase::Line => self.erase_line(&rest[at..at + len], out)?,
                        _ => self.parser.process(&rest[at..at + len]),
                    }
                    rest = &rest[at + len..];
                }
            }
        }
    }

    /// Applies an erase in line; writes the line when it took a line's text away (not when
    /// it cut the end of a line being edited, which a redraw does all the time).
    fn erase_line(&mut self, seq: &[u8], out: &mut dyn Write) -> io::Result<()> {
        let (row, col) = self.parser.screen().cursor_position();
        let row = row as usize;
        let old = self.screen_rows().get(row).cloned().unwrap_or_default();
        self.parser.process(seq);
        if self.alternate || row < self.written_top || old.is_empty() {
            return Ok(());
        }
        let rows = self.screen_rows();
        let new = rows.get(row).cloned().unwrap_or_default();
        let edited = col > 0 && !new.is_empty() && old.starts_with(new.as_str());
        if new != old && !edited {
            // In order: the rows above it first, which then count as written.
            for r in rows.iter().take(row).skip(self.written_top) {
                writeln!(out, "{r}")?;
            }
            self.written_top = self.written_top.max(row);
            writeln!(out, "{old}")?;
            writeln!(out, "{ERASED}")?;
        }
        Ok(())
    }

    /// Writes the rows `erase` is about to take off the screen.
    fn before(&mut self, erase: Erase, out: &mut dyn Write) -> io::Result<()> {
        let (row, col) = self.parser.screen().cursor_position();
        let row = row as usize;
        let rows = self.screen_rows();
        let written = if self.alternate { 0 } else { self.written_top };
        let gone: Vec<String> = match erase {
            Erase::Screen => rows.into_iter().skip(written).collect(),
            Erase::Below if row == 0 && col == 0 => rows.into_iter().skip(written).collect(),
            // A redraw below the cursor (readline, a pager): only whole rows under it.
            Erase::Below => rows.into_iter().skip(written.max(row + 1)).collect(),
            Erase::AlternateOn => {
                // What the main screen shows now comes before the program's screen.
                let upto = if rows.get(row).is_some_and(|r| !r.is_empty()) {
                    row + 1
                } else {
                    row
                };
                for r in rows.iter().take(upto).skip(written) {
                    writeln!(out, "{r}")?;
                }
                self.written_top = upto.max(written);
                return Ok(());
            }
            Erase::AlternateOff if self.alternate => {
                let rows = trim_blank(rows);
                if !rows.is_empty() {
                    self.mark_alternate(out)?;
                    for r in rows {
                        writeln!(out, "{r}")?;
                    }
                }
                if self.alt_marked {
                    writeln!(out, "{ALTERNATE_END}")?;
                }
                return Ok(());
            }
            Erase::AlternateOff | Erase::Line => Vec::new(),
        };
        if matches!(erase, Erase::Screen) || (matches!(erase, Erase::Below) && row == 0) {
            if !self.alternate {
                self.written_top = 0;
            }
        } else if !self.alternate {
            self.written_top = self.written_top.min(row + 1);
        }
        let gone = trim_blank(gone);
        if gone.is_empty() {
            return Ok(());
        }
        for r in &gone {
            writeln!(out, "{r}")?;
        }
        writeln!(
            out,
            "{}",
            if self.alternate {
                "[cleared inside the alternate screen]"
            } else {
                CLEARED
            }
        )
    }

    fn screen_rows(&self) -> Vec<String> {
        self.parser
            .screen()
            .rows(0, self.cols)
            .map(|r| r.trim_end().to_string())
            .collect()
    }

    /// Writes the alternate screen's start marker once.
    fn mark_alternate(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if !self.alt_marked {
            self.alt_marked = true;
            writeln!(out, "{ALTERNATE_START}")?;
        }
        Ok(())
    }

    /// Plain output (no clear or screen switch in it).
    fn feed(&mut self, data: &[u8], out: &mut dyn Write) -> io::Result<()> {
        let max_newlines = (self.rows as usize / 2).max(1);
        let max_bytes = (self.cols as usize * self.rows as usize / 4).max(64);
        let mut rest = data;
        while !rest.is_empty() {
            let mut end = 0;
            let mut newlines = 0;
            while end < rest.len() && end < max_bytes && newlines < max_newlines {
                if rest[end] == b'\n' {
                    newlines += 1;
                }
                end += 1;
            }
            let (piece, tail) = rest.split_at(end);
            rest = tail;
            let before = self.scrollback_len();
            self.parser.process(piece);
            let after = self.scrollback_len();
            let new = after.saturating_sub(before).min(self.rows as usize);
            if new > 0 && self.alternate {
                self.mark_alternate(out)?;
            }
            if new > 0 {
                self.parser.set_scrollback(new);
                let cols = self.cols;
                let skip = if self.alternate {
                    0
                } else {
                    self.written_top.min(new)
                };
                self.written_top -= skip;
                for row in self.parser.screen().rows(0, cols).take(new).skip(skip) {
                    writeln!(out, "{}", row.trim_end())?;
                }
                self.parser.set_scrollback(0);
            }
            if after + self.rows as usize * 2 > self.capacity {
                self.restart();
            }
        }
        Ok(())
    }

    /// A fresh emulator showing the same screen, with an empty scrollback.
    fn restart(&mut self) {
        let state = self.parser.screen().state_formatted();
        let mut fresh = vt100::Parser::new(self.rows, self.cols, self.capacity);
        fresh.process(&state);
        self.parser = fresh;
    }

    pub fn resize(&mut self, cols: u16, rows: u16) {
        let (cols, rows) = crate::geometry::emulated(cols.into(), rows.into());
        self.cols = cols;
        self.rows = rows;
        self.capacity = (rows as usize * 4).max(1000);
        self.parser.set_size(rows, cols);
        if let Some(main) = self.main.as_mut() {
            main.set_size(rows, cols);
        }
    }

    /// The final screen (a full-screen program's, marked, then the main one).
    pub fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        self.feed(&pending, out)?;
        if self.alternate {
            self.before(Erase::AlternateOff, out)?;
            if let Some(main) = self.main.take() {
                self.parser = main;
            }
            self.alternate = false;
        }
        let written = self.written_top;
        for l in trim_blank(self.screen_rows()).into_iter().skip(written) {
            writeln!(out, "{l}")?;
        }
        Ok(())
    }
}

/// Written before each line a pipe channel wrote to its standard error.
pub const STDERR: &str = "[stderr] ";

/// The transcript of a pipe channel (no terminal: nothing was drawn over anything): its
/// output line by line, escape sequences and controls removed, each line of its standard
/// error marked [`STDERR`].
pub fn pipe_text(f: &crate::records::RecordFile, out: &mut dyn Write) -> io::Result<()> {
    use sessrec_core::record::Stream;
    let mut lines: [(Vec<u8>, crate::search::TextOnly); 2] = Default::default();
    let write_line = |out: &mut dyn Write, stderr: bool, line: &[u8]| -> io::Result<()> {
        let prefix = if stderr { STDERR } else { "" };
        writeln!(out, "{prefix}{}", String::from_utf8_lossy(line))
    };
    for item in f.items()? {
        match item {
            crate::records::Item::Frame { stream, data, .. } => {
                let stderr = match stream {
                    Stream::Output => false,
                    Stream::Stderr => true,
                    Stream::Input => continue,
                };
                let (buf, filter) = &mut lines[usize::from(stderr)];
                filter.push(&data, buf);
                while let Some(end) = buf.iter().position(|&b| b == b'\n') {
                    write_line(out, stderr, &buf[..end])?;
                    buf.drain(..=end);
                }
            }
            crate::records::Item::Damaged { line_no, problem } => writeln!(
                out,
                "[damaged record: {}: line {line_no}: {}]",
                f.name,
                crate::escape::escape_control(&problem)
            )?,
            crate::records::Item::Event { .. } => {}
        }
    }
    for (i, (buf, _)) in lines.iter().enumerate() {
        if !buf.is_empty() {
            write_line(out, i == 1, buf)?;
        }
    }
    Ok(())
}

/// Without the blank rows at the end.
fn trim_blank(mut rows: Vec<String>) -> Vec<String> {
    while rows.last().is_some_and(|l| l.is_empty()) {
        rows.pop();
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(chunks: &[&[u8]]) -> String {
        let mut r = Renderer::new(80, 24);
        let mut out = Vec::new();
        for c in chunks {
            r.process(c, &mut out).unwrap();
        }
        r.finish(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn renderer_writes_every_scrolled_row_once() {
        let mut r = Renderer::new(80, 24);
        let mut out = Vec::new();
        let mut data = Vec::new();
        for i in 1..=5000 {
            data.extend_from_slice(format!("line-{i}\r\n").as_bytes());
        }
        // Big chunks and small ones alike.
        r.process(&data[..30_000], &mut out).unwrap();
        for chunk in data[30_000..].chunks(7) {
            r.process(chunk, &mut out).unwrap();
        }
        r.process(b"\x1b[1mlast\x1b[0m screen\r\nabc\x08\x08XY", &mut out)
            .unwrap();
        r.finish(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for i in 1..=5000 {
            assert_eq!(lines[i - 1], format!("line-{i}"));
        }
        assert_eq!(&lines[5000..], ["last screen", "aXY"]);
    }

    #[test]
    fn a_cleared_screen_is_kept_once_and_marked() {
        let text = render(&[
            b"$ export SECRET=1\r\n$ clear\r\n",
            b"\x1b[H\x1b[",
            b"2J\x1b[3J$ after\r\n",
        ]);
        assert_eq!(
            text,
            format!("$ export SECRET=1\n$ clear\n{CLEARED}\n$ after\n")
        );
    }

    #[test]
    fn rows_scrolled_off_the_alternate_screen_are_kept() {
        let mut vi = b"$ vi x\r\n\x1b[?1049h\x1b[H\x1b[2Jhello from vi".to_vec();
        for _ in 0..30 {
            vi.extend_from_slice(b"\r\n~");
        }
        vi.extend_from_slice(b"\x1b[?1049l$ ls\r\n");
        let text = render(&[&vi]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(&lines[..3], ["$ vi x", ALTERNATE_START, "hello from vi"]);
        assert_eq!(lines.iter().filter(|l| **l == "~").count(), 30);
        assert_eq!(&lines[lines.len() - 2..], [ALTERNATE_END, "$ ls"]);
    }

    #[test]
    fn an_erased_line_is_kept_and_marked_but_not_an_edit() {
        let text = render(&[
            b"$ ls -la\x08\x1b[K\r\n",
            b"gone-line-7\r\n\x1b[1A\x1b[2K$ ok\r\n",
            b"50%\r\x1b[K100%\r\n",
        ]);
        assert_eq!(
            text,
            format!("$ ls -l\ngone-line-7\n{ERASED}\n$ ok\n50%\n{ERASED}\n100%\n")
        );
    }

    #[test]
    fn the_alternate_screen_is_kept_and_marked() {
        let text = render(&[
            b"$ vi x\r\n\x1b[?1049h\x1b[H\x1b[2Jhello from vi\r\n~",
            b"\x1b[?1049l$ ls\r\n",
        ]);
        assert_eq!(
            text,
            format!("$ vi x\n{ALTERNATE_START}\nhello from vi\n~\n{ALTERNATE_END}\n$ ls\n")
        );
    }

    #[test]
    fn any_recorded_size_is_rendered() {
        for (cols, rows) in [(0, 0), (0, 24), (80, 0), (80, 1), (u16::MAX, u16::MAX)] {
            let mut r = Renderer::new(cols, rows);
            let mut out = Vec::new();
            r.process("line \u{4e2d}\r\n\x1b[2J".as_bytes(), &mut out)
                .unwrap();
            r.resize(0, 0);
            r.process(b"more\r\n", &mut out).unwrap();
            r.finish(&mut out).unwrap();
        }
    }
}
