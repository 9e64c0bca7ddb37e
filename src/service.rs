//! [`Mfa`]: the operations an application calls. Thin: it loads records, asks the pure modules,
//! and lets the store apply the outcome atomically.

mod webauthn;

mod admin;
mod cache;
mod trusted;

pub use self::admin::RotationReport;

use std::fmt;
use std::sync::Arc;

use crate::audit::{AuditEvent, AuditKind, AuditSink, NoopSink, RevokeReason};
use crate::backup_codes::{self, BackupCode, BackupCodeConfig, CodeKey, CodeMatch, Pepper};
use crate::clock::{Clock, SystemClock, UnixTime};
use crate::device::{DeviceData, DeviceId, DeviceKind, DeviceName, DeviceRecord, Factor, UserId};
use crate::error::{ConfigError, Error, InputError, MisuseError, SealError, StoreError};
use crate::policy::{Assurance, AssurancePolicy, FirstFactor};
use crate::rng::{OsRng, Rng};
use crate::seal::{BACKUP_CODES_PURPOSE, KeyId, Keyring, SealContext};
use crate::secret::{SecretBytes, SecretString};
use crate::store::{DeleteOutcome, DeviceStore, Hit, MethodsDigest, Settle, Settlement};

use self::cache::{VerifyCache, View};
use crate::throttle::{ThrottleDecision, ThrottlePolicy, ThrottleState};
use crate::totp::uri::{self, TotpImport};
use crate::totp::{self, TotpMatch, TotpParams, TotpRecord};
use crate::webauthn::WebAuthnConfig;

const TOTP_SEAL_PURPOSE: &str = "totp-secret";
/// Attempts to charge a throttle counter before concurrent attempts count as throttling.
const CHARGE_RETRIES: usize = 8;
/// Views of a user's methods one verification evaluates a code against before concurrent
/// changes of the methods count as throttling (the first from the cache or the store, then
/// from the store after a stale settlement).
const VIEW_READS: usize = 3;

/// TOTP settings for new enrollments and verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpConfig {
    issuer: String,
    params: TotpParams,
    window: u32,
    secret_len: usize,
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
        let issuer = issuer.trim();
        let chars = issuer.chars().count();
        if chars == 0 || chars > 64 || issuer.contains(':') || issuer.chars().any(char::is_control) {
            return Err(ConfigError::TotpIssuer);
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            params: TotpParams::default(),
            window: 1,
            secret_len: totp::MIN_NEW_SECRET_BYTES,
        })
    }

    /// Parameters of new enrollments (imports keep their own).
    #[must_use]
    pub fn with_params(mut self, params: TotpParams) -> Self {
        self.params = params;
        self
    }

    /// Steps accepted either side of the current one (0..=10, default 1).
    ///
    /// # Errors
    ///
    /// [`ConfigError::TotpWindow`] if above 10.
    pub fn with_window(mut self, window: u32) -> Result<Self, ConfigError> {
        if window > 10 {
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
    /// were made with one. New sets are keyed by the [`Keyring`] instead and need no pepper.
    pub pepper: Option<Pepper>,
    /// WebAuthn (security keys and passkeys); `None` until a relying party is configured.
    pub webauthn: Option<WebAuthnConfig>,
    /// Which first factors count as multi-factor on their own.
    pub assurance: AssurancePolicy,
    /// Remember-this-device tokens.
    pub trusted_devices: TrustedDeviceConfig,
    /// An audit event [`AuditKind::BackupCodesLow`] is sent when a sign-in leaves this many
    /// backup codes or fewer (default 2).
    pub backup_codes_low_at: usize,
    /// How many users' code factors this process keeps what a verification reads (one entry
    /// per user and factor; default [`DEFAULT_VERIFICATION_CACHE`](Self::DEFAULT_VERIFICATION_CACHE);
    /// 0 turns it off). A returning user's verification is then one store operation instead of
    /// two. The cache holds sealed secrets and keyed hashes only, decides nothing on its own
    /// (the settling write checks the counter and the methods it was evaluated against, so
    /// changes made by other processes are seen), and evicts the oldest entry when full. An
    /// entry takes about 0.7 KiB for one TOTP device, 0.85 KiB for a set of 6 backup codes (see
    /// BENCHMARKS.md): the default holds at most about 8 MiB.
    pub verification_cache: usize,
}

/// Remember-this-device settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedDeviceConfig {
    ttl_secs: u64,
}

impl TrustedDeviceConfig {
    /// Default lifetime: 30 days.
    pub const DEFAULT_TTL_SECS: u64 = 30 * 86_400;

    /// Tokens that expire `ttl_secs` after issue (1 hour to 400 days).
    ///
    /// # Errors
    ///
    /// [`ConfigError::TrustedDevice`] when out of bounds.
    pub fn new(ttl_secs: u64) -> Result<Self, ConfigError> {
        if !(3600..=400 * 86_400).contains(&ttl_secs) {
            return Err(ConfigError::TrustedDevice("lifetime must be 1 hour to 400 days"));
        }
        Ok(Self { ttl_secs })
    }

    /// The lifetime in seconds.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }
}

impl Default for TrustedDeviceConfig {
    fn default() -> Self {
        Self {
            ttl_secs: Self::DEFAULT_TTL_SECS,
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
            trusted_devices: TrustedDeviceConfig::default(),
            backup_codes_low_at: 2,
            verification_cache: Self::DEFAULT_VERIFICATION_CACHE,
        })
    }

    /// The default size of the verification cache: 10,000 entries.
    pub const DEFAULT_VERIFICATION_CACHE: usize = 10_000;
}

/// The result of presenting a code.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The code was right and has now been used up.
    Accepted(Verified),
    /// Wrong, replayed, expired or already-used code: deliberately one opaque answer.
    Rejected,
    /// Too many recent failures: the attempt was refused without an answer about the code (it
    /// was not checked, or its check was not settled and is revealed neither by this answer
    /// nor by its cost). Try again at `retry_at`.
    Throttled {
        /// The earliest time the next attempt will be evaluated.
        retry_at: UnixTime,
    },
    /// Too many consecutive failures: the factor is locked until the host unlocks it.
    Locked,
}

