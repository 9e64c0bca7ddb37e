//! Required enrollment with a grace period: the deadline is stored the first time a user is
//! seen, is not moved by asking again or by a reset, and moves only by an audited admin call.

use multifactor::audit::AuditKind;
use multifactor::enrollment::{EnrollmentPolicy, EnrollmentStatus, Skipped};
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
        skips_left: None,
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

/// Under a policy that counts skipped prompts, each skip is counted once, the grace ends with
/// the last one (before the deadline), a skip with none left counts nothing, and only the
/// audited admin call gives skips back. Concurrent skips never count more than allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn skipped_prompts_end_the_grace() {
    let mut config = MfaConfig::new("ACME").unwrap();
    config.enrollment = Some(EnrollmentPolicy::new(1, 30 * DAY).unwrap().with_skips(3).unwrap());
    let (mfa, clock, sink) = setup_with(MemoryStore::new(), keyring("k1", 1), config);
    let alice = user("alice");
    let deadline = clock.now().plus_secs(30 * DAY);
    let due = |left| {
        Some(EnrollmentStatus::Due {
            deadline,
            skips_left: Some(left),
            missing: 1,
            phishing_resistant_missing: false,
        })
    };
    assert_eq!(mfa.enrollment_status(&alice).await.unwrap(), due(3));
    // Looking does not spend a skip.
    assert_eq!(mfa.enrollment_status(&alice).await.unwrap(), due(3));
    let skip = |status| Some(Skipped { allowed: true, status });
    assert_eq!(mfa.skip_enrollment(&alice).await.unwrap(), skip(due(2).unwrap()));
    assert_eq!(mfa.skip_enrollment(&alice).await.unwrap(), skip(due(1).unwrap()));
    let last = mfa.skip_enrollment(&alice).await.unwrap().unwrap();
    assert!(last.allowed, "the last skip is a skip");
    assert!(!last.status.may_skip(), "the last skip ends the grace: {last:?}");
    let refused = mfa.skip_enrollment(&alice).await.unwrap().unwrap();
    assert!(!refused.allowed && !refused.status.may_skip(), "{refused:?}");
    assert!(!mfa.enrollment_status(&alice).await.unwrap().unwrap().may_skip());
    // The admin's new deadline counts skips from zero.
    mfa.set_enrollment_deadline(&alice, deadline).await.unwrap();
    assert!(
        sink.events()
            .iter()
            .any(|e| e.kind == AuditKind::EnrollmentDeadlineSet { deadline })
    );
    assert_eq!(mfa.enrollment_status(&alice).await.unwrap(), due(3));

    // Twenty concurrent skips of a new user: three are counted, and the user is required.
    let mfa = std::sync::Arc::new(mfa);
    let bob = user("bob");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (mfa, bob) = (mfa.clone(), bob.clone());
            tokio::spawn(async move { mfa.skip_enrollment(&bob).await.unwrap().unwrap() })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        allowed += usize::from(t.await.unwrap().allowed);
    }
    assert_eq!(allowed, 3, "skips allowed of 3");
    assert!(!mfa.enrollment_status(&bob).await.unwrap().unwrap().may_skip());
    // Enrolling meets the policy whatever was skipped.
    totp(&mfa, &clock, &bob).await;
    assert_eq!(mfa.enrollment_status(&bob).await.unwrap(), Some(EnrollmentStatus::Met));
    assert_eq!(
        mfa.skip_enrollment(&bob).await.unwrap(),
        Some(Skipped {
            allowed: true,
            status: EnrollmentStatus::Met
        })
    );
}

/// Under a deadline-only policy a skip counts nothing and changes nothing.
#[tokio::test]
async fn a_deadline_only_policy_counts_no_skips() {
    let mut config = MfaConfig::new("ACME").unwrap();
    config.enrollment = Some(EnrollmentPolicy::new(1, DAY).unwrap());
    let (mfa, clock, _) = setup_with(MemoryStore::new(), keyring("k1", 1), config);
    let alice = user("alice");
    let before = mfa.enrollment_status(&alice).await.unwrap().unwrap();
    for _ in 0..10 {
        let skipped = mfa.skip_enrollment(&alice).await.unwrap().unwrap();
        assert_eq!(
            skipped,
            Skipped {
                allowed: true,
                status: before
            }
        );
    }
    // Past the deadline a skip is not allowed.
    clock.advance(DAY);
    assert!(!mfa.skip_enrollment(&alice).await.unwrap().unwrap().allowed);
}
