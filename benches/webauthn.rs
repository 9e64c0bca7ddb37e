//! The cost of finishing a WebAuthn authentication, next to the `webauthn-rs-core` call it wraps.
//!
//! One criterion group, `webauthn_finish_authentication`, so the ratio comes from one run:
//!
//! - `multifactor_finish`: `Mfa::finish_webauthn_authentication` on a `MemoryStore`: the
//!   throttle charge, the take-once of the ceremony state, loading the user's credentials,
//!   decoding state and credentials, the signature check by `webauthn-rs-core`, the counter
//!   compare-and-swap and clearing the throttle. Every call needs a fresh ceremony (its state is
//!   taken out once) and a fresh assertion (the counter must advance); both are made outside the
//!   timed part, a batch at a time, and only the finishes are timed. Each must be accepted.
//! - `core_authenticate_credential`: `WebauthnCore::authenticate_credential` alone on the same
//!   kind of input, with its state and credential already in memory, in the same shape: fresh
//!   (response, state) pairs made a batch at a time outside the timed part, each verified once.
//!
//! - `multifactor_finish_eddsa`: the same call for an Ed25519 (COSE -8) passkey, verified on the
//!   EdDSA path beside the core (`ed25519-dalek` `verify_strict`), which `webauthn-rs-core`
//!   cannot verify. Its assertions are made by the bench itself with the key it holds (the
//!   software authenticator has no Ed25519), in the shape a browser sends; the credential is
//!   brought in with `WebAuthnImport`.
//!
//! The ES256 functions verify an ES256 assertion, with user verification, from a `SoftPasskey` of
//! `webauthn-authenticator-rs` registered as a passkey (user verification required), against a
//! ceremony that prefers user verification (what `start_webauthn_authentication` asks for).
//!
//! Run with `cargo bench --bench webauthn`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use multifactor_kit::bench as support;

use criterion::{Criterion, criterion_group, criterion_main};
use multifactor::webauthn::{AuthenticationResponse, RegistrationResponse, RelyingParty, WebAuthnConfig};
use multifactor::{
    CeremonyId, DeviceKind, InsecureSeededRng, KeyId, Keyring, ManualClock, MemoryStore, Mfa, MfaConfig, Outcome,
    SealingKey, UnixTime, UserId,
};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, COSEAlgorithm, CreationChallengeResponse, RequestChallengeResponse,
    UserVerificationPolicy,
};

const ORIGIN: &str = "https://auth.example.com";
/// An arbitrary instant, well inside the range of any clock.
const NOW: u64 = 1_800_000_000;
/// Ceremonies and assertions made ahead of a timed batch of finishes.
const BATCH: u64 = 128;
/// The algorithms `multifactor` offers at registration, in its order.
const ALGORITHMS: [COSEAlgorithm; 2] = [COSEAlgorithm::ES256, COSEAlgorithm::RS256];

type BenchMfa = Mfa<MemoryStore, ManualClock, InsecureSeededRng>;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(5))
        .sample_size(30)
}

fn origin() -> Url {
    Url::parse(ORIGIN).unwrap()
}

/// A software passkey that can verify its user (UV whenever the page asks for it or prefers it).
fn passkey() -> SoftPasskey {
    SoftPasskey::new(true)
}

// ----- multifactor ----------------------------------------------------------------------------------

fn service() -> BenchMfa {
    let rp = RelyingParty::new("example.com", "Example", &[ORIGIN]).unwrap();
    let mut config = MfaConfig::new("Example").unwrap();
    config.webauthn = Some(WebAuthnConfig::new(rp));
    let keys = Keyring::new(SealingKey::new(KeyId::new("k").unwrap(), [1; 32]));
    Mfa::new(MemoryStore::new(), keys, config)
        .unwrap()
        .with_clock(ManualClock::new(UnixTime::from_secs(NOW)))
        .with_rng(InsecureSeededRng::new(7))
}

/// `navigator.credentials.create()` with a UV-capable authenticator. The software authenticator
/// cannot store resident keys, so the browser side asks for none (as in the kit's software browser, `kit/src/browser.rs`).
fn create(auth: &mut SoftPasskey, options: &Value) -> RegistrationResponse {
    let mut options = options.clone();
    let sel = options.pointer_mut("/publicKey/authenticatorSelection").unwrap();
    sel["userVerification"] = json!("required");
    sel["requireResidentKey"] = json!(false);
    sel["residentKey"] = json!("discouraged");
    let ccr: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let rsp = auth.do_registration(origin(), ccr).unwrap();
    RegistrationResponse::from_json_value(serde_json::to_value(&rsp).unwrap()).unwrap()
}

