//! WebAuthn end to end with the software authenticators of `webauthn-authenticator-rs`: security
//! keys and passkeys, registration and authentication, passwordless lookup, and one test per
//! way a ceremony must fail.
//!
//! The software authenticators cannot store discoverable credentials and never return a user
//! handle, so the test's `Client` plays the part a browser and a platform authenticator play
//! together: it remembers the user handle each credential was created for, picks the
//! credential for an empty allow-list (discovery), and returns the handle. Signatures,
//! counters and flags all come from the software authenticator itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use multifactor::error::{ConfigError, InputError, MisuseError};
use multifactor::store::{DeviceData, WebAuthnUse};
use multifactor::webauthn::{
    AttestationAllowList, AuthenticationResponse, CounterPolicy, PasswordlessCeremony, RegistrationResponse,
    RelyingParty, WebAuthnConfig,
};
use multifactor::{
    DeviceKind, DeviceStore, Error, Factor, InsecureSeededRng, KeyId, Keyring, ManualClock, MemoryStore, Mfa,
    MfaConfig, Outcome, SealingKey, UnixTime, UserId,
};
use multifactor_kit::browser::{Client, ORIGIN, passkey, register, security_key};
use multifactor_kit::service::{START, TestMfa, user};
use serde_json::{Value, json};
use url::Url;
use webauthn_authenticator_rs::AuthenticatorBackend;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::softtoken::SoftToken;

fn rp() -> RelyingParty {
    RelyingParty::new("example.com", "Example", &[ORIGIN]).unwrap()
}

fn setup_with(webauthn: WebAuthnConfig) -> (TestMfa, ManualClock) {
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let mut config = MfaConfig::new("Example").unwrap();
    config.webauthn = Some(webauthn);
    let keys = Keyring::new(SealingKey::new(KeyId::new("k").unwrap(), [1; 32]));
    let mfa = Mfa::new(MemoryStore::new(), keys, config)
        .unwrap()
        .with_clock(clock.clone())
        .with_rng(InsecureSeededRng::new(7));
    (mfa, clock)
}

fn setup() -> (TestMfa, ManualClock) {
    setup_with(WebAuthnConfig::new(rp()))
}

/// Starts a second-factor ceremony and lets the client answer it.
async fn assertion<A: AuthenticatorBackend>(
    mfa: &TestMfa,
    who: &UserId,
    client: &mut Client<A>,
) -> (multifactor::CeremonyId, Value) {
    let (ceremony, options) = mfa.start_webauthn_authentication(who).await.unwrap();
    (ceremony, client.get(&options.to_json_value()).unwrap())
}

fn response(v: &Value) -> AuthenticationResponse {
    AuthenticationResponse::from_json(&v.to_string()).unwrap()
}

fn accepted(outcome: Outcome) -> multifactor::Verified {
    match outcome {
        Outcome::Accepted(v) => v,
        other => panic!("expected acceptance, got {other:?}"),
    }
}

/// Flips one bit of a base64url field of a JSON value.
fn flip(v: &mut Value, pointer: &str, byte: usize) {
    let field = v.pointer_mut(pointer).unwrap();
    let mut bytes = B64.decode(field.as_str().unwrap()).unwrap();
    let i = byte.min(bytes.len() - 1);
    bytes[i] ^= 0x01;
    *field = json!(B64.encode(bytes));
}

async fn stored_sign_count(mfa: &TestMfa, who: &UserId) -> u32 {
    let devices = mfa.store().list_devices(who).await.unwrap();
    match &devices[0].data {
        DeviceData::WebAuthn(w) => w.sign_count,
        _ => panic!("not a WebAuthn record"),
    }
}

// ----- Full ceremonies ------------------------------------------------------------------------

#[tokio::test]
async fn security_key_registers_and_authenticates() {
    let (mfa, clock) = setup();
    let alice = user("alice");
    let mut key = security_key();
    let reg = accepted(register(&mfa, &alice, &mut key, false).await);
    assert_eq!(reg.kind(), DeviceKind::SecurityKey);
    assert_eq!(reg.user_verified(), Some(false));
    let methods = mfa.list_devices(&alice).await.unwrap();
    assert_eq!(methods.len(), 1);
    assert_eq!(
        (methods[0].kind, methods[0].name.as_str()),
        (DeviceKind::SecurityKey, "Security key")
    );
    assert_eq!(methods[0].last_used_at, None);

    clock.advance(60);
    let (ceremony, rsp) = assertion(&mfa, &alice, &mut key).await;
    let v = accepted(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
    );
    assert_eq!(
        (v.device(), v.kind(), v.user_verified()),
        (reg.device(), DeviceKind::SecurityKey, Some(false))
    );
    assert_eq!(v.user(), &alice);
    assert_eq!(stored_sign_count(&mfa, &alice).await, 1);
    assert_eq!(
        mfa.list_devices(&alice).await.unwrap()[0].last_used_at,
        Some(clock.now())
    );

    // And again: the counter advances.
    let (ceremony, rsp) = assertion(&mfa, &alice, &mut key).await;
    accepted(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
    );
    assert_eq!(stored_sign_count(&mfa, &alice).await, 2);

    // The new method can be renamed through device management.
    mfa.rename_device(&alice, reg.device(), "YubiKey 5C").await.unwrap();
    assert_eq!(mfa.list_devices(&alice).await.unwrap()[0].name.as_str(), "YubiKey 5C");
}

