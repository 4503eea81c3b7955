//! Every foreign call of the recorder: process credentials, signals, limits, terminals, ptys,
//! fork/exec, poll and resource usage. Everything else in the crate is safe code.
//!
//! Functions documented "async-signal-safe" are called in a forked child before `execve` and
//! must neither allocate nor take locks.

mod capabilities;
mod credentials;
mod fd;
mod limits;
mod poll;
mod process;
mod signal;
mod term;
mod users;
mod wait;

pub use capabilities::*;
pub use credentials::*;
pub use fd::*;
pub use limits::*;
pub use poll::*;
pub use process::*;
pub use signal::*;
pub use term::*;
pub use users::*;
pub use wait::*;

use std::io;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
