//! The public conformance suite: what every [`DeviceStore`] must do, races included.
//!
//! Run it against your own store with [`conformance_tests!`](crate::conformance_tests), which
//! generates one `#[tokio::test]` per check (your crate needs `tokio` with `macros` and
//! `rt-multi-thread` as a dev-dependency), or call [`run_all`] or single checks directly from
//! a multi-threaded tokio runtime. Every check uses fresh random user ids, so one store (one
//! database) can run them all, even concurrently.
//!
//! The race checks spawn [`RACERS`] tasks on the runtime that present the same code (the same
//! backup-code slot, TOTP step, throttle state, ceremony, sign counter or credential id) at
//! once, released together by a barrier, and require exactly one success.
//!
//! Ceremonies that are meant to stay alive expire around [`LIVE`] (in the year 2096), and
//! [`ceremony_take_once`] purges only at random moments far below it, so concurrent checks on
//! one store do not purge each other's live ceremonies.

mod counting;

pub use self::counting::CountingStore;

use std::fmt;
use std::sync::Arc;

use crate::backup_codes::{BackupCodeRecord, CodeSlot};
use crate::clock::UnixTime;
use crate::error::StoreError;
use crate::id::{CeremonyId, DeviceId, DeviceName, TrustedDeviceId, UserId};
use crate::kind::Factor;
use crate::rng::{OsRng, Rng};
use crate::seal::{KeyId, Keyring, SealContext, SealedSecret, SealingKey};
use crate::store::{DeleteOutcome, DeviceStore, Hit, MethodsDigest, Settle, Settlement};
use crate::store::{DeviceData, DeviceRecord};
use crate::throttle::ThrottleState;
use crate::totp::{Algorithm, TotpParams, TotpRecord};
use crate::trusted_device::TrustedDeviceRecord;
use crate::webauthn::{CeremonyKind, CeremonyRecord, WebAuthnRecord, WebAuthnUse};

/// The largest time or step every store must keep exactly: 2^63 - 1 (SQL's BIGINT).
pub const MAX_STORED_INTEGER: u64 = i64::MAX as u64;

/// How many tasks race in each race check.
pub const RACERS: usize = 64;

/// Around this time (seconds since the epoch, in the year 2096) the checks' live ceremonies
/// expire; every purge in the suite happens long before it.
pub const LIVE: u64 = 4_000_000_000;

/// A broken promise of the store contract.
#[derive(Debug)]
pub struct Failure(String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self(format!("unexpected store error: {e}"))
    }
}

/// What each check returns.
pub type CheckResult = Result<(), Failure>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(Failure(format!($($msg)+)));
        }
    };
}

fn fresh_user(tag: &str) -> Result<UserId, Failure> {
    let rng = OsRng::new().map_err(|e| Failure(e.to_string()))?;
    let mut bytes = [0u8; 8];
    rng.try_fill_bytes(&mut bytes).map_err(|e| Failure(e.to_string()))?;
    UserId::new(format!("conformance-{tag}-{}", u64::from_le_bytes(bytes))).map_err(|e| Failure(e.to_string()))
}

fn fresh_id() -> Result<DeviceId, Failure> {
    let rng = OsRng::new().map_err(|e| Failure(e.to_string()))?;
    DeviceId::generate(&rng).map_err(|e| Failure(e.to_string()))
}

fn fresh_ceremony_id() -> Result<CeremonyId, Failure> {
    let rng = OsRng::new().map_err(|e| Failure(e.to_string()))?;
    CeremonyId::generate(&rng).map_err(|e| Failure(e.to_string()))
}

fn random_u64() -> Result<u64, Failure> {
    let rng = OsRng::new().map_err(|e| Failure(e.to_string()))?;
    let mut bytes = [0u8; 8];
    rng.try_fill_bytes(&mut bytes).map_err(|e| Failure(e.to_string()))?;
    Ok(u64::from_le_bytes(bytes))
}

/// A credential id no other record has: 16 random bytes between `00 ff` and `80 00` (a store
/// must keep bytes, not text, and match them exactly).
pub fn fresh_credential_id() -> Result<Vec<u8>, Failure> {
    let rng = OsRng::new().map_err(|e| Failure(e.to_string()))?;
    let mut random = [0u8; 16];
    rng.try_fill_bytes(&mut random).map_err(|e| Failure(e.to_string()))?;
    let mut id = vec![0x00, 0xff];
    id.extend_from_slice(&random);
    id.extend_from_slice(&[0x80, 0x00]);
    Ok(id)
}

fn name(text: &str) -> Result<DeviceName, Failure> {
    DeviceName::new(text).map_err(|e| Failure(e.to_string()))
}

/// A backup-code record with `slots` slots whose hashes are distinct fillers.
pub fn backup_record(user: &UserId, created: u64, slots: usize) -> Result<DeviceRecord, Failure> {
    let mut salt = [0u8; 16];
    salt[0] = 0xa5;
    salt[15] = slots as u8;
    Ok(DeviceRecord {
        id: fresh_id()?,
        user: user.clone(),
        name: name("Backup codes")?,
        created_at: UnixTime::from_secs(created),
        last_used_at: None,
        confirmed: true,
        data: DeviceData::BackupCodes(BackupCodeRecord {
            key_id: Some(KeyId::new("conformance").map_err(|e| Failure(e.to_string()))?),
            salt,
            code_length: 12,
            slots: (0..slots)
                .map(|i| CodeSlot {
                    hash: [i as u8 ^ 0x5c; 32],
                    used: false,
                })
                .collect(),
        }),
    })
}

/// An unconfirmed TOTP record with a real sealed blob (SHA256, 8 digits, 60 s).
pub fn totp_record(user: &UserId, created: u64) -> Result<DeviceRecord, Failure> {
    let id = fresh_id()?;
    let rng = OsRng::new().map_err(|e| Failure(e.to_string()))?;
    let key_id = KeyId::new("conformance").map_err(|e| Failure(e.to_string()))?;
    let keys = Keyring::new(SealingKey::new(key_id, [3; 32]));
    let context = SealContext {
        purpose: crate::seal::TOTP_SECRET_PURPOSE,
        user,
        device: id,
    };
    let sealed_secret = keys
        .seal(&rng, &context, b"12345678901234567890")
        .map_err(|e| Failure(e.to_string()))?;
    let params = TotpParams::new(Algorithm::Sha256, 8, 60).map_err(|e| Failure(e.to_string()))?;
    Ok(DeviceRecord {
        id,
        user: user.clone(),
        name: name("Phone ☎ — “work”")?,
        created_at: UnixTime::from_secs(created),
        last_used_at: None,
        confirmed: false,
        data: DeviceData::Totp(TotpRecord {
            params,
            sealed_secret,
            last_step: None,
        }),
    })
}

/// A WebAuthn record with distinctive values in every field: a 16-byte user handle from `00` to
/// `ff`, a JSON credential, sign counter 7, backup-eligible but not backed up, user verified.
pub fn webauthn_record(
    user: &UserId,
    created: u64,
    credential_id: Vec<u8>,
    discoverable: bool,
) -> Result<DeviceRecord, Failure> {
    let label = if discoverable {
        "Passkey 🔑 “laptop”"
    } else {
        "Security key — YubiKey 5"
    };
    Ok(DeviceRecord {
        id: fresh_id()?,
        user: user.clone(),
        name: name(label)?,
        created_at: UnixTime::from_secs(created),
        last_used_at: None,
        confirmed: true,
        data: DeviceData::WebAuthn(WebAuthnRecord {
            credential_id,
            user_handle: (0..16u8).map(|i| i * 0x11).collect(),
            credential:
                r#"{"cred":{"type_":"ES256","key":{"x":"AAEC/w==","y":"gP9/AA=="}},"label":"clé ☂","counter":7}"#
                    .as_bytes()
                    .to_vec(),
            sign_count: 7,
            backup_eligible: true,
            backup_state: false,
            discoverable,
            user_verified: true,
        }),
    })
}

/// A ceremony of `user` (`None`: passwordless) and `kind` that expires at `expires_at`, with a
/// JSON state naming its id.
pub fn ceremony_record(user: Option<&UserId>, kind: CeremonyKind, expires_at: u64) -> Result<CeremonyRecord, Failure> {
    let id = fresh_ceremony_id()?;
    Ok(CeremonyRecord {
        id,
        user: user.cloned(),
        kind,
        expires_at: UnixTime::from_secs(expires_at),
        state: format!(
            r#"{{"challenge":"{id}","kind":"{}","rp":"exämple.com"}}"#,
            kind.as_str()
        )
        .into_bytes(),
    })
}

fn slot_used(record: &DeviceRecord, slot: usize) -> Option<bool> {
    match &record.data {
        DeviceData::BackupCodes(set) => set.slots.get(slot).map(|s| s.used),
        _ => None,
    }
}

fn last_step(record: &DeviceRecord) -> Option<u64> {
    match &record.data {
        DeviceData::Totp(t) => t.last_step,
        _ => None,
    }
}

fn webauthn(record: &DeviceRecord) -> Option<&WebAuthnRecord> {
    match &record.data {
        DeviceData::WebAuthn(w) => Some(w),
        _ => None,
    }
}

/// Inserted records come back field for field; ids are unique; users only see their own.
pub async fn insert_get_list<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let totp = totp_record(&alice, 2_000)?;
    let codes = backup_record(&alice, 1_000, 6)?;
    let bobs = backup_record(&bob, 500, 3)?;
    store.insert_device(totp.clone()).await?;
    store.insert_device(codes.clone()).await?;
    store.insert_device(bobs.clone()).await?;

    ensure!(
        store.device(&alice, totp.id).await?.as_ref() == Some(&totp),
        "TOTP record did not round-trip"
    );
    ensure!(
        store.device(&alice, codes.id).await?.as_ref() == Some(&codes),
        "backup-code record did not round-trip"
    );
    ensure!(
        store.device(&bob, totp.id).await?.is_none(),
        "another user's device was returned"
    );
    ensure!(
        store.device(&alice, fresh_id()?).await?.is_none(),
        "an unknown id was found"
    );

    let list = store.list_devices(&alice).await?;
    ensure!(
        list == vec![codes.clone(), totp.clone()],
        "list is not the user's records oldest first: {list:?}"
    );
    ensure!(store.list_devices(&bob).await? == vec![bobs], "bob's list is wrong");
    ensure!(
        store.list_devices(&fresh_user("nobody")?).await?.is_empty(),
        "an unknown user has devices"
    );

    let mut same_id = backup_record(&bob, 3_000, 2)?;
    same_id.id = totp.id;
    ensure!(
        matches!(store.insert_device(same_id).await, Err(StoreError::Conflict)),
        "a second record with an existing id (of another user) was not a Conflict"
    );
    ensure!(
        store.device(&alice, totp.id).await?.as_ref() == Some(&totp),
        "a conflicting insert changed the record"
    );
    Ok(())
}

/// Renames touch only the named record of the named user.
pub async fn rename<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let totp = totp_record(&alice, 1)?;
    store.insert_device(totp.clone()).await?;
    let new_name = name("Work phone")?;
    ensure!(
        store.rename_device(&alice, totp.id, &new_name).await?,
        "rename of an own device failed"
    );
    let got = store
        .device(&alice, totp.id)
        .await?
        .ok_or(Failure("renamed device vanished".into()))?;
    ensure!(got.name == new_name, "name not stored");
    ensure!(got.data == totp.data, "rename changed the data");
    ensure!(
        !store.rename_device(&bob, totp.id, &name("Stolen")?).await?,
        "renamed another user's device"
    );
    ensure!(
        !store.rename_device(&alice, fresh_id()?, &new_name).await?,
        "renamed an unknown device"
    );
    ensure!(
        store.device(&alice, totp.id).await?.map(|d| d.name) == Some(new_name),
        "another user's rename took effect"
    );
    Ok(())
}

/// Deletes touch only the named record of the named user; a reset removes all of one user's.
pub async fn delete_and_reset<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let a1 = totp_record(&alice, 1)?;
    let a2 = backup_record(&alice, 2, 4)?;
    let a3 = totp_record(&alice, 3)?;
    let b1 = totp_record(&bob, 1)?;
    for d in [&a1, &a2, &a3, &b1] {
        store.insert_device(d.clone()).await?;
    }
    ensure!(
        !store.delete_device(&bob, a1.id).await?,
        "deleted another user's device"
    );
    ensure!(
        store.delete_device(&alice, a1.id).await?,
        "delete of an own device failed"
    );
    ensure!(
        !store.delete_device(&alice, a1.id).await?,
        "deleted the same device twice"
    );
    ensure!(
        store.device(&alice, a1.id).await?.is_none(),
        "deleted device still there"
    );
    ensure!(
        store.delete_user_devices(&alice).await? == 2,
        "reset did not report 2 removed devices"
    );
    ensure!(store.list_devices(&alice).await?.is_empty(), "reset left devices");
    ensure!(
        store.delete_user_devices(&alice).await? == 0,
        "second reset removed something"
    );
    ensure!(
        store.list_devices(&bob).await? == vec![b1],
        "reset of alice touched bob"
    );
    Ok(())
}

/// Replacing a backup-code set removes the old one in the same step and leaves others alone.
pub async fn replace_backup_codes<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let old = backup_record(&alice, 1, 6)?;
    let totp = totp_record(&alice, 2)?;
    let bobs = backup_record(&bob, 1, 6)?;
    store.replace_backup_codes(old.clone()).await?;
    store.insert_device(totp.clone()).await?;
    store.replace_backup_codes(bobs.clone()).await?;
    let new = backup_record(&alice, 3, 8)?;
    store.replace_backup_codes(new.clone()).await?;
    let list = store.list_devices(&alice).await?;
    ensure!(
        list == vec![totp.clone(), new.clone()],
        "after replace the user has {list:?}"
    );
    ensure!(
        !store
            .consume_backup_code(&alice, old.id, 0, UnixTime::from_secs(9), ThrottleState::default())
            .await?,
        "a code of the replaced set was consumed"
    );
    ensure!(
        store.device(&bob, bobs.id).await?.is_some(),
        "replace removed another user's set"
    );
    ensure!(
        matches!(
            store.replace_backup_codes(totp_record(&alice, 4)?).await,
            Err(StoreError::InvalidRecord(_))
        ),
        "replace_backup_codes took a TOTP record"
    );
    ensure!(
        store.device(&alice, new.id).await?.is_some(),
        "a refused replace removed the set"
    );
    Ok(())
}

