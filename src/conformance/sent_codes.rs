//! Email addresses and phone numbers: their records round-trip, a code is sent once over the
//! last one, the next supersedes it, and a sent code is settled like a TOTP step.

use super::*;
use crate::sent_code::{Channel, IssuedCode, SentCodeRecord};

/// An unconfirmed email destination with a real sealed blob and a fingerprint of its own.
pub fn sent_code_record(user: &UserId, created: u64) -> Result<DeviceRecord, Failure> {
    let mut record = totp_record(user, created)?;
    let DeviceData::Totp(totp) = record.data else {
        return Err(Failure("totp_record made no TOTP record".into()));
    };
    record.name = name("Work email")?;
    record.data = DeviceData::SentCode(SentCodeRecord {
        channel: Channel::Email,
        sealed_destination: totp.sealed_secret,
        fingerprint: fingerprint_of(record.id),
        last_serial: None,
        issued: None,
    });
    Ok(record)
}

/// Code `serial`, sent at `at`, with every field distinct.
pub fn issued_code(serial: u64, at: u64) -> Result<IssuedCode, Failure> {
    let mut digest = [0u8; 32];
    for (i, b) in digest.iter_mut().enumerate() {
        *b = (serial as u8).wrapping_mul(31).wrapping_add(i as u8);
    }
    Ok(IssuedCode {
        serial,
        key_id: KeyId::new("conformance").map_err(|e| Failure(e.to_string()))?,
        digest,
        issued_at: UnixTime::from_secs(at),
        expires_at: UnixTime::from_secs(at + 600),
        window_start: UnixTime::from_secs(at.saturating_sub(7)),
        sends: serial as u32,
    })
}

fn sent(record: &DeviceRecord) -> Option<&SentCodeRecord> {
    match &record.data {
        DeviceData::SentCode(c) => Some(c),
        _ => None,
    }
}

