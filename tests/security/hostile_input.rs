//! Hostile input across the public API: a table of named malformed inputs, each of which must
//! yield its typed error (matched on the variant), none of which may panic, and none of whose
//! error messages may repeat an input that could be a secret (a submitted code, a key, a
//! secret, a token).
//!
//! A few inputs are deliberately not errors: a malformed remember-this-browser token is simply
//! "not trusted" (`Ok(false)`), and a WebAuthn finish with an unknown ceremony is
//! `Ok(Outcome::Rejected)`. Those rows say so in their names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::any::Any;
use std::fmt::{Debug, Display};
use std::panic::{AssertUnwindSafe, catch_unwind};

use multifactor::backup_codes::BackupCodeConfig;
use multifactor::error::{ConfigError, InputError, MisuseError, SealError};
use multifactor::remembered_browser::RememberedBrowserConfig;
use multifactor::store::SealedSecret;
use multifactor::throttle::ThrottlePolicy;
use multifactor::totp::{Algorithm, TotpConfig, TotpImport, TotpParams};
use multifactor::totp::{code_at, decode_base32_secret};
use multifactor::webauthn::{
    AttestationAllowList, AuthenticationResponse, PasswordlessCeremony, RegistrationResponse, RelyingParty,
    WebAuthnConfig,
};
use multifactor::{
    CeremonyId, DeviceId, DeviceKind, DeviceName, Error, Factor, InsecureSeededRng, KeyId, Keyring, ManualClock,
    MemoryStore, Mfa, MfaConfig, Outcome, RememberedBrowserId, SealingKey, UnixTime, UserId,
};
use multifactor_kit::service::{START, TestMfa, user};

/// A valid 160-bit base32 secret ("12345678901234567890"), used inside otherwise broken URIs.
const SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// What happened to one row of the table.
enum Verdict {
    /// The expected typed result, and no secret in its messages.
    Pass,
    /// Another result than the expected one.
    Wrong(String),
    /// The call panicked.
    Panicked(String),
    /// The `Debug` or `Display` of the result repeats the secret input.
    Leaked(String),
}

#[derive(Default)]
struct Table {
    rows: Vec<(String, Verdict)>,
}

impl Table {
    fn push(&mut self, name: &str, verdict: Verdict) {
        assert!(
            !self.rows.iter().any(|(n, _)| n == name),
            "two cases are named {name:?}"
        );
        self.rows.push((name.to_owned(), verdict));
    }
}

