//! Pidfiles that let one, and only one, instance of a service run.
//!
//! A service calls [`make_pidfile`] at start-up to say "I am the one running instance of this service". The call
//! writes the process's pid to `{pid_dir}/{instance_name}-{service}.pid` and holds a kernel lock on the file for
//! the rest of the process's life; a second instance's call fails while the first runs. The file is removed when
//! the process exits normally or is stopped with SIGINT or SIGTERM, and a file left behind by SIGKILL does not
//! block the next start. Scripts and monitoring read the file with [`get_pid`] and [`status`].
//!
//! Several instances of a deployment can run the same services on one machine, each with its own pidfiles: the
//! instance name, from the process-wide [configuration](config()) or a [`PidConfig`] of the application's own,
//! keeps them apart.
//!
//! # The story, in examples
//!
//! `pidfile_path` is the key to everything else: a service name, and the instance name and directory of the
//! configuration, make the pidfile's path.
//!
//! ```
//! use std::path::Path;
//! use pidfiles::{pidfile_path, pidfile_path_with, Config};
//!
//! let expected = Path::new(pidfiles::config().pid_dir())
//!     .join(format!("{}-nuts.pid", pidfiles::config().instance_name()));
//! assert_eq!(pidfile_path("nuts")?, expected);
//!
//! // An application can pass its own configuration instead.
//! let my_config = Config::new("/var/tmp", "blah");
//! assert_eq!(pidfile_path_with("beans", &my_config)?, Path::new("/var/tmp/blah-beans.pid"));
//! # use pidfiles::PidConfig;
//! # Ok::<(), pidfiles::Error>(())
//! ```
//!
//! `make_pidfile` writes the current pid to the pidfile, and keeps it until the process ends. A second claim,
//! while the first holder lives, fails with the original module's message.
//!
//! ```
//! use pidfiles::{get_pid_with, make_pidfile_with, remove_pidfile_with, Config, Error};
//!
//! let dir = tempfile::tempdir()?;
//! let config = Config::new(dir.path(), "demo");
//!
//! make_pidfile_with("nuts", &config)?;
//! assert_eq!(get_pid_with("nuts", &config)?, Some(std::process::id()));
//!
//! let second = make_pidfile_with("nuts", &config).unwrap_err();
//! let path = dir.path().join("demo-nuts.pid");
//! assert_eq!(second.to_string(), format!("PID file {} already exists. Already running?", path.display()));
//! assert!(matches!(second, Error::AlreadyRunning { pid: Some(pid), .. } if pid == std::process::id()));
//!
//! // Normally the file goes when the process exits; a service script can also remove it.
//! remove_pidfile_with("nuts", &config)?;
//! assert_eq!(get_pid_with("nuts", &config)?, None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `get_pid` returns the pid in the file, or `None` when there is no file. A file that does not hold a pid is an
//! error, naming the file and showing what it holds.
//!
//! ```
//! use pidfiles::{get_pid_with, Config, Error};
//!
//! let dir = tempfile::tempdir()?;
//! let config = Config::new(dir.path(), "blah");
//! let path = pidfiles::pidfile_path_with("beans", &config)?;
//!
//! std::fs::write(&path, "72\n")?;
//! assert_eq!(get_pid_with("beans", &config)?, Some(72));
//!
//! std::fs::write(&path, "seventy-two")?;
//! assert!(matches!(get_pid_with("beans", &config), Err(Error::Corrupt { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `remove_pidfile` removes the file only when it holds this process's pid; with a configuration passed in,
//! `remove_pidfile_with` removes it whatever pid it holds (but never while another process holds its lock: that
//! would let a second instance start beside the first). A missing file is not an error.
//!
//! ```
//! use pidfiles::{remove_pidfile_with, Config};
//!
//! let dir = tempfile::tempdir()?;
//! let config = Config::new(dir.path(), "blah");
//! let path = pidfiles::pidfile_path_with("pits", &config)?;
//!
//! std::fs::write(&path, format!("{}\n", std::process::id() + 1))?;
//! remove_pidfile_with("pits", &config)?;
//! assert!(!path.exists());
//! remove_pidfile_with("pits", &config)?; // already gone: nothing to do
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `status` says whether the service runs, and how that is known.
//!
//! ```
//! use pidfiles::{status_with, Config, PidFile, Status};
//!
//! let dir = tempfile::tempdir()?;
//! let config = Config::new(dir.path(), "demo");
//! assert_eq!(status_with("web", &config)?, Status::NotRunning);
//!
//! let guard = PidFile::acquire(pidfiles::pidfile_path_with("web", &config)?)?;
//! assert_eq!(status_with("web", &config)?, Status::Running { pid: Some(std::process::id()), locked: true });
//! drop(guard);
//! assert_eq!(status_with("web", &config)?, Status::NotRunning);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How a claim stays safe
//!
//! A pidfile is claimed by locking the file itself with `flock`, as BSD pidfile(3) and flock(1) do, so those tools
//! and ours see each other. The kernel gives the lock to one process only, so of any number of processes starting
//! at once, exactly one wins; a lock dies with its process, so a file left by a crash is known to be stale and is
//! taken over in place, without a window where two could win. The path is opened without following symbolic
//! links, and a file that is not a plain regular file with one name is refused and left alone. A pidfile is
//! deleted only while this process holds its lock, so a removal can never delete a file that a claim has just
//! taken over.
//!
//! # What proves that a service runs
//!
//! Anyone who may read a pidfile may also lock it, so a lock alone proves nothing. A lock counts as proof only when
//! a live process holds it exclusively through a descriptor open for writing (which a user who may only read the file
//! cannot have), the file names that process or a child of it, and the file belongs to root, to us or to the owner of
//! its directory; the process's open files in `/proc` show it. Any other lock ([`Doubt`]) keeps a claim out all the
//! same, but is reported for what it is: [`Status::Unproven`] from a check, [`Error::Blocked`] from a claim or a
//! removal, naming the process holding it when it can be found. Proving another user's process requires root (or that
//! user).
//!
//! The pid inside a file that nobody has locked (written by a tool that does not lock) is believed only if the file
//! belongs to us or to root, the process lives, it started before the file was written, so a reused pid does not fool
//! it, and it is no kernel thread, which no pidfile names (a file written in another pid namespace does: 2, the pid of
//! a container's second process, is the kernel's kthreadd on the host). See [`PidFile`] for when the file is removed,
//! and what cannot be guaranteed.
//!
//! # Applications with their own signal handling
//!
//! [`make_pidfile`] installs SIGINT and SIGTERM handlers that remove the file, then let the process die of the
//! signal. An application that handles these signals itself claims its pidfile with
//! [`PidFile::builder`]`().signal_handlers(false)` instead, and removes the file on its own shutdown path: by
//! dropping the guard, or by calling [`remove_pidfile`], as the original module advises. See
//! [`Builder::signal_handlers`].
//!
//! # The `config-file` feature
//!
//! The feature `config-file`, on by default, reads the TOML configuration file named by `PIDFILE_CONFIG` (or
//! given to [`Config::resolve`]) with `toml` and `serde`. Without it (`default-features = false`) the crate builds
//! on `rustix`, `libc` and `signal-hook` alone, with no procedural macro; the environment variables and
//! [`set_config`] still configure it, and naming a configuration file is an [`Error::ConfigFile`] that names the
//! file and says the feature is off, never silently ignored.
//!
//! # Linux only
//!
//! The crate builds for Linux only: what proves a lock's holder (`/proc/PID/fd` and `/proc/PID/fdinfo`), process
//! start times (`/proc/PID/stat`) and `flock` as Linux reports it are Linux's, so on any other target compiling it
//! stops at one error that says so.

