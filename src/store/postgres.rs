//! [`PostgresStore`] (feature `postgres`): many app servers, one database.
//!
//! The schema is documented in [the `sql` module](super::sql). Every state-changing operation is one
//! conditional statement or one transaction that is correct at PostgreSQL's default READ
//! COMMITTED isolation: settling a code is one conditional update of the user's state row;
//! every change of a user's devices locks that row (`FOR UPDATE`) in its transaction, so
//! changes and settlements of one user take turns; migrating takes a transaction-scoped
//! advisory lock, so concurrent migrations run one after the other.

use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::clock::UnixTime;
use crate::error::StoreError;
use crate::id::{CeremonyId, DeviceId, DeviceName, RememberedBrowserId, UserId};
use crate::kind::Factor;
use crate::remembered_browser::RememberedBrowserRecord;
use crate::seal::SealedSecret;
use crate::store::leases::{Lease, Leases};
use crate::store::{
    AdminStore, BrowserStore, CeremonyStore, DeleteOutcome, DeviceStore, EnrollmentStore, Settle, Settlement,
};
use crate::store::{DeviceData, DeviceRecord};
use crate::throttle::ThrottleState;
use crate::webauthn::{CeremonyKind, CeremonyRecord, WebAuthnUse};

/// A [`Store`](crate::Store) on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    /// Everything but the verification path.
    pool: PgPool,
    /// The verification path: reading a user's devices and counter, and settling the attempt.
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
        let options = index_only(options);
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

    /// A store on the application's own pool, for everything but verifications, which take
    /// up to as many connections of their own, opened with the pool's connection options (see
    /// [`connect_with`](Self::connect_with)). Does not migrate: call
    /// [`migrate`](Self::migrate) once at deployment or start-up.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if the database cannot be reached, [`StoreError::SchemaTooNew`]
    /// if a newer version of this crate migrated it.
    pub async fn from_pool(pool: PgPool) -> Result<Self, StoreError> {
        let options = index_only((*pool.connect_options()).clone());
        let max_connections = pool.options().get_max_connections().max(1);
        let leases = Arc::new(Leases::new(
            options,
            usize::try_from(max_connections).unwrap_or(usize::MAX),
        ));
        Self { pool, leases }.check_schema().await
    }
}

