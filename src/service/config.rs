//! What the service is configured with: TOTP, throttling, backup codes, remember-this-browser,
//! assurance and WebAuthn settings, each validated when built.

use crate::backup_codes::{BackupCodeConfig, Pepper};
use crate::clock::UnixTime;
use crate::error::ConfigError;
use crate::policy::AssurancePolicy;
use crate::throttle::{KnownBrowserPolicy, ThrottlePolicy};
use crate::totp::{self, TotpParams};
use crate::webauthn::WebAuthnConfig;

/// TOTP settings for new enrollments and verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpConfig {
    pub(super) issuer: String,
    pub(super) params: TotpParams,
    pub(super) window: u32,
    pub(super) secret_len: usize,
    pub(super) look_ahead: u32,
    pub(super) resync_limit: u32,
    pub(super) resync_steps: u32,
}

impl TotpConfig {
    /// Settings with `issuer` (the service name shown in authenticator apps) and the defaults:
    /// SHA1, 6 digits, 30 s, a window of ±1 step, 160-bit secrets.
    ///
    /// # Errors
    ///
    /// [`ConfigError::TotpIssuer`] if the issuer is empty, longer than 64 characters, or
    /// contains `:` or control characters.
    pub fn new(issuer: &str) -> Result<Self, ConfigError> {
        // A `:` would end the issuer early in the key URI's label.
        let issuer = crate::id::label(issuer, 64)
            .filter(|i| !i.contains(':'))
            .ok_or(ConfigError::TotpIssuer)?;
        Ok(Self {
            issuer: issuer.to_owned(),
            params: TotpParams::default(),
            window: 1,
            secret_len: totp::MIN_NEW_SECRET_BYTES,
            look_ahead: totp::DEFAULT_LOOK_AHEAD,
            resync_limit: totp::DEFAULT_RESYNC_LIMIT,
            resync_steps: totp::DEFAULT_RESYNC_STEPS,
        })
    }

    /// How many counter values after the last accepted one a counter-based (HOTP) code is looked
    /// for (1..=50, default 10: RFC 4226 §7.4). The throttle charges a guess for every code of
    /// the window, so the guessing bound holds whatever it is.
    ///
    /// # Errors
    ///
    /// [`ConfigError::HotpLookAhead`] if 0 or above [`totp::MAX_LOOK_AHEAD`].
    pub fn with_look_ahead(mut self, look_ahead: u32) -> Result<Self, ConfigError> {
        if !(1..=totp::MAX_LOOK_AHEAD).contains(&look_ahead) {
            return Err(ConfigError::HotpLookAhead(look_ahead));
        }
        self.look_ahead = look_ahead;
        Ok(self)
    }

    /// How far past the last accepted counter a resynchronisation with two consecutive codes
    /// looks (1..=10,000, default 1,000).
    ///
    /// # Errors
    ///
    /// [`ConfigError::HotpResyncLimit`] if 0 or above [`totp::MAX_RESYNC_LIMIT`].
    pub fn with_resync_limit(mut self, limit: u32) -> Result<Self, ConfigError> {
        if !(1..=totp::MAX_RESYNC_LIMIT).contains(&limit) {
            return Err(ConfigError::HotpResyncLimit(limit));
        }
        self.resync_limit = limit;
        Ok(self)
    }

    /// How many steps either side of where a time-based device's window is centred a
    /// resynchronisation with two consecutive codes looks (1..=240, default 20: ten minutes of
    /// a clock that is off, at 30 s).
    ///
    /// # Errors
    ///
    /// [`ConfigError::TotpResyncSteps`] if 0 or above [`totp::MAX_DRIFT_STEPS`].
    pub fn with_resync_steps(mut self, steps: u32) -> Result<Self, ConfigError> {
        if steps == 0 || u64::from(steps) > totp::MAX_DRIFT_STEPS {
            return Err(ConfigError::TotpResyncSteps(steps));
        }
        self.resync_steps = steps;
        Ok(self)
    }

    /// The look-ahead window of counter-based (HOTP) devices.
    pub fn look_ahead(&self) -> u32 {
        self.look_ahead
    }

    /// The step a time-based device's window is centred on now: the current step moved by the
    /// device's clock offset ([`totp::drift_secs`]). Under a window of 0 an offset within half a
    /// step is not followed: it is what reading a code anywhere in its step gives a clock that
    /// is right, and following it would move the single code off the current one.
    pub(crate) fn centre(
        &self,
        params: &TotpParams,
        last_step: Option<u64>,
        last_used_at: Option<UnixTime>,
        now: UnixTime,
    ) -> u64 {
        let drift = totp::drift_secs(params, last_step, last_used_at);
        let half = i64::try_from(params.period() / 2).unwrap_or(0);
        let drift = if self.window == 0 && drift.abs() <= half {
            0
        } else {
            drift
        };
        totp::centre_step(params, now, drift)
    }

