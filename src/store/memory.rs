//! [`MemoryStore`]: everything in one mutex-guarded set of maps, indexed by user and by
//! credential id so that a sign-in costs the user's devices, not the store's size. For tests,
//! demos and single-process services that can lose their MFA state on restart (most cannot: use
//! a SQL store).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::clock::UnixTime;
use crate::error::StoreError;
use crate::id::{CeremonyId, DeviceId, DeviceName, RememberedBrowserId, UserId};
use crate::kind::Factor;
use crate::remembered_browser::RememberedBrowserRecord;
use crate::seal::SealedSecret;
use crate::sent_code::{IssuedCode, SentCodeRecord};
use crate::store::{
    AdminStore, BrowserStore, Browsers, CeremonyStore, DeleteOutcome, DeviceStore, DevicesVersion, EnrollmentStore,
    Hit, Settle, Settlement, VerificationState,
};
use crate::store::{DeviceData, DeviceRecord};
use crate::throttle::{Counter, ThrottleState};
use crate::totp::TotpRecord;
use crate::webauthn::{CeremonyKind, CeremonyRecord, WebAuthnUse};

#[derive(Debug, Default)]
struct State {
    devices: HashMap<DeviceId, DeviceRecord>,
    /// Each user's device ids: per-user operations cost the user's devices, not the store's.
    by_user: HashMap<UserId, Vec<DeviceId>>,
    /// WebAuthn credential ids to their devices: unique across users.
    by_credential: HashMap<Vec<u8>, DeviceId>,
    throttles: HashMap<(UserId, Counter), ThrottleState>,
    /// Each user's devices version (see [`DevicesVersion`]); kept when the devices go.
    versions: HashMap<UserId, DevicesVersion>,
    key_checks: HashMap<crate::seal::KeyId, [u8; 32]>,
    deadlines: HashMap<UserId, crate::enrollment::EnrollmentGrace>,
    ceremonies: HashMap<CeremonyId, CeremonyRecord>,
    trusted: HashMap<RememberedBrowserId, RememberedBrowserRecord>,
}

impl State {
    /// Adds a device whose id and credential id are known to be free.
    fn add(&mut self, device: DeviceRecord) {
        self.bump(&device.user);
        if let Some(cred) = credential_id(&device) {
            self.by_credential.insert(cred.to_vec(), device.id);
        }
        self.by_user.entry(device.user.clone()).or_default().push(device.id);
        self.devices.insert(device.id, device);
    }

    fn remove(&mut self, id: DeviceId) -> Option<DeviceRecord> {
        let device = self.devices.remove(&id)?;
        self.bump(&device.user);
        if let Some(cred) = credential_id(&device) {
            self.by_credential.remove(cred);
        }
        if let Some(ids) = self.by_user.get_mut(&device.user) {
            ids.retain(|d| *d != id);
            if ids.is_empty() {
                self.by_user.remove(&device.user);
            }
        }
        Some(device)
    }

    /// Increments the user's devices version.
    fn bump(&mut self, user: &UserId) {
        let version = self.versions.entry(user.clone()).or_default();
        *version = version.next();
    }

    /// The user's devices version.
    fn version(&self, user: &UserId) -> DevicesVersion {
        self.versions.get(user).copied().unwrap_or_default()
    }

    /// The user's devices, in no particular order.
    fn of_user<'a>(&'a self, user: &UserId) -> impl Iterator<Item = &'a DeviceRecord> + 'a {
        self.by_user
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|id| self.devices.get(id))
    }

    /// The user's devices (of one factor, if given), oldest first (ties by id), as the store
    /// contract orders them.
    fn list(&self, user: &UserId, factor: Option<Factor>) -> Vec<DeviceRecord> {
        let mut list: Vec<DeviceRecord> = self
            .of_user(user)
            .filter(|d| factor.is_none_or(|f| d.kind().factor() == f))
            .cloned()
            .collect();
        list.sort_by_key(|d| (d.created_at, d.id));
        list
    }

    /// The user's counter for `factor` (a missing one is the default).
    fn counter(&self, user: &UserId, counter: Counter) -> ThrottleState {
        self.throttles
            .get(&(user.clone(), counter))
            .copied()
            .unwrap_or_default()
    }
}

