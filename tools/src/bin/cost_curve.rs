//! Cost curve: how the cost of a sign-in verification scales with the number of enrolled users,
//! on `SqliteStore` and on `PostgresStore`, as a table, a CSV and an SVG plot.
//!
//! For each store and each size N (users enrolled in the database):
//!
//! 1. A fresh database (SQLite: a new file; PostgreSQL: a dropped and recreated database on one
//!    throwaway cluster shared by all sizes, sizes growing).
//! 2. R "real" users (`--real-users`, 2,000 by default) are enrolled through the public API, as
//!    `pg_load` does: `Mfa::import_totp` and `Mfa::generate_backup_codes` (the default 6-code
//!    set). Only real users are verified.
//! 3. N - R filler users are bulk-inserted in SQL: each is a copy of a real user's rows (the real
//!    users are the templates, in turn) with a new user id and new device ids, so every filler row
//!    has exactly the shape and size of a real enrollment. The loader is generic: it reads each
//!    table's columns at run time (`information_schema.columns`, `pragma_table_info`) and copies
//!    every `mfa_*` table with a `user_id` column that the real users have rows in (not
//!    `mfa_throttles`: a clear counter has no row; `mfa_user_state` is copied as it is, its
//!    device ids inside `totp_marks` and `codes_set` those of the template, the same size:
//!    fillers are never verified), replacing only `id` and `user_id`, and every
//!    table with a `device_id` column (none today: a set's codes live in its row; such a table would be copied),
//!    replacing `device_id` with the copied device's new id. User ids all have the form
//!    `user-NNNNNNNN`; real user i is number i * (N / R), fillers take the numbers between, so
//!    real users are spread evenly through the user-id index (not packed into its first pages).
//!    Device ids are 16 pseudo-random bytes (PostgreSQL: md5 of the new user id and the template
//!    device id; SQLite: a multiplicative hash of the user number and the template id's last 8
//!    bytes), so they land all over the primary-key index as random ids do. Inserts go in batches
//!    of `--batch` users (100,000) per statement, with progress; the indexes are in place
//!    throughout (their shape is what random-order enrollments produce). The first batch runs
//!    with foreign keys checked (the SQL that points copied rows at their copied device is the
//!    same for every batch); the others without the per-row check, which loads the same rows a
//!    third faster. Afterwards every copied table must hold N / R times the real users' rows, and
//!    every column the same (min, max) stored size as in the real users' rows.
//!    PostgreSQL loads on `--load-connections` connections at once (2), with `fsync=off`,
//!    `synchronous_commit=off` and `max_wal_size=8GB` (set with `ALTER SYSTEM` and reset
//!    afterwards), then runs `VACUUM ANALYZE` (autovacuum would have, in production) and a
//!    `CHECKPOINT`; the timed phases run with `fsync=on` and `synchronous_commit=on` (checked).
//!    SQLite loads on a connection of its own with `synchronous=OFF` and a 1 GiB page cache; the
//!    timed phases use `SqliteStore::open` as it is (WAL, `synchronous=FULL`, see
//!    `src/store/sqlite.rs`). No `ANALYZE` on SQLite: the store never runs it, so neither do we.
//! 4. Database size per user: PostgreSQL, the sum of `pg_total_relation_size` of the `mfa_*`
//!    tables (indexes and TOAST included) / N; SQLite, the file plus its WAL after
//!    `wal_checkpoint(TRUNCATE)` / N (per table from `dbstat` in the log).
//! 5. Timed phases, each after a checkpoint, a `sync` (the load ran without fsync: its dirty
//!    pages, a gigabyte at 1M users, would otherwise be written back during the phase and slow
//!    its commits) and a warm-up (every real user verifies once, not timed), with C concurrent
//!    clients (`--clients`, 8: tokio tasks on 2 worker threads sharing one `Mfa`; PostgreSQL
//!    `connect_with(url, C)`, SQLite the store's own pool of 8):
//!    - TOTP: rounds in which every real user, in a random order, verifies the current code once;
//!      between rounds a `ManualClock` moves 30 s on. Stops taking work after `--secs` (10).
//!    - Backup codes: the real users spend their remaining codes, one per user per round, users
//!      in a random order; stops after `--secs` or when all codes are spent (R * 5 codes after
//!      the warm-up: at R = 2,000 that is 10,000, about 3-5 s on PostgreSQL).
//!    - SQLite only, the anchor: in the same file and mode, a table
//!      `anchor(id INTEGER PRIMARY KEY, n INTEGER)` with N rows, and C clients each running
//!      `UPDATE anchor SET n = n + 1 WHERE id = ?` (one autocommit transaction each) on random
//!      ids through a `SqlitePool` configured like the store's (WAL, `synchronous=FULL`, foreign
//!      keys on, 10 s busy timeout, 8 connections, no ping). Our sign-ins/s are reported beside
//!      it (target: ≥ 0.5×).
//!
//!    Latency is measured around each call (pool wait included). Throughput is operations / wall
//!    time of the phase. Every verification must be `Accepted` and every anchor update must
//!    change one row: anything else is counted, and the program exits with status 1.
//!
//!    To tell a rising curve from noise, each phase also logs where the machine's CPU went (this
//!    process, the PostgreSQL server, anything else), and on PostgreSQL the server's counters
//!    per verification over exactly the timed phase (the warm-up runs on a store of its own,
//!    closed before): WAL records, full-page images and bytes, blocks read from outside shared
//!    buffers, buffer hits, the share of HOT updates, WAL flushes and their average time
//!    (`track_wal_io_timing=on`). A rise with the same counters is the machine, not the plan.
//!
//! Output: a markdown table on stdout, a CSV (`--csv`, default: the SVG's path with `.csv`), and
//! an SVG plot of throughput and p99 latency against users on a log axis (`--svg`, default
//! `benches/cost_curve.svg`).
//!
//! Run: `cargo run --release -p multifactor-tools --bin cost_curve -- [--sizes 10000,1000000,10000000]
//! [--stores sqlite,postgres] [--real-users R] [--clients C] [--secs S] [--batch B]
//! [--load-connections K] [--dir DIR] [--svg PATH] [--csv PATH] [--quick]`. The default sizes
//! are 10k, 1M and 10M on PostgreSQL, 10k and 1M on SQLite (an explicit `--sizes` applies to
//! both). Time, on 2 vCPUs (schema v3, 6-code sets: 8 rows per user): about 30 s per store at
//! 10k, 1-2 minutes at 1M (the bulk load 30-60 s of it); at 10M on PostgreSQL the load
//! dominates (over ten times the 1M load, as the indexes outgrow memory) and the cluster needs
//! about 17 GB of disk for the tables plus up to 8 GB of WAL under the temporary directory (a
//! 1M SQLite file is 1 GB). `--quick` (a CI smoke: 10k users, 500 real users, 1 s phases,
//! a few seconds per store even in a debug build) writes its SVG and CSV to the temporary
//! directory unless `--svg` says otherwise. SQLite files go to `--dir` (default: the
//! temporary directory); put it on the disk you mean to measure (a tmpfs makes fsync free).
//! `DATABASE_URL` is ignored on purpose (see `kit/src/pg_cluster.rs`).
//!
//! PostgreSQL server settings: `max_connections=300`, `shared_buffers=512MB` (as `pg_load`),
//! defaults otherwise (`fsync=on`, `synchronous_commit=on`, `full_page_writes=on`). The clients
//! run on the same machine as the server.

use multifactor_kit::load;
use multifactor_kit::pg_cluster;
use multifactor_kit::procstat;

use load::{TaskResult, accepted, print_machine, run_tasks, secret_bytes, service, set_up_user};

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use multifactor::backup_codes::BackupCodeConfig;
use multifactor::totp::TotpParams;
use multifactor::{ManualClock, Mfa, PostgresStore, SecretBytes, SqliteStore, Store, UnixTime, UserId};
use pg_cluster::PgCluster;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

type BoxError = Box<dyn Error>;

/// A step boundary well inside any clock's range.
const START: u64 = 1_800_000_000;
const PERIOD: u64 = 30;
const SHARED_BUFFERS: &str = "512MB";
/// User numbers are written with 8 digits (`user-00000042`), so text order is numeric order.
/// Fillers of the last, partial stride may go up to about twice N.
const MAX_USERS: u64 = 40_000_000;
/// The database PostgreSQL sizes run in (dropped and recreated for each size).
const PG_DB: &str = "mfa_curve";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum StoreKind {
    Sqlite,
    Postgres,
}

impl StoreKind {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

struct Args {
    /// Sizes per store, growing.
    sqlite_sizes: Vec<u64>,
    postgres_sizes: Vec<u64>,
    stores: Vec<StoreKind>,
    real_users: u64,
    clients: u32,
    secs: u64,
    batch: u64,
    /// PostgreSQL connections the bulk load runs on at once.
    load_connections: u32,
    dir: PathBuf,
    svg: PathBuf,
    csv: PathBuf,
}

fn parse_list<T>(value: &str, name: &str, item: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    let items: Vec<T> = value
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| item(s.trim()))
        .collect::<Result<_, _>>()?;
    if items.is_empty() {
        return Err(format!("{name} needs at least one value"));
    }
    Ok(items)
}

fn parse_number(s: &str, name: &str) -> Result<u64, String> {
    s.replace('_', "").parse().map_err(|e| format!("{name} {s:?}: {e}"))
}

