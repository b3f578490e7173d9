//! `pidfile status` as a whole process against the number of `flock` locks held on the machine: 0, 1,000, 10,000
//! and 50,000 locks, held by other processes on files of their own (tmpfs). For each count, in one run: the check
//! of a running service (its pidfile held by a process it names), of a stale one (a file left unlocked naming a
//! dead pid) and of a file locked by a process it does not name (state unknown: the one case that reads the
//! kernel's lock table, once, after waiting 100 ms for the holder to write its pid), next to one read of
//! `/proc/locks` by this process, the yardstick for a pass over the table.
//!
//! A running service is proven from its own open descriptors (`/proc/PID/fd`), so what the check of one costs grows
//! instead with the number of descriptors the service has open: the last table measures the check of a running
//! service that has 0, 1,000 and 10,000 descriptors open besides its pidfile (opened after its claim).
//!
//! ```text
//! cargo bench -p pidfiles-cli --bench locks
//! ```
//!
//! The counts take turns as well as the checks: the holders keep their files open throughout and lock or unlock
//! them all on command, so the measurement goes round the counts block after block, and a machine getting busier
//! or quieter during the run weighs on every count alike.
//!
//! The lock holders, the service and the foreign holder are this very program, started again in a mode of its
//! own (`hold-files`, `hold-pidfile`, `hold-lock`); each exits when its standard input closes, and is killed and
//! reaped when dropped. Their files are in temporary directories under `/dev/shm`, removed at the end.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Instant;

use pidfiles::PidFile;
use rustix::fs::FlockOperation;
use rustix::process::{Resource, Rlimit};

/// The numbers of locks held by other processes.
const COUNTS: [usize; 4] = [0, 1_000, 10_000, 50_000];
/// The holding processes' numbers of files: each count above is the sum of the first few.
const HOLDERS: [usize; 6] = [1_000, 9_000, 10_000, 10_000, 10_000, 10_000];
/// Blocks: in each, every count in turn (starting with a different one each block) gets `ROUNDS` rounds.
const BLOCKS: usize = 10;
/// Rounds per count and block: in each, the running and the stale check take turns.
const ROUNDS: usize = 20;
/// The unknown-holder check waits 100 ms before it reads the table: it, and the in-process read of the table, take
/// their turn only every this many rounds.
const SLOW_EVERY: usize = 10;
/// The numbers of descriptors, besides its pidfile's, that a running service has open.
const DESCRIPTORS: [usize; 3] = [0, 1_000, 10_000];
/// Rounds of the running checks of services with those numbers of descriptors, taking turns.
const DESCRIPTOR_ROUNDS: usize = 41;

/// What is measured: 0 running, 1 stale, 2 unknown holder (by `pidfile status`), 3 one read of the table.
const CONTENDERS: usize = 4;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("hold-files") => hold_files(Path::new(&args[1]), args[2].parse().unwrap(), args[3].parse().unwrap()),
        Some("hold-pidfile") => hold_pidfile(Path::new(&args[1]), args.get(2).map_or(0, |n| n.parse().unwrap())),
        Some("hold-lock") => hold_lock(Path::new(&args[1])),
        _ => measure(),
    }
}

