//! WebAuthn: security keys as a second factor and passkeys for passwordless sign-in.
//!
//! Built on `webauthn-rs-core` (pinned, wrapped in a private module: its expert-only API is not
//! part of ours). This layer makes the policy decisions, in the spirit of the high-level
//! `webauthn-rs` crate and at least as strict:
//!
//! | | security key | passkey |
//! |---|---|---|
//! | use | second factor after a password | passwordless, username-less, or second factor |
//! | user verification | preferred (and required later if it happened at registration) | required |
//! | discoverable credential | not required | required |
//! | algorithms | EdDSA (Ed25519), ES256, RS256 | same |
//! | attestation | `none`, or an allow-list of authenticator models | same |
//!
//! - The user's existing credentials are always excluded, so one authenticator is not
//!   registered twice; a credential id is unique across all users (the store enforces it).
//! - Ceremony state of a known user (registration, second factor) stays on the server, in the
//!   [`DeviceStore`](crate::DeviceStore), bound to the user and the ceremony kind, expiring
//!   after 5 minutes by default, and taken out exactly once: a replayed, expired or foreign
//!   finish is [`Outcome::Rejected`](crate::Outcome::Rejected).
//! - A passwordless sign-in, which anyone may start, stores nothing at its start: its state
//!   travels in the [`PasswordlessCeremony`] handle under a tag only the service's keys make, so
//!   a flood of starts costs no storage. The first finish whose assertion verifies marks it used,
//!   atomically in the store; a replayed, expired, forged or altered one is rejected.
//! - Sign counters and backup flags are written back with a compare-and-swap. A counter that
//!   does not advance on an authenticator that counts is rejected as a possible clone
//!   ([`CounterPolicy`]); synced passkeys that always report 0 are fine. Backup flags that
//!   change after registration (a credential imported without them, a key that started or
//!   stopped syncing) are followed, recorded and audited, never a lockout
//!   ([`BackupFlagsPolicy`]).
//! - Credentials registered elsewhere for the same relying party id can be imported
//!   ([`WebAuthnImport`](crate::import::WebAuthnImport), [`crate::import`]): their owners keep their security keys and passkeys.
//! - EdDSA (Ed25519, COSE -8), which `webauthn-rs-core` 0.6.2 cannot verify, is registered and
//!   verified on a path beside it that makes every check the core makes, with the core's own
//!   parsers, and differs only in the signature check (`ed25519-dalek`'s `verify_strict`:
//!   small-order keys and non-canonical signatures refused). Two property tests prove it decides
//!   as the core does on ES256 assertions, valid and validly signed mutations of every checked
//!   field. Ed25519 credentials take attestation `none` or `packed` self attestation, so a
//!   relying party with an attestation allow-list refuses them.
//! - Every successful verification carries its evidence for the session
//!   ([`Verified::evidence`](crate::Verified::evidence)): kind, time, user verification, synced
//!   or device-bound, and RFC 8176 `amr` values; [`Evidence::is_fresh`](crate::evidence::Evidence::is_fresh)
//!   is the step-up check before a sensitive action.
//! - Challenges come from `webauthn-rs-core`'s own generator, and its registration check reads
//!   the system clock: the host's [`Rng`](crate::Rng) and [`Clock`](crate::Clock) do not reach
//!   inside. Ceremony ids, expiry and last-used times use ours.

pub(crate) mod backup_flags;
pub(crate) mod ceremony;
pub(crate) mod counter;
pub(crate) mod engine;
mod fleet;
pub mod metadata;
pub(crate) mod okp;
mod passwordless;
mod providers;
mod relying_party;
mod signals;
pub(crate) mod verdict;
mod wire;

