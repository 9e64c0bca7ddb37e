//! `PostgresStore` against a real PostgreSQL server: the conformance suite with its races, two
//! independent pools ("two app servers") racing on one database, migrations, corrupt rows, and
//! what lands in the tables.
//!
//! Without `DATABASE_URL`, a throwaway cluster is started from the locally installed binaries
//! and removed afterwards. Without any PostgreSQL the tests are skipped loudly, except under
//! `CI=true`, where that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use multifactor::CeremonyStore as _;
use multifactor_kit::{cluster, libtest};

/// The fleet rules at registration and sign-in, the scenarios the in-memory store and SQLite
/// run in the WebAuthn tests.
#[path = "../webauthn/fleet.rs"]
mod fleet;

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use multifactor::conformance as suite;
use multifactor::store::{CeremonyKind, ThrottleState, WebAuthnUse};
use multifactor::totp::TotpParams;
use multifactor::totp::{code_at, decode_base32_secret};
use multifactor::{
    DeviceStore, Error, InsecureSeededRng, KeyId, Keyring, ManualClock, Mfa, MfaConfig, Outcome, PostgresStore,
    SealingKey, StoreError, UnixTime, UserId,
};

type Check = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Rounds of each race between two app servers.
const TWO_SERVER_ROUNDS: usize = 50;

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn admin_create(url: &str, name: &str) -> Result<(), String> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await.map_err(fail)?;
    let drop = format!("DROP DATABASE IF EXISTS {name}");
    let create = format!("CREATE DATABASE {name}");
    sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(&mut conn)
        .await
        .map_err(fail)?;
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&mut conn)
        .await
        .map_err(fail)?;
    Ok(())
}

async fn migrated(url: &str, max: u32) -> Result<PostgresStore, String> {
    let store = PostgresStore::connect_with(url, max).await.map_err(fail)?;
    store.migrate().await.map_err(fail)?;
    Ok(store)
}

fn conformance(url: String) -> Vec<(&'static str, Check)> {
    macro_rules! plain {
        ($($name:ident),*) => {
            vec![$((
                stringify!($name),
                Box::pin({
                    let url = url.clone();
                    async move {
                        let store = PostgresStore::connect(&url).await.map_err(fail)?;
                        suite::$name(&store).await.map_err(fail)
                    }
                }) as Check,
            )),*]
        };
    }
    macro_rules! race {
        ($($name:ident),*) => {
            vec![$((
                stringify!($name),
                Box::pin({
                    let url = url.clone();
                    async move {
                        let store = Arc::new(PostgresStore::connect_with(&url, 32).await.map_err(fail)?);
                        for round in 0..20 {
                            suite::$name(store.clone()).await.map_err(|e| format!("round {round}: {e}"))?;
                        }
                        Ok(())
                    }
                }) as Check,
            )),*]
        };
    }
    // Every check of the suite's one list.
    macro_rules! all {
        (; sequential: [$($sequential:ident),*]; race: [$($race:ident),*]) => {{
            let mut checks = plain!($($sequential),*);
            checks.extend(race!($($race),*));
            checks
        }};
    }
    multifactor::conformance_checks!(all!())
}

/// Runs `op` from 64 tasks, alternating between the two stores, released together.
async fn two_server_race<F, Fut>(a: &Arc<PostgresStore>, b: &Arc<PostgresStore>, op: F) -> Result<usize, String>
where
    F: Fn(Arc<PostgresStore>, usize) -> Fut,
    Fut: Future<Output = Result<bool, StoreError>> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(suite::RACERS));
    let mut tasks = Vec::new();
    for i in 0..suite::RACERS {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let fut = op(store, i);
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            fut.await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.map_err(fail)?.map_err(fail)?);
    }
    Ok(wins)
}

fn user(tag: &str, round: usize) -> UserId {
    UserId::new(format!("{tag}-{round}")).unwrap()
}

async fn two_app_servers(url: String) -> Result<(), String> {
    let a = Arc::new(migrated(&url, 16).await?);
    let b = Arc::new(PostgresStore::connect_with(&url, 16).await.map_err(fail)?);
    let now = UnixTime::from_secs(1_800_000_000);
    for round in 0..TWO_SERVER_ROUNDS {
        let u = user("codes", round);
        let set = suite::backup_record(&u, 1, 6).map_err(fail)?;
        a.insert_device(set.clone()).await.map_err(fail)?;
        let wins = two_server_race(&a, &b, |s, _| {
            let u = u.clone();
            async move {
                s.consume_backup_code(&u, set.id, 4, now, ThrottleState::default())
                    .await
            }
        })
        .await?;
        if wins != 1 {
            return Err(format!(
                "round {round}: backup code consumed {wins} times across two servers"
            ));
        }

        let u = user("totp", round);
        let totp = suite::totp_record(&u, 1).map_err(fail)?;
        b.insert_device(totp.clone()).await.map_err(fail)?;
        let wins = two_server_race(&a, &b, |s, _| {
            let u = u.clone();
            async move {
                s.accept_totp_step(&u, totp.id, 60_000_000, now, ThrottleState::default())
                    .await
            }
        })
        .await?;
        if wins != 1 {
            return Err(format!(
                "round {round}: TOTP step accepted {wins} times across two servers"
            ));
        }

        let u = user("ceremony", round);
        let ceremony = suite::ceremony_record(Some(&u), CeremonyKind::SecondFactor, suite::LIVE).map_err(fail)?;
        a.insert_ceremony(ceremony.clone()).await.map_err(fail)?;
        let wins = two_server_race(&a, &b, |s, _| {
            let u = u.clone();
            async move {
                s.take_ceremony(ceremony.id, Some(&u), CeremonyKind::SecondFactor, now)
                    .await
                    .map(|c| c.is_some())
            }
        })
        .await?;
        if wins != 1 {
            return Err(format!("round {round}: ceremony taken {wins} times across two servers"));
        }

        let u = user("counter", round);
        let cred = suite::webauthn_record(&u, 1, suite::fresh_credential_id().map_err(fail)?, true).map_err(fail)?;
        b.insert_device(cred.clone()).await.map_err(fail)?;
        let wins = two_server_race(&a, &b, |s, i| {
            let u = u.clone();
            let update = WebAuthnUse {
                sign_count: 8 + i as u32,
                backup_eligible: true,
                backup_state: false,
            };
            async move { s.record_webauthn_use(&u, cred.id, 7, update, now).await }
        })
        .await?;
        if wins != 1 {
            return Err(format!(
                "round {round}: counter swapped {wins} times across two servers"
            ));
        }
    }
    Ok(())
}

