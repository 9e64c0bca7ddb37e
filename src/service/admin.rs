//! Operator tasks: key rotation.

use crate::admin::RotationReport;
use crate::audit::AuditKind;
use crate::clock::Clock;
use crate::error::{Error, SealError};
use crate::kind::DeviceKind;
use crate::rng::Rng;
use crate::seal::KeyId;
use crate::service::{Mfa, totp_context};
use crate::store::{AdminStore, DeviceData, DeviceStore};

/// Devices read per page while re-sealing.
const PAGE: usize = 256;

/// Adds one to `key`'s count.
fn count(counts: &mut Vec<(KeyId, u64)>, key: &KeyId) {
    match counts.iter_mut().find(|(k, _)| k == key) {
        Some((_, n)) => *n += 1,
        None => counts.push((key.clone(), 1)),
    }
}

impl<S: DeviceStore + AdminStore, C: Clock, R: Rng> Mfa<S, C, R> {
    /// Moves every keyed record it can to the keyring's current key, while the service runs,
    /// and reports the rest (see [`RotationReport`]): each TOTP secret (and sealed email address
    /// or phone number) not under the current
    /// key is opened with its old key and written back by compare-and-swap, so verifications
    /// keep working throughout (old keys stay in the ring until this finishes). Run it after
    /// making a new key current; remove an old key only when a run reports nothing left under it.
    /// A record that cannot be handled is reported in [`RotationReport::failed`], not fatal.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn rotate_keys(&self) -> Result<RotationReport, Error> {
        let current = self.keys.current_id().clone();
        let mut report = RotationReport::default();
        let mut after = None;
        loop {
            let page = self.store.list_totp_devices(after, PAGE).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.id);
            for device in page {
                // An authenticator's secret, or a destination of sent codes.
                let (sealed, context, kind) = match &device.data {
                    DeviceData::Totp(totp) => (
                        &totp.sealed_secret,
                        totp_context(&device.user, device.id),
                        DeviceKind::Totp,
                    ),
                    DeviceData::SentCode(c) => (
                        &c.sealed_destination,
                        super::sent_code::destination_context(&device.user, device.id),
                        c.channel.kind(),
                    ),
                    _ => continue,
                };
                report.examined += 1;
                if sealed.key_id() == &current {
                    report.current += 1;
                    continue;
                }
                let secret = match self.keys.open(&context, sealed) {
                    Ok(secret) => secret,
                    Err(SealError::UnknownKey(_)) => {
                        report.unknown_keys.push((device.id, sealed.key_id().clone()));
                        continue;
                    }
                    Err(e) => {
                        report.failed.push((device.id, e.to_string()));
                        continue;
                    }
                };
                let resealed = self.keys.seal(&self.rng, &context, &secret)?;
                let fingerprint = match &device.data {
                    DeviceData::SentCode(c) => match std::str::from_utf8(&secret) {
                        Ok(destination) => self.destination_fingerprint(&device.user, c.channel, destination)?,
                        Err(_) => {
                            report
                                .failed
                                .push((device.id, "a sealed destination that is not text".to_owned()));
                            continue;
                        }
                    },
                    _ => self.totp_fingerprint(&device.user, &secret)?,
                };
                let swapped = match self
                    .store
                    .reseal_totp_secret(&device.user, device.id, sealed, &resealed, &fingerprint)
                    .await
                {
                    Err(crate::StoreError::Conflict) => {
                        // Two devices of the user with one secret, from before imports compared
                        // secrets in the form HMAC uses: delete one to finish the rotation.
                        report.failed.push((
                            device.id,
                            "another device of the user has the same secret or destination".to_owned(),
                        ));
                        continue;
                    }
                    other => other?,
                };
                if swapped {
                    report.resealed += 1;
                    self.emit(
                        self.event(Some(&device.user), AuditKind::Resealed)
                            .device(device.id, kind),
                    );
                } else {
                    report.raced += 1;
                }
            }
        }
        let mut after = None;
        loop {
            let page = self.store.list_backup_code_sets(after, PAGE).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.id);
            for set in &page {
                if let DeviceData::BackupCodes(codes) = &set.data {
                    match &codes.key_id {
                        Some(key) if key == &current => report.backup_sets_current += 1,
                        Some(key) => count(&mut report.backup_sets_old_key, key),
                        None => report.backup_sets_unkeyed += 1,
                    }
                }
            }
        }
        let mut after = None;
        loop {
            let page = self.store.list_remembered_browsers_page(after, PAGE).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.id);
            for token in &page {
                if token.key_id == current {
                    report.remembered_browsers_current += 1;
                } else {
                    count(&mut report.remembered_browsers_old_key, &token.key_id);
                }
            }
        }
        // Re-sealed secrets: copies of the old ones are out of date.
        self.cache.clear();
        Ok(report)
    }
}
