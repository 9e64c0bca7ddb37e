//! The WebAuthn operations of [`Mfa`]: register security keys and passkeys, authenticate with
//! them as a second factor, and passwordless sign-in with passkeys.

use crate::audit::AuditKind;
use crate::clock::Clock;
use crate::error::{ConfigError, Error, InputError, MisuseError, StoreError};
use crate::id::{CeremonyId, DeviceId, DeviceName, UserId};
use crate::kind::{DeviceKind, Factor};
use crate::rng::Rng;
use crate::seal::PASSWORDLESS_PURPOSE;
use crate::service::{Mfa, Outcome, Verified};

use super::settle::Settled;
use crate::store::{BrowserStore, CeremonyStore, DeviceStore};
use crate::store::{DeviceData, DeviceRecord};
use crate::webauthn::backup_flags::{self, FlagsDecision};
use crate::webauthn::counter::{self, CounterCheck};
use crate::webauthn::engine::Assertion;
use crate::webauthn::{
    AllAcceptedCredentials, AuthenticationOptions, AuthenticationResponse, CeremonyKind, CeremonyRecord,
    CurrentUserDetails, PasswordlessCeremony, RegistrationOptions, RegistrationResponse, UnknownCredential,
    WebAuthnConfig, WebAuthnRecord,
};

/// Most WebAuthn credentials one user may have.
pub(super) const MAX_CREDENTIALS: usize = 32;
/// Attempts at writing a counter while parallel sign-ins with the same credential race.
const COUNTER_RETRIES: usize = 8;

impl<S: DeviceStore + BrowserStore + CeremonyStore, C: Clock, R: Rng> Mfa<S, C, R> {
    /// Starts registering a **security key** (second factor) for `user`: user verification
    /// preferred, discoverable credential not required, the user's credentials excluded.
    /// `user_name` and `display_name` are what the authenticator shows.
    ///
    /// Keep the returned [`CeremonyId`] in the user's session and send the options to the browser.
    ///
    /// # Errors
    ///
    /// WebAuthn not configured, [`InputError::AccountName`] for a bad name,
    /// [`MisuseError::TooManyCredentials`], RNG and store errors.
    pub async fn start_security_key_registration(
        &self,
        user: &UserId,
        user_name: &str,
        display_name: &str,
    ) -> Result<(CeremonyId, RegistrationOptions), Error> {
        self.start_registration(user, user_name, display_name, false, false)
            .await
    }

    /// Starts registering a **passkey** (passwordless) for `user`: discoverable credential and
    /// user verification required, the user's credentials excluded.
    ///
    /// # Errors
    ///
    /// As [`start_security_key_registration`](Self::start_security_key_registration).
    pub async fn start_passkey_registration(
        &self,
        user: &UserId,
        user_name: &str,
        display_name: &str,
    ) -> Result<(CeremonyId, RegistrationOptions), Error> {
        self.start_registration(user, user_name, display_name, true, false)
            .await
    }

    /// Starts a **conditional** passkey creation (WebAuthn Level 3: the passkey upgrade right
    /// after a password sign-in): the options carry `"mediation": "conditional"`, and the
    /// browser, where its password manager just filled the password, may create the passkey
    /// without a prompt. Such a registration comes without user presence and usually without
    /// user verification, and only a ceremony started here accepts it; every other ceremony
    /// still requires presence ([`finish_webauthn_registration`](Self::finish_webauthn_registration)
    /// finishes both). The passkey is recorded as not user-verified at registration; it still
    /// signs in without a password only with user verification at that sign-in.
    ///
    /// Call it only right after a password sign-in of this user, in the same page load, and
    /// only where the browser reports `conditionalCreate` (`PublicKeyCredential.getClientCapabilities()`).
    ///
    /// # Errors
    ///
    /// As [`start_security_key_registration`](Self::start_security_key_registration);
    /// [`ConfigError::Attestation`](crate::error::ConfigError::Attestation) with an attestation
    /// allow-list (a conditional creation attests nothing).
    pub async fn start_conditional_passkey_registration(
        &self,
        user: &UserId,
        user_name: &str,
        display_name: &str,
    ) -> Result<(CeremonyId, RegistrationOptions), Error> {
        if self.webauthn()?.engine.has_attestation_list() {
            return Err(crate::error::ConfigError::Attestation("conditional creation cannot be attested").into());
        }
        self.start_registration(user, user_name, display_name, true, true).await
    }