/// Every server connection of the database is killed while the store holds them idle (a
/// server restart, a failover, an idle timeout): each verification after that either succeeds
/// or fails with a store error, never "rejected" and never a wrong acceptance, and within a few
/// calls every connection is replaced and verifications succeed again.
async fn killed_connections(admin: String, url: String) -> Result<(), String> {
    use sqlx::Connection as _;
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let mfa = Arc::new(mfa_on(migrated(&url, 4).await?, &clock, 3));
    // At start, as a host does: the key check is behind us before any connection dies.
    mfa.check_keys().await.map_err(fail)?;
    let u = user("killed", 0);
    let secret = multifactor::SecretBytes::new((1..=20).collect());
    let encoded = multifactor::totp::encode_base32_secret(&secret);
    mfa.import_totp(&u, encoded.expose_secret(), None).await.map_err(fail)?;
    let set = mfa.generate_backup_codes(&u, None).await.map_err(fail)?;
    let verify = |mfa: Arc<Mfa<PostgresStore, ManualClock, InsecureSeededRng>>, clock: ManualClock| {
        let (u, secret) = (u.clone(), secret.clone());
        async move {
            clock.advance(30);
            let code = code_at(&secret, &TotpParams::default(), clock.now());
            mfa.verify_totp(&u, code.expose_secret()).await
        }
    };
    // Warm: four leases open and idle.
    let warm: Vec<_> = (0..4)
        .map(|_| tokio::spawn(verify(mfa.clone(), clock.clone())))
        .collect();
    for task in warm {
        let outcome = task.await.map_err(fail)?.map_err(fail)?;
        if !outcome.is_accepted() && !matches!(outcome, Outcome::Rejected) {
            return Err(format!("warm-up: {outcome:?}"));
        }
    }
    let mut admin_conn = sqlx::PgConnection::connect(&admin).await.map_err(fail)?;
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = 'killed' AND pid <> pg_backend_pid()) k",
    )
    .fetch_one(&mut admin_conn)
    .await
    .map_err(fail)?;
    if killed == 0 {
        return Err("no connection was killed".into());
    }
    let mut errors: i64 = 0;
    let mut accepted_after = 0;
    for _ in 0..12 {
        match verify(mfa.clone(), clock.clone()).await {
            Ok(outcome) if outcome.is_accepted() => accepted_after += 1,
            Ok(other) => return Err(format!("after the kill a valid code gave {other:?}")),
            Err(Error::Store(_)) => errors += 1,
            Err(other) => return Err(format!("after the kill: {other}")),
        }
    }
    println!("    {killed} connections killed: then {errors} store errors, {accepted_after} of 12 accepted");
    // Each killed connection fails at most the one call that finds it dead.
    if errors > killed {
        return Err(format!("{errors} store errors after {killed} connections were killed"));
    }
    // Every dead connection has been met by now: the store has recovered.
    for _ in 0..3 {
        let outcome = verify(mfa.clone(), clock.clone()).await.map_err(fail)?;
        if !outcome.is_accepted() {
            return Err(format!("after recovery a valid code gave {outcome:?}"));
        }
    }
    let code = set.codes[0].expose_secret().to_owned();
    if !mfa.verify_backup_code(&u, &code).await.map_err(fail)?.is_accepted() {
        return Err("a backup code was refused after the store recovered".into());
    }
    Ok(())
}

fn mfa_on(store: PostgresStore, clock: &ManualClock, seed: u64) -> Mfa<PostgresStore, ManualClock, InsecureSeededRng> {
    let keys = Keyring::new(SealingKey::new(KeyId::new("k1").unwrap(), [7; 32]));
    Mfa::new(store, keys, MfaConfig::new("PG").unwrap())
        .unwrap()
        .with_clock(clock.clone())
        .with_rng(InsecureSeededRng::new(seed))
}

/// A store on the application's own pool: it does not migrate on its own, and once migrated
/// it verifies (on connections of its own, opened with the pool's options) as a store that
/// connected itself does.
async fn from_pool(url: String) -> Result<(), String> {
    let pool = sqlx::PgPool::connect(&url).await.map_err(fail)?;
    let store = PostgresStore::from_pool(pool.clone()).await.map_err(fail)?;
    if store.schema_version().await.map_err(fail)?.is_some() {
        return Err("a store on a pool migrated on its own".into());
    }
    store.migrate().await.map_err(fail)?;
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let mfa = mfa_on(store, &clock, 3);
    let alice = UserId::new("alice").map_err(fail)?;
    let set = mfa.generate_backup_codes(&alice, None).await.map_err(fail)?;
    let first = set.codes.first().ok_or("no code")?;
    let accepted = mfa
        .verify_backup_code(&alice, first.expose_secret())
        .await
        .map_err(fail)?;
    let again = mfa
        .verify_backup_code(&alice, first.expose_secret())
        .await
        .map_err(fail)?;
    if !accepted.is_accepted() || again != Outcome::Rejected {
        return Err(format!("a code on a store from a pool: {accepted:?}, then {again:?}"));
    }
    // What it wrote is in the application's database.
    let spent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mfa_user_state WHERE codes_used_at IS NOT NULL")
        .fetch_one(&pool)
        .await
        .map_err(fail)?;
    if spent != 1 {
        return Err(format!("{spent} state rows record a spent code"));
    }
    Ok(())
}