fn measure() {
    // Declared first, removed last: after every process holding files in them has ended.
    let locks_dir = tempfile::tempdir_in("/dev/shm").expect("a directory for the lock holders' files");
    let pid_dir = tempfile::tempdir_in("/dev/shm").expect("a directory for the pidfiles");
    let pid_path = |service: &str| pid_dir.path().join(format!("bench-{service}.pid"));

    let service = Helper::start(&["hold-pidfile", pid_path("running").to_str().unwrap()]);
    std::fs::write(pid_path("stale"), format!("{}\n", dead_pid())).expect("write the stale pidfile");
    std::fs::write(pid_path("foreign"), format!("{}\n", dead_pid())).expect("write the foreign pidfile");
    let foreign = Helper::start(&["hold-lock", pid_path("foreign").to_str().unwrap()]);

    let dir = pid_dir.path().to_str().unwrap();
    let check = |service: &'static str| ["--dir", dir, "--instance", "bench", "status", service];
    // (arguments, exit status, state in --json)
    let cases = [(check("running"), 0, "running"), (check("stale"), 1, "stale"), (check("foreign"), 4, "unknown")];

    let mut holders = Holders::start(locks_dir.path());
    let mut times: Vec<[Vec<f64>; CONTENDERS]> = COUNTS.iter().map(|_| Default::default()).collect();
    let mut table_entries = [0; COUNTS.len()];
    for block in 0..BLOCKS {
        for turn in 0..COUNTS.len() {
            let which = (turn + block) % COUNTS.len();
            let count = COUNTS[which];
            holders.hold(count);
            let entries = std::fs::read_to_string("/proc/locks").unwrap().lines().count();
            assert!(entries >= count, "{entries} entries in /proc/locks, {count} expected at least");
            if block == 0 {
                table_entries[which] = entries;
                // Each check says what it should before it is timed: its state, and who holds the file.
                let report = status_json(&cases[0].0);
                assert_eq!(report["state"], cases[0].2, "{report}");
                assert_eq!(report["pid"], service.pid(), "{report}");
                assert_eq!(status_json(&cases[1].0)["state"], cases[1].2);
                let report = status_json(&cases[2].0);
                assert_eq!(report["state"], cases[2].2, "{report}");
                assert_eq!(report["holder"]["pid"], foreign.pid(), "{report}");
            }
            for round in 0..ROUNDS {
                let mut turns: Vec<usize> = if round % SLOW_EVERY == 0 { vec![0, 1, 2, 3] } else { vec![0, 1] };
                // Alternate who goes first, so that no contender always follows the same one.
                let len = turns.len();
                turns.rotate_left((round + block) % len);
                for contender in turns {
                    times[which][contender].push(match contender {
                        3 => time_table_read(),
                        case => time_status(&cases[case].0, cases[case].1),
                    });
                }
            }
        }
    }
    drop(holders);
    drop(foreign);
    drop(service);
    let by_descriptors = measure_descriptors(pid_dir.path());

    let medians: Vec<[f64; CONTENDERS]> = times.into_iter().map(|samples| samples.map(median)).collect();
    let base = medians[0];
    println!(
        "`pidfile status` as a whole process, against the flock locks other processes hold (medians, µs; running \
         and stale: {} runs each, unknown holder and table read: {} each, per count)\n",
        BLOCKS * ROUNDS,
        BLOCKS * ROUNDS.div_ceil(SLOW_EVERY)
    );
    println!(
        "| locks held | entries in /proc/locks | running µs | stale µs | running / running at 0 | stale / stale at 0 |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for ((count, entries), [running, stale, ..]) in COUNTS.iter().zip(table_entries).zip(&medians) {
        println!(
            "| {count} | {entries} | {running:.0} | {stale:.0} | {:.2}x | {:.2}x |",
            running / base[0],
            stale / base[1]
        );
    }
    println!(
        "\n| locks held | unknown holder µs | unknown holder − unknown holder at 0, µs | one read of /proc/locks, µs |"
    );
    println!("|---:|---:|---:|---:|");
    for (count, [.., unknown, table]) in COUNTS.iter().zip(&medians) {
        println!("| {count} | {unknown:.0} | {:.0} | {table:.0} |", unknown - base[2]);
    }
    println!(
        "\n`pidfile status` of a running service against the descriptors it has open (medians of \
         {DESCRIPTOR_ROUNDS} runs, µs; no locks held but its own)\n"
    );
    println!("| descriptors open besides the pidfile | running µs | running / running at 0 |");
    println!("|---:|---:|---:|");
    for (count, running) in DESCRIPTORS.iter().zip(&by_descriptors) {
        println!("| {count} | {running:.0} | {:.2}x |", running / by_descriptors[0]);
    }
}

/// The running check of services with [`DESCRIPTORS`] open, taking turns: the median of each, in µs.
fn measure_descriptors(dir: &Path) -> Vec<f64> {
    let services: Vec<(String, Helper)> = DESCRIPTORS
        .iter()
        .map(|count| {
            let name = format!("open{count}");
            let path = dir.join(format!("bench-{name}.pid"));
            let helper = Helper::start(&["hold-pidfile", path.to_str().unwrap(), &count.to_string()]);
            (name, helper)
        })
        .collect();
    let dir = dir.to_str().unwrap();
    let args: Vec<[&str; 6]> =
        services.iter().map(|(name, _)| ["--dir", dir, "--instance", "bench", "status", name.as_str()]).collect();
    for (argv, (_, helper)) in args.iter().zip(&services) {
        let report = status_json(argv);
        assert_eq!(report["state"], "running", "{report}");
        assert_eq!(report["pid"], helper.pid(), "{report}");
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); services.len()];
    for round in 0..DESCRIPTOR_ROUNDS {
        for turn in 0..services.len() {
            let index = (turn + round) % services.len();
            times[index].push(time_status(&args[index], 0));
        }
    }
    times.into_iter().map(median).collect()
}

/// `pidfile status --json` of the given check, parsed.
fn status_json(args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_pidfile"))
        .args(args)
        .arg("--json")
        .stderr(Stdio::null())
        .output()
        .expect("run pidfile status --json");
    serde_json::from_slice(&output.stdout).expect("pidfile status --json prints JSON")
}

/// Microseconds for one run of `pidfile status`, from spawn to exit, which must exit with `code`.
fn time_status(args: &[&str], code: i32) -> f64 {
    let start = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_pidfile"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run pidfile status");
    let elapsed = start.elapsed().as_nanos() as f64 / 1000.0;
    assert_eq!(status.code(), Some(code), "pidfile {args:?}");
    elapsed
}

/// Microseconds for one read of the whole kernel lock table, as the library reads it.
fn time_table_read() -> f64 {
    let start = Instant::now();
    let table = std::fs::read_to_string("/proc/locks").expect("read /proc/locks");
    let elapsed = start.elapsed().as_nanos() as f64 / 1000.0;
    std::hint::black_box(table);
    elapsed
}

