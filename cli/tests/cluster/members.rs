//! One member dies or is cut off from the holder: the holder keeps its lease through the others, and nobody takes
//! over (zero false failovers).

use std::time::Duration;

use crate::harness::scene::Scene;
use crate::harness::{Etcd, TTL, now_nanos, one_at_a_time, seconds};

/// How long the holder must keep its lease after the member is lost: two leases' worth.
const WATCHED_FOR: Duration = Duration::from_secs(2 * TTL.as_secs());

#[test]
fn the_holder_keeps_its_lease_when_the_leader_dies() {
    let _one = one_at_a_time();
    let Some(mut etcd) = Etcd::own() else { return };
    let mut scene = Scene::open(&etcd, false);
    let leader = etcd.members().leader().expect("the cluster has a leader");

    let killed = now_nanos();
    etcd.members().kill(leader);
    let failover = scene.fence.wait_start(killed, WATCHED_FOR);
    let old = scene.fence.tenure(scene.first.pid);

    eprintln!(
        "etcd leader (member {}) killed: {} s later the holder's child {} and {} child started",
        leader + 1,
        seconds(now_nanos() - killed),
        if old.is_alive() { "still runs" } else { "is gone" },
        if failover.is_some() { "another" } else { "no other" },
    );
    assert!(failover.is_none(), "a false failover: {failover:?}");
    assert!(old.is_alive() && scene.holder.is_running(), "the holder lost its lease");
    assert!(scene.waiter.is_running(), "the waiter gave up: {}", scene.waiter.log());
    scene.fence.check(&[]);
}

#[test]
fn the_holder_keeps_its_lease_when_its_member_is_cut_off() {
    let _one = one_at_a_time();
    let Some(etcd) = Etcd::own() else { return };
    let mut scene = Scene::open(&etcd, true);
    // The member it talks to is the one whose proxy carried its latest request.
    let used = (0..3).max_by_key(|&i| scene.holder.proxies[i].last_request()).unwrap();
    assert!(scene.holder.proxies[used].last_request() > 0, "the holder sent nothing through its proxies");

    let cut = now_nanos();
    scene.holder.proxies[used].blackhole();
    let failover = scene.fence.wait_start(cut, WATCHED_FOR);
    let old = scene.fence.tenure(scene.first.pid);
    let moved_to = (0..3).filter(|&i| i != used).find(|&i| scene.holder.proxies[i].last_request() > cut);

    eprintln!(
        "the holder's member (member {}) cut off: {} s later the holder's child {}, {} child started, the holder \
         talks to member {}",
        used + 1,
        seconds(now_nanos() - cut),
        if old.is_alive() { "still runs" } else { "is gone" },
        if failover.is_some() { "another" } else { "no other" },
        moved_to.map_or("none".to_owned(), |i| (i + 1).to_string()),
    );
    assert!(failover.is_none(), "a false failover: {failover:?}");
    assert!(old.is_alive() && scene.holder.is_running(), "the holder lost its lease");
    assert!(moved_to.is_some(), "the holder renewed through no other member");
    scene.fence.check(&[]);
}
