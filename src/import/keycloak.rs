//! Keycloak's `credential` rows (Keycloak 22 to 26: `OTPCredentialModel`, `OTPCredentialData`,
//! `OTPSecretData`, `WebAuthnCredentialModel`, `WebAuthnCredentialData`, `WebAuthnRegister`),
//! exported as CSV `username,user_id,type,user_label,secret_data,credential_data` (the query is in
//! the manual).
//!
//! - `otp`: `credential_data` is `{"subType":"totp","digits":6,"counter":0,"period":30,
//!   "algorithm":"HmacSHA1"}` (optionally `"secretEncoding":"BASE32"`), `secret_data` is
//!   `{"value":"..."}`. Without `secretEncoding` the HMAC key is the value's UTF-8 bytes (what
//!   Keycloak's QR code shows, base32-encoded); with `BASE32` it is the value decoded.
//!   Keycloak's replay mark lives in a cache, not the database: nothing to carry over.
//!   `"subType":"hotp"` is counter-based: its `counter` is the one the next code is made with,
//!   and is carried over (the codes before it stay spent).
//! - `webauthn` (security key) and `webauthn-passwordless` (passkey): `credential_data` has
//!   `credentialId` (standard base64), `credentialPublicKey` (base64url COSE key), `counter`,
//!   `aaguid` and `transports`. The user handle Keycloak registers is the user's id as UTF-8.
//!   Backup flags are not kept there.
//! - `recovery-authn-codes`: `secret_data` holds each unused code's unsalted SHA-512, base64.
//!   They become one backup-code set keyed over those digests: the user types the codes they
//!   printed, and this database holds nothing to search them with.

use serde::Deserialize;

use super::{ExportedCredential, WebAuthnImport};
use super::{ImportBatch, ImportItem, ImportedDigests, csv_rows};
use crate::secret::SecretBytes;
use crate::totp::uri::TotpImport;
use crate::totp::{Algorithm, TotpParams, decode_base32_secret};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OtpData {
    sub_type: String,
    digits: u32,
    #[serde(default)]
    period: u64,
    /// For `hotp`: the counter the next code is made with.
    #[serde(default)]
    counter: u64,
    algorithm: String,
    #[serde(default)]
    secret_encoding: Option<String>,
}

#[derive(Deserialize)]
struct OtpSecret {
    value: String,
}

impl Drop for OtpSecret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.value);
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebAuthnData {
    credential_id: String,
    credential_public_key: String,
    #[serde(default)]
    counter: u32,
    #[serde(default)]
    aaguid: Option<String>,
    #[serde(default)]
    transports: Vec<String>,
}

pub(super) fn credentials(text: &str, batch: &mut ImportBatch) {
    csv_rows(
        text,
        batch,
        &["username", "user_id", "type", "secret_data", "credential_data"],
        &["user_label"],
        |batch, n, row| {
            let user = row.get("username");
            let label = Some(row.get("user_label")).filter(|l| !l.is_empty());
            let item = match row.get("type") {
                "otp" => otp(row.get("secret_data"), row.get("credential_data")).map(ImportItem::Totp),
                kind @ ("webauthn" | "webauthn-passwordless") => webauthn(
                    row.get("credential_data"),
                    row.get("user_id"),
                    kind == "webauthn-passwordless",
                )
                .map(ImportItem::WebAuthn),
                "recovery-authn-codes" => recovery_codes(row.get("secret_data"), row.get("credential_data"))
                    .map(ImportItem::HashedBackupCodes),
                "password" => Err("a password, not an MFA credential (filter the export by type)".to_owned()),
                _ => Err(
                    "not a credential type this importer takes (otp, recovery-authn-codes, webauthn, \
                     webauthn-passwordless)"
                        .to_owned(),
                ),
            };
            match item {
                Ok(item) => batch.entry(n, user, label, item),
                Err(reason) => batch.problem(n, Some(user).filter(|u| !u.is_empty()), reason),
            }
        },
    );
}

