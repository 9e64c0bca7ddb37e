//! No plaintext secret reaches `Debug`, `Display`, errors, audit events or a store's rows.
//!
//! One WebAuthn-free flow (enroll and confirm TOTP, backup codes, accepted and failed codes,
//! import, remember-this-browser, rename, delete, reset) runs on `MemoryStore` and on a
//! `SqliteStore` file. Everything it can observe is collected into a haystack: the `Debug` and
//! `Display` of every returned value and error, every audit event, every stored record, the
//! sealed blobs, the `Debug` of the service and its configuration, and (for SQLite) the raw
//! bytes of the database file and its WAL. Then no secret may be found in it: not the TOTP
//! secret (base32, hex, raw bytes or a `Debug` byte list), not the key URI, not a backup code
//! (grouped or not, either case), not an accepted TOTP code, not the remember-this-browser token
//! or its secret half, not the sealing key, not the pepper.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::{Debug, Display};
use std::path::{Path, PathBuf};

use multifactor::backup_codes::Pepper;
use multifactor::store::DeviceData;
use multifactor::totp::TotpParams;
use multifactor::totp::{code_at, decode_base32_secret};
use multifactor::{
    Factor, FirstFactor, InsecureSeededRng, KeyId, Keyring, ManualClock, MemoryStore, Mfa, MfaConfig, Outcome,
    RecordingSink, SealingKey, SqliteStore, Store, UnixTime, UserId,
};
use multifactor_kit::service::START;

/// The sealing key: distinctive bytes, so that a printed key would be found.
const SEALING_KEY: [u8; 32] = [
    0xc3, 0x5a, 0x91, 0x07, 0xee, 0x42, 0x18, 0xb6, 0x7d, 0x2f, 0x64, 0xa9, 0x0b, 0xd8, 0x33, 0xf1, 0x56, 0x8c, 0x29,
    0xe4, 0x9f, 0x10, 0x7a, 0xcb, 0x45, 0x3e, 0xb2, 0x6d, 0x01, 0xf7, 0x88, 0x5c,
];
const PEPPER: &[u8] = b"pepper:do-not-print-me-4f1c9a";
/// A secret the test imports (besides the one the service generates).
const IMPORTED_B32: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ";

type TestMfa<S> = Mfa<S, ManualClock, InsecureSeededRng>;

/// Everything observable, as text and as bytes.
#[derive(Default)]
struct Haystack {
    texts: Vec<(String, String)>,
    blobs: Vec<(String, Vec<u8>)>,
}

impl Haystack {
    fn debug<T: Debug>(&mut self, what: &str, value: &T) {
        self.texts.push((format!("{what} (Debug)"), format!("{value:?}")));
        self.texts
            .push((format!("{what} (Debug, pretty)"), format!("{value:#?}")));
    }

    fn display<T: Debug + Display>(&mut self, what: &str, value: &T) {
        self.debug(what, value);
        self.texts.push((format!("{what} (Display)"), value.to_string()));
    }

    /// A result: its `Debug`, and the `Display` of its error and of the error's sources.
    fn result<T: Debug, E: std::error::Error>(&mut self, what: &str, result: &Result<T, E>) {
        self.debug(what, result);
        if let Err(e) = result {
            self.texts.push((format!("{what} (error Display)"), e.to_string()));
            let mut source = e.source();
            while let Some(s) = source {
                self.texts.push((format!("{what} (error source)"), s.to_string()));
                source = s.source();
            }
        }
    }

    fn contains_text(&self, needle: &str) -> bool {
        self.texts.iter().any(|(_, t)| t.contains(needle))
    }
}

/// One secret, in the forms it must not appear in.
struct Secret {
    label: String,
    texts: Vec<String>,
    /// Decimal codes: matched only as a whole number (not inside a longer run of digits).
    digits: Option<String>,
    bytes: Option<Vec<u8>>,
}

#[derive(Default)]
struct Secrets(Vec<Secret>);

impl Secrets {
    fn text(&mut self, label: &str, forms: impl IntoIterator<Item = String>) {
        let texts: Vec<String> = forms.into_iter().collect();
        assert!(texts.iter().all(|t| t.len() >= 6), "{label}: too short to search for");
        self.0.push(Secret {
            label: label.to_owned(),
            texts,
            digits: None,
            bytes: None,
        });
    }

