//! Assurance policy: who still needs a second factor after the first, and with what.
#![allow(clippy::unwrap_used, clippy::panic)]

use multifactor::error::MisuseError;
use multifactor::policy::{AssurancePolicy, SatisfiedBy};
use multifactor::{Assurance, DeviceKind, Error, FirstFactor, MemoryStore, MfaConfig, Outcome};
use multifactor_kit::service::*;

fn federated(provider: &str, amr: &[&str], acr: Option<&str>) -> FirstFactor {
    FirstFactor::Federated {
        provider: provider.to_owned(),
        amr: amr.iter().map(|s| (*s).to_owned()).collect(),
        acr: acr.map(str::to_owned),
    }
}

#[tokio::test]
async fn a_user_with_any_method_must_use_one() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    assert_eq!(
        mfa.assurance(&alice, &FirstFactor::Password).await.unwrap(),
        Assurance::NotEnrolled
    );
    // An unconfirmed enrollment is not a method yet.
    mfa.enroll_totp(&alice, "a", None).await.unwrap();
    assert_eq!(
        mfa.assurance(&alice, &FirstFactor::Password).await.unwrap(),
        Assurance::NotEnrolled
    );
    totp(&mfa, &clock, &alice).await;
    mfa.generate_backup_codes(&alice, None).await.unwrap();
    let Assurance::SecondFactorRequired { devices } = mfa.assurance(&alice, &FirstFactor::Password).await.unwrap()
    else {
        panic!("second factor not required")
    };
    let kinds: Vec<DeviceKind> = devices.iter().map(|m| m.kind).collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.contains(&DeviceKind::Totp) && kinds.contains(&DeviceKind::BackupCodes));
}

#[tokio::test]
async fn federated_login_does_not_bypass_mfa_unless_trusted_by_name() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    totp(&mfa, &clock, &alice).await;
    for first in [
        federated("google", &["pwd"], None),
        federated("google", &["mfa"], None),
        federated("https://idp.example.com", &["mfa", "hwk"], Some("phr")),
    ] {
        assert!(
            matches!(
                mfa.assurance(&alice, &first).await.unwrap(),
                Assurance::SecondFactorRequired { .. }
            ),
            "{first:?}"
        );
    }
    let mut config = MfaConfig::new("ACME").unwrap();
    config.assurance = AssurancePolicy::new().danger_trust_upstream_mfa("https://idp.example.com", &["mfa"], &["phr"]);
    let (trusting, clock2, _) = setup_with(MemoryStore::new(), keyring("k", 2), config);
    totp(&trusting, &clock2, &alice).await;
    assert_eq!(
        trusting
            .assurance(&alice, &federated("https://idp.example.com", &["pwd", "mfa"], None))
            .await
            .unwrap(),
        Assurance::Satisfied(SatisfiedBy::UpstreamMfa {
            provider: "https://idp.example.com".into()
        })
    );
    assert!(matches!(
        trusting
            .assurance(&alice, &federated("https://idp.example.com", &[], Some("phr")))
            .await
            .unwrap(),
        Assurance::Satisfied(_)
    ));
    // The same claim from another provider, or no MFA claim from the trusted one: not enough.
    for first in [
        federated("google", &["mfa"], Some("phr")),
        federated("https://idp.example.com", &["pwd"], None),
        federated("https://idp.example.com.evil", &["mfa"], None),
    ] {
        assert!(
            matches!(
                trusting.assurance(&alice, &first).await.unwrap(),
                Assurance::SecondFactorRequired { .. }
            ),
            "{first:?}"
        );
    }
}

#[tokio::test]
async fn a_passkey_with_user_verification_is_enough_without_it_is_not() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    totp(&mfa, &clock, &alice).await;
    assert_eq!(
        mfa.assurance(&alice, &FirstFactor::Passkey { user_verified: true })
            .await
            .unwrap(),
        Assurance::Satisfied(SatisfiedBy::PasskeyWithUserVerification)
    );
    assert!(matches!(
        mfa.assurance(&alice, &FirstFactor::Passkey { user_verified: false })
            .await
            .unwrap(),
        Assurance::SecondFactorRequired { .. }
    ));
}

#[tokio::test]
async fn backup_codes_are_reported_as_recovery_with_the_count() {
    let (mfa, _clock, _) = setup();
    let alice = user("alice");
    let set = mfa.generate_backup_codes(&alice, None).await.unwrap();
    for (i, code) in set.codes.iter().enumerate() {
        let Outcome::Accepted(v) = mfa.verify_backup_code(&alice, code.expose_secret()).await.unwrap() else {
            panic!()
        };
        assert_eq!(v.kind(), DeviceKind::BackupCodes);
        assert!(v.is_recovery(), "a backup-code sign-in is a recovery");
        assert_eq!(v.remaining_backup_codes(), Some(5 - i));
    }
    // Used up: the set no longer passes a second factor, and the password alone does not sign
    // its user in: recovery is required (not "not enrolled").
    let answer = mfa.assurance(&alice, &FirstFactor::Password).await.unwrap();
    assert_eq!(answer, Assurance::RecoveryRequired);
    assert!(answer.second_factor_required());
}

