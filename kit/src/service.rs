//! Shared set-up for the integration tests of accounts, policy, audit and keys.
#![allow(dead_code, clippy::unwrap_used)]

use multifactor::totp::TotpParams;
use multifactor::totp::{code_for_step, decode_base32_secret};
use multifactor::{
    DeviceId, InsecureSeededRng, KeyId, Keyring, ManualClock, MemoryStore, Mfa, MfaConfig, RecordingSink, SealingKey,
    SecretBytes, UnixTime, UserId,
};

pub const START: u64 = 1_800_000_000;

pub type TestMfa = Mfa<MemoryStore, ManualClock, InsecureSeededRng>;

pub fn keyring(id: &str, byte: u8) -> Keyring {
    Keyring::new(SealingKey::new(KeyId::new(id).unwrap(), [byte; 32]))
}

pub fn setup_with(store: MemoryStore, keys: Keyring, config: MfaConfig) -> (TestMfa, ManualClock, RecordingSink) {
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let sink = RecordingSink::new();
    let mfa = Mfa::new(store, keys, config)
        .unwrap()
        .with_clock(clock.clone())
        .with_rng(InsecureSeededRng::new(9))
        .with_audit(sink.clone());
    (mfa, clock, sink)
}

pub fn setup() -> (TestMfa, ManualClock, RecordingSink) {
    setup_with(MemoryStore::new(), keyring("k1", 1), MfaConfig::new("ACME").unwrap())
}

pub fn user(name: &str) -> UserId {
    UserId::new(name).unwrap()
}

/// Enrolls and confirms a TOTP device; returns its id and secret.
pub async fn totp(mfa: &TestMfa, clock: &ManualClock, who: &UserId) -> (DeviceId, SecretBytes) {
    let e = mfa.enroll_totp(who, "x@example.com", None).await.unwrap();
    let secret = decode_base32_secret(e.secret_base32.expose_secret()).unwrap();
    let code = code_now(&secret, clock, 0);
    assert!(mfa.confirm_totp(who, e.device, &code).await.unwrap().is_accepted());
    (e.device, secret)
}

/// The code for the current step plus `ahead`.
pub fn code_now(secret: &SecretBytes, clock: &ManualClock, ahead: u64) -> String {
    let params = TotpParams::default();
    code_for_step(secret, &params, params.step_at(clock.now()) + ahead)
        .expose_secret()
        .to_owned()
}
