//! A fenced resource and the service that writes to it, for the cluster tests: the COMMAND their contenders run.
//!
//! `fence_writer [--ignore-sigterm] RESOURCE LOG` takes its fencing token from `PIDFILE_FENCING_TOKEN` and, every 50 ms, writes to the
//! resource as a fenced store would take a write: under an exclusive flock on RESOURCE it reads the highest token
//! the resource has seen, refuses the write if its own token is lower, else raises the highest token to its own.
//! Each step appends one line to LOG, still under the lock, so the log's order is the resource's order:
//!
//! ```text
//! KIND TOKEN MONOTONIC_NS PID PPID      KIND: start, accepted, rejected, term, exit
//! ```
//!
//! `start` comes first and counts as a write (a new holder claims the resource as soon as it runs, so an older one
//! is refused from then on), `exit` last, on SIGTERM. A SIGKILL leaves no `exit`: the tests watch the process. With
//! `--ignore-sigterm` it logs `term` on SIGTERM and writes on, as a service slow to stop would, until SIGKILL.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::fs::{FlockOperation, flock};
use rustix::time::{ClockId, clock_gettime};

const EVERY: Duration = Duration::from_millis(50);

#[derive(Clone, Copy, PartialEq)]
enum Step {
    Start,
    Write,
    Term,
    Exit,
}

struct Fence {
    resource: File,
    log: File,
    token: u64,
}

impl Fence {
    /// Takes the resource's lock, decides the step and logs it.
    fn step(&mut self, step: Step) -> std::io::Result<()> {
        flock(&self.resource, FlockOperation::LockExclusive)?;
        let result = self.step_locked(step);
        flock(&self.resource, FlockOperation::Unlock)?;
        result
    }

    fn step_locked(&mut self, step: Step) -> std::io::Result<()> {
        let mut text = String::new();
        self.resource.seek(SeekFrom::Start(0))?;
        self.resource.read_to_string(&mut text)?;
        let highest: u64 = text.trim().parse().unwrap_or(0);
        let kind = match step {
            Step::Start => "start",
            Step::Term => "term",
            Step::Exit => "exit",
            Step::Write if self.token < highest => "rejected",
            Step::Write => "accepted",
        };
        if matches!(kind, "start" | "accepted") && self.token > highest {
            self.resource.set_len(0)?;
            self.resource.seek(SeekFrom::Start(0))?;
            self.resource.write_all(format!("{}\n", self.token).as_bytes())?;
        }
        let now = clock_gettime(ClockId::Monotonic);
        let nanos = now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64;
        let line = format!(
            "{kind} {} {nanos} {} {}\n",
            self.token,
            std::process::id(),
            rustix::process::getppid().map_or(0, |pid| pid.as_raw_nonzero().get())
        );
        // One write of an O_APPEND file: the line lands whole, after every earlier one.
        self.log.write_all(line.as_bytes())
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let ignore_sigterm = args.first().is_some_and(|arg| arg == "--ignore-sigterm");
    if ignore_sigterm {
        args.remove(0);
    }
    let [resource, log] = args.as_slice() else {
        eprintln!("usage: fence_writer [--ignore-sigterm] RESOURCE LOG (with PIDFILE_FENCING_TOKEN set)");
        std::process::exit(2);
    };
    let token = match std::env::var("PIDFILE_FENCING_TOKEN").map(|token| token.parse::<u64>()) {
        Ok(Ok(token)) => token,
        Ok(Err(_)) | Err(_) => {
            eprintln!("fence_writer: PIDFILE_FENCING_TOKEN is missing or not a number");
            std::process::exit(2);
        }
    };
    let terminated = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&terminated)).expect("handle SIGTERM");
    let open = |path: &String, append: bool| {
        OpenOptions::new().read(!append).write(true).append(append).create(true).truncate(false).open(path)
    };
    let (resource, log) = match (open(resource, false), open(log, true)) {
        (Ok(resource), Ok(log)) => (resource, log),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("fence_writer: cannot open {resource} or {log}: {error}");
            std::process::exit(1);
        }
    };
    let mut fence = Fence { resource, log, token };
    let mut step = Step::Start;
    loop {
        if let Err(error) = fence.step(step) {
            eprintln!("fence_writer: {error}");
            std::process::exit(1);
        }
        if step == Step::Exit {
            return;
        }
        std::thread::sleep(EVERY);
        step = match terminated.swap(false, Ordering::SeqCst) {
            true if ignore_sigterm => Step::Term,
            true => Step::Exit,
            false => Step::Write,
        };
    }
}
