//! WebAuthn browser responses: `RegistrationResponse::from_json` and
//! `AuthenticationResponse::from_json` on arbitrary text, and every parsed response fed to the
//! service's finishes:
//!
//! - against fresh ceremonies (`start_passwordless`, `start_webauthn_authentication`,
//!   `start_passkey_registration`): a fuzzed response must never be accepted;
//! - against ceremonies whose stored state is the fixture's (captured between start and finish
//!   with a software passkey), so mutations of the real response reach the signature, origin,
//!   flag and counter checks. Acceptance there is legitimate only for what the authenticator
//!   signed: for an assertion, the same credential, authenticator data and client data bytes
//!   (with the user handle it was registered under, for passwordless); for a registration,
//!   client data of type `webauthn.create` from the relying party's origin carrying the
//!   ceremony's challenge.
//!
//! The stored credential is restored before every input (counter, throttle), so each input
//! meets the same state.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use multifactor::CeremonyStore as _;
use multifactor::store::{CeremonyKind, CeremonyRecord};
use multifactor::webauthn::{AuthenticationResponse, PasswordlessCeremony, RegistrationResponse};
use multifactor::{CeremonyId, DeviceStore, Factor, MemoryStore, Outcome, UnixTime, UserId};
use multifactor_fuzz::{
    FuzzMfa, ORIGIN, START, WebAuthnFixture, bytes_field, runtime, service, user, webauthn_fixture,
};
use serde_json::Value;
use tokio::runtime::Runtime;

struct Env {
    rt: Runtime,
    mfa: FuzzMfa<MemoryStore>,
    user: UserId,
    /// Decoded from the fixture responses.
    passwordless_signed: Signed,
    second_factor_signed: Signed,
    registration_challenge: Vec<u8>,
}

/// What an assertion's signature covers.
#[derive(Debug, PartialEq, Eq)]
struct Signed {
    authenticator_data: Vec<u8>,
    client_data: Vec<u8>,
}

fn signed(json: &str) -> Option<Signed> {
    let v: Value = serde_json::from_str(json).ok()?;
    Some(Signed {
        authenticator_data: bytes_field(v.pointer("/response/authenticatorData")?)?,
        client_data: bytes_field(v.pointer("/response/clientDataJSON")?)?,
    })
}

/// `(type, challenge, origin)` of a response's client data.
fn client_data(json: &str) -> Option<(String, Vec<u8>, String)> {
    let v: Value = serde_json::from_str(json).ok()?;
    let cd = bytes_field(v.pointer("/response/clientDataJSON")?)?;
    let cd: Value = serde_json::from_slice(&cd).ok()?;
    Some((
        cd["type"].as_str()?.to_owned(),
        bytes_field(&cd["challenge"])?,
        cd["origin"].as_str()?.to_owned(),
    ))
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let f = webauthn_fixture();
        let env = Env {
            rt: runtime(),
            mfa: service(MemoryStore::new()),
            user: user(),
            passwordless_signed: signed(&f.passwordless_response).expect("fixture"),
            second_factor_signed: signed(&f.second_factor_response).expect("fixture"),
            registration_challenge: client_data(&f.registration_response).expect("fixture").1,
        };
        env.rt.block_on(self_check(&env, f));
        env
    })
}

/// The fixture's responses are accepted against the fixture's ceremonies: the harness reaches
/// the end of every finish (if not, regenerate the fixtures with seedgen).
async fn self_check(env: &Env, f: &WebAuthnFixture) {
    let mfa = &env.mfa;
    let pwl = AuthenticationResponse::from_json(&f.passwordless_response).expect("fixture");
    let sf = AuthenticationResponse::from_json(&f.second_factor_response).expect("fixture");
    let reg = RegistrationResponse::from_json(&f.registration_response).expect("fixture");
    reset(env, f).await;
    let handle = plant_passwordless(env, f).await;
    let outcome = mfa.finish_passwordless(&handle, &pwl).await;
    assert!(
        matches!(outcome, Ok(Outcome::Accepted(_))),
        "fixture passwordless: {outcome:?}"
    );
    reset(env, f).await;
    let id = plant(env, CeremonyKind::SecondFactor, Some(&env.user), &f.second_factor_state).await;
    let outcome = mfa.finish_webauthn_authentication(&env.user, id, &sf).await;
    assert!(
        matches!(outcome, Ok(Outcome::Accepted(_))),
        "fixture second factor: {outcome:?}"
    );
    reset(env, f).await;
    let id = plant(env, CeremonyKind::Registration, Some(&env.user), &f.registration_state).await;
    let outcome = mfa.finish_webauthn_registration(&env.user, id, &reg, None).await;
    assert!(
        matches!(outcome, Ok(Outcome::Accepted(_))),
        "fixture registration: {outcome:?}"
    );
}

/// The fixed id of the ceremonies with the fixture's state.
const FIXTURE_CEREMONY: CeremonyId = CeremonyId::from_bytes([0xfc; 16]);

