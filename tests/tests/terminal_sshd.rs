//! Through a real sshd (the recorder as login shell, on a real pty): the recorder takes only its
//! controlling terminal from the user. A recorder started as the leader of another terminal
//! (`script`) with a standard descriptor on some other terminal of the user — the pty of the
//! user's own login shell, or a pty master (whose inode is /dev/ptmx) — leaves that one alone.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use sessrec_tests::*;

const T: Duration = Duration::from_secs(30);

#[test]
fn another_terminal_on_a_standard_descriptor_is_left_to_the_user() {
    require_e2e!("script");
    let r = RecordedLogin::start("tty-other");
    let uid = r.user.uid();
    let shell = r.installed.shell().display().to_string();
    let mut term = r.sshd.login(&r.user).interactive();
    term.expect(r"\$ $", T);
    // The login shell's terminal is the recorder's inner pty, the user's own.
    term.send_line("stat -c before=%u:%a $(tty)");
    term.expect(&format!("before={uid}:620"), T);
    // A nested recorder leading script's pty, with stderr on the login shell's pty.
    term.send_line(&format!(
        "script -qec \"exec {shell} -c 'echo inner-$((2*3))' 2>$(tty)\" /dev/null; stat -c after=%u:%a $(tty)"
    ));
    term.expect("inner-6", T);
    term.expect(&format!("after={uid}:620"), T);
    term.send_line("exit");
    term.wait(T);
}

/// Puts /dev/ptmx's owner and mode back if a test changed them.
struct PtmxGuard {
    uid: u32,
    gid: u32,
    mode: u32,
}

impl PtmxGuard {
    const PATH: &'static str = "/dev/ptmx";

    fn new() -> PtmxGuard {
        let meta = std::fs::metadata(Self::PATH).expect("stat /dev/ptmx");
        PtmxGuard {
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode() & 0o7777,
        }
    }

    fn now(&self) -> (u32, u32, u32) {
        let meta = std::fs::metadata(Self::PATH).expect("stat /dev/ptmx");
        (meta.uid(), meta.gid(), meta.mode() & 0o7777)
    }
}

impl Drop for PtmxGuard {
    fn drop(&mut self) {
        if self.now() != (self.uid, self.gid, self.mode) {
            let _ = std::os::unix::fs::chown(Path::new(Self::PATH), Some(self.uid), Some(self.gid));
            let _ =
                std::fs::set_permissions(Self::PATH, std::fs::Permissions::from_mode(self.mode));
        }
    }
}

#[test]
fn a_pty_master_on_a_standard_descriptor_does_not_change_dev_ptmx() {
    require_e2e!("script");
    let ptmx = PtmxGuard::new();
    let r = RecordedLogin::start("tty-ptmx");
    let shell = r.installed.shell().display().to_string();
    let mut term = r.sshd.login(&r.user).interactive();
    term.expect(r"\$ $", T);
    term.send_line(&format!(
        "script -qec \"exec {shell} -c 'echo master-$((2*4))' 2<>/dev/ptmx\" /dev/null; echo done-$((3*3))"
    ));
    term.expect("master-8", T);
    term.expect("done-9", T);
    assert_eq!(ptmx.now(), (ptmx.uid, ptmx.gid, ptmx.mode));
    term.send_line("exit");
    term.wait(T);
}
