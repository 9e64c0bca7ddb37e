//! Throttling: consecutive failures per user and factor, free tries, exponential backoff,
//! lockout, and a long-term failure budget that only time refills.
//!
//! Pure: state and time in, decision out. The service admits an attempt against the counter
//! state it read, evaluates it, and settles it with one atomic store operation against that same
//! state ([`DeviceStore::settle_attempt`](crate::DeviceStore::settle_attempt)): a hit is written
//! only while the counter still holds the admitted state, a miss is charged by compare-and-swap,
//! and a counter that moved sends the attempt back here to be admitted again (or refused).
//!
//! Two limits work side by side:
//!
//! - **Consecutive failures** (NIST SP 800-63B §5.2.2): free tries, then a delay that doubles,
//!   then a lock at [`lockout_after`](ThrottlePolicy::lockout_after). A success clears them, as it
//!   must, or a user could never recover from their own typos.
//! - **The failure budget**, a leaky bucket: each failure pours one unit in, time drains one unit
//!   every [`budget_refill_secs`](ThrottlePolicy::budget_refill_secs), and an attempt that would
//!   overflow [`budget_capacity`](ThrottlePolicy::budget_capacity) waits. A success does **not**
//!   drain it: an attacker who guesses between the user's daily sign-ins gets no fresh tries from
//!   them. The bucket is kept in virtual-time form (GCRA): one timestamp, the moment it would be
//!   empty, so it costs one column and no background job.
//!
//! WebAuthn assertions cannot be guessed: that factor has backoff (to spare the CPU) but neither
//! a lock nor a budget, which would only let anyone with a user name lock the user out.

use crate::clock::UnixTime;
use crate::error::ConfigError;
use crate::kind::Factor;

/// What a store keeps per user and factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThrottleState {
    /// Attempts charged since the last success (consecutive failures).
    pub failures: u32,
    /// When the last attempt was charged.
    pub last_failure_at: Option<UnixTime>,
    /// The failure budget: when its bucket would be empty (`None`: empty). Each charged failure
    /// moves it [`budget_refill_secs`](ThrottlePolicy::budget_refill_secs) later; a success
    /// leaves it where it is.
    pub budget_until: Option<UnixTime>,
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

/// Free tries, backoff, lockout and failure-budget thresholds.
///
/// Defaults: 5 free failures, then 30 s doubling per failure up to 1 hour, a lock after 100
/// consecutive failures (NIST SP 800-63B §5.2.2: no more than 100), and a failure budget of 20
/// that refills one failure every 32 hours (at most 20 + 273.75 failures a year, whatever the
/// user's successes; a user who mistypes 5 times a week never reaches it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    free_failures: u32,
    base_delay_secs: u64,
    max_delay_secs: u64,
    lockout_after: u32,
    budget_capacity: u32,
    budget_refill_secs: u64,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            free_failures: 5,
            base_delay_secs: 30,
            max_delay_secs: 3600,
            lockout_after: 100,
            budget_capacity: Self::DEFAULT_BUDGET_CAPACITY,
            budget_refill_secs: Self::DEFAULT_BUDGET_REFILL_SECS,
        }
    }
}

impl ThrottlePolicy {
    /// Default failure budget: 20 failures.
    pub const DEFAULT_BUDGET_CAPACITY: u32 = 20;
    /// Default refill: one failure every 32 hours (faster than a user who mistypes 5 times a
    /// week fills it: 5 × 32 h = 160 h < 168 h).
    pub const DEFAULT_BUDGET_REFILL_SECS: u64 = 32 * 3600;