/// A backup-code slot is consumed once; other slots, sets and users are untouched.
pub async fn consume_backup_code_once<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let set = backup_record(&alice, 1, 6)?;
    let totp = totp_record(&alice, 2)?;
    store.insert_device(set.clone()).await?;
    store.insert_device(totp.clone()).await?;
    let now = UnixTime::from_secs(1_234);
    ensure!(
        !store
            .consume_backup_code(&bob, set.id, 2, now, ThrottleState::default())
            .await?,
        "another user consumed the code"
    );
    ensure!(
        store
            .consume_backup_code(&alice, set.id, 2, now, ThrottleState::default())
            .await?,
        "first consume failed"
    );
    ensure!(
        !store
            .consume_backup_code(&alice, set.id, 2, now, ThrottleState::default())
            .await?,
        "a code was consumed twice"
    );
    ensure!(
        !store
            .consume_backup_code(&alice, set.id, 6, now, ThrottleState::default())
            .await?,
        "slot out of range was consumed"
    );
    ensure!(
        !store
            .consume_backup_code(&alice, set.id, usize::MAX, now, ThrottleState::default())
            .await?,
        "slot usize::MAX was consumed"
    );
    ensure!(
        !store
            .consume_backup_code(&alice, totp.id, 0, now, ThrottleState::default())
            .await?,
        "a TOTP device was consumed as codes"
    );
    ensure!(
        !store
            .consume_backup_code(&alice, fresh_id()?, 0, now, ThrottleState::default())
            .await?,
        "an unknown set was consumed"
    );
    let got = store
        .device(&alice, set.id)
        .await?
        .ok_or(Failure("set vanished".into()))?;
    ensure!(got.last_used_at == Some(now), "last-used time not set");
    for slot in 0..6 {
        ensure!(
            slot_used(&got, slot) == Some(slot == 2),
            "slot {slot} has the wrong used flag"
        );
    }
    Ok(())
}

/// The TOTP high-water mark moves only upward and confirms the device.
pub async fn totp_step_high_water_mark<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let totp = totp_record(&alice, 1)?;
    let set = backup_record(&alice, 2, 2)?;
    store.insert_device(totp.clone()).await?;
    store.insert_device(set.clone()).await?;
    let now = UnixTime::from_secs(5_000);
    ensure!(
        !store
            .accept_totp_step(&bob, totp.id, 10, now, ThrottleState::default())
            .await?,
        "another user's step was accepted"
    );
    ensure!(
        !store
            .accept_totp_step(&alice, set.id, 10, now, ThrottleState::default())
            .await?,
        "a backup-code set took a TOTP step"
    );
    ensure!(
        store
            .accept_totp_step(&alice, totp.id, 10, now, ThrottleState::default())
            .await?,
        "first step refused"
    );
    ensure!(
        !store
            .accept_totp_step(&alice, totp.id, 10, now, ThrottleState::default())
            .await?,
        "the same step was accepted twice"
    );
    ensure!(
        !store
            .accept_totp_step(&alice, totp.id, 9, now, ThrottleState::default())
            .await?,
        "an older step was accepted"
    );
    ensure!(
        !store
            .accept_totp_step(&alice, totp.id, 0, now, ThrottleState::default())
            .await?,
        "step 0 was accepted after 10"
    );
    let later = UnixTime::from_secs(5_060);
    ensure!(
        store
            .accept_totp_step(&alice, totp.id, 11, later, ThrottleState::default())
            .await?,
        "a newer step was refused"
    );
    let got = store
        .device(&alice, totp.id)
        .await?
        .ok_or(Failure("device vanished".into()))?;
    ensure!(last_step(&got) == Some(11), "last step not stored");
    ensure!(got.confirmed, "accepting a step did not confirm the device");
    ensure!(got.last_used_at == Some(later), "last-used time not set");
    // The largest step every store must keep exactly (2^63 - 1, see the store contract).
    let huge = MAX_STORED_INTEGER;
    ensure!(
        store
            .accept_totp_step(&alice, totp.id, huge, later, ThrottleState::default())
            .await?,
        "step 2^63-1 refused"
    );
    ensure!(
        !store
            .accept_totp_step(&alice, totp.id, huge, later, ThrottleState::default())
            .await?,
        "step 2^63-1 accepted twice"
    );
    let got = store
        .device(&alice, totp.id)
        .await?
        .ok_or(Failure("device vanished".into()))?;
    ensure!(last_step(&got) == Some(huge), "step 2^63-1 not stored exactly");
    Ok(())
}

/// `verification_state` reads what `list_devices` and `throttle` read, for one factor: the
/// user's methods of that factor in order, and that factor's counter (not another factor's,
/// not another user's).
pub async fn verification_state<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let nobody = fresh_user("nobody")?;
    let (devices, counter) = store.verification_state(&nobody, Factor::Totp).await?;
    ensure!(
        devices.is_empty() && counter == ThrottleState::default(),
        "a user without methods has state {devices:?} {counter:?}"
    );
    let totp = totp_record(&alice, 1)?;
    let set = backup_record(&alice, 2, 3)?;
    let second_totp = totp_record(&alice, 4)?;
    store.insert_device(second_totp.clone()).await?;
    store.insert_device(totp.clone()).await?;
    store.insert_device(set.clone()).await?;
    store.insert_device(totp_record(&bob, 3)?).await?;
    let totp_counter = ThrottleState {
        failures: 7,
        last_failure_at: Some(UnixTime::from_secs(MAX_STORED_INTEGER)),
        budget_until: Some(UnixTime::from_secs(MAX_STORED_INTEGER - 1)),
    };
    let bob_counter = ThrottleState {
        failures: 2,
        last_failure_at: Some(UnixTime::from_secs(60)),
        budget_until: Some(UnixTime::from_secs(400_000)),
    };
    ensure!(
        store
            .swap_throttle(&alice, Factor::Totp, ThrottleState::default(), totp_counter)
            .await?,
        "could not set up the counter"
    );
    ensure!(
        store
            .swap_throttle(&bob, Factor::BackupCodes, ThrottleState::default(), bob_counter)
            .await?,
        "could not set up bob's counter"
    );
    for (factor, methods, expected) in [
        (Factor::Totp, vec![totp.clone(), second_totp.clone()], totp_counter),
        (Factor::BackupCodes, vec![set.clone()], ThrottleState::default()),
        (Factor::WebAuthn, vec![], ThrottleState::default()),
    ] {
        let (devices, counter) = store.verification_state(&alice, factor).await?;
        ensure!(
            devices == methods,
            "verification_state({factor:?}) listed {devices:?}, not alice's {} such methods in order",
            methods.len()
        );
        ensure!(
            counter == expected,
            "verification_state read the {factor:?} counter as {counter:?}, not {expected:?}"
        );
    }
    // Bob has no backup codes: nothing to verify, so the counter may read as the default.
    let (devices, counter) = store.verification_state(&bob, Factor::BackupCodes).await?;
    ensure!(
        devices.is_empty() && (counter == bob_counter || counter == ThrottleState::default()),
        "bob's state is {} methods and {counter:?}",
        devices.len()
    );
    let (devices, counter) = store.verification_state(&bob, Factor::Totp).await?;
    ensure!(
        devices.len() == 1 && counter == ThrottleState::default(),
        "bob's TOTP state is {} methods and {counter:?}",
        devices.len()
    );
    ensure!(
        store
            .swap_throttle(&bob, Factor::Totp, ThrottleState::default(), bob_counter)
            .await?,
        "could not set up bob's TOTP counter"
    );
    let (_, counter) = store.verification_state(&bob, Factor::Totp).await?;
    ensure!(counter == bob_counter, "bob's TOTP counter read as {counter:?}");
    Ok(())
}

/// A success is written only against the failure counter it was admitted under: with failures
/// counted in between, `accept_totp_step` and `consume_backup_code` change nothing; against the
/// current state they succeed and reset that factor's counter (only that factor's); a refused
/// write (replay, used slot) leaves the counter as it was.
pub async fn success_against_throttle<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let totp = totp_record(&alice, 1)?;
    let set = backup_record(&alice, 2, 4)?;
    store.insert_device(totp.clone()).await?;
    store.insert_device(set.clone()).await?;
    let zero = ThrottleState::default();
    let three = ThrottleState {
        failures: 3,
        last_failure_at: Some(UnixTime::from_secs(900)),
        budget_until: Some(UnixTime::from_secs(90_000)),
    };
    let four = ThrottleState {
        failures: 4,
        last_failure_at: Some(UnixTime::from_secs(930)),
        budget_until: Some(UnixTime::from_secs(190_000)),
    };
    // A success clears the consecutive failures and keeps the failure budget.
    let cleared = ThrottleState {
        budget_until: three.budget_until,
        ..zero
    };
    let now = UnixTime::from_secs(1_000);
    for factor in [Factor::Totp, Factor::BackupCodes] {
        ensure!(
            store.swap_throttle(&alice, factor, zero, three).await?,
            "could not set up the {factor:?} counter"
        );
    }

    // TOTP: refused against a stale or wrong state, with nothing changed.
    for (expected, what) in [(zero, "the default"), (four, "a wrong state")] {
        ensure!(
            !store.accept_totp_step(&alice, totp.id, 10, now, expected).await?,
            "a TOTP step was accepted against {what} while failures were counted"
        );
    }
    let got = store
        .device(&alice, totp.id)
        .await?
        .ok_or(Failure("device vanished".into()))?;
    ensure!(last_step(&got).is_none(), "a refused acceptance moved the step");
    ensure!(
        got.last_used_at.is_none(),
        "a refused acceptance set the last-used time"
    );
    ensure!(
        store.throttle(&alice, Factor::Totp).await? == three,
        "a refused acceptance changed the counter"
    );
    ensure!(
        store.accept_totp_step(&alice, totp.id, 10, now, three).await?,
        "a TOTP step was refused against the current counter"
    );
    ensure!(
        store.throttle(&alice, Factor::Totp).await? == cleared,
        "an accepted step did not clear the consecutive failures (keeping the budget)"
    );
    ensure!(
        store.throttle(&alice, Factor::BackupCodes).await? == three,
        "an accepted TOTP step reset the backup-code counter"
    );
    // A replay against the current counter refuses and keeps the counter.
    ensure!(
        store.swap_throttle(&alice, Factor::Totp, cleared, three).await?,
        "could not set the counter again"
    );
    ensure!(
        !store.accept_totp_step(&alice, totp.id, 10, now, three).await?,
        "a replayed step was accepted"
    );
    ensure!(
        store.throttle(&alice, Factor::Totp).await? == three,
        "a replayed step reset the counter"
    );

    // Backup codes: the same.
    for (expected, what) in [(zero, "the default"), (four, "a wrong state")] {
        ensure!(
            !store.consume_backup_code(&alice, set.id, 1, now, expected).await?,
            "a backup code was spent against {what} while failures were counted"
        );
    }
    let got = store
        .device(&alice, set.id)
        .await?
        .ok_or(Failure("set vanished".into()))?;
    ensure!(slot_used(&got, 1) == Some(false), "a refused consume spent the code");
    ensure!(got.last_used_at.is_none(), "a refused consume set the last-used time");
    ensure!(
        store.throttle(&alice, Factor::BackupCodes).await? == three,
        "a refused consume changed the counter"
    );
    ensure!(
        store.consume_backup_code(&alice, set.id, 1, now, three).await?,
        "a backup code was refused against the current counter"
    );
    ensure!(
        store.throttle(&alice, Factor::BackupCodes).await? == cleared,
        "a spent code did not clear the consecutive failures (keeping the budget)"
    );
    ensure!(
        store.swap_throttle(&alice, Factor::BackupCodes, cleared, three).await?,
        "could not set the counter again"
    );
    ensure!(
        !store.consume_backup_code(&alice, set.id, 99, now, three).await?,
        "a slot out of range was spent"
    );
    ensure!(
        store.throttle(&alice, Factor::BackupCodes).await? == three,
        "a refused consume reset the counter"
    );
    ensure!(
        store.consume_backup_code(&alice, set.id, 2, now, three).await?,
        "another code was refused against the current counter"
    );
    ensure!(
        store.throttle(&alice, Factor::Totp).await? == three,
        "a spent backup code touched the TOTP counter"
    );
    Ok(())
}

