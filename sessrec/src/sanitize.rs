//! Streaming filter that lets only drawing sequences from recorded output reach the
//! operator's terminal.
//!
//! Recorded output is attacker-controlled. A byte stream replayed verbatim can set the
//! operator's clipboard (OSC 52), plant hyperlinks (OSC 8), make the terminal answer queries
//! into the operator's keyboard input (DA, DSR/CPR, DECRQSS, XTGETTCAP, window reports),
//! resize or lock the terminal, or switch it out of UTF-8 so later bytes mean something else.
//!
//! The filter is a VT500-style parser (after Paul Williams' state diagram) that re-emits:
//! - text as valid UTF-8 (invalid bytes become U+FFFD; C1 code points are treated as controls),
//! - the C0 controls BS, HT, LF, VT, FF, CR, SO, SI,
//! - ESC sequences for cursor save/restore, index, tab set, charset designation and
//!   invocation, line size, screen alignment and full reset,
//! - CSI sequences for cursor movement, erase, insert/delete, scrolling and scroll margins,
//!   SGR, tab clear, cursor style, soft reset, and the set/reset modes that only change
//!   drawing (other modes are removed from the parameter list),
//!
//! and drops everything else: every OSC (window titles too: a title is not part of the
//! screen and can mislead the operator about which window is which), DCS, SOS, PM and APC
//! strings, every query or report, keyboard/mouse/paste/focus modes, window operations,
//! BEL, ENQ and the character-set mode switch `ESC %`.
//!
//! State is carried across `push` calls, so a sequence split across I/O frames is handled
//! exactly as if it had arrived whole.
#![forbid(unsafe_code)]

/// Longest CSI sequence (parameters and intermediates) kept; longer ones are dropped whole.
const MAX_CSI_LEN: usize = 256;

/// The resets every terminal understands, in an order where none undoes another.
const RESTORE_MODES: &[u8] = concat!(
    "\x1b[0m",                   // SGR: colours and attributes
    "\x1b[4l\x1b[20l",           // IRM insert mode, LNM new line mode
    "\x1b[?5l\x1b[?6l\x1b[?69l", // DECSCNM reverse video, DECOM origin, DECLRMM side margins
    "\x1b[?7h\x1b[?25h",         // DECAWM autowrap on, DECTCEM cursor shown
    "\x1b[?1l\x1b>",             // DECCKM cursor keys, DECKPNM keypad (raw replays)
    // Mouse, focus and bracketed paste reports (raw replays).
    "\x1b[?9l\x1b[?1000l\x1b[?1001l\x1b[?1002l\x1b[?1003l\x1b[?1004l",
    "\x1b[?1005l\x1b[?1006l\x1b[?1015l\x1b[?2004l",
    "\x1b(B\x1b)B\x1b*B\x1b+B\x0f", // G0..G3 ASCII, G0 invoked (SI)
    "\x1b7\x1b[r\x1b8",             // top/bottom margins, keeping the cursor where it is
)
.as_bytes();

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Ground,
    Escape,
    EscapeIntermediate,
    Csi,
    CsiIgnore,
    /// OSC, DCS, SOS, PM or APC body: swallowed until its terminator.
    String {
        bel_ends: bool,
    },
    /// ESC seen inside a string: `\` ends the string, anything else starts a new escape.
    StringEscape,
}

/// The drawing-only filter. Feed it output chunks in order with [`Sanitizer::push`].
#[derive(Debug)]
pub struct Sanitizer {
    raw: bool,
    state: State,
    /// Bytes of the sequence being parsed (after `ESC` / `ESC [`).
    seq: Vec<u8>,
    /// A UTF-8 character split across chunks.
    utf8: [u8; 4],
    utf8_len: usize,
    utf8_need: usize,
    alt_screen: bool,
    /// Drawing state passed through that only some terminals understand how to reset; the
    /// restore sequence resets each only when it was set (an unknown reset would print junk
    /// on terminals such as the Linux console).
    cursor_style: bool,
    cursor_blink: bool,
    protected: bool,
    line_size: bool,
    dropped: u64,
}

