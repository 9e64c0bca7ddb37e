//! Required enrollment through the service: the user's stored deadline and where they stand.

use crate::audit::AuditKind;
use crate::clock::{Clock, UnixTime};
use crate::enrollment::{EnrollmentGrace, EnrollmentStatus, Skipped};
use crate::error::Error;
use crate::id::UserId;
use crate::rng::Rng;
use crate::service::Mfa;
use crate::store::{BrowserStore, DeviceStore, EnrollmentStore};

impl<S: DeviceStore + BrowserStore + EnrollmentStore, C: Clock, R: Rng> Mfa<S, C, R> {
    /// Where `user` stands under the service's enrollment policy (`None` without one). The
    /// first call for a user stores their deadline (now plus the grace period); later calls,
    /// and a reset of their devices, never move it.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn enrollment_status(&self, user: &UserId) -> Result<Option<EnrollmentStatus>, Error> {
        let Some(policy) = self.config.enrollment else {
            return Ok(None);
        };
        let now = self.clock.now();
        let grace = self
            .store
            .enrollment_deadline(user, now.plus_secs(policy.grace_secs()))
            .await?;
        let devices = self.list_devices(user).await?;
        Ok(Some(policy.decide(&devices, grace, now)))
    }

    /// `user` skips the enrollment prompt: under a policy that counts skips, one is counted
    /// (atomically: concurrent skips never count more than the policy allows). Returns whether
    /// the skip is allowed and where the user stands after it: [`Due`](EnrollmentStatus::Due)
    /// with the skips left, or [`Required`](EnrollmentStatus::Required) after the last one
    /// (allowed: the next prompt is not) or when none was left or the deadline passed (not
    /// allowed, nothing counted). `None` without a policy.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn skip_enrollment(&self, user: &UserId) -> Result<Option<Skipped>, Error> {
        let Some(policy) = self.config.enrollment else {
            return Ok(None);
        };
        let now = self.clock.now();
        let proposed = now.plus_secs(policy.grace_secs());
        let grace = self.store.enrollment_deadline(user, proposed).await?;
        let devices = self.list_devices(user).await?;
        let status = policy.decide(&devices, grace, now);
        let (Some(max), EnrollmentStatus::Due { .. }) = (policy.skips(), status) else {
            // Met, required, or only a deadline: a skip changes nothing.
            return Ok(Some(Skipped {
                allowed: status.may_skip(),
                status,
            }));
        };
        let (allowed, skipped) = match self.store.skip_enrollment_prompt(user, proposed, max).await? {
            Some(skipped) => (true, skipped),
            // Other requests took the last skip meanwhile.
            None => (false, max),
        };
        let status = policy.decide(&devices, EnrollmentGrace::new(grace.deadline, skipped), now);
        Ok(Some(Skipped { allowed, status }))
    }

    /// **Administrator**: sets `user`'s enrollment deadline (to extend or shorten it), counts
    /// their skipped prompts from zero again, and emits [`AuditKind::EnrollmentDeadlineSet`].
    /// The only way a deadline moves or skips come back.
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