/// `options` with the session setting this store's own connections run with.
///
/// Every statement of this store is an index lookup. A connection keeps its plans (prepared
/// statements): planned while a table was small or freshly analysed empty (the counters of a
/// new deployment), they would scan it whole for as long as the connection lives. This
/// setting keeps them on the indexes; it changes nothing else. A pool the application passes
/// in ([`PostgresStore::from_pool`]) is left as it is: only the verification path's
/// connections, which the store opens, get it.
fn index_only(options: PgConnectOptions) -> PgConnectOptions {
    options.options([("enable_seqscan", "off")])
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

/// Schema v3: the failure budget beside the consecutive-failure counter, and the settlement of a
/// code attempt as one function, so that it is one statement (one round trip, one commit)
/// whose work does not depend on whether the code matched until a hit is accepted.
const DDL_V3: &[&str] = &[
    "ALTER TABLE mfa_throttles ADD COLUMN budget_until BIGINT",
    // Backup-code hashes keyed by a key of the keyring (sets without one are v2 sets).
    "ALTER TABLE mfa_devices ADD COLUMN codes_key_id TEXT",
    // Remember-this-browser hashes are now bound to the token id, user and expiry: v2 tokens
    // cannot be re-hashed (the token is not stored), so they end here and users pass their
    // second factor once more.
    "DELETE FROM mfa_trusted_devices",
    "CREATE OR REPLACE FUNCTION mfa_settle_attempt(
        p_user TEXT, p_factor TEXT, p_kind TEXT, p_device BYTEA, p_slot BIGINT, p_step BIGINT, p_now BIGINT,
        a_failures BIGINT, a_last BIGINT, a_budget BIGINT,
        h_failures BIGINT, h_last BIGINT, h_budget BIGINT,
        m_failures BIGINT, m_last BIGINT, m_budget BIGINT
    ) RETURNS TABLE (outcome TEXT, failures BIGINT, last_failure_at BIGINT, budget_until BIGINT)
    LANGUAGE plpgsql AS $fn$
    DECLARE
        cur RECORD;
        stored BOOLEAN;
        hit BOOLEAN := FALSE;
        clear_admitted BOOLEAN := a_failures = 0 AND a_last IS NULL AND a_budget IS NULL;
        clear_on_hit BOOLEAN := h_failures = 0 AND h_last IS NULL AND h_budget IS NULL;
    BEGIN
        -- The counter row, locked: the comparison below and the writes after it are one atomic
        -- step. A clear counter has no row (a success deletes it), so most users have none.
        SELECT t.failures, t.last_failure_at, t.budget_until INTO cur FROM mfa_throttles t
            WHERE t.user_id = p_user AND t.factor = p_factor FOR UPDATE;
        stored := FOUND;
        IF NOT stored THEN
            -- No row to lock: settlements of a clear counter take turns on a transaction lock
            -- of their own, hit or miss, and look again once they have it (a row another
            -- request created meanwhile is committed by then). Without it a hit could be
            -- accepted after failures that were charged while it ran.
            PERFORM pg_advisory_xact_lock(hashtextextended('multifactor/counter/' || p_factor || '/' || p_user, 0));
            SELECT t.failures, t.last_failure_at, t.budget_until INTO cur FROM mfa_throttles t
                WHERE t.user_id = p_user AND t.factor = p_factor FOR UPDATE;
            stored := FOUND;
        END IF;
        IF NOT stored AND NOT (clear_admitted AND clear_on_hit) THEN
            -- Anything but a clear counter that a success leaves clear: lock a row to write.
            INSERT INTO mfa_throttles AS t (user_id, factor, failures, last_failure_at, budget_until)
                VALUES (p_user, p_factor, 0, NULL, NULL) ON CONFLICT (user_id, factor) DO NOTHING;
            SELECT t.failures, t.last_failure_at, t.budget_until INTO cur FROM mfa_throttles t
                WHERE t.user_id = p_user AND t.factor = p_factor FOR UPDATE;
            IF NOT FOUND THEN
                -- Created and cleared again meanwhile: the caller settles again.
                RETURN QUERY SELECT 'moved'::TEXT, 0::BIGINT, NULL::BIGINT, NULL::BIGINT;
                RETURN;
            END IF;
            stored := TRUE;
        END IF;
        IF stored AND (cur.failures IS DISTINCT FROM a_failures OR cur.last_failure_at IS DISTINCT FROM a_last
            OR cur.budget_until IS DISTINCT FROM a_budget) THEN
            RETURN QUERY SELECT 'moved'::TEXT, cur.failures, cur.last_failure_at, cur.budget_until;
            RETURN;
        END IF;
        -- The hit, with the same statements for a miss (whose device is null and matches nothing).
        IF p_kind = 'backup_codes' THEN
            -- The set's row first, as deleting or replacing a set does (its codes go by cascade):
            -- the same lock order, so the two never wait for each other in a circle.
            PERFORM 1 FROM mfa_devices d WHERE d.id = p_device AND d.user_id = p_user AND d.kind = p_kind
                FOR NO KEY UPDATE;
            UPDATE mfa_backup_codes c SET used = TRUE WHERE c.device_id = p_device AND c.slot = p_slot
                AND c.used = FALSE AND EXISTS (SELECT 1 FROM mfa_devices d
                WHERE d.id = p_device AND d.user_id = p_user AND d.kind = p_kind);
            hit := FOUND;
            UPDATE mfa_devices d SET last_used_at = p_now WHERE hit AND d.id = p_device;
        ELSE
            UPDATE mfa_devices d SET totp_last_step = p_step, confirmed = TRUE, last_used_at = p_now
                WHERE d.id = p_device AND d.user_id = p_user AND d.kind = p_kind AND p_step IS NOT NULL
                AND (d.totp_last_step IS NULL OR d.totp_last_step < p_step);
            hit := FOUND;
        END IF;
        IF hit THEN
            IF NOT stored THEN
                -- A clear counter that stays clear: nothing to write. (A failure counted
                -- meanwhile by another request was counted after this success.)
                NULL;
            ELSIF clear_on_hit THEN
                DELETE FROM mfa_throttles t WHERE t.user_id = p_user AND t.factor = p_factor;
            ELSIF h_failures IS DISTINCT FROM cur.failures OR h_last IS DISTINCT FROM cur.last_failure_at
                OR h_budget IS DISTINCT FROM cur.budget_until THEN
                UPDATE mfa_throttles t SET failures = h_failures, last_failure_at = h_last, budget_until = h_budget
                    WHERE t.user_id = p_user AND t.factor = p_factor;
            END IF;
            RETURN QUERY SELECT 'accepted'::TEXT, h_failures, h_last, h_budget;
        ELSIF NOT stored THEN
            -- A miss against a clear counter: the charge creates the row, unless a concurrent
            -- request created it first (then the counter moved).
            INSERT INTO mfa_throttles AS t (user_id, factor, failures, last_failure_at, budget_until)
                VALUES (p_user, p_factor, m_failures, m_last, m_budget) ON CONFLICT (user_id, factor) DO NOTHING;
            IF FOUND THEN
                RETURN QUERY SELECT 'charged'::TEXT, m_failures, m_last, m_budget;
                RETURN;
            END IF;
            SELECT t.failures, t.last_failure_at, t.budget_until INTO cur FROM mfa_throttles t
                WHERE t.user_id = p_user AND t.factor = p_factor;
            IF FOUND THEN
                RETURN QUERY SELECT 'moved'::TEXT, cur.failures, cur.last_failure_at, cur.budget_until;
            ELSE
                -- Created and cleared again meanwhile: clear, so it moved and came back (the
                -- caller settles again).
                RETURN QUERY SELECT 'moved'::TEXT, 0::BIGINT, NULL::BIGINT, NULL::BIGINT;
            END IF;
        ELSE
            UPDATE mfa_throttles t SET failures = m_failures, last_failure_at = m_last, budget_until = m_budget
                WHERE t.user_id = p_user AND t.factor = p_factor;
            RETURN QUERY SELECT 'charged'::TEXT, m_failures, m_last, m_budget;
        END IF;
    END
    $fn$",
];

