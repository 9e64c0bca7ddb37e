//! Line formats: `USER otpauth://...`, `USER otpauth-migration://...` (Google Authenticator's
//! transfer QR codes), and Authelia's `export uri` (the user is the label's account).

use super::{ImportBatch, ImportItem};
use crate::totp::uri::TotpImport;

/// The non-blank, non-comment lines with their 1-based numbers.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

/// `USER URI`: the user, then whitespace, then the rest.
fn user_and_rest(line: &str) -> Option<(&str, &str)> {
    let (user, rest) = line.split_once(char::is_whitespace)?;
    Some((user, rest.trim())).filter(|(_, r)| !r.is_empty())
}

pub(super) fn otpauth_lines(text: &str, batch: &mut ImportBatch) {
    for (n, line) in lines(text) {
        let Some((user, uri)) = user_and_rest(line) else {
            batch.problem(n, None, "expected `USER otpauth://totp/...`");
            continue;
        };
        if !uri.get(..10).is_some_and(|p| p.eq_ignore_ascii_case("otpauth://")) {
            batch.problem(n, Some(user), "expected an otpauth:// URI after the user");
            continue;
        }
        match TotpImport::parse(uri) {
            Ok(import) => batch.entry(n, user, None, ImportItem::Totp(import)),
            Err(e) => batch.problem(n, Some(user), e),
        }
    }
}

pub(super) fn google_lines(text: &str, batch: &mut ImportBatch) {
    for (n, line) in lines(text) {
        let Some((user, uri)) = user_and_rest(line) else {
            batch.problem(n, None, "expected `USER otpauth-migration://offline?data=...`");
            continue;
        };
        match TotpImport::parse_migration(uri) {
            Ok(accounts) => {
                for (i, account) in accounts.into_iter().enumerate() {
                    match account {
                        Ok(import) => batch.entry(n, user, None, ImportItem::Totp(import)),
                        Err(e) => batch.problem(n, Some(user), format!("account {}: {e}", i + 1)),
                    }
                }
            }
            Err(e) => batch.problem(n, Some(user), e),
        }
    }
}

pub(super) fn authelia_uris(text: &str, batch: &mut ImportBatch) {
    for (n, line) in lines(text) {
        match TotpImport::parse(line) {
            // Authelia has no counter-based codes: such a line is not from its export.
            Ok(import) if import.params.is_counter_based() => {
                batch.problem(n, None, "an hotp URI: Authelia exports only totp")
            }
            Ok(import) => match (&import.issuer, import.account.clone()) {
                (Some(_), Some(user)) => batch.entry(n, &user, None, ImportItem::Totp(import)),
                _ => batch.problem(
                    n,
                    None,
                    "expected Authelia's label Issuer:username (the username is the user)",
                ),
            },
            Err(e) => batch.problem(n, None, e),
        }
    }
}
