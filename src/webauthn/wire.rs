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
#[derive(Debug, Clone)]
pub struct RegistrationOptions(
    pub(crate) CreationChallengeResponse,
    pub(crate) Option<PrfInputs>,
    /// For conditional creation: `"mediation": "conditional"` beside `publicKey`.
    pub(crate) bool,
);

/// Options for `navigator.credentials.get()`: `{"publicKey": {...}, "mediation": ...}`. In the
/// browser, pass `PublicKeyCredential.parseRequestOptionsFromJSON(json.publicKey)` to `get`.
#[derive(Debug, Clone)]
pub struct AuthenticationOptions(pub(crate) RequestChallengeResponse, pub(crate) Option<PrfInputs>);

/// Salts for the `prf` extension (WebAuthn Level 3 §10.1.4): the authenticator derives one
/// secret per salt from the credential's own key (CTAP2 `hmac-secret`), and hands it to the
/// page's script. The salts are the host's choice (any bytes; the browser hashes them with a
/// WebAuthn-specific prefix before the authenticator sees them); a salt per purpose ("note
/// encryption v1") gives a key per purpose.
///
/// The outputs never reach the server: the browser returns them in
/// `getClientExtensionResults().prf.results`, which `toJSON()` leaves out, and this crate
/// neither asks for nor reads them. That is the point of PRF: a key the server never holds,
/// for end-to-end encryption.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrfInputs {
    eval: Option<Salts>,
    by_credential: Vec<(Vec<u8>, Salts)>,
}

/// One or two salts: `first`, and `second` (for rotating a key).
type Salts = (Vec<u8>, Option<Vec<u8>>);

impl PrfInputs {
    /// Asks for PRF without evaluating anything (at registration: enable it on the new
    /// credential).
    pub fn new() -> Self {
        Self::default()
    }

    /// Evaluates `first` (and `second`, for key rotation) with whichever credential is used.
    #[must_use]
    pub fn eval(mut self, first: &[u8], second: Option<&[u8]>) -> Self {
        self.eval = Some((first.to_vec(), second.map(<[u8]>::to_vec)));
        self
    }

    /// Evaluates `first` (and `second`) with the credential `credential_id` only (at
    /// authentication; it takes precedence over [`eval`](Self::eval) for that credential).
    #[must_use]
    pub fn eval_by_credential(mut self, credential_id: &[u8], first: &[u8], second: Option<&[u8]>) -> Self {
        self.by_credential
            .push((credential_id.to_vec(), (first.to_vec(), second.map(<[u8]>::to_vec))));
        self
    }

    /// The extension input as WebAuthn's JSON form (binary values as unpadded base64url).
    fn to_json(&self, registration: bool) -> serde_json::Value {
        use base64::Engine as _;
        let b64 = |b: &[u8]| serde_json::Value::String(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b));
        let values = |first: &[u8], second: &Option<Vec<u8>>| {
            let mut v = serde_json::Map::new();
            v.insert("first".into(), b64(first));
            if let Some(second) = second {
                v.insert("second".into(), b64(second));
            }
            serde_json::Value::Object(v)
        };
        let mut prf = serde_json::Map::new();
        if let Some((first, second)) = &self.eval {
            prf.insert("eval".into(), values(first, second));
        }
        // evalByCredential is for authentication only (the credential does not exist yet).
        if !registration && !self.by_credential.is_empty() {
            let mut by = serde_json::Map::new();
            for (id, (first, second)) in &self.by_credential {
                use base64::Engine as _;
                by.insert(
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id),
                    values(first, second),
                );
            }
            prf.insert("evalByCredential".into(), serde_json::Value::Object(by));
        }
        serde_json::Value::Object(prf)
    }
}