#[tokio::test]
async fn passkey_registers_with_user_verification_and_works_as_second_factor() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    let mut pk = passkey();
    let reg = accepted(register(&mfa, &alice, &mut pk, true).await);
    assert_eq!((reg.kind(), reg.user_verified()), (DeviceKind::Passkey, Some(true)));
    assert_eq!(mfa.list_devices(&alice).await.unwrap()[0].name.as_str(), "Passkey");
    let (ceremony, rsp) = assertion(&mfa, &alice, &mut pk).await;
    let v = accepted(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
    );
    assert_eq!((v.kind(), v.user_verified()), (DeviceKind::Passkey, Some(true)));
}

#[tokio::test]
async fn passwordless_finds_the_user_by_credential_and_handle() {
    let (mfa, _clock) = setup();
    let (alice, bob) = (user("alice"), user("bob"));
    let (mut alices, mut bobs) = (passkey(), passkey());
    accepted(register(&mfa, &alice, &mut alices, true).await);
    let bob_reg = accepted(register(&mfa, &bob, &mut bobs, true).await);

    let (ceremony, options) = mfa.start_passwordless(false).await.unwrap();
    let options = options.to_json_value();
    assert_eq!(options["publicKey"]["allowCredentials"], json!([]));
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert!(options.get("mediation").is_none());
    let rsp = bobs.get(&options).unwrap();
    let v = accepted(mfa.finish_passwordless(&ceremony, &response(&rsp)).await.unwrap());
    assert_eq!(
        (v.user(), v.device(), v.user_verified()),
        (&bob, bob_reg.device(), Some(true))
    );

    // Conditional mediation (passkey autofill) is the same ceremony with one more option.
    let (ceremony, options) = mfa.start_passwordless(true).await.unwrap();
    let options = options.to_json_value();
    assert_eq!(options["mediation"], "conditional");
    let rsp = alices.get(&options).unwrap();
    assert_eq!(
        accepted(mfa.finish_passwordless(&ceremony, &response(&rsp)).await.unwrap()).user(),
        &alice
    );
}

/// Someone who knows a passkey's credential id and user handle (neither is secret) but not its
/// private key cannot make the owner's passwordless sign-in wait: each forged assertion is
/// checked before anything is counted against the owner, and nothing holds the owner's real
/// one back, however many came first.
#[tokio::test]
async fn forged_passwordless_assertions_cannot_make_the_owner_wait() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    let mut pk = passkey();
    accepted(register(&mfa, &alice, &mut pk, true).await);
    for _ in 0..100 {
        let (ceremony, options) = mfa.start_passwordless(false).await.unwrap();
        // The passkey's own id and handle, with a signature its key did not make.
        let mut rsp = pk.get(&options.to_json_value()).unwrap();
        flip(&mut rsp, "/response/signature", 12);
        assert_eq!(
            mfa.finish_passwordless(&ceremony, &response(&rsp)).await.unwrap(),
            Outcome::Rejected
        );
    }
    assert_eq!(
        mfa.store()
            .throttle(&alice, Factor::WebAuthn.into())
            .await
            .unwrap()
            .failures,
        100,
        "the forgeries were counted for the audit trail"
    );
    let (ceremony, options) = mfa.start_passwordless(false).await.unwrap();
    let rsp = pk.get(&options.to_json_value()).unwrap();
    let v = accepted(mfa.finish_passwordless(&ceremony, &response(&rsp)).await.unwrap());
    assert_eq!(v.user(), &alice);
}

/// The owner on a new browser while an attacker with the password has TOTP locked and has
/// guessed backup codes all along: the owner's passkey signs in at the first try, without a
/// password and as a second factor, and so does a backup code.
#[tokio::test]
async fn during_an_attack_a_passkey_and_a_backup_code_work_at_the_first_try() {
    let (mfa, clock) = setup();
    let alice = user("alice");
    let mut pk = passkey();
    accepted(register(&mfa, &alice, &mut pk, true).await);
    let e = mfa.enroll_totp(&alice, "alice", None).await.unwrap();
    let secret = multifactor::totp::decode_base32_secret(e.secret_base32.expose_secret()).unwrap();
    let first = multifactor::totp::code_at(&secret, &multifactor::totp::TotpParams::default(), clock.now());
    accepted(mfa.confirm_totp(&alice, e.device, first.expose_secret()).await.unwrap());
    let codes = mfa.generate_backup_codes(&alice, None).await.unwrap();
    // The attacker: TOTP guesses until the lock, and 500 backup-code guesses.
    let mut n = 100_000u32;
    loop {
        n += 1;
        match mfa.verify_totp(&alice, &format!("{n:06}")).await.unwrap() {
            Outcome::Throttled { retry_at } => clock.set(retry_at),
            Outcome::Locked => break,
            _ => {}
        }
    }
    for n in 0..500 {
        let _ = mfa
            .verify_backup_code(&alice, &format!("zzzz-zzzz-{n:05}"))
            .await
            .unwrap();
    }
    // The owner, on a browser the service has never seen.
    let (ceremony, options) = mfa.start_passwordless(false).await.unwrap();
    let rsp = pk.get(&options.to_json_value()).unwrap();
    assert_eq!(
        accepted(mfa.finish_passwordless(&ceremony, &response(&rsp)).await.unwrap()).user(),
        &alice
    );
    let (ceremony, options) = mfa.start_webauthn_authentication(&alice).await.unwrap();
    let rsp = pk.get(&options.to_json_value()).unwrap();
    accepted(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
    );
    accepted(
        mfa.verify_backup_code(&alice, codes.codes[0].expose_secret())
            .await
            .unwrap(),
    );
}

