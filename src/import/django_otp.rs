//! django-otp 1.x (`plugins/otp_totp/models.py`, `plugins/otp_hotp/models.py`,
//! `plugins/otp_static/models.py`) and authentik,
//! whose TOTP and static-token stages keep the same models under its own table names. The
//! manual has the queries that produce these files.
//!
//! Static tokens are plaintext there: django-otp's are 8 characters of lower-case base32
//! (`b32encode(urandom(5))`), authentik's `generate_id(token_length)` letters and digits (12 by
//! default). Here they become one backup-code set per user, hashed; a used token is deleted
//! there, so every imported one is unused.

use super::{ImportBatch, ImportItem, ImportedCodes, csv_rows};
use crate::error::InputError;
use crate::secret::SecretBytes;
use crate::totp::uri::TotpImport;
use crate::totp::{Algorithm, MAX_SECRET_BYTES, MIN_IMPORT_SECRET_BYTES, TotpParams};

/// `username,key,step,t0,digits,last_t[,name]`.
pub(super) fn totp(text: &str, batch: &mut ImportBatch) {
    csv_rows(
        text,
        batch,
        &["username", "key", "step", "t0", "digits", "last_t"],
        &["name"],
        |batch, n, row| {
            let user = row.get("username");
            let read = || -> Result<TotpImport, String> {
                let parsed = DjangoOtpTotpRow {
                    key: row.get("key"),
                    step: row.number("step")?,
                    t0: row.number("t0")?,
                    digits: row.number("digits")?,
                    last_t: row.number("last_t")?,
                };
                TotpImport::from_django_otp(&parsed).map_err(|e| match e {
                    crate::error::InputError::SecretEncoding => "key is not hexadecimal".to_owned(),
                    e => e.to_string(),
                })
            };
            match read() {
                Ok(import) => batch.entry(n, user, Some(row.get("name")), ImportItem::Totp(import)),
                Err(reason) => batch.problem(n, Some(user).filter(|u| !u.is_empty()), reason),
            }
        },
    );
}

/// `username,key,digits,counter[,name]`.
pub(super) fn hotp(text: &str, batch: &mut ImportBatch) {
    csv_rows(
        text,
        batch,
        &["username", "key", "digits", "counter"],
        &["name"],
        |batch, n, row| {
            let user = row.get("username");
            let read = || -> Result<TotpImport, String> {
                let parsed = DjangoOtpHotpRow {
                    key: row.get("key"),
                    digits: row.number("digits")?,
                    counter: row.number("counter")?,
                };
                TotpImport::from_django_otp_hotp(&parsed).map_err(|e| match e {
                    crate::error::InputError::SecretEncoding => "key is not hexadecimal".to_owned(),
                    e => e.to_string(),
                })
            };
            match read() {
                Ok(import) => batch.entry(n, user, Some(row.get("name")), ImportItem::Totp(import)),
                Err(reason) => batch.problem(n, Some(user).filter(|u| !u.is_empty()), reason),
            }
        },
    );
}

/// `username,token[,name]`: every user's tokens, wherever they are in the file, become one set
/// (reported on the line of the user's first token).
pub(super) fn static_tokens(text: &str, batch: &mut ImportBatch) {
    // In the order of each user's first line; the map finds a user's set in constant time.
    let mut users: Vec<(usize, String, String, Vec<String>)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    csv_rows(text, batch, &["username", "token"], &["name"], |batch, n, row| {
        let user = row.get("username");
        let token = row.get("token");
        if token.is_empty() {
            batch.problem(n, Some(user).filter(|u| !u.is_empty()), "the token is empty");
            return;
        }
        match index.get(user).and_then(|&i| users.get_mut(i)) {
            Some((_, _, _, tokens)) => tokens.push(token.to_owned()),
            None => {
                index.insert(user.to_owned(), users.len());
                users.push((n, user.to_owned(), row.get("name").to_owned(), vec![token.to_owned()]));
            }
        }
    });
    for (n, user, name, tokens) in users {
        let codes = ImportedCodes::new(tokens);
        if let Err(e) = crate::backup_codes::check_imported(&codes.as_strs()) {
            batch.problem(n, Some(&user), e);
            continue;
        }
        let name = Some(name.as_str()).filter(|n| !n.is_empty());
        batch.entry(n, &user, name, ImportItem::BackupCodes(codes));
    }
}

// django-otp's `TOTPDevice` rows (`django_otp/plugins/otp_totp/models.py`, django-otp 1.x),
// which authentik keeps too (`authentik/stages/authenticator_totp/models.py` subclasses the same
// model): `key` is the secret in hex (20 random bytes by default, up to 40), `step` the period
// in seconds (30), `t0` the Unix time steps count from (0), `digits` 6 or 8, and `last_t` the
// step of the last accepted token (-1 before the first). django-otp always uses HMAC-SHA1;
// `tolerance` and `drift` are its verification window and are not carried over (ours is
// configured on the service).

