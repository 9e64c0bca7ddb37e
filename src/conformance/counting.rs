//! [`CountingStore`]: a [`Store`](crate::Store) wrapper that records which operations the service calls,
//! in order, and can make one verification's counter read stale.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::clock::UnixTime;
use crate::error::StoreError;
use crate::id::{CeremonyId, DeviceId, DeviceName, RememberedBrowserId, UserId};
use crate::kind::Factor;
use crate::remembered_browser::RememberedBrowserRecord;
use crate::seal::SealedSecret;
use crate::store::DeviceRecord;
use crate::store::{
    AdminStore, BrowserStore, Browsers, CeremonyStore, DeleteOutcome, DeviceStore, EnrollmentStore, Settle, Settlement,
    VerificationState,
};
use crate::throttle::{Counter, ThrottleState};
use crate::webauthn::{CeremonyKind, CeremonyRecord, WebAuthnUse};

/// Wraps a store, logging the name of every operation called through it.
///
/// With [`stale_counter_once`](Self::stale_counter_once), the next
/// [`verification_state`](DeviceStore::verification_state) reports a counter state other than
/// the stored one: the read a verification made before a concurrent request moved the counter.
/// The service then evaluates the code and meets the real counter only when it settles, which
/// is the moment a correct code refused by the throttle must look exactly like a wrong one.
#[derive(Debug)]
pub struct CountingStore<S> {
    inner: Arc<S>,
    calls: Mutex<Vec<&'static str>>,
    stale: Mutex<Option<ThrottleState>>,
}

impl<S> CountingStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: Arc<S>) -> Self {
        Self {
            inner,
            calls: Mutex::new(Vec::new()),
            stale: Mutex::new(None),
        }
    }

    /// The operations called since the last take, in order, and forgets them.
    pub fn take_calls(&self) -> Vec<&'static str> {
        std::mem::take(&mut *lock(&self.calls))
    }

    /// The next `verification_state` reports `counter` instead of the stored counter.
    pub fn stale_counter_once(&self, counter: ThrottleState) {
        *lock(&self.stale) = Some(counter);
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn log(&self, name: &'static str) {
        lock(&self.calls).push(name);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Forwards each listed operation to `self.inner`, logging its name first.
macro_rules! counted {
    ($( fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $out:ty; )*) => {
        $(
            async fn $name(&self $(, $arg: $ty)*) -> Result<$out, StoreError> {
                self.log(stringify!($name));
                self.inner.$name($($arg),*).await
            }
        )*
    };
}

impl<S: DeviceStore> DeviceStore for CountingStore<S> {
    counted! {
        fn insert_device(&self, device: DeviceRecord) -> ();
        fn device(&self, user: &UserId, id: DeviceId) -> Option<DeviceRecord>;
        fn list_devices(&self, user: &UserId) -> Vec<DeviceRecord>;
        fn rename_device(&self, user: &UserId, id: DeviceId, name: &DeviceName) -> bool;
        fn delete_device(&self, user: &UserId, id: DeviceId) -> bool;
        fn delete_user_devices(&self, user: &UserId) -> u64;
        fn delete_unconfirmed_totp(&self, user: &UserId, keep: DeviceId) -> u64;
        fn replace_backup_codes(&self, set: DeviceRecord) -> ();
        fn insert_first_backup_codes(&self, set: DeviceRecord) -> bool;
        fn settle_attempt(&self, user: &UserId, attempt: &Settle) -> Settlement;
        fn throttle(&self, user: &UserId, counter: Counter) -> ThrottleState;
        fn swap_throttle(&self, user: &UserId, counter: Counter, expected: ThrottleState, new: ThrottleState) -> bool;
        fn clear_throttle(&self, user: &UserId, counter: Counter) -> ();
        fn find_credential(&self, credential_id: &[u8]) -> Option<DeviceRecord>;
        fn record_webauthn_use(
            &self,
            user: &UserId,
            id: DeviceId,
            expected_sign_count: u32,
            update: WebAuthnUse,
            now: UnixTime
        ) -> bool;
        fn delete_device_unless_last(&self, user: &UserId, id: DeviceId) -> DeleteOutcome;
        fn issue_sent_code(&self, user: &UserId, id: DeviceId, expected: Option<&crate::store::IssuedCode>, issued: &crate::store::IssuedCode) -> bool;
        fn key_check(&self, id: &crate::seal::KeyId, check: [u8; 32]) -> [u8; 32];
    }

    async fn verification_state(&self, user: &UserId, factor: Factor) -> Result<VerificationState, StoreError> {
        self.log("verification_state");
        let mut read = self.inner.verification_state(user, factor).await?;
        if let Some(stale) = lock(&self.stale).take() {
            read.throttle = stale;
        }
        Ok(read)
    }
}

impl<S: CeremonyStore> CeremonyStore for CountingStore<S> {
    counted! {
        fn insert_ceremony(&self, ceremony: CeremonyRecord) -> ();
        fn take_ceremony(&self, id: CeremonyId, user: Option<&UserId>, kind: CeremonyKind, now: UnixTime)
            -> Option<CeremonyRecord>;
        fn purge_expired_ceremonies(&self, now: UnixTime) -> u64;
    }
}

impl<S: BrowserStore> BrowserStore for CountingStore<S> {
    counted! {
        fn insert_remembered_browser(&self, record: RememberedBrowserRecord) -> ();
        fn remembered_browser(&self, id: RememberedBrowserId) -> Option<RememberedBrowserRecord>;
        fn touch_remembered_browser(&self, user: &UserId, id: RememberedBrowserId, now: UnixTime) -> bool;
        fn list_remembered_browsers(&self, user: &UserId) -> Vec<RememberedBrowserRecord>;
        fn delete_remembered_browser(&self, user: &UserId, id: RememberedBrowserId) -> bool;
        fn delete_user_remembered_browsers(&self, user: &UserId, which: Browsers) -> u64;
    }
}

impl<S: AdminStore> AdminStore for CountingStore<S> {
    counted! {
        fn list_totp_devices(&self, after: Option<DeviceId>, limit: usize) -> Vec<DeviceRecord>;
        fn list_backup_code_sets(&self, after: Option<DeviceId>, limit: usize) -> Vec<DeviceRecord>;
        fn list_webauthn_credentials(&self, after: Option<DeviceId>, limit: usize) -> Vec<DeviceRecord>;
        fn list_remembered_browsers_page(&self, after: Option<RememberedBrowserId>, limit: usize) -> Vec<RememberedBrowserRecord>;
        fn reseal_totp_secret(&self, user: &UserId, id: DeviceId, expected: &SealedSecret, new: &SealedSecret, fingerprint: &[u8; 32]) -> bool;
    }
}

impl<S: EnrollmentStore> EnrollmentStore for CountingStore<S> {
    counted! {
        fn enrollment_deadline(&self, user: &UserId, proposed: UnixTime) -> crate::enrollment::EnrollmentGrace;
        fn skip_enrollment_prompt(&self, user: &UserId, proposed: UnixTime, max: u32) -> Option<u32>;
        fn set_enrollment_deadline(&self, user: &UserId, deadline: UnixTime) -> ();
    }
}
