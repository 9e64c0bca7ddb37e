//! What an operator's passes over every user report: key rotation ([`RotationReport`]) and the
//! credential inventory ([`CredentialFilter`], [`InventoryPage`]).

use crate::device::DeviceInfo;
use crate::id::{DeviceId, UserId};
use crate::kind::DeviceKind;
use crate::seal::KeyId;

/// What [`Mfa::rotate_keys`](crate::Mfa::rotate_keys) did, per kind of keyed record.
///
/// Only TOTP secrets can be moved to the current key: they are sealed, so they can be opened
/// and sealed again. Backup-code hashes and remember-this-browser hashes are one-way: the codes
/// and tokens are not stored, so they cannot be re-keyed. The report counts them by key so the
/// operator knows when an old key may leave the ring: once no backup-code set names it (users
/// regenerate their codes, or an admin resets them) and its tokens have expired (at most the
/// trusted-device lifetime after the rotation; or revoke them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotationReport {
    /// TOTP devices, email addresses and phone numbers (their sealed secrets and destinations)
    /// looked at.
    pub examined: u64,
    /// Re-sealed under the current key.
    pub resealed: u64,
    /// Already under the current key.
    pub current: u64,
    /// Changed or deleted by someone else meanwhile (they are re-sealed by the next run if needed).
    pub raced: u64,
    /// Sealed under key ids the keyring does not hold: these cannot be opened until the key is
    /// added back (each is also an error at verification).
    pub unknown_keys: Vec<(DeviceId, KeyId)>,
    /// Records that could not be handled (a blob that does not open under the key its id
    /// names: tampering or a wrong key with that id), with the reason. The run goes on past them.
    pub failed: Vec<(DeviceId, String)>,
    /// Backup-code sets keyed under the current key.
    pub backup_sets_current: u64,
    /// Backup-code sets keyed under an older key, by key id (they keep working while the key is
    /// in the ring; they cannot be re-keyed).
    pub backup_sets_old_key: Vec<(KeyId, u64)>,
    /// Backup-code sets hashed before keyed hashes (schema v2): not keyed at all, so a copy of
    /// the database can be attacked offline. Ask these users to generate new codes.
    pub backup_sets_unkeyed: u64,
    /// Remember-this-browser tokens under the current key.
    pub remembered_browsers_current: u64,
    /// Tokens under an older key, by key id (they keep working until they expire while the key
    /// is in the ring; they cannot be re-keyed).
    pub remembered_browsers_old_key: Vec<(KeyId, u64)>,
}

/// Which credentials an inventory lists (every field `None`: all of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CredentialFilter {
    /// Only this authenticator model.
    pub aaguid: Option<[u8; 16]>,
    /// Only security keys, or only passkeys.
    pub kind: Option<DeviceKind>,
    /// Only synced (backup-eligible) ones, or only device-bound ones.
    pub synced: Option<bool>,
    /// Only those whose provider (from the service's catalogue) has this name.
    pub provider: Option<String>,
}

impl CredentialFilter {
    /// All credentials.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only this authenticator model.
    #[must_use]
    pub fn aaguid(mut self, aaguid: [u8; 16]) -> Self {
        self.aaguid = Some(aaguid);
        self
    }

    /// Only security keys, or only passkeys.
    #[must_use]
    pub fn kind(mut self, kind: DeviceKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// Only synced ones (`true`) or only device-bound ones (`false`).
    #[must_use]
    pub fn synced(mut self, synced: bool) -> Self {
        self.synced = Some(synced);
        self
    }

    /// Only those of this provider, by the name the catalogue gives it.
    #[must_use]
    pub fn provider(mut self, name: &str) -> Self {
        self.provider = Some(name.to_owned());
        self
    }

    /// Whether a credential is one of these.
    pub fn matches(&self, device: &DeviceInfo) -> bool {
        self.aaguid.is_none_or(|a| device.aaguid == Some(a))
            && self.kind.is_none_or(|k| device.kind == k)
            && self.synced.is_none_or(|s| device.synced == Some(s))
            && self
                .provider
                .as_ref()
                .is_none_or(|name| device.provider.as_ref().is_some_and(|p| &p.name == name))
    }
}

/// One page of an inventory: the credentials that match, with their owners, and where the next
/// page starts (`None`: this was the last).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InventoryPage {
    /// The matching credentials of this page, by device id.
    pub credentials: Vec<(UserId, DeviceInfo)>,
    /// Pass it as `after` for the next page.
    pub next: Option<DeviceId>,
}
