//! Codes sent by email or SMS: enrollment confirms the destination, a code works once and
//! expires, the next one supersedes it, sends are limited, guesses share the one-time-code
//! counter, the destination is sealed, and the policy can refuse them as restricted.

use std::sync::Arc;

use multifactor::authorize::{Action, Level, Requirement, SessionEvidence};
use multifactor::error::{InputError, MisuseError};
use multifactor::sent_code::{Channel, SentCode};
use multifactor::store::DeviceData;
use multifactor::throttle::ThrottleDecision;
use multifactor::{DeviceKind, DeviceStore as _, Error, Factor, FirstFactor, MemoryStore, MfaConfig, Outcome, UserId};
use multifactor_kit::service::{TestMfa, keyring, setup, setup_with, totp, user};

/// Enrolls and confirms an email address; returns the enrollment's code (spent).
async fn email(mfa: &TestMfa, who: &UserId, address: &str) -> SentCode {
    let sent = mfa.enroll_sent_code(who, Channel::Email, address, None).await.unwrap();
    let confirmed = mfa
        .confirm_sent_code(who, sent.device, sent.code.expose_secret())
        .await
        .unwrap();
    assert!(confirmed.is_accepted(), "{confirmed:?}");
    sent
}

/// A code that is not `code`.
fn other(code: &SentCode) -> String {
    let c = code.code.expose_secret();
    let last = c.as_bytes()[c.len() - 1];
    format!("{}{}", &c[..c.len() - 1], char::from(b'0' + (last - b'0' + 1) % 10))
}

#[tokio::test]
async fn enrollment_confirms_the_destination_with_its_first_code() {
    let (mfa, _clock, _) = setup();
    let alice = user("alice");
    let sent = mfa
        .enroll_sent_code(&alice, Channel::Email, " Ada@Example.COM ", None)
        .await
        .unwrap();
    assert_eq!(sent.destination.expose_secret(), "Ada@example.com");
    assert_eq!(sent.channel, Channel::Email);
    assert_eq!(sent.code.expose_secret().len(), 6);
    let debug = format!("{sent:?}");
    assert!(
        !debug.contains(sent.code.expose_secret()) && !debug.contains("Ada@"),
        "{debug}"
    );

    let listed = mfa.list_devices(&alice).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].kind, DeviceKind::Email);
    assert!(!listed[0].confirmed);
    assert_eq!(listed[0].destination.as_deref(), Some("A•••@example.com"));
    // Not a second factor yet.
    assert_eq!(
        mfa.verify_sent_code(&alice, sent.code.expose_secret()).await.unwrap(),
        Outcome::Rejected
    );
    assert_eq!(
        mfa.confirm_sent_code(&alice, sent.device, &other(&sent)).await.unwrap(),
        Outcome::Rejected
    );
    assert!(matches!(
        mfa.confirm_sent_code(&alice, sent.device, "12345").await,
        Err(Error::Input(InputError::CodeFormat { .. }))
    ));
    let Outcome::Accepted(v) = mfa
        .confirm_sent_code(&alice, sent.device, sent.code.expose_secret())
        .await
        .unwrap()
    else {
        panic!("the first code did not confirm the address");
    };
    assert!(
        !v.is_sign_in(),
        "a confirmation is proof of an enrollment, not a sign-in"
    );
    assert_eq!(v.kind(), DeviceKind::Email);
    assert!(mfa.list_devices(&alice).await.unwrap()[0].confirmed);
    assert!(matches!(
        mfa.confirm_sent_code(&alice, sent.device, sent.code.expose_secret())
            .await,
        Err(Error::Misuse(MisuseError::AlreadyConfirmed))
    ));
}

#[tokio::test]
async fn a_code_signs_in_once_and_a_reused_code_is_refused() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let enrolled = email(&mfa, &alice, "ada@example.com").await;
    clock.advance(60);
    let code = mfa.send_code(&alice, enrolled.device).await.unwrap();
    let Outcome::Accepted(v) = mfa.verify_sent_code(&alice, code.code.expose_secret()).await.unwrap() else {
        panic!("a sent code was refused");
    };
    assert!(v.is_sign_in());
    assert_eq!(v.kind(), DeviceKind::Email);
    assert_eq!(v.device(), enrolled.device);
    assert_eq!(
        mfa.verify_sent_code(&alice, code.code.expose_secret()).await.unwrap(),
        Outcome::Rejected
    );
    // The enrollment's code is spent too.
    assert_eq!(
        mfa.verify_sent_code(&alice, enrolled.code.expose_secret())
            .await
            .unwrap(),
        Outcome::Rejected
    );
    // Codes are not authenticator codes, nor the other way round.
    assert_eq!(
        mfa.verify_totp(&alice, code.code.expose_secret()).await.unwrap(),
        Outcome::Rejected
    );
}

