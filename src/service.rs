//! [`Mfa`]: the operations an application calls. Thin: it loads records, asks the pure modules,
//! and lets the store apply the outcome atomically.

mod admin;
mod audit;
mod authorize;
mod backup_codes;
mod cache;
mod config;
mod devices;
mod enrollment;
mod import;
mod inventory;
mod outcome;
mod remembered;
mod sent_code;
mod settle;
mod totp;
mod webauthn;

pub use self::config::MfaConfig;
pub use self::outcome::{Outcome, Verified};
pub(crate) use self::totp::totp_context;

use std::fmt;
use std::sync::Arc;

use crate::audit::{AuditSink, NoopSink};
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::rng::{OsRng, Rng};
use crate::seal::Keyring;
use crate::store::DeviceStore;

use self::cache::VerifyCache;

/// The MFA service: a store, a clock, a random generator, sealing keys and policy.
///
/// Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Mfa<S, C = SystemClock, R = OsRng> {
    store: S,
    clock: C,
    rng: R,
    keys: Keyring,
    config: MfaConfig,
    audit: Arc<dyn AuditSink>,
    cache: VerifyCache,
    /// Key ids whose check value this process has compared with the store's (see
    /// [`Mfa::check_keys`]).
    checked_keys: std::sync::Mutex<std::collections::HashSet<crate::seal::KeyId>>,
}

impl<S: fmt::Debug, C: fmt::Debug, R: fmt::Debug> fmt::Debug for Mfa<S, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mfa")
            .field("store", &self.store)
            .field("clock", &self.clock)
            .field("rng", &self.rng)
            .field("keys", &self.keys)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: DeviceStore> Mfa<S> {
    /// A service on `store`, sealing TOTP secrets with `keys`, on the system clock and the
    /// operating system's random generator, asked on every call ([`OsRng`]).
    ///
    /// # Errors
    ///
    /// [`Error::Rng`] if the operating system has no random source.
    pub fn new(store: S, keys: Keyring, config: MfaConfig) -> Result<Self, Error> {
        Ok(Self {
            store,
            clock: SystemClock,
            rng: OsRng::new()?,
            keys,
            cache: VerifyCache::new(config.verification_cache),
            config,
            audit: Arc::new(NoopSink),
            checked_keys: std::sync::Mutex::default(),
        })
    }
}

impl<S, C, R> Mfa<S, C, R> {
    /// The same service on another clock (a `ManualClock` in tests, feature `test-util`).
    pub fn with_clock<C2: Clock>(self, clock: C2) -> Mfa<S, C2, R> {
        Mfa {
            store: self.store,
            clock,
            rng: self.rng,
            keys: self.keys,
            config: self.config,
            audit: self.audit,
            cache: self.cache,
            checked_keys: self.checked_keys,
        }
    }

    /// The same service on another generator.
    pub fn with_rng<R2: Rng>(self, rng: R2) -> Mfa<S, C, R2> {
        Mfa {
            store: self.store,
            clock: self.clock,
            rng,
            keys: self.keys,
            config: self.config,
            audit: self.audit,
            cache: self.cache,
            checked_keys: self.checked_keys,
        }
    }

    /// The same service, delivering audit events to `sink` (the default drops them).
    pub fn with_audit(mut self, sink: impl AuditSink + 'static) -> Self {
        self.audit = Arc::new(sink);
        self
    }

    /// The same service with another keyring (after adding a new sealing key; see
    /// [`rotate_keys`](Self::rotate_keys)).
    pub fn with_keys(mut self, keys: Keyring) -> Self {
        self.keys = keys;
        self.cache.clear();
        self.checked_keys = std::sync::Mutex::default();
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The clock the service reads time from.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The configuration.
    pub fn config(&self) -> &MfaConfig {
        &self.config
    }
}
