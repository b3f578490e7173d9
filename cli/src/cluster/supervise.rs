//! `pidfile run --cluster URL SERVICE -- COMMAND`: the host-local pidfile, then the cluster lease, then COMMAND,
//! which never outlives either: SIGTERM when renewals have failed until `kill_grace` before the lease's deadline,
//! SIGKILL at the deadline (at once if it had already passed, after a SIGSTOP or a suspend), and SIGKILL from the
//! kernel if this supervisor dies (PR_SET_PDEATHSIG). The processes COMMAND starts get the lease's SIGTERM and
//! SIGKILL too (not the kernel's), and when COMMAND exits they are stopped before the lease goes (`descendants`).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use pidfiles_cluster::{Cluster, Error, HolderInfo, Lease};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags, Signal};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

use super::descendants::{self, Reaper};
use super::timing::Timing;
use super::{LEASE_LOST, failure, pidfile_and_name};
use crate::args::RunArgs;
use crate::common::exit::USAGE;
use crate::common::{Failure, Settings};
use crate::run::signals::Forwarder;
use crate::run::{cannot_run, exit_code, inheritable_lock, release_or_leave};

/// The signals that end the wait for the lease, before COMMAND runs.
const TERMINATING: [i32; 4] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT];

pub fn run(settings: &Settings, cluster: &Cluster, args: &RunArgs) -> Result<u8, Failure> {
    if args.exec {
        return Err(Failure::new(
            USAGE,
            "--exec cannot be used with --cluster: the supervisor stays, to stop COMMAND when the lease is lost",
        ));
    }
    if args.background {
        return Err(Failure::new(
            USAGE,
            "--background cannot be used with --cluster yet: run the supervisor under a service manager instead",
        ));
    }
    let timing = Timing::new(args.ttl, args.kill_grace).map_err(|message| Failure::new(USAGE, message))?;
    crate::reap_own_children();
    let (service, command, name_of_program) = (args.service.as_str(), args.command.as_slice(), args.program());
    let (path, name) = pidfile_and_name(settings, service)?;
    // Registered before anything is claimed: a SIGTERM while waiting for the lease ends the wait cleanly (the
    // pidfile removed), and one that comes as COMMAND starts is passed on to it, as `run` passes signals on: once.
    let signals = Forwarder::register()?;

    // The host-local pidfile first, as a local `run` takes it: the cheap check, and what `stop` proves a local
    // holder by.
    let mut guard = crate::run::claim_at(&path, args)?;
    let info =
        HolderInfo::of_this_process(&command.iter().map(|part| part.to_string_lossy()).collect::<Vec<_>>().join(" "));
    let lease = wait_for_lease(cluster, &name, &info, &timing, args, &signals)?;
    settings.say(&format!("took the cluster lease of {name} (token {}, lease {})", lease.token(), lease.lease_id()));

    // A duplicate of the locked descriptor, without close-on-exec, carries the pidfile's lock into the command.
    let inherited = inheritable_lock(&guard, &path)?;
    let reaper = Reaper::adopt()?;
    let mut program = Command::new(&command[0]);
    program
        .args(&command[1..])
        .env("PIDFILE_FENCING_TOKEN", lease.token().to_string())
        .env("PIDFILE_CLUSTER_KEY", lease.key())
        .env("PIDFILE_CLUSTER_LEASE", lease.lease_id().to_string());
    crate::die_with_supervisor(&mut program);
    // Spawned from this, the main thread, which lives until COMMAND is reaped: PR_SET_PDEATHSIG fires when the
    // thread that forked ends, not the process.
    let mut child = program.spawn().map_err(|error| cannot_run(&name_of_program, &error))?;
    drop(inherited);
    let child_pid = child.id();
    // Until it is reaped, the child's pid is its own, so the pidfd opened now names it; signals go through it.
    let pidfd = match Pid::from_raw(child_pid as i32).map(|pid| rustix::process::pidfd_open(pid, PidfdFlags::empty())) {
        Some(Ok(pidfd)) => pidfd,
        Some(Err(error)) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Failure::new(
                1,
                format!("cannot watch {} (pid {child_pid}): pidfd_open: {error}", name_of_program),
            ));
        }
        None => return Err(Failure::new(1, format!("{} has no pid", name_of_program))),
    };
    guard.write_pid(child_pid)?;
    settings.say(&format!(
        "{service} runs {} as pid {child_pid} with fencing token {}",
        name_of_program,
        lease.token()
    ));

    let outcome = supervise(&mut child, &pidfd, &lease, timing.kill_grace, &signals, &reaper, &name_of_program);
    // COMMAND is reaped: there is no one to pass signals on to while the lease and the pidfile are let go.
    drop(signals);
    let outcome = outcome?;
    // What COMMAND started may hold the pidfile's lock and act for the service: it goes before the lease does. On
    // a loss, it had its SIGTERM with COMMAND, and gets SIGKILL at the deadline; otherwise the kill grace.
    let grace = if outcome.stopped.is_some() { lease.time_left() } else { timing.kill_grace.min(lease.time_left()) };
    let stopped = descendants::stop_descendants(grace);
    drop(reaper);
    if stopped.found > 0 {
        eprintln!(
            "pidfile: {} ended, leaving {} process(es) it started: stopped them ({}) before letting the cluster lease go",
            name_of_program,
            stopped.found,
            how_stopped(stopped, grace)
        );
    }
    if let Some(stopped) = outcome.stopped {
        release_or_leave(&mut guard, &path, &name_of_program)?;
        eprintln!("pidfile: lost the cluster lease of {name}: {} stopped ({stopped})", name_of_program);
        // Last, as it may wait for members that do not answer: revoking a lost lease frees it at once if etcd still
        // counts it (a partition that healed), and is harmless otherwise.
        drop(lease);
        return Ok(LEASE_LOST);
    }
    // The lease first: a contender waiting for it takes over at once.
    if let Err(error) = lease.release() {
        eprintln!(
            "pidfile: cannot revoke the cluster lease of {name}: {error}; it expires by itself within {:?}",
            timing.options.ttl
        );
    }
    release_or_leave(&mut guard, &path, &name_of_program)?;
    let code = exit_code(outcome.status);
    settings.say(&format!("{} exited with status {code}", name_of_program));
    Ok(code)
}