/// `navigator.credentials.get()` with a UV-capable authenticator: "preferred" becomes UV.
fn get(auth: &mut SoftPasskey, options: &Value) -> AuthenticationResponse {
    let mut options = options.clone();
    let uv = options.pointer_mut("/publicKey/userVerification").unwrap();
    if uv == "preferred" {
        *uv = json!("required");
    }
    let rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let rsp = auth.do_authentication(origin(), rcr).unwrap();
    AuthenticationResponse::from_json_value(serde_json::to_value(&rsp).unwrap()).unwrap()
}

/// A fresh second-factor ceremony, answered by the authenticator.
async fn ceremony(mfa: &BenchMfa, user: &UserId, auth: &mut SoftPasskey) -> (CeremonyId, AuthenticationResponse) {
    let (id, options) = mfa.start_webauthn_authentication(user).await.unwrap();
    (id, get(auth, &options.to_json_value()))
}

fn assert_accepted(outcome: &Outcome) {
    match outcome {
        Outcome::Accepted(v) => {
            assert_eq!((v.kind(), v.user_verified()), (DeviceKind::Passkey, Some(true)));
        }
        other => panic!("expected acceptance, got {other:?}"),
    }
}

fn bench_multifactor(c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let rt = runtime();
    let mfa = service();
    let user = UserId::new("alice").unwrap();
    let mut auth = passkey();
    rt.block_on(async {
        let (id, options) = mfa.start_passkey_registration(&user, "alice", "Alice").await.unwrap();
        let rsp = create(&mut auth, &options.to_json_value());
        let outcome = mfa.finish_webauthn_registration(&user, id, &rsp, None).await.unwrap();
        assert_accepted(&outcome);
        // Sanity: one finish outside the bench.
        let (id, rsp) = ceremony(&mfa, &user, &mut auth).await;
        assert_accepted(&mfa.finish_webauthn_authentication(&user, id, &rsp).await.unwrap());
    });

    c.bench_function("multifactor_finish", |b| {
        b.iter_custom(|iters| {
            rt.block_on(support::timed_in_chunks(
                iters,
                BATCH,
                // Fresh ceremonies and assertions (counter n+1, n+2, ...), untimed.
                async |n| {
                    let mut batch = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        batch.push(ceremony(&mfa, &user, &mut auth).await);
                    }
                    batch
                },
                async |(id, rsp): (CeremonyId, AuthenticationResponse)| {
                    let outcome = mfa
                        .finish_webauthn_authentication(black_box(&user), black_box(id), black_box(&rsp))
                        .await
                        .unwrap();
                    assert_accepted(black_box(&outcome));
                },
            ))
        });
    });
}

// ----- webauthn-rs-core ---------------------------------------------------------------------------

fn bench_core(c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let core = WebauthnCore::new_unsafe_experts_only(
        "Example",
        "example.com",
        vec![origin()],
        Duration::from_secs(300),
        Some(false),
        Some(false),
    );
    let mut auth = passkey();

    // Registration as `multifactor` registers a passkey (resident key left to the browser side,
    // as above: the software authenticator cannot store one).
    let builder = core
        .new_challenge_register_builder(&[7; 16], "alice", "Alice")
        .unwrap()
        .user_verification_policy(UserVerificationPolicy::Required)
        .exclude_credentials(None)
        .require_resident_key(false)
        .credential_algorithms(ALGORITHMS.to_vec())
        .attestation(AttestationConveyancePreference::None)
        .reject_synchronised_authenticators(false);
    let (ccr, reg_state) = core.generate_challenge_register(builder).unwrap();
    let reg = auth.do_registration(origin(), ccr).unwrap();
    let credential = core.register_credential(&reg, &reg_state, None).unwrap();
    assert!(credential.user_verified);
    assert_eq!(credential.counter, 0);

    // Second-factor ceremonies as `multifactor` starts them (UV preferred), answered with UV.
    let mut fresh = |n: u64| -> Vec<_> {
        (0..n)
            .map(|_| {
                let builder = core
                    .new_challenge_authenticate_builder(
                        vec![credential.clone()],
                        Some(UserVerificationPolicy::Preferred),
                    )
                    .unwrap();
                let (mut rcr, state) = core.generate_challenge_authenticate(builder).unwrap();
                rcr.public_key.user_verification = UserVerificationPolicy::Required;
                (auth.do_authentication(origin(), rcr).unwrap(), state)
            })
            .collect()
    };
    for (rsp, state) in fresh(1) {
        let result = core.authenticate_credential(&rsp, &state).unwrap();
        assert!(result.user_verified());
        assert_eq!(result.counter(), 1);
    }

    // The same shape as `multifactor_finish`: a batch of fresh assertions made untimed, each
    // verified once, timed. (Verifying one pair again and again would keep its data hot in the
    // caches, which a server never sees.)
    c.bench_function("core_authenticate_credential", |b| {
        let rt = runtime();
        b.iter_custom(|iters| {
            rt.block_on(support::timed_in_chunks(
                iters,
                BATCH,
                async |n| fresh(n),
                async |(rsp, state)| {
                    black_box(
                        core.authenticate_credential(black_box(&rsp), black_box(&state))
                            .unwrap(),
                    );
                },
            ))
        });
    });
}

