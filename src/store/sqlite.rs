//! [`SqliteStore`] (feature `sqlite`): the embedded default, one process and one file.
//!
//! The schema is documented in [the `sql` module](super::sql). The file runs in WAL mode with `synchronous =
//! FULL` (a consumed code stays consumed through a power cut), foreign keys on, and a 10 s busy
//! timeout; write transactions begin `IMMEDIATE`, so concurrent writers queue instead of failing.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::clock::UnixTime;
use crate::error::StoreError;
use crate::id::{CeremonyId, DeviceId, DeviceName, RememberedBrowserId, UserId};
use crate::kind::Factor;
use crate::remembered_browser::RememberedBrowserRecord;
use crate::seal::SealedSecret;
use crate::store::{
    AdminStore, BrowserStore, CeremonyStore, DeleteOutcome, DeviceStore, EnrollmentStore, Settle, Settlement,
};
use crate::store::{DeviceData, DeviceRecord};
use crate::throttle::ThrottleState;
use crate::webauthn::{CeremonyKind, CeremonyRecord, WebAuthnUse};

/// A [`Store`](crate::Store) on a SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if the file cannot be opened, [`StoreError::SchemaTooNew`] if a
    /// newer version of this crate migrated it.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // In-process connections do not die: skip sqlx's ping before each use.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(StoreError::backend)?;
        let store = Self { pool }.check_schema().await?;
        store.migrate().await?;
        Ok(store)
    }

    /// A store on the application's own pool, migrated (as [`open`](Self::open) migrates).
    /// The pool's settings are the application's: this store's guarantees assume what
    /// [`open`](Self::open) sets, foreign keys on (sqlx's default), and for durability WAL
    /// mode with `synchronous = FULL` (a consumed code then stays consumed through a power cut).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if SQLite fails, [`StoreError::SchemaTooNew`] if a newer version
    /// of this crate migrated the database.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, StoreError> {
        let store = Self { pool }.check_schema().await?;
        store.migrate().await?;
        Ok(store)
    }

    /// A private in-memory database (one connection), migrated. For tests and demos.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if SQLite fails.
    pub async fn open_in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(StoreError::backend)?
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(StoreError::backend)?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }
}

const SCHEMA_TABLE_EXISTS: &str = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mfa_schema_version'";

const DDL_V1: &[&str] = &[
    "CREATE TABLE mfa_devices (
        id BLOB PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER,
        confirmed INTEGER NOT NULL,
        totp_algorithm TEXT,
        totp_digits INTEGER,
        totp_period INTEGER,
        totp_secret BLOB,
        totp_last_step INTEGER,
        codes_salt BLOB,
        codes_length INTEGER,
        credential_id BLOB UNIQUE,
        user_handle BLOB,
        credential BLOB,
        sign_count INTEGER,
        backup_eligible INTEGER,
        backup_state INTEGER,
        discoverable INTEGER,
        user_verified INTEGER
    ) STRICT",
    "CREATE INDEX mfa_devices_by_user ON mfa_devices (user_id, created_at, id)",
    "CREATE TABLE mfa_backup_codes (
        device_id BLOB NOT NULL REFERENCES mfa_devices (id) ON DELETE CASCADE,
        slot INTEGER NOT NULL,
        hash BLOB NOT NULL,
        used INTEGER NOT NULL,
        PRIMARY KEY (device_id, slot)
    ) STRICT",
    "CREATE TABLE mfa_throttles (
        user_id TEXT NOT NULL,
        factor TEXT NOT NULL,
        failures INTEGER NOT NULL,
        last_failure_at INTEGER,
        PRIMARY KEY (user_id, factor)
    ) STRICT",
    "CREATE TABLE mfa_ceremonies (
        id BLOB PRIMARY KEY NOT NULL,
        user_id TEXT,
        kind TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        state BLOB NOT NULL
    ) STRICT",
    "CREATE INDEX mfa_ceremonies_by_expiry ON mfa_ceremonies (expires_at)",
];

const DDL_V2: &[&str] = &[
    "CREATE TABLE mfa_trusted_devices (
        id BLOB PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL,
        key_id TEXT NOT NULL,
        hash BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        last_used_at INTEGER
    ) STRICT",
    "CREATE INDEX mfa_trusted_devices_by_user ON mfa_trusted_devices (user_id, created_at, id)",
];

