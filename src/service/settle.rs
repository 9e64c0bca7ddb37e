//! The settlement protocol: a code is evaluated against a view of the user's devices and
//! counter, then settled with one atomic store operation against the state it was admitted
//! under; a moved counter or a stale view is read and settled again. WebAuthn's charge-first
//! throttling is here too.

use std::sync::Arc;

use super::cache::View;
use super::{Mfa, Outcome, Verified};
use crate::backup_codes::{self, CodeKey, CodeMatch};
use crate::clock::{Clock, UnixTime};
use crate::error::{Error, MisuseError, StoreError};
use crate::id::{DeviceId, UserId};
use crate::kind::{DeviceKind, Factor};
use crate::rng::Rng;
use crate::store::{DeviceData, DeviceRecord, DeviceStore, DevicesDigest, Hit, Settle, Settlement};
use crate::throttle::ThrottleState;
use crate::totp::{self, TotpParams, TotpRecord};

/// Attempts to charge a throttle counter before concurrent attempts count as throttling.
const CHARGE_RETRIES: usize = 8;
/// Views of a user's devices one verification evaluates a code against before concurrent
/// changes of the devices count as throttling (the first from the cache or the store, then
/// from the store after a stale settlement).
const VIEW_READS: usize = 3;

/// A settled code attempt: its outcome, and what the audit trail should hear beside it.
#[derive(Debug)]
pub(super) struct Settled {
    pub(super) outcome: Outcome,
    /// The code was right but already spent (a replayed TOTP step, a used backup code).
    pub(super) reused: bool,
    /// After a charged failure: what is left of the factor's failure budget.
    pub(super) budget_remaining: Option<u32>,
}

impl Settled {
    /// An outcome with nothing more to say (a refusal, or an acceptance).
    pub(super) fn plain(outcome: Outcome) -> Self {
        Self {
            outcome,
            reused: false,
            budget_remaining: None,
        }
    }
}

/// A code attempt evaluated and ready to settle.
#[derive(Debug, Clone, Copy)]
pub(super) struct Attempt {
    pub(super) factor: Factor,
    pub(super) hit: Option<Hit>,
    /// The code matched an already spent step or code.
    pub(super) reused: bool,
    pub(super) now: UnixTime,
    /// The digest of the devices the code was evaluated against, if the settlement checks it.
    pub(super) devices: Option<DevicesDigest>,
}

/// What [`Mfa::settle`] did.
#[derive(Debug)]
pub(super) enum Settling {
    /// Accepted; the counter is now this.
    Accepted(Settled, ThrottleState),
    /// Answered without accepting; the counter is now this, if known.
    Answered(Settled, Option<ThrottleState>),
    /// The devices the code was evaluated against are no longer the user's: nothing settled.
    Stale,
}

/// What a view of the user's devices makes of a code.
#[derive(Debug)]
pub(super) enum Evaluated {
    /// The view's counter does not admit the attempt now.
    Refused(Outcome),
    /// Admitted: what the code matched.
    Attempt { hit: Option<Hit>, reused: bool },
}

/// `devices` with `hit` spent: a TOTP step accepted (and the device confirmed) or a backup
/// code used, as the store just recorded it.
pub(super) fn spend(devices: &[DeviceRecord], hit: Option<Hit>) -> Arc<[DeviceRecord]> {
    devices
        .iter()
        .map(|d| {
            let mut d = d.clone();
            match (&mut d.data, hit) {
                (DeviceData::Totp(t), Some(Hit::TotpStep { device, step })) if d.id == device => {
                    t.last_step = Some(step);
                    d.confirmed = true;
                }
                (DeviceData::BackupCodes(set), Some(Hit::BackupCode { device, slot })) if d.id == device => {
                    if let Some(s) = set.slots.get_mut(slot) {
                        s.used = true;
                    }
                }
                _ => {}
            }
            d
        })
        .collect()
}

impl<S: DeviceStore, C: Clock, R: Rng> Mfa<S, C, R> {
    // ----- Throttling -------------------------------------------------------------------------

    /// Why an attempt on `factor` under this counter state may not be evaluated now, if it may not.
    pub(super) fn refusal(&self, factor: Factor, state: &ThrottleState, now: UnixTime) -> Option<Outcome> {
        Outcome::refusal(self.config.throttle.decide(factor, state, now))
    }

    /// Reads the user's devices of `factor` and its counter from the store, and keeps them in
    /// the verification cache (unless there is nothing to verify: an enrollment made elsewhere
    /// must be seen at once).
    pub(super) async fn read_view(&self, user: &UserId, factor: Factor) -> Result<View, Error> {
        let (devices, state) = self.store.verification_state(user, factor).await?;
        let devices: Arc<[DeviceRecord]> = devices.into();
        if devices.iter().any(|d| d.confirmed) {
            self.cache.put(user, factor, Arc::clone(&devices), state);
        }
        Ok(View {
            devices,
            state,
            cached: false,
        })
    }

