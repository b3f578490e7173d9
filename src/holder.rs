//! The proof rule: which process holds a pidfile, and when that proves its service runs.
//!
//! A pidfile's lock proves that its service runs only when it cannot have been forged:
//!
//! - it is an exclusive `flock` (a shared one, or a POSIX or OFD lock, can be taken by anyone who can read the
//!   file, and a POSIX lock does not even keep a claim out);
//! - it is held through a descriptor open for writing, which only a process allowed to write the file, or one
//!   that inherited such a descriptor, can have: a user who may only read the file cannot;
//! - the process holding it lives and has that descriptor open *now*, as its `/proc/PID/fd` and
//!   `/proc/PID/fdinfo` show. The kernel's lock table is only a hint: it names the process that took the lock,
//!   which may have passed it on and exited, and whose pid may since have been reused;
//! - the file names that process, or a child of it (a supervisor holds the lock for the command whose pid it
//!   wrote);
//! - and the file belongs to root, to us, or to the owner of its directory: in a shared directory such as
//!   `/var/tmp`, another user's file under a service's name is a squat, however it is locked (checked in
//!   `crate::read`, which knows the path).
//!
//! Anything else is reported for what it is ([`Doubt`]): a lock that blocks a claim but proves nothing.

use std::fmt;

use crate::sys::{self, FileId, holders};

/// A process that holds a pidfile's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// Its pid.
    pub pid: u32,
    /// Its effective user id, when it could be read.
    pub uid: Option<u32>,
}

impl Holder {
    /// The process `pid`, with its user when it can be read.
    pub(crate) fn of(pid: u32) -> Holder {
        Holder { pid, uid: holders::uid_of(pid) }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.uid {
            Some(uid) => write!(f, "pid {} (user {uid})", self.pid),
            None => write!(f, "pid {}", self.pid),
        }
    }
}

/// Why a lock held on a pidfile is not proof that its service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Doubt {
    /// The exclusive lock is held through a descriptor open only for reading: any user who may read the file could
    /// have taken it.
    ReadOnly,
    /// The lock is a shared one, which any user who may read the file can take.
    Shared,
    /// The lock is held as a service holds it, but the file names another process: the lock was passed on (a
    /// daemonizing command's worker keeps it after its starter, whose pid the file holds, exited), or the file was
    /// planted with someone else's pid.
    NotNamed,
    /// The lock is held as a service holds it, but the file belongs to user `uid`, who is neither root, nor us, nor
    /// the user whose service directory holds it: anyone may create a file in a shared directory such as `/var/tmp`, and their file
    /// under a service's name proves only that they hold it.
    ForeignOwner {
        /// The numeric user id of the file's owner.
        uid: u32,
    },
    /// The file may be written by every user, so any of them may hold a descriptor open for writing: its lock
    /// proves nothing, however it is held.
    WritableByAll,
    /// No live process can be seen holding the lock: its holder is in another pid namespace, or hides its open
    /// files.
    Unseen,
    /// The open files of the process that may hold the lock cannot be inspected: it belongs to another user. Only
    /// root, or that user, can prove who holds the pidfile.
    NotPermitted,
}

impl fmt::Display for Doubt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Doubt::ReadOnly => {
                f.write_str("through a descriptor open only for reading, which any reader of the file could take")
            }
            Doubt::Shared => f.write_str("with a shared lock, which any reader of the file could take"),
            Doubt::NotNamed => f.write_str("but the file names another process"),
            Doubt::ForeignOwner { uid } => write!(
                f,
                "but the file belongs to user {uid}, not to root, us or the user whose service directory holds it: anyone may create such a file in a shared directory"
            ),
            Doubt::WritableByAll => {
                f.write_str("but the file may be written by every user, who could all hold such a lock")
            }
            Doubt::Unseen => f.write_str("by no process that can be seen (one in another pid namespace, say)"),
            Doubt::NotPermitted => f.write_str(
                "but its open files belong to another user and cannot be inspected (check as root or as that user)",
            ),
        }
    }
}

/// What the pid in a pidfile turned out to be.
pub(crate) enum Named {
    /// `holder` holds the file's lock as a service does, and the file names it or its child.
    Proven { holder: u32 },
    /// The process named, and its parent, do not hold the file's lock.
    NotHolding,
    /// The process named belongs to another user: its open files cannot be inspected.
    NotPermitted,
}

/// Whether the file `id`, naming `pid`, is held as a service holds it by `pid` or by its parent.
pub(crate) fn named(pid: u32, id: FileId) -> Named {
    match holders::hold_of(pid, id) {
        Ok(Some(hold)) if hold.writable_exclusive => return Named::Proven { holder: pid },
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => return Named::NotPermitted,
        _ => {}
    }
    // A child counts while it runs: a zombie that its supervisor has not reaped yet is gone.
    match sys::parent_of(pid) {
        Some(parent)
            if parent > 0
                && matches!(holders::hold_of(parent, id), Ok(Some(hold)) if hold.writable_exclusive)
                && sys::liveness(pid) != sys::Liveness::Dead =>
        {
            Named::Proven { holder: parent }
        }
        _ => Named::NotHolding,
    }
}

/// Who holds the locked file `id` that names `pid` (or no pid) and did not prove it, and why that is no proof.
/// `Ok` is a holder that holds the lock as a service does in a file that names no pid yet.
///
/// One pass over the kernel's lock table finds the processes that took a `flock` on the inode; each is checked
/// against its open files, so a pid in the table that has passed the lock on, or been reused, is not named. When
/// none of them holds it (the lock was passed on, as a daemonizing command passes it to its worker), the open
/// files of every visible process are looked through: a cost paid only for a lock that proves nothing.
pub(crate) fn identify(id: FileId, pid: Option<u32>) -> Result<Holder, (Option<Holder>, Doubt)> {
    let mut takers = holders::lock_takers(id.ino).unwrap_or_default();
    takers.extend(pid);
    let mut not_permitted = None;
    if let Some(found) = first_holder(takers, id, pid, &mut not_permitted) {
        return found;
    }
    let everyone = holders::all_pids().unwrap_or_default();
    if let Some(found) = first_holder(everyone, id, pid, &mut not_permitted) {
        return found;
    }
    match not_permitted {
        Some(taker) => Err((Some(Holder::of(taker)), Doubt::NotPermitted)),
        None => Err((None, Doubt::Unseen)),
    }
}

/// The judgement on the first of `candidates` that holds a lock on the file `id`, which names `pid`. Notes in
/// `not_permitted` the first candidate whose open files could not be inspected.
fn first_holder(
    candidates: Vec<u32>,
    id: FileId,
    pid: Option<u32>,
    not_permitted: &mut Option<u32>,
) -> Option<Result<Holder, (Option<Holder>, Doubt)>> {
    for candidate in candidates {
        match holders::hold_of(candidate, id) {
            Ok(Some(hold)) if hold.writable_exclusive => {
                let holder = Holder::of(candidate);
                return Some(if pid.is_none() { Ok(holder) } else { Err((Some(holder), Doubt::NotNamed)) });
            }
            Ok(Some(hold)) if hold.readonly_exclusive => {
                return Some(Err((Some(Holder::of(candidate)), Doubt::ReadOnly)));
            }
            Ok(Some(hold)) if hold.shared => return Some(Err((Some(Holder::of(candidate)), Doubt::Shared))),
            Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
                not_permitted.get_or_insert(candidate);
            }
            _ => {}
        }
    }
    None
}