pub use self::backup_flags::BackupFlagsPolicy;
pub use self::ceremony::{CeremonyKind, CeremonyRecord};
pub use self::counter::CounterPolicy;
pub use self::engine::AttestationAllowList;
pub use self::fleet::{AaguidRule, CredentialFacts, CredentialPolicy, CredentialRules, PolicyRefusal};
pub use self::passwordless::{MAX_PASSWORDLESS_CEREMONY_CHARS, PasswordlessCeremony};
pub use self::providers::{MAX_CATALOG_BYTES, MAX_ICON_BYTES, Provider, ProviderCatalog, Providers};
pub use self::relying_party::{MAX_RELATED_ORIGIN_LABELS, RelyingParty};
pub use self::signals::{AllAcceptedCredentials, CurrentUserDetails, UnknownCredential};
pub use self::wire::{
    AuthenticationOptions, AuthenticationResponse, PrfInputs, RegistrationOptions, RegistrationResponse,
};

use std::fmt;

use crate::error::{ConfigError, InputError};
use crate::id::DeviceName;
use crate::kind::DeviceKind;

/// What a store keeps of a WebAuthn credential: public data only.
#[derive(Clone, PartialEq, Eq)]
pub struct WebAuthnRecord {
    /// The credential id the authenticator chose (unique across all users).
    pub credential_id: Vec<u8>,
    /// The WebAuthn user handle the credential was registered under (random, not the user id).
    pub user_handle: Vec<u8>,
    /// The credential's public key and registration facts, as JSON (opaque to stores).
    pub credential: Vec<u8>,
    /// The last sign counter seen (0 for authenticators that do not count).
    pub sign_count: u32,
    /// The authenticator said the credential may be backed up or synced.
    pub backup_eligible: bool,
    /// The authenticator said the credential is backed up or synced now.
    pub backup_state: bool,
    /// Registered as a discoverable passkey (true) or a security key (false).
    pub discoverable: bool,
    /// User verification happened at registration.
    pub user_verified: bool,
    /// The authenticator model's AAGUID, if registration or import recorded a non-zero one (a
    /// column of its own in the SQL stores, which the fleet policy and the provider names read).
    pub aaguid: Option<[u8; 16]>,
}

impl WebAuthnRecord {
    /// Whether its attestation was verified against a trust anchor of the attestation
    /// allow-list when it was registered (never for an imported credential).
    pub fn attested(&self) -> bool {
        engine::stored_attested(&self.credential)
    }

    /// Whether its authenticator enabled the `prf` extension when it was registered (`None`:
    /// not asked, or the browser did not say).
    pub fn prf(&self) -> Option<bool> {
        engine::stored_prf(&self.credential)
    }

    /// What a [`CredentialPolicy`] looks at.
    pub fn facts(&self) -> CredentialFacts {
        CredentialFacts {
            aaguid: self.aaguid,
            synced: self.backup_eligible,
            attested: self.attested(),
        }
    }
}

impl fmt::Debug for WebAuthnRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebAuthnRecord")
            .field("credential_id_len", &self.credential_id.len())
            .field("sign_count", &self.sign_count)
            .field("backup_eligible", &self.backup_eligible)
            .field("backup_state", &self.backup_state)
            .field("discoverable", &self.discoverable)
            .field("user_verified", &self.user_verified)
            .field("aaguid", &self.aaguid)
            .finish_non_exhaustive()
    }
}

/// What one successful authentication changes on a credential, written with a compare-and-swap
/// on the sign counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebAuthnUse {
    /// The new sign counter (never lower than the stored one).
    pub sign_count: u32,
    /// The backup-eligible flag now.
    pub backup_eligible: bool,
    /// The backup-state flag now.
    pub backup_state: bool,
}

/// The name of a new credential its user did not name: its provider's ("iCloud Keychain") when
/// the catalog knows its AAGUID and the name is a valid device name, else the kind's default.
/// The one rule registration and import share.
pub(crate) fn unnamed_device_name(
    config: Option<&WebAuthnConfig>,
    kind: DeviceKind,
    aaguid: Option<[u8; 16]>,
) -> Result<DeviceName, InputError> {
    let provider = config
        .zip(aaguid)
        .and_then(|(c, a)| c.providers.current().get(&a).map(|p| p.name.clone()));
    match provider {
        Some(p) => DeviceName::new(&p).or_else(|_| DeviceName::new(kind.default_name())),
        None => DeviceName::new(kind.default_name()),
    }
}