/// Schema v4: a backup-code set's codes packed into its row (the hashes end to end and a mask
/// of the unused ones), so reading and settling a set costs the same for 1 or 32 codes; and
/// the settlement checks the digest of the devices the code was evaluated against.
const DDL_V4: &[&str] = &[
    // Packing reads a set's codes in slot order and marks unused ones by slot number: that is
    // one reading only while the slots are 0..n-1 and the hashes 32 bytes. Anything else is
    // refused (the whole migration rolls back), never misread.
    "DO $guard$ BEGIN
        IF EXISTS (SELECT 1 FROM mfa_backup_codes GROUP BY device_id
            HAVING MIN(slot) <> 0 OR MAX(slot) <> COUNT(*) - 1 OR MAX(slot) > 62
                OR MAX(length(hash)) <> 32 OR MIN(length(hash)) <> 32) THEN
            RAISE EXCEPTION 'schema v4: a backup-code set whose slots are not 0..n-1 with 32-byte hashes cannot be packed';
        END IF;
    END $guard$",
    "ALTER TABLE mfa_devices ADD COLUMN codes_hashes BYTEA",
    "ALTER TABLE mfa_devices ADD COLUMN codes_unused BIGINT",
    "UPDATE mfa_devices d SET
        codes_hashes = coalesce((SELECT string_agg(c.hash, ''::bytea ORDER BY c.slot) FROM mfa_backup_codes c
            WHERE c.device_id = d.id), ''::bytea),
        codes_unused = coalesce((SELECT bit_or(CASE WHEN c.used THEN 0::bigint ELSE 1::bigint << c.slot::int END)
            FROM mfa_backup_codes c WHERE c.device_id = d.id), 0)
        WHERE d.kind = 'backup_codes'",
    "DROP TABLE mfa_backup_codes",
    "DROP FUNCTION IF EXISTS mfa_settle_attempt(TEXT, TEXT, TEXT, BYTEA, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, \
     BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT)",
    "CREATE OR REPLACE FUNCTION mfa_settle_attempt(
        p_user TEXT, p_factor TEXT, p_kind TEXT, p_device BYTEA, p_mask BIGINT, p_step BIGINT, p_now BIGINT,
        a_failures BIGINT, a_last BIGINT, a_budget BIGINT,
        h_failures BIGINT, h_last BIGINT, h_budget BIGINT,
        m_failures BIGINT, m_last BIGINT, m_budget BIGINT, p_devices BYTEA
    ) RETURNS TABLE (outcome TEXT, failures BIGINT, last_failure_at BIGINT, budget_until BIGINT)
    LANGUAGE plpgsql AS $fn$
    DECLARE
        cur RECORD;
        stored BOOLEAN;
        methods BYTEA;
        target TID;
        hit BOOLEAN := FALSE;
        clear_admitted BOOLEAN := a_failures = 0 AND a_last IS NULL AND a_budget IS NULL;
        clear_on_hit BOOLEAN := h_failures = 0 AND h_last IS NULL AND h_budget IS NULL;
    BEGIN
        -- The counter row, locked: the comparison below and the writes after it are one atomic
        -- step. A clear counter has no row (a success deletes it), so most users have none.
        SELECT t.failures, t.last_failure_at, t.budget_until INTO cur FROM mfa_throttles t
            WHERE t.user_id = p_user AND t.factor = p_factor FOR UPDATE;
        stored := FOUND;
        IF NOT stored THEN
            -- No row to lock: settlements of a clear counter take turns on a transaction lock
            -- of their own, hit or miss, and look again once they have it (a row another
            -- request created meanwhile is committed by then). Without it a hit could be
            -- accepted after failures that were charged while it ran.
            PERFORM pg_advisory_xact_lock(hashtextextended('multifactor/counter/' || p_factor || '/' || p_user, 0));
            SELECT t.failures, t.last_failure_at, t.budget_until INTO cur FROM mfa_throttles t
                WHERE t.user_id = p_user AND t.factor = p_factor FOR UPDATE;
            stored := FOUND;
        END IF;
        IF NOT stored AND NOT (clear_admitted AND clear_on_hit) THEN
            -- Anything but a clear counter that a success leaves clear: lock a row to write.
            INSERT INTO mfa_throttles AS t (user_id, factor, failures, last_failure_at, budget_until)
                VALUES (p_user, p_factor, 0, NULL, NULL) ON CONFLICT (user_id, factor) DO NOTHING;
            SELECT t.failures, t.last_failure_at, t.budget_until INTO cur FROM mfa_throttles t
                WHERE t.user_id = p_user AND t.factor = p_factor FOR UPDATE;
            IF NOT FOUND THEN
                -- Created and cleared again meanwhile: the caller settles again.
                RETURN QUERY SELECT 'moved'::TEXT, 0::BIGINT, NULL::BIGINT, NULL::BIGINT;
                RETURN;
            END IF;
            stored := TRUE;
        END IF;
        IF stored AND (cur.failures IS DISTINCT FROM a_failures OR cur.last_failure_at IS DISTINCT FROM a_last
            OR cur.budget_until IS DISTINCT FROM a_budget) THEN
            RETURN QUERY SELECT 'moved'::TEXT, cur.failures, cur.last_failure_at, cur.budget_until;
            RETURN;
        END IF;
        IF p_devices IS NOT NULL THEN
            -- The methods the code was evaluated against must still be the user's (the digest
            -- of DevicesDigest::of, computed here the same way), hit or miss. The same scan of
            -- the user's rows finds the hit's row, so the hit below needs no second index
            -- descent (a miss has no device: its target is null and matches nothing).
            SELECT sha256(coalesce(string_agg(d.id || CASE WHEN d.kind = 'backup_codes'
                THEN int8send(d.codes_unused) ELSE ''::bytea END, ''::bytea ORDER BY d.created_at, d.id)
                FILTER (WHERE d.confirmed), ''::bytea)),
                (array_agg(d.ctid) FILTER (WHERE d.id = p_device))[1]
                INTO methods, target FROM mfa_devices d WHERE d.user_id = p_user AND d.kind = p_kind;
            IF methods IS DISTINCT FROM p_devices THEN
                RETURN QUERY SELECT 'stale'::TEXT, 0::BIGINT, NULL::BIGINT, NULL::BIGINT;
                RETURN;
            END IF;
        END IF;
        -- The hit, with the same statements for a miss (whose device is null and matches nothing).
        -- First by the row the digest scan found, then (if that row moved meanwhile, or there was
        -- no scan) by id: the same statements for every attempt that is not accepted.
        IF p_kind = 'backup_codes' THEN
            -- The set's codes are packed in its row: spend the code's bit if it is still set.
            UPDATE mfa_devices d SET codes_unused = d.codes_unused & ~p_mask, last_used_at = p_now
                WHERE d.ctid = target AND d.id = p_device AND d.user_id = p_user AND d.kind = p_kind
                AND (d.codes_unused & p_mask) <> 0;
            hit := FOUND;
            IF NOT hit THEN
                UPDATE mfa_devices d SET codes_unused = d.codes_unused & ~p_mask, last_used_at = p_now
                    WHERE d.id = p_device AND d.user_id = p_user AND d.kind = p_kind AND (d.codes_unused & p_mask) <> 0;
                hit := FOUND;
            END IF;
        ELSE
            UPDATE mfa_devices d SET totp_last_step = p_step, confirmed = TRUE, last_used_at = p_now
                WHERE d.ctid = target AND d.id = p_device AND d.user_id = p_user AND d.kind = p_kind
                AND p_step IS NOT NULL AND (d.totp_last_step IS NULL OR d.totp_last_step < p_step);
            hit := FOUND;
            IF NOT hit THEN
                UPDATE mfa_devices d SET totp_last_step = p_step, confirmed = TRUE, last_used_at = p_now
                    WHERE d.id = p_device AND d.user_id = p_user AND d.kind = p_kind AND p_step IS NOT NULL
                    AND (d.totp_last_step IS NULL OR d.totp_last_step < p_step);
                hit := FOUND;
            END IF;
        END IF;
        IF hit THEN
            IF NOT stored THEN
                -- A clear counter that stays clear: nothing to write. (A failure counted
                -- meanwhile by another request was counted after this success.)
                NULL;
            ELSIF clear_on_hit THEN
                DELETE FROM mfa_throttles t WHERE t.user_id = p_user AND t.factor = p_factor;
            ELSIF h_failures IS DISTINCT FROM cur.failures OR h_last IS DISTINCT FROM cur.last_failure_at
                OR h_budget IS DISTINCT FROM cur.budget_until THEN
                UPDATE mfa_throttles t SET failures = h_failures, last_failure_at = h_last, budget_until = h_budget
                    WHERE t.user_id = p_user AND t.factor = p_factor;
            END IF;
            RETURN QUERY SELECT 'accepted'::TEXT, h_failures, h_last, h_budget;
        ELSIF NOT stored THEN
            -- A miss against a clear counter: the charge creates the row, unless a concurrent
            -- request created it first (then the counter moved).
            INSERT INTO mfa_throttles AS t (user_id, factor, failures, last_failure_at, budget_until)
                VALUES (p_user, p_factor, m_failures, m_last, m_budget) ON CONFLICT (user_id, factor) DO NOTHING;
            IF FOUND THEN
                RETURN QUERY SELECT 'charged'::TEXT, m_failures, m_last, m_budget;
                RETURN;
            END IF;
            SELECT t.failures, t.last_failure_at, t.budget_until INTO cur FROM mfa_throttles t
                WHERE t.user_id = p_user AND t.factor = p_factor;
            IF FOUND THEN
                RETURN QUERY SELECT 'moved'::TEXT, cur.failures, cur.last_failure_at, cur.budget_until;
            ELSE
                -- Created and cleared again meanwhile: clear, so it moved and came back (the
                -- caller settles again).
                RETURN QUERY SELECT 'moved'::TEXT, 0::BIGINT, NULL::BIGINT, NULL::BIGINT;
            END IF;
        ELSE
            UPDATE mfa_throttles t SET failures = m_failures, last_failure_at = m_last, budget_until = m_budget
                WHERE t.user_id = p_user AND t.factor = p_factor;
            RETURN QUERY SELECT 'charged'::TEXT, m_failures, m_last, m_budget;
        END IF;
    END
    $fn$",
];

