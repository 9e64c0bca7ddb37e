//! WebAuthn Level 3 signals (§5.1.10): what the relying party tells the browser so that its
//! authenticators stop offering credentials the server no longer accepts and show current user
//! details. Each payload is the JSON argument of its `PublicKeyCredential.signal*` call, with
//! ids in base64url; the page makes the call where the browser supports it (the calls are
//! hints: a browser without them loses nothing).

use base64::Engine as _;
use serde_json::{Value, json};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `signalUnknownCredential`: a passwordless sign-in presented a credential no user has (it was
/// deleted here, or never registered): the authenticator may remove it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCredential {
    rp_id: String,
    credential_id: Vec<u8>,
}

impl UnknownCredential {
    pub(crate) fn new(rp_id: &str, credential_id: &[u8]) -> Self {
        Self {
            rp_id: rp_id.to_owned(),
            credential_id: credential_id.to_vec(),
        }
    }

    /// `{"rpId": ..., "credentialId": ...}`.
    pub fn to_json_value(&self) -> Value {
        json!({ "rpId": self.rp_id, "credentialId": b64(&self.credential_id) })
    }
}

/// `signalAllAcceptedCredentials`: every credential the relying party accepts for one user
/// handle, after a deletion or a reset; the authenticator may remove the others of that user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllAcceptedCredentials {
    rp_id: String,
    user_handle: Vec<u8>,
    credential_ids: Vec<Vec<u8>>,
}

impl AllAcceptedCredentials {
    pub(crate) fn new(rp_id: &str, user_handle: &[u8], credential_ids: Vec<Vec<u8>>) -> Self {
        Self {
            rp_id: rp_id.to_owned(),
            user_handle: user_handle.to_vec(),
            credential_ids,
        }
    }

    /// The user handle the payload is for.
    pub fn user_handle(&self) -> &[u8] {
        &self.user_handle
    }

    /// `{"rpId": ..., "userId": ..., "allAcceptedCredentialIds": [...]}`.
    pub fn to_json_value(&self) -> Value {
        let ids: Vec<String> = self.credential_ids.iter().map(|id| b64(id)).collect();
        json!({ "rpId": self.rp_id, "userId": b64(&self.user_handle), "allAcceptedCredentialIds": ids })
    }
}

/// `signalCurrentUserDetails`: the user's current name and display name, after a change, for
/// the authenticators' account pickers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUserDetails {
    rp_id: String,
    user_handle: Vec<u8>,
    name: String,
    display_name: String,
}

impl CurrentUserDetails {
    pub(crate) fn new(rp_id: &str, user_handle: &[u8], name: &str, display_name: &str) -> Self {
        Self {
            rp_id: rp_id.to_owned(),
            user_handle: user_handle.to_vec(),
            name: name.to_owned(),
            display_name: display_name.to_owned(),
        }
    }

    /// `{"rpId": ..., "userId": ..., "name": ..., "displayName": ...}`.
    pub fn to_json_value(&self) -> Value {
        json!({ "rpId": self.rp_id, "userId": b64(&self.user_handle), "name": self.name, "displayName": self.display_name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_shape_the_browser_takes() {
        assert_eq!(
            UnknownCredential::new("example.com", &[1, 2, 3]).to_json_value(),
            json!({"rpId": "example.com", "credentialId": "AQID"})
        );
        assert_eq!(
            AllAcceptedCredentials::new("example.com", b"h", vec![vec![1], vec![2, 3]]).to_json_value(),
            json!({"rpId": "example.com", "userId": "aA", "allAcceptedCredentialIds": ["AQ", "AgM"]})
        );
        assert_eq!(
            AllAcceptedCredentials::new("example.com", b"h", vec![]).to_json_value()["allAcceptedCredentialIds"],
            json!([])
        );
        assert_eq!(
            CurrentUserDetails::new("example.com", b"h", "alice", "Alice A.").to_json_value(),
            json!({"rpId": "example.com", "userId": "aA", "name": "alice", "displayName": "Alice A."})
        );
    }
}
