//! Users, device ids and names, and the records a store keeps for each method.

use std::fmt;
use std::str::FromStr;

use crate::backup_codes::BackupCodeRecord;
use crate::clock::UnixTime;
use crate::error::{Error, InputError};
use crate::rng::Rng;
use crate::totp::TotpRecord;
use crate::webauthn::WebAuthnRecord;

/// The host's identifier of a user (a primary key, a UUID, a subject claim...).
///
/// 1..=255 bytes without control characters. It is bound into every sealed secret, so a
/// secret moved to another user's row does not open.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    /// Validates and wraps a user id.
    ///
    /// # Errors
    ///
    /// [`InputError::UserId`] if it is empty, longer than 255 bytes or has control characters.
    pub fn new(id: impl Into<String>) -> Result<Self, InputError> {
        let id = id.into();
        if id.is_empty() || id.len() > 255 || id.chars().any(char::is_control) {
            return Err(InputError::UserId);
        }
        Ok(Self(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Defines a 128-bit random identifier shown as 32 lower-case hex digits.
macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident, $err:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 16]);

        impl $name {
            /// A new random id.
            ///
            /// # Errors
            ///
            /// [`Error::Rng`] if the generator fails.
            pub fn generate(rng: &impl Rng) -> Result<Self, Error> {
                let mut bytes = [0u8; 16];
                rng.try_fill_bytes(&mut bytes)?;
                Ok(Self(bytes))
            }

            /// An id from its 16 bytes (as a store keeps it).
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(bytes)
            }

            /// The 16 bytes.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for b in self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = InputError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let s = s.trim();
                if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err($err);
                }
                let mut out = [0u8; 16];
                for (i, byte) in out.iter_mut().enumerate() {
                    let pair = s.get(2 * i..2 * i + 2).ok_or($err)?;
                    *byte = u8::from_str_radix(pair, 16).map_err(|_| $err)?;
                }
                Ok(Self(out))
            }
        }
    };
}

random_id!(
    /// A method's id: 128 random bits, shown as 32 lower-case hex digits.
    DeviceId,
    InputError::DeviceId
);

random_id!(
    /// A WebAuthn ceremony's id: 128 random bits, shown as 32 lower-case hex digits. Keep it in
    /// the user's session between the start and the finish of a ceremony.
    CeremonyId,
    InputError::CeremonyId
);

random_id!(
    /// A remember-this-device token's id (the public half of the token).
    TrustedDeviceId,
    InputError::TrustedDeviceToken
);

/// A method's display name: trimmed, 1..=64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceName(String);

impl DeviceName {
    /// Maximum length in characters.
    pub const MAX_CHARS: usize = 64;

    /// Trims and validates a name.
    ///
    /// # Errors
    ///
    /// [`InputError::DeviceName`] if it is empty after trimming, longer than 64 characters or
    /// contains control characters or invisible formatting (zero-width, bidirectional overrides).
    pub fn new(name: &str) -> Result<Self, InputError> {
        let name = name.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS || name.chars().any(|c| c.is_control() || is_invisible_format(c)) {
            return Err(InputError::DeviceName);
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// Zero-width and bidirectional formatting characters: a name with them can display as
/// something it is not (U+202E turns "yek-buy" into "yub-key").
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{061C}' | '\u{FEFF}')
}

/// The kind of a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeviceKind {
    /// A set of single-use backup codes.
    BackupCodes,
    /// A TOTP authenticator app.
    Totp,
    /// A WebAuthn security key registered as a second factor (not discoverable).
    SecurityKey,
    /// A WebAuthn passkey: a discoverable credential registered with user verification.
    Passkey,
}

impl DeviceKind {
    /// A stable name, for storage and logs: `"backup_codes"`, `"totp"`, `"security_key"`, `"passkey"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BackupCodes => "backup_codes",
            Self::Totp => "totp",
            Self::SecurityKey => "security_key",
            Self::Passkey => "passkey",
        }
    }

    /// The factor a method of this kind proves (what throttling counts against).
    pub const fn factor(self) -> Factor {
        match self {
            Self::BackupCodes => Factor::BackupCodes,
            Self::Totp => Factor::Totp,
            Self::SecurityKey | Self::Passkey => Factor::WebAuthn,
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::BackupCodes => "backup code set",
            Self::Totp => "authenticator app",
            Self::SecurityKey => "security key",
            Self::Passkey => "passkey",
        })
    }
}

