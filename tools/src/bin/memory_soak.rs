//! Memory soak: a million verifications on a `MemoryStore` with a `ManualClock`, watching the
//! process's resident set size for growth.
//!
//! 1,000 users each have a TOTP secret and a backup-code set. Each round, every user verifies a
//! TOTP code and spends one backup code (a user whose set is used up gets a new one, not
//! counted as a verification); then the clock moves 30 s on. VmRSS and VmHWM (peak RSS) from
//! `/proc/self/status` are printed after setup, every 100,000 verifications and at the end.
//!
//! Exits with status 1 if VmRSS at the end exceeds VmRSS after the first 100,000 verifications
//! by more than 4 MiB (a leak: a store or service that keeps something per verification), or
//! if any verification is not accepted.
//!
//! Then it measures the verification cache: 20,000 users on a fresh service sign in once with
//! TOTP and once with a backup code, and the VmRSS growth per cached entry is printed.
//!
//! Run: `cargo run --release -p multifactor-tools --bin memory_soak [-- --count N]` (default 1,000,000).

use std::error::Error;
use std::time::Instant;

use multifactor::totp::TotpParams;
use multifactor::{
    KeyId, Keyring, ManualClock, MemoryStore, Mfa, MfaConfig, Outcome, SealingKey, SecretBytes, UnixTime, UserId,
};

const USERS: usize = 1_000;
const REPORT_EVERY: u64 = 100_000;
const PERIOD: u64 = 30;
const THRESHOLD_KIB: u64 = 4 * 1024;
/// Users whose verification-cache entries the footprint phase measures.
const CACHE_USERS: usize = 20_000;

/// VmRSS and VmHWM in KiB.
fn memory() -> Result<(u64, u64), Box<dyn Error>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| -> Result<u64, Box<dyn Error>> {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .ok_or_else(|| format!("no {name} in /proc/self/status"))?;
        Ok(line.trim().trim_end_matches("kB").trim().parse()?)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn report(label: &str, done: u64, started: Instant) -> Result<u64, Box<dyn Error>> {
    let (rss, hwm) = memory()?;
    println!(
        "{label:<14} {done:>10} verifications  {:>7.1} s  VmRSS {:>9} KiB ({:>6.1} MiB)  VmHWM {:>9} KiB ({:>6.1} MiB)",
        started.elapsed().as_secs_f64(),
        rss,
        rss as f64 / 1024.0,
        hwm,
        hwm as f64 / 1024.0
    );
    Ok(rss)
}

fn parse_count() -> Result<u64, Box<dyn Error>> {
    let mut count = 1_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--count" => count = args.next().ok_or("--count needs a value")?.parse()?,
            other => return Err(format!("unknown argument {other:?} (usage: memory_soak [--count N])").into()),
        }
    }
    if count < REPORT_EVERY {
        return Err(format!("--count must be at least {REPORT_EVERY} (the baseline is taken there)").into());
    }
    Ok(count)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let count = parse_count()?;
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let keys = Keyring::new(SealingKey::new(KeyId::new("soak-1")?, [7; 32]));
    let mfa = Mfa::new(MemoryStore::new(), keys, MfaConfig::new("Soak")?)?.with_clock(clock.clone());
    let params = TotpParams::default();

    let started = Instant::now();
    let mut users = Vec::with_capacity(USERS);
    for i in 0..USERS {
        let user = UserId::new(format!("user-{i:04}"))?;
        let mut bytes = (i as u64).to_be_bytes().to_vec();
        bytes.extend((0..12u8).map(|k| k.wrapping_mul(31).wrapping_add(i as u8)));
        let secret = SecretBytes::new(bytes);
        let base32 = multifactor::totp::encode_base32_secret(&secret);
        mfa.import_totp(&user, base32.expose_secret(), None).await?;
        let set = mfa.generate_backup_codes(&user, None).await?;
        users.push((user, secret, set.codes, 0usize));
    }
    println!(
        "memory soak: {count} verifications (TOTP and backup codes alternating per user), {USERS} users, \
         MemoryStore, ManualClock; threshold: final VmRSS <= VmRSS at {REPORT_EVERY} + {THRESHOLD_KIB} KiB"
    );
    report("after setup", 0, started)?;

    let started = Instant::now();
    let mut done: u64 = 0;
    let mut failures: u64 = 0;
    let mut regenerated: u64 = 0;
    let mut baseline = None;
    let mut check = |done: u64, failures: &mut u64, outcome: &Outcome| -> Result<(), Box<dyn Error>> {
        if !outcome.is_accepted() {
            *failures += 1;
            if *failures <= 5 {
                println!("not accepted at verification {done}: {outcome:?}");
            }
        }
        if done.is_multiple_of(REPORT_EVERY) {
            let rss = report("", done, started)?;
            if done == REPORT_EVERY {
                baseline = Some(rss);
            }
        }
        Ok(())
    };
    'rounds: loop {
        let now = clock.now();
        for (user, secret, codes, next) in &mut users {
            if done >= count {
                break 'rounds;
            }
            let code = multifactor::totp::code_at(secret, &params, now);
            let outcome = mfa.verify_totp(user, code.expose_secret()).await?;
            done += 1;
            check(done, &mut failures, &outcome)?;
            if done >= count {
                break 'rounds;
            }
            if *next >= codes.len() {
                *codes = mfa.generate_backup_codes(user, None).await?.codes;
                *next = 0;
                regenerated += 1;
            }
            let code = codes.get(*next).ok_or("no backup code")?;
            *next += 1;
            let outcome = mfa.verify_backup_code(user, code.expose_secret()).await?;
            done += 1;
            check(done, &mut failures, &outcome)?;
        }
        clock.advance(PERIOD);
    }
    let elapsed = started.elapsed();
    let end = report("end", done, started)?;
    println!(
        "total {:.2} s, {:.0} verifications/s ({regenerated} backup-code sets regenerated, not counted)",
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64()
    );
    let baseline = baseline.ok_or("no baseline")?;
    let limit = baseline + THRESHOLD_KIB;
    let growth = end as i64 - baseline as i64;
    println!(
        "VmRSS growth since {REPORT_EVERY} verifications: {growth} KiB (limit {THRESHOLD_KIB} KiB: end VmRSS must be <= {limit} KiB)"
    );
    if failures > 0 {
        println!("FAILED: {failures} verifications were not accepted");
        std::process::exit(1);
    }
    if end > limit {
        println!("FAILED: VmRSS grew by more than {THRESHOLD_KIB} KiB");
        std::process::exit(1);
    }
    cache_footprint(CACHE_USERS).await?;
    println!("OK");
    Ok(())
}

