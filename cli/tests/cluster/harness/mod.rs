//! What the cluster scenarios share: etcd clusters, proxies, the fence and its oracle, contenders, clocks, skips.

pub mod contender;
pub mod etcd;
pub mod fence;
pub mod proxy;
pub mod scene;
pub mod views;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use etcd::EtcdCluster;

/// The lease the contenders take, and how long they give their child between SIGTERM and SIGKILL.
pub const TTL: Duration = Duration::from_secs(5);
pub const KILL_GRACE: Duration = Duration::from_secs(1);
/// How often a waiting contender tries again (the library's default).
pub const POLL: Duration = Duration::from_millis(250);
/// How much earlier than etcd a holder gives its lease up: the library's default at this TTL (a fifth of it).
pub const MARGIN: Duration = Duration::from_secs(1);

/// CLOCK_MONOTONIC now, in nanoseconds: the clock the fence writer stamps its records with.
pub fn now_nanos() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Nanoseconds as seconds with three decimals, for the figures the scenarios print.
pub fn seconds(nanos: u64) -> String {
    format!("{:.3}", nanos as f64 / 1e9)
}

/// A difference of CLOCK_MONOTONIC readings as seconds (negative: the second came first).
pub fn signed_seconds(nanos: i64) -> String {
    format!("{:.3}", nanos as f64 / 1e9)
}

pub fn nanos(duration: Duration) -> u64 {
    duration.as_nanos() as u64
}

/// Holds the cluster scenarios to one at a time within this binary (nextest runs them one at a time too, see
/// `.config/nextest.toml`): three etcd members each on two cores, and the failover times would mean nothing.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// The etcd a scenario runs against: the endpoints, and a key prefix no other test uses.
pub struct Etcd {
    endpoints: Vec<String>,
    prefix: String,
    /// The test's own members, when it has them: only then may it kill or cut them off.
    pub own: Option<EtcdCluster>,
}

impl Etcd {
    /// A cluster of the test's own, which it may kill members of; `None` (the test skipped) without etcd.
    pub fn own() -> Option<Etcd> {
        let Some(binary) = etcd_binary() else {
            skip("needs etcd (Debian's etcd-server, or PIDFILE_TEST_ETCD_BIN)");
            return None;
        };
        let cluster = EtcdCluster::start(&binary);
        Some(Etcd { endpoints: cluster.endpoints(), prefix: unique_prefix(), own: Some(cluster) })
    }

    /// The shared cluster named by `PIDFILE_TEST_ETCD` (which the scenario must leave whole), else one of its own.
    pub fn shared() -> Option<Etcd> {
        match std::env::var("PIDFILE_TEST_ETCD") {
            Ok(endpoints) if !endpoints.is_empty() => Some(Etcd {
                endpoints: endpoints.split(',').map(str::to_owned).collect(),
                prefix: unique_prefix(),
                own: None,
            }),
            _ => Etcd::own(),
        }
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// `etcd://ENDPOINTS/PREFIX`, for the given endpoints (the members' or proxies in front of them).
    pub fn url(&self, endpoints: &[String]) -> String {
        format!("etcd://{}/{}", endpoints.join(","), self.prefix)
    }

    pub fn members(&mut self) -> &mut EtcdCluster {
        self.own.as_mut().expect("a scenario that kills members runs its own cluster")
    }
}

/// The etcd binary: `PIDFILE_TEST_ETCD_BIN`, else `etcd` on the PATH or in /usr/bin.
fn etcd_binary() -> Option<PathBuf> {
    if let Some(binary) = std::env::var_os("PIDFILE_TEST_ETCD_BIN").filter(|binary| !binary.is_empty()) {
        return Some(PathBuf::from(binary));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("etcd"))
        .find(|etcd| etcd.is_file())
}

fn unique_prefix() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = now_nanos() % 1_000_000_000;
    format!("pidfile-test-{}x{nanos}x{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// Says why a scenario cannot run, and lists it among the skips; fails instead under `PIDFILE_TESTS_REQUIRE_ETCD`
/// (as CI sets it), so that a run meant to cover the cluster cannot pass without it.
fn skip(why: &str) {
    assert!(
        std::env::var_os("PIDFILE_TESTS_REQUIRE_ETCD").is_none(),
        "this test {why}, and PIDFILE_TESTS_REQUIRE_ETCD forbids skipping it"
    );
    eprintln!("skipped: {why}");
    crate::common::note_skip(why);
}
