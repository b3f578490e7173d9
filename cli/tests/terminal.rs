//! `pidfile run` in a terminal, a real pseudo-terminal: the command reads it, and each Ctrl-C, Ctrl-\ and hang-up
//! reaches the command once, as a signal sent to the supervisor does; under `run --cluster` as well, whose supervisor
//! passes signals on from the loop that watches the lease (those tests need etcd, in `PIDFILE_TEST_ETCD`).
//!
//! The command is a counter that logs one line per signal delivered to it (through Python's wakeup descriptor,
//! which gets one byte per delivery, where a handler's flag would merge two deliveries into one). After each
//! keystroke, the test sends SIGUSR1 to the supervisor, which passes it on: the signals are passed on in the order
//! they came, so once the counter logs SIGUSR1, a second copy of the keystroke's signal would have been logged
//! before it. No test sleeps to let a duplicate arrive. The kernel merges a signal into the same one still pending,
//! so a duplicate that comes before the first is delivered goes unseen: a regression may pass a run (the doubled
//! Ctrl-C was seen in every run tried, the doubled hang-up in 5 of 6), but a correct supervisor never fails one.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

// The helpers shared with the library's tests: waiting with a bound, liveness.
#[path = "../../tests/common/mod.rs"]
mod common;

use common::{eventually, process_lives, wait_for_value};

const BIN: &str = env!("CARGO_BIN_EXE_pidfile");

/// Logs `ready PID PPID`, then the name of each signal delivered to it, one line each; ends on SIGTERM.
const COUNTER: &str = r#"
import os, signal, sys
log = sys.argv[1]
def note(line):
    with open(log, "a") as file:
        file.write(line + "\n")
wakeup, woken = os.pipe()
os.set_blocking(woken, False)
for number in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1):
    signal.signal(number, lambda *_: None)
signal.set_wakeup_fd(woken, warn_on_full_buffer=False)
note("ready %d %d" % (os.getpid(), os.getppid()))
while True:
    for number in os.read(wakeup, 64):
        note(signal.Signals(number).name)
"#;

/// A directory for the test: the pidfiles, the counter and its log.
struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new() -> Place {
        let place = Place { dir: tempfile::tempdir().unwrap() };
        std::fs::write(place.counter(), COUNTER).unwrap();
        place
    }

    fn counter(&self) -> PathBuf {
        self.dir.path().join("counter.py")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("signals.log")
    }

    /// `pidfile run web -- COUNTER`, as arguments for a program that runs it.
    fn run_counter(&self) -> Vec<String> {
        self.run_counter_with(&[])
    }

    /// `pidfile OPTIONS run web -- COUNTER`.
    fn run_counter_with(&self, options: &[&str]) -> Vec<String> {
        let dir = self.dir.path().to_str().unwrap();
        let (counter, log) = (self.counter(), self.log());
        [BIN]
            .into_iter()
            .chain(options.iter().copied())
            .chain(["--dir", dir, "--instance", "t", "run", "web", "--", "python3"])
            .map(str::to_owned)
            .chain([counter.to_str().unwrap().to_owned(), log.to_str().unwrap().to_owned()])
            .collect()
    }

    /// The counter's log, less its first line: the signals it got, in order.
    fn signals(&self) -> Vec<String> {
        std::fs::read_to_string(self.log()).unwrap_or_default().lines().skip(1).map(str::to_owned).collect()
    }

    /// Waits until the counter runs: its pid and its parent's (the supervisor).
    fn counter_started(&self) -> (u32, u32) {
        wait_for_value(|| {
            let log = std::fs::read_to_string(self.log()).ok()?;
            let mut words = log.lines().next()?.strip_prefix("ready ")?.split(' ');
            Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
        })
    }

    /// Waits until the counter has logged `signal`, then returns everything it logged.
    fn after(&self, signal: &str) -> Vec<String> {
        eventually(&format!("the command gets {signal}"), || self.signals().iter().any(|line| line == signal));
        self.signals()
    }

    /// Marks the end of what a test provoked: sends SIGUSR1 to the supervisor and waits for the counter to log it.
    fn mark(&self, supervisor: u32) -> Vec<String> {
        kill(supervisor, libc_signal::USR1);
        self.after("SIGUSR1")
    }
}

