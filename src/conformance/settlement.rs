//! The settlement of a code attempt: hit or miss against the admitted counter, the devices version, bursts, and uniform cost.

use super::*;

/// [`DeviceStore::settle_attempt`]: against a counter that moved it changes nothing and reports
/// the counter as it is; a miss, a spent slot or step, a hit of the other factor's kind and a
/// hit on another user's device are charged (the counter set to `on_miss`, nothing else); a hit
/// is accepted and the counter set to `on_hit`, exactly.
pub async fn settle_attempt<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let totp = totp_record(&alice, 1)?;
    let set = backup_record(&alice, 2, 4)?;
    let bobs = totp_record(&bob, 3)?;
    for d in [&totp, &set, &bobs] {
        store.insert_device(d.clone()).await?;
    }
    let zero = ThrottleState::default();
    let counter = |failures: u32, budget: u64| ThrottleState {
        failures,
        last_failure_at: Some(UnixTime::from_secs(500 + u64::from(failures))),
        budget_until: Some(UnixTime::from_secs(budget)),
        last_miss: None,
    };
    let (two, three) = (counter(2, 80_000), counter(3, 90_000));
    let cleared = ThrottleState {
        budget_until: Some(UnixTime::from_secs(90_000)),
        ..zero
    };
    let now = UnixTime::from_secs(1_000);
    let attempt = |factor: Factor, admitted: ThrottleState, hit: Option<Hit>, on_miss: ThrottleState| Settle {
        factor,
        browser: None,
        admitted,
        hit,
        on_hit: cleared,
        on_miss,
        now,
        version: None,
    };
    let totp_hit = Some(Hit::TotpStep {
        device: totp.id,
        step: 10,
    });
    let code_hit = Some(Hit::BackupCode {
        device: set.id,
        slot: 1,
    });
    for factor in [Factor::Totp, Factor::BackupCodes] {
        ensure!(
            store.swap_throttle(&alice, factor.into(), zero, two).await?,
            "could not set up the {factor:?} counter"
        );
    }

    // A moved counter: nothing changes, and the store says what the counter holds.
    for (factor, hit) in [(Factor::Totp, totp_hit), (Factor::BackupCodes, code_hit)] {
        for admitted in [zero, three, counter(2, 80_001)] {
            let got = store
                .settle_attempt(&alice, &attempt(factor, admitted, hit, three))
                .await?;
            ensure!(
                got == Settlement::Moved(two),
                "{factor:?} settled against {admitted:?} while the counter held {two:?}: {got:?}"
            );
        }
        ensure!(
            store.throttle(&alice, factor.into()).await? == two,
            "a settlement against a moved {factor:?} counter changed it"
        );
    }
    let got = store
        .device(&alice, totp.id)
        .await?
        .ok_or(Failure("device vanished".into()))?;
    ensure!(
        last_step(&got).is_none() && got.last_used_at.is_none(),
        "a settlement against a moved counter recorded the step"
    );
    let got = store
        .device(&alice, set.id)
        .await?
        .ok_or(Failure("set vanished".into()))?;
    ensure!(
        slot_used(&got, 1) == Some(false) && got.last_used_at.is_none(),
        "a settlement against a moved counter spent the code"
    );

    // Charged, with nothing but the counter changed: no hit, the other factor's kind, another
    // user's device, a slot out of range.
    let charged_cases = [
        (Factor::Totp, None, "a miss"),
        (Factor::Totp, code_hit, "a backup-code hit on the TOTP counter"),
        (
            Factor::Totp,
            Some(Hit::TotpStep {
                device: bobs.id,
                step: 10,
            }),
            "a hit on another user's device",
        ),
        (Factor::BackupCodes, None, "a miss"),
        (Factor::BackupCodes, totp_hit, "a TOTP hit on the backup-code counter"),
        (
            Factor::BackupCodes,
            Some(Hit::BackupCode {
                device: set.id,
                slot: 99,
            }),
            "a slot out of range",
        ),
    ];
    for (factor, hit, what) in charged_cases {
        let before = store.throttle(&alice, factor.into()).await?;
        let after = ThrottleState {
            failures: before.failures + 1,
            ..three
        };
        let got = store
            .settle_attempt(&alice, &attempt(factor, before, hit, after))
            .await?;
        ensure!(got == Settlement::Charged, "{what} was not charged: {got:?}");
        ensure!(
            store.throttle(&alice, factor.into()).await? == after,
            "{what}: the counter does not hold on_miss"
        );
    }
    let got = store
        .device(&alice, totp.id)
        .await?
        .ok_or(Failure("device vanished".into()))?;
    ensure!(last_step(&got).is_none(), "a charged settlement recorded a step");
    let got = store
        .device(&bob, bobs.id)
        .await?
        .ok_or(Failure("device vanished".into()))?;
    ensure!(
        last_step(&got).is_none(),
        "alice's settlement recorded a step on bob's device"
    );
    ensure!(
        store.throttle(&bob, Factor::Totp.into()).await? == zero,
        "alice's settlement touched bob's counter"
    );

    // Accepted: the hit is written, the counter set to on_hit; the same hit again is charged.
    for (factor, hit) in [(Factor::Totp, totp_hit), (Factor::BackupCodes, code_hit)] {
        let before = store.throttle(&alice, factor.into()).await?;
        let got = store
            .settle_attempt(&alice, &attempt(factor, before, hit, three))
            .await?;
        ensure!(
            got == Settlement::Accepted,
            "a {factor:?} hit was not accepted: {got:?}"
        );
        ensure!(
            store.throttle(&alice, factor.into()).await? == cleared,
            "an accepted {factor:?} hit did not set on_hit"
        );
        let got = store
            .settle_attempt(&alice, &attempt(factor, cleared, hit, three))
            .await?;
        ensure!(
            got == Settlement::Charged,
            "a spent {factor:?} hit was not charged: {got:?}"
        );
        ensure!(
            store.throttle(&alice, factor.into()).await? == three,
            "a spent {factor:?} hit did not set on_miss"
        );
    }
    let older = Some(Hit::TotpStep {
        device: totp.id,
        step: 9,
    });
    let got = store
        .settle_attempt(&alice, &attempt(Factor::Totp, three, older, two))
        .await?;
    ensure!(
        got == Settlement::Charged,
        "an older TOTP step was not charged: {got:?}"
    );
    let got = store
        .device(&alice, totp.id)
        .await?
        .ok_or(Failure("device vanished".into()))?;
    ensure!(
        last_step(&got) == Some(10) && got.last_used_at == Some(now) && got.confirmed,
        "an accepted TOTP hit did not record step, time and confirmation"
    );
    let got = store
        .device(&alice, set.id)
        .await?
        .ok_or(Failure("set vanished".into()))?;
    ensure!(
        slot_used(&got, 1) == Some(true) && got.last_used_at == Some(now),
        "an accepted backup-code hit did not spend the slot and stamp the set"
    );
    ensure!(slot_used(&got, 0) == Some(false), "another slot was spent");
    Ok(())
}

