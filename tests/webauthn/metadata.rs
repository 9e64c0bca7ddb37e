//! FIDO metadata (MDS3): BLOBs signed under a test root are read; tampered, expired,
//! wrong-root and replayed BLOBs are refused; a model the metadata reports revoked is refused
//! at registration and, once a refreshed BLOB says so, at the next sign-in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::str::FromStr as _;
use std::time::{Duration, SystemTime};

use compact_jwt::crypto::JwsX509Signer;
use compact_jwt::jws::JwsBuilder;
use compact_jwt::traits::JwsSigner as _;
use crypto_glue::ecdsa_p384::{
    self, EcdsaP384DerSignature, EcdsaP384PrivateKey, EcdsaP384SigningKey, EcdsaP384VerifyingKey,
};
use crypto_glue::traits::ToExtension as _;
use crypto_glue::x509::profile::{BuilderProfile, cabf::Root};
use crypto_glue::x509::{
    BasicConstraints, Builder as _, CertBuilderError, Certificate, CertificateBuilder, Extension, Name,
    SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef, TbsCertificate, Time, Validity, uuid_to_serial,
};
use multifactor::webauthn::metadata::{Metadata, MetadataCatalog, MetadataError, MetadataRoots};
use multifactor::webauthn::{CredentialPolicy, CredentialRules, PolicyRefusal};
use multifactor::webauthn::{RelyingParty, WebAuthnConfig};
use multifactor::{KeyId, Keyring, ManualClock, MemoryStore, Mfa, MfaConfig, Outcome, SealingKey, UnixTime};
use multifactor_kit::browser::{Client, ORIGIN, register, sign_in};
use multifactor_kit::service::{TestMfa, user};
use serde_json::json;
use webauthn_authenticator_rs::softtoken::{AAGUID, SoftToken};

/// 2026-12-07, the day these BLOBs are read.
const NOW: u64 = 1_796_601_600 + 3_600;

struct Leaf {
    issuer: Name,
    subject: Name,
}

impl BuilderProfile for Leaf {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> Result<Vec<Extension>, CertBuilderError> {
        Ok(vec![
            BasicConstraints {
                ca: false,
                path_len_constraint: None,
            }
            .to_extension(tbs.subject(), &[])?,
        ])
    }
}

/// A test metadata service: a root, and a leaf key that signs BLOBs under it.
struct Service {
    root: Certificate,
    leaf: Certificate,
    key: EcdsaP384PrivateKey,
}

fn validity() -> Validity {
    let from = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW - 86_400 * 365);
    let until = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW + 86_400 * 365 * 5);
    Validity::new(Time::try_from(from).unwrap(), Time::try_from(until).unwrap())
}

impl Service {
    fn new(name: &str) -> Self {
        let root_key = ecdsa_p384::new_key();
        let root_signer = EcdsaP384SigningKey::from(&root_key);
        let root_spki = SubjectPublicKeyInfoOwned::from_key(&EcdsaP384VerifyingKey::from(&root_signer)).unwrap();
        let root_name = Name::from_str(&format!("CN={name} Root,O=multifactor tests,C=AU")).unwrap();
        let root = CertificateBuilder::new(
            Root::new(false, root_name.clone()).unwrap(),
            uuid_to_serial(uuid::Uuid::new_v4()),
            validity(),
            root_spki,
        )
        .unwrap()
        .build::<EcdsaP384SigningKey, EcdsaP384DerSignature>(&root_signer)
        .unwrap();
        let key = ecdsa_p384::new_key();
        let leaf_spki =
            SubjectPublicKeyInfoOwned::from_key(&EcdsaP384VerifyingKey::from(&EcdsaP384SigningKey::from(&key)))
                .unwrap();
        let leaf = CertificateBuilder::new(
            Leaf {
                issuer: root_name,
                subject: Name::from_str(&format!("CN={name} Signer,O=multifactor tests,C=AU")).unwrap(),
            },
            uuid_to_serial(uuid::Uuid::new_v4()),
            validity(),
            leaf_spki,
        )
        .unwrap()
        .build::<EcdsaP384SigningKey, EcdsaP384DerSignature>(&root_signer)
        .unwrap();
        Self { root, leaf, key }
    }

    fn roots(&self) -> MetadataRoots {
        use crypto_glue::traits::EncodeDer as _;
        MetadataRoots::from_der(&[&self.root.to_der().unwrap()]).unwrap()
    }

    fn sign(&self, payload: &serde_json::Value) -> String {
        let signer = JwsX509Signer::new(self.key.clone(), &self.leaf, &[]);
        let jws = JwsBuilder::into_json(payload).unwrap().build();
        signer.sign(&jws).unwrap().to_string()
    }
}

