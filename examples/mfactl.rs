//! `mfactl`: manage users' MFA methods in a SQLite database from the command line.
//!
//! ```text
//! cargo run --example mfactl -- [--db FILE] COMMAND ...
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
//! ```
//!
//! The database defaults to `mfactl.db` in the working directory. TOTP secrets are sealed with
//! the 32-byte key in `MFACTL_KEY` (64 hex digits); without it, a key file next to the database
//! (`FILE.key`) is created on first use, which is fine for a demo and wrong for production (the
//! key must not live beside the data it protects).
//!
//! Every command validates its input before it writes, and each write is one atomic store
//! operation: bad input gets a one-line error and exit status 2, nothing half-written.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use multifactor_kit::demo_key;

use multifactor::{DeviceId, Factor, Keyring, Mfa, MfaConfig, Outcome, SqliteStore, UserId};

const USAGE: &str = "usage: mfactl [--db FILE] enroll-totp|confirm-totp|import-totp|verify-totp|backup-codes|\
verify-backup|list|rename|delete|reset|unlock ARGS... (see the example's docs)";

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
}

fn parse(args: &[String]) -> Result<(UserId, Command), Failure> {
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
    let mut db = PathBuf::from("mfactl.db");
    if args.first().map(String::as_str) == Some("--db") {
        db = PathBuf::from(arg(&args, 1, "FILE after --db")?);
        args.drain(..2);
    }
    if matches!(args.first().map(String::as_str), Some("-h" | "--help" | "help")) {
        out!("{USAGE}");
        return Ok(());
    }
    let (who, command) = parse(&args)?;
    let (key, note) = demo_key::load("MFACTL_KEY", &db).map_err(input)?;
    if let Some(note) = note {
        eprintln!("mfactl: {note}");
    }
    let store = SqliteStore::open(&db).await?;
    let mfa = Mfa::new(
        store,
        Keyring::new(key),
        MfaConfig::new("mfactl").map_err(|e| Failure(e.to_string(), 1))?,
    )?;
    match command {
        Command::EnrollTotp { account, name } => {
            let e = mfa.enroll_totp(&who, &account, name.as_deref()).await?;
            out!("device:  {}", e.device);
            out!("key URI: {}", e.key_uri.expose_secret());
            out!("secret:  {}", e.secret_base32.expose_secret());
            out!("{}", e.qr_text().map_err(input)?.expose_secret());
            out!("confirm with: mfactl confirm-totp {} {} CODE", who, e.device);
        }
        Command::ConfirmTotp { device, code } => {
            out!("{}", show(&mfa.confirm_totp(&who, device, &code).await?));
        }
        Command::ImportTotp { secret, name } => {
            let id = mfa.import_totp(&who, &secret, name.as_deref()).await?;
            out!("imported as device {id} (confirmed)");
        }
        Command::VerifyTotp { code } => out!("{}", show(&mfa.verify_totp(&who, &code).await?)),
        Command::BackupCodes => {
            let set = mfa.generate_backup_codes(&who, None).await?;
            out!("new backup codes for {who} (the old ones no longer work; shown once):");
            for code in &set.codes {
                out!("  {}", code.expose_secret());
            }
        }
        Command::VerifyBackup { code } => out!("{}", show(&mfa.verify_backup_code(&who, &code).await?)),
        Command::List => {
            let methods = mfa.list_devices(&who).await?;
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
            mfa.rename_device(&who, device, &name).await?;
            out!("renamed");
        }
        Command::Delete { device } => {
            mfa.admin_delete_device(&who, device).await?;
            out!("deleted");
        }
        Command::Reset => out!("removed {} method(s)", mfa.admin_reset_user(&who).await?),
        Command::Unlock { factor } => {
            mfa.unlock(&who, factor).await?;
            out!("unlocked {factor} for {who}");
        }
    }
    Ok(())
}