/// Two app servers (two pools, two services) receive the same valid codes at once.
async fn two_app_servers_service(url: String) -> Result<(), String> {
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let a = Arc::new(mfa_on(migrated(&url, 16).await?, &clock, 1));
    let b = Arc::new(mfa_on(
        PostgresStore::connect_with(&url, 16).await.map_err(fail)?,
        &clock,
        2,
    ));
    for round in 0..10 {
        let u = user("service", round);
        let set = a.generate_backup_codes(&u, None).await.map_err(fail)?;
        let code = set.codes[1].expose_secret().to_owned();
        let enrollment = b.enroll_totp(&u, "u@example.com", None).await.map_err(fail)?;
        let secret = decode_base32_secret(enrollment.secret_base32.expose_secret()).map_err(fail)?;
        let first = code_at(&secret, &TotpParams::default(), clock.now());
        if !a
            .confirm_totp(&u, enrollment.device, first.expose_secret())
            .await
            .map_err(fail)?
            .is_accepted()
        {
            return Err("confirmation refused".into());
        }
        clock.advance(30);
        let totp = code_at(&secret, &TotpParams::default(), clock.now())
            .expose_secret()
            .to_owned();
        let barrier = Arc::new(tokio::sync::Barrier::new(64));
        let mut tasks = Vec::new();
        for i in 0..64 {
            let mfa = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (u, code, totp, barrier) = (u.clone(), code.clone(), totp.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                if i % 4 < 2 {
                    (0, mfa.verify_backup_code(&u, &code).await)
                } else {
                    (1, mfa.verify_totp(&u, &totp).await)
                }
            }));
        }
        let mut accepted = [0, 0];
        for t in tasks {
            let (which, outcome) = t.await.map_err(fail)?;
            match outcome.map_err(fail)? {
                Outcome::Accepted(_) => accepted[which] += 1,
                Outcome::Rejected | Outcome::Throttled { .. } => {}
                other => return Err(format!("unexpected {other:?}")),
            }
        }
        if accepted != [1, 1] {
            return Err(format!("round {round}: [backup, totp] acceptances {accepted:?}"));
        }
    }
    // Counter-based (HOTP) codes: each is accepted once across both servers, and a server that
    // verified the last one never holds a stale counter (its devices are read fresh).
    for round in 0..5 {
        let u = user("hotp", round);
        let enrollment = a.enroll_hotp(&u, "u@example.com", None).await.map_err(fail)?;
        let import = multifactor::totp::TotpImport::parse(enrollment.key_uri.expose_secret()).map_err(fail)?;
        let at = |c: u64| {
            multifactor::totp::code_for_step(&import.secret, &import.params, c)
                .expose_secret()
                .to_owned()
        };
        if !b
            .confirm_totp(&u, enrollment.device, &at(0))
            .await
            .map_err(fail)?
            .is_accepted()
        {
            return Err("hotp confirmation refused".into());
        }
        for counter in 1..=2 {
            let barrier = Arc::new(tokio::sync::Barrier::new(16));
            let mut tasks = Vec::new();
            for i in 0..16 {
                let mfa = if i % 2 == 0 { a.clone() } else { b.clone() };
                let (u, code, barrier) = (u.clone(), at(counter), barrier.clone());
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    mfa.verify_totp(&u, &code).await
                }));
            }
            let mut accepted = 0;
            for t in tasks {
                accepted += usize::from(t.await.map_err(fail)?.map_err(fail)?.is_accepted());
            }
            if accepted != 1 {
                return Err(format!("hotp round {round}, counter {counter}: {accepted} acceptances"));
            }
            // Past the backoff the racers' losses earned.
            clock.advance(3_600);
        }
    }
    // Two servers with warm verification caches, each on its own pool: changes and locks made
    // by one are seen by the other, with the same calls for a right and a wrong code.
    let pool_a = Arc::new(PostgresStore::connect_with(&url, 16).await.map_err(fail)?);
    let pool_b = Arc::new(PostgresStore::connect_with(&url, 16).await.map_err(fail)?);
    for round in 0..5 {
        suite::cached_verification_between(pool_a.clone(), pool_b.clone())
            .await
            .map_err(|e| format!("round {round}: {e}"))?;
    }
    Ok(())
}

