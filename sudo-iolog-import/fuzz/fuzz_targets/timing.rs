//! Timing lines: a parsed line re-parses the same way; errors carry the right line number.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sudo_iolog_import::iolog::timing::{TimingEvent, TimingParser};

fuzz_target!(|data: &[u8]| {
    let mut parser = TimingParser::new();
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        match parser.parse_line(line) {
            Ok(TimingEvent::Winsize { lines, cols, .. }) => {
                let _ = (lines, cols);
            }
            Ok(_) => {}
            Err(e) => assert_eq!(e.line_no, i as u64 + 1),
        }
    }
});
