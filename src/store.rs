//! The storage contract: a few atomic domain operations, not read-modify-write CRUD.
//!
//! # The traits
//!
//! The contract comes in five traits, one per concern, and each [`Mfa`](crate::Mfa)
//! operation asks only for the traits it uses:
//!
//! | trait | keeps | needed by |
//! |---|---|---|
//! | [`DeviceStore`] | devices, the settlement of code attempts, failure counters, sent codes, sealing-key checks | everything ([`Mfa::new`](crate::Mfa::new)) |
//! | [`BrowserStore`] | remembered and known browsers | every verification (a known browser keeps its own counter), device management |
//! | [`CeremonyStore`] | WebAuthn ceremonies between start and finish | security keys and passkeys |
//! | [`AdminStore`] | pages over every user, re-sealing a secret | key rotation, the credential inventory |
//! | [`EnrollmentStore`] | enrollment deadlines and skipped prompts | the enrollment-deadline policy |
//!
//! [`Store`] is all five, implemented for every type that implements them: the bound to write
//! when a function takes "a store". An application with codes only (TOTP, backup codes, sent
//! codes) implements [`DeviceStore`] and [`BrowserStore`]; the compiler names any trait a call
//! needs beyond that. [`MemoryStore`](crate::MemoryStore), `SqliteStore` and `PostgresStore`
//! implement all five.
//!
//! # Contract
//!
//! Every state-changing operation is atomic with respect to every other operation on the same
//! store, from any number of tasks, threads or processes sharing the backend:
//!
//! - **settle once**: [`settle_attempt`](DeviceStore::settle_attempt) settles a code attempt
//!   against the failure counter and the [devices version](DevicesVersion) it was admitted
//!   under, in one atomic step: a hit marks a
//!   backup-code slot used only if it was unused (consume once), or records a TOTP step only above
//!   the last accepted one (high-water mark), and resets the consecutive failures; a miss is
//!   charged; a counter that moved changes nothing. Of any number of concurrent settlements of
//!   one slot or step exactly one is accepted, and no success slips past a failure that was
//!   counted first. Hit or miss, the work is the same until a hit is accepted.
//! - **replace**: [`replace_backup_codes`](DeviceStore::replace_backup_codes) removes the user's
//!   previous set and inserts the new one in one step: no moment exists where both or neither work;
//!   [`insert_first_backup_codes`](DeviceStore::insert_first_backup_codes) inserts a set only
//!   while the user has none (of concurrent ones exactly one is inserted).
//! - **compare-and-swap**: [`swap_throttle`](DeviceStore::swap_throttle) writes only if the
//!   stored state equals the expected one; [`record_webauthn_use`](DeviceStore::record_webauthn_use)
//!   writes a credential's counter only if it still holds the expected value.
//! - **send once**: [`issue_sent_code`](DeviceStore::issue_sent_code) records a code sent to
//!   an email address or phone number only over the last one the caller saw, and supersedes it.
//! - **take once**: [`take_ceremony`](CeremonyStore::take_ceremony) removes and returns a ceremony
//!   only if id, user and kind match and it has not expired; of concurrent takes exactly one gets it.
//! - **never the last device by accident**: [`delete_device_unless_last`](DeviceStore::delete_device_unless_last)
//!   deletes a usable device only while another usable one remains (a spent backup-code set
//!   is not one); two concurrent deletes of a user's last two devices leave one.
//! - **versioned devices**: every change of a user's devices that can change what a code
//!   matches (see [`DevicesVersion`]) increments the user's devices version in the same atomic
//!   step as the change.
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
//! The public conformance suite (`multifactor::conformance`, feature `test-util`) checks all of
//! this, races included; each check's bound names the traits it exercises, so a store of
//! codes only can run the checks of its two traits.

mod devices_version;
#[cfg(feature = "postgres")]
mod leases;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
mod record;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::future::Future;

use crate::clock::UnixTime;
use crate::enrollment::EnrollmentGrace;
use crate::error::StoreError;
use crate::id::{CeremonyId, DeviceId, DeviceName, RememberedBrowserId, UserId};
use crate::kind::Factor;
use crate::seal::KeyId;