#[tokio::test]
async fn the_next_code_supersedes_the_last_and_codes_expire() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let enrolled = email(&mfa, &alice, "ada@example.com").await;
    clock.advance(60);
    let first = mfa.send_code(&alice, enrolled.device).await.unwrap();
    clock.advance(30);
    let second = mfa.send_code(&alice, enrolled.device).await.unwrap();
    assert_ne!(
        first.code.expose_secret(),
        second.code.expose_secret(),
        "seeded generator repeated a code"
    );
    assert_eq!(
        mfa.verify_sent_code(&alice, first.code.expose_secret()).await.unwrap(),
        Outcome::Rejected,
        "a superseded code was accepted"
    );
    assert!(
        mfa.verify_sent_code(&alice, second.code.expose_secret())
            .await
            .unwrap()
            .is_accepted()
    );

    // Expiry: 10 minutes by default, and a code after it costs nothing on the counter.
    clock.advance(60);
    let third = mfa.send_code(&alice, enrolled.device).await.unwrap();
    assert_eq!(third.expires_at, clock.now().plus_secs(600));
    clock.advance(600);
    let before = mfa.store().throttle(&alice, Factor::Totp.into()).await.unwrap();
    assert_eq!(
        mfa.verify_sent_code(&alice, third.code.expose_secret()).await.unwrap(),
        Outcome::Rejected,
        "an expired code was accepted"
    );
    assert_eq!(
        mfa.verify_sent_code(&alice, &other(&third)).await.unwrap(),
        Outcome::Rejected
    );
    let after = mfa.store().throttle(&alice, Factor::Totp.into()).await.unwrap();
    assert_eq!(before, after, "a guess with no live code was charged");
}

#[tokio::test]
async fn sends_are_limited_per_destination_and_degrade_to_waiting() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let enrolled = email(&mfa, &alice, "ada@example.com").await;
    let window_end = clock.now().plus_secs(3600);
    // The enrollment's code was the first of the hour, and used: the next goes at once.
    mfa.send_code(&alice, enrolled.device).await.unwrap();
    // That one was not used: a resend waits 30 s.
    let Err(Error::Misuse(MisuseError::SendLimit { retry_at })) = mfa.send_code(&alice, enrolled.device).await else {
        panic!("a resend within 30 s was sent");
    };
    assert_eq!(retry_at, clock.now().plus_secs(30));
    for n in 3..=5 {
        clock.advance(30);
        mfa.send_code(&alice, enrolled.device)
            .await
            .unwrap_or_else(|e| panic!("send {n} of the hour was refused: {e}"));
    }
    clock.advance(30);
    let Err(Error::Misuse(MisuseError::SendLimit { retry_at })) = mfa.send_code(&alice, enrolled.device).await else {
        panic!("a sixth code in the hour was sent");
    };
    assert_eq!(retry_at, window_end, "the sixth send waits for the hour to end");
    // A refused send changes nothing: the last code still works.
    clock.set(window_end);
    let next = mfa.send_code(&alice, enrolled.device).await.unwrap();
    assert!(
        mfa.verify_sent_code(&alice, next.code.expose_secret())
            .await
            .unwrap()
            .is_accepted()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_over_one_code_count_each() {
    let (mfa, clock, _) = setup();
    let mfa = Arc::new(mfa);
    let alice = user("alice");
    let enrolled = email(&mfa, &alice, "ada@example.com").await;
    clock.advance(30);
    mfa.send_code(&alice, enrolled.device).await.unwrap();
    clock.advance(30);
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (mfa, alice, device, barrier) = (mfa.clone(), alice.clone(), enrolled.device, barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            mfa.send_code(&alice, device).await
        }));
    }
    let mut sent = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => sent += 1,
            Err(Error::Misuse(MisuseError::SendLimit { .. })) => {}
            Err(e) => panic!("{e}"),
        }
    }
    // All at one instant: the 30-second gap lets exactly one through.
    assert_eq!(sent, 1, "{sent} of 16 concurrent sends went out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uses_of_one_code_accept_exactly_one() {
    let (mfa, clock, _) = setup();
    let mfa = Arc::new(mfa);
    let alice = user("alice");
    let enrolled = email(&mfa, &alice, "ada@example.com").await;
    clock.advance(60);
    let code = mfa.send_code(&alice, enrolled.device).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(32));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (mfa, alice, barrier) = (mfa.clone(), alice.clone(), barrier.clone());
        let code = code.code.expose_secret().to_owned();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            mfa.verify_sent_code(&alice, &code).await.unwrap()
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += usize::from(t.await.unwrap().is_accepted());
    }
    assert_eq!(
        accepted, 1,
        "{accepted} of 32 concurrent uses of one code were accepted"
    );
}

