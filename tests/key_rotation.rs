//! Rotating the key that seals TOTP secrets while the service runs.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use multifactor::{
    AuditKind, DeviceData, DeviceStore, Error, KeyId, Keyring, MemoryStore, MfaConfig, SealError, SealingKey,
};

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

    let report = new.reseal_totp_secrets().await.unwrap();
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
    let again = new.reseal_totp_secrets().await.unwrap();
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
    let report = new.reseal_totp_secrets().await.unwrap();
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
    let other = multifactor::SealedSecret::from_bytes(&other).unwrap();
    assert!(
        store
            .reseal_totp_secret(&alice, device, &t.sealed_secret, &other)
            .await
            .unwrap()
    );
    assert!(
        !store
            .reseal_totp_secret(&alice, device, &t.sealed_secret, &t.sealed_secret)
            .await
            .unwrap()
    );
}