/// Schema v3: the failure budget beside the consecutive-failure counter.
const DDL_V3: &[&str] = &[
    "ALTER TABLE mfa_throttles ADD COLUMN budget_until INTEGER",
    // Backup-code hashes keyed by a key of the keyring (sets without one are v2 sets).
    "ALTER TABLE mfa_devices ADD COLUMN codes_key_id TEXT",
    // Remember-this-browser hashes are now bound to the token id, user and expiry: v2 tokens
    // cannot be re-hashed (the token is not stored), so they end here and users pass their
    // second factor once more.
    "DELETE FROM mfa_trusted_devices",
];

/// Schema v4: a backup-code set's codes packed into its row (the hashes end to end and a mask
/// of the unused ones), so reading and settling a set costs the same for 1 or 32 codes.
const DDL_V4: &[&str] = &[
    // Packing reads a set's codes in slot order and marks unused ones by slot number: that is
    // one reading only while the slots are 0..n-1 and the hashes 32 bytes. Anything else is
    // refused (the whole migration rolls back), never misread.
    "CREATE TEMP TABLE mfa_v4_guard (backup_code_slots_packable INTEGER NOT NULL CHECK (backup_code_slots_packable = 1))",
    "INSERT INTO mfa_v4_guard SELECT NOT EXISTS (SELECT 1 FROM mfa_backup_codes GROUP BY device_id
        HAVING MIN(slot) <> 0 OR MAX(slot) <> COUNT(*) - 1 OR MAX(slot) > 62 OR MAX(length(hash)) <> 32
            OR MIN(length(hash)) <> 32)",
    "DROP TABLE mfa_v4_guard",
    "ALTER TABLE mfa_devices ADD COLUMN codes_hashes BLOB",
    "ALTER TABLE mfa_devices ADD COLUMN codes_unused INTEGER",
    "UPDATE mfa_devices SET
        codes_hashes = coalesce((SELECT unhex(group_concat(hex(c.hash), '' ORDER BY c.slot))
            FROM mfa_backup_codes c WHERE c.device_id = mfa_devices.id), X''),
        codes_unused = (SELECT coalesce(sum(CASE WHEN c.used THEN 0 ELSE 1 << c.slot END), 0)
            FROM mfa_backup_codes c WHERE c.device_id = mfa_devices.id)
        WHERE kind = 'backup_codes'",
    "DROP TABLE mfa_backup_codes",
];

/// Schema v5: the fingerprint of a counter's last charged wrong code (the same wrong code
/// twice is one failure), known browsers beside remembered ones (`skips_second_factor`: every
/// record so far is a remembered browser), counters of known browsers, whose keys in
/// `mfa_throttles.factor` name the browser (`totp@<id>`), and a check value per sealing key id.
const DDL_V5: &[&str] = &[
    "ALTER TABLE mfa_throttles ADD COLUMN last_miss INTEGER",
    "ALTER TABLE mfa_trusted_devices ADD COLUMN skips_second_factor INTEGER NOT NULL DEFAULT 1",
    "CREATE TABLE mfa_keys (key_id TEXT PRIMARY KEY NOT NULL, check_value BLOB NOT NULL) STRICT",
];

/// Schema v6: a keyed fingerprint of each TOTP secret, unique per user, so the store refuses a
/// second device with the same secret in the same step as the insert (devices stored before
/// have none, and never conflict).
const DDL_V6: &[&str] = &[
    "ALTER TABLE mfa_devices ADD COLUMN totp_fingerprint BLOB",
    "CREATE UNIQUE INDEX mfa_devices_totp_fingerprint ON mfa_devices (user_id, totp_fingerprint)",
];

/// Schema v7: each user's enrollment deadline, stored the first time a required enrollment
/// is asked about, and changed only by an administrator.
const DDL_V7: &[&str] =
    &["CREATE TABLE mfa_enrollment_deadlines (user_id TEXT PRIMARY KEY NOT NULL, deadline INTEGER NOT NULL) STRICT"];

/// Schema v8: the enrollment prompts each user skipped, counted against a policy's allowance.
const DDL_V8: &[&str] = &["ALTER TABLE mfa_enrollment_deadlines ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0"];

/// Schema v9: what another system hashed the codes of an imported set with (Keycloak's
/// recovery codes), or NULL.
const DDL_V9: &[&str] = &["ALTER TABLE mfa_devices ADD COLUMN codes_prehash TEXT"];

