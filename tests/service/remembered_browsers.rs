//! Remember this browser: issued after a verified factor, keyed hash only, bound to the user,
//! expiring, revocable one by one, and revoked by every change to the user's methods.
#![allow(clippy::unwrap_used, clippy::panic)]

use multifactor::BrowserStore as _;
use multifactor::error::MisuseError;
use multifactor::remembered_browser::RememberedBrowserConfig;
use multifactor::{Error, MemoryStore, MfaConfig, Outcome, Verified};
use multifactor_kit::service::*;

async fn verified(mfa: &TestMfa, who: &multifactor::UserId) -> Verified {
    let set = mfa.generate_backup_codes(who, None).await.unwrap();
    match mfa.verify_backup_code(who, set.codes[0].expose_secret()).await.unwrap() {
        Outcome::Accepted(v) => v,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn issue_check_expire() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let proof = verified(&mfa, &alice).await;
    let token = mfa.remember_browser(&proof).await.unwrap();
    assert_eq!(
        token.expires_at.secs_since(clock.now()),
        30 * 86_400,
        "30 days by default"
    );
    let text = token.token.expose_secret().to_owned();
    assert!(mfa.check_remembered_browser(&alice, &text).await.unwrap());
    // Only a keyed hash is stored.
    let records = mfa.store().list_remembered_browsers(&alice).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].last_used_at, Some(clock.now()));
    let secret_half = text.split_once('.').unwrap().1;
    assert!(!format!("{records:?}").contains(secret_half));
    // Bound to the user.
    assert!(!mfa.check_remembered_browser(&user("bob"), &text).await.unwrap());
    // One flipped character: no.
    let mut forged = text.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    assert!(
        !mfa.check_remembered_browser(&alice, std::str::from_utf8(&forged).unwrap())
            .await
            .unwrap()
    );
    for garbage in ["", "abc", "x.y", &format!("{}.", token.id)] {
        assert!(
            !mfa.check_remembered_browser(&alice, garbage).await.unwrap(),
            "{garbage}"
        );
    }
    // Expired.
    clock.advance(30 * 86_400);
    assert!(!mfa.check_remembered_browser(&alice, &text).await.unwrap());
}

