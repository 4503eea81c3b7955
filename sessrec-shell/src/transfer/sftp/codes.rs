//! SFTP version 3 numbers: packet types, status codes, open flags, and their names.
#![forbid(unsafe_code)]

pub(super) mod packet {
    pub const INIT: u8 = 1;
    pub const VERSION: u8 = 2;
    pub const OPEN: u8 = 3;
    pub const CLOSE: u8 = 4;
    pub const READ: u8 = 5;
    pub const WRITE: u8 = 6;
    pub const LSTAT: u8 = 7;
    pub const FSTAT: u8 = 8;
    pub const SETSTAT: u8 = 9;
    pub const FSETSTAT: u8 = 10;
    pub const OPENDIR: u8 = 11;
    pub const READDIR: u8 = 12;
    pub const REMOVE: u8 = 13;
    pub const MKDIR: u8 = 14;
    pub const RMDIR: u8 = 15;
    pub const REALPATH: u8 = 16;
    pub const STAT: u8 = 17;
    pub const RENAME: u8 = 18;
    pub const READLINK: u8 = 19;
    pub const SYMLINK: u8 = 20;
    pub const STATUS: u8 = 101;
    pub const HANDLE: u8 = 102;
    pub const DATA: u8 = 103;
    pub const NAME: u8 = 104;
    pub const ATTRS: u8 = 105;
    pub const EXTENDED: u8 = 200;
    pub const EXTENDED_REPLY: u8 = 201;
}

pub(super) const FX_OK: u32 = 0;
pub(super) const FX_EOF: u32 = 1;

pub(super) const FXF_READ: u32 = 0x01;
pub(super) const FXF_WRITE: u32 = 0x02;
pub(super) const FXF_APPEND: u32 = 0x04;
pub(super) const FXF_CREAT: u32 = 0x08;
pub(super) const FXF_TRUNC: u32 = 0x10;
pub(super) const FXF_EXCL: u32 = 0x20;

/// The name of an SFTP status code, as written in the `status` field.
pub fn status_name(code: u32) -> String {
    let name = match code {
        0 => "ok",
        1 => "eof",
        2 => "no_such_file",
        3 => "permission_denied",
        4 => "failure",
        5 => "bad_message",
        6 => "no_connection",
        7 => "connection_lost",
        8 => "op_unsupported",
        _ => return format!("code_{code}"),
    };
    name.to_owned()
}

pub(super) fn open_flags_text(pflags: u32) -> String {
    let names = [
        (FXF_READ, "read"),
        (FXF_WRITE, "write"),
        (FXF_APPEND, "append"),
        (FXF_CREAT, "create"),
        (FXF_TRUNC, "truncate"),
        (FXF_EXCL, "exclusive"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| pflags & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    set.join(",")
}
