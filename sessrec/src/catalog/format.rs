//! The bytes of a catalog file. A view over 100,000 sessions reads 100 of these files (or one
//! per day), so the form is made for reading fast: fixed-width little-endian numbers and
//! length-prefixed strings, one record per session sorted by directory name, each record's
//! length in front so that a reader finds the records it needs without decoding the others
//! and a writer copies unchanged records as they are.
//!
//! ```text
//! file    = MAGIC  version:str  count:u32  record*count  END
//! record  = length:u32  name:str  identity  summary  problems
//! str     = length:u32  UTF-8 bytes
//! ```
//!
//! The file is trusted only as far as `catalog` says (owner, mode, program version); its
//! bytes are still read defensively: every length is checked against what is left, and any
//! malformed record makes the whole file unusable (the views then read the sessions afresh).
#![forbid(unsafe_code)]

use std::ops::Range;

/// The start of every catalog file: what it is and the form's revision.
const MAGIC: &[u8; 16] = b"sessrec-catalog2";
/// The end of every catalog file: a cut-short file is never taken for a short one.
const END: &[u8; 4] = b"end\n";

/// A reader of the bytes of a record, failing (None) at the first byte that is not there.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    pub(super) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    pub(super) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    pub(super) fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    pub(super) fn keys<const N: usize>(&mut self) -> Option<[i64; N]> {
        let mut k = [0i64; N];
        for v in &mut k {
            *v = self.i64()?;
        }
        Some(k)
    }

    pub(super) fn str(&mut self) -> Option<&'a str> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }

    pub(super) fn string(&mut self) -> Option<String> {
        self.str().map(str::to_string)
    }

    /// A count of items that each take at least `min` bytes (so a bad count cannot ask for
    /// more memory than the file has bytes).
    pub(super) fn count(&mut self, min: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n.saturating_mul(min) <= self.bytes.len()).then_some(n)
    }

    pub(super) fn opt_i64(&mut self) -> Option<Option<i64>> {
        match self.u8()? {
            0 => Some(None),
            1 => self.i64().map(Some),
            _ => None,
        }
    }

    pub(super) fn opt_u64(&mut self) -> Option<Option<u64>> {
        match self.u8()? {
            0 => Some(None),
            1 => self.u64().map(Some),
            _ => None,
        }
    }

    pub(super) fn opt_string(&mut self) -> Option<Option<String>> {
        match self.u8()? {
            0 => Some(None),
            1 => self.string().map(Some),
            _ => None,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// A writer of the same forms.
#[derive(Default)]
pub(super) struct Writer {
    pub(super) bytes: Vec<u8>,
}

impl Writer {
    pub(super) fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }

    pub(super) fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    pub(super) fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    pub(super) fn i64(&mut self, v: i64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    pub(super) fn keys(&mut self, k: &[i64]) {
        for &v in k {
            self.i64(v);
        }
    }

    /// A string; `None` when it is too long for the form (the session is then not kept).
    pub(super) fn str(&mut self, s: &str) -> Option<()> {
        self.u32(u32::try_from(s.len()).ok()?);
        self.bytes.extend_from_slice(s.as_bytes());
        Some(())
    }

    pub(super) fn count(&mut self, n: usize) -> Option<()> {
        self.u32(u32::try_from(n).ok()?);
        Some(())
    }

    pub(super) fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                self.i64(v);
            }
        }
    }

    pub(super) fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                self.u64(v);
            }
        }
    }

    pub(super) fn opt_str(&mut self, v: Option<&str>) -> Option<()> {
        match v {
            None => {
                self.u8(0);
                Some(())
            }
            Some(s) => {
                self.u8(1);
                self.str(s)
            }
        }
    }
}

/// A record: its session directory's name and the record's bytes (after its length).
pub(super) struct Record<'a> {
    pub(super) name: &'a str,
    /// The rest of the record after the name.
    pub(super) body: &'a [u8],
    /// The whole record with its length, for copying it unchanged.
    pub(super) raw: &'a [u8],
}

/// A catalog file read into memory, its records indexed by name.
pub(super) struct CatalogFile {
    bytes: Vec<u8>,
    /// (name, body, raw) ranges of each record, sorted by name, names unique.
    records: Vec<(Range<usize>, Range<usize>, Range<usize>)>,
}

