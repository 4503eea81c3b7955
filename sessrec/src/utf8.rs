//! Streaming UTF-8 decoding for formats that carry text only (asciicast, HTML): a character
//! split across chunks is joined, invalid bytes become U+FFFD and are counted.
#![forbid(unsafe_code)]

#[derive(Debug, Default)]
pub struct Utf8Decoder {
    carry: Vec<u8>,
    invalid: u64,
}

impl Utf8Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes replaced so far.
    pub fn invalid_bytes(&self) -> u64 {
        self.invalid
    }

    /// Decodes a chunk; an incomplete character at its end waits for the next chunk.
    pub fn push(&mut self, data: &[u8]) -> String {
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(data);
        let mut out = String::with_capacity(buf.len());
        let mut rest = &buf[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{fffd}');
                            self.invalid += n as u64;
                            rest = &bad[n..];
                        }
                        None => {
                            self.carry = bad.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        out
    }

    /// Ends the stream: a dangling partial character is invalid.
    pub fn finish(&mut self) -> String {
        if self.carry.is_empty() {
            return String::new();
        }
        self.invalid += self.carry.len() as u64;
        self.carry.clear();
        "\u{fffd}".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_split_characters_and_counts_invalid() {
        let mut d = Utf8Decoder::new();
        let e = "€".as_bytes();
        assert_eq!(d.push(&e[..1]), "");
        assert_eq!(d.push(&e[1..]), "€");
        assert_eq!(d.push(b"a\xffb\xc3"), "a\u{fffd}b");
        assert_eq!(d.finish(), "\u{fffd}");
        assert_eq!(d.invalid_bytes(), 2);
    }
}
