//! `mfactl`: manage users' MFA methods in a SQLite database from the command line.
//!
//! ```text
//! cargo run --example mfactl -- [--db FILE|postgres://URL] COMMAND ...
//!
//!   enroll-totp USER ACCOUNT [NAME]     start a TOTP enrollment: key URI, QR code, secret
//!   confirm-totp USER DEVICE CODE       confirm it with the first code from the app
//!   import-totp USER SECRET|URI [NAME]  import an existing secret or otpauth:// URI
//!   verify-totp USER CODE               check a TOTP code
//!   backup-codes USER                   generate a new set (replaces the old one)
//!   verify-backup USER CODE             spend a backup code; shows how many remain
//!   list USER                           list the user's methods
//!   rename USER DEVICE NAME             rename a method
//!   delete USER DEVICE                  delete a method (as an admin: even the last one)
//!   reset USER                          delete all of the user's methods (admin reset)
//!   unlock USER FACTOR                  lift a lockout (backup_codes, totp, webauthn)
//!   deadline USER UNIX_SECONDS          set the user's enrollment deadline, skips from zero (audited)
//!   import FILE --format FORMAT [--dry-run] [--skip-bad] [--rp-id ID]
//!                                       import another system's export (formats below)
//!   credentials [--aaguid UUID] [--kind security_key|passkey] [--synced yes|no]
//!                                       the security keys and passkeys of all users
//!   revoke-model UUID                   delete every credential of an authenticator model
//!                                       (all users, last devices included; audited)
//! ```
//!
//! The database is a SQLite file (default `mfactl.db` in the working directory) or, given a
//! `postgres://` URL, a PostgreSQL database. TOTP secrets are sealed with the 32-byte key in
//! `MFACTL_KEY` (64 hex digits); without it, for SQLite only, a key file next to the database
//! (`FILE.key`) is created on first use, which is fine for a demo and wrong for production (the
//! key must not live beside the data it protects).
//!
//! `import` reads an export of `otpauth`, `google-authenticator`, `authelia-csv`,
//! `authelia-uri`, `authelia-webauthn`, `django-otp-totp`, `django-otp-hotp`, `django-otp-static`, `keycloak`,
//! `authentik-webauthn`, `webauthn-rs` or `kratos` (the manual's migration guide says how to produce each). It checks the whole
//! file first and lists every bad line (line, user, reason; never a secret); with any, it writes
//! nothing and exits with status 2, unless `--skip-bad` imports the rest. A second run adds
//! nothing. `--dry-run` writes nothing and says what would be added; `--rp-id` refuses WebAuthn
//! credentials the export says were registered for another relying party id. A progress bar
//! shows on a terminal for batches of more than 100 entries, and a summary table at the end.
//!
//! Every command validates its input before it writes, and each write is one atomic store
//! operation: bad input gets a one-line error and exit status 2, nothing half-written.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use multifactor_kit::demo_key;

use multifactor::import::{ImportBatch, ImportFormat, ImportOptions};
use multifactor::{
    DeviceId, DeviceStore, Factor, Keyring, Mfa, MfaConfig, Outcome, PostgresStore, RelyingParty, SqliteStore, UserId,
    WebAuthnConfig,
};

const USAGE: &str = "usage: mfactl [--db FILE|postgres://URL] enroll-totp|confirm-totp|import-totp|verify-totp|\
backup-codes|verify-backup|list|rename|delete|reset|unlock|deadline|import|credentials|revoke-model ARGS... \
(see the example's docs)";

/// Prints a line to stdout; a closed pipe (`mfactl list alice | head -1`) is not an error.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// A failure: the message, and whether it was the user's input (exit 2) or the system (exit 1).
struct Failure(String, u8);

fn input(msg: impl std::fmt::Display) -> Failure {
    Failure(msg.to_string(), 2)
}

