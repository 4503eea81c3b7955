//! The user and group databases (nix's wrappers of getpwnam_r/getpwuid_r/getgrnam_r/getgrgid_r).

use std::io;

use nix::unistd::{Gid, Group, Uid, User};

#[derive(Debug, Clone)]
pub struct Passwd {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
}

impl From<User> for Passwd {
    fn from(user: User) -> Self {
        Passwd {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
        }
    }
}

// nix's wrappers of getpwnam_r/getpwuid_r/getgrnam_r/getgrgid_r (growing the buffer on ERANGE).
pub fn passwd_by_name(name: &str) -> io::Result<Option<Passwd>> {
    Ok(User::from_name(name)?.map(Passwd::from))
}

pub fn passwd_by_uid(uid: Uid) -> io::Result<Option<Passwd>> {
    Ok(User::from_uid(uid)?.map(Passwd::from))
}

pub fn group_gid(name: &str) -> io::Result<Option<Gid>> {
    Ok(Group::from_name(name)?.map(|g| g.gid))
}

pub fn group_name(gid: Gid) -> io::Result<Option<String>> {
    Ok(Group::from_gid(gid)?.map(|g| g.name))
}
