//! Imports from other systems: one TOTP secret, one WebAuthn credential, one backup-code set, a
//! whole batch, each entry checked and prepared once, then written in one store call.

use std::collections::HashMap;

use crate::audit::AuditKind;
use crate::backup_codes;
use crate::clock::Clock;
use crate::error::{Error, MisuseError, StoreError};
use crate::id::{DeviceId, DeviceName, UserId};
use crate::import::WebAuthnImport;
use crate::import::{
    ImportBatch, ImportEntry, ImportItem, ImportOptions, ImportProblem, ImportReport, ImportResult, ImportStatus,
    ImportedCodes, ImportedDigests,
};
use crate::kind::DeviceKind;
use crate::kind::Factor;
use crate::rng::Rng;
use crate::secret::SecretBytes;
use crate::store::{BrowserStore, DeviceData, DeviceRecord, DeviceStore};
use crate::totp::uri::TotpImport;
use crate::webauthn::WebAuthnRecord;

use super::Mfa;
use super::totp::totp_context;

/// One entry checked against the store and made ready to write: a device the user has already,
/// or the record to add (sealed or hashed, and named). The write is then one store call.
enum Prepared {
    Present(DeviceId),
    Add(Box<DeviceRecord>),
}

impl<S: DeviceStore + BrowserStore, C: Clock, R: Rng> Mfa<S, C, R> {
    /// Imports an existing TOTP secret (base32 or `otpauth://` URI) for migration. The user's
    /// app already holds it, so the device is confirmed at once.
    ///
    /// # Errors
    ///
    /// [`InputError`](crate::error::InputError) naming what is malformed;
    /// [`MisuseError::DuplicateSecret`] if one of the user's TOTP devices has the same secret
    /// (compared after opening, in constant time); [`MisuseError::TooManyTotpDevices`]; sealing,
    /// RNG and store errors.
    pub async fn import_totp(&self, user: &UserId, input: &str, name: Option<&str>) -> Result<DeviceId, Error> {
        self.import_parsed_totp(user, &TotpImport::parse(input)?, name).await
    }

    /// Imports one parsed secret, as [`Mfa::import_totp`] does: for instance each account of a
    /// Google Authenticator export ([`TotpImport::parse_migration`]). The device is named
    /// `name`, else after the issuer.
    ///
    /// # Errors
    ///
    /// [`InputError::DeviceName`](crate::error::InputError::DeviceName) for a bad name;
    /// [`MisuseError::DuplicateSecret`] if the user has a TOTP device with the same secret;
    /// [`MisuseError::TooManyTotpDevices`] if the user has
    /// [`totp::MAX_DEVICES`](crate::totp::MAX_DEVICES) confirmed ones; sealing, RNG and store
    /// errors.
    pub async fn import_parsed_totp(
        &self,
        user: &UserId,
        import: &TotpImport,
        name: Option<&str>,
    ) -> Result<DeviceId, Error> {
        // The same secret twice would let each code be used once per copy.
        let record = match self.prepare_totp_import(user, import, name, 0).await? {
            Prepared::Present(_) => return Err(MisuseError::DuplicateSecret.into()),
            Prepared::Add(record) => record,
        };
        // The store refuses a second device with the same fingerprint in the same step as the
        // insert: of two imports of one secret racing past the check, one fails here.
        self.commit_import(user, *record)
            .await?
            .ok_or_else(|| MisuseError::DuplicateSecret.into())
    }

    /// The name of an imported secret: `name`, else its issuer, else the kind's.
    fn totp_import_name(import: &TotpImport, name: Option<&str>) -> Result<DeviceName, Error> {
        let fallback = if import.params.is_counter_based() {
            super::totp::HOTP_NAME
        } else {
            DeviceKind::Totp.default_name()
        };
        Ok(match name {
            Some(n) => DeviceName::new(n)?,
            None => {
                DeviceName::new(import.issuer.as_deref().unwrap_or(fallback)).or_else(|_| DeviceName::new(fallback))?
            }
        })
    }

    /// Imports a security key or passkey registered elsewhere for this relying party id
    /// ([`WebAuthnImport`]). The user signs in with it as before; its sign counter and flags
    /// carry over.
    ///
    /// # Errors
    ///
    /// [`MisuseError::CredentialTaken`] if another user has this credential;
    /// [`MisuseError::TooManyCredentials`]; [`InputError::DeviceName`](crate::error::InputError::DeviceName);
    /// RNG and store errors.
    pub async fn import_webauthn(
        &self,
        user: &UserId,
        import: &WebAuthnImport,
        name: Option<&str>,
    ) -> Result<ImportStatus, Error> {
        let record = match self.prepare_webauthn(user, import, name, 0).await? {
            Prepared::Present(id) => return Ok(ImportStatus::AlreadyPresent(id)),
            Prepared::Add(record) => record,
        };
        if let Some(id) = self.commit_import(user, *record).await? {
            return Ok(ImportStatus::Added(id));
        }
        // Registered meanwhile, by this user or another.
        match self.prepare_webauthn(user, import, name, 0).await? {
            Prepared::Present(id) => Ok(ImportStatus::AlreadyPresent(id)),
            Prepared::Add(_) => Err(MisuseError::CredentialTaken.into()),
        }
    }

