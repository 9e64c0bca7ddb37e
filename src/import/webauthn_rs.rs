//! webauthn-rs `Passkey` and `SecurityKey` (0.5, 0.6), as an application stored them with
//! `serde_json`: one JSON object per line,
//! `{"user": "alice", "user_handle": "<base64url>", "kind": "passkey", "name": "...", "credential": {"cred": {...}}}`.
//! webauthn-rs registers the user's UUID as the user handle: its 16 bytes, base64url here.

use serde::Deserialize;

use super::WebAuthnImport;
use super::{ImportBatch, ImportItem};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    user: String,
    #[serde(default)]
    user_handle: Option<String>,
    kind: String,
    #[serde(default)]
    name: Option<String>,
    credential: serde_json::Value,
}

pub(super) fn lines(text: &str, batch: &mut ImportBatch) {
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Ok(parsed) = serde_json::from_str::<Line>(line) else {
            batch.problem(
                n,
                None,
                "expected {\"user\", \"user_handle\", \"kind\", \"name\", \"credential\"} JSON",
            );
            continue;
        };
        let read = || -> Result<WebAuthnImport, String> {
            let discoverable = match parsed.kind.as_str() {
                "passkey" => true,
                "security_key" => false,
                _ => return Err("kind must be passkey or security_key".into()),
            };
            let handle = parsed
                .user_handle
                .as_deref()
                .map(|h| super::base64_any(h).ok_or("user_handle is not base64url"))
                .transpose()?;
            WebAuthnImport::from_webauthn_rs_json(&parsed.credential.to_string(), handle.as_deref(), discoverable)
                .map_err(|e| e.to_string())
        };
        match read() {
            Ok(import) => batch.entry(n, &parsed.user, parsed.name.as_deref(), ImportItem::WebAuthn(import)),
            Err(reason) => batch.problem(n, Some(parsed.user.as_str()), reason),
        }
    }
}
