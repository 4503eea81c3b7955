//! Arbitrary bytes as a decoded key or certificate blob: must return, never panic.
#![no_main]

#[allow(dead_code)]
#[path = "../../src/sshkey.rs"]
mod sshkey;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(key) = sshkey::parse_blob(data, None) {
        assert!(key.fingerprint.starts_with("SHA256:"));
        if let Some(cert) = key.certificate {
            assert!(cert.principals.len() <= sshkey::MAX_PRINCIPALS);
            assert!(cert.key_id.len() <= sshkey::MAX_FIELD_BYTES);
        }
    }
});
