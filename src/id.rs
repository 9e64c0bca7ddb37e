//! Identifiers and names: users, devices, ceremonies and remembered browsers, and devices'
//! display names. The bottom layer of the crate's own types: nothing here imports a factor, a
//! store or the service.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, InputError};
use crate::kind::{DeviceKind, Factor};
use crate::rng::Rng;

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
    /// A device's id: 128 random bits, shown as 32 lower-case hex digits.
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
    /// A remember-this-browser token's id (the public half of the token).
    RememberedBrowserId,
    InputError::RememberedBrowserToken
);

/// A device's display name: trimmed, 1..=64 characters, no control characters.
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
        let name = label(name, Self::MAX_CHARS)
            .filter(|n| !n.chars().any(is_invisible_format))
            .ok_or(InputError::DeviceName)?;
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

/// Text shown to people (a device's name, an account label, an issuer, a relying party's or a
/// WebAuthn user's name): trimmed, 1 to `max_chars` characters, no control characters. `None`
/// if it breaks the rule; each caller names its own error and may add its own restriction.
pub(crate) fn label(text: &str, max_chars: usize) -> Option<&str> {
    let text = text.trim();
    let chars = text.chars().count();
    (chars > 0 && chars <= max_chars && !text.chars().any(char::is_control)).then_some(text)
}

/// Zero-width and bidirectional formatting characters: a name with them can display as
/// something it is not (U+202E turns "yek-buy" into "yub-key").
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{061C}' | '\u{FEFF}')
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

impl FromStr for DeviceKind {
    type Err = InputError;

    /// Parses the text form ([`DeviceKind::as_str`], which `Display` writes too).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(InputError::DeviceKind)
    }
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
