//! Backup flags that change between registration and a sign-in (pure): what to accept and what
//! to record.
//!
//! The backup-eligible flag (BE) says a credential may be synced to other devices; the
//! backup-state flag (BS) says it is now. Real authenticators change them: a password manager
//! that starts syncing (KeePassXC, iCloud Keychain after an upgrade), a credential imported from
//! a system that did not keep them. webauthn-rs refuses a changed BE, which locks the user out
//! of a credential that still proves possession of the same key. The default here follows what
//! the authenticator says now, records it by compare-and-swap with the counter, and audits the
//! change ([`AuditKind::BackupFlagsChanged`](crate::audit::AuditKind::BackupFlagsChanged)), so that a
//! host that cares (a device-bound-only policy) sees it and can act; a stricter host refuses.

/// What to do when a credential's backup flags differ from the ones recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BackupFlagsPolicy {
    /// Accept, record the new flags, emit an audit event (the default: never a lockout). A
    /// credential once backup-eligible stays recorded as eligible whatever a later assertion
    /// says, so it is never again counted as device-bound.
    #[default]
    Follow,
    /// Refuse an assertion whose backup-eligible flag differs from the recorded one (what
    /// webauthn-rs does). A change of the backup state alone is still followed. Hosts that
    /// admit only device-bound credentials are better served by
    /// [`CredentialRules::device_bound`](crate::webauthn::CredentialRules::device_bound),
    /// which refuses a synced credential at registration and at every sign-in with a reason
    /// the user can be shown and an audit event; this refusal is the opaque one.
    RefuseEligibilityChange,
}

/// The decision on one assertion's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagsDecision {
    /// Accept, recording these flags; `changed` when they differ from the recorded ones.
    Accept { eligible: bool, state: bool, changed: bool },
    /// The policy refuses this change.
    Refuse,
}

/// Decides on the asserted flags `(eligible, state)` against the recorded ones.
pub(crate) fn decide(recorded: (bool, bool), asserted: (bool, bool), policy: BackupFlagsPolicy) -> FlagsDecision {
    let (eligible, state) = asserted;
    if eligible != recorded.0 && policy == BackupFlagsPolicy::RefuseEligibilityChange {
        return FlagsDecision::Refuse;
    }
    // Once eligible, always eligible: a key that may have been copied elsewhere does not become
    // device-bound because a later assertion says so (WebAuthn makes the flag permanent for a
    // credential). Only a stricter policy refuses the change instead.
    let eligible = eligible || recorded.0;
    // Backed up without being eligible is not a state (the core refuses such an assertion too).
    let state = state && eligible;
    FlagsDecision::Accept {
        eligible,
        state,
        changed: (eligible, state) != recorded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_records_every_change_but_a_loss_of_eligibility() {
        let p = BackupFlagsPolicy::Follow;
        for recorded in [(false, false), (true, false), (true, true)] {
            for asserted in [(false, false), (true, false), (true, true)] {
                // An eligible credential stays eligible (its backup state still follows).
                let eligible = asserted.0 || recorded.0;
                let state = asserted.1;
                assert_eq!(
                    decide(recorded, asserted, p),
                    FlagsDecision::Accept {
                        eligible,
                        state,
                        changed: recorded != (eligible, state)
                    },
                    "{recorded:?} -> {asserted:?}"
                );
            }
        }
        assert_eq!(
            decide((false, false), (false, true), p),
            FlagsDecision::Accept {
                eligible: false,
                state: false,
                changed: false
            }
        );
    }

    #[test]
    fn the_strict_policy_refuses_eligibility_changes_only() {
        let p = BackupFlagsPolicy::RefuseEligibilityChange;
        assert_eq!(decide((false, false), (true, true), p), FlagsDecision::Refuse);
        assert_eq!(decide((true, true), (false, false), p), FlagsDecision::Refuse);
        assert_eq!(
            decide((true, false), (true, true), p),
            FlagsDecision::Accept {
                eligible: true,
                state: true,
                changed: true
            }
        );
    }
}
