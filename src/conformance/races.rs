//! Races: RACERS tasks at once on one code, step, counter, ceremony, sign counter or credential id; exactly one wins.

use super::*;

/// 64 tasks present the same backup-code slot at once: exactly one wins.
pub async fn race_backup_code<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("race")?;
    let set = backup_record(&user, 1, 6)?;
    store.insert_device(set.clone()).await?;
    let id = set.id;
    let wins = race(&store, |s, _| {
        let user = user.clone();
        async move {
            s.consume_backup_code(&user, id, 3, UnixTime::from_secs(7), ThrottleState::default())
                .await
        }
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
        async move {
            s.accept_totp_step(&user, id, 1_000, UnixTime::from_secs(30_000), ThrottleState::default())
                .await
        }
    })
    .await?;
    ensure!(
        wins == 1,
        "{wins} of {RACERS} concurrent acceptances of one TOTP step succeeded"
    );
    let wins = race(&store, |s, i| {
        let user = user.clone();
        async move {
            s.accept_totp_step(
                &user,
                id,
                1_001 + i as u64,
                UnixTime::from_secs(30_030),
                ThrottleState::default(),
            )
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

/// Failures and successes race on one counter: half the tasks charge a failure against the
/// current state, half present a valid, distinct TOTP step (then backup-code slot) against it.
/// Every one of them needs the counter unchanged and every winner changes it, so exactly one
/// of all of them wins: no success is ever written over a failure counted in the meantime.
pub async fn race_success_against_failures<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("race")?;
    let totp = totp_record(&user, 1)?;
    let set = backup_record(&user, 2, RACERS / 2)?;
    store.insert_device(totp.clone()).await?;
    store.insert_device(set.clone()).await?;
    let counted = ThrottleState {
        failures: 2,
        last_failure_at: Some(UnixTime::from_secs(5_000)),
        budget_until: Some(UnixTime::from_secs(70_000)),
        last_miss: None,
    };
    let charged = ThrottleState {
        failures: 3,
        last_failure_at: Some(UnixTime::from_secs(5_010)),
        budget_until: Some(UnixTime::from_secs(170_000)),
        last_miss: None,
    };
    for factor in [Factor::Totp, Factor::BackupCodes] {
        ensure!(
            store
                .swap_throttle(&user, factor.into(), ThrottleState::default(), counted)
                .await?,
            "could not set up the {factor:?} counter"
        );
        let (totp_id, set_id) = (totp.id, set.id);
        let wins = race(&store, |s, i| {
            let user = user.clone();
            async move {
                let now = UnixTime::from_secs(5_010);
                match (i % 2, factor) {
                    (0, _) => s.swap_throttle(&user, factor.into(), counted, charged).await,
                    (_, Factor::Totp) => s.accept_totp_step(&user, totp_id, 100 + i as u64, now, counted).await,
                    _ => s.consume_backup_code(&user, set_id, i / 2, now, counted).await,
                }
            }
        })
        .await?;
        ensure!(
            wins == 1,
            "{wins} of {RACERS} concurrent failures and successes against one {factor:?} counter state won"
        );
        let after = store.throttle(&user, factor.into()).await?;
        ensure!(
            after == charged
                || after
                    == ThrottleState {
                        budget_until: counted.budget_until,
                        ..ThrottleState::default()
                    },
            "after the race the {factor:?} counter holds {after:?}"
        );
    }
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
            budget_until: None,
            last_miss: None,
        };
        async move {
            s.swap_throttle(&user, Factor::Totp.into(), ThrottleState::default(), new)
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

/// 64 tasks take the same ceremony at once: exactly one gets it.
pub async fn race_take_ceremony<S: DeviceStore + CeremonyStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("race")?;
    let ceremony = ceremony_record(Some(&user), CeremonyKind::SecondFactor, LIVE + 300)?;
    store.insert_ceremony(ceremony.clone()).await?;
    let id = ceremony.id;
    let wins = race(&store, |s, _| {
        let user = user.clone();
        async move {
            s.take_ceremony(id, Some(&user), CeremonyKind::SecondFactor, UnixTime::from_secs(LIVE))
                .await
                .map(|taken| taken.is_some())
        }
    })
    .await?;
    ensure!(
        wins == 1,
        "{wins} of {RACERS} concurrent takes of one ceremony succeeded"
    );
    Ok(())
}

/// 64 tasks insert the same used-marker of a passwordless ceremony (no user, no state) at once:
/// exactly one insert succeeds, the others are a `Conflict`. The service accepts a passwordless
/// sign-in only if its insert succeeded, so this is what keeps a ceremony from being finished
/// twice.
pub async fn race_passwordless_marker<S: DeviceStore + CeremonyStore + 'static>(store: Arc<S>) -> CheckResult {
    let mut marker = ceremony_record(None, CeremonyKind::Passwordless, LIVE + 300)?;
    marker.state = Vec::new();
    let marker = Arc::new(marker);
    let wins = race(&store, |s, _| {
        let marker = marker.clone();
        async move {
            match s.insert_ceremony((*marker).clone()).await {
                Ok(()) => Ok(true),
                Err(StoreError::Conflict) => Ok(false),
                Err(e) => Err(e),
            }
        }
    })
    .await?;
    ensure!(
        wins == 1,
        "{wins} of {RACERS} concurrent inserts of one passwordless marker succeeded"
    );
    Ok(())
}

/// Racer `i` inserts `records[i]`: how many inserts succeeded (the others must be a `Conflict`).
async fn race_inserts<S: DeviceStore + 'static>(
    store: &Arc<S>,
    records: &Arc<Vec<DeviceRecord>>,
) -> Result<usize, Failure> {
    race(store, |s, i| {
        let records = records.clone();
        async move {
            let record = records
                .get(i)
                .cloned()
                .ok_or(StoreError::InvalidRecord("no such record"))?;
            match s.insert_device(record).await {
                Ok(()) => Ok(true),
                Err(StoreError::Conflict) => Ok(false),
                Err(e) => Err(e),
            }
        }
    })
    .await
}

