//! Audit events: every security-relevant outcome, delivered to a host-provided sink.
//!
//! Events name the user, the device and the time, and never carry a secret (no code, no key,
//! no token). The default sink drops them; `RecordingSink` (feature `test-util`) keeps them in memory for tests.

use std::fmt;
use std::sync::Arc;
#[cfg(any(test, feature = "test-util"))]
use std::sync::Mutex;

use crate::clock::UnixTime;
use crate::id::{DeviceId, RememberedBrowserId, UserId};
use crate::kind::{DeviceKind, Factor};

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditKind {
    /// A device was added (a TOTP enrollment started or imported, a security key or passkey registered).
    Enrolled,
    /// A TOTP enrollment was confirmed by its first code.
    Confirmed,
    /// A code was made for the host to send to an email address or phone number.
    CodeSent,
    /// A security key or passkey that verified was refused by the credential policy, at
    /// registration or at a sign-in.
    CredentialRefused {
        /// Which rule it broke.
        reason: crate::webauthn::PolicyRefusal,
    },
    /// A code or assertion was accepted.
    Verified {
        /// True for a backup code: a recovery sign-in.
        recovery: bool,
    },
    /// A code or assertion was rejected.
    Rejected,
    /// An attempt was refused (unanswered) because of recent failures.
    Throttled {
        /// When the next attempt will be evaluated.
        retry_at: UnixTime,
    },
    /// An attempt was refused (unanswered) because the factor is locked.
    Locked,
    /// The host lifted a lock.
    Unlocked,
    /// A device was renamed.
    Renamed,
    /// A WebAuthn credential's backup flags changed (it started or stopped being syncable or
    /// synced); the new flags were recorded ([`BackupFlagsPolicy`](crate::webauthn::BackupFlagsPolicy)).
    BackupFlagsChanged {
        /// Backup-eligible now.
        eligible: bool,
        /// Backed up now.
        state: bool,
    },
    /// A device was deleted.
    Deleted {
        /// True when an admin removed the user's last device.
        admin: bool,
    },
    /// All of the user's devices were removed by an admin.
    Reset {
        /// How many devices were removed.
        removed: u64,
    },
    /// A new backup-code set replaced the old one.
    BackupCodesRegenerated,
    /// Few backup codes remain: prompt the user for new ones.
    BackupCodesLow {
        /// How many are left.
        remaining: usize,
    },
    /// A remember-this-browser token was issued.
    RememberedBrowserIssued,
    /// A remember-this-browser token was accepted.
    RememberedBrowserUsed,
    /// A known-browser token was issued after a full sign-in (replacing the browser's previous one).
    KnownBrowserIssued,
    /// Remember-this-browser tokens were revoked.
    RememberedBrowserRevoked {
        /// How many.
        count: u64,
        /// Why: revoked by the user or host, or because the user's devices changed.
        reason: RevokeReason,
    },
    /// A TOTP secret was re-sealed under the current key.
    Resealed,
    /// An administrator set the user's enrollment deadline.
    EnrollmentDeadlineSet {
        /// The new deadline.
        deadline: UnixTime,
    },
    /// A code that was already used was presented (a replayed TOTP step, a spent backup code),
    /// and rejected. NIST SP 800-63B: someone else may have it; tell the user.
    CodeReused,
    /// A failure was charged and the factor's long-term failure budget is running low: someone
    /// may be guessing. Tell the user; their other factors are unaffected.
    FailureBudgetLow {
        /// Failures the budget still takes before attempts wait for it to refill.
        remaining: u32,
    },
}

/// Why remembered browsers were revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevokeReason {
    /// Revoked on request.
    Requested,
    /// The user's devices changed (enrolled, deleted, reset, new backup codes).
    DevicesChanged,
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEvent {
    /// When.
    pub at: UnixTime,
    /// Whose account (`None` only for a passwordless attempt with an unknown credential).
    pub user: Option<UserId>,
    /// What happened.
    pub kind: AuditKind,
    /// The factor involved, if any.
    pub factor: Option<Factor>,
    /// The device involved, if any.
    pub device: Option<DeviceId>,
    /// Its kind, if known.
    pub device_kind: Option<DeviceKind>,
    /// The remember-this-browser token involved, if any (its id, never the token).
    pub remembered_browser: Option<RememberedBrowserId>,
}

impl AuditEvent {
    pub(crate) fn new(at: UnixTime, user: Option<&UserId>, kind: AuditKind) -> Self {
        Self {
            at,
            user: user.cloned(),
            kind,
            factor: None,
            device: None,
            device_kind: None,
            remembered_browser: None,
        }
    }

    pub(crate) fn factor(mut self, factor: Factor) -> Self {
        self.factor = Some(factor);
        self
    }

    pub(crate) fn device(mut self, id: DeviceId, kind: DeviceKind) -> Self {
        self.device = Some(id);
        self.device_kind = Some(kind);
        self.factor = Some(kind.factor());
        self
    }

    pub(crate) fn remembered_browser(mut self, id: RememberedBrowserId) -> Self {
        self.remembered_browser = Some(id);
        self
    }
}

impl fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} user={}", self.at, self.user.as_ref().map_or("-", UserId::as_str))?;
        write!(f, " {:?}", self.kind)?;
        if let Some(factor) = self.factor {
            write!(f, " factor={}", factor.as_str())?;
        }
        if let Some(id) = self.device {
            write!(f, " device={id}")?;
        }
        if let Some(id) = self.remembered_browser {
            write!(f, " remembered_browser={id}")?;
        }
        Ok(())
    }
}

/// Where audit events go: a log, a queue, a table. Called synchronously on the request's path:
/// keep it quick (hand off to a channel for anything slow).
pub trait AuditSink: Send + Sync {
    /// Receives one event.
    fn record(&self, event: AuditEvent);
}

/// Drops every event (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopSink;

impl AuditSink for NoopSink {
    fn record(&self, _event: AuditEvent) {}
}

#[cfg(any(test, feature = "test-util"))]
/// Keeps every event in memory, for tests and demos. Clones share the same list.
#[derive(Debug, Clone, Default)]
pub struct RecordingSink(Arc<Mutex<Vec<AuditEvent>>>);

#[cfg(any(test, feature = "test-util"))]
impl RecordingSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events so far.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.0.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Takes the events so far, leaving the list empty.
    pub fn take(&self) -> Vec<AuditEvent> {
        self.0.lock().map(|mut e| std::mem::take(&mut *e)).unwrap_or_default()
    }
}

#[cfg(any(test, feature = "test-util"))]
impl AuditSink for RecordingSink {
    fn record(&self, event: AuditEvent) {
        if let Ok(mut events) = self.0.lock() {
            events.push(event);
        }
    }
}

impl<T: AuditSink + ?Sized> AuditSink for Arc<T> {
    fn record(&self, event: AuditEvent) {
        (**self).record(event);
    }
}
