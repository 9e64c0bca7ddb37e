//! What satisfied a second factor, for the host to keep in its session: the kind of device,
//! when, whether the user was verified, whether a WebAuthn credential is synced, and the RFC 8176
//! `amr` values. [`Evidence::is_fresh`] answers "was the second factor recent enough for this
//! action" (step-up before a password change or a device deletion), a pure check on the
//! evidence and the time.
//!
//! Evidence has a stable one-line text form ([`fmt::Display`] and [`std::str::FromStr`]), so any
//! session store keeps it as a string. It is a record of what the service verified, not a
//! credential: the host must keep it where the user cannot edit it (a server-side session, or a
//! signed cookie), as it keeps the user id.

use std::fmt;
use std::str::FromStr;

use crate::clock::UnixTime;
use crate::error::InputError;
use crate::kind::DeviceKind;
use crate::policy::{AssurancePolicy, FirstFactor};

/// An RFC 8176 authentication method reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Amr {
    /// `pwd`: a password.
    Pwd,
    /// `otp`: a one-time password (a TOTP or HOTP code, a backup code, or a code sent by email).
    Otp,
    /// `sms`: a code sent by SMS text message to a registered number.
    Sms,
    /// `hwk`: proof of possession of a hardware-secured key (a device-bound WebAuthn credential).
    Hwk,
    /// `swk`: proof of possession of a software-secured key (a backup-eligible, syncable one).
    Swk,
    /// `user`: a user-presence test (every WebAuthn assertion).
    User,
    /// `pin`: a PIN. WebAuthn says whether the user was verified, not how, so this crate never
    /// claims it; an upstream provider may.
    Pin,
    /// `mfa`: more than one factor.
    Mfa,
}

impl Amr {
    /// The registered value (`"pwd"`, `"otp"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pwd => "pwd",
            Self::Otp => "otp",
            Self::Sms => "sms",
            Self::Hwk => "hwk",
            Self::Swk => "swk",
            Self::User => "user",
            Self::Pin => "pin",
            Self::Mfa => "mfa",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [
            Self::Pwd,
            Self::Otp,
            Self::Hwk,
            Self::Swk,
            Self::User,
            Self::Pin,
            Self::Mfa,
        ]
        .into_iter()
        .find(|a| a.as_str() == name)
    }
}

impl fmt::Display for Amr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one successful verification proved ([`Verified::evidence`](crate::Verified::evidence)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    kind: DeviceKind,
    at: UnixTime,
    user_verified: Option<bool>,
    synced: Option<bool>,
}

impl Evidence {
    pub(crate) fn new(kind: DeviceKind, at: UnixTime, user_verified: Option<bool>, synced: Option<bool>) -> Self {
        Self {
            kind,
            at,
            user_verified,
            synced,
        }
    }

    /// The kind of device that verified.
    pub fn kind(&self) -> DeviceKind {
        self.kind
    }

    /// When.
    pub fn at(&self) -> UnixTime {
        self.at
    }

    /// For WebAuthn: whether the authenticator verified the user (PIN or biometrics).
    pub fn user_verified(&self) -> Option<bool> {
        self.user_verified
    }

    /// For WebAuthn: whether the credential is backup-eligible (a synced passkey: its key may
    /// live in a cloud account), as the authenticator said at this assertion.
    pub fn synced(&self) -> Option<bool> {
        self.synced
    }

    /// Its RFC 8176 values alone: `otp` for a code; `swk` or `hwk` (synced or device-bound) and
    /// `user` for a security key or passkey, with `mfa` when the authenticator also verified the
    /// user (possession and PIN or biometrics: two factors in one gesture).
    pub fn amr(&self) -> Vec<Amr> {
        match self.kind {
            DeviceKind::Totp | DeviceKind::BackupCodes | DeviceKind::Email => vec![Amr::Otp],
            DeviceKind::Sms => vec![Amr::Sms, Amr::Otp],
            DeviceKind::SecurityKey | DeviceKind::Passkey => {
                let key = if self.synced == Some(true) { Amr::Swk } else { Amr::Hwk };
                let mut amr = vec![key, Amr::User];
                if self.user_verified == Some(true) {
                    amr.push(Amr::Mfa);
                }
                amr
            }
        }
    }

