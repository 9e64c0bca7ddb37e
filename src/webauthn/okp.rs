//! The EdDSA path: Ed25519 (COSE `-8`, OKP) credentials, which `webauthn-rs-core` 0.6.2 parses
//! but cannot verify. It sits beside the core's path and makes every check the core makes, in the
//! core's order and with the core's own parsers (`AuthenticatorData`, `CollectedClientData`,
//! `origins_match`), so that it differs from the core only in the signature check:
//! `ed25519-dalek`'s `verify_strict`, with small-order keys refused at registration and
//! non-canonical signatures refused at every assertion.
//!
//! The same checks run with the core's signature check for every other key type: that is how a
//! property test proves, on ES256 assertions, valid and mutated, that this path decides as the
//! core does ([`verify_assertion`] with `Signature::Core`).

use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;
use serde_cbor_2::Value;
use sha2::{Digest, Sha256};
use url::Url;
use webauthn_rs_core::internals::AuthenticatorData;
use webauthn_rs_core::proto::origin::origins_match;
use webauthn_rs_core::proto::{
    AttestationFormat, Authentication, COSEAlgorithm, COSEKey, COSEKeyType, COSEOKPKey, CollectedClientData,
    Credential, EDDSACurve, ParsedAttestation, PublicKeyCredential, RegisterPublicKeyCredential, RegisteredExtensions,
    Registration, UserVerificationPolicy,
};

use super::verdict::{Assertion, Rejected};

/// Ed25519 public keys and signatures are 32 and 64 bytes (RFC 8032).
const KEY_LEN: usize = 32;

/// What an assertion is checked against, besides the credential.
pub(crate) struct Expected<'a> {
    /// SHA-256 of the relying party id.
    pub(crate) rp_id_hash: [u8; 32],
    /// The origins the relying party accepts (exact matches).
    pub(crate) origins: &'a [Url],
    /// The ceremony's challenge.
    pub(crate) challenge: &'a [u8],
    /// The ceremony's user-verification policy.
    pub(crate) policy: UserVerificationPolicy,
    /// Whether the ceremony allows a credential to become backup-eligible.
    pub(crate) allow_backup_eligible_upgrade: bool,
}

/// The fields of the core's `AuthenticationState` this path needs (the state is the core's
/// serialisation; its fields are private to the core).
#[derive(Deserialize)]
pub(crate) struct StateView {
    pub(crate) policy: UserVerificationPolicy,
    #[serde(with = "b64url")]
    pub(crate) challenge: Vec<u8>,
    #[serde(default)]
    pub(crate) allow_backup_eligible_upgrade: bool,
}

/// The fields of the core's `RegistrationState` this path needs.
#[derive(Deserialize)]
pub(crate) struct RegistrationView {
    pub(crate) policy: UserVerificationPolicy,
    #[serde(with = "b64url_list")]
    pub(crate) exclude_credentials: Vec<Vec<u8>>,
    #[serde(with = "b64url")]
    pub(crate) challenge: Vec<u8>,
    pub(crate) credential_algorithms: Vec<COSEAlgorithm>,
}

mod b64url {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(serde::de::Error::custom)
    }
}

mod b64url_list {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(text.trim_end_matches('='))
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

/// Which signature check the path ends with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignatureCheck {
    /// Ed25519 keys through `ed25519-dalek`, others refused (production).
    Ed25519Only,
    /// Every key through the core's `COSEKey::verify_signature`, Ed25519 through ours: the
    /// differential test runs ES256 assertions this way.
    #[cfg(test)]
    CoreElseEd25519,
}

/// The Ed25519 key of a credential, if it is one.
pub(crate) fn ed25519_key(key: &COSEKey) -> Option<&[u8]> {
    match (&key.type_, &key.key) {
        (COSEAlgorithm::EDDSA, COSEKeyType::EC_OKP(okp)) if okp.curve == EDDSACurve::ED25519 => Some(&okp.x),
        _ => None,
    }
}

/// `verify_strict` of an Ed25519 signature: a canonical signature by a key that is not of small
/// order, over exactly `message`.
pub(crate) fn ed25519_verify(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = <[u8; KEY_LEN]>::try_from(key) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(&key) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(signature) else {
        return false;
    };
    !key.is_weak() && key.verify_strict(message, &signature).is_ok()
}

