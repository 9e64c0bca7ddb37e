//! Authenticator metadata from the FIDO Metadata Service (MDS3): the BLOB the host downloads,
//! verified and kept as a refreshable catalogue of models and their status.
//!
//! The library fetches nothing. The host downloads `https://mds3.fidoalliance.org/` (a signed
//! JWT, a few MiB) on its own schedule, hands the text to [`Metadata::from_blob`], and keeps
//! the result in a [`MetadataCatalog`] that the credential policy reads
//! ([`CredentialPolicy::with_metadata`](crate::webauthn::CredentialPolicy::with_metadata)).
//!
//! # What is verified
//!
//! - The JWS signature, by the leaf certificate of its `x5c` header, whose chain must lead to
//!   one of the configured roots ([`MetadataRoots::fido`]: the GlobalSign roots the FIDO
//!   Alliance signs with; tests and private services configure their own), valid at the
//!   service's clock. The signature check and the chain walk are `compact_jwt`'s (the
//!   webauthn-rs project's JWS crate). Certificate revocation lists are not fetched.
//! - `nextUpdate`: a BLOB whose next update date has passed is refused (it is stale, and a
//!   revocation published since would be missed).
//! - `no`, the serial number: a catalogue takes only a BLOB with a higher serial than the one
//!   it holds, so an old BLOB cannot be replayed to hide a revocation.
//!
//! # What is read
//!
//! Per FIDO2 entry: its AAGUID, description, icon, status reports and attestation root
//! certificates. Everything else is ignored, so a BLOB with fields added after this version
//! still reads.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use compact_jwt::crypto::{Certificate, DecodeDer, DecodePem, JwsX509VerifierBuilder};
use compact_jwt::{JwsCompact, JwsVerifier};
use serde::Deserialize;

use crate::clock::UnixTime;
use crate::error::ConfigError;

/// Largest BLOB accepted: 32 MiB (the FIDO Alliance's is a few MiB).
pub const MAX_BLOB_BYTES: usize = 32 << 20;

/// The roots a BLOB's signing chain must lead to.
#[derive(Clone)]
pub struct MetadataRoots(Vec<Certificate>);

impl fmt::Debug for MetadataRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MetadataRoots({} certificates)", self.0.len())
    }
}

impl MetadataRoots {
    /// The roots the FIDO Alliance's Metadata Service signs with: GlobalSign Root CA R3 and
    /// GlobalSign Root R46.
    ///
    /// # Errors
    ///
    /// Never with the certificates shipped; [`ConfigError::Attestation`] would say one does
    /// not parse.
    pub fn fido() -> Result<Self, ConfigError> {
        Self::from_pem(&[
            include_str!("roots/globalsign-root-ca-r3.pem"),
            include_str!("roots/globalsign-root-r46.pem"),
        ])
    }