fn parse_args() -> Result<Args, String> {
    let mut sizes: Option<Vec<u64>> = None;
    let mut stores = vec![StoreKind::Sqlite, StoreKind::Postgres];
    let mut real_users = None;
    let mut clients = 8;
    let mut secs = None;
    let mut batch = 100_000;
    let mut load_connections = 2;
    let mut quick = false;
    let mut dir = None;
    let mut svg = None;
    let mut csv = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--sizes" => {
                sizes = Some(parse_list(&value("--sizes")?, "--sizes", |s| {
                    parse_number(s, "--sizes")
                })?)
            }
            "--stores" => {
                stores = parse_list(&value("--stores")?, "--stores", |s| match s {
                    "sqlite" => Ok(StoreKind::Sqlite),
                    "postgres" | "postgresql" => Ok(StoreKind::Postgres),
                    other => Err(format!("--stores takes sqlite and postgres, not {other:?}")),
                })?
            }
            "--real-users" => real_users = Some(parse_number(&value("--real-users")?, "--real-users")?),
            "--clients" => clients = value("--clients")?.parse().map_err(|e| format!("--clients: {e}"))?,
            "--secs" => secs = Some(parse_number(&value("--secs")?, "--secs")?),
            "--batch" => batch = parse_number(&value("--batch")?, "--batch")?,
            "--load-connections" => {
                load_connections = value("--load-connections")?
                    .parse()
                    .map_err(|e| format!("--load-connections: {e}"))?
            }
            "--dir" => dir = Some(PathBuf::from(value("--dir")?)),
            "--svg" => svg = Some(PathBuf::from(value("--svg")?)),
            "--csv" => csv = Some(PathBuf::from(value("--csv")?)),
            "--quick" => quick = true,
            "-h" | "--help" => {
                println!(
                    "usage: cost_curve [--sizes N,N,... (SQLite 10000,1000000; PostgreSQL 10000,1000000,10000000)] \
                     [--stores sqlite,postgres] [--real-users R (2000)] [--clients C (8)] [--secs S (10)] \
                     [--batch B (100000 users per insert)] [--load-connections K (2, PostgreSQL)] [--dir DIR (SQLite files; temp dir)] \
                     [--svg PATH (benches/cost_curve.svg)] [--csv PATH (the SVG's, .csv)] \
                     [--quick (10k users, 500 real, 1 s phases)]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    let (sqlite_sizes, postgres_sizes) = match (sizes, quick) {
        (Some(s), _) => (s.clone(), s),
        (None, true) => (vec![10_000], vec![10_000]),
        (None, false) => (vec![10_000, 1_000_000], vec![10_000, 1_000_000, 10_000_000]),
    };
    let svg = svg.unwrap_or_else(|| {
        if quick {
            std::env::temp_dir().join("cost_curve_quick.svg")
        } else {
            PathBuf::from("benches/cost_curve.svg")
        }
    });
    let csv = csv.unwrap_or_else(|| svg.with_extension("csv"));
    let args = Args {
        sqlite_sizes,
        postgres_sizes,
        stores,
        real_users: real_users.unwrap_or(if quick { 500 } else { 2_000 }),
        clients,
        secs: secs.unwrap_or(if quick { 1 } else { 10 }),
        batch,
        load_connections,
        dir: dir.unwrap_or_else(std::env::temp_dir),
        svg,
        csv,
    };
    if args.clients == 0
        || args.clients > 250
        || args.secs == 0
        || args.real_users == 0
        || args.batch == 0
        || !(1..=16).contains(&args.load_connections)
    {
        return Err(
            "need 1 <= clients <= 250, secs >= 1, real users >= 1, batch >= 1, 1 <= load connections <= 16".into(),
        );
    }
    for &n in args.sqlite_sizes.iter().chain(&args.postgres_sizes) {
        if n < args.real_users || n > MAX_USERS {
            return Err(format!(
                "every size must be between --real-users ({}) and {MAX_USERS}, not {n}",
                args.real_users
            ));
        }
    }
    Ok(args)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let args = parse_args()?;
    print_machine();
    println!(
        "clients {}, {} s per phase, {} real users per size, bulk insert {} users per statement",
        args.clients, args.secs, args.real_users, args.batch
    );
    let mut rows = Vec::new();
    for &store in &args.stores {
        match store {
            StoreKind::Sqlite => run_sqlite(&args, &mut rows).await?,
            StoreKind::Postgres => run_postgres(&args, &mut rows).await?,
        }
    }
    let table = markdown_table(&rows);
    println!("\n{table}");
    std::fs::write(&args.csv, csv(&rows, &args))?;
    std::fs::write(&args.svg, svg(&rows, &args))?;
    println!("CSV: {}\nSVG: {}", args.csv.display(), args.svg.display());
    let failed: u64 = rows.iter().map(Row::failures).sum();
    if failed > 0 {
        println!("\nFAILED: {failed} operations were not accepted (see above)");
        std::process::exit(1);
    }
    Ok(())
}

// ----- Results ---------------------------------------------------------------------------------

/// One timed phase.
#[derive(Default)]
struct Phase {
    /// Operations per second.
    rate: f64,
    ops: u64,
    p50_us: u64,
    p99_us: u64,
    failures: u64,
    first_failure: Option<String>,
    note: String,
}

/// One store at one size.
struct Row {
    store: StoreKind,
    users: u64,
    totp: Phase,
    backup: Phase,
    /// SQLite's own single-row update in the same file and mode.
    anchor: Option<Phase>,
    db_bytes: u64,
    enroll_secs: f64,
    load_secs: f64,
}

impl Row {
    fn bytes_per_user(&self) -> f64 {
        self.db_bytes as f64 / self.users as f64
    }

    fn failures(&self) -> u64 {
        self.totp.failures + self.backup.failures + self.anchor.as_ref().map_or(0, |a| a.failures)
    }

    fn print(&self) {
        println!(
            "   {} at {} users: TOTP {:.0}/s (p50 {} µs, p99 {} µs), backup codes {:.0}/s (p50 {} µs, p99 {} µs), \
             {:.0} bytes/user{}",
            self.store.name(),
            self.users,
            self.totp.rate,
            self.totp.p50_us,
            self.totp.p99_us,
            self.backup.rate,
            self.backup.p50_us,
            self.backup.p99_us,
            self.bytes_per_user(),
            self.anchor.as_ref().map_or(String::new(), |a| format!(
                "; anchor UPDATE {:.0}/s (p50 {} µs, p99 {} µs): TOTP {:.2}x, backup {:.2}x",
                a.rate,
                a.p50_us,
                a.p99_us,
                ratio(self.totp.rate, a.rate),
                ratio(self.backup.rate, a.rate)
            ))
        );
        for (name, phase) in [
            ("TOTP", Some(&self.totp)),
            ("backup", Some(&self.backup)),
            ("anchor", self.anchor.as_ref()),
        ] {
            let Some(phase) = phase else { continue };
            println!("      {name}: {}", phase.note);
            if let Some(f) = &phase.first_failure {
                println!("      {name}: {} FAILED, first: {f}", phase.failures);
            }
        }
    }
}

fn ratio(ours: f64, anchor: f64) -> f64 {
    if anchor > 0.0 { ours / anchor } else { 0.0 }
}

fn users_label(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

/// 1234567 -> "1,234,567".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn markdown_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| Store | Users | TOTP /s | p50 µs | p99 µs | Backup code /s | p50 µs | p99 µs | Bytes/user | \
         Anchor UPDATE /s | TOTP ÷ anchor | Bulk load s |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let (anchor, vs) = match &r.anchor {
            Some(a) => (
                thousands(a.rate.round() as u64),
                format!("{:.2}×", ratio(r.totp.rate, a.rate)),
            ),
            None => ("–".to_owned(), "–".to_owned()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            r.store.name(),
            thousands(r.users),
            thousands(r.totp.rate.round() as u64),
            thousands(r.totp.p50_us),
            thousands(r.totp.p99_us),
            thousands(r.backup.rate.round() as u64),
            thousands(r.backup.p50_us),
            thousands(r.backup.p99_us),
            thousands(r.bytes_per_user().round() as u64),
            anchor,
            vs,
            r.load_secs
        );
    }
    out
}

fn csv(rows: &[Row], args: &Args) -> String {
    let mut out = String::from(
        "store,users,real_users,clients,secs,totp_per_s,totp_p50_us,totp_p99_us,totp_ops,backup_per_s,\
         backup_p50_us,backup_p99_us,backup_ops,db_bytes,bytes_per_user,anchor_per_s,anchor_p50_us,anchor_p99_us,\
         totp_vs_anchor,enroll_secs,load_secs,failures\n",
    );
    for r in rows {
        let (a_rate, a_p50, a_p99, vs) = match &r.anchor {
            Some(a) => (
                format!("{:.1}", a.rate),
                a.p50_us.to_string(),
                a.p99_us.to_string(),
                format!("{:.3}", ratio(r.totp.rate, a.rate)),
            ),
            None => Default::default(),
        };
        let _ = writeln!(
            out,
            "{},{},{},{},{},{:.1},{},{},{},{:.1},{},{},{},{},{:.1},{},{},{},{},{:.1},{:.1},{}",
            r.store.name(),
            r.users,
            args.real_users,
            args.clients,
            args.secs,
            r.totp.rate,
            r.totp.p50_us,
            r.totp.p99_us,
            r.totp.ops,
            r.backup.rate,
            r.backup.p50_us,
            r.backup.p99_us,
            r.backup.ops,
            r.db_bytes,
            r.bytes_per_user(),
            a_rate,
            a_p50,
            a_p99,
            vs,
            r.enroll_secs,
            r.load_secs,
            r.failures()
        );
    }
    out
}

