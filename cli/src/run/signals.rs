//! Passing signals on to the supervised command, each once.
//!
//! The command runs in the supervisor's process group, so that in a terminal it is in the foreground with the
//! supervisor: it can read the terminal, and Ctrl-Z stops both, as a shell's job control expects. The cost is that
//! a signal sent to the whole group reaches the command directly: the kernel sends the terminal's Ctrl-C and
//! Ctrl-\ to the foreground group, and, when the session's leader ends or a group is orphaned, SIGHUP to a group.
//! Passing those on as well would deliver them twice, and a service that stops gracefully on the first Ctrl-C and
//! forces its way out on the second would be forced out. So a signal is passed on when a process sent it (`kill`,
//! `sigqueue`, `tgkill`), which the command may not have seen, and a signal from the kernel only when it cannot
//! have reached the command: the terminal's hang-up, which the kernel sends to the session's leader alone (the
//! supervisor is that leader when it was started with `setsid`, or detached with --background), or anything from
//! the kernel once the command has left the supervisor's group.
//!
//! A signal this process was started ignoring (SIGINT and SIGQUIT in a script's `cmd &`, which the terminal's Ctrl-C
//! must not end; SIGHUP under `nohup`) is left ignored, by it and so by the command, as it would be by the command
//! run directly: a handler here would end that, since exec resets a handled signal to its default action.
//!
//! A process that signals the whole group (`kill -INT -PGID`, or an interactive shell passing a hang-up on to its
//! jobs) still reaches the command twice: a signal sent by a process says who sent it, not to whom.
//!
//! Who sent a signal is in the `siginfo_t` its handler gets. signal-hook offers it safely only through C compiled at
//! build time (its `extended-siginfo`), which a static musl build cannot compile without a musl C compiler; so this
//! module registers its handler itself, with signal-hook's registry: an unsafe call (hence the gate below), like the
//! three questions it asks the C library (a process's group, this process's session, whether a signal is ignored),
//! which rustix either lacks or answers wrongly inside a pid namespace. The handler sends one datagram of two bytes per
//! delivery to a socket, which either a thread reads ([`Forwarder::forward`], for `run`) or a supervisor's own loop
//! polls ([`Forwarder::forward_pending`], for `run --cluster`): both pass a signal on by the same rule.

// The gate: registering a handler is unsafe, since it must be async-signal-safe; ours makes one send(2). And the
// process group and session, and whether a signal is ignored, are asked of the C library (see `process_group`).
#![allow(unsafe_code)]

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{RecvFlags, SendFlags};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook_registry::SigId;

use super::Target;
use crate::common::{Failure, exit};

/// The signals a supervisor passes on to its command.
const FORWARDED: [i32; 6] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];

/// The record that tells the forwarding thread to stop; no signal is numbered 0.
const STOP: [u8; 2] = [0, 0];

/// This process's handlers of the signals it passes on, and the socket where they note each delivery: its signal,
/// and whether the kernel sent it. The handlers are unregistered when it is dropped.
pub struct Forwarder {
    deliveries: OwnedFd,
    stop: OwnedFd,
    handlers: Vec<SigId>,
}

/// Stops a [`Forwarder`]'s thread.
pub struct Handle(OwnedFd);

impl Handle {
    /// Makes [`Forwarder::forward`] return once it has passed on the signals that came before.
    pub fn close(self) {
        let _ = rustix::net::send(&self.0, &STOP, SendFlags::NOSIGNAL);
    }
}

/// One delivery of a signal to this process.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// The signal's number.
    pub signal: i32,
    /// Whether the kernel sent it (the terminal's keys, a hang-up), rather than a process.
    from_kernel: bool,
}

impl Delivery {
    /// Whether this delivery reached the command `child_pid` as well, so that passing it on would deliver it twice.
    /// Asked when the delivery is handled: a command that has left our group since gets the kernel's signals from us.
    pub fn reached(&self, child_pid: u32) -> bool {
        let child_group = i32::try_from(child_pid).ok().filter(|&pid| pid > 0).and_then(process_group);
        let child_in_our_group = child_group.is_some_and(|group| Some(group) == process_group(0));
        reached_the_command(self.signal, self.from_kernel, child_in_our_group, leads_session())
    }
}

impl Forwarder {
    /// Replaces the default action of the forwarded signals (ending this process) by noting them.
    pub fn register() -> Result<Forwarder, Failure> {
        let failed = |error: std::io::Error| Failure::new(exit::FAILURE, format!("cannot handle signals: {error}"));
        // A datagram per delivery: the two bytes of a record arrive together, or not at all.
        let (deliveries, notes) = std::os::unix::net::UnixDatagram::pair().map_err(failed)?;
        let (deliveries, notes) = (OwnedFd::from(deliveries), OwnedFd::from(notes));
        let stop = notes.try_clone().map_err(failed)?;
        let mut forwarder = Forwarder { deliveries, stop, handlers: Vec::new() };
        for signal in FORWARDED.into_iter().filter(|&signal| !is_ignored(signal)) {
            let notes = notes.try_clone().map_err(failed)?;
            // A positive si_code is the kernel's (SI_KERNEL, for the terminal's signals); a process's kill, tgkill
            // or sigqueue gives 0 or less (SI_USER, SI_TKILL, SI_QUEUE).
            // SAFETY: the action is async-signal-safe: it allocates nothing, takes no lock, and makes one system
            // call, a send(2) that never waits (a full queue loses the record, never the process) and raises no
            // SIGPIPE; the registry keeps errno.
            let registered = unsafe {
                signal_hook_registry::register_sigaction(signal, move |info| {
                    let record = [signal as u8, u8::from(info.si_code > 0)];
                    let _ = rustix::net::send(&notes, &record, SendFlags::DONTWAIT | SendFlags::NOSIGNAL);
                })
            };
            // On an error, the handlers registered so far go with the forwarder.
            forwarder.handlers.push(registered.map_err(failed)?);
        }
        Ok(forwarder)
    }

