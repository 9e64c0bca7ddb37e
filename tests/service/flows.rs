//! The `Mfa` service end to end on `MemoryStore` with a manual clock: enrollment, confirmation,
//! verification, replay, throttling, lockout, import, device management, races, and errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use multifactor::{AdminStore, BrowserStore, CeremonyStore, EnrollmentStore};
use multifactor_kit::forward;
use multifactor_kit::service::{START, TestMfa, user};

use std::sync::Arc;

use multifactor::conformance::CountingStore;
use multifactor::error::{InputError, MisuseError, SealError};
use multifactor::store::{DeviceData, DeviceRecord, ThrottleState};
use multifactor::throttle::{ThrottleDecision, ThrottlePolicy};
use multifactor::totp::{Algorithm, TotpParams};
use multifactor::totp::{code_at, code_for_step, decode_base32_secret};
use multifactor::{
    DeviceId, DeviceKind, DeviceStore, Error, Factor, InsecureSeededRng, KeyId, Keyring, ManualClock, MemoryStore, Mfa,
    MfaConfig, Outcome, SealingKey, SecretBytes, Store, StoreError, UnixTime, UserId,
};

fn keys(id: &str, byte: u8) -> Keyring {
    Keyring::new(SealingKey::new(KeyId::new(id).unwrap(), [byte; 32]))
}

fn setup() -> (TestMfa, ManualClock) {
    setup_on(MemoryStore::new(), keys("k1", 1))
}

fn setup_on(store: MemoryStore, keys: Keyring) -> (TestMfa, ManualClock) {
    setup_with(store, keys, MfaConfig::new("ACME").unwrap())
}

fn setup_with(store: MemoryStore, keys: Keyring, config: MfaConfig) -> (TestMfa, ManualClock) {
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let mfa = Mfa::new(store, keys, config)
        .unwrap()
        .with_clock(clock.clone())
        .with_rng(InsecureSeededRng::new(42));
    (mfa, clock)
}

/// Enrolls and confirms TOTP; returns the device id and the app's secret.
async fn enrolled<S: Store>(
    mfa: &Mfa<S, ManualClock, InsecureSeededRng>,
    clock: &ManualClock,
    who: &UserId,
) -> (multifactor::DeviceId, SecretBytes) {
    let e = mfa.enroll_totp(who, "someone@example.com", None).await.unwrap();
    let secret = decode_base32_secret(e.secret_base32.expose_secret()).unwrap();
    let code = code_at(&secret, &TotpParams::default(), clock.now());
    assert!(
        mfa.confirm_totp(who, e.device, code.expose_secret())
            .await
            .unwrap()
            .is_accepted()
    );
    (e.device, secret)
}

fn code(secret: &SecretBytes, clock: &ManualClock, offset_steps: i64) -> String {
    let step = TotpParams::default().step_at(clock.now()) as i64 + offset_steps;
    code_for_step(secret, &TotpParams::default(), step as u64)
        .expose_secret()
        .to_owned()
}

fn wrong(secret: &SecretBytes, clock: &ManualClock) -> String {
    // A code that matches none of the window's steps, and differs from the one before (the
    // same wrong code twice in a step is one failure).
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let window: Vec<String> = (-1..=1).map(|o| code(secret, clock, o)).collect();
    let from = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 900_000;
    (from..1_000_000u32)
        .map(|n| format!("{n:06}"))
        .find(|c| !window.contains(c))
        .unwrap()
}

#[tokio::test]
async fn enrollment_needs_confirmation_and_the_first_code_is_spent() {
    let (mfa, clock) = setup();
    let alice = user("alice");
    let e = mfa
        .enroll_totp(&alice, "alice@example.com", Some("Phone"))
        .await
        .unwrap();
    assert!(
        e.key_uri
            .expose_secret()
            .starts_with("otpauth://totp/ACME:alice%40example.com?secret=")
    );
    assert!(e.key_uri.expose_secret().contains("&issuer=ACME&"));
    let secret = decode_base32_secret(e.secret_base32.expose_secret()).unwrap();
    assert_eq!(secret.len(), 20, "160-bit secret by default");

    // Unconfirmed: listed as such, and not usable for sign-in.
    let methods = mfa.list_devices(&alice).await.unwrap();
    assert_eq!(methods.len(), 1);
    assert!(!methods[0].confirmed);
    assert_eq!(methods[0].name.as_str(), "Phone");
    let now_code = code(&secret, &clock, 0);
    assert_eq!(mfa.verify_totp(&alice, &now_code).await.unwrap(), Outcome::Rejected);

    // A wrong first code does not confirm.
    assert_eq!(
        mfa.confirm_totp(&alice, e.device, &wrong(&secret, &clock))
            .await
            .unwrap(),
        Outcome::Rejected
    );
    let accepted = mfa.confirm_totp(&alice, e.device, &now_code).await.unwrap();
    let Outcome::Accepted(v) = accepted else {
        panic!("{accepted:?}")
    };
    assert_eq!(
        (v.device(), v.kind(), v.remaining_backup_codes()),
        (e.device, DeviceKind::Totp, None)
    );
    assert!(mfa.list_devices(&alice).await.unwrap()[0].confirmed);
    // The confirming code counts as used.
    assert_eq!(mfa.verify_totp(&alice, &now_code).await.unwrap(), Outcome::Rejected);
    // Confirming twice is misuse.
    assert!(matches!(
        mfa.confirm_totp(&alice, e.device, &now_code).await,
        Err(Error::Misuse(MisuseError::AlreadyConfirmed))
    ));
}

#[tokio::test]
async fn a_mistyped_first_code_can_be_retried_with_the_same_secret() {
    let (mfa, clock) = setup();
    let alice = user("alice");
    let e = mfa.enroll_totp(&alice, "alice@example.com", None).await.unwrap();
    let secret = decode_base32_secret(e.secret_base32.expose_secret()).unwrap();
    assert_eq!(
        mfa.confirm_totp(&alice, e.device, &wrong(&secret, &clock))
            .await
            .unwrap(),
        Outcome::Rejected
    );
    // The setup again: the same secret, URI and QR code, nothing kept by the host.
    let again = mfa
        .resume_totp_enrollment(&alice, e.device, "alice@example.com")
        .await
        .unwrap();
    assert_eq!(again.device, e.device);
    assert_eq!(again.secret_base32.expose_secret(), e.secret_base32.expose_secret());
    assert_eq!(again.key_uri.expose_secret(), e.key_uri.expose_secret());
    // Another user cannot see it; a confirmed device never shows its secret again.
    assert!(matches!(
        mfa.resume_totp_enrollment(&user("mallory"), e.device, "m").await,
        Err(Error::Misuse(MisuseError::DeviceNotFound))
    ));
    assert!(matches!(
        mfa.resume_totp_enrollment(&alice, e.device, "").await,
        Err(Error::Input(InputError::AccountName))
    ));
    let right = code(&secret, &clock, 0);
    assert!(mfa.confirm_totp(&alice, e.device, &right).await.unwrap().is_accepted());
    assert!(matches!(
        mfa.resume_totp_enrollment(&alice, e.device, "alice@example.com").await,
        Err(Error::Misuse(MisuseError::AlreadyConfirmed))
    ));
    // A backup-code set is no TOTP enrollment.
    let set = mfa.generate_backup_codes(&alice, None).await.unwrap();
    assert!(matches!(
        mfa.resume_totp_enrollment(&alice, set.device, "a").await,
        Err(Error::Misuse(MisuseError::WrongKind { .. }))
    ));
}

#[tokio::test]
async fn a_new_enrollment_replaces_abandoned_ones() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    let first = mfa.enroll_totp(&alice, "a", None).await.unwrap();
    let second = mfa.enroll_totp(&alice, "a", None).await.unwrap();
    let ids: Vec<_> = mfa
        .list_devices(&alice)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, vec![second.device]);
    assert!(matches!(
        mfa.confirm_totp(&alice, first.device, "123456").await,
        Err(Error::Misuse(MisuseError::DeviceNotFound))
    ));
}