/// A pid that no process has: a child that has been reaped.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("run true");
    let pid = child.id();
    child.wait().expect("reap true");
    pid
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The processes holding the files whose locks are counted, [`HOLDERS`] of them.
struct Holders(Vec<(usize, Helper)>);

impl Holders {
    /// Starts them side by side, each opening its files (unlocked).
    fn start(dir: &Path) -> Holders {
        let dir = dir.to_str().unwrap();
        let mut from = 0;
        let starting: Vec<(usize, Helper)> = HOLDERS
            .iter()
            .map(|&files| {
                let (first, end) = (from.to_string(), (from + files).to_string());
                from += files;
                (files, Helper::spawn(&["hold-files", dir, &first, &end]))
            })
            .collect();
        Holders(starting.into_iter().map(|(files, helper)| (files, helper.ready())).collect())
    }

    /// Makes the first holders lock all their files, `count` in all, and the others unlock theirs.
    fn hold(&mut self, count: usize) {
        let mut held = 0;
        for (files, helper) in &mut self.0 {
            let lock = held + *files <= count;
            held += if lock { *files } else { 0 };
            helper.tell(if lock { b'l' } else { b'u' });
        }
        assert_eq!(held, count, "{count} is not a sum of the first holders' files");
        for (_, helper) in &mut self.0 {
            helper.expect_line("done");
        }
    }
}

/// This program started again in one of its holding modes: it prints `ready` once it holds what it should, and
/// exits when its standard input closes. Killed and reaped when dropped, however the measurement ends.
struct Helper {
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl Helper {
    fn spawn(args: &[&str]) -> Helper {
        let mut child = Command::new(std::env::current_exe().expect("this program's path"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a holding process");
        let lines = BufReader::new(child.stdout.take().unwrap());
        Helper { child, lines }
    }

    fn expect_line(&mut self, expected: &str) {
        let mut line = String::new();
        self.lines.read_line(&mut line).expect("read a holding process's output");
        assert_eq!(line.trim_end(), expected, "a holding process failed");
    }

    /// Waits until it holds what it should.
    fn ready(mut self) -> Helper {
        self.expect_line("ready");
        self
    }

    fn start(args: &[&str]) -> Helper {
        Helper::spawn(args).ready()
    }

    /// Sends it a one-byte command.
    fn tell(&mut self, command: u8) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(&[command]).and_then(|()| stdin.flush()).expect("command a holding process");
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).expect("write to the measuring process");
}

fn ready_then_wait_for_stdin_to_close() {
    say("ready");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// Holding mode: creates and opens the files `DIR/lock-FIRST` up to (not including) `DIR/lock-END`, says `ready`,
/// then on each byte read from standard input takes an exclusive `flock` on every one of them (`l`) or lets go
/// of them all (`u`), and says `done`; exits at the end of its input.
fn hold_files(dir: &Path, first: usize, end: usize) {
    allow_descriptors(end - first);
    let files: Vec<File> = (first..end)
        .map(|index| File::create(dir.join(format!("lock-{index}"))).expect("create a file to lock"))
        .collect();
    say("ready");
    for command in std::io::stdin().lock().bytes() {
        let operation = match command.expect("read a command") {
            b'l' => FlockOperation::NonBlockingLockExclusive,
            b'u' => FlockOperation::Unlock,
            other => panic!("unknown command {other}"),
        };
        for file in &files {
            rustix::fs::flock(file, operation).expect("lock or unlock a file");
        }
        say("done");
    }
}

/// Raises RLIMIT_NOFILE so that `count` more descriptors can be open.
fn allow_descriptors(count: usize) {
    let needed = count as u64 + 64;
    let limit = rustix::process::getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|current| current < needed) {
        let maximum = limit.maximum.map(|maximum| maximum.max(needed));
        rustix::process::setrlimit(Resource::Nofile, Rlimit { current: Some(needed), maximum })
            .expect("raise RLIMIT_NOFILE");
    }
}

/// Holding mode: the service, which claims the pidfile at `path` (writing its own pid) and keeps it, then opens
/// `extra` more descriptors (of `/dev/null`), as a service opens its connections.
fn hold_pidfile(path: &Path, extra: usize) {
    allow_descriptors(extra);
    let guard = PidFile::builder().signal_handlers(false).acquire(path).expect("claim the service's pidfile");
    let open: Vec<File> = (0..extra).map(|_| File::open("/dev/null").expect("open /dev/null")).collect();
    ready_then_wait_for_stdin_to_close();
    drop(open);
    drop(guard);
}

/// Holding mode: takes the exclusive lock of the existing file at `path` through a descriptor open for writing,
/// as a service holds its pidfile, without writing its pid there.
fn hold_lock(path: &Path) {
    let file = File::options().read(true).write(true).open(path).expect("open the file to lock");
    rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).expect("lock the file");
    ready_then_wait_for_stdin_to_close();
    drop(file);
}
