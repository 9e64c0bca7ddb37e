//! Known browsers: a failure counter of their own for each browser that completed a full
//! sign-in, so that nobody without the token can slow the owner's browser down; replaced at
//! every full sign-in, worth a bounded number of guesses when stolen, never a way to skip the
//! second factor. And the same wrong code twice is one failure.
#![allow(clippy::unwrap_used, clippy::panic)]

use multifactor::audit::AuditKind;
use multifactor::backup_codes::BackupCodeConfig;
use multifactor::error::MisuseError;
use multifactor::store::{Counter, ThrottleState};
use multifactor::throttle::KnownBrowserPolicy;
use multifactor::{DeviceStore, Error, Factor, MfaConfig, Outcome, SecretBytes, Verified};
use multifactor_kit::service::*;

/// A wrong TOTP code for now, different for each `n`.
fn wrong(secret: &SecretBytes, clock: &multifactor::ManualClock, n: u32) -> String {
    let window: Vec<String> = (0..3).map(|o| code_now(secret, clock, o)).collect();
    let previous = code_for(secret, clock);
    ((n * 7_919) % 900_000..1_000_000)
        .map(|c| format!("{c:06}"))
        .find(|c| !window.contains(c) && *c != previous)
        .unwrap()
}

/// The code of the step before now (inside the ±1 window).
fn code_for(secret: &SecretBytes, clock: &multifactor::ManualClock) -> String {
    let params = multifactor::totp::TotpParams::default();
    multifactor::totp::code_for_step(secret, &params, params.step_at(clock.now()) - 1)
        .expose_secret()
        .to_owned()
}

fn accepted(outcome: Outcome) -> Verified {
    match outcome {
        Outcome::Accepted(v) => v,
        other => panic!("{other:?}"),
    }
}

/// The owner signs in with the right code and gets (or replaces) the browser's token.
async fn sign_in(mfa: &TestMfa, clock: &multifactor::ManualClock, secret: &SecretBytes, token: Option<&str>) -> String {
    clock.advance(30);
    let who = user("alice");
    let v = accepted(
        mfa.verify_totp_from(&who, &code_now(secret, clock, 0), token)
            .await
            .unwrap(),
    );
    mfa.know_browser(&v, token)
        .await
        .unwrap()
        .token
        .expose_secret()
        .to_owned()
}

#[tokio::test]
async fn an_attacker_without_the_token_never_slows_the_owners_browser() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let (_, secret) = totp(&mfa, &clock, &alice).await;
    let token = sign_in(&mfa, &clock, &secret, None).await;
    // The attacker drives the counter for unknown browsers into the lock.
    let mut n = 0;
    loop {
        n += 1;
        match mfa.verify_totp(&alice, &wrong(&secret, &clock, n)).await.unwrap() {
            Outcome::Rejected => {}
            Outcome::Throttled { retry_at } => clock.set(retry_at),
            Outcome::Locked => break,
            other => panic!("{other:?}"),
        }
    }
    let unknown = mfa.store().throttle(&alice, Factor::Totp.into()).await.unwrap();
    assert_eq!(unknown.failures, 100);
    // The owner's browser: accepted at once, and the counter of unknown browsers untouched.
    clock.advance(30);
    accepted(
        mfa.verify_totp_from(&alice, &code_now(&secret, &clock, 0), Some(&token))
            .await
            .unwrap(),
    );
    assert_eq!(
        mfa.store().throttle(&alice, Factor::Totp.into()).await.unwrap(),
        unknown
    );
    // The same code from an unknown browser is locked out (the bound is kept there).
    clock.advance(30);
    assert_eq!(
        mfa.verify_totp(&alice, &code_now(&secret, &clock, 0)).await.unwrap(),
        Outcome::Locked
    );
}

