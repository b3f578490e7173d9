//! The processes COMMAND starts, which must not outlive the lease any more than COMMAND: a shell's `sleep`, a
//! daemon that forked away. The supervisor is their subreaper (PR_SET_CHILD_SUBREAPER), so that those orphaned
//! become its children rather than init's; it finds them all by the parent each names in `/proc/PID/stat`, signals
//! them through pidfds, and reaps those that are its own.
//!
//! What this cannot do: a supervisor killed by SIGKILL reaps nothing. COMMAND dies of its PR_SET_PDEATHSIG, but
//! its descendants go to the next subreaper up (init) and live on; only a cgroup would hold them. Nor does it find
//! a process that left the tree under a subreaper of its own below the supervisor, and then orphaned itself there.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rustix::process::{Pid, PidfdFlags, Signal, WaitOptions};
use signal_hook::SigId;
use signal_hook::consts::SIGCHLD;

use crate::common::Failure;

/// How long SIGKILLed descendants get to be gone: a process in an uninterruptible sleep (a hung NFS server) may
/// never go, and the supervisor must end.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// How often the processes still there are looked for while they are given time to end.
const POLL: Duration = Duration::from_millis(10);

/// This process as the subreaper of what it starts, and a socket readable when a child of its own has ended
/// (SIGCHLD), so that orphans that end while COMMAND runs are reaped rather than left as zombies.
pub struct Reaper {
    ended: UnixStream,
    handler: SigId,
}

impl Reaper {
    /// Makes this process the subreaper of the processes it will start, and notes each SIGCHLD. Before COMMAND
    /// starts: a process orphaned before this would go to init.
    pub fn adopt() -> Result<Reaper, Failure> {
        let failed =
            |error: std::io::Error| Failure::new(1, format!("cannot adopt the processes COMMAND starts: {error}"));
        rustix::process::set_child_subreaper(Some(rustix::process::getpid())).map_err(|error| failed(error.into()))?;
        let (ended, notes) = UnixStream::pair().map_err(failed)?;
        ended.set_nonblocking(true).map_err(failed)?;
        let handler = signal_hook::low_level::pipe::register(SIGCHLD, notes).map_err(failed)?;
        Ok(Reaper { ended, handler })
    }

    /// Reaps the children of this process that have ended, except `command` (whose status its own wait collects),
    /// and empties the socket.
    pub fn reap(&self, command: Option<u32>) {
        let mut notes = [0; 64];
        while matches!((&self.ended).read(&mut notes), Ok(read) if read > 0) {}
        reap_ended(command);
    }
}

/// Readable after a SIGCHLD: poll it beside other descriptors.
impl AsFd for Reaper {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.ended.as_fd()
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        signal_hook::low_level::unregister(self.handler);
    }
}

/// A process under this one, as `/proc/PID/stat` told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Process {
    pid: u32,
    parent: u32,
    zombie: bool,
}

/// Every process under this one, COMMAND (`command`) left out but not its descendants. Read from `/proc` in one
/// pass: a process that forks meanwhile is found at the next look.
fn descendants(command: Option<u32>) -> Vec<Process> {
    let processes = all_processes();
    let mut children: HashMap<u32, Vec<Process>> = HashMap::new();
    for process in processes {
        children.entry(process.parent).or_default().push(process);
    }
    let mut found = Vec::new();
    let mut parents = vec![std::process::id()];
    while let Some(parent) = parents.pop() {
        for &child in children.get(&parent).into_iter().flatten() {
            parents.push(child.pid);
            if Some(child.pid) != command {
                found.push(child);
            }
        }
    }
    found
}

fn all_processes() -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            parse_stat(pid, &stat)
        })
        .collect()
}

/// The state and parent of `/proc/PID/stat`, counted after the last `)`: the command name before it may hold
/// anything, spaces and parentheses included.
fn parse_stat(pid: u32, stat: &str) -> Option<Process> {
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?;
    let parent = fields.next()?.parse().ok()?;
    Some(Process { pid, parent, zombie: state == "Z" })
}

/// Sends `signal` to every live process under this one but COMMAND; returns how many it reached.
pub fn signal_descendants(signal: Signal, command: Option<u32>) -> usize {
    descendants(command).iter().filter(|process| !process.zombie && send(process, signal)).count()
}

/// Sends `signal` to `process` through a pidfd opened on its pid once `/proc` still names the parent it was found
/// under: the pid then names the process found, not one that took the pid since.
fn send(process: &Process, signal: Signal) -> bool {
    let Some(pid) = Pid::from_raw(process.pid as i32) else { return false };
    let Ok(pidfd) = rustix::process::pidfd_open(pid, PidfdFlags::empty()) else { return false };
    let still = std::fs::read_to_string(format!("/proc/{}/stat", process.pid))
        .ok()
        .and_then(|stat| parse_stat(process.pid, &stat))
        .is_some_and(|now| now.parent == process.parent);
    still && rustix::process::pidfd_send_signal(&pidfd, signal).is_ok()
}

/// Reaps the ended children of this process but `command`. Only those found as zombies are waited for: COMMAND's
/// status is left to its own wait.
fn reap_ended(command: Option<u32>) {
    let me = std::process::id();
    for process in descendants(command) {
        if process.parent == me && process.zombie {
            if let Some(pid) = Pid::from_raw(process.pid as i32) {
                let _ = rustix::process::waitpid(Some(pid), WaitOptions::NOHANG);
            }
        }
    }
}

/// What [`stop_descendants`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// The processes that were still running under this one.
    pub found: usize,
    /// Those that were still there after the grace, and got SIGKILL.
    pub killed: usize,
    /// Those still there [`KILL_WAIT`] after the SIGKILL.
    pub left: usize,
}

/// Stops every process under this one (COMMAND is reaped by now): SIGTERM, SIGKILL to those still there after
/// `grace`, then reaps them, waiting at most [`KILL_WAIT`] after the SIGKILL.
pub fn stop_descendants(grace: Duration) -> Stopped {
    let found = signal_descendants(Signal::TERM, None);
    let mut stopped = Stopped { found, ..Stopped::default() };
    let deadline = Instant::now() + grace;
    let mut killed_at = None;
    loop {
        reap_ended(None);
        let left = descendants(None).iter().filter(|process| !process.zombie).count();
        if left == 0 {
            break;
        }
        let now = Instant::now();
        match killed_at {
            None if now >= deadline => {
                stopped.killed = signal_descendants(Signal::KILL, None);
                killed_at = Some(now);
            }
            // Forked since the SIGKILL, by a process about to die of it.
            Some(at) if now < at + KILL_WAIT => {
                signal_descendants(Signal::KILL, None);
            }
            Some(_) => {
                stopped.left = left;
                break;
            }
            None => {}
        }
        std::thread::sleep(POLL);
    }
    reap_ended(None);
    stopped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_read_after_the_last_parenthesis_of_the_name() {
        let process = parse_stat(42, "42 (a) b) (c) Z 7 42 42 0 -1").unwrap();
        assert_eq!(process, Process { pid: 42, parent: 7, zombie: true });
        let process = parse_stat(43, "43 (sleep) S 1 43 43 0 -1").unwrap();
        assert_eq!(process, Process { pid: 43, parent: 1, zombie: false });
        assert_eq!(parse_stat(44, "44 (truncated"), None);
    }
}