/// Throttle counters: default, compare-and-swap, clear, per user and per factor.
pub async fn throttle_compare_and_swap<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let zero = ThrottleState::default();
    ensure!(
        store.throttle(&alice, Factor::Totp).await? == zero,
        "a fresh counter is not the default"
    );
    let one = ThrottleState {
        failures: 1,
        last_failure_at: Some(UnixTime::from_secs(100)),
        budget_until: None,
    };
    let two = ThrottleState {
        failures: 2,
        last_failure_at: Some(UnixTime::from_secs(MAX_STORED_INTEGER)),
        budget_until: Some(UnixTime::from_secs(MAX_STORED_INTEGER)),
    };
    ensure!(
        !store.swap_throttle(&alice, Factor::Totp, one, two).await?,
        "swap from a wrong expected state"
    );
    ensure!(
        store.swap_throttle(&alice, Factor::Totp, zero, one).await?,
        "swap from the default failed"
    );
    ensure!(
        store.throttle(&alice, Factor::Totp).await? == one,
        "swapped state not stored"
    );
    ensure!(
        !store.swap_throttle(&alice, Factor::Totp, zero, two).await?,
        "swap from a stale state"
    );
    ensure!(
        store.swap_throttle(&alice, Factor::Totp, one, two).await?,
        "second swap failed"
    );
    ensure!(
        store.throttle(&alice, Factor::Totp).await? == two,
        "time 2^63-1 not stored exactly"
    );
    ensure!(
        store.throttle(&alice, Factor::BackupCodes).await? == zero,
        "factors share a counter"
    );
    ensure!(
        store.throttle(&bob, Factor::Totp).await? == zero,
        "users share a counter"
    );
    store.clear_throttle(&alice, Factor::BackupCodes).await?;
    ensure!(
        store.throttle(&alice, Factor::Totp).await? == two,
        "clearing one factor cleared another"
    );
    store.clear_throttle(&alice, Factor::Totp).await?;
    ensure!(
        store.throttle(&alice, Factor::Totp).await? == zero,
        "clear did not reset"
    );
    ensure!(
        store.swap_throttle(&alice, Factor::Totp, zero, one).await?,
        "swap after clear failed"
    );
    Ok(())
}

/// WebAuthn records come back field for field; `find_credential` finds one by its exact
/// credential id whoever owns it; a credential id is unique across all users until its record
/// is deleted.
pub async fn webauthn_credentials<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let cred = fresh_credential_id()?;
    let key_cred = fresh_credential_id()?;
    let key = webauthn_record(&alice, 2_000, key_cred.clone(), false)?;
    let passkey = webauthn_record(&alice, 1_000, cred.clone(), true)?;
    store.insert_device(key.clone()).await?;
    store.insert_device(passkey.clone()).await?;

    ensure!(
        store.device(&alice, passkey.id).await?.as_ref() == Some(&passkey),
        "passkey record did not round-trip"
    );
    ensure!(
        store.device(&alice, key.id).await?.as_ref() == Some(&key),
        "security-key record did not round-trip"
    );
    let list = store.list_devices(&alice).await?;
    ensure!(
        list == vec![passkey.clone(), key.clone()],
        "list is not the user's WebAuthn records oldest first: {list:?}"
    );

    ensure!(
        store.find_credential(&cred).await?.as_ref() == Some(&passkey),
        "find_credential did not return the passkey field for field"
    );
    ensure!(
        store.find_credential(&key_cred).await?.as_ref() == Some(&key),
        "find_credential did not return the security key field for field"
    );
    ensure!(
        store.find_credential(&fresh_credential_id()?).await?.is_none(),
        "an unknown credential id was found"
    );
    ensure!(
        store.find_credential(&cred[..cred.len() - 1]).await?.is_none(),
        "a prefix of a credential id was found"
    );
    let mut longer = cred.clone();
    longer.push(0);
    ensure!(
        store.find_credential(&longer).await?.is_none(),
        "a credential id with an extra byte was found"
    );
    ensure!(
        store.find_credential(&[]).await?.is_none(),
        "an empty credential id was found"
    );

    let bobs = webauthn_record(&bob, 3_000, cred.clone(), true)?;
    ensure!(
        matches!(store.insert_device(bobs.clone()).await, Err(StoreError::Conflict)),
        "a second record with an existing credential id (of another user) was not a Conflict"
    );
    let again = webauthn_record(&alice, 4_000, cred.clone(), false)?;
    ensure!(
        matches!(store.insert_device(again.clone()).await, Err(StoreError::Conflict)),
        "a second record with an existing credential id (of the same user) was not a Conflict"
    );
    ensure!(
        store.list_devices(&bob).await?.is_empty(),
        "a conflicting insert stored a record for the other user"
    );
    ensure!(
        store.list_devices(&alice).await? == vec![passkey.clone(), key.clone()],
        "a conflicting insert changed the user's records"
    );
    ensure!(
        store.find_credential(&cred).await?.as_ref() == Some(&passkey),
        "a conflicting insert changed what find_credential returns"
    );

    ensure!(
        store.delete_device(&alice, passkey.id).await?,
        "delete of a WebAuthn credential failed"
    );
    ensure!(
        store.find_credential(&cred).await?.is_none(),
        "a deleted credential is still found"
    );
    store.insert_device(bobs.clone()).await.map_err(|e| {
        Failure(format!(
            "the credential id of a deleted record could not be used again: {e}"
        ))
    })?;
    ensure!(
        store.find_credential(&cred).await?.as_ref() == Some(&bobs),
        "a credential id used again after a delete is not found as the new record"
    );
    ensure!(
        store.list_devices(&bob).await? == vec![bobs],
        "the re-registered credential is not in its user's list"
    );
    ensure!(
        store.list_devices(&alice).await? == vec![key],
        "re-registering a deleted credential id changed the old user's records"
    );
    Ok(())
}

/// The sign counter is written with a compare-and-swap, only on the named user's WebAuthn
/// credential, together with the backup flags and the last-used time.
pub async fn webauthn_counter_compare_and_swap<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let key = webauthn_record(&alice, 1, fresh_credential_id()?, false)?;
    let totp = totp_record(&alice, 2)?;
    let codes = backup_record(&alice, 3, 2)?;
    for d in [&key, &totp, &codes] {
        store.insert_device(d.clone()).await?;
    }
    let now = UnixTime::from_secs(7_000);
    // Both backup flags flip.
    let next = WebAuthnUse {
        sign_count: 8,
        backup_eligible: false,
        backup_state: true,
    };
    for wrong in [6, 8, 0, u32::MAX] {
        ensure!(
            !store.record_webauthn_use(&alice, key.id, wrong, next, now).await?,
            "a use with a wrong expected counter ({wrong} instead of 7) was recorded"
        );
    }
    ensure!(
        !store.record_webauthn_use(&bob, key.id, 7, next, now).await?,
        "another user's credential took a use"
    );
    ensure!(
        !store.record_webauthn_use(&alice, fresh_id()?, 7, next, now).await?,
        "an unknown credential took a use"
    );
    for expected in [0, 7] {
        ensure!(
            !store.record_webauthn_use(&alice, totp.id, expected, next, now).await?,
            "a TOTP device took a WebAuthn use"
        );
        ensure!(
            !store.record_webauthn_use(&alice, codes.id, expected, next, now).await?,
            "a backup-code set took a WebAuthn use"
        );
    }
    ensure!(
        store.device(&alice, key.id).await?.as_ref() == Some(&key),
        "a refused use changed the credential"
    );
    ensure!(
        store.device(&alice, totp.id).await?.as_ref() == Some(&totp),
        "a refused use changed a TOTP device"
    );
    ensure!(
        store.device(&alice, codes.id).await?.as_ref() == Some(&codes),
        "a refused use changed a backup-code set"
    );

    ensure!(
        store.record_webauthn_use(&alice, key.id, 7, next, now).await?,
        "a use with the right expected counter was refused"
    );
    let got = store
        .device(&alice, key.id)
        .await?
        .ok_or(Failure("credential vanished".into()))?;
    let cred = webauthn(&got).ok_or(Failure("credential is no longer a WebAuthn record".into()))?;
    ensure!(cred.sign_count == 8, "sign counter not stored: {}", cred.sign_count);
    ensure!(
        !cred.backup_eligible && cred.backup_state,
        "backup flags not stored: eligible {}, state {}",
        cred.backup_eligible,
        cred.backup_state
    );
    ensure!(got.last_used_at == Some(now), "last-used time not set");
    let mut want = key.clone();
    want.last_used_at = Some(now);
    want.data = DeviceData::WebAuthn(cred.clone());
    ensure!(
        got == want,
        "a use changed more than the counter, backup flags and last-used time"
    );
    ensure!(
        !store.record_webauthn_use(&alice, key.id, 7, next, now).await?,
        "a use was recorded twice from the same counter"
    );

    let later = UnixTime::from_secs(7_100);
    let max = WebAuthnUse {
        sign_count: u32::MAX,
        backup_eligible: true,
        backup_state: false,
    };
    ensure!(
        store.record_webauthn_use(&alice, key.id, 8, max, later).await?,
        "a use to counter u32::MAX was refused"
    );
    let got = store
        .device(&alice, key.id)
        .await?
        .ok_or(Failure("credential vanished".into()))?;
    ensure!(
        webauthn(&got).map(|w| (w.sign_count, w.backup_eligible, w.backup_state)) == Some((u32::MAX, true, false)),
        "counter u32::MAX (or the flags with it) not stored exactly"
    );
    ensure!(got.last_used_at == Some(later), "last-used time not updated");
    ensure!(
        store.record_webauthn_use(&alice, key.id, u32::MAX, max, later).await?,
        "a use from counter u32::MAX was refused"
    );

    // Synced passkeys always report 0: a swap from 0 to 0 works every time.
    let mut passkey = webauthn_record(&alice, 4, fresh_credential_id()?, true)?;
    if let DeviceData::WebAuthn(w) = &mut passkey.data {
        w.sign_count = 0;
    }
    store.insert_device(passkey.clone()).await?;
    let zero = WebAuthnUse {
        sign_count: 0,
        backup_eligible: true,
        backup_state: true,
    };
    for secs in [8_000, 8_001] {
        ensure!(
            store
                .record_webauthn_use(&alice, passkey.id, 0, zero, UnixTime::from_secs(secs))
                .await?,
            "a use of a credential that does not count (0 to 0) was refused"
        );
    }
    let got = store
        .device(&alice, passkey.id)
        .await?
        .ok_or(Failure("passkey vanished".into()))?;
    ensure!(
        got.last_used_at == Some(UnixTime::from_secs(8_001)),
        "last-used time not updated by a use that kept the counter at 0"
    );
    Ok(())
}

/// A ceremony is taken once, only with its own user (or none, for passwordless) and kind, and
/// only before it expires; purging removes exactly the expired ones.
pub async fn ceremony_take_once<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let now = UnixTime::from_secs(LIVE);
    let kinds = [
        CeremonyKind::Registration,
        CeremonyKind::SecondFactor,
        CeremonyKind::Passwordless,
    ];

    let ceremony = ceremony_record(Some(&alice), CeremonyKind::SecondFactor, LIVE + 300)?;
    let id = ceremony.id;
    store.insert_ceremony(ceremony.clone()).await?;
    let mut duplicate = ceremony_record(Some(&bob), CeremonyKind::Registration, LIVE + 600)?;
    duplicate.id = id;
    ensure!(
        matches!(store.insert_ceremony(duplicate).await, Err(StoreError::Conflict)),
        "a second ceremony with an existing id was not a Conflict"
    );
    for kind in kinds {
        ensure!(
            store.take_ceremony(id, Some(&bob), kind, now).await?.is_none(),
            "another user took the ceremony"
        );
        ensure!(
            store.take_ceremony(id, None, kind, now).await?.is_none(),
            "a user's ceremony was taken without a user"
        );
    }
    for kind in [CeremonyKind::Registration, CeremonyKind::Passwordless] {
        ensure!(
            store.take_ceremony(id, Some(&alice), kind, now).await?.is_none(),
            "the ceremony was taken as another kind"
        );
    }
    ensure!(
        store
            .take_ceremony(fresh_ceremony_id()?, Some(&alice), CeremonyKind::SecondFactor, now)
            .await?
            .is_none(),
        "an unknown ceremony was taken"
    );
    let last_moment = UnixTime::from_secs(LIVE + 299);
    let taken = store
        .take_ceremony(id, Some(&alice), CeremonyKind::SecondFactor, last_moment)
        .await?;
    ensure!(
        taken.as_ref() == Some(&ceremony),
        "after refused takes and a refused duplicate, the right take did not return the ceremony field for field: {taken:?}"
    );
    ensure!(
        store
            .take_ceremony(id, Some(&alice), CeremonyKind::SecondFactor, now)
            .await?
            .is_none(),
        "a ceremony was taken twice"
    );

    let at_expiry = ceremony_record(Some(&alice), CeremonyKind::Registration, LIVE + 10)?;
    let after_expiry = ceremony_record(Some(&alice), CeremonyKind::Registration, LIVE + 10)?;
    store.insert_ceremony(at_expiry.clone()).await?;
    store.insert_ceremony(after_expiry.clone()).await?;
    ensure!(
        store
            .take_ceremony(
                at_expiry.id,
                Some(&alice),
                CeremonyKind::Registration,
                UnixTime::from_secs(LIVE + 10)
            )
            .await?
            .is_none(),
        "a ceremony was taken at its expiry time"
    );
    ensure!(
        store
            .take_ceremony(
                after_expiry.id,
                Some(&alice),
                CeremonyKind::Registration,
                UnixTime::from_secs(LIVE + 1_000)
            )
            .await?
            .is_none(),
        "an expired ceremony was taken"
    );

    let passwordless = ceremony_record(None, CeremonyKind::Passwordless, LIVE + 300)?;
    store.insert_ceremony(passwordless.clone()).await?;
    ensure!(
        store
            .take_ceremony(passwordless.id, Some(&alice), CeremonyKind::Passwordless, now)
            .await?
            .is_none(),
        "a passwordless ceremony was taken with a user"
    );
    ensure!(
        store
            .take_ceremony(passwordless.id, None, CeremonyKind::SecondFactor, now)
            .await?
            .is_none(),
        "a passwordless ceremony was taken as another kind"
    );
    let taken = store
        .take_ceremony(passwordless.id, None, CeremonyKind::Passwordless, now)
        .await?;
    ensure!(
        taken.as_ref() == Some(&passwordless),
        "a passwordless ceremony was not taken without a user, field for field: {taken:?}"
    );
    ensure!(
        store
            .take_ceremony(passwordless.id, None, CeremonyKind::Passwordless, now)
            .await?
            .is_none(),
        "a passwordless ceremony was taken twice"
    );

    // Purging. Each attempt purges at its own random moment far below LIVE, so live ceremonies
    // of concurrent checks survive. A concurrent run of this check may purge this attempt's
    // records first, so the count need only cover them in one of three attempts.
    let survivor = ceremony_record(Some(&alice), CeremonyKind::Registration, LIVE + 300)?;
    store.insert_ceremony(survivor.clone()).await?;
    let mut reported = Vec::new();
    for _ in 0..3 {
        let at = 1_000_000 + random_u64()? % 1_000_000_000;
        let before = ceremony_record(Some(&alice), CeremonyKind::Registration, at - 1)?;
        let due = ceremony_record(None, CeremonyKind::Passwordless, at)?;
        store.insert_ceremony(before.clone()).await?;
        store.insert_ceremony(due.clone()).await?;
        let purged = store.purge_expired_ceremonies(UnixTime::from_secs(at)).await?;
        // A take at a moment before their expiry would get them if they were still stored.
        let probe = UnixTime::from_secs(at - 2);
        ensure!(
            store
                .take_ceremony(before.id, Some(&alice), CeremonyKind::Registration, probe)
                .await?
                .is_none(),
            "a ceremony that expired before the purge time survived the purge"
        );
        ensure!(
            store
                .take_ceremony(due.id, None, CeremonyKind::Passwordless, probe)
                .await?
                .is_none(),
            "a ceremony that expired at the purge time survived the purge"
        );
        reported.push(purged);
        if purged >= 2 {
            break;
        }
    }
    ensure!(
        reported.last().is_some_and(|&n| n >= 2),
        "purges of 2 expired ceremonies each reported {reported:?} removed"
    );
    let taken = store
        .take_ceremony(survivor.id, Some(&alice), CeremonyKind::Registration, now)
        .await?;
    ensure!(
        taken.as_ref() == Some(&survivor),
        "purging removed (or changed) a ceremony that had not expired"
    );
    Ok(())
}