#[tokio::test]
async fn a_known_browser_takes_its_failures_then_counts_as_unknown() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let (_, secret) = totp(&mfa, &clock, &alice).await;
    let token = sign_in(&mfa, &clock, &secret, None).await;
    let id = mfa.list_known_browsers(&alice).await.unwrap()[0].id;
    let limit = KnownBrowserPolicy::DEFAULT_FAILURES;
    // Its failures go to its own counter, with no backoff: never `Throttled`.
    for n in 0..limit {
        assert_eq!(
            mfa.verify_totp_from(&alice, &wrong(&secret, &clock, n), Some(&token))
                .await
                .unwrap(),
            Outcome::Rejected
        );
    }
    let own = mfa
        .store()
        .throttle(&alice, Counter::known(Factor::Totp, id))
        .await
        .unwrap();
    assert_eq!(own.failures, limit);
    assert_eq!(
        mfa.store().throttle(&alice, Factor::Totp.into()).await.unwrap(),
        ThrottleState::default(),
        "a known browser's failures reached the counter of unknown browsers"
    );
    // Past its failures it is an unknown browser: the next ones go to the user's counter,
    // with its free tries and backoff (degrading gently, not a lock).
    for n in 0..5 {
        assert_eq!(
            mfa.verify_totp_from(&alice, &wrong(&secret, &clock, 100 + n), Some(&token))
                .await
                .unwrap(),
            Outcome::Rejected
        );
    }
    assert_eq!(
        mfa.store()
            .throttle(&alice, Factor::Totp.into())
            .await
            .unwrap()
            .failures,
        5
    );
    assert!(matches!(
        mfa.verify_totp_from(&alice, &wrong(&secret, &clock, 200), Some(&token))
            .await
            .unwrap(),
        Outcome::Throttled { .. }
    ));
}

