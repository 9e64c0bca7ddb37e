//! WebAuthn credentials, sign counters and ceremonies taken once.

use super::*;

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
pub async fn ceremony_take_once<S: DeviceStore + CeremonyStore>(store: &S) -> CheckResult {
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
