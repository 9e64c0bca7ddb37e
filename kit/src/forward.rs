//! `forward!`: delegating [`DeviceStore`](multifactor::DeviceStore) methods for test stores that
//! wrap a `MemoryStore` in `self.inner` and change one or two operations. The using file imports
//! the types the signatures name.

/// One delegating method of [`DeviceStore`], forwarding to `self.inner`.
#[macro_export]
macro_rules! forward {
    // All the account operations (last-method guard, re-sealing, browsers, key checks).
    (account_ops) => {
        $crate::forward!(
            delete_device_unless_last,
            list_totp_devices,
            list_backup_code_sets,
            list_webauthn_credentials,
            list_remembered_browsers_page,
            reseal_totp_secret,
            issue_sent_code,
            insert_remembered_browser,
            remembered_browser,
            touch_remembered_browser,
            list_remembered_browsers,
            delete_remembered_browser,
            delete_user_remembered_browsers,
            key_check,
            enrollment_deadline,
            skip_enrollment_prompt,
            set_enrollment_deadline,
        );
    };
    (enrollment_deadline) => {
        async fn enrollment_deadline(
            &self,
            user: &UserId,
            proposed: multifactor::UnixTime,
        ) -> Result<multifactor::enrollment::EnrollmentGrace, StoreError> {
            self.inner.enrollment_deadline(user, proposed).await
        }
    };
    (skip_enrollment_prompt) => {
        async fn skip_enrollment_prompt(
            &self,
            user: &UserId,
            proposed: multifactor::UnixTime,
            max: u32,
        ) -> Result<Option<u32>, StoreError> {
            self.inner.skip_enrollment_prompt(user, proposed, max).await
        }
    };
    (set_enrollment_deadline) => {
        async fn set_enrollment_deadline(&self, user: &UserId, deadline: multifactor::UnixTime) -> Result<(), StoreError> {
            self.inner.set_enrollment_deadline(user, deadline).await
        }
    };
    (delete_device_unless_last) => {
        async fn delete_device_unless_last(
            &self,
            user: &UserId,
            id: DeviceId,
        ) -> Result<DeleteOutcome, StoreError> {
            self.inner.delete_device_unless_last(user, id).await
        }
    };
    (list_totp_devices) => {
        async fn list_totp_devices(&self, after: Option<DeviceId>, limit: usize) -> Result<Vec<DeviceRecord>, StoreError> {
            self.inner.list_totp_devices(after, limit).await
        }
    };
    (list_backup_code_sets) => {
        async fn list_backup_code_sets(&self, after: Option<DeviceId>, limit: usize) -> Result<Vec<DeviceRecord>, StoreError> {
            self.inner.list_backup_code_sets(after, limit).await
        }
    };
    (list_webauthn_credentials) => {
        async fn list_webauthn_credentials(&self, after: Option<DeviceId>, limit: usize) -> Result<Vec<DeviceRecord>, StoreError> {
            self.inner.list_webauthn_credentials(after, limit).await
        }
    };
    (list_remembered_browsers_page) => {
        async fn list_remembered_browsers_page(
            &self,
            after: Option<multifactor::RememberedBrowserId>,
            limit: usize,
        ) -> Result<Vec<multifactor::store::RememberedBrowserRecord>, StoreError> {
            self.inner.list_remembered_browsers_page(after, limit).await
        }
    };
    (reseal_totp_secret) => {
        async fn reseal_totp_secret(
            &self,
            user: &UserId,
            id: DeviceId,
            expected: &multifactor::store::SealedSecret,
            new: &multifactor::store::SealedSecret,
            fingerprint: &[u8; 32],
        ) -> Result<bool, StoreError> {
            self.inner.reseal_totp_secret(user, id, expected, new, fingerprint).await
        }
    };
    (issue_sent_code) => {
        async fn issue_sent_code(
            &self,
            user: &UserId,
            id: DeviceId,
            expected: Option<&multifactor::store::IssuedCode>,
            issued: &multifactor::store::IssuedCode,
        ) -> Result<bool, StoreError> {
            self.inner.issue_sent_code(user, id, expected, issued).await
        }
    };
    (insert_remembered_browser) => {
        async fn insert_remembered_browser(&self, record: multifactor::store::RememberedBrowserRecord) -> Result<(), StoreError> {
            self.inner.insert_remembered_browser(record).await
        }
    };
    (remembered_browser) => {
        async fn remembered_browser(
            &self,
            id: multifactor::RememberedBrowserId,
        ) -> Result<Option<multifactor::store::RememberedBrowserRecord>, StoreError> {
            self.inner.remembered_browser(id).await
        }
    };
    (touch_remembered_browser) => {
        async fn touch_remembered_browser(
            &self,
            user: &UserId,
            id: multifactor::RememberedBrowserId,
            now: UnixTime,
        ) -> Result<bool, StoreError> {
            self.inner.touch_remembered_browser(user, id, now).await
        }
    };
    (list_remembered_browsers) => {
        async fn list_remembered_browsers(&self, user: &UserId) -> Result<Vec<multifactor::store::RememberedBrowserRecord>, StoreError> {
            self.inner.list_remembered_browsers(user).await
        }
    };
    (delete_remembered_browser) => {
        async fn delete_remembered_browser(&self, user: &UserId, id: multifactor::RememberedBrowserId) -> Result<bool, StoreError> {
            self.inner.delete_remembered_browser(user, id).await
        }
    };
    (delete_user_remembered_browsers) => {
        async fn delete_user_remembered_browsers(
            &self,
            user: &UserId,
            which: multifactor::store::Browsers,
        ) -> Result<u64, StoreError> {
            self.inner.delete_user_remembered_browsers(user, which).await
        }
    };
    (insert_device) => {
        async fn insert_device(&self, device: DeviceRecord) -> Result<(), StoreError> {
            self.inner.insert_device(device).await
        }
    };
    (device) => {
        async fn device(&self, user: &UserId, id: DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
            self.inner.device(user, id).await
        }
    };
    (verification_state) => {
        async fn verification_state(
            &self,
            user: &UserId,
            factor: multifactor::Factor,
        ) -> Result<multifactor::store::VerificationState, StoreError> {
            self.inner.verification_state(user, factor).await
        }
    };
    (list_devices) => {
        async fn list_devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
            self.inner.list_devices(user).await
        }
    };
    (rename_device) => {
        async fn rename_device(&self, user: &UserId, id: DeviceId, name: &DeviceName) -> Result<bool, StoreError> {
            self.inner.rename_device(user, id, name).await
        }
    };
    (delete_device) => {
        async fn delete_device(&self, user: &UserId, id: DeviceId) -> Result<bool, StoreError> {
            self.inner.delete_device(user, id).await
        }
    };
    (delete_user_devices) => {
        async fn delete_user_devices(&self, user: &UserId) -> Result<u64, StoreError> {
            self.inner.delete_user_devices(user).await
        }
    };
    (delete_unconfirmed_totp) => {
        async fn delete_unconfirmed_totp(&self, user: &UserId, keep: DeviceId) -> Result<u64, StoreError> {
            self.inner.delete_unconfirmed_totp(user, keep).await
        }
    };
    (replace_backup_codes) => {
        async fn replace_backup_codes(&self, set: DeviceRecord) -> Result<(), StoreError> {
            self.inner.replace_backup_codes(set).await
        }
    };
    (key_check) => {
        async fn key_check(&self, id: &multifactor::KeyId, check: [u8; 32]) -> Result<[u8; 32], StoreError> {
            self.inner.key_check(id, check).await
        }
    };
    (insert_first_backup_codes) => {
        async fn insert_first_backup_codes(&self, set: DeviceRecord) -> Result<bool, StoreError> {
            self.inner.insert_first_backup_codes(set).await
        }
    };
    (settle_attempt) => {
        async fn settle_attempt(
            &self,
            user: &UserId,
            attempt: &multifactor::store::Settle,
        ) -> Result<multifactor::store::Settlement, StoreError> {
            self.inner.settle_attempt(user, attempt).await
        }
    };
    (throttle) => {
        async fn throttle(&self, user: &UserId, counter: multifactor::store::Counter) -> Result<ThrottleState, StoreError> {
            self.inner.throttle(user, counter).await
        }
    };
    (swap_throttle) => {
        async fn swap_throttle(
            &self,
            user: &UserId,
            counter: multifactor::store::Counter,
            expected: ThrottleState,
            new: ThrottleState,
        ) -> Result<bool, StoreError> {
            self.inner.swap_throttle(user, counter, expected, new).await
        }
    };
    (clear_throttle) => {
        async fn clear_throttle(&self, user: &UserId, counter: multifactor::store::Counter) -> Result<(), StoreError> {
            self.inner.clear_throttle(user, counter).await
        }
    };
    (find_credential) => {
        async fn find_credential(&self, credential_id: &[u8]) -> Result<Option<DeviceRecord>, StoreError> {
            self.inner.find_credential(credential_id).await
        }
    };
    (record_webauthn_use) => {
        async fn record_webauthn_use(
            &self,
            user: &UserId,
            id: DeviceId,
            expected: u32,
            update: WebAuthnUse,
            now: UnixTime,
        ) -> Result<bool, StoreError> {
            self.inner.record_webauthn_use(user, id, expected, update, now).await
        }
    };
    (insert_ceremony) => {
        async fn insert_ceremony(&self, ceremony: CeremonyRecord) -> Result<(), StoreError> {
            self.inner.insert_ceremony(ceremony).await
        }
    };
    (take_ceremony) => {
        async fn take_ceremony(
            &self,
            id: CeremonyId,
            user: Option<&UserId>,
            kind: CeremonyKind,
            now: UnixTime,
        ) -> Result<Option<CeremonyRecord>, StoreError> {
            self.inner.take_ceremony(id, user, kind, now).await
        }
    };
    (purge_expired_ceremonies) => {
        async fn purge_expired_ceremonies(&self, now: UnixTime) -> Result<u64, StoreError> {
            self.inner.purge_expired_ceremonies(now).await
        }
    };
    // All five WebAuthn operations.
    (webauthn_ops) => {
        $crate::forward!(
            find_credential,
            record_webauthn_use,
            insert_ceremony,
            take_ceremony,
            purge_expired_ceremonies,
        );
    };
    ($($method:ident),+ $(,)?) => {
        $(forward!($method);)+
    };
}
