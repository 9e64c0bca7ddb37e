//! What the load examples (`pg_load`, `cost_curve`) share: the machine line they print first,
//! how a load user is enrolled (a known TOTP secret and a backup-code set), and the concurrent
//! task runner that times each verification.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use multifactor::backup_codes::BackupCodeConfig;
use multifactor::{
    Error, KeyId, Keyring, ManualClock, Mfa, MfaConfig, Outcome, SealingKey, SecretBytes, Store, UserId,
};

type BoxError = Box<dyn std::error::Error>;

/// Prints the CPUs, the CPU model, the memory and the load average at start.
pub fn print_machine() {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
        .map_or("unknown", |(_, m)| m.trim());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map_or("?".to_owned(), |m| m.trim().to_owned());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("machine: {cpus} CPUs (nproc), {model}, MemTotal {mem}");
    println!(
        "load average at start: {} (other processes share the machine: figures are indicative)",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
}

/// Load user i's TOTP secret: 20 known bytes, distinct per user.
pub fn secret_bytes(i: usize) -> Vec<u8> {
    let mut bytes = (i as u64).to_be_bytes().to_vec();
    bytes.extend((0..12u8).map(|k| k.wrapping_mul(37).wrapping_add(i as u8)));
    bytes
}

/// The service the load runs: a fixed sealing key, sets of `codes` backup codes.
pub fn service<S: Store>(store: S, clock: ManualClock, codes: usize) -> Result<Mfa<S, ManualClock>, BoxError> {
    let keys = Keyring::new(SealingKey::new(KeyId::new("load-1")?, [7; 32]));
    let mut config = MfaConfig::new("LoadTest")?;
    // 12-character codes (60 bits) are throttled like TOTP, so that a code can be refused at
    // settlement and the probes compare it with a wrong one; a settlement costs the same.
    config.backup_codes = BackupCodeConfig::new(codes, BackupCodeConfig::MIN_LENGTH)?;
    Ok(Mfa::new(store, keys, config)?.with_clock(clock))
}

/// Gives `user` load user i's TOTP secret and a backup-code set; returns the codes.
pub async fn set_up_user<S: Store>(
    mfa: &Mfa<S, ManualClock>,
    user: &UserId,
    i: usize,
) -> Result<Vec<String>, BoxError> {
    let secret = SecretBytes::new(secret_bytes(i));
    let base32 = multifactor::totp::encode_base32_secret(&secret);
    mfa.import_totp(user, base32.expose_secret(), Some("Load app")).await?;
    let set = mfa.generate_backup_codes(user, None).await?;
    Ok(set.codes.iter().map(|c| c.expose_secret().to_owned()).collect())
}

/// `Ok` for an accepted verification, else what went wrong (for [`run_tasks`]).
pub fn accepted(outcome: Result<Outcome, Error>) -> Result<(), String> {
    match outcome {
        Ok(o) if o.is_accepted() => Ok(()),
        Ok(o) => Err(format!("not accepted: {o:?}")),
        Err(e) => Err(format!("error: {e}")),
    }
}

/// What the tasks of a phase saw.
#[derive(Default)]
pub struct TaskResult {
    /// Each operation's latency in µs.
    pub latencies: Vec<u64>,
    pub failures: u64,
    pub first_failure: Option<String>,
}

impl TaskResult {
    /// Adds `other`'s operations to these.
    pub fn absorb(&mut self, other: Self) {
        self.latencies.extend(other.latencies);
        self.failures += other.failures;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }
}

/// Runs `work(i)` for i = 0, 1, ... below `items` on `clients` concurrent tasks, until all are
/// done or `deadline` passes (operations in flight then still finish). The future is created
/// (code computed, arguments cloned) before the clock starts for its latency. `Err` is a
/// failure (not accepted, or an error).
pub async fn run_tasks<F, Fut>(clients: u32, items: usize, deadline: Instant, work: F) -> Result<TaskResult, BoxError>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..clients {
        let work = Arc::clone(&work);
        let next = Arc::clone(&next);
        handles.push(tokio::spawn(async move {
            let mut result = TaskResult::default();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items {
                    break;
                }
                let op = work(i);
                let started = Instant::now();
                let outcome = op.await;
                result.latencies.push(started.elapsed().as_micros() as u64);
                if let Err(f) = outcome {
                    result.failures += 1;
                    result.first_failure.get_or_insert(format!("item {i}: {f}"));
                }
            }
            result
        }));
    }
    let mut total = TaskResult::default();
    for handle in handles {
        total.absorb(handle.await?);
    }
    Ok(total)
}
