//! A scriptable process that claims, reads and removes pidfiles, step by step as its arguments say, printing one
//! line per step. The integration tests spawn it to play a service (or a rival of one) in a process of its own.
//!
//! ```text
//! cargo run --example claimer -- make nuts ready sleep 30
//! ```
//!
//! Steps:
//!
//! | step                         | does                                                                    |
//! |------------------------------|-------------------------------------------------------------------------|
//! | `path SERVICE`               | prints `pidfile_path(SERVICE)`                                          |
//! | `make SERVICE`               | `make_pidfile(SERVICE)`: prints `won PID`, or `lost PID\|none` on `AlreadyRunning` and goes on; any other error prints `error MESSAGE` and exits 4 |
//! | `acquire PATH`               | the same with `PidFile::acquire(PATH)`, keeping the guard until exit     |
//! | `acquire-quiet PATH`         | the same without signal handlers                                        |
//! | `cycle PATH`                 | claims PATH without signal handlers and releases it at once, silently  |
//! | `contend PATH MARKER N`      | N attempts, each in a forked child, to claim PATH without signal handlers after a random pause; a winner creates MARKER (`O_EXCL`), holds a random while, deletes MARKER, then releases, or half the time exits as if killed, leaving a stale file. Prints `contended won W abandoned A lost L blocked B`; on finding MARKER there (a second winner at once) prints `double ATTEMPT` and exits 3 |
//! | `marker NAME`                | makes a system call naming `/pidfile-marker-NAME`, to find a place in a trace |
//! | `release`                    | releases the guards kept by `acquire`                                   |
//! | `check-content SERVICE`      | exits 1 if the pidfile holds our pid, 0 if not (the spec's first test)  |
//! | `write-own-pid SERVICE`      | writes our pid to the pidfile by hand, without claiming it             |
//! | `remove SERVICE`             | `remove_pidfile(SERVICE)`                                               |
//! | `exists SERVICE`             | prints `exists` or `missing`                                            |
//! | `get SERVICE`                | prints `get_pid(SERVICE)`                                               |
//! | `signals`                    | prints the SIGINT and SIGTERM dispositions                              |
//! | `ignore-sigint`              | sets SIGINT to be ignored                                               |
//! | `ready`                      | prints `ready PID`                                                      |
//! | `sleep SECONDS`              | sleeps                                                                  |
//! | `wait-stdin`                 | waits until standard input is closed                                    |
//! | `barrier PATH`               | waits for a shared lock on PATH: all waiters go at once when the test lets go of its exclusive lock |
//! | `cd DIR`                     | changes the current directory                                           |
//! | `fork-acquire PATH`          | forks a child that tries `PidFile::acquire(PATH)`, prints its result and exits normally; waits for it |
//! | `fork-drop`                  | forks a child that drops the guards kept by `acquire` and exits normally; waits for it |
//! | `fork-hold`                  | forks a child that keeps the inherited descriptors for 30 seconds; prints `child PID` |
//! | `fork-term`                  | forks a child that sends itself SIGTERM; waits and prints `child signal N` |
//! | `shell COMMAND`              | runs `sh -c COMMAND` (a program exec'd from here) and prints `shell STATUS` |
//! | `fsize-limit BYTES`          | limits the size of files this process writes (RLIMIT_FSIZE)             |
//! | `ignore-sigxfsz`             | ignores SIGXFSZ, so that writing past the limit fails instead of killing |
//! | `exit CODE`                  | `std::process::exit(CODE)`                                              |

// The gate: a test helper that forks, waits and sets signal dispositions with raw C library calls, to play the
// processes a service meets.
#![allow(unsafe_code)]

use std::io::{Read, Write};
use std::process::exit;

