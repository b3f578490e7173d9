//! The rule that says when a lease must be taken as lost, as pure arithmetic on CLOCK_BOOTTIME readings so that it
//! can be tested with made-up times.
//!
//! etcd counts a lease's time to live from when the leader handles the grant or renewal, which is after the client
//! sent it; so the client's conservative deadline counts from the *send* time of the last acknowledged renewal, minus
//! a margin for the difference in clock rates and for the time a holder needs to stop. Once that deadline has passed
//! the lease stays lost: an acknowledgement arriving late does not bring it back, because whoever watched the deadline
//! may already have acted on it (killed the child), and a contender may already hold the lock.

use std::time::Duration;

/// The deadline of one lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Deadline {
    at: Duration,
    lost: bool,
    margin: Duration,
}

impl Deadline {
    /// The deadline of a lease whose grant was sent at `sent_at` and granted `ttl` seconds.
    pub(crate) fn granted(sent_at: Duration, ttl: i64, margin: Duration) -> Deadline {
        Deadline { at: expiry(sent_at, ttl, margin), lost: ttl <= 0, margin }
    }

    /// The time at which the lease is lost if no renewal is acknowledged before.
    pub(crate) fn at(&self) -> Duration {
        self.at
    }

    /// Whether the lease is lost at `now`: its deadline has come, or a loss was learnt.
    pub(crate) fn is_lost(&self, now: Duration) -> bool {
        self.lost || now >= self.at
    }

    /// Takes in a renewal sent at `sent_at` and answered with `ttl` seconds, received at `now`. Returns whether the
    /// lease is still held. A `ttl` of 0 or less means etcd no longer knows the lease; an answer received once the
    /// deadline has passed counts for nothing.
    pub(crate) fn acknowledged(&mut self, sent_at: Duration, ttl: i64, now: Duration) -> bool {
        if self.is_lost(now) || ttl <= 0 {
            self.lost = true;
            return false;
        }
        self.at = self.at.max(expiry(sent_at, ttl, self.margin));
        true
    }

    /// Records a loss learnt otherwise (the key is gone or not ours, the lease was released).
    pub(crate) fn lose(&mut self) {
        self.lost = true;
    }
}

fn expiry(sent_at: Duration, ttl: i64, margin: Duration) -> Duration {
    let ttl = Duration::from_secs(u64::try_from(ttl).unwrap_or(0));
    (sent_at + ttl).saturating_sub(margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARGIN: Duration = Duration::from_secs(1);

    fn secs(seconds: f64) -> Duration {
        Duration::from_secs_f64(seconds)
    }

    #[test]
    fn deadline_counts_from_the_send_time_not_the_answer() {
        let mut deadline = Deadline::granted(secs(100.0), 5, MARGIN);
        assert_eq!(deadline.at(), secs(104.0));
        // Sent at 101, answered 0.7 s later: the lease is good until 101 + 5 - 1, not 101.7 + 5 - 1.
        assert!(deadline.acknowledged(secs(101.0), 5, secs(101.7)));
        assert_eq!(deadline.at(), secs(105.0));
    }

    #[test]
    fn deadline_is_not_moved_back_by_a_slow_answer_to_an_older_renewal() {
        let mut deadline = Deadline::granted(secs(100.0), 5, MARGIN);
        assert!(deadline.acknowledged(secs(102.0), 5, secs(102.1)));
        assert!(deadline.acknowledged(secs(101.0), 5, secs(102.2)));
        assert_eq!(deadline.at(), secs(106.0));
    }

    #[test]
    fn answer_of_zero_ttl_means_lost_at_once() {
        let mut deadline = Deadline::granted(secs(100.0), 5, MARGIN);
        assert!(!deadline.acknowledged(secs(101.0), 0, secs(101.1)));
        assert!(deadline.is_lost(secs(101.1)));
        let mut deadline = Deadline::granted(secs(100.0), 5, MARGIN);
        assert!(!deadline.acknowledged(secs(101.0), -1, secs(101.1)));
        assert!(deadline.is_lost(secs(101.1)));
    }

    #[test]
    fn grant_of_zero_ttl_is_lost_from_the_start() {
        assert!(Deadline::granted(secs(100.0), 0, MARGIN).is_lost(secs(100.0)));
    }

    #[test]
    fn lease_is_lost_when_the_deadline_comes() {
        let deadline = Deadline::granted(secs(100.0), 5, MARGIN);
        assert!(!deadline.is_lost(secs(103.999)));
        assert!(deadline.is_lost(secs(104.0)));
    }

    #[test]
    fn successful_renewal_after_the_deadline_does_not_revive_the_lease() {
        let mut deadline = Deadline::granted(secs(100.0), 5, MARGIN);
        // Sent before the deadline, answered after it (the process was stopped, or the answer was slow).
        assert!(!deadline.acknowledged(secs(103.5), 5, secs(104.5)));
        assert!(deadline.is_lost(secs(104.5)));
        // And nothing after revives it either.
        assert!(!deadline.acknowledged(secs(104.6), 5, secs(104.7)));
        assert_eq!(deadline.at(), secs(104.0));
    }

    #[test]
    fn learnt_loss_stays_lost() {
        let mut deadline = Deadline::granted(secs(100.0), 5, MARGIN);
        deadline.lose();
        assert!(deadline.is_lost(secs(100.0)));
        assert!(!deadline.acknowledged(secs(100.1), 5, secs(100.2)));
    }

    #[test]
    fn margin_larger_than_the_ttl_gives_a_deadline_at_the_send_time() {
        let deadline = Deadline::granted(secs(100.0), 2, secs(3.0));
        assert_eq!(deadline.at(), secs(99.0));
        assert!(deadline.is_lost(secs(100.0)));
    }
}