/// A BLOB payload: serial `no`, next update `next`, the soft token's model with `statuses`.
fn payload(no: u64, next: &str, statuses: &[&str]) -> serde_json::Value {
    let reports: Vec<_> = statuses
        .iter()
        .map(|s| json!({"status": s, "effectiveDate": "2026-01-01"}))
        .collect();
    json!({
        "legalHeader": "test",
        "no": no,
        "nextUpdate": next,
        "entries": [
            {
                "aaguid": AAGUID.to_string(),
                "metadataStatement": {"description": "Soft token", "aaguid": AAGUID.to_string(), "schema": 3},
                "statusReports": reports,
                "timeOfLastStatusChange": "2026-01-01",
                "someFieldAddedLater": {"nested": true}
            },
            {"aaid": "4e4e#4005", "metadataStatement": {"description": "A UAF authenticator"}, "statusReports": []}
        ]
    })
}

fn at() -> UnixTime {
    UnixTime::from_secs(NOW)
}

#[test]
fn a_blob_under_the_configured_root_is_read() {
    let service = Service::new("MDS");
    let blob = service.sign(&payload(7, "2027-01-01", &["FIDO_CERTIFIED_L1", "FIDO_CERTIFIED_L2"]));
    let metadata = Metadata::from_blob(&blob, &service.roots(), at()).unwrap();
    assert_eq!(
        (metadata.serial(), metadata.next_update(), metadata.len()),
        (7, "2027-01-01", 1)
    );
    let model = metadata.get(AAGUID.as_bytes()).unwrap();
    assert_eq!(model.description, "Soft token");
    assert_eq!(model.certification(), Some(2));
    assert_eq!(model.compromise(), None);
    // The same content as provider names, for hosts licensed to show them.
    let providers = multifactor::webauthn::ProviderCatalog::from_metadata(&metadata);
    assert_eq!(
        providers.get(AAGUID.as_bytes()).map(|p| p.name.as_str()),
        Some("Soft token")
    );
}

#[test]
fn tampered_expired_and_foreign_blobs_are_refused() {
    let service = Service::new("MDS");
    let roots = service.roots();
    let blob = service.sign(&payload(7, "2027-01-01", &["FIDO_CERTIFIED"]));
    // The payload changed after signing.
    let mut parts: Vec<String> = blob.split('.').map(str::to_owned).collect();
    let forged = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        serde_json::to_vec(&payload(7, "2027-01-01", &["REVOKED"])).unwrap(),
    );
    parts[1] = forged;
    assert_eq!(
        Metadata::from_blob(&parts.join("."), &roots, at()),
        Err(MetadataError::BadSignature)
    );
    // A flipped signature byte.
    let mut bad = blob.clone().into_bytes();
    let last = bad.len() - 5;
    bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
    assert!(matches!(
        Metadata::from_blob(std::str::from_utf8(&bad).unwrap(), &roots, at()),
        Err(MetadataError::BadSignature | MetadataError::Malformed(_))
    ));
    // Signed under another root.
    let other = Service::new("Other");
    assert_eq!(
        Metadata::from_blob(&other.sign(&payload(7, "2027-01-01", &[])), &roots, at()),
        Err(MetadataError::Untrusted)
    );
    // The real FIDO roots do not take a test BLOB either.
    assert_eq!(
        Metadata::from_blob(&blob, &MetadataRoots::fido().unwrap(), at()),
        Err(MetadataError::Untrusted)
    );
    // Past its next update (good through the day it names).
    let stale = service.sign(&payload(7, "2026-12-06", &[]));
    assert!(matches!(
        Metadata::from_blob(&stale, &roots, at()),
        Err(MetadataError::Expired { .. })
    ));
    let today = service.sign(&payload(7, "2026-12-07", &[]));
    assert!(Metadata::from_blob(&today, &roots, at()).is_ok());
    // A signing certificate not valid at the clock.
    let later = UnixTime::from_secs(NOW + 86_400 * 365 * 6);
    assert_eq!(
        Metadata::from_blob(&service.sign(&payload(7, "2040-01-01", &[])), &roots, later),
        Err(MetadataError::Untrusted)
    );
    // Not metadata at all, though signed.
    assert!(matches!(
        Metadata::from_blob(&service.sign(&json!({"hello": "world"})), &roots, at()),
        Err(MetadataError::Payload(_))
    ));
}

#[test]
fn a_catalogue_takes_only_newer_serials() {
    let service = Service::new("MDS");
    let roots = service.roots();
    let read = |no| Metadata::from_blob(&service.sign(&payload(no, "2027-01-01", &[])), &roots, at()).unwrap();
    let catalog = MetadataCatalog::new();
    assert!(catalog.current().is_none());
    catalog.refresh(read(7)).unwrap();
    assert_eq!(
        catalog.refresh(read(7)),
        Err(MetadataError::NotNewer { got: 7, held: 7 })
    );
    assert_eq!(
        catalog.refresh(read(6)),
        Err(MetadataError::NotNewer { got: 6, held: 7 })
    );
    assert_eq!(catalog.current().unwrap().serial(), 7);
    catalog.refresh(read(8)).unwrap();
    assert_eq!(catalog.current().unwrap().serial(), 8);
}

fn service_with(policy: CredentialPolicy, store: MemoryStore) -> TestMfa {
    service_with_config(
        WebAuthnConfig::new(RelyingParty::new("example.com", "Example", &[ORIGIN]).unwrap())
            .with_credential_policy(policy),
        store,
    )
}

