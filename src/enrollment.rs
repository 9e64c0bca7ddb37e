//! Required enrollment with a grace period: a policy says each user must have `n` methods
//! (optionally one phishing-resistant) by a deadline. The deadline is stored the first time a
//! user is seen under the policy ([`Mfa::enrollment_status`](crate::Mfa::enrollment_status)),
//! and asking again, or resetting the user's devices, never moves it; only an explicit,
//! audited administrator's call does ([`Mfa::set_enrollment_deadline`](crate::Mfa::set_enrollment_deadline)).
//!
//! A method here is one that can pass a second factor and is not a backup-code set: backup
//! codes are for recovery, and a policy that asks for two methods asks for two authenticators.

use crate::clock::UnixTime;
use crate::device::DeviceInfo;
use crate::error::ConfigError;
use crate::kind::DeviceKind;

/// Most methods a policy may require.
pub const MAX_REQUIRED: usize = 8;

/// What every user must have enrolled, and how long they have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnrollmentPolicy {
    methods: usize,
    phishing_resistant: bool,
    grace_secs: u64,
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
        })
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

    /// Decides from the user's devices, their stored deadline and the time.
    pub fn decide(&self, devices: &[DeviceInfo], deadline: UnixTime, now: UnixTime) -> EnrollmentStatus {
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
        } else if now < deadline {
            EnrollmentStatus::Due {
                deadline,
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
    /// Methods are missing; the user may skip the prompt until `deadline`.
    Due {
        /// The stored deadline.
        deadline: UnixTime,
        /// How many more methods.
        missing: usize,
        /// Whether a security key or passkey is still missing.
        phishing_resistant_missing: bool,
    },
    /// The deadline has passed: enrolling comes before anything else.
    Required {
        /// The deadline that passed.
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
            provider: None,
        }
    }

    #[test]
    fn due_until_the_deadline_then_required() {
        let policy = EnrollmentPolicy::new(2, 86_400).unwrap().with_phishing_resistant();
        let deadline = UnixTime::from_secs(1_000);
        let app_and_codes = [
            device(1, DeviceKind::Totp, None),
            device(2, DeviceKind::BackupCodes, Some(6)),
        ];
        let due = policy.decide(&app_and_codes, deadline, UnixTime::from_secs(999));
        assert_eq!(
            due,
            EnrollmentStatus::Due {
                deadline,
                missing: 1,
                phishing_resistant_missing: true
            },
            "backup codes are not a method"
        );
        assert!(due.may_skip());
        let required = policy.decide(&app_and_codes, deadline, UnixTime::from_secs(1_000));
        assert!(!required.may_skip());
        let mut with_key = app_and_codes.to_vec();
        with_key.push(device(3, DeviceKind::SecurityKey, None));
        assert_eq!(
            policy.decide(&with_key, deadline, UnixTime::from_secs(5_000)),
            EnrollmentStatus::Met
        );
        // Two apps make two methods, but not a phishing-resistant one.
        let two_apps = [device(1, DeviceKind::Totp, None), device(4, DeviceKind::Totp, None)];
        assert_eq!(
            policy.decide(&two_apps, deadline, UnixTime::from_secs(0)),
            EnrollmentStatus::Due {
                deadline,
                missing: 0,
                phishing_resistant_missing: true
            }
        );
    }

    #[test]
    fn bounds() {
        assert!(EnrollmentPolicy::new(0, 0).is_err());
        assert!(EnrollmentPolicy::new(9, 0).is_err());
        assert!(EnrollmentPolicy::new(1, 11 * 365 * 86_400).is_err());
        assert!(EnrollmentPolicy::new(8, 0).is_ok());
    }
}
