//! Conditional creation (the passkey upgrade after a password sign-in): a registration without
//! user presence is accepted only in a ceremony started as conditional, with unsigned
//! (`none`) attestation; every other ceremony still requires presence.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use multifactor::error::ConfigError;
use multifactor::webauthn::{
    AttestationAllowList, RegistrationOptions, RegistrationResponse, RelyingParty, WebAuthnConfig,
};
use multifactor::{
    CeremonyId, DeviceKind, Error, KeyId, Keyring, ManualClock, MemoryStore, Mfa, MfaConfig, Outcome, SealingKey,
    UnixTime, UserId,
};
use multifactor_kit::browser::{Client, ORIGIN, passkey, security_key};
use multifactor_kit::service::{START, TestMfa, user};
use serde_cbor_2::Value;
use serde_json::Value as Json;
use webauthn_authenticator_rs::AuthenticatorBackend;

fn service(webauthn: WebAuthnConfig) -> TestMfa {
    let mut config = MfaConfig::new("Example").unwrap();
    config.webauthn = Some(webauthn);
    Mfa::new(
        MemoryStore::new(),
        Keyring::new(SealingKey::new(KeyId::new("k").unwrap(), [1; 32])),
        config,
    )
    .unwrap()
    .with_clock(ManualClock::new(UnixTime::from_secs(START)))
    .with_rng(multifactor::InsecureSeededRng::new(7))
}

fn rp() -> WebAuthnConfig {
    WebAuthnConfig::new(RelyingParty::new("example.com", "Example", &[ORIGIN]).unwrap())
}

/// The response as a browser's conditional creation gives it: attestation `none` (nothing
/// signed), and the user-present flag as `present` says.
fn as_conditional(rsp: &mut Json, none: bool, present: bool) {
    let field = &mut rsp["response"]["attestationObject"];
    let bytes = B64.decode(field.as_str().unwrap()).unwrap();
    let Value::Map(mut map) = serde_cbor_2::from_slice::<Value>(&bytes).unwrap() else {
        panic!("not a map");
    };
    if none {
        map.insert(Value::Text("fmt".into()), Value::Text("none".into()));
        map.insert(Value::Text("attStmt".into()), Value::Map(Default::default()));
    }
    if let Some(Value::Bytes(auth)) = map.get_mut(&Value::Text("authData".into())) {
        if present {
            auth[32] |= 0x01;
        } else {
            auth[32] &= !0x01;
        }
    }
    *field = Json::String(B64.encode(serde_cbor_2::to_vec(&Value::Map(map)).unwrap()));
}

/// Lets `client` answer a started registration, rewrites the answer as [`as_conditional`]
/// says, and finishes the ceremony.
async fn finish_as<A: AuthenticatorBackend>(
    mfa: &TestMfa,
    who: &UserId,
    (ceremony, options): (CeremonyId, RegistrationOptions),
    mut client: Client<A>,
    none: bool,
    present: bool,
) -> Outcome {
    let mut rsp = client.create(&options.to_json_value()).unwrap();
    as_conditional(&mut rsp, none, present);
    let rsp = RegistrationResponse::from_json(&rsp.to_string()).unwrap();
    mfa.finish_webauthn_registration(who, ceremony, &rsp, None)
        .await
        .unwrap()
}

#[tokio::test]
async fn presence_is_waived_only_in_a_conditional_ceremony() {
    let mfa = service(rp());
    let alice = user("alice");
    let (ceremony, options) = mfa
        .start_conditional_passkey_registration(&alice, "alice", "Alice")
        .await
        .unwrap();
    let json = options.to_json_value();
    assert_eq!(json["mediation"], "conditional");
    assert_eq!(
        json["publicKey"]["authenticatorSelection"]["userVerification"],
        "preferred"
    );
    let mut client = passkey();
    let mut rsp = client.create(&json).unwrap();
    as_conditional(&mut rsp, true, false);
    let rsp = RegistrationResponse::from_json(&rsp.to_string()).unwrap();
    let Outcome::Accepted(v) = mfa
        .finish_webauthn_registration(&alice, ceremony, &rsp, None)
        .await
        .unwrap()
    else {
        panic!("a conditional creation without presence was refused");
    };
    assert_eq!(v.kind(), DeviceKind::Passkey);

    // The same response shape in an ordinary passkey ceremony: presence is required.
    let bob = user("bob");
    let started = mfa.start_passkey_registration(&bob, "bob", "Bob").await.unwrap();
    assert_eq!(
        finish_as(&mfa, &bob, started, passkey(), true, false).await,
        Outcome::Rejected
    );
    // And in a security key's.
    let started = mfa.start_security_key_registration(&bob, "bob", "Bob").await.unwrap();
    assert_eq!(
        finish_as(&mfa, &bob, started, security_key(), true, false).await,
        Outcome::Rejected
    );
    // With presence, an ordinary ceremony takes the unsigned attestation as ever.
    let started = mfa.start_passkey_registration(&bob, "bob", "Bob").await.unwrap();
    assert!(
        finish_as(&mfa, &bob, started, passkey(), true, true)
            .await
            .is_accepted()
    );
}

#[tokio::test]
async fn a_conditional_ceremony_waives_nothing_else() {
    let mfa = service(rp());
    let alice = user("alice");
    // Signed (packed) attestation without presence: the flag is covered by the signature, so
    // it is not waived, and the response is refused.
    let started = mfa
        .start_conditional_passkey_registration(&alice, "alice", "Alice")
        .await
        .unwrap();
    assert_eq!(
        finish_as(&mfa, &alice, started, passkey(), false, false).await,
        Outcome::Rejected
    );
    // Another origin's response is refused as ever.
    let (ceremony, options) = mfa
        .start_conditional_passkey_registration(&alice, "alice", "Alice")
        .await
        .unwrap();
    let mut rsp = passkey().create(&options.to_json_value()).unwrap();
    as_conditional(&mut rsp, true, false);
    let client_data = B64.decode(rsp["response"]["clientDataJSON"].as_str().unwrap()).unwrap();
    let forged = String::from_utf8(client_data)
        .unwrap()
        .replace(ORIGIN, "https://evil.example");
    rsp["response"]["clientDataJSON"] = Json::String(B64.encode(forged));
    let rsp = RegistrationResponse::from_json(&rsp.to_string()).unwrap();
    assert_eq!(
        mfa.finish_webauthn_registration(&alice, ceremony, &rsp, None)
            .await
            .unwrap(),
        Outcome::Rejected
    );
    // With an attestation allow-list there is nothing a conditional creation could attest.
    let strict = service(rp().with_attestation_allow_list(AttestationAllowList::new()));
    assert!(matches!(
        strict
            .start_conditional_passkey_registration(&alice, "alice", "Alice")
            .await,
        Err(Error::Config(ConfigError::Attestation(_)))
    ));
}
