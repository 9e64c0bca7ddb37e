//! Load benchmark on PostgreSQL: our verifications per second on `PostgresStore` next to
//! `pgbench` single-row updates, on the same server, with the same number of connections, in one
//! run.
//!
//! For each `fsync` setting (on, off, or both) a fresh throwaway cluster is started with
//! `-c fsync=...` (a fresh cluster rather than `ALTER SYSTEM` + reload, so each setting starts
//! from the same empty state and nothing of the other run's WAL, bloat or cache is inherited),
//! and then:
//!
//! 1. `pgbench -i -s 10 -q`, then `pgbench -n -M prepared -c C -j 2 -T S` with a custom script
//!    of one `UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid` on a random
//!    row. Throughput is pgbench's own tps (without initial connection time); latencies come from
//!    its per-transaction log (`-l`, third column: elapsed µs).
//! 2. U users, each with an imported TOTP secret and a backup-code set (6 codes, the default,
//!    or `--codes N` up to 32), are set up (not timed). Then C tokio tasks (multi-thread
//!    runtime, 2 workers) share one `Mfa<PostgresStore, ManualClock>` made with
//!    `connect_with(url, C)`: verifications run on its C verification connections (its other
//!    pool, C/4 connections for enrollment and the like, serves the setup and is idle while
//!    timing):
//!    - TOTP: rounds in which every user verifies once with the current code; between rounds
//!      the shared clock moves 30 s on (replay prevention accepts one code per user per step).
//!      The phase stops taking new work at S seconds (mid-round).
//!    - Backup codes: every user spends their unused codes (code 2 of every user, then code 3,
//!      ...), until S seconds have passed or all codes are spent.
//!
//!    Before both, untimed, every user verifies twice by TOTP and spends their first backup
//!    code, so that the timed phases measure returning users, whose verification the
//!    service's cache lets go out as the settlement alone (an imported device's first accepted
//!    code changes the devices version, which the second TOTP round reads again).
//!
//!    Latency is measured around each call (pool wait included, as pgbench's includes its
//!    client's queueing); throughput is operations / wall time of the timed phase.
//!
//! After the setup, `VACUUM ANALYZE` (as `pgbench -i` ends with), so the planner has statistics
//! for both. A `CHECKPOINT` precedes each timed phase, so each starts with the same (empty) amount of
//! dirty data and the same full-page-write situation. Every outcome of ours must be
//! `Accepted`: anything else is counted, and the program exits with status 1.
//!
//! Before the loops it measures how many round trips one verification makes, through a small
//! counting proxy in front of the server's socket (a 1-connection pool, statement cache warm).
//!
//! Run: `cargo run --release -p multifactor-tools --bin pg_load -- [--clients C] [--seconds S] [--users U]
//! [--codes N] [--fsync on|off|both] [--quick]`. `--quick` is 1 s phases and 500 users (a CI smoke).
//! `DATABASE_URL` is ignored on purpose (see `kit/src/pg_cluster.rs`): the benchmark needs its
//! own server with settings it chooses.
//!
//! Server settings on top of `fsync`: `max_connections=300`, `shared_buffers=512MB` (so the
//! 160 MB of pgbench scale 10 and our tables both stay in shared buffers), defaults otherwise
//! (`synchronous_commit=on`, `full_page_writes=on`). The client programs run on the same machine
//! as the server, so client CPU competes with server CPU for both contenders alike.

use multifactor_kit::load;
use multifactor_kit::pg_cluster;

use load::{TaskResult, accepted, print_machine, run_tasks, secret_bytes, service, set_up_user};

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use multifactor::backup_codes::BackupCodeConfig;
use multifactor::conformance::CountingStore;
use multifactor::store::ThrottleState;
use multifactor::totp::TotpParams;
use multifactor::{DeviceStore, Factor, ManualClock, Mfa, Outcome, PostgresStore, SecretBytes, UnixTime, UserId};
use pg_cluster::{PgCluster, checked};

type BoxError = Box<dyn Error>;

/// A step boundary well inside any clock's range.
const START: u64 = 1_800_000_000;
const PERIOD: u64 = 30;
const PGBENCH_SCALE: &str = "10";
const SHARED_BUFFERS: &str = "512MB";
/// The script pgbench runs: exactly one single-row update, as a transaction of its own.
const PGBENCH_SCRIPT: &str = "\\set aid random(1, 1000000)\n\
                              UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;\n";

struct Args {
    clients: u32,
    seconds: u64,
    users: usize,
    /// Backup codes per set (the product's default unless `--codes`).
    codes: usize,
    fsync: Vec<&'static str>,
}

