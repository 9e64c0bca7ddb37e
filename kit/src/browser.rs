//! A browser with one software authenticator: `navigator.credentials.create()` and `get()` on
//! the options JSON the service hands out, answering the response JSON a page would post back.

use std::collections::HashMap;

use multifactor::webauthn::{AuthenticationResponse, RegistrationResponse};
use multifactor::{Clock, Mfa, Outcome, Rng, Store, UserId};
use serde_json::{Value, json};
use url::Url;
use webauthn_authenticator_rs::AuthenticatorBackend;
use webauthn_authenticator_rs::prelude::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{CreationChallengeResponse, RequestChallengeResponse};

/// The origin the tests' relying party accepts.
pub const ORIGIN: &str = "https://auth.example.com";

/// A browser with one authenticator.
pub struct Client<A> {
    /// The authenticator.
    pub auth: A,
    /// The origin the browser is at.
    pub origin: Url,
    /// The authenticator can verify the user (it sets UV whenever the page asks for it or prefers it).
    pub uv_capable: bool,
    /// Credential id (base64url) -> user handle (base64url) it was created for.
    pub handles: HashMap<String, String>,
}

impl<A: AuthenticatorBackend> Client<A> {
    pub fn new(auth: A, uv_capable: bool) -> Self {
        Self {
            auth,
            origin: Url::parse(ORIGIN).unwrap(),
            uv_capable,
            handles: HashMap::new(),
        }
    }

    pub fn at(mut self, origin: &str) -> Self {
        self.origin = Url::parse(origin).unwrap();
        self
    }

    pub fn adjust_uv(&self, options: &mut Value) {
        if let Some(uv) = options.pointer_mut("/publicKey/userVerification")
            && self.uv_capable
            && uv == "preferred"
        {
            *uv = json!("required");
        }
    }

    /// `navigator.credentials.create()`: the options JSON in, the response JSON out.
    pub fn create(&mut self, options: &Value) -> Result<Value, String> {
        let mut options = options.clone();
        if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection") {
            if self.uv_capable && sel["userVerification"] == "preferred" {
                sel["userVerification"] = json!("required");
            }
            // The software authenticator refuses resident keys; the client keeps the handle instead.
            sel["requireResidentKey"] = json!(false);
            sel["residentKey"] = json!("discouraged");
        }
        let handle = options["publicKey"]["user"]["id"].as_str().unwrap().to_owned();
        let ccr: CreationChallengeResponse = serde_json::from_value(options).map_err(|e| e.to_string())?;
        let rsp = self
            .auth
            .do_registration(self.origin.clone(), ccr)
            .map_err(|e| format!("{e:?}"))?;
        let rsp = serde_json::to_value(&rsp).unwrap();
        self.handles.insert(rsp["rawId"].as_str().unwrap().to_owned(), handle);
        Ok(rsp)
    }

    /// `navigator.credentials.get()`: with an empty allow-list the client discovers its own
    /// credential and returns the user handle, as a platform authenticator would.
    pub fn get(&mut self, options: &Value) -> Result<Value, String> {
        let mut options = options.clone();
        self.adjust_uv(&mut options);
        let discoverable = options["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(|a| a.is_empty());
        let mut chosen = None;
        if discoverable {
            let (id, handle) = self.handles.iter().next().ok_or("no discoverable credential")?;
            options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": id}]);
            chosen = Some(handle.clone());
        }
        let rcr: RequestChallengeResponse = serde_json::from_value(options).map_err(|e| e.to_string())?;
        let rsp = self
            .auth
            .do_authentication(self.origin.clone(), rcr)
            .map_err(|e| format!("{e:?}"))?;
        let mut rsp = serde_json::to_value(&rsp).unwrap();
        if let Some(handle) = chosen {
            rsp["response"]["userHandle"] = json!(handle);
        }
        Ok(rsp)
    }
}

/// A security key: no user verification.
pub fn security_key() -> Client<SoftPasskey> {
    Client::new(SoftPasskey::new(false), false)
}

/// A passkey on an authenticator that verifies its user.
pub fn passkey() -> Client<SoftPasskey> {
    Client::new(SoftPasskey::new(true), true)
}

/// What another system would have stored of a credential, read from the registration response
/// its authenticator gave: the credential id, the COSE public key, the sign counter, and the
/// backup-eligible and backup-state flags (WebAuthn §6.1: `authData` = rpIdHash (32) ‖ flags (1)
/// ‖ signCount (4) ‖ aaguid (16) ‖ idLength (2) ‖ id ‖ COSE key ‖ extensions).
pub fn exported(registration: &Value) -> (Vec<u8>, Vec<u8>, u32, bool, bool) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let object = b64
        .decode(registration["response"]["attestationObject"].as_str().unwrap())
        .unwrap();
    let object: serde_cbor_2::Value = serde_cbor_2::from_slice(&object).unwrap();
    let serde_cbor_2::Value::Map(map) = object else {
        panic!("attestationObject is not a map")
    };
    let Some(serde_cbor_2::Value::Bytes(auth)) = map.get(&serde_cbor_2::Value::Text("authData".into())) else {
        panic!("no authData")
    };
    let flags = auth[32];
    let counter = u32::from_be_bytes(auth[33..37].try_into().unwrap());
    let id_len = usize::from(u16::from_be_bytes(auth[53..55].try_into().unwrap()));
    let id = auth[55..55 + id_len].to_vec();
    let rest = &auth[55 + id_len..];
    let mut values = serde_cbor_2::Deserializer::from_slice(rest).into_iter::<serde_cbor_2::Value>();
    let key = values.next().unwrap().unwrap();
    let key = serde_cbor_2::to_vec(&key).unwrap();
    (id, key, counter, flags & 0x08 != 0, flags & 0x10 != 0)
}

/// Registers a security key (or with `as_passkey` a passkey) for `who` with `client`: the
/// service's start, the authenticator's answer, the service's finish.
pub async fn register<S: Store, C: Clock, R: Rng, A: AuthenticatorBackend>(
    mfa: &Mfa<S, C, R>,
    who: &UserId,
    client: &mut Client<A>,
    as_passkey: bool,
) -> Outcome {
    let (ceremony, options) = if as_passkey {
        mfa.start_passkey_registration(who, who.as_str(), "Test User")
            .await
            .unwrap()
    } else {
        mfa.start_security_key_registration(who, who.as_str(), "Test User")
            .await
            .unwrap()
    };
    let rsp = client.create(&options.to_json_value()).unwrap();
    let rsp = RegistrationResponse::from_json(&rsp.to_string()).unwrap();
    mfa.finish_webauthn_registration(who, ceremony, &rsp, None)
        .await
        .unwrap()
}

/// Passes `who`'s second factor with `client`'s security key or passkey.
pub async fn sign_in<S: Store, C: Clock, R: Rng, A: AuthenticatorBackend>(
    mfa: &Mfa<S, C, R>,
    who: &UserId,
    client: &mut Client<A>,
) -> Outcome {
    let (ceremony, options) = mfa.start_webauthn_authentication(who).await.unwrap();
    let rsp = client.get(&options.to_json_value()).unwrap();
    let rsp = AuthenticationResponse::from_json(&rsp.to_string()).unwrap();
    mfa.finish_webauthn_authentication(who, ceremony, &rsp).await.unwrap()
}
