//! TOTP and its counter-based sibling HOTP: enroll, resume an unconfirmed enrollment, confirm,
//! verify, resynchronise, import.

use crate::audit::AuditKind;
use crate::clock::{Clock, UnixTime};
use crate::error::{Error, InputError, MisuseError, StoreError};
use crate::id::{DeviceId, DeviceName, UserId};
use crate::kind::{DeviceKind, Factor};
use crate::rng::Rng;
use crate::seal::SealContext;
use crate::secret::SecretBytes;
use crate::store::{BrowserStore, DeviceData, DeviceRecord, DeviceStore, Hit};
use crate::throttle::Gate;
use crate::totp::uri;
use crate::totp::{self, TotpEnrollment, TotpMatch, TotpParams, TotpRecord};

use super::settle::{Admission, Attempt, Settled, Settling};
use super::{Mfa, Outcome};

impl<S: DeviceStore + BrowserStore, C: Clock, R: Rng> Mfa<S, C, R> {
    // ----- TOTP -------------------------------------------------------------------------------

    /// Starts a TOTP enrollment: a new random secret, sealed and stored on an unconfirmed device.
    /// `account` is the label the app shows under the issuer (an email address, a user name).
    ///
    /// Earlier enrollments of this user that were never confirmed are removed.
    ///
    /// # Errors
    ///
    /// [`InputError::AccountName`] or [`InputError::DeviceName`] for bad labels;
    /// [`MisuseError::TooManyTotpDevices`] if the user has [`totp::MAX_DEVICES`] confirmed ones;
    /// sealing, RNG and store errors.
    pub async fn enroll_totp(&self, user: &UserId, account: &str, name: Option<&str>) -> Result<TotpEnrollment, Error> {
        let params = self.config.totp.params;
        self.enroll_otp(user, account, name.unwrap_or(DeviceKind::Totp.default_name()), params)
            .await
    }

    /// Starts a counter-based (HOTP, RFC 4226) enrollment, as [`Mfa::enroll_totp`] does: the
    /// key URI is `otpauth://hotp/…&counter=0`, and the device is confirmed with its first code
    /// ([`Mfa::confirm_totp`]). Codes follow the device's counter, not the clock: each is
    /// accepted once, in order, within the look-ahead window
    /// ([`TotpConfig::with_look_ahead`](crate::totp::TotpConfig::with_look_ahead)); one far ahead is
    /// brought back with two consecutive codes ([`Mfa::resync_otp`]). It verifies and
    /// throttles as an authenticator app ([`Mfa::verify_totp`]), with each failure charged for
    /// every code of its window.
    ///
    /// # Errors
    ///
    /// As [`Mfa::enroll_totp`].
    pub async fn enroll_hotp(&self, user: &UserId, account: &str, name: Option<&str>) -> Result<TotpEnrollment, Error> {
        let totp = self.config.totp.params;
        let params = TotpParams::hotp(totp.algorithm(), totp.digits())?;
        self.enroll_otp(user, account, name.unwrap_or(HOTP_NAME), params).await
    }

    async fn enroll_otp(
        &self,
        user: &UserId,
        account: &str,
        name: &str,
        params: TotpParams,
    ) -> Result<TotpEnrollment, Error> {
        let account = validate_account(account)?;
        let name = DeviceName::new(name)?;
        self.room_for_totp(user).await?;
        self.devices_changed(user).await?;
        let mut secret = vec![0u8; self.config.totp.secret_len];
        self.rng.try_fill_bytes(&mut secret)?;
        let secret = SecretBytes::new(secret);
        let record = self.totp_record(user, name, &secret, params, None, false)?;
        let id = record.id;
        self.store.insert_device(record).await?;
        // One conditional delete: an older enrollment confirmed meanwhile is kept.
        self.store.delete_unconfirmed_totp(user, id).await?;
        self.cache.forget(user);
        self.emit(self.event(Some(user), AuditKind::Enrolled).device(id, DeviceKind::Totp));
        Ok(TotpEnrollment {
            device: id,
            secret_base32: totp::encode_base32_secret(&secret),
            key_uri: uri::build(&self.config.totp.issuer, account, &secret, &params),
        })
    }

