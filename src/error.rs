//! The one error type of the crate.
//!
//! Every variant names the path, value or user it is about, so that a message printed as it is tells an operator
//! what to look at.

use std::io;
use std::path::PathBuf;

use crate::holder::{Doubt, Holder};

/// What went wrong, and where.
///
/// Messages are meant to be shown as they are: each one names the file, the value or the owner concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another process holds the pidfile: the service is already running.
    ///
    /// `pid` is the pid the pidfile names, when it could be read.
    #[error("PID file {} already exists. Already running?", path.display())]
    AlreadyRunning {
        /// The pidfile.
        path: PathBuf,
        /// The pid of the process holding it, when the file names one.
        pid: Option<u32>,
    },

    /// The pidfile does not hold a pid: it is empty, holds something other than a decimal number, or names a pid
    /// that cannot exist (0, or above the largest pid Linux allows).
    #[error("PID file {} is corrupt: it holds {content:?}, not a process id", path.display())]
    Corrupt {
        /// The pidfile.
        path: PathBuf,
        /// What it holds, cut short when long.
        content: String,
    },

    /// A service or instance name that cannot be part of a pidfile's name.
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidName {
        /// Which name: `"service"` or `"instance"`.
        what: &'static str,
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// The directory meant to hold the pidfile does not exist. It is never created silently.
    #[error("pid directory {} does not exist", dir.display())]
    NoSuchDirectory {
        /// The missing directory.
        dir: PathBuf,
    },

    /// Something other than a plain regular file stands at the pidfile's path: a symbolic link, a FIFO, a
    /// directory, a device or a file with more than one name (a hard link). It is left exactly as it is.
    #[error("refusing {}: it is {found}, not a pidfile", path.display())]
    NotAPidFile {
        /// The path.
        path: PathBuf,
        /// What was found there, such as `"a symbolic link"`.
        found: String,
    },

    /// The pidfile belongs to another user and could not be replaced (the directory does not let us remove it).
    #[error("PID file {} belongs to user {uid}, not to us, and cannot be replaced", path.display())]
    ForeignOwner {
        /// The pidfile.
        path: PathBuf,
        /// The numeric user id of its owner.
        uid: u32,
    },

    /// The pidfile is locked by a running process, so removing it would let a second instance start beside it.
    #[error("PID file {} is held by a running process{}; not removing it", path.display(), pid_suffix(*pid))]
    InUse {
        /// The pidfile.
        path: PathBuf,
        /// The pid of the process holding it, when the file names one.
        pid: Option<u32>,
    },

    /// The pid directory, or a directory on the way to it, may be written by other users (group- or
    /// world-writable) and lacks the sticky bit, so they could rename or delete the pidfile (or the directory) and
    /// start a second instance: no pidfile is claimed or removed there. (`/tmp` and `/var/tmp` have the sticky bit
    /// and are fine.)
    #[error(
        "refusing pid directory {} (owner: user {uid}): other users may write to it and it lacks the sticky bit, so anyone could replace the pidfiles under it",
        dir.display()
    )]
    InsecureDirectory {
        /// The directory at fault: the pid directory, or one on the way to it (symbolic links followed).
        dir: PathBuf,
        /// The numeric user id of its owner.
        uid: u32,
    },

    /// The pid directory, a directory on the way to it, or a symbolic link on the way, belongs to a user other
    /// than root and us, who could rename or delete the pidfile (or point the way elsewhere) and start a second
    /// instance: no pidfile is claimed there (nor removed, unless it is that user's own service directory).
    #[error(
        "refusing pid directory {}: it belongs to user {uid}, not to root or to us, so its owner could replace the pidfiles under it",
        dir.display()
    )]
    UntrustedDirectory {
        /// The directory or symbolic link at fault: the pid directory, or one on the way to it.
        dir: PathBuf,
        /// The numeric user id of its owner.
        uid: u32,
    },

    /// The pidfile is locked, but not in a way that proves its service runs (see [`Doubt`]): another user's lock
    /// taken through a read-only descriptor, a shared lock, a lock passed on to a process that cannot be seen, or a
    /// planted file. The lock keeps the claim out all the same; nothing was written, removed or signalled.
    #[error("PID file {} is locked{} {doubt}: that proves nothing, and the file is left alone", path.display(), holder_suffix(*holder))]
    Blocked {
        /// The pidfile.
        path: PathBuf,
        /// The process found holding the lock, when one was.
        holder: Option<Holder>,
        /// Why the lock is no proof.
        doubt: Doubt,
    },

    /// The pidfile kept changing under us (removed or replaced every time it was locked); given up after many
    /// attempts.
    #[error("PID file {} kept being replaced while it was being claimed", path.display())]
    Unstable {
        /// The pidfile.
        path: PathBuf,
    },

    /// More pidfiles are held at once by this process than the cleanup table has room for.
    #[error("cannot register {} for cleanup: this process already holds {limit} pidfiles", path.display())]
    TooManyPidFiles {
        /// The pidfile that could not be registered.
        path: PathBuf,
        /// How many pidfiles a process may hold at once.
        limit: usize,
    },

    /// A configuration file could not be read or does not parse.
    #[error("configuration file {}{}: {message}", path.display(), line_suffix(*line))]
    ConfigFile {
        /// The configuration file.
        path: PathBuf,
        /// The line of the problem, when it has one (counted from 1).
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },

    /// `set_config` was called after the process-wide configuration was already in use or set.
    #[error("the process-wide pidfile configuration is already set; set_config must come before any use")]
    ConfigAlreadySet,

    /// A system call failed on a path.
    #[error("cannot {operation} {}: {source}", path.display())]
    Io {
        /// What was being done, such as `"open"` or `"write the pid to"`.
        operation: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The error from the system.
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(operation: &'static str, path: impl Into<PathBuf>, source: impl Into<io::Error>) -> Error {
        Error::Io {
            operation,
            path: path.into(),
            source: source.into(),
        }
    }
}

fn pid_suffix(pid: Option<u32>) -> String {
    pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
}

fn holder_suffix(holder: Option<Holder>) -> String {
    holder.map(|holder| format!(" by {holder}")).unwrap_or_default()
}

fn line_suffix(line: Option<usize>) -> String {
    line.map(|line| format!(", line {line}")).unwrap_or_default()
}
