//! log.json and the legacy log: any bytes give a value or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sudo_iolog_import::iolog::meta::{parse_legacy_log, parse_log_json};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = parse_log_json(data) {
        assert!(m.start.nanoseconds < 1_000_000_000);
        let _ = m.env_var("SESSREC_SESSION");
    }
    if let Ok(m) = parse_legacy_log(data) {
        assert!(!m.command.is_empty());
        assert_eq!(m.start.nanoseconds, 0);
    }
});