/// A user's devices, the settlement of code attempts against the failure counters, and the
/// sealing-key check: what every verification needs. See the [module docs](self) for the
/// contract shared by all the store traits.
pub trait DeviceStore: Send + Sync {
    /// Inserts a new device.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] if a record with the same id exists (for any user), a
    /// WebAuthn record with the same credential id (for any user), a TOTP record of the same
    /// user with the same [`fingerprint`](TotpRecord::fingerprint) (records without one never
    /// conflict), or, for a backup-code set, a set of the same user (a user has at most one;
    /// [`replace_backup_codes`](Self::replace_backup_codes) replaces it). The check and the
    /// insert are one atomic step.
    fn insert_device(&self, device: DeviceRecord) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The user's device with this id, or `None` (also when it belongs to someone else).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails or the record is corrupt.
    fn device(
        &self,
        user: &UserId,
        id: DeviceId,
    ) -> impl Future<Output = Result<Option<DeviceRecord>, StoreError>> + Send;

    /// The user's devices, oldest first (by creation time, then id).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails or a record is corrupt.
    fn list_devices(&self, user: &UserId) -> impl Future<Output = Result<Vec<DeviceRecord>, StoreError>> + Send;

    /// The user's devices of `factor` (TOTP devices, the backup-code set, or WebAuthn
    /// credentials), ordered as [`list_devices`](Self::list_devices) orders them, with the
    /// failure counter of `factor`, as [`throttle`](Self::throttle), and the user's
    /// [`DevicesVersion`]: what a verification reads before it settles the attempt. The three
    /// must be read so that the version is never newer than the devices (a backend reads them
    /// in one statement or snapshot; the SQL stores read one row per device joined with the
    /// user's state row, in one round trip). If the user has no devices of `factor` there is
    /// nothing to verify, and the counter may read as the default.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails or a record is corrupt.
    fn verification_state(
        &self,
        user: &UserId,
        factor: Factor,
    ) -> impl Future<Output = Result<VerificationState, StoreError>> + Send;

    /// Renames the user's device; `Ok(false)` if there is none with this id.
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

    /// Deletes the user's device; `Ok(false)` if there is none with this id.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn delete_device(&self, user: &UserId, id: DeviceId) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes the user's TOTP devices that are not confirmed, except `keep`, in one atomic
    /// step: a device confirmed concurrently is not deleted. Returns how many were deleted.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn delete_unconfirmed_totp(
        &self,
        user: &UserId,
        keep: DeviceId,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Deletes all of the user's devices and returns how many there were.
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

