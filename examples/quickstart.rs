//! The whole flow on an in-memory store, printed step by step:
//! backup codes, TOTP enrollment and verification, a replay, throttling, device management.
//!
//! Run with `cargo run --example quickstart`.

use std::error::Error;

use multifactor::{
    Clock, Factor, KeyId, Keyring, ManualClock, MemoryStore, Mfa, MfaConfig, Outcome, SealingKey, SystemClock, UserId,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    // In production the sealing key comes from a secrets manager; here it is random per run.
    let key = SealingKey::generate(KeyId::new("quickstart-1")?, &multifactor::OsSeededRng::new()?)?;
    // A manual clock lets the demo move time forward instead of sleeping.
    let clock = ManualClock::new(SystemClock.now());
    let mfa = Mfa::new(MemoryStore::new(), Keyring::new(key), MfaConfig::new("Quickstart")?)?.with_clock(clock.clone());
    let alice = UserId::new("alice")?;
    println!("== multifactor quickstart ==");

    // 1. Backup codes.
    let set = mfa.generate_backup_codes(&alice, None).await?;
    println!("\n[1] Backup codes for alice (shown once; the store keeps only keyed hashes):");
    for code in &set.codes {
        println!("      {}", code.expose_secret());
    }
    let first = set.codes.first().ok_or("no codes")?.expose_secret().to_owned();
    let outcome = mfa.verify_backup_code(&alice, &first.to_uppercase()).await?;
    println!(
        "    verify the first code (typed in upper case): {}",
        describe(&outcome)
    );
    let again = mfa.verify_backup_code(&alice, &first).await?;
    println!("    the same code again:                         {}", describe(&again));
    ensure(
        outcome.is_accepted() && again == Outcome::Rejected,
        "backup code used once",
    )?;

    // 2. TOTP enrollment.
    let enrollment = mfa.enroll_totp(&alice, "alice@example.com", None).await?;
    println!("\n[2] TOTP enrollment");
    println!(
        "    key URI (put it in a QR code): {}",
        enrollment.key_uri.expose_secret()
    );
    println!(
        "    secret to type by hand:        {}",
        enrollment.secret_base32.expose_secret()
    );
    // The authenticator app's side: it knows the secret and computes codes.
    let app_secret = multifactor::totp::decode_base32_secret(enrollment.secret_base32.expose_secret())?;
    let app_params = multifactor::TotpParams::default();
    let app_code = || multifactor::totp::code_at(&app_secret, &app_params, clock.now());
    let code = app_code();
    let confirmed = mfa
        .confirm_totp(&alice, enrollment.device, code.expose_secret())
        .await?;
    println!(
        "    confirm with the app's first code {}: {}",
        code.expose_secret(),
        describe(&confirmed)
    );
    ensure(confirmed.is_accepted(), "enrollment confirmed")?;

    // 3. TOTP verification and replay.
    let replay = mfa.verify_totp(&alice, code.expose_secret()).await?;
    println!("\n[3] the confirmation code once more (replay): {}", describe(&replay));
    clock.advance(30);
    let fresh = app_code();
    let ok = mfa.verify_totp(&alice, fresh.expose_secret()).await?;
    println!(
        "    30 s later, the new code {}: {}",
        fresh.expose_secret(),
        describe(&ok)
    );
    ensure(
        replay == Outcome::Rejected && ok.is_accepted(),
        "replay rejected, fresh code accepted",
    )?;

    // 4. Throttling.
    println!("\n[4] an attacker guesses TOTP codes");
    let mut throttled = false;
    for guess in 0..8 {
        let outcome = mfa
            .verify_totp(&alice, &format!("{:06}", 111_111 * (guess % 9)))
            .await?;
        println!("    guess {}: {}", guess + 1, describe(&outcome));
        throttled |= matches!(outcome, Outcome::Throttled { .. });
    }
    ensure(throttled, "throttling kicked in")?;
    let status = mfa.throttle_status(&alice, Factor::Totp).await?;
    println!("    throttle status now: {status:?}");
    let backup = mfa
        .verify_backup_code(&alice, set.codes.get(1).ok_or("no codes")?.expose_secret())
        .await?;
    println!(
        "    meanwhile a backup code still works (separate factor): {}",
        describe(&backup)
    );
    ensure(backup.is_accepted(), "other factor unaffected")?;

    // 5. Device management.
    println!("\n[5] alice's methods");
    print_methods(&mfa, &alice).await?;
    mfa.rename_method(&alice, enrollment.device, "  Pixel 9  ").await?;
    println!("    renamed the authenticator app to \"Pixel 9\":");
    print_methods(&mfa, &alice).await?;
    match mfa.rename_method(&alice, enrollment.device, "").await {
        Err(e) => println!("    renaming to an empty name: error: {e}"),
        Ok(()) => return Err("an empty name was accepted".into()),
    }
    mfa.delete_method(&alice, enrollment.device).await?;
    println!("    deleted the authenticator app:");
    print_methods(&mfa, &alice).await?;
    let removed = mfa.reset_user(&alice).await?;
    println!(
        "    admin reset removed {removed} method(s); alice has {} left",
        mfa.list_methods(&alice).await?.len()
    );

    println!("\nAll steps behaved as expected.");
    Ok(())
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Accepted(v) => match v.remaining_backup_codes {
            Some(n) => format!("accepted ({n} backup codes left)"),
            None => "accepted".to_owned(),
        },
        Outcome::Rejected => "rejected".to_owned(),
        Outcome::Throttled { retry_at } => format!("throttled, retry at {retry_at}"),
        Outcome::Locked => "locked until an admin unlocks it".to_owned(),
        _ => format!("{outcome:?}"),
    }
}

async fn print_methods<S, C, R>(mfa: &Mfa<S, C, R>, user: &UserId) -> Result<(), Box<dyn Error>>
where
    S: multifactor::DeviceStore,
    C: Clock,
    R: multifactor::Rng,
{
    for m in mfa.list_methods(user).await? {
        let remaining = m
            .remaining_backup_codes
            .map(|n| format!(", {n} codes left"))
            .unwrap_or_default();
        let used = m
            .last_used_at
            .map(|t| t.to_string())
            .unwrap_or_else(|| "never".to_owned());
        println!(
            "      {} {:<18} {:<17} confirmed={} created {} last used {}{}",
            m.id, m.name, m.kind, m.confirmed, m.created_at, used, remaining
        );
    }
    Ok(())
}

fn ensure(ok: bool, what: &str) -> Result<(), Box<dyn Error>> {
    if ok {
        Ok(())
    } else {
        Err(format!("expected: {what}").into())
    }
}
