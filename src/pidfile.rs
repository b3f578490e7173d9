//! [`PidFile`], the guard that owns a locked pidfile for its lifetime.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::cleanup::{self, Registration};
use crate::lock::{self, Claimed};
use crate::sys::{FileId, holders};
use crate::{Error, remove, sys};

/// A pidfile held by this process: locked, holding our pid, and removed when the guard is dropped.
///
/// While the guard lives, the file's `flock` lock is held, so no other process following the protocol (this crate,
/// BSD pidfile(3), `flock -n`) can claim it, and every reader can tell that the service runs.
///
/// ```
/// use pidfiles::{Error, PidFile};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("worker.pid");
///
/// let guard = PidFile::acquire(&path)?;
/// assert_eq!(std::fs::read_to_string(&path)?, format!("{}\n", std::process::id()));
///
/// // A second claim, even from this same process, finds it held.
/// match PidFile::acquire(&path) {
///     Err(Error::AlreadyRunning { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
///     other => panic!("expected AlreadyRunning, got {other:?}"),
/// }
///
/// drop(guard);
/// assert!(!path.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # When the file is removed
///
/// - When the guard is dropped or [`release`](PidFile::release)d.
/// - At normal process exit (`std::process::exit`, or returning from `main` while the guard is still held, for
///   instance in a static), by an `atexit` hook.
/// - On SIGINT and SIGTERM, unless [`Builder::signal_handlers`] turned that off: the handler removes the file and
///   the process then dies of the signal, as it would have by default.
///
/// Only the process that claimed the file removes it: a forked child that drops its copy of the guard, or exits,
/// leaves it alone. And only while the path still names the file that was locked: a file someone else put there
/// since is never removed.
///
/// # What it cannot do
///
/// Nothing runs on SIGKILL, on a crash, with `panic = "abort"`, or on power loss: the file then stays. It does not
/// block the next start: its lock died with the process, so the next claim finds it stale and takes it over.
///
/// A guard tells a forked child from its parent by a pid cached per fork, kept up to date by a `pthread_atfork`
/// hook (so that a drop costs no `getpid`). A child made by a raw `fork` or `clone` system call, which bypasses
/// the C library and its fork hooks, must not drop a copy of the guard: it would take itself for the owner. The
/// exit hook and the signal handlers ask the kernel for the pid, and are safe there.
#[derive(Debug)]
#[must_use = "the pidfile is removed as soon as the guard is dropped"]
pub struct PidFile {
    claimed: Claimed,
    c_path: CString,
    pid: u32,
    /// The process that claimed the file, the only one that may remove it (not a forked child).
    owner: u32,
    registration: Option<Registration>,
    removed: bool,
    /// The lock was left to the processes that share its description (see `release_unless_shared`).
    handed_over: bool,
}

/// Options for claiming a pidfile: its permissions, and whether SIGINT and SIGTERM remove it.
#[derive(Debug, Clone)]
pub struct Builder {
    mode: u32,
    signal_handlers: bool,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder { mode: 0o644, signal_handlers: true }
    }
}

impl Builder {
    /// The permissions of a newly created pidfile, less the umask. The default, `0o644`, lets every user read the
    /// pid, as monitoring needs.
    pub fn mode(mut self, mode: u32) -> Builder {
        self.mode = mode;
        self
    }

    /// Whether to install SIGINT and SIGTERM handlers that remove the pidfile before the process dies of the
    /// signal (the default: `true`).
    ///
    /// The handlers are installed once per process, only after a successful claim: a failed claim leaves every
    /// signal disposition as it was. A signal the process was started ignoring stays ignored.
    ///
    /// Turn them off when the application handles these signals itself (to shut down gracefully, say): the
    /// handler would otherwise end the process as soon as the signal arrives. The application then removes the
    /// file on its own shutdown path, by dropping the guard or calling [`crate::remove_pidfile`]:
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// let path = pidfiles::pidfile_path("worker")?;
    /// let guard = pidfiles::PidFile::builder().signal_handlers(false).acquire(&path)?;
    ///
    /// let stop = Arc::new(AtomicBool::new(false));
    /// signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))?;
    /// while !stop.load(Ordering::Relaxed) {
    ///     // ... serve ...
    /// #   break;
    /// }
    /// drop(guard); // removes the pidfile
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn signal_handlers(mut self, install: bool) -> Builder {
        self.signal_handlers = install;
        self
    }

    /// Claims the pidfile at `path` for this process. See [`PidFile::acquire`].
    pub fn acquire(&self, path: impl AsRef<Path>) -> Result<PidFile, Error> {
        let pid = sys::current_pid();
        let claimed = lock::claim(path.as_ref(), self.mode, pid)?;
        let c_path = sys::c_path(&claimed.path)?;
        let mut guard =
            PidFile { claimed, c_path, pid, owner: pid, registration: None, removed: false, handed_over: false };
        // On an error below, dropping the guard removes the file again.
        guard.registration = Some(cleanup::register(&guard.claimed.path, guard.claimed.id, pid)?);
        if self.signal_handlers {
            cleanup::install_signal_handlers(&guard.claimed.path)?;
        }
        Ok(guard)
    }
}

