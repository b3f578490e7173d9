//! `pidfile stop SERVICE`: the two-stage kill, signalling only a process that the pidfile proves live.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::{Duration, Instant};

use pidfiles::Status;
use rustix::process::{Pid, PidfdFlags, Signal};

use crate::args::StopArgs;
use crate::common::{Failure, Settings, locked_by, signal_name};

/// How often the pidfile is looked at while waiting.
const POLL: Duration = Duration::from_millis(20);
/// How long to wait for a process to be gone after SIGKILL.
const AFTER_KILL: Duration = Duration::from_secs(5);

pub fn run(settings: &Settings, args: &StopArgs) -> Result<u8, Failure> {
    let StopArgs { ref service, signal, timeout, no_kill, .. } = *args;
    let service = service.as_str();
    let path = settings.path(service)?;
    // The proof rule refuses what start-stop-daemon refuses (a pidfile anyone may write, or another user's outside
    // that user's own service directory), and more: only a proven holder is signalled.
    let pid = match pidfiles::status_at(&path)? {
        Status::NotRunning => {
            settings.say(&format!("{service} is not running"));
            return Ok(0);
        }
        Status::Stale { .. } => {
            remove_if_stale(settings, service, &path)?;
            return Ok(0);
        }
        Status::Unproven { holder, doubt, .. } => {
            let locked = locked_by(holder, doubt);
            return Err(Failure::new(1, format!("{} is {locked}: not signalling anything", path.display())));
        }
        Status::Running { pid: None, .. } => {
            return Err(Failure::new(
                1,
                format!("{} is locked but does not name a pid: not signalling anything", path.display()),
            ));
        }
        Status::Running { pid: Some(pid), locked: false } => {
            return Err(Failure::new(
                1,
                format!(
                    "{} is not locked: nothing proves that pid {pid} is {service} (a tool that does not lock wrote it, or the process closed the pidfile); not signalling it",
                    path.display()
                ),
            ));
        }
        Status::Running { pid: Some(pid), locked: true } => pid,
    };
    if pid == 1 || pid == std::process::id() {
        return Err(Failure::new(1, format!("refusing to signal pid {pid}, named by {}", path.display())));
    }
    // The pidfd pins the process: if the pidfile still proves it the holder (or the holder's command) after the
    // pidfd was opened, the pidfd is that process, and a signal through it cannot reach a reused pid.
    let target = match Target::open(pid) {
        Ok(target) => target,
        Err(rustix::io::Errno::SRCH) => {
            settings.say(&format!("{service} (pid {pid}) stopped by itself"));
            return remove_if_stale(settings, service, &path).map(|()| 0);
        }
        Err(error) => {
            return Err(Failure::new(1, format!("cannot open a pidfd for pid {pid}: {error}; not signalling it")));
        }
    };
    if !still_running(&path, pid) {
        settings.say(&format!("{service} (pid {pid}) stopped by itself"));
        return remove_if_stale(settings, service, &path).map(|()| 0);
    }
    target.send(signal)?;
    settings.say(&format!("sent {} to {service} (pid {pid})", signal_name(signal)));
    if wait_until_gone(&path, pid, timeout) {
        remove_if_stale(settings, service, &path)?;
        settings.say(&format!("{service} stopped"));
        return Ok(0);
    }
    if no_kill {
        return Err(Failure::new(
            1,
            format!(
                "{service} (pid {pid}) is still running {timeout:?} after {}; not killed (--no-kill)",
                signal_name(signal)
            ),
        ));
    }
    target.send(signal_hook::consts::SIGKILL)?;
    settings.say(&format!("sent SIGKILL to {service} (pid {pid})"));
    if wait_until_gone(&path, pid, AFTER_KILL) {
        remove_if_stale(settings, service, &path)?;
        settings.say(&format!("{service} killed"));
        return Ok(0);
    }
    Err(Failure::new(1, format!("{service} (pid {pid}) is still running after SIGKILL")))
}

/// The process to signal, through a pidfd only: a plain `kill` by pid could reach a process that took the pid over.
struct Target {
    pid: u32,
    pidfd: OwnedFd,
}

impl Target {
    fn open(pid: u32) -> Result<Target, rustix::io::Errno> {
        let raw = Pid::from_raw(pid as i32).ok_or(rustix::io::Errno::SRCH)?;
        let pidfd = rustix::process::pidfd_open(raw, PidfdFlags::empty())?;
        Ok(Target { pid, pidfd })
    }

    fn send(&self, signal: i32) -> Result<(), Failure> {
        let name = signal_name(signal);
        let signal = Signal::from_named_raw(signal).ok_or_else(|| Failure::new(2, format!("cannot send {name}")))?;
        match rustix::process::pidfd_send_signal(&self.pidfd, signal) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(error) => Err(Failure::new(1, format!("cannot send {name} to pid {}: {error}", self.pid))),
        }
    }
}

/// Whether the pidfile still proves `pid` running.
fn still_running(path: &Path, pid: u32) -> bool {
    matches!(pidfiles::status_at(path), Ok(Status::Running { pid: Some(now), locked: true }) if now == pid)
}

/// Waits until the pidfile no longer shows `pid` running.
fn wait_until_gone(path: &Path, pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !still_running(path, pid) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

/// Removes the pidfile if what is left is stale (its process died without removing it). The removal happens
/// under the file's lock: a file that a new instance has claimed meanwhile is left to it, and one whose lock is
/// still held by a process that proves nothing (one the stopped process started, say) is a failure, named.
fn remove_if_stale(settings: &Settings, service: &str, path: &Path) -> Result<(), Failure> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    match pidfiles::remove_at(path) {
        Ok(()) => {
            settings.say(&format!("removed the stale pidfile of {service}, if any was left"));
            Ok(())
        }
        Err(pidfiles::Error::InUse { pid, .. }) => {
            let pid = pid.map_or_else(|| "pid unknown".to_owned(), |pid| format!("pid {pid}"));
            settings.say(&format!("{service} has started again ({pid}): its pidfile is left to it"));
            Ok(())
        }
        Err(pidfiles::Error::Blocked { holder, doubt, .. }) => {
            let locked = locked_by(holder, doubt);
            Err(Failure::new(1, format!("{service} stopped, but {} is still {locked}: not removed", path.display())))
        }
        // A service's own directory, of another user: the service is stopped, and its leftover file is its user's
        // to remove (we never remove pidfiles where another user could rename them).
        Err(error @ (pidfiles::Error::UntrustedDirectory { .. } | pidfiles::Error::InsecureDirectory { .. })) => {
            settings.say(&format!("{service} stopped; its stale pidfile is left: {error}"));
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}
