//! Reconstructs command lines from typed input, resolving line editing (emacs-style
//! readline keys) as far as the keystrokes alone allow. Whatever depends on the shell's state
//! (completion, history, unknown keys) is marked as a guess, and erased text is kept so the
//! timeline can show what was typed and then removed.
#![forbid(unsafe_code)]

/// One line as typed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TypedLine {
    /// The line as the keystrokes resolve it.
    pub text: String,
    /// Every glyph typed, including erased ones, in order.
    pub glyphs: String,
    /// Offset of the first keystroke and of the Enter (µs from channel start).
    pub start_us: u64,
    pub end_us: u64,
    /// Why `text` may not be what the shell ran (tab completion, history, ...).
    pub guesses: Vec<String>,
    /// Text typed and then deleted before Enter.
    pub erased: String,
    /// Ended with Ctrl-C instead of Enter.
    pub cancelled: bool,
    /// Ctrl-D on an empty line.
    pub eof: bool,
    /// Some of it was typed while the terminal did not echo.
    pub echo_off: bool,
}

#[derive(Debug, Default)]
pub struct LineEditor {
    buf: Vec<char>,
    cursor: usize,
    line: TypedLine,
    started: bool,
    esc: Vec<u8>,
    in_escape: bool,
    utf8: Vec<u8>,
    paste: bool,
    kill_ring: String,
    last_was_cr: bool,
}

