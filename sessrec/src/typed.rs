//! Command lines rebuilt from a pty channel's keystrokes, for `show` (labelled "typed": the
//! kernel's exec records, when there are any, say what actually ran).
//!
//! Keys only count as a shell command line when the shell was reading one: not while a
//! full-screen program has the alternate screen (vi, less, top), and, once the shell has shown
//! that it marks its prompt with bracketed paste (bash 5.1 and later turn it on while readline
//! reads a line and off when the line is accepted), not while it is off. Keys typed to a
//! running program are shown as input to that program; keys typed in a full-screen program are
//! counted, never shown as commands. Each line is compared with what the terminal echoed:
//! tab completion is resolved from the screen, input the screen never showed is "no echo",
//! and a line the following output removed from the screen is "concealed".
#![forbid(unsafe_code)]

use std::collections::VecDeque;

use serde_json::{json, Value};

use crate::conceal::ScreenWatch;
use crate::entry::Entry;
use crate::escape::escape_visible;
use crate::lineedit::{LineEditor, TypedLine};

/// How long after Enter the echo of a line may still arrive.
const ECHO_GRACE_US: u64 = 500_000;
/// Output kept for echo comparison.
const ECHO_BUFFER_MAX: usize = 256 * 1024;
/// The guess the line editor records for a Tab key.
const TAB_GUESS: &str = "tab completion";

/// Who read a line of keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    /// The shell, at its prompt.
    Shell,
    /// A program the shell ran (`cat`, `read`, a REPL) on the main screen.
    Program,
}

/// Terminal modes the output set that tell who reads the keys.
#[derive(Debug, Default)]
pub struct ScreenModes {
    alternate: bool,
    bracketed_seen: bool,
    bracketed_on: bool,
    /// An escape sequence cut by the end of the previous output chunk.
    pending: Vec<u8>,
}

impl ScreenModes {
    /// Follows the private mode switches (`CSI ? Pm h|l`) in the output.
    pub fn output(&mut self, data: &[u8]) {
        let mut buf = std::mem::take(&mut self.pending);
        buf.extend_from_slice(data);
        let mut i = 0;
        while i < buf.len() {
            if buf[i] != 0x1b {
                i += 1;
                continue;
            }
            let rest = &buf[i..];
            if rest.len() < 3 {
                self.pending = rest.to_vec();
                return;
            }
            if rest[1] != b'[' || rest[2] != b'?' {
                i += 1;
                continue;
            }
            let end = rest[3..]
                .iter()
                .position(|b| !(b.is_ascii_digit() || *b == b';'));
            match end {
                None if rest.len() < 24 => {
                    self.pending = rest.to_vec();
                    return;
                }
                None => i += 1,
                Some(n) => {
                    let params = &rest[3..3 + n];
                    match rest[3 + n] {
                        b'h' => self.set(params, true),
                        b'l' => self.set(params, false),
                        _ => {}
                    }
                    i += 4 + n;
                }
            }
        }
    }

    fn set(&mut self, params: &[u8], on: bool) {
        for p in params.split(|b| *b == b';') {
            match p {
                b"1049" | b"1047" | b"47" => self.alternate = on,
                b"2004" => {
                    self.bracketed_seen = true;
                    self.bracketed_on = on;
                }
                _ => {}
            }
        }
    }

    /// A full-screen program has the terminal.
    pub fn full_screen(&self) -> bool {
        self.alternate
    }

    /// The shell is reading a command line.
    pub fn at_prompt(&self) -> bool {
        !self.alternate && (!self.bracketed_seen || self.bracketed_on)
    }
}

struct EchoCheck {
    output: VecDeque<(u64, Vec<u8>)>,
    bytes: usize,
    overflowed: bool,
    cols: u16,
}

impl EchoCheck {
    fn push_output(&mut self, off: u64, data: &[u8]) {
        self.output.push_back((off, data.to_vec()));
        self.bytes += data.len();
        while self.bytes > ECHO_BUFFER_MAX {
            if let Some((_, d)) = self.output.pop_front() {
                self.bytes -= d.len();
                self.overflowed = true;
            }
        }
    }

    /// Drops output older than `keep_from`.
    fn prune(&mut self, keep_from: u64) {
        while self.output.front().is_some_and(|(o, _)| *o < keep_from) {
            if let Some((_, d)) = self.output.pop_front() {
                self.bytes -= d.len();
            }
        }
    }

