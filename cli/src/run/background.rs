//! `pidfile run --background`: a start that returns once the command is ready, and says whether it is.
//!
//! The command the caller runs starts itself again (`/proc/self/exe`, marked by an environment variable) as the
//! supervisor, with its standard input from /dev/null, its standard error to the log (or /dev/null) and its
//! standard output to one end of a socket pair. The supervisor leaves the caller's session, claims the pidfile (it
//! holds the lock, and passes it on to the command, as a foreground `run` does), starts the command, waits until it
//! is ready or gone, and writes one line back: `ready PID`, or `failed CODE MESSAGE`. The caller exits as that line
//! says. Every other descriptor the caller inherited is closed on the way (see `descriptors.rs`). So nothing of the
//! caller's is kept open by what stays running: an init script's `start | logger` ends.
//!
//! If the caller is killed while it waits, the supervisor carries on: the service starts, and the line it writes
//! is lost.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::notify::NotifySocket;
use super::{Supervised, claim, has_exited};
use crate::args::RunArgs;
use crate::common::{Failure, Settings, exit};

/// Set, to `1`, in the environment of the supervisor that a `--background` start runs (and in no other).
const SUPERVISOR: &str = "PIDFILE_INTERNAL_BACKGROUND_SUPERVISOR";

/// How long a command that is alive is given to be ready, unless `--ready-after` or `--notify` says.
const READY_AFTER: Duration = Duration::from_secs(1);
/// How long --notify waits for READY=1 unless --timeout says, as systemd's default start timeout.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(90);

/// How long a command that was not ready in time gets to end after SIGTERM, before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How often a start checks that the command still lives.
const POLL: Duration = Duration::from_millis(20);

/// Whether this process is the supervisor of a `--background` start, rather than the caller.
pub fn is_supervisor() -> bool {
    std::env::var_os(SUPERVISOR).is_some_and(|value| value == "1")
}

/// The caller's side: starts the supervisor, detached, and exits as it reports.
pub fn start(settings: &Settings, args: &RunArgs) -> Result<u8, Failure> {
    use pidfiles::PidConfig;
    // A bad name is a usage error here, before anything starts.
    settings.path(&args.service)?;
    let output = match &args.log {
        Some(log) => open_log(log)?,
        None => File::options()
            .write(true)
            .open("/dev/null")
            .map_err(|error| Failure::new(exit::FAILURE, format!("cannot open /dev/null: {error}")))?,
    };
    super::descriptors::close_inherited_on_exec()
        .map_err(|error| Failure::new(exit::FAILURE, format!("cannot close the inherited descriptors: {error}")))?;
    let (ours, theirs) = UnixStream::pair()
        .map_err(|error| Failure::new(exit::FAILURE, format!("cannot make a socket pair: {error}")))?;
    let mut supervisor = Command::new(this_program());
    // `--dir=DIR`, not `--dir DIR`: a value that starts with a hyphen is then not taken for an option.
    let mut dir = std::ffi::OsString::from("--dir=");
    dir.push(settings.config.pid_dir());
    supervisor
        .arg(dir)
        .arg(format!("--instance={}", settings.config.instance_name()))
        .args(settings.verbose.then_some("--verbose"))
        .args(["run", "--background"]);
    if args.notify {
        supervisor.args(["--notify", "--timeout", &millis(args.timeout.unwrap_or(NOTIFY_TIMEOUT))]);
    } else {
        supervisor.args(["--ready-after", &millis(args.ready_after.unwrap_or(READY_AFTER))]);
    }
    supervisor
        .arg(&args.service)
        .arg("--")
        .args(&args.command)
        .env(SUPERVISOR, "1")
        .stdin(Stdio::null())
        .stdout(OwnedFd::from(theirs))
        .stderr(output);
    let child = supervisor.spawn().map_err(|error| {
        Failure::new(exit::FAILURE, format!("cannot start the supervisor of {}: {error}", args.service))
    })?;
    // Our copy of the supervisor's end: without it, the line's end comes when the supervisor closes its own.
    drop(supervisor);
    let mut line = String::new();
    let read = BufReader::new(ours).read_line(&mut line);
    // Not waited for: it lives on, and is reaped by whoever inherits it when this process exits.
    drop(child);
    read.map_err(|error| {
        Failure::new(exit::FAILURE, format!("cannot read the report of the supervisor of {}: {error}", args.service))
    })?;
    let line = line.trim_end_matches('\n');
    if let Some(pid) = line.strip_prefix("ready ") {
        settings.say(&format!("{} runs {} as pid {pid}, ready", args.service, args.program()));
        return Ok(exit::SUCCESS);
    }
    if let Some((code, message)) = line.strip_prefix("failed ").and_then(|rest| rest.split_once(' ')) {
        return Err(Failure::new(code.parse().unwrap_or(exit::FAILURE), message));
    }
    Err(Failure::new(
        1,
        format!("the supervisor of {} ended without saying whether {} is ready", args.service, args.program()),
    ))
}