/// WebAuthn settings: the relying party, ceremony lifetime, clone policy, attestation.
#[derive(Debug, Clone)]
pub struct WebAuthnConfig {
    pub(crate) engine: engine::Engine,
    pub(crate) ceremony_ttl_secs: u64,
    pub(crate) counter_policy: CounterPolicy,
    pub(crate) backup_flags_policy: BackupFlagsPolicy,
    pub(crate) providers: Providers,
    pub(crate) credential_policy: CredentialPolicy,
}

impl WebAuthnConfig {
    /// Default ceremony lifetime: 5 minutes.
    pub const DEFAULT_CEREMONY_TTL_SECS: u64 = 300;

    /// Settings for `rp`, with ceremonies expiring after 5 minutes, counter regressions
    /// rejected, and attestation `none`.
    pub fn new(rp: RelyingParty) -> Self {
        Self {
            engine: engine::Engine::new(&rp, None),
            ceremony_ttl_secs: Self::DEFAULT_CEREMONY_TTL_SECS,
            counter_policy: CounterPolicy::default(),
            backup_flags_policy: BackupFlagsPolicy::default(),
            providers: Providers::default(),
            credential_policy: CredentialPolicy::default(),
        }
    }

    /// How long a started ceremony may be finished (30..=3600 seconds).
    ///
    /// # Errors
    ///
    /// [`ConfigError::WebAuthn`] when out of bounds.
    pub fn with_ceremony_ttl(mut self, secs: u64) -> Result<Self, ConfigError> {
        if !(30..=3600).contains(&secs) {
            return Err(ConfigError::WebAuthn("ceremony lifetime must be 30 to 3600 seconds"));
        }
        self.ceremony_ttl_secs = secs;
        Ok(self)
    }

    /// What to do when a counting authenticator's counter does not advance.
    #[must_use]
    pub fn with_counter_policy(mut self, policy: CounterPolicy) -> Self {
        self.counter_policy = policy;
        self
    }

    /// Provider names and icons by AAGUID (keep a clone of the handle to refresh it): a new
    /// passkey without a name is named after its provider, and [`DeviceInfo`](crate::DeviceInfo)
    /// carries the provider. Empty by default.
    #[must_use]
    pub fn with_providers(mut self, providers: Providers) -> Self {
        self.providers = providers;
        self
    }

    /// The provider catalog handle.
    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    /// What to do when a credential's backup flags change between registration and a sign-in
    /// (default [`BackupFlagsPolicy::Follow`]: accept, record, audit).
    #[must_use]
    pub fn with_backup_flags_policy(mut self, policy: BackupFlagsPolicy) -> Self {
        self.backup_flags_policy = policy;
        self
    }

    /// Which authenticators each kind of credential may come from (device-bound only, an AAGUID
    /// allow-list or deny-list, attested only), applied at registration and again at every
    /// sign-in: a credential that no longer passes (the policy changed, or it became synced) is
    /// refused with [`Outcome::NotAllowed`](crate::Outcome::NotAllowed) and an audit event.
    /// None by default.
    #[must_use]
    pub fn with_credential_policy(mut self, policy: CredentialPolicy) -> Self {
        self.credential_policy = policy;
        self
    }

    /// The credential policy.
    pub fn credential_policy(&self) -> &CredentialPolicy {
        &self.credential_policy
    }

    /// Accept only authenticators whose attestation chains to one of these models
    /// (attestation `direct` is then requested).
    #[must_use]
    pub fn with_attestation_allow_list(mut self, list: AttestationAllowList) -> Self {
        self.engine = self.engine.with_attestation(Some(list));
        self
    }

    /// The relying party.
    pub fn relying_party(&self) -> &RelyingParty {
        self.engine.relying_party()
    }
}
/// The user handle an assertion returned, against the one its credential was registered under
/// (WebAuthn §7.2 step 6). A passwordless sign-in `required`s one, since it names the account; a
/// second factor accepts none (a security key need not return it) but never another one. The
/// handle is not secret, but it is compared without branching on its bytes anyway.
pub(crate) fn user_handle_ok(returned: Option<&[u8]>, registered: &[u8], required: bool) -> bool {
    match returned {
        Some(handle) => crate::ct::eq_bytes(handle, registered),
        None => !required,
    }
}
