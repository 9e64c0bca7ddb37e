//! What the SQL stores share: the schema, how records become rows and back, and the one
//! implementation of the store traits ([`Store`](crate::Store)), written once as a macro
//! over the sqlx driver so SQLite and PostgreSQL cannot drift apart.
//!
//! # Schema (version 13)
//!
//! | table | holds | never holds |
//! |---|---|---|
//! | `mfa_schema_version` | the schema version (one row) | |
//! | `mfa_devices` | one row per device: owner, kind, name, times, confirmed; TOTP parameters, the **sealed** secret and a keyed fingerprint of the secret, unique per user (`totp_fingerprint`, v6: `HMAC-SHA256(k, user ‖ secret)` under the key that sealed it); the backup-code set's salt, code length, the key its hashes are keyed with (`codes_key_id`, v3), its codes' keyed hashes end to end (`codes_hashes`, 32 bytes each, see [`backup_codes`](crate::backup_codes)) and for a set imported from another system's hashes what it hashed them with (`codes_prehash`, v9: `keycloak-sha512`, the keyed hash then being over that digest); WebAuthn credential id (unique), user handle, public credential, sign counter, backup and verification flags, and the authenticator model's AAGUID (`aaguid`, v13; before, a key of the credential's JSON) | a plaintext TOTP secret or backup code |
//! | `mfa_user_state` (v11) | one row per user: what a verification settles, in the one row it updates: the devices version (every device change increments it, wrapping from 2,147,483,646 to 0; 4 bytes on PostgreSQL), the failure counters of TOTP and backup codes for unknown browsers (`totp_counter`, `codes_counter`: each in one column, empty while clear, else a flags byte and the consecutive failures, last failure, budget and last miss fingerprint as 8 big-endian bytes each), each one-time-code device's last accepted step and last use (`totp_marks`: per device, in the order added, its 16-byte id, then its step + 1 and last-use time + 1 as 8 big-endian bytes each, 0 for none), the backup-code set's id, a mask with bit `i` set while code `i` is unused, and its last use; `hit`, whether the last settlement accepted its hit | |
//! | `mfa_throttles` | the other failure counters (WebAuthn's, each known browser's): consecutive failures, last failure, budget, last miss fingerprint, per user and counter | |
//! | `mfa_ceremonies` | WebAuthn ceremony state (challenge) of a known user's ceremony, owner, kind, expiry; and used-markers of passwordless ceremonies (no owner, no state) until they expire | |
//! | `mfa_browsers` (v2; named so in v12) | browser records, remembered (they skip the second factor) and known (v5, `skips_second_factor` false): owner, `HMAC-SHA256(k, token secret)` and the key id `k` derives from, issue, expiry and last-use times | the token |
//! | `mfa_keys` (v5) | per sealing key id, a check value (`HMAC-SHA256(key, label)`) that refuses other bytes under the same id | the key |
//! | `mfa_enrollment_deadlines` (v7) | per user under a required-enrollment policy, the deadline stored when they were first seen, and (v8) the prompts they skipped | |
//!
//! Times are Unix seconds and TOTP steps are step numbers, both as `BIGINT` (up to 2^63 - 1).
//! Ids are 16 raw bytes. Every consume-once, high-water-mark, compare-and-swap and take-once
//! operation is one conditional statement (or one transaction), and is correct under
//! concurrent writers at PostgreSQL's default READ COMMITTED isolation: a second writer
//! blocks on the row and re-checks the condition against the committed row.

use crate::error::StoreError;

mod row;
mod state;

pub(crate) use self::row::*;
pub(crate) use self::state::*;

/// The schema version this code writes and understands.
pub(crate) const SCHEMA_VERSION: i64 = 13;

/// The device query (one row per device, a backup-code set's codes packed in its row),
/// followed by `$tail` (a `WHERE` and `ORDER BY` clause).
macro_rules! select_devices_sql {
    ($tail:literal) => {
        $crate::store::sql::select_devices_sql!("", "", $tail)
    };
    // With extra columns (each starting ", ") and extra joins (each ending " ").
    ($columns:literal, $joins:literal, $tail:literal) => {
        concat!(
            "SELECT d.id, d.user_id, d.kind, d.name, d.created_at, d.last_used_at, d.confirmed, ",
            "d.totp_algorithm, d.totp_digits, d.totp_period, d.totp_secret, ",
            "d.codes_salt, d.codes_length, d.codes_key_id, d.codes_hashes, d.credential_id, ",
            "d.user_handle, d.credential, d.sign_count, d.backup_eligible, d.backup_state, d.discoverable, ",
            "d.user_verified, d.totp_fingerprint, d.codes_prehash, d.oob_channel, d.oob_issued, d.aaguid, ",
            "s.totp_marks AS s_totp_marks, s.codes_set AS s_codes_set, s.codes_unused AS s_codes_unused, ",
            "s.codes_used_at AS s_codes_used_at",
            $columns,
            " FROM mfa_devices d LEFT JOIN mfa_user_state s ON s.user_id = d.user_id ",
            $joins,
            $tail
        )
    };
}

pub(crate) use select_devices_sql;

/// The statements of a failure counter kept in the user's state row (`$p`: `totp` or
/// `codes`), in its one column (`sql::counter_bytes`): read (with the devices version),
/// compare-and-swap from the default (inserting the row), compare-and-swap, and set (in a
/// transaction that locked the row, or to clear it). Binds: user; then the new bytes; then the
/// expected ones.
macro_rules! row_counter_sql {
    ($p:literal) => {
        $crate::store::sql::RowCounterSql {
            read: concat!(
                "SELECT CAST(version AS BIGINT) AS version, ",
                $p,
                "_counter AS counter FROM mfa_user_state WHERE user_id = $1"
            ),
            swap_from_default: concat!(
                "INSERT INTO mfa_user_state (user_id, version, ",
                $p,
                "_counter) VALUES ($1, 0, $2) ON CONFLICT (user_id) DO UPDATE SET ",
                $p,
                "_counter = excluded.",
                $p,
                "_counter WHERE mfa_user_state.",
                $p,
                "_counter = $3"
            ),
            swap: concat!(
                "UPDATE mfa_user_state SET ",
                $p,
                "_counter = $2 WHERE user_id = $1 AND ",
                $p,
                "_counter = $3"
            ),
            set: concat!("UPDATE mfa_user_state SET ", $p, "_counter = $2 WHERE user_id = $1"),
            column: concat!("mfa_user_state.", $p, "_counter"),
        }
    };
}

/// See [`row_counter_sql!`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowCounterSql {
    pub(crate) read: &'static str,
    pub(crate) swap_from_default: &'static str,
    pub(crate) swap: &'static str,
    pub(crate) set: &'static str,
    /// The column's name, for errors.
    pub(crate) column: &'static str,
}

/// The statements of the counter kept in the user's state row, if `counter` is one: the
/// counters of the two code factors for unknown browsers. The others (WebAuthn's, and every
/// known browser's, of which a user may have many) are rows of `mfa_throttles`.
pub(crate) const fn row_counter(counter: &crate::throttle::Counter) -> Option<RowCounterSql> {
    match (counter.factor, counter.browser) {
        (crate::kind::Factor::Totp, None) => Some(row_counter_sql!("totp")),
        (crate::kind::Factor::BackupCodes, None) => Some(row_counter_sql!("codes")),
        _ => None,
    }
}

