//! An organisation's rules on authenticators: refused at registration and again at every
//! sign-in (a model denied since, a key that became synced), with a reason and an audit event;
//! the inventory across users, and the bulk revocation of a model.
//!
//! The rules at sign-in look at what the store kept of each credential, so every scenario runs
//! on each store: here on the in-memory store and SQLite, and in `tests/postgres` (which
//! includes this file) on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use crypto_glue::der::Encode as _;
use multifactor::admin::CredentialFilter;
use multifactor::audit::AuditKind;
use multifactor::store::{DeviceData, WebAuthnUse};
use multifactor::webauthn::{AaguidRule, CredentialPolicy, CredentialRules, PolicyRefusal};
use multifactor::webauthn::{AttestationAllowList, RelyingParty, WebAuthnConfig};
use multifactor::{
    DeviceKind, InsecureSeededRng, KeyId, Keyring, ManualClock, Mfa, MfaConfig, Outcome, RecordingSink, SealingKey,
    Store, UnixTime,
};
use multifactor_kit::browser::{Client, ORIGIN, passkey, register, sign_in};
use multifactor_kit::service::{START, user};
use webauthn_authenticator_rs::softtoken::{AAGUID, SoftToken};

fn config(policy: CredentialPolicy) -> WebAuthnConfig {
    WebAuthnConfig::new(RelyingParty::new("example.com", "Example", &[ORIGIN]).unwrap()).with_credential_policy(policy)
}

/// The service on a store of the scenario's choosing.
type On<S> = Mfa<S, ManualClock, InsecureSeededRng>;

/// A service on `store` with `webauthn`, recording its audit events.
fn service<S: Store>(store: S, webauthn: WebAuthnConfig) -> (On<S>, RecordingSink) {
    let mut config = MfaConfig::new("Example").unwrap();
    config.webauthn = Some(webauthn);
    let sink = RecordingSink::new();
    let keys = Keyring::new(SealingKey::new(KeyId::new("k").unwrap(), [1; 32]));
    let mfa = Mfa::new(store, keys, config)
        .unwrap()
        .with_clock(ManualClock::new(UnixTime::from_secs(START)))
        .with_rng(multifactor::InsecureSeededRng::new(7))
        .with_audit(sink.clone());
    (mfa, sink)
}

fn token() -> Client<SoftToken> {
    Client::new(SoftToken::new(true).unwrap().0, true)
}

fn model() -> [u8; 16] {
    *AAGUID.as_bytes()
}

fn refusals(sink: &RecordingSink) -> Vec<PolicyRefusal> {
    sink.events()
        .iter()
        .filter_map(|e| match e.kind {
            AuditKind::CredentialRefused { reason } => Some(reason),
            _ => None,
        })
        .collect()
}

pub async fn a_model_denied_later_is_refused_at_the_next_sign_in<S: Store + Clone>(store: S) {
    let alice = user("alice");
    let (open, _) = service(store.clone(), config(CredentialPolicy::new()));
    let mut key = token();
    assert!(register(&open, &alice, &mut key, false).await.is_accepted());
    assert!(sign_in(&open, &alice, &mut key).await.is_accepted());

    let deny = CredentialPolicy::new().security_keys(CredentialRules::new().aaguids(AaguidRule::Deny(vec![model()])));
    let (strict, sink) = service(store.clone(), config(deny));
    assert_eq!(
        sign_in(&strict, &alice, &mut key).await,
        Outcome::NotAllowed(PolicyRefusal::ModelDenied)
    );
    assert_eq!(refusals(&sink), vec![PolicyRefusal::ModelDenied]);
    let event = sink
        .events()
        .into_iter()
        .find(|e| matches!(e.kind, AuditKind::CredentialRefused { .. }))
        .unwrap();
    assert_eq!(event.device_kind, Some(DeviceKind::SecurityKey));
    // Nothing was written: the counter stays where the last admitted sign-in left it.
    let DeviceData::WebAuthn(w) = &store.list_devices(&alice).await.unwrap()[0].data else {
        panic!("not a credential");
    };
    assert_eq!(w.sign_count, 1);
    // And a new one of the model is refused at registration, and not stored.
    let bob = user("bob");
    assert_eq!(
        register(&strict, &bob, &mut token(), false).await,
        Outcome::NotAllowed(PolicyRefusal::ModelDenied)
    );
    assert!(strict.list_devices(&bob).await.unwrap().is_empty());
    // The rule is per kind: passkeys are not touched by it.
    assert!(register(&strict, &bob, &mut passkey(), true).await.is_accepted());
}

pub async fn a_device_bound_rule_refuses_a_key_that_became_synced<S: Store + Clone>(store: S) {
    let alice = user("alice");
    let bound = CredentialPolicy::new().security_keys(CredentialRules::new().device_bound());
    let (mfa, sink) = service(store.clone(), config(bound));
    let mut key = token();
    assert!(register(&mfa, &alice, &mut key, false).await.is_accepted());
    assert!(sign_in(&mfa, &alice, &mut key).await.is_accepted());
    // The store records that it became backup-eligible (a sync provider took it over).
    let device = store.list_devices(&alice).await.unwrap().remove(0);
    let DeviceData::WebAuthn(w) = &device.data else {
        panic!("not a credential");
    };
    let synced = WebAuthnUse {
        sign_count: w.sign_count,
        backup_eligible: true,
        backup_state: true,
    };
    assert!(
        store
            .record_webauthn_use(&alice, device.id, w.sign_count, synced, UnixTime::from_secs(START))
            .await
            .unwrap()
    );
    assert_eq!(
        sign_in(&mfa, &alice, &mut key).await,
        Outcome::NotAllowed(PolicyRefusal::Synced)
    );
    assert_eq!(refusals(&sink), vec![PolicyRefusal::Synced]);
}