// ----- EdDSA ----------------------------------------------------------------------------------------

/// An Ed25519 passkey the bench holds: it answers a ceremony's options as an authenticator and
/// browser would (user present and verified, the counter advancing).
struct Ed25519Passkey {
    key: ed25519_dalek::SigningKey,
    id: Vec<u8>,
    counter: u32,
}

impl Ed25519Passkey {
    fn cose_public_key(&self) -> Vec<u8> {
        let mut cose = vec![0xa4, 0x01, 0x01, 0x03, 0x27, 0x20, 0x06, 0x21, 0x58, 0x20];
        cose.extend_from_slice(self.key.verifying_key().as_bytes());
        cose
    }

    fn get(&mut self, options: &Value) -> AuthenticationResponse {
        use base64::Engine as _;
        use ed25519_dalek::Signer as _;
        use sha2::Digest as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        self.counter += 1;
        let client = json!({
            "type": "webauthn.get",
            "challenge": options["publicKey"]["challenge"],
            "origin": ORIGIN,
            "crossOrigin": false,
        })
        .to_string();
        let mut auth = sha2::Sha256::digest(b"example.com").to_vec();
        auth.push(0x05); // user present, user verified
        auth.extend_from_slice(&self.counter.to_be_bytes());
        let mut signed = auth.clone();
        signed.extend_from_slice(&sha2::Sha256::digest(client.as_bytes()));
        let signature = self.key.sign(&signed).to_bytes();
        AuthenticationResponse::from_json_value(json!({
            "id": b64.encode(&self.id),
            "rawId": b64.encode(&self.id),
            "response": {
                "authenticatorData": b64.encode(&auth),
                "clientDataJSON": b64.encode(client.as_bytes()),
                "signature": b64.encode(signature),
                "userHandle": null,
            },
            "extensions": {},
            "type": "public-key",
        }))
        .unwrap()
    }
}

fn bench_eddsa(c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    use multifactor::import::{ExportedCredential, WebAuthnImport};
    let rt = runtime();
    let mfa = service();
    let user = UserId::new("alice").unwrap();
    let mut auth = Ed25519Passkey {
        key: ed25519_dalek::SigningKey::from_bytes(&[42; 32]),
        id: vec![5; 16],
        counter: 0,
    };
    let import = WebAuthnImport::from_exported(&ExportedCredential {
        credential_id: &auth.id,
        cose_public_key: &auth.cose_public_key(),
        sign_count: 0,
        user_handle: Some(b"alice-handle"),
        discoverable: true,
        backup: Some((false, false)),
        transports: &["internal"],
        aaguid: None,
    })
    .unwrap();
    rt.block_on(async {
        mfa.import_webauthn(&user, &import, None).await.unwrap();
        let (id, options) = mfa.start_webauthn_authentication(&user).await.unwrap();
        let rsp = auth.get(&options.to_json_value());
        assert_accepted(&mfa.finish_webauthn_authentication(&user, id, &rsp).await.unwrap());
    });
    c.bench_function("multifactor_finish_eddsa", |b| {
        b.iter_custom(|iters| {
            rt.block_on(support::timed_in_chunks(
                iters,
                BATCH,
                async |n| {
                    let mut batch = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        let (id, options) = mfa.start_webauthn_authentication(&user).await.unwrap();
                        batch.push((id, auth.get(&options.to_json_value())));
                    }
                    batch
                },
                async |(id, rsp): (CeremonyId, AuthenticationResponse)| {
                    let outcome = mfa
                        .finish_webauthn_authentication(black_box(&user), black_box(id), black_box(&rsp))
                        .await
                        .unwrap();
                    assert_accepted(black_box(&outcome));
                },
            ))
        });
    });
}

fn webauthn_finish_authentication(c: &mut Criterion) {
    let mut group = c.benchmark_group("webauthn_finish_authentication");
    bench_multifactor(&mut group);
    bench_eddsa(&mut group);
    bench_core(&mut group);
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = webauthn_finish_authentication
}
criterion_main!(benches);
