//! Throttling: failures per user and factor, counted where a guess can win and nowhere else.
//!
//! Pure: state and time in, decision out. The service admits an attempt against the counter
//! state it read, evaluates it, and settles it with one atomic store operation against that same
//! state ([`DeviceStore::settle_attempt`](crate::DeviceStore::settle_attempt)): a hit is written
//! only while the counter still holds the admitted state, a miss is charged by compare-and-swap,
//! and a counter that moved sends the attempt back here to be admitted again (or refused).
//!
//! # What a guess can win decides the gate
//!
//! - **Guessable** ([`Gate::Guessable`]): TOTP codes (about 20 bits a guess window) and backup
//!   codes a host configured below 64 bits. Two limits work side by side:
//!   - *consecutive failures* (NIST SP 800-63B §5.2.2): free tries, then a delay that doubles,
//!     then a lock at [`lockout_after`](ThrottlePolicy::lockout_after). A success clears them.
//!   - *the failure budget*, a leaky bucket: each failure pours one unit in, time drains one unit
//!     every [`budget_refill_secs`](ThrottlePolicy::budget_refill_secs), and an attempt that would
//!     overflow [`budget_capacity`](ThrottlePolicy::budget_capacity) waits. A success does
//!     **not** drain it. The bucket is kept in virtual-time form (GCRA): one timestamp.
//! - **Unguessable** ([`Gate::Unguessable`]): backup codes of 64 bits or more and WebAuthn
//!   signatures. A right answer is never held back: every attempt is evaluated (one keyed hash,
//!   or one signature check), and failures are still counted, so the host hears that someone
//!   is guessing. Shedding load is request rate limiting, in the host, never a lock on the owner.
//!
//! # Known browsers
//!
//! Each code factor has two kinds of counter ([`Counter`]): the user's counter for attempts
//! from unknown browsers, and one per known browser (a browser that completed a full sign-in
//! and holds its token). A known browser's counter ([`KnownBrowserPolicy`]) holds nothing back
//! until its token has failed [`failures`](KnownBrowserPolicy::failures) times; then the
//! browser counts as unknown. Successes do not clear it: the token is replaced at every full
//! sign-in instead, so a stolen token is worth at most that many guesses however often the
//! owner signs in, and an attacker without a token can never slow the owner's own browser.
//!
//! # The same wrong code twice
//!
//! A counter remembers a keyed fingerprint of its last charged wrong code
//! ([`ThrottleState::last_miss`]); the same wrong code again (Enter pressed twice, a retry after
//! a timeout) within the same time step and against the same devices tells nobody anything new
//! and is not charged again.

use crate::clock::UnixTime;
use crate::error::ConfigError;
use crate::id::{RememberedBrowserId, UserId};
use crate::kind::Factor;

/// Which failure counter an attempt is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Counter {
    /// The factor.
    pub factor: Factor,
    /// The known browser whose own counter this is (`None`: the user's counter for unknown browsers).
    pub browser: Option<RememberedBrowserId>,
}

impl Counter {
    /// The user's counter of `factor` for attempts from unknown browsers.
    pub const fn unknown(factor: Factor) -> Self {
        Self { factor, browser: None }
    }

    /// A known browser's own counter of `factor`.
    pub const fn known(factor: Factor, browser: RememberedBrowserId) -> Self {
        Self {
            factor,
            browser: Some(browser),
        }
    }

    /// A stable name, for storage: the factor's name (`"totp"`), or for a known browser the
    /// factor's name, `@` and the browser id in hex (`"totp@00ff…"`). Borrowed for the counter
    /// of unknown browsers, which every verification without a token names.
    pub fn key(&self) -> std::borrow::Cow<'static, str> {
        match self.browser {
            None => std::borrow::Cow::Borrowed(self.factor.as_str()),
            Some(id) => std::borrow::Cow::Owned(format!("{}@{id}", self.factor.as_str())),
        }
    }
}

impl From<Factor> for Counter {
    fn from(factor: Factor) -> Self {
        Self::unknown(factor)
    }
}

/// Whether a counter may hold attempts back: what a right guess can win decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Gate {
    /// A guess can win (TOTP; backup codes under 64 bits): backoff, the failure budget and the lock apply.
    Guessable,
    /// A guess cannot win in practice (backup codes of 64 bits or more; WebAuthn signatures):
    /// failures are counted but never hold an attempt back.
    Unguessable,
}

impl Gate {
    /// Bits of a secret from which guessing it online is bounded by its entropy alone
    /// (NIST SP 800-63B §5.1.2.2 asks for rate limiting of look-up secrets only below 64 bits).
    pub const UNGUESSABLE_BITS: u32 = 64;

