//! Authelia 4.38/4.39 `authelia storage user totp export csv`
//! (`internal/commands/storage_run.go`): the header `issuer,username,algorithm,digits,period,secret`
//! and rows written with `%s,%s,%s,%d,%d,%s` (no quoting), the secret unpadded base32.

use super::{ImportBatch, ImportItem, csv_rows};
use crate::totp::uri::TotpImport;
use crate::totp::{Algorithm, TotpParams, decode_base32_secret};

pub(super) fn csv(text: &str, batch: &mut ImportBatch) {
    csv_rows(
        text,
        batch,
        &["issuer", "username", "algorithm", "digits", "period", "secret"],
        &[],
        |batch, n, row| {
            let user = row.get("username");
            let read = || -> Result<TotpImport, String> {
                let algorithm = match row.get("algorithm").to_ascii_uppercase().as_str() {
                    "SHA1" => Algorithm::Sha1,
                    "SHA256" => Algorithm::Sha256,
                    "SHA512" => Algorithm::Sha512,
                    _ => return Err("algorithm must be SHA1, SHA256 or SHA512".into()),
                };
                let params = TotpParams::new(algorithm, row.number("digits")?, row.number("period")?)
                    .map_err(|e| e.to_string())?;
                let secret = decode_base32_secret(row.get("secret")).map_err(|e| e.to_string())?;
                let issuer = Some(row.get("issuer")).filter(|i| !i.is_empty()).map(str::to_owned);
                TotpImport::from_parts(secret, params, issuer, Some(user.to_owned()), None).map_err(|e| e.to_string())
            };
            match read() {
                Ok(import) => batch.entry(n, user, None, ImportItem::Totp(import)),
                Err(reason) => batch.problem(n, Some(user).filter(|u| !u.is_empty()), reason),
            }
        },
    );
}