/// Schema v5: the fingerprint of a counter's last charged wrong code (the same wrong code
/// twice is one failure), known browsers beside remembered ones (`skips_second_factor`: every
/// record so far is a remembered browser), counters of known browsers (their keys in
/// `mfa_throttles.factor` name the browser: `totp@<id>`), a settlement that checks the
/// known browser's record before it touches that browser's counter, and a check value per
/// sealing key id.
const DDL_V5: &[&str] = &[
    "ALTER TABLE mfa_throttles ADD COLUMN last_miss BIGINT",
    "ALTER TABLE mfa_trusted_devices ADD COLUMN skips_second_factor BOOLEAN NOT NULL DEFAULT TRUE",
    "CREATE TABLE mfa_keys (key_id TEXT PRIMARY KEY, check_value BYTEA NOT NULL)",
    "DROP FUNCTION IF EXISTS mfa_settle_attempt(TEXT, TEXT, TEXT, BYTEA, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, \
     BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BYTEA)",
    "CREATE OR REPLACE FUNCTION mfa_settle_attempt(
        p_user TEXT, p_counter TEXT, p_kind TEXT, p_device BYTEA, p_mask BIGINT, p_step BIGINT, p_now BIGINT,
        a_failures BIGINT, a_last BIGINT, a_budget BIGINT, a_miss BIGINT,
        h_failures BIGINT, h_last BIGINT, h_budget BIGINT, h_miss BIGINT,
        m_failures BIGINT, m_last BIGINT, m_budget BIGINT, m_miss BIGINT, p_devices BYTEA, p_browser BYTEA
    ) RETURNS TABLE (outcome TEXT, failures BIGINT, last_failure_at BIGINT, budget_until BIGINT, last_miss BIGINT)
    LANGUAGE plpgsql AS $fn$
    DECLARE
        cur RECORD;
        stored BOOLEAN;
        methods BYTEA;
        target TID;
        hit BOOLEAN := FALSE;
        clear_admitted BOOLEAN := a_failures = 0 AND a_last IS NULL AND a_budget IS NULL AND a_miss IS NULL;
        clear_on_hit BOOLEAN := h_failures = 0 AND h_last IS NULL AND h_budget IS NULL AND h_miss IS NULL;
    BEGIN
        IF p_browser IS NOT NULL THEN
            -- A known browser's own counter counts only while the user still has the browser
            -- (revoked, replaced or expired: the caller reads again and finds it unknown).
            -- Deleting the record takes its key-share lock away first, then deletes the counter.
            PERFORM 1 FROM mfa_trusted_devices b WHERE b.id = p_browser AND b.user_id = p_user
                AND b.expires_at > p_now FOR KEY SHARE;
            IF NOT FOUND THEN
                RETURN QUERY SELECT 'stale'::TEXT, 0::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT;
                RETURN;
            END IF;
        END IF;
        -- The counter row, locked: the comparison below and the writes after it are one atomic
        -- step. A clear counter has no row (a success deletes it), so most users have none.
        SELECT t.failures, t.last_failure_at, t.budget_until, t.last_miss INTO cur FROM mfa_throttles t
            WHERE t.user_id = p_user AND t.factor = p_counter FOR UPDATE;
        stored := FOUND;
        IF NOT stored THEN
            -- No row to lock: settlements of a clear counter take turns on a transaction lock
            -- of their own, hit or miss, and look again once they have it.
            PERFORM pg_advisory_xact_lock(hashtextextended('multifactor/counter/' || p_counter || '/' || p_user, 0));
            SELECT t.failures, t.last_failure_at, t.budget_until, t.last_miss INTO cur FROM mfa_throttles t
                WHERE t.user_id = p_user AND t.factor = p_counter FOR UPDATE;
            stored := FOUND;
        END IF;
        IF NOT stored AND NOT (clear_admitted AND clear_on_hit) THEN
            -- Anything but a clear counter that a success leaves clear: lock a row to write.
            INSERT INTO mfa_throttles AS t (user_id, factor, failures, last_failure_at, budget_until, last_miss)
                VALUES (p_user, p_counter, 0, NULL, NULL, NULL) ON CONFLICT (user_id, factor) DO NOTHING;
            SELECT t.failures, t.last_failure_at, t.budget_until, t.last_miss INTO cur FROM mfa_throttles t
                WHERE t.user_id = p_user AND t.factor = p_counter FOR UPDATE;
            IF NOT FOUND THEN
                RETURN QUERY SELECT 'moved'::TEXT, 0::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT;
                RETURN;
            END IF;
            stored := TRUE;
        END IF;
        IF stored AND (cur.failures IS DISTINCT FROM a_failures OR cur.last_failure_at IS DISTINCT FROM a_last
            OR cur.budget_until IS DISTINCT FROM a_budget OR cur.last_miss IS DISTINCT FROM a_miss) THEN
            RETURN QUERY SELECT 'moved'::TEXT, cur.failures, cur.last_failure_at, cur.budget_until, cur.last_miss;
            RETURN;
        END IF;
        IF p_devices IS NOT NULL THEN
            -- The devices the code was evaluated against must still be the user's (the digest
            -- of DevicesDigest::of, computed here the same way), hit or miss; the same scan
            -- finds the hit's row.
            SELECT sha256(coalesce(string_agg(d.id || CASE WHEN d.kind = 'backup_codes'
                THEN int8send(d.codes_unused) ELSE ''::bytea END, ''::bytea ORDER BY d.created_at, d.id)
                FILTER (WHERE d.confirmed), ''::bytea)),
                (array_agg(d.ctid) FILTER (WHERE d.id = p_device))[1]
                INTO methods, target FROM mfa_devices d WHERE d.user_id = p_user AND d.kind = p_kind;
            IF methods IS DISTINCT FROM p_devices THEN
                RETURN QUERY SELECT 'stale'::TEXT, 0::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT;
                RETURN;
            END IF;
        END IF;
        -- The hit, with the same statements for a miss (whose device is null and matches nothing).
        IF p_kind = 'backup_codes' THEN
            UPDATE mfa_devices d SET codes_unused = d.codes_unused & ~p_mask, last_used_at = p_now
                WHERE d.ctid = target AND d.id = p_device AND d.user_id = p_user AND d.kind = p_kind
                AND (d.codes_unused & p_mask) <> 0;
            hit := FOUND;
            IF NOT hit THEN
                UPDATE mfa_devices d SET codes_unused = d.codes_unused & ~p_mask, last_used_at = p_now
                    WHERE d.id = p_device AND d.user_id = p_user AND d.kind = p_kind AND (d.codes_unused & p_mask) <> 0;
                hit := FOUND;
            END IF;
        ELSE
            UPDATE mfa_devices d SET totp_last_step = p_step, confirmed = TRUE, last_used_at = p_now
                WHERE d.ctid = target AND d.id = p_device AND d.user_id = p_user AND d.kind = p_kind
                AND p_step IS NOT NULL AND (d.totp_last_step IS NULL OR d.totp_last_step < p_step);
            hit := FOUND;
            IF NOT hit THEN
                UPDATE mfa_devices d SET totp_last_step = p_step, confirmed = TRUE, last_used_at = p_now
                    WHERE d.id = p_device AND d.user_id = p_user AND d.kind = p_kind AND p_step IS NOT NULL
                    AND (d.totp_last_step IS NULL OR d.totp_last_step < p_step);
                hit := FOUND;
            END IF;
        END IF;
        IF hit THEN
            IF NOT stored THEN
                NULL;
            ELSIF clear_on_hit THEN
                DELETE FROM mfa_throttles t WHERE t.user_id = p_user AND t.factor = p_counter;
            ELSIF h_failures IS DISTINCT FROM cur.failures OR h_last IS DISTINCT FROM cur.last_failure_at
                OR h_budget IS DISTINCT FROM cur.budget_until OR h_miss IS DISTINCT FROM cur.last_miss THEN
                UPDATE mfa_throttles t SET failures = h_failures, last_failure_at = h_last, budget_until = h_budget,
                    last_miss = h_miss WHERE t.user_id = p_user AND t.factor = p_counter;
            END IF;
            RETURN QUERY SELECT 'accepted'::TEXT, h_failures, h_last, h_budget, h_miss;
        ELSIF NOT stored THEN
            -- A miss against a clear counter: the charge creates the row, unless a concurrent
            -- request created it first (then the counter moved).
            INSERT INTO mfa_throttles AS t (user_id, factor, failures, last_failure_at, budget_until, last_miss)
                VALUES (p_user, p_counter, m_failures, m_last, m_budget, m_miss) ON CONFLICT (user_id, factor) DO NOTHING;
            IF FOUND THEN
                RETURN QUERY SELECT 'charged'::TEXT, m_failures, m_last, m_budget, m_miss;
                RETURN;
            END IF;
            SELECT t.failures, t.last_failure_at, t.budget_until, t.last_miss INTO cur FROM mfa_throttles t
                WHERE t.user_id = p_user AND t.factor = p_counter;
            IF FOUND THEN
                RETURN QUERY SELECT 'moved'::TEXT, cur.failures, cur.last_failure_at, cur.budget_until, cur.last_miss;
            ELSE
                RETURN QUERY SELECT 'moved'::TEXT, 0::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT;
            END IF;
        ELSE
            UPDATE mfa_throttles t SET failures = m_failures, last_failure_at = m_last, budget_until = m_budget,
                last_miss = m_miss WHERE t.user_id = p_user AND t.factor = p_counter;
            RETURN QUERY SELECT 'charged'::TEXT, m_failures, m_last, m_budget, m_miss;
        END IF;
    END
    $fn$",
];

