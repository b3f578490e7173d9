//! `pidfile run SERVICE [--exec | --background] -- COMMAND [ARGS...]`: run a command as the one instance of a
//! service.

mod background;
mod notify;
pub mod signals;

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pidfiles::{Error, PidFile};

use crate::args::RunArgs;
use crate::common::{Failure, Settings};

pub fn run(settings: &Settings, args: &RunArgs) -> Result<u8, Failure> {
    if args.background {
        return if background::is_supervisor() {
            background::supervise(settings, args)
        } else {
            background::start(settings, args)
        };
    }
    let (path, mut guard) = claim(settings, args)?;
    let mut program = Command::new(&args.command[0]);
    program.args(&args.command[1..]);
    if args.exec {
        // A duplicate of the locked descriptor, without close-on-exec, carries the lock into the command.
        let inherited = inheritable_lock(&guard, &path)?;
        let error = program.exec();
        drop(inherited);
        return Err(cannot_run(&args.command[0], &error));
    }
    let supervised = Supervised::start(settings, args, &mut guard, &path, program)?;
    supervised.finish(settings, &mut guard, &path)
}

/// Claims the pidfile of the service, or says that it is already running.
fn claim(settings: &Settings, args: &RunArgs) -> Result<(PathBuf, PidFile), Failure> {
    let path = settings.path(&args.service)?;
    // This process's own signal handling (forwarding, or none after exec) replaces the library's handlers.
    match PidFile::builder().signal_handlers(false).acquire(&path) {
        Ok(guard) => Ok((path, guard)),
        Err(Error::AlreadyRunning { pid, .. }) => {
            let pid = pid.map_or_else(|| "pid unknown".to_owned(), |pid| format!("pid {pid}"));
            Err(Failure::new(
                1,
                format!("{} is already running ({pid}); not starting {}", args.service, args.command[0]),
            ))
        }
        Err(error) => Err(error.into()),
    }
}

/// A duplicate of the pidfile's locked descriptor that a command started now inherits.
fn inheritable_lock(guard: &PidFile, path: &Path) -> Result<OwnedFd, Failure> {
    rustix::io::dup(guard)
        .map_err(|error| Failure::new(1, format!("cannot pass on the lock of {}: {error}", path.display())))
}

/// A command started under the pidfile's lock, with the signals sent to this process passed on to it.
struct Supervised {
    child: Child,
    /// Names the command until this is dropped, even after it is reaped: a signal sent through it cannot reach a
    /// process that took the pid over.
    pidfd: Option<OwnedFd>,
    name: String,
    signals: signals::Handle,
    forwarder: JoinHandle<()>,
}

impl Supervised {
    /// Starts `program` holding the lock, writes its pid into the pidfile, and starts passing signals on to it.
    fn start(
        settings: &Settings,
        args: &RunArgs,
        guard: &mut PidFile,
        path: &Path,
        mut program: Command,
    ) -> Result<Supervised, Failure> {
        let name = args.command[0].clone();
        crate::reap_own_children();
        // Before the command starts, so that a signal sent as soon as it runs is passed on, not fatal to us.
        let signals = signals::Forwarder::register()?;
        let inherited = inheritable_lock(guard, path)?;
        let child = program.spawn().map_err(|error| cannot_run(&name, &error))?;
        drop(inherited);
        let child_pid = child.id();
        let pidfd = rustix::process::Pid::from_raw(child_pid as i32)
            .and_then(|pid| rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok());
        guard.write_pid(child_pid)?;
        settings.say(&format!("{} runs {name} as pid {child_pid}", args.service));
        let handle = signals.handle()?;
        let target = pidfd.as_ref().and_then(|pidfd| pidfd.try_clone().ok());
        let forwarder = std::thread::spawn(move || signals.forward(target, child_pid));
        Ok(Supervised { child, pidfd, name, signals: handle, forwarder })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the command, unless it has been reaped.
    fn send(&self, signal: rustix::process::Signal) {
        if let Some(pidfd) = &self.pidfd {
            // The command may have just exited; there is nothing more to do then.
            let _ = rustix::process::pidfd_send_signal(pidfd, signal);
        }
    }

    /// Waits for the command, removes the pidfile unless a process the command started holds its lock, and returns
    /// the command's status as an exit code.
    fn finish(mut self, settings: &Settings, guard: &mut PidFile, path: &Path) -> Result<u8, Failure> {
        let status =
            self.child.wait().map_err(|error| Failure::new(1, format!("cannot wait for {}: {error}", self.name)));
        self.signals.close();
        let _ = self.forwarder.join();
        // Processes the command started may still hold the lock it inherited: removing the file would let a second
        // instance start beside them, so it is left to those that outlive a short grace (a child of a shell that is
        // ending as well, say).
        if !release_after_grace(guard)? {
            let holder = match pidfiles::status_at(path) {
                Ok(pidfiles::Status::Unproven { holder: Some(holder), .. }) => holder.to_string(),
                _ => "a process".to_owned(),
            };
            eprintln!(
                "pidfile: {} exited, but {holder}, which it started, still holds the lock of {}: the pidfile is left to it",
                self.name,
                path.display()
            );
        }
        let code = exit_code(status?);
        settings.say(&format!("{} exited with status {code}", self.name));
        Ok(code)
    }
}

/// A command's status as this command's exit code: its own code, or 128+N if it died of signal N.
fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128u8.saturating_add(signal as u8),
        (None, None) => 1,
    }
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

/// The error for a command that could not be started: 127 when it was not found, 126 when it could not run.
pub fn cannot_run(program: &str, error: &io::Error) -> Failure {
    let code = if error.kind() == io::ErrorKind::NotFound { 127 } else { 126 };
    Failure::new(code, format!("cannot run {program}: {error}"))
}
