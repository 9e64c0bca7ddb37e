//! The SQL stores keep a user's devices version in 4 bytes and wrap it: what the SQL stores'
//! tests check of the wrap, with the version put at its top by hand.

use std::future::Future;

use multifactor::conformance::{backup_record, totp_record};
use multifactor::store::{DevicesVersion, Hit, Settle, Settlement, ThrottleState};
use multifactor::{Factor, Store, UnixTime, UserId};

/// The highest version the SQL stores keep; the next change makes it 0.
pub const TOP: i64 = 2_147_483_646;

/// Gives `user` an authenticator app and a backup-code set, then, each time after `set_top`
/// put the version at [`TOP`]: a device change and a device's first accepted code wrap it to
/// 0, and a settlement admitted under the version before the wrap is refused as stale while
/// one admitted under the new version is accepted.
pub async fn wraps<S, F, Fut>(store: &S, user: &UserId, set_top: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut app = totp_record(user, 1).unwrap();
    app.confirmed = true;
    let set = backup_record(user, 2, 8).unwrap();
    store.insert_device(app.clone()).await.unwrap();
    store.insert_device(set.clone()).await.unwrap();
    let clear = ThrottleState::default();
    let at = UnixTime::from_secs(1_000);
    let version = |factor| async move { store.verification_state(user, factor).await.unwrap().version };
    let code = |slot, version| {
        let hit = Hit::BackupCode { device: set.id, slot };
        Settle {
            version: Some(version),
            ..Settle::keep_on_miss(Factor::BackupCodes, clear, hit, at)
        }
    };

    // A device change at the top.
    set_top().await;
    let top = version(Factor::BackupCodes).await;
    assert_eq!(top, DevicesVersion(TOP.cast_unsigned()));
    assert_eq!(
        store.settle_attempt(user, &code(0, top)).await.unwrap(),
        Settlement::Accepted
    );
    store.insert_device(totp_record(user, 3).unwrap()).await.unwrap();
    let wrapped = version(Factor::BackupCodes).await;
    assert_eq!(wrapped, DevicesVersion(0), "a device change at the top");
    assert_eq!(
        store.settle_attempt(user, &code(1, top)).await.unwrap(),
        Settlement::Stale
    );
    assert_eq!(
        store.settle_attempt(user, &code(1, wrapped)).await.unwrap(),
        Settlement::Accepted
    );

    // A device's first accepted code at the top.
    set_top().await;
    let top = version(Factor::Totp).await;
    assert_eq!(top, DevicesVersion(TOP.cast_unsigned()));
    let step = Hit::TotpStep {
        device: app.id,
        step: 59_000_000,
    };
    let first = Settle {
        version: Some(top),
        ..Settle::keep_on_miss(Factor::Totp, clear, step, at)
    };
    assert_eq!(store.settle_attempt(user, &first).await.unwrap(), Settlement::Accepted);
    assert_eq!(
        version(Factor::Totp).await,
        DevicesVersion(0),
        "a first accepted code at the top"
    );
}
