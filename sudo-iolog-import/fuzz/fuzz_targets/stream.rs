//! Stream files: plain data comes back unchanged; gzip data decodes, is cut short, or is an
//! error — never a panic or a hang.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use sudo_iolog_import::iolog::StreamReader;

fuzz_target!(|data: &[u8]| {
    let mut reader = StreamReader::new(data).expect("reading a slice cannot fail");
    let mut out = Vec::new();
    let result = reader.by_ref().take(16 << 20).read_to_end(&mut out);
    if !reader.compressed() {
        assert_eq!(result.unwrap(), data.len());
        assert_eq!(out, data);
        assert!(!reader.truncated());
    }
});
