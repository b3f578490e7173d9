//! A quick look at `pidfile --cluster` end to end: the exit codes and messages of run, status, stop and a lost
//! lease, against the etcd cluster named by `PIDFILE_TEST_ETCD` (HOST:PORT,...; `scripts/test` starts one), and
//! the no-quorum answers against a port where nothing listens. The scenarios (failover, partitions, quorum loss,
//! fencing) are the `cluster` test binary's.

#![cfg(feature = "cluster")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{etcd_endpoints as etcd, process_lives, unique_name};

const BIN: &str = env!("CARGO_BIN_EXE_pidfile");

/// A host of its own: a pid directory, the instance `t`, and a cluster URL with a key prefix no other test uses.
struct Host {
    dir: tempfile::TempDir,
    url: String,
}

impl Host {
    fn new(endpoints: &str, prefix: &str) -> Host {
        Host { dir: tempfile::tempdir().unwrap(), url: format!("etcd://{endpoints}/{prefix}") }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command.env_clear().env("PIDFILE_CLUSTER", &self.url);
        command.args(["--dir", self.dir.path().to_str().unwrap(), "--instance", "t"]).args(args);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Starts `run --ttl 3s SERVICE -- sh -c SCRIPT`, its output piped.
    fn start(&self, service: &str, script: &str) -> Supervisor {
        let child = self
            .command(&["run", "--ttl", "3s", service, "--", "sh", "-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Supervisor(Some(child))
    }

    fn pidfile(&self, service: &str) -> PathBuf {
        self.dir.path().join(format!("t-{service}.pid"))
    }
}

/// A `pidfile run` supervisor, killed (and its command with it) if a test ends early.
struct Supervisor(Option<Child>);

impl Supervisor {
    fn pid(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    /// Its exit and output, waiting at most `within`.
    fn finish(mut self, within: Duration) -> Output {
        let child = self.0.as_mut().unwrap();
        let until = Instant::now() + within;
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < until, "the supervisor did not end within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits at most 10 s for `done`.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < until, "not within 10s: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pid of the command `supervisor` runs, once the pidfile at `path` names it: until the supervisor has the
/// lease, the pidfile names the supervisor itself.
fn command_in(path: &Path, supervisor: &Supervisor) -> u32 {
    pid_in(path, "the pidfile names the command", |pid| pid != supervisor.pid())
}

/// The pid the pidfile at `path` names, once it names one that is `wanted`.
fn pid_in(path: &Path, what: &str, wanted: impl Fn(u32) -> bool) -> u32 {
    let mut pid = None;
    eventually(what, || {
        pid = std::fs::read_to_string(path).ok().and_then(|text| text.trim().parse().ok()).filter(|&pid| wanted(pid));
        pid.is_some()
    });
    pid.unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn second_host_with_try_is_refused_naming_the_holder() {
    let Some(endpoints) = etcd() else { return };
    let prefix = unique_name("smoke");
    let (first, second) = (Host::new(&endpoints, &prefix), Host::new(&endpoints, &prefix));
    let holder = first.start("web", "echo token=$PIDFILE_FENCING_TOKEN key=$PIDFILE_CLUSTER_KEY; exec sleep 60");
    let _ = command_in(&first.pidfile("web"), &holder);

    let refused = second.run(&["run", "--try", "web", "--", "true"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let message = stderr(&refused);
    assert!(message.contains(&format!("pid {}", holder.pid())) && message.contains("held by host"), "{message}");

    let status = second.run(&["status", "web"]);
    assert_eq!(status.status.code(), Some(0), "held: {}", stderr(&status));
    assert!(stdout(&status).contains(&format!("supervisor pid {}", holder.pid())), "{}", stdout(&status));

    let stopped = first.run(&["stop", "web"]);
    assert_eq!(stopped.status.code(), Some(0), "{}", stderr(&stopped));
    let output = holder.finish(Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(128 + 15), "the command's SIGTERM: {}", stderr(&output));
    assert!(stdout(&output).contains(&format!("key=/{prefix}/t-web")), "{}", stdout(&output));
    assert!(stdout(&output).contains("token="), "{}", stdout(&output));
    assert!(!first.pidfile("web").exists(), "the pidfile is removed");
    let status = second.run(&["status", "web"]);
    assert_eq!(status.status.code(), Some(3), "released: {}", stdout(&status));
}

#[test]
fn revoked_lease_stops_the_command_with_status_75() {
    let Some(endpoints) = etcd() else { return };
    let prefix = unique_name("smoke");
    let (first, second) = (Host::new(&endpoints, &prefix), Host::new(&endpoints, &prefix));
    let holder = first.start("web", "exec sleep 60");
    let command = command_in(&first.pidfile("web"), &holder);

    // The second host has no pidfile proving the holder: only --revoke acts.
    let refused = second.run(&["stop", "web"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let revoked = second.run(&["stop", "--revoke", "web"]);
    assert_eq!(revoked.status.code(), Some(0), "{}", stderr(&revoked));

    let output = holder.finish(Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(75), "{}", stderr(&output));
    assert!(stderr(&output).contains("lost the cluster lease of t-web"), "{}", stderr(&output));
    assert!(!process_lives(command), "the command is gone");
}

#[test]
fn sigterm_ends_the_wait_for_the_lease_with_the_pidfile_removed() {
    let Some(endpoints) = etcd() else { return };
    let prefix = unique_name("smoke");
    let (first, second) = (Host::new(&endpoints, &prefix), Host::new(&endpoints, &prefix));
    let holder = first.start("web", "exec sleep 60");
    let _ = command_in(&first.pidfile("web"), &holder);
    let waiting = second.start("web", "echo started");
    let _ = pid_in(&second.pidfile("web"), "the waiting supervisor holds its pidfile", |pid| pid == waiting.pid());

    let pid = rustix::process::Pid::from_raw(waiting.pid() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let output = waiting.finish(Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(128 + 15), "{}", stderr(&output));
    assert!(stderr(&output).contains("SIGTERM while waiting for the cluster lease of t-web"), "{}", stderr(&output));
    assert!(stdout(&output).is_empty(), "the command never ran: {}", stdout(&output));
    assert!(!second.pidfile("web").exists(), "the pidfile is removed");
}

#[test]
fn waiting_host_takes_over_with_a_greater_token_when_the_holder_exits() {
    let Some(endpoints) = etcd() else { return };
    let prefix = unique_name("smoke");
    let (first, second) = (Host::new(&endpoints, &prefix), Host::new(&endpoints, &prefix));
    let holder = first.start("web", "echo $PIDFILE_FENCING_TOKEN; exec sleep 60");
    let _ = command_in(&first.pidfile("web"), &holder);
    // Its stderr in a file, read while it runs: it must have seen the holder before the holder stops.
    let said = second.dir.path().join("stderr");
    let waiting = Supervisor(Some(
        second
            .command(&["run", "--ttl", "3s", "web", "--", "sh", "-c", "echo $PIDFILE_FENCING_TOKEN"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&said).unwrap())
            .spawn()
            .unwrap(),
    ));
    let says_it_waits = || std::fs::read_to_string(&said).unwrap().contains("waiting for the cluster lease of t-web");
    eventually("the second host says it waits", says_it_waits);

    let stopped = first.run(&["stop", "web"]);
    assert_eq!(stopped.status.code(), Some(0), "{}", stderr(&stopped));
    let first_token: u64 = stdout(&holder.finish(Duration::from_secs(10))).trim().parse().unwrap();
    let output = waiting.finish(Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(0), "{}", std::fs::read_to_string(&said).unwrap());
    let second_token: u64 = stdout(&output).trim().parse().unwrap();
    assert!(second_token > first_token, "{second_token} after {first_token}");
}

#[test]
fn command_status_is_passed_on_when_sigchld_was_ignored_by_the_caller() {
    let Some(endpoints) = etcd() else { return };
    let host = Host::new(&endpoints, &unique_name("smoke"));
    // bash's `trap '' CHLD` ignores SIGCHLD, and the ignoring is inherited across exec: the kernel would then reap
    // COMMAND itself, its status lost, and its pid free for another process before the supervisor watches it.
    let args = ["run", "--ttl", "3s", "web", "--", "sh", "-c", "sleep 0.2; exit 3"];
    let pidfile = host.command(&args);
    let output = Command::new("bash")
        .args(["-c", "trap '' CHLD; exec \"$0\" \"$@\""])
        .arg(pidfile.get_program())
        .args(pidfile.get_args())
        .envs(pidfile.get_envs().filter_map(|(name, value)| Some((name, value?))))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
}

#[test]
fn command_dies_with_its_supervisor_killed() {
    let Some(endpoints) = etcd() else { return };
    let host = Host::new(&endpoints, &unique_name("smoke"));
    let mut holder = host.start("web", "exec sleep 60");
    let command = command_in(&host.pidfile("web"), &holder);
    assert!(process_lives(command));
    holder.0.as_mut().unwrap().kill().unwrap();
    eventually("the command dies with its supervisor", || !process_lives(command));
}

#[test]
fn no_quorum_is_an_error_not_an_answer() {
    // A port where nothing listens: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let host = Host::new(&format!("127.0.0.1:{port}"), "smoke");
    let status = host.run(&["status", "web"]);
    assert_eq!(status.status.code(), Some(4), "{}", stderr(&status));
    assert!(stderr(&status).contains("no etcd member answered with quorum"), "{}", stderr(&status));
    assert!(stdout(&status).is_empty(), "no answer at all: {}", stdout(&status));

    let refused = host.run(&["run", "--try", "web", "--", "true"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("no etcd member answered with quorum"), "{}", stderr(&refused));
    assert!(!host.pidfile("web").exists(), "the local claim is given back");
}

#[test]
fn cluster_options_without_a_cluster_are_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .env_clear()
        .args(["--dir", dir.path().to_str().unwrap(), "run", "--ttl", "5s", "web", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--ttl needs --cluster"), "{}", stderr(&output));
}

/// The pid a command's script writes to `path`, once written.
fn pid_written(path: &Path) -> u32 {
    let mut pid = None;
    eventually("the script writes its background pid", || {
        pid = std::fs::read_to_string(path).ok().and_then(|text| text.trim().parse().ok());
        pid.is_some()
    });
    pid.unwrap()
}

/// A process a command's script started, by the pid it wrote: killed if a test ends with it still alive.
struct Started(u32);

impl Started {
    /// The process whose pid the script writes to `path`, once written.
    fn written_to(path: &Path) -> Started {
        Started(pid_written(path))
    }

    fn lives(&self) -> bool {
        process_lives(self.0)
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if self.lives() {
            let pid = rustix::process::Pid::from_raw(self.0 as i32).unwrap();
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

#[test]
fn revoked_lease_stops_what_the_command_started() {
    let Some(endpoints) = etcd() else { return };
    let prefix = unique_name("smoke");
    let (first, second) = (Host::new(&endpoints, &prefix), Host::new(&endpoints, &prefix));
    let recorded = first.dir.path().join("grandchild");
    let holder = first.start("web", &format!("sleep 100 >/dev/null 2>&1 & echo $! > {}; wait", recorded.display()));
    let _ = command_in(&first.pidfile("web"), &holder);
    let grandchild = Started::written_to(&recorded);
    assert!(grandchild.lives());

    let revoked = second.run(&["stop", "--revoke", "web"]);
    assert_eq!(revoked.status.code(), Some(0), "{}", stderr(&revoked));
    let output = holder.finish(Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(75), "{}", stderr(&output));
    assert!(!grandchild.lives(), "the command's child is gone with it: {}", stderr(&output));
}

#[test]
fn revoked_lease_stops_an_orphan_of_the_command() {
    let Some(endpoints) = etcd() else { return };
    let prefix = unique_name("smoke");
    let (first, second) = (Host::new(&endpoints, &prefix), Host::new(&endpoints, &prefix));
    let recorded = first.dir.path().join("orphan");
    // The subshell exits at once: its sleep is orphaned, as a daemon that forks away is.
    let holder =
        first.start("web", &format!("(sleep 100 >/dev/null 2>&1 & echo $! > {}); exec sleep 60", recorded.display()));
    let _ = command_in(&first.pidfile("web"), &holder);
    let orphan = Started::written_to(&recorded);
    assert!(orphan.lives());

    let revoked = second.run(&["stop", "--revoke", "web"]);
    assert_eq!(revoked.status.code(), Some(0), "{}", stderr(&revoked));
    let output = holder.finish(Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(75), "{}", stderr(&output));
    assert!(!orphan.lives(), "the orphan is gone with the command: {}", stderr(&output));
}

#[test]
fn command_exiting_stops_what_it_left_running_before_the_lease_goes() {
    let Some(endpoints) = etcd() else { return };
    let host = Host::new(&endpoints, &unique_name("smoke"));
    let recorded = host.dir.path().join("background");
    let holder = host.start("web", &format!("sleep 100 >/dev/null 2>&1 & echo $! > {}; exit 4", recorded.display()));
    let output = holder.finish(Duration::from_secs(10));
    let background = Started::written_to(&recorded);
    assert_eq!(output.status.code(), Some(4), "the command's status: {}", stderr(&output));
    assert!(!background.lives(), "what it left running is stopped: {}", stderr(&output));
    assert!(
        stderr(&output).contains("leaving 1 process(es) it started: stopped them (SIGTERM)"),
        "{}",
        stderr(&output)
    );
    assert!(!host.pidfile("web").exists(), "the pidfile is removed");
}

#[test]
fn what_the_command_left_ignoring_sigterm_gets_sigkill_after_the_kill_grace() {
    let Some(endpoints) = etcd() else { return };
    let host = Host::new(&endpoints, &unique_name("smoke"));
    let recorded = host.dir.path().join("background");
    // The background process writes its pid once it ignores SIGTERM, and the command waits for that before it ends:
    // a SIGTERM sent before the trap would end it, as one did on a loaded machine.
    let script = format!(
        "sh -c 'trap \"\" TERM; echo $$ > \"$0\"; exec sleep 100' {recorded} >/dev/null 2>&1 &
         i=0; while [ ! -s {recorded} ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i + 1)); done",
        recorded = recorded.display()
    );
    let output = host.run(&["run", "--ttl", "3s", "--kill-grace", "1s", "web", "--", "sh", "-c", &script]);
    let background = Started::written_to(&recorded);
    assert_eq!(output.status.code(), Some(0), "the command's status: {}", stderr(&output));
    assert!(!background.lives(), "it is killed: {}", stderr(&output));
    assert!(stderr(&output).contains("stopped them (SIGTERM, SIGKILL to 1 after 1.0 s)"), "{}", stderr(&output));
}

#[test]
fn orphans_that_end_while_the_command_runs_are_reaped() {
    let Some(endpoints) = etcd() else { return };
    let host = Host::new(&endpoints, &unique_name("smoke"));
    let recorded = host.dir.path().join("orphan");
    let holder =
        host.start("web", &format!("(sleep 0.2 >/dev/null 2>&1 & echo $! > {}); exec sleep 60", recorded.display()));
    let _ = command_in(&host.pidfile("web"), &holder);
    // It ends by itself: a pid to look at, not to kill once the test ends, as it may be another process's by then.
    let orphan = pid_written(&recorded);
    // A zombie until its parent, the supervisor by then, waits for it.
    eventually("the orphan is reaped", || !Path::new(&format!("/proc/{orphan}")).exists());
    assert!(process_lives(holder.pid()), "the supervisor goes on");

    let stopped = host.run(&["stop", "web"]);
    assert_eq!(stopped.status.code(), Some(0), "{}", stderr(&stopped));
    let output = holder.finish(Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(128 + 15), "{}", stderr(&output));
}
