//! Races: many processes claim the same service at the same moment, round after round. Exactly one wins each
//! round, and every loser names the winner.

mod common;

use std::fs::File;

use common::{Running, claimer};
use rustix::fs::FlockOperation;

/// What a round starts from.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// No file.
    Fresh,
    /// A file left by a killed process: unlocked, naming a pid nobody has.
    Stale,
    /// An empty file, as a claimer killed between its open and its write leaves it.
    Empty,
    /// A file holding garbage.
    Garbage,
    /// A file naming a live process that started after the file was written: the pid was reused.
    ReusedPid,
}

/// The outcome of many rounds.
#[derive(Debug, Default)]
struct Tally {
    rounds: usize,
    losers: usize,
    /// Losers that could not name the winner (`lost none`): allowed, but counted.
    unnamed: usize,
}

/// How many processes wait for the lock on `barrier` (the `->` lines of `/proc/locks` for its inode).
fn waiting_at(barrier: &File) -> usize {
    let stat = rustix::fs::fstat(barrier).unwrap();
    let id = format!("{:02x}:{:02x}:{} ", rustix::fs::major(stat.st_dev), rustix::fs::minor(stat.st_dev), stat.st_ino);
    let table = std::fs::read_to_string("/proc/locks").unwrap();
    table.lines().filter(|line| line.contains("->") && line.contains(&id)).count()
}

