//! WebAuthn credentials imported from Keycloak, authentik and webauthn-rs sign in the next day
//! with the same software authenticator that registered them there: passkeys passwordless,
//! security keys as a second factor. The export rows are written from the authenticator's
//! registration response, as each system stores it; the sign counter carries over.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use multifactor::import::{ImportBatch, ImportFormat, ImportOptions, ImportStatus};
use multifactor::store::DeviceData;
use multifactor::webauthn::{AuthenticationResponse, RegistrationResponse, RelyingParty, WebAuthnConfig};
use multifactor::{
    DeviceKind, DeviceStore as _, KeyId, Keyring, ManualClock, MemoryStore, Mfa, MfaConfig, Outcome, SealingKey,
    UnixTime, UserId,
};
use multifactor_kit::browser::{Client, ORIGIN, exported, passkey, security_key};
use multifactor_kit::service::{START, TestMfa, user};
use serde_json::{Value, json};
use webauthn_authenticator_rs::AuthenticatorBackend;

fn setup(seed: u64) -> TestMfa {
    let mut config = MfaConfig::new("Example").unwrap();
    config.webauthn = Some(WebAuthnConfig::new(
        RelyingParty::new("example.com", "Example", &[ORIGIN]).unwrap(),
    ));
    let keys = Keyring::new(SealingKey::new(KeyId::new("k").unwrap(), [3; 32]));
    Mfa::new(MemoryStore::new(), keys, config)
        .unwrap()
        .with_clock(ManualClock::new(UnixTime::from_secs(START)))
        .with_rng(multifactor::InsecureSeededRng::new(seed))
}

/// The authenticator creates a credential for this relying party under `handle`, as the old
/// system's registration page had it do (the old system's own checks are not ours to repeat).
async fn create_elsewhere<A: AuthenticatorBackend>(
    mfa: &TestMfa,
    client: &mut Client<A>,
    handle: &[u8],
    as_passkey: bool,
) -> Value {
    let who = user("someone");
    let (_, options) = if as_passkey {
        mfa.start_passkey_registration(&who, "someone", "Someone")
            .await
            .unwrap()
    } else {
        mfa.start_security_key_registration(&who, "someone", "Someone")
            .await
            .unwrap()
    };
    let mut options = options.to_json_value();
    options["publicKey"]["user"]["id"] = json!(B64.encode(handle));
    client.create(&options).unwrap()
}

fn csv_field(v: &str) -> String {
    format!("\"{}\"", v.replace('"', "\"\""))
}

async fn import(mfa: &TestMfa, format: ImportFormat, text: &str) -> Vec<ImportStatus> {
    let batch = ImportBatch::parse(format, text);
    assert!(batch.is_clean(), "{:?}", batch.problems);
    let report = mfa
        .import_batch(&batch, ImportOptions::default(), |_, _| {})
        .await
        .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    report.results.into_iter().map(|r| r.status).collect()
}

async fn passwordless<A: AuthenticatorBackend>(mfa: &TestMfa, client: &mut Client<A>) -> Outcome {
    let (ceremony, options) = mfa.start_passwordless(false).await.unwrap();
    let rsp = client.get(&options.to_json_value()).unwrap();
    mfa.finish_passwordless(&ceremony, &AuthenticationResponse::from_json(&rsp.to_string()).unwrap())
        .await
        .unwrap()
}

async fn second_factor<A: AuthenticatorBackend>(mfa: &TestMfa, who: &UserId, client: &mut Client<A>) -> Outcome {
    let (ceremony, options) = mfa.start_webauthn_authentication(who).await.unwrap();
    let rsp = client.get(&options.to_json_value()).unwrap();
    mfa.finish_webauthn_authentication(
        who,
        ceremony,
        &AuthenticationResponse::from_json(&rsp.to_string()).unwrap(),
    )
    .await
    .unwrap()
}

