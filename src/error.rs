//! Errors: configuration, misuse, bad input, sealing and storage.
//!
//! A wrong code is *not* an error: it is [`Outcome::Rejected`](crate::Outcome::Rejected), one
//! opaque outcome that says nothing about why. The enums here are for everything else, and they
//! are detailed on purpose: they describe the caller's or the operator's mistake, never a secret.

use std::fmt;

/// Every error the crate returns.
///
/// Matching on the variant tells who has to act: the host's configuration, the host's code
/// (misuse), the end user (input), the operator (sealing keys) or the storage backend.
///
/// The messages of [`Error::Misuse`] and [`Error::Input`] are the inner error's own, with no
/// prefix, so that a host may show them to the person who caused them; the others name their
/// subsystem (`configuration:`, `sealing:`, `storage:`) for the operator's log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The operation does not fit the current state (unknown device, wrong kind, ...).
    #[error(transparent)]
    Misuse(#[from] MisuseError),
    /// Input from the end user or the host is malformed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A sealed secret could not be sealed or opened.
    #[error("sealing: {0}")]
    Seal(#[from] SealError),
    /// The storage backend failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// The random number generator failed.
    #[error("random number generator: {0}")]
    Rng(#[from] RngError),
    /// The WebAuthn engine failed to build options (not a verification failure: those are
    /// [`Outcome::Rejected`](crate::Outcome::Rejected)).
    #[error("WebAuthn engine: {0}")]
    WebAuthn(String),
}

/// An invalid configuration value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The number of backup codes per set is out of bounds.
    #[error("backup code count {got} is outside {min}..={max}")]
    BackupCodeCount {
        /// What was asked for.
        got: usize,
        /// Smallest allowed.
        min: usize,
        /// Largest allowed.
        max: usize,
    },
    /// The length of a backup code is out of bounds.
    #[error("backup code length {got} is outside {min}..={max} characters")]
    BackupCodeLength {
        /// What was asked for.
        got: usize,
        /// Smallest allowed (60 bits of entropy).
        min: usize,
        /// Largest allowed.
        max: usize,
    },
    /// TOTP digits other than 6, 7 or 8.
    #[error("TOTP digits {0} is outside 6..=8")]
    TotpDigits(u32),
    /// TOTP period out of bounds.
    #[error("TOTP period {0} s is outside 10..=300 s")]
    TotpPeriod(u64),
    /// TOTP verification window out of bounds.
    #[error("TOTP window {0} is outside 0..=10 steps")]
    TotpWindow(u32),
    /// HOTP look-ahead window out of bounds.
    #[error("HOTP look-ahead {0} is outside 1..=50 codes")]
    HotpLookAhead(u32),
    /// HOTP resynchronisation distance out of bounds.
    #[error("HOTP resynchronisation limit {0} is outside 1..=10000 codes")]
    HotpResyncLimit(u32),
    /// TOTP resynchronisation reach out of bounds.
    #[error("TOTP resynchronisation reach {0} is outside 1..=240 steps")]
    TotpResyncSteps(u32),
    /// Length of newly generated TOTP secrets out of bounds.
    #[error("TOTP secret length {0} bytes is outside 20..=64 (160 to 512 bits)")]
    TotpSecretLength(usize),
    /// The issuer shown in authenticator apps is empty, too long or contains `:`.
    #[error("TOTP issuer must be 1..=64 characters without ':' or control characters")]
    TotpIssuer,
    /// Throttling policy values that make no sense.
    #[error("throttle policy: {0}")]
    Throttle(&'static str),
    /// An invalid relying party (rp id, origins, name or timeout); the message names the rule.
    #[error("relying party: {0}")]
    RelyingParty(&'static str),
    /// Invalid WebAuthn settings, or WebAuthn used without being configured.
    #[error("WebAuthn: {0}")]
    WebAuthn(&'static str),
    /// Invalid remember-this-browser settings.
    #[error("remember this browser: {0}")]
    RememberedBrowser(&'static str),
    /// An attestation CA that cannot be parsed.
    #[error("attestation allow-list: {0}")]
    Attestation(&'static str),
    /// A keyring without the key it is told to seal with, or with a key id twice.
    #[error("keyring: {0}")]
    Keyring(&'static str),
    /// Invalid required-enrollment settings ([`EnrollmentPolicy`](crate::enrollment::EnrollmentPolicy)).
    #[error("enrollment policy: {0}")]
    EnrollmentPolicy(&'static str),
    /// Invalid sensitive-action settings ([`ActionPolicy`](crate::authorize::ActionPolicy)).
    #[error("action policy: {0}")]
    ActionPolicy(&'static str),
    /// A setting of codes sent by email or SMS is out of bounds.
    #[error("sent codes: {0}")]
    SentCodes(&'static str),
}

/// The operation does not fit the current state of the user's devices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MisuseError {
    /// No such device for this user.
    #[error("no such device for this user")]
    DeviceNotFound,
    /// The device is of another kind than the operation needs.
    #[error("the device is a {}, not a {}", found.noun(), expected.noun())]
    WrongKind {
        /// The kind the operation works on.
        expected: crate::DeviceKind,
        /// The kind the device has.
        found: crate::DeviceKind,
    },
    /// Confirming a TOTP device that is already confirmed.
    #[error("the TOTP device is already confirmed")]
    AlreadyConfirmed,
    /// The user already has the maximum number of WebAuthn credentials.
    #[error("the user has too many security keys and passkeys")]
    TooManyCredentials,
    /// The user already has the maximum number of TOTP devices
    /// ([`totp::MAX_DEVICES`](crate::totp::MAX_DEVICES)).
    #[error("the user has too many authenticator apps")]
    TooManyTotpDevices,
    /// The user already has the maximum number of email addresses and phone numbers
    /// ([`sent_code::MAX_DESTINATIONS`](crate::sent_code::MAX_DESTINATIONS)).
    #[error("the user has too many email addresses and phone numbers for codes")]
    TooManyDestinations,
    /// The user already has this email address or phone number.
    #[error("the user already receives codes at this destination")]
    DuplicateDestination,
    /// Another code may not be sent to this destination yet (the resend limits of
    /// [`SentCodePolicy`](crate::sent_code::SentCodePolicy)).
    #[error("no more codes to this destination before {retry_at}")]
    SendLimit {
        /// When the next code may be sent.
        retry_at: crate::UnixTime,
    },
    /// Deleting this device would leave the user without any: only an administrator may do
    /// that, with [`Mfa::admin_delete_device`](crate::Mfa::admin_delete_device) (or
    /// [`Mfa::admin_reset_user`](crate::Mfa::admin_reset_user) for all of them).
    #[error("this is the user's last device: only an administrator may remove it (Mfa::admin_delete_device)")]
    LastDevice,
    /// The user has no device of the asked factor that can be verified.
    #[error("the user has no confirmed {} device", .0.noun())]
    NoDevice(crate::Factor),
    /// A remember-this-browser token was asked for with proof of an enrollment (a TOTP
    /// confirmation, a registration), not of a sign-in.
    #[error("only a sign-in can be remembered, not an enrollment")]
    NotASignIn,
    /// Proof of another user's verification was given for this user's session.
    #[error("that verification is another user's")]
    OtherUser,
    /// The user already has a TOTP device with this secret: a second copy would let each code
    /// be used once per copy.
    #[error("the user already has an authenticator with this secret")]
    DuplicateSecret,
    /// An imported WebAuthn credential is registered to another user already.
    #[error("this WebAuthn credential is registered to another user")]
    CredentialTaken,
    /// Imported backup codes would replace a different set the user has here already.
    #[error("the user already has a different set of backup codes")]
    BackupCodesPresent,
}

/// Malformed input. The message names the rule that was broken, never the input itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// A user id that is empty, too long or contains control characters.
    #[error("user id must be 1..=255 bytes without control characters")]
    UserId,
    /// A device id that is not 32 hexadecimal digits.
    #[error("device id must be 32 hexadecimal digits")]
    DeviceId,
    /// A ceremony id that is not 32 hexadecimal digits.
    #[error("ceremony id must be 32 hexadecimal digits")]
    CeremonyId,
    /// A passwordless ceremony handle that is not in the form this crate issues.
    #[error("not a passwordless ceremony handle")]
    PasswordlessCeremony,
    /// A remember-this-browser token that is not in the form this crate issues.
    #[error("not a remember-this-browser token")]
    RememberedBrowserToken,
    /// A browser response that is not the JSON of a WebAuthn credential.
    #[error("not a WebAuthn response: {0}")]
    WebAuthnResponse(&'static str),
    /// An unknown factor name.
    #[error("unknown factor name (expected backup_codes, totp or webauthn)")]
    Factor,
    /// An unknown device kind name.
    #[error("unknown device kind (expected backup_codes, totp, security_key, passkey, email or sms)")]
    DeviceKind,
    /// A device name that is empty after trimming, longer than 64 characters or has control characters.
    #[error("name must be 1..=64 characters after trimming, without control characters")]
    DeviceName,
    /// A TOTP account label that is empty, too long or contains control characters.
    #[error("account name must be 1..=255 characters without control characters")]
    AccountName,
    /// An email address (`local@domain.tld`, at most 254 characters) or phone number (E.164:
    /// `+`, country code and number, 8 to 15 digits) that is not one.
    #[error("not an email address (name@example.com) or phone number in international form (+44 20 7946 0958)")]
    Destination,
    /// A code whose shape cannot be a valid code (wrong length or characters).
    ///
    /// This is about the format only and is decided before any secret is touched: it is not
    /// counted as a failed attempt and says nothing about any stored code.
    #[error("a code must be {expected}")]
    CodeFormat {
        /// Human readable description of the expected shape.
        expected: &'static str,
    },
    /// 6 to 8 digits where a backup code was asked for: most likely the authenticator app's
    /// code, typed into the backup-code field. Like [`CodeFormat`](Self::CodeFormat), decided
    /// before any secret is touched and not counted as a failed attempt.
    #[error(
        "this looks like a code from an authenticator app (6 to 8 digits); a backup code is one of the \
         codes of letters and digits saved when they were made"
    )]
    AuthenticatorCodeAsBackupCode,
    /// A base32 secret that does not decode.
    #[error("secret is not valid base32 (RFC 4648 alphabet A-Z, 2-7)")]
    SecretEncoding,
    /// A secret shorter than 80 bits or longer than 512 bits.
    #[error("secret must be 10..=64 bytes (80 to 512 bits), got {0} bytes")]
    SecretLength(usize),
    /// A key URI that does not parse; the reason names the rule.
    #[error("key URI: {0}")]
    KeyUri(&'static str),
    /// A Google Authenticator export (`otpauth-migration://`), or one account in it, that
    /// cannot be imported; the reason names the rule.
    #[error("Google Authenticator export: {0}")]
    MigrationPayload(&'static str),
    /// Backup codes carried over from another system that cannot be taken in.
    #[error("imported backup codes: {0}")]
    ImportedCodes(&'static str),
    /// A WebAuthn credential carried over from another system that cannot be taken in.
    #[error("imported WebAuthn credential: {0}")]
    ImportedCredential(&'static str),
    /// A provider catalog (AAGUID names and icons) that cannot be read.
    #[error("provider catalog: {0}")]
    ProviderCatalog(&'static str),
    /// Text that is not the form [`Evidence`](crate::evidence::Evidence) is written in.
    #[error("not a second-factor evidence record (mfa-evidence/1 ...)")]
    Evidence,
    /// Session evidence text that this service's keys did not make, or that was altered.
    #[error("not session evidence this service issued")]
    SessionEvidence,
    /// A row or line of another system's export that does not have the expected shape.
    #[error("{0}")]
    ImportRecord(String),
}

/// A secret could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The sealed blob names a key id that the keyring does not hold.
    #[error("no sealing key with id {0:?} in the keyring")]
    UnknownKey(String),
    /// Authentication of the sealed blob failed: wrong key, wrong user or device, or tampering.
    #[error("sealed secret failed authentication (wrong key, wrong owner, or tampered)")]
    Integrity,
    /// The sealed blob is not in a format this version understands.
    #[error("sealed secret is malformed: {0}")]
    Malformed(&'static str),
    /// A key id that is empty, longer than 64 bytes or not printable ASCII.
    #[error("key id must be 1..=64 printable ASCII characters")]
    KeyId,
    /// The keyring's key with this id is not the key the store was written with (other bytes
    /// under the same id): nothing sealed or keyed under it can be checked.
    #[error("the sealing key {0:?} is not the key this store was written with")]
    KeyMismatch(String),
}

/// A storage backend failure. Never means "the code was wrong": that is `Ok(false)` from the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A record with this id (or credential id) exists already.
    #[error("a record with this id exists already")]
    Conflict,
    /// A stored record cannot be decoded (corrupt or foreign data).
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// The record handed to the store breaks the store's contract.
    #[error("invalid record: {0}")]
    InvalidRecord(&'static str),
    /// The database was migrated by a newer version of this crate: refusing to touch it.
    #[error("database schema version {found} is newer than this code supports ({supported}); upgrade the crate")]
    SchemaTooNew {
        /// The version found in the database.
        found: i64,
        /// The newest version this code knows.
        supported: i64,
    },
    /// The backend (database, network, lock) failed.
    #[error("backend failure: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl StoreError {
    /// Wraps any backend error.
    pub fn backend(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(err))
    }
}

/// The random number generator could not produce bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RngError(pub(crate) &'static str);

impl fmt::Display for RngError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for RngError {}

impl RngError {
    /// An error with a fixed description, for host-provided generators.
    pub const fn new(description: &'static str) -> Self {
        Self(description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_person_did_reads_without_a_prefix_and_what_the_host_did_names_its_part() {
        let misuse = Error::from(MisuseError::DeviceNotFound).to_string();
        assert_eq!(misuse, "no such device for this user");
        let input = Error::from(InputError::AuthenticatorCodeAsBackupCode).to_string();
        assert!(!input.starts_with("input"), "{input}");
        assert_eq!(input, InputError::AuthenticatorCodeAsBackupCode.to_string());
        let config = Error::from(ConfigError::TotpDigits(9)).to_string();
        assert_eq!(config, "configuration: TOTP digits 9 is outside 6..=8");
        // The last-device refusal says who can remove it, and how.
        let last = Error::from(MisuseError::LastDevice).to_string();
        assert!(last.contains("Mfa::admin_delete_device"), "{last}");
    }
}