impl PidFile {
    /// Claims the pidfile at `path` for this process, with the default options (mode `0o644`, SIGINT and SIGTERM
    /// handlers installed).
    ///
    /// The file is created if missing, and taken over if stale (left by a process that died). Fails with
    /// [`Error::AlreadyRunning`] when another process holds it, naming that process's pid when the file does;
    /// with [`Error::NotAPidFile`] when a symbolic link, a directory, a FIFO or a hard-linked file stands at the
    /// path (left untouched); with [`Error::NoSuchDirectory`] when the directory is missing; with
    /// [`Error::InsecureDirectory`] or [`Error::UntrustedDirectory`] in a directory that other users could
    /// rename the file out of; and with [`Error::Blocked`] when the file is locked in a way that does not prove a
    /// service runs (the lock keeps the claim out all the same, see [`crate::Doubt`]).
    pub fn acquire(path: impl AsRef<Path>) -> Result<PidFile, Error> {
        Builder::default().acquire(path)
    }

    /// Options for a claim.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The pidfile's path, made absolute when the claim was given a relative one.
    pub fn path(&self) -> &Path {
        &self.claimed.path
    }

    /// The pid written in the file: this process's pid at the time of the claim, or the one given to
    /// [`write_pid`](PidFile::write_pid) since.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Writes another pid into the file, which stays locked by this process: for a supervisor that holds the
    /// pidfile on behalf of the child it started, so that the file names the process that does the work.
    ///
    /// Readers accept a pid that is the lock holder's or a child of it at once; see [`crate::Status`].
    pub fn write_pid(&mut self, pid: u32) -> Result<(), Error> {
        if pid == 0 || pid > sys::MAX_PID {
            return Err(Error::InvalidName { what: "pid", name: pid.to_string(), reason: "it is not a process id" });
        }
        let stat = rustix::fs::fstat(&self.claimed.file).map_err(|error| Error::io("inspect", self.path(), error))?;
        lock::write_pid(&self.claimed.file, &stat, &self.claimed.path, pid)?;
        self.pid = pid;
        Ok(())
    }

    /// Removes the pidfile now and releases its lock, reporting what dropping the guard would silently ignore.
    pub fn release(mut self) -> Result<(), Error> {
        self.remove()
    }

    /// Removes the pidfile and lets its lock go, as [`release`](PidFile::release) does, unless another process
    /// still holds the lock through a descriptor inherited from this guard (a command a supervisor ran, or one of
    /// that command's processes): then the file is left to it, and `Ok(false)` returned.
    ///
    /// The answer is exact, whatever those processes are and whether their open files can be seen: this guard's
    /// descriptor is exchanged for a new, unlocked one on the same file, and the lock is taken again through it. A
    /// lock still held elsewhere means another process shares the description it was taken through (or a new claim
    /// has won in the instant between: the file is then rightly left to it too). From the first call on, this
    /// guard no longer holds the lock itself and no longer removes the file at exit or on a signal; call again (a
    /// supervisor gives the processes its command leaves behind a moment to end) to remove the file once they are
    /// gone.
    pub fn release_unless_shared(&mut self) -> Result<bool, Error> {
        if self.removed {
            return Ok(true);
        }
        if !self.handed_over {
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
            let second = match rustix::fs::openat(rustix::fs::CWD, &*self.c_path, flags, Mode::empty()) {
                Ok(second) => second,
                // What we claimed is gone from the path: there is nothing of ours left to remove.
                Err(Errno::NOENT) => return self.remove().map(|()| true),
                Err(error) => return Err(Error::io("open", &self.claimed.path, error)),
            };
            let stat = rustix::fs::fstat(&second).map_err(|error| Error::io("inspect", &self.claimed.path, error))?;
            if FileId::of(&stat) != self.claimed.id {
                return self.remove().map(|()| true);
            }
            if let Some(registration) = self.registration.take() {
                cleanup::unregister(registration);
            }
            // Closing ours lets the lock go unless another process shares the description it was taken through.
            drop(std::mem::replace(&mut self.claimed.file, second));
            self.handed_over = true;
        }
        if holders::try_lock(&self.claimed.file).map_err(|error| Error::io("lock", &self.claimed.path, error))? {
            self.handed_over = false;
            return self.remove().map(|()| true);
        }
        Ok(false)
    }

    /// Unlinks the file while its lock is still held (so no one can claim it between the two), then takes it out
    /// of the cleanup table; the lock goes when the descriptor closes, after this.
    fn remove(&mut self) -> Result<(), Error> {
        if std::mem::replace(&mut self.removed, true) {
            return Ok(());
        }
        let mut result = Ok(());
        // A guard whose lock was handed over holds no lock: the file is not ours to remove.
        if sys::current_pid() == self.owner && !self.handed_over {
            result = remove::unlink_held(&self.c_path, self.claimed.id)
                .map(drop)
                .map_err(|error| Error::io("remove", &self.claimed.path, error));
        }
        if let Some(registration) = self.registration.take() {
            cleanup::unregister(registration);
        }
        result
    }
}

impl AsFd for PidFile {
    /// The locked pidfile's descriptor (close-on-exec).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.claimed.file.as_fd()
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}