#[tokio::test]
async fn one_second_factor_ceremony_allows_all_of_the_users_credentials() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    let (mut key, mut pk) = (security_key(), passkey());
    let k = accepted(register(&mfa, &alice, &mut key, false).await);
    let p = accepted(register(&mfa, &alice, &mut pk, true).await);
    let (_, options) = mfa.start_webauthn_authentication(&alice).await.unwrap();
    let allowed = options.to_json_value()["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(allowed, 2);
    for (client_is_key, expected) in [(true, k.device()), (false, p.device())] {
        let (ceremony, options) = mfa.start_webauthn_authentication(&alice).await.unwrap();
        let rsp = if client_is_key {
            key.get(&options.to_json_value()).unwrap()
        } else {
            pk.get(&options.to_json_value()).unwrap()
        };
        let v = accepted(
            mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
                .await
                .unwrap(),
        );
        assert_eq!(v.device(), expected);
    }
}

#[tokio::test]
async fn registration_options_say_what_we_promise() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    let mut key = security_key();
    accepted(register(&mfa, &alice, &mut key, false).await);
    let existing = key.handles.keys().next().unwrap().clone();

    let (_, sk) = mfa
        .start_security_key_registration(&alice, "alice", "Alice")
        .await
        .unwrap();
    let sk = sk.to_json_value()["publicKey"].clone();
    assert_eq!(sk["rp"], json!({"id": "example.com", "name": "Example"}));
    assert_eq!(sk["user"]["name"], "alice");
    assert_eq!(sk["user"]["displayName"], "Alice");
    assert_ne!(
        sk["user"]["id"],
        json!(B64.encode("alice")),
        "the user handle is random, not the user id"
    );
    let algs: Vec<i64> = sk["pubKeyCredParams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["alg"].as_i64().unwrap())
        .collect();
    assert_eq!(
        algs,
        vec![-8, -7, -257],
        "EdDSA first (the specification's order), ES256, RS256"
    );
    assert_eq!(
        sk["hints"],
        json!(["security-key"]),
        "a security key is a removable one"
    );
    assert_eq!(sk["attestation"], "none");
    assert_eq!(sk["authenticatorSelection"]["userVerification"], "preferred");
    assert_eq!(sk["authenticatorSelection"]["requireResidentKey"], false);
    assert_eq!(sk["excludeCredentials"][0]["id"], json!(existing));
    assert_eq!(sk["timeout"], 300_000);
    assert!(B64.decode(sk["challenge"].as_str().unwrap()).unwrap().len() >= 16);

    let (_, pk) = mfa.start_passkey_registration(&alice, "alice", "Alice").await.unwrap();
    let pk = pk.to_json_value()["publicKey"].clone();
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(pk["authenticatorSelection"]["requireResidentKey"], true);
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(pk["excludeCredentials"][0]["id"], json!(existing));
    assert_eq!(pk["user"]["id"], sk["user"]["id"], "one user handle per user");
    assert_eq!(
        pk["hints"],
        json!(["client-device", "hybrid"]),
        "a passkey: this device or a phone"
    );
}

/// Authentication hints follow the credentials asked for; passwordless asks for a passkey.
#[tokio::test]
async fn authentication_hints_follow_the_credentials() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    accepted(register(&mfa, &alice, &mut security_key(), false).await);
    let (_, options) = mfa.start_webauthn_authentication(&alice).await.unwrap();
    assert_eq!(options.to_json_value()["publicKey"]["hints"], json!(["security-key"]));
    accepted(register(&mfa, &alice, &mut passkey(), true).await);
    let (_, options) = mfa.start_webauthn_authentication(&alice).await.unwrap();
    assert!(
        options.to_json_value()["publicKey"]
            .get("hints")
            .is_none_or(|h| h.is_null()),
        "mixed: no hint"
    );
    let bob = user("bob");
    accepted(register(&mfa, &bob, &mut passkey(), true).await);
    let (_, options) = mfa.start_webauthn_authentication(&bob).await.unwrap();
    assert_eq!(
        options.to_json_value()["publicKey"]["hints"],
        json!(["client-device", "hybrid"])
    );
    let (_, options) = mfa.start_passwordless(false).await.unwrap();
    assert_eq!(
        options.to_json_value()["publicKey"]["hints"],
        json!(["client-device", "hybrid"])
    );
    // Transports recorded at registration are sent back in allowCredentials.
    let (_, options) = mfa.start_webauthn_authentication(&alice).await.unwrap();
    let allowed = options.to_json_value()["publicKey"]["allowCredentials"].clone();
    assert_eq!(allowed.as_array().map(Vec::len), Some(2));
}