/// Plays `rounds` rounds of `claimers` processes that wait at a barrier and then all claim `path` at once, each
/// round from `start`. Each round must have exactly one winner, which wrote its pid and removed the file at exit,
/// and every loser must name the winner or, counted apart, nobody: never another pid.
fn contest(claimers: usize, rounds: usize, start: Start) -> Tally {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.pid");
    let barrier_path = dir.path().join("barrier");
    let bystander = common::Bystander::start();
    let mut tally = Tally::default();
    for round in 0..rounds {
        match start {
            Start::Fresh => {}
            Start::Stale => std::fs::write(&path, format!("{}\n", common::dead_pid())).unwrap(),
            Start::Empty => std::fs::write(&path, "").unwrap(),
            Start::Garbage => std::fs::write(&path, "garbage, and longer than any pid\n").unwrap(),
            Start::ReusedPid => {
                std::fs::write(&path, format!("{}\n", bystander.pid())).unwrap();
                common::backdate_an_hour(&path);
            }
        }
        let barrier = File::create(&barrier_path).unwrap();
        rustix::fs::flock(&barrier, FlockOperation::LockExclusive).unwrap();
        let mut processes: Vec<Running> = (0..claimers)
            .map(|_| {
                Running::start(claimer(
                    &[],
                    &["barrier", barrier_path.to_str().unwrap(), "acquire", path.to_str().unwrap(), "wait-stdin"],
                ))
            })
            .collect();
        common::eventually("every claimer waits at the barrier", || waiting_at(&barrier) == claimers);
        rustix::fs::flock(&barrier, FlockOperation::Unlock).unwrap();
        let lines: Vec<(u32, String)> = processes.iter_mut().map(|process| (process.pid(), process.line())).collect();

        let winners: Vec<u32> =
            lines.iter().filter(|(pid, line)| *line == format!("won {pid}")).map(|(pid, _)| *pid).collect();
        assert_eq!(winners.len(), 1, "{start:?} round {round}: not exactly one winner: {lines:?}");
        let winner = winners[0];
        for (pid, line) in lines.iter().filter(|(pid, _)| *pid != winner) {
            tally.losers += 1;
            if line == "lost none" {
                tally.unnamed += 1;
            } else {
                assert_eq!(*line, format!("lost {winner}"), "{start:?} round {round}: loser {pid} named another pid");
            }
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{winner}\n"), "{start:?} round {round}");
        for process in &mut processes {
            assert!(process.finish().success());
        }
        assert!(!path.exists(), "{start:?} round {round}: the winner did not remove the file");
        tally.rounds += 1;
    }
    tally
}

#[test]
fn sixteen_processes_starting_at_once_have_exactly_one_winner_named_by_all() {
    let tally = contest(16, 20, Start::Fresh);
    assert_eq!(tally.unnamed, 0, "{tally:?}");
}

#[test]
fn sixty_four_processes_starting_at_once_have_exactly_one_winner_named_by_all() {
    let tally = contest(64, 3, Start::Fresh);
    assert_eq!(tally.unnamed, 0, "{tally:?}");
}

#[test]
fn processes_finding_the_same_stale_file_have_exactly_one_winner() {
    assert_eq!(contest(16, 15, Start::Stale).unnamed, 0);
}

#[test]
fn processes_finding_an_empty_file_have_exactly_one_winner() {
    assert_eq!(contest(16, 8, Start::Empty).unnamed, 0);
}

#[test]
fn processes_finding_a_garbage_file_have_exactly_one_winner() {
    assert_eq!(contest(16, 8, Start::Garbage).unnamed, 0);
}

#[test]
fn processes_finding_a_reused_pid_have_exactly_one_winner_and_never_name_the_bystander() {
    assert_eq!(contest(16, 8, Start::ReusedPid).unnamed, 0);
}

/// The soak: 64 processes, 200 rounds from each start. Run it with
/// `cargo nextest run -p pidfiles --test races --run-ignored only --no-capture soak`.
#[test]
#[ignore = "a soak of several minutes; run it on purpose"]
fn soak_sixty_four_processes_two_hundred_rounds_from_every_start() {
    for start in [Start::Fresh, Start::Stale, Start::Empty, Start::Garbage, Start::ReusedPid] {
        let began = std::time::Instant::now();
        let tally = contest(64, 200, start);
        eprintln!(
            "soak {start:?}: {} rounds, {} losers, {} could not name the winner, {:.0?}",
            tally.rounds,
            tally.losers,
            tally.unnamed,
            began.elapsed()
        );
    }
}

#[test]
fn checks_running_hard_during_starts_never_make_a_start_fail_nor_report_a_wrong_pid() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let config = pidfiles::Config::new(dir.path(), "busy");
    let path = pidfiles::pidfile_path_with("svc", &config).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // The process currently between its start and its exit.
    let current = Arc::new(common::CurrentService::default());
    // Checks whose answer could be judged (the service did not change while they looked).
    let conclusive = Arc::new(AtomicUsize::new(0));
    let checkers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, current, config) = (Arc::clone(&stop), Arc::clone(&current), config.clone());
            let conclusive = Arc::clone(&conclusive);
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let before = current.read();
                    let status = pidfiles::status_with("svc", &config).unwrap();
                    let pid = pidfiles::get_pid_with("svc", &config).unwrap();
                    if current.read() != before {
                        continue; // the service changed while we looked: either answer could be right
                    }
                    let expected = before.pid();
                    for seen in [running_pid(status), pid].into_iter().flatten() {
                        assert!(expected == 0 || seen == expected, "a check saw {seen} while {expected} ran");
                    }
                    conclusive.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    // At least 300 starts (enough to catch a check that disturbs starts), and on until enough checks could be
    // judged, however busy the machine.
    let mut start = 0;
    while start < 300 || conclusive.load(Ordering::SeqCst) < 100 {
        assert!(
            start < 5000,
            "the checks could not be judged ({} in {start} starts)",
            conclusive.load(Ordering::SeqCst)
        );
        let mut service = Running::start(claimer(&[], &["acquire", path.to_str().unwrap(), "wait-stdin"]));
        let pid = service.pid();
        current.set(pid);
        assert_eq!(service.line(), format!("won {pid}"), "start {start} failed while checks ran");
        assert!(service.finish().success());
        current.set(0);
        start += 1;
    }
    stop.store(true, Ordering::SeqCst);
    for checker in checkers {
        checker.join().unwrap();
    }
}

fn running_pid(status: pidfiles::Status) -> Option<u32> {
    match status {
        pidfiles::Status::Running { pid, .. } => pid,
        _ => None,
    }
}

/// What the remover's calls came to.
#[derive(Debug, Default)]
struct Removals {
    calls: usize,
    /// Calls that unlinked a file: one that was there before the call, is unlinked after it, and was not written in
    /// between (a claim writes its pid before it could remove the file itself).
    removed: usize,
    /// Refused: a claimer held the file.
    in_use: usize,
    /// Refused: the lock proved nothing (a claim between locking and writing its pid, held up past the wait).
    blocked: usize,
}

/// What a `contend` claimer reported at its end.
#[derive(Debug, Default)]
struct Contended {
    won: usize,
    abandoned: usize,
    lost: usize,
    blocked: usize,
}

