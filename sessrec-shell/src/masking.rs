//! Which typed bytes are withheld from the record. Masking exists to keep passwords out of
//! records, so it is built so that it cannot become an off switch:
//!
//! - A line is withheld only when a fresh event arms it, judged at the line's first byte:
//!   the pty switched into password mode (ECHO off, ICANON on) since the previous line ended,
//!   or the last output is a password prompt and the terminal was reconfigured with echo off
//!   since the previous line ended (raw-mode password readers). Staying in echo-off mode arms
//!   nothing, so `stty -echo` once cannot hide later lines, whatever the prompt says.
//! - A withheld line is bounded (`mask_line_max_bytes`); the rest of it is recorded, marked.
//! - More than `mask_arm_limit` armings within `mask_arm_window_s` suspend masking for the
//!   rest of the channel (`masking_suspended`): a program that re-arms at every line (a prompt
//!   that toggles echo) gets a few lines at most, and everything after is recorded.
//!
//! Input typed in password mode that is not withheld is recorded and marked `echo_off`.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use regex::Regex;

/// Longest output tail kept for prompt matching.
const PROMPT_TAIL_MAX: usize = 256;
/// After a line typed in password mode ends, the pty's mode is sampled this often (and on
/// every output) for a while, so that a program that leaves password mode briefly between
/// two secrets (sudo restores the terminal during its failure delay) is seen doing so.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
const SAMPLE_FOR: Duration = Duration::from_secs(4);

pub const REASON_PASSWORD_MODE: &str = "password_mode";
pub const REASON_PROMPT: &str = "prompt";