#[tokio::test]
async fn window_replay_and_older_steps() {
    let (mfa, clock) = setup();
    let alice = user("alice");
    let (_, secret) = enrolled(&mfa, &clock, &alice).await;
    clock.advance(300);
    let ahead = code(&secret, &clock, 1);
    let behind = code(&secret, &clock, -1);
    assert_eq!(
        mfa.verify_totp(&alice, &code(&secret, &clock, 2)).await.unwrap(),
        Outcome::Rejected
    );
    assert_eq!(
        mfa.verify_totp(&alice, &code(&secret, &clock, -2)).await.unwrap(),
        Outcome::Rejected
    );
    assert!(mfa.verify_totp(&alice, &ahead).await.unwrap().is_accepted());
    // After a newer step was accepted, an older one inside the window is refused (RFC 6238 §5.2).
    assert_eq!(mfa.verify_totp(&alice, &behind).await.unwrap(), Outcome::Rejected);
    assert_eq!(mfa.verify_totp(&alice, &ahead).await.unwrap(), Outcome::Rejected);
    assert_eq!(
        mfa.verify_totp(&alice, &code(&secret, &clock, 0)).await.unwrap(),
        Outcome::Rejected
    );
    clock.advance(60);
    assert!(
        mfa.verify_totp(&alice, &code(&secret, &clock, 0))
            .await
            .unwrap()
            .is_accepted()
    );
    // Spaces are fine; letters are a format error that is not counted.
    clock.advance(30);
    let c = code(&secret, &clock, 0);
    let spaced = format!("{} {}", &c[..3], &c[3..]);
    assert!(mfa.verify_totp(&alice, &spaced).await.unwrap().is_accepted());
    let before = mfa.store().throttle(&alice, Factor::Totp.into()).await.unwrap();
    assert!(consecutive_cleared(before), "{before:?}");
    for bad in ["12345", "1234567", "12a456", ""] {
        assert!(
            matches!(
                mfa.verify_totp(&alice, bad).await,
                Err(Error::Input(InputError::CodeFormat { .. }))
            ),
            "{bad}"
        );
    }
    assert_eq!(mfa.store().throttle(&alice, Factor::Totp.into()).await.unwrap(), before);
}

/// The counter after a success: consecutive failures cleared (the failure budget, which only
/// time drains, may still hold some).
fn consecutive_cleared(state: ThrottleState) -> bool {
    state.failures == 0 && state.last_failure_at.is_none()
}

