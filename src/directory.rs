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

/// How many symbolic links a walk follows before leaving the verdict to the open (which fails with `ELOOP`).
const MAX_LINKS: usize = 40;

/// Refuses to claim or remove a pidfile at `path` when the way to its directory cannot be trusted.
///
/// A directory is checked at the first claim or removal in it; the answer is kept for the life of the process, so later
/// claims cost no system call (every step of a trusted way is controlled by root or us, so it stays trusted). A
/// missing directory passes here, and is reported by the open, naming it.
pub(crate) fn check(path: &Path) -> Result<(), Error> {
    static TRUSTED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let dir = parent(path);
    let mut trusted = TRUSTED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if trusted.iter().any(|known| known == dir) {
        return Ok(());
    }
    if walk(dir)?.is_some() {
        trusted.push(dir.to_owned());
    }
    Ok(())
}

/// The user whose service directory `dir` is: its owner, when `dir` is reached by a trusted way and its parent may
/// be written only by root or us, so that no one else can have made it. `None` otherwise.
pub(crate) fn service_owner(dir: &Path) -> Option<u32> {
    let above = dir.parent()?;
    let above_stat = walk(above).ok()??;
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

/// Walks the way to `dir` from `/`, refusing the first step that someone other than root and us controls. Returns
/// the directory's `stat` when the whole way was walked, `None` when a step is missing or not a directory (the
/// open reports those).
fn walk(dir: &Path) -> Result<Option<Stat>, Error> {
    let Ok(dir) = std::path::absolute(dir) else {
        return Ok(None);
    };
    let me = rustix::process::geteuid().as_raw();
    let mut here = PathBuf::from("/");
    let mut stat = match rustix::fs::stat(&here) {
        Ok(stat) => stat,
        Err(_) => return Ok(None),
    };
    trusted_directory(&here, &stat, me)?;
    let mut pending: Vec<PathBuf> = components_reversed(&dir);
    let mut links = 0;
    while let Some(step) = pending.pop() {
        if step == Path::new("..") {
            here.pop();
            stat = match rustix::fs::stat(&here) {
                Ok(stat) => stat,
                Err(_) => return Ok(None),
            };
            continue;
        }
        let next = here.join(&step);
        let Ok(found) = rustix::fs::lstat(&next) else {
            return Ok(None);
        };
        match FileType::from_raw_mode(found.st_mode) {
            FileType::Symlink => {
                links += 1;
                if links > MAX_LINKS {
                    return Ok(None);
                }
                if found.st_uid != 0 && found.st_uid != me {
                    return Err(Error::UntrustedDirectory {
                        dir: next,
                        uid: found.st_uid,
                    });
                }
                let Ok(target) = std::fs::read_link(&next) else {
                    return Ok(None);
                };
                if target.is_absolute() {
                    here = PathBuf::from("/");
                }
                pending.extend(components_reversed(&target));
            }
            FileType::Directory => {
                trusted_directory(&next, &found, me)?;
                here = next;
                stat = found;
            }
            _ => return Ok(None),
        }
    }
    Ok(Some(stat))
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
        return Err(Error::UntrustedDirectory {
            dir: dir.to_owned(),
            uid: stat.st_uid,
        });
    }
    let others_write = stat.st_mode & 0o022 != 0;
    let sticky = stat.st_mode & 0o1000 != 0;
    if others_write && !sticky {
        return Err(Error::InsecureDirectory {
            dir: dir.to_owned(),
            uid: stat.st_uid,
        });
    }
    Ok(())
}
