//! For `doctor`: whether the capture of sshd's forwards (`[forward] capture_sshd`) runs, from
//! the kernel's own tables: a `sessrec-audit-import` process holding a packet socket (its
//! descriptors' socket inodes among those `/proc/net/packet` lists).
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::path::Path;

/// The socket inodes of the packet sockets in a `/proc/net/packet` listing (the last column).
pub fn packet_socket_inodes(listing: &str) -> HashSet<u64> {
    listing
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().last()?.parse().ok())
        .collect()
}

/// The pids of `sessrec-audit-import` processes under `proc` that hold a packet socket.
pub fn capturing_importers(proc: &Path) -> Vec<u32> {
    let inodes = std::fs::read_to_string(proc.join("net/packet"))
        .map(|l| packet_socket_inodes(&l))
        .unwrap_or_default();
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(proc).into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let is_importer = std::fs::read_link(entry.path().join("exe"))
            .ok()
            .and_then(|exe| exe.file_name().map(|n| n == "sessrec-audit-import"))
            .unwrap_or(false);
        if !is_importer {
            continue;
        }
        let holds = std::fs::read_dir(entry.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter_map(|target| {
                let t = target
                    .to_str()?
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?;
                t.parse::<u64>().ok()
            })
            .any(|inode| inodes.contains(&inode));
        if holds {
            found.push(pid);
        }
    }
    found.sort_unstable();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_sockets_are_read_from_the_listing() {
        let listing = "sk       RefCnt Type Proto  Iface R Rmem   User   Inode\n\
                       ffff8e0c 3      3    0003   0     1 0      0      123456\n\
                       ffff8e0d 3      2    0800   2     1 0      0      77\n";
        assert_eq!(packet_socket_inodes(listing), HashSet::from([123456, 77]));
        assert!(packet_socket_inodes("sk RefCnt\n").is_empty());
    }
}