/// Schema v6: a keyed fingerprint of each TOTP secret, unique per user, so the store refuses a
/// second device with the same secret in the same step as the insert (devices stored before
/// have none, and never conflict).
const DDL_V6: &[&str] = &[
    "ALTER TABLE mfa_devices ADD COLUMN totp_fingerprint BYTEA",
    "CREATE UNIQUE INDEX mfa_devices_totp_fingerprint ON mfa_devices (user_id, totp_fingerprint)",
];

/// Schema v7: each user's enrollment deadline, stored the first time a required enrollment
/// is asked about, and changed only by an administrator.
const DDL_V7: &[&str] =
    &["CREATE TABLE mfa_enrollment_deadlines (user_id TEXT PRIMARY KEY NOT NULL, deadline BIGINT NOT NULL)"];

/// Schema v8: the enrollment prompts each user skipped, counted against a policy's allowance.
const DDL_V8: &[&str] = &["ALTER TABLE mfa_enrollment_deadlines ADD COLUMN skipped BIGINT NOT NULL DEFAULT 0"];

/// Schema v9: what another system hashed the codes of an imported set with (Keycloak's
/// recovery codes), or NULL.
const DDL_V9: &[&str] = &["ALTER TABLE mfa_devices ADD COLUMN codes_prehash TEXT"];

