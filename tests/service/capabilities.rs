//! A store that implements only what codes need ([`DeviceStore`] and [`BrowserStore`]) runs
//! TOTP, backup codes and device management: each `Mfa` operation asks for the store traits
//! it uses, and no more. (That this file compiles is most of the test.)

use multifactor::DeviceStore as _;
use multifactor::{InsecureSeededRng, ManualClock, MemoryStore, Mfa, MfaConfig, UnixTime};
use multifactor_kit::forward;
use multifactor_kit::service::{code_now, keyring, user};

/// A store for an application without WebAuthn, key rotation or enrollment deadlines.
struct CodesOnlyStore {
    inner: MemoryStore,
}

forward!(DeviceStore, BrowserStore for CodesOnlyStore);

#[tokio::test]
async fn codes_need_only_the_device_and_browser_stores() {
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let store = CodesOnlyStore {
        inner: MemoryStore::new(),
    };
    let mfa = Mfa::new(store, keyring("k1", 1), MfaConfig::new("ACME").unwrap())
        .unwrap()
        .with_clock(clock.clone())
        .with_rng(InsecureSeededRng::new(3));
    let alice = user("alice");

    let e = mfa.enroll_totp(&alice, "alice@example.com", None).await.unwrap();
    let secret = multifactor::totp::decode_base32_secret(e.secret_base32.expose_secret()).unwrap();
    assert!(
        mfa.confirm_totp(&alice, e.device, &code_now(&secret, &clock, 0))
            .await
            .unwrap()
            .is_accepted()
    );
    clock.advance(30);
    assert!(
        mfa.verify_totp(&alice, &code_now(&secret, &clock, 0))
            .await
            .unwrap()
            .is_accepted()
    );

    let set = mfa.generate_backup_codes(&alice, None).await.unwrap();
    let code = set.codes[0].expose_secret().to_owned();
    assert!(mfa.verify_backup_code(&alice, &code).await.unwrap().is_accepted());
    assert!(
        !mfa.verify_backup_code(&alice, &code).await.unwrap().is_accepted(),
        "spent once"
    );

    let devices = mfa.list_devices(&alice).await.unwrap();
    assert_eq!(devices.len(), 2);
    assert!(mfa.store().inner.find_credential(b"none").await.unwrap().is_none());
}