    /// Roots from PEM text (a private metadata service, or a test's own root).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Attestation`] if one does not parse, or none is given.
    pub fn from_pem(pems: &[&str]) -> Result<Self, ConfigError> {
        let roots = pems
            .iter()
            .map(|pem| Certificate::from_pem(pem.trim().as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ConfigError::Attestation("a metadata root is not a PEM X.509 certificate"))?;
        Self::new(roots)
    }

    /// Roots from DER.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Attestation`] if one does not parse, or none is given.
    pub fn from_der(ders: &[&[u8]]) -> Result<Self, ConfigError> {
        let roots = ders
            .iter()
            .map(|der| Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ConfigError::Attestation("a metadata root is not a DER X.509 certificate"))?;
        Self::new(roots)
    }

    fn new(roots: Vec<Certificate>) -> Result<Self, ConfigError> {
        if roots.is_empty() {
            return Err(ConfigError::Attestation("no metadata root given"));
        }
        Ok(Self(roots))
    }
}

/// Why a BLOB is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// Not a compact JWS, too large, or without an `x5c` chain.
    #[error("not a metadata BLOB: {0}")]
    Malformed(&'static str),
    /// The signing chain does not lead to a configured root, or a certificate of it is not
    /// valid now.
    #[error("the metadata BLOB's signing chain is not trusted")]
    Untrusted,
    /// The signature does not verify.
    #[error("the metadata BLOB's signature does not verify")]
    BadSignature,
    /// The signed payload is not MDS3 metadata.
    #[error("the metadata BLOB's payload is not MDS3 metadata: {0}")]
    Payload(String),
    /// Its `nextUpdate` date has passed: download a fresh one.
    #[error("the metadata BLOB is out of date (next update was due {next_update})")]
    Expired {
        /// The date it was due, as the BLOB says it.
        next_update: String,
    },
    /// Its serial number is not above the one the catalogue holds.
    #[error("the metadata BLOB (serial {got}) is not newer than the one held (serial {held})")]
    NotNewer {
        /// The BLOB's serial.
        got: u64,
        /// The serial held.
        held: u64,
    },
}

/// An authenticator status from the metadata's status reports (MDS3 §3.1.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthenticatorStatus {
    /// `FIDO_CERTIFIED` or `FIDO_CERTIFIED_L*`: certified, at this level (0: no level named).
    Certified(u8),
    /// `NOT_FIDO_CERTIFIED`.
    NotCertified,
    /// `SELF_ASSERTION_SUBMITTED`.
    SelfAsserted,
    /// `UPDATE_AVAILABLE`.
    UpdateAvailable,
    /// `USER_VERIFICATION_BYPASS`: malware can bypass user verification.
    UserVerificationBypass,
    /// `ATTESTATION_KEY_COMPROMISE`: the model's attestation key is known to others.
    AttestationKeyCompromise,
    /// `USER_KEY_REMOTE_COMPROMISE`: user keys can be extracted remotely.
    UserKeyRemoteCompromise,
    /// `USER_KEY_PHYSICAL_COMPROMISE`: user keys can be extracted with the device in hand.
    UserKeyPhysicalCompromise,
    /// `REVOKED`: the FIDO Alliance revoked the model.
    Revoked,
    /// A status this version does not know.
    Other(String),
}

impl AuthenticatorStatus {
    fn from_name(name: &str) -> Self {
        match name {
            "FIDO_CERTIFIED" => Self::Certified(0),
            "FIDO_CERTIFIED_L1" => Self::Certified(1),
            "FIDO_CERTIFIED_L1plus" => Self::Certified(1),
            "FIDO_CERTIFIED_L2" => Self::Certified(2),
            "FIDO_CERTIFIED_L2plus" => Self::Certified(2),
            "FIDO_CERTIFIED_L3" => Self::Certified(3),
            "FIDO_CERTIFIED_L3plus" => Self::Certified(3),
            "NOT_FIDO_CERTIFIED" => Self::NotCertified,
            "SELF_ASSERTION_SUBMITTED" => Self::SelfAsserted,
            "UPDATE_AVAILABLE" => Self::UpdateAvailable,
            "USER_VERIFICATION_BYPASS" => Self::UserVerificationBypass,
            "ATTESTATION_KEY_COMPROMISE" => Self::AttestationKeyCompromise,
            "USER_KEY_REMOTE_COMPROMISE" => Self::UserKeyRemoteCompromise,
            "USER_KEY_PHYSICAL_COMPROMISE" => Self::UserKeyPhysicalCompromise,
            "REVOKED" => Self::Revoked,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether a credential of a model with this status must not be trusted: revoked, user
    /// verification bypassed, or a key compromised.
    pub fn is_compromise(&self) -> bool {
        matches!(
            self,
            Self::Revoked
                | Self::UserVerificationBypass
                | Self::AttestationKeyCompromise
                | Self::UserKeyRemoteCompromise
                | Self::UserKeyPhysicalCompromise
        )
    }
}

/// What the metadata says of one authenticator model.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthenticatorMetadata {
    /// Its description ("YubiKey 5 Series with NFC").
    pub description: String,
    /// Its icon, a `data:` URL, if the metadata has one.
    pub icon: Option<String>,
    /// Its status reports in effect (effective date at or before the BLOB was read), in the
    /// order the metadata lists them.
    pub statuses: Vec<AuthenticatorStatus>,
    /// Its attestation trust anchors (DER), as the metadata lists them (see
    /// [`AttestationAllowList::from_metadata`](crate::webauthn::AttestationAllowList::from_metadata)).
    pub attestation_roots: Vec<Vec<u8>>,
}

impl AuthenticatorMetadata {
    /// The first compromise among its statuses, if any: once reported, a compromise is not
    /// undone by a later report (a fixed firmware is another model version, not the same keys).
    pub fn compromise(&self) -> Option<&AuthenticatorStatus> {
        self.statuses.iter().find(|s| s.is_compromise())
    }

