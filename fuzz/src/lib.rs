//! What the fuzz targets share: the service they drive (the same keyring, relying party and
//! user as `seedgen`, which wrote the fixtures) and the fixtures themselves.
//!
//! `fixtures/webauthn.json` holds a passkey registered for user "u" (its stored record) and
//! three ceremonies captured between start and finish (stored state + the authenticator's
//! response); `fixtures/totp.json` holds an enrolled TOTP device's sealed secret and the secret.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use multifactor::store::{DeviceData, DeviceRecord, WebAuthnRecord};
use multifactor::webauthn::{RelyingParty, WebAuthnConfig};
use multifactor::{
    DeviceId, DeviceName, InsecureSeededRng, KeyId, Keyring, ManualClock, Mfa, MfaConfig, SealingKey, Store, UnixTime,
    UserId,
};
use serde_json::Value;

/// The relying party's only origin.
pub const ORIGIN: &str = "https://auth.example.com";
/// The clock of every service (seedgen's too).
pub const START: u64 = 1_800_000_000;

/// The service every target drives.
pub type FuzzMfa<S> = Mfa<S, ManualClock, InsecureSeededRng>;

/// Defaults, issuer "Example", WebAuthn for `example.com` at [`ORIGIN`].
pub fn config() -> MfaConfig {
    let mut config = MfaConfig::new("Example").expect("issuer");
    config.webauthn = Some(WebAuthnConfig::new(
        RelyingParty::new("example.com", "Example", &[ORIGIN]).expect("relying party"),
    ));
    config
}

/// The keyring seedgen sealed the TOTP fixture with.
pub fn keys() -> Keyring {
    Keyring::new(SealingKey::new(KeyId::new("k").expect("key id"), [1; 32]))
}

/// The service on `store`, at [`START`], with a seeded generator.
pub fn service<S: Store>(store: S) -> FuzzMfa<S> {
    Mfa::new(store, keys(), config())
        .expect("service")
        .with_clock(ManualClock::new(UnixTime::from_secs(START)))
        .with_rng(InsecureSeededRng::new(7))
}

/// A current-thread runtime (with the time driver sqlx's pool needs).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The user of every fixture.
pub fn user() -> UserId {
    UserId::new("u").expect("user id")
}

/// Base64 as WebAuthn JSON carries it; the decoders accept url-safe and standard alphabets,
/// padded or not, so the checks do too.
pub fn b64_lenient(text: &str) -> Option<Vec<u8>> {
    [URL_SAFE_NO_PAD, URL_SAFE, STANDARD, STANDARD_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

/// A binary field of a WebAuthn JSON value: base64 text or an array of bytes.
pub fn bytes_field(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::String(s) => b64_lenient(s),
        Value::Array(items) => items
            .iter()
            .map(|x| x.as_u64().and_then(|n| u8::try_from(n).ok()))
            .collect(),
        _ => None,
    }
}

/// The registered passkey and the captured ceremonies.
pub struct WebAuthnFixture {
    /// The stored record of the registered passkey.
    pub record: DeviceRecord,
    /// Its credential id.
    pub credential_id: Vec<u8>,
    /// The user handle it was registered under.
    pub user_handle: Vec<u8>,
    /// The stored credential (webauthn-rs-core's JSON).
    pub credential: Vec<u8>,
    /// Registration (of a second passkey, for "u"): stored state and the response.
    pub registration_state: Vec<u8>,
    /// The response to `registration_state`.
    pub registration_response: String,
    /// Passwordless sign-in with the stored passkey: state and response.
    pub passwordless_state: Vec<u8>,
    /// The same state in the handle the service issued for it (its tag made with [`keys`],
    /// expiring at [`START`] + 300, id `fc…fc`).
    pub passwordless_ceremony: String,
    /// The response to `passwordless_state`.
    pub passwordless_response: String,
    /// Second factor with the stored passkey: state and response.
    pub second_factor_state: Vec<u8>,
    /// The response to `second_factor_state`.
    pub second_factor_response: String,
}

fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("fixture field {key}"))
        .to_owned()
}

fn b64(v: &Value, key: &str) -> Vec<u8> {
    b64_lenient(&text(v, key)).unwrap_or_else(|| panic!("fixture field {key}"))
}

/// `fixtures/webauthn.json`, parsed once.
pub fn webauthn_fixture() -> &'static WebAuthnFixture {
    static FIXTURE: OnceLock<WebAuthnFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let v: Value = serde_json::from_str(include_str!("../fixtures/webauthn.json")).expect("fixture JSON");
        let credential_id = b64(&v, "credential_id");
        let user_handle = b64(&v, "user_handle");
        let credential = text(&v, "credential").into_bytes();
        let flag = |k: &str| v[k].as_bool().expect("fixture flag");
        let record = DeviceRecord {
            id: text(&v, "device_id").parse::<DeviceId>().expect("device id"),
            user: UserId::new(text(&v, "user")).expect("user"),
            name: DeviceName::new(&text(&v, "name")).expect("name"),
            created_at: UnixTime::from_secs(v["created_at"].as_u64().expect("created_at")),
            last_used_at: None,
            confirmed: true,
            data: DeviceData::WebAuthn(WebAuthnRecord {
                credential_id: credential_id.clone(),
                user_handle: user_handle.clone(),
                credential: credential.clone(),
                sign_count: u32::try_from(v["sign_count"].as_u64().expect("sign_count")).expect("sign_count"),
                backup_eligible: flag("backup_eligible"),
                backup_state: flag("backup_state"),
                discoverable: flag("discoverable"),
                user_verified: flag("user_verified"),
                aaguid: None,
            }),
        };
        WebAuthnFixture {
            record,
            credential_id,
            user_handle,
            credential,
            registration_state: text(&v, "registration_state").into_bytes(),
            registration_response: v["registration_response"].to_string(),
            passwordless_state: text(&v, "passwordless_state").into_bytes(),
            passwordless_ceremony: text(&v, "passwordless_ceremony"),
            passwordless_response: v["passwordless_response"].to_string(),
            second_factor_state: text(&v, "second_factor_state").into_bytes(),
            second_factor_response: v["second_factor_response"].to_string(),
        }
    })
}

/// An enrolled TOTP device of user "u": its id, sealed secret and the plain secret.
pub struct TotpFixture {
    /// The device id the secret is sealed to.
    pub device_id: DeviceId,
    /// The blob as a store keeps it.
    pub sealed_secret: Vec<u8>,
    /// The secret the app holds.
    pub secret: multifactor::SecretBytes,
}

/// `fixtures/totp.json`, parsed once.
pub fn totp_fixture() -> &'static TotpFixture {
    static FIXTURE: OnceLock<TotpFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let v: Value = serde_json::from_str(include_str!("../fixtures/totp.json")).expect("fixture JSON");
        TotpFixture {
            device_id: text(&v, "device_id").parse::<DeviceId>().expect("device id"),
            sealed_secret: b64(&v, "sealed_secret"),
            secret: multifactor::totp::decode_base32_secret(&text(&v, "secret_base32")).expect("secret"),
        }
    })
}
