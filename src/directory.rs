//! Which pid directories can be trusted with a pidfile.
//!
//! A lock protects a file, not a name: whoever may rename or delete entries in the directory can move a locked
//! pidfile aside and let a second instance claim the name. So a directory is trusted only when no one but root and
//! us can do that: it belongs to root or to us, and if other users may write to it, it has the sticky bit (as
//! `/tmp` and `/var/tmp` do), which keeps them from renaming or deleting our files. A symbolic link is followed for
//! this check: what counts is the directory it leads to.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::Error;

/// Refuses to claim or remove a pidfile at `path` when its directory cannot be trusted.
///
/// A directory is checked at the first claim or removal in it; the answer is kept for the life of the process, so
/// later claims cost no system call. A missing directory passes here, and is reported by the open, naming it.
pub(crate) fn check(path: &Path) -> Result<(), Error> {
    static TRUSTED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let dir = match path.parent() {
        Some(dir) if dir.as_os_str().is_empty() => Path::new("."),
        Some(dir) => dir,
        None => return Ok(()),
    };
    let mut trusted = TRUSTED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if trusted.iter().any(|known| known == dir) {
        return Ok(());
    }
    let Ok(stat) = rustix::fs::stat(dir) else {
        return Ok(());
    };
    let me = rustix::process::geteuid().as_raw();
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
    trusted.push(dir.to_owned());
    Ok(())
}