    /// A policy: `free_failures` without delay, then `base_delay_secs` doubling per further
    /// failure up to `max_delay_secs`, and a lock after `lockout_after` consecutive failures;
    /// the default failure budget (see [`with_failure_budget`](Self::with_failure_budget)).
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
            ..Self::default()
        })
    }

    /// The same policy with another failure budget: at most `capacity` failures at once, one
    /// more every `refill_secs`. Over a period `T` an attacker gets at most
    /// `capacity + T / refill_secs` evaluated guesses per factor, however often the user signs in.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Throttle`] if `capacity` is 0 or above 1,000, or `refill_secs` is 0 or
    /// above a year.
    pub fn with_failure_budget(mut self, capacity: u32, refill_secs: u64) -> Result<Self, ConfigError> {
        if capacity == 0 || capacity > 1_000 {
            return Err(ConfigError::Throttle("the failure budget must hold 1 to 1000 failures"));
        }
        if refill_secs == 0 || refill_secs > 365 * 86_400 {
            return Err(ConfigError::Throttle(
                "the failure budget must refill one failure every 1 s to 1 year",
            ));
        }
        self.budget_capacity = capacity;
        self.budget_refill_secs = refill_secs;
        Ok(self)
    }

    /// Consecutive failures after which a code factor is locked.
    pub fn lockout_after(&self) -> u32 {
        self.lockout_after
    }

    /// Failures the budget holds at once.
    pub fn budget_capacity(&self) -> u32 {
        self.budget_capacity
    }

    /// Seconds after which the budget takes one more failure.
    pub fn budget_refill_secs(&self) -> u64 {
        self.budget_refill_secs
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

    /// May an attempt on `factor` be evaluated now?
    pub fn decide(&self, factor: Factor, state: &ThrottleState, now: UnixTime) -> ThrottleDecision {
        let guessable = factor != Factor::WebAuthn;
        if guessable && state.failures >= self.lockout_after {
            return ThrottleDecision::Locked;
        }
        let backoff = state
            .last_failure_at
            .map(|last| last.plus_secs(self.delay_after(state.failures)));
        let budget = if guessable { self.budget_retry_at(state) } else { None };
        match backoff.into_iter().chain(budget).filter(|at| now < *at).max() {
            Some(retry_at) => ThrottleDecision::RetryAt(retry_at),
            None => ThrottleDecision::Allowed,
        }
    }

    /// When the budget takes one more failure: its bucket may hold at most `capacity - 1`
    /// before one more is poured in.
    fn budget_retry_at(&self, state: &ThrottleState) -> Option<UnixTime> {
        let until = state.budget_until?;
        let headroom = self
            .budget_refill_secs
            .saturating_mul(u64::from(self.budget_capacity.saturating_sub(1)));
        Some(UnixTime::from_secs(until.as_secs().saturating_sub(headroom)))
    }

    /// The state after one more failure on `factor` is charged at `now`.
    pub fn charged(&self, factor: Factor, state: &ThrottleState, now: UnixTime) -> ThrottleState {
        let budget_until = if factor == Factor::WebAuthn {
            self.budget_now(state, now)
        } else {
            let from = state.budget_until.map_or(now, |until| until.max(now));
            Some(from.plus_secs(self.budget_refill_secs))
        };
        ThrottleState {
            failures: state.failures.saturating_add(1),
            last_failure_at: Some(now),
            budget_until,
        }
    }

    /// The state after a success at `now`: consecutive failures cleared, the budget untouched
    /// (only time drains it).
    pub fn succeeded(&self, state: &ThrottleState, now: UnixTime) -> ThrottleState {
        ThrottleState {
            failures: 0,
            last_failure_at: None,
            budget_until: self.budget_now(state, now),
        }
    }

    /// The budget as it stands at `now` (`None` once drained, so that a drained state is the
    /// default state).
    fn budget_now(&self, state: &ThrottleState, now: UnixTime) -> Option<UnixTime> {
        state.budget_until.filter(|until| *until > now)
    }

    /// How many more failures the budget takes at `now` before attempts wait for it to refill.
    pub fn budget_remaining(&self, state: &ThrottleState, now: UnixTime) -> u32 {
        let Some(until) = self.budget_now(state, now) else {
            return self.budget_capacity;
        };
        let debt = until.as_secs() - now.as_secs();
        let used = debt.div_ceil(self.budget_refill_secs);
        let used = u32::try_from(used).unwrap_or(u32::MAX);
        self.budget_capacity.saturating_sub(used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Factor = Factor::Totp;

    #[test]
    fn free_tries_then_backoff_then_lock() {
        let p = ThrottlePolicy::default().with_failure_budget(1_000, 1).unwrap();
        let mut s = ThrottleState::default();
        let mut now = UnixTime::from_secs(1_000);
        for _ in 0..5 {
            assert_eq!(p.decide(T, &s, now), ThrottleDecision::Allowed);
            s = p.charged(T, &s, now);
        }
        assert_eq!(p.decide(T, &s, now), ThrottleDecision::RetryAt(now.plus_secs(30)));
        now = now.plus_secs(29);
        assert!(matches!(p.decide(T, &s, now), ThrottleDecision::RetryAt(_)));
        now = now.plus_secs(1);
        assert_eq!(p.decide(T, &s, now), ThrottleDecision::Allowed);
        s = p.charged(T, &s, now);
        assert_eq!(p.decide(T, &s, now), ThrottleDecision::RetryAt(now.plus_secs(60)));
        assert_eq!(p.delay_after(20), 3600);
        assert_eq!(p.delay_after(u32::MAX), 3600);
        s.failures = 99;
        assert!(matches!(p.decide(T, &s, now), ThrottleDecision::RetryAt(_)));
        s.failures = 100;
        assert_eq!(p.decide(T, &s, now.plus_secs(1 << 40)), ThrottleDecision::Locked);
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
        let p = ThrottlePolicy::default();
        assert!(p.with_failure_budget(0, 60).is_err());
        assert!(p.with_failure_budget(1_001, 60).is_err());
        assert!(p.with_failure_budget(20, 0).is_err());
        assert!(p.with_failure_budget(20, 365 * 86_400 + 1).is_err());
        assert!(p.with_failure_budget(1, 365 * 86_400).is_ok());
    }

    #[test]
    fn the_budget_fills_with_failures_and_drains_with_time_only() {
        let p = ThrottlePolicy::default().with_failure_budget(3, 100).unwrap();
        let now = UnixTime::from_secs(1_000);
        let mut s = ThrottleState::default();
        assert_eq!(p.budget_remaining(&s, now), 3);
        for left in [2, 1, 0] {
            assert_eq!(p.decide(T, &s, now), ThrottleDecision::Allowed);
            s = p.charged(T, &s, now);
            // A success in between clears the consecutive count but not the budget.
            s = p.succeeded(&s, now);
            assert_eq!(s.failures, 0);
            assert_eq!(p.budget_remaining(&s, now), left);
        }
        // Full: the next attempt waits until one failure has drained.
        assert_eq!(p.decide(T, &s, now), ThrottleDecision::RetryAt(now.plus_secs(100)));
        assert_eq!(
            p.decide(T, &s, now.plus_secs(99)),
            ThrottleDecision::RetryAt(now.plus_secs(100))
        );
        assert_eq!(p.decide(T, &s, now.plus_secs(100)), ThrottleDecision::Allowed);
        assert_eq!(p.budget_remaining(&s, now.plus_secs(100)), 1);
        // Charging at 100 s fills it again: the retry moves a refill later.
        let t = now.plus_secs(100);
        let s2 = p.charged(T, &s, t);
        assert_eq!(p.decide(T, &s2, t), ThrottleDecision::RetryAt(t.plus_secs(100)));
        // Drained completely, the state is the default one again.
        let later = now.plus_secs(10_000);
        assert_eq!(p.succeeded(&s2, later), ThrottleState::default());
        assert_eq!(p.budget_remaining(&s2, later), 3);
    }

    #[test]
    fn webauthn_has_backoff_but_no_lock_and_no_budget() {
        let p = ThrottlePolicy::default().with_failure_budget(1, 86_400).unwrap();
        let now = UnixTime::from_secs(1_000);
        let mut s = ThrottleState::default();
        for _ in 0..200 {
            s = p.charged(Factor::WebAuthn, &s, now);
        }
        assert_eq!(s.budget_until, None);
        assert_eq!(
            p.decide(Factor::WebAuthn, &s, now),
            ThrottleDecision::RetryAt(now.plus_secs(3600))
        );
        assert_eq!(
            p.decide(Factor::WebAuthn, &s, now.plus_secs(3600)),
            ThrottleDecision::Allowed
        );
        // The same counter on a code factor is locked.
        assert_eq!(
            p.decide(Factor::Totp, &s, now.plus_secs(3600)),
            ThrottleDecision::Locked
        );
    }
}