    /// The enrollment of a TOTP device that is still waiting for its first code, again: the same
    /// secret, key URI and QR code as [`Mfa::enroll_totp`] returned. A person who mistyped the
    /// first code is shown the setup again without re-scanning, and the host need not keep the
    /// secret between the two requests. `account` is the label passed to `enroll_totp`.
    ///
    /// # Errors
    ///
    /// [`MisuseError::DeviceNotFound`] if `user` has no such device (it was replaced by a newer
    /// enrollment, or deleted), [`MisuseError::WrongKind`], [`MisuseError::AlreadyConfirmed`]
    /// once it is confirmed (the secret is never shown again then); [`InputError::AccountName`];
    /// sealing and store errors.
    pub async fn resume_totp_enrollment(
        &self,
        user: &UserId,
        device: DeviceId,
        account: &str,
    ) -> Result<TotpEnrollment, Error> {
        let account = validate_account(account)?;
        let record = self
            .store
            .device(user, device)
            .await?
            .ok_or(MisuseError::DeviceNotFound)?;
        let DeviceData::Totp(totp_record) = &record.data else {
            return Err(MisuseError::WrongKind {
                expected: DeviceKind::Totp,
                found: record.kind(),
            }
            .into());
        };
        if record.confirmed {
            return Err(MisuseError::AlreadyConfirmed.into());
        }
        let secret = SecretBytes::from(
            self.keys
                .open(&totp_context(user, device), &totp_record.sealed_secret)?,
        );
        Ok(TotpEnrollment {
            device,
            secret_base32: totp::encode_base32_secret(&secret),
            key_uri: uri::build(&self.config.totp.issuer, account, &secret, &totp_record.params),
        })
    }

    /// Confirms an enrollment with the first code from the app. That code counts as used.
    ///
    /// # Errors
    ///
    /// [`MisuseError::DeviceNotFound`], [`MisuseError::WrongKind`] or
    /// [`MisuseError::AlreadyConfirmed`]; [`InputError::CodeFormat`] for a code of the wrong
    /// shape (not counted as an attempt); sealing and store errors.
    pub async fn confirm_totp(&self, user: &UserId, device: DeviceId, code: &str) -> Result<Outcome, Error> {
        let settled: Result<Settled, Error> = async {
            let record = self
                .store
                .device(user, device)
                .await?
                .ok_or(MisuseError::DeviceNotFound)?;
            let DeviceData::Totp(totp_record) = &record.data else {
                return Err(MisuseError::WrongKind {
                    expected: DeviceKind::Totp,
                    found: record.kind(),
                }
                .into());
            };
            if record.confirmed {
                return Err(MisuseError::AlreadyConfirmed.into());
            }
            totp::check_shape(code, std::slice::from_ref(&totp_record.params))?;
            // A confirmation is charged to the user's counter for unknown browsers.
            let admission = Admission {
                browser: None,
                state: self.store.throttle(user, Factor::Totp.into()).await?,
            };
            let now = self.clock.now();
            if let Some(refused) = self.refusal(Gate::Guessable, &admission, now) {
                return Ok(Settled::plain(refused));
            }
            let (hit, reused) = self.evaluate_totp(user, &[(record.id, totp_record, None)], code, now)?;
            let attempt = Attempt {
                factor: Factor::Totp,
                gate: Gate::Guessable,
                hit,
                reused,
                now,
                version: None,
                miss: None,
                weight: self.config.totp.guess_weight(&totp_record.params),
                kind: DeviceKind::Totp,
            };
            self.settle_confirmation(user, admission, &attempt).await
        }
        .await;
        self.confirmed(user, settled).await
    }