impl CatalogFile {
    /// The records of `bytes` when it is a whole catalog file written by `version`.
    pub(super) fn parse(bytes: Vec<u8>, version: &str) -> Option<CatalogFile> {
        let mut records = Vec::new();
        {
            let all = &bytes[..];
            let mut r = Reader::new(all);
            if r.take(MAGIC.len())? != MAGIC || r.str()? != version {
                return None;
            }
            let count = r.count(8)?;
            records.reserve(count);
            for _ in 0..count {
                let start = all.len() - r.bytes.len();
                let len = r.u32()? as usize;
                let record = r.take(len)?;
                let mut body = Reader::new(record);
                let name = body.str()?;
                let name_start = start + 4 + 4;
                let body_start = name_start + name.len();
                records.push((
                    name_start..body_start,
                    body_start..start + 4 + len,
                    start..start + 4 + len,
                ));
            }
            if r.take(END.len())? != END || !r.is_empty() {
                return None;
            }
            // Written sorted; a file that is not is not this program's.
            let sorted = records
                .windows(2)
                .all(|w| all[w[0].0.clone()] < all[w[1].0.clone()]);
            if !sorted {
                return None;
            }
        }
        Some(CatalogFile { bytes, records })
    }

    pub(super) fn len(&self) -> usize {
        self.records.len()
    }

    pub(super) fn find(&self, name: &str) -> Option<usize> {
        self.records
            .binary_search_by(|(n, _, _)| self.bytes[n.clone()].cmp(name.as_bytes()))
            .ok()
    }

    pub(super) fn record(&self, i: usize) -> Record<'_> {
        let (n, b, raw) = &self.records[i];
        Record {
            // Checked as UTF-8 by `parse`.
            name: std::str::from_utf8(&self.bytes[n.clone()]).unwrap_or_default(),
            body: &self.bytes[b.clone()],
            raw: &self.bytes[raw.clone()],
        }
    }
}

/// One record's bytes (with its length in front) from the name and the body written by `fill`.
pub(super) fn record(name: &str, fill: impl FnOnce(&mut Writer) -> Option<()>) -> Option<Vec<u8>> {
    let mut w = Writer::default();
    w.u32(0);
    w.str(name)?;
    fill(&mut w)?;
    let len = u32::try_from(w.bytes.len() - 4).ok()?;
    w.bytes[..4].copy_from_slice(&len.to_le_bytes());
    Some(w.bytes)
}

/// A whole catalog file of `records` (each as [`record`] made it), which must be sorted by name.
pub(super) fn file(version: &str, records: &[&[u8]]) -> Option<Vec<u8>> {
    let mut w = Writer::default();
    w.bytes
        .reserve(records.iter().map(|r| r.len()).sum::<usize>() + 64);
    w.bytes.extend_from_slice(MAGIC);
    w.str(version)?;
    w.count(records.len())?;
    for r in records {
        w.bytes.extend_from_slice(r);
    }
    w.bytes.extend_from_slice(END);
    Some(w.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let a = record("a", |w| {
            w.i64(-5);
            w.opt_str(Some("é"))
        })
        .unwrap();
        let b = record("b", |w| w.str("x")).unwrap();
        file("1.0", &[&a, &b]).unwrap()
    }

    #[test]
    fn records_are_found_by_name_and_read_back() {
        let f = CatalogFile::parse(sample(), "1.0").unwrap();
        assert_eq!(f.len(), 2);
        let rec = f.record(f.find("a").unwrap());
        assert_eq!(rec.name, "a");
        let mut r = Reader::new(rec.body);
        assert_eq!(r.i64(), Some(-5));
        assert_eq!(r.opt_string(), Some(Some("é".to_string())));
        assert!(r.is_empty());
        assert!(f.find("c").is_none());
        // Copied unchanged, a record makes the same file.
        let raw: Vec<Vec<u8>> = (0..2).map(|i| f.record(i).raw.to_vec()).collect();
        let refs: Vec<&[u8]> = raw.iter().map(Vec::as_slice).collect();
        assert_eq!(file("1.0", &refs).unwrap(), sample());
    }

    #[test]
    fn damaged_or_foreign_files_are_refused() {
        let good = sample();
        assert!(
            CatalogFile::parse(good.clone(), "1.1").is_none(),
            "another version"
        );
        for cut in 0..good.len() {
            assert!(
                CatalogFile::parse(good[..cut].to_vec(), "1.0").is_none(),
                "cut at {cut}"
            );
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(CatalogFile::parse(longer, "1.0").is_none());
        // Records out of order.
        let a = record("a", |_| Some(())).unwrap();
        let b = record("b", |_| Some(())).unwrap();
        assert!(CatalogFile::parse(file("1.0", &[&b, &a]).unwrap(), "1.0").is_none());
        assert!(CatalogFile::parse(file("1.0", &[&a, &a]).unwrap(), "1.0").is_none());
        // A count larger than the bytes can hold asks for no memory.
        let mut huge = Vec::from(&MAGIC[..]);
        huge.extend_from_slice(&3u32.to_le_bytes());
        huge.extend_from_slice(b"1.0");
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(CatalogFile::parse(huge, "1.0").is_none());
    }
}
