//! Backup codes spent once, sets replaced whole, and the TOTP high-water mark.

use super::*;

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

/// A counter-based (HOTP) device round-trips exactly (its period is 0), and its counter is the
/// same high-water mark: it moves only upward.
pub async fn counter_based_otp<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let mut hotp = totp_record(&alice, 1)?;
    if let DeviceData::Totp(t) = &mut hotp.data {
        t.params = TotpParams::hotp(Algorithm::Sha512, 7).map_err(|e| Failure(e.to_string()))?;
        t.last_step = Some(41);
    }
    hotp.confirmed = true;
    store.insert_device(hotp.clone()).await?;
    let got = store.device(&alice, hotp.id).await?;
    ensure!(
        got.as_ref() == Some(&hotp),
        "a counter-based device did not round-trip: {got:?}"
    );
    let now = UnixTime::from_secs(5_000);
    for (counter, accepted, why) in [
        (41, false, "the last counter was accepted again"),
        (40, false, "an older counter was accepted"),
        (42, true, "the next counter was refused"),
        (42, false, "a counter was accepted twice"),
        (50, true, "a counter ahead was refused"),
        (45, false, "the counter went back"),
    ] {
        ensure!(
            store
                .accept_totp_step(&alice, hotp.id, counter, now, ThrottleState::default())
                .await?
                == accepted,
            "{why}"
        );
    }
    let got = store
        .device(&alice, hotp.id)
        .await?
        .ok_or(Failure("device vanished".into()))?;
    ensure!(last_step(&got) == Some(50), "the counter was not stored");
    Ok(())
}

/// A backup-code set imported from another system's digests keeps what they were hashed with
/// (it round-trips exactly), and its codes are spent once like any other set's.
pub async fn prehashed_backup_codes<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let mut set = backup_record(&alice, 1, 3)?;
    if let DeviceData::BackupCodes(b) = &mut set.data {
        b.prehash = Some(crate::backup_codes::Prehash::KeycloakSha512);
    }
    store.insert_device(set.clone()).await?;
    let got = store.device(&alice, set.id).await?;
    ensure!(
        got.as_ref() == Some(&set),
        "a prehashed set did not round-trip: {got:?}"
    );
    let now = UnixTime::from_secs(5_000);
    ensure!(
        store
            .consume_backup_code(&alice, set.id, 1, now, ThrottleState::default())
            .await?,
        "a prehashed set's code was refused"
    );
    ensure!(
        !store
            .consume_backup_code(&alice, set.id, 1, now, ThrottleState::default())
            .await?,
        "a prehashed set's code was spent twice"
    );
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

/// [`DeviceStore::insert_first_backup_codes`]: a set is inserted for a user who has none and
/// refused, with nothing written, for a user who has one (another user's set does not count);
/// a record of another kind is an error.
pub async fn insert_first_backup_codes<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    store.replace_backup_codes(backup_record(&bob, 1, 3)?).await?;
    let first = backup_record(&alice, 2, 4)?;
    ensure!(
        store.insert_first_backup_codes(first.clone()).await?,
        "a first set was refused (another user's set counted)"
    );
    let second = backup_record(&alice, 3, 5)?;
    ensure!(
        !store.insert_first_backup_codes(second.clone()).await?,
        "a second set was inserted over the user's set"
    );
    let sets: Vec<DeviceRecord> = store
        .list_devices(&alice)
        .await?
        .into_iter()
        .filter(|d| matches!(d.data, DeviceData::BackupCodes(_)))
        .collect();
    ensure!(sets == vec![first], "the user's set changed: {sets:?}");
    ensure!(
        matches!(
            store.insert_first_backup_codes(totp_record(&alice, 4)?).await,
            Err(StoreError::InvalidRecord(_))
        ),
        "a TOTP record was taken for a backup-code set"
    );
    Ok(())
}

/// [`RACERS`] different first sets for one user at once: exactly one is inserted, and it is
/// the only set the user has.
pub async fn race_first_backup_codes<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let alice = fresh_user("alice")?;
    let sets = (0..RACERS)
        .map(|i| backup_record(&alice, i as u64, 2))
        .collect::<Result<Vec<_>, _>>()?;
    let sets = Arc::new(sets);
    let wins = race(&store, |store, i| {
        let sets = sets.clone();
        async move {
            match sets.get(i) {
                Some(set) => store.insert_first_backup_codes(set.clone()).await,
                None => Ok(false),
            }
        }
    })
    .await?;
    let held = store
        .list_devices(&alice)
        .await?
        .into_iter()
        .filter(|d| matches!(d.data, DeviceData::BackupCodes(_)))
        .count();
    ensure!(
        wins == 1 && held == 1,
        "{wins} concurrent first sets inserted, {held} held"
    );
    Ok(())
}
