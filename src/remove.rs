//! The one place that deletes a pidfile: always while this process holds the file's exclusive lock, and only if
//! the path still names the file that is locked.
//!
//! Holding the lock is what makes removal safe against claims: a claim locks the file it opened and then checks
//! that the path still names it, so a claim either locked the file before us (and we refuse), or finds it gone
//! once we let go (and creates a new one). Looking at the file and then unlinking by path, without the lock, would
//! delete a file that a claim took over in between, and let a second claim win beside it.

use std::ffi::CStr;
use std::path::Path;
use std::time::Instant;

use rustix::fs::{AtFlags, CWD};
use rustix::io::Errno;

use crate::read::{self, Seen};
use crate::sys::{self, FileId};
use crate::{Error, directory};

/// How many times the file may be found replaced under us before giving up.
const MAX_ATTEMPTS: usize = 100;

/// Which pidfiles a removal takes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Policy {
    /// Whatever pid it holds, when no other process holds its lock.
    Any,
    /// Only when it holds this pid (this process's); any other file is left alone without an error.
    OwnPid(u32),
    /// Only when its service does not run: not locked, and not naming a live process by the rule for files
    /// written by tools that do not lock.
    Stale,
}

/// Unlinks `path` if it still names the file `id`, whose lock the caller holds. `Ok(false)` when the path names
/// something else now (or nothing), which is then left alone.
///
/// Async-signal-safe: two system calls on a path that is already a C string, no allocation, no lock. The check
/// and the unlink are two steps; the caller's lock keeps every process that follows the protocol from replacing
/// the file in between.
pub(crate) fn unlink_held(path: &CStr, id: FileId) -> Result<bool, Errno> {
    if !sys::path_names(path, id) {
        return Ok(false);
    }
    match rustix::fs::unlinkat(CWD, path, AtFlags::empty()) {
        Ok(()) => Ok(true),
        Err(Errno::NOENT) => Ok(false),
        Err(error) => Err(error),
    }
}

/// Removes the pidfile at `path` under `policy`: locks it (refusing, and touching nothing, when another process
/// holds the lock), checks that the path still names it, then unlinks it and lets the lock go. A missing file is
/// not an error.
pub(crate) fn remove_at(path: &Path, policy: Policy) -> Result<(), Error> {
    directory::check(path)?;
    let c_path = sys::c_path(path)?;
    let me = sys::current_pid();
    let waiting_ends = Instant::now() + read::MAX_WAITING;
    for _ in 0..MAX_ATTEMPTS {
        let Some((file, stat)) = read::open_for_reading(path)? else {
            return Ok(());
        };
        let id = FileId::of(&stat);
        match read::inspect_within(&file, &stat, path, true, read::settle_wait_until(waiting_ends))? {
            Seen::Unlocked { .. } => {}
            // This process holds the lock through a guard: only `remove_pidfile`, on the way out, takes the file from
            // under its own guard. Any other removal would let a second instance start beside the guard's holder.
            Seen::Proven { holder, pid } if holder == me && ours_to_remove(policy, pid) => {}
            _ if matches!(policy, Policy::OwnPid(_)) => return Ok(()),
            Seen::Proven { pid, .. } => {
                return Err(Error::InUse { path: path.to_owned(), pid: Some(pid) });
            }
            Seen::ProvenWithoutPid => {
                return Err(Error::InUse { path: path.to_owned(), pid: None });
            }
            Seen::Unproven { holder, doubt, .. } => {
                return Err(Error::Blocked { path: path.to_owned(), holder, doubt });
            }
        }
        if !sys::path_names(&c_path, id) {
            continue;
        }
        // Look again under the lock: what was seen before it may have been a claim's, since replaced.
        let stat = rustix::fs::fstat(&file).map_err(|error| Error::io("inspect", path, error))?;
        let content = read::read_content(&file, path)?;
        let pid = read::parse_pid(&content);
        match (policy, pid) {
            (Policy::Any, _) => {}
            (Policy::OwnPid(own), Some(pid)) if pid == own => {}
            (Policy::OwnPid(_), Some(_)) => return Ok(()),
            (Policy::OwnPid(_), None) => return Err(read::corrupt(path, &content)),
            (Policy::Stale, Some(pid)) if read::unlocked_holder_runs(pid, &stat) => {
                return Err(Error::InUse { path: path.to_owned(), pid: Some(pid) });
            }
            (Policy::Stale, _) => {}
        }
        return match unlink_held(&c_path, id) {
            Ok(_) => Ok(()),
            Err(error) => Err(Error::io("remove", path, error)),
        };
    }
    Err(Error::Unstable { path: path.to_owned() })
}

/// Whether `policy` removes a file naming `pid` that this process itself holds through a guard.
fn ours_to_remove(policy: Policy, pid: u32) -> bool {
    matches!(policy, Policy::OwnPid(own) if own == pid)
}