    /// Whether this verification is recent enough for an action that wants a second factor at
    /// most `max_age_secs` old: `at` is not after `now` and not more than `max_age_secs` before.
    pub fn is_fresh(&self, now: UnixTime, max_age_secs: u64) -> bool {
        self.at <= now && now.as_secs() - self.at.as_secs() <= max_age_secs
    }
}

/// The `amr` claim of a session: the first factor's values, then the second factor's (if any),
/// with `mfa` when two factors were used. Values are RFC 8176 strings, sorted and without
/// repeats. A federated first factor contributes the values its provider asserted only when
/// `policy` trusts that provider by name ([`AssurancePolicy::danger_trust_upstream_mfa`]); an
/// untrusted provider's claims are not repeated as if this service had verified them.
pub fn session_amr(first: &FirstFactor, second: Option<&Evidence>, policy: &AssurancePolicy) -> Vec<String> {
    let mut amr: Vec<String> = match first {
        FirstFactor::Password => vec![Amr::Pwd.as_str().to_owned()],
        FirstFactor::Federated { provider, amr, .. } if policy.trusts_provider(provider) => amr.clone(),
        FirstFactor::Federated { .. } => Vec::new(),
        FirstFactor::Passkey { user_verified } => {
            let mut values = vec![Amr::User.as_str().to_owned()];
            if *user_verified {
                values.push(Amr::Mfa.as_str().to_owned());
            }
            values
        }
    };
    if let Some(second) = second {
        amr.extend(second.amr().iter().map(|a| a.as_str().to_owned()));
        amr.push(Amr::Mfa.as_str().to_owned());
    }
    amr.sort();
    amr.dedup();
    amr
}

/// `mfa-evidence/1 KIND AT UV SYNCED`, with `-` for an unknown flag: for example
/// `mfa-evidence/1 passkey 1800000000 1 0`.
impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flag = |v: Option<bool>| match v {
            Some(true) => "1",
            Some(false) => "0",
            None => "-",
        };
        write!(
            f,
            "mfa-evidence/1 {} {} {} {}",
            self.kind.as_str(),
            self.at.as_secs(),
            flag(self.user_verified),
            flag(self.synced)
        )
    }
}

impl FromStr for Evidence {
    type Err = InputError;

    /// Reads the text form back.
    ///
    /// # Errors
    ///
    /// [`InputError::Evidence`] for anything else.
    fn from_str(text: &str) -> Result<Self, InputError> {
        let bad = InputError::Evidence;
        let mut parts = text.split(' ');
        if parts.next() != Some("mfa-evidence/1") {
            return Err(bad);
        }
        let kind = match parts.next() {
            Some("totp") => DeviceKind::Totp,
            Some("backup_codes") => DeviceKind::BackupCodes,
            Some("security_key") => DeviceKind::SecurityKey,
            Some("passkey") => DeviceKind::Passkey,
            Some("email") => DeviceKind::Email,
            Some("sms") => DeviceKind::Sms,
            _ => return Err(bad),
        };
        let at = parts.next().and_then(|t| t.parse::<u64>().ok()).ok_or(bad.clone())?;
        let flag = |v: Option<&str>| match v {
            Some("1") => Ok(Some(true)),
            Some("0") => Ok(Some(false)),
            Some("-") => Ok(None),
            _ => Err(InputError::Evidence),
        };
        let user_verified = flag(parts.next())?;
        let synced = flag(parts.next())?;
        if parts.next().is_some() || at > i64::MAX as u64 {
            return Err(bad);
        }
        Ok(Self::new(kind, UnixTime::from_secs(at), user_verified, synced))
    }
}

