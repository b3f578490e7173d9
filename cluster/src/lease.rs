//! A held lock: the lease, the thread that renews it, and the timers that tell when it is lost.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::backend::{Backend, Created};
use crate::clock::{self, Timer};
use crate::cluster::{self, Cluster, check_name};
use crate::deadline::Deadline;
use crate::{Error, Holder, HolderInfo, Options};

/// Every how many acknowledged renewals the thread also reads the key back, to learn that it was deleted or taken
/// over by hand (`etcdctl del`): often enough to notice within a few renewals, rarely enough not to double the
/// load on etcd.
const CHECK_KEY_EVERY: u32 = 4;

/// How many times sooner than the renewal period a renewal not answered yet, or failed, is sent again.
const RETRY_SOONER: u32 = 5;

/// The most renewals out at once: enough that a new one goes out every `renew_every / RETRY_SOONER` while the
/// others wait out their request timeout (`ttl / 6`, with the defaults 8 periods of `ttl / 50`), few enough that
/// a slow cluster is not flooded.
const MAX_IN_FLIGHT: usize = 8;

/// The shortest pause between two renewals, or two looks at a held lock, whatever the options say.
const MIN_PAUSE: Duration = Duration::from_millis(10);

/// A held cluster lock: the key `{prefix}/{name}` exists, bound to this lease, and a background thread renews the
/// lease every [`Options::renew_every`] until it is released, dropped or lost.
///
/// The lease is taken as lost at its [deadline](Lease::deadline): the send time of the last acknowledged renewal
/// plus the TTL minus [`Options::margin`], on CLOCK_BOOTTIME. Also at once when etcd answers a renewal saying it no
/// longer knows the lease, or when the key is found gone or not ours. A lost lease stays lost: the thread stops
/// renewing it, and a renewal acknowledged after the deadline is ignored. [`Lease::lost_fd`] becomes readable when
/// the lease is lost, for `poll` beside the protected child's pidfd.
///
/// Dropping a `Lease` stops the renewals and revokes the lease (best effort: errors are ignored, and the lease then
/// expires by itself after its TTL). [`Lease::release`] does the same and reports errors.
pub struct Lease {
    shared: Arc<Shared>,
    backend: Arc<dyn Backend>,
    renewer: Option<JoinHandle<()>>,
    /// Tells the renewing thread to stop.
    stop: Sender<Event>,
}

impl Lease {
    /// Waits until `name` is free and takes it, for at most `timeout` (`None`, or `Duration::MAX`: forever). While
    /// someone holds it, the key is read every [`Options::poll_every`], and taken as soon as it is gone.
    ///
    /// Fails with [`Error::Timeout`] (naming the holder seen last) when the timeout passes while the lock is held,
    /// and with [`Error::NoQuorum`] when it passes while no member answers; until then, both are waited out.
    pub fn acquire(
        cluster: &Cluster,
        name: &str,
        info: &HolderInfo,
        options: &Options,
        timeout: Option<Duration>,
    ) -> Result<Lease, Error> {
        acquire(cluster.backend(options), cluster, name, info, options, timeout)
    }

    /// Takes `name` if it is free, in one attempt: [`Error::Held`] names the holder when it is not.
    pub fn try_acquire(cluster: &Cluster, name: &str, info: &HolderInfo, options: &Options) -> Result<Lease, Error> {
        attempt(cluster.backend(options), cluster, name, info, options)
    }

    /// The fencing token: the key's create revision, greater than that of every earlier holder of this name. Give
    /// it to the protected resource with every write, and have the resource refuse tokens lower than the highest it
    /// has seen: that, not the lease, is what keeps a holder that lost its lease unknowingly (stopped, partitioned)
    /// from doing harm.
    pub fn token(&self) -> u64 {
        self.shared.token
    }

    /// The key held, `{prefix}/{name}`.
    pub fn key(&self) -> &str {
        &self.shared.key
    }

    /// The etcd lease id.
    pub fn lease_id(&self) -> i64 {
        self.shared.lease_id
    }

    /// The CLOCK_BOOTTIME reading ([`boottime_now`](crate::boottime_now)) at which the lease must be taken as lost
    /// unless renewed before (see [`Lease`]). Once lost it no longer moves.
    pub fn deadline(&self) -> Duration {
        self.shared.deadline().at()
    }

