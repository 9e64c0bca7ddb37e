//! Hostile input in place of a browser's WebAuthn response: arbitrary text, arbitrary JSON,
//! made-up responses aimed deep into the verifier, and real responses from the software
//! authenticators of `webauthn-authenticator-rs` with one random mutation each. Nothing may
//! panic; parsing fails with a typed error; a ceremony is accepted only when the mutation left
//! everything it verifies (and everything it uses to find the credential and the user) unchanged.
//!
//! Each mutation is judged by an oracle that parses the mutated JSON with the same browser-side
//! types (`webauthn-rs-proto`) and compares it with the untouched response:
//!
//! * semantically identical (same parsed value): the ceremony must be accepted (this also
//!   proves the harness produces acceptable responses);
//! * signed data changed (`clientDataJSON`, `authenticatorData`, `signature`; at registration
//!   the client data and the `authData` and attestation statement inside `attestationObject`),
//!   or the credential id `rawId`, or the user handle (passwordless: it must be the user's;
//!   second factor: absent or the user's, WebAuthn §7.2 step 6): never accepted;
//! * only unsigned metadata the verifier does not use changed (`id`, `type`, `extensions`,
//!   `transports`, at registration `rawId`), the ECDSA signature replaced by its twin (r, n - s),
//!   or the attestation statement replaced by format `none` (which a browser may do when no
//!   attestation was asked for): may be accepted.
//!
//! The software authenticators cannot store discoverable credentials, so `Client` (as in
//! `multifactor_kit::browser`) remembers the user handle and plays the browser. The statistics of
//! each ceremony property (mutation, verdict, result) are printed with `--nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD as B64};
use multifactor::error::InputError;
use multifactor::webauthn::{AuthenticationResponse, RegistrationResponse, RelyingParty, WebAuthnConfig};
use multifactor::{
    CeremonyId, Error, Factor, InsecureSeededRng, KeyId, Keyring, ManualClock, MemoryStore, Mfa, MfaConfig, Outcome,
    SealingKey, UnixTime, UserId,
};
use multifactor_kit::browser::{Client, ORIGIN, passkey, security_key};
use multifactor_kit::service::{START, TestMfa, user};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_cbor_2::Value as Cbor;
use serde_json::{Value, json};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{PublicKeyCredential, RegisterPublicKeyCredential};

/// Cases per property that runs ceremonies (each costs a signature and a verification).
const CEREMONY_CASES: u32 = 128;
/// Cases per pure parsing property.
const PARSE_CASES: u32 = 512;

fn config(cases: u32) -> Config {
    Config {
        cases,
        // No regression files: a failure prints the input (and the mutated JSON).
        failure_persistence: None,
        ..Config::default()
    }
}

// ----- Setup (as in tests/webauthn/flows.rs) ---------------------------------------------------------

fn setup() -> TestMfa {
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let mut config = MfaConfig::new("Example").unwrap();
    config.webauthn = Some(WebAuthnConfig::new(
        RelyingParty::new("example.com", "Example", &[ORIGIN]).unwrap(),
    ));
    let keys = Keyring::new(SealingKey::new(KeyId::new("k").unwrap(), [1; 32]));
    Mfa::new(MemoryStore::new(), keys, config)
        .unwrap()
        .with_clock(clock)
        .with_rng(InsecureSeededRng::new(7))
}

async fn start_registration(mfa: &TestMfa, who: &UserId, as_passkey: bool) -> (CeremonyId, Value) {
    let (ceremony, options) = if as_passkey {
        mfa.start_passkey_registration(who, who.as_str(), "Test User").await
    } else {
        mfa.start_security_key_registration(who, who.as_str(), "Test User")
            .await
    }
    .unwrap();
    (ceremony, options.to_json_value())
}

async fn register(mfa: &TestMfa, who: &UserId, client: &mut Client<SoftPasskey>, as_passkey: bool) {
    let (ceremony, options) = start_registration(mfa, who, as_passkey).await;
    let rsp = RegistrationResponse::from_json(&client.create(&options).unwrap().to_string()).unwrap();
    let outcome = mfa
        .finish_webauthn_registration(who, ceremony, &rsp, None)
        .await
        .unwrap();
    assert!(outcome.is_accepted(), "{outcome:?}");
}

/// One service with "alice", who has a security key and a passkey; spare authenticators for
/// registration cases (each registers a fresh user, so the limits never bite).
struct Fixture {
    rt: tokio::runtime::Runtime,
    mfa: TestMfa,
    alice: UserId,
    /// Alice's user handle (one per user, shared by her credentials).
    handle: Vec<u8>,
    /// Credential ids: security key, passkey.
    key_id: Vec<u8>,
    pk_id: Vec<u8>,
    key: RefCell<Client<SoftPasskey>>,
    pk: RefCell<Client<SoftPasskey>>,
    reg_key: RefCell<Client<SoftPasskey>>,
    reg_pk: RefCell<Client<SoftPasskey>>,
    next_user: Cell<u64>,
    /// (ceremony, mutation kind, verdict, result) -> count, printed at the end.
    stats: RefCell<BTreeMap<String, usize>>,
}

impl Fixture {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mfa = setup();
        let alice = user("alice");
        let (mut key, mut pk) = (security_key(), passkey());
        rt.block_on(async {
            register(&mfa, &alice, &mut key, false).await;
            register(&mfa, &alice, &mut pk, true).await;
        });
        let (key_id, handle) = key.handles.iter().next().unwrap();
        let (pk_id, pk_handle) = pk.handles.iter().next().unwrap();
        assert_eq!(handle, pk_handle, "one user handle per user");
        let (key_id, pk_id, handle) = (
            B64.decode(key_id).unwrap(),
            B64.decode(pk_id).unwrap(),
            B64.decode(handle).unwrap(),
        );
        Self {
            rt,
            mfa,
            alice,
            handle,
            key_id,
            pk_id,
            key: RefCell::new(key),
            pk: RefCell::new(pk),
            reg_key: RefCell::new(security_key()),
            reg_pk: RefCell::new(passkey()),
            next_user: Cell::new(0),
            stats: RefCell::new(BTreeMap::new()),
        }
    }

    fn count(&self, line: String) {
        *self.stats.borrow_mut().entry(line).or_default() += 1;
    }

    fn print_stats(&self, test: &str) {
        eprintln!("--- {test}: (ceremony, mutation, verdict, result) -> cases");
        for (line, n) in self.stats.borrow().iter() {
            eprintln!("{n:>5}  {line}");
        }
    }

    fn fresh_user(&self) -> UserId {
        let n = self.next_user.get();
        self.next_user.set(n + 1);
        user(&format!("newcomer-{n}"))
    }
}

// ----- Strategies for arbitrary JSON --------------------------------------------------------

/// The field names of both responses (and of the client data and extensions), to reach deeper
/// than "missing field".
const FIELD_NAMES: &[&str] = &[
    "id",
    "rawId",
    "type",
    "response",
    "clientDataJSON",
    "attestationObject",
    "authenticatorData",
    "signature",
    "userHandle",
    "transports",
    "extensions",
    "clientExtensionResults",
    "authenticatorAttachment",
    "appid",
    "credProps",
    "rk",
    "hmacGetSecret",
    "hmac_get_secret",
    "challenge",
    "origin",
    "crossOrigin",
    "publicKey",
];

/// Base64 text of random bytes: mostly the expected unpadded base64url, sometimes padded or
/// with the standard alphabet, sometimes just base64-ish characters.
fn b64_string() -> BoxedStrategy<String> {
    prop_oneof![
        6 => vec(any::<u8>(), 0..96).prop_map(|b| B64.encode(b)),
        1 => vec(any::<u8>(), 0..48).prop_map(|b| URL_SAFE.encode(b)),
        1 => vec(any::<u8>(), 0..48).prop_map(|b| STANDARD.encode(b)),
        1 => "[A-Za-z0-9_+/=-]{0,40}",
    ]
    .boxed()
}

fn json_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,24}".prop_map(Value::from),
        b64_string().prop_map(Value::from),
        select(FIELD_NAMES).prop_map(Value::from),
        select(
            &[
                "public-key",
                "webauthn.get",
                "webauthn.create",
                "usb",
                "internal",
                ORIGIN
            ][..]
        )
        .prop_map(Value::from),
    ]
    .boxed()
}

fn json_key() -> BoxedStrategy<String> {
    prop_oneof![3 => select(FIELD_NAMES).prop_map(String::from), 1 => ".{0,10}"].boxed()
}