    /// Confirms the user's enrollment of an authenticator app that is waiting for its first
    /// code, as [`Mfa::confirm_totp`] does, without the host keeping its device id between the
    /// two requests: a user has at most one (each [`Mfa::enroll_totp`] or
    /// [`Mfa::enroll_hotp`] removes the earlier ones that were never confirmed).
    ///
    /// # Errors
    ///
    /// [`MisuseError::DeviceNotFound`] if no app enrollment is waiting (none was started, it
    /// was confirmed, or a newer one replaced it in between); otherwise as
    /// [`Mfa::confirm_totp`].
    pub async fn confirm_pending_totp(&self, user: &UserId, code: &str) -> Result<Outcome, Error> {
        let pending = self
            .store
            .list_devices(user)
            .await?
            .into_iter()
            .rev()
            .find(|d| !d.confirmed && matches!(d.data, DeviceData::Totp(_)))
            .ok_or(MisuseError::DeviceNotFound)?;
        self.confirm_totp(user, pending.id, code).await
    }

    /// Settles the first code of an enrollment (an app, an email address or a phone number)
    /// against the counter for unknown browsers: an acceptance is proof of the enrollment, not
    /// of a sign-in.
    pub(super) async fn settle_confirmation(
        &self,
        user: &UserId,
        admission: Admission,
        attempt: &Attempt,
    ) -> Result<Settled, Error> {
        let mut settled = match self.settle(user, admission, attempt).await? {
            Settling::Accepted(settled, _) => {
                // The user's one-time-code devices changed: a cached copy is stale now.
                self.cache.forget(user);
                settled
            }
            Settling::Answered(settled, _) => settled,
            Settling::Stale | Settling::NoLongerKnown => {
                return Err(StoreError::InvalidRecord("a settlement without a digest or browser was stale").into());
            }
        };
        if let Outcome::Accepted(v) = settled.outcome {
            // Proof of an enrollment, not of a sign-in.
            settled.outcome = Outcome::Accepted(v.enrollment());
        }
        Ok(settled)
    }

    /// The outcome of a confirmation, audited; an accepted one ends the remembered browsers
    /// (they were trusted for the devices as they were).
    pub(super) async fn confirmed(&self, user: &UserId, settled: Result<Settled, Error>) -> Result<Outcome, Error> {
        let settled = settled?;
        if settled.outcome.is_accepted() {
            self.devices_changed(user).await?;
        }
        Ok(self.audited(Some(user), Factor::Totp, AuditKind::Confirmed, settled))
    }

    /// Verifies a code against each of the user's confirmed TOTP devices.
    ///
    /// # Errors
    ///
    /// [`InputError::CodeFormat`] for a code of the wrong shape (not counted as an attempt);
    /// sealing and store errors. A wrong code is `Ok(Outcome::Rejected)`, not an error, and so
    /// is any code of a user with no confirmed TOTP device: a person who picks "authenticator
    /// app" without one gets the ordinary refusal, not counted (there is nothing a guess could
    /// win).
    pub async fn verify_totp(&self, user: &UserId, code: &str) -> Result<Outcome, Error> {
        self.verify_totp_from(user, code, None).await
    }

    /// Verifies a code as [`Mfa::verify_totp`] does, from the browser that presented
    /// `known_browser` (the value of its known-browser cookie, see [`Mfa::know_browser`]). A
    /// live known-browser token of this user's has a failure counter of its own, which nobody
    /// without the token can fill: the owner's own browser is never held back by someone
    /// else's guesses. Without one (`None`, or a token that is malformed, foreign, expired,
    /// revoked or has taken its failures), the attempt counts as from an unknown browser.
    ///
    /// # Errors
    ///
    /// As [`Mfa::verify_totp`]. A bad token is never an error.
    pub async fn verify_totp_from(
        &self,
        user: &UserId,
        code: &str,
        known_browser: Option<&str>,
    ) -> Result<Outcome, Error> {
        let settled = self
            .verify_code(user, super::settle::Codes::Apps, code, known_browser)
            .await?;
        Ok(self.audited(
            Some(user),
            Factor::Totp,
            AuditKind::Verified { recovery: false },
            settled,
        ))
    }

