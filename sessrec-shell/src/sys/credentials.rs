//! Process credentials: who called the recorder, becoming root, dropping to a user for good.

use std::io;

use super::check;

/// The real uid/gid of the caller and its supplementary groups, as the kernel reports them.
#[derive(Debug, Clone)]
pub struct CallerIds {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub euid: libc::uid_t,
    pub groups: Vec<libc::gid_t>,
}

pub fn caller_ids() -> io::Result<CallerIds> {
    // SAFETY: getuid/getgid/geteuid cannot fail and take no pointers.
    let (uid, gid, euid) = unsafe { (libc::getuid(), libc::getgid(), libc::geteuid()) };
    // SAFETY: a null list with size 0 asks only for the count.
    let count = check(unsafe { libc::getgroups(0, std::ptr::null_mut()) })?;
    let mut groups = vec![0 as libc::gid_t; count as usize];
    // SAFETY: `groups` has room for `count` entries.
    let got = check(unsafe { libc::getgroups(count, groups.as_mut_ptr()) })?;
    groups.truncate(got as usize);
    Ok(CallerIds {
        uid,
        gid,
        euid,
        groups,
    })
}

/// Sets real, effective and saved gid and uid to 0 (the setuid bit gave us euid 0).
pub fn become_root_fully() -> io::Result<()> {
    // SAFETY: plain syscalls with integer arguments.
    check(unsafe { libc::setresgid(0, 0, 0) })?;
    // SAFETY: as above.
    check(unsafe { libc::setresuid(0, 0, 0) })?;
    Ok(())
}

/// Irreversibly switches every id to `uid`/`gid` with exactly `groups`. Async-signal-safe.
/// Fails if root could be regained afterwards.
pub fn drop_to(uid: libc::uid_t, gid: libc::gid_t, groups: &[libc::gid_t]) -> io::Result<()> {
    // SAFETY: `groups` is a valid slice of gid_t for its length.
    check(unsafe { libc::setgroups(groups.len(), groups.as_ptr()) })?;
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::setresgid(gid, gid, gid) })?;
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::setresuid(uid, uid, uid) })?;
    if uid != 0 {
        // SAFETY: plain syscall; success would mean the drop was reversible.
        let regained_uid = unsafe { libc::setuid(0) } == 0;
        // SAFETY: as above, for the group.
        let regained_gid = gid != 0 && unsafe { libc::setgid(0) } == 0;
        if regained_uid || regained_gid {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
    }
    Ok(())
}
