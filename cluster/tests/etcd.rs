//! The lock against a real etcd cluster, named by `PIDFILE_TEST_ETCD` (`HOST:PORT,HOST:PORT,...`). Without it these
//! tests are skipped, saying so (and fail when `PIDFILE_TESTS_REQUIRE_ETCD=1` wants them run). Every test works
//! under a prefix of its own, so that they can share one cluster, in parallel and run after run.

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::prelude::Engine;
use pidfiles_cluster::{Cluster, Error, HolderInfo, Lease, Options};
use rustix::event::{PollFd, PollFlags, poll};
use rustix::time::Timespec;

/// A cluster under a prefix no other test (nor another run) uses, or `None` (the test then returns) when no etcd
/// is given.
fn test_cluster() -> Option<Cluster> {
    let Some(endpoints) = std::env::var("PIDFILE_TEST_ETCD").ok().filter(|endpoints| !endpoints.is_empty()) else {
        assert!(
            std::env::var("PIDFILE_TESTS_REQUIRE_ETCD").as_deref() != Ok("1"),
            "this test needs etcd (PIDFILE_TEST_ETCD), and PIDFILE_TESTS_REQUIRE_ETCD=1 forbids skipping it"
        );
        eprintln!("skipped: needs an etcd cluster named by PIDFILE_TEST_ETCD=HOST:PORT,...");
        note_skip("needs an etcd cluster named by PIDFILE_TEST_ETCD");
        return None;
    };
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let prefix = format!("pidfile-test-{}x{nanos}x{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
    Some(Cluster::parse(&format!("etcd://{endpoints}/{prefix}")).expect("PIDFILE_TEST_ETCD is HOST:PORT,..."))
}

/// Appends this test and why it was skipped to the file named by `PIDFILE_TESTS_SKIP_LOG`, if set.
fn note_skip(why: &str) {
    use std::io::Write;
    let Some(log) = std::env::var_os("PIDFILE_TESTS_SKIP_LOG") else {
        return;
    };
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
        let _ = writeln!(file, "etcd::{test}: {why}");
    }
}

/// The test lease: 5 s, as the command's tests use.
fn options() -> Options {
    Options::with_ttl(Duration::from_secs(5))
}

fn info(command: &str) -> HolderInfo {
    HolderInfo::of_this_process(command)
}

/// Whether `fd` becomes readable within `limit`.
fn readable_within(fd: BorrowedFd<'_>, limit: Duration) -> bool {
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let limit = Timespec { tv_sec: limit.as_secs() as i64, tv_nsec: limit.subsec_nanos().into() };
    poll(&mut fds, Some(&limit)).unwrap() == 1
}

#[test]
fn released_lock_is_taken_by_the_next_with_a_greater_token() {
    let Some(cluster) = test_cluster() else { return };
    let first = Lease::try_acquire(&cluster, "default-web", &info("first"), &options()).unwrap();
    let Err(Error::Held { holder }) = Lease::try_acquire(&cluster, "default-web", &info("second"), &options()) else {
        panic!("the second attempt should find the lock held");
    };
    assert_eq!((holder.token, holder.lease), (first.token(), first.lease_id()));
    first.release().unwrap();
    let second = Lease::try_acquire(&cluster, "default-web", &info("second"), &options()).unwrap();
    assert!(second.token() > holder.token, "{} after {}", second.token(), holder.token);
}

#[test]
fn held_error_names_the_holders_host_pid_and_token() {
    let Some(cluster) = test_cluster() else { return };
    let held = Lease::try_acquire(&cluster, "default-web", &info("sleep 60"), &options()).unwrap();
    let error = Lease::try_acquire(&cluster, "default-web", &info("other"), &options()).unwrap_err();
    let host = rustix::system::uname().nodename().to_string_lossy().into_owned();
    let expected = format!("{} is held by host {host} pid {} (token {})", held.key(), std::process::id(), held.token());
    assert_eq!(error.to_string(), expected);
}

#[test]
fn tokens_strictly_increase_across_holders() {
    let Some(cluster) = test_cluster() else { return };
    let mut tokens = Vec::new();
    for _ in 0..4 {
        let lease = Lease::try_acquire(&cluster, "default-batch", &info("batch"), &options()).unwrap();
        tokens.push(lease.token());
        lease.release().unwrap();
    }
    assert!(tokens.windows(2).all(|pair| pair[0] < pair[1]), "{tokens:?}");
}