/// Takes the lease of `name`: at once, or after waiting for its holder to let go (saying once who that is), up to
/// `--timeout`, or not at all with `--try`. A terminating signal ends the wait.
fn wait_for_lease(
    cluster: &Cluster,
    name: &str,
    info: &HolderInfo,
    timing: &Timing,
    args: &RunArgs,
    signals: &Forwarder,
) -> Result<Lease, Failure> {
    let program = args.program();
    let started = Instant::now();
    let (mut said_held, mut said_no_quorum, mut tried) = (false, false, false);
    loop {
        // A try grants a lease, and revokes it when the key is held: etcd writes three entries to every member's
        // log (55 in 5 s for one waiting contender, measured). A read writes none: after the first try, the next
        // comes only when the key reads free.
        let attempt = if tried {
            match cluster.holder(name, &timing.options) {
                Ok(Some(holder)) => Err(Error::Held { holder: Box::new(holder) }),
                Ok(None) => Lease::try_acquire(cluster, name, info, &timing.options),
                Err(error) => Err(error),
            }
        } else {
            Lease::try_acquire(cluster, name, info, &timing.options)
        };
        tried = true;
        let error = match attempt {
            Ok(lease) => return Ok(lease),
            Err(error) => error,
        };
        let why = match &error {
            Error::Held { holder } => {
                if args.try_once {
                    return Err(Failure::new(
                        1,
                        format!("the cluster lease of {name} is held by {holder}: not starting {program}"),
                    ));
                }
                if !said_held {
                    eprintln!("pidfile: waiting for the cluster lease of {name} held by {holder}");
                    said_held = true;
                }
                format!("held by {holder}")
            }
            Error::NoQuorum { .. } => {
                if args.try_once {
                    return Err(Failure::new(1, format!("cannot take the cluster lease of {name}: {error}")));
                }
                if !said_no_quorum {
                    eprintln!("pidfile: waiting for the cluster lease of {name}: {error}");
                    said_no_quorum = true;
                }
                error.to_string()
            }
            _ => return Err(failure(1, error)),
        };
        let waited = started.elapsed();
        let pause = match args.timeout {
            Some(timeout) if waited >= timeout => {
                return Err(Failure::new(
                    1,
                    format!(
                        "gave up waiting {timeout:?} for the cluster lease of {name}: {why}; not starting {program}"
                    ),
                ));
            }
            Some(timeout) => timing.options.poll_every.min(timeout - waited),
            None => timing.options.poll_every,
        };
        if let Some(signal) = terminating_signal(signals, pause)? {
            return Err(Failure::new(
                128u8.saturating_add(signal as u8),
                format!(
                    "{} while waiting for the cluster lease of {name}: not starting {program}",
                    signal_hook::low_level::signal_name(signal).unwrap_or("a signal")
                ),
            ));
        }
    }
}

