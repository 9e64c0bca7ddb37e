//! Required enrollment through the service: the user's stored deadline and where they stand.

use crate::audit::AuditKind;
use crate::clock::{Clock, UnixTime};
use crate::error::Error;
use crate::id::UserId;
use crate::rng::Rng;
use crate::service::Mfa;
use crate::store::DeviceStore;

impl<S: DeviceStore, C: Clock, R: Rng> Mfa<S, C, R> {
    /// Where `user` stands under the service's enrollment policy (`None` without one). The
    /// first call for a user stores their deadline (now plus the grace period); later calls,
    /// and a reset of their devices, never move it.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn enrollment_status(&self, user: &UserId) -> Result<Option<crate::enrollment::EnrollmentStatus>, Error> {
        let Some(policy) = self.config.enrollment else {
            return Ok(None);
        };
        let now = self.clock.now();
        let deadline = self
            .store
            .enrollment_deadline(user, now.plus_secs(policy.grace_secs()))
            .await?;
        let devices = self.list_devices(user).await?;
        Ok(Some(policy.decide(&devices, deadline, now)))
    }

    /// **Administrator**: sets `user`'s enrollment deadline (to extend or shorten it), and emits
    /// [`AuditKind::EnrollmentDeadlineSet`]. The only way a deadline moves.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn set_enrollment_deadline(&self, user: &UserId, deadline: UnixTime) -> Result<(), Error> {
        self.store.set_enrollment_deadline(user, deadline).await?;
        self.emit(self.event(Some(user), AuditKind::EnrollmentDeadlineSet { deadline }));
        Ok(())
    }
}