/// Arbitrary JSON: null, booleans, numbers, strings, and nested arrays and objects (whose keys
/// are often the real field names).
fn json_value() -> BoxedStrategy<Value> {
    json_leaf()
        .prop_recursive(5, 96, 8, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..8).prop_map(Value::Array),
                vec((json_key(), inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
        .boxed()
}

/// A value for one of the binary fields: usually base64 of random bytes, sometimes base64 of
/// JSON or CBOR (so the inner parsers get input too), sometimes any JSON.
fn binary_field() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => b64_string().prop_map(Value::from),
        1 => json_value().prop_map(|v| Value::from(B64.encode(v.to_string()))),
        1 => json_value().prop_map(|v| Value::from(B64.encode(serde_cbor_2::to_vec(&v).unwrap()))),
        1 => json_value(),
    ]
    .boxed()
}

/// Something shaped like a response, every field optional, every value random.
fn shaped_response() -> BoxedStrategy<Value> {
    let inner = (
        prop::option::weighted(0.8, binary_field()),
        prop::option::weighted(0.5, binary_field()),
        prop::option::weighted(0.5, binary_field()),
        prop::option::weighted(0.5, binary_field()),
        prop::option::weighted(0.3, binary_field()),
        prop::option::weighted(0.2, json_value()),
    )
        .prop_map(|(cd, ao, ad, sig, uh, tr)| {
            let mut m = serde_json::Map::new();
            for (k, v) in [
                ("clientDataJSON", cd),
                ("attestationObject", ao),
                ("authenticatorData", ad),
                ("signature", sig),
                ("userHandle", uh),
                ("transports", tr),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            Value::Object(m)
        });
    (
        prop::option::weighted(
            0.9,
            prop_oneof![3 => b64_string().prop_map(Value::from), 1 => json_value()],
        ),
        prop::option::weighted(0.9, binary_field()),
        prop::option::weighted(0.9, prop_oneof![3 => Just(json!("public-key")), 1 => json_value()]),
        prop::option::weighted(0.95, prop_oneof![5 => inner, 1 => json_value()]),
        prop::option::weighted(0.3, json_value()),
        prop::option::weighted(0.1, json_value()),
    )
        .prop_map(|(id, raw, ty, rsp, ext, cer)| {
            let mut m = serde_json::Map::new();
            for (k, v) in [
                ("id", id),
                ("rawId", raw),
                ("type", ty),
                ("response", rsp),
                ("extensions", ext),
                ("clientExtensionResults", cer),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            Value::Object(m)
        })
        .boxed()
}

/// Text made of JSON tokens and the real field names, mostly not JSON at all.
fn json_ish_text() -> BoxedStrategy<String> {
    let token = prop_oneof![
        4 => select(
            &[
                "{", "}", "[", "]", ",", ":", "\"", "\\", " ", "\n", "null", "true", "false", "0", "-1", "1.5e308",
                "1e999", "-0", "18446744073709551616", "\"\"", "\"AAAA\"", "\"public-key\"", "\\u0000", "\\ud800",
                "\"\\uDFFF\"", "\u{feff}", "\u{0}",
            ][..]
        )
        .prop_map(String::from),
        2 => select(FIELD_NAMES).prop_map(|f| format!("\"{f}\"")),
        1 => b64_string().prop_map(|s| format!("\"{s}\"")),
        1 => "[ -~]{0,8}",
    ];
    vec(token, 0..300).prop_map(|t| t.concat()).boxed()
}

/// Asserts what every parse must satisfy, and that text and value parsing agree.
fn check_parse<T>(result: Result<T, InputError>) -> Result<Option<T>, TestCaseError> {
    match result {
        Ok(t) => Ok(Some(t)),
        Err(InputError::WebAuthnResponse(_)) => Ok(None),
        Err(other) => Err(TestCaseError::fail(format!("untyped error {other:?}"))),
    }
}

// ----- 1. Arbitrary text ----------------------------------------------------------------------

proptest! {
    #![proptest_config(config(PARSE_CASES))]

    #[test]
    fn arbitrary_text_is_a_typed_error(s in ".{0,2000}") {
        check_parse(RegistrationResponse::from_json(&s))?;
        check_parse(AuthenticationResponse::from_json(&s))?;
    }

    #[test]
    fn json_ish_text_is_a_typed_error_or_a_response(s in json_ish_text()) {
        let reg = check_parse(RegistrationResponse::from_json(&s))?;
        let auth = check_parse(AuthenticationResponse::from_json(&s))?;
        // Whatever parses as text parses as a value too.
        if let Ok(v) = serde_json::from_str::<Value>(&s) {
            prop_assert_eq!(reg.is_some(), RegistrationResponse::from_json_value(v.clone()).is_ok());
            prop_assert_eq!(auth.is_some(), AuthenticationResponse::from_json_value(v).is_ok());
        } else {
            prop_assert!(reg.is_none() && auth.is_none());
        }
    }

    // ----- 2. Arbitrary JSON values ----------------------------------------------------------

    #[test]
    fn arbitrary_json_values_are_typed_errors(v in json_value()) {
        parse_value_both_ways(&v)?;
    }

    #[test]
    fn response_shaped_values_are_typed_errors_or_responses(v in shaped_response()) {
        parse_value_both_ways(&v)?;
    }
}

/// `from_json_value` and `from_json` of the same value: typed errors, and the same answer.
fn parse_value_both_ways(
    v: &Value,
) -> Result<(Option<RegistrationResponse>, Option<AuthenticationResponse>), TestCaseError> {
    let text = v.to_string();
    let reg = check_parse(RegistrationResponse::from_json_value(v.clone()))?;
    let auth = check_parse(AuthenticationResponse::from_json_value(v.clone()))?;
    let reg_text = check_parse(RegistrationResponse::from_json(&text))?;
    let auth_text = check_parse(AuthenticationResponse::from_json(&text))?;
    prop_assert_eq!(
        reg.is_some(),
        reg_text.is_some(),
        "registration: value vs text on {}",
        text
    );
    prop_assert_eq!(
        auth.is_some(),
        auth_text.is_some(),
        "authentication: value vs text on {}",
        text
    );
    Ok((reg, auth))
}

// ----- 2b. Plausible forgeries through every ceremony -----------------------------------------

/// Placeholders in a client data template for the challenge and the type of the ceremony at hand.
const CHALLENGE: &str = "<challenge of the ceremony>";
const TYPE: &str = "<type of the ceremony>";

/// Whose credential id a forgery claims.
#[derive(Debug, Clone)]
enum CredentialPick {
    Random(Vec<u8>),
    SecurityKey,
    Passkey,
}

/// What user handle an assertion carries.
#[derive(Debug, Clone)]
enum HandlePick {
    Absent,
    Alice,
    Random(Vec<u8>),
}

/// A response made up from scratch, well-formed enough to get past the JSON and into the
/// verifier: often the right challenge, origin, RP id hash, credential id and user handle,
/// with random flags, counters, CBOR, COSE keys, attestation statements and signatures.
#[derive(Debug, Clone)]
struct Forgery {
    credential: CredentialPick,
    type_: Value,
    client_data: Value,
    auth_data: Vec<u8>,
    attestation: Cbor,
    signature: Vec<u8>,
    handle: HandlePick,
    extensions: Option<Value>,
    register_passkey: bool,
}

impl Forgery {
    fn raw_id(&self, fx: &Fixture) -> Vec<u8> {
        match &self.credential {
            CredentialPick::Random(id) => id.clone(),
            CredentialPick::SecurityKey => fx.key_id.clone(),
            CredentialPick::Passkey => fx.pk_id.clone(),
        }
    }

    fn client_data(&self, challenge: &str, type_: &str) -> String {
        let mut cd = self.client_data.clone();
        if cd["challenge"] == CHALLENGE {
            cd["challenge"] = Value::from(challenge);
        }
        if cd["type"] == TYPE {
            cd["type"] = Value::from(type_);
        }
        cd.to_string()
    }

    fn envelope(&self, fx: &Fixture, response: Value) -> Value {
        let raw_id = B64.encode(self.raw_id(fx));
        let mut v = json!({"id": raw_id, "rawId": raw_id, "type": self.type_, "response": response});
        if let Some(ext) = &self.extensions {
            v["extensions"] = ext.clone();
        }
        v
    }

    fn assertion(&self, fx: &Fixture, challenge: &str) -> Value {
        let mut response = json!({
            "clientDataJSON": B64.encode(self.client_data(challenge, "webauthn.get")),
            "authenticatorData": B64.encode(&self.auth_data),
            "signature": B64.encode(&self.signature),
        });
        match &self.handle {
            HandlePick::Absent => {}
            HandlePick::Alice => response["userHandle"] = Value::from(B64.encode(&fx.handle)),
            HandlePick::Random(h) => response["userHandle"] = Value::from(B64.encode(h)),
        }
        self.envelope(fx, response)
    }

    fn registration(&self, fx: &Fixture, challenge: &str) -> Value {
        let response = json!({
            "clientDataJSON": B64.encode(self.client_data(challenge, "webauthn.create")),
            "attestationObject": B64.encode(serde_cbor_2::to_vec(&self.attestation).unwrap()),
        });
        self.envelope(fx, response)
    }

    /// The client data would pass (type, challenge, origin, not cross-origin).
    fn client_data_passes(&self) -> bool {
        let cd = &self.client_data;
        cd["type"] == TYPE && cd["challenge"] == CHALLENGE && cd["origin"] == ORIGIN && cd["crossOrigin"] != true
    }

    /// Roughly: an assertion that gets as far as the signature check (ours, honest flags, our
    /// RP id hash, one of Alice's credentials).
    fn reaches_signature_check(&self) -> bool {
        let a = &self.auth_data;
        self.client_data_passes()
            && self.type_ == "public-key"
            && self.extensions.is_none()
            && !matches!(self.credential, CredentialPick::Random(_))
            && a.len() == 37
            && a[..32] == rp_id_hash()
            && a[32] & 0x05 == 0x05
            && a[32] & 0xD8 == 0
    }

    /// Roughly: a registration that gets as far as the attestation statement.
    fn reaches_attestation_check(&self) -> bool {
        let Cbor::Map(m) = &self.attestation else {
            return false;
        };
        let Some(Cbor::Bytes(a)) = m.get(&text("authData")) else {
            return false;
        };
        self.client_data_passes()
            && self.type_ == "public-key"
            && self.extensions.is_none()
            && a.len() > 37
            && a[..32] == rp_id_hash()
            && a[32] & 0x45 == 0x45
            && a[32] & 0x18 == 0
    }

    fn format(&self) -> Option<&str> {
        match &self.attestation {
            Cbor::Map(m) => match m.get(&text("fmt")) {
                Some(Cbor::Text(f)) => Some(f),
                _ => None,
            },
            _ => None,
        }
    }
}

fn rp_id_hash() -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(b"example.com").to_vec()
}

fn cbor_map(entries: Vec<(Cbor, Cbor)>) -> Cbor {
    Cbor::Map(entries.into_iter().collect())
}

fn int(i: i64) -> Cbor {
    Cbor::Integer(i.into())
}

fn cbor_bytes() -> BoxedStrategy<Vec<u8>> {
    cbor_value().prop_map(|v| serde_cbor_2::to_vec(&v).unwrap()).boxed()
}

fn client_data_template() -> BoxedStrategy<Value> {
    (
        prop_oneof![
            12 => Just(Value::from(TYPE)),
            1 => select(&["webauthn.get", "webauthn.create"][..]).prop_map(Value::from),
            1 => client_data_value(),
        ],
        prop_oneof![12 => Just(Value::from(CHALLENGE)), 1 => b64_string().prop_map(Value::from), 1 => json_leaf()],
        prop_oneof![12 => Just(Value::from(ORIGIN)), 1 => client_data_value()],
        prop::option::weighted(0.2, any::<bool>()),
        vec((".{0,8}", json_leaf()), 0..3),
    )
        .prop_map(|(ty, challenge, origin, cross, extra)| {
            let mut m: serde_json::Map<String, Value> = extra.into_iter().collect();
            m.insert("type".into(), ty);
            m.insert("challenge".into(), challenge);
            m.insert("origin".into(), origin);
            if let Some(c) = cross {
                m.insert("crossOrigin".into(), Value::from(c));
            }
            Value::Object(m)
        })
        .boxed()
}

/// Usually ours.
fn rp_id_hash_strategy() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![4 => Just(rp_id_hash()), 1 => vec(any::<u8>(), 32)].boxed()
}

