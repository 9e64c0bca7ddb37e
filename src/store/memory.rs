//! [`MemoryStore`]: everything in one mutex-guarded map. For tests, demos and single-process
//! services that can lose their MFA state on restart (most cannot: use a SQL store).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::clock::UnixTime;
use crate::device::{CeremonyId, DeviceData, DeviceId, DeviceName, DeviceRecord, Factor, UserId};
use crate::error::StoreError;
use crate::store::DeviceStore;
use crate::throttle::ThrottleState;
use crate::webauthn::{CeremonyKind, CeremonyRecord, WebAuthnUse};

#[derive(Debug, Default)]
struct State {
    devices: HashMap<DeviceId, DeviceRecord>,
    throttles: HashMap<(UserId, Factor), ThrottleState>,
    ceremonies: HashMap<CeremonyId, CeremonyRecord>,
}

fn credential_id(record: &DeviceRecord) -> Option<&[u8]> {
    match &record.data {
        DeviceData::WebAuthn(w) => Some(&w.credential_id),
        _ => None,
    }
}

/// An in-memory [`DeviceStore`]. Clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore(Arc<Mutex<State>>);

#[derive(Debug, thiserror::Error)]
#[error("memory store lock poisoned by a panicking thread")]
struct Poisoned;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.0.lock().map_err(|_| StoreError::backend(Poisoned))
    }

    fn owned<'a>(state: &'a mut State, user: &UserId, id: DeviceId) -> Option<&'a mut DeviceRecord> {
        state.devices.get_mut(&id).filter(|d| &d.user == user)
    }
}

impl DeviceStore for MemoryStore {
    async fn insert_device(&self, device: DeviceRecord) -> Result<(), StoreError> {
        let mut state = self.state()?;
        if state.devices.contains_key(&device.id) {
            return Err(StoreError::Conflict);
        }
        if let Some(cred) = credential_id(&device)
            && state.devices.values().any(|d| credential_id(d) == Some(cred))
        {
            return Err(StoreError::Conflict);
        }
        state.devices.insert(device.id, device);
        Ok(())
    }

    async fn device(&self, user: &UserId, id: DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        let mut state = self.state()?;
        Ok(Self::owned(&mut state, user, id).cloned())
    }