/// One part of an input chunk after masking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputPiece<'a> {
    /// Recorded as ordinary input.
    Clear(&'a [u8]),
    /// Recorded, marked `echo_off`: typed in password mode but not withheld (no fresh arming),
    /// or armed while masking is suspended.
    EchoOff(&'a [u8]),
    /// Withheld; only the byte count and the reason (`password_mode` or `prompt`) are recorded.
    Masked(usize, &'static str),
    /// The rest of a withheld line past `mask_line_max_bytes`: recorded, marked.
    PastMaskLimit(&'a [u8]),
    /// Masking stops for the rest of the channel: `armings` within `window` exceeded the limit.
    Suspended { armings: usize, window: Duration },
}

/// The limits on what masking may withhold (`[recorder] mask_*`).
#[derive(Debug, Clone, Copy)]
pub struct MaskPolicy {
    pub line_max_bytes: usize,
    /// 0: nothing is withheld.
    pub arm_limit: usize,
    pub arm_window: Duration,
}

impl MaskPolicy {
    pub fn from_config(rec: &sessrec_core::config::RecorderConfig) -> Self {
        MaskPolicy {
            line_max_bytes: rec.mask_line_max_bytes,
            arm_limit: rec.mask_arm_limit,
            arm_window: Duration::from_secs(rec.mask_arm_window_s),
        }
    }
}

/// What masking needs of the pty's settings at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermMode {
    pub echo: bool,
    pub canonical: bool,
    /// A digest of all the settings: a change of any of them is a reconfiguration.
    settings: u64,
}

impl TermMode {
    /// Echo on, canonical: what arms nothing.
    pub const ECHOING: TermMode = TermMode {
        echo: true,
        canonical: true,
        settings: 0,
    };

    pub fn from_termios(t: &libc::termios) -> Self {
        // FNV-1a over the flags and control characters (not the speeds). A collision only
        // makes a reconfiguration go unseen: the line is then recorded, never hidden.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let flags = [t.c_iflag, t.c_oflag, t.c_cflag, t.c_lflag];
        for b in flags.iter().flat_map(|f| f.to_le_bytes()).chain(t.c_cc) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        TermMode {
            echo: t.c_lflag & libc::ECHO != 0,
            canonical: t.c_lflag & libc::ICANON != 0,
            settings: h,
        }
    }

    /// ECHO off and ICANON on: how getpass(3), sudo and ssh read a secret.
    pub fn password_mode(&self) -> bool {
        !self.echo && self.canonical
    }

    #[cfg(test)]
    fn new(echo: bool, canonical: bool, settings: u64) -> Self {
        TermMode {
            echo,
            canonical,
            settings,
        }
    }
}

/// How the current input line is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Not armed: recorded (marked `echo_off` where typed in password mode).
    Open,
    /// Armed: withheld, `bytes` so far.
    Withheld { reason: &'static str, bytes: usize },
    /// Past the bound of a withheld line: recorded, marked.
    PastLimit,
    /// Armed while masking is suspended: recorded, marked `echo_off`.
    Unmasked,
}

/// Pieces as ranges of the input chunk, merged while contiguous and alike.
#[derive(Debug)]
enum Span {
    Clear(usize, usize),
    EchoOff(usize, usize),
    PastLimit(usize, usize),
    Masked(usize, &'static str),
    Suspended(usize),
}

fn push_range(spans: &mut Vec<Span>, span: Span) {
    match (spans.last_mut(), &span) {
        (Some(Span::Clear(_, end)), Span::Clear(start, new_end))
        | (Some(Span::EchoOff(_, end)), Span::EchoOff(start, new_end))
        | (Some(Span::PastLimit(_, end)), Span::PastLimit(start, new_end))
            if *end == *start =>
        {
            *end = *new_end;
        }
        _ => spans.push(span),
    }
}

pub struct InputMasker {
    prompt: Regex,
    policy: MaskPolicy,
    tail: Vec<u8>,
    /// The last output ends with a password prompt (any later output re-decides).
    prompt_last: bool,
    line: Line,
    at_line_start: bool,
    /// The mode when the previous line ended (`None` before the first line).
    line_end_mode: Option<TermMode>,
    line_ended_at: Option<Instant>,
    /// Since the previous line ended, the pty was seen outside password mode / with echo on.
    left_password_mode: bool,
    echo_was_on: bool,
    last_sample: Option<Instant>,
    /// When recent lines were armed (at most `arm_limit` kept).
    armings: VecDeque<Instant>,
    suspended: bool,
}

fn is_line_end(b: u8) -> bool {
    // Enter (either form), and Ctrl-C / Ctrl-D, which end a password read too.
    matches!(b, b'\r' | b'\n' | 0x03 | 0x04)
}

impl InputMasker {
    pub fn new(prompt: Regex, policy: MaskPolicy) -> Self {
        InputMasker {
            prompt,
            policy,
            tail: Vec::with_capacity(PROMPT_TAIL_MAX),
            prompt_last: false,
            line: Line::Open,
            at_line_start: true,
            line_end_mode: None,
            line_ended_at: None,
            // A pty starts with echo on, in canonical mode.
            left_password_mode: true,
            echo_was_on: true,
            last_sample: None,
            armings: VecDeque::new(),
            suspended: false,
        }
    }

    fn masking_on(&self) -> bool {
        !self.suspended && self.policy.arm_limit > 0
    }

    /// Whether a sample of the pty's mode now could still change what arms the next line
    /// (callers skip the `tcgetattr` otherwise).
    pub fn wants_mode(&self) -> bool {
        self.masking_on() && !(self.left_password_mode && self.echo_was_on)
    }

    /// When the pty's mode should next be sampled without waiting for I/O: only for a while
    /// after a line typed in password mode ended.
    pub fn sample_deadline(&self) -> Option<Instant> {
        if !self.wants_mode() || self.left_password_mode {
            return None;
        }
        let ended = self.line_ended_at?;
        let next = self.last_sample.unwrap_or(ended).max(ended) + SAMPLE_EVERY;
        (next <= ended + SAMPLE_FOR).then_some(next)
    }

    /// A sample of the pty's mode, taken whenever I/O passes or a sample deadline is due.
    pub fn observe_mode(&mut self, mode: TermMode, now: Instant) {
        self.last_sample = Some(now);
        if !mode.password_mode() {
            self.left_password_mode = true;
        }
        if mode.echo {
            self.echo_was_on = true;
        }
    }

    /// Watches output for a password prompt: it counts only while it is the last output.
    pub fn on_output(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let line_start = match data.iter().rposition(|&b| b == b'\n') {
            Some(pos) => {
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
        self.prompt_last = !self.tail.is_empty() && self.ends_with_prompt();
    }

    /// Whether a prompt match ends exactly where the output ends.
    fn ends_with_prompt(&self) -> bool {
        let text = String::from_utf8_lossy(&self.tail);
        self.prompt
            .find_iter(&text)
            .last()
            .is_some_and(|m| m.end() == text.len())
    }

    /// Splits typed bytes into recorded and withheld parts. `mode` is the pty's mode when the
    /// bytes arrived (before the program reading them has seen them).
    pub fn on_input<'a>(
        &mut self,
        data: &'a [u8],
        mode: TermMode,
        now: Instant,
    ) -> Vec<InputPiece<'a>> {
        self.observe_mode(mode, now);
        // The program stopped reading a secret (echo back on, or out of password mode):
        // the rest of that line is ordinary input.
        if let Line::Withheld { reason, .. } = self.line {
            if mode.echo || (reason == REASON_PASSWORD_MODE && !mode.password_mode()) {
                self.line = Line::Open;
            }
        }
        let mut spans = Vec::new();
        let mut start = 0;
        while start < data.len() {
            if self.at_line_start {
                self.at_line_start = false;
                self.line = self.arm(mode, now, &mut spans);
            }
            let rest = &data[start..];
            let line_end = rest.iter().position(|&b| is_line_end(b));
            let len = line_end.map_or(rest.len(), |p| p + 1);
            let (from, to) = (start, start + len);
            match self.line {
                Line::Open if mode.password_mode() => {
                    push_range(&mut spans, Span::EchoOff(from, to))
                }
                Line::Open => push_range(&mut spans, Span::Clear(from, to)),
                Line::Unmasked => push_range(&mut spans, Span::EchoOff(from, to)),
                Line::PastLimit => push_range(&mut spans, Span::PastLimit(from, to)),
                Line::Withheld { reason, bytes } => {
                    let room = self.policy.line_max_bytes.saturating_sub(bytes);
                    let hidden = len.min(room);
                    if hidden > 0 {
                        spans.push(Span::Masked(hidden, reason));
                    }
                    if hidden < len {
                        push_range(&mut spans, Span::PastLimit(from + hidden, to));
                        self.line = Line::PastLimit;
                    } else {
                        self.line = Line::Withheld {
                            reason,
                            bytes: bytes + hidden,
                        };
                    }
                }
            }
            start = to;
            if line_end.is_some() {
                self.end_line(mode, now);
            }
        }
        spans
            .into_iter()
            .map(|s| match s {
                Span::Clear(a, b) => InputPiece::Clear(&data[a..b]),
                Span::EchoOff(a, b) => InputPiece::EchoOff(&data[a..b]),
                Span::PastLimit(a, b) => InputPiece::PastMaskLimit(&data[a..b]),
                Span::Masked(n, reason) => InputPiece::Masked(n, reason),
                Span::Suspended(armings) => InputPiece::Suspended {
                    armings,
                    window: self.policy.arm_window,
                },
            })
            .collect()
    }

    /// Decides, at a line's first byte, whether a fresh event arms it.
    fn arm(&mut self, mode: TermMode, now: Instant, spans: &mut Vec<Span>) -> Line {
        if !self.masking_on() {
            return Line::Open;
        }
        let switched_to_password_mode = mode.password_mode() && self.left_password_mode;
        let reconfigured = self.echo_was_on
            || self
                .line_end_mode
                .is_none_or(|m| m.settings != mode.settings);
        let prompted = self.prompt_last && !mode.echo && reconfigured;
        self.prompt_last = false;
        let reason = if prompted {
            REASON_PROMPT
        } else if switched_to_password_mode {
            REASON_PASSWORD_MODE
        } else {
            return Line::Open;
        };
        while self
            .armings
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= self.policy.arm_window)
        {
            self.armings.pop_front();
        }
        if self.armings.len() >= self.policy.arm_limit {
            self.suspended = true;
            spans.push(Span::Suspended(self.armings.len() + 1));
            return Line::Unmasked;
        }
        self.armings.push_back(now);
        Line::Withheld { reason, bytes: 0 }
    }

    fn end_line(&mut self, mode: TermMode, now: Instant) {
        self.line = Line::Open;
        self.at_line_start = true;
        self.line_end_mode = Some(mode);
        self.line_ended_at = Some(now);
        self.left_password_mode = !mode.password_mode();
        self.echo_was_on = mode.echo;
        // A prompt shown before this line was answered by it.
        self.prompt_last = false;
        self.tail.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: &str = REASON_PASSWORD_MODE;
    const PROMPT: &str = REASON_PROMPT;

    /// bash's readline: no echo, not canonical.
    const READLINE: TermMode = TermMode {
        echo: false,
        canonical: false,
        settings: 1,
    };
    /// A shell reading without line editing, or a program between reads.
    const COOKED: TermMode = TermMode {
        echo: true,
        canonical: true,
        settings: 2,
    };
    /// getpass(3), `stty -echo`.
    const PASSWORD: TermMode = TermMode {
        echo: false,
        canonical: true,
        settings: 3,
    };
    /// `stty raw -echo`.
    const RAW: TermMode = TermMode {
        echo: false,
        canonical: false,
        settings: 4,
    };

    fn policy() -> MaskPolicy {
        MaskPolicy {
            line_max_bytes: 256,
            arm_limit: 5,
            arm_window: Duration::from_secs(60),
        }
    }

    fn masker() -> InputMasker {
        InputMasker::new(Regex::new("[Pp]assword[: ]*$").unwrap(), policy())
    }

    /// A clock the tests move by hand.
    struct Clock(Instant);
    impl Clock {
        fn new() -> Self {
            Clock(Instant::now())
        }
        fn at(&mut self, advance_ms: u64) -> Instant {
            self.0 += Duration::from_millis(advance_ms);
            self.0
        }
    }

    /// Types `line` at a shell in readline mode (the line is recorded in clear).
    fn shell_line(m: &mut InputMasker, c: &mut Clock, line: &[u8]) {
        assert_eq!(
            m.on_input(line, READLINE, c.at(10)),
            vec![InputPiece::Clear(line)]
        );
    }

    #[test]
    fn clear_input_passes() {
        let mut m = masker();
        let mut c = Clock::new();
        shell_line(&mut m, &mut c, b"ls\r");
        assert_eq!(
            m.on_input(b"echo a\recho b\r", READLINE, c.at(5)),
            vec![InputPiece::Clear(b"echo a\recho b\r")]
        );
    }

    #[test]
    fn switch_into_password_mode_arms_one_line() {
        let mut m = masker();
        let mut c = Clock::new();
        shell_line(&mut m, &mut c, b"read -s x\r");
        assert_eq!(
            m.on_input(b"sec", PASSWORD, c.at(10)),
            vec![InputPiece::Masked(3, PW)]
        );
        assert_eq!(
            m.on_input(b"ret\nid\n", PASSWORD, c.at(10)),
            vec![InputPiece::Masked(4, PW), InputPiece::EchoOff(b"id\n")]
        );
        assert_eq!(
            m.on_input(b"whoami\n", PASSWORD, c.at(10)),
            vec![InputPiece::EchoOff(b"whoami\n")]
        );
        // Leaving and re-entering password mode arms again.
        shell_line(&mut m, &mut c, b"x\r");
        assert_eq!(
            m.on_input(b"pw\n", PASSWORD, c.at(10)),
            vec![InputPiece::Masked(3, PW)]
        );
    }

    /// The reported attack: `stty -echo; PS1='Password: ' exec dash -i`. At most the first
    /// line after the switch is withheld; the prompt arms nothing while echo stays off.
    #[test]
    fn echo_off_shell_with_password_prompt_hides_at_most_one_line() {
        let mut m = masker();
        let mut c = Clock::new();
        shell_line(
            &mut m,
            &mut c,
            b"stty -echo; PS1='Password: ' exec dash -i\r",
        );
        m.observe_mode(PASSWORD, c.at(5));
        m.on_output(b"Password: ");
        assert_eq!(
            m.on_input(b"echo hidden-cmd-1\r", PASSWORD, c.at(10)),
            vec![InputPiece::Masked(18, PROMPT)]
        );
        for n in 2..20 {
            let line = format!("echo hidden-cmd-{n}\r");
            m.observe_mode(PASSWORD, c.at(5));
            m.on_output(format!("hidden-cmd-{}\r\n", n - 1).as_bytes());
            m.observe_mode(PASSWORD, c.at(1));
            m.on_output(b"Password: ");
            assert_eq!(
                m.on_input(line.as_bytes(), PASSWORD, c.at(1000)),
                vec![InputPiece::EchoOff(line.as_bytes())],
                "line {n}"
            );
        }
        assert!(!m.suspended);
    }

    #[test]
    fn prompt_alone_arms_nothing() {
        let mut m = masker();
        let mut c = Clock::new();
        shell_line(&mut m, &mut c, b"PS1='Password: '\r");
        for _ in 0..3 {
            m.on_output(b"Password: ");
            shell_line(&mut m, &mut c, b"id\r");
        }
    }

    #[test]
    fn prompt_in_raw_mode_after_a_switch_masks_one_line() {
        let mut m = masker();
        let mut c = Clock::new();
        shell_line(
            &mut m,
            &mut c,
            b"stty raw -echo; printf 'Token password: '; head -c 11\r",
        );
        m.on_output(b"\r\n");
        m.observe_mode(RAW, c.at(5));
        m.on_output(b"Token password: ");
        assert_eq!(
            m.on_input(b"hunter2\rls\r", RAW, c.at(10)),
            vec![InputPiece::Masked(8, PROMPT), InputPiece::Clear(b"ls\r")]
        );
        // Staying in raw mode with the prompt shown again: not fresh, recorded.
        m.on_output(b"Token password: ");
        assert_eq!(
            m.on_input(b"pwd\r", RAW, c.at(10)),
            vec![InputPiece::Clear(b"pwd\r")]
        );
    }

    /// `PS1='...Password: '` with bash's readline: the prompt is last, echo is off, but the
    /// terminal is in the same mode as when the previous line ended.
    #[test]
    fn readline_prompt_without_reconfiguration_is_recorded() {
        let mut m = masker();
        let mut c = Clock::new();
        shell_line(&mut m, &mut c, b"PS1='$(stty -echo)Password: '\r");
        for _ in 0..10 {
            m.observe_mode(PASSWORD, c.at(5));
            m.on_output(b"Password: ");
            shell_line(&mut m, &mut c, b"id\r");
        }
    }

    #[test]
    fn prompt_split_across_reads_matches() {
        let mut m = masker();
        let mut c = Clock::new();
        shell_line(&mut m, &mut c, b"sudo true\r");
        m.on_output(b"Pass");
        m.on_output(b"word: ");
        assert_eq!(
            m.on_input(b"x\r", PASSWORD, c.at(10)),
            vec![InputPiece::Masked(2, PROMPT)]
        );
    }

    #[test]
    fn later_output_disarms_the_prompt() {
        let mut m = masker();
        let mut c = Clock::new();
        shell_line(&mut m, &mut c, b"prog\r");
        m.observe_mode(COOKED, c.at(1));
        m.on_output(b"Password: ");
        m.on_output(b"(hint) ");
        assert_eq!(
            m.on_input(b"ls\r", RAW, c.at(10)),
            vec![InputPiece::Clear(b"ls\r")]
        );
        m.on_output(b"Password: ");
        m.on_output(b"\r\ntimeout\r\n$ ");
        m.observe_mode(COOKED, c.at(1));
        assert_eq!(
            m.on_input(b"ls\r", RAW, c.at(10)),
            vec![InputPiece::Clear(b"ls\r")]
        );
    }

    #[test]
    fn prompt_and_password_mode_mask_one_line_only() {
        let mut m = masker();
        let mut c = Clock::new();
        shell_line(&mut m, &mut c, b"su\r");
        m.on_output(b"Password: ");
        assert_eq!(
            m.on_input(b"pw\n", PASSWORD, c.at(10)),
            vec![InputPiece::Masked(3, PROMPT)]
        );
        assert_eq!(
            m.on_input(b"cmd\n", PASSWORD, c.at(10)),
            vec![InputPiece::EchoOff(b"cmd\n")]
        );
    }

    #[test]
    fn withheld_line_is_bounded() {
        let mut m = InputMasker::new(
            Regex::new("[Pp]assword[: ]*$").unwrap(),
            MaskPolicy {
                line_max_bytes: 8,
                ..policy()
            },
        );
        let mut c = Clock::new();
        shell_line(&mut m, &mut c, b"read -s x\r");
        assert_eq!(
            m.on_input(b"12345", PASSWORD, c.at(10)),
            vec![InputPiece::Masked(5, PW)]
        );
        assert_eq!(
            m.on_input(b"678; rm -rf /tmp/x", PASSWORD, c.at(10)),
            vec![
                InputPiece::Masked(3, PW),
                InputPiece::PastMaskLimit(b"; rm -rf /tmp/x")
            ]
        );
        assert_eq!(
            m.on_input(b" more\rnext\r", PASSWORD, c.at(10)),
            vec![
                InputPiece::PastMaskLimit(b" more\r"),
                InputPiece::EchoOff(b"next\r")
            ]
        );
    }

    /// A program that toggles echo at every line (or `PS1='$(stty echo; ...; stty -echo)'`):
    /// each line is freshly armed, so the rate limit ends masking for the channel.
    #[test]
    fn rearming_at_every_line_suspends_masking() {
        let mut m = masker();
        let mut c = Clock::new();
        for n in 0..5 {
            m.observe_mode(COOKED, c.at(50));
            m.on_output(b"ok\r\n");
            m.observe_mode(PASSWORD, c.at(1));
            m.on_output(b"Password: ");
            assert_eq!(
                m.on_input(b"cmd\r", PASSWORD, c.at(100)),
                vec![InputPiece::Masked(4, PROMPT)],
                "arming {n}"
            );
        }
        m.observe_mode(COOKED, c.at(50));
        m.observe_mode(PASSWORD, c.at(1));
        m.on_output(b"Password: ");
        assert_eq!(
            m.on_input(b"cmd-6\r", PASSWORD, c.at(100)),
            vec![
                InputPiece::Suspended {
                    armings: 6,
                    window: Duration::from_secs(60)
                },
                InputPiece::EchoOff(b"cmd-6\r")
            ]
        );
        // For the rest of the channel, even after a minute, and in raw mode too.
        for _ in 0..3 {
            m.observe_mode(COOKED, c.at(60_000));
            m.on_output(b"Password: ");
            assert_eq!(
                m.on_input(b"pw\r", PASSWORD, c.at(10)),
                vec![InputPiece::EchoOff(b"pw\r")]
            );
        }
        assert!(!m.wants_mode());
        assert_eq!(m.sample_deadline(), None);
    }

    #[test]
    fn sudo_three_tries_and_ssh_add_stay_masked() {
        let mut m = masker();
        let mut c = Clock::new();
        shell_line(&mut m, &mut c, b"sudo -k; sudo true\r");
        for n in 0..3 {
            m.observe_mode(PASSWORD, c.at(5));
            m.on_output(b"[sudo] password for alice: ");
            assert_eq!(
                m.on_input(b"wrong\r", PASSWORD, c.at(500)),
                vec![InputPiece::Masked(6, PW)],
                "try {n}"
            );
            // sudo restores the terminal during its failure delay; the timer sees it.
            let due = m.sample_deadline().expect("sampling after a password line");
            m.observe_mode(COOKED, due);
            c.at(2000);
            m.on_output(b"Sorry, try again.\r\n");
        }
        shell_line(&mut m, &mut c, b"ssh-add\r");
        m.observe_mode(PASSWORD, c.at(5));
        m.on_output(b"Enter passphrase for /home/alice/.ssh/id_ed25519: ");
        assert_eq!(
            m.on_input(b"passphrase\r", PASSWORD, c.at(500)),
            vec![InputPiece::Masked(11, PW)]
        );
        assert!(!m.suspended);
    }

    #[test]
    fn armings_leave_the_window() {
        let mut m = masker();
        let mut c = Clock::new();
        for n in 0..12 {
            shell_line(&mut m, &mut c, b"read -s x\r");
            assert_eq!(
                m.on_input(b"pw\r", PASSWORD, c.at(13_000)),
                vec![InputPiece::Masked(3, PW)],
                "arming {n}"
            );
        }
    }

    #[test]
    fn limit_zero_never_withholds() {
        let mut m = InputMasker::new(
            Regex::new("[Pp]assword[: ]*$").unwrap(),
            MaskPolicy {
                arm_limit: 0,
                ..policy()
            },
        );
        let mut c = Clock::new();
        shell_line(&mut m, &mut c, b"read -s x\r");
        m.on_output(b"Password: ");
        assert_eq!(
            m.on_input(b"pw\r", PASSWORD, c.at(10)),
            vec![InputPiece::EchoOff(b"pw\r")]
        );
    }

    #[test]
    fn echo_back_on_ends_a_withheld_line() {
        let mut m = masker();
        let mut c = Clock::new();
        shell_line(&mut m, &mut c, b"prog\r");
        m.on_output(b"Password: ");
        assert_eq!(
            m.on_input(b"abc", RAW, c.at(10)),
            vec![InputPiece::Masked(3, PROMPT)]
        );
        assert_eq!(
            m.on_input(b"def\r", COOKED, c.at(10)),
            vec![InputPiece::Clear(b"def\r")]
        );
    }

    #[test]
    fn ctrl_c_ends_a_withheld_line() {
        let mut m = masker();
        let mut c = Clock::new();
        shell_line(&mut m, &mut c, b"read -s x\r");
        assert_eq!(
            m.on_input(b"ab\x03", PASSWORD, c.at(10)),
            vec![InputPiece::Masked(3, PW)]
        );
        assert_eq!(
            m.on_input(b"id\r", PASSWORD, c.at(10)),
            vec![InputPiece::EchoOff(b"id\r")]
        );
    }

    #[test]
    fn first_line_of_a_channel_in_password_mode_is_armed() {
        // A forced command that asks for a secret at once.
        let mut m = masker();
        let mut c = Clock::new();
        m.on_output(b"Password: ");
        assert_eq!(
            m.on_input(b"pw\r", PASSWORD, c.at(10)),
            vec![InputPiece::Masked(3, PROMPT)]
        );
    }

    #[test]
    fn sampling_stops_after_a_while() {
        let mut m = masker();
        let mut c = Clock::new();
        shell_line(&mut m, &mut c, b"read -s x\r");
        m.on_input(b"pw\r", PASSWORD, c.at(10));
        let mut samples = 0;
        while let Some(due) = m.sample_deadline() {
            m.observe_mode(PASSWORD, due);
            samples += 1;
            assert!(samples < 100);
        }
        assert_eq!(
            samples as u128,
            SAMPLE_FOR.as_millis() / SAMPLE_EVERY.as_millis()
        );
        // A non-password line end needs no timer.
        shell_line(&mut m, &mut c, b"ls\r");
        assert_eq!(m.sample_deadline(), None);
    }

    #[test]
    fn term_mode_from_termios() {
        let mut t = blank_termios();
        t.c_lflag = libc::ICANON;
        let pw = TermMode::from_termios(&t);
        assert!(pw.password_mode());
        t.c_lflag |= libc::ECHO;
        let cooked = TermMode::from_termios(&t);
        assert!(cooked.echo && !cooked.password_mode());
        assert_ne!(pw.settings, cooked.settings);
        t.c_lflag &= !libc::ECHO;
        t.c_iflag |= libc::IXON;
        assert_ne!(TermMode::from_termios(&t).settings, pw.settings);
        assert_eq!(TermMode::new(false, true, 7).settings, 7);
    }

    fn blank_termios() -> libc::termios {
        libc::termios {
            c_iflag: 0,
            c_oflag: 0,
            c_cflag: 0,
            c_lflag: 0,
            c_line: 0,
            c_cc: [0; libc::NCCS],
            c_ispeed: 0,
            c_ospeed: 0,
        }
    }
}
