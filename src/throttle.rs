//! Throttling: consecutive failures per user and factor, free tries, exponential backoff, lockout.
//!
//! Pure: state and time in, decision out. The service admits an attempt against the counter
//! state it read, and settles it with one conditional write against that same state: a failure
//! by compare-and-swap, a success only if the counter has not moved (clearing it in the same
//! step). Concurrent guesses therefore cannot slip through while the counter still reads low; a
//! correct code clears the counter of its own factor only.

use crate::clock::UnixTime;
use crate::error::ConfigError;

/// What a store keeps per user and factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThrottleState {
    /// Attempts charged since the last success (consecutive failures).
    pub failures: u32,
    /// When the last attempt was charged.
    pub last_failure_at: Option<UnixTime>,
}

/// Whether an attempt may be evaluated now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThrottleDecision {
    /// Go ahead.
    Allowed,
    /// Too many recent failures: not before this time.
    RetryAt(UnixTime),
    /// Too many consecutive failures: locked until the host unlocks it.
    Locked,
}

/// Free tries, backoff and lockout thresholds.
///
/// Defaults: 5 free failures, then 30 s doubling per failure up to 1 hour, and a lock after
/// 100 consecutive failures (NIST SP 800-63B §5.2.2: no more than 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    free_failures: u32,
    base_delay_secs: u64,
    max_delay_secs: u64,
    lockout_after: u32,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            free_failures: 5,
            base_delay_secs: 30,
            max_delay_secs: 3600,
            lockout_after: 100,
        }
    }
}

impl ThrottlePolicy {
    /// A policy: `free_failures` without delay, then `base_delay_secs` doubling per further
    /// failure up to `max_delay_secs`, and a lock after `lockout_after` consecutive failures.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Throttle`] if `lockout_after` is 0 or above 100, `free_failures` is not
    /// below it, or the delays are zero or out of order.
    pub fn new(
        free_failures: u32,
        base_delay_secs: u64,
        max_delay_secs: u64,
        lockout_after: u32,
    ) -> Result<Self, ConfigError> {
        if lockout_after == 0 || lockout_after > 100 {
            return Err(ConfigError::Throttle("lockout must come after 1 to 100 failures"));
        }
        if free_failures >= lockout_after {
            return Err(ConfigError::Throttle(
                "free failures must be fewer than the lockout threshold",
            ));
        }
        if base_delay_secs == 0 || max_delay_secs < base_delay_secs {
            return Err(ConfigError::Throttle("delays must be positive and base <= max"));
        }
        Ok(Self {
            free_failures,
            base_delay_secs,
            max_delay_secs,
            lockout_after,
        })
    }

    /// Consecutive failures after which the factor is locked.
    pub fn lockout_after(&self) -> u32 {
        self.lockout_after
    }

    /// The delay that follows `failures` consecutive failures.
    pub fn delay_after(&self, failures: u32) -> u64 {
        if failures < self.free_failures {
            return 0;
        }
        let doublings = failures - self.free_failures;
        let factor = 1u64.checked_shl(doublings).unwrap_or(u64::MAX);
        self.base_delay_secs.saturating_mul(factor).min(self.max_delay_secs)
    }

    /// May an attempt be evaluated now?
    pub fn decide(&self, state: &ThrottleState, now: UnixTime) -> ThrottleDecision {
        if state.failures >= self.lockout_after {
            return ThrottleDecision::Locked;
        }
        let Some(last) = state.last_failure_at else {
            return ThrottleDecision::Allowed;
        };
        let retry_at = last.plus_secs(self.delay_after(state.failures));
        if now < retry_at {
            ThrottleDecision::RetryAt(retry_at)
        } else {
            ThrottleDecision::Allowed
        }
    }

    /// The state after one more attempt is charged at `now`.
    pub fn charged(&self, state: &ThrottleState, now: UnixTime) -> ThrottleState {
        ThrottleState {
            failures: state.failures.saturating_add(1),
            last_failure_at: Some(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_tries_then_backoff_then_lock() {
        let p = ThrottlePolicy::default();
        let mut s = ThrottleState::default();
        let mut now = UnixTime::from_secs(1_000);
        for _ in 0..5 {
            assert_eq!(p.decide(&s, now), ThrottleDecision::Allowed);
            s = p.charged(&s, now);
        }
        assert_eq!(p.decide(&s, now), ThrottleDecision::RetryAt(now.plus_secs(30)));
        now = now.plus_secs(29);
        assert!(matches!(p.decide(&s, now), ThrottleDecision::RetryAt(_)));
        now = now.plus_secs(1);
        assert_eq!(p.decide(&s, now), ThrottleDecision::Allowed);
        s = p.charged(&s, now);
        assert_eq!(p.decide(&s, now), ThrottleDecision::RetryAt(now.plus_secs(60)));
        assert_eq!(p.delay_after(20), 3600);
        assert_eq!(p.delay_after(u32::MAX), 3600);
        s.failures = 99;
        assert!(matches!(p.decide(&s, now), ThrottleDecision::RetryAt(_)));
        s.failures = 100;
        assert_eq!(p.decide(&s, now.plus_secs(1 << 40)), ThrottleDecision::Locked);
    }

    #[test]
    fn policy_bounds() {
        assert!(ThrottlePolicy::new(5, 30, 3600, 101).is_err());
        assert!(ThrottlePolicy::new(5, 30, 3600, 0).is_err());
        assert!(ThrottlePolicy::new(10, 30, 3600, 10).is_err());
        assert!(ThrottlePolicy::new(1, 0, 3600, 10).is_err());
        assert!(ThrottlePolicy::new(1, 60, 30, 10).is_err());
        assert_eq!(
            ThrottlePolicy::new(5, 30, 3600, 100).unwrap(),
            ThrottlePolicy::default()
        );
    }
}