/// Takes a version-13 database back to version 10, losing nothing: the AAGUIDs back into the
/// credentials' JSON as the earlier versions wrote it (v12), the browser records under their
/// first table name (v11), then the last steps, last uses and unused-code masks back into the
/// device rows, the code factors' counters back into `mfa_throttles`, and no state rows.
const TO_V10: [&str; 18] = [
    "UPDATE mfa_devices SET credential = convert_to(left(convert_from(credential, 'UTF8'), -1) \
     || CASE WHEN convert_from(credential, 'UTF8') = '{}' THEN '' ELSE ',' END \
     || '\"multifactor_aaguid\":\"' || encode(aaguid, 'hex')::uuid::text || '\"}', 'UTF8') WHERE aaguid IS NOT NULL",
    "ALTER TABLE mfa_devices DROP COLUMN aaguid",
    "ALTER TABLE mfa_browsers RENAME TO mfa_trusted_devices",
    "ALTER INDEX mfa_browsers_by_user RENAME TO mfa_trusted_devices_by_user",
    "ALTER INDEX mfa_browsers_pkey RENAME TO mfa_trusted_devices_pkey",
    "DROP INDEX mfa_devices_by_user",
    "CREATE INDEX mfa_devices_by_user ON mfa_devices (user_id, created_at, id)",
    "DROP INDEX mfa_devices_totp_fingerprint",
    "CREATE UNIQUE INDEX mfa_devices_totp_fingerprint ON mfa_devices (user_id, totp_fingerprint)",
    "DROP INDEX mfa_devices_credential_id",
    "ALTER TABLE mfa_devices ADD CONSTRAINT mfa_devices_credential_id_key UNIQUE (credential_id)",
    "ALTER TABLE mfa_devices ADD COLUMN totp_last_step BIGINT, ADD COLUMN codes_unused BIGINT",
    "UPDATE mfa_devices d SET totp_last_step = NULLIF(('x' || encode(substring(s.totp_marks FROM position(d.id IN s.totp_marks) + 16 FOR 8), 'hex'))::bit(64)::bigint, 0) - 1, \
     last_used_at = NULLIF(('x' || encode(substring(s.totp_marks FROM position(d.id IN s.totp_marks) + 24 FOR 8), 'hex'))::bit(64)::bigint, 0) - 1, \
     confirmed = d.confirmed OR ('x' || encode(substring(s.totp_marks FROM position(d.id IN s.totp_marks) + 24 FOR 8), 'hex'))::bit(64)::bigint <> 0 \
     FROM mfa_user_state s WHERE s.user_id = d.user_id AND d.kind = 'totp' AND position(d.id IN s.totp_marks) % 32 = 1",
    "UPDATE mfa_devices d SET codes_unused = s.codes_unused, last_used_at = s.codes_used_at FROM mfa_user_state s \
     WHERE s.codes_set = d.id AND s.user_id = d.user_id",
    "INSERT INTO mfa_throttles (user_id, factor, failures, last_failure_at, budget_until, last_miss) \
     SELECT user_id, 'totp', ('x' || encode(substring(totp_counter FROM 2 FOR 8), 'hex'))::bit(64)::bigint, \
     CASE WHEN get_byte(totp_counter, 0) & 1 = 1 THEN ('x' || encode(substring(totp_counter FROM 10 FOR 8), 'hex'))::bit(64)::bigint END, \
     CASE WHEN get_byte(totp_counter, 0) & 2 = 2 THEN ('x' || encode(substring(totp_counter FROM 18 FOR 8), 'hex'))::bit(64)::bigint END, \
     CASE WHEN get_byte(totp_counter, 0) & 4 = 4 THEN ('x' || encode(substring(totp_counter FROM 26 FOR 8), 'hex'))::bit(64)::bigint END \
     FROM mfa_user_state WHERE length(totp_counter) > 0",
    "INSERT INTO mfa_throttles (user_id, factor, failures, last_failure_at, budget_until, last_miss) \
     SELECT user_id, 'backup_codes', ('x' || encode(substring(codes_counter FROM 2 FOR 8), 'hex'))::bit(64)::bigint, \
     CASE WHEN get_byte(codes_counter, 0) & 1 = 1 THEN ('x' || encode(substring(codes_counter FROM 10 FOR 8), 'hex'))::bit(64)::bigint END, \
     CASE WHEN get_byte(codes_counter, 0) & 2 = 2 THEN ('x' || encode(substring(codes_counter FROM 18 FOR 8), 'hex'))::bit(64)::bigint END, \
     CASE WHEN get_byte(codes_counter, 0) & 4 = 4 THEN ('x' || encode(substring(codes_counter FROM 26 FOR 8), 'hex'))::bit(64)::bigint END \
     FROM mfa_user_state WHERE length(codes_counter) > 0",
    "DROP TABLE mfa_user_state",
    "UPDATE mfa_schema_version SET version = 10",
];

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

/// Takes a version-4 database back to version 3: one row per backup code, unpacked from the
/// set's row (the settlement function stays; the v4 migration replaces it).
const TO_V3: [&str; 4] = [
    "CREATE TABLE mfa_backup_codes (
        device_id BYTEA NOT NULL REFERENCES mfa_devices (id) ON DELETE CASCADE,
        slot BIGINT NOT NULL,
        hash BYTEA NOT NULL,
        used BOOLEAN NOT NULL,
        PRIMARY KEY (device_id, slot)
    )",
    "INSERT INTO mfa_backup_codes (device_id, slot, hash, used)
     SELECT d.id, s, substring(d.codes_hashes FROM s * 32 + 1 FOR 32), ((d.codes_unused >> s) & 1) = 0
     FROM mfa_devices d, generate_series(0, length(d.codes_hashes) / 32 - 1) s WHERE d.kind = 'backup_codes'",
    "ALTER TABLE mfa_devices DROP COLUMN codes_hashes, DROP COLUMN codes_unused",
    "UPDATE mfa_schema_version SET version = 3",
];

