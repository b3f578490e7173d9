//! Exactly one instance of a service across a cluster: a lock on an etcd key bound to a lease, with a fencing
//! token, and a local deadline that says, conservatively, when the lock must be taken as lost.
//!
//! A lock is named like a host-local pidfile's stem (`{instance}-{service}`), so that both views of a service
//! join; its key is `{prefix}/{name}` in etcd. Taking it is one transaction: create the key if it does not exist,
//! bound to a fresh lease, and record who holds it ([`HolderInfo`], informational). The key's create revision is
//! the [fencing token](Lease::token): every later holder of the name gets a greater one. A thread renews the lease
//! every [`Options::renew_every`]; releasing revokes the lease, which deletes the key, so the next contender takes
//! over at once. If the holder dies, its lease runs out after its TTL and the key goes with it.
//!
//! ```no_run
//! use std::time::Duration;
//! use pidfiles_cluster::{Cluster, HolderInfo, Lease, Options};
//!
//! # fn main() -> Result<(), pidfiles_cluster::Error> {
//! let cluster = Cluster::parse("etcd://127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379")?;
//! let options = Options::with_ttl(Duration::from_secs(5));
//! let info = HolderInfo::of_this_process("backup --nightly");
//! // Waits at most a minute for the current holder, if any, to let go.
//! let lease = Lease::acquire(&cluster, "default-backup", &info, &options, Some(Duration::from_secs(60)))?;
//! println!("holding {} with fencing token {}", lease.key(), lease.token());
//! // Do the work, passing the token to whatever checks it, and stop when `lease.lost_fd()` becomes readable
//! // (poll it beside the work's own descriptors) or `lease.is_lost()` says so.
//! lease.release()?;
//! # Ok(())
//! # }
//! ```
//!
//! A supervisor runs the protected work as a child and stops it when the lease is lost, polling the lease's
//! [lost descriptor](Lease::lost_fd) beside the child's pidfd:
//!
//! ```no_run
//! # use std::time::Duration;
//! # use pidfiles_cluster::{Cluster, HolderInfo, Lease, Options};
//! use rustix::event::{PollFd, PollFlags, poll};
//! use rustix::process::{Pid, PidfdFlags, pidfd_open};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let cluster = Cluster::parse("etcd://127.0.0.1:2379")?;
//! # let options = Options::with_ttl(Duration::from_secs(5));
//! let lease = Lease::try_acquire(&cluster, "default-backup", &HolderInfo::of_this_process("backup"), &options)?;
//! let mut child =
//!     std::process::Command::new("backup").env("PIDFILE_FENCING_TOKEN", lease.token().to_string()).spawn()?;
//! let pidfd = pidfd_open(Pid::from_child(&child), PidfdFlags::empty())?;
//! let lost = lease.lost_fd();
//! let mut fds = [PollFd::new(&pidfd, PollFlags::IN), PollFd::new(&lost, PollFlags::IN)];
//! poll(&mut fds, None)?;
//! if !fds[1].revents().is_empty() {
//!     // The lease is lost: someone else may hold the lock any moment now.
//!     child.kill()?;
//! }
//! child.wait()?;
//! lease.release()?;
//! # Ok(())
//! # }
//! ```
//!
//! # What it promises, and what it cannot
//!
//! - **A lease excludes processes only on a best-effort basis.** The holder takes its lease as lost at its
//!   [deadline](Lease::deadline): the send time of the last renewal etcd acknowledged, plus the TTL, minus
//!   [`Options::margin`]. etcd counts the TTL from later than that send, so while clocks agree the holder gives
//!   up before anyone else can take over. [`Lease::lost_fd`] is a kernel timer armed at the deadline, so it fires
//!   even if the holder's renewing thread is stopped; a supervisor polling it can stop the protected work in time.
//!   But a holder that is itself stopped (SIGSTOP, a paused VM, a long GC) and resumed after the deadline may do
//!   some work before it notices, while someone else already holds the lock. No lease can prevent that.
//! - **The fencing token excludes effects, when the protected resource checks it.** Give [`Lease::token`] along
//!   with every write, and have the resource refuse a token lower than the highest it has seen (a database row
//!   `WHERE fence <= $token`, an etcd transaction comparing the key's create revision, a conditional object
//!   write). Then a late holder's writes are refused. Without such a check, the lock is advisory.
//! - **Clock rates matter, clock settings do not.** Deadlines are on CLOCK_BOOTTIME (which, unlike
//!   `std::time::Instant`, keeps counting through a suspend), and etcd's leader counts on its own monotonic clock;
//!   stepping either wall clock changes nothing. But if the holder's clock runs slower than the leader's by more
//!   than `margin / ttl` (20% with the defaults), the leader may let the lease expire before the holder's deadline.
//!   Keep clocks disciplined (NTP, slewing).
//! - **No quorum means the service runs nowhere.** When no etcd member with quorum answers, renewals fail, the
//!   holder's deadline passes and it must stop; and no one can take the lock until quorum returns. Questions
//!   about holders fail with [`Error::NoQuorum`] rather than give a stale answer. Safety is chosen over
//!   availability.
//! - **Members fail over.** Every request tries the members in turn, starting with the last that answered, each
//!   for at most [`Options::request_timeout`], so one dead member costs a fraction of the TTL, not the lease.
//!   Renewals that go unanswered are sent again to every member at once while the first still waits, so that a
//!   lost etcd leader costs about its re-election (1 to 2.6 s on loopback). With a 5 s TTL and the default 1 s
//!   margin, killing the leader left 1.7 to 2.6 s before the holder's deadline (8 runs on loopback); a holder that
//!   also gives its work a stop grace of more than that would stop it needlessly. Production TTLs of 10 s or more
//!   leave room.
//!
//! Each held lease has one thread renewing it, which starts a short-lived thread per renewal so that it never
//! waits on the network itself.
//!
//! Members are spoken to through etcd's JSON gateway over plain HTTP; TLS and etcd's authentication are not
//! supported yet. The gateway is on by default in etcd 3.4 and later.

mod backend;
mod clock;
mod cluster;
mod deadline;
mod error;
mod etcd;
mod holder;
mod lease;
mod options;

pub use clock::now as boottime_now;
pub use cluster::{Cluster, DEFAULT_PREFIX};
pub use error::Error;
pub use holder::{Holder, HolderInfo};
pub use lease::Lease;
pub use options::Options;