// ----- Each way a ceremony must fail ---------------------------------------------------------

#[tokio::test]
async fn wrong_origin_is_rejected() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    let mut key = security_key();
    accepted(register(&mfa, &alice, &mut key, false).await);
    let mut evil = Client {
        origin: Url::parse("https://evil.example.com").unwrap(),
        ..key
    };
    let (ceremony, rsp) = assertion(&mfa, &alice, &mut evil).await;
    assert_eq!(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
        Outcome::Rejected
    );
    // Registration from the wrong origin too.
    let mut other = security_key().at("https://evil.example.com");
    assert_eq!(register(&mfa, &alice, &mut other, false).await, Outcome::Rejected);
}

#[tokio::test]
async fn wrong_rp_id_is_rejected() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    let mut key = security_key();
    accepted(register(&mfa, &alice, &mut key, false).await);
    let (ceremony, options) = mfa.start_webauthn_authentication(&alice).await.unwrap();
    let mut options = options.to_json_value();
    // The origin's own host is a valid rp id for the client, but not ours.
    options["publicKey"]["rpId"] = json!("auth.example.com");
    let rsp = key.get(&options).unwrap();
    assert_eq!(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
        Outcome::Rejected
    );

    let (ceremony, options) = mfa
        .start_security_key_registration(&alice, "alice", "Alice")
        .await
        .unwrap();
    let mut options = options.to_json_value();
    options["publicKey"]["rp"]["id"] = json!("auth.example.com");
    let mut fresh = security_key();
    let rsp = fresh.create(&options).unwrap();
    let rsp = RegistrationResponse::from_json(&rsp.to_string()).unwrap();
    assert_eq!(
        mfa.finish_webauthn_registration(&alice, ceremony, &rsp, None)
            .await
            .unwrap(),
        Outcome::Rejected
    );
}

#[tokio::test]
async fn replayed_state_is_rejected() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    let mut key = security_key();
    accepted(register(&mfa, &alice, &mut key, false).await);
    let (ceremony, rsp) = assertion(&mfa, &alice, &mut key).await;
    accepted(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
    );
    // The same ceremony again: it was taken out once.
    assert_eq!(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
        Outcome::Rejected
    );
    // The same response in a new ceremony: another challenge.
    let (fresh, _) = mfa.start_webauthn_authentication(&alice).await.unwrap();
    assert_eq!(
        mfa.finish_webauthn_authentication(&alice, fresh, &response(&rsp))
            .await
            .unwrap(),
        Outcome::Rejected
    );
    // A finished registration ceremony cannot be finished twice either.
    let (ceremony, options) = mfa.start_passkey_registration(&alice, "alice", "Alice").await.unwrap();
    let mut pk = passkey();
    let rsp = RegistrationResponse::from_json(&pk.create(&options.to_json_value()).unwrap().to_string()).unwrap();
    accepted(
        mfa.finish_webauthn_registration(&alice, ceremony, &rsp, None)
            .await
            .unwrap(),
    );
    assert_eq!(
        mfa.finish_webauthn_registration(&alice, ceremony, &rsp, None)
            .await
            .unwrap(),
        Outcome::Rejected
    );
}

#[tokio::test]
async fn expired_state_is_rejected() {
    let (mfa, clock) = setup();
    let alice = user("alice");
    let mut key = security_key();
    accepted(register(&mfa, &alice, &mut key, false).await);
    let (ceremony, rsp) = assertion(&mfa, &alice, &mut key).await;
    clock.advance(300);
    assert_eq!(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
        Outcome::Rejected
    );
    // Just inside the lifetime it works.
    let (ceremony, rsp) = assertion(&mfa, &alice, &mut key).await;
    clock.advance(299);
    accepted(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
    );
    // Expired ceremonies are purged.
    mfa.start_webauthn_authentication(&alice).await.unwrap();
    clock.advance(301);
    assert_eq!(mfa.purge_expired_ceremonies().await.unwrap(), 1);
}

#[tokio::test]
async fn state_of_another_user_is_rejected_and_not_burned() {
    let (mfa, _clock) = setup();
    let (alice, bob) = (user("alice"), user("bob"));
    let (mut akey, mut bkey) = (security_key(), security_key());
    accepted(register(&mfa, &alice, &mut akey, false).await);
    accepted(register(&mfa, &bob, &mut bkey, false).await);
    let (ceremony, rsp) = assertion(&mfa, &alice, &mut akey).await;
    assert_eq!(
        mfa.finish_webauthn_authentication(&bob, ceremony, &response(&rsp))
            .await
            .unwrap(),
        Outcome::Rejected
    );
    // A passwordless finish cannot take it either: a second-factor ceremony id is not a
    // passwordless handle.
    assert!(ceremony.to_string().parse::<PasswordlessCeremony>().is_err());
    accepted(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
    );
}

