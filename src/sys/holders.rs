//! Who holds a file open, and how: the open descriptors of a process (`/proc/PID/fd`), their open flags and the
//! locks taken through them (`/proc/PID/fdinfo/FD`), and the kernel's table of locks (`/proc/locks`).
//!
//! These are facts only; what counts as proof that a service runs is decided in `crate::holder`.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{AtFlags, Mode, OFlags, RawDir};
use rustix::io::Errno;

use super::FileId;

/// The buffer for reading directory entries: `RawDir` reads through the descriptor it is given, where `Dir` would
/// open the directory a second time.
const DIR_BUFFER: usize = 4096;

/// How one process holds a file open, over all its descriptors for that file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Hold {
    /// An exclusive `flock` taken through a descriptor open for writing (or read-write).
    pub writable_exclusive: bool,
    /// An exclusive `flock` taken through a descriptor open for reading only.
    pub readonly_exclusive: bool,
    /// A shared `flock`.
    pub shared: bool,
}

impl Hold {
    fn merge(&mut self, other: Hold) {
        self.writable_exclusive |= other.writable_exclusive;
        self.readonly_exclusive |= other.readonly_exclusive;
        self.shared |= other.shared;
    }
}

/// How process `pid` holds the file `id` through its open descriptors: `Ok(None)` when it does not have the file
/// open; an error when its descriptors cannot be read (`NOENT`: no such process; `ACCES`: another user's).
///
/// Each descriptor is compared by `stat` of `/proc/PID/fd/N`, which gives the same device and inode as `fstat` of
/// the file on every filesystem; only the matching ones have their `fdinfo` read. The cost grows with the number
/// of descriptors of that one process, not with anything else on the machine.
pub(crate) fn hold_of(pid: u32, id: FileId) -> io::Result<Option<Hold>> {
    let fd_dir = open_dir(&format!("/proc/{pid}/fd"))?;
    let mut found: Option<Hold> = None;
    let mut buffer = [MaybeUninit::<u8>::uninit(); DIR_BUFFER];
    let mut entries = RawDir::new(&fd_dir, &mut buffer);
    while let Some(entry) = entries.next() {
        let entry = entry.map_err(io::Error::from)?;
        let name = entry.file_name();
        if name.to_bytes().first() == Some(&b'.') {
            continue;
        }
        // Following the magic link stats the open file itself; a descriptor closed meanwhile is skipped.
        let Ok(stat) = rustix::fs::statat(&fd_dir, name, AtFlags::empty()) else {
            continue;
        };
        if FileId::of(&stat) != id {
            continue;
        }
        let name = String::from_utf8_lossy(name.to_bytes()).into_owned();
        let Ok(info) = read_proc_file(&format!("/proc/{pid}/fdinfo/{name}")) else {
            continue;
        };
        let hold = found.get_or_insert_with(Hold::default);
        hold.merge(parse_fdinfo(&info));
        if hold.writable_exclusive {
            break;
        }
    }
    Ok(found)
}

