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
//! once (or the same sent code), released together by a barrier, and require exactly one success.
//!
//! Ceremonies that are meant to stay alive expire around [`LIVE`] (in the year 2096), and
//! [`ceremony_take_once`] purges only at random moments far below it, so concurrent checks on
//! one store do not purge each other's live ceremonies.

mod counting;

pub use self::counting::CountingStore;

use std::fmt;
use std::sync::Arc;

use crate::backup_codes::{BackupCodeConfig, BackupCodeRecord, CodeSlot};
use crate::clock::UnixTime;
use crate::enrollment::EnrollmentGrace;
use crate::error::StoreError;
use crate::id::{CeremonyId, DeviceId, DeviceName, RememberedBrowserId, UserId};
use crate::kind::Factor;
use crate::remembered_browser::RememberedBrowserRecord;
use crate::rng::{OsRng, Rng};
use crate::seal::{KeyId, Keyring, SealContext, SealedSecret, SealingKey};
use crate::store::{AdminStore, BrowserStore, CeremonyStore, DeviceStore, EnrollmentStore, Store};
use crate::store::{Browsers, DeleteOutcome, DevicesVersion, Hit, Settle, Settlement, VerificationState};
use crate::store::{DeviceData, DeviceRecord};
use crate::throttle::{Counter, ThrottleState};
use crate::totp::{Algorithm, TotpParams, TotpRecord};
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

mod codes;
mod keys;
mod known;
mod races;
mod records;
mod remembered;
mod sent_codes;
mod service;
mod settlement;
mod throttle;
mod webauthn;

pub use self::codes::*;
pub use self::keys::*;
pub use self::known::*;
pub use self::races::*;
pub use self::records::*;
pub use self::remembered::*;
pub use self::sent_codes::*;
pub use self::service::*;
pub use self::settlement::*;
pub use self::throttle::*;
pub use self::webauthn::*;

/// The service configuration of the checks that go through the service: the defaults, with
/// backup codes of 12 characters (60 bits). Codes under 64 bits are throttled like TOTP, so
/// both code factors exercise the throttle's settlement (codes of 64 bits or more are never
/// held back, and would show nothing here).
fn service_config() -> Result<crate::service::MfaConfig, Failure> {
    let mut config = crate::service::MfaConfig::new("Conformance").map_err(|e| Failure(e.to_string()))?;
    config.backup_codes = BackupCodeConfig::new(BackupCodeConfig::DEFAULT_COUNT, BackupCodeConfig::MIN_LENGTH)
        .map_err(|e| Failure(e.to_string()))?;
    Ok(config)
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
            prehash: None,
            slots: (0..slots)
                .map(|i| CodeSlot {
                    hash: [i as u8 ^ 0x5c; 32],
                    used: false,
                })
                .collect(),
        }),
    })
}

/// A fingerprint distinct for each device id.
fn fingerprint_of(id: DeviceId) -> [u8; 32] {
    let mut fingerprint = [0x7f; 32];
    fingerprint[..16].copy_from_slice(id.as_bytes());
    fingerprint
}

/// An unconfirmed TOTP record with a real sealed blob (SHA256, 8 digits, 60 s) and a
/// fingerprint of its own.
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
            fingerprint: Some(fingerprint_of(id)),
        }),
    })
}

/// A WebAuthn record with distinctive values in every field: a 16-byte user handle from `00` to
/// `ff`, a JSON credential, sign counter 7, backup-eligible but not backed up, user verified, a
/// YubiKey 5's AAGUID.
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
            aaguid: Some([
                0xcb, 0x69, 0x48, 0x1e, 0x8f, 0xf7, 0x40, 0x39, 0x93, 0xec, 0x0a, 0x27, 0x29, 0xa1, 0x54, 0xa8,
            ]),
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

/// Every conformance check by name, in one list: the checks that take the store
/// (`sequential`) and the races, which take it shared (`race`). [`run_all`],
/// [`conformance_tests!`](crate::conformance_tests) and any harness of a store's own expand
/// this list, so a new check is written down once.
///
/// `conformance_checks!(path::to::macro!(ARGS))` expands to
/// `path::to::macro! { ARGS; sequential: [NAME, ...]; race: [NAME, ...] }`.
///
/// ```
/// macro_rules! count {
///     (; sequential: [$($s:ident),*]; race: [$($r:ident),*]) => {
///         ([$(stringify!($s)),*].len(), [$(stringify!($r)),*].len())
///     };
/// }
/// let (sequential, races) = multifactor::conformance_checks!(count!());
/// assert!(sequential > 20 && races > 20);
/// ```
#[macro_export]
macro_rules! conformance_checks {
    ($($then:ident)::+ ! ($($args:tt)*)) => {
        $($then)::+! { $($args)*;
            sequential: [insert_get_list, rename, delete_and_reset, replace_backup_codes,
                insert_first_backup_codes, consume_backup_code_once, totp_step_high_water_mark,
                throttle_compare_and_swap, verification_state, success_against_throttle,
                webauthn_credentials, webauthn_counter_compare_and_swap, ceremony_take_once,
                delete_unless_last, totp_paging_and_reseal, totp_fingerprints, counter_based_otp,
                prehashed_backup_codes, remembered_browsers, known_browser_counters, key_checks,
                enrollment_deadlines, enrollment_skips, sent_codes, settle_attempt,
                settle_checks_devices, last_usable_device, delete_unconfirmed_totp, rotation_paging];
            race: [race_backup_code, race_totp_step, race_throttle_swap,
                race_success_against_failures, race_replace_backup_codes, race_take_ceremony,
                race_passwordless_marker, race_webauthn_counter, race_unique_credential_id,
                race_totp_fingerprint, race_duplicate_totp_import, race_delete_unless_last,
                race_confirm_against_cleanup, race_settle_burst, uniform_settlement,
                cached_verification, race_known_browser_revoke, race_first_backup_codes,
                race_enrollment_deadline, race_enrollment_skips, race_sent_code] }
    };
}

/// Runs every check in turn: the sequential ones, then the races (one round each).
///
/// # Errors
///
/// The first [`Failure`], prefixed with the check's name.
pub async fn run_all<S: Store + 'static>(store: Arc<S>) -> CheckResult {
    macro_rules! run {
        (; sequential: [$($sequential:ident),*]; race: [$($race:ident),*]) => {
            $(
                $sequential(&*store)
                    .await
                    .map_err(|e| Failure(format!("{}: {e}", stringify!($sequential))))?;
            )*
            $(
                $race(store.clone())
                    .await
                    .map_err(|e| Failure(format!("{}: {e}", stringify!($race))))?;
            )*
        };
    }
    crate::conformance_checks!(run!());
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
        $crate::conformance_checks!($crate::conformance_tests!(@all $make));
    };
    (@all $make:expr; sequential: [$($sequential:ident),*]; race: [$($race:ident),*]) => {
        $crate::conformance_tests!(@plain $make; $($sequential),*);
        $crate::conformance_tests!(@race $make; $($race),*);
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