    /// Verifies a code of `factor` (TOTP or backup codes).
    ///
    /// The code is evaluated against the user's devices and counter as this process last saw
    /// them (the verification cache), or as read now, and settled with one
    /// [`DeviceStore::settle_attempt`] that checks both: a returning user's verification is
    /// one store operation. The cache decides nothing on its own: a cached view that refuses
    /// the attempt or cannot evaluate the code is read again, and one that the settlement
    /// finds stale is read again and the code evaluated and settled again. Which of these
    /// happens never depends on whether the code matched.
    pub(super) async fn verify_code(&self, user: &UserId, factor: Factor, code: &str) -> Result<Settled, Error> {
        let mut view = match self.cache.get(user, factor) {
            Some(view) => view,
            None => self.read_view(user, factor).await?,
        };
        for _ in 0..VIEW_READS {
            let now = self.clock.now();
            let (hit, reused) = match self.evaluate(user, factor, &view, code, now) {
                Ok(Evaluated::Attempt { hit, reused }) => (hit, reused),
                Ok(Evaluated::Refused(_)) | Err(_) if view.cached => {
                    view = self.read_view(user, factor).await?;
                    continue;
                }
                Ok(Evaluated::Refused(outcome)) => return Ok(Settled::plain(outcome)),
                Err(e) => return Err(e),
            };
            let attempt = Attempt {
                factor,
                hit,
                reused,
                now,
                devices: Some(DevicesDigest::of(factor, view.devices.iter())),
            };
            match self.settle(user, view.state, &attempt).await? {
                Settling::Accepted(mut settled, state) => {
                    let devices = spend(&view.devices, hit);
                    if let Some(Hit::BackupCode { device, .. }) = hit {
                        let remaining = devices
                            .iter()
                            .find(|d| d.id == device)
                            .and_then(|d| match &d.data {
                                DeviceData::BackupCodes(set) => Some(set.remaining()),
                                _ => None,
                            })
                            .unwrap_or_default();
                        settled.outcome = match settled.outcome {
                            Outcome::Accepted(v) => Outcome::Accepted(v.with_remaining_backup_codes(remaining)),
                            other => other,
                        };
                    }
                    self.cache.put(user, factor, devices, state);
                    return Ok(settled);
                }
                Settling::Answered(settled, Some(state)) => {
                    self.cache.set_state(user, factor, state);
                    return Ok(settled);
                }
                Settling::Answered(settled, None) => {
                    self.cache.forget(user);
                    return Ok(settled);
                }
                Settling::Stale => {
                    self.cache.forget(user);
                    view = self.read_view(user, factor).await?;
                }
            }
        }
        Ok(Settled::plain(Self::contended(self.clock.now())))
    }

    /// Evaluates a code against a view of the user's devices: a refusal if the view's counter
    /// does not admit the attempt, else what the code matched.
    ///
    /// # Errors
    ///
    /// [`MisuseError::NoDevice`] if the view has no usable device of `factor`;
    /// [`InputError::CodeFormat`] for a code of the wrong shape; sealing errors.
    pub(super) fn evaluate(
        &self,
        user: &UserId,
        factor: Factor,
        view: &View,
        code: &str,
        now: UnixTime,
    ) -> Result<Evaluated, Error> {
        match factor {
            Factor::Totp => {
                let totps: Vec<(DeviceId, &TotpRecord)> = view
                    .devices
                    .iter()
                    .filter(|d| d.confirmed)
                    .filter_map(|d| match &d.data {
                        DeviceData::Totp(t) => Some((d.id, t)),
                        _ => None,
                    })
                    .collect();
                if totps.is_empty() {
                    return Err(MisuseError::NoDevice(Factor::Totp).into());
                }
                let params: Vec<TotpParams> = totps.iter().map(|(_, t)| t.params).collect();
                totp::check_shape(code, &params)?;
                if let Some(refused) = self.refusal(factor, &view.state, now) {
                    return Ok(Evaluated::Refused(refused));
                }
                let (hit, reused) = self.evaluate_totp(user, &totps, code, now)?;
                Ok(Evaluated::Attempt { hit, reused })
            }
            Factor::BackupCodes => {
                let Some((id, record)) = view.devices.iter().find_map(|d| match &d.data {
                    DeviceData::BackupCodes(r) => Some((d.id, r)),
                    _ => None,
                }) else {
                    return Err(MisuseError::NoDevice(Factor::BackupCodes).into());
                };
                backup_codes::normalize(code, usize::from(record.code_length))?;
                if let Some(refused) = self.refusal(factor, &view.state, now) {
                    return Ok(Evaluated::Refused(refused));
                }
                let key = match &record.key_id {
                    Some(key_id) => self.codes_key(key_id, user, id)?,
                    None => CodeKey::Legacy(self.config.pepper.as_ref()),
                };
                let (hit, reused) = match backup_codes::evaluate(record, code, &key)? {
                    CodeMatch::Unused(slot) => (Some(Hit::BackupCode { device: id, slot }), false),
                    CodeMatch::Used => (None, true),
                    _ => (None, false),
                };
                Ok(Evaluated::Attempt { hit, reused })
            }
            Factor::WebAuthn => Err(MisuseError::NoDevice(Factor::WebAuthn).into()),
        }
    }

