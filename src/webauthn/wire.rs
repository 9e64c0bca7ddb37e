//! The browser-facing JSON: options for `navigator.credentials.create/get` and the responses
//! `PublicKeyCredential.toJSON()` produces (binary fields as unpadded base64url).

use serde::{Deserialize, Serialize};
use webauthn_rs_core::proto::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse,
};

use crate::error::InputError;

/// Largest response accepted, in bytes.
const MAX_RESPONSE_JSON: usize = 64 * 1024;

/// Options for `navigator.credentials.create()`: `{"publicKey": {...}}`. In the browser, pass
/// `PublicKeyCredential.parseCreationOptionsFromJSON(json.publicKey)` to `create`.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct RegistrationOptions(pub(crate) CreationChallengeResponse);

/// Options for `navigator.credentials.get()`: `{"publicKey": {...}, "mediation": ...}`. In the
/// browser, pass `PublicKeyCredential.parseRequestOptionsFromJSON(json.publicKey)` to `get`.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct AuthenticationOptions(pub(crate) RequestChallengeResponse);

/// The browser's answer to `create()`, as `PublicKeyCredential.toJSON()` gives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct RegistrationResponse(pub(crate) RegisterPublicKeyCredential);

/// The browser's answer to `get()`, as `PublicKeyCredential.toJSON()` gives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct AuthenticationResponse(pub(crate) PublicKeyCredential);

macro_rules! options_json {
    ($t:ty) => {
        impl $t {
            /// The options as JSON text.
            pub fn to_json(&self) -> String {
                // Plain data with string keys: serialisation cannot fail.
                serde_json::to_string(self).unwrap_or_default()
            }

            /// The options as a JSON value.
            pub fn to_json_value(&self) -> serde_json::Value {
                serde_json::to_value(self).unwrap_or_default()
            }
        }
    };
}
options_json!(RegistrationOptions);
options_json!(AuthenticationOptions);

macro_rules! response_json {
    ($t:ident, $what:literal) => {
        impl $t {
            /// Parses the JSON the browser sent.
            ///
            /// # Errors
            ///
            #[doc = concat!("[`InputError::WebAuthnResponse`] if it is not ", $what, " (or over 64 KiB).")]
            pub fn from_json(json: &str) -> Result<Self, InputError> {
                if json.len() > MAX_RESPONSE_JSON {
                    return Err(InputError::WebAuthnResponse("larger than 64 KiB"));
                }
                serde_json::from_str(json).map_err(|_| InputError::WebAuthnResponse(concat!("expected ", $what)))
            }

            /// Converts a parsed JSON value.
            ///
            /// # Errors
            ///
            #[doc = concat!("[`InputError::WebAuthnResponse`] if it is not ", $what, ".")]
            pub fn from_json_value(json: serde_json::Value) -> Result<Self, InputError> {
                serde_json::from_value(json).map_err(|_| InputError::WebAuthnResponse(concat!("expected ", $what)))
            }
        }
    };
}
response_json!(RegistrationResponse, "the JSON of a registration credential");
response_json!(AuthenticationResponse, "the JSON of an authentication credential");

impl AuthenticationResponse {
    /// The credential id the authenticator used.
    pub fn credential_id(&self) -> &[u8] {
        &self.0.raw_id
    }

    /// The user handle a discoverable credential returned, if any.
    pub fn user_handle(&self) -> Option<&[u8]> {
        self.0.get_user_unique_id()
    }
}
