//! Which pid directories can be trusted with a pidfile.
//!
//! A lock protects a file, not a name: whoever may rename or delete entries in the pidfile's directory, or in any
//! directory above it, can move a locked pidfile aside (or the whole directory, and put another in its place) and
//! let a second instance claim the name. So the way to the pid directory is walked from `/`, following symbolic
//! links as the kernel would, and every step must be one that only root and we control:
//!
//! - a directory belongs to root or to us, and if other users may write to it, it has the sticky bit (as `/tmp` and
//!   `/var/tmp` do), which keeps them from renaming or deleting entries they do not own;
//! - a symbolic link belongs to root or to us (in a sticky directory, its owner may point it elsewhere at any time).
//!
//! Claims and removals are refused anywhere else. Checks are not, but the proof of a lock trusts a file of another
//! user only in that user's own service directory: owned by the user, in a parent only root or we may write to
//! (`/run/www`, made by root for the user `www`). Its owner can rename what is in it, but only in it, and it cannot
//! have been planted by anyone else.

use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use rustix::fs::{FileType, Stat};

use crate::Error;

/// How many symbolic links a walk follows before giving up, as the kernel does (`ELOOP`).
const MAX_LINKS: usize = 40;

/// Refuses to claim or remove a pidfile at `path` when the way to its directory cannot be trusted, or does not
/// lead to a directory (a missing directory is [`Error::NoSuchDirectory`], naming it).
///
/// The verdict on a directory is kept for the life of the process when the way to it is stable: when no directory
/// or link on it sits in a directory that others may write to. Only root or we can then change the way, so later
/// claims cost no system call. A way through a shared directory (a directory of ours in `/var/tmp`, which root or a
/// cleaner may delete and anyone then make again) is walked again at every claim and removal.
pub(crate) fn check(path: &Path) -> Result<(), Error> {
    static STABLE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let dir = std::path::absolute(parent(path))
        .map_err(|error| Error::io("resolve the current directory for", path, error))?;
    let mut stable = STABLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if stable.contains(&dir) {
        return Ok(());
    }
    if walk(&dir)?.stable {
        stable.push(dir);
    }
    Ok(())
}

/// The user whose service directory `dir` is: its owner, when `dir` is reached by a trusted way and its parent may
/// be written only by root or us, so that no one else can have made it. `None` otherwise.
pub(crate) fn service_owner(dir: &Path) -> Option<u32> {
    let above = dir.parent()?;
    let above_stat = walk(above).ok()?.stat;
    if above_stat.st_mode & 0o022 != 0 {
        return None;
    }
    let stat = rustix::fs::lstat(dir).ok()?;
    (FileType::from_raw_mode(stat.st_mode) == FileType::Directory).then_some(stat.st_uid)
}

/// The directory of the pidfile at `path`.
pub(crate) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// A directory reached by a trusted way.
struct Walked {
    stat: Stat,
    /// No step of the way sits in a directory that others may write to.
    stable: bool,
}

/// Walks the way to `dir` from `/`, refusing the first step that someone other than root and us controls, and a
/// way that does not lead to a directory: the claim or removal that follows must find what was walked.
fn walk(dir: &Path) -> Result<Walked, Error> {
    let dir = std::path::absolute(dir).map_err(|error| Error::io("resolve the current directory for", dir, error))?;
    let me = rustix::process::geteuid().as_raw();
    let missing = || Error::NoSuchDirectory { dir: dir.clone() };
    let mut here = PathBuf::from("/");
    let mut stat = rustix::fs::stat(&here).map_err(|error| Error::io("inspect", &here, error))?;
    trusted_directory(&here, &stat, me)?;
    let mut stable = true;
    let mut pending: Vec<PathBuf> = components_reversed(&dir);
    let mut links = 0;
    while let Some(step) = pending.pop() {
        if step == Path::new("..") {
            here.pop();
            stat = rustix::fs::stat(&here).map_err(|error| Error::io("inspect", &here, error))?;
            continue;
        }
        let next = here.join(&step);
        let found = match rustix::fs::lstat(&next) {
            Ok(found) => found,
            Err(rustix::io::Errno::NOENT) => return Err(missing()),
            Err(error) => return Err(Error::io("inspect", &next, error)),
        };
        // An entry of a directory others may write to can be deleted by root or a cleaner, then made again by anyone.
        stable &= stat.st_mode & 0o022 == 0;
        match FileType::from_raw_mode(found.st_mode) {
            FileType::Symlink => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Error::io("follow the symbolic links to", &dir, rustix::io::Errno::LOOP));
                }
                if found.st_uid != 0 && found.st_uid != me {
                    return Err(Error::UntrustedDirectory { dir: next, uid: found.st_uid });
                }
                let target =
                    std::fs::read_link(&next).map_err(|error| Error::io("read the symbolic link", &next, error))?;
                if target.is_absolute() {
                    here = PathBuf::from("/");
                    stat = rustix::fs::stat(&here).map_err(|error| Error::io("inspect", &here, error))?;
                }
                pending.extend(components_reversed(&target));
            }
            FileType::Directory => {
                trusted_directory(&next, &found, me)?;
                here = next;
                stat = found;
            }
            _ => {
                return Err(Error::io("reach the pid directory through", &next, rustix::io::Errno::NOTDIR));
            }
        }
    }
    Ok(Walked { stat, stable })
}

/// The steps of `path` after its root, last first (so that popping gives them in order); `.` is dropped.
fn components_reversed(path: &Path) -> Vec<PathBuf> {
    let mut steps: Vec<PathBuf> = path
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(PathBuf::from(name)),
            Component::ParentDir => Some(PathBuf::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    steps.reverse();
    steps
}

/// Refuses a directory that someone other than root and us could rename entries of.
fn trusted_directory(dir: &Path, stat: &Stat, me: u32) -> Result<(), Error> {
    if stat.st_uid != 0 && stat.st_uid != me {
        return Err(Error::UntrustedDirectory { dir: dir.to_owned(), uid: stat.st_uid });
    }
    let others_write = stat.st_mode & 0o022 != 0;
    let sticky = stat.st_mode & 0o1000 != 0;
    if others_write && !sticky {
        return Err(Error::InsecureDirectory { dir: dir.to_owned(), uid: stat.st_uid });
    }
    Ok(())
}