/// Backoff and the lock, with a failure budget too large to interfere (the budget has tests of
/// its own below and in `tests/service/attacker.rs`).
#[tokio::test]
async fn throttling_backs_off_locks_and_does_not_evaluate() {
    let mut config = MfaConfig::new("ACME").unwrap();
    config.throttle = config.throttle.with_failure_budget(1_000, 1).unwrap();
    let (mfa, clock) = setup_with(MemoryStore::new(), keys("k1", 1), config);
    let alice = user("alice");
    let (_, secret) = enrolled(&mfa, &clock, &alice).await;
    let backup = mfa.generate_backup_codes(&alice, None).await.unwrap();
    clock.advance(30); // past the step spent by the confirmation

    for _ in 0..5 {
        assert_eq!(
            mfa.verify_totp(&alice, &wrong(&secret, &clock)).await.unwrap(),
            Outcome::Rejected
        );
    }
    // The sixth attempt is not evaluated, even with the right code...
    let right = code(&secret, &clock, 0);
    let throttled = mfa.verify_totp(&alice, &right).await.unwrap();
    assert_eq!(
        throttled,
        Outcome::Throttled {
            retry_at: clock.now().plus_secs(30)
        }
    );
    // ...which therefore stays unspent, and other factors are not affected.
    assert!(
        mfa.verify_backup_code(&alice, backup.codes[0].expose_secret())
            .await
            .unwrap()
            .is_accepted()
    );
    clock.advance(30);
    assert!(mfa.verify_totp(&alice, &right).await.unwrap().is_accepted());
    // Success cleared the consecutive failures: five free tries again.
    assert!(consecutive_cleared(
        mfa.store().throttle(&alice, Factor::Totp.into()).await.unwrap()
    ));

    // Exponential backoff, then a lock at 100 consecutive failures.
    let mut delays = Vec::new();
    for _ in 0..100 {
        loop {
            match mfa.verify_totp(&alice, &wrong(&secret, &clock)).await.unwrap() {
                Outcome::Rejected => break,
                Outcome::Throttled { retry_at } => {
                    delays.push(retry_at.secs_since(clock.now()));
                    clock.set(retry_at);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(&delays[..4], &[30, 60, 120, 240]);
    assert_eq!(*delays.last().unwrap(), 3600);
    clock.advance(1 << 30);
    let right = code(&secret, &clock, 0);
    assert_eq!(mfa.verify_totp(&alice, &right).await.unwrap(), Outcome::Locked);
    assert_eq!(
        mfa.throttle_status(&alice, Factor::Totp).await.unwrap(),
        ThrottleDecision::Locked
    );
    // Only the host lifts it.
    mfa.unlock(&alice, Factor::Totp).await.unwrap();
    assert!(mfa.verify_totp(&alice, &right).await.unwrap().is_accepted());
}

/// A person who picks a factor they have not set up gets the ordinary refusal, and nothing is
/// charged: with nothing a guess could win, a hundred such attempts leave every counter empty.
#[tokio::test]
async fn a_factor_the_user_has_not_set_up_is_an_ordinary_refusal_and_not_counted() {
    let (mfa, clock) = setup();
    let alice = user("alice");
    for n in 0..100u32 {
        let guess = format!("{n:06}");
        assert_eq!(mfa.verify_totp(&alice, &guess).await.unwrap(), Outcome::Rejected);
        assert_eq!(mfa.verify_sent_code(&alice, &guess).await.unwrap(), Outcome::Rejected);
        assert_eq!(
            mfa.verify_backup_code(&alice, "abcd-efgh-jkmnp").await.unwrap(),
            Outcome::Rejected
        );
    }
    for factor in [Factor::Totp, Factor::BackupCodes] {
        assert!(consecutive_cleared(
            mfa.store().throttle(&alice, factor.into()).await.unwrap()
        ));
        assert_eq!(
            mfa.throttle_status(&alice, factor).await.unwrap(),
            ThrottleDecision::Allowed
        );
    }
    // Once set up, the first code goes straight through.
    let (_, secret) = enrolled(&mfa, &clock, &alice).await;
    clock.advance(30);
    assert!(
        mfa.verify_totp(&alice, &code(&secret, &clock, 0))
            .await
            .unwrap()
            .is_accepted()
    );
}

#[tokio::test]
async fn a_correct_code_on_one_factor_is_no_failure_on_another() {
    let (mfa, clock) = setup();
    let alice = user("alice");
    let (_, secret) = enrolled(&mfa, &clock, &alice).await;
    let set = mfa.generate_backup_codes(&alice, None).await.unwrap();
    for i in 0..3 {
        assert_eq!(
            mfa.verify_backup_code(&alice, &format!("0000-0000-0000{i}"))
                .await
                .unwrap(),
            Outcome::Rejected
        );
    }
    clock.advance(30);
    assert!(
        mfa.verify_totp(&alice, &code(&secret, &clock, 0))
            .await
            .unwrap()
            .is_accepted()
    );
    assert_eq!(
        mfa.store().throttle(&alice, Factor::Totp.into()).await.unwrap(),
        ThrottleState::default()
    );
    assert_eq!(
        mfa.store()
            .throttle(&alice, Factor::BackupCodes.into())
            .await
            .unwrap()
            .failures,
        3
    );
    assert!(
        mfa.verify_backup_code(&alice, set.codes[5].expose_secret())
            .await
            .unwrap()
            .is_accepted()
    );
    let after = mfa.store().throttle(&alice, Factor::BackupCodes.into()).await.unwrap();
    assert!(consecutive_cleared(after), "{after:?}");
    // The three failures stay in the budget: a success does not refill it.
    assert_eq!(
        mfa.config().throttle.budget_remaining(&after, clock.now()),
        ThrottlePolicy::DEFAULT_BUDGET_CAPACITY - 3
    );
    // Another user's failures are theirs.
    assert_eq!(
        mfa.store()
            .throttle(&user("bob"), Factor::BackupCodes.into())
            .await
            .unwrap(),
        ThrottleState::default()
    );
}

#[tokio::test]
async fn backup_codes_once_each_and_regeneration_replaces() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    assert_eq!(
        mfa.verify_backup_code(&alice, "abcd-efgh-jkmnp").await.unwrap(),
        Outcome::Rejected
    );
    let old = mfa.generate_backup_codes(&alice, None).await.unwrap();
    assert_eq!(old.codes.len(), 6);
    for (i, c) in old.codes.iter().take(3).enumerate() {
        let Outcome::Accepted(v) = mfa.verify_backup_code(&alice, c.expose_secret()).await.unwrap() else {
            panic!("code {i} refused")
        };
        assert_eq!(v.remaining_backup_codes(), Some(5 - i));
        assert_eq!(v.kind(), DeviceKind::BackupCodes);
        assert_eq!(
            mfa.verify_backup_code(&alice, c.expose_secret()).await.unwrap(),
            Outcome::Rejected
        );
    }
    let listed = mfa.list_devices(&alice).await.unwrap();
    assert_eq!(listed[0].remaining_backup_codes, Some(3));
    assert!(listed[0].last_used_at.is_some());

    let new = mfa
        .generate_backup_codes(&alice, Some("Paper in the safe"))
        .await
        .unwrap();
    for c in &old.codes[3..] {
        assert_eq!(
            mfa.verify_backup_code(&alice, c.expose_secret()).await.unwrap(),
            Outcome::Rejected
        );
    }
    let listed = mfa.list_devices(&alice).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, new.device);
    assert_eq!(listed[0].remaining_backup_codes, Some(6));
    assert_eq!(listed[0].name.as_str(), "Paper in the safe");
    // Malformed input is a clear error and is not counted.
    let before = mfa.store().throttle(&alice, Factor::BackupCodes.into()).await.unwrap();
    assert!(matches!(
        mfa.verify_backup_code(&alice, "not a code!").await,
        Err(Error::Input(InputError::CodeFormat { .. }))
    ));
    // An authenticator app's code in the backup-code field is named as such.
    assert!(matches!(
        mfa.verify_backup_code(&alice, "123 456").await,
        Err(Error::Input(InputError::AuthenticatorCodeAsBackupCode))
    ));
    assert_eq!(
        mfa.store().throttle(&alice, Factor::BackupCodes.into()).await.unwrap(),
        before
    );
    assert!(
        mfa.verify_backup_code(&alice, new.codes[0].expose_secret())
            .await
            .unwrap()
            .is_accepted()
    );
}

#[tokio::test]
async fn import_from_uri_and_base32_and_refuse_garbage_without_writing() {
    let (mfa, clock) = setup();
    let alice = user("alice");
    let secret = SecretBytes::new(b"12345678901234567890123456789012".to_vec());
    let params = TotpParams::new(Algorithm::Sha256, 8, 60).unwrap();
    let uri = multifactor::totp::uri::build("Old IdP", "alice", &secret, &params);
    let id = mfa.import_totp(&alice, uri.expose_secret(), None).await.unwrap();
    let m = &mfa.list_devices(&alice).await.unwrap()[0];
    assert!(m.confirmed, "an import is confirmed at once");
    assert_eq!(m.name.as_str(), "Old IdP");
    let c = code_at(&secret, &params, clock.now());
    assert_eq!(c.expose_secret().len(), 8);
    let Outcome::Accepted(v) = mfa.verify_totp(&alice, c.expose_secret()).await.unwrap() else {
        panic!()
    };
    assert_eq!(v.device(), id);

    // An 80-bit base32 secret as real sites issue them, typed with spaces in lower case.
    let bob = user("bob");
    mfa.import_totp(&bob, "jbsw y3dp ehpk 3pxp", Some("Legacy"))
        .await
        .unwrap();
    let legacy = decode_base32_secret("JBSWY3DPEHPK3PXP").unwrap();
    let c = code_at(&legacy, &TotpParams::default(), clock.now());
    assert!(mfa.verify_totp(&bob, c.expose_secret()).await.unwrap().is_accepted());

    let carol = user("carol");
    for bad in [
        "",
        "JBSWY3DP",
        "not base32 at all!",
        "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP",
        "otpauth://totp/A:b?secret=JBSWY3DPEHPK3PXP&issuer=B",
        "https://example.com/?secret=JBSWY3DPEHPK3PXP",
    ] {
        assert!(
            matches!(mfa.import_totp(&carol, bad, None).await, Err(Error::Input(_))),
            "{bad}"
        );
    }
    assert!(
        mfa.list_devices(&carol).await.unwrap().is_empty(),
        "a failed import wrote something"
    );
}

#[tokio::test]
async fn device_management() {
    let (mfa, clock) = setup();
    let alice = user("alice");
    let bob = user("bob");
    let (totp, _) = enrolled(&mfa, &clock, &alice).await;
    clock.advance(10);
    let codes = mfa.generate_backup_codes(&alice, None).await.unwrap();
    let (bobs, _) = enrolled(&mfa, &clock, &bob).await;

    let list = mfa.list_devices(&alice).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!((list[0].id, list[0].kind), (totp, DeviceKind::Totp));
    assert_eq!(list[0].created_at, UnixTime::from_secs(START));
    assert_eq!(list[0].last_used_at, Some(UnixTime::from_secs(START)));
    assert_eq!(list[0].remaining_backup_codes, None);
    assert_eq!((list[1].id, list[1].kind), (codes.device, DeviceKind::BackupCodes));
    assert_eq!(list[1].last_used_at, None);

    mfa.rename_device(&alice, totp, "  Work phone ").await.unwrap();
    assert_eq!(mfa.list_devices(&alice).await.unwrap()[0].name.as_str(), "Work phone");
    for bad in ["", "   ", "line\nbreak", &"x".repeat(65)] {
        assert!(matches!(
            mfa.rename_device(&alice, totp, bad).await,
            Err(Error::Input(InputError::DeviceName))
        ));
    }
    assert_eq!(mfa.list_devices(&alice).await.unwrap()[0].name.as_str(), "Work phone");
    assert!(matches!(
        mfa.rename_device(&alice, bobs, "mine now").await,
        Err(Error::Misuse(MisuseError::DeviceNotFound))
    ));
    assert!(matches!(
        mfa.delete_device(&alice, bobs).await,
        Err(Error::Misuse(MisuseError::DeviceNotFound))
    ));
    assert!(matches!(
        mfa.confirm_totp(&alice, codes.device, "123456").await,
        Err(Error::Misuse(MisuseError::WrongKind {
            expected: DeviceKind::Totp,
            found: DeviceKind::BackupCodes
        }))
    ));
    mfa.delete_device(&alice, totp).await.unwrap();
    assert!(matches!(
        mfa.delete_device(&alice, totp).await,
        Err(Error::Misuse(MisuseError::DeviceNotFound))
    ));
    assert_eq!(mfa.list_devices(&alice).await.unwrap().len(), 1);
    assert_eq!(mfa.admin_reset_user(&alice).await.unwrap(), 1);
    assert!(mfa.list_devices(&alice).await.unwrap().is_empty());
    assert_eq!(mfa.list_devices(&bob).await.unwrap().len(), 1, "bob untouched");
}

#[tokio::test]
async fn secrets_never_reach_the_store_or_debug_output() {
    let (mfa, clock) = setup();
    let alice = user("alice");
    let e = mfa.enroll_totp(&alice, "alice@example.com", None).await.unwrap();
    let secret = decode_base32_secret(e.secret_base32.expose_secret()).unwrap();
    let set = mfa.generate_backup_codes(&alice, None).await.unwrap();
    let b32 = e.secret_base32.expose_secret().to_owned();
    let plain_codes: Vec<String> = set.codes.iter().map(|c| c.expose_secret().to_owned()).collect();

    let mut haystacks = vec![
        format!("{e:?}"),
        format!("{set:?}"),
        format!("{:?}", mfa),
        format!("{:?}", mfa.list_devices(&alice).await.unwrap()),
    ];
    for record in mfa.store().list_devices(&alice).await.unwrap() {
        haystacks.push(format!("{record:?}"));
        if let DeviceData::Totp(t) = &record.data {
            let blob = t.sealed_secret.to_bytes();
            assert!(!blob.windows(secret.len()).any(|w| w == secret.expose_secret()));
        }
    }
    let c = code_at(&secret, &TotpParams::default(), clock.now());
    let outcome = mfa.confirm_totp(&alice, e.device, c.expose_secret()).await.unwrap();
    haystacks.push(format!("{outcome:?}"));
    let err = mfa.verify_totp(&alice, "12x456").await.unwrap_err();
    haystacks.push(format!("{err:?} {err}"));
    let err = mfa
        .import_totp(&alice, &format!("otpauth://totp/a?secret={b32}&digits=9"), None)
        .await
        .unwrap_err();
    haystacks.push(format!("{err:?} {err}"));
    for h in &haystacks {
        assert!(!h.contains(&b32), "base32 secret in {h}");
        assert!(!h.contains(c.expose_secret()), "TOTP code in {h}");
        for code in &plain_codes {
            assert!(
                !h.contains(code.as_str()) && !h.contains(&code.replace('-', "")),
                "backup code in {h}"
            );
        }
    }
}

#[tokio::test]
async fn sealing_binds_key_user_and_device() {
    let store = MemoryStore::new();
    let (mfa, clock) = setup_on(store.clone(), keys("k1", 1));
    let alice = user("alice");
    let (_, secret) = enrolled(&mfa, &clock, &alice).await;
    clock.advance(30);
    let c = code(&secret, &clock, 0);

    // The same store under a keyring without key k1: a clear error, not "rejected".
    let (other, _) = setup_on(store.clone(), keys("k2", 2));
    let other = other.with_clock(clock.clone());
    assert!(matches!(
        other.verify_totp(&alice, &c).await,
        Err(Error::Seal(SealError::UnknownKey(id))) if id == "k1"
    ));
    // Same id, other key material: integrity failure.
    let (wrong_key, _) = setup_on(store.clone(), keys("k1", 9));
    let wrong_key = wrong_key.with_clock(clock.clone());
    assert!(matches!(
        wrong_key.verify_totp(&alice, &c).await,
        Err(Error::Seal(SealError::Integrity))
    ));

    // A sealed blob moved to another user's device does not open.
    let bob = user("bob");
    let mut record = store.list_devices(&alice).await.unwrap().remove(0);
    record.user = bob.clone();
    record.id = multifactor::DeviceId::from_bytes([9; 16]);
    store.insert_device(record).await.unwrap();
    assert!(matches!(
        mfa.verify_totp(&bob, &c).await,
        Err(Error::Seal(SealError::Integrity))
    ));

    // Rotation: a keyring with a new current key and the old one still opens old secrets.
    let rotated = Keyring::new(SealingKey::new(KeyId::new("k2").unwrap(), [2; 32]))
        .with_previous(SealingKey::new(KeyId::new("k1").unwrap(), [1; 32]))
        .unwrap();
    let (rotated, _) = setup_on(store.clone(), rotated);
    let rotated = rotated.with_clock(clock.clone());
    assert!(rotated.verify_totp(&alice, &c).await.unwrap().is_accepted());
}

/// A store whose backend is down: every operation fails.
struct DownStore;

#[derive(Debug)]
struct Down;

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("database is down")
    }
}
impl std::error::Error for Down {}