    fn raw(&mut self, label: &str, bytes: &[u8]) {
        assert!(bytes.len() >= 16, "{label}: too short to search for");
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.0.push(Secret {
            label: label.to_owned(),
            texts: vec![
                hex.clone(),
                hex.to_uppercase(),
                format!("{bytes:?}"),
                format!("{bytes:#?}"),
            ],
            digits: None,
            bytes: Some(bytes.to_vec()),
        });
    }

    fn code(&mut self, label: &str, code: &str) {
        assert!(
            code.len() >= 6 && code.bytes().all(|b| b.is_ascii_digit()),
            "{label}: {code:?}"
        );
        self.0.push(Secret {
            label: label.to_owned(),
            texts: Vec::new(),
            digits: Some(code.to_owned()),
            bytes: None,
        });
    }

    fn backup_code(&mut self, label: &str, grouped: &str) {
        let plain = grouped.replace('-', "");
        self.text(
            label,
            [
                grouped.to_owned(),
                grouped.to_uppercase(),
                plain.clone(),
                plain.to_uppercase(),
            ],
        );
    }
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// `code` as a whole number in `hay`: not preceded or followed by another digit.
fn find_number(hay: &[u8], code: &[u8]) -> bool {
    hay.windows(code.len()).enumerate().any(|(i, w)| {
        w == code
            && (i == 0 || !hay[i - 1].is_ascii_digit())
            && hay.get(i + code.len()).is_none_or(|b| !b.is_ascii_digit())
    })
}

/// Every (secret, place) where a secret was found.
fn leaks(secrets: &Secrets, hay: &Haystack) -> Vec<String> {
    let places = hay
        .texts
        .iter()
        .map(|(w, t)| (w.as_str(), t.as_bytes()))
        .chain(hay.blobs.iter().map(|(w, b)| (w.as_str(), b.as_slice())));
    let mut found = Vec::new();
    for (place, bytes) in places {
        for secret in &secrets.0 {
            let hit = secret.texts.iter().any(|t| find(bytes, t.as_bytes()))
                || secret.digits.as_ref().is_some_and(|d| find_number(bytes, d.as_bytes()))
                || secret.bytes.as_ref().is_some_and(|b| find(bytes, b));
            if hit {
                found.push(format!("{} in {place}", secret.label));
            }
        }
    }
    found
}

fn service<S: Store>(store: S, clock: &ManualClock, sink: &RecordingSink) -> TestMfa<S> {
    let mut config = MfaConfig::new("ACME").unwrap();
    config.pepper = Some(Pepper::new(PEPPER.to_vec()));
    let keys = Keyring::new(SealingKey::new(KeyId::new("key-2026").unwrap(), SEALING_KEY));
    Mfa::new(store, keys, config)
        .unwrap()
        .with_clock(clock.clone())
        .with_rng(InsecureSeededRng::new(0x5eed))
        .with_audit(sink.clone())
}

fn file_bytes(path: &Path) -> Vec<(String, Vec<u8>)> {
    ["", "-wal"]
        .into_iter()
        .filter_map(|suffix| {
            let name = format!("{}{suffix}", path.display());
            std::fs::read(&name).ok().map(|b| (name, b))
        })
        .collect()
}

/// Everything the store holds for `user`, and the service itself.
async fn snapshot<S: Store + Debug>(
    mfa: &TestMfa<S>,
    user: &UserId,
    hay: &mut Haystack,
    db: Option<&Path>,
    when: &str,
) {
    for record in mfa.store().list_devices(user).await.unwrap() {
        hay.debug(&format!("{when}: device record"), &record);
        if let DeviceData::Totp(t) = &record.data {
            hay.debug(&format!("{when}: sealed secret"), &t.sealed_secret);
            hay.blobs
                .push((format!("{when}: sealed blob bytes"), t.sealed_secret.to_bytes()));
        }
    }
    for record in mfa.store().list_totp_devices(None, 1000).await.unwrap() {
        hay.debug(&format!("{when}: TOTP device (all users)"), &record);
    }
    for record in mfa.store().list_remembered_browsers(user).await.unwrap() {
        hay.debug(&format!("{when}: remembered browser record"), &record);
    }
    hay.debug(&format!("{when}: list_devices"), &mfa.list_devices(user).await.unwrap());
    hay.debug(
        &format!("{when}: list_remembered_browsers"),
        &mfa.list_remembered_browsers(user).await,
    );
    for factor in Factor::ALL {
        hay.debug(
            &format!("{when}: throttle {factor:?}"),
            &mfa.throttle_status(user, factor).await,
        );
        hay.debug(
            &format!("{when}: throttle row {factor:?}"),
            &mfa.store().throttle(user, factor.into()).await,
        );
    }
    hay.debug(
        &format!("{when}: assurance"),
        &mfa.assurance(user, &FirstFactor::Password).await,
    );
    hay.debug(&format!("{when}: Mfa"), mfa);
    hay.debug(&format!("{when}: config"), mfa.config());
    if let Some(path) = db {
        for (name, bytes) in file_bytes(path) {
            hay.blobs.push((format!("{when}: {name}"), bytes));
        }
    }
}

/// A code for the current step that is not `right`.
fn wrong_code(right: &str) -> String {
    (0..1_000_000u64)
        .map(|n| format!("{:06}", (n * 7919 + 123_457) % 1_000_000))
        .find(|c| c != right)
        .unwrap()
}

/// The flow; returns the secrets it handled and everything it observed.
async fn flow<S: Store + Debug>(
    mfa: &TestMfa<S>,
    clock: &ManualClock,
    sink: &RecordingSink,
    db: Option<&Path>,
) -> (Secrets, Haystack) {
    let mut secrets = Secrets::default();
    let mut hay = Haystack::default();
    let alice = UserId::new("alice-7f3c").unwrap();
    secrets.raw("sealing key", &SEALING_KEY);
    secrets.raw("pepper", PEPPER);
    secrets.text("pepper text", [String::from_utf8(PEPPER.to_vec()).unwrap()]);
    hay.debug("Mfa before anything", mfa);

    // TOTP enrollment and confirmation, with a wrong first code before the right one.
    let enrollment = mfa
        .enroll_totp(&alice, "alice@example.com", Some("Phone"))
        .await
        .unwrap();
    hay.debug("enrollment", &enrollment);
    hay.debug("enrollment.device", &enrollment.device);
    hay.texts
        .push(("enrollment.device (Display)".into(), enrollment.device.to_string()));
    let b32 = enrollment.secret_base32.expose_secret().to_owned();
    let raw = decode_base32_secret(&b32).unwrap();
    secrets.text("TOTP secret (base32)", [b32.clone(), b32.to_lowercase()]);
    secrets.raw("TOTP secret (raw)", raw.expose_secret());
    secrets.text("key URI", [enrollment.key_uri.expose_secret().to_owned()]);
    #[cfg(feature = "qr")]
    {
        let svg = enrollment.qr_svg().unwrap();
        hay.debug("QR SVG", &svg);
        secrets.text("QR SVG", [svg.expose_secret().to_owned()]);
    }
    let first = code_at(&raw, &TotpParams::default(), clock.now());
    let first = first.expose_secret().to_owned();
    let rejected = mfa.confirm_totp(&alice, enrollment.device, &wrong_code(&first)).await;
    assert!(matches!(rejected, Ok(Outcome::Rejected)), "{rejected:?}");
    hay.result("confirm_totp (wrong code)", &rejected);
    let confirmed = mfa.confirm_totp(&alice, enrollment.device, &first).await;
    assert!(matches!(confirmed, Ok(Outcome::Accepted(_))), "{confirmed:?}");
    hay.result("confirm_totp", &confirmed);
    secrets.code("TOTP code accepted at confirmation", &first);
    let replay = mfa.verify_totp(&alice, &first).await;
    assert!(matches!(replay, Ok(Outcome::Rejected)), "{replay:?}");
    hay.result("verify_totp (replay)", &replay);

    // Backup codes.
    let set = mfa.generate_backup_codes(&alice, None).await.unwrap();
    hay.debug("backup code set", &set);
    for (i, code) in set.codes.iter().enumerate() {
        hay.debug("backup code", code);
        secrets.backup_code(&format!("backup code #{i}"), code.expose_secret());
    }
    let used = set.codes[0].expose_secret();
    let accepted = mfa.verify_backup_code(&alice, used).await;
    assert!(matches!(accepted, Ok(Outcome::Accepted(_))), "{accepted:?}");
    hay.result("verify_backup_code", &accepted);
    let replay = mfa.verify_backup_code(&alice, used).await;
    assert!(matches!(replay, Ok(Outcome::Rejected)), "{replay:?}");
    hay.result("verify_backup_code (replay)", &replay);
    // The second code as a user might type it: upper case, no hyphens.
    let typed = set.codes[1].expose_secret().replace('-', "").to_uppercase();
    let accepted = mfa.verify_backup_code(&alice, &typed).await;
    assert!(matches!(accepted, Ok(Outcome::Accepted(_))), "{accepted:?}");
    hay.result("verify_backup_code (typed)", &accepted);

    // Codes sent by email and SMS: the destinations are personal data, the codes secrets.
    let address = "ada.lovelace@analytical.example";
    let phone = "+442079460958";
    secrets.text("email address", [address.to_owned(), "lovelace@analytical".to_owned()]);
    secrets.text("phone number", [phone.to_owned(), "2079460958".to_owned()]);
    let sent = mfa
        .enroll_sent_code(&alice, multifactor::sent_code::Channel::Email, address, None)
        .await
        .unwrap();
    hay.debug("sent code", &sent);
    secrets.code("sent code (enrollment)", sent.code.expose_secret());
    let r = mfa
        .confirm_sent_code(&alice, sent.device, &wrong_code(sent.code.expose_secret()))
        .await;
    hay.result("confirm_sent_code (wrong)", &r);
    let r = mfa
        .confirm_sent_code(&alice, sent.device, sent.code.expose_secret())
        .await;
    assert!(matches!(r, Ok(Outcome::Accepted(_))), "{r:?}");
    hay.result("confirm_sent_code", &r);
    clock.advance(60);
    let next = mfa.send_code(&alice, sent.device).await.unwrap();
    secrets.code("sent code (sign-in)", next.code.expose_secret());
    let r = mfa.send_code(&alice, sent.device).await;
    hay.result("send_code (too soon)", &r);
    let r = mfa.verify_sent_code(&alice, next.code.expose_secret()).await;
    assert!(matches!(r, Ok(Outcome::Accepted(_))), "{r:?}");
    hay.result("verify_sent_code", &r);
    let r = mfa.verify_sent_code(&alice, next.code.expose_secret()).await;
    hay.result("verify_sent_code (replay)", &r);
    let r = mfa
        .enroll_sent_code(&alice, multifactor::sent_code::Channel::Email, address, None)
        .await;
    hay.result("enroll_sent_code (duplicate)", &r);
    hay.debug(
        "list_devices (with an address)",
        &mfa.list_devices(&alice).await.unwrap(),
    );
    mfa.delete_device(&alice, sent.device).await.unwrap();
    // An SMS enrollment left unconfirmed: its row stays until the reset.
    let sms = mfa
        .enroll_sent_code(&alice, multifactor::sent_code::Channel::Sms, "+44 20 7946 0958", None)
        .await
        .unwrap();
    hay.debug("sent code (SMS)", &sms);
    secrets.code("sent code (SMS)", sms.code.expose_secret());

    // A TOTP sign-in.
    clock.advance(30);
    let second = code_at(&raw, &TotpParams::default(), clock.now());
    let second = second.expose_secret().to_owned();
    let signed_in = mfa.verify_totp(&alice, &second).await;
    hay.result("verify_totp", &signed_in);
    let Ok(Outcome::Accepted(verified)) = signed_in else {
        panic!("{signed_in:?}")
    };
    secrets.code("TOTP code accepted at sign-in", &second);
    hay.debug("verified", &verified);

    // Failures: wrong codes (counted), and inputs that are secrets in the wrong place (format
    // errors, which must not repeat them).
    for i in 0..3 {
        let r = mfa.verify_totp(&alice, &wrong_code(&second)).await;
        assert!(matches!(r, Ok(Outcome::Rejected)), "{r:?}");
        hay.result(&format!("verify_totp (wrong #{i})"), &r);
    }
    let wrong_backup = "zzzz-zzzz-zzzzz";
    let r = mfa.verify_backup_code(&alice, wrong_backup).await;
    assert!(matches!(r, Ok(Outcome::Rejected)), "{r:?}");
    hay.result("verify_backup_code (wrong)", &r);
    for (what, input) in [
        ("verify_totp (the base32 secret)", b32.clone()),
        ("verify_totp (a backup code)", set.codes[2].expose_secret().to_owned()),
        (
            "verify_totp (the key URI)",
            enrollment.key_uri.expose_secret().to_owned(),
        ),
    ] {
        let r = mfa.verify_totp(&alice, &input).await;
        assert!(r.is_err(), "{what}: {r:?}");
        hay.result(what, &r);
    }
    for (what, input) in [
        ("verify_backup_code (a TOTP code)", second.clone()),
        ("verify_backup_code (the base32 secret)", b32.clone()),
        (
            "verify_backup_code (a backup code with a typo)",
            format!("{}!", set.codes[3].expose_secret()),
        ),
    ] {
        let r = mfa.verify_backup_code(&alice, &input).await;
        assert!(r.is_err(), "{what}: {r:?}");
        hay.result(what, &r);
    }
    let r = mfa
        .import_totp(&alice, &format!("http://totp/ACME:alice?secret={b32}"), None)
        .await;
    assert!(r.is_err(), "{r:?}");
    hay.result("import_totp (http URI with the secret)", &r);
    let r = mfa
        .import_totp(
            &alice,
            &format!("otpauth://totp/ACME:alice?secret={b32}&digits=9"),
            None,
        )
        .await;
    assert!(r.is_err(), "{r:?}");
    hay.result("import_totp (digits=9 with the secret)", &r);
    let r = mfa.import_totp(&alice, &format!("{b32}!"), None).await;
    assert!(r.is_err(), "{r:?}");
    hay.result("import_totp (the secret with a typo)", &r);

    // An imported secret.
    let imported_raw = decode_base32_secret(IMPORTED_B32).unwrap();
    secrets.text(
        "imported secret (base32)",
        [IMPORTED_B32.to_owned(), IMPORTED_B32.to_lowercase()],
    );
    secrets.raw("imported secret (raw)", imported_raw.expose_secret());
    let import_uri = format!("otpauth://totp/Other:alice?secret={IMPORTED_B32}&issuer=Other");
    secrets.text("imported key URI", [import_uri.clone()]);
    let imported = mfa.import_totp(&alice, &import_uri, None).await;
    hay.result("import_totp", &imported);
    let imported = imported.unwrap();

    // Remember this browser.
    let token = mfa.remember_browser(&verified).await.unwrap();
    hay.debug("remembered browser token", &token);
    let token_text = token.token.expose_secret().to_owned();
    let (_, token_secret) = token_text.split_once('.').unwrap();
    secrets.text("remembered browser token", [token_text.clone()]);
    secrets.text(
        "remembered browser secret half",
        [token_secret.to_owned(), token_secret.to_uppercase()],
    );
    let checked = mfa.check_remembered_browser(&alice, &token_text).await;
    assert!(matches!(checked, Ok(true)), "{checked:?}");
    hay.result("check_remembered_browser", &checked);
    let tampered = format!("{}0", &token_text[..token_text.len() - 1]);
    let checked = mfa.check_remembered_browser(&alice, &tampered).await;
    hay.result("check_remembered_browser (tampered)", &checked);
    snapshot(mfa, &alice, &mut hay, db, "with a remembered browser").await;
    let revoked = mfa.revoke_remembered_browser(&alice, token.id).await;
    hay.result("revoke_remembered_browser", &revoked);
    revoked.unwrap();
    let checked = mfa.check_remembered_browser(&alice, &token_text).await;
    assert!(matches!(checked, Ok(false)), "{checked:?}");
    hay.result("check_remembered_browser (revoked)", &checked);
    let r = mfa.revoke_remembered_browser(&alice, token.id).await;
    hay.result("revoke_remembered_browser (again)", &r);
    // A second token, revoked by a change of methods.
    let token2 = mfa.remember_browser(&verified).await.unwrap();
    let token2_text = token2.token.expose_secret().to_owned();
    secrets.text("second remembered browser token", [token2_text.clone()]);
    secrets.text(
        "second remembered browser secret half",
        [token2_text.split_once('.').unwrap().1.to_owned()],
    );
    hay.debug("second remembered browser token", &token2);
    snapshot(mfa, &alice, &mut hay, db, "with a second remembered browser").await;

    // Device management.
    let r = mfa.rename_device(&alice, enrollment.device, "Work phone").await;
    hay.result("rename_device", &r);
    let r = mfa.rename_device(&alice, enrollment.device, "bad\nname").await;
    hay.result("rename_device (bad name)", &r);
    let r = mfa.delete_device(&alice, set.device).await;
    hay.result("delete_device (backup codes)", &r);
    r.unwrap();
    let r = mfa.delete_device(&alice, set.device).await;
    hay.result("delete_device (again)", &r);
    let r = mfa.delete_device(&alice, imported).await;
    hay.result("delete_device (imported)", &r);
    let r = mfa.delete_device(&alice, enrollment.device).await;
    assert!(r.is_err(), "{r:?}");
    hay.result("delete_device (last method)", &r);
    let r = mfa.confirm_totp(&alice, enrollment.device, &second).await;
    hay.result("confirm_totp (already confirmed)", &r);
    let r = mfa.unlock(&alice, Factor::Totp).await;
    hay.result("unlock", &r);
    snapshot(mfa, &alice, &mut hay, db, "before the reset").await;
    let r = mfa.admin_reset_user(&alice).await;
    hay.result("admin_reset_user", &r);
    assert_eq!(r.unwrap(), 2, "the app and the unconfirmed phone number");
    snapshot(mfa, &alice, &mut hay, db, "after the reset").await;

    // The audit trail.
    let events = sink.events();
    assert!(events.len() >= 20, "only {} audit events", events.len());
    for event in &events {
        hay.display("audit event", event);
        hay.debug("audit kind", &event.kind);
    }
    (secrets, hay)
}

/// The haystack can fail the test: it holds user data, and a planted secret would be found.
fn sanity(secrets: &Secrets, hay: &Haystack) {
    assert!(secrets.0.len() >= 15, "only {} secrets", secrets.0.len());
    for needle in [
        "alice-7f3c",
        "REDACTED",
        "SealedSecret",
        "RememberedBrowserRecord",
        "Verified",
        "BackupCodes",
    ] {
        assert!(
            hay.contains_text(needle),
            "the haystack has no {needle:?}: the check could not fail"
        );
    }
    for secret in &secrets.0 {
        let planted = secret
            .texts
            .first()
            .cloned()
            .or_else(|| secret.digits.as_ref().map(|d| format!("code: {d}.")))
            .unwrap();
        let mut with_plant = Haystack::default();
        with_plant.texts.push(("planted".into(), format!("xx{planted}xx")));
        let expected = format!("{} in planted", secret.label);
        assert!(
            leaks(secrets, &with_plant).contains(&expected),
            "{}: a planted copy is not found",
            secret.label
        );
    }
}

#[tokio::test]
async fn no_plaintext_secret_reaches_debug_display_errors_events_or_memory_rows() {
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let sink = RecordingSink::new();
    let mfa = service(MemoryStore::new(), &clock, &sink);
    let (secrets, hay) = flow(&mfa, &clock, &sink, None).await;
    sanity(&secrets, &hay);
    let found = leaks(&secrets, &hay);
    println!(
        "memory: {} secrets checked against {} texts and {} blobs",
        secrets.0.len(),
        hay.texts.len(),
        hay.blobs.len()
    );
    assert!(found.is_empty(), "plaintext secrets found:\n{}", found.join("\n"));
}

fn fresh_path(tag: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("no-plaintext");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{tag}-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

#[tokio::test]
async fn no_plaintext_secret_reaches_the_sqlite_file() {
    let path = fresh_path("flow");
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let sink = RecordingSink::new();
    let mfa = service(SqliteStore::open(&path).await.unwrap(), &clock, &sink);
    let (secrets, mut hay) = flow(&mfa, &clock, &sink, Some(&path)).await;
    mfa.store().close().await;
    let files = file_bytes(&path);
    assert!(!files.is_empty());
    for (name, bytes) in files {
        hay.blobs.push((format!("after close: {name}"), bytes));
    }
    sanity(&secrets, &hay);
    let file_blobs: Vec<&[u8]> = hay
        .blobs
        .iter()
        .filter(|(w, _)| w.contains(".db"))
        .map(|(_, b)| b.as_slice())
        .collect();
    assert!(
        file_blobs.iter().any(|b| find(b, b"alice-7f3c")),
        "the user id is not in the database file: the scan could not fail"
    );
    assert!(
        file_blobs.iter().any(|b| find(b, b"Work phone")),
        "the renamed method is not in the database file: the scan could not fail"
    );
    let found = leaks(&secrets, &hay);
    println!(
        "sqlite: {} secrets checked against {} texts and {} blobs ({} from the database files)",
        secrets.0.len(),
        hay.texts.len(),
        hay.blobs.len(),
        file_blobs.len()
    );
    assert!(found.is_empty(), "plaintext secrets found:\n{}", found.join("\n"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