/// Every full sign-in replaces the token: the old one (a stolen copy, say) is unknown from then
/// on, and the owner's new token starts with a clear counter. So a success does not clear a
/// token's counter (a thief of the token would get its failures back each time the owner signs
/// in); the replacement does.
#[tokio::test]
async fn a_full_sign_in_replaces_the_token() {
    let (mfa, clock, sink) = setup();
    let alice = user("alice");
    let (_, secret) = totp(&mfa, &clock, &alice).await;
    let first = sign_in(&mfa, &clock, &secret, None).await;
    let first_id = mfa.list_known_browsers(&alice).await.unwrap()[0].id;
    for n in 0..3 {
        let _ = mfa
            .verify_totp_from(&alice, &wrong(&secret, &clock, n), Some(&first))
            .await
            .unwrap();
    }
    // A success with the token keeps its counter...
    clock.advance(30);
    let v = accepted(
        mfa.verify_totp_from(&alice, &code_now(&secret, &clock, 0), Some(&first))
            .await
            .unwrap(),
    );
    let own = Counter::known(Factor::Totp, first_id);
    assert_eq!(mfa.store().throttle(&alice, own).await.unwrap().failures, 3);
    // ...and the new token retires it, counter and all.
    sink.take();
    let second = mfa.know_browser(&v, Some(&first)).await.unwrap();
    assert_eq!(
        sink.take().iter().map(|e| e.kind.clone()).collect::<Vec<_>>(),
        vec![AuditKind::KnownBrowserIssued]
    );
    let known = mfa.list_known_browsers(&alice).await.unwrap();
    assert_eq!(known.len(), 1);
    assert_eq!(known[0].id, second.id);
    assert_eq!(
        mfa.store().throttle(&alice, own).await.unwrap(),
        ThrottleState::default()
    );
    // The old token is an unknown browser now: its failures reach the user's counter.
    let _ = mfa
        .verify_totp_from(&alice, &wrong(&secret, &clock, 9), Some(&first))
        .await
        .unwrap();
    assert_eq!(
        mfa.store()
            .throttle(&alice, Factor::Totp.into())
            .await
            .unwrap()
            .failures,
        1
    );
    // A token's id with another secret retires nothing.
    let third = mfa.know_browser(&v, None).await.unwrap();
    let forged = format!("{}.{}", third.id, "0".repeat(64));
    let _ = mfa.know_browser(&v, Some(&forged)).await.unwrap();
    assert!(
        mfa.list_known_browsers(&alice)
            .await
            .unwrap()
            .iter()
            .any(|r| r.id == third.id),
        "a token id alone retired a known browser"
    );
    // Someone else's token is not retired by a sign-in of alice's.
    let bob = user("bob");
    let (_, bob_secret) = totp(&mfa, &clock, &bob).await;
    clock.advance(30);
    let bv = accepted(mfa.verify_totp(&bob, &code_now(&bob_secret, &clock, 0)).await.unwrap());
    let bobs = mfa.know_browser(&bv, None).await.unwrap();
    let _ = mfa.know_browser(&v, Some(bobs.token.expose_secret())).await.unwrap();
    assert_eq!(mfa.list_known_browsers(&bob).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_known_browser_never_skips_the_second_factor_and_a_remembered_one_is_not_known() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let (_, secret) = totp(&mfa, &clock, &alice).await;
    clock.advance(30);
    let v = accepted(mfa.verify_totp(&alice, &code_now(&secret, &clock, 0)).await.unwrap());
    let known = mfa.know_browser(&v, None).await.unwrap();
    let remembered = mfa.remember_browser(&v).await.unwrap();
    assert!(
        !mfa.check_remembered_browser(&alice, known.token.expose_secret())
            .await
            .unwrap(),
        "a known-browser token let the browser skip the second factor"
    );
    assert!(
        mfa.check_remembered_browser(&alice, remembered.token.expose_secret())
            .await
            .unwrap()
    );
    assert_eq!(mfa.list_known_browsers(&alice).await.unwrap().len(), 1);
    assert_eq!(mfa.list_remembered_browsers(&alice).await.unwrap().len(), 1);
    // A remembered-browser token presented as a known one counts as unknown.
    let _ = mfa
        .verify_totp_from(
            &alice,
            &wrong(&secret, &clock, 1),
            Some(remembered.token.expose_secret()),
        )
        .await
        .unwrap();
    assert_eq!(
        mfa.store()
            .throttle(&alice, Factor::Totp.into())
            .await
            .unwrap()
            .failures,
        1
    );
    // A device change ends the remembered browser, not the known one.
    mfa.generate_backup_codes(&alice, None).await.unwrap();
    assert!(mfa.list_remembered_browsers(&alice).await.unwrap().is_empty());
    assert_eq!(mfa.list_known_browsers(&alice).await.unwrap().len(), 1);
    // A confirmation is no sign-in.
    let e = mfa.enroll_totp(&alice, "a", None).await.unwrap();
    let s2 = multifactor::totp::decode_base32_secret(e.secret_base32.expose_secret()).unwrap();
    let confirmed = accepted(
        mfa.confirm_totp(&alice, e.device, &code_now(&s2, &clock, 0))
            .await
            .unwrap(),
    );
    assert!(matches!(
        mfa.know_browser(&confirmed, None).await,
        Err(Error::Misuse(MisuseError::NotASignIn))
    ));
}

#[tokio::test]
async fn foreign_expired_forged_and_revoked_tokens_are_unknown_browsers() {
    let (mfa, clock, _) = setup();
    let (alice, bob) = (user("alice"), user("bob"));
    let (_, secret) = totp(&mfa, &clock, &alice).await;
    let (_, bob_secret) = totp(&mfa, &clock, &bob).await;
    clock.advance(30);
    let bv = accepted(mfa.verify_totp(&bob, &code_now(&bob_secret, &clock, 0)).await.unwrap());
    let bobs = mfa.know_browser(&bv, None).await.unwrap();
    let alices = sign_in(&mfa, &clock, &secret, None).await;
    let mut forged = alices.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    let unknown_failures = async || {
        mfa.store()
            .throttle(&alice, Factor::Totp.into())
            .await
            .unwrap()
            .failures
    };
    let mut expected = 0;
    for (n, token) in [bobs.token.expose_secret(), forged.as_str(), "garbage", ""]
        .into_iter()
        .enumerate()
    {
        let _ = mfa
            .verify_totp_from(&alice, &wrong(&secret, &clock, n as u32), Some(token))
            .await
            .unwrap();
        expected += 1;
        assert_eq!(unknown_failures().await, expected, "token #{n} counted as known");
    }
    // Alice's own token keeps her counter clear...
    let _ = mfa
        .verify_totp_from(&alice, &wrong(&secret, &clock, 10), Some(&alices))
        .await
        .unwrap();
    assert_eq!(unknown_failures().await, expected);
    // ...until it is revoked (here, on this server: the cache forgets it at once).
    let id = mfa.list_known_browsers(&alice).await.unwrap()[0].id;
    mfa.revoke_remembered_browser(&alice, id).await.unwrap();
    assert_eq!(
        mfa.store()
            .throttle(&alice, Counter::known(Factor::Totp, id))
            .await
            .unwrap(),
        ThrottleState::default(),
        "a revoked browser's counter stayed behind"
    );
    let _ = mfa
        .verify_totp_from(&alice, &wrong(&secret, &clock, 11), Some(&alices))
        .await
        .unwrap();
    expected += 1;
    assert_eq!(unknown_failures().await, expected);
    // An expired token is unknown too. (The sign-in that issues it, from an unknown browser,
    // clears that counter's consecutive failures.)
    let again = sign_in(&mfa, &clock, &secret, None).await;
    assert_eq!(unknown_failures().await, 0);
    clock.advance(181 * 86_400);
    let _ = mfa
        .verify_totp_from(&alice, &wrong(&secret, &clock, 12), Some(&again))
        .await
        .unwrap();
    assert_eq!(unknown_failures().await, 1);
}

/// A token revoked by another server (its cache still holds the browser) is unknown at once:
/// the settlement checks that the record is still there.
#[tokio::test]
async fn a_token_revoked_elsewhere_is_unknown_at_once() {
    let (a, clock, _) = setup();
    let b = multifactor::Mfa::new(a.store().clone(), keyring("k1", 1), MfaConfig::new("ACME").unwrap())
        .unwrap()
        .with_clock(clock.clone());
    let alice = user("alice");
    let (_, secret) = totp(&a, &clock, &alice).await;
    let token = sign_in(&a, &clock, &secret, None).await;
    // A warms its cache with the browser.
    let _ = a
        .verify_totp_from(&alice, &wrong(&secret, &clock, 1), Some(&token))
        .await
        .unwrap();
    let id = b.list_known_browsers(&alice).await.unwrap()[0].id;
    b.revoke_remembered_browser(&alice, id).await.unwrap();
    let _ = a
        .verify_totp_from(&alice, &wrong(&secret, &clock, 2), Some(&token))
        .await
        .unwrap();
    assert_eq!(
        a.store().throttle(&alice, Factor::Totp.into()).await.unwrap().failures,
        1,
        "the revoked browser still counted as known"
    );
}

/// Enter pressed twice, a retry after a timeout: the same wrong code in the same time step is
/// charged once. The next step, or another code, is a new guess and is charged.
#[tokio::test]
async fn the_same_wrong_totp_code_in_a_step_is_one_failure() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let (_, secret) = totp(&mfa, &clock, &alice).await;
    clock.advance(30);
    let failures = async || {
        mfa.store()
            .throttle(&alice, Factor::Totp.into())
            .await
            .unwrap()
            .failures
    };
    let typo = wrong(&secret, &clock, 1);
    for _ in 0..4 {
        assert_eq!(mfa.verify_totp(&alice, &typo).await.unwrap(), Outcome::Rejected);
    }
    assert_eq!(failures().await, 1);
    assert_eq!(
        mfa.verify_totp(&alice, &wrong(&secret, &clock, 2)).await.unwrap(),
        Outcome::Rejected
    );
    assert_eq!(failures().await, 2);
    // The first typo again, after another one: charged again (only the last is kept).
    assert_eq!(mfa.verify_totp(&alice, &typo).await.unwrap(), Outcome::Rejected);
    assert_eq!(failures().await, 3);
    // In the next step the same digits are a new guess.
    clock.advance(30);
    let next = wrong(&secret, &clock, 1);
    assert_eq!(mfa.verify_totp(&alice, &next).await.unwrap(), Outcome::Rejected);
    assert_eq!(mfa.verify_totp(&alice, &next).await.unwrap(), Outcome::Rejected);
    assert_eq!(failures().await, 4);
    // The fingerprint is not the code.
    let stored = mfa.store().throttle(&alice, Factor::Totp.into()).await.unwrap();
    let fingerprint = stored.last_miss.unwrap();
    assert_ne!(fingerprint, next.parse::<u64>().unwrap());
    // The right code still gets in, and clears the fingerprint with the failures.
    assert!(
        mfa.verify_totp(&alice, &code_now(&secret, &clock, 0))
            .await
            .unwrap()
            .is_accepted()
    );
    assert_eq!(
        mfa.store()
            .throttle(&alice, Factor::Totp.into())
            .await
            .unwrap()
            .last_miss,
        None
    );
}

