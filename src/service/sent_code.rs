//! Codes sent by email or SMS: enroll a destination, send a code, confirm, verify.

use subtle::ConstantTimeEq;

use crate::audit::AuditKind;
use crate::clock::{Clock, UnixTime};
use crate::error::{Error, InputError, MisuseError, StoreError};
use crate::id::{DeviceId, DeviceName, UserId};
use crate::kind::{DeviceKind, Factor};
use crate::rng::Rng;
use crate::seal::SealContext;
use crate::secret::SecretString;
use crate::sent_code::{self, Channel, IssuedCode, SentCode, SentCodeRecord};
use crate::store::{BrowserStore, DeviceData, DeviceRecord, DeviceStore, Hit};
use crate::throttle::{Counter, Gate};

use super::cache::View;
use super::settle::{Admission, Attempt, Codes, Evaluated, Settled};
use super::{Mfa, Outcome};

/// Sends of one code a call makes before concurrent sends to the same destination count as
/// the limit being reached.
const SEND_RETRIES: usize = 4;

impl<S: DeviceStore + BrowserStore, C: Clock, R: Rng> Mfa<S, C, R> {
    /// Adds an email address or phone number (E.164: `+44 20 7946 0958`) that receives codes,
    /// unconfirmed, and makes its first code: deliver it, then confirm the destination with it
    /// ([`Mfa::confirm_sent_code`]). The destination is stored sealed; it is personal data.
    ///
    /// Earlier one-time-code enrollments of the user that were never confirmed (an
    /// authenticator app or another destination) are removed: one waits for its first code at
    /// a time.
    ///
    /// Codes sent by email or SMS are restricted methods ([`DeviceKind::is_restricted`]): offer
    /// them beside an authenticator app or a passkey, not instead.
    ///
    /// # Errors
    ///
    /// [`InputError::Destination`] for something that is not an email address or phone
    /// number; [`InputError::DeviceName`]; [`MisuseError::TooManyDestinations`] if the user
    /// has [`MAX_DESTINATIONS`](crate::sent_code::MAX_DESTINATIONS);
    /// [`MisuseError::DuplicateDestination`] if they have this one; sealing, RNG and store
    /// errors.
    pub async fn enroll_sent_code(
        &self,
        user: &UserId,
        channel: Channel,
        destination: &str,
        name: Option<&str>,
    ) -> Result<SentCode, Error> {
        let destination = zeroize::Zeroizing::new(sent_code::normalize_destination(channel, destination)?);
        let name = DeviceName::new(name.unwrap_or(channel.kind().default_name()))?;
        let fingerprint = self.destination_fingerprint(user, channel, &destination)?;
        let devices = self.store.list_devices(user).await?;
        let destinations: Vec<&SentCodeRecord> = devices
            .iter()
            .filter_map(|d| match &d.data {
                DeviceData::SentCode(c) => Some(c),
                _ => None,
            })
            .collect();
        if destinations
            .iter()
            .any(|c| bool::from(c.fingerprint.ct_eq(&fingerprint)))
        {
            return Err(MisuseError::DuplicateDestination.into());
        }
        if destinations.len() >= sent_code::MAX_DESTINATIONS {
            return Err(MisuseError::TooManyDestinations.into());
        }
        self.devices_changed(user).await?;
        let id = DeviceId::generate(&self.rng)?;
        let sealed_destination = self
            .keys
            .seal(&self.rng, &destination_context(user, id), destination.as_bytes())?;
        let record = SentCodeRecord {
            channel,
            sealed_destination,
            fingerprint,
            last_serial: None,
            issued: None,
        };
        let inserted = self
            .store
            .insert_device(DeviceRecord::new(
                id,
                user,
                name,
                self.clock.now(),
                false,
                DeviceData::SentCode(record.clone()),
            ))
            .await;
        match inserted {
            // The one conflict a fresh random id can meet: the destination, added concurrently.
            Err(StoreError::Conflict) => return Err(MisuseError::DuplicateDestination.into()),
            other => other?,
        }
        // One conditional delete: an older enrollment confirmed meanwhile is kept.
        self.store.delete_unconfirmed_totp(user, id).await?;
        self.cache.forget(user);
        self.emit(self.event(Some(user), AuditKind::Enrolled).device(id, channel.kind()));
        self.issue(user, id, &record, &destination).await
    }

