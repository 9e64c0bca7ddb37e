//! Required enrollment with a grace period: a policy says each user must have `n` methods
//! (optionally one phishing-resistant) by a deadline, and optionally within a number of skipped
//! prompts, whichever ends first. The deadline is stored the first time a user is seen under
//! the policy ([`Mfa::enrollment_status`](crate::Mfa::enrollment_status)), and asking again, or
//! resetting the user's devices, never moves it; each skip the user makes
//! ([`Mfa::skip_enrollment`](crate::Mfa::skip_enrollment)) is counted atomically against the
//! allowance. Only an explicit, audited administrator's call moves the deadline and starts the
//! count again ([`Mfa::set_enrollment_deadline`](crate::Mfa::set_enrollment_deadline)).
//!
//! A method here is one that can pass a second factor and is not a backup-code set: backup
//! codes are for recovery, and a policy that asks for two methods asks for two authenticators.

use crate::clock::UnixTime;
use crate::device::DeviceInfo;
use crate::error::ConfigError;
use crate::kind::DeviceKind;

/// Most methods a policy may require.
pub const MAX_REQUIRED: usize = 8;

/// Most skipped prompts a policy may allow.
pub const MAX_SKIPS: u32 = 1_000;

/// What the store keeps of a user under the policy: their deadline and the prompts they skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnrollmentGrace {
    /// The deadline stored when the user was first seen (or an administrator's).
    pub deadline: UnixTime,
    /// Prompts skipped since then (or since an administrator's new deadline).
    pub skipped: u32,
}

impl EnrollmentGrace {
    /// A deadline and a count of skipped prompts.
    pub const fn new(deadline: UnixTime, skipped: u32) -> Self {
        Self { deadline, skipped }
    }
}

/// What every user must have enrolled, and how long they have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnrollmentPolicy {
    methods: usize,
    phishing_resistant: bool,
    grace_secs: u64,
    skips: Option<u32>,
}

impl EnrollmentPolicy {
    /// `methods` working methods (backup codes not counted), within `grace_secs` of the first
    /// time a user is seen under the policy.
    ///
    /// # Errors
    ///
    /// [`ConfigError::EnrollmentPolicy`] for 0 or more than [`MAX_REQUIRED`] methods, or a grace
    /// period over 10 years.
    pub fn new(methods: usize, grace_secs: u64) -> Result<Self, ConfigError> {
        if !(1..=MAX_REQUIRED).contains(&methods) {
            return Err(ConfigError::EnrollmentPolicy("methods must be 1..=8"));
        }
        if grace_secs > 10 * 365 * 86_400 {
            return Err(ConfigError::EnrollmentPolicy("grace period over 10 years"));
        }
        Ok(Self {
            methods,
            phishing_resistant: false,
            grace_secs,
            skips: None,
        })
    }

    /// The user may also skip the prompt at most `skips` times: the grace ends at the deadline
    /// or with the last skip, whichever comes first. `0` allows no skip at all.
    ///
    /// # Errors
    ///
    /// [`ConfigError::EnrollmentPolicy`] for more than [`MAX_SKIPS`].
    pub fn with_skips(mut self, skips: u32) -> Result<Self, ConfigError> {
        if skips > MAX_SKIPS {
            return Err(ConfigError::EnrollmentPolicy("skips over 1000"));
        }
        self.skips = Some(skips);
        Ok(self)
    }

    /// How many skipped prompts the policy allows (`None`: only the deadline counts).
    pub fn skips(&self) -> Option<u32> {
        self.skips
    }

    /// One of the methods must be a security key or passkey.
    #[must_use]
    pub fn with_phishing_resistant(mut self) -> Self {
        self.phishing_resistant = true;
        self
    }

    /// How long a newly seen user has.
    pub fn grace_secs(&self) -> u64 {
        self.grace_secs
    }

    /// Decides from the user's devices, their stored deadline and skipped prompts, and the time.
    pub fn decide(&self, devices: &[DeviceInfo], grace: EnrollmentGrace, now: UnixTime) -> EnrollmentStatus {
        let deadline = grace.deadline;
        let skips_left = self.skips.map(|max| max.saturating_sub(grace.skipped));
        let counted: Vec<&DeviceInfo> = devices
            .iter()
            .filter(|d| d.is_usable() && d.kind != DeviceKind::BackupCodes)
            .collect();
        let missing = self.methods.saturating_sub(counted.len());
        let phishing_resistant_missing = self.phishing_resistant
            && !counted
                .iter()
                .any(|d| matches!(d.kind, DeviceKind::SecurityKey | DeviceKind::Passkey));
        if missing == 0 && !phishing_resistant_missing {
            EnrollmentStatus::Met
        } else if now < deadline && skips_left != Some(0) {
            EnrollmentStatus::Due {
                deadline,
                skips_left,
                missing,
                phishing_resistant_missing,
            }
        } else {
            EnrollmentStatus::Required {
                deadline,
                missing,
                phishing_resistant_missing,
            }
        }
    }
}

/// The answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnrollmentStatus {
    /// The user has what the policy asks for.
    Met,
    /// Methods are missing; the user may skip the prompt until `deadline`, and (under a policy
    /// that counts them) `skips_left` more times.
    Due {
        /// The stored deadline.
        deadline: UnixTime,
        /// Skips the user has left (`None`: the policy counts none).
        skips_left: Option<u32>,
        /// How many more methods.
        missing: usize,
        /// Whether a security key or passkey is still missing.
        phishing_resistant_missing: bool,
    },
    /// The grace is over (the deadline passed, or the last allowed prompt was skipped):
    /// enrolling comes before anything else.
    Required {
        /// The stored deadline.
        deadline: UnixTime,
        /// How many more methods.
        missing: usize,
        /// Whether a security key or passkey is still missing.
        phishing_resistant_missing: bool,
    },
}