    pub(super) async fn start_registration(
        &self,
        user: &UserId,
        user_name: &str,
        display_name: &str,
        passkey: bool,
        conditional: bool,
    ) -> Result<(CeremonyId, RegistrationOptions), Error> {
        let config = self.webauthn()?;
        let user_name = label(user_name)?;
        let display_name = label(display_name)?;
        let existing = self.webauthn_records(user).await?;
        if existing.len() >= MAX_CREDENTIALS {
            return Err(MisuseError::TooManyCredentials.into());
        }
        // One user handle per user, so platform authenticators replace rather than pile up.
        let user_handle = match existing.first() {
            Some((_, w)) => w.user_handle.clone(),
            None => {
                let mut handle = vec![0u8; 16];
                self.rng.try_fill_bytes(&mut handle)?;
                handle
            }
        };
        let exclude = existing.iter().map(|(_, w)| w.credential_id.clone()).collect();
        let (options, state) =
            config
                .engine
                .start_registration(&user_handle, user_name, display_name, exclude, passkey, conditional)?;
        let id = self
            .store_ceremony(Some(user), CeremonyKind::Registration, state)
            .await?;
        Ok((id, options))
    }

    /// Finishes a registration: verifies the browser's response against the ceremony started
    /// for this user, and stores the new security key or passkey under `name` (default
    /// "Security key" or "Passkey"; renamable later).
    ///
    /// A replayed, expired or foreign ceremony, a response that does not verify, and a
    /// credential that is already registered (to anyone) are all [`Outcome::Rejected`].
    ///
    /// # Errors
    ///
    /// [`InputError::DeviceName`] for a bad name (checked first: the ceremony stays usable),
    /// RNG and store errors.
    pub async fn finish_webauthn_registration(
        &self,
        user: &UserId,
        ceremony: CeremonyId,
        response: &RegistrationResponse,
        name: Option<&str>,
    ) -> Result<Outcome, Error> {
        let outcome: Result<Outcome, Error> = async {
            let config = self.webauthn()?;
            let name = name.map(DeviceName::new).transpose()?;
            let now = self.clock.now();
            let Some(taken) = self
                .store
                .take_ceremony(ceremony, Some(user), CeremonyKind::Registration, now)
                .await?
            else {
                return Ok(Outcome::Rejected);
            };
            let Ok((new, passkey, user_handle)) = config.engine.finish_registration(response, &taken.state) else {
                return Ok(Outcome::Rejected);
            };
            let kind = DeviceKind::webauthn(passkey);
            let facts = crate::webauthn::CredentialFacts {
                aaguid: new.aaguid,
                synced: new.backup_eligible,
                attested: crate::webauthn::engine::stored_attested(&new.credential),
            };
            if let Err(reason) = config.credential_policy.check(kind, &facts) {
                self.emit(
                    self.event(Some(user), AuditKind::CredentialRefused { reason })
                        .factor(Factor::WebAuthn),
                );
                return Ok(Outcome::NotAllowed(reason));
            }
            let name = match name {
                Some(n) => n,
                None => crate::webauthn::unnamed_device_name(Some(config), kind, new.aaguid)?,
            };
            let id = DeviceId::generate(&self.rng)?;
            let record = DeviceRecord::new(
                id,
                user,
                name,
                now,
                true,
                DeviceData::WebAuthn(WebAuthnRecord {
                    credential_id: new.credential_id,
                    user_handle,
                    credential: new.credential,
                    sign_count: new.sign_count,
                    backup_eligible: new.backup_eligible,
                    backup_state: new.backup_state,
                    discoverable: passkey,
                    user_verified: new.user_verified,
                    aaguid: new.aaguid,
                }),
            );
            match self.store.insert_device(record).await {
                Ok(()) => {}
                // The credential id is registered already (to this user or another): no.
                Err(StoreError::Conflict) => return Ok(Outcome::Rejected),
                Err(e) => return Err(e.into()),
            }
            Ok(Outcome::Accepted(
                Verified::sign_in(user, id, kind, now)
                    .with_webauthn(new.user_verified, new.backup_eligible)
                    .enrollment(),
            ))
        }
        .await;
        let outcome = outcome?;
        if outcome.is_accepted() {
            // Remembered browsers were trusted for the devices as they were.
            self.devices_changed(user).await?;
        }
        Ok(self.audited(
            Some(user),
            Factor::WebAuthn,
            AuditKind::Enrolled,
            Settled::plain(outcome),
        ))
    }