/// What a SQL backend (`sqlite.rs`, `postgres.rs`) gives the one implementation of the store
/// contract, [`sql_device_store!`]: its driver, its statements, and its connections for the
/// verification path. The macro reaches the backend only through this trait (and the row codec
/// only through [`row`]), so what a new backend must define is written here, checked by the
/// compiler, and nothing else.
pub(crate) trait SqlBackend: Sync {
    /// The sqlx driver.
    type Db: sqlx::Database;
    /// A connection held for one call on the verification path, given back with
    /// [`release`](Self::release) once its statements succeeded (dropped otherwise).
    type Lease<'a>: std::ops::DerefMut<Target = <Self::Db as sqlx::Database>::Connection> + Send
    where
        Self: 'a;
    /// The statement that opens a write transaction.
    const BEGIN: &'static str;
    /// A statement taking `$1` (a text key) that serialises writers on that key until the
    /// transaction ends, where the backend needs one (SQLite's write transactions are serial).
    const LOCK: Option<&'static str>;
    /// The one statement that settles a TOTP attempt on the user's counter for unknown
    /// browsers: a conditional update of the user's state row (see [`state`]). Binds: user,
    /// device (null for a miss), the step bound ([`step_bound`]), the new entry, the expected
    /// version (or null), then the admitted, on-hit and on-miss counters (4 columns each).
    /// Returns one row (`hit`: whether the hit was accepted), or none if the version or the
    /// counter did not match.
    const SETTLE_TOTP: &'static str;
    /// As [`SETTLE_TOTP`](Self::SETTLE_TOTP) for a backup code: the device binds the set, the
    /// step bound the slot's bit, the new entry the time of use.
    const SETTLE_CODES: &'static str;
    /// Reads the code columns of the user's state row (`$1`), locking it until the
    /// transaction ends where the backend needs that (SQLite's write transactions are serial).
    const LOCK_STATE: &'static str;
    /// One row if the user (`$2`) has the known browser `$1` unexpired at `$3`, kept from
    /// being deleted until the transaction ends where the backend needs that.
    const LIVE_BROWSER: &'static str;
    /// A query answering one row when the schema-version table exists, none otherwise.
    const SCHEMA_TABLE_EXISTS: &'static str;
    /// `MIGRATIONS[i]` moves the schema from version `i` to `i + 1`.
    const MIGRATIONS: &'static [&'static [&'static str]];

    /// The pool for everything but the verification path.
    fn pool(&self) -> &sqlx::Pool<Self::Db>;
    /// A connection for one call of the verification path.
    fn lease(&self) -> impl std::future::Future<Output = Result<Self::Lease<'_>, StoreError>> + Send;
    /// Gives a lease back after its statements succeeded.
    fn release(lease: Self::Lease<'_>);
    /// Closes the leased connections (when the store closes).
    fn close_leases(&self) -> impl std::future::Future<Output = ()> + Send;
}

/// Implements the five store traits, one `impl` each, for `$store`, a [`SqlBackend`]: everything
/// backend-specific comes from that trait, the rows' encoding from [`row`].
macro_rules! sql_device_store {
    ($store:ty) => {
        use sqlx::Row as _;
        use $crate::store::sql::SqlBackend as _;
        use $crate::store::sql::{self as sql, DeviceRow};

        /// The backend's driver.
        type SqlDb = <$store as $crate::store::sql::SqlBackend>::Db;

        fn db_err(e: sqlx::Error) -> StoreError {
            match &e {
                sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict,
                sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StoreError::Corrupt(e.to_string()),
                _ => StoreError::backend(e),
            }
        }

        /// Reads device rows into records.
        fn decode_devices(rows: Vec<<SqlDb as sqlx::Database>::Row>) -> Result<Vec<DeviceRecord>, StoreError> {
            rows.iter().map(decode_device).collect()
        }

        fn decode_device(row: &<SqlDb as sqlx::Database>::Row) -> Result<DeviceRecord, StoreError> {
            let mut device = DeviceRow {
                id: row.try_get("id").map_err(db_err)?,
                user_id: row.try_get("user_id").map_err(db_err)?,
                kind: row.try_get("kind").map_err(db_err)?,
                name: row.try_get("name").map_err(db_err)?,
                created_at: row.try_get("created_at").map_err(db_err)?,
                last_used_at: row.try_get("last_used_at").map_err(db_err)?,
                confirmed: row.try_get("confirmed").map_err(db_err)?,
                totp_algorithm: row.try_get("totp_algorithm").map_err(db_err)?,
                totp_digits: row.try_get("totp_digits").map_err(db_err)?,
                totp_period: row.try_get("totp_period").map_err(db_err)?,
                totp_secret: row.try_get("totp_secret").map_err(db_err)?,
                totp_last_step: None,
                totp_fingerprint: row.try_get("totp_fingerprint").map_err(db_err)?,
                codes_salt: row.try_get("codes_salt").map_err(db_err)?,
                codes_length: row.try_get("codes_length").map_err(db_err)?,
                codes_key_id: row.try_get("codes_key_id").map_err(db_err)?,
                codes_prehash: row.try_get("codes_prehash").map_err(db_err)?,
                codes_hashes: row.try_get("codes_hashes").map_err(db_err)?,
                codes_unused: None,
                credential_id: row.try_get("credential_id").map_err(db_err)?,
                user_handle: row.try_get("user_handle").map_err(db_err)?,
                credential: row.try_get("credential").map_err(db_err)?,
                sign_count: row.try_get("sign_count").map_err(db_err)?,
                backup_eligible: row.try_get("backup_eligible").map_err(db_err)?,
                backup_state: row.try_get("backup_state").map_err(db_err)?,
                discoverable: row.try_get("discoverable").map_err(db_err)?,
                user_verified: row.try_get("user_verified").map_err(db_err)?,
                oob_channel: row.try_get("oob_channel").map_err(db_err)?,
                oob_issued: row.try_get("oob_issued").map_err(db_err)?,
                aaguid: row.try_get("aaguid").map_err(db_err)?,
            };
            // What the settlement changes lives in the user's state row, joined in.
            let marks: Option<Vec<u8>> = row.try_get("s_totp_marks").map_err(db_err)?;
            sql::CodeState::decode(
                marks.as_deref(),
                row.try_get("s_codes_set").map_err(db_err)?,
                row.try_get("s_codes_unused").map_err(db_err)?,
                row.try_get("s_codes_used_at").map_err(db_err)?,
            )?
            .merge_into(&mut device);
            device.into_record()
        }

        /// A counter state from a row: read as `counter` from the state-row column `packed`
        /// names, else from the `failures`, `last_failure_at`, `budget_until` and `last_miss`
        /// columns of `mfa_throttles`.
        fn decode_counter(
            row: &<SqlDb as sqlx::Database>::Row,
            packed: Option<&str>,
        ) -> Result<ThrottleState, StoreError> {
            if let Some(column) = packed {
                let bytes: Vec<u8> = row.try_get("counter").map_err(db_err)?;
                return sql::counter_from_bytes(&bytes, column);
            }
            sql::throttle_state(
                row.try_get("failures").map_err(db_err)?,
                row.try_get("last_failure_at").map_err(db_err)?,
                row.try_get("budget_until").map_err(db_err)?,
                row.try_get("last_miss").map_err(db_err)?,
            )
        }

        fn decode_browser(row: &<SqlDb as sqlx::Database>::Row) -> Result<RememberedBrowserRecord, StoreError> {
            let id: Vec<u8> = row.try_get("id").map_err(db_err)?;
            let id: [u8; 16] = id.as_slice().try_into().map_err(|_| sql::corrupt("mfa_browsers.id", "not 16 bytes"))?;
            let user: String = row.try_get("user_id").map_err(db_err)?;
            let key_id: String = row.try_get("key_id").map_err(db_err)?;
            let hash: Vec<u8> = row.try_get("hash").map_err(db_err)?;
            let created_at: i64 = row.try_get("created_at").map_err(db_err)?;
            let expires_at: i64 = row.try_get("expires_at").map_err(db_err)?;
            let last_used_at: Option<i64> = row.try_get("last_used_at").map_err(db_err)?;
            let skips_second_factor: bool = row.try_get("skips_second_factor").map_err(db_err)?;
            Ok(RememberedBrowserRecord {
                id: RememberedBrowserId::from_bytes(id),
                user: UserId::new(user).map_err(|_| sql::corrupt("mfa_browsers.user_id", "not a valid user id"))?,
                key_id: $crate::KeyId::new(key_id).map_err(|_| sql::corrupt("mfa_browsers.key_id", "not a valid key id"))?,
                hash: hash.as_slice().try_into().map_err(|_| sql::corrupt("mfa_browsers.hash", "not 32 bytes"))?,
                created_at: UnixTime::from_secs(sql::from_db(created_at, "mfa_browsers.created_at")?),
                expires_at: UnixTime::from_secs(sql::from_db(expires_at, "mfa_browsers.expires_at")?),
                last_used_at: last_used_at
                    .map(|t| sql::from_db(t, "mfa_browsers.last_used_at").map(UnixTime::from_secs))
                    .transpose()?,
                skips_second_factor,
            })
        }

        /// Inserts a device row, and takes what the settlement changes (its step, unused
        /// codes, last use) into the user's state, to be written by the caller.
        async fn insert_in(
            tx: &mut sqlx::Transaction<'static, SqlDb>,
            record: &DeviceRecord,
            state: &mut sql::CodeState,
        ) -> Result<(), StoreError> {
            let mut row = DeviceRow::from_record(record)?;
            state.add(&mut row)?;
            sqlx::query(
                "INSERT INTO mfa_devices (id, user_id, kind, name, created_at, last_used_at, confirmed, \
                 totp_algorithm, totp_digits, totp_period, totp_secret, codes_salt, codes_length, \
                 credential_id, user_handle, credential, sign_count, backup_eligible, backup_state, discoverable, \
                 user_verified, codes_key_id, codes_hashes, totp_fingerprint, codes_prehash, oob_channel, \
                 oob_issued, aaguid) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
                 $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)",
            )
            .bind(&row.id)
            .bind(&row.user_id)
            .bind(&row.kind)
            .bind(&row.name)
            .bind(row.created_at)
            .bind(row.last_used_at)
            .bind(row.confirmed)
            .bind(&row.totp_algorithm)
            .bind(row.totp_digits)
            .bind(row.totp_period)
            .bind(&row.totp_secret)
            .bind(&row.codes_salt)
            .bind(row.codes_length)
            .bind(&row.credential_id)
            .bind(&row.user_handle)
            .bind(&row.credential)
            .bind(row.sign_count)
            .bind(row.backup_eligible)
            .bind(row.backup_state)
            .bind(row.discoverable)
            .bind(row.user_verified)
            .bind(&row.codes_key_id)
            .bind(&row.codes_hashes)
            .bind(&row.totp_fingerprint)
            .bind(&row.codes_prehash)
            .bind(&row.oob_channel)
            .bind(&row.oob_issued)
            .bind(&row.aaguid)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
            Ok(())
        }

        impl $store {
            /// Up to `limit` devices of `kind` of all users with ids above `after`, by id.
            async fn list_kind_page(
                &self,
                kind: &'static str,
                after: Option<DeviceId>,
                limit: usize,
            ) -> Result<Vec<DeviceRecord>, StoreError> {
                let after = after.map(|a| a.as_bytes().to_vec()).unwrap_or_default();
                let rows = sqlx::query(SELECT_KIND_PAGE)
                    .bind(kind)
                    .bind(after)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(self.pool())
                    .await
                    .map_err(db_err)?;
                decode_devices(rows)
            }

            async fn begin(&self) -> Result<sqlx::Transaction<'static, SqlDb>, StoreError> {
                self.pool().begin_with(<$store as $crate::store::sql::SqlBackend>::BEGIN).await.map_err(db_err)
            }

            /// Serialises writers on `key` until the transaction ends (where the backend needs it:
            /// SQLite's write transactions are serial anyway).
            async fn lock(tx: &mut sqlx::Transaction<'static, SqlDb>, key: String) -> Result<(), StoreError> {
                let lock: Option<&'static str> = <$store as $crate::store::sql::SqlBackend>::LOCK;
                if let Some(lock) = lock {
                    sqlx::query(lock).bind(key).execute(&mut **tx).await.map_err(db_err)?;
                }
                Ok(())
            }

            /// The code part of the user's state row, creating the row if the user has none, and
            /// locked until the transaction ends: every change of the user's devices and every
            /// settlement of theirs takes turns on it.
            async fn lock_state(
                tx: &mut sqlx::Transaction<'static, SqlDb>,
                user: &UserId,
            ) -> Result<sql::CodeState, StoreError> {
                sqlx::query("INSERT INTO mfa_user_state (user_id, version) VALUES ($1, 0) ON CONFLICT (user_id) DO NOTHING")
                    .bind(user.as_str())
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                let row = sqlx::query(<$store as $crate::store::sql::SqlBackend>::LOCK_STATE)
                    .bind(user.as_str())
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(db_err)?;
                let marks: Vec<u8> = row.try_get("totp_marks").map_err(db_err)?;
                sql::CodeState::decode(
                    Some(&marks),
                    row.try_get("codes_set").map_err(db_err)?,
                    row.try_get("codes_unused").map_err(db_err)?,
                    row.try_get("codes_used_at").map_err(db_err)?,
                )
            }

            /// Writes the code part of the user's state row (locked by [`lock_state`]),
            /// incrementing the devices version if `changed`.
            async fn write_state(
                tx: &mut sqlx::Transaction<'static, SqlDb>,
                user: &UserId,
                state: &sql::CodeState,
                changed: bool,
            ) -> Result<(), StoreError> {
                let (set, unused, used) = state.codes_columns();
                sqlx::query(
                    "UPDATE mfa_user_state SET version = (version + $2) % 2147483647, totp_marks = $3, codes_set = $4, \
                     codes_unused = $5, codes_used_at = $6 WHERE user_id = $1",
                )
                .bind(user.as_str())
                .bind(i64::from(changed))
                .bind(state.marks_bytes())
                .bind(set)
                .bind(unused)
                .bind(used)
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
                Ok(())
            }

            /// Settles an attempt on a counter outside the user's state row (a known browser's
            /// own): one write transaction that locks the state row, with the same statements for
            /// a hit and a miss until the hit is accepted.
            async fn settle_in_transaction(&self, user: &UserId, attempt: &Settle) -> Result<Settlement, StoreError> {
                let counter = $crate::throttle::Counter {
                    factor: attempt.factor,
                    browser: attempt.browser,
                };
                let now = sql::to_db(attempt.now.as_secs())?;
                let mut tx = self.begin().await?;
                if let Some(browser) = attempt.browser {
                    let live = sqlx::query(<$store as $crate::store::sql::SqlBackend>::LIVE_BROWSER)
                        .bind(browser.as_bytes().to_vec())
                        .bind(user.as_str())
                        .bind(now)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    if live.is_none() {
                        return Ok(Settlement::Stale);
                    }
                }
                let mut state = Self::lock_state(&mut tx, user).await?;
                let current = Self::read_counter(&mut tx, user, counter).await?;
                if current != attempt.admitted {
                    return Ok(Settlement::Moved(current));
                }
                if let Some(expected) = attempt.version {
                    let version: i64 = sqlx::query_scalar("SELECT CAST(version AS BIGINT) FROM mfa_user_state WHERE user_id = $1")
                        .bind(user.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    if version.cast_unsigned() != expected.0 {
                        return Ok(Settlement::Stale);
                    }
                }
                let accepted = match attempt.hit {
                    Some($crate::store::Hit::TotpStep { .. }) if attempt.factor == Factor::Totp => state.accept(attempt.hit, now),
                    Some($crate::store::Hit::BackupCode { .. }) if attempt.factor == Factor::BackupCodes => state.accept(attempt.hit, now),
                    _ => None,
                };
                let (new, settled) = match accepted {
                    Some(_) => (attempt.on_hit, Settlement::Accepted),
                    None => (attempt.on_miss, Settlement::Charged),
                };
                // A counter that did not move is not written again (the decision depends on
                // the counter and the answer, never on the code itself).
                if new != attempt.admitted {
                    Self::write_counter(&mut tx, user, counter, new).await?;
                }
                if let Some(first) = accepted {
                    Self::write_state(&mut tx, user, &state, first).await?;
                }
                tx.commit().await.map_err(db_err)?;
                Ok(settled)
            }

            /// A counter, read inside a transaction.
            async fn read_counter(
                tx: &mut sqlx::Transaction<'static, SqlDb>,
                user: &UserId,
                counter: $crate::throttle::Counter,
            ) -> Result<ThrottleState, StoreError> {
                let rows = sql::row_counter(&counter);
                let packed = rows.map(|rows| rows.column);
                let row = match rows {
                    Some(rows) => sqlx::query(rows.read).bind(user.as_str()).fetch_optional(&mut **tx).await,
                    None => {
                        sqlx::query(
                            "SELECT failures, last_failure_at, budget_until, last_miss FROM mfa_throttles \
                             WHERE user_id = $1 AND factor = $2",
                        )
                        .bind(user.as_str())
                        .bind(counter.key())
                        .fetch_optional(&mut **tx)
                        .await
                    }
                }
                .map_err(db_err)?;
                Ok(row.as_ref().map(|row| decode_counter(row, packed)).transpose()?.unwrap_or_default())
            }

            /// Writes a counter inside a transaction that read it (a clear counter of
            /// `mfa_throttles` has no row).
            async fn write_counter(
                tx: &mut sqlx::Transaction<'static, SqlDb>,
                user: &UserId,
                counter: $crate::throttle::Counter,
                new: ThrottleState,
            ) -> Result<(), StoreError> {
                if let Some(rows) = sql::row_counter(&counter) {
                    // The row exists, and is locked: `lock_state` made sure of both.
                    sqlx::query(rows.set)
                        .bind(user.as_str())
                        .bind(sql::counter_bytes(&new)?)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                    return Ok(());
                }
                let new = sql::throttle_columns(&new)?;
                if new == sql::throttle_columns(&ThrottleState::default())? {
                    sqlx::query("DELETE FROM mfa_throttles WHERE user_id = $1 AND factor = $2")
                        .bind(user.as_str())
                        .bind(counter.key())
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                } else {
                    sqlx::query(
                        "INSERT INTO mfa_throttles (user_id, factor, failures, last_failure_at, budget_until, last_miss) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, factor) DO UPDATE SET \
                         failures = excluded.failures, last_failure_at = excluded.last_failure_at, \
                         budget_until = excluded.budget_until, last_miss = excluded.last_miss",
                    )
                    .bind(user.as_str())
                    .bind(counter.key())
                    .bind(new.0)
                    .bind(new.1)
                    .bind(new.2)
                    .bind(new.3)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                }
                Ok(())
            }

            /// Creates or upgrades the schema. Idempotent, and safe to run from several
            /// processes at once.
            ///
            /// # Errors
            ///
            /// [`StoreError::SchemaTooNew`] if the database was migrated by a newer version of
            /// this crate; [`StoreError::Backend`] if the database fails.
            pub async fn migrate(&self) -> Result<(), StoreError> {
                let mut tx = self.begin().await?;
                Self::lock(&mut tx, "multifactor/migrate".to_owned()).await?;
                sqlx::query("CREATE TABLE IF NOT EXISTS mfa_schema_version (version BIGINT NOT NULL)")
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM mfa_schema_version")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
                let found = found.unwrap_or(0);
                if found > sql::SCHEMA_VERSION {
                    return Err(StoreError::SchemaTooNew {
                        found,
                        supported: sql::SCHEMA_VERSION,
                    });
                }
                let migrations: &[&[&'static str]] = <$store as $crate::store::sql::SqlBackend>::MIGRATIONS;
                for version in found..sql::SCHEMA_VERSION {
                    let steps = usize::try_from(version)
                        .ok()
                        .and_then(|v| migrations.get(v))
                        .ok_or(StoreError::InvalidRecord("no migration for this schema version"))?;
                    for statement in *steps {
                        sqlx::query(*statement).execute(&mut *tx).await.map_err(db_err)?;
                    }
                }
                if found == 0 {
                    sqlx::query("INSERT INTO mfa_schema_version (version) VALUES ($1)")
                        .bind(sql::SCHEMA_VERSION)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                } else if found < sql::SCHEMA_VERSION {
                    sqlx::query("UPDATE mfa_schema_version SET version = $1")
                        .bind(sql::SCHEMA_VERSION)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                }
                tx.commit().await.map_err(db_err)
            }

            /// The schema version the database is at, or `None` if it was never migrated.
            ///
            /// # Errors
            ///
            /// [`StoreError::Backend`] if the database fails.
            pub async fn schema_version(&self) -> Result<Option<i64>, StoreError> {
                let exists: Option<i64> = sqlx::query_scalar(<$store as $crate::store::sql::SqlBackend>::SCHEMA_TABLE_EXISTS)
                    .fetch_optional(self.pool())
                    .await
                    .map_err(db_err)?;
                if exists.is_none() {
                    return Ok(None);
                }
                sqlx::query_scalar("SELECT MAX(version) FROM mfa_schema_version")
                    .fetch_one(self.pool())
                    .await
                    .map_err(db_err)
            }

            /// Refuses a database migrated by a newer version of this crate.
            async fn check_schema(self) -> Result<Self, StoreError> {
                match self.schema_version().await? {
                    Some(v) if v > sql::SCHEMA_VERSION => Err(StoreError::SchemaTooNew {
                        found: v,
                        supported: sql::SCHEMA_VERSION,
                    }),
                    _ => Ok(self),
                }
            }

            /// Closes every connection of the pool.
            pub async fn close(&self) {
                self.close_leases().await;
                self.pool().close().await;
            }

            async fn select_devices(
                &self,
                filter: &'static str,
                bind_text: Option<&str>,
                bind_bytes: Option<&[u8]>,
            ) -> Result<Vec<DeviceRecord>, StoreError> {
                let sql: &'static str = filter;
                let mut query = sqlx::query(sql);
                if let Some(b) = bind_bytes {
                    query = query.bind(b.to_vec());
                }
                if let Some(t) = bind_text {
                    query = query.bind(t.to_owned());
                }
                let rows = query.fetch_all(self.pool()).await.map_err(db_err)?;
                decode_devices(rows)
            }
        }

        impl DeviceStore for $store {
            async fn insert_device(&self, device: DeviceRecord) -> Result<(), StoreError> {
                let mut tx = self.begin().await?;
                let mut state = Self::lock_state(&mut tx, &device.user).await?;
                insert_in(&mut tx, &device, &mut state).await?;
                Self::write_state(&mut tx, &device.user, &state, true).await?;
                tx.commit().await.map_err(db_err)
            }

            async fn device(&self, user: &UserId, id: DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
                Ok(self
                    .select_devices(SELECT_DEVICE, Some(user.as_str()), Some(id.as_bytes()))
                    .await?
                    .into_iter()
                    .next())
            }

            async fn list_devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
                self.select_devices(SELECT_USER_DEVICES, Some(user.as_str()), None).await
            }

            async fn rename_device(&self, user: &UserId, id: DeviceId, name: &DeviceName) -> Result<bool, StoreError> {
                let done = sqlx::query("UPDATE mfa_devices SET name = $1 WHERE id = $2 AND user_id = $3")
                    .bind(name.as_str())
                    .bind(id.as_bytes().to_vec())
                    .bind(user.as_str())
                    .execute(self.pool())
                    .await
                    .map_err(db_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_device(&self, user: &UserId, id: DeviceId) -> Result<bool, StoreError> {
                let mut tx = self.begin().await?;
                let mut state = Self::lock_state(&mut tx, user).await?;
                let done = sqlx::query("DELETE FROM mfa_devices WHERE id = $1 AND user_id = $2")
                    .bind(id.as_bytes().to_vec())
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                if done.rows_affected() != 1 {
                    return Ok(false);
                }
                state.remove(id.as_bytes());
                Self::write_state(&mut tx, user, &state, true).await?;
                tx.commit().await.map_err(db_err)?;
                Ok(true)
            }

            async fn delete_user_devices(&self, user: &UserId) -> Result<u64, StoreError> {
                let mut tx = self.begin().await?;
                Self::lock_state(&mut tx, user).await?;
                let done = sqlx::query("DELETE FROM mfa_devices WHERE user_id = $1")
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                Self::write_state(&mut tx, user, &sql::CodeState::default(), true).await?;
                tx.commit().await.map_err(db_err)?;
                Ok(done.rows_affected())
            }

            async fn delete_unconfirmed_totp(&self, user: &UserId, keep: DeviceId) -> Result<u64, StoreError> {
                let mut tx = self.begin().await?;
                let mut state = Self::lock_state(&mut tx, user).await?;
                // Confirmed is the row's flag, or a first accepted code (kept in the state row).
                let rows = sqlx::query(SELECT_USER_DEVICES)
                    .bind(user.as_str())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_err)?;
                let pending: Vec<DeviceId> = decode_devices(rows)?
                    .into_iter()
                    .filter(|d| d.kind().factor() == Factor::Totp && !d.confirmed && d.id != keep)
                    .map(|d| d.id)
                    .collect();
                for id in &pending {
                    sqlx::query("DELETE FROM mfa_devices WHERE id = $1 AND user_id = $2")
                        .bind(id.as_bytes().to_vec())
                        .bind(user.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    state.remove(id.as_bytes());
                }
                if !pending.is_empty() {
                    Self::write_state(&mut tx, user, &state, true).await?;
                }
                tx.commit().await.map_err(db_err)?;
                Ok(pending.len() as u64)
            }

            async fn replace_backup_codes(&self, set: DeviceRecord) -> Result<(), StoreError> {
                if !matches!(set.data, DeviceData::BackupCodes(_)) {
                    return Err(StoreError::InvalidRecord("replace_backup_codes needs a backup-code record"));
                }
                let mut tx = self.begin().await?;
                let mut state = Self::lock_state(&mut tx, &set.user).await?;
                sqlx::query("DELETE FROM mfa_devices WHERE user_id = $1 AND kind = $2")
                    .bind(set.user.as_str())
                    .bind(sql::KIND_BACKUP_CODES)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                state.codes = None;
                insert_in(&mut tx, &set, &mut state).await?;
                Self::write_state(&mut tx, &set.user, &state, true).await?;
                tx.commit().await.map_err(db_err)
            }

            async fn insert_first_backup_codes(&self, set: DeviceRecord) -> Result<bool, StoreError> {
                if !matches!(set.data, DeviceData::BackupCodes(_)) {
                    return Err(StoreError::InvalidRecord("insert_first_backup_codes needs a backup-code record"));
                }
                // The user's state row, locked: the check and the insert are one step.
                let mut tx = self.begin().await?;
                let mut state = Self::lock_state(&mut tx, &set.user).await?;
                if state.codes.is_some() {
                    return Ok(false);
                }
                insert_in(&mut tx, &set, &mut state).await?;
                Self::write_state(&mut tx, &set.user, &state, true).await?;
                tx.commit().await.map_err(db_err)?;
                Ok(true)
            }

            async fn settle_attempt(&self, user: &UserId, attempt: &Settle) -> Result<Settlement, StoreError> {
                let counter = $crate::throttle::Counter {
                    factor: attempt.factor,
                    browser: attempt.browser,
                };
                let now = sql::to_db(attempt.now.as_secs())?;
                let version = attempt.version.map(|v| v.0.cast_signed());
                let statement: &'static str = match (attempt.factor, attempt.browser) {
                    (Factor::Totp, None) => <$store as $crate::store::sql::SqlBackend>::SETTLE_TOTP,
                    (Factor::BackupCodes, None) => <$store as $crate::store::sql::SqlBackend>::SETTLE_CODES,
                    _ => return self.settle_in_transaction(user, attempt).await,
                };
                let admitted = sql::counter_bytes(&attempt.admitted)?;
                let on_hit = sql::counter_bytes(&attempt.on_hit)?;
                let on_miss = sql::counter_bytes(&attempt.on_miss)?;
                // One single-row statement, so one round trip and one commit, hit or miss: the
                // hit's columns are null for a miss and match nothing.
                let query = sqlx::query(statement).bind(user.as_str());
                let query = match sql::hit_columns(attempt.factor, attempt.hit, now) {
                    sql::HitColumns::Totp { device, bound, entry } => query.bind(device).bind(bound).bind(entry),
                    sql::HitColumns::Codes { device, mask, now } => query.bind(device).bind(mask).bind(now),
                };
                let mut conn = self.lease().await?;
                let row = query
                    .bind(version)
                    .bind(admitted)
                    .bind(on_hit)
                    .bind(on_miss)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db_err)?;
                if let Some(row) = row {
                    <$store as $crate::store::sql::SqlBackend>::release(conn);
                    let hit: bool = row.try_get("hit").map_err(db_err)?;
                    return Ok(if hit { Settlement::Accepted } else { Settlement::Charged });
                }
                // Nothing matched: the counter or the version moved, or the user has no row.
                let rows = sql::row_counter(&counter).ok_or(StoreError::InvalidRecord("a counter without its row"))?;
                let current = sqlx::query(rows.read)
                    .bind(user.as_str())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db_err)?;
                <$store as $crate::store::sql::SqlBackend>::release(conn);
                let version_now: Option<i64> = current.as_ref().map(|row| row.try_get("version")).transpose().map_err(db_err)?;
                let current = current.as_ref().map(|row| decode_counter(row, Some(rows.column))).transpose()?.unwrap_or_default();
                if current != attempt.admitted {
                    return Ok(Settlement::Moved(current));
                }
                if version.is_some_and(|v| v != version_now.unwrap_or(0)) {
                    return Ok(Settlement::Stale);
                }
                if version_now.is_some() {
                    // It moved and moved back in between: settle again against it.
                    return Ok(Settlement::Moved(current));
                }
                // No row: no devices, so nothing to accept; the miss is charged on a new row.
                if self.swap_throttle(user, counter, attempt.admitted, attempt.on_miss).await? {
                    Ok(Settlement::Charged)
                } else {
                    Ok(Settlement::Moved(self.throttle(user, counter).await?))
                }
            }

            async fn throttle(&self, user: &UserId, counter: $crate::throttle::Counter) -> Result<ThrottleState, StoreError> {
                let mut conn = self.lease().await?;
                let rows = sql::row_counter(&counter);
                let packed = rows.map(|rows| rows.column);
                let row = match rows {
                    Some(rows) => sqlx::query(rows.read).bind(user.as_str()).fetch_optional(&mut *conn).await,
                    None => {
                        sqlx::query(
                            "SELECT failures, last_failure_at, budget_until, last_miss FROM mfa_throttles \
                             WHERE user_id = $1 AND factor = $2",
                        )
                        .bind(user.as_str())
                        .bind(counter.key())
                        .fetch_optional(&mut *conn)
                        .await
                    }
                }
                .map_err(db_err)?;
                <$store as $crate::store::sql::SqlBackend>::release(conn);
                Ok(row.as_ref().map(|row| decode_counter(row, packed)).transpose()?.unwrap_or_default())
            }

            async fn verification_state(
                &self,
                user: &UserId,
                factor: Factor,
            ) -> Result<$crate::store::VerificationState, StoreError> {
                let mut conn = self.lease().await?;
                let rows = sqlx::query(SELECT_VERIFICATION_STATE)
                    .bind(user.as_str())
                    .bind(factor.as_str())
                    .bind(sql::kind_of(factor))
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(db_err)?;
                <$store as $crate::store::sql::SqlBackend>::release(conn);
                let mut read = $crate::store::VerificationState::default();
                // No devices: the counter does not matter (there is nothing to verify).
                if let Some(row) = rows.first() {
                    // The code factors' counters live in the state row; the others in
                    // `mfa_throttles`, joined in.
                    let packed = match factor {
                        Factor::Totp => Some(("s_totp_counter", "mfa_user_state.totp_counter")),
                        Factor::BackupCodes => Some(("s_codes_counter", "mfa_user_state.codes_counter")),
                        Factor::WebAuthn => None,
                    };
                    read.throttle = if let Some((alias, column)) = packed {
                        let bytes: Option<Vec<u8>> = row.try_get(alias).map_err(db_err)?;
                        sql::counter_from_bytes(bytes.as_deref().unwrap_or_default(), column)?
                    } else {
                        let failures: Option<i64> = row.try_get("t_failures").map_err(db_err)?;
                        match failures {
                            Some(failures) => sql::throttle_state(
                                failures,
                                row.try_get("t_last_failure_at").map_err(db_err)?,
                                row.try_get("t_budget_until").map_err(db_err)?,
                                row.try_get("t_last_miss").map_err(db_err)?,
                            )?,
                            None => ThrottleState::default(),
                        }
                    };
                    let version: Option<i64> = row.try_get("s_version").map_err(db_err)?;
                    read.version = $crate::store::DevicesVersion(version.unwrap_or(0).cast_unsigned());
                }
                read.devices = decode_devices(rows)?;
                Ok(read)
            }

            async fn swap_throttle(
                &self,
                user: &UserId,
                counter: $crate::throttle::Counter,
                expected: ThrottleState,
                new: ThrottleState,
            ) -> Result<bool, StoreError> {
                let from_default = expected == ThrottleState::default();
                let mut conn = self.lease().await?;
                let done = match sql::row_counter(&counter) {
                    // A missing row equals the default state: from the default, insert or update
                    // one that still holds it; otherwise only update a row that holds it.
                    Some(rows) => {
                        sqlx::query(if from_default { rows.swap_from_default } else { rows.swap })
                            .bind(user.as_str())
                            .bind(sql::counter_bytes(&new)?)
                            .bind(sql::counter_bytes(&expected)?)
                            .execute(&mut *conn)
                            .await
                    }
                    None => {
                        let new = sql::throttle_columns(&new)?;
                        let old = sql::throttle_columns(&expected)?;
                        let sql: &'static str = if from_default {
                            "INSERT INTO mfa_throttles (user_id, factor, failures, last_failure_at, budget_until, last_miss) \
                             VALUES ($1, $2, $3, $4, $5, $6) \
                             ON CONFLICT (user_id, factor) DO UPDATE SET failures = excluded.failures, \
                             last_failure_at = excluded.last_failure_at, budget_until = excluded.budget_until, \
                             last_miss = excluded.last_miss \
                             WHERE mfa_throttles.failures = $7 AND mfa_throttles.last_failure_at IS NOT DISTINCT FROM $8 \
                             AND mfa_throttles.budget_until IS NOT DISTINCT FROM $9 \
                             AND mfa_throttles.last_miss IS NOT DISTINCT FROM $10"
                        } else {
                            "UPDATE mfa_throttles SET failures = $3, last_failure_at = $4, budget_until = $5, last_miss = $6 \
                             WHERE user_id = $1 AND factor = $2 AND failures = $7 AND last_failure_at IS NOT DISTINCT FROM $8 \
                             AND budget_until IS NOT DISTINCT FROM $9 AND last_miss IS NOT DISTINCT FROM $10"
                        };
                        sqlx::query(sql)
                            .bind(user.as_str())
                            .bind(counter.key())
                            .bind(new.0)
                            .bind(new.1)
                            .bind(new.2)
                            .bind(new.3)
                            .bind(old.0)
                            .bind(old.1)
                            .bind(old.2)
                            .bind(old.3)
                            .execute(&mut *conn)
                            .await
                    }
                }
                .map_err(db_err)?;
                <$store as $crate::store::sql::SqlBackend>::release(conn);
                Ok(done.rows_affected() == 1)
            }

            async fn clear_throttle(&self, user: &UserId, counter: $crate::throttle::Counter) -> Result<(), StoreError> {
                match sql::row_counter(&counter) {
                    Some(rows) => {
                        sqlx::query(rows.set)
                            .bind(user.as_str())
                            .bind(sql::counter_bytes(&ThrottleState::default())?)
                            .execute(self.pool())
                            .await
                    }
                    None => {
                        sqlx::query("DELETE FROM mfa_throttles WHERE user_id = $1 AND factor = $2")
                            .bind(user.as_str())
                            .bind(counter.key())
                            .execute(self.pool())
                            .await
                    }
                }
                .map_err(db_err)?;
                Ok(())
            }

            async fn find_credential(&self, credential_id: &[u8]) -> Result<Option<DeviceRecord>, StoreError> {
                Ok(self
                    .select_devices(SELECT_CREDENTIAL, None, Some(credential_id))
                    .await?
                    .into_iter()
                    .next())
            }

            async fn record_webauthn_use(
                &self,
                user: &UserId,
                id: DeviceId,
                expected_sign_count: u32,
                update: WebAuthnUse,
                now: UnixTime,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE mfa_devices SET sign_count = $1, backup_eligible = $2, backup_state = $3, last_used_at = $4 \
                     WHERE id = $5 AND user_id = $6 AND kind = $7 AND sign_count = $8",
                )
                .bind(i64::from(update.sign_count))
                .bind(update.backup_eligible)
                .bind(update.backup_state)
                .bind(sql::to_db(now.as_secs())?)
                .bind(id.as_bytes().to_vec())
                .bind(user.as_str())
                .bind(sql::KIND_WEBAUTHN)
                .bind(i64::from(expected_sign_count))
                .execute(self.pool())
                .await
                .map_err(db_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_device_unless_last(&self, user: &UserId, id: DeviceId) -> Result<DeleteOutcome, StoreError> {
                // The user's state row, locked: deletes and settlements of the user take turns.
                let mut tx = self.begin().await?;
                let mut state = Self::lock_state(&mut tx, user).await?;
                let rows = sqlx::query(SELECT_USER_DEVICES)
                    .bind(user.as_str())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_err)?;
                let devices = decode_devices(rows)?;
                let Some(device) = devices.iter().find(|d| d.id == id) else {
                    return Ok(DeleteOutcome::NotFound);
                };
                if device.is_usable() && !devices.iter().any(|d| d.id != id && d.is_usable()) {
                    return Ok(DeleteOutcome::LastDevice);
                }
                sqlx::query("DELETE FROM mfa_devices WHERE id = $1 AND user_id = $2")
                    .bind(id.as_bytes().to_vec())
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                state.remove(id.as_bytes());
                Self::write_state(&mut tx, user, &state, true).await?;
                tx.commit().await.map_err(db_err)?;
                Ok(DeleteOutcome::Deleted)
            }

            async fn issue_sent_code(
                &self,
                user: &UserId,
                id: DeviceId,
                expected: Option<&$crate::store::IssuedCode>,
                issued: &$crate::store::IssuedCode,
            ) -> Result<bool, StoreError> {
                let superseded = issued
                    .serial
                    .checked_sub(1)
                    .ok_or(StoreError::InvalidRecord("a sent code's serial starts at 1"))?;
                let superseded = sql::to_db(superseded)?;
                let mut tx = self.begin().await?;
                let mut state = Self::lock_state(&mut tx, user).await?;
                let done = sqlx::query(
                    "UPDATE mfa_devices SET oob_issued = $1 WHERE id = $2 AND user_id = $3 \
                     AND kind = $4 AND oob_channel IS NOT NULL AND oob_issued IS NOT DISTINCT FROM $5",
                )
                .bind(issued.to_bytes())
                .bind(id.as_bytes().to_vec())
                .bind(user.as_str())
                .bind(sql::KIND_TOTP)
                .bind(expected.map($crate::store::IssuedCode::to_bytes))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                if done.rows_affected() != 1 || !state.raise(id.as_bytes(), superseded) {
                    return Ok(false);
                }
                Self::write_state(&mut tx, user, &state, true).await?;
                tx.commit().await.map_err(db_err)?;
                Ok(true)
            }

            async fn key_check(&self, id: &$crate::KeyId, check: [u8; 32]) -> Result<[u8; 32], StoreError> {
                // One statement: insert, or keep the stored value and return it.
                let stored: Vec<u8> = sqlx::query_scalar(
                    "INSERT INTO mfa_keys (key_id, check_value) VALUES ($1, $2) \
                     ON CONFLICT (key_id) DO UPDATE SET check_value = mfa_keys.check_value RETURNING check_value",
                )
                .bind(id.as_str())
                .bind(check.to_vec())
                .fetch_one(self.pool())
                .await
                .map_err(db_err)?;
                stored
                    .as_slice()
                    .try_into()
                    .map_err(|_| sql::corrupt("mfa_keys.check_value", "not 32 bytes"))
            }
        }

        impl CeremonyStore for $store {
            async fn insert_ceremony(&self, ceremony: CeremonyRecord) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO mfa_ceremonies (id, user_id, kind, expires_at, state) VALUES ($1, $2, $3, $4, $5)")
                    .bind(ceremony.id.as_bytes().to_vec())
                    .bind(ceremony.user.as_ref().map(|u| u.as_str().to_owned()))
                    .bind(ceremony.kind.as_str())
                    .bind(sql::to_db(ceremony.expires_at.as_secs())?)
                    .bind(ceremony.state)
                    .execute(self.pool())
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn take_ceremony(
                &self,
                id: CeremonyId,
                user: Option<&UserId>,
                kind: CeremonyKind,
                now: UnixTime,
            ) -> Result<Option<CeremonyRecord>, StoreError> {
                let row = sqlx::query(
                    "DELETE FROM mfa_ceremonies WHERE id = $1 AND user_id IS NOT DISTINCT FROM $2 AND kind = $3 \
                     AND expires_at > $4 RETURNING user_id, kind, expires_at, state",
                )
                .bind(id.as_bytes().to_vec())
                .bind(user.map(|u| u.as_str().to_owned()))
                .bind(kind.as_str())
                .bind(sql::to_db(now.as_secs())?)
                .fetch_optional(self.pool())
                .await
                .map_err(db_err)?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let user_id: Option<String> = row.try_get("user_id").map_err(db_err)?;
                let kind: String = row.try_get("kind").map_err(db_err)?;
                let expires_at: i64 = row.try_get("expires_at").map_err(db_err)?;
                let state: Vec<u8> = row.try_get("state").map_err(db_err)?;
                sql::ceremony_from_row(id, user_id, &kind, expires_at, state).map(Some)
            }

            async fn purge_expired_ceremonies(&self, now: UnixTime) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM mfa_ceremonies WHERE expires_at <= $1")
                    .bind(sql::to_db(now.as_secs())?)
                    .execute(self.pool())
                    .await
                    .map_err(db_err)?;
                Ok(done.rows_affected())
            }
        }