fn down<T>() -> Result<T, StoreError> {
    Err(StoreError::backend(Down))
}

impl DeviceStore for DownStore {
    async fn verification_state(
        &self,
        _: &UserId,
        _: multifactor::Factor,
    ) -> Result<multifactor::store::VerificationState, StoreError> {
        down()
    }

    async fn insert_device(&self, _: multifactor::store::DeviceRecord) -> Result<(), StoreError> {
        down()
    }

    async fn device(
        &self,
        _: &UserId,
        _: multifactor::DeviceId,
    ) -> Result<Option<multifactor::store::DeviceRecord>, StoreError> {
        down()
    }

    async fn list_devices(&self, _: &UserId) -> Result<Vec<multifactor::store::DeviceRecord>, StoreError> {
        down()
    }

    async fn rename_device(
        &self,
        _: &UserId,
        _: multifactor::DeviceId,
        _: &multifactor::DeviceName,
    ) -> Result<bool, StoreError> {
        down()
    }

    async fn delete_device(&self, _: &UserId, _: multifactor::DeviceId) -> Result<bool, StoreError> {
        down()
    }

    async fn delete_user_devices(&self, _: &UserId) -> Result<u64, StoreError> {
        down()
    }

    async fn delete_unconfirmed_totp(&self, _: &UserId, _: multifactor::DeviceId) -> Result<u64, StoreError> {
        down()
    }

    async fn replace_backup_codes(&self, _: multifactor::store::DeviceRecord) -> Result<(), StoreError> {
        down()
    }

    async fn insert_first_backup_codes(&self, _: multifactor::store::DeviceRecord) -> Result<bool, StoreError> {
        down()
    }

    async fn key_check(&self, _: &multifactor::KeyId, _: [u8; 32]) -> Result<[u8; 32], StoreError> {
        down()
    }

    async fn settle_attempt(
        &self,
        _: &UserId,
        _: &multifactor::store::Settle,
    ) -> Result<multifactor::store::Settlement, StoreError> {
        down()
    }

    async fn throttle(&self, _: &UserId, _: multifactor::store::Counter) -> Result<ThrottleState, StoreError> {
        down()
    }

    async fn swap_throttle(
        &self,
        _: &UserId,
        _: multifactor::store::Counter,
        _: ThrottleState,
        _: ThrottleState,
    ) -> Result<bool, StoreError> {
        down()
    }

    async fn clear_throttle(&self, _: &UserId, _: multifactor::store::Counter) -> Result<(), StoreError> {
        down()
    }

    async fn find_credential(&self, _: &[u8]) -> Result<Option<multifactor::store::DeviceRecord>, StoreError> {
        down()
    }

    async fn record_webauthn_use(
        &self,
        _: &UserId,
        _: multifactor::DeviceId,
        _: u32,
        _: multifactor::store::WebAuthnUse,
        _: UnixTime,
    ) -> Result<bool, StoreError> {
        down()
    }

    async fn delete_device_unless_last(
        &self,
        _: &UserId,
        _: multifactor::DeviceId,
    ) -> Result<multifactor::store::DeleteOutcome, StoreError> {
        down()
    }

    async fn issue_sent_code(
        &self,
        _: &UserId,
        _: multifactor::DeviceId,
        _: Option<&multifactor::store::IssuedCode>,
        _: &multifactor::store::IssuedCode,
    ) -> Result<bool, StoreError> {
        down()
    }
}

impl CeremonyStore for DownStore {
    async fn insert_ceremony(&self, _: multifactor::store::CeremonyRecord) -> Result<(), StoreError> {
        down()
    }

    async fn take_ceremony(
        &self,
        _: multifactor::CeremonyId,
        _: Option<&UserId>,
        _: multifactor::store::CeremonyKind,
        _: UnixTime,
    ) -> Result<Option<multifactor::store::CeremonyRecord>, StoreError> {
        down()
    }

    async fn purge_expired_ceremonies(&self, _: UnixTime) -> Result<u64, StoreError> {
        down()
    }
}

impl BrowserStore for DownStore {
    async fn insert_remembered_browser(
        &self,
        _: multifactor::store::RememberedBrowserRecord,
    ) -> Result<(), StoreError> {
        down()
    }

    async fn remembered_browser(
        &self,
        _: multifactor::RememberedBrowserId,
    ) -> Result<Option<multifactor::store::RememberedBrowserRecord>, StoreError> {
        down()
    }

    async fn touch_remembered_browser(
        &self,
        _: &UserId,
        _: multifactor::RememberedBrowserId,
        _: UnixTime,
    ) -> Result<bool, StoreError> {
        down()
    }

    async fn list_remembered_browsers(
        &self,
        _: &UserId,
    ) -> Result<Vec<multifactor::store::RememberedBrowserRecord>, StoreError> {
        down()
    }

    async fn delete_remembered_browser(
        &self,
        _: &UserId,
        _: multifactor::RememberedBrowserId,
    ) -> Result<bool, StoreError> {
        down()
    }

    async fn delete_user_remembered_browsers(
        &self,
        _: &UserId,
        _: multifactor::store::Browsers,
    ) -> Result<u64, StoreError> {
        down()
    }
}

impl AdminStore for DownStore {
    async fn list_totp_devices(
        &self,
        _: Option<multifactor::DeviceId>,
        _: usize,
    ) -> Result<Vec<multifactor::store::DeviceRecord>, StoreError> {
        down()
    }

    async fn list_backup_code_sets(
        &self,
        _: Option<multifactor::DeviceId>,
        _: usize,
    ) -> Result<Vec<multifactor::store::DeviceRecord>, StoreError> {
        down()
    }

    async fn list_remembered_browsers_page(
        &self,
        _: Option<multifactor::RememberedBrowserId>,
        _: usize,
    ) -> Result<Vec<multifactor::store::RememberedBrowserRecord>, StoreError> {
        down()
    }