impl Contended {
    fn parse(line: &str) -> Contended {
        let numbers: Vec<usize> = line.split_whitespace().filter_map(|word| word.parse().ok()).collect();
        match (line.starts_with("contended "), numbers.as_slice()) {
            (true, &[won, abandoned, lost, blocked]) => Contended { won, abandoned, lost, blocked },
            _ => panic!("a claimer ended with {line:?}"),
        }
    }
}

/// A pause of a few to a few hundred microseconds, from a small xorshift generator.
fn random_pause(state: &mut u64) -> std::time::Duration {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    std::time::Duration::from_micros(2 + *state % 300)
}

/// The file at `path` opened to be watched (not locked), with what it held.
fn watch(path: &std::path::Path) -> Option<(File, Vec<u8>)> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let file = File::options().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path).ok()?;
    let mut content = vec![0; 64];
    let read = file.read_at(&mut content, 0).ok()?;
    content.truncate(read);
    Some((file, content))
}

/// Whether the watched file was unlinked and still holds what it held: taken by a removal, not by a claim.
fn removed_unwritten(file: &File, before: &[u8]) -> bool {
    use std::os::unix::fs::{FileExt, MetadataExt};
    let mut content = vec![0; 64];
    let read = file.read_at(&mut content, 0).unwrap();
    file.metadata().unwrap().nlink() == 0 && content[..read] == *before
}

/// Three claimer processes make 5,000 attempts each on one pidfile, each after a random pause; a winner takes a
/// marker file with `O_EXCL` while it holds the pidfile, and half the winners exit as if killed, leaving a stale
/// file. Meanwhile this process removes the pidfile over and over, by `remove_pidfile_with` and `remove_at`, after
/// random pauses too. A removal that unlinked a file a claim had just taken over would let a second claim win
/// beside the first, which would find the marker taken.
#[test]
fn removals_racing_claims_by_many_processes_never_let_two_claimers_win_at_once() {
    const CLAIMERS: usize = 3;
    const ATTEMPTS: usize = 5000;
    let dir = tempfile::tempdir().unwrap();
    let config = pidfiles::Config::new(dir.path(), "race");
    let path = pidfiles::pidfile_path_with("svc", &config).unwrap();
    let marker = dir.path().join("winner");
    let attempts = ATTEMPTS.to_string();
    let mut claimers: Vec<Running> = (0..CLAIMERS)
        .map(|_| {
            Running::start(claimer(&[], &["contend", path.to_str().unwrap(), marker.to_str().unwrap(), &attempts]))
        })
        .collect();
    let mut random = u64::from(std::process::id()) << 20 | 1;
    let mut removals = Removals::default();
    let mut running = CLAIMERS;
    while running > 0 {
        std::thread::sleep(random_pause(&mut random));
        let watched = watch(&path);
        let result = if removals.calls % 2 == 0 {
            pidfiles::remove_pidfile_with("svc", &config)
        } else {
            pidfiles::remove_at(&path)
        };
        removals.calls += 1;
        match result {
            Ok(()) => {
                if watched.is_some_and(|(file, before)| removed_unwritten(&file, &before)) {
                    removals.removed += 1;
                }
            }
            Err(pidfiles::Error::InUse { .. }) => removals.in_use += 1,
            Err(pidfiles::Error::Blocked { .. }) => removals.blocked += 1,
            Err(error) => panic!("removal {} failed: {error}", removals.calls),
        }
        running = 0;
        for process in &mut claimers {
            match process.child.try_wait().unwrap() {
                None => running += 1,
                Some(status) if status.success() => {}
                Some(status) => {
                    panic!("a claimer ended with {status}, saying {:?}, after {removals:?}", process.line())
                }
            }
        }
    }
    let tallies: Vec<Contended> = claimers.iter_mut().map(|process| Contended::parse(&process.line())).collect();
    eprintln!("{removals:?}, claimers: {tallies:?}");
    for tally in &tallies {
        assert_eq!(tally.won + tally.lost + tally.blocked, ATTEMPTS, "{tally:?}");
    }
    let won: usize = tallies.iter().map(|tally| tally.won).sum();
    let abandoned: usize = tallies.iter().map(|tally| tally.abandoned).sum();
    let lost: usize = tallies.iter().map(|tally| tally.lost).sum();
    assert!(won >= 1000 && abandoned >= 300 && lost >= 100, "{tallies:?}");
    assert!(removals.removed >= 200 && removals.in_use >= 200, "{removals:?}");
    assert!(!marker.exists(), "a winner's marker stayed behind");
}
