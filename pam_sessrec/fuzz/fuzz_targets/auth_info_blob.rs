//! Arbitrary bytes as the key blob of a `publickey` line: exercises the line parser, base64
//! decoding and the blob parser together, with mutations landing in the decoded blob.
#![no_main]

use base64::Engine;

#[allow(dead_code)]
#[path = "../../src/sshkey.rs"]
mod sshkey;
#[allow(dead_code)]
#[path = "../../src/authinfo.rs"]
mod authinfo;

const TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, blob)) = data.split_first() else {
        return;
    };
    let key_type = TYPES[selector as usize % TYPES.len()];
    let line = format!(
        "publickey {key_type} {}\npassword\n",
        base64::engine::general_purpose::STANDARD.encode(blob)
    );
    if let Ok(methods) = authinfo::parse(line.as_bytes()) {
        assert_eq!(methods.len(), 2);
        let key = methods[0].key.as_ref().expect("a parsed publickey line has a key");
        assert_eq!(key.key_type, key_type);
    }
});