/// Flags as an honest authenticator would set them (UP, UV; AT and ED as the data says; no
/// backup bits, as the software authenticators), from random ones.
fn tidy_flags(random: u8, attested: bool, extensions: bool) -> u8 {
    let mut f = (random | 0x05) & !(0x08 | 0x10 | 0x40 | 0x80);
    if attested {
        f |= 0x40;
    }
    if extensions {
        f |= 0x80;
    }
    f
}

fn assertion_auth_data() -> BoxedStrategy<Vec<u8>> {
    (
        rp_id_hash_strategy(),
        any::<u8>(),
        prop::bool::weighted(0.9),
        any::<u32>(),
        prop_oneof![6 => Just(vec![]), 1 => vec(any::<u8>(), 1..48), 1 => cbor_bytes()],
    )
        .prop_map(|(mut b, flags, tidy, counter, tail)| {
            b.push(if tidy {
                tidy_flags(flags, false, !tail.is_empty())
            } else {
                flags
            });
            b.extend(counter.to_be_bytes());
            b.extend(tail);
            b
        })
        .boxed()
}

/// The generator of P-256: a valid public key (whose private key is 1).
const P256_G: ([u8; 32], [u8; 32]) = (
    [
        0x6B, 0x17, 0xD1, 0xF2, 0xE1, 0x2C, 0x42, 0x47, 0xF8, 0xBC, 0xE6, 0xE5, 0x63, 0xA4, 0x40, 0xF2, 0x77, 0x03,
        0x7D, 0x81, 0x2D, 0xEB, 0x33, 0xA0, 0xF4, 0xA1, 0x39, 0x45, 0xD8, 0x98, 0xC2, 0x96,
    ],
    [
        0x4F, 0xE3, 0x42, 0xE2, 0xFE, 0x1A, 0x7F, 0x9B, 0x8E, 0xE7, 0xEB, 0x4A, 0x7C, 0x0F, 0x9E, 0x16, 0x2B, 0xCE,
        0x33, 0x57, 0x6B, 0x31, 0x5E, 0xCE, 0xCB, 0xB6, 0x40, 0x68, 0x37, 0xBF, 0x51, 0xF5,
    ],
);

/// COSE public keys: EC2 (a valid point or random coordinates), OKP and RSA (right sizes,
/// random modulus and exponent, or wrong sizes), or any CBOR.
fn cose_key() -> BoxedStrategy<Cbor> {
    let ec2_point = prop_oneof![
        1 => Just((P256_G.0.to_vec(), P256_G.1.to_vec())),
        2 => (vec(any::<u8>(), 32), vec(any::<u8>(), 0..=33)),
    ];
    let rsa = prop_oneof![
        3 => (vec(any::<u8>(), 256), prop_oneof![Just(vec![1, 0, 1]), vec(any::<u8>(), 3)]),
        1 => (vec(any::<u8>(), 0..300), vec(any::<u8>(), 0..5)),
    ];
    prop_oneof![
        2 => (ec2_point, select(&[-7i64, -7, -8, -257, -35][..])).prop_map(|((x, y), alg)| {
            cbor_map(vec![
                (int(1), int(2)),
                (int(3), int(alg)),
                (int(-1), int(1)),
                (int(-2), Cbor::Bytes(x)),
                (int(-3), Cbor::Bytes(y)),
            ])
        }),
        1 => (
            prop_oneof![3 => vec(any::<u8>(), 32), 1 => vec(any::<u8>(), 0..=33)],
            select(&[-8i64, -7][..])
        )
            .prop_map(|(x, alg)| cbor_map(vec![
                (int(1), int(1)),
                (int(3), int(alg)),
                (int(-1), int(6)),
                (int(-2), Cbor::Bytes(x))
            ])),
        2 => rsa.prop_map(|(n, e)| cbor_map(vec![
            (int(1), int(3)),
            (int(3), int(-257)),
            (int(-1), Cbor::Bytes(n)),
            (int(-2), Cbor::Bytes(e))
        ])),
        1 => cbor_value(),
    ]
    .boxed()
}