fn keycloak_row(username: &str, user_id: &str, kind: &str, registration: &Value, counter: Option<u32>) -> String {
    let (id, key, count, _, _) = exported(registration);
    let data = json!({
        "aaguid": "00000000-0000-0000-0000-000000000000",
        "credentialId": STANDARD.encode(&id),
        "counter": counter.unwrap_or(count),
        "credentialPublicKey": B64.encode(&key),
        "attestationStatementFormat": "none",
        "transports": ["usb"],
    });
    format!(
        "{username},{user_id},{kind},{},{},{}",
        csv_field("Imported"),
        csv_field("{}"),
        csv_field(&data.to_string())
    )
}

#[tokio::test]
async fn keycloak_passkeys_and_security_keys_sign_in_after_import() {
    let mfa = setup(1);
    let bob_id = "9c8e2f7a-6b5d-4e3c-8a1b-2c3d4e5f6a7b";
    let alice_id = "5f1b0e94-1f5b-4c4b-9d0e-3a3f8f0a6c11";
    let mut bobs_passkey = passkey();
    let mut alices_key = security_key();
    // Keycloak registers the user's id (its UTF-8 bytes) as the user handle.
    let reg_bob = create_elsewhere(&mfa, &mut bobs_passkey, bob_id.as_bytes(), true).await;
    let reg_alice = create_elsewhere(&mfa, &mut alices_key, alice_id.as_bytes(), false).await;
    let text = format!(
        "username,user_id,type,user_label,secret_data,credential_data\n{}\n{}\n",
        keycloak_row("bob", bob_id, "webauthn-passwordless", &reg_bob, None),
        keycloak_row("alice", alice_id, "webauthn", &reg_alice, None),
    );
    let statuses = import(&mfa, ImportFormat::Keycloak, &text).await;
    assert!(statuses.iter().all(|s| matches!(s, ImportStatus::Added(_))));

    let Outcome::Accepted(v) = passwordless(&mfa, &mut bobs_passkey).await else {
        panic!("bob's imported passkey did not sign him in")
    };
    assert_eq!((v.user().as_str(), v.kind()), ("bob", DeviceKind::Passkey));
    let alice = user("alice");
    let Outcome::Accepted(v) = second_factor(&mfa, &alice, &mut alices_key).await else {
        panic!("alice's imported security key was refused")
    };
    assert_eq!(v.kind(), DeviceKind::SecurityKey);
    // The transports were carried over into allowCredentials.
    let (_, options) = mfa.start_webauthn_authentication(&alice).await.unwrap();
    assert_eq!(
        options.to_json_value()["publicKey"]["allowCredentials"][0]["transports"],
        json!(["usb"])
    );
}

#[tokio::test]
async fn the_sign_counter_carries_over() {
    let mfa = setup(2);
    let mut key = security_key();
    let reg = create_elsewhere(&mfa, &mut key, b"u-1", false).await;
    // The old system had seen the counter at 1000: the authenticator's next (lower) counter
    // is what a clone would send, and is refused.
    let text = format!(
        "username,user_id,type,user_label,secret_data,credential_data\n{}\n",
        keycloak_row("carol", "u-1", "webauthn", &reg, Some(1000))
    );
    import(&mfa, ImportFormat::Keycloak, &text).await;
    let carol = user("carol");
    assert_eq!(second_factor(&mfa, &carol, &mut key).await, Outcome::Rejected);
    let devices = mfa.store().list_devices(&carol).await.unwrap();
    let DeviceData::WebAuthn(w) = &devices[0].data else {
        panic!()
    };
    assert_eq!(w.sign_count, 1000);
}