use pidfiles::{Error, PidFile};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut steps = args.iter().map(String::as_str);
    let mut guards: Vec<PidFile> = Vec::new();
    while let Some(step) = steps.next() {
        let mut arg = || steps.next().unwrap_or_else(|| fail(&format!("step {step} needs an argument")));
        match step {
            "path" => say(&pidfiles::pidfile_path(arg()).unwrap_or_else(report).display().to_string()),
            "make" => drop(claimed(pidfiles::make_pidfile(arg()).map(|()| None::<()>))),
            "acquire" => guards.extend(claimed(PidFile::acquire(arg()).map(Some))),
            "acquire-quiet" => {
                guards.extend(claimed(PidFile::builder().signal_handlers(false).acquire(arg()).map(Some)))
            }
            "cycle" => drop(PidFile::builder().signal_handlers(false).acquire(arg()).unwrap_or_else(report)),
            "contend" => {
                let (path, marker) = (arg(), arg());
                contend(path, marker, arg().parse().unwrap_or(0));
            }
            "marker" => {
                let _ = rustix::fs::access(format!("/pidfile-marker-{}", arg()), rustix::fs::Access::EXISTS);
            }
            "release" => guards.drain(..).for_each(|guard| guard.release().unwrap_or_else(report)),
            "check-content" => {
                let content = std::fs::read_to_string(pidfiles::pidfile_path(arg()).unwrap_or_else(report));
                let ours = content.is_ok_and(|content| content.trim() == std::process::id().to_string());
                exit(i32::from(ours));
            }
            "write-own-pid" => {
                let path = pidfiles::pidfile_path(arg()).unwrap_or_else(report);
                std::fs::write(path, format!("{}\n", std::process::id())).unwrap_or_else(|e| fail(&e.to_string()));
            }
            "remove" => pidfiles::remove_pidfile(arg()).unwrap_or_else(report),
            "exists" => {
                say(if pidfiles::pidfile_path(arg()).unwrap_or_else(report).exists() { "exists" } else { "missing" })
            }
            "get" => say(&format!("{:?}", pidfiles::get_pid(arg()).unwrap_or_else(report))),
            "signals" => say(&signal_dispositions()),
            "ignore-sigint" => {
                // SAFETY: setting a signal to be ignored has no handler code to be unsafe about.
                unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
            }
            "ready" => say(&format!("ready {}", std::process::id())),
            "sleep" => std::thread::sleep(std::time::Duration::from_secs_f64(arg().parse().unwrap_or(1.0))),
            "wait-stdin" => {
                let _ = std::io::stdin().read_to_end(&mut Vec::new());
            }
            "barrier" => {
                let file = std::fs::File::open(arg()).unwrap_or_else(|e| fail(&e.to_string()));
                rustix::fs::flock(&file, rustix::fs::FlockOperation::LockShared)
                    .unwrap_or_else(|e| fail(&e.to_string()));
            }
            "cd" => std::env::set_current_dir(arg()).unwrap_or_else(|e| fail(&e.to_string())),
            "fork-acquire" => fork_acquire(arg()),
            "fork-drop" => fork_drop(&mut guards),
            "fork-hold" => fork_hold(),
            "fork-term" => fork_term(),
            "shell" => {
                let status = std::process::Command::new("sh").args(["-c", arg()]).status();
                say(&format!("shell {:?}", status.map_err(|e| e.to_string())));
            }
            "fsize-limit" => {
                let bytes = arg().parse().unwrap_or(0);
                let limit = rustix::process::Rlimit { current: Some(bytes), maximum: Some(bytes) };
                rustix::process::setrlimit(rustix::process::Resource::Fsize, limit)
                    .unwrap_or_else(|e| fail(&e.to_string()));
            }
            "ignore-sigxfsz" => {
                // SAFETY: setting a signal to be ignored has no handler code to be unsafe about.
                unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
            }
            "exit" => exit(arg().parse().unwrap_or(0)),
            other => fail(&format!("unknown step {other}")),
        }
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn fail(message: &str) -> ! {
    say(&format!("error {message}"));
    exit(4)
}

fn report<T>(error: Error) -> T {
    fail(&error.to_string())
}

/// Prints the outcome of a claim: `won PID` on success, `lost PID|none` when the service runs.
fn claimed<T>(result: Result<Option<T>, Error>) -> Option<T> {
    match result {
        Ok(guard) => {
            say(&format!("won {}", std::process::id()));
            guard
        }
        Err(Error::AlreadyRunning { pid, .. }) => {
            say(&format!("lost {}", pid.map_or("none".to_owned(), |pid| pid.to_string())));
            None
        }
        Err(error) => report(error),
    }
}

fn signal_dispositions() -> String {
    let describe = |signal| {
        // SAFETY: only reads the current disposition.
        let action = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signal, std::ptr::null(), &mut action);
            action
        };
        match action.sa_sigaction {
            libc::SIG_DFL => "default".to_owned(),
            libc::SIG_IGN => "ignore".to_owned(),
            handler => format!("handler@{handler:x}/{:x}", action.sa_flags),
        }
    };
    format!("SIGINT={} SIGTERM={}", describe(libc::SIGINT), describe(libc::SIGTERM))
}

fn fork_acquire(path: &str) {
    // SAFETY: the child only claims a pidfile, prints and exits; this program runs no other threads.
    match unsafe { libc::fork() } {
        0 => {
            match PidFile::acquire(path) {
                Ok(guard) => {
                    say("child won");
                    std::mem::forget(guard);
                }
                Err(Error::AlreadyRunning { pid, .. }) => {
                    say(&format!("child lost {}", pid.map_or("none".to_owned(), |pid| pid.to_string())))
                }
                Err(error) => say(&format!("child error {error}")),
            }
            exit(0)
        }
        -1 => fail("fork failed"),
        child => {
            let mut status = 0;
            // SAFETY: waits for the child just forked.
            unsafe { libc::waitpid(child, &mut status, 0) };
        }
    }
}