    /// What the terminal showed while `line` was typed, rendered.
    fn echo_of(&self, line: &TypedLine) -> Option<String> {
        if self.overflowed && self.output.front().is_some_and(|(o, _)| *o > line.start_us) {
            return None;
        }
        let mut echo = Vec::new();
        for (off, data) in &self.output {
            if *off < line.start_us {
                continue;
            }
            if *off > line.end_us + ECHO_GRACE_US {
                break;
            }
            if *off >= line.end_us {
                // After Enter: only up to the end of the echoed line.
                match data.iter().position(|&b| b == b'\n') {
                    Some(p) => {
                        echo.extend_from_slice(&data[..p]);
                        break;
                    }
                    None => echo.extend_from_slice(data),
                }
            } else {
                echo.extend_from_slice(data);
            }
        }
        let mut parser = vt100::Parser::new(12, self.cols.max(200), 0);
        parser.process(&crate::sanitize::sanitize(&echo));
        let text = parser.screen().contents();
        Some(
            text.lines()
                .map(str::trim_end)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        )
    }
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Quoted for a flag: controls made visible, quotes inside escaped.
fn quoted(s: &str) -> String {
    format!("\"{}\"", escape_visible(s).replace('"', "\\\""))
}

/// Rebuilds the lines typed in one pty channel. Feed it the channel's frames in order.
pub struct TypedCommands {
    file: String,
    start_us: i64,
    shell: LineEditor,
    program: LineEditor,
    modes: ScreenModes,
    echo: EchoCheck,
    watch: ScreenWatch,
    pending: Vec<(TypedLine, Reader)>,
    /// Keys typed in a full-screen program: (first offset, last offset, bytes).
    full_screen_keys: Option<(u64, u64, u64)>,
}

impl TypedCommands {
    pub fn new(file: String, start_us: i64, cols: u16, rows: u16) -> Self {
        TypedCommands {
            file,
            start_us,
            shell: LineEditor::new(),
            program: LineEditor::new(),
            modes: ScreenModes::default(),
            echo: EchoCheck {
                output: VecDeque::new(),
                bytes: 0,
                overflowed: false,
                cols,
            },
            watch: ScreenWatch::new(cols, rows),
            pending: Vec::new(),
            full_screen_keys: None,
        }
    }

    pub fn resize(&mut self, cols: u16, rows: u16) {
        self.watch.resize(cols, rows);
    }

    pub fn input(&mut self, off_us: u64, data: &[u8], echo_off: bool, out: &mut Vec<Entry>) {
        let mut done = Vec::new();
        if self.modes.full_screen() {
            let keys = self.full_screen_keys.get_or_insert((off_us, off_us, 0));
            keys.1 = off_us;
            keys.2 += data.len() as u64;
        } else if self.modes.at_prompt() {
            self.shell.feed(off_us, data, echo_off, &mut done);
            self.pending
                .extend(done.into_iter().map(|l| (l, Reader::Shell)));
        } else {
            self.program.feed(off_us, data, echo_off, &mut done);
            self.pending
                .extend(done.into_iter().map(|l| (l, Reader::Program)));
        }
        self.settle(off_us, out);
    }

    pub fn output(&mut self, off_us: u64, data: &[u8], out: &mut Vec<Entry>) {
        let was_full_screen = self.modes.full_screen();
        self.modes.output(data);
        if was_full_screen && !self.modes.full_screen() {
            self.flush_full_screen(out);
        }
        self.echo.push_output(off_us, data);
        self.watch.output(off_us, data);
        self.settle(off_us, out);
    }

    /// Checks the lines whose echo window has passed, and due concealment checks.
    fn settle(&mut self, off_us: u64, out: &mut Vec<Entry>) {
        let (ready, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(l, _)| l.end_us + ECHO_GRACE_US < off_us);
        self.pending = keep;
        for (line, reader) in ready {
            self.push_line(&line, reader, out);
        }
        for idx in self.watch.due(off_us) {
            mark_concealed(&mut out[idx]);
        }
        let keep_from = self
            .pending
            .iter()
            .map(|(l, _)| l.start_us)
            .chain(self.shell.current_start())
            .chain(self.program.current_start())
            .min()
            .unwrap_or(off_us.saturating_sub(ECHO_GRACE_US));
        self.echo
            .prune(keep_from.min(off_us.saturating_sub(ECHO_GRACE_US)));
    }

