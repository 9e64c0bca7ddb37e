//! `mfactl`: manage users' MFA methods in a SQLite or PostgreSQL database from the command line.
//!
//! ```text
//! cargo install multifactor --features cli       # or, in a checkout: cargo install --path . --features cli
//! mfactl --help                                  # every command; `mfactl COMMAND --help` for one
//! mfactl [--db FILE|postgres://URL] [--json] COMMAND ...
//! mfactl completions bash                        # a shell completion script (bash, zsh, fish, ...)
//! ```
//!
//! The database is a SQLite file (default `mfactl.db` in the working directory, or
//! `MFACTL_DB`) or, given a `postgres://` URL, a PostgreSQL database. TOTP secrets are sealed
//! with the application's 32-byte key: 64 hex digits in `MFACTL_KEY`, or in the file named by
//! `--key-file` (`MFACTL_KEY_FILE`), under the key id in `MFACTL_KEY_ID` (default `demo-1`, the
//! web example's). For a SQLite file `FILE`, a key file `FILE.key` beside it is used if it
//! exists (the web example's demo creates one). `mfactl gen-key PATH` writes a fresh key to a
//! new file that only its owner can read. `mfactl` never creates a key on its own: a key made
//! up by the tool would seal secrets the application cannot open.
//!
//! `import-totp` reads the secret or `otpauth://` URI from standard input (or `--secret-file`),
//! never from the command line, where `ps` and the shell's history would show it.
//!
//! `import` reads an export of `otpauth`, `google-authenticator`, `authelia-csv`,
//! `authelia-uri`, `authelia-webauthn`, `django-otp-totp`, `django-otp-hotp`, `django-otp-static`, `keycloak`,
//! `authentik-webauthn`, `webauthn-rs` or `kratos` (the manual's migration guide says how to produce each). It checks the whole
//! file first and lists every bad line (line, user, reason; never a secret); with any, it writes
//! nothing and exits with status 2, unless `--skip-bad` imports the rest. A second run adds
//! nothing. `--dry-run` writes nothing and says what would be added; `--rp-id` refuses WebAuthn
//! credentials the export says were registered for another relying party id. A file larger
//! than `--max-bytes` (default 1 GiB) is refused before it is read. A progress bar shows on a
//! terminal for batches of more than 100 entries, and a summary table at the end.
//!
//! Every command validates its input before it writes, and each write is one atomic store
//! operation: bad input gets a one-line error, nothing half-written. `--json` prints one JSON
//! document on standard output instead of text.
//!
//! Exit status: 0 done (a code accepted); 1 the system failed (database, key); 2 bad input or
//! a command that does not fit the user's state (nothing was written); 3 a code was not
//! accepted (rejected, throttled or locked).

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use multifactor::import::{ImportBatch, ImportFormat, ImportOptions};
use multifactor::webauthn::{RelyingParty, WebAuthnConfig};
use multifactor::{
    DeviceId, DeviceKind, Factor, Keyring, Mfa, MfaConfig, Outcome, PostgresStore, SqliteStore, Store, UnixTime, UserId,
};

const EXIT_CODES: &str = "Exit status: 0 done (a code accepted); 1 the system failed (database, key); \
2 bad input or a command that does not fit the user's state (nothing written); 3 a code not accepted.";