/// This program's file, by its name, so that the supervisor is `pidfile` to `ps` and `pgrep`, not `exe`; or, if
/// the file has been removed since it started, `/proc/self/exe`, which still names it.
fn this_program() -> std::path::PathBuf {
    std::env::current_exe().ok().filter(|path| path.is_file()).unwrap_or_else(|| "/proc/self/exe".into())
}

/// A duration as `--ready-after` and `--timeout` parse it.
fn millis(duration: Duration) -> String {
    format!("{}ms", duration.as_millis())
}

/// Opens the log for appending, creating it with mode 0640, and refusing a symbolic link in its place, a FIFO that
/// no process reads (opening it would wait for one), or a file another user may have planted.
fn open_log(path: &Path) -> Result<File, Failure> {
    let failed = |why: String| Failure::new(exit::FAILURE, format!("cannot open the log {}: {why}", path.display()));
    let log = File::options()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .map_err(|error| {
            failed(match rustix::io::Errno::from_io_error(&error) {
                Some(rustix::io::Errno::LOOP) => "it is a symbolic link, which is not followed".to_owned(),
                Some(rustix::io::Errno::NXIO) if is_fifo(path) => "it is a FIFO that no process reads".to_owned(),
                _ => error.to_string(),
            })
        })?;
    if let Some(owner) = planted_by(path, &log).map_err(|error| failed(error.to_string()))? {
        return Err(failed(format!("it belongs to uid {owner}, in a directory anyone can write to")));
    }
    // The command writes to it as to any output, waiting when a reader falls behind.
    let flags = rustix::fs::fcntl_getfl(&log).map_err(|error| failed(error.to_string()))?;
    rustix::fs::fcntl_setfl(&log, flags - rustix::fs::OFlags::NONBLOCK).map_err(|error| failed(error.to_string()))?;
    Ok(log)
}

/// The owner of the opened log, if another user may have planted it: it lies in a sticky directory anyone can
/// write to (as /tmp), and belongs neither to us nor to the directory's owner. The kernel refuses to open such a
/// file when `fs.protected_regular` is set; this refuses it where it is not.
fn planted_by(path: &Path, log: &File) -> rustix::io::Result<Option<u32>> {
    use rustix::fs::Mode;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let (file, dir) = (rustix::fs::fstat(log)?, rustix::fs::stat(dir)?);
    let dir_mode = Mode::from_raw_mode(dir.st_mode);
    let anyones = dir_mode.contains(Mode::SVTX | Mode::WOTH);
    let ours = file.st_uid == rustix::process::geteuid().as_raw() || file.st_uid == dir.st_uid;
    Ok((anyones && !ours).then_some(file.st_uid))
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_fifo())
}

/// The supervisor's side: detaches, starts the command, reports whether it got ready, and supervises it to the end.
pub fn supervise(settings: &Settings, args: &RunArgs) -> Result<u8, Failure> {
    let mut reporter = Reporter::from_stdout()?;
    match start_and_report(settings, args, &mut reporter) {
        Ok(code) => Ok(code),
        Err(failure) => {
            // Into the log first, so that it is there when the caller, told next, returns.
            crate::common::warn(&failure.message);
            reporter.send(&format!("failed {} {}", failure.code, failure.message));
            Ok(failure.code)
        }
    }
}

