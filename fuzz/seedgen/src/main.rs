//! Regenerates `fuzz/fixtures/*.json` and the seed inputs in `fuzz/corpus/` that need real
//! cryptography: WebAuthn responses from a software passkey, a sealed TOTP secret.
//!
//! Run from `fuzz/`: `cargo run --manifest-path seedgen/Cargo.toml`. The fuzz targets build the
//! same service (keyring, relying party, user "u") as [`service`] below and load the fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use multifactor::CeremonyStore as _;
use multifactor::store::{CeremonyKind, DeviceData};
use multifactor::webauthn::{RegistrationResponse, RelyingParty, WebAuthnConfig};
use multifactor::{
    DeviceStore, InsecureSeededRng, KeyId, Keyring, ManualClock, MemoryStore, Mfa, MfaConfig, SealingKey, UnixTime,
    UserId,
};
use serde_json::{Value, json};
use url::Url;
use webauthn_authenticator_rs::prelude::WebauthnAuthenticator as _;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{CreationChallengeResponse, RequestChallengeResponse};

const ORIGIN: &str = "https://auth.example.com";
const START: u64 = 1_800_000_000;

type M = Mfa<MemoryStore, ManualClock, InsecureSeededRng>;

fn service() -> M {
    let mut config = MfaConfig::new("Example").unwrap();
    config.webauthn = Some(WebAuthnConfig::new(
        RelyingParty::new("example.com", "Example", &[ORIGIN]).unwrap(),
    ));
    let keys = Keyring::new(SealingKey::new(KeyId::new("k").unwrap(), [1; 32]));
    Mfa::new(MemoryStore::new(), keys, config)
        .unwrap()
        .with_clock(ManualClock::new(UnixTime::from_secs(START)))
        .with_rng(InsecureSeededRng::new(7))
}

/// A passkey that behaves like a platform authenticator: it returns the user handle.
struct Client {
    auth: SoftPasskey,
    handle: Option<String>,
    raw_id: Option<String>,
}

impl Client {
    fn new() -> Self {
        Self {
            auth: SoftPasskey::new(true),
            handle: None,
            raw_id: None,
        }
    }

    fn create(&mut self, options: &Value) -> Value {
        let mut options = options.clone();
        let sel = options.pointer_mut("/publicKey/authenticatorSelection").unwrap();
        sel["requireResidentKey"] = json!(false);
        sel["residentKey"] = json!("discouraged");
        let handle = options["publicKey"]["user"]["id"].as_str().unwrap().to_owned();
        let ccr: CreationChallengeResponse = serde_json::from_value(options).unwrap();
        let rsp = self.auth.do_registration(Url::parse(ORIGIN).unwrap(), ccr).unwrap();
        let rsp = serde_json::to_value(&rsp).unwrap();
        self.handle = Some(handle);
        self.raw_id = Some(rsp["rawId"].as_str().unwrap().to_owned());
        rsp
    }