/// Whether a TOTP device of `user` other than `except` has the fingerprint `fingerprint`.
fn fingerprint_taken(state: &State, user: &UserId, fingerprint: &[u8; 32], except: Option<DeviceId>) -> bool {
    state.by_user.get(user).is_some_and(|ids| {
        ids.iter().filter(|id| Some(**id) != except).any(|id| {
            state
                .devices
                .get(id)
                .and_then(|d| otp_fingerprint(&d.data))
                .is_some_and(|f| f == fingerprint)
        })
    })
}

/// The fingerprint of a one-time-code device's secret or destination, if it has one (what the
/// SQL stores keep in `totp_fingerprint`).
fn otp_fingerprint(data: &DeviceData) -> Option<&[u8; 32]> {
    match data {
        DeviceData::Totp(t) => t.fingerprint.as_ref(),
        DeviceData::SentCode(c) => Some(&c.fingerprint),
        _ => None,
    }
}

/// Whether a device is a one-time-code device (an authenticator app, an email address or a
/// phone number): what the SQL stores keep with kind `totp`.
fn is_otp(data: &DeviceData) -> bool {
    matches!(data, DeviceData::Totp(_) | DeviceData::SentCode(_))
}

fn credential_id(record: &DeviceRecord) -> Option<&[u8]> {
    match &record.data {
        DeviceData::WebAuthn(w) => Some(&w.credential_id),
        _ => None,
    }
}

/// An in-memory [`Store`](crate::Store). Clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore(Arc<Mutex<State>>);

#[derive(Debug, thiserror::Error)]
#[error("memory store lock poisoned by a panicking thread")]
struct Poisoned;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.0.lock().map_err(|_| StoreError::backend(Poisoned))
    }

    fn owned<'a>(state: &'a mut State, user: &UserId, id: DeviceId) -> Option<&'a mut DeviceRecord> {
        state.devices.get_mut(&id).filter(|d| &d.user == user)
    }
}

impl DeviceStore for MemoryStore {
    async fn insert_device(&self, device: DeviceRecord) -> Result<(), StoreError> {
        let mut state = self.state()?;
        if state.devices.contains_key(&device.id) {
            return Err(StoreError::Conflict);
        }
        if matches!(device.data, DeviceData::BackupCodes(_))
            && state
                .of_user(&device.user)
                .any(|d| matches!(d.data, DeviceData::BackupCodes(_)))
        {
            return Err(StoreError::Conflict);
        }
        if let Some(cred) = credential_id(&device)
            && state.by_credential.contains_key(cred)
        {
            return Err(StoreError::Conflict);
        }
        if let Some(fingerprint) = otp_fingerprint(&device.data)
            && fingerprint_taken(&state, &device.user, fingerprint, None)
        {
            return Err(StoreError::Conflict);
        }
        state.add(device);
        Ok(())
    }

    async fn device(&self, user: &UserId, id: DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        let mut state = self.state()?;
        Ok(Self::owned(&mut state, user, id).cloned())
    }

