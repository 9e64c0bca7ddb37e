//! The `mfactl` example binary, run as a user would: a whole session on a SQLite file, and
//! bad input that gets one line on stderr, a non-zero exit, and no write.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

use multifactor::totp::TotpParams;
use multifactor::totp::{code_at, decode_base32_secret};
use multifactor::{Clock, SystemClock};

/// Cargo builds the binary for the package's integration tests (feature `cli`).
fn mfactl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mfactl"))
}

struct Cli {
    dir: PathBuf,
}

impl Cli {
    fn new(tag: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("mfactl-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, "")
    }

    /// Runs with `stdin` on standard input.
    fn run_with(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write as _;
        let mut child = Command::new(mfactl())
            .args(args)
            .current_dir(&self.dir)
            .env("MFACTL_KEY", "11".repeat(32))
            .env_remove("MFACTL_KEY_ID")
            .env_remove("MFACTL_DB")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// A code's verdict: exit status 3 unless accepted, the verdict on standard output.
    fn verdict(&self, args: &[&str]) -> (i32, String) {
        let out = self.run(args);
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap().trim().to_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn db_exists(&self) -> bool {
        self.dir.join("mfactl.db").exists()
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn field<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label} in {text}"))
}

#[test]
fn a_whole_session() {
    let cli = Cli::new("session");
    let enrolled = cli.ok(&["enroll-totp", "alice", "alice@example.com", "Phone"]);
    let device = field(&enrolled, "device:").to_owned();
    assert!(field(&enrolled, "key URI:").starts_with("otpauth://totp/mfactl:alice%40example.com?secret="));
    assert!(enrolled.contains('█'), "a QR code is drawn");
    assert!(cli.ok(&["list", "alice"]).contains("[unconfirmed]"));

    let secret = decode_base32_secret(field(&enrolled, "secret:")).unwrap();
    let code = code_at(&secret, &TotpParams::default(), SystemClock.now());
    assert_eq!(
        cli.ok(&["confirm-totp", "alice", &device, code.expose_secret()]).trim(),
        "accepted"
    );
    assert_eq!(
        cli.verdict(&["verify-totp", "alice", code.expose_secret()]),
        (3, "rejected".to_owned()),
        "replay"
    );

    let codes = cli.ok(&["backup-codes", "alice"]);
    let first = codes.lines().nth(1).unwrap().trim().to_owned();
    assert_eq!(
        cli.ok(&["verify-backup", "alice", &first]).trim(),
        "accepted (5 backup codes left)"
    );
    assert_eq!(
        cli.verdict(&["verify-backup", "alice", &first]),
        (3, "rejected".to_owned())
    );

    cli.ok(&["rename", "alice", &device, "Work phone"]);
    let list = cli.ok(&["list", "alice"]);
    assert!(
        list.contains("Work phone") && list.contains("(5 left)") && !list.contains("[unconfirmed]"),
        "{list}"
    );
    cli.ok(&["delete", "alice", &device]);
    assert!(!cli.ok(&["list", "alice"]).contains("Work phone"));
    // The secret comes on standard input, never in the arguments.
    let out = cli.run_with(
        &["import-totp", "bob"],
        "otpauth://totp/Old:bob?secret=JBSWY3DPEHPK3PXP&issuer=Old\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(cli.ok(&["list", "bob"]).contains("Old"));
    assert_eq!(cli.ok(&["reset", "alice"]).trim(), "removed 1 method(s)");
    assert!(cli.ok(&["list", "alice"]).contains("no methods"));
    assert_eq!(
        cli.ok(&["deadline", "alice", "1900000000"]).trim(),
        "enrollment deadline of alice set to 2030-03-17T17:46:40Z, skipped prompts counted from zero"
    );
}

#[test]
fn bad_input_is_one_line_and_writes_nothing() {
    let cli = Cli::new("bad");
    let cases: &[&[&str]] = &[
        &[],
        &["frobnicate", "alice"],
        &["list"],
        &["list", ""],
        &["rename", "alice", "not-a-device-id", "x"],
        &["rename", "alice", "00000000000000000000000000000000", "   "],
        &["enroll-totp", "alice"],
        &["enroll-totp", "alice", "a@b", "bad\nname"],
        &["unlock", "alice", "sms"],
        &["deadline", "alice", "soon"],
        &["deadline", "alice"],
        &["list", "alice", "extra"],
        &["--db"],
    ];
    for args in cases {
        let out = cli.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("mfactl: "), "{args:?}: {stderr}");
        assert!(!cli.db_exists(), "{args:?} created the database");
    }
    // Errors found by the library after opening: still one line, exit 2, nothing written.
    cli.ok(&["list", "alice"]);
    for (args, stdin) in [
        (&["import-totp", "alice"][..], "JBSW"),
        (&["import-totp", "alice"], "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP"),
        (&["import-totp", "alice"], ""),
        (&["delete", "alice", "00000000000000000000000000000000"], ""),
    ] {
        let out = cli.run_with(args, stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
    // A code for a method the user does not have is the ordinary refusal.
    assert_eq!(
        cli.verdict(&["verify-totp", "alice", "123456"]),
        (3, "rejected".to_owned())
    );
    assert!(cli.ok(&["list", "alice"]).contains("no methods"));
    // A bad key is refused before anything is written.
    let out = Command::new(mfactl())
        .args(["--db", "other.db", "list", "alice"])
        .current_dir(&cli.dir)
        .env("MFACTL_KEY", "xyz")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!cli.dir.join("other.db").exists());
}

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn import_checks_the_whole_file_then_writes_once() {
    let cli = Cli::new("import");
    let bad = fixture("django-otp-totp-bad.csv");
    let out = cli.run(&["import", &bad, "--format", "django-otp-totp"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    // One line per bad row (line, user, reason), then the verdict; never a secret.
    assert_eq!(stderr.lines().count(), 8, "{stderr}");
    assert!(
        stderr.contains("line 4: user \"carol\": key URI: t0 other than 0"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing written: 7 bad line(s)"), "{stderr}");
    assert!(!stderr.contains("3132333435"), "{stderr}");
    assert!(cli.ok(&["list", "alice"]).contains("no methods"));

    let dry = cli.ok(&["import", &bad, "--format", "django-otp-totp", "--skip-bad", "--dry-run"]);
    assert!(dry.contains("dry run: nothing written"), "{dry}");
    assert!(cli.ok(&["list", "alice"]).contains("no methods"));

    let done = cli.ok(&["import", &bad, "--format", "django-otp-totp", "--skip-bad"]);
    assert!(done.contains("Authenticator app          2         0"), "{done}");
    assert!(done.contains("bad lines: 7"), "{done}");
    assert!(cli.ok(&["list", "alice"]).contains("Authenticator"));
    // The imported secret verifies, and the replay mark came along: django-otp's last_t.
    let good = fixture("django-otp-totp.csv");
    let again = cli.ok(&["import", &good, "--format", "django-otp-totp"]);
    assert!(again.contains("total                      0         2"), "{again}");

    for args in [
        &["import"][..],
        &["import", &good],
        &["import", &good, "--format"],
        &["import", &good, "--format", "lastpass"],
        &["import", &good, "--format", "keycloak", "--wat"],
        &["import", "/nonexistent/file.csv", "--format", "keycloak"],
    ] {
        let out = cli.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[test]
fn import_checks_the_relying_party_id_when_given() {
    let cli = Cli::new("import-rp");
    let file = fixture("authentik-webauthn-bad.csv");
    let out = cli.run(&[
        "import",
        &file,
        "--format",
        "authentik-webauthn",
        "--rp-id",
        "auth.example.com",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("line 4: user \"carol\": imported WebAuthn credential: registered for another relying party id"),
        "{stderr}"
    );
    let out = cli.run(&["import", &file, "--format", "authentik-webauthn"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("line 4:"),
        "without --rp-id the row's rp_id is not checked: {stderr}"
    );
}

#[test]
fn the_credential_inventory_and_a_model_revoked_in_bulk() {
    let cli = Cli::new("inventory");
    let file = fixture("authentik-webauthn.csv");
    cli.ok(&["import", &file, "--format", "authentik-webauthn"]);
    let all = cli.ok(&["credentials"]);
    let yubikey = "cb69481e-8ff7-4039-93ec-0a2729a154a8";
    let of_model = all.lines().filter(|l| l.contains(yubikey)).count();
    assert!(of_model >= 1, "{all}");
    let listed = cli.ok(&["credentials", "--aaguid", yubikey]);
    assert!(listed.ends_with(&format!("{of_model} credential(s)\n")), "{listed}");
    assert!(listed.contains("alice security_key device-bound"), "{listed}");
    let passkeys = cli.ok(&["credentials", "--kind", "passkey"]);
    assert!(
        passkeys
            .lines()
            .all(|l| l.contains(" passkey ") || l.ends_with("credential(s)")),
        "{passkeys}"
    );

    let revoked = cli.ok(&["revoke-model", yubikey]);
    assert!(
        revoked.contains(&format!("revoked {of_model} credential(s) of {yubikey}")),
        "{revoked}"
    );
    assert!(
        cli.ok(&["credentials", "--aaguid", yubikey])
            .starts_with("0 credential(s)")
    );
    assert!(cli.ok(&["revoke-model", yubikey]).contains("revoked 0 credential(s)"));

    for args in [
        &["credentials", "--aaguid", "not-a-uuid"][..],
        &["credentials", "--kind", "totp"],
        &["credentials", "--synced", "maybe"],
        &["credentials", "--wat"],
        &["revoke-model"],
        &["revoke-model", yubikey, "extra"],
    ] {
        let out = cli.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[test]
fn help_for_every_command_completions_and_json_for_scripts() {
    let cli = Cli::new("help");
    let top = cli.ok(&["--help"]);
    assert!(top.contains("Exit status: 0"), "{top}");
    let commands = [
        "enroll-totp",
        "confirm-totp",
        "import-totp",
        "verify-totp",
        "backup-codes",
        "verify-backup",
        "list",
        "rename",
        "delete",
        "reset",
        "unlock",
        "deadline",
        "import",
        "credentials",
        "revoke-model",
        "completions",
        "gen-key",
    ];
    for command in commands {
        assert!(top.contains(command), "{command} missing from --help");
        let help = cli.ok(&[command, "--help"]);
        assert!(help.contains(&format!("Usage: mfactl {command}")), "{help}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let script = cli.ok(&["completions", shell]);
        assert!(script.contains("mfactl") && script.contains("revoke-model"), "{shell}");
    }
    assert!(!cli.db_exists(), "help and completions open no database");

    // JSON: one document per command, times as RFC 3339, the verdict's status kept.
    let enrolled: serde_json::Value =
        serde_json::from_str(&cli.ok(&["--json", "enroll-totp", "alice", "a@b"])).unwrap();
    let secret = decode_base32_secret(enrolled["secret"].as_str().unwrap()).unwrap();
    let device = enrolled["device"].as_str().unwrap().to_owned();
    let code = code_at(&secret, &TotpParams::default(), SystemClock.now());
    let confirmed: serde_json::Value =
        serde_json::from_str(&cli.ok(&["confirm-totp", "--json", "alice", &device, code.expose_secret()])).unwrap();
    assert_eq!(confirmed["outcome"], "accepted");
    let out = cli.run(&["--json", "verify-totp", "alice", code.expose_secret()]);
    assert_eq!(out.status.code(), Some(3));
    let replay: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(replay["outcome"], "rejected");
    let list: serde_json::Value = serde_json::from_str(&cli.ok(&["--json", "list", "alice"])).unwrap();
    let first = &list["devices"][0];
    assert_eq!(first["kind"], "totp");
    assert_eq!(first["id"], device.as_str());
    let created = first["created_at"].as_str().unwrap();
    assert!(
        created.len() == 20 && created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "{created}"
    );
}

#[test]
fn operator_safety_secrets_off_the_command_line_a_bounded_import_and_the_key_id() {
    let cli = Cli::new("safety");
    // From a file, first line only.
    let file = cli.dir.join("secret.txt");
    std::fs::write(&file, "JBSWY3DPEHPK3PXP\nignored\n").unwrap();
    cli.ok(&["import-totp", "carol", "--secret-file", file.to_str().unwrap()]);
    assert!(cli.ok(&["list", "carol"]).contains("Authenticator app"));
    // A secret given as an argument is a name, and a bad one: nothing is read from argv.
    let out = cli.run(&["import-totp", "dave", "JBSWY3DPEHPK3PXP", "extra"]);
    assert_eq!(out.status.code(), Some(2));

    // An export larger than --max-bytes is refused before it is read, and nothing is written.
    let good = fixture("django-otp-totp.csv");
    let size = std::fs::metadata(&good).unwrap().len();
    let max = (size - 1).to_string();
    let out = cli.run(&["import", &good, "--format", "django-otp-totp", "--max-bytes", &max]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("larger than --max-bytes"), "{stderr}");
    assert!(cli.ok(&["list", "alice"]).contains("no methods"));
    let exact = size.to_string();
    cli.ok(&["import", &good, "--format", "django-otp-totp", "--max-bytes", &exact]);

    // django-otp's static tokens are plaintext in the old database: the output says so.
    let done = cli.ok(&[
        "import",
        &fixture("django-otp-static.csv"),
        "--format",
        "django-otp-static",
    ]);
    assert!(done.contains("stay valid wherever"), "{done}");

    // No key, no database: mfactl never makes up a key of its own, which would seal secrets
    // the application cannot open.
    let keyless = |args: &[&str]| {
        Command::new(mfactl())
            .args(["--db", "keyed.db"])
            .args(args)
            .current_dir(&cli.dir)
            .env_remove("MFACTL_KEY")
            .env_remove("MFACTL_KEY_FILE")
            .env_remove("MFACTL_KEY_ID")
            .output()
            .unwrap()
    };
    let out = keyless(&["list", "alice"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gen-key"));
    assert!(!cli.dir.join("keyed.db").exists());
    assert!(!cli.dir.join("keyed.db.key").exists());
    // gen-key writes a new key file for its owner alone, and never overwrites one.
    let made = keyless(&["gen-key", "ops.key"]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let key = std::fs::read_to_string(cli.dir.join("ops.key")).unwrap();
    assert_eq!(key.trim().len(), 64);
    assert!(key.trim().bytes().all(|b| b.is_ascii_hexdigit()));
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(cli.dir.join("ops.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = keyless(&["gen-key", "ops.key"]);
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(cli.dir.join("ops.key")).unwrap(), key);
    assert_ne!(keyless(&["gen-key", "other.key"]).status.code(), Some(1));
    assert_ne!(std::fs::read_to_string(cli.dir.join("other.key")).unwrap(), key);
    // --key-file seals with it; the same file opens what it sealed, and another key cannot.
    let filed = keyless(&[
        "--key-file",
        "ops.key",
        "import-totp",
        "gina",
        "--secret-file",
        file.to_str().unwrap(),
    ]);
    assert!(filed.status.success(), "{}", String::from_utf8_lossy(&filed.stderr));
    let secret = decode_base32_secret("JBSWY3DPEHPK3PXP").unwrap();
    let code = code_at(&secret, &TotpParams::default(), SystemClock.now());
    let code = code.expose_secret();
    let other = keyless(&["--key-file", "other.key", "verify-totp", "gina", code]);
    assert_eq!(
        other.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    let opened = keyless(&["--key-file", "ops.key", "verify-totp", "gina", code]);
    assert!(opened.status.success(), "{}", String::from_utf8_lossy(&opened.stderr));
    // A SQLite file's FILE.key beside it is used when it exists (the web demo makes one).
    std::fs::copy(cli.dir.join("ops.key"), cli.dir.join("keyed.db.key")).unwrap();
    assert!(keyless(&["list", "gina"]).status.success());
    std::fs::remove_file(cli.dir.join("keyed.db.key")).unwrap();
    std::fs::remove_file(cli.dir.join("keyed.db")).unwrap();
    // A key file that is not a key is refused with its name.
    std::fs::write(cli.dir.join("bad.key"), "not a key\n").unwrap();
    let out = keyless(&["--key-file", "bad.key", "list", "alice"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.key: not a key file"));
    let as_key = |id: &str, args: &[&str]| {
        Command::new(mfactl())
            .args(["--db", "keyed.db"])
            .args(args)
            .current_dir(&cli.dir)
            .env("MFACTL_KEY", "22".repeat(32))
            .env("MFACTL_KEY_ID", id)
            .output()
            .unwrap()
    };
    let made = as_key("prod-2026", &["backup-codes", "frank"]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let made = String::from_utf8(made.stdout).unwrap();
    let first = made.lines().nth(1).unwrap().trim().to_owned();
    // The codes are keyed under prod-2026: a keyring that has only prod-2027 cannot check them.
    let wrong = as_key("prod-2027", &["verify-backup", "frank", &first]);
    assert_eq!(
        wrong.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let right = as_key("prod-2026", &["verify-backup", "frank", &first]);
    assert!(right.status.success(), "{}", String::from_utf8_lossy(&right.stderr));
}