    /// The gate of a code factor whose secrets carry `bits` bits each.
    pub const fn for_bits(bits: u32) -> Self {
        if bits >= Self::UNGUESSABLE_BITS {
            Self::Unguessable
        } else {
            Self::Guessable
        }
    }
}

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
    /// A keyed fingerprint (64 bits of an HMAC under a keyring key) of the last charged wrong
    /// code, bound to the user, the factor, the time step and the devices it was evaluated
    /// against: the same wrong code again is not charged twice. Never the code itself.
    pub last_miss: Option<u64>,
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

impl std::fmt::Display for ThrottleDecision {
    /// `allowed`, `not before 2026-12-07T21:30:00Z`, `locked`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Allowed => f.write_str("allowed"),
            Self::RetryAt(at) => write!(f, "not before {at}"),
            Self::Locked => f.write_str("locked"),
        }
    }
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

    /// May an attempt behind `gate` be evaluated now? An [`Gate::Unguessable`] attempt always may.
    pub fn decide(&self, gate: Gate, state: &ThrottleState, now: UnixTime) -> ThrottleDecision {
        if gate == Gate::Unguessable {
            return ThrottleDecision::Allowed;
        }
        if state.failures >= self.lockout_after {
            return ThrottleDecision::Locked;
        }
        let backoff = state
            .last_failure_at
            .map(|last| last.plus_secs(self.delay_after(state.failures)));
        let budget = self.budget_retry_at(state);
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

    /// The state after one more failure on `factor` is charged at `now` (WebAuthn failures are
    /// counted but pour nothing into the budget).
    pub fn charged(&self, factor: Factor, state: &ThrottleState, now: UnixTime) -> ThrottleState {
        self.charged_by(factor, state, now, 1)
    }

    /// The state after a failure worth `weight` failures is charged at `now`: a code checked
    /// against `weight` TOTP devices had `weight` times the chance of one, so it counts as
    /// many guesses, for the consecutive count and the budget both.
    pub fn charged_by(&self, factor: Factor, state: &ThrottleState, now: UnixTime, weight: u32) -> ThrottleState {
        let weight = weight.max(1);
        let budget_until = if factor == Factor::WebAuthn {
            self.budget_now(state, now)
        } else {
            let from = state.budget_until.map_or(now, |until| until.max(now));
            Some(from.plus_secs(self.budget_refill_secs.saturating_mul(u64::from(weight))))
        };
        ThrottleState {
            failures: state.failures.saturating_add(weight),
            last_failure_at: Some(now),
            budget_until,
            last_miss: None,
        }
    }

    /// The state after a success at `now`: consecutive failures cleared, the budget untouched
    /// (only time drains it).
    pub fn succeeded(&self, state: &ThrottleState, now: UnixTime) -> ThrottleState {
        ThrottleState {
            failures: 0,
            last_failure_at: None,
            budget_until: self.budget_now(state, now),
            last_miss: None,
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

/// The keyed fingerprint of a wrong code for [`ThrottleState::last_miss`]: 64 bits of
/// `HMAC-SHA256(key, "multifactor/v1/miss" ‖ len(user) ‖ user ‖ counter ‖ 0 ‖ context… ‖ code)`,
/// where `context` names what the code was evaluated against (the devices' digest and, for
/// TOTP, each device's time step): the same code against the same candidates gives the same
/// fingerprint.
pub(crate) fn miss_fingerprint(
    key: &[u8; 32],
    user: &UserId,
    counter: &Counter,
    context: &[&[u8]],
    code: &[u8],
) -> u64 {
    use hmac::{Hmac, KeyInit, Mac};
    let Ok(mut mac) = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key) else {
        return 0;
    };
    mac.update(b"multifactor/v1/miss");
    let user = user.as_str().as_bytes();
    mac.update(&[u8::try_from(user.len()).unwrap_or(u8::MAX)]);
    mac.update(user);
    mac.update(counter.key().as_bytes());
    mac.update(&[0]);
    for part in context {
        mac.update(part);
    }
    mac.update(code);
    let digest: [u8; 32] = mac.finalize().into_bytes().into();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The own counter of a known browser: how many failures its token may take before the
/// browser counts as unknown again.
///
/// The default, 10, is five times what a typo-prone owner makes between two full sign-ins
/// (one or two), and with the token replaced at every full sign-in a stolen token is worth at
/// most 10 evaluated guesses in all. Past it nothing is refused: the browser's attempts go to
/// the user's counter for unknown browsers, with its free tries and backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownBrowserPolicy {
    failures: u32,
}

impl Default for KnownBrowserPolicy {
    fn default() -> Self {
        Self {
            failures: Self::DEFAULT_FAILURES,
        }
    }
}

impl KnownBrowserPolicy {
    /// Default failures a known browser's token takes: 10.
    pub const DEFAULT_FAILURES: u32 = 10;

    /// A policy: a known browser's token counts as known until it has failed `failures` times.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Throttle`] if `failures` is 0 or above 100 (each one is an evaluated guess
    /// that a stolen token is worth).
    pub fn new(failures: u32) -> Result<Self, ConfigError> {
        if failures == 0 || failures > 100 {
            return Err(ConfigError::Throttle("a known browser must take 1 to 100 failures"));
        }
        Ok(Self { failures })
    }

    /// Failures a known browser's token takes before the browser counts as unknown.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether a browser whose own counter is `state` still counts as known.
    pub fn is_known(&self, state: &ThrottleState) -> bool {
        state.failures < self.failures
    }

    /// The browser's counter after one more failure at `now`.
    pub fn charged(&self, state: &ThrottleState, now: UnixTime) -> ThrottleState {
        self.charged_by(state, now, 1)
    }

    /// The browser's counter after a failure worth `weight` failures (see
    /// [`ThrottlePolicy::charged_by`]).
    pub fn charged_by(&self, state: &ThrottleState, now: UnixTime, weight: u32) -> ThrottleState {
        ThrottleState {
            failures: state.failures.saturating_add(weight.max(1)),
            last_failure_at: Some(now),
            budget_until: None,
            last_miss: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_reads_as_words_and_a_readable_time() {
        assert_eq!(ThrottleDecision::Allowed.to_string(), "allowed");
        assert_eq!(
            ThrottleDecision::RetryAt(UnixTime::from_secs(1_796_531_104)).to_string(),
            "not before 2026-12-06T04:25:04Z"
        );
        assert_eq!(ThrottleDecision::Locked.to_string(), "locked");
    }

    const T: Factor = Factor::Totp;
    const G: Gate = Gate::Guessable;

    #[test]
    fn free_tries_then_backoff_then_lock() {
        let p = ThrottlePolicy::default().with_failure_budget(1_000, 1).unwrap();
        let mut s = ThrottleState::default();
        let mut now = UnixTime::from_secs(1_000);
        for _ in 0..5 {
            assert_eq!(p.decide(G, &s, now), ThrottleDecision::Allowed);
            s = p.charged(T, &s, now);
        }
        assert_eq!(p.decide(G, &s, now), ThrottleDecision::RetryAt(now.plus_secs(30)));
        now = now.plus_secs(29);
        assert!(matches!(p.decide(G, &s, now), ThrottleDecision::RetryAt(_)));
        now = now.plus_secs(1);
        assert_eq!(p.decide(G, &s, now), ThrottleDecision::Allowed);
        s = p.charged(T, &s, now);
        assert_eq!(p.decide(G, &s, now), ThrottleDecision::RetryAt(now.plus_secs(60)));
        assert_eq!(p.delay_after(20), 3600);
        assert_eq!(p.delay_after(u32::MAX), 3600);
        s.failures = 99;
        assert!(matches!(p.decide(G, &s, now), ThrottleDecision::RetryAt(_)));
        s.failures = 100;
        assert_eq!(p.decide(G, &s, now.plus_secs(1 << 40)), ThrottleDecision::Locked);
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
            assert_eq!(p.decide(G, &s, now), ThrottleDecision::Allowed);
            s = p.charged(T, &s, now);
            // A success in between clears the consecutive count but not the budget.
            s = p.succeeded(&s, now);
            assert_eq!(s.failures, 0);
            assert_eq!(p.budget_remaining(&s, now), left);
        }
        // Full: the next attempt waits until one failure has drained.
        assert_eq!(p.decide(G, &s, now), ThrottleDecision::RetryAt(now.plus_secs(100)));
        assert_eq!(
            p.decide(G, &s, now.plus_secs(99)),
            ThrottleDecision::RetryAt(now.plus_secs(100))
        );
        assert_eq!(p.decide(G, &s, now.plus_secs(100)), ThrottleDecision::Allowed);
        assert_eq!(p.budget_remaining(&s, now.plus_secs(100)), 1);
        // Charging at 100 s fills it again: the retry moves a refill later.
        let t = now.plus_secs(100);
        let s2 = p.charged(T, &s, t);
        assert_eq!(p.decide(G, &s2, t), ThrottleDecision::RetryAt(t.plus_secs(100)));
        // Drained completely, the state is the default one again.
        let later = now.plus_secs(10_000);
        assert_eq!(p.succeeded(&s2, later), ThrottleState::default());
        assert_eq!(p.budget_remaining(&s2, later), 3);
    }

    #[test]
    fn unguessable_counters_count_but_never_hold_back() {
        let p = ThrottlePolicy::default().with_failure_budget(1, 86_400).unwrap();
        let now = UnixTime::from_secs(1_000);
        let mut webauthn = ThrottleState::default();
        let mut codes = ThrottleState::default();
        for _ in 0..200 {
            webauthn = p.charged(Factor::WebAuthn, &webauthn, now);
            codes = p.charged(Factor::BackupCodes, &codes, now);
        }
        assert_eq!(webauthn.failures, 200);
        assert_eq!(webauthn.budget_until, None, "signatures pour nothing into the budget");
        assert_eq!(p.budget_remaining(&codes, now), 0, "codes are still counted against it");
        for s in [webauthn, codes] {
            assert_eq!(p.decide(Gate::Unguessable, &s, now), ThrottleDecision::Allowed);
            // The same counter behind the guessable gate is locked.
            assert_eq!(p.decide(G, &s, now), ThrottleDecision::Locked);
        }
    }

    #[test]
    fn a_guess_against_several_devices_is_charged_for_each() {
        let p = ThrottlePolicy::default();
        let now = UnixTime::from_secs(1_000);
        let s = ThrottleState::default();
        let three = p.charged_by(T, &s, now, 3);
        let mut one_by_one = s;
        for _ in 0..3 {
            one_by_one = p.charged(T, &one_by_one, now);
        }
        assert_eq!(three, one_by_one);
        assert_eq!(p.budget_remaining(&three, now), p.budget_capacity() - 3);
        assert_eq!(
            p.charged_by(T, &s, now, 0),
            p.charged(T, &s, now),
            "a weight is at least 1"
        );
        let k = KnownBrowserPolicy::default();
        assert_eq!(k.charged_by(&s, now, 3).failures, 3);
    }

    #[test]
    fn the_gate_follows_the_bits() {
        assert_eq!(Gate::for_bits(20), Gate::Guessable);
        assert_eq!(Gate::for_bits(60), Gate::Guessable);
        assert_eq!(Gate::for_bits(63), Gate::Guessable);
        assert_eq!(Gate::for_bits(64), Gate::Unguessable);
        assert_eq!(Gate::for_bits(65), Gate::Unguessable);
    }

    #[test]
    fn a_known_browser_takes_its_failures_then_counts_as_unknown() {
        let p = KnownBrowserPolicy::default();
        assert!(KnownBrowserPolicy::new(0).is_err());
        assert!(KnownBrowserPolicy::new(101).is_err());
        assert_eq!(KnownBrowserPolicy::new(10).unwrap(), p);
        let now = UnixTime::from_secs(1_000);
        let mut s = ThrottleState::default();
        for _ in 0..10 {
            assert!(p.is_known(&s));
            s = p.charged(&s, now);
        }
        assert!(!p.is_known(&s));
        assert_eq!(s.budget_until, None);
    }

    #[test]
    fn miss_fingerprints_bind_key_user_counter_context_and_code() {
        let user = UserId::new("u").unwrap();
        let totp = Counter::unknown(Factor::Totp);
        let base = miss_fingerprint(&[1; 32], &user, &totp, &[b"step 7"], b"123456");
        assert_eq!(
            base,
            miss_fingerprint(&[1; 32], &user, &totp, &[b"step", b" 7"], b"123456")
        );
        for other in [
            miss_fingerprint(&[2; 32], &user, &totp, &[b"step 7"], b"123456"),
            miss_fingerprint(&[1; 32], &UserId::new("v").unwrap(), &totp, &[b"step 7"], b"123456"),
            miss_fingerprint(
                &[1; 32],
                &user,
                &Counter::unknown(Factor::BackupCodes),
                &[b"step 7"],
                b"123456",
            ),
            miss_fingerprint(&[1; 32], &user, &totp, &[b"step 8"], b"123456"),
            miss_fingerprint(&[1; 32], &user, &totp, &[b"step 7"], b"123457"),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn counters_have_stable_keys() {
        let id = RememberedBrowserId::from_bytes([0xab; 16]);
        assert_eq!(Counter::from(Factor::Totp).key(), "totp");
        assert_eq!(Counter::unknown(Factor::BackupCodes).key(), "backup_codes");
        assert_eq!(
            Counter::known(Factor::Totp, id).key(),
            format!("totp@{}", "ab".repeat(16))
        );
    }
}