impl Sanitizer {
    /// A filter that passes only drawing sequences.
    pub fn new() -> Self {
        Self::with_raw(false)
    }

    /// `raw = true` passes every byte unchanged (the `--raw` option).
    pub fn with_raw(raw: bool) -> Self {
        Sanitizer {
            raw,
            state: State::Ground,
            seq: Vec::new(),
            utf8: [0; 4],
            utf8_len: 0,
            utf8_need: 0,
            alt_screen: false,
            cursor_style: false,
            cursor_blink: false,
            protected: false,
            line_size: false,
            dropped: 0,
        }
    }

    /// Number of sequences and control bytes removed so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Filters one chunk, appending what may be shown to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if self.raw {
            out.extend_from_slice(input);
            // Still parsed, so that the restore sequence knows what the replay set.
            let mut unused = Vec::new();
            for &b in input {
                self.byte(b, &mut unused);
                unused.clear();
            }
            return;
        }
        for &b in input {
            self.byte(b, out);
        }
    }

    /// Convenience for tests and small strings.
    pub fn filter(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        self.push(input, &mut out);
        out
    }

    /// Ends the stream: an unfinished UTF-8 character becomes U+FFFD, an unfinished sequence
    /// is dropped.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.raw {
            return;
        }
        if self.utf8_len > 0 {
            out.extend_from_slice("\u{fffd}".as_bytes());
            self.utf8_len = 0;
            self.utf8_need = 0;
        }
        if self.state != State::Ground {
            self.dropped += 1;
            self.state = State::Ground;
            self.seq.clear();
        }
    }

    /// Puts the operator's terminal back in a sane state after a replay, whatever the replay
    /// set: every mode, charset and margin the filter lets through (and, for `--raw`
    /// replays, the input modes it does not), then a new line. Written at every exit of
    /// `play`. Resets that only some terminals know are sent only when the replay used them.
    pub fn restore_sequence(&self) -> Vec<u8> {
        let mut s = Vec::with_capacity(256);
        // A synchronized update hides everything after it until it ends: end it first.
        s.extend_from_slice(b"\x1b[?2026l");
        if self.alt_screen {
            s.extend_from_slice(b"\x1b[?1049l");
        }
        s.extend_from_slice(RESTORE_MODES);
        if self.cursor_style {
            s.extend_from_slice(b"\x1b[0 q");
        }
        if self.cursor_blink {
            s.extend_from_slice(b"\x1b[?12l");
        }
        if self.protected {
            s.extend_from_slice(b"\x1b[0\"q");
        }
        s.extend_from_slice(b"\r\n");
        if self.line_size {
            // The new current line: single width, single height.
            s.extend_from_slice(b"\x1b#5");
        }
        s
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        // Finish or abandon a pending multi-byte character first.
        if self.utf8_len > 0 {
            if (0x80..0xc0).contains(&b) {
                self.utf8[self.utf8_len] = b;
                self.utf8_len += 1;
                if self.utf8_len == self.utf8_need {
                    let len = self.utf8_len;
                    self.utf8_len = 0;
                    let buf = self.utf8;
                    match std::str::from_utf8(&buf[..len]) {
                        Ok(s) => {
                            let c = s.chars().next().unwrap_or('\u{fffd}');
                            self.code_point(c, out);
                        }
                        Err(_) => self.code_point('\u{fffd}', out),
                    }
                }
                return;
            }
            self.utf8_len = 0;
            self.code_point('\u{fffd}', out);
        }
        match b {
            0x00..=0x7f => self.code_point(char::from(b), out),
            0xc2..=0xdf => self.start_utf8(b, 2),
            0xe0..=0xef => self.start_utf8(b, 3),
            0xf0..=0xf4 => self.start_utf8(b, 4),
            // A lone continuation byte or an impossible lead byte. Inside a string being
            // swallowed it stays swallowed; elsewhere it is shown as U+FFFD.
            _ => self.code_point('\u{fffd}', out),
        }
    }

    fn start_utf8(&mut self, b: u8, need: usize) {
        self.utf8[0] = b;
        self.utf8_len = 1;
        self.utf8_need = need;
    }

    fn code_point(&mut self, c: char, out: &mut Vec<u8>) {
        let cp = c as u32;
        // CAN and SUB abort any sequence; ESC starts a new one from any state.
        match cp {
            0x18 | 0x1a => {
                if self.state != State::Ground {
                    self.abandon();
                }
                self.dropped += 1;
                return;
            }
            0x1b => {
                match self.state {
                    State::String { .. } => self.state = State::StringEscape,
                    State::StringEscape => {
                        self.state = State::Escape;
                        self.seq.clear();
                    }
                    State::Ground => {
                        self.state = State::Escape;
                        self.seq.clear();
                    }
                    _ => {
                        self.abandon();
                        self.state = State::Escape;
                    }
                }
                return;
            }
            _ => {}
        }
        // C1 controls (as decoded code points): act like their 7-bit ESC forms.
        if (0x80..0xa0).contains(&cp) {
            self.c1(cp as u8, out);
            return;
        }
        match self.state {
            State::Ground => self.ground(c, out),
            State::Escape => self.escape(c, out),
            State::EscapeIntermediate => self.escape_intermediate(c, out),
            State::Csi => self.csi(c, out),
            State::CsiIgnore => {
                if cp < 0x20 {
                    self.control(cp as u8, out);
                } else if (0x40..=0x7e).contains(&cp) {
                    self.state = State::Ground;
                }
            }
            State::String { bel_ends } => {
                if cp == 0x07 && bel_ends {
                    self.state = State::Ground;
                }
            }
            State::StringEscape => {
                if c == '\\' {
                    self.state = State::Ground;
                } else {
                    // The string was cut short by a new escape sequence.
                    self.state = State::Escape;
                    self.seq.clear();
                    self.escape(c, out);
                }
            }
        }
    }

    fn abandon(&mut self) {
        if !matches!(
            self.state,
            State::String { .. } | State::StringEscape | State::CsiIgnore
        ) {
            self.dropped += 1;
        }
        self.state = State::Ground;
        self.seq.clear();
    }

    fn c1(&mut self, code: u8, out: &mut Vec<u8>) {
        if code == 0x9c {
            // ST: ends a string, otherwise ignored.
            if self.state != State::Ground {
                self.state = State::Ground;
                self.seq.clear();
            }
            return;
        }
        if matches!(self.state, State::String { .. } | State::StringEscape) {
            // Inside a swallowed string other C1 codes abort it like ESC would.
            self.state = State::Ground;
        } else if self.state != State::Ground {
            self.abandon();
        }
        self.state = State::Escape;
        self.seq.clear();
        // 0x80..0x9f corresponds to ESC 0x40..0x5f.
        self.escape(char::from(code - 0x40), out);
    }

    fn control(&mut self, b: u8, out: &mut Vec<u8>) {
        match b {
            // BS HT LF VT FF CR SO SI: drawing and charset shifts.
            0x08..=0x0f => out.push(b),
            // NUL is padding; BEL, ENQ (answerback) and the rest are not drawing.
            _ => self.dropped += 1,
        }
    }

    fn ground(&mut self, c: char, out: &mut Vec<u8>) {
        let cp = c as u32;
        if cp < 0x20 {
            self.control(cp as u8, out);
        } else if cp == 0x7f {
            self.dropped += 1;
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }

    fn escape(&mut self, c: char, out: &mut Vec<u8>) {
        let cp = c as u32;
        if cp < 0x20 {
            self.control(cp as u8, out);
            return;
        }
        match c {
            ' '..='/' => {
                self.seq.push(cp as u8);
                self.state = State::EscapeIntermediate;
            }
            '[' => {
                self.seq.clear();
                self.state = State::Csi;
            }
            ']' => self.state = State::String { bel_ends: true },
            'P' | 'X' | '^' | '_' => self.state = State::String { bel_ends: false },
            // DECSC DECRC, DECKPAM/DECKPNM are input modes (dropped), IND NEL HTS RI,
            // SS2 SS3, RIS, LS2 LS3 LS3R LS2R LS1R.
            '7' | '8' | 'D' | 'E' | 'H' | 'M' | 'N' | 'O' | 'c' | 'n' | 'o' | '|' | '}' | '~' => {
                if c == 'c' {
                    // RIS: a full reset leaves the alternate screen.
                    self.alt_screen = false;
                }
                out.extend_from_slice(&[0x1b, cp as u8]);
                self.state = State::Ground;
            }
            _ => {
                // DECID (a query), ST alone, memory lock, private and unknown finals.
                self.dropped += 1;
                self.state = State::Ground;
            }
        }
    }

    fn escape_intermediate(&mut self, c: char, out: &mut Vec<u8>) {
        let cp = c as u32;
        if cp < 0x20 {
            self.control(cp as u8, out);
            return;
        }
        if (0x20..0x30).contains(&cp) {
            if self.seq.len() < 4 {
                self.seq.push(cp as u8);
            } else {
                self.abandon();
            }
            return;
        }
        if !(0x30..0x7f).contains(&cp) {
            self.abandon();
            return;
        }
        let first = self.seq.first().copied().unwrap_or(0);
        // Charset designation ESC ( ) * + - . / <final>, and ESC # 3..8 line attributes.
        let allowed = match first {
            b'(' | b')' | b'*' | b'+' | b'-' | b'.' | b'/' => true,
            b'#' => self.seq.len() == 1 && matches!(c, '3' | '4' | '5' | '6' | '8'),
            // ESC % switches the terminal's character set (UTF-8 off): never.
            // ESC SP F/G (7/8-bit responses) and others are not drawing.
            _ => false,
        };
        if allowed {
            if first == b'#' && c != '8' {
                self.line_size = true;
            }
            out.push(0x1b);
            out.extend_from_slice(&self.seq);
            out.push(cp as u8);
        } else {
            self.dropped += 1;
        }
        self.seq.clear();
        self.state = State::Ground;
    }

    fn csi(&mut self, c: char, out: &mut Vec<u8>) {
        let cp = c as u32;
        if cp < 0x20 {
            // C0 controls inside a CSI are executed immediately by terminals.
            self.control(cp as u8, out);
            return;
        }
        if (0x20..0x40).contains(&cp) {
            if self.seq.len() >= MAX_CSI_LEN {
                self.dropped += 1;
                self.seq.clear();
                self.state = State::CsiIgnore;
            } else {
                self.seq.push(cp as u8);
            }
            return;
        }
        if cp == 0x7f {
            return;
        }
        if !(0x40..0x7f).contains(&cp) {
            self.abandon();
            return;
        }
        let seq = std::mem::take(&mut self.seq);
        self.state = State::Ground;
        let emit = Csi::parse(&seq, cp as u8).and_then(|csi| self.allow_csi(&csi));
        match emit {
            Some(bytes) => out.extend_from_slice(&bytes),
            None => self.dropped += 1,
        }
        // Keep the allocation for the next sequence.
        self.seq = seq;
        self.seq.clear();
    }

    /// Returns the bytes to emit for an allowed CSI, or `None` to drop it.
    fn allow_csi(&mut self, csi: &Csi<'_>) -> Option<Vec<u8>> {
        let ok = match (csi.prefix, csi.intermediates, csi.final_byte) {
            // Cursor movement, erase, insert/delete, scroll, tabs, repeat.
            (
                None,
                b"",
                b'@' | b'A'..=b'H' | b'I' | b'J' | b'K' | b'L' | b'M' | b'P' | b'X' | b'Z',
            ) => true,
            (None, b"", b'`' | b'a' | b'b' | b'd' | b'e' | b'f' | b'g') => true,
            // SU/SD with one parameter (five is xterm's mouse highlight tracking).
            (None, b"", b'S' | b'T') => csi.params.split(|&p| p == b';').count() <= 1,
            // Selective erase.
            (Some(b'?'), b"", b'J' | b'K') => true,
            // SGR.
            (None, b"", b'm') => true,
            // Scroll margins (top/bottom; left/right via DECSLRM `s` with parameters) and
            // SCOSC/SCORC without parameters.
            (None, b"", b'r' | b's') => true,
            (None, b"", b'u') => csi.params.is_empty(),
            // DECSCUSR cursor style, DECSTR soft reset, DECSCA protection attribute.
            (None, b" ", b'q') => {
                self.cursor_style = true;
                true
            }
            (None, b"\"", b'q') => {
                self.protected = true;
                true
            }
            (None, b"!", b'p') => true,
            (_, b"", b'h' | b'l') => return self.filter_modes(csi),
            _ => false,
        };
        ok.then(|| csi.to_bytes(csi.params))
    }

    /// Keeps only the modes of an SM/RM (or DECSET/DECRST) that change drawing.
    fn filter_modes(&mut self, csi: &Csi<'_>) -> Option<Vec<u8>> {
        let set = csi.final_byte == b'h';
        let mut kept: Vec<&[u8]> = Vec::new();
        for param in csi.params.split(|&p| p == b';') {
            let Some(mode) = parse_num(param) else {
                continue;
            };
            let allowed = match csi.prefix {
                // IRM insert mode, LNM new line mode.
                None => matches!(mode, 4 | 20),
                // DECSCNM reverse video, DECOM origin, DECAWM wrap, cursor blink, DECTCEM,
                // alternate screens and cursor save, DECLRMM margins, synchronized output.
                Some(b'?') => {
                    let ok = matches!(
                        mode,
                        5 | 6 | 7 | 12 | 25 | 47 | 69 | 1047 | 1048 | 1049 | 2026
                    );
                    if ok && matches!(mode, 47 | 1047 | 1049) {
                        self.alt_screen = set;
                    }
                    if mode == 12 {
                        self.cursor_blink = true;
                    }
                    ok
                }
                _ => false,
            };
            if allowed {
                kept.push(param);
            }
        }
        if kept.is_empty() {
            return None;
        }
        let params = kept.join(&b';');
        Some(csi.to_bytes(&params))
    }
}

