//! Which authenticators an organisation admits: rules per kind of credential, applied at
//! registration and again at every sign-in (pure).
//!
//! A rule that holds only at registration is a rule for the past: a credential that became
//! synced after it was registered, or a model found vulnerable since, would keep signing in.
//! So every assertion is checked against the rules as they are now, with what is recorded of
//! the credential (its AAGUID, whether it may be synced, whether its attestation was
//! verified), after the assertion's own backup flags are taken into account.

use std::fmt;

use crate::kind::DeviceKind;
use crate::webauthn::metadata::MetadataCatalog;

/// Which authenticator models (by AAGUID) a kind of credential may come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AaguidRule {
    /// Any model (the default).
    #[default]
    Any,
    /// Only these models; a credential without a known AAGUID is refused.
    Allow(Vec<[u8; 16]>),
    /// Any model but these.
    Deny(Vec<[u8; 16]>),
}

/// The rules for one kind of credential (security keys, or passkeys).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CredentialRules {
    device_bound: bool,
    aaguids: AaguidRule,
    attested: bool,
    certified: bool,
}

impl CredentialRules {
    /// No rule: every credential that verifies is admitted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only credentials whose key cannot be synced (not backup-eligible, as registered and as
    /// every assertion since says). A credential that becomes synced is refused from then on.
    #[must_use]
    pub fn device_bound(mut self) -> Self {
        self.device_bound = true;
        self
    }

    /// Only (or never) these authenticator models.
    #[must_use]
    pub fn aaguids(mut self, rule: AaguidRule) -> Self {
        self.aaguids = rule;
        self
    }

    /// Only credentials whose attestation was verified against a trust anchor at registration
    /// (see [`WebAuthnConfig::with_attestation_allow_list`](crate::webauthn::WebAuthnConfig::with_attestation_allow_list));
    /// self-attested and unattested ones, and imported ones, are refused.
    #[must_use]
    pub fn attested(mut self) -> Self {
        self.attested = true;
        self
    }

    /// Only models the metadata ([`CredentialPolicy::with_metadata`]) says are FIDO certified,
    /// at any level: a model it does not list, or lists without a certification, is refused
    /// (and every one while no metadata is loaded).
    #[must_use]
    pub fn certified(mut self) -> Self {
        self.certified = true;
        self
    }

    /// Whether a credential with these facts passes: `Err` with the first rule it breaks.
    ///
    /// # Errors
    ///
    /// The [`PolicyRefusal`] for the first rule the credential breaks.
    pub fn check(&self, facts: &CredentialFacts) -> Result<(), PolicyRefusal> {
        if self.device_bound && facts.synced {
            return Err(PolicyRefusal::Synced);
        }
        match (&self.aaguids, facts.aaguid) {
            (AaguidRule::Allow(list), Some(aaguid)) if !list.contains(&aaguid) => {
                return Err(PolicyRefusal::ModelNotAllowed);
            }
            (AaguidRule::Allow(_), None) => return Err(PolicyRefusal::ModelUnknown),
            (AaguidRule::Deny(list), Some(aaguid)) if list.contains(&aaguid) => {
                return Err(PolicyRefusal::ModelDenied);
            }
            _ => {}
        }
        if self.attested && !facts.attested {
            return Err(PolicyRefusal::NotAttested);
        }
        Ok(())
    }
}

/// What the rules look at: what is recorded of a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialFacts {
    /// Its authenticator model, if known.
    pub aaguid: Option<[u8; 16]>,
    /// Whether its key may be synced (backup-eligible).
    pub synced: bool,
    /// Whether its attestation was verified against a trust anchor at registration.
    pub attested: bool,
}

/// The rules per kind of credential.
///
/// ```
/// use multifactor::webauthn::{AaguidRule, CredentialPolicy, CredentialRules};
///
/// // Security keys only from two models, never synced; passkeys from anything but one model.
/// let yubikey_5 = [0xee, 0x88, 0x28, 0x79, 0x72, 0x1c, 0x49, 0x13, 0x97, 0x75, 0x3d, 0xfc, 0xce, 0x97, 0x07, 0x2a];
/// let solokey = [0x8b, 0xc5, 0x49, 0x68, 0x07, 0xb1, 0x40, 0x19, 0xb5, 0x9a, 0x2a, 0xa9, 0xb3, 0x47, 0x08, 0x2f];
/// let policy = CredentialPolicy::new()
///     .security_keys(CredentialRules::new().device_bound().aaguids(AaguidRule::Allow(vec![yubikey_5, solokey])))
///     .passkeys(CredentialRules::new().aaguids(AaguidRule::Deny(vec![solokey])));
/// # let _ = policy;
/// ```
#[derive(Debug, Clone, Default)]
pub struct CredentialPolicy {
    security_keys: CredentialRules,
    passkeys: CredentialRules,
    metadata: Option<MetadataCatalog>,
}

impl CredentialPolicy {
    /// No rules (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// The rules for security keys.
    #[must_use]
    pub fn security_keys(mut self, rules: CredentialRules) -> Self {
        self.security_keys = rules;
        self
    }

    /// The rules for passkeys.
    #[must_use]
    pub fn passkeys(mut self, rules: CredentialRules) -> Self {
        self.passkeys = rules;
        self
    }

    /// Checks every credential against the FIDO metadata in `catalog` too (keep a clone to
    /// refresh it): a model the metadata reports revoked, with its user verification bypassed
    /// or a key compromised ([`AuthenticatorStatus::is_compromise`](crate::webauthn::metadata::AuthenticatorStatus::is_compromise))
    /// is refused, at registration and at every sign-in, from the refresh that brings the
    /// report on; and [`CredentialRules::certified`] can ask for a certified model.
    #[must_use]
    pub fn with_metadata(mut self, catalog: MetadataCatalog) -> Self {
        self.metadata = Some(catalog);
        self
    }