/// `delete_device_unless_last` deletes an unconfirmed method always and a confirmed one only
/// while another confirmed method of the same user remains; it touches only the named user's.
pub async fn delete_unless_last<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let carol = fresh_user("carol")?;
    let codes = backup_record(&alice, 1, 4)?;
    let key = webauthn_record(&alice, 2, fresh_credential_id()?, false)?;
    let pending = totp_record(&alice, 3)?;
    let bobs = backup_record(&bob, 1, 2)?;
    let carols = totp_record(&carol, 1)?;
    for d in [&codes, &key, &pending, &bobs, &carols] {
        store.insert_device(d.clone()).await?;
    }

    let outcome = store.delete_device_unless_last(&alice, bobs.id).await?;
    ensure!(
        outcome == DeleteOutcome::NotFound,
        "deleting another user's method was {outcome:?}, not NotFound"
    );
    let outcome = store.delete_device_unless_last(&bob, codes.id).await?;
    ensure!(
        outcome == DeleteOutcome::NotFound,
        "another user deleting the user's method was {outcome:?}, not NotFound"
    );
    let outcome = store.delete_device_unless_last(&alice, fresh_id()?).await?;
    ensure!(
        outcome == DeleteOutcome::NotFound,
        "deleting an unknown id was {outcome:?}, not NotFound"
    );
    ensure!(
        store.list_devices(&bob).await? == vec![bobs.clone()],
        "a refused cross-user delete removed the other user's method"
    );
    ensure!(
        store.list_devices(&alice).await? == vec![codes.clone(), key.clone(), pending.clone()],
        "a refused cross-user delete removed one of the user's methods"
    );

    // Two confirmed methods and an unconfirmed one: one confirmed method may go.
    let outcome = store.delete_device_unless_last(&alice, codes.id).await?;
    ensure!(
        outcome == DeleteOutcome::Deleted,
        "deleting one of two confirmed methods was {outcome:?}, not Deleted"
    );
    ensure!(
        store.device(&alice, codes.id).await?.is_none(),
        "a method reported Deleted is still there"
    );
    // The unconfirmed TOTP record does not count: the remaining key is the last method.
    for _ in 0..2 {
        let outcome = store.delete_device_unless_last(&alice, key.id).await?;
        ensure!(
            outcome == DeleteOutcome::LastMethod,
            "deleting the last confirmed method (next to an unconfirmed one) was {outcome:?}, not LastMethod"
        );
    }
    ensure!(
        store.device(&alice, key.id).await?.as_ref() == Some(&key),
        "the last confirmed method is gone or changed after a refused delete"
    );
    let outcome = store.delete_device_unless_last(&alice, pending.id).await?;
    ensure!(
        outcome == DeleteOutcome::Deleted,
        "deleting an unconfirmed method was {outcome:?}, not Deleted"
    );
    let outcome = store.delete_device_unless_last(&alice, pending.id).await?;
    ensure!(
        outcome == DeleteOutcome::NotFound,
        "deleting a deleted method again was {outcome:?}, not NotFound"
    );
    ensure!(
        store.list_devices(&alice).await? == vec![key.clone()],
        "after the deletes the user does not have exactly the last confirmed method"
    );
    // An unconfirmed method goes even when the user has no confirmed one.
    let outcome = store.delete_device_unless_last(&carol, carols.id).await?;
    ensure!(
        outcome == DeleteOutcome::Deleted,
        "deleting a user's only (unconfirmed) method was {outcome:?}, not Deleted"
    );
    ensure!(
        store.list_devices(&carol).await?.is_empty(),
        "an unconfirmed method reported Deleted is still there"
    );

    // A TOTP device confirmed by its first accepted step counts as a confirmed method.
    let phone = totp_record(&alice, 4)?;
    store.insert_device(phone.clone()).await?;
    ensure!(
        store
            .accept_totp_step(
                &alice,
                phone.id,
                100,
                UnixTime::from_secs(6_000),
                ThrottleState::default()
            )
            .await?,
        "first step of a new TOTP device refused"
    );
    let outcome = store.delete_device_unless_last(&alice, key.id).await?;
    ensure!(
        outcome == DeleteOutcome::Deleted,
        "deleting a confirmed method next to a TOTP device confirmed by a step was {outcome:?}, not Deleted"
    );
    let outcome = store.delete_device_unless_last(&alice, phone.id).await?;
    ensure!(
        outcome == DeleteOutcome::LastMethod,
        "deleting the last confirmed method (a TOTP device confirmed by a step) was {outcome:?}, not LastMethod"
    );
    ensure!(
        store.list_devices(&bob).await? == vec![bobs],
        "deletes of one user touched another's methods"
    );
    Ok(())
}

fn sealed_secret(record: &DeviceRecord) -> Option<&SealedSecret> {
    match &record.data {
        DeviceData::Totp(t) => Some(&t.sealed_secret),
        _ => None,
    }
}

/// A well-formed sealed blob that differs from `sealed` in the byte `back` places from the end
/// (inside the ciphertext; the format does not check it).
fn altered(sealed: &SealedSecret, back: usize) -> Result<SealedSecret, Failure> {
    let mut bytes = sealed.to_bytes();
    let at = bytes
        .len()
        .checked_sub(back + 1)
        .ok_or(Failure("sealed blob too short".into()))?;
    if let Some(byte) = bytes.get_mut(at) {
        *byte ^= 0x5a;
    }
    SealedSecret::from_bytes(&bytes).map_err(|e| Failure(e.to_string()))
}

/// `list_totp_devices` pages through every TOTP device of all users, in id order, each once and
/// nothing else; `reseal_totp_secret` swaps only the named user's TOTP secret, only from the
/// expected one, and changes nothing else.
pub async fn totp_paging_and_reseal<S: DeviceStore>(store: &S) -> CheckResult {
    // Other checks may run on the same store at the same time: only this check's ids are
    // asserted about, except that everything listed is a TOTP device in id order.
    let mut users = Vec::new();
    let mut totps = Vec::new();
    let mut others = Vec::new();
    for i in 0..3u64 {
        let user = fresh_user("paging")?;
        for j in 0..3 {
            let totp = totp_record(&user, 10 * i + j)?;
            store.insert_device(totp.clone()).await?;
            totps.push(totp);
        }
        let codes = backup_record(&user, 10 * i + 5, 2)?;
        let key = webauthn_record(&user, 10 * i + 6, fresh_credential_id()?, i % 2 == 0)?;
        store.insert_device(codes.clone()).await?;
        store.insert_device(key.clone()).await?;
        others.push(codes.id);
        others.push(key.id);
        users.push(user);
    }

    const LIMIT: usize = 2;
    let mut seen: Vec<DeviceId> = Vec::new();
    let mut after: Option<DeviceId> = None;
    loop {
        let page = store.list_totp_devices(after, LIMIT).await?;
        ensure!(
            page.len() <= LIMIT,
            "a page of list_totp_devices with limit {LIMIT} has {} entries",
            page.len()
        );
        if page.is_empty() {
            break;
        }
        for record in &page {
            ensure!(
                matches!(record.data, DeviceData::Totp(_)),
                "list_totp_devices listed a record that is not a TOTP device"
            );
            ensure!(
                after.is_none_or(|a| record.id > a),
                "list_totp_devices is not in strictly increasing id order: {:?} after {after:?}",
                record.id
            );
            ensure!(
                !others.contains(&record.id),
                "list_totp_devices listed one of this check's non-TOTP records"
            );
            if let Some(mine) = totps.iter().find(|t| t.id == record.id) {
                ensure!(
                    record == mine,
                    "list_totp_devices did not return a TOTP record field for field"
                );
                seen.push(record.id);
            }
            after = Some(record.id);
        }
    }
    for totp in &totps {
        let times = seen.iter().filter(|&&id| id == totp.id).count();
        ensure!(
            times == 1,
            "a TOTP device was listed {times} times when paging through list_totp_devices"
        );
    }
    let all = store.list_totp_devices(None, usize::MAX).await?;
    for totp in &totps {
        ensure!(
            all.iter().filter(|r| r.id == totp.id).count() == 1,
            "list_totp_devices with limit usize::MAX did not list every TOTP device once"
        );
    }

    // Re-sealing.
    let (alice, bob) = match users.as_slice() {
        [a, b, ..] => (a, b),
        _ => return Err(Failure("no users".into())),
    };
    let target = totps.first().cloned().ok_or(Failure("no TOTP device".into()))?;
    let sibling = totps.get(1).cloned().ok_or(Failure("no TOTP device".into()))?;
    let now = UnixTime::from_secs(9_000);
    ensure!(
        store
            .accept_totp_step(alice, target.id, 77, now, ThrottleState::default())
            .await?,
        "first step of a TOTP device refused"
    );
    let new_name = name("Re-sealed phone")?;
    ensure!(
        store.rename_device(alice, target.id, &new_name).await?,
        "rename of a TOTP device failed"
    );
    let before = store
        .device(alice, target.id)
        .await?
        .ok_or(Failure("TOTP device vanished".into()))?;
    let expected = sealed_secret(&before)
        .cloned()
        .ok_or(Failure("TOTP device is no longer a TOTP record".into()))?;
    let new = altered(&expected, 0)?;
    let wrong = altered(&expected, 1)?;
    ensure!(
        new != expected && wrong != expected && new != wrong,
        "altered blobs are equal"
    );

    ensure!(
        !store.reseal_totp_secret(alice, target.id, &wrong, &new).await?,
        "a re-seal from a wrong expected secret succeeded"
    );
    ensure!(
        !store.reseal_totp_secret(bob, target.id, &expected, &new).await?,
        "another user's TOTP secret was re-sealed"
    );
    ensure!(
        !store.reseal_totp_secret(alice, fresh_id()?, &expected, &new).await?,
        "an unknown device was re-sealed"
    );
    let codes_id = others.first().copied().ok_or(Failure("no backup-code set".into()))?;
    ensure!(
        !store.reseal_totp_secret(alice, codes_id, &expected, &new).await?,
        "a backup-code set was re-sealed"
    );
    ensure!(
        store.device(alice, target.id).await?.as_ref() == Some(&before),
        "a refused re-seal changed the TOTP device"
    );

    ensure!(
        store.reseal_totp_secret(alice, target.id, &expected, &new).await?,
        "a re-seal from the stored secret was refused"
    );
    let got = store
        .device(alice, target.id)
        .await?
        .ok_or(Failure("re-sealed TOTP device vanished".into()))?;
    ensure!(
        sealed_secret(&got) == Some(&new),
        "the new sealed secret was not stored exactly"
    );
    let mut want = before.clone();
    if let DeviceData::Totp(t) = &mut want.data {
        t.sealed_secret = new.clone();
    }
    ensure!(
        got == want,
        "a re-seal changed more than the sealed secret (name, confirmation, last step, times or parameters)"
    );
    ensure!(
        !store.reseal_totp_secret(alice, target.id, &expected, &wrong).await?,
        "a re-seal from the stale (replaced) secret succeeded"
    );
    ensure!(
        store.device(alice, target.id).await?.as_ref() == Some(&want),
        "a stale re-seal changed the TOTP device"
    );
    ensure!(
        store.device(alice, sibling.id).await?.as_ref() == Some(&sibling),
        "re-sealing one TOTP device changed another of the same user"
    );
    ensure!(
        store.reseal_totp_secret(alice, target.id, &new, &expected).await?,
        "a second re-seal from the current secret was refused"
    );
    Ok(())
}

/// A remember-this-device record with a distinctive hash (from `00` to `ff`, random between).
pub fn trusted_record(user: &UserId, created: u64, expires: u64) -> Result<TrustedDeviceRecord, Failure> {
    let rng = OsRng::new().map_err(|e| Failure(e.to_string()))?;
    let id = TrustedDeviceId::generate(&rng).map_err(|e| Failure(e.to_string()))?;
    let mut hash = [0u8; 32];
    rng.try_fill_bytes(&mut hash).map_err(|e| Failure(e.to_string()))?;
    hash[0] = 0x00;
    hash[1] = 0xff;
    hash[30] = 0x80;
    hash[31] = 0x00;
    Ok(TrustedDeviceRecord {
        id,
        user: user.clone(),
        key_id: KeyId::new("conformance").map_err(|e| Failure(e.to_string()))?,
        hash,
        created_at: UnixTime::from_secs(created),
        expires_at: UnixTime::from_secs(expires),
        last_used_at: None,
    })
}

