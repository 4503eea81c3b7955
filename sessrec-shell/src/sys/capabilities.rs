//! Capability sets, the bounding set, no-new-privs and dumpability.

use std::io;

use super::check;
use super::credentials::{drop_to, Gid, Uid};

// Capabilities are set with capget/capset written out here rather than with the `caps` crate:
// the pipe-mode monitor sets them in a forked copy of the recorder, which must not allocate,
// and `caps` takes and returns `HashSet`s (its bounding-set clear iterates one) and builds
// `String` errors. The hand-written calls are the three below.

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// CAP_KILL (linux/capability.h): signal any process.
pub const CAP_KILL: u32 = 5;
/// CAP_SETPCAP (linux/capability.h): change the bounding set, among others.
const CAP_SETPCAP: libc::c_ulong = 8;

/// The three capability sets of the calling thread (low 64 bits each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapabilitySets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

fn split_capabilities(bits: u64) -> (u32, u32) {
    (bits as u32, (bits >> 32) as u32)
}

/// capset(2) of the calling thread. Async-signal-safe.
fn set_capability_sets(sets: CapabilitySets) -> io::Result<()> {
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let (e0, e1) = split_capabilities(sets.effective);
    let (p0, p1) = split_capabilities(sets.permitted);
    let (i0, i1) = split_capabilities(sets.inheritable);
    let data = [
        CapData {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        CapData {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: header and a two-element data array are the layout capset(2) v3 expects.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// capget(2) of the calling thread. Async-signal-safe.
pub fn capability_sets() -> io::Result<CapabilitySets> {
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and a two-element data array are the layout capget(2) v3 expects.
    let ret = unsafe { libc::syscall(libc::SYS_capget, &header, data.as_mut_ptr()) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    let join = |low: u32, high: u32| u64::from(low) | (u64::from(high) << 32);
    Ok(CapabilitySets {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

fn clear_ambient_capabilities() -> io::Result<()> {
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes no pointers.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    })?;
    Ok(())
}

fn set_no_new_privs_and_not_dumpable() -> io::Result<()> {
    // SAFETY: integer-argument prctl.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    set_not_dumpable()
}

/// Empties the effective, permitted and inheritable capability sets, clears ambient
/// capabilities, and sets no-new-privs and not-dumpable.
pub fn drop_capabilities_and_lock() -> io::Result<()> {
    clear_ambient_capabilities()?;
    set_capability_sets(CapabilitySets {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    })?;
    set_no_new_privs_and_not_dumpable()
}

/// Turns a root process into `uid`/`gid` (no supplementary groups) that holds CAP_KILL and no
/// other capability: empty bounding, inheritable and ambient sets, no-new-privs, not dumpable.
/// Verified before returning. Async-signal-safe (the pipe-mode monitor calls it after fork).
pub fn become_signaller(uid: Uid, gid: Gid) -> io::Result<()> {
    if uid.is_root() {
        // uid 0 would keep root's file access without any capability.
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // The bounding set first: dropping from it needs CAP_SETPCAP, which only root has here.
    for cap in 0..64 {
        // SAFETY: integer-argument prctl.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } == -1 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINVAL) {
                break; // past the kernel's last capability
            }
            return Err(err);
        }
    }
    // Keep the permitted set across the uid change (the effective set is emptied by it).
    // SAFETY: integer-argument prctl.
    check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) })?;
    drop_to(uid, gid, &[])?;
    let kill_only = 1u64 << CAP_KILL;
    let wanted = CapabilitySets {
        effective: kill_only,
        permitted: kill_only,
        inheritable: 0,
    };
    set_capability_sets(wanted)?;
    // SAFETY: integer-argument prctl.
    check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) })?;
    clear_ambient_capabilities()?;
    set_no_new_privs_and_not_dumpable()?;
    // SAFETY: integer-argument prctl; 0 means CAP_SETPCAP has left the bounding set.
    let bounded = unsafe { libc::prctl(libc::PR_CAPBSET_READ, CAP_SETPCAP, 0, 0, 0) };
    if capability_sets()? != wanted || bounded != 0 {
        return Err(io::Error::from_raw_os_error(libc::EPERM));
    }
    Ok(())
}

/// Marks the process not dumpable (no core, no ptrace by its uid, /proc entries root-owned).
pub fn set_not_dumpable() -> io::Result<()> {
    // SAFETY: integer-argument prctl.
    check(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) })?;
    Ok(())
}

/// The effective capability set (low 64 bits), for verification.
pub fn effective_capabilities() -> io::Result<u64> {
    Ok(capability_sets()?.effective)
}