impl LineEditor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds input bytes typed at `off_us`; completed lines are appended to `out`.
    pub fn feed(&mut self, off_us: u64, data: &[u8], echo_off: bool, out: &mut Vec<TypedLine>) {
        for &b in data {
            self.byte(off_us, b, echo_off, out);
        }
    }

    /// The unfinished line at the end of the input, if anything was typed.
    pub fn finish(&mut self) -> Option<TypedLine> {
        if !self.started {
            return None;
        }
        let mut line = self.take_line(self.line.start_us);
        line.guesses
            .push("no Enter: typed but not submitted".into());
        Some(line)
    }

    fn begin(&mut self, off_us: u64, echo_off: bool) {
        if !self.started {
            self.started = true;
            self.line.start_us = off_us;
        }
        if echo_off {
            self.line.echo_off = true;
        }
    }

    fn guess(&mut self, why: &str) {
        if !self.line.guesses.iter().any(|g| g == why) {
            self.line.guesses.push(why.to_string());
        }
    }

    /// Offset of the first keystroke of the line being typed, if any.
    pub fn current_start(&self) -> Option<u64> {
        self.started.then_some(self.line.start_us)
    }

    fn take_line(&mut self, end_us: u64) -> TypedLine {
        let mut line = std::mem::take(&mut self.line);
        line.text = self.buf.iter().collect();
        line.end_us = end_us;
        self.buf.clear();
        self.cursor = 0;
        self.started = false;
        line
    }

    fn insert(&mut self, c: char) {
        self.buf.insert(self.cursor, c);
        self.cursor += 1;
        self.line.glyphs.push(c);
    }

    fn erase(&mut self, from: usize, to: usize) {
        let removed: String = self.buf.drain(from..to).collect();
        if self.cursor > from {
            self.cursor = from.max(self.cursor.saturating_sub(to - from));
        }
        self.line.erased.push_str(&removed);
        self.kill_ring = removed;
    }

    fn byte(&mut self, off_us: u64, b: u8, echo_off: bool, out: &mut Vec<TypedLine>) {
        if self.in_escape {
            self.escape_byte(b);
            return;
        }
        if !self.utf8.is_empty() || b >= 0x80 {
            self.utf8.push(b);
            match std::str::from_utf8(&self.utf8) {
                Ok(s) => {
                    let c = s.chars().next().unwrap_or('\u{fffd}');
                    self.utf8.clear();
                    self.begin(off_us, echo_off);
                    self.insert(c);
                }
                Err(e) if e.error_len().is_some() || self.utf8.len() >= 4 => {
                    self.utf8.clear();
                    self.begin(off_us, echo_off);
                    self.insert('\u{fffd}');
                    self.guess("invalid UTF-8 typed");
                }
                Err(_) => {}
            }
            return;
        }
        let was_cr = std::mem::replace(&mut self.last_was_cr, b == b'\r');
        if self.paste && b != 0x1b {
            // Pasted text is literal, newlines included.
            self.begin(off_us, echo_off);
            if b == b'\r' || b == b'\n' {
                self.insert(' ');
                self.guess("multi-line paste");
            } else if b >= 0x20 {
                self.insert(char::from(b));
            }
            return;
        }
        match b {
            b'\r' | b'\n' => {
                if b == b'\n' && was_cr {
                    return;
                }
                if self.started || !self.buf.is_empty() {
                    out.push(self.take_line(off_us));
                } else {
                    self.begin(off_us, echo_off);
                    out.push(self.take_line(off_us));
                }
            }
            0x20..=0x7e => {
                self.begin(off_us, echo_off);
                self.insert(char::from(b));
            }
            0x7f | 0x08 => {
                self.begin(off_us, echo_off);
                if self.cursor > 0 {
                    self.erase(self.cursor - 1, self.cursor);
                }
            }
            0x15 => {
                // Ctrl-U: kill to start of line.
                self.begin(off_us, echo_off);
                self.erase(0, self.cursor);
            }
            0x0b => {
                self.begin(off_us, echo_off);
                self.erase(self.cursor, self.buf.len());
            }
            0x17 => {
                // Ctrl-W: kill the whitespace-delimited word before the cursor.
                self.begin(off_us, echo_off);
                let mut i = self.cursor;
                while i > 0 && self.buf[i - 1] == ' ' {
                    i -= 1;
                }
                while i > 0 && self.buf[i - 1] != ' ' {
                    i -= 1;
                }
                self.erase(i, self.cursor);
            }
            0x19 => {
                self.begin(off_us, echo_off);
                let text = self.kill_ring.clone();
                for c in text.chars() {
                    self.insert(c);
                }
            }
            0x01 => self.cursor = 0,
            0x05 => self.cursor = self.buf.len(),
            0x02 => self.cursor = self.cursor.saturating_sub(1),
            0x06 => self.cursor = (self.cursor + 1).min(self.buf.len()),
            0x04 => {
                if self.buf.is_empty() {
                    self.begin(off_us, echo_off);
                    let mut line = self.take_line(off_us);
                    line.eof = true;
                    out.push(line);
                } else if self.cursor < self.buf.len() {
                    self.erase(self.cursor, self.cursor + 1);
                } else {
                    self.guess("Ctrl-D at end of line (completion list?)");
                }
            }
            0x03 => {
                if self.started || !self.buf.is_empty() {
                    let mut line = self.take_line(off_us);
                    line.cancelled = true;
                    out.push(line);
                }
            }
            0x09 => {
                self.begin(off_us, echo_off);
                self.guess("tab completion");
            }
            0x10 | 0x0e => {
                self.begin(off_us, echo_off);
                self.guess("history recall");
            }
            0x12 | 0x13 => {
                self.begin(off_us, echo_off);
                self.guess("history search");
            }
            0x0c => {}
            0x1b => {
                self.in_escape = true;
                self.esc.clear();
            }
            _ => {
                self.begin(off_us, echo_off);
                self.guess(&format!("control key ^{}", char::from(b + 0x40)));
            }
        }
    }

    fn escape_byte(&mut self, b: u8) {
        self.esc.push(b);
        let seq = self.esc.clone();
        let done = match seq.as_slice() {
            [b'['] | [b'O'] => false,
            [b'[', rest @ ..] => {
                let last = *rest.last().unwrap_or(&0);
                if (0x40..=0x7e).contains(&last) {
                    self.csi_key(&rest[..rest.len() - 1], last);
                    true
                } else {
                    rest.len() > 16
                }
            }
            [b'O', k] => {
                self.csi_key(b"", *k);
                true
            }
            [k] => {
                self.meta_key(*k);
                true
            }
            _ => true,
        };
        if done {
            self.in_escape = false;
            self.esc.clear();
        }
    }

    fn csi_key(&mut self, params: &[u8], final_byte: u8) {
        match (params, final_byte) {
            (b"200", b'~') => {
                self.paste = true;
                return;
            }
            (b"201", b'~') => {
                self.paste = false;
                return;
            }
            _ => {}
        }
        match (params, final_byte) {
            (b"", b'C') => self.cursor = (self.cursor + 1).min(self.buf.len()),
            (b"", b'D') => self.cursor = self.cursor.saturating_sub(1),
            (b"" | b"1", b'H') | (b"1" | b"7", b'~') => self.cursor = 0,
            (b"" | b"1", b'F') | (b"4" | b"8", b'~') => self.cursor = self.buf.len(),
            (b"3", b'~') => {
                if self.cursor < self.buf.len() {
                    self.erase(self.cursor, self.cursor + 1);
                }
            }
            (b"", b'A' | b'B') | (b"5" | b"6", b'~') => {
                self.started = true;
                self.guess("history recall");
            }
            (b"1;5", b'C') | (b"1;3", b'C') => self.word_right(),
            (b"1;5", b'D') | (b"1;3", b'D') => self.word_left(),
            _ => {
                self.started = true;
                self.guess("unrecognised key sequence");
            }
        }
    }

    fn meta_key(&mut self, k: u8) {
        match k {
            b'b' => self.word_left(),
            b'f' => self.word_right(),
            0x7f | 0x08 => {
                let end = self.cursor;
                self.word_left();
                let start = self.cursor;
                self.cursor = end;
                self.erase(start, end);
            }
            b'd' => {
                let start = self.cursor;
                self.word_right();
                let end = self.cursor;
                self.cursor = start;
                self.erase(start, end);
            }
            _ => {
                self.started = true;
                self.guess("unrecognised Alt key");
            }
        }
    }

    fn word_left(&mut self) {
        while self.cursor > 0 && !self.buf[self.cursor - 1].is_alphanumeric() {
            self.cursor -= 1;
        }
        while self.cursor > 0 && self.buf[self.cursor - 1].is_alphanumeric() {
            self.cursor -= 1;
        }
    }

    fn word_right(&mut self) {
        let n = self.buf.len();
        while self.cursor < n && !self.buf[self.cursor].is_alphanumeric() {
            self.cursor += 1;
        }
        while self.cursor < n && self.buf[self.cursor].is_alphanumeric() {
            self.cursor += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<TypedLine> {
        let mut e = LineEditor::new();
        let mut out = Vec::new();
        for (i, b) in input.iter().enumerate() {
            e.feed(i as u64, &[*b], false, &mut out);
        }
        out.extend(e.finish());
        out
    }

    #[test]
    fn plain_lines() {
        let l = lines(b"ls -l\rwhoami\r");
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].text, "ls -l");
        assert_eq!(l[1].text, "whoami");
        assert!(l[0].guesses.is_empty() && l[0].erased.is_empty());
    }

    #[test]
    fn editing_is_resolved_and_erasures_kept() {
        let l = lines(b"rm -rf /\x15echo hi\r");
        assert_eq!(l[0].text, "echo hi");
        assert_eq!(l[0].erased, "rm -rf /");
        assert_eq!(l[0].glyphs, "rm -rf /echo hi");
        let l = lines(b"ecxo\x7f\x7fho hi\r");
        assert_eq!(l[0].text, "echo hi");
        let l = lines(b"cat file\x1b[D\x1b[D\x1b[D\x1b[Dthe\x01sudo \r");
        assert_eq!(l[0].text, "sudo cat thefile");
        let l = lines(b"one two three\x17\x17four\r");
        assert_eq!(l[0].text, "one four");
        let l = lines(b"abc\x01\x1b[3~\r");
        assert_eq!(l[0].text, "bc");
        let l = lines("naïve\r".as_bytes());
        assert_eq!(l[0].text, "naïve");
    }

    #[test]
    fn shell_state_is_a_guess() {
        let l = lines(b"cd /us\t\r");
        assert_eq!(l[0].text, "cd /us");
        assert_eq!(l[0].guesses, vec!["tab completion"]);
        let l = lines(b"\x1b[A\r");
        assert_eq!(l[0].guesses, vec!["history recall"]);
    }

    #[test]
    fn cancel_eof_paste_and_unfinished() {
        let l = lines(b"shutdown now\x03ls\r\x04");
        assert!(l[0].cancelled);
        assert_eq!(l[0].text, "shutdown now");
        assert_eq!(l[1].text, "ls");
        assert!(l[2].eof);
        let l = lines(b"\x1b[200~echo a\rb\x1b[201~\r");
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].text, "echo a b");
        let l = lines(b"half typed");
        assert_eq!(l[0].text, "half typed");
        assert!(l[0].guesses[0].contains("no Enter"));
        // CR LF counts once.
        assert_eq!(lines(b"a\r\nb\r\n").len(), 2);
    }
}
