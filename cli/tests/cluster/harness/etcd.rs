//! Three etcd members of a test's own on loopback, which the test may kill, restart and ask who leads.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Ports 20000 to 31999, eight per cluster (six used): below Linux's ephemeral range (32768 and up, where a member's
/// port could already be some outgoing connection's) and above `scripts/etcd-cluster`'s 10000-19999.
const FIRST_PORT: u16 = 20000;
const SLOTS: u32 = 1500;

/// The bound on a cluster, or a restarted member, becoming healthy.
const HEALTHY_WITHIN: Duration = Duration::from_secs(30);

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

/// A running 3-member cluster; every member is killed, and its data removed, when dropped.
pub struct EtcdCluster {
    dir: tempfile::TempDir,
    binary: PathBuf,
    cluster_token: String,
    members: Vec<Member>,
}

impl EtcdCluster {
    /// Starts three members from `binary` on free ports and waits until all three are healthy.
    pub fn start(binary: &Path) -> EtcdCluster {
        let mut last_failure = String::new();
        for _ in 0..3 {
            let base = free_ports();
            let dir = tempfile::Builder::new().prefix("pidfile-etcd-").tempdir().expect("a directory for etcd");
            let members = (0..3u16)
                .map(|i| Member {
                    name: format!("m{}", i + 1),
                    client_port: base + 2 * i,
                    peer_port: base + 2 * i + 1,
                    child: None,
                })
                .collect();
            let mut cluster =
                EtcdCluster { dir, binary: binary.to_owned(), cluster_token: format!("pidfile-test-{base}"), members };
            for i in 0..3 {
                cluster.spawn(i, "new");
            }
            match cluster.wait_healthy(&[0, 1, 2]) {
                Ok(()) => return cluster,
                // Another program may have taken a port between the check and etcd's bind: try other ports.
                Err(failure) => last_failure = failure,
            }
        }
        panic!("three etcd members did not become healthy, three times over: {last_failure}");
    }

    /// The members' client endpoints, `127.0.0.1:PORT`, in member order.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|member| format!("127.0.0.1:{}", member.client_port)).collect()
    }

    /// SIGKILLs member `i` (0, 1 or 2) and waits for it to end.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether member `i` runs (was not killed, or was restarted since).
    pub fn is_running(&self, i: usize) -> bool {
        self.members[i].child.is_some()
    }

    /// Starts killed member `i` again on its data directory, as the same member of the existing cluster. Does not
    /// wait: with its peers dead it cannot become healthy on its own.
    pub fn restart(&mut self, i: usize) {
        assert!(self.members[i].child.is_none(), "member {i} still runs");
        self.spawn(i, "existing");
    }

    /// Waits until the given members all answer that the cluster is healthy (has a leader and serves).
    pub fn wait_healthy(&mut self, members: &[usize]) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let mut failure = None;
            for &i in members {
                let exited = self.members[i].child.as_mut().and_then(|child| child.try_wait().ok().flatten());
                if let Some(status) = exited {
                    self.members[i].child = None;
                    let log = std::fs::read_to_string(self.log(i)).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(5).collect();
                    return Err(format!("member {} exited ({status}): {}", self.members[i].name, tail.join(" | ")));
                }
                match http(self.members[i].client_port, "GET", "/health", "") {
                    Ok(body) if body.contains("\"health\":\"true\"") => {}
                    Ok(body) => failure = Some(format!("member {} answered {body}", self.members[i].name)),
                    Err(error) => failure = Some(format!("member {}: {error}", self.members[i].name)),
                }
            }
            let Some(failure) = failure else { return Ok(()) };
            if started.elapsed() > HEALTHY_WITHIN {
                return Err(format!("not healthy within {HEALTHY_WITHIN:?}: {failure}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The member that leads the cluster now: the running member that names itself leader (a leader that lost its
    /// quorum steps down within an election timeout).
    pub fn leader(&self) -> Option<usize> {
        self.members.iter().position(|member| {
            member.child.is_some()
                && http(member.client_port, "POST", "/v3/maintenance/status", "{}")
                    .ok()
                    .and_then(|body| serde_json::from_str::<serde_json::Value>(&body).ok())
                    .is_some_and(|status| {
                        let leader = status["leader"].as_str().unwrap_or("0");
                        leader != "0" && Some(leader) == status["header"]["member_id"].as_str()
                    })
        })
    }

    /// Waits, at most `within`, until the running members have elected a leader: quorum is back.
    pub fn wait_leader(&self, within: Duration) -> Option<usize> {
        let started = Instant::now();
        while started.elapsed() < within {
            if let Some(leader) = self.leader() {
                return Some(leader);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits, at most `within`, until no running member names itself leader; when that was seen.
    pub fn wait_leaderless(&self, within: Duration) -> Option<u64> {
        let started = Instant::now();
        while started.elapsed() < within {
            if self.leader().is_none() {
                return Some(super::now_nanos());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn log(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.members[i].name))
    }

    fn spawn(&mut self, i: usize, state: &str) {
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|member| format!("{}=http://127.0.0.1:{}", member.name, member.peer_port))
            .collect();
        let member = &self.members[i];
        let client = format!("http://127.0.0.1:{}", member.client_port);
        let peer = format!("http://127.0.0.1:{}", member.peer_port);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log(i)).expect("etcd's log");
        let child = Command::new(&self.binary)
            .args(["--name", &member.name])
            .arg("--data-dir")
            .arg(self.dir.path().join(&member.name))
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-token", &self.cluster_token, "--initial-cluster-state", state])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd's log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", self.binary.display()));
        self.members[i].child = Some(child);
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// The first of six consecutive free loopback ports, from a slot chosen by this process's id and a counter so that
/// two test processes rarely try the same ones.
fn free_ports() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    for _ in 0..100 {
        let slot = (std::process::id().wrapping_mul(7) + NEXT.fetch_add(1, Ordering::SeqCst) * 13) % SLOTS;
        let base = FIRST_PORT + (slot * 8) as u16;
        if (base..base + 6).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok()) {
            return base;
        }
    }
    panic!("no six free ports in {FIRST_PORT}-{}", FIRST_PORT as u32 + SLOTS * 8);
}

/// One HTTP/1.0 request to a member on loopback, answered within a second; the response's body.
pub fn http(port: u16, method: &str, path: &str, body: &str) -> Result<String, String> {
    let timeout = Duration::from_secs(1);
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, timeout).map_err(|error| error.to_string())?;
    stream.set_read_timeout(Some(timeout)).map_err(|error| error.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|error| error.to_string())?;
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(|error| error.to_string())?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|error| error.to_string())?;
    let (_head, body) = response.split_once("\r\n\r\n").ok_or_else(|| format!("no HTTP response: {response:?}"))?;
    Ok(body.to_owned())
}
