//! Ory Kratos identities (v1.x), as its admin API returns them with their credentials
//! (`GET /admin/identities?include_credential=totp&include_credential=lookup_secret&include_credential=webauthn&include_credential=passkey`,
//! `identity/credentials_*.go`): one identity JSON object per line (`jq -c '.[]'` of the list).
//! The user is the identity's `id`.
//!
//! - `totp`: `config.totp_url` is the key URI (Kratos keeps no replay mark).
//! - `lookup_secret`: `config.recovery_codes` is `[{"code": ..., "used_at": ...}]`, plaintext
//!   (8 lower-case letters and digits each); the unused ones become one backup-code set.
//! - `webauthn` and `passkey`: `config.credentials` is a list of go-webauthn credentials, `id`
//!   and `public_key` (COSE) as standard base64, `authenticator.aaguid` and `sign_count`,
//!   `is_passwordless`, `flags.backup_eligible`/`backup_state`, `transport`, `display_name`;
//!   `config.user_handle` (standard base64) is the user handle they were registered under.
//!   `passkey` credentials, and `webauthn` ones with `is_passwordless`, are passkeys.
//!
//! Other credential types (password, oidc, code, saml, ...) are not MFA devices and are not
//! read.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ExportedCredential, WebAuthnImport};
use super::{ImportBatch, ImportItem, ImportedCodes};
use crate::totp::uri::TotpImport;

#[derive(Deserialize)]
struct Identity {
    id: String,
    #[serde(default)]
    credentials: BTreeMap<String, Credential>,
}

#[derive(Deserialize)]
struct Credential {
    #[serde(default)]
    config: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct TotpCredential {
    totp_url: String,
}

impl Drop for TotpCredential {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.totp_url);
    }
}

#[derive(Deserialize)]
struct LookupConfig {
    recovery_codes: Vec<RecoveryCode>,
}

#[derive(Deserialize)]
struct RecoveryCode {
    code: String,
    #[serde(default)]
    used_at: Option<String>,
}

impl Drop for RecoveryCode {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.code);
    }
}

#[derive(Deserialize)]
struct WebAuthnConfig {
    #[serde(default)]
    credentials: Vec<WebAuthnCredential>,
    #[serde(default)]
    user_handle: Option<String>,
}

#[derive(Deserialize)]
struct WebAuthnCredential {
    id: String,
    public_key: String,
    #[serde(default)]
    authenticator: Option<Authenticator>,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    is_passwordless: bool,
    #[serde(default)]
    flags: Option<Flags>,
    #[serde(default)]
    transport: Vec<String>,
}

#[derive(Deserialize)]
struct Authenticator {
    #[serde(default)]
    aaguid: Option<String>,
    #[serde(default)]
    sign_count: u32,
}

#[derive(Deserialize)]
struct Flags {
    #[serde(default)]
    backup_eligible: bool,
    #[serde(default)]
    backup_state: bool,
}

pub(super) fn identities(text: &str, batch: &mut ImportBatch) {
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let identity = match serde_json::from_str::<Identity>(line) {
            Ok(identity) if !identity.id.trim().is_empty() => identity,
            Ok(_) => {
                batch.problem(n, None, "the identity's id is empty");
                continue;
            }
            Err(_) => {
                batch.problem(
                    n,
                    None,
                    "expected a Kratos identity ({\"id\", \"credentials\", ...}) on one line",
                );
                continue;
            }
        };
        let user = identity.id.as_str();
        for (kind, credential) in &identity.credentials {
            let config = credential.config.as_ref().filter(|c| !c.is_null());
            match kind.as_str() {
                "totp" => match totp(config) {
                    Ok(import) => batch.entry(n, user, None, ImportItem::Totp(import)),
                    Err(reason) => batch.problem(n, Some(user), format!("totp: {reason}")),
                },
                "lookup_secret" => match lookup(config) {
                    Ok(Some(codes)) => batch.entry(n, user, None, ImportItem::BackupCodes(codes)),
                    // Every code used: nothing to carry over (the user makes a new set).
                    Ok(None) => {}
                    Err(reason) => batch.problem(n, Some(user), format!("lookup_secret: {reason}")),
                },
                "webauthn" | "passkey" => match webauthn(config, kind == "passkey") {
                    Ok(credentials) => {
                        for (name, import) in credentials {
                            batch.entry(n, user, name.as_deref(), ImportItem::WebAuthn(import));
                        }
                    }
                    Err(reason) => batch.problem(n, Some(user), format!("{kind}: {reason}")),
                },
                _ => {}
            }
        }
    }
}