/// Reads an `amr` value list (as a provider sent it) into the values this crate knows.
pub fn known_amr<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Amr> {
    values.into_iter().filter_map(Amr::from_name).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use proptest::prelude::*;

    use super::*;

    fn at(secs: u64) -> UnixTime {
        UnixTime::from_secs(secs)
    }

    #[test]
    fn amr_per_kind() {
        let totp = Evidence::new(DeviceKind::Totp, at(100), None, None);
        assert_eq!(totp.amr(), vec![Amr::Otp]);
        let codes = Evidence::new(DeviceKind::BackupCodes, at(100), None, None);
        assert_eq!(codes.amr(), vec![Amr::Otp]);
        let key = Evidence::new(DeviceKind::SecurityKey, at(100), Some(false), Some(false));
        assert_eq!(key.amr(), vec![Amr::Hwk, Amr::User]);
        let synced = Evidence::new(DeviceKind::Passkey, at(100), Some(true), Some(true));
        assert_eq!(synced.amr(), vec![Amr::Swk, Amr::User, Amr::Mfa]);
        let bound = Evidence::new(DeviceKind::Passkey, at(100), Some(true), Some(false));
        assert_eq!(bound.amr(), vec![Amr::Hwk, Amr::User, Amr::Mfa]);
    }

    #[test]
    fn session_amr_combines_factors() {
        let none = AssurancePolicy::new();
        let totp = Evidence::new(DeviceKind::Totp, at(100), None, None);
        assert_eq!(session_amr(&FirstFactor::Password, None, &none), ["pwd"]);
        assert_eq!(
            session_amr(&FirstFactor::Password, Some(&totp), &none),
            ["mfa", "otp", "pwd"]
        );
        let passkey = FirstFactor::Passkey { user_verified: true };
        assert_eq!(session_amr(&passkey, None, &none), ["mfa", "user"]);
        let key = Evidence::new(DeviceKind::SecurityKey, at(100), Some(false), Some(false));
        let federated = FirstFactor::Federated {
            provider: "demoid".into(),
            amr: vec!["pwd".into(), "fed".into(), "mfa".into()],
            acr: None,
        };
        // A provider the host trusts by name: its claims are repeated.
        let trusting = AssurancePolicy::new().danger_trust_upstream_mfa("demoid", &["mfa"], &[]);
        assert_eq!(
            session_amr(&federated, Some(&key), &trusting),
            ["fed", "hwk", "mfa", "pwd", "user"]
        );
        // One it does not trust (or another provider's name): its claims are not.
        let other = AssurancePolicy::new().danger_trust_upstream_mfa("elsewhere", &["mfa"], &[]);
        for policy in [&none, &other] {
            assert_eq!(session_amr(&federated, None, policy), Vec::<String>::new());
            assert_eq!(session_amr(&federated, Some(&key), policy), ["hwk", "mfa", "user"]);
        }
        assert_eq!(known_amr(["pwd", "fed", "hwk"]), [Amr::Pwd, Amr::Hwk]);
    }

    #[test]
    fn freshness_is_a_window_ending_now() {
        let e = Evidence::new(DeviceKind::Totp, at(1_000), None, None);
        assert!(e.is_fresh(at(1_000), 0));
        assert!(e.is_fresh(at(1_300), 300));
        assert!(!e.is_fresh(at(1_301), 300));
        // Evidence from the future (a clock moved back, or forged) is not fresh.
        assert!(!e.is_fresh(at(999), 300));
    }

    #[test]
    fn text_form_round_trips_and_refuses_garbage() {
        for e in [
            Evidence::new(DeviceKind::Totp, at(1_800_000_000), None, None),
            Evidence::new(DeviceKind::Passkey, at(0), Some(true), Some(false)),
            Evidence::new(DeviceKind::SecurityKey, at(5), Some(false), Some(true)),
            Evidence::new(DeviceKind::BackupCodes, at(7), None, None),
            Evidence::new(DeviceKind::Email, at(8), None, None),
            Evidence::new(DeviceKind::Sms, at(9), None, None),
        ] {
            assert_eq!(e.to_string().parse::<Evidence>().unwrap(), e, "{e}");
        }
        assert_eq!(
            Evidence::new(DeviceKind::Passkey, at(1_800_000_000), Some(true), Some(false)).to_string(),
            "mfa-evidence/1 passkey 1800000000 1 0"
        );
        for bad in [
            "",
            "mfa-evidence/2 totp 1 - -",
            "mfa-evidence/1 voice 1 - -",
            "mfa-evidence/1 totp x - -",
            "mfa-evidence/1 totp 1 2 -",
            "mfa-evidence/1 totp 1 - -  ",
            "mfa-evidence/1 totp 1 - - extra",
            "mfa-evidence/1 totp 99999999999999999999 - -",
            "mfa-evidence/1 totp 18446744073709551615 - -",
        ] {
            assert_eq!(bad.parse::<Evidence>(), Err(InputError::Evidence), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in ".{0,80}") {
            let _ = text.parse::<Evidence>();
        }
    }
}