fn fork_drop(guards: &mut Vec<PidFile>) {
    // SAFETY: the child only drops guards and exits; this program runs no other threads.
    match unsafe { libc::fork() } {
        0 => {
            guards.clear();
            exit(0)
        }
        -1 => fail("fork failed"),
        child => {
            let mut status = 0;
            // SAFETY: waits for the child just forked.
            unsafe { libc::waitpid(child, &mut status, 0) };
        }
    }
}

fn fork_term() {
    // SAFETY: the child only signals itself; this program runs no other threads.
    match unsafe { libc::fork() } {
        0 => {
            // SAFETY: plain system calls on this process.
            unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
            std::thread::sleep(std::time::Duration::from_secs(5));
            exit(0)
        }
        -1 => fail("fork failed"),
        child => {
            let mut status = 0;
            // SAFETY: waits for the child just forked.
            unsafe { libc::waitpid(child, &mut status, 0) };
            say(&format!("child signal {}", if libc::WIFSIGNALED(status) { libc::WTERMSIG(status) } else { 0 }));
        }
    }
}

fn fork_hold() {
    // SAFETY: the child only sleeps and exits without running any cleanup; no other threads run.
    match unsafe { libc::fork() } {
        0 => {
            std::thread::sleep(std::time::Duration::from_secs(30));
            // SAFETY: ends the child at once, as a killed one would, without exit hooks.
            unsafe { libc::_exit(0) }
        }
        -1 => fail("fork failed"),
        child => say(&format!("child {child}")),
    }
}

/// What one attempt of `contend` came to, as the forked child's exit code tells it.
const WON_RELEASED: i32 = 10;
const WON_ABANDONED: i32 = 11;
const LOST: i32 = 12;
const BLOCKED: i32 = 13;
const DOUBLE: i32 = 20;

fn contend(path: &str, marker: &str, attempts: usize) {
    let mut random = Random::seeded();
    let mut counts = [0usize; 4];
    for attempt in 0..attempts {
        let (pause, hold, abandon) = (random.micros(), random.micros(), random.next() % 2 == 0);
        // SAFETY: the child claims, touches files and exits; this program runs no other threads.
        let child = unsafe { libc::fork() };
        if child == 0 {
            // SAFETY: ends the child without running the parent's exit hooks.
            unsafe { libc::_exit(contend_once(path, marker, pause, hold, abandon)) }
        }
        if child == -1 {
            fail("fork failed");
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        unsafe { libc::waitpid(child, &mut status, 0) };
        let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
        match code {
            WON_RELEASED..=BLOCKED => counts[(code - WON_RELEASED) as usize] += 1,
            DOUBLE => {
                say(&format!("double {attempt}"));
                exit(3)
            }
            // The child has said what went wrong.
            _ => exit(4),
        }
    }
    let [released, abandoned, lost, blocked] = counts;
    say(&format!("contended won {} abandoned {abandoned} lost {lost} blocked {blocked}", released + abandoned));
}

/// One attempt, in the forked child: the exit code says how it went.
fn contend_once(path: &str, marker: &str, pause: u64, hold: u64, abandon: bool) -> i32 {
    let micros = std::time::Duration::from_micros;
    std::thread::sleep(micros(pause));
    let guard = match PidFile::builder().signal_handlers(false).acquire(path) {
        Ok(guard) => guard,
        Err(Error::AlreadyRunning { .. }) => return LOST,
        Err(Error::Blocked { .. }) => return BLOCKED,
        Err(error) => {
            say(&format!("error {error}"));
            return 4;
        }
    };
    // The marker stands from the win until just before the lock is let go: finding it means another winner.
    match std::fs::File::create_new(marker) {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => return DOUBLE,
        Err(error) => {
            say(&format!("error marker {error}"));
            return 4;
        }
    }
    std::thread::sleep(micros(hold));
    if let Err(error) = std::fs::remove_file(marker) {
        say(&format!("error marker {error}"));
        return 4;
    }
    if abandon {
        // As if killed: the lock dies with the process (`_exit` closes the descriptor), the file stays.
        std::mem::forget(guard);
        return WON_ABANDONED;
    }
    match guard.release() {
        Ok(()) => WON_RELEASED,
        Err(error) => {
            say(&format!("error {error}"));
            4
        }
    }
}

/// A small xorshift generator: pauses need no better randomness, and no dependency.
struct Random(u64);

impl Random {
    fn seeded() -> Random {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as u64);
        Random((nanos ^ u64::from(std::process::id()).rotate_left(32)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A pause of a few to a few hundred microseconds.
    fn micros(&mut self) -> u64 {
        2 + self.next() % 300
    }
}