#[tokio::test]
async fn authentik_devices_sign_in_after_import() {
    let mfa = setup(3);
    let uid = "3f5a".repeat(16);
    let mut key = security_key();
    let mut pk = passkey();
    let reg_key = create_elsewhere(&mfa, &mut key, uid.as_bytes(), false).await;
    let reg_pk = create_elsewhere(&mfa, &mut pk, b"b0b-uid", true).await;
    let row = |user: &str, uid: &str, reg: &Value, discoverable: bool| {
        let (id, cose, count, _, _) = exported(reg);
        format!(
            "{user},{uid},Device,{},{},{count},example.com,,{discoverable}",
            B64.encode(id),
            B64.encode(cose)
        )
    };
    let text = format!(
        "username,user_uid,name,credential_id,public_key,sign_count,rp_id,aaguid,discoverable\n{}\n{}\n",
        row("alice", &uid, &reg_key, false),
        row("bob", "b0b-uid", &reg_pk, true)
    );
    import(&mfa, ImportFormat::AuthentikWebAuthn, &text).await;
    assert!(second_factor(&mfa, &user("alice"), &mut key).await.is_accepted());
    let Outcome::Accepted(v) = passwordless(&mfa, &mut pk).await else {
        panic!()
    };
    assert_eq!(v.user().as_str(), "bob");
}

/// Kratos: an identity's `webauthn` security key and `passkey` passkey, as its admin API shows
/// them (standard base64, COSE keys, the identity's user handle), sign in after the import;
/// the identity's TOTP and lookup codes come along.
#[tokio::test]
async fn kratos_identities_sign_in_after_import() {
    let mfa = setup(6);
    let id = "7d0e4b1a-0000-4000-8000-00000000d00d";
    let handle = [0x42u8; 16];
    let mut key = security_key();
    let mut pk = passkey();
    let reg_key = create_elsewhere(&mfa, &mut key, &handle, false).await;
    let reg_pk = create_elsewhere(&mfa, &mut pk, &handle, true).await;
    let cred = |reg: &Value, passwordless: bool| {
        let (cid, cose, count, be, bs) = exported(reg);
        json!({
            "id": STANDARD.encode(cid), "public_key": STANDARD.encode(cose), "attestation_type": "none",
            "authenticator": {"aaguid": STANDARD.encode([0u8; 16]), "sign_count": count, "clone_warning": false},
            "display_name": if passwordless { "Phone" } else { "Key" }, "added_at": "2025-03-01T10:00:00Z",
            "is_passwordless": passwordless, "transport": ["usb"],
            "flags": {"user_present": true, "user_verified": passwordless, "backup_eligible": be, "backup_state": bs},
        })
    };
    let identity = json!({
        "id": id,
        "credentials": {
            "webauthn": {"type": "webauthn", "config": {"credentials": [cred(&reg_key, false)], "user_handle": STANDARD.encode(handle)}},
            "passkey": {"type": "passkey", "config": {"credentials": [cred(&reg_pk, true)], "user_handle": STANDARD.encode(handle)}},
            "totp": {"type": "totp", "config": {"totp_url": "otpauth://totp/Kratos:d00d?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Kratos"}},
            "lookup_secret": {"type": "lookup_secret", "config": {"recovery_codes": [{"code": "k3v9x2mq"}, {"code": "p7a4z8rt", "used_at": "2025-04-02T08:00:00Z"}]}},
        },
    });
    let statuses = import(&mfa, ImportFormat::Kratos, &format!("{identity}\n")).await;
    assert_eq!(statuses.len(), 4);
    let who = user(id);
    let Outcome::Accepted(v) = passwordless(&mfa, &mut pk).await else {
        panic!("the imported passkey did not sign in")
    };
    assert_eq!((v.user(), v.kind()), (&who, DeviceKind::Passkey));
    assert!(second_factor(&mfa, &who, &mut key).await.is_accepted());
    // The used lookup code was left behind; the unused one works once.
    assert!(mfa.verify_backup_code(&who, "k3v9x2mq").await.unwrap().is_accepted());
    assert_eq!(
        mfa.verify_backup_code(&who, "p7a4z8rt").await.unwrap(),
        Outcome::Rejected
    );
    let names: Vec<String> = mfa
        .list_devices(&who)
        .await
        .unwrap()
        .iter()
        .map(|d| d.name.as_str().to_owned())
        .collect();
    assert!(
        names.contains(&"Phone".to_owned()) && names.contains(&"Key".to_owned()),
        "{names:?}"
    );
}