    async fn list_devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        let state = self.state()?;
        let mut list: Vec<DeviceRecord> = state.devices.values().filter(|d| &d.user == user).cloned().collect();
        list.sort_by_key(|d| (d.created_at, d.id));
        Ok(list)
    }

    async fn rename_device(&self, user: &UserId, id: DeviceId, name: &DeviceName) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        Ok(Self::owned(&mut state, user, id)
            .map(|d| d.name = name.clone())
            .is_some())
    }

    async fn delete_device(&self, user: &UserId, id: DeviceId) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        if Self::owned(&mut state, user, id).is_none() {
            return Ok(false);
        }
        Ok(state.devices.remove(&id).is_some())
    }

    async fn delete_user_devices(&self, user: &UserId) -> Result<u64, StoreError> {
        let mut state = self.state()?;
        let before = state.devices.len();
        state.devices.retain(|_, d| &d.user != user);
        Ok((before - state.devices.len()) as u64)
    }

    async fn replace_backup_codes(&self, set: DeviceRecord) -> Result<(), StoreError> {
        if !matches!(set.data, DeviceData::BackupCodes(_)) {
            return Err(StoreError::InvalidRecord(
                "replace_backup_codes needs a backup-code record",
            ));
        }
        let mut state = self.state()?;
        if state.devices.contains_key(&set.id) {
            return Err(StoreError::Conflict);
        }
        let user = set.user.clone();
        state
            .devices
            .retain(|_, d| !(d.user == user && matches!(d.data, DeviceData::BackupCodes(_))));
        state.devices.insert(set.id, set);
        Ok(())
    }

    async fn consume_backup_code(
        &self,
        user: &UserId,
        id: DeviceId,
        slot: usize,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        let Some(device) = Self::owned(&mut state, user, id) else {
            return Ok(false);
        };
        let DeviceData::BackupCodes(set) = &mut device.data else {
            return Ok(false);
        };
        match set.slots.get_mut(slot) {
            Some(s) if !s.used => {
                s.used = true;
                device.last_used_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn accept_totp_step(
        &self,
        user: &UserId,
        id: DeviceId,
        step: u64,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        let Some(device) = Self::owned(&mut state, user, id) else {
            return Ok(false);
        };
        let DeviceData::Totp(totp) = &mut device.data else {
            return Ok(false);
        };
        if totp.last_step.is_some_and(|last| last >= step) {
            return Ok(false);
        }
        totp.last_step = Some(step);
        device.confirmed = true;
        device.last_used_at = Some(now);
        Ok(true)
    }

    async fn throttle(&self, user: &UserId, factor: Factor) -> Result<ThrottleState, StoreError> {
        let state = self.state()?;
        Ok(state
            .throttles
            .get(&(user.clone(), factor))
            .copied()
            .unwrap_or_default())
    }

    async fn swap_throttle(
        &self,
        user: &UserId,
        factor: Factor,
        expected: ThrottleState,
        new: ThrottleState,
    ) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        let entry = state.throttles.entry((user.clone(), factor)).or_default();
        if *entry != expected {
            return Ok(false);
        }
        *entry = new;
        Ok(true)
    }

    async fn clear_throttle(&self, user: &UserId, factor: Factor) -> Result<(), StoreError> {
        let mut state = self.state()?;
        state.throttles.remove(&(user.clone(), factor));
        Ok(())
    }

    async fn find_credential(&self, credential_id_: &[u8]) -> Result<Option<DeviceRecord>, StoreError> {
        let state = self.state()?;
        Ok(state
            .devices
            .values()
            .find(|d| credential_id(d) == Some(credential_id_))
            .cloned())
    }

    async fn record_webauthn_use(
        &self,
        user: &UserId,
        id: DeviceId,
        expected_sign_count: u32,
        update: WebAuthnUse,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        let Some(device) = Self::owned(&mut state, user, id) else {
            return Ok(false);
        };
        let DeviceData::WebAuthn(cred) = &mut device.data else {
            return Ok(false);
        };
        if cred.sign_count != expected_sign_count {
            return Ok(false);
        }
        cred.sign_count = update.sign_count;
        cred.backup_eligible = update.backup_eligible;
        cred.backup_state = update.backup_state;
        device.last_used_at = Some(now);
        Ok(true)
    }

    async fn insert_ceremony(&self, ceremony: CeremonyRecord) -> Result<(), StoreError> {
        let mut state = self.state()?;
        if state.ceremonies.contains_key(&ceremony.id) {
            return Err(StoreError::Conflict);
        }
        state.ceremonies.insert(ceremony.id, ceremony);
        Ok(())
    }

    async fn take_ceremony(
        &self,
        id: CeremonyId,
        user: Option<&UserId>,
        kind: CeremonyKind,
        now: UnixTime,
    ) -> Result<Option<CeremonyRecord>, StoreError> {
        let mut state = self.state()?;
        let Some(found) = state.ceremonies.get(&id) else {
            return Ok(None);
        };
        if found.expires_at <= now {
            state.ceremonies.remove(&id);
            return Ok(None);
        }
        if found.user.as_ref() != user || found.kind != kind {
            return Ok(None);
        }
        Ok(state.ceremonies.remove(&id))
    }

    async fn purge_expired_ceremonies(&self, now: UnixTime) -> Result<u64, StoreError> {
        let mut state = self.state()?;
        let before = state.ceremonies.len();
        state.ceremonies.retain(|_, c| c.expires_at > now);
        Ok((before - state.ceremonies.len()) as u64)
    }
}