async fn migrations(url: String) -> Result<(), String> {
    let store = PostgresStore::connect(&url).await.map_err(fail)?;
    if store.schema_version().await.map_err(fail)?.is_some() {
        return Err("a fresh database has a schema version".into());
    }
    // Eight processes migrating at once, then again: all fine, one schema.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move { migrated(&url, 2).await.map(|_| ()) }));
    }
    for t in tasks {
        t.await.map_err(fail)??;
    }
    store.migrate().await.map_err(fail)?;
    if store.schema_version().await.map_err(fail)? != Some(13) {
        return Err("schema version is not the latest after migrating".into());
    }
    let versions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mfa_schema_version")
        .fetch_one(&sqlx::PgPool::connect(&url).await.map_err(fail)?)
        .await
        .map_err(fail)?;
    if versions != 1 {
        return Err(format!("{versions} version rows after concurrent migrations"));
    }
    // A version-4 database keeps what it has: its remember-this-browser tokens (every browser
    // record of version 4 is one) still skip the second factor, and its counters keep their state.
    let raw = sqlx::PgPool::connect(&url).await.map_err(fail)?;
    {
        let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
        let m = mfa_on(PostgresStore::connect(&url).await.map_err(fail)?, &clock, 4);
        let v4 = UserId::new("v4").map_err(fail)?;
        let set = m.generate_backup_codes(&v4, None).await.map_err(fail)?;
        let Outcome::Accepted(v) = m
            .verify_backup_code(&v4, set.codes[0].expose_secret())
            .await
            .map_err(fail)?
        else {
            return Err("a version-4 backup code was refused".into());
        };
        let token = m.remember_browser(&v).await.map_err(fail)?;
        for wrong in ["zzzz-zzzz-zzzz0", "zzzz-zzzz-zzzz1"] {
            if m.verify_backup_code(&v4, wrong).await.map_err(fail)? != Outcome::Rejected {
                return Err("a wrong version-4 backup code was not rejected".into());
            }
        }
        let counter = multifactor::Factor::BackupCodes.into();
        let before = m.store().throttle(&v4, counter).await.map_err(fail)?;
        for statement in TO_V10
            .into_iter()
            .chain(TO_V9)
            .chain(TO_V8)
            .chain(TO_V6)
            .chain(TO_V5)
            .chain(TO_V4)
        {
            sqlx::query(statement).execute(&raw).await.map_err(fail)?;
        }
        store.migrate().await.map_err(fail)?;
        if !m
            .check_remembered_browser(&v4, token.token.expose_secret())
            .await
            .map_err(fail)?
        {
            return Err("a version-4 remembered browser no longer skips the second factor".into());
        }
        let after = m.store().throttle(&v4, counter).await.map_err(fail)?;
        if before.failures != 2
            || (
                after.failures,
                after.last_failure_at,
                after.budget_until,
                after.last_miss,
            ) != (before.failures, before.last_failure_at, before.budget_until, None)
        {
            return Err(format!("the upgrade changed a counter: {before:?} became {after:?}"));
        }
    }
    // A version-3 database (one row per backup code) is upgraded in place, losing no code and
    // no used mark: a 32-code set with two codes spent reads back the same after the upgrade.
    let v3 = UserId::new("v3").map_err(fail)?;
    let (_, codes) = multifactor::backup_codes::generate(
        &multifactor::InsecureSeededRng::new(6),
        &multifactor::backup_codes::BackupCodeConfig::new(
            32,
            multifactor::backup_codes::BackupCodeConfig::DEFAULT_LENGTH,
        )
        .map_err(fail)?,
        &multifactor::backup_codes::CodeKey::Legacy(None),
    )
    .map_err(fail)?;
    let mut v3_set = multifactor::store::DeviceRecord {
        id: multifactor::DeviceId::from_bytes([5; 16]),
        user: v3.clone(),
        name: multifactor::DeviceName::new("Codes").map_err(fail)?,
        created_at: UnixTime::from_secs(1),
        last_used_at: Some(UnixTime::from_secs(9)),
        confirmed: true,
        data: multifactor::store::DeviceData::BackupCodes(codes),
    };
    store.replace_backup_codes(v3_set.clone()).await.map_err(fail)?;
    for slot in [1, 31] {
        let spent = store
            .consume_backup_code(&v3, v3_set.id, slot, UnixTime::from_secs(9), ThrottleState::default())
            .await
            .map_err(fail)?;
        if !spent {
            return Err(format!("code {slot} was not spent"));
        }
        if let multifactor::store::DeviceData::BackupCodes(set) = &mut v3_set.data {
            set.slots[slot].used = true;
        }
    }
    for statement in TO_V10
        .into_iter()
        .chain(TO_V9)
        .chain(TO_V8)
        .chain(TO_V6)
        .chain(TO_V5)
        .chain(TO_V4)
        .chain(TO_V3)
    {
        sqlx::query(statement).execute(&raw).await.map_err(fail)?;
    }
    store.migrate().await.map_err(fail)?;
    if store.schema_version().await.map_err(fail)? != Some(13) {
        return Err("a version-3 database was not upgraded to the current version".into());
    }
    let back = store.device(&v3, v3_set.id).await.map_err(fail)?;
    if back.as_ref() != Some(&v3_set) {
        return Err(format!("the upgrade changed a backup-code set: {back:?}"));
    }
    // A version-2 database (no failure budget, no settlement function) is upgraded in place,
    // keeping the counters it has.
    let to_v2 = TO_V10
        .into_iter()
        .chain(TO_V9)
        .chain(TO_V8)
        .chain(TO_V6)
        .chain(TO_V5)
        .chain(TO_V4)
        .chain(TO_V3)
        .chain([
            "DROP FUNCTION IF EXISTS mfa_settle_attempt",
            "ALTER TABLE mfa_throttles DROP COLUMN budget_until",
            "ALTER TABLE mfa_devices DROP COLUMN codes_key_id",
            "INSERT INTO mfa_throttles (user_id, factor, failures, last_failure_at) VALUES ('v2', 'totp', 4, 77)",
            "UPDATE mfa_schema_version SET version = 2",
        ]);
    for statement in to_v2 {
        sqlx::query(statement).execute(&raw).await.map_err(fail)?;
    }
    store.migrate().await.map_err(fail)?;
    if store.schema_version().await.map_err(fail)? != Some(13) {
        return Err("a version-2 database was not upgraded to the current version".into());
    }
    let kept = store
        .throttle(&UserId::new("v2").map_err(fail)?, multifactor::Factor::Totp.into())
        .await
        .map_err(fail)?;
    if kept.failures != 4 || kept.budget_until.is_some() {
        return Err(format!("the upgrade lost a counter: {kept:?}"));
    }
    // A version-1 database is upgraded in place.
    for statement in TO_V10
        .into_iter()
        .chain(TO_V9)
        .chain(TO_V8)
        .chain(TO_V6)
        .chain(TO_V5)
        .chain(TO_V4)
        .chain(TO_V3)
        .chain([
            "DROP TABLE mfa_trusted_devices",
            "DROP FUNCTION IF EXISTS mfa_settle_attempt",
            "ALTER TABLE mfa_throttles DROP COLUMN budget_until",
            "ALTER TABLE mfa_devices DROP COLUMN codes_key_id",
            "UPDATE mfa_schema_version SET version = 1",
        ])
    {
        sqlx::query(statement).execute(&raw).await.map_err(fail)?;
    }
    store.migrate().await.map_err(fail)?;
    if store.schema_version().await.map_err(fail)? != Some(13) {
        return Err("a version-1 database was not upgraded to the current version".into());
    }
    let tables: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_tables WHERE tablename = 'mfa_browsers'")
        .fetch_one(&raw)
        .await
        .map_err(fail)?;
    if tables != 1 {
        return Err("the upgrade did not create mfa_browsers".into());
    }
    // A database from the future is refused, on connect and on migrate.
    sqlx::query("UPDATE mfa_schema_version SET version = 99")
        .execute(&raw)
        .await
        .map_err(fail)?;
    match PostgresStore::connect(&url).await {
        Err(StoreError::SchemaTooNew {
            found: 99,
            supported: 13,
        }) => {}
        other => return Err(format!("connect to a newer schema: {other:?}")),
    }
    match store.migrate().await {
        Err(e @ StoreError::SchemaTooNew { .. }) if e.to_string().contains("newer") => Ok(()),
        other => Err(format!("migrate of a newer schema: {other:?}")),
    }
}

