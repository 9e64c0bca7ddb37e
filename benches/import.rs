//! Importing 10,000 users from another system, on `SqliteStore` and `PostgresStore`: criterion
//! group `import_10k_users`, one function per store, the time of `Mfa::import_batch` over a
//! Keycloak export of 10,000 users with one TOTP credential each (`otp` rows, the most common
//! case), into a fresh, empty database each iteration. Reading the file
//! (`ImportBatch::parse`) is the separate function `parse` (no store).
//!
//! Each import checks every entry against the store first (its user's devices), then writes
//! each device in its own transaction: for SQLite (WAL, `synchronous = FULL`) one sync per
//! user. PostgreSQL is `DATABASE_URL` if set, else a throwaway cluster from the local binaries
//! (`fsync=off`); without PostgreSQL its function is skipped, loudly. Divide by 10,000 for the
//! time per user (criterion's throughput line says users per second).
//!
//! Run with `cargo bench --bench import` (a few minutes).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use multifactor::import::{ImportBatch, ImportFormat, ImportOptions};
use multifactor::{KeyId, Keyring, Mfa, MfaConfig, PostgresStore, SealingKey, SqliteStore, Store};
use multifactor_kit::bench::TempDb;
use multifactor_kit::cluster;
use tokio::runtime::Runtime;

const USERS: usize = 10_000;

/// A Keycloak `credential` export: one `otp` row per user, Keycloak's 20-character secrets.
fn keycloak_export() -> String {
    let mut text = String::from("username,user_id,type,user_label,secret_data,credential_data\n");
    for i in 0..USERS {
        let secret = format!("{i:0>20}");
        text.push_str(&format!(
            "user{i},{i:08x}-0000-4000-8000-000000000000,otp,\"Phone\",\"{{\"\"value\"\":\"\"{secret}\"\"}}\",\
             \"{{\"\"subType\"\":\"\"totp\"\",\"\"digits\"\":6,\"\"counter\"\":0,\"\"period\"\":30,\"\"algorithm\"\":\"\"HmacSHA1\"\"}}\"\n"
        ));
    }
    text
}

fn service<S: Store>(store: S) -> Mfa<S> {
    let keys = Keyring::new(SealingKey::new(KeyId::new("k1").unwrap(), [5; 32]));
    Mfa::new(store, keys, MfaConfig::new("Bench").unwrap()).unwrap()
}

async fn import_once<S: Store>(mfa: &Mfa<S>, batch: &ImportBatch) -> Duration {
    let started = Instant::now();
    let report = mfa
        .import_batch(batch, ImportOptions::default(), |_, _| {})
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(report.results.len(), USERS);
    assert!(report.problems.is_empty());
    elapsed
}

async fn fresh_postgres(admin: &str, url: &str) -> PostgresStore {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    for sql in [
        "DROP DATABASE IF EXISTS mfa_import_bench WITH (FORCE)",
        "CREATE DATABASE mfa_import_bench",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
    let store = PostgresStore::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    store
}

fn main() {
    let mut criterion = Criterion::default()
        // Ten imports per store: each is one sample of one iteration (seconds long).
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(45))
        .sample_size(10)
        .configure_from_args();
    let rt: Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let text = keycloak_export();
    let batch = ImportBatch::parse(ImportFormat::Keycloak, &text);
    assert!(batch.is_clean() && batch.entries.len() == USERS);

    let mut group = criterion.benchmark_group("import_10k_users");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(USERS as u64));
    group.bench_function("parse", |b| {
        b.iter(|| black_box(ImportBatch::parse(ImportFormat::Keycloak, black_box(&text))))
    });
    group.bench_function("sqlite", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let file =
                    TempDb(std::env::temp_dir().join(format!("mf-import-bench-{}-{i}.sqlite", std::process::id())));
                drop(TempDb(file.0.clone()));
                let mfa = service(rt.block_on(SqliteStore::open(&file.0)).unwrap());
                total += rt.block_on(import_once(&mfa, &batch));
            }
            total
        })
    });
    match cluster::Cluster::start() {
        Ok(Ok(cluster)) => {
            let admin = cluster.url.clone();
            let url = cluster.database_url("mfa_import_bench");
            group.bench_function("postgres", |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let mfa = service(rt.block_on(fresh_postgres(&admin, &url)));
                        total += rt.block_on(import_once(&mfa, &batch));
                    }
                    total
                })
            });
        }
        Ok(Err(cluster::Missing::NoBinaries(why))) => eprintln!("\n!!!! PostgreSQL import bench SKIPPED: {why}.\n"),
        Err(e) => eprintln!("\n!!!! PostgreSQL import bench SKIPPED: could not start a cluster: {e}\n"),
    }
    group.finish();
    criterion.final_summary();
}