    /// Sends a code to one of the user's email addresses or phone numbers: to sign in with
    /// ([`Mfa::verify_sent_code`]), or again during its enrollment. The code replaces any
    /// earlier one sent there (at most one is live per destination), works once, and expires
    /// after [`SentCodePolicy::ttl_secs`](crate::sent_code::SentCodePolicy::ttl_secs)
    /// (default 10 minutes).
    ///
    /// Sends are limited per destination ([`SentCodePolicy::with_sends`](crate::sent_code::SentCodePolicy::with_sends):
    /// by default 30 s apart, unless the last code was used, and 5 an hour), so nobody can
    /// turn the host into a mail or SMS
    /// cannon aimed at one inbox or phone; a refused send changes nothing. Resending buys no
    /// guesses: every code is verified against the one-time-code counter.
    ///
    /// # Errors
    ///
    /// [`MisuseError::SendLimit`] with the time of the next allowed send;
    /// [`MisuseError::DeviceNotFound`]; [`MisuseError::WrongKind`] for a device that is not an
    /// email address or phone number; sealing, RNG and store errors.
    pub async fn send_code(&self, user: &UserId, device: DeviceId) -> Result<SentCode, Error> {
        let record = self
            .store
            .device(user, device)
            .await?
            .ok_or(MisuseError::DeviceNotFound)?;
        let DeviceData::SentCode(sent) = &record.data else {
            return Err(MisuseError::WrongKind {
                expected: DeviceKind::Email,
                found: record.kind(),
            }
            .into());
        };
        let destination = self.open_destination(user, device, sent)?;
        self.issue(user, device, sent, &destination).await
    }

    /// Issues the next code to a destination, as read in `record`, by compare-and-swap over
    /// the last code sent; a concurrent send is read again and counted.
    async fn issue(
        &self,
        user: &UserId,
        device: DeviceId,
        record: &SentCodeRecord,
        destination: &str,
    ) -> Result<SentCode, Error> {
        let policy = self.config.sent_codes;
        let mut last = record.issued.clone();
        let mut last_serial = record.last_serial;
        for _ in 0..SEND_RETRIES {
            let now = self.clock.now();
            let spent = last
                .as_ref()
                .is_some_and(|c| last_serial.is_some_and(|l| l >= c.serial));
            let (window_start, sends) = policy
                .next_send(last.as_ref(), spent, now)
                .map_err(|retry_at| MisuseError::SendLimit { retry_at })?;
            let serial = last
                .as_ref()
                .map(|c| c.serial)
                .max(last_serial)
                .unwrap_or(0)
                .checked_add(1)
                .ok_or(StoreError::InvalidRecord("a destination sent 2^64 codes"))?;
            let code = sent_code::generate_code(&self.rng, policy.digits())?;
            let key_id = self.keys.current_id().clone();
            let key = self.sent_code_key(&key_id)?;
            let issued = IssuedCode {
                serial,
                digest: sent_code::code_digest(key, user, device, &record.fingerprint, serial, code.expose_secret()),
                key_id,
                issued_at: now,
                expires_at: now.plus_secs(policy.ttl_secs()),
                window_start,
                sends,
            };
            if self.store.issue_sent_code(user, device, last.as_ref(), &issued).await? {
                self.emit(
                    self.event(Some(user), AuditKind::CodeSent)
                        .device(device, record.channel.kind()),
                );
                return Ok(SentCode {
                    device,
                    channel: record.channel,
                    destination: SecretString::new(destination.to_owned()),
                    code,
                    expires_at: issued.expires_at,
                });
            }
            // Another send came first (or the device is gone): read it again.
            match self.store.device(user, device).await? {
                Some(DeviceRecord {
                    data: DeviceData::SentCode(now_stored),
                    ..
                }) => {
                    last = now_stored.issued;
                    last_serial = now_stored.last_serial;
                }
                _ => return Err(MisuseError::DeviceNotFound.into()),
            }
        }
        let retry_at = self.clock.now().plus_secs(1);
        Err(MisuseError::SendLimit { retry_at }.into())
    }