#[tokio::test]
async fn guesses_share_the_one_time_code_counter_with_authenticator_apps() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let (_, _) = totp(&mfa, &clock, &alice).await;
    let enrolled = email(&mfa, &alice, "ada@example.com").await;
    clock.advance(60);
    let code = mfa.send_code(&alice, enrolled.device).await.unwrap();
    // Five free failures, then the sixth waits: for sent codes and the app alike.
    for i in 0..5 {
        let wrong = format!("{:06}", (i * 7 + 1) % 1_000_000);
        let wrong = if wrong == code.code.expose_secret() {
            other(&code)
        } else {
            wrong
        };
        assert_eq!(mfa.verify_sent_code(&alice, &wrong).await.unwrap(), Outcome::Rejected);
    }
    assert!(matches!(
        mfa.throttle_status(&alice, Factor::Totp).await.unwrap(),
        ThrottleDecision::RetryAt(_)
    ));
    assert!(matches!(
        mfa.verify_totp(&alice, "000000").await.unwrap(),
        Outcome::Throttled { .. }
    ));
    assert!(matches!(
        mfa.verify_sent_code(&alice, code.code.expose_secret()).await.unwrap(),
        Outcome::Throttled { .. }
    ));
}

#[tokio::test]
async fn a_known_browser_keeps_its_own_counter_for_sent_codes() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let enrolled = email(&mfa, &alice, "ada@example.com").await;
    clock.advance(60);
    let code = mfa.send_code(&alice, enrolled.device).await.unwrap();
    let Outcome::Accepted(v) = mfa.verify_sent_code(&alice, code.code.expose_secret()).await.unwrap() else {
        panic!("refused");
    };
    let known = mfa.know_browser(&v, None).await.unwrap();
    clock.advance(60);
    let next = mfa.send_code(&alice, enrolled.device).await.unwrap();
    // Someone else's guesses fill the counter for unknown browsers...
    for i in 0..6 {
        let wrong = format!("{i:06}");
        let wrong = if wrong == next.code.expose_secret() {
            other(&next)
        } else {
            wrong
        };
        let _ = mfa.verify_sent_code(&alice, &wrong).await.unwrap();
    }
    assert!(matches!(
        mfa.verify_sent_code(&alice, next.code.expose_secret()).await.unwrap(),
        Outcome::Throttled { .. }
    ));
    // ...and the owner's browser is not held back.
    let outcome = mfa
        .verify_sent_code_from(&alice, next.code.expose_secret(), Some(known.token.expose_secret()))
        .await
        .unwrap();
    assert!(outcome.is_accepted(), "{outcome:?}");
}

#[tokio::test]
async fn destinations_are_checked_unique_and_bounded() {
    let (mfa, _clock, _) = setup();
    let alice = user("alice");
    for bad in ["ada", "ada@localhost", "+1234", "020 7946 0958"] {
        let channel = if bad.contains('@') || bad.starts_with('a') {
            Channel::Email
        } else {
            Channel::Sms
        };
        assert!(
            matches!(
                mfa.enroll_sent_code(&alice, channel, bad, None).await,
                Err(Error::Input(InputError::Destination))
            ),
            "{bad}"
        );
    }
    email(&mfa, &alice, "ada@example.com").await;
    assert!(matches!(
        mfa.enroll_sent_code(&alice, Channel::Email, "ada@EXAMPLE.com", None)
            .await,
        Err(Error::Misuse(MisuseError::DuplicateDestination))
    ));
    // Another user may have the same address.
    email(&mfa, &user("bob"), "ada@example.com").await;
    let sms = mfa
        .enroll_sent_code(&alice, Channel::Sms, "+44 20 7946 0958", Some("Work phone"))
        .await
        .unwrap();
    assert_eq!(sms.destination.expose_secret(), "+442079460958");
    assert_eq!(sms.channel.kind(), DeviceKind::Sms);
    // One unconfirmed enrollment at a time: a new one replaces it.
    let again = mfa
        .enroll_sent_code(&alice, Channel::Sms, "+44 20 7946 0959", None)
        .await
        .unwrap();
    let ids: Vec<_> = mfa.list_devices(&alice).await.unwrap().iter().map(|d| d.id).collect();
    assert!(!ids.contains(&sms.device) && ids.contains(&again.device), "{ids:?}");
    // The unconfirmed number went with the next enrollment: four addresses, then a fifth.
    for n in 0..4 {
        email(&mfa, &alice, &format!("ada{n}@example.com")).await;
    }
    assert!(matches!(
        mfa.enroll_sent_code(&alice, Channel::Email, "ada9@example.com", None)
            .await,
        Err(Error::Misuse(MisuseError::TooManyDestinations))
    ));
}