    fn get(&mut self, options: &Value) -> Value {
        let mut options = options.clone();
        let id = self.raw_id.clone().unwrap();
        options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": id}]);
        options["publicKey"]["userVerification"] = json!("required");
        let rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
        let rsp = self.auth.do_authentication(Url::parse(ORIGIN).unwrap(), rcr).unwrap();
        let mut rsp = serde_json::to_value(&rsp).unwrap();
        rsp["response"]["userHandle"] = json!(self.handle.clone().unwrap());
        rsp
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    println!("wrote {}", path.display());
}

async fn take_state(mfa: &M, id: multifactor::CeremonyId, user: Option<&UserId>, kind: CeremonyKind) -> String {
    let now = UnixTime::from_secs(START);
    let taken = mfa.store().take_ceremony(id, user, kind, now).await.unwrap().unwrap();
    String::from_utf8(taken.state).unwrap()
}

/// The engine state inside a passwordless handle: URL-safe base64 of version (1 byte), id (16),
/// expiry (8), key-id length (1), key id, state, tag (32).
fn passwordless_state(handle: &str) -> String {
    let bytes = B64.decode(handle).unwrap();
    let key_len = usize::from(bytes[25]);
    String::from_utf8(bytes[26 + key_len..bytes.len() - 32].to_vec()).unwrap()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mfa = service();
    let u = UserId::new("u").unwrap();

    // ----- WebAuthn: one registered passkey, and ceremonies captured before their finish.
    let mut stored = Client::new();
    let (ceremony, options) = mfa.start_passkey_registration(&u, "u", "U").await.unwrap();
    let reg_stored = stored.create(&options.to_json_value());
    let outcome = mfa
        .finish_webauthn_registration(
            &u,
            ceremony,
            &RegistrationResponse::from_json(&reg_stored.to_string()).unwrap(),
            None,
        )
        .await
        .unwrap();
    assert!(outcome.is_accepted(), "{outcome:?}");
    let devices = mfa.store().list_devices(&u).await.unwrap();
    let record = &devices[0];
    let DeviceData::WebAuthn(w) = &record.data else {
        panic!("not WebAuthn")
    };

    // A second registration (another passkey), captured: state and response, not finished.
    let mut second = Client::new();
    let (ceremony, options) = mfa.start_passkey_registration(&u, "u", "U").await.unwrap();
    let reg_response = second.create(&options.to_json_value());
    let reg_state = take_state(&mfa, ceremony, Some(&u), CeremonyKind::Registration).await;

    // Passwordless with the stored passkey, captured.
    let (ceremony, options) = mfa.start_passwordless(false).await.unwrap();
    let pwl_response = stored.get(&options.to_json_value());
    let pwl_ceremony = ceremony.to_string();
    let pwl_state = passwordless_state(&pwl_ceremony);

    // Second factor with the stored passkey, captured (the counter moves on: sign count 2).
    let (ceremony, options) = mfa.start_webauthn_authentication(&u).await.unwrap();
    let sf_response = stored.get(&options.to_json_value());
    let sf_state = take_state(&mfa, ceremony, Some(&u), CeremonyKind::SecondFactor).await;

    let fixture = json!({
        "user": u.as_str(),
        "origin": ORIGIN,
        "device_id": record.id.to_string(),
        "name": record.name.as_str(),
        "created_at": record.created_at.as_secs(),
        "credential_id": B64.encode(&w.credential_id),
        "user_handle": B64.encode(&w.user_handle),
        "credential": String::from_utf8(w.credential.clone()).unwrap(),
        "sign_count": w.sign_count,
        "backup_eligible": w.backup_eligible,
        "backup_state": w.backup_state,
        "discoverable": w.discoverable,
        "user_verified": w.user_verified,
        "registration_state": reg_state,
        "registration_response": reg_response,
        "passwordless_state": pwl_state,
        "passwordless_ceremony": pwl_ceremony,
        "passwordless_response": pwl_response,
        "second_factor_state": sf_state,
        "second_factor_response": sf_response,
    });
    write(
        &root.join("fixtures/webauthn.json"),
        serde_json::to_string_pretty(&fixture).unwrap().as_bytes(),
    );
    let seeds = root.join("corpus/webauthn_responses");
    write(&seeds.join("seed-registration"), reg_response.to_string().as_bytes());
    write(
        &seeds.join("seed-registration-stored"),
        reg_stored.to_string().as_bytes(),
    );
    write(&seeds.join("seed-passwordless"), pwl_response.to_string().as_bytes());
    write(&seeds.join("seed-second-factor"), sf_response.to_string().as_bytes());

    // ----- TOTP: an enrolled device's sealed secret.
    let t = UserId::new("u").unwrap();
    let enrollment = mfa.enroll_totp(&t, "u@example.com", None).await.unwrap();
    let device = mfa.store().device(&t, enrollment.device).await.unwrap().unwrap();
    let DeviceData::Totp(totp) = &device.data else {
        panic!("not TOTP")
    };
    let blob = totp.sealed_secret.to_bytes();
    let fixture = json!({
        "user": t.as_str(),
        "device_id": device.id.to_string(),
        "secret_base32": enrollment.secret_base32.expose_secret(),
        "sealed_secret": B64.encode(&blob),
        "key_uri": enrollment.key_uri.expose_secret(),
    });
    write(
        &root.join("fixtures/totp.json"),
        serde_json::to_string_pretty(&fixture).unwrap().as_bytes(),
    );
    write(&root.join("corpus/sealed_blobs/seed-sealed-totp"), &blob);
    write(
        &root.join("corpus/key_uri/seed-enrollment"),
        enrollment.key_uri.expose_secret().as_bytes(),
    );
    write(
        &root.join("corpus/base32_secret/seed-enrollment"),
        enrollment.secret_base32.expose_secret().as_bytes(),
    );
}
