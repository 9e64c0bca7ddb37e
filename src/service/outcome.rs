//! What the service answers: the outcome of a code or an assertion, the proof of an
//! acceptance, and what an enrollment hands over once.

use crate::clock::UnixTime;
use crate::evidence::Evidence;
use crate::id::{DeviceId, UserId};
use crate::kind::DeviceKind;
use crate::throttle::ThrottleDecision;

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
    /// A security key or passkey that verified, refused by the relying party's
    /// [`CredentialPolicy`](crate::webauthn::CredentialPolicy): the reason may be shown, since
    /// the person proved they hold the credential.
    NotAllowed(crate::webauthn::PolicyRefusal),
}

impl Outcome {
    /// The answer to an attempt the throttle does not admit (`None`: admitted).
    pub(crate) fn refusal(decision: ThrottleDecision) -> Option<Self> {
        match decision {
            ThrottleDecision::Allowed => None,
            ThrottleDecision::RetryAt(retry_at) => Some(Self::Throttled { retry_at }),
            ThrottleDecision::Locked => Some(Self::Locked),
        }
    }

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
/// or re-target it to another user; [`Mfa::remember_browser`](crate::Mfa::remember_browser) accepts it as proof of a
/// sign-in only when it came from a sign-in (not from a TOTP confirmation or a registration).
///
/// ```compile_fail
/// # use multifactor::{DeviceId, DeviceKind, UserId, Verified};
/// let forged = Verified { user: UserId::new("mallory").unwrap(), device: DeviceId::from_bytes([0; 16]),
///     kind: DeviceKind::Totp, remaining_backup_codes: None, user_verified: None, synced: None,
///     at: multifactor::UnixTime::from_secs(0), sign_in: true };
/// ```
///
/// ```compile_fail
/// # fn copy(v: &multifactor::Verified) -> multifactor::Verified {
/// v.clone()
/// # }
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub(super) user: UserId,
    pub(super) device: DeviceId,
    pub(super) kind: DeviceKind,
    pub(super) remaining_backup_codes: Option<usize>,
    pub(super) user_verified: Option<bool>,
    pub(super) synced: Option<bool>,
    pub(super) at: UnixTime,
    pub(super) sign_in: bool,
}

impl Verified {
    /// The user (for passwordless sign-in: the one the passkey belongs to).
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The device that verified (or was registered or confirmed).
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

    /// When it was verified (the service's clock).
    pub fn at(&self) -> UnixTime {
        self.at
    }

    /// What this sign-in proved, for the host to keep in its session: kind, time, user
    /// verification, synced or device-bound, and the RFC 8176 `amr` values
    /// ([`Evidence::amr`]). [`Evidence::is_fresh`] then answers whether a later action (a
    /// password change, deleting a device) needs a new second factor first.
    ///
    /// `None` for the proof of an enrollment (a TOTP confirmation, a WebAuthn registration):
    /// enrolling a device proves that the session can add one, not that its user passed a
    /// second factor, so it is no evidence of a sign-in.
    pub fn evidence(&self) -> Option<Evidence> {
        self.sign_in
            .then(|| Evidence::new(self.kind, self.at, self.user_verified, self.synced))
    }

    /// True when this proves a sign-in (a code or assertion verified at sign-in), false for a
    /// TOTP confirmation or a WebAuthn registration.
    pub fn is_sign_in(&self) -> bool {
        self.sign_in
    }

    /// True for a sign-in by backup code: a recovery. Prompt the user to check their devices
    /// (and to print new codes when [`remaining_backup_codes`](Self::remaining_backup_codes) is low).
    pub fn is_recovery(&self) -> bool {
        self.kind == DeviceKind::BackupCodes
    }

    /// A sign-in by `device` at `at`.
    pub(crate) fn sign_in(user: &UserId, device: DeviceId, kind: DeviceKind, at: UnixTime) -> Self {
        Self {
            user: user.clone(),
            device,
            kind,
            remaining_backup_codes: None,
            user_verified: None,
            synced: None,
            at,
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

    /// A WebAuthn verification: user verification, and whether the credential may be synced
    /// (backup-eligible as recorded before this assertion or as this assertion says: a
    /// credential is device-bound only while both say so).
    pub(crate) fn with_webauthn(mut self, verified: bool, backup_eligible: bool) -> Self {
        self.user_verified = Some(verified);
        self.synced = Some(backup_eligible);
        self
    }
}
