//! `pidfile run SERVICE [--exec] -- COMMAND [ARGS...]`: run a command as the one instance of a service.

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::time::{Duration, Instant};

use pidfiles::{Error, PidFile};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

use crate::args::RunArgs;
use crate::common::{Failure, Settings};

/// The signals a supervisor passes on to its command.
pub const FORWARDED: [i32; 6] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];

pub fn run(settings: &Settings, args: &RunArgs) -> Result<u8, Failure> {
    let (service, exec, command) = (args.service.as_str(), args.exec, args.command.as_slice());
    let path = settings.path(service)?;
    // This process's own signal handling (forwarding, or none after exec) replaces the library's handlers.
    let mut guard = match PidFile::builder().signal_handlers(false).acquire(&path) {
        Ok(guard) => guard,
        Err(Error::AlreadyRunning { pid, .. }) => {
            let pid = pid.map_or_else(|| "pid unknown".to_owned(), |pid| format!("pid {pid}"));
            return Err(Failure::new(1, format!("{service} is already running ({pid}); not starting {}", command[0])));
        }
        Err(error) => return Err(error.into()),
    };
    // A duplicate of the locked descriptor, without close-on-exec, carries the lock into the command.
    let inherited = rustix::io::dup(&guard)
        .map_err(|error| Failure::new(1, format!("cannot pass on the lock of {}: {error}", path.display())))?;
    let mut program = Command::new(&command[0]);
    program.args(&command[1..]);

    if exec {
        let error = program.exec();
        drop(inherited);
        return Err(cannot_run(&command[0], &error));
    }

    let signals =
        Signals::new(FORWARDED).map_err(|error| Failure::new(1, format!("cannot handle signals: {error}")))?;
    let handle = signals.handle();
    let mut child = match program.spawn() {
        Ok(child) => child,
        Err(error) => return Err(cannot_run(&command[0], &error)),
    };
    drop(inherited);
    let child_pid = child.id();
    // Until it is reaped, the child's pid is its own; the pidfd keeps naming it after, so a signal that arrives
    // late cannot reach a process that took the pid over.
    let pidfd = rustix::process::Pid::from_raw(child_pid as i32)
        .and_then(|pid| rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok());
    guard.write_pid(child_pid)?;
    settings.say(&format!("{service} runs {} as pid {child_pid}", command[0]));

    let forwarder = std::thread::spawn(move || forward(signals, pidfd));
    let status = child.wait().map_err(|error| Failure::new(1, format!("cannot wait for {}: {error}", command[0])));
    handle.close();
    let _ = forwarder.join();
    // Processes the command started may still hold the lock it inherited: removing the file would let a second
    // instance start beside them, so it is left to those that outlive a short grace (a child of a shell that is
    // ending as well, say).
    if !release_after_grace(&mut guard)? {
        let holder = match pidfiles::status_at(&path) {
            Ok(pidfiles::Status::Unproven { holder: Some(holder), .. }) => holder.to_string(),
            _ => "a process".to_owned(),
        };
        eprintln!(
            "pidfile: {} exited, but {holder}, which it started, still holds the lock of {}: the pidfile is left to it",
            command[0],
            path.display()
        );
    }
    let status = status?;
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128u8.saturating_add(signal as u8),
        (None, None) => 1,
    };
    settings.say(&format!("{} exited with status {code}", command[0]));
    Ok(code)
}

/// How long the processes the command left holding the lock get to end along with it.
const HOLDERS_GRACE: Duration = Duration::from_millis(200);

/// Removes the pidfile once no process the command started holds its lock any more, waiting at most
/// [`HOLDERS_GRACE`]. Returns whether it was removed (otherwise it is left to them).
pub fn release_after_grace(guard: &mut PidFile) -> Result<bool, Failure> {
    let deadline = Instant::now() + HOLDERS_GRACE;
    loop {
        if guard.release_unless_shared()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Passes each signal this process receives on to the command, through its pidfd, until the handle is closed.
fn forward(mut signals: Signals, child: Option<std::os::fd::OwnedFd>) {
    let Some(child) = child else {
        return;
    };
    for signal in signals.forever() {
        if let Some(signal) = rustix::process::Signal::from_named_raw(signal) {
            // The command may have just exited; there is nothing more to do then.
            let _ = rustix::process::pidfd_send_signal(&child, signal);
        }
    }
}

/// The error for a command that could not be started: 127 when it was not found, 126 when it could not run.
pub fn cannot_run(program: &str, error: &io::Error) -> Failure {
    let code = if error.kind() == io::ErrorKind::NotFound { 127 } else { 126 };
    Failure::new(code, format!("cannot run {program}: {error}"))
}
