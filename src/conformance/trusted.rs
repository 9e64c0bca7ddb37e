//! Remember-this-device records.

use super::*;

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
