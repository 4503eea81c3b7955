//! One operation of a file transfer channel (sftp, legacy scp, rsync). Payload bytes are never
//! part of these lines.
#![forbid(unsafe_code)]

use super::event_type;

event_type! {
    /// One transfer operation, or the channel's `summary`. Wire paths and messages that are not
    /// UTF-8 carry `<field>_hex`; cut ones `<field>_truncated`.
    ///
    /// The `home-directory` request's user name and a malformed request's type are not here:
    /// their names (`user`, `type`) are header keys, which the writer keeps for the header.
    pub struct Transfer = "transfer", names in transfer_field {
        /// `sftp`, `scp` or `rsync`.
        protocol: String,
        /// The operation (`open`, `list`, `remove`, ..., `decode_stopped`, `summary`).
        op: String,
        path: String,
        target: String,
        /// scp: the entry's name below `path`.
        name: String,
        /// `upload`, `download`, `both` or `none`.
        direction: String,
        bytes_read: u64,
        bytes_written: u64,
        size: u64,
        /// Four octal digits.
        mode: String,
        uid: u32,
        gid: u32,
        atime: u64,
        mtime: u64,
        open_flags: String,
        entries: u64,
        status: String,
        status_code: u32,
        status_text: String,
        io_errors: u64,
        io_error_status: String,
        io_error_text: String,
        /// False when a file was still open at the end of the channel.
        closed: bool,
        untracked_ops: u64,
        bytes_written_unconfirmed: u64,
        extension: String,
        /// sftp `unknown_request`/`malformed_request`: the request's packet type.
        request_type: u32,
        /// sftp `home-directory`: the user name asked for.
        requested_user: String,
        offset: u64,
        length: u64,
        target_offset: u64,
        /// µs on the channel's I/O clock.
        started_us: u64,
        duration_us: u64,
        path_unknown: bool,
        target_unknown: bool,
        /// `stat_summary`: lookups, and failed ones.
        count: u64,
        failed: u64,
        /// `decode_stopped`: why, and where.
        reason: String,
        at_us: u64,
        /// `summary`: the argv executed, and the protocol bytes each way.
        command: String,
        bytes_from_client: u64,
        bytes_to_client: u64,
        /// rsync `summary`.
        paths: Vec<String>,
        options: Vec<String>,
        exit_status: i32,
        /// sftp, scp `summary`: false after `decode_stopped`.
        decoded: bool,
    }
}
