//! `pidfile run SERVICE [--exec | --background] -- COMMAND [ARGS...]`: run a command as the one instance of a
//! service.

mod background;
mod descriptors;
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
use rustix::process::{Pid, WaitId, WaitIdOptions};

use crate::args::RunArgs;
use crate::common::{Failure, Settings, exit};

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
        return Err(cannot_run(&args.program(), &error));
    }
    let supervised = Supervised::start(settings, args, &mut guard, &path, program)?;
    supervised.finish(settings, &mut guard, &path)
}

/// Claims the pidfile of the service, or says that it is already running.
fn claim(settings: &Settings, args: &RunArgs) -> Result<(PathBuf, PidFile), Failure> {
    let path = settings.path(&args.service)?;
    let guard = claim_at(&path, args)?;
    Ok((path, guard))
}

/// Claims the pidfile at `path` for the service, or says that it is already running.
pub(crate) fn claim_at(path: &Path, args: &RunArgs) -> Result<PidFile, Failure> {
    // This process's own signal handling (forwarding, or none after exec) replaces the library's handlers.
    match PidFile::builder().signal_handlers(false).acquire(path) {
        Ok(guard) => Ok(guard),
        Err(Error::AlreadyRunning { pid, .. }) => {
            let pid = pid.map_or_else(|| "pid unknown".to_owned(), |pid| format!("pid {pid}"));
            Err(Failure::new(
                1,
                format!("{} is already running ({pid}); not starting {}", args.service, args.program()),
            ))
        }
        Err(error) => Err(error.into()),
    }
}

/// A duplicate of the pidfile's locked descriptor that a command started now inherits.
pub(crate) fn inheritable_lock(guard: &PidFile, path: &Path) -> Result<OwnedFd, Failure> {
    rustix::io::dup(guard)
        .map_err(|error| Failure::new(exit::FAILURE, format!("cannot pass on the lock of {}: {error}", path.display())))
}

/// How the command is signalled: through its pidfd, or by its pid where the kernel opens no pidfd (before Linux
/// 5.3). A pid is as safe here: the command is this process's child, so its pid stays its own, even after it
/// exits, until it is reaped, and it is reaped only once nothing sends it signals any more (see
/// [`Supervised::finish`]; the waits before that leave it unreaped).
pub(crate) enum Target {
    Pidfd(OwnedFd),
    Pid(Pid),
}

impl Target {
    fn of(pid: Pid) -> Target {
        match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
            Ok(pidfd) => Target::Pidfd(pidfd),
            Err(_) => Target::Pid(pid),
        }
    }

    fn try_clone(&self) -> io::Result<Target> {
        Ok(match self {
            Target::Pidfd(pidfd) => Target::Pidfd(pidfd.try_clone()?),
            Target::Pid(pid) => Target::Pid(*pid),
        })
    }

    /// Sends `signal`; the command may have just exited, and there is nothing more to do then.
    fn send(&self, signal: rustix::process::Signal) {
        let _ = match self {
            Target::Pidfd(pidfd) => rustix::process::pidfd_send_signal(pidfd, signal),
            Target::Pid(pid) => rustix::process::kill_process(*pid, signal),
        };
    }
}

/// Whether the command has exited, without reaping it (its pid stays its own).
fn has_exited(child: &Child) -> io::Result<bool> {
    let pid = pid_of(child)?;
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    loop {
        match rustix::process::waitid(WaitId::Pid(pid), options) {
            Ok(status) => return Ok(status.is_some()),
            Err(rustix::io::Errno::INTR) => {}
            Err(error) => return Err(error.into()),
        }
    }
}

fn pid_of(child: &Child) -> io::Result<Pid> {
    Pid::from_raw(child.id() as i32).ok_or_else(|| io::Error::other(format!("no such pid: {}", child.id())))
}

/// A command started under the pidfile's lock, with the signals sent to this process passed on to it.
struct Supervised {
    child: Child,
    target: Target,
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
        let name = args.program();
        crate::reap_own_children();
        // Before the command starts, so that a signal sent as soon as it runs is passed on, not fatal to us.
        let signals = signals::Forwarder::register()?;
        let inherited = inheritable_lock(guard, path)?;
        let child = program.spawn().map_err(|error| cannot_run(&name, &error))?;
        drop(inherited);
        let child_pid = child.id();
        let failed = |error: io::Error| Failure::new(exit::FAILURE, format!("cannot supervise {name}: {error}"));
        let target = Target::of(pid_of(&child).map_err(failed)?);
        guard.write_pid(child_pid)?;
        settings.say(&format!("{} runs {name} as pid {child_pid}", args.service));
        let handle = signals.handle()?;
        let forwarded = target.try_clone().map_err(failed)?;
        let forwarder = std::thread::spawn(move || signals.forward(forwarded, child_pid));
        Ok(Supervised { child, target, name, signals: handle, forwarder })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the command.
    fn send(&self, signal: rustix::process::Signal) {
        self.target.send(signal);
    }