#[tokio::test]
async fn the_same_wrong_backup_code_is_one_failure() {
    let (mfa, _clock, _) = setup();
    let alice = user("alice");
    let set = mfa.generate_backup_codes(&alice, None).await.unwrap();
    let failures = async || {
        mfa.store()
            .throttle(&alice, Factor::BackupCodes.into())
            .await
            .unwrap()
            .failures
    };
    for spelling in ["zzzz-zzzz-zzzzz", "ZZZZ ZZZZ ZZZZZ", "zzzzzzzzzzzzz"] {
        assert_eq!(
            mfa.verify_backup_code(&alice, spelling).await.unwrap(),
            Outcome::Rejected
        );
    }
    assert_eq!(failures().await, 1, "one wrong code, three spellings");
    assert_eq!(
        mfa.verify_backup_code(&alice, "yyyy-yyyy-yyyyy").await.unwrap(),
        Outcome::Rejected
    );
    assert_eq!(failures().await, 2);
    // After a code is spent the devices differ: the same wrong code is a new failure.
    accepted(
        mfa.verify_backup_code(&alice, set.codes[0].expose_secret())
            .await
            .unwrap(),
    );
    assert_eq!(
        mfa.verify_backup_code(&alice, "yyyy-yyyy-yyyyy").await.unwrap(),
        Outcome::Rejected
    );
    assert_eq!(failures().await, 1);
}