#[tokio::test]
async fn tampered_signature_is_rejected() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    let mut key = security_key();
    accepted(register(&mfa, &alice, &mut key, false).await);
    for byte in [0, 10, 40, 70] {
        let (ceremony, mut rsp) = assertion(&mfa, &alice, &mut key).await;
        flip(&mut rsp, "/response/signature", byte);
        assert_eq!(
            mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
                .await
                .unwrap(),
            Outcome::Rejected,
            "signature byte {byte}"
        );
    }
    // Authenticator data is signed too.
    let (ceremony, mut rsp) = assertion(&mfa, &alice, &mut key).await;
    flip(&mut rsp, "/response/authenticatorData", 33);
    assert_eq!(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
        Outcome::Rejected
    );
}

#[tokio::test]
async fn tampered_client_data_is_rejected() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    let mut key = security_key();
    accepted(register(&mfa, &alice, &mut key, false).await);
    // One bit anywhere in clientDataJSON: the signature covers its hash.
    for byte in [5, 20, 60] {
        let (ceremony, mut rsp) = assertion(&mfa, &alice, &mut key).await;
        flip(&mut rsp, "/response/clientDataJSON", byte);
        assert_eq!(
            mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
                .await
                .unwrap(),
            Outcome::Rejected,
            "byte {byte}"
        );
    }
    // A well-formed rewrite (type changed to registration) is rejected too.
    let (ceremony, mut rsp) = assertion(&mfa, &alice, &mut key).await;
    let cd = B64.decode(rsp["response"]["clientDataJSON"].as_str().unwrap()).unwrap();
    let cd = String::from_utf8(cd)
        .unwrap()
        .replace("webauthn.get", "webauthn.create");
    rsp["response"]["clientDataJSON"] = json!(B64.encode(cd));
    assert_eq!(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
        Outcome::Rejected
    );
}

#[tokio::test]
async fn user_verification_missing_where_required_is_rejected() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    // Passkey registration with an authenticator that does not verify the user: the client is
    // told (by tampering the options) not to ask, so the response lacks the UV flag.
    let (ceremony, options) = mfa.start_passkey_registration(&alice, "alice", "Alice").await.unwrap();
    let mut options = options.to_json_value();
    options["publicKey"]["authenticatorSelection"]["userVerification"] = json!("discouraged");
    let mut no_uv = security_key();
    let rsp = RegistrationResponse::from_json(&no_uv.create(&options).unwrap().to_string()).unwrap();
    assert_eq!(
        mfa.finish_webauthn_registration(&alice, ceremony, &rsp, None)
            .await
            .unwrap(),
        Outcome::Rejected
    );
    assert!(mfa.list_devices(&alice).await.unwrap().is_empty());

    // Passwordless with a registered passkey whose assertion lacks UV.
    let mut pk = passkey();
    accepted(register(&mfa, &alice, &mut pk, true).await);
    let (ceremony, options) = mfa.start_passwordless(false).await.unwrap();
    let mut options = options.to_json_value();
    options["publicKey"]["userVerification"] = json!("discouraged");
    let lazy = Client {
        uv_capable: false,
        ..pk
    };
    let mut lazy = lazy;
    let rsp = lazy.get(&options).unwrap();
    assert_eq!(
        mfa.finish_passwordless(&ceremony, &response(&rsp)).await.unwrap(),
        Outcome::Rejected
    );
    // A passkey (registered with UV) used as second factor without UV: rejected as well.
    let (ceremony, options) = mfa.start_webauthn_authentication(&alice).await.unwrap();
    let mut options = options.to_json_value();
    options["publicKey"]["userVerification"] = json!("discouraged");
    let rsp = lazy.get(&options).unwrap();
    assert_eq!(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
        Outcome::Rejected
    );
}

#[tokio::test]
async fn counter_regression_is_rejected_as_a_possible_clone() {
    let (mfa, clock) = setup();
    let alice = user("alice");
    let mut key = security_key();
    let reg = accepted(register(&mfa, &alice, &mut key, false).await);
    let (ceremony, rsp) = assertion(&mfa, &alice, &mut key).await;
    accepted(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
    );
    assert_eq!(stored_sign_count(&mfa, &alice).await, 1);
    // A clone elsewhere has been used 100 times: the store has seen counter 101.
    let bump = WebAuthnUse {
        sign_count: 101,
        backup_eligible: false,
        backup_state: false,
    };
    assert!(
        mfa.store()
            .record_webauthn_use(&alice, reg.device(), 1, bump, clock.now())
            .await
            .unwrap()
    );
    // This authenticator now says 2.
    let (ceremony, rsp) = assertion(&mfa, &alice, &mut key).await;
    assert_eq!(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
        Outcome::Rejected
    );
    assert_eq!(stored_sign_count(&mfa, &alice).await, 101);
}

