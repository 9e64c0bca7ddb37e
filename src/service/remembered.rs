//! Browser tokens: remembered browsers (skip the second factor for a while) and known browsers
//! (a failure counter of their own): issue after a full sign-in, check, list, revoke.

use crate::audit::{AuditKind, RevokeReason};
use crate::clock::Clock;
use crate::error::{Error, MisuseError, SealError};
use crate::id::{RememberedBrowserId, UserId};
use crate::remembered_browser::{self, RememberedBrowserRecord, RememberedBrowserToken};
use crate::rng::Rng;
use crate::service::{Mfa, Verified};
use crate::store::{BrowserStore, Browsers, DeviceStore};

impl<S: DeviceStore + BrowserStore, C: Clock, R: Rng> Mfa<S, C, R> {
    /// Issues a remember-this-browser token for the user a factor was just verified for (the
    /// [`Verified`] of an accepted sign-in is the proof). Store the token in an HttpOnly,
    /// Secure cookie; it expires after 30 days by default.
    ///
    /// # Errors
    ///
    /// [`MisuseError::NotASignIn`] for the proof of a TOTP confirmation or a registration; RNG
    /// and store errors.
    pub async fn remember_browser(&self, verified: &Verified) -> Result<RememberedBrowserToken, Error> {
        let token = self
            .issue_browser_token(verified, true, self.config.remembered_browsers.ttl_secs())
            .await?;
        self.emit(
            self.event(Some(verified.user()), AuditKind::RememberedBrowserIssued)
                .remembered_browser(token.id),
        );
        Ok(token)
    }

    /// Issues a known-browser token after a full sign-in (the [`Verified`] of an accepted
    /// second factor, or of a passwordless passkey sign-in with user verification), and
    /// retires `previous`, the token this browser presented, if it is the user's: call it after
    /// every full sign-in and store the new token in an HttpOnly, Secure cookie of its own
    /// (beside, not instead of, a remembered-browser cookie). It expires after 180 days by
    /// default.
    ///
    /// With it, [`Mfa::verify_totp_from`] charges this browser's failures to a counter of its
    /// own: the owner's browser is never held back by an attacker's guesses elsewhere. Since
    /// every full sign-in replaces the token, a stolen copy is worth at most
    /// [`KnownBrowserPolicy::failures`](crate::throttle::KnownBrowserPolicy::failures)
    /// evaluated guesses, however often the owner signs in. Hosts without cookies (CLIs, API
    /// clients) need none of this: no token means an unknown browser.
    ///
    /// # Errors
    ///
    /// [`MisuseError::NotASignIn`] for the proof of a TOTP confirmation or a registration (a
    /// passwordless sign-in always verified the user); RNG and store errors.
    pub async fn know_browser(
        &self,
        verified: &Verified,
        previous: Option<&str>,
    ) -> Result<RememberedBrowserToken, Error> {
        let user = verified.user();
        let token = self
            .issue_browser_token(verified, false, self.config.known_browsers.ttl_secs())
            .await?;
        if let Some(previous) = previous
            && let Ok((id, secret)) = remembered_browser::parse(previous)
            && id != token.id
        {
            // Only a known browser of this user's is retired, with its counters, and only on
            // its whole token (the id alone proves nothing).
            let known = self.store.remembered_browser(id).await?.is_some_and(|r| {
                &r.user == user
                    && !r.skips_second_factor
                    && self
                        .keys
                        .mac_key(&r.key_id, crate::seal::REMEMBERED_BROWSER_PURPOSE)
                        .is_some_and(|key| remembered_browser::matches(&r, key, &secret))
            });
            if known && self.store.delete_remembered_browser(user, id).await? {
                self.cache.forget_browser(user, id);
            }
        }
        self.emit(
            self.event(Some(user), AuditKind::KnownBrowserIssued)
                .remembered_browser(token.id),
        );
        Ok(token)
    }