// ----- Users -----------------------------------------------------------------------------------

/// Where the real users sit among all N: real user i is number i * stride, fillers take the
/// numbers between (and, for the remainder of N / R, a few after the last real user).
#[derive(Clone, Copy)]
struct Layout {
    users: u64,
    real: u64,
    stride: u64,
}

impl Layout {
    fn new(users: u64, real: u64) -> Self {
        Self {
            users,
            real,
            stride: (users / real).max(1),
        }
    }

    fn fillers(&self) -> u64 {
        self.users - self.real
    }

    fn real_user(&self, i: u64) -> Result<UserId, BoxError> {
        Ok(UserId::new(format!("user-{:08}", i * self.stride))?)
    }

    fn real_users(&self) -> Result<Vec<UserId>, BoxError> {
        (0..self.real).map(|i| self.real_user(i)).collect()
    }

    /// SQL: the user number of filler `g.f` (0-based).
    fn filler_number_sql(&self) -> String {
        if self.stride >= 2 {
            let d = self.stride - 1;
            format!("((g.f / {d}) * {} + g.f % {d} + 1)", self.stride)
        } else {
            format!("({} + g.f)", self.real)
        }
    }

    /// SQL: the user number of filler `g.f`'s template (a real user).
    fn template_number_sql(&self) -> String {
        if self.stride >= 2 {
            let d = self.stride - 1;
            format!("(((g.f / {d}) % {}) * {})", self.real, self.stride)
        } else {
            format!("(g.f % {})", self.real)
        }
    }
}

/// Enrolls the real users on `clients` concurrent tasks; returns each one's backup codes.
async fn enroll<S: Store + 'static>(
    mfa: &Arc<Mfa<S, ManualClock>>,
    users: &Arc<Vec<UserId>>,
    clients: u32,
) -> Result<Vec<Vec<String>>, BoxError> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..clients {
        let (mfa, next, users) = (Arc::clone(mfa), Arc::clone(&next), Arc::clone(users));
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(user) = users.get(i) else { break };
                let codes = set_up_user(&mfa, user, i)
                    .await
                    .map_err(|e| format!("enrolling {}: {e}", user.as_str()))?;
                mine.push((i, codes));
            }
            Ok::<_, String>(mine)
        }));
    }
    let mut codes = vec![Vec::new(); users.len()];
    for handle in handles {
        for (i, c) in handle.await?? {
            if let Some(slot) = codes.get_mut(i) {
                *slot = c;
            }
        }
    }
    Ok(codes)
}

// ----- Random order ----------------------------------------------------------------------------

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 0..n in a random order (Fisher-Yates, seeded: runs are repeatable).
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = splitmix64(seed);
    for i in (1..n).rev() {
        state = splitmix64(state);
        let j = (state % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

// ----- Timed phases ----------------------------------------------------------------------------

/// A timed phase's figures from its tasks' results.
fn into_phase(mut result: TaskResult, wall: Duration, cpu: CpuSnap, note: String) -> Phase {
    result.latencies.sort_unstable();
    let ops = result.latencies.len() as u64;
    Phase {
        rate: ops as f64 / wall.as_secs_f64(),
        ops,
        p50_us: percentile(&result.latencies, 50.0),
        p99_us: percentile(&result.latencies, 99.0),
        failures: result.failures,
        first_failure: result.first_failure,
        note: format!(
            "{ops} operations in {:.2} s; {note}; {}",
            wall.as_secs_f64(),
            cpu.since()
        ),
    }
}

/// CPU counters: this process, the database server's processes, the whole machine.
#[derive(Clone, Copy)]
struct CpuSnap {
    /// The PostgreSQL postmaster, whose children are the server.
    server: Option<u32>,
    own: u64,
    server_ticks: u64,
    machine_busy: u64,
    machine_total: u64,
}

impl CpuSnap {
    fn take(server: Option<u32>) -> Self {
        let own = procstat::this_process().own;
        let server_ticks = server.map_or(0, |postmaster| {
            procstat::all_processes()
                .into_iter()
                .filter(|(pid, p)| *pid == postmaster || p.ppid == postmaster)
                .map(|(_, p)| p.own)
                .sum()
        });
        let machine = procstat::machine();
        Self {
            server,
            own,
            server_ticks,
            machine_busy: machine.busy,
            machine_total: machine.total,
        }
    }

    /// Where the machine's CPU went since `self`, as shares of all its CPUs.
    fn since(self) -> String {
        let now = Self::take(self.server);
        let total = now.machine_total.saturating_sub(self.machine_total).max(1) as f64;
        let share = |ticks: u64| 100.0 * ticks as f64 / total;
        let busy = now.machine_busy.saturating_sub(self.machine_busy);
        let own = now.own.saturating_sub(self.own);
        let server = now.server_ticks.saturating_sub(self.server_ticks);
        format!(
            "CPU (share of all CPUs): {:.0} % busy, this process {:.0} %{}, anything else {:.0} %",
            share(busy),
            share(own),
            if self.server.is_some() {
                format!(", the PostgreSQL server {:.0} %", share(server))
            } else {
                String::new()
            },
            share(busy.saturating_sub(own + server))
        )
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied().unwrap_or(0)
}

/// The real users, their secrets and codes, as the phases share them.
struct Load {
    /// The PostgreSQL postmaster's pid (for the CPU accounting), `None` for SQLite.
    server: Option<u32>,
    clock: ManualClock,
    users: Arc<Vec<UserId>>,
    secrets: Arc<Vec<SecretBytes>>,
    codes: Arc<Vec<Vec<String>>>,
}

impl Load {
    /// One TOTP round: every real user, in a random order, verifies the current code once.
    async fn totp_round<S: Store + 'static>(
        &self,
        mfa: &Arc<Mfa<S, ManualClock>>,
        clients: u32,
        seed: u64,
        deadline: Instant,
    ) -> Result<TaskResult, BoxError> {
        self.clock.advance(PERIOD);
        let now = self.clock.now();
        let order = Arc::new(permutation(self.users.len(), seed));
        let (mfa, users, secrets) = (Arc::clone(mfa), Arc::clone(&self.users), Arc::clone(&self.secrets));
        let params = TotpParams::default();
        run_tasks(clients, order.len(), deadline, move |i| {
            let (mfa, users) = (Arc::clone(&mfa), Arc::clone(&users));
            let u = order.get(i).copied().unwrap_or(usize::MAX);
            let code = secrets
                .get(u)
                .map(|s| multifactor::totp::code_at(s, &params, now).expose_secret().to_owned());
            async move {
                let (Some(user), Some(code)) = (users.get(u), code) else {
                    return Err(format!("no real user {u}"));
                };
                accepted(mfa.verify_totp(user, &code).await).map_err(|e| format!("TOTP of {}: {e}", user.as_str()))
            }
        })
        .await
    }

    /// One backup-code round: every real user, in a random order, spends their code `slot`.
    async fn backup_round<S: Store + 'static>(
        &self,
        mfa: &Arc<Mfa<S, ManualClock>>,
        clients: u32,
        slot: usize,
        deadline: Instant,
    ) -> Result<TaskResult, BoxError> {
        let order = Arc::new(permutation(self.users.len(), 1_000 + slot as u64));
        let (mfa, users, codes) = (Arc::clone(mfa), Arc::clone(&self.users), Arc::clone(&self.codes));
        run_tasks(clients, order.len(), deadline, move |i| {
            let (mfa, users, codes) = (Arc::clone(&mfa), Arc::clone(&users), Arc::clone(&codes));
            let u = order.get(i).copied().unwrap_or(usize::MAX);
            async move {
                let (Some(user), Some(code)) = (users.get(u), codes.get(u).and_then(|c| c.get(slot))) else {
                    return Err(format!("no code {slot} of real user {u}"));
                };
                accepted(mfa.verify_backup_code(user, code).await)
                    .map_err(|e| format!("backup code of {}: {e}", user.as_str()))
            }
        })
        .await
    }

    /// The TOTP warm-up: one round, not timed (its failures count).
    async fn totp_warm_up<S: Store + 'static>(
        &self,
        mfa: &Arc<Mfa<S, ManualClock>>,
        clients: u32,
    ) -> Result<TaskResult, BoxError> {
        self.totp_round(mfa, clients, 0, Instant::now() + Duration::from_secs(3600))
            .await
    }

    /// TOTP rounds until `duration` has passed.
    async fn totp_phase<S: Store + 'static>(
        &self,
        mfa: &Arc<Mfa<S, ManualClock>>,
        clients: u32,
        duration: Duration,
        warm_up: TaskResult,
    ) -> Result<Phase, BoxError> {
        let cpu = CpuSnap::take(self.server);
        let started = Instant::now();
        let deadline = started + duration;
        let mut total = TaskResult::default();
        let mut rounds = 0u64;
        while Instant::now() < deadline {
            rounds += 1;
            total.absorb(self.totp_round(mfa, clients, rounds, deadline).await?);
        }
        let wall = started.elapsed();
        let mut phase = into_phase(
            total,
            wall,
            cpu,
            format!("{rounds} rounds of up to {} users", self.users.len()),
        );
        phase.failures += warm_up.failures;
        phase.first_failure = phase.first_failure.or(warm_up.first_failure);
        Ok(phase)
    }

    /// The backup-code warm-up: code 0 of every user, not timed (its failures count).
    async fn backup_warm_up<S: Store + 'static>(
        &self,
        mfa: &Arc<Mfa<S, ManualClock>>,
        clients: u32,
    ) -> Result<TaskResult, BoxError> {
        self.backup_round(mfa, clients, 0, Instant::now() + Duration::from_secs(3600))
            .await
    }

    /// Codes 1, 2, ... until `duration` has passed or all are spent.
    async fn backup_phase<S: Store + 'static>(
        &self,
        mfa: &Arc<Mfa<S, ManualClock>>,
        clients: u32,
        duration: Duration,
        warm_up: TaskResult,
    ) -> Result<Phase, BoxError> {
        let per_user = self.codes.iter().map(Vec::len).min().unwrap_or(0);
        let cpu = CpuSnap::take(self.server);
        let started = Instant::now();
        let deadline = started + duration;
        let mut total = TaskResult::default();
        let mut slot = 1;
        while slot < per_user && Instant::now() < deadline {
            total.absorb(self.backup_round(mfa, clients, slot, deadline).await?);
            slot += 1;
        }
        let wall = started.elapsed();
        let spent = total.latencies.len();
        let note = if slot >= per_user && Instant::now() < deadline {
            format!(
                "all {spent} remaining codes spent before the {} s were up",
                duration.as_secs()
            )
        } else {
            format!("{spent} codes spent")
        };
        let mut phase = into_phase(total, wall, cpu, note);
        phase.failures += warm_up.failures;
        phase.first_failure = phase.first_failure.or(warm_up.first_failure);
        Ok(phase)
    }
}

