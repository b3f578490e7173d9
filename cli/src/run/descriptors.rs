//! The descriptors a `--background` start keeps from its caller: the standard three, replaced, and nothing else.
//!
//! A process inherits whatever descriptors its parent left open without close-on-exec, and a service started in
//! the background would keep them for as long as it runs. When one is the write end of a pipe, the pipe's reader
//! never sees its end: debconf, for one, passes its pipe as descriptor 3 to the maintainer scripts that start
//! services, and waits for it. start-stop-daemon and systemd close such descriptors; so does this.

// The gate: a descriptor known only by its number can be named only through an unsafe borrow.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use rustix::fs::{Mode, OFlags};
use rustix::io::FdFlags;

/// Marks every descriptor of this process but standard input, output and error close-on-exec, so that a program
/// it executes next (the supervisor) inherits none of them.
pub fn close_inherited_on_exec() -> io::Result<()> {
    let listing = rustix::fs::openat(
        rustix::fs::CWD,
        "/proc/self/fd",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|error| io::Error::new(error.kind(), format!("/proc/self/fd: {error}")))?;
    let own = listing.as_raw_fd();
    for entry in rustix::fs::Dir::new(listing)? {
        let entry = entry?;
        let Some(fd) = entry.file_name().to_str().ok().and_then(|name| name.parse::<RawFd>().ok()) else {
            continue;
        };
        if fd <= 2 || fd == own {
            continue;
        }
        // SAFETY: `fd` was open when /proc listed it, and is open until the borrow ends with this statement: this
        // process runs a single thread here, so nothing closes it (or reuses its number) meanwhile. Setting
        // close-on-exec changes nothing this process relies on; it only keeps the descriptor from the supervisor.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        // FD_CLOEXEC is the only descriptor flag, so setting the flags to it keeps every other flag as it was.
        rustix::io::fcntl_setfd(borrowed, FdFlags::CLOEXEC)?;
    }
    Ok(())
}