    /// Issues and stores a browser token of either kind.
    async fn issue_browser_token(
        &self,
        verified: &Verified,
        skips_second_factor: bool,
        ttl_secs: u64,
    ) -> Result<RememberedBrowserToken, Error> {
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
        let expires_at = now.plus_secs(ttl_secs);
        self.store
            .insert_remembered_browser(RememberedBrowserRecord {
                id,
                user: user.clone(),
                key_id,
                hash: remembered_browser::hash(key, id, user, expires_at, skips_second_factor, &secret),
                created_at: now,
                expires_at,
                last_used_at: None,
                skips_second_factor,
            })
            .await?;
        Ok(RememberedBrowserToken {
            id,
            token: remembered_browser::format(id, &secret),
            expires_at,
        })
    }

    /// Checks a remember-this-browser token presented for `user`: true if it is theirs, a
    /// remembered browser's (a known-browser token never skips the second factor), not
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
        if &record.user != user || !record.skips_second_factor || record.expires_at <= now {
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
        self.emit(
            self.event(Some(user), AuditKind::RememberedBrowserUsed)
                .remembered_browser(id),
        );
        Ok(true)
    }

    /// The user's remember-this-browser tokens (records only: the tokens themselves are not kept).
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn list_remembered_browsers(&self, user: &UserId) -> Result<Vec<RememberedBrowserRecord>, Error> {
        self.list_browsers(user, Browsers::Remembered).await
    }

    /// The user's known browsers (records only), oldest first: for a settings page that lets
    /// the user revoke them ([`Mfa::revoke_remembered_browser`] takes either kind's id).
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn list_known_browsers(&self, user: &UserId) -> Result<Vec<RememberedBrowserRecord>, Error> {
        self.list_browsers(user, Browsers::Known).await
    }

    async fn list_browsers(&self, user: &UserId, which: Browsers) -> Result<Vec<RememberedBrowserRecord>, Error> {
        let mut list = self.store.list_remembered_browsers(user).await?;
        list.retain(|r| which.includes(r));
        Ok(list)
    }

    /// Revokes one of the user's browser tokens, remembered or known (a known browser's own
    /// failure counters go with it).
    ///
    /// # Errors
    ///
    /// [`MisuseError::DeviceNotFound`] if the user has no such token; store errors.
    pub async fn revoke_remembered_browser(&self, user: &UserId, id: RememberedBrowserId) -> Result<(), Error> {
        if !self.store.delete_remembered_browser(user, id).await? {
            return Err(MisuseError::DeviceNotFound.into());
        }
        self.cache.forget_browser(user, id);
        self.emit(
            self.event(
                Some(user),
                AuditKind::RememberedBrowserRevoked {
                    count: 1,
                    reason: RevokeReason::Requested,
                },
            )
            .remembered_browser(id),
        );
        Ok(())
    }

    /// Revokes all of the user's remember-this-browser tokens; returns how many there were.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn revoke_all_remembered_browsers(&self, user: &UserId) -> Result<u64, Error> {
        self.revoke_all(user, Browsers::Remembered).await
    }

    /// Revokes all of the user's known browsers (and their own counters); returns how many
    /// there were. Their next sign-in counts as from an unknown browser until it completes.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn revoke_all_known_browsers(&self, user: &UserId) -> Result<u64, Error> {
        self.revoke_all(user, Browsers::Known).await
    }

    async fn revoke_all(&self, user: &UserId, which: Browsers) -> Result<u64, Error> {
        let count = self.store.delete_user_remembered_browsers(user, which).await?;
        self.cache.forget(user);
        self.emit(self.event(
            Some(user),
            AuditKind::RememberedBrowserRevoked {
                count,
                reason: RevokeReason::Requested,
            },
        ));
        Ok(count)
    }

    /// Revokes the user's remember-this-browser tokens: their devices changed. Known browsers
    /// stay known (they skip nothing, and the owner's browser must keep its own counter).
    pub(super) async fn devices_changed(&self, user: &UserId) -> Result<(), Error> {
        self.cache.forget(user);
        let count = self
            .store
            .delete_user_remembered_browsers(user, Browsers::Remembered)
            .await?;
        if count > 0 {
            self.emit(self.event(
                Some(user),
                AuditKind::RememberedBrowserRevoked {
                    count,
                    reason: RevokeReason::DevicesChanged,
                },
            ));
        }
        Ok(())
    }
}
