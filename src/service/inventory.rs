//! The administrator's inventory of security keys and passkeys across users, and the bulk
//! revocation a security team runs when an authenticator model is found vulnerable.

use crate::admin::{CredentialFilter, InventoryPage};
use crate::clock::Clock;
use crate::error::Error;
use crate::id::DeviceId;
use crate::rng::Rng;
use crate::store::{AdminStore, BrowserStore, DeviceData, DeviceStore};

use super::Mfa;

/// Store pages read per call of [`Mfa::credential_inventory`] at most, and the page size of
/// [`Mfa::revoke_credentials`].
const PAGE: usize = 500;

impl<S: DeviceStore + BrowserStore + AdminStore, C: Clock, R: Rng> Mfa<S, C, R> {
    /// **Admin**: one page of the security keys and passkeys of all users that match `filter`,
    /// in device-id order, after `after` (`None`: from the start). At most `limit` credentials
    /// are read from the store for the page (1..=500; fewer match when a filter is given).
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn credential_inventory(
        &self,
        filter: &CredentialFilter,
        after: Option<DeviceId>,
        limit: usize,
    ) -> Result<InventoryPage, Error> {
        let limit = limit.clamp(1, PAGE);
        let catalog = self.config.webauthn.as_ref().map(|w| w.providers.current());
        let page = self.store.list_webauthn_credentials(after, limit).await?;
        let next = if page.len() == limit {
            page.last().map(|d| d.id)
        } else {
            None
        };
        let credentials = page
            .into_iter()
            .filter(|d| matches!(d.data, DeviceData::WebAuthn(_)))
            .map(|d| (d.user.clone(), self.device_info(d, catalog.as_deref())))
            .filter(|(_, info)| filter.matches(info))
            .collect();
        Ok(InventoryPage { credentials, next })
    }

    /// **Admin**: deletes every security key and passkey of authenticator model `aaguid`, of
    /// all users, even a user's last device (they then need recovery), each audited as an
    /// administrator's delete, with the users' remembered browsers revoked. Returns how many
    /// were deleted. Run it when a model is found vulnerable; add the AAGUID to a deny-list
    /// ([`AaguidRule::Deny`](crate::webauthn::AaguidRule::Deny)) first, so that none is
    /// registered meanwhile.
    ///
    /// # Errors
    ///
    /// Store errors (credentials deleted before the error stay deleted; running it again
    /// finishes the job).
    pub async fn revoke_credentials(&self, aaguid: [u8; 16]) -> Result<u64, Error> {
        let filter = CredentialFilter::new().aaguid(aaguid);
        let mut after = None;
        let mut revoked = 0;
        loop {
            let page = self.credential_inventory(&filter, after, PAGE).await?;
            for (user, device) in &page.credentials {
                if self.store.delete_device(user, device.id).await? {
                    self.after_delete(user, device.id, Some(device.kind), true).await?;
                    revoked += 1;
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(revoked),
            }
        }
    }
}
