//! Remember-this-device tokens: issue after a verified factor, check, list, revoke.

use crate::audit::{AuditKind, RevokeReason};
use crate::clock::Clock;
use crate::error::{Error, MisuseError, SealError};
use crate::id::{TrustedDeviceId, UserId};
use crate::rng::Rng;
use crate::service::{Mfa, Verified};
use crate::store::DeviceStore;
use crate::trusted_device::{self, TrustedDeviceRecord, TrustedDeviceToken};

impl<S: DeviceStore, C: Clock, R: Rng> Mfa<S, C, R> {
    /// Issues a remember-this-device token for the user a factor was just verified for (the
    /// [`Verified`] of an accepted sign-in is the proof). Store the token in an HttpOnly,
    /// Secure cookie; it expires after 30 days by default.
    ///
    /// # Errors
    ///
    /// [`MisuseError::NotASignIn`] for the proof of a TOTP confirmation or a registration; RNG
    /// and store errors.
    pub async fn issue_trusted_device(&self, verified: &Verified) -> Result<TrustedDeviceToken, Error> {
        if !verified.is_sign_in() {
            return Err(MisuseError::NotASignIn.into());
        }
        let user = verified.user();
        let id = TrustedDeviceId::generate(&self.rng)?;
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        self.rng.try_fill_bytes(secret.as_mut())?;
        let key_id = self.keys.current_id().clone();
        let key = self
            .keys
            .mac_key(&key_id, crate::seal::TRUSTED_DEVICE_PURPOSE)
            .ok_or_else(|| SealError::UnknownKey(key_id.as_str().to_owned()))?;
        let now = self.clock.now();
        let expires_at = now.plus_secs(self.config.trusted_devices.ttl_secs());
        self.store
            .insert_trusted_device(TrustedDeviceRecord {
                id,
                user: user.clone(),
                key_id,
                hash: trusted_device::hash(key, id, user, expires_at, &secret),
                created_at: now,
                expires_at,
                last_used_at: None,
            })
            .await?;
        self.emit(self.event(Some(user), AuditKind::TrustedDeviceIssued).trusted(id));
        Ok(TrustedDeviceToken {
            id,
            token: trusted_device::format(id, &secret),
            expires_at,
        })
    }

    /// Checks a remember-this-device token presented for `user`: true if it is theirs, not
    /// expired, not revoked, and its secret matches (compared in constant time). A malformed,
    /// unknown, foreign or expired token is simply `false`.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn check_trusted_device(&self, user: &UserId, token: &str) -> Result<bool, Error> {
        let Ok((id, secret)) = trusted_device::parse(token) else {
            return Ok(false);
        };
        let Some(record) = self.store.trusted_device(id).await? else {
            return Ok(false);
        };
        let now = self.clock.now();
        if &record.user != user || record.expires_at <= now {
            return Ok(false);
        }
        let Some(key) = self.keys.mac_key(&record.key_id, crate::seal::TRUSTED_DEVICE_PURPOSE) else {
            // Issued under a key the ring no longer holds: it cannot be checked, so it does not count.
            return Ok(false);
        };
        if !trusted_device::matches(&record, key, &secret) {
            return Ok(false);
        }
        if !self.store.touch_trusted_device(user, id, now).await? {
            return Ok(false);
        }
        self.emit(self.event(Some(user), AuditKind::TrustedDeviceUsed).trusted(id));
        Ok(true)
    }

    /// The user's remember-this-device tokens (records only: the tokens themselves are not kept).
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn list_trusted_devices(&self, user: &UserId) -> Result<Vec<TrustedDeviceRecord>, Error> {
        Ok(self.store.list_trusted_devices(user).await?)
    }

    /// Revokes one of the user's remember-this-device tokens.
    ///
    /// # Errors
    ///
    /// [`MisuseError::DeviceNotFound`] if the user has no such token; store errors.
    pub async fn revoke_trusted_device(&self, user: &UserId, id: TrustedDeviceId) -> Result<(), Error> {
        if !self.store.delete_trusted_device(user, id).await? {
            return Err(MisuseError::DeviceNotFound.into());
        }
        self.emit(
            self.event(
                Some(user),
                AuditKind::TrustedDeviceRevoked {
                    count: 1,
                    reason: RevokeReason::Requested,
                },
            )
            .trusted(id),
        );
        Ok(())
    }

    /// Revokes all of the user's remember-this-device tokens; returns how many there were.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn revoke_all_trusted_devices(&self, user: &UserId) -> Result<u64, Error> {
        let count = self.store.delete_user_trusted_devices(user).await?;
        self.emit(self.event(
            Some(user),
            AuditKind::TrustedDeviceRevoked {
                count,
                reason: RevokeReason::Requested,
            },
        ));
        Ok(count)
    }

    /// Revokes the user's remember-this-device tokens: their methods changed.
    pub(super) async fn methods_changed(&self, user: &UserId) -> Result<(), Error> {
        self.cache.forget(user);
        let count = self.store.delete_user_trusted_devices(user).await?;
        if count > 0 {
            self.emit(self.event(
                Some(user),
                AuditKind::TrustedDeviceRevoked {
                    count,
                    reason: RevokeReason::MethodsChanged,
                },
            ));
        }
        Ok(())
    }
}
