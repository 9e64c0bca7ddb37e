//! The `mfactl` example binary, run as a user would: a whole session on a SQLite file, and
//! bad input that gets one line on stderr, a non-zero exit, and no write.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use multifactor::totp::{code_at, decode_base32_secret};
use multifactor::{Clock, SystemClock, TotpParams};

/// `cargo test` builds the examples next to the test binaries' `deps` directory.
fn mfactl() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = profile_dir.join("examples").join("mfactl");
    assert!(
        bin.exists(),
        "{} not built: run `cargo test` (which builds examples)",
        bin.display()
    );
    bin
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
        Command::new(mfactl())
            .args(args)
            .current_dir(&self.dir)
            .env("MFACTL_KEY", "11".repeat(32))
            .output()
            .unwrap()
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
        cli.ok(&["verify-totp", "alice", code.expose_secret()]).trim(),
        "rejected",
        "replay"
    );

    let codes = cli.ok(&["backup-codes", "alice"]);
    let first = codes.lines().nth(1).unwrap().trim().to_owned();
    assert_eq!(
        cli.ok(&["verify-backup", "alice", &first]).trim(),
        "accepted (5 backup codes left)"
    );
    assert_eq!(cli.ok(&["verify-backup", "alice", &first]).trim(), "rejected");

    cli.ok(&["rename", "alice", &device, "Work phone"]);
    let list = cli.ok(&["list", "alice"]);
    assert!(
        list.contains("Work phone") && list.contains("(5 left)") && !list.contains("[unconfirmed]"),
        "{list}"
    );
    cli.ok(&["delete", "alice", &device]);
    assert!(!cli.ok(&["list", "alice"]).contains("Work phone"));
    cli.ok(&[
        "import-totp",
        "bob",
        "otpauth://totp/Old:bob?secret=JBSWY3DPEHPK3PXP&issuer=Old",
    ]);
    assert!(cli.ok(&["list", "bob"]).contains("Old"));
    assert_eq!(cli.ok(&["reset", "alice"]).trim(), "removed 1 method(s)");
    assert!(cli.ok(&["list", "alice"]).contains("no methods"));
    assert_eq!(
        cli.ok(&["deadline", "alice", "1900000000"]).trim(),
        "enrollment deadline of alice set to 1900000000, skipped prompts counted from zero"
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
    for args in [
        &["import-totp", "alice", "JBSW"][..],
        &["import-totp", "alice", "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP"],
        &["verify-backup", "alice", "abc"],
        &["delete", "alice", "00000000000000000000000000000000"],
        &["verify-totp", "alice", "123456"],
    ] {
        let out = cli.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
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
