//! Required enrollment with a grace period: the deadline is stored the first time a user is
//! seen, is not moved by asking again or by a reset, and moves only by an audited admin call.

use multifactor::audit::AuditKind;
use multifactor::enrollment::{EnrollmentPolicy, EnrollmentStatus};
use multifactor::{MemoryStore, MfaConfig};
use multifactor_kit::service::{keyring, setup, setup_with, totp, user};

const DAY: u64 = 86_400;

#[tokio::test]
async fn the_deadline_is_kept_from_the_first_ask() {
    let mut config = MfaConfig::new("ACME").unwrap();
    config.enrollment = Some(EnrollmentPolicy::new(1, 7 * DAY).unwrap());
    let (mfa, clock, sink) = setup_with(MemoryStore::new(), keyring("k1", 1), config);
    let alice = user("alice");
    let first_seen = clock.now();
    let deadline = first_seen.plus_secs(7 * DAY);
    let due = EnrollmentStatus::Due {
        deadline,
        missing: 1,
        phishing_resistant_missing: false,
    };
    assert_eq!(mfa.enrollment_status(&alice).await.unwrap(), Some(due));
    // Asking again days later does not move it; nor does an admin reset of the devices.
    clock.advance(3 * DAY);
    assert_eq!(mfa.enrollment_status(&alice).await.unwrap(), Some(due));
    mfa.admin_reset_user(&alice).await.unwrap();
    assert_eq!(mfa.enrollment_status(&alice).await.unwrap(), Some(due));
    // Past it: required.
    clock.advance(4 * DAY);
    let required = mfa.enrollment_status(&alice).await.unwrap().unwrap();
    assert!(!required.may_skip(), "{required:?}");
    // Only an explicit, audited admin call moves it.
    let extended = clock.now().plus_secs(DAY);
    mfa.set_enrollment_deadline(&alice, extended).await.unwrap();
    assert!(
        sink.events()
            .iter()
            .any(|e| e.kind == AuditKind::EnrollmentDeadlineSet { deadline: extended })
    );
    assert!(mfa.enrollment_status(&alice).await.unwrap().unwrap().may_skip());
    // Enrolled: met.
    totp(&mfa, &clock, &alice).await;
    assert_eq!(
        mfa.enrollment_status(&alice).await.unwrap(),
        Some(EnrollmentStatus::Met)
    );
    // Another user seen later gets their own deadline.
    let bob = user("bob");
    assert!(matches!(
        mfa.enrollment_status(&bob).await.unwrap(),
        Some(EnrollmentStatus::Due { deadline, .. }) if deadline == clock.now().plus_secs(7 * DAY)
    ));
}

#[tokio::test]
async fn without_a_policy_nothing_is_required_or_stored() {
    let (mfa, _clock, _) = setup();
    assert_eq!(mfa.enrollment_status(&user("alice")).await.unwrap(), None);
}
