//! Sensitive actions through the service: session evidence built from real verifications, its
//! tagged text form, and the decisions on the user's stored devices.

use multifactor::authorize::{Action, Authorization, Denial, SessionEvidence};
use multifactor::error::{InputError, MisuseError};
use multifactor::{DeviceKind, Error, FirstFactor, KeyId, Keyring, Outcome, SealingKey};
use multifactor_kit::service::{code_now, setup, setup_with, totp, user};

/// After the password, a second factor; five minutes later, a step-up; a fresh TOTP code
/// (not a backup code) makes changing factors possible again.
#[tokio::test]
async fn evidence_from_verifications_decides_and_ages() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let (_, secret) = totp(&mfa, &clock, &alice).await;
    let set = mfa.generate_backup_codes(&alice, None).await.unwrap();
    let mut session = SessionEvidence::first_factor(&alice, FirstFactor::Password, clock.now());
    assert_eq!(
        mfa.authorize(&session, Action::ViewDevices).await.unwrap(),
        Authorization::Denied(Denial::SecondFactorPending)
    );
    clock.advance(30);
    let Outcome::Accepted(v) = mfa.verify_totp(&alice, &code_now(&secret, &clock, 0)).await.unwrap() else {
        panic!()
    };
    session.add(&v).unwrap();
    assert!(
        mfa.authorize(&session, Action::RegenerateBackupCodes)
            .await
            .unwrap()
            .is_allowed()
    );
    clock.advance(301);
    let Authorization::StepUp { devices, max_age_secs } =
        mfa.authorize(&session, Action::RegenerateBackupCodes).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(max_age_secs, 300);
    assert_eq!(
        devices.iter().map(|d| d.kind).collect::<Vec<_>>(),
        [DeviceKind::Totp],
        "a backup code is no step-up"
    );
    // A backup code now is a recovery: a new set, yes; deleting the app, no.
    let Outcome::Accepted(v) = mfa
        .verify_backup_code(&alice, set.codes[0].expose_secret())
        .await
        .unwrap()
    else {
        panic!()
    };
    session.add(&v).unwrap();
    assert!(session.is_recovery());
    assert!(
        mfa.authorize(&session, Action::RegenerateBackupCodes)
            .await
            .unwrap()
            .is_allowed()
    );
    let app = mfa.list_devices(&alice).await.unwrap()[0].id;
    assert!(matches!(
        mfa.authorize(&session, Action::DeleteDevice(app)).await.unwrap(),
        Authorization::StepUp { .. }
    ));
    clock.advance(30);
    let Outcome::Accepted(v) = mfa.verify_totp(&alice, &code_now(&secret, &clock, 0)).await.unwrap() else {
        panic!()
    };
    session.add(&v).unwrap();
    assert!(
        mfa.authorize(&session, Action::DeleteDevice(app))
            .await
            .unwrap()
            .is_allowed()
    );
}

/// An enrollment's proof and another user's proof add nothing to a session.
#[tokio::test]
async fn only_this_users_sign_ins_are_evidence() {
    let (mfa, clock, _) = setup();
    let (alice, bob) = (user("alice"), user("bob"));
    let mut session = SessionEvidence::first_factor(&alice, FirstFactor::Password, clock.now());
    let enrollment = mfa.enroll_totp(&alice, "a", None).await.unwrap();
    let secret = multifactor::totp::decode_base32_secret(enrollment.secret_base32.expose_secret()).unwrap();
    let Outcome::Accepted(confirmed) = mfa
        .confirm_totp(&alice, enrollment.device, &code_now(&secret, &clock, 0))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(session.add(&confirmed), Err(MisuseError::NotASignIn));
    let (_, bobs) = totp(&mfa, &clock, &bob).await;
    clock.advance(30);
    let Outcome::Accepted(v) = mfa.verify_totp(&bob, &code_now(&bobs, &clock, 0)).await.unwrap() else {
        panic!()
    };
    assert_eq!(session.add(&v), Err(MisuseError::OtherUser));
    assert!(session.second_factors().is_empty());
    assert_eq!(
        SessionEvidence::passkey_sign_in(&v).unwrap_err(),
        MisuseError::NotASignIn,
        "a TOTP sign-in is no passkey sign-in"
    );
}

/// The text form: round trip, any key of the keyring, and nothing else.
#[tokio::test]
async fn the_text_form_is_only_the_services() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let (_, secret) = totp(&mfa, &clock, &alice).await;
    clock.advance(30);
    let Outcome::Accepted(v) = mfa.verify_totp(&alice, &code_now(&secret, &clock, 0)).await.unwrap() else {
        panic!()
    };
    let mut session = SessionEvidence::first_factor(
        &alice,
        FirstFactor::Federated {
            provider: "demoid".into(),
            amr: vec!["pwd".into()],
            acr: Some("urn:x".into()),
        },
        clock.now(),
    );
    session.add(&v).unwrap();
    let text = mfa.seal_session(&session).unwrap();
    assert!(text.starts_with("mfa-session/1."), "{text}");
    assert_eq!(mfa.open_session(&text).unwrap(), session);
    // After a rotation, with the old key kept as a previous one.
    let k1 = SealingKey::new(KeyId::new("k1").unwrap(), [1; 32]);
    let k2 = SealingKey::new(KeyId::new("k2").unwrap(), [2; 32]);
    let (rotated, _, _) = setup_with(
        multifactor::MemoryStore::new(),
        Keyring::new(k2.clone()).with_previous(k1).unwrap(),
        multifactor::MfaConfig::new("ACME").unwrap(),
    );
    assert_eq!(rotated.open_session(&text).unwrap(), session);
    let (stranger, _, _) = setup_with(
        multifactor::MemoryStore::new(),
        Keyring::new(k2),
        multifactor::MfaConfig::new("ACME").unwrap(),
    );
    let refused = |t: &str| matches!(stranger.open_session(t), Err(Error::Input(InputError::SessionEvidence)));
    assert!(refused(&text), "another deployment's key");
    // Every character changed, one at a time: refused by this service too.
    for i in 0..text.len() {
        let mut altered = text.clone().into_bytes();
        altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(
            matches!(
                mfa.open_session(&altered),
                Err(Error::Input(InputError::SessionEvidence))
            ),
            "byte {i}"
        );
    }
    for garbage in ["", "mfa-session/1", "mfa-session/1.a.b.c", "x.y.z.w", &"A".repeat(9000)] {
        assert!(matches!(
            mfa.open_session(garbage),
            Err(Error::Input(InputError::SessionEvidence))
        ));
    }
}