    /// Starts a second-factor authentication that accepts any of the user's security keys and
    /// passkeys.
    ///
    /// # Errors
    ///
    /// WebAuthn not configured, [`MisuseError::NoDevice`] if the user has no credential,
    /// store and engine errors.
    pub async fn start_webauthn_authentication(
        &self,
        user: &UserId,
    ) -> Result<(CeremonyId, AuthenticationOptions), Error> {
        let config = self.webauthn()?;
        let records = self.webauthn_records(user).await?;
        if records.is_empty() {
            return Err(MisuseError::NoDevice(Factor::WebAuthn).into());
        }
        let creds: Vec<&[u8]> = records.iter().map(|(_, w)| w.credential.as_slice()).collect();
        let only = match records
            .iter()
            .map(|(_, w)| w.discoverable)
            .collect::<Vec<_>>()
            .as_slice()
        {
            kinds if kinds.iter().all(|d| *d) => Some(DeviceKind::Passkey),
            kinds if kinds.iter().all(|d| !*d) => Some(DeviceKind::SecurityKey),
            _ => None,
        };
        let (options, state) = config.engine.start_authentication(Some(&creds), false, only)?;
        let id = self
            .store_ceremony(Some(user), CeremonyKind::SecondFactor, state)
            .await?;
        Ok((id, options))
    }

    /// Finishes a second-factor authentication for `user`.
    ///
    /// # Errors
    ///
    /// WebAuthn not configured, store errors. Every verification failure is
    /// [`Outcome::Rejected`]. A signature cannot be guessed, so nothing holds a right answer
    /// back: the assertion is always checked, and a failure of a ceremony the user really
    /// started is counted (and audited) after the check.
    pub async fn finish_webauthn_authentication(
        &self,
        user: &UserId,
        ceremony: CeremonyId,
        response: &AuthenticationResponse,
    ) -> Result<Outcome, Error> {
        let outcome: Result<Outcome, Error> = async {
            self.webauthn()?;
            let now = self.clock.now();
            // Only a ceremony this user really started is counted: garbage finishes cost nothing.
            let Some(taken) = self
                .store
                .take_ceremony(ceremony, Some(user), CeremonyKind::SecondFactor, now)
                .await?
            else {
                return Ok(Outcome::Rejected);
            };
            let outcome = self.check_second_factor(user, response, &taken.state).await?;
            if !outcome.is_accepted() {
                self.count_failure(user, Factor::WebAuthn).await?;
            }
            Ok(outcome)
        }
        .await;
        let outcome = outcome?;
        Ok(self.audited(
            Some(user),
            Factor::WebAuthn,
            AuditKind::Verified { recovery: false },
            Settled::plain(outcome),
        ))
    }

    /// Checks a second-factor assertion against the user's credentials and the taken ceremony.
    async fn check_second_factor(
        &self,
        user: &UserId,
        response: &AuthenticationResponse,
        state: &[u8],
    ) -> Result<Outcome, Error> {
        let config = self.webauthn()?;
        {
            let records = self.webauthn_records(user).await?;
            // WebAuthn §7.2 step 6: a user handle, when the authenticator returns one, must be the
            // one this user's credential was registered under.
            if response.user_handle().is_some() {
                let owned = records.iter().any(|(_, w)| {
                    w.credential_id == response.credential_id()
                        && crate::webauthn::user_handle_ok(response.user_handle(), &w.user_handle, false)
                });
                if !owned {
                    return Ok(Outcome::Rejected);
                }
            }
            let allowed: Vec<&[u8]> = records.iter().map(|(_, w)| w.credential.as_slice()).collect();
            let Ok(assertion) = config.engine.finish_authentication(response, state, &allowed) else {
                return Ok(Outcome::Rejected);
            };
            self.complete_assertion(user, &records, assertion).await
        }
    }