/// A burst of [`RACERS`] attempts of one factor admitted under one counter state, one of them a
/// hit: exactly one settles (accepted or charged); every other one finds the counter moved and
/// learns its new state. The hit is accepted only if it settled first.
pub async fn race_settle_burst<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("burst")?;
    let totp = totp_record(&user, 1)?;
    store.insert_device(totp.clone()).await?;
    let now = UnixTime::from_secs(2_000);
    let on_miss = ThrottleState {
        failures: 1,
        last_failure_at: Some(now),
        budget_until: Some(UnixTime::from_secs(9_000)),
        last_miss: None,
    };
    let hit_index = RACERS / 2;
    let outcomes = race_outcomes(&store, move |s, i| {
        let user = user.clone();
        async move {
            let hit = (i == hit_index).then_some(Hit::TotpStep {
                device: totp.id,
                step: 77,
            });
            // Every outcome moves the counter away from the admitted state (were `on_hit` the
            // admitted state, an attempt arriving after the accepted hit would rightly settle
            // against the cleared counter).
            let attempt = Settle {
                factor: Factor::Totp,
                browser: None,
                admitted: ThrottleState::default(),
                hit,
                on_hit: ThrottleState {
                    budget_until: Some(UnixTime::from_secs(8_000)),
                    ..ThrottleState::default()
                },
                on_miss,
                now,
                version: None,
            };
            s.settle_attempt(&user, &attempt).await
        }
    })
    .await?;
    let settled: Vec<usize> = (0..RACERS)
        .filter(|i| !matches!(outcomes[*i], Settlement::Moved(_)))
        .collect();
    ensure!(
        settled.len() == 1,
        "{} of {RACERS} attempts admitted under one counter state settled",
        settled.len()
    );
    for (i, o) in outcomes.iter().enumerate() {
        if let Settlement::Moved(m) = o {
            ensure!(
                *m == on_miss || m.budget_until == Some(UnixTime::from_secs(8_000)),
                "attempt {i} saw {m:?}"
            );
        }
        ensure!(
            *o != Settlement::Accepted || i == hit_index,
            "attempt {i}, a miss, was accepted"
        );
    }
    Ok(())
}