/// Authenticator data with attested credential data, flags usually tidy.
fn attested_auth_data() -> BoxedStrategy<Vec<u8>> {
    (
        (
            rp_id_hash_strategy(),
            any::<u8>(),
            prop::bool::weighted(0.9),
            any::<u32>(),
        ),
        vec(any::<u8>(), 16),
        vec(any::<u8>(), 0..80),
        prop::option::weighted(0.1, any::<u16>()),
        cose_key(),
        prop::option::weighted(0.2, cbor_value()),
    )
        .prop_map(
            |((mut b, flags, tidy, counter), aaguid, cred_id, lying_length, key, extensions)| {
                b.push(if tidy {
                    tidy_flags(flags, true, extensions.is_some())
                } else {
                    flags
                });
                b.extend(counter.to_be_bytes());
                b.extend(aaguid);
                b.extend(
                    lying_length
                        .unwrap_or(u16::try_from(cred_id.len()).unwrap())
                        .to_be_bytes(),
                );
                b.extend(cred_id);
                b.extend(serde_cbor_2::to_vec(&key).unwrap());
                if let Some(e) = extensions {
                    b.extend(serde_cbor_2::to_vec(&e).unwrap());
                }
                b
            },
        )
        .boxed()
}

fn attestation_statement() -> BoxedStrategy<Cbor> {
    prop_oneof![
        6 => (
            prop::option::weighted(0.8, select(&[-7i64, -8, -257, -35, 0][..])),
            prop::option::weighted(0.8, prop_oneof![vec(any::<u8>(), 0..80), ecdsa_like_signature()]),
            prop::option::weighted(0.3, vec(vec(any::<u8>(), 0..200), 0..3)),
        )
            .prop_map(|(alg, sig, x5c)| {
                let mut m = BTreeMap::new();
                if let Some(alg) = alg {
                    m.insert(text("alg"), int(alg));
                }
                if let Some(sig) = sig {
                    m.insert(text("sig"), Cbor::Bytes(sig));
                }
                if let Some(x5c) = x5c {
                    m.insert(text("x5c"), Cbor::Array(x5c.into_iter().map(Cbor::Bytes).collect()));
                }
                Cbor::Map(m)
            }),
        1 => Just(Cbor::Map(BTreeMap::new())),
        1 => cbor_value(),
    ]
    .boxed()
}

fn attestation_object() -> BoxedStrategy<Cbor> {
    (
        prop_oneof![6 => select(FORMATS).prop_map(String::from), 1 => ".{0,8}"],
        attestation_statement(),
        attested_auth_data(),
    )
        .prop_map(|(fmt, stmt, auth_data)| {
            cbor_map(vec![
                (text("fmt"), Cbor::Text(fmt)),
                (text("attStmt"), stmt),
                (text("authData"), Cbor::Bytes(auth_data)),
            ])
        })
        .boxed()
}

/// A DER `SEQUENCE { INTEGER r, INTEGER s }` with random r and s.
fn ecdsa_like_signature() -> BoxedStrategy<Vec<u8>> {
    (vec(any::<u8>(), 1..=33), vec(any::<u8>(), 1..=33))
        .prop_map(|(r, s)| der_signature(&r, &s))
        .boxed()
}

fn forgery() -> BoxedStrategy<Forgery> {
    (
        (
            prop_oneof![
                1 => vec(any::<u8>(), 0..64).prop_map(CredentialPick::Random),
                2 => Just(CredentialPick::SecurityKey),
                2 => Just(CredentialPick::Passkey),
            ],
            prop_oneof![16 => Just(json!("public-key")), 1 => json_leaf()],
            client_data_template(),
        ),
        assertion_auth_data(),
        attestation_object(),
        prop_oneof![1 => vec(any::<u8>(), 0..80), 3 => ecdsa_like_signature()],
        prop_oneof![
            1 => Just(HandlePick::Absent),
            3 => Just(HandlePick::Alice),
            1 => vec(any::<u8>(), 0..64).prop_map(HandlePick::Random),
        ],
        prop::option::weighted(
            0.1,
            prop_oneof![Just(json!({})), Just(json!({"appid": true})), json_value()],
        ),
        any::<bool>(),
    )
        .prop_map(
            |(
                (credential, type_, client_data),
                auth_data,
                attestation,
                signature,
                handle,
                extensions,
                register_passkey,
            )| {
                Forgery {
                    credential,
                    type_,
                    client_data,
                    auth_data,
                    attestation,
                    signature,
                    handle,
                    extensions,
                    register_passkey,
                }
            },
        )
        .boxed()
}

fn challenge_of(options: &Value) -> String {
    options["publicKey"]["challenge"].as_str().unwrap().to_owned()
}

/// Made-up responses are fed to all three ceremonies: rejected, never an error, and never
/// accepted, except a registration with attestation format `none` (which proves nothing by
/// design: any client may register any well-formed public key for the user it is signed in as).
#[test]
fn plausible_forgeries_are_rejected_by_every_ceremony() {
    let fx = Fixture::new();
    // Cheap: no authenticator, and most forgeries fail before any cryptography.
    let mut runner = TestRunner::new(config(4 * CEREMONY_CASES));
    let result = runner.run(&forgery(), |f| {
        let (rt, mfa) = (&fx.rt, &fx.mfa);
        rt.block_on(mfa.unlock(&fx.alice, Factor::WebAuthn)).unwrap();
        let forged = Expect::Reject("(forged)");

        let (id, options) = rt.block_on(mfa.start_webauthn_authentication(&fx.alice)).unwrap();
        let text = f.assertion(&fx, &challenge_of(&options.to_json_value())).to_string();
        let line = match check_parse(AuthenticationResponse::from_json(&text))? {
            Some(rsp) => verdict_result(
                &forged,
                &rt.block_on(mfa.finish_webauthn_authentication(&fx.alice, id, &rsp)),
                &text,
            )?,
            None => "parse error".into(),
        };
        let deep = if f.reaches_signature_check() {
            " (reaches the signature check)"
        } else {
            ""
        };
        fx.count(format!("SecondFactor{deep}: {line}"));

        let (id, options) = rt.block_on(mfa.start_passwordless(false)).unwrap();
        let text = f.assertion(&fx, &challenge_of(&options.to_json_value())).to_string();
        let line = match check_parse(AuthenticationResponse::from_json(&text))? {
            Some(rsp) => verdict_result(&forged, &rt.block_on(mfa.finish_passwordless(&id, &rsp)), &text)?,
            None => "parse error".into(),
        };
        let deep = if f.reaches_signature_check() && matches!(f.handle, HandlePick::Alice) {
            " (reaches the signature check)"
        } else {
            ""
        };
        fx.count(format!("Passwordless{deep}: {line}"));

        let who = fx.fresh_user();
        let (id, options) = rt.block_on(start_registration(mfa, &who, f.register_passkey));
        let text = f.registration(&fx, &challenge_of(&options)).to_string();
        let expect = if f.format() == Some("none") {
            Expect::MayAccept
        } else {
            forged
        };
        let line = match check_parse(RegistrationResponse::from_json(&text))? {
            Some(rsp) => verdict_result(
                &expect,
                &rt.block_on(mfa.finish_webauthn_registration(&who, id, &rsp, None)),
                &text,
            )?,
            None => "parse error".into(),
        };
        let fmt = f.format().filter(|f| FORMATS.contains(f)).unwrap_or("(other)");
        let deep = if f.reaches_attestation_check() {
            " (reaches the attestation check)"
        } else {
            ""
        };
        fx.count(format!("Register fmt {fmt:?}{deep}: {line}"));
        Ok(())
    });
    fx.print_stats("plausible_forgeries_are_rejected_by_every_ceremony");
    result.unwrap();
}

// ----- ECDSA signature encoding -------------------------------------------------------------

/// The order of the P-256 group.
const P256_N: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xBC, 0xE6, 0xFA,
    0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
];

fn der_integer(x: &[u8]) -> Vec<u8> {
    let start = x.iter().position(|b| *b != 0).unwrap_or(x.len().saturating_sub(1));
    let x = if x.is_empty() { &[0u8][..] } else { &x[start..] };
    let pad = x[0] & 0x80 != 0;
    let mut out = vec![0x02, u8::try_from(x.len() + usize::from(pad)).unwrap()];
    if pad {
        out.push(0);
    }
    out.extend_from_slice(x);
    out
}

fn der_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
    let body = [der_integer(r), der_integer(s)].concat();
    let mut out = vec![0x30, u8::try_from(body.len()).unwrap()];
    out.extend(body);
    out
}

