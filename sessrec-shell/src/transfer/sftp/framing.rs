//! Splits one direction's byte stream into SFTP packets, keeping only the bytes worth
//! parsing: WRITE and DATA payloads are skipped by length, never buffered.
#![forbid(unsafe_code)]

use super::codes::packet;

/// OpenSSH's SFTP_MAX_MSG_LENGTH: neither its server nor its client accepts a longer packet.
pub const MAX_PACKET_BYTES: usize = 256 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Client,
    Server,
}

/// Called with each packet's kept prefix and its full length; an error stops decoding.
pub(super) type OnPacket<'a> = dyn FnMut(&[u8], usize) -> Result<(), String> + 'a;

/// Splits one direction's stream into packets, keeping only the bytes worth parsing.
pub(super) struct Framer {
    side: Side,
    header: [u8; 4],
    header_len: usize,
    in_body: bool,
    body_len: usize,
    seen: usize,
    keep: Vec<u8>,
    want: usize,
    /// In a run of DATA replies that began with a large one: the next is likely one too.
    bulk: bool,
}

/// What a DATA reply's kept prefix holds: type, id, payload length.
pub(super) const DATA_PREFIX: usize = 9;
/// DATA replies at least this long make the stream worth reading header by header.
pub(super) const BULK_PACKET_BYTES: usize = 4096;

impl Framer {
    pub(super) fn new(side: Side) -> Self {
        Framer {
            side,
            header: [0; 4],
            header_len: 0,
            in_body: false,
            body_len: 0,
            seen: 0,
            keep: Vec::new(),
            want: 0,
            bulk: false,
        }
    }

    /// Bytes of the current packet that will not be looked at (a payload being skipped).
    pub(super) fn skippable(&self) -> usize {
        if self.in_body && self.keep.len() >= self.want {
            self.body_len - self.seen
        } else {
            0
        }
    }

    /// During a run of large DATA replies: how many bytes to read so that a read ends with the
    /// next reply's kept prefix and leaves its payload to be skipped.
    pub(super) fn read_limit(&self) -> Option<usize> {
        if !self.bulk {
            return None;
        }
        if !self.in_body {
            return Some(4 - self.header_len + DATA_PREFIX);
        }
        let skippable = self.skippable();
        if skippable > 0 {
            // The rest of this payload, then the next reply's length and prefix.
            return Some(skippable + 4 + DATA_PREFIX);
        }
        match self.keep.first() {
            None => Some(DATA_PREFIX),
            Some(&packet::DATA) if self.keep.len() < DATA_PREFIX => {
                Some(DATA_PREFIX - self.keep.len())
            }
            _ => None,
        }
    }

    /// `n` (at most [`Framer::skippable`]) bytes went by unseen.
    pub(super) fn skip(&mut self, n: usize, on_packet: &mut OnPacket<'_>) -> Result<(), String> {
        let n = n.min(self.skippable());
        self.seen += n;
        if self.in_body && self.seen == self.body_len {
            return self.complete(on_packet);
        }
        Ok(())
    }

    fn complete(&mut self, on_packet: &mut OnPacket<'_>) -> Result<(), String> {
        self.in_body = false;
        // A short reply (a file's last bytes) does not end a run of DATA replies; anything
        // else does.
        self.bulk = self.keep.first() == Some(&packet::DATA)
            && (self.bulk || self.body_len >= BULK_PACKET_BYTES);
        let result = on_packet(&self.keep, self.body_len);
        self.keep.clear();
        if self.keep.capacity() > 64 * 1024 {
            self.keep.shrink_to(4096);
        }
        result
    }

    /// How much of the packet to keep: the header fields of WRITE and DATA, all of the rest.
    fn retain(&self) -> usize {
        let keep = &self.keep;
        let want = match (self.side, keep.first().copied()) {
            (Side::Client, Some(packet::WRITE)) if keep.len() < 9 => 9,
            (Side::Client, Some(packet::WRITE)) => {
                let handle_len = u32::from_be_bytes([keep[5], keep[6], keep[7], keep[8]]) as usize;
                9usize.saturating_add(handle_len).saturating_add(12)
            }
            (Side::Server, Some(packet::DATA)) => DATA_PREFIX,
            _ => self.body_len,
        };
        want.min(self.body_len)
    }

    pub(super) fn feed(
        &mut self,
        mut data: &[u8],
        on_packet: &mut OnPacket<'_>,
    ) -> Result<(), String> {
        while !data.is_empty() {
            if !self.in_body {
                let n = (4 - self.header_len).min(data.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
                self.header_len += n;
                data = &data[n..];
                if self.header_len == 4 {
                    self.header_len = 0;
                    self.body_len = u32::from_be_bytes(self.header) as usize;
                    if self.body_len == 0 {
                        return Err("empty packet".into());
                    }
                    if self.body_len > MAX_PACKET_BYTES {
                        return Err(format!(
                            "packet of {} bytes exceeds the SFTP limit",
                            self.body_len
                        ));
                    }
                    self.in_body = true;
                    self.seen = 0;
                    self.keep.clear();
                    self.want = 1;
                }
                continue;
            }
            if self.keep.len() < self.want {
                let n = (self.want - self.keep.len()).min(data.len());
                self.keep.extend_from_slice(&data[..n]);
                self.seen += n;
                data = &data[n..];
                if self.keep.len() == self.want {
                    self.want = self.retain().max(self.want);
                }
            } else {
                let n = (self.body_len - self.seen).min(data.len());
                self.seen += n;
                data = &data[n..];
            }
            if self.seen == self.body_len {
                self.complete(on_packet)?;
            }
        }
        Ok(())
    }

    #[cfg(test)]
    pub(super) fn buffered_bytes(&self) -> usize {
        self.keep.capacity()
    }
}