fn parse_args() -> Result<Args, String> {
    let mut clients = 8;
    let mut seconds = None;
    let mut users = None;
    let mut codes = BackupCodeConfig::DEFAULT_COUNT;
    let mut quick = false;
    let mut fsync = vec!["on", "off"];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--clients" => clients = value("--clients")?.parse().map_err(|e| format!("--clients: {e}"))?,
            "--seconds" => seconds = Some(value("--seconds")?.parse().map_err(|e| format!("--seconds: {e}"))?),
            "--users" => users = Some(value("--users")?.parse().map_err(|e| format!("--users: {e}"))?),
            "--codes" => codes = value("--codes")?.parse().map_err(|e| format!("--codes: {e}"))?,
            "--quick" => quick = true,
            "--fsync" => {
                fsync = match value("--fsync")?.as_str() {
                    "on" => vec!["on"],
                    "off" => vec!["off"],
                    "both" => vec!["on", "off"],
                    other => return Err(format!("--fsync takes on, off or both, not {other:?}")),
                }
            }
            "-h" | "--help" => {
                println!(
                    "usage: pg_load [--clients C (8)] [--seconds S (10)] [--users U (5000)] [--codes N (6)] \
                     [--fsync on|off|both] [--quick (1 s, 500 users)]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    let (default_seconds, default_users) = if quick { (1, 500) } else { (10, 5_000) };
    let args = Args {
        clients,
        seconds: seconds.unwrap_or(default_seconds),
        users: users.unwrap_or(default_users),
        codes,
        fsync,
    };
    if args.clients == 0 || args.clients > 250 || args.seconds == 0 || args.users == 0 {
        return Err("need 1 <= clients <= 250, seconds >= 1, users >= 1".into());
    }
    // The first code of every set goes to the warm-up: at least one more is timed.
    let fewest = BackupCodeConfig::MIN_COUNT.max(2);
    if !(fewest..=BackupCodeConfig::MAX_COUNT).contains(&args.codes) {
        return Err(format!(
            "--codes takes {fewest} to {} (the first code of each set warms the cache up)",
            BackupCodeConfig::MAX_COUNT
        ));
    }
    Ok(args)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let args = parse_args()?;
    print_machine();
    let mut failed = false;
    for (i, fsync) in args.fsync.iter().enumerate() {
        // The cluster is dropped (stopped, removed) at the end of each iteration, also on errors.
        let cluster = PgCluster::start(
            &format!("fsync{fsync}"),
            &[
                ("fsync", fsync),
                ("max_connections", "300"),
                ("shared_buffers", SHARED_BUFFERS),
            ],
        )?;
        if i == 0
            && let Err(e) = print_round_trips(&cluster).await
        {
            println!("round trips per verification: FAILED: {e}");
            failed = true;
        }
        failed |= run_setting(&cluster, &args, fsync).await?;
    }
    if failed {
        println!("\nFAILED: some verifications were not accepted (see above)");
        std::process::exit(1);
    }
    Ok(())
}

/// Runs `sql` with psql in database `db` and returns its unaligned, tuples-only output.
fn psql(cluster: &PgCluster, db: &str, sql: &str) -> Result<String, String> {
    let out = checked(
        "psql",
        cluster
            .command("psql")
            .arg("-h")
            .arg(cluster.dir())
            .args([
                "-U",
                "postgres",
                "-d",
                db,
                "-X",
                "-A",
                "-t",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output(),
    )?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

// ----- Measurements ----------------------------------------------------------------------------

/// One timed phase.
struct Phase {
    /// Operations per second.
    rate: f64,
    ops: u64,
    /// Latencies in µs, sorted.
    latencies: Vec<u64>,
    failures: u64,
    first_failure: Option<String>,
    note: String,
    /// CPU time of the client side (this process, or pgbench) over the phase.
    client_cpu: Duration,
    /// Busy share of all CPUs of the machine over the phase (server, clients, anything else).
    machine_busy: f64,
}

/// CPU counters: this process, its waited-for children, and the whole machine.
#[derive(Clone, Copy)]
struct CpuSnap {
    own_ticks: u64,
    children_ticks: u64,
    machine_busy: u64,
    machine_total: u64,
}

use multifactor_kit::procstat::{self, TICKS_PER_SEC};

fn cpu_snap() -> CpuSnap {
    let me = procstat::this_process();
    let machine = procstat::machine();
    CpuSnap {
        own_ticks: me.own,
        children_ticks: me.children,
        machine_busy: machine.busy,
        machine_total: machine.total,
    }
}

impl CpuSnap {
    /// (own CPU, children's CPU, machine busy share) from `self` to now.
    fn since(self) -> (Duration, Duration, f64) {
        let now = cpu_snap();
        let ticks = |t: u64| Duration::from_millis(t * 1000 / TICKS_PER_SEC);
        let total = now.machine_total.saturating_sub(self.machine_total).max(1);
        (
            ticks(now.own_ticks.saturating_sub(self.own_ticks)),
            ticks(now.children_ticks.saturating_sub(self.children_ticks)),
            now.machine_busy.saturating_sub(self.machine_busy) as f64 / total as f64,
        )
    }
}

impl Phase {
    /// Nearest-rank percentile.
    fn percentile(&self, p: f64) -> u64 {
        if self.latencies.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies
            .get(rank.clamp(1, self.latencies.len()) - 1)
            .copied()
            .unwrap_or(0)
    }
}

// ----- One fsync setting -----------------------------------------------------------------------

/// Runs pgbench and ours on `cluster`, prints the table; true if any verification failed.
async fn run_setting(cluster: &PgCluster, args: &Args, fsync: &str) -> Result<bool, BoxError> {
    let version = psql(cluster, "postgres", "SHOW server_version")?;
    let actual_fsync = psql(cluster, "postgres", "SHOW fsync")?;
    let sync_commit = psql(cluster, "postgres", "SHOW synchronous_commit")?;
    println!(
        "\n== fsync={actual_fsync}: PostgreSQL {version}, synchronous_commit={sync_commit}, shared_buffers={SHARED_BUFFERS}"
    );

    let t = Instant::now();
    let pgbench = run_pgbench(cluster, args)?;
    println!("   pgbench (init + run): {:.1} s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let (totp, backup) = run_ours(cluster, args).await?;
    println!("   ours (setup + runs):  {:.1} s", t.elapsed().as_secs_f64());

    println!(
        "\n   fsync={fsync}  C={} connections (pgbench -c {} -j 2; ours: pool of {}, {} tasks, tokio 2 workers)  \
         {} s per phase  U={} users  PostgreSQL {version}",
        args.clients, args.clients, args.clients, args.clients, args.seconds, args.users
    );
    println!(
        "   {:<26} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>6} {:>13} {:>9}",
        "",
        "ops/s",
        "vs pgbench",
        "p50 µs",
        "p95 µs",
        "p99 µs",
        "max µs",
        "ops",
        "failed",
        "client CPU/op",
        "CPUs busy"
    );
    for (name, phase) in [
        ("pgbench 1-row UPDATE", &pgbench),
        ("ours: TOTP verify", &totp),
        ("ours: backup-code verify", &backup),
    ] {
        let cpu_per_op = phase.client_cpu.as_secs_f64() * 1e6 / (phase.ops.max(1) as f64);
        println!(
            "   {:<26} {:>9.1} {:>9.2}x {:>8} {:>8} {:>8} {:>8} {:>7} {:>6} {:>10.0} µs {:>8.0}%",
            name,
            phase.rate,
            if pgbench.rate > 0.0 {
                phase.rate / pgbench.rate
            } else {
                0.0
            },
            phase.percentile(50.0),
            phase.percentile(95.0),
            phase.percentile(99.0),
            phase.latencies.last().copied().unwrap_or(0),
            phase.ops,
            phase.failures,
            cpu_per_op,
            phase.machine_busy * 100.0
        );
    }
    println!(
        "   client CPU/op: CPU time of the client per operation (ours: this process, tokio and sqlx included; \
         pgbench: the pgbench process); CPUs busy: all CPUs of the machine during the phase (server, client, \
         anything else running)"
    );
    for (name, phase) in [("pgbench", &pgbench), ("TOTP", &totp), ("backup codes", &backup)] {
        if !phase.note.is_empty() {
            println!("   note ({name}): {}", phase.note);
        }
        if let Some(f) = &phase.first_failure {
            println!("   first failure ({name}): {f}");
        }
    }
    Ok(totp.failures + backup.failures > 0)
}

fn run_pgbench(cluster: &PgCluster, args: &Args) -> Result<Phase, BoxError> {
    psql(cluster, "postgres", "CREATE DATABASE pgbench")?;
    let host = cluster.dir().display().to_string();
    checked(
        "pgbench -i",
        cluster
            .command("pgbench")
            .args([
                "-i",
                "-s",
                PGBENCH_SCALE,
                "-q",
                "-h",
                &host,
                "-U",
                "postgres",
                "pgbench",
            ])
            .output(),
    )?;
    let script = cluster.dir().join("update.sql");
    std::fs::write(&script, PGBENCH_SCRIPT)?;
    // The log files (`pgb.PID`, `pgb.PID.1`) go into the cluster directory, which the server's
    // user (pgbench's user too) owns.
    let log_dir = cluster.dir().to_owned();
    psql(cluster, "pgbench", "CHECKPOINT")?;
    let cpu = cpu_snap();
    let out = checked(
        "pgbench",
        cluster
            .command("pgbench")
            .args(["-n", "-M", "prepared", "-c", &args.clients.to_string(), "-j", "2"])
            .args(["-T", &args.seconds.to_string(), "-f"])
            .arg(&script)
            .args(["-l", "--log-prefix"])
            .arg(log_dir.join("pgb"))
            .args(["-h", &host, "-U", "postgres", "pgbench"])
            .output(),
    )?;
    let (_, client_cpu, machine_busy) = cpu.since();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rate = stdout
        .lines()
        .find(|l| l.starts_with("tps = ") && l.contains("without initial connection time"))
        .and_then(|l| l.trim_start_matches("tps = ").split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .ok_or_else(|| format!("no tps line in pgbench output:\n{stdout}"))?;
    let failed_line = stdout
        .lines()
        .find(|l| l.starts_with("number of failed transactions"))
        .unwrap_or("")
        .to_owned();
    let (latencies, skipped) = read_pgbench_logs(&log_dir)?;
    Ok(Phase {
        rate,
        ops: latencies.len() as u64,
        latencies,
        failures: skipped,
        first_failure: None,
        note: failed_line,
        client_cpu,
        machine_busy,
    })
}

/// All latencies (µs, sorted) of pgbench's per-transaction logs `pgb.PID` and `pgb.PID.N`, and
/// how many lines had none (failed transactions log a word there).
///
/// pgbench 15 log lines: `client_id transaction_no time script_no time_epoch time_us
/// [schedule_lag] [retries]`; `time` is the transaction's elapsed time in µs.
fn read_pgbench_logs(dir: &Path) -> Result<(Vec<u64>, u64), BoxError> {
    let mut latencies = Vec::new();
    let mut skipped = 0;
    let mut files = 0;
    for entry in std::fs::read_dir(dir)? {
        let path: PathBuf = entry?.path();
        if !path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("pgb."))
        {
            continue;
        }
        files += 1;
        for line in std::fs::read_to_string(&path)?.lines() {
            match line.split_whitespace().nth(2).and_then(|t| t.parse::<u64>().ok()) {
                Some(us) => latencies.push(us),
                None => skipped += 1,
            }
        }
    }
    if files == 0 {
        return Err(format!("no pgbench log files in {}", dir.display()).into());
    }
    latencies.sort_unstable();
    Ok((latencies, skipped))
}

// ----- Ours ------------------------------------------------------------------------------------

fn user_id(i: usize) -> Result<UserId, BoxError> {
    Ok(UserId::new(format!("user-{i:06}"))?)
}

async fn run_ours(cluster: &PgCluster, args: &Args) -> Result<(Phase, Phase), BoxError> {
    psql(cluster, "postgres", "CREATE DATABASE mfa_load")?;
    let store = PostgresStore::connect_with(&cluster.url("mfa_load"), args.clients).await?;
    store.migrate().await?;
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let mfa = Arc::new(service(store, clock.clone(), args.codes)?);
    let params = TotpParams::default();

    // Setup, on all connections, not timed.
    let t = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..args.clients {
        let (mfa, next, users) = (Arc::clone(&mfa), Arc::clone(&next), args.users);
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= users {
                    break;
                }
                let user = user_id(i).map_err(|e| e.to_string())?;
                let codes = set_up_user(&mfa, &user, i)
                    .await
                    .map_err(|e| format!("setting up user {i}: {e}"))?;
                mine.push((i, codes));
            }
            Ok::<_, String>(mine)
        }));
    }
    let mut codes: Vec<Vec<String>> = vec![Vec::new(); args.users];
    for handle in handles {
        for (i, c) in handle.await?? {
            if let Some(slot) = codes.get_mut(i) {
                *slot = c;
            }
        }
    }
    println!(
        "   setup: {} users with a TOTP secret and {} backup codes each in {:.1} s",
        args.users,
        args.codes,
        t.elapsed().as_secs_f64()
    );
    // As `pgbench -i` does for its tables (its last step is VACUUM ANALYZE): without statistics
    // the planner takes the freshly filled tables for empty, and the device query joins by
    // scanning every backup code (in one run: 80 TOTP verifications/s instead of thousands, at
    // 5,000 users). In production autovacuum would have analysed them long ago.
    psql(cluster, "mfa_load", "VACUUM ANALYZE")?;
    let users: Arc<Vec<UserId>> = Arc::new((0..args.users).map(user_id).collect::<Result<_, _>>()?);
    let secrets: Arc<Vec<SecretBytes>> = Arc::new((0..args.users).map(|i| SecretBytes::new(secret_bytes(i))).collect());
    let codes = Arc::new(codes);
    let phase_time = Duration::from_secs(args.seconds);

    // One round: every user verifies the code of the clock's current step.
    let totp_round = |deadline: Instant| {
        let now = clock.now();
        let (mfa, users, secrets) = (Arc::clone(&mfa), Arc::clone(&users), Arc::clone(&secrets));
        run_tasks(args.clients, args.users, deadline, move |i| {
            let (mfa, users, secrets) = (Arc::clone(&mfa), Arc::clone(&users), Arc::clone(&secrets));
            let code = secrets
                .get(i)
                .map(|s| multifactor::totp::code_at(s, &params, now).expose_secret().to_owned());
            async move {
                let (Some(user), Some(code)) = (users.get(i), code) else {
                    return Err(format!("no user {i}"));
                };
                accepted(mfa.verify_totp(user, &code).await)
            }
        })
    };

    // Untimed warm-up, so that the timed phases measure returning users (what the round-trip
    // count above is about: the verification cache holds what a verification reads). Two TOTP
    // rounds: an imported device's first accepted code changes the devices version, so the
    // cache keeps what the second one reads. The backup codes' is every user's first code.
    let untimed = Instant::now() + Duration::from_secs(3600);
    for _ in 0..2 {
        let warm = totp_round(untimed).await?;
        if let Some(failure) = warm.first_failure {
            return Err(format!("TOTP warm-up: {failure}").into());
        }
        clock.advance(PERIOD);
    }
    let n = args.users;
    let c = Arc::clone(&codes);
    let (m, u) = (Arc::clone(&mfa), Arc::clone(&users));
    let warm = run_tasks(args.clients, n, untimed, move |i| {
        let (mfa, users, codes) = (Arc::clone(&m), Arc::clone(&u), Arc::clone(&c));
        async move {
            let (Some(user), Some(code)) = (users.get(i), codes.get(i).and_then(|set| set.first())) else {
                return Err(format!("no first code of user {i}"));
            };
            accepted(mfa.verify_backup_code(user, code).await)
        }
    })
    .await?;
    if let Some(failure) = warm.first_failure {
        return Err(format!("backup-code warm-up: {failure}").into());
    }

    // TOTP: rounds of one verification per user, 30 s of clock between rounds.
    psql(cluster, "mfa_load", "CHECKPOINT")?;
    let cpu = cpu_snap();
    let started = Instant::now();
    let deadline = started + phase_time;
    let mut total = TaskResult::default();
    let mut rounds = 0;
    let mut full_rounds = 0;
    loop {
        let round = totp_round(deadline).await?;
        rounds += 1;
        if round.latencies.len() == args.users {
            full_rounds += 1;
        }
        total.absorb(round);
        if Instant::now() >= deadline {
            break;
        }
        clock.advance(PERIOD);
    }
    let totp = finish_phase(
        total,
        started.elapsed(),
        cpu,
        format!(
            "{rounds} rounds ({full_rounds} complete) of up to {} verifications",
            args.users
        ),
    );

    // Backup codes: code k of every user, then code k+1, ... (the first went to the warm-up).
    psql(cluster, "mfa_load", "CHECKPOINT")?;
    let items = args.users * (args.codes - 1);
    let cpu = cpu_snap();
    let started = Instant::now();
    let (m, u, c) = (Arc::clone(&mfa), Arc::clone(&users), Arc::clone(&codes));
    let result = run_tasks(args.clients, items, started + phase_time, move |i| {
        let (mfa, users, codes) = (Arc::clone(&m), Arc::clone(&u), Arc::clone(&c));
        async move {
            let user = users.get(i % n);
            let code = codes.get(i % n).and_then(|set| set.get(i / n + 1));
            let (Some(user), Some(code)) = (user, code) else {
                return Err(format!("no code {} of user {}", i / n + 1, i % n));
            };
            accepted(mfa.verify_backup_code(user, code).await)
        }
    })
    .await?;
    let wall = started.elapsed();
    let note = if result.latencies.len() >= items {
        format!(
            "all {items} codes spent after {:.2} s: the phase ended early",
            wall.as_secs_f64()
        )
    } else {
        format!("{} of {items} codes spent", result.latencies.len())
    };
    let backup = finish_phase(result, wall, cpu, note);
    mfa.store().close().await;
    Ok((totp, backup))
}

fn finish_phase(mut result: TaskResult, wall: Duration, cpu: CpuSnap, note: String) -> Phase {
    let (client_cpu, _, machine_busy) = cpu.since();
    result.latencies.sort_unstable();
    let ops = result.latencies.len() as u64;
    Phase {
        rate: ops as f64 / wall.as_secs_f64(),
        ops,
        latencies: result.latencies,
        failures: result.failures,
        first_failure: result.first_failure,
        note: format!("{note}, {:.2} s wall", wall.as_secs_f64()),
        client_cpu,
        machine_busy,
    }
}

// ----- Round trips per verification ------------------------------------------------------------

/// Counts, through a proxy in front of the server socket, the round trips and statements of one
/// TOTP and one backup-code verification (warm statement cache, 1-connection pool).
async fn print_round_trips(cluster: &PgCluster) -> Result<(), BoxError> {
    psql(cluster, "postgres", "CREATE DATABASE mfa_probe")?;
    let setup = PostgresStore::connect_with(&cluster.url("mfa_probe"), 1).await?;
    setup.migrate().await?;
    setup.close().await;
    let proxy = proxy::Proxy::start(
        &cluster.dir().join(".s.PGSQL.5432"),
        &format!("/tmp/mfrt-{}", std::process::id()),
    )?;
    let url = format!(
        "postgres://postgres@localhost/mfa_probe?host={}&sslmode=disable",
        proxy.dir().display()
    );
    let clock = ManualClock::new(UnixTime::from_secs(START));
    // The store behind a counting wrapper, whose stale read sets up a refusal at settlement.
    let mfa = service(
        CountingStore::new(Arc::new(PostgresStore::connect_with(&url, 1).await?)),
        clock.clone(),
        BackupCodeConfig::DEFAULT_COUNT,
    )?;
    let codes = set_up_user(&mfa, &user_id(0)?, 0).await?;
    let user = user_id(0)?;
    let secret = SecretBytes::new(secret_bytes(0));
    let params = TotpParams::default();
    let mut report = Vec::new();
    // Two warm-up verifications of each kind prepare every statement; the third is counted.
    for round in 0..3 {
        clock.advance(PERIOD);
        let code = multifactor::totp::code_at(&secret, &params, clock.now());
        // The pool pings a returned connection in a task of its own: let that finish before
        // reading the counts, so each verification is charged its own pings.
        let settle = Duration::from_millis(100);
        tokio::time::sleep(settle).await;
        proxy.reset();
        let totp = mfa.verify_totp(&user, code.expose_secret()).await?;
        tokio::time::sleep(settle).await;
        let totp_stats = proxy.take();
        let code = codes.get(round).ok_or("no backup code")?;
        let backup = mfa.verify_backup_code(&user, code).await?;
        tokio::time::sleep(settle).await;
        let backup_stats = proxy.take();
        if !totp.is_accepted() || !backup.is_accepted() {
            return Err(format!("probe verifications not accepted: {totp:?}, {backup:?}").into());
        }
        report = vec![
            ("TOTP verification", totp_stats),
            ("backup-code verification", backup_stats),
        ];
    }
    let refused = refused_round_trips(&mfa, &proxy, &clock).await?;
    mfa.store().inner().close().await;
    for (name, stats) in &report {
        let explicit = stats.explicit_transactions();
        // A returning user (the service's verification cache is warm): the settlement alone.
        if stats.statements.len() != 1 || explicit != 0 || stats.round_trips - stats.empty_syncs != 1 {
            return Err(format!(
                "one {name} took {} statements in {} round trips ({explicit} explicit transactions), not 1 in 1",
                stats.statements.len(),
                stats.round_trips - stats.empty_syncs
            )
            .into());
        }
    }
    println!("\nrefused at settlement (the counter locked after the attempt's read), right code vs wrong code:");
    for (name, right, wrong) in &refused {
        println!(
            "  {name}: right {} round trips, {} statements; wrong {} round trips, {} statements: {}",
            right.round_trips - right.empty_syncs,
            right.statements.len(),
            wrong.round_trips - wrong.empty_syncs,
            wrong.statements.len(),
            if right.statements == wrong.statements {
                "the same"
            } else {
                "DIFFERENT"
            }
        );
    }
    println!(
        "\nround trips per verification of a returning user (counted by a proxy on the socket; warm statement \
         and verification caches):"
    );
    for (name, stats) in report {
        println!(
            "  one {name}: {} round trips = {} statements ({} transactions, {} of them explicit BEGIN..COMMIT) \
             + {} empty Sync round trips (pings: sqlx 0.9's pool pings when a connection is acquired, \
             test_before_acquire, and again when it is returned)",
            stats.round_trips,
            stats.statements.len(),
            stats.transactions(),
            stats.explicit_transactions(),
            stats.empty_syncs
        );
        for s in &stats.statements {
            let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
            let short: String = s.chars().take(110).collect();
            println!("      {short}{}", if s.chars().count() > 110 { " ..." } else { "" });
        }
    }
    Ok(())
}

/// A correct code and a wrong one, each refused at settlement because the counter was locked
/// after the attempt read it: the same statements on the wire, in the same round trips. Returns
/// (factor, right, wrong); an error if they differ.
async fn refused_round_trips(
    mfa: &Mfa<CountingStore<PostgresStore>, ManualClock>,
    proxy: &proxy::Proxy,
    clock: &ManualClock,
) -> Result<Vec<(&'static str, proxy::Stats, proxy::Stats)>, BoxError> {
    let locked = ThrottleState {
        failures: mfa.config().throttle.lockout_after(),
        last_failure_at: Some(clock.now()),
        budget_until: None,
        last_miss: None,
    };
    let params = TotpParams::default();
    let mut out = Vec::new();
    // A first probe of each kind is not counted: it prepares the statements a refusal runs
    // (the settlement, then the read of the counter that moved), as the warm-up does for a
    // success.
    for (name, factor, first) in [("TOTP", Factor::Totp, 1), ("backup code", Factor::BackupCodes, 4)] {
        let mut seen = Vec::new();
        for (i, right) in [(first, false), (first + 1, true), (first + 2, false)] {
            let user = user_id(i)?;
            let codes = set_up_user(mfa, &user_id(i)?, i).await?;
            let code = match (factor, right) {
                (Factor::Totp, true) => {
                    multifactor::totp::code_at(&SecretBytes::new(secret_bytes(i)), &params, clock.now())
                        .expose_secret()
                        .to_owned()
                }
                (Factor::Totp, false) => "000000".to_owned(),
                (_, true) => codes.first().ok_or("no backup code")?.clone(),
                (_, false) => "0000-0000-0000".to_owned(),
            };
            mfa.store().clear_throttle(&user, factor.into()).await?;
            if !mfa
                .store()
                .swap_throttle(&user, factor.into(), ThrottleState::default(), locked)
                .await?
            {
                return Err("could not lock the probe user".into());
            }
            mfa.store().stale_counter_once(ThrottleState::default());
            tokio::time::sleep(Duration::from_millis(100)).await;
            proxy.reset();
            let outcome = match factor {
                Factor::Totp => mfa.verify_totp(&user, &code).await?,
                _ => mfa.verify_backup_code(&user, &code).await?,
            };
            tokio::time::sleep(Duration::from_millis(100)).await;
            let stats = proxy.take();
            if outcome != Outcome::Locked {
                return Err(format!("a probe refused at settlement got {outcome:?}").into());
            }
            seen.push(stats);
        }
        let wrong = seen.pop().ok_or("no probe")?;
        let right = seen.pop().ok_or("no probe")?;
        let _warm_up = seen.pop().ok_or("no probe")?;
        if right.statements != wrong.statements || right.round_trips != wrong.round_trips {
            return Err(
                format!("{name} refused at settlement: a right code made {right:?}, a wrong one {wrong:?}").into(),
            );
        }
        out.push((name, right, wrong));
    }
    Ok(out)
}

/// A counting unix-socket proxy for the PostgreSQL wire protocol (no TLS: `sslmode=disable`).
mod proxy {
    use std::collections::HashMap;
    use std::io::{Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex, MutexGuard};

    /// What went over the wire since the last reset.
    #[derive(Debug, Default, Clone)]
    pub struct Stats {
        /// ReadyForQuery messages from the server: one per round trip.
        pub round_trips: u64,
        /// Statements executed (Execute of a prepared statement, or a simple Query).
        pub statements: Vec<String>,
        /// Syncs with no Parse, Bind or Execute before them: pings.
        pub empty_syncs: u64,
    }

    impl Stats {
        /// Transactions: explicit ones plus statements run outside BEGIN..COMMIT (autocommit).
        pub fn transactions(&self) -> usize {
            let mut in_tx = false;
            let mut count = 0;
            for s in &self.statements {
                let upper = s.trim().to_ascii_uppercase();
                if upper.starts_with("BEGIN") || upper.starts_with("START TRANSACTION") {
                    in_tx = true;
                } else if upper.starts_with("COMMIT") || upper.starts_with("ROLLBACK") {
                    in_tx = false;
                    count += 1;
                } else if !in_tx {
                    count += 1;
                }
            }
            count
        }

        /// Explicit transactions (COMMIT or ROLLBACK statements).
        pub fn explicit_transactions(&self) -> usize {
            self.statements
                .iter()
                .filter(|s| {
                    let u = s.trim().to_ascii_uppercase();
                    u.starts_with("COMMIT") || u.starts_with("ROLLBACK")
                })
                .count()
        }
    }

    /// The proxy: listens in its own directory until the process exits.
    pub struct Proxy {
        dir: PathBuf,
        stats: Arc<Mutex<Stats>>,
    }

    fn lock(stats: &Mutex<Stats>) -> MutexGuard<'_, Stats> {
        stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    impl Proxy {
        /// Listens on `dir/.s.PGSQL.5432` and forwards each connection to `server`.
        pub fn start(server: &Path, dir: &str) -> std::io::Result<Self> {
            let dir = PathBuf::from(dir);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            let listener = UnixListener::bind(dir.join(".s.PGSQL.5432"))?;
            let stats = Arc::new(Mutex::new(Stats::default()));
            let (server, shared) = (server.to_owned(), Arc::clone(&stats));
            std::thread::spawn(move || {
                for client in listener.incoming().flatten() {
                    if let Ok(upstream) = UnixStream::connect(&server) {
                        connect(client, upstream, Arc::clone(&shared));
                    }
                }
            });
            Ok(Self { dir, stats })
        }

        pub fn dir(&self) -> &Path {
            &self.dir
        }

        pub fn reset(&self) {
            *lock(&self.stats) = Stats::default();
        }

        /// The counts since the last reset or take, and resets them.
        pub fn take(&self) -> Stats {
            std::mem::take(&mut *lock(&self.stats))
        }
    }

    impl Drop for Proxy {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// Splits a byte stream into protocol messages: (type, body).
    struct Framer {
        buf: Vec<u8>,
        /// The client's first message (startup) has no type byte.
        startup: bool,
    }

    impl Framer {
        fn feed(&mut self, data: &[u8], mut on_message: impl FnMut(u8, &[u8])) {
            self.buf.extend_from_slice(data);
            let mut pos = 0;
            loop {
                let rest = &self.buf[pos..];
                if self.startup {
                    let Some(len) = rest
                        .get(..4)
                        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
                    else {
                        break;
                    };
                    if rest.len() < len {
                        break;
                    }
                    pos += len;
                    self.startup = false;
                    continue;
                }
                let Some(head) = rest.get(..5) else { break };
                let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
                let Some(body) = rest.get(5..1 + len) else { break };
                on_message(head[0], body);
                pos += 1 + len;
            }
            self.buf.drain(..pos);
        }
    }

    fn cstr(bytes: &[u8]) -> (String, &[u8]) {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        let rest = bytes.get(end + 1..).unwrap_or(&[]);
        (String::from_utf8_lossy(&bytes[..end]).into_owned(), rest)
    }

    fn connect(client: UnixStream, upstream: UnixStream, stats: Arc<Mutex<Stats>>) {
        let (Ok(client_read), Ok(upstream_read)) = (client.try_clone(), upstream.try_clone()) else {
            return;
        };
        // Client to server: statements.
        let up_stats = Arc::clone(&stats);
        std::thread::spawn(move || {
            let mut framer = Framer {
                buf: Vec::new(),
                startup: true,
            };
            let mut prepared: HashMap<String, String> = HashMap::new();
            let mut bound = String::new();
            let mut work_since_sync = false;
            pump(client_read, upstream, |data| {
                framer.feed(data, |tag, body| match tag {
                    b'P' => {
                        let (name, rest) = cstr(body);
                        prepared.insert(name, cstr(rest).0);
                        work_since_sync = true;
                    }
                    b'B' => {
                        let (_portal, rest) = cstr(body);
                        bound = cstr(rest).0;
                        work_since_sync = true;
                    }
                    b'E' => {
                        let text = prepared.get(&bound).cloned().unwrap_or_else(|| "?".into());
                        lock(&up_stats).statements.push(text);
                        work_since_sync = true;
                    }
                    b'Q' => lock(&up_stats).statements.push(cstr(body).0),
                    b'S' => {
                        if !work_since_sync {
                            lock(&up_stats).empty_syncs += 1;
                        }
                        work_since_sync = false;
                    }
                    _ => {}
                });
            });
        });
        // Server to client: ReadyForQuery ends each round trip.
        std::thread::spawn(move || {
            let mut framer = Framer {
                buf: Vec::new(),
                startup: false,
            };
            pump(upstream_read, client, |data| {
                framer.feed(data, |tag, _| {
                    if tag == b'Z' {
                        lock(&stats).round_trips += 1;
                    }
                });
            });
        });
    }

    /// Copies `from` to `to`, showing each chunk to `inspect` before forwarding it (so the counts
    /// are up to date by the time the other side sees the bytes).
    fn pump(mut from: UnixStream, mut to: UnixStream, mut inspect: impl FnMut(&[u8])) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            inspect(chunk);
            if to.write_all(chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
    }
}