    /// Brings an authenticator back in step with two consecutive codes it shows now, `first`
    /// and `second`: a counter-based (HOTP) device whose counter ran far ahead (its button
    /// pressed many times without signing in), looked for within the configured distance after
    /// the last accepted counter ([`TotpConfig::with_resync_limit`](crate::totp::TotpConfig::with_resync_limit),
    /// default 1,000); or a time-based device whose clock is further off than the window
    /// reaches, looked for within the configured steps either side
    /// ([`TotpConfig::with_resync_steps`](crate::totp::TotpConfig::with_resync_steps), default 20),
    /// after which the window follows its clock. The device moves to the second code in the
    /// same settled operation that charges a wrong pair (once: two codes together are a far
    /// weaker guess than one). Neither code, nor any before them, is accepted again.
    ///
    /// # Errors
    ///
    /// [`MisuseError::DeviceNotFound`]; [`MisuseError::WrongKind`] for a device that is not a
    /// confirmed authenticator; [`InputError::CodeFormat`] for a code of the wrong shape (not
    /// counted); sealing and store errors. A pair that does not match is
    /// `Ok(Outcome::Rejected)`.
    pub async fn resync_otp(
        &self,
        user: &UserId,
        device: DeviceId,
        first: &str,
        second: &str,
    ) -> Result<Outcome, Error> {
        let settled: Result<Settled, Error> = async {
            let record = self
                .store
                .device(user, device)
                .await?
                .ok_or(MisuseError::DeviceNotFound)?;
            let otp = match &record.data {
                DeviceData::Totp(t) if record.confirmed => t,
                _ => {
                    return Err(MisuseError::WrongKind {
                        expected: DeviceKind::Totp,
                        found: record.kind(),
                    }
                    .into());
                }
            };
            totp::check_shape(first, std::slice::from_ref(&otp.params))?;
            totp::check_shape(second, std::slice::from_ref(&otp.params))?;
            let admission = Admission {
                browser: None,
                state: self.store.throttle(user, Factor::Totp.into()).await?,
            };
            let now = self.clock.now();
            if let Some(refused) = self.refusal(Gate::Guessable, &admission, now) {
                return Ok(Settled::plain(refused));
            }
            let secret = SecretBytes::from(self.keys.open(&totp_context(user, device), &otp.sealed_secret)?);
            let step = if otp.params.is_counter_based() {
                totp::resync_counter(
                    &secret,
                    &otp.params,
                    self.config.totp.resync_limit,
                    otp.last_step,
                    first,
                    second,
                )?
            } else {
                let centre = self
                    .config
                    .totp
                    .centre(&otp.params, otp.last_step, record.last_used_at, now);
                let reach = u64::from(self.config.totp.resync_steps);
                // Both codes above the last accepted step.
                let from = centre
                    .saturating_sub(reach)
                    .max(otp.last_step.map_or(0, |s| s.saturating_add(1)));
                let to = centre.saturating_add(reach);
                if from > to {
                    None
                } else {
                    totp::find_pair(&secret, &otp.params, from, to, first, second)?
                }
            };
            let attempt = Attempt {
                factor: Factor::Totp,
                gate: Gate::Guessable,
                hit: step.map(|step| Hit::TotpStep { device, step }),
                reused: false,
                now,
                version: None,
                miss: None,
                weight: 1,
                kind: DeviceKind::Totp,
            };
            match self.settle(user, admission, &attempt).await? {
                Settling::Accepted(settled, _) => {
                    self.cache.forget(user);
                    Ok(settled)
                }
                Settling::Answered(settled, _) => Ok(settled),
                Settling::Stale | Settling::NoLongerKnown => {
                    Err(StoreError::InvalidRecord("a settlement without a digest or browser was stale").into())
                }
            }
        }
        .await;
        Ok(self.audited(
            Some(user),
            Factor::Totp,
            AuditKind::Verified { recovery: false },
            settled?,
        ))
    }