fn der_parse(sig: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    fn integer(b: &[u8]) -> Option<(&[u8], &[u8])> {
        let [0x02, len, rest @ ..] = b else { return None };
        let len = usize::from(*len);
        (rest.len() >= len).then(|| rest.split_at(len))
    }
    let [0x30, len, rest @ ..] = sig else { return None };
    if usize::from(*len) != rest.len() {
        return None;
    }
    let (r, rest) = integer(rest)?;
    let (s, rest) = integer(rest)?;
    rest.is_empty().then(|| (r.to_vec(), s.to_vec()))
}

/// The other valid ECDSA signature of the same message: (r, n - s). Different bytes, same proof.
fn malleate(sig: &[u8]) -> Option<Vec<u8>> {
    let (r, s) = der_parse(sig)?;
    let s: Vec<u8> = s.into_iter().skip_while(|b| *b == 0).collect();
    if s.len() > 32 {
        return None;
    }
    let mut padded = [0u8; 32];
    padded[32 - s.len()..].copy_from_slice(&s);
    let mut out = [0u8; 32];
    let mut borrow = 0u16;
    for i in (0..32).rev() {
        let d = 256 + u16::from(P256_N[i]) - u16::from(padded[i]) - borrow;
        out[i] = (d & 0xff) as u8;
        borrow = u16::from(d < 256);
    }
    Some(der_signature(&r, &out))
}

// ----- 3. Mutated real responses ------------------------------------------------------------

/// An edit of a byte string.
#[derive(Debug, Clone)]
enum ByteEdit {
    /// XOR these masks (never 0) in at these positions.
    Flip(Vec<(Index, u8)>),
    /// Keep a strict prefix.
    Truncate(Index),
    /// Append.
    Extend(Vec<u8>),
    /// Insert somewhere.
    Insert(Index, Vec<u8>),
    /// Replace entirely.
    Replace(Vec<u8>),
}

impl ByteEdit {
    fn apply(&self, b: &mut Vec<u8>) {
        match self {
            ByteEdit::Flip(flips) => {
                if b.is_empty() {
                    b.push(0);
                }
                for (i, mask) in flips {
                    let i = i.index(b.len());
                    b[i] ^= mask;
                }
            }
            ByteEdit::Truncate(i) => {
                if !b.is_empty() {
                    b.truncate(i.index(b.len()));
                }
            }
            ByteEdit::Extend(x) => b.extend_from_slice(x),
            ByteEdit::Insert(i, x) => {
                let at = i.index(b.len() + 1);
                b.splice(at..at, x.iter().copied());
            }
            ByteEdit::Replace(x) => b.clone_from(x),
        }
    }
}

fn byte_edit() -> BoxedStrategy<ByteEdit> {
    prop_oneof![
        4 => vec((any::<Index>(), 1..=255u8), 1..4).prop_map(ByteEdit::Flip),
        1 => any::<Index>().prop_map(ByteEdit::Truncate),
        1 => vec(any::<u8>(), 1..32).prop_map(ByteEdit::Extend),
        1 => (any::<Index>(), vec(any::<u8>(), 1..8)).prop_map(|(i, x)| ByteEdit::Insert(i, x)),
        1 => vec(any::<u8>(), 0..80).prop_map(ByteEdit::Replace),
    ]
    .boxed()
}

/// Another base64 spelling of the same bytes.
#[derive(Debug, Clone, Copy)]
enum Encoding {
    UrlSafePadded,
    Standard,
    StandardPadded,
}

/// An edit of the client data inside `clientDataJSON` (re-encoded afterwards).
#[derive(Debug, Clone)]
enum ClientDataEdit {
    Set(String, Value),
    Remove(Index),
    /// The same JSON, formatted differently: other bytes, same meaning.
    Reformat,
}

/// An edit of the authenticator data (of an assertion, or inside the attestation object).
#[derive(Debug, Clone)]
enum AuthDataEdit {
    Bytes(ByteEdit),
    /// XOR the flags byte (UP, UV, BE, BS, AT, ED) with a non-zero mask.
    Flags(u8),
    /// Overwrite the signature counter.
    Counter(u32),
}

/// An edit of the attestation object (registration), as CBOR.
#[derive(Debug, Clone)]
enum AttestationEdit {
    /// What a browser may do when no attestation was asked for: `fmt: "none"`, `attStmt: {}`.
    StripToNone,
    SetFmt(String),
    Set(String, Cbor),
    Remove(String),
    /// Edit the attestation signature.
    Sig(ByteEdit),
    /// Claim another algorithm.
    Alg(i64),
}

#[derive(Debug, Clone)]
enum TextEdit {
    Delete,
    Insert(char),
    Replace(char),
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace (or add) the node at one of the response's JSON pointers (or a few optional absent ones).
    Replace(Index, Value),
    /// Delete the node at one of the response's JSON pointers.
    Delete(Index),
    /// Edit the decoded bytes of one of the base64url fields.
    Bytes(Index, ByteEdit),
    /// Spell one of the base64url fields differently (same bytes).
    Reencode(Index, Encoding),
    ClientData(ClientDataEdit),
    AuthData(AuthDataEdit),
    /// Registration only.
    Attestation(AttestationEdit),
    /// Assertions only: claim to be Alice's other credential (`id` and `rawId`).
    OtherCredential,
    /// Character edits of the JSON text.
    Text(Vec<(Index, TextEdit)>),
    /// Replace the ECDSA signature (of the assertion, or of the attestation) by its twin (r, n - s).
    Malleate,
    /// Assertions only: set the user handle.
    UserHandle(HandlePick),
}

const CLIENT_DATA_KEYS: &[&str] = &[
    "type",
    "challenge",
    "origin",
    "crossOrigin",
    "topOrigin",
    "tokenBinding",
];
const ATTESTATION_KEYS: &[&str] = &["fmt", "attStmt", "authData", "epAtt", "largeBlobKey", "extra"];
const FORMATS: &[&str] = &[
    "none",
    "packed",
    "fido-u2f",
    "tpm",
    "android-key",
    "android-safetynet",
    "apple",
    "compound",
    "",
];

fn client_data_value() -> BoxedStrategy<Value> {
    prop_oneof![
        2 => json_value(),
        1 => select(&["webauthn.get", "webauthn.create", "payment.get", ""][..]).prop_map(Value::from),
        1 => select(
            &[
                ORIGIN,
                "https://auth.example.com/",
                "https://auth.example.com:443",
                "https://AUTH.example.com",
                "https://evil.example.com",
                "http://auth.example.com",
                "https://example.com",
            ][..]
        )
        .prop_map(Value::from),
        1 => b64_string().prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::from),
    ]
    .boxed()
}

fn cbor_value() -> BoxedStrategy<Cbor> {
    prop_oneof![
        2 => json_value().prop_map(|v| serde_cbor_2::value::to_value(v).unwrap()),
        2 => vec(any::<u8>(), 0..64).prop_map(Cbor::Bytes),
        1 => any::<i64>().prop_map(|i| Cbor::Integer(i.into())),
        1 => Just(Cbor::Map(BTreeMap::new())),
    ]
    .boxed()
}

fn text_edits() -> BoxedStrategy<Vec<(Index, TextEdit)>> {
    let ch = prop_oneof![
        3 => select("{}[]\":,\\ 0123456789aAeE-_+/=.".chars().collect::<Vec<_>>()),
        1 => any::<char>(),
    ];
    let edit = prop_oneof![
        Just(TextEdit::Delete),
        ch.clone().prop_map(TextEdit::Insert),
        ch.prop_map(TextEdit::Replace),
    ];
    vec((any::<Index>(), edit), 1..4).boxed()
}

fn common_mutations() -> Vec<(u32, BoxedStrategy<Mutation>)> {
    let key = prop_oneof![3 => select(CLIENT_DATA_KEYS).prop_map(String::from), 1 => ".{0,8}"];
    let client_data = prop_oneof![
        3 => (key, client_data_value()).prop_map(|(k, v)| ClientDataEdit::Set(k, v)),
        1 => any::<Index>().prop_map(ClientDataEdit::Remove),
        1 => Just(ClientDataEdit::Reformat),
    ];
    let auth_data = prop_oneof![
        2 => byte_edit().prop_map(AuthDataEdit::Bytes),
        1 => (1..=255u8).prop_map(AuthDataEdit::Flags),
        1 => any::<u32>().prop_map(AuthDataEdit::Counter),
    ];
    let encoding = prop_oneof![
        Just(Encoding::UrlSafePadded),
        Just(Encoding::Standard),
        Just(Encoding::StandardPadded),
    ];
    vec![
        (
            6,
            (any::<Index>(), prop_oneof![3 => json_value(), 1 => binary_field()])
                .prop_map(|(i, v)| Mutation::Replace(i, v))
                .boxed(),
        ),
        (2, any::<Index>().prop_map(Mutation::Delete).boxed()),
        (
            6,
            (any::<Index>(), byte_edit())
                .prop_map(|(i, e)| Mutation::Bytes(i, e))
                .boxed(),
        ),
        (
            1,
            (any::<Index>(), encoding)
                .prop_map(|(i, e)| Mutation::Reencode(i, e))
                .boxed(),
        ),
        (3, client_data.prop_map(Mutation::ClientData).boxed()),
        (3, auth_data.prop_map(Mutation::AuthData).boxed()),
        (2, text_edits().prop_map(Mutation::Text).boxed()),
    ]
}