    /// Waits for the command, removes the pidfile unless a process the command started holds its lock, and returns
    /// the command's status as an exit code.
    fn finish(mut self, settings: &Settings, guard: &mut PidFile, path: &Path) -> Result<u8, Failure> {
        // Reaped only once the forwarder, which may signal it by pid, has stopped.
        await_exit_reaping_orphans(self.child.id());
        self.signals.close();
        let _ = self.forwarder.join();
        let status = self
            .child
            .wait()
            .map_err(|error| Failure::new(exit::FAILURE, format!("cannot wait for {}: {error}", self.name)));
        release_or_leave(guard, path, &self.name)?;
        let code = exit_code(status?);
        settings.say(&format!("{} exited with status {code}", self.name));
        Ok(code)
    }
}

/// Waits until the command `command` has ended, leaving it unreaped, and reaps every other child of this process
/// that ends meanwhile. A supervisor has no other child, unless it is the first process of a pid namespace (a
/// container's entry point): then the processes orphaned in the namespace become its children, and, unreaped,
/// would stay zombies, holding their pids, for as long as the command runs.
fn await_exit_reaping_orphans(command: u32) {
    loop {
        match next_ended_child() {
            Ok(pid) if pid == command => return,
            Ok(orphan) => {
                if let Some(orphan) = Pid::from_raw(orphan as i32) {
                    let _ = rustix::process::waitpid(Some(orphan), rustix::process::WaitOptions::NOHANG);
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            // No child left to wait for (the command was reaped already): nothing to wait for.
            Err(_) => return,
        }
    }
}

/// The pid of a child of this process that has ended, waiting for one, without reaping it.
// The gate: rustix's waitid does not say which child ended; libc's fills in a siginfo_t that does.
#[allow(unsafe_code)]
fn next_ended_child() -> rustix::io::Result<u32> {
    // SAFETY: an all-zero siginfo_t is a valid value of this plain C struct.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid writes into the siginfo_t it is given, which lives until it returns; WNOWAIT leaves the child
    // unreaped.
    let result = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOWAIT) };
    if result != 0 {
        return Err(rustix::io::Errno::from_io_error(&io::Error::last_os_error()).unwrap_or(rustix::io::Errno::CHILD));
    }
    // SAFETY: waitid filled in a child's change of state, for which the pid field is set (SIGCHLD's fields).
    Ok(unsafe { info.si_pid() } as u32)
}

/// A command's status as this command's exit code: its own code, or 128+N if it died of signal N.
pub(crate) fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128u8.saturating_add(signal as u8),
        (None, None) => exit::FAILURE,
    }
}

/// Removes the pidfile after the command `name` exited, unless processes it started still hold the lock it
/// inherited: removing the file would let a second instance start beside them, so it is left to those that outlive
/// a short grace (a child of a shell that is ending as well, say), and said so.
pub(crate) fn release_or_leave(guard: &mut PidFile, path: &Path, name: &str) -> Result<(), Failure> {
    if !release_after_grace(guard)? {
        let holder = match pidfiles::status_at(path) {
            Ok(pidfiles::Status::Unproven { holder: Some(holder), .. }) => holder.to_string(),
            _ => "a process".to_owned(),
        };
        crate::common::warn(&format!(
            "{name} exited, but {holder}, which it started, still holds the lock of {}: the pidfile is left to it",
            path.display()
        ));
    }
    Ok(())
}

/// How long the processes the command left holding the lock get to end along with it.
const HOLDERS_GRACE: Duration = Duration::from_millis(200);

/// Removes the pidfile once no process the command started holds its lock any more, waiting at most
/// [`HOLDERS_GRACE`]. Returns whether it was removed (otherwise it is left to them).
fn release_after_grace(guard: &mut PidFile) -> Result<bool, Failure> {
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
    let code = if error.kind() == io::ErrorKind::NotFound { exit::NOT_FOUND } else { exit::CANNOT_RUN };
    Failure::new(code, format!("cannot run {program}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_is_the_commands_or_128_plus_its_signal() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 128 + 15);
    }
}