impl From<multifactor::Error> for Failure {
    fn from(e: multifactor::Error) -> Self {
        let code = match e {
            multifactor::Error::Input(_) | multifactor::Error::Misuse(_) => 2,
            _ => 1,
        };
        Failure(e.to_string(), code)
    }
}

impl From<multifactor::StoreError> for Failure {
    fn from(e: multifactor::StoreError) -> Self {
        Failure(format!("database: {e}"), 1)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(msg, code)) => {
            eprintln!("mfactl: {msg}");
            ExitCode::from(code)
        }
    }
}

fn arg<'a>(args: &'a [String], i: usize, what: &str) -> Result<&'a str, Failure> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| input(format!("missing {what}; {USAGE}")))
}

fn user(args: &[String]) -> Result<UserId, Failure> {
    UserId::new(arg(args, 1, "USER")?).map_err(input)
}

fn device(args: &[String], i: usize) -> Result<DeviceId, Failure> {
    arg(args, i, "DEVICE")?.parse().map_err(input)
}

fn no_more(args: &[String], n: usize) -> Result<(), Failure> {
    if args.len() > n {
        return Err(input(format!("unexpected argument {:?}; {USAGE}", args[n])));
    }
    Ok(())
}

fn show(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Accepted(v) => match v.remaining_backup_codes() {
            Some(n) => format!("accepted ({n} backup codes left)"),
            None => "accepted".into(),
        },
        Outcome::Rejected => "rejected".into(),
        Outcome::Throttled { retry_at } => format!("throttled: too many failures, retry at {retry_at}"),
        Outcome::Locked => "locked: too many failures; an admin must run `mfactl unlock`".into(),
        other => format!("{other:?}"),
    }
}

/// A fully parsed command: nothing touches the database before this exists.
enum Command {
    EnrollTotp { account: String, name: Option<String> },
    ConfirmTotp { device: DeviceId, code: String },
    ImportTotp { secret: String, name: Option<String> },
    VerifyTotp { code: String },
    BackupCodes,
    VerifyBackup { code: String },
    List,
    Rename { device: DeviceId, name: String },
    Delete { device: DeviceId },
    Reset,
    Unlock { factor: Factor },
    Deadline { at: u64 },
    Import(Import),
    Credentials(multifactor::CredentialFilter),
    RevokeModel([u8; 16]),
}

/// An AAGUID as its UUID text (`ee882879-721c-4913-9775-3dfcce97072a`).
fn aaguid(text: &str) -> Result<[u8; 16], Failure> {
    uuid::Uuid::parse_str(text).map(|u| *u.as_bytes()).map_err(|_| {
        input(format!(
            "{text:?} is not an AAGUID (a UUID such as ee882879-721c-4913-9775-3dfcce97072a)"
        ))
    })
}

/// `credentials [--aaguid UUID] [--kind security_key|passkey] [--synced yes|no]`.
fn parse_credentials(args: &[String]) -> Result<multifactor::CredentialFilter, Failure> {
    let mut filter = multifactor::CredentialFilter::new();
    let mut rest = args.iter().skip(1);
    while let Some(flag) = rest.next() {
        let mut value = |what: &str| {
            rest.next()
                .cloned()
                .ok_or_else(|| input(format!("missing {what} after {flag}")))
        };
        filter = match flag.as_str() {
            "--aaguid" => filter.aaguid(aaguid(&value("UUID")?)?),
            "--kind" => match value("KIND")?.as_str() {
                "security_key" => filter.kind(multifactor::DeviceKind::SecurityKey),
                "passkey" => filter.kind(multifactor::DeviceKind::Passkey),
                other => return Err(input(format!("unknown kind {other:?}; security_key or passkey"))),
            },
            "--synced" => match value("yes or no")?.as_str() {
                "yes" => filter.synced(true),
                "no" => filter.synced(false),
                other => return Err(input(format!("--synced takes yes or no, not {other:?}"))),
            },
            other => return Err(input(format!("unexpected argument {other:?}; {USAGE}"))),
        };
    }
    Ok(filter)
}