    /// Confirms an email address or phone number with the code sent there. That code counts as
    /// used. Charged to the one-time-code counter for unknown browsers, like a confirmation of
    /// an authenticator app.
    ///
    /// # Errors
    ///
    /// [`MisuseError::DeviceNotFound`], [`MisuseError::WrongKind`] or
    /// [`MisuseError::AlreadyConfirmed`]; [`InputError::CodeFormat`] for a code of the wrong
    /// shape (not counted as an attempt); sealing and store errors. A wrong, expired or
    /// superseded code is `Ok(Outcome::Rejected)`.
    pub async fn confirm_sent_code(&self, user: &UserId, device: DeviceId, code: &str) -> Result<Outcome, Error> {
        let settled: Result<Settled, Error> = async {
            let record = self
                .store
                .device(user, device)
                .await?
                .ok_or(MisuseError::DeviceNotFound)?;
            let DeviceData::SentCode(sent) = &record.data else {
                return Err(MisuseError::WrongKind {
                    expected: DeviceKind::Email,
                    found: record.kind(),
                }
                .into());
            };
            if record.confirmed {
                return Err(MisuseError::AlreadyConfirmed.into());
            }
            let digits = sent_code::canonical_code(code, self.config.sent_codes.digits()).ok_or(self.code_format())?;
            let admission = Admission {
                browser: None,
                state: self.store.throttle(user, Factor::Totp.into()).await?,
            };
            let now = self.clock.now();
            if let Some(refused) = self.refusal(Gate::Guessable, &admission, now) {
                return Ok(Settled::plain(refused));
            }
            let (hit, reused, live) = self.match_sent(user, &[(record.id, sent)], &digits, now)?;
            let attempt = Attempt {
                factor: Factor::Totp,
                gate: Gate::Guessable,
                hit,
                reused,
                now,
                version: None,
                miss: None,
                weight: live.max(1),
                kind: record.kind(),
            };
            self.settle_confirmation(user, admission, &attempt).await
        }
        .await;
        self.confirmed(user, settled).await
    }

    /// Verifies a code sent to one of the user's confirmed email addresses or phone numbers
    /// ([`Mfa::send_code`]) as a second factor. It shares the one-time-code counter, and so the
    /// guessing bound, with the user's authenticator apps.
    ///
    /// # Errors
    ///
    /// [`InputError::CodeFormat`] for a code of the wrong shape (not counted); sealing and
    /// store errors. A wrong, expired, superseded or used code is `Ok(Outcome::Rejected)`, and
    /// so is any code of a user with no confirmed email address or phone number (not counted).
    pub async fn verify_sent_code(&self, user: &UserId, code: &str) -> Result<Outcome, Error> {
        self.verify_sent_code_from(user, code, None).await
    }

    /// Verifies a sent code as [`Mfa::verify_sent_code`] does, from the browser that presented
    /// `known_browser` (see [`Mfa::verify_totp_from`]: the same known-browser counter).
    ///
    /// # Errors
    ///
    /// As [`Mfa::verify_sent_code`]. A bad token is never an error.
    pub async fn verify_sent_code_from(
        &self,
        user: &UserId,
        code: &str,
        known_browser: Option<&str>,
    ) -> Result<Outcome, Error> {
        let settled = self.verify_code(user, Codes::Sent, code, known_browser).await?;
        Ok(self.audited(
            Some(user),
            Factor::Totp,
            AuditKind::Verified { recovery: false },
            settled,
        ))
    }