impl EnrollmentStatus {
    /// Whether the user may go on without enrolling now: true only for
    /// [`Met`](Self::Met) and [`Due`](Self::Due). Fails closed for any answer a later version
    /// adds.
    pub fn may_skip(&self) -> bool {
        match self {
            Self::Met | Self::Due { .. } => true,
            Self::Required { .. } => false,
        }
    }
}

/// The answer to a skipped prompt ([`Mfa::skip_enrollment`](crate::Mfa::skip_enrollment)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    /// Whether the user may go on without enrolling now: the skip was counted (the last one
    /// too), or none needed counting (the policy is met, or counts only the deadline, which has
    /// not passed). `false` when no skip was left or the deadline passed: nothing was counted.
    pub allowed: bool,
    /// Where the user stands after the skip ([`Required`](EnrollmentStatus::Required) after
    /// the last one: the next prompt cannot be skipped).
    pub status: EnrollmentStatus,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::id::{DeviceId, DeviceName};

    fn device(n: u8, kind: DeviceKind, left: Option<usize>) -> DeviceInfo {
        DeviceInfo {
            id: DeviceId::from_bytes([n; 16]),
            kind,
            name: DeviceName::new("d").unwrap(),
            created_at: UnixTime::from_secs(0),
            last_used_at: None,
            confirmed: true,
            remaining_backup_codes: left,
            synced: None,
            backed_up: None,
            aaguid: None,
            prf: None,
            destination: None,
            provider: None,
        }
    }

    #[test]
    fn due_until_the_deadline_then_required() {
        let policy = EnrollmentPolicy::new(2, 86_400).unwrap().with_phishing_resistant();
        let deadline = UnixTime::from_secs(1_000);
        let grace = EnrollmentGrace::new(deadline, 0);
        let app_and_codes = [
            device(1, DeviceKind::Totp, None),
            device(2, DeviceKind::BackupCodes, Some(6)),
        ];
        let due = policy.decide(&app_and_codes, grace, UnixTime::from_secs(999));
        assert_eq!(
            due,
            EnrollmentStatus::Due {
                deadline,
                skips_left: None,
                missing: 1,
                phishing_resistant_missing: true
            },
            "backup codes are not a method"
        );
        assert!(due.may_skip());
        let required = policy.decide(&app_and_codes, grace, UnixTime::from_secs(1_000));
        assert!(!required.may_skip());
        let mut with_key = app_and_codes.to_vec();
        with_key.push(device(3, DeviceKind::SecurityKey, None));
        assert_eq!(
            policy.decide(&with_key, grace, UnixTime::from_secs(5_000)),
            EnrollmentStatus::Met
        );
        // Two apps make two methods, but not a phishing-resistant one.
        let two_apps = [device(1, DeviceKind::Totp, None), device(4, DeviceKind::Totp, None)];
        assert_eq!(
            policy.decide(&two_apps, grace, UnixTime::from_secs(0)),
            EnrollmentStatus::Due {
                deadline,
                skips_left: None,
                missing: 0,
                phishing_resistant_missing: true
            }
        );
    }

    /// The grace ends at the last skip or at the deadline, whichever comes first; skips beyond
    /// the allowance (a count an administrator's reset did not clear) stay required.
    #[test]
    fn skips_end_the_grace_before_the_deadline() {
        let policy = EnrollmentPolicy::new(1, 86_400).unwrap().with_skips(3).unwrap();
        let deadline = UnixTime::from_secs(1_000);
        let none: [DeviceInfo; 0] = [];
        let at = |skipped| policy.decide(&none, EnrollmentGrace::new(deadline, skipped), UnixTime::from_secs(10));
        for (skipped, left) in [(0, 3), (1, 2), (2, 1)] {
            assert_eq!(
                at(skipped),
                EnrollmentStatus::Due {
                    deadline,
                    skips_left: Some(left),
                    missing: 1,
                    phishing_resistant_missing: false
                }
            );
        }
        for skipped in [3, 4, u32::MAX] {
            assert!(!at(skipped).may_skip(), "{skipped} skips of 3");
        }
        // Skips left, but the deadline passed.
        let late = policy.decide(&none, EnrollmentGrace::new(deadline, 0), deadline);
        assert!(!late.may_skip());
        // No skips allowed: required at once, whatever the deadline.
        let strict = EnrollmentPolicy::new(1, 86_400).unwrap().with_skips(0).unwrap();
        assert!(
            !strict
                .decide(&none, EnrollmentGrace::new(deadline, 0), UnixTime::from_secs(0))
                .may_skip()
        );
        // Enrolled: met, however many skips were counted.
        let app = [device(1, DeviceKind::Totp, None)];
        assert_eq!(
            policy.decide(&app, EnrollmentGrace::new(deadline, 9), deadline),
            EnrollmentStatus::Met
        );
    }

    #[test]
    fn bounds() {
        assert!(EnrollmentPolicy::new(1, 0).unwrap().with_skips(MAX_SKIPS).is_ok());
        assert!(EnrollmentPolicy::new(1, 0).unwrap().with_skips(MAX_SKIPS + 1).is_err());
        assert!(EnrollmentPolicy::new(0, 0).is_err());
        assert!(EnrollmentPolicy::new(9, 0).is_err());
        assert!(EnrollmentPolicy::new(1, 11 * 365 * 86_400).is_err());
        assert!(EnrollmentPolicy::new(8, 0).is_ok());
    }
}
