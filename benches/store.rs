//! Store operations and the service paths on top of them, with `MemoryStore`, `SqliteStore` and
//! `PostgresStore` side by side: one criterion group per operation, one function per store
//! (`memory`, `sqlite`, `postgres`), so the ratios come from one run.
//!
//! - `store_list_devices`: `DeviceStore::list_devices` of a user with a confirmed TOTP device
//!   and a backup-code set (two records). The services here make sets of 32 codes, the most a
//!   set may have (so `service_verify_backup_code` seldom regenerates): the SQL stores read one
//!   joined row per code, 33 rows, an upper bound for this shape (the default set has 6).
//! - `store_throttle_read`: `DeviceStore::throttle` of a stored TOTP failure counter.
//! - `store_throttle_charge`: `DeviceStore::swap_throttle`, a compare-and-swap that succeeds
//!   every time (it alternates between two stored states: the update path, not the insert of a
//!   first failure).
//! - `service_verify_totp`: `Mfa::verify_totp` with a right code, a fresh step each call (list
//!   the devices, open the secret, charge the throttle, verify, record the step, clear the
//!   throttle).
//! - `service_verify_backup_code`: `Mfa::verify_backup_code` with a right code (list, charge,
//!   verify, consume the slot, clear the throttle, read the remaining count).
//! - `service_verify_rejected`: `Mfa::verify_totp` with a wrong code (list, charge, verify:
//!   rejected). Users take turns and are unlocked outside the timed part, so no call is
//!   throttled.
//!
//! SQLite is a temporary file (WAL, `synchronous = FULL`: each write transaction syncs the WAL),
//! removed afterwards. PostgreSQL is `DATABASE_URL` if set, else a throwaway cluster from the
//! local binaries, started with `fsync=off` (writes never wait for the disk) and removed
//! afterwards; without PostgreSQL its column is skipped, loudly. The runtime is a single-thread
//! tokio runtime, so the figures are the latency of one request at a time, not throughput.
//!
//! Run with `cargo bench --bench store` (about three minutes).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use multifactor_kit::cluster;

use std::hint::black_box;
use std::time::{Duration, Instant};

use multifactor_kit::bench::{self as support, TempDb};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use multifactor::backup_codes::{BackupCode, BackupCodeConfig};
use multifactor::store::ThrottleState;
use multifactor::throttle::ThrottlePolicy;
use multifactor::totp::TotpParams;
use multifactor::{
    Factor, KeyId, Keyring, ManualClock, MemoryStore, Mfa, MfaConfig, Outcome, PostgresStore, SealingKey, SecretBytes,
    SqliteStore, Store, UnixTime, UserId,
};
use tokio::runtime::Runtime;

/// An arbitrary instant, well inside the range of any clock.
const NOW: u64 = 1_800_000_000;
/// Users taking turns in `service_verify_rejected`.
const REJECTED_USERS: usize = 16;
/// Wrong codes a user may present before the next one is throttled (the default policy's free
/// failures).
const FREE_FAILURES: usize = 5;
/// The PostgreSQL database the bench creates (and drops) on the server.
const PG_DATABASE: &str = "mfa_bench";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Modest settings: the whole bench runs in about three minutes.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

/// One store behind a service with a manual clock.
struct Contender<S> {
    name: &'static str,
    mfa: Mfa<S, ManualClock>,
    clock: ManualClock,
}

impl<S: Store> Contender<S> {
    fn new(name: &'static str, store: S) -> Self {
        let clock = ManualClock::new(UnixTime::from_secs(NOW));
        let keys = Keyring::new(SealingKey::new(KeyId::new("k").unwrap(), [7; 32]));
        let mut config = MfaConfig::new("Bench").unwrap();
        // The most codes a set may have: fewer regenerations between timed chunks.
        config.backup_codes =
            BackupCodeConfig::new(BackupCodeConfig::MAX_COUNT, BackupCodeConfig::DEFAULT_LENGTH).unwrap();
        let mfa = Mfa::new(store, keys, config).unwrap().with_clock(clock.clone());
        Self { name, mfa, clock }
    }

    fn store(&self) -> &S {
        self.mfa.store()
    }