#![deny(missing_docs)]

// The crate is Linux's alone: on any other system this error is the only one, rather than the first of many from
// deep inside the crate, because every item below is compiled for Linux only.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "pidfiles supports Linux only: proving which process holds a pidfile's lock reads /proc/PID/fd and \
     /proc/PID/fdinfo, process start times come from /proc/PID/stat and CLOCK_BOOTTIME, and the claims rely on \
     flock(2) as Linux implements and reports it (each lock's holder found through fdinfo and /proc/locks)"
);

#[cfg(target_os = "linux")]
mod cleanup;
#[cfg(target_os = "linux")]
mod config;
#[cfg(target_os = "linux")]
mod directory;
#[cfg(target_os = "linux")]
mod error;
#[cfg(target_os = "linux")]
mod holder;
#[cfg(target_os = "linux")]
mod lock;
#[cfg(target_os = "linux")]
mod pidfile;
#[cfg(target_os = "linux")]
mod read;
#[cfg(target_os = "linux")]
mod remove;
#[cfg(target_os = "linux")]
mod sys;

#[cfg(target_os = "linux")]
use std::path::{Path, PathBuf};
#[cfg(target_os = "linux")]
use std::sync::Mutex;

#[cfg(target_os = "linux")]
pub use crate::config::{
    Config, DEFAULT_INSTANCE_NAME, DEFAULT_PID_DIR, PidConfig, config, pidfile_path_with, set_config, try_config,
};
#[cfg(target_os = "linux")]
pub use crate::error::Error;
#[cfg(target_os = "linux")]
pub use crate::holder::{Doubt, Holder};
#[cfg(target_os = "linux")]
pub use crate::pidfile::{Builder, PidFile};
#[cfg(target_os = "linux")]
pub use crate::read::{Status, parse_pid};

