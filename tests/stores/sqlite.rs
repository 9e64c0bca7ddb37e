//! `SqliteStore` as a user relies on it: data survives a restart, migrations are idempotent, a
//! newer schema is refused, corrupt rows are typed errors, and the file holds no plaintext secret.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use multifactor::totp::TotpParams;
use multifactor::totp::{code_at, decode_base32_secret};
use multifactor::{BrowserStore as _, EnrollmentStore as _};
use multifactor::{
    DeviceStore, InsecureSeededRng, KeyId, Keyring, ManualClock, Mfa, MfaConfig, Outcome, SqliteStore, StoreError,
    UnixTime, UserId,
};

fn fresh_path(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sqlite-store");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "{tag}-{}-{}.db",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

fn mfa(store: SqliteStore, clock: &ManualClock) -> Mfa<SqliteStore, ManualClock, InsecureSeededRng> {
    let keys = Keyring::new(multifactor::SealingKey::new(KeyId::new("k1").unwrap(), [9; 32]));
    Mfa::new(store, keys, MfaConfig::new("SQLite").unwrap())
        .unwrap()
        .with_clock(clock.clone())
        .with_rng(InsecureSeededRng::new(5))
}

async fn raw(path: &std::path::Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn methods_survive_a_restart_and_used_codes_stay_used() {
    let path = fresh_path("restart");
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let alice = UserId::new("alice").unwrap();
    let (codes, secret) = {
        let m = mfa(SqliteStore::open(&path).await.unwrap(), &clock);
        let set = m.generate_backup_codes(&alice, None).await.unwrap();
        let e = m.enroll_totp(&alice, "alice@example.com", None).await.unwrap();
        let secret = decode_base32_secret(e.secret_base32.expose_secret()).unwrap();
        let first = code_at(&secret, &TotpParams::default(), clock.now());
        assert!(
            m.confirm_totp(&alice, e.device, first.expose_secret())
                .await
                .unwrap()
                .is_accepted()
        );
        assert!(
            m.verify_backup_code(&alice, set.codes[0].expose_secret())
                .await
                .unwrap()
                .is_accepted()
        );
        m.store().close().await;
        (set.codes, secret)
    };
    // A new process: same file, same key.
    let m = mfa(SqliteStore::open(&path).await.unwrap(), &clock);
    let methods = m.list_devices(&alice).await.unwrap();
    assert_eq!(methods.len(), 2);
    let codes_left = methods.iter().find_map(|m| m.remaining_backup_codes);
    assert_eq!(codes_left, Some(5));
    assert_eq!(
        m.verify_backup_code(&alice, codes[0].expose_secret()).await.unwrap(),
        Outcome::Rejected
    );
    assert!(
        m.verify_backup_code(&alice, codes[1].expose_secret())
            .await
            .unwrap()
            .is_accepted()
    );
    // The confirmation step stays spent; the next step works.
    let same = code_at(&secret, &TotpParams::default(), clock.now());
    assert_eq!(
        m.verify_totp(&alice, same.expose_secret()).await.unwrap(),
        Outcome::Rejected
    );
    clock.advance(30);
    let next = code_at(&secret, &TotpParams::default(), clock.now());
    assert!(m.verify_totp(&alice, next.expose_secret()).await.unwrap().is_accepted());
}

/// A store on the application's own pool migrates the file and works as one it opened: what
/// it wrote is there for a store that opens the file.
#[tokio::test]
async fn a_store_on_the_applications_pool_migrates_and_works() {
    let path = fresh_path("from-pool");
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let alice = UserId::new("alice").unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let m = mfa(SqliteStore::from_pool(pool.clone()).await.unwrap(), &clock);
    assert_eq!(m.store().schema_version().await.unwrap(), Some(13));
    let set = m.generate_backup_codes(&alice, None).await.unwrap();
    assert!(
        m.verify_backup_code(&alice, set.codes[0].expose_secret())
            .await
            .unwrap()
            .is_accepted()
    );
    pool.close().await;
    let m = mfa(SqliteStore::open(&path).await.unwrap(), &clock);
    assert_eq!(
        m.verify_backup_code(&alice, set.codes[0].expose_secret())
            .await
            .unwrap(),
        Outcome::Rejected
    );
    assert!(
        m.verify_backup_code(&alice, set.codes[1].expose_secret())
            .await
            .unwrap()
            .is_accepted()
    );
}

/// A version-10 file keeps everything a verification settles when the upgrade moves it into
/// the users' state rows: last steps and uses, unused codes, and every counter.
#[tokio::test]
async fn a_version_10_file_keeps_its_steps_codes_and_counters() {
    let path = fresh_path("v10");
    let store = SqliteStore::open(&path).await.unwrap();
    let user = UserId::new("v10").unwrap();
    let before = multifactor_kit::migration::fill(&store, &user).await;
    let pool = raw(&path).await;
    to_v10(&pool).await;
    let step: Option<i64> = sqlx::query_scalar("SELECT MAX(totp_last_step) FROM mfa_devices")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(step, Some(59_000_123), "the downgrade lost the last step");
    pool.close().await;
    store.migrate().await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), Some(13));
    assert_eq!(multifactor_kit::migration::snapshot(&store, &user).await, before);
}