/// Manage users' MFA methods in a multifactor database.
#[derive(Parser)]
#[command(name = "mfactl", version, after_help = EXIT_CODES)]
struct Cli {
    /// A SQLite file or a postgres:// URL.
    #[arg(long, global = true, env = "MFACTL_DB", default_value = "mfactl.db")]
    db: String,
    /// A file holding the sealing key (64 hex digits), when `MFACTL_KEY` is not set.
    #[arg(long, global = true, env = "MFACTL_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// One JSON document on standard output instead of text, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a TOTP enrollment: key URI, QR code, secret.
    EnrollTotp {
        #[arg(value_parser = user_id)]
        user: UserId,
        /// The account name the app shows (usually the user's email address).
        account: String,
        /// The device's name (default "Authenticator app").
        #[arg(value_parser = device_name)]
        name: Option<String>,
    },
    /// Confirm an enrollment with the first code from the app.
    ConfirmTotp {
        #[arg(value_parser = user_id)]
        user: UserId,
        device: DeviceId,
        code: String,
    },
    /// Import an existing secret or otpauth:// URI, read from standard input (or a file).
    ImportTotp {
        #[arg(value_parser = user_id)]
        user: UserId,
        /// The device's name (default: the URI's issuer, else "Authenticator app").
        #[arg(value_parser = device_name)]
        name: Option<String>,
        /// Read the secret from this file instead of standard input.
        #[arg(long)]
        secret_file: Option<PathBuf>,
    },
    /// Check a TOTP code.
    VerifyTotp {
        #[arg(value_parser = user_id)]
        user: UserId,
        code: String,
    },
    /// Generate a new set of backup codes (the old set stops working).
    BackupCodes {
        #[arg(value_parser = user_id)]
        user: UserId,
    },
    /// Spend a backup code; shows how many remain.
    VerifyBackup {
        #[arg(value_parser = user_id)]
        user: UserId,
        code: String,
    },
    /// List the user's methods.
    List {
        #[arg(value_parser = user_id)]
        user: UserId,
    },
    /// Rename a method.
    Rename {
        #[arg(value_parser = user_id)]
        user: UserId,
        device: DeviceId,
        #[arg(value_parser = device_name)]
        name: String,
    },
    /// Delete a method (as an administrator: even the last one; audited).
    Delete {
        #[arg(value_parser = user_id)]
        user: UserId,
        device: DeviceId,
    },
    /// Delete all of the user's methods (administrator's reset).
    Reset {
        #[arg(value_parser = user_id)]
        user: UserId,
    },
    /// Lift a lockout.
    Unlock {
        #[arg(value_parser = user_id)]
        user: UserId,
        /// backup_codes, totp or webauthn.
        factor: Factor,
    },
    /// Set the user's enrollment deadline; skipped prompts count from zero (audited).
    Deadline {
        #[arg(value_parser = user_id)]
        user: UserId,
        /// Seconds since the Unix epoch.
        unix_seconds: u64,
    },
    /// Import another system's export (checked whole first; see the manual's migration guide).
    Import(Import),
    /// The security keys and passkeys of all users.
    Credentials {
        /// Only this authenticator model (a UUID).
        #[arg(long, value_parser = aaguid)]
        aaguid: Option<[u8; 16]>,
        /// Only security keys or only passkeys.
        #[arg(long)]
        kind: Option<CredentialKind>,
        /// Only synced (yes) or device-bound (no) credentials.
        #[arg(long)]
        synced: Option<YesNo>,
    },
    /// Delete every credential of an authenticator model (all users, last devices included;
    /// audited).
    RevokeModel {
        /// The model's AAGUID (a UUID).
        #[arg(value_parser = aaguid)]
        uuid: [u8; 16],
    },
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
    /// Write a fresh sealing key (64 hex digits) to a new file only its owner can read.
    GenKey {
        /// The file to create; an existing file is never overwritten.
        path: PathBuf,
    },
}

#[derive(clap::Args)]
struct Import {
    /// The export file.
    file: PathBuf,
    /// The export's format.
    #[arg(long, value_parser = import_format)]
    format: ImportFormat,
    /// Check and count, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Import the good lines even if some are bad.
    #[arg(long)]
    skip_bad: bool,
    /// Refuse WebAuthn credentials the export says were registered for another relying party id.
    #[arg(long)]
    rp_id: Option<String>,
    /// Refuse a larger file before reading it.
    #[arg(long, default_value_t = 1 << 30)]
    max_bytes: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum CredentialKind {
    #[value(name = "security_key")]
    SecurityKey,
    Passkey,
}

#[derive(Clone, Copy, ValueEnum)]
enum YesNo {
    Yes,
    No,
}

fn user_id(text: &str) -> Result<UserId, String> {
    UserId::new(text).map_err(|e| e.to_string())
}

/// Names are checked when parsed, so a bad one never reaches the database.
fn device_name(text: &str) -> Result<String, String> {
    multifactor::DeviceName::new(text)
        .map(|n| n.as_str().to_owned())
        .map_err(|e| e.to_string())
}

/// An AAGUID as its UUID text (`ee882879-721c-4913-9775-3dfcce97072a`).
fn aaguid(text: &str) -> Result<[u8; 16], String> {
    uuid::Uuid::parse_str(text)
        .map(|u| *u.as_bytes())
        .map_err(|_| "not an AAGUID (a UUID such as ee882879-721c-4913-9775-3dfcce97072a)".to_owned())
}

fn import_format(name: &str) -> Result<ImportFormat, String> {
    ImportFormat::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = ImportFormat::ALL.iter().map(|f| f.name()).collect();
        format!("one of {}", names.join(", "))
    })
}

