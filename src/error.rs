//! The one error type of the crate.
//!
//! Every variant names the path, value or user it is about, so that a message printed as it is tells an operator
//! what to look at.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::holder::{Doubt, Holder};

/// What went wrong, and where.
///
/// Messages are meant to be shown as they are: each one names the file, the value or the owner concerned.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Another process holds the pidfile: the service is already running.
    ///
    /// `pid` is the pid the pidfile names, when it could be read.
    AlreadyRunning {
        /// The pidfile.
        path: PathBuf,
        /// The pid of the process holding it, when the file names one.
        pid: Option<u32>,
    },

    /// The pidfile does not hold a pid: it is empty, holds something other than a decimal number, or names a pid
    /// that cannot exist (0, or above the largest pid Linux allows).
    Corrupt {
        /// The pidfile.
        path: PathBuf,
        /// What it holds, cut short when long.
        content: String,
    },

    /// A service or instance name that cannot be part of a pidfile's name.
    InvalidName {
        /// Which name: `"service"` or `"instance"`.
        what: &'static str,
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// The directory meant to hold the pidfile does not exist. It is never created silently.
    NoSuchDirectory {
        /// The missing directory.
        dir: PathBuf,
    },

    /// Something other than a plain regular file stands at the pidfile's path: a symbolic link, a FIFO, a
    /// directory, a device or a file with more than one name (a hard link). It is left exactly as it is.
    NotAPidFile {
        /// The path.
        path: PathBuf,
        /// What was found there, such as `"a symbolic link"`.
        found: String,
    },

    /// The pidfile belongs to another user and could not be replaced (the directory does not let us remove it).
    ForeignOwner {
        /// The pidfile.
        path: PathBuf,
        /// The numeric user id of its owner.
        uid: u32,
    },

    /// The pidfile is locked by a running process, so removing it would let a second instance start beside it.
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
    InsecureDirectory {
        /// The directory at fault: the pid directory, or one on the way to it (symbolic links followed).
        dir: PathBuf,
        /// The numeric user id of its owner.
        uid: u32,
    },

    /// The pid directory, a directory on the way to it, or a symbolic link on the way, belongs to a user other
    /// than root and us, who could rename or delete the pidfile (or point the way elsewhere) and start a second
    /// instance: no pidfile is claimed there (nor removed, unless it is that user's own service directory).
    UntrustedDirectory {
        /// The directory or symbolic link at fault: the pid directory, or one on the way to it.
        dir: PathBuf,
        /// The numeric user id of its owner.
        uid: u32,
    },

    /// The pidfile is locked, but not in a way that proves its service runs (see [`Doubt`]): another user's lock
    /// taken through a read-only descriptor, a shared lock, a lock passed on to a process that cannot be seen, or a
    /// planted file. The lock keeps the claim out all the same; nothing was written, removed or signalled.
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
    Unstable {
        /// The pidfile.
        path: PathBuf,
    },

    /// More pidfiles are held at once by this process than the cleanup table has room for.
    TooManyPidFiles {
        /// The pidfile that could not be registered.
        path: PathBuf,
        /// How many pidfiles a process may hold at once.
        limit: usize,
    },

    /// A configuration file could not be read, does not parse, or holds a key the library does not know.
    ConfigFile {
        /// The configuration file.
        path: PathBuf,
        /// The line of the problem, when it has one (counted from 1).
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },

    /// `set_config` was called after the process-wide configuration was already in use or set.
    ConfigAlreadySet,

    /// A system call failed on a path.
    Io {
        /// What was being done, such as `"open"` or `"write the pid to"`.
        operation: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The error from the system.
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(operation: &'static str, path: impl Into<PathBuf>, source: impl Into<io::Error>) -> Error {
        Error::Io { operation, path: path.into(), source: source.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AlreadyRunning { path, .. } => {
                write!(f, "PID file {} already exists. Already running?", path.display())
            }
            Error::Corrupt { path, content } => {
                write!(f, "PID file {} is corrupt: it holds {content:?}, not a process id", path.display())
            }
            Error::InvalidName { what, name, reason } => write!(f, "invalid {what} name {name:?}: {reason}"),
            Error::NoSuchDirectory { dir } => write!(f, "pid directory {} does not exist", dir.display()),
            Error::NotAPidFile { path, found } => {
                write!(f, "refusing {}: it is {found}, not a pidfile", path.display())
            }
            Error::ForeignOwner { path, uid } => {
                write!(f, "PID file {} belongs to user {uid}, not to us, and cannot be replaced", path.display())
            }
            Error::InUse { path, pid } => write!(
                f,
                "PID file {} is held by a running process{}; not removing it",
                path.display(),
                pid_suffix(*pid)
            ),
            Error::InsecureDirectory { dir, uid } => write!(
                f,
                "refusing pid directory {} (owner: user {uid}): other users may write to it and it lacks the sticky bit, so anyone could replace the pidfiles under it",
                dir.display()
            ),
            Error::UntrustedDirectory { dir, uid } => write!(
                f,
                "refusing pid directory {}: it belongs to user {uid}, not to root or to us, so its owner could replace the pidfiles under it",
                dir.display()
            ),
            Error::Blocked { path, holder, doubt } => write!(
                f,
                "PID file {} is locked{} {doubt}: that proves nothing, and the file is left alone",
                path.display(),
                holder_suffix(*holder)
            ),
            Error::Unstable { path } => {
                write!(f, "PID file {} kept being replaced while it was being claimed", path.display())
            }
            Error::TooManyPidFiles { path, limit } => {
                write!(f, "cannot register {} for cleanup: this process already holds {limit} pidfiles", path.display())
            }
            Error::ConfigFile { path, line, message } => {
                write!(f, "configuration file {}{}: {message}", path.display(), line_suffix(*line))
            }
            Error::ConfigAlreadySet => f.write_str(
                "the process-wide pidfile configuration is already set; set_config must come before any use",
            ),
            Error::Io { operation, path, source } => write!(f, "cannot {operation} {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
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
