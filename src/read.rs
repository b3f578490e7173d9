//! Reading a pidfile: strict parsing of its content, and whether its service runs ([`Status`]).
//!
//! Whether the file is locked is learnt by trying its lock for an instant: unlike the kernel's lock table, this
//! sees every holder on every filesystem and in every pid namespace. Who holds it is then proven by the rule of
//! [`crate::holder`]. A claim of this crate that meets the instant's lock waits for it (see `crate::lock`), so a
//! check never makes a concurrent start of ours fail.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::fs::{CWD, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::holder::{self, Doubt, Holder, Named};
use crate::sys::{self, FileId, Liveness, holders};
use crate::{Error, directory};

/// The most a pidfile may hold: a pid, whitespace, and room to spare. A longer file is corrupt, and is not read.
pub(crate) const MAX_CONTENT: usize = 64;

/// How long a reader waits for a locked file to be proven: for a claim that has locked the file to write its pid
/// (over a stale one, or into an empty file), for a remover or a check to let go. As FreeBSD's `pidfile_open`
/// waits at most 100 ms for the pid.
pub(crate) const SETTLE_WAIT: Duration = Duration::from_millis(100);

/// How long a claim or a removal waits, over all its attempts, for locks held by others to be let go: a file
/// replaced again and again, each time locked for a while, must not hold it up for an attempt's wait each time.
pub(crate) const MAX_WAITING: Duration = Duration::from_secs(1);

/// The wait for one inspection of an attempt whose waiting ends at `waiting_ends`: [`SETTLE_WAIT`], or what is left.
pub(crate) fn settle_wait_until(waiting_ends: Instant) -> Duration {
    waiting_ends.saturating_duration_since(Instant::now()).min(SETTLE_WAIT)
}

/// What a pidfile says of its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The service is running.
    ///
    /// `locked` tells how that is known. `true`: a live process holds the pidfile's exclusive lock through a
    /// descriptor open for writing, and the file names it or its child (a supervisor's command); `pid` is `None`
    /// only when such a holder has not written a pid. `false`: the file is not locked but was written by a tool
    /// that does not lock, and the live process it names started before the file was written.
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
    /// The pidfile is locked, but the lock does not prove that the service runs (see [`Doubt`]): another user's
    /// lock taken through a read-only descriptor, a lock passed on to a process that cannot be seen, a planted
    /// file. The lock keeps a claim out, but the file's pid is not to be trusted or signalled.
    Unproven {
        /// The pid in the file, if it holds one: not known to be running.
        pid: Option<u32>,
        /// The process found holding the lock, when one was.
        holder: Option<Holder>,
        /// Why the lock is no proof.
        doubt: Doubt,
    },
    /// There is no pidfile.
    NotRunning,
}

/// Parses a pidfile's content: ASCII decimal digits, optionally surrounded by ASCII whitespace (space, tab,
/// newline, carriage return, form feed), naming a pid that can exist (1 to the largest pid Linux allows). Signs,
/// other characters, several numbers, zero and overflow are refused.
///
/// ```
/// assert_eq!(pidfiles::parse_pid(b"72\n"), Some(72));
/// assert_eq!(pidfiles::parse_pid(b"-1"), None);
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
    let value = significant.iter().fold(0u32, |value, digit| value * 10 + u32::from(digit - b'0'));
    Some(value).filter(|&pid| (1..=sys::MAX_PID).contains(&pid))
}

/// The error for content that is not a pid, showing at most the start of it.
pub(crate) fn corrupt(path: &Path, content: &[u8]) -> Error {
    const SHOWN: usize = 32;
    let mut shown = String::from_utf8_lossy(&content[..content.len().min(SHOWN)]).into_owned();
    if content.len() > SHOWN {
        shown.push_str("...");
    }
    Error::Corrupt { path: path.to_owned(), content: shown }
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
        return Err(Error::NotAPidFile { path: path.to_owned(), found });
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
    Error::NotAPidFile { path: path.to_owned(), found: "a symbolic link".to_owned() }
}

/// What one inspection of an open pidfile found.
pub(crate) enum Seen {
    /// A live process, `holder`, holds the lock as a service does, and the file names it or its child: `pid`.
    Proven { pid: u32, holder: u32 },
    /// A live process holds the lock as a service does, and the file holds no pid.
    ProvenWithoutPid,
    /// The file is locked, but not provably by its service.
    Unproven { pid: Option<u32>, holder: Option<Holder>, doubt: Doubt },
    /// Nobody held the lock. With `keep_lock`, this process now holds it.
    Unlocked { content: Vec<u8>, pid: Option<u32> },
}

/// Inspects an open pidfile until what it says is settled.
///
/// The lock is tried first: a free one means the file is stale or written by a tool that does not lock, and is
/// let go at once (kept with `keep_lock`, for a claim or a removal). A held one must be proven by the pid the
/// file names ([`holder::named`]); a holder may be between locking and writing, or a check or removal may hold it
/// for an instant, so both are looked at again for up to [`SETTLE_WAIT`]. An empty file whose lock is free is
/// looked at again as long, in case a claim is between creating and locking it.
pub(crate) fn inspect(file: &OwnedFd, stat: &Stat, path: &Path, keep_lock: bool) -> Result<Seen, Error> {
    inspect_within(file, stat, path, keep_lock, SETTLE_WAIT)
}