    /// Enrolls and confirms a TOTP device for `user`; returns the authenticator app's secret.
    async fn totp_user(&self, user: &UserId) -> SecretBytes {
        let params = TotpParams::default();
        let enrollment = self.mfa.enroll_totp(user, "u@example.com", None).await.unwrap();
        let secret = multifactor::totp::decode_base32_secret(enrollment.secret_base32.expose_secret()).unwrap();
        let first = multifactor::totp::code_at(&secret, &params, self.clock.now());
        let confirmed = self
            .mfa
            .confirm_totp(user, enrollment.device, first.expose_secret())
            .await
            .unwrap();
        assert!(confirmed.is_accepted());
        secret
    }
}

/// The three stores (PostgreSQL when there is one).
struct Stores {
    memory: Contender<MemoryStore>,
    sqlite: Contender<SqliteStore>,
    postgres: Option<Contender<PostgresStore>>,
}

/// One operation, benched on each store in turn within one group.
trait Op {
    const GROUP: &'static str;

    /// Sets up its users on `c` (outside the timed part) and benches the operation.
    fn bench<S: Store>(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, c: &Contender<S>);
}

fn run<O: Op>(criterion: &mut Criterion, rt: &Runtime, stores: &Stores) {
    let mut group = criterion.benchmark_group(O::GROUP);
    O::bench(&mut group, rt, &stores.memory);
    O::bench(&mut group, rt, &stores.sqlite);
    if let Some(postgres) = &stores.postgres {
        O::bench(&mut group, rt, postgres);
    }
    group.finish();
}

fn user(tag: &str) -> UserId {
    UserId::new(format!("bench-{tag}")).unwrap()
}

/// Times `iters` awaits of `op`.
fn timed<F, Fut>(rt: &Runtime, iters: u64, mut op: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            op().await;
        }
        start.elapsed()
    })
}

// ----- Store operations ---------------------------------------------------------------------------

struct ListDevices;

impl Op for ListDevices {
    const GROUP: &'static str = "store_list_devices";

    fn bench<S: Store>(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, c: &Contender<S>) {
        let user = user("list");
        rt.block_on(async {
            c.totp_user(&user).await;
            c.mfa.generate_backup_codes(&user, None).await.unwrap();
            assert_eq!(c.store().list_devices(&user).await.unwrap().len(), 2);
        });
        let store = c.store();
        group.bench_function(c.name, |b| {
            b.iter_custom(|iters| {
                timed(rt, iters, || async {
                    black_box(store.list_devices(black_box(&user)).await.unwrap());
                })
            });
        });
    }
}

/// A stored counter with two failures.
fn two_failures() -> ThrottleState {
    ThrottleState {
        failures: 2,
        last_failure_at: Some(UnixTime::from_secs(NOW)),
        budget_until: Some(UnixTime::from_secs(
            NOW + 2 * ThrottlePolicy::DEFAULT_BUDGET_REFILL_SECS,
        )),
        last_miss: None,
    }
}

struct ThrottleRead;

impl Op for ThrottleRead {
    const GROUP: &'static str = "store_throttle_read";

    fn bench<S: Store>(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, c: &Contender<S>) {
        let user = user("throttle-read");
        let store = c.store();
        rt.block_on(async {
            assert!(
                store
                    .swap_throttle(&user, Factor::Totp.into(), ThrottleState::default(), two_failures())
                    .await
                    .unwrap()
            );
            assert_eq!(
                store.throttle(&user, Factor::Totp.into()).await.unwrap(),
                two_failures()
            );
        });
        group.bench_function(c.name, |b| {
            b.iter_custom(|iters| {
                timed(rt, iters, || async {
                    black_box(store.throttle(black_box(&user), Factor::Totp.into()).await.unwrap());
                })
            });
        });
        assert_eq!(
            rt.block_on(store.throttle(&user, Factor::Totp.into())).unwrap(),
            two_failures()
        );
    }
}

struct ThrottleCharge;

impl Op for ThrottleCharge {
    const GROUP: &'static str = "store_throttle_charge";

