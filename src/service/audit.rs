//! The audit trail of the service's operations.

use crate::audit::{AuditEvent, AuditKind};
use crate::clock::Clock;
use crate::id::UserId;
use crate::kind::Factor;

use super::settle::Settled;
use super::{Mfa, Outcome};

impl<S, C: Clock, R> Mfa<S, C, R> {
    // ----- Audit ------------------------------------------------------------------------------

    pub(super) fn event(&self, user: Option<&UserId>, kind: AuditKind) -> AuditEvent {
        AuditEvent::new(self.clock.now(), user, kind)
    }

    pub(super) fn emit(&self, event: AuditEvent) {
        self.audit.record(event);
    }

    /// The one audit wrapper of the factors' operations: emits the events of a finished
    /// attempt (`accepted` on acceptance, else rejected/throttled/locked; a reused code; a
    /// failure budget running low; few backup codes left) and returns its outcome. `user` is
    /// whom the attempt was for (`None` for a passwordless credential nobody has).
    pub(super) fn audited(
        &self,
        user: Option<&UserId>,
        factor: Factor,
        accepted: AuditKind,
        settled: Settled,
    ) -> Outcome {
        let event = match &settled.outcome {
            Outcome::Accepted(v) => {
                self.emit(self.event(Some(&v.user), accepted).device(v.device, v.kind));
                if let Some(remaining) = v.remaining_backup_codes
                    && remaining <= self.config.backup_codes_low_at
                {
                    self.emit(
                        self.event(Some(&v.user), AuditKind::BackupCodesLow { remaining })
                            .device(v.device, v.kind),
                    );
                }
                None
            }
            Outcome::Rejected => Some(self.event(user, AuditKind::Rejected)),
            Outcome::Throttled { retry_at } => Some(self.event(user, AuditKind::Throttled { retry_at: *retry_at })),
            Outcome::Locked => Some(self.event(user, AuditKind::Locked)),
            // Audited where it was decided, with the device.
            Outcome::NotAllowed(_) => None,
        };
        if let Some(event) = event {
            self.emit(event.factor(factor));
        }
        if settled.reused {
            self.emit(self.event(user, AuditKind::CodeReused).factor(factor));
        }
        if let Some(remaining) = settled.budget_remaining
            && remaining <= self.config.throttle.budget_capacity() / 4
        {
            self.emit(
                self.event(user, AuditKind::FailureBudgetLow { remaining })
                    .factor(factor),
            );
        }
        settled.outcome
    }
}
