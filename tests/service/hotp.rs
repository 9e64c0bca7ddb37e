//! Counter-based codes (HOTP, RFC 4226): the RFC's known answers, oathtool's, the look-ahead
//! window, the counter that never goes back, resynchronisation with two codes, what a wrong
//! code is charged, and concurrent verifications of one code.

use std::process::Command;
use std::sync::Arc;

use multifactor::store::DeviceData;
use multifactor::totp::code_for_step;
use multifactor::totp::{Algorithm, TotpConfig, TotpImport, TotpParams};
use multifactor::{DeviceId, DeviceStore as _, Factor, MemoryStore, MfaConfig, Outcome, UserId};
use multifactor_kit::service::{TestMfa, keyring, setup, setup_with, user};

/// RFC 4226 Appendix D: the secret "12345678901234567890" and the codes of counters 0 to 9.
const RFC_SECRET_BASE32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const RFC_CODES: [&str; 10] = [
    "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489",
];

fn params() -> TotpParams {
    TotpParams::hotp(Algorithm::Sha1, 6).unwrap()
}

async fn import_rfc(mfa: &TestMfa, alice: &UserId, counter: u64) -> DeviceId {
    let uri = format!("otpauth://hotp/ACME:alice?secret={RFC_SECRET_BASE32}&issuer=ACME&counter={counter}");
    mfa.import_totp(alice, &uri, None).await.unwrap()
}

fn code(counter: u64) -> String {
    let secret = multifactor::totp::decode_base32_secret(RFC_SECRET_BASE32).unwrap();
    code_for_step(&secret, &params(), counter).expose_secret().to_owned()
}

async fn last_counter(mfa: &TestMfa, alice: &UserId, device: DeviceId) -> Option<u64> {
    match mfa.store().device(alice, device).await.unwrap().unwrap().data {
        DeviceData::Totp(t) => t.last_step,
        other => panic!("not an OTP device: {other:?}"),
    }
}

#[tokio::test]
async fn the_rfc_codes_are_accepted_in_order_and_once() {
    let (mfa, _clock, _) = setup();
    let alice = user("alice");
    let device = import_rfc(&mfa, &alice, 0).await;
    for (counter, c) in RFC_CODES.iter().enumerate() {
        assert_eq!(code(counter as u64), *c, "our code for counter {counter}");
    }
    for c in RFC_CODES {
        let outcome = mfa.verify_totp(&alice, c).await.unwrap();
        assert!(outcome.is_accepted(), "{c}: {outcome:?}");
        // The same code again: spent.
        assert_eq!(mfa.verify_totp(&alice, c).await.unwrap(), Outcome::Rejected);
    }
    assert_eq!(last_counter(&mfa, &alice, device).await, Some(9));
}

/// Codes skipped within the look-ahead window are fine; the counter then never goes back, so
/// the skipped ones are spent too.
#[tokio::test]
async fn the_counter_never_goes_back() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let device = import_rfc(&mfa, &alice, 0).await;
    assert!(mfa.verify_totp(&alice, &code(5)).await.unwrap().is_accepted());
    for earlier in 0..5 {
        assert_eq!(
            mfa.verify_totp(&alice, &code(earlier)).await.unwrap(),
            Outcome::Rejected,
            "counter {earlier} after 5"
        );
    }
    // Five used codes are five failures: past the backoff, the next code works.
    clock.advance(3_600);
    assert!(mfa.verify_totp(&alice, &code(6)).await.unwrap().is_accepted());
    assert_eq!(last_counter(&mfa, &alice, device).await, Some(6));
}

/// With the default look-ahead of 10, the 10 codes after the last accepted one are found and
/// the 11th is not; two consecutive codes bring a device back from far ahead, and the codes
/// before them stay spent.
#[tokio::test]
async fn look_ahead_and_resynchronisation() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    // The old system's next counter was 100: 99 was its last.
    let device = import_rfc(&mfa, &alice, 100).await;
    assert_eq!(last_counter(&mfa, &alice, device).await, Some(99));
    assert_eq!(mfa.verify_totp(&alice, &code(110)).await.unwrap(), Outcome::Rejected);
    assert!(mfa.verify_totp(&alice, &code(109)).await.unwrap().is_accepted());
    // Pressed 500 times without signing in.
    assert_eq!(mfa.verify_totp(&alice, &code(610)).await.unwrap(), Outcome::Rejected);
    // Two codes that are not consecutive, or in the wrong order, do not resynchronise.
    for (a, b) in [(610, 612), (611, 610), (610, 610)] {
        clock.advance(3_600); // past any backoff: these are all charged
        assert_eq!(
            mfa.resync_otp(&alice, device, &code(a), &code(b)).await.unwrap(),
            Outcome::Rejected,
            "{a}, {b}"
        );
    }
    clock.advance(3_600);
    let outcome = mfa.resync_otp(&alice, device, &code(610), &code(611)).await.unwrap();
    assert!(outcome.is_accepted(), "{outcome:?}");
    assert_eq!(last_counter(&mfa, &alice, device).await, Some(611));
    // (Each plain miss is charged 4 of the budget's 20: the used codes are tried, not misses.)
    for spent in [610, 611] {
        clock.advance(3_600);
        assert_eq!(mfa.verify_totp(&alice, &code(spent)).await.unwrap(), Outcome::Rejected);
    }
    clock.advance(3_600);
    assert!(mfa.verify_totp(&alice, &code(612)).await.unwrap().is_accepted());
    // Beyond the resynchronisation distance (1,000 by default): refused.
    let far = 612 + 1_002;
    clock.advance(3_600);
    assert_eq!(
        mfa.resync_otp(&alice, device, &code(far), &code(far + 1))
            .await
            .unwrap(),
        Outcome::Rejected
    );
    // The same pair again after a success: spent.
    let near = 700;
    clock.advance(3_600);
    assert!(
        mfa.resync_otp(&alice, device, &code(near), &code(near + 1))
            .await
            .unwrap()
            .is_accepted()
    );
    assert_eq!(
        mfa.resync_otp(&alice, device, &code(near), &code(near + 1))
            .await
            .unwrap(),
        Outcome::Rejected
    );
}