    /// What stops [`Forwarder::forward`].
    pub fn handle(&self) -> Result<Handle, Failure> {
        self.stop
            .try_clone()
            .map(Handle)
            .map_err(|error| Failure::new(exit::FAILURE, format!("cannot handle signals: {error}")))
    }

    /// The next delivery noted, waiting for one if `wait`; `None` when there is none (without waiting), or when the
    /// handle was closed.
    fn next(&self, wait: bool) -> Option<Delivery> {
        let flags = if wait { RecvFlags::empty() } else { RecvFlags::DONTWAIT };
        let mut record = [0; 2];
        loop {
            match rustix::net::recv(&self.deliveries, &mut record, flags) {
                Ok((2, 2)) if record != STOP => {
                    return Some(Delivery { signal: i32::from(record[0]), from_kernel: record[1] == 1 });
                }
                Err(rustix::io::Errno::INTR) => continue,
                _ => return None,
            }
        }
    }

    /// The deliveries noted so far, without waiting: readable when [`AsFd::as_fd`] polls readable.
    #[cfg(feature = "cluster")]
    pub fn pending(&self) -> impl Iterator<Item = Delivery> + '_ {
        std::iter::from_fn(|| self.next(false))
    }

    /// Passes each signal noted so far on to the command, through its pidfd, unless the command got it already;
    /// without waiting.
    #[cfg(feature = "cluster")]
    pub fn forward_pending(&self, child: BorrowedFd<'_>, child_pid: u32) {
        for delivery in self.pending() {
            pass_on(delivery, child_pid, |signal| {
                // The command may have just exited; there is nothing more to do then.
                let _ = rustix::process::pidfd_send_signal(child, signal);
            });
        }
    }

    /// Passes each signal this process receives on to the command, through its pidfd, unless the command got it
    /// already, until the handle is closed.
    pub fn forward(self, child: Target, child_pid: u32) {
        while let Some(delivery) = self.next(true) {
            pass_on(delivery, child_pid, |signal| child.send(signal));
        }
    }
}

/// The socket where deliveries are noted, to poll beside other descriptors.
impl AsFd for Forwarder {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.deliveries.as_fd()
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        for handler in self.handlers.drain(..) {
            signal_hook_registry::unregister(handler);
        }
    }
}

/// Sends the delivered signal to the command with `send`, unless it reached it already.
fn pass_on(delivery: Delivery, child_pid: u32, send: impl FnOnce(rustix::process::Signal)) {
    if delivery.reached(child_pid) {
        return;
    }
    if let Some(signal) = rustix::process::Signal::from_named_raw(delivery.signal) {
        send(signal);
    }
}

/// Whether `signal` is ignored, as the process that started this one may have left it.
fn is_ignored(signal: i32) -> bool {
    // SAFETY: reads the current action into a zeroed struct; a null new action changes nothing.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0 && current.sa_sigaction == libc::SIG_IGN
    }
}

/// Whether this process leads its session, to which alone the kernel sends the terminal's hang-up.
fn leads_session() -> bool {
    // SAFETY: getsid(2) takes a number and returns one; it touches no memory of ours.
    let session = unsafe { libc::getsid(0) };
    session == std::process::id() as i32
}

/// The process group of process `pid` (0: this one), as this process's pid namespace numbers it; `None` if the
/// process is gone.
///
/// Not rustix's `getpgid`, `getpgrp` or `getsid`: they take the kernel's answer for a positive number, but in a pid
/// namespace entered from a shell (`unshare --pid --fork`, a container started from a terminal or a CI runner) the
/// group's and session's leaders live outside and the kernel answers 0, which rustix turns into a panic (debug
/// builds) or an invalid `Pid`. Two processes whose group is 0 are taken to share it: the command inherits ours,
/// and a group of its own would have its own pid, never 0.
fn process_group(pid: i32) -> Option<i32> {
    // SAFETY: getpgid(2) takes a number and returns one; it touches no memory of ours.
    let group = unsafe { libc::getpgid(pid) };
    (group >= 0).then_some(group)
}

/// Whether `signal`, which came to this process from the kernel or from a process, reached the command as well:
/// the kernel sent it to the process group (the terminal's foreground group, or a group orphaned) and the command
/// is in ours, except the hang-up that the kernel sends to the session's leader alone. Of a signal sent by a
/// process, to this one or to its group, there is no telling which: it is passed on.
fn reached_the_command(signal: i32, from_kernel: bool, child_in_our_group: bool, leads_session: bool) -> bool {
    from_kernel && child_in_our_group && !(signal == SIGHUP && leads_session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_terminals_signals_to_the_foreground_group_are_not_passed_on() {
        for signal in [SIGINT, SIGQUIT, SIGHUP] {
            assert!(reached_the_command(signal, true, true, false), "{signal}");
        }
        assert!(reached_the_command(SIGINT, true, true, true), "the leader's Ctrl-C");
    }

    #[test]
    fn the_hang_up_of_the_session_leader_is_passed_on() {
        assert!(!reached_the_command(SIGHUP, true, true, true));
    }

    #[test]
    fn the_kernels_signals_are_passed_on_to_a_command_that_left_the_group() {
        assert!(!reached_the_command(SIGINT, true, false, false));
    }

    #[test]
    fn signals_sent_by_a_process_are_passed_on() {
        for leads_session in [false, true] {
            assert!(!reached_the_command(SIGINT, false, true, leads_session));
            assert!(!reached_the_command(SIGHUP, false, true, leads_session));
        }
    }
}