#[tokio::test]
async fn counter_regression_can_be_allowed_by_a_danger_policy() {
    let (mfa, clock) = setup_with(WebAuthnConfig::new(rp()).with_counter_policy(CounterPolicy::DangerAllowRegression));
    let alice = user("alice");
    let mut key = security_key();
    let reg = accepted(register(&mfa, &alice, &mut key, false).await);
    let bump = WebAuthnUse {
        sign_count: 50,
        backup_eligible: false,
        backup_state: false,
    };
    assert!(
        mfa.store()
            .record_webauthn_use(&alice, reg.device(), 0, bump, clock.now())
            .await
            .unwrap()
    );
    let (ceremony, rsp) = assertion(&mfa, &alice, &mut key).await;
    accepted(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
    );
    assert_eq!(
        stored_sign_count(&mfa, &alice).await,
        50,
        "the stored counter never goes down"
    );
}

#[tokio::test]
async fn credential_of_another_user_is_rejected() {
    let (mfa, _clock) = setup();
    let (alice, bob) = (user("alice"), user("bob"));
    let (mut akey, mut bkey) = (security_key(), passkey());
    accepted(register(&mfa, &alice, &mut akey, false).await);
    accepted(register(&mfa, &bob, &mut bkey, false).await);
    // Bob's authenticator answers Alice's ceremony with Bob's credential.
    let (ceremony, options) = mfa.start_webauthn_authentication(&alice).await.unwrap();
    let mut options = options.to_json_value();
    let bobs_id = bkey.handles.keys().next().unwrap().clone();
    options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": bobs_id}]);
    let rsp = bkey.get(&options).unwrap();
    assert_eq!(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
        Outcome::Rejected
    );
    // Passwordless with Bob's credential but Alice's user handle: rejected.
    let (_, alice_opts) = mfa.start_passkey_registration(&alice, "alice", "Alice").await.unwrap();
    let alice_handle = alice_opts.to_json_value()["publicKey"]["user"]["id"].clone();
    let (ceremony, options) = mfa.start_passwordless(false).await.unwrap();
    let mut rsp = bkey.get(&options.to_json_value()).unwrap();
    rsp["response"]["userHandle"] = alice_handle;
    assert_eq!(
        mfa.finish_passwordless(&ceremony, &response(&rsp)).await.unwrap(),
        Outcome::Rejected
    );
}

/// Re-encodes a registration response as attestation `none` (no signature over the client
/// data) with fresh client data for another ceremony: the same credential, presented again.
fn reencode_for(rsp: &Value, options: &Value) -> RegistrationResponse {
    let ao = B64
        .decode(rsp["response"]["attestationObject"].as_str().unwrap())
        .unwrap();
    let ao: serde_cbor_2::Value = serde_cbor_2::from_slice(&ao).unwrap();
    let serde_cbor_2::Value::Map(mut map) = ao else {
        panic!("attestation object is not a map")
    };
    map.insert(
        serde_cbor_2::Value::Text("fmt".into()),
        serde_cbor_2::Value::Text("none".into()),
    );
    map.insert(
        serde_cbor_2::Value::Text("attStmt".into()),
        serde_cbor_2::Value::Map(Default::default()),
    );
    let ao = serde_cbor_2::to_vec(&serde_cbor_2::Value::Map(map)).unwrap();
    let client_data = json!({
        "type": "webauthn.create",
        "challenge": options["publicKey"]["challenge"],
        "origin": ORIGIN,
        "crossOrigin": false,
    });
    let mut out = rsp.clone();
    out["response"]["attestationObject"] = json!(B64.encode(ao));
    out["response"]["clientDataJSON"] = json!(B64.encode(client_data.to_string()));
    RegistrationResponse::from_json(&out.to_string()).unwrap()
}