/// Authelia: its YAML export of a security key, and of a passkey given the user id Authelia
/// registered as its handle, sign in after the import; a YAML alias bomb is refused unread.
#[tokio::test]
async fn authelia_credentials_sign_in_after_import() {
    let mfa = setup(7);
    let mut key = security_key();
    let mut pk = passkey();
    let reg_key = create_elsewhere(&mfa, &mut key, b"alice-handle", false).await;
    let reg_pk = create_elsewhere(&mfa, &mut pk, b"QmFzZTY0SGFuZGxl", true).await;
    let item = |user: &str, reg: &Value, discoverable: bool, user_id: Option<&str>| {
        let (cid, cose, count, _, _) = exported(reg);
        let mut lines = vec![
            "    - created_at: 2024-05-01T10:00:00Z".to_owned(),
            "      rpid: example.com".to_owned(),
            format!("      username: {user}"),
            "      description: Imported".to_owned(),
            format!("      kid: {}", STANDARD.encode(cid)),
            "      transports:".to_owned(),
            "        - usb".to_owned(),
            format!("      sign_count: {count}"),
            "      legacy: false".to_owned(),
            format!("      discoverable: {discoverable}"),
            format!("      public_key: {}", STANDARD.encode(cose)),
        ];
        if let Some(id) = user_id {
            lines.push(format!("      user_id: {id}"));
        }
        lines.join("\n")
    };
    let yaml = format!(
        "webauthn_credentials:\n{}\n{}\n",
        item("alice", &reg_key, false, None),
        item("bob", &reg_pk, true, Some("QmFzZTY0SGFuZGxl")),
    );
    let statuses = import(&mfa, ImportFormat::AutheliaWebAuthn, &yaml).await;
    assert_eq!(statuses.len(), 2);
    assert!(second_factor(&mfa, &user("alice"), &mut key).await.is_accepted());
    let Outcome::Accepted(v) = passwordless(&mfa, &mut pk).await else {
        panic!("the imported passkey did not sign in")
    };
    assert_eq!((v.user().as_str(), v.kind()), ("bob", DeviceKind::Passkey));

    let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
                c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nwebauthn_credentials: [*c]\n";
    let batch = ImportBatch::parse(ImportFormat::AutheliaWebAuthn, bomb);
    assert!(batch.entries.is_empty());
    assert!(
        batch.problems[0].reason.contains("anchors are not read"),
        "{:?}",
        batch.problems
    );
}

#[tokio::test]
async fn webauthn_rs_passkeys_sign_in_after_import() {
    // The old system: an application on webauthn-rs, whose stored Passkey is the core's
    // credential inside {"cred": ...} (what `finish_passkey_registration` returns, serialised).
    let old = setup(4);
    let mut pk = passkey();
    let carol = user("carol");
    let (ceremony, options) = old.start_passkey_registration(&carol, "carol", "Carol").await.unwrap();
    let rsp = pk.create(&options.to_json_value()).unwrap();
    let rsp = RegistrationResponse::from_json(&rsp.to_string()).unwrap();
    assert!(
        old.finish_webauthn_registration(&carol, ceremony, &rsp, None)
            .await
            .unwrap()
            .is_accepted()
    );
    let devices = old.store().list_devices(&carol).await.unwrap();
    let DeviceData::WebAuthn(w) = &devices[0].data else {
        panic!()
    };
    let passkey_json: Value = serde_json::from_slice(&w.credential).unwrap();
    let line = json!({
        "user": "carol",
        "user_handle": B64.encode(&w.user_handle),
        "kind": "passkey",
        "name": "Carol's phone",
        "credential": {"cred": passkey_json},
    });

    let new = setup(5);
    let statuses = import(&new, ImportFormat::WebauthnRs, &format!("{line}\n")).await;
    assert!(matches!(statuses[..], [ImportStatus::Added(_)]));
    let Outcome::Accepted(v) = passwordless(&new, &mut pk).await else {
        panic!()
    };
    assert_eq!(v.user().as_str(), "carol");
    assert_eq!(
        new.list_devices(&carol).await.unwrap()[0].name.as_str(),
        "Carol's phone"
    );
    // Imported twice, it is there once.
    let again = import(&new, ImportFormat::WebauthnRs, &format!("{line}\n")).await;
    assert!(matches!(again[..], [ImportStatus::AlreadyPresent(_)]));
    assert_eq!(new.list_devices(&carol).await.unwrap().len(), 1);
}

