//! The settlement protocol: a code is evaluated against a view of the user's devices and
//! counter, then settled with one atomic store operation against the state it was admitted
//! under; a moved counter or a stale view is read and settled again. WebAuthn's charge-first
//! throttling is here too.

use std::sync::Arc;

use super::cache::{KnownBrowser, View};
use super::{Mfa, Outcome, Verified};
use crate::backup_codes::{self, CodeMatch};
use crate::clock::{Clock, UnixTime};
use crate::error::{Error, StoreError};
use crate::id::{DeviceId, RememberedBrowserId, UserId};
use crate::kind::{DeviceKind, Factor};
use crate::remembered_browser::{self, RememberedBrowserRecord};
use crate::rng::Rng;
use crate::store::{BrowserStore, DeviceData, DeviceRecord, DeviceStore, DevicesVersion, Hit, Settle, Settlement};
use crate::throttle::{Counter, Gate, ThrottleState};
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
    /// Whether the counter may hold the attempt back (what a right guess wins).
    pub(super) gate: Gate,
    pub(super) hit: Option<Hit>,
    /// The code matched an already spent step or code.
    pub(super) reused: bool,
    pub(super) now: UnixTime,
    /// The devices version the code was evaluated against, if the settlement checks it.
    pub(super) version: Option<DevicesVersion>,
    /// The keyed fingerprint the code leaves if it is charged as a miss.
    pub(super) miss: Option<u64>,
    /// How many guesses a miss is worth: the TOTP devices the code was checked against.
    pub(super) weight: u32,
    /// The kind of device a hit proves.
    pub(super) kind: DeviceKind,
}

/// Which codes a verification compares with: the user's authenticator apps, the codes sent to
/// their email addresses and phone numbers (both on the one-time-code counter), or their
/// backup codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Codes {
    Apps,
    Sent,
    Backup,
}

impl Codes {
    pub(super) const fn factor(self) -> Factor {
        match self {
            Self::Apps | Self::Sent => Factor::Totp,
            Self::Backup => Factor::BackupCodes,
        }
    }
}

/// The counter an attempt is admitted under, as last seen: a known browser's own, or the
/// user's for unknown browsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Admission {
    pub(super) browser: Option<RememberedBrowserId>,
    pub(super) state: ThrottleState,
}

/// What [`Mfa::settle`] did.
#[derive(Debug)]
pub(super) enum Settling {
    /// Accepted; the counter is now this.
    Accepted(Settled, ThrottleState),
    /// Answered without accepting; the counter is now this, if known.
    Answered(Settled, Option<ThrottleState>),
    /// The devices the code was evaluated against are no longer the user's, or the known
    /// browser's record is gone: nothing settled.
    Stale,
    /// The known browser's token has taken its failures: nothing settled; the attempt is
    /// admitted again as from an unknown browser.
    NoLongerKnown,
}

/// What a view of the user's devices makes of a code.
#[derive(Debug)]
pub(super) enum Evaluated {
    /// The counter does not admit the attempt now.
    Refused(Outcome),
    /// Admitted: what the code matched.
    Attempt(Attempt),
}

/// `devices` with `hit` spent: a TOTP step accepted (and the device confirmed) or a backup
/// code used, as the store just recorded it.
pub(super) fn spend(devices: &[DeviceRecord], hit: Option<Hit>, now: UnixTime) -> Arc<[DeviceRecord]> {
    devices
        .iter()
        .map(|d| {
            let mut d = d.clone();
            match (&mut d.data, hit) {
                // As the store records it: the time of use too (a time-based device's clock
                // offset is read from its last step and that time).
                (DeviceData::Totp(t), Some(Hit::TotpStep { device, step })) if d.id == device => {
                    t.last_step = Some(step);
                    d.confirmed = true;
                    d.last_used_at = Some(now);
                }
                (DeviceData::SentCode(c), Some(Hit::TotpStep { device, step })) if d.id == device => {
                    c.last_serial = Some(step);
                    d.confirmed = true;
                    d.last_used_at = Some(now);
                }
                (DeviceData::BackupCodes(set), Some(Hit::BackupCode { device, slot })) if d.id == device => {
                    if let Some(s) = set.slots.get_mut(slot) {
                        s.used = true;
                    }
                    d.last_used_at = Some(now);
                }
                _ => {}
            }
            d
        })
        .collect()
}

