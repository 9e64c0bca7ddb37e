//! Stored records: rows of a `SqliteStore` database written with arbitrary values (as a
//! corrupted, hand-edited or hostile database would hold them), then read back through the
//! store (`list_devices`, `device`, `find_credential`, `throttle`) and the service
//! (`list_devices`, `verify_totp`, `verify_backup_code`, WebAuthn starts and finishes, which
//! decode stored credentials and ceremony state).
//!
//! Columns take values near the real ones (the fixture passkey, the fixture's sealed TOTP
//! secret and ceremony states, valid kinds and user) or arbitrary ones; the schema's STRICT
//! types and constraints still apply, so some rows do not insert.
//!
//! Invariants: never panics; every read is `Ok` or a typed `Err`; a record the store lists is
//! the one `device` returns for its id, and a listed WebAuthn record is the one
//! `find_credential` returns for its credential id.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use multifactor::store::DeviceData;
use multifactor::webauthn::{AuthenticationResponse, PasswordlessCeremony, RegistrationResponse};
use multifactor::{CeremonyId, DeviceStore, Factor, SqliteStore, UserId};
use multifactor_fuzz::{FuzzMfa, runtime, service, totp_fixture, user, webauthn_fixture};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use tokio::runtime::Runtime;

const CEREMONY: [u8; 16] = [0xce; 16];

#[derive(Debug, Arbitrary)]
enum Bytes {
    Fixture,
    Truncated(u16),
    Flipped(u16, u8),
    Arbitrary(Vec<u8>),
}