/// Schema v10: email addresses and phone numbers that receive codes, stored as one-time-code
/// devices (`kind` `totp`, the sealed destination, its fingerprint and the last accepted
/// serial in the TOTP columns) with their channel and the last code sent (its serial, keyed
/// hash, expiry and send count, encoded).
const DDL_V10: &[&str] = &[
    "ALTER TABLE mfa_devices ADD COLUMN oob_channel TEXT",
    "ALTER TABLE mfa_devices ADD COLUMN oob_issued BYTEA",
];

/// Schema v11: a counter moved out of `mfa_throttles` into its state-row column, encoded as
/// `sql::counter_bytes` encodes it (empty while clear).
macro_rules! move_counter {
    ($p:literal, $factor:literal) => {
        concat!(
            "UPDATE mfa_user_state s SET ",
            $p,
            "_counter = CASE WHEN t.failures = 0 AND t.last_failure_at IS NULL AND t.budget_until IS NULL \
             AND t.last_miss IS NULL THEN ''::BYTEA ELSE set_byte('\\x00'::BYTEA, 0, \
             CASE WHEN t.last_failure_at IS NULL THEN 0 ELSE 1 END | CASE WHEN t.budget_until IS NULL THEN 0 ELSE 2 END \
             | CASE WHEN t.last_miss IS NULL THEN 0 ELSE 4 END) || int8send(t.failures::BIGINT) \
             || int8send(coalesce(t.last_failure_at, 0)) || int8send(coalesce(t.budget_until, 0)) \
             || int8send(coalesce(t.last_miss, 0)) END FROM mfa_throttles t ",
            "WHERE t.user_id = s.user_id AND t.factor = '",
            $factor,
            "'"
        )
    };
}