/// Through the service: a correct code that the counter refuses at settlement (the counter
/// moved to backoff or lock after the attempt's read) makes exactly the same store calls as a
/// wrong code in the same position, and gets the same answer. Checked for TOTP and backup
/// codes, with a [`CountingStore`] around the store under test.
pub async fn uniform_settlement<S: Store + 'static>(store: Arc<S>) -> CheckResult {
    use crate::clock::ManualClock;
    use crate::service::{Mfa, Outcome};
    use crate::totp::{code_at, decode_base32_secret};

    let fail = |e: crate::error::Error| Failure(format!("service error: {e}"));
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let keys = Keyring::new(SealingKey::new(
        KeyId::new("conformance").map_err(|e| Failure(e.to_string()))?,
        [7; 32],
    ));
    let mfa = Mfa::new(CountingStore::new(store), keys, service_config()?)
        .map_err(fail)?
        .with_clock(clock.clone());
    // At start, as a host does (see `cached_verification_between`).
    mfa.check_keys().await.map_err(fail)?;
    let policy = mfa.config().throttle;
    // The counter states the attempt meets at settlement, as of `now`.
    let moved_to = |lock: bool, now: UnixTime| {
        if lock {
            ThrottleState {
                failures: policy.lockout_after(),
                last_failure_at: Some(now),
                budget_until: None,
                last_miss: None,
            }
        } else {
            // Backoff: the sixth failure waits.
            ThrottleState {
                failures: 5,
                last_failure_at: Some(now),
                budget_until: Some(now.plus_secs(5 * policy.budget_refill_secs())),
                last_miss: None,
            }
        }
    };
    for factor in [Factor::Totp, Factor::BackupCodes] {
        for lock in [false, true] {
            let mut seen = Vec::new();
            for right in [true, false] {
                let user = fresh_user("uniform")?;
                let e = mfa.enroll_totp(&user, "u", None).await.map_err(fail)?;
                let secret =
                    decode_base32_secret(e.secret_base32.expose_secret()).map_err(|e| Failure(e.to_string()))?;
                let first = code_at(&secret, &TotpParams::default(), clock.now());
                ensure!(
                    mfa.confirm_totp(&user, e.device, first.expose_secret())
                        .await
                        .map_err(fail)?
                        .is_accepted(),
                    "could not confirm TOTP"
                );
                let set = mfa.generate_backup_codes(&user, None).await.map_err(fail)?;
                clock.advance(30);
                let code = match (factor, right) {
                    (Factor::Totp, true) => code_at(&secret, &TotpParams::default(), clock.now())
                        .expose_secret()
                        .to_owned(),
                    (Factor::Totp, false) => {
                        let c = code_at(&secret, &TotpParams::default(), clock.now());
                        let n: u32 = c.expose_secret().parse().map_err(|_| Failure("code".into()))?;
                        format!("{:06}", (n + 1) % 1_000_000)
                    }
                    (_, true) => set
                        .codes
                        .first()
                        .ok_or(Failure("no code".into()))?
                        .expose_secret()
                        .to_owned(),
                    (_, false) => "0000-0000-0000".to_owned(),
                };
                // The counter moves after the attempt's read: the read reports the default.
                let counter = moved_to(lock, clock.now());
                ensure!(
                    mfa.store()
                        .swap_throttle(&user, factor.into(), ThrottleState::default(), counter)
                        .await?,
                    "could not move the counter"
                );
                mfa.store().stale_counter_once(ThrottleState::default());
                mfa.store().take_calls();
                let outcome = match factor {
                    Factor::Totp => mfa.verify_totp(&user, &code).await,
                    _ => mfa.verify_backup_code(&user, &code).await,
                }
                .map_err(fail)?;
                ensure!(
                    matches!(outcome, Outcome::Throttled { .. } | Outcome::Locked),
                    "{factor:?}: a {} code admitted under a stale counter got {outcome:?}",
                    if right { "right" } else { "wrong" }
                );
                let calls = mfa.store().take_calls();
                ensure!(
                    mfa.store().throttle(&user, factor.into()).await? == counter,
                    "{factor:?}: a refused attempt changed the counter"
                );
                // The answer, relative to now (each user's run starts 30 s later).
                let answer = match outcome {
                    Outcome::Throttled { retry_at } => Some(retry_at.secs_since(clock.now())),
                    _ => None,
                };
                seen.push((answer, calls));
            }
            ensure!(
                seen.first() == seen.last(),
                "{factor:?} refused at settlement: the right code {:?} and a wrong one {:?} differ",
                seen.first(),
                seen.last()
            );
        }
    }
    Ok(())
}