impl Outcome {
    /// True only for [`Outcome::Accepted`].
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted(_))
    }
}

/// Proof of an accepted code, assertion or registration, as the service issued it.
///
/// # Security
///
/// Only this crate constructs one (private fields, no `Clone`), so host code cannot make one up
/// or re-target it to another user; [`Mfa::issue_trusted_device`] accepts it as proof of a
/// sign-in only when it came from a sign-in (not from a TOTP confirmation or a registration).
///
/// ```compile_fail
/// # use multifactor::{DeviceId, DeviceKind, UserId, Verified};
/// let forged = Verified { user: UserId::new("mallory").unwrap(), device: DeviceId::from_bytes([0; 16]),
///     kind: DeviceKind::Totp, remaining_backup_codes: None, user_verified: None, sign_in: true };
/// ```
///
/// ```compile_fail
/// # fn copy(v: &multifactor::Verified) -> multifactor::Verified {
/// v.clone()
/// # }
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    user: UserId,
    device: DeviceId,
    kind: DeviceKind,
    remaining_backup_codes: Option<usize>,
    user_verified: Option<bool>,
    sign_in: bool,
}

impl Verified {
    /// The user (for passwordless sign-in: the one the passkey belongs to).
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The method that verified (or was registered or confirmed).
    pub fn device(&self) -> DeviceId {
        self.device
    }

    /// Its kind.
    pub fn kind(&self) -> DeviceKind {
        self.kind
    }

    /// For backup codes: how many unused codes remain (the set as read for this attempt, less
    /// the code it spent; a concurrent sign-in with another code of the set is not subtracted).
    pub fn remaining_backup_codes(&self) -> Option<usize> {
        self.remaining_backup_codes
    }

    /// For WebAuthn: whether the authenticator verified the user (PIN, biometrics).
    pub fn user_verified(&self) -> Option<bool> {
        self.user_verified
    }

    /// True when this proves a sign-in (a code or assertion verified at sign-in), false for a
    /// TOTP confirmation or a WebAuthn registration.
    pub fn is_sign_in(&self) -> bool {
        self.sign_in
    }

    /// True for a sign-in by backup code: a recovery. Prompt the user to check their methods
    /// (and to print new codes when [`remaining_backup_codes`](Self::remaining_backup_codes) is low).
    pub fn is_recovery(&self) -> bool {
        self.kind == DeviceKind::BackupCodes
    }

    /// A sign-in by `device`.
    pub(crate) fn sign_in(user: &UserId, device: DeviceId, kind: DeviceKind) -> Self {
        Self {
            user: user.clone(),
            device,
            kind,
            remaining_backup_codes: None,
            user_verified: None,
            sign_in: true,
        }
    }

    /// The same, as proof of an enrollment (a confirmation or registration), not of a sign-in.
    pub(crate) fn enrollment(mut self) -> Self {
        self.sign_in = false;
        self
    }

    pub(crate) fn with_remaining_backup_codes(mut self, remaining: usize) -> Self {
        self.remaining_backup_codes = Some(remaining);
        self
    }

    pub(crate) fn with_user_verified(mut self, verified: bool) -> Self {
        self.user_verified = Some(verified);
        self
    }
}

/// A settled code attempt: its outcome, and what the audit trail should hear beside it.
#[derive(Debug)]
struct Settled {
    outcome: Outcome,
    /// The code was right but already spent (a replayed TOTP step, a used backup code).
    reused: bool,
    /// After a charged failure: what is left of the factor's failure budget.
    budget_remaining: Option<u32>,
}

impl Settled {
    /// An outcome with nothing more to say (a refusal, or an acceptance).
    fn plain(outcome: Outcome) -> Self {
        Self {
            outcome,
            reused: false,
            budget_remaining: None,
        }
    }
}

/// A code attempt evaluated and ready to settle.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    factor: Factor,
    hit: Option<Hit>,
    /// The code matched an already spent step or code.
    reused: bool,
    now: UnixTime,
    /// The digest of the methods the code was evaluated against, if the settlement checks it.
    methods: Option<MethodsDigest>,
}

/// What [`Mfa::settle`] did.
#[derive(Debug)]
enum Settling {
    /// Accepted; the counter is now this.
    Accepted(Settled, ThrottleState),
    /// Answered without accepting; the counter is now this, if known.
    Answered(Settled, Option<ThrottleState>),
    /// The methods the code was evaluated against are no longer the user's: nothing settled.
    Stale,
}

/// What a view of the user's methods makes of a code.
#[derive(Debug)]
enum Evaluated {
    /// The view's counter does not admit the attempt now.
    Refused(Outcome),
    /// Admitted: what the code matched.
    Attempt { hit: Option<Hit>, reused: bool },
}

/// `devices` with `hit` spent: a TOTP step accepted (and the device confirmed) or a backup
/// code used, as the store just recorded it.
fn spend(devices: &[DeviceRecord], hit: Option<Hit>) -> Arc<[DeviceRecord]> {
    devices
        .iter()
        .map(|d| {
            let mut d = d.clone();
            match (&mut d.data, hit) {
                (DeviceData::Totp(t), Some(Hit::TotpStep { device, step })) if d.id == device => {
                    t.last_step = Some(step);
                    d.confirmed = true;
                }
                (DeviceData::BackupCodes(set), Some(Hit::BackupCode { device, slot })) if d.id == device => {
                    if let Some(s) = set.slots.get_mut(slot) {
                        s.used = true;
                    }
                }
                _ => {}
            }
            d
        })
        .collect()
}

/// A new TOTP enrollment: show the QR code (or the secret as text) once, then confirm.
#[derive(Debug)]
pub struct TotpEnrollment {
    /// The new, unconfirmed device.
    pub device: DeviceId,
    /// The secret as unpadded base32, for typing into an app.
    pub secret_base32: SecretString,
    /// The `otpauth://` key URI (contains the secret).
    pub key_uri: SecretString,
}