fn assertion_mutation() -> BoxedStrategy<Mutation> {
    let handle = prop_oneof![
        Just(HandlePick::Absent),
        Just(HandlePick::Alice),
        vec(any::<u8>(), 0..64).prop_map(HandlePick::Random),
    ];
    let mut all = common_mutations();
    all.push((1, Just(Mutation::OtherCredential).boxed()));
    all.push((1, Just(Mutation::Malleate).boxed()));
    all.push((2, handle.prop_map(Mutation::UserHandle).boxed()));
    proptest::strategy::Union::new_weighted(all).boxed()
}

fn registration_mutation() -> BoxedStrategy<Mutation> {
    let fmt = prop_oneof![3 => select(FORMATS).prop_map(String::from), 1 => ".{0,10}"];
    let attestation = prop_oneof![
        2 => Just(AttestationEdit::StripToNone),
        1 => fmt.prop_map(AttestationEdit::SetFmt),
        2 => (select(ATTESTATION_KEYS).prop_map(String::from), cbor_value()).prop_map(|(k, v)| AttestationEdit::Set(k, v)),
        1 => select(ATTESTATION_KEYS).prop_map(|k| AttestationEdit::Remove(k.into())),
        2 => byte_edit().prop_map(AttestationEdit::Sig),
        1 => select(&[-7i64, -8, -35, -36, -257, 0, 1][..]).prop_map(AttestationEdit::Alg),
    ];
    let mut all = common_mutations();
    all.push((4, attestation.prop_map(Mutation::Attestation).boxed()));
    all.push((1, Just(Mutation::Malleate).boxed()));
    proptest::strategy::Union::new_weighted(all).boxed()
}

const BINARY_FIELDS: &[&str] = &[
    "/rawId",
    "/response/clientDataJSON",
    "/response/attestationObject",
    "/response/authenticatorData",
    "/response/signature",
    "/response/userHandle",
];

/// Optional members a response may lack, so that `Replace` can add them.
const ABSENT_POINTERS: &[&str] = &[
    "/response/userHandle",
    "/response/transports",
    "/extensions",
    "/extensions/appid",
    "/extensions/credProps",
    "/clientExtensionResults",
    "/authenticatorAttachment",
    "/unknown",
];

fn pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    out.push(at.to_owned());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                pointers(c, &format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn set_at(v: &mut Value, ptr: &str, new: Value) {
    let Some((parent, last)) = ptr.rsplit_once('/') else {
        *v = new;
        return;
    };
    if v.pointer(parent).is_none() {
        set_at(v, parent, json!({}));
    }
    let last = last.replace("~1", "/").replace("~0", "~");
    match v.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.insert(last, new);
        }
        Some(Value::Array(a)) => {
            if let Some(slot) = last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                *slot = new;
            }
        }
        Some(other) => *other = json!({ last: new }),
        None => {}
    }
}

fn delete_at(v: &mut Value, ptr: &str) {
    let Some((parent, last)) = ptr.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    match v.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.remove(&last);
        }
        Some(Value::Array(a)) => {
            if let Some(i) = last.parse::<usize>().ok().filter(|i| *i < a.len()) {
                a.remove(i);
            }
        }
        _ => {}
    }
}

fn decode_field(v: &Value, ptr: &str) -> Vec<u8> {
    B64.decode(v.pointer(ptr).unwrap().as_str().unwrap()).unwrap()
}

fn encode_field(v: &mut Value, ptr: &str, bytes: &[u8]) {
    *v.pointer_mut(ptr).unwrap() = Value::from(B64.encode(bytes));
}

/// The attestation object of a registration response as a CBOR map.
fn attestation_map(v: &Value) -> BTreeMap<Cbor, Cbor> {
    match serde_cbor_2::from_slice(&decode_field(v, "/response/attestationObject")).unwrap() {
        Cbor::Map(m) => m,
        other => panic!("attestation object is not a map: {other:?}"),
    }
}

fn att_stmt(map: &mut BTreeMap<Cbor, Cbor>) -> &mut BTreeMap<Cbor, Cbor> {
    match map.get_mut(&text("attStmt")) {
        Some(Cbor::Map(stmt)) => stmt,
        other => panic!("attStmt is not a map: {other:?}"),
    }
}

/// One of the base64url fields present in `v`.
fn binary_field_at(v: &Value, i: &Index) -> &'static str {
    let present: Vec<&str> = BINARY_FIELDS
        .iter()
        .copied()
        .filter(|p| v.pointer(p).is_some_and(Value::is_string))
        .collect();
    present[i.index(present.len())]
}

fn text(key: &str) -> Cbor {
    Cbor::Text(key.into())
}

fn edit_auth_data(bytes: &mut Vec<u8>, edit: &AuthDataEdit) {
    match edit {
        AuthDataEdit::Bytes(e) => e.apply(bytes),
        AuthDataEdit::Flags(mask) => bytes[32] ^= mask,
        AuthDataEdit::Counter(c) => bytes[33..37].copy_from_slice(&c.to_be_bytes()),
    }
}

