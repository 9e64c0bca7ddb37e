//! A refused right code and a wrong code look the same, as a property: for any failure counter
//! the attempt meets when it settles (whether its read saw that counter or an older one), any
//! factor and any time since the last failure, a right code that is refused gets the same
//! answer, and costs the same store calls in the same order, as a wrong code in its place.
//! The conformance check `uniform_settlement` proves it on every store for two fixed counters;
//! this runs the service on the memory store over the whole space.

use std::sync::Arc;

use multifactor::conformance::CountingStore;
use multifactor::store::ThrottleState;
use multifactor::totp::{TotpParams, code_at, decode_base32_secret};
use multifactor::{
    DeviceStore as _, Factor, InsecureSeededRng, ManualClock, MemoryStore, Mfa, MfaConfig, Outcome, UnixTime,
};
use multifactor_kit::service::{keyring, user};
use proptest::prelude::*;

const START: u64 = 1_800_000_000;

/// What one attempt met and got.
#[derive(Debug, PartialEq)]
struct Seen {
    /// The answer, with a retry time relative to now.
    answer: String,
    calls: Vec<&'static str>,
}

/// Enrolls a fresh user, moves their counter of `factor` to `counter`, and presents the right
/// code (or a wrong one): the answer and the store calls of that one attempt. With `stale`, the
/// attempt's read reports the default counter, as if the counter moved just after the read.
async fn attempt(factor: Factor, counter: ThrottleState, stale: bool, right: bool, name: &str) -> Seen {
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let store = CountingStore::new(Arc::new(MemoryStore::new()));
    let mut config = MfaConfig::new("ACME").unwrap();
    config.backup_codes = multifactor::backup_codes::BackupCodeConfig::new(10, 12).unwrap();
    let mfa = Mfa::new(store, keyring("k1", 1), config)
        .unwrap()
        .with_clock(clock.clone())
        .with_rng(InsecureSeededRng::new(7));
    mfa.check_keys().await.unwrap();
    let who = user(name);
    let e = mfa.enroll_totp(&who, "u", None).await.unwrap();
    let secret = decode_base32_secret(e.secret_base32.expose_secret()).unwrap();
    let first = code_at(&secret, &TotpParams::default(), clock.now());
    assert!(
        mfa.confirm_totp(&who, e.device, first.expose_secret())
            .await
            .unwrap()
            .is_accepted()
    );
    let set = mfa.generate_backup_codes(&who, None).await.unwrap();
    clock.advance(30);
    let now = clock.now();
    let code = match (factor, right) {
        (Factor::Totp, true) => code_at(&secret, &TotpParams::default(), now).expose_secret().to_owned(),
        (Factor::Totp, false) => {
            let n: u32 = code_at(&secret, &TotpParams::default(), now)
                .expose_secret()
                .parse()
                .unwrap();
            format!("{:06}", (n + 500_000) % 1_000_000)
        }
        (_, true) => set.codes[0].expose_secret().to_owned(),
        (_, false) => "0000-0000-0000".to_owned(),
    };
    assert!(
        mfa.store()
            .swap_throttle(&who, factor.into(), ThrottleState::default(), counter)
            .await
            .unwrap(),
        "could not set the counter"
    );
    if stale {
        mfa.store().stale_counter_once(ThrottleState::default());
    }
    mfa.store().take_calls();
    let outcome = match factor {
        Factor::Totp => mfa.verify_totp(&who, &code).await,
        _ => mfa.verify_backup_code(&who, &code).await,
    }
    .unwrap();
    let answer = match &outcome {
        Outcome::Throttled { retry_at } => format!("throttled +{}", retry_at.secs_since(now)),
        Outcome::Locked => "locked".to_owned(),
        Outcome::Rejected => "rejected".to_owned(),
        other if other.is_accepted() => "accepted".to_owned(),
        other => format!("{other:?}"),
    };
    Seen {
        answer,
        calls: mfa.store().take_calls(),
    }
}

/// A counter state the attempt may meet (the default policy backs off from the sixth failure
/// and locks at the hundredth): `failures` consecutive failures, the last one
/// `age` seconds before now, and the failure budget spent until `spent` seconds from now (or not).
fn counter(failures: u32, age: u64, spent: Option<u64>) -> ThrottleState {
    let now = UnixTime::from_secs(START + 30);
    ThrottleState {
        failures,
        last_failure_at: (failures > 0).then(|| UnixTime::from_secs(now.as_secs() - age)),
        budget_until: spent.map(|s| now.plus_secs(s)),
        last_miss: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn a_refused_right_code_looks_like_a_wrong_one(
        totp in any::<bool>(),
        failures in prop_oneof![0u32..24, 90u32..110],
        age in 0u64..7_200,
        spent in proptest::option::of(1u64..86_400),
        stale in any::<bool>(),
    ) {
        let factor = if totp { Factor::Totp } else { Factor::BackupCodes };
        let state = counter(failures, age, spent);
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let right = rt.block_on(attempt(factor, state, stale, true, "right"));
        let wrong = rt.block_on(attempt(factor, state, stale, false, "wrong"));
        prop_assert!(wrong.answer != "accepted", "a wrong code was accepted: {wrong:?}");
        if right.answer != "accepted" {
            // Refused: nothing may tell the right code from the wrong one.
            prop_assert_eq!(&right, &wrong, "{:?} under {:?} (stale read: {})", factor, state, stale);
        } else {
            // Admitted: the wrong code was admitted too, and was rejected, not held back.
            prop_assert_eq!(wrong.answer.as_str(), "rejected", "{:?} under {:?}", factor, state);
        }
    }
}
