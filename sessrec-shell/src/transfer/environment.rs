//! The environment a transfer program runs with.
//!
//! Transfer channels are recorded without their payload, so the program must do nothing but
//! the transfer. Its environment reaches it from sshd (`AcceptEnv`, `SetEnv`,
//! `PermitUserEnvironment`), PAM and the user's home directory, and these programs read it:
//! rsync takes `RSYNC_*` settings (`RSYNC_PROTECT_ARGS`, `RSYNC_OLD_ARGS`, `RSYNC_ICONV`,
//! `RSYNC_PARTIAL_DIR`, `RSYNC_MAX_ALLOC`, `RSYNC_CHECKSUM_LIST`, ...), and its option parser
//! (popt) reads `$HOME/.popt`, whose `rsync exec --server PROGRAM` line makes
//! `rsync --server` run PROGRAM instead of transferring; `CVSIGNORE` and `$HOME/.cvsignore`
//! add filter rules; `POSIXLY_CORRECT` changes how rsync, scp and sftp-server parse their
//! arguments; the dynamic loader, glibc's character-set converters and OpenSSL load code
//! named by `LD_*`, `GCONV_PATH`, `OPENSSL_CONF` and friends.
//!
//! So a transfer program gets an allow-list, not the caller's environment minus a few:
//! the user's names, the locale (without a path in it), the connection (sftp-server logs
//! the client address from `SSH_CONNECTION`), the recorder's own variables, and a fixed
//! `PATH`. Notably not `HOME`: none of the three needs it (they look the user up with
//! `getpwuid`), and without it popt reads no `~/.popt`.
#![forbid(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// Variables passed on unchanged.
const KEPT: &[&str] = &[
    "USER",
    "LOGNAME",
    "SSH_CONNECTION",
    "SSH_CLIENT",
    "SESSREC_SESSION",
    "SESSREC_CHANNEL",
];

/// The search path a transfer program gets, whatever the caller's was.
pub const TRANSFER_PATH: &str = "/usr/bin:/bin";

/// The environment for a transfer program, from the one an ordinary command would get.
pub fn transfer_environment(
    inherited: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = inherited
        .into_iter()
        .filter(|(name, value)| kept(name, value))
        .collect();
    env.push(("PATH".into(), TRANSFER_PATH.into()));
    env
}

fn kept(name: &OsStr, value: &OsStr) -> bool {
    let name = name.as_bytes();
    if KEPT.iter().any(|k| k.as_bytes() == name) {
        return true;
    }
    // A locale name with a `/` is a path glibc loads locale data from.
    let locale = name == b"LANG" || (name.starts_with(b"LC_") && name.len() > 3);
    locale && !value.as_bytes().contains(&b'/') && value.len() <= 256
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn only_the_allow_listed_variables_reach_a_transfer_program() {
        let got = transfer_environment(env(&[
            ("USER", "alice"),
            ("LOGNAME", "alice"),
            ("HOME", "/home/alice"),
            ("PATH", "/home/alice/bin:/usr/bin"),
            ("SHELL", "/bin/bash"),
            ("LANG", "C.UTF-8"),
            ("LC_ALL", "de_DE.UTF-8"),
            ("LC_CTYPE", "/home/alice/locale"),
            ("LC_", "x"),
            ("SSH_CONNECTION", "127.0.0.1 5000 127.0.0.1 22"),
            ("SSH_CLIENT", "127.0.0.1 5000 22"),
            ("SESSREC_SESSION", "0190a1b2-0000-7000-8000-000000000000"),
            ("SESSREC_CHANNEL", "x/1"),
            ("RSYNC_PROTECT_ARGS", "1"),
            ("RSYNC_OLD_ARGS", "1"),
            ("RSYNC_ICONV", "utf8"),
            ("RSYNC_PARTIAL_DIR", "/tmp"),
            ("RSYNC_CHECKSUM_LIST", "md5"),
            ("CVSIGNORE", "*"),
            ("POSIXLY_CORRECT", "1"),
            ("LD_PRELOAD", "/tmp/x.so"),
            ("LD_LIBRARY_PATH", "/tmp"),
            ("GCONV_PATH", "/tmp"),
            ("LOCPATH", "/tmp"),
            ("OPENSSL_CONF", "/tmp/o.cnf"),
            ("TMPDIR", "/tmp"),
        ]));
        assert_eq!(
            got,
            env(&[
                ("USER", "alice"),
                ("LOGNAME", "alice"),
                ("LANG", "C.UTF-8"),
                ("LC_ALL", "de_DE.UTF-8"),
                ("SSH_CONNECTION", "127.0.0.1 5000 127.0.0.1 22"),
                ("SSH_CLIENT", "127.0.0.1 5000 22"),
                ("SESSREC_SESSION", "0190a1b2-0000-7000-8000-000000000000"),
                ("SESSREC_CHANNEL", "x/1"),
                ("PATH", TRANSFER_PATH),
            ])
        );
    }

    #[test]
    fn non_utf8_values_are_kept_as_bytes() {
        use std::os::unix::ffi::OsStringExt;
        let user = OsString::from_vec(b"al\xffce".to_vec());
        let got = transfer_environment(vec![(OsString::from("USER"), user.clone())]);
        assert_eq!(got[0], (OsString::from("USER"), user));
    }
}
