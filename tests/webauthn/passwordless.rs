//! Passwordless ceremonies keep nothing on the server until a passkey signs: a flood of starts
//! (anyone may start one) costs no storage, and each handle is finished at most once, before
//! it expires, only if this service's keys signed it.

use std::sync::Arc;

use multifactor::CeremonyStore as _;
use multifactor::conformance::CountingStore;
use multifactor::webauthn::{AuthenticationResponse, PasswordlessCeremony, RelyingParty, WebAuthnConfig};
use multifactor::{
    InsecureSeededRng, KeyId, Keyring, ManualClock, MemoryStore, Mfa, MfaConfig, Outcome, SealingKey, UnixTime,
};
use multifactor_kit::browser::{Client, ORIGIN, passkey};
use multifactor_kit::service::{START, user};
use serde_json::Value;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

type CountedMfa = Mfa<CountingStore<MemoryStore>, ManualClock, InsecureSeededRng>;

/// The default ceremony lifetime, in seconds.
const TTL: u64 = 300;

fn ring(ids: &[(&str, u8)]) -> Keyring {
    let mut keys = ids
        .iter()
        .map(|(id, byte)| SealingKey::new(KeyId::new(*id).unwrap(), [*byte; 32]));
    let mut ring = Keyring::new(keys.next().unwrap());
    for key in keys {
        ring = ring.with_previous(key).unwrap();
    }
    ring
}

fn counted(store: Arc<MemoryStore>, keys: Keyring, clock: &ManualClock) -> CountedMfa {
    let mut config = MfaConfig::new("Example").unwrap();
    config.webauthn = Some(WebAuthnConfig::new(
        RelyingParty::new("example.com", "Example", &[ORIGIN]).unwrap(),
    ));
    Mfa::new(CountingStore::new(store), keys, config)
        .unwrap()
        .with_clock(clock.clone())
        .with_rng(InsecureSeededRng::new(11))
}

fn response(v: &Value) -> AuthenticationResponse {
    AuthenticationResponse::from_json(&v.to_string()).unwrap()
}

/// A service with one passkey registered for alice, and the store under it.
async fn with_alice() -> (CountedMfa, Arc<MemoryStore>, ManualClock, Client<SoftPasskey>) {
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let store = Arc::new(MemoryStore::new());
    let mfa = counted(store.clone(), ring(&[("k1", 1)]), &clock);
    let alice = user("alice");
    let mut pk = passkey();
    let (ceremony, options) = mfa.start_passkey_registration(&alice, "alice", "Alice").await.unwrap();
    let rsp = pk.create(&options.to_json_value()).unwrap();
    let rsp = multifactor::webauthn::RegistrationResponse::from_json(&rsp.to_string()).unwrap();
    assert!(
        mfa.finish_webauthn_registration(&alice, ceremony, &rsp, None)
            .await
            .unwrap()
            .is_accepted()
    );
    mfa.store().take_calls();
    (mfa, store, clock, pk)
}

/// 100,000 starts, as from a flood of anonymous requests, write (and read) nothing at all; nor
/// do 1,000 finishes of those handles with an unknown credential. One real sign-in then writes
/// one marker, which the next purge after its expiry removes: the store ends empty of ceremonies.
#[tokio::test]
async fn a_flood_of_starts_and_failed_finishes_stores_nothing() {
    let (mfa, store, clock, mut pk) = with_alice().await;
    let mut handles = Vec::new();
    for i in 0..100_000 {
        let (handle, _) = mfa.start_passwordless(i % 2 == 0).await.unwrap();
        if i % 100 == 0 {
            handles.push(handle);
        }
    }
    assert_eq!(
        mfa.store().take_calls(),
        Vec::<&str>::new(),
        "a start touched the store"
    );

    // Finishes with a credential nobody has: one lookup each, no write.
    // (A passkey registered with another deployment: a valid assertion of a credential unknown here.)
    let (elsewhere, _, _, mut stranger) = with_alice().await;
    let (_, options) = elsewhere.start_passwordless(false).await.unwrap();
    let stranger_rsp = response(&stranger.get(&options.to_json_value()).unwrap());
    for handle in &handles {
        assert_eq!(
            mfa.finish_passwordless(handle, &stranger_rsp).await.unwrap(),
            Outcome::Rejected
        );
    }
    let calls = mfa.store().take_calls();
    assert!(
        calls.iter().all(|c| *c == "find_credential"),
        "a failed finish wrote: {calls:?}"
    );
    assert_eq!(
        store
            .purge_expired_ceremonies(UnixTime::from_secs(u64::MAX))
            .await
            .unwrap(),
        0
    );

    // One real sign-in: one marker.
    let (handle, options) = mfa.start_passwordless(false).await.unwrap();
    let rsp = response(&pk.get(&options.to_json_value()).unwrap());
    assert!(mfa.finish_passwordless(&handle, &rsp).await.unwrap().is_accepted());
    let calls = mfa.store().take_calls();
    assert_eq!(
        calls.iter().filter(|c| **c == "insert_ceremony").count(),
        1,
        "{calls:?}"
    );
    // It expires with its ceremony, and is gone after the next purge.
    assert_eq!(store.purge_expired_ceremonies(clock.now()).await.unwrap(), 0);
    clock.advance(TTL);
    assert_eq!(mfa.purge_expired_ceremonies().await.unwrap(), 1);
}

