//! Google Authenticator's export: `otpauth-migration://offline?data=…`, where `data` is
//! percent-encoded standard base64 of a protobuf `MigrationPayload` holding several accounts
//! (a large export spans several QR codes, each a payload of its own).
//!
//! The message layout follows the reconstructed schema the exporters' readers share: Aegis's
//! `app/src/main/proto/google_auth.proto` and qistoph/otp_export's `OtpMigration.proto`
//! (`MigrationPayload { repeated OtpParameters otp_parameters = 1; version = 2; batch_size = 3;
//! batch_index = 4; batch_id = 5 }`, `OtpParameters { bytes secret = 1; string name = 2; string
//! issuer = 3; Algorithm algorithm = 4; DigitCount digits = 5; OtpType type = 6; int64 counter =
//! 7 }`, with `ALGORITHM_UNSPECIFIED = 0, SHA1 = 1, SHA256 = 2, SHA512 = 3, MD5 = 4`,
//! `DIGIT_COUNT_UNSPECIFIED = 0, SIX = 1, EIGHT = 2` and `OTP_TYPE_UNSPECIFIED = 0, HOTP = 1,
//! TOTP = 2`; unspecified means SHA1, six digits and TOTP). Google Authenticator's codes are
//! always 30-second codes: the payload has no period.

use base64::Engine as _;
use prost::Message as _;
use zeroize::{Zeroize, Zeroizing};

use crate::error::InputError;
use crate::secret::SecretBytes;
use crate::totp::uri::{TotpImport, decode, split_label};
use crate::totp::{Algorithm, MAX_SECRET_BYTES, MIN_IMPORT_SECRET_BYTES, TotpParams};

/// The longest export accepted (a QR code holds at most about 3 KB).
const MAX_URI_BYTES: usize = 8 * 1024;

#[derive(Clone, PartialEq, prost::Message)]
struct Payload {
    #[prost(message, repeated, tag = "1")]
    otp_parameters: Vec<OtpParameters>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct OtpParameters {
    #[prost(bytes = "vec", tag = "1")]
    secret: Vec<u8>,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(string, tag = "3")]
    issuer: String,
    #[prost(int32, tag = "4")]
    algorithm: i32,
    #[prost(int32, tag = "5")]
    digits: i32,
    #[prost(int32, tag = "6")]
    otp_type: i32,
    #[prost(int64, tag = "7")]
    counter: i64,
}

impl Drop for OtpParameters {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl TotpImport {
    /// Parses a Google Authenticator export (`otpauth-migration://offline?data=…`): one entry
    /// per account in the payload, in its order, each the account ready to import or why it
    /// cannot be (MD5, a secret of the wrong length, an account name that is missing or
    /// contradicts its issuer). A counter-based (HOTP) account keeps its counter: the app
    /// raises it before it makes a code, so the exported counter is the last code's, which
    /// counts as used. Nothing in an error names the secret.
    ///
    /// # Errors
    ///
    /// [`InputError::MigrationPayload`] for the payload as a whole: not an `otpauth-migration`
    /// URI, no `data`, not base64, not a migration payload, or no account in it.
    pub fn parse_migration(uri: &str) -> Result<Vec<Result<Self, InputError>>, InputError> {
        use InputError::MigrationPayload as Bad;
        let uri = uri.trim();
        if uri.len() > MAX_URI_BYTES {
            return Err(Bad("longer than 8 KiB"));
        }
        const SCHEME: &str = "otpauth-migration://";
        let rest = uri
            .get(..SCHEME.len())
            .filter(|p| p.eq_ignore_ascii_case(SCHEME))
            .and_then(|_| uri.get(SCHEME.len()..))
            .ok_or(Bad("scheme must be otpauth-migration"))?;
        let query = rest
            .split_once('?')
            .filter(|(host, _)| host.eq_ignore_ascii_case("offline"))
            .map(|(_, q)| q)
            .ok_or(Bad("expected otpauth-migration://offline?data=…"))?;
        let data = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("data="))
            .ok_or(Bad("missing data"))?;
        // `+` is base64 here, never a space.
        let data = Zeroizing::new(decode(data, false).map_err(|_| Bad("data is not percent-encoded"))?);
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let bytes = Zeroizing::new(engine.decode(data.trim()).map_err(|_| Bad("data is not base64"))?);
        let payload = Payload::decode(bytes.as_slice()).map_err(|_| Bad("data is not a migration payload"))?;
        if payload.otp_parameters.is_empty() {
            return Err(Bad("no account in the payload"));
        }
        Ok(payload.otp_parameters.iter().map(account).collect())
    }
}

