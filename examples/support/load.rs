//! What the load examples (`pg_load`, `cost_curve`) share: the machine line they print first,
//! and how a load user is enrolled (a known TOTP secret and a backup-code set).

use multifactor::{
    BackupCodeConfig, DeviceStore, KeyId, Keyring, ManualClock, Mfa, MfaConfig, SealingKey, SecretBytes, UserId,
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
pub fn service<S: DeviceStore>(store: S, clock: ManualClock, codes: usize) -> Result<Mfa<S, ManualClock>, BoxError> {
    let keys = Keyring::new(SealingKey::new(KeyId::new("load-1")?, [7; 32]));
    let mut config = MfaConfig::new("LoadTest")?;
    config.backup_codes = BackupCodeConfig::new(codes, BackupCodeConfig::DEFAULT_LENGTH)?;
    Ok(Mfa::new(store, keys, config)?.with_clock(clock))
}

/// Gives `user` load user i's TOTP secret and a backup-code set; returns the codes.
pub async fn set_up_user<S: DeviceStore>(
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