/// Remember-this-device records come back field for field, are unique by id, listed per user
/// oldest first, touched and deleted only by their own user.
pub async fn trusted_devices<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let newer = trusted_record(&alice, 2_000, MAX_STORED_INTEGER)?;
    let older = trusted_record(&alice, 1_000, 1_000 + 30 * 86_400)?;
    let bobs = trusted_record(&bob, 500, 500 + 86_400)?;
    // Inserted newest first, so insertion order is not the listing order.
    for r in [&newer, &bobs, &older] {
        store.insert_trusted_device(r.clone()).await?;
    }
    for r in [&newer, &older, &bobs] {
        let got = store.trusted_device(r.id).await?;
        ensure!(
            got.as_ref() == Some(r),
            "a remember-this-device record did not round-trip field for field: {got:?}"
        );
    }
    let unknown = TrustedDeviceId::generate(&OsRng::new().map_err(|e| Failure(e.to_string()))?)
        .map_err(|e| Failure(e.to_string()))?;
    ensure!(
        store.trusted_device(unknown).await?.is_none(),
        "an unknown remember-this-device id was found"
    );

    let mut duplicate = trusted_record(&bob, 3_000, 4_000)?;
    duplicate.id = older.id;
    ensure!(
        matches!(store.insert_trusted_device(duplicate).await, Err(StoreError::Conflict)),
        "a second remember-this-device record with an existing id (of another user) was not a Conflict"
    );
    ensure!(
        store.trusted_device(older.id).await?.as_ref() == Some(&older),
        "a conflicting insert changed the remember-this-device record"
    );

    let list = store.list_trusted_devices(&alice).await?;
    ensure!(
        list == vec![older.clone(), newer.clone()],
        "list_trusted_devices is not the user's records oldest first: {list:?}"
    );
    ensure!(
        store.list_trusted_devices(&bob).await? == vec![bobs.clone()],
        "bob's remember-this-device list is wrong"
    );
    ensure!(
        store.list_trusted_devices(&fresh_user("nobody")?).await?.is_empty(),
        "an unknown user has remember-this-device records"
    );

    let at = UnixTime::from_secs(3_000);
    ensure!(
        store.touch_trusted_device(&alice, older.id, at).await?,
        "touching an own remember-this-device record failed"
    );
    let mut touched = older.clone();
    touched.last_used_at = Some(at);
    ensure!(
        store.trusted_device(older.id).await?.as_ref() == Some(&touched),
        "a touch did not set exactly the last-used time"
    );
    ensure!(
        !store.touch_trusted_device(&alice, bobs.id, at).await?,
        "touched another user's remember-this-device record"
    );
    ensure!(
        !store.touch_trusted_device(&alice, unknown, at).await?,
        "touched an unknown remember-this-device record"
    );
    ensure!(
        store.trusted_device(bobs.id).await?.as_ref() == Some(&bobs),
        "a refused touch changed another user's record"
    );
    let max = UnixTime::from_secs(MAX_STORED_INTEGER);
    ensure!(
        store.touch_trusted_device(&alice, newer.id, max).await?,
        "a touch at time 2^63-1 failed"
    );
    let mut newer_touched = newer.clone();
    newer_touched.last_used_at = Some(max);
    ensure!(
        store.trusted_device(newer.id).await?.as_ref() == Some(&newer_touched),
        "times 2^63-1 of a remember-this-device record not stored exactly"
    );

    ensure!(
        !store.delete_trusted_device(&bob, older.id).await?,
        "deleted another user's remember-this-device record"
    );
    ensure!(
        store.trusted_device(older.id).await?.is_some(),
        "a refused delete removed the record"
    );
    ensure!(
        store.delete_trusted_device(&alice, older.id).await?,
        "delete of an own remember-this-device record failed"
    );
    ensure!(
        !store.delete_trusted_device(&alice, older.id).await?,
        "deleted the same remember-this-device record twice"
    );
    ensure!(
        store.trusted_device(older.id).await?.is_none(),
        "a deleted remember-this-device record is still found"
    );
    ensure!(
        store.delete_user_trusted_devices(&alice).await? == 1,
        "deleting the user's remember-this-device records did not report 1 removed"
    );
    ensure!(
        store.list_trusted_devices(&alice).await?.is_empty() && store.trusted_device(newer.id).await?.is_none(),
        "deleting the user's remember-this-device records left some"
    );
    ensure!(
        store.delete_user_trusted_devices(&alice).await? == 0,
        "a second delete of the user's remember-this-device records removed something"
    );
    ensure!(
        store.list_trusted_devices(&bob).await? == vec![bobs.clone()]
            && store.trusted_device(bobs.id).await?.as_ref() == Some(&bobs),
        "deleting one user's remember-this-device records touched another's"
    );
    Ok(())
}

async fn race<S, F, Fut>(store: &Arc<S>, op: F) -> Result<usize, Failure>
where
    S: DeviceStore + 'static,
    F: Fn(Arc<S>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<bool, StoreError>> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut tasks = Vec::with_capacity(RACERS);
    for i in 0..RACERS {
        let barrier = barrier.clone();
        let fut = op(store.clone(), i);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            fut.await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        let won = task
            .await
            .map_err(|e| Failure(format!("a racing task failed: {e}")))??;
        wins += usize::from(won);
    }
    Ok(wins)
}

/// 64 tasks present the same backup-code slot at once: exactly one wins.
pub async fn race_backup_code<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("race")?;
    let set = backup_record(&user, 1, 6)?;
    store.insert_device(set.clone()).await?;
    let id = set.id;
    let wins = race(&store, |s, _| {
        let user = user.clone();
        async move {
            s.consume_backup_code(&user, id, 3, UnixTime::from_secs(7), ThrottleState::default())
                .await
        }
    })
    .await?;
    ensure!(
        wins == 1,
        "{wins} of {RACERS} concurrent consumes of one backup code succeeded"
    );
    Ok(())
}

/// 64 tasks present the same TOTP step at once: exactly one wins; then a race of 64 different
/// steps leaves the highest one recorded.
pub async fn race_totp_step<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("race")?;
    let totp = totp_record(&user, 1)?;
    store.insert_device(totp.clone()).await?;
    let id = totp.id;
    let wins = race(&store, |s, _| {
        let user = user.clone();
        async move {
            s.accept_totp_step(&user, id, 1_000, UnixTime::from_secs(30_000), ThrottleState::default())
                .await
        }
    })
    .await?;
    ensure!(
        wins == 1,
        "{wins} of {RACERS} concurrent acceptances of one TOTP step succeeded"
    );
    let wins = race(&store, |s, i| {
        let user = user.clone();
        async move {
            s.accept_totp_step(
                &user,
                id,
                1_001 + i as u64,
                UnixTime::from_secs(30_030),
                ThrottleState::default(),
            )
            .await
        }
    })
    .await?;
    ensure!(wins >= 1, "no step of a race of increasing steps was accepted");
    let got = store
        .device(&user, id)
        .await?
        .ok_or(Failure("device vanished".into()))?;
    ensure!(
        last_step(&got) == Some(1_000 + RACERS as u64),
        "after racing steps the mark is {:?}, not the highest",
        last_step(&got)
    );
    Ok(())
}

/// Failures and successes race on one counter: half the tasks charge a failure against the
/// current state, half present a valid, distinct TOTP step (then backup-code slot) against it.
/// Every one of them needs the counter unchanged and every winner changes it, so exactly one
/// of all of them wins: no success is ever written over a failure counted in the meantime.
pub async fn race_success_against_failures<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("race")?;
    let totp = totp_record(&user, 1)?;
    let set = backup_record(&user, 2, RACERS / 2)?;
    store.insert_device(totp.clone()).await?;
    store.insert_device(set.clone()).await?;
    let counted = ThrottleState {
        failures: 2,
        last_failure_at: Some(UnixTime::from_secs(5_000)),
        budget_until: Some(UnixTime::from_secs(70_000)),
    };
    let charged = ThrottleState {
        failures: 3,
        last_failure_at: Some(UnixTime::from_secs(5_010)),
        budget_until: Some(UnixTime::from_secs(170_000)),
    };
    for factor in [Factor::Totp, Factor::BackupCodes] {
        ensure!(
            store
                .swap_throttle(&user, factor, ThrottleState::default(), counted)
                .await?,
            "could not set up the {factor:?} counter"
        );
        let (totp_id, set_id) = (totp.id, set.id);
        let wins = race(&store, |s, i| {
            let user = user.clone();
            async move {
                let now = UnixTime::from_secs(5_010);
                match (i % 2, factor) {
                    (0, _) => s.swap_throttle(&user, factor, counted, charged).await,
                    (_, Factor::Totp) => s.accept_totp_step(&user, totp_id, 100 + i as u64, now, counted).await,
                    _ => s.consume_backup_code(&user, set_id, i / 2, now, counted).await,
                }
            }
        })
        .await?;
        ensure!(
            wins == 1,
            "{wins} of {RACERS} concurrent failures and successes against one {factor:?} counter state won"
        );
        let after = store.throttle(&user, factor).await?;
        ensure!(
            after == charged
                || after
                    == ThrottleState {
                        budget_until: counted.budget_until,
                        ..ThrottleState::default()
                    },
            "after the race the {factor:?} counter holds {after:?}"
        );
    }
    Ok(())
}

/// 64 tasks swap the same throttle state at once: exactly one wins.
pub async fn race_throttle_swap<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("race")?;
    let wins = race(&store, |s, i| {
        let user = user.clone();
        let new = ThrottleState {
            failures: 1,
            last_failure_at: Some(UnixTime::from_secs(i as u64)),
            budget_until: None,
        };
        async move {
            s.swap_throttle(&user, Factor::Totp, ThrottleState::default(), new)
                .await
        }
    })
    .await?;
    ensure!(
        wins == 1,
        "{wins} of {RACERS} concurrent compare-and-swaps from one state succeeded"
    );
    Ok(())
}

/// 64 tasks replace the user's backup codes at once: afterwards exactly one set exists.
pub async fn race_replace_backup_codes<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("race")?;
    let mut sets = Vec::with_capacity(RACERS);
    for i in 0..RACERS {
        sets.push(backup_record(&user, i as u64, 2)?);
    }
    let sets = Arc::new(sets);
    let wins = race(&store, |s, i| {
        let sets = sets.clone();
        async move {
            let set = sets.get(i).cloned().ok_or(StoreError::InvalidRecord("no such set"))?;
            s.replace_backup_codes(set).await.map(|()| true)
        }
    })
    .await?;
    ensure!(wins == RACERS, "some replaces failed");
    let left = store.list_devices(&user).await?;
    ensure!(
        left.len() == 1,
        "{} backup-code sets left after concurrent replaces",
        left.len()
    );
    Ok(())
}

/// 64 tasks take the same ceremony at once: exactly one gets it.
pub async fn race_take_ceremony<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("race")?;
    let ceremony = ceremony_record(Some(&user), CeremonyKind::SecondFactor, LIVE + 300)?;
    store.insert_ceremony(ceremony.clone()).await?;
    let id = ceremony.id;
    let wins = race(&store, |s, _| {
        let user = user.clone();
        async move {
            s.take_ceremony(id, Some(&user), CeremonyKind::SecondFactor, UnixTime::from_secs(LIVE))
                .await
                .map(|taken| taken.is_some())
        }
    })
    .await?;
    ensure!(
        wins == 1,
        "{wins} of {RACERS} concurrent takes of one ceremony succeeded"
    );
    Ok(())
}

/// 64 tasks swap the same sign counter at once, each to its own new value: exactly one wins,
/// and its value is stored.
pub async fn race_webauthn_counter<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("race")?;
    let key = webauthn_record(&user, 1, fresh_credential_id()?, false)?;
    store.insert_device(key.clone()).await?;
    let id = key.id;
    let wins = race(&store, |s, i| {
        let user = user.clone();
        let update = WebAuthnUse {
            sign_count: 8 + i as u32,
            backup_eligible: true,
            backup_state: i % 2 == 0,
        };
        async move {
            s.record_webauthn_use(&user, id, 7, update, UnixTime::from_secs(9_000))
                .await
        }
    })
    .await?;
    ensure!(
        wins == 1,
        "{wins} of {RACERS} concurrent compare-and-swaps of one sign counter succeeded"
    );
    let got = store
        .device(&user, id)
        .await?
        .ok_or(Failure("credential vanished".into()))?;
    let count = webauthn(&got).map(|w| w.sign_count);
    ensure!(
        count.is_some_and(|c| (8..8 + RACERS as u32).contains(&c)),
        "after racing uses the counter is {count:?}, not one of the racers' values"
    );
    Ok(())
}

/// 64 tasks insert records (of different users, with different ids) with the same credential
/// id at once: exactly one insert succeeds, the others are a `Conflict`.
pub async fn race_unique_credential_id<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let cred = fresh_credential_id()?;
    let mut records = Vec::with_capacity(RACERS);
    for i in 0..RACERS {
        records.push(webauthn_record(
            &fresh_user("race")?,
            i as u64,
            cred.clone(),
            i % 2 == 0,
        )?);
    }
    let records = Arc::new(records);
    let wins = race(&store, |s, i| {
        let records = records.clone();
        async move {
            let record = records
                .get(i)
                .cloned()
                .ok_or(StoreError::InvalidRecord("no such record"))?;
            match s.insert_device(record).await {
                Ok(()) => Ok(true),
                Err(StoreError::Conflict) => Ok(false),
                Err(e) => Err(e),
            }
        }
    })
    .await?;
    ensure!(
        wins == 1,
        "{wins} of {RACERS} concurrent inserts of one credential id succeeded"
    );
    let found = store.find_credential(&cred).await?;
    ensure!(
        found.as_ref().is_some_and(|f| records.contains(f)),
        "after racing inserts the credential id is not found as one of the racers' records"
    );
    let mut stored = 0;
    for record in records.iter() {
        stored += store.list_devices(&record.user).await?.len();
    }
    ensure!(
        stored == 1,
        "{stored} records hold one credential id after concurrent inserts"
    );
    Ok(())
}