/// Schema v10: email addresses and phone numbers that receive codes, stored as one-time-code
/// devices (`kind` `totp`, the sealed destination, its fingerprint and the last accepted
/// serial in the TOTP columns) with their channel and the last code sent (its serial, keyed
/// hash, expiry and send count, encoded).
const DDL_V10: &[&str] = &[
    "ALTER TABLE mfa_devices ADD COLUMN oob_channel TEXT",
    "ALTER TABLE mfa_devices ADD COLUMN oob_issued BLOB",
];

/// Schema v11: a counter moved out of `mfa_throttles` into its state-row column, encoded as
/// `sql::counter_bytes` encodes it (empty while clear).
macro_rules! move_counter {
    ($p:literal, $factor:literal) => {
        concat!(
            "UPDATE mfa_user_state SET ",
            $p,
            "_counter = CASE WHEN t.failures = 0 AND t.last_failure_at IS NULL AND t.budget_until IS NULL \
             AND t.last_miss IS NULL THEN X'' ELSE unhex(printf('%02x%016x%016x%016x%016x', \
             (t.last_failure_at IS NOT NULL) | ((t.budget_until IS NOT NULL) << 1) | ((t.last_miss IS NOT NULL) << 2), \
             t.failures, coalesce(t.last_failure_at, 0), coalesce(t.budget_until, 0), coalesce(t.last_miss, 0))) END \
             FROM mfa_throttles t ",
            "WHERE t.user_id = mfa_user_state.user_id AND t.factor = '",
            $factor,
            "'"
        )
    };
}

