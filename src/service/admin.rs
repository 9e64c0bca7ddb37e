//! Operator tasks: re-sealing TOTP secrets under a new key.

use crate::audit::AuditKind;
use crate::clock::Clock;
use crate::device::{DeviceData, DeviceId, DeviceKind};
use crate::error::{Error, SealError};
use crate::rng::Rng;
use crate::seal::KeyId;
use crate::service::{Mfa, totp_context};
use crate::store::DeviceStore;

/// Devices read per page while re-sealing.
const PAGE: usize = 256;

/// What [`Mfa::reseal_totp_secrets`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResealReport {
    /// TOTP devices looked at.
    pub examined: u64,
    /// Re-sealed under the current key.
    pub resealed: u64,
    /// Already under the current key.
    pub current: u64,
    /// Changed or deleted by someone else meanwhile (they are re-sealed by the next run if needed).
    pub raced: u64,
    /// Sealed under key ids the keyring does not hold: these cannot be opened until the key is
    /// added back (each is also an error at verification).
    pub unknown_keys: Vec<(DeviceId, KeyId)>,
}

impl<S: DeviceStore, C: Clock, R: Rng> Mfa<S, C, R> {
    /// Re-seals every TOTP secret that is not under the keyring's current key, while the
    /// service runs: each device is opened with its old key and written back by
    /// compare-and-swap, so verifications keep working throughout (old keys stay in the ring
    /// until this finishes). Run it after making a new key current; remove the old key only
    /// when a run reports nothing left under it.
    ///
    /// # Errors
    ///
    /// Store errors; [`SealError::Integrity`] if a blob does not open under the key its id names
    /// (tampering or a wrong key with that id).
    pub async fn reseal_totp_secrets(&self) -> Result<ResealReport, Error> {
        let current = self.keys.current_id().clone();
        let mut report = ResealReport::default();
        let mut after = None;
        loop {
            let page = self.store.list_totp_devices(after, PAGE).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.id);
            for device in page {
                let DeviceData::Totp(totp) = &device.data else {
                    continue;
                };
                report.examined += 1;
                if totp.sealed_secret.key_id() == &current {
                    report.current += 1;
                    continue;
                }
                let context = totp_context(&device.user, device.id);
                let secret = match self.keys.open(&context, &totp.sealed_secret) {
                    Ok(secret) => secret,
                    Err(SealError::UnknownKey(_)) => {
                        report
                            .unknown_keys
                            .push((device.id, totp.sealed_secret.key_id().clone()));
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                let resealed = self.keys.seal(&self.rng, &context, &secret)?;
                if self
                    .store
                    .reseal_totp_secret(&device.user, device.id, &totp.sealed_secret, &resealed)
                    .await?
                {
                    report.resealed += 1;
                    self.emit(
                        self.event(Some(&device.user), AuditKind::Resealed)
                            .method(device.id, DeviceKind::Totp),
                    );
                } else {
                    report.raced += 1;
                }
            }
        }
        Ok(report)
    }
}
