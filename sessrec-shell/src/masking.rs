//! Which typed bytes are withheld from the record: secrets typed in "password mode" (the pty's
//! ECHO off and ICANON on), at most one line per switch into that mode, and a line typed after
//! an output prompt that matches `password_prompt_regex`. Later lines typed with echo off are
//! recorded and marked, so `stty -echo` cannot hide commands.
#![forbid(unsafe_code)]

use regex::Regex;

/// Longest output tail kept for prompt matching.
const PROMPT_TAIL_MAX: usize = 256;

/// One part of an input chunk after masking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputPiece<'a> {
    /// Recorded as ordinary input.
    Clear(&'a [u8]),
    /// Recorded, marked `echo_off` (typed in password mode past the one masked line).
    EchoOff(&'a [u8]),
    /// Withheld; only the byte count and the reason (`password_mode` or `prompt`) are recorded.
    Masked(usize, &'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Withhold {
    No,
    /// The one line granted by a switch into password mode.
    PasswordLine,
    /// The line after a matching prompt.
    PromptLine,
}

pub struct InputMasker {
    prompt: Regex,
    tail: Vec<u8>,
    prompt_armed: bool,
    in_password_mode: bool,
    withhold: Withhold,
    /// The current password-mode episode already used its masked line.
    line_used: bool,
}

fn is_line_end(b: u8) -> bool {
    b == b'\r' || b == b'\n'
}

impl InputMasker {
    pub fn new(prompt: Regex) -> Self {
        InputMasker {
            prompt,
            tail: Vec::with_capacity(PROMPT_TAIL_MAX),
            prompt_armed: false,
            in_password_mode: false,
            withhold: Withhold::No,
            line_used: false,
        }
    }

    /// Watches output for a password prompt.
    pub fn on_output(&mut self, data: &[u8]) {
        let line_start = match data.iter().rposition(|&b| b == b'\n') {
            Some(pos) => {
                // A new line was printed: an earlier prompt went unanswered.
                self.prompt_armed = false;
                self.tail.clear();
                pos + 1
            }
            None => 0,
        };
        let rest = &data[line_start..];
        if rest.len() >= PROMPT_TAIL_MAX {
            self.tail.clear();
            self.tail
                .extend_from_slice(&rest[rest.len() - PROMPT_TAIL_MAX..]);
        } else {
            let keep = PROMPT_TAIL_MAX - rest.len();
            if self.tail.len() > keep {
                self.tail.drain(..self.tail.len() - keep);
            }
            self.tail.extend_from_slice(rest);
        }
        if !rest.is_empty() {
            let text = String::from_utf8_lossy(&self.tail);
            if self.prompt.is_match(&text) {
                self.prompt_armed = true;
            }
        }
    }

    /// Splits typed bytes into recorded and withheld parts. `password_mode` is the pty's state
    /// (ECHO off, ICANON on) when the bytes arrived.
    pub fn on_input<'a>(&mut self, data: &'a [u8], password_mode: bool) -> Vec<InputPiece<'a>> {
        if password_mode && !self.in_password_mode {
            self.line_used = false;
        }
        if !password_mode && self.withhold == Withhold::PasswordLine {
            self.withhold = Withhold::No;
        }
        self.in_password_mode = password_mode;

        let mut pieces = Vec::new();
        let mut start = 0;
        while start < data.len() {
            if self.withhold == Withhold::No {
                if self.prompt_armed {
                    self.prompt_armed = false;
                    self.withhold = Withhold::PromptLine;
                    // The prompt's line is also this password-mode episode's line.
                    self.line_used |= password_mode;
                } else if password_mode && !self.line_used {
                    self.line_used = true;
                    self.withhold = Withhold::PasswordLine;
                }
            }
            match self.withhold {
                Withhold::No => {
                    let piece = &data[start..];
                    pieces.push(if password_mode {
                        InputPiece::EchoOff(piece)
                    } else {
                        InputPiece::Clear(piece)
                    });
                    start = data.len();
                }
                Withhold::PasswordLine | Withhold::PromptLine => {
                    let reason = if self.withhold == Withhold::PromptLine {
                        "prompt"
                    } else {
                        "password_mode"
                    };
                    let rest = &data[start..];
                    match rest.iter().position(|&b| is_line_end(b)) {
                        Some(pos) => {
                            pieces.push(InputPiece::Masked(pos + 1, reason));
                            start += pos + 1;
                            self.withhold = Withhold::No;
                            self.tail.clear();
                        }
                        None => {
                            pieces.push(InputPiece::Masked(rest.len(), reason));
                            start = data.len();
                        }
                    }
                }
            }
        }
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: &str = "password_mode";
    const PROMPT: &str = "prompt";

    fn masker() -> InputMasker {
        InputMasker::new(Regex::new("[Pp]assword[: ]*$").unwrap())
    }

    #[test]
    fn clear_input_passes() {
        let mut m = masker();
        assert_eq!(m.on_input(b"ls\r", false), vec![InputPiece::Clear(b"ls\r")]);
    }

    #[test]
    fn one_line_per_switch_then_echo_off() {
        let mut m = masker();
        assert_eq!(m.on_input(b"sec", true), vec![InputPiece::Masked(3, PW)]);
        assert_eq!(
            m.on_input(b"ret\nid\n", true),
            vec![InputPiece::Masked(4, PW), InputPiece::EchoOff(b"id\n")]
        );
        assert_eq!(
            m.on_input(b"whoami\n", true),
            vec![InputPiece::EchoOff(b"whoami\n")]
        );
        // Leaving and re-entering password mode grants one more line.
        assert_eq!(m.on_input(b"x\n", false), vec![InputPiece::Clear(b"x\n")]);
        assert_eq!(m.on_input(b"pw\n", true), vec![InputPiece::Masked(3, PW)]);
    }

    #[test]
    fn prompt_masks_next_line_even_in_raw_mode() {
        let mut m = masker();
        m.on_output(b"\r\nEnter password: ");
        assert_eq!(
            m.on_input(b"hunter2\rls\r", false),
            vec![InputPiece::Masked(8, PROMPT), InputPiece::Clear(b"ls\r")]
        );
        assert_eq!(
            m.on_input(b"pwd\r", false),
            vec![InputPiece::Clear(b"pwd\r")]
        );
    }

    #[test]
    fn prompt_split_across_reads_matches() {
        let mut m = masker();
        m.on_output(b"Pass");
        m.on_output(b"word: ");
        assert_eq!(
            m.on_input(b"x\r", false),
            vec![InputPiece::Masked(2, PROMPT)]
        );
    }

    #[test]
    fn unanswered_prompt_disarms_on_new_line() {
        let mut m = masker();
        m.on_output(b"Password: ");
        m.on_output(b"\r\ntimeout\r\n$ ");
        assert_eq!(m.on_input(b"ls\r", false), vec![InputPiece::Clear(b"ls\r")]);
    }

    #[test]
    fn prompt_and_password_mode_mask_one_line_only() {
        let mut m = masker();
        m.on_output(b"Password: ");
        assert_eq!(
            m.on_input(b"pw\n", true),
            vec![InputPiece::Masked(3, PROMPT)]
        );
        assert_eq!(
            m.on_input(b"cmd\n", true),
            vec![InputPiece::EchoOff(b"cmd\n")]
        );
    }
}