    fn bench<S: Store>(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, c: &Contender<S>) {
        let user = user("throttle-charge");
        let store = c.store();
        let policy = c.mfa.config().throttle;
        // Two stored states, each the other's expected value: `low` charged once is `high`, and
        // back again, so every compare-and-swap finds what it expects.
        let low = two_failures();
        let high = policy.charged(Factor::Totp, &low, UnixTime::from_secs(NOW + 1));
        rt.block_on(async {
            assert!(
                store
                    .swap_throttle(&user, Factor::Totp.into(), ThrottleState::default(), low)
                    .await
                    .unwrap()
            );
        });
        let mut current = low;
        group.bench_function(c.name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let next = if current == low { high } else { low };
                        let swapped = store
                            .swap_throttle(black_box(&user), Factor::Totp.into(), current, next)
                            .await
                            .unwrap();
                        assert!(swapped);
                        current = next;
                    }
                    start.elapsed()
                })
            });
        });
        assert_eq!(
            rt.block_on(store.throttle(&user, Factor::Totp.into())).unwrap(),
            current
        );
    }
}

// ----- Service paths ------------------------------------------------------------------------------

struct VerifyTotp;

impl Op for VerifyTotp {
    const GROUP: &'static str = "service_verify_totp";

    fn bench<S: Store>(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, c: &Contender<S>) {
        let user = user("totp");
        let app_secret = rt.block_on(c.totp_user(&user));
        let (mfa, clock) = (&c.mfa, &c.clock);
        group.bench_function(c.name, |b| {
            b.iter_custom(|iters| rt.block_on(support::time_totp_verifications(mfa, clock, &user, &app_secret, iters)));
        });
    }
}

struct VerifyBackupCode;

impl Op for VerifyBackupCode {
    const GROUP: &'static str = "service_verify_backup_code";

    fn bench<S: Store>(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, c: &Contender<S>) {
        // Every verification is of a right code: a fresh set is generated outside the timed part
        // when the last one is spent, and each of its codes is spent once.
        let user = user("backup");
        let mfa = &c.mfa;
        group.bench_function(c.name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(support::timed_in_chunks(
                    iters,
                    BackupCodeConfig::MAX_COUNT as u64,
                    async |n| {
                        let set = mfa.generate_backup_codes(&user, None).await.unwrap();
                        assert_eq!(set.codes.len(), BackupCodeConfig::MAX_COUNT);
                        set.codes.into_iter().take(n as usize).collect()
                    },
                    async |code: BackupCode| {
                        let outcome = mfa
                            .verify_backup_code(&user, black_box(code.expose_secret()))
                            .await
                            .unwrap();
                        assert!(black_box(outcome).is_accepted());
                    },
                ))
            });
        });
    }
}

struct VerifyRejected;

impl Op for VerifyRejected {
    const GROUP: &'static str = "service_verify_rejected";

    fn bench<S: Store>(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, c: &Contender<S>) {
        // The clock stands still here, so one wrong code per user stays wrong: one that matches
        // no step of the window.
        let params = TotpParams::default();
        let window = c.mfa.config().totp.window();
        let now = c.clock.now();
        let users: Vec<(UserId, String)> = rt.block_on(async {
            let mut users = Vec::new();
            for i in 0..REJECTED_USERS {
                let user = user(&format!("rejected-{i}"));
                let secret = c.totp_user(&user).await;
                let right: u32 = multifactor::totp::code_at(&secret, &params, now)
                    .expose_secret()
                    .parse()
                    .unwrap();
                let wrong = (1..)
                    .map(|d| format!("{:06}", (right + d) % 1_000_000))
                    .find(|code| {
                        multifactor::totp::verify(&secret, &params, window, None, now, code)
                            .unwrap()
                            .is_none()
                    })
                    .unwrap();
                users.push((user, wrong));
            }
            users
        });
        let mfa = &c.mfa;
        let mut unlocked = true;
        group.bench_function(c.name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(support::timed_in_chunks(
                    iters,
                    (REJECTED_USERS * FREE_FAILURES) as u64,
                    // Each user may fail `FREE_FAILURES` times before being throttled: start
                    // every chunk from cleared counters.
                    async |n| {
                        if !unlocked {
                            for (user, _) in &users {
                                mfa.unlock(user, Factor::Totp).await.unwrap();
                            }
                        }
                        unlocked = false;
                        users.iter().cycle().take(n as usize).collect()
                    },
                    async |(user, wrong): &(UserId, String)| {
                        let outcome = mfa.verify_totp(user, black_box(wrong)).await.unwrap();
                        assert_eq!(black_box(outcome), Outcome::Rejected);
                    },
                ))
            });
        });
        // The counters did reach the limit: one more attempt of the first user is throttled.
        rt.block_on(async {
            let (user, wrong) = &users[0];
            for _ in 0..FREE_FAILURES {
                let _ = mfa.verify_totp(user, wrong).await.unwrap();
            }
            let outcome = mfa.verify_totp(user, wrong).await.unwrap();
            assert!(matches!(outcome, Outcome::Throttled { .. }), "{outcome:?}");
        });
    }
}