/// Schema v11: what a verification settles, in one row per user (`mfa_user_state`): the
/// devices version, the two code factors' counters for unknown browsers, each one-time-code
/// device's last accepted step and last use, and the backup-code set's unused codes and last
/// use. Settling is then one conditional update of that row; every device change increments
/// the version in the same transaction. The counters move out of `mfa_throttles` (which keeps
/// WebAuthn's and the known browsers'), the steps and masks out of `mfa_devices`.
const DDL_V11: &[&str] = &[
    "CREATE TEMP TABLE mfa_v11_guard (one_backup_code_set_per_user INTEGER NOT NULL CHECK (one_backup_code_set_per_user = 1))",
    "INSERT INTO mfa_v11_guard SELECT NOT EXISTS (SELECT 1 FROM mfa_devices WHERE kind = 'backup_codes'
        GROUP BY user_id HAVING COUNT(*) > 1)",
    "DROP TABLE mfa_v11_guard",
    "CREATE TABLE mfa_user_state (
        user_id TEXT PRIMARY KEY NOT NULL,
        version INTEGER NOT NULL,
        codes_unused INTEGER,
        codes_used_at INTEGER,
        hit INTEGER NOT NULL DEFAULT 0,
        codes_set BLOB,
        totp_counter BLOB NOT NULL DEFAULT X'',
        codes_counter BLOB NOT NULL DEFAULT X'',
        totp_marks BLOB NOT NULL DEFAULT X''
    ) STRICT, WITHOUT ROWID",
    "INSERT INTO mfa_user_state (user_id, version, totp_marks, codes_set, codes_unused, codes_used_at)
     SELECT d.user_id, 1,
        coalesce(unhex(group_concat(CASE WHEN d.kind = 'totp' THEN hex(d.id) || 
            CASE WHEN d.totp_last_step IS NULL THEN '0000000000000000' WHEN d.totp_last_step = 9223372036854775807 THEN '8000000000000000' ELSE printf('%016x', d.totp_last_step + 1) END
            || CASE WHEN d.last_used_at IS NULL OR NOT d.confirmed THEN '0000000000000000' WHEN d.last_used_at = 9223372036854775807 THEN '8000000000000000' ELSE printf('%016x', d.last_used_at + 1) END END,
            '' ORDER BY d.created_at, d.id)), X''),
        max(CASE WHEN d.kind = 'backup_codes' THEN d.id END),
        max(CASE WHEN d.kind = 'backup_codes' THEN d.codes_unused END),
        max(CASE WHEN d.kind = 'backup_codes' THEN d.last_used_at END)
     FROM mfa_devices d GROUP BY d.user_id",
    "INSERT INTO mfa_user_state (user_id, version) SELECT DISTINCT t.user_id, 0 FROM mfa_throttles t
     WHERE t.factor IN ('totp', 'backup_codes') ON CONFLICT (user_id) DO NOTHING",
    move_counter!("totp", "totp"),
    move_counter!("codes", "backup_codes"),
    "DELETE FROM mfa_throttles WHERE factor IN ('totp', 'backup_codes')",
    "UPDATE mfa_devices SET last_used_at = NULL WHERE kind <> 'webauthn'",
    // The device table is rebuilt without the two moved columns and without the UNIQUE
    // constraint on the credential id, whose index held an entry for every device: a partial
    // index holds only WebAuthn's. Rebuilt in rowid order; no other table refers to it.
    "CREATE TABLE mfa_devices_v11 (
        id BLOB PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER,
        confirmed INTEGER NOT NULL,
        totp_algorithm TEXT,
        totp_digits INTEGER,
        totp_period INTEGER,
        totp_secret BLOB,
        codes_salt BLOB,
        codes_length INTEGER,
        credential_id BLOB,
        user_handle BLOB,
        credential BLOB,
        sign_count INTEGER,
        backup_eligible INTEGER,
        backup_state INTEGER,
        discoverable INTEGER,
        user_verified INTEGER,
        codes_key_id TEXT,
        codes_hashes BLOB,
        totp_fingerprint BLOB,
        codes_prehash TEXT,
        oob_channel TEXT,
        oob_issued BLOB
    ) STRICT",
    "INSERT INTO mfa_devices_v11 (id, user_id, kind, name, created_at, last_used_at, confirmed, totp_algorithm, totp_digits, totp_period, totp_secret, codes_salt, codes_length, credential_id, user_handle, credential, sign_count, backup_eligible, backup_state, discoverable, user_verified, codes_key_id, codes_hashes, totp_fingerprint, codes_prehash, oob_channel, oob_issued)
     SELECT id, user_id, kind, name, created_at, last_used_at, confirmed, totp_algorithm, totp_digits, totp_period, totp_secret, codes_salt, codes_length, credential_id, user_handle, credential, sign_count, backup_eligible, backup_state, discoverable, user_verified, codes_key_id, codes_hashes, totp_fingerprint, codes_prehash, oob_channel, oob_issued FROM mfa_devices ORDER BY rowid",
    "DROP TABLE mfa_devices",
    "ALTER TABLE mfa_devices_v11 RENAME TO mfa_devices",
    // The user's devices are found by user and sorted after the lookup: a narrower index. The
    // unique indexes hold only the rows they constrain (a backup-code set or a WebAuthn
    // credential has no fingerprint, only a WebAuthn credential has a credential id): part of
    // the bytes the state row costs.
    "CREATE INDEX mfa_devices_by_user ON mfa_devices (user_id)",
    "CREATE UNIQUE INDEX mfa_devices_totp_fingerprint ON mfa_devices (user_id, totp_fingerprint) \
     WHERE totp_fingerprint IS NOT NULL",
    "CREATE UNIQUE INDEX mfa_devices_credential_id ON mfa_devices (credential_id) WHERE credential_id IS NOT NULL",
];

/// Schema v12: the browser records' table named for what it holds (remembered and known
/// browsers), not devices.
const DDL_V12: &[&str] = &[
    "ALTER TABLE mfa_trusted_devices RENAME TO mfa_browsers",
    "DROP INDEX mfa_trusted_devices_by_user",
    "CREATE INDEX mfa_browsers_by_user ON mfa_browsers (user_id, created_at, id)",
];

/// Schema v13: the authenticator model's AAGUID in a column of its own, taken out of the
/// credential's JSON (where earlier versions kept it as a UUID string under
/// `multifactor_aaguid`).
const DDL_V13: &[&str] = &[
    "ALTER TABLE mfa_devices ADD COLUMN aaguid BLOB",
    "UPDATE mfa_devices SET
         aaguid = unhex(replace(json_extract(CAST(credential AS TEXT), '$.multifactor_aaguid'), '-', '')),
         credential = CAST(json_remove(CAST(credential AS TEXT), '$.multifactor_aaguid') AS BLOB)
     WHERE credential IS NOT NULL AND json_valid(CAST(credential AS TEXT))
       AND json_type(CAST(credential AS TEXT), '$.multifactor_aaguid') = 'text'",
];