/// `import FILE --format FORMAT [--dry-run] [--skip-bad] [--rp-id ID]`.
struct Import {
    file: PathBuf,
    format: ImportFormat,
    options: ImportOptions,
    rp_id: Option<String>,
}

fn parse_import(args: &[String]) -> Result<Import, Failure> {
    let file = PathBuf::from(arg(args, 1, "FILE")?);
    let mut format = None;
    let mut options = ImportOptions::default();
    let mut rp_id = None;
    let mut rest = args.iter().skip(2);
    while let Some(flag) = rest.next() {
        match flag.as_str() {
            "--format" => {
                let name = rest.next().ok_or_else(|| input("missing FORMAT after --format"))?;
                format = Some(ImportFormat::from_name(name).ok_or_else(|| {
                    let names: Vec<&str> = ImportFormat::ALL.iter().map(|f| f.name()).collect();
                    input(format!("unknown format {name:?}; one of {}", names.join(", ")))
                })?);
            }
            "--dry-run" => options.dry_run = true,
            "--skip-bad" => options.skip_bad = true,
            "--rp-id" => rp_id = Some(rest.next().ok_or_else(|| input("missing ID after --rp-id"))?.clone()),
            other => return Err(input(format!("unexpected argument {other:?}; {USAGE}"))),
        }
    }
    let format = format.ok_or_else(|| input("import needs --format FORMAT"))?;
    Ok(Import {
        file,
        format,
        options,
        rp_id,
    })
}

fn parse(args: &[String]) -> Result<(UserId, Command), Failure> {
    if args.first().map(String::as_str) == Some("import") {
        // No user: the file names them. `-` stands for "everyone in the file" in messages.
        return Ok((UserId::new("-").map_err(input)?, Command::Import(parse_import(args)?)));
    }
    // Commands about every user.
    match args.first().map(String::as_str) {
        Some("credentials") => {
            return Ok((
                UserId::new("-").map_err(input)?,
                Command::Credentials(parse_credentials(args)?),
            ));
        }
        Some("revoke-model") => {
            let model = aaguid(arg(args, 1, "UUID")?)?;
            no_more(args, 2)?;
            return Ok((UserId::new("-").map_err(input)?, Command::RevokeModel(model)));
        }
        _ => {}
    }
    let command = arg(args, 0, "COMMAND")?;
    let who = user(args)?;
    let optional = |i: usize| args.get(i).cloned();
    let (command, max) = match command {
        "enroll-totp" => (
            Command::EnrollTotp {
                account: arg(args, 2, "ACCOUNT")?.to_owned(),
                name: optional(3),
            },
            4,
        ),
        "confirm-totp" => (
            Command::ConfirmTotp {
                device: device(args, 2)?,
                code: arg(args, 3, "CODE")?.to_owned(),
            },
            4,
        ),
        "import-totp" => (
            Command::ImportTotp {
                secret: arg(args, 2, "SECRET or URI")?.to_owned(),
                name: optional(3),
            },
            4,
        ),
        "verify-totp" => (
            Command::VerifyTotp {
                code: arg(args, 2, "CODE")?.to_owned(),
            },
            3,
        ),
        "backup-codes" => (Command::BackupCodes, 2),
        "verify-backup" => (
            Command::VerifyBackup {
                code: arg(args, 2, "CODE")?.to_owned(),
            },
            3,
        ),
        "list" => (Command::List, 2),
        "rename" => (
            Command::Rename {
                device: device(args, 2)?,
                name: arg(args, 3, "NAME")?.to_owned(),
            },
            4,
        ),
        "delete" => (
            Command::Delete {
                device: device(args, 2)?,
            },
            3,
        ),
        "reset" => (Command::Reset, 2),
        "deadline" => (
            Command::Deadline {
                at: arg(args, 2, "UNIX_SECONDS")?
                    .parse()
                    .map_err(|_| input("UNIX_SECONDS must be a number of seconds"))?,
            },
            3,
        ),
        "unlock" => (
            Command::Unlock {
                factor: arg(args, 2, "FACTOR")?.parse().map_err(input)?,
            },
            3,
        ),
        other => return Err(input(format!("unknown command {other:?}; {USAGE}"))),
    };
    no_more(args, max)?;
    // Names are checked here too, so a bad one never reaches the database.
    if let Command::Rename { name, .. }
    | Command::EnrollTotp { name: Some(name), .. }
    | Command::ImportTotp { name: Some(name), .. } = &command
    {
        multifactor::DeviceName::new(name).map_err(input)?;
    }
    Ok((who, command))
}

