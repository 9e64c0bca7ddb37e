//! The store under the service's verification cache, one or two app servers.

use super::*;

/// Through the service, with its verification cache: [`cached_verification_between`] with both
/// services on one store.
pub async fn cached_verification<S: Store + 'static>(store: Arc<S>) -> CheckResult {
    cached_verification_between(store.clone(), store).await
}

/// Through the service, with its verification cache, as two app servers: service A on store
/// `a`, service B on store `b` (the same database). For TOTP and backup codes, a right code
/// and a wrong one make the same store calls from A, and get the right answers:
///
/// - with A's cache warm: one call, the settlement;
/// - after B changed the user's devices (a TOTP device imported, a backup code spent): the
///   settlement finds A's copy stale, then one read and one settlement;
/// - after the counter was moved elsewhere to a backoff or a lock: the settlement, which finds
///   the counter moved, and a refusal that leaves the counter as it is.
///
/// Then 64 verifications of one right code race from A and B (both warm): exactly one is
/// accepted.
pub async fn cached_verification_between<S: Store + 'static>(a: Arc<S>, b: Arc<S>) -> CheckResult {
    use crate::clock::ManualClock;
    use crate::secret::SecretBytes;
    use crate::service::{Mfa, Outcome};
    use crate::totp::{code_at, decode_base32_secret, encode_base32_secret};

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Scenario {
        Warm,
        ChangedElsewhere,
        ThrottledElsewhere,
        LockedElsewhere,
    }
    let fail = |e: crate::error::Error| Failure(format!("service error: {e}"));
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let keys = Keyring::new(SealingKey::new(
        KeyId::new("conformance").map_err(|e| Failure(e.to_string()))?,
        [7; 32],
    ));
    let config = service_config()?;
    let mfa_a = Arc::new(
        Mfa::new(CountingStore::new(a), keys.clone(), config.clone())
            .map_err(fail)?
            .with_clock(clock.clone()),
    );
    let mfa_b = Arc::new(
        Mfa::new(CountingStore::new(b), keys, config)
            .map_err(fail)?
            .with_clock(clock.clone()),
    );
    // At start, as a host does (a backup-code verification checks its key once per process
    // otherwise: one store call more, the same for a right and a wrong code).
    mfa_a.check_keys().await.map_err(fail)?;
    mfa_b.check_keys().await.map_err(fail)?;
    let params = TotpParams::default();
    // Enrolls `user` through B (TOTP confirmed, a backup-code set): the secret and the codes.
    let enroll = async |user: &UserId| -> Result<(SecretBytes, Vec<String>), Failure> {
        let e = mfa_b.enroll_totp(user, "u", None).await.map_err(fail)?;
        let secret = decode_base32_secret(e.secret_base32.expose_secret()).map_err(|e| Failure(e.to_string()))?;
        let first = code_at(&secret, &params, clock.now());
        ensure!(
            mfa_b
                .confirm_totp(user, e.device, first.expose_secret())
                .await
                .map_err(fail)?
                .is_accepted(),
            "could not confirm TOTP"
        );
        let set = mfa_b.generate_backup_codes(user, None).await.map_err(fail)?;
        Ok((secret, set.codes.iter().map(|c| c.expose_secret().to_owned()).collect()))
    };
    let wrong_totp = |right: &str| -> Result<String, Failure> {
        let n: u32 = right.parse().map_err(|_| Failure("code".into()))?;
        Ok(format!("{:06}", (n + 1) % 1_000_000))
    };
    for factor in [Factor::Totp, Factor::BackupCodes] {
        for scenario in [
            Scenario::Warm,
            Scenario::ChangedElsewhere,
            Scenario::ThrottledElsewhere,
            Scenario::LockedElsewhere,
        ] {
            let mut seen = Vec::new();
            for right in [true, false] {
                let user = fresh_user("cached")?;
                // Enrolled through B, then A signs in once: A's cache holds the user.
                let (secret, codes) = enroll(&user).await?;
                let code_of =
                    |i: usize| -> Result<String, Failure> { codes.get(i).cloned().ok_or(Failure("no code".into())) };
                clock.advance(30);
                let warm = match factor {
                    Factor::Totp => {
                        let c = code_at(&secret, &params, clock.now());
                        mfa_a.verify_totp(&user, c.expose_secret()).await
                    }
                    _ => mfa_a.verify_backup_code(&user, &code_of(0)?).await,
                }
                .map_err(fail)?;
                ensure!(warm.is_accepted(), "{factor:?}: the warm-up sign-in failed: {warm:?}");
                clock.advance(30);
                let next_code = 1;
                match scenario {
                    Scenario::Warm => {}
                    // Another authenticator app, through B: the user's devices version moves
                    // (a backup code spent through B need not move it: the settlement refuses
                    // a spent code by itself).
                    Scenario::ChangedElsewhere => {
                        let other = SecretBytes::new(vec![right as u8 + 40; 20]);
                        mfa_b
                            .import_totp(&user, encode_base32_secret(&other).expose_secret(), None)
                            .await
                            .map_err(fail)?;
                    }
                    Scenario::ThrottledElsewhere | Scenario::LockedElsewhere => {
                        let policy = mfa_a.config().throttle;
                        let locked = if scenario == Scenario::LockedElsewhere {
                            ThrottleState {
                                failures: policy.lockout_after(),
                                last_failure_at: Some(clock.now()),
                                budget_until: None,
                                last_miss: None,
                            }
                        } else {
                            // Backoff: the sixth failure waits.
                            ThrottleState {
                                failures: 5,
                                last_failure_at: Some(clock.now()),
                                budget_until: Some(clock.now().plus_secs(5 * policy.budget_refill_secs())),
                                last_miss: None,
                            }
                        };
                        ensure!(
                            mfa_b
                                .store()
                                .swap_throttle(&user, factor.into(), ThrottleState::default(), locked)
                                .await?,
                            "could not lock the counter"
                        );
                    }
                }
                let code = match (factor, right) {
                    (Factor::Totp, true) => code_at(&secret, &params, clock.now()).expose_secret().to_owned(),
                    (Factor::Totp, false) => wrong_totp(code_at(&secret, &params, clock.now()).expose_secret())?,
                    (_, true) => code_of(next_code)?,
                    (_, false) => "0000-0000-0000".to_owned(),
                };
                let counter_before = mfa_a.store().inner().throttle(&user, factor.into()).await?;
                mfa_a.store().take_calls();
                let outcome = match factor {
                    Factor::Totp => mfa_a.verify_totp(&user, &code).await,
                    _ => mfa_a.verify_backup_code(&user, &code).await,
                }
                .map_err(fail)?;
                let calls = mfa_a.store().take_calls();
                let expected: &[&str] = match scenario {
                    Scenario::Warm | Scenario::ThrottledElsewhere | Scenario::LockedElsewhere => &["settle_attempt"],
                    Scenario::ChangedElsewhere => &["settle_attempt", "verification_state", "settle_attempt"],
                };
                ensure!(
                    calls == expected,
                    "{factor:?} {scenario:?}, {} code: A made {calls:?}, not {expected:?}",
                    if right { "right" } else { "wrong" }
                );
                let answer_ok = match scenario {
                    Scenario::LockedElsewhere => matches!(outcome, Outcome::Locked),
                    Scenario::ThrottledElsewhere => matches!(outcome, Outcome::Throttled { .. }),
                    _ if right => outcome.is_accepted(),
                    _ => matches!(outcome, Outcome::Rejected),
                };
                ensure!(
                    answer_ok,
                    "{factor:?} {scenario:?}, {} code: {outcome:?}",
                    if right { "right" } else { "wrong" }
                );
                if matches!(scenario, Scenario::ThrottledElsewhere | Scenario::LockedElsewhere) {
                    ensure!(
                        mfa_a.store().inner().throttle(&user, factor.into()).await? == counter_before,
                        "{factor:?}: a refusal from a cached view changed the counter"
                    );
                }
                seen.push(calls);
            }
            ensure!(
                seen.first() == seen.last(),
                "{factor:?} {scenario:?}: the right code {:?} and a wrong one {:?} made different calls",
                seen.first(),
                seen.last()
            );
        }
    }
    // Both servers warm, one right code, 64 verifications from both: one acceptance.
    for factor in [Factor::Totp, Factor::BackupCodes] {
        let user = fresh_user("cached-race")?;
        let (secret, codes) = enroll(&user).await?;
        let mut warm_ups = Vec::new();
        for (i, mfa) in [&mfa_a, &mfa_b].into_iter().enumerate() {
            clock.advance(30);
            let outcome = match factor {
                Factor::Totp => {
                    let c = code_at(&secret, &params, clock.now());
                    mfa.verify_totp(&user, c.expose_secret()).await
                }
                _ => {
                    mfa.verify_backup_code(&user, codes.get(i).map_or("", String::as_str))
                        .await
                }
            }
            .map_err(fail)?;
            warm_ups.push(outcome.is_accepted());
        }
        ensure!(warm_ups == [true, true], "{factor:?}: warm-ups failed: {warm_ups:?}");
        clock.advance(30);
        let code = match factor {
            Factor::Totp => code_at(&secret, &params, clock.now()).expose_secret().to_owned(),
            _ => codes.get(2).cloned().ok_or(Failure("no code".into()))?,
        };
        let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
        let mut tasks = Vec::with_capacity(RACERS);
        for i in 0..RACERS {
            let mfa = if i % 2 == 0 { mfa_a.clone() } else { mfa_b.clone() };
            let (barrier, user, code) = (barrier.clone(), user.clone(), code.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                match factor {
                    Factor::Totp => mfa.verify_totp(&user, &code).await,
                    _ => mfa.verify_backup_code(&user, &code).await,
                }
            }));
        }
        let mut accepted = 0;
        for t in tasks {
            let outcome = t
                .await
                .map_err(|e| Failure(format!("task failed: {e}")))?
                .map_err(fail)?;
            accepted += usize::from(outcome.is_accepted());
        }
        ensure!(
            accepted == 1,
            "{factor:?}: one code raced from two warm servers was accepted {accepted} times"
        );
    }
    Ok(())
}

