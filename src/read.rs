//! Reading a pidfile without disturbing anyone: strict parsing of its content, and whether the process it names
//! is running ([`Status`]).
//!
//! Nothing here takes a lock, so checking a service never makes a concurrent start fail. Whether a file is locked
//! is read from the kernel's lock table instead.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::fs::{CWD, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::Error;
use crate::sys::{self, FileId, Liveness, LockProbe};

/// The most a pidfile may hold: a pid, whitespace, and room to spare. A longer file is corrupt, and is not read.
pub(crate) const MAX_CONTENT: usize = 64;

/// How long a reader waits for a process that holds the lock to write its pid.
const HOLDER_WRITE_WAIT: Duration = Duration::from_secs(2);
/// How long a reader waits for the pid in a locked file to become the lock holder's, or a child of the lock
/// holder's (a supervisor holds the lock on behalf of the child whose pid it wrote): a claim taking over a stale
/// file has locked it but not yet replaced the old pid. After this, the pid in the file is believed (the holder's
/// pid in the kernel's table can be that of a parent that passed the lock on and exited).
const HOLDER_MATCH_WAIT: Duration = Duration::from_millis(200);
/// How long a reader waits on an empty, unlocked file for a starting process to lock and write it.
const STARTER_WAIT: Duration = Duration::from_millis(100);

/// What a pidfile says of its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The service is running.
    ///
    /// `locked` tells how that is known: `true` when a process holds the pidfile's lock (proof), `false` when the
    /// file is not locked but was written by a tool that does not lock, and the live process it names started
    /// before the file was written. `pid` is `None` only when a locked file does not hold a readable pid.
    Running {
        /// The pid in the file.
        pid: Option<u32>,
        /// Whether a lock proves it.
        locked: bool,
    },
    /// A pidfile is there but its service is not running: the process died without removing it, or the pid it
    /// names now belongs to another process started after the file was written. The next claim takes it over.
    Stale {
        /// The pid in the file, `None` when the file is empty.
        pid: Option<u32>,
    },
    /// There is no pidfile.
    NotRunning,
}

/// Parses a pidfile's content: ASCII decimal digits, optionally surrounded by ASCII whitespace (space, tab,
/// newline, carriage return, form feed), naming a pid that can exist (1 to the largest pid Linux allows). Signs,
/// other characters, several numbers, zero and overflow are refused.
///
/// ```
/// assert_eq!(pidfile::parse_pid(b"72\n"), Some(72));
/// assert_eq!(pidfile::parse_pid(b"-1"), None);
/// ```
pub fn parse_pid(content: &[u8]) -> Option<u32> {
    let digits = content.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Leading zeros do not count; more than 7 significant digits is above the largest pid, and would overflow.
    let significant = &digits[digits.iter().take_while(|&&digit| digit == b'0').count()..];
    if significant.len() > 7 {
        return None;
    }
    let value = significant
        .iter()
        .fold(0u32, |value, digit| value * 10 + u32::from(digit - b'0'));
    Some(value).filter(|&pid| (1..=sys::MAX_PID).contains(&pid))
}

/// The error for content that is not a pid, showing at most the start of it.
pub(crate) fn corrupt(path: &Path, content: &[u8]) -> Error {
    const SHOWN: usize = 32;
    let mut shown = String::from_utf8_lossy(&content[..content.len().min(SHOWN)]).into_owned();
    if content.len() > SHOWN {
        shown.push_str("...");
    }
    Error::Corrupt {
        path: path.to_owned(),
        content: shown,
    }
}

/// Reads at most `MAX_CONTENT + 1` bytes from the start of the file: one more than allowed, to see a file that is
/// too long.
pub(crate) fn read_content(file: impl AsFd, path: &Path) -> Result<Vec<u8>, Error> {
    let mut buffer = vec![0u8; MAX_CONTENT + 1];
    let mut filled = 0;
    while filled < buffer.len() {
        match rustix::io::pread(&file, &mut buffer[filled..], filled as u64) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(Errno::INTR) => continue,
            Err(error) => return Err(Error::io("read", path, error)),
        }
    }
    buffer.truncate(filled);
    Ok(buffer)
}

