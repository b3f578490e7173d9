//! The holder goes away, gracefully or not: the waiting contender takes over, quickly, and never alongside it.

use std::time::Duration;

use rustix::process::Signal;

use crate::harness::scene::Scene;
use crate::harness::views;
use crate::harness::{Etcd, POLL, TTL, nanos, now_nanos, one_at_a_time, seconds};

#[test]
fn a_stopped_holder_hands_over_within_a_poll() {
    let _one = one_at_a_time();
    let Some(etcd) = Etcd::shared() else { return };
    let mut scene = Scene::open(&etcd, false);

    let sent = now_nanos();
    scene.holder.signal(Signal::TERM);
    let (status, _) =
        scene.holder.wait_exit(Duration::from_secs(10)).expect("the holder's supervisor exits on SIGTERM");
    let second = scene.fence.wait_start(sent, Duration::from_secs(10)).expect("the waiter's child starts");
    let old = scene.fence.tenure(scene.first.pid);

    let handover = second.start.saturating_sub(old.last_known_alive());
    eprintln!(
        "graceful handover: SIGTERM to the new child's start {} s; the old child's end to the new child's start {} s \
         (bound: poll {} s + 0.5 s); the holder exited with {status}",
        seconds(second.start - sent),
        seconds(handover),
        seconds(nanos(POLL)),
    );
    assert!(old.exited, "the old child was given SIGTERM and wrote its exit record");
    assert_eq!(second.supervisor, scene.waiter.pid());
    assert!(handover <= nanos(POLL + Duration::from_millis(500)), "the handover took {} s", seconds(handover));
    let view = views::status(&scene.waiter);
    eprintln!("status --cluster after the handover: {view}");
    assert!(view.success && view.names(&second), "status does not name the new holder {second:?}: {view}");
    assert!(!view.mentions(&old), "status still names the old holder: {view}");
    scene.fence.check(&[]);
}

#[test]
fn a_killed_holder_takes_its_child_along_and_is_replaced_within_the_ttl() {
    let _one = one_at_a_time();
    let Some(etcd) = Etcd::shared() else { return };
    let scene = Scene::open(&etcd, false);

    let killed = now_nanos();
    scene.holder.signal(Signal::KILL);
    let child_gone = scene
        .fence
        .wait_death(scene.first.pid, Duration::from_secs(5))
        .expect("the child dies with its supervisor (PR_SET_PDEATHSIG)");
    let bound = TTL + POLL + Duration::from_secs(1);
    let second = scene.fence.wait_start(killed, bound + Duration::from_secs(5)).expect("the waiter's child starts");

    let failover = second.start - killed;
    eprintln!(
        "holder SIGKILL: its child gone after {} s; the new child started {} s after the kill (bound: TTL + poll + 1 s \
         = {} s)",
        seconds(child_gone - killed),
        seconds(failover),
        seconds(nanos(bound)),
    );
    assert_eq!(second.supervisor, scene.waiter.pid());
    assert!(failover <= nanos(bound), "the failover took {} s", seconds(failover));
    scene.fence.check(&[]);
}