// ----- Setup --------------------------------------------------------------------------------------

/// A fresh database on the server (dropped first if a previous run left it).
async fn create_database(admin_url: &str) -> Result<(), String> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(|e| e.to_string())?;
    for sql in [
        format!("DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"),
        format!("CREATE DATABASE {PG_DATABASE}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
    }
    conn.close().await.map_err(|e| e.to_string())
}

async fn drop_database(admin_url: &str) -> Result<(), String> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(|e| e.to_string())?;
    let sql = format!("DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    conn.close().await.map_err(|e| e.to_string())
}

fn skip_postgres(why: &str) {
    eprintln!("\n!!!! PostgreSQL column SKIPPED: {why}.");
    eprintln!("!!!! Install the `postgresql` package or set DATABASE_URL to bench PostgresStore.\n");
}

fn main() {
    let mut criterion = config().configure_from_args();
    let rt = runtime();

    let sqlite_file = TempDb::new();
    let cluster = match cluster::Cluster::start() {
        Ok(Ok(cluster)) => Some(cluster),
        Ok(Err(cluster::Missing::NoBinaries(why))) => {
            skip_postgres(&why);
            None
        }
        Err(e) => {
            skip_postgres(&format!("could not start a cluster: {e}"));
            None
        }
    };
    let postgres = cluster.as_ref().and_then(|cluster| {
        let admin = cluster.url.clone();
        let connected = rt.block_on(async {
            create_database(&admin).await?;
            let store = PostgresStore::connect(&cluster.database_url(PG_DATABASE))
                .await
                .map_err(|e| e.to_string())?;
            store.migrate().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(store)
        });
        match connected {
            Ok(store) => Some((admin, store)),
            Err(e) => {
                skip_postgres(&format!("could not set up database {PG_DATABASE} on {admin}: {e}"));
                None
            }
        }
    });
    if postgres.is_some() {
        if std::env::var_os("DATABASE_URL").is_some() {
            eprintln!("note: PostgreSQL is DATABASE_URL (database {PG_DATABASE}, with that server's settings).");
        } else {
            eprintln!(
                "note: the throwaway PostgreSQL cluster runs with fsync=off: its writes never wait for the disk, \
                 while SQLite (WAL, synchronous=FULL) syncs each write transaction."
            );
        }
    }
    let admin = postgres.as_ref().map(|(admin, _)| admin.clone());

    let stores = Stores {
        memory: Contender::new("memory", MemoryStore::new()),
        sqlite: Contender::new("sqlite", rt.block_on(SqliteStore::open(&sqlite_file.0)).unwrap()),
        postgres: postgres.map(|(_, store)| Contender::new("postgres", store)),
    };

    run::<ListDevices>(&mut criterion, &rt, &stores);
    run::<ThrottleRead>(&mut criterion, &rt, &stores);
    run::<ThrottleCharge>(&mut criterion, &rt, &stores);
    run::<VerifyTotp>(&mut criterion, &rt, &stores);
    run::<VerifyBackupCode>(&mut criterion, &rt, &stores);
    run::<VerifyRejected>(&mut criterion, &rt, &stores);

    criterion.final_summary();

    drop(stores);
    if let Some(admin) = admin
        && let Err(e) = rt.block_on(drop_database(&admin))
    {
        eprintln!("could not drop database {PG_DATABASE}: {e}");
    }
    drop(rt);
    drop(sqlite_file);
    drop(cluster);
}
