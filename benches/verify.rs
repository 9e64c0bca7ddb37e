//! Verification and enrollment costs, each next to its lower bound or a reference crate.
//!
//! Every comparison lives in one criterion group, so the ratios come from one run:
//!
//! - `totp_verify`, all on one secret, time and code (SHA-1, 6 digits, 30 s, window ±1):
//!   - `multifactor_pure`: `totp::verify` (three HMAC-SHA1, whatever step matches);
//!   - `raw_hmac_bound`: the floor, three raw HMAC-SHA1 keyed once per attempt, the keyed state
//!     cloned per step;
//!   - `totp_lite_loop`: a `totp-lite` call per step of the window;
//!   - `totp_rs_check`: `totp_rs::Totp::check` (it stops at the first matching step, so a code of
//!     the current step costs it two HMAC-SHA1, each keyed afresh, and compares the tokens in
//!     constant time);
//!   - `service_memory_store`: the full service on a `MemoryStore`.
//! - `backup_code_verify`: `backup_codes::verify` against one HMAC-SHA256, and the full service.
//! - `enrollment`: `Mfa::enroll_totp` and `backup_codes::generate`.
//!
//! Run with `cargo bench --bench verify`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

use hmac::{Hmac, KeyInit, Mac};
use multifactor::backup_codes::BackupCodeConfig;
use multifactor::backup_codes::{self, BackupCodeRecord};
use multifactor::totp::TotpParams;
use multifactor::{
    InsecureSeededRng, KeyId, Keyring, ManualClock, MemoryStore, Mfa, MfaConfig, OsRng, SealingKey, SecretBytes,
    UnixTime, UserId,
};
use multifactor_kit::bench as support;
use sha1::Sha1;
use sha2::Sha256;
use tokio::runtime::Runtime;

/// An arbitrary instant, well inside the range of any clock.
const NOW: u64 = 1_800_000_000;
const PERIOD: u64 = 30;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

fn service(clock: ManualClock) -> Mfa<MemoryStore, ManualClock> {
    let keys = Keyring::new(SealingKey::new(KeyId::new("k").unwrap(), [7; 32]));
    Mfa::new(MemoryStore::new(), keys, MfaConfig::new("Bench").unwrap())
        .unwrap()
        .with_clock(clock)
}

/// Modest settings: the whole bench runs in about a minute.
fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

// ----- TOTP ---------------------------------------------------------------------------------------

