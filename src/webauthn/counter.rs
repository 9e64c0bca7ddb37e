//! Sign-counter decisions (pure): is this assertion's counter plausible, and what to store.

use crate::webauthn::{WebAuthnRecord, WebAuthnUse};

/// What to do when an authenticator that counts presents a counter that did not advance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CounterPolicy {
    /// Reject the assertion: the credential may have been cloned (the default).
    #[default]
    RejectRegression,
    /// **Insecure**: accept it anyway (the stored counter never goes down).
    DangerAllowRegression,
}

/// The decision for one assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CounterCheck {
    /// Fine: store this.
    Accept(WebAuthnUse),
    /// The counter did not advance on a counting authenticator, and the policy rejects that.
    PossibleClone,
}

/// Decides on an assertion with `counter`, against the stored record; the backup flags to
/// record come from the backup-flags policy.
pub(crate) fn check(
    stored: &WebAuthnRecord,
    counter: u32,
    (backup_eligible, backup_state): (bool, bool),
    policy: CounterPolicy,
) -> CounterCheck {
    let counts = counter > 0 || stored.sign_count > 0;
    if counts && counter <= stored.sign_count && policy == CounterPolicy::RejectRegression {
        return CounterCheck::PossibleClone;
    }
    // The flags as the backup-flags policy decided them (`backup_flags::decide`).
    CounterCheck::Accept(WebAuthnUse {
        sign_count: counter.max(stored.sign_count),
        backup_eligible,
        backup_state: backup_state && backup_eligible,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(sign_count: u32, backup_eligible: bool) -> WebAuthnRecord {
        WebAuthnRecord {
            credential_id: vec![1],
            user_handle: vec![2],
            credential: vec![],
            sign_count,
            backup_eligible,
            backup_state: false,
            discoverable: true,
            user_verified: true,
            aaguid: None,
        }
    }

    #[test]
    fn counters() {
        let p = CounterPolicy::RejectRegression;
        // Counter-less synced passkeys.
        assert!(
            matches!(check(&record(0, true), 0, (true, true), p), CounterCheck::Accept(u) if u.sign_count == 0 && u.backup_state)
        );
        // Advancing.
        assert!(matches!(check(&record(5, false), 6, (false, false), p), CounterCheck::Accept(u) if u.sign_count == 6));
        // Equal, lower, or back to zero: possible clone.
        for c in [5, 4, 0] {
            assert_eq!(
                check(&record(5, false), c, (false, false), p),
                CounterCheck::PossibleClone,
                "{c}"
            );
        }
        // The danger policy accepts but never lowers the stored counter.
        let d = CounterPolicy::DangerAllowRegression;
        assert!(matches!(check(&record(5, false), 2, (false, false), d), CounterCheck::Accept(u) if u.sign_count == 5));
        // A backed-up flag without eligibility is not recorded as backed up.
        assert!(
            matches!(check(&record(0, false), 0, (false, true), p), CounterCheck::Accept(u) if !u.backup_eligible && !u.backup_state)
        );
        // The flags given are the ones recorded.
        assert!(
            matches!(check(&record(0, false), 0, (true, true), p), CounterCheck::Accept(u) if u.backup_eligible && u.backup_state)
        );
        assert!(
            matches!(check(&record(0, true), 0, (false, false), p), CounterCheck::Accept(u) if !u.backup_eligible && !u.backup_state)
        );
    }
}