impl<S: DeviceStore + BrowserStore, C: Clock, R: Rng> Mfa<S, C, R> {
    // ----- Throttling -------------------------------------------------------------------------

    /// Why an attempt behind `gate` under this admission may not be evaluated now, if it may
    /// not. A known browser's own counter never holds an attempt back (once its token has taken
    /// its failures the browser is simply unknown).
    pub(super) fn refusal(&self, gate: Gate, admission: &Admission, now: UnixTime) -> Option<Outcome> {
        if admission.browser.is_some() {
            return None;
        }
        Outcome::refusal(self.config.throttle.decide(gate, &admission.state, now))
    }

    /// The counter after an accepted hit and after a miss. The same wrong code as the last one
    /// charged (the same fingerprint) is not charged again. A known browser's counter is not
    /// cleared by a success: its token is replaced at every full sign-in instead
    /// ([`Mfa::know_browser`]), so it counts every failure of the token's life.
    fn counter_after(
        &self,
        factor: Factor,
        admission: &Admission,
        miss: Option<u64>,
        weight: u32,
        now: UnixTime,
    ) -> (ThrottleState, ThrottleState) {
        let state = admission.state;
        let repeated = miss.is_some() && state.last_miss == miss;
        let charged = |charged: ThrottleState| {
            if repeated {
                state
            } else {
                ThrottleState {
                    last_miss: miss,
                    ..charged
                }
            }
        };
        match admission.browser {
            Some(_) => (
                state,
                charged(self.config.known_browsers.policy.charged_by(&state, now, weight)),
            ),
            None => (
                self.config.throttle.succeeded(&state, now),
                charged(self.config.throttle.charged_by(factor, &state, now, weight)),
            ),
        }
    }

    /// Reads the user's devices of `factor` and its counter from the store, and keeps them in
    /// the verification cache (unless there is nothing to verify: an enrollment made elsewhere
    /// must be seen at once).
    pub(super) async fn read_view(&self, user: &UserId, factor: Factor) -> Result<View, Error> {
        let read = self.store.verification_state(user, factor).await?;
        let devices: Arc<[DeviceRecord]> = read.devices.into();
        if devices.iter().any(|d| d.confirmed) {
            self.cache
                .put(user, factor, Arc::clone(&devices), read.throttle, read.version);
        }
        Ok(View {
            devices,
            state: read.throttle,
            version: read.version,
            cached: false,
        })
    }

    /// The known browser a token names, with its own counter of `factor`, if the token is
    /// `user`'s, a known browser's (not a remembered one's), unexpired, its secret matches
    /// (compared in constant time), and it has not taken its failures; else `None` (an unknown
    /// browser). Read once from the store, then kept beside the cached devices; the token is
    /// checked against the record on every use, and the settlement checks that the record
    /// still exists.
    pub(super) async fn known_browser(
        &self,
        user: &UserId,
        factor: Factor,
        token: &str,
    ) -> Result<Option<Admission>, Error> {
        let Ok((id, secret)) = remembered_browser::parse(token) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let live = |record: &RememberedBrowserRecord| {
            &record.user == user
                && !record.skips_second_factor
                && record.expires_at > now
                && self
                    .keys
                    .mac_key(&record.key_id, crate::seal::REMEMBERED_BROWSER_PURPOSE)
                    .is_some_and(|key| remembered_browser::matches(record, key, &secret))
        };
        let known = match self.cache.browser(user, factor, id) {
            Some(known) => known,
            None => {
                let Some(record) = self.store.remembered_browser(id).await? else {
                    return Ok(None);
                };
                if !live(&record) {
                    return Ok(None);
                }
                let state = self.store.throttle(user, Counter::known(factor, id)).await?;
                let known = KnownBrowser { record, state };
                self.cache.put_browser(user, factor, known.clone());
                known
            }
        };
        if !live(&known.record) || !self.config.known_browsers.policy.is_known(&known.state) {
            return Ok(None);
        }
        Ok(Some(Admission {
            browser: Some(id),
            state: known.state,
        }))
    }