    /// Imports backup codes another system generated as the user's set, hashed as ours are
    /// ([`backup_codes::import`]). Importing the same codes again finds them present.
    ///
    /// # Errors
    ///
    /// [`InputError::ImportedCodes`](crate::error::InputError::ImportedCodes) for codes that cannot
    /// be a set; [`MisuseError::BackupCodesPresent`] if the user has a different set here (it
    /// is not replaced: generate a new set instead); RNG and store errors.
    pub async fn import_backup_codes(
        &self,
        user: &UserId,
        codes: &ImportedCodes,
        name: Option<&str>,
    ) -> Result<ImportStatus, Error> {
        self.import_set(user, Codes::Plain(codes), name).await
    }

    /// Imports a set of backup codes another system kept only as digests (Keycloak's recovery
    /// codes) as the user's set, keyed over those digests
    /// ([`backup_codes::import_prehashed`]): the user types the codes they hold, and no
    /// plaintext is ever needed. Importing the same digests again finds them present; a new
    /// set generated later is an ordinary one.
    ///
    /// # Errors
    ///
    /// As [`Mfa::import_backup_codes`].
    pub async fn import_hashed_backup_codes(
        &self,
        user: &UserId,
        digests: &ImportedDigests,
        name: Option<&str>,
    ) -> Result<ImportStatus, Error> {
        self.import_set(user, Codes::Digests(digests), name).await
    }

    async fn import_set(&self, user: &UserId, codes: Codes<'_>, name: Option<&str>) -> Result<ImportStatus, Error> {
        let record = match self.prepare_set(user, codes, name).await? {
            Prepared::Present(id) => return Ok(ImportStatus::AlreadyPresent(id)),
            Prepared::Add(record) => record,
        };
        if let Some(id) = self.commit_import(user, *record).await? {
            return Ok(ImportStatus::Added(id));
        }
        // A set generated or imported meanwhile: these codes, or another set.
        match self.prepare_set(user, codes, name).await? {
            Prepared::Present(id) => Ok(ImportStatus::AlreadyPresent(id)),
            Prepared::Add(_) => Err(MisuseError::BackupCodesPresent.into()),
        }
    }