impl Default for Sanitizer {
    fn default() -> Self {
        Self::new()
    }
}

struct Csi<'a> {
    prefix: Option<u8>,
    params: &'a [u8],
    intermediates: &'a [u8],
    final_byte: u8,
}

impl<'a> Csi<'a> {
    /// Splits `< = > ?` prefix, parameter bytes `0-9 : ;` and intermediates `SP..'/'`.
    /// Returns `None` for malformed orderings (terminals ignore those too).
    fn parse(seq: &'a [u8], final_byte: u8) -> Option<Self> {
        let (prefix, rest) = match seq.first() {
            Some(&p @ (b'<' | b'=' | b'>' | b'?')) => (Some(p), &seq[1..]),
            _ => (None, seq),
        };
        let param_len = rest
            .iter()
            .take_while(|&&b| b.is_ascii_digit() || b == b';' || b == b':')
            .count();
        let (params, intermediates) = rest.split_at(param_len);
        if !intermediates.iter().all(|&b| (0x20..0x30).contains(&b)) {
            return None;
        }
        Some(Csi {
            prefix,
            params,
            intermediates,
            final_byte,
        })
    }

    fn to_bytes(&self, params: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(params.len() + 6);
        v.extend_from_slice(b"\x1b[");
        if let Some(p) = self.prefix {
            v.push(p);
        }
        v.extend_from_slice(params);
        v.extend_from_slice(self.intermediates);
        v.push(self.final_byte);
        v
    }
}

