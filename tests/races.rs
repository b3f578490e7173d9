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
    assert_eq!(
        winners.len(),
        1,
        "round {round}: not exactly one winner: {lines:?}"
    );
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
    assert!(
        !path.exists(),
        "round {round}: the winner did not remove the file"
    );
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