/// Verifies an assertion by one of `allowed`, making the core's checks in the core's order
/// (`WebauthnCore::authenticate_credential` and `verify_credential_internal` of 0.6.2).
pub(crate) fn verify_assertion(
    rsp: &PublicKeyCredential,
    expected: &Expected<'_>,
    allowed: &[Credential],
    check: SignatureCheck,
) -> Result<Assertion, Rejected> {
    // The credential: one of the allowed ones, by raw id.
    let cred = allowed
        .iter()
        .find(|c| c.cred_id.as_slice() == rsp.raw_id.as_slice())
        .ok_or(Rejected)?;
    // The core's parsers: authenticator data, then the client data.
    let auth_bytes = rsp.response.authenticator_data.as_slice();
    let auth = AuthenticatorData::<Authentication>::try_from(auth_bytes).map_err(|_| Rejected)?;
    let client: CollectedClientData =
        serde_json::from_slice(rsp.response.client_data_json.as_slice()).map_err(|_| Rejected)?;
    if client.type_ != "webauthn.get" {
        return Err(Rejected);
    }
    if client.challenge.as_slice() != expected.challenge {
        return Err(Rejected);
    }
    if !expected
        .origins
        .iter()
        .any(|origin| origins_match(false, false, &client.origin, origin))
    {
        return Err(Rejected);
    }
    // The relying party id hash: the first 32 bytes the parser took (no appid: never requested).
    if auth_bytes.get(..32) != Some(expected.rp_id_hash.as_slice()) {
        return Err(Rejected);
    }
    if !auth.user_present {
        return Err(Rejected);
    }
    let uv_required = matches!(expected.policy, UserVerificationPolicy::Required)
        || matches!(cred.registration_policy, UserVerificationPolicy::Required)
        || (matches!(cred.registration_policy, UserVerificationPolicy::Preferred) && cred.user_verified);
    if uv_required && !auth.user_verified {
        return Err(Rejected);
    }
    if cred.backup_eligible != auth.backup_eligible
        && !(expected.allow_backup_eligible_upgrade && !cred.backup_eligible && auth.backup_eligible)
    {
        return Err(Rejected);
    }
    if auth.backup_state && !cred.backup_eligible {
        return Err(Rejected);
    }
    let mut signed = auth_bytes.to_vec();
    signed.extend_from_slice(&Sha256::digest(rsp.response.client_data_json.as_slice()));
    let signature = rsp.response.signature.as_slice();
    let verified = match (ed25519_key(&cred.cred), check) {
        (Some(key), _) => ed25519_verify(key, &signed, signature),
        (None, SignatureCheck::Ed25519Only) => false,
        #[cfg(test)]
        (None, SignatureCheck::CoreElseEd25519) => cred.cred.verify_signature(signature, &signed).unwrap_or(false),
    };
    if !verified {
        return Err(Rejected);
    }
    Ok(Assertion {
        credential_id: cred.cred_id.to_vec(),
        counter: auth.counter,
        user_verified: auth.user_verified,
        backup_eligible: auth.backup_eligible,
        backup_state: auth.backup_state,
    })
}

/// The credential public key of a registration response, if it is an OKP (EdDSA) key: the
/// engine sends those here, everything else to the core.
pub(crate) fn is_okp_registration(rsp: &RegisterPublicKeyCredential) -> bool {
    attestation(rsp)
        .ok()
        .and_then(|a| a.auth.acd)
        .is_some_and(|acd| okp_kty(&acd.credential_pk))
}

fn okp_kty(key: &Value) -> bool {
    matches!(key, Value::Map(m) if m.get(&Value::Integer(1)) == Some(&Value::Integer(1)))
}

/// A registration's attestation object, read once: format, statement, authenticator data as
/// sent and as the core's parser reads it.
pub(crate) struct Attestation {
    pub(crate) fmt: String,
    pub(crate) statement: Value,
    pub(crate) auth_bytes: Vec<u8>,
    pub(crate) auth: AuthenticatorData<Registration>,
}