    async fn list_devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        let state = self.state()?;
        Ok(state.list(user, None))
    }

    async fn verification_state(&self, user: &UserId, factor: Factor) -> Result<VerificationState, StoreError> {
        let state = self.state()?;
        Ok(VerificationState {
            devices: state.list(user, Some(factor)),
            throttle: state.counter(user, Counter::unknown(factor)),
            version: state.version(user),
        })
    }

    async fn rename_device(&self, user: &UserId, id: DeviceId, name: &DeviceName) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        Ok(Self::owned(&mut state, user, id)
            .map(|d| d.name = name.clone())
            .is_some())
    }

    async fn delete_device(&self, user: &UserId, id: DeviceId) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        if Self::owned(&mut state, user, id).is_none() {
            return Ok(false);
        }
        Ok(state.remove(id).is_some())
    }

    async fn delete_user_devices(&self, user: &UserId) -> Result<u64, StoreError> {
        let mut state = self.state()?;
        let ids = state.by_user.get(user).cloned().unwrap_or_default();
        let mut deleted = 0;
        for id in ids {
            deleted += u64::from(state.remove(id).is_some());
        }
        Ok(deleted)
    }

    async fn delete_unconfirmed_totp(&self, user: &UserId, keep: DeviceId) -> Result<u64, StoreError> {
        let mut state = self.state()?;
        let stale: Vec<DeviceId> = state
            .of_user(user)
            .filter(|d| d.id != keep && !d.confirmed && is_otp(&d.data))
            .map(|d| d.id)
            .collect();
        for id in &stale {
            state.remove(*id);
        }
        Ok(stale.len() as u64)
    }

    async fn replace_backup_codes(&self, set: DeviceRecord) -> Result<(), StoreError> {
        if !matches!(set.data, DeviceData::BackupCodes(_)) {
            return Err(StoreError::InvalidRecord(
                "replace_backup_codes needs a backup-code record",
            ));
        }
        let mut state = self.state()?;
        if state.devices.contains_key(&set.id) {
            return Err(StoreError::Conflict);
        }
        let old: Vec<DeviceId> = state
            .of_user(&set.user)
            .filter(|d| matches!(d.data, DeviceData::BackupCodes(_)))
            .map(|d| d.id)
            .collect();
        for id in old {
            state.remove(id);
        }
        state.add(set);
        Ok(())
    }

    async fn insert_first_backup_codes(&self, set: DeviceRecord) -> Result<bool, StoreError> {
        if !matches!(set.data, DeviceData::BackupCodes(_)) {
            return Err(StoreError::InvalidRecord(
                "insert_first_backup_codes needs a backup-code record",
            ));
        }
        let mut state = self.state()?;
        if state
            .of_user(&set.user)
            .any(|d| matches!(d.data, DeviceData::BackupCodes(_)))
        {
            return Ok(false);
        }
        if state.devices.contains_key(&set.id) {
            return Err(StoreError::Conflict);
        }
        state.add(set);
        Ok(true)
    }

    async fn settle_attempt(&self, user: &UserId, attempt: &Settle) -> Result<Settlement, StoreError> {
        let mut state = self.state()?;
        if let Some(browser) = attempt.browser {
            let live = state
                .trusted
                .get(&browser)
                .is_some_and(|r| &r.user == user && r.expires_at > attempt.now);
            if !live {
                return Ok(Settlement::Stale);
            }
        }
        let counter = Counter {
            factor: attempt.factor,
            browser: attempt.browser,
        };
        let current = state.counter(user, counter);
        if current != attempt.admitted {
            return Ok(Settlement::Moved(current));
        }
        if attempt.version.is_some_and(|v| v != state.version(user)) {
            return Ok(Settlement::Stale);
        }
        let accepted = match attempt.hit {
            Some(Hit::BackupCode { device, slot }) if attempt.factor == Factor::BackupCodes => {
                match Self::owned(&mut state, user, device) {
                    Some(DeviceRecord {
                        data: DeviceData::BackupCodes(set),
                        last_used_at,
                        ..
                    }) => match set.slots.get_mut(slot) {
                        Some(s) if !s.used => {
                            s.used = true;
                            *last_used_at = Some(attempt.now);
                            true
                        }
                        _ => false,
                    },
                    _ => false,
                }
            }
            Some(Hit::TotpStep { device, step }) if attempt.factor == Factor::Totp => {
                match Self::owned(&mut state, user, device) {
                    Some(DeviceRecord {
                        data:
                            DeviceData::Totp(TotpRecord { last_step, .. })
                            | DeviceData::SentCode(SentCodeRecord {
                                last_serial: last_step, ..
                            }),
                        last_used_at,
                        confirmed,
                        ..
                    }) if last_step.is_none_or(|last| last < step) => {
                        let first = !*confirmed || last_used_at.is_none();
                        *last_step = Some(step);
                        *confirmed = true;
                        *last_used_at = Some(attempt.now);
                        if first {
                            state.bump(user);
                        }
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        let (new, settled) = if accepted {
            (attempt.on_hit, Settlement::Accepted)
        } else {
            (attempt.on_miss, Settlement::Charged)
        };
        if new == ThrottleState::default() {
            state.throttles.remove(&(user.clone(), counter));
        } else {
            state.throttles.insert((user.clone(), counter), new);
        }
        Ok(settled)
    }

    async fn throttle(&self, user: &UserId, counter: Counter) -> Result<ThrottleState, StoreError> {
        Ok(self.state()?.counter(user, counter))
    }

    async fn swap_throttle(
        &self,
        user: &UserId,
        counter: Counter,
        expected: ThrottleState,
        new: ThrottleState,
    ) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        let entry = state.throttles.entry((user.clone(), counter)).or_default();
        if *entry != expected {
            return Ok(false);
        }
        *entry = new;
        Ok(true)
    }

    async fn clear_throttle(&self, user: &UserId, counter: Counter) -> Result<(), StoreError> {
        let mut state = self.state()?;
        state.throttles.remove(&(user.clone(), counter));
        Ok(())
    }

    async fn find_credential(&self, credential_id_: &[u8]) -> Result<Option<DeviceRecord>, StoreError> {
        let state = self.state()?;
        Ok(state
            .by_credential
            .get(credential_id_)
            .and_then(|id| state.devices.get(id))
            .cloned())
    }

    async fn record_webauthn_use(
        &self,
        user: &UserId,
        id: DeviceId,
        expected_sign_count: u32,
        update: WebAuthnUse,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        let Some(device) = Self::owned(&mut state, user, id) else {
            return Ok(false);
        };
        let DeviceData::WebAuthn(cred) = &mut device.data else {
            return Ok(false);
        };
        if cred.sign_count != expected_sign_count {
            return Ok(false);
        }
        cred.sign_count = update.sign_count;
        cred.backup_eligible = update.backup_eligible;
        cred.backup_state = update.backup_state;
        device.last_used_at = Some(now);
        Ok(true)
    }

    async fn delete_device_unless_last(&self, user: &UserId, id: DeviceId) -> Result<DeleteOutcome, StoreError> {
        let mut state = self.state()?;
        let Some(target) = Self::owned(&mut state, user, id) else {
            return Ok(DeleteOutcome::NotFound);
        };
        if target.is_usable() {
            let others = state.of_user(user).filter(|d| d.id != id && d.is_usable()).count();
            if others == 0 {
                return Ok(DeleteOutcome::LastDevice);
            }
        }
        state.remove(id);
        Ok(DeleteOutcome::Deleted)
    }

    async fn issue_sent_code(
        &self,
        user: &UserId,
        id: DeviceId,
        expected: Option<&IssuedCode>,
        issued: &IssuedCode,
    ) -> Result<bool, StoreError> {
        let superseded = issued
            .serial
            .checked_sub(1)
            .ok_or(StoreError::InvalidRecord("a sent code's serial starts at 1"))?;
        let mut state = self.state()?;
        let Some(DeviceRecord {
            data: DeviceData::SentCode(record),
            ..
        }) = Self::owned(&mut state, user, id)
        else {
            return Ok(false);
        };
        if record.issued.as_ref() != expected {
            return Ok(false);
        }
        record.issued = Some(issued.clone());
        record.last_serial = Some(record.last_serial.map_or(superseded, |last| last.max(superseded)));
        state.bump(user);
        Ok(true)
    }

    async fn key_check(&self, id: &crate::seal::KeyId, check: [u8; 32]) -> Result<[u8; 32], StoreError> {
        let mut state = self.state()?;
        Ok(*state.key_checks.entry(id.clone()).or_insert(check))
    }
}

impl CeremonyStore for MemoryStore {
    async fn insert_ceremony(&self, ceremony: CeremonyRecord) -> Result<(), StoreError> {
        let mut state = self.state()?;
        if state.ceremonies.contains_key(&ceremony.id) {
            return Err(StoreError::Conflict);
        }
        state.ceremonies.insert(ceremony.id, ceremony);
        Ok(())
    }

    async fn take_ceremony(
        &self,
        id: CeremonyId,
        user: Option<&UserId>,
        kind: CeremonyKind,
        now: UnixTime,
    ) -> Result<Option<CeremonyRecord>, StoreError> {
        let mut state = self.state()?;
        let Some(found) = state.ceremonies.get(&id) else {
            return Ok(None);
        };
        if found.expires_at <= now {
            state.ceremonies.remove(&id);
            return Ok(None);
        }
        if found.user.as_ref() != user || found.kind != kind {
            return Ok(None);
        }
        Ok(state.ceremonies.remove(&id))
    }

    async fn purge_expired_ceremonies(&self, now: UnixTime) -> Result<u64, StoreError> {
        let mut state = self.state()?;
        let before = state.ceremonies.len();
        state.ceremonies.retain(|_, c| c.expires_at > now);
        Ok((before - state.ceremonies.len()) as u64)
    }
}

impl BrowserStore for MemoryStore {
    async fn insert_remembered_browser(&self, record: RememberedBrowserRecord) -> Result<(), StoreError> {
        let mut state = self.state()?;
        if state.trusted.contains_key(&record.id) {
            return Err(StoreError::Conflict);
        }
        state.trusted.insert(record.id, record);
        Ok(())
    }

    async fn remembered_browser(&self, id: RememberedBrowserId) -> Result<Option<RememberedBrowserRecord>, StoreError> {
        Ok(self.state()?.trusted.get(&id).cloned())
    }

    async fn touch_remembered_browser(
        &self,
        user: &UserId,
        id: RememberedBrowserId,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        match state.trusted.get_mut(&id) {
            Some(r) if &r.user == user => {
                r.last_used_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn list_remembered_browsers(&self, user: &UserId) -> Result<Vec<RememberedBrowserRecord>, StoreError> {
        let state = self.state()?;
        let mut list: Vec<RememberedBrowserRecord> =
            state.trusted.values().filter(|r| &r.user == user).cloned().collect();
        list.sort_by_key(|r| (r.created_at, r.id));
        Ok(list)
    }

    async fn delete_remembered_browser(&self, user: &UserId, id: RememberedBrowserId) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        if state.trusted.get(&id).is_some_and(|r| &r.user == user) {
            state.trusted.remove(&id);
            state
                .throttles
                .retain(|(owner, counter), _| !(owner == user && counter.browser == Some(id)));
            return Ok(true);
        }
        Ok(false)
    }

    async fn delete_user_remembered_browsers(&self, user: &UserId, which: Browsers) -> Result<u64, StoreError> {
        let mut state = self.state()?;
        let before = state.trusted.len();
        state.trusted.retain(|_, r| !(&r.user == user && which.includes(r)));
        if which != Browsers::Remembered {
            state
                .throttles
                .retain(|(owner, counter), _| !(owner == user && counter.browser.is_some()));
        }
        Ok((before - state.trusted.len()) as u64)
    }
}

impl AdminStore for MemoryStore {
    async fn list_totp_devices(&self, after: Option<DeviceId>, limit: usize) -> Result<Vec<DeviceRecord>, StoreError> {
        let state = self.state()?;
        let mut list: Vec<DeviceRecord> = state
            .devices
            .values()
            .filter(|d| is_otp(&d.data) && after.is_none_or(|a| d.id > a))
            .cloned()
            .collect();
        list.sort_by_key(|d| d.id);
        list.truncate(limit);
        Ok(list)
    }

    async fn list_webauthn_credentials(
        &self,
        after: Option<DeviceId>,
        limit: usize,
    ) -> Result<Vec<DeviceRecord>, StoreError> {
        let state = self.state()?;
        let mut list: Vec<DeviceRecord> = state
            .devices
            .values()
            .filter(|d| matches!(d.data, DeviceData::WebAuthn(_)) && after.is_none_or(|a| d.id > a))
            .cloned()
            .collect();
        list.sort_by_key(|d| d.id);
        list.truncate(limit);
        Ok(list)
    }

    async fn list_backup_code_sets(
        &self,
        after: Option<DeviceId>,
        limit: usize,
    ) -> Result<Vec<DeviceRecord>, StoreError> {
        let state = self.state()?;
        let mut list: Vec<DeviceRecord> = state
            .devices
            .values()
            .filter(|d| matches!(d.data, DeviceData::BackupCodes(_)) && after.is_none_or(|a| d.id > a))
            .cloned()
            .collect();
        list.sort_by_key(|d| d.id);
        list.truncate(limit);
        Ok(list)
    }

    async fn list_remembered_browsers_page(
        &self,
        after: Option<RememberedBrowserId>,
        limit: usize,
    ) -> Result<Vec<RememberedBrowserRecord>, StoreError> {
        let state = self.state()?;
        let mut list: Vec<RememberedBrowserRecord> = state
            .trusted
            .values()
            .filter(|r| after.is_none_or(|a| r.id > a))
            .cloned()
            .collect();
        list.sort_by_key(|r| r.id);
        list.truncate(limit);
        Ok(list)
    }

    async fn reseal_totp_secret(
        &self,
        user: &UserId,
        id: DeviceId,
        expected: &SealedSecret,
        new: &SealedSecret,
        fingerprint: &[u8; 32],
    ) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        let taken = fingerprint_taken(&state, user, fingerprint, Some(id));
        let Some(device) = Self::owned(&mut state, user, id) else {
            return Ok(false);
        };
        let (sealed, stored) = match &mut device.data {
            DeviceData::Totp(totp) => (&mut totp.sealed_secret, &mut totp.fingerprint),
            DeviceData::SentCode(c) => {
                if &c.sealed_destination != expected {
                    return Ok(false);
                }
                if taken {
                    return Err(StoreError::Conflict);
                }
                c.sealed_destination = new.clone();
                c.fingerprint = *fingerprint;
                return Ok(true);
            }
            _ => return Ok(false),
        };
        if &*sealed != expected {
            return Ok(false);
        }
        if taken {
            return Err(StoreError::Conflict);
        }
        *sealed = new.clone();
        *stored = Some(*fingerprint);
        Ok(true)
    }
}

impl EnrollmentStore for MemoryStore {
    async fn enrollment_deadline(
        &self,
        user: &UserId,
        proposed: UnixTime,
    ) -> Result<crate::enrollment::EnrollmentGrace, StoreError> {
        let mut state = self.state()?;
        Ok(*state
            .deadlines
            .entry(user.clone())
            .or_insert(crate::enrollment::EnrollmentGrace::new(proposed, 0)))
    }

    async fn skip_enrollment_prompt(
        &self,
        user: &UserId,
        proposed: UnixTime,
        max: u32,
    ) -> Result<Option<u32>, StoreError> {
        if max == 0 {
            return Ok(None);
        }
        let mut state = self.state()?;
        let grace = state
            .deadlines
            .entry(user.clone())
            .or_insert(crate::enrollment::EnrollmentGrace::new(proposed, 0));
        if grace.skipped >= max {
            return Ok(None);
        }
        grace.skipped += 1;
        Ok(Some(grace.skipped))
    }

    async fn set_enrollment_deadline(&self, user: &UserId, deadline: UnixTime) -> Result<(), StoreError> {
        self.state()?
            .deadlines
            .insert(user.clone(), crate::enrollment::EnrollmentGrace::new(deadline, 0));
        Ok(())
    }
}
