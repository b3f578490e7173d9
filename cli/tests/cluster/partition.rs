//! The holder is cut off from every member (a partition): its child must be gone well before the other side's
//! lease expiry lets another child start.

use std::time::Duration;

use crate::harness::fence::WATCH_EVERY;
use crate::harness::scene::Scene;
use crate::harness::{Etcd, KILL_GRACE, POLL, TTL, nanos, now_nanos, one_at_a_time, seconds, signed_seconds};

/// The least time between the old child's end and the new child's start, in every run.
const MARGIN: Duration = Duration::from_secs(1);

#[test]
fn a_cut_off_holder_stops_its_child_a_second_before_another_starts() {
    cut_off(false);
}

#[test]
fn a_cut_off_holder_kills_a_child_ignoring_sigterm_at_its_deadline_a_second_before_another_starts() {
    cut_off(true);
}

/// Cuts the holder off from every member; with `ignoring_sigterm`, its child runs on after SIGTERM, until the
/// SIGKILL at the lease's deadline.
fn cut_off(ignoring_sigterm: bool) {
    let _one = one_at_a_time();
    let Some(etcd) = Etcd::own() else { return };
    let mut scene = Scene::open_with(&etcd, true, ignoring_sigterm);

    let cut = now_nanos();
    scene.holder.cut_off();
    let killed =
        scene.fence.wait_death(scene.first.pid, TTL + Duration::from_secs(2)).expect("the old child is killed");
    let (status, _) = scene.holder.wait_exit(TTL).expect("the cut-off supervisor exits");
    let bound = TTL + POLL + Duration::from_secs(1);
    let second = scene.fence.wait_start(cut, bound + Duration::from_secs(5)).expect("the waiter's child starts");
    let old = scene.fence.tenure(scene.first.pid);

    // The watcher saw the old child gone at `killed`: it died then or a little before, so this margin is the least.
    let margin = second.start as i64 - killed as i64;
    eprintln!(
        "holder cut off{}: its child {} after {} s (last seen alive at {} s), its supervisor exited with {status}; the \
         new child started {} s after the cut: a margin of {} s (bound: at least {} s)",
        if ignoring_sigterm { ", its child ignoring SIGTERM" } else { "" },
        if old.exited { "exited on SIGTERM" } else { "was killed" },
        seconds(killed - cut),
        seconds(old.last_known_alive() - cut),
        seconds(second.start - cut),
        signed_seconds(margin),
        seconds(nanos(MARGIN)),
    );
    assert!(
        margin >= nanos(MARGIN) as i64,
        "the new child started {} s after the old one died",
        signed_seconds(margin)
    );
    assert_eq!(status.code(), Some(75), "a lost lease ends the supervisor with EX_TEMPFAIL");
    if ignoring_sigterm {
        // SIGTERM at the deadline less the grace, SIGKILL at the deadline: the grace apart, give or take the
        // issue's 100 ms and how often the harness looks.
        let term = old.term.expect("the child was sent SIGTERM before SIGKILL");
        let after_term = killed - term;
        eprintln!("  SIGTERM to death: {} s (the grace is {} s)", seconds(after_term), seconds(nanos(KILL_GRACE)));
        let late = Duration::from_millis(100) + WATCH_EVERY;
        assert!(after_term + nanos(late) >= nanos(KILL_GRACE), "SIGKILL came {} s after SIGTERM", seconds(after_term));
        assert!(after_term <= nanos(KILL_GRACE + late), "SIGKILL came {} s after SIGTERM", seconds(after_term));
    }
    scene.fence.check(&[]);
}
