//! What a schema migration must keep, for the SQL stores' migration tests: one user with
//! every kind of state a verification settles, written through the store, and a snapshot of
//! it to compare after a downgrade and an upgrade.

use multifactor::conformance::{backup_record, fresh_credential_id, totp_record, webauthn_record};
use multifactor::store::{Counter, DeviceRecord, Hit, Settle, Settlement, ThrottleState};
use multifactor::{Factor, RememberedBrowserId, Store, UnixTime, UserId};

/// Everything of one user a migration must keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub devices: Vec<DeviceRecord>,
    pub counters: Vec<ThrottleState>,
}

/// The counters [`fill`] writes: both code factors' for unknown browsers, WebAuthn's, and a
/// known browser's.
fn counters(browser: RememberedBrowserId) -> [Counter; 4] {
    [
        Counter::unknown(Factor::Totp),
        Counter::unknown(Factor::BackupCodes),
        Counter::unknown(Factor::WebAuthn),
        Counter::known(Factor::Totp, browser),
    ]
}

/// The known browser [`fill`] counts failures of.
pub const BROWSER: RememberedBrowserId = RememberedBrowserId::from_bytes([0x42; 16]);

/// Gives `user` a used authenticator app (its last step and use), an unconfirmed one, a
/// backup-code set with two codes spent, a security key, and failures on four counters.
pub async fn fill<S: Store>(store: &S, user: &UserId) -> Snapshot {
    let mut app = totp_record(user, 1).unwrap();
    app.confirmed = true;
    let pending = totp_record(user, 2).unwrap();
    let set = backup_record(user, 3, 8).unwrap();
    let key = webauthn_record(user, 4, fresh_credential_id().unwrap(), true).unwrap();
    for device in [&app, &pending, &set, &key] {
        store.insert_device((*device).clone()).await.unwrap();
    }
    let clear = ThrottleState::default();
    let at = |secs| UnixTime::from_secs(secs);
    let hits = [
        (
            Factor::Totp,
            Hit::TotpStep {
                device: app.id,
                step: 59_000_123,
            },
        ),
        (
            Factor::BackupCodes,
            Hit::BackupCode {
                device: set.id,
                slot: 2,
            },
        ),
        (
            Factor::BackupCodes,
            Hit::BackupCode {
                device: set.id,
                slot: 5,
            },
        ),
    ];
    for (i, (factor, hit)) in hits.into_iter().enumerate() {
        let settled = store
            .settle_attempt(user, &Settle::keep_on_miss(factor, clear, hit, at(1_000 + i as u64)))
            .await
            .unwrap();
        assert_eq!(settled, Settlement::Accepted, "{hit:?}");
    }
    for (i, counter) in counters(BROWSER).into_iter().enumerate() {
        // Every field present in some counter and absent in another; a fingerprint with its
        // high bit set (stored as a negative integer where the column is signed).
        let failed = ThrottleState {
            failures: 1 + i as u32,
            last_failure_at: (i != 1).then(|| at(2_000 + i as u64)),
            budget_until: (i != 2).then(|| at(3_000 + i as u64)),
            last_miss: (i % 2 == 0).then_some(0x8000_0000_feed_0000 + i as u64),
        };
        assert!(store.swap_throttle(user, counter, clear, failed).await.unwrap());
    }
    snapshot(store, user).await
}

/// What [`fill`] wrote, as the store reads it now.
pub async fn snapshot<S: Store>(store: &S, user: &UserId) -> Snapshot {
    let mut counters_now = Vec::new();
    for counter in counters(BROWSER) {
        counters_now.push(store.throttle(user, counter).await.unwrap());
    }
    Snapshot {
        devices: store.list_devices(user).await.unwrap(),
        counters: counters_now,
    }
}