/// Entry points for the fuzz targets in `fuzz/`: not part of the API.
#[cfg(all(target_os = "linux", feature = "config-file"))]
#[doc(hidden)]
pub mod fuzzing {
    /// Parses the text of a configuration file as the one named by `PIDFILE_CONFIG` is parsed. An error carries
    /// the line it is about (from 1) when it has one.
    pub fn parse_config_text(text: &str) -> Result<(), (Option<usize>, String)> {
        crate::config::parse_config_file(text).map(drop)
    }
}

/// The pidfiles claimed by [`make_pidfile`], held until the process ends or [`remove_pidfile`] lets one go.
#[cfg(target_os = "linux")]
static CLAIMED: Mutex<Vec<PidFile>> = Mutex::new(Vec::new());

#[cfg(target_os = "linux")]
fn claimed() -> std::sync::MutexGuard<'static, Vec<PidFile>> {
    CLAIMED.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The pidfile path of `service` under the process-wide configuration: `{pid_dir}/{instance_name}-{service}.pid`.
#[cfg(target_os = "linux")]
pub fn pidfile_path(service: &str) -> Result<PathBuf, Error> {
    pidfile_path_with(service, try_config()?)
}

/// Claims the pidfile of `service` under the process-wide configuration for the rest of this process's life.
/// See [`make_pidfile_with`].
#[cfg(target_os = "linux")]
pub fn make_pidfile(service: &str) -> Result<(), Error> {
    make_pidfile_with(service, try_config()?)
}

/// Claims the pidfile of `service` under `config` for the rest of this process's life: writes this process's pid
/// to it, and holds its lock until the process exits.
///
/// The file is removed at normal exit and on SIGINT and SIGTERM, whose handlers are installed only when the claim
/// succeeds. Fails with [`Error::AlreadyRunning`] (the original module's "already exists. Already running?")
/// while another process, or this one, holds it. To claim without signal handlers, see [`PidFile::builder`].
#[cfg(target_os = "linux")]
pub fn make_pidfile_with(service: &str, config: &impl PidConfig) -> Result<(), Error> {
    let path = pidfile_path_with(service, config)?;
    let guard = PidFile::acquire(path)?;
    claimed().push(guard);
    Ok(())
}

/// The pid in the pidfile of `service` under the process-wide configuration. See [`get_pid_with`].
#[cfg(target_os = "linux")]
pub fn get_pid(service: &str) -> Result<Option<u32>, Error> {
    get_pid_with(service, try_config()?)
}

/// The pid in the pidfile of `service` under `config`, or `None` when there is no pidfile.
///
/// It does not say whether the process runs (see [`status_with`]): a file locked in a way that proves nothing
/// still gives its pid. A file that does not hold a pid is [`Error::Corrupt`]; one being written at this moment
/// (locked and still empty) is waited for at most 100 ms.
#[cfg(target_os = "linux")]
pub fn get_pid_with(service: &str, config: &impl PidConfig) -> Result<Option<u32>, Error> {
    read::get_pid_at(&pidfile_path_with(service, config)?)
}