    /// Starts a passwordless (username-less) sign-in with a discoverable passkey, user
    /// verification required. With `conditional`, the options ask for conditional mediation
    /// (passkey autofill on the username field).
    ///
    /// Nothing is stored: anyone may start a passwordless sign-in, so a start must not cost the
    /// server anything it keeps. The returned [`PasswordlessCeremony`] carries the ceremony's
    /// state under a tag made with the current key, and expires after the ceremony lifetime
    /// ([`WebAuthnConfig::with_ceremony_ttl`], 5 minutes by default). Send its text form to the
    /// browser with the options (or keep it in the session) and pass it back to
    /// [`finish_passwordless`](Self::finish_passwordless).
    ///
    /// # Errors
    ///
    /// WebAuthn not configured, RNG and engine errors.
    pub async fn start_passwordless(
        &self,
        conditional: bool,
    ) -> Result<(PasswordlessCeremony, AuthenticationOptions), Error> {
        let config = self.webauthn()?;
        let (options, state) = config.engine.start_authentication(None, conditional, None)?;
        let id = CeremonyId::generate(&self.rng)?;
        let key_id = self.keys.current_id().clone();
        let key = self
            .keys
            .mac_key(&key_id, PASSWORDLESS_PURPOSE)
            .ok_or(Error::Config(ConfigError::WebAuthn(
                "no key for passwordless ceremonies",
            )))?;
        let expires_at = self.clock.now().plus_secs(config.ceremony_ttl_secs);
        let ceremony = PasswordlessCeremony::sign(id, expires_at, key_id, key, state)?;
        Ok((ceremony, options))
    }

    /// Finishes a passwordless sign-in: checks the ceremony's tag and expiry, finds the
    /// credential by its id, requires the user handle it returned to be the one it was
    /// registered under, and verifies the assertion with user verification. On success,
    /// [`Verified::user`] says who signed in.
    ///
    /// A ceremony is finished once: the first assertion that verifies marks it used, atomically
    /// in the store, and any later finish of it (a replay, or a race) is rejected. Nothing is
    /// written for a ceremony whose assertion does not verify.
    ///
    /// # Errors
    ///
    /// WebAuthn not configured, store errors. A forged, altered or expired ceremony, unknown
    /// credentials and every verification failure are [`Outcome::Rejected`].
    pub async fn finish_passwordless(
        &self,
        ceremony: &PasswordlessCeremony,
        response: &AuthenticationResponse,
    ) -> Result<Outcome, Error> {
        let outcome: Result<Outcome, Error> = async {
            let config = self.webauthn()?;
            let now = self.clock.now();
            if now >= ceremony.expires_at() {
                return Ok(Outcome::Rejected);
            }
            let Some(state) = self
                .keys
                .mac_key(ceremony.key_id(), PASSWORDLESS_PURPOSE)
                .and_then(|key| ceremony.verified_state(key))
            else {
                return Ok(Outcome::Rejected);
            };
            let Some(record) = self.store.find_credential(response.credential_id()).await? else {
                return Ok(Outcome::Rejected);
            };
            let DeviceData::WebAuthn(cred) = &record.data else {
                return Ok(Outcome::Rejected);
            };
            // Only a passkey replaces the password: a security key registered as a second factor
            // (never required to verify the user) does not sign anyone in alone.
            if record.kind() != DeviceKind::Passkey {
                return Ok(Outcome::Rejected);
            }
            if !crate::webauthn::user_handle_ok(response.user_handle(), &cred.user_handle, true) {
                return Ok(Outcome::Rejected);
            }
            let user = record.user.clone();
            // The assertion is checked before anything is counted against the owner: a
            // credential id and user handle are not secret, and a failure costs them nothing.
            let Ok(assertion) = config
                .engine
                .finish_authentication(response, state, &[cred.credential.as_slice()])
            else {
                self.count_failure(&user, Factor::WebAuthn).await?;
                return Ok(Outcome::Rejected);
            };
            // The signature verified: mark the ceremony used, or find it used already (a replay of
            // this very assertion, or a parallel finish that got there first).
            if !self.mark_passwordless_used(ceremony).await? {
                return Ok(Outcome::Rejected);
            }
            let records = vec![(record.id, cred.clone())];
            let outcome = self.complete_assertion(&user, &records, assertion).await?;
            if !outcome.is_accepted() {
                self.count_failure(&user, Factor::WebAuthn).await?;
            }
            Ok(outcome)
        }
        .await;
        let outcome = outcome?;
        // Who it was is known only once the credential is found; an unknown one is logged without a user.
        let user = match &outcome {
            Outcome::Accepted(v) => Some(v.user().clone()),
            _ => self
                .store
                .find_credential(response.credential_id())
                .await?
                .map(|d| d.user),
        };
        Ok(self.audited(
            user.as_ref(),
            Factor::WebAuthn,
            AuditKind::Verified { recovery: false },
            Settled::plain(outcome),
        ))
    }

