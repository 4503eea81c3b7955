//! The user and group databases (nix's wrappers of getpwnam_r/getpwuid_r/getgrnam_r/getgrgid_r).

use std::io;

#[derive(Debug, Clone)]
pub struct Passwd {
    pub name: String,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

impl From<nix::unistd::User> for Passwd {
    fn from(user: nix::unistd::User) -> Self {
        Passwd {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        }
    }
}

// nix's wrappers of getpwnam_r/getpwuid_r/getgrnam_r/getgrgid_r (growing the buffer on ERANGE).
pub fn passwd_by_name(name: &str) -> io::Result<Option<Passwd>> {
    Ok(nix::unistd::User::from_name(name)?.map(Passwd::from))
}

pub fn passwd_by_uid(uid: libc::uid_t) -> io::Result<Option<Passwd>> {
    Ok(nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))?.map(Passwd::from))
}

pub fn group_gid(name: &str) -> io::Result<Option<libc::gid_t>> {
    Ok(nix::unistd::Group::from_name(name)?.map(|g| g.gid.as_raw()))
}

pub fn group_name(gid: libc::gid_t) -> io::Result<Option<String>> {
    Ok(nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))?.map(|g| g.name))
}