    /// What a failure against a device with `params` is charged, in guesses: the codes one
    /// guess is compared with there, in units of a time-based device's window (at least 1).
    /// With the defaults a counter-based device's 10 codes are charged as 4 guesses of 3.
    pub(crate) fn guess_weight(&self, params: &TotpParams) -> u32 {
        if params.is_counter_based() {
            self.look_ahead.div_ceil(2 * self.window + 1).max(1)
        } else {
            1
        }
    }

    /// Parameters of new enrollments (imports keep their own). Time-based only: a
    /// counter-based device is enrolled with [`Mfa::enroll_hotp`](crate::Mfa::enroll_hotp).
    ///
    /// # Errors
    ///
    /// [`ConfigError::TotpPeriod`] for counter-based parameters (period 0).
    pub fn with_params(mut self, params: TotpParams) -> Result<Self, ConfigError> {
        if params.is_counter_based() {
            return Err(ConfigError::TotpPeriod(0));
        }
        self.params = params;
        Ok(self)
    }

    /// Steps accepted either side of the current one (0..=10, default 1).
    ///
    /// # Errors
    ///
    /// [`ConfigError::TotpWindow`] if above 10.
    pub fn with_window(mut self, window: u32) -> Result<Self, ConfigError> {
        if window > totp::MAX_WINDOW {
            return Err(ConfigError::TotpWindow(window));
        }
        self.window = window;
        Ok(self)
    }

    /// Bytes of newly generated secrets (20..=64, default 20 = 160 bits).
    ///
    /// # Errors
    ///
    /// [`ConfigError::TotpSecretLength`] if out of bounds.
    pub fn with_secret_len(mut self, bytes: usize) -> Result<Self, ConfigError> {
        if !(totp::MIN_NEW_SECRET_BYTES..=totp::MAX_SECRET_BYTES).contains(&bytes) {
            return Err(ConfigError::TotpSecretLength(bytes));
        }
        self.secret_len = bytes;
        Ok(self)
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The verification window in steps.
    pub fn window(&self) -> u32 {
        self.window
    }
}

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
    /// An audit event [`AuditKind::BackupCodesLow`](crate::AuditKind::BackupCodesLow) is sent when a sign-in leaves this many
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

/// Remember-this-browser settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RememberedBrowserConfig {
    pub(super) ttl_secs: u64,
}

impl RememberedBrowserConfig {
    /// Default lifetime: 30 days.
    pub const DEFAULT_TTL_SECS: u64 = 30 * 86_400;

    /// Tokens that expire `ttl_secs` after issue (1 hour to 400 days).
    ///
    /// # Errors
    ///
    /// [`ConfigError::RememberedBrowser`] when out of bounds.
    pub fn new(ttl_secs: u64) -> Result<Self, ConfigError> {
        if !crate::remembered_browser::LIFETIME_SECS.contains(&ttl_secs) {
            return Err(ConfigError::RememberedBrowser("lifetime must be 1 hour to 400 days"));
        }
        Ok(Self { ttl_secs })
    }

    /// The lifetime in seconds.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }
}

impl Default for RememberedBrowserConfig {
    fn default() -> Self {
        Self {
            ttl_secs: Self::DEFAULT_TTL_SECS,
        }
    }
}

/// Known-browser settings: how long a token lasts without a full sign-in that replaces it,
/// and how many failures it takes before the browser counts as unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownBrowserConfig {
    pub(super) ttl_secs: u64,
    /// How many failures a known browser's token takes.
    pub policy: KnownBrowserPolicy,
}

impl KnownBrowserConfig {
    /// Default lifetime: 180 days (each full sign-in replaces the token, so only a browser
    /// unused that long becomes unknown).
    pub const DEFAULT_TTL_SECS: u64 = 180 * 86_400;

    /// Tokens that expire `ttl_secs` after issue (1 hour to 400 days), with `policy`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::RememberedBrowser`] when out of bounds.
    pub fn new(ttl_secs: u64, policy: KnownBrowserPolicy) -> Result<Self, ConfigError> {
        if !crate::remembered_browser::LIFETIME_SECS.contains(&ttl_secs) {
            return Err(ConfigError::RememberedBrowser("lifetime must be 1 hour to 400 days"));
        }
        Ok(Self { ttl_secs, policy })
    }

    /// The lifetime in seconds.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }
}

impl Default for KnownBrowserConfig {
    fn default() -> Self {
        Self {
            ttl_secs: Self::DEFAULT_TTL_SECS,
            policy: KnownBrowserPolicy::default(),
        }
    }
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
