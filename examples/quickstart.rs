//! The whole flow on a SQLite file, printed step by step: backup codes, TOTP enrollment
//! and verification, a replay, throttling, a passkey registered and used for passwordless
//! sign-in (with a software authenticator standing in for the browser), device management.
//!
//! Run with `cargo run --example quickstart` (SQLite file `quickstart.db` in the working
//! directory), or `cargo run --example quickstart -- --memory` for the in-memory store.

use std::error::Error;

use multifactor::webauthn::{AuthenticationResponse, RegistrationResponse, RelyingParty, WebAuthnConfig};
use multifactor::{
    Clock, Factor, KeyId, Keyring, ManualClock, MemoryStore, Mfa, MfaConfig, Outcome, SealingKey, SqliteStore, Store,
    SystemClock, UserId,
};
use serde_json::{Value, json};
use webauthn_authenticator_rs::prelude::{Url, WebauthnAuthenticator};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

const ORIGIN: &str = "https://login.example.com";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    if std::env::args().any(|a| a == "--memory") {
        println!("== multifactor quickstart (in-memory store) ==");
        run(MemoryStore::new()).await
    } else {
        let path = "quickstart.db";
        println!("== multifactor quickstart (SQLite file {path}; delete it any time) ==");
        run(SqliteStore::open(path).await?).await
    }
}

async fn run<S: Store>(store: S) -> Result<(), Box<dyn Error>> {
    // In production the sealing key comes from a secrets manager; here it is random per run.
    let key = SealingKey::generate(KeyId::new("quickstart-1")?, &multifactor::OsRng::new()?)?;
    // A manual clock lets the demo move time forward instead of sleeping.
    let clock = ManualClock::new(SystemClock.now());
    let mut config = MfaConfig::new("Quickstart")?;
    config.webauthn = Some(WebAuthnConfig::new(RelyingParty::new(
        "example.com",
        "Quickstart",
        &[ORIGIN],
    )?));
    let mfa = Mfa::new(store, Keyring::new(key), config)?.with_clock(clock.clone());
    let alice = UserId::new("alice")?;
    // Start clean: an earlier run's methods were sealed under that run's random key.
    mfa.admin_reset_user(&alice).await?;

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
    let app_params = multifactor::totp::TotpParams::default();
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
    println!("    throttle status now: {status}");
    let backup = mfa
        .verify_backup_code(&alice, set.codes.get(1).ok_or("no codes")?.expose_secret())
        .await?;
    println!(
        "    meanwhile a backup code still works (separate factor): {}",
        describe(&backup)
    );
    ensure(backup.is_accepted(), "other factor unaffected")?;

    // 5. A passkey, and passwordless sign-in with it.
    println!("\n[5] passkeys");
    let mut browser = DemoBrowser::new();
    let (ceremony, options) = mfa
        .start_passkey_registration(&alice, "alice@example.com", "Alice")
        .await?;
    let created = browser.create(&options.to_json_value())?;
    let registered = mfa
        .finish_webauthn_registration(
            &alice,
            ceremony,
            &RegistrationResponse::from_json(&created)?,
            Some("Laptop"),
        )
        .await?;
    println!(
        "    register a passkey (user verification required): {}",
        describe(&registered)
    );
    let (ceremony, options) = mfa.start_passwordless(true).await?;
    println!(
        "    passwordless sign-in options (conditional mediation): {}",
        options.to_json()
    );
    let asserted = browser.get(&options.to_json_value())?;
    let signed_in = mfa
        .finish_passwordless(&ceremony, &AuthenticationResponse::from_json(&asserted)?)
        .await?;
    match &signed_in {
        Outcome::Accepted(v) => println!(
            "    passwordless sign-in: accepted as {} ({})",
            v.user(),
            match v.user_verified() {
                Some(true) => "the authenticator verified the user",
                Some(false) => "the authenticator did not verify the user",
                None => "user verification not reported",
            }
        ),
        other => return Err(format!("passwordless sign-in failed: {other:?}").into()),
    }
    let replayed = mfa
        .finish_passwordless(&ceremony, &AuthenticationResponse::from_json(&asserted)?)
        .await?;
    println!(
        "    the same response again (a passwordless ceremony is finished once): {}",
        describe(&replayed)
    );
    ensure(
        registered.is_accepted() && replayed == Outcome::Rejected,
        "passkey registered, replay rejected",
    )?;

    // 6. Device management.
    println!("\n[6] alice's methods");
    print_methods(&mfa, &alice).await?;
    mfa.rename_device(&alice, enrollment.device, "  Pixel 9  ").await?;
    println!("    renamed the authenticator app to \"Pixel 9\":");
    print_methods(&mfa, &alice).await?;
    match mfa.rename_device(&alice, enrollment.device, "").await {
        Err(e) => println!("    renaming to an empty name: error: {e}"),
        Ok(()) => return Err("an empty name was accepted".into()),
    }
    mfa.delete_device(&alice, enrollment.device).await?;
    println!("    deleted the authenticator app:");
    print_methods(&mfa, &alice).await?;
    let removed = mfa.admin_reset_user(&alice).await?;
    println!(
        "    admin reset removed {removed} method(s); alice has {} left",
        mfa.list_devices(&alice).await?.len()
    );

    println!("\nAll steps behaved as expected.");
    Ok(())
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Accepted(v) => match v.remaining_backup_codes() {
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
    S: multifactor::Store,
    C: Clock,
    R: multifactor::Rng,
{
    for m in mfa.list_devices(user).await? {
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
            m.id,
            m.name,
            m.kind.noun(),
            m.confirmed,
            m.created_at,
            used,
            remaining
        );
    }
    Ok(())
}

/// Plays the browser and a platform authenticator for the demo: a software passkey from
/// `webauthn-authenticator-rs`. It cannot store discoverable credentials itself, so this wrapper
/// remembers the user handle of each credential and picks the credential when the page asks for
/// any (that is what a platform authenticator does).
struct DemoBrowser {
    authenticator: SoftPasskey,
    credentials: Vec<(String, String)>,
}

impl DemoBrowser {
    fn new() -> Self {
        Self {
            authenticator: SoftPasskey::new(true),
            credentials: Vec::new(),
        }
    }

    fn create(&mut self, options: &Value) -> Result<String, Box<dyn Error>> {
        let mut options = options.clone();
        options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = json!(false);
        options["publicKey"]["authenticatorSelection"]["residentKey"] = json!("discouraged");
        let handle = options["publicKey"]["user"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let created = self
            .authenticator
            .do_registration(Url::parse(ORIGIN)?, serde_json::from_value(options)?)
            .map_err(|e| format!("authenticator: {e:?}"))?;
        let created = serde_json::to_value(&created)?;
        self.credentials
            .push((created["rawId"].as_str().unwrap_or_default().to_owned(), handle));
        Ok(created.to_string())
    }

    fn get(&mut self, options: &Value) -> Result<String, Box<dyn Error>> {
        let (id, handle) = self
            .credentials
            .first()
            .cloned()
            .ok_or("no passkey on this authenticator")?;
        let mut options = options.clone();
        options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": id}]);
        let asserted = self
            .authenticator
            .do_authentication(Url::parse(ORIGIN)?, serde_json::from_value(options)?)
            .map_err(|e| format!("authenticator: {e:?}"))?;
        let mut asserted = serde_json::to_value(&asserted)?;
        asserted["response"]["userHandle"] = json!(handle);
        Ok(asserted.to_string())
    }
}

fn ensure(ok: bool, what: &str) -> Result<(), Box<dyn Error>> {
    if ok {
        Ok(())
    } else {
        Err(format!("expected: {what}").into())
    }
}
