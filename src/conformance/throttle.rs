//! Failure counters: compare-and-swap, and a success against a moved counter.

use super::*;

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
        last_miss: None,
    };
    let four = ThrottleState {
        failures: 4,
        last_failure_at: Some(UnixTime::from_secs(930)),
        budget_until: Some(UnixTime::from_secs(190_000)),
        last_miss: None,
    };
    // A success clears the consecutive failures and keeps the failure budget.
    let cleared = ThrottleState {
        budget_until: three.budget_until,
        ..zero
    };
    let now = UnixTime::from_secs(1_000);
    for factor in [Factor::Totp, Factor::BackupCodes] {
        ensure!(
            store.swap_throttle(&alice, factor.into(), zero, three).await?,
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
        store.throttle(&alice, Factor::Totp.into()).await? == three,
        "a refused acceptance changed the counter"
    );
    ensure!(
        store.accept_totp_step(&alice, totp.id, 10, now, three).await?,
        "a TOTP step was refused against the current counter"
    );
    ensure!(
        store.throttle(&alice, Factor::Totp.into()).await? == cleared,
        "an accepted step did not clear the consecutive failures (keeping the budget)"
    );
    ensure!(
        store.throttle(&alice, Factor::BackupCodes.into()).await? == three,
        "an accepted TOTP step reset the backup-code counter"
    );
    // A replay against the current counter refuses and keeps the counter.
    ensure!(
        store.swap_throttle(&alice, Factor::Totp.into(), cleared, three).await?,
        "could not set the counter again"
    );
    ensure!(
        !store.accept_totp_step(&alice, totp.id, 10, now, three).await?,
        "a replayed step was accepted"
    );
    ensure!(
        store.throttle(&alice, Factor::Totp.into()).await? == three,
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
        store.throttle(&alice, Factor::BackupCodes.into()).await? == three,
        "a refused consume changed the counter"
    );
    ensure!(
        store.consume_backup_code(&alice, set.id, 1, now, three).await?,
        "a backup code was refused against the current counter"
    );
    ensure!(
        store.throttle(&alice, Factor::BackupCodes.into()).await? == cleared,
        "a spent code did not clear the consecutive failures (keeping the budget)"
    );
    ensure!(
        store
            .swap_throttle(&alice, Factor::BackupCodes.into(), cleared, three)
            .await?,
        "could not set the counter again"
    );
    ensure!(
        !store.consume_backup_code(&alice, set.id, 99, now, three).await?,
        "a slot out of range was spent"
    );
    ensure!(
        store.throttle(&alice, Factor::BackupCodes.into()).await? == three,
        "a refused consume reset the counter"
    );
    ensure!(
        store.consume_backup_code(&alice, set.id, 2, now, three).await?,
        "another code was refused against the current counter"
    );
    ensure!(
        store.throttle(&alice, Factor::Totp.into()).await? == three,
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
        store.throttle(&alice, Factor::Totp.into()).await? == zero,
        "a fresh counter is not the default"
    );
    let one = ThrottleState {
        failures: 1,
        last_failure_at: Some(UnixTime::from_secs(100)),
        budget_until: None,
        last_miss: None,
    };
    let two = ThrottleState {
        failures: 2,
        last_failure_at: Some(UnixTime::from_secs(MAX_STORED_INTEGER)),
        budget_until: Some(UnixTime::from_secs(MAX_STORED_INTEGER)),
        last_miss: None,
    };
    ensure!(
        !store.swap_throttle(&alice, Factor::Totp.into(), one, two).await?,
        "swap from a wrong expected state"
    );
    ensure!(
        store.swap_throttle(&alice, Factor::Totp.into(), zero, one).await?,
        "swap from the default failed"
    );
    ensure!(
        store.throttle(&alice, Factor::Totp.into()).await? == one,
        "swapped state not stored"
    );
    ensure!(
        !store.swap_throttle(&alice, Factor::Totp.into(), zero, two).await?,
        "swap from a stale state"
    );
    ensure!(
        store.swap_throttle(&alice, Factor::Totp.into(), one, two).await?,
        "second swap failed"
    );
    ensure!(
        store.throttle(&alice, Factor::Totp.into()).await? == two,
        "time 2^63-1 not stored exactly"
    );
    ensure!(
        store.throttle(&alice, Factor::BackupCodes.into()).await? == zero,
        "factors share a counter"
    );
    ensure!(
        store.throttle(&bob, Factor::Totp.into()).await? == zero,
        "users share a counter"
    );
    store.clear_throttle(&alice, Factor::BackupCodes.into()).await?;
    ensure!(
        store.throttle(&alice, Factor::Totp.into()).await? == two,
        "clearing one factor cleared another"
    );
    store.clear_throttle(&alice, Factor::Totp.into()).await?;
    ensure!(
        store.throttle(&alice, Factor::Totp.into()).await? == zero,
        "clear did not reset"
    );
    ensure!(
        store.swap_throttle(&alice, Factor::Totp.into(), zero, one).await?,
        "swap after clear failed"
    );
    Ok(())
}