    /// Refuses a new TOTP device for a user who has [`totp::MAX_DEVICES`] confirmed ones. (Two
    /// enrollments racing past the check cost nothing in guessing: every device a code is
    /// checked against is charged.)
    async fn room_for_totp(&self, user: &UserId) -> Result<(), Error> {
        let confirmed = self
            .store
            .list_devices(user)
            .await?
            .iter()
            .filter(|d| d.confirmed && matches!(d.data, DeviceData::Totp(_)))
            .count();
        if confirmed >= totp::MAX_DEVICES {
            return Err(MisuseError::TooManyTotpDevices.into());
        }
        Ok(())
    }

    /// A new TOTP device of `user`: a fresh id, the secret sealed to it, its fingerprint.
    pub(super) fn totp_record(
        &self,
        user: &UserId,
        name: DeviceName,
        secret: &SecretBytes,
        params: TotpParams,
        last_step: Option<u64>,
        confirmed: bool,
    ) -> Result<DeviceRecord, Error> {
        let id = DeviceId::generate(&self.rng)?;
        let sealed_secret = self
            .keys
            .seal(&self.rng, &totp_context(user, id), secret.expose_secret())?;
        let fingerprint = self.totp_fingerprint(user, secret.expose_secret())?;
        Ok(DeviceRecord::new(
            id,
            user,
            name,
            self.clock.now(),
            confirmed,
            DeviceData::Totp(TotpRecord {
                params,
                sealed_secret,
                last_step,
                fingerprint: Some(fingerprint),
            }),
        ))
    }

    /// Evaluates a code against TOTP devices (with the time each was last used): the step it
    /// matched on the first device where it is fresh (if any), and whether it matched an already
    /// accepted step of one.
    pub(super) fn evaluate_totp(
        &self,
        user: &UserId,
        devices: &[(DeviceId, &TotpRecord, Option<UnixTime>)],
        code: &str,
        now: UnixTime,
    ) -> Result<(Option<Hit>, bool), Error> {
        let mut hit = None;
        let mut reused = false;
        for (id, record, last_used_at) in devices {
            let secret = SecretBytes::from(self.keys.open(&totp_context(user, *id), &record.sealed_secret)?);
            // A shape this device does not take (another device's digits) is no match either.
            let evaluated = if record.params.is_counter_based() {
                totp::evaluate_counter(
                    &secret,
                    &record.params,
                    self.config.totp.look_ahead,
                    record.last_step,
                    code,
                )
            } else {
                // The window follows the device's clock, as its last accepted code showed.
                totp::evaluate_around(
                    &secret,
                    &record.params,
                    self.config.totp.window,
                    record.last_step,
                    self.config
                        .totp
                        .centre(&record.params, record.last_step, *last_used_at, now),
                    code,
                )
            };
            match evaluated {
                Ok(TotpMatch::Fresh(step)) if hit.is_none() => hit = Some(Hit::TotpStep { device: *id, step }),
                Ok(TotpMatch::Reused) => reused = true,
                _ => {}
            }
        }
        Ok((hit, reused))
    }
}

/// The name a new counter-based device gets when the user gives none.
pub(super) const HOTP_NAME: &str = "Authenticator (HOTP)";

pub(crate) fn totp_context(user: &UserId, device: DeviceId) -> SealContext<'_> {
    SealContext {
        purpose: crate::seal::TOTP_SECRET_PURPOSE,
        user,
        device,
    }
}

/// The account label an authenticator app shows under the issuer: 1 to 255 characters.
fn validate_account(account: &str) -> Result<&str, InputError> {
    crate::id::label(account, 255).ok_or(InputError::AccountName)
}

impl<S, C, R> Mfa<S, C, R> {
    /// The fingerprint of `secret` for `user` under the current key (see
    /// [`TotpRecord::fingerprint`]).
    pub(super) fn totp_fingerprint(&self, user: &UserId, secret: &[u8]) -> Result<[u8; 32], Error> {
        let key = self
            .keys
            .mac_key(self.keys.current_id(), crate::seal::TOTP_FINGERPRINT_PURPOSE)
            .ok_or(Error::Seal(crate::error::SealError::UnknownKey(
                self.keys.current_id().as_str().to_owned(),
            )))?;
        Ok(totp::fingerprint(key, user, secret))
    }
}