/// 64 tasks insert TOTP devices of one user (different ids) with the same fingerprint at once,
/// as concurrent imports of one secret do: exactly one insert succeeds, the others are a
/// `Conflict`, and the user has one device.
pub async fn race_totp_fingerprint<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("race")?;
    let mut records = Vec::with_capacity(RACERS);
    for i in 0..RACERS {
        let mut record = totp_record(&user, 1_000 + i as u64)?;
        if let DeviceData::Totp(t) = &mut record.data {
            t.fingerprint = Some([0x5e; 32]);
        }
        records.push(record);
    }
    let records = Arc::new(records);
    let wins = race_inserts(&store, &records).await?;
    ensure!(
        wins == 1,
        "{wins} of {RACERS} concurrent inserts of one TOTP fingerprint succeeded"
    );
    let left = store.list_devices(&user).await?.len();
    ensure!(
        left == 1,
        "{left} TOTP devices left after racing inserts of one fingerprint"
    );
    Ok(())
}

/// 64 tasks ask for one user's enrollment deadline at once, each proposing its own: all get
/// the same one, one of the proposals.
pub async fn race_enrollment_deadline<S: DeviceStore + EnrollmentStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("race")?;
    let got = race_outcomes(&store, |s, i| {
        let user = user.clone();
        async move {
            s.enrollment_deadline(&user, UnixTime::from_secs(1_000 + i as u64))
                .await
        }
    })
    .await?;
    let distinct: std::collections::BTreeSet<UnixTime> = got.iter().map(|g| g.deadline).collect();
    ensure!(
        distinct.len() == 1,
        "{} different deadlines from {RACERS} concurrent first asks",
        distinct.len()
    );
    ensure!(
        distinct
            .iter()
            .all(|d| (1_000..1_000 + RACERS as u64).contains(&d.as_secs())),
        "the deadline is none of the proposals"
    );
    Ok(())
}

/// 64 tasks skip one user's enrollment prompt at once under an allowance of 5: exactly 5 are
/// counted (as 1 to 5, each once), the others get `None`, and 5 are stored.
pub async fn race_enrollment_skips<S: DeviceStore + EnrollmentStore + 'static>(store: Arc<S>) -> CheckResult {
    const MAX: u32 = 5;
    let user = fresh_user("race")?;
    store.enrollment_deadline(&user, UnixTime::from_secs(1_000)).await?;
    let got = race_outcomes(&store, |s, _| {
        let user = user.clone();
        async move { s.skip_enrollment_prompt(&user, UnixTime::from_secs(2_000), MAX).await }
    })
    .await?;
    let mut counted: Vec<u32> = got.iter().flatten().copied().collect();
    counted.sort_unstable();
    ensure!(
        counted == (1..=MAX).collect::<Vec<_>>(),
        "{RACERS} concurrent skips under an allowance of {MAX} were counted as {counted:?}"
    );
    let stored = store.enrollment_deadline(&user, UnixTime::from_secs(3_000)).await?;
    ensure!(
        stored == EnrollmentGrace::new(UnixTime::from_secs(1_000), MAX),
        "after racing skips the store holds {stored:?}"
    );
    Ok(())
}

/// 64 tasks swap the same sign counter at once, each to its own new value: exactly one wins,
/// and its value is stored.
pub async fn race_webauthn_counter<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("race")?;
    let key = webauthn_record(&user, 1, fresh_credential_id()?, false)?;
    store.insert_device(key.clone()).await?;
    let id = key.id;
    let wins = race(&store, |s, i| {
        let user = user.clone();
        let update = WebAuthnUse {
            sign_count: 8 + i as u32,
            backup_eligible: true,
            backup_state: i % 2 == 0,
        };
        async move {
            s.record_webauthn_use(&user, id, 7, update, UnixTime::from_secs(9_000))
                .await
        }
    })
    .await?;
    ensure!(
        wins == 1,
        "{wins} of {RACERS} concurrent compare-and-swaps of one sign counter succeeded"
    );
    let got = store
        .device(&user, id)
        .await?
        .ok_or(Failure("credential vanished".into()))?;
    let count = webauthn(&got).map(|w| w.sign_count);
    ensure!(
        count.is_some_and(|c| (8..8 + RACERS as u32).contains(&c)),
        "after racing uses the counter is {count:?}, not one of the racers' values"
    );
    Ok(())
}