#[test]
fn holder_shows_who_holds_and_the_time_left() {
    let Some(cluster) = test_cluster() else { return };
    assert!(cluster.holder("default-web", &options()).unwrap().is_none());
    let lease = Lease::try_acquire(&cluster, "default-web", &info("web --port 80"), &options()).unwrap();
    let holder = cluster.holder("default-web", &options()).unwrap().expect("a holder");
    let recorded = holder.info.as_ref().expect("the holder's record");
    assert_eq!((recorded.pid, recorded.command.as_str()), (std::process::id(), "web --port 80"));
    assert_eq!((holder.name.as_str(), holder.key.as_str(), holder.token), ("default-web", lease.key(), lease.token()));
    assert!(holder.ttl_left.is_some_and(|left| left <= Duration::from_secs(5)), "{:?}", holder.ttl_left);
}

#[test]
fn holders_lists_every_lock_under_the_prefix() {
    let Some(cluster) = test_cluster() else { return };
    let _web = Lease::try_acquire(&cluster, "default-web", &info("web"), &options()).unwrap();
    let _db = Lease::try_acquire(&cluster, "default-db", &info("db"), &options()).unwrap();
    let names: Vec<String> = cluster.holders(&options()).unwrap().into_iter().map(|holder| holder.name).collect();
    assert_eq!(names, ["default-db", "default-web"]);
}

#[test]
fn holders_leaves_out_the_locks_of_a_prefix_under_it() {
    let Some(cluster) = test_cluster() else { return };
    let url = format!("etcd://{}{}/nested", cluster.endpoints().join(","), cluster.prefix());
    let nested = Cluster::parse(&url).unwrap();
    let _web = Lease::try_acquire(&nested, "default-web", &info("web"), &options()).unwrap();
    assert_eq!(nested.holders(&options()).unwrap().len(), 1);
    let names: Vec<String> = cluster.holders(&options()).unwrap().into_iter().map(|holder| holder.name).collect();
    assert!(names.is_empty(), "{names:?} are the nested prefix's, not locks of {}", cluster.prefix());
}

#[test]
fn waiting_contender_takes_the_lock_once_released() {
    let Some(cluster) = test_cluster() else { return };
    let first = Lease::try_acquire(&cluster, "default-web", &info("first"), &options()).unwrap();
    let first_token = first.token();
    let waiter = std::thread::spawn({
        let cluster = cluster.clone();
        move || Lease::acquire(&cluster, "default-web", &info("second"), &options(), Some(Duration::from_secs(30)))
    });
    std::thread::sleep(Duration::from_millis(500));
    first.release().unwrap();
    let second = waiter.join().unwrap().unwrap();
    assert!(second.token() > first_token);
}

#[test]
fn waiting_contender_times_out_naming_the_holder() {
    let Some(cluster) = test_cluster() else { return };
    let held = Lease::try_acquire(&cluster, "default-web", &info("first"), &options()).unwrap();
    let error = Lease::acquire(&cluster, "default-web", &info("second"), &options(), Some(Duration::from_millis(700)))
        .unwrap_err();
    let Error::Timeout { name, holder: Some(holder) } = &error else { panic!("{error}") };
    assert_eq!((name.as_str(), holder.token), ("default-web", held.token()));
    assert!(error.to_string().starts_with("timed out waiting for default-web: still held by host "), "{error}");
}

#[test]
fn renewed_lease_outlives_its_ttl() {
    let Some(cluster) = test_cluster() else { return };
    // Long enough that a slow renewal on a busy machine (etcd's fsync) does not cost the lease: 3.2 s of slack.
    let options = Options::with_ttl(Duration::from_secs(4));
    let lease = Lease::try_acquire(&cluster, "default-web", &info("web"), &options).unwrap();
    // More than two TTLs: without renewals etcd would have dropped the key, and the deadline passed.
    assert!(!readable_within(lease.lost_fd(), Duration::from_secs(9)));
    assert!(!lease.is_lost());
    assert_eq!(cluster.holder("default-web", &options).unwrap().map(|holder| holder.token), Some(lease.token()));
}

#[test]
fn lease_not_renewed_expires_and_its_lost_descriptor_fires() {
    let Some(cluster) = test_cluster() else { return };
    // A renewal period far beyond the TTL: the lease is never renewed, as if its holder were stopped.
    let options = Options { renew_every: Duration::from_secs(3600), ..Options::with_ttl(Duration::from_secs(2)) };
    let lease = Lease::try_acquire(&cluster, "default-web", &info("stopped"), &options).unwrap();
    assert!(readable_within(lease.lost_fd(), Duration::from_secs(30)));
    assert!(lease.is_lost());
    assert_eq!(lease.time_left(), Duration::ZERO);
    // etcd lets the lease go after its TTL, after the holder's own deadline: then a contender gets in.
    let next = Lease::acquire(&cluster, "default-web", &info("next"), &options, Some(Duration::from_secs(30))).unwrap();
    assert!(next.token() > lease.token());
}

