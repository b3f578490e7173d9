//! A minute of bounded random faults against three contenders: holders killed, stopped and cut off, members killed
//! and proxies blackholed, every 0.5 to 3 s, while contenders that exit are started again as a restart policy
//! would. Afterwards, the oracle judges the whole log. The faults come from a seeded generator whose seed is
//! printed: `PIDFILE_TEST_CHAOS_SEED=SEED` replays a run's choices (not its timing).

use std::time::Duration;

use rustix::process::Signal;

use crate::harness::contender::Contender;
use crate::harness::fence::{Fence, Stop};
use crate::harness::{Etcd, TTL, nanos, now_nanos, one_at_a_time, seconds};

const RUN_FOR: Duration = Duration::from_secs(60);
const MAX_FAULTS: usize = 60;
const TICK: Duration = Duration::from_millis(20);

/// xorshift64*: small, and the same choices for the same seed on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// A duration from `low` to `high` milliseconds.
    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.below(high - low + 1))
    }
}

/// A fault in force, and what ends it.
enum Undo {
    Continue(usize),
    Heal(usize),
    HealOne(usize, usize),
    Restart(usize),
}

impl Undo {
    /// Ends the fault; a continued supervisor's stop gets its end.
    fn apply(self, contenders: &[Contender], etcd: &mut Etcd, stops: &mut [Stop]) {
        match self {
            Undo::Continue(i) => {
                let supervisor = contenders[i].pid();
                if let Some(stop) =
                    stops.iter_mut().rev().find(|stop| stop.supervisor == supervisor && stop.until.is_none())
                {
                    stop.until = Some(now_nanos());
                }
                contenders[i].signal(Signal::CONT);
            }
            Undo::Heal(i) => contenders[i].reconnect(),
            Undo::HealOne(i, member) => contenders[i].proxies[member].heal(),
            Undo::Restart(member) => etcd.members().restart(member),
        }
    }
}

#[test]
fn a_minute_of_random_faults_never_runs_two_children_at_once() {
    let _one = one_at_a_time();
    let Some(mut etcd) = Etcd::own() else { return };
    let seed = std::env::var("PIDFILE_TEST_CHAOS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| now_nanos() | 1);
    eprintln!("chaos: seed {seed} (PIDFILE_TEST_CHAOS_SEED={seed} replays these choices)");
    let mut rng = Rng(seed);
    let fence = Fence::new();
    let mut contenders: Vec<Contender> =
        ["a", "b", "c"].iter().map(|label| Contender::start_behind_proxies(label, &etcd, fence.command())).collect();

    let began = now_nanos();
    let end = began + nanos(RUN_FOR);
    let mut next_fault = began + nanos(rng.millis(500, 3000));
    let mut pending: Vec<(u64, Undo)> = Vec::new();
    let mut stops: Vec<Stop> = Vec::new();
    let mut faults = Vec::new();
    let mut restarts = 0;
    while now_nanos() < end {
        let now = now_nanos();
        for contender in contenders.iter_mut() {
            if contender.exited().is_some() {
                contender.respawn();
                restarts += 1;
            }
        }
        let (due, later): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(at, _)| *at <= now);
        pending = later;
        for (_, undo) in due {
            undo.apply(&contenders, &mut etcd, &mut stops);
        }
        if now >= next_fault && faults.len() < MAX_FAULTS {
            let holder =
                fence.current().and_then(|tenure| contenders.iter().position(|c| c.pid() == tenure.supervisor));
            let busy = |pending: &[(u64, Undo)], i: usize| {
                pending.iter().any(|(_, undo)| matches!(undo, Undo::Continue(j) | Undo::Heal(j) if *j == i))
            };
            let anyone = rng.below(3) as usize;
            let member = rng.below(3) as usize;
            let lasting = rng.millis(1000, 8000);
            let fault = match (rng.below(6), holder) {
                (0, Some(i)) if !busy(&pending, i) => {
                    contenders[i].signal(Signal::KILL);
                    format!("SIGKILL holder {}", contenders[i].label)
                }
                (1, Some(i)) if !busy(&pending, i) => {
                    contenders[i].signal(Signal::TERM);
                    format!("SIGTERM holder {}", contenders[i].label)
                }
                (2, Some(i)) if !busy(&pending, i) => {
                    stops.push(Stop { supervisor: contenders[i].pid(), from: now, until: None });
                    contenders[i].signal(Signal::STOP);
                    pending.push((now + nanos(lasting), Undo::Continue(i)));
                    format!("SIGSTOP holder {} for {} s", contenders[i].label, seconds(nanos(lasting)))
                }
                (3, _) if !busy(&pending, anyone) => {
                    contenders[anyone].cut_off();
                    pending.push((now + nanos(lasting), Undo::Heal(anyone)));
                    format!("cut off {} for {} s", contenders[anyone].label, seconds(nanos(lasting)))
                }
                (4, _) => {
                    contenders[anyone].proxies[member].blackhole();
                    pending.push((now + nanos(lasting), Undo::HealOne(anyone, member)));
                    format!(
                        "blackhole {}'s member {} for {} s",
                        contenders[anyone].label,
                        member + 1,
                        seconds(nanos(lasting))
                    )
                }
                (5, _) if etcd.members().is_running(member) => {
                    let down = rng.millis(1000, 5000);
                    etcd.members().kill(member);
                    pending.push((now + nanos(down), Undo::Restart(member)));
                    format!("SIGKILL member {} for {} s", member + 1, seconds(nanos(down)))
                }
                _ => "nothing".to_owned(),
            };
            eprintln!("chaos: +{} s {fault}", seconds(now - began));
            faults.push(fault);
            next_fault = now + nanos(rng.millis(500, 3000));
        }
        std::thread::sleep(TICK);
    }

    // Every fault undone, then the cluster must settle on one holder again.
    for (_, undo) in pending {
        undo.apply(&contenders, &mut etcd, &mut stops);
    }
    let settled = now_nanos();
    let mut holder = None;
    while holder.is_none() && now_nanos() < settled + nanos(TTL + Duration::from_secs(20)) {
        for contender in contenders.iter_mut() {
            if contender.exited().is_some() {
                contender.respawn();
                restarts += 1;
            }
        }
        holder = fence.current();
        std::thread::sleep(TICK);
    }
    eprintln!(
        "chaos: {} faults, {} supervisor restarts, a holder {} s after the faults ended (0: one held on throughout)",
        faults.iter().filter(|fault| *fault != "nothing").count(),
        restarts,
        holder.as_ref().map_or("never".to_owned(), |holder| seconds(holder.start.saturating_sub(settled))),
    );
    let verdict = fence.check(&stops);
    assert!(verdict.tenures.len() >= 2, "the chaos never moved the lease: seed {seed}");
    assert!(holder.is_some(), "no holder once the faults ended: seed {seed}");
}