/// 64 tasks delete a user's last two confirmed methods at once, half of them one, half the
/// other: exactly one delete succeeds and one confirmed method remains.
pub async fn race_delete_unless_last<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("race")?;
    let codes = backup_record(&user, 1, 2)?;
    let key = webauthn_record(&user, 2, fresh_credential_id()?, false)?;
    store.insert_device(codes.clone()).await?;
    store.insert_device(key.clone()).await?;
    let ids = [codes.id, key.id];
    let wins = race(&store, |s, i| {
        let user = user.clone();
        let id = ids[i % 2];
        async move {
            s.delete_device_unless_last(&user, id)
                .await
                .map(|outcome| outcome == DeleteOutcome::Deleted)
        }
    })
    .await?;
    ensure!(
        wins == 1,
        "{wins} of {RACERS} concurrent deletes of a user's last two confirmed methods succeeded"
    );
    let left = store.list_devices(&user).await?;
    let confirmed = left.iter().filter(|d| d.confirmed).count();
    ensure!(
        confirmed == 1 && left.len() == 1 && (left.contains(&codes) || left.contains(&key)),
        "after concurrent deletes of a user's last two confirmed methods {confirmed} confirmed of {} remain",
        left.len()
    );
    Ok(())
}

/// [`DeviceStore::settle_attempt`]: against a counter that moved it changes nothing and reports
/// the counter as it is; a miss, a spent slot or step, a hit of the other factor's kind and a
/// hit on another user's method are charged (the counter set to `on_miss`, nothing else); a hit
/// is accepted and the counter set to `on_hit`, exactly.
pub async fn settle_attempt<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let totp = totp_record(&alice, 1)?;
    let set = backup_record(&alice, 2, 4)?;
    let bobs = totp_record(&bob, 3)?;
    for d in [&totp, &set, &bobs] {
        store.insert_device(d.clone()).await?;
    }
    let zero = ThrottleState::default();
    let counter = |failures: u32, budget: u64| ThrottleState {
        failures,
        last_failure_at: Some(UnixTime::from_secs(500 + u64::from(failures))),
        budget_until: Some(UnixTime::from_secs(budget)),
    };
    let (two, three) = (counter(2, 80_000), counter(3, 90_000));
    let cleared = ThrottleState {
        budget_until: Some(UnixTime::from_secs(90_000)),
        ..zero
    };
    let now = UnixTime::from_secs(1_000);
    let attempt = |factor: Factor, admitted: ThrottleState, hit: Option<Hit>, on_miss: ThrottleState| Settle {
        factor,
        admitted,
        hit,
        on_hit: cleared,
        on_miss,
        now,
        methods: None,
    };
    let totp_hit = Some(Hit::TotpStep {
        device: totp.id,
        step: 10,
    });
    let code_hit = Some(Hit::BackupCode {
        device: set.id,
        slot: 1,
    });
    for factor in [Factor::Totp, Factor::BackupCodes] {
        ensure!(
            store.swap_throttle(&alice, factor, zero, two).await?,
            "could not set up the {factor:?} counter"
        );
    }

    // A moved counter: nothing changes, and the store says what the counter holds.
    for (factor, hit) in [(Factor::Totp, totp_hit), (Factor::BackupCodes, code_hit)] {
        for admitted in [zero, three, counter(2, 80_001)] {
            let got = store
                .settle_attempt(&alice, &attempt(factor, admitted, hit, three))
                .await?;
            ensure!(
                got == Settlement::Moved(two),
                "{factor:?} settled against {admitted:?} while the counter held {two:?}: {got:?}"
            );
        }
        ensure!(
            store.throttle(&alice, factor).await? == two,
            "a settlement against a moved {factor:?} counter changed it"
        );
    }
    let got = store
        .device(&alice, totp.id)
        .await?
        .ok_or(Failure("device vanished".into()))?;
    ensure!(
        last_step(&got).is_none() && got.last_used_at.is_none(),
        "a settlement against a moved counter recorded the step"
    );
    let got = store
        .device(&alice, set.id)
        .await?
        .ok_or(Failure("set vanished".into()))?;
    ensure!(
        slot_used(&got, 1) == Some(false) && got.last_used_at.is_none(),
        "a settlement against a moved counter spent the code"
    );

    // Charged, with nothing but the counter changed: no hit, the other factor's kind, another
    // user's method, a slot out of range.
    let charged_cases = [
        (Factor::Totp, None, "a miss"),
        (Factor::Totp, code_hit, "a backup-code hit on the TOTP counter"),
        (
            Factor::Totp,
            Some(Hit::TotpStep {
                device: bobs.id,
                step: 10,
            }),
            "a hit on another user's device",
        ),
        (Factor::BackupCodes, None, "a miss"),
        (Factor::BackupCodes, totp_hit, "a TOTP hit on the backup-code counter"),
        (
            Factor::BackupCodes,
            Some(Hit::BackupCode {
                device: set.id,
                slot: 99,
            }),
            "a slot out of range",
        ),
    ];
    for (factor, hit, what) in charged_cases {
        let before = store.throttle(&alice, factor).await?;
        let after = ThrottleState {
            failures: before.failures + 1,
            ..three
        };
        let got = store
            .settle_attempt(&alice, &attempt(factor, before, hit, after))
            .await?;
        ensure!(got == Settlement::Charged, "{what} was not charged: {got:?}");
        ensure!(
            store.throttle(&alice, factor).await? == after,
            "{what}: the counter does not hold on_miss"
        );
    }
    let got = store
        .device(&alice, totp.id)
        .await?
        .ok_or(Failure("device vanished".into()))?;
    ensure!(last_step(&got).is_none(), "a charged settlement recorded a step");
    let got = store
        .device(&bob, bobs.id)
        .await?
        .ok_or(Failure("device vanished".into()))?;
    ensure!(
        last_step(&got).is_none(),
        "alice's settlement recorded a step on bob's device"
    );
    ensure!(
        store.throttle(&bob, Factor::Totp).await? == zero,
        "alice's settlement touched bob's counter"
    );

    // Accepted: the hit is written, the counter set to on_hit; the same hit again is charged.
    for (factor, hit) in [(Factor::Totp, totp_hit), (Factor::BackupCodes, code_hit)] {
        let before = store.throttle(&alice, factor).await?;
        let got = store
            .settle_attempt(&alice, &attempt(factor, before, hit, three))
            .await?;
        ensure!(
            got == Settlement::Accepted,
            "a {factor:?} hit was not accepted: {got:?}"
        );
        ensure!(
            store.throttle(&alice, factor).await? == cleared,
            "an accepted {factor:?} hit did not set on_hit"
        );
        let got = store
            .settle_attempt(&alice, &attempt(factor, cleared, hit, three))
            .await?;
        ensure!(
            got == Settlement::Charged,
            "a spent {factor:?} hit was not charged: {got:?}"
        );
        ensure!(
            store.throttle(&alice, factor).await? == three,
            "a spent {factor:?} hit did not set on_miss"
        );
    }
    let older = Some(Hit::TotpStep {
        device: totp.id,
        step: 9,
    });
    let got = store
        .settle_attempt(&alice, &attempt(Factor::Totp, three, older, two))
        .await?;
    ensure!(
        got == Settlement::Charged,
        "an older TOTP step was not charged: {got:?}"
    );
    let got = store
        .device(&alice, totp.id)
        .await?
        .ok_or(Failure("device vanished".into()))?;
    ensure!(
        last_step(&got) == Some(10) && got.last_used_at == Some(now) && got.confirmed,
        "an accepted TOTP hit did not record step, time and confirmation"
    );
    let got = store
        .device(&alice, set.id)
        .await?
        .ok_or(Failure("set vanished".into()))?;
    ensure!(
        slot_used(&got, 1) == Some(true) && got.last_used_at == Some(now),
        "an accepted backup-code hit did not spend the slot and stamp the set"
    );
    ensure!(slot_used(&got, 0) == Some(false), "another slot was spent");
    Ok(())
}

/// A burst of [`RACERS`] attempts of one factor admitted under one counter state, one of them a
/// hit: exactly one settles (accepted or charged); every other one finds the counter moved and
/// learns its new state. The hit is accepted only if it settled first.
pub async fn race_settle_burst<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("burst")?;
    let totp = totp_record(&user, 1)?;
    store.insert_device(totp.clone()).await?;
    let now = UnixTime::from_secs(2_000);
    let on_miss = ThrottleState {
        failures: 1,
        last_failure_at: Some(now),
        budget_until: Some(UnixTime::from_secs(9_000)),
    };
    let hit_index = RACERS / 2;
    let outcomes = race_outcomes(&store, move |s, i| {
        let user = user.clone();
        async move {
            let hit = (i == hit_index).then_some(Hit::TotpStep {
                device: totp.id,
                step: 77,
            });
            // Every outcome moves the counter away from the admitted state (were `on_hit` the
            // admitted state, an attempt arriving after the accepted hit would rightly settle
            // against the cleared counter).
            let attempt = Settle {
                factor: Factor::Totp,
                admitted: ThrottleState::default(),
                hit,
                on_hit: ThrottleState {
                    budget_until: Some(UnixTime::from_secs(8_000)),
                    ..ThrottleState::default()
                },
                on_miss,
                now,
                methods: None,
            };
            s.settle_attempt(&user, &attempt).await
        }
    })
    .await?;
    let settled: Vec<usize> = (0..RACERS)
        .filter(|i| !matches!(outcomes[*i], Settlement::Moved(_)))
        .collect();
    ensure!(
        settled.len() == 1,
        "{} of {RACERS} attempts admitted under one counter state settled",
        settled.len()
    );
    for (i, o) in outcomes.iter().enumerate() {
        if let Settlement::Moved(m) = o {
            ensure!(
                *m == on_miss || m.budget_until == Some(UnixTime::from_secs(8_000)),
                "attempt {i} saw {m:?}"
            );
        }
        ensure!(
            *o != Settlement::Accepted || i == hit_index,
            "attempt {i}, a miss, was accepted"
        );
    }
    Ok(())
}

/// Runs `op(store, i)` in [`RACERS`] tasks released together; returns their results in order.
async fn race_outcomes<S, T, F, Fut>(store: &Arc<S>, op: F) -> Result<Vec<T>, Failure>
where
    S: DeviceStore + 'static,
    T: Send + 'static,
    F: Fn(Arc<S>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut tasks = Vec::with_capacity(RACERS);
    for i in 0..RACERS {
        let (barrier, fut) = (barrier.clone(), op(store.clone(), i));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            fut.await
        }));
    }
    let mut out = Vec::with_capacity(RACERS);
    for t in tasks {
        out.push(t.await.map_err(|e| Failure(format!("task failed: {e}")))??);
    }
    Ok(out)
}

/// Through the service: a correct code that the counter refuses at settlement (the counter
/// moved to backoff or lock after the attempt's read) makes exactly the same store calls as a
/// wrong code in the same position, and gets the same answer. Checked for TOTP and backup
/// codes, with a [`CountingStore`] around the store under test.
pub async fn uniform_settlement<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    use crate::clock::ManualClock;
    use crate::service::{Mfa, MfaConfig, Outcome};
    use crate::totp::{code_at, decode_base32_secret};

    let fail = |e: crate::error::Error| Failure(format!("service error: {e}"));
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let keys = Keyring::new(SealingKey::new(
        KeyId::new("conformance").map_err(|e| Failure(e.to_string()))?,
        [7; 32],
    ));
    let mfa = Mfa::new(
        CountingStore::new(store),
        keys,
        MfaConfig::new("Conformance").map_err(|e| Failure(e.to_string()))?,
    )
    .map_err(fail)?
    .with_clock(clock.clone());
    let policy = mfa.config().throttle;
    // The counter states the attempt meets at settlement, as of `now`.
    let moved_to = |lock: bool, now: UnixTime| {
        if lock {
            ThrottleState {
                failures: policy.lockout_after(),
                last_failure_at: Some(now),
                budget_until: None,
            }
        } else {
            // Backoff: the sixth failure waits.
            ThrottleState {
                failures: 5,
                last_failure_at: Some(now),
                budget_until: Some(now.plus_secs(5 * policy.budget_refill_secs())),
            }
        }
    };
    for factor in [Factor::Totp, Factor::BackupCodes] {
        for lock in [false, true] {
            let mut seen = Vec::new();
            for right in [true, false] {
                let user = fresh_user("uniform")?;
                let e = mfa.enroll_totp(&user, "u", None).await.map_err(fail)?;
                let secret =
                    decode_base32_secret(e.secret_base32.expose_secret()).map_err(|e| Failure(e.to_string()))?;
                let first = code_at(&secret, &TotpParams::default(), clock.now());
                ensure!(
                    mfa.confirm_totp(&user, e.device, first.expose_secret())
                        .await
                        .map_err(fail)?
                        .is_accepted(),
                    "could not confirm TOTP"
                );
                let set = mfa.generate_backup_codes(&user, None).await.map_err(fail)?;
                clock.advance(30);
                let code = match (factor, right) {
                    (Factor::Totp, true) => code_at(&secret, &TotpParams::default(), clock.now())
                        .expose_secret()
                        .to_owned(),
                    (Factor::Totp, false) => {
                        let c = code_at(&secret, &TotpParams::default(), clock.now());
                        let n: u32 = c.expose_secret().parse().map_err(|_| Failure("code".into()))?;
                        format!("{:06}", (n + 1) % 1_000_000)
                    }
                    (_, true) => set
                        .codes
                        .first()
                        .ok_or(Failure("no code".into()))?
                        .expose_secret()
                        .to_owned(),
                    (_, false) => "0000-0000-0000".to_owned(),
                };
                // The counter moves after the attempt's read: the read reports the default.
                let counter = moved_to(lock, clock.now());
                ensure!(
                    mfa.store()
                        .swap_throttle(&user, factor, ThrottleState::default(), counter)
                        .await?,
                    "could not move the counter"
                );
                mfa.store().stale_counter_once(ThrottleState::default());
                mfa.store().take_calls();
                let outcome = match factor {
                    Factor::Totp => mfa.verify_totp(&user, &code).await,
                    _ => mfa.verify_backup_code(&user, &code).await,
                }
                .map_err(fail)?;
                ensure!(
                    matches!(outcome, Outcome::Throttled { .. } | Outcome::Locked),
                    "{factor:?}: a {} code admitted under a stale counter got {outcome:?}",
                    if right { "right" } else { "wrong" }
                );
                let calls = mfa.store().take_calls();
                ensure!(
                    mfa.store().throttle(&user, factor).await? == counter,
                    "{factor:?}: a refused attempt changed the counter"
                );
                // The answer, relative to now (each user's run starts 30 s later).
                let answer = match outcome {
                    Outcome::Throttled { retry_at } => Some(retry_at.secs_since(clock.now())),
                    _ => None,
                };
                seen.push((answer, calls));
            }
            ensure!(
                seen.first() == seen.last(),
                "{factor:?} refused at settlement: the right code {:?} and a wrong one {:?} differ",
                seen.first(),
                seen.last()
            );
        }
    }
    Ok(())
}