/// One account of the payload, checked as an imported key URI would be.
fn account(p: &OtpParameters) -> Result<TotpImport, InputError> {
    use InputError::MigrationPayload as Bad;
    let counter_based = match p.otp_type {
        0 | 2 => false,
        1 => true,
        _ => return Err(Bad("unknown OTP type")),
    };
    let algorithm = match p.algorithm {
        0 | 1 => Algorithm::Sha1,
        2 => Algorithm::Sha256,
        3 => Algorithm::Sha512,
        4 => return Err(Bad("MD5 is not supported")),
        _ => return Err(Bad("unknown algorithm")),
    };
    let digits = match p.digits {
        0 | 1 => 6,
        2 => 8,
        _ => return Err(Bad("unknown digit count")),
    };
    if !(MIN_IMPORT_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&p.secret.len()) {
        return Err(InputError::SecretLength(p.secret.len()));
    }
    let issuer = p.issuer.trim();
    let (label_issuer, name) = split_label(&p.name, Some(issuer).filter(|i| !i.is_empty()));
    let (label_issuer, name) = (label_issuer.map(str::trim), name.trim());
    if name.is_empty() || name.chars().any(char::is_control) || issuer.chars().any(char::is_control) {
        return Err(Bad("an account needs a name without control characters"));
    }
    let issuer = match (label_issuer, issuer) {
        (Some(a), b) if !b.is_empty() && a != b => return Err(Bad("the name's issuer differs from the issuer")),
        (Some(a), _) if !a.is_empty() => Some(a.to_owned()),
        (_, b) if !b.is_empty() => Some(b.to_owned()),
        _ => None,
    };
    let (params, last_step) = if counter_based {
        let counter = u64::try_from(p.counter).map_err(|_| Bad("a negative HOTP counter"))?;
        let params = TotpParams::hotp(algorithm, digits).map_err(|_| Bad("unsupported parameters"))?;
        let counter = crate::totp::storable_counter(counter).ok_or(Bad("an HOTP counter beyond 2^63"))?;
        // 0: the app has shown no code yet.
        (params, (counter > 0).then_some(counter))
    } else {
        let params = TotpParams::new(algorithm, digits, 30).map_err(|_| Bad("unsupported parameters"))?;
        (params, None)
    };
    Ok(TotpImport {
        secret: SecretBytes::new(p.secret.clone()),
        params,
        issuer,
        account: Some(name.to_owned()),
        last_step,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use proptest::prelude::*;

    use super::*;

    /// Protobuf by hand (not by the same library that decodes it): a length-delimited field.
    fn field(tag: u8, bytes: &[u8]) -> Vec<u8> {
        assert!(bytes.len() < 128, "one-byte lengths only");
        let mut out = vec![(tag << 3) | 2, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    /// A varint field (values below 128).
    fn number(tag: u8, value: u8) -> Vec<u8> {
        vec![tag << 3, value]
    }

    fn parameters(secret: &[u8], name: &str, issuer: &str, algorithm: u8, digits: u8, kind: u8) -> Vec<u8> {
        let mut p = field(1, secret);
        p.extend(field(2, name.as_bytes()));
        if !issuer.is_empty() {
            p.extend(field(3, issuer.as_bytes()));
        }
        p.extend(number(4, algorithm));
        p.extend(number(5, digits));
        p.extend(number(6, kind));
        p
    }

    fn uri(accounts: &[Vec<u8>]) -> String {
        let mut payload = Vec::new();
        for a in accounts {
            payload.extend(field(1, a));
        }
        payload.extend(number(2, 1)); // version
        payload.extend(number(3, 1)); // batch size
        let data = base64::engine::general_purpose::STANDARD.encode(&payload);
        let data = data.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
        format!("otpauth-migration://offline?data={data}")
    }

    const SECRET1: &[u8] = b"Hello!\xde\xad\xbe\xef\x00\x01"; // 12 bytes
    const SECRET2: &[u8] = &[0x42; 20];

    #[test]
    fn several_accounts_in_one_payload() {
        let input = uri(&[
            parameters(SECRET1, "Example:alice@google.com", "Example", 1, 1, 2),
            parameters(SECRET2, "bob@example.com", "ACME:Corp", 2, 2, 2),
            parameters(SECRET2, "ACME:Corp:carol", "ACME:Corp", 0, 0, 0),
            parameters(SECRET2, "dave", "", 3, 1, 2),
        ]);
        let got = TotpImport::parse_migration(&input).unwrap();
        assert_eq!(got.len(), 4);
        let a = got[0].as_ref().unwrap();
        assert_eq!(a.secret.expose_secret(), SECRET1);
        assert_eq!(a.params, TotpParams::default());
        assert_eq!(
            (a.issuer.as_deref(), a.account.as_deref()),
            (Some("Example"), Some("alice@google.com"))
        );
        let b = got[1].as_ref().unwrap();
        assert_eq!(b.params, TotpParams::new(Algorithm::Sha256, 8, 30).unwrap());
        assert_eq!(
            (b.issuer.as_deref(), b.account.as_deref()),
            (Some("ACME:Corp"), Some("bob@example.com"))
        );
        // Unspecified algorithm, digits and type are SHA1, six, TOTP; an issuer with a colon is
        // split off the name by the issuer field.
        let c = got[2].as_ref().unwrap();
        assert_eq!(c.params, TotpParams::default());
        assert_eq!(
            (c.issuer.as_deref(), c.account.as_deref()),
            (Some("ACME:Corp"), Some("carol"))
        );
        let d = got[3].as_ref().unwrap();
        assert_eq!(d.params, TotpParams::new(Algorithm::Sha512, 6, 30).unwrap());
        assert_eq!((d.issuer.as_deref(), d.account.as_deref()), (None, Some("dave")));
    }

    /// A counter-based account keeps its counter (the app raises it before each code, so it is
    /// the last code's, which is spent); a counter of 0 (absent) means no code was made yet.
    #[test]
    fn hotp_accounts_carry_their_counter() {
        let mut with_counter = parameters(SECRET2, "X:hotp", "X", 2, 2, 1);
        with_counter.extend(number(7, 42));
        let input = uri(&[with_counter, parameters(SECRET2, "X:new", "X", 1, 1, 1)]);
        let got = TotpImport::parse_migration(&input).unwrap();
        let a = got[0].as_ref().unwrap();
        assert_eq!(a.params, TotpParams::hotp(Algorithm::Sha256, 8).unwrap());
        assert_eq!(a.last_step, Some(42), "the app's last code was made with 42");
        let b = got[1].as_ref().unwrap();
        assert!(b.params.is_counter_based());
        assert_eq!(b.last_step, None);
    }

    #[test]
    fn each_bad_account_says_why_and_the_others_still_import() {
        let input = uri(&[
            parameters(SECRET2, "kind", "X", 1, 1, 3),
            parameters(SECRET2, "md5", "X", 4, 1, 2),
            parameters(&[1; 9], "short", "X", 1, 1, 2),
            parameters(SECRET2, "  ", "X", 1, 1, 2),
            parameters(SECRET2, "Other:eve", "X", 1, 1, 2),
            parameters(SECRET2, "digits", "X", 1, 3, 2),
            parameters(SECRET2, "fine", "X", 1, 1, 2),
        ]);
        let got = TotpImport::parse_migration(&input).unwrap();
        let errors: Vec<String> = got
            .iter()
            .map(|r| r.as_ref().map_or_else(ToString::to_string, |_| "ok".into()))
            .collect();
        assert_eq!(
            errors,
            [
                "Google Authenticator export: unknown OTP type",
                "Google Authenticator export: MD5 is not supported",
                "secret must be 10..=64 bytes (80 to 512 bits), got 9 bytes",
                "Google Authenticator export: an account needs a name without control characters",
                "Google Authenticator export: the name's issuer differs from the issuer",
                "Google Authenticator export: unknown digit count",
                "ok",
            ]
        );
    }

    #[test]
    fn malformed_payloads_name_the_rule() {
        use InputError::MigrationPayload as Bad;
        let one = parameters(SECRET2, "a", "b", 1, 1, 2);
        for (input, why) in [
            (
                "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP".to_owned(),
                "scheme must be otpauth-migration",
            ),
            (
                "otpauth-migration://online?data=AA".to_owned(),
                "expected otpauth-migration://offline?data=…",
            ),
            ("otpauth-migration://offline?x=1".to_owned(), "missing data"),
            (
                "otpauth-migration://offline?data=%zz".to_owned(),
                "data is not percent-encoded",
            ),
            ("otpauth-migration://offline?data=!!!".to_owned(), "data is not base64"),
            (
                "otpauth-migration://offline?data=CgE%3D".to_owned(),
                "data is not a migration payload",
            ),
            (
                "otpauth-migration://offline?data=EAE%3D".to_owned(),
                "no account in the payload",
            ),
            (format!("{}{}", uri(&[one]), "A".repeat(9000)), "longer than 8 KiB"),
        ] {
            assert_eq!(
                TotpImport::parse_migration(&input).unwrap_err(),
                Bad(why),
                "{input:.80}"
            );
        }
        // Case-insensitive scheme, padding optional, other parameters ignored.
        let good = uri(&[parameters(SECRET2, "a", "b", 1, 1, 2)]);
        let upper = good.replacen("otpauth-migration", "OTPAUTH-MIGRATION", 1);
        let unpadded = good.trim_end_matches("%3D").to_owned();
        for input in [upper, unpadded, format!("{good}&extra=1")] {
            assert_eq!(TotpImport::parse_migration(&input).unwrap().len(), 1, "{input}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(input in ".{0,400}", data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = TotpImport::parse_migration(&input);
            let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
            let _ = TotpImport::parse_migration(&format!("otpauth-migration://offline?data={encoded}"));
        }
    }
}
