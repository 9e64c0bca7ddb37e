//! `SealedSecret::from_bytes` on a blob as a store returns it, then opening it through the
//! service: the blob becomes the sealed secret of user "u"'s confirmed TOTP device and
//! `verify_totp` runs with a wrong and with the right code.
//!
//! Invariants: never panics; a parsed blob re-encodes (`to_bytes`) to the input; the right code
//! is accepted if and only if the blob is exactly the one sealed for this user and device
//! (authenticated encryption: any other blob fails to open); a wrong code never is.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use multifactor::store::{DeviceData, DeviceRecord, SealedSecret, TotpRecord};
use multifactor::totp::TotpParams;
use multifactor::{DeviceName, DeviceStore, Factor, MemoryStore, Outcome, UnixTime, UserId, totp};
use multifactor_fuzz::{FuzzMfa, START, runtime, service, totp_fixture, user};
use tokio::runtime::Runtime;

struct Env {
    rt: Runtime,
    mfa: FuzzMfa<MemoryStore>,
    user: UserId,
    right: String,
    wrong: String,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let fixture = totp_fixture();
        let params = TotpParams::default();
        let now = UnixTime::from_secs(START);
        let right = totp::code_at(&fixture.secret, &params, now).expose_secret().to_owned();
        // A code no step of the window (±1) shows.
        let window: Vec<String> = (params.step_at(now) - 1..=params.step_at(now) + 1)
            .map(|s| {
                totp::code_for_step(&fixture.secret, &params, s)
                    .expose_secret()
                    .to_owned()
            })
            .collect();
        let wrong = (0..1_000_000u32)
            .map(|n| format!("{n:06}"))
            .find(|c| !window.contains(c))
            .expect("a wrong code");
        Env {
            rt: runtime(),
            mfa: service(MemoryStore::new()),
            user: user(),
            right,
            wrong,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(sealed) = SealedSecret::from_bytes(data) else {
        return;
    };
    assert_eq!(sealed.to_bytes(), data, "from_bytes/to_bytes do not round-trip");
    let env = env();
    let fixture = totp_fixture();
    let genuine = data == fixture.sealed_secret.as_slice();
    env.rt.block_on(async {
        let store = env.mfa.store();
        let _ = store.delete_device(&env.user, fixture.device_id).await;
        store
            .insert_device(DeviceRecord {
                id: fixture.device_id,
                user: env.user.clone(),
                name: DeviceName::new("Phone").expect("name"),
                created_at: UnixTime::from_secs(START - 60),
                last_used_at: None,
                confirmed: true,
                data: DeviceData::Totp(TotpRecord {
                    params: TotpParams::default(),
                    sealed_secret: sealed,
                    last_step: None,
                    fingerprint: None,
                }),
            })
            .await
            .expect("insert");
        env.mfa.unlock(&env.user, Factor::Totp).await.expect("unlock");
        let wrong = env.mfa.verify_totp(&env.user, &env.wrong).await;
        assert!(!matches!(wrong, Ok(Outcome::Accepted(_))), "a wrong code was accepted");
        if genuine {
            assert_eq!(wrong.ok(), Some(Outcome::Rejected));
        }
        env.mfa.unlock(&env.user, Factor::Totp).await.expect("unlock");
        let right = env.mfa.verify_totp(&env.user, &env.right).await;
        if genuine {
            assert!(
                matches!(right, Ok(Outcome::Accepted(_))),
                "the genuine blob failed: {right:?}"
            );
        } else {
            assert!(
                !matches!(right, Ok(Outcome::Accepted(_))),
                "a forged blob opened: {data:?}"
            );
        }
    });
});