/// Applies `m` to a response; returns the JSON text and a short label for the statistics.
fn mutate(fx: &Fixture, original: &Value, m: &Mutation) -> (String, String) {
    let mut v = original.clone();
    let label = match m {
        Mutation::Replace(i, new) => {
            let mut all = Vec::new();
            pointers(&v, "", &mut all);
            for p in ABSENT_POINTERS {
                if v.pointer(p).is_none() {
                    all.push((*p).to_owned());
                }
            }
            let p = all[i.index(all.len())].clone();
            set_at(&mut v, &p, new.clone());
            format!("replace {p}")
        }
        Mutation::Delete(i) => {
            let mut all = Vec::new();
            pointers(&v, "", &mut all);
            let p = all[1 + i.index(all.len() - 1)].clone();
            delete_at(&mut v, &p);
            format!("delete {p}")
        }
        Mutation::Bytes(i, edit) => {
            let p = binary_field_at(&v, i);
            let mut bytes = decode_field(&v, p);
            edit.apply(&mut bytes);
            encode_field(&mut v, p, &bytes);
            format!("bytes {p}")
        }
        Mutation::Reencode(i, enc) => {
            let p = binary_field_at(&v, i);
            let bytes = decode_field(&v, p);
            let spelled = match enc {
                Encoding::UrlSafePadded => URL_SAFE.encode(&bytes),
                Encoding::Standard => STANDARD_NO_PAD.encode(&bytes),
                Encoding::StandardPadded => STANDARD.encode(&bytes),
            };
            *v.pointer_mut(p).unwrap() = Value::from(spelled);
            format!("reencode {p}")
        }
        Mutation::ClientData(edit) => {
            let p = "/response/clientDataJSON";
            let mut cd: serde_json::Map<String, Value> = serde_json::from_slice(&decode_field(&v, p)).unwrap();
            let (bytes, label) = match edit {
                ClientDataEdit::Set(k, new) => {
                    cd.insert(k.clone(), new.clone());
                    let k = if CLIENT_DATA_KEYS.contains(&k.as_str()) {
                        k
                    } else {
                        "(other)"
                    };
                    (serde_json::to_vec(&cd).unwrap(), format!("client data: set {k}"))
                }
                ClientDataEdit::Remove(i) => {
                    let k = cd.keys().nth(i.index(cd.len())).unwrap().clone();
                    cd.remove(&k);
                    (serde_json::to_vec(&cd).unwrap(), format!("client data: remove {k}"))
                }
                ClientDataEdit::Reformat => (serde_json::to_vec_pretty(&cd).unwrap(), "client data: reformat".into()),
            };
            encode_field(&mut v, p, &bytes);
            label
        }
        Mutation::AuthData(edit) => {
            if v.pointer("/response/authenticatorData").is_some() {
                let p = "/response/authenticatorData";
                let mut bytes = decode_field(&v, p);
                edit_auth_data(&mut bytes, edit);
                encode_field(&mut v, p, &bytes);
            } else {
                let mut map = attestation_map(&v);
                let Some(Cbor::Bytes(bytes)) = map.get_mut(&text("authData")) else {
                    panic!("no authData")
                };
                edit_auth_data(bytes, edit);
                encode_field(
                    &mut v,
                    "/response/attestationObject",
                    &serde_cbor_2::to_vec(&Cbor::Map(map)).unwrap(),
                );
            }
            match edit {
                AuthDataEdit::Bytes(_) => "authenticator data: bytes",
                AuthDataEdit::Flags(_) => "authenticator data: flags",
                AuthDataEdit::Counter(_) => "authenticator data: counter",
            }
            .into()
        }
        Mutation::Attestation(edit) => {
            let mut map = attestation_map(&v);
            let label = match edit {
                AttestationEdit::StripToNone => {
                    map.insert(text("fmt"), text("none"));
                    map.insert(text("attStmt"), Cbor::Map(BTreeMap::new()));
                    "attestation: strip to none".to_owned()
                }
                AttestationEdit::SetFmt(f) => {
                    map.insert(text("fmt"), text(f));
                    let f = if FORMATS.contains(&f.as_str()) { f } else { "(other)" };
                    format!("attestation: fmt {f:?}")
                }
                AttestationEdit::Set(k, new) => {
                    map.insert(text(k), new.clone());
                    format!("attestation: set {k}")
                }
                AttestationEdit::Remove(k) => {
                    map.remove(&text(k));
                    format!("attestation: remove {k}")
                }
                AttestationEdit::Sig(e) => {
                    let Some(Cbor::Bytes(sig)) = att_stmt(&mut map).get_mut(&text("sig")) else {
                        panic!("no sig")
                    };
                    e.apply(sig);
                    "attestation: sig bytes".to_owned()
                }
                AttestationEdit::Alg(alg) => {
                    att_stmt(&mut map).insert(text("alg"), Cbor::Integer((*alg).into()));
                    format!("attestation: alg {alg}")
                }
            };
            encode_field(
                &mut v,
                "/response/attestationObject",
                &serde_cbor_2::to_vec(&Cbor::Map(map)).unwrap(),
            );
            label
        }
        Mutation::Malleate => {
            if v.pointer("/response/signature").is_some() {
                let p = "/response/signature";
                let twin = malleate(&decode_field(&v, p)).unwrap();
                encode_field(&mut v, p, &twin);
            } else {
                let mut map = attestation_map(&v);
                let Some(Cbor::Bytes(sig)) = att_stmt(&mut map).get_mut(&text("sig")) else {
                    panic!("no sig")
                };
                *sig = malleate(sig).unwrap();
                encode_field(
                    &mut v,
                    "/response/attestationObject",
                    &serde_cbor_2::to_vec(&Cbor::Map(map)).unwrap(),
                );
            }
            "malleated signature".into()
        }
        Mutation::UserHandle(pick) => {
            let p = "/response/userHandle";
            match pick {
                HandlePick::Absent => {
                    delete_at(&mut v, p);
                    "user handle: absent".into()
                }
                HandlePick::Alice => {
                    set_at(&mut v, p, Value::from(B64.encode(&fx.handle)));
                    "user handle: alice's".into()
                }
                HandlePick::Random(h) => {
                    set_at(&mut v, p, Value::from(B64.encode(h)));
                    "user handle: random".into()
                }
            }
        }
        Mutation::OtherCredential => {
            let mine = decode_field(&v, "/rawId");
            let other = if mine == fx.key_id { &fx.pk_id } else { &fx.key_id };
            v["rawId"] = Value::from(B64.encode(other));
            v["id"] = Value::from(B64.encode(other));
            "other credential".into()
        }
        Mutation::Text(edits) => {
            let mut chars: Vec<char> = v.to_string().chars().collect();
            for (i, edit) in edits {
                match edit {
                    TextEdit::Delete if !chars.is_empty() => {
                        chars.remove(i.index(chars.len()));
                    }
                    TextEdit::Delete => {}
                    TextEdit::Insert(c) => chars.insert(i.index(chars.len() + 1), *c),
                    TextEdit::Replace(c) if !chars.is_empty() => {
                        let at = i.index(chars.len());
                        chars[at] = *c;
                    }
                    TextEdit::Replace(c) => chars.push(*c),
                }
            }
            return (chars.into_iter().collect(), "text".into());
        }
    };
    (v.to_string(), label)
}

