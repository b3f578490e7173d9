//! How long a lease lives, how often it is renewed, and how much of it is given up for safety.

use std::time::Duration;

/// The timings of a lease and of the requests that keep it. [`Options::with_ttl`] derives sensible ones from the
/// lease's time to live; the fields are public so that any can be changed after.
#[derive(Clone, Debug)]
pub struct Options {
    /// The lease's time to live, as granted by etcd: whole seconds, at least 2 (rounded up to that).
    pub ttl: Duration,
    /// How often the lease is renewed. Often, so that losing one etcd member (and the re-election that follows)
    /// costs a few renewals, never the lease: `ttl / 10` by default.
    pub renew_every: Duration,
    /// What is given up for safety: the lease is taken as lost at the send time of the last acknowledged renewal
    /// plus `ttl` minus `margin`. It must cover the clock rate difference with the etcd leader over one `ttl`
    /// and the time a dying holder needs to stop: `ttl / 5` by default.
    pub margin: Duration,
    /// The longest one request to one etcd member may take before the next member is tried: `ttl / 6` by
    /// default, so that a dead member cannot eat the lease's slack.
    pub request_timeout: Duration,
    /// How often a contender waiting in [`Lease::acquire`](crate::Lease::acquire) looks again: 250 ms by default.
    pub poll_every: Duration,
}

impl Options {
    /// Options for a lease of `ttl` (rounded up to whole seconds, at least 2), the rest derived from it.
    pub fn with_ttl(ttl: Duration) -> Options {
        let ttl = Duration::from_secs(granted_seconds(ttl) as u64);
        Options {
            ttl,
            renew_every: ttl / 10,
            margin: ttl / 5,
            request_timeout: ttl / 6,
            poll_every: Duration::from_millis(250),
        }
    }

    /// The time to live asked of etcd, in its unit: whole seconds, at least 2.
    pub(crate) fn ttl_seconds(&self) -> i64 {
        granted_seconds(self.ttl)
    }
}

impl Default for Options {
    /// A 10 s lease.
    fn default() -> Options {
        Options::with_ttl(Duration::from_secs(10))
    }
}

fn granted_seconds(ttl: Duration) -> i64 {
    let whole = ttl.as_secs().saturating_add(u64::from(ttl.subsec_nanos() > 0));
    i64::try_from(whole).unwrap_or(i64::MAX).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_rounded_up_to_whole_seconds_of_at_least_two() {
        assert_eq!(Options::with_ttl(Duration::from_millis(5200)).ttl, Duration::from_secs(6));
        assert_eq!(Options::with_ttl(Duration::from_secs(1)).ttl, Duration::from_secs(2));
        assert_eq!(Options::with_ttl(Duration::from_secs(5)).ttl_seconds(), 5);
    }

    #[test]
    fn longest_ttl_is_taken_without_overflow() {
        let options = Options::with_ttl(Duration::MAX);
        assert_eq!(options.ttl_seconds(), i64::MAX);
    }

    #[test]
    fn five_second_lease_renews_every_half_second_with_a_one_second_margin() {
        let options = Options::with_ttl(Duration::from_secs(5));
        assert_eq!(options.renew_every, Duration::from_millis(500));
        assert_eq!(options.margin, Duration::from_secs(1));
    }
}