/// Reads a small `/proc` file whole, in as few reads as the kernel allows (`std::fs::read_to_string` would `statx`
/// it first, and start with small reads, since `/proc` files report a size of zero).
fn read_proc_file(path: &str) -> io::Result<String> {
    let file = rustix::fs::openat(rustix::fs::CWD, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut content = Vec::with_capacity(1024);
    loop {
        let filled = content.len();
        content.resize(filled + 1024, 0);
        match rustix::io::read(&file, &mut content[filled..]) {
            Ok(0) => {
                content.truncate(filled);
                break;
            }
            Ok(read) => content.truncate(filled + read),
            Err(Errno::INTR) => content.truncate(filled),
            Err(error) => return Err(error.into()),
        }
    }
    String::from_utf8(content).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

fn open_dir(path: &str) -> io::Result<OwnedFd> {
    rustix::fs::openat(rustix::fs::CWD, path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(io::Error::from)
}

/// Reads one descriptor's `fdinfo`: its open flags (`flags:`, octal) and the locks the kernel lists as taken
/// through this very open file description (`lock:` lines, as in `/proc/locks`). A lock shows here only in the
/// descriptors that share the description it was taken through, so it is held by whoever has that description.
fn parse_fdinfo(info: &str) -> Hold {
    let mut writable = false;
    let mut hold = Hold::default();
    let mut exclusive = false;
    for line in info.lines() {
        if let Some(flags) = line.strip_prefix("flags:") {
            let flags = u32::from_str_radix(flags.trim(), 8).unwrap_or(0);
            let access = flags & OFlags::ACCMODE.bits();
            writable = access == OFlags::WRONLY.bits() || access == OFlags::RDWR.bits();
        } else if let Some(lock) = line.strip_prefix("lock:") {
            // `1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`
            let fields: Vec<&str> = lock.split_whitespace().collect();
            if fields.get(1) == Some(&"FLOCK") {
                match fields.get(3) {
                    Some(&"WRITE") => exclusive = true,
                    Some(&"READ") => hold.shared = true,
                    _ => {}
                }
            }
        }
    }
    if exclusive {
        if writable {
            hold.writable_exclusive = true;
        } else {
            hold.readonly_exclusive = true;
        }
    }
    hold
}

/// The pids that the kernel's lock table names as having taken a `flock` on an inode numbered `ino`, in one pass
/// over the table.
///
/// The table is a hint, never proof: it names the process that *took* a lock, which may have passed it on and
/// exited, and whose pid may since belong to another process; in a pid namespace it hides locks whose taker is not
/// visible; and on some filesystems (btrfs) its device numbers differ from `stat`'s, so only the inode number is
/// compared here. Callers check each pid with [`hold_of`].
pub(crate) fn lock_takers(ino: u64) -> io::Result<Vec<u32>> {
    let table = std::fs::read_to_string("/proc/locks")?;
    Ok(takers_in(&table, ino))
}

fn takers_in(table: &str, ino: u64) -> Vec<u32> {
    let mut takers = Vec::new();
    for line in table.lines() {
        // Lines of processes waiting for a lock carry `->`.
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 || fields[1] != "FLOCK" {
            continue;
        }
        let Some(file_ino) = fields[5].rsplit(':').next().and_then(|ino| ino.parse::<u64>().ok()) else {
            continue;
        };
        if file_ino == ino {
            if let Ok(pid) = fields[4].parse::<u32>() {
                if pid > 0 && !takers.contains(&pid) {
                    takers.push(pid);
                }
            }
        }
    }
    takers
}

/// The pids of every process this process can see, from the entries of `/proc`.
pub(crate) fn all_pids() -> io::Result<Vec<u32>> {
    let proc_dir = open_dir("/proc")?;
    let mut pids = Vec::new();
    let mut buffer = [MaybeUninit::<u8>::uninit(); DIR_BUFFER];
    let mut entries = RawDir::new(&proc_dir, &mut buffer);
    while let Some(entry) = entries.next() {
        let entry = entry.map_err(io::Error::from)?;
        if let Some(pid) = std::str::from_utf8(entry.file_name().to_bytes()).ok().and_then(|name| name.parse().ok()) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// The effective user id of process `pid`, from `/proc/PID/status`.
pub(crate) fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Takes an exclusive `flock` on `file` without waiting: `Ok(true)` when taken, `Ok(false)` when another open file
/// description holds a lock on the file.
pub(crate) fn try_lock(file: impl AsFd) -> io::Result<bool> {
    match rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(Errno::WOULDBLOCK) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// Lets go of a lock taken with [`try_lock`].
pub(crate) fn unlock(file: impl AsFd) {
    let _ = rustix::fs::flock(file, rustix::fs::FlockOperation::Unlock);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_tells_a_writable_exclusive_lock_from_forgeries() {
        let writable =
            "pos:\t0\nflags:\t02100002\nmnt_id:\t27\nino:\t5\nlock:\t1: FLOCK  ADVISORY  WRITE 48 fe:00:5 0 EOF\n";
        assert_eq!(parse_fdinfo(writable), Hold { writable_exclusive: true, ..Hold::default() });
        let read_only = "pos:\t0\nflags:\t0100000\nlock:\t1: FLOCK  ADVISORY  WRITE 48 fe:00:5 0 EOF\n";
        assert_eq!(parse_fdinfo(read_only), Hold { readonly_exclusive: true, ..Hold::default() });
        let shared = "pos:\t0\nflags:\t02\nlock:\t1: FLOCK  ADVISORY  READ 48 fe:00:5 0 EOF\n";
        assert_eq!(parse_fdinfo(shared), Hold { shared: true, ..Hold::default() });
        let posix = "pos:\t0\nflags:\t02\nlock:\t1: POSIX  ADVISORY  WRITE 48 fe:00:5 0 EOF\n";
        assert_eq!(parse_fdinfo(posix), Hold::default());
        assert_eq!(parse_fdinfo("pos:\t0\nflags:\t02\n"), Hold::default());
    }

    #[test]
    fn lock_table_names_flock_takers_of_the_inode_only() {
        let table = "1: POSIX  ADVISORY  WRITE 99 08:01:5678 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 4321 00:2f:5678 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 77 08:01:5678 0 EOF\n\
                     3: FLOCK  ADVISORY  READ 12 08:01:1234 0 EOF\n";
        assert_eq!(takers_in(table, 5678), vec![4321]);
        assert_eq!(takers_in(table, 1234), vec![12]);
        assert!(takers_in(table, 1).is_empty());
    }

    #[test]
    fn this_process_is_seen_holding_its_own_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held");
        let file = std::fs::File::create(&path).unwrap();
        let id = FileId::of(&rustix::fs::fstat(&file).unwrap());
        let me = std::process::id();
        assert_eq!(hold_of(me, id).unwrap(), Some(Hold::default()));
        assert!(try_lock(&file).unwrap());
        assert_eq!(hold_of(me, id).unwrap(), Some(Hold { writable_exclusive: true, ..Hold::default() }));
        assert!(lock_takers(id.ino).unwrap().contains(&me));
        assert_eq!(uid_of(me), Some(rustix::process::geteuid().as_raw()));
    }
}