/// A version-12 file kept each credential's AAGUID in its JSON, wherever serde put the key: the
/// upgrade moves it to the column and cuts it out of the JSON, leaving the rest as it was.
#[tokio::test]
async fn a_version_12_file_moves_its_aaguids_to_their_column() {
    let path = fresh_path("v12");
    let store = SqliteStore::open(&path).await.unwrap();
    let user = UserId::new("v12").unwrap();
    let first = multifactor::conformance::webauthn_record(
        &user,
        1,
        multifactor::conformance::fresh_credential_id().unwrap(),
        true,
    )
    .unwrap();
    let last = multifactor::conformance::webauthn_record(
        &user,
        2,
        multifactor::conformance::fresh_credential_id().unwrap(),
        false,
    )
    .unwrap();
    store.insert_device(first.clone()).await.unwrap();
    store.insert_device(last.clone()).await.unwrap();
    let pool = raw(&path).await;
    let mut conn = pool.acquire().await.unwrap();
    for (id, json) in [
        (
            first.id,
            r#"{"counter":7,"multifactor_aaguid":"cb69481e-8ff7-4039-93ec-0a2729a154a8","z":1}"#,
        ),
        (
            last.id,
            r#"{"counter":7,"multifactor_aaguid":"CB69481E-8FF7-4039-93EC-0A2729A154A8"}"#,
        ),
    ] {
        sqlx::query("UPDATE mfa_devices SET credential = CAST(?1 AS BLOB) WHERE id = ?2")
            .bind(json)
            .bind(id.as_bytes().to_vec())
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    for statement in [
        "ALTER TABLE mfa_devices DROP COLUMN aaguid",
        "UPDATE mfa_schema_version SET version = 12",
    ] {
        sqlx::query(statement).execute(&mut *conn).await.unwrap();
    }
    drop(conn);
    pool.close().await;
    store.migrate().await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), Some(13));
    let aaguid = [
        0xcb, 0x69, 0x48, 0x1e, 0x8f, 0xf7, 0x40, 0x39, 0x93, 0xec, 0x0a, 0x27, 0x29, 0xa1, 0x54, 0xa8,
    ];
    for (id, json) in [(first.id, r#"{"counter":7,"z":1}"#), (last.id, r#"{"counter":7}"#)] {
        let Some(multifactor::store::DeviceData::WebAuthn(w)) = store.device(&user, id).await.unwrap().map(|d| d.data)
        else {
            panic!("the credential is gone");
        };
        assert_eq!(w.aaguid, Some(aaguid));
        assert_eq!(std::str::from_utf8(&w.credential).unwrap(), json);
    }
}

