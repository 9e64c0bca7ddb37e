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
use crate::totp::uri::TotpImport;
use crate::totp::{DjangoOtpHotpRow, DjangoOtpTotpRow};

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
