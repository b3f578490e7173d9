//! The fenced resource the contenders' children write to, a watcher of those children, and the oracle that judges
//! the whole run from the resource's log.
//!
//! The children are `examples/fence_writer.rs`: its log has one line per step, in the resource's order, each
//! stamped with CLOCK_MONOTONIC, the clock this harness reads too (every process runs on this one host).

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{now_nanos, seconds, signed_seconds};

/// How often the watcher reads the log and looks at the children: the precision of the death times it records.
pub const WATCH_EVERY: Duration = Duration::from_millis(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Start,
    Accepted,
    Rejected,
    /// SIGTERM received and ignored (`--ignore-sigterm`).
    Term,
    Exit,
}

/// One line of the log.
#[derive(Clone, Copy, Debug)]
pub struct Record {
    pub kind: Kind,
    pub token: u64,
    pub at: u64,
    pub pid: u32,
    pub ppid: u32,
}

/// One child's run, from its `start` record: the holding of one lease.
#[derive(Clone, Debug)]
pub struct Tenure {
    pub token: u64,
    /// The child (the fence writer).
    pub pid: u32,
    /// Its parent: the `pidfile run` supervisor that holds the lease.
    pub supervisor: u32,
    pub start: u64,
    /// The last record of any kind it wrote.
    pub last_record: u64,
    /// The last write the resource accepted from it (its start counts).
    pub last_accepted: u64,
    pub accepted: usize,
    pub rejected: usize,
    pub exited: bool,
    /// When it was sent SIGTERM, if it ignores it.
    pub term: Option<u64>,
    /// When the watcher last saw it alive, and when it first saw it dead (or gone): its death lies in between.
    pub seen_alive: u64,
    pub seen_dead: Option<u64>,
}

impl Tenure {
    pub fn is_alive(&self) -> bool {
        self.seen_dead.is_none()
    }

    /// The latest moment it is known to have run: its last record, or the watcher seeing it.
    pub fn last_known_alive(&self) -> u64 {
        self.last_record.max(self.seen_alive)
    }
}

#[derive(Default)]
struct State {
    records: Vec<Record>,
    /// By child pid and token: a pid the system reuses for a later child is another tenure.
    tenures: BTreeMap<(u32, u64), Tenure>,
    read_up_to: u64,
    partial: String,
}

/// The resource and log of one test, with a thread that follows them; that thread stops, and every child still
/// running is killed, when dropped.
pub struct Fence {
    dir: tempfile::TempDir,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    watcher: Option<JoinHandle<()>>,
}