/// One `otp_totp_totpdevice` row (the columns an import needs), as read from the old database.
#[derive(Clone, Copy)]
pub struct DjangoOtpTotpRow<'a> {
    /// `key`: the secret, hex-encoded.
    pub key: &'a str,
    /// `step`: seconds per step.
    pub step: u64,
    /// `t0`: the Unix time steps count from.
    pub t0: i64,
    /// `digits`: 6 or 8.
    pub digits: u32,
    /// `last_t`: the step of the last accepted token, -1 if none.
    pub last_t: i64,
}

impl std::fmt::Debug for DjangoOtpTotpRow<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DjangoOtpTotpRow")
            .field("key", &"<redacted>")
            .field("step", &self.step)
            .field("t0", &self.t0)
            .field("digits", &self.digits)
            .field("last_t", &self.last_t)
            .finish()
    }
}

/// One `otp_hotp_hotpdevice` row (django-otp's `HOTPDevice`): `key` the secret in hex,
/// `digits` 6 or 8, and `counter` the counter the next token is made with (django-otp stores the
/// matched counter plus 1). `tolerance` is its look-ahead window and is not carried over (ours
/// is configured on the service).
#[derive(Clone, Copy)]
pub struct DjangoOtpHotpRow<'a> {
    /// `key`: the secret, hex-encoded.
    pub key: &'a str,
    /// `digits`: 6 or 8.
    pub digits: u32,
    /// `counter`: the next counter value.
    pub counter: u64,
}

impl std::fmt::Debug for DjangoOtpHotpRow<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DjangoOtpHotpRow")
            .field("key", &"<redacted>")
            .field("digits", &self.digits)
            .field("counter", &self.counter)
            .finish()
    }
}

impl TotpImport {
    /// A django-otp `HOTPDevice` row, ready to import: its secret, SHA1 with its digits, and
    /// its counter, so the tokens the old system accepted stay spent.
    ///
    /// # Errors
    ///
    /// [`InputError::SecretEncoding`] for a key that is not hex, [`InputError::SecretLength`]
    /// for one outside 10..=64 bytes, [`InputError::KeyUri`] for a digit count this crate does
    /// not take.
    pub fn from_django_otp_hotp(row: &DjangoOtpHotpRow<'_>) -> Result<Self, InputError> {
        let secret = decode_hex(row.key.trim())?;
        if !(MIN_IMPORT_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&secret.len()) {
            return Err(InputError::SecretLength(secret.len()));
        }
        let params =
            TotpParams::hotp(Algorithm::Sha1, row.digits).map_err(|_| InputError::KeyUri("digits must be 6 to 8"))?;
        Ok(Self {
            secret,
            params,
            issuer: None,
            account: None,
            last_step: crate::totp::storable_counter(row.counter)
                .ok_or(InputError::KeyUri("counter must be below 2^63"))?
                .checked_sub(1),
        })
    }

    /// A django-otp (or authentik) `TOTPDevice` row, ready to import: its secret, SHA1 with its
    /// digits and step, and its last accepted step as the replay mark, so a code the old system
    /// accepted is not accepted again here.
    ///
    /// # Errors
    ///
    /// [`InputError::SecretEncoding`] for a key that is not hex, [`InputError::SecretLength`]
    /// for one outside 10..=64 bytes, [`InputError::KeyUri`] for a `t0` other than 0 (steps
    /// here count from the Unix epoch), a step or digit count this crate does not take, or a
    /// `last_t` below -1.
    pub fn from_django_otp(row: &DjangoOtpTotpRow<'_>) -> Result<Self, InputError> {
        let secret = decode_hex(row.key.trim())?;
        if !(MIN_IMPORT_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&secret.len()) {
            return Err(InputError::SecretLength(secret.len()));
        }
        if row.t0 != 0 {
            return Err(InputError::KeyUri(
                "t0 other than 0 is not supported (steps count from 1970)",
            ));
        }
        let params = TotpParams::new(Algorithm::Sha1, row.digits, row.step)
            .map_err(|_| InputError::KeyUri("digits must be 6 to 8 and step 10 to 300 seconds"))?;
        let last_step = match row.last_t {
            -1 => None,
            t => Some(u64::try_from(t).map_err(|_| InputError::KeyUri("last_t must be -1 or a step"))?),
        };
        Ok(Self {
            secret,
            params,
            issuer: None,
            account: None,
            last_step,
        })
    }
}

