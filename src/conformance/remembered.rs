//! Remember-this-browser records.

use super::*;

/// A remember-this-browser record with a distinctive hash (from `00` to `ff`, random between).
pub fn trusted_record(user: &UserId, created: u64, expires: u64) -> Result<RememberedBrowserRecord, Failure> {
    let rng = OsRng::new().map_err(|e| Failure(e.to_string()))?;
    let id = RememberedBrowserId::generate(&rng).map_err(|e| Failure(e.to_string()))?;
    let mut hash = [0u8; 32];
    rng.try_fill_bytes(&mut hash).map_err(|e| Failure(e.to_string()))?;
    hash[0] = 0x00;
    hash[1] = 0xff;
    hash[30] = 0x80;
    hash[31] = 0x00;
    Ok(RememberedBrowserRecord {
        id,
        user: user.clone(),
        key_id: KeyId::new("conformance").map_err(|e| Failure(e.to_string()))?,
        hash,
        created_at: UnixTime::from_secs(created),
        expires_at: UnixTime::from_secs(expires),
        last_used_at: None,
        skips_second_factor: true,
    })
}

/// Remember-this-browser records come back field for field, are unique by id, listed per user
/// oldest first, touched and deleted only by their own user.
pub async fn remembered_browsers<S: DeviceStore + BrowserStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let newer = trusted_record(&alice, 2_000, MAX_STORED_INTEGER)?;
    let older = trusted_record(&alice, 1_000, 1_000 + 30 * 86_400)?;
    let bobs = trusted_record(&bob, 500, 500 + 86_400)?;
    // Inserted newest first, so insertion order is not the listing order.
    for r in [&newer, &bobs, &older] {
        store.insert_remembered_browser(r.clone()).await?;
    }
    for r in [&newer, &older, &bobs] {
        let got = store.remembered_browser(r.id).await?;
        ensure!(
            got.as_ref() == Some(r),
            "a remember-this-browser record did not round-trip field for field: {got:?}"
        );
    }
    let unknown = RememberedBrowserId::generate(&OsRng::new().map_err(|e| Failure(e.to_string()))?)
        .map_err(|e| Failure(e.to_string()))?;
    ensure!(
        store.remembered_browser(unknown).await?.is_none(),
        "an unknown remember-this-browser id was found"
    );

    let mut duplicate = trusted_record(&bob, 3_000, 4_000)?;
    duplicate.id = older.id;
    ensure!(
        matches!(
            store.insert_remembered_browser(duplicate).await,
            Err(StoreError::Conflict)
        ),
        "a second remember-this-browser record with an existing id (of another user) was not a Conflict"
    );
    ensure!(
        store.remembered_browser(older.id).await?.as_ref() == Some(&older),
        "a conflicting insert changed the remember-this-browser record"
    );

    let list = store.list_remembered_browsers(&alice).await?;
    ensure!(
        list == vec![older.clone(), newer.clone()],
        "list_remembered_browsers is not the user's records oldest first: {list:?}"
    );
    ensure!(
        store.list_remembered_browsers(&bob).await? == vec![bobs.clone()],
        "bob's remember-this-browser list is wrong"
    );
    ensure!(
        store.list_remembered_browsers(&fresh_user("nobody")?).await?.is_empty(),
        "an unknown user has remember-this-browser records"
    );

    let at = UnixTime::from_secs(3_000);
    ensure!(
        store.touch_remembered_browser(&alice, older.id, at).await?,
        "touching an own remember-this-browser record failed"
    );
    let mut touched = older.clone();
    touched.last_used_at = Some(at);
    ensure!(
        store.remembered_browser(older.id).await?.as_ref() == Some(&touched),
        "a touch did not set exactly the last-used time"
    );
    ensure!(
        !store.touch_remembered_browser(&alice, bobs.id, at).await?,
        "touched another user's remember-this-browser record"
    );
    ensure!(
        !store.touch_remembered_browser(&alice, unknown, at).await?,
        "touched an unknown remember-this-browser record"
    );
    ensure!(
        store.remembered_browser(bobs.id).await?.as_ref() == Some(&bobs),
        "a refused touch changed another user's record"
    );
    let max = UnixTime::from_secs(MAX_STORED_INTEGER);
    ensure!(
        store.touch_remembered_browser(&alice, newer.id, max).await?,
        "a touch at time 2^63-1 failed"
    );
    let mut newer_touched = newer.clone();
    newer_touched.last_used_at = Some(max);
    ensure!(
        store.remembered_browser(newer.id).await?.as_ref() == Some(&newer_touched),
        "times 2^63-1 of a remember-this-browser record not stored exactly"
    );

    ensure!(
        !store.delete_remembered_browser(&bob, older.id).await?,
        "deleted another user's remember-this-browser record"
    );
    ensure!(
        store.remembered_browser(older.id).await?.is_some(),
        "a refused delete removed the record"
    );
    ensure!(
        store.delete_remembered_browser(&alice, older.id).await?,
        "delete of an own remember-this-browser record failed"
    );
    ensure!(
        !store.delete_remembered_browser(&alice, older.id).await?,
        "deleted the same remember-this-browser record twice"
    );
    ensure!(
        store.remembered_browser(older.id).await?.is_none(),
        "a deleted remember-this-browser record is still found"
    );
    ensure!(
        store.delete_user_remembered_browsers(&alice, Browsers::All).await? == 1,
        "deleting the user's remember-this-browser records did not report 1 removed"
    );
    ensure!(
        store.list_remembered_browsers(&alice).await?.is_empty() && store.remembered_browser(newer.id).await?.is_none(),
        "deleting the user's remember-this-browser records left some"
    );
    ensure!(
        store.delete_user_remembered_browsers(&alice, Browsers::All).await? == 0,
        "a second delete of the user's remember-this-browser records removed something"
    );
    ensure!(
        store.list_remembered_browsers(&bob).await? == vec![bobs.clone()]
            && store.remembered_browser(bobs.id).await?.as_ref() == Some(&bobs),
        "deleting one user's remember-this-browser records touched another's"
    );
    Ok(())
}