    /// Imports a whole batch ([`ImportBatch::parse`]): checks every entry against the store
    /// first (a credential another user has, a different backup-code set, a relying party id
    /// that is not ours, a user with no room for another device), then, if no line has a
    /// problem (or `skip_bad`), imports the entries one by one, calling `progress(done, total)`
    /// after each.
    ///
    /// The check prepares each entry once (a TOTP secret sealed, backup codes hashed, the
    /// device named), so the write is one store call, after the remembered browsers' revocation:
    /// a new TOTP secret costs three store calls in all and opens each of the user's secrets
    /// once, a new credential four.
    ///
    /// Each entry is one atomic store write, so an interrupted import leaves whole devices;
    /// running it again completes it, because what a user has already is reported present and
    /// not added twice.
    ///
    /// # Errors
    ///
    /// Sealing, RNG and store errors (the import stops there; run it again to resume).
    pub async fn import_batch(
        &self,
        batch: &ImportBatch,
        options: ImportOptions,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<ImportReport, Error> {
        let mut problems = batch.problems.clone();
        let mut planned = Vec::with_capacity(batch.entries.len());
        // Devices this batch adds per user and factor, for the per-user limits.
        let mut adding: HashMap<(&UserId, Factor), usize> = HashMap::new();
        for entry in &batch.entries {
            let factor = entry.item.kind().factor();
            let pending = adding.get(&(&entry.user, factor)).copied().unwrap_or(0);
            match self.prepare_entry(entry, pending).await {
                Ok(prepared) => {
                    if matches!(prepared, Prepared::Add(_)) {
                        *adding.entry((&entry.user, factor)).or_default() += 1;
                    }
                    planned.push((entry, prepared));
                }
                Err(Error::Misuse(e)) => problems.push(problem(entry, e)),
                Err(Error::Input(e)) => problems.push(problem(entry, e)),
                Err(e) => return Err(e),
            }
        }
        problems.sort_by_key(|p| p.line);
        if !problems.is_empty() && !options.skip_bad {
            return Ok(ImportReport {
                results: Vec::new(),
                problems,
                written: false,
            });
        }
        let total = planned.len();
        let mut results = Vec::with_capacity(total);
        for (done, (entry, prepared)) in planned.into_iter().enumerate() {
            let status = match prepared {
                Prepared::Present(id) => ImportStatus::AlreadyPresent(id),
                Prepared::Add(_) if options.dry_run => ImportStatus::WouldAdd,
                Prepared::Add(record) => match self.commit_import(&entry.user, *record).await? {
                    Some(id) => ImportStatus::Added(id),
                    // Changed between the check and the write (a concurrent enrollment): look
                    // again.
                    None => match self.prepare_entry(entry, 0).await {
                        Ok(Prepared::Present(id)) => ImportStatus::AlreadyPresent(id),
                        Ok(Prepared::Add(_)) => {
                            problems.push(problem(entry, lost_race(&entry.item)));
                            continue;
                        }
                        Err(Error::Misuse(e)) => {
                            problems.push(problem(entry, e));
                            continue;
                        }
                        Err(Error::Input(e)) => {
                            problems.push(problem(entry, e));
                            continue;
                        }
                        Err(e) => return Err(e),
                    },
                },
            };
            results.push(ImportResult {
                line: entry.line,
                user: entry.user.clone(),
                kind: entry.item.kind(),
                status,
            });
            progress(done + 1, total);
        }
        problems.sort_by_key(|p| p.line);
        Ok(ImportReport {
            results,
            problems,
            written: !options.dry_run,
        })
    }

    /// One entry checked against the store and prepared (`pending`: how many devices of its
    /// factor the batch adds to the user before it).
    async fn prepare_entry(&self, entry: &ImportEntry, pending: usize) -> Result<Prepared, Error> {
        let name = entry.name.as_deref();
        match &entry.item {
            ImportItem::Totp(import) => self.prepare_totp_import(&entry.user, import, name, pending).await,
            ImportItem::BackupCodes(codes) => {
                // The codes' shape first: a bad set is a problem even for a user with codes.
                backup_codes::check_imported(&codes.as_strs())?;
                self.prepare_set(&entry.user, Codes::Plain(codes), name).await
            }
            ImportItem::HashedBackupCodes(digests) => {
                backup_codes::check_prehashed(&digests.digests)?;
                self.prepare_set(&entry.user, Codes::Digests(digests), name).await
            }
            ImportItem::WebAuthn(import) => {
                if let (Some(theirs), Ok(config)) = (&entry.rp_id, self.webauthn())
                    && theirs != config.relying_party().id()
                {
                    return Err(crate::error::InputError::ImportedCredential(
                        "registered for another relying party id: it cannot sign in here",
                    )
                    .into());
                }
                self.prepare_webauthn(&entry.user, import, name, pending).await
            }
        }
    }

    /// A TOTP secret: present if one of the user's TOTP devices has the same key (each opened
    /// once, compared in constant time), else sealed into a new confirmed device, if the user
    /// has room for it.
    async fn prepare_totp_import(
        &self,
        user: &UserId,
        import: &TotpImport,
        name: Option<&str>,
        pending: usize,
    ) -> Result<Prepared, Error> {
        let name = Self::totp_import_name(import, name)?;
        let mut confirmed = 0;
        for device in self.store.list_devices(user).await? {
            if let DeviceData::Totp(t) = &device.data {
                let existing = SecretBytes::from(self.keys.open(&totp_context(user, device.id), &t.sealed_secret)?);
                if crate::totp::same_hmac_key(existing.expose_secret(), import.secret.expose_secret()) {
                    return Ok(Prepared::Present(device.id));
                }
                confirmed += usize::from(device.confirmed);
            }
        }
        if confirmed + pending >= crate::totp::MAX_DEVICES {
            return Err(MisuseError::TooManyTotpDevices.into());
        }
        let record = self.totp_record(user, name, &import.secret, import.params, import.last_step, true)?;
        Ok(Prepared::Add(Box::new(record)))
    }

    /// A WebAuthn credential: present if the user has it, refused if someone else does, else a
    /// new device named after its provider, if the user has room for it.
    async fn prepare_webauthn(
        &self,
        user: &UserId,
        import: &WebAuthnImport,
        name: Option<&str>,
        pending: usize,
    ) -> Result<Prepared, Error> {
        let name = match name {
            Some(n) => DeviceName::new(n)?,
            None => crate::webauthn::unnamed_device_name(self.config.webauthn.as_ref(), import.kind(), import.aaguid)?,
        };
        match self.store.find_credential(&import.credential_id).await? {
            Some(existing) if existing.user == *user => return Ok(Prepared::Present(existing.id)),
            Some(_) => return Err(MisuseError::CredentialTaken.into()),
            None => {}
        }
        if self.webauthn_records(user).await?.len() + pending >= super::webauthn::MAX_CREDENTIALS {
            return Err(MisuseError::TooManyCredentials.into());
        }
        let record = DeviceRecord::new(
            DeviceId::generate(&self.rng)?,
            user,
            name,
            self.clock.now(),
            true,
            DeviceData::WebAuthn(WebAuthnRecord {
                credential_id: import.credential_id.clone(),
                user_handle: import.user_handle.clone(),
                credential: import.credential.clone(),
                sign_count: import.sign_count,
                backup_eligible: import.backup_eligible,
                backup_state: import.backup_state,
                discoverable: import.discoverable,
                user_verified: import.discoverable,
                aaguid: import.aaguid.filter(|a| a != &[0; 16]),
            }),
        );
        Ok(Prepared::Add(Box::new(record)))
    }

    /// A backup-code set: present if the user's set holds exactly these codes, refused if the
    /// user has another set, else hashed under the current key.
    async fn prepare_set(&self, user: &UserId, codes: Codes<'_>, name: Option<&str>) -> Result<Prepared, Error> {
        let name = DeviceName::new(name.unwrap_or(DeviceKind::BackupCodes.default_name()))?;
        if let Some(id) = self.check_backup_codes(user, codes).await? {
            return Ok(Prepared::Present(id));
        }
        let id = DeviceId::generate(&self.rng)?;
        let key = self.codes_key(self.keys.current_id(), user, id)?;
        let record = match codes {
            Codes::Plain(c) => backup_codes::import(&self.rng, &c.as_strs(), &key)?,
            Codes::Digests(d) => backup_codes::import_prehashed(&self.rng, d.prehash, &d.digests, &key)?,
        };
        let record = DeviceRecord::new(id, user, name, self.clock.now(), true, DeviceData::BackupCodes(record));
        Ok(Prepared::Add(Box::new(record)))
    }

    /// Writes a prepared device in one store call (remembered browsers were trusted for the
    /// devices as they were, so they go first) and audits it. `None`: the store's guard refused
    /// it (a credential, secret or set written meanwhile), and a fresh check tells whether the
    /// user has it now.
    async fn commit_import(&self, user: &UserId, record: DeviceRecord) -> Result<Option<DeviceId>, Error> {
        let (id, kind) = (record.id, record.kind());
        if let DeviceData::BackupCodes(set) = record.data {
            match self
                .store_backup_set(user, id, record.name, set, super::backup_codes::SetWrite::First)
                .await
            {
                Ok(()) => {}
                Err(Error::Misuse(MisuseError::BackupCodesPresent)) => return Ok(None),
                Err(e) => return Err(e),
            }
        } else {
            self.devices_changed(user).await?;
            let inserted = self.store.insert_device(record).await;
            self.cache.forget(user);
            match inserted {
                Ok(()) => {}
                Err(StoreError::Conflict) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        self.emit(self.event(Some(user), AuditKind::Enrolled).device(id, kind));
        Ok(Some(id))
    }

    /// The user's set if it holds exactly these codes; [`MisuseError::BackupCodesPresent`] if
    /// the user has another set.
    async fn check_backup_codes(&self, user: &UserId, codes: Codes<'_>) -> Result<Option<DeviceId>, Error> {
        for device in self.store.list_devices(user).await? {
            if let DeviceData::BackupCodes(record) = &device.data {
                let key = self.set_key(record, user, device.id)?;
                let same = match codes {
                    Codes::Plain(codes) => {
                        record.prehash.is_none() && backup_codes::holds_exactly(record, &codes.as_strs(), &key)
                    }
                    Codes::Digests(d) => {
                        record.prehash == Some(d.prehash)
                            && backup_codes::holds_exactly_prehashed(record, &d.digests, &key)
                    }
                };
                return if same {
                    Ok(Some(device.id))
                } else {
                    Err(MisuseError::BackupCodesPresent.into())
                };
            }
        }
        Ok(None)
    }
}

/// Why an entry the check found addable could not be written, and a fresh check does not find
/// it either: another device of the user, written meanwhile, conflicts.
fn lost_race(item: &ImportItem) -> MisuseError {
    match item {
        ImportItem::Totp(_) => MisuseError::DuplicateSecret,
        ImportItem::BackupCodes(_) | ImportItem::HashedBackupCodes(_) => MisuseError::BackupCodesPresent,
        ImportItem::WebAuthn(_) => MisuseError::CredentialTaken,
    }
}

fn problem(entry: &ImportEntry, reason: impl std::fmt::Display) -> ImportProblem {
    ImportProblem {
        line: entry.line,
        user: Some(entry.user.as_str().to_owned()),
        reason: reason.to_string(),
    }
}

/// Imported backup codes to compare with a user's set: plain, or another system's digests.
#[derive(Clone, Copy)]
enum Codes<'a> {
    Plain(&'a ImportedCodes),
    Digests(&'a ImportedDigests),
}