/// Backup codes of 64 bits or more (the default 13 characters) are never held back: a right
/// code after any number of wrong ones is accepted at once. Failures are still counted and the
/// host hears that someone is guessing. A host that configures shorter codes keeps a throttle.
#[tokio::test]
async fn backup_codes_are_throttled_only_under_64_bits() {
    let (mfa, _clock, sink) = setup();
    let alice = user("alice");
    let set = mfa.generate_backup_codes(&alice, None).await.unwrap();
    for n in 0..200 {
        assert_eq!(
            mfa.verify_backup_code(&alice, &format!("zzzz-zzzz-{n:05}"))
                .await
                .unwrap(),
            Outcome::Rejected
        );
    }
    assert!(
        sink.take()
            .iter()
            .any(|e| matches!(e.kind, AuditKind::FailureBudgetLow { .. })),
        "the host did not hear that someone is guessing"
    );
    assert_eq!(
        mfa.throttle_status(&alice, Factor::BackupCodes).await.unwrap(),
        multifactor::throttle::ThrottleDecision::Allowed
    );
    accepted(
        mfa.verify_backup_code(&alice, set.codes[0].expose_secret())
            .await
            .unwrap(),
    );

    let mut config = MfaConfig::new("ACME").unwrap();
    config.backup_codes = BackupCodeConfig::new(6, 12).unwrap();
    let (short, _clock, _) = setup_with(multifactor::MemoryStore::new(), keyring("k1", 1), config);
    let set = short.generate_backup_codes(&alice, None).await.unwrap();
    for n in 0..5 {
        let _ = short
            .verify_backup_code(&alice, &format!("zzzz-zzzz-{n:04}"))
            .await
            .unwrap();
    }
    assert!(matches!(
        short
            .verify_backup_code(&alice, set.codes[0].expose_secret())
            .await
            .unwrap(),
        Outcome::Throttled { .. }
    ));
}
