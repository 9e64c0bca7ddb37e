//! Remember-this-browser tokens: issue after a verified factor, check, list, revoke.

use crate::audit::{AuditKind, RevokeReason};
use crate::clock::Clock;
use crate::error::{Error, MisuseError, SealError};
use crate::id::{RememberedBrowserId, UserId};
use crate::remembered_browser::{self, RememberedBrowserRecord, RememberedBrowserToken};
use crate::rng::Rng;
use crate::service::{Mfa, Verified};
use crate::store::DeviceStore;

impl<S: DeviceStore, C: Clock, R: Rng> Mfa<S, C, R> {
    /// Issues a remember-this-browser token for the user a factor was just verified for (the
    /// [`Verified`] of an accepted sign-in is the proof). Store the token in an HttpOnly,
    /// Secure cookie; it expires after 30 days by default.
    ///
    /// # Errors
    ///
    /// [`MisuseError::NotASignIn`] for the proof of a TOTP confirmation or a registration; RNG
    /// and store errors.
    pub async fn remember_browser(&self, verified: &Verified) -> Result<RememberedBrowserToken, Error> {
        if !verified.is_sign_in() {
            return Err(MisuseError::NotASignIn.into());
        }
        let user = verified.user();
        let id = RememberedBrowserId::generate(&self.rng)?;
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        self.rng.try_fill_bytes(secret.as_mut())?;
        let key_id = self.keys.current_id().clone();
        let key = self
            .keys
            .mac_key(&key_id, crate::seal::REMEMBERED_BROWSER_PURPOSE)
            .ok_or_else(|| SealError::UnknownKey(key_id.as_str().to_owned()))?;
        let now = self.clock.now();
        let expires_at = now.plus_secs(self.config.remembered_browsers.ttl_secs());
        self.store
            .insert_remembered_browser(RememberedBrowserRecord {
                id,
                user: user.clone(),
                key_id,
                hash: remembered_browser::hash(key, id, user, expires_at, &secret),
                created_at: now,
                expires_at,
                last_used_at: None,
            })
            .await?;
        self.emit(self.event(Some(user), AuditKind::RememberedBrowserIssued).trusted(id));
        Ok(RememberedBrowserToken {
            id,
            token: remembered_browser::format(id, &secret),
            expires_at,
        })
    }

    /// Checks a remember-this-browser token presented for `user`: true if it is theirs, not
    /// expired, not revoked, and its secret matches (compared in constant time). A malformed,
    /// unknown, foreign or expired token is simply `false`.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn check_remembered_browser(&self, user: &UserId, token: &str) -> Result<bool, Error> {
        let Ok((id, secret)) = remembered_browser::parse(token) else {
            return Ok(false);
        };
        let Some(record) = self.store.remembered_browser(id).await? else {
            return Ok(false);
        };
        let now = self.clock.now();
        if &record.user != user || record.expires_at <= now {
            return Ok(false);
        }
        let Some(key) = self
            .keys
            .mac_key(&record.key_id, crate::seal::REMEMBERED_BROWSER_PURPOSE)
        else {
            // Issued under a key the ring no longer holds: it cannot be checked, so it does not count.
            return Ok(false);
        };
        if !remembered_browser::matches(&record, key, &secret) {
            return Ok(false);
        }
        if !self.store.touch_remembered_browser(user, id, now).await? {
            return Ok(false);
        }
        self.emit(self.event(Some(user), AuditKind::RememberedBrowserUsed).trusted(id));
        Ok(true)
    }

    /// The user's remember-this-browser tokens (records only: the tokens themselves are not kept).
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn list_remembered_browsers(&self, user: &UserId) -> Result<Vec<RememberedBrowserRecord>, Error> {
        Ok(self.store.list_remembered_browsers(user).await?)
    }

    /// Revokes one of the user's remember-this-browser tokens.
    ///
    /// # Errors
    ///
    /// [`MisuseError::DeviceNotFound`] if the user has no such token; store errors.
    pub async fn revoke_remembered_browser(&self, user: &UserId, id: RememberedBrowserId) -> Result<(), Error> {
        if !self.store.delete_remembered_browser(user, id).await? {
            return Err(MisuseError::DeviceNotFound.into());
        }
        self.emit(
            self.event(
                Some(user),
                AuditKind::RememberedBrowserRevoked {
                    count: 1,
                    reason: RevokeReason::Requested,
                },
            )
            .trusted(id),
        );
        Ok(())
    }

    /// Revokes all of the user's remember-this-browser tokens; returns how many there were.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn revoke_all_remembered_browsers(&self, user: &UserId) -> Result<u64, Error> {
        let count = self.store.delete_user_remembered_browsers(user).await?;
        self.emit(self.event(
            Some(user),
            AuditKind::RememberedBrowserRevoked {
                count,
                reason: RevokeReason::Requested,
            },
        ));
        Ok(count)
    }

    /// Revokes the user's remember-this-browser tokens: their devices changed.
    pub(super) async fn devices_changed(&self, user: &UserId) -> Result<(), Error> {
        self.cache.forget(user);
        let count = self.store.delete_user_remembered_browsers(user).await?;
        if count > 0 {
            self.emit(self.event(
                Some(user),
                AuditKind::RememberedBrowserRevoked {
                    count,
                    reason: RevokeReason::MethodsChanged,
                },
            ));
        }
        Ok(())
    }
}