    async fn reseal_totp_secret(
        &self,
        _: &UserId,
        _: multifactor::DeviceId,
        _: &multifactor::store::SealedSecret,
        _: &multifactor::store::SealedSecret,
        _: &[u8; 32],
    ) -> Result<bool, StoreError> {
        down()
    }

    async fn list_webauthn_credentials(
        &self,
        _: Option<multifactor::DeviceId>,
        _: usize,
    ) -> Result<Vec<DeviceRecord>, StoreError> {
        down()
    }
}

impl EnrollmentStore for DownStore {
    async fn enrollment_deadline(
        &self,
        _: &UserId,
        _: multifactor::UnixTime,
    ) -> Result<multifactor::enrollment::EnrollmentGrace, StoreError> {
        down()
    }

    async fn skip_enrollment_prompt(
        &self,
        _: &UserId,
        _: multifactor::UnixTime,
        _: u32,
    ) -> Result<Option<u32>, StoreError> {
        down()
    }

    async fn set_enrollment_deadline(&self, _: &UserId, _: multifactor::UnixTime) -> Result<(), StoreError> {
        down()
    }
}

#[tokio::test]
async fn storage_failures_are_errors_never_rejections() {
    let mfa = Mfa::new(DownStore, keys("k", 1), MfaConfig::new("ACME").unwrap()).unwrap();
    let alice = user("alice");
    let results = [
        mfa.verify_totp(&alice, "123456").await.map(|_| ()),
        mfa.verify_backup_code(&alice, "abcd-efgh-jkmnp").await.map(|_| ()),
        mfa.enroll_totp(&alice, "a", None).await.map(|_| ()),
        mfa.generate_backup_codes(&alice, None).await.map(|_| ()),
        mfa.list_devices(&alice).await.map(|_| ()),
        mfa.admin_reset_user(&alice).await.map(|_| ()),
    ];
    for r in results {
        let err = r.unwrap_err();
        assert!(matches!(err, Error::Store(StoreError::Backend(_))), "{err:?}");
        assert!(err.to_string().contains("database is down"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_code_get_one_acceptance() {
    for round in 0..10 {
        let (mfa, clock) = setup();
        let mfa = Arc::new(mfa);
        let alice = user("alice");
        let (_, secret) = enrolled(&mfa, &clock, &alice).await;
        clock.advance(30);
        let totp_code = code(&secret, &clock, 0);
        let set = mfa.generate_backup_codes(&alice, None).await.unwrap();
        let backup = set.codes[2].expose_secret().to_owned();

        let barrier = Arc::new(tokio::sync::Barrier::new(128));
        let mut tasks = Vec::new();
        for i in 0..128 {
            let (mfa, alice, barrier) = (mfa.clone(), alice.clone(), barrier.clone());
            let (totp_code, backup) = (totp_code.clone(), backup.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                if i % 2 == 0 {
                    (Factor::Totp, mfa.verify_totp(&alice, &totp_code).await.unwrap())
                } else {
                    (
                        Factor::BackupCodes,
                        mfa.verify_backup_code(&alice, &backup).await.unwrap(),
                    )
                }
            }));
        }
        let mut accepted = [0, 0];
        for t in tasks {
            let (factor, outcome) = t.await.unwrap();
            match outcome {
                Outcome::Accepted(_) => accepted[usize::from(factor == Factor::Totp)] += 1,
                Outcome::Rejected | Outcome::Throttled { .. } => {}
                other => panic!("round {round}: unexpected {other:?}"),
            }
        }
        assert_eq!(accepted, [1, 1], "round {round}: [backup, totp] acceptances");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_cannot_outrun_the_throttle() {
    let (mfa, clock) = setup();
    let mfa = Arc::new(mfa);
    let alice = user("alice");
    let (_, secret) = enrolled(&mfa, &clock, &alice).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(64));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let guess = wrong(&secret, &clock);
        let (mfa, alice, barrier) = (mfa.clone(), alice.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            mfa.verify_totp(&alice, &guess).await.unwrap()
        }));
    }
    let mut answered = 0;
    for t in tasks {
        if t.await.unwrap() == Outcome::Rejected {
            answered += 1;
        }
    }
    // Only the 5 free tries were settled and answered by the code; the rest were answered
    // `Throttled` (a guess read under a free counter state may have been evaluated, but its
    // result was never revealed, nor its cost different).
    assert_eq!(answered, 5);
}

/// The same wrong code sent 64 times at once (a double submit, a retry storm) is one failure:
/// every copy is answered `Rejected` (the attacker learns nothing it did not know after the
/// first), and the counter takes one failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_wrong_code_in_parallel_is_one_failure() {
    let (mfa, clock) = setup();
    let mfa = Arc::new(mfa);
    let alice = user("alice");
    let (_, secret) = enrolled(&mfa, &clock, &alice).await;
    let guess = wrong(&secret, &clock);
    let barrier = Arc::new(tokio::sync::Barrier::new(64));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (mfa, alice, barrier, guess) = (mfa.clone(), alice.clone(), barrier.clone(), guess.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            mfa.verify_totp(&alice, &guess).await.unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Outcome::Rejected);
    }
    let counter = mfa.store().throttle(&alice, Factor::Totp.into()).await.unwrap();
    assert_eq!(counter.failures, 1, "{counter:?}");
    assert!(counter.last_miss.is_some());
}

/// The last free try, raced by 63 wrong guesses and the right code: exactly one of the 64 is
/// settled. If the right code wins it is accepted and the rest are judged against the cleared
/// counter (so up to 5 more wrong ones are rejected); if a wrong one wins, the right code is
/// throttled like every other latecomer, never accepted on top of it. (The right code is spawned
/// first in even rounds and last in odd ones, where it tends to run first: both cases happen.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_right_code_cannot_overtake_a_counted_failure() {
    let mut correct_won = 0;
    for round in 0..20 {
        let (mfa, clock) = setup();
        let mfa = Arc::new(mfa);
        let alice = user("alice");
        let (_, secret) = enrolled(&mfa, &clock, &alice).await;
        clock.advance(30);
        for _ in 0..4 {
            assert_eq!(
                mfa.verify_totp(&alice, &wrong(&secret, &clock)).await.unwrap(),
                Outcome::Rejected
            );
        }
        let right = code(&secret, &clock, 0);
        let barrier = Arc::new(tokio::sync::Barrier::new(64));
        let mut tasks = Vec::new();
        for i in 0..64 {
            let (mfa, alice, barrier) = (mfa.clone(), alice.clone(), barrier.clone());
            let attempt = if i == [0, 63][round % 2] {
                right.clone()
            } else {
                wrong(&secret, &clock)
            };
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                mfa.verify_totp(&alice, &attempt).await.unwrap()
            }));
        }
        let (mut accepted, mut rejected) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Outcome::Accepted(_) => accepted += 1,
                Outcome::Rejected => rejected += 1,
                Outcome::Throttled { .. } => {}
                other => panic!("round {round}: unexpected {other:?}"),
            }
        }
        if accepted == 1 {
            correct_won += 1;
            // Every rejection came after the success cleared the counter, so each is counted
            // in it: a rejection counted before the success would be missing here.
            let counter = mfa.store().throttle(&alice, Factor::Totp.into()).await.unwrap();
            assert_eq!(
                counter.failures, rejected,
                "round {round}: a failure was counted before the right code was accepted"
            );
            assert!(
                rejected <= 5,
                "round {round}: {rejected} rejected after the right code won"
            );
        } else {
            assert_eq!(
                (accepted, rejected),
                (0, 1),
                "round {round}: the right code got past a counted failure"
            );
            let left = mfa.verify_totp(&alice, &right).await.unwrap();
            assert!(matches!(left, Outcome::Throttled { .. }), "round {round}: {left:?}");
        }
    }
    println!("the right code won {correct_won} of 20 rounds");
}

/// A store that holds every TOTP acceptance until a failure has been counted after the
/// attempt was admitted: it forces the interleaving "admitted, evaluated, a failure counted
/// elsewhere, then the success written" that races only hit now and then.
#[derive(Debug, Default)]
struct LateAcceptStore {
    inner: MemoryStore,
    /// Set once an acceptance is waiting.
    waiting: std::sync::atomic::AtomicBool,
}

impl DeviceStore for LateAcceptStore {
    forward!(DeviceStore but settle_attempt);