/// A factor: what failures are counted and throttled against, per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Factor {
    /// Backup codes.
    BackupCodes,
    /// TOTP codes from any of the user's authenticator apps.
    Totp,
    /// WebAuthn assertions from any of the user's security keys and passkeys.
    WebAuthn,
}

impl Factor {
    /// A stable name, for storage and logs: `"backup_codes"`, `"totp"`, `"webauthn"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BackupCodes => "backup_codes",
            Self::Totp => "totp",
            Self::WebAuthn => "webauthn",
        }
    }

    /// Every factor, for stores that iterate them.
    pub const ALL: [Factor; 3] = [Factor::BackupCodes, Factor::Totp, Factor::WebAuthn];
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BackupCodes => "backup code",
            Self::Totp => "authenticator app",
            Self::WebAuthn => "security key or passkey",
        })
    }
}

impl FromStr for Factor {
    type Err = InputError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or(InputError::Factor)
    }
}

/// What a store keeps for one method. Holds no plaintext secret: backup codes as keyed hashes,
/// TOTP secrets sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The method's id, unique across all users.
    pub id: DeviceId,
    /// Its owner.
    pub user: UserId,
    /// The user-visible name.
    pub name: DeviceName,
    /// When it was created.
    pub created_at: UnixTime,
    /// When it last verified a code.
    pub last_used_at: Option<UnixTime>,
    /// False for a TOTP device until the user proved one code; always true for backup codes.
    pub confirmed: bool,
    /// The factor-specific data.
    pub data: DeviceData,
}

impl DeviceRecord {
    /// The method's kind, from its data.
    pub fn kind(&self) -> DeviceKind {
        match &self.data {
            DeviceData::BackupCodes(_) => DeviceKind::BackupCodes,
            DeviceData::Totp(_) => DeviceKind::Totp,
            DeviceData::WebAuthn(w) if w.discoverable => DeviceKind::Passkey,
            DeviceData::WebAuthn(_) => DeviceKind::SecurityKey,
        }
    }

    /// Whether the method can pass a second factor now: confirmed, and for backup codes, with
    /// an unused code left. The one definition the last-method guard (in every store) and the
    /// assurance policy share.
    pub fn is_usable(&self) -> bool {
        let remaining = match &self.data {
            DeviceData::BackupCodes(set) => Some(set.remaining()),
            _ => None,
        };
        usable(self.confirmed, remaining)
    }
}

/// Whether a method is usable: `confirmed`, and, for a backup-code set (`remaining_codes` is
/// `Some`), with at least one unused code. A spent set or an unconfirmed TOTP enrollment cannot
/// pass a second factor, so it neither satisfies MFA nor keeps a user's last real method from
/// being deleted.
pub(crate) fn usable(confirmed: bool, remaining_codes: Option<usize>) -> bool {
    confirmed && remaining_codes != Some(0)
}

/// Factor-specific data of a [`DeviceRecord`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceData {
    /// A backup-code set.
    BackupCodes(BackupCodeRecord),
    /// A TOTP device.
    Totp(TotpRecord),
    /// A WebAuthn credential (security key or passkey).
    WebAuthn(WebAuthnRecord),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(DeviceName::new("  Phone  ").unwrap().as_str(), "Phone");
        assert_eq!(DeviceName::new(&"é".repeat(64)).unwrap().as_str().chars().count(), 64);
        for bad in [
            "",
            "   ",
            "a\nb",
            "tab\there",
            "\u{7f}",
            &"x".repeat(65),
            "key\u{202E}yb",
            "a\u{200B}b",
            "\u{FEFF}k",
        ] {
            assert_eq!(DeviceName::new(bad), Err(InputError::DeviceName), "{bad:?}");
        }
    }

    #[test]
    fn device_ids_round_trip_and_reject_garbage() {
        let id = DeviceId::from_bytes([0xab; 16]);
        assert_eq!(id.to_string().parse::<DeviceId>().unwrap(), id);
        for bad in [
            "",
            "ab",
            &"g".repeat(32),
            &"é".repeat(16),
            &"a".repeat(33),
            "+1234567890123456789012345678901",
        ] {
            assert!(bad.parse::<DeviceId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn user_ids_are_validated() {
        assert!(UserId::new("u-1").is_ok());
        for bad in ["", "a\0b", &"x".repeat(256)] {
            assert!(UserId::new(bad).is_err());
        }
    }

    #[test]
    fn factor_names_round_trip() {
        for f in Factor::ALL {
            assert_eq!(f.as_str().parse::<Factor>().unwrap(), f);
        }
        assert!("sms".parse::<Factor>().is_err());
    }
}