/// What the verification cache costs per entry: `users` users enrolled on a fresh service whose
/// cache holds them all, VmRSS before and after each of them signs in once with TOTP (one entry
/// each), then once with a backup code (a second entry each).
async fn cache_footprint(users: usize) -> Result<(), Box<dyn Error>> {
    let clock = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let keys = Keyring::new(SealingKey::new(KeyId::new("soak-1")?, [7; 32]));
    let mut config = MfaConfig::new("Soak")?;
    config.verification_cache = 2 * users;
    let mfa = Mfa::new(MemoryStore::new(), keys, config)?.with_clock(clock.clone());
    let params = TotpParams::default();
    let mut enrolled = Vec::with_capacity(users);
    for i in 0..users {
        let user = UserId::new(format!("cached-user-{i:06}"))?;
        let mut bytes = (i as u64).to_be_bytes().to_vec();
        bytes.extend((0..12u8).map(|k| k.wrapping_mul(29).wrapping_add(i as u8)));
        let secret = SecretBytes::new(bytes);
        mfa.import_totp(
            &user,
            multifactor::totp::encode_base32_secret(&secret).expose_secret(),
            None,
        )
        .await?;
        let set = mfa.generate_backup_codes(&user, None).await?;
        enrolled.push((user, secret, set.codes));
    }
    clock.advance(PERIOD);
    let (before, _) = memory()?;
    for (user, secret, _) in &enrolled {
        let code = multifactor::totp::code_at(secret, &params, clock.now());
        if !mfa.verify_totp(user, code.expose_secret()).await?.is_accepted() {
            return Err("a cache-footprint TOTP sign-in was not accepted".into());
        }
    }
    let (with_totp, _) = memory()?;
    for (user, _, codes) in &enrolled {
        let code = codes.first().ok_or("no backup code")?;
        if !mfa.verify_backup_code(user, code.expose_secret()).await?.is_accepted() {
            return Err("a cache-footprint backup-code sign-in was not accepted".into());
        }
    }
    let (with_both, _) = memory()?;
    let per = |kib: u64| kib as f64 * 1024.0 / users as f64;
    println!(
        "verification cache: {users} users signing in once each: +{} KiB VmRSS for TOTP entries ({:.0} bytes per \
         cached user, one TOTP device), +{} KiB for backup-code entries ({:.0} bytes per cached user, a set of {} codes)",
        with_totp.saturating_sub(before),
        per(with_totp.saturating_sub(before)),
        with_both.saturating_sub(with_totp),
        per(with_both.saturating_sub(with_totp)),
        enrolled.first().map_or(0, |(_, _, c)| c.len()),
    );
    Ok(())
}
