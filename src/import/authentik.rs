//! authentik's WebAuthn devices (`authentik/stages/authenticator_webauthn/models.py` and
//! `stage.py`, 2025/2026): `credential_id` and `public_key` are unpadded base64url (of the raw id
//! and of the COSE key, py_webauthn's `bytes_to_base64url`), `sign_count`, `rp_id`, `aaguid`.
//! The user handle authentik registers is `user.uid` as UTF-8 (64 hex digits). It keeps no
//! transports and no backup flags; every device is imported as a passkey when it was made
//! discoverable there, which authentik does not record either, so the file says: the optional
//! `discoverable` column (`true`/`false`, default `false`: a security key).
//!
//! CSV: `username,user_uid,name,credential_id,public_key,sign_count,rp_id,aaguid[,discoverable]`.

use super::{ExportedCredential, WebAuthnImport};
use super::{ImportBatch, ImportItem, csv_rows};

pub(super) fn webauthn(text: &str, batch: &mut ImportBatch) {
    csv_rows(
        text,
        batch,
        &["username", "user_uid", "credential_id", "public_key", "sign_count"],
        &["name", "rp_id", "aaguid", "discoverable"],
        |batch, n, row| {
            let user = row.get("username");
            let read = || -> Result<WebAuthnImport, String> {
                let id = super::base64_any(row.get("credential_id")).ok_or("credential_id is not base64url")?;
                let key = super::base64_any(row.get("public_key")).ok_or("public_key is not base64url")?;
                let aaguid = Some(row.get("aaguid"))
                    .filter(|a| !a.is_empty())
                    .map(super::parse_aaguid)
                    .transpose()?;
                let discoverable = match row.get("discoverable").to_ascii_lowercase().as_str() {
                    "" | "false" | "f" | "0" => false,
                    "true" | "t" | "1" => true,
                    _ => return Err("discoverable must be true or false".into()),
                };
                let uid = row.get("user_uid");
                WebAuthnImport::from_exported(&ExportedCredential {
                    credential_id: &id,
                    cose_public_key: &key,
                    sign_count: row.number("sign_count")?,
                    user_handle: Some(uid.as_bytes()).filter(|u| !u.is_empty()),
                    discoverable,
                    backup: None,
                    transports: &[],
                    aaguid,
                })
                .map_err(|e| e.to_string())
            };
            match read() {
                Ok(import) => batch.entry_for_rp(
                    n,
                    user,
                    Some(row.get("name")),
                    Some(row.get("rp_id")),
                    ImportItem::WebAuthn(import),
                ),
                Err(reason) => batch.problem(n, Some(user).filter(|u| !u.is_empty()), reason),
            }
        },
    );
}