impl TotpEnrollment {
    /// The key URI as an SVG QR code (contains the secret).
    ///
    /// # Errors
    ///
    /// [`InputError::KeyUri`] if the URI is too long for a QR code (not with valid settings).
    #[cfg(feature = "qr")]
    pub fn qr_svg(&self) -> Result<SecretString, InputError> {
        uri::qr_svg(&self.key_uri)
    }

    /// The key URI as a QR code drawn with Unicode blocks, for a terminal (contains the secret).
    ///
    /// # Errors
    ///
    /// [`InputError::KeyUri`] if the URI is too long for a QR code (not with valid settings).
    #[cfg(feature = "qr")]
    pub fn qr_text(&self) -> Result<SecretString, InputError> {
        uri::qr_text(&self.key_uri)
    }
}

/// A freshly generated backup-code set: show the codes once.
#[derive(Debug)]
pub struct BackupCodeSet {
    /// The set's method id.
    pub device: DeviceId,
    /// The plain codes, grouped for reading.
    pub codes: Vec<BackupCode>,
}

/// A method as a settings page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MethodInfo {
    /// Its id.
    pub id: DeviceId,
    /// Its kind.
    pub kind: DeviceKind,
    /// Its name.
    pub name: DeviceName,
    /// When it was added.
    pub created_at: UnixTime,
    /// When it last verified a code.
    pub last_used_at: Option<UnixTime>,
    /// False for a TOTP device still waiting for its first code.
    pub confirmed: bool,
    /// For backup codes: how many unused codes remain.
    pub remaining_backup_codes: Option<usize>,
}

impl MethodInfo {
    /// Whether it can pass a second factor now (see [`DeviceRecord::is_usable`]).
    pub fn is_usable(&self) -> bool {
        crate::device::usable(self.confirmed, self.remaining_backup_codes)
    }
}

/// The MFA service: a store, a clock, a random generator, sealing keys and policy.
///
/// Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Mfa<S, C = SystemClock, R = OsRng> {
    store: S,
    clock: C,
    rng: R,
    keys: Keyring,
    config: MfaConfig,
    audit: Arc<dyn AuditSink>,
    cache: VerifyCache,
}

impl<S: fmt::Debug, C: fmt::Debug, R: fmt::Debug> fmt::Debug for Mfa<S, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mfa")
            .field("store", &self.store)
            .field("clock", &self.clock)
            .field("rng", &self.rng)
            .field("keys", &self.keys)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: DeviceStore> Mfa<S> {
    /// A service on `store`, sealing TOTP secrets with `keys`, on the system clock and an
    /// OS-seeded ChaCha20 generator.
    ///
    /// # Errors
    ///
    /// [`Error::Rng`] if the operating system has no randomness to seed from.
    pub fn new(store: S, keys: Keyring, config: MfaConfig) -> Result<Self, Error> {
        Ok(Self {
            store,
            clock: SystemClock,
            rng: OsRng::new()?,
            keys,
            cache: VerifyCache::new(config.verification_cache),
            config,
            audit: Arc::new(NoopSink),
        })
    }
}

impl<S, C, R> Mfa<S, C, R> {
    /// The same service on another clock (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn with_clock<C2: Clock>(self, clock: C2) -> Mfa<S, C2, R> {
        Mfa {
            store: self.store,
            clock,
            rng: self.rng,
            keys: self.keys,
            config: self.config,
            audit: self.audit,
            cache: self.cache,
        }
    }

    /// The same service on another generator.
    pub fn with_rng<R2: Rng>(self, rng: R2) -> Mfa<S, C, R2> {
        Mfa {
            store: self.store,
            clock: self.clock,
            rng,
            keys: self.keys,
            config: self.config,
            audit: self.audit,
            cache: self.cache,
        }
    }

    /// The same service, delivering audit events to `sink` (the default drops them).
    pub fn with_audit(mut self, sink: impl AuditSink + 'static) -> Self {
        self.audit = Arc::new(sink);
        self
    }

    /// The same service with another keyring (after adding a new sealing key; see
    /// [`rotate_keys`](Self::rotate_keys)).
    pub fn with_keys(mut self, keys: Keyring) -> Self {
        self.keys = keys;
        self.cache.clear();
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &MfaConfig {
        &self.config
    }
}

impl<S: DeviceStore, C: Clock, R: Rng> Mfa<S, C, R> {
    // ----- TOTP -------------------------------------------------------------------------------

    /// Starts a TOTP enrollment: a new random secret, sealed and stored on an unconfirmed device.
    /// `account` is the label the app shows under the issuer (an email address, a user name).
    ///
    /// Earlier enrollments of this user that were never confirmed are removed.
    ///
    /// # Errors
    ///
    /// [`InputError::AccountName`] or [`InputError::DeviceName`] for bad labels; sealing, RNG
    /// and store errors.
    pub async fn enroll_totp(&self, user: &UserId, account: &str, name: Option<&str>) -> Result<TotpEnrollment, Error> {
        let account = validate_account(account)?;
        let name = DeviceName::new(name.unwrap_or("Authenticator app"))?;
        self.methods_changed(user).await?;
        let mut secret = vec![0u8; self.config.totp.secret_len];
        self.rng.try_fill_bytes(&mut secret)?;
        let secret = SecretBytes::new(secret);
        let params = self.config.totp.params;
        let id = self.insert_totp(user, name, &secret, params, false).await?;
        // One conditional delete: an older enrollment confirmed meanwhile is kept.
        self.store.delete_unconfirmed_totp(user, id).await?;
        self.cache.forget(user);
        self.emit(self.event(Some(user), AuditKind::Enrolled).method(id, DeviceKind::Totp));
        Ok(TotpEnrollment {
            device: id,
            secret_base32: totp::encode_base32_secret(&secret),
            key_uri: uri::build(&self.config.totp.issuer, account, &secret, &params),
        })
    }

