//! The claim protocol: the only code that knows the order of the system calls that make a pidfile ours.
//!
//! 1. Open the path without following a symbolic link, creating it if missing, close-on-exec, without truncating.
//! 2. Take an exclusive `flock` without blocking. If another open file description holds it, wait briefly for it
//!    to be let go (a check or a removal holds it for an instant) and take it then; if it is kept, refuse: with
//!    the holder's pid when the lock proves its service runs, naming the holder and why otherwise
//!    (see [`crate::holder`]).
//! 3. Check that the file is a regular file with one name and that the path still names it: a file removed or
//!    replaced between the open and the lock means starting again.
//! 4. Judge what the file held before. A file whose lock was free is stale, except when a tool that does not lock
//!    wrote it and the process it names still runs (see [`crate::read::unlocked_holder_runs`]).
//! 5. A file owned by another user is never written into: it is removed while its lock is held, and claimed anew.
//! 6. Write `PID\n` at offset 0, and only then cut the file to that length if it was longer: the file is never
//!    truncated before it is ours, and never empty once written. A failed write removes the file.
//!
//! The lock is the same one BSD pidfile(3), flock(1) and `pgrep -L` use, so those tools see ours and we see theirs.

use std::ffi::CStr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rustix::fs::{CWD, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::read::{self, Seen, symlink_refused};
use crate::sys::{self, FileId, holders};
use crate::{Doubt, Error, directory, remove};

/// How many times the file may be found removed or replaced under us before giving up.
const MAX_ATTEMPTS: usize = 1000;

/// A pidfile this process has locked and written its pid into.
#[derive(Debug)]
pub(crate) struct Claimed {
    pub file: OwnedFd,
    pub id: FileId,
    /// The path, made absolute so that a later change of directory does not change what it names.
    pub path: PathBuf,
}

/// Claims the pidfile at `path` for the process `pid`, creating it with permissions `mode` (less the umask).
pub(crate) fn claim(path: &Path, mode: u32, pid: u32) -> Result<Claimed, Error> {
    let path = absolute(path)?;
    directory::check(&path)?;
    let mode = Mode::from_bits_truncate(mode);
    let waiting_ends = Instant::now() + read::MAX_WAITING;
    for _ in 0..MAX_ATTEMPTS {
        if let Some(claimed) = attempt(&path, mode, pid, waiting_ends)? {
            return Ok(claimed);
        }
    }
    Err(Error::Unstable { path })
}

fn absolute(path: &Path) -> Result<PathBuf, Error> {
    std::path::absolute(path).map_err(|error| Error::io("resolve the current directory for", path, error))
}

/// One pass of the protocol: `None` when the file changed under us and the pass must start again.
fn attempt(path: &Path, mode: Mode, pid: u32, waiting_ends: Instant) -> Result<Option<Claimed>, Error> {
    let (file, writable) = open_for_claim(path, mode)?;
    let locked = holders::try_lock(&file).map_err(|error| Error::io("lock", path, error))?;
    let mut stat = rustix::fs::fstat(&file).map_err(|error| Error::io("inspect", path, error))?;
    if !locked {
        refuse_unless_let_go(&file, &stat, path, waiting_ends)?;
        // The holder that let go may have written or cut the file meanwhile: its size decides the truncation.
        stat = rustix::fs::fstat(&file).map_err(|error| Error::io("inspect", path, error))?;
    }
    if let Some(found) = sys::not_a_pidfile(&stat) {
        return Err(Error::NotAPidFile { path: path.to_owned(), found });
    }
    let id = FileId::of(&stat);
    let c_path = sys::c_path(path)?;
    if stat.st_nlink == 0 || !sys::path_names(&c_path, id) {
        return Ok(None);
    }
    if stat.st_size > 0 {
        refuse_if_unlocked_holder_runs(&file, &stat, path, pid)?;
    }
    if stat.st_uid != rustix::process::geteuid().as_raw() || !writable {
        replace_foreign(&c_path, id, path, &stat)?;
        return Ok(None);
    }
    write_pid(&file, &stat, path, pid).inspect_err(|_| {
        // The lock is still ours: no one else can have replaced the file, so what is removed is what we wrote.
        let _ = remove::unlink_held(&c_path, id);
    })?;
    Ok(Some(Claimed { file, id, path: path.to_owned() }))
}

/// Opens the pidfile for the claim, read-write and created if missing. A file we may not write (another user's)
/// is opened read-only, which is enough to lock it before replacing it. Returns whether the file is writable.
fn open_for_claim(path: &Path, mode: Mode) -> Result<(OwnedFd, bool), Error> {
    let flags = OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    match rustix::fs::openat(CWD, path, flags | OFlags::RDWR | OFlags::CREATE, mode) {
        Ok(file) => Ok((file, true)),
        // Someone else's file cannot be written (in a sticky directory with protected_regular, not even opened
        // for writing by root), but it can be locked read-only to be replaced safely. The same error comes for a
        // symbolic link of another user's in a sticky directory (protected_symlinks): the read-only open, which
        // does not create, tells which it is.
        Err(denied @ (Errno::ACCESS | Errno::PERM)) => {
            match rustix::fs::openat(CWD, path, flags | OFlags::RDONLY, Mode::empty()) {
                Ok(file) => Ok((file, false)),
                Err(Errno::NOENT) => Err(open_error(path, "create", denied)),
                Err(error @ (Errno::LOOP | Errno::ISDIR)) => Err(open_error(path, "open", error)),
                Err(_) => Err(open_error(path, "open", denied)),
            }
        }
        Err(error) => Err(open_error(path, "open", error)),
    }
}

/// Names what an error of `open` says stands at the path, when it says anything.
fn open_error(path: &Path, operation: &'static str, error: Errno) -> Error {
    match error {
        Errno::NOENT => read::missing(path).err().unwrap_or_else(|| Error::io("create", path, error)),
        Errno::LOOP => symlink_refused(path),
        Errno::ISDIR => Error::NotAPidFile { path: path.to_owned(), found: "a directory".to_owned() },
        error => Error::io(operation, path, error),
    }
}

/// Waits, briefly, for a lock held by another open file description to be let go (a check or a removal holds it
/// for an instant), and takes it then. A lock that is kept is refused: with the holder's pid when the holder is
/// proven (see [`crate::holder`]), naming whoever holds it and why it proves nothing otherwise.
fn refuse_unless_let_go(file: &OwnedFd, stat: &Stat, path: &Path, waiting_ends: Instant) -> Result<(), Error> {
    loop {
        match read::inspect_within(file, stat, path, true, read::settle_wait_until(waiting_ends))? {
            Seen::Unlocked { .. } => return Ok(()),
            Seen::Proven { pid, .. } => return Err(Error::AlreadyRunning { path: path.to_owned(), pid: Some(pid) }),
            Seen::ProvenWithoutPid => return Err(Error::AlreadyRunning { path: path.to_owned(), pid: None }),
            // A lock held through a read-only descriptor, or by no process to be seen any more, is most often a
            // check (`status`, `list`) trying it for an instant and descheduled on a busy machine past the settle
            // wait: a service holds its pidfile writable. So the claim looks again, up to its bound on waiting,
            // rather than fail a start because someone looked.
            Seen::Unproven { doubt: Doubt::ReadOnly | Doubt::Unseen, .. } if Instant::now() < waiting_ends => {}
            Seen::Unproven { holder, doubt, .. } => {
                return Err(Error::Blocked { path: path.to_owned(), holder, doubt });
            }
        }
    }
}

/// A file whose lock we now hold may still name a running process, if a tool that does not lock wrote it.
fn refuse_if_unlocked_holder_runs(file: &OwnedFd, stat: &Stat, path: &Path, pid: u32) -> Result<(), Error> {
    let content = read::read_content(file, path)?;
    match read::parse_pid(&content) {
        Some(old) if old != pid && read::unlocked_holder_runs(old, stat) => {
            Err(Error::AlreadyRunning { path: path.to_owned(), pid: Some(old) })
        }
        _ => Ok(()),
    }
}

/// Removes a stale file we do not own, while holding its lock, so that the next pass creates our own.
fn replace_foreign(c_path: &CStr, id: FileId, path: &Path, stat: &Stat) -> Result<(), Error> {
    match remove::unlink_held(c_path, id) {
        Ok(_) => Ok(()),
        Err(Errno::ACCESS | Errno::PERM | Errno::ROFS) => {
            Err(Error::ForeignOwner { path: path.to_owned(), uid: stat.st_uid })
        }
        Err(error) => Err(Error::io("remove", path, error)),
    }
}

/// Writes `PID\n` over the start of the file, then cuts off what an earlier, longer content left behind.
pub(crate) fn write_pid(file: &OwnedFd, stat: &Stat, path: &Path, pid: u32) -> Result<(), Error> {
    let mut text = [0u8; 16];
    let len = format_pid(pid, &mut text);
    let written = loop {
        match rustix::io::pwrite(file, &text[..len], 0) {
            Err(Errno::INTR) => continue,
            result => break result,
        }
    };
    match written {
        Ok(written) if written == len => {}
        Ok(_) => return Err(Error::io("write the pid to", path, Errno::NOSPC)),
        Err(error) => return Err(Error::io("write the pid to", path, error)),
    }
    if stat.st_size > len as i64 {
        rustix::fs::ftruncate(file, len as u64).map_err(|error| Error::io("truncate", path, error))?;
    }
    Ok(())
}

/// Formats `pid` as decimal followed by a newline, without allocating.
fn format_pid(pid: u32, out: &mut [u8; 16]) -> usize {
    let mut digits = [0u8; 10];
    let mut count = 0;
    let mut rest = pid;
    loop {
        digits[count] = b'0' + (rest % 10) as u8;
        count += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for (slot, digit) in out.iter_mut().zip(digits[..count].iter().rev()) {
        *slot = *digit;
    }
    out[count] = b'\n';
    count + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_pids_with_a_newline() {
        let mut out = [0u8; 16];
        for (pid, text) in [(1, "1\n"), (72, "72\n"), (4_194_304, "4194304\n"), (u32::MAX, "4294967295\n")] {
            let len = format_pid(pid, &mut out);
            assert_eq!(&out[..len], text.as_bytes());
        }
    }
}