impl Fence {
    pub fn new() -> Fence {
        let dir = tempfile::Builder::new().prefix("pidfile-fence-").tempdir().expect("a directory for the fence");
        std::fs::write(dir.path().join("log"), "").expect("the fence's log");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (watched, stopped, log) = (Arc::clone(&state), Arc::clone(&stop), dir.path().join("log"));
        let watcher = std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                watch(&log, &watched);
                std::thread::sleep(WATCH_EVERY);
            }
        });
        Fence { dir, state, stop, watcher: Some(watcher) }
    }

    /// The command line the contenders run: the fence writer on this fence's resource and log.
    pub fn command(&self) -> Vec<String> {
        vec![
            writer_path().display().to_string(),
            self.dir.path().join("resource").display().to_string(),
            self.dir.path().join("log").display().to_string(),
        ]
    }

    /// The same, for a child that ignores SIGTERM: only SIGKILL stops it.
    pub fn command_ignoring_sigterm(&self) -> Vec<String> {
        let mut command = self.command();
        command.insert(1, "--ignore-sigterm".to_owned());
        command
    }

    pub fn records(&self) -> Vec<Record> {
        self.lock().records.clone()
    }

    /// Every child that ran, in the order they started.
    pub fn tenures(&self) -> Vec<Tenure> {
        let mut tenures: Vec<Tenure> = self.lock().tenures.values().cloned().collect();
        tenures.sort_by_key(|tenure| tenure.start);
        tenures
    }

    /// The child running now, if one does (the latest to start, if several do).
    pub fn current(&self) -> Option<Tenure> {
        self.tenures().into_iter().rev().find(Tenure::is_alive)
    }

    pub fn tenure(&self, pid: u32) -> Tenure {
        let tenures = self.tenures();
        tenures.into_iter().rev().find(|tenure| tenure.pid == pid).unwrap_or_else(|| panic!("no child {pid} ran"))
    }

    /// Waits, at most `within`, until a child that started at or after `since` (CLOCK_MONOTONIC nanoseconds) runs.
    pub fn wait_start(&self, since: u64, within: Duration) -> Option<Tenure> {
        self.wait(within, || self.tenures().into_iter().find(|tenure| tenure.start >= since))
    }

    /// Waits, at most `within`, until the watcher sees child `pid` gone; when it was first seen gone.
    pub fn wait_death(&self, pid: u32, within: Duration) -> Option<u64> {
        self.wait(within, || self.tenure(pid).seen_dead)
    }

    fn wait<T>(&self, within: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
        let until = now_nanos() + within.as_nanos() as u64;
        loop {
            if let Some(value) = probe() {
                return Some(value);
            }
            if now_nanos() > until {
                return None;
            }
            std::thread::sleep(WATCH_EVERY);
        }
    }

    /// Judges the run, printing its figures and panicking on a violation: tokens of successive holders strictly
    /// increase; the resource never accepted a write whose token was below the highest it had seen; and no child ran
    /// while another did, except a child whose supervisor was stopped (SIGSTOP, one of `stops`) while it held the
    /// lease: only the token can hold such a child back, so it may run on, but every write it made once a newer
    /// holder started must have been refused.
    pub fn check(&self, stops: &[Stop]) -> Verdict {
        let verdict = self.judge(stops);
        eprintln!("{verdict}");
        assert!(verdict.violations.is_empty(), "the oracle found violations:\n{}", verdict.violations.join("\n"));
        verdict
    }

    /// The oracle's findings, for [`Fence::check`] to enforce.
    pub fn judge(&self, stops: &[Stop]) -> Verdict {
        let records = self.records();
        let tenures = self.tenures();
        let mut violations = Vec::new();
        let mut highest = 0;
        let mut stale_refused = 0;
        for record in &records {
            match record.kind {
                Kind::Accepted if record.token < highest => violations.push(format!(
                    "the resource accepted a write with token {} after seeing token {highest}: {record:?}",
                    record.token
                )),
                // A start with a stale token claims nothing (the ordering of tokens, below, reports it).
                Kind::Start | Kind::Accepted => highest = highest.max(record.token),
                Kind::Rejected => stale_refused += 1,
                Kind::Term | Kind::Exit => {}
            }
        }
        for pair in tenures.windows(2) {
            let (old, new) = (&pair[0], &pair[1]);
            if new.token <= old.token {
                violations.push(format!("token {} started after token {}: tokens must increase", new.token, old.token));
            }
            if old.last_accepted >= new.start {
                violations.push(format!(
                    "token {} had a write accepted {} s after token {} started",
                    old.token,
                    seconds(old.last_accepted - new.start),
                    new.token
                ));
            }
            let stopped = stops.iter().any(|stop| {
                stop.supervisor == old.supervisor
                    && stop.from < new.start
                    && stop.until.is_none_or(|until| until > old.start)
            });
            if !stopped && old.last_known_alive() >= new.start {
                violations.push(format!(
                    "child {} (token {}) still ran {} s after child {} (token {}) started",
                    old.pid,
                    old.token,
                    seconds(old.last_known_alive() - new.start),
                    new.pid,
                    new.token
                ));
            }
        }
        // A child outliving its supervisor (an orphan, adopted by another process) would hold no lease at all.
        // Looked at twice: a supervisor killed a moment ago leaves its child adopted for the instant before its
        // PR_SET_PDEATHSIG signal lands.
        let orphaned = |tenure: &Tenure| parent_of(tenure.pid).is_some_and(|parent| parent != tenure.supervisor);
        for tenure in tenures.iter().filter(|tenure| tenure.is_alive() && orphaned(tenure)) {
            std::thread::sleep(Duration::from_millis(100));
            let parent = parent_of(tenure.pid);
            if parent.is_some_and(|parent| parent != tenure.supervisor) {
                violations.push(format!(
                    "child {} (token {}) outlived its supervisor {}: its parent is now {parent:?}",
                    tenure.pid, tenure.token, tenure.supervisor
                ));
            }
        }
        Verdict { tenures, stale_refused, violations }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Drop for Fence {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
        // Children outlive a test only if their supervisor failed to take them along: never leave them behind.
        for tenure in self.lock().tenures.values() {
            let cmdline = std::fs::read(format!("/proc/{}/cmdline", tenure.pid)).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("fence_writer") {
                if let Some(pid) = rustix::process::Pid::from_raw(tenure.pid as i32) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
    }
}

/// A supervisor stopped with SIGSTOP `from` `until` it was continued (CLOCK_MONOTONIC nanoseconds; `None`: never).
#[derive(Clone, Copy, Debug)]
pub struct Stop {
    pub supervisor: u32,
    pub from: u64,
    pub until: Option<u64>,
}

/// The oracle's findings.
pub struct Verdict {
    pub tenures: Vec<Tenure>,
    /// Writes the resource refused for a stale token.
    pub stale_refused: usize,
    pub violations: Vec<String>,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(first) = self.tenures.first() else { return write!(f, "oracle: no child ran") };
        writeln!(f, "oracle: {} holder(s), {} stale write(s) refused", self.tenures.len(), self.stale_refused)?;
        for (i, tenure) in self.tenures.iter().enumerate() {
            let gap = match i.checked_sub(1).map(|previous| &self.tenures[previous]) {
                Some(old) => format!(
                    ", started {} s after the previous child was last seen alive",
                    signed_seconds(tenure.start as i64 - old.last_known_alive() as i64)
                ),
                None => String::new(),
            };
            writeln!(
                f,
                "  token {} child {} (supervisor {}) at +{} s, {} accepted, {} refused, {}{gap}",
                tenure.token,
                tenure.pid,
                tenure.supervisor,
                seconds(tenure.start - first.start),
                tenure.accepted,
                tenure.rejected,
                if tenure.exited {
                    "exited on SIGTERM"
                } else if tenure.is_alive() {
                    "running"
                } else {
                    "killed"
                },
            )?;
        }
        Ok(())
    }
}

/// Reads what the log gained since the last look, and looks at the children still alive.
fn watch(log: &Path, state: &Mutex<State>) {
    let mut state = state.lock().unwrap_or_else(|poison| poison.into_inner());
    let mut added = String::new();
    if let Ok(mut file) = std::fs::File::open(log) {
        if file.seek(SeekFrom::Start(state.read_up_to)).is_ok() {
            let _ = file.read_to_string(&mut added);
        }
    }
    state.read_up_to += added.len() as u64;
    let text = std::mem::take(&mut state.partial) + &added;
    let (complete, partial) = text.rsplit_once('\n').map_or(("", text.as_str()), |(complete, rest)| (complete, rest));
    let partial = partial.to_owned();
    for line in complete.lines() {
        let record = parse(line).unwrap_or_else(|| panic!("a line the fence writer does not write: {line:?}"));
        state.records.push(record);
        let tenure = state.tenures.entry((record.pid, record.token)).or_insert(Tenure {
            token: record.token,
            pid: record.pid,
            supervisor: record.ppid,
            start: record.at,
            last_record: record.at,
            last_accepted: record.at,
            accepted: 0,
            rejected: 0,
            exited: false,
            term: None,
            seen_alive: record.at,
            seen_dead: None,
        });
        tenure.last_record = record.at;
        match record.kind {
            Kind::Start => {}
            Kind::Accepted => {
                tenure.accepted += 1;
                tenure.last_accepted = record.at;
            }
            Kind::Rejected => tenure.rejected += 1,
            Kind::Term => tenure.term = Some(record.at),
            Kind::Exit => tenure.exited = true,
        }
    }
    state.partial = partial;
    for tenure in state.tenures.values_mut().filter(|tenure| tenure.seen_dead.is_none()) {
        let now = now_nanos();
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", tenure.pid)).unwrap_or_default();
        // A zombie has ended: only its parent's reaping is left.
        let alive = !stat.is_empty() && !stat.contains(") Z");
        if alive {
            tenure.seen_alive = now;
        } else {
            tenure.seen_dead = Some(now);
        }
    }
}

/// The parent of a live process, from /proc/PID/stat (whose second field, the command, may hold spaces).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_command) = stat.rsplit_once(')')?;
    after_command.split_whitespace().nth(1)?.parse().ok()
}

fn parse(line: &str) -> Option<Record> {
    let mut fields = line.split(' ');
    let kind = match fields.next()? {
        "start" => Kind::Start,
        "accepted" => Kind::Accepted,
        "rejected" => Kind::Rejected,
        "term" => Kind::Term,
        "exit" => Kind::Exit,
        _ => return None,
    };
    let mut number = || fields.next()?.parse::<u64>().ok();
    Some(Record { kind, token: number()?, at: number()?, pid: number()? as u32, ppid: number()? as u32 })
}

/// The fence writer, which cargo builds with the tests, next to the test binaries.
fn writer_path() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps");
    let path = profile_dir.join("examples").join("fence_writer");
    assert!(path.exists(), "{} is missing: build the examples (cargo test builds them)", path.display());
    path
}