#[tokio::test]
async fn the_last_method_needs_an_admin_to_go() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let (device, _) = totp(&mfa, &clock, &alice).await;
    let codes = mfa.generate_backup_codes(&alice, None).await.unwrap();
    mfa.delete_device(&alice, codes.device).await.unwrap();
    assert!(matches!(
        mfa.delete_device(&alice, device).await,
        Err(Error::Misuse(MisuseError::LastDevice))
    ));
    assert_eq!(
        mfa.list_devices(&alice).await.unwrap().len(),
        1,
        "refused means nothing removed"
    );
    // An unconfirmed enrollment never blocks and never counts.
    let pending = mfa.enroll_totp(&alice, "a", None).await.unwrap();
    mfa.delete_device(&alice, pending.device).await.unwrap();
    mfa.admin_delete_device(&alice, device).await.unwrap();
    assert!(mfa.list_devices(&alice).await.unwrap().is_empty());
    // A reset is explicitly an admin action and removes everything.
    totp(&mfa, &clock, &alice).await;
    assert_eq!(mfa.admin_reset_user(&alice).await.unwrap(), 1);
}

/// A user at one stage of their life: nothing, a pending enrollment, a spent set, one method,
/// two. The service is seeded, so building a stage twice gives the same ids.
async fn at_stage(stage: usize) -> (TestMfa, multifactor::UserId) {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    if stage >= 1 {
        mfa.enroll_totp(&alice, "a", None).await.unwrap();
    }
    if stage >= 2 {
        let set = mfa.generate_backup_codes(&alice, None).await.unwrap();
        for code in &set.codes {
            assert!(
                mfa.verify_backup_code(&alice, code.expose_secret())
                    .await
                    .unwrap()
                    .is_accepted()
            );
        }
    }
    if stage >= 3 {
        totp(&mfa, &clock, &alice).await;
    }
    if stage >= 4 {
        mfa.generate_backup_codes(&alice, None).await.unwrap();
    }
    (mfa, alice)
}

/// The rule a settings page shows before Delete is pressed is the one `delete_device` enforces,
/// for every method at every stage.
#[tokio::test]
async fn the_last_method_rule_a_page_shows_is_the_one_delete_enforces() {
    let mut last_seen = 0;
    for stage in 0..=4 {
        let (mfa, alice) = at_stage(stage).await;
        let methods = mfa.list_devices(&alice).await.unwrap();
        for m in &methods {
            let (probe, alice) = at_stage(stage).await;
            let refused = matches!(
                probe.delete_device(&alice, m.id).await,
                Err(Error::Misuse(MisuseError::LastDevice))
            );
            let shown = multifactor::policy::is_last_device(&methods, m.id);
            assert_eq!(shown, refused, "stage {stage}: {m:?} among {methods:?}");
            last_seen += usize::from(shown);
        }
    }
    assert_eq!(
        last_seen, 1,
        "exactly one stage has a last method (the lone TOTP of stage 3)"
    );
    assert!(!multifactor::policy::is_last_device(
        &[],
        multifactor::DeviceId::from_bytes([7; 16])
    ));
}

/// A verification's evidence: kind, time, `amr`; fresh for a while, then not; its text form
/// round-trips through a session.
#[tokio::test]
async fn evidence_of_a_second_factor_and_step_up_freshness() {
    use multifactor::evidence::{Amr, Evidence, session_amr};
    let (mfa, clock, _) = multifactor_kit::service::setup();
    let alice = multifactor_kit::service::user("alice");
    let (_, secret) = multifactor_kit::service::totp(&mfa, &clock, &alice).await;
    clock.advance(30);
    let code = multifactor_kit::service::code_now(&secret, &clock, 0);
    let multifactor::Outcome::Accepted(v) = mfa.verify_totp(&alice, &code).await.unwrap() else {
        panic!("not accepted")
    };
    let evidence = v.evidence().expect("a sign-in has evidence");
    assert_eq!(evidence.kind(), multifactor::DeviceKind::Totp);
    assert_eq!(evidence.at(), clock.now());
    assert_eq!(evidence.amr(), vec![Amr::Otp]);
    assert_eq!(
        session_amr(
            &multifactor::FirstFactor::Password,
            Some(&evidence),
            &multifactor::policy::AssurancePolicy::new()
        ),
        ["mfa", "otp", "pwd"]
    );
    let kept: Evidence = evidence.to_string().parse().unwrap();
    assert_eq!(kept, evidence);
    assert!(kept.is_fresh(clock.now(), 300));
    clock.advance(300);
    assert!(kept.is_fresh(clock.now(), 300));
    clock.advance(1);
    assert!(!kept.is_fresh(clock.now(), 300), "a step-up is due after 5 minutes");
}

/// Enrolling a device is no evidence of a sign-in: a TOTP confirmation and a WebAuthn
/// registration give proof of the enrollment, without evidence a session could keep as a
/// (fresh) second factor.
#[tokio::test]
async fn an_enrollment_is_no_sign_in_evidence() {
    let (mfa, clock, _) = multifactor_kit::service::setup();
    let alice = multifactor_kit::service::user("alice");
    let enrollment = mfa.enroll_totp(&alice, "a", None).await.unwrap();
    let secret = multifactor::totp::decode_base32_secret(enrollment.secret_base32.expose_secret()).unwrap();
    let code = multifactor_kit::service::code_now(&secret, &clock, 0);
    let multifactor::Outcome::Accepted(v) = mfa.confirm_totp(&alice, enrollment.device, &code).await.unwrap() else {
        panic!("not confirmed")
    };
    assert!(!v.is_sign_in());
    assert_eq!(v.evidence(), None);
}