/// The `Debug` of a result and the `Display` of its error (empty for `Ok`).
fn describe<T: Debug, E: Debug + Display>(result: &Result<T, E>) -> (String, String) {
    let display = match result {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    };
    (format!("{result:?}"), display)
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// `case!(table, "name", call, expected pattern)`, optionally `, secret = needle`: the needle
/// must not appear in the result's `Debug` nor in its error's `Display`.
macro_rules! case {
    (@secret) => {
        None::<String>
    };
    (@secret $secret:expr) => {
        Some(String::from($secret))
    };
    ($table:expr, $name:expr, $call:expr, $pat:pat $(, secret = $secret:expr)? $(,)?) => {{
        let secret: Option<String> = case!(@secret $($secret)?);
        let verdict = match catch_unwind(AssertUnwindSafe(|| $call)) {
            Err(payload) => Verdict::Panicked(panic_message(&*payload)),
            Ok(result) => {
                let (debug, display) = describe(&result);
                if !matches!(result, $pat) {
                    Verdict::Wrong(debug)
                } else if let Some(s) = secret
                    .as_deref()
                    .filter(|s| !s.is_empty() && (debug.contains(s) || display.contains(s))) {
                    Verdict::Leaked(format!("{s:?} in {debug} / {display}"))
                } else {
                    Verdict::Pass
                }
            }
        };
        $table.push($name, verdict);
    }};
}

fn keys() -> Keyring {
    Keyring::new(SealingKey::new(KeyId::new("k1").unwrap(), [1; 32]))
}

fn service(clock: &ManualClock, webauthn: Option<WebAuthnConfig>) -> TestMfa {
    let mut config = MfaConfig::new("ACME").unwrap();
    config.webauthn = webauthn;
    Mfa::new(MemoryStore::new(), keys(), config)
        .unwrap()
        .with_clock(clock.clone())
        .with_rng(InsecureSeededRng::new(42))
}

fn rp() -> RelyingParty {
    RelyingParty::new("example.com", "Example", &["https://auth.example.com"]).unwrap()
}

fn uri(query: &str) -> String {
    format!("otpauth://totp/ACME:alice@example.com?{query}")
}

/// Response JSON with the right shape (so it parses) but no valid content.
const REGISTRATION_JSON: &str = r#"{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"AAAA","attestationObject":"AAAA"},"extensions":{}}"#;
const AUTHENTICATION_JSON: &str = r#"{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"AAAA","authenticatorData":"AAAA","signature":"AAAA"},"extensions":{}}"#;

#[test]
fn malformed_inputs_yield_typed_errors_and_never_panic() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut t = Table::default();

    // ----- Identifiers --------------------------------------------------------------------------
    case!(t, "UserId: empty", UserId::new(""), Err(InputError::UserId));
    case!(t, "UserId: NUL inside", UserId::new("a\0b"), Err(InputError::UserId));
    case!(t, "UserId: newline", UserId::new("alice\n"), Err(InputError::UserId));
    case!(
        t,
        "UserId: C1 control (NEL)",
        UserId::new("a\u{85}b"),
        Err(InputError::UserId)
    );
    case!(
        t,
        "UserId: 256 bytes",
        UserId::new("x".repeat(256)),
        Err(InputError::UserId)
    );
    case!(
        t,
        "UserId: 256 bytes of 2-byte chars",
        UserId::new("é".repeat(128)),
        Err(InputError::UserId)
    );

    for (what, input) in [
        ("empty", String::new()),
        ("short", "abcdef".to_owned()),
        ("33 digits", "a".repeat(33)),
        ("non-hex", "g".repeat(32)),
        ("unicode, 32 bytes", "é".repeat(16)),
        ("'+' signs", "+1".repeat(16)),
        ("'-' signs", "-1".repeat(16)),
        ("0x prefix", format!("0x{}", "a".repeat(30))),
        ("inner space", format!("{} {}", "a".repeat(16), "b".repeat(15))),
    ] {
        case!(
            t,
            &format!("DeviceId::from_str: {what}"),
            input.parse::<DeviceId>(),
            Err(InputError::DeviceId)
        );
    }
    case!(
        t,
        "CeremonyId::from_str: short",
        "0123".parse::<CeremonyId>(),
        Err(InputError::CeremonyId)
    );
    case!(
        t,
        "CeremonyId::from_str: non-hex",
        "z".repeat(32).parse::<CeremonyId>(),
        Err(InputError::CeremonyId)
    );
    case!(
        t,
        "CeremonyId::from_str: unicode",
        "ü".repeat(16).parse::<CeremonyId>(),
        Err(InputError::CeremonyId)
    );
    case!(
        t,
        "CeremonyId::from_str: '+' signs",
        "+f".repeat(16).parse::<CeremonyId>(),
        Err(InputError::CeremonyId)
    );
    case!(
        t,
        "RememberedBrowserId::from_str: short",
        "abc".parse::<RememberedBrowserId>(),
        Err(InputError::RememberedBrowserToken)
    );
    case!(
        t,
        "RememberedBrowserId::from_str: non-hex",
        "x".repeat(32).parse::<RememberedBrowserId>(),
        Err(InputError::RememberedBrowserToken)
    );
    case!(
        t,
        "RememberedBrowserId::from_str: unicode",
        "€".repeat(10).parse::<RememberedBrowserId>(),
        Err(InputError::RememberedBrowserToken)
    );
    case!(
        t,
        "RememberedBrowserId::from_str: '+' signs",
        "+0".repeat(16).parse::<RememberedBrowserId>(),
        Err(InputError::RememberedBrowserToken)
    );

    case!(t, "DeviceName: empty", DeviceName::new(""), Err(InputError::DeviceName));
    case!(
        t,
        "DeviceName: only whitespace",
        DeviceName::new(" \t  "),
        Err(InputError::DeviceName)
    );
    case!(
        t,
        "DeviceName: 65 characters",
        DeviceName::new(&"n".repeat(65)),
        Err(InputError::DeviceName)
    );
    case!(
        t,
        "DeviceName: 65 two-byte characters",
        DeviceName::new(&"ñ".repeat(65)),
        Err(InputError::DeviceName)
    );
    case!(
        t,
        "DeviceName: newline inside",
        DeviceName::new("My\nPhone"),
        Err(InputError::DeviceName)
    );
    case!(
        t,
        "DeviceName: DEL",
        DeviceName::new("Phone\u{7f}"),
        Err(InputError::DeviceName)
    );
    case!(
        t,
        "DeviceName: escape sequence",
        DeviceName::new("\u{1b}[31mred"),
        Err(InputError::DeviceName)
    );

    case!(
        t,
        "Factor::from_str: unknown",
        "sms".parse::<Factor>(),
        Err(InputError::Factor)
    );
    case!(
        t,
        "Factor::from_str: empty",
        "".parse::<Factor>(),
        Err(InputError::Factor)
    );
    case!(
        t,
        "Factor::from_str: wrong case",
        "TOTP".parse::<Factor>(),
        Err(InputError::Factor)
    );
    case!(
        t,
        "Factor::from_str: trailing space",
        "totp ".parse::<Factor>(),
        Err(InputError::Factor)
    );

    // ----- Keys and sealed secrets --------------------------------------------------------------
    case!(t, "KeyId: empty", KeyId::new(""), Err(SealError::KeyId));
    case!(t, "KeyId: 65 bytes", KeyId::new("k".repeat(65)), Err(SealError::KeyId));
    case!(t, "KeyId: space", KeyId::new("key one"), Err(SealError::KeyId));
    case!(t, "KeyId: non-ASCII", KeyId::new("clé"), Err(SealError::KeyId));
    case!(t, "KeyId: control", KeyId::new("k\n"), Err(SealError::KeyId));

    let kid = || KeyId::new("k").unwrap();
    let hex63 = "0123456789abcdef".repeat(4)[..63].to_owned();
    case!(
        t,
        "SealingKey::from_hex: 63 digits",
        SealingKey::from_hex(kid(), &hex63),
        Err(ConfigError::Keyring(_)),
        secret = hex63.clone()
    );
    let hex_g = format!("{}g", &"0123456789abcdef".repeat(4)[..63]);
    case!(
        t,
        "SealingKey::from_hex: non-hex digit",
        SealingKey::from_hex(kid(), &hex_g),
        Err(ConfigError::Keyring(_)),
        secret = hex_g.clone()
    );
    let hex_plus = "+a".repeat(32);
    case!(
        t,
        "SealingKey::from_hex: '+' signs",
        SealingKey::from_hex(kid(), &hex_plus),
        Err(ConfigError::Keyring(_)),
        secret = hex_plus.clone()
    );
    let hex_unicode = "é".repeat(32);
    case!(
        t,
        "SealingKey::from_hex: unicode, 64 bytes",
        SealingKey::from_hex(kid(), &hex_unicode),
        Err(ConfigError::Keyring(_)),
        secret = hex_unicode.clone()
    );
    let hex65 = "a".repeat(65);
    case!(
        t,
        "SealingKey::from_hex: 65 digits",
        SealingKey::from_hex(kid(), &hex65),
        Err(ConfigError::Keyring(_)),
        secret = hex65.clone()
    );
    case!(
        t,
        "SealingKey::from_slice: 31 bytes",
        SealingKey::from_slice(kid(), &[7; 31]),
        Err(ConfigError::Keyring(_))
    );
    case!(
        t,
        "SealingKey::from_slice: 33 bytes",
        SealingKey::from_slice(kid(), &[7; 33]),
        Err(ConfigError::Keyring(_))
    );
    case!(
        t,
        "SealingKey::from_slice: empty",
        SealingKey::from_slice(kid(), &[]),
        Err(ConfigError::Keyring(_))
    );
    case!(
        t,
        "Keyring::with_previous: the same key id twice",
        keys().with_previous(SealingKey::new(KeyId::new("k1").unwrap(), [2; 32])),
        Err(ConfigError::Keyring(_))
    );

    let blob = |version: u8, id: &[u8], rest: usize| {
        let mut b = vec![version, id.len() as u8];
        b.extend_from_slice(id);
        b.extend(std::iter::repeat_n(0xa5, rest));
        b
    };
    case!(
        t,
        "SealedSecret::from_bytes: empty",
        SealedSecret::from_bytes(&[]),
        Err(SealError::Malformed(_))
    );
    case!(
        t,
        "SealedSecret::from_bytes: version 0",
        SealedSecret::from_bytes(&blob(0, b"k1", 60)),
        Err(SealError::Malformed(_))
    );
    case!(
        t,
        "SealedSecret::from_bytes: version 2",
        SealedSecret::from_bytes(&blob(2, b"k1", 60)),
        Err(SealError::Malformed(_))
    );
    case!(
        t,
        "SealedSecret::from_bytes: version byte only",
        SealedSecret::from_bytes(&[1]),
        Err(SealError::Malformed(_))
    );
    case!(
        t,
        "SealedSecret::from_bytes: truncated before the tag",
        SealedSecret::from_bytes(&blob(1, b"k1", 24 + 15)),
        Err(SealError::Malformed(_))
    );
    case!(
        t,
        "SealedSecret::from_bytes: key id length past the end",
        SealedSecret::from_bytes(&[1, 255, b'k']),
        Err(SealError::Malformed(_))
    );
    case!(
        t,
        "SealedSecret::from_bytes: empty key id",
        SealedSecret::from_bytes(&blob(1, b"", 60)),
        Err(SealError::Malformed(_))
    );
    case!(
        t,
        "SealedSecret::from_bytes: key id with a space",
        SealedSecret::from_bytes(&blob(1, b"k 1", 60)),
        Err(SealError::Malformed(_))
    );
    case!(
        t,
        "SealedSecret::from_bytes: key id not UTF-8",
        SealedSecret::from_bytes(&blob(1, &[0xff, 0xfe], 60)),
        Err(SealError::Malformed(_))
    );

    // ----- Configuration ------------------------------------------------------------------------
    case!(
        t,
        "TotpParams: 5 digits",
        TotpParams::new(Algorithm::Sha1, 5, 30),
        Err(ConfigError::TotpDigits(5))
    );
    case!(
        t,
        "TotpParams: 9 digits",
        TotpParams::new(Algorithm::Sha1, 9, 30),
        Err(ConfigError::TotpDigits(9))
    );
    case!(
        t,
        "TotpParams: 0 digits",
        TotpParams::new(Algorithm::Sha256, 0, 30),
        Err(ConfigError::TotpDigits(0))
    );
    case!(
        t,
        "TotpParams: period 9 s",
        TotpParams::new(Algorithm::Sha1, 6, 9),
        Err(ConfigError::TotpPeriod(9))
    );
    case!(
        t,
        "TotpParams: period 301 s",
        TotpParams::new(Algorithm::Sha1, 6, 301),
        Err(ConfigError::TotpPeriod(301))
    );
    case!(
        t,
        "TotpParams: period u64::MAX",
        TotpParams::new(Algorithm::Sha512, 8, u64::MAX),
        Err(ConfigError::TotpPeriod(u64::MAX))
    );

    case!(
        t,
        "TotpConfig issuer: empty",
        TotpConfig::new(""),
        Err(ConfigError::TotpIssuer)
    );
    case!(
        t,
        "TotpConfig issuer: only spaces",
        TotpConfig::new("   "),
        Err(ConfigError::TotpIssuer)
    );
    case!(
        t,
        "TotpConfig issuer: ':'",
        TotpConfig::new("ACME:Corp"),
        Err(ConfigError::TotpIssuer)
    );
    case!(
        t,
        "TotpConfig issuer: control",
        TotpConfig::new("AC\u{0}ME"),
        Err(ConfigError::TotpIssuer)
    );
    case!(
        t,
        "TotpConfig issuer: 65 characters",
        TotpConfig::new(&"I".repeat(65)),
        Err(ConfigError::TotpIssuer)
    );
    case!(
        t,
        "MfaConfig::new: issuer with a newline",
        MfaConfig::new("AC\nME"),
        Err(ConfigError::TotpIssuer)
    );
    let totp_config = TotpConfig::new("ACME").unwrap();
    case!(
        t,
        "TotpConfig::with_window: 11",
        totp_config.clone().with_window(11),
        Err(ConfigError::TotpWindow(11))
    );
    case!(
        t,
        "TotpConfig::with_window: u32::MAX",
        totp_config.clone().with_window(u32::MAX),
        Err(ConfigError::TotpWindow(u32::MAX))
    );
    case!(
        t,
        "TotpConfig::with_secret_len: 19",
        totp_config.clone().with_secret_len(19),
        Err(ConfigError::TotpSecretLength(19))
    );
    case!(
        t,
        "TotpConfig::with_secret_len: 65",
        totp_config.clone().with_secret_len(65),
        Err(ConfigError::TotpSecretLength(65))
    );
    case!(
        t,
        "TotpConfig::with_secret_len: 0",
        totp_config.clone().with_secret_len(0),
        Err(ConfigError::TotpSecretLength(0))
    );

    case!(
        t,
        "BackupCodeConfig: 0 codes",
        BackupCodeConfig::new(0, 12),
        Err(ConfigError::BackupCodeCount { got: 0, .. })
    );
    case!(
        t,
        "BackupCodeConfig: 33 codes",
        BackupCodeConfig::new(33, 12),
        Err(ConfigError::BackupCodeCount { got: 33, .. })
    );
    case!(
        t,
        "BackupCodeConfig: 11 characters",
        BackupCodeConfig::new(6, 11),
        Err(ConfigError::BackupCodeLength { got: 11, .. })
    );
    case!(
        t,
        "BackupCodeConfig: 33 characters",
        BackupCodeConfig::new(6, 33),
        Err(ConfigError::BackupCodeLength { got: 33, .. })
    );
    case!(
        t,
        "BackupCodeConfig: usize::MAX characters",
        BackupCodeConfig::new(6, usize::MAX),
        Err(ConfigError::BackupCodeLength { .. })
    );

    case!(
        t,
        "ThrottlePolicy: lockout after 0",
        ThrottlePolicy::new(0, 30, 3600, 0),
        Err(ConfigError::Throttle(_))
    );
    case!(
        t,
        "ThrottlePolicy: lockout after 101",
        ThrottlePolicy::new(5, 30, 3600, 101),
        Err(ConfigError::Throttle(_))
    );
    case!(
        t,
        "ThrottlePolicy: free failures = lockout",
        ThrottlePolicy::new(10, 30, 3600, 10),
        Err(ConfigError::Throttle(_))
    );
    case!(
        t,
        "ThrottlePolicy: zero base delay",
        ThrottlePolicy::new(5, 0, 3600, 100),
        Err(ConfigError::Throttle(_))
    );
    case!(
        t,
        "ThrottlePolicy: max delay < base",
        ThrottlePolicy::new(5, 60, 30, 100),
        Err(ConfigError::Throttle(_))
    );

    case!(
        t,
        "RememberedBrowserConfig: 0 s",
        RememberedBrowserConfig::new(0),
        Err(ConfigError::RememberedBrowser(_))
    );
    case!(
        t,
        "RememberedBrowserConfig: 3599 s",
        RememberedBrowserConfig::new(3599),
        Err(ConfigError::RememberedBrowser(_))
    );
    case!(
        t,
        "RememberedBrowserConfig: 400 days + 1 s",
        RememberedBrowserConfig::new(400 * 86_400 + 1),
        Err(ConfigError::RememberedBrowser(_))
    );

    let rp_case = |id: &str, name: &str, origins: &[&str]| RelyingParty::new(id, name, origins);
    case!(
        t,
        "RelyingParty: IPv4 rp id",
        rp_case("192.168.1.1", "X", &["https://192.168.1.1"]),
        Err(ConfigError::RelyingParty(_))
    );
    case!(
        t,
        "RelyingParty: IPv6 rp id",
        rp_case("[::1]", "X", &["https://[::1]"]),
        Err(ConfigError::RelyingParty(_))
    );
    case!(
        t,
        "RelyingParty: http origin, not localhost",
        rp_case("example.com", "X", &["http://example.com"]),
        Err(ConfigError::RelyingParty(_))
    );
    case!(
        t,
        "RelyingParty: origin with a path",
        rp_case("example.com", "X", &["https://example.com/login"]),
        Err(ConfigError::RelyingParty(_))
    );
    case!(
        t,
        "RelyingParty: origin with a query",
        rp_case("example.com", "X", &["https://example.com?a=b"]),
        Err(ConfigError::RelyingParty(_))
    );
    case!(
        t,
        "RelyingParty: origin with credentials",
        rp_case("example.com", "X", &["https://user:pw@example.com"]),
        Err(ConfigError::RelyingParty(_))
    );
    case!(
        t,
        "RelyingParty: rp id not a suffix of the origin",
        rp_case("example.com", "X", &["https://example.org"]),
        Err(ConfigError::RelyingParty(_))
    );
    case!(
        t,
        "RelyingParty: lookalike suffix (badexample.com)",
        rp_case("example.com", "X", &["https://badexample.com"]),
        Err(ConfigError::RelyingParty(_))
    );
    case!(
        t,
        "RelyingParty: no origins",
        rp_case("example.com", "X", &[]),
        Err(ConfigError::RelyingParty(_))
    );
    case!(
        t,
        "RelyingParty: empty name",
        rp_case("example.com", " ", &["https://example.com"]),
        Err(ConfigError::RelyingParty(_))
    );
    case!(
        t,
        "RelyingParty: upper-case rp id",
        rp_case("Example.com", "X", &["https://example.com"]),
        Err(ConfigError::RelyingParty(_))
    );
    case!(
        t,
        "RelyingParty: single-label rp id",
        rp_case("com", "X", &["https://com"]),
        Err(ConfigError::RelyingParty(_))
    );
    case!(
        t,
        "RelyingParty: origin not a URL",
        rp_case("example.com", "X", &["not a url"]),
        Err(ConfigError::RelyingParty(_))
    );
    case!(
        t,
        "RelyingParty::with_timeout: 5 s",
        rp().with_timeout(std::time::Duration::from_secs(5)),
        Err(ConfigError::RelyingParty(_))
    );
    case!(
        t,
        "RelyingParty::with_timeout: 601 s",
        rp().with_timeout(std::time::Duration::from_secs(601)),
        Err(ConfigError::RelyingParty(_))
    );
    case!(
        t,
        "WebAuthnConfig::with_ceremony_ttl: 29 s",
        WebAuthnConfig::new(rp()).with_ceremony_ttl(29),
        Err(ConfigError::WebAuthn(_))
    );
    case!(
        t,
        "WebAuthnConfig::with_ceremony_ttl: 3601 s",
        WebAuthnConfig::new(rp()).with_ceremony_ttl(3601),
        Err(ConfigError::WebAuthn(_))
    );
    case!(
        t,
        "WebAuthnConfig::with_ceremony_ttl: 0 s",
        WebAuthnConfig::new(rp()).with_ceremony_ttl(0),
        Err(ConfigError::WebAuthn(_))
    );
    case!(
        t,
        "AttestationAllowList::allow_der: garbage",
        AttestationAllowList::new().allow_der(b"not a certificate", [0; 16], "x"),
        Err(ConfigError::Attestation(_))
    );
    case!(
        t,
        "AttestationAllowList::allow_der: empty",
        AttestationAllowList::new().allow_der(&[], [1; 16], "x"),
        Err(ConfigError::Attestation(_))
    );
    case!(
        t,
        "AttestationAllowList::allow_der: truncated DER sequence",
        AttestationAllowList::new().allow_der(&[0x30, 0x82, 0xff, 0xff, 0x30], [2; 16], "x"),
        Err(ConfigError::Attestation(_))
    );

    // ----- TOTP import and base32 ---------------------------------------------------------------
    let with_secret = format!("secret={SECRET_B32}&issuer=ACME");
    let http = format!("http://totp/ACME:alice?{with_secret}");
    case!(
        t,
        "TotpImport: http scheme",
        TotpImport::parse(&http),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    // An hotp URI without its counter, or with one that is not a number.
    let hotp = format!("otpauth://hotp/ACME:alice?{with_secret}");
    case!(
        t,
        "TotpImport: hotp without a counter",
        TotpImport::parse(&hotp),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    let hotp = format!("otpauth://hotp/ACME:alice?{with_secret}&counter=18446744073709551616");
    case!(
        t,
        "TotpImport: hotp counter beyond 2^64",
        TotpImport::parse(&hotp),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    let other_type = format!("otpauth://steam/ACME:alice?{with_secret}");
    case!(
        t,
        "TotpImport: unknown type",
        TotpImport::parse(&other_type),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    case!(
        t,
        "TotpImport: missing secret",
        TotpImport::parse(&uri("issuer=ACME")),
        Err(InputError::KeyUri(_))
    );
    case!(
        t,
        "TotpImport: short secret (40 bits)",
        TotpImport::parse(&uri("secret=GEZDGNBV&issuer=ACME")),
        Err(InputError::SecretLength(5)),
        secret = "GEZDGNBV"
    );
    let bad_b32 = "GEZDGNBVGY3TQOJ1GEZDGNBVGY3TQOJQ"; // '1' is not in the alphabet
    case!(
        t,
        "TotpImport: bad base32 ('1')",
        TotpImport::parse(&uri(&format!("secret={bad_b32}"))),
        Err(InputError::SecretEncoding),
        secret = bad_b32
    );
    case!(
        t,
        "TotpImport: bad base32 ('!')",
        TotpImport::parse(&uri(&format!("secret={SECRET_B32}!"))),
        Err(InputError::SecretEncoding),
        secret = SECRET_B32
    );
    case!(
        t,
        "TotpImport: duplicate secret parameter",
        TotpImport::parse(&uri(&format!("secret={SECRET_B32}&secret={SECRET_B32}"))),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    case!(
        t,
        "TotpImport: duplicate digits parameter (case-insensitive)",
        TotpImport::parse(&uri(&format!("secret={SECRET_B32}&digits=6&DIGITS=8"))),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    case!(
        t,
        "TotpImport: issuer mismatch",
        TotpImport::parse(&uri(&format!("secret={SECRET_B32}&issuer=Evil"))),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    case!(
        t,
        "TotpImport: bad percent-encoding (%ZZ)",
        TotpImport::parse(&format!("otpauth://totp/AC%ZZME:alice?secret={SECRET_B32}")),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    case!(
        t,
        "TotpImport: truncated percent-encoding (%4)",
        TotpImport::parse(&uri(&format!("secret={SECRET_B32}&issuer=ACME%4"))),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    case!(
        t,
        "TotpImport: percent-encoded invalid UTF-8",
        TotpImport::parse(&format!("otpauth://totp/ACME:%FF%FE?secret={SECRET_B32}")),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    case!(
        t,
        "TotpImport: percent-encoded control character",
        TotpImport::parse(&format!("otpauth://totp/ACME:ali%0Ace?secret={SECRET_B32}")),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    case!(
        t,
        "TotpImport: digits=9",
        TotpImport::parse(&uri(&format!("secret={SECRET_B32}&digits=9"))),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    case!(
        t,
        "TotpImport: digits not a number",
        TotpImport::parse(&uri(&format!("secret={SECRET_B32}&digits=six"))),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    case!(
        t,
        "TotpImport: period=0",
        TotpImport::parse(&uri(&format!("secret={SECRET_B32}&period=0"))),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    case!(
        t,
        "TotpImport: negative period",
        TotpImport::parse(&uri(&format!("secret={SECRET_B32}&period=-30"))),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    case!(
        t,
        "TotpImport: algorithm MD5",
        TotpImport::parse(&uri(&format!("secret={SECRET_B32}&algorithm=MD5"))),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    let long = uri(&format!("secret={SECRET_B32}&image={}", "x".repeat(3000)));
    case!(
        t,
        "TotpImport: 3000-byte URI",
        TotpImport::parse(&long),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    case!(
        t,
        "TotpImport: missing label",
        TotpImport::parse(&format!("otpauth://totp?secret={SECRET_B32}")),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    case!(
        t,
        "TotpImport: empty account",
        TotpImport::parse(&format!("otpauth://totp/ACME:?secret={SECRET_B32}")),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    case!(
        t,
        "TotpImport: parameter without '='",
        TotpImport::parse(&uri(&format!("secret={SECRET_B32}&issuer"))),
        Err(InputError::KeyUri(_)),
        secret = SECRET_B32
    );
    case!(
        t,
        "TotpImport: bare base32, too short (64 bits)",
        TotpImport::parse("MFRGGZDFMZTWQ"),
        Err(InputError::SecretLength(8)),
        secret = "MFRGGZDFMZTWQ"
    );
    case!(
        t,
        "TotpImport: bare secret with '@'",
        TotpImport::parse("GEZDGNBVGY3TQ@JQGEZDGNBV"),
        Err(InputError::SecretEncoding),
        secret = "GEZDGNBVGY3TQ@JQGEZDGNBV"
    );
    case!(
        t,
        "decode_base32_secret: too short (5 bytes)",
        decode_base32_secret("MFRGGZDF"),
        Err(InputError::SecretLength(5)),
        secret = "MFRGGZDF"
    );
    case!(
        t,
        "decode_base32_secret: empty",
        decode_base32_secret(""),
        Err(InputError::SecretLength(0))
    );
    case!(
        t,
        "decode_base32_secret: invalid character ('8')",
        decode_base32_secret("GEZDGNBVGY3TQOJ8GEZDGNBVGY3TQOJQ"),
        Err(InputError::SecretEncoding),
        secret = "GEZDGNBVGY3TQOJ8GEZDGNBVGY3TQOJQ"
    );
    case!(
        t,
        "decode_base32_secret: non-ASCII",
        decode_base32_secret("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJÄ"),
        Err(InputError::SecretEncoding),
        secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ"
    );
    let huge = "A".repeat(300);
    case!(
        t,
        "decode_base32_secret: 300 characters",
        decode_base32_secret(&huge),
        Err(InputError::SecretLength(_)),
        secret = huge.clone()
    );

    // ----- WebAuthn responses -------------------------------------------------------------------
    case!(
        t,
        "RegistrationResponse::from_json: garbage",
        RegistrationResponse::from_json("}{ not json"),
        Err(InputError::WebAuthnResponse(_))
    );
    case!(
        t,
        "RegistrationResponse::from_json: empty object",
        RegistrationResponse::from_json("{}"),
        Err(InputError::WebAuthnResponse(_))
    );
    case!(
        t,
        "RegistrationResponse::from_json: an authentication response",
        RegistrationResponse::from_json(AUTHENTICATION_JSON),
        Err(InputError::WebAuthnResponse(_))
    );
    let big = format!(r#"{{"id":"{}"}}"#, "A".repeat(64 * 1024));
    case!(
        t,
        "RegistrationResponse::from_json: over 64 KiB",
        RegistrationResponse::from_json(&big),
        Err(InputError::WebAuthnResponse(_))
    );
    case!(
        t,
        "AuthenticationResponse::from_json: garbage",
        AuthenticationResponse::from_json("\u{0}\u{feff}null"),
        Err(InputError::WebAuthnResponse(_))
    );
    case!(
        t,
        "AuthenticationResponse::from_json: array",
        AuthenticationResponse::from_json("[1,2,3]"),
        Err(InputError::WebAuthnResponse(_))
    );
    case!(
        t,
        "AuthenticationResponse::from_json: over 64 KiB",
        AuthenticationResponse::from_json(&big),
        Err(InputError::WebAuthnResponse(_))
    );
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    case!(
        t,
        "AuthenticationResponse::from_json: 200 KB of nesting",
        AuthenticationResponse::from_json(&deep),
        Err(InputError::WebAuthnResponse(_))
    );
    let deep_small = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    case!(
        t,
        "AuthenticationResponse::from_json: 30000-deep nesting under 64 KiB",
        AuthenticationResponse::from_json(&deep_small),
        Err(InputError::WebAuthnResponse(_))
    );

    // ----- The service --------------------------------------------------------------------------
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let mfa = service(&clock, None);
    let alice = user("alice");
    let bob = user("bob");
    let carol = user("carol");
    let dave = user("dave");
    let (totp_device, verified) = rt.block_on(async {
        let e = mfa.enroll_totp(&alice, "alice@example.com", None).await.unwrap();
        let secret = decode_base32_secret(e.secret_base32.expose_secret()).unwrap();
        let code = code_at(&secret, &TotpParams::default(), clock.now());
        assert!(
            mfa.confirm_totp(&alice, e.device, code.expose_secret())
                .await
                .unwrap()
                .is_accepted()
        );
        // A sign-in (the next step's code) is the proof a remembered browser needs.
        let next = code_at(&secret, &TotpParams::default(), clock.now().plus_secs(30));
        let Outcome::Accepted(v) = mfa.verify_totp(&alice, next.expose_secret()).await.unwrap() else {
            panic!("sign-in failed")
        };
        (e.device, v)
    });
    let alice_codes = rt.block_on(mfa.generate_backup_codes(&alice, None)).unwrap();
    let bob_codes = rt.block_on(mfa.generate_backup_codes(&bob, None)).unwrap();
    let dave_enrollment = rt.block_on(mfa.enroll_totp(&dave, "dave", None)).unwrap();
    let token = rt.block_on(mfa.remember_browser(&verified)).unwrap();
    let token_text = token.token.expose_secret().to_owned();
    let unknown = DeviceId::from_bytes([0x5a; 16]);

    for (what, code) in [
        ("letters", "abcdef".to_owned()),
        ("5 digits", "12345".to_owned()),
        ("9 digits", "123456789".to_owned()),
        ("100 digits", "7".repeat(100)),
        ("full-width digits", "１２３４５６".to_owned()),
        ("Arabic-Indic digits", "٣٤٥٦٧٨".to_owned()),
        ("signed", "+12345".to_owned()),
        ("empty", String::new()),
        ("NUL inside", "123\u{0}456".to_owned()),
        ("a backup code", alice_codes.codes[1].expose_secret().to_owned()),
    ] {
        case!(
            t,
            &format!("verify_totp: {what}"),
            rt.block_on(mfa.verify_totp(&alice, &code)),
            Err(Error::Input(InputError::CodeFormat { .. })),
            secret = code.clone()
        );
    }
    for (what, code) in [
        ("wrong length", "abcd-efgh".to_owned()),
        (
            "'_' (not in the alphabet; 'u' reads as 'v')",
            "____-____-____".to_owned(),
        ),
        ("punctuation", "abcd!efgh!jkmn".to_owned()),
        ("500 characters", "a".repeat(500)),
        ("full-width letters", "ａｂｃｄｅｆｇｈｊｋｍｎ".to_owned()),
        ("right length, NUL inside", "abcd\u{0}efghjkmn".to_owned()),
    ] {
        case!(
            t,
            &format!("verify_backup_code: {what}"),
            rt.block_on(mfa.verify_backup_code(&alice, &code)),
            Err(Error::Input(InputError::CodeFormat { .. })),
            secret = code.clone()
        );
    }
    // An authenticator app's code typed here is named as such (and, like the rest, neither
    // counted nor echoed).
    let app_code = "123456";
    case!(
        t,
        "verify_backup_code: a TOTP-shaped code",
        rt.block_on(mfa.verify_backup_code(&alice, app_code)),
        Err(Error::Input(InputError::AuthenticatorCodeAsBackupCode)),
        secret = app_code
    );
    let unconfirmed_bad = "98765x";
    case!(
        t,
        "confirm_totp: letters in the first code",
        rt.block_on(mfa.confirm_totp(&dave, dave_enrollment.device, unconfirmed_bad)),
        Err(Error::Input(InputError::CodeFormat { .. })),
        secret = unconfirmed_bad
    );
    case!(
        t,
        "confirm_totp: a backup-code device id",
        rt.block_on(mfa.confirm_totp(&alice, alice_codes.device, "123456")),
        Err(Error::Misuse(MisuseError::WrongKind {
            expected: DeviceKind::Totp,
            found: DeviceKind::BackupCodes
        }))
    );
    case!(
        t,
        "confirm_totp: twice",
        rt.block_on(mfa.confirm_totp(&alice, totp_device, "123456")),
        Err(Error::Misuse(MisuseError::AlreadyConfirmed))
    );
    case!(
        t,
        "confirm_totp: unknown device",
        rt.block_on(mfa.confirm_totp(&alice, unknown, "123456")),
        Err(Error::Misuse(MisuseError::DeviceNotFound))
    );
    case!(
        t,
        "confirm_totp: another user's device",
        rt.block_on(mfa.confirm_totp(&bob, dave_enrollment.device, "123456")),
        Err(Error::Misuse(MisuseError::DeviceNotFound))
    );
    for (what, name) in [
        ("empty", String::new()),
        ("whitespace", "   ".to_owned()),
        ("newline", "a\nb".to_owned()),
        ("65 characters", "r".repeat(65)),
        ("NUL", "\u{0}".to_owned()),
    ] {
        case!(
            t,
            &format!("rename_device: {what}"),
            rt.block_on(mfa.rename_device(&alice, totp_device, &name)),
            Err(Error::Input(InputError::DeviceName))
        );
    }
    case!(
        t,
        "rename_device: unknown device",
        rt.block_on(mfa.rename_device(&alice, unknown, "Phone")),
        Err(Error::Misuse(MisuseError::DeviceNotFound))
    );
    case!(
        t,
        "rename_device: another user's device",
        rt.block_on(mfa.rename_device(&bob, totp_device, "Mine now")),
        Err(Error::Misuse(MisuseError::DeviceNotFound))
    );
    case!(
        t,
        "delete_device: unknown device",
        rt.block_on(mfa.delete_device(&alice, unknown)),
        Err(Error::Misuse(MisuseError::DeviceNotFound))
    );
    case!(
        t,
        "delete_device: another user's device",
        rt.block_on(mfa.delete_device(&bob, totp_device)),
        Err(Error::Misuse(MisuseError::DeviceNotFound))
    );
    case!(
        t,
        "delete_device: the last method",
        rt.block_on(mfa.delete_device(&bob, bob_codes.device)),
        Err(Error::Misuse(MisuseError::LastDevice))
    );
    case!(
        t,
        "admin_delete_device: unknown device",
        rt.block_on(mfa.admin_delete_device(&alice, unknown)),
        Err(Error::Misuse(MisuseError::DeviceNotFound))
    );
    case!(
        t,
        "verify_totp: user without TOTP",
        rt.block_on(mfa.verify_totp(&carol, "123456")),
        Ok(Outcome::Rejected)
    );
    case!(
        t,
        "verify_totp: only an unconfirmed TOTP",
        rt.block_on(mfa.verify_totp(&dave, "123456")),
        Ok(Outcome::Rejected)
    );
    case!(
        t,
        "verify_backup_code: user without backup codes",
        rt.block_on(mfa.verify_backup_code(&carol, "abcd-efgh-jkmnp")),
        Ok(Outcome::Rejected)
    );
    case!(
        t,
        "enroll_totp: empty account",
        rt.block_on(mfa.enroll_totp(&carol, "", None)),
        Err(Error::Input(InputError::AccountName))
    );
    case!(
        t,
        "enroll_totp: account with a newline",
        rt.block_on(mfa.enroll_totp(&carol, "carol\n@example.com", None)),
        Err(Error::Input(InputError::AccountName))
    );
    case!(
        t,
        "enroll_totp: 256-character account",
        rt.block_on(mfa.enroll_totp(&carol, &"c".repeat(256), None)),
        Err(Error::Input(InputError::AccountName))
    );
    case!(
        t,
        "enroll_totp: bad device name",
        rt.block_on(mfa.enroll_totp(&carol, "carol", Some("\u{7f}"))),
        Err(Error::Input(InputError::DeviceName))
    );
    case!(
        t,
        "generate_backup_codes: bad device name",
        rt.block_on(mfa.generate_backup_codes(&carol, Some(""))),
        Err(Error::Input(InputError::DeviceName))
    );
    case!(
        t,
        "import_totp: http URI",
        rt.block_on(mfa.import_totp(&carol, &http, None)),
        Err(Error::Input(InputError::KeyUri(_))),
        secret = SECRET_B32
    );
    case!(
        t,
        "import_totp: short bare secret",
        rt.block_on(mfa.import_totp(&carol, "GEZDGNBV", None)),
        Err(Error::Input(InputError::SecretLength(_))),
        secret = "GEZDGNBV"
    );
    case!(
        t,
        "import_totp: bad name",
        rt.block_on(mfa.import_totp(&carol, SECRET_B32, Some("a\tb"))),
        Err(Error::Input(InputError::DeviceName)),
        secret = SECRET_B32
    );
    case!(
        t,
        "revoke_remembered_browser: unknown id",
        rt.block_on(mfa.revoke_remembered_browser(&alice, RememberedBrowserId::from_bytes([3; 16]))),
        Err(Error::Misuse(MisuseError::DeviceNotFound))
    );
    case!(
        t,
        "revoke_remembered_browser: another user's token",
        rt.block_on(mfa.revoke_remembered_browser(&bob, token.id)),
        Err(Error::Misuse(MisuseError::DeviceNotFound))
    );

    // ----- WebAuthn through the service ---------------------------------------------------------
    let registration = RegistrationResponse::from_json(REGISTRATION_JSON).unwrap();
    let authentication = AuthenticationResponse::from_json(AUTHENTICATION_JSON).unwrap();
    let ceremony = CeremonyId::from_bytes([9; 16]);
    case!(
        t,
        "start_security_key_registration: no relying party",
        rt.block_on(mfa.start_security_key_registration(&alice, "alice", "Alice")),
        Err(Error::Config(ConfigError::WebAuthn(_)))
    );
    case!(
        t,
        "start_passkey_registration: no relying party",
        rt.block_on(mfa.start_passkey_registration(&alice, "alice", "Alice")),
        Err(Error::Config(ConfigError::WebAuthn(_)))
    );
    case!(
        t,
        "start_webauthn_authentication: no relying party",
        rt.block_on(mfa.start_webauthn_authentication(&alice)),
        Err(Error::Config(ConfigError::WebAuthn(_)))
    );
    case!(
        t,
        "start_passwordless: no relying party",
        rt.block_on(mfa.start_passwordless(true)),
        Err(Error::Config(ConfigError::WebAuthn(_)))
    );
    case!(
        t,
        "finish_webauthn_registration: no relying party",
        rt.block_on(mfa.finish_webauthn_registration(&alice, ceremony, &registration, None)),
        Err(Error::Config(ConfigError::WebAuthn(_)))
    );
    case!(
        t,
        "finish_webauthn_authentication: no relying party",
        rt.block_on(mfa.finish_webauthn_authentication(&alice, ceremony, &authentication)),
        Err(Error::Config(ConfigError::WebAuthn(_)))
    );
    let with_rp = service(&clock, Some(WebAuthnConfig::new(rp())));
    // A passwordless handle signed by another deployment's key: well formed, never accepted.
    let foreign = service(&clock, Some(WebAuthnConfig::new(rp())))
        .with_keys(Keyring::new(SealingKey::new(KeyId::new("k1").unwrap(), [2; 32])));
    let (forged, _) = rt.block_on(foreign.start_passwordless(false)).unwrap();
    case!(
        t,
        "finish_passwordless: no relying party",
        rt.block_on(mfa.finish_passwordless(&forged, &authentication)),
        Err(Error::Config(ConfigError::WebAuthn(_)))
    );
    for (what, text) in [
        ("empty", String::new()),
        ("not base64", "!!!!".to_string()),
        ("truncated", forged.to_string()[..40].to_string()),
        ("5000 characters", "A".repeat(5000)),
    ] {
        case!(
            t,
            &format!("PasswordlessCeremony::from_str: {what}"),
            text.parse::<PasswordlessCeremony>(),
            Err(InputError::PasswordlessCeremony)
        );
    }
    case!(
        t,
        "start_passkey_registration: empty user name",
        rt.block_on(with_rp.start_passkey_registration(&alice, "", "Alice")),
        Err(Error::Input(InputError::AccountName))
    );
    case!(
        t,
        "start_passkey_registration: empty display name",
        rt.block_on(with_rp.start_passkey_registration(&alice, "alice", "  ")),
        Err(Error::Input(InputError::AccountName))
    );
    case!(
        t,
        "start_security_key_registration: control character in the name",
        rt.block_on(with_rp.start_security_key_registration(&alice, "al\u{8}ice", "Alice")),
        Err(Error::Input(InputError::AccountName))
    );
    case!(
        t,
        "start_security_key_registration: 65-character display name",
        rt.block_on(with_rp.start_security_key_registration(&alice, "alice", &"d".repeat(65))),
        Err(Error::Input(InputError::AccountName))
    );
    case!(
        t,
        "start_webauthn_authentication: user without credentials",
        rt.block_on(with_rp.start_webauthn_authentication(&alice)),
        Err(Error::Misuse(MisuseError::NoDevice(Factor::WebAuthn)))
    );
    case!(
        t,
        "finish_webauthn_registration: bad name",
        rt.block_on(with_rp.finish_webauthn_registration(&alice, ceremony, &registration, Some(""))),
        Err(Error::Input(InputError::DeviceName))
    );
    case!(
        t,
        "finish_webauthn_registration: unknown ceremony (rejected, not an error)",
        rt.block_on(with_rp.finish_webauthn_registration(&alice, ceremony, &registration, None)),
        Ok(Outcome::Rejected)
    );
    case!(
        t,
        "finish_webauthn_authentication: unknown ceremony (rejected, not an error)",
        rt.block_on(with_rp.finish_webauthn_authentication(&alice, ceremony, &authentication)),
        Ok(Outcome::Rejected)
    );
    case!(
        t,
        "finish_passwordless: ceremony signed by another key (rejected, not an error)",
        rt.block_on(with_rp.finish_passwordless(&forged, &authentication)),
        Ok(Outcome::Rejected)
    );
    // A real ceremony, finished with a response that parses but verifies nothing.
    let (live, _) = rt
        .block_on(with_rp.start_passkey_registration(&alice, "alice", "Alice"))
        .unwrap();
    case!(
        t,
        "finish_webauthn_registration: content-free response (rejected, not an error)",
        rt.block_on(with_rp.finish_webauthn_registration(&alice, live, &registration, None)),
        Ok(Outcome::Rejected)
    );
    let (live, _) = rt.block_on(with_rp.start_passwordless(false)).unwrap();
    case!(
        t,
        "finish_passwordless: unknown credential (rejected, not an error)",
        rt.block_on(with_rp.finish_passwordless(&live, &authentication)),
        Ok(Outcome::Rejected)
    );

    // ----- Remember-this-browser tokens: malformed is "not trusted", never an error ---------------
    let (id_half, secret_half) = token_text.split_once('.').unwrap();
    let mut flipped = token_text.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == '0' { '1' } else { '0' });
    let hostile_tokens: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("a dot", ".".to_owned()),
        ("no dot", token_text.replace('.', "")),
        ("id only", format!("{id_half}.")),
        ("secret only", format!(".{secret_half}")),
        ("63-digit secret", token_text[..token_text.len() - 1].to_owned()),
        ("65-digit secret", format!("{token_text}0")),
        ("non-hex secret", format!("{id_half}.{}", "z".repeat(64))),
        ("unicode", format!("{id_half}.{}", "é".repeat(32))),
        ("'+' signs in the secret", format!("{id_half}.{}", "+a".repeat(32))),
        ("'+' signs in the id", format!("{}.{secret_half}", "+a".repeat(16))),
        ("two dots", format!("{token_text}.{secret_half}")),
        ("1 MB of text", "a.".repeat(500_000)),
        ("NUL bytes", "\u{0}".repeat(97)),
        ("unknown id", format!("{}.{secret_half}", "0".repeat(32))),
        ("last digit changed", flipped.clone()),
    ];
    for (what, tok) in &hostile_tokens {
        case!(
            t,
            &format!("check_remembered_browser: {what} (rejected, not an error)"),
            rt.block_on(mfa.check_remembered_browser(&alice, tok)),
            Ok(false),
            secret = tok.clone()
        );
    }
    case!(
        t,
        "check_remembered_browser: another user's real token (rejected, not an error)",
        rt.block_on(mfa.check_remembered_browser(&bob, &token_text)),
        Ok(false),
        secret = token_text.clone()
    );
    // The real token still works after all that (nothing above was charged against it)...
    case!(
        t,
        "check_remembered_browser: the real token is still accepted",
        rt.block_on(mfa.check_remembered_browser(&alice, &token_text)),
        Ok(true),
        secret = token_text.clone()
    );
    // ...until it expires.
    clock.advance(31 * 86_400);
    case!(
        t,
        "check_remembered_browser: expired token (rejected, not an error)",
        rt.block_on(mfa.check_remembered_browser(&alice, &token_text)),
        Ok(false),
        secret = token_text.clone()
    );

    // ----- Verdict ------------------------------------------------------------------------------
    let failures: Vec<String> = t
        .rows
        .iter()
        .filter_map(|(name, verdict)| match verdict {
            Verdict::Pass => None,
            Verdict::Wrong(got) => Some(format!("{name}: unexpected result {got}")),
            Verdict::Panicked(msg) => Some(format!("{name}: PANICKED: {msg}")),
            Verdict::Leaked(what) => Some(format!("{name}: secret input in the message: {what}")),
        })
        .collect();
    let rejected_not_errors = t.rows.iter().filter(|(n, _)| n.contains("not an error")).count();
    println!(
        "hostile inputs: {} cases ({} rejected-not-an-error), {} failed",
        t.rows.len(),
        rejected_not_errors,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        t.rows.len(),
        failures.join("\n")
    );
    assert!(t.rows.len() >= 50, "only {} cases", t.rows.len());
}