    async fn settle_attempt(
        &self,
        user: &UserId,
        attempt: &multifactor::store::Settle,
    ) -> Result<multifactor::store::Settlement, StoreError> {
        if matches!(attempt.hit, Some(multifactor::store::Hit::TotpStep { .. })) {
            self.waiting.store(true, std::sync::atomic::Ordering::SeqCst);
            let mut spins = 0u32;
            while self.inner.throttle(user, Factor::Totp.into()).await? == attempt.admitted {
                spins += 1;
                assert!(spins < 1_000_000, "no failure was counted while the acceptance waited");
                tokio::task::yield_now().await;
            }
        }
        self.inner.settle_attempt(user, attempt).await
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for LateAcceptStore);

/// The right code and a wrong one on the last free try, with the wrong one's failure forced in
/// between the right one's admission and its write: the right code must not be accepted on top
/// of a failure it was not admitted against. It is throttled, like any attempt after the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_admitted_before_a_counted_failure_is_not_written() {
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let mfa = Arc::new(
        Mfa::new(
            LateAcceptStore::default(),
            keys("k1", 1),
            MfaConfig::new("ACME").unwrap(),
        )
        .unwrap()
        .with_clock(clock.clone())
        .with_rng(InsecureSeededRng::new(7)),
    );
    let alice = user("alice");
    let secret = SecretBytes::new((1..=20).collect());
    let uri_secret = multifactor::totp::encode_base32_secret(&secret);
    mfa.import_totp(&alice, uri_secret.expose_secret(), None).await.unwrap();
    for _ in 0..4 {
        assert_eq!(
            mfa.verify_totp(&alice, &wrong(&secret, &clock)).await.unwrap(),
            Outcome::Rejected
        );
    }
    let guess = wrong(&secret, &clock);
    let right = code(&secret, &clock, 0);
    let (m, a) = (mfa.clone(), alice.clone());
    let right_attempt = tokio::spawn(async move { m.verify_totp(&a, &right).await.unwrap() });
    // The right code is admitted (at 4 failures) and reaches its write before the wrong one runs.
    while !mfa.store().waiting.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(!right_attempt.is_finished(), "the right code never reached its write");
        tokio::task::yield_now().await;
    }
    assert_eq!(mfa.verify_totp(&alice, &guess).await.unwrap(), Outcome::Rejected);
    let outcome = right_attempt.await.unwrap();
    assert!(matches!(outcome, Outcome::Throttled { .. }), "{outcome:?}");
    assert_eq!(
        mfa.store()
            .throttle(&alice, Factor::Totp.into())
            .await
            .unwrap()
            .failures,
        5
    );
}

#[cfg(feature = "qr")]
#[tokio::test]
async fn qr_code_is_an_svg() {
    let (mfa, _clock) = setup();
    let e = mfa
        .enroll_totp(&user("alice"), "alice@example.com", None)
        .await
        .unwrap();
    let svg = e.qr_svg().unwrap();
    // One element, to write into an HTML page as it is: no XML declaration before it.
    assert!(
        svg.expose_secret()
            .starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"")
    );
    assert!(svg.expose_secret().trim_end().ends_with("</svg>"));
    assert!(!svg.expose_secret().contains("<?xml"));
    assert!(!format!("{svg:?}").contains("svg"));
}

/// The host need not keep the device id of an enrollment: the user's one pending app is
/// confirmed by the code alone, and only the newest enrollment's code confirms it.
#[tokio::test]
async fn the_pending_enrollment_is_confirmed_by_its_code_alone() {
    let (mfa, clock) = setup();
    let alice = user("alice");
    assert!(matches!(
        mfa.confirm_pending_totp(&alice, "123456").await,
        Err(Error::Misuse(MisuseError::DeviceNotFound))
    ));
    let first = mfa.enroll_totp(&alice, "alice@example.com", None).await.unwrap();
    let first_secret = decode_base32_secret(first.secret_base32.expose_secret()).unwrap();
    let second = mfa.enroll_totp(&alice, "alice@example.com", None).await.unwrap();
    let secret = decode_base32_secret(second.secret_base32.expose_secret()).unwrap();
    // The replaced enrollment's code is a wrong code for the pending one.
    assert_eq!(
        mfa.confirm_pending_totp(&alice, &code(&first_secret, &clock, 0))
            .await
            .unwrap(),
        Outcome::Rejected
    );
    let accepted = mfa
        .confirm_pending_totp(&alice, &code(&secret, &clock, 0))
        .await
        .unwrap();
    let Outcome::Accepted(v) = accepted else {
        panic!("{accepted:?}")
    };
    assert_eq!(v.device(), second.device);
    let listed = mfa.list_devices(&alice).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].confirmed);
    // Nothing is waiting any more.
    clock.advance(30);
    assert!(matches!(
        mfa.confirm_pending_totp(&alice, &code(&secret, &clock, 0)).await,
        Err(Error::Misuse(MisuseError::DeviceNotFound))
    ));
}

/// A backup-code set with no code left is no method: it neither lets the user delete their
/// last real one nor counts for the assurance policy. (Before: a user with TOTP and a spent set
/// could delete TOTP and be left with nothing that works.)
#[tokio::test]
async fn a_spent_backup_set_does_not_keep_the_last_method() {
    let (mfa, clock) = setup();
    let alice = user("alice");
    let (totp, _) = enrolled(&mfa, &clock, &alice).await;
    let set = mfa.generate_backup_codes(&alice, None).await.unwrap();
    for c in &set.codes {
        assert!(
            mfa.verify_backup_code(&alice, c.expose_secret())
                .await
                .unwrap()
                .is_accepted()
        );
    }
    let methods = mfa.list_devices(&alice).await.unwrap();
    let usable: Vec<DeviceKind> = methods.iter().filter(|m| m.is_usable()).map(|m| m.kind).collect();
    assert_eq!(usable, [DeviceKind::Totp]);
    assert!(matches!(
        mfa.delete_device(&alice, totp).await,
        Err(Error::Misuse(MisuseError::LastDevice))
    ));
    // The spent set itself can go.
    mfa.delete_device(&alice, set.device).await.unwrap();
    assert!(matches!(
        mfa.delete_device(&alice, totp).await,
        Err(Error::Misuse(MisuseError::LastDevice))
    ));
}

/// Starts a new enrollment while an older one is being confirmed: the store confirms the older
/// device at the worst moments (right after the service could have listed the devices, and
/// right before the clean-up runs). The confirmed device is kept. (Before: list, then delete
/// each unconfirmed device by id, which deleted a device confirmed in between.)
#[tokio::test]
async fn a_new_enrollment_keeps_a_device_confirmed_meanwhile() {
    let store = ConfirmMeanwhileStore::default();
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let mfa = Mfa::new(store, keys("k1", 1), MfaConfig::new("ACME").unwrap())
        .unwrap()
        .with_clock(clock.clone())
        .with_rng(InsecureSeededRng::new(7));
    let alice = user("alice");
    let first = mfa.enroll_totp(&alice, "a", None).await.unwrap();
    *mfa.store().confirm.lock().unwrap() = Some((alice.clone(), first.device));
    let second = mfa.enroll_totp(&alice, "a", None).await.unwrap();
    let methods = mfa.list_devices(&alice).await.unwrap();
    let mut ids: Vec<_> = methods.iter().map(|m| (m.id, m.confirmed)).collect();
    ids.sort();
    let mut expected = vec![(first.device, true), (second.device, false)];
    expected.sort();
    assert_eq!(ids, expected);
}

/// Confirms a chosen TOTP device (as a concurrent `confirm_totp` would) just after any listing of
/// the user's devices and just before the clean-up of unconfirmed ones.
#[derive(Debug, Default)]
struct ConfirmMeanwhileStore {
    inner: MemoryStore,
    confirm: std::sync::Mutex<Option<(UserId, DeviceId)>>,
}

impl ConfirmMeanwhileStore {
    async fn confirm_now(&self) -> Result<(), StoreError> {
        let target = self.confirm.lock().unwrap().clone();
        if let Some((user, id)) = target {
            let counter = self.inner.throttle(&user, Factor::Totp.into()).await?;
            assert!(
                self.inner
                    .accept_totp_step(&user, id, 1, UnixTime::from_secs(START), counter)
                    .await?
            );
            *self.confirm.lock().unwrap() = None;
        }
        Ok(())
    }
}

