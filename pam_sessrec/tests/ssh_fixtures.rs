//! The key and certificate parser against real keys and certificates made by ssh-keygen
//! (see fixtures/generate.sh); expected values are ssh-keygen's own output.

use std::path::PathBuf;

use pam_sessrec::authinfo;
use pam_sessrec::sshkey::{self, CertType};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Expected {
    file: String,
    blob_type: String,
    bits: u32,
    fingerprint: String,
    key_id: String,
    serial: String,
    principals: String,
    ca_fingerprint: String,
    valid_after: String,
    valid_before: String,
    options: String,
}

fn expected() -> Vec<Expected> {
    let text = std::fs::read_to_string(fixtures().join("expected.tsv")).unwrap();
    text.lines()
        .map(|line| {
            let c: Vec<&str> = line.split('\t').collect();
            assert_eq!(c.len(), 11, "bad manifest line {line:?}");
            Expected {
                file: c[0].into(),
                blob_type: c[1].into(),
                bits: c[2].parse().unwrap(),
                fingerprint: c[3].into(),
                key_id: c[4].into(),
                serial: c[5].into(),
                principals: c[6].into(),
                ca_fingerprint: c[7].into(),
                valid_after: c[8].into(),
                valid_before: c[9].into(),
                options: c[10].into(),
            }
        })
        .collect()
}

fn read_pub(file: &str) -> (String, String) {
    let text = std::fs::read_to_string(fixtures().join(file)).unwrap();
    let mut words = text.split_whitespace();
    (
        words.next().unwrap().to_owned(),
        words.next().unwrap().to_owned(),
    )
}

#[test]
fn every_fixture_matches_ssh_keygen() {
    let all = expected();
    assert!(all.len() >= 19, "manifest has {} entries", all.len());
    let mut certs = 0;
    for e in &all {
        let (key_type, b64) = read_pub(&e.file);
        assert_eq!(key_type, e.blob_type);
        let blob = sshkey::decode_base64_blob(&b64).unwrap();
        let key = sshkey::parse_blob(&blob, Some(&key_type))
            .unwrap_or_else(|err| panic!("{}: {err}", e.file));
        assert_eq!(key.key_type, e.blob_type, "{}", e.file);
        assert_eq!(key.fingerprint, e.fingerprint, "{}", e.file);
        assert_eq!(key.bits, e.bits, "{}", e.file);
        match &key.certificate {
            None => assert!(e.key_id.is_empty() && e.serial.is_empty(), "{}", e.file),
            Some(cert) => {
                certs += 1;
                assert_eq!(cert.key_id, e.key_id, "{}", e.file);
                assert_eq!(cert.serial.to_string(), e.serial, "{}", e.file);
                assert_eq!(cert.principals.join(","), e.principals, "{}", e.file);
                assert_eq!(cert.ca_fingerprint, e.ca_fingerprint, "{}", e.file);
                assert_eq!(cert.valid_after.to_string(), e.valid_after, "{}", e.file);
                assert_eq!(cert.valid_before.to_string(), e.valid_before, "{}", e.file);
                let options: Vec<String> = cert
                    .critical_options
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                assert_eq!(options.join(","), e.options, "{}", e.file);
                let expect_type = if e.file.starts_with("host-") {
                    CertType::Host
                } else {
                    CertType::User
                };
                assert_eq!(cert.cert_type, expect_type, "{}", e.file);
                if expect_type == CertType::User {
                    assert!(cert.extensions.iter().any(|x| x == "permit-pty"));
                } else {
                    assert!(cert.extensions.is_empty());
                }
            }
        }
    }
    assert_eq!(certs, 9);
}

#[test]
fn auth_info_lines_from_real_keys() {
    let (t1, b1) = read_pub("user-ed25519-cert.pub");
    let (t2, b2) = read_pub("user-rsa.pub");
    let info = format!("publickey {t1} {b1}\npublickey {t2} {b2}\nkeyboard-interactive/pam\n");
    let methods = authinfo::parse(info.as_bytes()).unwrap();
    assert_eq!(methods.len(), 3);
    let cert = methods[0]
        .key
        .as_ref()
        .unwrap()
        .certificate
        .as_ref()
        .unwrap();
    assert_eq!(cert.key_id, "user-ed25519@example.com");
    assert_eq!(methods[1].key.as_ref().unwrap().key_type, "ssh-rsa");
    assert_eq!(methods[2].method, "keyboard-interactive/pam");
    assert!(methods[2].key.is_none());
}

#[test]
fn every_truncation_and_bit_flip_of_a_real_certificate_is_handled() {
    let (_, b64) = read_pub("user-rsa-cert.pub");
    let blob = sshkey::decode_base64_blob(&b64).unwrap();
    for cut in 0..blob.len() {
        assert!(sshkey::parse_blob(&blob[..cut], None).is_err(), "cut {cut}");
    }
    // Flipping bits may give another valid parse or an error, never a panic.
    for i in 0..blob.len() {
        let mut bad = blob.clone();
        bad[i] ^= 0x80;
        let _ = sshkey::parse_blob(&bad, None);
    }
}

#[test]
fn mismatched_announced_type_is_rejected() {
    let (_, b64) = read_pub("user-ed25519-cert.pub");
    let info = format!("publickey ssh-ed25519 {b64}\n");
    assert!(authinfo::parse(info.as_bytes()).is_err());
}