    /// Inserts the used-marker of a passwordless ceremony: `false` if it was there already.
    /// Expired markers are purged first, so markers live no longer than their ceremonies.
    async fn mark_passwordless_used(&self, ceremony: &PasswordlessCeremony) -> Result<bool, Error> {
        self.store.purge_expired_ceremonies(self.clock.now()).await?;
        let marker = CeremonyRecord {
            id: ceremony.id(),
            user: None,
            kind: CeremonyKind::Passwordless,
            expires_at: ceremony.expires_at(),
            state: Vec::new(),
        };
        match self.store.insert_ceremony(marker).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes expired ceremonies (they are also purged as new ones start). Returns how many.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn purge_expired_ceremonies(&self) -> Result<u64, Error> {
        Ok(self.store.purge_expired_ceremonies(self.clock.now()).await?)
    }

    /// Applies the counter policy and writes counter, flags and last-used time by compare-and-swap.
    pub(super) async fn complete_assertion(
        &self,
        user: &UserId,
        records: &[(DeviceId, WebAuthnRecord)],
        assertion: Assertion,
    ) -> Result<Outcome, Error> {
        let config = self.webauthn()?;
        let (policy, flags_policy) = (config.counter_policy, config.backup_flags_policy);
        let Some((id, mut current)) = records
            .iter()
            .find(|(_, w)| w.credential_id == assertion.credential_id)
            .map(|(id, w)| (*id, w.clone()))
        else {
            return Ok(Outcome::Rejected);
        };
        for _ in 0..COUNTER_RETRIES {
            let (eligible, state, flags_changed) = match backup_flags::decide(
                (current.backup_eligible, current.backup_state),
                (assertion.backup_eligible, assertion.backup_state),
                flags_policy,
            ) {
                FlagsDecision::Accept {
                    eligible,
                    state,
                    changed,
                } => (eligible, state, changed),
                FlagsDecision::Refuse => return Ok(Outcome::Rejected),
            };
            // The credential policy as it is now, on the credential as it is now.
            let kind = DeviceKind::webauthn(current.discoverable);
            let facts = crate::webauthn::CredentialFacts {
                synced: eligible,
                ..current.facts()
            };
            if let Err(reason) = config.credential_policy.check(kind, &facts) {
                self.emit(
                    self.event(Some(user), AuditKind::CredentialRefused { reason })
                        .device(id, kind),
                );
                return Ok(Outcome::NotAllowed(reason));
            }
            let update = match counter::check(&current, assertion.counter, (eligible, state), policy) {
                CounterCheck::Accept(update) => update,
                CounterCheck::PossibleClone => return Ok(Outcome::Rejected),
            };
            let now = self.clock.now();
            if self
                .store
                .record_webauthn_use(user, id, current.sign_count, update, now)
                .await?
            {
                self.store.clear_throttle(user, Factor::WebAuthn.into()).await?;
                if flags_changed {
                    self.emit(
                        self.event(Some(user), AuditKind::BackupFlagsChanged { eligible, state })
                            .device(id, DeviceKind::webauthn(current.discoverable)),
                    );
                }
                let kind = if current.discoverable {
                    DeviceKind::Passkey
                } else {
                    DeviceKind::SecurityKey
                };
                return Ok(Outcome::Accepted(Verified::sign_in(user, id, kind, now).with_webauthn(
                    assertion.user_verified,
                    current.backup_eligible || update.backup_eligible,
                )));
            }
            // A parallel sign-in moved the counter (or the credential was deleted): look again.
            match self.store.device(user, id).await? {
                Some(DeviceRecord {
                    data: DeviceData::WebAuthn(fresh),
                    ..
                }) => current = fresh,
                _ => return Ok(Outcome::Rejected),
            }
        }
        Ok(Outcome::Rejected)
    }

    /// The `signalUnknownCredential` payload for a passwordless sign-in that was rejected
    /// because no user has the credential it presented (deleted here, or never registered),
    /// and only then: `None` when the credential belongs to someone (the rejection had another
    /// reason). Call it after [`Mfa::finish_passwordless`] answered [`Outcome::Rejected`].
    ///
    /// # Errors
    ///
    /// WebAuthn not configured, store errors.
    pub async fn unknown_credential_signal(
        &self,
        response: &AuthenticationResponse,
    ) -> Result<Option<UnknownCredential>, Error> {
        let config = self.webauthn()?;
        Ok(match self.store.find_credential(response.credential_id()).await? {
            Some(_) => None,
            None => Some(UnknownCredential::new(
                config.relying_party().id(),
                response.credential_id(),
            )),
        })
    }

    /// The user handles the user's security keys and passkeys were registered under (one, unless
    /// credentials were imported under others). Keep them before a deletion or reset to build
    /// [`Mfa::accepted_credentials_signals`] afterwards.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn webauthn_user_handles(&self, user: &UserId) -> Result<Vec<Vec<u8>>, Error> {
        let mut handles: Vec<Vec<u8>> = Vec::new();
        for (_, w) in self.webauthn_records(user).await? {
            if !w.user_handle.is_empty() && !handles.contains(&w.user_handle) {
                handles.push(w.user_handle);
            }
        }
        Ok(handles)
    }

