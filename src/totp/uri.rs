//! `otpauth://` key URIs: build them for enrollment, parse them for import; QR codes (feature `qr`).
//!
//! Format: `otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30`,
//! with the label parts percent-encoded and the `issuer` parameter equal to the label's issuer.
//! On import, an issuer that itself contains `:` (which some exporters percent-encode) is split
//! off the label by the `issuer` parameter rather than at the first colon.

use std::fmt::Write as _;

use zeroize::Zeroizing;

use crate::error::InputError;
use crate::secret::{SecretBytes, SecretString};
use crate::totp::{Algorithm, TotpParams, decode_base32_secret, encode_base32_secret};

/// Longest key URI accepted on import.
pub const MAX_URI_LEN: usize = 2048;

/// Builds the key URI an authenticator app scans. It contains the secret.
///
/// `issuer` must not contain `:` (the label separator); the service validates it when configured.
pub fn build(issuer: &str, account: &str, secret: &SecretBytes, params: &TotpParams) -> SecretString {
    let secret = encode_base32_secret(secret);
    let mut uri = Zeroizing::new(String::with_capacity(128));
    uri.push_str(if params.is_counter_based() {
        "otpauth://hotp/"
    } else {
        "otpauth://totp/"
    });
    encode_into(&mut uri, issuer);
    uri.push(':');
    encode_into(&mut uri, account);
    uri.push_str("?secret=");
    uri.push_str(secret.expose_secret());
    uri.push_str("&issuer=");
    encode_into(&mut uri, issuer);
    let _ = write!(
        uri,
        "&algorithm={}&digits={}",
        params.algorithm().as_str(),
        params.digits()
    );
    if params.is_counter_based() {
        // A new counter-based device starts at 0.
        uri.push_str("&counter=0");
    } else {
        let _ = write!(uri, "&period={}", params.period());
    }
    SecretString::from(uri)
}

/// A parsed key URI or base32 secret, ready to import.
#[derive(Debug, Clone)]
pub struct TotpImport {
    /// The secret (80 to 512 bits).
    pub secret: SecretBytes,
    /// Algorithm, digits and period (defaults for a bare base32 secret: SHA1, 6, 30).
    pub params: TotpParams,
    /// The issuer, if the URI named one.
    pub issuer: Option<String>,
    /// The account label, if the input was a URI.
    pub account: Option<String>,
    /// The last step the old system accepted (its replay mark), if it kept one: that step and
    /// earlier ones stay spent after the import.
    pub last_step: Option<u64>,
}

impl TotpImport {
    /// An import from parts another system stored separately (Authelia's CSV columns,
    /// Keycloak's credential JSON).
    ///
    /// # Errors
    ///
    /// [`InputError::SecretLength`] for a secret outside 10..=64 bytes.
    pub fn from_parts(
        secret: SecretBytes,
        params: TotpParams,
        issuer: Option<String>,
        account: Option<String>,
        last_step: Option<u64>,
    ) -> Result<Self, InputError> {
        let len = secret.expose_secret().len();
        if !(super::MIN_IMPORT_SECRET_BYTES..=super::MAX_SECRET_BYTES).contains(&len) {
            return Err(InputError::SecretLength(len));
        }
        Ok(Self {
            secret,
            params,
            issuer,
            account,
            last_step,
        })
    }

    /// Parses either an `otpauth://` key URI or a bare base32 secret (leniently normalised).
    ///
    /// # Errors
    ///
    /// [`InputError::KeyUri`] for a malformed URI (the message names the rule),
    /// [`InputError::SecretEncoding`] or [`InputError::SecretLength`] for a bad secret.
    pub fn parse(input: &str) -> Result<Self, InputError> {
        let trimmed = input.trim();
        let is_uri = trimmed.get(..10).is_some_and(|p| p.eq_ignore_ascii_case("otpauth://"));
        if is_uri {
            parse(trimmed)
        } else if trimmed.contains("://") {
            Err(InputError::KeyUri("scheme must be otpauth"))
        } else {
            Ok(Self {
                secret: decode_base32_secret(trimmed)?,
                params: TotpParams::default(),
                issuer: None,
                account: None,
                last_step: None,
            })
        }
    }
}