#[tokio::test]
async fn duplicate_registration_is_rejected() {
    let (mfa, _clock) = setup();
    let (alice, bob) = (user("alice"), user("bob"));
    // One credential, created once by a real (software) authenticator and never finished.
    let mut key = security_key();
    let (_, first) = mfa
        .start_security_key_registration(&alice, "alice", "Alice")
        .await
        .unwrap();
    let created = key.create(&first.to_json_value()).unwrap();

    // Control: presented for a fresh ceremony it registers (the re-encoding itself is fine).
    let (c1, o1) = mfa
        .start_security_key_registration(&alice, "alice", "Alice")
        .await
        .unwrap();
    accepted(
        mfa.finish_webauthn_registration(&alice, c1, &reencode_for(&created, &o1.to_json_value()), None)
            .await
            .unwrap(),
    );
    // The same user again: it is in the exclude list, and the engine refuses it.
    let (c2, o2) = mfa
        .start_security_key_registration(&alice, "alice", "Alice")
        .await
        .unwrap();
    assert_eq!(
        o2.to_json_value()["publicKey"]["excludeCredentials"][0]["id"],
        created["rawId"]
    );
    assert_eq!(
        mfa.finish_webauthn_registration(&alice, c2, &reencode_for(&created, &o2.to_json_value()), None)
            .await
            .unwrap(),
        Outcome::Rejected
    );
    // Another user: the credential id is unique across all users.
    let (c3, o3) = mfa.start_security_key_registration(&bob, "bob", "Bob").await.unwrap();
    assert_eq!(
        mfa.finish_webauthn_registration(&bob, c3, &reencode_for(&created, &o3.to_json_value()), None)
            .await
            .unwrap(),
        Outcome::Rejected
    );
    assert_eq!(mfa.list_devices(&alice).await.unwrap().len(), 1);
    assert!(mfa.list_devices(&bob).await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_credential_is_rejected() {
    let (mfa, _clock) = setup();
    let (other, _) = setup();
    let stranger = user("stranger");
    // Registered with another service (another store): unknown here.
    let mut pk = passkey();
    accepted(register(&other, &stranger, &mut pk, true).await);
    let (ceremony, options) = mfa.start_passwordless(false).await.unwrap();
    let rsp = pk.get(&options.to_json_value()).unwrap();
    assert_eq!(
        mfa.finish_passwordless(&ceremony, &response(&rsp)).await.unwrap(),
        Outcome::Rejected
    );
}

#[tokio::test]
async fn a_credential_deleted_after_start_is_rejected() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    let mut key = security_key();
    let reg = accepted(register(&mfa, &alice, &mut key, false).await);
    let mut other = security_key();
    accepted(register(&mfa, &alice, &mut other, false).await);
    let (ceremony, rsp) = assertion(&mfa, &alice, &mut key).await;
    mfa.delete_device(&alice, reg.device()).await.unwrap();
    assert_eq!(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
        Outcome::Rejected
    );
}

/// A signature cannot be guessed: failures of real ceremonies are counted (and audited) but
/// never hold the right assertion back.
#[tokio::test]
async fn webauthn_failures_are_counted_but_never_hold_back() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    let mut key = security_key();
    accepted(register(&mfa, &alice, &mut key, false).await);
    for _ in 0..20 {
        let (ceremony, mut rsp) = assertion(&mfa, &alice, &mut key).await;
        flip(&mut rsp, "/response/signature", 12);
        assert_eq!(
            mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
                .await
                .unwrap(),
            Outcome::Rejected
        );
    }
    assert_eq!(
        mfa.store()
            .throttle(&alice, Factor::WebAuthn.into())
            .await
            .unwrap()
            .failures,
        20,
        "every failure of a real ceremony is counted"
    );
    assert_eq!(
        mfa.throttle_status(&alice, Factor::WebAuthn).await.unwrap(),
        multifactor::throttle::ThrottleDecision::Allowed
    );
    let (ceremony, rsp) = assertion(&mfa, &alice, &mut key).await;
    assert!(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap()
            .is_accepted(),
        "the right assertion was held back"
    );
    assert_eq!(
        mfa.store()
            .throttle(&alice, Factor::Totp.into())
            .await
            .unwrap()
            .failures,
        0,
        "other factors untouched"
    );
}

#[tokio::test]
async fn attestation_allow_list_admits_only_listed_models() {
    use crypto_glue::der::Encode as _;
    let (token, ca) = SoftToken::new(true).unwrap();
    let (_, other_ca) = SoftToken::new(true).unwrap();
    let aaguid = *webauthn_authenticator_rs::softtoken::AAGUID.as_bytes();
    let list = AttestationAllowList::new()
        .allow_der(&ca.to_der().unwrap(), aaguid, "Soft token")
        .unwrap();
    let (mfa, _clock) = setup_with(WebAuthnConfig::new(rp()).with_attestation_allow_list(list));
    let alice = user("alice");
    let (_, options) = mfa
        .start_security_key_registration(&alice, "alice", "Alice")
        .await
        .unwrap();
    assert_eq!(options.to_json_value()["publicKey"]["attestation"], "direct");
    let mut allowed = Client::new(token, true);
    accepted(register(&mfa, &alice, &mut allowed, false).await);

    let list = AttestationAllowList::new()
        .allow_der(&other_ca.to_der().unwrap(), aaguid, "Other")
        .unwrap();
    let (strict, _clock) = setup_with(WebAuthnConfig::new(rp()).with_attestation_allow_list(list));
    let (token, _) = SoftToken::new(true).unwrap();
    let mut unlisted = Client::new(token, true);
    assert_eq!(register(&strict, &alice, &mut unlisted, false).await, Outcome::Rejected);
    // A self-attested software passkey is not on any list.
    assert_eq!(
        register(&strict, &alice, &mut passkey(), false).await,
        Outcome::Rejected
    );
    assert!(matches!(
        AttestationAllowList::new().allow_der(b"not a certificate", aaguid, "x"),
        Err(ConfigError::Attestation(_))
    ));
}

