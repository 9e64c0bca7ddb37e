//! A device as the user and the assurance policy see it: what a settings page lists, and which
//! devices can pass a second factor.

use crate::clock::UnixTime;
use crate::id::{DeviceId, DeviceName};
use crate::kind::DeviceKind;

/// A device as a settings page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct DeviceInfo {
    /// Its id.
    pub id: DeviceId,
    /// Its kind.
    pub kind: DeviceKind,
    /// Its name.
    pub name: DeviceName,
    /// When it was added.
    pub created_at: UnixTime,
    /// When it last verified a code.
    pub last_used_at: Option<UnixTime>,
    /// False for a TOTP device still waiting for its first code.
    pub confirmed: bool,
    /// For backup codes: how many unused codes remain.
    pub remaining_backup_codes: Option<usize>,
    /// For a security key or passkey: `Some(true)` if its key may be synced to other devices
    /// (backup-eligible: a password manager's or platform's synced passkey), `Some(false)` if
    /// it is bound to one authenticator, as the authenticator last said.
    pub synced: Option<bool>,
    /// For a security key or passkey: whether its key is backed up (synced) now.
    pub backed_up: Option<bool>,
    /// For a security key or passkey: whether its authenticator enabled the `prf` extension at
    /// registration (`None`: not asked, or not said).
    pub prf: Option<bool>,
    /// For a security key or passkey: its authenticator model's AAGUID, if known.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_text::aaguid"))]
    pub aaguid: Option<[u8; 16]>,
    /// For an email address or phone number: the destination masked (`a•••@example.com`,
    /// `+••••••••••58`), enough for the user to recognise it and nobody else to learn it.
    pub destination: Option<String>,
    /// For a security key or passkey: its provider (name and icons), if the AAGUID is in the
    /// service's [`ProviderCatalog`](crate::webauthn::ProviderCatalog).
    pub provider: Option<crate::webauthn::Provider>,
}

impl DeviceInfo {
    /// Whether it can pass a second factor now: confirmed, and for backup codes with a code left.
    pub fn is_usable(&self) -> bool {
        usable(self.confirmed, self.remaining_backup_codes)
    }
}

/// Whether a device is usable: `confirmed`, and, for a backup-code set (`remaining_codes` is
/// `Some`), with at least one unused code. A spent set or an unconfirmed TOTP enrollment cannot
/// pass a second factor, so it neither satisfies MFA nor keeps a user's last real device from
/// being deleted.
pub(crate) fn usable(confirmed: bool, remaining_codes: Option<usize>) -> bool {
    confirmed && remaining_codes != Some(0)
}