    /// How long until the [deadline](Lease::deadline): zero once it has passed or the lease is lost.
    pub fn time_left(&self) -> Duration {
        let deadline = self.shared.deadline();
        let now = clock::now();
        if deadline.is_lost(now) { Duration::ZERO } else { deadline.at() - now }
    }

    /// Whether the lease is lost: its deadline has passed, or etcd said it is gone (a renewal answered with no
    /// time to live, the key missing or someone else's), or it was released.
    pub fn is_lost(&self) -> bool {
        self.shared.deadline().is_lost(clock::now())
    }

    /// A timerfd on CLOCK_BOOTTIME that becomes readable when the lease is lost: armed at the deadline, moved on by
    /// every acknowledged renewal, and fired at once when a loss is learnt. Poll it (do not read it: reading makes
    /// it unreadable again) beside the child's pidfd. Because the kernel keeps the timer, it fires at the deadline
    /// even if the renewing thread was stopped (SIGSTOP) or the machine suspended.
    pub fn lost_fd(&self) -> BorrowedFd<'_> {
        self.shared.lost.as_fd()
    }

    /// Like [`Lease::lost_fd`], but readable `advance` before the deadline (to ask the child to stop at
    /// deadline minus a grace, before killing it at the deadline). The first call makes this timer and fixes
    /// `advance`; later calls with the same `advance` return the same descriptor, and calls with another fail with
    /// an [`Error::Io`] of kind `InvalidInput`.
    ///
    /// Unlike the lost descriptor, this one is a warning, not a verdict: a renewal acknowledged after it fired (but
    /// before the deadline) moves it on, and it becomes unreadable again. A supervisor that acted on it (sent
    /// SIGTERM) should go on as it decided, and watch [`Lease::lost_fd`] for the kill.
    pub fn notice_fd(&self, advance: Duration) -> Result<BorrowedFd<'_>, Error> {
        let deadline = self.shared.deadline();
        if self.shared.notice.get().is_none() {
            let at = if deadline.is_lost(clock::now()) { Duration::ZERO } else { deadline.at() };
            let timer = Timer::at(at.saturating_sub(advance))?;
            let _ = self.shared.notice.set((advance, timer));
        }
        drop(deadline);
        match self.shared.notice.get() {
            Some((set, timer)) if *set == advance => Ok(timer.as_fd()),
            Some((set, _)) => Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("the notice of {} was set {set:?} before the deadline, not {advance:?}", self.shared.key),
            ))),
            None => unreachable!("set above under the deadline's lock"),
        }
    }

    /// Stops renewing and revokes the lease, which deletes the key: a waiting contender can take it at once.
    /// The lease counts as lost from now on.
    pub fn release(mut self) -> Result<(), Error> {
        self.stop()
    }

    /// Stops the renewing thread and revokes the lease; used by `release` and `drop`.
    fn stop(&mut self) -> Result<(), Error> {
        let Some(renewer) = self.renewer.take() else {
            return Ok(());
        };
        let _ = self.stop.send(Event::Stop);
        self.shared.lose();
        // Revoking first: the handover should not wait for a renewal in flight to time out.
        let revoked = self.backend.revoke(self.shared.lease_id);
        let _ = renewer.join();
        revoked
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.shared.key)
            .field("token", &self.shared.token)
            .field("lease_id", &self.shared.lease_id)
            .field("deadline", &self.deadline())
            .finish_non_exhaustive()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// What the owner and the renewing thread share.
#[derive(Debug)]
struct Shared {
    key: String,
    token: u64,
    lease_id: i64,
    /// Guards the timers' moves as well: see `acknowledge`.
    deadline: Mutex<Deadline>,
    lost: Timer,
    notice: OnceLock<(Duration, Timer)>,
}

impl Shared {
    fn deadline(&self) -> MutexGuard<'_, Deadline> {
        // The deadline is consistent between any two statements; a panic elsewhere does not spoil it.
        self.deadline.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes in a renewal sent at `sent_at` and answered with `ttl` seconds; returns whether the lease is still
    /// held. The timers move only while the lease is held, and under the deadline's lock, so that a timer that has
    /// fired is never moved (moving it would make it unreadable, reviving the lease for whoever polls it).
    fn acknowledge(&self, sent_at: Duration, ttl: i64) -> bool {
        let mut deadline = self.deadline();
        // The kernel's view first: the timer fired means the deadline came, whatever the clock read below says.
        let fired = self.lost.has_fired().unwrap_or(true);
        if fired {
            deadline.lose();
        }
        if deadline.acknowledged(sent_at, ttl, clock::now()) {
            let at = deadline.at();
            let moved = self.lost.set(at).and_then(|()| match self.notice.get() {
                Some((advance, notice)) => notice.set(at.saturating_sub(*advance)),
                None => Ok(()),
            });
            if moved.is_ok() {
                return true;
            }
            deadline.lose();
        }
        self.fire();
        false
    }