/// Opens a pidfile to read it: never follows a symbolic link, never blocks on a FIFO, never becomes a controlling
/// terminal. `None` when there is no file; a missing directory is an error naming it.
pub(crate) fn open_for_reading(path: &Path) -> Result<Option<(OwnedFd, Stat)>, Error> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let file = match rustix::fs::openat(CWD, path, flags, Mode::empty()) {
        Ok(file) => file,
        Err(Errno::NOENT) => return missing(path).map(|()| None),
        Err(Errno::LOOP) => return Err(symlink_refused(path)),
        Err(error) => return Err(Error::io("open", path, error)),
    };
    let stat = rustix::fs::fstat(&file).map_err(|error| Error::io("inspect", path, error))?;
    if let Some(found) = sys::not_a_pidfile(&stat) {
        return Err(Error::NotAPidFile {
            path: path.to_owned(),
            found,
        });
    }
    Ok(Some((file, stat)))
}

/// A path that does not exist: fine if its directory does, an error naming the directory if not.
pub(crate) fn missing(path: &Path) -> Result<(), Error> {
    match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) if !dir.exists() => Err(Error::NoSuchDirectory { dir: dir.to_owned() }),
        _ => Ok(()),
    }
}

pub(crate) fn symlink_refused(path: &Path) -> Error {
    Error::NotAPidFile {
        path: path.to_owned(),
        found: "a symbolic link".to_owned(),
    }
}

/// One look at a pidfile: its content (the pid, or the bytes that are not one) and whether it is locked.
pub(crate) struct Observation {
    pub content: Vec<u8>,
    /// The pid the file holds, if it holds one.
    pub pid: Option<u32>,
    /// Whether the file is locked and `pid` is known to be its holder's (see `observe`).
    pub confirmed: bool,
    pub lock: LockProbe,
    pub stat: Stat,
}

impl Observation {
    pub(crate) fn locked(&self) -> bool {
        matches!(self.lock, LockProbe::Locked { .. })
    }

    /// The pid of the process holding the lock, as far as the file tells it: never a pid left from before.
    pub(crate) fn holder_pid(&self) -> Option<u32> {
        self.pid.filter(|_| self.confirmed)
    }
}