/// [`DeviceStore::settle_attempt`] with a [`MethodsDigest`]: a digest that is not the user's
/// confirmed methods' is [`Settlement::Stale`] for a hit and a miss alike, changing nothing;
/// the current digest settles as usual. The store computes the digest exactly as
/// [`MethodsDigest::of`] does: an unconfirmed TOTP enrollment is not part of it, a new
/// confirmed device is, and so is each spent backup code (but not an accepted TOTP step).
pub async fn settle_checks_methods<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("digest")?;
    let mut totp = totp_record(&alice, 1)?;
    totp.confirmed = true;
    let set = backup_record(&alice, 2, 4)?;
    store.insert_device(totp.clone()).await?;
    store.insert_device(set.clone()).await?;
    let now = UnixTime::from_secs(1_000);
    let clear = ThrottleState::default();
    let charged = ThrottleState {
        failures: 1,
        last_failure_at: Some(now),
        budget_until: None,
    };
    let attempt = |factor: Factor, hit: Option<Hit>, methods: MethodsDigest| Settle {
        factor,
        admitted: clear,
        hit,
        on_hit: clear,
        on_miss: charged,
        now,
        methods: Some(methods),
    };
    for factor in [Factor::Totp, Factor::BackupCodes] {
        let devices = store.list_devices(&alice).await?;
        let current = MethodsDigest::of(factor, &devices);
        let other = MethodsDigest::from_bytes([0x33; 32]);
        let hit = match factor {
            Factor::Totp => Hit::TotpStep {
                device: totp.id,
                step: 10,
            },
            _ => Hit::BackupCode {
                device: set.id,
                slot: 0,
            },
        };
        for h in [Some(hit), None] {
            let got = store.settle_attempt(&alice, &attempt(factor, h, other)).await?;
            ensure!(
                got == Settlement::Stale,
                "{factor:?}: a settlement under another methods digest gave {got:?} (hit: {})",
                h.is_some()
            );
        }
        ensure!(
            store.list_devices(&alice).await? == devices,
            "{factor:?}: a stale settlement changed the methods"
        );
        ensure!(
            store.throttle(&alice, factor).await? == clear,
            "{factor:?}: a stale settlement changed the counter"
        );
        // A counter that moved is reported as moved, whatever the digest.
        let moved = Settle {
            admitted: charged,
            ..attempt(factor, None, other)
        };
        let got = store.settle_attempt(&alice, &moved).await?;
        ensure!(
            got == Settlement::Moved(clear),
            "{factor:?}: a moved counter under a stale digest gave {got:?}"
        );
        let got = store
            .settle_attempt(&alice, &attempt(factor, Some(hit), current))
            .await?;
        ensure!(
            got == Settlement::Accepted,
            "{factor:?}: a hit under the current methods digest gave {got:?}"
        );
        let after = MethodsDigest::of(factor, &store.list_devices(&alice).await?);
        match factor {
            Factor::Totp => ensure!(after == current, "an accepted TOTP step changed the TOTP digest"),
            _ => ensure!(after != current, "a spent backup code left the digest as it was"),
        }
        // The store's digest is the one computed from its records: a miss under it is charged.
        let got = store.settle_attempt(&alice, &attempt(factor, None, after)).await?;
        ensure!(
            got == Settlement::Charged,
            "{factor:?}: a miss under the methods' digest gave {got:?}"
        );
        store.clear_throttle(&alice, factor).await?;
    }
    let before = MethodsDigest::of(Factor::Totp, &store.list_devices(&alice).await?);
    store.insert_device(totp_record(&alice, 3)?).await?;
    let got = store
        .settle_attempt(&alice, &attempt(Factor::Totp, None, before))
        .await?;
    ensure!(
        got == Settlement::Charged,
        "an unconfirmed enrollment changed the store's TOTP digest: {got:?}"
    );
    store.clear_throttle(&alice, Factor::Totp).await?;
    let mut second = totp_record(&alice, 4)?;
    second.confirmed = true;
    store.insert_device(second).await?;
    let got = store
        .settle_attempt(&alice, &attempt(Factor::Totp, None, before))
        .await?;
    ensure!(
        got == Settlement::Stale,
        "a second confirmed TOTP device left the store's TOTP digest as it was: {got:?}"
    );
    Ok(())
}

/// Through the service, with its verification cache: [`cached_verification_between`] with both
/// services on one store.
pub async fn cached_verification<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    cached_verification_between(store.clone(), store).await
}

/// Through the service, with its verification cache, as two app servers: service A on store
/// `a`, service B on store `b` (the same database). For TOTP and backup codes, a right code
/// and a wrong one make the same store calls from A, and get the right answers:
///
/// - with A's cache warm: one call, the settlement;
/// - after B changed the user's methods (a TOTP device imported, a backup code spent): the
///   settlement finds A's copy stale, then one read and one settlement;
/// - after the counter was moved elsewhere to a backoff or a lock: the settlement, which finds
///   the counter moved, and a refusal that leaves the counter as it is.
///
/// Then 64 verifications of one right code race from A and B (both warm): exactly one is
/// accepted.
pub async fn cached_verification_between<S: DeviceStore + 'static>(a: Arc<S>, b: Arc<S>) -> CheckResult {
    use crate::clock::ManualClock;
    use crate::secret::SecretBytes;
    use crate::service::{Mfa, MfaConfig, Outcome};
    use crate::totp::{code_at, decode_base32_secret, encode_base32_secret};

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Scenario {
        Warm,
        ChangedElsewhere,
        ThrottledElsewhere,
        LockedElsewhere,
    }
    let fail = |e: crate::error::Error| Failure(format!("service error: {e}"));
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let keys = Keyring::new(SealingKey::new(
        KeyId::new("conformance").map_err(|e| Failure(e.to_string()))?,
        [7; 32],
    ));
    let config = MfaConfig::new("Conformance").map_err(|e| Failure(e.to_string()))?;
    let mfa_a = Arc::new(
        Mfa::new(CountingStore::new(a), keys.clone(), config.clone())
            .map_err(fail)?
            .with_clock(clock.clone()),
    );
    let mfa_b = Arc::new(
        Mfa::new(CountingStore::new(b), keys, config)
            .map_err(fail)?
            .with_clock(clock.clone()),
    );
    let params = TotpParams::default();
    // Enrolls `user` through B (TOTP confirmed, a backup-code set): the secret and the codes.
    let enroll = async |user: &UserId| -> Result<(SecretBytes, Vec<String>), Failure> {
        let e = mfa_b.enroll_totp(user, "u", None).await.map_err(fail)?;
        let secret = decode_base32_secret(e.secret_base32.expose_secret()).map_err(|e| Failure(e.to_string()))?;
        let first = code_at(&secret, &params, clock.now());
        ensure!(
            mfa_b
                .confirm_totp(user, e.device, first.expose_secret())
                .await
                .map_err(fail)?
                .is_accepted(),
            "could not confirm TOTP"
        );
        let set = mfa_b.generate_backup_codes(user, None).await.map_err(fail)?;
        Ok((secret, set.codes.iter().map(|c| c.expose_secret().to_owned()).collect()))
    };
    let wrong_totp = |right: &str| -> Result<String, Failure> {
        let n: u32 = right.parse().map_err(|_| Failure("code".into()))?;
        Ok(format!("{:06}", (n + 1) % 1_000_000))
    };
    for factor in [Factor::Totp, Factor::BackupCodes] {
        for scenario in [
            Scenario::Warm,
            Scenario::ChangedElsewhere,
            Scenario::ThrottledElsewhere,
            Scenario::LockedElsewhere,
        ] {
            let mut seen = Vec::new();
            for right in [true, false] {
                let user = fresh_user("cached")?;
                // Enrolled through B, then A signs in once: A's cache holds the user.
                let (secret, codes) = enroll(&user).await?;
                let code_of =
                    |i: usize| -> Result<String, Failure> { codes.get(i).cloned().ok_or(Failure("no code".into())) };
                clock.advance(30);
                let warm = match factor {
                    Factor::Totp => {
                        let c = code_at(&secret, &params, clock.now());
                        mfa_a.verify_totp(&user, c.expose_secret()).await
                    }
                    _ => mfa_a.verify_backup_code(&user, &code_of(0)?).await,
                }
                .map_err(fail)?;
                ensure!(warm.is_accepted(), "{factor:?}: the warm-up sign-in failed: {warm:?}");
                clock.advance(30);
                let mut next_code = 1;
                match scenario {
                    Scenario::Warm => {}
                    Scenario::ChangedElsewhere => match factor {
                        Factor::Totp => {
                            let other = SecretBytes::new(vec![right as u8 + 40; 20]);
                            mfa_b
                                .import_totp(&user, encode_base32_secret(&other).expose_secret(), None)
                                .await
                                .map_err(fail)?;
                        }
                        _ => {
                            let spent = mfa_b.verify_backup_code(&user, &code_of(1)?).await.map_err(fail)?;
                            ensure!(spent.is_accepted(), "B could not spend a code: {spent:?}");
                            next_code = 2;
                        }
                    },
                    Scenario::ThrottledElsewhere | Scenario::LockedElsewhere => {
                        let policy = mfa_a.config().throttle;
                        let locked = if scenario == Scenario::LockedElsewhere {
                            ThrottleState {
                                failures: policy.lockout_after(),
                                last_failure_at: Some(clock.now()),
                                budget_until: None,
                            }
                        } else {
                            // Backoff: the sixth failure waits.
                            ThrottleState {
                                failures: 5,
                                last_failure_at: Some(clock.now()),
                                budget_until: Some(clock.now().plus_secs(5 * policy.budget_refill_secs())),
                            }
                        };
                        ensure!(
                            mfa_b
                                .store()
                                .swap_throttle(&user, factor, ThrottleState::default(), locked)
                                .await?,
                            "could not lock the counter"
                        );
                    }
                }
                let code = match (factor, right) {
                    (Factor::Totp, true) => code_at(&secret, &params, clock.now()).expose_secret().to_owned(),
                    (Factor::Totp, false) => wrong_totp(code_at(&secret, &params, clock.now()).expose_secret())?,
                    (_, true) => code_of(next_code)?,
                    (_, false) => "0000-0000-0000".to_owned(),
                };
                let counter_before = mfa_a.store().inner().throttle(&user, factor).await?;
                mfa_a.store().take_calls();
                let outcome = match factor {
                    Factor::Totp => mfa_a.verify_totp(&user, &code).await,
                    _ => mfa_a.verify_backup_code(&user, &code).await,
                }
                .map_err(fail)?;
                let calls = mfa_a.store().take_calls();
                let expected: &[&str] = match scenario {
                    Scenario::Warm | Scenario::ThrottledElsewhere | Scenario::LockedElsewhere => &["settle_attempt"],
                    Scenario::ChangedElsewhere => &["settle_attempt", "verification_state", "settle_attempt"],
                };
                ensure!(
                    calls == expected,
                    "{factor:?} {scenario:?}, {} code: A made {calls:?}, not {expected:?}",
                    if right { "right" } else { "wrong" }
                );
                let answer_ok = match scenario {
                    Scenario::LockedElsewhere => matches!(outcome, Outcome::Locked),
                    Scenario::ThrottledElsewhere => matches!(outcome, Outcome::Throttled { .. }),
                    _ if right => outcome.is_accepted(),
                    _ => matches!(outcome, Outcome::Rejected),
                };
                ensure!(
                    answer_ok,
                    "{factor:?} {scenario:?}, {} code: {outcome:?}",
                    if right { "right" } else { "wrong" }
                );
                if matches!(scenario, Scenario::ThrottledElsewhere | Scenario::LockedElsewhere) {
                    ensure!(
                        mfa_a.store().inner().throttle(&user, factor).await? == counter_before,
                        "{factor:?}: a refusal from a cached view changed the counter"
                    );
                }
                seen.push(calls);
            }
            ensure!(
                seen.first() == seen.last(),
                "{factor:?} {scenario:?}: the right code {:?} and a wrong one {:?} made different calls",
                seen.first(),
                seen.last()
            );
        }
    }
    // Both servers warm, one right code, 64 verifications from both: one acceptance.
    for factor in [Factor::Totp, Factor::BackupCodes] {
        let user = fresh_user("cached-race")?;
        let (secret, codes) = enroll(&user).await?;
        let mut warm_ups = Vec::new();
        for (i, mfa) in [&mfa_a, &mfa_b].into_iter().enumerate() {
            clock.advance(30);
            let outcome = match factor {
                Factor::Totp => {
                    let c = code_at(&secret, &params, clock.now());
                    mfa.verify_totp(&user, c.expose_secret()).await
                }
                _ => {
                    mfa.verify_backup_code(&user, codes.get(i).map_or("", String::as_str))
                        .await
                }
            }
            .map_err(fail)?;
            warm_ups.push(outcome.is_accepted());
        }
        ensure!(warm_ups == [true, true], "{factor:?}: warm-ups failed: {warm_ups:?}");
        clock.advance(30);
        let code = match factor {
            Factor::Totp => code_at(&secret, &params, clock.now()).expose_secret().to_owned(),
            _ => codes.get(2).cloned().ok_or(Failure("no code".into()))?,
        };
        let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
        let mut tasks = Vec::with_capacity(RACERS);
        for i in 0..RACERS {
            let mfa = if i % 2 == 0 { mfa_a.clone() } else { mfa_b.clone() };
            let (barrier, user, code) = (barrier.clone(), user.clone(), code.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                match factor {
                    Factor::Totp => mfa.verify_totp(&user, &code).await,
                    _ => mfa.verify_backup_code(&user, &code).await,
                }
            }));
        }
        let mut accepted = 0;
        for t in tasks {
            let outcome = t
                .await
                .map_err(|e| Failure(format!("task failed: {e}")))?
                .map_err(fail)?;
            accepted += usize::from(outcome.is_accepted());
        }
        ensure!(
            accepted == 1,
            "{factor:?}: one code raced from two warm servers was accepted {accepted} times"
        );
    }
    Ok(())
}