/// Reads a registration's attestation object.
pub(crate) fn attestation(rsp: &RegisterPublicKeyCredential) -> Result<Attestation, Rejected> {
    let object: Value = serde_cbor_2::from_slice(rsp.response.attestation_object.as_slice()).map_err(|_| Rejected)?;
    let Value::Map(mut map) = object else {
        return Err(Rejected);
    };
    let mut take = |k: &str| map.remove(&Value::Text(k.to_owned()));
    let Some(Value::Text(fmt)) = take("fmt") else {
        return Err(Rejected);
    };
    let Some(Value::Bytes(auth_bytes)) = take("authData") else {
        return Err(Rejected);
    };
    let statement = take("attStmt").ok_or(Rejected)?;
    let auth = AuthenticatorData::<Registration>::try_from(auth_bytes.as_slice()).map_err(|_| Rejected)?;
    Ok(Attestation {
        fmt,
        statement,
        auth_bytes,
        auth,
    })
}

/// An Ed25519 COSE key exactly: `{1: 1 (OKP), 3: -8 (EdDSA), -1: 6 (Ed25519), -2: 32 bytes}`,
/// a valid point that is not of small order.
pub(crate) fn parse_ed25519(key: &Value) -> Option<[u8; KEY_LEN]> {
    let Value::Map(m) = key else {
        return None;
    };
    let int = |k: i128| m.get(&Value::Integer(k));
    if int(1) != Some(&Value::Integer(1)) || int(3) != Some(&Value::Integer(-8)) || int(-1) != Some(&Value::Integer(6))
    {
        return None;
    }
    let Some(Value::Bytes(x)) = int(-2) else {
        return None;
    };
    let x = <[u8; KEY_LEN]>::try_from(x.as_slice()).ok()?;
    let key = VerifyingKey::from_bytes(&x).ok()?;
    (!key.is_weak()).then_some(x)
}

