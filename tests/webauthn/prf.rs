//! The `prf` extension: the options carry the host's salts in WebAuthn's JSON form, a
//! registration records whether the authenticator enabled it, and no output ever reaches the
//! server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use multifactor::DeviceStore as _;
use multifactor::webauthn::{PrfInputs, RegistrationResponse, RelyingParty, WebAuthnConfig};
use multifactor::{KeyId, Keyring, ManualClock, MemoryStore, Mfa, MfaConfig, SealingKey, UnixTime};
use multifactor_kit::browser::{ORIGIN, passkey};
use multifactor_kit::service::{START, TestMfa, user};
use serde_json::json;

fn service() -> TestMfa {
    let mut config = MfaConfig::new("Example").unwrap();
    config.webauthn = Some(WebAuthnConfig::new(
        RelyingParty::new("example.com", "Example", &[ORIGIN]).unwrap(),
    ));
    Mfa::new(
        MemoryStore::new(),
        Keyring::new(SealingKey::new(KeyId::new("k").unwrap(), [1; 32])),
        config,
    )
    .unwrap()
    .with_clock(ManualClock::new(UnixTime::from_secs(START)))
    .with_rng(multifactor::InsecureSeededRng::new(7))
}

#[tokio::test]
async fn options_carry_the_salts_and_registration_records_prf() {
    let mfa = service();
    let alice = user("alice");
    let (ceremony, options) = mfa.start_passkey_registration(&alice, "alice", "Alice").await.unwrap();
    assert!(options.to_json_value()["publicKey"]["extensions"].get("prf").is_none());
    let options = options.with_prf(PrfInputs::new().eval(b"note v1", None));
    let json = options.to_json_value();
    assert_eq!(
        json["publicKey"]["extensions"]["prf"],
        json!({"eval": {"first": "bm90ZSB2MQ"}})
    );

    // The authenticator answers; the browser adds what it says of PRF (unsigned, client-side).
    let mut client = passkey();
    let mut rsp = client.create(&json).unwrap();
    // (The test client names the outputs `extensions`; a browser's `toJSON()`,
    // `clientExtensionResults`.)
    let outputs = if rsp.get("extensions").is_some() {
        "extensions"
    } else {
        "clientExtensionResults"
    };
    rsp[outputs]["prf"] = json!({"enabled": true, "results": {"first": "c2VjcmV0"}});
    let rsp = RegistrationResponse::from_json(&rsp.to_string()).unwrap();
    assert!(
        mfa.finish_webauthn_registration(&alice, ceremony, &rsp, None)
            .await
            .unwrap()
            .is_accepted()
    );
    let device = mfa.list_devices(&alice).await.unwrap().remove(0);
    assert_eq!(device.prf, Some(true));
    // Nothing of an output was kept: the stored record has no trace of it.
    let stored = format!("{:?}", mfa.store().list_devices(&alice).await.unwrap());
    let raw = String::from_utf8_lossy(&match &mfa.store().list_devices(&alice).await.unwrap()[0].data {
        multifactor::store::DeviceData::WebAuthn(w) => w.credential.clone(),
        _ => panic!("not a credential"),
    })
    .into_owned();
    assert!(!raw.contains("c2VjcmV0") && !stored.contains("c2VjcmV0"), "{raw}");

    // Another registration without the browser saying anything: unknown.
    let bob = user("bob");
    let (ceremony, options) = mfa.start_passkey_registration(&bob, "bob", "Bob").await.unwrap();
    let rsp = passkey().create(&options.to_json_value()).unwrap();
    let rsp = RegistrationResponse::from_json(&rsp.to_string()).unwrap();
    assert!(
        mfa.finish_webauthn_registration(&bob, ceremony, &rsp, None)
            .await
            .unwrap()
            .is_accepted()
    );
    assert_eq!(mfa.list_devices(&bob).await.unwrap()[0].prf, None);
}

#[tokio::test]
async fn authentication_salts_go_per_credential_too() {
    let mfa = service();
    let alice = user("alice");
    let (ceremony, options) = mfa.start_passkey_registration(&alice, "alice", "Alice").await.unwrap();
    let rsp = passkey().create(&options.to_json_value()).unwrap();
    let rsp = RegistrationResponse::from_json(&rsp.to_string()).unwrap();
    assert!(
        mfa.finish_webauthn_registration(&alice, ceremony, &rsp, None)
            .await
            .unwrap()
            .is_accepted()
    );
    let (_, options) = mfa.start_webauthn_authentication(&alice).await.unwrap();
    let options = options.with_prf(PrfInputs::new().eval(&[1, 2, 3], Some(&[4, 5, 6])).eval_by_credential(
        &[0xfb, 0xff],
        b"a",
        None,
    ));
    let prf = &options.to_json_value()["publicKey"]["extensions"]["prf"];
    assert_eq!(prf["eval"], json!({"first": "AQID", "second": "BAUG"}));
    assert_eq!(prf["evalByCredential"], json!({"-_8": {"first": "YQ"}}));
    // At registration there is no credential yet: evalByCredential is left out.
    let (_, options) = mfa
        .start_passkey_registration(&user("bob"), "bob", "Bob")
        .await
        .unwrap();
    let options = options.with_prf(PrfInputs::new().eval_by_credential(&[1], b"a", None));
    assert_eq!(options.to_json_value()["publicKey"]["extensions"]["prf"], json!({}));
}
