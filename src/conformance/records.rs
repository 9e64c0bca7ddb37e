//! Records: insert, read, list, rename, delete (the last device kept), reset, and what a verification reads.

use super::*;

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
    ensure!(
        matches!(
            store.insert_device(backup_record(&alice, 4_000, 2)?).await,
            Err(StoreError::Conflict)
        ),
        "a second backup-code set of a user was not a Conflict"
    );
    ensure!(
        store.list_devices(&alice).await? == vec![codes, totp],
        "a refused second set changed the user's devices"
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

/// `verification_state` reads what `list_devices` and `throttle` read, for one factor: the
/// user's devices of that factor in order, and that factor's counter (not another factor's,
/// not another user's).
pub async fn verification_state<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let nobody = fresh_user("nobody")?;
    let VerificationState {
        devices,
        throttle: counter,
        ..
    } = store.verification_state(&nobody, Factor::Totp).await?;
    ensure!(
        devices.is_empty() && counter == ThrottleState::default(),
        "a user without devices has state {devices:?} {counter:?}"
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
        last_miss: None,
    };
    let bob_counter = ThrottleState {
        failures: 2,
        last_failure_at: Some(UnixTime::from_secs(60)),
        budget_until: Some(UnixTime::from_secs(400_000)),
        last_miss: None,
    };
    ensure!(
        store
            .swap_throttle(&alice, Factor::Totp.into(), ThrottleState::default(), totp_counter)
            .await?,
        "could not set up the counter"
    );
    ensure!(
        store
            .swap_throttle(&bob, Factor::BackupCodes.into(), ThrottleState::default(), bob_counter)
            .await?,
        "could not set up bob's counter"
    );
    for (factor, wanted, expected) in [
        (Factor::Totp, vec![totp.clone(), second_totp.clone()], totp_counter),
        (Factor::BackupCodes, vec![set.clone()], ThrottleState::default()),
        (Factor::WebAuthn, vec![], ThrottleState::default()),
    ] {
        let VerificationState {
            devices,
            throttle: counter,
            ..
        } = store.verification_state(&alice, factor).await?;
        ensure!(
            devices == wanted,
            "verification_state({factor:?}) listed {devices:?}, not alice's {} such devices in order",
            wanted.len()
        );
        ensure!(
            counter == expected,
            "verification_state read the {factor:?} counter as {counter:?}, not {expected:?}"
        );
    }
    // Bob has no backup codes: nothing to verify, so the counter may read as the default.
    let VerificationState {
        devices,
        throttle: counter,
        ..
    } = store.verification_state(&bob, Factor::BackupCodes).await?;
    ensure!(
        devices.is_empty() && (counter == bob_counter || counter == ThrottleState::default()),
        "bob's state is {} devices and {counter:?}",
        devices.len()
    );
    let VerificationState {
        devices,
        throttle: counter,
        ..
    } = store.verification_state(&bob, Factor::Totp).await?;
    ensure!(
        devices.len() == 1 && counter == ThrottleState::default(),
        "bob's TOTP state is {} devices and {counter:?}",
        devices.len()
    );
    ensure!(
        store
            .swap_throttle(&bob, Factor::Totp.into(), ThrottleState::default(), bob_counter)
            .await?,
        "could not set up bob's TOTP counter"
    );
    let VerificationState {
        devices: _,
        throttle: counter,
        ..
    } = store.verification_state(&bob, Factor::Totp).await?;
    ensure!(counter == bob_counter, "bob's TOTP counter read as {counter:?}");
    Ok(())
}