/// Waits up to `pause` for a signal that ends a wait ([`TERMINATING`]); others are let pass.
fn terminating_signal(signals: &Forwarder, pause: Duration) -> Result<Option<i32>, Failure> {
    let timeout = timespec(pause);
    let mut fds = [PollFd::new(signals, PollFlags::IN)];
    match rustix::event::poll(&mut fds, Some(&timeout)) {
        Ok(_) | Err(rustix::io::Errno::INTR) => {}
        Err(error) => return Err(Failure::new(1, format!("cannot wait for signals: {error}"))),
    }
    Ok(signals.pending().map(|delivery| delivery.signal).find(|signal| TERMINATING.contains(signal)))
}

/// How supervision ended: COMMAND's status, and how the lease made us stop it, if it did.
struct Outcome {
    status: ExitStatus,
    stopped: Option<Stopped>,
}

/// How COMMAND was stopped for its lease.
enum Stopped {
    /// SIGKILL `late_ms` after the lease's deadline (long after, if this process was stopped; before it, negative,
    /// if etcd said the lease is gone), and reaped `reaped` after the loss was seen.
    Killed { late_ms: f64, reaped: Duration },
    /// SIGTERM, `early` before the lease's deadline, as renewals were failing; COMMAND ended before the deadline.
    Terminated { early: Duration },
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |duration: &Duration| duration.as_secs_f64() * 1e3;
        match self {
            Stopped::Killed { late_ms, reaped } if *late_ms >= 0.0 => write!(
                f,
                "SIGKILL {late_ms:.1} ms after the lease's deadline, reaped {:.1} ms after the loss was seen",
                ms(reaped)
            ),
            Stopped::Killed { late_ms, reaped } => write!(
                f,
                "SIGKILL as etcd said the lease is gone, {:.1} ms before its deadline, reaped {:.1} ms after",
                -late_ms,
                ms(reaped)
            ),
            Stopped::Terminated { early } => {
                write!(f, "SIGTERM {:.1} ms before the lease's deadline, as renewals failed", ms(early))
            }
        }
    }
}

/// Waits for COMMAND to end, passing signals on to it (those it did not get already), and stopping it when the lease
/// is in danger: SIGTERM at the notice (`kill_grace` before the deadline), SIGKILL at the deadline or as soon as the
/// loss is known.
fn supervise(
    child: &mut Child,
    pidfd: &OwnedFd,
    lease: &Lease,
    kill_grace: Duration,
    signals: &Forwarder,
    reaper: &Reaper,
    program: &str,
) -> Result<Outcome, Failure> {
    let child_pid = child.id();
    let cannot_watch = |error: &dyn std::fmt::Display| Failure::new(1, format!("cannot watch {program}: {error}"));
    let notice = lease.notice_fd(kill_grace).map_err(|error| cannot_watch(&error))?;
    let mut terminated: Option<Duration> = None;
    let mut killed: Option<(Instant, f64)> = None;
    loop {
        let (watch_lost, watch_notice) = (killed.is_none(), killed.is_none() && terminated.is_none());
        let ready = match wait_for_events(pidfd, signals, reaper, lease.lost_fd(), notice, watch_lost, watch_notice) {
            Ok(ready) => ready,
            Err(rustix::io::Errno::INTR) => continue,
            Err(error) => return Err(cannot_watch(&error)),
        };
        if ready.exited {
            break;
        }
        // After a SIGSTOP or a suspend, both timers are readable at once: the deadline has passed, so no grace.
        if killed.is_none() && (ready.lost || lease.is_lost()) {
            let seen = Instant::now();
            let late_ms = (pidfiles_cluster::boottime_now().as_secs_f64() - lease.deadline().as_secs_f64()) * 1e3;
            send(pidfd, Signal::KILL);
            descendants::signal_descendants(Signal::KILL, Some(child_pid));
            killed = Some((seen, late_ms));
        } else if ready.notice {
            send(pidfd, Signal::TERM);
            descendants::signal_descendants(Signal::TERM, Some(child_pid));
            terminated = Some(lease.time_left());
        }
        if ready.orphan_ended {
            reaper.reap(Some(child_pid));
        }
        if ready.signalled {
            signals.forward_pending(pidfd.as_fd(), child_pid);
        }
    }
    let status = child.wait().map_err(|error| Failure::new(1, format!("cannot wait for {program}: {error}")))?;
    let stopped = match (killed, terminated) {
        (Some((seen, late_ms)), _) => Some(Stopped::Killed { late_ms, reaped: seen.elapsed() }),
        (None, Some(early)) => Some(Stopped::Terminated { early }),
        (None, None) => None,
    };
    Ok(Outcome { status, stopped })
}

