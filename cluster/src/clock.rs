//! CLOCK_BOOTTIME: readings and absolute one-shot timers on it. BOOTTIME keeps counting through a suspend, where
//! CLOCK_MONOTONIC (and so `std::time::Instant`) stops: a laptop or VM resumed after longer than its lease must see
//! the lease as old, not young.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::time::{
    ClockId, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, clock_gettime, timerfd_create,
    timerfd_gettime, timerfd_settime,
};

/// The time on CLOCK_BOOTTIME: since boot, suspend included. The clock of [`Lease::deadline`](crate::Lease::deadline).
pub fn now() -> Duration {
    timespec_to_duration(clock_gettime(ClockId::Boottime))
}

/// A one-shot timerfd on CLOCK_BOOTTIME, set to absolute times: readable once that time has come, whatever the
/// process was doing meanwhile (stopped, busy, suspended with the machine), because the kernel keeps it.
#[derive(Debug)]
pub(crate) struct Timer {
    fd: OwnedFd,
}

impl Timer {
    /// A timer readable at `at`.
    pub(crate) fn at(at: Duration) -> io::Result<Timer> {
        let fd = timerfd_create(TimerfdClockId::Boottime, TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK)?;
        let timer = Timer { fd };
        timer.set(at)?;
        Ok(timer)
    }

    /// Moves the time at which it becomes readable to `at` (a time already past: at once). Setting a timer also
    /// makes it unreadable until then, so a caller must never move a timer that has fired (see
    /// [`Timer::has_fired`]).
    pub(crate) fn set(&self, at: Duration) -> io::Result<()> {
        // An all-zero time disarms the timer instead of firing it; the first nanosecond after boot is past as well.
        let at = at.max(Duration::from_nanos(1));
        let value = Itimerspec { it_interval: Timespec { tv_sec: 0, tv_nsec: 0 }, it_value: duration_to_timespec(at) };
        timerfd_settime(&self.fd, TimerfdTimerFlags::ABSTIME, &value)?;
        Ok(())
    }

    /// Makes it readable at once.
    pub(crate) fn fire(&self) -> io::Result<()> {
        self.set(Duration::ZERO)
    }

    /// Whether its time has come: a one-shot timer that has expired is disarmed, which the kernel reports as an
    /// all-zero remaining time.
    pub(crate) fn has_fired(&self) -> io::Result<bool> {
        let left = timerfd_gettime(&self.fd)?.it_value;
        Ok(left.tv_sec == 0 && left.tv_nsec == 0)
    }
}

impl AsFd for Timer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn timespec_to_duration(time: Timespec) -> Duration {
    Duration::new(u64::try_from(time.tv_sec).unwrap_or(0), u32::try_from(time.tv_nsec).unwrap_or(0))
}

fn duration_to_timespec(time: Duration) -> Timespec {
    Timespec { tv_sec: i64::try_from(time.as_secs()).unwrap_or(i64::MAX), tv_nsec: time.subsec_nanos().into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_set_in_the_past_has_fired() {
        let timer = Timer::at(now() + Duration::from_secs(60)).unwrap();
        assert!(!timer.has_fired().unwrap());
        timer.fire().unwrap();
        assert!(timer.has_fired().unwrap());
    }

    #[test]
    fn boottime_moves_forward() {
        let first = now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(now() > first);
    }
}