    /// Verifies a code of `factor` (TOTP or backup codes), from a known browser if `token` is
    /// a live known-browser token of the user's.
    ///
    /// The code is evaluated against the user's devices and counter as this process last saw
    /// them (the verification cache), or as read now, and settled with one
    /// [`DeviceStore::settle_attempt`] that checks both: a returning user's verification is
    /// one store operation. The cache decides nothing on its own: a cached view that refuses
    /// the attempt or cannot evaluate the code is read again, and one that the settlement
    /// finds stale is read again and the code evaluated and settled again. Which of these
    /// happens never depends on whether the code matched.
    pub(super) async fn verify_code(
        &self,
        user: &UserId,
        codes: Codes,
        code: &str,
        token: Option<&str>,
    ) -> Result<Settled, Error> {
        let factor = codes.factor();
        let mut view = match self.cache.get(user, factor) {
            // A counter-based device's window starts at its counter, and a sent code is
            // replaced by the next one sent: a copy another process has moved on from would
            // look in the wrong place, so these are read fresh.
            Some(view) if codes != Codes::Sent && !view.devices.iter().any(is_counter_based) => view,
            _ => self.read_view(user, factor).await?,
        };
        let mut browser = match token {
            Some(token) => self.known_browser(user, factor, token).await?,
            None => None,
        };
        // A backup code is checked against keyed hashes: under another key than the one they
        // were written with, every right code would read as a wrong one and be charged.
        for device in view.devices.iter() {
            if let DeviceData::BackupCodes(set) = &device.data
                && let Some(key_id) = &set.key_id
            {
                self.check_key(key_id).await?;
            }
        }
        for _ in 0..VIEW_READS {
            let now = self.clock.now();
            let admission = browser.unwrap_or(Admission {
                browser: None,
                state: view.state,
            });
            let attempt = match self.evaluate(user, codes, &view, &admission, code, now) {
                Ok(Evaluated::Attempt(attempt)) => attempt,
                Ok(Evaluated::Refused(_)) | Err(_) if view.cached => {
                    view = self.read_view(user, factor).await?;
                    continue;
                }
                Ok(Evaluated::Refused(outcome)) => return Ok(Settled::plain(outcome)),
                Err(e) => return Err(e),
            };
            let hit = attempt.hit;
            match self.settle(user, admission, &attempt).await? {
                Settling::Accepted(mut settled, state) => {
                    let devices = spend(&view.devices, hit, attempt.now);
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
                    // A device's first accepted code changes the devices version: the copy is
                    // read again next time rather than found stale.
                    let first_use = view.devices.iter().any(|d| {
                        matches!(hit, Some(Hit::TotpStep { device, .. }) if d.id == device)
                            && (!d.confirmed || d.last_used_at.is_none())
                    });
                    if first_use {
                        self.cache.forget(user);
                    } else if admission.browser.is_some() {
                        self.cache.put(user, factor, devices, view.state, view.version);
                        self.keep_counter(user, factor, &admission, state);
                    } else {
                        self.cache.put(user, factor, devices, state, view.version);
                    }
                    return Ok(settled);
                }
                Settling::Answered(settled, Some(state)) => {
                    self.keep_counter(user, factor, &admission, state);
                    // A code refused against a kept copy: another process may have moved a
                    // device's counter or clock offset since, so the next attempt reads them.
                    if view.cached && factor == Factor::Totp {
                        self.cache.forget(user);
                    }
                    return Ok(settled);
                }
                Settling::Answered(settled, None) => {
                    self.cache.forget(user);
                    return Ok(settled);
                }
                Settling::Stale => {
                    self.cache.forget(user);
                    view = self.read_view(user, factor).await?;
                    browser = match token {
                        Some(token) => self.known_browser(user, factor, token).await?,
                        None => None,
                    };
                }
                Settling::NoLongerKnown => {
                    if let Some(id) = admission.browser {
                        self.cache.forget_browser(user, id);
                    }
                    browser = None;
                }
            }
        }
        Ok(Settled::plain(Self::contended(self.clock.now())))
    }