pub async fn allow_lists_and_attestation_refuse_what_they_do_not_know<S: Store + Clone>(store: S) {
    let alice = user("alice");
    let other = [9u8; 16];
    let allow = CredentialPolicy::new()
        .security_keys(CredentialRules::new().aaguids(AaguidRule::Allow(vec![other])))
        .passkeys(CredentialRules::new().aaguids(AaguidRule::Allow(vec![model()])));
    let (mfa, _) = service(store.clone(), config(allow));
    assert_eq!(
        register(&mfa, &alice, &mut token(), false).await,
        Outcome::NotAllowed(PolicyRefusal::ModelNotAllowed)
    );
    // The software passkey says no model (a zero AAGUID): unknown, so not on any list.
    assert_eq!(
        register(&mfa, &alice, &mut passkey(), true).await,
        Outcome::NotAllowed(PolicyRefusal::ModelUnknown)
    );

    // Attested: only with the chain verified against a trust anchor at registration.
    let attested = CredentialPolicy::new().security_keys(CredentialRules::new().attested());
    let (plain, _) = service(store.clone(), config(attested.clone()));
    assert_eq!(
        register(&plain, &alice, &mut token(), false).await,
        Outcome::NotAllowed(PolicyRefusal::NotAttested)
    );
    let (soft, ca) = SoftToken::new(true).unwrap();
    let list = AttestationAllowList::new()
        .allow_der(&ca.to_der().unwrap(), model(), "Soft token")
        .unwrap();
    let (checked, _) = service(store, config(attested).with_attestation_allow_list(list));
    let mut key = Client::new(soft, true);
    assert!(register(&checked, &alice, &mut key, false).await.is_accepted());
    assert!(sign_in(&checked, &alice, &mut key).await.is_accepted());
}

pub async fn the_inventory_lists_across_users_and_a_model_is_revoked_in_bulk<S: Store + Clone>(store: S) {
    let (mfa, sink) = service(store.clone(), config(CredentialPolicy::new()));
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    assert!(register(&mfa, &alice, &mut token(), false).await.is_accepted());
    assert!(register(&mfa, &bob, &mut token(), false).await.is_accepted());
    let mut carols = passkey();
    assert!(register(&mfa, &carol, &mut carols, true).await.is_accepted());

    // Page by page, one credential a page: all three, each once.
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = mfa
            .credential_inventory(&CredentialFilter::new(), after, 1)
            .await
            .unwrap();
        all.extend(page.credentials);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut owners: Vec<&str> = all.iter().map(|(u, _)| u.as_str()).collect();
    owners.sort_unstable();
    assert_eq!(owners, ["alice", "bob", "carol"]);

    let of_model = mfa
        .credential_inventory(&CredentialFilter::new().aaguid(model()), None, 100)
        .await
        .unwrap();
    assert_eq!(of_model.credentials.len(), 2);
    assert!(
        of_model
            .credentials
            .iter()
            .all(|(_, d)| d.kind == DeviceKind::SecurityKey)
    );
    let passkeys = mfa
        .credential_inventory(&CredentialFilter::new().kind(DeviceKind::Passkey), None, 100)
        .await
        .unwrap();
    assert_eq!(passkeys.credentials.len(), 1);
    assert_eq!(passkeys.credentials[0].0, carol);
    let synced = mfa
        .credential_inventory(&CredentialFilter::new().synced(true), None, 100)
        .await
        .unwrap();
    assert!(synced.credentials.is_empty(), "{synced:?}");

    // The model is found vulnerable: every key of it goes, last devices included.
    assert_eq!(mfa.revoke_credentials(model()).await.unwrap(), 2);
    assert!(mfa.list_devices(&alice).await.unwrap().is_empty());
    assert!(mfa.list_devices(&bob).await.unwrap().is_empty());
    assert_eq!(mfa.list_devices(&carol).await.unwrap().len(), 1);
    let deletes = sink
        .events()
        .iter()
        .filter(|e| matches!(e.kind, AuditKind::Deleted { admin: true }))
        .count();
    assert_eq!(deletes, 2);
    // Again: nothing left of it.
    assert_eq!(mfa.revoke_credentials(model()).await.unwrap(), 0);
    assert!(sign_in(&mfa, &carol, &mut carols).await.is_accepted());
}

/// Each scenario on the in-memory store and on SQLite (a fresh database each).
macro_rules! on_memory_and_sqlite {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test]
            async fn $name() {
                super::$name(multifactor::MemoryStore::new()).await;
            })*
        }
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(multifactor::SqliteStore::open_in_memory().await.unwrap()).await;
            })*
        }
    };
}

#[cfg(test)]
on_memory_and_sqlite!(
    a_model_denied_later_is_refused_at_the_next_sign_in,
    a_device_bound_rule_refuses_a_key_that_became_synced,
    allow_lists_and_attestation_refuse_what_they_do_not_know,
    the_inventory_lists_across_users_and_a_model_is_revoked_in_bulk,
);
