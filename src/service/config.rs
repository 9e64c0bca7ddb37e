//! What the service is configured with: TOTP, throttling, backup codes, remember-this-browser,
//! assurance and WebAuthn settings, each validated when built.

use crate::backup_codes::{BackupCodeConfig, Pepper};
use crate::error::ConfigError;
use crate::policy::AssurancePolicy;
use crate::remembered_browser::{KnownBrowserConfig, RememberedBrowserConfig};
use crate::throttle::ThrottlePolicy;
use crate::totp::TotpConfig;
use crate::webauthn::WebAuthnConfig;

/// Everything the service is configured with, each part validated when built.
#[derive(Debug, Clone)]
pub struct MfaConfig {
    /// TOTP settings.
    pub totp: TotpConfig,
    /// Backup-code count and length.
    pub backup_codes: BackupCodeConfig,
    /// Failure throttling.
    pub throttle: ThrottlePolicy,
    /// The pepper of backup-code sets stored before schema v3 (hashed `salt ‖ pepper`), if they
    /// were made with one. New sets are keyed by the [`Keyring`](crate::Keyring) instead and need no pepper.
    pub pepper: Option<Pepper>,
    /// WebAuthn (security keys and passkeys); `None` until a relying party is configured.
    pub webauthn: Option<WebAuthnConfig>,
    /// Which first factors count as multi-factor on their own.
    pub assurance: AssurancePolicy,
    /// What sensitive actions need ([`Mfa::authorize`](crate::Mfa::authorize)): how fresh a
    /// second factor must be to change factors, and named host actions' requirements.
    pub actions: crate::authorize::ActionPolicy,
    /// What every user must have enrolled, by when (`None`: nothing is required).
    pub enrollment: Option<crate::enrollment::EnrollmentPolicy>,
    /// Remember-this-browser tokens.
    pub remembered_browsers: RememberedBrowserConfig,
    /// Known-browser tokens: a failure counter of its own for each browser that completed a
    /// full sign-in.
    pub known_browsers: KnownBrowserConfig,
    /// Codes sent by email or SMS: their length and life, and how often one may be sent.
    pub sent_codes: crate::sent_code::SentCodePolicy,
    /// An audit event [`AuditKind::BackupCodesLow`](crate::audit::AuditKind::BackupCodesLow) is sent when a sign-in leaves this many
    /// backup codes or fewer (default 2).
    pub backup_codes_low_at: usize,
    /// How many users' code factors this process keeps what a verification reads (one entry
    /// per user and factor; default [`DEFAULT_VERIFICATION_CACHE`](Self::DEFAULT_VERIFICATION_CACHE);
    /// 0 turns it off). A returning user's verification is then one store operation instead of
    /// two. The cache holds sealed secrets and keyed hashes only, decides nothing on its own
    /// (the settling write checks the counter and the devices it was evaluated against, so
    /// changes made by other processes are seen), and evicts the oldest entry when full. An
    /// entry takes about 0.7 KiB for one TOTP device, 0.85 KiB for a set of 6 backup codes (see
    /// BENCHMARKS.md): the default holds at most about 8 MiB.
    pub verification_cache: usize,
}

impl MfaConfig {
    /// Defaults everywhere, with `issuer` as the name authenticator apps show.
    ///
    /// # Errors
    ///
    /// [`ConfigError::TotpIssuer`] if the issuer is invalid (see [`TotpConfig::new`]).
    pub fn new(issuer: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            totp: TotpConfig::new(issuer)?,
            backup_codes: BackupCodeConfig::default(),
            throttle: ThrottlePolicy::default(),
            pepper: None,
            webauthn: None,
            assurance: AssurancePolicy::default(),
            actions: crate::authorize::ActionPolicy::default(),
            enrollment: None,
            remembered_browsers: RememberedBrowserConfig::default(),
            known_browsers: KnownBrowserConfig::default(),
            sent_codes: crate::sent_code::SentCodePolicy::default(),
            backup_codes_low_at: 2,
            verification_cache: Self::DEFAULT_VERIFICATION_CACHE,
        })
    }

    /// The default size of the verification cache: 10,000 entries.
    pub const DEFAULT_VERIFICATION_CACHE: usize = 10_000;
}