/// Prints a line to stdout; a closed pipe (`mfactl list alice | head -1`) is not an error.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// A failure: the message, and the exit status (see the crate docs above).
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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line: clap's message without its "error: ", up to the usage and hints.
            let text = e.render().to_string();
            let message = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                "a command is required".to_owned()
            } else {
                let lines: Vec<&str> = text
                    .lines()
                    .take_while(|l| !l.trim().is_empty())
                    .map(str::trim)
                    .collect();
                lines.join(" ")
            };
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            eprintln!("mfactl: {message} (see mfactl --help)");
            return ExitCode::from(2);
        }
    };
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(msg, code)) => {
            if !msg.is_empty() {
                eprintln!("mfactl: {msg}");
            }
            ExitCode::from(code)
        }
    }
}

/// The key: `MFACTL_KEY`, else the key file (`--key-file`, else a SQLite file's `FILE.key` if
/// it exists), under `MFACTL_KEY_ID`.
fn sealing_key(db: &str, key_file: Option<&PathBuf>, sqlite: bool) -> Result<multifactor::SealingKey, Failure> {
    let id = std::env::var("MFACTL_KEY_ID").ok();
    let id = multifactor::KeyId::new(id.as_deref().unwrap_or("demo-1")).map_err(input)?;
    if let Ok(hex) = std::env::var("MFACTL_KEY") {
        return multifactor::SealingKey::from_hex(id, &hex)
            .map_err(|_| input("MFACTL_KEY must be 64 hexadecimal digits"));
    }
    let beside = PathBuf::from(format!("{db}.key"));
    let path = match key_file {
        Some(path) => path.clone(),
        None if sqlite && beside.exists() => beside,
        None => {
            return Err(input(
                "no sealing key: set MFACTL_KEY (64 hex digits) or --key-file (MFACTL_KEY_FILE); \
                 `mfactl gen-key PATH` makes a new one",
            ));
        }
    };
    // A key file is 64 hex digits and a newline: read no more than a little past that.
    let mut text = zeroize::Zeroizing::new(String::new());
    std::fs::File::open(&path)
        .and_then(|f| f.take(1024).read_to_string(&mut text))
        .map_err(|e| input(format!("{}: {e}", path.display())))?;
    multifactor::SealingKey::from_hex(id, text.trim())
        .map_err(|_| input(format!("{}: not a key file (64 hexadecimal digits)", path.display())))
}