/// Hex (either case) to bytes, without leaving a copy outside the secret.
fn decode_hex(text: &str) -> Result<SecretBytes, InputError> {
    if !text.len().is_multiple_of(2) || text.len() > 2 * MAX_SECRET_BYTES {
        return Err(if text.len().is_multiple_of(2) {
            InputError::SecretLength(text.len() / 2)
        } else {
            InputError::SecretEncoding
        });
    }
    let digit = |c: u8| char::from(c).to_digit(16).ok_or(InputError::SecretEncoding);
    let mut out = vec![0u8; text.len() / 2];
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        if let [hi, lo] = pair {
            *byte = u8::try_from(digit(*hi)? * 16 + digit(*lo)?).map_err(|_| InputError::SecretEncoding)?;
        }
    }
    Ok(SecretBytes::new(out))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use proptest::prelude::*;

    use super::*;
    use crate::clock::UnixTime;

    fn row(key: &str) -> DjangoOtpTotpRow<'_> {
        DjangoOtpTotpRow {
            key,
            step: 30,
            t0: 0,
            digits: 6,
            last_t: -1,
        }
    }

    /// RFC 6238 Appendix B's SHA1 seed ("12345678901234567890") as django-otp stores it.
    const RFC_KEY: &str = "3132333435363738393031323334353637383930";

    #[test]
    fn a_row_gives_the_rfc_6238_codes() {
        let import = TotpImport::from_django_otp(&DjangoOtpTotpRow {
            digits: 8,
            ..row(RFC_KEY)
        })
        .unwrap();
        assert_eq!(import.secret.expose_secret(), b"12345678901234567890");
        assert_eq!(import.params, TotpParams::new(Algorithm::Sha1, 8, 30).unwrap());
        assert_eq!(import.last_step, None);
        for (t, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (2_000_000_000, "69279037"),
        ] {
            let got = crate::totp::code_at(&import.secret, &import.params, UnixTime::from_secs(t));
            assert_eq!(got.expose_secret(), code, "T = {t}");
        }
        // Upper-case hex and surrounding spaces, as a database dump may have them.
        let upper = TotpImport::from_django_otp(&row(&format!(" {} ", RFC_KEY.to_uppercase()))).unwrap();
        assert_eq!(upper.secret.expose_secret(), b"12345678901234567890");
    }

    #[test]
    fn the_last_accepted_step_is_carried_over() {
        let import = TotpImport::from_django_otp(&DjangoOtpTotpRow {
            last_t: 59_000_000,
            ..row(RFC_KEY)
        })
        .unwrap();
        assert_eq!(import.last_step, Some(59_000_000));
        let import = TotpImport::from_django_otp(&DjangoOtpTotpRow {
            last_t: 0,
            ..row(RFC_KEY)
        })
        .unwrap();
        assert_eq!(import.last_step, Some(0));
    }

    #[test]
    fn hostile_rows_name_the_rule() {
        let long = "ab".repeat(65);
        let cases: [(DjangoOtpTotpRow<'_>, InputError); 9] = [
            (row("not hex at all!!!!!!"), InputError::SecretEncoding),
            (row("313"), InputError::SecretEncoding),
            (
                row("31323334353637383930313233343536373839zz"),
                InputError::SecretEncoding,
            ),
            (row("313233343536373839"), InputError::SecretLength(9)),
            (row("3132333435363738"), InputError::SecretLength(8)),
            (row(&long), InputError::SecretLength(65)),
            (
                DjangoOtpTotpRow { t0: 1, ..row(RFC_KEY) },
                InputError::KeyUri("t0 other than 0 is not supported (steps count from 1970)"),
            ),
            (
                DjangoOtpTotpRow {
                    step: 0,
                    ..row(RFC_KEY)
                },
                InputError::KeyUri("digits must be 6 to 8 and step 10 to 300 seconds"),
            ),
            (
                DjangoOtpTotpRow {
                    last_t: -2,
                    ..row(RFC_KEY)
                },
                InputError::KeyUri("last_t must be -1 or a step"),
            ),
        ];
        for (bad, why) in cases {
            assert_eq!(TotpImport::from_django_otp(&bad).unwrap_err(), why, "{bad:?}");
        }
        assert_eq!(
            TotpImport::from_django_otp(&DjangoOtpTotpRow {
                digits: 9,
                ..row(RFC_KEY)
            })
            .unwrap_err(),
            InputError::KeyUri("digits must be 6 to 8 and step 10 to 300 seconds")
        );
        // The key never shows in a row's Debug.
        assert!(!format!("{:?}", row(RFC_KEY)).contains("3132"));
    }

    proptest! {
        #[test]
        fn hex_round_trips(key in proptest::collection::vec(any::<u8>(), 10..=64)) {
            let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
            let import = TotpImport::from_django_otp(&row(&hex)).unwrap();
            prop_assert_eq!(import.secret.expose_secret(), &key[..]);
        }

        #[test]
        fn arbitrary_keys_never_panic(key in ".{0,200}", step in any::<u64>(), t0 in any::<i64>(), digits in any::<u32>(), last_t in any::<i64>()) {
            let _ = TotpImport::from_django_otp(&DjangoOtpTotpRow { key: &key, step, t0, digits, last_t });
        }
    }
}
