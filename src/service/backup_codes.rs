//! Backup codes: generate a set, verify and spend one code.

use crate::audit::AuditKind;
use crate::backup_codes::{self, BackupCodeRecord, BackupCodeSet, CodeKey};
use crate::clock::Clock;
use crate::error::{Error, SealError};
use crate::id::{DeviceId, DeviceName, UserId};
use crate::kind::{DeviceKind, Factor};
use crate::rng::Rng;
use crate::seal::{BACKUP_CODES_PURPOSE, KeyId};
use crate::store::{BrowserStore, DeviceData, DeviceRecord, DeviceStore};

use super::{Mfa, Outcome};

impl<S: DeviceStore + BrowserStore, C: Clock, R: Rng> Mfa<S, C, R> {
    // ----- Backup codes -----------------------------------------------------------------------

    /// Generates a new backup-code set, replacing the previous one atomically: after this, no
    /// old code works. Show the returned codes once.
    ///
    /// # Errors
    ///
    /// [`InputError::DeviceName`](crate::error::InputError::DeviceName) for a bad name; RNG and store errors.
    pub async fn generate_backup_codes(&self, user: &UserId, name: Option<&str>) -> Result<BackupCodeSet, Error> {
        let name = DeviceName::new(name.unwrap_or(DeviceKind::BackupCodes.default_name()))?;
        let id = DeviceId::generate(&self.rng)?;
        let key_id = self.keys.current_id();
        let key = self.codes_key(key_id, user, id)?;
        let (codes, record) = backup_codes::generate(&self.rng, &self.config.backup_codes, &key)?;
        self.store_backup_set(user, id, name, record, SetWrite::Replace).await?;
        self.emit(
            self.event(Some(user), AuditKind::BackupCodesRegenerated)
                .device(id, DeviceKind::BackupCodes),
        );
        Ok(BackupCodeSet { device: id, codes })
    }

    /// Verifies and spends one backup code.
    ///
    /// # Errors
    ///
    /// [`InputError::CodeFormat`](crate::error::InputError::CodeFormat) for input that cannot be a
    /// code, and [`InputError::AuthenticatorCodeAsBackupCode`](crate::error::InputError::AuthenticatorCodeAsBackupCode)
    /// for 6 to 8 digits, an authenticator app's code typed here (neither is counted as an
    /// attempt); store errors. A wrong or used code is `Ok(Outcome::Rejected)`, and so is any
    /// code of a user who has no backup codes (an ordinary refusal, not counted: there is
    /// nothing a guess could win).
    pub async fn verify_backup_code(&self, user: &UserId, code: &str) -> Result<Outcome, Error> {
        self.verify_backup_code_from(user, code, None).await
    }

    /// Verifies a backup code as [`Mfa::verify_backup_code`] does, from the browser that
    /// presented `known_browser` (see [`Mfa::verify_totp_from`]). Codes of 64 bits or more (the
    /// default) are never held back anyway; the known browser matters for shorter codes.
    ///
    /// # Errors
    ///
    /// As [`Mfa::verify_backup_code`]. A bad token is never an error.
    pub async fn verify_backup_code_from(
        &self,
        user: &UserId,
        code: &str,
        known_browser: Option<&str>,
    ) -> Result<Outcome, Error> {
        let settled = self
            .verify_code(user, super::settle::Codes::Backup, code, known_browser)
            .await?;
        Ok(self.audited(
            Some(user),
            Factor::BackupCodes,
            AuditKind::Verified { recovery: true },
            settled,
        ))
    }

    /// Stores `record` as the user's backup-code set `id`: replacing the old set atomically
    /// ([`SetWrite::Replace`], a regeneration), or only while the user has none
    /// ([`SetWrite::First`], an import: a set the user generated after the import looked is
    /// never replaced). Remembered browsers were trusted for the devices as they were.
    ///
    /// # Errors
    ///
    /// [`MisuseError::BackupCodesPresent`](crate::error::MisuseError::BackupCodesPresent) for
    /// [`SetWrite::First`] if the user has a set; store errors.
    pub(super) async fn store_backup_set(
        &self,
        user: &UserId,
        id: DeviceId,
        name: DeviceName,
        record: backup_codes::BackupCodeRecord,
        write: SetWrite,
    ) -> Result<(), Error> {
        self.devices_changed(user).await?;
        let set = DeviceRecord::new(id, user, name, self.clock.now(), true, DeviceData::BackupCodes(record));
        let written = match write {
            SetWrite::Replace => {
                self.store.replace_backup_codes(set).await?;
                true
            }
            SetWrite::First => self.store.insert_first_backup_codes(set).await?,
        };
        self.cache.forget(user);
        if !written {
            return Err(crate::error::MisuseError::BackupCodesPresent.into());
        }
        Ok(())
    }

    /// The key backup-code hashes of `user`'s set `set` are keyed with, under sealing key `key_id`.
    pub(super) fn codes_key<'a>(
        &'a self,
        key_id: &'a KeyId,
        user: &'a UserId,
        set: DeviceId,
    ) -> Result<CodeKey<'a>, Error> {
        let key = self
            .keys
            .mac_key(key_id, BACKUP_CODES_PURPOSE)
            .ok_or_else(|| SealError::UnknownKey(key_id.as_str().to_owned()))?;
        Ok(CodeKey::Keyed { key_id, key, user, set })
    }

    /// The key `user`'s set `set` (this `record`) was hashed with: its sealing key's, or for a
    /// set from before keyed hashes, the configured pepper.
    pub(super) fn set_key<'a>(
        &'a self,
        record: &'a BackupCodeRecord,
        user: &'a UserId,
        set: DeviceId,
    ) -> Result<CodeKey<'a>, Error> {
        match &record.key_id {
            Some(key_id) => self.codes_key(key_id, user, set),
            None => Ok(CodeKey::Legacy(self.config.pepper.as_ref())),
        }
    }
}

/// How [`Mfa::store_backup_set`] writes a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SetWrite {
    /// Replace the user's set, if any (a regeneration).
    Replace,
    /// Only while the user has none (an import).
    First,
}