/// A destination round-trips with its channel, sealed destination and fingerprint; a second
/// one of the user with the same fingerprint conflicts (as a TOTP secret's would); a code is
/// recorded only over the last one the caller saw (none at first), only on the user's own
/// destination and never on another kind of device; recording code `n + 1` supersedes `n`
/// (its settlement is charged) while `n + 1` is accepted once; the high-water mark never goes
/// back; a destination is an unconfirmed one-time-code enrollment that
/// `delete_unconfirmed_totp` removes, and its secret is resealed like a TOTP secret.
pub async fn sent_codes<S: DeviceStore + AdminStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let email = sent_code_record(&alice, 100)?;
    let id = email.id;
    store.insert_device(email.clone()).await?;
    let got = store.device(&alice, id).await?;
    ensure!(got.as_ref() == Some(&email), "a destination read back as {got:?}");
    ensure!(
        got.as_ref().map(DeviceRecord::kind) == Some(crate::kind::DeviceKind::Email),
        "a destination is not of kind email"
    );
    let mut twin = sent_code_record(&alice, 101)?;
    if let DeviceData::SentCode(c) = &mut twin.data {
        c.fingerprint = fingerprint_of(id);
    }
    ensure!(
        matches!(store.insert_device(twin).await, Err(StoreError::Conflict)),
        "a second destination of the user with the same fingerprint was stored"
    );

    let first = issued_code(1, 1_000)?;
    let second = issued_code(2, 1_030)?;
    ensure!(
        !store.issue_sent_code(&alice, id, Some(&second), &first).await?,
        "a code was recorded over one that was never sent"
    );
    ensure!(
        !store.issue_sent_code(&bob, id, None, &first).await?,
        "a code was recorded on another user's destination"
    );
    let app = totp_record(&alice, 102)?;
    store.insert_device(app.clone()).await?;
    ensure!(
        !store.issue_sent_code(&alice, app.id, None, &first).await?,
        "a code was recorded on an authenticator app"
    );
    ensure!(
        matches!(
            store.issue_sent_code(&alice, id, None, &issued_code(0, 1_000)?).await,
            Err(StoreError::InvalidRecord(_))
        ),
        "a code with serial 0 was not refused"
    );
    ensure!(
        store.issue_sent_code(&alice, id, None, &first).await?,
        "the first code was not recorded"
    );
    let stored = store.device(&alice, id).await?;
    let stored = stored.as_ref().and_then(sent);
    ensure!(
        stored.and_then(|c| c.issued.as_ref()) == Some(&first),
        "the first code read back as {stored:?}"
    );
    ensure!(
        stored.and_then(|c| c.last_serial) == Some(0),
        "the first code did not set the high-water mark to 0: {stored:?}"
    );
    ensure!(
        !store.issue_sent_code(&alice, id, None, &second).await?,
        "a code was recorded over a stale view (none sent, when one was)"
    );
    ensure!(
        store.issue_sent_code(&alice, id, Some(&first), &second).await?,
        "the second code was not recorded over the first"
    );
    // The first code is superseded: settling it is charged; the second is accepted once.
    let state = ThrottleState::default();
    let settle = |serial| {
        Settle::keep_on_miss(
            Factor::Totp,
            state,
            Hit::TotpStep {
                device: id,
                step: serial,
            },
            UnixTime::from_secs(1_040),
        )
    };
    ensure!(
        store.settle_attempt(&alice, &settle(1)).await? == Settlement::Charged,
        "a superseded code was accepted"
    );
    ensure!(
        store.settle_attempt(&alice, &settle(2)).await? == Settlement::Accepted,
        "the live code was not accepted"
    );
    ensure!(
        store.settle_attempt(&alice, &settle(2)).await? == Settlement::Charged,
        "a sent code was accepted twice"
    );
    let after = store.device(&alice, id).await?;
    ensure!(
        after
            .as_ref()
            .is_some_and(|d| d.confirmed && d.last_used_at == Some(UnixTime::from_secs(1_040))),
        "an accepted code did not confirm the destination and record its use: {after:?}"
    );
    ensure!(
        after.as_ref().and_then(sent).and_then(|c| c.last_serial) == Some(2),
        "an accepted code did not move the high-water mark to its serial"
    );
    // A code sent after a higher serial was accepted leaves the mark where it is.
    let mut odd = issued_code(2, 2_000)?;
    odd.digest = [9; 32];
    ensure!(
        store.issue_sent_code(&alice, id, Some(&second), &odd).await?,
        "a code over the accepted one was not recorded"
    );
    ensure!(
        store
            .device(&alice, id)
            .await?
            .as_ref()
            .and_then(sent)
            .and_then(|c| c.last_serial)
            == Some(2),
        "recording a code moved the high-water mark back"
    );

    // Re-sealing a destination: compare-and-swap on the sealed blob, like a TOTP secret.
    let pending = sent_code_record(&alice, 200)?;
    store.insert_device(pending.clone()).await?;
    let old = sent(&pending)
        .map(|c| c.sealed_destination.clone())
        .ok_or(Failure("no destination".into()))?;
    let new = match &totp_record(&alice, 1)?.data {
        DeviceData::Totp(t) => t.sealed_secret.clone(),
        _ => return Err(Failure("totp_record made no TOTP record".into())),
    };
    ensure!(
        store
            .reseal_totp_secret(&alice, pending.id, &old, &new, &[0x42; 32])
            .await?,
        "a destination was not resealed"
    );
    let resealed = store.device(&alice, pending.id).await?;
    ensure!(
        resealed
            .as_ref()
            .and_then(sent)
            .map(|c| (&c.sealed_destination, c.fingerprint))
            == Some((&new, [0x42; 32])),
        "a resealed destination read back as {resealed:?}"
    );
    ensure!(
        store
            .list_totp_devices(None, usize::MAX)
            .await?
            .iter()
            .any(|d| d.id == pending.id),
        "the paging of one-time-code devices (for key rotation) left out a destination"
    );
    // An unconfirmed destination is an unfinished one-time-code enrollment.
    let deleted = store.delete_unconfirmed_totp(&alice, app.id).await?;
    ensure!(
        deleted == 1,
        "{deleted} unconfirmed one-time-code enrollments deleted, not the one destination"
    );
    ensure!(
        store.device(&alice, pending.id).await?.is_none() && store.device(&alice, id).await?.is_some(),
        "the cleanup deleted the wrong destination"
    );
    Ok(())
}

/// 64 tasks record the next code over the same last one at once: exactly one is recorded.
/// Then 64 tasks settle the live code at once: exactly one is accepted.
pub async fn race_sent_code<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("race")?;
    let email = sent_code_record(&user, 100)?;
    let id = email.id;
    store.insert_device(email).await?;
    let first = issued_code(1, 1_000)?;
    ensure!(
        store.issue_sent_code(&user, id, None, &first).await?,
        "the first code was not recorded"
    );
    let mut nexts = Vec::with_capacity(RACERS);
    for i in 0..RACERS {
        let mut next = issued_code(2, 1_030)?;
        next.digest[0] = i as u8;
        nexts.push(next);
    }
    let wins = race(&store, |s, i| {
        let user = user.clone();
        let first = first.clone();
        let next = nexts.get(i).cloned();
        async move {
            match next {
                Some(next) => s.issue_sent_code(&user, id, Some(&first), &next).await,
                None => Ok(false),
            }
        }
    })
    .await?;
    ensure!(
        wins == 1,
        "{wins} of {RACERS} concurrent sends over one code were recorded"
    );
    let wins = race(&store, |s, _| {
        let user = user.clone();
        async move {
            let settle = Settle::keep_on_miss(
                Factor::Totp,
                ThrottleState::default(),
                Hit::TotpStep { device: id, step: 2 },
                UnixTime::from_secs(1_040),
            );
            Ok(s.settle_attempt(&user, &settle).await? == Settlement::Accepted)
        }
    })
    .await?;
    ensure!(
        wins == 1,
        "{wins} of {RACERS} concurrent uses of one sent code were accepted"
    );
    Ok(())
}