/// Writes the kernel's dirty pages out (`sync`): above all those of the load, which ran without
/// fsync, so that their writeback does not compete with the timed phases' fsyncs. Returns a
/// note of how much there was.
fn flush_os_cache() -> String {
    let dirty = || {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        ["Dirty:", "Writeback:"]
            .iter()
            .filter_map(|k| meminfo.lines().find_map(|l| l.strip_prefix(k)))
            .filter_map(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .sum::<u64>()
    };
    let before = dirty();
    let t = Instant::now();
    let status = std::process::Command::new("sync").status();
    let ok = if status.is_ok_and(|s| s.success()) {
        ""
    } else {
        " (sync FAILED)"
    };
    format!(
        "kernel dirty+writeback before the phase {:.0} MB, flushed by sync in {:.1} s{ok}",
        before as f64 / 1024.0,
        t.elapsed().as_secs_f64()
    )
}

// ----- SQL loading -----------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Postgres,
    Sqlite,
}

/// A raw connection for loading and measuring (not the store's).
enum Db {
    Pg(PgConnection),
    Lite(SqliteConnection),
}

impl Db {
    fn dialect(&self) -> Dialect {
        match self {
            Self::Pg(_) => Dialect::Postgres,
            Self::Lite(_) => Dialect::Sqlite,
        }
    }

    /// Runs `sql` (simple protocol, one or more statements); rows affected.
    async fn execute(&mut self, sql: &str) -> Result<u64, BoxError> {
        let raw = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()));
        let done = match self {
            Self::Pg(c) => raw.execute(c).await.map(|r| r.rows_affected()),
            Self::Lite(c) => raw.execute(c).await.map(|r| r.rows_affected()),
        };
        done.map_err(|e| format!("{e}\n  in: {}", shorten(sql)).into())
    }

    /// The first column of every row, as text.
    async fn texts(&mut self, sql: &str) -> Result<Vec<String>, BoxError> {
        let rows = match self {
            Self::Pg(c) => {
                sqlx::query_scalar::<_, String>(AssertSqlSafe(sql.to_owned()))
                    .fetch_all(c)
                    .await
            }
            Self::Lite(c) => {
                sqlx::query_scalar::<_, String>(AssertSqlSafe(sql.to_owned()))
                    .fetch_all(c)
                    .await
            }
        };
        rows.map_err(|e| format!("{e}\n  in: {}", shorten(sql)).into())
    }

    /// A single integer.
    async fn int(&mut self, sql: &str) -> Result<i64, BoxError> {
        let row = match self {
            Self::Pg(c) => {
                sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.to_owned()))
                    .fetch_one(c)
                    .await
            }
            Self::Lite(c) => {
                sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.to_owned()))
                    .fetch_one(c)
                    .await
            }
        };
        row.map_err(|e| format!("{e}\n  in: {}", shorten(sql)).into())
    }

    /// The integers of one row.
    async fn ints(&mut self, sql: &str) -> Result<Vec<i64>, BoxError> {
        use sqlx::Row as _;
        let q = AssertSqlSafe(sql.to_owned());
        let values = match self {
            Self::Pg(c) => sqlx::query(q)
                .fetch_one(c)
                .await
                .and_then(|r| (0..r.len()).map(|i| r.try_get::<i64, _>(i)).collect()),
            Self::Lite(c) => sqlx::query(q)
                .fetch_one(c)
                .await
                .and_then(|r| (0..r.len()).map(|i| r.try_get::<i64, _>(i)).collect()),
        };
        values.map_err(|e| format!("{e}\n  in: {}", shorten(sql)).into())
    }

    /// Pairs of (text, integer).
    async fn pairs(&mut self, sql: &str) -> Result<Vec<(String, i64)>, BoxError> {
        let rows = match self {
            Self::Pg(c) => {
                sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(sql.to_owned()))
                    .fetch_all(c)
                    .await
            }
            Self::Lite(c) => {
                sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(sql.to_owned()))
                    .fetch_all(c)
                    .await
            }
        };
        rows.map_err(|e| format!("{e}\n  in: {}", shorten(sql)).into())
    }

    async fn close(self) -> Result<(), BoxError> {
        match self {
            Self::Pg(c) => c.close().await?,
            Self::Lite(c) => c.close().await?,
        }
        Ok(())
    }
}

fn shorten(sql: &str) -> String {
    let one_line: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(300).collect()
}

/// `"name"`, quoted for both dialects.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Progress of a load, shared by its connections.
struct Progress {
    label: String,
    started: Instant,
    rows: AtomicU64,
    fillers: AtomicU64,
    /// Time spent in each table's inserts (parents, then children).
    table_nanos: Vec<AtomicU64>,
    last_print: std::sync::Mutex<Instant>,
}

/// How one table's rows are copied.
struct TableCopy {
    table: String,
    columns: Vec<String>,
    /// Rows of the real users (before loading).
    template_rows: i64,
}

/// The bulk loader: copies of the real users' rows, for fillers.
struct Loader {
    layout: Layout,
    /// Tables with a `user_id` column that the real users have rows in.
    parents: Vec<TableCopy>,
    /// Tables with a `device_id` column (their rows follow their device).
    children: Vec<TableCopy>,
}