async fn run(mut args: Vec<String>) -> Result<(), Failure> {
    let mut db = String::from("mfactl.db");
    if args.first().map(String::as_str) == Some("--db") {
        db = arg(&args, 1, "FILE or URL after --db")?.to_owned();
        args.drain(..2);
    }
    if matches!(args.first().map(String::as_str), Some("-h" | "--help" | "help")) {
        out!("{USAGE}");
        return Ok(());
    }
    let (who, command) = parse(&args)?;
    let mut config = MfaConfig::new("mfactl").map_err(|e| Failure(e.to_string(), 1))?;
    if let Command::Import(Import { rp_id: Some(id), .. }) = &command {
        let origin = format!("https://{id}");
        let rp = RelyingParty::new(id, "mfactl", &[origin.as_str()]).map_err(input)?;
        config.webauthn = Some(WebAuthnConfig::new(rp));
    }
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        let key = std::env::var("MFACTL_KEY")
            .map_err(|_| input("MFACTL_KEY (64 hex digits) is required with a PostgreSQL database"))?;
        let key = multifactor::SealingKey::from_hex(multifactor::KeyId::new("demo-1").map_err(input)?, &key)
            .map_err(|_| input("MFACTL_KEY must be 64 hexadecimal digits"))?;
        let store = PostgresStore::connect(&db).await?;
        store.migrate().await?;
        execute(Mfa::new(store, Keyring::new(key), config)?, &who, command).await
    } else {
        let path = PathBuf::from(&db);
        let (key, note) = demo_key::load("MFACTL_KEY", &path).map_err(input)?;
        if let Some(note) = note {
            eprintln!("mfactl: {note}");
        }
        let store = SqliteStore::open(&path).await?;
        execute(Mfa::new(store, Keyring::new(key), config)?, &who, command).await
    }
}