/// A version-3 set whose slots are not 0..n-1 cannot be packed by slot number without
/// misreading it: the upgrade is refused, and the database stays version 3 with every row.
async fn v3_gap(url: String) -> Result<(), String> {
    let store = migrated(&url, 2).await?;
    let user = UserId::new("gap").map_err(fail)?;
    let set = multifactor::conformance::backup_record(&user, 1, 6).map_err(|e| e.to_string())?;
    store.replace_backup_codes(set).await.map_err(fail)?;
    let raw = sqlx::PgPool::connect(&url).await.map_err(fail)?;
    for statement in TO_V10
        .into_iter()
        .chain(TO_V9)
        .chain(TO_V8)
        .chain(TO_V6)
        .chain(TO_V5)
        .chain(TO_V4)
        .chain(TO_V3)
    {
        sqlx::query(statement).execute(&raw).await.map_err(fail)?;
    }
    sqlx::query("DELETE FROM mfa_backup_codes WHERE slot = 2")
        .execute(&raw)
        .await
        .map_err(fail)?;
    match store.migrate().await {
        Err(e) if e.to_string().contains("cannot be packed") => {}
        other => return Err(format!("the upgrade of a set with a gap: {other:?}")),
    }
    let version: i64 = sqlx::query_scalar("SELECT version FROM mfa_schema_version")
        .fetch_one(&raw)
        .await
        .map_err(fail)?;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mfa_backup_codes")
        .fetch_one(&raw)
        .await
        .map_err(fail)?;
    if (version, rows) != (3, 5) {
        return Err(format!("a refused upgrade left version {version} and {rows} rows"));
    }
    sqlx::query("UPDATE mfa_backup_codes SET slot = slot - 1 WHERE slot > 2")
        .execute(&raw)
        .await
        .map_err(fail)?;
    store.migrate().await.map_err(fail)?;
    if store.schema_version().await.map_err(fail)? != Some(13) {
        return Err("the set without a gap was not upgraded".into());
    }
    Ok(())
}

/// A version-10 database keeps everything a verification settles when the upgrade moves it
/// into the users' state rows: last steps and uses, unused codes, and every counter.
async fn v10_round_trip(url: String) -> Result<(), String> {
    let store = migrated(&url, 2).await?;
    let user = UserId::new("v10").map_err(fail)?;
    // On a task of its own: the kit's assertions panic.
    let filled = {
        let store = store.clone();
        let user = user.clone();
        tokio::spawn(async move { multifactor_kit::migration::fill(&store, &user).await })
    };
    let before = filled.await.map_err(fail)?;
    let raw = sqlx::PgPool::connect(&url).await.map_err(fail)?;
    for statement in TO_V10 {
        sqlx::query(statement).execute(&raw).await.map_err(fail)?;
    }
    let step: Option<i64> = sqlx::query_scalar("SELECT MAX(totp_last_step) FROM mfa_devices")
        .fetch_one(&raw)
        .await
        .map_err(fail)?;
    if step != Some(59_000_123) {
        return Err(format!("the downgrade read the last step as {step:?}"));
    }
    store.migrate().await.map_err(fail)?;
    if store.schema_version().await.map_err(fail)? != Some(13) {
        return Err("a version-10 database was not upgraded".into());
    }
    let after = tokio::spawn(async move { multifactor_kit::migration::snapshot(&store, &user).await })
        .await
        .map_err(fail)?;
    if after != before {
        return Err(format!("the upgrade changed the user's state:\n{before:?}\n{after:?}"));
    }
    Ok(())
}