fn service_with_config(webauthn: WebAuthnConfig, store: MemoryStore) -> TestMfa {
    let mut config = MfaConfig::new("Example").unwrap();
    config.webauthn = Some(webauthn);
    Mfa::new(
        store,
        Keyring::new(SealingKey::new(KeyId::new("k").unwrap(), [1; 32])),
        config,
    )
    .unwrap()
    .with_clock(ManualClock::new(at()))
    .with_rng(multifactor::InsecureSeededRng::new(7))
}

#[tokio::test]
async fn a_model_revoked_in_a_refreshed_blob_is_refused_at_the_next_sign_in() {
    let service = Service::new("MDS");
    let roots = service.roots();
    let catalog = MetadataCatalog::new();
    catalog
        .refresh(
            Metadata::from_blob(
                &service.sign(&payload(1, "2027-01-01", &["FIDO_CERTIFIED_L1"])),
                &roots,
                at(),
            )
            .unwrap(),
        )
        .unwrap();
    let mfa = service_with(
        CredentialPolicy::new()
            .security_keys(CredentialRules::new().certified())
            .with_metadata(catalog.clone()),
        MemoryStore::new(),
    );
    let alice = user("alice");
    let mut key = Client::new(SoftToken::new(true).unwrap().0, true);
    assert!(register(&mfa, &alice, &mut key, false).await.is_accepted());
    assert!(sign_in(&mfa, &alice, &mut key).await.is_accepted());

    // The next BLOB reports the model's user keys extractable.
    let revoked = payload(2, "2027-01-01", &["FIDO_CERTIFIED_L1", "USER_KEY_PHYSICAL_COMPROMISE"]);
    catalog
        .refresh(Metadata::from_blob(&service.sign(&revoked), &roots, at()).unwrap())
        .unwrap();
    assert_eq!(
        sign_in(&mfa, &alice, &mut key).await,
        Outcome::NotAllowed(PolicyRefusal::Compromised)
    );
    let bob = user("bob");
    assert_eq!(
        register(
            &mfa,
            &bob,
            &mut Client::new(SoftToken::new(true).unwrap().0, true),
            false
        )
        .await,
        Outcome::NotAllowed(PolicyRefusal::Compromised)
    );

    // Certified only: a model the metadata does not list is refused, and so is every model
    // while no metadata is loaded.
    let empty = service_with(
        CredentialPolicy::new()
            .security_keys(CredentialRules::new().certified())
            .with_metadata(MetadataCatalog::new()),
        MemoryStore::new(),
    );
    assert_eq!(
        register(
            &empty,
            &alice,
            &mut Client::new(SoftToken::new(true).unwrap().0, true),
            false
        )
        .await,
        Outcome::NotAllowed(PolicyRefusal::NotCertified)
    );
}

#[tokio::test]
async fn attestation_is_verified_against_the_metadata_trust_anchors() {
    use crypto_glue::traits::EncodeDer as _;
    let service = Service::new("MDS");
    let (token, ca) = SoftToken::new(true).unwrap();
    let ca_b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, ca.to_der().unwrap());
    let with_roots = |no: u64, statuses: &[&str]| {
        let mut p = payload(no, "2027-01-01", statuses);
        p["entries"][0]["metadataStatement"]["attestationRootCertificates"] = json!([ca_b64.clone()]);
        Metadata::from_blob(&service.sign(&p), &service.roots(), at()).unwrap()
    };
    let metadata = with_roots(1, &["FIDO_CERTIFIED_L1"]);
    assert_eq!(metadata.get(AAGUID.as_bytes()).unwrap().attestation_roots.len(), 1);
    let list = multifactor::webauthn::AttestationAllowList::from_metadata(&metadata).unwrap();
    assert_eq!(list.len(), 1);
    let attested = CredentialPolicy::new().security_keys(CredentialRules::new().attested());
    let mfa = service_with_config(
        WebAuthnConfig::new(RelyingParty::new("example.com", "Example", &[ORIGIN]).unwrap())
            .with_credential_policy(attested)
            .with_attestation_allow_list(list),
        MemoryStore::new(),
    );
    let alice = user("alice");
    let mut listed = Client::new(token, true);
    assert!(register(&mfa, &alice, &mut listed, false).await.is_accepted());
    assert!(sign_in(&mfa, &alice, &mut listed).await.is_accepted());
    // The same model with another attestation CA does not chain to the metadata's anchor.
    let mut other = Client::new(SoftToken::new(true).unwrap().0, true);
    assert_eq!(register(&mfa, &user("bob"), &mut other, false).await, Outcome::Rejected);
    // A compromised model contributes no anchor.
    let compromised = with_roots(2, &["FIDO_CERTIFIED_L1", "ATTESTATION_KEY_COMPROMISE"]);
    assert!(
        multifactor::webauthn::AttestationAllowList::from_metadata(&compromised)
            .unwrap()
            .is_empty()
    );
}
