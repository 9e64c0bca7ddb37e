//! [`PostgresStore`] (feature `postgres`): many app servers, one database.
//!
//! The schema is documented in [the `sql` module](super::sql). Every state-changing operation is one
//! conditional statement or one transaction that is correct at PostgreSQL's default READ
//! COMMITTED isolation; replacing a backup-code set and migrating take a transaction-scoped
//! advisory lock, so concurrent replacements of one user's set, and concurrent migrations,
//! run one after the other.

use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::clock::UnixTime;
use crate::device::{CeremonyId, DeviceData, DeviceId, DeviceName, DeviceRecord, Factor, TrustedDeviceId, UserId};
use crate::error::StoreError;
use crate::seal::SealedSecret;
use crate::store::leases::{Lease, Leases};
use crate::store::{DeleteOutcome, DeviceStore};
use crate::throttle::ThrottleState;
use crate::trusted_device::TrustedDeviceRecord;
use crate::webauthn::{CeremonyKind, CeremonyRecord, WebAuthnUse};

/// A [`DeviceStore`] on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    /// Everything but the verification path.
    pool: PgPool,
    /// The verification path: reading a user's methods and counter, and settling the attempt.
    leases: Arc<Leases<PgConnection>>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:pass@host/db`, or `postgres:///db?host=/socket/dir`)
    /// with a pool of up to 10 connections. Does not migrate: call [`migrate`](Self::migrate)
    /// once at deployment or start-up.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if it cannot connect, [`StoreError::SchemaTooNew`] if a newer
    /// version of this crate migrated the database.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, 10).await
    }

    /// As [`connect`](Self::connect), with up to `max_connections` connections for
    /// verifications (opened as needed and reused as they are, without sqlx's ping per use) and
    /// a quarter as many, at least one, for everything else (enrollment, management,
    /// WebAuthn, migrations).
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect), and [`StoreError::Backend`] for a malformed URL.
    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(StoreError::backend)?;
        let max_connections = max_connections.max(1);
        let leases = Arc::new(Leases::new(
            options.clone(),
            usize::try_from(max_connections).unwrap_or(usize::MAX),
        ));
        let pool = PgPoolOptions::new()
            .max_connections((max_connections / 4).max(1))
            // No ping before each use: it is a round trip per store call (a third of a sign-in's).
            // sqlx still pings a connection when it goes back to the pool, off the request path,
            // and a connection that died since is one failed call (a `StoreError`, never a
            // "rejected"), after which the pool replaces it.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(StoreError::backend)?;
        Self { pool, leases }.check_schema().await
    }

    async fn lease(&self) -> Result<Lease<'_, PgConnection>, StoreError> {
        self.leases.get().await
    }

    async fn close_leases(&self) {
        self.leases.close().await;
    }
}

/// `Some(1)` when the version table exists (in the current search path).
const SCHEMA_TABLE_EXISTS: &str = "SELECT 1::BIGINT FROM pg_catalog.pg_tables \
     WHERE tablename = 'mfa_schema_version' AND schemaname = ANY (current_schemas(false))";

const DDL_V1: &[&str] = &[
    "CREATE TABLE mfa_devices (
        id BYTEA PRIMARY KEY,
        user_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        last_used_at BIGINT,
        confirmed BOOLEAN NOT NULL,
        totp_algorithm TEXT,
        totp_digits BIGINT,
        totp_period BIGINT,
        totp_secret BYTEA,
        totp_last_step BIGINT,
        codes_salt BYTEA,
        codes_length BIGINT,
        credential_id BYTEA UNIQUE,
        user_handle BYTEA,
        credential BYTEA,
        sign_count BIGINT,
        backup_eligible BOOLEAN,
        backup_state BOOLEAN,
        discoverable BOOLEAN,
        user_verified BOOLEAN
    )",
    "CREATE INDEX mfa_devices_by_user ON mfa_devices (user_id, created_at, id)",
    "CREATE TABLE mfa_backup_codes (
        device_id BYTEA NOT NULL REFERENCES mfa_devices (id) ON DELETE CASCADE,
        slot BIGINT NOT NULL,
        hash BYTEA NOT NULL,
        used BOOLEAN NOT NULL,
        PRIMARY KEY (device_id, slot)
    )",
    "CREATE TABLE mfa_throttles (
        user_id TEXT NOT NULL,
        factor TEXT NOT NULL,
        failures BIGINT NOT NULL,
        last_failure_at BIGINT,
        PRIMARY KEY (user_id, factor)
    )",
    "CREATE TABLE mfa_ceremonies (
        id BYTEA PRIMARY KEY,
        user_id TEXT,
        kind TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        state BYTEA NOT NULL
    )",
    "CREATE INDEX mfa_ceremonies_by_expiry ON mfa_ceremonies (expires_at)",
];

const DDL_V2: &[&str] = &[
    "CREATE TABLE mfa_trusted_devices (
        id BYTEA PRIMARY KEY,
        user_id TEXT NOT NULL,
        key_id TEXT NOT NULL,
        hash BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        last_used_at BIGINT
    )",
    "CREATE INDEX mfa_trusted_devices_by_user ON mfa_trusted_devices (user_id, created_at, id)",
];

/// Spends an unused backup code and stamps its set's last use in one statement (so one round
/// trip and one commit), provided the user's backup-code counter holds no failures: the data-
/// modifying CTE marks the slot, and the outer update runs only for the row it returned.
/// Binds: set id, slot, user, kind, factor, now.
const CONSUME_BACKUP_CODE: &str = "WITH spent AS (\
     UPDATE mfa_backup_codes SET used = TRUE WHERE device_id = $1 AND slot = $2 AND used = FALSE \
     AND EXISTS (SELECT 1 FROM mfa_devices d WHERE d.id = $1 AND d.user_id = $3 AND d.kind = $4) \
     AND NOT EXISTS (SELECT 1 FROM mfa_throttles t WHERE t.user_id = $3 AND t.factor = $5 \
     AND (t.failures <> 0 OR t.last_failure_at IS NOT NULL)) \
     RETURNING device_id) \
     UPDATE mfa_devices SET last_used_at = $6 WHERE id IN (SELECT device_id FROM spent)";

crate::store::sql::sql_device_store!(
    PostgresStore,
    sqlx::Postgres,
    begin = "BEGIN",
    lock = Some("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"),
    consume_statement = Some(CONSUME_BACKUP_CODE),
    migrations = &[DDL_V1, DDL_V2]
);

#[cfg(test)]
mod tests {
    use super::{DDL_V1, DDL_V2};

    /// `benches/pgbench/decompose.sh` loads this copy of the schema into a bare cluster: it must
    /// stay the migrations' schema, statement for statement.
    #[test]
    fn the_pgbench_schema_is_the_migrated_schema() {
        let copy = include_str!("../../benches/pgbench/schema.sql");
        for statement in DDL_V1.iter().chain(DDL_V2) {
            assert!(copy.contains(statement), "benches/pgbench/schema.sql lacks {statement}");
        }
    }
}