/// Signal numbers, by name, for readability.
mod libc_signal {
    pub const INT: i32 = 2;
    pub const KILL: i32 = 9;
    pub const USR1: i32 = 10;
    pub const TERM: i32 = 15;
}

fn kill(pid: u32, signal: i32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::from_named_raw(signal).unwrap()).unwrap();
}

/// A pseudo-terminal: the test types into its master side, and hangs it up by closing it.
struct Terminal {
    master: File,
    slave: PathBuf,
}

impl Terminal {
    fn open() -> Terminal {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let slave = PathBuf::from(ptsname(&master, Vec::new()).unwrap().into_string().unwrap());
        Terminal { master: File::from(master), slave }
    }

    /// `program` leading a session of its own, this terminal as its controlling terminal and standard streams: a
    /// command run at a shell's prompt, as far as the terminal is concerned.
    fn session(&self, program: &[String]) -> Child {
        let open = || -> OwnedFd {
            use rustix::fs::{Mode, OFlags};
            rustix::fs::open(&self.slave, OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty()).unwrap()
        };
        // util-linux's setsid (Debian's util-linux is essential): the session's leader is `program` itself.
        Command::new("setsid")
            .arg("--ctty")
            .args(program)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::from(open()))
            .stdout(Stdio::from(open()))
            .stderr(Stdio::from(open()))
            .spawn()
            .expect("run setsid, from util-linux")
    }

    fn type_keys(&mut self, keys: &[u8]) {
        self.master.write_all(keys).unwrap();
    }

    /// Closes the master side: the kernel hangs up the terminal, sending SIGHUP to the session's leader.
    fn hang_up(self) {
        drop(self.master);
    }
}

/// A process the test started, killed (with the counter, when known) if the test ends before it does.
struct Started {
    child: Child,
    counter: Option<u32>,
}

