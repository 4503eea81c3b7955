//! The OS calls of the importer that std and nix do not offer: a `NETLINK_SOCK_DIAG` socket,
//! its multicast groups and its receive buffer. Message building and parsing are in
//! `sockdiag` (no FFI there).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The kernel's sock_diag multicast groups for TCP sockets being freed
/// (`SKNLGRP_INET_TCP_DESTROY`, `SKNLGRP_INET6_TCP_DESTROY` in linux/sock_diag.h).
pub const SKNLGRP_INET_TCP_DESTROY: u32 = 1;
pub const SKNLGRP_INET6_TCP_DESTROY: u32 = 3;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A new `NETLINK_SOCK_DIAG` socket (close-on-exec; non-blocking when asked), bound to the
/// kernel-assigned port.
pub fn sock_diag_socket(nonblocking: bool) -> io::Result<OwnedFd> {
    let mut kind = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
    if nonblocking {
        kind |= libc::SOCK_NONBLOCK;
    }
    // SAFETY: plain socket(2) with constant arguments; the result is checked.
    let fd = check(unsafe { libc::socket(libc::AF_NETLINK, kind, libc::NETLINK_SOCK_DIAG) })?;
    // SAFETY: `fd` was just returned by socket(2) and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero sockaddr_nl is valid (family set below, port 0 = kernel assigns).
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `addr` is a sockaddr_nl of the size passed, alive for the call.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    })?;
    Ok(fd)
}

fn set_int_option(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a c_int alive for the call, and its size is passed.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Joins a netlink multicast group (needs CAP_NET_ADMIN for sock_diag's groups).
pub fn join_group(fd: &OwnedFd, group: u32) -> io::Result<()> {
    set_int_option(
        fd,
        libc::SOL_NETLINK,
        libc::NETLINK_ADD_MEMBERSHIP,
        group as libc::c_int,
    )
}

/// Sets the receive buffer, past `rmem_max` when privileged (SO_RCVBUFFORCE), else as far as
/// the limit allows.
pub fn set_receive_buffer(fd: &OwnedFd, bytes: usize) -> io::Result<()> {
    let bytes = bytes.min(libc::c_int::MAX as usize) as libc::c_int;
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, bytes)
        .or_else(|_| set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, bytes))
}

/// Sends one datagram to the kernel (netlink port 0).
pub fn send_to_kernel(fd: &OwnedFd, message: &[u8]) -> io::Result<()> {
    // SAFETY: an all-zero sockaddr_nl is valid; port 0 is the kernel.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    loop {
        // SAFETY: `message` and `addr` are valid for the lengths passed, alive for the call.
        let n = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                message.as_ptr().cast(),
                message.len(),
                0,
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if n >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Receives one datagram into `buf`; `WouldBlock` when a non-blocking socket has none, and
/// ENOBUFS (raw os error) when the kernel dropped messages for a full receive buffer.
pub fn receive(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is writable for its length, alive for the call.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// A packet socket seeing every frame of every interface (`AF_PACKET`, `SOCK_RAW`,
/// `ETH_P_ALL`; needs CAP_NET_RAW), close-on-exec and non-blocking.
pub fn packet_socket() -> io::Result<OwnedFd> {
    let protocol = (libc::ETH_P_ALL as u16).to_be() as libc::c_int;
    // SAFETY: plain socket(2) with constant arguments; the result is checked.
    let fd = check(unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            protocol,
        )
    })?;
    // SAFETY: `fd` was just returned by socket(2) and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What the kernel says of one received frame.
#[derive(Debug, Clone, Copy)]
pub struct FrameInfo {
    /// Bytes copied into the buffer, and the frame's whole length (more when cut).
    pub copied: usize,
    pub length: usize,
    /// `sll_pkttype` (`PACKET_OUTGOING` = 4 for frames this host sent).
    pub packet_type: u8,
    /// `sll_hatype` (ARPHRD_*), and `sll_protocol` (the EtherType, host order).
    pub hardware_type: u16,
    pub protocol: u16,
    /// When the kernel received it, since the epoch.
    pub at: std::time::Duration,
}

/// `PACKET_OUTGOING` in `sll_pkttype`.
pub const PACKET_OUTGOING: u8 = 4;
/// `ARPHRD_ETHER` and `ARPHRD_LOOPBACK`: link types whose frames start with an Ethernet header.
pub const ARPHRD_ETHER: u16 = 1;
pub const ARPHRD_LOOPBACK: u16 = 772;
/// `SIOCGSTAMP` (asm-generic/sockios.h, the `timeval` one): the last frame's receive time.
const SIOCGSTAMP: libc::c_ulong = 0x8906;

/// Receives one frame into `buf`; `WouldBlock` when none waits.
pub fn receive_frame(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<FrameInfo> {
    // SAFETY: an all-zero sockaddr_ll is valid; the kernel fills it.
    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let n = loop {
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `buf` is writable for its length, `from` for `len` bytes, both alive for the
        // call; MSG_TRUNC makes the result the frame's whole length.
        let n = unsafe {
            libc::recvfrom(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
                (&mut from as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        if n >= 0 {
            break n as usize;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
    // SAFETY: an all-zero timeval is valid; the kernel fills it.
    let mut tv: libc::timeval = unsafe { std::mem::zeroed() };
    // SAFETY: SIOCGSTAMP writes one timeval to the pointer, which is valid and alive.
    let at = if unsafe { libc::ioctl(fd.as_raw_fd(), SIOCGSTAMP as _, &mut tv) } == 0 {
        std::time::Duration::new(tv.tv_sec.max(0) as u64, (tv.tv_usec.max(0) as u32) * 1000)
    } else {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    };
    Ok(FrameInfo {
        copied: n.min(buf.len()),
        length: n,
        packet_type: from.sll_pkttype,
        hardware_type: from.sll_hatype,
        protocol: u16::from_be(from.sll_protocol),
        at,
    })
}

/// Frames the kernel dropped from the socket's queue since the last call
/// (`PACKET_STATISTICS`' `tp_drops`; reading resets the counters).
pub fn packet_drops(fd: &OwnedFd) -> io::Result<u64> {
    // SAFETY: an all-zero tpacket_stats is valid; the kernel fills it.
    let mut stats: libc::tpacket_stats = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: `stats` is writable for `len` bytes, both alive for the call.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut stats as *mut libc::tpacket_stats).cast(),
            &mut len,
        )
    })?;
    Ok(u64::from(stats.tp_drops))
}

/// Has the kernel leave out of the packet socket the copy of each frame the loopback interface
/// shows as sent (it shows it again as received): half the queue on `lo`. A classic BPF program
/// on the ancillary fields `pkttype` and `ifindex`.
pub fn skip_loopback_outgoing(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: the argument is a NUL-terminated string literal.
    let lo = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
    if lo == 0 {
        return Err(io::Error::last_os_error());
    }
    const LD_ABS_W: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let ancillary = |field: i32| (libc::SKF_AD_OFF + field) as u32;
    let insn = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let program = [
        insn(LD_ABS_W, 0, 0, ancillary(libc::SKF_AD_PKTTYPE)),
        insn(JEQ_K, 0, 3, u32::from(PACKET_OUTGOING)),
        insn(LD_ABS_W, 0, 0, ancillary(libc::SKF_AD_IFINDEX)),
        insn(JEQ_K, 0, 1, lo),
        insn(RET_K, 0, 0, 0),
        insn(RET_K, 0, 0, u32::MAX),
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at `program`, both alive for the call; the kernel copies it.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    })
    .map(drop)
}