/// Parses an `otpauth://totp/...` key URI.
///
/// # Errors
///
/// [`InputError::KeyUri`] naming the broken rule, or a secret error.
pub fn parse(uri: &str) -> Result<TotpImport, InputError> {
    use InputError::KeyUri;
    if uri.len() > MAX_URI_LEN {
        return Err(KeyUri("longer than 2048 bytes"));
    }
    let rest = uri
        .get(..10)
        .filter(|p| p.eq_ignore_ascii_case("otpauth://"))
        .and_then(|_| uri.get(10..))
        .ok_or(KeyUri("scheme must be otpauth"))?;
    let rest = rest.split('#').next().unwrap_or_default();
    let (kind, rest) = rest.split_once('/').ok_or(KeyUri("missing label"))?;
    let counter_based = kind.eq_ignore_ascii_case("hotp");
    if !counter_based && !kind.eq_ignore_ascii_case("totp") {
        return Err(KeyUri("type must be totp or hotp"));
    }
    let (label, query) = rest.split_once('?').ok_or(KeyUri("missing parameters"))?;
    let label = decode(label, false)?;

    let mut secret = None;
    let mut issuer = None;
    let mut algorithm = None;
    let mut digits = None;
    let mut period = None;
    let mut counter = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').ok_or(KeyUri("parameter without '='"))?;
        let slot = match key.to_ascii_lowercase().as_str() {
            "secret" => &mut secret,
            "issuer" => &mut issuer,
            "algorithm" => &mut algorithm,
            "digits" => &mut digits,
            "period" => &mut period,
            "counter" => &mut counter,
            _ => continue, // image, color, ...: not ours to judge
        };
        if slot.is_some() {
            return Err(KeyUri("a parameter appears twice"));
        }
        *slot = Some(decode(value, true)?);
    }
    let issuer = issuer.map(|i| i.trim().to_owned());
    let (label_issuer, account) = split_label(&label, issuer.as_deref().filter(|i| !i.is_empty()));
    let (label_issuer, account) = (label_issuer.map(|i| i.trim().to_owned()), account.trim().to_owned());
    if account.is_empty() {
        return Err(KeyUri("empty account name"));
    }
    if label_issuer.as_deref() == Some("") {
        return Err(KeyUri("empty issuer in label"));
    }
    let secret = Zeroizing::new(secret.ok_or(KeyUri("missing secret"))?);
    let secret = decode_base32_secret(&secret)?;
    let issuer = match (label_issuer, issuer) {
        (Some(a), Some(b)) if a != b => {
            return Err(KeyUri("issuer parameter differs from the label's issuer"));
        }
        (Some(a), _) => Some(a),
        (None, Some(b)) if !b.is_empty() => Some(b),
        (None, _) => None,
    };
    let algorithm = match algorithm {
        Some(a) => Algorithm::from_name(&a).ok_or(KeyUri("algorithm must be SHA1, SHA256 or SHA512"))?,
        None => Algorithm::Sha1,
    };
    let digits = match digits {
        Some(d) => d.parse::<u32>().map_err(|_| KeyUri("digits must be a number"))?,
        None => 6,
    };
    let period = match period {
        Some(p) => p.parse::<u64>().map_err(|_| KeyUri("period must be a number"))?,
        None => 30,
    };
    let (params, last_step) = if counter_based {
        // The counter the next code is made with: the one before it counts as used. A key URI
        // for HOTP must carry it (the Key URI Format makes it required).
        let counter = counter
            .ok_or(KeyUri("an hotp URI needs its counter"))?
            .parse::<u64>()
            .ok()
            .and_then(super::storable_counter)
            .ok_or(KeyUri("counter must be a number below 2^63"))?;
        let params = TotpParams::hotp(algorithm, digits).map_err(|_| KeyUri("digits must be 6 to 8"))?;
        (params, counter.checked_sub(1))
    } else {
        let params = TotpParams::new(algorithm, digits, period)
            .map_err(|_| KeyUri("digits must be 6 to 8 and period 10 to 300 seconds"))?;
        (params, None)
    };
    Ok(TotpImport {
        secret,
        params,
        issuer,
        account: Some(account),
        last_step,
    })
}