/// [`DeviceStore::settle_attempt`] with a [`DevicesVersion`]: a version that is not the user's
/// is [`Settlement::Stale`] for a hit and a miss alike, changing nothing (a moved counter is
/// still reported as moved); the version [`verification_state`](DeviceStore::verification_state)
/// reads settles as usual. And every change of the user's devices moves the version: an
/// insert (an unconfirmed enrollment too), a delete by each operation that deletes, a set
/// replaced or inserted, a code sent, and a device's first accepted code.
pub async fn settle_checks_devices<S: DeviceStore>(store: &S) -> CheckResult {
    let alice = fresh_user("version")?;
    let mut totp = totp_record(&alice, 1)?;
    totp.confirmed = true;
    let set = backup_record(&alice, 2, 4)?;
    store.insert_device(totp.clone()).await?;
    store.insert_device(set.clone()).await?;
    let now = UnixTime::from_secs(1_000);
    let clear = ThrottleState::default();
    let charged = ThrottleState {
        failures: 1,
        last_failure_at: Some(now),
        budget_until: None,
        last_miss: None,
    };
    let attempt = |factor: Factor, hit: Option<Hit>, version: DevicesVersion| Settle {
        factor,
        browser: None,
        admitted: clear,
        hit,
        on_hit: clear,
        on_miss: charged,
        now,
        version: Some(version),
    };
    for factor in [Factor::Totp, Factor::BackupCodes] {
        let devices = store.list_devices(&alice).await?;
        let current = version_of(store, &alice, factor).await?;
        let other = DevicesVersion(current.0.wrapping_add(1_000));
        let hit = match factor {
            Factor::Totp => Hit::TotpStep {
                device: totp.id,
                step: 10,
            },
            _ => Hit::BackupCode {
                device: set.id,
                slot: 0,
            },
        };
        for h in [Some(hit), None] {
            let got = store.settle_attempt(&alice, &attempt(factor, h, other)).await?;
            ensure!(
                got == Settlement::Stale,
                "{factor:?}: a settlement under another devices version gave {got:?} (hit: {})",
                h.is_some()
            );
        }
        ensure!(
            store.list_devices(&alice).await? == devices,
            "{factor:?}: a stale settlement changed the devices"
        );
        ensure!(
            store.throttle(&alice, factor.into()).await? == clear,
            "{factor:?}: a stale settlement changed the counter"
        );
        ensure!(
            version_of(store, &alice, factor).await? == current,
            "{factor:?}: a stale settlement moved the version"
        );
        // A counter that moved is reported as moved, whatever the version.
        let moved = Settle {
            admitted: charged,
            ..attempt(factor, None, other)
        };
        let got = store.settle_attempt(&alice, &moved).await?;
        ensure!(
            got == Settlement::Moved(clear),
            "{factor:?}: a moved counter under a stale version gave {got:?}"
        );
        let got = store
            .settle_attempt(&alice, &attempt(factor, Some(hit), current))
            .await?;
        ensure!(
            got == Settlement::Accepted,
            "{factor:?}: a hit under the current devices version gave {got:?}"
        );
        let after = version_of(store, &alice, factor).await?;
        if factor == Factor::Totp {
            ensure!(
                after != current,
                "a device's first accepted code left the version as it was"
            );
        }
        // The version read is the store's: a miss under it is charged.
        let got = store.settle_attempt(&alice, &attempt(factor, None, after)).await?;
        ensure!(
            got == Settlement::Charged,
            "{factor:?}: a miss under the devices version gave {got:?}"
        );
        store.clear_throttle(&alice, factor.into()).await?;
    }
    // Every device change moves the version.
    let mut seen = version_of(store, &alice, Factor::Totp).await?;
    let mut moved = |what: &str, now: DevicesVersion| -> CheckResult {
        ensure!(now != seen, "{what} left the devices version as it was");
        seen = now;
        Ok(())
    };
    let pending = totp_record(&alice, 3)?;
    store.insert_device(pending.clone()).await?;
    moved(
        "an unconfirmed enrollment",
        version_of(store, &alice, Factor::Totp).await?,
    )?;
    store.delete_unconfirmed_totp(&alice, totp.id).await?;
    moved(
        "deleting an unconfirmed enrollment",
        version_of(store, &alice, Factor::Totp).await?,
    )?;
    let mut second = totp_record(&alice, 4)?;
    second.confirmed = true;
    store.insert_device(second.clone()).await?;
    moved(
        "a second confirmed TOTP device",
        version_of(store, &alice, Factor::Totp).await?,
    )?;
    store.delete_device(&alice, second.id).await?;
    moved("deleting a device", version_of(store, &alice, Factor::Totp).await?)?;
    store.replace_backup_codes(backup_record(&alice, 5, 4)?).await?;
    moved(
        "a replaced backup-code set",
        version_of(store, &alice, Factor::BackupCodes).await?,
    )?;
    let third = totp_record(&alice, 6)?;
    store.insert_device(third.clone()).await?;
    moved("an enrollment", version_of(store, &alice, Factor::Totp).await?)?;
    ensure!(
        store.delete_device_unless_last(&alice, third.id).await? == DeleteOutcome::Deleted,
        "could not delete an unconfirmed enrollment"
    );
    moved(
        "delete_device_unless_last",
        version_of(store, &alice, Factor::Totp).await?,
    )?;
    let phone = super::sent_codes::sent_code_record(&alice, 7)?;
    store.insert_device(phone.clone()).await?;
    moved("a new phone number", version_of(store, &alice, Factor::Totp).await?)?;
    let issued = super::sent_codes::issued_code(1, 1_000)?;
    ensure!(
        store.issue_sent_code(&alice, phone.id, None, &issued).await?,
        "could not record a sent code"
    );
    moved("a sent code", version_of(store, &alice, Factor::Totp).await?)?;
    store.delete_user_devices(&alice).await?;
    moved("a reset", version_of(store, &alice, Factor::Totp).await?)?;
    ensure!(
        store.insert_first_backup_codes(backup_record(&alice, 8, 4)?).await?,
        "could not insert a first set"
    );
    moved(
        "a first backup-code set",
        version_of(store, &alice, Factor::BackupCodes).await?,
    )?;
    Ok(())
}

/// The user's devices version, as a verification reads it.
async fn version_of<S: DeviceStore>(store: &S, user: &UserId, factor: Factor) -> Result<DevicesVersion, StoreError> {
    Ok(store.verification_state(user, factor).await?.version)
}