/// `delete_device_unless_last` deletes an unconfirmed device always and a confirmed one only
/// while another confirmed device of the same user remains; it touches only the named user's.
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
        "deleting another user's device was {outcome:?}, not NotFound"
    );
    let outcome = store.delete_device_unless_last(&bob, codes.id).await?;
    ensure!(
        outcome == DeleteOutcome::NotFound,
        "another user deleting the user's device was {outcome:?}, not NotFound"
    );
    let outcome = store.delete_device_unless_last(&alice, fresh_id()?).await?;
    ensure!(
        outcome == DeleteOutcome::NotFound,
        "deleting an unknown id was {outcome:?}, not NotFound"
    );
    ensure!(
        store.list_devices(&bob).await? == vec![bobs.clone()],
        "a refused cross-user delete removed the other user's device"
    );
    ensure!(
        store.list_devices(&alice).await? == vec![codes.clone(), key.clone(), pending.clone()],
        "a refused cross-user delete removed one of the user's devices"
    );

    // Two confirmed devices and an unconfirmed one: one confirmed device may go.
    let outcome = store.delete_device_unless_last(&alice, codes.id).await?;
    ensure!(
        outcome == DeleteOutcome::Deleted,
        "deleting one of two confirmed devices was {outcome:?}, not Deleted"
    );
    ensure!(
        store.device(&alice, codes.id).await?.is_none(),
        "a device reported Deleted is still there"
    );
    // The unconfirmed TOTP record does not count: the remaining key is the last device.
    for _ in 0..2 {
        let outcome = store.delete_device_unless_last(&alice, key.id).await?;
        ensure!(
            outcome == DeleteOutcome::LastDevice,
            "deleting the last confirmed device (next to an unconfirmed one) was {outcome:?}, not LastDevice"
        );
    }
    ensure!(
        store.device(&alice, key.id).await?.as_ref() == Some(&key),
        "the last confirmed device is gone or changed after a refused delete"
    );
    let outcome = store.delete_device_unless_last(&alice, pending.id).await?;
    ensure!(
        outcome == DeleteOutcome::Deleted,
        "deleting an unconfirmed device was {outcome:?}, not Deleted"
    );
    let outcome = store.delete_device_unless_last(&alice, pending.id).await?;
    ensure!(
        outcome == DeleteOutcome::NotFound,
        "deleting a deleted device again was {outcome:?}, not NotFound"
    );
    ensure!(
        store.list_devices(&alice).await? == vec![key.clone()],
        "after the deletes the user does not have exactly the last confirmed device"
    );
    // An unconfirmed device goes even when the user has no confirmed one.
    let outcome = store.delete_device_unless_last(&carol, carols.id).await?;
    ensure!(
        outcome == DeleteOutcome::Deleted,
        "deleting a user's only (unconfirmed) device was {outcome:?}, not Deleted"
    );
    ensure!(
        store.list_devices(&carol).await?.is_empty(),
        "an unconfirmed device reported Deleted is still there"
    );

    // A TOTP device confirmed by its first accepted step counts as a confirmed device.
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
        "deleting a confirmed device next to a TOTP device confirmed by a step was {outcome:?}, not Deleted"
    );
    let outcome = store.delete_device_unless_last(&alice, phone.id).await?;
    ensure!(
        outcome == DeleteOutcome::LastDevice,
        "deleting the last confirmed device (a TOTP device confirmed by a step) was {outcome:?}, not LastDevice"
    );
    ensure!(
        store.list_devices(&bob).await? == vec![bobs],
        "deletes of one user touched another's devices"
    );
    Ok(())
}

/// [`DeviceStore::delete_device_unless_last`] counts usable devices only: a backup-code set with
/// no code left does not keep the user's last real device, and can itself always be deleted;
/// an unconfirmed TOTP enrollment does not count either.
pub async fn last_usable_device<S: DeviceStore>(store: &S) -> CheckResult {
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
        got == DeleteOutcome::LastDevice,
        "the last usable device was deleted beside a spent backup-code set and a pending enrollment: {got:?}"
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
        "a device could not be deleted beside a set with a code left: {got:?}"
    );
    let got = store.delete_device_unless_last(&alice, one_left.id).await?;
    ensure!(
        got == DeleteOutcome::LastDevice,
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

/// TOTP fingerprints are unique per user: a second TOTP device of the user with the same
/// fingerprint is a `Conflict` (and nothing is stored), another user's is not, records without
/// one never conflict, and a deleted device's fingerprint can be used again.
pub async fn totp_fingerprints<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let with = |record: DeviceRecord, fingerprint: Option<[u8; 32]>| -> DeviceRecord {
        let mut record = record;
        if let DeviceData::Totp(t) = &mut record.data {
            t.fingerprint = fingerprint;
        }
        record
    };
    let shared = Some([0x3c; 32]);
    let first = with(totp_record(&alice, 1_000)?, shared);
    store.insert_device(first.clone()).await?;
    let second = with(totp_record(&alice, 1_001)?, shared);
    ensure!(
        matches!(store.insert_device(second.clone()).await, Err(StoreError::Conflict)),
        "a second TOTP device of the user with the same fingerprint was not a Conflict"
    );
    ensure!(
        store.device(&alice, second.id).await?.is_none(),
        "a refused TOTP device was stored"
    );
    let bobs = with(totp_record(&bob, 1_000)?, shared);
    store.insert_device(bobs.clone()).await?;
    let got = store.device(&bob, bobs.id).await?;
    ensure!(
        got.as_ref() == Some(&bobs),
        "another user's TOTP device with the same fingerprint was not stored exactly: {got:?}"
    );
    for created in [1_002, 1_003] {
        store.insert_device(with(totp_record(&alice, created)?, None)).await?;
    }
    ensure!(
        store.delete_device(&alice, first.id).await?,
        "delete of a TOTP device failed"
    );
    store.insert_device(second.clone()).await?;
    ensure!(
        store.device(&alice, second.id).await?.as_ref() == Some(&second),
        "a deleted device's fingerprint could not be used again"
    );
    store.delete_user_devices(&alice).await?;
    store.delete_user_devices(&bob).await?;
    Ok(())
}
