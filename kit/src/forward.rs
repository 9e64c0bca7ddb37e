//! `forward!`: delegating store methods for test stores that wrap a `MemoryStore` (or any
//! store) in `self.inner` and change one or two operations. Every type is named by its full
//! path, so the using file imports nothing for it.
//!
//! - `forward!(settle_attempt, throttle)`: those methods, inside an `impl` block;
//! - `forward!(DeviceStore but settle_attempt)`: every `DeviceStore` method but one, inside
//!   the `impl DeviceStore` block that writes that one;
//! - `forward!(CeremonyStore, BrowserStore for MyStore)`: whole trait impls, for the traits a
//!   test store does not change.

/// Delegating methods, or whole trait impls, forwarding to `self.inner`.
#[macro_export]
macro_rules! forward {
    (@impl DeviceStore for $ty:ty) => {
        impl multifactor::DeviceStore for $ty {
            $crate::forward!(insert_device, device, list_devices, verification_state, rename_device, delete_device, delete_unconfirmed_totp, delete_user_devices, replace_backup_codes, insert_first_backup_codes, settle_attempt, throttle, swap_throttle, clear_throttle, find_credential, record_webauthn_use, delete_device_unless_last, issue_sent_code, key_check);
        }
    };
    (@impl CeremonyStore for $ty:ty) => {
        impl multifactor::CeremonyStore for $ty {
            $crate::forward!(insert_ceremony, take_ceremony, purge_expired_ceremonies);
        }
    };
    (@impl BrowserStore for $ty:ty) => {
        impl multifactor::BrowserStore for $ty {
            $crate::forward!(insert_remembered_browser, remembered_browser, touch_remembered_browser, list_remembered_browsers, delete_remembered_browser, delete_user_remembered_browsers);
        }
    };
    (@impl AdminStore for $ty:ty) => {
        impl multifactor::AdminStore for $ty {
            $crate::forward!(list_totp_devices, list_backup_code_sets, list_webauthn_credentials, list_remembered_browsers_page, reseal_totp_secret);
        }
    };
    (@impl EnrollmentStore for $ty:ty) => {
        impl multifactor::EnrollmentStore for $ty {
            $crate::forward!(enrollment_deadline, skip_enrollment_prompt, set_enrollment_deadline);
        }
    };
    (DeviceStore but insert_device) => {
        $crate::forward!(device, list_devices, verification_state, rename_device, delete_device, delete_unconfirmed_totp, delete_user_devices, replace_backup_codes, insert_first_backup_codes, settle_attempt, throttle, swap_throttle, clear_throttle, find_credential, record_webauthn_use, delete_device_unless_last, issue_sent_code, key_check);
    };
    (DeviceStore but device) => {
        $crate::forward!(insert_device, list_devices, verification_state, rename_device, delete_device, delete_unconfirmed_totp, delete_user_devices, replace_backup_codes, insert_first_backup_codes, settle_attempt, throttle, swap_throttle, clear_throttle, find_credential, record_webauthn_use, delete_device_unless_last, issue_sent_code, key_check);
    };
    (DeviceStore but list_devices) => {
        $crate::forward!(insert_device, device, verification_state, rename_device, delete_device, delete_unconfirmed_totp, delete_user_devices, replace_backup_codes, insert_first_backup_codes, settle_attempt, throttle, swap_throttle, clear_throttle, find_credential, record_webauthn_use, delete_device_unless_last, issue_sent_code, key_check);
    };
    (DeviceStore but verification_state) => {
        $crate::forward!(insert_device, device, list_devices, rename_device, delete_device, delete_unconfirmed_totp, delete_user_devices, replace_backup_codes, insert_first_backup_codes, settle_attempt, throttle, swap_throttle, clear_throttle, find_credential, record_webauthn_use, delete_device_unless_last, issue_sent_code, key_check);
    };
    (DeviceStore but rename_device) => {
        $crate::forward!(insert_device, device, list_devices, verification_state, delete_device, delete_unconfirmed_totp, delete_user_devices, replace_backup_codes, insert_first_backup_codes, settle_attempt, throttle, swap_throttle, clear_throttle, find_credential, record_webauthn_use, delete_device_unless_last, issue_sent_code, key_check);
    };
    (DeviceStore but delete_device) => {
        $crate::forward!(insert_device, device, list_devices, verification_state, rename_device, delete_unconfirmed_totp, delete_user_devices, replace_backup_codes, insert_first_backup_codes, settle_attempt, throttle, swap_throttle, clear_throttle, find_credential, record_webauthn_use, delete_device_unless_last, issue_sent_code, key_check);
    };
    (DeviceStore but delete_unconfirmed_totp) => {
        $crate::forward!(insert_device, device, list_devices, verification_state, rename_device, delete_device, delete_user_devices, replace_backup_codes, insert_first_backup_codes, settle_attempt, throttle, swap_throttle, clear_throttle, find_credential, record_webauthn_use, delete_device_unless_last, issue_sent_code, key_check);
    };
    (DeviceStore but delete_user_devices) => {
        $crate::forward!(insert_device, device, list_devices, verification_state, rename_device, delete_device, delete_unconfirmed_totp, replace_backup_codes, insert_first_backup_codes, settle_attempt, throttle, swap_throttle, clear_throttle, find_credential, record_webauthn_use, delete_device_unless_last, issue_sent_code, key_check);
    };
    (DeviceStore but replace_backup_codes) => {
        $crate::forward!(insert_device, device, list_devices, verification_state, rename_device, delete_device, delete_unconfirmed_totp, delete_user_devices, insert_first_backup_codes, settle_attempt, throttle, swap_throttle, clear_throttle, find_credential, record_webauthn_use, delete_device_unless_last, issue_sent_code, key_check);
    };
    (DeviceStore but insert_first_backup_codes) => {
        $crate::forward!(insert_device, device, list_devices, verification_state, rename_device, delete_device, delete_unconfirmed_totp, delete_user_devices, replace_backup_codes, settle_attempt, throttle, swap_throttle, clear_throttle, find_credential, record_webauthn_use, delete_device_unless_last, issue_sent_code, key_check);
    };
    (DeviceStore but settle_attempt) => {
        $crate::forward!(insert_device, device, list_devices, verification_state, rename_device, delete_device, delete_unconfirmed_totp, delete_user_devices, replace_backup_codes, insert_first_backup_codes, throttle, swap_throttle, clear_throttle, find_credential, record_webauthn_use, delete_device_unless_last, issue_sent_code, key_check);
    };
    (DeviceStore but throttle) => {
        $crate::forward!(insert_device, device, list_devices, verification_state, rename_device, delete_device, delete_unconfirmed_totp, delete_user_devices, replace_backup_codes, insert_first_backup_codes, settle_attempt, swap_throttle, clear_throttle, find_credential, record_webauthn_use, delete_device_unless_last, issue_sent_code, key_check);
    };
    (DeviceStore but swap_throttle) => {
        $crate::forward!(insert_device, device, list_devices, verification_state, rename_device, delete_device, delete_unconfirmed_totp, delete_user_devices, replace_backup_codes, insert_first_backup_codes, settle_attempt, throttle, clear_throttle, find_credential, record_webauthn_use, delete_device_unless_last, issue_sent_code, key_check);
    };
    (DeviceStore but clear_throttle) => {
        $crate::forward!(insert_device, device, list_devices, verification_state, rename_device, delete_device, delete_unconfirmed_totp, delete_user_devices, replace_backup_codes, insert_first_backup_codes, settle_attempt, throttle, swap_throttle, find_credential, record_webauthn_use, delete_device_unless_last, issue_sent_code, key_check);
    };
    (DeviceStore but find_credential) => {
        $crate::forward!(insert_device, device, list_devices, verification_state, rename_device, delete_device, delete_unconfirmed_totp, delete_user_devices, replace_backup_codes, insert_first_backup_codes, settle_attempt, throttle, swap_throttle, clear_throttle, record_webauthn_use, delete_device_unless_last, issue_sent_code, key_check);
    };
    (DeviceStore but record_webauthn_use) => {
        $crate::forward!(insert_device, device, list_devices, verification_state, rename_device, delete_device, delete_unconfirmed_totp, delete_user_devices, replace_backup_codes, insert_first_backup_codes, settle_attempt, throttle, swap_throttle, clear_throttle, find_credential, delete_device_unless_last, issue_sent_code, key_check);
    };
    (DeviceStore but delete_device_unless_last) => {
        $crate::forward!(insert_device, device, list_devices, verification_state, rename_device, delete_device, delete_unconfirmed_totp, delete_user_devices, replace_backup_codes, insert_first_backup_codes, settle_attempt, throttle, swap_throttle, clear_throttle, find_credential, record_webauthn_use, issue_sent_code, key_check);
    };
    (DeviceStore but issue_sent_code) => {
        $crate::forward!(insert_device, device, list_devices, verification_state, rename_device, delete_device, delete_unconfirmed_totp, delete_user_devices, replace_backup_codes, insert_first_backup_codes, settle_attempt, throttle, swap_throttle, clear_throttle, find_credential, record_webauthn_use, delete_device_unless_last, key_check);
    };
    (DeviceStore but key_check) => {
        $crate::forward!(insert_device, device, list_devices, verification_state, rename_device, delete_device, delete_unconfirmed_totp, delete_user_devices, replace_backup_codes, insert_first_backup_codes, settle_attempt, throttle, swap_throttle, clear_throttle, find_credential, record_webauthn_use, delete_device_unless_last, issue_sent_code);
    };
    ($($store:ident),+ for $ty:ty) => {
        $($crate::forward!(@impl $store for $ty);)+
    };
    (insert_device) => {
        async fn insert_device(&self, device: multifactor::store::DeviceRecord) -> Result<(), multifactor::StoreError> {
            use multifactor::DeviceStore as _;
            self.inner.insert_device(device).await
        }
    };
    (device) => {
        async fn device(&self, user: &multifactor::UserId, id: multifactor::DeviceId) -> Result<Option<multifactor::store::DeviceRecord>, multifactor::StoreError> {
            use multifactor::DeviceStore as _;
            self.inner.device(user, id).await
        }
    };
    (list_devices) => {
        async fn list_devices(&self, user: &multifactor::UserId) -> Result<Vec<multifactor::store::DeviceRecord>, multifactor::StoreError> {
            use multifactor::DeviceStore as _;
            self.inner.list_devices(user).await
        }
    };
    (verification_state) => {
        async fn verification_state(&self, user: &multifactor::UserId, factor: multifactor::Factor) -> Result<multifactor::store::VerificationState, multifactor::StoreError> {
            use multifactor::DeviceStore as _;
            self.inner.verification_state(user, factor).await
        }
    };
    (rename_device) => {
        async fn rename_device(&self, user: &multifactor::UserId, id: multifactor::DeviceId, name: &multifactor::DeviceName) -> Result<bool, multifactor::StoreError> {
            use multifactor::DeviceStore as _;
            self.inner.rename_device(user, id, name).await
        }
    };
    (delete_device) => {
        async fn delete_device(&self, user: &multifactor::UserId, id: multifactor::DeviceId) -> Result<bool, multifactor::StoreError> {
            use multifactor::DeviceStore as _;
            self.inner.delete_device(user, id).await
        }
    };
    (delete_unconfirmed_totp) => {
        async fn delete_unconfirmed_totp(&self, user: &multifactor::UserId, keep: multifactor::DeviceId) -> Result<u64, multifactor::StoreError> {
            use multifactor::DeviceStore as _;
            self.inner.delete_unconfirmed_totp(user, keep).await
        }
    };
    (delete_user_devices) => {
        async fn delete_user_devices(&self, user: &multifactor::UserId) -> Result<u64, multifactor::StoreError> {
            use multifactor::DeviceStore as _;
            self.inner.delete_user_devices(user).await
        }
    };
    (replace_backup_codes) => {
        async fn replace_backup_codes(&self, set: multifactor::store::DeviceRecord) -> Result<(), multifactor::StoreError> {
            use multifactor::DeviceStore as _;
            self.inner.replace_backup_codes(set).await
        }
    };
    (insert_first_backup_codes) => {
        async fn insert_first_backup_codes(&self, set: multifactor::store::DeviceRecord) -> Result<bool, multifactor::StoreError> {
            use multifactor::DeviceStore as _;
            self.inner.insert_first_backup_codes(set).await
        }
    };
    (settle_attempt) => {
        async fn settle_attempt(&self, user: &multifactor::UserId, attempt: &multifactor::store::Settle) -> Result<multifactor::store::Settlement, multifactor::StoreError> {
            use multifactor::DeviceStore as _;
            self.inner.settle_attempt(user, attempt).await
        }
    };
    (throttle) => {
        async fn throttle(&self, user: &multifactor::UserId, counter: multifactor::store::Counter) -> Result<multifactor::store::ThrottleState, multifactor::StoreError> {
            use multifactor::DeviceStore as _;
            self.inner.throttle(user, counter).await
        }
    };
    (swap_throttle) => {
        async fn swap_throttle(&self, user: &multifactor::UserId, counter: multifactor::store::Counter, expected: multifactor::store::ThrottleState, new: multifactor::store::ThrottleState) -> Result<bool, multifactor::StoreError> {
            use multifactor::DeviceStore as _;
            self.inner.swap_throttle(user, counter, expected, new).await
        }
    };
    (clear_throttle) => {
        async fn clear_throttle(&self, user: &multifactor::UserId, counter: multifactor::store::Counter) -> Result<(), multifactor::StoreError> {
            use multifactor::DeviceStore as _;
            self.inner.clear_throttle(user, counter).await
        }
    };
    (find_credential) => {
        async fn find_credential(&self, credential_id: &[u8]) -> Result<Option<multifactor::store::DeviceRecord>, multifactor::StoreError> {
            use multifactor::DeviceStore as _;
            self.inner.find_credential(credential_id).await
        }
    };
    (record_webauthn_use) => {
        async fn record_webauthn_use(&self, user: &multifactor::UserId, id: multifactor::DeviceId, expected_sign_count: u32, update: multifactor::store::WebAuthnUse, now: multifactor::UnixTime) -> Result<bool, multifactor::StoreError> {
            use multifactor::DeviceStore as _;
            self.inner.record_webauthn_use(user, id, expected_sign_count, update, now).await
        }
    };
    (delete_device_unless_last) => {
        async fn delete_device_unless_last(&self, user: &multifactor::UserId, id: multifactor::DeviceId) -> Result<multifactor::store::DeleteOutcome, multifactor::StoreError> {
            use multifactor::DeviceStore as _;
            self.inner.delete_device_unless_last(user, id).await
        }
    };
    (issue_sent_code) => {
        async fn issue_sent_code(&self, user: &multifactor::UserId, id: multifactor::DeviceId, expected: Option<&multifactor::store::IssuedCode>, issued: &multifactor::store::IssuedCode) -> Result<bool, multifactor::StoreError> {
            use multifactor::DeviceStore as _;
            self.inner.issue_sent_code(user, id, expected, issued).await
        }
    };
    (key_check) => {
        async fn key_check(&self, id: &multifactor::KeyId, check: [u8; 32]) -> Result<[u8; 32], multifactor::StoreError> {
            use multifactor::DeviceStore as _;
            self.inner.key_check(id, check).await
        }
    };
    (insert_ceremony) => {
        async fn insert_ceremony(&self, ceremony: multifactor::store::CeremonyRecord) -> Result<(), multifactor::StoreError> {
            use multifactor::CeremonyStore as _;
            self.inner.insert_ceremony(ceremony).await
        }
    };
    (take_ceremony) => {
        async fn take_ceremony(&self, id: multifactor::CeremonyId, user: Option<&multifactor::UserId>, kind: multifactor::store::CeremonyKind, now: multifactor::UnixTime) -> Result<Option<multifactor::store::CeremonyRecord>, multifactor::StoreError> {
            use multifactor::CeremonyStore as _;
            self.inner.take_ceremony(id, user, kind, now).await
        }
    };
    (purge_expired_ceremonies) => {
        async fn purge_expired_ceremonies(&self, now: multifactor::UnixTime) -> Result<u64, multifactor::StoreError> {
            use multifactor::CeremonyStore as _;
            self.inner.purge_expired_ceremonies(now).await
        }
    };
    (insert_remembered_browser) => {
        async fn insert_remembered_browser(&self, record: multifactor::store::RememberedBrowserRecord) -> Result<(), multifactor::StoreError> {
            use multifactor::BrowserStore as _;
            self.inner.insert_remembered_browser(record).await
        }
    };
    (remembered_browser) => {
        async fn remembered_browser(&self, id: multifactor::RememberedBrowserId) -> Result<Option<multifactor::store::RememberedBrowserRecord>, multifactor::StoreError> {
            use multifactor::BrowserStore as _;
            self.inner.remembered_browser(id).await
        }
    };
    (touch_remembered_browser) => {
        async fn touch_remembered_browser(&self, user: &multifactor::UserId, id: multifactor::RememberedBrowserId, now: multifactor::UnixTime) -> Result<bool, multifactor::StoreError> {
            use multifactor::BrowserStore as _;
            self.inner.touch_remembered_browser(user, id, now).await
        }
    };
    (list_remembered_browsers) => {
        async fn list_remembered_browsers(&self, user: &multifactor::UserId) -> Result<Vec<multifactor::store::RememberedBrowserRecord>, multifactor::StoreError> {
            use multifactor::BrowserStore as _;
            self.inner.list_remembered_browsers(user).await
        }
    };
    (delete_remembered_browser) => {
        async fn delete_remembered_browser(&self, user: &multifactor::UserId, id: multifactor::RememberedBrowserId) -> Result<bool, multifactor::StoreError> {
            use multifactor::BrowserStore as _;
            self.inner.delete_remembered_browser(user, id).await
        }
    };
    (delete_user_remembered_browsers) => {
        async fn delete_user_remembered_browsers(&self, user: &multifactor::UserId, which: multifactor::store::Browsers) -> Result<u64, multifactor::StoreError> {
            use multifactor::BrowserStore as _;
            self.inner.delete_user_remembered_browsers(user, which).await
        }
    };
    (list_totp_devices) => {
        async fn list_totp_devices(&self, after: Option<multifactor::DeviceId>, limit: usize) -> Result<Vec<multifactor::store::DeviceRecord>, multifactor::StoreError> {
            use multifactor::AdminStore as _;
            self.inner.list_totp_devices(after, limit).await
        }
    };
    (list_backup_code_sets) => {
        async fn list_backup_code_sets(&self, after: Option<multifactor::DeviceId>, limit: usize) -> Result<Vec<multifactor::store::DeviceRecord>, multifactor::StoreError> {
            use multifactor::AdminStore as _;
            self.inner.list_backup_code_sets(after, limit).await
        }
    };
    (list_webauthn_credentials) => {
        async fn list_webauthn_credentials(&self, after: Option<multifactor::DeviceId>, limit: usize) -> Result<Vec<multifactor::store::DeviceRecord>, multifactor::StoreError> {
            use multifactor::AdminStore as _;
            self.inner.list_webauthn_credentials(after, limit).await
        }
    };
    (list_remembered_browsers_page) => {
        async fn list_remembered_browsers_page(&self, after: Option<multifactor::RememberedBrowserId>, limit: usize) -> Result<Vec<multifactor::store::RememberedBrowserRecord>, multifactor::StoreError> {
            use multifactor::AdminStore as _;
            self.inner.list_remembered_browsers_page(after, limit).await
        }
    };
    (reseal_totp_secret) => {
        async fn reseal_totp_secret(&self, user: &multifactor::UserId, id: multifactor::DeviceId, expected: &multifactor::store::SealedSecret, new: &multifactor::store::SealedSecret, fingerprint: &[u8; 32]) -> Result<bool, multifactor::StoreError> {
            use multifactor::AdminStore as _;
            self.inner.reseal_totp_secret(user, id, expected, new, fingerprint).await
        }
    };
    (enrollment_deadline) => {
        async fn enrollment_deadline(&self, user: &multifactor::UserId, proposed: multifactor::UnixTime) -> Result<multifactor::enrollment::EnrollmentGrace, multifactor::StoreError> {
            use multifactor::EnrollmentStore as _;
            self.inner.enrollment_deadline(user, proposed).await
        }
    };
    (skip_enrollment_prompt) => {
        async fn skip_enrollment_prompt(&self, user: &multifactor::UserId, proposed: multifactor::UnixTime, max: u32) -> Result<Option<u32>, multifactor::StoreError> {
            use multifactor::EnrollmentStore as _;
            self.inner.skip_enrollment_prompt(user, proposed, max).await
        }
    };
    (set_enrollment_deadline) => {
        async fn set_enrollment_deadline(&self, user: &multifactor::UserId, deadline: multifactor::UnixTime) -> Result<(), multifactor::StoreError> {
            use multifactor::EnrollmentStore as _;
            self.inner.set_enrollment_deadline(user, deadline).await
        }
    };
    ($($method:ident),+ $(,)?) => {
        $($crate::forward!($method);)+
    };
}
