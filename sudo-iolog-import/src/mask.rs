//! Withholds passwords typed into commands (sudo 1.9.10–1.9.17 logs them by default).
//!
//! After output whose current line matches the password prompt pattern, input is withheld up to
//! (not including) the next newline or carriage return. If the terminal echoes that input, the
//! echo is withheld too. The caller records what was withheld as `input.masked`.
#![forbid(unsafe_code)]

use regex::Regex;

/// Output text kept to match a prompt against (a prompt is one short line).
const PROMPT_WINDOW: usize = 512;
/// At most this many input bytes are withheld per prompt; a password is shorter, and an
/// unterminated line is not allowed to hide a whole session.
pub const MAX_MASKED: usize = 4096;

/// What to do with one piece of data.
#[derive(Debug, PartialEq, Eq)]
pub struct Masked<'a> {
    /// Bytes to record as they are, before the withheld part.
    pub before: &'a [u8],
    /// Number of bytes withheld.
    pub withheld: usize,
    /// Bytes to record after the withheld part.
    pub after: &'a [u8],
    /// True when this piece ended a masked stretch (its newline was seen).
    pub ended: bool,
}

pub struct PasswordMask {
    prompt: Regex,
    /// The current output line (after the last newline), capped.
    line: Vec<u8>,
    masking: bool,
    masked_in_stretch: usize,
    /// Masked input whose echo may still arrive on output.
    unechoed: Vec<u8>,
}

impl PasswordMask {
    pub fn new(prompt: Regex) -> Self {
        PasswordMask {
            prompt,
            line: Vec::new(),
            masking: false,
            masked_in_stretch: 0,
            unechoed: Vec::new(),
        }
    }

    pub fn masking(&self) -> bool {
        self.masking
    }

    /// Feeds output; returns how much of its start is the echo of masked input (withhold it).
    pub fn output(&mut self, data: &[u8]) -> usize {
        let echo = common_prefix(&self.unechoed, data);
        self.unechoed.drain(..echo);
        let rest = &data[echo..];
        if !rest.is_empty() {
            self.unechoed.clear();
        }
        match rest.iter().rposition(|b| *b == b'\n' || *b == b'\r') {
            Some(i) => {
                self.line.clear();
                self.line.extend_from_slice(&rest[i + 1..]);
            }
            None => self.line.extend_from_slice(rest),
        }
        if self.line.len() > PROMPT_WINDOW {
            let cut = self.line.len() - PROMPT_WINDOW;
            self.line.drain(..cut);
        }
        if !self.masking && !rest.is_empty() {
            let text = String::from_utf8_lossy(&self.line);
            if self.prompt.is_match(text.trim_end_matches(' ')) || self.prompt.is_match(&text) {
                self.masking = true;
                self.masked_in_stretch = 0;
                self.unechoed.clear();
            }
        }
        echo
    }

    /// Feeds input; splits it into what to record and what to withhold.
    pub fn input<'a>(&mut self, data: &'a [u8]) -> Masked<'a> {
        if !self.masking {
            return Masked {
                before: data,
                withheld: 0,
                after: &[],
                ended: false,
            };
        }
        let room = MAX_MASKED - self.masked_in_stretch;
        let newline = data.iter().position(|b| *b == b'\n' || *b == b'\r');
        let (end, ended) = match newline {
            Some(i) if i <= room => (i, true),
            _ if data.len() >= room => (room, true),
            _ => (data.len(), false),
        };
        self.masked_in_stretch += end;
        self.unechoed.extend_from_slice(&data[..end]);
        if self.unechoed.len() > MAX_MASKED {
            let cut = self.unechoed.len() - MAX_MASKED;
            self.unechoed.drain(..cut);
        }
        if ended {
            self.masking = false;
            self.line.clear();
        }
        Masked {
            before: &[],
            withheld: end,
            after: &data[end..],
            ended,
        }
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask() -> PasswordMask {
        PasswordMask::new(Regex::new("[Pp]assword[: ]*$").unwrap())
    }

    #[test]
    fn input_after_prompt_is_withheld_to_the_newline() {
        let mut m = mask();
        assert_eq!(m.output(b"ok\r\nEnter password: "), 0);
        assert!(m.masking());
        let r = m.input(b"s3c");
        assert_eq!((r.withheld, r.after, r.ended), (3, &b""[..], false));
        let r = m.input(b"ret\rls\r");
        assert_eq!((r.withheld, r.after, r.ended), (3, &b"\rls\r"[..], true));
        assert!(!m.masking());
        let r = m.input(b"whoami\r");
        assert_eq!((r.before, r.withheld), (&b"whoami\r"[..], 0));
    }

    #[test]
    fn echo_of_masked_input_is_withheld() {
        let mut m = mask();
        m.output(b"Password: ");
        let r = m.input(b"s3cret\n");
        assert_eq!(r.withheld, 6);
        assert_eq!(m.output(b"s3cret\r\ngot-6\r\n"), 6);
        assert_eq!(m.output(b"s3cret"), 0);
    }

    #[test]
    fn ordinary_output_does_not_mask() {
        let mut m = mask();
        m.output(b"the password file is /etc/shadow\r\n$ ");
        assert!(!m.masking());
        m.output(b"passwords: ");
        assert!(!m.masking());
        m.output(b"\r\nEnter LDAP Password: ");
        assert!(m.masking());
    }

    #[test]
    fn masking_is_bounded() {
        let mut m = mask();
        m.output(b"Password:");
        let big = vec![b'x'; MAX_MASKED + 10];
        let r = m.input(&big);
        assert_eq!(r.withheld, MAX_MASKED);
        assert_eq!(r.after.len(), 10);
        assert!(r.ended);
    }
}