#[tokio::test]
async fn the_destination_is_sealed_and_survives_key_rotation() {
    let store = MemoryStore::new();
    let (mfa, clock, _) = setup_with(store.clone(), keyring("k1", 1), MfaConfig::new("ACME").unwrap());
    let alice = user("alice");
    let enrolled = email(&mfa, &alice, "ada@example.com").await;
    let record = mfa.store().device(&alice, enrolled.device).await.unwrap().unwrap();
    let shown = format!("{record:?}");
    assert!(
        !shown.contains("ada@example.com") && !shown.contains("example"),
        "{shown}"
    );
    let DeviceData::SentCode(sent) = &record.data else {
        panic!("not a destination: {record:?}");
    };
    assert!(
        !sent.sealed_destination.to_bytes().windows(7).any(|w| w == b"example"),
        "the destination is in the clear"
    );

    // A new key: the destination is resealed, and codes keep working.
    let (rotated, _, _) = setup_with(
        store,
        keyring("k2", 2)
            .with_previous(multifactor::SealingKey::new(
                multifactor::KeyId::new("k1").unwrap(),
                [1; 32],
            ))
            .unwrap(),
        MfaConfig::new("ACME").unwrap(),
    );
    rotated.clock().set(clock.now().plus_secs(60));
    let report = rotated.rotate_keys().await.unwrap();
    assert_eq!((report.examined, report.resealed), (1, 1), "{report:?}");
    let code = rotated.send_code(&alice, enrolled.device).await.unwrap();
    assert_eq!(code.destination.expose_secret(), "ada@example.com");
    assert!(
        rotated
            .verify_sent_code(&alice, code.code.expose_secret())
            .await
            .unwrap()
            .is_accepted()
    );
    // The fingerprint moved with the key: the same address is still a duplicate.
    assert!(matches!(
        rotated
            .enroll_sent_code(&alice, Channel::Email, "ada@example.com", None)
            .await,
        Err(Error::Misuse(MisuseError::DuplicateDestination))
    ));
}

#[tokio::test]
async fn the_policy_can_refuse_restricted_methods() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let enrolled = email(&mfa, &alice, "ada@example.com").await;
    let sms = mfa
        .enroll_sent_code(&alice, Channel::Sms, "+15550100199", None)
        .await
        .unwrap();
    assert!(
        mfa.confirm_sent_code(&alice, sms.device, sms.code.expose_secret())
            .await
            .unwrap()
            .is_accepted()
    );
    clock.advance(60);
    let code = mfa.send_code(&alice, sms.device).await.unwrap();
    let Outcome::Accepted(v) = mfa.verify_sent_code(&alice, code.code.expose_secret()).await.unwrap() else {
        panic!("refused");
    };
    assert_eq!(v.kind(), DeviceKind::Sms);
    let mut session = SessionEvidence::first_factor(&alice, FirstFactor::Password, clock.now());
    session.add(&v).unwrap();
    let policy = multifactor::policy::AssurancePolicy::new();
    assert!(
        session.amr(&policy).contains(&"sms".to_owned()),
        "{:?}",
        session.amr(&policy)
    );
    let any = Action::Sensitive(Requirement::new(Level::SecondFactor, 300));
    assert!(mfa.authorize(&session, any).await.unwrap().is_allowed());
    // Unrestricted: an SMS or email code is not enough, and neither device can step up.
    let unrestricted = Action::Sensitive(Requirement::new(Level::Unrestricted, 300));
    let answer = mfa.authorize(&session, unrestricted).await.unwrap();
    assert!(
        matches!(&answer, multifactor::authorize::Authorization::EnrollFirst { kinds } if !kinds.contains(&DeviceKind::Email) && !kinds.contains(&DeviceKind::Sms)),
        "{answer:?}"
    );
    let phishing_resistant = Action::Sensitive(Requirement::new(Level::PhishingResistant, 300));
    assert!(!mfa.authorize(&session, phishing_resistant).await.unwrap().is_allowed());
    assert!(DeviceKind::Email.is_restricted() && DeviceKind::Sms.is_restricted() && !DeviceKind::Totp.is_restricted());
    let _ = enrolled;
}