/// Settles a TOTP attempt: see [`SqlBackend::SETTLE_TOTP`](crate::store::sql::SqlBackend).
const SETTLE_TOTP: &str = "UPDATE mfa_user_state AS s SET
         version = (s.version + CASE WHEN coalesce(instr(s.totp_marks, $2) % 32 = 1 AND substr(s.totp_marks, instr(s.totp_marks, $2) + 16, 8) < $3, 0) AND substr(s.totp_marks, instr(s.totp_marks, $2) + 24, 8) = zeroblob(8) THEN 1 ELSE 0 END) % 2147483647,
         totp_marks = CASE WHEN coalesce(instr(s.totp_marks, $2) % 32 = 1 AND substr(s.totp_marks, instr(s.totp_marks, $2) + 16, 8) < $3, 0) THEN CAST(substr(s.totp_marks, 1, instr(s.totp_marks, $2) - 1) || $4 || substr(s.totp_marks, instr(s.totp_marks, $2) + 32) AS BLOB) ELSE s.totp_marks END,
         totp_counter = CASE WHEN coalesce(instr(s.totp_marks, $2) % 32 = 1 AND substr(s.totp_marks, instr(s.totp_marks, $2) + 16, 8) < $3, 0) THEN $7 ELSE $8 END,
         hit = coalesce(instr(s.totp_marks, $2) % 32 = 1 AND substr(s.totp_marks, instr(s.totp_marks, $2) + 16, 8) < $3, 0)
     WHERE s.user_id = $1 AND ($5 IS NULL OR s.version = $5) AND s.totp_counter = $6
     RETURNING hit";

/// Settles a backup code: see [`SqlBackend::SETTLE_CODES`](crate::store::sql::SqlBackend).
const SETTLE_CODES: &str = "UPDATE mfa_user_state AS s SET
         codes_unused = CASE WHEN coalesce(s.codes_set = $2 AND (s.codes_unused & $3) <> 0, 0) THEN s.codes_unused & ~$3 ELSE s.codes_unused END,
         codes_used_at = CASE WHEN coalesce(s.codes_set = $2 AND (s.codes_unused & $3) <> 0, 0) THEN $4 ELSE s.codes_used_at END,
         codes_counter = CASE WHEN coalesce(s.codes_set = $2 AND (s.codes_unused & $3) <> 0, 0) THEN $7 ELSE $8 END,
         hit = coalesce(s.codes_set = $2 AND (s.codes_unused & $3) <> 0, 0)
     WHERE s.user_id = $1 AND ($5 IS NULL OR s.version = $5) AND s.codes_counter = $6
     RETURNING hit";

impl crate::store::sql::SqlBackend for SqliteStore {
    type Db = Sqlite;
    /// SQLite's in-process connections come from the pool as they are (the PostgreSQL store
    /// keeps its own for the verification path).
    type Lease<'a> = PoolConnection<Sqlite>;
    const BEGIN: &'static str = "BEGIN IMMEDIATE";
    const LOCK: Option<&'static str> = None;
    const SETTLE_TOTP: &'static str = SETTLE_TOTP;
    const SETTLE_CODES: &'static str = SETTLE_CODES;
    // Write transactions are serial (`BEGIN IMMEDIATE`): nothing to lock.
    const LOCK_STATE: &'static str =
        "SELECT totp_marks, codes_set, codes_unused, codes_used_at FROM mfa_user_state WHERE user_id = $1";
    const LIVE_BROWSER: &'static str = "SELECT 1 FROM mfa_browsers WHERE id = $1 AND user_id = $2 AND expires_at > $3";
    /// One row when the version table exists.
    const SCHEMA_TABLE_EXISTS: &'static str = SCHEMA_TABLE_EXISTS;
    const MIGRATIONS: &'static [&'static [&'static str]] = &[
        DDL_V1, DDL_V2, DDL_V3, DDL_V4, DDL_V5, DDL_V6, DDL_V7, DDL_V8, DDL_V9, DDL_V10, DDL_V11, DDL_V12, DDL_V13,
    ];

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn lease(&self) -> Result<PoolConnection<Sqlite>, StoreError> {
        self.pool.acquire().await.map_err(StoreError::backend)
    }

    /// Back to the pool, on drop.
    fn release(_lease: PoolConnection<Sqlite>) {}

    async fn close_leases(&self) {}
}

crate::store::sql::sql_device_store!(SqliteStore);
