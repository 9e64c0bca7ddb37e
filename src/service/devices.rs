//! Managing a user's devices (list, rename, delete), their throttle status, and the
//! assurance policy's verdict on them.

use super::Mfa;
use crate::audit::AuditKind;
use crate::clock::Clock;
use crate::device::DeviceInfo;
use crate::error::{Error, MisuseError};
use crate::id::{DeviceId, DeviceName, UserId};
use crate::kind::{DeviceKind, Factor};
use crate::policy::{Assurance, FirstFactor};
use crate::rng::Rng;
use crate::store::{BrowserStore, Browsers, DeleteOutcome, DeviceData, DeviceStore};
use crate::throttle::{Gate, ThrottleDecision};

impl<S: DeviceStore + BrowserStore, C: Clock, R: Rng> Mfa<S, C, R> {
    // ----- Device management ------------------------------------------------------------------

    /// The user's devices, oldest first.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn list_devices(&self, user: &UserId) -> Result<Vec<DeviceInfo>, Error> {
        let catalog = self.config.webauthn.as_ref().map(|w| w.providers.current());
        Ok(self
            .store
            .list_devices(user)
            .await?
            .into_iter()
            .map(|d| self.device_info(d, catalog.as_deref()))
            .collect())
    }

    /// A device as a settings page (or an inventory) lists it.
    pub(super) fn device_info(
        &self,
        d: crate::store::DeviceRecord,
        catalog: Option<&crate::webauthn::ProviderCatalog>,
    ) -> DeviceInfo {
        DeviceInfo {
            id: d.id,
            kind: d.kind(),
            remaining_backup_codes: match &d.data {
                DeviceData::BackupCodes(r) => Some(r.remaining()),
                _ => None,
            },
            synced: match &d.data {
                DeviceData::WebAuthn(w) => Some(w.backup_eligible),
                _ => None,
            },
            backed_up: match &d.data {
                DeviceData::WebAuthn(w) => Some(w.backup_state),
                _ => None,
            },
            aaguid: match &d.data {
                DeviceData::WebAuthn(w) => w.aaguid,
                _ => None,
            },
            prf: match &d.data {
                DeviceData::WebAuthn(w) => w.prf(),
                _ => None,
            },
            destination: match &d.data {
                DeviceData::SentCode(c) => self
                    .open_destination(&d.user, d.id, c)
                    .ok()
                    .map(|text| crate::sent_code::mask_destination(c.channel, &text)),
                _ => None,
            },
            provider: match (&d.data, catalog) {
                (DeviceData::WebAuthn(w), Some(catalog)) => w.aaguid.and_then(|a| catalog.get(&a).cloned()),
                _ => None,
            },
            name: d.name,
            created_at: d.created_at,
            last_used_at: d.last_used_at,
            confirmed: d.confirmed,
        }
    }

    /// Renames one of the user's devices (trimmed, 1..=64 characters, no control characters).
    ///
    /// # Errors
    ///
    /// [`InputError::DeviceName`](crate::error::InputError::DeviceName) for a bad name, [`MisuseError::DeviceNotFound`], store errors.
    pub async fn rename_device(&self, user: &UserId, device: DeviceId, name: &str) -> Result<(), Error> {
        let name = DeviceName::new(name)?;
        if !self.store.rename_device(user, device, &name).await? {
            return Err(MisuseError::DeviceNotFound.into());
        }
        self.cache.forget(user);
        let mut event = self.event(Some(user), AuditKind::Renamed);
        event.device = Some(device);
        self.emit(event);
        Ok(())
    }

    /// Deletes one of the user's devices, unless it is their last confirmed one (a user who
    /// enrolled must keep a way to pass the second factor; an admin can remove it with
    /// [`admin_delete_device`](Self::admin_delete_device) or [`admin_reset_user`](Self::admin_reset_user)).
    /// Revokes the user's remember-this-browser tokens.
    ///
    /// # Errors
    ///
    /// [`MisuseError::LastDevice`], [`MisuseError::DeviceNotFound`], store errors.
    pub async fn delete_device(&self, user: &UserId, device: DeviceId) -> Result<(), Error> {
        let kind = self.store.device(user, device).await?.map(|d| d.kind());
        match self.store.delete_device_unless_last(user, device).await? {
            DeleteOutcome::Deleted => {}
            DeleteOutcome::NotFound => return Err(MisuseError::DeviceNotFound.into()),
            DeleteOutcome::LastDevice => return Err(MisuseError::LastDevice.into()),
        }
        self.after_delete(user, device, kind, false).await
    }

    /// **Admin**: deletes one of the user's devices even if it is the last one.
    ///
    /// # Errors
    ///
    /// [`MisuseError::DeviceNotFound`], store errors.
    pub async fn admin_delete_device(&self, user: &UserId, device: DeviceId) -> Result<(), Error> {
        let kind = self.store.device(user, device).await?.map(|d| d.kind());
        if !self.store.delete_device(user, device).await? {
            return Err(MisuseError::DeviceNotFound.into());
        }
        self.after_delete(user, device, kind, true).await
    }

    pub(super) async fn after_delete(
        &self,
        user: &UserId,
        device: DeviceId,
        kind: Option<DeviceKind>,
        admin: bool,
    ) -> Result<(), Error> {
        self.devices_changed(user).await?;
        let mut event = self.event(Some(user), AuditKind::Deleted { admin });
        event.device = Some(device);
        event.device_kind = kind;
        event.factor = kind.map(DeviceKind::factor);
        self.emit(event);
        Ok(())
    }

    /// **Admin**: deletes all of the user's devices and remember-this-browser tokens and clears
    /// their failure counters. Returns how many devices were removed.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn admin_reset_user(&self, user: &UserId) -> Result<u64, Error> {
        self.devices_changed(user).await?;
        // A reset starts the user over: no browser stays known either.
        self.store.delete_user_remembered_browsers(user, Browsers::All).await?;
        let removed = self.store.delete_user_devices(user).await?;
        for factor in Factor::ALL {
            self.store.clear_throttle(user, factor.into()).await?;
        }
        self.cache.forget(user);
        self.emit(self.event(Some(user), AuditKind::Reset { removed }));
        Ok(removed)
    }
    /// Compares each key of the keyring with the check value the store keeps for its id
    /// (storing it for an id the store has not seen). Call it when the service starts: a key
    /// whose bytes changed under the same id would otherwise go unnoticed until verifications
    /// fail. Backup-code verifications make the same check, once per key id and process, before
    /// they trust a miss, so a key fault is an error for the host and never a failure charged to
    /// the user.
    ///
    /// # Errors
    ///
    /// [`SealError::KeyMismatch`](crate::error::SealError::KeyMismatch) naming the first key whose
    /// check differs; store errors.
    pub async fn check_keys(&self) -> Result<(), Error> {
        let ids: Vec<crate::seal::KeyId> = self.keys.ids().cloned().collect();
        for id in &ids {
            self.check_key(id).await?;
        }
        Ok(())
    }

    /// [`Mfa::check_keys`] for one key id, once per process.
    pub(super) async fn check_key(&self, id: &crate::seal::KeyId) -> Result<(), Error> {
        let done = self
            .checked_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(id);
        if done {
            return Ok(());
        }
        let Some(check) = self.keys.key_check(id) else {
            return Err(crate::error::SealError::UnknownKey(id.as_str().to_owned()).into());
        };
        let stored = self.store.key_check(id, check).await?;
        if !bool::from(crate::ct::eq32(&stored, &check)) {
            return Err(crate::error::SealError::KeyMismatch(id.as_str().to_owned()).into());
        }
        self.checked_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.clone());
        Ok(())
    }

    /// Whether the next attempt on the user's factor from an unknown browser would be
    /// evaluated now (a known browser's attempts always are, until its token has taken its
    /// failures). Backup codes of 64 bits or more and WebAuthn are never held back.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn throttle_status(&self, user: &UserId, factor: Factor) -> Result<ThrottleDecision, Error> {
        let gate = match factor {
            Factor::Totp => Gate::Guessable,
            Factor::WebAuthn => Gate::Unguessable,
            Factor::BackupCodes => {
                let bits = self.store.list_devices(user).await?.iter().find_map(|d| match &d.data {
                    DeviceData::BackupCodes(set) => Some(set.bits_per_code()),
                    _ => None,
                });
                Gate::for_bits(bits.unwrap_or(0))
            }
        };
        let state = self.store.throttle(user, factor.into()).await?;
        Ok(self.config.throttle.decide(gate, &state, self.clock.now()))
    }

    /// Clears the failure counter of the user's factor, lifting a lock (an admin action).
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn unlock(&self, user: &UserId, factor: Factor) -> Result<(), Error> {
        self.store.clear_throttle(user, factor.into()).await?;
        self.cache.forget(user);
        self.emit(self.event(Some(user), AuditKind::Unlocked).factor(factor));
        Ok(())
    }

    /// After the first factor: is a second one still required, and which of the user's
    /// devices may give it? See [`policy`](crate::policy).
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn assurance(&self, user: &UserId, first: &FirstFactor) -> Result<Assurance, Error> {
        let devices = self.list_devices(user).await?;
        Ok(self.config.assurance.decide(first, &devices))
    }
}
