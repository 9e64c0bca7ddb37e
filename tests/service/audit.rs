//! Audit events: every security-relevant outcome reaches the sink, with user, method and time.
#![allow(clippy::unwrap_used, clippy::panic)]

use multifactor::audit::{AuditKind, RevokeReason};
use multifactor::{Factor, Outcome};
use multifactor_kit::service::*;

fn kinds(events: &[multifactor::audit::AuditEvent]) -> Vec<AuditKind> {
    events.iter().map(|e| e.kind.clone()).collect()
}

#[tokio::test]
async fn every_outcome_is_an_event() {
    let (mfa, clock, sink) = setup();
    let alice = user("alice");

    let e = mfa.enroll_totp(&alice, "a", None).await.unwrap();
    let enrolled = sink.take();
    assert_eq!(kinds(&enrolled), vec![AuditKind::Enrolled]);
    assert_eq!(enrolled[0].device, Some(e.device));
    assert_eq!(enrolled[0].user.as_ref(), Some(&alice));
    assert_eq!(enrolled[0].at, clock.now());

    let secret = multifactor::totp::decode_base32_secret(e.secret_base32.expose_secret()).unwrap();
    assert!(
        mfa.confirm_totp(&alice, e.device, &code_now(&secret, &clock, 0))
            .await
            .unwrap()
            .is_accepted()
    );
    assert_eq!(kinds(&sink.take()), vec![AuditKind::Confirmed]);

    assert_eq!(
        mfa.verify_totp(&alice, &code_now(&secret, &clock, 0)).await.unwrap(),
        Outcome::Rejected
    );
    // The confirmation spent this step: a replay, so a reused code too (NIST: someone else may
    // have it).
    let rejected = sink.take();
    assert_eq!(kinds(&rejected), vec![AuditKind::Rejected, AuditKind::CodeReused]);
    assert_eq!(rejected[1].factor, Some(Factor::Totp));
    assert_eq!(rejected[0].factor, Some(Factor::Totp));

    assert!(
        mfa.verify_totp(&alice, &code_now(&secret, &clock, 1))
            .await
            .unwrap()
            .is_accepted()
    );
    assert_eq!(kinds(&sink.take()), vec![AuditKind::Verified { recovery: false }]);

    // Five different wrong codes (the same one again would be one failure).
    for i in 0..5 {
        let _ = mfa.verify_totp(&alice, &format!("00000{i}")).await.unwrap();
    }
    sink.take();
    let Outcome::Throttled { retry_at } = mfa.verify_totp(&alice, "000000").await.unwrap() else {
        panic!()
    };
    assert_eq!(kinds(&sink.take()), vec![AuditKind::Throttled { retry_at }]);

    mfa.unlock(&alice, Factor::Totp).await.unwrap();
    assert_eq!(kinds(&sink.take()), vec![AuditKind::Unlocked]);

    let set = mfa.generate_backup_codes(&alice, None).await.unwrap();
    assert_eq!(kinds(&sink.take()), vec![AuditKind::BackupCodesRegenerated]);
    for code in &set.codes[..3] {
        let _ = mfa.verify_backup_code(&alice, code.expose_secret()).await.unwrap();
    }
    assert_eq!(kinds(&sink.take()), vec![AuditKind::Verified { recovery: true }; 3]);
    let _ = mfa
        .verify_backup_code(&alice, set.codes[3].expose_secret())
        .await
        .unwrap();
    assert_eq!(
        kinds(&sink.take()),
        vec![
            AuditKind::Verified { recovery: true },
            AuditKind::BackupCodesLow { remaining: 2 }
        ]
    );

    let Outcome::Accepted(proof) = mfa
        .verify_backup_code(&alice, set.codes[4].expose_secret())
        .await
        .unwrap()
    else {
        panic!()
    };
    sink.take();
    let token = mfa.remember_browser(&proof).await.unwrap();
    assert!(
        mfa.check_remembered_browser(&alice, token.token.expose_secret())
            .await
            .unwrap()
    );
    mfa.revoke_remembered_browser(&alice, token.id).await.unwrap();
    let trusted = sink.take();
    assert_eq!(
        kinds(&trusted),
        vec![
            AuditKind::RememberedBrowserIssued,
            AuditKind::RememberedBrowserUsed,
            AuditKind::RememberedBrowserRevoked {
                count: 1,
                reason: RevokeReason::Requested
            }
        ]
    );
    assert!(trusted.iter().all(|e| e.remembered_browser == Some(token.id)));

    mfa.remember_browser(&proof).await.unwrap();
    mfa.rename_device(&alice, e.device, "Phone").await.unwrap();
    mfa.delete_device(&alice, e.device).await.unwrap();
    let changed = sink.take();
    assert_eq!(
        kinds(&changed),
        vec![
            AuditKind::RememberedBrowserIssued,
            AuditKind::Renamed,
            AuditKind::RememberedBrowserRevoked {
                count: 1,
                reason: RevokeReason::DevicesChanged
            },
            AuditKind::Deleted { admin: false }
        ]
    );
    assert_eq!(mfa.admin_reset_user(&alice).await.unwrap(), 1);
    assert_eq!(kinds(&sink.take()), vec![AuditKind::Reset { removed: 1 }]);
}

#[tokio::test]
async fn locked_and_events_carry_no_secret() {
    let (mfa, clock, sink) = setup();
    let alice = user("alice");
    let (_, secret) = totp(&mfa, &clock, &alice).await;
    sink.take();
    let mut locked = false;
    for i in 0..200 {
        match mfa.verify_totp(&alice, &format!("{:06}", 100_000 + i)).await.unwrap() {
            Outcome::Throttled { retry_at } => clock.set(retry_at),
            Outcome::Locked => {
                locked = true;
                break;
            }
            _ => {}
        }
    }
    assert!(locked);
    assert_eq!(sink.events().last().map(|e| e.kind.clone()), Some(AuditKind::Locked));
    let all = sink.events().iter().map(|e| format!("{e} {e:?}")).collect::<String>();
    assert!(!all.contains("100001"), "a submitted code reached an event");
    let b32 = multifactor::totp::encode_base32_secret(&secret);
    assert!(!all.contains(b32.expose_secret()));
    assert!(all.contains("alice"), "the check could not fail");
}