/// Schema v11: what a verification settles, in one row per user (`mfa_user_state`): the
/// devices version, the two code factors' counters for unknown browsers, each one-time-code
/// device's last accepted step and last use, and the backup-code set's unused codes and last
/// use. Settling is then one conditional update of that row, with no lock of its own; every
/// device change increments the version in the same transaction. The counters move out of
/// `mfa_throttles` (which keeps WebAuthn's and the known browsers'), the steps and masks out
/// of `mfa_devices`, and the settlement function goes.
const DDL_V11: &[&str] = &[
    "DO $guard$ BEGIN
        IF EXISTS (SELECT 1 FROM mfa_devices WHERE kind = 'backup_codes' GROUP BY user_id HAVING COUNT(*) > 1) THEN
            RAISE EXCEPTION 'schema v11: a user with two backup-code sets cannot keep both';
        END IF;
    END $guard$",
    // The 8-byte columns first and a 4-byte version (wrapping from 2,147,483,646 to 0), so
    // that no padding is stored; the key is never updated, so its index is packed full.
    "CREATE TABLE mfa_user_state (
        codes_unused BIGINT,
        codes_used_at BIGINT,
        version INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        hit BOOLEAN NOT NULL DEFAULT FALSE,
        codes_set BYTEA,
        totp_counter BYTEA NOT NULL DEFAULT ''::BYTEA,
        codes_counter BYTEA NOT NULL DEFAULT ''::BYTEA,
        totp_marks BYTEA NOT NULL DEFAULT ''::BYTEA,
        PRIMARY KEY (user_id) WITH (fillfactor = 100)
    )",
    "INSERT INTO mfa_user_state (user_id, version, totp_marks, codes_set, codes_unused, codes_used_at)
     SELECT d.user_id, 1,
        coalesce(string_agg(d.id
            || CASE WHEN d.totp_last_step IS NULL THEN int8send(0)
                WHEN d.totp_last_step = 9223372036854775807 THEN '\\x8000000000000000'::BYTEA
                ELSE int8send(d.totp_last_step + 1) END
            || CASE WHEN d.last_used_at IS NULL OR NOT d.confirmed THEN int8send(0)
                WHEN d.last_used_at = 9223372036854775807 THEN '\\x8000000000000000'::BYTEA
                ELSE int8send(d.last_used_at + 1) END, ''::BYTEA ORDER BY d.created_at, d.id)
            FILTER (WHERE d.kind = 'totp'), ''::BYTEA),
        (array_agg(d.id) FILTER (WHERE d.kind = 'backup_codes'))[1],
        (array_agg(d.codes_unused) FILTER (WHERE d.kind = 'backup_codes'))[1],
        (array_agg(d.last_used_at) FILTER (WHERE d.kind = 'backup_codes'))[1]
     FROM mfa_devices d GROUP BY d.user_id",
    "INSERT INTO mfa_user_state (user_id, version) SELECT DISTINCT t.user_id, 0 FROM mfa_throttles t
     WHERE t.factor IN ('totp', 'backup_codes') ON CONFLICT (user_id) DO NOTHING",
    move_counter!("totp", "totp"),
    move_counter!("codes", "backup_codes"),
    "DELETE FROM mfa_throttles WHERE factor IN ('totp', 'backup_codes')",
    "UPDATE mfa_devices SET last_used_at = NULL WHERE kind <> 'webauthn'",
    "ALTER TABLE mfa_devices DROP COLUMN totp_last_step, DROP COLUMN codes_unused",
    "DROP FUNCTION IF EXISTS mfa_settle_attempt(TEXT, TEXT, TEXT, BYTEA, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, \
     BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT, BYTEA, BYTEA)",
    // The unique indexes hold only the rows they constrain (a backup-code set has no
    // fingerprint, only a WebAuthn credential has a credential id): the bytes the state row
    // costs are paid back here.
    // One entry per user, not per device (PostgreSQL deduplicates equal keys; the few devices
    // of a user are sorted after the lookup).
    "DROP INDEX IF EXISTS mfa_devices_by_user",
    "CREATE INDEX mfa_devices_by_user ON mfa_devices (user_id)",
    "DROP INDEX IF EXISTS mfa_devices_totp_fingerprint",
    "CREATE UNIQUE INDEX mfa_devices_totp_fingerprint ON mfa_devices (user_id, totp_fingerprint) \
     WHERE totp_fingerprint IS NOT NULL",
    "ALTER TABLE mfa_devices DROP CONSTRAINT IF EXISTS mfa_devices_credential_id_key",
    "CREATE UNIQUE INDEX mfa_devices_credential_id ON mfa_devices (credential_id) WHERE credential_id IS NOT NULL",
];

/// Schema v12: the browser records' table named for what it holds (remembered and known
/// browsers), not devices.
const DDL_V12: &[&str] = &[
    "ALTER TABLE mfa_trusted_devices RENAME TO mfa_browsers",
    "ALTER INDEX mfa_trusted_devices_by_user RENAME TO mfa_browsers_by_user",
    "ALTER INDEX mfa_trusted_devices_pkey RENAME TO mfa_browsers_pkey",
];

/// Schema v13: the authenticator model's AAGUID in a column of its own, taken out of the
/// credential's JSON (where earlier versions kept it as a UUID string under
/// `multifactor_aaguid`).
const DDL_V13: &[&str] = &[
    "ALTER TABLE mfa_devices ADD COLUMN aaguid BYTEA",
    // The key is cut out of the text as it is, so that the rest of the JSON keeps its bytes.
    "UPDATE mfa_devices SET
         aaguid = decode(replace(substring(convert_from(credential, 'UTF8')
             FROM '\"multifactor_aaguid\":\"([0-9A-Fa-f-]{36})\"'), '-', ''), 'hex'),
         credential = convert_to(regexp_replace(convert_from(credential, 'UTF8'),
             ',\"multifactor_aaguid\":\"[^\"]*\"|\"multifactor_aaguid\":\"[^\"]*\",?', ''), 'UTF8')
     WHERE kind = 'webauthn' AND position('\"multifactor_aaguid\":\"' IN convert_from(credential, 'UTF8')) > 0",
];

/// Settles a TOTP attempt: see [`SqlBackend::SETTLE_TOTP`](crate::store::sql::SqlBackend).
///
/// Whether the step is a hit is computed once, in a sub-select fenced by `OFFSET 0` (the
/// device's entry `p`, then `h`), and the four columns are set from it as one row. Written as
/// four `CASE` expressions the test is repeated in each, and PostgreSQL builds every copy
/// again at each execution (profiled under pgbench, that form's executor start took 13 % of
/// the server's CPU against 7 % for pgbench's own update; the gain in throughput is within
/// this machine's run-to-run noise: see BENCHMARKS.md).
const SETTLE_TOTP: &str = "UPDATE mfa_user_state s SET (version, totp_marks, totp_counter, hit) = (
         SELECT (s.version + CASE WHEN x.h AND substring(s.totp_marks FROM x.p + 24 FOR 8) = '\\x0000000000000000'::BYTEA THEN 1 ELSE 0 END) % 2147483647,
             CASE WHEN x.h THEN overlay(s.totp_marks PLACING $4::BYTEA FROM x.p FOR 32) ELSE s.totp_marks END,
             CASE WHEN x.h THEN $7::BYTEA ELSE $8::BYTEA END,
             x.h
         FROM (SELECT y.p, coalesce(y.p % 32 = 1 AND substring(s.totp_marks FROM y.p + 16 FOR 8) < $3::BYTEA, FALSE) AS h
             FROM (SELECT position($2::BYTEA IN s.totp_marks) AS p OFFSET 0) y OFFSET 0) x)
     WHERE s.user_id = $1 AND ($5::BIGINT IS NULL OR s.version = $5::BIGINT) AND s.totp_counter = $6::BYTEA
     RETURNING s.hit";