fn otp(secret_data: &str, credential_data: &str) -> Result<TotpImport, String> {
    let data: OtpData =
        serde_json::from_str(credential_data).map_err(|_| "credential_data is not Keycloak's OTP JSON".to_owned())?;
    let algorithm = match data.algorithm.as_str() {
        "HmacSHA1" => Algorithm::Sha1,
        "HmacSHA256" => Algorithm::Sha256,
        "HmacSHA512" => Algorithm::Sha512,
        _ => return Err("algorithm must be HmacSHA1, HmacSHA256 or HmacSHA512".into()),
    };
    // Keycloak keeps an hotp credential's next counter (`validateHOTP` stores the matched one
    // plus 1): the one before it counts as used.
    let (params, last_step) = match data.sub_type.as_str() {
        "totp" => (
            TotpParams::new(algorithm, data.digits, data.period).map_err(|e| e.to_string())?,
            None,
        ),
        "hotp" => (
            TotpParams::hotp(algorithm, data.digits).map_err(|e| e.to_string())?,
            crate::totp::storable_counter(data.counter)
                .ok_or("counter must be below 2^63")?
                .checked_sub(1),
        ),
        _ => return Err("subType must be totp or hotp".into()),
    };
    let secret: OtpSecret =
        serde_json::from_str(secret_data).map_err(|_| "secret_data is not Keycloak's {\"value\": ...}".to_owned())?;
    let key = match data.secret_encoding.as_deref() {
        None => SecretBytes::new(secret.value.as_bytes().to_vec()),
        Some(e) if e.eq_ignore_ascii_case("BASE32") => {
            decode_base32_secret(&secret.value).map_err(|e| e.to_string())?
        }
        Some(_) => return Err("secretEncoding must be absent or BASE32".into()),
    };
    TotpImport::from_parts(key, params, None, None, last_step).map_err(|e| e.to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecoveryData {
    #[serde(default)]
    hash_iterations: Option<u32>,
    algorithm: String,
}

#[derive(Deserialize)]
struct RecoverySecret {
    codes: Vec<RecoveryCode>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecoveryCode {
    encoded_hashed_value: String,
}

/// `recovery-authn-codes`: `secret_data` is `{"codes": [{"number": 1, "encodedHashedValue":
/// base64(SHA-512(code))}, ...]}` (the used ones removed), `credential_data` names the
/// algorithm (`RS512` before Keycloak 26.2, `SHA-512` since: the same digest either way).
fn recovery_codes(secret_data: &str, credential_data: &str) -> Result<ImportedDigests, String> {
    let data: RecoveryData = serde_json::from_str(credential_data)
        .map_err(|_| "credential_data is not Keycloak's recovery-codes JSON".to_owned())?;
    if !matches!(data.algorithm.as_str(), "RS512" | "SHA-512" | "SHA512")
        || data.hash_iterations.is_some_and(|i| i != 1)
    {
        return Err("recovery codes hashed other than with one round of SHA-512".into());
    }
    let secret: RecoverySecret =
        serde_json::from_str(secret_data).map_err(|_| "secret_data is not Keycloak's {\"codes\": [...]}".to_owned())?;
    let mut digests = Vec::with_capacity(secret.codes.len());
    for code in &secret.codes {
        let bytes = super::base64_any(&code.encoded_hashed_value).ok_or("encodedHashedValue is not base64")?;
        let mut digest = [0u8; 64];
        if bytes.len() != digest.len() {
            return Err("encodedHashedValue is not a SHA-512 digest (64 bytes)".into());
        }
        digest.copy_from_slice(&bytes);
        digests.push(digest);
    }
    ImportedDigests::keycloak(digests).map_err(|e| e.to_string())
}

fn webauthn(credential_data: &str, user_id: &str, passwordless: bool) -> Result<WebAuthnImport, String> {
    let data: WebAuthnData = serde_json::from_str(credential_data)
        .map_err(|_| "credential_data is not Keycloak's WebAuthn JSON".to_owned())?;
    let id = super::base64_any(&data.credential_id).ok_or("credentialId is not base64")?;
    let key = super::base64_any(&data.credential_public_key).ok_or("credentialPublicKey is not base64")?;
    if user_id.is_empty() {
        return Err("user_id is empty (Keycloak's user handle is the user's id)".into());
    }
    let aaguid = data.aaguid.as_deref().map(super::parse_aaguid).transpose()?;
    let transports: Vec<&str> = data.transports.iter().map(String::as_str).collect();
    WebAuthnImport::from_exported(&ExportedCredential {
        credential_id: &id,
        cose_public_key: &key,
        sign_count: data.counter,
        user_handle: Some(user_id.as_bytes()),
        discoverable: passwordless,
        backup: None,
        transports: &transports,
        aaguid,
    })
    .map_err(|e| e.to_string())
}
