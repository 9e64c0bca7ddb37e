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
    /// RFC 3339 in UTC, to the second: `2026-12-07T21:30:00Z`, a time a person can read (and
    /// that sorts as text). [`as_secs`](Self::as_secs) gives the number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0 / 86_400;
        let secs = self.0 % 86_400;
        // Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's civil_from_days,
        // for days ≥ 0: eras of 400 years, each 146,097 days).
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z % 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + u64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            secs / 3_600,
            secs % 3_600 / 60,
            secs % 60
        )
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
    fn times_read_as_rfc_3339_in_utc() {
        for (secs, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (68_586, "1970-01-01T19:03:06Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_796_531_104, "2026-12-06T04:25:04Z"),
            (4_102_444_799, "2099-12-31T23:59:59Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
            (253_402_300_800, "10000-01-01T00:00:00Z"),
        ] {
            assert_eq!(UnixTime::from_secs(secs).to_string(), text);
        }
        // Every day of four centuries (leap days and the century rules), against a calendar
        // that counts days one by one.
        let (mut y, mut m, mut d) = (1970u64, 1u64, 1u64);
        for day in 0..146_097u64 {
            let text = UnixTime::from_secs(day * 86_400 + 86_399).to_string();
            assert_eq!(text, format!("{y:04}-{m:02}-{d:02}T23:59:59Z"));
            let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
            let days_in_month = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > days_in_month {
                (d, m) = (1, m + 1);
            }
            if m > 12 {
                (m, y) = (1, y + 1);
            }
        }
        assert_eq!((y, m, d), (2370, 1, 1));
        let _ = UnixTime::from_secs(u64::MAX).to_string();
    }

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