/// A user without methods signs in with the password and sets up their first ones: that
/// session may add and replace them for 5 minutes after its first factor, then it steps up
/// with them like any other.
#[tokio::test]
async fn the_first_methods_are_added_right_after_the_password() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let session = mfa.start_session(&alice, FirstFactor::Password).await.unwrap();
    assert!(
        mfa.authorize(&session, Action::AddDevice(DeviceKind::Totp))
            .await
            .unwrap()
            .is_allowed()
    );
    // The pure constructor does not know the user had no method: once one exists, it is a
    // password-only session.
    let unknowing = SessionEvidence::first_factor(&alice, FirstFactor::Password, clock.now());
    // Enrolled in the same second as the sign-in: still this session's.
    totp(&mfa, &clock, &alice).await;
    for action in [
        Action::ViewDevices,
        Action::RegenerateBackupCodes,
        Action::AddDevice(DeviceKind::Passkey),
    ] {
        assert!(
            mfa.authorize(&session, action).await.unwrap().is_allowed(),
            "{action:?}"
        );
    }
    assert_eq!(
        mfa.authorize(&unknowing, Action::RegenerateBackupCodes).await.unwrap(),
        Authorization::Denied(Denial::SecondFactorPending)
    );
    assert_eq!(
        mfa.open_session(&mfa.seal_session(&session).unwrap()).unwrap(),
        session,
        "the text form keeps what the session started with"
    );
    clock.advance(301);
    assert!(mfa.authorize(&session, Action::ViewDevices).await.unwrap().is_allowed());
    assert!(matches!(
        mfa.authorize(&session, Action::RegenerateBackupCodes).await.unwrap(),
        Authorization::StepUp { .. }
    ));
    // A password-only session begun after the methods existed: a second factor is due.
    let later = mfa.start_session(&alice, FirstFactor::Password).await.unwrap();
    assert_eq!(
        mfa.authorize(&later, Action::ViewDevices).await.unwrap(),
        Authorization::Denied(Denial::SecondFactorPending)
    );
    // A remembered browser's session is signed in, never fresh; the mark survives the text form.
    let mut remembered = later;
    remembered.remembered_browser();
    let remembered = mfa.open_session(&mfa.seal_session(&remembered).unwrap()).unwrap();
    assert!(remembered.is_remembered_browser());
    assert!(
        mfa.authorize(&remembered, Action::ViewDevices)
            .await
            .unwrap()
            .is_allowed()
    );
    let app = mfa.list_devices(&alice).await.unwrap()[0].id;
    assert!(matches!(
        mfa.authorize(&remembered, Action::DeleteDevice(app)).await.unwrap(),
        Authorization::StepUp { .. }
    ));
}

/// A recovery in the same second as the devices it finds: the lost app is not taken for its
/// replacement, nor the set it used for a new one. One replacement and one new set are allowed,
/// then no more, and the count survives the session's text form.
#[tokio::test]
async fn a_recovery_counts_what_it_found_not_the_clock() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    // Everything below happens in one second of the service's clock.
    let (lost, _) = totp(&mfa, &clock, &alice).await;
    let set = mfa.generate_backup_codes(&alice, None).await.unwrap();
    let Outcome::Accepted(v) = mfa
        .verify_backup_code(&alice, set.codes[0].expose_secret())
        .await
        .unwrap()
    else {
        panic!()
    };
    let mut session = SessionEvidence::first_factor(&alice, FirstFactor::Password, clock.now());
    // The pure `add` cannot know what the recovery found: it fails closed in that second.
    let mut pure = session.clone();
    pure.add(&v).unwrap();
    assert!(
        !mfa.authorize(&pure, Action::AddDevice(DeviceKind::Totp))
            .await
            .unwrap()
            .is_allowed()
    );
    mfa.add_evidence(&mut session, &v).await.unwrap();
    let session = mfa.open_session(&mfa.seal_session(&session).unwrap()).unwrap();
    let add = Action::AddDevice(DeviceKind::Totp);
    assert!(
        mfa.authorize(&session, add).await.unwrap().is_allowed(),
        "the lost app is no replacement"
    );
    assert!(
        mfa.authorize(&session, Action::RegenerateBackupCodes)
            .await
            .unwrap()
            .is_allowed(),
        "the set the recovery used is no new set"
    );
    // The replacement is set up: no second one.
    mfa.enroll_totp(&alice, "alice", Some("New phone")).await.unwrap();
    assert!(!mfa.authorize(&session, add).await.unwrap().is_allowed());
    // A new set: no second one.
    mfa.generate_backup_codes(&alice, None).await.unwrap();
    assert!(
        !mfa.authorize(&session, Action::RegenerateBackupCodes)
            .await
            .unwrap()
            .is_allowed()
    );
    // Deleting the lost app is never a recovery's to do.
    assert!(
        !mfa.authorize(&session, Action::DeleteDevice(lost))
            .await
            .unwrap()
            .is_allowed()
    );
}