/// Which of the supervisor's descriptors are readable.
struct Ready {
    exited: bool,
    signalled: bool,
    orphan_ended: bool,
    lost: bool,
    notice: bool,
}

/// Waits until COMMAND exits, a signal comes, or (when watched) one of the lease's timers fires.
fn wait_for_events(
    pidfd: &OwnedFd,
    signals: &Forwarder,
    reaper: &Reaper,
    lost: BorrowedFd<'_>,
    notice: BorrowedFd<'_>,
    watch_lost: bool,
    watch_notice: bool,
) -> Result<Ready, rustix::io::Errno> {
    // Timers that have been acted on stay readable: they are left out, or the loop would spin.
    let mut fds = vec![
        PollFd::new(pidfd, PollFlags::IN),
        PollFd::new(signals, PollFlags::IN),
        PollFd::new(reaper, PollFlags::IN),
    ];
    if watch_lost {
        fds.push(PollFd::from_borrowed_fd(lost, PollFlags::IN));
    }
    if watch_notice {
        fds.push(PollFd::from_borrowed_fd(notice, PollFlags::IN));
    }
    rustix::event::poll(&mut fds, None)?;
    let ready = |index: usize| fds.get(index).is_some_and(|fd| !fd.revents().is_empty());
    Ok(Ready {
        exited: ready(0),
        signalled: ready(1),
        orphan_ended: ready(2),
        lost: watch_lost && ready(3),
        notice: watch_notice && ready(if watch_lost { 4 } else { 3 }),
    })
}

/// Sends `signal` to COMMAND through its pidfd; it may have just exited, which is no error.
fn send(pidfd: &OwnedFd, signal: Signal) {
    let _ = rustix::process::pidfd_send_signal(pidfd.as_fd(), signal);
}

/// How [`descendants::stop_descendants`] stopped what COMMAND left running, for a message.
fn how_stopped(stopped: descendants::Stopped, grace: Duration) -> String {
    let mut how = "SIGTERM".to_owned();
    if stopped.killed > 0 {
        how += &format!(", SIGKILL to {} after {:.1} s", stopped.killed, grace.as_secs_f64());
    }
    if stopped.left > 0 {
        how += &format!("; {} would not die even so", stopped.left);
    }
    how
}

fn timespec(duration: Duration) -> Timespec {
    Timespec { tv_sec: duration.as_secs() as i64, tv_nsec: i64::from(duration.subsec_nanos()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_is_told_after_or_before_the_deadline() {
        let reaped = Duration::from_micros(300);
        let late = Stopped::Killed { late_ms: 0.25, reaped }.to_string();
        assert_eq!(late, "SIGKILL 0.2 ms after the lease's deadline, reaped 0.3 ms after the loss was seen");
        let revoked = Stopped::Killed { late_ms: -3480.7, reaped }.to_string();
        assert!(
            revoked.starts_with("SIGKILL as etcd said the lease is gone, 3480.7 ms before its deadline"),
            "{revoked}"
        );
        let terminated = Stopped::Terminated { early: Duration::from_millis(999) }.to_string();
        assert!(terminated.starts_with("SIGTERM 999.0 ms before the lease's deadline"), "{terminated}");
    }

    #[test]
    fn stopping_what_the_command_left_is_told_with_the_kills() {
        let grace = Duration::from_millis(1500);
        assert_eq!(how_stopped(descendants::Stopped { found: 2, killed: 0, left: 0 }, grace), "SIGTERM");
        let killed = how_stopped(descendants::Stopped { found: 2, killed: 1, left: 1 }, grace);
        assert_eq!(killed, "SIGTERM, SIGKILL to 1 after 1.5 s; 1 would not die even so");
    }
}