#[test]
fn revoked_holder_learns_its_loss_at_its_next_renewal() {
    let Some(cluster) = test_cluster() else { return };
    let options = Options::with_ttl(Duration::from_secs(60));
    let lease = Lease::try_acquire(&cluster, "default-web", &info("web"), &options).unwrap();
    let revoked = cluster.revoke("default-web", &options).unwrap().expect("a holder revoked");
    assert_eq!(revoked.token, lease.token());
    // The deadline is most of a minute away: only the renewal answered with no TTL can fire this soon.
    assert!(readable_within(lease.lost_fd(), Duration::from_secs(30)));
    assert!(lease.is_lost());
    assert!(cluster.holder("default-web", &options).unwrap().is_none());
}

#[test]
fn dead_member_first_in_the_list_is_passed_over() {
    let Some(cluster) = test_cluster() else { return };
    // Port 1 on loopback: nothing listens there.
    let with_dead = format!("etcd://127.0.0.1:1,{}{}", cluster.endpoints().join(","), cluster.prefix());
    let cluster = Cluster::parse(&with_dead).unwrap();
    let lease = Lease::try_acquire(&cluster, "default-web", &info("web"), &options()).unwrap();
    assert!(!readable_within(lease.lost_fd(), Duration::from_secs(2)));
    lease.release().unwrap();
}

#[test]
fn no_member_answering_is_no_quorum() {
    // Needs no etcd: nothing listens on these ports of loopback.
    let cluster = Cluster::parse("etcd://127.0.0.1:1,127.0.0.1:9").unwrap();
    let error = Lease::try_acquire(&cluster, "default-web", &info("web"), &options()).unwrap_err();
    assert!(matches!(error, Error::NoQuorum { .. }), "{error}");
    assert!(error.to_string().starts_with("no etcd member answered with quorum (tried 127.0.0.1:1, 127.0.0.1:9): "));
    let error = cluster.holder("default-web", &options()).unwrap_err();
    assert!(matches!(error, Error::NoQuorum { .. }), "{error}");
    let error = Lease::acquire(&cluster, "default-web", &info("web"), &options(), Some(Duration::from_millis(300)))
        .unwrap_err();
    assert!(matches!(error, Error::NoQuorum { .. }), "a wait that never reached etcd ends in NoQuorum: {error}");
}

#[test]
fn key_deleted_by_hand_loses_the_lease() {
    let Some(cluster) = test_cluster() else { return };
    // A long TTL renewed often: only reading the key back can make the lease lost soon.
    let options = Options { renew_every: Duration::from_millis(100), ..Options::with_ttl(Duration::from_secs(60)) };
    let lease = Lease::try_acquire(&cluster, "default-web", &info("web"), &options).unwrap();
    // As `etcdctl del` would: through the gateway, base64 key.
    let key = base64::prelude::BASE64_STANDARD.encode(lease.key());
    let url = format!("http://{}/v3/kv/deleterange", cluster.endpoints()[0]);
    let answer: serde_json::Value =
        ureq::post(&url).send_json(serde_json::json!({ "key": key })).unwrap().body_mut().read_json().unwrap();
    assert_eq!(answer["deleted"], "1", "{answer}");
    assert!(readable_within(lease.lost_fd(), Duration::from_secs(30)));
    assert!(lease.is_lost());
}

#[test]
fn revoking_a_free_name_revokes_nothing() {
    let Some(cluster) = test_cluster() else { return };
    assert!(cluster.revoke("default-web", &options()).unwrap().is_none());
    assert!(cluster.holders(&options()).unwrap().is_empty());
}

#[test]
fn revoking_a_key_bound_to_no_lease_fails_naming_the_key() {
    let Some(cluster) = test_cluster() else { return };
    // As `etcdctl put` would by hand: a key with no lease, which never expires and which no revocation removes.
    let key = cluster.key("default-web");
    let url = format!("http://{}/v3/kv/put", cluster.endpoints()[0]);
    let encode = |text: &str| base64::prelude::BASE64_STANDARD.encode(text);
    ureq::post(&url).send_json(serde_json::json!({ "key": encode(&key), "value": encode("by hand") })).unwrap();
    let error = cluster.revoke("default-web", &options()).unwrap_err();
    assert!(matches!(error, Error::Unleased { .. }), "{error}");
    assert!(error.to_string().contains(&key), "{error}");
    assert_eq!(cluster.holder("default-web", &options()).unwrap().unwrap().lease, 0);
    // Nothing else removes it.
    let url = format!("http://{}/v3/kv/deleterange", cluster.endpoints()[0]);
    ureq::post(&url).send_json(serde_json::json!({ "key": encode(&key) })).unwrap();
}