    /// The enrollment of a TOTP device that is still waiting for its first code, again: the same
    /// secret, key URI and QR code as [`Mfa::enroll_totp`] returned. A person who mistyped the
    /// first code is shown the setup again without re-scanning, and the host need not keep the
    /// secret between the two requests. `account` is the label passed to `enroll_totp`.
    ///
    /// # Errors
    ///
    /// [`MisuseError::DeviceNotFound`] if `user` has no such device (it was replaced by a newer
    /// enrollment, or deleted), [`MisuseError::WrongKind`], [`MisuseError::AlreadyConfirmed`]
    /// once it is confirmed (the secret is never shown again then); [`InputError::AccountName`];
    /// sealing and store errors.
    pub async fn resume_totp_enrollment(
        &self,
        user: &UserId,
        device: DeviceId,
        account: &str,
    ) -> Result<TotpEnrollment, Error> {
        let account = validate_account(account)?;
        let record = self
            .store
            .device(user, device)
            .await?
            .ok_or(MisuseError::DeviceNotFound)?;
        let DeviceData::Totp(totp_record) = &record.data else {
            return Err(MisuseError::WrongKind {
                expected: DeviceKind::Totp,
                found: record.kind(),
            }
            .into());
        };
        if record.confirmed {
            return Err(MisuseError::AlreadyConfirmed.into());
        }
        let secret = SecretBytes::from(
            self.keys
                .open(&totp_context(user, device), &totp_record.sealed_secret)?,
        );
        Ok(TotpEnrollment {
            device,
            secret_base32: totp::encode_base32_secret(&secret),
            key_uri: uri::build(&self.config.totp.issuer, account, &secret, &totp_record.params),
        })
    }

    /// Confirms an enrollment with the first code from the app. That code counts as used.
    ///
    /// # Errors
    ///
    /// [`MisuseError::DeviceNotFound`], [`MisuseError::WrongKind`] or
    /// [`MisuseError::AlreadyConfirmed`]; [`InputError::CodeFormat`] for a code of the wrong
    /// shape (not counted as an attempt); sealing and store errors.
    pub async fn confirm_totp(&self, user: &UserId, device: DeviceId, code: &str) -> Result<Outcome, Error> {
        let settled = self.confirm_totp_unaudited(user, device, code).await?;
        self.audit_settled(user, Factor::Totp, settled, AuditKind::Confirmed)
            .await
    }

    async fn confirm_totp_unaudited(&self, user: &UserId, device: DeviceId, code: &str) -> Result<Settled, Error> {
        let record = self
            .store
            .device(user, device)
            .await?
            .ok_or(MisuseError::DeviceNotFound)?;
        let DeviceData::Totp(totp_record) = &record.data else {
            return Err(MisuseError::WrongKind {
                expected: DeviceKind::Totp,
                found: record.kind(),
            }
            .into());
        };
        if record.confirmed {
            return Err(MisuseError::AlreadyConfirmed.into());
        }
        check_totp_shape(code, std::slice::from_ref(&totp_record.params))?;
        let state = self.store.throttle(user, Factor::Totp).await?;
        let now = self.clock.now();
        if let Some(refused) = self.refusal(Factor::Totp, &state, now) {
            return Ok(Settled::plain(refused));
        }
        let (hit, reused) = self.evaluate_totp(user, &[(record.id, totp_record)], code, now)?;
        let attempt = Attempt {
            factor: Factor::Totp,
            hit,
            reused,
            now,
            methods: None,
        };
        let mut settled = match self.settle(user, state, &attempt).await? {
            Settling::Accepted(settled, _) => {
                // The user's TOTP methods changed: a cached copy is stale now.
                self.cache.forget(user);
                settled
            }
            Settling::Answered(settled, _) => settled,
            Settling::Stale => return Err(StoreError::InvalidRecord("a settlement without a digest was stale").into()),
        };
        if let Outcome::Accepted(v) = settled.outcome {
            // Proof of an enrollment, not of a sign-in.
            settled.outcome = Outcome::Accepted(v.enrollment());
        }
        Ok(settled)
    }

    /// Verifies a code against each of the user's confirmed TOTP devices.
    ///
    /// # Errors
    ///
    /// [`MisuseError::NoMethod`] if the user has no confirmed TOTP device;
    /// [`InputError::CodeFormat`] for a code of the wrong shape (not counted as an attempt);
    /// sealing and store errors. A wrong code is `Ok(Outcome::Rejected)`, not an error.
    pub async fn verify_totp(&self, user: &UserId, code: &str) -> Result<Outcome, Error> {
        let settled = self.verify_totp_unaudited(user, code).await?;
        self.audit_settled(user, Factor::Totp, settled, AuditKind::Verified { recovery: false })
            .await
    }

    async fn verify_totp_unaudited(&self, user: &UserId, code: &str) -> Result<Settled, Error> {
        self.verify_code(user, Factor::Totp, code).await
    }

    /// Imports an existing TOTP secret (base32 or `otpauth://` URI) for migration. The user's
    /// app already holds it, so the device is confirmed at once.
    ///
    /// # Errors
    ///
    /// [`InputError`] naming what is malformed; [`MisuseError::DuplicateSecret`] if one of the
    /// user's TOTP devices has the same secret (compared after opening, in constant time);
    /// sealing, RNG and store errors.
    pub async fn import_totp(&self, user: &UserId, input: &str, name: Option<&str>) -> Result<DeviceId, Error> {
        let import = TotpImport::parse(input)?;
        // The same secret twice would let each code be used once per copy.
        for device in self.store.list_devices(user).await? {
            if let DeviceData::Totp(t) = &device.data {
                let existing = SecretBytes::from(self.keys.open(&totp_context(user, device.id), &t.sealed_secret)?);
                if crate::ct::eq_bytes(existing.expose_secret(), import.secret.expose_secret()) {
                    return Err(MisuseError::DuplicateSecret.into());
                }
            }
        }
        self.methods_changed(user).await?;
        let default_name = import.issuer.as_deref().unwrap_or("Authenticator app");
        let name = match name {
            Some(n) => DeviceName::new(n)?,
            None => DeviceName::new(default_name).or_else(|_| DeviceName::new("Authenticator app"))?,
        };
        let id = self
            .insert_totp(user, name, &import.secret, import.params, true)
            .await?;
        self.cache.forget(user);
        self.emit(self.event(Some(user), AuditKind::Enrolled).method(id, DeviceKind::Totp));
        Ok(id)
    }

