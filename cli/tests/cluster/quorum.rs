//! Two of three members die: nobody can renew the lease, so the holder's child is killed by its deadline and the
//! service runs nowhere (safety over availability); views say there is no quorum rather than name a stale holder;
//! once the members are back, a contender holds the lease within the TTL and 5 s.

use std::time::Duration;

use crate::harness::fence::WATCH_EVERY;
use crate::harness::scene::Scene;
use crate::harness::views::{list_json, status};
use crate::harness::{Etcd, MARGIN, TTL, nanos, now_nanos, one_at_a_time, seconds, signed_seconds};

#[test]
fn without_quorum_nobody_holds_and_a_holder_returns_with_it() {
    let _one = one_at_a_time();
    let Some(mut etcd) = Etcd::own() else { return };
    let mut scene = Scene::open(&etcd, false);

    let lost = now_nanos();
    etcd.members().kill(1);
    etcd.members().kill(2);
    // A leader renews leases on its own, without its peers: until the survivor notices it lost them and stops
    // leading, it may still acknowledge the holder's renewals, and the holder's deadline counts from the last one.
    let leaderless = etcd.members().wait_leaderless(Duration::from_secs(10)).expect("the survivor stops leading");
    let deadline = leaderless + nanos(TTL - MARGIN);
    let killed =
        scene.fence.wait_death(scene.first.pid, TTL + Duration::from_secs(5)).expect("the holder's child is killed");
    let (exit, _) = scene.holder.wait_exit(Duration::from_secs(5)).expect("the supervisor exits");

    let status = status(&scene.waiter);
    let list = list_json(&scene.waiter);
    eprintln!("status --cluster without quorum: {status}");
    eprintln!("list --cluster --json without quorum: {list}");
    // The outage lasts past a whole lease after the child's death: nobody may start meanwhile.
    let restore_at = killed + nanos(TTL);
    std::thread::sleep(Duration::from_nanos(restore_at.saturating_sub(now_nanos())));
    let during = scene.fence.wait_start(lost, Duration::ZERO);

    let restarted = now_nanos();
    etcd.members().restart(1);
    etcd.members().restart(2);
    // Quorum is back once the members have elected a leader: the bound counts from there, as etcd can
    // neither expire the old lease nor grant a new one before.
    etcd.members().wait_leader(Duration::from_secs(30)).expect("the restarted members elect a leader");
    let restored = now_nanos();
    etcd.members().wait_healthy(&[0, 1, 2]).expect("the restarted members rejoin");
    let bound = TTL + Duration::from_secs(5);
    let second = scene.fence.wait_start(restarted, bound + Duration::from_secs(10));

    eprintln!(
        "majority lost: no leader left {} s after; the holder's child gone {} s after (bound: the latest deadline, \
         TTL - margin after the leader went, {} s), its supervisor exited with {exit}; members restarted after {} s, \
         a leader elected {} s later; a new child started {} s after that (bound: TTL + 5 s = {} s)",
        seconds(leaderless - lost),
        seconds(killed - lost),
        seconds(deadline - lost),
        seconds(restarted - lost),
        seconds(restored - restarted),
        second.as_ref().map_or("never".to_owned(), |second| signed_seconds(second.start as i64 - restored as i64)),
        seconds(nanos(bound)),
    );
    // The harness looks every few milliseconds, and asks for the leader over HTTP: 100 ms of slack for both.
    let slack = nanos(Duration::from_millis(100) + WATCH_EVERY);
    assert!(killed <= deadline + slack, "the child outlived its deadline by {} s", seconds(killed - deadline));
    assert_eq!(exit.code(), Some(75), "a lost lease ends the supervisor with EX_TEMPFAIL");
    assert!(during.is_none(), "a child started without quorum: {during:?}");
    for view in [&status, &list] {
        assert!(!view.success, "a view succeeded without quorum: {view}");
        assert!(view.stderr.to_lowercase().contains("quorum"), "the error does not say quorum: {view}");
        assert!(!view.mentions(&scene.first), "a view named the stale holder: {view}");
    }
    let second = second.expect("a new holder once quorum is back");
    assert!(
        second.start - restored <= nanos(bound),
        "the new holder came {} s after quorum",
        seconds(second.start - restored)
    );
    assert_eq!(second.supervisor, scene.waiter.pid());
    scene.fence.check(&[]);
}
