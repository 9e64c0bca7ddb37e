//! The storage contract: a few atomic domain operations, not read-modify-write CRUD.
//!
//! # Contract
//!
//! Every state-changing operation is atomic with respect to every other operation on the same
//! store, from any number of tasks, threads or processes sharing the backend:
//!
//! - **consume once**: [`consume_backup_code`](DeviceStore::consume_backup_code) marks a slot
//!   used only if it was unused; of any number of concurrent calls on one slot, exactly one
//!   returns `Ok(true)`.
//! - **high-water mark**: [`accept_totp_step`](DeviceStore::accept_totp_step) moves the last
//!   accepted step only upward; a step at or below it is `Ok(false)`, and of concurrent calls
//!   with the same step exactly one returns `Ok(true)`.
//! - **success against the throttle**: both of those write only if the factor's failure counter
//!   still holds the state the attempt was admitted under, and reset it in the same atomic step.
//!   A verification is then one conditional write, yet no success can slip past a failure that
//!   was counted (and acted on) first.
//! - **replace**: [`replace_backup_codes`](DeviceStore::replace_backup_codes) removes the user's
//!   previous set and inserts the new one in one step: no moment exists where both or neither work.
//! - **compare-and-swap**: [`swap_throttle`](DeviceStore::swap_throttle) writes only if the
//!   stored state equals the expected one; [`record_webauthn_use`](DeviceStore::record_webauthn_use)
//!   writes a credential's counter only if it still holds the expected value.
//! - **take once**: [`take_ceremony`](DeviceStore::take_ceremony) removes and returns a ceremony
//!   only if id, user and kind match and it has not expired; of concurrent takes exactly one gets it.
//! - **never the last method by accident**: [`delete_device_unless_last`](DeviceStore::delete_device_unless_last)
//!   deletes a confirmed method only while another confirmed one remains; two concurrent deletes
//!   of a user's last two methods leave one.
//! - **unique credential ids**: [`insert_device`](DeviceStore::insert_device) refuses a WebAuthn
//!   credential whose id any user already has.
//!
//! Times and TOTP steps up to 2^63 - 1 must round-trip exactly (a store may refuse larger ones
//! with [`StoreError::InvalidRecord`]; a clock that far ahead is broken anyway).
//!
//! A lost race, a replay or an unknown id is `Ok(false)`, never an error and never a second
//! success. [`StoreError`] is for the backend failing, and the service never turns it into
//! "rejected". Operations that name a user only ever touch that user's records.
//!
//! The public conformance suite (feature `test-util`) checks all of this, races included.

#[cfg(feature = "test-util")]
pub mod conformance;
#[cfg(feature = "postgres")]
mod leases;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::future::Future;

use crate::clock::UnixTime;
use crate::device::{CeremonyId, DeviceId, DeviceName, DeviceRecord, Factor, TrustedDeviceId, UserId};
use crate::error::StoreError;
use crate::seal::SealedSecret;
use crate::throttle::ThrottleState;
use crate::trusted_device::TrustedDeviceRecord;
use crate::webauthn::{CeremonyKind, CeremonyRecord, WebAuthnUse};

/// Where the crate keeps methods and failure counters. See the [module docs](self) for the contract.
pub trait DeviceStore: Send + Sync {
    /// Inserts a new method.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] if a record with the same id exists (for any user), or a
    /// WebAuthn record with the same credential id (for any user).
    fn insert_device(&self, device: DeviceRecord) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The user's method with this id, or `None` (also when it belongs to someone else).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails or the record is corrupt.
    fn device(
        &self,
        user: &UserId,
        id: DeviceId,
    ) -> impl Future<Output = Result<Option<DeviceRecord>, StoreError>> + Send;

    /// The user's methods, oldest first (by creation time, then id).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails or a record is corrupt.
    fn list_devices(&self, user: &UserId) -> impl Future<Output = Result<Vec<DeviceRecord>, StoreError>> + Send;

    /// The user's methods of `factor` (TOTP devices, the backup-code set, or WebAuthn
    /// credentials), ordered as [`list_devices`](Self::list_devices) orders them, with the
    /// failure counter of `factor`, as [`throttle`](Self::throttle): what a verification reads
    /// before it settles the attempt. The two need not come from one snapshot, since the
    /// settling write re-checks both the counter and the code. The default reads them one after
    /// the other; a backend that can should read them in one round trip (the SQL stores do).
    /// If the user has no methods of `factor` there is nothing to verify, and the counter may
    /// read as the default.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails or a record is corrupt.
    fn verification_state(
        &self,
        user: &UserId,
        factor: Factor,
    ) -> impl Future<Output = Result<(Vec<DeviceRecord>, ThrottleState), StoreError>> + Send {
        async move {
            let mut devices = self.list_devices(user).await?;
            devices.retain(|d| d.kind().factor() == factor);
            Ok((devices, self.throttle(user, factor).await?))
        }
    }