/// A passkey's evidence: user verified, device-bound (the software authenticator sets no backup
/// flags), `hwk user mfa`; a security key's: `hwk user`.
#[tokio::test]
async fn webauthn_evidence_names_the_key_and_user_verification() {
    use multifactor::evidence::Amr;
    let mfa = setup(6);
    let mut pk = passkey();
    let dave = user("dave");
    let (ceremony, options) = mfa.start_passkey_registration(&dave, "dave", "Dave").await.unwrap();
    let rsp = pk.create(&options.to_json_value()).unwrap();
    let rsp = RegistrationResponse::from_json(&rsp.to_string()).unwrap();
    assert!(
        mfa.finish_webauthn_registration(&dave, ceremony, &rsp, None)
            .await
            .unwrap()
            .is_accepted()
    );
    let Outcome::Accepted(v) = passwordless(&mfa, &mut pk).await else {
        panic!()
    };
    let e = v.evidence().unwrap();
    assert_eq!(
        (e.kind(), e.user_verified(), e.synced()),
        (DeviceKind::Passkey, Some(true), Some(false))
    );
    assert_eq!(e.amr(), vec![Amr::Hwk, Amr::User, Amr::Mfa]);
    let devices = mfa.list_devices(&dave).await.unwrap();
    assert_eq!((devices[0].synced, devices[0].backed_up), (Some(false), Some(false)));

    let mut key = security_key();
    let erin = user("erin");
    let (ceremony, options) = mfa
        .start_security_key_registration(&erin, "erin", "Erin")
        .await
        .unwrap();
    let rsp = key.create(&options.to_json_value()).unwrap();
    let rsp = RegistrationResponse::from_json(&rsp.to_string()).unwrap();
    assert!(
        mfa.finish_webauthn_registration(&erin, ceremony, &rsp, None)
            .await
            .unwrap()
            .is_accepted()
    );
    let Outcome::Accepted(v) = second_factor(&mfa, &erin, &mut key).await else {
        panic!()
    };
    assert_eq!(v.evidence().unwrap().amr(), vec![Amr::Hwk, Amr::User]);
}