impl Loader {
    /// Reads the schema: which tables to copy, with which columns.
    async fn plan(db: &mut Db, layout: Layout) -> Result<Self, BoxError> {
        let dialect = db.dialect();
        let tables = match dialect {
            Dialect::Postgres => {
                db.texts(
                    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() \
                     AND table_type = 'BASE TABLE' AND table_name LIKE 'mfa\\_%' ORDER BY table_name",
                )
                .await?
            }
            Dialect::Sqlite => {
                db.texts(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'mfa\\_%' ESCAPE '\\' \
                     ORDER BY name",
                )
                .await?
            }
        };
        let mut parents = Vec::new();
        let mut children = Vec::new();
        for table in tables {
            let columns = match dialect {
                Dialect::Postgres => {
                    db.texts(&format!(
                        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = \
                         current_schema() AND table_name = '{table}' AND is_generated = 'NEVER' \
                         ORDER BY ordinal_position"
                    ))
                    .await?
                }
                Dialect::Sqlite => {
                    db.texts(&format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"))
                        .await?
                }
            };
            let has = |c: &str| columns.iter().any(|x| x == c);
            let is_parent = has("user_id");
            let is_child = !is_parent && has("device_id");
            if !is_parent && !is_child {
                continue;
            }
            let template_rows = db.int(&format!("SELECT COUNT(*) FROM {}", ident(&table))).await?;
            if table == "mfa_throttles" {
                println!("      {table}: {template_rows} rows (clear counters have none), left as it is");
                continue;
            }
            if template_rows == 0 {
                println!("      {table}: no rows for the real users, nothing to copy");
                continue;
            }
            let copy = TableCopy {
                table,
                columns,
                template_rows,
            };
            if is_parent {
                parents.push(copy)
            } else {
                children.push(copy)
            }
        }
        if !children.is_empty() && !parents.iter().any(|p| p.table == "mfa_devices") {
            return Err("a table with a device_id column, but mfa_devices has no rows to copy".into());
        }
        for copy in parents.iter().chain(&children) {
            println!(
                "      {}: {} template rows ({:.1} per real user), columns: {}",
                copy.table,
                copy.template_rows,
                copy.template_rows as f64 / layout.real as f64,
                copy.columns.join(", ")
            );
        }
        Ok(Self {
            layout,
            parents,
            children,
        })
    }

    /// Copies the real users' rows into temporary template tables in `db`'s session (before
    /// any filler is inserted: the tables hold only real users then).
    async fn create_templates(&self, db: &mut Db) -> Result<(), BoxError> {
        let dialect = db.dialect();
        for copy in self.parents.iter().chain(&self.children) {
            let (t, key) = (
                &copy.table,
                if copy.columns.iter().any(|c| c == "user_id") {
                    "user_id"
                } else {
                    "device_id"
                },
            );
            let tmpl = template_table(t);
            match dialect {
                Dialect::Postgres => {
                    db.execute(&format!(
                        "DROP TABLE IF EXISTS {tmpl}; CREATE TEMP TABLE {tmpl} AS SELECT * FROM {}; \
                         CREATE INDEX ON {tmpl} ({key}); ANALYZE {tmpl}",
                        ident(t)
                    ))
                    .await?;
                }
                Dialect::Sqlite => {
                    db.execute(&format!(
                        "DROP TABLE IF EXISTS temp.{tmpl}; CREATE TEMP TABLE {tmpl} AS SELECT * FROM main.{}; \
                         CREATE INDEX temp.{} ON {tmpl} ({key})",
                        ident(t),
                        ident(&format!("cc_tmpl_{t}_key"))
                    ))
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// The `INSERT ... SELECT` for fillers `lo..=hi` into `copy`'s table.
    fn insert_sql(&self, dialect: Dialect, copy: &TableCopy, child: bool, lo: u64, hi: u64) -> String {
        let number = self.layout.filler_number_sql();
        let (user, template_user) = match dialect {
            Dialect::Postgres => (
                format!("('user-' || lpad(({number})::text, 8, '0'))"),
                format!(
                    "('user-' || lpad(({})::text, 8, '0'))",
                    self.layout.template_number_sql()
                ),
            ),
            Dialect::Sqlite => (
                format!("printf('user-%08d', {number})"),
                format!("printf('user-%08d', {})", self.layout.template_number_sql()),
            ),
        };
        // A new 16-byte id from the filler and the template's id: the same for a device and
        // for its child rows, unique per (filler, template id), spread like random ids.
        let new_id = |template: &str| match dialect {
            Dialect::Postgres => format!("decode(md5({user} || encode({template}, 'hex')), 'hex')"),
            Dialect::Sqlite => format!(
                "unhex(printf('%08x%08x', {number} * 2654435761 % 4294967296, {number} * 2246822519 % 4294967296) \
                 || substr(hex({template}), 17))"
            ),
        };
        let source = if child { "c" } else { "t" };
        let exprs: Vec<String> = copy
            .columns
            .iter()
            .map(|col| match col.as_str() {
                "user_id" => user.clone(),
                "id" => new_id(&format!("{source}.\"id\"")),
                "device_id" if child => new_id("c.\"device_id\""),
                other => format!("{source}.{}", ident(other)),
            })
            .collect();
        let columns: Vec<String> = copy.columns.iter().map(|c| ident(c)).collect();
        let (with, series) = match dialect {
            Dialect::Postgres => (
                String::new(),
                format!("generate_series({lo}::bigint, {hi}::bigint) AS g(f)"),
            ),
            Dialect::Sqlite => (
                format!("WITH RECURSIVE g(f) AS (SELECT {lo} UNION ALL SELECT f + 1 FROM g WHERE f < {hi}) "),
                "g".to_owned(),
            ),
        };
        // CROSS JOIN + WHERE: SQLite keeps the series as the outer loop (an index lookup of the
        // template per filler); PostgreSQL plans it as any join (a hash join on the template).
        let from = if child {
            format!(
                "{series} CROSS JOIN {} AS t CROSS JOIN {} AS c WHERE t.\"user_id\" = {template_user} \
                 AND c.\"device_id\" = t.\"id\"",
                template_table("mfa_devices"),
                template_table(&copy.table)
            )
        } else {
            format!(
                "{series} CROSS JOIN {} AS t WHERE t.\"user_id\" = {template_user}",
                template_table(&copy.table)
            )
        };
        format!(
            "{with}INSERT INTO {} ({}) SELECT {} FROM {from}",
            ident(&copy.table),
            columns.join(", "),
            exprs.join(", ")
        )
    }

    /// One text: per column, the smallest and largest stored size in `from` (-1 when all null).
    fn shape_sql(&self, dialect: Dialect, copy: &TableCopy, from: &str) -> String {
        let parts: Vec<String> = copy
            .columns
            .iter()
            .flat_map(|c| {
                let size = match dialect {
                    Dialect::Postgres => format!("pg_column_size({})", ident(c)),
                    Dialect::Sqlite => format!("length({})", ident(c)),
                };
                [
                    format!("COALESCE(MIN({size}), -1)"),
                    format!("COALESCE(MAX({size}), -1)"),
                ]
            })
            .collect();
        match dialect {
            Dialect::Postgres => format!("SELECT concat_ws(',', {}) FROM {from}", parts.join(", ")),
            Dialect::Sqlite => format!("SELECT {} FROM {from}", parts.join(" || ',' || ")),
        }
    }

    /// Inserts fillers `b * batch ..` of batch `b` into every table, in one transaction.
    async fn run_batch(&self, db: &mut Db, b: u64, batch: u64, progress: &Progress) -> Result<(), String> {
        let dialect = db.dialect();
        let fillers = self.layout.fillers();
        let lo = b * batch;
        let hi = (lo + batch).min(fillers) - 1;
        let begin = match dialect {
            Dialect::Postgres => "BEGIN",
            Dialect::Sqlite => "BEGIN IMMEDIATE",
        };
        db.execute(begin).await.map_err(|e| e.to_string())?;
        let tables = self
            .parents
            .iter()
            .map(|c| (c, false))
            .chain(self.children.iter().map(|c| (c, true)));
        for (i, (copy, child)) in tables.enumerate() {
            let t = Instant::now();
            let rows = db
                .execute(&self.insert_sql(dialect, copy, child, lo, hi))
                .await
                .map_err(|e| e.to_string())?;
            progress.rows.fetch_add(rows, Ordering::Relaxed);
            if let Some(nanos) = progress.table_nanos.get(i) {
                nanos.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
        }
        db.execute("COMMIT").await.map_err(|e| e.to_string())?;
        let done = progress.fillers.fetch_add(hi + 1 - lo, Ordering::Relaxed) + hi + 1 - lo;
        let mut last = progress.last_print.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() >= Duration::from_secs(5) || done >= fillers {
            let secs = progress.started.elapsed().as_secs_f64();
            let rows = progress.rows.load(Ordering::Relaxed);
            println!(
                "      {}: {}/{} fillers, {} rows, {secs:.1} s ({:.0} rows/s)",
                progress.label,
                thousands(done),
                thousands(fillers),
                thousands(rows),
                rows as f64 / secs.max(1e-9)
            );
            *last = Instant::now();
        }
        Ok(())
    }

    /// Inserts all fillers, `batch` users per statement (one transaction per batch), on all of
    /// `dbs` at once (each must have the templates). The first batch runs alone with foreign
    /// keys checked, which checks the SQL that maps copied rows to their copied device (the
    /// same SQL for every batch); the others run without the per-row check (PostgreSQL:
    /// `session_replication_role = replica`; SQLite: `foreign_keys = OFF`), which makes the same
    /// rows a third faster to load. Returns the connections.
    async fn load(self: &Arc<Self>, mut dbs: Vec<Db>, batch: u64, label: &str) -> Result<Vec<Db>, BoxError> {
        let fillers = self.layout.fillers();
        let batches = fillers.div_ceil(batch);
        let progress = Arc::new(Progress {
            label: label.to_owned(),
            started: Instant::now(),
            rows: AtomicU64::new(0),
            fillers: AtomicU64::new(0),
            table_nanos: (0..self.parents.len() + self.children.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            last_print: std::sync::Mutex::new(Instant::now()),
        });
        let Some(first) = dbs.first_mut() else {
            return Err("no connection to load on".into());
        };
        if batches > 0 {
            self.run_batch(first, 0, batch, &progress).await?;
        }
        let (unchecked, checked) = match first.dialect() {
            Dialect::Postgres => (
                "SET session_replication_role = replica",
                "RESET session_replication_role",
            ),
            Dialect::Sqlite => ("PRAGMA foreign_keys = OFF", "PRAGMA foreign_keys = ON"),
        };
        let connections = dbs.len() as u64;
        let mut handles = Vec::new();
        for (j, mut db) in dbs.into_iter().enumerate() {
            let (me, progress) = (Arc::clone(self), Arc::clone(&progress));
            handles.push(tokio::spawn(async move {
                db.execute(unchecked).await.map_err(|e| e.to_string())?;
                let mut b = 1 + j as u64;
                while b < batches {
                    me.run_batch(&mut db, b, batch, &progress).await?;
                    b += connections;
                }
                db.execute(checked).await.map_err(|e| e.to_string())?;
                Ok::<Db, String>(db)
            }));
        }
        let mut dbs = Vec::new();
        for handle in handles {
            dbs.push(handle.await??);
        }
        let per_table: Vec<String> = self
            .parents
            .iter()
            .chain(&self.children)
            .zip(&progress.table_nanos)
            .map(|(copy, nanos)| format!("{} {:.1} s", copy.table, nanos.load(Ordering::Relaxed) as f64 / 1e9))
            .collect();
        println!(
            "      {label}: on {connections} connection(s), time in the inserts per table (summed over \
             connections): {}",
            per_table.join(", ")
        );
        Ok(dbs)
    }

    /// Checks the loaded tables against the templates (in `db`'s session) and drops those.
    async fn check(&self, db: &mut Db) -> Result<(), BoxError> {
        let dialect = db.dialect();
        // Every copied table now holds exactly N / R times the real users' rows.
        for copy in self.parents.iter().chain(&self.children) {
            let rows = db.int(&format!("SELECT COUNT(*) FROM {}", ident(&copy.table))).await?;
            let per_user = copy.template_rows as u64 / self.layout.real;
            if (copy.template_rows as u64).is_multiple_of(self.layout.real)
                && rows as u64 != per_user * self.layout.users
            {
                return Err(format!(
                    "{}: {rows} rows after loading, expected {} ({per_user} per user)",
                    copy.table,
                    per_user * self.layout.users
                )
                .into());
            }
            // And every column has the same range of stored sizes as in the real users' rows.
            let shape = |from: &str| self.shape_sql(dialect, copy, from);
            let loaded = db.texts(&shape(&ident(&copy.table))).await?;
            let template = db.texts(&shape(&template_table(&copy.table))).await?;
            if loaded != template {
                return Err(format!(
                    "{}: the copies differ in shape from the real users' rows: per column (min, max) \
                     stored size {loaded:?} after loading, {template:?} in the real users' rows",
                    copy.table
                )
                .into());
            }
            println!(
                "      {}: {} rows, every column's (min, max) stored size as in the real users' rows",
                copy.table,
                thousands(rows as u64)
            );
            let drop = match dialect {
                Dialect::Postgres => format!("DROP TABLE {}", template_table(&copy.table)),
                Dialect::Sqlite => format!("DROP TABLE temp.{}", template_table(&copy.table)),
            };
            db.execute(&drop).await?;
        }
        Ok(())
    }
}

fn template_table(table: &str) -> String {
    ident(&format!("cc_tmpl_{table}"))
}

// ----- SQLite ----------------------------------------------------------------------------------

/// Removes a directory (and what is in it) on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sqlite_options(path: &Path, synchronous: SqliteSynchronous) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

async fn run_sqlite(args: &Args, rows: &mut Vec<Row>) -> Result<(), BoxError> {
    let dir = TempDir(args.dir.join(format!("cost-curve-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0)?;
    println!(
        "\n== SQLite (bundled {}): files in {}; the store opens them in WAL mode with synchronous=FULL",
        sqlite_version().await?,
        dir.0.display()
    );
    for &n in &args.sqlite_sizes {
        let path = dir.0.join(format!("users-{n}.db"));
        let row = sqlite_size(args, n, &path).await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let row = row?;
        row.print();
        rows.push(row);
    }
    Ok(())
}

async fn sqlite_version() -> Result<String, BoxError> {
    let mut c = SqliteConnectOptions::from_str("sqlite::memory:")?.connect().await?;
    let v: String = sqlx::query_scalar("SELECT sqlite_version()").fetch_one(&mut c).await?;
    c.close().await?;
    Ok(v)
}

async fn checkpoint_sqlite(path: &Path) -> Result<(), BoxError> {
    let mut c = sqlite_options(path, SqliteSynchronous::Full).connect().await?;
    sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut c).await?;
    c.close().await?;
    Ok(())
}

async fn sqlite_size(args: &Args, n: u64, path: &Path) -> Result<Row, BoxError> {
    let layout = Layout::new(n, args.real_users);
    println!(
        "\n-- SQLite, {} users ({} real, 1 in {})",
        thousands(n),
        layout.real,
        layout.stride
    );
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let users = Arc::new(layout.real_users()?);

    // Enrollment through the API.
    let t = Instant::now();
    let mfa = Arc::new(service(
        SqliteStore::open(path).await?,
        clock.clone(),
        BackupCodeConfig::DEFAULT_COUNT,
    )?);
    let codes = enroll(&mfa, &users, args.clients).await?;
    mfa.store().close().await;
    drop(mfa);
    let enroll_secs = t.elapsed().as_secs_f64();
    println!("   enrolled {} real users in {enroll_secs:.1} s", layout.real);

    // Fillers, on a connection of our own without fsync.
    let mut db = Db::Lite(sqlite_options(path, SqliteSynchronous::Off).connect().await?);
    db.execute("PRAGMA cache_size = -1048576").await?;
    let t = Instant::now();
    let loader = Arc::new(Loader::plan(&mut db, layout).await?);
    loader.create_templates(&mut db).await?;
    // One connection: SQLite runs one writer at a time.
    let mut dbs = loader.load(vec![db], args.batch, "SQLite").await?;
    let Some(mut db) = dbs.pop() else {
        return Err("the loader lost its connection".into());
    };
    let load_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    loader.check(&mut db).await?;
    println!("   checked row counts and shapes in {:.1} s", t.elapsed().as_secs_f64());
    println!("   bulk load: {load_secs:.1} s");
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)").await?;
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let db_bytes = file_len(path) + file_len(&wal);
    println!(
        "   size: {} bytes ({} file + {} WAL), {:.0} bytes/user",
        thousands(db_bytes),
        thousands(file_len(path)),
        thousands(file_len(&wal)),
        db_bytes as f64 / n as f64
    );
    let per_table = db
        .pairs(
            "SELECT m.tbl_name, SUM(s.pgsize) FROM dbstat s JOIN sqlite_master m ON m.name = s.name \
             GROUP BY m.tbl_name ORDER BY 2 DESC",
        )
        .await?;
    for (table, bytes) in per_table {
        println!(
            "      {table} (with its indexes): {:.1} bytes/user",
            bytes as f64 / n as f64
        );
    }

    // The anchor table, filled now so that both phases run on the same file.
    db.execute("CREATE TABLE anchor (id INTEGER PRIMARY KEY, n INTEGER NOT NULL) STRICT")
        .await?;
    let mut lo = 1u64;
    while lo <= n {
        let hi = (lo + 1_000_000 - 1).min(n);
        db.execute(&format!(
            "WITH RECURSIVE g(f) AS (SELECT {lo} UNION ALL SELECT f + 1 FROM g WHERE f < {hi}) \
             INSERT INTO anchor (id, n) SELECT f, 0 FROM g"
        ))
        .await?;
        lo = hi + 1;
    }
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)").await?;
    db.close().await?;

    // Ours, on the store as it opens itself.
    let mfa = Arc::new(service(
        SqliteStore::open(path).await?,
        clock.clone(),
        BackupCodeConfig::DEFAULT_COUNT,
    )?);
    let load = Load {
        server: None,
        clock,
        users,
        secrets: Arc::new(
            (0..layout.real as usize)
                .map(|i| SecretBytes::new(secret_bytes(i)))
                .collect(),
        ),
        codes: Arc::new(codes),
    };
    let duration = Duration::from_secs(args.secs);
    checkpoint_sqlite(path).await?;
    let synced = flush_os_cache();
    let warm_up = load.totp_warm_up(&mfa, args.clients).await?;
    let mut totp = load.totp_phase(&mfa, args.clients, duration, warm_up).await?;
    totp.note.push_str(&format!("; {synced}"));
    checkpoint_sqlite(path).await?;
    let synced = flush_os_cache();
    let warm_up = load.backup_warm_up(&mfa, args.clients).await?;
    let mut backup = load.backup_phase(&mfa, args.clients, duration, warm_up).await?;
    backup.note.push_str(&format!("; {synced}"));
    mfa.store().close().await;
    drop(mfa);

    // The anchor: SQLite's own single-row update, same file, same mode.
    checkpoint_sqlite(path).await?;
    let synced = flush_os_cache();
    let mut anchor = sqlite_anchor(path, n, args).await?;
    anchor.note.push_str(&format!("; {synced}"));
    Ok(Row {
        store: StoreKind::Sqlite,
        users: n,
        totp,
        backup,
        anchor: Some(anchor),
        db_bytes,
        enroll_secs,
        load_secs,
    })
}

async fn sqlite_anchor(path: &Path, n: u64, args: &Args) -> Result<Phase, BoxError> {
    // As `SqliteStore::open` configures its pool.
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .test_before_acquire(false)
        .connect_with(sqlite_options(path, SqliteSynchronous::Full))
        .await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&pool).await?;
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&pool).await?;
    // Warm-up (not timed): every connection opened, the statement prepared.
    for id in 1..=64u64 {
        sqlx::query("UPDATE anchor SET n = n + 1 WHERE id = ?")
            .bind(i64::try_from(1 + splitmix64(id) % n)?)
            .execute(&pool)
            .await?;
    }
    let cpu = CpuSnap::take(None);
    let started = Instant::now();
    let p = pool.clone();
    let result = run_tasks(
        args.clients,
        usize::MAX,
        started + Duration::from_secs(args.secs),
        move |i| {
            let pool = p.clone();
            let id = i64::try_from(1 + splitmix64(i as u64 ^ 0xA5A5) % n).unwrap_or(1);
            async move {
                match sqlx::query("UPDATE anchor SET n = n + 1 WHERE id = ?")
                    .bind(id)
                    .execute(&pool)
                    .await
                {
                    Ok(r) if r.rows_affected() == 1 => Ok(()),
                    Ok(r) => Err(format!("anchor update of {id} changed {} rows", r.rows_affected())),
                    Err(e) => Err(format!("anchor update of {id}: {e}")),
                }
            }
        },
    )
    .await?;
    let wall = started.elapsed();
    pool.close().await;
    Ok(into_phase(
        result,
        wall,
        cpu,
        format!("anchor pool: journal_mode={mode}, synchronous={sync} (2 = FULL), 8 connections"),
    ))
}

// ----- PostgreSQL ------------------------------------------------------------------------------

async fn pg_connect(cluster: &PgCluster, db: &str) -> Result<PgConnection, BoxError> {
    Ok(PgConnectOptions::from_str(&cluster.url(db))?.connect().await?)
}

/// `SHOW name` on a fresh connection (no session settings).
async fn pg_show(cluster: &PgCluster, name: &str) -> Result<String, BoxError> {
    let mut c = pg_connect(cluster, "postgres").await?;
    let v: String = sqlx::query_scalar(AssertSqlSafe(format!("SHOW {name}")))
        .fetch_one(&mut c)
        .await?;
    c.close().await?;
    Ok(v)
}

/// Server settings for the load (`Some`) or back to the defaults of the timed phases (`None`).
async fn pg_load_settings(cluster: &PgCluster, load: bool) -> Result<(), BoxError> {
    let mut c = pg_connect(cluster, "postgres").await?;
    let statements: &[&'static str] = if load {
        &[
            "ALTER SYSTEM SET fsync = off",
            "ALTER SYSTEM SET synchronous_commit = off",
            "ALTER SYSTEM SET max_wal_size = '8GB'",
            "SELECT pg_reload_conf()",
        ]
    } else {
        &[
            "ALTER SYSTEM RESET fsync",
            "ALTER SYSTEM RESET synchronous_commit",
            "ALTER SYSTEM RESET max_wal_size",
            "SELECT pg_reload_conf()",
        ]
    };
    // One statement per query: ALTER SYSTEM may not run in a (multi-statement) transaction.
    for &sql in statements {
        sqlx::raw_sql(sql).execute(&mut c).await?;
    }
    c.close().await?;
    // The reload is asynchronous: wait until a new session sees it.
    let want = if load { "off" } else { "on" };
    for _ in 0..100 {
        if pg_show(cluster, "fsync").await? == want && pg_show(cluster, "synchronous_commit").await? == want {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("the server did not switch to fsync={want}, synchronous_commit={want}").into())
}

async fn run_postgres(args: &Args, rows: &mut Vec<Row>) -> Result<(), BoxError> {
    // One cluster for all sizes, stopped and removed when dropped (also on errors). fsync and
    // synchronous_commit stay at their defaults (on) on the command line, which would override
    // the ALTER SYSTEM of the load.
    let cluster = PgCluster::start(
        "curve",
        &[
            ("max_connections", "300"),
            ("shared_buffers", SHARED_BUFFERS),
            // For the WAL flush counts and times the phases report (two clock reads per flush).
            ("track_wal_io_timing", "on"),
        ],
    )?;
    println!(
        "\n== PostgreSQL {}: fsync={}, synchronous_commit={}, shared_buffers={} (cluster in {})",
        pg_show(&cluster, "server_version").await?,
        pg_show(&cluster, "fsync").await?,
        pg_show(&cluster, "synchronous_commit").await?,
        pg_show(&cluster, "shared_buffers").await?,
        cluster.dir().display()
    );
    for &n in &args.postgres_sizes {
        let row = postgres_size(&cluster, args, n).await?;
        row.print();
        rows.push(row);
    }
    Ok(())
}

async fn postgres_size(cluster: &PgCluster, args: &Args, n: u64) -> Result<Row, BoxError> {
    let layout = Layout::new(n, args.real_users);
    println!(
        "\n-- PostgreSQL, {} users ({} real, 1 in {})",
        thousands(n),
        layout.real,
        layout.stride
    );
    let mut admin = pg_connect(cluster, "postgres").await?;
    // One statement per query: neither may run in a (multi-statement, implicit) transaction.
    for sql in [
        format!("DROP DATABASE IF EXISTS {PG_DB}"),
        format!("CREATE DATABASE {PG_DB}"),
    ] {
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut admin).await?;
    }
    admin.close().await?;
    let url = cluster.url(PG_DB);
    pg_load_settings(cluster, true).await?;

    // Enrollment through the API.
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let users = Arc::new(layout.real_users()?);
    let t = Instant::now();
    let store = PostgresStore::connect_with(&url, args.clients).await?;
    store.migrate().await?;
    let mfa = Arc::new(service(store, clock.clone(), BackupCodeConfig::DEFAULT_COUNT)?);
    let codes = enroll(&mfa, &users, args.clients).await?;
    mfa.store().close().await;
    drop(mfa);
    let enroll_secs = t.elapsed().as_secs_f64();
    println!(
        "   enrolled {} real users in {enroll_secs:.1} s (fsync off)",
        layout.real
    );

    // Fillers.
    let mut db = Db::Pg(pg_connect(cluster, PG_DB).await?);
    let t = Instant::now();
    let loader = Arc::new(Loader::plan(&mut db, layout).await?);
    let mut dbs = vec![db];
    for _ in 1..args.load_connections {
        dbs.push(Db::Pg(pg_connect(cluster, PG_DB).await?));
    }
    for db in &mut dbs {
        loader.create_templates(db).await?;
    }
    let mut dbs = loader.load(dbs, args.batch, "PostgreSQL").await?.into_iter();
    let Some(mut db) = dbs.next() else {
        return Err("the loader lost its connections".into());
    };
    for other in dbs {
        other.close().await?;
    }
    let load_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    loader.check(&mut db).await?;
    println!("   checked row counts and shapes in {:.1} s", t.elapsed().as_secs_f64());
    println!("   bulk load: {load_secs:.1} s (fsync off)");
    let t = Instant::now();
    db.execute("VACUUM ANALYZE").await?;
    pg_load_settings(cluster, false).await?;
    db.execute("CHECKPOINT").await?;
    println!(
        "   VACUUM ANALYZE, fsync back on, CHECKPOINT: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let sizes = db
        .pairs(
            "SELECT c.relname::text, pg_total_relation_size(c.oid)::bigint FROM pg_class c \
             JOIN pg_namespace s ON s.oid = c.relnamespace WHERE c.relkind = 'r' \
             AND s.nspname = current_schema() AND c.relname LIKE 'mfa\\_%' ORDER BY 2 DESC",
        )
        .await?;
    let db_bytes: u64 = sizes.iter().map(|(_, b)| u64::try_from(*b).unwrap_or(0)).sum();
    println!(
        "   size: {} bytes in the mfa_* tables (indexes, TOAST included), {:.0} bytes/user",
        thousands(db_bytes),
        db_bytes as f64 / n as f64
    );
    for (table, bytes) in &sizes {
        println!("      {table}: {:.1} bytes/user", *bytes as f64 / n as f64);
    }
    let (fsync, sync_commit) = (
        pg_show(cluster, "fsync").await?,
        pg_show(cluster, "synchronous_commit").await?,
    );

    // Ours.
    let load = Load {
        server: std::fs::read_to_string(cluster.dir().join("data").join("postmaster.pid"))
            .ok()
            .and_then(|p| p.lines().next().and_then(|l| l.trim().parse().ok())),
        clock,
        users,
        secrets: Arc::new(
            (0..layout.real as usize)
                .map(|i| SecretBytes::new(secret_bytes(i)))
                .collect(),
        ),
        codes: Arc::new(codes),
    };
    let mut totp = pg_phase(&mut db, &load, &url, args, true).await?;
    let mut backup = pg_phase(&mut db, &load, &url, args, false).await?;
    db.close().await?;
    for p in [&mut totp, &mut backup] {
        p.note
            .push_str(&format!("; fsync={fsync}, synchronous_commit={sync_commit}"));
    }
    Ok(Row {
        store: StoreKind::Postgres,
        users: n,
        totp,
        backup,
        anchor: None,
        db_bytes,
        enroll_secs,
        load_secs,
    })
}

/// Server counters: WAL records, full-page images and bytes; blocks read from outside shared
/// buffers and found in them; row updates and HOT updates of our tables; WAL flushes and the µs
/// they took (`track_wal_io_timing`).
async fn pg_stats(db: &mut Db) -> Result<Vec<i64>, BoxError> {
    db.ints(
        "SELECT w.wal_records, w.wal_fpi, w.wal_bytes::bigint, d.blks_read, d.blks_hit, \
         (SELECT COALESCE(SUM(n_tup_upd), 0)::bigint FROM pg_stat_user_tables), \
         (SELECT COALESCE(SUM(n_tup_hot_upd), 0)::bigint FROM pg_stat_user_tables), \
         w.wal_sync, (w.wal_sync_time * 1000)::bigint \
         FROM pg_stat_wal w, pg_stat_database d WHERE d.datname = current_database()",
    )
    .await
}

/// One PostgreSQL phase (TOTP or backup codes): a CHECKPOINT, the kernel's dirty pages flushed,
/// the warm-up on a store of its own, then the timed phase on a new store, with the server's
/// counters over exactly the timed phase (closing a store makes its backends report them).
async fn pg_phase(db: &mut Db, load: &Load, url: &str, args: &Args, totp: bool) -> Result<Phase, BoxError> {
    let duration = Duration::from_secs(args.secs);
    db.execute("CHECKPOINT").await?;
    let synced = flush_os_cache();
    let mfa = Arc::new(service(
        PostgresStore::connect_with(url, args.clients).await?,
        load.clock.clone(),
        BackupCodeConfig::DEFAULT_COUNT,
    )?);
    let warm_up = if totp {
        load.totp_warm_up(&mfa, args.clients).await?
    } else {
        load.backup_warm_up(&mfa, args.clients).await?
    };
    mfa.store().close().await;
    let mfa = Arc::new(service(
        PostgresStore::connect_with(url, args.clients).await?,
        load.clock.clone(),
        BackupCodeConfig::DEFAULT_COUNT,
    )?);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = pg_stats(db).await?;
    let mut phase = if totp {
        load.totp_phase(&mfa, args.clients, duration, warm_up).await?
    } else {
        load.backup_phase(&mfa, args.clients, duration, warm_up).await?
    };
    mfa.store().close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = pg_stats(db).await?;
    let delta: Vec<f64> = after.iter().zip(&before).map(|(a, b)| (a - b) as f64).collect();
    let per_op = |i: usize| delta.get(i).copied().unwrap_or(0.0) / phase.ops.max(1) as f64;
    let updates = delta.get(5).copied().unwrap_or(0.0);
    let _ = write!(
        phase.note,
        "; per verification: {:.1} WAL records, {:.2} full-page images, {:.0} WAL bytes, \
         {:.2} blocks read from outside shared buffers, {:.1} buffer hits; {:.0} % of row updates HOT; \
         {:.2} WAL flushes of {:.0} µs on average; {synced}",
        per_op(0),
        per_op(1),
        per_op(2),
        per_op(3),
        per_op(4),
        if updates > 0.0 {
            100.0 * delta.get(6).copied().unwrap_or(0.0) / updates
        } else {
            0.0
        },
        per_op(7),
        delta.get(8).copied().unwrap_or(0.0) / delta.get(7).copied().unwrap_or(0.0).max(1.0)
    );
    Ok(phase)
}

// ----- SVG -------------------------------------------------------------------------------------

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A "nice" upper bound and tick step for values up to `max`.
fn nice_axis(max: f64) -> (f64, f64) {
    let max = if max > 0.0 { max * 1.1 } else { 1.0 };
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    ((max / step).ceil() * step, step)
}

fn tick_label(v: f64) -> String {
    if v >= 1000.0 {
        format!("{}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

struct Series {
    name: String,
    color: &'static str,
    dash: &'static str,
    /// (users, value)
    points: Vec<(f64, f64)>,
}

fn svg(rows: &[Row], args: &Args) -> String {
    // (name, color, dash, value of a row or None)
    type Pick = fn(&Row) -> Option<&Phase>;
    let lines: [(StoreKind, &str, &'static str, &'static str, Pick); 5] = [
        (StoreKind::Postgres, "PostgreSQL TOTP", "#1f63b4", "", |r| Some(&r.totp)),
        (StoreKind::Postgres, "PostgreSQL backup code", "#1f63b4", "6 4", |r| {
            Some(&r.backup)
        }),
        (StoreKind::Sqlite, "SQLite TOTP", "#d9661f", "", |r| Some(&r.totp)),
        (StoreKind::Sqlite, "SQLite backup code", "#d9661f", "6 4", |r| {
            Some(&r.backup)
        }),
        (
            StoreKind::Sqlite,
            "SQLite anchor: 1-row UPDATE",
            "#777777",
            "2 3",
            |r| r.anchor.as_ref(),
        ),
    ];
    let series = |value: fn(&Phase) -> f64| -> Vec<Series> {
        lines
            .iter()
            .map(|(store, name, color, dash, pick)| Series {
                name: (*name).to_owned(),
                color,
                dash,
                points: rows
                    .iter()
                    .filter(|r| r.store == *store)
                    .filter_map(|r| pick(r).map(|p| (r.users as f64, value(p))))
                    .collect(),
            })
            .filter(|s| !s.points.is_empty())
            .collect()
    };
    let throughput = series(|p| p.rate);
    let p99 = series(|p| p.p99_us as f64 / 1000.0);

    let (width, height) = (1000.0, 470.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{width}" height="{height}" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="16" font-weight="bold">Sign-in verification cost vs enrolled users</text>"#,
        width / 2.0
    );
    let _ = writeln!(
        out,
        r##"<text x="{}" y="42" text-anchor="middle" fill="#555">{}</text>"##,
        width / 2.0,
        xml_escape(&format!(
            "tools/src/bin/cost_curve.rs: {} concurrent clients, {} s per phase, {} real users verified; \
             PostgreSQL fsync=on, SQLite WAL + synchronous=FULL",
            args.clients, args.secs, args.real_users
        ))
    );
    let all_users: Vec<f64> = rows.iter().map(|r| r.users as f64).collect();
    panel(
        &mut out,
        70.0,
        "Verifications per second",
        &throughput,
        &all_users,
        false,
    );
    panel(&mut out, 570.0, "p99 latency (ms, log scale)", &p99, &all_users, true);
    // Legend.
    let mut x = 70.0;
    for s in &throughput {
        let _ = writeln!(
            out,
            r#"<line x1="{x}" y1="440" x2="{}" y2="440" stroke="{}" stroke-width="2.5" stroke-dasharray="{}"/><text x="{}" y="444">{}</text>"#,
            x + 28.0,
            s.color,
            s.dash,
            x + 34.0,
            xml_escape(&s.name)
        );
        x += 40.0 + 7.0 * s.name.len() as f64;
    }
    out.push_str("</svg>\n");
    out
}

/// One plot, 400 × 300 at (`left`, 70): a log x axis over the users, a linear y axis from 0 or a
/// log one.
fn panel(out: &mut String, left: f64, title: &str, series: &[Series], users: &[f64], log_y: bool) {
    let (top, w, h) = (70.0, 400.0, 300.0);
    let min = users.iter().copied().fold(f64::INFINITY, f64::min);
    let max = users.iter().copied().fold(0.0, f64::max);
    let (mut lo, mut hi) = if min.is_finite() && max > 0.0 {
        (min.log10().floor(), max.log10().ceil())
    } else {
        (4.0, 7.0)
    };
    if hi <= lo {
        lo -= 0.5;
        hi += 0.5;
    }
    let values = || series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let ymax_data = values().fold(0.0, f64::max);
    // Linear: 0 to a nice maximum. Log: whole decades around the data.
    let (ymax, ystep) = nice_axis(ymax_data);
    let ymin_positive = values().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let (ylo, mut yhi) = if ymin_positive.is_finite() {
        (ymin_positive.log10().floor(), ymax_data.log10().ceil())
    } else {
        (0.0, 1.0)
    };
    if yhi <= ylo {
        yhi = ylo + 1.0;
    }
    let x_of = |u: f64| left + (u.log10() - lo) / (hi - lo) * w;
    let y_of = |v: f64| {
        if log_y {
            top + h - (v.max(10f64.powf(ylo)).log10() - ylo) / (yhi - ylo) * h
        } else {
            top + h - v / ymax * h
        }
    };
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="14">{}</text>"#,
        left + w / 2.0,
        top - 8.0,
        xml_escape(title)
    );
    // Grid and ticks.
    let ticks: Vec<(f64, bool)> = if log_y {
        let mut t = Vec::new();
        let mut decade = ylo;
        while decade <= yhi {
            for (m, labelled) in [(1.0, true), (2.0, false), (5.0, false)] {
                let v = m * 10f64.powf(decade);
                if v <= 10f64.powf(yhi) * 1.0001 {
                    t.push((v, labelled));
                }
            }
            decade += 1.0;
        }
        t
    } else {
        let mut t = Vec::new();
        let mut v = 0.0;
        while v <= ymax + ystep / 2.0 {
            t.push((v, true));
            v += ystep;
        }
        t
    };
    for (v, labelled) in ticks {
        let y = y_of(v);
        let label = if labelled { tick_label(v) } else { String::new() };
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{}" y="{:.1}" text-anchor="end">{label}</text>"##,
            left + w,
            left - 6.0,
            y + 4.0,
        );
    }
    let mut decade = lo.ceil();
    while decade <= hi {
        let x = x_of(10f64.powf(decade));
        let label = users_label(10f64.powf(decade).round() as u64);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{}" stroke="#e3e3e3"/><text x="{x:.1}" y="{}" text-anchor="middle">{label}</text>"##,
            top + h,
            top + h + 18.0
        );
        decade += 1.0;
    }
    let _ = writeln!(
        out,
        r##"<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#888"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">enrolled users (log scale)</text>"#,
        left + w / 2.0,
        top + h + 36.0
    );
    for s in series {
        let points: Vec<String> = s
            .points
            .iter()
            .map(|(u, v)| format!("{:.1},{:.1}", x_of(*u), y_of(*v)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2.5" stroke-dasharray="{}"/>"#,
            points.join(" "),
            s.color,
            s.dash
        );
        for (u, v) in &s.points {
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"><title>{}: {} users, {:.1}</title></circle>"#,
                x_of(*u),
                y_of(*v),
                s.color,
                xml_escape(&s.name),
                thousands(*u as u64),
                v
            );
        }
    }
}