/// `gen-key`: a fresh key from the operating system's generator, in a new file (mode 0600).
fn gen_key(path: &PathBuf) -> Result<(), Failure> {
    use multifactor::Rng as _;
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    multifactor::OsRng::new()
        .and_then(|r| r.try_fill_bytes(key.as_mut()))
        .map_err(|e| Failure(format!("random: {e}"), 1))?;
    let text = zeroize::Zeroizing::new(key.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| input(format!("{}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| Failure(format!("{}: {e}", path.display()), 1))
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let json = cli.json;
    let command = cli.command;
    if let Command::Completions { shell } = command {
        clap_complete::generate(shell, &mut Cli::command(), "mfactl", &mut std::io::stdout());
        return Ok(());
    }
    if let Command::GenKey { path } = &command {
        gen_key(path)?;
        return Said::new(
            format!(
                "created {} (keep it where the application reads its key, not beside the data)",
                path.display()
            ),
            json!({"created": path.display().to_string()}),
        )
        .print(json);
    }
    // Read what the command needs from files and standard input before the database opens.
    let mut secret = None;
    if let Command::ImportTotp { secret_file, .. } = &command {
        secret = Some(read_secret(secret_file.as_ref())?);
    }
    let mut config = MfaConfig::new("mfactl").map_err(|e| Failure(e.to_string(), 1))?;
    if let Command::Import(Import { rp_id: Some(id), .. }) = &command {
        let origin = format!("https://{id}");
        let rp = RelyingParty::new(id, "mfactl", &[origin.as_str()]).map_err(input)?;
        config.webauthn = Some(WebAuthnConfig::new(rp));
    }
    let db = cli.db;
    let postgres = db.starts_with("postgres://") || db.starts_with("postgresql://");
    let key = sealing_key(&db, cli.key_file.as_ref(), !postgres)?;
    let out = if postgres {
        let store = PostgresStore::connect(&db).await?;
        store.migrate().await?;
        execute(Mfa::new(store, Keyring::new(key), config)?, command, secret).await?
    } else {
        let store = SqliteStore::open(&db).await?;
        execute(Mfa::new(store, Keyring::new(key), config)?, command, secret).await?
    };
    out.print(json)
}

/// The secret of `import-totp`: a file, or standard input; the first line, trimmed.
fn read_secret(file: Option<&PathBuf>) -> Result<zeroize::Zeroizing<String>, Failure> {
    let (source, name): (Box<dyn std::io::Read>, String) = match file {
        Some(path) => (
            Box::new(std::fs::File::open(path).map_err(|e| input(format!("cannot read {}: {e}", path.display())))?),
            path.display().to_string(),
        ),
        None => (Box::new(std::io::stdin()), "standard input".to_owned()),
    };
    let mut text = zeroize::Zeroizing::new(String::new());
    source
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| input(format!("cannot read {name}: {e}")))?;
    let line = zeroize::Zeroizing::new(text.lines().next().unwrap_or("").trim().to_owned());
    if line.is_empty() {
        return Err(input("no secret: give it on standard input or with --secret-file"));
    }
    Ok(line)
}

/// What a command has to say: as text lines, as one JSON document, and its exit status.
struct Said {
    text: Vec<String>,
    json: Value,
    status: u8,
}

impl Said {
    fn new(text: impl Into<String>, json: Value) -> Self {
        Self {
            text: vec![text.into()],
            json,
            status: 0,
        }
    }

    fn print(self, json: bool) -> Result<(), Failure> {
        if json {
            out!("{}", self.json);
        } else {
            for line in &self.text {
                out!("{line}");
            }
        }
        match self.status {
            0 => Ok(()),
            // The verdict is on standard output already.
            status => Err(Failure(String::new(), status)),
        }
    }
}

fn time(t: UnixTime) -> Value {
    json!(t.to_string())
}

/// A code's verdict: exit status 3 unless it was accepted.
fn verdict(outcome: &Outcome) -> Said {
    let (text, json) = match outcome {
        Outcome::Accepted(v) => match v.remaining_backup_codes() {
            Some(n) => (
                format!("accepted ({n} backup codes left)"),
                json!({"outcome": "accepted", "backup_codes_left": n}),
            ),
            None => ("accepted".to_owned(), json!({"outcome": "accepted"})),
        },
        Outcome::Rejected => ("rejected".to_owned(), json!({"outcome": "rejected"})),
        Outcome::Throttled { retry_at } => (
            format!("throttled: too many failures, retry at {retry_at}"),
            json!({"outcome": "throttled", "retry_at": time(*retry_at)}),
        ),
        Outcome::Locked => (
            "locked: too many failures; an admin must run `mfactl unlock`".to_owned(),
            json!({"outcome": "locked"}),
        ),
        other => (format!("{other:?}"), json!({"outcome": "refused"})),
    };
    let mut said = Said::new(text, json);
    said.status = if outcome.is_accepted() { 0 } else { 3 };
    said
}

fn device_json(m: &multifactor::DeviceInfo) -> Value {
    json!({
        "id": m.id.to_string(),
        "kind": m.kind.as_str(),
        "name": m.name.as_str(),
        "confirmed": m.confirmed,
        "created_at": time(m.created_at),
        "last_used_at": m.last_used_at.map(time),
        "backup_codes_left": m.remaining_backup_codes,
    })
}

async fn execute<S: Store>(
    mfa: Mfa<S>,
    command: Command,
    secret: Option<zeroize::Zeroizing<String>>,
) -> Result<Said, Failure> {
    Ok(match command {
        Command::EnrollTotp { user, account, name } => {
            let e = mfa.enroll_totp(&user, &account, name.as_deref()).await?;
            Said {
                text: vec![
                    format!("device:  {}", e.device),
                    format!("key URI: {}", e.key_uri.expose_secret()),
                    format!("secret:  {}", e.secret_base32.expose_secret()),
                    e.qr_text().map_err(input)?.expose_secret().to_owned(),
                    format!("confirm with: mfactl confirm-totp {user} {} CODE", e.device),
                ],
                json: json!({
                    "device": e.device.to_string(),
                    "key_uri": e.key_uri.expose_secret(),
                    "secret": e.secret_base32.expose_secret(),
                }),
                status: 0,
            }
        }
        Command::ConfirmTotp { user, device, code } => verdict(&mfa.confirm_totp(&user, device, &code).await?),
        Command::ImportTotp { user, name, .. } => {
            let secret = secret.ok_or_else(|| input("no secret"))?;
            let id = mfa.import_totp(&user, &secret, name.as_deref()).await?;
            Said::new(
                format!("imported as device {id} (confirmed)"),
                json!({"device": id.to_string()}),
            )
        }
        Command::VerifyTotp { user, code } => verdict(&mfa.verify_totp(&user, &code).await?),
        Command::BackupCodes { user } => {
            let set = mfa.generate_backup_codes(&user, None).await?;
            let codes: Vec<&str> = set.codes.iter().map(|c| c.expose_secret()).collect();
            let mut text = vec![format!(
                "new backup codes for {user} (the old ones stop working; shown once):"
            )];
            text.extend(codes.iter().map(|c| format!("  {c}")));
            Said {
                text,
                json: json!({"device": set.device.to_string(), "codes": codes}),
                status: 0,
            }
        }
        Command::VerifyBackup { user, code } => verdict(&mfa.verify_backup_code(&user, &code).await?),
        Command::List { user } => {
            let methods = mfa.list_devices(&user).await?;
            let mut text = Vec::new();
            if methods.is_empty() {
                text.push(format!("{user} has no methods"));
            }
            for m in &methods {
                let used = m.last_used_at.map_or_else(|| "never".to_owned(), |t| t.to_string());
                let left = m
                    .remaining_backup_codes
                    .map(|n| format!(" ({n} left)"))
                    .unwrap_or_default();
                let pending = if m.confirmed { "" } else { " [unconfirmed]" };
                text.push(format!(
                    "{} {:<17} {}{left}{pending}  created {} last used {used}",
                    m.id,
                    m.kind.noun(),
                    m.name,
                    m.created_at
                ));
            }
            Said {
                text,
                json: json!({"user": user.as_str(), "devices": methods.iter().map(device_json).collect::<Vec<_>>()}),
                status: 0,
            }
        }
        Command::Rename { user, device, name } => {
            mfa.rename_device(&user, device, &name).await?;
            Said::new("renamed", json!({"renamed": device.to_string()}))
        }
        Command::Delete { user, device } => {
            mfa.admin_delete_device(&user, device).await?;
            Said::new("deleted", json!({"deleted": device.to_string()}))
        }
        Command::Reset { user } => {
            let removed = mfa.admin_reset_user(&user).await?;
            Said::new(format!("removed {removed} method(s)"), json!({"removed": removed}))
        }
        Command::Import(import) => import_file(&mfa, import).await?,
        Command::Credentials { aaguid, kind, synced } => {
            let mut filter = multifactor::admin::CredentialFilter::new();
            if let Some(model) = aaguid {
                filter = filter.aaguid(model);
            }
            filter = match kind {
                Some(CredentialKind::SecurityKey) => filter.kind(DeviceKind::SecurityKey),
                Some(CredentialKind::Passkey) => filter.kind(DeviceKind::Passkey),
                None => filter,
            };
            if let Some(synced) = synced {
                filter = filter.synced(matches!(synced, YesNo::Yes));
            }
            let mut after = None;
            let mut text = Vec::new();
            let mut list = Vec::new();
            loop {
                let page = mfa.credential_inventory(&filter, after, 500).await?;
                for (user, c) in &page.credentials {
                    let model = c
                        .aaguid
                        .map_or_else(|| "-".to_owned(), |a| uuid::Uuid::from_bytes(a).to_string());
                    let synced = c.synced == Some(true);
                    let bound = if synced { "synced" } else { "device-bound" };
                    text.push(format!(
                        "{} {user} {} {bound} {model} {}",
                        c.id,
                        c.kind.as_str(),
                        c.name
                    ));
                    list.push(json!({
                        "id": c.id.to_string(), "user": user.as_str(), "kind": c.kind.as_str(),
                        "synced": synced, "aaguid": c.aaguid.map(|a| uuid::Uuid::from_bytes(a).to_string()),
                        "name": c.name.as_str(),
                    }));
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            text.push(format!("{} credential(s)", list.len()));
            Said {
                text,
                json: json!({"credentials": list}),
                status: 0,
            }
        }
        Command::RevokeModel { uuid: model } => {
            let revoked = mfa.revoke_credentials(model).await?;
            let model = uuid::Uuid::from_bytes(model);
            Said::new(
                format!("revoked {revoked} credential(s) of {model}"),
                json!({"revoked": revoked, "aaguid": model.to_string()}),
            )
        }
        Command::Deadline { user, unix_seconds } => {
            let at = UnixTime::from_secs(unix_seconds);
            mfa.set_enrollment_deadline(&user, at).await?;
            Said::new(
                format!("enrollment deadline of {user} set to {at}, skipped prompts counted from zero"),
                json!({"user": user.as_str(), "deadline": time(at)}),
            )
        }
        Command::Unlock { user, factor } => {
            mfa.unlock(&user, factor).await?;
            Said::new(
                format!("unlocked {factor} for {user}"),
                json!({"user": user.as_str(), "unlocked": factor.as_str()}),
            )
        }
        Command::Completions { .. } | Command::GenKey { .. } => Said::new("", Value::Null),
    })
}

/// The export, bounded: refused before it is read if it is larger than `max` bytes.
fn read_export(import: &Import) -> Result<zeroize::Zeroizing<String>, Failure> {
    let path = &import.file;
    let cannot = |e: std::io::Error| input(format!("cannot read {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(cannot)?;
    let too_large = || {
        input(format!(
            "{} is larger than --max-bytes {} (raise it, or split the export)",
            path.display(),
            import.max_bytes
        ))
    };
    if file.metadata().map_err(cannot)?.len() > import.max_bytes {
        return Err(too_large());
    }
    let mut text = zeroize::Zeroizing::new(String::new());
    // A file that grows while it is read is bounded too.
    file.take(import.max_bytes.saturating_add(1))
        .read_to_string(&mut text)
        .map_err(cannot)?;
    if text.len() as u64 > import.max_bytes {
        return Err(too_large());
    }
    Ok(text)
}

/// `mfactl import`: read, check, import, and say what happened.
async fn import_file<S: Store>(mfa: &Mfa<S>, import: Import) -> Result<Said, Failure> {
    let text = read_export(&import)?;
    let batch = ImportBatch::parse(import.format, &text);
    let options = ImportOptions {
        dry_run: import.dry_run,
        skip_bad: import.skip_bad,
    };
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
        .import_batch(&batch, options, |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .await?;
    bar.finish_and_clear();
    for problem in &report.problems {
        eprintln!("mfactl: {problem}");
    }
    let verb = if options.dry_run { "would add" } else { "added" };
    let mut text = vec![format!("{:<18} {:>9} {:>9}", "kind", verb, "present")];
    let (mut added, mut present) = (0, 0);
    let mut counts = Vec::new();
    for (kind, c) in report.counts() {
        text.push(format!("{:<18} {:>9} {:>9}", kind.default_name(), c.added, c.present));
        counts.push(json!({"kind": kind.as_str(), "added": c.added, "present": c.present}));
        added += c.added;
        present += c.present;
    }
    text.push(format!("{:<18} {:>9} {:>9}", "total", added, present));
    text.push(format!("bad lines: {}", report.problems.len()));
    let refused = !report.problems.is_empty() && !options.skip_bad;
    let written = !refused && !options.dry_run;
    if options.dry_run {
        text.push("dry run: nothing written".to_owned());
    }
    if written && added > 0 && matches!(import.format, ImportFormat::DjangoOtpStatic) {
        text.push(
            "note: django-otp keeps static tokens in plaintext: the imported ones stay valid wherever \
             the old database (or a copy of it) lives; delete them there (otp_static_statictoken)"
                .to_owned(),
        );
    }
    let problems: Vec<Value> = report
        .problems
        .iter()
        .map(|p| json!({"line": p.line, "user": p.user, "reason": p.reason}))
        .collect();
    let json = json!({
        "counts": counts, "added": added, "present": present, "problems": problems,
        "dry_run": options.dry_run, "written": written,
    });
    if refused {
        let said = Said { text, json, status: 0 };
        said.print(false).ok();
        return Err(input(format!(
            "nothing written: {} bad line(s) (listed above); fix them, or pass --skip-bad to import the rest",
            report.problems.len()
        )));
    }
    Ok(Said { text, json, status: 0 })
}
