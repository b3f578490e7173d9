//! Races: many processes claim the same service at the same moment, round after round. Exactly one wins each
//! round, and every loser names the winner.

mod common;

use std::fs::File;
use std::path::Path;

use common::{Running, claimer};
use rustix::fs::FlockOperation;

const CLAIMERS: usize = 16;
const ROUNDS: usize = 25;

/// How many processes wait for the lock on `barrier` (the `->` lines of `/proc/locks` for its inode).
fn waiting_at(barrier: &File) -> usize {
    let stat = rustix::fs::fstat(barrier).unwrap();
    let id = format!(
        "{:02x}:{:02x}:{} ",
        rustix::fs::major(stat.st_dev),
        rustix::fs::minor(stat.st_dev),
        stat.st_ino
    );
    let table = std::fs::read_to_string("/proc/locks").unwrap();
    table
        .lines()
        .filter(|line| line.contains("->") && line.contains(&id))
        .count()
}

/// Starts `CLAIMERS` processes that all wait at a barrier, then claim `path` at once. Returns their first lines.
fn one_round(dir: &Path, path: &Path) -> (Vec<Running>, Vec<(u32, String)>) {
    let barrier_path = dir.join("barrier");
    let barrier = File::create(&barrier_path).unwrap();
    rustix::fs::flock(&barrier, FlockOperation::LockExclusive).unwrap();
    let mut claimers: Vec<Running> = (0..CLAIMERS)
        .map(|_| {
            Running::start(claimer(
                &[],
                &[
                    "barrier",
                    barrier_path.to_str().unwrap(),
                    "acquire",
                    path.to_str().unwrap(),
                    "wait-stdin",
                ],
            ))
        })
        .collect();
    common::eventually("every claimer waits at the barrier", || {
        waiting_at(&barrier) == CLAIMERS
    });
    rustix::fs::flock(&barrier, FlockOperation::Unlock).unwrap();
    let lines = claimers
        .iter_mut()
        .map(|claimer| (claimer.pid(), claimer.line()))
        .collect();
    (claimers, lines)
}

/// Checks a round: one `won PID` by that very process, and `lost PID` naming it from all the others. Then lets
/// them all end and checks that the winner removed the file.
fn check_round(round: usize, path: &Path, mut claimers: Vec<Running>, lines: Vec<(u32, String)>) {
    let winners: Vec<u32> = lines
        .iter()
        .filter(|(pid, line)| *line == format!("won {pid}"))
        .map(|(pid, _)| *pid)
        .collect();
    assert_eq!(winners.len(), 1, "round {round}: not exactly one winner: {lines:?}");
    let winner = winners[0];
    let lost = format!("lost {winner}");
    for (pid, line) in &lines {
        assert!(
            *pid == winner || *line == lost,
            "round {round}: {pid} said {line:?}, the winner is {winner}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(path).unwrap(),
        format!("{winner}\n"),
        "round {round}"
    );
    for claimer in &mut claimers {
        assert!(claimer.finish().success());
    }
    assert!(!path.exists(), "round {round}: the winner did not remove the file");
}

/// A pid that no process has: a child that has been reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn many_processes_starting_at_once_have_exactly_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.pid");
    for round in 0..ROUNDS {
        let (claimers, lines) = one_round(dir.path(), &path);
        check_round(round, &path, claimers, lines);
    }
}

#[test]
fn many_processes_finding_the_same_stale_file_have_exactly_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stale-race.pid");
    for round in 0..ROUNDS {
        // A stale file as a killed process leaves it: unlocked, naming a pid nobody has, with a long content so
        // that a winner which did not cut the file would leave garbage behind.
        std::fs::write(&path, format!("{}\n", dead_pid())).unwrap();
        let (claimers, lines) = one_round(dir.path(), &path);
        check_round(round, &path, claimers, lines);
    }
}

#[test]
fn checks_running_hard_during_starts_never_make_a_start_fail_nor_report_a_wrong_pid() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let config = pidfile::Config::new(dir.path(), "busy");
    let path = pidfile::pidfile_path_with("svc", &config).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // The pid of the process currently between its start and its exit (0 when none), in the low 32 bits, and in
    // the high bits a count of changes, so that a check can tell whether the service changed while it looked.
    let current = Arc::new(AtomicU64::new(0));
    let set_current = |current: &AtomicU64, pid: u32| {
        let changes = (current.load(Ordering::SeqCst) >> 32) + 1;
        current.store(changes << 32 | u64::from(pid), Ordering::SeqCst);
    };
    let checkers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, current, config) = (Arc::clone(&stop), Arc::clone(&current), config.clone());
            std::thread::spawn(move || {
                let mut conclusive = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let before = current.load(Ordering::SeqCst);
                    let status = pidfile::status_with("svc", &config).unwrap();
                    let pid = pidfile::get_pid_with("svc", &config).unwrap();
                    if current.load(Ordering::SeqCst) != before {
                        continue; // the service changed while we looked: either answer could be right
                    }
                    let expected = before as u32;
                    for seen in [running_pid(status), pid].into_iter().flatten() {
                        assert!(
                            expected == 0 || seen == expected,
                            "a check saw {seen} while {expected} ran"
                        );
                    }
                    conclusive += 1;
                }
                conclusive
            })
        })
        .collect();
    for start in 0..300 {
        let mut service = Running::start(claimer(&[], &["acquire", path.to_str().unwrap(), "wait-stdin"]));
        let pid = service.pid();
        set_current(&current, pid);
        assert_eq!(
            service.line(),
            format!("won {pid}"),
            "start {start} failed while checks ran"
        );
        assert!(service.finish().success());
        set_current(&current, 0);
    }
    stop.store(true, Ordering::SeqCst);
    let conclusive: u64 = checkers.into_iter().map(|checker| checker.join().unwrap()).sum();
    assert!(
        conclusive > 40,
        "too few checks ran alongside the starts ({conclusive})"
    );
}

fn running_pid(status: pidfile::Status) -> Option<u32> {
    match status {
        pidfile::Status::Running { pid, .. } => pid,
        _ => None,
    }
}