    /// Its highest FIDO certification level, if it is certified.
    pub fn certification(&self) -> Option<u8> {
        self.statuses
            .iter()
            .filter_map(|s| match s {
                AuthenticatorStatus::Certified(level) => Some(*level),
                _ => None,
            })
            .max()
    }
}

/// A verified metadata BLOB: its serial, when the next is due, and the FIDO2 models by AAGUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    serial: u64,
    next_update: String,
    models: HashMap<[u8; 16], AuthenticatorMetadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    no: u64,
    next_update: String,
    #[serde(default)]
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    aaguid: Option<String>,
    metadata_statement: Option<Statement>,
    #[serde(default)]
    status_reports: Vec<StatusReport>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    #[serde(default)]
    description: String,
    icon: Option<String>,
    /// Standard base64 DER certificates.
    #[serde(default)]
    attestation_root_certificates: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusReport {
    status: String,
    effective_date: Option<String>,
}

/// A calendar date `YYYY-MM-DD` as the Unix time of its first second (UTC).
fn date_secs(date: &str) -> Option<u64> {
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days).ok()?.checked_mul(86_400)
}

impl Metadata {
    /// Verifies a BLOB (the JWT text the Metadata Service serves) against `roots` at `now`,
    /// and reads it. See the [module docs](self) for what is checked.
    ///
    /// # Errors
    ///
    /// [`MetadataError`] for a BLOB that is malformed, untrusted, badly signed, not MDS3
    /// metadata, or past its next update.
    pub fn from_blob(blob: &str, roots: &MetadataRoots, now: UnixTime) -> Result<Self, MetadataError> {
        if blob.len() > MAX_BLOB_BYTES {
            return Err(MetadataError::Malformed("larger than 32 MiB"));
        }
        let jws = JwsCompact::from_str(blob.trim()).map_err(|_| MetadataError::Malformed("not a compact JWS"))?;
        let (leaf, chain) = jws
            .get_x5c_chain()
            .map_err(|_| MetadataError::Malformed("an x5c certificate does not parse"))?
            .ok_or(MetadataError::Malformed("no x5c certificate chain"))?;
        let mut builder = JwsX509VerifierBuilder::new(&leaf, &chain);
        for root in &roots.0 {
            builder = builder.add_trust_root(root.clone());
        }
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now.as_secs());
        let verifier = builder.build(at).map_err(|_| MetadataError::Untrusted)?;
        let released = verifier.verify(&jws).map_err(|_| MetadataError::BadSignature)?;
        let payload: Payload =
            serde_json::from_slice(released.payload()).map_err(|e| MetadataError::Payload(e.to_string()))?;
        let due = date_secs(&payload.next_update)
            .ok_or_else(|| MetadataError::Payload("nextUpdate is not a date YYYY-MM-DD".to_owned()))?;
        // Good through the whole day it names.
        if now.as_secs() >= due.saturating_add(86_400) {
            return Err(MetadataError::Expired {
                next_update: payload.next_update,
            });
        }
        let mut models = HashMap::new();
        for entry in payload.entries {
            let Some(aaguid) = entry.aaguid.as_deref().and_then(|a| uuid::Uuid::parse_str(a).ok()) else {
                // A UAF or U2F entry: no AAGUID, nothing a WebAuthn credential names.
                continue;
            };
            let statement = entry.metadata_statement.unwrap_or(Statement {
                description: String::new(),
                icon: None,
                attestation_root_certificates: Vec::new(),
            });
            // A root that does not decode is left out (and its model then attests nothing).
            let attestation_roots = statement
                .attestation_root_certificates
                .iter()
                .filter_map(|b64| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64.trim()).ok())
                .collect();
            let statuses = entry
                .status_reports
                .iter()
                .filter(|r| {
                    r.effective_date
                        .as_deref()
                        .and_then(date_secs)
                        .is_none_or(|from| from <= now.as_secs())
                })
                .map(|r| AuthenticatorStatus::from_name(&r.status))
                .collect();
            models.insert(
                *aaguid.as_bytes(),
                AuthenticatorMetadata {
                    description: statement.description,
                    icon: statement.icon,
                    statuses,
                    attestation_roots,
                },
            );
        }
        Ok(Self {
            serial: payload.no,
            next_update: payload.next_update,
            models,
        })
    }

    /// Its serial number (`no`).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// When the next BLOB is due, as it says (`YYYY-MM-DD`).
    pub fn next_update(&self) -> &str {
        &self.next_update
    }

    /// What it says of a model.
    pub fn get(&self, aaguid: &[u8; 16]) -> Option<&AuthenticatorMetadata> {
        self.models.get(aaguid)
    }

    /// Every model it describes, by AAGUID, in no particular order.
    pub fn models(&self) -> impl Iterator<Item = (&[u8; 16], &AuthenticatorMetadata)> {
        self.models.iter()
    }

    /// How many FIDO2 models it describes.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether it describes none.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

