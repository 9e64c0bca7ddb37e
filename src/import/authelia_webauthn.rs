//! Authelia 4.38/4.39 `authelia storage user webauthn export` (`internal/model/webauthn.go`,
//! `WebAuthnCredentialDataExport`): YAML, `webauthn_credentials:` a list of credentials with
//! `username`, `rpid`, `description`, `kid` (the credential id) and `public_key` (COSE) in
//! standard base64, `aaguid`, `transports`, `sign_count`, `discoverable`, `legacy`,
//! `backup_eligible` and `backup_state`.
//!
//! Authelia keeps the user handle apart (`webauthn_users.userid`), so the export has none: a
//! discoverable credential comes in as a passkey only when its item is given a `user_id` (that
//! column's value, which Authelia registered as the handle's bytes), else as a security key,
//! which works as a second factor. `legacy` credentials (registered through U2F) need the
//! `appid` extension to sign in and are refused.

use serde::Deserialize;

use super::{ExportedCredential, WebAuthnImport};
use super::{ImportBatch, ImportItem};

#[derive(Deserialize)]
struct Export {
    webauthn_credentials: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Credential {
    username: String,
    rpid: String,
    #[serde(default)]
    description: Option<String>,
    kid: String,
    public_key: String,
    #[serde(default)]
    aaguid: Option<String>,
    #[serde(default)]
    transports: Option<Vec<String>>,
    #[serde(default)]
    sign_count: u32,
    #[serde(default)]
    discoverable: bool,
    #[serde(default)]
    legacy: bool,
    #[serde(default)]
    backup_eligible: bool,
    #[serde(default)]
    backup_state: bool,
    /// Not Authelia's: `webauthn_users.userid`, added to keep a passkey passwordless.
    #[serde(default)]
    user_id: Option<String>,
}

pub(super) fn yaml(text: &str, batch: &mut ImportBatch) {
    let document = match super::yaml::read(text) {
        Ok(d) => d,
        Err(why) => {
            batch.problem(1, None, why);
            return;
        }
    };
    let Ok(export) = Export::deserialize(&document.value) else {
        batch.problem(1, None, "expected Authelia's `webauthn_credentials:` list");
        return;
    };
    for (i, item) in export.webauthn_credentials.iter().enumerate() {
        let n = document.item_lines.get(i).copied().unwrap_or(1);
        let user = item.get("username").and_then(serde_json::Value::as_str);
        let Ok(credential) = Credential::deserialize(item) else {
            batch.problem(
                n,
                user,
                "expected username, rpid, kid and public_key (and numbers and booleans where Authelia writes them)",
            );
            continue;
        };
        match read(&credential) {
            Ok(import) => batch.entry_for_rp(
                n,
                &credential.username,
                credential.description.as_deref(),
                Some(&credential.rpid),
                ImportItem::WebAuthn(import),
            ),
            Err(reason) => batch.problem(n, Some(&credential.username), reason),
        }
    }
}

fn read(c: &Credential) -> Result<WebAuthnImport, String> {
    if c.legacy {
        return Err("a legacy (U2F) credential: it signs in only with the appid extension".into());
    }
    let id = super::base64_any(&c.kid).ok_or("kid is not base64")?;
    let key = super::base64_any(&c.public_key).ok_or("public_key is not base64")?;
    let aaguid = match c.aaguid.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(super::parse_aaguid(text)?),
    };
    let handle = c.user_id.as_deref().map(str::trim).filter(|h| !h.is_empty());
    let transports: Vec<&str> = c.transports.iter().flatten().map(String::as_str).collect();
    WebAuthnImport::from_exported(&ExportedCredential {
        credential_id: &id,
        cose_public_key: &key,
        sign_count: c.sign_count,
        user_handle: handle.map(str::as_bytes),
        // Without the handle it was registered under, a passkey cannot sign in without a
        // password here: it comes in as a security key.
        discoverable: c.discoverable && handle.is_some(),
        backup: Some((c.backup_eligible, c.backup_state)),
        transports: &transports,
        aaguid: aaguid.filter(|a| a != &[0; 16]),
    })
    .map_err(|e| e.to_string())
}
