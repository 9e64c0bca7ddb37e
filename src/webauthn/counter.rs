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

/// Decides on an assertion with `counter` and backup flags, against the stored record.
pub(crate) fn check(stored: &WebAuthnRecord, counter: u32, backup_state: bool, policy: CounterPolicy) -> CounterCheck {
    let counts = counter > 0 || stored.sign_count > 0;
    if counts && counter <= stored.sign_count && policy == CounterPolicy::RejectRegression {
        return CounterCheck::PossibleClone;
    }
    CounterCheck::Accept(WebAuthnUse {
        sign_count: counter.max(stored.sign_count),
        // Backup eligibility is fixed at creation; an authenticator claiming it later does not
        // change what was registered (webauthn-rs does the same unless told otherwise).
        backup_eligible: stored.backup_eligible,
        backup_state: backup_state && stored.backup_eligible,
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
        }
    }

    #[test]
    fn counters() {
        let p = CounterPolicy::RejectRegression;
        // Counter-less synced passkeys.
        assert!(
            matches!(check(&record(0, true), 0, true, p), CounterCheck::Accept(u) if u.sign_count == 0 && u.backup_state)
        );
        // Advancing.
        assert!(matches!(check(&record(5, false), 6, false, p), CounterCheck::Accept(u) if u.sign_count == 6));
        // Equal, lower, or back to zero: possible clone.
        for c in [5, 4, 0] {
            assert_eq!(
                check(&record(5, false), c, false, p),
                CounterCheck::PossibleClone,
                "{c}"
            );
        }
        // The danger policy accepts but never lowers the stored counter.
        let d = CounterPolicy::DangerAllowRegression;
        assert!(matches!(check(&record(5, false), 2, false, d), CounterCheck::Accept(u) if u.sign_count == 5));
        // A credential registered as not backup-eligible cannot become backed up.
        assert!(
            matches!(check(&record(0, false), 0, true, p), CounterCheck::Accept(u) if !u.backup_eligible && !u.backup_state)
        );
    }
}