async fn execute<S: DeviceStore>(mfa: Mfa<S>, who: &UserId, command: Command) -> Result<(), Failure> {
    match command {
        Command::EnrollTotp { account, name } => {
            let e = mfa.enroll_totp(who, &account, name.as_deref()).await?;
            out!("device:  {}", e.device);
            out!("key URI: {}", e.key_uri.expose_secret());
            out!("secret:  {}", e.secret_base32.expose_secret());
            out!("{}", e.qr_text().map_err(input)?.expose_secret());
            out!("confirm with: mfactl confirm-totp {} {} CODE", who, e.device);
        }
        Command::ConfirmTotp { device, code } => {
            out!("{}", show(&mfa.confirm_totp(who, device, &code).await?));
        }
        Command::ImportTotp { secret, name } => {
            let id = mfa.import_totp(who, &secret, name.as_deref()).await?;
            out!("imported as device {id} (confirmed)");
        }
        Command::VerifyTotp { code } => out!("{}", show(&mfa.verify_totp(who, &code).await?)),
        Command::BackupCodes => {
            let set = mfa.generate_backup_codes(who, None).await?;
            out!("new backup codes for {who} (the old ones no longer work; shown once):");
            for code in &set.codes {
                out!("  {}", code.expose_secret());
            }
        }
        Command::VerifyBackup { code } => out!("{}", show(&mfa.verify_backup_code(who, &code).await?)),
        Command::List => {
            let methods = mfa.list_devices(who).await?;
            if methods.is_empty() {
                out!("{who} has no methods");
            }
            for m in methods {
                let used = m.last_used_at.map_or_else(|| "never".to_owned(), |t| t.to_string());
                let left = m
                    .remaining_backup_codes
                    .map(|n| format!(" ({n} left)"))
                    .unwrap_or_default();
                let pending = if m.confirmed { "" } else { " [unconfirmed]" };
                out!(
                    "{} {:<17} {}{left}{pending}  created {} last used {used}",
                    m.id,
                    m.kind,
                    m.name,
                    m.created_at
                );
            }
        }
        Command::Rename { device, name } => {
            mfa.rename_device(who, device, &name).await?;
            out!("renamed");
        }
        Command::Delete { device } => {
            mfa.admin_delete_device(who, device).await?;
            out!("deleted");
        }
        Command::Reset => out!("removed {} method(s)", mfa.admin_reset_user(who).await?),
        Command::Import(import) => return import_file(&mfa, import).await,
        Command::Credentials(filter) => {
            let mut after = None;
            let mut shown = 0usize;
            loop {
                let page = mfa.credential_inventory(&filter, after, 500).await?;
                for (user, c) in &page.credentials {
                    let model = c
                        .aaguid
                        .map_or_else(|| "-".to_owned(), |a| uuid::Uuid::from_bytes(a).to_string());
                    let synced = if c.synced == Some(true) {
                        "synced"
                    } else {
                        "device-bound"
                    };
                    out!("{} {user} {} {synced} {model} {}", c.id, c.kind.as_str(), c.name);
                    shown += 1;
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            out!("{shown} credential(s)");
        }
        Command::RevokeModel(model) => {
            let revoked = mfa.revoke_credentials(model).await?;
            out!("revoked {revoked} credential(s) of {}", uuid::Uuid::from_bytes(model));
        }
        Command::Deadline { at } => {
            mfa.set_enrollment_deadline(who, multifactor::UnixTime::from_secs(at))
                .await?;
            out!("enrollment deadline of {who} set to {at}, skipped prompts counted from zero");
        }
        Command::Unlock { factor } => {
            mfa.unlock(who, factor).await?;
            out!("unlocked {factor} for {who}");
        }
    }
    Ok(())
}

/// `mfactl import`: read, check, import, and say what happened.
async fn import_file<S: DeviceStore>(mfa: &Mfa<S>, import: Import) -> Result<(), Failure> {
    let text = std::fs::read_to_string(&import.file)
        .map_err(|e| input(format!("cannot read {}: {e}", import.file.display())))?;
    let text = zeroize::Zeroizing::new(text);
    let batch = ImportBatch::parse(import.format, &text);
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(batch.entries.len() as u64),
        if batch.entries.len() > 100 {
            indicatif::ProgressDrawTarget::stderr()
        } else {
            indicatif::ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}") {
        bar.set_style(style);
    }
    let report = mfa
        .import_batch(&batch, import.options, |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .await?;
    bar.finish_and_clear();
    for problem in &report.problems {
        eprintln!("mfactl: {problem}");
    }
    let verb = if import.options.dry_run { "would add" } else { "added" };
    out!("{:<18} {:>9} {:>9}", "kind", verb, "present");
    let mut added = 0;
    let mut present = 0;
    for (kind, counts) in report.counts() {
        out!("{:<18} {:>9} {:>9}", kind.default_name(), counts.added, counts.present);
        added += counts.added;
        present += counts.present;
    }
    out!("{:<18} {:>9} {:>9}", "total", added, present);
    out!("bad lines: {}", report.problems.len());
    if !report.problems.is_empty() && !import.options.skip_bad {
        return Err(input(format!(
            "nothing written: {} bad line(s) (listed above); fix them, or pass --skip-bad to import the rest",
            report.problems.len()
        )));
    }
    if import.options.dry_run {
        out!("dry run: nothing written");
    }
    Ok(())
}
