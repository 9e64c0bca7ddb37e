//! Time enters the crate only through [`Clock`].

use std::fmt;
use std::sync::Arc;
#[cfg(any(test, feature = "test-util"))]
use std::sync::atomic::{AtomicU64, Ordering};

/// Seconds since the Unix epoch (1970-01-01T00:00:00Z), UTC, ignoring leap seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(transparent))]
pub struct UnixTime(u64);

impl UnixTime {
    /// The epoch itself.
    pub const EPOCH: Self = Self(0);

    /// A time from seconds since the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs)
    }

    /// Seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// This time plus `secs` seconds, saturating at the far future.
    #[must_use]
    pub const fn plus_secs(self, secs: u64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// Seconds from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn secs_since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

/// A source of the current time.
///
/// Every decision that depends on time (TOTP steps, backoff, timestamps) reads it from here, so a
/// test can pin it with `ManualClock` (feature `test-util`).
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> UnixTime;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> UnixTime {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> UnixTime {
        (**self).now()
    }
}

/// The operating system's wall clock.
///
/// A clock set before 1970 reads as the epoch (it cannot go negative).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        UnixTime(secs)
    }
}

#[cfg(any(test, feature = "test-util"))]
/// A clock that only moves when told to; clones share the same time. For tests and simulations.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

#[cfg(any(test, feature = "test-util"))]
impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: UnixTime) -> Self {
        Self(Arc::new(AtomicU64::new(start.0)))
    }

    /// The time it stands at (the same as [`Clock::now`], without importing the trait).
    pub fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
    }

    /// Moves the clock to `time` (backwards too).
    pub fn set(&self, time: UnixTime) {
        self.0.store(time.0, Ordering::SeqCst);
    }

    /// Moves the clock forward by `secs` seconds.
    pub fn advance(&self, secs: u64) {
        // fetch_update with a closure that always returns Some cannot fail.
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| Some(t.saturating_add(secs)));
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        ManualClock::now(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(UnixTime::from_secs(100));
        let other = clock.clone();
        assert_eq!(clock.now().as_secs(), 100);
        other.advance(30);
        assert_eq!(clock.now().as_secs(), 130);
        clock.set(UnixTime::from_secs(5));
        assert_eq!(other.now().as_secs(), 5);
        clock.advance(u64::MAX);
        assert_eq!(clock.now().as_secs(), u64::MAX);
    }

    #[test]
    fn system_clock_is_after_2024() {
        assert!(SystemClock.now().as_secs() > 1_700_000_000);
    }
}