    /// Records a loss learnt otherwise, and fires the timers.
    fn lose(&self) {
        self.deadline().lose();
        self.fire();
    }

    fn fire(&self) {
        // Firing sets an absolute time in the past, which cannot fail but for a bad descriptor.
        let _ = self.lost.fire();
        if let Some((_, notice)) = self.notice.get() {
            let _ = notice.fire();
        }
    }
}

/// What the renewing thread hears about.
enum Event {
    /// A renewal sent at this time was answered so.
    Renewed(Duration, Result<i64, Error>),
    /// The key was read back: whether it is still ours.
    KeyChecked(bool),
    /// The owner released or dropped the lease.
    Stop,
}

/// Renews the lease every `renew_every` until it is lost or the owner stops it.
///
/// Each renewal runs on a thread of its own, so that this loop never waits on the network: when a renewal is not
/// answered within `renew_every / RETRY_SOONER`, another is sent beside it (at most `MAX_IN_FLIGHT` at once),
/// and whichever is answered first counts. After an etcd leader is lost, the first renewal that can succeed is one
/// sent after the new leader is elected (1 to 2.6 s after the kill on loopback); a member without a leader holds
/// the renewals that reach it for a whole election timeout before it looks again, longer than the request timeout.
/// Waiting for each renewal to time out before sending the next lost up to a second of slack to that (measured on
/// loopback, TTL 5 s, leader killed: 3 of 8 runs came within 0.7 s of the deadline); sending the next renewal
/// while the others wait does not.
fn renew(
    shared: &Shared,
    backend: &Arc<dyn Backend>,
    renew_every: Duration,
    events: &Receiver<Event>,
    sender: &Sender<Event>,
) {
    // A zero period would renew in a busy loop.
    let renew_every = renew_every.max(MIN_PAUSE);
    let hedge_after = (renew_every / RETRY_SOONER).max(MIN_PAUSE);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut sent = 0u32;
    // The first renewal at once: the deadline so far counts from the grant's send time, which may be long past (a
    // member that did not answer the grant costs a request timeout), and waiting a whole period to renew could let
    // a supervisor's notice (SIGTERM at the deadline minus its grace) fire on a healthy lease (measured: TTL 5 s,
    // grace 3 s, a dead first member, COMMAND stopped 0.2 s after it started).
    let mut next_send = clock::now();
    loop {
        let now = clock::now();
        if shared.deadline().is_lost(now) {
            shared.lose();
            return;
        }
        if now >= next_send {
            if in_flight.load(Ordering::SeqCst) < MAX_IN_FLIGHT {
                sent = sent.wrapping_add(1);
                send_renewal(shared, backend, sender, &in_flight, sent % CHECK_KEY_EVERY == 0);
            }
            // Saturating: a period too long for the clock (`Duration::MAX`) means never.
            next_send = now.saturating_add(hedge_after);
        }
        let wait = next_send.saturating_sub(now).min(shared.deadline().at().saturating_sub(now));
        match events.recv_timeout(wait.max(Duration::from_millis(1))) {
            Ok(Event::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(Event::Renewed(sent_at, Ok(ttl))) => {
                if !shared.acknowledge(sent_at, ttl) {
                    return;
                }
                next_send = next_send.max(sent_at.saturating_add(renew_every));
            }
            // A failed renewal changes nothing: the deadline stands, and the next renewal goes at `next_send`.
            Ok(Event::Renewed(_, Err(_))) => {}
            Ok(Event::KeyChecked(ours)) => {
                if !ours {
                    shared.lose();
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// Sends one renewal on a thread of its own, and with `check_key` reads the key back after it succeeds.
fn send_renewal(
    shared: &Shared,
    backend: &Arc<dyn Backend>,
    sender: &Sender<Event>,
    in_flight: &Arc<AtomicUsize>,
    check_key: bool,
) {
    let (backend, sender, counted) = (Arc::clone(backend), sender.clone(), Arc::clone(in_flight));
    let (key, token, lease_id) = (shared.key.clone(), shared.token, shared.lease_id);
    // A renewal sent while another waits unanswered asks every member: the one the other asked may be stopped.
    let hedge = in_flight.fetch_add(1, Ordering::SeqCst) > 0;
    let spawned = std::thread::Builder::new().name("pidfile-renewal".to_owned()).spawn(move || {
        let sent_at = clock::now();
        let renewed = backend.keepalive(lease_id, hedge);
        let alive = matches!(renewed, Ok(ttl) if ttl > 0);
        // The owner may be gone (the lease released): then nobody listens, and that is fine.
        let _ = sender.send(Event::Renewed(sent_at, renewed));
        // A failed read proves nothing either way; a read saying the key is not ours proves the loss.
        if check_key && alive {
            if let Ok(keys) = backend.range(&key, false) {
                let ours = keys.iter().any(|found| found.create_revision == token && found.lease == lease_id);
                let _ = sender.send(Event::KeyChecked(ours));
            }
        }
        counted.fetch_sub(1, Ordering::SeqCst);
    });
    if spawned.is_err() {
        // No thread, no renewal: the next attempt comes at the hedging time, and the deadline stands meanwhile.
        in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits for `name` to be free and takes it, for at most `timeout`.
pub(crate) fn acquire(
    backend: Arc<dyn Backend>,
    cluster: &Cluster,
    name: &str,
    info: &HolderInfo,
    options: &Options,
    timeout: Option<Duration>,
) -> Result<Lease, Error> {
    // A timeout too long to add to the clock is as good as none.
    let give_up = timeout.and_then(|timeout| clock::now().checked_add(timeout));
    let mut last_refusal = match attempt(Arc::clone(&backend), cluster, name, info, options) {
        Ok(lease) => return Ok(lease),
        Err(error @ (Error::Held { .. } | Error::NoQuorum { .. })) => error,
        Err(error) => return Err(error),
    };
    loop {
        let now = clock::now();
        if give_up.is_some_and(|give_up| now >= give_up) {
            return Err(match last_refusal {
                Error::Held { holder } => Error::Timeout { name: name.to_owned(), holder: Some(holder) },
                other => other,
            });
        }
        let poll_every = options.poll_every.max(MIN_PAUSE);
        let pause = give_up.map_or(poll_every, |give_up| poll_every.min(give_up - now));
        std::thread::sleep(pause);
        // Reading is cheaper for etcd than granting a lease only to revoke it: attempt only when the key is gone.
        match cluster::holder(&*backend, cluster, name) {
            Ok(Some(holder)) => last_refusal = Error::Held { holder: Box::new(holder) },
            Ok(None) => match attempt(Arc::clone(&backend), cluster, name, info, options) {
                Ok(lease) => return Ok(lease),
                Err(error @ (Error::Held { .. } | Error::NoQuorum { .. })) => last_refusal = error,
                Err(error) => return Err(error),
            },
            Err(error @ Error::NoQuorum { .. }) => last_refusal = error,
            Err(error) => return Err(error),
        }
    }
}

/// One attempt: grant a lease, create the key bound to it if absent, and start renewing; or revoke the lease and
/// name the holder.
pub(crate) fn attempt(
    backend: Arc<dyn Backend>,
    cluster: &Cluster,
    name: &str,
    info: &HolderInfo,
    options: &Options,
) -> Result<Lease, Error> {
    check_name(name)?;
    let key = cluster.key(name);
    let value = serde_json::to_vec(info).expect("a HolderInfo is always JSON");
    let sent_at = clock::now();
    let (lease_id, ttl) = backend.grant(options.ttl_seconds())?;
    // From here on every way out but success revokes the lease, so that none is left to run out on its own.
    let created = match backend.create_if_absent(&key, &value, lease_id) {
        Ok(created) => created,
        Err(error) => {
            // The transaction may have succeeded unseen; revoking deletes the key then as well.
            let _ = backend.revoke(lease_id);
            return Err(error);
        }
    };
    match created {
        // Ours already: a first try of the transaction that timed out on one member had succeeded.
        Created::Held(key_value) if key_value.lease == lease_id => {
            let deadline = Deadline::granted(sent_at, ttl, options.margin);
            start_or_revoke(backend, key, key_value.create_revision, lease_id, deadline, options.renew_every)
        }
        Created::Won { create_revision } => {
            let deadline = Deadline::granted(sent_at, ttl, options.margin);
            start_or_revoke(backend, key, create_revision, lease_id, deadline, options.renew_every)
        }
        Created::Held(key_value) => {
            let _ = backend.revoke(lease_id);
            let mut holder: Holder = cluster.holder_of(key_value);
            holder.ttl_left = backend.time_to_live(holder.lease).ok().flatten();
            Err(Error::Held { holder: Box::new(holder) })
        }
    }
}

/// Starts renewing a lease just won, or revokes it if that fails.
fn start_or_revoke(
    backend: Arc<dyn Backend>,
    key: String,
    token: u64,
    lease_id: i64,
    deadline: Deadline,
    renew_every: Duration,
) -> Result<Lease, Error> {
    start(Arc::clone(&backend), key, token, lease_id, deadline, renew_every).inspect_err(|_| {
        let _ = backend.revoke(lease_id);
    })
}

/// Starts renewing a lease just won.
fn start(
    backend: Arc<dyn Backend>,
    key: String,
    token: u64,
    lease_id: i64,
    deadline: Deadline,
    renew_every: Duration,
) -> Result<Lease, Error> {
    let lost = Timer::at(if deadline.is_lost(clock::now()) { Duration::ZERO } else { deadline.at() })?;
    let shared =
        Arc::new(Shared { key, token, lease_id, deadline: Mutex::new(deadline), lost, notice: OnceLock::new() });
    let (sender, events) = std::sync::mpsc::channel();
    let renewer = std::thread::Builder::new().name("pidfile-lease".to_owned()).spawn({
        let (shared, backend, sender) = (Arc::clone(&shared), Arc::clone(&backend), sender.clone());
        move || renew(&shared, &backend, renew_every, &events, &sender)
    })?;
    Ok(Lease { shared, backend, renewer: Some(renewer), stop: sender })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use rustix::event::{PollFd, PollFlags, poll};
    use rustix::time::Timespec;

    use super::*;
    use crate::backend::KeyValue;

    const LEASE: i64 = 77;
    const TOKEN: u64 = 5;

    /// etcd as a test wants it to answer.
    #[derive(Default)]
    struct Fake {
        /// What keepalives answer.
        keepalive_ttl: AtomicI64,
        /// How long a keepalive takes.
        keepalive_delay: Duration,
        /// How long a keepalive asking one member takes (one asking all takes `keepalive_delay`).
        alone_delay: Duration,
        /// How long the grant takes (as when the first member tried does not answer).
        grant_delay: Duration,
        /// Whether the transaction finds the key held by someone else.
        held: bool,
        /// Whether the key reads as someone else's.
        key_replaced: bool,
        revoked: Mutex<Vec<i64>>,
    }

    impl Fake {
        fn key_value(&self, key: &str, token: u64, lease: i64) -> KeyValue {
            KeyValue {
                key: key.to_owned(),
                value: br#"{"host":"h","pid":1,"command":"c","started":0}"#.to_vec(),
                create_revision: token,
                lease,
            }
        }
    }

    impl Backend for Fake {
        fn grant(&self, ttl: i64) -> Result<(i64, i64), Error> {
            std::thread::sleep(self.grant_delay);
            Ok((LEASE, ttl))
        }
        fn keepalive(&self, _lease: i64, everywhere: bool) -> Result<i64, Error> {
            std::thread::sleep(if everywhere { self.keepalive_delay } else { self.alone_delay });
            Ok(self.keepalive_ttl.load(Ordering::SeqCst))
        }
        fn create_if_absent(&self, key: &str, _value: &[u8], _lease: i64) -> Result<Created, Error> {
            if self.held {
                Ok(Created::Held(self.key_value(key, 3, 99)))
            } else {
                Ok(Created::Won { create_revision: TOKEN })
            }
        }
        fn range(&self, key: &str, _prefix: bool) -> Result<Vec<KeyValue>, Error> {
            Ok(vec![if self.held {
                self.key_value(key, 3, 99)
            } else if self.key_replaced {
                self.key_value(key, TOKEN + 1, 99)
            } else {
                self.key_value(key, TOKEN, LEASE)
            }])
        }
        fn revoke(&self, lease: i64) -> Result<(), Error> {
            self.revoked.lock().unwrap().push(lease);
            Ok(())
        }
        fn time_to_live(&self, _lease: i64) -> Result<Option<Duration>, Error> {
            Ok(Some(Duration::from_secs(1)))
        }
    }

    fn cluster() -> Cluster {
        Cluster::parse("etcd://127.0.0.1:1").unwrap()
    }

    fn take(fake: &Arc<Fake>, options: &Options) -> Result<Lease, Error> {
        let info = HolderInfo::of_this_process("test");
        attempt(Arc::clone(fake) as Arc<dyn Backend>, &cluster(), "default-test", &info, options)
    }

    /// Whether `fd` becomes readable within `limit`.
    fn readable_within(fd: BorrowedFd<'_>, limit: Duration) -> bool {
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        let limit = Timespec { tv_sec: limit.as_secs() as i64, tv_nsec: limit.subsec_nanos().into() };
        poll(&mut fds, Some(&limit)).unwrap() == 1
    }

    fn often(ttl_seconds: u64) -> Options {
        Options { renew_every: Duration::from_millis(10), ..Options::with_ttl(Duration::from_secs(ttl_seconds)) }
    }

    #[test]
    fn lease_can_be_shared_with_and_moved_to_other_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Lease>();
        shareable::<Cluster>();
        shareable::<Error>();
    }

    #[test]
    fn renewal_answered_with_no_ttl_loses_the_lease_at_once() {
        let fake = Arc::new(Fake { keepalive_ttl: AtomicI64::new(60), ..Fake::default() });
        let lease = take(&fake, &often(60)).unwrap();
        assert!(!readable_within(lease.lost_fd(), Duration::ZERO));
        fake.keepalive_ttl.store(0, Ordering::SeqCst);
        // The deadline is a minute away: only the answer can make the descriptor readable this soon.
        assert!(readable_within(lease.lost_fd(), Duration::from_secs(30)));
        assert!(lease.is_lost());
        assert_eq!(lease.time_left(), Duration::ZERO);
    }

    #[test]
    fn renewal_acknowledged_after_the_deadline_does_not_revive_the_lease() {
        // Deadline 0.1 s after the grant was sent; every renewal takes 0.3 s to be answered.
        let options = Options { margin: Duration::from_millis(1900), ..often(2) };
        let fake = Arc::new(Fake {
            keepalive_ttl: AtomicI64::new(2),
            keepalive_delay: Duration::from_millis(300),
            alone_delay: Duration::from_millis(300),
            ..Fake::default()
        });
        let lease = take(&fake, &options).unwrap();
        let deadline = lease.deadline();
        assert!(readable_within(lease.lost_fd(), Duration::from_secs(30)));
        // Long enough for the slow renewal sent before the deadline to be answered, after it.
        std::thread::sleep(Duration::from_millis(600));
        assert!(lease.is_lost());
        assert_eq!(lease.deadline(), deadline);
        assert!(readable_within(lease.lost_fd(), Duration::ZERO));
    }

    #[test]
    fn renewal_held_by_one_member_does_not_hold_back_the_next() {
        // Deadline 1.6 s after the grant; a renewal sent to the last member that answered hangs for a minute, as
        // on a stopped member, while one sent to every member is answered at once.
        let options = Options { renew_every: Duration::from_millis(200), ..Options::with_ttl(Duration::from_secs(2)) };
        let fake = Arc::new(Fake {
            keepalive_ttl: AtomicI64::new(2),
            alone_delay: Duration::from_secs(60),
            ..Fake::default()
        });
        let lease = take(&fake, &options).unwrap();
        let first_deadline = lease.deadline();
        assert!(!readable_within(lease.lost_fd(), Duration::from_secs(4)));
        assert!(!lease.is_lost());
        assert!(lease.deadline() > first_deadline);
    }

    #[test]
    fn renewal_period_too_long_for_the_clock_is_no_panic() {
        let fake = Arc::new(Fake { keepalive_ttl: AtomicI64::new(60), ..Fake::default() });
        let lease = take(&fake, &often(60)).unwrap();
        let backend = Arc::clone(&fake) as Arc<dyn Backend>;
        let (sender, events) = std::sync::mpsc::channel();
        sender.send(Event::Stop).unwrap();
        // Here, on the test's thread: a panic fails the test instead of ending a renewing thread unseen.
        renew(&lease.shared, &backend, Duration::MAX, &events, &sender);
        assert!(!lease.is_lost());
    }

    #[test]
    fn slow_grant_is_made_up_for_by_a_renewal_at_once() {
        // The grant's send time counts, so a grant answered 2.6 s late (a member that did not answer) leaves 1 s of
        // its 3.6 s; the first renewal, due 3 s on, would come too late without one sent as the lease starts.
        let options = Options {
            renew_every: Duration::from_secs(3),
            margin: Duration::from_millis(400),
            ..Options::with_ttl(Duration::from_secs(4))
        };
        let fake = Arc::new(Fake {
            keepalive_ttl: AtomicI64::new(4),
            grant_delay: Duration::from_millis(2600),
            ..Fake::default()
        });
        let lease = take(&fake, &options).unwrap();
        assert!(!readable_within(lease.lost_fd(), Duration::from_secs(2)), "lost though etcd renews it at once");
    }

    #[test]
    fn notice_fires_before_the_lost_descriptor() {
        let fake = Arc::new(Fake { keepalive_ttl: AtomicI64::new(60), ..Fake::default() });
        let options = Options { renew_every: Duration::from_secs(3600), ..Options::with_ttl(Duration::from_secs(60)) };
        let lease = take(&fake, &options).unwrap();
        // 48 s left of a 60 s lease with a 12 s margin: a notice 50 s ahead is due already, the loss is not.
        let notice = lease.notice_fd(Duration::from_secs(50)).unwrap();
        assert!(readable_within(notice, Duration::from_secs(30)));
        assert!(!readable_within(lease.lost_fd(), Duration::ZERO));
        assert!(lease.notice_fd(Duration::from_secs(1)).is_err());
    }

    #[test]
    fn key_found_someone_elses_loses_the_lease() {
        let fake = Arc::new(Fake { keepalive_ttl: AtomicI64::new(60), key_replaced: true, ..Fake::default() });
        let lease = take(&fake, &often(60)).unwrap();
        assert!(readable_within(lease.lost_fd(), Duration::from_secs(30)));
        assert!(lease.is_lost());
    }

    #[test]
    fn release_revokes_the_lease() {
        let fake = Arc::new(Fake { keepalive_ttl: AtomicI64::new(60), ..Fake::default() });
        let lease = take(&fake, &often(60)).unwrap();
        lease.release().unwrap();
        assert_eq!(*fake.revoked.lock().unwrap(), [LEASE]);
    }

    #[test]
    fn attempt_on_a_held_key_revokes_the_lease_it_was_granted() {
        let fake = Arc::new(Fake { held: true, ..Fake::default() });
        let Err(Error::Held { holder }) = take(&fake, &often(60)) else { panic!("the key should be held") };
        assert_eq!((holder.token, holder.lease, holder.name.as_str()), (3, 99, "default-test"));
        assert_eq!(holder.info.unwrap().host, "h");
        assert_eq!(*fake.revoked.lock().unwrap(), [LEASE]);
    }

    #[test]
    fn blocking_acquire_takes_the_longest_timeout_as_forever() {
        let fake = Arc::new(Fake { keepalive_ttl: AtomicI64::new(60), ..Fake::default() });
        let info = HolderInfo::of_this_process("test");
        let backend = Arc::clone(&fake) as Arc<dyn Backend>;
        let lease = acquire(backend, &cluster(), "default-test", &info, &often(60), Some(Duration::MAX)).unwrap();
        assert_eq!(lease.token(), TOKEN);
    }

    #[test]
    fn blocking_acquire_gives_up_naming_the_holder() {
        let fake = Arc::new(Fake { held: true, ..Fake::default() });
        let options = Options { poll_every: Duration::from_millis(10), ..often(60) };
        let info = HolderInfo::of_this_process("test");
        let backend = Arc::clone(&fake) as Arc<dyn Backend>;
        let result = acquire(backend, &cluster(), "default-test", &info, &options, Some(Duration::from_millis(50)));
        let Err(error @ Error::Timeout { .. }) = result else { panic!("should time out") };
        assert_eq!(error.to_string(), "timed out waiting for default-test: still held by host h pid 1 (token 3)");
    }
}
