//! Services whose lock is held by a process that the checker cannot prove runs them: the worker of a daemonizing
//! command, which keeps the lock its starter took and exited with; a service in another pid namespace (a
//! container) seen from the host; a service on the host seen from inside a pid namespace, where its process is not
//! visible at all. Whatever the checker sees, the state is unknown (never stale), nothing is signalled, the pidfile
//! is not removed and no second instance starts.

use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

// The library's test helpers: liveness and the rule for tests that need root.
#[path = "../../tests/common/mod.rs"]
mod common;

use common::{process_lives, runs_as_root, wait_for_value};
use rustix::process::{Pid, PidfdFlags, Signal};

const BIN: &str = env!("CARGO_BIN_EXE_pidfile");

/// Runs a command in a new pid namespace with its own `/proc`, where no process outside it is visible; the command
/// is killed if `unshare` is.
const IN_NAMESPACE: [&str; 5] = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];

/// Where the command runs: on the host, or inside a new pid namespace.
#[derive(Debug, Clone, Copy)]
enum Place {
    Host,
    Namespace,
}

/// A pid directory of its own, with the instance name `t`.
struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }

    /// The command `pidfile --dir DIR --instance t ARGS...`, run at `place`.
    fn command(&self, place: Place, args: &[&str]) -> Command {
        let mut command = match place {
            Place::Host => Command::new(BIN),
            Place::Namespace => {
                let mut command = Command::new(IN_NAMESPACE[0]);
                command.args(&IN_NAMESPACE[1..]).arg(BIN);
                command
            }
        };
        command.env_clear().args(["--dir", self.0.path().to_str().unwrap(), "--instance", "t"]).args(args);
        command
    }

    fn run(&self, place: Place, args: &[&str]) -> Output {
        self.command(place, args).output().unwrap()
    }

    fn path(&self, service: &str) -> PathBuf {
        self.0.path().join(format!("t-{service}.pid"))
    }
}

/// The process that keeps a pidfile's lock, pinned by a pidfd as soon as its pid is known, and killed through it
/// when the test ends, however it ends.
struct Holder {
    pid: u32,
    pidfd: OwnedFd,
}

impl Holder {
    /// Pins process `pid`, then checks that it is the `sleep` that holds the lock (the pid was not reused).
    fn pin(pid: u32) -> Holder {
        let pidfd = rustix::process::pidfd_open(Pid::from_raw(pid as i32).unwrap(), PidfdFlags::empty())
            .expect("pin the holder with a pidfd");
        let holder = Holder { pid, pidfd };
        assert_eq!(comm(pid).as_deref(), Some("sleep"), "pid {pid} is not the holder");
        holder
    }

    /// Pins process `pid`, whatever it runs now.
    fn pin_any(pid: u32) -> Holder {
        let pidfd = rustix::process::pidfd_open(Pid::from_raw(pid as i32).unwrap(), PidfdFlags::empty())
            .expect("pin the holder with a pidfd");
        Holder { pid, pidfd }
    }

    fn lives(&self) -> bool {
        process_lives(self.pid)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = rustix::process::pidfd_send_signal(&self.pidfd, Signal::KILL);
    }
}

/// `unshare` running a `pidfile` command in a new pid namespace: killed when dropped, however the test ends, and
/// with it everything in the namespace (`--kill-child`).
struct Namespace(Child);

impl Namespace {
    /// Starts `pidfile --dir DIR --instance t ARGS...` in a new pid namespace.
    fn spawn(dir: &Dir, args: &[&str]) -> Namespace {
        Namespace(dir.command(Place::Namespace, args).stdin(Stdio::null()).spawn().unwrap())
    }

    /// The process unshare forked into the namespace, its first: `pidfile`, or what it became.
    fn first_process(&self) -> Option<u32> {
        children_of(self.0.id()).first().copied()
    }

    /// Waits, as [`wait_for_value`] does, for `probe` to give a value; fails the test saying `what` did not happen.
    fn wait_for<T>(&self, what: &str, probe: impl FnMut() -> Option<T>) -> T {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wait_for_value(probe)))
            .unwrap_or_else(|_| panic!("{what}"))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The children of process `pid`, from `/proc`; none if it is gone.
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|child| child.parse().ok())
        .collect()
}

