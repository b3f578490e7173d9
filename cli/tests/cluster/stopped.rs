//! The holder is frozen (SIGSTOP) past its lease, then resumed: another host holds the lease by then, and only the
//! fencing token can hold back what the old child does in between; on SIGCONT the old child is killed at once.

use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};

use crate::harness::fence::{Stop, WATCH_EVERY};
use crate::harness::scene::Scene;
use crate::harness::{Etcd, POLL, TTL, nanos, now_nanos, one_at_a_time, seconds};

/// The bound on the old child's death after SIGCONT: the 100 ms, plus how often the harness looks.
const KILLED_WITHIN: Duration = Duration::from_millis(100);

#[test]
fn a_supervisor_stopped_past_its_lease_kills_its_child_on_resuming() {
    stopped_past_the_lease(false);
}

#[test]
fn a_holder_stopped_whole_past_its_lease_kills_its_child_on_resuming() {
    stopped_past_the_lease(true);
}

/// Stops the holder's supervisor (and with `child_too`, its child: the whole host frozen) until the waiter has
/// run its child for a second, then resumes it.
fn stopped_past_the_lease(child_too: bool) {
    let _one = one_at_a_time();
    let Some(etcd) = Etcd::shared() else { return };
    let mut scene = Scene::open(&etcd, false);
    let child = Pid::from_raw(scene.first.pid as i32).unwrap();
    let what = if child_too { "holder and child" } else { "holder's supervisor" };

    let stopped = now_nanos();
    scene.holder.signal(Signal::STOP);
    if child_too {
        kill_process(child, Signal::STOP).unwrap();
    }
    let bound = TTL + POLL + Duration::from_secs(1);
    let second = scene.fence.wait_start(stopped, bound + Duration::from_secs(5)).expect("the waiter's child starts");
    std::thread::sleep(Duration::from_secs(1));

    // The child first: whatever it writes before its supervisor acts is the fence's to refuse.
    let resumed = now_nanos();
    if child_too {
        kill_process(child, Signal::CONT).unwrap();
    }
    scene.holder.signal(Signal::CONT);
    let killed = scene.fence.wait_death(scene.first.pid, Duration::from_secs(5)).expect("the old child is killed");
    let (status, _) = scene.holder.wait_exit(Duration::from_secs(5)).expect("the old supervisor exits");
    let old = scene.fence.tenure(scene.first.pid);

    eprintln!(
        "{what} stopped: the new child started {} s after SIGSTOP (bound {} s); the old child was gone {} s after \
         SIGCONT (bound {} s + {} s of watching), its stale writes refused: {}; the supervisor exited with {status}",
        seconds(second.start - stopped),
        seconds(nanos(bound)),
        seconds(killed - resumed),
        seconds(nanos(KILLED_WITHIN)),
        seconds(nanos(WATCH_EVERY)),
        old.rejected,
    );
    assert!(second.start - stopped <= nanos(bound), "the failover took {} s", seconds(second.start - stopped));
    assert!(
        killed - resumed <= nanos(KILLED_WITHIN + WATCH_EVERY),
        "the old child lived {} s on",
        seconds(killed - resumed)
    );
    assert_eq!(status.code(), Some(75), "a lost lease ends the supervisor with EX_TEMPFAIL");
    if !child_too {
        assert!(old.rejected > 0, "the old child ran on beside the new one, and the fence refused its writes");
    }
    let verdict = scene.fence.check(&[Stop { supervisor: old.supervisor, from: stopped, until: Some(resumed) }]);
    assert_eq!(verdict.tenures.len(), 2);
}
