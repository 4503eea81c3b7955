//! SFTP file attributes: parsed from requests and replies, written into events.
#![forbid(unsafe_code)]

use crate::transfer::event::{octal_mode, TransferEvent};
use crate::transfer::wire::Reader;

#[derive(Default)]
pub(super) struct Attrs {
    pub(super) size: Option<u64>,
    pub(super) uid_gid: Option<(u32, u32)>,
    pub(super) permissions: Option<u32>,
    pub(super) times: Option<(u32, u32)>,
}

pub(super) fn parse_attrs(r: &mut Reader<'_>) -> Option<Attrs> {
    let flags = r.u32()?;
    let mut a = Attrs::default();
    if flags & 0x1 != 0 {
        a.size = Some(r.u64()?);
    }
    if flags & 0x2 != 0 {
        a.uid_gid = Some((r.u32()?, r.u32()?));
    }
    if flags & 0x4 != 0 {
        a.permissions = Some(r.u32()?);
    }
    if flags & 0x8 != 0 {
        a.times = Some((r.u32()?, r.u32()?));
    }
    if flags & 0x8000_0000 != 0 {
        let count = r.u32()?;
        for _ in 0..count {
            r.string()?;
            r.string()?;
        }
    }
    Some(a)
}

pub(super) fn set_attrs(ev: &mut TransferEvent, a: &Attrs) {
    if let Some(mode) = a.permissions {
        ev.mode = Some(octal_mode(mode));
    }
    if let Some(size) = a.size {
        ev.size = Some(size);
    }
    if let Some((uid, gid)) = a.uid_gid {
        ev.uid = Some(uid);
        ev.gid = Some(gid);
    }
    if let Some((atime, mtime)) = a.times {
        ev.atime = Some(atime.into());
        ev.mtime = Some(mtime.into());
    }
}
