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
    /// An email address that receives one-time codes. A restricted method: see
    /// [`is_restricted`](Self::is_restricted).
    Email,
    /// A phone number that receives one-time codes by SMS. A restricted method: see
    /// [`is_restricted`](Self::is_restricted).
    Sms,
}

impl DeviceKind {
    /// Every kind.
    pub const ALL: [DeviceKind; 6] = [
        Self::BackupCodes,
        Self::Totp,
        Self::SecurityKey,
        Self::Passkey,
        Self::Email,
        Self::Sms,
    ];

    /// The kind's one text form, for storage, logs, URLs and JSON: `"backup_codes"`, `"totp"`,
    /// `"security_key"`, `"passkey"`, `"email"`, `"sms"`. `Display` writes it, `FromStr` and
    /// `serde` read it. For people, see [`noun`](Self::noun) and
    /// [`default_name`](Self::default_name).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BackupCodes => "backup_codes",
            Self::Totp => "totp",
            Self::SecurityKey => "security_key",
            Self::Passkey => "passkey",
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }

    /// Whether codes reach this method through someone else's hands: a code sent by email or
    /// SMS. NIST SP 800-63B names SMS a *restricted* authenticator (SIM swaps, number ports,
    /// interception on the phone network) and does not accept email as an out-of-band
    /// authenticator at all (it proves access to a mailbox, not possession of a device). Both
    /// are one-time codes a phishing page can relay. [`Level::Unrestricted`](crate::authorize::Level::Unrestricted)
    /// and the phishing-resistant levels refuse them.
    pub const fn is_restricted(self) -> bool {
        matches!(self, Self::Email | Self::Sms)
    }

    /// The kind of a WebAuthn credential: a passkey if it is discoverable (registered for
    /// passwordless sign-in, with user verification), else a security key.
    pub const fn webauthn(discoverable: bool) -> Self {
        if discoverable { Self::Passkey } else { Self::SecurityKey }
    }

    /// The kind in a sentence meant for a person: "authenticator app", "backup code set",
    /// "security key", "passkey", "email address", "phone number".
    pub const fn noun(self) -> &'static str {
        match self {
            Self::BackupCodes => "backup code set",
            Self::Totp => "authenticator app",
            Self::SecurityKey => "security key",
            Self::Passkey => "passkey",
            Self::Email => "email address",
            Self::Sms => "phone number",
        }
    }

    /// The name a new device of this kind gets when the user gives none.
    pub const fn default_name(self) -> &'static str {
        match self {
            Self::BackupCodes => "Backup codes",
            Self::Totp => "Authenticator app",
            Self::SecurityKey => "Security key",
            Self::Passkey => "Passkey",
            Self::Email => "Email",
            Self::Sms => "Phone (SMS)",
        }
    }

    /// The factor a device of this kind proves (what throttling counts against).
    pub const fn factor(self) -> Factor {
        match self {
            Self::BackupCodes => Factor::BackupCodes,
            Self::Totp | Self::Email | Self::Sms => Factor::Totp,
            Self::SecurityKey | Self::Passkey => Factor::WebAuthn,
        }
    }
}

impl fmt::Display for DeviceKind {
    /// The one text form, [`as_str`](Self::as_str): what `FromStr` and `serde` read back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A factor: what failures are counted and throttled against, per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Factor {
    /// Backup codes.
    BackupCodes,
    /// One-time codes: from any of the user's authenticator apps (TOTP and HOTP), and codes
    /// sent to the user's email addresses and phone numbers. They share one failure counter
    /// and one guessing bound: a guess is a guess, whichever of them it was typed for.
    Totp,
    /// WebAuthn assertions from any of the user's security keys and passkeys.
    WebAuthn,
}

impl Factor {
    /// The factor's one text form, for storage, logs, URLs and JSON: `"backup_codes"`,
    /// `"totp"`, `"webauthn"`. `Display` writes it, `FromStr` and `serde` read it; for people,
    /// see [`noun`](Self::noun).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BackupCodes => "backup_codes",
            Self::Totp => "totp",
            Self::WebAuthn => "webauthn",
        }
    }

    /// The factor in a sentence meant for a person: "backup code", "authenticator app",
    /// "security key or passkey".
    pub const fn noun(self) -> &'static str {
        match self {
            Self::BackupCodes => "backup code",
            Self::Totp => "authenticator app",
            Self::WebAuthn => "security key or passkey",
        }
    }

    /// Every factor, for stores that iterate them.
    pub const ALL: [Factor; 3] = [Factor::BackupCodes, Factor::Totp, Factor::WebAuthn];
}

impl fmt::Display for Factor {
    /// The one text form, [`as_str`](Self::as_str): what `FromStr` and `serde` read back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}