#[tokio::test]
async fn resynchronising_what_is_no_confirmed_authenticator_is_misuse() {
    let (mfa, _clock, _) = setup();
    let alice = user("alice");
    let set = mfa.generate_backup_codes(&alice, None).await.unwrap();
    assert!(matches!(
        mfa.resync_otp(&alice, set.device, "123456", "234567").await,
        Err(multifactor::Error::Misuse(
            multifactor::error::MisuseError::WrongKind { .. }
        ))
    ));
    let pending = mfa.enroll_hotp(&alice, "alice", None).await.unwrap();
    assert!(matches!(
        mfa.resync_otp(&alice, pending.device, "123456", "234567").await,
        Err(multifactor::Error::Misuse(
            multifactor::error::MisuseError::WrongKind { .. }
        ))
    ));
    let device = import_rfc(&mfa, &alice, 0).await;
    assert!(matches!(
        mfa.resync_otp(&alice, device, "12345", "234567").await,
        Err(multifactor::Error::Input(_))
    ));
}

/// A wrong code against a look-ahead of 10 codes had 10 chances where a time-based device's
/// ±1 window has 3: it is charged as 4 guesses, so the guessing bound is the same.
#[tokio::test]
async fn a_wrong_code_is_charged_for_its_whole_window() {
    let (mfa, _clock, _) = setup();
    let alice = user("alice");
    import_rfc(&mfa, &alice, 0).await;
    let wrong = if code(0) == "000000" { "000001" } else { "000000" };
    assert_eq!(mfa.verify_totp(&alice, wrong).await.unwrap(), Outcome::Rejected);
    let state = mfa.store().throttle(&alice, Factor::Totp.into()).await.unwrap();
    assert_eq!(state.failures, 4);

    // A look-ahead of 3 (a time-based window's worth) is charged as one guess.
    let mut config = MfaConfig::new("ACME").unwrap();
    config.totp = TotpConfig::new("ACME").unwrap().with_look_ahead(3).unwrap();
    let (mfa, _clock, _) = setup_with(MemoryStore::new(), keyring("k1", 1), config);
    import_rfc(&mfa, &alice, 0).await;
    assert_eq!(mfa.verify_totp(&alice, wrong).await.unwrap(), Outcome::Rejected);
    let state = mfa.store().throttle(&alice, Factor::Totp.into()).await.unwrap();
    assert_eq!(state.failures, 1);
    assert!(TotpConfig::new("ACME").unwrap().with_look_ahead(0).is_err());
    assert!(TotpConfig::new("ACME").unwrap().with_look_ahead(51).is_err());
    assert!(TotpConfig::new("ACME").unwrap().with_resync_limit(10_001).is_err());
}

/// Enrollment gives an `otpauth://hotp/` URI at counter 0, and the first code confirms it.
#[tokio::test]
async fn enrollment_is_confirmed_by_the_first_code() {
    let (mfa, _clock, _) = setup();
    let alice = user("alice");
    let enrollment = mfa.enroll_hotp(&alice, "alice@example.com", None).await.unwrap();
    let uri = enrollment.key_uri.expose_secret();
    assert!(uri.starts_with("otpauth://hotp/ACME:alice%40example.com?"), "{uri}");
    assert!(uri.contains("&counter=0") && !uri.contains("period"), "{uri}");
    let import = TotpImport::parse(uri).unwrap();
    assert!(import.params.is_counter_based());
    assert_eq!(import.last_step, None);
    let at = |counter| {
        code_for_step(&import.secret, &import.params, counter)
            .expose_secret()
            .to_owned()
    };
    // Not confirmed yet: no sign-in with it.
    assert_eq!(mfa.verify_totp(&alice, &at(0)).await.unwrap(), Outcome::Rejected);
    assert!(
        mfa.confirm_totp(&alice, enrollment.device, &at(0))
            .await
            .unwrap()
            .is_accepted()
    );
    assert_eq!(mfa.verify_totp(&alice, &at(0)).await.unwrap(), Outcome::Rejected);
    assert!(mfa.verify_totp(&alice, &at(1)).await.unwrap().is_accepted());
    let listed = mfa.list_devices(&alice).await.unwrap();
    assert_eq!(listed[0].name.as_str(), "Authenticator (HOTP)");
    // The same setup again shows the same URI.
    let again = mfa
        .enroll_hotp(&alice, "alice@example.com", Some("Token"))
        .await
        .unwrap();
    assert!(again.key_uri.expose_secret().starts_with("otpauth://hotp/"));
}