impl Started {
    /// Waits, boundedly, for the process to end: its status.
    fn wait(&mut self) -> std::process::ExitStatus {
        wait_for_value(|| self.child.try_wait().unwrap())
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(counter) = self.counter.filter(|&pid| process_lives(pid)) {
            kill(counter, libc_signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ends the supervisor the usual way, SIGTERM passed on to the counter, and checks that it ended with it.
fn stop(mut started: Started, supervisor: u32, place: &Place) {
    kill(supervisor, libc_signal::TERM);
    if started.child.id() == supervisor {
        assert_eq!(started.wait().code(), Some(128 + 15), "the supervisor exits with the command's status");
    }
    eventually("the supervisor ends", || !process_lives(supervisor));
    assert!(!place.dir.path().join("t-web.pid").exists(), "the pidfile is removed");
}

fn in_a_terminal(keys: &[u8], signal: &str) {
    in_a_terminal_with(&[], keys, signal);
}

/// Types `keys` to `pidfile OPTIONS run web -- COUNTER` leading a session in a terminal: the counter gets `signal`,
/// once.
fn in_a_terminal_with(options: &[&str], keys: &[u8], signal: &str) {
    let place = Place::new();
    let mut terminal = Terminal::open();
    let mut started = Started { child: terminal.session(&place.run_counter_with(options)), counter: None };
    let (counter, supervisor) = place.counter_started();
    started.counter = Some(counter);
    assert_eq!(supervisor, started.child.id(), "the supervisor leads the session");
    terminal.type_keys(keys);
    assert_eq!(place.after(signal), [signal]);
    assert_eq!(place.mark(supervisor), [signal, "SIGUSR1"], "the key's signal came once");
    stop(started, supervisor, &place);
}

#[test]
fn ctrl_c_reaches_the_command_once() {
    in_a_terminal(b"\x03", "SIGINT");
}

#[test]
fn ctrl_backslash_reaches_the_command_once() {
    in_a_terminal(b"\x1c", "SIGQUIT");
}

#[test]
fn a_hang_up_reaches_the_command_once_when_the_supervisor_leads_the_session() {
    let place = Place::new();
    let terminal = Terminal::open();
    let mut started = Started { child: terminal.session(&place.run_counter()), counter: None };
    let (counter, supervisor) = place.counter_started();
    started.counter = Some(counter);
    // The kernel sends the hang-up to the session's leader alone: the supervisor must pass it on.
    terminal.hang_up();
    assert_eq!(place.after("SIGHUP"), ["SIGHUP"]);
    assert_eq!(place.mark(supervisor), ["SIGHUP", "SIGUSR1"]);
    stop(started, supervisor, &place);
}

#[test]
fn a_hang_up_reaches_the_command_once_when_the_shell_leading_the_session_ends() {
    let place = Place::new();
    let terminal = Terminal::open();
    // A shell leads the session and runs `pidfile run` in its own process group, the terminal's foreground. When
    // the hang-up ends the shell, the kernel sends SIGHUP to that whole group: the command has it already.
    let script = format!(
        "{}; echo ended",
        place.run_counter().iter().map(|word| format!("'{word}'")).collect::<Vec<_>>().join(" ")
    );
    let mut started = Started { child: terminal.session(&["sh".to_owned(), "-c".to_owned(), script]), counter: None };
    let (counter, supervisor) = place.counter_started();
    started.counter = Some(counter);
    assert_ne!(supervisor, started.child.id(), "the shell leads the session");
    terminal.hang_up();
    assert!(!started.wait().success(), "the hang-up ends the shell");
    assert_eq!(place.after("SIGHUP"), ["SIGHUP"]);
    assert_eq!(place.mark(supervisor), ["SIGHUP", "SIGUSR1"]);
    stop(started, supervisor, &place);
}

#[test]
fn a_signal_sent_to_the_supervisor_reaches_the_command_once() {
    signal_sent_to_the_supervisor_with(&[]);
}

/// Sends SIGINT to `pidfile OPTIONS run web -- COUNTER`, which runs outside a terminal: the counter gets it once.
fn signal_sent_to_the_supervisor_with(options: &[&str]) {
    let place = Place::new();
    let program = place.run_counter_with(options);
    let child = Command::new(&program[0]).args(&program[1..]).stdin(Stdio::null()).spawn().unwrap();
    let mut started = Started { child, counter: None };
    let (counter, supervisor) = place.counter_started();
    started.counter = Some(counter);
    kill(supervisor, libc_signal::INT);
    assert_eq!(place.after("SIGINT"), ["SIGINT"]);
    assert_eq!(place.mark(supervisor), ["SIGINT", "SIGUSR1"]);
    stop(started, supervisor, &place);
}

#[test]
fn the_command_reads_the_terminal() {
    let place = Place::new();
    let mut terminal = Terminal::open();
    let answer = place.dir.path().join("answer");
    let dir = place.dir.path().to_str().unwrap();
    let read = format!("read line && echo \"$line\" > '{}'", answer.display());
    let program: Vec<String> = [BIN, "--dir", dir, "--instance", "t", "run", "web", "--", "sh", "-c", &read]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut started = Started { child: terminal.session(&program), counter: None };
    terminal.type_keys(b"hello\n");
    assert!(started.wait().success(), "the command read its line and ended");
    assert_eq!(std::fs::read_to_string(answer).unwrap(), "hello\n");
}

/// `run --cluster`, whose supervisor watches the lease and passes signals on from the same loop, by the same rule.
#[cfg(feature = "cluster")]
mod cluster {
    use super::common::{etcd_endpoints, unique_name};
    use super::{in_a_terminal_with, signal_sent_to_the_supervisor_with};

    /// `--cluster URL` for the etcd cluster of `PIDFILE_TEST_ETCD`, under a key prefix of the test's own.
    fn cluster_url() -> Option<String> {
        Some(format!("etcd://{}/{}", etcd_endpoints()?, unique_name("terminal")))
    }

    #[test]
    fn ctrl_c_reaches_the_command_of_a_cluster_supervisor_once() {
        let Some(url) = cluster_url() else { return };
        in_a_terminal_with(&["--cluster", &url], b"\x03", "SIGINT");
    }

    #[test]
    fn a_signal_sent_to_a_cluster_supervisor_reaches_the_command_once() {
        let Some(url) = cluster_url() else { return };
        signal_sent_to_the_supervisor_with(&["--cluster", &url]);
    }
}
