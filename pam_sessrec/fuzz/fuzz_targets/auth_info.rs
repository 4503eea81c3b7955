//! Arbitrary bytes as an SSH_AUTH_INFO_0 value: must return, never panic.
#![no_main]

#[allow(dead_code)]
#[path = "../../src/sshkey.rs"]
mod sshkey;
#[allow(dead_code)]
#[path = "../../src/authinfo.rs"]
mod authinfo;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(methods) = authinfo::parse(data) {
        assert!(methods.len() <= authinfo::MAX_METHODS);
        for m in methods {
            if let Some(cert) = m.key.and_then(|k| k.certificate) {
                assert!(cert.principals.len() <= sshkey::MAX_PRINCIPALS);
            }
        }
    }
});