    /// Inserts `set` (of its user) only if that user has no backup-code set, in one atomic step
    /// with respect to [`replace_backup_codes`](Self::replace_backup_codes) and other inserts:
    /// `Ok(false)`, and nothing written, if they have one. (An import must never replace a set
    /// the user generated after the import looked.)
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidRecord`] if `set` is not a backup-code record,
    /// [`StoreError::Conflict`] if its id exists.
    fn insert_first_backup_codes(&self, set: DeviceRecord) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Settles one code attempt in one atomic step, against the failure counter of
    /// `attempt.factor` as it was when the attempt was admitted:
    ///
    /// - the counter is the user's counter of `attempt.factor` for unknown browsers, or with
    ///   `attempt.browser` that browser's own ([`Counter`]);
    /// - if `attempt.browser` is some and the user has no record with that id expiring after
    ///   `attempt.now`, nothing changes and the result is [`Settlement::Stale`];
    /// - if the counter no longer equals `attempt.admitted` (a missing counter equals the
    ///   default), nothing changes and the result is [`Settlement::Moved`] with the counter as
    ///   it is now;
    /// - else, if `attempt.version` is some and is not the user's [`DevicesVersion`] now,
    ///   nothing changes and the result is [`Settlement::Stale`];
    /// - else, if `attempt.hit` names a slot of the user's backup-code set that is unused, or a
    ///   step above the last accepted step of the user's TOTP device (or none was accepted yet),
    ///   the slot is marked used (or the step recorded and the device marked confirmed, which
    ///   increments the devices version if the device was not confirmed or never used), the
    ///   device's last-used time set to `attempt.now`, the counter set to `attempt.on_hit`, and
    ///   the result is [`Settlement::Accepted`];
    /// - else (no hit, a spent slot or step, a hit of another factor's kind, or no such device)
    ///   the counter is set to `attempt.on_miss` and the result is [`Settlement::Charged`].
    ///
    /// # Uniform cost
    ///
    /// The work must not depend on whether there was a hit, except once the hit is accepted: a
    /// matching attempt that is charged, finds the counter moved or finds the devices stale must
    /// make the same statements and round trips as a wrong one (the SQL stores run the same
    /// single-row statement, with the hit's columns null for a miss, and compare the devices
    /// version in it, hit or miss). That is what keeps a correct code refused by the throttle
    /// indistinguishable from a wrong one.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn settle_attempt(
        &self,
        user: &UserId,
        attempt: &Settle,
    ) -> impl Future<Output = Result<Settlement, StoreError>> + Send;

    /// Spends slot `slot` of the user's backup-code set `id` if the backup-code counter still
    /// equals `throttle`, clearing its consecutive failures: [`settle_attempt`](Self::settle_attempt)
    /// with that hit, and a miss that leaves the counter as it is. `Ok(true)` if spent.
    ///
    /// Provided, for tests and tools; the service calls `settle_attempt`. Do not override.
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
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let attempt = Settle::keep_on_miss(Factor::BackupCodes, throttle, Hit::BackupCode { device: id, slot }, now);
        async move { Ok(self.settle_attempt(user, &attempt).await? == Settlement::Accepted) }
    }

    /// Records `step` on the user's TOTP device `id` if the TOTP counter still equals
    /// `throttle`, clearing its consecutive failures: [`settle_attempt`](Self::settle_attempt)
    /// with that hit, and a miss that leaves the counter as it is. `Ok(true)` if recorded.
    ///
    /// Provided, for tests and tools; the service calls `settle_attempt`. Do not override.
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
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let attempt = Settle::keep_on_miss(Factor::Totp, throttle, Hit::TotpStep { device: id, step }, now);
        async move { Ok(self.settle_attempt(user, &attempt).await? == Settlement::Accepted) }
    }

    /// The user's failure counter `counter` (the default state if none is stored).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn throttle(
        &self,
        user: &UserId,
        counter: Counter,
    ) -> impl Future<Output = Result<ThrottleState, StoreError>> + Send;

    /// Writes `new` if the stored state equals `expected` (a missing state equals the default).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn swap_throttle(
        &self,
        user: &UserId,
        counter: Counter,
        expected: ThrottleState,
        new: ThrottleState,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Resets the user's failure counter `counter`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn clear_throttle(&self, user: &UserId, counter: Counter) -> impl Future<Output = Result<(), StoreError>> + Send;

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

    /// Deletes the user's device unless it is usable ([`DeviceRecord::is_usable`]: confirmed,
    /// and for backup codes with a code left) and no other usable device of the user would
    /// remain, atomically with respect to other deletes and settlements of the same user.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn delete_device_unless_last(
        &self,
        user: &UserId,
        id: DeviceId,
    ) -> impl Future<Output = Result<DeleteOutcome, StoreError>> + Send;

    /// Records `issued` as the last code sent to the user's email address or phone number `id`
    /// if the last one recorded still is `expected` (`None`: none sent yet), and marks every
    /// code before it superseded (the device's [`last_serial`](SentCodeRecord::last_serial)
    /// becomes at least `issued.serial - 1`), in one atomic step: of concurrent sends with the
    /// same `expected` exactly one is recorded, and a code settled after the next one is sent
    /// is not accepted. `Ok(false)`, and nothing changed, otherwise, or if the user has no such
    /// device.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidRecord`] for a serial of 0; [`StoreError`] if the backend fails.
    fn issue_sent_code(
        &self,
        user: &UserId,
        id: DeviceId,
        expected: Option<&IssuedCode>,
        issued: &IssuedCode,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The check value stored for sealing key `id`, storing `check` first if there is none, in
    /// one atomic step: the first value stored for an id stays, and is what every later call
    /// returns (compared by the service, never by the store).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails or the stored value is corrupt.
    fn key_check(&self, id: &KeyId, check: [u8; 32]) -> impl Future<Output = Result<[u8; 32], StoreError>> + Send;
}

/// WebAuthn ceremonies kept server-side between start and finish, each taken out once: what
/// security keys and passkeys need.
pub trait CeremonyStore: Send + Sync {
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
}