/// The core's options as JSON, with the `prf` input in `publicKey.extensions`.
fn with_prf<T: Serialize, S: serde::Serializer>(
    core: &T,
    prf: Option<&PrfInputs>,
    registration: bool,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let Some(prf) = prf else {
        return core.serialize(serializer);
    };
    let mut json = serde_json::to_value(core).map_err(serde::ser::Error::custom)?;
    if let Some(public_key) = json.get_mut("publicKey").and_then(serde_json::Value::as_object_mut) {
        let extensions = public_key
            .entry("extensions")
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        if !extensions.is_object() {
            *extensions = serde_json::Value::Object(serde_json::Map::new());
        }
        if let Some(extensions) = extensions.as_object_mut() {
            extensions.insert("prf".into(), prf.to_json(registration));
        }
    }
    json.serialize(serializer)
}

impl Serialize for RegistrationOptions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !self.2 {
            return with_prf(&self.0, self.1.as_ref(), true, serializer);
        }
        let mut json = serde_json::to_value(WithPrf(&self.0, self.1.as_ref())).map_err(serde::ser::Error::custom)?;
        if let Some(object) = json.as_object_mut() {
            object.insert("mediation".into(), serde_json::Value::String("conditional".into()));
        }
        json.serialize(serializer)
    }
}

/// Registration options with the PRF input, for serialising into a value first.
struct WithPrf<'a>(&'a CreationChallengeResponse, Option<&'a PrfInputs>);

impl Serialize for WithPrf<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        with_prf(self.0, self.1, true, serializer)
    }
}

impl Serialize for AuthenticationOptions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        with_prf(&self.0, self.1.as_ref(), false, serializer)
    }
}

impl RegistrationOptions {
    /// Asks the authenticator to enable the `prf` extension on the new credential (and, with
    /// [`PrfInputs::eval`], to evaluate it at once where it can). Whether it did is recorded
    /// from the response ([`DeviceInfo::prf`](crate::DeviceInfo::prf)). The options the
    /// ceremony verifies are unchanged: extensions are not part of what is signed here.
    #[must_use]
    pub fn with_prf(mut self, prf: PrfInputs) -> Self {
        self.1 = Some(prf);
        self
    }
}

impl AuthenticationOptions {
    /// Asks the authenticator to evaluate the `prf` extension with these salts. The outputs
    /// go to the page's script, never to the server.
    #[must_use]
    pub fn with_prf(mut self, prf: PrfInputs) -> Self {
        self.1 = Some(prf);
        self
    }
}

/// The browser's answer to `create()`, as `PublicKeyCredential.toJSON()` gives it.
#[derive(Debug, Clone)]
pub struct RegistrationResponse(pub(crate) RegisterPublicKeyCredential, pub(crate) Option<bool>);

impl<'de> Deserialize<'de> for RegistrationResponse {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = serde_json::Value::deserialize(deserializer)?;
        // Whether the authenticator enabled PRF: an unsigned client output, recorded as a
        // capability only (nothing is trusted on it).
        // (`toJSON()` names them `clientExtensionResults`; the core also takes `extensions`.)
        let prf = ["/clientExtensionResults/prf/enabled", "/extensions/prf/enabled"]
            .iter()
            .find_map(|at| json.pointer(at).and_then(serde_json::Value::as_bool));
        let core = RegisterPublicKeyCredential::deserialize(json).map_err(serde::de::Error::custom)?;
        Ok(Self(core, prf))
    }
}

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

#[cfg(test)]
mod prf_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn response(outputs: serde_json::Value) -> RegistrationResponse {
        let json = serde_json::json!({
            "id": "AQID", "rawId": "AQID", "type": "public-key",
            "response": {"attestationObject": "AQID", "clientDataJSON": "AQID"},
            "clientExtensionResults": outputs,
        });
        RegistrationResponse::from_json(&json.to_string()).unwrap()
    }

    #[test]
    fn a_browser_s_prf_answer_is_read_and_nothing_else() {
        assert_eq!(response(serde_json::json!({"prf": {"enabled": true}})).1, Some(true));
        assert_eq!(response(serde_json::json!({"prf": {"enabled": false}})).1, Some(false));
        assert_eq!(response(serde_json::json!({"prf": {"enabled": "yes"}})).1, None);
        assert_eq!(response(serde_json::json!({"credProps": {"rk": true}})).1, None);
        assert_eq!(response(serde_json::json!({})).1, None);
    }
}