#[tokio::test]
async fn configurable_lifetime_and_revocation_one_by_one() {
    let mut config = MfaConfig::new("ACME").unwrap();
    config.remembered_browsers = RememberedBrowserConfig::new(7 * 86_400).unwrap();
    assert!(RememberedBrowserConfig::new(60).is_err());
    let (mfa, clock, _) = setup_with(MemoryStore::new(), keyring("k", 3), config);
    let alice = user("alice");
    let proof = verified(&mfa, &alice).await;
    let laptop = mfa.remember_browser(&proof).await.unwrap();
    let phone = mfa.remember_browser(&proof).await.unwrap();
    assert_eq!(laptop.expires_at.secs_since(clock.now()), 7 * 86_400);
    assert_eq!(mfa.list_remembered_browsers(&alice).await.unwrap().len(), 2);
    mfa.revoke_remembered_browser(&alice, laptop.id).await.unwrap();
    assert!(
        !mfa.check_remembered_browser(&alice, laptop.token.expose_secret())
            .await
            .unwrap()
    );
    assert!(
        mfa.check_remembered_browser(&alice, phone.token.expose_secret())
            .await
            .unwrap()
    );
    assert!(matches!(
        mfa.revoke_remembered_browser(&user("bob"), phone.id).await,
        Err(Error::Misuse(MisuseError::DeviceNotFound))
    ));
    assert_eq!(mfa.revoke_all_remembered_browsers(&alice).await.unwrap(), 1);
    assert!(
        !mfa.check_remembered_browser(&alice, phone.token.expose_secret())
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn every_change_to_the_methods_revokes_all() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let proof = verified(&mfa, &alice).await;
    let changes: Vec<&str> = vec![
        "enroll",
        "confirm",
        "import",
        "backup codes",
        "delete",
        "admin delete",
        "reset",
    ];
    for change in changes {
        let token = mfa.remember_browser(&proof).await.unwrap();
        assert!(
            mfa.check_remembered_browser(&alice, token.token.expose_secret())
                .await
                .unwrap()
        );
        match change {
            "enroll" => {
                mfa.enroll_totp(&alice, "a", None).await.unwrap();
            }
            "confirm" => {
                let token2 = token;
                let e = mfa.enroll_totp(&alice, "a", None).await.unwrap();
                let token = mfa.remember_browser(&proof).await.unwrap();
                let secret = multifactor::totp::decode_base32_secret(e.secret_base32.expose_secret()).unwrap();
                clock.advance(30);
                assert!(
                    mfa.confirm_totp(&alice, e.device, &code_now(&secret, &clock, 0))
                        .await
                        .unwrap()
                        .is_accepted()
                );
                assert!(
                    !mfa.check_remembered_browser(&alice, token.token.expose_secret())
                        .await
                        .unwrap(),
                    "confirm"
                );
                assert!(
                    !mfa.check_remembered_browser(&alice, token2.token.expose_secret())
                        .await
                        .unwrap()
                );
                continue;
            }
            "import" => {
                mfa.import_totp(&alice, "JBSWY3DPEHPK3PXP", None).await.unwrap();
            }
            "backup codes" => {
                mfa.generate_backup_codes(&alice, None).await.unwrap();
            }
            "delete" => {
                let e = mfa.import_totp(&alice, "JBSWY3DPEHPK3PXQ", None).await.unwrap();
                let token = mfa.remember_browser(&proof).await.unwrap();
                mfa.delete_device(&alice, e).await.unwrap();
                assert!(
                    !mfa.check_remembered_browser(&alice, token.token.expose_secret())
                        .await
                        .unwrap(),
                    "delete"
                );
                continue;
            }
            "admin delete" => {
                let e = mfa.import_totp(&alice, "JBSWY3DPEHPK3PXR", None).await.unwrap();
                let token = mfa.remember_browser(&proof).await.unwrap();
                mfa.admin_delete_device(&alice, e).await.unwrap();
                assert!(
                    !mfa.check_remembered_browser(&alice, token.token.expose_secret())
                        .await
                        .unwrap(),
                    "admin delete"
                );
                continue;
            }
            "reset" => {
                mfa.admin_reset_user(&alice).await.unwrap();
            }
            _ => unreachable!(),
        }
        assert!(
            !mfa.check_remembered_browser(&alice, token.token.expose_secret())
                .await
                .unwrap(),
            "{change}"
        );
    }
}

#[tokio::test]
async fn tokens_survive_key_rotation_while_the_old_key_is_in_the_ring() {
    let store = MemoryStore::new();
    let (mfa, _clock, _) = setup_with(store.clone(), keyring("old", 1), MfaConfig::new("ACME").unwrap());
    let alice = user("alice");
    let token = mfa.remember_browser(&verified(&mfa, &alice).await).await.unwrap();
    let rotated = multifactor::Keyring::new(multifactor::SealingKey::new(
        multifactor::KeyId::new("new").unwrap(),
        [2; 32],
    ))
    .with_previous(multifactor::SealingKey::new(
        multifactor::KeyId::new("old").unwrap(),
        [1; 32],
    ))
    .unwrap();
    let (with_both, _c, _) = setup_with(store.clone(), rotated, MfaConfig::new("ACME").unwrap());
    assert!(
        with_both
            .check_remembered_browser(&alice, token.token.expose_secret())
            .await
            .unwrap()
    );
    let (new_only, _c, _) = setup_with(store, keyring("new", 2), MfaConfig::new("ACME").unwrap());
    assert!(
        !new_only
            .check_remembered_browser(&alice, token.token.expose_secret())
            .await
            .unwrap()
    );
}

/// Someone who can write the database but does not hold the key cannot re-target or extend a
/// token: its hash binds the record's id, user and expiry.
#[tokio::test]
async fn a_record_moved_to_another_user_or_extended_does_not_verify() {
    let (mfa, _clock, _) = setup();
    let (alice, bob) = (user("alice"), user("bob"));
    let proof = verified(&mfa, &alice).await;
    let token = mfa.remember_browser(&proof).await.unwrap();
    let text = token.token.expose_secret().to_owned();
    let record = mfa.store().remembered_browser(token.id).await.unwrap().unwrap();
    // Writes the row as someone with database access would: whatever is there goes.
    let rewrite = |changed: multifactor::store::RememberedBrowserRecord| {
        let store = mfa.store().clone();
        let users = [alice.clone(), bob.clone()];
        async move {
            for u in &users {
                store
                    .delete_user_remembered_browsers(u, multifactor::store::Browsers::All)
                    .await
                    .unwrap();
            }
            store.insert_remembered_browser(changed).await.unwrap();
        }
    };
    // Moved to bob: bob's check fails (and alice's too, the row is no longer hers).
    rewrite(multifactor::store::RememberedBrowserRecord {
        user: bob.clone(),
        ..record.clone()
    })
    .await;
    assert!(!mfa.check_remembered_browser(&bob, &text).await.unwrap());
    assert!(!mfa.check_remembered_browser(&alice, &text).await.unwrap());
    // Given a later expiry: no longer verifies, before or after the real expiry.
    rewrite(multifactor::store::RememberedBrowserRecord {
        expires_at: record.expires_at.plus_secs(365 * 86_400),
        ..record.clone()
    })
    .await;
    assert!(!mfa.check_remembered_browser(&alice, &text).await.unwrap());
    // The untouched row still does.
    rewrite(record.clone()).await;
    assert!(mfa.check_remembered_browser(&alice, &text).await.unwrap());
}