/// [`DeviceStore::delete_device_unless_last`] counts usable methods only: a backup-code set with
/// no code left does not keep the user's last real method, and can itself always be deleted;
/// an unconfirmed TOTP enrollment does not count either.
pub async fn last_usable_method<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let mut totp = totp_record(&alice, 1)?;
    totp.confirmed = true;
    let mut spent = backup_record(&alice, 2, 2)?;
    if let DeviceData::BackupCodes(set) = &mut spent.data {
        for slot in &mut set.slots {
            slot.used = true;
        }
    }
    let pending = totp_record(&alice, 3)?;
    for d in [&totp, &spent, &pending] {
        store.insert_device(d.clone()).await?;
    }
    let got = store.delete_device_unless_last(&alice, totp.id).await?;
    ensure!(
        got == DeleteOutcome::LastMethod,
        "the last usable method was deleted beside a spent backup-code set and a pending enrollment: {got:?}"
    );
    let got = store.delete_device_unless_last(&alice, spent.id).await?;
    ensure!(
        got == DeleteOutcome::Deleted,
        "a spent backup-code set could not be deleted: {got:?}"
    );
    // A set with one code left does count.
    let mut one_left = backup_record(&alice, 4, 2)?;
    if let DeviceData::BackupCodes(set) = &mut one_left.data
        && let Some(slot) = set.slots.first_mut()
    {
        slot.used = true;
    }
    store.insert_device(one_left.clone()).await?;
    let got = store.delete_device_unless_last(&alice, totp.id).await?;
    ensure!(
        got == DeleteOutcome::Deleted,
        "a method could not be deleted beside a set with a code left: {got:?}"
    );
    let got = store.delete_device_unless_last(&alice, one_left.id).await?;
    ensure!(
        got == DeleteOutcome::LastMethod,
        "the last usable set was deleted: {got:?}"
    );
    Ok(())
}

/// [`DeviceStore::delete_unconfirmed_totp`] deletes exactly the user's unconfirmed TOTP devices
/// other than the one kept: confirmed ones, other kinds and other users' devices stay.
pub async fn delete_unconfirmed_totp<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let stale = [totp_record(&alice, 1)?, totp_record(&alice, 2)?];
    let keep = totp_record(&alice, 3)?;
    let mut confirmed = totp_record(&alice, 4)?;
    confirmed.confirmed = true;
    let set = backup_record(&alice, 5, 2)?;
    let bobs = totp_record(&bob, 6)?;
    for d in stale.iter().chain([&keep, &confirmed, &set, &bobs]) {
        store.insert_device(d.clone()).await?;
    }
    let deleted = store.delete_unconfirmed_totp(&alice, keep.id).await?;
    ensure!(deleted == 2, "{deleted} devices deleted, not the 2 stale enrollments");
    let mut left: Vec<DeviceId> = store.list_devices(&alice).await?.iter().map(|d| d.id).collect();
    left.sort();
    let mut expected = vec![keep.id, confirmed.id, set.id];
    expected.sort();
    ensure!(left == expected, "after the clean-up alice has {left:?}");
    ensure!(
        store.device(&bob, bobs.id).await?.is_some(),
        "alice's clean-up deleted bob's enrollment"
    );
    ensure!(
        store.delete_unconfirmed_totp(&alice, keep.id).await? == 0,
        "a second clean-up deleted more"
    );
    Ok(())
}

/// Paging for key rotation: [`DeviceStore::list_backup_code_sets`] lists every backup-code set
/// whole (every slot, whatever the page size) and only sets, and
/// [`DeviceStore::list_trusted_devices_page`] every remember-this-device record, both in
/// strictly increasing id order across pages.
pub async fn rotation_paging<S: DeviceStore>(store: &S) -> CheckResult {
    let mut sets = Vec::new();
    let mut tokens = Vec::new();
    for (i, slots) in [3usize, 5, 1, 4].into_iter().enumerate() {
        let user = fresh_user("rotation")?;
        let set = backup_record(&user, i as u64, slots)?;
        store.insert_device(set.clone()).await?;
        store.insert_device(totp_record(&user, 100 + i as u64)?).await?;
        sets.push(set);
        let token = trusted_record(&user, i as u64, LIVE)?;
        store.insert_trusted_device(token.clone()).await?;
        tokens.push(token);
    }
    const LIMIT: usize = 2;
    let mut seen = Vec::new();
    let mut after: Option<DeviceId> = None;
    loop {
        let page = store.list_backup_code_sets(after, LIMIT).await?;
        ensure!(
            page.len() <= LIMIT,
            "a page of {} backup-code sets with limit {LIMIT}",
            page.len()
        );
        let Some(last) = page.last() else { break };
        for record in &page {
            ensure!(
                matches!(record.data, DeviceData::BackupCodes(_)),
                "list_backup_code_sets listed a record that is not a backup-code set"
            );
            ensure!(
                after.is_none_or(|a| record.id > a),
                "list_backup_code_sets is not in increasing id order"
            );
            after = Some(record.id);
            if let Some(mine) = sets.iter().find(|s| s.id == record.id) {
                ensure!(record == mine, "a listed backup-code set is not whole: {record:?}");
                seen.push(record.id);
            }
        }
        after = Some(last.id);
    }
    ensure!(
        sets.iter().all(|s| seen.iter().filter(|id| **id == s.id).count() == 1),
        "list_backup_code_sets did not list each set exactly once"
    );
    let mut seen = Vec::new();
    let mut after: Option<TrustedDeviceId> = None;
    loop {
        let page = store.list_trusted_devices_page(after, LIMIT).await?;
        ensure!(
            page.len() <= LIMIT,
            "a page of {} tokens with limit {LIMIT}",
            page.len()
        );
        let Some(last) = page.last() else { break };
        for record in &page {
            ensure!(
                after.is_none_or(|a| record.id > a),
                "list_trusted_devices_page is not in increasing id order"
            );
            after = Some(record.id);
            if let Some(mine) = tokens.iter().find(|t| t.id == record.id) {
                ensure!(record == mine, "a listed token differs from the one stored");
                seen.push(record.id);
            }
        }
        after = Some(last.id);
    }
    ensure!(
        tokens
            .iter()
            .all(|t| seen.iter().filter(|id| **id == t.id).count() == 1),
        "list_trusted_devices_page did not list each token exactly once"
    );
    Ok(())
}

/// A stale-enrollment clean-up racing the confirmation of that enrollment: half of
/// [`RACERS`] tasks settle a hit on the pending device (confirming it), half delete the user's
/// unconfirmed devices except another one. Whatever the order, a device whose confirmation was
/// accepted still exists, confirmed, afterwards.
pub async fn race_confirm_against_cleanup<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("cleanup")?;
    let pending = totp_record(&user, 1)?;
    let keep = totp_record(&user, 2)?;
    store.insert_device(pending.clone()).await?;
    store.insert_device(keep.clone()).await?;
    let now = UnixTime::from_secs(3_000);
    let outcomes = race_outcomes(&store, |s, i| {
        let user = user.clone();
        let (pending, keep) = (pending.id, keep.id);
        async move {
            if i % 2 == 0 {
                let attempt = Settle {
                    factor: Factor::Totp,
                    admitted: ThrottleState::default(),
                    hit: Some(Hit::TotpStep {
                        device: pending,
                        step: 10 + i as u64,
                    }),
                    on_hit: ThrottleState::default(),
                    on_miss: ThrottleState::default(),
                    now,
                    methods: None,
                };
                Ok(s.settle_attempt(&user, &attempt).await? == Settlement::Accepted)
            } else {
                s.delete_unconfirmed_totp(&user, keep).await.map(|_| false)
            }
        }
    })
    .await?;
    let confirmed = outcomes.iter().filter(|accepted| **accepted).count();
    let left = store.device(&user, pending.id).await?;
    if confirmed > 0 {
        ensure!(
            left.as_ref().is_some_and(|d| d.confirmed),
            "{confirmed} concurrent confirmations were accepted, yet the clean-up deleted the device"
        );
    } else {
        ensure!(
            left.is_none(),
            "no confirmation was accepted, yet the pending device survived"
        );
    }
    ensure!(
        store.device(&user, keep.id).await?.is_some(),
        "the kept enrollment was deleted"
    );
    Ok(())
}

/// Runs every check in turn.
///
/// # Errors
///
/// The first [`Failure`], prefixed with the check's name.
pub async fn run_all<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    macro_rules! check {
        ($name:ident, $arg:expr) => {
            $name($arg)
                .await
                .map_err(|e| Failure(format!("{}: {e}", stringify!($name))))?;
        };
    }
    check!(insert_get_list, &*store);
    check!(rename, &*store);
    check!(delete_and_reset, &*store);
    check!(replace_backup_codes, &*store);
    check!(consume_backup_code_once, &*store);
    check!(totp_step_high_water_mark, &*store);
    check!(throttle_compare_and_swap, &*store);
    check!(verification_state, &*store);
    check!(success_against_throttle, &*store);
    check!(webauthn_credentials, &*store);
    check!(webauthn_counter_compare_and_swap, &*store);
    check!(ceremony_take_once, &*store);
    check!(delete_unless_last, &*store);
    check!(totp_paging_and_reseal, &*store);
    check!(trusted_devices, &*store);
    check!(race_backup_code, store.clone());
    check!(race_totp_step, store.clone());
    check!(race_throttle_swap, store.clone());
    check!(race_success_against_failures, store.clone());
    check!(race_replace_backup_codes, store.clone());
    check!(race_take_ceremony, store.clone());
    check!(race_webauthn_counter, store.clone());
    check!(race_unique_credential_id, store.clone());
    check!(race_delete_unless_last, store.clone());
    check!(settle_attempt, &*store);
    check!(settle_checks_methods, &*store);
    check!(last_usable_method, &*store);
    check!(delete_unconfirmed_totp, &*store);
    check!(rotation_paging, &*store);
    check!(race_confirm_against_cleanup, store.clone());
    check!(race_settle_burst, store.clone());
    check!(uniform_settlement, store.clone());
    check!(cached_verification, store.clone());
    Ok(())
}

/// Generates one `#[tokio::test]` per conformance check for a store.
///
/// `$make` is an expression that evaluates to a future yielding the store (an `async` block),
/// evaluated once per test.
///
/// ```no_run
/// multifactor::conformance_tests!(async { multifactor::MemoryStore::new() });
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@plain $make; insert_get_list, rename, delete_and_reset,
            replace_backup_codes, consume_backup_code_once, totp_step_high_water_mark,
            throttle_compare_and_swap, verification_state, success_against_throttle,
            webauthn_credentials, webauthn_counter_compare_and_swap, ceremony_take_once,
            delete_unless_last, totp_paging_and_reseal, trusted_devices, settle_attempt,
            last_usable_method, delete_unconfirmed_totp, rotation_paging, settle_checks_methods);
        $crate::conformance_tests!(@race $make; race_backup_code, race_totp_step,
            race_throttle_swap, race_success_against_failures, race_replace_backup_codes,
            race_take_ceremony, race_webauthn_counter, race_unique_credential_id, race_delete_unless_last,
            race_settle_burst, uniform_settlement, race_confirm_against_cleanup, cached_verification);
    };
    (@plain $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            #[allow(clippy::panic)]
            async fn $name() {
                let store = $make.await;
                if let Err(e) = $crate::conformance::$name(&store).await {
                    panic!("{}: {e}", stringify!($name));
                }
            }
        )*
    };
    (@race $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            #[allow(clippy::panic)]
            async fn $name() {
                let store = ::std::sync::Arc::new($make.await);
                for round in 0..20 {
                    if let Err(e) = $crate::conformance::$name(store.clone()).await {
                        panic!("{} (round {round}): {e}", stringify!($name));
                    }
                }
            }
        )*
    };
}