    /// Keeps the counter an attempt was settled on in the verification cache.
    fn keep_counter(&self, user: &UserId, factor: Factor, admission: &Admission, state: ThrottleState) {
        match admission.browser {
            None => self.cache.set_state(user, factor, state),
            Some(id) => {
                if let Some(mut known) = self.cache.browser(user, factor, id) {
                    known.state = state;
                    self.cache.put_browser(user, factor, known);
                }
            }
        }
    }

    /// Evaluates a code against a view of the user's devices: a refusal if the counter does
    /// not admit the attempt, else what the code matched.
    ///
    /// # Errors
    ///
    /// [`InputError::CodeFormat`] for a code of the wrong shape; sealing errors.
    pub(super) fn evaluate(
        &self,
        user: &UserId,
        codes: Codes,
        view: &View,
        admission: &Admission,
        code: &str,
        now: UnixTime,
    ) -> Result<Evaluated, Error> {
        let factor = codes.factor();
        let version = view.version;
        let counter = Counter {
            factor,
            browser: admission.browser,
        };
        match codes {
            Codes::Sent => self.evaluate_sent(user, view, admission, &counter, code, now),
            Codes::Apps => {
                let totps: Vec<(DeviceId, &TotpRecord, Option<UnixTime>)> = view
                    .devices
                    .iter()
                    .filter(|d| d.confirmed)
                    .filter_map(|d| match &d.data {
                        DeviceData::Totp(t) => Some((d.id, t, d.last_used_at)),
                        _ => None,
                    })
                    .collect();
                if totps.is_empty() {
                    // Nothing a guess could win, and nothing is charged: an ordinary refusal.
                    return Ok(Evaluated::Refused(Outcome::Rejected));
                }
                let params: Vec<TotpParams> = totps.iter().map(|(_, t, _)| t.params).collect();
                totp::check_shape(code, &params)?;
                let gate = Gate::Guessable;
                if let Some(refused) = self.refusal(gate, admission, now) {
                    return Ok(Evaluated::Refused(refused));
                }
                let (hit, reused) = self.evaluate_totp(user, &totps, code, now)?;
                // The candidates a code is compared with: the devices, and the time step (each
                // device's, where its window is centred; one device, the common case, needs no
                // list), or for a counter-based device its counter.
                let candidate = |t: &TotpRecord, used: Option<UnixTime>| {
                    if t.params.is_counter_based() {
                        t.last_step.map_or(0, |c| c.saturating_add(1))
                    } else {
                        self.config.totp.centre(&t.params, t.last_step, used, now)
                    }
                };
                let step = totps.first().map_or(0, |(_, t, u)| candidate(t, *u)).to_be_bytes();
                let steps: Vec<u8> = totps
                    .iter()
                    .skip(1)
                    .flat_map(|(_, t, u)| candidate(t, *u).to_be_bytes())
                    .collect();
                let context: [&[u8]; 3] = [&version.0.to_be_bytes(), &step, &steps];
                let mut digits = [0u8; 64];
                let mut len = 0;
                for b in code.bytes().filter(u8::is_ascii_digit).take(digits.len()) {
                    digits[len] = b;
                    len += 1;
                }
                Ok(Evaluated::Attempt(Attempt {
                    factor,
                    gate,
                    hit,
                    reused,
                    now,
                    version: Some(version),
                    miss: self.miss_fingerprint(user, &counter, &context, digits.get(..len).unwrap_or_default()),
                    // A miss is a guess against each device, weighed by the codes of its window;
                    // a used code (or a hit a concurrent request spends first) is no guess,
                    // and counts once per device.
                    weight: if hit.is_none() && !reused {
                        totps
                            .iter()
                            .map(|(_, t, _)| self.config.totp.guess_weight(&t.params))
                            .fold(0u32, u32::saturating_add)
                    } else {
                        u32::try_from(totps.len()).unwrap_or(u32::MAX)
                    },
                    kind: DeviceKind::Totp,
                }))
            }
            Codes::Backup => {
                let Some((id, record)) = view.devices.iter().find_map(|d| match &d.data {
                    DeviceData::BackupCodes(r) => Some((d.id, r)),
                    _ => None,
                }) else {
                    return Ok(Evaluated::Refused(Outcome::Rejected));
                };
                let normalized = backup_codes::canonical_input(record, code)?;
                let gate = Gate::for_bits(record.bits_per_code());
                if let Some(refused) = self.refusal(gate, admission, now) {
                    return Ok(Evaluated::Refused(refused));
                }
                let key = self.set_key(record, user, id)?;
                let (hit, reused) = match backup_codes::evaluate(record, code, &key)? {
                    CodeMatch::Unused(slot) => (Some(Hit::BackupCode { device: id, slot }), false),
                    CodeMatch::Used => (None, true),
                    _ => (None, false),
                };
                Ok(Evaluated::Attempt(Attempt {
                    factor,
                    gate,
                    hit,
                    reused,
                    now,
                    version: Some(version),
                    miss: self.miss_fingerprint(user, &counter, &[&version.0.to_be_bytes()], normalized.as_bytes()),
                    weight: 1,
                    kind: DeviceKind::BackupCodes,
                }))
            }
        }
    }