impl Bytes {
    fn value(&self, fixture: &[u8]) -> Vec<u8> {
        match self {
            Self::Fixture => fixture.to_vec(),
            Self::Truncated(n) => fixture[..usize::from(*n).min(fixture.len())].to_vec(),
            Self::Flipped(i, x) => {
                let mut v = fixture.to_vec();
                if !v.is_empty() {
                    let i = usize::from(*i) % v.len();
                    v[i] ^= x | 1;
                }
                v
            }
            Self::Arbitrary(v) => v.clone(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Text {
    Fixture,
    Arbitrary(String),
}

impl Text {
    fn value(&self, fixture: &str) -> String {
        match self {
            Self::Fixture => fixture.to_owned(),
            Self::Arbitrary(s) => s.clone(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Kind {
    Totp,
    BackupCodes,
    WebAuthn,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Int {
    Zero,
    One,
    Small(u8),
    Any(i64),
}

impl Int {
    fn value(&self) -> i64 {
        match self {
            Self::Zero => 0,
            Self::One => 1,
            Self::Small(n) => i64::from(*n),
            Self::Any(n) => *n,
        }
    }
}

#[derive(Debug, Arbitrary)]
struct DeviceRow {
    id: Bytes,
    user_id: Text,
    kind: Kind,
    name: Text,
    created_at: i64,
    last_used_at: Option<i64>,
    confirmed: Int,
    totp_algorithm: Option<Text>,
    totp_digits: Option<Int>,
    totp_period: Option<Int>,
    totp_secret: Option<Bytes>,
    totp_last_step: Option<i64>,
    codes_salt: Option<Bytes>,
    codes_length: Option<Int>,
    credential_id: Option<Bytes>,
    user_handle: Option<Bytes>,
    credential: Option<Bytes>,
    sign_count: Option<Int>,
    backup_eligible: Option<Int>,
    backup_state: Option<Int>,
    discoverable: Option<Int>,
    user_verified: Option<Int>,
}

#[derive(Debug, Arbitrary)]
struct SlotRow {
    slot: Int,
    hash: Bytes,
    used: Int,
}

#[derive(Debug, Arbitrary)]
enum State {
    Registration(Bytes),
    Passwordless(Bytes),
    SecondFactor(Bytes),
}

#[derive(Debug, Arbitrary)]
struct CeremonyRow {
    user_id: Option<Text>,
    kind: Kind2,
    expires_at: i64,
    state: State,
}

#[derive(Debug, Arbitrary)]
enum Kind2 {
    Registration,
    SecondFactor,
    Passwordless,
    Other(String),
}

#[derive(Debug, Arbitrary)]
struct ThrottleRow {
    user_id: Text,
    factor: Text,
    failures: Int,
    last_failure_at: Option<i64>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    devices: Vec<(DeviceRow, Vec<SlotRow>)>,
    ceremony: Option<CeremonyRow>,
    throttle: Option<ThrottleRow>,
}

struct Env {
    rt: Runtime,
    pool: SqlitePool,
    store: SqliteStore,
    mfa: FuzzMfa<SqliteStore>,
    user: UserId,
    registration: RegistrationResponse,
    passwordless: AuthenticationResponse,
    second_factor: AuthenticationResponse,
    totp_code: String,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let rt = runtime();
        // tmpfs when there is one: the store syncs every commit.
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        remove_stale(&dir);
        let path = dir.join(format!("{PREFIX}{}.db", std::process::id()));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let (store, pool) = rt.block_on(async {
            let store = SqliteStore::open(&path).await.expect("open store");
            let options = SqliteConnectOptions::new()
                .filename(&path)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .connect_with(options)
                .await
                .expect("open pool");
            (store, pool)
        });
        let f = webauthn_fixture();
        let t = totp_fixture();
        let now = multifactor::UnixTime::from_secs(multifactor_fuzz::START);
        Env {
            rt,
            pool,
            mfa: service(store.clone()),
            store,
            user: user(),
            registration: RegistrationResponse::from_json(&f.registration_response).expect("fixture"),
            passwordless: AuthenticationResponse::from_json(&f.passwordless_response).expect("fixture"),
            second_factor: AuthenticationResponse::from_json(&f.second_factor_response).expect("fixture"),
            totp_code: multifactor::totp::code_at(&t.secret, &Default::default(), now)
                .expose_secret()
                .to_owned(),
        }
    })
}

const PREFIX: &str = "multifactor-fuzz-";

/// Removes the databases of earlier runs whose process is gone (named by process id).
fn remove_stale(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(PREFIX).and_then(|r| r.split('.').next()) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn kind(k: &Kind) -> String {
    match k {
        Kind::Totp => "totp".into(),
        Kind::BackupCodes => "backup_codes".into(),
        Kind::WebAuthn => "webauthn".into(),
        Kind::Other(s) => s.clone(),
    }
}

async fn write_rows(env: &Env, input: &Input) -> Result<(), sqlx::Error> {
    let f = webauthn_fixture();
    let t = totp_fixture();
    let fixture_id = f.record.id.as_bytes().to_vec();
    let mut tx = env.pool.begin().await?;
    for clear in [
        "DELETE FROM mfa_devices",
        "DELETE FROM mfa_ceremonies",
        "DELETE FROM mfa_throttles",
    ] {
        sqlx::query(clear).execute(&mut *tx).await?;
    }
    for (row, slots) in input.devices.iter().take(4) {
        let id = row.id.value(&fixture_id);
        // A set's codes are packed into its row: the hashes end to end, a mask of unused ones.
        let slots = &slots[..slots.len().min(12)];
        let (hashes, unused) = if slots.is_empty() {
            (None, None)
        } else {
            let hashes: Vec<u8> = slots.iter().flat_map(|s| s.hash.value(&[9; 32])).collect();
            let unused = slots
                .iter()
                .filter(|s| s.used.value() == 0)
                .fold(0i64, |m, s| m | 1i64.wrapping_shl(s.slot.value() as u32));
            (Some(hashes), Some(unused))
        };
        let inserted = sqlx::query(
            "INSERT INTO mfa_devices (id, user_id, kind, name, created_at, last_used_at, confirmed, \
             totp_algorithm, totp_digits, totp_period, totp_secret, totp_last_step, codes_salt, codes_length, \
             credential_id, user_handle, credential, sign_count, backup_eligible, backup_state, discoverable, \
             user_verified, codes_hashes, codes_unused) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
             $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)",
        )
        .bind(&id)
        .bind(row.user_id.value("u"))
        .bind(kind(&row.kind))
        .bind(row.name.value("Key"))
        .bind(row.created_at)
        .bind(row.last_used_at)
        .bind(row.confirmed.value())
        .bind(row.totp_algorithm.as_ref().map(|a| a.value("SHA1")))
        .bind(row.totp_digits.as_ref().map(Int::value))
        .bind(row.totp_period.as_ref().map(Int::value))
        .bind(row.totp_secret.as_ref().map(|b| b.value(&t.sealed_secret)))
        .bind(row.totp_last_step)
        .bind(row.codes_salt.as_ref().map(|b| b.value(&[7; 16])))
        .bind(row.codes_length.as_ref().map(Int::value))
        .bind(row.credential_id.as_ref().map(|b| b.value(&f.credential_id)))
        .bind(row.user_handle.as_ref().map(|b| b.value(&f.user_handle)))
        .bind(row.credential.as_ref().map(|b| b.value(&f.credential)))
        .bind(row.sign_count.as_ref().map(Int::value))
        .bind(row.backup_eligible.as_ref().map(Int::value))
        .bind(row.backup_state.as_ref().map(Int::value))
        .bind(row.discoverable.as_ref().map(Int::value))
        .bind(row.user_verified.as_ref().map(Int::value))
        .bind(hashes)
        .bind(unused)
        .execute(&mut *tx)
        .await;
        if inserted.is_err() {
            continue; // a constraint refused it (NOT NULL, UNIQUE, ...)
        }
    }
    if let Some(c) = &input.ceremony {
        let (state, fixture) = match &c.state {
            State::Registration(b) => (b, &f.registration_state),
            State::Passwordless(b) => (b, &f.passwordless_state),
            State::SecondFactor(b) => (b, &f.second_factor_state),
        };
        let kind = match &c.kind {
            Kind2::Registration => "registration".to_owned(),
            Kind2::SecondFactor => "second_factor".to_owned(),
            Kind2::Passwordless => "passwordless".to_owned(),
            Kind2::Other(s) => s.clone(),
        };
        let _ = sqlx::query(
            "INSERT INTO mfa_ceremonies (id, user_id, kind, expires_at, state) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(CEREMONY.to_vec())
        .bind(c.user_id.as_ref().map(|u| u.value("u")))
        .bind(kind)
        .bind(c.expires_at)
        .bind(state.value(fixture))
        .execute(&mut *tx)
        .await;
    }
    if let Some(th) = &input.throttle {
        let _ = sqlx::query(
            "INSERT INTO mfa_throttles (user_id, factor, failures, last_failure_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(th.user_id.value("u"))
        .bind(th.factor.value("totp"))
        .bind(th.failures.value())
        .bind(th.last_failure_at)
        .execute(&mut *tx)
        .await;
    }
    tx.commit().await
}

fuzz_target!(|input: Input| {
    let env = env();
    let f = webauthn_fixture();
    let t = totp_fixture();
    env.rt.block_on(async {
        write_rows(env, &input).await.expect("write rows");
        let store = &env.store;
        let u = &env.user;

        // The store: Ok or a typed error, and consistent between its readers.
        if let Ok(listed) = store.list_devices(u).await {
            for record in &listed {
                let one = store.device(u, record.id).await.expect("device after list");
                assert_eq!(one.as_ref(), Some(record), "device() disagrees with list_devices()");
                if let DeviceData::WebAuthn(w) = &record.data {
                    let found = store.find_credential(&w.credential_id).await.expect("find after list");
                    assert_eq!(
                        found.as_ref(),
                        Some(record),
                        "find_credential() disagrees with list_devices()"
                    );
                }
            }
        }
        let _ = store.device(u, f.record.id).await;
        let _ = store.device(u, t.device_id).await;
        let _ = store.find_credential(&f.credential_id).await;
        for factor in Factor::ALL {
            let _ = store.throttle(u, factor.into()).await;
        }

        // The service on top.
        let mfa = &env.mfa;
        let _ = mfa.list_devices(u).await;
        let _ = mfa.throttle_status(u, Factor::Totp).await;
        let _ = mfa.verify_totp(u, &env.totp_code).await;
        let _ = mfa.verify_backup_code(u, "abcd-efgh-jkmn").await;
        let _ = mfa.start_webauthn_authentication(u).await;
        let ceremony = CeremonyId::from_bytes(CEREMONY);
        if let Ok(handle) = f.passwordless_ceremony.parse::<PasswordlessCeremony>() {
            let _ = mfa.finish_passwordless(&handle, &env.passwordless).await;
        }
        let _ = mfa
            .finish_webauthn_authentication(u, ceremony, &env.second_factor)
            .await;
        let _ = mfa
            .finish_webauthn_registration(u, ceremony, &env.registration, None)
            .await;
        let _ = mfa.purge_expired_ceremonies().await;
    });
});