/// The 8 big-endian bytes of `blob` as an integer (SQLite has no function for it).
fn be_u64(blob: &str) -> String {
    (1..=16)
        .map(|i| {
            format!(
                "((instr('0123456789ABCDEF', substr(hex({blob}), {i}, 1)) - 1) << {})",
                4 * (16 - i)
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The statement that moves a state row's counter (`{prefix}_counter`: a flags byte, then four
/// 8-byte words) back into `mfa_throttles` as `factor`.
fn counters(prefix: &str, factor: &str) -> String {
    let column = format!("{prefix}_counter");
    let word = |at: usize| be_u64(&format!("substr({column}, {at}, 8)"));
    let flag = |bit: usize| format!("((instr('0123456789ABCDEF', substr(hex({column}), 2, 1)) - 1) >> {bit}) & 1 = 1");
    format!(
        "INSERT INTO mfa_throttles (user_id, factor, failures, last_failure_at, budget_until, last_miss) \
         SELECT user_id, '{factor}', {}, CASE WHEN {} THEN {} END, CASE WHEN {} THEN {} END, CASE WHEN {} THEN {} END \
         FROM mfa_user_state WHERE length({column}) > 0",
        word(2),
        flag(0),
        word(10),
        flag(1),
        word(18),
        flag(2),
        word(26)
    )
}

/// Takes a version-13 database back to version 10, losing nothing: the AAGUIDs back into the
/// credentials' JSON (v12), the browser records under their first table name (v11), then the
/// last steps, last uses and unused-code masks back into the device rows, the code factors'
/// counters back into `mfa_throttles`, and no state rows.
async fn to_v10(pool: &sqlx::SqlitePool) {
    let entry = |offset: usize| be_u64(&format!("substr(s.m, instr(s.m, mfa_devices.id) + {offset}, 8)"));
    let step = entry(16);
    let used = entry(24);
    let statements = [
        "UPDATE mfa_devices SET credential = CAST(json_set(CAST(credential AS TEXT), '$.multifactor_aaguid', \
         lower(substr(hex(aaguid), 1, 8) || '-' || substr(hex(aaguid), 9, 4) || '-' || substr(hex(aaguid), 13, 4) \
         || '-' || substr(hex(aaguid), 17, 4) || '-' || substr(hex(aaguid), 21, 12))) AS BLOB) WHERE aaguid IS NOT NULL"
            .to_owned(),
        "ALTER TABLE mfa_devices DROP COLUMN aaguid".to_owned(),
        "ALTER TABLE mfa_browsers RENAME TO mfa_trusted_devices".to_owned(),
        "DROP INDEX mfa_browsers_by_user".to_owned(),
        "CREATE INDEX mfa_trusted_devices_by_user ON mfa_trusted_devices (user_id, created_at, id)".to_owned(),
        "DROP INDEX mfa_devices_by_user".to_owned(),
        "CREATE INDEX mfa_devices_by_user ON mfa_devices (user_id, created_at, id)".to_owned(),
        "DROP INDEX mfa_devices_totp_fingerprint".to_owned(),
        "CREATE UNIQUE INDEX mfa_devices_totp_fingerprint ON mfa_devices (user_id, totp_fingerprint)".to_owned(),
        "ALTER TABLE mfa_devices ADD COLUMN totp_last_step INTEGER".to_owned(),
        "ALTER TABLE mfa_devices ADD COLUMN codes_unused INTEGER".to_owned(),
        format!(
            "UPDATE mfa_devices SET totp_last_step = NULLIF({step}, 0) - 1, last_used_at = NULLIF({used}, 0) - 1, \
             confirmed = confirmed OR ({used}) <> 0 \
             FROM (SELECT user_id, totp_marks AS m FROM mfa_user_state) s \
             WHERE s.user_id = mfa_devices.user_id AND mfa_devices.kind = 'totp' AND (instr(s.m, mfa_devices.id) - 1) % 32 = 0"
        ),
        "UPDATE mfa_devices SET codes_unused = s.codes_unused, last_used_at = s.codes_used_at FROM mfa_user_state s \
         WHERE s.codes_set = mfa_devices.id AND s.user_id = mfa_devices.user_id"
            .to_owned(),
        counters("totp", "totp"),
        counters("codes", "backup_codes"),
        "DROP TABLE mfa_user_state".to_owned(),
        "UPDATE mfa_schema_version SET version = 10".to_owned(),
    ];
    // One connection: SQLite checks a new index's name against the connection's copy of the
    // schema, which another connection's drop does not refresh until it reads again.
    let mut conn = pool.acquire().await.unwrap();
    for statement in statements {
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
            .persistent(false)
            .execute(&mut *conn)
            .await
        {
            panic!("{statement}: {e}");
        }
    }
}

/// Takes a version-10 database back to version 9: no email addresses or phone numbers.
const TO_V9: [&str; 3] = [
    "ALTER TABLE mfa_devices DROP COLUMN oob_channel",
    "ALTER TABLE mfa_devices DROP COLUMN oob_issued",
    "UPDATE mfa_schema_version SET version = 9",
];

/// Takes a version-9 database back to version 8: no prehashed backup-code sets.
const TO_V8: [&str; 2] = [
    "ALTER TABLE mfa_devices DROP COLUMN codes_prehash",
    "UPDATE mfa_schema_version SET version = 8",
];

/// Takes a version-8 database back to version 7: no skipped enrollment prompts.
const TO_V7: [&str; 2] = [
    "ALTER TABLE mfa_enrollment_deadlines DROP COLUMN skipped",
    "UPDATE mfa_schema_version SET version = 7",
];

/// Takes a version-7 database back to version 6: no enrollment deadlines.
const TO_V6: [&str; 2] = [
    "DROP TABLE mfa_enrollment_deadlines",
    "UPDATE mfa_schema_version SET version = 6",
];

/// Takes a version-6 database back to version 5: no TOTP fingerprints.
const TO_V5: [&str; 3] = [
    "DROP INDEX mfa_devices_totp_fingerprint",
    "ALTER TABLE mfa_devices DROP COLUMN totp_fingerprint",
    "UPDATE mfa_schema_version SET version = 5",
];

/// Takes a version-5 database back to version 4: no miss fingerprints, no known browsers
/// (every browser record was a remembered one).
const TO_V4: [&str; 5] = [
    "DROP TABLE mfa_keys",
    "DELETE FROM mfa_trusted_devices WHERE skips_second_factor = FALSE",
    "ALTER TABLE mfa_throttles DROP COLUMN last_miss",
    "ALTER TABLE mfa_trusted_devices DROP COLUMN skips_second_factor",
    "UPDATE mfa_schema_version SET version = 4",
];

/// Takes a version-4 file back to version 3: one row per backup code, unpacked from the set's
/// row (the statements an older release's tables hold the same data with).
const TO_V3: [&str; 5] = [
    "CREATE TABLE mfa_backup_codes (
        device_id BLOB NOT NULL REFERENCES mfa_devices (id) ON DELETE CASCADE,
        slot INTEGER NOT NULL,
        hash BLOB NOT NULL,
        used INTEGER NOT NULL,
        PRIMARY KEY (device_id, slot)
    ) STRICT",
    "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < 63)
     INSERT INTO mfa_backup_codes (device_id, slot, hash, used)
     SELECT d.id, s.i, substr(d.codes_hashes, s.i * 32 + 1, 32), ((d.codes_unused >> s.i) & 1) = 0
     FROM mfa_devices d JOIN s ON s.i < length(d.codes_hashes) / 32 WHERE d.kind = 'backup_codes'",
    "ALTER TABLE mfa_devices DROP COLUMN codes_hashes",
    "ALTER TABLE mfa_devices DROP COLUMN codes_unused",
    "UPDATE mfa_schema_version SET version = 3",
];

/// A version-4 file keeps what it has: its remember-this-browser tokens (every browser record
/// of version 4 is one) still skip the second factor after the upgrade, and its counters keep
/// their state.
#[tokio::test]
async fn a_version_4_file_keeps_its_remembered_browsers_and_counters() {
    let path = fresh_path("v4");
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let m = mfa(SqliteStore::open(&path).await.unwrap(), &clock);
    let alice = UserId::new("alice").unwrap();
    let set = m.generate_backup_codes(&alice, None).await.unwrap();
    let Outcome::Accepted(v) = m
        .verify_backup_code(&alice, set.codes[0].expose_secret())
        .await
        .unwrap()
    else {
        panic!("the backup code was refused")
    };
    let token = m.remember_browser(&v).await.unwrap();
    for wrong in ["zzzz-zzzz-zzzz0", "zzzz-zzzz-zzzz1"] {
        assert_eq!(m.verify_backup_code(&alice, wrong).await.unwrap(), Outcome::Rejected);
    }
    let counter = multifactor::Factor::BackupCodes.into();
    let before = m.store().throttle(&alice, counter).await.unwrap();
    assert_eq!(before.failures, 2);
    let pool = raw(&path).await;
    to_v10(&pool).await;
    for statement in TO_V9
        .into_iter()
        .chain(TO_V8)
        .chain(TO_V7)
        .chain(TO_V6)
        .chain(TO_V5)
        .chain(TO_V4)
    {
        sqlx::query(statement).persistent(false).execute(&pool).await.unwrap();
    }
    pool.close().await;
    m.store().migrate().await.unwrap();
    assert_eq!(m.store().schema_version().await.unwrap(), Some(13));
    assert!(
        m.check_remembered_browser(&alice, token.token.expose_secret())
            .await
            .unwrap(),
        "a version-4 remembered browser no longer skips the second factor"
    );
    let after = m.store().throttle(&alice, counter).await.unwrap();
    assert_eq!(
        (
            after.failures,
            after.last_failure_at,
            after.budget_until,
            after.last_miss
        ),
        (before.failures, before.last_failure_at, before.budget_until, None),
        "the upgrade changed a counter"
    );
}

/// A version-5 file's TOTP devices have no fingerprint after the upgrade: they keep verifying,
/// and importing one of their secrets again is still refused (the service compares the opened
/// secrets); devices imported after the upgrade have one, and a rotation gives the old ones one.
#[tokio::test]
async fn a_version_5_file_keeps_its_totp_devices_and_refuses_their_secrets_again() {
    use multifactor::store::DeviceData;
    let path = fresh_path("v5");
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let m = mfa(SqliteStore::open(&path).await.unwrap(), &clock);
    let alice = UserId::new("alice").unwrap();
    let base32 = "JBSWY3DPEHPK3PXPJBSWY3DP";
    let device = m.import_totp(&alice, base32, None).await.unwrap();
    let pool = raw(&path).await;
    to_v10(&pool).await;
    for statement in TO_V9.into_iter().chain(TO_V8).chain(TO_V7).chain(TO_V6).chain(TO_V5) {
        sqlx::query(statement).persistent(false).execute(&pool).await.unwrap();
    }
    pool.close().await;
    m.store().migrate().await.unwrap();
    assert_eq!(m.store().schema_version().await.unwrap(), Some(13));
    let fingerprint = |record: Option<multifactor::store::DeviceRecord>| match record.map(|r| r.data) {
        Some(DeviceData::Totp(t)) => t.fingerprint,
        other => panic!("not a TOTP device: {other:?}"),
    };
    assert_eq!(fingerprint(m.store().device(&alice, device).await.unwrap()), None);
    let secret = decode_base32_secret(base32).unwrap();
    let code = code_at(&secret, &TotpParams::default(), clock.now());
    assert!(m.verify_totp(&alice, code.expose_secret()).await.unwrap().is_accepted());
    assert!(matches!(
        m.import_totp(&alice, base32, None).await,
        Err(multifactor::Error::Misuse(
            multifactor::error::MisuseError::DuplicateSecret
        ))
    ));
    // A rotation re-seals it, with a fingerprint under the new key.
    let rotated = m.with_keys(
        Keyring::new(multifactor::SealingKey::new(KeyId::new("k2").unwrap(), [8; 32]))
            .with_previous(multifactor::SealingKey::new(KeyId::new("k1").unwrap(), [9; 32]))
            .unwrap(),
    );
    let report = rotated.rotate_keys().await.unwrap();
    assert_eq!(report.resealed, 1, "{report:?}");
    assert!(fingerprint(rotated.store().device(&alice, device).await.unwrap()).is_some());
    assert!(matches!(
        rotated.import_totp(&alice, &format!("{base32}AA"), None).await,
        Err(multifactor::Error::Misuse(
            multifactor::error::MisuseError::DuplicateSecret
        ))
    ));
}

/// A version-7 file's enrollment deadlines stay after the upgrade, with no skips counted.
#[tokio::test]
async fn a_version_7_file_keeps_its_deadlines_with_no_skips() {
    use multifactor::enrollment::EnrollmentGrace;
    let path = fresh_path("v7");
    let store = SqliteStore::open(&path).await.unwrap();
    let alice = UserId::new("alice").unwrap();
    let deadline = UnixTime::from_secs(1_900_000_000);
    store.enrollment_deadline(&alice, deadline).await.unwrap();
    let pool = raw(&path).await;
    to_v10(&pool).await;
    for statement in TO_V9.into_iter().chain(TO_V8).chain(TO_V7) {
        sqlx::query(statement).persistent(false).execute(&pool).await.unwrap();
    }
    pool.close().await;
    store.migrate().await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), Some(13));
    assert_eq!(
        store.enrollment_deadline(&alice, UnixTime::from_secs(5)).await.unwrap(),
        EnrollmentGrace::new(deadline, 0)
    );
    assert_eq!(
        store
            .skip_enrollment_prompt(&alice, UnixTime::from_secs(5), 2)
            .await
            .unwrap(),
        Some(1)
    );
}

/// A version-3 set whose slots are not 0..n-1 (a code row deleted by hand) cannot be packed
/// by slot number without misreading it: the upgrade is refused, and the file stays version 3
/// with every row it had.
#[tokio::test]
async fn a_version_3_set_with_a_gap_is_refused_not_misread() {
    let path = fresh_path("v3-gap");
    let store = SqliteStore::open(&path).await.unwrap();
    let user = UserId::new("gap").unwrap();
    store
        .replace_backup_codes(multifactor::conformance::backup_record(&user, 1, 6).unwrap())
        .await
        .unwrap();
    let pool = raw(&path).await;
    to_v10(&pool).await;
    for statement in TO_V9
        .into_iter()
        .chain(TO_V8)
        .chain(TO_V7)
        .chain(TO_V6)
        .chain(TO_V5)
        .chain(TO_V4)
        .chain(TO_V3)
    {
        sqlx::query(statement).persistent(false).execute(&pool).await.unwrap();
    }
    sqlx::query("DELETE FROM mfa_backup_codes WHERE slot = 2")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let refused = store.migrate().await;
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("backup_code_slots_packable")),
        "{refused:?}"
    );
    let pool = raw(&path).await;
    let version: i64 = sqlx::query_scalar("SELECT version FROM mfa_schema_version")
        .fetch_one(&pool)
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mfa_backup_codes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((version, rows), (3, 5), "a refused upgrade changed the file");
    // With the gap closed (slots 0..n-1 again) the same file upgrades.
    sqlx::query("UPDATE mfa_backup_codes SET slot = slot - 1 WHERE slot > 2")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    store.migrate().await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), Some(13));
}