        impl BrowserStore for $store {
            async fn insert_remembered_browser(&self, record: RememberedBrowserRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO mfa_browsers (id, user_id, key_id, hash, created_at, expires_at, last_used_at, \
                     skips_second_factor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(record.id.as_bytes().to_vec())
                .bind(record.user.as_str())
                .bind(record.key_id.as_str())
                .bind(record.hash.to_vec())
                .bind(sql::to_db(record.created_at.as_secs())?)
                .bind(sql::to_db(record.expires_at.as_secs())?)
                .bind(record.last_used_at.map(|t| sql::to_db(t.as_secs())).transpose()?)
                .bind(record.skips_second_factor)
                .execute(self.pool())
                .await
                .map_err(db_err)?;
                Ok(())
            }

            async fn remembered_browser(&self, id: RememberedBrowserId) -> Result<Option<RememberedBrowserRecord>, StoreError> {
                let row = sqlx::query(
                    "SELECT id, user_id, key_id, hash, created_at, expires_at, last_used_at, skips_second_factor \
                     FROM mfa_browsers WHERE id = $1",
                )
                .bind(id.as_bytes().to_vec())
                .fetch_optional(self.pool())
                .await
                .map_err(db_err)?;
                row.map(|r| decode_browser(&r)).transpose()
            }

            async fn touch_remembered_browser(
                &self,
                user: &UserId,
                id: RememberedBrowserId,
                now: UnixTime,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query("UPDATE mfa_browsers SET last_used_at = $1 WHERE id = $2 AND user_id = $3")
                    .bind(sql::to_db(now.as_secs())?)
                    .bind(id.as_bytes().to_vec())
                    .bind(user.as_str())
                    .execute(self.pool())
                    .await
                    .map_err(db_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn list_remembered_browsers(&self, user: &UserId) -> Result<Vec<RememberedBrowserRecord>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, user_id, key_id, hash, created_at, expires_at, last_used_at, skips_second_factor \
                     FROM mfa_browsers WHERE user_id = $1 ORDER BY created_at, id",
                )
                .bind(user.as_str())
                .fetch_all(self.pool())
                .await
                .map_err(db_err)?;
                rows.iter().map(decode_browser).collect()
            }

            async fn delete_remembered_browser(&self, user: &UserId, id: RememberedBrowserId) -> Result<bool, StoreError> {
                // The record first, then its counters: a settlement that starts after the
                // record is gone finds it gone (and settles nothing), one that ran before has
                // its counter row deleted here.
                let mut tx = self.begin().await?;
                let done = sqlx::query("DELETE FROM mfa_browsers WHERE id = $1 AND user_id = $2")
                    .bind(id.as_bytes().to_vec())
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                sqlx::query("DELETE FROM mfa_throttles WHERE user_id = $1 AND factor LIKE $2")
                    .bind(user.as_str())
                    .bind(sql::browser_counters(id))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                tx.commit().await.map_err(db_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_user_remembered_browsers(
                &self,
                user: &UserId,
                which: $crate::store::Browsers,
            ) -> Result<u64, StoreError> {
                use $crate::store::Browsers;
                let mut tx = self.begin().await?;
                let skipping = match which {
                    Browsers::Remembered => Some(true),
                    Browsers::Known => Some(false),
                    _ => None,
                };
                let done = sqlx::query(
                    "DELETE FROM mfa_browsers WHERE user_id = $1 \
                     AND ($2 IS NULL OR skips_second_factor = $2)",
                )
                    .bind(user.as_str())
                    .bind(skipping)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                if which != Browsers::Remembered {
                    sqlx::query("DELETE FROM mfa_throttles WHERE user_id = $1 AND factor LIKE $2")
                        .bind(user.as_str())
                        .bind(sql::ALL_BROWSER_COUNTERS)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                }
                tx.commit().await.map_err(db_err)?;
                Ok(done.rows_affected())
            }
        }

        impl AdminStore for $store {
            async fn list_backup_code_sets(
                &self,
                after: Option<DeviceId>,
                limit: usize,
            ) -> Result<Vec<DeviceRecord>, StoreError> {
                self.list_kind_page(sql::KIND_BACKUP_CODES, after, limit).await
            }

            async fn list_remembered_browsers_page(
                &self,
                after: Option<RememberedBrowserId>,
                limit: usize,
            ) -> Result<Vec<RememberedBrowserRecord>, StoreError> {
                let after = after.map(|a| a.as_bytes().to_vec()).unwrap_or_default();
                let rows = sqlx::query(
                    "SELECT id, user_id, key_id, hash, created_at, expires_at, last_used_at, skips_second_factor \
                     FROM mfa_browsers WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(self.pool())
                .await
                .map_err(db_err)?;
                rows.iter().map(decode_browser).collect()
            }

            async fn list_totp_devices(
                &self,
                after: Option<DeviceId>,
                limit: usize,
            ) -> Result<Vec<DeviceRecord>, StoreError> {
                self.list_kind_page(sql::KIND_TOTP, after, limit).await
            }

            async fn list_webauthn_credentials(
                &self,
                after: Option<DeviceId>,
                limit: usize,
            ) -> Result<Vec<DeviceRecord>, StoreError> {
                self.list_kind_page(sql::KIND_WEBAUTHN, after, limit).await
            }

            async fn reseal_totp_secret(
                &self,
                user: &UserId,
                id: DeviceId,
                expected: &SealedSecret,
                new: &SealedSecret,
                fingerprint: &[u8; 32],
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE mfa_devices SET totp_secret = $1, totp_fingerprint = $6 WHERE id = $2 AND user_id = $3 \
                     AND kind = $4 AND totp_secret = $5",
                )
                .bind(new.to_bytes())
                .bind(id.as_bytes().to_vec())
                .bind(user.as_str())
                .bind(sql::KIND_TOTP)
                .bind(expected.to_bytes())
                .bind(fingerprint.to_vec())
                .execute(self.pool())
                .await
                .map_err(db_err)?;
                Ok(done.rows_affected() == 1)
            }
        }

        impl EnrollmentStore for $store {
            async fn enrollment_deadline(
                &self,
                user: &UserId,
                proposed: UnixTime,
            ) -> Result<crate::enrollment::EnrollmentGrace, StoreError> {
                // One statement: insert, or keep the stored deadline and return it.
                let (deadline, skipped): (i64, i64) = sqlx::query_as(
                    "INSERT INTO mfa_enrollment_deadlines (user_id, deadline) VALUES ($1, $2) \
                     ON CONFLICT (user_id) DO UPDATE SET deadline = mfa_enrollment_deadlines.deadline \
                     RETURNING deadline, skipped",
                )
                .bind(user.as_str())
                .bind(sql::to_db(proposed.as_secs())?)
                .fetch_one(self.pool())
                .await
                .map_err(db_err)?;
                Ok(crate::enrollment::EnrollmentGrace::new(
                    UnixTime::from_secs(sql::from_db(deadline, "mfa_enrollment_deadlines.deadline")?),
                    sql::skipped_from_db(skipped)?,
                ))
            }

            async fn skip_enrollment_prompt(
                &self,
                user: &UserId,
                proposed: UnixTime,
                max: u32,
            ) -> Result<Option<u32>, StoreError> {
                if max == 0 {
                    return Ok(None);
                }
                // One statement: a first skip inserts, a later one counts only below `max`
                // (no row comes back when it does not).
                let skipped: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO mfa_enrollment_deadlines (user_id, deadline, skipped) VALUES ($1, $2, 1) \
                     ON CONFLICT (user_id) DO UPDATE SET skipped = mfa_enrollment_deadlines.skipped + 1 \
                     WHERE mfa_enrollment_deadlines.skipped < $3 \
                     RETURNING skipped",
                )
                .bind(user.as_str())
                .bind(sql::to_db(proposed.as_secs())?)
                .bind(i64::from(max))
                .fetch_optional(self.pool())
                .await
                .map_err(db_err)?;
                skipped.map(sql::skipped_from_db).transpose()
            }

            async fn set_enrollment_deadline(&self, user: &UserId, deadline: UnixTime) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO mfa_enrollment_deadlines (user_id, deadline) VALUES ($1, $2) \
                     ON CONFLICT (user_id) DO UPDATE SET deadline = excluded.deadline, skipped = 0",
                )
                .bind(user.as_str())
                .bind(sql::to_db(deadline.as_secs())?)
                .execute(self.pool())
                .await
                .map_err(db_err)?;
                Ok(())
            }
        }

