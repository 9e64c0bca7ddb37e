//! Assurance policy: after the first factor, is a second one still required, and which of the
//! user's devices may satisfy it?
//!
//! "Highest available": a user who enrolled any device must use one. A federated or social
//! login does not bypass that unless the host explicitly trusts that provider's MFA claim
//! ([`AssurancePolicy::danger_trust_upstream_mfa`]). A passkey with user verification is two
//! factors in one gesture (something you have, unlocked by something you know or are); without
//! user verification it is one.

use crate::device::DeviceInfo;
use crate::id::DeviceId;

/// How the first factor happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FirstFactor {
    /// A password (or any other single knowledge factor).
    Password,
    /// A federated or social login.
    Federated {
        /// The provider's identifier as the host names it (issuer URL, "google", ...).
        provider: String,
        /// The `amr` values the provider asserted (RFC 8176: "mfa", "otp", "hwk", ...).
        amr: Vec<String>,
        /// The `acr` value the provider asserted, if any.
        acr: Option<String>,
    },
    /// A passkey sign-in (see [`Verified::user_verified`](crate::Verified::user_verified)).
    Passkey {
        /// Whether the authenticator verified the user.
        user_verified: bool,
    },
}

/// Why no second factor is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SatisfiedBy {
    /// A passkey with user verification.
    PasskeyWithUserVerification,
    /// A trusted upstream provider asserted MFA.
    UpstreamMfa {
        /// The provider.
        provider: String,
    },
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Assurance {
    /// The sign-in already counts as multi-factor.
    Satisfied(SatisfiedBy),
    /// A second factor is required: any of these devices may give it.
    SecondFactorRequired {
        /// The user's usable devices (confirmed; backup codes only while some remain).
        devices: Vec<DeviceInfo>,
    },
    /// The user has no device at all: the sign-in is single-factor. Hosts that require MFA
    /// send the user to enrollment.
    NotEnrolled,
    /// The user had a second factor and has none left that works (their only devices were
    /// backup codes, all spent): the first factor alone does not sign them in. Send them to the
    /// host's account recovery (an administrator's reset, or a recovery process of the host).
    RecoveryRequired,
}

impl Assurance {
    /// Whether the first factor alone must not sign the user in: a second factor is due, or
    /// recovery is. Fails closed: true for every answer but [`Satisfied`](Self::Satisfied) and
    /// [`NotEnrolled`](Self::NotEnrolled), including any added later.
    ///
    /// The recommended match, with the catch-all on the safe side:
    ///
    /// ```
    /// # use multifactor::Assurance;
    /// fn next_page(answer: &Assurance) -> &'static str {
    ///     match answer {
    ///         Assurance::Satisfied(_) => "/",
    ///         Assurance::NotEnrolled => "/settings/enroll",
    ///         Assurance::RecoveryRequired => "/recover",
    ///         // SecondFactorRequired, and anything a later version adds.
    ///         _ => "/second-factor",
    ///     }
    /// }
    /// assert_eq!(next_page(&Assurance::RecoveryRequired), "/recover");
    /// assert!(Assurance::RecoveryRequired.second_factor_required());
    /// ```
    pub fn second_factor_required(&self) -> bool {
        match self {
            Self::Satisfied(_) | Self::NotEnrolled => false,
            Self::SecondFactorRequired { .. } | Self::RecoveryRequired => true,
        }
    }
}

/// An upstream provider whose MFA claim the host has chosen to trust.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TrustedProvider {
    provider: String,
    amr: Vec<String>,
    acr: Vec<String>,
}

/// Which upstream MFA claims count. Trusts none by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssurancePolicy {
    trusted: Vec<TrustedProvider>,
}

impl AssurancePolicy {
    /// A policy that trusts no upstream MFA claim.
    pub fn new() -> Self {
        Self::default()
    }

    /// **Danger**: counts a login through `provider` as multi-factor when it asserts any of
    /// `amr` (for example `["mfa", "hwk", "otp"]`) or any of `acr`. Only do this for providers
    /// that really enforce MFA and whose tokens you validate; otherwise a compromised or lax
    /// social account skips your second factor.
    #[must_use]
    pub fn danger_trust_upstream_mfa(mut self, provider: &str, amr: &[&str], acr: &[&str]) -> Self {
        self.trusted.push(TrustedProvider {
            provider: provider.to_owned(),
            amr: amr.iter().map(|s| (*s).to_owned()).collect(),
            acr: acr.iter().map(|s| (*s).to_owned()).collect(),
        });
        self
    }

    /// Whether the host named `provider` in [`danger_trust_upstream_mfa`](Self::danger_trust_upstream_mfa).
    pub fn trusts_provider(&self, provider: &str) -> bool {
        self.trusted.iter().any(|t| t.provider == provider)
    }

    /// Decides, from the first factor and the user's devices.
    pub fn decide(&self, first: &FirstFactor, methods: &[DeviceInfo]) -> Assurance {
        match first {
            FirstFactor::Passkey { user_verified: true } => {
                return Assurance::Satisfied(SatisfiedBy::PasskeyWithUserVerification);
            }
            FirstFactor::Federated { provider, amr, acr } => {
                let trusted = self.trusted.iter().any(|t| {
                    &t.provider == provider
                        && (amr.iter().any(|a| t.amr.contains(a)) || acr.as_ref().is_some_and(|a| t.acr.contains(a)))
                });
                if trusted {
                    return Assurance::Satisfied(SatisfiedBy::UpstreamMfa {
                        provider: provider.clone(),
                    });
                }
            }
            _ => {}
        }
        let usable: Vec<DeviceInfo> = methods.iter().filter(|m| m.is_usable()).cloned().collect();
        if !usable.is_empty() {
            Assurance::SecondFactorRequired { devices: usable }
        } else if methods.iter().any(|m| m.confirmed) {
            // A confirmed device that no longer works: a spent backup-code set.
            Assurance::RecoveryRequired
        } else {
            Assurance::NotEnrolled
        }
    }
}

/// Whether `device` is the user's last usable device, which [`Mfa::delete_device`] refuses to
/// remove ([`MisuseError::LastDevice`]): it is usable (confirmed, and for backup codes with codes
/// left) and no other of `devices` is. A settings page asks this to disable its Delete button
/// with the reason before anyone presses it; the store still decides atomically at deletion.
///
/// `devices` is the user's list from [`Mfa::list_devices`]; a `device` not in it is not last.
///
/// [`Mfa::delete_device`]: crate::Mfa::delete_device
/// [`Mfa::list_devices`]: crate::Mfa::list_devices
/// [`MisuseError::LastDevice`]: crate::error::MisuseError::LastDevice
pub fn is_last_device(methods: &[DeviceInfo], device: DeviceId) -> bool {
    methods.iter().any(|m| m.id == device && m.is_usable()) && !methods.iter().any(|m| m.id != device && m.is_usable())
}
