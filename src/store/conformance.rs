//! The public conformance suite: what every [`DeviceStore`] must do, races included.
//!
//! Run it against your own store with [`conformance_tests!`](crate::conformance_tests), which
//! generates one `#[tokio::test]` per check (your crate needs `tokio` with `macros` and
//! `rt-multi-thread` as a dev-dependency), or call [`run_all`] or single checks directly from
//! a multi-threaded tokio runtime. Every check uses fresh random user ids, so one store (one
//! database) can run them all, even concurrently.
//!
//! The race checks spawn [`RACERS`] tasks on the runtime that present the same code (the same
//! backup-code slot, TOTP step or throttle state) at once, released together by a barrier,
//! and require exactly one success.

use std::fmt;
use std::sync::Arc;

use crate::backup_codes::{BackupCodeRecord, CodeSlot};
use crate::clock::UnixTime;
use crate::device::{DeviceData, DeviceId, DeviceName, DeviceRecord, Factor, UserId};
use crate::error::StoreError;
use crate::rng::{OsSeededRng, Rng};
use crate::seal::{KeyId, Keyring, SealContext, SealingKey};
use crate::store::DeviceStore;
use crate::throttle::ThrottleState;
use crate::totp::{Algorithm, TotpParams, TotpRecord};

/// How many tasks race in each race check.
pub const RACERS: usize = 64;

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
    let rng = OsSeededRng::new().map_err(|e| Failure(e.to_string()))?;
    let mut bytes = [0u8; 8];
    rng.try_fill_bytes(&mut bytes).map_err(|e| Failure(e.to_string()))?;
    UserId::new(format!("conformance-{tag}-{}", u64::from_le_bytes(bytes))).map_err(|e| Failure(e.to_string()))
}

fn fresh_id() -> Result<DeviceId, Failure> {
    let rng = OsSeededRng::new().map_err(|e| Failure(e.to_string()))?;
    DeviceId::generate(&rng).map_err(|e| Failure(e.to_string()))
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
    let rng = OsSeededRng::new().map_err(|e| Failure(e.to_string()))?;
    let key_id = KeyId::new("conformance").map_err(|e| Failure(e.to_string()))?;
    let keys = Keyring::new(SealingKey::new(key_id, [3; 32]));
    let context = SealContext {
        purpose: "totp-secret",
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
            .consume_backup_code(&alice, old.id, 0, UnixTime::from_secs(9))
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
        !store.consume_backup_code(&bob, set.id, 2, now).await?,
        "another user consumed the code"
    );
    ensure!(
        store.consume_backup_code(&alice, set.id, 2, now).await?,
        "first consume failed"
    );
    ensure!(
        !store.consume_backup_code(&alice, set.id, 2, now).await?,
        "a code was consumed twice"
    );
    ensure!(
        !store.consume_backup_code(&alice, set.id, 6, now).await?,
        "slot out of range was consumed"
    );
    ensure!(
        !store.consume_backup_code(&alice, set.id, usize::MAX, now).await?,
        "slot usize::MAX was consumed"
    );
    ensure!(
        !store.consume_backup_code(&alice, totp.id, 0, now).await?,
        "a TOTP device was consumed as codes"
    );
    ensure!(
        !store.consume_backup_code(&alice, fresh_id()?, 0, now).await?,
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
        !store.accept_totp_step(&bob, totp.id, 10, now).await?,
        "another user's step was accepted"
    );
    ensure!(
        !store.accept_totp_step(&alice, set.id, 10, now).await?,
        "a backup-code set took a TOTP step"
    );
    ensure!(
        store.accept_totp_step(&alice, totp.id, 10, now).await?,
        "first step refused"
    );
    ensure!(
        !store.accept_totp_step(&alice, totp.id, 10, now).await?,
        "the same step was accepted twice"
    );
    ensure!(
        !store.accept_totp_step(&alice, totp.id, 9, now).await?,
        "an older step was accepted"
    );
    ensure!(
        !store.accept_totp_step(&alice, totp.id, 0, now).await?,
        "step 0 was accepted after 10"
    );
    let later = UnixTime::from_secs(5_060);
    ensure!(
        store.accept_totp_step(&alice, totp.id, 11, later).await?,
        "a newer step was refused"
    );
    let got = store
        .device(&alice, totp.id)
        .await?
        .ok_or(Failure("device vanished".into()))?;
    ensure!(last_step(&got) == Some(11), "last step not stored");
    ensure!(got.confirmed, "accepting a step did not confirm the device");
    ensure!(got.last_used_at == Some(later), "last-used time not set");
    let huge = u64::MAX;
    ensure!(
        store.accept_totp_step(&alice, totp.id, huge, later).await?,
        "step u64::MAX refused"
    );
    ensure!(
        !store.accept_totp_step(&alice, totp.id, huge, later).await?,
        "step u64::MAX accepted twice"
    );
    let got = store
        .device(&alice, totp.id)
        .await?
        .ok_or(Failure("device vanished".into()))?;
    ensure!(last_step(&got) == Some(huge), "step u64::MAX not stored exactly");
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
    };
    let two = ThrottleState {
        failures: 2,
        last_failure_at: Some(UnixTime::from_secs(u64::MAX)),
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
        "u64::MAX time not stored exactly"
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
        async move { s.consume_backup_code(&user, id, 3, UnixTime::from_secs(7)).await }
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
        async move { s.accept_totp_step(&user, id, 1_000, UnixTime::from_secs(30_000)).await }
    })
    .await?;
    ensure!(
        wins == 1,
        "{wins} of {RACERS} concurrent acceptances of one TOTP step succeeded"
    );
    let wins = race(&store, |s, i| {
        let user = user.clone();
        async move {
            s.accept_totp_step(&user, id, 1_001 + i as u64, UnixTime::from_secs(30_030))
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

/// 64 tasks swap the same throttle state at once: exactly one wins.
pub async fn race_throttle_swap<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("race")?;
    let wins = race(&store, |s, i| {
        let user = user.clone();
        let new = ThrottleState {
            failures: 1,
            last_failure_at: Some(UnixTime::from_secs(i as u64)),
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
    check!(race_backup_code, store.clone());
    check!(race_totp_step, store.clone());
    check!(race_throttle_swap, store.clone());
    check!(race_replace_backup_codes, store.clone());
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
            throttle_compare_and_swap);
        $crate::conformance_tests!(@race $make; race_backup_code, race_totp_step,
            race_throttle_swap, race_replace_backup_codes);
    };
    (@plain $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            #[allow(clippy::panic)]
            async fn $name() {
                let store = $make.await;
                if let Err(e) = $crate::store::conformance::$name(&store).await {
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
                    if let Err(e) = $crate::store::conformance::$name(store.clone()).await {
                        panic!("{} (round {round}): {e}", stringify!($name));
                    }
                }
            }
        )*
    };
}