/// The config, or why it is missing (an export without `include_credential` for this type).
fn config_of(config: Option<&serde_json::Value>) -> Result<&serde_json::Value, String> {
    config.ok_or_else(|| "no config: export with include_credential for this type".to_owned())
}

fn totp(config: Option<&serde_json::Value>) -> Result<TotpImport, String> {
    let parsed = TotpCredential::deserialize(config_of(config)?).map_err(|_| "config has no totp_url".to_owned())?;
    TotpImport::parse(&parsed.totp_url).map_err(|e| e.to_string())
}

fn lookup(config: Option<&serde_json::Value>) -> Result<Option<ImportedCodes>, String> {
    let parsed =
        LookupConfig::deserialize(config_of(config)?).map_err(|_| "config has no recovery_codes list".to_owned())?;
    // Kratos writes `used_at` only for a used code (null, absent or the zero time otherwise).
    let unused: Vec<String> = parsed
        .recovery_codes
        .iter()
        .filter(|c| {
            c.used_at
                .as_deref()
                .is_none_or(|t| t.is_empty() || t.starts_with("0001-01-01"))
        })
        .map(|c| c.code.clone())
        .collect();
    if unused.is_empty() {
        return Ok(None);
    }
    let codes = ImportedCodes::new(unused);
    crate::backup_codes::check_imported(&codes.as_strs()).map_err(|e| e.to_string())?;
    Ok(Some(codes))
}

fn webauthn(
    config: Option<&serde_json::Value>,
    passkeys: bool,
) -> Result<Vec<(Option<String>, WebAuthnImport)>, String> {
    let parsed = WebAuthnConfig::deserialize(config_of(config)?)
        .map_err(|_| "config is not Kratos's {\"credentials\", \"user_handle\"}".to_owned())?;
    let handle = parsed
        .user_handle
        .as_deref()
        .map(|h| super::base64_any(h).ok_or("user_handle is not base64"))
        .transpose()?;
    let mut out = Vec::with_capacity(parsed.credentials.len());
    for (i, c) in parsed.credentials.iter().enumerate() {
        let which = i + 1;
        let id = super::base64_any(&c.id).ok_or(format!("credential {which}: id is not base64"))?;
        let key = super::base64_any(&c.public_key).ok_or(format!("credential {which}: public_key is not base64"))?;
        let aaguid = match c.authenticator.as_ref().and_then(|a| a.aaguid.as_deref()) {
            None | Some("") => None,
            Some(text) => {
                let bytes = super::base64_any(text).ok_or(format!("credential {which}: aaguid is not base64"))?;
                Some(
                    <[u8; 16]>::try_from(bytes.as_slice())
                        .map_err(|_| format!("credential {which}: aaguid is not 16 bytes"))?,
                )
            }
        };
        let transports: Vec<&str> = c.transport.iter().map(String::as_str).collect();
        let import = WebAuthnImport::from_exported(&ExportedCredential {
            credential_id: &id,
            cose_public_key: &key,
            sign_count: c.authenticator.as_ref().map_or(0, |a| a.sign_count),
            user_handle: handle.as_deref(),
            discoverable: passkeys || c.is_passwordless,
            backup: c.flags.as_ref().map(|f| (f.backup_eligible, f.backup_state)),
            transports: &transports,
            aaguid: aaguid.filter(|a| a != &[0; 16]),
        })
        .map_err(|e| format!("credential {which}: {e}"))?;
        let name = Some(c.display_name.trim().to_owned()).filter(|n| !n.is_empty());
        out.push((name, import));
    }
    Ok(out)
}