#[tokio::test]
async fn migrations_are_idempotent_and_a_newer_schema_is_refused() {
    let path = fresh_path("migrate");
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), Some(13));
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    // A version-3 file (one row per backup code) is upgraded in place, losing no code and no
    // used mark: a set with its second code spent reads back the same after the upgrade.
    let v3 = UserId::new("v3").unwrap();
    let (_, codes) = multifactor::backup_codes::generate(
        &multifactor::InsecureSeededRng::new(6),
        &multifactor::backup_codes::BackupCodeConfig::new(
            32,
            multifactor::backup_codes::BackupCodeConfig::DEFAULT_LENGTH,
        )
        .unwrap(),
        &multifactor::backup_codes::CodeKey::Legacy(None),
    )
    .unwrap();
    let mut v3_set = multifactor::store::DeviceRecord {
        id: multifactor::DeviceId::from_bytes([5; 16]),
        user: v3.clone(),
        name: multifactor::DeviceName::new("Codes").unwrap(),
        created_at: multifactor::UnixTime::from_secs(1),
        last_used_at: None,
        confirmed: true,
        data: multifactor::store::DeviceData::BackupCodes(codes),
    };
    store.replace_backup_codes(v3_set.clone()).await.unwrap();
    for slot in [1, 31] {
        let spent = store
            .consume_backup_code(
                &v3,
                v3_set.id,
                slot,
                UnixTime::from_secs(9),
                multifactor::store::ThrottleState::default(),
            )
            .await
            .unwrap();
        assert!(spent);
        if let multifactor::store::DeviceData::BackupCodes(set) = &mut v3_set.data {
            set.slots[slot].used = true;
        }
    }
    v3_set.last_used_at = Some(UnixTime::from_secs(9));
    let pool = raw(&path).await;
    to_v10(&pool).await;
    for statement in TO_V9
        .into_iter()
        .chain(TO_V8)
        .chain(TO_V7)
        .chain(TO_V6)
        .chain(TO_V5)
        .chain(TO_V4)
        .chain(TO_V3)
    {
        sqlx::query(statement).persistent(false).execute(&pool).await.unwrap();
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mfa_backup_codes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 32, "the downgrade to v3 did not write one row per code");
    pool.close().await;
    store.migrate().await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), Some(13));
    assert_eq!(store.device(&v3, v3_set.id).await.unwrap(), Some(v3_set));
    let pool = raw(&path).await;
    // A remember-this-browser row hashed the v2 way (not bound to id, user and expiry).
    store
        .insert_remembered_browser(multifactor::store::RememberedBrowserRecord {
            id: multifactor::RememberedBrowserId::from_bytes([3; 16]),
            user: UserId::new("v2").unwrap(),
            key_id: multifactor::KeyId::new("k1").unwrap(),
            hash: [9; 32],
            created_at: multifactor::UnixTime::from_secs(1),
            expires_at: multifactor::UnixTime::from_secs(u32::MAX.into()),
            last_used_at: None,
            skips_second_factor: true,
        })
        .await
        .unwrap();
    // A version-2 file (no failure budget, unkeyed backup-code hashes) is upgraded in place,
    // keeping its counters and ending its remember-this-browser tokens (they cannot be re-hashed).
    to_v10(&pool).await;
    for statement in TO_V9
        .into_iter()
        .chain(TO_V8)
        .chain(TO_V6)
        .chain(TO_V5)
        .chain(TO_V4)
        .chain(TO_V3)
        .chain([
            "ALTER TABLE mfa_throttles DROP COLUMN budget_until",
            "ALTER TABLE mfa_devices DROP COLUMN codes_key_id",
            "INSERT INTO mfa_throttles (user_id, factor, failures, last_failure_at) VALUES ('v2', 'totp', 4, 77)",
            "UPDATE mfa_schema_version SET version = 2",
        ])
    {
        sqlx::query(statement).persistent(false).execute(&pool).await.unwrap();
    }
    store.migrate().await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), Some(13));
    let kept = store
        .throttle(&UserId::new("v2").unwrap(), multifactor::Factor::Totp.into())
        .await
        .unwrap();
    assert_eq!((kept.failures, kept.budget_until), (4, None));
    let tokens: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mfa_browsers")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tokens, 0, "v2 tokens survived the upgrade");
    // A v2 backup-code set (no key id) round-trips as one.
    let (_, legacy) = multifactor::backup_codes::generate(
        &multifactor::InsecureSeededRng::new(5),
        &multifactor::backup_codes::BackupCodeConfig::default(),
        &multifactor::backup_codes::CodeKey::Legacy(None),
    )
    .unwrap();
    let v2 = UserId::new("v2").unwrap();
    let set = multifactor::store::DeviceRecord {
        id: multifactor::DeviceId::from_bytes([4; 16]),
        user: v2.clone(),
        name: multifactor::DeviceName::new("Old codes").unwrap(),
        created_at: multifactor::UnixTime::from_secs(1),
        last_used_at: None,
        confirmed: true,
        data: multifactor::store::DeviceData::BackupCodes(legacy),
    };
    store.replace_backup_codes(set.clone()).await.unwrap();
    assert_eq!(store.device(&v2, set.id).await.unwrap(), Some(set));
    // A version-1 file is upgraded in place (through a fresh connection: the one above still
    // has the v2 schema cached).
    pool.close().await;
    let pool = raw(&path).await;
    to_v10(&pool).await;
    for statement in TO_V9
        .into_iter()
        .chain(TO_V8)
        .chain(TO_V6)
        .chain(TO_V5)
        .chain(TO_V4)
        .chain(TO_V3)
        .chain([
            "DROP TABLE mfa_trusted_devices",
            "ALTER TABLE mfa_throttles DROP COLUMN budget_until",
            "ALTER TABLE mfa_devices DROP COLUMN codes_key_id",
            "UPDATE mfa_schema_version SET version = 1",
        ])
    {
        sqlx::query(statement).persistent(false).execute(&pool).await.unwrap();
    }
    store.migrate().await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), Some(13));
    let trusted: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mfa_browsers")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(trusted, 0);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mfa_schema_version")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    store.close().await;
    sqlx::query("UPDATE mfa_schema_version SET version = 99")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    match SqliteStore::open(&path).await {
        Err(
            e @ StoreError::SchemaTooNew {
                found: 99,
                supported: 13,
            },
        ) => {
            assert!(e.to_string().contains("newer than this code supports"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn corrupt_rows_are_typed_errors_not_panics() {
    let path = fresh_path("corrupt");
    let store = SqliteStore::open(&path).await.unwrap();
    let pool = raw(&path).await;
    let cases: [(&str, &'static str); 3] = [
        (
            "kind",
            "INSERT INTO mfa_devices (id, user_id, kind, name, created_at, confirmed) VALUES (?1, ?2, 'sms', 'x', 1, 1)",
        ),
        (
            "totp_algorithm",
            "INSERT INTO mfa_devices (id, user_id, kind, name, created_at, confirmed) VALUES (?1, ?2, 'totp', 'x', 1, 1)",
        ),
        (
            "codes_salt",
            "INSERT INTO mfa_devices (id, user_id, kind, name, created_at, confirmed, codes_salt, codes_length) VALUES (?1, ?2, 'backup_codes', 'x', 1, 1, x'00', 12)",
        ),
    ];
    for (i, (column, sql)) in cases.into_iter().enumerate() {
        let u = UserId::new(format!("corrupt-{i}")).unwrap();
        sqlx::query(sql)
            .bind(vec![i as u8; 16])
            .bind(u.as_str())
            .execute(&pool)
            .await
            .unwrap();
        match store.list_devices(&u).await {
            Err(StoreError::Corrupt(msg)) => assert!(msg.contains(column), "{column}: {msg}"),
            other => panic!("{column}: {other:?}"),
        }
    }
    // A state row's counter in any encoding but its own (here a clear counter written out in
    // full) is corrupt, named by its column, whether the counter or a verification reads it.
    let u = UserId::new("corrupt-counter").unwrap();
    sqlx::query(
        "INSERT INTO mfa_devices (id, user_id, kind, name, created_at, confirmed, codes_salt, codes_length, \
         codes_key_id, codes_hashes) VALUES (?1, ?2, 'backup_codes', 'x', 1, 1, zeroblob(16), 12, 'k', zeroblob(32))",
    )
    .bind(vec![9u8; 16])
    .bind(u.as_str())
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO mfa_user_state (user_id, version, codes_counter) VALUES (?1, 1, zeroblob(33))")
        .bind(u.as_str())
        .execute(&pool)
        .await
        .unwrap();
    match store.throttle(&u, multifactor::Factor::BackupCodes.into()).await {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains("mfa_user_state.codes_counter"), "{msg}"),
        other => panic!("counter: {other:?}"),
    }
    match store.verification_state(&u, multifactor::Factor::BackupCodes).await {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains("mfa_user_state.codes_counter"), "{msg}"),
        other => panic!("verification state: {other:?}"),
    }
    // A value of the wrong type is refused by the STRICT tables themselves.
    let wrong = sqlx::query("INSERT INTO mfa_throttles (user_id, factor, failures) VALUES ('u', 'totp', 'many')")
        .execute(&pool)
        .await;
    assert!(wrong.is_err());
}

#[tokio::test]
async fn the_devices_version_wraps_from_its_top_to_zero() {
    let path = fresh_path("wrap");
    let store = SqliteStore::open(&path).await.unwrap();
    let pool = raw(&path).await;
    let user = UserId::new("wrap").unwrap();
    multifactor_kit::version::wraps(&store, &user, || async {
        sqlx::query("UPDATE mfa_user_state SET version = ?1 WHERE user_id = 'wrap'")
            .bind(multifactor_kit::version::TOP)
            .execute(&pool)
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn the_database_file_holds_no_plaintext_secret() {
    let path = fresh_path("plaintext");
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let alice = UserId::new("alice").unwrap();
    let m = mfa(SqliteStore::open(&path).await.unwrap(), &clock);
    let e = m.enroll_totp(&alice, "alice@example.com", None).await.unwrap();
    let secret = decode_base32_secret(e.secret_base32.expose_secret()).unwrap();
    let set = m.generate_backup_codes(&alice, None).await.unwrap();
    m.store().close().await;
    let mut bytes = std::fs::read(&path).unwrap();
    if let Ok(wal) = std::fs::read(format!("{}-wal", path.display())) {
        bytes.extend(wal);
    }
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        contains(b"alice@example.com") || contains(b"alice"),
        "the check could not fail: no user data found"
    );
    assert!(!contains(secret.expose_secret()), "raw TOTP secret in the file");
    assert!(
        !contains(e.secret_base32.expose_secret().as_bytes()),
        "base32 TOTP secret in the file"
    );
    for code in &set.codes {
        assert!(!contains(code.expose_secret().as_bytes()), "backup code in the file");
        assert!(
            !contains(code.expose_secret().replace('-', "").as_bytes()),
            "backup code in the file"
        );
    }
}
