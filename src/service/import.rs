//! Imports from other systems: one WebAuthn credential, one backup-code set, a whole batch.

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
use crate::rng::Rng;
use crate::secret::SecretBytes;
use crate::store::{DeviceData, DeviceRecord, DeviceStore};
use crate::webauthn::WebAuthnRecord;

use super::Mfa;
use super::totp::totp_context;

/// What the check of one entry against the store found.
enum Plan {
    Add,
    Present(DeviceId),
}

impl<S: DeviceStore, C: Clock, R: Rng> Mfa<S, C, R> {
    /// Imports a security key or passkey registered elsewhere for this relying party id
    /// ([`WebAuthnImport`]). The user signs in with it as before; its sign counter and flags
    /// carry over.
    ///
    /// # Errors
    ///
    /// [`MisuseError::CredentialTaken`] if another user has this credential;
    /// [`MisuseError::TooManyCredentials`]; [`InputError::DeviceName`](crate::InputError::DeviceName);
    /// RNG and store errors.
    pub async fn import_webauthn(
        &self,
        user: &UserId,
        import: &WebAuthnImport,
        name: Option<&str>,
    ) -> Result<ImportStatus, Error> {
        let name = match name {
            Some(n) => DeviceName::new(n)?,
            None => crate::webauthn::unnamed_device_name(self.config.webauthn.as_ref(), import.kind(), import.aaguid)?,
        };
        if let Plan::Present(id) = self.check_webauthn(user, import).await? {
            return Ok(ImportStatus::AlreadyPresent(id));
        }
        let count = self.webauthn_records(user).await?.len();
        if count >= super::webauthn::MAX_CREDENTIALS {
            return Err(MisuseError::TooManyCredentials.into());
        }
        self.devices_changed(user).await?;
        let id = DeviceId::generate(&self.rng)?;
        let record = DeviceRecord::new(
            id,
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
            }),
        );
        match self.store.insert_device(record).await {
            Ok(()) => {}
            // Registered meanwhile, by this user or another.
            Err(StoreError::Conflict) => {
                return match self.check_webauthn(user, import).await? {
                    Plan::Present(id) => Ok(ImportStatus::AlreadyPresent(id)),
                    Plan::Add => Err(StoreError::Conflict.into()),
                };
            }
            Err(e) => return Err(e.into()),
        }
        self.cache.forget(user);
        self.emit(self.event(Some(user), AuditKind::Enrolled).device(id, import.kind()));
        Ok(ImportStatus::Added(id))
    }

    /// Imports backup codes another system generated as the user's set, hashed as ours are
    /// ([`backup_codes::import`]). Importing the same codes again finds them present.
    ///
    /// # Errors
    ///
    /// [`InputError::ImportedCodes`](crate::InputError::ImportedCodes) for codes that cannot
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

    /// An imported set, unless the user has it already: hashed under the current key, written
    /// only while the user still has no set (one generated since the check stays), audited.
    async fn import_set(&self, user: &UserId, codes: Codes<'_>, name: Option<&str>) -> Result<ImportStatus, Error> {
        let name = DeviceName::new(name.unwrap_or(DeviceKind::BackupCodes.default_name()))?;
        if let Plan::Present(id) = self.check_backup_codes(user, codes).await? {
            return Ok(ImportStatus::AlreadyPresent(id));
        }
        let id = DeviceId::generate(&self.rng)?;
        let key = self.codes_key(self.keys.current_id(), user, id)?;
        let record = match codes {
            Codes::Plain(c) => backup_codes::import(&self.rng, &c.as_strs(), &key)?,
            Codes::Digests(d) => backup_codes::import_prehashed(&self.rng, d.prehash, &d.digests, &key)?,
        };
        self.store_backup_set(user, id, name, record, super::backup_codes::SetWrite::First)
            .await?;
        self.emit(
            self.event(Some(user), AuditKind::Enrolled)
                .device(id, DeviceKind::BackupCodes),
        );
        Ok(ImportStatus::Added(id))
    }

    /// Imports a whole batch ([`ImportBatch::parse`]): checks every entry against the store
    /// first (a credential another user has, a different backup-code set, a relying party id
    /// that is not ours), then, if no line has a problem (or `skip_bad`), imports the entries
    /// one by one, calling `progress(done, total)` after each.
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
        for entry in &batch.entries {
            match self.check_entry(entry).await {
                Ok(plan) => planned.push((entry, plan)),
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
        for (done, (entry, plan)) in planned.into_iter().enumerate() {
            let status = match plan {
                Plan::Present(id) => ImportStatus::AlreadyPresent(id),
                Plan::Add if options.dry_run => ImportStatus::WouldAdd,
                Plan::Add => match self.import_entry(entry).await {
                    Ok(status) => status,
                    // Changed between the check and the write (a concurrent enrollment).
                    Err(Error::Misuse(e)) => {
                        problems.push(problem(entry, e));
                        continue;
                    }
                    Err(e) => return Err(e),
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

    async fn import_entry(&self, entry: &ImportEntry) -> Result<ImportStatus, Error> {
        let name = entry.name.as_deref();
        match &entry.item {
            ImportItem::Totp(import) => match self.import_parsed_totp(&entry.user, import, name).await {
                Ok(id) => Ok(ImportStatus::Added(id)),
                Err(Error::Misuse(MisuseError::DuplicateSecret)) => match self.check_entry(entry).await? {
                    Plan::Present(id) => Ok(ImportStatus::AlreadyPresent(id)),
                    Plan::Add => Err(MisuseError::DuplicateSecret.into()),
                },
                Err(e) => Err(e),
            },
            ImportItem::BackupCodes(codes) => self.import_backup_codes(&entry.user, codes, name).await,
            ImportItem::HashedBackupCodes(digests) => self.import_hashed_backup_codes(&entry.user, digests, name).await,
            ImportItem::WebAuthn(import) => self.import_webauthn(&entry.user, import, name).await,
        }
    }

    /// One entry against the store: present already, to add, or (as an error) why not.
    async fn check_entry(&self, entry: &ImportEntry) -> Result<Plan, Error> {
        if let Some(name) = &entry.name {
            DeviceName::new(name)?;
        }
        match &entry.item {
            ImportItem::Totp(import) => {
                for device in self.store.list_devices(&entry.user).await? {
                    if let DeviceData::Totp(t) = &device.data {
                        let existing = SecretBytes::from(
                            self.keys
                                .open(&totp_context(&entry.user, device.id), &t.sealed_secret)?,
                        );
                        if crate::totp::same_hmac_key(existing.expose_secret(), import.secret.expose_secret()) {
                            return Ok(Plan::Present(device.id));
                        }
                    }
                }
                Ok(Plan::Add)
            }
            ImportItem::BackupCodes(codes) => {
                // The codes' shape first: a bad set is a problem even for a user with codes.
                backup_codes::check_imported(&codes.as_strs())?;
                self.check_backup_codes(&entry.user, Codes::Plain(codes)).await
            }
            ImportItem::HashedBackupCodes(digests) => {
                backup_codes::check_prehashed(&digests.digests)?;
                self.check_backup_codes(&entry.user, Codes::Digests(digests)).await
            }
            ImportItem::WebAuthn(import) => {
                if let (Some(theirs), Ok(config)) = (&entry.rp_id, self.webauthn())
                    && theirs != config.relying_party().id()
                {
                    return Err(crate::InputError::ImportedCredential(
                        "registered for another relying party id: it cannot sign in here",
                    )
                    .into());
                }
                self.check_webauthn(&entry.user, import).await
            }
        }
    }

    async fn check_webauthn(&self, user: &UserId, import: &WebAuthnImport) -> Result<Plan, Error> {
        match self.store.find_credential(&import.credential_id).await? {
            Some(existing) if existing.user == *user => Ok(Plan::Present(existing.id)),
            Some(_) => Err(MisuseError::CredentialTaken.into()),
            None => Ok(Plan::Add),
        }
    }

    async fn check_backup_codes(&self, user: &UserId, codes: Codes<'_>) -> Result<Plan, Error> {
        for device in self.store.list_devices(user).await? {
            if let DeviceData::BackupCodes(record) = &device.data {
                let key = match &record.key_id {
                    Some(key_id) => self.codes_key(key_id, user, device.id)?,
                    None => backup_codes::CodeKey::Legacy(self.config.pepper.as_ref()),
                };
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
                    Ok(Plan::Present(device.id))
                } else {
                    Err(MisuseError::BackupCodesPresent.into())
                };
            }
        }
        Ok(Plan::Add)
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
