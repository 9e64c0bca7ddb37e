//! The conformance suite can fail: deliberately broken stores, each wrapping a `MemoryStore` and
//! getting exactly one operation wrong, are caught by the check written for that promise, and
//! every sequential check of the suite runs against each of them, so the other checks that also
//! catch it are named too; the plain `MemoryStore` passes the same checks. The racy stores are
//! right when called one at a time (they pass every sequential check) and caught by the races.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use multifactor::conformance::{self, CheckResult};
use multifactor::store::{
    CeremonyKind, CeremonyRecord, DeleteOutcome, DeviceData, DeviceRecord, ThrottleState, WebAuthnUse,
};
use multifactor::store::{Counter, Hit, Settle, Settlement};
use multifactor::{CeremonyId, DeviceId, DeviceStore, Factor, MemoryStore, Store, StoreError, UnixTime, UserId};

/// Rounds a race check gets to fail before we call the broken store "not caught".
const RACE_ROUNDS: usize = 20;

use multifactor::enrollment::EnrollmentGrace;
use multifactor::{BrowserStore, CeremonyStore, EnrollmentStore};
use multifactor_kit::forward;

/// Writes `record` back "by hand": delete, then insert. A concurrent writer may have put its own
/// copy back in between; that is a lost update the racy store silently accepts.
async fn write_back(inner: &MemoryStore, record: DeviceRecord) -> Result<(), StoreError> {
    inner.delete_device(&record.user, record.id).await?;
    match inner.insert_device(record).await {
        Ok(()) | Err(StoreError::Conflict) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Lets the other racers run between the read and the write.
async fn interleave() {
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
}

// ---------------------------------------------------------------------------------------------
// The broken stores.
// ---------------------------------------------------------------------------------------------

/// Check-then-act without atomicity: `settle_attempt` checks, yields and then trusts its
/// check; `swap_throttle` and `record_webauthn_use` read, check, yield and write back. Correct
/// when called one at a time.
#[derive(Debug, Default)]
struct ReadModifyWriteStore {
    inner: MemoryStore,
}

impl DeviceStore for ReadModifyWriteStore {
    forward!(
        verification_state,
        delete_device_unless_last,
        issue_sent_code,
        key_check,
        find_credential,
        insert_device,
        device,
        list_devices,
        rename_device,
        delete_device,
        delete_user_devices,
        delete_unconfirmed_totp,
        replace_backup_codes,
        insert_first_backup_codes,
        throttle,
        clear_throttle
    );

    async fn settle_attempt(&self, user: &UserId, attempt: &Settle) -> Result<Settlement, StoreError> {
        // Check: the counter as admitted, and the hit still unspent, read one at a time.
        let counter = Counter {
            factor: attempt.factor,
            browser: attempt.browser,
        };
        let admitted = self.inner.throttle(user, counter).await? == attempt.admitted;
        let available = match attempt.hit {
            Some(Hit::BackupCode { device, slot }) if attempt.factor == Factor::BackupCodes => matches!(
                self.inner.device(user, device).await?.map(|r| r.data),
                Some(DeviceData::BackupCodes(set)) if set.slots.get(slot).is_some_and(|s| !s.used)
            ),
            Some(Hit::TotpStep { device, step }) if attempt.factor == Factor::Totp => matches!(
                self.inner.device(user, device).await?.map(|r| r.data),
                Some(DeviceData::Totp(totp)) if totp.last_step.is_none_or(|last| last < step)
            ),
            _ => false,
        };
        interleave().await;
        // Then act, trusting the check: the inner store's settlement, except that a hit the
        // check saw unspent under an admitted counter is accepted even if, by now, the counter
        // moved or the hit was spent (which only a concurrent settlement can do). One at a
        // time, this is the inner store exactly.
        match self.inner.settle_attempt(user, attempt).await? {
            Settlement::Moved(_) | Settlement::Charged if admitted && available => Ok(Settlement::Accepted),
            settled => Ok(settled),
        }
    }

    async fn swap_throttle(
        &self,
        user: &UserId,
        counter: Counter,
        expected: ThrottleState,
        new: ThrottleState,
    ) -> Result<bool, StoreError> {
        if self.inner.throttle(user, counter).await? != expected {
            return Ok(false);
        }
        interleave().await;
        // An unconditional overwrite, built from the inner store's operations.
        self.inner.clear_throttle(user, counter).await?;
        self.inner
            .swap_throttle(user, counter, ThrottleState::default(), new)
            .await?;
        Ok(true)
    }

    async fn record_webauthn_use(
        &self,
        user: &UserId,
        id: DeviceId,
        expected: u32,
        update: WebAuthnUse,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let Some(mut record) = self.inner.device(user, id).await? else {
            return Ok(false);
        };
        let DeviceData::WebAuthn(cred) = &mut record.data else {
            return Ok(false);
        };
        if cred.sign_count != expected {
            return Ok(false);
        }
        cred.sign_count = update.sign_count;
        cred.backup_eligible = update.backup_eligible;
        cred.backup_state = update.backup_state;
        record.last_used_at = Some(now);
        interleave().await;
        write_back(&self.inner, record).await?;
        Ok(true)
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for ReadModifyWriteStore);

/// `settle_attempt` only refuses the very last TOTP step: an older one is accepted (and lowers
/// the mark).
#[derive(Debug, Default)]
struct NoHighWaterStore {
    inner: MemoryStore,
}

impl DeviceStore for NoHighWaterStore {
    forward!(DeviceStore but settle_attempt);

    async fn settle_attempt(&self, user: &UserId, attempt: &Settle) -> Result<Settlement, StoreError> {
        if let Some(Hit::TotpStep { device, step }) = attempt.hit
            && let Some(mut record) = self.inner.device(user, device).await?
            && let DeviceData::Totp(totp) = &mut record.data
            && totp.last_step.is_some_and(|last| last > step)
        {
            // Forget the mark so the older step goes through.
            totp.last_step = None;
            write_back(&self.inner, record).await?;
        }
        self.inner.settle_attempt(user, attempt).await
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for NoHighWaterStore);

/// `device()` ignores the user: any user's record with that id is returned.
#[derive(Debug, Default)]
struct ForeignOwnerStore {
    inner: MemoryStore,
    owners: Mutex<HashMap<DeviceId, UserId>>,
}

impl ForeignOwnerStore {
    fn remember(&self, record: &DeviceRecord) {
        self.owners.lock().unwrap().insert(record.id, record.user.clone());
    }
}

impl DeviceStore for ForeignOwnerStore {
    forward!(
        verification_state,
        delete_device_unless_last,
        issue_sent_code,
        key_check,
        find_credential,
        record_webauthn_use,
        settle_attempt,
        insert_first_backup_codes,
        list_devices,
        rename_device,
        delete_device,
        delete_user_devices,
        delete_unconfirmed_totp,
        throttle,
        swap_throttle,
        clear_throttle
    );

    async fn insert_device(&self, device: DeviceRecord) -> Result<(), StoreError> {
        let record = device.clone();
        self.inner.insert_device(device).await?;
        self.remember(&record);
        Ok(())
    }

    async fn replace_backup_codes(&self, set: DeviceRecord) -> Result<(), StoreError> {
        let record = set.clone();
        self.inner.replace_backup_codes(set).await?;
        self.remember(&record);
        Ok(())
    }

    async fn device(&self, _user: &UserId, id: DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        let owner = self.owners.lock().unwrap().get(&id).cloned();
        match owner {
            Some(owner) => self.inner.device(&owner, id).await,
            None => Ok(None),
        }
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for ForeignOwnerStore);

/// Backup-code sets a mutant stores beside a set the user has already (every real store keeps
/// one per user and refuses a second): what a broken replace or first-set guard would leave.
#[derive(Debug, Default)]
struct Leaked(std::sync::Mutex<Vec<DeviceRecord>>);

impl Leaked {
    /// Inserts `set` into `inner`, or keeps it here if the user has a set there already.
    async fn insert(&self, inner: &MemoryStore, set: DeviceRecord) -> Result<(), StoreError> {
        match inner.insert_device(set.clone()).await {
            Err(StoreError::Conflict) if inner.device(&set.user, set.id).await?.is_none() => {
                self.0.lock().unwrap().push(set);
                Ok(())
            }
            other => other,
        }
    }

    /// `inner`'s devices of `user` with the ones kept here, oldest first.
    async fn list(&self, inner: &MemoryStore, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        let mut list = inner.list_devices(user).await?;
        list.extend(self.0.lock().unwrap().iter().filter(|d| &d.user == user).cloned());
        list.sort_by_key(|d| (d.created_at, d.id));
        Ok(list)
    }

    /// `inner`'s device, or one kept here.
    async fn device(
        &self,
        inner: &MemoryStore,
        user: &UserId,
        id: DeviceId,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        if let Some(d) = inner.device(user, id).await? {
            return Ok(Some(d));
        }
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|d| &d.user == user && d.id == id)
            .cloned())
    }
}

/// `replace_backup_codes` inserts the new set and leaves the old one in place.
#[derive(Debug, Default)]
struct LeakyReplaceStore {
    inner: MemoryStore,
    leaked: Leaked,
}

impl DeviceStore for LeakyReplaceStore {
    forward!(
        verification_state,
        delete_device_unless_last,
        issue_sent_code,
        key_check,
        find_credential,
        record_webauthn_use,
        settle_attempt,
        insert_first_backup_codes,
        insert_device,
        rename_device,
        delete_device,
        delete_user_devices,
        delete_unconfirmed_totp,
        throttle,
        swap_throttle,
        clear_throttle
    );

    async fn replace_backup_codes(&self, set: DeviceRecord) -> Result<(), StoreError> {
        if !matches!(set.data, DeviceData::BackupCodes(_)) {
            return Err(StoreError::InvalidRecord(
                "replace_backup_codes needs a backup-code record",
            ));
        }
        self.leaked.insert(&self.inner, set).await
    }

    async fn list_devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        self.leaked.list(&self.inner, user).await
    }

    async fn device(&self, user: &UserId, id: DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        self.leaked.device(&self.inner, user, id).await
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for LeakyReplaceStore);

/// `settle_attempt` also accepts a hit on a backup-code slot that is already used.
#[derive(Debug, Default)]
struct SloppyConsumeStore {
    inner: MemoryStore,
}

impl DeviceStore for SloppyConsumeStore {
    forward!(DeviceStore but settle_attempt);

    async fn settle_attempt(&self, user: &UserId, attempt: &Settle) -> Result<Settlement, StoreError> {
        let settled = self.inner.settle_attempt(user, attempt).await?;
        // Charged by the inner store: say yes anyway if the hit names a slot that exists (so it
        // was used).
        if settled == Settlement::Charged
            && let Some(Hit::BackupCode { device, slot }) = attempt.hit
            && let Some(DeviceRecord {
                data: DeviceData::BackupCodes(set),
                ..
            }) = self.inner.device(user, device).await?
            && slot < set.slots.len()
        {
            return Ok(Settlement::Accepted);
        }
        Ok(settled)
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for SloppyConsumeStore);

/// `settle_attempt` ignores the counter a hit was admitted under (it checks against whatever the
/// counter holds now): a success can overtake counted failures.
#[derive(Debug, Default)]
struct ThrottleBlindStore {
    inner: MemoryStore,
}

impl DeviceStore for ThrottleBlindStore {
    forward!(DeviceStore but settle_attempt);

    async fn settle_attempt(&self, user: &UserId, attempt: &Settle) -> Result<Settlement, StoreError> {
        let current = self.inner.throttle(user, attempt.factor.into()).await?;
        if attempt.hit.is_none() {
            return self.inner.settle_attempt(user, attempt).await;
        }
        self.inner
            .settle_attempt(
                user,
                &Settle {
                    admitted: current,
                    on_hit: ThrottleState::default(),
                    ..*attempt
                },
            )
            .await
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for ThrottleBlindStore);

/// `verification_state` reads the TOTP counter whatever factor it is asked for.
#[derive(Debug, Default)]
struct WrongCounterStore {
    inner: MemoryStore,
}

impl DeviceStore for WrongCounterStore {
    forward!(DeviceStore but verification_state);

    async fn verification_state(
        &self,
        user: &UserId,
        factor: Factor,
    ) -> Result<multifactor::store::VerificationState, StoreError> {
        let mut read = self.inner.verification_state(user, factor).await?;
        read.throttle = self.inner.throttle(user, Factor::Totp.into()).await?;
        Ok(read)
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for WrongCounterStore);

/// `take_ceremony` hands out a copy and keeps the ceremony: it can be finished again and again.
#[derive(Debug, Default)]
struct ReusableCeremonyStore {
    inner: MemoryStore,
    ceremonies: Mutex<HashMap<CeremonyId, CeremonyRecord>>,
}

impl CeremonyStore for ReusableCeremonyStore {
    async fn insert_ceremony(&self, ceremony: CeremonyRecord) -> Result<(), StoreError> {
        match self.ceremonies.lock().unwrap().entry(ceremony.id) {
            Entry::Occupied(_) => Err(StoreError::Conflict),
            Entry::Vacant(slot) => {
                slot.insert(ceremony);
                Ok(())
            }
        }
    }

    async fn take_ceremony(
        &self,
        id: CeremonyId,
        user: Option<&UserId>,
        kind: CeremonyKind,
        now: UnixTime,
    ) -> Result<Option<CeremonyRecord>, StoreError> {
        // Every check right, but the ceremony is cloned instead of removed.
        Ok(self
            .ceremonies
            .lock()
            .unwrap()
            .get(&id)
            .filter(|c| c.user.as_ref() == user && c.kind == kind && c.expires_at > now)
            .cloned())
    }

    async fn purge_expired_ceremonies(&self, now: UnixTime) -> Result<u64, StoreError> {
        let mut ceremonies = self.ceremonies.lock().unwrap();
        let before = ceremonies.len();
        ceremonies.retain(|_, c| c.expires_at > now);
        Ok((before - ceremonies.len()) as u64)
    }
}

forward!(DeviceStore, BrowserStore, AdminStore, EnrollmentStore for ReusableCeremonyStore);

/// `insert_ceremony` looks for the id, lets others run, then writes: correct one call at a
/// time (a second insert is a `Conflict`), but concurrent inserts of one id all succeed, so a
/// passwordless ceremony could be finished more than once.
#[derive(Debug, Default)]
struct CheckThenInsertCeremonyStore {
    inner: MemoryStore,
    ceremonies: Mutex<HashMap<CeremonyId, CeremonyRecord>>,
}

impl CeremonyStore for CheckThenInsertCeremonyStore {
    async fn insert_ceremony(&self, ceremony: CeremonyRecord) -> Result<(), StoreError> {
        if self.ceremonies.lock().unwrap().contains_key(&ceremony.id) {
            return Err(StoreError::Conflict);
        }
        interleave().await;
        self.ceremonies.lock().unwrap().insert(ceremony.id, ceremony);
        Ok(())
    }

    async fn take_ceremony(
        &self,
        id: CeremonyId,
        user: Option<&UserId>,
        kind: CeremonyKind,
        now: UnixTime,
    ) -> Result<Option<CeremonyRecord>, StoreError> {
        let mut ceremonies = self.ceremonies.lock().unwrap();
        let found = ceremonies
            .get(&id)
            .is_some_and(|c| c.user.as_ref() == user && c.kind == kind && c.expires_at > now);
        Ok(if found { ceremonies.remove(&id) } else { None })
    }

    async fn purge_expired_ceremonies(&self, now: UnixTime) -> Result<u64, StoreError> {
        let mut ceremonies = self.ceremonies.lock().unwrap();
        let before = ceremonies.len();
        ceremonies.retain(|_, c| c.expires_at > now);
        Ok((before - ceremonies.len()) as u64)
    }
}

forward!(DeviceStore, BrowserStore, AdminStore, EnrollmentStore for CheckThenInsertCeremonyStore);

/// How many bytes [`NonUniqueCredentialStore`] appends to a credential id.
const SUFFIX_LEN: usize = 8;

/// `insert_device` does not enforce unique credential ids: it keeps each WebAuthn record in the
/// inner store under its credential id plus a private serial number (unique by construction),
/// and hands back the original id everywhere.
#[derive(Debug, Default)]
struct NonUniqueCredentialStore {
    inner: MemoryStore,
    serial: AtomicU64,
    /// Every WebAuthn record ever inserted, for `find_credential`.
    credentials: Mutex<Vec<(UserId, DeviceId)>>,
}

/// Strips the private suffix from a stored WebAuthn record.
fn reveal(mut record: DeviceRecord) -> DeviceRecord {
    if let DeviceData::WebAuthn(w) = &mut record.data {
        let len = w.credential_id.len().saturating_sub(SUFFIX_LEN);
        w.credential_id.truncate(len);
    }
    record
}

impl DeviceStore for NonUniqueCredentialStore {
    forward!(
        verification_state,
        delete_device_unless_last,
        issue_sent_code,
        key_check,
        record_webauthn_use,
        settle_attempt,
        rename_device,
        delete_device,
        delete_user_devices,
        delete_unconfirmed_totp,
        replace_backup_codes,
        insert_first_backup_codes,
        throttle,
        swap_throttle,
        clear_throttle
    );

    async fn insert_device(&self, mut device: DeviceRecord) -> Result<(), StoreError> {
        let webauthn = match &mut device.data {
            DeviceData::WebAuthn(w) => {
                let serial = self.serial.fetch_add(1, Ordering::Relaxed);
                w.credential_id.extend_from_slice(&serial.to_le_bytes());
                true
            }
            _ => false,
        };
        let key = (device.user.clone(), device.id);
        self.inner.insert_device(device).await?;
        if webauthn {
            self.credentials.lock().unwrap().push(key);
        }
        Ok(())
    }

    async fn device(&self, user: &UserId, id: DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        Ok(self.inner.device(user, id).await?.map(reveal))
    }

    async fn list_devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        Ok(self.inner.list_devices(user).await?.into_iter().map(reveal).collect())
    }

    async fn find_credential(&self, credential_id: &[u8]) -> Result<Option<DeviceRecord>, StoreError> {
        let candidates = self.credentials.lock().unwrap().clone();
        for (user, id) in candidates {
            if let Some(record) = self.device(&user, id).await?
                && matches!(&record.data, DeviceData::WebAuthn(w) if w.credential_id == credential_id)
            {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for NonUniqueCredentialStore);

/// `record_webauthn_use` ignores the expected counter: it swaps from whatever is stored.
#[derive(Debug, Default)]
struct BlindCounterStore {
    inner: MemoryStore,
}

impl DeviceStore for BlindCounterStore {
    forward!(DeviceStore but record_webauthn_use);

    async fn record_webauthn_use(
        &self,
        user: &UserId,
        id: DeviceId,
        _expected: u32,
        update: WebAuthnUse,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let current = match self.inner.device(user, id).await? {
            Some(DeviceRecord {
                data: DeviceData::WebAuthn(w),
                ..
            }) => w.sign_count,
            _ => return Ok(false),
        };
        self.inner.record_webauthn_use(user, id, current, update, now).await
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for BlindCounterStore);

/// `delete_device_unless_last` checks, then acts, without atomicity: it reads the user's
/// methods, yields, then deletes plainly. Correct when called one at a time.
#[derive(Debug, Default)]
struct UnguardedDeleteStore {
    inner: MemoryStore,
}

impl DeviceStore for UnguardedDeleteStore {
    forward!(DeviceStore but delete_device_unless_last);

    async fn delete_device_unless_last(&self, user: &UserId, id: DeviceId) -> Result<DeleteOutcome, StoreError> {
        let methods = self.inner.list_devices(user).await?;
        let Some(target) = methods.iter().find(|d| d.id == id) else {
            return Ok(DeleteOutcome::NotFound);
        };
        // Usable: confirmed, and for a backup-code set with a code left.
        let usable = |d: &DeviceRecord| {
            d.confirmed && !matches!(&d.data, DeviceData::BackupCodes(set) if set.slots.iter().all(|s| s.used))
        };
        if usable(target) && !methods.iter().any(|d| d.id != id && usable(d)) {
            return Ok(DeleteOutcome::LastDevice);
        }
        tokio::task::yield_now().await;
        Ok(if self.inner.delete_device(user, id).await? {
            DeleteOutcome::Deleted
        } else {
            DeleteOutcome::NotFound
        })
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for UnguardedDeleteStore);

/// `delete_device_unless_last` has no guard: it deletes the last confirmed method too.
#[derive(Debug, Default)]
struct NoGuardStore {
    inner: MemoryStore,
}

impl DeviceStore for NoGuardStore {
    forward!(DeviceStore but delete_device_unless_last);

    async fn delete_device_unless_last(&self, user: &UserId, id: DeviceId) -> Result<DeleteOutcome, StoreError> {
        Ok(if self.inner.delete_device(user, id).await? {
            DeleteOutcome::Deleted
        } else {
            DeleteOutcome::NotFound
        })
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for NoGuardStore);

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

/// The names of the sequential (non-race) checks that fail on `store`, with their messages:
/// every sequential check of the suite's one list.
async fn failing_sequential_checks<S: Store>(store: &S) -> Vec<(&'static str, String)> {
    let mut failed = Vec::new();
    macro_rules! run {
        (; sequential: [$($name:ident),*]; race: [$($race:ident),*]) => {
            $(
                if let Err(e) = conformance::$name(store).await {
                    failed.push((stringify!($name), e.to_string()));
                }
            )*
        };
    }
    multifactor::conformance_checks!(run!());
    failed
}

/// Asserts that the check `name` fails on `store` with a message containing `needle`, and
/// that the other checks that fail are exactly `also` (in the suite's order): every sequential
/// check runs against every broken store, so a check that starts or stops catching one shows.
async fn assert_caught<S: Store>(store: &S, name: &str, needle: &str, also: &[&str]) {
    let failed = failing_sequential_checks(store).await;
    let Some((_, message)) = failed.iter().find(|(n, _)| *n == name) else {
        panic!("{name} did not catch the broken store; failed: {failed:?}");
    };
    assert!(
        message.contains(needle),
        "{name} failed for the wrong reason: {message:?} (expected it to mention {needle:?})"
    );
    let others: Vec<&str> = failed.iter().map(|(n, _)| *n).filter(|n| *n != name).collect();
    assert_eq!(others, also, "besides {name}: {failed:?}");
}

/// Asserts that exactly the check `name` fails on `store`, with a message containing `needle`.
async fn assert_only_check_fails<S: Store>(store: &S, name: &str, needle: &str) {
    assert_caught(store, name, needle, &[]).await;
}

/// Runs a race check up to [`RACE_ROUNDS`] times and returns the first failure's message.
async fn first_race_failure<S, F, Fut>(store: &Arc<S>, check: F) -> Option<String>
where
    S: Store + 'static,
    F: Fn(Arc<S>) -> Fut,
    Fut: Future<Output = CheckResult>,
{
    for _ in 0..RACE_ROUNDS {
        if let Err(e) = check(store.clone()).await {
            return Some(e.to_string());
        }
    }
    None
}

/// Asserts that a race check fails on `store` within [`RACE_ROUNDS`] rounds, because more than
/// one concurrent call won, or (`race_totp_step` only) because a racer's write was lost and the
/// highest step is not the one recorded.
async fn assert_race_caught<S, F, Fut>(store: &Arc<S>, name: &str, check: F)
where
    S: Store + 'static,
    F: Fn(Arc<S>) -> Fut,
    Fut: Future<Output = CheckResult>,
{
    let Some(message) = first_race_failure(store, check).await else {
        panic!("{name} passed {RACE_ROUNDS} rounds on a broken store");
    };
    assert!(
        !message.contains("unexpected store error"),
        "{name} failed for the wrong reason: {message:?}"
    );
    if name == "race_totp_step" && message.starts_with("after racing steps the mark is") {
        assert!(message.ends_with("not the highest"), "{name}: {message:?}");
        return;
    }
    assert!(
        message.contains("concurrent"),
        "{name} failed for the wrong reason: {message:?}"
    );
    let wins: usize = message
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("{name}: no win count in {message:?}"));
    assert!(wins > 1, "{name}: expected several winners, got {message:?}");
}

/// Asserts that a race check passes every one of [`RACE_ROUNDS`] rounds on `store`.
async fn assert_race_passes<S, F, Fut>(store: &Arc<S>, name: &str, check: F)
where
    S: Store + 'static,
    F: Fn(Arc<S>) -> Fut,
    Fut: Future<Output = CheckResult>,
{
    if let Some(message) = first_race_failure(store, check).await {
        panic!("{name} failed on a correct store: {message}");
    }
}

// ---------------------------------------------------------------------------------------------
// The control: the real MemoryStore passes what the broken stores fail.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_every_sequential_check() {
    let failed = failing_sequential_checks(&MemoryStore::new()).await;
    assert!(failed.is_empty(), "MemoryStore failed {failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_the_race_checks() {
    let store = Arc::new(MemoryStore::new());
    assert_race_passes(&store, "race_backup_code", conformance::race_backup_code).await;
    assert_race_passes(&store, "race_totp_step", conformance::race_totp_step).await;
    assert_race_passes(&store, "race_throttle_swap", conformance::race_throttle_swap).await;
    assert_race_passes(
        &store,
        "race_success_against_failures",
        conformance::race_success_against_failures,
    )
    .await;
    assert_race_passes(
        &store,
        "race_replace_backup_codes",
        conformance::race_replace_backup_codes,
    )
    .await;
    assert_race_passes(&store, "race_take_ceremony", conformance::race_take_ceremony).await;
    assert_race_passes(
        &store,
        "race_passwordless_marker",
        conformance::race_passwordless_marker,
    )
    .await;
    assert_race_passes(&store, "race_webauthn_counter", conformance::race_webauthn_counter).await;
    assert_race_passes(
        &store,
        "race_unique_credential_id",
        conformance::race_unique_credential_id,
    )
    .await;
    assert_race_passes(&store, "race_delete_unless_last", conformance::race_delete_unless_last).await;
    assert_race_passes(&store, "race_totp_fingerprint", conformance::race_totp_fingerprint).await;
}

// ---------------------------------------------------------------------------------------------
// 1. Read-modify-write: correct one call at a time, caught only by the race checks.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_modify_write_store_passes_the_sequential_checks() {
    let failed = failing_sequential_checks(&ReadModifyWriteStore::default()).await;
    assert!(
        failed.is_empty(),
        "the racy store is meant to be right when not raced: {failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_backup_code_catches_read_modify_write() {
    let store = Arc::new(ReadModifyWriteStore::default());
    assert_race_caught(&store, "race_backup_code", conformance::race_backup_code).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_totp_step_catches_read_modify_write() {
    let store = Arc::new(ReadModifyWriteStore::default());
    assert_race_caught(&store, "race_totp_step", conformance::race_totp_step).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_throttle_swap_catches_read_modify_write() {
    let store = Arc::new(ReadModifyWriteStore::default());
    assert_race_caught(&store, "race_throttle_swap", conformance::race_throttle_swap).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_webauthn_counter_catches_read_modify_write() {
    let store = Arc::new(ReadModifyWriteStore::default());
    assert_race_caught(&store, "race_webauthn_counter", conformance::race_webauthn_counter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_replace_backup_codes_passes_read_modify_write() {
    // Its replace is the inner store's atomic one, so this race check has nothing to find.
    let store = Arc::new(ReadModifyWriteStore::default());
    assert_race_passes(
        &store,
        "race_replace_backup_codes",
        conformance::race_replace_backup_codes,
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 2.-5. Single-operation bugs, each caught by its own sequential check and by no other.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn totp_step_high_water_mark_catches_an_accepted_older_step() {
    let store = NoHighWaterStore::default();
    let err = conformance::totp_step_high_water_mark(&store).await.unwrap_err();
    assert!(err.to_string().contains("older step"), "wrong reason: {err}");
    assert_caught(
        &store,
        "totp_step_high_water_mark",
        "older step",
        &["counter_based_otp", "settle_attempt"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn insert_get_list_catches_a_foreign_owners_device() {
    let store = ForeignOwnerStore::default();
    let err = conformance::insert_get_list(&store).await.unwrap_err();
    assert!(err.to_string().contains("another user's device"), "wrong reason: {err}");
    assert_only_check_fails(&store, "insert_get_list", "another user's device").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replace_backup_codes_catches_a_leaked_old_set() {
    let store = LeakyReplaceStore::default();
    let err = conformance::replace_backup_codes(&store).await.unwrap_err();
    assert!(err.to_string().contains("after replace"), "wrong reason: {err}");
    assert_caught(
        &store,
        "replace_backup_codes",
        "after replace",
        &["settle_checks_devices"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_replace_backup_codes_catches_a_leaked_old_set() {
    let store = Arc::new(LeakyReplaceStore::default());
    let err = conformance::race_replace_backup_codes(store).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&format!("{} backup-code sets left", conformance::RACERS)),
        "wrong reason: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consume_backup_code_once_catches_a_second_consume() {
    let store = SloppyConsumeStore::default();
    let err = conformance::consume_backup_code_once(&store).await.unwrap_err();
    assert!(err.to_string().contains("twice"), "wrong reason: {err}");
    assert_caught(
        &store,
        "consume_backup_code_once",
        "twice",
        &["prehashed_backup_codes", "settle_attempt"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_backup_code_catches_a_second_consume() {
    // Every racer "wins": the slot is used after the first, and the store says yes regardless.
    let store = Arc::new(SloppyConsumeStore::default());
    let err = conformance::race_backup_code(store).await.unwrap_err();
    let expected = format!("{n} of {n} concurrent consumes", n = conformance::RACERS);
    assert!(err.to_string().contains(&expected), "wrong reason: {err}");
}

// ---------------------------------------------------------------------------------------------
// 6.-8. WebAuthn bugs: a reusable ceremony, a shared credential id, a blind counter write.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ceremony_take_once_catches_a_reusable_ceremony() {
    let store = ReusableCeremonyStore::default();
    let err = conformance::ceremony_take_once(&store).await.unwrap_err();
    assert!(err.to_string().contains("taken twice"), "wrong reason: {err}");
    assert_only_check_fails(&store, "ceremony_take_once", "taken twice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_take_ceremony_catches_a_reusable_ceremony() {
    // Every racer gets it: nothing is ever removed.
    let store = Arc::new(ReusableCeremonyStore::default());
    let err = conformance::race_take_ceremony(store.clone()).await.unwrap_err();
    let expected = format!("{n} of {n} concurrent takes", n = conformance::RACERS);
    assert!(err.to_string().contains(&expected), "wrong reason: {err}");
    assert_race_caught(&store, "race_take_ceremony", conformance::race_take_ceremony).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_passwordless_marker_catches_a_check_then_insert() {
    let store = Arc::new(CheckThenInsertCeremonyStore::default());
    // One call at a time it is right: every sequential check passes.
    let failed = failing_sequential_checks(&*store).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_race_caught(
        &store,
        "race_passwordless_marker",
        conformance::race_passwordless_marker,
    )
    .await;
    assert_race_passes(&store, "race_take_ceremony", conformance::race_take_ceremony).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webauthn_credentials_catches_a_shared_credential_id() {
    let store = NonUniqueCredentialStore::default();
    let err = conformance::webauthn_credentials(&store).await.unwrap_err();
    assert!(
        err.to_string().contains("existing credential id"),
        "wrong reason: {err}"
    );
    assert_caught(
        &store,
        "webauthn_credentials",
        "existing credential id",
        &["rotation_paging"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_unique_credential_id_catches_a_shared_credential_id() {
    let store = Arc::new(NonUniqueCredentialStore::default());
    let err = conformance::race_unique_credential_id(store.clone()).await.unwrap_err();
    let expected = format!("{n} of {n} concurrent inserts", n = conformance::RACERS);
    assert!(err.to_string().contains(&expected), "wrong reason: {err}");
    assert_race_caught(
        &store,
        "race_unique_credential_id",
        conformance::race_unique_credential_id,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webauthn_counter_compare_and_swap_catches_a_blind_counter_write() {
    let store = BlindCounterStore::default();
    let err = conformance::webauthn_counter_compare_and_swap(&store)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("wrong expected counter"),
        "wrong reason: {err}"
    );
    assert_only_check_fails(&store, "webauthn_counter_compare_and_swap", "wrong expected counter").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_webauthn_counter_catches_a_blind_counter_write() {
    let store = Arc::new(BlindCounterStore::default());
    assert_race_caught(&store, "race_webauthn_counter", conformance::race_webauthn_counter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webauthn_race_checks_pass_where_the_store_forwards() {
    // Each broken store gets one WebAuthn operation wrong; the race checks of the others pass.
    let reusable = Arc::new(ReusableCeremonyStore::default());
    assert_race_passes(&reusable, "race_webauthn_counter", conformance::race_webauthn_counter).await;
    assert_race_passes(
        &reusable,
        "race_unique_credential_id",
        conformance::race_unique_credential_id,
    )
    .await;
    let shared = Arc::new(NonUniqueCredentialStore::default());
    assert_race_passes(&shared, "race_take_ceremony", conformance::race_take_ceremony).await;
    assert_race_passes(&shared, "race_webauthn_counter", conformance::race_webauthn_counter).await;
    let blind = Arc::new(BlindCounterStore::default());
    assert_race_passes(&blind, "race_take_ceremony", conformance::race_take_ceremony).await;
    assert_race_passes(
        &blind,
        "race_unique_credential_id",
        conformance::race_unique_credential_id,
    )
    .await;
    let racy = Arc::new(ReadModifyWriteStore::default());
    assert_race_passes(&racy, "race_take_ceremony", conformance::race_take_ceremony).await;
    assert_race_passes(
        &racy,
        "race_unique_credential_id",
        conformance::race_unique_credential_id,
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 9.-10. The last-method guard: a racy check-then-delete, and no guard at all.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unguarded_delete_store_passes_the_sequential_checks() {
    let failed = failing_sequential_checks(&UnguardedDeleteStore::default()).await;
    assert!(
        failed.is_empty(),
        "the racy guard is meant to be right when not raced: {failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_delete_unless_last_catches_a_check_then_delete() {
    let store = Arc::new(UnguardedDeleteStore::default());
    assert_race_caught(&store, "race_delete_unless_last", conformance::race_delete_unless_last).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_unless_last_catches_a_missing_guard() {
    let store = NoGuardStore::default();
    let err = conformance::delete_unless_last(&store).await.unwrap_err();
    assert!(err.to_string().contains("not LastDevice"), "wrong reason: {err}");
    assert_caught(&store, "delete_unless_last", "not LastDevice", &["last_usable_device"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_delete_unless_last_catches_a_missing_guard() {
    // Both halves delete their method: two winners, no method left.
    let store = Arc::new(NoGuardStore::default());
    let err = conformance::race_delete_unless_last(store.clone()).await.unwrap_err();
    assert!(err.to_string().starts_with("2 of "), "wrong reason: {err}");
    assert_race_caught(&store, "race_delete_unless_last", conformance::race_delete_unless_last).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_delete_unless_last_passes_where_the_store_forwards() {
    // The other broken stores forward the guard to the atomic one.
    let racy = Arc::new(ReadModifyWriteStore::default());
    assert_race_passes(&racy, "race_delete_unless_last", conformance::race_delete_unless_last).await;
    let blind = Arc::new(BlindCounterStore::default());
    assert_race_passes(&blind, "race_delete_unless_last", conformance::race_delete_unless_last).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn success_against_throttle_catches_a_throttle_blind_store() {
    let store = ThrottleBlindStore::default();
    assert_caught(
        &store,
        "success_against_throttle",
        "while failures were counted",
        &["known_browser_counters", "settle_attempt"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_success_against_failures_catches_a_throttle_blind_store() {
    let store = Arc::new(ThrottleBlindStore::default());
    assert_race_caught(
        &store,
        "race_success_against_failures",
        conformance::race_success_against_failures,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_success_against_failures_catches_read_modify_write() {
    let store = Arc::new(ReadModifyWriteStore::default());
    assert_race_caught(
        &store,
        "race_success_against_failures",
        conformance::race_success_against_failures,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verification_state_catches_another_factors_counter() {
    assert_only_check_fails(&WrongCounterStore::default(), "verification_state", "counter as").await;
}

/// The settlement check on its own: the memory store passes it, and each store that gets one
/// part of `settle_attempt` wrong fails it for that reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settle_attempt_catches_each_broken_settlement() {
    conformance::settle_attempt(&MemoryStore::new()).await.unwrap();
    let cases: [(&str, CheckResult); 3] = [
        (
            "was not charged: Accepted",
            conformance::settle_attempt(&SloppyConsumeStore::default()).await,
        ),
        (
            "while the counter held",
            conformance::settle_attempt(&ThrottleBlindStore::default()).await,
        ),
        (
            "an older TOTP step was not charged",
            conformance::settle_attempt(&NoHighWaterStore::default()).await,
        ),
    ];
    for (needle, result) in cases {
        let message = result.expect_err(needle).to_string();
        assert!(message.contains(needle), "{message:?} should mention {needle:?}");
    }
}

/// The burst check: the memory store passes it; a read-modify-write settlement lets more than
/// one attempt of a burst settle against the same counter state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_settle_burst_catches_read_modify_write() {
    let good = Arc::new(MemoryStore::new());
    assert!(
        first_race_failure(&good, conformance::race_settle_burst)
            .await
            .is_none()
    );
    let store = Arc::new(ReadModifyWriteStore::default());
    let message = first_race_failure(&store, conformance::race_settle_burst)
        .await
        .expect("race_settle_burst passed on a read-modify-write store");
    assert!(
        message.contains("admitted under one counter state settled"),
        "{message:?}"
    );
}

/// The uniformity check passes on the memory store, and fails on a store that makes a refused
/// hit cost more than a refused miss (here: one more read after a moved counter).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uniform_settlement_catches_a_store_that_works_harder_on_a_hit() {
    conformance::uniform_settlement(Arc::new(MemoryStore::new()))
        .await
        .unwrap();
    let err = conformance::uniform_settlement(Arc::new(CountingHitStore::default()))
        .await
        .expect_err("a store that reads again on a refused hit passed");
    assert!(err.to_string().contains("differ"), "{err}");
}

/// `settle_attempt` is right, but a refused hit costs it one more call than a refused miss
/// (it re-reads the counter), through the counting wrapper that the uniformity check puts
/// around it.
#[derive(Debug, Default)]
struct CountingHitStore {
    inner: MemoryStore,
}

impl DeviceStore for CountingHitStore {
    forward!(DeviceStore but settle_attempt);

    async fn settle_attempt(&self, user: &UserId, attempt: &Settle) -> Result<Settlement, StoreError> {
        let settled = self.inner.settle_attempt(user, attempt).await?;
        if attempt.hit.is_some() && matches!(settled, Settlement::Moved(_)) {
            // Extra work only for a hit: visible as time, and here as a settlement that
            // reports a different counter than the one a miss would see.
            return Ok(Settlement::Moved(ThrottleState {
                failures: u32::MAX,
                ..ThrottleState::default()
            }));
        }
        Ok(settled)
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for CountingHitStore);

/// `delete_unconfirmed_totp` lists the unconfirmed devices, yields, then deletes each by id: a
/// device confirmed in between is deleted anyway.
#[derive(Debug, Default)]
struct ListThenDeleteStore {
    inner: MemoryStore,
}

impl DeviceStore for ListThenDeleteStore {
    forward!(DeviceStore but delete_unconfirmed_totp);

    async fn delete_unconfirmed_totp(&self, user: &UserId, keep: DeviceId) -> Result<u64, StoreError> {
        let stale: Vec<DeviceId> = self
            .inner
            .list_devices(user)
            .await?
            .into_iter()
            .filter(|d| d.id != keep && !d.confirmed && matches!(d.data, DeviceData::Totp(_)))
            .map(|d| d.id)
            .collect();
        interleave().await;
        let mut deleted = 0;
        for id in stale {
            if self.inner.delete_device(user, id).await? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for ListThenDeleteStore);

/// The clean-up race: passes on the memory store, caught on a list-then-delete clean-up, which
/// deletes a device confirmed between its list and its delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_confirm_against_cleanup_catches_list_then_delete() {
    let good = Arc::new(MemoryStore::new());
    assert!(
        first_race_failure(&good, conformance::race_confirm_against_cleanup)
            .await
            .is_none()
    );
    conformance::delete_unconfirmed_totp(&ListThenDeleteStore::default())
        .await
        .unwrap();
    let store = Arc::new(ListThenDeleteStore::default());
    let message = first_race_failure(&store, conformance::race_confirm_against_cleanup)
        .await
        .expect("race_confirm_against_cleanup passed on a list-then-delete store");
    assert!(message.contains("deleted the device"), "{message:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cached_verification_catches_a_store_that_ignores_the_devices_version() {
    conformance::cached_verification(Arc::new(MemoryStore::new()))
        .await
        .unwrap();
    let err = conformance::cached_verification(Arc::new(VersionBlindStore::default()))
        .await
        .expect_err("a store that settles against stale methods passed");
    assert!(err.to_string().contains("ChangedElsewhere"), "{err}");
    let err = conformance::settle_checks_devices(&VersionBlindStore::default())
        .await
        .expect_err("a store that ignores the devices version passed");
    assert!(err.to_string().contains("another devices version"), "{err}");
    let err = conformance::settle_checks_devices(&FrozenVersionStore::default())
        .await
        .expect_err("a store whose devices version never moves passed");
    assert!(err.to_string().contains("left the version as it was"), "{err}");
}

/// `settle_attempt` is right except that it never checks the devices version the code was
/// evaluated against: a verification from an out-of-date copy settles as if it were current.
#[derive(Debug, Default)]
struct VersionBlindStore {
    inner: MemoryStore,
}

impl DeviceStore for VersionBlindStore {
    forward!(DeviceStore but settle_attempt);

    async fn settle_attempt(&self, user: &UserId, attempt: &Settle) -> Result<Settlement, StoreError> {
        let blind = Settle {
            version: None,
            ..*attempt
        };
        self.inner.settle_attempt(user, &blind).await
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for VersionBlindStore);

/// A devices version that never moves: every change of the devices is invisible to a
/// settlement (it compares the version it reports, which is always the same).
#[derive(Debug, Default)]
struct FrozenVersionStore {
    inner: MemoryStore,
}

impl DeviceStore for FrozenVersionStore {
    forward!(
        delete_device_unless_last,
        issue_sent_code,
        key_check,
        find_credential,
        record_webauthn_use,
        insert_device,
        device,
        list_devices,
        rename_device,
        delete_device,
        delete_user_devices,
        delete_unconfirmed_totp,
        replace_backup_codes,
        insert_first_backup_codes,
        throttle,
        swap_throttle,
        clear_throttle
    );

    async fn verification_state(
        &self,
        user: &UserId,
        factor: Factor,
    ) -> Result<multifactor::store::VerificationState, StoreError> {
        let mut read = self.inner.verification_state(user, factor).await?;
        read.version = multifactor::store::DevicesVersion::default();
        Ok(read)
    }

    async fn settle_attempt(&self, user: &UserId, attempt: &Settle) -> Result<Settlement, StoreError> {
        let frozen = Settle {
            version: attempt.version.filter(|v| v.0 != 0),
            ..*attempt
        };
        self.inner.settle_attempt(user, &frozen).await
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for FrozenVersionStore);

// ---------------------------------------------------------------------------------------------
// Known browsers' own counters.
// ---------------------------------------------------------------------------------------------

/// One way to get known browsers' counters wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KnownBrowserFlaw {
    /// Settles a known browser's attempt on the user's counter for unknown browsers.
    IgnoresTheBrowser,
    /// Charges a known browser's counter whether or not its record still lives.
    NoLivenessCheck,
    /// Deletes a browser's record but leaves its counters behind.
    KeepsCounters,
    /// Checks that the record lives, lets others run, then charges: a revocation in between
    /// is missed.
    CheckThenCharge,
}

/// `settle_attempt` and `delete_remembered_browser` with one [`KnownBrowserFlaw`]; everything
/// else forwards to a correct store.
#[derive(Debug)]
struct KnownBrowserStore {
    inner: MemoryStore,
    flaw: KnownBrowserFlaw,
}

impl KnownBrowserStore {
    fn new(flaw: KnownBrowserFlaw) -> Self {
        Self {
            inner: MemoryStore::new(),
            flaw,
        }
    }

    /// Charges `attempt` on the browser's counter by compare-and-swap, checking no record.
    async fn charge_blindly(&self, user: &UserId, attempt: &Settle) -> Result<Settlement, StoreError> {
        let counter = Counter {
            factor: attempt.factor,
            browser: attempt.browser,
        };
        let current = self.inner.throttle(user, counter).await?;
        if current != attempt.admitted {
            return Ok(Settlement::Moved(current));
        }
        self.inner
            .swap_throttle(user, counter, attempt.admitted, attempt.on_miss)
            .await?;
        Ok(Settlement::Charged)
    }
}

impl DeviceStore for KnownBrowserStore {
    forward!(DeviceStore but settle_attempt);

    async fn settle_attempt(&self, user: &UserId, attempt: &Settle) -> Result<Settlement, StoreError> {
        let Some(browser) = attempt.browser else {
            return self.inner.settle_attempt(user, attempt).await;
        };
        match self.flaw {
            KnownBrowserFlaw::IgnoresTheBrowser => {
                let unknown = Settle {
                    browser: None,
                    ..*attempt
                };
                self.inner.settle_attempt(user, &unknown).await
            }
            KnownBrowserFlaw::NoLivenessCheck if attempt.hit.is_none() => self.charge_blindly(user, attempt).await,
            KnownBrowserFlaw::CheckThenCharge if attempt.hit.is_none() => {
                let live = self
                    .inner
                    .remembered_browser(browser)
                    .await?
                    .is_some_and(|r| &r.user == user && r.expires_at > attempt.now);
                if !live {
                    return Ok(Settlement::Stale);
                }
                interleave().await;
                self.charge_blindly(user, attempt).await
            }
            _ => self.inner.settle_attempt(user, attempt).await,
        }
    }
}

impl BrowserStore for KnownBrowserStore {
    forward!(
        insert_remembered_browser,
        remembered_browser,
        touch_remembered_browser,
        list_remembered_browsers,
        delete_user_remembered_browsers
    );

    async fn delete_remembered_browser(
        &self,
        user: &UserId,
        id: multifactor::RememberedBrowserId,
    ) -> Result<bool, StoreError> {
        if self.flaw != KnownBrowserFlaw::KeepsCounters {
            return self.inner.delete_remembered_browser(user, id).await;
        }
        let counter = Counter::known(Factor::Totp, id);
        let kept = self.inner.throttle(user, counter).await?;
        let deleted = self.inner.delete_remembered_browser(user, id).await?;
        self.inner
            .swap_throttle(user, counter, ThrottleState::default(), kept)
            .await?;
        Ok(deleted)
    }
}

forward!(CeremonyStore, AdminStore, EnrollmentStore for KnownBrowserStore);

/// Each flaw of a known browser's counter is caught, for its own reason; the correct store
/// passes both checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn known_browser_checks_catch_each_flaw() {
    conformance::known_browser_counters(&MemoryStore::new()).await.unwrap();
    let good = Arc::new(MemoryStore::new());
    assert!(
        first_race_failure(&good, conformance::race_known_browser_revoke)
            .await
            .is_none()
    );
    for (flaw, needle) in [
        (KnownBrowserFlaw::IgnoresTheBrowser, "does not hold the charge"),
        (KnownBrowserFlaw::NoLivenessCheck, "another user's browser settled"),
        (KnownBrowserFlaw::KeepsCounters, "counter stayed behind"),
    ] {
        let err = conformance::known_browser_counters(&KnownBrowserStore::new(flaw))
            .await
            .expect_err("a broken store passed");
        assert!(err.to_string().contains(needle), "{flaw:?}: {err}");
    }
    // The check-then-charge store is right one call at a time, and caught by the race.
    conformance::known_browser_counters(&KnownBrowserStore::new(KnownBrowserFlaw::CheckThenCharge))
        .await
        .unwrap();
    let racy = Arc::new(KnownBrowserStore::new(KnownBrowserFlaw::CheckThenCharge));
    let message = first_race_failure(&racy, conformance::race_known_browser_revoke)
        .await
        .expect("race_known_browser_revoke passed on a check-then-charge store");
    assert!(message.contains("charged a revoked browser's counter"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// A first backup-code set only while the user has none.
// ---------------------------------------------------------------------------------------------

/// `insert_first_backup_codes` without its guard (`checks: false`: it inserts whatever the user
/// has), or with the guard as a separate read before the insert (`checks: true`: correct one
/// call at a time, racy).
#[derive(Debug, Default)]
struct FirstSetStore {
    inner: MemoryStore,
    leaked: Leaked,
    checks: bool,
}

impl DeviceStore for FirstSetStore {
    forward!(
        verification_state,
        delete_device_unless_last,
        issue_sent_code,
        key_check,
        find_credential,
        record_webauthn_use,
        settle_attempt,
        insert_device,
        rename_device,
        delete_device,
        delete_user_devices,
        delete_unconfirmed_totp,
        replace_backup_codes,
        throttle,
        swap_throttle,
        clear_throttle
    );

    async fn insert_first_backup_codes(&self, set: DeviceRecord) -> Result<bool, StoreError> {
        if !matches!(set.data, DeviceData::BackupCodes(_)) {
            return Err(StoreError::InvalidRecord("not a backup-code record"));
        }
        if self.checks {
            let has = self
                .leaked
                .list(&self.inner, &set.user)
                .await?
                .iter()
                .any(|d| matches!(d.data, DeviceData::BackupCodes(_)));
            if has {
                return Ok(false);
            }
            interleave().await;
        }
        self.leaked.insert(&self.inner, set).await?;
        Ok(true)
    }

    async fn list_devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        self.leaked.list(&self.inner, user).await
    }

    async fn device(&self, user: &UserId, id: DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        self.leaked.device(&self.inner, user, id).await
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for FirstSetStore);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_backup_code_checks_catch_a_missing_or_racy_guard() {
    conformance::insert_first_backup_codes(&MemoryStore::new())
        .await
        .unwrap();
    assert!(
        first_race_failure(&Arc::new(MemoryStore::new()), conformance::race_first_backup_codes)
            .await
            .is_none()
    );
    let err = conformance::insert_first_backup_codes(&FirstSetStore::default())
        .await
        .expect_err("a store without the guard passed");
    assert!(err.to_string().contains("a second set was inserted"), "{err}");
    let racy = FirstSetStore {
        checks: true,
        ..FirstSetStore::default()
    };
    conformance::insert_first_backup_codes(&racy).await.unwrap();
    let message = first_race_failure(&Arc::new(racy), conformance::race_first_backup_codes)
        .await
        .expect("race_first_backup_codes passed on a check-then-insert store");
    assert!(message.contains("concurrent first sets inserted"), "{message}");
}

/// `key_check` stores whatever it is given last: another key's bytes under the same id would
/// pass the service's check.
#[derive(Debug, Default)]
struct KeyCheckOverwriteStore {
    inner: MemoryStore,
}

impl DeviceStore for KeyCheckOverwriteStore {
    forward!(DeviceStore but key_check);

    async fn key_check(&self, _: &multifactor::KeyId, check: [u8; 32]) -> Result<[u8; 32], StoreError> {
        Ok(check)
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for KeyCheckOverwriteStore);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_checks_catch_a_store_that_overwrites() {
    conformance::key_checks(&MemoryStore::new()).await.unwrap();
    let err = conformance::key_checks(&KeyCheckOverwriteStore::default())
        .await
        .expect_err("an overwriting store passed");
    assert!(err.to_string().contains("replaced the first"), "{err}");
}

/// `enrollment_deadline` looks for a stored deadline, lets others run, then stores its own:
/// right one call at a time, but racing first asks each get their own deadline.
#[derive(Debug, Default)]
struct CheckThenStoreDeadlineStore {
    inner: MemoryStore,
    deadlines: Mutex<HashMap<UserId, EnrollmentGrace>>,
}

impl EnrollmentStore for CheckThenStoreDeadlineStore {
    async fn enrollment_deadline(&self, user: &UserId, proposed: UnixTime) -> Result<EnrollmentGrace, StoreError> {
        if let Some(stored) = self.deadlines.lock().unwrap().get(user) {
            return Ok(*stored);
        }
        interleave().await;
        let grace = EnrollmentGrace::new(proposed, 0);
        self.deadlines.lock().unwrap().insert(user.clone(), grace);
        Ok(grace)
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
        let mut deadlines = self.deadlines.lock().unwrap();
        let grace = deadlines
            .entry(user.clone())
            .or_insert(EnrollmentGrace::new(proposed, 0));
        if grace.skipped >= max {
            return Ok(None);
        }
        grace.skipped += 1;
        Ok(Some(grace.skipped))
    }

    async fn set_enrollment_deadline(&self, user: &UserId, deadline: UnixTime) -> Result<(), StoreError> {
        self.deadlines
            .lock()
            .unwrap()
            .insert(user.clone(), EnrollmentGrace::new(deadline, 0));
        Ok(())
    }
}

forward!(DeviceStore, CeremonyStore, BrowserStore, AdminStore for CheckThenStoreDeadlineStore);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_enrollment_deadline_catches_a_check_then_store() {
    // One call at a time it is right: the sequential check passes.
    let store = Arc::new(CheckThenStoreDeadlineStore::default());
    conformance::enrollment_deadlines(&*store).await.unwrap();
    assert_race_caught(
        &store,
        "race_enrollment_deadline",
        conformance::race_enrollment_deadline,
    )
    .await;
    assert_race_passes(
        &Arc::new(MemoryStore::new()),
        "race_enrollment_deadline",
        conformance::race_enrollment_deadline,
    )
    .await;
}

/// `skip_enrollment_prompt` reads the count, lets others run, then writes the count plus one:
/// right one call at a time, but racing skips are all counted as the same one and more than
/// the allowance get through.
#[derive(Debug, Default)]
struct ReadThenCountSkipStore {
    inner: MemoryStore,
    skips: Mutex<HashMap<UserId, EnrollmentGrace>>,
}

impl EnrollmentStore for ReadThenCountSkipStore {
    async fn enrollment_deadline(&self, user: &UserId, proposed: UnixTime) -> Result<EnrollmentGrace, StoreError> {
        let mut skips = self.skips.lock().unwrap();
        Ok(*skips.entry(user.clone()).or_insert(EnrollmentGrace::new(proposed, 0)))
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
        let read = *self
            .skips
            .lock()
            .unwrap()
            .entry(user.clone())
            .or_insert(EnrollmentGrace::new(proposed, 0));
        if read.skipped >= max {
            return Ok(None);
        }
        interleave().await;
        let counted = EnrollmentGrace::new(read.deadline, read.skipped + 1);
        self.skips.lock().unwrap().insert(user.clone(), counted);
        Ok(Some(counted.skipped))
    }

    async fn set_enrollment_deadline(&self, user: &UserId, deadline: UnixTime) -> Result<(), StoreError> {
        self.skips
            .lock()
            .unwrap()
            .insert(user.clone(), EnrollmentGrace::new(deadline, 0));
        Ok(())
    }
}

forward!(DeviceStore, CeremonyStore, BrowserStore, AdminStore for ReadThenCountSkipStore);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_enrollment_skips_catches_a_read_then_count() {
    // One call at a time it is right: the sequential check passes.
    let store = Arc::new(ReadThenCountSkipStore::default());
    conformance::enrollment_skips(&*store).await.unwrap();
    assert_race_caught(&store, "race_enrollment_skips", conformance::race_enrollment_skips).await;
    assert_race_passes(
        &Arc::new(MemoryStore::new()),
        "race_enrollment_skips",
        conformance::race_enrollment_skips,
    )
    .await;
}

/// `issue_sent_code` reads the last code, lets others run, then writes over it: right one call
/// at a time, but racing sends over the same code are all recorded (each racer thinks it
/// superseded the one it read).
#[derive(Debug, Default)]
struct ReadThenIssueStore {
    inner: MemoryStore,
}

impl DeviceStore for ReadThenIssueStore {
    forward!(DeviceStore but issue_sent_code);

    async fn issue_sent_code(
        &self,
        user: &UserId,
        id: DeviceId,
        expected: Option<&multifactor::store::IssuedCode>,
        issued: &multifactor::store::IssuedCode,
    ) -> Result<bool, StoreError> {
        let Some(record) = self.inner.device(user, id).await? else {
            return Ok(false);
        };
        let multifactor::store::DeviceData::SentCode(sent) = &record.data else {
            return Ok(false);
        };
        if sent.issued.as_ref() != expected {
            return Ok(false);
        }
        interleave().await;
        // Writes over whatever is there now, as a read-then-write would.
        let now = self.inner.device(user, id).await?.and_then(|d| match d.data {
            multifactor::store::DeviceData::SentCode(c) => c.issued,
            _ => None,
        });
        self.inner.issue_sent_code(user, id, now.as_ref(), issued).await
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for ReadThenIssueStore);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_sent_code_catches_a_read_then_issue() {
    // One call at a time it is right: the sequential check passes.
    let store = Arc::new(ReadThenIssueStore::default());
    conformance::sent_codes(&*store).await.unwrap();
    assert_race_caught(&store, "race_sent_code", conformance::race_sent_code).await;
    assert_race_passes(
        &Arc::new(MemoryStore::new()),
        "race_sent_code",
        conformance::race_sent_code,
    )
    .await;
}