/// The line back to the caller, written once.
struct Reporter(Option<OwnedFd>);

impl Reporter {
    /// Takes over standard output, the caller's end of the line, and points standard output where standard error
    /// goes, so that nothing else keeps the line open.
    fn from_stdout() -> Result<Reporter, Failure> {
        let line = io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|error| Failure::new(exit::FAILURE, format!("cannot take the report line: {error}")))?;
        rustix::stdio::dup2_stdout(io::stderr())
            .map_err(|error| Failure::new(exit::FAILURE, format!("cannot redirect standard output: {error}")))?;
        Ok(Reporter(Some(line)))
    }

    /// Sends `line`, unless a line was sent already; a caller that has gone is no error (and no SIGPIPE).
    fn send(&mut self, line: &str) {
        let Some(socket) = self.0.take() else {
            return;
        };
        // One line, whatever the message names (a path may hold a newline).
        let line = format!("{}\n", line.replace('\n', "\\n"));
        let mut left = line.as_bytes();
        while !left.is_empty() {
            match rustix::net::send(&socket, left, rustix::net::SendFlags::NOSIGNAL) {
                Ok(sent) => left = &left[sent..],
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return,
            }
        }
    }
}

/// What became of the command first.
enum Readiness {
    Ready,
    Exited,
    TimedOut,
}

fn start_and_report(settings: &Settings, args: &RunArgs, reporter: &mut Reporter) -> Result<u8, Failure> {
    // Out of the caller's session and process group: no terminal to hang up on it, and the caller's Ctrl-C is not
    // ours. It cannot fail here: the caller started this process, which leads no group.
    rustix::process::setsid()
        .map_err(|error| Failure::new(exit::FAILURE, format!("cannot start a new session: {error}")))?;
    let (path, mut guard) = claim(settings, args)?;
    let name = &args.program();
    let notify =
        match args.notify {
            true => Some(NotifySocket::bind().map_err(|error| {
                Failure::new(exit::FAILURE, format!("cannot make the notification socket: {error}"))
            })?),
            false => None,
        };
    let mut program = Command::new(&args.command[0]);
    program.args(&args.command[1..]).env_remove(SUPERVISOR).stdin(Stdio::null()).stdout(output()?).stderr(output()?);
    if let Some(socket) = &notify {
        program.env("NOTIFY_SOCKET", socket.path());
    }
    let mut supervised = Supervised::start(settings, args, &mut guard, &path, program)?;
    let limit =
        if args.notify { args.timeout.unwrap_or(NOTIFY_TIMEOUT) } else { args.ready_after.unwrap_or(READY_AFTER) };
    let readiness = await_readiness(&supervised.child, notify.as_ref(), limit);
    match readiness {
        Ok(Readiness::Ready) => {
            let pid = supervised.pid();
            reporter.send(&format!("ready {pid}"));
            drop(notify);
            let code = supervised.finish(settings, &mut guard, &path)?;
            // No one waits for this status any more: the log is where it is told (--verbose told it already).
            if !settings.verbose {
                crate::common::warn(&format!("{}: {name} (pid {pid}) exited with status {code}", args.service));
            }
            Ok(code)
        }
        Ok(Readiness::Exited) => {
            let code = supervised.finish(settings, &mut guard, &path)?;
            Err(Failure::new(code.max(exit::FAILURE), format!("{name} exited with status {code} before it was ready")))
        }
        Ok(Readiness::TimedOut) => {
            stop(&mut supervised);
            let code = supervised.finish(settings, &mut guard, &path)?;
            let waited = humantime(args.timeout.unwrap_or(NOTIFY_TIMEOUT));
            Err(Failure::new(
                exit::FAILURE,
                format!("{name} did not say READY=1 within {waited}: stopped it (status {code})"),
            ))
        }
        Err(error) => {
            stop(&mut supervised);
            let _ = supervised.finish(settings, &mut guard, &path);
            Err(Failure::new(exit::FAILURE, format!("cannot wait for {name} to be ready: {error}")))
        }
    }
}