/// A handle is finished once: the same assertion again, a fresh assertion under the same
/// handle, and any later finish are rejected, and only the first wrote a marker.
#[tokio::test]
async fn a_handle_is_finished_once() {
    let (mfa, _store, _clock, mut pk) = with_alice().await;
    let (handle, options) = mfa.start_passwordless(false).await.unwrap();
    let options = options.to_json_value();
    let rsp = response(&pk.get(&options).unwrap());
    assert!(mfa.finish_passwordless(&handle, &rsp).await.unwrap().is_accepted());
    // Replayed as sent (synced passkeys report a counter of 0, so the counter would not stop it).
    assert_eq!(mfa.finish_passwordless(&handle, &rsp).await.unwrap(), Outcome::Rejected);
    // Its text form parsed again is the same handle.
    let again: PasswordlessCeremony = handle.to_string().parse().unwrap();
    let fresh = response(&pk.get(&options).unwrap());
    assert_eq!(
        mfa.finish_passwordless(&again, &fresh).await.unwrap(),
        Outcome::Rejected
    );
    // A new handle works at once.
    let (handle, options) = mfa.start_passwordless(false).await.unwrap();
    let rsp = response(&pk.get(&options.to_json_value()).unwrap());
    assert!(mfa.finish_passwordless(&handle, &rsp).await.unwrap().is_accepted());
}

/// A handle expires after the ceremony lifetime (the last second before it still works).
#[tokio::test]
async fn a_handle_expires() {
    let (mfa, _store, clock, mut pk) = with_alice().await;
    let (late, options) = mfa.start_passwordless(false).await.unwrap();
    let late_rsp = response(&pk.get(&options.to_json_value()).unwrap());
    let (just_in_time, options) = mfa.start_passwordless(false).await.unwrap();
    let in_time_rsp = response(&pk.get(&options.to_json_value()).unwrap());
    assert_eq!(late.expires_at(), UnixTime::from_secs(START + TTL));
    clock.advance(TTL - 1);
    assert!(
        mfa.finish_passwordless(&just_in_time, &in_time_rsp)
            .await
            .unwrap()
            .is_accepted()
    );
    clock.advance(1);
    assert_eq!(
        mfa.finish_passwordless(&late, &late_rsp).await.unwrap(),
        Outcome::Rejected
    );
}

/// Handles signed before a key rotation still finish while the old key is kept as a previous
/// key; a key the ring no longer holds, or another deployment's key under the same id, signs
/// nothing that is accepted. Nothing is written for them.
#[tokio::test]
async fn handles_follow_the_keyring() {
    let (mfa, store, clock, mut pk) = with_alice().await;
    let (before_rotation, options) = mfa.start_passwordless(false).await.unwrap();
    let before_rsp = response(&pk.get(&options.to_json_value()).unwrap());
    let (dropped, options) = mfa.start_passwordless(false).await.unwrap();
    let dropped_rsp = response(&pk.get(&options.to_json_value()).unwrap());

    let rotated = counted(store.clone(), ring(&[("k2", 2), ("k1", 1)]), &clock);
    assert!(
        rotated
            .finish_passwordless(&before_rotation, &before_rsp)
            .await
            .unwrap()
            .is_accepted()
    );
    let (after, _) = rotated.start_passwordless(false).await.unwrap();
    assert!(after.to_string() != before_rotation.to_string());

    let k1_gone = counted(store.clone(), ring(&[("k2", 2)]), &clock);
    assert_eq!(
        k1_gone.finish_passwordless(&dropped, &dropped_rsp).await.unwrap(),
        Outcome::Rejected
    );
    let other_bytes = counted(store.clone(), ring(&[("k1", 9)]), &clock);
    assert_eq!(
        other_bytes.finish_passwordless(&dropped, &dropped_rsp).await.unwrap(),
        Outcome::Rejected
    );
    for service in [&k1_gone, &other_bytes] {
        // Only the audit's lookup of whose credential it was.
        assert_eq!(service.store().take_calls(), ["find_credential"]);
    }
    // The right service still accepts it: the refusals cost it nothing.
    assert!(
        mfa.finish_passwordless(&dropped, &dropped_rsp)
            .await
            .unwrap()
            .is_accepted()
    );
}

/// Any character of a handle changed: the handle does not parse, or it is rejected.
#[tokio::test]
async fn an_altered_handle_is_rejected() {
    let (mfa, _store, _clock, mut pk) = with_alice().await;
    let (handle, options) = mfa.start_passwordless(false).await.unwrap();
    let options = options.to_json_value();
    let text = handle.to_string();
    let mut tried = 0;
    for i in (0..text.len()).step_by(7) {
        let mut altered = text.clone().into_bytes();
        altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
        let Ok(altered) = String::from_utf8(altered).unwrap().parse::<PasswordlessCeremony>() else {
            continue;
        };
        let rsp = response(&pk.get(&options).unwrap());
        assert_eq!(
            mfa.finish_passwordless(&altered, &rsp).await.unwrap(),
            Outcome::Rejected,
            "at {i}"
        );
        tried += 1;
    }
    assert!(tried > 10, "only {tried} altered handles parsed");
    let rsp = response(&pk.get(&options).unwrap());
    assert!(mfa.finish_passwordless(&handle, &rsp).await.unwrap().is_accepted());
}