        const SELECT_DEVICE: &str =
            $crate::store::sql::select_devices_sql!("WHERE d.id = $1 AND d.user_id = $2");
        const SELECT_USER_DEVICES: &str =
            $crate::store::sql::select_devices_sql!("WHERE d.user_id = $1 ORDER BY d.created_at, d.id");
        /// The user's devices of one kind, each row also carrying the user's state row and the
        /// counter of that factor if it is kept in `mfa_throttles`. Binds: user, factor, kind.
        const SELECT_VERIFICATION_STATE: &str = $crate::store::sql::select_devices_sql!(
            ", t.failures AS t_failures, t.last_failure_at AS t_last_failure_at, t.budget_until AS t_budget_until, \
             t.last_miss AS t_last_miss, CAST(s.version AS BIGINT) AS s_version, s.totp_counter AS s_totp_counter, \
             s.codes_counter AS s_codes_counter",
            "LEFT JOIN mfa_throttles t ON t.user_id = d.user_id AND t.factor = $2 ",
            "WHERE d.user_id = $1 AND d.kind = $3 ORDER BY d.created_at, d.id"
        );
        /// A page of one kind's devices of all users, by id. Binds: kind, after, limit.
        const SELECT_KIND_PAGE: &str =
            $crate::store::sql::select_devices_sql!("WHERE d.kind = $1 AND d.id > $2 ORDER BY d.id LIMIT $3");
        const SELECT_CREDENTIAL: &str =
            $crate::store::sql::select_devices_sql!("WHERE d.credential_id = $1");
    };
}

pub(crate) use sql_device_store;