/// RFC 4226 §5.3 dynamic truncation to 6 digits, as any TOTP implementation does it.
fn truncate6(mac: &[u8]) -> u32 {
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let word = u32::from_be_bytes([mac[offset], mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    (word & 0x7fff_ffff) % 1_000_000
}

/// The floor: the three HMAC-SHA1 of a ±1 window, keyed once and cloned per step, truncated and
/// compared. No parsing, no constant-time selection.
fn raw_hmac_window(keyed: &Hmac<Sha1>, step: u64, code: u32) -> bool {
    let mut hit = false;
    for s in step - 1..=step + 1 {
        let mut mac = keyed.clone();
        mac.update(&s.to_be_bytes());
        hit |= truncate6(&mac.finalize().into_bytes()) == code;
    }
    hit
}

fn totp_verify(c: &mut Criterion) {
    let secret_bytes: Vec<u8> = (1..=20).collect();
    let secret = SecretBytes::new(secret_bytes.clone());
    let params = TotpParams::default();
    let now = UnixTime::from_secs(NOW);
    let code = multifactor::totp::code_at(&secret, &params, now);
    let code = code.expose_secret().to_owned();
    let code_value: u32 = code.parse().unwrap();
    let step = params.step_at(now);

    // Sanity: every contender accepts the code.
    assert_eq!(
        multifactor::totp::verify(&secret, &params, 1, None, now, &code).unwrap(),
        Some(step)
    );
    let keyed = <Hmac<Sha1> as KeyInit>::new_from_slice(&secret_bytes).unwrap();
    assert!(raw_hmac_window(&keyed, step, code_value));
    assert_eq!(
        totp_lite::totp_custom::<totp_lite::Sha1>(PERIOD, 6, &secret_bytes, NOW),
        code
    );
    let secret_array: [u8; 20] = secret_bytes.as_slice().try_into().unwrap();
    let totp_rs = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(PERIOD)
        .with_secret(secret_array)
        .build()
        .unwrap();
    assert_eq!(totp_rs.check(&code, NOW), Some(step));
    let wrong = format!("{:06}", (code_value + 1) % 1_000_000);
    assert_eq!(totp_rs.check(&wrong, NOW), None);
    assert!(!raw_hmac_window(&keyed, step, (code_value + 1) % 1_000_000));

    let mut group = c.benchmark_group("totp_verify");

    group.bench_function("multifactor_pure", |b| {
        b.iter(|| {
            multifactor::totp::verify(
                black_box(&secret),
                black_box(&params),
                1,
                None,
                black_box(now),
                black_box(&code),
            )
        });
    });

    group.bench_function("raw_hmac_bound", |b| {
        b.iter(|| {
            // Keyed once per attempt, like `totp::verify`.
            let keyed = <Hmac<Sha1> as KeyInit>::new_from_slice(black_box(&secret_bytes)).unwrap();
            raw_hmac_window(&keyed, black_box(step), black_box(code_value))
        });
    });

    group.bench_function("totp_lite_loop", |b| {
        b.iter(|| {
            let t = black_box(NOW);
            let code = black_box(code.as_str());
            [t - PERIOD, t, t + PERIOD]
                .into_iter()
                .any(|t| totp_lite::totp_custom::<totp_lite::Sha1>(PERIOD, 6, black_box(&secret_bytes), t) == code)
        });
    });

    group.bench_function("totp_rs_check", |b| {
        b.iter(|| black_box(&totp_rs).check(black_box(&code), black_box(NOW)));
    });

    group.bench_function("service_memory_store", |b| {
        let rt = runtime();
        let clock = ManualClock::new(now);
        let mfa = service(clock.clone());
        let user = UserId::new("u").unwrap();
        let app_secret = rt.block_on(async {
            let enrollment = mfa.enroll_totp(&user, "u@example.com", None).await.unwrap();
            let app_secret = multifactor::totp::decode_base32_secret(enrollment.secret_base32.expose_secret()).unwrap();
            let first = multifactor::totp::code_at(&app_secret, &params, clock.now());
            let confirmed = mfa
                .confirm_totp(&user, enrollment.device, first.expose_secret())
                .await
                .unwrap();
            assert!(confirmed.is_accepted());
            app_secret
        });
        b.iter_custom(|iters| {
            rt.block_on(support::time_totp_verifications(
                &mfa,
                &clock,
                &user,
                &app_secret,
                iters,
            ))
        });
        // The last call was accepted too (all were, or the throttle would have shown up).
        let code = multifactor::totp::code_at(&app_secret, &params, clock.now().plus_secs(PERIOD));
        clock.advance(PERIOD);
        assert!(
            rt.block_on(mfa.verify_totp(&user, code.expose_secret()))
                .unwrap()
                .is_accepted()
        );
    });

    group.finish();
}

// ----- Backup codes -------------------------------------------------------------------------------

/// What backup-code hashes are keyed with, as the service keys them: a MAC key derived from the
/// keyring, bound to a user and a set.
struct CodeKeyOwner {
    key_id: multifactor::KeyId,
    mac_key: [u8; 32],
    user: multifactor::UserId,
}

impl CodeKeyOwner {
    fn new() -> Self {
        Self {
            key_id: multifactor::KeyId::new("k1").unwrap(),
            mac_key: [7; 32],
            user: multifactor::UserId::new("user-000123").unwrap(),
        }
    }

    fn key(&self) -> backup_codes::CodeKey<'_> {
        backup_codes::CodeKey::Keyed {
            key_id: &self.key_id,
            key: &self.mac_key,
            user: &self.user,
            set: multifactor::DeviceId::from_bytes([0x42; 16]),
        }
    }
}

fn backup_code_verify(c: &mut Criterion) {
    let owner = CodeKeyOwner::new();
    let key = owner.key();
    let (codes, record): (_, BackupCodeRecord) =
        backup_codes::generate(&InsecureSeededRng::new(1), &BackupCodeConfig::default(), &key).unwrap();
    // The last code: every slot is compared anyway (no early exit), this just makes it explicit.
    let last = codes.last().unwrap().expose_secret().to_owned();
    assert_eq!(
        backup_codes::verify(&record, &last, &key).unwrap(),
        Some(codes.len() - 1)
    );

    let mut group = c.benchmark_group("backup_code_verify");

    group.bench_function("multifactor_pure", |b| {
        b.iter(|| backup_codes::verify(black_box(&record), black_box(&last), black_box(&key)));
    });

    group.bench_function("one_keyed_hash", |b| {
        let key = record.salt;
        let message: [u8; 12] = *b"abcdefghjkmn";
        b.iter(|| {
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(black_box(&key)).unwrap();
            mac.update(black_box(&message));
            mac.finalize().into_bytes()
        });
    });

    group.bench_function("service_memory_store", |b| {
        // A wrong code would be throttled after a few calls, so every verification is of a right
        // code: a fresh set is generated outside the timed part, and each of its codes is spent
        // once (each spend costs the same: all slots are compared, one is consumed).
        let rt = runtime();
        let mfa = service(ManualClock::new(UnixTime::from_secs(NOW)));
        let user = UserId::new("u").unwrap();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let set = mfa.generate_backup_codes(&user, None).await.unwrap();
                    let n = (iters - done).min(set.codes.len() as u64);
                    let start = Instant::now();
                    for code in set.codes.iter().take(n as usize) {
                        let outcome = mfa
                            .verify_backup_code(&user, black_box(code.expose_secret()))
                            .await
                            .unwrap();
                        assert!(black_box(outcome).is_accepted());
                    }
                    total += start.elapsed();
                    done += n;
                }
                total
            })
        });
        let set = rt.block_on(mfa.generate_backup_codes(&user, None)).unwrap();
        assert!(
            rt.block_on(mfa.verify_backup_code(&user, set.codes[0].expose_secret()))
                .unwrap()
                .is_accepted()
        );
    });

    group.finish();
}