    /// The fingerprint a wrong code leaves on its counter, under the current key (`None`
    /// would only come from a keyring without it, which cannot be built).
    pub(super) fn miss_fingerprint(
        &self,
        user: &UserId,
        counter: &Counter,
        context: &[&[u8]],
        code: &[u8],
    ) -> Option<u64> {
        let key = self.keys.mac_key(self.keys.current_id(), crate::seal::MISS_PURPOSE)?;
        Some(crate::throttle::miss_fingerprint(key, user, counter, context, code))
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
        mut admission: Admission,
        attempt: &Attempt,
    ) -> Result<Settling, Error> {
        let Attempt {
            factor,
            gate,
            hit,
            reused,
            now,
            version,
            miss,
            weight,
            kind: hit_kind,
        } = *attempt;
        for _ in 0..CHARGE_RETRIES {
            if let Some(refused) = self.refusal(gate, &admission, now) {
                return Ok(Settling::Answered(Settled::plain(refused), Some(admission.state)));
            }
            let (on_hit, on_miss) = self.counter_after(factor, &admission, miss, weight, now);
            let settle = Settle {
                factor,
                browser: admission.browser,
                admitted: admission.state,
                hit,
                on_hit,
                on_miss,
                now,
                version,
            };
            match self.store.settle_attempt(user, &settle).await? {
                Settlement::Accepted => {
                    let device = match hit {
                        Some(Hit::TotpStep { device, .. } | Hit::BackupCode { device, .. }) => device,
                        None => return Err(StoreError::InvalidRecord("a settlement without a hit was accepted").into()),
                    };
                    return Ok(Settling::Accepted(
                        Settled::plain(Outcome::Accepted(Verified::sign_in(user, device, hit_kind, now))),
                        settle.on_hit,
                    ));
                }
                Settlement::Moved(moved) => {
                    admission.state = moved;
                    if admission.browser.is_some() && !self.config.known_browsers.policy.is_known(&moved) {
                        return Ok(Settling::NoLongerKnown);
                    }
                }
                Settlement::Stale => return Ok(Settling::Stale),
                _ => {
                    let settled = Settled {
                        outcome: Outcome::Rejected,
                        // A hit charged here was spent by a concurrent request: reused too.
                        reused: reused || hit.is_some(),
                        budget_remaining: admission
                            .browser
                            .is_none()
                            .then(|| self.config.throttle.budget_remaining(&settle.on_miss, now)),
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

    /// Counts one failure of an unguessable factor (a WebAuthn assertion) on the user's
    /// counter, for the audit trail and the host's view of it; it never holds anything back.
    /// Concurrent failures that keep winning the race are not counted again.
    pub(super) async fn count_failure(&self, user: &UserId, factor: Factor) -> Result<(), Error> {
        let counter = Counter::unknown(factor);
        for _ in 0..CHARGE_RETRIES {
            let state = self.store.throttle(user, counter).await?;
            let now = self.clock.now();
            let charged = self.config.throttle.charged(factor, &state, now);
            if self.store.swap_throttle(user, counter, state, charged).await? {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// Whether `device` is a counter-based (HOTP) one.
fn is_counter_based(device: &DeviceRecord) -> bool {
    matches!(&device.data, DeviceData::Totp(t) if t.params.is_counter_based())
}