/// Settles a backup code: see [`SqlBackend::SETTLE_CODES`](crate::store::sql::SqlBackend).
/// The hit is computed once, as in [`SETTLE_TOTP`].
const SETTLE_CODES: &str = "UPDATE mfa_user_state s SET (codes_unused, codes_used_at, codes_counter, hit) = (
         SELECT CASE WHEN x.h THEN s.codes_unused & ~$3::BIGINT ELSE s.codes_unused END,
             CASE WHEN x.h THEN $4::BIGINT ELSE s.codes_used_at END,
             CASE WHEN x.h THEN $7::BYTEA ELSE $8::BYTEA END,
             x.h
         FROM (SELECT coalesce(s.codes_set = $2::BYTEA AND (s.codes_unused & $3::BIGINT) <> 0, FALSE) AS h OFFSET 0) x)
     WHERE s.user_id = $1 AND ($5::BIGINT IS NULL OR s.version = $5::BIGINT) AND s.codes_counter = $6::BYTEA
     RETURNING s.hit";

impl crate::store::sql::SqlBackend for PostgresStore {
    type Db = sqlx::Postgres;
    /// The verification path's own connections (see [`PostgresStore::connect_with`]).
    type Lease<'a> = Lease<'a, PgConnection>;
    const BEGIN: &'static str = "BEGIN";
    const LOCK: Option<&'static str> = Some("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))");
    const SETTLE_TOTP: &'static str = SETTLE_TOTP;
    const SETTLE_CODES: &'static str = SETTLE_CODES;
    const LOCK_STATE: &'static str =
        "SELECT totp_marks, codes_set, codes_unused, codes_used_at FROM mfa_user_state WHERE user_id = $1 FOR UPDATE";
    // Deleting the record takes its key-share lock away first, then deletes the counters.
    const LIVE_BROWSER: &'static str = "SELECT 1 FROM mfa_browsers WHERE id = $1 AND user_id = $2 \
         AND expires_at > $3 FOR KEY SHARE";
    const SCHEMA_TABLE_EXISTS: &'static str = SCHEMA_TABLE_EXISTS;
    const MIGRATIONS: &'static [&'static [&'static str]] = &[
        DDL_V1, DDL_V2, DDL_V3, DDL_V4, DDL_V5, DDL_V6, DDL_V7, DDL_V8, DDL_V9, DDL_V10, DDL_V11, DDL_V12, DDL_V13,
    ];

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn lease(&self) -> Result<Lease<'_, PgConnection>, StoreError> {
        self.leases.get().await
    }

    fn release(lease: Lease<'_, PgConnection>) {
        lease.release();
    }

    async fn close_leases(&self) {
        self.leases.close().await;
    }
}

crate::store::sql::sql_device_store!(PostgresStore);

#[cfg(test)]
mod tests {
    use super::{SELECT_VERIFICATION_STATE, SETTLE_TOTP};
    use crate::store::sql::SqlBackend as _;

    /// A random user of `decompose.sh`'s, and their TOTP device's id.
    const USER: &str = "\\set u random(1, 3000)\n\\set d 1000000000000000 + :u\n";

    /// The files `benches/pgbench/decompose.sh` runs, rendered from the migrations and the
    /// statements this store runs: the schema, the read of a verification, and its
    /// settlement (a TOTP hit on a step that keeps rising) with pgbench variables for the binds.
    fn pgbench_files() -> Vec<(&'static str, String)> {
        let schema: String = super::PostgresStore::MIGRATIONS
            .iter()
            .flat_map(|v| v.iter())
            .map(|statement| format!("{statement};\n"))
            .collect();
        let read = ["'user' || :u", "'totp'", "'totp'"];
        // The store binds values; so do these, where pgbench can (a variable, a literal). The
        // step bound is far above any step, and the entry writes back a small step: every
        // settlement is an accepted hit that does the whole write.
        let entry = "(:d::BYTEA || '\\x00000000000000020000000000000002'::BYTEA)";
        let settle = [
            "'user' || :u",
            ":d",
            "'\\x4000000000000000'",
            entry,
            "1",
            // The counter is clear before, after a hit and after a miss (empty bytes).
            "''",
            "''",
            "''",
        ];
        let bind = |statement: &str, values: &[&str]| {
            // From the highest number down, so `$1` does not eat the front of `$10`.
            let mut out = statement.split_whitespace().collect::<Vec<_>>().join(" ");
            for (i, value) in values.iter().enumerate().rev() {
                out = out.replace(&format!("${}", i + 1), value);
            }
            out
        };
        let read = bind(SELECT_VERIFICATION_STATE, &read);
        let settle = bind(SETTLE_TOTP, &settle);
        vec![
            ("schema.sql", schema),
            ("our_read.sql", format!("{USER}{read};\n")),
            ("our_update.sql", format!("{USER}{settle};\n")),
            ("our_verification.sql", format!("{USER}{read};\n{settle};\n")),
        ]
    }

    /// `benches/pgbench` runs what this store runs: the files are these renderings (run the
    /// test with `BLESS=1` to write them after a change).
    #[test]
    fn the_pgbench_files_are_the_store_s_statements() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/pgbench");
        for (name, rendered) in pgbench_files() {
            let path = dir.join(name);
            if std::env::var_os("BLESS").is_some() {
                std::fs::write(&path, &rendered).unwrap();
            }
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == rendered,
                "benches/pgbench/{name} is not the store's: run this test with BLESS=1"
            );
        }
    }
}