/// Looks at an open pidfile until what it says is settled: a locked file is re-read until it holds its holder's
/// pid (or a pid at all, after a while), and an empty unlocked file is re-read briefly in case a process is
/// between creating and locking it. `known_locked` says that the caller saw the lock held (its claim failed).
pub(crate) fn observe(file: impl AsFd, stat: Stat, path: &Path, known_locked: bool) -> Result<Observation, Error> {
    let start = Instant::now();
    let id = FileId::of(&stat);
    let mut pause = Duration::from_millis(1);
    loop {
        let content = read_content(&file, path)?;
        let pid = parse_pid(&content);
        let lock = sys::lock_probe(id);
        let waited = start.elapsed();
        // The caller may know the lock is held (its claim failed) even when the table, which can miss a line, does
        // not show it. In a locked file, a pid is confirmed when the table names it (or a parent of it) as the
        // holder, or, once a claim has had time to write, when its process at least lives.
        let locked = known_locked || matches!(lock, LockProbe::Locked { .. });
        let (settled, confirmed) = match pid {
            Some(pid) if locked => {
                let named = match lock {
                    LockProbe::Locked { holder } => {
                        holder.is_none_or(|holder| holder == pid || sys::parent_of(pid) == Some(holder))
                    }
                    LockProbe::Unlocked | LockProbe::Unknown => false,
                };
                let confirmed = named || (waited >= HOLDER_MATCH_WAIT && sys::liveness(pid) != Liveness::Dead);
                (confirmed || waited >= HOLDER_WRITE_WAIT, confirmed)
            }
            None if locked => (waited >= HOLDER_WRITE_WAIT, false),
            _ => (!content.is_empty() || waited >= STARTER_WAIT, false),
        };
        if settled {
            return Ok(Observation {
                content,
                pid,
                confirmed,
                lock,
                stat,
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(16));
    }
}

/// The pid in the pidfile at `path`, `None` when there is none.
pub(crate) fn get_pid_at(path: &Path) -> Result<Option<u32>, Error> {
    let Some((file, stat)) = open_for_reading(path)? else {
        return Ok(None);
    };
    let seen = observe(&file, stat, path, false)?;
    match seen.pid {
        Some(pid) => Ok(Some(pid)),
        None => Err(corrupt(path, &seen.content)),
    }
}

/// Whether the service whose pidfile is at `path` runs.
pub(crate) fn status_at(path: &Path) -> Result<Status, Error> {
    let Some((file, stat)) = open_for_reading(path)? else {
        return Ok(Status::NotRunning);
    };
    let seen = observe(&file, stat, path, false)?;
    if seen.locked() {
        return Ok(Status::Running {
            pid: seen.holder_pid(),
            locked: true,
        });
    }
    match seen.pid {
        None if seen.content.is_empty() => Ok(Status::Stale { pid: None }),
        None => Err(corrupt(path, &seen.content)),
        Some(pid) if unlocked_holder_runs(pid, &seen.stat) => Ok(Status::Running {
            pid: Some(pid),
            locked: false,
        }),
        Some(pid) => Ok(Status::Stale { pid: Some(pid) }),
    }
}

/// The rule for a pidfile nobody has locked, as written by tools that do not lock (the original module,
/// `start-stop-daemon --make-pidfile`): its process runs if the file is owned by us or by root (anyone else's
/// word is not taken), the pid is not ours (we do not hold the file, so it is a leftover of an earlier process
/// with our pid), and a live process with that pid started before the file was last written (one started after
/// merely reuses the pid).
pub(crate) fn unlocked_holder_runs(pid: u32, stat: &Stat) -> bool {
    let owner = stat.st_uid;
    if owner != 0 && owner != rustix::process::geteuid().as_raw() {
        return false;
    }
    if pid == sys::current_pid() {
        return false;
    }
    match sys::liveness(pid) {
        Liveness::Dead => false,
        Liveness::Alive { started: None } => true,
        Liveness::Alive { started: Some(started) } => match sys::modified_since_boot(stat) {
            // Start times are counted in clock ticks and rounded down, so a start time equal to the write time,
            // or before it, counts as before: when in doubt, the service runs.
            Some(modified) => started <= modified,
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_decimal_with_surrounding_whitespace() {
        assert_eq!(parse_pid(b"72\n"), Some(72));
        assert_eq!(parse_pid(b"  4194304 \t\r\n"), Some(4_194_304));
        assert_eq!(parse_pid(b"0072"), Some(72));
        assert_eq!(parse_pid(b"00000000001"), Some(1));
        assert_eq!(parse_pid(b"000000000000000000000004194304\n"), Some(4_194_304));
        assert_eq!(parse_pid(b"1"), Some(1));
    }

    #[test]
    fn refuses_what_is_not_a_pid() {
        for bad in [
            &b""[..],
            b" \n\t",
            b"abc",
            b"-1",
            b"+5",
            b"0",
            b"4194305",
            b"99999999999999999999",
            b"12\n34\n",
            b"1\x002",
            b"\x00",
            b"12 34",
            b"0x10",
            b"\xd9\xa3",
        ] {
            assert_eq!(parse_pid(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn corrupt_content_is_cut_short() {
        let Error::Corrupt { content, .. } = corrupt(Path::new("/x.pid"), &[b'7'; 100]) else {
            panic!("not a Corrupt error");
        };
        assert_eq!(content, format!("{}...", "7".repeat(32)));
    }
}