/// Splits a decoded label `Issuer:account` at the colon that ends the issuer. An issuer may itself
/// contain `:` (some exporters percent-encode it, which decodes to the same label): when the
/// `issuer` parameter is given and the label starts with it followed by `:`, the split is right
/// after it; otherwise at the first colon, and a label issuer that then differs from the
/// parameter is refused by the caller.
pub(crate) fn split_label<'a>(label: &'a str, issuer: Option<&str>) -> (Option<&'a str>, &'a str) {
    if let Some(issuer) = issuer {
        let trimmed = label.trim_start();
        if let Some(account) = trimmed
            .strip_prefix(issuer)
            .and_then(|rest| rest.trim_start().strip_prefix(':'))
        {
            return (trimmed.get(..issuer.len()), account);
        }
    }
    match label.split_once(':') {
        Some((issuer, account)) => (Some(issuer), account),
        None => (None, label),
    }
}

/// Renders a key URI as an SVG QR code. The picture encodes the secret: treat it as one.
///
/// The text is one `<svg>` element with its namespace and no XML declaration, so it can be
/// written into an HTML page as it is, or served alone as `image/svg+xml`.
///
/// # Errors
///
/// [`InputError::KeyUri`] if the text is too long for a QR code.
#[cfg(feature = "qr")]
pub fn qr_svg(uri: &SecretString) -> Result<SecretString, InputError> {
    let code = qrcode::QrCode::with_error_correction_level(uri.expose_secret(), qrcode::EcLevel::M)
        .map_err(|_| InputError::KeyUri("too long for a QR code"))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    // The renderer starts with an XML declaration, which has no place inside HTML.
    let svg = match svg.find("<svg") {
        Some(start) => svg.get(start..).unwrap_or_default().to_owned(),
        None => svg,
    };
    Ok(SecretString::new(svg))
}

/// Renders a key URI as a QR code in text, for terminals (two rows per line, Unicode half
/// blocks). The picture encodes the secret: treat it as one.
///
/// # Errors
///
/// [`InputError::KeyUri`] if the text is too long for a QR code.
#[cfg(feature = "qr")]
pub fn qr_text(uri: &SecretString) -> Result<SecretString, InputError> {
    let code = qrcode::QrCode::with_error_correction_level(uri.expose_secret(), qrcode::EcLevel::L)
        .map_err(|_| InputError::KeyUri("too long for a QR code"))?;
    let text = code
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build();
    Ok(SecretString::new(text))
}