async fn plant(env: &Env, kind: CeremonyKind, user: Option<&UserId>, state: &[u8]) -> CeremonyId {
    let store = env.mfa.store();
    let now = UnixTime::from_secs(START);
    for k in [
        CeremonyKind::Registration,
        CeremonyKind::SecondFactor,
        CeremonyKind::Passwordless,
    ] {
        let _ = store.take_ceremony(FIXTURE_CEREMONY, None, k, now).await;
        let _ = store.take_ceremony(FIXTURE_CEREMONY, Some(&env.user), k, now).await;
    }
    store
        .insert_ceremony(CeremonyRecord {
            id: FIXTURE_CEREMONY,
            user: user.cloned(),
            kind,
            expires_at: UnixTime::from_secs(START + 300),
            state: state.to_vec(),
        })
        .await
        .expect("insert ceremony");
    FIXTURE_CEREMONY
}

/// The fixture's passwordless handle, with any used-marker of an earlier accepted finish removed
/// (the handle carries its state; nothing else is stored for it).
async fn plant_passwordless(env: &Env, f: &WebAuthnFixture) -> PasswordlessCeremony {
    let handle: PasswordlessCeremony = f.passwordless_ceremony.parse().expect("fixture handle");
    let now = UnixTime::from_secs(START);
    let _ = env
        .mfa
        .store()
        .take_ceremony(handle.id(), None, CeremonyKind::Passwordless, now)
        .await;
    handle
}

/// The stored passkey as the fixture has it, alone, unthrottled.
async fn reset(env: &Env, f: &WebAuthnFixture) {
    let store = env.mfa.store();
    store.delete_user_devices(&env.user).await.expect("delete");
    store.insert_device(f.record.clone()).await.expect("insert");
    env.mfa.unlock(&env.user, Factor::WebAuthn).await.expect("unlock");
}

fn check_assertion(
    outcome: &Outcome,
    text: &str,
    response: &AuthenticationResponse,
    expected: &Signed,
    f: &WebAuthnFixture,
) {
    if !outcome.is_accepted() {
        return;
    }
    assert_eq!(
        response.credential_id(),
        f.credential_id.as_slice(),
        "accepted another credential id"
    );
    assert_eq!(
        signed(text).as_ref(),
        Some(expected),
        "accepted data the authenticator did not sign: {text}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let registration = RegistrationResponse::from_json(text);
    let authentication = AuthenticationResponse::from_json(text);
    if registration.is_err() && authentication.is_err() {
        return;
    }
    let env = env();
    let f = webauthn_fixture();
    let mfa = &env.mfa;
    env.rt.block_on(async {
        if let Ok(response) = &authentication {
            let _ = response.user_handle();
            // Fresh ceremonies: an unpredictable challenge, so never accepted.
            reset(env, f).await;
            let (handle, _) = mfa.start_passwordless(false).await.expect("start");
            let outcome = mfa.finish_passwordless(&handle, response).await;
            assert!(
                !matches!(outcome, Ok(Outcome::Accepted(_))),
                "fresh passwordless accepted: {text}"
            );
            let (id, _) = mfa.start_webauthn_authentication(&env.user).await.expect("start");
            let outcome = mfa.finish_webauthn_authentication(&env.user, id, response).await;
            assert!(
                !matches!(outcome, Ok(Outcome::Accepted(_))),
                "fresh second factor accepted: {text}"
            );

            // The fixture's ceremonies.
            reset(env, f).await;
            let handle = plant_passwordless(env, f).await;
            if let Ok(outcome) = mfa.finish_passwordless(&handle, response).await {
                check_assertion(&outcome, text, response, &env.passwordless_signed, f);
                if outcome.is_accepted() {
                    assert_eq!(
                        response.user_handle(),
                        Some(f.user_handle.as_slice()),
                        "passwordless without the handle"
                    );
                }
            }
            reset(env, f).await;
            let id = plant(env, CeremonyKind::SecondFactor, Some(&env.user), &f.second_factor_state).await;
            if let Ok(outcome) = mfa.finish_webauthn_authentication(&env.user, id, response).await {
                check_assertion(&outcome, text, response, &env.second_factor_signed, f);
            }
        }
        if let Ok(response) = &registration {
            reset(env, f).await;
            let (id, _) = mfa
                .start_passkey_registration(&env.user, "u", "U")
                .await
                .expect("start");
            let outcome = mfa.finish_webauthn_registration(&env.user, id, response, None).await;
            assert!(
                !matches!(outcome, Ok(Outcome::Accepted(_))),
                "fresh registration accepted: {text}"
            );

            reset(env, f).await;
            let id = plant(env, CeremonyKind::Registration, Some(&env.user), &f.registration_state).await;
            if let Ok(outcome) = mfa.finish_webauthn_registration(&env.user, id, response, None).await
                && outcome.is_accepted()
            {
                let (kind, challenge, origin) =
                    client_data(text).unwrap_or_else(|| panic!("accepted unreadable client data: {text}"));
                assert_eq!(kind, "webauthn.create");
                assert_eq!(challenge, env.registration_challenge, "accepted another challenge");
                let origin = url::Url::parse(&origin).map(|u| u.origin());
                let expected = url::Url::parse(ORIGIN).map(|u| u.origin());
                assert_eq!(origin.ok(), expected.ok(), "accepted another origin: {text}");
            }
        }
    });
});
