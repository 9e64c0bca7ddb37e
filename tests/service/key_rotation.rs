//! Rotating the key that seals TOTP secrets while the service runs.
#![allow(clippy::unwrap_used, clippy::panic)]

use multifactor::AdminStore as _;
use multifactor::audit::AuditKind;
use multifactor::error::SealError;
use multifactor::store::DeviceData;
use multifactor::{DeviceId, DeviceStore, Error, KeyId, Keyring, MemoryStore, MfaConfig, Outcome, SealingKey};
use multifactor_kit::service::*;

fn rotated() -> Keyring {
    Keyring::new(SealingKey::new(KeyId::new("k2").unwrap(), [2; 32]))
        .with_previous(SealingKey::new(KeyId::new("k1").unwrap(), [1; 32]))
        .unwrap()
}

async fn key_ids(store: &MemoryStore) -> Vec<String> {
    let mut ids = Vec::new();
    for d in store.list_totp_devices(None, 1000).await.unwrap() {
        if let DeviceData::Totp(t) = &d.data {
            ids.push(t.sealed_secret.key_id().to_string());
        }
    }
    ids
}

#[tokio::test]
async fn reseal_under_the_new_key_while_codes_keep_working() {
    let store = MemoryStore::new();
    let (old, clock, _) = setup_with(store.clone(), keyring("k1", 1), MfaConfig::new("ACME").unwrap());
    let users: Vec<_> = (0..600).map(|i| user(&format!("user-{i}"))).collect();
    let mut secrets = Vec::new();
    for u in &users[..5] {
        secrets.push(totp(&old, &clock, u).await.1);
    }
    for u in &users[5..] {
        old.import_totp(u, "JBSWY3DPEHPK3PXP", None).await.unwrap();
    }
    assert!(key_ids(&store).await.iter().all(|k| k == "k1"));

    // The new key is current; the old one still opens: codes keep working during the re-seal.
    let (new, _c, sink) = setup_with(store.clone(), rotated(), MfaConfig::new("ACME").unwrap());
    let new = new.with_clock(clock.clone());
    assert!(
        new.verify_totp(&users[0], &code_now(&secrets[0], &clock, 1))
            .await
            .unwrap()
            .is_accepted()
    );

    let report = new.rotate_keys().await.unwrap();
    assert_eq!(
        (report.examined, report.resealed, report.current),
        (600, 600, 0),
        "{report:?}"
    );
    assert!(report.unknown_keys.is_empty());
    assert!(key_ids(&store).await.iter().all(|k| k == "k2"));
    assert_eq!(
        sink.events().iter().filter(|e| e.kind == AuditKind::Resealed).count(),
        600
    );
    // Idempotent.
    let again = new.rotate_keys().await.unwrap();
    assert_eq!((again.resealed, again.current), (0, 600));

    // The old key can go now: codes work with the new key alone, last steps kept.
    let (only_new, _c, _) = setup_with(store.clone(), keyring("k2", 2), MfaConfig::new("ACME").unwrap());
    let only_new = only_new.with_clock(clock.clone());
    assert_eq!(
        only_new
            .verify_totp(&users[0], &code_now(&secrets[0], &clock, 1))
            .await
            .unwrap(),
        multifactor::Outcome::Rejected,
        "the step used before the re-seal stays used"
    );
    clock.advance(30);
    assert!(
        only_new
            .verify_totp(&users[0], &code_now(&secrets[0], &clock, 1))
            .await
            .unwrap()
            .is_accepted()
    );
    assert!(
        only_new
            .verify_totp(&users[1], &code_now(&secrets[1], &clock, 0))
            .await
            .unwrap()
            .is_accepted()
    );
}

#[tokio::test]
async fn unknown_key_ids_are_clear_errors_and_reported() {
    let store = MemoryStore::new();
    let (old, clock, _) = setup_with(store.clone(), keyring("k0", 7), MfaConfig::new("ACME").unwrap());
    let alice = user("alice");
    let (_, secret) = totp(&old, &clock, &alice).await;
    let (new, _c, _) = setup_with(store.clone(), rotated(), MfaConfig::new("ACME").unwrap());
    let new = new.with_clock(clock.clone());
    match new.verify_totp(&alice, &code_now(&secret, &clock, 1)).await {
        Err(Error::Seal(SealError::UnknownKey(id))) => assert_eq!(id, "k0"),
        other => panic!("{other:?}"),
    }
    let report = new.rotate_keys().await.unwrap();
    assert_eq!(report.unknown_keys.len(), 1);
    assert_eq!(report.unknown_keys[0].1.as_str(), "k0");
    assert_eq!(report.resealed, 0);
}

