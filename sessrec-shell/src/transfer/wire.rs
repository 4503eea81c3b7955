//! Big-endian field reader for SSH-style binary packets (SFTP), never panicking.
#![forbid(unsafe_code)]

/// Reads fields front to back; every getter returns `None` once the data runs out.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.data.len() < n {
            return None;
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Some(head)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        let b = self.bytes(4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_be_bytes(a))
    }

    /// An SSH `string`: a u32 length followed by that many bytes.
    pub(crate) fn string(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        self.bytes(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_stops_at_the_end() {
        let data = [0, 0, 0, 2, b'h', b'i', 7, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9];
        let mut r = Reader::new(&data);
        assert_eq!(r.string(), Some(&b"hi"[..]));
        assert_eq!(r.u8(), Some(7));
        assert_eq!(r.u64(), Some(256));
        assert_eq!(r.remaining(), 3);
        assert_eq!(r.u32(), None);
    }

    #[test]
    fn oversized_string_length_is_none_not_a_panic() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1, 2]);
        assert_eq!(r.string(), None);
    }
}
