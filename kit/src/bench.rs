//! What the benches share.

use std::time::{Duration, Instant};

/// Times `run` over `iters` inputs that `make` produces outside the timed part, up to `chunk`
/// (and at most the number still wanted) at a time: for operations that use up their input, such
/// as a TOTP step, a backup code or a ceremony. `make` must return at least one input.
pub async fn timed_in_chunks<T>(
    iters: u64,
    chunk: u64,
    mut make: impl AsyncFnMut(u64) -> Vec<T>,
    mut run: impl AsyncFnMut(T),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let inputs = make(chunk.min(iters - done)).await;
        assert!(!inputs.is_empty(), "a chunk without inputs");
        let n = inputs.len() as u64;
        let start = Instant::now();
        for input in inputs {
            run(input).await;
        }
        total += start.elapsed();
        done += n;
    }
    total
}

/// Times `Mfa::verify_totp` with the right code of a fresh step each call (`iters` calls): the
/// codes are computed outside the timed part, the clock moves one period before each call, and
/// every call must be accepted (which also clears the throttle).
#[allow(dead_code)] // Not every bench times TOTP.
pub async fn time_totp_verifications<S: multifactor::Store, R: multifactor::Rng>(
    mfa: &multifactor::Mfa<S, multifactor::ManualClock, R>,
    clock: &multifactor::ManualClock,
    user: &multifactor::UserId,
    secret: &multifactor::SecretBytes,
    iters: u64,
) -> Duration {
    let params = multifactor::totp::TotpParams::default();
    let period = params.period();
    timed_in_chunks(
        iters,
        1024,
        async |n| {
            let from = clock.now().as_secs();
            (1..=n)
                .map(|i| {
                    multifactor::totp::code_at(secret, &params, multifactor::UnixTime::from_secs(from + i * period))
                })
                .collect()
        },
        async |code: multifactor::SecretString| {
            clock.advance(period);
            let outcome = mfa
                .verify_totp(user, std::hint::black_box(code.expose_secret()))
                .await
                .unwrap();
            assert!(std::hint::black_box(outcome).is_accepted());
        },
    )
    .await
}

/// A SQLite database file in the temp directory, unique per call, removed with its WAL
/// companions on drop.
pub struct TempDb(pub std::path::PathBuf);

impl TempDb {
    /// A fresh path (nothing is created until a store opens it).
    pub fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Self(std::env::temp_dir().join(format!("multifactor-bench-{}-{nanos}.sqlite", std::process::id())))
    }
}

impl Default for TempDb {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}
