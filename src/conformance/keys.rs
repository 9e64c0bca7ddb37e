//! Key rotation: paging TOTP devices and backup-code sets, re-sealing a secret by compare-and-swap.

use super::*;

fn sealed_secret(record: &DeviceRecord) -> Option<&SealedSecret> {
    match &record.data {
        DeviceData::Totp(t) => Some(&t.sealed_secret),
        _ => None,
    }
}

/// The fingerprint re-seals write in these checks (no other device has it).
const FRESH: [u8; 32] = [0xa5; 32];
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
pub async fn totp_paging_and_reseal<S: DeviceStore + AdminStore>(store: &S) -> CheckResult {
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
        !store.reseal_totp_secret(alice, target.id, &wrong, &new, &FRESH).await?,
        "a re-seal from a wrong expected secret succeeded"
    );
    ensure!(
        !store
            .reseal_totp_secret(bob, target.id, &expected, &new, &FRESH)
            .await?,
        "another user's TOTP secret was re-sealed"
    );
    ensure!(
        !store
            .reseal_totp_secret(alice, fresh_id()?, &expected, &new, &FRESH)
            .await?,
        "an unknown device was re-sealed"
    );
    let codes_id = others.first().copied().ok_or(Failure("no backup-code set".into()))?;
    ensure!(
        !store
            .reseal_totp_secret(alice, codes_id, &expected, &new, &FRESH)
            .await?,
        "a backup-code set was re-sealed"
    );
    // The fingerprint of another TOTP device of the same user: a conflict, and nothing changes.
    let taken = match &sibling.data {
        DeviceData::Totp(t) => t.fingerprint.ok_or(Failure("sibling without a fingerprint".into()))?,
        _ => return Err(Failure("sibling is not TOTP".into())),
    };
    ensure!(
        matches!(
            store
                .reseal_totp_secret(alice, target.id, &expected, &new, &taken)
                .await,
            Err(StoreError::Conflict)
        ),
        "a re-seal to the fingerprint of another TOTP device of the user was not a Conflict"
    );
    ensure!(
        store.device(alice, target.id).await?.as_ref() == Some(&before),
        "a refused re-seal changed the TOTP device"
    );

    ensure!(
        store
            .reseal_totp_secret(alice, target.id, &expected, &new, &FRESH)
            .await?,
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
        t.fingerprint = Some(FRESH);
    }
    ensure!(
        got == want,
        "a re-seal changed more than the sealed secret and fingerprint (name, confirmation, last step, times or parameters)"
    );
    ensure!(
        !store
            .reseal_totp_secret(alice, target.id, &expected, &wrong, &FRESH)
            .await?,
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
        store
            .reseal_totp_secret(alice, target.id, &new, &expected, &FRESH)
            .await?,
        "a second re-seal from the current secret was refused"
    );
    Ok(())
}