/// Level 3 signals: an unknown credential (and only an unknown one), the accepted credentials
/// after a deletion, the current user details after a rename.
#[tokio::test]
async fn signal_payloads_follow_the_store() {
    let mfa = setup(7);
    let carol = user("carol");
    let mut first = passkey();
    let mut second = passkey();
    for client in [&mut first, &mut second] {
        let (ceremony, options) = mfa.start_passkey_registration(&carol, "carol", "Carol").await.unwrap();
        let rsp = client.create(&options.to_json_value()).unwrap();
        let rsp = RegistrationResponse::from_json(&rsp.to_string()).unwrap();
        assert!(
            mfa.finish_webauthn_registration(&carol, ceremony, &rsp, None)
                .await
                .unwrap()
                .is_accepted()
        );
    }
    let handles = mfa.webauthn_user_handles(&carol).await.unwrap();
    assert_eq!(handles.len(), 1, "one user handle per user");
    // A tampered assertion of a known credential: rejected, but no unknown-credential signal.
    let (ceremony, options) = mfa.start_passwordless(false).await.unwrap();
    let mut rsp = first.get(&options.to_json_value()).unwrap();
    let sig = rsp["response"]["signature"].as_str().unwrap().to_owned();
    // Change a character in the middle (all its bits count), to one it is not.
    let middle = sig.len() / 2;
    let other = if &sig[middle..=middle] == "A" { "B" } else { "A" };
    rsp["response"]["signature"] = json!(format!("{}{other}{}", &sig[..middle], &sig[middle + 1..]));
    let rsp = AuthenticationResponse::from_json(&rsp.to_string()).unwrap();
    assert_eq!(
        mfa.finish_passwordless(&ceremony, &rsp).await.unwrap(),
        Outcome::Rejected
    );
    assert_eq!(mfa.unknown_credential_signal(&rsp).await.unwrap(), None);
    // Delete the first passkey: the accepted list names the second only.
    let first_id = first.handles.keys().next().unwrap().clone();
    let records = mfa.store().list_devices(&carol).await.unwrap();
    let first_device = records
        .iter()
        .find(|d| matches!(&d.data, DeviceData::WebAuthn(w) if B64.encode(&w.credential_id) == first_id))
        .map(|d| d.id)
        .unwrap();
    let signals = mfa.delete_device_with_signals(&carol, first_device).await.unwrap();
    assert_eq!(signals.len(), 1);
    let payload = signals[0].to_json_value();
    assert_eq!(payload["rpId"], "example.com");
    assert_eq!(payload["userId"], json!(B64.encode(&handles[0])));
    let second_id = second.handles.keys().next().unwrap().clone();
    assert_eq!(payload["allAcceptedCredentialIds"], json!([second_id]));
    // The deleted passkey is now unknown: the signal names it.
    let (ceremony, options) = mfa.start_passwordless(false).await.unwrap();
    let rsp = first.get(&options.to_json_value()).unwrap();
    let rsp = AuthenticationResponse::from_json(&rsp.to_string()).unwrap();
    assert_eq!(
        mfa.finish_passwordless(&ceremony, &rsp).await.unwrap(),
        Outcome::Rejected
    );
    let unknown = mfa.unknown_credential_signal(&rsp).await.unwrap().unwrap();
    assert_eq!(
        unknown.to_json_value(),
        json!({"rpId": "example.com", "credentialId": first_id})
    );
    // Details after a rename, per handle.
    let details = mfa
        .current_user_details_signals(&carol, "carol", "Carol C.")
        .await
        .unwrap();
    assert_eq!(details[0].to_json_value()["displayName"], "Carol C.");
    assert!(mfa.current_user_details_signals(&carol, "carol", "").await.is_err());
}