/// A version-12 database kept each credential's AAGUID in its JSON, wherever serde put the key:
/// the upgrade moves it to the column and cuts it out of the JSON, leaving the rest's bytes.
async fn v12_aaguids(url: String) -> Result<(), String> {
    let store = migrated(&url, 2).await?;
    let user = UserId::new("v12").map_err(fail)?;
    let first = multifactor::conformance::webauthn_record(
        &user,
        1,
        multifactor::conformance::fresh_credential_id().map_err(fail)?,
        true,
    )
    .map_err(fail)?;
    let last = multifactor::conformance::webauthn_record(
        &user,
        2,
        multifactor::conformance::fresh_credential_id().map_err(fail)?,
        false,
    )
    .map_err(fail)?;
    store.insert_device(first.clone()).await.map_err(fail)?;
    store.insert_device(last.clone()).await.map_err(fail)?;
    let raw = sqlx::PgPool::connect(&url).await.map_err(fail)?;
    for (id, json) in [
        (
            first.id,
            r#"{"counter":7,"multifactor_aaguid":"cb69481e-8ff7-4039-93ec-0a2729a154a8","z":1}"#,
        ),
        (
            last.id,
            r#"{"multifactor_aaguid":"CB69481E-8FF7-4039-93EC-0A2729A154A8","counter":7}"#,
        ),
    ] {
        sqlx::query("UPDATE mfa_devices SET credential = convert_to($1, 'UTF8') WHERE id = $2")
            .bind(json)
            .bind(id.as_bytes().to_vec())
            .execute(&raw)
            .await
            .map_err(fail)?;
    }
    for statement in [
        "ALTER TABLE mfa_devices DROP COLUMN aaguid",
        "UPDATE mfa_schema_version SET version = 12",
    ] {
        sqlx::query(statement).execute(&raw).await.map_err(fail)?;
    }
    store.migrate().await.map_err(fail)?;
    let aaguid = [
        0xcb, 0x69, 0x48, 0x1e, 0x8f, 0xf7, 0x40, 0x39, 0x93, 0xec, 0x0a, 0x27, 0x29, 0xa1, 0x54, 0xa8,
    ];
    for (id, json) in [(first.id, r#"{"counter":7,"z":1}"#), (last.id, r#"{"counter":7}"#)] {
        let Some(multifactor::store::DeviceData::WebAuthn(w)) =
            store.device(&user, id).await.map_err(fail)?.map(|d| d.data)
        else {
            return Err("the credential is gone".into());
        };
        if w.aaguid != Some(aaguid) || w.credential != json.as_bytes() {
            return Err(format!(
                "upgraded to {:?} and {}",
                w.aaguid,
                String::from_utf8_lossy(&w.credential)
            ));
        }
    }
    Ok(())
}

/// The devices version is 4 bytes here: a change at its top wraps it to 0, and a settlement
/// admitted under the version before is stale.
async fn version_wraps(url: String) -> Result<(), String> {
    let store = migrated(&url, 2).await?;
    let raw = sqlx::PgPool::connect(&url).await.map_err(fail)?;
    // On a task of its own: the kit's assertions panic.
    tokio::spawn(async move {
        let user = UserId::new("wrap").unwrap();
        multifactor_kit::version::wraps(&store, &user, || async {
            sqlx::query("UPDATE mfa_user_state SET version = $1 WHERE user_id = 'wrap'")
                .bind(multifactor_kit::version::TOP)
                .execute(&raw)
                .await
                .unwrap();
        })
        .await;
    })
    .await
    .map_err(fail)
}

async fn corrupt_rows(url: String) -> Result<(), String> {
    let store = migrated(&url, 4).await?;
    let raw = sqlx::PgPool::connect(&url).await.map_err(fail)?;
    let cases: [(&str, &'static str); 4] = [
        (
            "kind",
            "INSERT INTO mfa_devices (id, user_id, kind, name, created_at, confirmed) VALUES ($1, $2, 'sms', 'x', 1, TRUE)",
        ),
        (
            "totp_secret",
            "INSERT INTO mfa_devices (id, user_id, kind, name, created_at, confirmed, totp_algorithm, totp_digits, totp_period, totp_secret) VALUES ($1, $2, 'totp', 'x', 1, TRUE, 'SHA1', 6, 30, '\\x0102')",
        ),
        (
            "totp_digits",
            "INSERT INTO mfa_devices (id, user_id, kind, name, created_at, confirmed, totp_algorithm, totp_digits, totp_period, totp_secret) VALUES ($1, $2, 'totp', 'x', 1, TRUE, 'SHA1', 99, 30, '\\x01')",
        ),
        (
            "id",
            "INSERT INTO mfa_devices (id, user_id, kind, name, created_at, confirmed) VALUES (substring($1 from 1 for 3), $2, 'totp', 'x', 1, TRUE)",
        ),
    ];
    for (i, (column, sql)) in cases.into_iter().enumerate() {
        let u = UserId::new(format!("corrupt-{i}")).unwrap();
        sqlx::query(sql)
            .bind(vec![i as u8; 16])
            .bind(u.as_str())
            .execute(&raw)
            .await
            .map_err(fail)?;
        match store.list_devices(&u).await {
            Err(StoreError::Corrupt(msg)) if msg.contains(column) => {}
            other => return Err(format!("{column}: {other:?}")),
        }
    }
    Ok(())
}

async fn no_plaintext_in_tables(url: String) -> Result<(), String> {
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let mfa = mfa_on(migrated(&url, 4).await?, &clock, 3);
    let u = UserId::new("plain").unwrap();
    let e = mfa.enroll_totp(&u, "plain@example.com", None).await.map_err(fail)?;
    let secret = decode_base32_secret(e.secret_base32.expose_secret()).map_err(fail)?;
    let set = mfa.generate_backup_codes(&u, None).await.map_err(fail)?;
    let raw = sqlx::PgPool::connect(&url).await.map_err(fail)?;
    let mut dump = String::new();
    for table in ["mfa_devices", "mfa_throttles", "mfa_ceremonies"] {
        let sql = format!("SELECT t::text FROM {table} t");
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&raw)
            .await
            .map_err(fail)?;
        dump.push_str(&rows.join("\n"));
    }
    let hex: String = secret.expose_secret().iter().map(|b| format!("{b:02x}")).collect();
    if dump.contains(e.secret_base32.expose_secret()) {
        return Err("the TOTP secret (base32) is in the tables".into());
    }
    if dump.contains(&hex) {
        return Err("the TOTP secret bytes are in the tables".into());
    }
    for code in &set.codes {
        let plain = code.expose_secret().replace('-', "");
        if dump.contains(code.expose_secret()) || dump.contains(&plain) {
            return Err("a backup code is in the tables".into());
        }
    }
    if !dump.contains("totp") || dump.len() < 200 {
        return Err("the dump is not the tables (the check could not fail)".into());
    }
    Ok(())
}

/// `mfactl import` on PostgreSQL: a batch with bad lines writes nothing and exits 2,
/// `--skip-bad` imports the rest, and a second run of the good file adds nothing.
async fn mfactl_import(url: String) -> Result<(), String> {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_mfactl"));
    let fixtures = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import");
    let run = |args: &[&str]| {
        std::process::Command::new(&bin)
            .arg("--db")
            .arg(&url)
            .args(args)
            .env("MFACTL_KEY", "22".repeat(32))
            .output()
            .map_err(|e| format!("{}: {e}", bin.display()))
    };
    let devices = || async {
        let store = PostgresStore::connect(&url).await.map_err(fail)?;
        let mut total = 0;
        for who in ["alice", "bob", "carol", "dave"] {
            total += store
                .list_devices(&UserId::new(who).map_err(fail)?)
                .await
                .map_err(fail)?
                .len();
        }
        Ok::<usize, String>(total)
    };
    let bad = fixtures.join("keycloak-bad.csv");
    let good = fixtures.join("keycloak.csv");
    let out = run(&["import", bad.to_str().ok_or("path")?, "--format", "keycloak"])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(2) || !stderr.contains("line 19: user \"erin\"") {
        return Err(format!("bad batch: {:?} {stderr}", out.status));
    }
    if devices().await? != 0 {
        return Err("a refused batch wrote devices".into());
    }
    let out = run(&[
        "import",
        bad.to_str().ok_or("path")?,
        "--format",
        "keycloak",
        "--skip-bad",
    ])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains("total                      5         0") {
        return Err(format!(
            "--skip-bad: {:?} {stdout} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if devices().await? != 5 {
        return Err(format!("{} devices after --skip-bad, not 5", devices().await?));
    }
    // The good file: the same five, present already, and dave's hotp credential and alice's
    // recovery codes, which the hostile file does not hold.
    let out = run(&["import", good.to_str().ok_or("path")?, "--format", "keycloak"])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains("total                      2         5") {
        return Err(format!("second run: {stdout}"));
    }
    let out = run(&["import", good.to_str().ok_or("path")?, "--format", "keycloak"])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains("total                      0         7") {
        return Err(format!("third run: {stdout}"));
    }
    if devices().await? != 7 {
        return Err("the third run added devices".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    let started = Instant::now();
    let cluster = match cluster::Cluster::start() {
        Ok(Ok(c)) => c,
        Ok(Err(cluster::Missing::NoBinaries(why))) => {
            return libtest::skip_suite(
                "PostgreSQL",
                &why,
                "Install the `postgresql` package or set DATABASE_URL to run them.",
            );
        }
        Err(e) => return libtest::setup_failed("could not start PostgreSQL", &e.to_string()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let admin = cluster.url.clone();
    let db = |name: &str| cluster.database_url(name);
    let results = runtime.block_on(async {
        let mut checks: Vec<(&'static str, Check)> = Vec::new();
        for name in [
            "conformance",
            "two_servers",
            "two_services",
            "migrations",
            "corrupt",
            "plaintext",
            "killed",
            "import",
            "v3_gap",
            "v10",
            "v12",
            "wrap",
            "from_pool",
            "fleet_denied",
            "fleet_synced",
            "fleet_lists",
            "fleet_inventory",
        ] {
            admin_create(&admin, name).await?;
        }
        let conformance_url = db("conformance");
        let setup: Check = Box::pin(async move { migrated(&conformance_url, 4).await.map(|_| ()) });
        checks.push(("migrate_conformance_database", setup));
        checks.extend(conformance(db("conformance")));
        checks.push((
            "two_app_servers_race_on_store_operations",
            Box::pin(two_app_servers(db("two_servers"))),
        ));
        checks.push((
            "two_app_servers_race_on_codes_through_the_service",
            Box::pin(two_app_servers_service(db("two_services"))),
        ));
        checks.push((
            "migrations_idempotent_concurrent_and_newer_schema_refused",
            Box::pin(migrations(db("migrations"))),
        ));
        checks.push(("corrupt_rows_are_typed_errors", Box::pin(corrupt_rows(db("corrupt")))));
        checks.push((
            "a_version_3_set_with_a_gap_is_refused_not_misread",
            Box::pin(v3_gap(db("v3_gap"))),
        ));
        checks.push((
            "a_version_10_database_keeps_its_steps_codes_and_counters",
            Box::pin(v10_round_trip(db("v10"))),
        ));
        checks.push((
            "a_version_12_database_moves_its_aaguids_to_their_column",
            Box::pin(v12_aaguids(db("v12"))),
        ));
        checks.push((
            "a_store_on_the_applications_pool_migrates_when_asked_and_verifies",
            Box::pin(from_pool(db("from_pool"))),
        ));
        checks.push((
            "the_devices_version_wraps_from_its_top_to_zero",
            Box::pin(version_wraps(db("wrap"))),
        ));
        checks.push((
            "no_plaintext_secret_in_any_table",
            Box::pin(no_plaintext_in_tables(db("plaintext"))),
        ));
        checks.push((
            "killed_connections_fail_at_most_once_each_then_recover",
            Box::pin(killed_connections(admin.clone(), db("killed"))),
        ));
        checks.push((
            "mfactl_import_refuses_bad_batches_and_adds_nothing_twice",
            Box::pin(mfactl_import(db("import"))),
        ));
        // Each on a database of its own (the inventory lists every user's credentials), on
        // a task of its own (their assertions panic; a panic fails that check, not the run).
        macro_rules! fleet {
            ($($scenario:ident on $db:literal),* $(,)?) => {$(
                let url = db($db);
                checks.push((
                    stringify!($scenario),
                    Box::pin(async move {
                        let store = migrated(&url, 4).await?;
                        tokio::spawn(fleet::$scenario(store)).await.map_err(fail)
                    }),
                ));
            )*};
        }
        fleet!(
            a_model_denied_later_is_refused_at_the_next_sign_in on "fleet_denied",
            a_device_bound_rule_refuses_a_key_that_became_synced on "fleet_synced",
            allow_lists_and_attestation_refuse_what_they_do_not_know on "fleet_lists",
            the_inventory_lists_across_users_and_a_model_is_revoked_in_bulk on "fleet_inventory",
        );
        let mut results = Vec::new();
        for (name, check) in checks {
            let result = check.await;
            libtest::case(name, &result);
            results.push(result.is_ok());
        }
        Ok::<_, String>(results)
    });
    drop(cluster);
    let results = match results {
        Ok(r) => r,
        Err(e) => return libtest::setup_failed("setup failed", &e),
    };
    libtest::summary(&results, started)
}
