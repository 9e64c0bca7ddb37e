//! Imports from other systems through the batch importer, on every fixture in
//! `tests/fixtures/import` (written from each system's source; `generate.py` there): what is
//! read, what each hostile line is refused for, what an import writes, that a second run adds
//! nothing, that imported TOTP secrets give the source's codes (RFC 6238 and oathtool), and that
//! imported backup codes work once each.

use std::path::PathBuf;
use std::process::Command;

use multifactor::audit::AuditKind;
use multifactor::error::MisuseError;
use multifactor::import::{ImportBatch, ImportFormat, ImportItem, ImportOptions, ImportStatus};
use multifactor::totp::code_at;
use multifactor::{DeviceKind, DeviceStore as _, MfaConfig, Outcome, UnixTime};
use multifactor_kit::service::{TestMfa, keyring, setup, setup_with, user};

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(format: ImportFormat, name: &str) -> ImportBatch {
    ImportBatch::parse(format, &fixture(name))
}

/// Every good fixture: what it holds, by line, user and kind.
/// A fixture: its format, file, and (line, user, kind) per entry.
type Good = (ImportFormat, &'static str, &'static [(usize, &'static str, DeviceKind)]);
/// A hostile fixture: its format, file, and (line, user, part of the reason) per problem.
type Hostile = (
    ImportFormat,
    &'static str,
    &'static [(usize, Option<&'static str>, &'static str)],
);

const GOOD: [Good; 12] = [
    (
        ImportFormat::Otpauth,
        "otpauth.txt",
        &[
            (2, "alice", DeviceKind::Totp),
            (4, "bob", DeviceKind::Totp),
            (5, "dave", DeviceKind::Totp),
        ],
    ),
    (
        ImportFormat::GoogleAuthenticator,
        "google-authenticator.txt",
        &[
            (1, "alice", DeviceKind::Totp),
            (1, "alice", DeviceKind::Totp),
            (2, "bob", DeviceKind::Totp),
            (2, "bob", DeviceKind::Totp),
        ],
    ),
    (
        ImportFormat::AutheliaCsv,
        "authelia.csv",
        &[
            (2, "alice", DeviceKind::Totp),
            (3, "bob", DeviceKind::Totp),
            (4, "carol", DeviceKind::Totp),
        ],
    ),
    (
        ImportFormat::AutheliaUri,
        "authelia-uri.txt",
        &[(1, "alice", DeviceKind::Totp), (2, "bob", DeviceKind::Totp)],
    ),
    (
        ImportFormat::AutheliaWebAuthn,
        "authelia-webauthn.yml",
        &[
            (2, "alice", DeviceKind::SecurityKey),
            (23, "bob", DeviceKind::Passkey),
            // Discoverable, but without the user handle Authelia keeps apart.
            (45, "carol", DeviceKind::SecurityKey),
        ],
    ),
    (
        ImportFormat::DjangoOtpTotp,
        "django-otp-totp.csv",
        &[(2, "alice", DeviceKind::Totp), (3, "bob", DeviceKind::Totp)],
    ),
    (
        ImportFormat::DjangoOtpHotp,
        "django-otp-hotp.csv",
        &[(2, "alice", DeviceKind::Totp), (3, "bob", DeviceKind::Totp)],
    ),
    (
        ImportFormat::DjangoOtpStatic,
        "django-otp-static.csv",
        &[
            (2, "alice", DeviceKind::BackupCodes),
            (4, "bob", DeviceKind::BackupCodes),
        ],
    ),
    (
        ImportFormat::Keycloak,
        "keycloak.csv",
        &[
            (2, "alice", DeviceKind::Totp),
            (3, "bob", DeviceKind::Totp),
            (4, "carol", DeviceKind::Totp),
            (5, "alice", DeviceKind::SecurityKey),
            (6, "bob", DeviceKind::Passkey),
            (7, "dave", DeviceKind::Totp),
            (8, "alice", DeviceKind::BackupCodes),
        ],
    ),
    (
        ImportFormat::AuthentikWebAuthn,
        "authentik-webauthn.csv",
        &[(2, "alice", DeviceKind::SecurityKey), (3, "bob", DeviceKind::Passkey)],
    ),
    (
        ImportFormat::WebauthnRs,
        "webauthn-rs.jsonl",
        &[(1, "alice", DeviceKind::Passkey), (2, "bob", DeviceKind::SecurityKey)],
    ),
    (
        ImportFormat::Kratos,
        "kratos.jsonl",
        &[
            (1, KRATOS_ALICE, DeviceKind::BackupCodes),
            (1, KRATOS_ALICE, DeviceKind::Totp),
            (1, KRATOS_ALICE, DeviceKind::SecurityKey),
            (2, KRATOS_BOB, DeviceKind::Passkey),
        ],
    ),
];

/// The Kratos fixture's identity ids (the users).
const KRATOS_ALICE: &str = "8f1c2d3e-0000-4000-8000-00000000a11c";
const KRATOS_BOB: &str = "8f1c2d3e-0000-4000-8000-000000000b0b";

fn with_webauthn() -> (TestMfa, multifactor::ManualClock, multifactor::RecordingSink) {
    let mut config = MfaConfig::new("ACME").unwrap();
    let rp =
        multifactor::webauthn::RelyingParty::new("auth.example.com", "ACME", &["https://auth.example.com"]).unwrap();
    config.webauthn = Some(multifactor::webauthn::WebAuthnConfig::new(rp));
    setup_with(multifactor::MemoryStore::new(), keyring("k1", 1), config)
}

#[test]
fn every_good_fixture_reads_cleanly() {
    for (format, file, expected) in GOOD {
        let batch = parse(format, file);
        assert!(batch.is_clean(), "{file}: {:?}", batch.problems);
        let got: Vec<(usize, &str, DeviceKind)> = batch
            .entries
            .iter()
            .map(|e| (e.line, e.user.as_str(), e.item.kind()))
            .collect();
        assert_eq!(got, expected, "{file}");
        assert_eq!(ImportFormat::from_name(format.name()), Some(format));
    }
    assert_eq!(ImportFormat::from_name("lastpass"), None);
}

/// Every hostile fixture: the good lines still read, and each bad line is one problem with its
/// line number, user and the rule it breaks.
#[test]
fn every_hostile_line_is_reported_with_its_reason() {
    let cases: [Hostile; 12] = [
        (
            ImportFormat::Otpauth,
            "otpauth-bad.txt",
            &[
                (5, None, "expected `USER otpauth://totp/...`"),
                (6, Some("carol"), "expected an otpauth:// URI"),
                (7, Some("carol"), "an hotp URI needs its counter"),
                (8, Some("carol"), "secret must be 10..=64 bytes"),
                (9, Some("carol"), "algorithm"),
            ],
        ),
        (
            ImportFormat::GoogleAuthenticator,
            "google-authenticator-bad.txt",
            &[
                (
                    2,
                    Some("carol"),
                    "account 1: Google Authenticator export: unknown OTP type",
                ),
                (2, Some("carol"), "account 2: secret must be 10..=64 bytes"),
                (2, Some("carol"), "account 3: Google Authenticator export: MD5"),
                (
                    3,
                    Some("dave"),
                    "Google Authenticator export: data is not percent-encoded",
                ),
                (
                    4,
                    Some("erin"),
                    "Google Authenticator export: data is not a migration payload",
                ),
                (5, None, "expected `USER otpauth-migration://offline?data=...`"),
            ],
        ),
        (
            ImportFormat::AutheliaCsv,
            "authelia-bad.csv",
            &[
                (5, Some("dave"), "algorithm must be SHA1, SHA256 or SHA512"),
                (6, Some("dave"), "TOTP digits 9 is outside 6..=8"),
                (7, Some("dave"), "TOTP period 0 s is outside 10..=300 s"),
                (8, Some("dave"), "not valid base32"),
                (
                    9,
                    Some("dave"),
                    "secret must be 10..=64 bytes (80 to 512 bits), got 5 bytes",
                ),
                (10, None, "5 fields where the header has 6"),
                (11, Some("bob"), "the same TOTP secret for this user as line 3"),
                (12, None, "7 fields where the header has 6"),
            ],
        ),
        (
            ImportFormat::AutheliaUri,
            "authelia-uri-bad.txt",
            &[
                (2, None, "expected Authelia's label Issuer:username"),
                (3, None, "an hotp URI: Authelia exports only totp"),
                (4, None, "scheme must be otpauth"),
                (5, None, "secret must be 10..=64 bytes"),
            ],
        ),
        (
            ImportFormat::DjangoOtpTotp,
            "django-otp-totp-bad.csv",
            &[
                (4, Some("carol"), "t0 other than 0"),
                (5, Some("carol"), "key is not hexadecimal"), // an odd number of digits
                (6, Some("carol"), "key is not hexadecimal"),
                (7, Some("carol"), "step 10 to 300 seconds"),
                (8, Some("carol"), "last_t must be -1 or a step"),
                (9, Some("carol"), "digits is not a number"),
                (10, Some("alice"), "the same TOTP secret for this user as line 2"),
            ],
        ),
        (
            ImportFormat::DjangoOtpHotp,
            "django-otp-hotp-bad.csv",
            &[
                (4, Some("carol"), "key is not hexadecimal"), // an odd number of digits
                (5, Some("carol"), "digits must be 6 to 8"),
                (6, Some("carol"), "counter is not a number"),
                (7, Some("carol"), "key is not hexadecimal"),
                (8, None, "4 fields where the header has 5"),
                (9, Some("alice"), "the same TOTP secret for this user as line 2"),
            ],
        ),
        (
            ImportFormat::DjangoOtpStatic,
            "django-otp-static-bad.csv",
            &[
                (7, Some("carol"), "each code must have 8 to 32 letters or digits"),
                (8, Some("dave"), "letters and digits only"),
                (9, Some("erin"), "all codes of a set must have the same length"),
                (11, Some("frank"), "a code is given twice"),
                (13, Some("grace"), "the token is empty"),
            ],
        ),
        (
            ImportFormat::Keycloak,
            "keycloak-bad.csv",
            &[
                (7, Some("dave"), "encodedHashedValue is not a SHA-512 digest (64 bytes)"),
                (8, Some("dave"), "TOTP digits 9 is outside 6..=8"),
                (9, Some("dave"), "algorithm must be HmacSHA1, HmacSHA256 or HmacSHA512"),
                (
                    10,
                    Some("dave"),
                    "secret must be 10..=64 bytes (80 to 512 bits), got 5 bytes",
                ),
                (11, Some("dave"), "secret_data is not Keycloak's"),
                (12, Some("dave"), "a password, not an MFA credential"),
                (13, Some("dave"), "not a valid ES256 or RS256 key"),
                (14, Some("dave"), "the public key is not a valid Ed25519 key"),
                (15, Some("dave"), "credentialId is not base64"),
                (16, Some("dave"), "user_id is empty"),
                (17, Some("dave"), "the same WebAuthn credential as line 5"),
                (18, None, "3 fields where the header has 6"),
                (
                    19,
                    Some("erin"),
                    "only EdDSA (Ed25519), ES256 (P-256) and RS256 keys are accepted",
                ),
            ],
        ),
        (
            ImportFormat::AuthentikWebAuthn,
            "authentik-webauthn-bad.csv",
            &[
                (5, Some("carol"), "sign_count is not a number"),
                (6, Some("carol"), "aaguid is not a UUID"),
                (7, Some("carol"), "a passkey needs the user handle"),
                (8, Some("carol"), "the public key is not a COSE key"),
                (9, Some("carol"), "the same WebAuthn credential as line 2"),
                (10, None, "3 fields where the header has 9"),
            ],
        ),
        (
            ImportFormat::WebauthnRs,
            "webauthn-rs-bad.jsonl",
            &[
                (3, Some("carol"), "a passkey needs the user handle"),
                (4, Some("carol"), "the public key is not a valid Ed25519 key"),
                (5, Some("carol"), "not a valid ES256 or RS256 key"),
                (6, Some("carol"), "kind must be passkey or security_key"),
                (7, Some("carol"), "not the JSON of a webauthn-rs Passkey"),
                (8, None, "expected {"),
                (9, None, "expected {"),
                (10, Some("dave"), "the same WebAuthn credential as line 2"),
            ],
        ),
        (
            ImportFormat::Kratos,
            "kratos-bad.jsonl",
            &[
                (3, None, "expected a Kratos identity"),
                (4, None, "the identity's id is empty"),
                (5, Some("carol-1"), "totp: key URI: scheme must be otpauth"),
                (
                    6,
                    Some("carol-2"),
                    "lookup_secret: imported backup codes: each code must have 8 to 32",
                ),
                (
                    7,
                    Some("carol-3"),
                    "webauthn: credential 1: imported WebAuthn credential: the public key is not a valid ES256",
                ),
                (
                    8,
                    Some("carol-4"),
                    "passkey: credential 1: imported WebAuthn credential: a passkey needs the user handle",
                ),
                (9, Some("carol-5"), "totp: no config: export with include_credential"),
                (10, Some("dave"), "the same WebAuthn credential as line 1"),
            ],
        ),
        (
            ImportFormat::AutheliaWebAuthn,
            "authelia-webauthn-bad.yml",
            &[
                (66, Some("dave"), "a legacy (U2F) credential"),
                (87, Some("dave"), "kid is not base64"),
                (108, Some("dave"), "the public key is not a valid ES256"),
                (129, Some("dave"), "aaguid is not a UUID"),
                (150, Some("erin"), "the same WebAuthn credential as line 2"),
            ],
        ),
    ];
    for (format, file, expected) in cases {
        let text = fixture(file);
        let batch = ImportBatch::parse(format, &text);
        let got: Vec<(usize, Option<&str>, &str)> = batch
            .problems
            .iter()
            .map(|p| (p.line, p.user.as_deref(), p.reason.as_str()))
            .collect();
        assert_eq!(got.len(), expected.len(), "{file}: {got:#?}");
        for ((line, user, reason), (want_line, want_user, want)) in got.iter().zip(expected.iter()) {
            assert_eq!((line, user), (want_line, want_user), "{file}: {reason}");
            assert!(reason.contains(want), "{file} line {line}: {reason:?} lacks {want:?}");
        }
        // The good lines of the hostile file are still there.
        let good = match format {
            // The good files' bob lines are not in these hostile ones.
            ImportFormat::GoogleAuthenticator => 2,
            ImportFormat::AutheliaUri => 1,
            // The good files' hotp lines are not in these hostile ones.
            ImportFormat::Otpauth => 2,
            ImportFormat::Keycloak => 5,
            // Line 4 reads; its relying party id is checked against the service's (below).
            ImportFormat::AuthentikWebAuthn => 3,
            _ => GOOD
                .iter()
                .find(|(f, _, _)| *f == format)
                .map_or(0, |(_, _, g)| g.len()),
        };
        assert_eq!(batch.entries.len(), good, "{file}");
        // No reason quotes a secret of the file.
        for secret in [
            "12345678901234567890",
            "GEZDGNBVGY3TQOJQ",
            "3132333435363738",
            "aebagbaf",
            "abcdefgh",
            "k3v9x2mq",
        ] {
            for p in &batch.problems {
                assert!(!p.reason.contains(secret), "{file}: {p}");
                assert!(!p.to_string().contains(secret), "{file}: {p}");
            }
        }
    }
}

#[test]
fn an_empty_or_headless_file_is_one_problem() {
    let empty = ImportBatch::parse(ImportFormat::Keycloak, "");
    assert_eq!(empty.problems.len(), 1);
    assert!(empty.problems[0].reason.contains("empty"));
    let wrong = ImportBatch::parse(ImportFormat::DjangoOtpTotp, "user,secret\nalice,abc\n");
    assert_eq!(wrong.problems.len(), 1);
    assert!(
        wrong.problems[0]
            .reason
            .contains("lacks the column(s) username, key, step, t0, digits, last_t")
    );
    let broken = ImportBatch::parse(ImportFormat::AutheliaCsv, "issuer,username\n\"open");
    assert_eq!(
        (broken.problems[0].line, broken.problems[0].reason.as_str()),
        (2, "not CSV: a quoted field is not closed")
    );
}

/// Every good fixture imports; a second run adds nothing; a dry run writes nothing.
#[tokio::test]
async fn imports_are_written_once_and_a_second_run_adds_nothing() {
    for (format, file, expected) in GOOD {
        let (mfa, _clock, sink) = with_webauthn();
        let batch = parse(format, file);
        let dry = mfa
            .import_batch(
                &batch,
                ImportOptions {
                    dry_run: true,
                    skip_bad: false,
                },
                |_, _| {},
            )
            .await
            .unwrap();
        assert!(!dry.written);
        assert!(dry.results.iter().all(|r| r.status == ImportStatus::WouldAdd), "{file}");
        for (_, who, _) in expected {
            assert!(
                mfa.list_devices(&user(who)).await.unwrap().is_empty(),
                "{file}: dry run wrote"
            );
        }
        let mut calls = Vec::new();
        let report = mfa
            .import_batch(&batch, ImportOptions::default(), |done, total| {
                calls.push((done, total))
            })
            .await
            .unwrap();
        assert!(
            report.written && report.problems.is_empty(),
            "{file}: {:?}",
            report.problems
        );
        assert_eq!(report.results.len(), expected.len(), "{file}");
        assert!(
            report
                .results
                .iter()
                .all(|r| matches!(r.status, ImportStatus::Added(_))),
            "{file}"
        );
        assert_eq!(
            calls.last(),
            Some(&(expected.len(), expected.len())),
            "{file}: progress"
        );
        // Every device is confirmed, of the expected kind, and audited as an enrollment.
        let mut kinds = Vec::new();
        for r in &report.results {
            let devices = mfa.list_devices(&r.user).await.unwrap();
            let ImportStatus::Added(id) = r.status else {
                unreachable!()
            };
            let device = devices.iter().find(|d| d.id == id).unwrap();
            assert!(device.confirmed, "{file}");
            assert_eq!(device.kind, r.kind);
            kinds.push(r.kind);
        }
        let enrolled = sink
            .events()
            .into_iter()
            .filter(|e| e.kind == AuditKind::Enrolled)
            .count();
        assert_eq!(enrolled, expected.len(), "{file}: one Enrolled event per import");

        let again = mfa
            .import_batch(&batch, ImportOptions::default(), |_, _| {})
            .await
            .unwrap();
        assert!(again.problems.is_empty(), "{file}: {:?}", again.problems);
        for (first, second) in report.results.iter().zip(&again.results) {
            let ImportStatus::Added(id) = first.status else {
                unreachable!()
            };
            assert_eq!(second.status, ImportStatus::AlreadyPresent(id), "{file}");
        }
        let counts = again.counts();
        assert!(counts.iter().all(|(_, c)| c.added == 0), "{file}: {counts:?}");
    }
}

/// A batch with a bad line writes nothing, unless told to skip bad lines.
#[tokio::test]
async fn a_bad_line_stops_the_batch_unless_skipped() {
    let (mfa, _clock, _) = with_webauthn();
    let batch = parse(ImportFormat::Keycloak, "keycloak-bad.csv");
    let refused = mfa
        .import_batch(&batch, ImportOptions::default(), |_, _| {})
        .await
        .unwrap();
    assert!(!refused.written);
    assert!(refused.results.is_empty());
    assert_eq!(refused.problems.len(), 13);
    for who in ["alice", "bob", "carol", "dave"] {
        assert!(mfa.list_devices(&user(who)).await.unwrap().is_empty(), "{who}");
    }
    let skipped = mfa
        .import_batch(
            &batch,
            ImportOptions {
                dry_run: false,
                skip_bad: true,
            },
            |_, _| {},
        )
        .await
        .unwrap();
    assert!(skipped.written);
    assert_eq!(skipped.results.len(), 5);
    assert_eq!(skipped.problems.len(), 13);
    assert_eq!(mfa.list_devices(&user("alice")).await.unwrap().len(), 2);
}

/// The store-level checks: a credential another user has, a different backup-code set, and a
/// relying party id that is not ours are problems of their lines, found before anything is written.
#[tokio::test]
async fn store_checks_find_conflicts_before_writing() {
    let (mfa, _clock, _) = with_webauthn();
    // bob holds alice's credential already; dave has his own backup codes.
    let keycloak = parse(ImportFormat::Keycloak, "keycloak.csv");
    let mut theirs = keycloak.clone();
    theirs.entries.retain(|e| e.line == 5);
    theirs.entries[0].user = user("bob");
    mfa.import_batch(&theirs, ImportOptions::default(), |_, _| {})
        .await
        .unwrap();
    mfa.generate_backup_codes(&user("alice"), None).await.unwrap();

    let report = mfa
        .import_batch(&keycloak, ImportOptions::default(), |_, _| {})
        .await
        .unwrap();
    assert!(!report.written);
    assert_eq!(report.problems.len(), 2);
    assert_eq!(report.problems[0].line, 5);
    assert_eq!(report.problems[0].reason, MisuseError::CredentialTaken.to_string());
    // Alice's Keycloak recovery codes meet the set she has here: not replaced.
    assert_eq!(report.problems[1].line, 8);
    assert_eq!(report.problems[1].reason, MisuseError::BackupCodesPresent.to_string());
    assert!(
        mfa.list_devices(&user("carol")).await.unwrap().is_empty(),
        "nothing written"
    );

    let statics = parse(ImportFormat::DjangoOtpStatic, "django-otp-static.csv");
    let report = mfa
        .import_batch(&statics, ImportOptions::default(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.problems.len(), 1);
    assert_eq!(
        (report.problems[0].line, report.problems[0].reason.as_str()),
        (2, "the user already has a different set of backup codes")
    );

    let authentik = ImportBatch::parse(ImportFormat::AuthentikWebAuthn, &fixture("authentik-webauthn-bad.csv"));
    let report = mfa
        .import_batch(
            &authentik,
            ImportOptions {
                dry_run: true,
                skip_bad: true,
            },
            |_, _| {},
        )
        .await
        .unwrap();
    let rp = report.problems.iter().find(|p| p.line == 4).unwrap();
    assert!(rp.reason.contains("another relying party id"), "{rp}");
}

/// Imported TOTP secrets give the source's codes: the RFC 6238 vectors where the fixture holds an
/// RFC seed, and the service accepts the current code computed by `totp-lite`.
#[tokio::test]
async fn imported_totp_secrets_give_the_sources_codes() {
    // RFC 6238 Appendix B, 8 digits, at T = 59 and 1111111109, per seed length.
    let rfc = |len: usize| match len {
        20 => ["94287082", "07081804"],
        32 => ["46119246", "68084774"],
        _ => ["90693936", "25091201"],
    };
    for (format, file, _) in GOOD {
        let batch = parse(format, file);
        for entry in &batch.entries {
            let ImportItem::Totp(import) = &entry.item else {
                continue;
            };
            if import.params.digits() != 8 || import.params.is_counter_based() {
                continue;
            }
            let want = rfc(import.secret.expose_secret().len());
            for (t, code) in [59, 1_111_111_109].into_iter().zip(want) {
                let got = code_at(&import.secret, &import.params, UnixTime::from_secs(t));
                assert_eq!(got.expose_secret(), code, "{file} line {}", entry.line);
            }
        }
        // Imported, they verify with the reference implementation's current code.
        let (mfa, clock, _) = setup();
        let report = mfa
            .import_batch(&batch, ImportOptions::default(), |_, _| {})
            .await
            .unwrap();
        for (entry, result) in batch.entries.iter().zip(&report.results) {
            let ImportItem::Totp(import) = &entry.item else {
                continue;
            };
            if import.params.is_counter_based() {
                continue; // `hotp_imports_carry_their_counters`
            }
            let now = clock.now().as_secs();
            let secret = import.secret.expose_secret();
            let (digits, period) = (import.params.digits(), import.params.period());
            let code = match import.params.algorithm() {
                multifactor::totp::Algorithm::Sha1 => {
                    totp_lite::totp_custom::<totp_lite::Sha1>(period, digits, secret, now)
                }
                multifactor::totp::Algorithm::Sha256 => {
                    totp_lite::totp_custom::<totp_lite::Sha256>(period, digits, secret, now)
                }
                multifactor::totp::Algorithm::Sha512 => {
                    totp_lite::totp_custom::<totp_lite::Sha512>(period, digits, secret, now)
                }
            };
            let outcome = mfa.verify_totp(&result.user, &code).await.unwrap();
            assert!(outcome.is_accepted(), "{file} line {}: {outcome:?}", entry.line);
            clock.advance(period * 3);
        }
    }
}

/// The same codes from oathtool (OATH Toolkit), the reference most administrators have at hand.
/// It must be installed under `CI=true` (`.ci/run` installs it); elsewhere its absence is said.
#[test]
fn oathtool_agrees_with_imported_secrets() {
    let Ok(probe) = Command::new("oathtool").arg("--version").output() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "oathtool is not installed, and CI=true requires this check (apt-get install oathtool)"
        );
        eprintln!(
            "SKIPPED oathtool_agrees_with_imported_secrets: oathtool is not installed (apt-get install oathtool)"
        );
        return;
    };
    assert!(probe.status.success());
    let mut checked = 0;
    for (format, file, _) in GOOD {
        for entry in &parse(format, file).entries {
            let ImportItem::Totp(import) = &entry.item else {
                continue;
            };
            // Counter-based imports: `hotp_imports_carry_their_counters` and `tests/service/hotp.rs`.
            if import.params.is_counter_based() {
                continue;
            }
            let hex: String = import
                .secret
                .expose_secret()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let mode = match import.params.algorithm() {
                multifactor::totp::Algorithm::Sha1 => "sha1",
                multifactor::totp::Algorithm::Sha256 => "sha256",
                multifactor::totp::Algorithm::Sha512 => "sha512",
            };
            for t in [59u64, 1_111_111_109, 2_000_000_000] {
                let out = Command::new("oathtool")
                    .arg(format!("--totp={mode}"))
                    .arg(format!("--digits={}", import.params.digits()))
                    .arg(format!("--time-step-size={}s", import.params.period()))
                    .arg(format!("--now=@{t}"))
                    .arg(&hex)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                let theirs = String::from_utf8(out.stdout).unwrap();
                let ours = code_at(&import.secret, &import.params, UnixTime::from_secs(t));
                assert_eq!(theirs.trim(), ours.expose_secret(), "{file} line {} T={t}", entry.line);
                checked += 1;
            }
        }
    }
    assert!(checked >= 45, "{checked}");
}

/// Imported static tokens are a backup-code set: typed as before (any case), each works once.
#[tokio::test]
async fn imported_static_tokens_work_once_each() {
    let (mfa, _clock, _) = setup();
    let batch = parse(ImportFormat::DjangoOtpStatic, "django-otp-static.csv");
    mfa.import_batch(&batch, ImportOptions::default(), |_, _| {})
        .await
        .unwrap();
    let alice = user("alice");
    let devices = mfa.list_devices(&alice).await.unwrap();
    assert_eq!(devices[0].remaining_backup_codes, Some(3));
    assert!(mfa.verify_backup_code(&alice, "AEBAGBAF").await.unwrap().is_accepted());
    assert_eq!(
        mfa.verify_backup_code(&alice, "aebagbaf").await.unwrap(),
        Outcome::Rejected
    );
    assert!(mfa.verify_backup_code(&alice, "onxw-2zlv").await.unwrap().is_accepted());
    // authentik's mixed-case tokens.
    let bob = user("bob");
    assert!(
        mfa.verify_backup_code(&bob, "k3vq9zsr0btw")
            .await
            .unwrap()
            .is_accepted()
    );
    assert!(
        mfa.verify_backup_code(&bob, "Xy7pQ2rT9mNb")
            .await
            .unwrap()
            .is_accepted()
    );
    assert_eq!(
        mfa.verify_backup_code(&bob, "Xy7pQ2rT9mNb").await.unwrap(),
        Outcome::Rejected
    );
    // The stored set holds hashes, not the tokens.
    let stored = format!("{:?}", mfa.store().list_devices(&bob).await.unwrap());
    assert!(!stored.to_lowercase().contains("k3vq9zsr0btw"));
}

mod generated_meanwhile {
    //! A store in which the user generates a backup-code set of their own right after the
    //! import looked (the first time a set is written): a concurrent regeneration.
    use multifactor::store::DeviceRecord;
    use multifactor::{DeviceStore, MemoryStore, StoreError};
    use multifactor_kit::forward;

    #[derive(Debug, Default)]
    pub struct GeneratedMeanwhile {
        pub inner: MemoryStore,
        pub users_set: std::sync::Mutex<Option<DeviceRecord>>,
    }

    impl GeneratedMeanwhile {
        async fn users_set_first(&self) -> Result<(), StoreError> {
            let set = self
                .users_set
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(set) = set {
                self.inner.replace_backup_codes(set).await?;
            }
            Ok(())
        }
    }

    impl DeviceStore for GeneratedMeanwhile {
        forward!(
            verification_state,
            delete_device_unless_last,
            issue_sent_code,
            key_check,
            find_credential,
            record_webauthn_use,
            settle_attempt,
            insert_device,
            device,
            list_devices,
            rename_device,
            delete_device,
            delete_user_devices,
            delete_unconfirmed_totp,
            throttle,
            swap_throttle,
            clear_throttle
        );

        async fn replace_backup_codes(&self, set: DeviceRecord) -> Result<(), StoreError> {
            self.users_set_first().await?;
            self.inner.replace_backup_codes(set).await
        }

        async fn insert_first_backup_codes(&self, set: DeviceRecord) -> Result<bool, StoreError> {
            self.users_set_first().await?;
            self.inner.insert_first_backup_codes(set).await
        }
    }

    forward!(CeremonyStore, BrowserStore, AdminStore, EnrollmentStore for GeneratedMeanwhile);
}

/// An import of backup codes checks that the user has no set, then writes: a set the user
/// generated in between is never replaced (their freshly printed codes keep working), and the
/// import says the user has a set.
#[tokio::test]
async fn an_import_never_replaces_a_set_generated_meanwhile() {
    let alice = user("alice");
    let keys = keyring("k1", 1);
    // The user's own set, made by the service with the same key, so that its codes verify.
    let maker = multifactor::Mfa::new(
        multifactor::MemoryStore::new(),
        keys.clone(),
        MfaConfig::new("ACME").unwrap(),
    )
    .unwrap();
    let own = maker.generate_backup_codes(&alice, None).await.unwrap();
    let record = maker.store().list_devices(&alice).await.unwrap().remove(0);
    let store = generated_meanwhile::GeneratedMeanwhile::default();
    *store.users_set.lock().unwrap() = Some(record);
    let mfa = multifactor::Mfa::new(store, keys, MfaConfig::new("ACME").unwrap()).unwrap();
    let imported = multifactor::import::ImportedCodes::new(["aaaa-bbbb-cccc", "dddd-eeee-ffff"].map(str::to_owned));
    let result = mfa.import_backup_codes(&alice, &imported, None).await;
    assert!(
        matches!(result, Err(multifactor::Error::Misuse(MisuseError::BackupCodesPresent))),
        "{result:?}"
    );
    assert!(
        mfa.verify_backup_code(&alice, own.codes[0].expose_secret())
            .await
            .unwrap()
            .is_accepted(),
        "the user's own set was replaced by the import"
    );
}

/// Every counter-based import carries its counter: the code of the counter the source would
/// use next is accepted, the one before it is spent, and oathtool agrees on the codes.
#[tokio::test]
async fn hotp_imports_carry_their_counters() {
    use multifactor::totp::code_for_step;
    let mut checked = 0;
    for (format, file, _) in GOOD {
        for entry in &parse(format, file).entries {
            let ImportItem::Totp(import) = &entry.item else {
                continue;
            };
            if !import.params.is_counter_based() {
                continue;
            }
            let (mfa, _clock, _) = setup();
            let who = entry.user.clone();
            mfa.import_parsed_totp(&who, import, None).await.unwrap();
            let next = import.last_step.map_or(0, |c| c + 1);
            let code = |c: u64| {
                code_for_step(&import.secret, &import.params, c)
                    .expose_secret()
                    .to_owned()
            };
            if next > 0 {
                assert_eq!(
                    mfa.verify_totp(&who, &code(next - 1)).await.unwrap(),
                    Outcome::Rejected,
                    "{file} line {}: the source's last code",
                    entry.line
                );
            }
            assert!(
                mfa.verify_totp(&who, &code(next)).await.unwrap().is_accepted(),
                "{file} line {}: the next code",
                entry.line
            );
            checked += 1;
        }
    }
    // otpauth (7), Google Authenticator (43: 42 was the app's last code), django-otp (3
    // and 0), Keycloak (5).
    assert_eq!(checked, 5);
    let next = |format, file: &str| -> Vec<Option<u64>> {
        parse(format, file)
            .entries
            .iter()
            .filter_map(|e| match &e.item {
                ImportItem::Totp(i) if i.params.is_counter_based() => Some(i.last_step.map(|c| c + 1)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(next(ImportFormat::Otpauth, "otpauth.txt"), [Some(7)]);
    assert_eq!(
        next(ImportFormat::GoogleAuthenticator, "google-authenticator.txt"),
        [Some(43)]
    );
    assert_eq!(
        next(ImportFormat::DjangoOtpHotp, "django-otp-hotp.csv"),
        [Some(3), None]
    );
    assert_eq!(next(ImportFormat::Keycloak, "keycloak.csv"), [Some(5)]);
}

/// Keycloak's recovery codes, imported from their SHA-512 digests: the codes the user printed
/// work once each (case, spaces and hyphens ignored, nothing else folded), a second import
/// finds them present, the store holds neither code nor digest, and a new set is an ordinary
/// one.
#[tokio::test]
async fn keycloak_recovery_codes_work_from_their_digests() {
    let (mfa, _clock, _) = setup();
    let batch = parse(ImportFormat::Keycloak, "keycloak.csv");
    let report = mfa
        .import_batch(&batch, ImportOptions::default(), |_, _| {})
        .await
        .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let alice = user("alice");
    let set = mfa
        .list_devices(&alice)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.kind == DeviceKind::BackupCodes)
        .unwrap();
    assert_eq!(set.remaining_backup_codes, Some(3));
    // No digest or code in the record.
    let stored = format!("{:?}", mfa.store().device(&alice, set.id).await.unwrap().unwrap());
    assert!(
        !stored.contains("ABCDEFGHJKLM") && !stored.contains("p+DMhIoz"),
        "{stored}"
    );
    // A look-alike is another code: refused, not folded into the right one.
    assert_eq!(
        mfa.verify_backup_code(&alice, "ABCDEFGHJK1M").await.unwrap(),
        Outcome::Rejected
    );
    assert!(
        mfa.verify_backup_code(&alice, "abcd-efgh-jklm")
            .await
            .unwrap()
            .is_accepted()
    );
    assert_eq!(
        mfa.verify_backup_code(&alice, "ABCDEFGHJKLM").await.unwrap(),
        Outcome::Rejected
    );
    assert!(
        mfa.verify_backup_code(&alice, "n4pq 7rst uvwx")
            .await
            .unwrap()
            .is_accepted()
    );
    assert!(matches!(
        mfa.verify_backup_code(&alice, "ABCDEFGHJKL").await,
        Err(multifactor::Error::Input(_))
    ));
    // Imported again: present, nothing added.
    let again = mfa
        .import_batch(&batch, ImportOptions::default(), |_, _| {})
        .await
        .unwrap();
    assert!(
        again
            .results
            .iter()
            .all(|r| matches!(r.status, ImportStatus::AlreadyPresent(_)) || r.user != alice),
        "{:?}",
        again.results
    );
    // A new set is ours: 13-character codes, the Keycloak ones gone.
    let fresh = mfa.generate_backup_codes(&alice, None).await.unwrap();
    assert!(
        mfa.verify_backup_code(&alice, fresh.codes[0].expose_secret())
            .await
            .unwrap()
            .is_accepted()
    );
    assert!(matches!(
        mfa.verify_backup_code(&alice, "Z9Y8X7W6V5U4").await,
        Err(multifactor::Error::Input(_))
    ));
}

/// The check prepares each entry once (sealed, hashed, named) and the write is one store call
/// after the remembered browsers' revocation: for the Kratos fixture (alice's backup codes,
/// TOTP secret and security key, bob's passkey) a dry run reads the store six times and writes
/// nothing, and the import adds one revocation and one write per device.
#[tokio::test]
async fn each_entry_is_checked_once_and_written_in_one_call() {
    use std::sync::Arc;

    use multifactor::conformance::CountingStore;

    let mut config = MfaConfig::new("ACME").unwrap();
    let rp =
        multifactor::webauthn::RelyingParty::new("auth.example.com", "ACME", &["https://auth.example.com"]).unwrap();
    config.webauthn = Some(multifactor::webauthn::WebAuthnConfig::new(rp));
    let mfa = multifactor::Mfa::new(
        CountingStore::new(Arc::new(multifactor::MemoryStore::new())),
        keyring("k1", 1),
        config,
    )
    .unwrap();
    let batch = parse(ImportFormat::Kratos, "kratos.jsonl");
    assert_eq!(batch.entries.len(), 4);
    let tally = |calls: Vec<&'static str>| {
        let mut counts = std::collections::BTreeMap::new();
        for call in calls {
            *counts.entry(call).or_insert(0) += 1;
        }
        counts.into_iter().collect::<Vec<_>>()
    };
    let dry = ImportOptions {
        dry_run: true,
        skip_bad: false,
    };
    let report = mfa.import_batch(&batch, dry, |_, _| {}).await.unwrap();
    assert!(report.problems.is_empty() && report.results.len() == 4);
    // One read of the user's devices per entry (the TOTP secrets opened once), and the
    // credential's owner for each credential.
    assert_eq!(
        tally(mfa.store().take_calls()),
        [("find_credential", 2), ("list_devices", 4)]
    );
    let report = mfa
        .import_batch(&batch, ImportOptions::default(), |_, _| {})
        .await
        .unwrap();
    assert!(
        report.written
            && report
                .results
                .iter()
                .all(|r| matches!(r.status, ImportStatus::Added(_)))
    );
    assert_eq!(
        tally(mfa.store().take_calls()),
        [
            ("delete_user_remembered_browsers", 4),
            ("find_credential", 2),
            ("insert_device", 3),
            ("insert_first_backup_codes", 1),
            ("list_devices", 4),
        ]
    );
    // A second run finds everything present in its check, and writes nothing.
    let again = mfa
        .import_batch(&batch, ImportOptions::default(), |_, _| {})
        .await
        .unwrap();
    assert!(
        again
            .results
            .iter()
            .all(|r| matches!(r.status, ImportStatus::AlreadyPresent(_)))
    );
    assert_eq!(
        tally(mfa.store().take_calls()),
        [("find_credential", 2), ("list_devices", 2)]
    );
}

/// The per-user limits are checked with the devices the batch itself adds: a user with more
/// TOTP secrets in the file than the limit allows is a problem found before anything is
/// written (or, with `skip_bad`, the secrets past the limit are left out).
#[tokio::test]
async fn a_batch_over_a_users_limit_is_refused_before_writing() {
    let (mfa, _clock, _sink) = with_webauthn();
    let max = multifactor::totp::MAX_DEVICES;
    let text: String = (0..max + 2)
        .map(|i| {
            let secret = base32::encode(base32::Alphabet::Rfc4648 { padding: false }, &[i as u8 + 1; 20]);
            format!("carol otpauth://totp/ACME:carol?secret={secret}&issuer=ACME\n")
        })
        .collect();
    let batch = ImportBatch::parse(ImportFormat::Otpauth, &text);
    assert!(batch.is_clean(), "{:?}", batch.problems);
    let report = mfa
        .import_batch(&batch, ImportOptions::default(), |_, _| {})
        .await
        .unwrap();
    assert!(!report.written);
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    assert!(
        report
            .problems
            .iter()
            .all(|p| p.reason.contains(&MisuseError::TooManyTotpDevices.to_string()))
    );
    assert!(mfa.store().list_devices(&user("carol")).await.unwrap().is_empty());
    let skipping = ImportOptions {
        dry_run: false,
        skip_bad: true,
    };
    let report = mfa.import_batch(&batch, skipping, |_, _| {}).await.unwrap();
    assert_eq!(report.results.len(), max);
    assert_eq!(mfa.store().list_devices(&user("carol")).await.unwrap().len(), max);
}