#[tokio::test]
async fn misuse_and_configuration_errors_are_typed() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    assert!(matches!(
        mfa.start_webauthn_authentication(&alice).await,
        Err(Error::Misuse(MisuseError::NoDevice(Factor::WebAuthn)))
    ));
    assert!(matches!(
        mfa.start_passkey_registration(&alice, "", "Alice").await,
        Err(Error::Input(InputError::AccountName))
    ));
    assert!(matches!(
        RegistrationResponse::from_json("{}"),
        Err(InputError::WebAuthnResponse(_))
    ));
    assert!(matches!(
        AuthenticationResponse::from_json(&"x".repeat(70_000)),
        Err(InputError::WebAuthnResponse("larger than 64 KiB"))
    ));
    // A bad name is refused before the ceremony is taken: it can still be finished.
    let mut key = security_key();
    let (ceremony, options) = mfa
        .start_security_key_registration(&alice, "alice", "Alice")
        .await
        .unwrap();
    let rsp = RegistrationResponse::from_json(&key.create(&options.to_json_value()).unwrap().to_string()).unwrap();
    assert!(matches!(
        mfa.finish_webauthn_registration(&alice, ceremony, &rsp, Some("\n"))
            .await,
        Err(Error::Input(InputError::DeviceName))
    ));
    let v = accepted(
        mfa.finish_webauthn_registration(&alice, ceremony, &rsp, Some("Blue key"))
            .await
            .unwrap(),
    );
    assert_eq!(mfa.list_devices(&alice).await.unwrap()[0].id, v.device());

    // Without a relying party, WebAuthn says so.
    let plain = Mfa::new(
        MemoryStore::new(),
        Keyring::new(SealingKey::new(KeyId::new("k").unwrap(), [1; 32])),
        MfaConfig::new("X").unwrap(),
    )
    .unwrap();
    assert!(matches!(
        plain.start_passwordless(false).await,
        Err(Error::Config(ConfigError::WebAuthn(_)))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_ceremony_finished_by_64_concurrent_requests_is_accepted_once() {
    for round in 0..5 {
        let (mfa, _clock) = setup();
        let mfa = Arc::new(mfa);
        let alice = user("alice");
        let mut pk = passkey();
        accepted(register(&mfa, &alice, &mut pk, true).await);
        let (ceremony, options) = mfa.start_passwordless(false).await.unwrap();
        let rsp = response(&pk.get(&options.to_json_value()).unwrap());
        let barrier = Arc::new(tokio::sync::Barrier::new(64));
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let (mfa, rsp, barrier, ceremony) = (mfa.clone(), rsp.clone(), barrier.clone(), ceremony.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                mfa.finish_passwordless(&ceremony, &rsp).await.unwrap()
            }));
        }
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap().is_accepted());
        }
        assert_eq!(wins, 1, "round {round}");
    }
}

/// Finishes with ceremony ids nobody started cost nothing: no charge, no backoff, no lock
/// (assertions cannot be guessed; charging them would only let anyone with a user name keep
/// the user out). The real key still works at once.
#[tokio::test]
async fn garbage_finishes_are_not_charged() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    let mut key = security_key();
    accepted(register(&mfa, &alice, &mut key, false).await);
    let (_, rsp) = assertion(&mfa, &alice, &mut key).await;
    for i in 0..150u8 {
        let ceremony = multifactor::CeremonyId::from_bytes([i; 16]);
        assert_eq!(
            mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
                .await
                .unwrap(),
            Outcome::Rejected
        );
    }
    assert_eq!(
        mfa.store().throttle(&alice, Factor::WebAuthn.into()).await.unwrap(),
        multifactor::store::ThrottleState::default()
    );
    let (ceremony, rsp) = assertion(&mfa, &alice, &mut key).await;
    assert!(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap()
            .is_accepted()
    );
}

/// A security key (registered as a second factor, user verification never required) does not
/// sign anyone in without a password, even when its authenticator returns the right handle.
#[tokio::test]
async fn passwordless_accepts_only_passkeys() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    // A key that can verify the user (a PIN), registered as a security key.
    let mut key = Client::new(SoftPasskey::new(true), true);
    let registered = accepted(register(&mfa, &alice, &mut key, false).await);
    assert_eq!(registered.kind(), DeviceKind::SecurityKey);
    let (ceremony, options) = mfa.start_passwordless(false).await.unwrap();
    let rsp = key.get(&options.to_json_value()).unwrap();
    assert_eq!(
        mfa.finish_passwordless(&ceremony, &response(&rsp)).await.unwrap(),
        Outcome::Rejected
    );
}

/// Registrations prove an enrollment, not a sign-in: no remember-this-browser token for them.
#[tokio::test]
async fn a_registration_is_no_proof_for_a_remembered_browser() {
    let (mfa, _clock) = setup();
    let alice = user("alice");
    let mut pk = passkey();
    let registered = accepted(register(&mfa, &alice, &mut pk, true).await);
    assert!(!registered.is_sign_in());
    assert!(matches!(
        mfa.remember_browser(&registered).await,
        Err(multifactor::Error::Misuse(multifactor::error::MisuseError::NotASignIn))
    ));
    let (ceremony, rsp) = assertion(&mfa, &alice, &mut pk).await;
    let signed_in = accepted(
        mfa.finish_webauthn_authentication(&alice, ceremony, &response(&rsp))
            .await
            .unwrap(),
    );
    assert!(signed_in.is_sign_in());
    mfa.remember_browser(&signed_in).await.unwrap();
}