fn encode_into(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Percent-decodes `text` (and `+` as space in query values) into UTF-8.
pub(crate) fn decode(text: &str, plus_is_space: bool) -> Result<String, InputError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(InputError::KeyUri("bad percent-encoding"))?;
                out.push(hex);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    let text = String::from_utf8(out).map_err(|_| InputError::KeyUri("not UTF-8 after decoding"))?;
    if text.chars().any(char::is_control) {
        return Err(InputError::KeyUri("control characters"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secret() -> SecretBytes {
        SecretBytes::new(b"12345678901234567890".to_vec())
    }

    #[test]
    fn builds_the_documented_form() {
        let uri = build("ACME Co", "alice@example.com", &secret(), &TotpParams::default());
        assert_eq!(
            uri.expose_secret(),
            "otpauth://totp/ACME%20Co:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn parses_real_world_forms() {
        let i = TotpImport::parse("otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example")
            .unwrap();
        assert_eq!(i.issuer.as_deref(), Some("Example"));
        assert_eq!(i.account.as_deref(), Some("alice@google.com"));
        assert_eq!(i.params, TotpParams::default());
        assert_eq!(i.secret.len(), 10);
        let i = TotpImport::parse("OTPAUTH://TOTP/ACME%20Co%3A%20john.doe%40email.com?SECRET=hxdm vjec jjws rb3h wizr 4ifu gftm xboz&issuer=ACME+Co&algorithm=sha256&digits=8&period=60&image=x").unwrap();
        assert_eq!(i.issuer.as_deref(), Some("ACME Co"));
        assert_eq!(i.account.as_deref(), Some("john.doe@email.com"));
        assert_eq!(i.params, TotpParams::new(Algorithm::Sha256, 8, 60).unwrap());
        let i = TotpImport::parse("otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&issuer=Solo").unwrap();
        assert_eq!(i.issuer.as_deref(), Some("Solo"));
        let i = TotpImport::parse("  jbsw y3dp ehpk 3pxp  ").unwrap();
        assert_eq!(i.account, None);
    }

    #[test]
    fn malformed_uris_name_the_rule() {
        let cases = [
            ("http://totp/a?secret=JBSWY3DPEHPK3PXP", "scheme must be otpauth"),
            (
                "otpauth://hotp/a?secret=JBSWY3DPEHPK3PXP",
                "an hotp URI needs its counter",
            ),
            (
                "otpauth://hotp/a?secret=JBSWY3DPEHPK3PXP&counter=-1",
                "counter must be a number below 2^63",
            ),
            (
                "otpauth://hotp/a?secret=JBSWY3DPEHPK3PXP&counter=1&counter=2",
                "a parameter appears twice",
            ),
            ("otpauth://totq/a?secret=JBSWY3DPEHPK3PXP", "type must be totp or hotp"),
            ("otpauth://totp", "missing label"),
            ("otpauth://totp/a", "missing parameters"),
            ("otpauth://totp/a?issuer=x", "missing secret"),
            ("otpauth://totp/?secret=JBSWY3DPEHPK3PXP", "empty account name"),
            ("otpauth://totp/:a?secret=JBSWY3DPEHPK3PXP", "empty issuer in label"),
            (
                "otpauth://totp/A:a?secret=JBSWY3DPEHPK3PXP&issuer=B",
                "issuer parameter differs from the label's issuer",
            ),
            (
                "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&secret=JBSWY3DPEHPK3PXP",
                "a parameter appears twice",
            ),
            (
                "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&digits",
                "parameter without '='",
            ),
            (
                "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&algorithm=MD5",
                "algorithm must be SHA1, SHA256 or SHA512",
            ),
            (
                "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&digits=six",
                "digits must be a number",
            ),
            (
                "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&digits=10",
                "digits must be 6 to 8 and period 10 to 300 seconds",
            ),
            (
                "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&period=0",
                "digits must be 6 to 8 and period 10 to 300 seconds",
            ),
            (
                "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&period=-1",
                "period must be a number",
            ),
            ("otpauth://totp/a%ZZ?secret=JBSWY3DPEHPK3PXP", "bad percent-encoding"),
            ("otpauth://totp/a%?secret=JBSWY3DPEHPK3PXP", "bad percent-encoding"),
            (
                "otpauth://totp/a%FF?secret=JBSWY3DPEHPK3PXP",
                "not UTF-8 after decoding",
            ),
            ("otpauth://totp/a%0A?secret=JBSWY3DPEHPK3PXP", "control characters"),
        ];
        for (uri, why) in cases {
            assert_eq!(TotpImport::parse(uri).unwrap_err(), InputError::KeyUri(why), "{uri}");
        }
        assert_eq!(
            TotpImport::parse("otpauth://totp/a?secret=JBSWY3DP").unwrap_err(),
            InputError::SecretLength(5)
        );
        assert_eq!(
            TotpImport::parse("otpauth://totp/a?secret=0000000000000000").unwrap_err(),
            InputError::SecretEncoding
        );
        let long = format!("otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&x={}", "a".repeat(3000));
        assert_eq!(
            TotpImport::parse(&long).unwrap_err(),
            InputError::KeyUri("longer than 2048 bytes")
        );
    }

    #[test]
    fn an_issuer_with_a_colon_is_split_by_the_issuer_parameter() {
        const SECRET: &str = "secret=JBSWY3DPEHPK3PXP";
        for uri in [
            format!("otpauth://totp/ACME%3ACorp:alice%40example.com?{SECRET}&issuer=ACME%3ACorp"),
            format!("otpauth://totp/ACME:Corp:alice%40example.com?{SECRET}&issuer=ACME:Corp"),
            format!("otpauth://totp/ACME%3ACorp%3A%20alice%40example.com?{SECRET}&issuer=ACME%3ACorp"),
        ] {
            let i = TotpImport::parse(&uri).unwrap();
            assert_eq!(i.issuer.as_deref(), Some("ACME:Corp"), "{uri}");
            assert_eq!(i.account.as_deref(), Some("alice@example.com"), "{uri}");
        }
        // Without the parameter the first colon ends the issuer (nothing else can tell).
        let i = TotpImport::parse(&format!("otpauth://totp/ACME%3ACorp:alice?{SECRET}")).unwrap();
        assert_eq!(
            (i.issuer.as_deref(), i.account.as_deref()),
            (Some("ACME"), Some("Corp:alice"))
        );
        // A parameter the label does not start with is still a contradiction.
        for uri in [
            format!("otpauth://totp/Other:alice?{SECRET}&issuer=ACME%3ACorp"),
            format!("otpauth://totp/ACME%3ACorpX:alice?{SECRET}&issuer=ACME%3ACorp"),
        ] {
            assert_eq!(
                TotpImport::parse(&uri).unwrap_err(),
                InputError::KeyUri("issuer parameter differs from the label's issuer"),
                "{uri}"
            );
        }
        // The parameter names the issuer; the account after it must not be empty.
        assert_eq!(
            TotpImport::parse(&format!("otpauth://totp/ACME%3ACorp:?{SECRET}&issuer=ACME%3ACorp")).unwrap_err(),
            InputError::KeyUri("empty account name")
        );
    }

    proptest! {
        /// Issuers with `:` (percent-encoded in the label, as `build` writes them) come back whole.
        #[test]
        fn round_trip_with_colons_in_the_issuer(
            issuer in "[^\\p{Cc}]{1,30}".prop_filter("trimmed, non-empty", |s| !s.trim().is_empty() && s.trim() == s),
            account in "[^\\p{Cc}]{1,40}".prop_filter("trimmed, non-empty", |s| !s.trim().is_empty() && s.trim() == s),
        ) {
            let key = vec![7u8; 20];
            let uri = build(&issuer, &account, &SecretBytes::new(key), &TotpParams::default());
            let parsed = TotpImport::parse(uri.expose_secret()).unwrap();
            prop_assert_eq!(parsed.issuer.as_deref(), Some(issuer.as_str()));
            prop_assert_eq!(parsed.account.as_deref(), Some(account.as_str()));
        }

        #[test]
        fn round_trip(
            issuer in "[^:\\p{Cc}]{1,30}".prop_filter("trimmed, non-empty", |s| !s.trim().is_empty() && s.trim() == s),
            account in "[^\\p{Cc}]{1,40}".prop_filter("trimmed, non-empty", |s| !s.trim().is_empty() && s.trim() == s),
            key in proptest::collection::vec(any::<u8>(), 10..=64),
            alg in prop_oneof![Just(Algorithm::Sha1), Just(Algorithm::Sha256), Just(Algorithm::Sha512)],
            digits in 6u32..=8,
            period in 10u64..=300,
        ) {
            let params = TotpParams::new(alg, digits, period).unwrap();
            let uri = build(&issuer, &account, &SecretBytes::new(key.clone()), &params);
            let parsed = TotpImport::parse(uri.expose_secret()).unwrap();
            prop_assert_eq!(parsed.secret.expose_secret(), &key[..]);
            prop_assert_eq!(parsed.params, params);
            prop_assert_eq!(parsed.issuer.as_deref(), Some(issuer.as_str()));
            prop_assert_eq!(parsed.account.as_deref(), Some(account.as_str()));
        }

        #[test]
        fn arbitrary_input_never_panics(input in ".{0,300}") {
            let _ = TotpImport::parse(&input);
            let _ = TotpImport::parse(&format!("otpauth://totp/{input}"));
            let _ = TotpImport::parse(&format!("otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&{input}"));
        }
    }
}