impl DeviceStore for ConfirmMeanwhileStore {
    forward!(
        verification_state,
        delete_device_unless_last,
        issue_sent_code,
        key_check,
        find_credential,
        record_webauthn_use,
        settle_attempt,
        insert_device,
        device,
        rename_device,
        delete_device,
        delete_user_devices,
        replace_backup_codes,
        insert_first_backup_codes,
        throttle,
        swap_throttle,
        clear_throttle
    );

    async fn list_devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        let listed = self.inner.list_devices(user).await?;
        self.confirm_now().await?;
        Ok(listed)
    }

    async fn delete_unconfirmed_totp(&self, user: &UserId, keep: DeviceId) -> Result<u64, StoreError> {
        self.confirm_now().await?;
        self.inner.delete_unconfirmed_totp(user, keep).await
    }
}

forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for ConfirmMeanwhileStore);

/// The same secret imported twice would let every code be used once per copy: the second
/// import is refused, and nothing is written.
#[tokio::test]
async fn importing_a_secret_the_user_already_has_is_refused() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    mfa.import_totp(&alice, secret, None).await.unwrap();
    let uri = format!("otpauth://totp/ACME:alice?secret={secret}&issuer=ACME");
    // The same key to HMAC: the secret with zero bytes after it gives the same codes.
    let bytes = multifactor::totp::decode_base32_secret(secret).unwrap();
    let padded = SecretBytes::new([bytes.expose_secret(), &[0, 0][..]].concat());
    let now = UnixTime::from_secs(START);
    assert_eq!(
        multifactor::totp::code_at(&bytes, &TotpParams::default(), now).expose_secret(),
        multifactor::totp::code_at(&padded, &TotpParams::default(), now).expose_secret(),
    );
    let padded = multifactor::totp::encode_base32_secret(&padded)
        .expose_secret()
        .to_owned();
    for again in [secret.to_lowercase(), uri, padded] {
        assert!(matches!(
            mfa.import_totp(&alice, &again, None).await,
            Err(Error::Misuse(MisuseError::DuplicateSecret))
        ));
    }
    assert_eq!(mfa.list_devices(&alice).await.unwrap().len(), 1);
    // Another user may hold the same secret (their own copy), and a different secret is fine.
    mfa.import_totp(&user("bob"), secret, None).await.unwrap();
    mfa.import_totp(&alice, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", None)
        .await
        .unwrap();
}

/// A Google Authenticator export, protobuf written by hand here (not by the decoder's library):
/// each account imports as a confirmed device whose codes are the RFC 6238 codes of its secret.
#[tokio::test]
async fn a_google_authenticator_export_imports_each_account() {
    use base64::Engine as _;
    fn field(tag: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(tag << 3) | 2, u8::try_from(bytes.len()).unwrap()];
        out.extend_from_slice(bytes);
        out
    }
    let account = |secret: &[u8], name: &str, issuer: &str, algorithm: u8| {
        let mut p = field(1, secret);
        p.extend(field(2, name.as_bytes()));
        p.extend(field(3, issuer.as_bytes()));
        p.extend([4 << 3, algorithm, 5 << 3, 1, 6 << 3, 2]);
        field(1, &p)
    };
    let (s1, s2) = ([0x11_u8; 20], [0x22_u8; 32]);
    let mut payload = account(&s1, "GitHub:alice", "GitHub", 1);
    payload.extend(account(&s2, "alice@example.com", "ACME:Corp", 2));
    let data = base64::engine::general_purpose::STANDARD
        .encode(&payload)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let accounts =
        multifactor::totp::TotpImport::parse_migration(&format!("otpauth-migration://offline?data={data}")).unwrap();
    let (mfa, clock) = setup();
    let alice = user("alice");
    let mut ids = Vec::new();
    for entry in &accounts {
        ids.push(
            mfa.import_parsed_totp(&alice, entry.as_ref().unwrap(), None)
                .await
                .unwrap(),
        );
    }
    let devices = mfa.list_devices(&alice).await.unwrap();
    let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["GitHub", "ACME:Corp"]);
    assert!(devices.iter().all(|d| d.confirmed));
    // Each device answers its own secret's codes (SHA1 and SHA256, 6 digits, 30 s).
    let sha256 = TotpParams::new(Algorithm::Sha256, 6, 30).unwrap();
    for (secret, params) in [(&s1[..], TotpParams::default()), (&s2[..], sha256)] {
        let code = code_at(&SecretBytes::new(secret.to_vec()), &params, clock.now());
        let Outcome::Accepted(v) = mfa.verify_totp(&alice, code.expose_secret()).await.unwrap() else {
            panic!("an imported account's code was refused")
        };
        assert!(ids.contains(&v.device()));
    }
    // Importing the same export again adds nothing.
    for entry in &accounts {
        assert!(matches!(
            mfa.import_parsed_totp(&alice, entry.as_ref().unwrap(), None).await,
            Err(Error::Misuse(MisuseError::DuplicateSecret))
        ));
    }
}

/// A django-otp (or authentik) row: the codes of its hex key, and its last accepted step stays
/// spent here, so a code the old system accepted cannot be replayed against the new one.
#[tokio::test]
async fn a_django_otp_row_keeps_its_replay_mark() {
    let (mfa, clock) = setup();
    let alice = user("alice");
    let key = [0x5a_u8; 20];
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let now = TotpParams::default().step_at(clock.now());
    let row = multifactor::import::DjangoOtpTotpRow {
        key: &hex,
        step: 30,
        t0: 0,
        digits: 6,
        last_t: i64::try_from(now).unwrap(),
    };
    let import = multifactor::totp::TotpImport::from_django_otp(&row).unwrap();
    mfa.import_parsed_totp(&alice, &import, Some("From django-otp"))
        .await
        .unwrap();
    let secret = SecretBytes::new(key.to_vec());
    // The step the old system accepted last is spent; the next one is not.
    assert_eq!(
        mfa.verify_totp(&alice, &code(&secret, &clock, 0)).await.unwrap(),
        Outcome::Rejected
    );
    assert!(
        mfa.verify_totp(&alice, &code(&secret, &clock, 1))
            .await
            .unwrap()
            .is_accepted()
    );
}

/// A TOTP confirmation proves an enrollment, not a sign-in: it cannot be remembered.
#[tokio::test]
async fn a_confirmation_is_no_proof_for_a_remembered_browser() {
    let (mfa, clock) = setup();
    let alice = user("alice");
    let e = mfa.enroll_totp(&alice, "a", None).await.unwrap();
    let secret = decode_base32_secret(e.secret_base32.expose_secret()).unwrap();
    let Outcome::Accepted(confirmed) = mfa
        .confirm_totp(&alice, e.device, &code(&secret, &clock, 0))
        .await
        .unwrap()
    else {
        panic!("not confirmed")
    };
    assert!(!confirmed.is_sign_in());
    assert!(matches!(
        mfa.remember_browser(&confirmed).await,
        Err(Error::Misuse(MisuseError::NotASignIn))
    ));
    let Outcome::Accepted(signed_in) = mfa.verify_totp(&alice, &code(&secret, &clock, 1)).await.unwrap() else {
        panic!("not signed in")
    };
    assert!(signed_in.is_sign_in());
    mfa.remember_browser(&signed_in).await.unwrap();
}

// ----- The verification cache -------------------------------------------------------------

type CountedMfa = Mfa<CountingStore<MemoryStore>, ManualClock, InsecureSeededRng>;

fn counted(capacity: usize) -> (CountedMfa, ManualClock) {
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let mut config = MfaConfig::new("ACME").unwrap();
    config.verification_cache = capacity;
    let mfa = Mfa::new(CountingStore::new(Arc::new(MemoryStore::new())), keys("k1", 1), config)
        .unwrap()
        .with_clock(clock.clone())
        .with_rng(InsecureSeededRng::new(42));
    (mfa, clock)
}

/// Signs in with the next step's code and says whether the service read the user's methods
/// from the store (a cache miss) rather than settling from its cache alone.
async fn read_the_store(mfa: &CountedMfa, clock: &ManualClock, who: &UserId, secret: &SecretBytes) -> bool {
    clock.advance(30);
    mfa.store().take_calls();
    let outcome = mfa.verify_totp(who, &code(secret, clock, 0)).await.unwrap();
    assert!(outcome.is_accepted(), "{outcome:?}");
    let calls = mfa.store().take_calls();
    assert_eq!(calls.last(), Some(&"settle_attempt"), "{calls:?}");
    match calls.as_slice() {
        ["settle_attempt"] => false,
        ["verification_state", "settle_attempt"] => true,
        other => panic!("unexpected calls {other:?}"),
    }
}