/// Key URIs: an `hotp` URI needs its counter; the counter is the next code's.
#[test]
fn key_uris() {
    let base = format!("otpauth://hotp/ACME:alice?secret={RFC_SECRET_BASE32}");
    assert!(TotpImport::parse(&base).is_err(), "a counter is required");
    assert!(TotpImport::parse(&format!("{base}&counter=x")).is_err());
    let i = TotpImport::parse(&format!("{base}&counter=5&digits=8&algorithm=SHA256")).unwrap();
    assert_eq!(i.params, TotpParams::hotp(Algorithm::Sha256, 8).unwrap());
    assert_eq!(i.last_step, Some(4));
    assert!(TotpImport::parse(&format!("otpauth://xotp/ACME:alice?secret={RFC_SECRET_BASE32}")).is_err());
    // A counter a store could not keep (with room for resynchronisation) is refused.
    assert!(TotpImport::parse(&format!("{base}&counter=9223372036854775807")).is_err());
    assert!(TotpImport::parse(&format!("{base}&counter=9223372036854765000")).is_ok());
}

/// Twenty concurrent verifications of one code: exactly one is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_verifications_of_one_code_accept_one() {
    let (mfa, _clock, _) = setup();
    let mfa = Arc::new(mfa);
    let alice = user("alice");
    let device = import_rfc(&mfa, &alice, 0).await;
    // One round: the losers are charged (a code spent by another request may be someone
    // else's), so a second round would meet the backoff.
    for round in 0..1u64 {
        let barrier = Arc::new(tokio::sync::Barrier::new(20));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (mfa, alice, barrier) = (mfa.clone(), alice.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    mfa.verify_totp(&alice, &code(round)).await.unwrap().is_accepted()
                })
            })
            .collect();
        let mut accepted = 0;
        for t in tasks {
            accepted += usize::from(t.await.unwrap());
        }
        assert_eq!(accepted, 1, "round {round}");
    }
    assert_eq!(last_counter(&mfa, &alice, device).await, Some(0));
}

/// The codes `oathtool --hotp` gives for several secrets, lengths and counters are accepted
/// (oathtool's HOTP is SHA-1 only, as RFC 4226 is; the SHA-2 variants share the HMAC core that
/// RFC 6238's vectors check). It must be installed under `CI=true` (`.ci/run` installs it); elsewhere its absence is said.
#[tokio::test]
async fn oathtool_hotp_codes_are_accepted() {
    let Ok(probe) = Command::new("oathtool").arg("--version").output() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "oathtool is not installed, and CI=true requires this check (apt-get install oathtool)"
        );
        eprintln!("SKIPPED oathtool_hotp_codes_are_accepted: oathtool is not installed (apt-get install oathtool)");
        return;
    };
    assert!(probe.status.success());
    let (mfa, _clock, _) = setup();
    let mut checked = 0;
    for (n, (algorithm, digits)) in [(Algorithm::Sha1, 6), (Algorithm::Sha1, 7), (Algorithm::Sha1, 8)]
        .into_iter()
        .enumerate()
    {
        let alice = user(&format!("oath{n}"));
        let secret: Vec<u8> = (0..20).map(|i| (i * 37 + n * 11 + 5) as u8).collect();
        let base32 = multifactor::totp::encode_base32_secret(&multifactor::SecretBytes::new(secret.clone()));
        let start = 1_000 + 77 * n as u64;
        let uri = format!(
            "otpauth://hotp/ACME:oath{n}?secret={}&algorithm={}&digits={digits}&counter={start}",
            base32.expose_secret(),
            algorithm.as_str()
        );
        mfa.import_totp(&alice, &uri, None).await.unwrap();
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        // Consecutive codes, then some skipped within the window.
        for counter in [start, start + 1, start + 2, start + 7, start + 16] {
            let out = Command::new("oathtool")
                .arg("--hotp")
                .arg(format!("--digits={digits}"))
                .arg(format!("--counter={counter}"))
                .arg(&hex)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let theirs = String::from_utf8(out.stdout).unwrap();
            let outcome = mfa.verify_totp(&alice, theirs.trim()).await.unwrap();
            assert!(outcome.is_accepted(), "{algorithm} counter {counter}: {outcome:?}");
            checked += 1;
        }
    }
    assert_eq!(checked, 15);
}