/// Remembered browsers (that skip the second factor) and known browsers (that keep failure
/// counters of their own).
pub trait BrowserStore: Send + Sync {
    /// Stores a remember-this-browser record.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] if the id exists.
    fn insert_remembered_browser(
        &self,
        record: RememberedBrowserRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The remember-this-browser record with this id, whoever owns it.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails or the record is corrupt.
    fn remembered_browser(
        &self,
        id: RememberedBrowserId,
    ) -> impl Future<Output = Result<Option<RememberedBrowserRecord>, StoreError>> + Send;

    /// Sets the last-used time of the user's record; `Ok(false)` if there is none.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn touch_remembered_browser(
        &self,
        user: &UserId,
        id: RememberedBrowserId,
        now: UnixTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The user's remember-this-browser records, oldest first.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails or a record is corrupt.
    fn list_remembered_browsers(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Vec<RememberedBrowserRecord>, StoreError>> + Send;

    /// Deletes one of the user's records, and the browser's own failure counters (see
    /// [`Counter::known`]), in one atomic step; `Ok(false)` if there is none.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn delete_remembered_browser(
        &self,
        user: &UserId,
        id: RememberedBrowserId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes the user's records of the given kind (with [`Browsers::Known`] or
    /// [`Browsers::All`], also every known browser's own failure counters of the user) in one
    /// atomic step; returns how many records.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn delete_user_remembered_browsers(
        &self,
        user: &UserId,
        which: Browsers,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// The operator's passes over every user, a page at a time: re-sealing TOTP secrets under a
/// new key ([`Mfa::rotate_keys`](crate::Mfa::rotate_keys)) and the credential inventory.
pub trait AdminStore: Send + Sync {
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

    /// Up to `limit` backup-code sets of all users with ids greater than `after`, in id order
    /// (for key rotation, a page at a time).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails or a record is corrupt.
    fn list_backup_code_sets(
        &self,
        after: Option<DeviceId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DeviceRecord>, StoreError>> + Send;

    /// Up to `limit` security keys and passkeys of all users with ids greater than `after`, in
    /// id order (an administrator's inventory of credentials, a page at a time).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails or a record is corrupt.
    fn list_webauthn_credentials(
        &self,
        after: Option<DeviceId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DeviceRecord>, StoreError>> + Send;

    /// Up to `limit` remember-this-browser records of all users with ids greater than `after`,
    /// in id order (for key rotation, a page at a time).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails or a record is corrupt.
    fn list_remembered_browsers_page(
        &self,
        after: Option<RememberedBrowserId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RememberedBrowserRecord>, StoreError>> + Send;

    /// Replaces the sealed secret of the user's TOTP device `id` with `new`, and its
    /// fingerprint with `fingerprint` (made with the new key), if the secret still is `expected`
    /// (nothing else changes). `Ok(false)` otherwise.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] if another TOTP device of the user has `fingerprint` (nothing
    /// changes); [`StoreError`] if the backend fails.
    fn reseal_totp_secret(
        &self,
        user: &UserId,
        id: DeviceId,
        expected: &SealedSecret,
        new: &SealedSecret,
        fingerprint: &[u8; 32],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Each user's enrollment deadline and skipped prompts, for the policy that requires a second
/// factor by a date.
pub trait EnrollmentStore: Send + Sync {
    /// The user's enrollment deadline and skipped prompts, storing `proposed` (and no skips)
    /// first if they have none, in one atomic step: the first deadline stored stays, and is what
    /// every later call returns, so asking again never extends it. Deleting the user's devices
    /// (a reset) leaves it.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails or the stored value is corrupt.
    fn enrollment_deadline(
        &self,
        user: &UserId,
        proposed: UnixTime,
    ) -> impl Future<Output = Result<EnrollmentGrace, StoreError>> + Send;

    /// Counts one skipped enrollment prompt of the user if fewer than `max` are counted, in one
    /// atomic step (storing `proposed` as the deadline first if they have none): the number of
    /// skipped prompts after this one, or `None` (nothing changed, nothing stored) when `max`
    /// are counted already, or `max` is 0. Concurrent calls count at most `max` in all.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails or the stored value is corrupt.
    fn skip_enrollment_prompt(
        &self,
        user: &UserId,
        proposed: UnixTime,
        max: u32,
    ) -> impl Future<Output = Result<Option<u32>, StoreError>> + Send;

    /// Sets the user's enrollment deadline, whatever was stored, and counts their skipped
    /// prompts from zero again (an administrator's decision).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the backend fails.
    fn set_enrollment_deadline(
        &self,
        user: &UserId,
        deadline: UnixTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Every store trait: what [`Mfa`](crate::Mfa) needs for all of its operations. Implemented
/// for every type that implements the five.
pub trait Store: DeviceStore + CeremonyStore + BrowserStore + AdminStore + EnrollmentStore {}

impl<T: DeviceStore + CeremonyStore + BrowserStore + AdminStore + EnrollmentStore> Store for T {}

pub use self::devices_version::{DevicesVersion, VerificationState};
// The records a store keeps, from the modules that define them.
pub use self::record::{DeviceData, DeviceRecord};
pub use crate::backup_codes::{BackupCodeRecord, CodeSlot};
pub use crate::remembered_browser::RememberedBrowserRecord;
pub use crate::seal::SealedSecret;
pub use crate::sent_code::{IssuedCode, SentCodeRecord};
pub use crate::throttle::{Counter, ThrottleState};
pub use crate::totp::TotpRecord;
pub use crate::webauthn::{CeremonyKind, CeremonyRecord, WebAuthnRecord, WebAuthnUse};

/// Which of a user's browser records [`BrowserStore::delete_user_remembered_browsers`] deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Browsers {
    /// Remembered browsers: those that skip the second factor (every device change ends them).
    Remembered,
    /// Known browsers: those that only keep a counter of their own.
    Known,
    /// Both.
    All,
}

impl Browsers {
    /// Whether a record is one of these.
    pub fn includes(self, record: &RememberedBrowserRecord) -> bool {
        match self {
            Self::Remembered => record.skips_second_factor,
            Self::Known => !record.skips_second_factor,
            Self::All => true,
        }
    }
}

/// One code attempt for [`DeviceStore::settle_attempt`]: what it matched, the counter it was
/// admitted under, and the counter to write on either answer (the service computes both from
/// its [`ThrottlePolicy`](crate::throttle::ThrottlePolicy); the store only compares and writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settle {
    /// [`Factor::Totp`] or [`Factor::BackupCodes`]: whose devices the attempt may spend.
    pub factor: Factor,
    /// `None`: the user's counter of `factor` for unknown browsers settles the attempt. Some
    /// known browser: that browser's own counter ([`Counter::known`]) settles it, and only
    /// while the user still has the browser's record unexpired at `now`.
    pub browser: Option<RememberedBrowserId>,
    /// The counter state the attempt was admitted under.
    pub admitted: ThrottleState,
    /// What the code matched, if anything.
    pub hit: Option<Hit>,
    /// The counter after an accepted hit.
    pub on_hit: ThrottleState,
    /// The counter after a miss.
    pub on_miss: ThrottleState,
    /// When.
    pub now: UnixTime,
    /// The devices version the code was evaluated against, if the settlement must check that
    /// the user's devices have not changed since (see [`DevicesVersion`]).
    pub version: Option<DevicesVersion>,
}

impl Settle {
    /// A hit whose miss leaves the counter as it is and whose success clears the consecutive
    /// failures (keeping the failure budget).
    pub fn keep_on_miss(factor: Factor, admitted: ThrottleState, hit: Hit, now: UnixTime) -> Self {
        Self {
            factor,
            browser: None,
            admitted,
            hit: Some(hit),
            on_hit: ThrottleState {
                budget_until: admitted.budget_until,
                ..ThrottleState::default()
            },
            on_miss: admitted,
            now,
            version: None,
        }
    }
}

/// What a code matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    /// A step of a one-time-code device: a TOTP device's time step, an HOTP device's counter,
    /// or the serial of a code sent to an email address or phone number
    /// ([`SentCodeRecord::last_serial`] is that device's last accepted step).
    TotpStep {
        /// The device.
        device: DeviceId,
        /// The step, counter or serial the code belongs to.
        step: u64,
    },
    /// A slot of a backup-code set.
    BackupCode {
        /// The set.
        device: DeviceId,
        /// The slot.
        slot: usize,
    },
}

/// What [`DeviceStore::settle_attempt`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settlement {
    /// The hit was written and the counter set to `on_hit`.
    Accepted,
    /// The attempt was charged: the counter set to `on_miss`.
    Charged,
    /// The counter had moved; nothing changed. It holds this state now.
    Moved(ThrottleState),
    /// The counter had not moved, but the user's devices version is no longer the one the
    /// attempt was evaluated against (or the known browser's record is gone); nothing changed.
    Stale,
}

/// What [`DeviceStore::delete_device_unless_last`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeleteOutcome {
    /// Deleted.
    Deleted,
    /// The user has no device with this id.
    NotFound,
    /// Not deleted: it is the user's last usable device.
    LastDevice,
}