/// Whether `service` runs, by its pidfile under the process-wide configuration. See [`status_with`].
#[cfg(target_os = "linux")]
pub fn status(service: &str) -> Result<Status, Error> {
    status_with(service, try_config()?)
}

/// Whether `service` runs, by its pidfile under `config`.
///
/// A lock proves its service runs only when it cannot have been forged (see [the crate's
/// rule](crate#what-proves-that-a-service-runs)); any other lock is [`Status::Unproven`]. An unlocked file counts
/// as running only when it was written by a tool that does not lock and the process it names still runs (see
/// [`Status::Running`]); otherwise it is stale. An unlocked file that does not hold a pid is [`Error::Corrupt`].
///
/// A check tries the file's lock for an instant to learn whether anyone holds it; a claim of this crate that meets
/// that instant waits for it, so a check never makes one of our starts fail. A locked file whose holder has not
/// written its pid yet is waited for at most 100 ms.
#[cfg(target_os = "linux")]
pub fn status_with(service: &str, config: &impl PidConfig) -> Result<Status, Error> {
    read::status_at(&pidfile_path_with(service, config)?)
}

/// Removes the pidfile of `service` under the process-wide configuration if it holds this process's pid; leaves
/// it otherwise. A missing file is not an error.
///
/// An application that installs its own SIGINT or SIGTERM handling calls this on its way out.
#[cfg(target_os = "linux")]
pub fn remove_pidfile(service: &str) -> Result<(), Error> {
    let path = pidfile_path(service)?;
    if let Some(guard) = take_claimed(&path) {
        return guard.release();
    }
    remove::remove_at(&path, remove::Policy::OwnPid(sys::current_pid()))
}

/// Removes the pidfile of `service` under `config`, whatever pid it holds. A missing file is not an error.
///
/// The file is removed only while this process holds its lock, so a removal can never delete a file that a claim
/// has taken over. A file locked by another process is refused with [`Error::InUse`] when the lock proves its
/// service runs (removing the file would let a second instance start beside it), and with [`Error::Blocked`] when
/// the lock proves nothing; either way nothing is touched. Anything other than a plain pidfile at the path (a
/// symbolic link, a directory) is refused and left alone, as is a directory that other users could rename the
/// file out of ([`Error::UntrustedDirectory`], [`Error::InsecureDirectory`]).
#[cfg(target_os = "linux")]
pub fn remove_pidfile_with(service: &str, config: &impl PidConfig) -> Result<(), Error> {
    let path = pidfile_path_with(service, config)?;
    if let Some(guard) = take_claimed(&path) {
        return guard.release();
    }
    remove::remove_at(&path, remove::Policy::Any)
}

/// Whether the service whose pidfile is at `path` runs: [`status_with`] for a path of the caller's choosing.
#[cfg(target_os = "linux")]
pub fn status_at(path: impl AsRef<Path>) -> Result<Status, Error> {
    read::status_at(path.as_ref())
}

/// The pid in the pidfile at `path`: [`get_pid_with`] for a path of the caller's choosing.
#[cfg(target_os = "linux")]
pub fn get_pid_at(path: impl AsRef<Path>) -> Result<Option<u32>, Error> {
    read::get_pid_at(path.as_ref())
}

/// Removes the pidfile at `path` if its service does not run; a missing file is not an error.
///
/// Like [`remove_pidfile_with`], it removes only under its own lock, and refuses a file locked by another process
/// ([`Error::InUse`], [`Error::Blocked`]). It also refuses, with [`Error::InUse`], an unlocked file whose live
/// process counts as running by the rule for files written by tools that do not lock (see [`Status::Running`]).
/// A file that holds no pid is removed: no process stands behind it.
#[cfg(target_os = "linux")]
pub fn remove_at(path: impl AsRef<Path>) -> Result<(), Error> {
    remove::remove_at(path.as_ref(), remove::Policy::Stale)
}

/// Takes a pidfile claimed by [`make_pidfile`] out of the process's keeping.
#[cfg(target_os = "linux")]
fn take_claimed(path: &Path) -> Option<PidFile> {
    let path = std::path::absolute(path).ok()?;
    let mut claimed = claimed();
    let index = claimed.iter().position(|guard| guard.path() == path)?;
    Some(claimed.swap_remove(index))
}
