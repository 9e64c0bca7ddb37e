//! What a store keeps for one device: the record and its factor-specific data.

use crate::backup_codes::BackupCodeRecord;
use crate::clock::UnixTime;
use crate::id::{DeviceId, DeviceName, UserId};
use crate::kind::DeviceKind;
use crate::sent_code::SentCodeRecord;
use crate::totp::TotpRecord;
use crate::webauthn::WebAuthnRecord;

/// What a store keeps for one device. Holds no plaintext secret: backup codes and sent codes as
/// keyed hashes, TOTP secrets and destinations sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The device's id, unique across all users.
    pub id: DeviceId,
    /// Its owner.
    pub user: UserId,
    /// The user-visible name.
    pub name: DeviceName,
    /// When it was created.
    pub created_at: UnixTime,
    /// When it last verified a code.
    pub last_used_at: Option<UnixTime>,
    /// False for a TOTP device, email address or phone number until the user proved one code;
    /// always true for backup codes.
    pub confirmed: bool,
    /// The factor-specific data.
    pub data: DeviceData,
}

impl DeviceRecord {
    /// A new device of `user`, created `now` and never used yet: the one constructor the
    /// service's enrollment, registration and import paths share.
    pub(crate) fn new(
        id: DeviceId,
        user: &UserId,
        name: DeviceName,
        now: UnixTime,
        confirmed: bool,
        data: DeviceData,
    ) -> Self {
        Self {
            id,
            user: user.clone(),
            name,
            created_at: now,
            last_used_at: None,
            confirmed,
            data,
        }
    }

    /// The device's kind, from its data.
    pub fn kind(&self) -> DeviceKind {
        match &self.data {
            DeviceData::BackupCodes(_) => DeviceKind::BackupCodes,
            DeviceData::Totp(_) => DeviceKind::Totp,
            DeviceData::WebAuthn(w) => DeviceKind::webauthn(w.discoverable),
            DeviceData::SentCode(s) => s.channel.kind(),
        }
    }

    /// Whether the device can pass a second factor now: confirmed, and for backup codes, with
    /// an unused code left. The one definition the last-device guard (in every store) and the
    /// assurance policy share.
    pub fn is_usable(&self) -> bool {
        let remaining = match &self.data {
            DeviceData::BackupCodes(set) => Some(set.remaining()),
            _ => None,
        };
        crate::device::usable(self.confirmed, remaining)
    }
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
    /// An email address or phone number that receives one-time codes.
    SentCode(SentCodeRecord),
}