/// [`inspect`], looking again for at most `wait` instead of [`SETTLE_WAIT`].
pub(crate) fn inspect_within(
    file: &OwnedFd,
    stat: &Stat,
    path: &Path,
    keep_lock: bool,
    wait: Duration,
) -> Result<Seen, Error> {
    let id = FileId::of(stat);
    let start = Instant::now();
    let mut pause = Duration::from_micros(250);
    loop {
        let content = read_content(file, path)?;
        let pid = parse_pid(&content);
        let settled = start.elapsed() >= wait;
        if holders::try_lock(file).map_err(|error| Error::io("lock", path, error))? {
            if keep_lock || !content.is_empty() || settled {
                if !keep_lock {
                    holders::unlock(file);
                }
                return Ok(Seen::Unlocked { content, pid });
            }
            holders::unlock(file);
        } else {
            let named = pid.map(|pid| (pid, holder::named(pid, id)));
            match named {
                Some((pid, Named::Proven { holder })) => {
                    return Ok(match file_doubt(stat, path) {
                        None => Seen::Proven { pid, holder },
                        Some(doubt) => Seen::Unproven { pid: Some(pid), holder: Some(Holder::of(holder)), doubt },
                    });
                }
                // The named process belongs to another user: waiting will not make it provable.
                Some((_, Named::NotPermitted)) => return Ok(identified(stat, path, pid)),
                _ if settled => return Ok(identified(stat, path, pid)),
                _ => {}
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(8));
    }
}

fn identified(stat: &Stat, path: &Path, pid: Option<u32>) -> Seen {
    match holder::identify(FileId::of(stat), pid) {
        Ok(holder) => match file_doubt(stat, path) {
            None => Seen::ProvenWithoutPid,
            Some(doubt) => Seen::Unproven { pid, holder: Some(holder), doubt },
        },
        Err((holder, doubt)) => Seen::Unproven { pid, holder, doubt },
    }
}

/// Why the pidfile itself cannot vouch for a lock held on it, if it cannot: anyone may write it (so anyone may
/// hold a writable descriptor), or it belongs to a user who is neither root, nor us, nor the user whose service
/// directory holds it (see `crate::directory`).
///
/// Such a user may create files in the directory only because it is shared (sticky and writable by all, as
/// `/var/tmp` is): their file under a service's name is a squat, and even a lock held as a service holds it proves
/// only that they hold it.
fn file_doubt(stat: &Stat, path: &Path) -> Option<Doubt> {
    if stat.st_mode & 0o002 != 0 {
        return Some(Doubt::WritableByAll);
    }
    let owner = stat.st_uid;
    if owner == 0 || owner == rustix::process::geteuid().as_raw() {
        return None;
    }
    match directory::service_owner(directory::parent(path)) {
        Some(service_user) if service_user == owner => None,
        _ => Some(Doubt::ForeignOwner { uid: owner }),
    }
}

/// The pid in the pidfile at `path`, `None` when there is none. A file being written at this moment (locked and
/// still empty, or naming the pid it is taking over from) is waited for briefly.
pub(crate) fn get_pid_at(path: &Path) -> Result<Option<u32>, Error> {
    let Some((file, stat)) = open_for_reading(path)? else {
        return Ok(None);
    };
    match inspect(&file, &stat, path, false)? {
        Seen::Proven { pid, .. } => Ok(Some(pid)),
        Seen::Unproven { pid: Some(pid), .. } | Seen::Unlocked { pid: Some(pid), .. } => Ok(Some(pid)),
        Seen::Unlocked { content, pid: None } => Err(corrupt(path, &content)),
        Seen::ProvenWithoutPid | Seen::Unproven { pid: None, .. } => Err(corrupt(path, &read_content(&file, path)?)),
    }
}

/// Whether the service whose pidfile is at `path` runs.
pub(crate) fn status_at(path: &Path) -> Result<Status, Error> {
    let Some((file, stat)) = open_for_reading(path)? else {
        return Ok(Status::NotRunning);
    };
    Ok(match inspect(&file, &stat, path, false)? {
        Seen::Proven { pid, .. } => Status::Running { pid: Some(pid), locked: true },
        Seen::ProvenWithoutPid => Status::Running { pid: None, locked: true },
        Seen::Unproven { pid, holder, doubt } => Status::Unproven { pid, holder, doubt },
        Seen::Unlocked { content, pid } => match pid {
            None if content.is_empty() => Status::Stale { pid: None },
            None => return Err(corrupt(path, &content)),
            Some(pid) if unlocked_holder_runs(pid, &stat) => Status::Running { pid: Some(pid), locked: false },
            Some(pid) => Status::Stale { pid: Some(pid) },
        },
    })
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