/// Through the service, as two app servers on one store: 32 imports of one TOTP secret for one
/// user race, half of them with a zero byte appended (the same key to HMAC). Exactly one is
/// imported; every other is refused as a duplicate, and the user has one TOTP device.
pub async fn race_duplicate_totp_import<S: Store + 'static>(store: Arc<S>) -> CheckResult {
    use crate::error::{Error, MisuseError};
    use crate::secret::SecretBytes;
    use crate::service::Mfa;
    use crate::totp::encode_base32_secret;

    let fail = |e: Error| Failure(format!("service error: {e}"));
    let keys = Keyring::new(SealingKey::new(
        KeyId::new("conformance").map_err(|e| Failure(e.to_string()))?,
        [7; 32],
    ));
    let config = service_config()?;
    let servers = [
        Arc::new(Mfa::new(CountingStore::new(store.clone()), keys.clone(), config.clone()).map_err(fail)?),
        Arc::new(Mfa::new(CountingStore::new(store.clone()), keys, config).map_err(fail)?),
    ];
    let user = fresh_user("import")?;
    // 16 random bytes, and the same with a zero byte appended.
    let mut secret = zeroize::Zeroizing::new(fresh_credential_id()?.get(2..18).unwrap_or_default().to_vec());
    let plain = encode_base32_secret(&SecretBytes::from(secret.clone()));
    secret.push(0);
    let padded = encode_base32_secret(&SecretBytes::from(secret));
    const IMPORTS: usize = 32;
    let barrier = Arc::new(tokio::sync::Barrier::new(IMPORTS));
    let mut tasks = Vec::with_capacity(IMPORTS);
    for i in 0..IMPORTS {
        let (mfa, barrier, user) = (servers[i % 2].clone(), barrier.clone(), user.clone());
        let text = if i % 4 < 2 { plain.clone() } else { padded.clone() };
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            mfa.import_totp(&user, text.expose_secret(), None).await
        }));
    }
    let (mut imported, mut duplicates) = (0, 0);
    for task in tasks {
        match task.await.map_err(|e| Failure(format!("import task: {e}")))? {
            Ok(_) => imported += 1,
            Err(Error::Misuse(MisuseError::DuplicateSecret)) => duplicates += 1,
            Err(e) => return Err(Failure(format!("an import failed otherwise: {e}"))),
        }
    }
    ensure!(
        imported == 1 && duplicates == IMPORTS - 1,
        "{imported} of {IMPORTS} concurrent imports of one secret succeeded ({duplicates} refused as duplicates)"
    );
    let left = store.list_devices(&user).await?.len();
    ensure!(left == 1, "{left} TOTP devices after racing imports of one secret");
    store.delete_user_devices(&user).await?;
    Ok(())
}