/// What a mutated response may do.
#[derive(Debug)]
enum Expect {
    /// Parses to the same value as the original: must be accepted.
    MustAccept,
    /// Only unsigned metadata the verifier does not use changed: may be accepted.
    MayAccept,
    /// Signed data, the credential id or the user handle changed: must not be accepted.
    Reject(&'static str),
}

/// The oracle for assertions: compares everything the verifier uses.
fn expect_assertion(
    original: &PublicKeyCredential,
    mutated: &PublicKeyCredential,
    handles: &[Option<&[u8]>],
) -> Expect {
    if serde_json::to_value(original).unwrap() == serde_json::to_value(mutated).unwrap() {
        return Expect::MustAccept;
    }
    let (o, m) = (&original.response, &mutated.response);
    if mutated.raw_id != original.raw_id {
        Expect::Reject("rawId")
    } else if m.authenticator_data != o.authenticator_data {
        Expect::Reject("authenticatorData")
    } else if m.client_data_json != o.client_data_json {
        Expect::Reject("clientDataJSON")
    } else if m.signature != o.signature && malleate(&o.signature).as_ref() != Some(&m.signature) {
        Expect::Reject("signature")
    } else if !handles.contains(&m.user_handle.as_deref()) {
        Expect::Reject("userHandle")
    } else {
        Expect::MayAccept
    }
}

/// `fmt`, `attStmt` and `authData` of an attestation object, if it is a CBOR map with them.
fn attestation_parts(bytes: &[u8]) -> Option<(String, Cbor, Vec<u8>)> {
    let Ok(Cbor::Map(m)) = serde_cbor_2::from_slice::<Cbor>(bytes) else {
        return None;
    };
    let Some(Cbor::Text(fmt)) = m.get(&text("fmt")) else {
        return None;
    };
    let Some(Cbor::Bytes(auth_data)) = m.get(&text("authData")) else {
        return None;
    };
    Some((fmt.clone(), m.get(&text("attStmt"))?.clone(), auth_data.clone()))
}

/// The attestation statement with its signature malleated.
fn malleated_statement(stmt: &Cbor) -> Cbor {
    let mut stmt = stmt.clone();
    if let Cbor::Map(m) = &mut stmt
        && let Some(Cbor::Bytes(sig)) = m.get_mut(&text("sig"))
    {
        *sig = malleate(sig).unwrap();
    }
    stmt
}

/// The oracle for registrations: the client data and the authenticator data (with the new
/// credential) must be unchanged, and the attestation statement unchanged or replaced by `none`.
fn expect_registration(original: &RegisterPublicKeyCredential, mutated: &RegisterPublicKeyCredential) -> Expect {
    if serde_json::to_value(original).unwrap() == serde_json::to_value(mutated).unwrap() {
        return Expect::MustAccept;
    }
    let (o, m) = (&original.response, &mutated.response);
    if m.client_data_json != o.client_data_json {
        return Expect::Reject("clientDataJSON");
    }
    let (o_fmt, o_stmt, o_auth) = attestation_parts(&o.attestation_object).unwrap();
    let Some((m_fmt, m_stmt, m_auth)) = attestation_parts(&m.attestation_object) else {
        return Expect::Reject("attestation object");
    };
    if m_auth != o_auth {
        Expect::Reject("authData")
    } else if m_fmt == "none" || (m_fmt == o_fmt && (m_stmt == o_stmt || m_stmt == malleated_statement(&o_stmt))) {
        Expect::MayAccept
    } else {
        Expect::Reject("attestation statement")
    }
}

/// Checks a finish result against the expectation; returns "verdict -> result" for the statistics.
fn verdict_result(expect: &Expect, result: &Result<Outcome, Error>, text: &str) -> Result<String, TestCaseError> {
    let outcome = match result {
        Ok(o) => o,
        Err(e) => return Err(TestCaseError::fail(format!("error after parsing: {e:?} for {text}"))),
    };
    let name = match outcome {
        Outcome::Accepted(_) => "accepted",
        Outcome::Rejected => "rejected",
        Outcome::Throttled { .. } => "throttled",
        Outcome::Locked => "locked",
        _ => "something new",
    };
    match (outcome, expect) {
        (Outcome::Accepted(_), Expect::Reject(why)) => {
            return Err(TestCaseError::fail(format!(
                "ACCEPTED a response with {why} tampered: {text}"
            )));
        }
        (Outcome::Accepted(_), _)
        | (Outcome::Rejected | Outcome::Throttled { .. }, Expect::Reject(_) | Expect::MayAccept) => {}
        (_, Expect::MustAccept) => {
            return Err(TestCaseError::fail(format!(
                "an unchanged response was not accepted ({name}): {text}"
            )));
        }
        _ => return Err(TestCaseError::fail(format!("{name}: {text}"))),
    }
    let verdict = match expect {
        Expect::MustAccept => "unchanged".to_owned(),
        Expect::MayAccept => "acceptable change".to_owned(),
        Expect::Reject(why) => format!("tampered {why}"),
    };
    Ok(format!("{verdict} -> {name}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ceremony {
    SecondFactorKey,
    SecondFactorPasskey,
    Passwordless,
    RegisterKey,
    RegisterPasskey,
}

/// Parses with ours and with the browser-side type the oracle uses: they must agree.
fn parse_both<Ours, Proto: serde::de::DeserializeOwned>(
    ours: Result<Ours, InputError>,
    text: &str,
) -> Result<Option<(Ours, Proto)>, TestCaseError> {
    let ours = check_parse(ours)?;
    let proto = serde_json::from_str::<Proto>(text)
        .ok()
        .filter(|_| text.len() <= 64 * 1024);
    prop_assert_eq!(
        ours.is_some(),
        proto.is_some(),
        "ours and the oracle disagree on {}",
        text
    );
    Ok(ours.zip(proto))
}

fn run_case(fx: &Fixture, ceremony: Ceremony, m: &Mutation) -> Result<(), TestCaseError> {
    let (rt, mfa) = (&fx.rt, &fx.mfa);
    rt.block_on(mfa.unlock(&fx.alice, Factor::WebAuthn)).unwrap();
    let line = match ceremony {
        Ceremony::SecondFactorKey | Ceremony::SecondFactorPasskey | Ceremony::Passwordless => {
            let passwordless = ceremony == Ceremony::Passwordless;
            let (started, options) = if passwordless {
                let (handle, options) = rt.block_on(mfa.start_passwordless(false)).unwrap();
                (Err(handle), options)
            } else {
                let (id, options) = rt.block_on(mfa.start_webauthn_authentication(&fx.alice)).unwrap();
                (Ok(id), options)
            };
            let client = if ceremony == Ceremony::SecondFactorKey {
                &fx.key
            } else {
                &fx.pk
            };
            let original = client.borrow_mut().get(&options.to_json_value()).unwrap();
            let (text, label) = mutate(fx, &original, m);
            let Some((parsed, proto)) =
                parse_both::<_, PublicKeyCredential>(AuthenticationResponse::from_json(&text), &text)?
            else {
                fx.count(format!("{ceremony:?} {label}: parse error"));
                return Ok(());
            };
            let original: PublicKeyCredential = serde_json::from_value(original).unwrap();
            // Second factor: the spec allows no handle or the user's; passwordless needs the user's.
            let handles: &[Option<&[u8]>] = if passwordless {
                &[Some(&fx.handle)]
            } else {
                &[None, Some(&fx.handle)]
            };
            let expect = expect_assertion(&original, &proto, handles);
            let result = rt.block_on(async {
                match &started {
                    Err(handle) => mfa.finish_passwordless(handle, &parsed).await,
                    Ok(id) => mfa.finish_webauthn_authentication(&fx.alice, *id, &parsed).await,
                }
            });
            if let Ok(Outcome::Accepted(v)) = &result {
                prop_assert_eq!(v.user(), &fx.alice);
            }
            format!("{ceremony:?} {label}: {}", verdict_result(&expect, &result, &text)?)
        }
        Ceremony::RegisterKey | Ceremony::RegisterPasskey => {
            let as_passkey = ceremony == Ceremony::RegisterPasskey;
            let who = fx.fresh_user();
            let (id, options) = rt.block_on(start_registration(mfa, &who, as_passkey));
            let client = if as_passkey { &fx.reg_pk } else { &fx.reg_key };
            let original = client.borrow_mut().create(&options).unwrap();
            let (text, label) = mutate(fx, &original, m);
            let Some((parsed, proto)) =
                parse_both::<_, RegisterPublicKeyCredential>(RegistrationResponse::from_json(&text), &text)?
            else {
                fx.count(format!("{ceremony:?} {label}: parse error"));
                return Ok(());
            };
            let original: RegisterPublicKeyCredential = serde_json::from_value(original).unwrap();
            let expect = expect_registration(&original, &proto);
            let result = rt.block_on(mfa.finish_webauthn_registration(&who, id, &parsed, None));
            if let Ok(Outcome::Accepted(v)) = &result {
                prop_assert_eq!(v.user(), &who);
            }
            format!("{ceremony:?} {label}: {}", verdict_result(&expect, &result, &text)?)
        }
    };
    fx.count(line);
    Ok(())
}

fn run_mutations(test: &str, ceremonies: &[Ceremony], mutation: BoxedStrategy<Mutation>) {
    let fx = Fixture::new();
    let mut runner = TestRunner::new(config(CEREMONY_CASES));
    let strategy = (select(ceremonies.to_vec()), mutation);
    let result = runner.run(&strategy, |(ceremony, m)| run_case(&fx, ceremony, &m));
    fx.print_stats(test);
    result.unwrap();
}

#[test]
fn mutated_second_factor_assertions_are_rejected_unless_unchanged() {
    run_mutations(
        "mutated_second_factor_assertions_are_rejected_unless_unchanged",
        &[Ceremony::SecondFactorKey, Ceremony::SecondFactorPasskey],
        assertion_mutation(),
    );
}

#[test]
fn mutated_passwordless_assertions_are_rejected_unless_unchanged() {
    run_mutations(
        "mutated_passwordless_assertions_are_rejected_unless_unchanged",
        &[Ceremony::Passwordless],
        assertion_mutation(),
    );
}

#[test]
fn mutated_registrations_are_rejected_unless_unchanged() {
    run_mutations(
        "mutated_registrations_are_rejected_unless_unchanged",
        &[Ceremony::RegisterKey, Ceremony::RegisterPasskey],
        registration_mutation(),
    );
}

// ----- The user handle of a second-factor assertion -----------------------------------------

/// WebAuthn §7.2 step 6: when the user was identified before the ceremony, "if
/// `response.userHandle` is present, ... verify that `userHandle` also maps to the same user".
/// The handle is not signed, so this is about following the spec rather than about forgery:
/// an assertion that names another user (or no valid user) is not an assertion for this one.
#[test]
fn second_factor_rejects_a_user_handle_that_is_not_the_users() {
    let fx = Fixture::new();
    let (rt, mfa) = (&fx.rt, &fx.mfa);
    let bob = fx.fresh_user();
    let mut bobs = passkey();
    rt.block_on(register(mfa, &bob, &mut bobs, true));
    let bobs_handle = bobs.handles.values().next().unwrap().clone();
    let cases = [
        ("absent", None, true),
        ("Alice's", Some(B64.encode(&fx.handle)), true),
        ("Bob's", Some(bobs_handle), false),
        ("empty", Some(String::new()), false),
        ("random", Some(B64.encode([7u8; 16])), false),
    ];
    let mut wrong = Vec::new();
    for (name, handle, accept) in cases {
        rt.block_on(mfa.unlock(&fx.alice, Factor::WebAuthn)).unwrap();
        let (id, options) = rt.block_on(mfa.start_webauthn_authentication(&fx.alice)).unwrap();
        let mut rsp = fx.pk.borrow_mut().get(&options.to_json_value()).unwrap();
        rsp["response"]["userHandle"] = handle.map_or(Value::Null, Value::from);
        let parsed = AuthenticationResponse::from_json(&rsp.to_string()).unwrap();
        let outcome = rt
            .block_on(mfa.finish_webauthn_authentication(&fx.alice, id, &parsed))
            .unwrap();
        if outcome.is_accepted() != accept {
            wrong.push(format!("user handle {name}: {outcome:?} for {rsp}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
