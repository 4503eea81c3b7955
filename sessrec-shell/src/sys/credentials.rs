//! Process credentials: who called the recorder, becoming root, dropping to a user for good.

use std::io;

use nix::unistd::{
    geteuid, getgid, getgroups, getuid, setgid, setgroups, setresgid, setresuid, setuid,
};
pub use nix::unistd::{Gid, Uid};

/// The real uid/gid of the caller and its supplementary groups, as the kernel reports them.
#[derive(Debug, Clone)]
pub struct CallerIds {
    pub uid: Uid,
    pub gid: Gid,
    pub euid: Uid,
    pub groups: Vec<Gid>,
}

pub fn caller_ids() -> io::Result<CallerIds> {
    Ok(CallerIds {
        uid: getuid(),
        gid: getgid(),
        euid: geteuid(),
        groups: getgroups()?,
    })
}

/// Sets real, effective and saved gid and uid to 0 (the setuid bit gave us euid 0).
pub fn become_root_fully() -> io::Result<()> {
    let root_gid = Gid::from_raw(0);
    let root_uid = Uid::from_raw(0);
    setresgid(root_gid, root_gid, root_gid)?;
    setresuid(root_uid, root_uid, root_uid)?;
    Ok(())
}

/// Irreversibly switches every id to `uid`/`gid` with exactly `groups`. Async-signal-safe.
/// Fails if root could be regained afterwards.
pub fn drop_to(uid: Uid, gid: Gid, groups: &[Gid]) -> io::Result<()> {
    setgroups(groups)?;
    setresgid(gid, gid, gid)?;
    setresuid(uid, uid, uid)?;
    if !uid.is_root() {
        // Success here would mean the drop was reversible.
        let regained_uid = setuid(Uid::from_raw(0)).is_ok();
        let regained_gid = gid.as_raw() != 0 && setgid(Gid::from_raw(0)).is_ok();
        if regained_uid || regained_gid {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
    }
    Ok(())
}