    /// The `signalAllAcceptedCredentials` payloads for `handles` (from
    /// [`Mfa::webauthn_user_handles`] before a deletion or reset): for each, the credentials the
    /// user still has under it (none after a reset), so that authenticators drop the others.
    ///
    /// # Errors
    ///
    /// WebAuthn not configured, store errors.
    pub async fn accepted_credentials_signals(
        &self,
        user: &UserId,
        handles: &[Vec<u8>],
    ) -> Result<Vec<AllAcceptedCredentials>, Error> {
        let config = self.webauthn()?;
        let records = self.webauthn_records(user).await?;
        Ok(handles
            .iter()
            .map(|handle| {
                let ids = records
                    .iter()
                    .filter(|(_, w)| &w.user_handle == handle)
                    .map(|(_, w)| w.credential_id.clone())
                    .collect();
                AllAcceptedCredentials::new(config.relying_party().id(), handle, ids)
            })
            .collect())
    }

    /// Deletes one of the user's devices as [`Mfa::delete_device`] does, and returns the
    /// `signalAllAcceptedCredentials` payloads the page should send, so that the user's
    /// authenticators stop offering a deleted passkey.
    ///
    /// # Errors
    ///
    /// As [`Mfa::delete_device`]; WebAuthn not configured.
    pub async fn delete_device_with_signals(
        &self,
        user: &UserId,
        device: DeviceId,
    ) -> Result<Vec<AllAcceptedCredentials>, Error> {
        let handles = self.webauthn_user_handles(user).await?;
        self.delete_device(user, device).await?;
        self.accepted_credentials_signals(user, &handles).await
    }

    /// The `signalCurrentUserDetails` payloads after the user's name or display name changed,
    /// one per user handle their credentials were registered under.
    ///
    /// # Errors
    ///
    /// WebAuthn not configured, [`InputError::AccountName`](crate::error::InputError::AccountName) for an
    /// empty, too long or control-character name, store errors.
    pub async fn current_user_details_signals(
        &self,
        user: &UserId,
        name: &str,
        display_name: &str,
    ) -> Result<Vec<CurrentUserDetails>, Error> {
        let config = self.webauthn()?;
        let name = label(name)?;
        let display_name = label(display_name)?;
        Ok(self
            .webauthn_user_handles(user)
            .await?
            .iter()
            .map(|handle| CurrentUserDetails::new(config.relying_party().id(), handle, name, display_name))
            .collect())
    }

    pub(super) async fn store_ceremony(
        &self,
        user: Option<&UserId>,
        kind: CeremonyKind,
        state: Vec<u8>,
    ) -> Result<CeremonyId, Error> {
        let config = self.webauthn()?;
        let now = self.clock.now();
        self.store.purge_expired_ceremonies(now).await?;
        let id = CeremonyId::generate(&self.rng)?;
        self.store
            .insert_ceremony(CeremonyRecord {
                id,
                user: user.cloned(),
                kind,
                expires_at: now.plus_secs(config.ceremony_ttl_secs),
                state,
            })
            .await?;
        Ok(id)
    }
}

/// A user name or display name for the authenticator: 1..=64 characters, no control characters.
fn label(text: &str) -> Result<&str, InputError> {
    crate::id::label(text, 64).ok_or(InputError::AccountName)
}

impl<S: DeviceStore, C, R> Mfa<S, C, R> {
    pub(super) fn webauthn(&self) -> Result<&WebAuthnConfig, Error> {
        self.config.webauthn.as_ref().ok_or(Error::Config(ConfigError::WebAuthn(
            "no relying party configured (MfaConfig::webauthn)",
        )))
    }

    pub(super) async fn webauthn_records(&self, user: &UserId) -> Result<Vec<(DeviceId, WebAuthnRecord)>, Error> {
        Ok(self
            .store
            .list_devices(user)
            .await?
            .into_iter()
            .filter_map(|d| match d.data {
                DeviceData::WebAuthn(w) => Some((d.id, w)),
                _ => None,
            })
            .collect())
    }
}