/// Verifies a registration of an Ed25519 credential, making the core's checks
/// (`WebauthnCore::register_credential` of 0.6.2) for attestation `none`, and `packed` self
/// attestation signed by the new key. Attestation certificates cannot be checked on this path,
/// so a relying party with an attestation allow-list refuses Ed25519 credentials.
pub(crate) fn verify_registration(
    rsp: &RegisterPublicKeyCredential,
    view: &RegistrationView,
    rp_id_hash: &[u8; 32],
    origins: &[Url],
) -> Result<Credential, Rejected> {
    let client: CollectedClientData =
        serde_json::from_slice(rsp.response.client_data_json.as_slice()).map_err(|_| Rejected)?;
    if client.type_ != "webauthn.create" || client.challenge.as_slice() != view.challenge.as_slice() {
        return Err(Rejected);
    }
    if !origins
        .iter()
        .any(|origin| origins_match(false, false, &client.origin, origin))
    {
        return Err(Rejected);
    }
    if client.cross_origin.unwrap_or(false) {
        return Err(Rejected);
    }
    let Attestation {
        fmt,
        statement,
        auth_bytes,
        auth,
    } = attestation(rsp)?;
    if auth_bytes.get(..32) != Some(rp_id_hash.as_slice()) {
        return Err(Rejected);
    }
    if !auth.user_present {
        return Err(Rejected);
    }
    if matches!(view.policy, UserVerificationPolicy::Required) && !auth.user_verified {
        return Err(Rejected);
    }
    let acd = auth.acd.as_ref().ok_or(Rejected)?;
    let key = parse_ed25519(&acd.credential_pk).ok_or(Rejected)?;
    // The attestation: none, or packed self attestation (no certificate) by the new key.
    match fmt.as_str() {
        "none" => {}
        "packed" => {
            let Value::Map(st) = &statement else {
                return Err(Rejected);
            };
            let field = |k: &str| st.get(&Value::Text(k.to_owned()));
            if field("x5c").is_some() || field("alg") != Some(&Value::Integer(-8)) {
                return Err(Rejected);
            }
            let Some(Value::Bytes(sig)) = field("sig") else {
                return Err(Rejected);
            };
            let mut signed = auth_bytes.clone();
            signed.extend_from_slice(&Sha256::digest(rsp.response.client_data_json.as_slice()));
            if !ed25519_verify(&key, &signed, sig) {
                return Err(Rejected);
            }
        }
        _ => return Err(Rejected),
    }
    if !view.credential_algorithms.contains(&COSEAlgorithm::EDDSA) {
        return Err(Rejected);
    }
    if auth.backup_state && !auth.backup_eligible {
        return Err(Rejected);
    }
    if rsp.raw_id.as_slice() != acd.credential_id.as_slice()
        || view
            .exclude_credentials
            .iter()
            .any(|id| id.as_slice() == acd.credential_id.as_slice())
    {
        return Err(Rejected);
    }
    Ok(Credential {
        cred_id: acd.credential_id.clone(),
        cred: COSEKey {
            type_: COSEAlgorithm::EDDSA,
            key: COSEKeyType::EC_OKP(COSEOKPKey {
                curve: EDDSACurve::ED25519,
                x: key.to_vec(),
            }),
        },
        counter: auth.counter,
        transports: rsp.response.transports.clone(),
        user_verified: auth.user_verified,
        backup_eligible: auth.backup_eligible,
        backup_state: auth.backup_state,
        registration_policy: view.policy,
        extensions: RegisteredExtensions::none(),
        attestation: ParsedAttestation::default(),
        attestation_format: if fmt == "packed" {
            AttestationFormat::Packed
        } else {
            AttestationFormat::None
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use multifactor_kit::browser::{Client, ORIGIN, passkey, security_key};
    use proptest::prelude::*;
    use serde_json::{Value as Json, json};
    use webauthn_authenticator_rs::softpasskey::SoftPasskey;

    use super::*;
    use crate::webauthn::engine::Engine;
    use crate::webauthn::relying_party::RelyingParty;
    use crate::webauthn::wire::{AuthenticationResponse, RegistrationResponse};

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 8032 §7.1, TEST 1 to 3: public key, message, signature.
    const RFC_8032: [(&str, &str, &str); 3] = [
        (
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ];

    #[test]
    fn rfc_8032_known_answers() {
        for (key, message, signature) in RFC_8032 {
            let (key, message, signature) = (hex(key), hex(message), hex(signature));
            assert!(ed25519_verify(&key, &message, &signature), "{key:?}");
            let mut other = message.clone();
            other.push(0);
            assert!(!ed25519_verify(&key, &other, &signature));
            for i in [0, 31, 32, 63] {
                let mut bad = signature.clone();
                bad[i] ^= 1;
                assert!(!ed25519_verify(&key, &message, &bad), "signature bit {i}");
            }
            assert!(!ed25519_verify(&key[..31], &message, &signature));
            assert!(!ed25519_verify(&key, &message, &signature[..63]));
        }
    }

    /// The group order L, little-endian: S + L is the same scalar, written non-canonically.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    #[test]
    fn non_canonical_signatures_and_small_order_keys_are_refused() {
        let (key, message, signature) = RFC_8032[0];
        let (key, message, signature) = (hex(key), hex(message), hex(signature));
        // S + L: valid under a lax verifier that reduces S, refused here.
        let mut lax = signature.clone();
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(lax[32 + i]) + u16::from(L[i]) + carry;
            lax[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        assert!(!ed25519_verify(&key, &message, &lax));
        // Small-order keys: the identity (y = 1) and y = 0 (order 4).
        let identity = {
            let mut k = [0u8; 32];
            k[0] = 1;
            k
        };
        for weak in [identity, [0u8; 32]] {
            assert!(!ed25519_verify(&weak, &message, &signature));
            let cose = Value::Map(
                [
                    (Value::Integer(1), Value::Integer(1)),
                    (Value::Integer(3), Value::Integer(-8)),
                    (Value::Integer(-1), Value::Integer(6)),
                    (Value::Integer(-2), Value::Bytes(weak.to_vec())),
                ]
                .into_iter()
                .collect(),
            );
            assert_eq!(parse_ed25519(&cose), None);
        }
    }

    #[test]
    fn cose_ed25519_keys_are_read_exactly() {
        let key = hex(RFC_8032[0].0);
        let cose = |kty: i128, alg: i128, crv: i128, x: Vec<u8>| {
            Value::Map(
                [
                    (Value::Integer(1), Value::Integer(kty)),
                    (Value::Integer(3), Value::Integer(alg)),
                    (Value::Integer(-1), Value::Integer(crv)),
                    (Value::Integer(-2), Value::Bytes(x)),
                ]
                .into_iter()
                .collect(),
            )
        };
        assert_eq!(
            parse_ed25519(&cose(1, -8, 6, key.clone())).map(|k| k.to_vec()),
            Some(key.clone())
        );
        assert_eq!(parse_ed25519(&cose(2, -8, 6, key.clone())), None, "not OKP");
        assert_eq!(parse_ed25519(&cose(1, -7, 6, key.clone())), None, "not EdDSA");
        assert_eq!(parse_ed25519(&cose(1, -8, 7, key.clone())), None, "Ed448");
        assert_eq!(parse_ed25519(&cose(1, -8, 6, key[..31].to_vec())), None, "short");
        assert_eq!(parse_ed25519(&Value::Integer(1)), None);
    }

    fn rp() -> RelyingParty {
        RelyingParty::new("example.com", "Example", &[ORIGIN]).unwrap()
    }

    /// Registers a credential on the core's path; returns the stored credential.
    fn register(engine: &Engine, client: &mut Client<SoftPasskey>, as_passkey: bool) -> Vec<u8> {
        let (options, state) = engine
            .start_registration(b"handle-1", "alice", "Alice", Vec::new(), as_passkey, false)
            .unwrap();
        let rsp = client.create(&serde_json::to_value(&options.0).unwrap()).unwrap();
        let rsp = RegistrationResponse::from_json_value(rsp).unwrap();
        let (new, _, _) = engine.finish_registration(&rsp, &state).map_err(|_| "refused").unwrap();
        new.credential
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        None,
        AuthDataBit(usize, u8),
        ClientDataBit(usize, u8),
        SignatureBit(usize, u8),
        RawIdBit(usize, u8),
        ClientField(&'static str, Json),
        DropUserVerification,
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            2 => Just(Mutation::None),
            3 => (0usize..64, 0u8..8).prop_map(|(i, b)| Mutation::AuthDataBit(i, b)),
            3 => (0usize..200, 0u8..8).prop_map(|(i, b)| Mutation::ClientDataBit(i, b)),
            2 => (0usize..80, 0u8..8).prop_map(|(i, b)| Mutation::SignatureBit(i, b)),
            1 => (0usize..16, 0u8..8).prop_map(|(i, b)| Mutation::RawIdBit(i, b)),
            1 => Just(Mutation::ClientField("type", json!("webauthn.create"))),
            1 => Just(Mutation::ClientField("origin", json!("https://evil.example.com"))),
            1 => Just(Mutation::ClientField("origin", json!("https://auth.example.com:8443"))),
            1 => Just(Mutation::ClientField("origin", json!("http://auth.example.com"))),
            1 => Just(Mutation::ClientField("challenge", json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))),
            1 => Just(Mutation::ClientField("crossOrigin", json!(true))),
            1 => Just(Mutation::DropUserVerification),
        ]
    }

    fn flip(v: &mut Json, pointer: &str, i: usize, bit: u8) {
        let field = v.pointer_mut(pointer).unwrap();
        let mut bytes = B64.decode(field.as_str().unwrap()).unwrap();
        if bytes.is_empty() {
            return;
        }
        let i = i % bytes.len();
        bytes[i] ^= 1 << bit;
        *field = json!(B64.encode(bytes));
    }

    fn apply(rsp: &mut Json, m: &Mutation) {
        match m {
            Mutation::None | Mutation::DropUserVerification => {}
            Mutation::AuthDataBit(i, b) => flip(rsp, "/response/authenticatorData", *i, *b),
            Mutation::ClientDataBit(i, b) => flip(rsp, "/response/clientDataJSON", *i, *b),
            Mutation::SignatureBit(i, b) => flip(rsp, "/response/signature", *i, *b),
            Mutation::RawIdBit(i, b) => {
                flip(rsp, "/rawId", *i, *b);
                rsp["id"] = rsp["rawId"].clone();
            }
            Mutation::ClientField(name, value) => {
                let bytes = B64.decode(rsp["response"]["clientDataJSON"].as_str().unwrap()).unwrap();
                let mut client: Json = serde_json::from_slice(&bytes).unwrap();
                client[*name] = value.clone();
                rsp["response"]["clientDataJSON"] = json!(B64.encode(client.to_string()));
            }
        }
    }

    /// The differential proof: on ES256 assertions, valid and mutated, by security keys and
    /// passkeys, for second-factor and passwordless ceremonies, with the stored flags varied, this
    /// path (with the core's signature check) accepts exactly what the core accepts, and reads the
    /// same counter and flags.
    #[test]
    fn the_ed25519_path_decides_as_the_core_on_es256_assertions() {
        let engine = Engine::new(&rp(), None);
        let mut key = security_key();
        let mut pk = passkey();
        let key_cred = register(&engine, &mut key, false);
        let pk_cred = register(&engine, &mut pk, true);
        let (key, pk) = (std::cell::RefCell::new(key), std::cell::RefCell::new(pk));
        let (accepted, rejected) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
        // A fixed seed: the same inputs every run, so the counts below are not luck.
        let config = ProptestConfig {
            rng_seed: proptest::test_runner::RngSeed::Fixed(8032),
            ..ProptestConfig::with_cases(300)
        };
        proptest!(config, |(m in mutation(), use_passkey in any::<bool>(), passwordless in any::<bool>(),
                            stored_uv in any::<bool>(), stored_be in any::<bool>())| {
            let (mut client, stored) = if use_passkey { (pk.borrow_mut(), &pk_cred) } else { (key.borrow_mut(), &key_cred) };
            let mut cred: Credential = serde_json::from_slice(stored).unwrap();
            cred.user_verified = stored_uv;
            cred.backup_eligible = stored_be;
            let stored = serde_json::to_vec(&cred).unwrap();
            let ids: Vec<&[u8]> = vec![stored.as_slice()];
            let (options, state) = engine
                .start_authentication(if passwordless { None } else { Some(&ids) }, false, None)
                .unwrap();
            let mut options = serde_json::to_value(&options.0).unwrap();
            if matches!(m, Mutation::DropUserVerification) {
                options["publicKey"]["userVerification"] = json!("discouraged");
                client.uv_capable = false;
            }
            let answer = client.get(&options);
            client.uv_capable = use_passkey;
            let Ok(mut rsp) = answer else { return Ok(()); };
            apply(&mut rsp, &m);
            let Ok(rsp) = AuthenticationResponse::from_json_value(rsp) else { return Ok(()); };
            let core = engine.finish_authentication(&rsp, &state, &ids);
            let view: StateView = serde_json::from_slice(&state).unwrap();
            let rp_id_hash: [u8; 32] = Sha256::digest(b"example.com").into();
            let origins = [Url::parse(ORIGIN).unwrap()];
            let expected = Expected {
                rp_id_hash,
                origins: &origins,
                challenge: &view.challenge,
                policy: view.policy,
                allow_backup_eligible_upgrade: view.allow_backup_eligible_upgrade,
            };
            // The credential as the engine presents it to the core (counter zeroed, the claimed
            // backup eligibility).
            let mut presented = cred.clone();
            presented.counter = 0;
            presented.backup_eligible = rsp.0.response.authenticator_data.get(32).is_some_and(|f| f & 0x08 != 0);
            let ours = verify_assertion(&rsp.0, &expected, &[presented], SignatureCheck::CoreElseEd25519);
            match (&core, &ours) {
                (Ok(a), Ok(b)) => {
                    prop_assert_eq!(
                        (&a.credential_id, a.counter, a.user_verified, a.backup_eligible, a.backup_state),
                        (&b.credential_id, b.counter, b.user_verified, b.backup_eligible, b.backup_state)
                    );
                    accepted.set(accepted.get() + 1);
                }
                (Err(_), Err(_)) => rejected.set(rejected.get() + 1),
                _ => prop_assert!(false, "{:?}: core {} ours {}", m, core.is_ok(), ours.is_ok()),
            }
        });
        // Both outcomes occurred: the comparison could have failed either way.
        let (accepted, rejected) = (accepted.get(), rejected.get());
        assert!(
            accepted >= 5 && rejected >= 50,
            "accepted {accepted}, rejected {rejected}"
        );
    }

    /// An ES256 key the test holds: it signs assertions the core verifies, so every field of a
    /// mutated assertion can be signed validly.
    struct Es256Signer {
        signing: crypto_glue::ecdsa_p256::EcdsaP256SigningKey,
        cose: COSEKey,
    }

    impl Es256Signer {
        fn new() -> Self {
            let secret = crypto_glue::ecdsa_p256::new_key();
            let cose = COSEKey {
                type_: COSEAlgorithm::ES256,
                key: COSEKeyType::EC_EC2(webauthn_rs_core::proto::COSEEC2Key::try_from(&secret.public_key()).unwrap()),
            };
            Self {
                signing: crypto_glue::ecdsa_p256::EcdsaP256SigningKey::from(&secret),
                cose,
            }
        }

        /// A stored credential `id` with this key and the given registration facts.
        fn credential(&self, id: &[u8], user_verified: bool, backup_eligible: bool, required: bool) -> Credential {
            Credential {
                cred_id: id.to_vec(),
                cred: self.cose.clone(),
                counter: 0,
                transports: None,
                user_verified,
                backup_eligible,
                backup_state: false,
                registration_policy: if required {
                    UserVerificationPolicy::Required
                } else {
                    UserVerificationPolicy::Preferred
                },
                extensions: RegisteredExtensions::none(),
                attestation: ParsedAttestation::default(),
                attestation_format: AttestationFormat::None,
            }
        }

        /// The browser's response for `raw_id`: authenticator data (the hash of `rp_id`,
        /// `flags`, `counter`) and `client` JSON, signed (or with the signature's last byte
        /// flipped).
        fn assertion(
            &self,
            raw_id: &[u8],
            rp_id: &[u8],
            flags: u8,
            counter: u32,
            client: &str,
            good: bool,
        ) -> AuthenticationResponse {
            use crypto_glue::traits::Signer as _;
            let mut auth = Sha256::digest(rp_id).to_vec();
            auth.push(flags);
            auth.extend_from_slice(&counter.to_be_bytes());
            let mut signed = auth.clone();
            signed.extend_from_slice(&Sha256::digest(client.as_bytes()));
            let signature: crypto_glue::ecdsa_p256::EcdsaP256Signature = self.signing.sign(&signed);
            let mut signature = signature.to_der().as_bytes().to_vec();
            if !good && let Some(last) = signature.last_mut() {
                *last ^= 1;
            }
            AuthenticationResponse::from_json_value(json!({
                "id": B64.encode(raw_id),
                "rawId": B64.encode(raw_id),
                "response": {
                    "authenticatorData": B64.encode(&auth),
                    "clientDataJSON": B64.encode(client.as_bytes()),
                    "signature": B64.encode(&signature),
                    "userHandle": null,
                },
                "extensions": {},
                "type": "public-key",
            }))
            .unwrap()
        }
    }

    /// The differential proof with a key the test holds, so that every mutation is signed
    /// validly and reaches the check it targets: client data type, challenge and origin, the
    /// relying party id hash, the presence, verification and backup flags, the counter, the
    /// credential id, the user-verification policies of ceremony and credential, the recorded
    /// backup eligibility, and a bad signature. This path (with the core's signature check)
    /// accepts exactly what the core accepts.
    #[test]
    fn the_ed25519_path_decides_as_the_core_on_signed_mutations() {
        let engine = Engine::new(&rp(), None);
        let signer = Es256Signer::new();
        let id = vec![7u8; 16];
        let (accepted, rejected) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
        let types = ["webauthn.get", "webauthn.create", ""];
        let origins = [
            ORIGIN,
            "https://evil.example.com",
            "https://auth.example.com:8443",
            "http://auth.example.com",
            "https://example.com",
        ];
        let config = ProptestConfig {
            rng_seed: proptest::test_runner::RngSeed::Fixed(8032),
            ..ProptestConfig::with_cases(600)
        };
        proptest!(config, |(type_i in prop_oneof![4 => Just(0usize), 1 => 1usize..3],
                            origin_i in prop_oneof![4 => Just(0usize), 1 => 1usize..5],
                            right_challenge in prop::bool::weighted(0.85),
                            right_rp in prop::bool::weighted(0.85),
                            flags in any::<u8>(),
                            counter in prop_oneof![Just(0u32), any::<u32>()],
                            right_id in prop::bool::weighted(0.9),
                            good_signature in prop::bool::weighted(0.9),
                            passwordless in any::<bool>(),
                            stored_uv in any::<bool>(),
                            stored_be in any::<bool>(),
                            required_at_registration in any::<bool>())| {
            let cred = signer.credential(&id, stored_uv, stored_be, required_at_registration);
            let stored = serde_json::to_vec(&cred).unwrap();
            let ids: Vec<&[u8]> = vec![stored.as_slice()];
            let (_, state) = engine
                .start_authentication(if passwordless { None } else { Some(&ids) }, false, None)
                .unwrap();
            let view: StateView = serde_json::from_slice(&state).unwrap();
            let challenge = if right_challenge { view.challenge.clone() } else { vec![9; 32] };
            let client = json!({
                "type": types[type_i],
                "challenge": B64.encode(&challenge),
                "origin": origins[origin_i],
                "crossOrigin": false,
            })
            .to_string();
            // Flags: UP, UV, BE, BS and the reserved bits as drawn; never AT or ED (no data follows).
            let flags = flags & 0b0011_1111;
            let raw_id = if right_id { id.clone() } else { vec![8u8; 16] };
            let rp_id: &[u8] = if right_rp { b"example.com" } else { b"evil.com" };
            let rsp = signer.assertion(&raw_id, rp_id, flags, counter, &client, good_signature);
            let core = engine.finish_authentication(&rsp, &state, &ids);
            let rp_id_hash: [u8; 32] = Sha256::digest(b"example.com").into();
            let allowed_origins = [Url::parse(ORIGIN).unwrap()];
            let expected = Expected {
                rp_id_hash,
                origins: &allowed_origins,
                challenge: &view.challenge,
                policy: view.policy,
                allow_backup_eligible_upgrade: view.allow_backup_eligible_upgrade,
            };
            let mut presented = cred.clone();
            presented.backup_eligible = flags & 0x08 != 0;
            let ours = verify_assertion(&rsp.0, &expected, &[presented], SignatureCheck::CoreElseEd25519);
            match (&core, &ours) {
                (Ok(a), Ok(b)) => {
                    prop_assert_eq!(
                        (&a.credential_id, a.counter, a.user_verified, a.backup_eligible, a.backup_state),
                        (&b.credential_id, b.counter, b.user_verified, b.backup_eligible, b.backup_state)
                    );
                    accepted.set(accepted.get() + 1);
                }
                (Err(_), Err(_)) => rejected.set(rejected.get() + 1),
                _ => prop_assert!(false, "core {} ours {}: type {} origin {} challenge {} rp {} flags {:#04x} id {} sig {} pwless {} uv {} be {} req {}",
                    core.is_ok(), ours.is_ok(), type_i, origin_i, right_challenge, right_rp, flags, right_id,
                    good_signature, passwordless, stored_uv, stored_be, required_at_registration),
            }
        });
        let (accepted, rejected) = (accepted.get(), rejected.get());
        assert!(
            accepted >= 10 && rejected >= 100,
            "accepted {accepted}, rejected {rejected}"
        );
    }

    /// Related origins: the engine of a relying party configured with `https://example.co.uk`
    /// accepts a validly signed assertion from there (the core's path and this one), and not
    /// from an origin it was not given. (The software authenticators refuse to sign for a
    /// relying party id that is not their origin's suffix, so the assertion is made here.)
    #[test]
    fn related_origins_pass_the_origin_check_and_only_they() {
        let rp = RelyingParty::new("example.com", "Example", &[ORIGIN])
            .unwrap()
            .with_related_origins(&["https://example.co.uk"])
            .unwrap();
        let engine = Engine::new(&rp, None);
        let signer = Es256Signer::new();
        let cred = signer.credential(&[7; 16], false, false, false);
        let stored = serde_json::to_vec(&cred).unwrap();
        let ids: Vec<&[u8]> = vec![stored.as_slice()];
        for (origin, accepted) in [
            ("https://example.co.uk", true),
            (ORIGIN, true),
            ("https://example.org", false),
            ("https://www.example.co.uk", false),
        ] {
            let (_, state) = engine.start_authentication(Some(&ids), false, None).unwrap();
            let view: StateView = serde_json::from_slice(&state).unwrap();
            let client =
                json!({"type": "webauthn.get", "challenge": B64.encode(&view.challenge), "origin": origin}).to_string();
            let rsp = signer.assertion(&[7; 16], b"example.com", 0x01, 1, &client, true);
            assert_eq!(
                engine.finish_authentication(&rsp, &state, &ids).is_ok(),
                accepted,
                "{origin}"
            );
            let origins = rp.origin_urls();
            let expected = Expected {
                rp_id_hash: Sha256::digest(b"example.com").into(),
                origins: &origins,
                challenge: &view.challenge,
                policy: view.policy,
                allow_backup_eligible_upgrade: false,
            };
            let ours = verify_assertion(
                &rsp.0,
                &expected,
                std::slice::from_ref(&cred),
                SignatureCheck::CoreElseEd25519,
            );
            assert_eq!(ours.is_ok(), accepted, "{origin} (the EdDSA path's check)");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_keys_and_signatures_never_panic(key in proptest::collection::vec(any::<u8>(), 0..40),
                                                     sig in proptest::collection::vec(any::<u8>(), 0..80),
                                                     msg in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = ed25519_verify(&key, &msg, &sig);
            let _ = parse_ed25519(&Value::Map([(Value::Integer(-2), Value::Bytes(key))].into_iter().collect()));
        }
    }
}
