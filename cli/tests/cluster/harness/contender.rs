//! A contender: one `pidfile run --cluster` supervisor, as on a host of its own (its own pid directory, and its
//! own proxies in front of the members when the scenario cuts it off), running the fence writer as its service.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};

use super::fence::Fence;
use super::proxy::Proxy;
use super::{Etcd, KILL_GRACE, TTL, now_nanos};

/// The service every contender of a scenario runs: one key, one lease to win.
pub const SERVICE: &str = "fenced";

pub struct Contender {
    pub label: String,
    dir: tempfile::TempDir,
    url: String,
    command: Vec<String>,
    child: Option<Child>,
    /// One per member, in member order, when the contender reaches them through proxies.
    pub proxies: Vec<Proxy>,
}

impl Contender {
    /// Starts a contender that reaches the members directly.
    pub fn start(label: &str, etcd: &Etcd, fence: &Fence) -> Contender {
        Contender::launch(label, etcd, fence.command(), Vec::new())
    }

    /// Starts a contender that reaches each member through a proxy of its own, which the scenario can blackhole,
    /// and runs `command` (one of the fence's).
    pub fn start_behind_proxies(label: &str, etcd: &Etcd, command: Vec<String>) -> Contender {
        let proxies = etcd.endpoints().iter().map(|endpoint| Proxy::start(endpoint)).collect();
        Contender::launch(label, etcd, command, proxies)
    }

    fn launch(label: &str, etcd: &Etcd, command: Vec<String>, proxies: Vec<Proxy>) -> Contender {
        let endpoints: Vec<String> =
            if proxies.is_empty() { etcd.endpoints().to_vec() } else { proxies.iter().map(Proxy::endpoint).collect() };
        let dir = tempfile::Builder::new().prefix("pidfile-host-").tempdir().expect("a pid directory");
        let mut contender =
            Contender { label: label.to_owned(), dir, url: etcd.url(&endpoints), command, child: None, proxies };
        contender.respawn();
        contender
    }

    /// Starts the supervisor again (after it exited), as a restart policy would.
    pub fn respawn(&mut self) {
        assert!(self.child.is_none(), "{} still runs", self.label);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("supervisor.log"))
            .expect("the supervisor's log");
        let ttl = format!("{}s", TTL.as_secs());
        let grace = format!("{}s", KILL_GRACE.as_secs());
        let child = self
            .pidfile(&["run", "--cluster", &self.url, "--ttl", &ttl, "--kill-grace", &grace, SERVICE, "--"])
            .args(&self.command)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the supervisor's log"))
            .stderr(log)
            .spawn()
            .expect("start pidfile run");
        self.child = Some(child);
    }

    /// `pidfile` with this contender's pid directory and instance, and `args`.
    pub fn pidfile(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pidfile"));
        command.env_clear().arg("--dir").arg(self.dir.path()).args(["--instance", "t"]).args(args);
        command
    }

    /// The contender's cluster URL, for `status`/`list --cluster` as it would run them.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The running supervisor's pid (0 once it exited and was not started again).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        self.exited().is_none() && self.child.is_some()
    }

    /// Sends `signal` to the supervisor.
    pub fn signal(&self, signal: Signal) {
        if let Some(child) = &self.child {
            let _ = kill_process(Pid::from_child(child), signal);
        }
    }

    /// The supervisor's exit status, if it ended (it is then reaped, and `pid` is 0).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().expect("wait for the supervisor")?;
        self.child = None;
        Some(status)
    }

    /// Waits, at most `within`, for the supervisor to end; its status and when it was seen ended.
    pub fn wait_exit(&mut self, within: Duration) -> Option<(ExitStatus, u64)> {
        let until = now_nanos() + within.as_nanos() as u64;
        while now_nanos() < until {
            if let Some(status) = self.exited() {
                return Some((status, now_nanos()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// Blackholes every proxy of the contender: it can reach no member.
    pub fn cut_off(&self) {
        assert!(!self.proxies.is_empty(), "{} has no proxies to cut", self.label);
        self.proxies.iter().for_each(Proxy::blackhole);
    }

    pub fn reconnect(&self) {
        self.proxies.iter().for_each(Proxy::heal);
    }

    /// What the supervisor said on its standard output and error, for a failure's message.
    pub fn log(&self) -> String {
        read_lossy(&self.dir.path().join("supervisor.log"))
    }
}

impl Drop for Contender {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}'s supervisor said:\n{}", self.label, self.log());
        }
    }
}

fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}
