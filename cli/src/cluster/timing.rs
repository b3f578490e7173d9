//! The timings of `run --cluster`: the lease's TTL and the grace COMMAND gets between SIGTERM and SIGKILL,
//! checked against each other before anything is claimed.

use std::time::Duration;

use pidfiles_cluster::Options;

/// The lease's TTL when `--ttl` is not given.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);

/// The lease's options and the kill grace, consistent with each other.
#[derive(Clone, Debug)]
pub struct Timing {
    pub options: Options,
    /// How long before the lease's deadline COMMAND gets SIGTERM, when renewals fail.
    pub kill_grace: Duration,
}

impl Timing {
    /// The timings from `--ttl` and `--kill-grace`: the TTL whole seconds of at least 2 s (etcd grants no less), and
    /// the grace short enough that a lease renewed as usual never gets near it. Errors are one line naming the value.
    pub fn new(ttl: Option<Duration>, kill_grace: Option<Duration>) -> Result<Timing, String> {
        let ttl = ttl.unwrap_or(DEFAULT_TTL);
        if ttl < Duration::from_secs(2) || ttl.subsec_nanos() != 0 {
            return Err(format!("invalid --ttl {ttl:?}: a lease lives whole seconds, at least 2s"));
        }
        let options = Options::with_ttl(ttl);
        let kill_grace = kill_grace.unwrap_or(ttl / 5);
        // The SIGTERM comes at (send time of the last acknowledged renewal) + ttl - margin - grace: two renewal
        // periods must fit before it, or a healthy lease would have its command stopped between two renewals.
        let longest = ttl.saturating_sub(options.margin).saturating_sub(options.renew_every * 2);
        if kill_grace > longest {
            return Err(format!(
                "invalid --kill-grace {kill_grace:?}: with --ttl {ttl:?} it must be at most {longest:?} (the TTL less its \
                 {:?} safety margin and two renewals), or a healthy lease would get its command stopped",
                options.margin
            ));
        }
        Ok(Timing { options, kill_grace })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(seconds: f64) -> Option<Duration> {
        Some(Duration::from_secs_f64(seconds))
    }

    #[test]
    fn defaults_are_a_ten_second_lease_and_a_two_second_grace() {
        let timing = Timing::new(None, None).unwrap();
        assert_eq!(timing.options.ttl, Duration::from_secs(10));
        assert_eq!(timing.kill_grace, Duration::from_secs(2));
    }

    #[test]
    fn grace_defaults_to_a_fifth_of_the_ttl() {
        assert_eq!(Timing::new(secs(5.0), None).unwrap().kill_grace, Duration::from_secs(1));
        assert_eq!(Timing::new(secs(2.0), None).unwrap().kill_grace, Duration::from_millis(400));
    }

    #[test]
    fn ttl_is_whole_seconds_of_at_least_two() {
        for bad in [0.0, 1.0, 1.999, 2.5] {
            let error = Timing::new(secs(bad), None).unwrap_err();
            assert!(error.starts_with("invalid --ttl ") && error.contains("whole seconds"), "{error}");
        }
        assert!(Timing::new(secs(2.0), None).is_ok());
        assert!(Timing::new(secs(3600.0), None).is_ok());
    }

    #[test]
    fn grace_leaves_room_for_the_margin_and_two_renewals() {
        // TTL 10 s: margin 2 s, renewals every 1 s, so at most 6 s.
        assert_eq!(Timing::new(secs(10.0), secs(6.0)).unwrap().kill_grace, Duration::from_secs(6));
        let error = Timing::new(secs(10.0), secs(6.5)).unwrap_err();
        assert!(error.contains("--kill-grace 6.5s") && error.contains("at most 6s"), "{error}");
        // TTL 5 s: margin 1 s, renewals every 0.5 s, so at most 3 s.
        assert!(Timing::new(secs(5.0), secs(3.0)).is_ok());
        assert!(Timing::new(secs(5.0), secs(3.001)).is_err());
    }

    #[test]
    fn no_grace_means_sigkill_at_the_deadline() {
        assert_eq!(Timing::new(None, Some(Duration::ZERO)).unwrap().kill_grace, Duration::ZERO);
    }
}