    /// Settles an evaluated code attempt: one [`DeviceStore::settle_attempt`] against the
    /// counter state it was admitted under, which accepts the hit (if any, and still unspent)
    /// or charges a miss. If the counter moved in between, the attempt is admitted again against
    /// the state the store returned (refused if that state no longer admits it) and settled
    /// again. Nothing here depends on whether the code matched: a correct code refused by the
    /// throttle makes the same store calls as a wrong one, and its answer is the same.
    pub(super) async fn settle(
        &self,
        user: &UserId,
        mut state: ThrottleState,
        attempt: &Attempt,
    ) -> Result<Settling, Error> {
        let policy = &self.config.throttle;
        let Attempt {
            factor,
            hit,
            reused,
            now,
            devices,
        } = *attempt;
        for _ in 0..CHARGE_RETRIES {
            if let Some(refused) = self.refusal(factor, &state, now) {
                return Ok(Settling::Answered(Settled::plain(refused), Some(state)));
            }
            let settle = Settle {
                factor,
                admitted: state,
                hit,
                on_hit: policy.succeeded(&state, now),
                on_miss: policy.charged(factor, &state, now),
                now,
                devices,
            };
            match self.store.settle_attempt(user, &settle).await? {
                Settlement::Accepted => {
                    let (device, kind) = match hit {
                        Some(Hit::TotpStep { device, .. }) => (device, DeviceKind::Totp),
                        Some(Hit::BackupCode { device, .. }) => (device, DeviceKind::BackupCodes),
                        None => return Err(StoreError::InvalidRecord("a settlement without a hit was accepted").into()),
                    };
                    return Ok(Settling::Accepted(
                        Settled::plain(Outcome::Accepted(Verified::sign_in(user, device, kind, now))),
                        settle.on_hit,
                    ));
                }
                Settlement::Moved(moved) => state = moved,
                Settlement::Stale => return Ok(Settling::Stale),
                _ => {
                    let settled = Settled {
                        outcome: Outcome::Rejected,
                        // A hit charged here was spent by a concurrent request: reused too.
                        reused: reused || hit.is_some(),
                        budget_remaining: Some(policy.budget_remaining(&settle.on_miss, now)),
                    };
                    // A hit spent elsewhere leaves a copy of the devices out of date.
                    let known = if hit.is_some() { None } else { Some(settle.on_miss) };
                    return Ok(Settling::Answered(settled, known));
                }
            }
        }
        Ok(Settling::Answered(Settled::plain(Self::contended(now)), None))
    }

    /// Other attempts on the same counter kept winning the race: this one waits its turn.
    pub(super) fn contended(now: UnixTime) -> Outcome {
        Outcome::Throttled {
            retry_at: now.plus_secs(1),
        }
    }

    /// Charges one attempt against the user's factor, or says why it may not be evaluated.
    ///
    /// WebAuthn charges before evaluating, unlike codes: its evaluation is a signature check
    /// that costs far more than the write, so an attacker past the limit gets no CPU from it.
    /// (An assertion cannot be guessed, so this is about CPU, not about what an answer reveals.)
    pub(super) async fn charge(&self, user: &UserId, factor: Factor) -> Result<Option<Outcome>, Error> {
        let policy = &self.config.throttle;
        for _ in 0..CHARGE_RETRIES {
            let state = self.store.throttle(user, factor).await?;
            let now = self.clock.now();
            if let Some(refused) = self.refusal(factor, &state, now) {
                return Ok(Some(refused));
            }
            if self
                .store
                .swap_throttle(user, factor, state, policy.charged(factor, &state, now))
                .await?
            {
                return Ok(None);
            }
        }
        Ok(Some(Self::contended(self.clock.now())))
    }
}