#[tokio::test]
async fn a_reseal_racing_a_change_loses_nothing() {
    let store = MemoryStore::new();
    let (old, clock, _) = setup_with(store.clone(), keyring("k1", 1), MfaConfig::new("ACME").unwrap());
    let alice = user("alice");
    let (device, _) = totp(&old, &clock, &alice).await;
    let record = store.device(&alice, device).await.unwrap().unwrap();
    let DeviceData::Totp(t) = &record.data else { panic!() };
    // Someone else re-sealed first: the compare-and-swap refuses a stale expectation.
    let mut other = t.sealed_secret.to_bytes();
    *other.last_mut().unwrap() ^= 1;
    let other = multifactor::store::SealedSecret::from_bytes(&other).unwrap();
    assert!(
        store
            .reseal_totp_secret(&alice, device, &t.sealed_secret, &other, &[0x11; 32])
            .await
            .unwrap()
    );
    assert!(
        !store
            .reseal_totp_secret(&alice, device, &t.sealed_secret, &t.sealed_secret, &[0x11; 32])
            .await
            .unwrap()
    );
}

/// Rotation covers every keyed kind: TOTP secrets move to the new key; backup-code sets and
/// remember-this-browser tokens (one-way hashes: the codes and tokens are not stored) are counted
/// by key, and keep working while their key stays in the ring; a set from before keyed hashes is
/// reported as unkeyed; one blob that does not open is reported and the run goes on.
#[tokio::test]
async fn rotation_reports_every_kind_and_survives_a_bad_row() {
    let store = MemoryStore::new();
    let (old, clock, _) = setup_with(store.clone(), keyring("k1", 1), MfaConfig::new("ACME").unwrap());
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    let (_, alice_secret) = totp(&old, &clock, &alice).await;
    let (bobs_device, _) = totp(&old, &clock, &bob).await;
    let alice_codes = old.generate_backup_codes(&alice, None).await.unwrap();
    let Outcome::Accepted(signed_in) = old
        .verify_totp(&alice, &code_now(&alice_secret, &clock, 1))
        .await
        .unwrap()
    else {
        panic!()
    };
    let token = old.remember_browser(&signed_in).await.unwrap();
    // A set from before keyed hashes (schema v2): salt-only HMAC, no key id.
    let (legacy_codes, legacy) = multifactor::backup_codes::generate(
        &multifactor::InsecureSeededRng::new(5),
        &multifactor::backup_codes::BackupCodeConfig::default(),
        &multifactor::backup_codes::CodeKey::Legacy(None),
    )
    .unwrap();
    store
        .replace_backup_codes(multifactor::store::DeviceRecord {
            id: DeviceId::from_bytes([0x77; 16]),
            user: carol.clone(),
            name: multifactor::DeviceName::new("Old codes").unwrap(),
            created_at: clock.now(),
            last_used_at: None,
            confirmed: true,
            data: DeviceData::BackupCodes(legacy),
        })
        .await
        .unwrap();
    // Bob's sealed secret is damaged in the database.
    let record = store.device(&bob, bobs_device).await.unwrap().unwrap();
    let DeviceData::Totp(t) = &record.data else { panic!() };
    let mut bytes = t.sealed_secret.to_bytes();
    *bytes.last_mut().unwrap() ^= 1;
    let damaged = multifactor::store::SealedSecret::from_bytes(&bytes).unwrap();
    assert!(
        store
            .reseal_totp_secret(&bob, bobs_device, &t.sealed_secret, &damaged, &[0x22; 32])
            .await
            .unwrap()
    );

    let (new, _c, _) = setup_with(store.clone(), rotated(), MfaConfig::new("ACME").unwrap());
    let new = new.with_clock(clock.clone());
    let report = new.rotate_keys().await.unwrap();
    assert_eq!((report.examined, report.resealed), (2, 1), "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].0, bobs_device);
    assert_eq!(report.backup_sets_current, 0);
    assert_eq!(report.backup_sets_old_key, [(KeyId::new("k1").unwrap(), 1)]);
    assert_eq!(report.backup_sets_unkeyed, 1);
    assert_eq!(report.remembered_browsers_current, 0);
    assert_eq!(report.remembered_browsers_old_key, [(KeyId::new("k1").unwrap(), 1)]);
    // What could not be re-keyed still works while k1 is in the ring...
    assert!(
        new.check_remembered_browser(&alice, token.token.expose_secret())
            .await
            .unwrap()
    );
    assert!(
        new.verify_backup_code(&alice, alice_codes.codes[0].expose_secret())
            .await
            .unwrap()
            .is_accepted()
    );
    // ...and so does the unkeyed legacy set, which needs no key at all.
    assert!(
        new.verify_backup_code(&carol, legacy_codes[0].expose_secret())
            .await
            .unwrap()
            .is_accepted()
    );
    // New codes are keyed under the new key.
    new.generate_backup_codes(&alice, None).await.unwrap();
    let again = new.rotate_keys().await.unwrap();
    assert_eq!(again.backup_sets_current, 1);
    assert_eq!(again.backup_sets_old_key, []);
    // Without k1, the old token and anything under k1 stop working (the key is gone).
    let (only_new, _c, _) = setup_with(store.clone(), keyring("k2", 2), MfaConfig::new("ACME").unwrap());
    assert!(
        !only_new
            .check_remembered_browser(&alice, token.token.expose_secret())
            .await
            .unwrap()
    );
}

/// A copy of the database alone gives no way to test a backup-code guess: the stored hash is not
/// the salt-only HMAC a thief could compute, and the same hashes copied into another user's row
/// (or under another set id) match nothing.
#[tokio::test]
async fn backup_code_hashes_need_the_key_and_are_bound_to_user_and_set() {
    let store = MemoryStore::new();
    let (mfa, _clock, _) = setup_with(store.clone(), keyring("k1", 1), MfaConfig::new("ACME").unwrap());
    let (alice, mallory) = (user("alice"), user("mallory"));
    let set = mfa.generate_backup_codes(&alice, None).await.unwrap();
    let stolen = store.device(&alice, set.device).await.unwrap().unwrap();
    let DeviceData::BackupCodes(record) = &stolen.data else {
        panic!()
    };
    // What the thief can compute from the row alone does not match.
    let code = set.codes[0].expose_secret();
    assert_eq!(
        multifactor::backup_codes::verify(record, code, &multifactor::backup_codes::CodeKey::Legacy(None)).unwrap(),
        None
    );
    // The row copied to mallory (a new id, her user): her code check finds nothing.
    mfa.generate_backup_codes(&mallory, None).await.unwrap();
    store
        .replace_backup_codes(multifactor::store::DeviceRecord {
            id: DeviceId::from_bytes([0x99; 16]),
            user: mallory.clone(),
            ..stolen.clone()
        })
        .await
        .unwrap();
    assert_eq!(mfa.verify_backup_code(&mallory, code).await.unwrap(), Outcome::Rejected);
    // Alice's own codes are unaffected.
    assert!(mfa.verify_backup_code(&alice, code).await.unwrap().is_accepted());
}

/// The same key id with other bytes (a mistyped secret, the wrong environment's key): the
/// service refuses it at start (`check_keys`), and a backup-code verification under it is an
/// error for the host, never a failure charged to the user; with the right key back, the user's
/// codes work and nothing was counted against them.
#[tokio::test]
async fn a_wrong_key_under_the_right_id_is_refused_not_charged() {
    let store = multifactor::MemoryStore::new();
    let (right, clock, _) = setup_with(
        store.clone(),
        keyring("k1", 1),
        multifactor::MfaConfig::new("ACME").unwrap(),
    );
    right.check_keys().await.unwrap();
    let alice = user("alice");
    let set = right.generate_backup_codes(&alice, None).await.unwrap();
    let (wrong, _, _) = setup_with(
        store.clone(),
        keyring("k1", 2),
        multifactor::MfaConfig::new("ACME").unwrap(),
    );
    assert!(matches!(
        wrong.check_keys().await,
        Err(multifactor::Error::Seal(multifactor::error::SealError::KeyMismatch(id))) if id == "k1"
    ));
    for _ in 0..3 {
        assert!(matches!(
            wrong.verify_backup_code(&alice, set.codes[0].expose_secret()).await,
            Err(multifactor::Error::Seal(multifactor::error::SealError::KeyMismatch(_)))
        ));
    }
    assert_eq!(
        store
            .throttle(&alice, multifactor::Factor::BackupCodes.into())
            .await
            .unwrap()
            .failures,
        0,
        "a key fault was charged to the user"
    );
    let _ = clock;
    assert!(
        right
            .verify_backup_code(&alice, set.codes[0].expose_secret())
            .await
            .unwrap()
            .is_accepted()
    );
}