    fn flush_full_screen(&mut self, out: &mut Vec<Entry>) {
        if let Some((first, last, bytes)) = self.full_screen_keys.take() {
            out.push(Entry {
                time_us: self.start_us + last as i64,
                file: self.file.clone(),
                kind: "input".into(),
                text: format!(
                    "{bytes} bytes typed in a full-screen program (alternate screen): not shell commands"
                ),
                details: json!({
                    "bytes": bytes,
                    "full_screen": true,
                    "offset_start_s": first as f64 / 1e6,
                }),
                verbose: Vec::new(),
            });
        }
    }

    /// The remaining lines, at the end of the channel.
    pub fn finish(mut self, out: &mut Vec<Entry>) {
        let mut rest = std::mem::take(&mut self.pending);
        rest.extend(self.shell.finish().map(|l| (l, Reader::Shell)));
        rest.extend(self.program.finish().map(|l| (l, Reader::Program)));
        rest.sort_by_key(|(l, _)| l.end_us);
        for (line, reader) in rest {
            self.push_line(&line, reader, out);
        }
        self.flush_full_screen(out);
        for idx in self.watch.finish() {
            mark_concealed(&mut out[idx]);
        }
    }

    fn push_line(&mut self, line: &TypedLine, reader: Reader, out: &mut Vec<Entry>) {
        let echo = self.echo.echo_of(line);
        let (entry, shown_as_typed) = self.entry(line, reader, echo);
        out.push(entry);
        if shown_as_typed && reader == Reader::Shell {
            self.watch.watch(
                out.len() - 1,
                &line.text,
                line.end_us,
                line.end_us + crate::conceal::CHECK_AFTER_US,
            );
        }
    }