/// A duplicate of standard error (the log, or /dev/null) for the command's output.
fn output() -> Result<Stdio, Failure> {
    let output = io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|error| Failure::new(exit::FAILURE, format!("cannot pass on the log: {error}")))?;
    Ok(Stdio::from(output))
}

/// Waits until the command is ready (it said so, or it lived for `limit` when there is no notification socket),
/// exited, or did not say it was ready within `limit`.
fn await_readiness(child: &Child, notify: Option<&NotifySocket>, limit: Duration) -> io::Result<Readiness> {
    let deadline = Instant::now() + limit;
    loop {
        if has_exited(child)? {
            // A READY=1 sent before the command exited counts, however soon after it the command exited: which of
            // the two the supervisor notices first is chance.
            let said_ready = match notify {
                Some(socket) => socket.said_ready()?,
                None => false,
            };
            return Ok(if said_ready { Readiness::Ready } else { Readiness::Exited });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(if notify.is_some() { Readiness::TimedOut } else { Readiness::Ready });
        }
        match notify {
            Some(socket) if socket.ready_within(left.min(POLL))? => return Ok(Readiness::Ready),
            Some(_) => {}
            None => std::thread::sleep(left.min(POLL)),
        }
    }
}

/// Stops a command that was not ready, as systemd does on a start's timeout: SIGTERM, then SIGKILL after
/// [`STOP_GRACE`].
fn stop(supervised: &mut Supervised) {
    supervised.send(rustix::process::Signal::TERM);
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if !matches!(has_exited(&supervised.child), Ok(false)) {
            return;
        }
        std::thread::sleep(POLL);
    }
    supervised.send(rustix::process::Signal::KILL);
}

/// A duration for a message: `90s`, `1.5s`, `250ms`.
fn humantime(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{}s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_passed_on_as_they_parse() {
        for duration in [Duration::ZERO, Duration::from_millis(1500), Duration::from_secs(90)] {
            assert_eq!(crate::common::parse_duration(&millis(duration)), Ok(duration));
        }
        assert_eq!(humantime(Duration::from_secs(90)), "90s");
        assert_eq!(humantime(Duration::from_millis(1500)), "1.5s");
        assert_eq!(humantime(Duration::from_millis(250)), "250ms");
    }

    /// Starts `true` and waits until it has exited, unreaped, as a command the supervisor has not looked at yet.
    fn exited_command() -> Child {
        let child = Command::new("true").spawn().unwrap();
        let stat = format!("/proc/{}/stat", child.id());
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&stat).unwrap().rsplit_once(") ").unwrap().1.starts_with('Z') {
            assert!(Instant::now() < deadline, "true did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
        child
    }

    #[test]
    fn a_ready_sent_before_the_command_exited_counts_though_the_exit_is_seen_first() {
        let socket = NotifySocket::bind().unwrap();
        std::os::unix::net::UnixDatagram::unbound().unwrap().send_to(b"READY=1", socket.path()).unwrap();
        let child = exited_command();
        let readiness = await_readiness(&child, Some(&socket), Duration::from_secs(60)).unwrap();
        assert!(matches!(readiness, Readiness::Ready));
        let mut child = child;
        child.wait().unwrap();
    }

    #[test]
    fn a_command_that_exited_without_ready_exited() {
        let socket = NotifySocket::bind().unwrap();
        std::os::unix::net::UnixDatagram::unbound().unwrap().send_to(b"STATUS=starting", socket.path()).unwrap();
        let child = exited_command();
        let readiness = await_readiness(&child, Some(&socket), Duration::from_secs(60)).unwrap();
        assert!(matches!(readiness, Readiness::Exited));
        let mut child = child;
        child.wait().unwrap();
    }
}
