//! Two of three members die: nobody can hold the lease, so the holder's child is killed by its deadline and the
//! service runs nowhere (safety over availability); views say there is no quorum rather than name a stale holder;
//! once the members are back, a contender holds the lease within the TTL and 5 s.

use std::time::Duration;

use crate::harness::scene::Scene;
use crate::harness::views::{list_json, status};
use crate::harness::{Etcd, TTL, nanos, now_nanos, one_at_a_time, seconds};

#[test]
fn without_quorum_nobody_holds_and_a_holder_returns_with_it() {
    let _one = one_at_a_time();
    let Some(mut etcd) = Etcd::own() else { return };
    let mut scene = Scene::open(&etcd, false);

    let lost = now_nanos();
    etcd.members().kill(1);
    etcd.members().kill(2);
    let killed =
        scene.fence.wait_death(scene.first.pid, TTL + Duration::from_secs(2)).expect("the holder's child is killed");
    let (exit, _) = scene.holder.wait_exit(Duration::from_secs(5)).expect("the supervisor exits");

    let status = status(&scene.waiter);
    let list = list_json(&scene.waiter);
    eprintln!("status --cluster without quorum: {status}");
    eprintln!("list --cluster --json without quorum: {list}");
    // The outage lasts past a whole lease after the child's death: nobody may start meanwhile.
    let restore_at = killed + nanos(TTL);
    std::thread::sleep(Duration::from_nanos(restore_at.saturating_sub(now_nanos())));
    let during = scene.fence.wait_start(lost, Duration::ZERO);

    let restored = now_nanos();
    etcd.members().restart(1);
    etcd.members().restart(2);
    let bound = TTL + Duration::from_secs(5);
    let second = scene.fence.wait_start(restored, bound + Duration::from_secs(10));

    eprintln!(
        "majority lost: the holder's child gone {} s after (bound: TTL {} s), its supervisor exited with {exit}; \
         quorum restored after {} s; a new child started {} s after (bound: TTL + 5 s = {} s)",
        seconds(killed - lost),
        seconds(nanos(TTL)),
        seconds(restored - lost),
        second.as_ref().map_or("never".to_owned(), |second| seconds(second.start - restored)),
        seconds(nanos(bound)),
    );
    assert!(killed - lost <= nanos(TTL), "the child outlived the lease by {} s", seconds(killed - lost - nanos(TTL)));
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