/// The metadata a running service uses, refreshed while it runs. Clones share it.
#[derive(Clone, Default)]
pub struct MetadataCatalog(Arc<RwLock<Option<Arc<Metadata>>>>);

impl fmt::Debug for MetadataCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.current() {
            Some(m) => write!(f, "MetadataCatalog(serial {}, {} models)", m.serial, m.len()),
            None => f.write_str("MetadataCatalog(empty)"),
        }
    }
}

impl MetadataCatalog {
    /// An empty catalogue (until [`refresh`](Self::refresh): every model is unknown).
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a newer BLOB's metadata.
    ///
    /// # Errors
    ///
    /// [`MetadataError::NotNewer`] if its serial is not above the one held (nothing changes).
    pub fn refresh(&self, metadata: Metadata) -> Result<(), MetadataError> {
        let mut held = match self.0.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(current) = held.as_ref()
            && metadata.serial <= current.serial
        {
            return Err(MetadataError::NotNewer {
                got: metadata.serial,
                held: current.serial,
            });
        }
        *held = Some(Arc::new(metadata));
        Ok(())
    }

    /// The metadata held now, if any.
    pub fn current(&self) -> Option<Arc<Metadata>> {
        match self.0.read() {
            Ok(held) => held.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_read_exactly_and_strictly() {
        assert_eq!(date_secs("1970-01-01"), Some(0));
        assert_eq!(date_secs("2000-03-01"), Some(951_868_800));
        assert_eq!(date_secs("2026-12-07"), Some(1_796_601_600));
        for bad in [
            "",
            "2026-12",
            "2026-13-01",
            "2026-12-00",
            "26-12-07",
            "2026-12-07T00:00:00Z",
            "x026-12-07",
        ] {
            assert_eq!(date_secs(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_fido_roots_parse() {
        assert_eq!(MetadataRoots::fido().unwrap().0.len(), 2);
        assert!(MetadataRoots::from_pem(&[]).is_err());
        assert!(MetadataRoots::from_pem(&["not a certificate"]).is_err());
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let roots = MetadataRoots::fido().unwrap();
        for blob in ["", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA", &"x".repeat(100)] {
            assert!(matches!(
                Metadata::from_blob(blob, &roots, UnixTime::from_secs(0)),
                Err(MetadataError::Malformed(_))
            ));
        }
    }

    #[test]
    fn compromises_stay_and_levels_are_read() {
        let m = AuthenticatorMetadata {
            description: "x".into(),
            icon: None,
            statuses: vec![
                AuthenticatorStatus::Certified(1),
                AuthenticatorStatus::UserKeyPhysicalCompromise,
                AuthenticatorStatus::Certified(2),
            ],
            attestation_roots: Vec::new(),
        };
        assert_eq!(m.compromise(), Some(&AuthenticatorStatus::UserKeyPhysicalCompromise));
        assert_eq!(m.certification(), Some(2));
        assert_eq!(
            AuthenticatorStatus::from_name("FIDO_CERTIFIED_L3plus"),
            AuthenticatorStatus::Certified(3)
        );
        assert!(matches!(
            AuthenticatorStatus::from_name("NEW_THING"),
            AuthenticatorStatus::Other(_)
        ));
    }
}
