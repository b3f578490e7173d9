//! What the integration tests share: the `claimer` helper process, bystander processes, dead pids, unique names
//! and time limits.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// The `claimer` example program, which cargo builds with the tests, next to the test binaries.
pub fn claimer_path() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps");
    let path = profile_dir.join("examples").join("claimer");
    assert!(path.exists(), "{} is missing: build the examples (cargo test builds them)", path.display());
    path
}

/// A command running the claimer with a clean environment, in which only the given pidfile settings apply.
pub fn claimer(env: &[(&str, &str)], steps: &[&str]) -> Command {
    let mut command = Command::new(claimer_path());
    command.env_clear().envs(env.iter().copied()).args(steps);
    command
}

/// A name no other test, and no other run of this test, uses: for pidfiles in the spec's shared `/var/tmp`.
pub fn unique_name(label: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("test{}x{}x{}-{label}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// A running claimer, killed when dropped so that no test leaves a process behind.
pub struct Running {
    pub child: Child,
    pub lines: BufReader<ChildStdout>,
}

impl Running {
    /// Starts the claimer with piped standard input and output.
    pub fn start(mut command: Command) -> Running {
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("start the claimer");
        let lines = BufReader::new(child.stdout.take().unwrap());
        Running { child, lines }
    }

    /// The next line the claimer prints, without its newline (empty at end of output).
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.lines.read_line(&mut line).expect("read the claimer's output");
        line.trim_end().to_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` and waits for the process to end.
    pub fn stop(&mut self, signal: i32) -> std::process::ExitStatus {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::from_named_raw(signal).unwrap(),
        )
        .expect("signal the claimer");
        self.child.wait().expect("wait for the claimer")
    }

    /// Closes its standard input (ending a `wait-stdin` step) and waits for it to end.
    pub fn finish(&mut self) -> std::process::ExitStatus {
        drop(self.child.stdin.take());
        self.child.wait().expect("wait for the claimer")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `condition` holds, for up to 10 seconds.
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting until {what}");
}

/// Removes a file in the spec's shared directory when the test ends, however it ends.
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Whether a process with this pid exists and is not a zombie.
pub fn process_lives(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z"))
}

/// Waits until `probe` gives a value, for up to 10 seconds.
pub fn wait_for_value<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    for _ in 0..1000 {
        if let Some(value) = probe() {
            return value;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for a value");
}

/// A pid that no process has: a child that has been reaped.
pub fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// A live process that is not ours to claim for (`sleep`), killed when dropped.
pub struct Bystander(pub Child);

impl Bystander {
    pub fn start() -> Bystander {
        Bystander(Command::new("sleep").arg("600").spawn().unwrap())
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `work` on a thread and fails the test, instead of hanging it, if it does not finish in time.
pub fn within_seconds<T: Send + 'static>(seconds: u64, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || sender.send(work()));
    receiver.recv_timeout(Duration::from_secs(seconds)).expect("the call hung")
}

/// The errors of every operation on the pidfile of `service` under `config`: a claim, `get_pid`, `status` and a
/// removal. Each must fail, and none may hang.
pub fn errors_of_every_operation(service: &str, config: &pidfiles::Config) -> Vec<pidfiles::Error> {
    let (service, config) = (service.to_owned(), config.clone());
    let results = within_seconds(10, move || {
        [
            ("make_pidfile", pidfiles::make_pidfile_with(&service, &config).map(drop)),
            ("get_pid", pidfiles::get_pid_with(&service, &config).map(drop)),
            ("status", pidfiles::status_with(&service, &config).map(drop)),
            ("remove_pidfile", pidfiles::remove_pidfile_with(&service, &config)),
        ]
    });
    results
        .into_iter()
        .map(|(operation, result)| result.err().unwrap_or_else(|| panic!("{operation} succeeded")))
        .collect()
}

/// Asserts that every error refuses the path for what stands there, `found`, and says so in its message.
pub fn assert_refused_as(errors: &[pidfiles::Error], found: &str) {
    for error in errors {
        assert!(matches!(error, pidfiles::Error::NotAPidFile { found: what, .. } if what == found), "{error:?}");
        assert!(error.to_string().contains(found), "{error}");
    }
}

/// Sets the file's modification time an hour back, as if it had been written then.
pub fn backdate_an_hour(path: &Path) {
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options().write(true).open(path).unwrap().set_modified(hour_ago).unwrap();
}

/// Whether the tests that need root can run. Without root they are skipped, saying why, unless
/// `PIDFILE_TESTS_REQUIRE_ROOT` is set (as CI sets it): then a skip is a failure, so that a run that was meant to
/// cover them cannot pass without them.
pub fn runs_as_root(why: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("PIDFILE_TESTS_REQUIRE_ROOT").is_none(),
        "this test needs root {why}, and PIDFILE_TESTS_REQUIRE_ROOT forbids skipping it"
    );
    eprintln!("skipped: needs root {why}");
    note_skip(&format!("needs root {why}"));
    false
}

/// The etcd endpoints to test against, or `None` (said, and noted in the skip log) when there are none; with
/// `PIDFILE_TESTS_REQUIRE_ROOT` set, as CI sets it, a missing cluster fails the test instead.
pub fn etcd_endpoints() -> Option<String> {
    match std::env::var("PIDFILE_TEST_ETCD") {
        Ok(endpoints) if !endpoints.is_empty() => Some(endpoints),
        _ => {
            assert!(
                std::env::var_os("PIDFILE_TESTS_REQUIRE_ROOT").is_none(),
                "this test needs an etcd cluster (PIDFILE_TEST_ETCD), and PIDFILE_TESTS_REQUIRE_ROOT forbids skipping it"
            );
            eprintln!("skipped: needs an etcd cluster in PIDFILE_TEST_ETCD (scripts/test starts one)");
            note_skip("needs an etcd cluster in PIDFILE_TEST_ETCD");
            None
        }
    }
}

/// Appends a skipped test and why to the file named by `PIDFILE_TESTS_SKIP_LOG`, if set, so that the script that
/// runs the tests can list every skip at the end of the run, where it is seen.
pub fn note_skip(why: &str) {
    use std::io::Write;
    let Some(log) = std::env::var_os("PIDFILE_TESTS_SKIP_LOG") else {
        return;
    };
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|stem| stem.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let binary = binary.rsplit_once('-').map_or(binary.as_str(), |(name, _hash)| name).to_owned();
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
        let _ = writeln!(file, "{binary}::{test}: {why}");
    }
}

/// Which process runs the service under test right now (0 when none), and how many times that changed, so that a
/// check running alongside can tell whether the service held still while it looked. One thread sets it.
#[derive(Debug, Default)]
pub struct CurrentService(AtomicU64);

/// One reading of a [`CurrentService`]: equal readings mean nothing changed in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading(u64);

impl Reading {
    /// The process that ran the service at the time of the reading (0 when none).
    pub fn pid(self) -> u32 {
        self.0 as u32
    }
}

impl CurrentService {
    /// Notes that `pid` now runs the service (0: none does).
    pub fn set(&self, pid: u32) {
        let changes = (self.0.load(Ordering::SeqCst) >> 32) + 1;
        self.0.store(changes << 32 | u64::from(pid), Ordering::SeqCst);
    }

    /// Who runs the service now, and how many changes came before.
    pub fn read(&self) -> Reading {
        Reading(self.0.load(Ordering::SeqCst))
    }
}