// ----- Enrollment ---------------------------------------------------------------------------------

fn enrollment(c: &mut Criterion) {
    let mut group = c.benchmark_group("enrollment");

    group.bench_function("totp_enroll", |b| {
        // Each enrollment removes the user's previous unconfirmed one: the store stays small.
        let rt = runtime();
        let mfa = service(ManualClock::new(UnixTime::from_secs(NOW)));
        let user = UserId::new("u").unwrap();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let enrollment = mfa.enroll_totp(black_box(&user), "u@example.com", None).await.unwrap();
                    black_box(enrollment);
                }
                start.elapsed()
            })
        });
        assert!(rt.block_on(mfa.list_devices(&user)).unwrap().len() <= 1);
    });

    group.bench_function("backup_codes_generate", |b| {
        let rng = OsRng::new().unwrap();
        let config = BackupCodeConfig::default();
        let owner = CodeKeyOwner::new();
        let key = owner.key();
        b.iter(|| backup_codes::generate(black_box(&rng), black_box(&config), black_box(&key)).unwrap());
    });

    group.finish();
}

/// Counter-based codes (HOTP): one attempt against the default look-ahead of 10 (a time-based
/// attempt checks 3), and a resynchronisation searching 1,000 counters for two codes.
fn hotp_verify(c: &mut Criterion) {
    let secret = SecretBytes::new((1..=20).collect());
    let params = TotpParams::hotp(multifactor::totp::Algorithm::Sha1, 6).unwrap();
    let last = Some(41u64);
    let code = |n: u64| {
        multifactor::totp::code_for_step(&secret, &params, n)
            .expose_secret()
            .to_owned()
    };
    let (next, far, after) = (code(45), code(900), code(901));
    assert_eq!(
        multifactor::totp::evaluate_counter(&secret, &params, 10, last, &next).unwrap(),
        multifactor::totp::TotpMatch::Fresh(45)
    );
    assert_eq!(
        multifactor::totp::resync_counter(&secret, &params, 1_000, last, &far, &after).unwrap(),
        Some(901)
    );
    let mut group = c.benchmark_group("hotp_verify");
    group.bench_function("look_ahead_10", |b| {
        b.iter(|| multifactor::totp::evaluate_counter(black_box(&secret), &params, 10, last, black_box(&next)));
    });
    group.bench_function("resync_1000", |b| {
        b.iter(|| {
            multifactor::totp::resync_counter(
                black_box(&secret),
                &params,
                1_000,
                last,
                black_box(&far),
                black_box(&after),
            )
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = totp_verify, backup_code_verify, enrollment, hotp_verify
}
criterion_main!(benches);