/// Paging for key rotation and the credential inventory: [`AdminStore::list_backup_code_sets`]
/// lists every backup-code set whole (every slot, whatever the page size) and only sets,
/// [`AdminStore::list_remembered_browsers_page`] every remember-this-browser record, and
/// [`AdminStore::list_webauthn_credentials`] every security key and passkey whole and nothing
/// else, each in strictly increasing id order across pages.
pub async fn rotation_paging<S: DeviceStore + BrowserStore + AdminStore>(store: &S) -> CheckResult {
    let mut sets = Vec::new();
    let mut tokens = Vec::new();
    for (i, slots) in [3usize, 5, 1, 4].into_iter().enumerate() {
        let user = fresh_user("rotation")?;
        let set = backup_record(&user, i as u64, slots)?;
        store.insert_device(set.clone()).await?;
        store.insert_device(totp_record(&user, 100 + i as u64)?).await?;
        sets.push(set);
        let token = trusted_record(&user, i as u64, LIVE)?;
        store.insert_remembered_browser(token.clone()).await?;
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
    let mut after: Option<RememberedBrowserId> = None;
    loop {
        let page = store.list_remembered_browsers_page(after, LIMIT).await?;
        ensure!(
            page.len() <= LIMIT,
            "a page of {} tokens with limit {LIMIT}",
            page.len()
        );
        let Some(last) = page.last() else { break };
        for record in &page {
            ensure!(
                after.is_none_or(|a| record.id > a),
                "list_remembered_browsers_page is not in increasing id order"
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
        "list_remembered_browsers_page did not list each token exactly once"
    );
    // The inventory of security keys and passkeys, across users.
    let mut keys = Vec::new();
    for i in 0..3u64 {
        let user = fresh_user("inventory")?;
        let key = webauthn_record(&user, i, fresh_credential_id()?, i % 2 == 0)?;
        store.insert_device(key.clone()).await?;
        store.insert_device(totp_record(&user, 10 + i)?).await?;
        keys.push(key);
    }
    let mut seen = Vec::new();
    let mut after: Option<DeviceId> = None;
    loop {
        let page = store.list_webauthn_credentials(after, LIMIT).await?;
        ensure!(
            page.len() <= LIMIT,
            "a page of {} credentials with limit {LIMIT}",
            page.len()
        );
        let Some(last) = page.last() else { break };
        for record in &page {
            ensure!(
                matches!(record.data, DeviceData::WebAuthn(_)),
                "list_webauthn_credentials listed a record that is not a security key or passkey"
            );
            ensure!(
                after.is_none_or(|a| record.id > a),
                "list_webauthn_credentials is not in increasing id order"
            );
            after = Some(record.id);
            if let Some(mine) = keys.iter().find(|k| k.id == record.id) {
                ensure!(record == mine, "a listed credential is not whole: {record:?}");
                seen.push(record.id);
            }
        }
        after = Some(last.id);
    }
    ensure!(
        keys.iter().all(|k| seen.iter().filter(|id| **id == k.id).count() == 1),
        "list_webauthn_credentials did not list each credential exactly once"
    );
    Ok(())
}

/// [`DeviceStore::key_check`]: the first check value stored for a key id stays and is what
/// every later call returns, whatever it passes; ids are kept apart, and all 32 bytes kept.
pub async fn key_checks<S: DeviceStore>(store: &S) -> CheckResult {
    let id = KeyId::new(format!("conformance-{}", random_u64()?)).map_err(|e| Failure(e.to_string()))?;
    let other = KeyId::new(format!("conformance-{}", random_u64()?)).map_err(|e| Failure(e.to_string()))?;
    let mut first = [0xa5; 32];
    first[0] = 0x00;
    first[31] = 0xff;
    ensure!(
        store.key_check(&id, first).await? == first,
        "a first check value was not stored"
    );
    ensure!(
        store.key_check(&id, [0x11; 32]).await? == first,
        "a second check value replaced the first"
    );
    ensure!(
        store.key_check(&other, [0x22; 32]).await? == [0x22; 32],
        "another key id got this one's check value"
    );
    Ok(())
}

/// [`EnrollmentStore::enrollment_deadline`]: the first deadline stored for a user stays and is what
/// every later call returns, whatever it proposes; users are kept apart; deleting the user's
/// devices leaves it; [`EnrollmentStore::set_enrollment_deadline`] changes it.
pub async fn enrollment_deadlines<S: DeviceStore + EnrollmentStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let first = UnixTime::from_secs(1_900_000_000);
    let deadline = |g: EnrollmentGrace| g.deadline;
    ensure!(
        store.enrollment_deadline(&alice, first).await? == EnrollmentGrace::new(first, 0),
        "a first deadline was not stored, with no skips"
    );
    ensure!(
        deadline(
            store
                .enrollment_deadline(&alice, UnixTime::from_secs(2_000_000_000))
                .await?
        ) == first,
        "asking again moved the deadline"
    );
    ensure!(
        deadline(store.enrollment_deadline(&bob, UnixTime::from_secs(5)).await?) == UnixTime::from_secs(5),
        "another user got this one's deadline"
    );
    store.delete_user_devices(&alice).await?;
    ensure!(
        deadline(store.enrollment_deadline(&alice, UnixTime::from_secs(7)).await?) == first,
        "a reset of the user's devices changed the deadline"
    );
    let later = UnixTime::from_secs(i64::MAX as u64);
    store.set_enrollment_deadline(&alice, later).await?;
    ensure!(
        deadline(store.enrollment_deadline(&alice, first).await?) == later,
        "an administrator's deadline was not stored exactly"
    );
    Ok(())
}

/// [`EnrollmentStore::skip_enrollment_prompt`]: skips count one at a time up to `max` and no
/// further; a first skip stores the proposed deadline; skips are the user's own and survive a
/// reset of their devices; an administrator's new deadline counts from zero again; `max` 0
/// counts nothing.
pub async fn enrollment_skips<S: DeviceStore + EnrollmentStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let first = UnixTime::from_secs(1_900_000_000);
    ensure!(
        store.skip_enrollment_prompt(&alice, first, 0).await?.is_none(),
        "a skip was counted with none allowed"
    );
    for n in 1..=3 {
        ensure!(
            store.skip_enrollment_prompt(&alice, UnixTime::from_secs(5), 3).await? == Some(n),
            "skip {n} of 3 was not counted as {n}"
        );
    }
    ensure!(
        store.skip_enrollment_prompt(&alice, first, 3).await?.is_none(),
        "a fourth skip of 3 was counted"
    );
    let grace = store.enrollment_deadline(&alice, UnixTime::from_secs(9)).await?;
    ensure!(
        grace == EnrollmentGrace::new(UnixTime::from_secs(5), 3),
        "after three skips the store holds {grace:?}, not the first skip's deadline and 3"
    );
    ensure!(
        store.skip_enrollment_prompt(&alice, first, 4).await? == Some(4),
        "a larger allowance did not count from the stored skips"
    );
    ensure!(
        store.enrollment_deadline(&bob, first).await? == EnrollmentGrace::new(first, 0),
        "another user got this one's skips"
    );
    store.delete_user_devices(&alice).await?;
    ensure!(
        store.enrollment_deadline(&alice, first).await?.skipped == 4,
        "a reset of the user's devices gave the skips back"
    );
    store.set_enrollment_deadline(&alice, first).await?;
    ensure!(
        store.enrollment_deadline(&alice, UnixTime::from_secs(5)).await? == EnrollmentGrace::new(first, 0),
        "an administrator's deadline did not count the skips from zero"
    );
    Ok(())
}