    async fn insert_totp(
        &self,
        user: &UserId,
        name: DeviceName,
        secret: &SecretBytes,
        params: TotpParams,
        confirmed: bool,
    ) -> Result<DeviceId, Error> {
        let id = DeviceId::generate(&self.rng)?;
        let sealed_secret = self
            .keys
            .seal(&self.rng, &totp_context(user, id), secret.expose_secret())?;
        self.store
            .insert_device(DeviceRecord {
                id,
                user: user.clone(),
                name,
                created_at: self.clock.now(),
                last_used_at: None,
                confirmed,
                data: DeviceData::Totp(TotpRecord {
                    params,
                    sealed_secret,
                    last_step: None,
                }),
            })
            .await?;
        Ok(id)
    }

    /// Evaluates a code against TOTP devices: the step it matched on the first device where it
    /// is fresh (if any), and whether it matched an already accepted step of one.
    fn evaluate_totp(
        &self,
        user: &UserId,
        devices: &[(DeviceId, &TotpRecord)],
        code: &str,
        now: UnixTime,
    ) -> Result<(Option<Hit>, bool), Error> {
        let mut hit = None;
        let mut reused = false;
        for (id, record) in devices {
            let secret = SecretBytes::from(self.keys.open(&totp_context(user, *id), &record.sealed_secret)?);
            // A shape this device does not take (another device's digits) is no match either.
            match totp::evaluate(
                &secret,
                &record.params,
                self.config.totp.window,
                record.last_step,
                now,
                code,
            ) {
                Ok(TotpMatch::Fresh(step)) if hit.is_none() => hit = Some(Hit::TotpStep { device: *id, step }),
                Ok(TotpMatch::Reused) => reused = true,
                _ => {}
            }
        }
        Ok((hit, reused))
    }

    // ----- Backup codes -----------------------------------------------------------------------

    /// Generates a new backup-code set, replacing the previous one atomically: after this, no
    /// old code works. Show the returned codes once.
    ///
    /// # Errors
    ///
    /// [`InputError::DeviceName`] for a bad name; RNG and store errors.
    pub async fn generate_backup_codes(&self, user: &UserId, name: Option<&str>) -> Result<BackupCodeSet, Error> {
        let name = DeviceName::new(name.unwrap_or("Backup codes"))?;
        let id = DeviceId::generate(&self.rng)?;
        let key_id = self.keys.current_id();
        let key = self.codes_key(key_id, user, id)?;
        let (codes, record) = backup_codes::generate(&self.rng, &self.config.backup_codes, &key)?;
        self.methods_changed(user).await?;
        self.store
            .replace_backup_codes(DeviceRecord {
                id,
                user: user.clone(),
                name,
                created_at: self.clock.now(),
                last_used_at: None,
                confirmed: true,
                data: DeviceData::BackupCodes(record),
            })
            .await?;
        self.cache.forget(user);
        self.emit(
            self.event(Some(user), AuditKind::BackupCodesRegenerated)
                .method(id, DeviceKind::BackupCodes),
        );
        Ok(BackupCodeSet { device: id, codes })
    }

    /// Verifies and spends one backup code.
    ///
    /// # Errors
    ///
    /// [`MisuseError::NoMethod`] if the user has no backup codes; [`InputError::CodeFormat`]
    /// for input that cannot be a code (not counted as an attempt); store errors. A wrong or
    /// used code is `Ok(Outcome::Rejected)`.
    pub async fn verify_backup_code(&self, user: &UserId, code: &str) -> Result<Outcome, Error> {
        let settled = self.verify_backup_code_unaudited(user, code).await?;
        self.audit_settled(
            user,
            Factor::BackupCodes,
            settled,
            AuditKind::Verified { recovery: true },
        )
        .await
    }

    async fn verify_backup_code_unaudited(&self, user: &UserId, code: &str) -> Result<Settled, Error> {
        self.verify_code(user, Factor::BackupCodes, code).await
    }

