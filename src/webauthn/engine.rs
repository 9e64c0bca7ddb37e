//! The one place that talks to `webauthn-rs-core` (with its EdDSA companion, [`super::okp`]).
//! Its expert-only API stays behind this wall.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::proto::{
    AttestationCaList, AttestationCaListBuilder, AttestationConveyancePreference, AttestationFormat,
    AuthenticationState, AuthenticatorTransport, COSEAlgorithm, COSEKey, COSEKeyType, COSEOKPKey, Credential,
    EDDSACurve, Mediation, ParsedAttestation, PublicKeyCredentialHints, RegisteredExtensions, RegistrationState,
    UserVerificationPolicy,
};

use crate::error::{ConfigError, Error, InputError};
use crate::kind::DeviceKind;
use crate::webauthn::okp;
use crate::webauthn::relying_party::RelyingParty;
use crate::webauthn::wire::{AuthenticationOptions, AuthenticationResponse, RegistrationOptions, RegistrationResponse};

/// Algorithms offered at registration, in order of preference: EdDSA first, as the WebAuthn
/// specification's examples list it, then ES256 and RS256.
///
/// `webauthn-rs-core` 0.6.2 parses Ed25519 keys but cannot verify them
/// (`COSEKey::get_public_key` returns `SshPublicKeyEDUnsupported` for every OKP key): Ed25519
/// credentials are registered and verified on the path beside it ([`super::okp`]).
const ALGORITHMS: [COSEAlgorithm; 3] = [COSEAlgorithm::EDDSA, COSEAlgorithm::ES256, COSEAlgorithm::RS256];

/// Authenticator models an organisation accepts: attestation CA certificates, each with the
/// AAGUIDs of the models it may vouch for.
#[derive(Clone)]
pub struct AttestationAllowList {
    builder_cas: Vec<(Vec<u8>, [u8; 16], String)>,
    list: AttestationCaList,
}