    /// Evaluates a code against the live codes of the user's confirmed destinations in a view.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn evaluate_sent(
        &self,
        user: &UserId,
        view: &View,
        admission: &Admission,
        counter: &Counter,
        code: &str,
        now: UnixTime,
    ) -> Result<Evaluated, Error> {
        let sent: Vec<(DeviceId, &SentCodeRecord)> = view
            .devices
            .iter()
            .filter(|d| d.confirmed)
            .filter_map(|d| match &d.data {
                DeviceData::SentCode(c) => Some((d.id, c)),
                _ => None,
            })
            .collect();
        let Some(&(_, first)) = sent.first() else {
            // No confirmed destination: nothing a guess could win, and nothing is charged.
            return Ok(Evaluated::Refused(Outcome::Rejected));
        };
        let digits = sent_code::canonical_code(code, self.config.sent_codes.digits()).ok_or(self.code_format())?;
        let gate = Gate::Guessable;
        if let Some(refused) = self.refusal(gate, admission, now) {
            return Ok(Evaluated::Refused(refused));
        }
        let (hit, reused, live) = self.match_sent(user, &sent, &digits, now)?;
        if live == 0 {
            // No code is live: nothing a guess could win, and nothing is charged.
            return Ok(Evaluated::Refused(Outcome::Rejected));
        }
        // What a hit proves: the kind of the destination it matched.
        let matched = match hit {
            Some(Hit::TotpStep { device, .. }) => sent.iter().find(|(id, _)| *id == device).map(|(_, c)| *c),
            _ => None,
        };
        let kind = matched.unwrap_or(first).channel.kind();
        // The candidates: the devices, and the serial of each live code.
        let serials: Vec<u8> = sent
            .iter()
            .filter_map(|(_, c)| c.live_code(now))
            .flat_map(|c| c.serial.to_be_bytes())
            .collect();
        let context: [&[u8]; 2] = [&view.version.0.to_be_bytes(), &serials];
        let miss = self.miss_fingerprint(user, counter, &context, digits.as_bytes());
        Ok(Evaluated::Attempt(Attempt {
            factor: Factor::Totp,
            gate,
            hit,
            reused,
            now,
            version: Some(view.version),
            miss,
            weight: live,
            kind,
        }))
    }

    /// Compares a code with each destination's last code: the first live one it matches (as a
    /// hit on its serial), whether it matched a spent or superseded one, and how many were
    /// live (each a guess's chance).
    fn match_sent(
        &self,
        user: &UserId,
        destinations: &[(DeviceId, &SentCodeRecord)],
        digits: &str,
        now: UnixTime,
    ) -> Result<(Option<Hit>, bool, u32), Error> {
        let mut hit = None;
        let mut reused = false;
        let mut live = 0u32;
        for (id, record) in destinations {
            let Some(issued) = &record.issued else {
                continue;
            };
            let is_live = record.live_code(now).is_some();
            live += u32::from(is_live);
            let key = self.sent_code_key(&issued.key_id)?;
            let digest = sent_code::code_digest(key, user, *id, &record.fingerprint, issued.serial, digits);
            if bool::from(digest.ct_eq(&issued.digest)) {
                if is_live && hit.is_none() {
                    hit = Some(Hit::TotpStep {
                        device: *id,
                        step: issued.serial,
                    });
                } else if !is_live && record.last_serial.is_some_and(|l| l >= issued.serial) {
                    reused = true;
                }
            }
        }
        Ok((hit, reused, live))
    }

    /// The key codes are hashed with under key `id`.
    fn sent_code_key(&self, id: &crate::seal::KeyId) -> Result<&[u8; 32], Error> {
        self.keys
            .mac_key(id, crate::seal::SENT_CODE_PURPOSE)
            .ok_or_else(|| Error::Seal(crate::error::SealError::UnknownKey(id.as_str().to_owned())))
    }

    /// The destination of a record, opened.
    pub(super) fn open_destination(
        &self,
        user: &UserId,
        device: DeviceId,
        record: &SentCodeRecord,
    ) -> Result<zeroize::Zeroizing<String>, Error> {
        let bytes = self
            .keys
            .open(&destination_context(user, device), &record.sealed_destination)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| StoreError::Corrupt("a sealed destination that is not text".to_owned()))?;
        Ok(zeroize::Zeroizing::new(text.to_owned()))
    }

    fn code_format(&self) -> InputError {
        InputError::CodeFormat {
            expected: match self.config.sent_codes.digits() {
                6 => "6 digits",
                7 => "7 digits",
                8 => "8 digits",
                9 => "9 digits",
                _ => "10 digits",
            },
        }
    }
}

/// What a destination is sealed for: its purpose, user and device.
pub(crate) fn destination_context(user: &UserId, device: DeviceId) -> SealContext<'_> {
    SealContext {
        purpose: crate::seal::DESTINATION_PURPOSE,
        user,
        device,
    }
}

impl<S, C, R> Mfa<S, C, R> {
    /// The fingerprint of a destination for `user` under the current key.
    pub(super) fn destination_fingerprint(
        &self,
        user: &UserId,
        channel: Channel,
        destination: &str,
    ) -> Result<[u8; 32], Error> {
        let id = self.keys.current_id();
        let key = self
            .keys
            .mac_key(id, crate::seal::DESTINATION_FINGERPRINT_PURPOSE)
            .ok_or_else(|| Error::Seal(crate::error::SealError::UnknownKey(id.as_str().to_owned())))?;
        Ok(sent_code::destination_fingerprint(key, user, channel, destination))
    }
}