    /// The rules for a kind of credential (no rules for other kinds).
    pub fn rules(&self, kind: DeviceKind) -> Option<&CredentialRules> {
        match kind {
            DeviceKind::SecurityKey => Some(&self.security_keys),
            DeviceKind::Passkey => Some(&self.passkeys),
            _ => None,
        }
    }

    /// Whether a credential of `kind` with these facts passes.
    ///
    /// # Errors
    ///
    /// The [`PolicyRefusal`] for the first rule the credential breaks.
    pub fn check(&self, kind: DeviceKind, facts: &CredentialFacts) -> Result<(), PolicyRefusal> {
        let Some(rules) = self.rules(kind) else {
            return Ok(());
        };
        rules.check(facts)?;
        let metadata = self.metadata.as_ref().and_then(MetadataCatalog::current);
        let model = facts
            .aaguid
            .and_then(|a| metadata.as_ref().and_then(|m| m.get(&a).cloned()));
        if model.as_ref().is_some_and(|m| m.compromise().is_some()) {
            return Err(PolicyRefusal::Compromised);
        }
        if rules.certified && model.and_then(|m| m.certification()).is_none() {
            return Err(PolicyRefusal::NotCertified);
        }
        Ok(())
    }
}

/// Why the policy refuses a credential that verified: a reason the host may show, since the
/// person proved they hold the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PolicyRefusal {
    /// Its key may be synced to other devices, and only device-bound keys are admitted.
    Synced,
    /// Its authenticator model is not on the allow-list.
    ModelNotAllowed,
    /// Its authenticator model is unknown, and only listed models are admitted.
    ModelUnknown,
    /// Its authenticator model is on the deny-list.
    ModelDenied,
    /// Its attestation was not verified, and only attested credentials are admitted.
    NotAttested,
    /// The FIDO metadata reports its model revoked, its user verification bypassable or a key
    /// of it compromised.
    Compromised,
    /// The FIDO metadata does not list its model as certified, and only certified ones are
    /// admitted.
    NotCertified,
}

impl PolicyRefusal {
    /// A stable name, for logs and audit events.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Synced => "synced",
            Self::ModelNotAllowed => "model_not_allowed",
            Self::ModelUnknown => "model_unknown",
            Self::ModelDenied => "model_denied",
            Self::NotAttested => "not_attested",
            Self::Compromised => "compromised",
            Self::NotCertified => "not_certified",
        }
    }
}

impl fmt::Display for PolicyRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Synced => "this key can be synced to other devices, and only keys bound to one device are allowed",
            Self::ModelNotAllowed => "this authenticator model is not on the organisation's list",
            Self::ModelUnknown => {
                "this authenticator does not say which model it is, and only listed models are allowed"
            }
            Self::ModelDenied => "this authenticator model is no longer allowed",
            Self::NotAttested => "this authenticator's make could not be verified, and only verified ones are allowed",
            Self::Compromised => "this authenticator model has a known security problem and is no longer allowed",
            Self::NotCertified => "this authenticator model is not FIDO certified, and only certified ones are allowed",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 16] = [1; 16];
    const B: [u8; 16] = [2; 16];

    fn facts(aaguid: Option<[u8; 16]>, synced: bool, attested: bool) -> CredentialFacts {
        CredentialFacts {
            aaguid,
            synced,
            attested,
        }
    }

    #[test]
    fn each_rule_refuses_what_it_names_and_nothing_else() {
        let none = CredentialRules::new();
        for f in [facts(None, true, false), facts(Some(A), false, true)] {
            assert_eq!(none.check(&f), Ok(()));
        }
        let bound = CredentialRules::new().device_bound();
        assert_eq!(bound.check(&facts(Some(A), true, true)), Err(PolicyRefusal::Synced));
        assert_eq!(bound.check(&facts(None, false, false)), Ok(()));
        let allow = CredentialRules::new().aaguids(AaguidRule::Allow(vec![A]));
        assert_eq!(allow.check(&facts(Some(A), true, false)), Ok(()));
        assert_eq!(
            allow.check(&facts(Some(B), false, true)),
            Err(PolicyRefusal::ModelNotAllowed)
        );
        assert_eq!(allow.check(&facts(None, false, true)), Err(PolicyRefusal::ModelUnknown));
        let deny = CredentialRules::new().aaguids(AaguidRule::Deny(vec![A]));
        assert_eq!(
            deny.check(&facts(Some(A), false, true)),
            Err(PolicyRefusal::ModelDenied)
        );
        assert_eq!(deny.check(&facts(Some(B), false, true)), Ok(()));
        assert_eq!(deny.check(&facts(None, false, true)), Ok(()));
        let attested = CredentialRules::new().attested();
        assert_eq!(
            attested.check(&facts(Some(A), false, false)),
            Err(PolicyRefusal::NotAttested)
        );
        assert_eq!(attested.check(&facts(Some(A), true, true)), Ok(()));
    }

    #[test]
    fn rules_are_per_kind() {
        let policy = CredentialPolicy::new().security_keys(CredentialRules::new().device_bound());
        let synced = facts(Some(A), true, true);
        assert_eq!(
            policy.check(DeviceKind::SecurityKey, &synced),
            Err(PolicyRefusal::Synced)
        );
        assert_eq!(policy.check(DeviceKind::Passkey, &synced), Ok(()));
        assert_eq!(policy.check(DeviceKind::Totp, &synced), Ok(()));
        assert!(!PolicyRefusal::ModelDenied.to_string().is_empty());
        assert_eq!(PolicyRefusal::NotAttested.as_str(), "not_attested");
    }
}