/// A service run by `pidfile run --exec web -- sleep 600` inside a pid namespace: there it is pid 1, which is what
/// its pidfile says. Killed, with its namespace, when dropped.
struct Contained {
    // Declared, so dropped, before the holder: the namespace goes first, as it would in a container.
    _namespace: Namespace,
    holder: Holder,
}

impl Contained {
    fn start(dir: &Dir) -> Contained {
        let namespace = Namespace::spawn(dir, &["run", "--exec", "web", "--", "sleep", "600"]);
        // The process unshare forked into the namespace, once it has claimed the pidfile and become the sleep.
        let pid = namespace.wait_for("the service did not start in its namespace", || {
            namespace.first_process().filter(|&pid| comm(pid).as_deref() == Some("sleep"))
        });
        Contained { _namespace: namespace, holder: Holder::pin(pid) }
    }
}

/// The command name of process `pid`.
fn comm(pid: u32) -> Option<String> {
    Some(std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?.trim_end().to_owned())
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Starts `pidfile run --exec web -- sh -c 'sleep 600 & echo $!'`, as a daemonizing command starts: the shell
/// takes the lock over from `pidfile` (same process), passes it on to the background `sleep` it starts, prints the
/// sleep's pid and exits at once. Returns the sleep, which now holds the lock alone, and the pid the file names:
/// the starter's, dead.
fn daemonize(dir: &Dir) -> (Holder, u32) {
    let script = "sleep 600 </dev/null >/dev/null 2>&1 & echo $!";
    let starter = dir
        .command(Place::Host, &["run", "--exec", "web", "--", "sh", "-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let starter_pid = starter.id();
    let output = starter.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    let holder = Holder::pin(printed.trim().parse().expect("the shell prints the sleep's pid"));
    assert!(output.status.success(), "{output:?}");
    assert_eq!(std::fs::read_to_string(dir.path("web")).unwrap(), format!("{starter_pid}\n"));
    assert!(!process_lives(starter_pid));
    (holder, starter_pid)
}

/// Runs every command on `web` at `place`, where the lock on its pidfile proves nothing, and checks that each
/// refuses: `status` says unknown (4), not stale, naming no pid; `stop` signals nothing (1); `remove` leaves the
/// file (1); `run` does not start a second instance (1). Returns the `status --json` report.
fn assert_all_refused(dir: &Dir, place: Place, holder: &Holder) -> serde_json::Value {
    let path = dir.path("web");
    let content = std::fs::read(&path).unwrap();
    let inode = std::fs::metadata(&path).unwrap().ino();

    let status = dir.run(place, &["status", "web"]);
    assert_eq!(status.status.code(), Some(4), "{place:?}: {}", stderr(&status));
    assert!(stderr(&status).contains("no proof that web runs"), "{}", stderr(&status));
    let json = dir.run(place, &["status", "web", "--json"]);
    assert_eq!(json.status.code(), Some(4), "{place:?}: {}", stderr(&json));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["state"], "unknown", "{place:?}: {report}");
    assert!(report["pid"].is_null(), "{place:?}: {report}");

    let stop = dir.run(place, &["stop", "web"]);
    assert_eq!(stop.status.code(), Some(1), "{place:?}: {}", stderr(&stop));
    assert!(stderr(&stop).contains("not signalling anything"), "{}", stderr(&stop));
    assert!(holder.lives(), "{place:?}: stop signalled the holder");

    let remove = dir.run(place, &["remove", "web"]);
    assert_eq!(remove.status.code(), Some(1), "{place:?}: {}", stderr(&remove));
    assert!(stderr(&remove).contains("the file is left alone"), "{}", stderr(&remove));

    let marker = dir.0.path().join("second-instance-started");
    for exec in [&[][..], &["--exec"]] {
        let mut args = vec!["run", "web"];
        args.extend_from_slice(exec);
        args.extend(["--", "touch", marker.to_str().unwrap()]);
        let run = dir.run(place, &args);
        assert_eq!(run.status.code(), Some(1), "{place:?} {args:?}: {}", stderr(&run));
        assert!(!marker.exists(), "{place:?} {args:?}: a second instance started");
    }

    assert_eq!(std::fs::read(&path).unwrap(), content, "{place:?}: the pidfile changed");
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode, "{place:?}: the pidfile was replaced");
    assert!(holder.lives());
    report
}

#[test]
fn a_daemonizing_commands_worker_keeps_the_lock_unproven_and_nothing_is_signalled_removed_or_started_beside_it() {
    let dir = Dir::new();
    let (holder, _) = daemonize(&dir);
    let report = assert_all_refused(&dir, Place::Host, &holder);
    // The worker is found and named, though the file names its exited starter.
    assert_eq!(report["holder"]["pid"], holder.pid, "{report}");
    assert!(stderr(&dir.run(Place::Host, &["status", "web"])).contains("the file names another process"));
}

#[test]
fn seen_from_a_pid_namespace_a_daemonized_worker_on_the_host_is_unknown_and_nothing_is_signalled_removed_or_started() {
    if !runs_as_root("to make a pid namespace") {
        return;
    }
    let dir = Dir::new();
    let (holder, _) = daemonize(&dir);
    let report = assert_all_refused(&dir, Place::Namespace, &holder);
    assert!(report.get("holder").is_none(), "the holder cannot be seen there: {report}");
    assert!(report["error"].as_str().unwrap().contains("by no process that can be seen"), "{report}");
}

#[test]
fn seen_from_a_pid_namespace_a_service_proven_on_the_host_is_unknown_never_stale_and_is_left_alone() {
    if !runs_as_root("to make a pid namespace") {
        return;
    }
    let dir = Dir::new();
    let mut service = dir.command(Place::Host, &["run", "--exec", "web", "--", "sleep", "600"]).spawn().unwrap();
    // Pinned first, so that it is killed however the test ends.
    let holder = Holder::pin_any(service.id());
    common::eventually("the service runs sleep", || comm(holder.pid).as_deref() == Some("sleep"));
    let on_host = dir.run(Place::Host, &["status", "web"]);
    assert_eq!(on_host.status.code(), Some(0), "on the host it is proven: {}", stderr(&on_host));

    let report = assert_all_refused(&dir, Place::Namespace, &holder);
    assert!(report.get("holder").is_none(), "{report}");
    // Nothing done inside the namespace changed what the host sees.
    assert_eq!(dir.run(Place::Host, &["status", "web"]).status.code(), Some(0));
    drop(holder);
    service.wait().unwrap();
}

#[test]
fn a_service_in_a_pid_namespace_seen_from_the_host_is_unknown_and_left_alone() {
    if !runs_as_root("to make a pid namespace") {
        return;
    }
    let dir = Dir::new();
    let contained = Contained::start(&dir);
    // Inside its namespace the service is pid 1, and so says its pidfile; on the host, pid 1 is another process.
    assert_eq!(std::fs::read_to_string(dir.path("web")).unwrap(), "1\n");
    let report = assert_all_refused(&dir, Place::Host, &contained.holder);
    assert_eq!(report["holder"]["pid"], contained.holder.pid, "{report}");
    assert!(process_lives(1));
    // Inside its own namespace, it is proven.
    let inside = Command::new("nsenter")
        .args(["--target", &contained.holder.pid.to_string(), "--pid", "--mount", BIN])
        .args(["--dir", dir.0.path().to_str().unwrap(), "--instance", "t", "status", "web"])
        .output()
        .unwrap();
    assert_eq!(
        (inside.status.code(), String::from_utf8_lossy(&inside.stdout).into_owned()),
        (Some(0), "web is running (pid 1, pidfile locked)\n".to_owned()),
        "{}",
        stderr(&inside)
    );
}

/// `wait --gone` is what a script runs between a stop and the next start. While a lock that proves nothing is held,
/// `status` says unknown and `run` is refused, so `wait --gone` must not say the service is gone.
#[test]
fn wait_gone_does_not_say_gone_while_a_lock_that_proves_nothing_keeps_the_next_start_out() {
    let dir = Dir::new();
    let (holder, _) = daemonize(&dir);
    let wait = dir.run(Place::Host, &["--verbose", "wait", "--gone", "web", "--timeout", "300ms"]);
    let run = dir.run(Place::Host, &["run", "web", "--", "true"]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert_ne!(
        wait.status.code(),
        Some(0),
        "wait --gone said {:?} while the next start is refused: {:?}",
        stderr(&wait),
        stderr(&run)
    );
    assert!(holder.lives());
}

/// Inside a pid namespace entered from a shell (a container started from a terminal, a CI runner's sandbox), the
/// leaders of the supervisor's process group and session live outside it, and the kernel numbers both 0. `run`
/// still passes a signal a process sends it on to its command, once, and exits with the command's status.
#[test]
fn inside_a_pid_namespace_whose_group_leader_is_outside_run_passes_a_signal_on_once() {
    if !runs_as_root("to make a pid namespace") {
        return;
    }
    let dir = Dir::new();
    let log = dir.0.path().join("signals");
    // Notes each SIGTERM, then exits 3 half a second after the first: time for a second one to be noted.
    let service = "import signal, sys, time\n\
        log = open(sys.argv[1], 'a', buffering=1)\n\
        got = []\n\
        signal.signal(signal.SIGTERM, lambda number, frame: got.append(number) or log.write('TERM\\n'))\n\
        log.write('ready\\n')\n\
        while not got: time.sleep(0.01)\n\
        time.sleep(0.5)\n\
        sys.exit(3)\n";
    let mut namespace = Namespace::spawn(&dir, &["run", "web", "--", "python3", "-c", service, log.to_str().unwrap()]);
    let supervisor = namespace.wait_for("the service did not start in its namespace", || {
        let supervisor = namespace.first_process()?;
        std::fs::read_to_string(&log).ok()?.starts_with("ready\n").then_some(supervisor)
    });
    assert_eq!(comm(supervisor).as_deref(), Some("pidfile"));
    rustix::process::kill_process(Pid::from_raw(supervisor as i32).unwrap(), Signal::TERM).unwrap();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = namespace.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() <= deadline,
            "the supervisor did not end within 20 s of SIGTERM: {:?}",
            std::fs::read_to_string(&log)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "ready\nTERM\n", "the command got SIGTERM once");
    assert_eq!(status.code(), Some(3), "run exits with the command's status");
    assert!(!dir.path("web").exists(), "the pidfile is removed");
}

/// As the first process of a pid namespace (a container's entry point), the supervisor gets the processes orphaned
/// there as children: it reaps those that end while its command runs, instead of keeping them as zombies.
#[test]
fn as_a_pid_namespaces_first_process_run_reaps_the_orphans_that_come_to_it() {
    if !runs_as_root("to make a pid namespace") {
        return;
    }
    let dir = Dir::new();
    let marker = dir.0.path().join("orphans-started");
    // Two orphans, which end after half a second, then the service itself.
    let script = format!("(sleep 0.5 &); (sleep 0.5 &); touch {}; exec sleep 600", marker.display());
    let namespace = Namespace::spawn(&dir, &["run", "web", "--", "sh", "-c", &script]);
    let (supervisor, service) = namespace.wait_for("the service did not start in its namespace", || {
        let supervisor = namespace.first_process()?;
        let service = children_of(supervisor).into_iter().find(|&child| {
            std::fs::read(format!("/proc/{child}/cmdline")).is_ok_and(|command| command == b"sleep\x00600\x00")
        })?;
        marker.exists().then_some((supervisor, service))
    });
    let _service = Holder::pin_any(service);
    // The orphans end half a second after they started; give them up to 20 s to be gone, zombies included.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let left = loop {
        let children = children_of(supervisor);
        if children == [service] || std::time::Instant::now() > deadline {
            break children;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let states: Vec<String> = left.iter().map(|&pid| format!("{pid} {:?}", stat_state(pid))).collect();
    assert_eq!(left, [service], "the supervisor's children besides its service: {states:?}");
}

/// The state letter of `/proc/PID/stat` (`Z` for a zombie).
fn stat_state(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat.rsplit_once(") ")?.1.split(' ').next()?.to_owned())
}