    /// The key backup-code hashes of `user`'s set `set` are keyed with, under sealing key `key_id`.
    fn codes_key<'a>(&'a self, key_id: &'a KeyId, user: &'a UserId, set: DeviceId) -> Result<CodeKey<'a>, Error> {
        let key = self
            .keys
            .mac_key(key_id, BACKUP_CODES_PURPOSE)
            .ok_or_else(|| SealError::UnknownKey(key_id.as_str().to_owned()))?;
        Ok(CodeKey::Keyed { key_id, key, user, set })
    }

    // ----- Throttling -------------------------------------------------------------------------

    /// Why an attempt on `factor` under this counter state may not be evaluated now, if it may not.
    fn refusal(&self, factor: Factor, state: &ThrottleState, now: UnixTime) -> Option<Outcome> {
        match self.config.throttle.decide(factor, state, now) {
            ThrottleDecision::Allowed => None,
            ThrottleDecision::RetryAt(retry_at) => Some(Outcome::Throttled { retry_at }),
            ThrottleDecision::Locked => Some(Outcome::Locked),
        }
    }

    /// Reads the user's methods of `factor` and its counter from the store, and keeps them in
    /// the verification cache (unless there is nothing to verify: an enrollment made elsewhere
    /// must be seen at once).
    async fn read_view(&self, user: &UserId, factor: Factor) -> Result<View, Error> {
        let (devices, state) = self.store.verification_state(user, factor).await?;
        let devices: Arc<[DeviceRecord]> = devices.into();
        if devices.iter().any(|d| d.confirmed) {
            self.cache.put(user, factor, Arc::clone(&devices), state);
        }
        Ok(View {
            devices,
            state,
            cached: false,
        })
    }

    /// Verifies a code of `factor` (TOTP or backup codes).
    ///
    /// The code is evaluated against the user's methods and counter as this process last saw
    /// them (the verification cache), or as read now, and settled with one
    /// [`DeviceStore::settle_attempt`] that checks both: a returning user's verification is
    /// one store operation. The cache decides nothing on its own: a cached view that refuses
    /// the attempt or cannot evaluate the code is read again, and one that the settlement
    /// finds stale is read again and the code evaluated and settled again. Which of these
    /// happens never depends on whether the code matched.
    async fn verify_code(&self, user: &UserId, factor: Factor, code: &str) -> Result<Settled, Error> {
        let mut view = match self.cache.get(user, factor) {
            Some(view) => view,
            None => self.read_view(user, factor).await?,
        };
        for _ in 0..VIEW_READS {
            let now = self.clock.now();
            let (hit, reused) = match self.evaluate(user, factor, &view, code, now) {
                Ok(Evaluated::Attempt { hit, reused }) => (hit, reused),
                Ok(Evaluated::Refused(_)) | Err(_) if view.cached => {
                    view = self.read_view(user, factor).await?;
                    continue;
                }
                Ok(Evaluated::Refused(outcome)) => return Ok(Settled::plain(outcome)),
                Err(e) => return Err(e),
            };
            let attempt = Attempt {
                factor,
                hit,
                reused,
                now,
                methods: Some(MethodsDigest::of(factor, view.devices.iter())),
            };
            match self.settle(user, view.state, &attempt).await? {
                Settling::Accepted(mut settled, state) => {
                    let devices = spend(&view.devices, hit);
                    if let Some(Hit::BackupCode { device, .. }) = hit {
                        let remaining = devices
                            .iter()
                            .find(|d| d.id == device)
                            .and_then(|d| match &d.data {
                                DeviceData::BackupCodes(set) => Some(set.remaining()),
                                _ => None,
                            })
                            .unwrap_or_default();
                        settled.outcome = match settled.outcome {
                            Outcome::Accepted(v) => Outcome::Accepted(v.with_remaining_backup_codes(remaining)),
                            other => other,
                        };
                    }
                    self.cache.put(user, factor, devices, state);
                    return Ok(settled);
                }
                Settling::Answered(settled, Some(state)) => {
                    self.cache.set_state(user, factor, state);
                    return Ok(settled);
                }
                Settling::Answered(settled, None) => {
                    self.cache.forget(user);
                    return Ok(settled);
                }
                Settling::Stale => {
                    self.cache.forget(user);
                    view = self.read_view(user, factor).await?;
                }
            }
        }
        Ok(Settled::plain(Self::contended(self.clock.now())))
    }

    /// Evaluates a code against a view of the user's methods: a refusal if the view's counter
    /// does not admit the attempt, else what the code matched.
    ///
    /// # Errors
    ///
    /// [`MisuseError::NoMethod`] if the view has no usable method of `factor`;
    /// [`InputError::CodeFormat`] for a code of the wrong shape; sealing errors.
    fn evaluate(
        &self,
        user: &UserId,
        factor: Factor,
        view: &View,
        code: &str,
        now: UnixTime,
    ) -> Result<Evaluated, Error> {
        match factor {
            Factor::Totp => {
                let totps: Vec<(DeviceId, &TotpRecord)> = view
                    .devices
                    .iter()
                    .filter(|d| d.confirmed)
                    .filter_map(|d| match &d.data {
                        DeviceData::Totp(t) => Some((d.id, t)),
                        _ => None,
                    })
                    .collect();
                if totps.is_empty() {
                    return Err(MisuseError::NoMethod(Factor::Totp).into());
                }
                let params: Vec<TotpParams> = totps.iter().map(|(_, t)| t.params).collect();
                check_totp_shape(code, &params)?;
                if let Some(refused) = self.refusal(factor, &view.state, now) {
                    return Ok(Evaluated::Refused(refused));
                }
                let (hit, reused) = self.evaluate_totp(user, &totps, code, now)?;
                Ok(Evaluated::Attempt { hit, reused })
            }
            Factor::BackupCodes => {
                let Some((id, record)) = view.devices.iter().find_map(|d| match &d.data {
                    DeviceData::BackupCodes(r) => Some((d.id, r)),
                    _ => None,
                }) else {
                    return Err(MisuseError::NoMethod(Factor::BackupCodes).into());
                };
                backup_codes::normalize(code, usize::from(record.code_length))?;
                if let Some(refused) = self.refusal(factor, &view.state, now) {
                    return Ok(Evaluated::Refused(refused));
                }
                let key = match &record.key_id {
                    Some(key_id) => self.codes_key(key_id, user, id)?,
                    None => CodeKey::Legacy(self.config.pepper.as_ref()),
                };
                let (hit, reused) = match backup_codes::evaluate(record, code, &key)? {
                    CodeMatch::Unused(slot) => (Some(Hit::BackupCode { device: id, slot }), false),
                    CodeMatch::Used => (None, true),
                    _ => (None, false),
                };
                Ok(Evaluated::Attempt { hit, reused })
            }
            Factor::WebAuthn => Err(MisuseError::NoMethod(Factor::WebAuthn).into()),
        }
    }

    /// Settles an evaluated code attempt: one [`DeviceStore::settle_attempt`] against the
    /// counter state it was admitted under, which accepts the hit (if any, and still unspent)
    /// or charges a miss. If the counter moved in between, the attempt is admitted again against
    /// the state the store returned (refused if that state no longer admits it) and settled
    /// again. Nothing here depends on whether the code matched: a correct code refused by the
    /// throttle makes the same store calls as a wrong one, and its answer is the same.
    async fn settle(&self, user: &UserId, mut state: ThrottleState, attempt: &Attempt) -> Result<Settling, Error> {
        let policy = &self.config.throttle;
        let Attempt {
            factor,
            hit,
            reused,
            now,
            methods,
        } = *attempt;
        for _ in 0..CHARGE_RETRIES {
            if let Some(refused) = self.refusal(factor, &state, now) {
                return Ok(Settling::Answered(Settled::plain(refused), Some(state)));
            }
            let settle = Settle {
                factor,
                admitted: state,
                hit,
                on_hit: policy.succeeded(&state, now),
                on_miss: policy.charged(factor, &state, now),
                now,
                methods,
            };
            match self.store.settle_attempt(user, &settle).await? {
                Settlement::Accepted => {
                    let (device, kind) = match hit {
                        Some(Hit::TotpStep { device, .. }) => (device, DeviceKind::Totp),
                        Some(Hit::BackupCode { device, .. }) => (device, DeviceKind::BackupCodes),
                        None => return Err(StoreError::InvalidRecord("a settlement without a hit was accepted").into()),
                    };
                    return Ok(Settling::Accepted(
                        Settled::plain(Outcome::Accepted(Verified::sign_in(user, device, kind))),
                        settle.on_hit,
                    ));
                }
                Settlement::Moved(moved) => state = moved,
                Settlement::Stale => return Ok(Settling::Stale),
                _ => {
                    let settled = Settled {
                        outcome: Outcome::Rejected,
                        // A hit charged here was spent by a concurrent request: reused too.
                        reused: reused || hit.is_some(),
                        budget_remaining: Some(policy.budget_remaining(&settle.on_miss, now)),
                    };
                    // A hit spent elsewhere leaves a copy of the methods out of date.
                    let known = if hit.is_some() { None } else { Some(settle.on_miss) };
                    return Ok(Settling::Answered(settled, known));
                }
            }
        }
        Ok(Settling::Answered(Settled::plain(Self::contended(now)), None))
    }

    /// Other attempts on the same counter kept winning the race: this one waits its turn.
    fn contended(now: UnixTime) -> Outcome {
        Outcome::Throttled {
            retry_at: now.plus_secs(1),
        }
    }

    /// Charges one attempt against the user's factor, or says why it may not be evaluated.
    ///
    /// WebAuthn charges before evaluating, unlike codes: its evaluation is a signature check
    /// that costs far more than the write, so an attacker past the limit gets no CPU from it.
    /// (An assertion cannot be guessed, so this is about CPU, not about what an answer reveals.)
    async fn charge(&self, user: &UserId, factor: Factor) -> Result<Option<Outcome>, Error> {
        let policy = &self.config.throttle;
        for _ in 0..CHARGE_RETRIES {
            let state = self.store.throttle(user, factor).await?;
            let now = self.clock.now();
            if let Some(refused) = self.refusal(factor, &state, now) {
                return Ok(Some(refused));
            }
            if self
                .store
                .swap_throttle(user, factor, state, policy.charged(factor, &state, now))
                .await?
            {
                return Ok(None);
            }
        }
        Ok(Some(Self::contended(self.clock.now())))
    }

    /// Whether the next attempt on the user's factor would be evaluated now.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn throttle_status(&self, user: &UserId, factor: Factor) -> Result<ThrottleDecision, Error> {
        let state = self.store.throttle(user, factor).await?;
        Ok(self.config.throttle.decide(factor, &state, self.clock.now()))
    }

    /// Clears the failure counter of the user's factor, lifting a lock (an admin action).
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn unlock(&self, user: &UserId, factor: Factor) -> Result<(), Error> {
        self.store.clear_throttle(user, factor).await?;
        self.cache.forget(user);
        self.emit(self.event(Some(user), AuditKind::Unlocked).factor(factor));
        Ok(())
    }

    /// After the first factor: is a second one still required, and which of the user's
    /// methods may give it? See [`policy`](crate::policy).
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn assurance(&self, user: &UserId, first: &FirstFactor) -> Result<Assurance, Error> {
        let methods = self.list_methods(user).await?;
        Ok(self.config.assurance.decide(first, &methods))
    }

    // ----- Audit ------------------------------------------------------------------------------

    fn event(&self, user: Option<&UserId>, kind: AuditKind) -> AuditEvent {
        AuditEvent::new(self.clock.now(), user, kind)
    }

    fn emit(&self, event: AuditEvent) {
        self.audit.record(event);
    }

    /// Emits the events of a settled code attempt (the outcome's, and a reused code or a
    /// failure budget running low), and returns its outcome.
    async fn audit_settled(
        &self,
        user: &UserId,
        factor: Factor,
        settled: Settled,
        accepted: AuditKind,
    ) -> Result<Outcome, Error> {
        self.audit_outcome(Some(user), factor, &settled.outcome, accepted)
            .await?;
        if settled.reused {
            self.emit(self.event(Some(user), AuditKind::CodeReused).factor(factor));
        }
        if let Some(remaining) = settled.budget_remaining
            && remaining <= self.config.throttle.budget_capacity() / 4
        {
            self.emit(
                self.event(Some(user), AuditKind::FailureBudgetLow { remaining })
                    .factor(factor),
            );
        }
        Ok(settled.outcome)
    }

    /// Emits the event for an outcome: `accepted` on acceptance, else rejected/throttled/locked.
    async fn audit_outcome(
        &self,
        user: Option<&UserId>,
        factor: Factor,
        outcome: &Outcome,
        accepted: AuditKind,
    ) -> Result<(), Error> {
        let event = match outcome {
            Outcome::Accepted(v) => {
                if accepted == AuditKind::Confirmed {
                    self.methods_changed(&v.user).await?;
                }
                let event = self.event(Some(&v.user), accepted).method(v.device, v.kind);
                self.emit(event);
                if let Some(remaining) = v.remaining_backup_codes
                    && remaining <= self.config.backup_codes_low_at
                {
                    self.emit(
                        self.event(Some(&v.user), AuditKind::BackupCodesLow { remaining })
                            .method(v.device, v.kind),
                    );
                }
                return Ok(());
            }
            Outcome::Rejected => self.event(user, AuditKind::Rejected),
            Outcome::Throttled { retry_at } => self.event(user, AuditKind::Throttled { retry_at: *retry_at }),
            Outcome::Locked => self.event(user, AuditKind::Locked),
        };
        self.emit(event.factor(factor));
        Ok(())
    }

    /// Revokes the user's remember-this-device tokens: their methods changed.
    async fn methods_changed(&self, user: &UserId) -> Result<(), Error> {
        self.cache.forget(user);
        let count = self.store.delete_user_trusted_devices(user).await?;
        if count > 0 {
            self.emit(self.event(
                Some(user),
                AuditKind::TrustedDeviceRevoked {
                    count,
                    reason: RevokeReason::MethodsChanged,
                },
            ));
        }
        Ok(())
    }

    // ----- Device management ------------------------------------------------------------------

    /// The user's methods, oldest first.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn list_methods(&self, user: &UserId) -> Result<Vec<MethodInfo>, Error> {
        Ok(self
            .store
            .list_devices(user)
            .await?
            .into_iter()
            .map(|d| MethodInfo {
                id: d.id,
                kind: d.kind(),
                remaining_backup_codes: match &d.data {
                    DeviceData::BackupCodes(r) => Some(r.remaining()),
                    _ => None,
                },
                name: d.name,
                created_at: d.created_at,
                last_used_at: d.last_used_at,
                confirmed: d.confirmed,
            })
            .collect())
    }

    /// Renames one of the user's methods (trimmed, 1..=64 characters, no control characters).
    ///
    /// # Errors
    ///
    /// [`InputError::DeviceName`] for a bad name, [`MisuseError::DeviceNotFound`], store errors.
    pub async fn rename_method(&self, user: &UserId, device: DeviceId, name: &str) -> Result<(), Error> {
        let name = DeviceName::new(name)?;
        if !self.store.rename_device(user, device, &name).await? {
            return Err(MisuseError::DeviceNotFound.into());
        }
        self.cache.forget(user);
        let mut event = self.event(Some(user), AuditKind::Renamed);
        event.method = Some(device);
        self.emit(event);
        Ok(())
    }

    /// Deletes one of the user's methods, unless it is their last confirmed one (a user who
    /// enrolled must keep a way to pass the second factor; an admin can remove it with
    /// [`admin_delete_method`](Self::admin_delete_method) or [`admin_reset_user`](Self::admin_reset_user)).
    /// Revokes the user's remember-this-device tokens.
    ///
    /// # Errors
    ///
    /// [`MisuseError::LastMethod`], [`MisuseError::DeviceNotFound`], store errors.
    pub async fn delete_method(&self, user: &UserId, device: DeviceId) -> Result<(), Error> {
        let kind = self.store.device(user, device).await?.map(|d| d.kind());
        match self.store.delete_device_unless_last(user, device).await? {
            DeleteOutcome::Deleted => {}
            DeleteOutcome::NotFound => return Err(MisuseError::DeviceNotFound.into()),
            DeleteOutcome::LastMethod => return Err(MisuseError::LastMethod.into()),
        }
        self.after_delete(user, device, kind, false).await
    }

    /// **Admin**: deletes one of the user's methods even if it is the last one.
    ///
    /// # Errors
    ///
    /// [`MisuseError::DeviceNotFound`], store errors.
    pub async fn admin_delete_method(&self, user: &UserId, device: DeviceId) -> Result<(), Error> {
        let kind = self.store.device(user, device).await?.map(|d| d.kind());
        if !self.store.delete_device(user, device).await? {
            return Err(MisuseError::DeviceNotFound.into());
        }
        self.after_delete(user, device, kind, true).await
    }

    async fn after_delete(
        &self,
        user: &UserId,
        device: DeviceId,
        kind: Option<DeviceKind>,
        admin: bool,
    ) -> Result<(), Error> {
        self.methods_changed(user).await?;
        let mut event = self.event(Some(user), AuditKind::Deleted { admin });
        event.method = Some(device);
        event.method_kind = kind;
        event.factor = kind.map(DeviceKind::factor);
        self.emit(event);
        Ok(())
    }

    /// **Admin**: deletes all of the user's methods and remember-this-device tokens and clears
    /// their failure counters. Returns how many methods were removed.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn admin_reset_user(&self, user: &UserId) -> Result<u64, Error> {
        self.methods_changed(user).await?;
        let removed = self.store.delete_user_devices(user).await?;
        for factor in Factor::ALL {
            self.store.clear_throttle(user, factor).await?;
        }
        self.cache.forget(user);
        self.emit(self.event(Some(user), AuditKind::Reset { removed }));
        Ok(removed)
    }
}

pub(crate) fn totp_context(user: &UserId, device: DeviceId) -> SealContext<'_> {
    SealContext {
        purpose: TOTP_SEAL_PURPOSE,
        user,
        device,
    }
}

fn validate_account(account: &str) -> Result<&str, InputError> {
    let account = account.trim();
    let chars = account.chars().count();
    if chars == 0 || chars > 255 || account.chars().any(char::is_control) {
        return Err(InputError::AccountName);
    }
    Ok(account)
}

/// A code must have the shape of at least one device's codes before it is charged.
fn check_totp_shape(code: &str, params: &[TotpParams]) -> Result<(), InputError> {
    let digits: usize = code.chars().filter(|c| !c.is_whitespace()).count();
    let shaped = code.len() <= 64
        && code.chars().all(|c| c.is_ascii_digit() || c.is_whitespace())
        && params.iter().any(|p| p.digits() as usize == digits);
    if shaped {
        Ok(())
    } else {
        Err(InputError::CodeFormat {
            expected: "the 6 to 8 digits the authenticator app shows",
        })
    }
}