    /// Renames the user's method; `Ok(false)` if there is none with this id.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn rename_device(
        &self,
        user: &UserId,
        id: DeviceId,
        name: &DeviceName,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes the user's method; `Ok(false)` if there is none with this id.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn delete_device(&self, user: &UserId, id: DeviceId) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes all of the user's methods and returns how many there were.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn delete_user_devices(&self, user: &UserId) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Atomically removes the user's backup-code sets and inserts `set` (of the same user).
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidRecord`] if `set` is not a backup-code record,
    /// [`StoreError::Conflict`] if its id exists.
    fn replace_backup_codes(&self, set: DeviceRecord) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// In one atomic step: if the user's [`Factor::BackupCodes`] failure counter still equals
    /// `throttle` (a missing counter equals the default) and slot `slot` of the user's
    /// backup-code set `id` is unused, marks the slot used, sets the set's last-used time and
    /// resets the counter. `Ok(false)`, with nothing changed, if the counter moved, the slot was
    /// used, or no such set or slot exists.
    ///
    /// `throttle` is the state the service read and admitted the attempt under; checking it here
    /// is what lets a verification be a single write without letting a success overtake
    /// failures counted in the meantime.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn consume_backup_code(
        &self,
        user: &UserId,
        id: DeviceId,
        slot: usize,
        now: UnixTime,
        throttle: ThrottleState,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// In one atomic step: if the user's [`Factor::Totp`] failure counter still equals
    /// `throttle` (a missing counter equals the default) and `step` is above the TOTP device's
    /// last accepted step (or none was accepted yet), records `step`, marks the device confirmed,
    /// sets its last-used time and resets the counter. `Ok(false)`, with nothing changed, if the
    /// counter moved, the step is not above the last one, or no such TOTP device exists.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn accept_totp_step(
        &self,
        user: &UserId,
        id: DeviceId,
        step: u64,
        now: UnixTime,
        throttle: ThrottleState,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The failure counter of the user's factor (the default state if none is stored).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn throttle(&self, user: &UserId, factor: Factor)
    -> impl Future<Output = Result<ThrottleState, StoreError>> + Send;

    /// Writes `new` if the stored state equals `expected` (a missing state equals the default).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn swap_throttle(
        &self,
        user: &UserId,
        factor: Factor,
        expected: ThrottleState,
        new: ThrottleState,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Resets the failure counter of the user's factor.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn clear_throttle(&self, user: &UserId, factor: Factor) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The WebAuthn credential with this credential id, whoever owns it (for passwordless sign-in).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails or the record is corrupt.
    fn find_credential(
        &self,
        credential_id: &[u8],
    ) -> impl Future<Output = Result<Option<DeviceRecord>, StoreError>> + Send;

    /// Writes `update` and the last-used time to the user's WebAuthn credential `id` if its sign
    /// counter is still `expected_sign_count`. `Ok(false)` otherwise, or if there is no such
    /// credential.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn record_webauthn_use(
        &self,
        user: &UserId,
        id: DeviceId,
        expected_sign_count: u32,
        update: WebAuthnUse,
        now: UnixTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores a started ceremony.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] if the id exists.
    fn insert_ceremony(&self, ceremony: CeremonyRecord) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes and returns the ceremony `id` if its user and kind are the given ones and it
    /// expires after `now`; otherwise `Ok(None)` and nothing changes (an expired one may be removed).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails or the record is corrupt.
    fn take_ceremony(
        &self,
        id: CeremonyId,
        user: Option<&UserId>,
        kind: CeremonyKind,
        now: UnixTime,
    ) -> impl Future<Output = Result<Option<CeremonyRecord>, StoreError>> + Send;

    /// Removes every ceremony that expired at or before `now`; returns how many.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn purge_expired_ceremonies(&self, now: UnixTime) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Deletes the user's method unless it is confirmed and no other confirmed method of the
    /// user would remain, atomically with respect to other deletes of the same user.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn delete_device_unless_last(
        &self,
        user: &UserId,
        id: DeviceId,
    ) -> impl Future<Output = Result<DeleteOutcome, StoreError>> + Send;

    /// Up to `limit` TOTP devices of all users with ids greater than `after`, in id order (for
    /// re-sealing secrets under a new key, a page at a time).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails or a record is corrupt.
    fn list_totp_devices(
        &self,
        after: Option<DeviceId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DeviceRecord>, StoreError>> + Send;

    /// Replaces the sealed secret of the user's TOTP device `id` with `new` if it still is
    /// `expected` (nothing else changes). `Ok(false)` otherwise.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn reseal_totp_secret(
        &self,
        user: &UserId,
        id: DeviceId,
        expected: &SealedSecret,
        new: &SealedSecret,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores a remember-this-device record.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] if the id exists.
    fn insert_trusted_device(&self, record: TrustedDeviceRecord)
    -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The remember-this-device record with this id, whoever owns it.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails or the record is corrupt.
    fn trusted_device(
        &self,
        id: TrustedDeviceId,
    ) -> impl Future<Output = Result<Option<TrustedDeviceRecord>, StoreError>> + Send;

    /// Sets the last-used time of the user's record; `Ok(false)` if there is none.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn touch_trusted_device(
        &self,
        user: &UserId,
        id: TrustedDeviceId,
        now: UnixTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The user's remember-this-device records, oldest first.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails or a record is corrupt.
    fn list_trusted_devices(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Vec<TrustedDeviceRecord>, StoreError>> + Send;

    /// Deletes one of the user's records; `Ok(false)` if there is none.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn delete_trusted_device(
        &self,
        user: &UserId,
        id: TrustedDeviceId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes all of the user's records; returns how many.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn delete_user_trusted_devices(&self, user: &UserId) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// What [`DeviceStore::delete_device_unless_last`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeleteOutcome {
    /// Deleted.
    Deleted,
    /// The user has no method with this id.
    NotFound,
    /// Not deleted: it is the user's last confirmed method.
    LastMethod,
}
