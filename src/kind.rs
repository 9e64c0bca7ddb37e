//! The kinds of devices and the factors they prove: plain enums with stable names, below
//! everything else (the error types name them).

use std::fmt;

/// The kind of a device.
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

    /// The kind of a WebAuthn credential: a passkey if it is discoverable (registered for
    /// passwordless sign-in, with user verification), else a security key.
    pub const fn webauthn(discoverable: bool) -> Self {
        if discoverable { Self::Passkey } else { Self::SecurityKey }
    }

    /// The name a new device of this kind gets when the user gives none.
    pub const fn default_name(self) -> &'static str {
        match self {
            Self::BackupCodes => "Backup codes",
            Self::Totp => "Authenticator app",
            Self::SecurityKey => "Security key",
            Self::Passkey => "Passkey",
        }
    }

    /// The factor a device of this kind proves (what throttling counts against).
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