/// Provider names by AAGUID: an unnamed credential is named after its provider, and the device
/// list carries the provider (name and icon) from the catalog, refreshed in place.
#[tokio::test]
async fn providers_name_unnamed_credentials() {
    use multifactor::import::{ExportedCredential, WebAuthnImport};
    use multifactor::webauthn::{ProviderCatalog, Providers};
    let providers = Providers::new(ProviderCatalog::new());
    let mut config = MfaConfig::new("Example").unwrap();
    config.webauthn = Some(
        WebAuthnConfig::new(RelyingParty::new("example.com", "Example", &[ORIGIN]).unwrap())
            .with_providers(providers.clone()),
    );
    let keys = Keyring::new(SealingKey::new(KeyId::new("k").unwrap(), [3; 32]));
    let mfa = Mfa::new(MemoryStore::new(), keys, config)
        .unwrap()
        .with_clock(ManualClock::new(UnixTime::from_secs(START)))
        .with_rng(multifactor::InsecureSeededRng::new(11));
    let icloud = *uuid::Uuid::parse_str("fbfc3007-154e-4ecc-8c0b-6e020557d7bd")
        .unwrap()
        .as_bytes();
    let icon = "data:image/svg+xml;base64,PHN2Zy8+";
    providers.replace(
        ProviderCatalog::from_json(&format!(
            r#"{{"fbfc3007-154e-4ecc-8c0b-6e020557d7bd": {{"name": "iCloud Keychain", "icon_light": "{icon}"}}}}"#
        ))
        .unwrap(),
    );
    let mut pk = passkey();
    let reg = create_elsewhere(&mfa, &mut pk, b"h-1", true).await;
    let (id, cose, count, _, _) = exported(&reg);
    let import = WebAuthnImport::from_exported(&ExportedCredential {
        credential_id: &id,
        cose_public_key: &cose,
        sign_count: count,
        user_handle: Some(b"h-1"),
        discoverable: true,
        backup: Some((true, true)),
        transports: &[],
        aaguid: Some(icloud),
    })
    .unwrap();
    let olga = user("olga");
    mfa.import_webauthn(&olga, &import, None).await.unwrap();
    let devices = mfa.list_devices(&olga).await.unwrap();
    assert_eq!(devices[0].name.as_str(), "iCloud Keychain");
    assert_eq!(devices[0].aaguid, Some(icloud));
    let provider = devices[0].provider.clone().unwrap();
    assert_eq!(
        (provider.name.as_str(), provider.icon_light.as_deref()),
        ("iCloud Keychain", Some(icon))
    );
    // The catalog refreshed without it: the device keeps its name, loses the provider.
    providers.replace(ProviderCatalog::new());
    let devices = mfa.list_devices(&olga).await.unwrap();
    assert_eq!(
        (devices[0].name.as_str(), devices[0].provider.is_none()),
        ("iCloud Keychain", true)
    );
    // It still signs in: the recorded AAGUID does not disturb the stored credential.
    assert!(passwordless(&mfa, &mut pk).await.is_accepted());
}

/// `hwk` (a device-bound key) is never claimed from an assertion's flag alone: a credential
/// recorded as backup-eligible (synced) stays `swk` when a later assertion says it is not, and
/// stays recorded as eligible.
#[tokio::test]
async fn a_synced_credential_cannot_claim_to_be_device_bound() {
    use multifactor::evidence::Amr;
    use multifactor::store::{DeviceData, WebAuthnUse};
    let mfa = setup(8);
    let mut pk = passkey();
    let fay = user("fay");
    let (ceremony, options) = mfa.start_passkey_registration(&fay, "fay", "Fay").await.unwrap();
    let rsp = pk.create(&options.to_json_value()).unwrap();
    let rsp = RegistrationResponse::from_json(&rsp.to_string()).unwrap();
    let Outcome::Accepted(registered) = mfa
        .finish_webauthn_registration(&fay, ceremony, &rsp, None)
        .await
        .unwrap()
    else {
        panic!()
    };
    // As if its registration had said "synced" (the software authenticator says device-bound).
    let device = registered.device();
    let record = mfa.store().device(&fay, device).await.unwrap().unwrap();
    let DeviceData::WebAuthn(w) = &record.data else {
        panic!()
    };
    let synced = WebAuthnUse {
        sign_count: w.sign_count,
        backup_eligible: true,
        backup_state: true,
    };
    let now = multifactor::UnixTime::from_secs(START);
    assert!(
        mfa.store()
            .record_webauthn_use(&fay, device, w.sign_count, synced, now)
            .await
            .unwrap()
    );
    for _ in 0..2 {
        let Outcome::Accepted(v) = passwordless(&mfa, &mut pk).await else {
            panic!()
        };
        let e = v.evidence().unwrap();
        assert_eq!(e.synced(), Some(true));
        assert_eq!(e.amr(), vec![Amr::Swk, Amr::User, Amr::Mfa]);
    }
    let devices = mfa.list_devices(&fay).await.unwrap();
    assert_eq!(
        devices[0].synced,
        Some(true),
        "the credential is still recorded as synced"
    );
}