    fn entry(&self, line: &TypedLine, reader: Reader, echo: Option<String>) -> (Entry, bool) {
        let mut flags: Vec<String> = Vec::new();
        let mut command = line.text.clone();
        let mut no_echo = false;
        let mut screen = None;
        let mut completed = false;
        if line.cancelled {
            flags.push("cancelled with Ctrl-C, not run".into());
        }
        if !line.erased.is_empty() {
            flags.push(format!("typed then erased: {}", quoted(&line.erased)));
        }
        if line.echo_off {
            flags.push("no echo: typed while the terminal did not echo".into());
            no_echo = true;
        }
        let mut guesses: Vec<&String> = line.guesses.iter().collect();
        if let Some(echo) = &echo {
            let typed = squash(&line.text);
            let shown = squash(echo);
            let used_tab = line.guesses.iter().any(|g| g == TAB_GUESS);
            if !line.echo_off && !typed.is_empty() && shown.is_empty() {
                flags.push("no echo: the screen did not show it".into());
                no_echo = true;
            } else if used_tab && !line.echo_off && completes(&typed, &shown) {
                // The shell completed the line on screen: the screen is the better witness.
                flags.push(format!("completed on screen; keys: {}", quoted(&line.text)));
                command = shown;
                completed = true;
                guesses.retain(|g| *g != TAB_GUESS);
            } else if !line.echo_off && !shown.is_empty() && shown != typed {
                // Where the keys leave room for doubt (history), or something rewrote the
                // line, the screen's text is shown beside the keys.
                if !line.guesses.is_empty() || !shown.contains(&typed) {
                    flags.push(format!("screen showed {}", quoted(&shown)));
                    screen = Some(shown);
                }
            }
        }
        for g in guesses {
            flags.push(format!("guess: {g}"));
        }
        let (kind, mut text) = match reader {
            Reader::Shell if line.eof => ("typed", "^D (end of input)".to_string()),
            Reader::Shell => ("typed", format!("$ {}", escape_visible(&command))),
            Reader::Program if line.eof => ("input", "^D typed to a program".to_string()),
            Reader::Program => (
                "input",
                format!("typed to a program: {}", escape_visible(&command)),
            ),
        };
        if !flags.is_empty() {
            text.push_str(&format!("   [{}]", flags.join("; ")));
        }
        let shown_as_typed =
            screen.is_none() && !no_echo && !line.cancelled && !line.eof && !completed;
        let entry = Entry {
            time_us: self.start_us + line.end_us as i64,
            file: self.file.clone(),
            kind: kind.into(),
            text,
            details: json!({
                "command": command,
                "keys": line.text,
                "typed_glyphs": line.glyphs,
                "erased": line.erased,
                "cancelled": line.cancelled,
                "eof": line.eof,
                "echo_off": line.echo_off,
                "no_echo": no_echo,
                "completed_on_screen": completed,
                "guesses": line.guesses,
                "screen_showed": screen,
                "offset_start_s": line.start_us as f64 / 1e6,
                "offset_s": line.end_us as f64 / 1e6,
            }),
            verbose: Vec::new(),
        };
        (entry, shown_as_typed)
    }
}

/// Whether the screen's line is the typed one with completions filled in: every piece of
/// text typed between Tab presses appears in it, in order.
fn completes(typed: &str, shown: &str) -> bool {
    if shown.is_empty() || typed.is_empty() {
        return false;
    }
    let mut at = 0;
    for piece in typed.split(' ').filter(|p| !p.is_empty()) {
        match shown[at..].find(piece) {
            Some(p) => at += p + piece.len(),
            None => return false,
        }
    }
    shown.starts_with(typed.chars().next().unwrap_or(' '))
}

fn mark_concealed(entry: &mut Entry) {
    let flag = "concealed: erased from the screen by the output that followed";
    if entry.text.ends_with(']') {
        entry.text.pop();
        entry.text.push_str(&format!("; {flag}]"));
    } else {
        entry.text.push_str(&format!("   [{flag}]"));
    }
    if let Value::Object(d) = &mut entry.details {
        d.insert("concealed".into(), true.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(frames: &[(&str, &[u8])]) -> Vec<Entry> {
        let mut t = TypedCommands::new("channel-1".into(), 0, 80, 24);
        let mut out = Vec::new();
        for (i, (s, data)) in frames.iter().enumerate() {
            let off = i as u64 * 100_000;
            match *s {
                "i" => t.input(off, data, false, &mut out),
                _ => t.output(off, data, &mut out),
            }
        }
        t.finish(&mut out);
        out
    }

    #[test]
    fn keys_in_a_full_screen_program_are_not_commands() {
        let out = run(&[
            ("o", b"\x1b[?2004h$ "),
            ("i", b"vi x\r"),
            ("o", b"vi x\r\n\x1b[?2004l\r"),
            ("o", b"\x1b[?1049h\x1b[H\x1b[2J~\r\n~"),
            ("i", b"ihello\x1b"),
            ("i", b":wq\r"),
            ("o", b"\x1b[?1049l"),
            ("o", b"\x1b[?2004h$ "),
            ("i", b"ls\r"),
            ("o", b"ls\r\n\x1b[?2004l\rfile\r\n"),
        ]);
        let typed: Vec<&str> = out
            .iter()
            .filter(|e| e.kind == "typed")
            .map(|e| e.text.as_str())
            .collect();
        assert_eq!(typed, ["$ vi x", "$ ls"]);
        assert!(out
            .iter()
            .any(|e| e.kind == "input" && e.text.starts_with("11 bytes")));
    }

    #[test]
    fn keys_read_by_a_program_are_input() {
        let out = run(&[
            ("o", b"\x1b[?2004h$ "),
            ("i", b"cat\r"),
            ("o", b"cat\r\n\x1b[?2004l\r"),
            ("i", b"to-cat\r"),
            ("o", b"to-cat\r\n"),
        ]);
        assert_eq!(out[0].text, "$ cat");
        assert_eq!(out[1].kind, "input");
        assert_eq!(out[1].text, "typed to a program: to-cat");
    }

    #[test]
    fn tab_completion_is_taken_from_the_screen() {
        let out = run(&[
            ("o", b"\x1b[?2004h$ "),
            ("i", b"/usr/bin/whoam\t"),
            ("o", b"/usr/bin/whoami "),
            ("i", b"\r"),
            ("o", b"\r\n\x1b[?2004l\rroot\r\n"),
        ]);
        assert!(
            out[0]
                .text
                .starts_with("$ /usr/bin/whoami   [completed on screen"),
            "{}",
            out[0].text
        );
    }

    #[test]
    fn modes_split_across_chunks_are_followed() {
        let mut m = ScreenModes::default();
        m.output(b"abc\x1b[?10");
        assert!(m.at_prompt());
        m.output(b"49h");
        assert!(m.full_screen());
        m.output(b"\x1b");
        m.output(b"[?1049l\x1b[?2004l");
        assert!(!m.full_screen() && !m.at_prompt());
    }
}