/// Every change of the user's methods made through this service (and an unlock) drops the
/// user's cached view: the next sign-in reads the store once, the one after it does not.
#[tokio::test]
async fn the_verification_cache_is_dropped_on_every_method_change_made_here() {
    let (mfa, clock) = counted(100);
    let alice = user("alice");
    let (device, secret) = enrolled(&mfa, &clock, &alice).await;
    assert!(
        read_the_store(&mfa, &clock, &alice, &secret).await,
        "a cold cache did not read"
    );
    assert!(
        !read_the_store(&mfa, &clock, &alice, &secret).await,
        "a warm cache read again"
    );
    let other = SecretBytes::new(vec![9; 20]);
    for change in [
        "rename",
        "backup codes",
        "enroll",
        "import",
        "delete",
        "unlock",
        "confirm",
    ] {
        match change {
            "rename" => mfa.rename_device(&alice, device, "Phone").await.unwrap(),
            "backup codes" => drop(mfa.generate_backup_codes(&alice, None).await.unwrap()),
            "enroll" => drop(mfa.enroll_totp(&alice, "a", None).await.unwrap()),
            "import" => {
                let base32 = multifactor::totp::encode_base32_secret(&other);
                mfa.import_totp(&alice, base32.expose_secret(), None).await.unwrap();
            }
            "delete" => {
                let imported = mfa
                    .list_devices(&alice)
                    .await
                    .unwrap()
                    .into_iter()
                    .find(|m| m.kind == DeviceKind::Totp && m.id != device && m.confirmed)
                    .unwrap();
                mfa.delete_device(&alice, imported.id).await.unwrap();
            }
            "unlock" => mfa.unlock(&alice, Factor::Totp).await.unwrap(),
            _ => {
                let pending = mfa.enroll_totp(&alice, "a", None).await.unwrap();
                // Warm again, so that only the confirmation can drop it.
                read_the_store(&mfa, &clock, &alice, &secret).await;
                let s = decode_base32_secret(pending.secret_base32.expose_secret()).unwrap();
                let first = code_at(&s, &TotpParams::default(), clock.now());
                assert!(
                    mfa.confirm_totp(&alice, pending.device, first.expose_secret())
                        .await
                        .unwrap()
                        .is_accepted()
                );
            }
        }
        assert!(
            read_the_store(&mfa, &clock, &alice, &secret).await,
            "the cache survived: {change}"
        );
        assert!(
            !read_the_store(&mfa, &clock, &alice, &secret).await,
            "not warm again after {change}"
        );
    }
    // New keys: the cache is dropped with the keyring, and again by a rotation.
    let mfa = mfa.with_keys(
        keys("k2", 2)
            .with_previous(SealingKey::new(KeyId::new("k1").unwrap(), [1; 32]))
            .unwrap(),
    );
    assert!(
        read_the_store(&mfa, &clock, &alice, &secret).await,
        "the cache survived new keys"
    );
    assert!(!read_the_store(&mfa, &clock, &alice, &secret).await);
    mfa.rotate_keys().await.unwrap();
    assert!(
        read_the_store(&mfa, &clock, &alice, &secret).await,
        "the cache survived a rotation"
    );
    // A reset leaves nothing to verify, and the cache does not pretend otherwise.
    mfa.admin_reset_user(&alice).await.unwrap();
    clock.advance(30);
    let after = mfa.verify_totp(&alice, &code(&secret, &clock, 0)).await;
    assert!(matches!(after, Ok(Outcome::Rejected)), "{after:?}");
}

/// The cache keeps at most its capacity (the oldest entry goes), and 0 turns it off.
#[tokio::test]
async fn the_verification_cache_is_bounded_and_can_be_off() {
    let (mfa, clock) = counted(2);
    let users: Vec<UserId> = ["a", "b", "c"].into_iter().map(user).collect();
    let mut secrets = Vec::new();
    for u in &users {
        secrets.push(enrolled(&mfa, &clock, u).await.1);
    }
    for (u, s) in users.iter().zip(&secrets) {
        assert!(read_the_store(&mfa, &clock, u, s).await);
    }
    // "a" was evicted by "c"; "c" is still kept.
    assert!(!read_the_store(&mfa, &clock, &users[2], &secrets[2]).await);
    assert!(read_the_store(&mfa, &clock, &users[0], &secrets[0]).await);

    let (off, clock) = counted(0);
    let (_, secret) = enrolled(&off, &clock, &users[0]).await;
    for _ in 0..3 {
        assert!(read_the_store(&off, &clock, &users[0], &secret).await);
    }
}

/// A cached counter that refuses is read again before the refusal is answered: after another
/// server (here a second service on the same store) unlocks the user, a sign-in on this one
/// goes through at once instead of waiting out a backoff it only remembers.
#[tokio::test]
async fn a_refusal_from_the_cache_is_checked_against_the_store() {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let make = || {
        Mfa::new(
            CountingStore::new(store.clone()),
            keys("k1", 1),
            MfaConfig::new("ACME").unwrap(),
        )
        .unwrap()
        .with_clock(clock.clone())
        .with_rng(InsecureSeededRng::new(42))
    };
    let (here, elsewhere) = (make(), make());
    let alice = user("alice");
    let (_, secret) = enrolled(&here, &clock, &alice).await;
    clock.advance(30);
    // Free failures, then a backoff: this service's cache now holds a refusing counter.
    let mut last = Outcome::Rejected;
    for _ in 0..6 {
        last = here.verify_totp(&alice, &wrong(&secret, &clock)).await.unwrap();
    }
    assert!(matches!(last, Outcome::Throttled { .. }), "{last:?}");
    elsewhere.unlock(&alice, Factor::Totp).await.unwrap();
    here.store().take_calls();
    let outcome = here.verify_totp(&alice, &code(&secret, &clock, 0)).await.unwrap();
    assert!(outcome.is_accepted(), "a cached refusal was answered: {outcome:?}");
    assert_eq!(
        here.store().take_calls(),
        ["verification_state", "settle_attempt"],
        "the refusing cached counter was not read again"
    );
}

/// A user has at most 5 TOTP devices, and a wrong code checked against `n` of them is charged
/// `n` failures: `n` devices multiply a guess's chance by `n`, so the guessing bound holds
/// whatever `n` is.
#[tokio::test]
async fn totp_devices_are_capped_and_each_one_a_code_is_checked_against_counts() {
    let (mfa, clock) = setup();
    let alice = user("alice");
    let secrets: Vec<SecretBytes> = (1..=5u8).map(|i| SecretBytes::new(vec![i; 20])).collect();
    for s in &secrets {
        let text = multifactor::totp::encode_base32_secret(s);
        mfa.import_totp(&alice, text.expose_secret(), None).await.unwrap();
    }
    assert!(matches!(
        mfa.enroll_totp(&alice, "alice", None).await,
        Err(Error::Misuse(MisuseError::TooManyTotpDevices))
    ));
    let sixth = multifactor::totp::encode_base32_secret(&SecretBytes::new(vec![9; 20]));
    assert!(matches!(
        mfa.import_totp(&alice, sixth.expose_secret(), None).await,
        Err(Error::Misuse(MisuseError::TooManyTotpDevices))
    ));
    let valid: Vec<String> = secrets
        .iter()
        .flat_map(|s| (-1..=1).map(|o| code(s, &clock, o)))
        .collect();
    let guess = (0..1_000_000u32)
        .map(|n| format!("{n:06}"))
        .find(|c| !valid.contains(c))
        .unwrap();
    assert_eq!(mfa.verify_totp(&alice, &guess).await.unwrap(), Outcome::Rejected);
    let counter = mfa.store().throttle(&alice, Factor::Totp.into()).await.unwrap();
    assert_eq!(counter.failures, 5, "{counter:?}");
    // One device: one failure a guess.
    let bob = user("bob");
    let text = multifactor::totp::encode_base32_secret(&secrets[0]);
    mfa.import_totp(&bob, text.expose_secret(), None).await.unwrap();
    assert_eq!(mfa.verify_totp(&bob, &guess).await.unwrap(), Outcome::Rejected);
    assert_eq!(
        mfa.store().throttle(&bob, Factor::Totp.into()).await.unwrap().failures,
        1
    );
}