fn parse_num(param: &[u8]) -> Option<u32> {
    if param.is_empty() || param.len() > 6 || !param.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(param).ok()?.parse().ok()
}

/// Filters a whole buffer in one go.
pub fn sanitize(input: &[u8]) -> Vec<u8> {
    let mut s = Sanitizer::new();
    let mut out = s.filter(input);
    s.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(input: &[u8]) -> Vec<u8> {
        sanitize(input)
    }

    /// Every split point of the input must give the same output as the whole.
    fn same_in_every_split(input: &[u8]) {
        let whole = s(input);
        for cut in 0..=input.len() {
            let mut f = Sanitizer::new();
            let mut out = Vec::new();
            f.push(&input[..cut], &mut out);
            f.push(&input[cut..], &mut out);
            f.finish(&mut out);
            assert_eq!(
                out,
                whole,
                "split at {cut} of {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    /// Every mode the filter lets through has its reset in the restore sequence.
    #[test]
    fn restore_resets_every_mode_that_passes() {
        let mut f = Sanitizer::new();
        let plain = f.restore_sequence();
        for (set, reset) in [
            (&b"\x1b[4h"[..], &b"\x1b[4l"[..]),
            (b"\x1b[20h", b"\x1b[20l"),
            (b"\x1b[?5h", b"\x1b[?5l"),
            (b"\x1b[?6h", b"\x1b[?6l"),
            (b"\x1b[?7l", b"\x1b[?7h"),
            (b"\x1b[?25l", b"\x1b[?25h"),
            (b"\x1b[?69h", b"\x1b[?69l"),
            (b"\x1b[?2026h", b"\x1b[?2026l"),
            (b"\x1b[1;4;5;7;8;31;42m", b"\x1b[0m"),
            (b"\x1b[5;10r", b"\x1b7\x1b[r\x1b8"),
            (b"\x1b(0", b"\x1b(B"),
            (b"\x1b)0", b"\x1b)B"),
            (b"\x1b*0", b"\x1b*B"),
            (b"\x1b+0", b"\x1b+B"),
            (b"\x0e", b"\x0f"),
            (b"\x1bn", b"\x0f"),
        ] {
            assert_eq!(f.filter(set), set, "{set:?} passes");
            assert!(
                plain.windows(reset.len()).any(|w| w == reset),
                "{set:?}: no {reset:?} in {plain:?}"
            );
        }
        // Resets only some terminals know come only when the replay used them.
        for (set, reset) in [
            (&b"\x1b[?1049h"[..], &b"\x1b[?1049l"[..]),
            (b"\x1b[3 q", b"\x1b[0 q"),
            (b"\x1b[?12h", b"\x1b[?12l"),
            (b"\x1b[1\"q", b"\x1b[0\"q"),
            (b"\x1b#6", b"\x1b#5"),
        ] {
            let mut f = Sanitizer::new();
            assert!(!f
                .restore_sequence()
                .windows(reset.len())
                .any(|w| w == reset));
            assert_eq!(f.filter(set), set);
            let after = f.restore_sequence();
            assert!(after.windows(reset.len()).any(|w| w == reset), "{set:?}");
        }
        // A full reset leaves the alternate screen; `--raw` replays are tracked too.
        let mut f = Sanitizer::new();
        f.filter(b"\x1b[?1049h\x1bc");
        assert!(!f.restore_sequence().windows(8).any(|w| w == b"\x1b[?1049l"));
        let mut raw = Sanitizer::with_raw(true);
        assert_eq!(
            raw.filter(b"\x1b[?1049h\x1b[?1000h"),
            b"\x1b[?1049h\x1b[?1000h"
        );
        let restore = raw.restore_sequence();
        assert!(restore.windows(8).any(|w| w == b"\x1b[?1049l"));
        assert!(restore.windows(8).any(|w| w == b"\x1b[?1000l"));
        assert!(restore.windows(8).any(|w| w == b"\x1b[?2004l"));
        assert!(plain.ends_with(b"\r\n"));
    }

    #[test]
    fn text_and_drawing_controls_pass() {
        assert_eq!(s(b"hello\r\nworld\tx\x08y"), b"hello\r\nworld\tx\x08y");
        assert_eq!(s("grüße €😀".as_bytes()), "grüße €😀".as_bytes());
        assert_eq!(s(b"\x0e\x0f"), b"\x0e\x0f");
    }

    #[test]
    fn sgr_cursor_and_erase_pass() {
        for seq in [
            &b"\x1b[1;31m"[..],
            b"\x1b[38:2::10:20:30m",
            b"\x1b[0m",
            b"\x1b[H",
            b"\x1b[12;40H",
            b"\x1b[2J",
            b"\x1b[K",
            b"\x1b[3A",
            b"\x1b[5;20r",
            b"\x1b[?25l",
            b"\x1b[?1049h",
            b"\x1b[2 q",
            b"\x1b[!p",
            b"\x1b[4h",
            b"\x1b[?2J",
            b"\x1b7",
            b"\x1b8",
            b"\x1bM",
            b"\x1b(0",
            b"\x1b(B",
            b"\x1b#8",
            b"\x1bc",
        ] {
            assert_eq!(s(seq), seq, "{:?}", String::from_utf8_lossy(seq));
        }
    }

    #[test]
    fn clipboard_hyperlinks_and_titles_are_dropped() {
        assert_eq!(s(b"a\x1b]52;c;ZXZpbA==\x07b"), b"ab");
        assert_eq!(s(b"a\x1b]52;c;ZXZpbA==\x1b\\b"), b"ab");
        assert_eq!(
            s(b"\x1b]8;;http://evil/\x1b\\click\x1b]8;;\x1b\\"),
            b"click"
        );
        assert_eq!(s(b"\x1b]0;root@prod\x07$ "), b"$ ");
        assert_eq!(s(b"\x1b]11;?\x07x"), b"x");
    }

    #[test]
    fn device_strings_are_dropped() {
        assert_eq!(s(b"a\x1bP$qm\x1b\\b"), b"ab"); // DECRQSS
        assert_eq!(s(b"a\x1bP+q544e\x1b\\b"), b"ab"); // XTGETTCAP
        assert_eq!(s(b"a\x1b_Gf=100;AAAA\x1b\\b"), b"ab"); // APC (kitty graphics)
        assert_eq!(s(b"a\x1b^privacy\x1b\\b"), b"ab"); // PM
        assert_eq!(s(b"a\x1bXsos\x1b\\b"), b"ab"); // SOS
                                                   // BEL does not end a DCS: the text after it stays swallowed until ST.
        assert_eq!(s(b"\x1bPq#0\x07still\x1b\\x"), b"x");
    }

    #[test]
    fn queries_and_reports_are_dropped() {
        for seq in [
            &b"\x1b[c"[..],
            b"\x1b[>c",
            b"\x1b[=c",
            b"\x1b[5n",
            b"\x1b[6n",
            b"\x1b[?6n",
            b"\x1b[14t",
            b"\x1b[21t",
            b"\x1b[8;100;300t",
            b"\x1b[?2026$p",
            b"\x1b[x",
            b"\x1bZ",
            b"\x05",
            b"\x07",
            b"\x1b[?u",
            b"\x1b[>1u",
            b"\x1b[>4;1m",
            b"\x1b%G",
            b"\x1b[2h", // keyboard lock
            b"\x1b[?1000h",
            b"\x1b[?2004h",
            b"\x1b[?1004h",
            b"\x1b[?3h", // 132 columns resizes the window
            b"\x1b[1;2;3;4;5T",
        ] {
            assert_eq!(s(seq), b"", "{:?}", String::from_utf8_lossy(seq));
        }
    }

    #[test]
    fn modes_are_filtered_per_parameter() {
        assert_eq!(s(b"\x1b[?1000;25;1006h"), b"\x1b[?25h");
        assert_eq!(s(b"\x1b[?1;1049h"), b"\x1b[?1049h");
    }

    #[test]
    fn c1_controls_act_like_escapes() {
        // U+009B is CSI, U+009D OSC, U+009C ST.
        assert_eq!(s("a\u{9b}6nb".as_bytes()), b"ab");
        assert_eq!(s("a\u{9d}52;c;eA==\u{9c}b".as_bytes()), b"ab");
        assert_eq!(s("\u{9b}1mX".as_bytes()), b"\x1b[1mX");
        // Raw 8-bit C1 bytes are invalid UTF-8: shown as U+FFFD, never as controls.
        assert_eq!(s(b"a\x9b6nb"), "a\u{fffd}6nb".as_bytes());
    }

    #[test]
    fn output_is_always_valid_utf8() {
        let out = s(b"\xff\xfe ok \xe2\x82 \xc3");
        assert!(std::str::from_utf8(&out).is_ok());
        assert_eq!(out, "\u{fffd}\u{fffd} ok \u{fffd} \u{fffd}".as_bytes());
    }

    #[test]
    fn state_carries_across_chunks() {
        same_in_every_split(b"x\x1b]52;c;ZXZpbA==\x07y\x1b[1;31mz\x1b[6n\x1bP$q\"p\x1b\\w");
        same_in_every_split("é\u{9b}6n€".as_bytes());
        same_in_every_split(b"\x1b[?1000;25h\x1b(0q\x1b(B");
    }

    #[test]
    fn cancel_and_new_escape_abort_sequences() {
        assert_eq!(s(b"\x1b[12\x18A"), b"A");
        // An ESC inside an OSC that is not ST starts a new sequence.
        assert_eq!(s(b"\x1b]0;t\x1b[1mB"), b"\x1b[1mB");
        // Controls inside a CSI are executed.
        assert_eq!(s(b"\x1b[2\nA"), b"\n\x1b[2A");
    }

    #[test]
    fn overlong_csi_is_dropped() {
        let mut seq = b"\x1b[".to_vec();
        seq.extend(std::iter::repeat_n(b'1', 1000));
        seq.extend_from_slice(b"mZ");
        assert_eq!(s(&seq), b"Z");
    }

    #[test]
    fn raw_passes_everything() {
        let mut f = Sanitizer::with_raw(true);
        assert_eq!(f.filter(b"\x1b]52;c;eA==\x07"), b"\x1b]52;c;eA==\x07");
    }

    #[test]
    fn output_never_contains_a_dropped_introducer() {
        // A small deterministic fuzz: whatever the input, the output holds no OSC/DCS/APC/PM/SOS
        // introducer and no query finals.
        let mut x: u32 = 12345;
        let alphabet = b"\x1b[]P_^X\\;0123456789?>=c6nt\x07\x9b\x9d\xc2 m";
        for _ in 0..2000 {
            let mut input = Vec::new();
            for _ in 0..40 {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                input.push(alphabet[(x >> 16) as usize % alphabet.len()]);
            }
            let out = s(&input);
            assert!(std::str::from_utf8(&out).is_ok());
            for w in out.windows(2) {
                assert!(
                    !(w[0] == 0x1b && matches!(w[1], b']' | b'P' | b'_' | b'^' | b'X')),
                    "{:?} -> {:?}",
                    input,
                    out
                );
            }
            assert!(!out.contains(&0x07) && !out.contains(&0x05));
            assert!(!String::from_utf8_lossy(&out)
                .chars()
                .any(|c| ('\u{80}'..'\u{a0}').contains(&c)));
            // Every ESC [ sequence left ends in an allowed final.
            let mut i = 0;
            while i + 1 < out.len() {
                if out[i] == 0x1b && out[i + 1] == b'[' {
                    let end = out[i + 2..]
                        .iter()
                        .position(|b| (0x40..0x7f).contains(b))
                        .unwrap()
                        + i
                        + 2;
                    assert!(
                        !matches!(out[end], b'c' | b'n' | b't'),
                        "{:?}",
                        String::from_utf8_lossy(&out)
                    );
                    i = end;
                }
                i += 1;
            }
        }
    }
}