impl fmt::Debug for AttestationAllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttestationAllowList")
            .field(
                "models",
                &self.builder_cas.iter().map(|(_, _, d)| d.as_str()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl AttestationAllowList {
    /// An empty list (add at least one model before use).
    pub fn new() -> Self {
        Self {
            builder_cas: Vec::new(),
            list: AttestationCaList::default(),
        }
    }

    /// Allows authenticators with AAGUID `aaguid` whose attestation chains to the CA
    /// certificate `ca_der` (DER). `description` names the model for people.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Attestation`] if the certificate does not parse.
    pub fn allow_der(mut self, ca_der: &[u8], aaguid: [u8; 16], description: &str) -> Result<Self, ConfigError> {
        self.builder_cas.push((ca_der.to_vec(), aaguid, description.to_owned()));
        self.rebuild()
    }

    /// The models of the FIDO metadata with their attestation roots, but none it reports
    /// compromised ([`AuthenticatorMetadata::compromise`](crate::webauthn::metadata::AuthenticatorMetadata::compromise)):
    /// attestation is then verified against the metadata's trust anchors. Build it again (and
    /// the service's configuration) when the metadata is refreshed.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Attestation`] if a root certificate of the metadata does not parse.
    pub fn from_metadata(metadata: &crate::webauthn::metadata::Metadata) -> Result<Self, ConfigError> {
        let mut list = Self::new();
        for (aaguid, model) in metadata.models() {
            if model.compromise().is_some() {
                continue;
            }
            for root in &model.attestation_roots {
                list.builder_cas
                    .push((root.clone(), *aaguid, model.description.clone()));
            }
        }
        list.rebuild()
    }

    /// The list built from every model added.
    fn rebuild(mut self) -> Result<Self, ConfigError> {
        let mut builder = AttestationCaListBuilder::new();
        for (der, aaguid, description) in &self.builder_cas {
            builder
                .insert_device_der(
                    der,
                    uuid::Uuid::from_bytes(*aaguid),
                    description.clone(),
                    BTreeMap::new(),
                )
                .map_err(|_| ConfigError::Attestation("a CA certificate is not valid DER X.509"))?;
        }
        self.list = builder.build();
        Ok(self)
    }

    /// Number of CA certificates.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True if no model is allowed yet.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

impl Default for AttestationAllowList {
    fn default() -> Self {
        Self::new()
    }
}

/// The relying party's engine.
#[derive(Debug, Clone)]
pub(crate) struct Engine {
    rp: RelyingParty,
    core: WebauthnCore,
    attestation: Option<AttestationAllowList>,
}

/// The key under which the stored credential JSON says its attestation chained to a trust
/// anchor of the allow-list at registration (absent: it did not, or there was no list).
const ATTESTED_KEY: &str = "multifactor_attested";

/// The key under which the stored credential JSON says whether the authenticator enabled the
/// `prf` extension at registration (absent: not asked, or the browser did not say).
const PRF_KEY: &str = "multifactor_prf";

/// The credential JSON with whether its attestation was verified against a trust anchor, and
/// whether it enabled PRF. (The AAGUID is a field of the record, not of this JSON.)
fn with_facts(credential: Vec<u8>, attested: bool, prf: Option<bool>) -> Vec<u8> {
    if !attested && prf.is_none() {
        return credential;
    }
    match serde_json::from_slice::<serde_json::Value>(&credential) {
        Ok(serde_json::Value::Object(mut map)) => {
            if attested {
                map.insert(ATTESTED_KEY.to_owned(), serde_json::Value::Bool(true));
            }
            if let Some(prf) = prf {
                map.insert(PRF_KEY.to_owned(), serde_json::Value::Bool(prf));
            }
            serde_json::to_vec(&map).unwrap_or(credential)
        }
        _ => credential,
    }
}

/// Whether a stored credential's authenticator enabled PRF at registration, if it said.
pub(crate) fn stored_prf(credential: &[u8]) -> Option<bool> {
    #[derive(Deserialize)]
    struct Recorded {
        multifactor_prf: Option<bool>,
    }
    serde_json::from_slice::<Recorded>(credential).ok()?.multifactor_prf
}

/// Whether a stored credential's attestation was verified against a trust anchor at
/// registration.
pub(crate) fn stored_attested(credential: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Recorded {
        multifactor_attested: Option<bool>,
    }
    serde_json::from_slice::<Recorded>(credential)
        .ok()
        .and_then(|r| r.multifactor_attested)
        .unwrap_or(false)
}

/// The AAGUID in a registration's attested credential data.
fn attested_aaguid(response: &RegistrationResponse) -> Option<[u8; 16]> {
    Some(okp::attestation(&response.0).ok()?.auth.acd?.aaguid)
}

/// What a successful registration yields.
pub(crate) struct NewCredential {
    pub(crate) credential_id: Vec<u8>,
    pub(crate) credential: Vec<u8>,
    pub(crate) aaguid: Option<[u8; 16]>,
    pub(crate) sign_count: u32,
    pub(crate) backup_eligible: bool,
    pub(crate) backup_state: bool,
    pub(crate) user_verified: bool,
}

pub(crate) use crate::webauthn::verdict::{Assertion, Rejected};

#[derive(Serialize, Deserialize)]
struct RegistrationCeremony {
    passkey: bool,
    user_handle: Vec<u8>,
    state: RegistrationState,
    /// Started for conditional creation (`mediation: "conditional"`): the only ceremony whose
    /// registration may come without user presence.
    #[serde(default)]
    conditional: bool,
}

/// A registration's attestation object with the user-present flag set, if it is an
/// unsigned (`fmt: none`) one without it; `None` for anything else. With attestation `none`
/// nothing signs the authenticator data, so setting the flag changes nothing the core could
/// verify: it lets the core make every other check of a conditional creation, which by
/// definition happens without a gesture (WebAuthn Level 3 §5.1.3 step 22, "conditional").
fn presence_waived(response: &RegistrationResponse) -> Option<RegistrationResponse> {
    use serde_cbor_2::Value;
    let object: Value = serde_cbor_2::from_slice(response.0.response.attestation_object.as_slice()).ok()?;
    let Value::Map(mut map) = object else {
        return None;
    };
    if map.get(&Value::Text("fmt".to_owned())) != Some(&Value::Text("none".to_owned())) {
        return None;
    }
    let Some(Value::Bytes(auth)) = map.get_mut(&Value::Text("authData".to_owned())) else {
        return None;
    };
    let flags = auth.get_mut(32)?;
    if *flags & 0x01 != 0 {
        return None;
    }
    *flags |= 0x01;
    let mut waived = response.clone();
    waived.0.response.attestation_object = serde_cbor_2::to_vec(&Value::Map(map)).ok()?;
    Some(waived)
}

impl Engine {
    pub(crate) fn new(rp: &RelyingParty, attestation: Option<AttestationAllowList>) -> Self {
        let core = WebauthnCore::new_unsafe_experts_only(
            rp.name(),
            rp.id(),
            rp.origin_urls(),
            rp.timeout(),
            // Exact origins only: no subdomains, no other ports.
            Some(false),
            Some(false),
        );
        Self {
            rp: rp.clone(),
            core,
            attestation,
        }
    }

    pub(crate) fn with_attestation(self, attestation: Option<AttestationAllowList>) -> Self {
        Self::new(&self.rp, attestation)
    }

    /// Whether registrations are checked against an attestation allow-list.
    pub(crate) fn has_attestation_list(&self) -> bool {
        self.attestation.is_some()
    }

    pub(crate) fn relying_party(&self) -> &RelyingParty {
        &self.rp
    }

    /// SHA-256 of the relying party id, as authenticator data carries it.
    fn rp_id_hash(&self) -> [u8; 32] {
        use sha2::Digest as _;
        sha2::Sha256::digest(self.rp.id().as_bytes()).into()
    }

    /// Options and state for registering a credential for `user_handle`, excluding `exclude`.
    pub(crate) fn start_registration(
        &self,
        user_handle: &[u8],
        user_name: &str,
        display_name: &str,
        exclude: Vec<Vec<u8>>,
        passkey: bool,
        conditional: bool,
    ) -> Result<(RegistrationOptions, Vec<u8>), Error> {
        // A conditional creation happens without a gesture, so without user verification too.
        let policy = if passkey && !conditional {
            UserVerificationPolicy::Required
        } else {
            UserVerificationPolicy::Preferred
        };
        let attestation = if self.attestation.is_some() {
            AttestationConveyancePreference::Direct
        } else {
            AttestationConveyancePreference::None
        };
        let builder = self
            .core
            .new_challenge_register_builder(user_handle, user_name, display_name)
            .map_err(|e| Error::WebAuthn(e.to_string()))?
            .user_verification_policy(policy)
            .exclude_credentials(Some(exclude))
            .require_resident_key(passkey)
            .credential_algorithms(ALGORITHMS.to_vec())
            .attestation(attestation)
            .reject_synchronised_authenticators(false)
            // WebAuthn Level 3 hints: a security key is a removable one; a passkey lives on this
            // device or a phone nearby.
            .hints(Some(if passkey {
                vec![PublicKeyCredentialHints::ClientDevice, PublicKeyCredentialHints::Hybrid]
            } else {
                vec![PublicKeyCredentialHints::SecurityKey]
            }));
        let (options, state) = self
            .core
            .generate_challenge_register(builder)
            .map_err(|e| Error::WebAuthn(e.to_string()))?;
        let ceremony = RegistrationCeremony {
            passkey,
            user_handle: user_handle.to_vec(),
            state,
            conditional,
        };
        let state = serde_json::to_vec(&ceremony).map_err(|e| Error::WebAuthn(e.to_string()))?;
        Ok((RegistrationOptions(options, None, conditional), state))
    }

    /// Verifies a registration response against its stored state.
    /// Returns the new credential and whether it was registered as a passkey, with its user handle.
    pub(crate) fn finish_registration(
        &self,
        response: &RegistrationResponse,
        state: &[u8],
    ) -> Result<(NewCredential, bool, Vec<u8>), Rejected> {
        let ceremony: RegistrationCeremony = serde_json::from_slice(state).map_err(|_| Rejected)?;
        // Only a ceremony started as conditional may come without user presence.
        let waived = if ceremony.conditional {
            presence_waived(response)
        } else {
            None
        };
        let response = waived.as_ref().unwrap_or(response);
        let credential = if okp::is_okp_registration(&response.0) {
            // Attestation chains cannot be checked on the EdDSA path.
            if self.attestation.is_some() {
                return Err(Rejected);
            }
            let view: okp::RegistrationView = serde_json::to_value(&ceremony.state)
                .and_then(serde_json::from_value)
                .map_err(|_| Rejected)?;
            okp::verify_registration(&response.0, &view, &self.rp_id_hash(), &self.rp.origin_urls())?
        } else {
            self.core
                .register_credential(&response.0, &ceremony.state, self.attestation.as_ref().map(|a| &a.list))
                .map_err(|_| Rejected)?
        };
        if ceremony.passkey && !ceremony.conditional && !credential.user_verified {
            // The core enforces this for the Required policy already; never rely on one check.
            return Err(Rejected);
        }
        let aaguid = attested_aaguid(response).filter(|a| a != &[0; 16]);
        let new = NewCredential {
            credential_id: credential.cred_id.to_vec(),
            // With an allow-list the core verified the chain to one of its trust anchors.
            credential: with_facts(
                serde_json::to_vec(&credential).map_err(|_| Rejected)?,
                self.attestation.is_some(),
                response.1,
            ),
            aaguid,
            sign_count: credential.counter,
            backup_eligible: credential.backup_eligible,
            backup_state: credential.backup_state,
            user_verified: credential.user_verified,
        };
        Ok((new, ceremony.passkey, ceremony.user_handle))
    }

    /// Options and state for authenticating with any of `credentials` (second factor), or with
    /// any discoverable credential when `credentials` is `None` (passwordless).
    ///
    /// `only` names the kind when every allowed credential is a security key or every one a
    /// passkey, for the request's hints.
    pub(crate) fn start_authentication(
        &self,
        credentials: Option<&[&[u8]]>,
        conditional: bool,
        only: Option<DeviceKind>,
    ) -> Result<(AuthenticationOptions, Vec<u8>), Error> {
        let (creds, policy) = match credentials {
            Some(list) => {
                let mut creds = Vec::with_capacity(list.len());
                for c in list {
                    creds.push(
                        decode_credential(c).map_err(|_| Error::WebAuthn("stored credential is corrupt".into()))?,
                    );
                }
                (creds, UserVerificationPolicy::Preferred)
            }
            None => (Vec::new(), UserVerificationPolicy::Required),
        };
        let hints = match (credentials.is_none(), only) {
            (true, _) | (false, Some(DeviceKind::Passkey)) => Some(vec![
                PublicKeyCredentialHints::ClientDevice,
                PublicKeyCredentialHints::Hybrid,
            ]),
            (false, Some(DeviceKind::SecurityKey)) => Some(vec![PublicKeyCredentialHints::SecurityKey]),
            _ => None,
        };
        let builder = self
            .core
            .new_challenge_authenticate_builder(creds, Some(policy))
            .map_err(|e| Error::WebAuthn(e.to_string()))?
            .hints(hints);
        let (mut options, mut state) = self
            .core
            .generate_challenge_authenticate(builder)
            .map_err(|e| Error::WebAuthn(e.to_string()))?;
        // The finish always verifies against the credentials stored *then*; keeping copies in
        // the ceremony state would only make it larger.
        state.set_allowed_credentials(Vec::new());
        if conditional {
            options.mediation = Some(Mediation::Conditional);
        }
        let state = serde_json::to_vec(&state).map_err(|e| Error::WebAuthn(e.to_string()))?;
        Ok((AuthenticationOptions(options, None), state))
    }

    /// Verifies an assertion against its stored state and the credentials allowed *now*.
    ///
    /// The counters passed to the core are zeroed: the counter policy is ours
    /// ([`crate::webauthn::counter`]), applied to the fresh stored counter.
    pub(crate) fn finish_authentication(
        &self,
        response: &AuthenticationResponse,
        state: &[u8],
        allowed: &[&[u8]],
    ) -> Result<Assertion, Rejected> {
        let mut state: AuthenticationState = serde_json::from_slice(state).map_err(|_| Rejected)?;
        let mut creds = Vec::with_capacity(allowed.len());
        // The flags the authenticator claims (authenticatorData byte 32; the signature over
        // them is checked by the core). A change of backup eligibility is ours to decide
        // (`backup_flags`), after the signature: the core's own refusal is turned off by
        // presenting the credential with the claimed eligibility.
        let claims_eligible = response
            .0
            .response
            .authenticator_data
            .get(32)
            .is_some_and(|flags| flags & 0x08 != 0);
        for c in allowed {
            let mut cred = decode_credential(c).map_err(|_| Rejected)?;
            cred.counter = 0;
            cred.backup_eligible = claims_eligible;
            creds.push(cred);
        }
        let ed25519 = creds
            .iter()
            .any(|c| c.cred_id.as_slice() == response.0.raw_id.as_slice() && okp::ed25519_key(&c.cred).is_some());
        if ed25519 {
            let view: okp::StateView = serde_json::to_value(&state)
                .and_then(serde_json::from_value)
                .map_err(|_| Rejected)?;
            let origins = self.rp.origin_urls();
            let expected = okp::Expected {
                rp_id_hash: self.rp_id_hash(),
                origins: &origins,
                challenge: &view.challenge,
                policy: view.policy,
                allow_backup_eligible_upgrade: view.allow_backup_eligible_upgrade,
            };
            return okp::verify_assertion(&response.0, &expected, &creds, okp::SignatureCheck::Ed25519Only);
        }
        state.set_allowed_credentials(creds);
        let result = self
            .core
            .authenticate_credential(&response.0, &state)
            .map_err(|_| Rejected)?;
        Ok(Assertion {
            credential_id: result.cred_id().to_vec(),
            counter: result.counter(),
            user_verified: result.user_verified(),
            backup_eligible: result.backup_eligible(),
            backup_state: result.backup_state(),
        })
    }
}

/// One credential another system registered, as [`imported_credential`] takes it.
pub(crate) struct Imported<'a> {
    pub(crate) credential_id: &'a [u8],
    pub(crate) cose_public_key: &'a [u8],
    pub(crate) sign_count: u32,
    pub(crate) discoverable: bool,
    pub(crate) backup_eligible: bool,
    pub(crate) backup_state: bool,
    pub(crate) transports: &'a [&'a str],
}

/// The core's credential for an imported one, serialised as the store keeps it: the COSE key
/// parsed and validated by the core (a point on the curve), of an algorithm we offer.
pub(crate) fn imported_credential(imported: &Imported<'_>) -> Result<Vec<u8>, InputError> {
    use serde_cbor_2::Value;
    const NOT_COSE: InputError = InputError::ImportedCredential("the public key is not a COSE key");
    if imported.cose_public_key.len() > 2048 {
        return Err(NOT_COSE);
    }
    let value: Value = serde_cbor_2::from_slice(imported.cose_public_key).map_err(|_| NOT_COSE)?;
    let Value::Map(map) = &value else {
        return Err(NOT_COSE);
    };
    let key = match (map.get(&Value::Integer(1)), map.get(&Value::Integer(3))) {
        (Some(Value::Integer(1)), _) | (_, Some(Value::Integer(-8))) => {
            let x = okp::parse_ed25519(&value).ok_or(InputError::ImportedCredential(
                "the public key is not a valid Ed25519 key",
            ))?;
            COSEKey {
                type_: COSEAlgorithm::EDDSA,
                key: COSEKeyType::EC_OKP(COSEOKPKey {
                    curve: EDDSACurve::ED25519,
                    x: x.to_vec(),
                }),
            }
        }
        (Some(Value::Integer(2)), Some(Value::Integer(-7))) | (Some(Value::Integer(3)), Some(Value::Integer(-257))) => {
            COSEKey::try_from(&value)
                .map_err(|_| InputError::ImportedCredential("the public key is not a valid ES256 or RS256 key"))?
        }
        _ => {
            return Err(InputError::ImportedCredential(
                "only EdDSA (Ed25519), ES256 (P-256) and RS256 keys are accepted",
            ));
        }
    };
    if !ALGORITHMS.contains(&key.type_) {
        return Err(InputError::ImportedCredential(
            "only EdDSA (Ed25519), ES256 (P-256) and RS256 keys are accepted",
        ));
    }
    let transports: Vec<AuthenticatorTransport> = imported
        .transports
        .iter()
        .filter_map(|t| t.trim().to_ascii_lowercase().parse().ok())
        .filter(|t| !matches!(t, AuthenticatorTransport::Unknown | AuthenticatorTransport::Test))
        .collect();
    let credential = Credential {
        cred_id: imported.credential_id.to_vec(),
        cred: key,
        counter: imported.sign_count,
        transports: (!transports.is_empty()).then_some(transports),
        // A passkey verified its user when it was registered there (every system we import
        // from requires it for passwordless); a security key may not have.
        user_verified: imported.discoverable,
        backup_eligible: imported.backup_eligible,
        backup_state: imported.backup_state,
        registration_policy: if imported.discoverable {
            UserVerificationPolicy::Required
        } else {
            UserVerificationPolicy::Preferred
        },
        extensions: RegisteredExtensions::none(),
        attestation: ParsedAttestation::default(),
        attestation_format: AttestationFormat::None,
    };
    serde_json::to_vec(&credential)
        .map(|json| with_facts(json, false, None))
        .map_err(|_| NOT_COSE)
}

/// What a `webauthn-rs` `Passkey`/`SecurityKey` JSON holds that an import needs.
pub(crate) struct WebauthnRsParts {
    pub(crate) credential_id: Vec<u8>,
    pub(crate) cose_public_key: Vec<u8>,
    pub(crate) sign_count: u32,
    pub(crate) backup_eligible: bool,
    pub(crate) backup_state: bool,
    pub(crate) transports: Vec<String>,
}

/// Reads `{"cred": Credential}` (webauthn-rs's `Passkey` and `SecurityKey`) and re-encodes its
/// key as COSE, so that it goes through the same checks as every other import.
pub(crate) fn webauthn_rs_credential(json: &str) -> Result<WebauthnRsParts, InputError> {
    use serde_cbor_2::Value;
    #[derive(Deserialize)]
    struct Wrapped {
        cred: Credential,
    }
    const SHAPE: InputError =
        InputError::ImportedCredential("not the JSON of a webauthn-rs Passkey or SecurityKey ({\"cred\": ...})");
    let wrapped: Wrapped = serde_json::from_str(json).map_err(|_| SHAPE)?;
    let cred = wrapped.cred;
    let mut map = BTreeMap::new();
    match (&cred.cred.type_, &cred.cred.key) {
        (COSEAlgorithm::ES256, COSEKeyType::EC_EC2(ec)) => {
            map.insert(Value::Integer(1), Value::Integer(2));
            map.insert(Value::Integer(3), Value::Integer(-7));
            map.insert(Value::Integer(-1), Value::Integer(1));
            map.insert(Value::Integer(-2), Value::Bytes(ec.x.clone()));
            map.insert(Value::Integer(-3), Value::Bytes(ec.y.clone()));
        }
        (COSEAlgorithm::RS256, COSEKeyType::RSA(rsa)) => {
            map.insert(Value::Integer(1), Value::Integer(3));
            map.insert(Value::Integer(3), Value::Integer(-257));
            map.insert(Value::Integer(-1), Value::Bytes(rsa.n.clone()));
            map.insert(Value::Integer(-2), Value::Bytes(rsa.e.to_vec()));
        }
        (COSEAlgorithm::EDDSA, COSEKeyType::EC_OKP(okp)) if okp.curve == EDDSACurve::ED25519 => {
            map.insert(Value::Integer(1), Value::Integer(1));
            map.insert(Value::Integer(3), Value::Integer(-8));
            map.insert(Value::Integer(-1), Value::Integer(6));
            map.insert(Value::Integer(-2), Value::Bytes(okp.x.clone()));
        }
        _ => {
            return Err(InputError::ImportedCredential(
                "only EdDSA (Ed25519), ES256 (P-256) and RS256 keys are accepted",
            ));
        }
    }
    let cose_public_key = serde_cbor_2::to_vec(&Value::Map(map)).map_err(|_| SHAPE)?;
    let transports = cred
        .transports
        .unwrap_or_default()
        .iter()
        .filter_map(|t| serde_json::to_value(t).ok())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    Ok(WebauthnRsParts {
        credential_id: cred.cred_id.to_vec(),
        cose_public_key,
        sign_count: cred.counter,
        backup_eligible: cred.backup_eligible,
        backup_state: cred.backup_state,
        transports,
    })
}

fn decode_credential(bytes: &[u8]) -> Result<Credential, serde_json::Error> {
    serde_json::from_slice(bytes)
}