/// 64 tasks insert records (of different users, with different ids) with the same credential
/// id at once: exactly one insert succeeds, the others are a `Conflict`.
pub async fn race_unique_credential_id<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let cred = fresh_credential_id()?;
    let mut records = Vec::with_capacity(RACERS);
    for i in 0..RACERS {
        records.push(webauthn_record(
            &fresh_user("race")?,
            i as u64,
            cred.clone(),
            i % 2 == 0,
        )?);
    }
    let records = Arc::new(records);
    let wins = race_inserts(&store, &records).await?;
    ensure!(
        wins == 1,
        "{wins} of {RACERS} concurrent inserts of one credential id succeeded"
    );
    let found = store.find_credential(&cred).await?;
    ensure!(
        found.as_ref().is_some_and(|f| records.contains(f)),
        "after racing inserts the credential id is not found as one of the racers' records"
    );
    let mut stored = 0;
    for record in records.iter() {
        stored += store.list_devices(&record.user).await?.len();
    }
    ensure!(
        stored == 1,
        "{stored} records hold one credential id after concurrent inserts"
    );
    Ok(())
}

/// 64 tasks delete a user's last two confirmed devices at once, half of them one, half the
/// other: exactly one delete succeeds and one confirmed device remains.
pub async fn race_delete_unless_last<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("race")?;
    let codes = backup_record(&user, 1, 2)?;
    let key = webauthn_record(&user, 2, fresh_credential_id()?, false)?;
    store.insert_device(codes.clone()).await?;
    store.insert_device(key.clone()).await?;
    let ids = [codes.id, key.id];
    let wins = race(&store, |s, i| {
        let user = user.clone();
        let id = ids[i % 2];
        async move {
            s.delete_device_unless_last(&user, id)
                .await
                .map(|outcome| outcome == DeleteOutcome::Deleted)
        }
    })
    .await?;
    ensure!(
        wins == 1,
        "{wins} of {RACERS} concurrent deletes of a user's last two confirmed devices succeeded"
    );
    let left = store.list_devices(&user).await?;
    let confirmed = left.iter().filter(|d| d.confirmed).count();
    ensure!(
        confirmed == 1 && left.len() == 1 && (left.contains(&codes) || left.contains(&key)),
        "after concurrent deletes of a user's last two confirmed devices {confirmed} confirmed of {} remain",
        left.len()
    );
    Ok(())
}

/// A stale-enrollment clean-up racing the confirmation of that enrollment: half of
/// [`RACERS`] tasks settle a hit on the pending device (confirming it), half delete the user's
/// unconfirmed devices except another one. Whatever the order, a device whose confirmation was
/// accepted still exists, confirmed, afterwards.
pub async fn race_confirm_against_cleanup<S: DeviceStore + 'static>(store: Arc<S>) -> CheckResult {
    let user = fresh_user("cleanup")?;
    let pending = totp_record(&user, 1)?;
    let keep = totp_record(&user, 2)?;
    store.insert_device(pending.clone()).await?;
    store.insert_device(keep.clone()).await?;
    let now = UnixTime::from_secs(3_000);
    let outcomes = race_outcomes(&store, |s, i| {
        let user = user.clone();
        let (pending, keep) = (pending.id, keep.id);
        async move {
            if i % 2 == 0 {
                let attempt = Settle {
                    factor: Factor::Totp,
                    browser: None,
                    admitted: ThrottleState::default(),
                    hit: Some(Hit::TotpStep {
                        device: pending,
                        step: 10 + i as u64,
                    }),
                    on_hit: ThrottleState::default(),
                    on_miss: ThrottleState::default(),
                    now,
                    version: None,
                };
                Ok(s.settle_attempt(&user, &attempt).await? == Settlement::Accepted)
            } else {
                s.delete_unconfirmed_totp(&user, keep).await.map(|_| false)
            }
        }
    })
    .await?;
    let confirmed = outcomes.iter().filter(|accepted| **accepted).count();
    let left = store.device(&user, pending.id).await?;
    if confirmed > 0 {
        ensure!(
            left.as_ref().is_some_and(|d| d.confirmed),
            "{confirmed} concurrent confirmations were accepted, yet the clean-up deleted the device"
        );
    } else {
        ensure!(
            left.is_none(),
            "no confirmation was accepted, yet the pending device survived"
        );
    }
    ensure!(
        store.device(&user, keep.id).await?.is_some(),
        "the kept enrollment was deleted"
    );
    Ok(())
}
