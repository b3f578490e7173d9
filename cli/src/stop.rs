//! `pidfile stop SERVICE`: the two-stage kill, signalling only a process that the pidfile proves live.

use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use pidfile::Status;
use rustix::process::{Pid, PidfdFlags, Signal};

use crate::common::{Failure, Settings, signal_name};

/// How often the pidfile is looked at while waiting.
const POLL: Duration = Duration::from_millis(20);
/// How long to wait for a process to be gone after SIGKILL.
const AFTER_KILL: Duration = Duration::from_secs(5);

pub fn run(settings: &Settings, service: &str, signal: i32, timeout: Duration, no_kill: bool) -> Result<u8, Failure> {
    let path = settings.path(service)?;
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            settings.say(&format!("{service} is not running"));
            return Ok(0);
        }
        Err(error) => return Err(Failure::new(1, format!("cannot inspect {}: {error}", path.display()))),
    };
    // As start-stop-daemon does: a pidfile anyone could have written names nothing we may signal.
    if meta.file_type().is_file() && meta.mode() & 0o002 != 0 {
        return Err(Failure::new(
            1,
            format!(
                "refusing {}: it is world-writable, so anyone may have written its pid",
                path.display()
            ),
        ));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(Failure::new(
            1,
            format!(
                "refusing {}: it belongs to user {}, not to us or root",
                path.display(),
                meta.uid()
            ),
        ));
    }

    let pid = match pidfile::status_with(service, &settings.config)? {
        Status::NotRunning => {
            settings.say(&format!("{service} is not running"));
            return Ok(0);
        }
        Status::Stale { .. } => {
            remove_if_stale(settings, service)?;
            return Ok(0);
        }
        Status::Running { pid: None, .. } => {
            return Err(Failure::new(
                1,
                format!(
                    "{} is locked but does not name a pid: not signalling anything",
                    path.display()
                ),
            ));
        }
        Status::Running { pid: Some(pid), .. } => pid,
    };
    if pid == 1 || pid == std::process::id() {
        return Err(Failure::new(
            1,
            format!("refusing to signal pid {pid}, named by {}", path.display()),
        ));
    }
    let target = Target::open(pid);
    // The pidfd pins the process: if the pidfile still names it now, the signal cannot reach a reused pid.
    if !still_running(settings, service, pid) {
        settings.say(&format!("{service} (pid {pid}) stopped by itself"));
        return remove_if_stale(settings, service).map(|()| 0);
    }
    target.send(signal)?;
    settings.say(&format!("sent {} to {service} (pid {pid})", signal_name(signal)));
    if wait_until_gone(settings, service, pid, timeout) {
        remove_if_stale(settings, service)?;
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
    if wait_until_gone(settings, service, pid, AFTER_KILL) {
        remove_if_stale(settings, service)?;
        settings.say(&format!("{service} killed"));
        return Ok(0);
    }
    Err(Failure::new(
        1,
        format!("{service} (pid {pid}) is still running after SIGKILL"),
    ))
}

/// The process to signal: through a pidfd where the kernel offers one, by pid otherwise.
struct Target {
    pid: u32,
    pidfd: Option<OwnedFd>,
}

impl Target {
    fn open(pid: u32) -> Target {
        let pidfd =
            Pid::from_raw(pid as i32).and_then(|raw| rustix::process::pidfd_open(raw, PidfdFlags::empty()).ok());
        Target { pid, pidfd }
    }

    fn send(&self, signal: i32) -> Result<(), Failure> {
        let name = signal_name(signal);
        let signal = Signal::from_named_raw(signal).ok_or_else(|| Failure::new(2, format!("cannot send {name}")))?;
        let result = match (&self.pidfd, Pid::from_raw(self.pid as i32)) {
            (Some(pidfd), _) => rustix::process::pidfd_send_signal(pidfd, signal),
            (None, Some(pid)) => rustix::process::kill_process(pid, signal),
            (None, None) => return Ok(()),
        };
        match result {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(error) => Err(Failure::new(
                1,
                format!("cannot send {name} to pid {}: {error}", self.pid),
            )),
        }
    }
}

fn still_running(settings: &Settings, service: &str, pid: u32) -> bool {
    matches!(pidfile::status_with(service, &settings.config), Ok(Status::Running { pid: Some(now), .. }) if now == pid)
}

/// Waits until the pidfile no longer shows `pid` running.
fn wait_until_gone(settings: &Settings, service: &str, pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !still_running(settings, service, pid) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

/// Removes the pidfile if what is left is stale (its process died without removing it).
fn remove_if_stale(settings: &Settings, service: &str) -> Result<(), Failure> {
    if let Ok(Status::Stale { .. }) = pidfile::status_with(service, &settings.config) {
        pidfile::remove_pidfile_with(service, &settings.config)?;
        settings.say(&format!("removed the stale pidfile of {service}"));
    }
    Ok(())
}
